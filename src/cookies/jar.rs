//! [`CookieJar`]: the shared, bounded store of cookies, and its [`CookieJarBuilder`].

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};
use url::Url;

use super::cookie_url::CookieUrl;
use super::rules::{self, Refusal, Target};
use super::state::{Key, State};
use super::stored::StoredCookie;
use crate::error::{Error, ErrorKind};

/// Default bound on the number of cookies in a jar.
pub const DEFAULT_MAX_COOKIES: usize = 3000;
/// Default bound on the number of cookies per registrable domain.
pub const DEFAULT_MAX_COOKIES_PER_DOMAIN: usize = 50;
/// Default bound on the size of one cookie, in bytes of name plus value (as browsers).
pub const DEFAULT_MAX_COOKIE_SIZE: usize = 4096;

/// The bounds of a jar (small and `Copy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Limits {
    pub(super) max_cookies: usize,
    pub(super) max_per_domain: usize,
    pub(super) max_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_cookies: DEFAULT_MAX_COOKIES,
            max_per_domain: DEFAULT_MAX_COOKIES_PER_DOMAIN,
            max_size: DEFAULT_MAX_COOKIE_SIZE,
        }
    }
}

/// A shared, bounded cookie jar over [`cookie_store`].
///
/// Cheap to clone: every clone is a handle on the same jar (an [`Arc`] inside), so the jar
/// given to a [`CookieLayer`](super::CookieLayer) can be seeded, read and cleared from
/// anywhere while requests run.
///
/// What it stores and sends follows RFC 6265 as `cookie_store` implements it (domain,
/// host-only, path, `Secure`, `Max-Age`/`Expires`, deletion by an expired cookie), plus:
///
/// - **Public suffixes** (from the compiled-in list of the `psl` crate): a cookie whose
///   `Domain` is a public suffix (`com`, `co.uk`, `github.io`, and any single label such
///   as `test`) is refused, unless the request host is that very name, in which case it
///   becomes a host-only cookie (RFC 6265 §5.3 step 5).
/// - **Secure origins** (RFC 6265bis): a `Secure` cookie, and any cookie named
///   `__Secure-…` or `__Host-…`, is accepted only from `https` (or a loopback host);
///   `__Host-` cookies must also have `Path=/` and no `Domain`.
/// - **Size**: a cookie whose name and value exceed [`max_cookie_size`](CookieJarBuilder::max_cookie_size)
///   bytes (default 4096), or which holds control characters, is refused.
/// - **Bounds**: at most [`max_cookies`](CookieJarBuilder::max_cookies) cookies in all
///   (default 3000) and [`max_cookies_per_domain`](CookieJarBuilder::max_cookies_per_domain)
///   per registrable domain (default 50; `a.example.co.uk` and `b.example.co.uk` count
///   together as `example.co.uk`, as browsers count, so many subdomains cannot escape the
///   bound). Expired cookies go first, then the least recently set.
///
/// The lock inside is a [`RwLock`] held only while a request's `Cookie` header is built
/// (read) or a response's `Set-Cookie` headers are stored (write), never across an
/// `.await`. Lookups touch only the cookies of the request host's registrable domain, so
/// their cost does not grow with the number of sites in the jar.
///
/// Cookie values are secrets: they never appear in `Debug` output or logs.
///
/// # Examples
///
/// ```
/// use fastreq::cookies::CookieJar;
///
/// let jar = CookieJar::new();
/// jar.add_cookie_str("sid=abc; Domain=a.test; Path=/", "http://a.test/login").unwrap();
/// assert_eq!(jar.len(), 1);
///
/// // Sent to the domain and its subdomains:
/// let header = jar.cookie_header("http://www.a.test/x").unwrap();
/// assert_eq!(header, "sid=abc");
/// assert!(header.is_sensitive());
/// assert!(jar.cookie_header("http://b.test/").is_none());
///
/// // A public suffix is not a cookie domain:
/// let err = jar.add_cookie_str("t=1; Domain=co.uk", "http://shop.co.uk/").unwrap_err();
/// assert!(err.to_string().contains("public suffix"));
///
/// let other_handle = jar.clone();
/// other_handle.clear();
/// assert!(jar.is_empty());
/// ```
#[derive(Clone)]
pub struct CookieJar {
    shared: Arc<Shared>,
}

struct Shared {
    limits: Limits,
    /// Number of cookies stored (including any that expired since the last write), read
    /// without the lock to skip all work while the jar is empty.
    len: AtomicUsize,
    state: RwLock<State>,
}

