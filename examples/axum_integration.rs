//! An axum app whose handler fans out to several upstreams through fastreq layers composed
//! in the app's own `ServiceBuilder` (with `ServiceBuilderExt`), and aggregates the answers.
//!
//! The upstreams are local test servers: `prices` answers at once, `stock` fails with 503
//! the first time (the retry layer takes care of it), `reviews` is slower than the per-hop
//! timeout (the handler reports it as unavailable). The example then calls its own
//! `/summary` endpoint once with a fastreq client and prints the answer. No network needed.
//!
//! ```text
//! cargo run --example axum_integration
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
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
use futures::StreamExt;
use support::{Reply, TestServer};
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
    let prices = TestServer::start(|_| Reply::text("17"));
    let stock_calls = AtomicUsize::new(0);
    let stock = TestServer::start(move |_| match stock_calls.fetch_add(1, Ordering::Relaxed) {
        0 => Reply::status(503),
        _ => Reply::text("25"),
    });
    let reviews = TestServer::start(|_| Reply::text("4").delay(Duration::from_secs(2)));

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
        sources: Arc::new(vec![
            ("prices", prices.url("/prices/42")),
            ("stock", stock.url("/stock/42")),
            ("reviews", reviews.url("/reviews/42")),
        ]),
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
