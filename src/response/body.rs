//! [`ResponseBody`]: the body of a fastreq response.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;

use crate::error::{BoxError, Error, ErrorKind};

/// The body of a fastreq response: hyper's incoming body, bytes, or any boxed body.
///
/// Its errors are fastreq [`Error`]s.
pub struct ResponseBody {
    inner: BodyInner,
}

enum BodyInner {
    Hyper(hyper::body::Incoming),
    Full(Option<Bytes>),
    Boxed(UnsyncBoxBody<Bytes, Error>),
}

impl ResponseBody {
    /// An empty body.
    pub fn empty() -> Self {
        ResponseBody {
            inner: BodyInner::Full(None),
        }
    }

    /// Wraps any body; its errors are turned into [`Error`]s with [`Error::from_boxed`].
    ///
    /// A body that already is a `ResponseBody` is returned as it is (not boxed again).
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body + Send + 'static,
        B::Data: Into<Bytes>,
        B::Error: Into<BoxError>,
    {
        let mut slot = Some(body);
        if let Some(same) = (&mut slot as &mut dyn std::any::Any).downcast_mut::<Option<Self>>() {
            return same.take().expect("just filled");
        }
        let body = slot.expect("not taken");
        ResponseBody {
            inner: BodyInner::Boxed(UnsyncBoxBody::new(Converted { inner: body })),
        }
    }

    pub(crate) fn hyper(body: hyper::body::Incoming) -> Self {
        ResponseBody {
            inner: BodyInner::Hyper(body),
        }
    }
}

pin_project_lite::pin_project! {
    /// A body with its data turned into [`Bytes`] and its errors into [`Error`]s, keeping its
    /// size hint (`map_frame` drops it, and readers size their buffers from it).
    struct Converted<B> {
        #[pin]
        inner: B,
    }
}

impl<B> http_body::Body for Converted<B>
where
    B: http_body::Body,
    B::Data: Into<Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.project().inner.poll_frame(cx).map(|frame| {
            frame.map(|r| {
                r.map(|f| f.map_data(Into::into))
                    .map_err(|e| Error::from_boxed(e.into()))
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Default for ResponseBody {
    fn default() -> Self {
        ResponseBody::empty()
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseBody")
    }
}

impl From<Bytes> for ResponseBody {
    fn from(b: Bytes) -> Self {
        ResponseBody {
            inner: BodyInner::Full(if b.is_empty() { None } else { Some(b) }),
        }
    }
}
impl From<Vec<u8>> for ResponseBody {
    fn from(b: Vec<u8>) -> Self {
        Bytes::from(b).into()
    }
}
impl From<String> for ResponseBody {
    fn from(s: String) -> Self {
        Bytes::from(s).into()
    }
}
impl From<&'static str> for ResponseBody {
    fn from(s: &'static str) -> Self {
        Bytes::from_static(s.as_bytes()).into()
    }
}
impl From<&'static [u8]> for ResponseBody {
    fn from(s: &'static [u8]) -> Self {
        Bytes::from_static(s).into()
    }
}

/// Maps a hyper error met while reading a body.
pub(crate) fn hyper_body_error(e: hyper::Error) -> Error {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Io
    };
    Error::new(kind)
        .with_message("error reading the response body")
        .with_source(e)
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match &mut self.get_mut().inner {
            BodyInner::Hyper(b) => match Pin::new(b).poll_frame(cx) {
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(hyper_body_error(e)))),
                other => other.map(|o| o.map(|r| r.map_err(hyper_body_error))),
            },
            BodyInner::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            BodyInner::Boxed(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            BodyInner::Hyper(b) => b.is_end_stream(),
            BodyInner::Full(b) => b.is_none(),
            BodyInner::Boxed(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            BodyInner::Hyper(b) => b.size_hint(),
            BodyInner::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            BodyInner::Boxed(b) => b.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxed_bodies_keep_their_size_hint() {
        let body = ResponseBody::new(http_body_util::Full::new(Bytes::from_static(b"abc")));
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(3));
        assert!(!http_body::Body::is_end_stream(&body));
        let body = ResponseBody::new(http_body_util::Empty::<Bytes>::new());
        assert!(http_body::Body::is_end_stream(&body));
    }
}
