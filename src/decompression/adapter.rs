//! What sits between tower-http's decoders and the inner body: the content codings, and a
//! body wrapper that turns the inner body's errors into fastreq [`Error`]s (so that anything
//! else coming out of tower-http's body is a decoding error).

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::error::{BoxError, Error};

/// A content coding that tower-http may decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Coding {
    Gzip,
    Deflate,
    Br,
    Zstd,
}

impl Coding {
    pub(super) fn from_header(value: &[u8]) -> Option<Coding> {
        // tower-http matches the header value exactly, so do we.
        match value {
            b"gzip" => Some(Coding::Gzip),
            b"deflate" => Some(Coding::Deflate),
            b"br" => Some(Coding::Br),
            b"zstd" => Some(Coding::Zstd),
            _ => None,
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Br => "br",
            Coding::Zstd => "zstd",
        }
    }
}

pin_project! {
    /// The inner body with its errors turned into fastreq [`Error`]s.
    pub(super) struct MappedBody<B> {
        #[pin]
        inner: B,
    }
}

impl<B> MappedBody<B> {
    pub(super) fn new(inner: B) -> Self {
        MappedBody { inner }
    }
}

impl<B> http_body::Body for MappedBody<B>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, Error>>> {
        self.project()
            .inner
            .poll_frame(cx)
            .map_err(|e| Error::from_boxed(e.into()))
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
