//! What is retried: statuses, error kinds, methods; and [`NotRetried`], the mark left on a
//! response or error that the layer chose not to retry.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::response::Parts;
use http::{Method, StatusCode};

use super::backoff::{Backoff, SeedSource};
use super::budget::RetryBudget;
use crate::error::{Error, ErrorKind};

/// The statuses retried by default: 429, 500, 502, 503 and 504.
pub const DEFAULT_RETRY_STATUSES: &[u16] = &[429, 500, 502, 503, 504];

/// The default cap on a `Retry-After` delay: 60 s. A longer one ends retrying.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The default number of retries: 3 (so at most 4 attempts).
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// Why the retry layer returned a retryable response or error instead of retrying it.
///
/// A response carries it as an extension (`resp.extensions().get::<NotRetried>()`); an
/// error carries it in its source chain, read with [`NotRetried::from_error`]. Responses
/// and errors that were not retryable in the first place (a 200, a 404, a TLS error) carry
/// no mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotRetried {
    /// Every allowed attempt was made (the layer's maximum, or the request's
    /// [`MaxRetries`](crate::ext::MaxRetries); `MaxRetries(0)` gives this at once).
    RetriesExhausted,
    /// The method is not idempotent (POST, PATCH, CONNECT…),
    /// [`retry_non_idempotent`](super::RetryBuilder::retry_non_idempotent) is off, and the
    /// outcome does not show that the server never processed the request (see
    /// [`is_unprocessed_error`]).
    NotIdempotent,
    /// The request body is a stream: it was sent once and cannot be sent again.
    BodyNotReplayable,
    /// The server asked (with `Retry-After`) for a longer wait than
    /// [`max_retry_after`](super::RetryBuilder::max_retry_after) allows.
    RetryAfterTooLong,
    /// The next attempt would start after the total [`deadline`](super::RetryBuilder::deadline).
    Deadline,
    /// The [`RetryBudget`] is empty.
    BudgetExhausted,
}

impl NotRetried {
    /// The mark of an error returned by the retry layer, if it has one.
    ///
    /// The marked error keeps the kind, URL and message of the original (the message gains
    /// a `(not retried: …)` suffix); the original error is the next link of its
    /// [`source`](std::error::Error::source) chain, after the mark.
    ///
    /// The whole source chain is searched, so the mark is found even when a layer above
    /// wrapped the error.
    pub fn from_error(err: &Error) -> Option<NotRetried> {
        let mut next = std::error::Error::source(err);
        for _ in 0..64 {
            let e = next?;
            if let Some(mark) = e.downcast_ref::<NotRetriedError>() {
                return Some(mark.reason);
            }
            next = e.source();
        }
        None
    }

    /// A short description, e.g. `"the request body is a stream and cannot be replayed"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            NotRetried::RetriesExhausted => "the retry limit was reached",
            NotRetried::NotIdempotent => "the method is not idempotent",
            NotRetried::BodyNotReplayable => "the request body is a stream and cannot be replayed",
            NotRetried::RetryAfterTooLong => "Retry-After asks for a longer wait than allowed",
            NotRetried::Deadline => "the next attempt would start after the total deadline",
            NotRetried::BudgetExhausted => "the retry budget is exhausted",
        }
    }
}

impl fmt::Display for NotRetried {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The link in an error's source chain that carries a [`NotRetried`] mark.
struct NotRetriedError {
    reason: NotRetried,
    error: Error,
}

impl fmt::Debug for NotRetriedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotRetried")
            .field("reason", &self.reason)
            .field("error", &self.error)
            .finish()
    }
}

impl fmt::Display for NotRetriedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not retried: {}", self.reason)
    }
}

impl std::error::Error for NotRetriedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Marks `err` as not retried: same kind, URL and message (plus a suffix), the original as
/// the source behind the mark.
///
/// The message says why retrying stopped only when that adds something: after the retry
/// limit, "after N attempts" already says it.
pub(crate) fn mark_error(err: Error, reason: NotRetried, attempts: u32) -> Error {
    let why = match (reason, attempts) {
        (NotRetried::RetriesExhausted, _) => None,
        (_, 1) => Some(format!("not retried: {reason}")),
        (_, _) => Some(format!("stopped retrying: {reason}")),
    };
    let message = match (err.message(), why) {
        (Some(m), Some(why)) => Some(format!("{m} ({why})")),
        (Some(m), None) => Some(m.to_owned()),
        (None, why) => why,
    };
    let mut marked = Error::new(err.kind()).with_attempts(attempts);
    if let Some(message) = message {
        marked = marked.with_message(message);
    }
    if let Some(proxy) = err.proxy() {
        marked = marked.with_proxy(proxy.clone());
    }
    if let Some(url) = err.url() {
        // Already redacted by whoever set it; keep it exactly.
        marked = marked.with_url_redacted(url, &crate::error::Redactor::new([""; 0]));
    }
    marked.with_source(NotRetriedError {
        reason,
        error: err.with_attempts(attempts),
    })
}

