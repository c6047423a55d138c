//! An axum app whose handler fans out to several upstreams through fastreq layers composed
//! in the app's own `ServiceBuilder` (with `ServiceBuilderExt`), and aggregates the answers.
//!
//! The upstreams are small local axum servers the example starts itself (127.0.0.1, free
//! ports; see `mod upstreams` at the bottom): `prices` answers at once, `stock` fails with 503
//! the first time (the retry layer takes care of it), `reviews` is slower than the per-hop
//! timeout (the handler reports it as unavailable). The example then calls its own
//! `/summary` endpoint once with a fastreq client and prints the answer. No network needed.
//!
//! ```text
//! cargo run --example axum_integration
//! ```
//!
//! To use it as a program of your own, copy this file to `src/main.rs` with these dependencies:
//!
//! ```toml
//! [dependencies]
//! fastreq = "0.1"
//! tokio = { version = "1", features = ["macros", "rt-multi-thread", "net", "time"] }
//! futures-util = "0.3"
//! tower = { version = "0.5", features = ["util"] }
//! http = "1"
//! axum = "0.8"
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use fastreq::builder_ext::ServiceBuilderExt;
use fastreq::concurrency::ConcurrencyLimitLayer;
use fastreq::rate_limit::RateLimitLayer;
use fastreq::retry::RetryLayer;
use fastreq::timeout::TimeoutLayer;
use fastreq::{Backend, Body, Fetch, Fetched};
use futures_util::StreamExt;
use tower::util::BoxCloneSyncService;
use tower::ServiceBuilder;

/// What the handler calls upstreams through: fastreq's layers over its backend, buffered.
type Upstream = BoxCloneSyncService<http::Request<Body>, Fetched, fastreq::Error>;

#[derive(Clone)]
struct AppState {
    upstream: Upstream,
    /// (name, URL) of each upstream.
    sources: Arc<Vec<(&'static str, String)>>,
}

/// `GET /summary`: asks every upstream at once and adds up their numbers.
async fn summary(State(app): State<AppState>) -> String {
    let requests = app.sources.iter().map(|(_, url)| fastreq::get(url));
    let outcomes: Vec<_> = fastreq::fan_out(app.upstream.clone(), requests)
        .ordered()
        .collect()
        .await;

    let mut text = String::new();
    let (mut total, mut answered) = (0, 0);
    for ((name, _), outcome) in app.sources.iter().zip(outcomes) {
        let value = outcome.result.and_then(|page| {
            let n = page.text().trim().parse::<u64>().map_err(|_| {
                fastreq::Error::new(fastreq::ErrorKind::Decode).with_message("not a number")
            })?;
            Ok((n, page.attempts()))
        });
        match value {
            Ok((n, attempts)) => {
                total += n;
                answered += 1;
                text += &format!("{name}: {n} ({attempts} attempt(s))\n");
            }
            Err(err) => text += &format!("{name}: unavailable ({})\n", err.kind()),
        }
    }
    text += &format!(
        "total: {total} from {answered} of {} upstreams\n",
        app.sources.len()
    );
    text
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The app's own stack: retry outermost, then a per-host rate limit, a concurrency limit
    // and a per-hop timeout over fastreq's backend; `Fetch` buffers each response.
    let upstream = ServiceBuilder::new()
        .layer(BoxCloneSyncService::layer())
        .layer_fn(Fetch::new)
        .retry_requests(
            RetryLayer::builder()
                .max_retries(2)
                .initial_backoff(Duration::from_millis(20))
                .build()?,
        )
        .limit_rate(RateLimitLayer::per_host(20.0))
        .limit_concurrency(ConcurrencyLimitLayer::new(16))
        .timeout_hops(TimeoutLayer::new(Duration::from_millis(200)))
        .service(Backend::new());

    let state = AppState {
        upstream,
        sources: Arc::new(upstreams::start().await?),
    };
    let app = Router::new()
        .route("/summary", get(summary))
        .with_state(state);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    // Call our own endpoint once, with a fastreq client.
    let client = fastreq::stack().build()?;
    let answer = client.get(format!("http://{addr}/summary")).await?;
    println!("GET /summary -> {}\n{}", answer.status(), answer.text());

    let expected = ["stock: 25 (2 attempt(s))", "reviews: unavailable (timeout)"];
    if !answer.text().contains("total: 42 from 2 of 3 upstreams")
        || !expected.iter().all(|line| answer.text().contains(line))
    {
        return Err("unexpected summary".into());
    }
    Ok(())
}

/// The upstreams, each a small axum server on 127.0.0.1. Nothing here is fastreq.
mod upstreams {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use axum::http::StatusCode;
    use axum::routing::get;
    use axum::Router;

    /// Starts the three upstreams; returns (name, URL) of each.
    pub async fn start() -> std::io::Result<Vec<(&'static str, String)>> {
        let prices = Router::new().route("/prices/{id}", get(|| async { "17" }));

        // 503 on the first call, then the answer.
        let calls = Arc::new(AtomicUsize::new(0));
        let stock = Router::new().route(
            "/stock/{id}",
            get(move || {
                let first = calls.fetch_add(1, Ordering::Relaxed) == 0;
                async move {
                    match first {
                        true => Err(StatusCode::SERVICE_UNAVAILABLE),
                        false => Ok("25"),
                    }
                }
            }),
        );

        let reviews = Router::new().route(
            "/reviews/{id}",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                "4"
            }),
        );

        Ok(vec![
            ("prices", format!("{}/prices/42", serve(prices).await?)),
            ("stock", format!("{}/stock/42", serve(stock).await?)),
            ("reviews", format!("{}/reviews/42", serve(reviews).await?)),
        ])
    }

    /// Serves `app` on a free port of 127.0.0.1; returns `http://127.0.0.1:PORT`.
    async fn serve(app: Router) -> std::io::Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(url)
    }
}
