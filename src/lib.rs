//! fastreq issues many HTTP requests in parallel, politely and reliably.
//!
//! Every concern is a [`tower::Layer`]: rate limiting, concurrency limits, retries with
//! backoff and jitter, proxy and user-agent rotation, cookies, safe redirects, decompression
//! and timeouts, over an HTTP [`Backend`] (hyper 1 + rustls). [`stack()`] assembles them in
//! the right order into a [`Client`]; [`fan_out()`] drives thousands of requests through any
//! service with bounded memory and exactly one [`Outcome`] per input.
//!
//! ```
//! use std::time::Duration;
//! use futures_util::StreamExt;
//! use fastreq::{Body, ResponseBody};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
//! // In production the backend is the default hyper one; any tower service works, here an
//! // in-memory one so the example runs without a network.
//! let backend = tower::service_fn(|req: http::Request<Body>| async move {
//!     let body = format!("hello from {}", req.uri().path());
//!     Ok::<_, fastreq::Error>(http::Response::new(ResponseBody::from(body)))
//! });
//! let client = fastreq::stack()
//!     .concurrency(16)
//!     .rate_limit(1_000.0)
//!     .retries(2)
//!     .timeout(Duration::from_secs(10))
//!     .backend(backend)
//!     .build()?;
//!
//! let urls = (0..100).map(|i| format!("http://api.test/item/{i}"));
//! let mut outcomes = client.fan_out(urls.map(fastreq::get));
//! let mut ok = 0;
//! while let Some(outcome) = outcomes.next().await {
//!     let page = outcome.result?;
//!     assert!(page.text().starts_with("hello from /item/"));
//!     ok += 1;
//! }
//! assert_eq!(ok, 100);
//! # Ok(()) }
//! ```
//!
//! # Map
//!
//! The preset, outermost first (see [`stack`](mod@stack) for why this order):
//!
//! | layer | module | what it does |
//! |---|---|---|
//! | retry | [`retry`] | exponential backoff with jitter, `Retry-After`, budget, deadline |
//! | default headers | [`default_headers`] | headers added when missing |
//! | user agent | [`user_agent`] | `fastreq/<version>`, or rotation over browser strings |
//! | proxy rotation | [`proxy`] | a proxy per attempt, strategies, health and cooldown |
//! | redirects | [`redirect`] | safe redirects: credentials stripped across origins, http(s) only |
//! | cookies | `cookies` (feature `cookies`) | a bounded shared jar with public-suffix rules |
//! | rate limit | [`rate_limit`] | a shared token bucket, global and per host |
//! | concurrency | [`concurrency`] | global and per-host limits, held until the body ends |
//! | timeout | [`timeout`] | per hop to headers, body idle |
//! | decompression | `decompression` (feature `decompression`) | gzip, br, zstd, deflate, capped |
//! | backend | [`backend`] | hyper-util pooled client, HTTP/1.1 + HTTP/2, rustls, proxy connectors |
//!
//! And around them:
//!
//! | part | what it is |
//! |---|---|
//! | [`stack()`], [`StackBuilder`], [`Client`] | the preset; [`builder_ext`] adds the layers to any `ServiceBuilder` |
//! | [`request()`], [`get`], [`post`], [`RequestBuilder`] | build requests; per-request overrides in [`ext`] |
//! | [`Body`] | request body: empty, full (replayable) or streaming (sent once) |
//! | [`ResponseBody`], [`ResponseExt`], [`Fetched`] | read responses with a size cap; buffered responses |
//! | [`fan_out()`], [`FanOut`], [`Outcome`], [`Progress`] | many requests through one service |
//! | [`get_all`], [`get_all_with`], [`fetch()`], [`Fetch`], [`blocking`] | the simple buffered path |
//! | [`Error`], [`ErrorKind`], [`Redactor`] | one error type; secrets redacted from URLs |
//!
//! # Constructors: one rule for every layer
//!
//! - A layer's `new` (and its other shorthand constructors that take numbers, such as
//!   `RateLimitLayer::per_host` or `DecompressionLayer::with_max_decoded_size`) **never
//!   fails**, so it goes straight into `ServiceBuilder::layer`; a number out of range is
//!   clamped to the nearest accepted value, as each constructor documents (a rate of 0
//!   becomes [`rate_limit::MIN_RATE`], a concurrency limit of 0 becomes 1).
//! - Each of those has a `try_` twin (`RateLimitLayer::try_new`, …) that refuses such a
//!   number with an [`ErrorKind::Config`] error naming it: use it for values read from
//!   users.
//! - Builders (`RateLimitLayer::builder()`, …) validate every option, keep the first error
//!   and return it from `build()`; constructors that parse text (a header value, a proxy
//!   line, a PEM file) return a `Result`, since there is no nearest valid text.
//!
//! ```
//! use std::time::Duration;
//! use fastreq::{concurrency::ConcurrencyLimitLayer, rate_limit::RateLimitLayer};
//! use fastreq::timeout::TimeoutLayer;
//!
//! let _builder = tower::ServiceBuilder::new()
//!     .layer(RateLimitLayer::new(50.0))
//!     .layer(ConcurrencyLimitLayer::new(8))
//!     .layer(TimeoutLayer::new(Duration::from_secs(10)));
//! assert_eq!(ConcurrencyLimitLayer::new(0).max(), Some(1));
//! assert!(RateLimitLayer::try_new(0.0).unwrap_err().is_config());
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `http2` | yes | HTTP/2 by ALPN, h2c prior knowledge |
//! | `webpki-roots` | yes | bundled Mozilla root certificates |
//! | `cookies` | yes | the cookie jar layer |
//! | `decompression` | yes | response decompression with a decoded-size cap |
//! | `native-roots` | no | the operating system's certificate store |
//! | `json` | no | `RequestBuilder::json`, `ResponseExt::json`, `Fetched::json` |
//! | `cli` | no | the `fastreq` command-line tool (brings `redis` for its work queue) |
//! | `redis` | no | rate limits shared through Redis (`rate_limit::redis`) and a shared work queue (`queue`) |
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backend;
pub mod blocking;
mod body;
pub mod builder_ext;
pub mod collect;
pub mod concurrency;
#[cfg(feature = "cookies")]
pub mod cookies;
#[cfg(feature = "decompression")]
pub mod decompression;
pub mod default_headers;
mod error;
pub mod ext;
pub mod fan_out;
mod fetch;
mod host_key;
pub mod proxy;
#[cfg(feature = "redis")]
pub mod queue;
pub mod rate_limit;
pub mod redirect;
pub mod request;
pub mod response;
pub mod retry;
pub mod stack;
pub mod timeout;
pub mod user_agent;

#[cfg(feature = "__fuzz")]
#[doc(hidden)]
pub mod __fuzz;

pub use backend::{Backend, BackendBuilder, Certificate};
pub use body::Body;
pub use error::{redact_url, BoxError, Error, ErrorKind, Redactor, DEFAULT_REDACTED_PARAMS};
pub use fan_out::{fan_out, fan_out_stream, FanOut, FanOutExt, IntoRequest, Outcome, Progress};
pub use fetch::{fetch, get_all, get_all_with, Fetch};
pub use request::{delete, get, head, post, put, request, RequestBuilder};
pub use response::{Fetched, ResponseBody, ResponseExt, DEFAULT_BODY_LIMIT};
pub use stack::{stack, Client, StackBuilder};
