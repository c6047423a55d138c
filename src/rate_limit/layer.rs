//! [`RateLimitLayer`] and its [`RateLimitBuilder`].

use std::fmt;
use std::time::Duration;

use tower::Layer;

use super::bucket::TokenBucket;
use super::handle::RateLimitHandle;
use super::keyed::HostBuckets;
use super::limiter::{KeyedLimiter, Limiter};
use super::quota::{check_burst, check_rate, Quota};
use super::service::RateLimit;
use super::DEFAULT_MAX_PAUSE;
use crate::error::Error;

/// Applies [`RateLimit`] to a service: a global rate, a per-host rate, or both.
///
/// The layer holds the limiters themselves (cheap shared handles), so **every service it
/// builds, and every clone of those, share one budget**. Build another layer for an
/// independent budget. [`handle`](Self::handle) changes the rates at run time.
///
/// | option | default |
/// |---|---|
/// | [`rate`](RateLimitBuilder::rate) / [`burst`](RateLimitBuilder::burst) | off / 1 |
/// | [`per_host_rate`](RateLimitBuilder::per_host_rate) / [`per_host_burst`](RateLimitBuilder::per_host_burst) | off / 1 |
/// | [`max_pause`](RateLimitBuilder::max_pause) (cap on a host's `Retry-After` pause) | 60 s |
///
/// See the [module docs](super).
#[derive(Clone)]
pub struct RateLimitLayer<L = TokenBucket, K = HostBuckets> {
    pub(super) global: Option<L>,
    pub(super) per_host: Option<K>,
    pub(super) max_pause: Duration,
}

impl RateLimitLayer {
    /// A global limit of `rate` requests per second, burst 1.
    ///
    /// Never fails, so it goes straight into `ServiceBuilder::layer`: a rate out of range is
    /// clamped into it (NaN, zero, negative and rates below
    /// [`MIN_RATE`](super::MIN_RATE) become `MIN_RATE`; rates above 10⁹, infinity included,
    /// become 10⁹, which admits one request per nanosecond). Use
    /// [`try_new`](Self::try_new) to refuse such a rate instead.
    pub fn new(rate: f64) -> Self {
        RateLimitLayer::from_limiters(
            Some(TokenBucket::new(Quota::per_second_clamped(rate))),
            None,
        )
    }

    /// Like [`new`](Self::new), but a rate that is zero, negative, NaN, infinite or below
    /// [`MIN_RATE`](super::MIN_RATE) is an [`ErrorKind::Config`](crate::ErrorKind::Config)
    /// error naming the value.
    pub fn try_new(rate: f64) -> Result<Self, Error> {
        RateLimitLayer::builder().rate(rate).build()
    }

    /// A limit of `rate` requests per second for each host, burst 1; out-of-range rates are
    /// clamped as in [`new`](Self::new).
    pub fn per_host(rate: f64) -> Self {
        RateLimitLayer::from_limiters(
            None,
            Some(HostBuckets::new(Quota::per_second_clamped(rate))),
        )
    }

    /// Like [`per_host`](Self::per_host), but an out-of-range rate is an
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) error naming the value.
    pub fn try_per_host(rate: f64) -> Result<Self, Error> {
        RateLimitLayer::builder().per_host_rate(rate).build()
    }

    /// A builder with every limit off.
    pub fn builder() -> RateLimitBuilder {
        RateLimitBuilder::default()
    }
}

impl<L, K> RateLimitLayer<L, K> {
    /// A layer over limiters of your own, for example a store shared between processes.
    /// `None` turns that limit off.
    pub fn from_limiters(global: Option<L>, per_host: Option<K>) -> Self {
        RateLimitLayer {
            global,
            per_host,
            max_pause: DEFAULT_MAX_PAUSE,
        }
    }

    /// Caps how long a host's `Retry-After` pauses its bucket (default 60 s);
    /// `Duration::ZERO` turns those pauses off.
    pub fn max_pause(mut self, max: Duration) -> Self {
        self.max_pause = max;
        self
    }

    /// The cap on a host's `Retry-After` pause.
    pub fn max_pause_duration(&self) -> Duration {
        self.max_pause
    }

    /// The global limiter, if any (for example to inspect a [`TokenBucket`]).
    pub fn global_limiter(&self) -> Option<&L> {
        self.global.as_ref()
    }

    /// The per-host limiter, if any (for example to inspect [`HostBuckets::len`]).
    pub fn per_host_limiter(&self) -> Option<&K> {
        self.per_host.as_ref()
    }
}

impl<L: Limiter, K: KeyedLimiter> RateLimitLayer<L, K> {
    /// A handle that reads and changes the rates of every service built from this layer.
    pub fn handle(&self) -> RateLimitHandle<L, K> {
        RateLimitHandle::new(self.global.clone(), self.per_host.clone())
    }

