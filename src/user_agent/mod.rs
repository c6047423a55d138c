//! The `User-Agent` of requests: fastreq's own by default, browser rotation on request.
//!
//! [`UserAgentLayer`] wraps a service in [`UserAgent`]:
//!
//! - **By default** fastreq says who it is: [`DEFAULT_USER_AGENT`] (`fastreq/<version>`).
//! - **Rotation is opt-in**: [`UserAgentLayer::random`] or [`UserAgentLayer::round_robin`]
//!   over the [`BROWSER_USER_AGENTS`] (current desktop and mobile Chrome, Firefox, Safari
//!   and Edge), or a list or file of your own through [`UserAgentLayer::builder`] (one user
//!   agent per line; blank lines and `#` comments skipped; a bad line is an error naming
//!   its number). [`StickyPerHost`] gives every request to the same host the same user
//!   agent; any [`Picker`] of your own can choose instead.
//! - **An explicit user agent wins**: a request that already has a `User-Agent` header
//!   keeps it, unless the layer is told to
//!   [`override_existing`](UserAgentLayer::override_existing).
//! - **Values are checked once**, with `HeaderValue::from_str`, when the layer is built; an
//!   invalid one is an [`ErrorKind::Config`](crate::ErrorKind::Config) error naming it. The
//!   header values are built then, so a request costs a pick and a clone of a shared value
//!   (no allocation).
//!
//! In fastreq's stack the layer sits above the redirects and below the retries: every hop
//! of one attempt sends the same user agent, and a retry may pick another one.
//!
//! # Examples
//!
//! ```
//! use fastreq::user_agent::{UserAgentLayer, DEFAULT_USER_AGENT};
//! use fastreq::{Body, ResponseBody};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
//! // An in-memory backend that answers with the user agent it received.
//! let echo = tower::service_fn(|req: http::Request<Body>| async move {
//!     let ua = req.headers()["user-agent"].to_str().unwrap().to_owned();
//!     Ok::<_, fastreq::Error>(http::Response::new(ResponseBody::from(ua)))
//! });
//! use fastreq::ResponseExt;
//!
//! // The default: fastreq/<version>.
//! let svc = ServiceBuilder::new().layer(UserAgentLayer::new()).service(echo.clone());
//! let resp = svc.oneshot(fastreq::get("http://api.test/").build()?).await?;
//! assert_eq!(resp.text().await?, DEFAULT_USER_AGENT);
//!
//! // Round robin over a list of your own; an explicit user agent is kept.
//! let layer = UserAgentLayer::builder()
//!     .agents_from_str("# my agents\nagent-one/1.0\n\nagent-two/2.0\n")
//!     .round_robin()
//!     .build()?;
//! let svc = ServiceBuilder::new().layer(layer).service(echo);
//! let mut seen = Vec::new();
//! for _ in 0..3 {
//!     let resp = svc.clone().oneshot(fastreq::get("http://api.test/").build()?).await?;
//!     seen.push(resp.text().await?);
//! }
//! assert_eq!(seen, ["agent-one/1.0", "agent-two/2.0", "agent-one/1.0"]);
//! let explicit = fastreq::get("http://api.test/").header("user-agent", "mine/1").build()?;
//! assert_eq!(svc.oneshot(explicit).await?.text().await?, "mine/1");
//!
//! // A bad line is an error naming it.
//! let err = UserAgentLayer::builder().agents_from_str("ok/1\nbad\u{7f}/2\n").build().unwrap_err();
//! assert!(err.to_string().contains("line 2"), "{err}");
//! # Ok(()) }
//! ```

mod future;
mod layer;
mod list;
mod picker;
mod service;

pub use future::ResponseFuture;
pub use layer::{UserAgentBuilder, UserAgentLayer};
pub use list::{BROWSER_USER_AGENTS, DEFAULT_USER_AGENT};
pub use picker::{Picker, Random, RoundRobin, StickyPerHost};
pub use service::UserAgent;
