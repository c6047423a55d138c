//! Your own tower layers inside the preset, with `StackBuilder::layer_at`.
//!
//! Two hand-written layers:
//! - `ApiKeyLayer` adds an `x-api-key` header. Placed at `Position::PerAttempt`, it runs on
//!   every attempt (after each retry) and its header rides along every redirect hop.
//! - `LogLayer` prints and counts what passes through it. Placed at `Position::Top` it sees
//!   each request once; at `Position::PerAttempt` each attempt; at `Position::AroundBackend`
//!   each hop as it goes on the wire.
//!
//! A small local server started by the example itself (axum on 127.0.0.1, a free port; see
//! `mod server` at the bottom) wants the key on every path, answers the first call of
//! `/start` with 503 (retried), then redirects `/start` to `/end`: one request, two attempts,
//! three hops. No network needed.
//!
//! ```text
//! cargo run --example custom_layer
//! ```
//!
//! To use it as a program of your own, copy this file to `src/main.rs` with these dependencies:
//!
//! ```toml
//! [dependencies]
//! fastreq = "0.1"
//! tokio = { version = "1", features = ["macros", "rt-multi-thread", "net"] }
//! tower = "0.5"
//! http = "1"
//! axum = "0.8"   # for the local server only
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use fastreq::stack::Position;
use fastreq::{Body, ResponseBody};
use http::{HeaderValue, Request, Response};
use tower::{Layer, Service};

/// Adds an API key to every request that passes through it.
#[derive(Clone, Debug)]
struct ApiKeyLayer {
    key: HeaderValue,
}

#[derive(Clone, Debug)]
struct ApiKey<S> {
    inner: S,
    key: HeaderValue,
}

impl ApiKeyLayer {
    fn new(key: &str) -> Result<Self, http::header::InvalidHeaderValue> {
        let mut key = HeaderValue::from_str(key)?;
        key.set_sensitive(true); // never printed by `Debug`
        Ok(ApiKeyLayer { key })
    }
}

impl<S> Layer<S> for ApiKeyLayer {
    type Service = ApiKey<S>;
    fn layer(&self, inner: S) -> ApiKey<S> {
        ApiKey {
            inner,
            key: self.key.clone(),
        }
    }
}

impl<S, B> Service<Request<B>> for ApiKey<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> S::Future {
        req.headers_mut().insert("x-api-key", self.key.clone());
        self.inner.call(req)
    }
}

/// Prints each request and its outcome, and counts them.
#[derive(Clone, Debug)]
struct LogLayer {
    name: &'static str,
    count: Arc<AtomicUsize>,
}

impl LogLayer {
    fn new(name: &'static str) -> Self {
        LogLayer {
            name,
            count: Arc::default(),
        }
    }
    fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

#[derive(Clone, Debug)]
struct Log<S> {
    inner: S,
    layer: LogLayer,
}

impl<S> Layer<S> for LogLayer {
    type Service = Log<S>;
    fn layer(&self, inner: S) -> Log<S> {
        Log {
            inner,
            layer: self.clone(),
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Service<Request<Body>> for Log<S>
where
    S: Service<Request<Body>, Response = Response<ResponseBody>, Error = fastreq::Error>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let n = self.layer.count.fetch_add(1, Ordering::Relaxed) + 1;
        let line = format!(
            "[{:<14} #{n}] {} {}",
            self.layer.name,
            req.method(),
            req.uri()
        );
        let fut = self.inner.call(req);
        Box::pin(async move {
            let result = fut.await;
            match &result {
                Ok(resp) => println!("{line} -> {}", resp.status()),
                Err(err) => println!("{line} -> error: {err}"),
            }
            result
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `/start`: 503 the first time, then a redirect to `/end`. Every path needs the key.
    let server = server::start().await?;

    let top = LogLayer::new("Top");
    let per_attempt = LogLayer::new("PerAttempt");
    let on_the_wire = LogLayer::new("AroundBackend");
    let client = fastreq::stack()
        .backoff(Duration::from_millis(10), 2.0, Duration::from_millis(100))
        .layer_at(Position::Top, top.clone())
        .layer_at(Position::PerAttempt, ApiKeyLayer::new("s3cret")?)
        .layer_at(Position::PerAttempt, per_attempt.clone())
        .layer_at(Position::AroundBackend, on_the_wire.clone())
        .build()?;

    let page = client.get(format!("{}/start", server.url)).await?;
    println!(
        "\n{} from {} after {} attempts: {:?}",
        page.status(),
        page.final_url(),
        page.attempts(),
        page.text()
    );
    println!(
        "seen: Top {}, PerAttempt {}, AroundBackend {}; server hits {}",
        top.count(),
        per_attempt.count(),
        on_the_wire.count(),
        server.hits()
    );

    let counts = (top.count(), per_attempt.count(), on_the_wire.count());
    if page.status() != 200 || counts != (1, 2, 3) || server.hits() != 3 {
        return Err(format!("expected 200 and counts (1, 2, 3), got {counts:?}").into());
    }
    Ok(())
}

/// The local server the example talks to (axum on 127.0.0.1). Nothing here is fastreq.
mod server {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use axum::extract::State;
    use axum::http::{header, HeaderMap, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};
    use axum::Router;

    pub struct Server {
        /// `http://127.0.0.1:PORT`
        pub url: String,
        counts: Counts,
    }

    impl Server {
        /// Requests received so far.
        pub fn hits(&self) -> usize {
            self.counts.hits.load(Ordering::Relaxed)
        }
    }

    #[derive(Clone, Default)]
    struct Counts {
        hits: Arc<AtomicUsize>,
        starts: Arc<AtomicUsize>,
    }

    /// Starts the server on a free port.
    pub async fn start() -> std::io::Result<Server> {
        let counts = Counts::default();
        let app = Router::new().fallback(answer).with_state(counts.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Server { url, counts })
    }

    async fn answer(State(counts): State<Counts>, uri: Uri, headers: HeaderMap) -> Response {
        counts.hits.fetch_add(1, Ordering::Relaxed);
        if headers.get("x-api-key").map(|key| key.as_bytes()) != Some(b"s3cret") {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        match uri.path() {
            "/start" if counts.starts.fetch_add(1, Ordering::Relaxed) == 0 => {
                StatusCode::SERVICE_UNAVAILABLE.into_response()
            }
            "/start" => (StatusCode::FOUND, [(header::LOCATION, "/end")]).into_response(),
            _ => "the end".into_response(),
        }
    }
}
