//! [`RateLimitHandle`]: change the rates at run time.

use std::fmt;

use super::bucket::TokenBucket;
use super::keyed::HostBuckets;
use super::limiter::{KeyedLimiter, Limiter};
use super::quota::Quota;
use crate::error::Error;

/// Reads and changes the quotas of a [`RateLimitLayer`](super::RateLimitLayer) and of every
/// service built from it, while they run.
///
/// A change takes effect at once, also for requests already waiting: a faster rate wakes
/// them sooner. Permits already owed keep their count (a request that had half an interval
/// left to wait has half of the new interval left).
///
/// Invalid values, or changing a limit the layer does not have, are
/// [`ErrorKind::Config`](crate::ErrorKind::Config) errors and change nothing.
#[derive(Clone)]
pub struct RateLimitHandle<L = TokenBucket, K = HostBuckets> {
    global: Option<L>,
    per_host: Option<K>,
}

impl<L: Limiter, K: KeyedLimiter> RateLimitHandle<L, K> {
    pub(super) fn new(global: Option<L>, per_host: Option<K>) -> Self {
        RateLimitHandle { global, per_host }
    }

    fn global(&self) -> Result<&L, Error> {
        self.global
            .as_ref()
            .ok_or_else(|| Error::config("this rate limit has no global `rate` to change"))
    }

    fn per_host(&self) -> Result<&K, Error> {
        self.per_host
            .as_ref()
            .ok_or_else(|| Error::config("this rate limit has no `per_host_rate` to change"))
    }

    /// The global quota, if a global limit is set.
    pub fn quota(&self) -> Option<Quota> {
        self.global.as_ref().map(Limiter::quota)
    }

    /// The per-host quota, if a per-host limit is set.
    pub fn per_host_quota(&self) -> Option<Quota> {
        self.per_host.as_ref().map(KeyedLimiter::quota)
    }

    /// Sets the global quota.
    pub fn set_quota(&self, quota: Quota) -> Result<(), Error> {
        self.global()?.set_quota(quota);
        Ok(())
    }

    /// Sets the global rate, keeping the burst.
    pub fn set_rate(&self, rate: f64) -> Result<(), Error> {
        let g = self.global()?;
        g.set_quota(g.quota().with_rate(rate)?);
        Ok(())
    }

    /// Sets the global burst, keeping the rate.
    pub fn set_burst(&self, burst: u32) -> Result<(), Error> {
        let g = self.global()?;
        g.set_quota(g.quota().with_burst(burst)?);
        Ok(())
    }

    /// Sets the quota of every host.
    pub fn set_per_host_quota(&self, quota: Quota) -> Result<(), Error> {
        self.per_host()?.set_quota(quota);
        Ok(())
    }

    /// Sets the rate of every host, keeping the burst.
    pub fn set_per_host_rate(&self, rate: f64) -> Result<(), Error> {
        let k = self.per_host()?;
        k.set_quota(k.quota().with_rate(rate)?);
        Ok(())
    }

    /// Sets the burst of every host, keeping the rate.
    pub fn set_per_host_burst(&self, burst: u32) -> Result<(), Error> {
        let k = self.per_host()?;
        k.set_quota(k.quota().with_burst(burst)?);
        Ok(())
    }
}

impl<L: Limiter, K: KeyedLimiter> fmt::Debug for RateLimitHandle<L, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitHandle")
            .field("quota", &self.quota())
            .field("per_host_quota", &self.per_host_quota())
            .finish()
    }
}
