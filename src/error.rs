//! The one error type of fastreq, its kinds, and the redaction of secrets in URLs.
//!
//! Every failure that fastreq reports is an [`Error`]. It is opaque: ask it what happened
//! with [`Error::kind`] or the `is_*` helpers, read the request URL it carries with
//! [`Error::url`] (already redacted), and walk [`std::error::Error::source`] for the cause.
//!
//! URLs inside errors, logs and command-line output never show secrets: the userinfo
//! (`user:password@`) is always removed, and query parameters whose names look like secrets
//! (see [`DEFAULT_REDACTED_PARAMS`]) have their values replaced by `REDACTED`.
//!
//! # Examples
//!
//! ```
//! use fastreq::{Error, ErrorKind};
//!
//! let err = fastreq::get("not a url").build().unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::InvalidRequest);
//! assert!(err.is_invalid_request());
//! assert!(err.to_string().contains("not a url"));
//!
//! let redacted = fastreq::redact_url("https://bob:hunter2@api.test/v1?api_key=s3cret&q=rust");
//! assert_eq!(redacted, "https://api.test/v1?api_key=REDACTED&q=rust");
//! ```

use std::fmt;
use std::sync::Arc;

/// A type-erased error, as used by `tower` and `hyper` for sources.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Query parameter names whose values are hidden by [`redact_url`].
///
/// Matching is ASCII case-insensitive on the whole name.
pub const DEFAULT_REDACTED_PARAMS: &[&str] = &[
    "key",
    "api_key",
    "apikey",
    "token",
    "access_token",
    "secret",
    "password",
    "sig",
    "signature",
];

/// What kind of failure an [`Error`] is.
///
/// The names in snake case (see [`ErrorKind::as_str`]) are what the command line prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request could not be built or sent as given: bad URL, header, method or body.
    InvalidRequest,
    /// No connection to the server could be established (refused, unreachable, DNS).
    Connect,
    /// The TLS handshake failed (untrusted certificate, name mismatch, protocol error).
    Tls,
    /// A timeout elapsed (connect, response headers, body idle, or total deadline).
    Timeout,
    /// A proxy failed: it refused the connection or the tunnel, or asked for credentials.
    Proxy,
    /// Every proxy of the pool is cooling down and the request may not go direct.
    NoProxyAvailable,
    /// The redirect chain was longer than allowed.
    TooManyRedirects,
    /// A redirect was refused by policy (for example a `file://` target or https → http).
    RedirectRejected,
    /// A response body exceeded the configured size cap.
    BodyTooLarge,
    /// A body could not be decoded (bad compression, bad JSON, bad charset).
    Decode,
    /// The request must be sent again but its body is a stream that cannot be replayed.
    BodyNotReplayable,
    /// The rate limiter's store failed.
    RateLimiter,
    /// The configuration is invalid, or an API was used in a context it does not support.
    Config,
    /// An I/O or protocol error while exchanging the request and response.
    Io,
}

impl ErrorKind {
    /// The kind's name in snake case, e.g. `"invalid_request"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Proxy => "proxy",
            ErrorKind::NoProxyAvailable => "no_proxy_available",
            ErrorKind::TooManyRedirects => "too_many_redirects",
            ErrorKind::RedirectRejected => "redirect_rejected",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::Decode => "decode",
            ErrorKind::BodyNotReplayable => "body_not_replayable",
            ErrorKind::RateLimiter => "rate_limiter",
            ErrorKind::Config => "config",
            ErrorKind::Io => "io",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid request",
            ErrorKind::Connect => "connection failed",
            ErrorKind::Tls => "TLS error",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Proxy => "proxy error",
            ErrorKind::NoProxyAvailable => "no proxy available",
            ErrorKind::TooManyRedirects => "too many redirects",
            ErrorKind::RedirectRejected => "redirect rejected",
            ErrorKind::BodyTooLarge => "body too large",
            ErrorKind::Decode => "decode error",
            ErrorKind::BodyNotReplayable => "body not replayable",
            ErrorKind::RateLimiter => "rate limiter error",
            ErrorKind::Config => "configuration error",
            ErrorKind::Io => "I/O error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error type of fastreq.
///
/// Cheap to move (one pointer). It carries its [`ErrorKind`], an optional message, the
/// request URL with secrets redacted, the number of attempts made (when a retry layer
/// counted them) and the underlying cause as its [`source`](std::error::Error::source).
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: Option<String>,
    url: Option<String>,
    attempts: Option<u32>,
    source: Option<BoxError>,
    // The response body failed while it was read inside the request (see `collect`).
    body_failed: bool,
}

