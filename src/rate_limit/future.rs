//! The response future of [`RateLimit`](super::RateLimit).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime};

use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::limiter::{KeyedLimiter, Limiter};
use crate::error::Error;

type Waiter<K> = <<K as KeyedLimiter>::Limiter as Limiter>::Waiter;

pin_project! {
    /// The response future of [`RateLimit`](super::RateLimit).
    ///
    /// With a per-host limit it waits for the host's permit, then polls its own clone of
    /// the inner service ready, then calls it; a 429 or 503 with `Retry-After` pauses the
    /// host's bucket. Without one it is the inner future.
    pub struct ResponseFuture<S, B, K>
    where
        S: Service<Request<B>>,
        K: KeyedLimiter,
    {
        #[pin]
        state: State<S::Future>,
        inner: Option<S>,
        req: Option<Request<B>>,
        host: Option<K::Limiter>,
        waiter: Option<Waiter<K>>,
        max_pause: Duration,
        error: Option<Error>,
        // The wait for the host's permit (only while it has to wait).
        waiting: Option<crate::ext::WaitGuard>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Acquire,
        Ready,
        Call { #[pin] fut: F },
        Direct { #[pin] fut: F },
        Failed,
    }
}

impl<S, B, K> ResponseFuture<S, B, K>
where
    S: Service<Request<B>>,
    K: KeyedLimiter,
{
    pub(super) fn direct(fut: S::Future) -> Self {
        ResponseFuture {
            state: State::Direct { fut },
            inner: None,
            req: None,
            host: None,
            waiter: None,
            max_pause: Duration::ZERO,
            error: None,
            waiting: None,
        }
    }

    pub(super) fn error(error: Error) -> Self {
        ResponseFuture {
            state: State::Failed,
            inner: None,
            req: None,
            host: None,
            waiter: None,
            max_pause: Duration::ZERO,
            error: Some(error),
            waiting: None,
        }
    }

    pub(super) fn keyed(
        inner: S,
        req: Request<B>,
        host: Option<K::Limiter>,
        max_pause: Duration,
    ) -> Self {
        ResponseFuture {
            state: State::Acquire,
            inner: Some(inner),
            req: Some(req),
            waiter: host.as_ref().map(|_| Default::default()),
            host,
            max_pause,
            error: None,
            waiting: None,
        }
    }
}

impl<S, B, RB, K> Future for ResponseFuture<S, B, K>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Error: Into<Error>,
    K: KeyedLimiter,
{
    type Output = Result<Response<RB>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Direct { fut } => return fut.poll(cx).map_err(Into::into),
                StateProj::Failed => {
                    return Poll::Ready(Err(this.error.take().expect("polled after completion")))
                }
                StateProj::Acquire => {
                    if let (Some(host), Some(waiter)) = (this.host.as_ref(), this.waiter.as_mut()) {
                        let acquired = host.poll_acquire(waiter, cx);
                        if acquired.is_pending() {
                            if this.waiting.is_none() {
                                *this.waiting = this
                                    .req
                                    .as_ref()
                                    .and_then(|r| crate::ext::WaitGuard::start(r.extensions()));
                            }
                        } else {
                            // Ends the wait: its time is added to the request's WaitTime.
                            *this.waiting = None;
                        }
                        if let Err(e) = ready!(acquired) {
                            this.state.set(State::Failed);
                            let uri = this.req.as_ref().map(|r| r.uri().clone());
                            *this.error = Some(match uri {
                                Some(uri) if e.url().is_none() => e.with_url(uri),
                                _ => e,
                            });
                            continue;
                        }
                    }
                    // Drop the waiter (and its timer) now that the permit is ours.
                    *this.waiter = None;
                    this.state.set(State::Ready);
                }
                StateProj::Ready => {
                    let svc = this.inner.as_mut().expect("polled after completion");
                    if let Err(e) = ready!(svc.poll_ready(cx)) {
                        this.state.set(State::Failed);
                        *this.error = Some(e.into());
                        continue;
                    }
                    let req = this.req.take().expect("polled after completion");
                    let fut = svc.call(req);
                    // The clone is done: anything it held goes with the call.
                    *this.inner = None;
                    this.state.set(State::Call { fut });
                }
                StateProj::Call { fut } => {
                    let resp = ready!(fut.poll(cx)).map_err(Into::into)?;
                    if let Some(host) = this.host.take() {
                        pause_on_retry_after(&host, &resp, *this.max_pause);
                    }
                    return Poll::Ready(Ok(resp));
                }
            }
        }
    }
}

/// A 429 or 503 with `Retry-After` pauses the host's bucket (capped at `max_pause`).
fn pause_on_retry_after<L: Limiter, RB>(host: &L, resp: &Response<RB>, max_pause: Duration) {
    let status = resp.status();
    if max_pause.is_zero()
        || (status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE)
    {
        return;
    }
    let Some(delay) = crate::retry::retry_after(resp.headers(), SystemTime::now()) else {
        return;
    };
    let delay = delay.min(max_pause);
    if delay.is_zero() {
        return;
    }
    tracing::debug!(
        status = status.as_u16(),
        pause_ms = delay.as_millis() as u64,
        "rate limit: host answered with Retry-After; pausing its bucket"
    );
    // With a huge cap, a huge Retry-After must not overflow the clock: about 30 years (what
    // tokio takes for "never") is as long as a pause gets.
    let now = tokio::time::Instant::now();
    let far = Duration::from_secs(86_400 * 365 * 30);
    host.pause_until(now.checked_add(delay.min(far)).unwrap_or(now));
}

impl<S, B, K> fmt::Debug for ResponseFuture<S, B, K>
where
    S: Service<Request<B>>,
    K: KeyedLimiter,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Acquire => "waiting for the host's permit",
            State::Ready => "waiting for the inner service",
            State::Call { .. } | State::Direct { .. } => "calling",
            State::Failed => "failed",
        };
        f.debug_struct("rate_limit::ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
