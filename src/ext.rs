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
//! | [`WaitTime`] | request | you (a shared counter) | added to by the rate limit, concurrency and proxy layers when they wait, and by the retry layer's backoff; [`Fetched::wait`](crate::Fetched::wait) |
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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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

/// The time a request spent waiting rather than on the wire: for rate-limit tokens, for a
/// concurrency slot, for a proxy to recover, and in the retry layer's backoff.
///
/// Opt in by inserting one on a request (it is shared by every attempt and redirect hop,
/// which copy the request's extensions): the layers add to it when they wait and do nothing
/// when it is absent, so a request without it costs nothing more. Read it back with
/// [`get`](WaitTime::get) (keep a clone: it is also there after a failure) or, for a
/// response, with [`Fetched::wait`](crate::Fetched::wait). Only waits after its creation
/// count: a wait that began earlier (a slot awaited before the request was made) counts
/// from the moment it was made.
///
/// ```
/// use fastreq::ext::WaitTime;
///
/// let wait = WaitTime::new();
/// let mut req = fastreq::get("http://example.test/").build().unwrap();
/// req.extensions_mut().insert(wait.clone());
/// // ... send `req` through the stack, then:
/// assert_eq!(wait.get(), std::time::Duration::ZERO);
/// ```
#[derive(Clone, Debug)]
pub struct WaitTime(Arc<WaitInner>);

#[derive(Debug)]
struct WaitInner {
    since: Instant,
    nanos: AtomicU64,
    gauge: Option<Arc<AtomicU64>>,
}

impl Default for WaitTime {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitTime {
    /// A counter at zero; waits count from now.
    pub fn new() -> Self {
        WaitTime(Arc::new(WaitInner {
            since: Instant::now(),
            nanos: AtomicU64::new(0),
            gauge: None,
        }))
    }

    /// Like [`new`](WaitTime::new), and while the request waits in a layer's response
    /// future (per-host rate limit or slot, proxy, retry backoff), `gauge` counts it: share
    /// one gauge among many requests to show how many are waiting now rather than on the
    /// wire.
    pub fn with_gauge(gauge: Arc<AtomicU64>) -> Self {
        WaitTime(Arc::new(WaitInner {
            since: Instant::now(),
            nanos: AtomicU64::new(0),
            gauge: Some(gauge),
        }))
    }

    /// The total time waited so far.
    pub fn get(&self) -> Duration {
        Duration::from_nanos(self.0.nanos.load(Ordering::Relaxed))
    }

    /// Adds `d`.
    pub fn add(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.0.nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Adds the time from `since` (or from this counter's creation, if later) to now.
    pub(crate) fn add_since(&self, since: Instant) {
        let from = since.max(self.0.since);
        self.add(Instant::now().saturating_duration_since(from));
    }
}

/// A wait in progress: counted by the [`WaitTime`]'s gauge while it lives; its duration is
/// added to the `WaitTime` when it is dropped (the wait ended, or was cancelled).
#[derive(Debug)]
pub(crate) struct WaitGuard {
    wait: WaitTime,
    since: Instant,
}

impl WaitGuard {
    /// Starts a wait for the request with these extensions, if it has a [`WaitTime`].
    pub(crate) fn start(extensions: &http::Extensions) -> Option<WaitGuard> {
        extensions.get::<WaitTime>().map(WaitGuard::of)
    }

    /// Starts a wait counted in `wait`.
    pub(crate) fn of(wait: &WaitTime) -> WaitGuard {
        let wait = wait.clone();
        if let Some(g) = &wait.0.gauge {
            g.fetch_add(1, Ordering::Relaxed);
        }
        WaitGuard {
            wait,
            since: Instant::now(),
        }
    }
}

/// A copy of a request's extensions kept for a later request (a retry's replay, a redirect's
/// next hop). The usual sets (none, [`CollectBody`](crate::collect::CollectBody),
/// [`WaitTime`]) are kept as what they are rather than as a copy of the map: copying an
/// extension map costs an allocation per entry and one for the map, once per request.
#[derive(Debug)]
pub(crate) enum ExtensionsSnapshot {
    Known {
        collect: bool,
        wait: Option<WaitTime>,
    },
    Full(http::Extensions),
}

impl ExtensionsSnapshot {
    pub(crate) fn of(extensions: &http::Extensions) -> Self {
        let collect = extensions.get::<crate::collect::CollectBody>().is_some();
        let wait = extensions.get::<WaitTime>();
        if extensions.len() == usize::from(collect) + usize::from(wait.is_some()) {
            ExtensionsSnapshot::Known {
                collect,
                wait: wait.cloned(),
            }
        } else {
            ExtensionsSnapshot::Full(extensions.clone())
        }
    }

    /// The extensions for the next request.
    pub(crate) fn extensions(&self) -> http::Extensions {
        match self {
            ExtensionsSnapshot::Known { collect, wait } => {
                let mut ext = http::Extensions::new();
                if *collect {
                    ext.insert(crate::collect::CollectBody);
                }
                if let Some(w) = wait {
                    ext.insert(w.clone());
                }
                ext
            }
            ExtensionsSnapshot::Full(ext) => ext.clone(),
        }
    }

    /// The request's [`WaitTime`], if it has one.
    pub(crate) fn wait(&self) -> Option<&WaitTime> {
        match self {
            ExtensionsSnapshot::Known { wait, .. } => wait.as_ref(),
            ExtensionsSnapshot::Full(ext) => ext.get::<WaitTime>(),
        }
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        self.wait.add_since(self.since);
        if let Some(g) = &self.wait.0.gauge {
            g.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Adds the time from `since` to now to the request's [`WaitTime`], if it has one.
pub(crate) fn record_wait(extensions: &http::Extensions, since: Instant) {
    if let Some(w) = extensions.get::<WaitTime>() {
        w.add_since(since);
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::CollectBody;

    #[test]
    fn extension_snapshots_give_back_what_they_took() {
        // Nothing, the marker, the wait, both: kept without the map.
        let wait = WaitTime::new();
        for (collect, with_wait) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut ext = http::Extensions::new();
            if collect {
                ext.insert(CollectBody);
            }
            if with_wait {
                ext.insert(wait.clone());
            }
            let snap = ExtensionsSnapshot::of(&ext);
            assert!(matches!(snap, ExtensionsSnapshot::Known { .. }));
            let back = snap.extensions();
            assert_eq!(back.len(), ext.len());
            assert_eq!(back.get::<CollectBody>().is_some(), collect);
            assert_eq!(snap.wait().is_some(), with_wait);
            if with_wait {
                // The same shared counter, not a new one.
                back.get::<WaitTime>()
                    .unwrap()
                    .add(Duration::from_millis(5));
                assert_eq!(
                    wait.get(),
                    Duration::from_millis(5) * (1 + u32::from(collect))
                );
            }
        }
        // Anything else: the whole map is copied.
        let mut ext = http::Extensions::new();
        ext.insert(CollectBody);
        ext.insert(MaxRetries(2));
        let snap = ExtensionsSnapshot::of(&ext);
        assert!(matches!(snap, ExtensionsSnapshot::Full(_)));
        let back = snap.extensions();
        assert_eq!(back.get::<MaxRetries>(), Some(&MaxRetries(2)));
        assert!(back.get::<CollectBody>().is_some());
    }
}
