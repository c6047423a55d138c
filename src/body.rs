//! The request body.
//!
//! A [`Body`] is empty, a full buffer of [`Bytes`] (cheap to clone, so a retry or a 307/308
//! redirect can send it again), or a stream (sent once, never replayed: a layer that would
//! need to resend it reports [`ErrorKind::BodyNotReplayable`](crate::ErrorKind) instead).
//!
//! # Examples
//!
//! ```
//! use fastreq::Body;
//! use bytes::Bytes;
//!
//! let body = Body::from("hello");
//! assert!(body.is_replayable());
//! let again = body.try_clone().expect("a full body can be cloned");
//! assert_eq!(again.as_bytes(), Some(&b"hello"[..]));
//!
//! let chunks = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from("a"))]);
//! let streamed = Body::wrap_stream(chunks);
//! assert!(!streamed.is_replayable());
//! assert!(streamed.try_clone().is_none());
//! ```

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;

use crate::error::BoxError;

/// A request body: empty, full (replayable) or streaming (sent once).
#[derive(Default)]
pub struct Body {
    kind: Kind,
}

#[derive(Default)]
enum Kind {
    #[default]
    Empty,
    Full(Option<Bytes>),
    Stream(UnsyncBoxBody<Bytes, BoxError>),
}

impl Body {
    /// An empty body.
    pub const fn empty() -> Self {
        Body { kind: Kind::Empty }
    }

    /// A body holding all of `bytes`; it can be cloned and replayed.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            Body::empty()
        } else {
            Body {
                kind: Kind::Full(Some(bytes)),
            }
        }
    }

    /// A streaming body from a [`Stream`] of byte chunks. It is sent once and never replayed.
    pub fn wrap_stream<S, B, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<B, E>> + Send + 'static,
        B: Into<Bytes> + 'static,
        E: Into<BoxError> + 'static,
    {
        use futures_util::TryStreamExt;
        let body = http_body_util::StreamBody::new(
            stream.map_ok(|b| Frame::data(b.into())).map_err(Into::into),
        );
        Body {
            kind: Kind::Stream(UnsyncBoxBody::new(body)),
        }
    }

    /// A streaming body from any [`http_body::Body`]. It is sent once and never replayed.
    pub fn wrap_body<B>(body: B) -> Self
    where
        B: http_body::Body + Send + 'static,
        B::Data: Into<Bytes>,
        B::Error: Into<BoxError>,
    {
        Body {
            kind: Kind::Stream(UnsyncBoxBody::new(
                body.map_frame(|f| f.map_data(Into::into))
                    .map_err(Into::into),
            )),
        }
    }

    /// True when the body can be sent again (empty or full).
    pub fn is_replayable(&self) -> bool {
        !matches!(self.kind, Kind::Stream(_))
    }

    /// A copy of the body if it is replayable (cheap: the bytes are shared), else `None`.
    pub fn try_clone(&self) -> Option<Body> {
        match &self.kind {
            Kind::Empty => Some(Body::empty()),
            Kind::Full(b) => Some(Body {
                kind: Kind::Full(b.clone()),
            }),
            Kind::Stream(_) => None,
        }
    }

    /// The bytes of a full body (`Some(b"")` when empty), or `None` for a stream.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.kind {
            Kind::Empty => Some(&[]),
            Kind::Full(b) => Some(b.as_deref().unwrap_or(&[])),
            Kind::Stream(_) => None,
        }
    }

    /// The bytes of an empty (`Ok(None)`) or full (`Ok(Some(..))`) body, or the streaming
    /// body back.
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    pub(crate) fn into_bytes(self) -> Result<Option<Bytes>, Body> {
        match self.kind {
            Kind::Empty => Ok(None),
            Kind::Full(b) => Ok(b),
            Kind::Stream(_) => Err(self),
        }
    }

    /// The exact length, when known in advance.
    pub fn content_length(&self) -> Option<u64> {
        http_body::Body::size_hint(self).exact()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Empty => f.write_str("Body::Empty"),
            Kind::Full(b) => write!(f, "Body::Full({} bytes)", b.as_ref().map_or(0, |b| b.len())),
            Kind::Stream(_) => f.write_str("Body::Stream"),
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream(s) => Pin::new(s).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(b) => b.is_none(),
            Kind::Stream(s) => s.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Stream(s) => s.size_hint(),
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Body::full(b)
    }
}
impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Self {
        Body::full(b)
    }
}
impl From<String> for Body {
    fn from(s: String) -> Self {
        Body::full(s)
    }
}
impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Body::full(Bytes::from_static(s.as_bytes()))
    }
}
impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Self {
        Body::full(Bytes::from_static(s))
    }
}
impl From<()> for Body {
    fn from(_: ()) -> Self {
        Body::empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_body_replays() {
        let b = Body::from("abc");
        let c = b.try_clone().unwrap();
        assert_eq!(b.collect().await.unwrap().to_bytes(), "abc");
        assert_eq!(c.content_length(), Some(3));
        assert_eq!(c.collect().await.unwrap().to_bytes(), "abc");
        assert!(http_body::Body::is_end_stream(&Body::empty()));
        assert_eq!(Body::from("").content_length(), Some(0));
    }

    #[tokio::test]
    async fn stream_body_is_sent_once() {
        let s = futures_util::stream::iter(vec![Ok::<_, std::io::Error>("a"), Ok("b")]);
        let b = Body::wrap_stream(s);
        assert!(!b.is_replayable());
        assert!(b.as_bytes().is_none());
        assert_eq!(b.collect().await.unwrap().to_bytes(), "ab");
    }
}
