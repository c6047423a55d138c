//! Concurrency limits: at most `max` requests in flight in total and at most `per_host` to
//! any one host, counting each request until its response **body** is finished.
//!
//! [`ConcurrencyLimitLayer`] wraps a service in [`ConcurrencyLimit`]. Configure it with
//! [`ConcurrencyLimitLayer::new(max)`](ConcurrencyLimitLayer::new) (global only) or the
//! [builder](ConcurrencyLimitLayer::builder): `.max(64)`, `.per_host(8)`, or both in one
//! layer.
//!
//! # What is counted, and until when
//!
//! A request takes its slots before the inner service is called and holds them until its
//! response body is finished, not merely until the headers arrive (tower's
//! `ConcurrencyLimit` releases at the headers, so a slow download is not counted; see
//! tower-http#447). The response body is wrapped in a [`ConcurrencyLimitBody`], which owns
//! the permits and releases them when:
//! - the body ends (yields `None`, or a frame after which it reports its end), or is
//!   already at its end when the response arrives (empty body, `HEAD`, `204`);
//! - the body yields an error;
//! - the body (or the whole response) is dropped.
//!
//! An error from the inner service releases the slots at once.
//!
//! **An unread response keeps its permits until it is dropped.** Read or drop every
//! response you get, or the limit fills up with responses nobody reads.
//!
//! Idle keep-alive connections in the pool and idle HTTP/2 connections hold no slot: the
//! limit counts requests, not connections. (Bound the pool with the backend's
//! `pool_max_idle_per_host`.)
//!
//! # Where requests wait
//!
//! - **Global**: in [`poll_ready`](tower::Service::poll_ready), as backpressure. A ready
//!   service holds a permit until it is called or dropped. Waiters are served first come,
//!   first served (tokio's semaphore is fair).
//! - **Per host**: the host is only known in `call`. When the host has a free slot, the
//!   inner service is called at once. Otherwise the request gives its global permit back
//!   (so a busy host does not keep requests to other hosts out), joins the host's queue
//!   (first come, first served in call order), and, once served, takes a global permit
//!   again (waiting in line if needed) before calling the ready inner service it took
//!   along. The service keeps a fresh clone of the inner service; hence `S: Clone`.
//!   Requests waiting for a host are bounded by whoever drives the service (for example
//!   [`fan_out`](crate::fan_out())'s own limit), not by this layer.
//!
//! A host is the request URL's scheme, host and port (the scheme's default port filled in;
//! host compared case-insensitively). Requests whose URL has no host share one slot pool.
//!
//! # Sharing, counts and memory
//!
//! All services made by one layer, and all their clones, share the limits; a clone starts
//! un-ready (no permit). [`ConcurrencyLimitLayer::in_flight`],
//! [`in_flight_for`](ConcurrencyLimitLayer::in_flight_for) and
//! [`tracked_hosts`](ConcurrencyLimitLayer::tracked_hosts) read the counters at any time.
//!
//! Per-host semaphores live in a sharded map whose lock is held only to look one up or
//! insert it, never across an await. Entries with no permit out and nobody waiting are
//! evicted as the map grows (amortised O(1) per new host), so memory stays bounded with
//! millions of distinct hosts. Without a per-host limit there is no map and no lock.
//!
//! # Errors
//!
//! A limit of 0 (or above [`tokio::sync::Semaphore::MAX_PERMITS`]) and a layer with no
//! limit at all are [`ErrorKind::Config`](crate::ErrorKind::Config) errors from
//! [`ConcurrencyLimitLayer::new`] and [`ConcurrencyLimitBuilder::build`]. Calling the
//! service without a successful `poll_ready` (with a global limit) yields a `Config` error
//! rather than a panic. Errors of the inner service and of the body keep their kind.
//!
//! # Examples
//!
//! ```
//! use fastreq::concurrency::ConcurrencyLimitLayer;
//! use fastreq::{Body, ResponseBody, ResponseExt};
//! use tower::{Layer, Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
//! let limit = ConcurrencyLimitLayer::builder().max(64).per_host(8).build()?;
//! // An in-memory backend instead of `fastreq::Backend`, so the example needs no network.
//! let backend = tower::service_fn(|req: http::Request<Body>| async move {
//!     Ok::<_, fastreq::Error>(http::Response::new(ResponseBody::from(req.uri().to_string())))
//! });
//! let mut svc = limit.layer(backend);
//!
//! let req = fastreq::get("http://api.test/a").build()?;
//! let resp = svc.ready().await?.call(req).await?;
//! // The headers are here, but the body is not read yet: the request still counts.
//! assert_eq!(limit.in_flight(), 1);
//! assert_eq!(limit.in_flight_for(&"http://API.test:80/".parse().unwrap()), 1);
//!
//! // Reading the body to its end (or dropping the response) releases the slots.
//! assert_eq!(resp.text().await?, "http://api.test/a");
//! assert_eq!(limit.in_flight(), 0);
//!
//! assert!(ConcurrencyLimitLayer::try_new(0).unwrap_err().is_config());
//! # Ok(()) }
//! ```

mod acquire;
mod body;
mod future;
mod hosts;
mod layer;
mod service;

pub use body::ConcurrencyLimitBody;
pub use future::ResponseFuture;
pub use layer::{ConcurrencyLimitBuilder, ConcurrencyLimitLayer};
pub use service::ConcurrencyLimit;

#[cfg(test)]
mod tests;
