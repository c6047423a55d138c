//! Calling a rate-limited API: a per-host rate limit, retries that honour `Retry-After`, and
//! a rate changed at run time.
//!
//! The "API" is a small local server the example starts itself (axum on 127.0.0.1, a free
//! port; see `mod api` at the bottom). It counts calls per one-second window and answers
//! `429 Too Many Requests` with `Retry-After: 1` past its quota. The client limits itself to
//! the quota with `per_host_rate_limit`; its burst of 5 deliberately overshoots the first
//! window, so a few 429s show how they are handled: the request is retried after
//! `Retry-After`, and the host's bucket pauses meanwhile, so every call succeeds. Then the API
//! raises the quota and the client follows through its `rate_limit_handle()`. No network
//! needed; about 6 s.
//!
//! ```text
//! cargo run --example rate_limited_api
//! ```
//!
//! To use it as a program of your own, copy this file to `src/main.rs` with these dependencies:
//!
//! ```toml
//! [dependencies]
//! fastreq = "0.1"
//! tokio = { version = "1", features = ["macros", "rt-multi-thread", "net"] }
//! futures-util = "0.3"
//! axum = "0.8"   # for the local API only
//! ```

use std::time::{Duration, Instant};

use fastreq::Client;
use futures_util::StreamExt;

/// Makes `count` calls and prints what it took. Returns the achieved rate (calls per second).
async fn run(client: &Client, api: &api::Api, count: usize) -> Result<f64, String> {
    let rejected_before = api.rejected();
    let started = Instant::now();
    let urls = (0..count).map(|i| format!("{}/v1/items/{i}", api.url));
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
    let rejected = api.rejected() - rejected_before;
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
    let api = api::start(20).await?;

    let client = fastreq::stack()
        .per_host_rate_limit(20.0)
        .burst(5)
        .retries(5)
        .backoff(Duration::from_millis(50), 2.0, Duration::from_secs(2))
        .build()?;

    println!("quota 20/s, client at 20/s with a burst of 5:");
    let slow = run(&client, &api, 60).await?;

    // The API raises our quota; follow it without rebuilding the client.
    api.set_quota(50);
    let handle = client.rate_limit_handle().ok_or("no rate limit set")?;
    handle.set_per_host_rate(50.0)?;
    println!("quota 50/s, client changed to 50/s at run time:");
    let fast = run(&client, &api, 100).await?;

    if slow > 20.0 * 1.25 || fast > 50.0 * 1.25 || fast <= slow {
        return Err(format!("rates {slow:.1}/s and {fast:.1}/s do not follow the limits").into());
    }
    Ok(())
}

/// The API's side: a small axum server on 127.0.0.1 with a quota of calls per one-second
/// window. Nothing here is fastreq.
mod api {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    use axum::Router;

    pub struct Api {
        /// `http://127.0.0.1:PORT`
        pub url: String,
        quota: Arc<Quota>,
    }

    impl Api {
        /// Calls admitted per one-second window from now on.
        pub fn set_quota(&self, per_second: u64) {
            self.quota.per_second.store(per_second, Ordering::Relaxed);
        }

        /// Calls answered 429 so far.
        pub fn rejected(&self) -> u64 {
            self.quota.rejected.load(Ordering::Relaxed)
        }
    }

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

    /// Starts the API on a free port with a quota of `per_second` calls per window.
    pub async fn start(per_second: u64) -> std::io::Result<Api> {
        let quota = Arc::new(Quota {
            per_second: AtomicU64::new(per_second),
            started: Instant::now(),
            window: Mutex::new((0, 0)),
            rejected: AtomicU64::new(0),
        });
        let q = quota.clone();
        let app = Router::new().fallback(move || {
            let response = match q.admit() {
                true => (
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"ok":true}"#,
                )
                    .into_response(),
                false => {
                    (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")]).into_response()
                }
            };
            async move { response }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Api { url, quota })
    }
}
