//! [`Reply`]: what the test server answers, including injected faults.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future as _;
use std::io::Write as _;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use super::stats::ActiveGuard;

/// The error the server uses to abort a response on purpose (never seen by
/// clients as such: they only see the connection / stream going away).
#[derive(Debug)]
pub struct InjectedFault(&'static str);

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "test server injected fault: {}", self.0)
    }
}

impl std::error::Error for InjectedFault {}

#[derive(Debug)]
enum Payload {
    Full(Bytes),
    Stream(mpsc::Receiver<Bytes>),
    ResetBeforeHeaders,
    ResetAfterHeaders(Bytes),
    Truncated { body: Bytes, declared: u64 },
}

/// A response description returned by handlers.
///
/// Start from a constructor ([`ok`](Self::ok), [`text`](Self::text),
/// [`json`](Self::json), [`bytes`](Self::bytes), [`status`](Self::status),
/// [`stream`](Self::stream)) or a fault ([`reset_before_headers`](Self::reset_before_headers),
/// [`reset_after_headers`](Self::reset_after_headers), [`truncated`](Self::truncated)),
/// then refine with [`header`](Self::header), [`body`](Self::body),
/// [`with_status`](Self::with_status), [`delay`](Self::delay),
/// [`slow_body`](Self::slow_body), [`gzip`](Self::gzip).
///
/// Fixed bodies get an exact `Content-Length`; [`stream`](Self::stream) bodies are
/// sent chunked on HTTP/1.1.
#[derive(Debug)]
pub struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    payload: Payload,
    delay: Option<Duration>,
    slow: Option<(usize, Duration)>,
    gzip: bool,
}

impl Reply {
    fn new(status: StatusCode, payload: Payload) -> Self {
        Reply {
            status,
            headers: HeaderMap::new(),
            payload,
            delay: None,
            slow: None,
            gzip: false,
        }
    }

    /// `200 OK` with an empty body.
    pub fn ok() -> Self {
        Self::new(StatusCode::OK, Payload::Full(Bytes::new()))
    }

    /// `200 OK`, `Content-Type: text/plain; charset=utf-8`, body `s`.
    pub fn text(s: impl Into<String>) -> Self {
        Self::new(StatusCode::OK, Payload::Full(Bytes::from(s.into()))).header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )
    }

    /// `200 OK`, `Content-Type: application/json`, body `s` (sent as is).
    pub fn json(s: impl Into<String>) -> Self {
        Self::new(StatusCode::OK, Payload::Full(Bytes::from(s.into()))).header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )
    }

    /// `200 OK`, `Content-Type: application/octet-stream`, body `b`.
    pub fn bytes(b: impl Into<Bytes>) -> Self {
        Self::new(StatusCode::OK, Payload::Full(b.into())).header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )
    }

    /// Empty body with the given status code. Panics on an invalid code.
    pub fn status(code: u16) -> Self {
        Self::new(status_code(code), Payload::Full(Bytes::new()))
    }

    /// `200 OK` whose body is whatever the test sends on the channel; each
    /// message is written out as it arrives, and the body ends when every
    /// sender is dropped. (HTTP/1.1: chunked encoding.) The request stays
    /// [`active`](super::Stats::active) until then.
    pub fn stream(rx: mpsc::Receiver<Bytes>) -> Self {
        Self::new(StatusCode::OK, Payload::Stream(rx))
    }

    /// Fault: no response at all. HTTP/1: the connection is closed without a
    /// single byte written. HTTP/2: the stream is reset (`INTERNAL_ERROR`).
    pub fn reset_before_headers() -> Self {
        Self::new(StatusCode::OK, Payload::ResetBeforeHeaders)
    }

    /// Fault: `200` headers (no `Content-Length`, chunked on HTTP/1.1) and
    /// `partial_body` are sent and flushed, then the HTTP/1 connection is closed
    /// mid-body (HTTP/2: the stream is reset).
    pub fn reset_after_headers(partial_body: impl Into<Bytes>) -> Self {
        Self::new(
            StatusCode::OK,
            Payload::ResetAfterHeaders(partial_body.into()),
        )
    }

    /// Fault: `200` with `Content-Length: declared_len` but only `body` is sent
    /// (and flushed), then the HTTP/1 connection is closed. HTTP/2: the stream
    /// ends early, which clients report as a content-length mismatch.
    /// `declared_len` should be larger than `body.len()`.
    pub fn truncated(body: impl Into<Bytes>, declared_len: u64) -> Self {
        Self::new(
            StatusCode::OK,
            Payload::Truncated {
                body: body.into(),
                declared: declared_len,
            },
        )
    }

    /// Replaces the status code. Panics on an invalid code.
    pub fn with_status(mut self, code: u16) -> Self {
        self.status = status_code(code);
        self
    }

    /// Appends a header (repeat the call for multi-valued headers).
    /// Panics on an invalid name or value.
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: fmt::Debug,
        V: TryInto<HeaderValue>,
        V::Error: fmt::Debug,
    {
        let name = name.try_into().expect("Reply::header: invalid header name");
        let value = value
            .try_into()
            .expect("Reply::header: invalid header value");
        self.headers.append(name, value);
        self
    }

    /// Replaces the body bytes (for faults: the part that gets sent).
    /// No effect on [`stream`](Self::stream) / [`reset_before_headers`](Self::reset_before_headers).
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        match &mut self.payload {
            Payload::Full(b)
            | Payload::ResetAfterHeaders(b)
            | Payload::Truncated { body: b, .. } => *b = body.into(),
            Payload::Stream(_) | Payload::ResetBeforeHeaders => {}
        }
        self
    }

    /// Waits this long (after the request body was read) before sending
    /// anything, headers included. Also applies before faults.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Sends a fixed body as `chunks` roughly equal pieces: the first right
    /// after the headers, then one every `interval` (total ≈ `(chunks-1) *
    /// interval`). `Content-Length` is still exact. Fixed bodies only.
    pub fn slow_body(mut self, chunks: usize, interval: Duration) -> Self {
        self.slow = Some((chunks, interval));
        self
    }

    /// Gzip-compresses a fixed body (before any [`slow_body`](Self::slow_body)
    /// split) and sets `Content-Encoding: gzip`. Ignored for streams and faults.
    pub fn gzip(mut self) -> Self {
        self.gzip = true;
        self
    }

    /// Turns the description into a hyper response (after the delay).
    pub(super) async fn respond(
        self,
        guard: ActiveGuard,
    ) -> Result<Response<ReplyBody>, InjectedFault> {
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        let mut headers = self.headers;
        let kind = match self.payload {
            Payload::ResetBeforeHeaders => return Err(InjectedFault("reset before headers")),
            Payload::Full(mut body) => {
                if self.gzip {
                    body = gzip_bytes(&body);
                    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                }
                match self.slow {
                    _ if body.is_empty() => Kind::Done,
                    Some((chunks, interval)) if chunks > 1 => Kind::Slow {
                        remaining: body.len() as u64,
                        chunks: split(body, chunks),
                        interval,
                        sleep: None,
                    },
                    _ => Kind::Full(Some(body)),
                }
            }
            Payload::Stream(rx) => Kind::Stream(rx),
            Payload::ResetAfterHeaders(partial) => Kind::Fault {
                partial: Some(partial),
                flushed: false,
                abort: true,
            },
            Payload::Truncated { body, declared } => {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(declared));
                Kind::Fault {
                    partial: Some(body),
                    flushed: false,
                    abort: false,
                }
            }
        };
        let mut res = Response::new(ReplyBody {
            kind,
            guard: Some(guard),
        });
        *res.status_mut() = self.status;
        *res.headers_mut() = headers;
        Ok(res)
    }
}

