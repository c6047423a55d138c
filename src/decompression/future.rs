//! The response future of [`Decompression`](super::Decompression).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::header::CONTENT_ENCODING;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::adapter::{Coding, MappedBody};
use super::body::{Decoded, DecompressionBody};
use super::layer::DecompressionLayer;
use crate::error::{BoxError, Error, ErrorKind};
use crate::ext::{BodyLimit, FinalUrl};
use crate::response::DEFAULT_BODY_LIMIT;

pin_project! {
    /// The response future of [`Decompression`](super::Decompression): the inner future,
    /// whose response body it wraps in a capped [`DecompressionBody`] (decoded by
    /// tower-http when the response is encoded with an enabled coding).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        limit: Option<usize>,
        config: DecompressionLayer,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, limit: Option<usize>, config: DecompressionLayer) -> Self {
        ResponseFuture {
            inner,
            limit,
            config,
        }
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
        let resp = ready!(this.inner.poll(cx)).map_err(Into::into)?;
        let coding = resp
            .headers()
            .get(CONTENT_ENCODING)
            .and_then(|v| Coding::from_header(v.as_bytes()))
            .filter(|c| this.config.decodes(*c));
        let Some(coding) = coding else {
            // The common case: nothing to decode, no tower-http wrappers.
            return Poll::Ready(Ok(resp.map(DecompressionBody::plain)));
        };
        let decoded = Decoded {
            coding,
            limit: this
                .limit
                .or_else(|| resp.extensions().get::<BodyLimit>().map(|l| l.0))
                .unwrap_or(DEFAULT_BODY_LIMIT),
            seen: 0,
            url: resp.extensions().get::<FinalUrl>().map(|u| u.0.clone()),
        };
        Poll::Ready(
            decode(resp, this.config, cx)
                .map(|resp| resp.map(|body| DecompressionBody::new(body, Some(decoded)))),
        )
    }
}

/// Runs the response, already here, through tower-http's decompression: it picks the
/// decoder from `Content-Encoding` and removes that header and `Content-Length`.
fn decode<B>(
    resp: Response<B>,
    config: &DecompressionLayer,
    cx: &mut Context<'_>,
) -> Result<Response<tower_http::decompression::DecompressionBody<MappedBody<B>>>, Error>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let mut resp = Some(resp.map(MappedBody::new));
    let replay = tower::service_fn(move |_: Request<()>| {
        std::future::ready(resp.take().ok_or_else(not_ready))
    });
    let mut svc = tower_http::decompression::Decompression::new(replay)
        .gzip(config.gzip)
        .deflate(config.deflate)
        .br(config.br)
        .zstd(config.zstd);
    // Both are ready at once: the replay service is always ready and answers at once.
    match svc.poll_ready(cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(e)) => return Err(e),
        Poll::Pending => return Err(not_ready()),
    }
    let fut = std::pin::pin!(svc.call(Request::new(())));
    match fut.poll(cx) {
        Poll::Ready(result) => result,
        Poll::Pending => Err(not_ready()),
    }
}

fn not_ready() -> Error {
    Error::new(ErrorKind::Decode).with_message("decoder set-up did not complete at once")
}
