//! Quick start: build the default client, fetch one URL, then fan out 1,000 URLs with a
//! progress line and print the counts.
//!
//! Runs against a local test server (127.0.0.1, random port): no network needed.
//!
//! ```text
//! cargo run --example quickstart
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;

use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A local server answering every path with a small JSON body; `?status=N` picks a status.
    let server = support::TestServer::routes();

    // The preset: concurrency 64, 3 retries with backoff, timeouts, redirects, cookies,
    // decompression, `User-Agent: fastreq/<version>`.
    let client = fastreq::stack().build()?;

    // One request, buffered.
    let page = client.get(server.url("/hello")).await?;
    println!(
        "GET {} -> {} ({} bytes)",
        page.final_url(),
        page.status(),
        page.body().len()
    );

    // 1,000 requests, pulled lazily, outcomes in completion order. Every tenth one asks
    // for a 404 so the counts show more than one status.
    let total = 1_000;
    let urls = (0..total).map(|i| match i % 10 {
        0 => server.url(&format!("/items/{i}?status=404")),
        _ => server.url(&format!("/items/{i}")),
    });
    let mut outcomes = client.fan_out(urls.map(fastreq::get));
    let progress = outcomes.progress();

    let mut statuses = BTreeMap::new();
    let mut errors = 0;
    while let Some(outcome) = outcomes.next().await {
        match outcome.result {
            Ok(fetched) => *statuses.entry(fetched.status().as_u16()).or_insert(0) += 1,
            Err(err) => {
                eprintln!("#{} failed ({}): {err}", outcome.index, err.kind());
                errors += 1;
            }
        }
        if progress.completed() % 250 == 0 {
            println!(
                "progress: {}/{total} done, {} failed",
                progress.completed(),
                progress.failed()
            );
        }
    }

    println!("statuses: {statuses:?}, errors: {errors}");
    if statuses.get(&200) != Some(&900) || statuses.get(&404) != Some(&100) || errors != 0 {
        return Err("expected 900 × 200 and 100 × 404".into());
    }
    Ok(())
}
