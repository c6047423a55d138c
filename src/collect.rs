//! Reading a response body inside the request, so that a body that fails half way is
//! retried like a connection that fails.
//!
//! A reset or a truncation while the body is read happens after the retry layer has
//! returned the response: to the retry layer the request succeeded. On the buffered path
//! ([`Fetch`](crate::Fetch), [`get_all`](crate::get_all()), [`Client::get`](crate::Client::get),
//! the CLI) the body is read at once anyway, so [`Collect`] reads it *below* the retry layer
//! instead: the request's future ends only when the whole body is in memory, and a body
//! error is the attempt's error. The retry layer then retries it under its usual rules
//! (idempotent methods, a replayable request body, the attempt count, backoff and deadline),
//! and [`ResponseExt::attempts`](crate::ResponseExt::attempts) counts those attempts too.
//!
//! Only requests that carry the [`CollectBody`] extension are read this way ([`Fetch`](crate::Fetch)
//! adds it); the others stream as before, and a streaming body that fails is not retried
//! (its beginning has already been handed to you).
//!
//! A body error of kind [`Io`](crate::ErrorKind::Io) (reset, truncated, malformed framing)
//! is marked retryable; a [`Timeout`](crate::ErrorKind::Timeout) (body idle, or the
//! request's [`Deadline`](crate::ext::Deadline)) is retryable as any timeout is, within the
//! deadline; [`BodyTooLarge`](crate::ErrorKind::BodyTooLarge) and
//! [`Decode`](crate::ErrorKind::Decode) are final. The cap is the response's
//! [`BodyLimit`] (default [`DEFAULT_BODY_LIMIT`]).
//!
//! [`fastreq::stack()`](crate::stack()) puts [`CollectLayer`] right inside its retry layer. In
//! a stack of your own, do the same:
//!
//! # Examples
//!
//! ```
//! use fastreq::collect::CollectLayer;
//! use fastreq::retry::RetryLayer;
//! use fastreq::{Body, Fetch, ResponseBody};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let backend = tower::service_fn(|_req: http::Request<Body>| async {
//!     Ok::<_, fastreq::Error>(http::Response::new(ResponseBody::from("hello")))
//! });
//! let svc = ServiceBuilder::new()
//!     .layer(RetryLayer::new())
//!     .layer(CollectLayer::new())
//!     .service(backend);
//! // `Fetch` marks its requests, so their bodies are read below the retry layer.
//! let fetched = Fetch::new(svc)
//!     .oneshot(fastreq::get("http://example.test/").build().unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(fetched.body(), b"hello");
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::Layer;
use tower_service::Service;

use crate::error::{BoxError, Error, ErrorKind};
use crate::ext::BodyLimit;
use crate::proxy::SelectedProxy;
use crate::response::{ResponseBody, DEFAULT_BODY_LIMIT};

/// A request extension asking [`Collect`] to read the whole response body before the
/// request's future completes. [`Fetch`](crate::Fetch) adds it to every request;
/// [`Collect`] takes it off, so the layers below it never see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CollectBody;

/// Applies [`Collect`]; holds no configuration.
#[derive(Clone, Copy, Debug, Default)]
pub struct CollectLayer {
    _priv: (),
}

impl CollectLayer {
    /// The layer.
    pub fn new() -> Self {
        CollectLayer { _priv: () }
    }
}

impl<S> Layer<S> for CollectLayer {
    type Service = Collect<S>;

    fn layer(&self, inner: S) -> Collect<S> {
        Collect { inner }
    }
}

/// Reads the response body of requests marked with [`CollectBody`] before returning the
/// response; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Collect<S> {
    inner: S,
}

impl<S> Collect<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Collect { inner }
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

impl<S, ReqBody, B> Service<Request<ReqBody>> for Collect<S>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
    S::Error: Into<Error>,
    B: http_body::Body,
    B::Data: Into<Bytes>,
    B::Error: Into<BoxError>,
{
    type Response = Response<CollectedBody<B>>;
    type Error = Error;
    type Future = ResponseFuture<S::Future, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // Taken off the request: the layers below have no use for the marker, and a request
        // left with no extension is cheaper for each of them to snapshot (redirects) and drop.
        let ext = req.extensions_mut();
        let collect = ext.remove::<CollectBody>().is_some();
        if collect && ext.is_empty() {
            *ext = http::Extensions::new();
        }
        ResponseFuture {
            state: State::Head {
                fut: self.inner.call(req),
                collect,
            },
        }
    }
}

