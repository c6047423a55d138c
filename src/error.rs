//! The one error type of fastreq, its kinds, and the redaction of secrets in URLs.
//!
//! Every failure that fastreq reports is an [`Error`]. It is opaque: ask it what happened
//! with [`Error::kind`] or the `is_*` helpers, read the request URL it carries with
//! [`Error::url`] (already redacted), and walk [`std::error::Error::source`] for the cause.
//!
//! URLs inside errors, logs and command-line output never show secrets: the userinfo
//! (`user:password@`) is always removed, and query and fragment parameters whose names look
//! like secrets (see [`DEFAULT_REDACTED_PARAMS`]) have their values replaced by `REDACTED`.
//! Redaction works on the structure of the text, so a string that does not parse as a URL
//! is redacted too. An error keeps at most the first 2,048 bytes of a URL (after redaction)
//! and 4,096 bytes of a message; the rest is replaced by `…[truncated, N bytes]`.
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

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use crate::proxy::Proxy;

/// A type-erased error, as used by `tower` and `hyper` for sources.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The most of a URL (redacted) an [`Error`] keeps, in bytes.
const MAX_URL_LEN: usize = 2048;
/// The most of a message an [`Error`] keeps, in bytes.
const MAX_MESSAGE_LEN: usize = 4096;

/// Parameter names whose values are hidden by [`redact_url`], in the query and in the
/// fragment.
///
/// Matching is ASCII case-insensitive on the whole (percent-decoded) name; `-` and `_` are
/// not interchangeable, so both spellings are listed where both are in use:
///
/// - API keys: `key`, `api_key`, `apikey`, `api-key`, `x-api-key`;
/// - tokens: `token`, `access_token`, `refresh_token`, `id_token`, `auth_token`,
///   `session_token`, `jwt`;
/// - secrets and passwords: `secret`, `client_secret`, `password`, `passwd`, `pwd`,
///   `private_key`;
/// - signatures of signed URLs: `sig`, `signature`, and AWS S3's and Google Cloud
///   Storage's `x-amz-signature`, `x-amz-credential`, `x-amz-security-token`,
///   `x-goog-signature`, `x-goog-credential`;
/// - credentials and sessions: `auth`, `authorization`, `session`, `sessionid`,
///   `session_id`.
///
/// Not listed: OAuth's `code` (a one-time authorization code: worthless without the
/// client's secret or PKCE verifier, while `code` names a country, product or status code
/// in many data APIs whose URLs are worth reading in logs) and `state`. Add them with
/// [`Redactor::new`] (e.g. [`BackendBuilder::redact_query_params`](crate::BackendBuilder::redact_query_params))
/// if your URLs carry them.
pub const DEFAULT_REDACTED_PARAMS: &[&str] = &[
    "key",
    "api_key",
    "apikey",
    "api-key",
    "x-api-key",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth_token",
    "session_token",
    "jwt",
    "secret",
    "client_secret",
    "password",
    "passwd",
    "pwd",
    "private_key",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "auth",
    "authorization",
    "session",
    "sessionid",
    "session_id",
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
    /// The shared work queue on Redis (module `queue`, feature `redis`) failed, or gave up
    /// on an entry that several workers took and never finished.
    Queue,
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
            ErrorKind::Queue => "queue",
        }
    }

    pub(crate) fn describe(self) -> &'static str {
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
            ErrorKind::Queue => "work queue error",
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
/// request URL with secrets redacted, the proxy the failed attempt went through, the number
/// of attempts made (when a retry layer counted them) and the underlying cause as its
/// [`source`](std::error::Error::source).
///
/// A URL is kept up to its first 2,048 bytes (after redaction) and a message up to 4,096
/// bytes; longer ones end with `…[truncated, N bytes]`, N being the full length, so a huge
/// URL never makes a huge error.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: Option<String>,
    url: Option<String>,
    proxy: Option<Proxy>,
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
                proxy: None,
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

    /// Sets a human-readable message. It must not contain secrets. Past 4,096 bytes it is
    /// truncated (see the [type docs](Self)).
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.inner.message = Some(truncate(message.into(), MAX_MESSAGE_LEN));
        self
    }

    /// Sets the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// Records the request URL, redacted with [`redact_url`], then truncated past 2,048
    /// bytes (see the [type docs](Self)).
    pub fn with_url(mut self, url: impl fmt::Display) -> Self {
        self.inner.url = Some(truncate(redact_url(&url.to_string()), MAX_URL_LEN));
        self
    }

    /// Records the request URL, redacted with the given [`Redactor`], then truncated past
    /// 2,048 bytes.
    pub fn with_url_redacted(mut self, url: impl fmt::Display, redactor: &Redactor) -> Self {
        self.inner.url = Some(truncate(redactor.redact(&url.to_string()), MAX_URL_LEN));
        self
    }

    /// Records the proxy the failed attempt went through.
    ///
    /// fastreq sets it on every error of an attempt sent through a proxy, whatever its
    /// kind; [`Display`](fmt::Display) then names the proxy (credentials hidden) unless the
    /// message already does.
    pub fn with_proxy(mut self, proxy: Proxy) -> Self {
        self.inner.proxy = Some(proxy);
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

    /// The proxy the failed attempt went through, if it went through one.
    ///
    /// Set on this error or on a fastreq error it wraps (such as the retry layer's "not
    /// retried" mark). Its [`Display`](fmt::Display) hides the credentials. Absent for a
    /// direct request and for a request that was never sent (such as
    /// [`NoProxyAvailable`](ErrorKind::NoProxyAvailable); the proxy whose failure caused
    /// that one is a [`ProxyError`](crate::proxy::ProxyError) in its source chain).
    pub fn proxy(&self) -> Option<&Proxy> {
        if let Some(p) = &self.inner.proxy {
            return Some(p);
        }
        let mut next = self.inner.source.as_deref().map(as_dyn);
        for _ in 0..64 {
            let e = next?;
            if let Some(p) = e
                .downcast_ref::<Error>()
                .and_then(|f| f.inner.proxy.as_ref())
            {
                return Some(p);
            }
            next = match e
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(inner) => Some(as_dyn(inner)),
                None => e.source(),
            };
        }
        None
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
        if let Some(p) = &self.inner.proxy {
            d.field("proxy", p);
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
        if let Some(p) = self.proxy() {
            let named = self
                .inner
                .message
                .as_deref()
                .is_some_and(|m| m.contains(p.as_str()));
            if !named {
                write!(f, " through proxy {p}")?;
            }
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

fn as_dyn<'a>(
    e: &'a (dyn std::error::Error + Send + Sync + 'static),
) -> &'a (dyn std::error::Error + 'static) {
    e
}

