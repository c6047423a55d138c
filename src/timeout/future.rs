//! The response future of [`Timeout`](super::Timeout).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Response, Uri};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::body::TimeoutBody;
use super::layer::TimeoutLayer;
use super::{add_url, timeout_error};
use crate::error::Error;

pin_project! {
    /// The response future of [`Timeout`](super::Timeout): the inner future raced against
    /// one [`Sleep`] (no allocation). Inner errors keep their kind and get the request URL
    /// when they have none.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Option<Sleep>,
        // `None` with a sleep: the sleep is the request's deadline.
        timeout: Option<Duration>,
        deadline: Option<Instant>,
        config: TimeoutLayer,
        uri: Option<Uri>,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(
        inner: F,
        sleep: Option<Sleep>,
        timeout: Option<Duration>,
        deadline: Option<Instant>,
        config: TimeoutLayer,
        uri: Uri,
    ) -> Self {
        ResponseFuture {
            inner,
            sleep,
            timeout,
            deadline,
            config,
            uri: Some(uri),
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("timeout::ResponseFuture")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<Error>,
{
    type Output = Result<Response<TimeoutBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The inner future first: a response ready at the deadline instant wins.
        match this.inner.poll(cx) {
            Poll::Ready(Ok(resp)) => {
                let uri = this.uri.take();
                let config = this.config;
                let total = config
                    .body_total
                    .map(|d| (Some(d), super::deadline_after(Instant::now(), d)));
                // The request's deadline, when it comes first, ends the body too.
                let total = match (total, *this.deadline) {
                    (Some((d, at)), Some(dl)) if at <= dl => Some((d, at)),
                    (_, Some(dl)) => Some((None, dl)),
                    (t, None) => t,
                };
                Poll::Ready(Ok(
                    resp.map(|body| TimeoutBody::new(body, config.body_idle, total, uri))
                ))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(add_url(e.into(), this.uri.as_ref()))),
            Poll::Pending => match this.sleep.as_pin_mut().map(|s| s.poll(cx)) {
                Some(Poll::Ready(())) => {
                    let message = match this.timeout {
                        Some(t) => format!("no response headers within {t:?}"),
                        None => {
                            "the request's deadline passed before the response headers".to_owned()
                        }
                    };
                    Poll::Ready(Err(timeout_error(message, this.uri.as_ref())))
                }
                _ => Poll::Pending,
            },
        }
    }
}
