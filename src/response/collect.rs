//! Reading a body to the end into one exact-size buffer, under a size limit.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};

use crate::error::{BoxError, Error, ErrorKind};

/// Reads `body` to the end into one exact-size buffer, failing past `limit` bytes.
///
/// The result never shares memory with the buffers the body handed out.
pub(crate) async fn collect_limited<B>(body: B, limit: usize) -> Result<Bytes, Error>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let mut buf = CollectInto::new(body, limit, 0).await?;
    buf.shrink_to_fit();
    Ok(Bytes::from(buf))
}

pin_project_lite::pin_project! {
    /// Reads a body to the end into a new vector, failing past `limit` bytes; when the body
    /// announces its size, the vector is allocated once with `extra` bytes of room after it.
    pub(crate) struct CollectInto<B> {
        #[pin]
        body: B,
        buf: Vec<u8>,
        limit: usize,
        extra: usize,
        // Set when the announced size is already over the limit.
        early: Option<Error>,
    }
}

impl<B> CollectInto<B>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    pub(crate) fn new(body: B, limit: usize, extra: usize) -> Self {
        let hint = body.size_hint();
        let early = (hint.lower() > limit as u64).then(|| too_large(limit, hint.lower()));
        // Reserve what the peer announced (bounded by the limit) so the common case is one
        // copy; with nothing announced, the first chunk sizes the buffer.
        let announced = hint.exact().unwrap_or(hint.lower()) as usize;
        let buf = if early.is_none() && (announced > 0 || hint.exact().is_some()) {
            Vec::with_capacity(announced.saturating_add(extra))
        } else {
            Vec::new()
        };
        CollectInto {
            body,
            buf,
            limit,
            extra,
            early,
        }
    }
}

fn too_large(limit: usize, n: u64) -> Error {
    Error::new(ErrorKind::BodyTooLarge).with_message(format!(
        "response body exceeds the limit of {limit} bytes (at least {n} bytes)"
    ))
}

impl<B> Future for CollectInto<B>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    type Output = Result<Vec<u8>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(e) = this.early.take() {
            return Poll::Ready(Err(e));
        }
        loop {
            let Some(frame) = std::task::ready!(this.body.as_mut().poll_frame(cx)) else {
                return Poll::Ready(Ok(std::mem::take(this.buf)));
            };
            let frame = frame.map_err(|e| Error::from_boxed(e.into()))?;
            if let Ok(mut data) = frame.into_data() {
                let n = data.remaining();
                let buf = &mut *this.buf;
                if buf.len() + n > *this.limit {
                    return Poll::Ready(Err(too_large(*this.limit, (buf.len() + n) as u64)));
                }
                // A no-op while the announced size holds; keeps room for `extra` when it
                // grows.
                buf.reserve(n.saturating_add(*this.extra));
                while data.has_remaining() {
                    let chunk = data.chunk();
                    let len = chunk.len();
                    buf.extend_from_slice(chunk);
                    data.advance(len);
                }
            }
        }
    }
}
