//! The fastreq demo: no network needed.
//!
//! Starts a local HTTP server (127.0.0.1, random port) with injected faults and two local
//! HTTP proxies, then fans out 20,000 requests through the full preset (`fastreq::stack()`:
//! retries with backoff, random user agents, a proxy pool for part of the traffic, cookies,
//! redirects, decompression, concurrency limit, timeouts), printing a progress line and a
//! summary: successes, HTTP statuses, errors by kind, retries, proxy use, requests per second
//! and latency percentiles.
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

use fastreq::proxy::{SelectedProxy, Strategy};
use futures::StreamExt;
use support::proxy::TestProxy;

/// What request `i` asks the local server for: most succeed, some fail on purpose.
fn request_for(i: usize, server: &support::TestServer, closed: &str) -> fastreq::RequestBuilder {
    let url = match i % 100 {
        // Fails twice, then the retry layer gets a 200.
        0..=1 => server.url(&format!("/flaky/{i}")),
        2 => server.url(&format!("/item/{i}?status=503")),
        3 => server.url(&format!("/item/{i}?status=429")),
        4 => server.url(&format!("/item/{i}?status=404")),
        5 => server.url(&format!("/item/{i}?fail=reset")),
        6 => server.url(&format!("/item/{i}?fail=truncate")),
        7 => server.url(&format!("/item/{i}?delay_ms=50")),
        8 if i % 1000 == 8 => format!("{closed}/item/{i}"),
        9 if i % 1000 == 9 => "http://bad url/".to_owned(),
        10 => server.url(&format!("/item/{i}?gzip=1&bytes=2000")),
        12 => server.url(&format!("/item/{i}?status=302&location=/landed/{i}")),
        // Slower than the per-request timeout below: a Timeout error.
        11 if i % 500 == 11 => server.url(&format!("/item/{i}?delay_ms=2000")),
        _ => server.url(&format!("/item/{i}")),
    };
    let req = fastreq::get(url).timeout(Duration::from_millis(500));
    // One request in five goes through the proxy pool; the rest go direct.
    if i % 5 == 0 {
        req
    } else {
        req.no_proxy()
    }
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

    let flaky = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let server = support::TestServer::builder()
        .track_paths(false)
        .start(move |req| {
            if req.path().starts_with("/flaky/") {
                let mut seen = flaky.lock().unwrap();
                let n = seen.entry(req.path().to_owned()).or_insert(0u32);
                *n += 1;
                if *n <= 2 {
                    return support::Reply::status(503);
                }
            }
            support::route(&req)
        });
    let proxies = [TestProxy::http().start(), TestProxy::http().start()];
    let closed = format!("http://{}", support::closed_port());
    println!(
        "fastreq demo: {total} requests to a local server at {} through the full preset \
         (concurrency {concurrency}, random user agents, 2 local proxies for 1 request in 5, \
         ~10% faults injected)",
        server.url("")
    );

    let client = fastreq::stack()
        .concurrency(concurrency)
        .retries(2)
        .backoff(Duration::from_millis(5), 2.0, Duration::from_millis(50))
        .random_user_agent()
        .proxy_lines(&format!("{}\n{}", proxies[0].url(), proxies[1].url()))
        .proxy_strategy(Strategy::RoundRobin)
        .build()?;
    let requests = (0..total).map(|i| {
        let req = request_for(i, &server, &closed).build()?;
        Ok::<_, fastreq::Error>(req)
    });
    let mut outcomes =
        fastreq::fan_out(RecordProxy(client.clone()), requests).limit(client.fan_out_limit());
    let progress = outcomes.progress();

    let started = Instant::now();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut errors: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut example_errors: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut latencies = Vec::with_capacity(total);
    let mut bytes = 0usize;
    let mut retried = 0usize;
    let mut via_proxy = 0usize;
    let mut last_print = Instant::now();
    let stderr = std::io::stderr();

    while let Some(outcome) = outcomes.next().await {
        match outcome.result {
            Ok((fetched, proxy)) => {
                *statuses.entry(fetched.status().as_u16()).or_default() += 1;
                retried += usize::from(fetched.attempts() > 1);
                via_proxy += usize::from(proxy);
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
    println!("retried       {retried} responses needed more than one attempt");
    println!(
        "proxies       {via_proxy} responses came through the pool (proxy 1 forwarded {}, proxy 2 {})",
        proxies[0].forwarded(),
        proxies[1].forwarded()
    );
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

/// Buffers each response and notes whether it went through a proxy of the pool.
#[derive(Clone)]
struct RecordProxy(fastreq::Client);

impl tower::Service<http::Request<fastreq::Body>> for RecordProxy {
    type Response = (fastreq::Fetched, bool);
    type Error = fastreq::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, fastreq::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), fastreq::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<fastreq::Body>) -> Self::Future {
        let uri = req.uri().clone();
        let started = Instant::now();
        let fut = self.0.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            let proxied = resp.extensions().get::<SelectedProxy>().is_some();
            let fetched = fastreq::Fetched::from_response(resp, &uri, started).await?;
            Ok((fetched, proxied))
        })
    }
}
