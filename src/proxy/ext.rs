//! The request and response extensions of proxy rotation.

use super::Proxy;

/// A per-request proxy choice that overrides any pool: `Some(proxy)` sends the request
/// (every redirect hop of it) through `proxy`, `None` sends it directly.
///
/// Set it with the request builder's `.proxy(..)` / `.no_proxy()`, or insert it into a
/// hand-built request. The [rotation layer](super::ProxyRotationLayer) leaves such a request
/// alone, and the [backend](crate::Backend) reads it before [`SelectedProxy`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyOverride(pub Option<Proxy>);

/// The proxy of an attempt.
///
/// On a request it is the rotation layer's choice, which the backend routes through. On a
/// response it is the proxy the backend used (absent for a direct request).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectedProxy(pub Proxy);
