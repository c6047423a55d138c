//! [`StoredCookie`]: a copy of one cookie of the jar.

use std::fmt;
use std::time::SystemTime;

use cookie_store::{Cookie, CookieDomain};

use super::rules;

/// A copy of one stored cookie, as [`CookieJar::cookies`](super::CookieJar::cookies) and
/// [`CookieJar::cookies_for`](super::CookieJar::cookies_for) return it. Its `Debug` output hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCookie {
    name: String,
    value: String,
    domain: String,
    host_only: bool,
    path: String,
    secure: bool,
    http_only: bool,
    expires: Option<SystemTime>,
}

impl StoredCookie {
    pub(super) fn from_cookie(c: &Cookie<'static>) -> Self {
        StoredCookie {
            name: c.name().to_owned(),
            value: c.value().to_owned(),
            domain: String::from(&c.domain),
            host_only: matches!(c.domain, CookieDomain::HostOnly(_)),
            path: String::from(&c.path),
            secure: c.secure().unwrap_or(false),
            http_only: c.http_only().unwrap_or(false),
            expires: rules::expiry_of(c),
        }
    }

    /// The cookie's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cookie's value (a secret: do not log it).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The domain: the host that set it (host-only) or its `Domain` attribute.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// True when the cookie goes only to exactly [`domain`](Self::domain), not to its
    /// subdomains (it was set without a `Domain` attribute).
    pub fn host_only(&self) -> bool {
        self.host_only
    }

    /// The path the cookie is scoped to.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// True for a `Secure` cookie (sent only over https or to a loopback host).
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// True for an `HttpOnly` cookie (an HTTP client sends it like any other).
    pub fn http_only(&self) -> bool {
        self.http_only
    }

    /// When the cookie expires; `None` for a session cookie (kept as long as the jar).
    pub fn expires(&self) -> Option<SystemTime> {
        self.expires
    }
}

impl fmt::Debug for StoredCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredCookie")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .field("domain", &self.domain)
            .field("host_only", &self.host_only)
            .field("path", &self.path)
            .field("secure", &self.secure)
            .field("http_only", &self.http_only)
            .field("expires", &self.expires)
            .finish()
    }
}
