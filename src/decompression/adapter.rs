//! The service between tower-http's decompression and the inner service: it turns the
//! inner errors and body errors into fastreq [`Error`]s (so that anything else coming out
//! of tower-http's body is a decoding error) and records which coding the response had.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::header::CONTENT_ENCODING;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_service::Service;

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
    fn from_header(value: &[u8]) -> Option<Coding> {
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

#[derive(Clone, Debug)]
pub(super) struct Adapter<S> {
    pub(super) inner: S,
}

impl<S, ReqBody, B> Service<Request<ReqBody>> for Adapter<S>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
    S::Error: Into<Error>,
{
    type Response = Response<MappedBody<B>>;
    type Error = Error;
    type Future = AdapterFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        AdapterFuture {
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    pub(super) struct AdapterFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, B, E> Future for AdapterFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<Error>,
{
    type Output = Result<Response<MappedBody<B>>, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let resp = ready!(self.project().inner.poll(cx)).map_err(Into::into)?;
        let coding = resp
            .headers()
            .get(CONTENT_ENCODING)
            .and_then(|v| Coding::from_header(v.as_bytes()));
        Poll::Ready(Ok(resp.map(|inner| MappedBody { inner, coding })))
    }
}

pin_project! {
    /// The inner body with its errors turned into fastreq [`Error`]s, and the coding its
    /// response announced.
    pub(super) struct MappedBody<B> {
        #[pin]
        inner: B,
        pub(super) coding: Option<Coding>,
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
