//! [`ProxyError`]: the mark on errors that are a proxy's fault.

use std::fmt;

use super::Proxy;
use crate::error::{BoxError, Error, ErrorKind};

/// A failure attributed to a proxy: it refused the connection, refused or failed the
/// `CONNECT` / SOCKS handshake, asked for credentials (407), or did not finish the handshake
/// in time.
///
/// The backend puts one in the [source chain](std::error::Error::source) of the
/// [`Error`] it returns (kind [`Proxy`](ErrorKind::Proxy), or
/// [`Timeout`](ErrorKind::Timeout) for a handshake that timed out); the
/// [rotation layer](super::ProxyRotationLayer) reads it to cool the proxy down. Find it with
/// [`ProxyError::find`]. Its message names the proxy with credentials redacted.
///
/// ```
/// use fastreq::proxy::{Proxy, ProxyError};
///
/// let proxy = Proxy::parse("http://u:pw@10.0.0.1:3128").unwrap();
/// let err = ProxyError::new(&proxy, fastreq::ErrorKind::Proxy, "tunnel refused").into_error();
/// let found = ProxyError::find(&err).unwrap();
/// assert_eq!(found.proxy(), &proxy);
/// assert_eq!(err.to_string(), "proxy error: proxy http://***@10.0.0.1:3128: tunnel refused");
/// ```
pub struct ProxyError {
    proxy: Proxy,
    kind: ErrorKind,
    message: String,
    source: Option<BoxError>,
}

impl ProxyError {
    /// A failure of `proxy`, of `kind` (normally [`Proxy`](ErrorKind::Proxy) or
    /// [`Timeout`](ErrorKind::Timeout)). The message must not hold secrets; the proxy is
    /// named (redacted) in front of it.
    pub fn new(proxy: &Proxy, kind: ErrorKind, message: impl Into<String>) -> Self {
        ProxyError {
            proxy: proxy.clone(),
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Sets the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The proxy that failed.
    pub fn proxy(&self) -> &Proxy {
        &self.proxy
    }

    /// The kind of the [`Error`] this becomes.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// A fastreq [`Error`] of this kind, with this message, and this as its source.
    pub fn into_error(self) -> Error {
        let message = self.to_string();
        Error::new(self.kind)
            .with_message(message)
            .with_source(self)
    }

    /// The first `ProxyError` in the source chain of `err` (including `err` itself), looking
    /// inside `io::Error`s too.
    pub fn find<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a ProxyError> {
        let mut next = Some(err);
        let mut depth = 0;
        while let Some(e) = next {
            if let Some(p) = e.downcast_ref::<ProxyError>() {
                return Some(p);
            }
            depth += 1;
            if depth > 32 {
                return None;
            }
            next = match e
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => e.source(),
            };
        }
        None
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "proxy {}: {}", self.proxy, self.message)
    }
}

impl fmt::Debug for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ProxyError");
        d.field("proxy", &self.proxy)
            .field("kind", &self.kind)
            .field("message", &self.message);
        if let Some(s) = &self.source {
            // Display only: a source's Debug could be a connector's, which may hold secrets.
            d.field("source", &format_args!("{s}"));
        }
        d.finish()
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|s| &**s as &(dyn std::error::Error + 'static))
    }
}

/// Whether `err` is a proxy's fault: kind [`Proxy`](ErrorKind::Proxy), or a
/// [`ProxyError`] in its chain.
pub(crate) fn is_proxy_failure(err: &Error) -> bool {
    err.kind() == ErrorKind::Proxy || ProxyError::find(err).is_some()
}
