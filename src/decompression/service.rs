//! The [`Decompression`] service.

use std::task::{Context, Poll};

use http::header::{self, ACCEPT_ENCODING};
use http::{HeaderValue, Request, Response};
use http_body::Body;
use tower_service::Service;

use super::body::DecompressionBody;
use super::future::ResponseFuture;
use super::layer::DecompressionLayer;
use crate::error::{BoxError, Error};
use crate::ext::BodyLimit;

/// Asks for compressed responses and decodes them, with a cap on the decoded size.
///
/// An encoded response is decoded by tower-http's
/// [`Decompression`](tower_http::decompression::Decompression), its body wrapped in a capped
/// [`DecompressionBody`]; any other response passes through without tower-http's wrappers.
/// See the [module docs](super).
#[derive(Clone, Debug)]
pub struct Decompression<S> {
    inner: S,
    config: DecompressionLayer,
    /// The `Accept-Encoding` value for the enabled codings (static: cloning it is free).
    accept: Option<HeaderValue>,
}

impl<S> Decompression<S> {
    /// Wraps `inner` with the default configuration (every coding, the response's cap).
    pub fn new(inner: S) -> Self {
        Decompression::from_layer(inner, &DecompressionLayer::new())
    }

    pub(super) fn from_layer(inner: S, config: &DecompressionLayer) -> Self {
        Decompression {
            inner,
            config: *config,
            accept: accept_encoding(config).map(HeaderValue::from_static),
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The `Accept-Encoding` value tower-http sends for the same codings.
fn accept_encoding(c: &DecompressionLayer) -> Option<&'static str> {
    Some(match (c.gzip, c.deflate, c.br, c.zstd) {
        (true, true, true, false) => "gzip,deflate,br",
        (true, true, false, false) => "gzip,deflate",
        (true, false, true, false) => "gzip,br",
        (true, false, false, false) => "gzip",
        (false, true, true, false) => "deflate,br",
        (false, true, false, false) => "deflate",
        (false, false, true, false) => "br",
        (true, true, true, true) => "zstd,gzip,deflate,br",
        (true, true, false, true) => "zstd,gzip,deflate",
        (true, false, true, true) => "zstd,gzip,br",
        (true, false, false, true) => "zstd,gzip",
        (false, true, true, true) => "zstd,deflate,br",
        (false, true, false, true) => "zstd,deflate",
        (false, false, true, true) => "zstd,br",
        (false, false, false, true) => "zstd",
        (false, false, false, false) => return None,
    })
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
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // An `Accept-Encoding` the request already has is kept (as tower-http does).
        if let Some(accept) = &self.accept {
            if let header::Entry::Vacant(entry) = req.headers_mut().entry(ACCEPT_ENCODING) {
                entry.insert(accept.clone());
            }
        }
        // A request's own cap wins over the layer's.
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map(|l| l.0)
            .or(self.config.max_decoded_size);
        ResponseFuture::new(self.inner.call(req), limit, self.config)
    }
}
