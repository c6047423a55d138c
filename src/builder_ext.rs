//! [`ServiceBuilderExt`]: fastreq's layers as methods on [`tower::ServiceBuilder`].
//!
//! For composing fastreq's layers by hand inside an existing tower or axum application, in
//! the manner of tower-http's `ServiceBuilderExt`. Keep the order of the preset
//! ([`stack`](mod@crate::stack)): retry outermost, then per-attempt layers, redirects, cookies,
//! rate limit, concurrency limit, timeout, decompression, backend.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use tower::{ServiceBuilder, ServiceExt};
//! use fastreq::builder_ext::ServiceBuilderExt;
//! use fastreq::{concurrency::ConcurrencyLimitLayer, rate_limit::RateLimitLayer};
//! use fastreq::{retry::RetryLayer, timeout::TimeoutLayer, Body, ResponseBody, ResponseExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
//! let backend = tower::service_fn(|_req: http::Request<Body>| async {
//!     Ok::<_, fastreq::Error>(http::Response::new(ResponseBody::from("ok")))
//! });
//! let svc = ServiceBuilder::new()
//!     .retry_requests(RetryLayer::new())
//!     .user_agent_header(fastreq::user_agent::UserAgentLayer::new())
//!     .follow_redirects(fastreq::redirect::FollowRedirectLayer::new())
//!     .limit_rate(RateLimitLayer::new(50.0))
//!     .limit_concurrency(ConcurrencyLimitLayer::new(8))
//!     .timeout_hops(TimeoutLayer::new(Duration::from_secs(10)))
//!     .service(backend);
//! let resp = svc.oneshot(fastreq::get("http://a.test/").build()?).await?;
//! assert_eq!(resp.text().await?, "ok");
//! # Ok(()) }
//! ```

use tower::layer::util::Stack;
use tower::ServiceBuilder;

use crate::concurrency::ConcurrencyLimitLayer;
use crate::default_headers::DefaultHeadersLayer;
use crate::proxy::ProxyRotationLayer;
use crate::rate_limit::RateLimitLayer;
use crate::redirect::FollowRedirectLayer;
use crate::retry::RetryLayer;
use crate::timeout::TimeoutLayer;
use crate::user_agent::UserAgentLayer;

mod sealed {
    pub trait Sealed {}
    impl<L> Sealed for tower::ServiceBuilder<L> {}
}

/// Adds fastreq's layers to [`ServiceBuilder`]; see the [module docs](self).
///
/// The names avoid tower's own `retry`, `rate_limit`, `concurrency_limit` and `timeout`
/// methods, which add tower's layers.
pub trait ServiceBuilderExt<L>: sealed::Sealed + Sized {
    /// Adds fastreq's [`Retry`](crate::retry::Retry).
    fn retry_requests(self, layer: RetryLayer) -> ServiceBuilder<Stack<RetryLayer, L>>;
    /// Adds [`DefaultHeaders`](crate::default_headers::DefaultHeaders).
    fn default_headers(
        self,
        layer: DefaultHeadersLayer,
    ) -> ServiceBuilder<Stack<DefaultHeadersLayer, L>>;
    /// Adds [`UserAgent`](crate::user_agent::UserAgent).
    fn user_agent_header(self, layer: UserAgentLayer) -> ServiceBuilder<Stack<UserAgentLayer, L>>;
    /// Adds [`ProxyRotation`](crate::proxy::ProxyRotation).
    fn rotate_proxies(
        self,
        layer: ProxyRotationLayer,
    ) -> ServiceBuilder<Stack<ProxyRotationLayer, L>>;
    /// Adds fastreq's [`FollowRedirect`](crate::redirect::FollowRedirect).
    fn follow_redirects(
        self,
        layer: FollowRedirectLayer,
    ) -> ServiceBuilder<Stack<FollowRedirectLayer, L>>;
    /// Adds [`Cookies`](crate::cookies::Cookies) over a shared jar.
    #[cfg(feature = "cookies")]
    fn cookie_jar(
        self,
        layer: crate::cookies::CookieLayer,
    ) -> ServiceBuilder<Stack<crate::cookies::CookieLayer, L>>;
    /// Adds fastreq's [`RateLimit`](crate::rate_limit::RateLimit).
    fn limit_rate(self, layer: RateLimitLayer) -> ServiceBuilder<Stack<RateLimitLayer, L>>;
    /// Adds fastreq's [`ConcurrencyLimit`](crate::concurrency::ConcurrencyLimit).
    fn limit_concurrency(
        self,
        layer: ConcurrencyLimitLayer,
    ) -> ServiceBuilder<Stack<ConcurrencyLimitLayer, L>>;
    /// Adds fastreq's [`Timeout`](crate::timeout::Timeout) (per hop and body idle).
    fn timeout_hops(self, layer: TimeoutLayer) -> ServiceBuilder<Stack<TimeoutLayer, L>>;
    /// Adds [`Decompression`](crate::decompression::Decompression) with its size cap.
    #[cfg(feature = "decompression")]
    fn decompress(
        self,
        layer: crate::decompression::DecompressionLayer,
    ) -> ServiceBuilder<Stack<crate::decompression::DecompressionLayer, L>>;
}

impl<L> ServiceBuilderExt<L> for ServiceBuilder<L> {
    fn retry_requests(self, layer: RetryLayer) -> ServiceBuilder<Stack<RetryLayer, L>> {
        self.layer(layer)
    }
    fn default_headers(
        self,
        layer: DefaultHeadersLayer,
    ) -> ServiceBuilder<Stack<DefaultHeadersLayer, L>> {
        self.layer(layer)
    }
    fn user_agent_header(self, layer: UserAgentLayer) -> ServiceBuilder<Stack<UserAgentLayer, L>> {
        self.layer(layer)
    }
    fn rotate_proxies(
        self,
        layer: ProxyRotationLayer,
    ) -> ServiceBuilder<Stack<ProxyRotationLayer, L>> {
        self.layer(layer)
    }
    fn follow_redirects(
        self,
        layer: FollowRedirectLayer,
    ) -> ServiceBuilder<Stack<FollowRedirectLayer, L>> {
        self.layer(layer)
    }
    #[cfg(feature = "cookies")]
    fn cookie_jar(
        self,
        layer: crate::cookies::CookieLayer,
    ) -> ServiceBuilder<Stack<crate::cookies::CookieLayer, L>> {
        self.layer(layer)
    }
    fn limit_rate(self, layer: RateLimitLayer) -> ServiceBuilder<Stack<RateLimitLayer, L>> {
        self.layer(layer)
    }
    fn limit_concurrency(
        self,
        layer: ConcurrencyLimitLayer,
    ) -> ServiceBuilder<Stack<ConcurrencyLimitLayer, L>> {
        self.layer(layer)
    }
    fn timeout_hops(self, layer: TimeoutLayer) -> ServiceBuilder<Stack<TimeoutLayer, L>> {
        self.layer(layer)
    }
    #[cfg(feature = "decompression")]
    fn decompress(
        self,
        layer: crate::decompression::DecompressionLayer,
    ) -> ServiceBuilder<Stack<crate::decompression::DecompressionLayer, L>> {
        self.layer(layer)
    }
}