/// `s` if it has at most `max` bytes, else its first `max` bytes (cut on a char boundary)
/// followed by `…[truncated, N bytes]`.
pub(crate) fn truncate(s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::with_capacity(cut + 32);
    out.push_str(&s[..cut]);
    let _ = write!(out, "…[truncated, {} bytes]", s.len());
    out
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

/// Redacts secrets in URLs: userinfo always, and the values of listed parameters.
///
/// Cheap to clone (the list is shared). [`Redactor::default`] uses
/// [`DEFAULT_REDACTED_PARAMS`].
///
/// It works on the text, not on a parsed URL, so that what fails to parse is redacted too:
///
/// - **userinfo**: a `user:password@` in front of the host goes, whatever comes before it
///   (`http://`, `http:/`, `http:`, `//`, or nothing); an `@` later in the path stays;
/// - **parameters**: in the query and in the fragment (`#access_token=…`), separated by
///   `&` or `;` (or a further `?` or `#`), the value of each listed name becomes
///   `REDACTED`.
///
/// A URL without `@` and without `=` after its `?` or `#` is copied as it is, after one scan.
///
/// ```
/// let r = fastreq::Redactor::new(["session"]);
/// assert_eq!(r.redact("http://h.test/?session=abc&x=1"), "http://h.test/?session=REDACTED&x=1");
/// assert_eq!(
///     fastreq::redact_url("http:/alice:s3cret@[::1/a?x=1;token=t0k#id_token=i0k"),
///     "http:/[::1/a?x=1;token=REDACTED#id_token=REDACTED",
/// );
/// ```
#[derive(Clone)]
pub struct Redactor {
    params: Arc<[Box<str>]>,
    /// Bit `n` set when a listed name has `n` bytes (63: 63 or more): most names are ruled
    /// out by their length alone.
    lengths: u64,
}

/// Schemes kept in front of userinfo even without a slash after them (`http:user:pw@h`).
const KNOWN_SCHEMES: &[&str] = &[
    "http", "https", "ws", "wss", "ftp", "socks4", "socks4a", "socks5", "socks5h",
];

fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

impl Redactor {
    /// A redactor hiding the values of the named parameters (ASCII case-insensitive).
    pub fn new<I, S>(params: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let params: Arc<[Box<str>]> = params
            .into_iter()
            .map(|s| s.as_ref().to_ascii_lowercase().into_boxed_str())
            .collect();
        let lengths = params.iter().fold(0, |m, p| m | length_bit(p.len()));
        Redactor { params, lengths }
    }

    /// The parameter names this redactor hides.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.params.iter().map(|s| &**s)
    }

    fn is_secret(&self, name: &str) -> bool {
        if name.contains(['%', '+']) {
            let decoded = form_urlencoded::parse(name.as_bytes())
                .next()
                .map(|(k, _)| k.into_owned())
                .unwrap_or_default();
            return self.is_listed(&decoded);
        }
        self.is_listed(name)
    }

    #[inline]
    fn is_listed(&self, name: &str) -> bool {
        self.lengths & length_bit(name.len()) != 0
            && self.params.iter().any(|p| p.eq_ignore_ascii_case(name))
    }

    /// Returns `url` with userinfo removed and secret parameter values replaced by
    /// `REDACTED`.
    ///
    /// Works on anything URL-shaped, also on strings that do not parse as URLs.
    pub fn redact(&self, url: &str) -> String {
        match self.redact_cow(url) {
            Cow::Borrowed(s) => s.to_owned(),
            Cow::Owned(s) => s,
        }
    }

    /// [`redact`](Redactor::redact) for an owned string: returned as it is, without a
    /// copy, when it holds nothing secret (most URLs).
    ///
    /// ```
    /// let r = fastreq::Redactor::default();
    /// assert_eq!(r.redact_owned("http://h.test/a".to_owned()), "http://h.test/a");
    /// assert_eq!(r.redact_owned("http://u:p@h.test/?token=1".to_owned()), "http://h.test/?token=REDACTED");
    /// ```
    pub fn redact_owned(&self, url: String) -> String {
        let redacted = match self.redact_cow(&url) {
            Cow::Borrowed(_) => None,
            Cow::Owned(s) => Some(s),
        };
        redacted.unwrap_or(url)
    }

    /// Whether the query and fragment `tail` name a secret parameter: the pairs read as
    /// [`redact_cow`](Redactor::redact_cow) reads them up to the first secret one.
    fn has_secret_param(&self, tail: &str) -> bool {
        let mut rest = tail;
        while !rest.is_empty() {
            // Past the separator (ASCII).
            rest = &rest[1..];
            let end = rest.find(['&', ';', '?', '#']).unwrap_or(rest.len());
            if let Some((name, _)) = rest[..end].split_once('=') {
                if self.is_secret(name) {
                    return true;
                }
            }
            rest = &rest[end..];
        }
        false
    }

    /// [`redact`](Redactor::redact) without a copy when nothing is secret: borrows `url`
    /// then, else returns the redacted string.
    ///
    /// ```
    /// use std::borrow::Cow;
    /// let r = fastreq::Redactor::default();
    /// assert!(matches!(r.redact_cow("http://h.test/a?q=1"), Cow::Borrowed(_)));
    /// assert_eq!(r.redact_cow("http://h.test/?api_key=1"), "http://h.test/?api_key=REDACTED");
    /// ```
    pub fn redact_cow<'a>(&self, url: &'a str) -> Cow<'a, str> {
        // The common path: one pass over the bytes, without branches (vectorised), finds
        // that there is no userinfo, query nor fragment to look at.
        let bytes = url.as_bytes();
        if !bytes.iter().fold(false, |any, &b| {
            any | (b == b'?') | (b == b'#') | (b == b'@')
        }) {
            return Cow::Borrowed(url);
        }
        let (base, tail) = match bytes.iter().position(|&b| b == b'?' || b == b'#') {
            Some(i) => url.split_at(i),
            None => (url, ""),
        };
        let userinfo = userinfo_range(base);
        if userinfo.is_none() && !self.has_secret_param(tail) {
            return Cow::Borrowed(url);
        }
        let mut out = String::with_capacity(url.len());
        match userinfo {
            Some((start, end)) => {
                out.push_str(&base[..start]);
                out.push_str(&base[end..]);
            }
            None => out.push_str(base),
        }
        // `tail` is empty or starts with '?' or '#': separator, pair, separator, pair...
        let mut rest = tail;
        while let Some(sep) = rest.chars().next() {
            out.push(sep);
            rest = &rest[1..];
            let end = rest.find(['&', ';', '?', '#']).unwrap_or(rest.len());
            let pair = &rest[..end];
            match pair.split_once('=') {
                Some((name, _)) if self.is_secret(name) => {
                    out.push_str(name);
                    out.push_str("=REDACTED");
                    // A `?` is part of a query value (`token=a?b`): the secret value runs
                    // to the next `&`, `;` or `#`.
                    let end = rest.find(['&', ';', '#']).unwrap_or(rest.len());
                    rest = &rest[end..];
                    continue;
                }
                _ => out.push_str(pair),
            }
            rest = &rest[end..];
        }
        Cow::Owned(out)
    }
}