impl Default for CookieJar {
    fn default() -> Self {
        CookieJar::new()
    }
}

impl fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieJar")
            .field("stored", &self.shared.len.load(Ordering::Relaxed))
            .field("max_cookies", &self.shared.limits.max_cookies)
            .field("max_cookies_per_domain", &self.shared.limits.max_per_domain)
            .field("max_cookie_size", &self.shared.limits.max_size)
            .finish()
    }
}

impl CookieJar {
    /// An empty jar with the default bounds (3000 cookies, 50 per domain, 4096 bytes each).
    pub fn new() -> Self {
        CookieJar::with_limits(Limits::default())
    }

    /// A builder to set the bounds.
    pub fn builder() -> CookieJarBuilder {
        CookieJarBuilder::default()
    }

    fn with_limits(limits: Limits) -> Self {
        CookieJar {
            shared: Arc::new(Shared {
                limits,
                len: AtomicUsize::new(0),
                state: RwLock::new(State::default()),
            }),
        }
    }

    /// Stores a cookie given in `Set-Cookie` syntax as if `url` had sent it.
    ///
    /// The same rules apply as to cookies received in responses. A refused cookie is an
    /// [`ErrorKind::InvalidRequest`] error saying why (it names the cookie, never its value).
    /// A cookie that is already expired deletes the matching stored cookie and is not an
    /// error.
    ///
    /// ```
    /// let jar = fastreq::cookies::CookieJar::new();
    /// let url: url::Url = "https://a.test/".parse().unwrap();
    /// jar.add_cookie_str("theme=dark; Secure", &url).unwrap();
    /// assert!(jar.add_cookie_str("x=1; Secure", "http://a.test/").is_err()); // insecure origin
    /// assert!(jar.add_cookie_str("x=1; Domain=b.test", &url).is_err()); // other domain
    /// ```
    pub fn add_cookie_str<U>(&self, cookie: &str, url: &U) -> Result<(), Error>
    where
        U: CookieUrl + ?Sized,
    {
        let url = url.to_cookie_url()?;
        let prepared = rules::prepare(cookie, &url, &self.shared.limits).map_err(|r| {
            Error::new(ErrorKind::InvalidRequest).with_message(format!("cookie {r}"))
        })?;
        let now = SystemTime::now();
        let mut state = self.write();
        let result = state.insert(prepared, &url, &self.shared.limits, now);
        self.publish_len(&state);
        result
            .map(|_| ())
            .map_err(|r| Error::new(ErrorKind::InvalidRequest).with_message(format!("cookie {r}")))
    }

    /// The `Cookie` header a request to `url` gets from this jar (marked sensitive), or
    /// `None` when no stored cookie matches. A URL that does not parse matches nothing.
    ///
    /// Cookies are listed longest path first, then most specific domain, then by name.
    pub fn cookie_header<U>(&self, url: &U) -> Option<HeaderValue>
    where
        U: CookieUrl + ?Sized,
    {
        let url = url.to_cookie_url().ok()?;
        let target = Target::from_url(&url)?;
        let mut out = String::new();
        if self.write_cookies(&target, &mut out, |_| false) == 0 {
            return None;
        }
        to_header_value(out)
    }

    /// The stored cookies a request to `url` would send, in sending order. A URL that
    /// does not parse matches nothing.
    pub fn cookies_for<U>(&self, url: &U) -> Vec<StoredCookie>
    where
        U: CookieUrl + ?Sized,
    {
        let Ok(url) = url.to_cookie_url() else {
            return Vec::new();
        };
        let Some(target) = Target::from_url(&url) else {
            return Vec::new();
        };
        let state = self.read();
        state
            .matching(&target, |_| false)
            .into_iter()
            .map(|m| StoredCookie::from_cookie(m.cookie))
            .collect()
    }

    /// A snapshot of every unexpired cookie in the jar (in no particular order).
    pub fn cookies(&self) -> Vec<StoredCookie> {
        let now = SystemTime::now();
        let state = self.read();
        state
            .sites
            .values()
            .flat_map(|s| s.store.iter_any())
            .filter(|c| !rules::expired_at(c, now))
            .map(StoredCookie::from_cookie)
            .collect()
    }