/// Whether the default rules retry this error.
///
/// - [`Connect`](ErrorKind::Connect) and [`Timeout`](ErrorKind::Timeout): yes (a timeout
///   of one attempt; the layer's own total deadline is final).
/// - [`Proxy`](ErrorKind::Proxy): yes — the request did not reach the origin, and the
///   proxy layer below picks another proxy for the next attempt.
/// - [`Io`](ErrorKind::Io): only when its source chain shows the connection failed under
///   the request: a reset, abort or broken pipe (`std::io::Error`), hyper's "connection
///   closed before message completed" or a canceled dispatch, or HTTP/2 `REFUSED_STREAM`
///   or a `GOAWAY` from the server. Also any I/O failure of a response body read inside
///   the request by [`Collect`](crate::collect::Collect) (the buffered path): a reset,
///   truncation or malformed framing of the body.
/// - Everything else (TLS, invalid request, decode, body too large, redirects…): no.
///
/// Methods are checked separately: by default a non-idempotent request (POST, PATCH…) is
/// retried only after an error that shows the server never processed it
/// ([`is_unprocessed_error`]).
pub fn is_retryable_error(err: &Error) -> bool {
    match err.kind() {
        ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Proxy => true,
        ErrorKind::Io if err.is_body_failure() => true,
        ErrorKind::Io => {
            let mut found = false;
            crate::error::visit_chain(err, &mut |e| found = found || is_connection_failure(e));
            found
        }
        _ => false,
    }
}

/// Whether `err` shows that the server never processed the request, so that sending it
/// again is safe whatever its method: the retry layer retries these errors for POST and
/// PATCH too (when the error is retryable at all and the body is replayable).
///
/// - The connection was never made: a [`Connect`](ErrorKind::Connect) error, or any error
///   the connector raised (a connect timeout, a proxy tunnel or a TLS handshake that
///   failed): no byte of the request was sent.
/// - HTTP/2 `REFUSED_STREAM` from the server: the stream was refused "before processing any
///   application logic" (RFC 9113 §8.7).
///
/// Not an HTTP/2 `GOAWAY`, although RFC 9113 §6.8 makes a stream above the frame's last
/// stream id safe to retry: the error does not carry the stream's id against that last
/// id, and with hyper 1 and h2 0.4 the server's `GOAWAY` error also reaches requests the
/// server did process (the fault soak, `tests/soak.rs`, saw a POST processed twice when
/// such errors were retried). A `GOAWAY` is retried for idempotent methods only.
///
/// A failure after the response began (a reset or a truncation of the body, read by
/// [`Collect`](crate::collect::Collect)) never is: the server processed the request.
pub fn is_unprocessed_error(err: &Error) -> bool {
    if err.kind() == ErrorKind::Connect {
        return true;
    }
    if err.is_body_failure() {
        return false;
    }
    let mut found = false;
    crate::error::visit_chain(err, &mut |e| found = found || is_unprocessed_link(e));
    found
}

fn is_unprocessed_link(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(c) = e.downcast_ref::<hyper_util::client::legacy::Error>() {
        return c.is_connect();
    }
    h2_from_server(e) == Some(H2Refusal::RefusedStream)
}

/// What an HTTP/2 server refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum H2Refusal {
    /// `RST_STREAM(REFUSED_STREAM)`: this stream, unprocessed.
    RefusedStream,
    /// A `GOAWAY`: the connection.
    GoAway,
}

/// An HTTP/2 `REFUSED_STREAM` or `GOAWAY` received from the server, as h2's error or as
/// hyper's error wrapping it.
fn h2_from_server(e: &(dyn std::error::Error + 'static)) -> Option<H2Refusal> {
    #[cfg(feature = "http2")]
    if let Some(h2) = e.downcast_ref::<h2::Error>() {
        return match () {
            _ if !h2.is_remote() => None,
            _ if h2.is_reset() && h2.reason() == Some(h2::Reason::REFUSED_STREAM) => {
                Some(H2Refusal::RefusedStream)
            }
            _ if h2.is_go_away() => Some(H2Refusal::GoAway),
            _ => None,
        };
    }
    // Without h2's type at hand (another h2 than hyper's), its stable Display forms:
    // "stream error received: <reason>" (a RST_STREAM from the server) and
    // "connection error received: <reason>" (a GOAWAY from the server), under hyper.
    let h = e.downcast_ref::<hyper::Error>()?;
    let src = std::error::Error::source(h)?;
    if src.downcast_ref::<std::io::Error>().is_some() {
        return None;
    }
    let display = src.to_string();
    if display == format!("stream error received: {H2_REFUSED_STREAM}") {
        Some(H2Refusal::RefusedStream)
    } else if is_h2_retryable(&display) {
        Some(H2Refusal::GoAway)
    } else {
        None
    }
}

fn is_connection_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
        );
    }
    if let Some(h) = e.downcast_ref::<hyper::Error>() {
        if h.is_incomplete_message() || h.is_canceled() {
            return true;
        }
    }
    h2_from_server(e).is_some()
}