/// The byte range of `user:password@` in `base` (a URL without query and fragment), if any.
fn userinfo_range(base: &str) -> Option<(usize, usize)> {
    // Most URLs: no '@' at all, one scan.
    let first_at = base.find('@')?;
    let b = base.as_bytes();
    // The authority starts after the scheme and its slashes, however many (or none).
    let mut start = 0;
    if let Some(colon) = scheme_end(b) {
        let slash_follows = matches!(b.get(colon + 1), Some(b'/' | b'\\'));
        if slash_follows
            || KNOWN_SCHEMES
                .iter()
                .any(|s| s.eq_ignore_ascii_case(&base[..colon]))
        {
            start = colon + 1;
        }
    } else if let Some(i) = base[..first_at].find("://") {
        // Not a scheme (`://u:p@h`, `1http://u:p@h`): the authority still follows `://`.
        start = i + 1;
    }
    while matches!(b.get(start), Some(b'/' | b'\\')) {
        start += 1;
    }
    if first_at < start {
        return None;
    }
    let end = base[start..]
        .find(['/', '\\'])
        .map_or(base.len(), |i| start + i);
    if let Some(at) = base[start..end].rfind('@') {
        return Some((start, start + at + 1));
    }
    // An '@' only after the first slash is in the path ("/@user"), unless what comes before
    // the slash is "user:pass", a password with an unencoded '/' ("u:pa/ss@host"): its
    // "port" is not a number.
    if looks_like_user_and_password(&base[start..end]) {
        let at = end + base[end..].find('@')?;
        return Some((start, at + 1));
    }
    None
}

