//! [`ConcurrencyLimitBody`]: a response body that holds its request's concurrency slots.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::acquire::Permit;
use crate::error::{BoxError, Error};

/// The slots one request holds: a global permit and a per-host permit, each if configured.
/// Held only to be dropped: dropping them releases the slots.
#[derive(Default)]
pub(super) struct Permits {
    pub(super) _global: Option<Permit>,
    pub(super) _host: Option<Permit>,
}

pin_project! {
    /// A response body holding the concurrency permits of its request until it is
    /// finished.
    ///
    /// The permits are released, at the latest, when:
    /// - the body yields its end (`None`), or a frame after which
    ///   [`is_end_stream`](Body::is_end_stream) is true;
    /// - the body yields an error;
    /// - the body is dropped (read or not).
    ///
    /// A body that is already at its end when the response arrives (empty, `HEAD`, `204`)
    /// releases them at once. So does [`into_inner`](Self::into_inner).
    ///
    /// **An unread response keeps its permits until it is dropped**: drop responses you do
    /// not read, or the limit fills up with them.
    ///
    /// Frames and errors pass through; errors become fastreq [`Error`]s (their kind kept).
    pub struct ConcurrencyLimitBody<B> {
        #[pin]
        inner: B,
        permits: Option<Permits>,
    }
}

impl<B> ConcurrencyLimitBody<B>
where
    B: Body,
{
    pub(super) fn new(inner: B, permits: Permits) -> Self {
        let permits = (!inner.is_end_stream()).then_some(permits);
        ConcurrencyLimitBody { inner, permits }
    }
}

impl<B> ConcurrencyLimitBody<B> {
    /// True while this body still holds its concurrency permits.
    pub fn holds_permit(&self) -> bool {
        self.permits.is_some()
    }

    /// The inner body.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }

    /// Unwraps the inner body, releasing the permits (the body is no longer counted).
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B> fmt::Debug for ConcurrencyLimitBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimitBody")
            .field("holds_permit", &self.permits.is_some())
            .finish_non_exhaustive()
    }
}

impl<B> Body for ConcurrencyLimitBody<B>
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
        let mut this = self.project();
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(frame))) => {
                if this.permits.is_some() && this.inner.is_end_stream() {
                    *this.permits = None;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                *this.permits = None;
                Poll::Ready(Some(Err(Error::from_boxed(e.into()))))
            }
            Poll::Ready(None) => {
                *this.permits = None;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
