//! Cookies: a shared, bounded jar, and a layer that sends and stores cookies.
//!
//! [`CookieLayer`] wraps a service in [`Cookies`]. For each request it adds the matching
//! cookies of its [`CookieJar`] in a `Cookie` header; for each response it stores every
//! `Set-Cookie` header (a response may carry several). The jar follows RFC 6265 through
//! [`cookie_store`] (domain and host-only matching, path matching, `Secure`, `Max-Age` and
//! `Expires` on the wall clock, deletion by an expired cookie) and adds what
//! `cookie_store` leaves out:
//!
//! - the **public suffix list** (compiled in by the `psl` crate): `Domain=com`,
//!   `Domain=co.uk` or `Domain=github.io` is refused, unless the request host is exactly
//!   that name (then the cookie is host-only, RFC 6265 §5.3 step 5);
//! - **secure origins** (RFC 6265bis): `Secure`, `__Secure-` and `__Host-` cookies are
//!   accepted only from https (or a loopback host);
//! - **bounds**: 3000 cookies in all and 50 per registrable domain by default, expired
//!   cookies evicted first and then the least recently set; 4096 bytes per cookie.
//!
//! The jar is a handle ([`CookieJar`] is an [`Arc`](std::sync::Arc) inside): seed it with
//! [`add_cookie_str`](CookieJar::add_cookie_str), read it with
//! [`cookies_for`](CookieJar::cookies_for), [`cookie_header`](CookieJar::cookie_header) or
//! [`cookies`](CookieJar::cookies), empty it with [`clear`](CookieJar::clear), while
//! requests run.
//!
//! # Details
//!
//! - **Place in the stack**: below the redirect layer, which calls this service once per
//!   hop, so a `Set-Cookie` on a `302` is stored before the next hop is sent and that hop
//!   gets the cookies of its own URL. Cookies are attributed to the URL of the request
//!   of the hop that received them.
//! - **A request that already has a `Cookie` header** keeps it: its cookies come first,
//!   unchanged, and the jar adds only cookies whose names the header does not already
//!   use (an explicit cookie wins over a stored one of the same name). Several `Cookie`
//!   headers are merged into one, as RFC 6265 §5.4 requires.
//! - **Secrets**: the `Cookie` header is marked [sensitive](http::HeaderValue::set_sensitive)
//!   (also one set by the caller), and values never appear in `Debug` output, errors or
//!   logs; refusals are logged at `debug` level with the cookie's name and host only.
//! - **Cost**: without this layer, nothing. With an empty jar, one atomic load and a clone
//!   of the request URI and of the jar handle per request; the URI is parsed into a
//!   [`url::Url`] only if the response sets a cookie. With cookies stored, the request
//!   URI is matched as it is (no URL parse) under the jar's read lock, scanning only the
//!   cookies of the request host's registrable domain. The lock is never held across an
//!   `.await`.
//! - A request with a relative URI (no scheme or host) passes through untouched.
//!
//! # Examples
//!
//! ```
//! use fastreq::cookies::{CookieJar, CookieLayer};
//! use fastreq::{Body, ResponseBody};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
//! let jar = CookieJar::new();
//! // An in-memory backend: /login sets two cookies, every response echoes the Cookie header.
//! let svc = ServiceBuilder::new()
//!     .layer(CookieLayer::new(jar.clone()))
//!     .service_fn(|req: http::Request<Body>| async move {
//!         let sent = req.headers().get("cookie").map(|v| v.to_str().unwrap().to_owned());
//!         let mut resp = http::Response::new(ResponseBody::from(sent.unwrap_or_default()));
//!         if req.uri().path() == "/login" {
//!             resp.headers_mut().append("set-cookie", "sid=s3cret; Path=/; HttpOnly".parse().unwrap());
//!             resp.headers_mut().append("set-cookie", "theme=dark; Domain=api.test".parse().unwrap());
//!         }
//!         Ok::<_, fastreq::Error>(resp)
//!     });
//!
//! svc.clone().oneshot(fastreq::get("http://api.test/login").build()?).await?;
//! assert_eq!(jar.len(), 2);
//!
//! use fastreq::ResponseExt;
//! let resp = svc.oneshot(fastreq::get("http://api.test/me").build()?).await?;
//! assert_eq!(resp.text().await?, "sid=s3cret; theme=dark");
//!
//! // The jar is a handle: read and clear it from outside.
//! assert_eq!(jar.cookies_for("http://www.api.test/").len(), 1); // only the Domain cookie
//! assert!(!format!("{:?}", jar.cookies()).contains("s3cret"));
//! jar.clear();
//! assert!(jar.is_empty());
//! # Ok(()) }
//! ```

mod cookie_url;
mod future;
mod jar;
mod layer;
mod rules;
mod service;
mod state;
mod stored;

#[cfg(test)]
mod tests;

pub use cookie_url::CookieUrl;
pub use future::ResponseFuture;
pub use jar::{
    CookieJar, CookieJarBuilder, DEFAULT_MAX_COOKIES, DEFAULT_MAX_COOKIES_PER_DOMAIN,
    DEFAULT_MAX_COOKIE_SIZE,
};
pub use layer::CookieLayer;
pub use service::Cookies;
pub use stored::StoredCookie;
