//! fastreq issues many HTTP requests in parallel, politely and reliably.
//!
//! Requests are plain [`http::Request<Body>`](http::Request); the HTTP client is a
//! [`tower::Service`] ([`Backend`], hyper 1 + rustls); [`fan_out`] drives thousands of
//! requests through any service with bounded memory and exactly one [`Outcome`] per input.
//!
//! ```
//! use futures_util::StreamExt;
//! use fastreq::{Body, ResponseBody, ResponseExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
//! // In production the service is `fastreq::Backend::new()`; any tower service works,
//! // here an in-memory one so the example runs without a network.
//! let backend = tower::service_fn(|req: http::Request<Body>| async move {
//!     let body = format!("hello from {}", req.uri().path());
//!     Ok::<_, fastreq::Error>(http::Response::new(ResponseBody::from(body)))
//! });
//!
//! let urls = (0..100).map(|i| format!("http://api.test/item/{i}"));
//! let mut outcomes = fastreq::fan_out(backend, urls.map(fastreq::get)).limit(16);
//! let mut ok = 0;
//! while let Some(outcome) = outcomes.next().await {
//!     let text = outcome.result?.text().await?;
//!     assert!(text.starts_with("hello from /item/"));
//!     ok += 1;
//! }
//! assert_eq!(ok, 100);
//! # Ok(()) }
//! ```
//!
//! # Map
//!
//! | part | what it is |
//! |---|---|
//! | [`request`], [`get`], [`post`], [`RequestBuilder`] | build requests; per-request overrides in [`ext`] |
//! | [`Body`] | request body: empty, full (replayable) or streaming (sent once) |
//! | [`Backend`] | the HTTP client service: HTTP/1.1 + HTTP/2, TLS, pooling, resolver overrides |
//! | [`ResponseBody`], [`ResponseExt`], [`Fetched`] | read responses with a size cap; buffered responses |
//! | [`fan_out`], [`FanOut`], [`Outcome`], [`Progress`] | many requests through one service |
//! | [`get_all`], [`get_all_with`], [`fetch`], [`Fetch`], [`blocking`] | the simple buffered path |
//! | [`Error`], [`ErrorKind`], [`Redactor`] | one error type; secrets redacted from URLs |
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `http2` | yes | HTTP/2 by ALPN, h2c prior knowledge |
//! | `webpki-roots` | yes | bundled Mozilla root certificates |
//! | `native-roots` | no | the operating system's certificate store |
//! | `json` | no | `RequestBuilder::json`, `ResponseExt::json`, `Fetched::json` |
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backend;
pub mod blocking;
mod body;
pub mod builder_ext;
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
pub mod proxy;
pub mod rate_limit;
pub mod redirect;
pub mod request;
pub mod response;
pub mod retry;
pub mod stack;
pub mod timeout;
pub mod user_agent;

pub use backend::{Backend, BackendBuilder, Certificate};
pub use body::Body;
pub use error::{redact_url, BoxError, Error, ErrorKind, Redactor, DEFAULT_REDACTED_PARAMS};
pub use fan_out::{fan_out, fan_out_stream, FanOut, FanOutExt, IntoRequest, Outcome, Progress};
pub use fetch::{fetch, get_all, get_all_with, Fetch};
pub use request::{delete, get, head, post, put, request, RequestBuilder};
pub use response::{Fetched, ResponseBody, ResponseExt, DEFAULT_BODY_LIMIT};
pub use stack::{stack, Client, StackBuilder};