    /// The number of unexpired cookies in the jar.
    pub fn len(&self) -> usize {
        if self.shared.len.load(Ordering::Acquire) == 0 {
            return 0;
        }
        let mut state = self.write();
        state.purge_expired(SystemTime::now());
        self.publish_len(&state);
        state.order.len()
    }

    /// True when the jar holds no unexpired cookie.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes the cookie stored under exactly this `domain`, `path` and `name` (the
    /// values [`StoredCookie`] shows). Returns whether there was one.
    pub fn remove(&self, domain: &str, path: &str, name: &str) -> bool {
        let key = Key {
            domain: domain.to_owned(),
            path: path.to_owned(),
            name: name.to_owned(),
        };
        let site = rules::site_of(domain);
        let mut state = self.write();
        let removed = state.remove_key(site, &key);
        self.publish_len(&state);
        removed
    }

    /// Removes every cookie.
    pub fn clear(&self) {
        let mut state = self.write();
        *state = State::default();
        self.publish_len(&state);
    }

    /// The bound on the number of cookies in the jar.
    pub fn max_cookies(&self) -> usize {
        self.shared.limits.max_cookies
    }

    /// The bound on the number of cookies per registrable domain.
    pub fn max_cookies_per_domain(&self) -> usize {
        self.shared.limits.max_per_domain
    }

    /// The bound on the size (name plus value, in bytes) of one cookie.
    pub fn max_cookie_size(&self) -> usize {
        self.shared.limits.max_size
    }

    /// True when both handles are the same jar.
    pub fn same_jar(&self, other: &CookieJar) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    // ----- used by the service -----

    /// Lock-free check: false when the jar certainly holds nothing.
    #[inline]
    pub(super) fn may_have_cookies(&self) -> bool {
        self.shared.len.load(Ordering::Acquire) != 0
    }

    /// Adds the jar's cookies for the request `target` to the request headers.
    ///
    /// With no `Cookie` header, one is added. With one or more explicit `Cookie` headers,
    /// they are merged into one header: the explicit cookies first and unchanged, then the
    /// jar's cookies whose names the explicit ones do not already use. The header is
    /// marked sensitive in every case.
    pub(super) fn add_request_cookies(&self, headers: &mut HeaderMap, target: &Target<'_>) {
        let mut values = headers.get_all(COOKIE).iter();
        let Some(first) = values.next() else {
            let mut out = String::new();
            if self.write_cookies(target, &mut out, |_| false) > 0 {
                if let Some(v) = to_header_value(out) {
                    headers.insert(COOKIE, v);
                }
            }
            return;
        };
        // Explicit cookies: keep them first; the jar adds only names they do not have.
        let mut explicit: Vec<u8> = first.as_bytes().to_vec();
        for v in values {
            explicit.extend_from_slice(b"; ");
            explicit.extend_from_slice(v.as_bytes());
        }
        let mut out = String::new();
        let added = self.write_cookies(target, &mut out, |name| {
            explicit_names(&explicit).any(|n| n == name.as_bytes())
        });
        let several = headers.get_all(COOKIE).iter().nth(1).is_some();
        if added == 0 && !several {
            mark_cookie_sensitive(headers);
            return;
        }
        if added > 0 {
            explicit.extend_from_slice(b"; ");
            explicit.extend_from_slice(out.as_bytes());
        }
        match HeaderValue::from_maybe_shared(Bytes::from(explicit)) {
            Ok(mut v) => {
                v.set_sensitive(true);
                headers.insert(COOKIE, v);
            }
            // Cannot happen (both parts were valid header values); keep the request as is.
            Err(_) => mark_cookie_sensitive(headers),
        }
    }

    /// Stores every `Set-Cookie` of a response to `url`. Parsing and checks happen before
    /// the lock is taken; the write lock is taken once per response.
    pub(super) fn store_response_cookies(&self, headers: &HeaderMap, url: &Url) {
        let limits = &self.shared.limits;
        let mut prepared = Vec::new();
        for value in headers.get_all(SET_COOKIE) {
            let text = match std::str::from_utf8(value.as_bytes()) {
                Ok(t) => t,
                Err(_) => {
                    log_refusal(url, &Refusal::not_utf8());
                    continue;
                }
            };
            match rules::prepare(text, url, limits) {
                Ok(p) => prepared.push(p),
                Err(r) => log_refusal(url, &r),
            }
        }
        if prepared.is_empty() {
            return;
        }
        let now = SystemTime::now();
        let mut state = self.write();
        for p in prepared {
            if let Err(r) = state.insert(p, url, limits, now) {
                log_refusal(url, &r);
            }
        }
        self.publish_len(&state);
    }

