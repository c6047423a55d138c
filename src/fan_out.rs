//! The fan-out combinator: drive many requests through a service, one outcome per input.
//!
//! [`fan_out`] (for an iterator) and [`fan_out_stream`] (for a [`Stream`]) take any
//! [`tower::Service`] and a sequence of requests and return a [`FanOut`] stream of
//! [`Outcome`]s:
//!
//! - the input is pulled lazily, only as capacity frees: a billion-line file streams with
//!   flat memory;
//! - at most [`limit`](FanOut::limit) requests are inside the service at once (default
//!   [`DEFAULT_LIMIT`], 256). The service's own readiness is honoured too, but hyper's
//!   client is always ready, so this bound is what keeps memory flat. A request sleeping on
//!   a retry backoff or waiting for a per-host rate token occupies a place in this bound
//!   without being on the wire, so set it larger than the concurrency limit of the stack
//!   (4× is a good rule, and the default matches the default concurrency of 64);
//! - every input yields exactly one [`Outcome`], whatever fails: an input that is itself an
//!   error (for example a [`RequestBuilder`] with a bad URL) yields
//!   its error, and an error never ends the stream;
//! - outcomes come in completion order, or in input order with [`ordered`](FanOut::ordered)
//!   (a slow head pauses intake once `limit` requests are pending; nothing is lost);
//! - dropping the stream cancels everything in flight;
//! - [`progress`](FanOut::progress) gives live counters for a progress bar.
//!
//! # Examples
//!
//! ```
//! use futures_util::StreamExt;
//! use tower::service_fn;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // Any service works; here one that answers with the request's path length.
//! let svc = service_fn(|req: http::Request<fastreq::Body>| async move {
//!     if req.uri().path() == "/fail" {
//!         Err(fastreq::Error::new(fastreq::ErrorKind::Io))
//!     } else {
//!         Ok::<_, fastreq::Error>(req.uri().path().len())
//!     }
//! });
//! let urls = ["http://a.test/one", "http://a.test/fail", "not a url", "http://a.test/three"];
//! let requests = urls.into_iter().map(fastreq::get);
//!
//! let fan = fastreq::fan_out(svc, requests).limit(2).ordered();
//! let progress = fan.progress();
//! let outcomes: Vec<_> = fan.collect().await;
//!
//! assert_eq!(outcomes.len(), 4);
//! assert_eq!(outcomes[0].result.as_ref().ok(), Some(&4));
//! assert!(outcomes[1].result.is_err());
//! assert!(outcomes[2].result.as_ref().unwrap_err().is_invalid_request());
//! assert_eq!(progress.completed(), 4);
//! assert_eq!(progress.failed(), 2);
//! # }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_util::stream::{FuturesUnordered, StreamExt};
use http::Request;
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::error::Error;
use crate::request::RequestBuilder;

/// The default bound on requests inside the service: 256 (4× the default concurrency).
pub const DEFAULT_LIMIT: usize = 256;

/// The result for one input of a [`FanOut`].
#[derive(Debug)]
pub struct Outcome<T, E> {
    /// The position of the input, counting from 0.
    pub index: usize,
    /// What the service returned for it, or why it could not be sent.
    pub result: Result<T, E>,
}

/// An input of a [`FanOut`]: a request, or an error that becomes that input's outcome.
///
/// Implemented for `http::Request<B>`, `Result<http::Request<B>, E>`,
/// [`RequestBuilder`] (built on intake; a bad URL becomes an `InvalidRequest` outcome), and
/// URLs as `String` or `&str` (`GET` requests).
pub trait IntoRequest<R, E> {
    /// The request to send, or the outcome's error.
    fn into_request(self) -> Result<R, E>;
}

impl<B, E> IntoRequest<Request<B>, E> for Request<B> {
    fn into_request(self) -> Result<Request<B>, E> {
        Ok(self)
    }
}

impl<B, E, E2: Into<E>> IntoRequest<Request<B>, E> for Result<Request<B>, E2> {
    fn into_request(self) -> Result<Request<B>, E> {
        self.map_err(Into::into)
    }
}

/// A URL: a `GET` request, built on intake (a bad URL becomes an `InvalidRequest` outcome).
impl<E: From<Error>> IntoRequest<Request<crate::Body>, E> for String {
    fn into_request(self) -> Result<Request<crate::Body>, E> {
        crate::get(self).build().map_err(E::from)
    }
}

/// A URL: a `GET` request, built on intake (a bad URL becomes an `InvalidRequest` outcome).
impl<E: From<Error>> IntoRequest<Request<crate::Body>, E> for &str {
    fn into_request(self) -> Result<Request<crate::Body>, E> {
        crate::get(self).build().map_err(E::from)
    }
}

impl<E: From<Error>> IntoRequest<Request<crate::Body>, E> for RequestBuilder {
    fn into_request(self) -> Result<Request<crate::Body>, E> {
        self.build().map_err(E::from)
    }
}

