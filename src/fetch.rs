//! Buffered fetching: [`get_all`], [`get_all_with`] and [`fetch`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::StreamExt;
use http::{Request, Response};
use tower_service::Service;

use crate::backend::Backend;
use crate::body::Body;
use crate::collect::CollectBody;
use crate::error::{BoxError, Error};
use crate::fan_out::{fan_out, DEFAULT_LIMIT};
use crate::response::Fetched;

/// Sends `req` through `service` and buffers the response into a [`Fetched`].
pub async fn fetch<S, B>(service: S, req: Request<Body>) -> Result<Fetched, Error>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: Into<Error>,
    B: http_body::Body + Send,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    use tower::ServiceExt;
    let mut req = req;
    req.extensions_mut().insert(CollectBody);
    let uri = req.uri().clone();
    let started = Instant::now();
    let wait = req.extensions().get::<crate::ext::WaitTime>().cloned();
    let resp = service.oneshot(req).await.map_err(Into::into)?;
    let fetched = Fetched::from_response(resp, &uri, started).await?;
    Ok(fetched.with_wait(wait))
}

/// GETs every URL with a default [`Backend`] and buffers the responses.
///
/// Returns one result per URL, in input order; duplicates are fetched separately. A URL
/// that does not parse gives an `InvalidRequest` error in its place. At most
/// [`DEFAULT_LIMIT`] requests run at once. Use [`get_all_with`] to pick the service (a
/// configured backend or a full stack) and the limit.
///
/// # Examples
///
/// ```no_run
/// # async fn run() {
/// let results = fastreq::get_all(["https://example.com/", "https://example.org/"]).await;
/// for r in results {
///     match r {
///         Ok(f) => println!("{} {} bytes", f.status(), f.body().len()),
///         Err(e) => println!("error: {e}"),
///     }
/// }
/// # }
/// ```
pub async fn get_all<I>(urls: I) -> Vec<Result<Fetched, Error>>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    get_all_with(Backend::new(), urls, DEFAULT_LIMIT).await
}

/// GETs every URL through `service`, at most `limit` at once, and buffers the responses.
///
/// See [`get_all`].
pub async fn get_all_with<S, B, I>(service: S, urls: I, limit: usize) -> Vec<Result<Fetched, Error>>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: Into<Error>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let urls = urls.into_iter();
    // Sized from the hint; grown (amortised) only when the hint falls short.
    let mut results: Vec<Option<Result<Fetched, Error>>> = Vec::with_capacity(urls.size_hint().0);
    let requests = urls.map(|u| crate::get(u).build());
    let mut outcomes = fan_out(Fetch::new(service), requests).limit(limit);
    while let Some(o) = outcomes.next().await {
        if results.len() <= o.index {
            results.resize_with(o.index + 1, || None);
        }
        results[o.index] = Some(o.result);
    }
    // Collected in place: `Option<Result<Fetched, Error>>` has the size and alignment of
    // `Result<Fetched, Error>` (a niche; see the size test in `response`), so the results
    // never exist twice.
    let mut results: Vec<Result<Fetched, Error>> = results
        .into_iter()
        .map(|r| r.expect("fan_out yields exactly one outcome per input"))
        .collect();
    // Only when growth overshot (an input without an exact size hint).
    results.shrink_to_fit();
    results
}

/// A service that buffers the inner service's responses into [`Fetched`].
///
/// Wrap a backend (or a whole stack) in it to fan out buffered fetches: each response body
/// is read inside its own request future, so bodies are read concurrently and the outcome
/// carries the elapsed time.
///
/// It marks every request with [`CollectBody`]: a [`Collect`](crate::collect::Collect)
/// layer below (the preset has one right inside its retry layer) then reads the body
/// inside the request, so a body that fails half way (a reset, a truncation) is retried
/// under the retry policy like a failed connection.
///
/// ```
/// use fastreq::{Body, Fetch, ResponseBody};
/// use futures_util::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let backend = tower::service_fn(|_req: http::Request<Body>| async {
///     Ok::<_, fastreq::Error>(http::Response::new(ResponseBody::from("hi")))
/// });
/// let urls = ["http://a.test/1", "http://a.test/2"];
/// let mut out = fastreq::fan_out(Fetch::new(backend), urls.map(fastreq::get));
/// while let Some(o) = out.next().await {
///     assert_eq!(o.result.unwrap().body(), b"hi");
/// }
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Fetch<S> {
    inner: S,
}

impl<S> Fetch<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Fetch { inner }
    }

    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<Request<Body>> for Fetch<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: Into<Error>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Fetched;
    type Error = Error;
    type Future = BoxFuture<Result<Fetched, Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        // A [`Collect`](crate::collect::Collect) layer below reads the body inside the
        // request, so that a retry layer above it retries a body that fails.
        req.extensions_mut().insert(CollectBody);
        let uri = req.uri().clone();
        let started = Instant::now();
        let wait = req.extensions().get::<crate::ext::WaitTime>().cloned();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await.map_err(Into::into)?;
            let fetched = Fetched::from_response(resp, &uri, started).await?;
            Ok(fetched.with_wait(wait))
        })
    }
}
