//! The [`Decompression`] service.

use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::adapter::Adapter;
use super::body::DecompressionBody;
use super::future::ResponseFuture;
use super::layer::DecompressionLayer;
use crate::error::{BoxError, Error};
use crate::ext::BodyLimit;

/// Asks for compressed responses and decodes them, with a cap on the decoded size.
///
/// tower-http's [`Decompression`](tower_http::decompression::Decompression) inside, its
/// response body wrapped in a capped [`DecompressionBody`]. See the [module docs](super).
#[derive(Clone, Debug)]
pub struct Decompression<S> {
    inner: tower_http::decompression::Decompression<Adapter<S>>,
    limit: Option<usize>,
}

impl<S> Decompression<S> {
    /// Wraps `inner` with the default configuration (every coding, the response's cap).
    pub fn new(inner: S) -> Self {
        Decompression::from_layer(inner, &DecompressionLayer::new())
    }

    pub(super) fn from_layer(inner: S, config: &DecompressionLayer) -> Self {
        let inner = tower_http::decompression::Decompression::new(Adapter { inner })
            .gzip(config.gzip)
            .deflate(config.deflate)
            .br(config.br)
            .zstd(config.zstd);
        Decompression {
            inner,
            limit: config.max_decoded_size,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner.get_ref().inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner.get_mut().inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner.into_inner().inner
    }
}

impl<S, ReqBody, B> Service<Request<ReqBody>> for Decompression<S>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
    S::Error: Into<Error>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Response = Response<DecompressionBody<B>>;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // A request's own cap wins over the layer's.
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map(|l| l.0)
            .or(self.limit);
        ResponseFuture::new(self.inner.call(req), limit)
    }
}