/// Live counters of a [`FanOut`], cheap to clone and read from another task.
#[derive(Clone, Default)]
pub struct Progress {
    inner: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    started: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
}

impl Progress {
    /// Inputs taken so far (sent, or failed before sending).
    pub fn started(&self) -> u64 {
        self.inner.started.load(Ordering::Relaxed)
    }
    /// Outcomes produced so far, successes and failures.
    pub fn completed(&self) -> u64 {
        self.inner.completed.load(Ordering::Relaxed)
    }
    /// Outcomes that are errors.
    pub fn failed(&self) -> u64 {
        self.inner.failed.load(Ordering::Relaxed)
    }
    /// Outcomes that are successes (any HTTP status counts as a success here).
    pub fn succeeded(&self) -> u64 {
        self.completed().saturating_sub(self.failed())
    }
    /// Inputs taken whose outcome is not yet produced.
    pub fn in_flight(&self) -> u64 {
        self.started().saturating_sub(self.completed())
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("started", &self.started())
            .field("completed", &self.completed())
            .field("failed", &self.failed())
            .finish()
    }
}

pin_project! {
    struct Indexed<F> {
        index: usize,
        #[pin]
        fut: F,
    }
}

impl<F: Future> Future for Indexed<F> {
    type Output = (usize, F::Output);
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.fut.poll(cx).map(|out| (*this.index, out))
    }
}

/// Runs the requests of `requests` through `service`; see the [module docs](self).
pub fn fan_out<S, R, I>(
    service: S,
    requests: I,
) -> FanOut<S, futures_util::stream::Iter<I::IntoIter>, R>
where
    S: Service<R>,
    I: IntoIterator,
    I::Item: IntoRequest<R, S::Error>,
{
    fan_out_stream(service, futures_util::stream::iter(requests))
}

/// Runs the requests of a [`Stream`] through `service`; see the [module docs](self).
pub fn fan_out_stream<S, R, St>(service: S, requests: St) -> FanOut<S, St, R>
where
    S: Service<R>,
    St: Stream,
    St::Item: IntoRequest<R, S::Error>,
{
    FanOut {
        service,
        input: requests,
        input_done: false,
        pending: None,
        next_index: 0,
        next_emit: 0,
        in_flight: FuturesUnordered::new(),
        done: VecDeque::new(),
        ordered: false,
        limit: DEFAULT_LIMIT,
        window: 0,
        progress: Progress::default(),
    }
}

/// Adds [`fan_out`] and [`fan_out_stream`] as methods on every service.
pub trait FanOutExt<R>: Service<R> + Sized {
    /// `fastreq::fan_out(self, requests)`.
    fn fan_out<I>(self, requests: I) -> FanOut<Self, futures_util::stream::Iter<I::IntoIter>, R>
    where
        I: IntoIterator,
        I::Item: IntoRequest<R, Self::Error>,
    {
        fan_out(self, requests)
    }

    /// `fastreq::fan_out_stream(self, requests)`.
    fn fan_out_stream<St>(self, requests: St) -> FanOut<Self, St, R>
    where
        St: Stream,
        St::Item: IntoRequest<R, Self::Error>,
    {
        fan_out_stream(self, requests)
    }
}

impl<S: Service<R>, R> FanOutExt<R> for S {}

pin_project! {
    /// A stream of [`Outcome`]s, one per input; see the [module docs](self).
    #[must_use = "streams do nothing unless polled"]
    pub struct FanOut<S, St, R>
    where
        S: Service<R>,
    {
        service: S,
        #[pin]
        input: St,
        input_done: bool,
        // An input taken from the stream, waiting for the service to be ready.
        pending: Option<(usize, R)>,
        next_index: usize,
        // In ordered mode: the index of the next outcome to emit.
        next_emit: usize,
        in_flight: FuturesUnordered<Indexed<S::Future>>,
        // Unordered: outcomes ready to emit. Ordered: one slot per index from `next_emit`.
        done: VecDeque<Option<Outcome<S::Response, S::Error>>>,
        ordered: bool,
        limit: usize,
        // Ordered mode: at most this many indexes from `next_emit` admitted (in flight or
        // held back); never below `limit` (0: `limit`).
        window: usize,
        progress: Progress,
    }
}

impl<S, St, R> FanOut<S, St, R>
where
    S: Service<R>,
{
    /// At most `limit` requests inside the service at once (default [`DEFAULT_LIMIT`]).
    /// In ordered mode this also bounds the outcomes held back for reordering.
    /// A `limit` of 0 is treated as 1.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit.max(1);
        self
    }

    /// Yield outcomes in input order instead of completion order.
    pub fn ordered(mut self) -> Self {
        self.ordered = true;
        self
    }

    /// In ordered mode, how far past the oldest unfinished request new ones may start: at
    /// most `window` requests from it are admitted, in flight (still at most
    /// [`limit`](FanOut::limit)) or finished and held back until it is done. The default,
    /// and any smaller value, is `limit`: then a slow request at the head stops new ones
    /// as soon as `limit` have started behind it. A larger window keeps the service busy
    /// behind a slow head, at the cost of holding up to `window` outcomes in memory.
    pub fn reorder_window(mut self, window: usize) -> Self {
        self.window = window;
        self
    }

    /// Live counters, readable while the stream runs.
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }
}