fn status_code(code: u16) -> StatusCode {
    StatusCode::from_u16(code).expect("invalid HTTP status code")
}

/// Gzip-encodes `data` with flate2 (default level).
pub fn gzip_bytes(data: &[u8]) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gzip into Vec cannot fail");
    Bytes::from(enc.finish().expect("gzip into Vec cannot fail"))
}

fn split(mut body: Bytes, chunks: usize) -> VecDeque<Bytes> {
    let chunks = chunks.min(body.len()).max(1);
    let size = body.len().div_ceil(chunks);
    let mut out = VecDeque::with_capacity(chunks);
    while !body.is_empty() {
        let n = size.min(body.len());
        out.push_back(body.split_to(n));
    }
    out
}

enum Kind {
    Done,
    Full(Option<Bytes>),
    Slow {
        chunks: VecDeque<Bytes>,
        interval: Duration,
        sleep: Option<Pin<Box<tokio::time::Sleep>>>,
        remaining: u64,
    },
    Stream(mpsc::Receiver<Bytes>),
    /// Send `partial`, yield once so hyper flushes it, then error (`abort`) or end early.
    Fault {
        partial: Option<Bytes>,
        flushed: bool,
        abort: bool,
    },
}

/// Response body type of the test server. Releases its "active" slot when it
/// produces its last chunk (or is dropped).
pub struct ReplyBody {
    kind: Kind,
    guard: Option<ActiveGuard>,
}

impl fmt::Debug for ReplyBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReplyBody")
    }
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = InjectedFault;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, InjectedFault>>> {
        let this = self.get_mut();
        match &mut this.kind {
            Kind::Done => {
                this.guard = None;
                Poll::Ready(None)
            }
            Kind::Full(body) => {
                this.guard = None;
                Poll::Ready(body.take().map(|b| Ok(Frame::data(b))))
            }
            Kind::Slow {
                chunks,
                interval,
                sleep,
                remaining,
            } => {
                if let Some(s) = sleep {
                    ready!(s.as_mut().poll(cx));
                    *sleep = None;
                }
                match chunks.pop_front() {
                    Some(chunk) => {
                        if chunks.is_empty() {
                            this.guard = None;
                        } else {
                            *sleep = Some(Box::pin(tokio::time::sleep(*interval)));
                        }
                        *remaining -= chunk.len() as u64;
                        Poll::Ready(Some(Ok(Frame::data(chunk))))
                    }
                    None => {
                        this.guard = None;
                        Poll::Ready(None)
                    }
                }
            }
            Kind::Stream(rx) => match ready!(rx.poll_recv(cx)) {
                Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
                None => {
                    this.guard = None;
                    this.kind = Kind::Done;
                    Poll::Ready(None)
                }
            },
            Kind::Fault {
                partial,
                flushed,
                abort,
            } => {
                if let Some(p) = partial.take().filter(|p| !p.is_empty()) {
                    return Poll::Ready(Some(Ok(Frame::data(p))));
                }
                if !*flushed {
                    // Give hyper one turn to flush headers + partial body
                    // before the connection is torn down.
                    *flushed = true;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                this.guard = None;
                if *abort {
                    Poll::Ready(Some(Err(InjectedFault("reset after headers"))))
                } else {
                    this.kind = Kind::Done;
                    Poll::Ready(None)
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Done => true,
            Kind::Full(b) => b.is_none(),
            Kind::Slow { chunks, .. } => chunks.is_empty(),
            Kind::Stream(_) | Kind::Fault { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Done => SizeHint::with_exact(0),
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Slow { remaining, .. } => SizeHint::with_exact(*remaining),
            Kind::Stream(_) | Kind::Fault { .. } => SizeHint::default(),
        }
    }
}
