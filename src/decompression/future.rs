//! The response future of [`Decompression`](super::Decompression).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::header::CONTENT_ENCODING;
use http::Response;
use http_body::Body;
use pin_project_lite::pin_project;

use super::adapter::AdapterFuture;
use super::body::{Decoded, DecompressionBody};
use crate::error::{BoxError, Error};
use crate::ext::{BodyLimit, FinalUrl};
use crate::response::DEFAULT_BODY_LIMIT;

pin_project! {
    /// The response future of [`Decompression`](super::Decompression): tower-http's, whose
    /// response body it wraps in a capped [`DecompressionBody`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: tower_http::decompression::ResponseFuture<AdapterFuture<F>>,
        limit: Option<usize>,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(
        inner: tower_http::decompression::ResponseFuture<AdapterFuture<F>>,
        limit: Option<usize>,
    ) -> Self {
        ResponseFuture { inner, limit }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("decompression::ResponseFuture")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<Error>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<DecompressionBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let resp = ready!(this.inner.poll(cx))?;
        let (parts, body) = resp.into_parts();
        // tower-http removes `Content-Encoding` when, and only when, it decodes.
        let decoded = match body.get_ref().coding {
            Some(coding) if !parts.headers.contains_key(CONTENT_ENCODING) => Some(Decoded {
                coding,
                limit: this
                    .limit
                    .or_else(|| parts.extensions.get::<BodyLimit>().map(|l| l.0))
                    .unwrap_or(DEFAULT_BODY_LIMIT),
                seen: 0,
                url: parts.extensions.get::<FinalUrl>().map(|u| u.0.clone()),
            }),
            _ => None,
        };
        Poll::Ready(Ok(Response::from_parts(
            parts,
            DecompressionBody::new(body, decoded),
        )))
    }
}