/// h2's description of `Reason::REFUSED_STREAM`.
const H2_REFUSED_STREAM: &str = "refused stream before processing any application logic";

/// True for h2 errors meaning the server did not process the stream: `REFUSED_STREAM`
/// (RFC 9113 §8.7) or a `GOAWAY` it sent.
pub(crate) fn is_h2_retryable(display: &str) -> bool {
    display == format!("stream error received: {H2_REFUSED_STREAM}")
        || display.starts_with("connection error received: ")
}

/// A custom classifier: `true` retries the outcome.
pub(crate) type Classifier = Arc<dyn Fn(Result<&Parts, &Error>) -> bool + Send + Sync>;

/// A set of status codes (100..=999) as a bitmap.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatusSet([u64; 16]);

impl StatusSet {
    pub(crate) const fn empty() -> Self {
        StatusSet([0; 16])
    }

    pub(crate) fn insert(&mut self, code: u16) {
        let c = code as usize;
        self.0[c / 64] |= 1 << (c % 64);
    }

    pub(crate) fn contains(&self, status: StatusCode) -> bool {
        let c = status.as_u16() as usize;
        c < 1024 && self.0[c / 64] & (1 << (c % 64)) != 0
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0u16..1024).filter(|&c| self.0[c as usize / 64] & (1 << (c % 64)) != 0)
    }
}

impl Default for StatusSet {
    fn default() -> Self {
        let mut s = StatusSet::empty();
        for &c in DEFAULT_RETRY_STATUSES {
            s.insert(c);
        }
        s
    }
}

impl fmt::Debug for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The whole configuration of a retry layer, shared by its services.
pub(crate) struct Config {
    pub(crate) max_retries: u32,
    pub(crate) non_idempotent: bool,
    pub(crate) statuses: StatusSet,
    pub(crate) classifier: Option<Classifier>,
    pub(crate) backoff: Box<dyn Backoff>,
    pub(crate) max_retry_after: Duration,
    pub(crate) deadline: Option<Duration>,
    pub(crate) budget: Option<RetryBudget>,
    pub(crate) seeds: SeedSource,
}

impl Config {
    /// Whether requests with this method may be retried.
    pub(crate) fn method_allowed(&self, method: &Method) -> bool {
        self.non_idempotent || method.is_idempotent()
    }