impl<S, St, R> fmt::Debug for FanOut<S, St, R>
where
    S: Service<R>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FanOut")
            .field("limit", &self.limit)
            .field("ordered", &self.ordered)
            .field("in_flight", &self.in_flight.len())
            .field("progress", &self.progress)
            .finish()
    }
}

impl<S, St, R> Stream for FanOut<S, St, R>
where
    S: Service<R>,
    St: Stream,
    St::Item: IntoRequest<R, S::Error>,
{
    type Item = Outcome<S::Response, S::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            // Emit what is already complete.
            if let Some(front) = this.done.front() {
                if !*this.ordered || front.is_some() {
                    let out = this.done.pop_front().flatten().expect("checked above");
                    if *this.ordered {
                        *this.next_emit += 1;
                    }
                    return Poll::Ready(Some(out));
                }
            }

            // Admit more inputs while there is room. An input is pulled before the service
            // is polled ready, so readiness (a rate token, a concurrency slot) is only taken
            // for a request that exists, and a bad input never waits for it.
            loop {
                if this.pending.is_none() {
                    if *this.input_done {
                        break;
                    }
                    let full = if *this.ordered {
                        this.in_flight.len() >= *this.limit
                            || *this.next_index - *this.next_emit >= (*this.window).max(*this.limit)
                    } else {
                        this.in_flight.len() + this.done.len() >= *this.limit
                    };
                    if full {
                        break;
                    }
                    let item = match this.input.as_mut().poll_next(cx) {
                        Poll::Ready(Some(item)) => item,
                        Poll::Ready(None) => {
                            *this.input_done = true;
                            break;
                        }
                        Poll::Pending => break,
                    };
                    let index = *this.next_index;
                    *this.next_index += 1;
                    this.progress.inner.started.fetch_add(1, Ordering::Relaxed);
                    if *this.ordered {
                        this.done.push_back(None);
                    }
                    match item.into_request() {
                        Ok(req) => *this.pending = Some((index, req)),
                        Err(e) => {
                            record(
                                this.done,
                                *this.ordered,
                                *this.next_emit,
                                this.progress,
                                index,
                                Err(e),
                            );
                            continue;
                        }
                    }
                }
                match this.service.poll_ready(cx) {
                    Poll::Ready(Ok(())) => {
                        let (index, req) = this.pending.take().expect("checked above");
                        let fut = this.service.call(req);
                        this.in_flight.push(Indexed { index, fut });
                    }
                    Poll::Ready(Err(e)) => {
                        // The service failed to become ready: this input gets that error.
                        let (index, _) = this.pending.take().expect("checked above");
                        record(
                            this.done,
                            *this.ordered,
                            *this.next_emit,
                            this.progress,
                            index,
                            Err(e),
                        );
                    }
                    Poll::Pending => break,
                }
            }

            if let Some(front) = this.done.front() {
                if !*this.ordered || front.is_some() {
                    continue;
                }
            }

            match this.in_flight.poll_next_unpin(cx) {
                Poll::Ready(Some((index, result))) => {
                    record(
                        this.done,
                        *this.ordered,
                        *this.next_emit,
                        this.progress,
                        index,
                        result,
                    );
                }
                Poll::Ready(None) | Poll::Pending => {
                    if *this.input_done
                        && this.pending.is_none()
                        && this.in_flight.is_empty()
                        && this.done.is_empty()
                    {
                        return Poll::Ready(None);
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let pending = self.in_flight.len()
            + usize::from(self.pending.is_some())
            + self.done.iter().filter(|d| d.is_some()).count();
        let (lo, hi) = if self.input_done {
            (0, Some(0))
        } else {
            self.input.size_hint()
        };
        (pending + lo, hi.and_then(|h| h.checked_add(pending)))
    }
}

fn record<T, E>(
    done: &mut VecDeque<Option<Outcome<T, E>>>,
    ordered: bool,
    next_emit: usize,
    progress: &Progress,
    index: usize,
    result: Result<T, E>,
) {
    progress.inner.completed.fetch_add(1, Ordering::Relaxed);
    if result.is_err() {
        progress.inner.failed.fetch_add(1, Ordering::Relaxed);
    }
    let outcome = Outcome { index, result };
    if ordered {
        done[index - next_emit] = Some(outcome);
    } else {
        done.push_back(Some(outcome));
    }
}
