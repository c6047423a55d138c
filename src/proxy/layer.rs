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
    /// Bound it with [`ProxyRotationLayer::max_wait`].
    #[default]
    Wait,
    /// Fail at once with [`NoProxyAvailable`](crate::ErrorKind::NoProxyAvailable).
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

    /// With [`WhenAllDown::Wait`], fail with
    /// [`NoProxyAvailable`](crate::ErrorKind::NoProxyAvailable) instead of waiting longer
    /// than `max` for a proxy to recover (default: no bound).
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
