//! The [`Limiter`] and [`KeyedLimiter`] traits: where permits come from.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::Instant;

use super::quota::Quota;
use crate::error::Error;

/// One shared budget of request permits.
///
/// [`TokenBucket`](super::TokenBucket) is the in-process implementation; a distributed store
/// (for example a GCRA script in Redis) implements this trait to share one quota between
/// processes, and plugs into [`RateLimitLayer`](super::RateLimitLayer) unchanged.
///
/// A limiter is a cheap handle: clones share one budget.
///
/// # Contract
///
/// - [`poll_acquire`](Self::poll_acquire) returns `Ready(Ok(()))` once a permit is granted to
///   `waiter`; the request may then be sent. Each `Ready(Ok(()))` is one permit.
/// - Waiters are served first come, first served (from their first poll).
/// - After `Ready`, the same waiter can be polled again for the next permit.
/// - Dropping a waiter that is still waiting gives up its place in the line.
/// - An error (the store is unreachable, say) is an
///   [`ErrorKind::RateLimiter`](crate::ErrorKind::RateLimiter) error; it fails the request.
pub trait Limiter: Clone + Send + Sync + 'static {
    /// The state of one caller waiting for permits (its place in line, its timer).
    ///
    /// A fresh `Default` waiter holds no place in line until it is first polled.
    type Waiter: Default + Send + 'static;

    /// Polls for one permit for `waiter`, registering `cx` to be woken when it may be
    /// granted.
    fn poll_acquire(
        &self,
        waiter: &mut Self::Waiter,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Error>>;

    /// The current quota.
    fn quota(&self) -> Quota;

    /// Changes the quota. It takes effect at once, also for requests already waiting.
    fn set_quota(&self, quota: Quota);

    /// Grants no permit before `until`; from then on permits resume one by one at the
    /// quota's rate (no burst at the end of the pause). An earlier `until` than a pause
    /// already in force changes nothing.
    fn pause_until(&self, until: Instant);

    /// Waits for one permit.
    ///
    /// ```
    /// use fastreq::rate_limit::{Limiter, Quota, TokenBucket};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
    /// let bucket = TokenBucket::new(Quota::new(1000.0, 10)?);
    /// for _ in 0..10 {
    ///     bucket.acquire().await?; // the burst: no waiting
    /// }
    /// # Ok(()) }
    /// ```
    fn acquire(&self) -> Acquire<Self> {
        Acquire {
            limiter: self.clone(),
            waiter: Self::Waiter::default(),
        }
    }
}

/// Many budgets, one per key (the built-in layer uses one per host).
///
/// [`HostBuckets`](super::HostBuckets) is the in-process implementation; it evicts idle
/// buckets so that memory stays bounded.
pub trait KeyedLimiter: Clone + Send + Sync + 'static {
    /// The budget of one key.
    type Limiter: Limiter;

    /// The budget for `key`, created with [`quota`](Self::quota) if it does not exist.
    ///
    /// The key of a request is given by [`host_key`](super::host_key) (for example
    /// `https://api.example:443`).
    fn limiter(&self, key: &str) -> Result<Self::Limiter, Error>;

    /// The quota of each key.
    fn quota(&self) -> Quota;

    /// Changes the quota of every key, existing and future; it takes effect at once, also
    /// for requests already waiting.
    fn set_quota(&self, quota: Quota);
}

/// The future of [`Limiter::acquire`]: resolves when one permit is granted.
///
/// Dropping it before then gives up its place in line.
#[must_use = "futures do nothing unless polled"]
pub struct Acquire<L: Limiter> {
    limiter: L,
    waiter: L::Waiter,
}

impl<L: Limiter> Unpin for Acquire<L> {}

impl<L: Limiter> Future for Acquire<L> {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.limiter.poll_acquire(&mut this.waiter, cx)
    }
}

impl<L: Limiter + fmt::Debug> fmt::Debug for Acquire<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}
