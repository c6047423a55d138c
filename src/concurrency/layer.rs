//! [`ConcurrencyLimitLayer`] and its [`ConcurrencyLimitBuilder`].

use std::fmt;
use std::sync::Arc;

use http::Uri;
use tokio::sync::Semaphore;
use tower::Layer;

use super::hosts::HostMap;
use super::service::ConcurrencyLimit;
use crate::error::Error;

/// Applies [`ConcurrencyLimit`] to a service: at most `max` requests in flight in total
/// and at most `per_host` to any one host, each counted until the response body is
/// finished or dropped.
///
/// The layer holds the shared counters: every service it makes, and every clone of those,
/// draws from the same limits (so it is *global*, like tower's
/// `GlobalConcurrencyLimitLayer`). Build another layer for an independent limit. Cloning the
/// layer is cheap and shares the counters too; keep a clone to read
/// [`in_flight`](Self::in_flight) for a progress display or metrics.
///
/// See the [module docs](super) for what is counted and when a permit is released.
#[derive(Clone)]
pub struct ConcurrencyLimitLayer {
    pub(super) shared: Arc<Shared>,
}

/// The state shared by a layer, its services and their clones.
pub(super) struct Shared {
    pub(super) max: Option<usize>,
    pub(super) global: Option<Arc<Semaphore>>,
    pub(super) hosts: Option<HostMap>,
}

impl ConcurrencyLimitLayer {
    /// At most `max` requests in flight in total (no per-host limit).
    ///
    /// Never fails, so it goes straight into `ServiceBuilder::layer`: 0 is raised to 1 and
    /// a value above [`Semaphore::MAX_PERMITS`] is lowered to it. Use
    /// [`try_new`](Self::try_new) to refuse such a value instead.
    pub fn new(max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        ConcurrencyLimitLayer {
            shared: Arc::new(Shared {
                max: Some(max),
                global: Some(Arc::new(Semaphore::new(max))),
                hosts: None,
            }),
        }
    }

    /// Like [`new`](Self::new), but 0, or more than [`Semaphore::MAX_PERMITS`], is an
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) error naming the value.
    pub fn try_new(max: usize) -> Result<Self, Error> {
        ConcurrencyLimitLayer::builder().max(max).build()
    }

    /// A builder for a global limit, a per-host limit, or both.
    pub fn builder() -> ConcurrencyLimitBuilder {
        ConcurrencyLimitBuilder::default()
    }

    /// The global limit, if any.
    pub fn max(&self) -> Option<usize> {
        self.shared.max
    }

    /// The per-host limit, if any.
    pub fn max_per_host(&self) -> Option<usize> {
        self.shared.hosts.as_ref().map(HostMap::per_host)
    }

    /// Requests holding a slot now.
    ///
    /// With a global limit: the global permits held, that is requests whose response
    /// headers or body are not finished yet, plus services polled ready and not yet called
    /// (a ready service reserves its permit, and a permit freed while a service waits in
    /// `poll_ready` goes straight to it). A request waiting for its host's slot holds no
    /// global permit and is not counted. One atomic load.
    ///
    /// With only a per-host limit: the per-host permits held over all hosts (locks each
    /// shard of the host map in turn: fine for a progress bar, not for every request).
    pub fn in_flight(&self) -> usize {
        match (&self.shared.global, self.shared.max, &self.shared.hosts) {
            (Some(sem), Some(max), _) => max - sem.available_permits(),
            (_, _, Some(hosts)) => hosts.total_in_flight(),
            _ => 0,
        }
    }

    /// Per-host permits held for the host of `uri` (compared by scheme, host and port, the
    /// scheme's default port filled in). 0 without a per-host limit.
    pub fn in_flight_for(&self, uri: &Uri) -> usize {
        self.shared.hosts.as_ref().map_or(0, |h| h.in_flight(uri))
    }

    /// How many hosts the per-host map tracks now, idle entries not yet evicted included.
    ///
    /// Idle entries (no permit out, nobody waiting) are evicted as the map grows, so this
    /// stays around twice the number of busy hosts however many hosts were seen.
    pub fn tracked_hosts(&self) -> usize {
        self.shared.hosts.as_ref().map_or(0, HostMap::len)
    }

    /// Evicts every idle per-host entry now and returns how many were evicted. Never
    /// needed for correctness or to bound memory; useful to free memory at once after a
    /// burst over many hosts.
    pub fn evict_idle(&self) -> usize {
        self.shared.hosts.as_ref().map_or(0, HostMap::evict_idle)
    }
}

impl<S> Layer<S> for ConcurrencyLimitLayer {
    type Service = ConcurrencyLimit<S>;

    fn layer(&self, inner: S) -> ConcurrencyLimit<S> {
        ConcurrencyLimit::new(inner, self.clone())
    }
}

impl fmt::Debug for ConcurrencyLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimitLayer")
            .field("max", &self.max())
            .field("per_host", &self.max_per_host())
            .field(
                "in_flight",
                &self.shared.global.as_ref().map(|_| self.in_flight()),
            )
            .finish()
    }
}

/// Builds a [`ConcurrencyLimitLayer`].
///
/// | option | default | bounds |
/// |---|---|---|
/// | [`max`](Self::max) | none | requests in flight in total |
/// | [`per_host`](Self::per_host) | none | requests in flight to one host (scheme, host, port) |
///
/// Set either or both. [`build`](Self::build) fails with an
/// [`ErrorKind::Config`](crate::ErrorKind::Config) error, naming the value, when a limit is
/// 0 or above [`Semaphore::MAX_PERMITS`], or when neither is set (the first error wins).
///
/// ```
/// use fastreq::concurrency::ConcurrencyLimitLayer;
///
/// let layer = ConcurrencyLimitLayer::builder().max(64).per_host(8).build()?;
/// assert_eq!((layer.max(), layer.max_per_host()), (Some(64), Some(8)));
///
/// let err = ConcurrencyLimitLayer::builder().per_host(0).build().unwrap_err();
/// assert!(err.is_config());
/// # Ok::<(), fastreq::Error>(())
/// ```
#[derive(Debug, Default)]
#[must_use]
pub struct ConcurrencyLimitBuilder {
    max: Option<usize>,
    per_host: Option<usize>,
    error: Option<Error>,
}

impl ConcurrencyLimitBuilder {
    fn check(&mut self, name: &str, value: usize) -> Option<usize> {
        let problem = if value == 0 {
            "must be at least 1"
        } else if value > Semaphore::MAX_PERMITS {
            "is too large"
        } else {
            return Some(value);
        };
        if self.error.is_none() {
            self.error = Some(Error::config(format!(
                "concurrency limit `{name}` {problem} (got {value})"
            )));
        }
        None
    }

    /// At most `max` requests in flight in total (waiting happens in `poll_ready`).
    pub fn max(mut self, max: usize) -> Self {
        self.max = self.check("max", max);
        self
    }

    /// At most `max` requests in flight to any one host (waiting happens in the response
    /// future, first come, first served per host).
    pub fn per_host(mut self, max: usize) -> Self {
        self.per_host = self.check("per_host", max);
        self
    }

    /// The layer, or the first configuration error.
    pub fn build(self) -> Result<ConcurrencyLimitLayer, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.max.is_none() && self.per_host.is_none() {
            return Err(Error::config(
                "concurrency limit: set `max`, `per_host` or both",
            ));
        }
        Ok(ConcurrencyLimitLayer {
            shared: Arc::new(Shared {
                max: self.max,
                global: self.max.map(|n| Arc::new(Semaphore::new(n))),
                hosts: self.per_host.map(HostMap::new),
            }),
        })
    }
}
