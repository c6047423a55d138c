//! Proxy rotation: a pool of proxies, picked per attempt, with health tracking.
//!
//! [`ProxyRotationLayer`] picks a proxy of a [`ProxyPool`] for each attempt and records it
//! on the request as [`SelectedProxy`]; the [`Backend`](crate::Backend) routes the request
//! through it. In fastreq's stack the layer sits above the redirect layer, so every hop of
//! one attempt leaves through the same proxy, while a retry (above) may take another one.
//!
//! - **Proxies** ([`Proxy`]): `http`, `https` (TLS to the proxy), `socks5` (names resolved
//!   locally), `socks5h` (names resolved by the proxy) and `socks4`, parsed from
//!   `scheme://user:pass@host:port`, `host:port` or `host:port:user:pass` lines. Credentials
//!   never appear in `Debug`, `Display`, logs or errors.
//! - **Strategies** ([`Strategy`]): round robin (default), random, sticky per target host,
//!   or your own [`Picker`].
//! - **Health**: a proxy that fails — connection refused, `CONNECT` answered 407/403/5xx,
//!   SOCKS handshake refused, handshake timeout: the backend marks such errors with a
//!   [`ProxyError`] — cools down for 60 s, doubling on repeated failures up to 15 min
//!   (see [`ProxyPoolBuilder::cooldown`]); a success clears it.
//! - **All cooling down** ([`WhenAllDown`]): wait for the first to recover (default; the wait
//!   happens here, above rate limits and concurrency limits, so it holds neither, and never
//!   beyond the request's [`Deadline`](crate::ext::Deadline),
//!   [`RequestTimeout`](crate::ext::RequestTimeout) or
//!   [`max_wait`](ProxyRotationLayer::max_wait)), or fail with
//!   [`NoProxyAvailable`](crate::ErrorKind::NoProxyAvailable), whose source is the last
//!   proxy failure. Going direct happens only with [`WhenAllDown::GoDirect`]: it would
//!   expose your address.
//! - **Errors name the proxy**: every error of an attempt through a proxy (of the pool or a
//!   [`ProxyOverride`]), whatever its kind, carries it: [`Error::proxy`](crate::Error::proxy),
//!   and its `Display` names it with the credentials hidden.
//! - **Per request**: a [`ProxyOverride`] extension (`Some(proxy)` or `None` for direct)
//!   bypasses the pool.
//! - **Validation**: [`ProxyPool::validate`] probes every proxy concurrently and reports which
//!   work; [`ProxyPool::remove_dead`] drops the others.
//!
//! # The backend side
//!
//! The [`Backend`](crate::Backend) keeps one connection pool per proxy (hyper-util's pool is
//! keyed by target only, so a shared pool would reuse another proxy's connection), created on
//! first use. `https://` targets go through an HTTP `CONNECT` tunnel (TLS to the target
//! inside it), plain `http://` targets are sent to an HTTP proxy in absolute form with
//! `Proxy-Authorization` (marked sensitive, and never sent to a target through a tunnel or
//! SOCKS), and SOCKS proxies tunnel both. The proxy handshake has its own timeout
//! (10 s, [`BackendBuilder::proxy_handshake_timeout`](crate::BackendBuilder::proxy_handshake_timeout)).
//!
//! # Examples
//!
//! ```
//! use fastreq::proxy::{ProxyPool, ProxyRotationLayer, SelectedProxy, Strategy};
//! use fastreq::{Body, ResponseBody, ResponseExt};
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
//! let pool = ProxyPool::from_lines("
//!     http://user:s3cret@10.0.0.1:3128
//!     socks5h://10.0.0.2:1080
//! ")?;
//!
//! // In production the inner service is `fastreq::Backend`, which routes through the
//! // chosen proxy; here an in-memory one answers with the proxy it was given.
//! let backend = tower::service_fn(|req: http::Request<Body>| async move {
//!     let proxy = req.extensions().get::<SelectedProxy>().map(|p| p.0.to_string());
//!     Ok::<_, fastreq::Error>(http::Response::new(ResponseBody::from(proxy.unwrap_or_default())))
//! });
//! let client = ProxyRotationLayer::new(pool.clone())
//!     .strategy(Strategy::RoundRobin)
//!     .layer(backend);
//!
//! let mut used = Vec::new();
//! for _ in 0..3 {
//!     let req = fastreq::get("http://api.test/").build()?;
//!     used.push(client.clone().oneshot(req).await?.text().await?);
//! }
//! assert_eq!(used, [
//!     "http://***@10.0.0.1:3128",
//!     "socks5h://10.0.0.2:1080",
//!     "http://***@10.0.0.1:3128",
//! ]);
//!
//! // A failing proxy cools down: the next attempts avoid it.
//! pool.mark_failed(&pool.proxies()[0]);
//! assert_eq!(pool.available().len(), 1);
//! # Ok(()) }
//! ```

mod address;
mod error;
mod ext;
mod future;
mod layer;
mod picker;
mod pool;
mod service;
mod validate;

#[cfg(feature = "__fuzz")]
pub(crate) use address::redact_line;
pub use address::{IntoProxy, Proxy, ProxyScheme};
pub use error::ProxyError;
pub use ext::{ProxyOverride, SelectedProxy};
pub use future::ResponseFuture;
pub use layer::{ProxyRotationLayer, WhenAllDown};
pub use picker::{PickContext, Picker, Random, RoundRobin, StickyPerHost, Strategy};
pub use pool::{ProxyHealth, ProxyPool, ProxyPoolBuilder, DEFAULT_COOLDOWN, DEFAULT_MAX_COOLDOWN};
pub use service::ProxyRotation;
pub use validate::{Probe, ProbeOutcome, ValidateOptions, Validation};
