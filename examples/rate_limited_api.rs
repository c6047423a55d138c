//! Calling a rate-limited API: a per-host rate limit, retries that honour `Retry-After`, and
//! a rate changed at run time.
//!
//! The local "API" counts calls per one-second window and answers `429 Too Many Requests`
//! with `Retry-After: 1` past its quota. The client limits itself to the quota with
//! `per_host_rate_limit`; its burst of 5 deliberately overshoots the first window, so a few
//! 429s show how they are handled: the request is retried after `Retry-After`, and the
//! host's bucket pauses meanwhile, so every call succeeds. Then the API raises the quota
//! and the client follows through its `rate_limit_handle()`. No network needed; about 6 s.
//!
//! ```text
//! cargo run --example rate_limited_api
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fastreq::Client;
use futures::StreamExt;
use support::{Reply, TestServer};

/// The API's side: a quota per one-second window.
struct Quota {
    per_second: AtomicU64,
    started: Instant,
    /// (window number, calls accepted in it)
    window: Mutex<(u64, u64)>,
    rejected: AtomicU64,
}

impl Quota {
    fn admit(&self) -> bool {
        let now = self.started.elapsed().as_secs();
        let mut window = self.window.lock().unwrap();
        if window.0 != now {
            *window = (now, 0);
        }
        if window.1 < self.per_second.load(Ordering::Relaxed) {
            window.1 += 1;
            true
        } else {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

/// Makes `count` calls and prints what it took. Returns the achieved rate (calls per second).
async fn run(
    client: &Client,
    api: &TestServer,
    quota: &Quota,
    count: usize,
) -> Result<f64, String> {
    let rejected_before = quota.rejected.load(Ordering::Relaxed);
    let started = Instant::now();
    let urls = (0..count).map(|i| api.url(&format!("/v1/items/{i}")));
    let mut outcomes = client.fan_out(urls.map(fastreq::get));
    let (mut ok, mut attempts) = (0, 0);
    while let Some(outcome) = outcomes.next().await {
        let page = outcome.result.map_err(|e| e.to_string())?;
        if page.status() == 200 {
            ok += 1;
        }
        attempts += page.attempts();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = ok as f64 / elapsed;
    let rejected = quota.rejected.load(Ordering::Relaxed) - rejected_before;
    println!(
        "  {ok}/{count} succeeded in {elapsed:.2} s = {rate:.1} calls/s; \
         {rejected} answered 429, {attempts} attempts in all"
    );
    if ok != count || attempts as u64 != count as u64 + rejected {
        return Err(format!(
            "expected {count} successes, each 429 retried once more"
        ));
    }
    Ok(rate)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quota = Arc::new(Quota {
        per_second: AtomicU64::new(20),
        started: Instant::now(),
        window: Mutex::new((0, 0)),
        rejected: AtomicU64::new(0),
    });
    let api = TestServer::start({
        let quota = quota.clone();
        move |_| match quota.admit() {
            true => Reply::json(r#"{"ok":true}"#),
            false => Reply::status(429).header("retry-after", "1"),
        }
    });

    let client = fastreq::stack()
        .per_host_rate_limit(20.0)
        .burst(5)
        .retries(5)
        .backoff(Duration::from_millis(50), 2.0, Duration::from_secs(2))
        .build()?;

    println!("quota 20/s, client at 20/s with a burst of 5:");
    let slow = run(&client, &api, &quota, 60).await?;

    // The API raises our quota; follow it without rebuilding the client.
    quota.per_second.store(50, Ordering::Relaxed);
    let handle = client.rate_limit_handle().ok_or("no rate limit set")?;
    handle.set_per_host_rate(50.0)?;
    println!("quota 50/s, client changed to 50/s at run time:");
    let fast = run(&client, &api, &quota, 100).await?;

    if slow > 20.0 * 1.25 || fast > 50.0 * 1.25 || fast <= slow {
        return Err(format!("rates {slow:.1}/s and {fast:.1}/s do not follow the limits").into());
    }
    Ok(())
}
