//! Quick start: build the default client, fetch one URL, then fan out 1,000 URLs with a
//! progress line and print the counts.
//!
//! The URLs point at a small local server the example starts itself (axum on 127.0.0.1, a free
//! port; see `mod server` at the bottom): no network needed.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! To use it as a program of your own, copy this file to `src/main.rs` with these dependencies:
//!
//! ```toml
//! [dependencies]
//! fastreq = "0.1"
//! tokio = { version = "1", features = ["macros", "rt-multi-thread", "net"] }
//! futures-util = "0.3"
//! axum = "0.8"   # for the local server only
//! ```

use std::collections::BTreeMap;

use futures_util::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A local server: `/missing/...` is 404, every other path a small JSON body.
    let server = server::start().await?;

    // The preset: concurrency 64, 3 retries with backoff, timeouts, redirects, cookies,
    // decompression, `User-Agent: fastreq/<version>`.
    let client = fastreq::stack().build()?;

    // One request, buffered.
    let page = client.get(format!("{server}/hello")).await?;
    println!(
        "GET {} -> {} ({} bytes)",
        page.final_url(),
        page.status(),
        page.body().len()
    );

    // 1,000 requests, pulled lazily, outcomes in completion order. Every tenth one asks
    // for a missing item, so the counts show more than one status.
    let total = 1_000;
    let urls = (0..total).map(|i| match i % 10 {
        0 => format!("{server}/missing/{i}"),
        _ => format!("{server}/items/{i}"),
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

/// The local server the example talks to (axum on 127.0.0.1). Nothing here is fastreq.
mod server {
    use axum::http::{header, StatusCode};
    use axum::routing::get;
    use axum::Router;

    /// Starts the server on a free port; returns its base URL, `http://127.0.0.1:PORT`.
    pub async fn start() -> std::io::Result<String> {
        let app = Router::new()
            .route("/missing/{id}", get(|| async { StatusCode::NOT_FOUND }))
            .fallback(|| async {
                let json = [(header::CONTENT_TYPE, "application/json")];
                (
                    json,
                    r#"{"ok":true,"message":"hello from the local server"}"#,
                )
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(url)
    }
}