/// The index of the ':' ending a scheme (`[A-Za-z][A-Za-z0-9+.-]*:`) at the start of `b`.
fn scheme_end(b: &[u8]) -> Option<usize> {
    if !b.first()?.is_ascii_alphabetic() {
        return None;
    }
    for (i, &c) in b.iter().enumerate().skip(1) {
        match c {
            b':' => return Some(i),
            c if c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.') => {}
            _ => return None,
        }
    }
    None
}

/// Whether an authority without '@' reads as `user:pass` rather than `host[:port]`.
fn looks_like_user_and_password(authority: &str) -> bool {
    if authority.starts_with('[') {
        return false;
    }
    match authority.rsplit_once(':') {
        Some((_, port)) => !port.bytes().all(|c| c.is_ascii_digit()),
        None => false,
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
/// [`DEFAULT_REDACTED_PARAMS`] replaced by `REDACTED`, in URLs that parse and in those that
/// do not.
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
    fn redact_cow_borrows_exactly_when_nothing_changes() {
        let r = Redactor::default();
        for url in [
            "http://h.test/",
            "http://h.test/a?q=1&r=2#f",
            "h.test:80?key",
            "http://h.test/?token",
            "http://u:p@h.test/",
            "http://h.test/?a=1&TOKEN=2",
            "http://h.test/?a=1;api%5Fkey=2",
            "http://h.test/#sig=1",
            "http://h.test/?x=a?token=b",
            "mailto:a@b",
        ] {
            let cow = r.redact_cow(url);
            let changed = matches!(cow, Cow::Owned(_));
            assert_eq!(changed, cow != url, "{url}");
            assert_eq!(r.redact(url), cow, "{url}");
            assert_eq!(r.redact_owned(url.to_owned()), cow, "{url}");
        }
    }

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

    #[test]
    fn userinfo_is_removed_whatever_the_scheme_separator() {
        for (input, want) in [
            ("http:/alice:s3cret@[::1/a", "http:/[::1/a"),
            ("http:alice:s3cret@h.test/a", "http:h.test/a"),
            ("//alice:s3cret@h.test/a", "//h.test/a"),
            ("alice:s3cret@h.test/x", "h.test/x"),
            ("http:\\\\alice:s3cret@h.test\\x", "http:\\\\h.test\\x"),
            ("HTTPS:///alice:s3cret@h.test", "HTTPS:///h.test"),
            (
                "socks5h://alice:s3cret@h.test:1080",
                "socks5h://h.test:1080",
            ),
            // An unencoded '/' in the password ends the authority early: still removed.
            ("http://alice:s3c/ret@h.test/a", "http://h.test/a"),
            ("ftp://alice:s3cret@h.test@evil/", "ftp://evil/"),
            // Found by fuzzing: no valid scheme before `://`.
            ("://alice:s3cret@h.test/a", "://h.test/a"),
            ("://:s3cret@/?q", ":///?q"),
            ("1http://alice:s3cret@h.test", "1http://h.test"),
        ] {
            let got = redact_url(input);
            assert_eq!(got, want, "{input}");
            assert!(!got.contains("s3c"), "{input} -> {got}");
        }
        // An '@' in the path (or after a real port) is not userinfo.
        for keep in [
            "https://medium.test/@user/post",
            "http://h.test:8080/a@b",
            "http://[::1]:80/@x",
            "http://h.test:/p@q",
            "h.test/@x",
        ] {
            assert_eq!(redact_url(keep), keep);
        }
    }

    #[test]
    fn fragments_and_semicolon_parameters_are_redacted() {
        assert_eq!(
            redact_url("https://app.test/cb#access_token=AT&id_token=IT&state=ok"),
            "https://app.test/cb#access_token=REDACTED&id_token=REDACTED&state=ok"
        );
        assert_eq!(
            redact_url("http://h.test/?a=1;token=T;b=2"),
            "http://h.test/?a=1;token=REDACTED;b=2"
        );
        assert_eq!(
            redact_url("http://h.test/#/route?refresh_token=R"),
            "http://h.test/#/route?refresh_token=REDACTED"
        );
        assert_eq!(
            redact_url("http://h.test/?next=/a?password=P#x"),
            "http://h.test/?next=/a?password=REDACTED#x"
        );
        // Found by fuzzing: a `?` inside a secret value does not end it.
        assert_eq!(
            redact_url("http://h.test/?token=ab?cd&x=1"),
            "http://h.test/?token=REDACTED&x=1"
        );
        assert_eq!(
            redact_url(":///?access_token=a?b"),
            ":///?access_token=REDACTED"
        );
        // A bad URL too.
        assert_eq!(
            redact_url("http:/u:p@[::1/a?X-Amz-Signature=S#Session=T"),
            "http:/[::1/a?X-Amz-Signature=REDACTED#Session=REDACTED"
        );
    }

    #[test]
    fn the_default_list_covers_common_secret_names_case_insensitively() {
        for name in [
            "client_secret",
            "REFRESH_TOKEN",
            "id_token",
            "X-Amz-Signature",
            "x-amz-credential",
            "X-Amz-Security-Token",
            "auth",
            "Authorization",
            "passwd",
            "pwd",
            "session",
            "SessionId",
            "private_key",
            "jwt",
            "x-goog-signature",
            "api-key",
        ] {
            let url = format!("http://h.test/?{name}=v4lue&q=1");
            let got = redact_url(&url);
            assert_eq!(got, format!("http://h.test/?{name}=REDACTED&q=1"), "{name}");
        }
        for name in ["code", "q", "page", "state", "keys", "author"] {
            let url = format!("http://h.test/?{name}=v");
            assert_eq!(redact_url(&url), url, "{name} is not a secret");
        }
    }

    #[test]
    fn urls_in_errors_are_capped_after_redaction() {
        let mut huge = String::from("http://u:s3cret@h.test/?token=abc&p=");
        huge.push_str(&"é".repeat(512 * 1024)); // 1 MiB of two-byte chars
        let redacted_len = redact_url(&huge).len();
        let e = Error::new(ErrorKind::Io).with_url(&huge);
        let url = e.url().unwrap();
        assert!(url.len() < MAX_URL_LEN + 64, "{}", url.len());
        assert!(url.starts_with("http://h.test/?token=REDACTED&p=é"));
        assert!(
            url.ends_with(&format!("…[truncated, {redacted_len} bytes]")),
            "{url}"
        );
        assert!(e.to_string().len() < MAX_URL_LEN + 128);
        assert!(format!("{e:?}").len() < MAX_URL_LEN + 128);
        assert!(!format!("{e} {e:?}").contains("s3cret"));
        // A message (which may quote the URL) is capped too.
        let e = Error::new(ErrorKind::InvalidRequest).with_message(format!("invalid URL `{huge}`"));
        assert!(e.to_string().len() < 2 * MAX_URL_LEN + 128);
        assert!(e.message().unwrap().contains("…[truncated, "));
        // Short ones are untouched.
        let e = Error::new(ErrorKind::Io)
            .with_url("http://h.test/a")
            .with_message("m");
        assert_eq!(e.to_string(), "I/O error: m (http://h.test/a)");
    }
}
