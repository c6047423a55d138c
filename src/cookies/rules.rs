//! The acceptance rules on top of `cookie_store`: public suffixes, secure origins, cookie
//! name prefixes, size and characters; and the helpers for sites and expiry.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::SystemTime;

use cookie_store::{Cookie, CookieDomain, CookieError, CookieExpiration, RawCookie};
use http::Uri;
use url::Url;

use super::jar::Limits;
use super::state::{Key, Prepared};

/// Why a cookie was not stored. Its `Display` names the cookie, never its value.
#[derive(Debug)]
pub(super) struct Refusal {
    name: Option<Box<str>>,
    reason: Reason,
}

#[derive(Debug)]
pub(super) enum Reason {
    NotUtf8,
    Parse,
    Empty,
    TooLarge(usize),
    Control,
    InsecureOrigin,
    SecurePrefix,
    HostPrefix,
    PublicSuffix(String),
    Store(CookieError),
}

impl Refusal {
    pub(super) fn not_utf8() -> Refusal {
        Refusal {
            name: None,
            reason: Reason::NotUtf8,
        }
    }

    pub(super) fn store(name: &str, e: CookieError) -> Refusal {
        Refusal::new(name, Reason::Store(e))
    }

    fn new(name: &str, reason: Reason) -> Refusal {
        // Names are not secret, but keep logs short.
        let name: String = name.chars().take(64).collect();
        Refusal {
            name: Some(name.into_boxed_str()),
            reason,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.name {
            write!(f, "`{name}` ")?;
        }
        f.write_str("refused: ")?;
        match &self.reason {
            Reason::NotUtf8 => f.write_str("Set-Cookie is not valid UTF-8"),
            Reason::Parse => f.write_str("it does not parse as a cookie"),
            Reason::Empty => f.write_str("both its name and its value are empty"),
            Reason::TooLarge(max) => write!(f, "name and value are larger than {max} bytes"),
            Reason::Control => f.write_str("it contains control characters"),
            Reason::InsecureOrigin => {
                f.write_str("a Secure cookie can only be set over https (or by a loopback host)")
            }
            Reason::SecurePrefix => f.write_str("a `__Secure-` cookie must have Secure"),
            Reason::HostPrefix => {
                f.write_str("a `__Host-` cookie must have Secure and Path=/ and no Domain")
            }
            Reason::PublicSuffix(d) => write!(f, "Domain={d} is a public suffix"),
            Reason::Store(CookieError::DomainMismatch) => {
                f.write_str("its Domain does not match the request host")
            }
            Reason::Store(CookieError::NonRelativeScheme) => f.write_str("the URL has no host"),
            Reason::Store(e) => write!(f, "{e}"),
        }
    }
}

/// Parses one `Set-Cookie` value received from `url` and applies every acceptance rule
/// that does not need the store. Runs without the jar's lock.
pub(super) fn prepare(text: &str, url: &Url, limits: &Limits) -> Result<Prepared, Refusal> {
    let raw = RawCookie::parse(text).map_err(|_| Refusal {
        name: None,
        reason: Reason::Parse,
    })?;
    let (name, value) = (raw.name(), raw.value());
    if name.is_empty() && value.is_empty() {
        return Err(Refusal::new(name, Reason::Empty));
    }
    if name.len() + value.len() > limits.max_size {
        return Err(Refusal::new(name, Reason::TooLarge(limits.max_size)));
    }
    if has_control(name) || has_control(value) {
        return Err(Refusal::new(name, Reason::Control));
    }
    let secure = raw.secure().unwrap_or(false);
    if secure && !is_secure_origin(url) {
        return Err(Refusal::new(name, Reason::InsecureOrigin));
    }
    if starts_with_ignore_case(name, "__Secure-") && !secure {
        return Err(Refusal::new(name, Reason::SecurePrefix));
    }
    if starts_with_ignore_case(name, "__Host-")
        && (!secure || raw.domain().is_some_and(|d| !d.is_empty()) || raw.path() != Some("/"))
    {
        return Err(Refusal::new(name, Reason::HostPrefix));
    }
    let mut cookie =
        Cookie::try_from_raw_cookie(&raw, url).map_err(|e| Refusal::new(name, Reason::Store(e)))?;
    if let CookieDomain::Suffix(domain) = &cookie.domain {
        if is_public_suffix(domain) {
            if url.host_str() == Some(domain.as_str()) {
                // RFC 6265 §5.3 step 5: the host itself may set it, host-only.
                cookie.domain = CookieDomain::host_only(url)
                    .map_err(|e| Refusal::new(name, Reason::Store(e)))?;
            } else {
                return Err(Refusal::new(name, Reason::PublicSuffix(domain.clone())));
            }
        }
    }
    let cookie = cookie.into_owned();
    let key = Key::of(&cookie);
    let site = site_of(&key.domain).into();
    Ok(Prepared { cookie, key, site })
}

/// CTL characters other than HTAB (RFC 6265bis §5.6 step 4).
fn has_control(s: &str) -> bool {
    s.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// https, or a loopback host (as browsers and `cookie_store` treat them when sending).
pub(super) fn is_secure_origin(url: &Url) -> bool {
    if matches!(url.scheme(), "https" | "wss") {
        return true;
    }
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn is_ip(host: &str) -> bool {
    host.starts_with('[') || host.parse::<Ipv4Addr>().is_ok() || host.parse::<Ipv6Addr>().is_ok()
}

/// True when `domain` (lower case, ASCII) is a public suffix: listed (`com`, `co.uk`,
/// `github.io`) or an unlisted top-level label (`test`, `local`), which the list's
/// default rule `*` makes a suffix too.
pub(super) fn is_public_suffix(domain: &str) -> bool {
    if is_ip(domain) {
        return false;
    }
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    match psl::suffix(domain.as_bytes()) {
        Some(suffix) => suffix.trim().as_bytes() == domain.as_bytes(),
        // Not a name the list can judge (empty labels and the like): refuse it as a
        // cookie domain rather than risk a cookie for a whole suffix.
        None => true,
    }
}

/// The registrable domain ("site") of a host or cookie domain: `a.b.example.co.uk` →
/// `example.co.uk`. An IP address, or a name that is itself a public suffix, is its own
/// site. Cookies sent to a host all belong to the host's site, since a cookie domain that
/// is a public suffix is refused.
pub(super) fn site_of(host: &str) -> &str {
    if is_ip(host) {
        return host;
    }
    match psl::domain(host.as_bytes()) {
        Some(d) => std::str::from_utf8(d.as_bytes()).unwrap_or(host),
        None => host,
    }
}

/// When a cookie expires, if it is persistent.
pub(super) fn expiry_of(c: &Cookie<'_>) -> Option<SystemTime> {
    match &c.expires {
        CookieExpiration::AtUtc(t) => Some(SystemTime::from(*t)),
        CookieExpiration::SessionEnd => None,
    }
}

/// True when the cookie has expired by `now`.
pub(super) fn expired_at(c: &Cookie<'_>, now: SystemTime) -> bool {
    expiry_of(c).is_some_and(|t| t <= now)
}

/// What cookie matching needs of a request URL, read straight from an `http::Uri`
/// (no `url::Url` parse on the request path) or from a `Url`.
pub(super) struct Target<'a> {
    /// The host in lower case; IPv6 in brackets, as `url` writes it.
    pub(super) host: Cow<'a, str>,
    pub(super) path: &'a str,
    /// https, or a loopback host.
    pub(super) secure: bool,
}

impl<'a> Target<'a> {
    /// `None` for a relative URI (no host).
    pub(super) fn from_uri(uri: &'a Uri) -> Option<Self> {
        let host = uri.host()?;
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(host.to_ascii_lowercase())
        } else {
            Cow::Borrowed(host)
        };
        let path = match uri.path() {
            "" => "/",
            p => p,
        };
        let secure = matches!(uri.scheme_str(), Some("https" | "wss")) || is_loopback_host(&host);
        Some(Target { host, path, secure })
    }

    /// `None` for a URL without a host.
    pub(super) fn from_url(url: &'a Url) -> Option<Self> {
        let host = url.host_str()?;
        Some(Target {
            host: Cow::Borrowed(host),
            path: url.path(),
            secure: is_secure_origin(url),
        })
    }

    /// RFC 6265 §5.4 step 1: domain-match (or the exact host for host-only), path-match,
    /// and `Secure` only over a secure channel.
    pub(super) fn matches(&self, c: &Cookie<'_>) -> bool {
        domain_matches(&c.domain, &self.host)
            && path_matches(&c.path, self.path)
            && (self.secure || !c.secure().unwrap_or(false))
    }
}

fn is_loopback_host(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return ip.is_loopback();
    }
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<Ipv6Addr>().ok())
        .is_some_and(|ip| ip.is_loopback())
}

/// RFC 6265 §5.1.3 (and host-only: identical hosts only).
fn domain_matches(domain: &CookieDomain, host: &str) -> bool {
    match domain {
        CookieDomain::HostOnly(h) => h == host,
        CookieDomain::Suffix(d) => {
            host == d
                || (host.len() > d.len()
                    && host.ends_with(d.as_str())
                    && host.as_bytes()[host.len() - d.len() - 1] == b'.'
                    && !is_ip(host))
        }
        CookieDomain::NotPresent | CookieDomain::Empty => false,
    }
}

/// RFC 6265 §5.1.4.
fn path_matches(cookie_path: &str, request_path: &str) -> bool {
    cookie_path == request_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/')
                || request_path.as_bytes().get(cookie_path.len()) == Some(&b'/')))
}
