//! [`TimeoutBody`]: a response body that fails when it stalls.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::{add_url, deadline_after, timeout_error};
use crate::error::{BoxError, Error};

pin_project! {
    /// A response body with an idle timeout and an optional total deadline.
    ///
    /// - **Idle**: when the body has waited `body_idle` for its next frame, it yields an
    ///   [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) error ("response body idle
    ///   for …"). The clock starts at the first poll and restarts at the first wait after
    ///   every frame (data or trailers), so only time spent waiting on the peer counts.
    /// - **Total** (off by default): the whole body must arrive within `body_total` of the
    ///   response headers, and by the request's [`Deadline`](crate::ext::Deadline) when it
    ///   has one (the retry layer's total deadline), whichever comes first.
    ///   response headers.
    ///
    /// After a timeout error the body is finished: it yields `None` and
    /// [`is_end_stream`](Body::is_end_stream) is true. Errors of the inner body are turned
    /// into fastreq [`Error`]s (their kind kept) that carry the request URL.
    ///
    /// One [`Sleep`] per body, created at the first wait and moved with
    /// [`Sleep::reset`]; frames that arrive back to back cost no clock read.
    pub struct TimeoutBody<B> {
        #[pin]
        inner: B,
        // Boxed: most bodies never wait, and the response moves through every layer above.
        sleep: Option<Pin<Box<Sleep>>>,
        idle: Option<Duration>,
        // When the current wait times out; `None` until the next wait starts.
        idle_deadline: Option<Instant>,
        // When the body must be complete, and the `body_total` behind it (`None`: the
        // request's deadline).
        total: Option<(Option<Duration>, Instant)>,
        uri: Option<Uri>,
        done: bool,
    }
}

impl<B> TimeoutBody<B> {
    pub(super) fn new(
        inner: B,
        idle: Option<Duration>,
        // When the body must be complete, and the `body_total` behind it (`None`: the
        // request's deadline).
        total: Option<(Option<Duration>, Instant)>,
        uri: Option<Uri>,
    ) -> Self {
        TimeoutBody {
            inner,
            sleep: None,
            idle,
            idle_deadline: None,
            total,
            uri,
            done: false,
        }
    }

    /// The idle timeout applied to this body.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle
    }

    /// The inner body.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }

    /// Unwraps the inner body (its timeouts no longer apply).
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B> fmt::Debug for TimeoutBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutBody")
            .field("idle", &self.idle)
            .field("total", &self.total.map(|t| t.0))
            .finish_non_exhaustive()
    }
}

impl<B> Body for TimeoutBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                *this.idle_deadline = None;
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(Some(Err(e))) => {
                let err = add_url(Error::from_boxed(e.into()), this.uri.as_ref());
                return Poll::Ready(Some(Err(err)));
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }

        // Waiting for the peer: arm the idle clock if this wait just started.
        if let (Some(idle), None) = (*this.idle, *this.idle_deadline) {
            *this.idle_deadline = Some(deadline_after(Instant::now(), idle));
        }
        let target = match (*this.idle_deadline, this.total.map(|t| t.1)) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return Poll::Pending,
        };
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(target)));
        // The sleep's deadline is never later than `target` (deadlines only move forward),
        // so it is reset lazily: only when it fires before the current deadline.
        // Bounded: after a reset to a future instant the sleep is pending.
        for _ in 0..4 {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            if let Some((total, deadline)) = *this.total {
                if now >= deadline {
                    *this.done = true;
                    let message = match total {
                        Some(total) => format!("response body not complete within {total:?}"),
                        None => "the request's deadline passed while the response body was read"
                            .to_owned(),
                    };
                    return Poll::Ready(Some(Err(timeout_error(message, this.uri.as_ref()))));
                }
            }
            if let (Some(idle), Some(deadline)) = (*this.idle, *this.idle_deadline) {
                if now >= deadline {
                    *this.done = true;
                    let message = format!("response body idle for {idle:?}");
                    return Poll::Ready(Some(Err(timeout_error(message, this.uri.as_ref()))));
                }
            }
            sleep.as_mut().reset(target);
        }
        // Unreachable in practice (the clock would have to stand still at a fired sleep);
        // ask to be polled again rather than spin.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.done {
            SizeHint::with_exact(0)
        } else {
            self.inner.size_hint()
        }
    }
}
