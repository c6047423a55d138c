//! The fastreq demo: no network needed.
//!
//! Starts a local HTTP server (127.0.0.1, random port) with injected faults, then fans out
//! 20,000 requests through the fastreq backend, printing a progress line and a summary:
//! successes, HTTP statuses, errors by kind, requests per second and latency percentiles.
//!
//! ```text
//! cargo run --release --example demo            # 20,000 requests
//! cargo run --release --example demo -- 100000  # another count
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use fastreq::{Backend, Fetch};
use futures::StreamExt;

/// What request `i` asks the local server for: most succeed, some fail on purpose.
fn request_for(i: usize, server: &support::TestServer, closed: &str) -> fastreq::RequestBuilder {
    let url = match i % 100 {
        0..=2 => server.url(&format!("/item/{i}?status=503")),
        3 => server.url(&format!("/item/{i}?status=429")),
        4 => server.url(&format!("/item/{i}?status=404")),
        5 => server.url(&format!("/item/{i}?fail=reset")),
        6 => server.url(&format!("/item/{i}?fail=truncate")),
        7 => server.url(&format!("/item/{i}?delay_ms=50")),
        8 if i % 1000 == 8 => format!("{closed}/item/{i}"),
        9 if i % 1000 == 9 => "http://bad url/".to_owned(),
        10 => server.url(&format!("/item/{i}?gzip=1&bytes=2000")),
        // Slower than the per-request timeout below: a Timeout error.
        11 if i % 500 == 11 => server.url(&format!("/item/{i}?delay_ms=2000")),
        _ => server.url(&format!("/item/{i}")),
    };
    fastreq::get(url).timeout(Duration::from_millis(500))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total: usize = match std::env::args().nth(1) {
        Some(n) => n.parse().map_err(|_| format!("not a request count: {n}"))?,
        None => 20_000,
    };
    let concurrency = 64;

    let server = support::TestServer::builder().track_paths(false).routes();
    let closed = format!("http://{}", support::closed_port());
    println!(
        "fastreq demo: {total} requests to a local server at {} (concurrency {concurrency}, ~10% faults injected)",
        server.url("")
    );

    let backend = Backend::builder().build()?;
    let requests = (0..total).map(|i| request_for(i, &server, &closed));
    let mut outcomes = fastreq::fan_out(Fetch::new(backend), requests).limit(concurrency);
    let progress = outcomes.progress();

    let started = Instant::now();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut errors: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut example_errors: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut latencies = Vec::with_capacity(total);
    let mut bytes = 0usize;
    let mut last_print = Instant::now();
    let stderr = std::io::stderr();

    while let Some(outcome) = outcomes.next().await {
        match outcome.result {
            Ok(fetched) => {
                *statuses.entry(fetched.status().as_u16()).or_default() += 1;
                latencies.push(fetched.elapsed());
                bytes += fetched.body().len();
            }
            Err(err) => {
                let kind = err.kind().as_str();
                *errors.entry(kind).or_default() += 1;
                example_errors
                    .entry(kind)
                    .or_insert_with(|| err.to_string());
            }
        }
        if last_print.elapsed() >= Duration::from_millis(200) {
            last_print = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            let mut e = stderr.lock();
            let _ = write!(
                e,
                "\r{:>6}/{total} done  {:>5} errors  {:>7.0} req/s  {:>3} in flight ",
                progress.completed(),
                progress.failed(),
                progress.completed() as f64 / secs,
                progress.in_flight(),
            );
            let _ = e.flush();
        }
    }
    let elapsed = started.elapsed();
    eprintln!("\r{:>6}/{total} done{:40}", progress.completed(), "");

    latencies.sort_unstable();
    let responses: usize = statuses.values().sum();
    let failed: usize = errors.values().sum();
    println!();
    println!("requests      {total}");
    println!(
        "responses     {responses} (any HTTP status), {} bytes of body",
        bytes
    );
    for (status, n) in &statuses {
        println!("  status {status}  {n}");
    }
    println!("errors        {failed}");
    for (kind, n) in &errors {
        println!("  {kind:<16} {n:>6}   e.g. {}", example_errors[kind]);
    }
    println!(
        "throughput    {:.0} req/s ({:.2} s)",
        total as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "latency       p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms",
        percentile(&latencies, 50.0).as_secs_f64() * 1e3,
        percentile(&latencies, 90.0).as_secs_f64() * 1e3,
        percentile(&latencies, 99.0).as_secs_f64() * 1e3,
    );
    if responses + failed != total {
        return Err(format!("lost outcomes: {} of {total}", responses + failed).into());
    }
    println!("every request got exactly one outcome.");
    Ok(())
}