    /// The global quota, if a global limit is set.
    pub fn quota(&self) -> Option<Quota> {
        self.global.as_ref().map(Limiter::quota)
    }

    /// The per-host quota, if a per-host limit is set.
    pub fn per_host_quota(&self) -> Option<Quota> {
        self.per_host.as_ref().map(KeyedLimiter::quota)
    }
}

impl<S, L: Limiter, K: KeyedLimiter> Layer<S> for RateLimitLayer<L, K> {
    type Service = RateLimit<S, L, K>;

    fn layer(&self, inner: S) -> RateLimit<S, L, K> {
        RateLimit::from_parts(
            inner,
            self.global.clone(),
            self.per_host.clone(),
            self.max_pause,
        )
    }
}

impl<L: fmt::Debug, K: fmt::Debug> fmt::Debug for RateLimitLayer<L, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("global", &self.global)
            .field("per_host", &self.per_host)
            .field("max_pause", &self.max_pause)
            .finish()
    }
}

/// Builds a [`RateLimitLayer`] with the in-process limiters ([`TokenBucket`],
/// [`HostBuckets`]).
///
/// Set at least one of [`rate`](Self::rate) and [`per_host_rate`](Self::per_host_rate).
/// A rate that is zero, negative, NaN or infinite, a burst of 0, a burst without its rate,
/// or no rate at all is an [`ErrorKind::Config`](crate::ErrorKind::Config) error, which
/// [`build`](Self::build) returns (the first one).
#[derive(Debug)]
#[must_use]
pub struct RateLimitBuilder {
    rate: Option<f64>,
    burst: Option<u32>,
    per_host_rate: Option<f64>,
    per_host_burst: Option<u32>,
    max_pause: Duration,
    error: Option<Error>,
}

impl Default for RateLimitBuilder {
    fn default() -> Self {
        RateLimitBuilder {
            rate: None,
            burst: None,
            per_host_rate: None,
            per_host_burst: None,
            max_pause: DEFAULT_MAX_PAUSE,
            error: None,
        }
    }
}

impl RateLimitBuilder {
    fn record(&mut self, result: Result<(), Error>, what: &str) {
        if let Err(e) = result {
            if self.error.is_none() {
                let message = format!("{what}: {}", e.message().unwrap_or_default());
                self.error = Some(Error::config(message));
            }
        }
    }

    /// Global limit: `rate` requests per second over all hosts (fractions allowed: `0.5`
    /// is one request every two seconds).
    pub fn rate(mut self, rate: f64) -> Self {
        self.record(check_rate(rate), "`rate`");
        self.rate = Some(rate);
        self
    }

    /// Global burst: how many requests may go at once after an idle period (default 1).
    pub fn burst(mut self, burst: u32) -> Self {
        self.record(check_burst(burst), "`burst`");
        self.burst = Some(burst);
        self
    }

    /// Per-host limit: `rate` requests per second to each host (`scheme://host:port`, see
    /// [`host_key`](super::host_key)). It also enables pausing a host that answers 429 or 503
    /// with `Retry-After`.
    pub fn per_host_rate(mut self, rate: f64) -> Self {
        self.record(check_rate(rate), "`per_host_rate`");
        self.per_host_rate = Some(rate);
        self
    }

    /// Per-host burst (default 1).
    pub fn per_host_burst(mut self, burst: u32) -> Self {
        self.record(check_burst(burst), "`per_host_burst`");
        self.per_host_burst = Some(burst);
        self
    }

    /// Caps how long a 429 or 503 with `Retry-After` pauses that host's bucket
    /// (default 60 s); `Duration::ZERO` turns the pauses off.
    pub fn max_pause(mut self, max: Duration) -> Self {
        self.max_pause = max;
        self
    }

    /// The layer, or the first configuration error.
    pub fn build(self) -> Result<RateLimitLayer, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.burst.is_some() && self.rate.is_none() {
            return Err(Error::config("rate limit `burst` is set but `rate` is not"));
        }
        if self.per_host_burst.is_some() && self.per_host_rate.is_none() {
            return Err(Error::config(
                "rate limit `per_host_burst` is set but `per_host_rate` is not",
            ));
        }
        if self.rate.is_none() && self.per_host_rate.is_none() {
            return Err(Error::config(
                "rate limit needs `rate`, `per_host_rate` or both",
            ));
        }
        let global = match self.rate {
            Some(rate) => Some(TokenBucket::new(Quota::new(rate, self.burst.unwrap_or(1))?)),
            None => None,
        };
        let per_host = match self.per_host_rate {
            Some(rate) => Some(HostBuckets::new(Quota::new(
                rate,
                self.per_host_burst.unwrap_or(1),
            )?)),
            None => None,
        };
        Ok(RateLimitLayer::from_limiters(global, per_host).max_pause(self.max_pause))
    }
}
