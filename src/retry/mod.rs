//! Retrying failed requests with exponential backoff, jitter and `Retry-After`.
//!
//! [`RetryLayer`] wraps a service in [`Retry`]. It is ready to use: no policy to write.
//!
//! **What is retried.** Responses with status 429, 500, 502, 503 or 504, and errors that
//! mean the request did not get through: connect errors, timeouts of one attempt, proxy
//! failures, connection resets and connections closed before the response completed,
//! HTTP/2 `REFUSED_STREAM` and `GOAWAY` (see [`is_retryable_error`]). Other 4xx statuses
//! and other errors (TLS, invalid request, decode…) come back at once. Change the status
//! list with [`retry_on_status`](RetryBuilder::retry_on_status), or decide everything with
//! a [`classify`](RetryBuilder::classify) function.
//!
//! **Which requests.** Idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS, TRACE, QUERY)
//! after any retryable outcome. Other methods (POST, PATCH…) only after an error showing
//! that the server never processed the request ([`is_unprocessed_error`]): the connection
//! was never made, or HTTP/2 `REFUSED_STREAM` — sending it again cannot do anything twice
//! (RFC 9113 §8.7). A POST that got a 503, a timeout, a `GOAWAY` (hyper reports it on
//! streams the server processed too), or a reset once the server had it is not sent
//! again and comes back marked
//! [`NotRetried::NotIdempotent`], unless
//! [`retry_non_idempotent`](RetryBuilder::retry_non_idempotent) is on. In every case only
//! requests whose [`Body`](crate::Body) is replayable (empty or full bytes) are sent again.
//! A request with a streamed body is sent once; if its outcome would have been retried, the
//! real response or error comes back marked [`NotRetried::BodyNotReplayable`] — never a
//! silent resend, never a made-up error.
//!
//! **How often.** 3 retries by default (4 attempts); a request's
//! [`MaxRetries`](crate::ext::MaxRetries) extension (`.retries(n)` on the
//! [builder](crate::RequestBuilder::retries)) overrides it, 0 turning retries off.
//!
//! **How long between.** [`ExponentialBackoff`]: 100 ms, ×2 per retry, capped at 30 s,
//! with [`Jitter::Full`] by default (also `None`, `Equal`, `Decorrelated`, after AWS's
//! "Exponential Backoff and Jitter"), or any [`Backoff`]. Every request draws its delays from
//! its own random source (tower 0.5's `ExponentialBackoffMaker` gives every request the
//! same sequence). When a retried response has a `Retry-After` header (seconds or an
//! HTTP-date, parsed by [`retry_after`]), **the server's delay replaces the computed one**,
//! shorter or longer; if it is above [`max_retry_after`](RetryBuilder::max_retry_after)
//! (60 s), the layer stops and returns that response instead of sleeping.
//!
//! **Limits.** An optional [`RetryBudget`] caps retries to a share of the traffic (no retry
//! storm against a failing server), and an optional total
//! [`deadline`](RetryBuilder::deadline) bounds a request across all attempts and backoffs:
//! a `Timeout` error when it passes during an attempt; a backoff that would end after it is
//! not slept (the last outcome comes back, marked [`NotRetried::Deadline`]).
//!
//! **What comes back.** The last response of a retried request carries
//! [`Attempts`](crate::ext::Attempts)`(n)`; a first-try response carries none, and
//! [`ResponseExt::attempts`](crate::ResponseExt::attempts) reads either as a count (1 when
//! absent). The last error carries
//! [`Error::attempts`](crate::Error::attempts). When the layer declined to retry an outcome
//! it would otherwise have retried, the response has a [`NotRetried`] extension saying why,
//! and the error carries it in its source chain ([`NotRetried::from_error`]; same kind, URL
//! and message plus a `(not retried: …)` suffix, the original error behind the mark).
//!
//! **What each attempt sends.** A fresh copy of the request: method, URI, version, headers,
//! *all* extensions (they are `Clone` in `http` 1) and the body bytes (shared, not copied).
//! The copy is kept only for requests that may be retried (a POST's too, for the errors
//! above).
//!
//! **Resources.** Before a backoff the response being retried is dropped (its connection
//! and any concurrency permit its body holds are freed). The inner service is driven ready
//! again only when the next attempt starts, so a sleeping request holds no slot and no rate
//! token. The first attempt uses the service that `poll_ready` made ready; later attempts
//! use clones of a copy of the inner service made when the layer was applied.
//!
//! **Cost** when no retry is needed: one clone of the request head (headers and
//! extensions) and two `Arc` clones; no clone of the inner service.
//!
//! # Examples
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//! use fastreq::retry::{Jitter, NotRetried, RetryLayer};
//! use fastreq::{Body, ResponseBody, ResponseExt};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
//! let layer = RetryLayer::builder()
//!     .max_retries(3)
//!     .initial_backoff(Duration::from_millis(1))
//!     .jitter(Jitter::Equal)
//!     .build()?;
//!
//! // An in-memory backend that fails twice with 503, then answers.
//! let calls = Arc::new(AtomicU32::new(0));
//! let seen = calls.clone();
//! let svc = ServiceBuilder::new().layer(layer).service_fn(move |_req: http::Request<Body>| {
//!     let n = seen.fetch_add(1, Ordering::SeqCst);
//!     async move {
//!         let status = if n < 2 { 503 } else { 200 };
//!         Ok::<_, fastreq::Error>(
//!             http::Response::builder().status(status).body(ResponseBody::from("hi")).unwrap(),
//!         )
//!     }
//! });
//!
//! let resp = svc.clone().oneshot(fastreq::get("http://api.test/").build()?).await?;
//! assert_eq!(resp.status(), 200);
//! assert_eq!(resp.attempts(), 3);
//!
//! // POST is not retried by default: the 503 comes back, marked.
//! calls.store(0, Ordering::SeqCst);
//! let resp = svc.oneshot(fastreq::post("http://api.test/").body("x").build()?).await?;
//! assert_eq!(resp.status(), 503);
//! assert_eq!(resp.extensions().get::<NotRetried>(), Some(&NotRetried::NotIdempotent));
//! # Ok(()) }
//! ```

mod backoff;
mod budget;
mod future;
mod layer;
mod policy;
mod retry_after;
mod service;

pub use backoff::{
    Backoff, BackoffRng, ExponentialBackoff, Jitter, DEFAULT_BACKOFF_FACTOR,
    DEFAULT_INITIAL_BACKOFF, DEFAULT_MAX_BACKOFF,
};
pub use budget::RetryBudget;
pub use future::ResponseFuture;
pub use layer::{RetryBuilder, RetryLayer};
pub use policy::{
    is_retryable_error, is_unprocessed_error, NotRetried, DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER, DEFAULT_RETRY_STATUSES,
};
pub use retry_after::retry_after;
pub use service::Retry;
