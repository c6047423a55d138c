//! Timeouts per hop: up to the response headers, and while the response body is read.
//!
//! [`TimeoutLayer`] wraps a service in [`Timeout`]:
//!
//! - **Headers** (default 30 s): the response headers of each hop must arrive within this
//!   time, else the request fails with an [`ErrorKind::Timeout`] error ("no response
//!   headers within …"). The clock starts when the request reaches this layer, so time
//!   spent above it waiting for a rate token or a concurrency slot does not count. A
//!   request's [`RequestTimeout`](crate::ext::RequestTimeout) extension (set with
//!   [`RequestBuilder::timeout`](crate::RequestBuilder::timeout)) replaces the layer's value
//!   for that request; the layer's value applies when the request has none. (The
//!   [`Backend`](crate::Backend) honours that extension on its own too; whichever fires
//!   first reports the timeout.)
//! - **Body idle** (default 30 s): the response body is wrapped in a [`TimeoutBody`] that
//!   fails with a `Timeout` error ("response body idle for …") when it waits this long for
//!   its next frame. The clock starts at the body's first poll and restarts at the first
//!   wait after every frame, so a large body that keeps arriving is never cut off, and a
//!   consumer that is slow to read is not blamed on the server. On by default because a
//!   peer that stops sending mid-body would otherwise hold the request, its connection
//!   and its concurrency permit forever.
//! - **Body total** (default off): the whole body must arrive within this time of the
//!   headers.
//! - **The request's deadline**: a request that carries a [`Deadline`](crate::ext::Deadline)
//!   extension (the retry layer sets it from its total deadline,
//!   [`StackBuilder::total_timeout`](crate::StackBuilder::total_timeout)) fails with a
//!   `Timeout` error at that instant, whether it is still waiting for headers or its body
//!   is being read (buffered or streamed): a server that drips a body one byte at a time
//!   cannot hold the request past it.
//!
//! Every error carries the request URL, redacted (userinfo and secret query values hidden).
//! Errors of the inner service keep their kind; a `tower::timeout` or `tokio::time` elapsed
//! error from below becomes a `Timeout` error as well. A zero duration is a
//! [`ErrorKind::Config`] error; use `None` to turn a timeout off.
//!
//! The connect timeout lives in the [`Backend`](crate::Backend) and the total deadline
//! across retries in the retry layer, which hands it down as the [`Deadline`](crate::ext::Deadline).
//!
//! [`TimeoutBody`] holds a timer, so it is `!Unpin`: the [`ResponseExt`](crate::ResponseExt)
//! helpers read it as is; to poll it by hand, pin it first (`std::pin::pin!(body)`).
//!
//! Cost: one [`tokio::time::Sleep`] inside the response future (no allocation), and one
//! inside the body, created at the body's first wait and moved with
//! [`Sleep::reset`](tokio::time::Sleep::reset) rather than recreated.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use fastreq::timeout::TimeoutLayer;
//! use fastreq::{Body, ErrorKind, ResponseBody, ResponseExt};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
//! let layer = TimeoutLayer::builder()
//!     .headers(Duration::from_millis(200))
//!     .body_idle(Duration::from_secs(5))
//!     .build()?;
//!
//! // An in-memory backend: slow for /slow, immediate otherwise.
//! let svc = ServiceBuilder::new().layer(layer).service_fn(|req: http::Request<Body>| async move {
//!     if req.uri().path() == "/slow" {
//!         tokio::time::sleep(Duration::from_secs(10)).await;
//!     }
//!     Ok::<_, fastreq::Error>(http::Response::new(ResponseBody::from("hi")))
//! });
//!
//! let resp = svc.clone().oneshot(fastreq::get("http://api.test/fast").build()?).await?;
//! assert_eq!(resp.text().await?, "hi");
//!
//! let err = svc.oneshot(fastreq::get("http://api.test/slow?token=s3cret").build()?).await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Timeout);
//! assert_eq!(err.url(), Some("http://api.test/slow?token=REDACTED"));
//!
//! // Zero is not a timeout:
//! assert!(TimeoutLayer::try_new(Duration::ZERO).unwrap_err().is_config());
//! # Ok(()) }
//! ```

mod body;
mod future;
mod layer;
mod service;

pub use body::TimeoutBody;
pub use future::ResponseFuture;
pub use layer::{TimeoutBuilder, TimeoutLayer};
pub use service::Timeout;

use std::time::Duration;

use http::Uri;
use tokio::time::Instant;

use crate::error::{Error, ErrorKind};

/// The default timeout up to the response headers: 30 s.
pub const DEFAULT_HEADERS_TIMEOUT: Duration = Duration::from_secs(30);

/// The default body idle timeout: 30 s.
pub const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A `Timeout` error with `message` and the (redacted) URL.
fn timeout_error(message: String, uri: Option<&Uri>) -> Error {
    add_url(Error::new(ErrorKind::Timeout).with_message(message), uri)
}

/// Records the URL on `err` unless it already has one.
fn add_url(err: Error, uri: Option<&Uri>) -> Error {
    match uri {
        Some(uri) if err.url().is_none() => err.with_url(uri),
        _ => err,
    }
}

/// `now + d`, or about 30 years from now when that does not fit.
fn deadline_after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30))
}

#[cfg(test)]
mod tests;
