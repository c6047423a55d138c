//! A thin service around the preset's buffered fetch that remembers, for the output line,
//! the request URL (redacted) and how long a failed request took, and that cancels every
//! request still running when the run is stopped.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use fastreq::ext::WaitTime;
use fastreq::{Body, Error, Fetched};
use http::Request;
use tokio::sync::watch;
use tower::Service;

/// A request that got an HTTP response (any status).
#[derive(Debug)]
pub struct Sent {
    /// The request URL, redacted.
    pub url: String,
    /// The proxy used, redacted (`None`: direct).
    pub proxy: Option<String>,
    /// The buffered response.
    pub fetched: Fetched,
}

/// A request that failed, or an input line that is not a valid request.
#[derive(Debug)]
pub struct Failed {
    /// Why.
    pub error: Error,
    /// The request URL, redacted, when there is one.
    pub url: Option<String>,
    /// The proxy used, redacted (`None`: direct or not sent).
    pub proxy: Option<String>,
    /// Time from sending to the failure (zero when never sent).
    pub elapsed: Duration,
    /// The part of `elapsed` spent waiting (rate limits, slots, proxies, backoff).
    pub wait: Duration,
    /// Attempts made (0 when never sent).
    pub attempts: u32,
}

impl Failed {
    /// A failure before sending (an invalid input line).
    pub fn unsent(error: Error, url: Option<String>) -> Self {
        Failed {
            error,
            url,
            proxy: None,
            elapsed: Duration::ZERO,
            wait: Duration::ZERO,
            attempts: 0,
        }
    }
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        let url = error.url().map(fastreq::redact_url);
        Failed::unsent(error, url)
    }
}

/// An input without a response: the error of its fan-out outcome.
#[derive(Debug)]
pub enum NoResponse {
    /// It failed, or its line is not a valid request: an output line with an error.
    Failed(Failed),
    /// `--resume`: the output already has its outcome. No line.
    Skipped,
    /// The run was stopped (a signal) before it finished. No line.
    Cancelled,
}

impl From<Failed> for NoResponse {
    fn from(failed: Failed) -> Self {
        NoResponse::Failed(failed)
    }
}

thread_local! {
    // One per thread: no shared counter bumped per request.
    static REDACTOR: fastreq::Redactor = fastreq::Redactor::default();
}

/// `url` redacted (userinfo, secret parameters), borrowed when there is nothing to hide.
pub fn redact(url: &str) -> Cow<'_, str> {
    REDACTOR.with(|r| r.redact_cow(url))
}

/// The URL an output line records for `req`: redacted.
pub fn request_url<B>(req: &Request<B>) -> String {
    let uri = req.uri();
    // What `Uri`'s `Display` writes, without the formatting machinery (once per request).
    let url = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => {
            let (path, query) = (uri.path(), uri.query());
            let mut s = String::with_capacity(
                scheme.len()
                    + 3
                    + authority.as_str().len()
                    + path.len()
                    + query.map_or(0, |q| q.len() + 1),
            );
            s.push_str(scheme);
            s.push_str("://");
            s.push_str(authority.as_str());
            s.push_str(path);
            if let Some(q) = query {
                s.push('?');
                s.push_str(q);
            }
            s
        }
        _ => uri.to_string(),
    };
    REDACTOR.with(|r| r.redact_owned(url))
}

/// Resolves when `stop` turns true; never if its sender is gone without that.
pub async fn stopped(mut stop: watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Wraps a service of buffered fetches (`fastreq::Fetch<Client>`).
///
/// Once `stop` turns true, a request that has not finished ends as
/// [`NoResponse::Cancelled`] (one that has finished keeps its result), and a new one is
/// cancelled without reaching the inner service.
#[derive(Clone, Debug)]
pub struct Timed<S> {
    inner: S,
    stop: watch::Receiver<bool>,
    /// How many requests are waiting now (rate, slot, proxy, backoff), for the progress.
    waiting: Arc<AtomicU64>,
}

impl<S> Timed<S> {
    /// Wraps `inner`; `stop` cancels; `waiting` counts the requests waiting now.
    pub fn new(inner: S, stop: watch::Receiver<bool>, waiting: Arc<AtomicU64>) -> Self {
        Timed {
            inner,
            stop,
            waiting,
        }
    }

    fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Service<Request<Body>> for Timed<S>
where
    S: Service<Request<Body>, Response = Fetched, Error = Error>,
    S::Future: Send + 'static,
{
    type Response = Sent;
    type Error = NoResponse;
    type Future = BoxFuture<Result<Sent, NoResponse>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), NoResponse>> {
        if self.is_stopped() {
            // `call` will not reach the inner service: no need to wait for it.
            return Poll::Ready(Ok(()));
        }
        self.inner
            .poll_ready(cx)
            .map_err(|e| NoResponse::Failed(e.into()))
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        if self.is_stopped() {
            return Box::pin(std::future::ready(Err(NoResponse::Cancelled)));
        }
        let url = request_url(&req);
        // Filled by the layers that make the request wait; read back for "wait_ms".
        let wait = WaitTime::with_gauge(self.waiting.clone());
        req.extensions_mut().insert(wait.clone());
        let started = Instant::now();
        let fut = self.inner.call(req);
        let stop = self.stop.clone();
        Box::pin(async move {
            let result = tokio::select! {
                // A request that has finished keeps its result.
                biased;
                result = fut => result,
                _ = stopped(stop) => return Err(NoResponse::Cancelled),
            };
            match result {
                Ok(fetched) => Ok(Sent {
                    url,
                    // `Proxy`'s Display hides the password.
                    proxy: fetched.proxy().map(|p| p.to_string()),
                    fetched,
                }),
                Err(error) => Err(NoResponse::Failed(Failed {
                    attempts: error.attempts().unwrap_or(1).max(1),
                    // Set on every error of an attempt through a proxy.
                    proxy: error.proxy().map(|p| p.to_string()),
                    error,
                    url: Some(url),
                    elapsed: started.elapsed(),
                    wait: wait.get(),
                })),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_url_is_the_redacted_display_of_the_uri() {
        for url in [
            "http://h.test/",
            "http://h.test",
            "https://h.test:8443/a/b?x=1&y=2",
            "http://u:secret@h.test/p?token=abc&q=1#frag",
            "http://[::1]:8080/p?api_key=1",
            "http://h.test/a%20b?q=%22",
        ] {
            let req = Request::get(url).body(()).unwrap();
            let expected = fastreq::redact_url(&req.uri().to_string());
            assert_eq!(request_url(&req), expected, "{url}");
            assert!(!request_url(&req).contains("secret"));
        }
        assert!(matches!(redact("http://h.test/?q=1"), Cow::Borrowed(_)));
        assert_eq!(
            redact("http://h.test/?token=1"),
            "http://h.test/?token=REDACTED"
        );
    }
}