    /// Whether `result` should be retried (before limits, methods and bodies are checked).
    /// Takes the result apart for a custom classifier and gives it back.
    pub(crate) fn classify<B>(
        &self,
        result: Result<http::Response<B>, Error>,
    ) -> (Result<http::Response<B>, Error>, bool) {
        match &self.classifier {
            None => {
                let retry = match &result {
                    Ok(resp) => self.statuses.contains(resp.status()),
                    Err(e) => is_retryable_error(e),
                };
                (result, retry)
            }
            Some(f) => match result {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    let retry = f(Ok(&parts));
                    (Ok(http::Response::from_parts(parts, body)), retry)
                }
                Err(e) => {
                    let retry = f(Err(&e));
                    (Err(e), retry)
                }
            },
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RetryLayer");
        d.field("max_retries", &self.max_retries)
            .field("retry_non_idempotent", &self.non_idempotent);
        match &self.classifier {
            None => d.field("retry_on_status", &self.statuses),
            Some(_) => d.field("classifier", &"<closure>"),
        };
        d.field("backoff", &self.backoff)
            .field("max_retry_after", &self.max_retry_after)
            .field("deadline", &self.deadline)
            .field("budget", &self.budget)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fake(&'static str);
    impl fmt::Display for Fake {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Fake {}

    #[test]
    fn error_kinds() {
        for kind in [ErrorKind::Connect, ErrorKind::Timeout, ErrorKind::Proxy] {
            assert!(is_retryable_error(&Error::new(kind)), "{kind}");
        }
        for kind in [
            ErrorKind::Tls,
            ErrorKind::InvalidRequest,
            ErrorKind::Decode,
            ErrorKind::BodyTooLarge,
            ErrorKind::TooManyRedirects,
            ErrorKind::NoProxyAvailable,
            ErrorKind::Config,
            ErrorKind::Io,
        ] {
            assert!(!is_retryable_error(&Error::new(kind)), "{kind}");
        }
    }

    #[test]
    fn io_errors_walk_the_chain() {
        use std::io::{Error as IoError, ErrorKind as Io};
        let io = |k: Io| Error::new(ErrorKind::Io).with_source(IoError::from(k));
        assert!(is_retryable_error(&io(Io::ConnectionReset)));
        assert!(is_retryable_error(&io(Io::ConnectionAborted)));
        assert!(is_retryable_error(&io(Io::BrokenPipe)));
        assert!(!is_retryable_error(&io(Io::InvalidData)));
        assert!(!is_retryable_error(&io(Io::PermissionDenied)));
        // Nested: fastreq error -> other error -> io::Error(custom) -> reset.
        let nested = Error::new(ErrorKind::Io).with_source(Error::new(ErrorKind::Io).with_source(
            IoError::other(
                Error::new(ErrorKind::Io).with_source(IoError::from(Io::ConnectionReset)),
            ),
        ));
        assert!(is_retryable_error(&nested));
        let plain = Error::new(ErrorKind::Io).with_source(Fake("connection error received: x"));
        assert!(
            !is_retryable_error(&plain),
            "h2 forms count only under hyper"
        );
    }

    #[test]
    fn unprocessed_errors() {
        use std::io::{Error as IoError, ErrorKind as Io};
        assert!(is_unprocessed_error(&Error::new(ErrorKind::Connect)));
        // Processed, or maybe processed: a timeout, a reset, a body that failed.
        assert!(!is_unprocessed_error(&Error::new(ErrorKind::Timeout)));
        let reset = Error::new(ErrorKind::Io).with_source(IoError::from(Io::ConnectionReset));
        assert!(is_retryable_error(&reset) && !is_unprocessed_error(&reset));
        assert!(!is_unprocessed_error(&reset.mark_body_failed()));
        // Our own locally made h2 error is not the server's refusal.
        #[cfg(feature = "http2")]
        assert!(!is_unprocessed_error(
            &Error::new(ErrorKind::Io).with_source(h2::Error::from(h2::Reason::REFUSED_STREAM))
        ));
        let plain = Error::new(ErrorKind::Io).with_source(Fake(
            "stream error received: refused stream before processing any application logic",
        ));
        assert!(
            !is_unprocessed_error(&plain),
            "h2 forms count only under hyper"
        );
    }

    #[test]
    fn h2_reasons() {
        assert!(is_h2_retryable(
            "stream error received: refused stream before processing any application logic"
        ));
        assert!(is_h2_retryable(
            "connection error received: not a result of an error"
        ));
        assert!(is_h2_retryable(
            "connection error received: detected excessive load generating behavior (b\"bye\")"
        ));
        assert!(!is_h2_retryable(
            "stream error received: unexpected internal error encountered"
        ));
        assert!(!is_h2_retryable(
            "connection error detected: unspecific protocol error detected"
        ));
        assert!(!is_h2_retryable(
            "stream error sent by user: refused stream before processing any application logic"
        ));
    }

    #[test]
    fn status_set() {
        let s = StatusSet::default();
        for c in [429, 500, 502, 503, 504] {
            assert!(s.contains(StatusCode::from_u16(c).unwrap()));
        }
        for c in [200, 400, 404, 501, 505, 999] {
            assert!(!s.contains(StatusCode::from_u16(c).unwrap()));
        }
        assert_eq!(format!("{s:?}"), "[429, 500, 502, 503, 504]");
    }

    #[test]
    fn marking_keeps_kind_url_message_and_source() {
        let orig = Error::new(ErrorKind::Connect)
            .with_message("could not connect")
            .with_url("http://u:p@h.test/?token=x");
        let marked = mark_error(orig, NotRetried::BodyNotReplayable, 1);
        assert_eq!(marked.kind(), ErrorKind::Connect);
        assert_eq!(marked.url(), Some("http://h.test/?token=REDACTED"));
        assert_eq!(marked.attempts(), Some(1));
        assert_eq!(
            NotRetried::from_error(&marked),
            Some(NotRetried::BodyNotReplayable)
        );
        assert!(marked
            .to_string()
            .contains("could not connect (not retried: the request body is a stream"));
        let source = std::error::Error::source(&marked).unwrap();
        let original = source.source().unwrap().downcast_ref::<Error>().unwrap();
        assert_eq!(original.message(), Some("could not connect"));
        assert_eq!(NotRetried::from_error(original), None);
        // Found through a wrapper too.
        let wrapped = Error::new(ErrorKind::Io).with_source(marked);
        assert_eq!(
            NotRetried::from_error(&wrapped),
            Some(NotRetried::BodyNotReplayable)
        );
    }
}