impl Error {
    /// A new error of `kind`.
    pub fn new(kind: ErrorKind) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                message: None,
                url: None,
                attempts: None,
                source: None,
                body_failed: false,
            }),
        }
    }

    /// Marks an error of reading the response body inside the request (see
    /// [`collect`](crate::collect)): the retry policy treats it like a connection failure.
    pub(crate) fn mark_body_failed(mut self) -> Self {
        self.inner.body_failed = true;
        self
    }

    /// Whether [`mark_body_failed`](Self::mark_body_failed) marked this error.
    pub(crate) fn is_body_failure(&self) -> bool {
        self.inner.body_failed
    }

    /// Sets a human-readable message. It must not contain secrets.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.inner.message = Some(message.into());
        self
    }

    /// Sets the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// Records the request URL, redacted with [`redact_url`].
    pub fn with_url(mut self, url: impl fmt::Display) -> Self {
        self.inner.url = Some(redact_url(&url.to_string()));
        self
    }

    /// Records the request URL, redacted with the given [`Redactor`].
    pub fn with_url_redacted(mut self, url: impl fmt::Display, redactor: &Redactor) -> Self {
        self.inner.url = Some(redactor.redact(&url.to_string()));
        self
    }

    /// Records how many attempts were made before this error.
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.inner.attempts = Some(attempts);
        self
    }

    /// Turns any error into a fastreq [`Error`].
    ///
    /// A boxed [`Error`] is unboxed; anything else becomes an [`ErrorKind::Io`] error with it
    /// as the source (or [`ErrorKind::Timeout`] for tower's and tokio's elapsed errors).
    pub fn from_boxed(err: BoxError) -> Self {
        match err.downcast::<Error>() {
            Ok(e) => *e,
            Err(err) => {
                if err.is::<tower::timeout::error::Elapsed>()
                    || err.is::<tokio::time::error::Elapsed>()
                {
                    Error::new(ErrorKind::Timeout).with_source(err)
                } else {
                    Error::new(ErrorKind::Io).with_source(err)
                }
            }
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The request URL, redacted, if known.
    pub fn url(&self) -> Option<&str> {
        self.inner.url.as_deref()
    }

    /// The number of attempts made, if a retry layer counted them.
    pub fn attempts(&self) -> Option<u32> {
        self.inner.attempts
    }

    /// The message, if any, without kind, URL or cause.
    pub fn message(&self) -> Option<&str> {
        self.inner.message.as_deref()
    }

    /// True for [`ErrorKind::InvalidRequest`].
    pub fn is_invalid_request(&self) -> bool {
        self.kind() == ErrorKind::InvalidRequest
    }
    /// True for [`ErrorKind::Connect`].
    pub fn is_connect(&self) -> bool {
        self.kind() == ErrorKind::Connect
    }
    /// True for [`ErrorKind::Tls`].
    pub fn is_tls(&self) -> bool {
        self.kind() == ErrorKind::Tls
    }
    /// True for [`ErrorKind::Timeout`].
    pub fn is_timeout(&self) -> bool {
        self.kind() == ErrorKind::Timeout
    }
    /// True for [`ErrorKind::Proxy`] and [`ErrorKind::NoProxyAvailable`].
    pub fn is_proxy(&self) -> bool {
        matches!(self.kind(), ErrorKind::Proxy | ErrorKind::NoProxyAvailable)
    }
    /// True for [`ErrorKind::TooManyRedirects`] and [`ErrorKind::RedirectRejected`].
    pub fn is_redirect(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::TooManyRedirects | ErrorKind::RedirectRejected
        )
    }
    /// True for [`ErrorKind::BodyTooLarge`].
    pub fn is_body_too_large(&self) -> bool {
        self.kind() == ErrorKind::BodyTooLarge
    }
    /// True for [`ErrorKind::Decode`].
    pub fn is_decode(&self) -> bool {
        self.kind() == ErrorKind::Decode
    }
    /// True for [`ErrorKind::BodyNotReplayable`].
    pub fn is_body_not_replayable(&self) -> bool {
        self.kind() == ErrorKind::BodyNotReplayable
    }
    /// True for [`ErrorKind::Config`].
    pub fn is_config(&self) -> bool {
        self.kind() == ErrorKind::Config
    }
    /// True for [`ErrorKind::Io`].
    pub fn is_io(&self) -> bool {
        self.kind() == ErrorKind::Io
    }

    pub(crate) fn invalid_request(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidRequest).with_message(message)
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config).with_message(message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("fastreq::Error");
        d.field("kind", &self.inner.kind);
        if let Some(m) = &self.inner.message {
            d.field("message", m);
        }
        if let Some(u) = &self.inner.url {
            d.field("url", u);
        }
        if let Some(a) = &self.inner.attempts {
            d.field("attempts", a);
        }
        if let Some(s) = &self.inner.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.inner.kind.describe())?;
        if let Some(m) = &self.inner.message {
            write!(f, ": {m}")?;
        }
        if let Some(u) = &self.inner.url {
            write!(f, " ({u})")?;
        }
        if let Some(a) = self.inner.attempts {
            if a > 1 {
                write!(f, " after {a} attempts")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|s| &**s as &(dyn std::error::Error + 'static))
    }
}

impl From<BoxError> for Error {
    /// Same as [`Error::from_boxed`].
    fn from(err: BoxError) -> Self {
        Error::from_boxed(err)
    }
}

impl From<std::convert::Infallible> for Error {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

impl From<http::Error> for Error {
    fn from(err: http::Error) -> Self {
        Error::new(ErrorKind::InvalidRequest).with_source(err)
    }
}

/// Calls `f` on every error in the chain of `err`, looking inside `io::Error`s too (their
/// `source` skips the error they wrap). Stops after 64 links, so a cyclic chain ends.
pub(crate) fn visit_chain(
    err: &(dyn std::error::Error + 'static),
    f: &mut dyn FnMut(&(dyn std::error::Error + 'static)),
) {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut depth = 0;
    while let Some(e) = next {
        depth += 1;
        if depth > 64 {
            return;
        }
        f(e);
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                let inner: &(dyn std::error::Error + 'static) = inner;
                visit_chain(inner, f);
                return;
            }
        }
        next = e.source();
    }
}

/// Redacts secrets in URLs: userinfo always, and the values of listed query parameters.
///
/// Cheap to clone (the list is shared). [`Redactor::default`] uses
/// [`DEFAULT_REDACTED_PARAMS`].
///
/// ```
/// let r = fastreq::Redactor::new(["session"]);
/// assert_eq!(r.redact("http://h.test/?session=abc&x=1"), "http://h.test/?session=REDACTED&x=1");
/// ```
#[derive(Clone)]
pub struct Redactor {
    params: Arc<[Box<str>]>,
}

impl Redactor {
    /// A redactor hiding the values of the named query parameters (ASCII case-insensitive).
    pub fn new<I, S>(params: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Redactor {
            params: params
                .into_iter()
                .map(|s| s.as_ref().to_ascii_lowercase().into_boxed_str())
                .collect(),
        }
    }

    /// The parameter names this redactor hides.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.params.iter().map(|s| &**s)
    }

    fn is_secret(&self, name: &str) -> bool {
        self.params.iter().any(|p| p.eq_ignore_ascii_case(name))
    }

    /// Returns `url` with userinfo removed and secret query values replaced by `REDACTED`.
    ///
    /// Works on anything URL-shaped, also on strings that do not parse as URLs.
    pub fn redact(&self, url: &str) -> String {
        let (before_fragment, fragment) = match url.find('#') {
            Some(i) => url.split_at(i),
            None => (url, ""),
        };
        let (base, query) = match before_fragment.find('?') {
            Some(i) => (&before_fragment[..i], Some(&before_fragment[i + 1..])),
            None => (before_fragment, None),
        };
        let mut out = String::with_capacity(url.len());
        // Userinfo: between "://" and the first '@' that comes before the path.
        match base.find("://") {
            Some(i) => {
                let authority_start = i + 3;
                let rest = &base[authority_start..];
                let authority_end = rest.find('/').unwrap_or(rest.len());
                let authority = &rest[..authority_end];
                out.push_str(&base[..authority_start]);
                match authority.rfind('@') {
                    Some(at) => out.push_str(&authority[at + 1..]),
                    None => out.push_str(authority),
                }
                out.push_str(&rest[authority_end..]);
            }
            None => out.push_str(base),
        }
        if let Some(query) = query {
            out.push('?');
            for (n, pair) in query.split('&').enumerate() {
                if n > 0 {
                    out.push('&');
                }
                let name = pair.split('=').next().unwrap_or("");
                let decoded: String = form_urlencoded::parse(name.as_bytes())
                    .next()
                    .map(|(k, _)| k.into_owned())
                    .unwrap_or_default();
                if pair.contains('=') && self.is_secret(&decoded) {
                    out.push_str(name);
                    out.push_str("=REDACTED");
                } else {
                    out.push_str(pair);
                }
            }
        }
        out.push_str(fragment);
        out
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new(DEFAULT_REDACTED_PARAMS.iter().copied())
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.params.iter()).finish()
    }
}

/// Redacts `url` with the default [`Redactor`]: userinfo removed, values of
/// [`DEFAULT_REDACTED_PARAMS`] replaced by `REDACTED`.
pub fn redact_url(url: &str) -> String {
    thread_local! {
        static DEFAULT: Redactor = Redactor::default();
    }
    DEFAULT.with(|r| r.redact(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_userinfo_and_params() {
        assert_eq!(
            redact_url("https://u:p@h.test:8443/a/b?token=x&Q=1&SIGNATURE=z#frag"),
            "https://h.test:8443/a/b?token=REDACTED&Q=1&SIGNATURE=REDACTED#frag"
        );
        assert_eq!(redact_url("http://h.test/"), "http://h.test/");
        assert_eq!(redact_url("http://a@b@h.test/x@y"), "http://h.test/x@y");
        assert_eq!(redact_url("h.test:80?key"), "h.test:80?key");
        assert_eq!(
            redact_url("http://h/?api%5Fkey=1"),
            "http://h/?api%5Fkey=REDACTED"
        );
    }

    #[test]
    fn display_has_kind_message_url() {
        let e = Error::new(ErrorKind::Timeout)
            .with_message("no headers within 5s")
            .with_url("http://user:pw@h.test/?password=x")
            .with_attempts(3);
        let s = e.to_string();
        assert_eq!(
            s,
            "timed out: no headers within 5s (http://h.test/?password=REDACTED) after 3 attempts"
        );
        assert!(!format!("{e:?}").contains("pw"));
    }

    #[test]
    fn from_boxed_unwraps() {
        let e: BoxError = Box::new(Error::new(ErrorKind::Tls));
        assert_eq!(Error::from_boxed(e).kind(), ErrorKind::Tls);
        let io: BoxError = Box::new(std::io::Error::other("x"));
        assert_eq!(Error::from_boxed(io).kind(), ErrorKind::Io);
    }
}
