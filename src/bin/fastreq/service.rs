//! A thin service around the preset's buffered fetch that remembers, for the output line,
//! the request URL (redacted) and how long a failed request took.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use fastreq::{Body, Error, Fetched};
use http::Request;
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

/// Wraps a service of buffered fetches (`fastreq::Fetch<Client>`).
#[derive(Clone, Debug)]
pub struct Timed<S> {
    inner: S,
}

impl<S> Timed<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Timed { inner }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Service<Request<Body>> for Timed<S>
where
    S: Service<Request<Body>, Response = Fetched, Error = Error>,
    S::Future: Send + 'static,
{
    type Response = Sent;
    type Error = Failed;
    type Future = BoxFuture<Result<Sent, Failed>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Failed>> {
        self.inner.poll_ready(cx).map_err(Failed::from)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let url = fastreq::redact_url(&req.uri().to_string());
        let started = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            match fut.await {
                Ok(fetched) => Ok(Sent {
                    url,
                    // `Proxy`'s Display hides the password.
                    proxy: fetched.proxy().map(|p| p.to_string()),
                    fetched,
                }),
                Err(error) => Err(Failed {
                    attempts: error.attempts().unwrap_or(1).max(1),
                    // Set on every error of an attempt through a proxy.
                    proxy: error.proxy().map(|p| p.to_string()),
                    error,
                    url: Some(url),
                    elapsed: started.elapsed(),
                }),
            }
        })
    }
}
