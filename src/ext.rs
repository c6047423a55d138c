//! Request and response extensions that fastreq's layers read and write.
//!
//! Per-request overrides travel as [`http::Extensions`], so a hand-built
//! [`http::Request`] can carry them as well as one made by the
//! [request builder](crate::RequestBuilder). Responses carry what fastreq learned while
//! fetching them.
//!
//! | extension | on | set by | read by |
//! |---|---|---|---|
//! | [`RequestTimeout`] | request | `.timeout(..)` | the [timeout layer](crate::timeout) and the backend (per hop, up to headers) |
//! | [`MaxRetries`] | request | `.retries(..)` | the retry layer |
//! | [`NoRedirects`] | request | `.no_redirects()` | the redirect layer |
//! | [`BodyLimit`] | request, response | `.body_limit(..)`, the backend | [`ResponseExt`](crate::ResponseExt) |
//! | [`FinalUrl`] | response | the backend, the redirect layer | [`ResponseExt::final_url`](crate::ResponseExt::final_url) |
//! | [`Attempts`] | response | the retry layer | [`ResponseExt::attempts`](crate::ResponseExt::attempts) |
//! | [`CollectBody`](crate::collect::CollectBody) | request | [`Fetch`](crate::Fetch) | the [collect layer](crate::collect) |
//! | [`Deadline`] | request | the retry layer (its total deadline), you | the timeout layer (headers and body), the proxy layer (waits) |
//! | [`ProxyOverride`](crate::proxy::ProxyOverride) | request | `.proxy(..)`, `.no_proxy()` | the proxy layer, the backend |
//! | [`SelectedProxy`](crate::proxy::SelectedProxy) | request, response | the proxy layer | the backend; you (the proxy used) |
//! | [`RedirectCount`](crate::redirect::RedirectCount) | response | the redirect layer | you |
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use fastreq::ext::RequestTimeout;
//!
//! let mut req = http::Request::get("http://example.test/").body(fastreq::Body::empty()).unwrap();
//! req.extensions_mut().insert(RequestTimeout(Duration::from_secs(2)));
//! // The same as: fastreq::get("http://example.test/").timeout(Duration::from_secs(2)).build()
//! ```

use std::time::Duration;

use http::Uri;
use tokio::time::Instant;

/// Per-request timeout for each hop, up to the response headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestTimeout(pub Duration);

/// Per-request maximum number of retries (0 disables retrying this request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxRetries(pub u32);

/// Per-request opt-out of following redirects: the 3xx response comes back as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoRedirects;

/// The cap, in bytes, on a response body read with [`ResponseExt`](crate::ResponseExt).
///
/// On a request it overrides the backend's cap for that request's response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

/// The URL a response finally came from (after redirects).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalUrl(pub Uri);

/// How many attempts the retry layer made for this response; recorded only when it made
/// more than one (absent means one: see [`ResponseExt::attempts`](crate::ResponseExt::attempts)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempts(pub u32);

/// The instant by which the whole request, body included, must be done.
///
/// The retry layer inserts it on every attempt when a total deadline is set
/// ([`RetryBuilder::deadline`](crate::retry::RetryBuilder::deadline),
/// [`StackBuilder::total_timeout`](crate::StackBuilder::total_timeout)). Layers below read
/// it: the [timeout layer](crate::timeout) ends the wait for headers and the reading of the
/// body at this instant, and the proxy layer never waits for a cooled-down proxy beyond it.
/// Set it yourself on a request to bound it the same way (the earlier of yours and the
/// retry layer's wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(pub Instant);

impl Deadline {
    /// The deadline `after` from now.
    pub fn after(after: Duration) -> Self {
        Deadline(Instant::now() + after)
    }

    /// The time left until the deadline (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
}
