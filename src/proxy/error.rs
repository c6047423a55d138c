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

    /// A fastreq [`Error`] of this kind, with this message, naming this proxy
    /// ([`Error::proxy`]), and this as its source.
    pub fn into_error(self) -> Error {
        let message = self.to_string();
        let proxy = self.proxy.clone();
        Error::new(self.kind)
            .with_message(message)
            .with_proxy(proxy)
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
/// [`ProxyError`] in its chain. Not a [`NoProxyAvailable`](ErrorKind::NoProxyAvailable)
/// error: its cause is an earlier failure, already counted.
pub(crate) fn is_proxy_failure(err: &Error) -> bool {
    match err.kind() {
        ErrorKind::Proxy => true,
        ErrorKind::NoProxyAvailable => false,
        _ => ProxyError::find(err).is_some(),
    }
}

/// At most this many causes of a failure are kept, each cut to this many bytes.
const MAX_CAUSES: usize = 8;
const MAX_CAUSE_LEN: usize = 1024;

/// A copy of a proxy failure, kept by the pool to be the cause of the
/// [`NoProxyAvailable`](ErrorKind::NoProxyAvailable) errors that follow it.
///
/// Only text is kept (errors are not `Clone`): the failure's message and the `Display` of
/// each of its causes, which the backend already keeps free of secrets.
pub(crate) struct FailureRecord {
    proxy: Proxy,
    kind: ErrorKind,
    message: String,
    causes: Vec<String>,
}

impl FailureRecord {
    /// The record of `err`, a failure of an attempt through `proxy`.
    pub(crate) fn of(err: &Error, proxy: &Proxy) -> Self {
        let (proxy, kind, message, source) = match ProxyError::find(err) {
            Some(pe) => (
                pe.proxy.clone(),
                pe.kind,
                pe.message.clone(),
                std::error::Error::source(pe),
            ),
            None => (
                proxy.clone(),
                err.kind(),
                err.message().unwrap_or(err.kind().describe()).to_owned(),
                std::error::Error::source(err),
            ),
        };
        let mut causes = Vec::new();
        if let Some(source) = source {
            crate::error::visit_chain(source, &mut |e| {
                if causes.len() < MAX_CAUSES {
                    causes.push(crate::error::truncate(e.to_string(), MAX_CAUSE_LEN));
                }
            });
        }
        FailureRecord {
            proxy,
            kind,
            message: crate::error::truncate(message, MAX_CAUSE_LEN),
            causes,
        }
    }

    /// The failure again, as a [`ProxyError`] with its causes.
    pub(crate) fn to_error(&self) -> ProxyError {
        let mut chain: Option<Cause> = None;
        for text in self.causes.iter().rev() {
            chain = Some(Cause {
                text: text.clone(),
                next: chain.map(Box::new),
            });
        }
        let err = ProxyError::new(&self.proxy, self.kind, self.message.clone());
        match chain {
            Some(c) => err.with_source(c),
            None => err,
        }
    }
}

/// One recorded cause: its text and the cause after it.
struct Cause {
    text: String,
    next: Option<Box<Cause>>,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.next
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}
