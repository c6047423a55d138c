//! Rate limiting: a global rate, a per-host rate, or both, shared by every clone.
//!
//! [`RateLimitLayer`] wraps a service in [`RateLimit`]. Limits are token buckets (GCRA):
//! `rate` requests per second (fractions allowed: `0.5` is one every two seconds) with
//! bursts of up to `burst` (default 1). Counted from the first admission after an idle
//! period, at most `burst + rate·t` requests are admitted by time `t` — there is no fixed
//! window.
//!
//! - **One budget.** The layer holds the limiter state behind an `Arc`: every service it
//!   builds and every clone of them share it (tower's `RateLimit` gives each clone its own
//!   window, which let 1,500 requests through a 5/s limit: tower#794, axum#2634).
//! - **Fair.** Waiters are served first come, first served; none starves, however many
//!   clones contend.
//! - **Nothing held while waiting.** The global permit is taken in `poll_ready`, before the
//!   inner service is polled ready (backpressure). The per-host permit is taken in the
//!   response future, which owns a clone of the inner service and polls it ready only
//!   after the permit is granted. Either way a request waiting for a permit holds no
//!   concurrency slot and no connection. The other side of this order: a request that has
//!   its permit may still wait for the inner service (a concurrency slot, say) and keeps
//!   the permit meanwhile, so after a long wait for slots the requests holding permits can
//!   go closer together than the rate. At most one per service clone holds a global
//!   permit; for per-host permits the `fan_out` limit bounds them.
//! - **Per host.** With [`per_host_rate`](RateLimitBuilder::per_host_rate) each host
//!   (`scheme://host:port`, see [`host_key`]) has its own bucket in [`HostBuckets`]; idle
//!   buckets are evicted, so memory stays bounded with millions of hosts.
//! - **Retry-After.** With a per-host limit, a `429` or `503` response carrying
//!   `Retry-After` (seconds or HTTP-date) pauses that host's bucket until then, capped by
//!   [`max_pause`](RateLimitBuilder::max_pause) (default 60 s). The requests waiting for
//!   that host then resume one by one at the host's rate, not all at once.
//! - **Precise at high rates.** Tokio's timers tick in milliseconds; a late wake-up grants
//!   every permit that fell due meanwhile (catch-up), so 5,000/s gives 5,000 per second,
//!   not 1,000. See [`TokenBucket`] for the exact rules.
//! - **Pluggable.** Limits come from the [`Limiter`] and [`KeyedLimiter`] traits; a store
//!   shared between processes implements them and plugs in with
//!   [`RateLimitLayer::from_limiters`]. A store that fails reports an
//!   [`ErrorKind::RateLimiter`](crate::ErrorKind::RateLimiter) error.
//! - **Adjustable.** [`RateLimitHandle`] changes rates and bursts while requests run; the
//!   change applies to waiting requests too.
//!
//! Where it sits: in [`fastreq::stack()`](crate) below retries and redirects (each attempt
//! and each hop takes a permit) and above concurrency limits and timeouts.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use fastreq::rate_limit::RateLimitLayer;
//! use fastreq::{Body, ResponseBody};
//! use tokio::time::Instant;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), fastreq::Error> {
//! let layer = RateLimitLayer::builder()
//!     .rate(100.0) // at most 100 requests per second overall ...
//!     .burst(10)
//!     .per_host_rate(2.0) // ... and 2 per second to each host
//!     .build()?;
//! let handle = layer.handle();
//!
//! // An in-memory backend so the example needs no network.
//! let svc = ServiceBuilder::new()
//!     .layer(layer)
//!     .service_fn(|_req: http::Request<Body>| async {
//!         Ok::<_, fastreq::Error>(http::Response::new(ResponseBody::empty()))
//!     });
//!
//! let start = Instant::now();
//! for _ in 0..3 {
//!     // Clones share one budget.
//!     svc.clone().oneshot(fastreq::get("http://a.test/").build()?).await?;
//! }
//! // a.test: one at once, then one every 500 ms.
//! assert_eq!(start.elapsed(), Duration::from_millis(1000));
//!
//! // Another host has its own bucket.
//! svc.clone().oneshot(fastreq::get("http://b.test/").build()?).await?;
//! assert_eq!(start.elapsed(), Duration::from_millis(1000));
//!
//! // Rates change at run time.
//! handle.set_per_host_rate(10.0)?;
//! assert_eq!(handle.per_host_quota().unwrap().rate(), 10.0);
//!
//! // Absurd values are configuration errors, not panics.
//! assert!(RateLimitLayer::try_new(0.0).unwrap_err().is_config());
//! assert!(RateLimitLayer::builder().rate(f64::NAN).build().unwrap_err().is_config());
//! # Ok(()) }
//! ```

mod bucket;
mod future;
mod handle;
mod keyed;
mod layer;
mod limiter;
mod quota;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
mod service;

#[cfg(feature = "redis")]
pub use self::redis::{
    OnRedisFailure, RedisHostLimiters, RedisLimiter, RedisStore, RedisStoreBuilder,
};
pub use bucket::{BucketWaiter, TokenBucket};
pub use future::ResponseFuture;
pub use handle::RateLimitHandle;
pub use keyed::{host_key, HostBuckets};
pub use layer::{RateLimitBuilder, RateLimitLayer};
pub use limiter::{Acquire, KeyedLimiter, Limiter};
pub use quota::{Quota, MIN_RATE};
pub use service::RateLimit;

use std::time::Duration;

/// The default cap on a host's `Retry-After` pause: 60 s.
pub const DEFAULT_MAX_PAUSE: Duration = Duration::from_secs(60);