pin_project! {
    /// The response future of [`Collect`].
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Head { #[pin] fut: F, collect: bool },
        Body {
            // Boxed: the head is large and only moves once.
            parts: Option<Box<http::response::Parts>>,
            #[pin]
            body: B,
            // The first chunk, kept as it is: most bodies arrive in one.
            first: Option<Bytes>,
            // Later chunks, when there are any.
            rest: BytesMut,
            limit: usize,
        },
        Done,
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("collect::ResponseFuture")
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<Error>,
    B: http_body::Body,
    B::Data: Into<Bytes>,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<CollectedBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Head { fut, collect } => {
                    let resp = std::task::ready!(fut.poll(cx)).map_err(Into::into)?;
                    if !*collect {
                        this.state.set(State::Done);
                        return Poll::Ready(Ok(resp.map(|body| CollectedBody {
                            inner: Inner::Streaming { body },
                        })));
                    }
                    let (parts, body) = resp.into_parts();
                    let limit = parts
                        .extensions
                        .get::<BodyLimit>()
                        .map_or(DEFAULT_BODY_LIMIT, |l| l.0);
                    let announced = body.size_hint().lower();
                    if announced > limit as u64 {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(too_large(limit, announced)));
                    }
                    this.state.set(State::Body {
                        parts: Some(Box::new(parts)),
                        body,
                        first: None,
                        rest: BytesMut::new(),
                        limit,
                    });
                }
                StateProj::Body {
                    parts,
                    mut body,
                    first,
                    rest,
                    limit,
                } => {
                    loop {
                        let frame = match std::task::ready!(body.as_mut().poll_frame(cx)) {
                            None => break,
                            Some(Ok(frame)) => frame,
                            Some(Err(e)) => {
                                let mut err = body_error(Error::from_boxed(e.into()));
                                // Name the proxy the body came through, when one did.
                                if err.proxy().is_none() {
                                    let head = parts.as_deref();
                                    if let Some(p) =
                                        head.and_then(|h| h.extensions.get::<SelectedProxy>())
                                    {
                                        err = err.with_proxy(p.0.clone());
                                    }
                                }
                                this.state.set(State::Done);
                                return Poll::Ready(Err(err));
                            }
                        };
                        // Trailers are dropped, as the buffered response has none.
                        let Ok(data) = frame.into_data() else {
                            continue;
                        };
                        let data: Bytes = data.into();
                        let so_far = first.as_ref().map_or(0, Bytes::len) + rest.len();
                        if so_far + data.len() > *limit {
                            let n = (so_far + data.len()) as u64;
                            let limit = *limit;
                            this.state.set(State::Done);
                            return Poll::Ready(Err(too_large(limit, n)));
                        }
                        if data.is_empty() {
                            continue;
                        }
                        if first.is_none() && rest.is_empty() {
                            *first = Some(data);
                            continue;
                        }
                        if let Some(f) = first.take() {
                            let hint = body.size_hint();
                            let more = hint.exact().unwrap_or(hint.lower());
                            let more = usize::try_from(more).unwrap_or(usize::MAX).min(*limit);
                            rest.reserve(f.len() + data.len() + more);
                            rest.extend_from_slice(&f);
                        }
                        rest.extend_from_slice(&data);
                    }
                    let bytes = match first.take() {
                        Some(f) => f,
                        None => std::mem::take(rest).freeze(),
                    };
                    let parts = *parts.take().expect("the head is kept until the body ends");
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(Response::from_parts(
                        parts,
                        CollectedBody {
                            inner: Inner::Collected { data: Some(bytes) },
                        },
                    )));
                }
                StateProj::Done => panic!("collect::ResponseFuture polled after completion"),
            }
        }
    }
}

fn too_large(limit: usize, n: u64) -> Error {
    Error::new(ErrorKind::BodyTooLarge).with_message(format!(
        "response body exceeds the limit of {limit} bytes (at least {n} bytes)"
    ))
}

/// A body error while reading inside the request: an I/O failure (reset, truncation, bad
/// framing) is marked so the retry policy treats it like a connection that failed under
/// the request.
fn body_error(err: Error) -> Error {
    if err.kind() == ErrorKind::Io {
        err.mark_body_failed()
    } else {
        err
    }
}

pin_project! {
    /// The body of a [`Collect`] response: the whole body in memory when the request was
    /// marked with [`CollectBody`], else the inner body, streaming.
    pub struct CollectedBody<B> {
        #[pin]
        inner: Inner<B>,
    }
}

pin_project! {
    #[project = InnerProj]
    enum Inner<B> {
        Streaming { #[pin] body: B },
        Collected { data: Option<Bytes> },
    }
}

impl<B> CollectedBody<B> {
    /// The whole body, when it was read in the request.
    pub fn collected(&self) -> Option<&Bytes> {
        match &self.inner {
            Inner::Collected { data } => data.as_ref(),
            Inner::Streaming { .. } => None,
        }
    }

    /// The whole body when it was read in the request, else the streaming inner body.
    pub fn into_collected(self) -> Result<Bytes, B> {
        match self.inner {
            Inner::Collected { data } => Ok(data.unwrap_or_default()),
            Inner::Streaming { body } => Err(body),
        }
    }
}

impl<B> CollectedBody<B>
where
    B: http_body::Body + Send + 'static,
    B::Data: Into<Bytes>,
    B::Error: Into<BoxError>,
{
    /// As a [`ResponseBody`]; a collected body is not boxed.
    pub fn into_response_body(self) -> ResponseBody {
        match self.inner {
            Inner::Collected { data } => data.map_or_else(ResponseBody::empty, ResponseBody::from),
            Inner::Streaming { body } => ResponseBody::new(body),
        }
    }
}

impl<B> fmt::Debug for CollectedBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Collected { data } => f
                .debug_struct("CollectedBody")
                .field("len", &data.as_ref().map_or(0, Bytes::len))
                .finish(),
            Inner::Streaming { .. } => f.debug_struct("CollectedBody").finish_non_exhaustive(),
        }
    }
}

impl<B> http_body::Body for CollectedBody<B>
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
        match self.project().inner.project() {
            InnerProj::Streaming { body } => body.poll_frame(cx).map(|f| {
                f.map(|r| {
                    r.map(|frame| frame.map_data(Into::into))
                        .map_err(|e| Error::from_boxed(e.into()))
                })
            }),
            InnerProj::Collected { data } => Poll::Ready(
                data.take()
                    .filter(|d| !d.is_empty())
                    .map(|d| Ok(Frame::data(d))),
            ),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Streaming { body } => body.is_end_stream(),
            Inner::Collected { data } => data.as_ref().is_none_or(Bytes::is_empty),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Streaming { body } => body.size_hint(),
            Inner::Collected { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}
