//! Precision of the rate limiter in real time, over real HTTP on loopback.
//!
//! ```text
//! cargo bench --bench rate_precision
//! cargo bench --bench rate_precision -- --rate 5000 --secs 5 --limit 256 --per-host
//! ```
//!
//! Sends `rate × secs + 1` requests (default 5,000/s for 5 s) through
//! `RateLimit` over `fastreq::Backend` with `fastreq::fan_out` (limit 256) to the local test
//! server, and timestamps every request as the backend receives it. With burst 1 the first
//! request goes at once and the rest follow at the rate, so the achieved rate is
//! `(n − 1) / (last send − first send)`. Prints it, its error against the target
//! (target: within 0.5 %), the requests sent in each whole second, and failures.
//!
//! `--per-host` limits per host instead of globally (all requests go to one host).
//! `--limit` is the `fan_out` limit (default 256, fastreq's default).
//!
//! The limiter makes up for late timer wake-ups (catch-up), but it cannot send requests
//! that do not exist: when the machine stalls long enough for all `limit` requests to be on
//! the wire at once (51 ms at 5,000/s with limit 256: a busy 2-core machine can do that),
//! no request waits for a permit and the permits of that stall are not used. The longest
//! gap between two sends is printed to show such stalls.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fastreq::rate_limit::RateLimitLayer;
use fastreq::{Backend, Body, Error, ResponseExt};
use futures::StreamExt;
use http::Request;
use support::TestServer;
use tower::{Layer, ServiceExt};

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`; anything else of criterion's is ignored.
    let rate: f64 = arg("--rate", 5000.0);
    let secs: f64 = arg("--secs", 5.0);
    let per_host = args.iter().any(|a| a == "--per-host");
    let limit: usize = arg("--limit", 256);
    let n = (rate * secs).round() as usize + 1;

    let server = TestServer::builder().track_paths(false).routes();
    let url = server.url("/");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let (sends, failures, wall) = rt.block_on(async move {
        let layer = if per_host {
            RateLimitLayer::per_host(rate)
        } else {
            RateLimitLayer::new(rate)
        };
        let backend = Backend::new();
        // Warm the connection pool (not counted).
        let warm: Vec<_> =
            fastreq::fan_out(backend.clone(), (0..64).map(|_| fastreq::get(&url).build()))
                .limit(64)
                .collect()
                .await;
        assert!(warm.iter().all(|o| o.result.is_ok()), "warm-up failed");

        let sends = Arc::new(Mutex::new(Vec::with_capacity(n)));
        let recorder = {
            let sends = sends.clone();
            backend.map_request(move |req: Request<Body>| {
                sends.lock().unwrap().push(Instant::now());
                req
            })
        };
        let svc = layer.layer(recorder);
        let start = Instant::now();
        let failures = fastreq::fan_out(svc, (0..n).map(|_| fastreq::get(&url).build()))
            .limit(limit)
            .then(|o| async move {
                match o.result {
                    Ok(resp) => resp.bytes().await.map(drop),
                    Err(e) => Err::<(), Error>(e),
                }
            })
            .filter(|r| std::future::ready(r.is_err()))
            .count()
            .await;
        let wall = start.elapsed();
        let sends = std::mem::take(&mut *sends.lock().unwrap());
        (sends, failures, wall)
    });

    assert_eq!(sends.len(), n);
    let first = sends[0];
    let span = *sends.last().unwrap() - first;
    let achieved = (n - 1) as f64 / span.as_secs_f64();
    let error = (achieved - rate) / rate * 100.0;
    println!(
        "rate_precision: target {rate}/s for {secs} s ({}), {n} requests, fan_out limit {limit}",
        if per_host { "per host" } else { "global" }
    );
    println!(
        "  achieved {achieved:.1}/s (error {error:+.3} %) — first to last send {span:.3?}, wall {wall:.3?}"
    );
    let whole = secs.floor() as u64;
    let per_second: Vec<usize> = (0..whole)
        .map(|s| {
            let lo = Duration::from_secs(s);
            let hi = Duration::from_secs(s + 1);
            sends
                .iter()
                .filter(|t| {
                    let d = **t - first;
                    d > lo && d <= hi
                })
                .count()
        })
        .collect();
    println!("  sent per second (after the first request): {per_second:?}");
    // The bound: never more than 1 + rate·t by time t.
    let worst = sends
        .iter()
        .enumerate()
        .map(|(i, t)| (i + 1) as f64 - (1.0 + rate * (*t - first).as_secs_f64()))
        .fold(f64::MIN, f64::max);
    println!("  most requests ahead of 1 + rate·t at any send: {worst:.2} (timestamps are taken after the permit; the first one's delay shows as a small positive value)");
    let max_gap = sends
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    println!("  longest gap between two sends: {max_gap:.2?}");
    println!(
        "  failed requests: {failures} ({:.3} %)",
        failures as f64 / n as f64 * 100.0
    );
    let ok = error.abs() <= 0.5;
    println!("  within 0.5 %: {}", if ok { "yes" } else { "NO" });
    drop(server);
}