    /// Writes `name=value; …` for `target` into `out`, skipping names `skip` rejects.
    /// Returns the number of cookies written.
    fn write_cookies(
        &self,
        target: &Target<'_>,
        out: &mut String,
        skip: impl Fn(&str) -> bool,
    ) -> usize {
        let state = self.read();
        let cookies = state.matching(target, skip);
        let size: usize = cookies
            .iter()
            .map(|m| m.name.len() + m.value.len() + 3)
            .sum();
        out.reserve(size);
        for (i, m) in cookies.iter().enumerate() {
            if i > 0 {
                out.push_str("; ");
            }
            // RFC 6265bis: a cookie with an empty name is sent as its value alone.
            if !m.name.is_empty() {
                out.push_str(m.name);
                out.push('=');
            }
            out.push_str(m.value);
        }
        cookies.len()
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.shared
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.shared
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn publish_len(&self, state: &State) {
        self.shared.len.store(state.order.len(), Ordering::Release);
    }
}

/// Marks every `Cookie` header value sensitive (no allocation when there is none).
pub(super) fn mark_cookie_sensitive(headers: &mut HeaderMap) {
    if !headers.contains_key(COOKIE) {
        return;
    }
    if let http::header::Entry::Occupied(mut e) = headers.entry(COOKIE) {
        for v in e.iter_mut() {
            v.set_sensitive(true);
        }
    }
}

fn to_header_value(s: String) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_maybe_shared(Bytes::from(s)).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// The names in a `Cookie` header value (`a=1; b=2` → `a`, `b`).
fn explicit_names(header: &[u8]) -> impl Iterator<Item = &[u8]> {
    header.split(|&b| b == b';').map(|pair| {
        let name = match pair.iter().position(|&b| b == b'=') {
            Some(i) => &pair[..i],
            None => &[][..],
        };
        name.trim_ascii()
    })
}

fn log_refusal(url: &Url, refusal: &Refusal) {
    tracing::debug!(host = url.host_str().unwrap_or(""), "cookie {refusal}");
}

/// Builds a [`CookieJar`] with chosen bounds.
///
/// | option | default |
/// |---|---|
/// | [`max_cookies`](Self::max_cookies) | 3000 |
/// | [`max_cookies_per_domain`](Self::max_cookies_per_domain) | 50 (per registrable domain) |
/// | [`max_cookie_size`](Self::max_cookie_size) | 4096 bytes (name + value) |
///
/// A zero bound is an [`ErrorKind::Config`] error returned by [`build`](Self::build).
///
/// ```
/// use fastreq::cookies::CookieJar;
///
/// let jar = CookieJar::builder().max_cookies(500).max_cookies_per_domain(20).build().unwrap();
/// assert_eq!(jar.max_cookies(), 500);
/// assert!(CookieJar::builder().max_cookies(0).build().unwrap_err().is_config());
/// ```
#[derive(Debug, Default)]
#[must_use]
pub struct CookieJarBuilder {
    limits: Limits,
    error: Option<Error>,
}

impl CookieJarBuilder {
    fn check(&mut self, name: &str, value: usize) -> bool {
        if value == 0 {
            if self.error.is_none() {
                self.error = Some(Error::config(format!(
                    "cookie jar `{name}` must be at least 1 (got 0)"
                )));
            }
            return false;
        }
        true
    }

    /// The most cookies the jar holds (default 3000); beyond it the oldest is evicted.
    pub fn max_cookies(mut self, n: usize) -> Self {
        if self.check("max_cookies", n) {
            self.limits.max_cookies = n;
        }
        self
    }

    /// The most cookies per registrable domain (default 50); beyond it that domain's
    /// oldest is evicted.
    pub fn max_cookies_per_domain(mut self, n: usize) -> Self {
        if self.check("max_cookies_per_domain", n) {
            self.limits.max_per_domain = n;
        }
        self
    }

    /// The largest cookie accepted, in bytes of name plus value (default 4096).
    pub fn max_cookie_size(mut self, bytes: usize) -> Self {
        if self.check("max_cookie_size", bytes) {
            self.limits.max_size = bytes;
        }
        self
    }

    /// The jar, or the first configuration error.
    pub fn build(self) -> Result<CookieJar, Error> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(CookieJar::with_limits(self.limits)),
        }
    }
}
