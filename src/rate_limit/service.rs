//! The [`RateLimit`] service.

use std::cell::RefCell;
use std::fmt;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use tower_service::Service;

use super::bucket::TokenBucket;
use super::future::ResponseFuture;
use super::handle::RateLimitHandle;
use super::keyed::{write_host_key, HostBuckets};
use super::layer::RateLimitLayer;
use super::limiter::{KeyedLimiter, Limiter};
use crate::error::Error;

/// Admits requests at a global rate, a per-host rate, or both; see the [module docs](super).
///
/// - The global permit is taken in [`poll_ready`](Service::poll_ready) (backpressure),
///   **before** the inner service is polled: a request waiting for a permit holds nothing of
///   the inner service (no concurrency slot, no connection).
/// - The per-host permit is taken in the response future, which owns a clone of the inner
///   service and polls it ready only once the permit is granted, then calls it.
///
/// Clones share the limiters (one budget); a clone starts without a permit.
pub struct RateLimit<S, L: Limiter = TokenBucket, K = HostBuckets> {
    inner: S,
    global: Option<L>,
    per_host: Option<K>,
    max_pause: Duration,
    waiter: L::Waiter,
    /// A global permit is held (or there is no global limit) for the next `call`.
    permit: bool,
    /// When `poll_ready` began waiting for the global permit (only when it had to wait).
    waiting_since: Option<tokio::time::Instant>,
}

impl<S> RateLimit<S> {
    /// Wraps `inner` with the limits of `layer` (sharing its budget).
    pub fn new(inner: S, layer: &RateLimitLayer) -> Self {
        tower::Layer::layer(layer, inner)
    }
}

impl<S, L: Limiter, K> RateLimit<S, L, K> {
    pub(super) fn from_parts(
        inner: S,
        global: Option<L>,
        per_host: Option<K>,
        max_pause: Duration,
    ) -> Self {
        RateLimit {
            inner,
            global,
            per_host,
            max_pause,
            waiter: L::Waiter::default(),
            permit: false,
            waiting_since: None,
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

impl<S, L: Limiter, K: KeyedLimiter> RateLimit<S, L, K> {
    /// A handle that reads and changes the rates (shared with the layer and all clones).
    pub fn handle(&self) -> RateLimitHandle<L, K> {
        RateLimitHandle::new(self.global.clone(), self.per_host.clone())
    }
}

impl<S: Clone, L: Limiter, K: Clone> Clone for RateLimit<S, L, K> {
    fn clone(&self) -> Self {
        RateLimit {
            inner: self.inner.clone(),
            global: self.global.clone(),
            per_host: self.per_host.clone(),
            max_pause: self.max_pause,
            // A clone starts un-ready: it has no permit and no place in line.
            waiter: L::Waiter::default(),
            permit: false,
            waiting_since: None,
        }
    }
}

impl<S: fmt::Debug, L: Limiter + fmt::Debug, K: fmt::Debug> fmt::Debug for RateLimit<S, L, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("global", &self.global)
            .field("per_host", &self.per_host)
            .field("max_pause", &self.max_pause)
            .field("permit", &self.permit)
            .finish()
    }
}

thread_local! {
    static KEY: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The per-host limiter for `req`, with the key built in a reused buffer.
fn host_limiter<K: KeyedLimiter, B>(
    per_host: &K,
    req: &Request<B>,
) -> Option<Result<K::Limiter, Error>> {
    let lookup = |key: &mut String| {
        if write_host_key(req.uri(), key) {
            Some(per_host.limiter(key))
        } else {
            None
        }
    };
    KEY.with(|cell| match cell.try_borrow_mut() {
        Ok(mut key) => lookup(&mut key),
        // Re-entered from a custom limiter: use a fresh buffer.
        Err(_) => lookup(&mut String::new()),
    })
}

impl<S, B, RB, L, K> Service<Request<B>> for RateLimit<S, L, K>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone,
    S::Error: Into<Error>,
    L: Limiter,
    K: KeyedLimiter,
{
    type Response = Response<RB>;
    type Error = Error;
    type Future = ResponseFuture<S, B, K>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if !self.permit {
            if let Some(global) = &self.global {
                let acquired = global.poll_acquire(&mut self.waiter, cx);
                if acquired.is_pending() && self.waiting_since.is_none() {
                    self.waiting_since = Some(tokio::time::Instant::now());
                }
                ready!(acquired)?;
            }
            self.permit = true;
        }
        if self.per_host.is_some() {
            // The response future waits for the host's permit, then polls the inner
            // service ready itself.
            return Poll::Ready(Ok(()));
        }
        // Only now, with the permit in hand, may the inner service take resources.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        assert!(
            std::mem::take(&mut self.permit),
            "RateLimit::call without a successful poll_ready"
        );
        if let Some(since) = self.waiting_since.take() {
            crate::ext::record_wait(req.extensions(), since);
        }
        let Some(per_host) = &self.per_host else {
            return ResponseFuture::direct(self.inner.call(req));
        };
        let host = match host_limiter(per_host, &req) {
            Some(Ok(limiter)) => Some(limiter),
            Some(Err(e)) => return ResponseFuture::error(e.with_url(req.uri())),
            // No host: nothing to key on; the inner service will judge the URI.
            None => None,
        };
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::keyed(inner, req, host, self.max_pause)
    }
}
