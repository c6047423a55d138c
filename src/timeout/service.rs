//! The [`Timeout`] service.

use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::TimeoutLayer;
use crate::error::Error;
use crate::ext::{Deadline, RequestTimeout};
use tokio::time::Instant;

/// Fails a request whose response headers do not arrive in time, and wraps the response
/// body in a [`TimeoutBody`](super::TimeoutBody) that fails when the body stalls.
///
/// Errors are [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) and carry the request URL
/// (redacted). See the [module docs](super).
#[derive(Clone, Debug)]
pub struct Timeout<S> {
    inner: S,
    config: TimeoutLayer,
}

impl<S> Timeout<S> {
    /// Wraps `inner` with the timeouts of `config`.
    pub fn new(inner: S, config: TimeoutLayer) -> Self {
        Timeout { inner, config }
    }

    /// The timeouts this service applies.
    pub fn config(&self) -> &TimeoutLayer {
        &self.config
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Timeout<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<Error>,
{
    type Response = Response<super::TimeoutBody<ResBody>>;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let headers = req
            .extensions()
            .get::<RequestTimeout>()
            .map(|t| t.0)
            .or(self.config.headers);
        let deadline = req.extensions().get::<Deadline>().map(|d| d.0);
        let uri = req.uri().clone();
        // The clock starts before the inner service sees the request; the request's
        // deadline, when it comes first, ends the wait for headers instead.
        let now = Instant::now();
        let (sleep, timeout) = match (headers.map(|h| super::deadline_after(now, h)), deadline) {
            (Some(at), Some(dl)) if at <= dl => (Some(at), headers),
            (_, Some(dl)) => (Some(dl), None),
            (at, None) => (at, headers),
        };
        let sleep = sleep.map(tokio::time::sleep_until);
        ResponseFuture::new(
            self.inner.call(req),
            sleep,
            timeout,
            deadline,
            self.config,
            uri,
        )
    }
}
