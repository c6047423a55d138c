//! [`ProxyRotationLayer`] and its settings.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower::Layer;

use super::picker::{Picker, Strategy};
use super::service::ProxyRotation;
use super::ProxyPool;

/// What to do when every proxy of the pool is cooling down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WhenAllDown {
    /// Wait until the first proxy recovers, then use it (the default). The wait happens
    /// in the rotation layer, before the request takes a rate token or a concurrency slot.
    ///
    /// It never outlasts the request: when the first recovery is later than the request's
    /// [`Deadline`](crate::ext::Deadline), its [`RequestTimeout`](crate::ext::RequestTimeout)
    /// or the layer's [`max_wait`](ProxyRotationLayer::max_wait) (the earliest of those
    /// present), the request fails at once — no sleep until the bound — with
    /// [`NoProxyAvailable`](crate::ErrorKind::NoProxyAvailable), saying when the first proxy
    /// recovers, with the pool's last proxy failure as its source. Without any of those the
    /// wait is unbounded. The start of a wait is logged at WARN (`all proxies down,
    /// waiting N s`), once for all the requests waiting for the same recovery.
    #[default]
    Wait,
    /// Fail at once with [`NoProxyAvailable`](crate::ErrorKind::NoProxyAvailable), whose
    /// [source](std::error::Error::source) is the pool's last proxy failure (a
    /// [`ProxyError`](super::ProxyError): the 407, the SOCKS reply, the refused connection).
    Fail,
    /// Send the request directly, without a proxy. **This exposes your own address to the
    /// target**; only for users who explicitly accept that.
    GoDirect,
}

/// Routes each attempt through a proxy of a [`ProxyPool`]. See the [module docs](super).
#[derive(Clone)]
pub struct ProxyRotationLayer {
    pub(crate) pool: ProxyPool,
    pub(crate) picker: Arc<dyn Picker>,
    pub(crate) picker_name: &'static str,
    pub(crate) when_all_down: WhenAllDown,
    pub(crate) max_wait: Option<Duration>,
}

impl ProxyRotationLayer {
    /// Rotation over `pool`, round robin, waiting when every proxy is cooling down.
    pub fn new(pool: ProxyPool) -> Self {
        ProxyRotationLayer {
            pool,
            picker: Strategy::RoundRobin.picker(),
            picker_name: "RoundRobin",
            when_all_down: WhenAllDown::Wait,
            max_wait: None,
        }
    }

    /// Uses a built-in strategy (default [`Strategy::RoundRobin`]).
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.picker = strategy.picker();
        self.picker_name = match strategy {
            Strategy::RoundRobin => "RoundRobin",
            Strategy::Random => "Random",
            Strategy::StickyPerHost => "StickyPerHost",
        };
        self
    }

    /// Uses a custom [`Picker`] (shared by every clone of the layer and its services).
    pub fn picker(mut self, picker: impl Picker) -> Self {
        self.picker = Arc::new(picker);
        self.picker_name = "custom";
        self
    }

    /// What to do when every proxy is cooling down (default [`WhenAllDown::Wait`]).
    pub fn when_all_down(mut self, when: WhenAllDown) -> Self {
        self.when_all_down = when;
        self
    }

    /// With [`WhenAllDown::Wait`], fail at once with
    /// [`NoProxyAvailable`](crate::ErrorKind::NoProxyAvailable) when the first proxy recovers
    /// more than `max` after the request arrived, instead of waiting (default: no bound but
    /// the request's own [`Deadline`](crate::ext::Deadline) and
    /// [`RequestTimeout`](crate::ext::RequestTimeout); the earliest bound applies).
    ///
    /// ```
    /// use std::time::Duration;
    /// use fastreq::proxy::{ProxyPool, ProxyRotationLayer};
    ///
    /// let pool = ProxyPool::from_lines("10.0.0.1:3128").unwrap();
    /// let layer = ProxyRotationLayer::new(pool).max_wait(Duration::from_secs(30));
    /// ```
    pub fn max_wait(mut self, max: Duration) -> Self {
        self.max_wait = Some(max);
        self
    }

    /// The pool.
    pub fn pool(&self) -> &ProxyPool {
        &self.pool
    }
}

impl fmt::Debug for ProxyRotationLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyRotationLayer")
            .field("pool", &self.pool)
            .field("picker", &self.picker_name)
            .field("when_all_down", &self.when_all_down)
            .field("max_wait", &self.max_wait)
            .finish()
    }
}

impl<S> Layer<S> for ProxyRotationLayer {
    type Service = ProxyRotation<S>;

    fn layer(&self, inner: S) -> ProxyRotation<S> {
        ProxyRotation {
            inner,
            config: self.clone(),
        }
    }
}
