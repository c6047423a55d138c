//! Responses: the [`ResponseBody`], the [`ResponseExt`] helpers and the buffered [`Fetched`].
//!
//! A response from fastreq is an [`http::Response<ResponseBody>`](http::Response). Read it
//! with the [`ResponseExt`] helpers, which all stop at a size cap: the response's
//! [`BodyLimit`] extension (set by the backend, default [`DEFAULT_BODY_LIMIT`], 64 MiB), or
//! the limit given explicitly. A larger body is an
//! [`ErrorKind::BodyTooLarge`] error.
//!
//! Buffered bodies are copied to exact-size buffers, and a [`Fetched`] keeps its body, final
//! URL and headers in one: hyper hands out slices of its connection read buffer, and keeping
//! those for many small responses pins whole buffers (measured: 4.3 GB for 1,000,000
//! responses of 200 bytes).
//!
//! # Examples
//!
//! ```
//! use fastreq::{ResponseBody, ResponseExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
//! let resp = http::Response::builder()
//!     .header("content-type", "text/plain; charset=iso-8859-1")
//!     .body(ResponseBody::from(&b"caf\xe9"[..]))
//!     .unwrap();
//! assert_eq!(resp.text().await?, "café");
//!
//! let big = http::Response::new(ResponseBody::from(vec![0u8; 1000]));
//! let err = big.bytes_limited(100).await.unwrap_err();
//! assert!(err.is_body_too_large());
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Response, StatusCode, Uri, Version};
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;

use crate::error::{BoxError, Error, ErrorKind};
use crate::ext::{Attempts, BodyLimit, FinalUrl};

/// The default cap on a buffered response body: 64 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The body of a fastreq response: hyper's incoming body, bytes, or any boxed body.
///
/// Its errors are fastreq [`Error`]s.
pub struct ResponseBody {
    inner: BodyInner,
}

enum BodyInner {
    Hyper(hyper::body::Incoming),
    Full(Option<Bytes>),
    Boxed(UnsyncBoxBody<Bytes, Error>),
}

impl ResponseBody {
    /// An empty body.
    pub fn empty() -> Self {
        ResponseBody {
            inner: BodyInner::Full(None),
        }
    }

    /// Wraps any body; its errors are turned into [`Error`]s with [`Error::from_boxed`].
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body + Send + 'static,
        B::Data: Into<Bytes>,
        B::Error: Into<BoxError>,
    {
        ResponseBody {
            inner: BodyInner::Boxed(UnsyncBoxBody::new(Converted { inner: body })),
        }
    }

    pub(crate) fn hyper(body: hyper::body::Incoming) -> Self {
        ResponseBody {
            inner: BodyInner::Hyper(body),
        }
    }
}

pin_project_lite::pin_project! {
    /// A body with its data turned into [`Bytes`] and its errors into [`Error`]s, keeping its
    /// size hint (`map_frame` drops it, and readers size their buffers from it).
    struct Converted<B> {
        #[pin]
        inner: B,
    }
}

impl<B> http_body::Body for Converted<B>
where
    B: http_body::Body,
    B::Data: Into<Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.project().inner.poll_frame(cx).map(|frame| {
            frame.map(|r| {
                r.map(|f| f.map_data(Into::into))
                    .map_err(|e| Error::from_boxed(e.into()))
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Default for ResponseBody {
    fn default() -> Self {
        ResponseBody::empty()
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseBody")
    }
}

impl From<Bytes> for ResponseBody {
    fn from(b: Bytes) -> Self {
        ResponseBody {
            inner: BodyInner::Full(if b.is_empty() { None } else { Some(b) }),
        }
    }
}
impl From<Vec<u8>> for ResponseBody {
    fn from(b: Vec<u8>) -> Self {
        Bytes::from(b).into()
    }
}
impl From<String> for ResponseBody {
    fn from(s: String) -> Self {
        Bytes::from(s).into()
    }
}
impl From<&'static str> for ResponseBody {
    fn from(s: &'static str) -> Self {
        Bytes::from_static(s.as_bytes()).into()
    }
}
impl From<&'static [u8]> for ResponseBody {
    fn from(s: &'static [u8]) -> Self {
        Bytes::from_static(s).into()
    }
}

/// Maps a hyper error met while reading a body.
pub(crate) fn hyper_body_error(e: hyper::Error) -> Error {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Io
    };
    Error::new(kind)
        .with_message("error reading the response body")
        .with_source(e)
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match &mut self.get_mut().inner {
            BodyInner::Hyper(b) => match Pin::new(b).poll_frame(cx) {
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(hyper_body_error(e)))),
                other => other.map(|o| o.map(|r| r.map_err(hyper_body_error))),
            },
            BodyInner::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            BodyInner::Boxed(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            BodyInner::Hyper(b) => b.is_end_stream(),
            BodyInner::Full(b) => b.is_none(),
            BodyInner::Boxed(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            BodyInner::Hyper(b) => b.size_hint(),
            BodyInner::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            BodyInner::Boxed(b) => b.size_hint(),
        }
    }
}

/// Reads `body` to the end into one exact-size buffer, failing past `limit` bytes.
///
/// The result never shares memory with the buffers the body handed out.
pub(crate) async fn collect_limited<B>(body: B, limit: usize) -> Result<Bytes, Error>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let mut buf = CollectInto::new(body, limit, 0).await?;
    buf.shrink_to_fit();
    Ok(Bytes::from(buf))
}

pin_project_lite::pin_project! {
    /// Reads a body to the end into a new vector, failing past `limit` bytes; when the body
    /// announces its size, the vector is allocated once with `extra` bytes of room after it.
    pub(crate) struct CollectInto<B> {
        #[pin]
        body: B,
        buf: Vec<u8>,
        limit: usize,
        extra: usize,
        // Set when the announced size is already over the limit.
        early: Option<Error>,
    }
}

impl<B> CollectInto<B>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    pub(crate) fn new(body: B, limit: usize, extra: usize) -> Self {
        let hint = body.size_hint();
        let early = (hint.lower() > limit as u64).then(|| too_large(limit, hint.lower()));
        // Reserve what the peer announced (bounded by the limit) so the common case is one
        // copy; with nothing announced, the first chunk sizes the buffer.
        let announced = hint.exact().unwrap_or(hint.lower()) as usize;
        let buf = if early.is_none() && (announced > 0 || hint.exact().is_some()) {
            Vec::with_capacity(announced.saturating_add(extra))
        } else {
            Vec::new()
        };
        CollectInto {
            body,
            buf,
            limit,
            extra,
            early,
        }
    }
}

fn too_large(limit: usize, n: u64) -> Error {
    Error::new(ErrorKind::BodyTooLarge).with_message(format!(
        "response body exceeds the limit of {limit} bytes (at least {n} bytes)"
    ))
}

impl<B> Future for CollectInto<B>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    type Output = Result<Vec<u8>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(e) = this.early.take() {
            return Poll::Ready(Err(e));
        }
        loop {
            let Some(frame) = std::task::ready!(this.body.as_mut().poll_frame(cx)) else {
                return Poll::Ready(Ok(std::mem::take(this.buf)));
            };
            let frame = frame.map_err(|e| Error::from_boxed(e.into()))?;
            if let Ok(mut data) = frame.into_data() {
                let n = data.remaining();
                let buf = &mut *this.buf;
                if buf.len() + n > *this.limit {
                    return Poll::Ready(Err(too_large(*this.limit, (buf.len() + n) as u64)));
                }
                // A no-op while the announced size holds; keeps room for `extra` when it
                // grows.
                buf.reserve(n.saturating_add(*this.extra));
                while data.has_remaining() {
                    let chunk = data.chunk();
                    let len = chunk.len();
                    buf.extend_from_slice(chunk);
                    data.advance(len);
                }
            }
        }
    }
}

/// The encoding named by the `charset` parameter of a `Content-Type` value.
fn charset_of(content_type: Option<&[u8]>) -> Option<&'static encoding_rs::Encoding> {
    content_type?
        .split(|&b| b == b';')
        .skip(1)
        .find_map(|param| {
            let eq = param.iter().position(|&b| b == b'=')?;
            let (key, value) = (&param[..eq], &param[eq + 1..]);
            if key.trim_ascii().eq_ignore_ascii_case(b"charset") {
                let mut label = value.trim_ascii();
                while let Some(rest) = label.strip_prefix(b"\"") {
                    label = rest;
                }
                while let Some(rest) = label.strip_suffix(b"\"") {
                    label = rest;
                }
                encoding_rs::Encoding::for_label(label)
            } else {
                None
            }
        })
}

#[cfg(feature = "json")]
fn url_of<B>(resp: &Response<B>) -> Option<Uri> {
    resp.extensions().get::<FinalUrl>().map(|u| u.0.clone())
}

fn with_url(err: Error, url: Option<&Uri>) -> Error {
    match url {
        Some(u) if err.url().is_none() => err.with_url(u),
        _ => err,
    }
}

/// Helpers to read an [`http::Response`], each capped by a size limit.
///
/// Implemented for every `http::Response<B>` whose body yields bytes. See the
/// [module docs](self) for the cap.
pub trait ResponseExt: sealed::Sealed {
    /// Reads the whole body, up to the response's [`BodyLimit`] (default 64 MiB).
    fn bytes(self) -> impl Future<Output = Result<Bytes, Error>> + Send;

    /// Reads the whole body, failing with `BodyTooLarge` past `limit` bytes.
    fn bytes_limited(self, limit: usize) -> impl Future<Output = Result<Bytes, Error>> + Send;

    /// Reads the body as text: charset from `Content-Type`, else UTF-8; invalid sequences
    /// become U+FFFD.
    fn text(self) -> impl Future<Output = Result<String, Error>> + Send;

    /// Reads the body as JSON into `T`; invalid JSON is a `Decode` error.
    #[cfg(feature = "json")]
    fn json<T: serde::de::DeserializeOwned>(self) -> impl Future<Output = Result<T, Error>> + Send;

    /// The URL this response finally came from, when a fastreq backend or redirect layer
    /// recorded it ([`FinalUrl`]).
    fn final_url(&self) -> Option<&Uri>;

    /// How many attempts were made for this response ([`Attempts`]; 1 when not recorded).
    fn attempts(&self) -> u32;
}

mod sealed {
    pub trait Sealed {}
    impl<B> Sealed for http::Response<B> {}
}

impl<B> ResponseExt for Response<B>
where
    B: http_body::Body + Send,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    fn bytes(self) -> impl Future<Output = Result<Bytes, Error>> + Send {
        let limit = self
            .extensions()
            .get::<BodyLimit>()
            .map_or(DEFAULT_BODY_LIMIT, |l| l.0);
        self.bytes_limited(limit)
    }

    fn bytes_limited(self, limit: usize) -> impl Future<Output = Result<Bytes, Error>> + Send {
        // Moved out, not cloned: it is only needed if reading fails.
        let (mut parts, body) = self.into_parts();
        let url = parts.extensions.remove::<FinalUrl>().map(|u| u.0);
        async move {
            collect_limited(body, limit)
                .await
                .map_err(|e| with_url(e, url.as_ref()))
        }
    }

    fn text(self) -> impl Future<Output = Result<String, Error>> + Send {
        let content_type = self.headers().get(CONTENT_TYPE).map(HeaderValue::as_bytes);
        let encoding = charset_of(content_type).unwrap_or(encoding_rs::UTF_8);
        let bytes = self.bytes();
        async move {
            let bytes = bytes.await?;
            Ok(encoding.decode(&bytes).0.into_owned())
        }
    }

    #[cfg(feature = "json")]
    fn json<T: serde::de::DeserializeOwned>(self) -> impl Future<Output = Result<T, Error>> + Send {
        let url = url_of(&self);
        async move {
            let bytes = self.bytes().await?;
            serde_json::from_slice(&bytes).map_err(|e| {
                with_url(
                    Error::new(ErrorKind::Decode)
                        .with_message(format!("invalid JSON body: {e}"))
                        .with_source(e),
                    url.as_ref(),
                )
            })
        }
    }

    fn final_url(&self) -> Option<&Uri> {
        self.extensions().get::<FinalUrl>().map(|u| &u.0)
    }

    fn attempts(&self) -> u32 {
        self.extensions().get::<Attempts>().map_or(1, |a| a.0)
    }
}

/// A fully buffered response: status, headers, body, final URL, elapsed time and attempts.
///
/// Compact, so that keeping many of them costs little more than what they hold: body, final
/// URL and headers share one exact-size buffer (common header names stored as a one-byte
/// code). [`header`](Fetched::header) and [`header_str`](Fetched::header_str) read the
/// headers in place; [`headers`](Fetched::headers) builds a [`HeaderMap`] on first use, and
/// [`final_url`](Fetched::final_url) parses the URL on first use.
pub struct Fetched {
    /// `[body][tail]`, exact size. The tail is `[URL length][attempts][elapsed nanoseconds]
    /// [final URL][header block]`, the three numbers as varints.
    buf: Box<[u8]>,
    /// The header map and the parsed URL, built on demand.
    lazy: OnceLock<Box<Lazy>>,
    proxy: Option<crate::proxy::Proxy>,
    /// The length of the tail (the body is what precedes it).
    tail_len: u32,
    status: StatusCode,
    version: Version,
}

/// The tail of a [`Fetched`] buffer, decoded.
struct Tail<'a> {
    url: &'a [u8],
    attempts: u32,
    elapsed_nanos: u64,
    header_block: &'a [u8],
}

/// What [`Fetched`] builds from its buffer on demand.
#[derive(Default)]
struct Lazy {
    headers: OnceLock<HeaderMap>,
    url: OnceLock<Uri>,
}

/// What a [`Fetched`] keeps of a response while its body is read: the head, and the size
/// of the tail to reserve after the body.
struct Prepared {
    parts: http::response::Parts,
    /// The final URL (else the request's).
    url: Uri,
    attempts: u32,
    proxy: Option<crate::proxy::Proxy>,
    started: Instant,
    elapsed_width: usize,
    tail: usize,
}

impl Prepared {
    /// The head of a response and its body limit; an error when the headers and URL could
    /// not be buffered.
    fn new(
        mut parts: http::response::Parts,
        request_url: &Uri,
        started: Instant,
    ) -> Result<(Prepared, usize), Error> {
        let url = match parts.extensions.remove::<FinalUrl>() {
            Some(u) => u.0,
            None => request_url.clone(),
        };
        let limit = parts
            .extensions
            .get::<BodyLimit>()
            .map_or(DEFAULT_BODY_LIMIT, |l| l.0);
        let attempts = parts.extensions.get::<Attempts>().map_or(1, |a| a.0);
        let proxy = parts
            .extensions
            .get::<crate::proxy::SelectedProxy>()
            .map(|p| p.0.clone());
        let url_len: usize = uri_pieces(&url).iter().map(|p| p.len()).sum();
        // Room for the elapsed time measured at the end of the body, guessed from the time
        // so far (at least 5 bytes, 34 s); a longer time grows the buffer.
        let elapsed_width = varint_len(nanos(started.elapsed()).saturating_mul(2).max(1 << 30));
        let tail = varint_len(url_len as u64)
            + varint_len(u64::from(attempts))
            + elapsed_width
            + url_len
            + header_block_len(&parts.headers);
        if u32::try_from(tail).is_err() {
            return Err(headers_too_large(&url));
        }
        let prepared = Prepared {
            parts,
            url,
            attempts,
            proxy,
            started,
            elapsed_width,
            tail,
        };
        Ok((prepared, limit))
    }

    /// The [`Fetched`], from the body read into `buf` (with room for the tail after it).
    fn finish(self, mut buf: Vec<u8>) -> Result<Fetched, Error> {
        let body_len = buf.len();
        let elapsed = nanos(self.started.elapsed());
        buf.reserve_exact(self.tail + varint_len(elapsed).saturating_sub(self.elapsed_width));
        let url_pieces = uri_pieces(&self.url);
        let url_len: usize = url_pieces.iter().map(|p| p.len()).sum();
        put_varint(&mut buf, url_len as u64);
        put_varint(&mut buf, u64::from(self.attempts));
        put_varint_padded(&mut buf, elapsed, self.elapsed_width);
        for piece in url_pieces {
            buf.extend_from_slice(piece.as_bytes());
        }
        write_header_block(&mut buf, &self.parts.headers);
        let tail_len =
            u32::try_from(buf.len() - body_len).map_err(|_| headers_too_large(&self.url))?;
        Ok(Fetched {
            // Exact already unless the body outgrew its size hint; then this shrinks once.
            buf: buf.into_boxed_slice(),
            lazy: OnceLock::new(),
            proxy: self.proxy,
            tail_len,
            status: self.parts.status,
            version: self.parts.version,
        })
    }
}

fn headers_too_large(url: &Uri) -> Error {
    Error::new(ErrorKind::Io)
        .with_message("response headers and URL too large to buffer (over 4 GiB)")
        .with_url(url)
}

impl Fetched {
    /// Buffers `resp` (up to its body limit), copying headers and body to exact size.
    ///
    /// `request_url` is the final URL when the response does not carry [`FinalUrl`];
    /// `started` is when the request was sent.
    pub async fn from_response<B>(
        resp: Response<B>,
        request_url: &Uri,
        started: Instant,
    ) -> Result<Fetched, Error>
    where
        B: http_body::Body + Send,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = resp.into_parts();
        let (prepared, limit) = Prepared::new(parts, request_url, started)?;
        let buf = CollectInto::new(body, limit, prepared.tail)
            .await
            .map_err(|e| with_url(e, Some(&prepared.url)))?;
        prepared.finish(buf)
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The HTTP version the response came over.
    pub fn version(&self) -> Version {
        self.version
    }
    /// The response headers, as a [`HeaderMap`] built on the first call (then kept).
    ///
    /// To read a few headers, [`header`](Fetched::header) and
    /// [`header_str`](Fetched::header_str) avoid building the map.
    pub fn headers(&self) -> &HeaderMap {
        self.lazy()
            .headers
            .get_or_init(|| header_map(self.header_block()))
    }
    /// The first value of header `name` (case-insensitive), read in place.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
    /// let resp = http::Response::builder()
    ///     .header("content-type", "text/plain")
    ///     .header("x-id", "7")
    ///     .body(fastreq::ResponseBody::from("hi"))
    ///     .unwrap();
    /// let uri = "http://a.test/".parse().unwrap();
    /// let f = fastreq::Fetched::from_response(resp, &uri, std::time::Instant::now()).await?;
    /// assert_eq!(f.header("Content-Type"), Some(&b"text/plain"[..]));
    /// assert_eq!(f.header_str("X-ID"), Some("7"));
    /// assert_eq!(f.header("etag"), None);
    /// # Ok(()) }
    /// ```
    pub fn header(&self, name: impl AsRef<str>) -> Option<&[u8]> {
        let name = name.as_ref();
        match Known::from_name(name) {
            // Known names are always stored as their code.
            Some(known) => self
                .entries()
                .find(|e| matches!(e.name, EntryName::Known(k) if k == known)),
            None => self
                .entries()
                .find(|e| e.name.as_bytes().eq_ignore_ascii_case(name.as_bytes())),
        }
        .map(|e| e.value)
    }
    /// The first value of header `name` (case-insensitive) as text, if it is UTF-8.
    pub fn header_str(&self, name: impl AsRef<str>) -> Option<&str> {
        std::str::from_utf8(self.header(name)?).ok()
    }
    /// The body.
    pub fn body(&self) -> &[u8] {
        self.buf.get(..self.body_len()).unwrap_or_default()
    }
    /// Takes the body (without copying it).
    pub fn into_body(self) -> Bytes {
        let len = self.body_len();
        let mut buf = Vec::from(self.buf);
        buf.truncate(len);
        Bytes::from(buf)
    }
    /// The body as text: charset from `Content-Type`, else UTF-8, invalid sequences replaced.
    pub fn text(&self) -> Cow<'_, str> {
        let encoding = charset_of(self.header(CONTENT_TYPE)).unwrap_or(encoding_rs::UTF_8);
        encoding.decode(self.body()).0
    }
    /// The body parsed as JSON.
    #[cfg(feature = "json")]
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(self.body()).map_err(|e| {
            Error::new(ErrorKind::Decode)
                .with_message(format!("invalid JSON body: {e}"))
                .with_url(self.url_str())
                .with_source(e)
        })
    }
    /// The URL the response finally came from (parsed on the first call, then kept).
    pub fn final_url(&self) -> &Uri {
        self.lazy().url.get_or_init(|| {
            // It was a valid `Uri` when stored; `/` only if the buffer were damaged.
            Uri::try_from(self.url_bytes()).unwrap_or_default()
        })
    }
    /// Time from sending the request to the end of the body.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.tail().elapsed_nanos)
    }
    /// Attempts made (1 when not retried).
    pub fn attempts(&self) -> u32 {
        self.tail().attempts
    }
    /// The proxy the response came through, when a proxy layer chose one
    /// ([`SelectedProxy`](crate::proxy::SelectedProxy)). Its password is never displayed.
    pub fn proxy(&self) -> Option<&crate::proxy::Proxy> {
        self.proxy.as_ref()
    }

    fn lazy(&self) -> &Lazy {
        self.lazy.get_or_init(Box::default)
    }
    fn body_len(&self) -> usize {
        self.buf.len().saturating_sub(self.tail_len as usize)
    }
    /// The tail decoded; empty parts if it were damaged.
    fn tail(&self) -> Tail<'_> {
        let tail = self.buf.get(self.body_len()..).unwrap_or_default();
        let decoded = (|| {
            let (url_len, rest) = get_len(tail)?;
            let (attempts, rest) = get_varint(rest)?;
            let (elapsed_nanos, rest) = get_varint(rest)?;
            let (url, header_block) = rest.split_at_checked(url_len)?;
            Some(Tail {
                url,
                attempts: u32::try_from(attempts).ok()?,
                elapsed_nanos,
                header_block,
            })
        })();
        decoded.unwrap_or(Tail {
            url: &[],
            attempts: 1,
            elapsed_nanos: 0,
            header_block: &[],
        })
    }
    fn url_bytes(&self) -> &[u8] {
        self.tail().url
    }
    fn url_str(&self) -> &str {
        std::str::from_utf8(self.url_bytes()).unwrap_or_default()
    }
    fn header_block(&self) -> &[u8] {
        self.tail().header_block
    }
    fn entries(&self) -> Entries<'_> {
        Entries {
            rest: self.header_block(),
        }
    }
}

impl Clone for Fetched {
    /// Copies the buffer; the header map and parsed URL are built again on demand.
    fn clone(&self) -> Self {
        Fetched {
            buf: self.buf.clone(),
            lazy: OnceLock::new(),
            proxy: self.proxy.clone(),
            tail_len: self.tail_len,
            status: self.status,
            version: self.version,
        }
    }
}

impl fmt::Debug for Fetched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Headers<'a>(&'a Fetched);
        impl fmt::Debug for Headers<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.entries().map(|e| {
                        (
                            String::from_utf8_lossy(e.name.as_bytes()),
                            ValueDebug(e.value, e.sensitive),
                        )
                    }))
                    .finish()
            }
        }
        f.debug_struct("Fetched")
            .field("status", &self.status)
            .field("final_url", &crate::redact_url(self.url_str()))
            .field("headers", &Headers(self))
            .field("body_len", &self.body_len())
            .field("elapsed", &self.elapsed())
            .field("attempts", &self.attempts())
            .field("proxy", &self.proxy)
            .finish()
    }
}

/// A header value shown like [`HeaderValue`]'s `Debug`: `Sensitive` for sensitive values.
struct ValueDebug<'a>(&'a [u8], bool);

impl fmt::Debug for ValueDebug<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        if self.1 {
            return f.write_str("Sensitive");
        }
        f.write_char('"')?;
        for &b in self.0 {
            match b {
                b'"' => f.write_str("\\\"")?,
                b'\t' | b' '..=b'~' => f.write_char(char::from(b))?,
                _ => write!(f, "\\x{b:x}")?,
            }
        }
        f.write_char('"')
    }
}

/// `d` in nanoseconds, saturating (at 584 years).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The pieces of `uri`'s `Display` form (scheme, `://`, authority, path, `?`, query),
/// written without formatting.
fn uri_pieces(uri: &Uri) -> [&str; 6] {
    let (scheme, sep) = match uri.scheme_str() {
        Some(s) => (s, "://"),
        None => ("", ""),
    };
    let authority = uri.authority().map_or("", |a| a.as_str());
    let (mark, query) = match uri.query() {
        Some(q) => ("?", q),
        None => ("", ""),
    };
    [scheme, sep, authority, uri.path(), mark, query]
}

// The header block of a `Fetched`: per value, in the header map's order,
//   [code] ([varint name length] [name])? ([value index] | [varint value length] [value])
// The code's low 6 bits are 0 for a name written out after it, else 1 + the index of a
// `Known` name; bit 6 says the value is the `KnownValue` of the index that follows; bit 7 is
// the value's `is_sensitive` flag.

/// The code bit for a sensitive value.
const SENSITIVE: u8 = 0x80;
/// The code bit for a value stored as a [`KnownValue`] index.
const VALUE_CODED: u8 = 0x40;
/// The code bits of the name.
const NAME_BITS: u8 = 0x3f;
/// The name code of a name written out after it.
const CUSTOM: u8 = 0;

macro_rules! known_headers {
    ($($konst:ident => $name:literal,)+) => {
        /// Header names stored as a code in a [`Fetched`] header block.
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum Known {
            $($konst,)+
        }

        impl Known {
            /// Every known name, in code order.
            const ALL: &'static [Known] = &[$(Known::$konst,)+];

            /// The known name equal to `name` (lower case, as [`HeaderName::as_str`] gives).
            fn from_name(name: &str) -> Option<Known> {
                match name {
                    $($name => Some(Known::$konst),)+
                    _ => None,
                }
            }

            fn as_str(self) -> &'static str {
                match self {
                    $(Known::$konst => $name,)+
                }
            }

            fn header_name(self) -> HeaderName {
                match self {
                    $(Known::$konst => http::header::$konst,)+
                }
            }
        }
    };
}

known_headers! {
    CONTENT_TYPE => "content-type",
    CONTENT_LENGTH => "content-length",
    DATE => "date",
    SERVER => "server",
    CACHE_CONTROL => "cache-control",
    ETAG => "etag",
    LAST_MODIFIED => "last-modified",
    LOCATION => "location",
    SET_COOKIE => "set-cookie",
    VARY => "vary",
    CONTENT_ENCODING => "content-encoding",
    TRANSFER_ENCODING => "transfer-encoding",
    CONNECTION => "connection",
    EXPIRES => "expires",
    AGE => "age",
    ACCEPT_RANGES => "accept-ranges",
    ACCESS_CONTROL_ALLOW_CREDENTIALS => "access-control-allow-credentials",
    ACCESS_CONTROL_ALLOW_HEADERS => "access-control-allow-headers",
    ACCESS_CONTROL_ALLOW_METHODS => "access-control-allow-methods",
    ACCESS_CONTROL_ALLOW_ORIGIN => "access-control-allow-origin",
    ACCESS_CONTROL_EXPOSE_HEADERS => "access-control-expose-headers",
    ACCESS_CONTROL_MAX_AGE => "access-control-max-age",
    X_CONTENT_TYPE_OPTIONS => "x-content-type-options",
    STRICT_TRANSPORT_SECURITY => "strict-transport-security",
    X_FRAME_OPTIONS => "x-frame-options",
    X_XSS_PROTECTION => "x-xss-protection",
    X_DNS_PREFETCH_CONTROL => "x-dns-prefetch-control",
    CONTENT_SECURITY_POLICY => "content-security-policy",
    CONTENT_SECURITY_POLICY_REPORT_ONLY => "content-security-policy-report-only",
    REFERRER_POLICY => "referrer-policy",
    CONTENT_DISPOSITION => "content-disposition",
    CONTENT_LANGUAGE => "content-language",
    CONTENT_LOCATION => "content-location",
    CONTENT_RANGE => "content-range",
    RETRY_AFTER => "retry-after",
    WWW_AUTHENTICATE => "www-authenticate",
    PROXY_AUTHENTICATE => "proxy-authenticate",
    ALT_SVC => "alt-svc",
    ALLOW => "allow",
    LINK => "link",
    PRAGMA => "pragma",
    VIA => "via",
    WARNING => "warning",
    UPGRADE => "upgrade",
    TRAILER => "trailer",
    REFRESH => "refresh",
    PUBLIC_KEY_PINS => "public-key-pins",
    PUBLIC_KEY_PINS_REPORT_ONLY => "public-key-pins-report-only",
    SEC_WEBSOCKET_ACCEPT => "sec-websocket-accept",
    SEC_WEBSOCKET_EXTENSIONS => "sec-websocket-extensions",
    SEC_WEBSOCKET_PROTOCOL => "sec-websocket-protocol",
    SEC_WEBSOCKET_VERSION => "sec-websocket-version",
    AUTHORIZATION => "authorization",
    PROXY_AUTHORIZATION => "proxy-authorization",
    COOKIE => "cookie",
    USER_AGENT => "user-agent",
    ACCEPT => "accept",
    ACCEPT_ENCODING => "accept-encoding",
    ORIGIN => "origin",
    REFERER => "referer",
}

// Name codes 1..=63.
const _: () = assert!(Known::ALL.len() <= NAME_BITS as usize);

impl Known {
    fn code(self) -> u8 {
        self as u8 + 1
    }

    fn from_code(code: u8) -> Option<Known> {
        Known::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }
}

macro_rules! known_values {
    ($($variant:ident => $value:literal,)+) => {
        /// Common header values, stored as a one-byte index in a [`Fetched`] header block.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum KnownValue {
            $($variant,)+
        }

        impl KnownValue {
            /// Every known value, in index order.
            const ALL: &'static [KnownValue] = &[$(KnownValue::$variant,)+];

            /// The known value equal to `value` (exactly: case and spaces count).
            fn from_bytes(value: &[u8]) -> Option<KnownValue> {
                match value {
                    $($value => Some(KnownValue::$variant),)+
                    _ => None,
                }
            }

            fn as_bytes(self) -> &'static [u8] {
                match self {
                    $(KnownValue::$variant => $value,)+
                }
            }
        }
    };
}

known_values! {
    Json => b"application/json",
    JsonUtf8 => b"application/json; charset=utf-8",
    JsonUtf8Upper => b"application/json; charset=UTF-8",
    JsonUtf8Tight => b"application/json;charset=utf-8",
    JsonUtf8TightUpper => b"application/json;charset=UTF-8",
    Html => b"text/html",
    HtmlUtf8 => b"text/html; charset=utf-8",
    HtmlUtf8Upper => b"text/html; charset=UTF-8",
    HtmlUtf8Tight => b"text/html;charset=utf-8",
    HtmlUtf8TightUpper => b"text/html;charset=UTF-8",
    Plain => b"text/plain",
    PlainUtf8 => b"text/plain; charset=utf-8",
    PlainUtf8Upper => b"text/plain; charset=UTF-8",
    PlainUtf8Tight => b"text/plain;charset=utf-8",
    PlainUtf8TightUpper => b"text/plain;charset=UTF-8",
    Css => b"text/css",
    TextJavascript => b"text/javascript",
    Javascript => b"application/javascript",
    Xml => b"application/xml",
    TextXml => b"text/xml",
    OctetStream => b"application/octet-stream",
    FormUrlencoded => b"application/x-www-form-urlencoded",
    Png => b"image/png",
    Jpeg => b"image/jpeg",
    Gif => b"image/gif",
    Webp => b"image/webp",
    Svg => b"image/svg+xml",
    Icon => b"image/x-icon",
    Gzip => b"gzip",
    Br => b"br",
    Deflate => b"deflate",
    Zstd => b"zstd",
    Identity => b"identity",
    Chunked => b"chunked",
    KeepAlive => b"keep-alive",
    KeepAliveTitle => b"Keep-Alive",
    Close => b"close",
    RangesBytes => b"bytes",
    RangesNone => b"none",
    AcceptEncoding => b"Accept-Encoding",
    AcceptEncodingLower => b"accept-encoding",
    Origin => b"Origin",
    AcceptEncodingOrigin => b"Accept-Encoding, Origin",
    OriginAcceptEncoding => b"Origin, Accept-Encoding",
    NoCache => b"no-cache",
    NoStore => b"no-store",
    NoCacheNoStore => b"no-cache, no-store, must-revalidate",
    Private => b"private",
    Public => b"public",
    MaxAge0 => b"max-age=0",
    MaxAge0Private => b"max-age=0, private, must-revalidate",
    MustRevalidate => b"must-revalidate",
    Nosniff => b"nosniff",
    Deny => b"DENY",
    SameOriginFrame => b"SAMEORIGIN",
    XssBlock => b"1; mode=block",
    Zero => b"0",
    One => b"1",
    HstsYear => b"max-age=31536000",
    HstsYearSub => b"max-age=31536000; includeSubDomains",
    HstsPreload => b"max-age=63072000; includeSubDomains; preload",
    StrictOrigin => b"strict-origin-when-cross-origin",
    NoReferrer => b"no-referrer",
    SameOrigin => b"same-origin",
    Star => b"*",
    True => b"true",
    Nginx => b"nginx",
    Cloudflare => b"cloudflare",
    Apache => b"Apache",
    AmazonS3 => b"AmazonS3",
    Hit => b"HIT",
    Miss => b"MISS",
}

// Indexes 0..=255.
const _: () = assert!(KnownValue::ALL.len() <= 256);

impl KnownValue {
    fn index(self) -> u8 {
        self as u8
    }

    fn from_index(index: u8) -> Option<KnownValue> {
        KnownValue::ALL.get(usize::from(index)).copied()
    }
}

fn varint_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn put_varint(buf: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        buf.push((n & 0x7f) as u8 | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

/// Writes `n` in `width` bytes (a non-minimal varint: the low groups carry continuation
/// bits even when zero), or in more when it does not fit.
fn put_varint_padded(buf: &mut Vec<u8>, mut n: u64, width: usize) {
    for _ in 1..width {
        buf.push((n & 0x7f) as u8 | 0x80);
        n >>= 7;
    }
    put_varint(buf, n);
}

/// Reads a varint; `None` if `buf` ends inside it or it does not fit a `u64`.
fn get_varint(buf: &[u8]) -> Option<(u64, &[u8])> {
    let mut n = 0u64;
    for (i, &b) in buf.iter().enumerate() {
        let shift = 7 * i as u32;
        if shift >= u64::BITS {
            return None;
        }
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some((n, buf.get(i + 1..)?));
        }
    }
    None
}

/// Reads a varint length.
fn get_len(buf: &[u8]) -> Option<(usize, &[u8])> {
    let (n, rest) = get_varint(buf)?;
    Some((usize::try_from(n).ok()?, rest))
}

/// The size of the header block for `headers`.
fn header_block_len(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| {
            let name = name.as_str();
            let name_len = match Known::from_name(name) {
                Some(_) => 0,
                None => varint_len(name.len() as u64) + name.len(),
            };
            let value_len = match KnownValue::from_bytes(value.as_bytes()) {
                Some(_) => 1,
                None => varint_len(value.len() as u64) + value.len(),
            };
            1 + name_len + value_len
        })
        .sum()
}

/// Appends the header block for `headers` to `buf`.
fn write_header_block(buf: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        let name = name.as_str();
        let known_value = KnownValue::from_bytes(value.as_bytes());
        let mut code = match Known::from_name(name) {
            Some(known) => known.code(),
            None => CUSTOM,
        };
        if value.is_sensitive() {
            code |= SENSITIVE;
        }
        if known_value.is_some() {
            code |= VALUE_CODED;
        }
        buf.push(code);
        if code & NAME_BITS == CUSTOM {
            put_varint(buf, name.len() as u64);
            buf.extend_from_slice(name.as_bytes());
        }
        match known_value {
            Some(v) => buf.push(v.index()),
            None => {
                put_varint(buf, value.len() as u64);
                buf.extend_from_slice(value.as_bytes());
            }
        }
    }
}

/// A header name in a header block.
#[derive(Clone, Copy)]
enum EntryName<'a> {
    Known(Known),
    Custom(&'a [u8]),
}

impl<'a> EntryName<'a> {
    fn as_bytes(self) -> &'a [u8] {
        match self {
            EntryName::Known(k) => k.as_str().as_bytes(),
            EntryName::Custom(name) => name,
        }
    }
}

/// One value of a header block.
struct Entry<'a> {
    name: EntryName<'a>,
    value: &'a [u8],
    sensitive: bool,
}

/// The values of a header block, in order; stops at the first malformed entry.
struct Entries<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        match decode_entry(self.rest) {
            Some((entry, rest)) => {
                self.rest = rest;
                Some(entry)
            }
            None => {
                self.rest = &[];
                None
            }
        }
    }
}

fn decode_entry(buf: &[u8]) -> Option<(Entry<'_>, &[u8])> {
    let (&code, rest) = buf.split_first()?;
    let (name, rest) = match code & NAME_BITS {
        CUSTOM => {
            let (len, rest) = get_len(rest)?;
            let (name, rest) = rest.split_at_checked(len)?;
            (EntryName::Custom(name), rest)
        }
        known => (EntryName::Known(Known::from_code(known)?), rest),
    };
    let (value, rest) = if code & VALUE_CODED != 0 {
        let (&index, rest) = rest.split_first()?;
        (KnownValue::from_index(index)?.as_bytes(), rest)
    } else {
        let (len, rest) = get_len(rest)?;
        rest.split_at_checked(len)?
    };
    let entry = Entry {
        name,
        value,
        sensitive: code & SENSITIVE != 0,
    };
    Some((entry, rest))
}

/// Builds a header map from a header block (skipping anything malformed).
fn header_map(block: &[u8]) -> HeaderMap {
    let entries = Entries { rest: block };
    let mut map = HeaderMap::with_capacity(entries.count());
    for entry in (Entries { rest: block }) {
        let name = match entry.name {
            EntryName::Known(k) => k.header_name(),
            EntryName::Custom(name) => match HeaderName::from_bytes(name) {
                Ok(name) => name,
                Err(_) => continue,
            },
        };
        let Ok(mut value) = HeaderValue::from_bytes(entry.value) else {
            continue;
        };
        value.set_sensitive(entry.sensitive);
        map.append(name, value);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn limit_by_extension_and_hint() {
        let mut resp = Response::new(ResponseBody::from(vec![1u8; 10]));
        resp.extensions_mut().insert(BodyLimit(9));
        resp.extensions_mut()
            .insert(FinalUrl("http://h.test/?token=x".parse().unwrap()));
        let err = resp.bytes().await.unwrap_err();
        assert!(err.is_body_too_large());
        assert_eq!(err.url(), Some("http://h.test/?token=REDACTED"));

        let resp = Response::new(ResponseBody::from(vec![1u8; 10]));
        assert_eq!(resp.bytes_limited(10).await.unwrap().len(), 10);
    }

    #[tokio::test]
    async fn streamed_body_is_capped_without_hint() {
        let chunks =
            (0..100).map(|_| Ok::<_, std::io::Error>(Frame::data(Bytes::from(vec![0u8; 100]))));
        let body = http_body_util::StreamBody::new(futures_util::stream::iter(chunks));
        let resp = Response::new(ResponseBody::new(body));
        let err = resp.bytes_limited(5_000).await.unwrap_err();
        assert!(err.is_body_too_large(), "{err}");
    }

    #[tokio::test]
    async fn text_charset() {
        let resp = Response::builder()
            .header("content-type", "text/html; Charset=\"windows-1252\"")
            .body(ResponseBody::from(&b"\x93hi\x94"[..]))
            .unwrap();
        assert_eq!(resp.text().await.unwrap(), "\u{201c}hi\u{201d}");
        let resp = Response::new(ResponseBody::from(&b"ok \xff"[..]));
        assert_eq!(resp.text().await.unwrap(), "ok \u{fffd}");
    }

    #[cfg(feature = "json")]
    #[tokio::test]
    async fn json_helpers() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Item {
            id: u32,
        }
        let resp = Response::new(ResponseBody::from(r#"{"id":7}"#));
        assert_eq!(resp.json::<Item>().await.unwrap(), Item { id: 7 });
        let mut resp = Response::new(ResponseBody::from("{oops"));
        resp.extensions_mut()
            .insert(FinalUrl("http://h.test/?key=k".parse().unwrap()));
        let err = resp.json::<Item>().await.unwrap_err();
        assert!(err.is_decode());
        assert_eq!(err.url(), Some("http://h.test/?key=REDACTED"));

        let uri: Uri = "http://h.test/".parse().unwrap();
        let f = Fetched::from_response(
            Response::new(ResponseBody::from(r#"{"id":1}"#)),
            &uri,
            Instant::now(),
        )
        .await
        .unwrap();
        assert_eq!(f.json::<Item>().unwrap(), Item { id: 1 });
        assert!(f.json::<Vec<u8>>().unwrap_err().is_decode());
    }

    #[tokio::test]
    async fn fetched_copies_exactly() {
        let backing = Bytes::from(vec![b'x'; 8192]);
        let body = backing.slice(0..200);
        let resp = Response::builder()
            .header(
                "x-custom",
                HeaderValue::from_maybe_shared(backing.slice(200..210)).unwrap(),
            )
            .body(ResponseBody::from(body))
            .unwrap();
        let uri: Uri = "http://h.test/".parse().unwrap();
        let f = Fetched::from_response(resp, &uri, Instant::now())
            .await
            .unwrap();
        assert_eq!(f.body().len(), 200);
        assert_eq!(f.final_url(), &uri);
        assert_eq!(f.attempts(), 1);
        // The only other owner of the 8 KiB buffer is `backing`: the copies do not share it.
        assert!(backing.is_unique());
    }

    async fn fetched_of(resp: Response<ResponseBody>, url: &str) -> Fetched {
        let uri: Uri = url.parse().unwrap();
        Fetched::from_response(resp, &uri, Instant::now())
            .await
            .unwrap()
    }

    /// A header map with many shapes: known and custom names, repeated names, empty, long,
    /// sensitive and non-UTF-8 values.
    fn many_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.append(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.append("content-length", HeaderValue::from_static("200"));
        h.append(
            "date",
            HeaderValue::from_static("Tue, 01 Jul 2025 10:00:00 GMT"),
        );
        for v in ["a=1", "b=2; Path=/", "c=3"] {
            h.append("set-cookie", HeaderValue::from_static(v));
        }
        h.append("x-custom", HeaderValue::from_static("one"));
        h.append("x-custom", HeaderValue::from_static("two"));
        h.append("x-empty", HeaderValue::from_static(""));
        h.append(
            "x-long",
            HeaderValue::from_str(&"v".repeat(20_000)).unwrap(),
        );
        let mut secret = HeaderValue::from_static("token-123");
        secret.set_sensitive(true);
        h.append("x-secret", secret);
        let mut auth = HeaderValue::from_static("Basic abc");
        auth.set_sensitive(true);
        h.append("www-authenticate", auth);
        h.append("x-latin1", HeaderValue::from_bytes(b"caf\xe9\t!").unwrap());
        let long_name = format!("x-{}", "n".repeat(300));
        h.append(
            HeaderName::from_bytes(long_name.as_bytes()).unwrap(),
            HeaderValue::from_static("long name"),
        );
        h
    }

    fn response_with(headers: HeaderMap, body: impl Into<ResponseBody>) -> Response<ResponseBody> {
        let mut resp = Response::new(body.into());
        *resp.headers_mut() = headers;
        resp
    }

    #[tokio::test]
    async fn header_block_round_trip() {
        let original = many_headers();
        let f = fetched_of(response_with(original.clone(), "body"), "http://h.test/x").await;
        // Same names, values and order; the sensitive flags are kept.
        let map = f.headers();
        let a: Vec<_> = original.iter().collect();
        let b: Vec<_> = map.iter().collect();
        assert_eq!(a, b);
        for ((_, x), (_, y)) in a.iter().zip(&b) {
            assert_eq!(x.is_sensitive(), y.is_sensitive());
        }
        assert!(map["x-secret"].is_sensitive());
        assert!(!map["x-custom"].is_sensitive());
        assert_eq!(map.get_all("set-cookie").iter().count(), 3);
        // Built once, then kept.
        assert!(std::ptr::eq(f.headers(), map));

        // Read in place, case-insensitively, first value.
        assert_eq!(f.header("Content-Type"), Some(&b"application/json"[..]));
        assert_eq!(f.header(CONTENT_TYPE), Some(&b"application/json"[..]));
        assert_eq!(f.header("SET-COOKIE"), Some(&b"a=1"[..]));
        assert_eq!(f.header("x-Custom"), Some(&b"one"[..]));
        assert_eq!(f.header("x-empty"), Some(&b""[..]));
        assert_eq!(f.header("x-long").map(<[u8]>::len), Some(20_000));
        assert_eq!(f.header("x-latin1"), Some(&b"caf\xe9\t!"[..]));
        assert_eq!(f.header_str("x-latin1"), None);
        assert_eq!(f.header_str("X-SECRET"), Some("token-123"));
        assert_eq!(f.header("x-missing"), None);
        assert_eq!(f.header("content"), None);
        assert_eq!(
            f.header(format!("x-{}", "N".repeat(300))),
            Some(&b"long name"[..])
        );
        assert_eq!(f.body(), b"body");
    }

    #[tokio::test]
    async fn every_known_name_round_trips() {
        let mut h = HeaderMap::new();
        for (i, k) in Known::ALL.iter().enumerate() {
            assert_eq!(k.header_name().as_str(), k.as_str());
            assert_eq!(Known::from_name(k.as_str()), Some(*k));
            assert_eq!(Known::from_code(k.code()), Some(*k));
            h.append(
                k.header_name(),
                HeaderValue::from_str(&format!("v{i}")).unwrap(),
            );
        }
        assert_eq!(Known::from_code(0), None);
        assert_eq!(Known::from_code(Known::ALL.len() as u8 + 1), None);
        // One code byte, one length byte and the value per known header.
        let expected: usize = h.values().map(|v| 2 + v.len()).sum();
        assert_eq!(header_block_len(&h), expected);
        let f = fetched_of(response_with(h.clone(), ""), "http://h.test/").await;
        assert_eq!(f.headers(), &h);
        for (i, k) in Known::ALL.iter().enumerate() {
            assert_eq!(f.header(k.as_str()), Some(format!("v{i}").as_bytes()));
        }
    }

    #[tokio::test]
    async fn every_known_value_round_trips() {
        let mut h = HeaderMap::new();
        for (i, v) in KnownValue::ALL.iter().enumerate() {
            assert_eq!(KnownValue::from_bytes(v.as_bytes()), Some(*v));
            assert_eq!(KnownValue::from_index(v.index()), Some(*v));
            let mut value = HeaderValue::from_bytes(v.as_bytes()).unwrap();
            // Coded values keep the sensitive flag too.
            value.set_sensitive(i % 3 == 0);
            // Under known and custom names.
            h.append("x-value", value.clone());
            h.append(CONTENT_TYPE, value);
        }
        assert_eq!(KnownValue::from_index(KnownValue::ALL.len() as u8), None);
        assert_eq!(KnownValue::from_bytes(b"Application/JSON"), None);
        // Code and index: two bytes a value, plus the custom name once per value.
        let custom = 1 + "x-value".len();
        assert_eq!(
            header_block_len(&h),
            h.len() * 2 + KnownValue::ALL.len() * custom
        );
        let f = fetched_of(response_with(h.clone(), ""), "http://h.test/").await;
        assert_eq!(f.headers(), &h);
        let sensitive = |m: &HeaderMap| {
            m.values()
                .map(HeaderValue::is_sensitive)
                .collect::<Vec<_>>()
        };
        assert_eq!(sensitive(f.headers()), sensitive(&h));
        assert_eq!(f.header("X-Value"), Some(KnownValue::ALL[0].as_bytes()));
    }

    #[test]
    fn varints() {
        for n in [0, 1, 127, 128, 300, 16_383, 16_384, 20_000, u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, n);
            assert_eq!(buf.len(), varint_len(n), "{n}");
            buf.push(42);
            assert_eq!(get_varint(&buf), Some((n, &[42u8][..])), "{n}");
            assert_eq!(get_varint(&buf[..buf.len() - 2]), None, "{n} truncated");
            // Padded to a width, or longer when it does not fit.
            for width in 1..=10 {
                let mut buf = Vec::new();
                put_varint_padded(&mut buf, n, width);
                assert_eq!(buf.len(), width.max(varint_len(n)), "{n} in {width}");
                assert_eq!(get_varint(&buf), Some((n, &[][..])), "{n} in {width}");
            }
        }
        assert_eq!(get_varint(&[0xff; 11]), None);
        assert_eq!(get_len(&[0x80, 0x80, 0]), Some((0, &[][..])));
    }

    #[test]
    fn damaged_header_block_is_cut_short_not_a_panic() {
        let mut h = HeaderMap::new();
        h.append("x-a", HeaderValue::from_static("1"));
        h.append("x-b", HeaderValue::from_static("2"));
        let mut block = Vec::new();
        write_header_block(&mut block, &h);
        assert_eq!(block.len(), header_block_len(&h));
        for cut in 0..block.len() {
            let map = header_map(&block[..cut]);
            assert!(map.len() <= 1, "{cut}");
        }
        assert_eq!(header_map(&[0x7f, 0, 0]).len(), 0);
        assert_eq!(header_map(&[CUSTOM, 2, b'\n', b'x', 0]).len(), 0);
        let coded = Known::DATE.code() | VALUE_CODED;
        assert_eq!(header_map(&[coded, 255]).len(), 0);
        assert_eq!(header_map(&[coded]).len(), 0);
        assert_eq!(header_map(&[coded, 0]).len(), 1);
        assert_eq!(header_map(&block), h);
    }

    #[test]
    fn uri_pieces_match_display() {
        for s in [
            "http://127.0.0.1:8080/item/123456",
            "https://user:pw@h.test/a/b?x=1&y=%20#frag",
            "http://h.test",
            "http://h.test/?",
            "/relative?q",
            "*",
            "h.test:443",
        ] {
            let uri: Uri = s.parse().unwrap();
            let joined = uri_pieces(&uri).concat();
            assert_eq!(joined, uri.to_string(), "{s}");
            assert_eq!(joined.parse::<Uri>().unwrap(), uri, "{s}");
        }
    }

    #[tokio::test]
    async fn final_url_recorded_or_requested() {
        let f = fetched_of(
            Response::new(ResponseBody::from("x")),
            "http://h.test/a?b=c",
        )
        .await;
        assert_eq!(
            f.final_url(),
            &"http://h.test/a?b=c".parse::<Uri>().unwrap()
        );
        assert!(std::ptr::eq(f.final_url(), f.final_url()));

        let mut resp = Response::new(ResponseBody::from("x"));
        resp.extensions_mut()
            .insert(FinalUrl("https://other.test:8443/landing".parse().unwrap()));
        let f = fetched_of(resp, "http://h.test/a").await;
        assert_eq!(f.final_url().to_string(), "https://other.test:8443/landing");
        assert_eq!(f.body(), b"x");
    }

    #[tokio::test]
    async fn attempts_and_long_urls() {
        let long = format!("http://h.test/{}", "p".repeat(20_000));
        let mut resp = response_with(many_headers(), "body");
        resp.extensions_mut().insert(Attempts(300));
        let f = fetched_of(resp, &long).await;
        assert_eq!(f.attempts(), 300);
        assert_eq!(f.final_url().to_string(), long);
        assert_eq!(f.header("x-custom"), Some(&b"one"[..]));
        assert_eq!(f.body(), b"body");
        assert_eq!(f.clone().attempts(), 300);
    }

    #[tokio::test]
    async fn elapsed_is_kept() {
        let uri: Uri = "http://h.test/".parse().unwrap();
        let now = Instant::now();
        for ago in [0, 1, 100, 100_000] {
            let started = now.checked_sub(Duration::from_secs(ago)).unwrap_or(now);
            let f = Fetched::from_response(Response::new(ResponseBody::from("x")), &uri, started)
                .await
                .unwrap();
            let elapsed = f.elapsed();
            assert!(elapsed >= now - started, "{ago}: {elapsed:?}");
            assert!(
                elapsed < now - started + Duration::from_secs(5),
                "{ago}: {elapsed:?}"
            );
            assert_eq!(f.body(), b"x");
            assert_eq!(f.final_url(), &uri);
            assert_eq!(f.clone().elapsed(), elapsed);
        }
    }

    #[tokio::test]
    async fn into_body_takes_the_body() {
        let mut h = HeaderMap::new();
        h.append("x-a", HeaderValue::from_static("1"));
        let f = fetched_of(response_with(h, vec![7u8; 1000]), "http://h.test/").await;
        let body = f.into_body();
        assert_eq!(body.len(), 1000);
        assert!(body.iter().all(|&b| b == 7));
        let f = fetched_of(Response::new(ResponseBody::empty()), "http://h.test/").await;
        assert_eq!(f.body(), b"");
        assert!(f.into_body().is_empty());
    }

    #[tokio::test]
    async fn text_uses_the_stored_charset() {
        let mut h = HeaderMap::new();
        h.append(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=\"windows-1252\""),
        );
        let f = fetched_of(response_with(h, &b"\x93hi\x94"[..]), "http://h.test/").await;
        assert_eq!(f.text(), "\u{201c}hi\u{201d}");
        let mut h = HeaderMap::new();
        h.append(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain;CHARSET = iso-8859-1"),
        );
        let f = fetched_of(response_with(h, &b"caf\xe9"[..]), "http://h.test/").await;
        assert_eq!(f.text(), "café");
        let f = fetched_of(
            Response::new(ResponseBody::from(&b"ok \xff"[..])),
            "http://h.test/",
        )
        .await;
        assert_eq!(f.text(), "ok \u{fffd}");
        assert_eq!(charset_of(Some(b"text/plain")), None);
        assert_eq!(charset_of(Some(b"text/plain; charset=nope")), None);
        assert_eq!(charset_of(None), None);
    }

    #[tokio::test]
    async fn debug_hides_sensitive_values_and_secrets_in_the_url() {
        let f = fetched_of(
            response_with(many_headers(), "body"),
            "http://h.test/?token=hunter2",
        )
        .await;
        let s = format!("{f:?}");
        assert!(s.contains(r#""x-secret": Sensitive"#), "{s}");
        assert!(s.contains(r#""www-authenticate": Sensitive"#), "{s}");
        assert!(!s.contains("token-123") && !s.contains("Basic abc"), "{s}");
        assert!(
            !s.contains("hunter2") && s.contains("token=REDACTED"),
            "{s}"
        );
        assert!(s.contains(r#""content-type": "application/json""#), "{s}");
        // Tab shown as is, other bytes escaped, as `HeaderValue`'s `Debug` does.
        assert!(s.contains("\"x-latin1\": \"caf\\xe9\t!\""), "{s}");
        assert!(s.contains("body_len: 4"), "{s}");
        // The same as the header map's own Debug, value for value.
        let mut h = HeaderMap::new();
        h.append("x-q", HeaderValue::from_bytes(b"a\"b\x80\xff\tc").unwrap());
        let f = fetched_of(response_with(h.clone(), ""), "http://h.test/").await;
        assert!(format!("{f:?}").contains(&format!("{h:?}")), "{f:?}");
    }

    #[tokio::test]
    async fn clone_is_independent_of_the_lazy_parts() {
        let f = fetched_of(response_with(many_headers(), "body"), "http://h.test/p").await;
        let _ = f.headers();
        let g = f.clone();
        assert_eq!(g.headers(), f.headers());
        assert!(!std::ptr::eq(g.headers(), f.headers()));
        assert_eq!(g.final_url(), f.final_url());
        assert_eq!(g.body(), f.body());
        assert_eq!((g.status(), g.version()), (f.status(), f.version()));
        assert_eq!((g.elapsed(), g.attempts()), (f.elapsed(), f.attempts()));
        drop(f);
        assert_eq!(g.header("x-custom"), Some(&b"one"[..]));
    }

    #[tokio::test]
    async fn one_exact_buffer() {
        let mut h = HeaderMap::new();
        h.append(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.append("content-length", HeaderValue::from_static("200"));
        h.append(
            "date",
            HeaderValue::from_static("Tue, 01 Jul 2025 10:00:00 GMT"),
        );
        let url = "http://127.0.0.1:40000/item/123456";
        let f = fetched_of(response_with(h, vec![b'x'; 200]), url).await;
        // Body, URL length and attempts (a byte each), elapsed time (5 bytes under 34 s),
        // URL, and the three headers: a known value in 2 bytes, the others at 2 bytes beyond
        // their values.
        assert_eq!(
            f.buf.len(),
            200 + 2 + 5 + url.len() + 2 + (2 + 3) + (2 + 29)
        );
        assert_eq!(f.tail_len as usize, f.buf.len() - 200);
        assert_eq!(f.url_str(), url);

        // A body without a size hint still ends in an exact buffer.
        let chunks =
            (0..10).map(|_| Ok::<_, std::io::Error>(Frame::data(Bytes::from(vec![1u8; 100]))));
        let body = http_body_util::StreamBody::new(futures_util::stream::iter(chunks));
        let f = fetched_of(Response::new(ResponseBody::new(body)), url).await;
        assert_eq!(f.body().len(), 1000);
        assert_eq!(f.buf.len(), 1000 + 2 + 5 + url.len());
    }

    #[tokio::test]
    async fn body_limit_still_applies() {
        let mut resp = Response::new(ResponseBody::from(vec![1u8; 10]));
        resp.extensions_mut().insert(BodyLimit(9));
        let uri: Uri = "http://h.test/?key=k".parse().unwrap();
        let err = Fetched::from_response(resp, &uri, Instant::now())
            .await
            .unwrap_err();
        assert!(err.is_body_too_large());
        assert_eq!(err.url(), Some("http://h.test/?key=REDACTED"));
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn fetched_is_small() {
        use std::mem::size_of;
        fn traits<T: Clone + Send + Sync + fmt::Debug + 'static>() {}
        traits::<Fetched>();
        // A `get_all` slot; a regression here costs N times over.
        assert!(size_of::<Fetched>() <= 48, "{}", size_of::<Fetched>());
        assert!(size_of::<Result<Fetched, Error>>() <= 48);
        // `get_all_with` collects these in place: same size and alignment.
        assert_eq!(
            size_of::<Option<Result<Fetched, Error>>>(),
            size_of::<Result<Fetched, Error>>()
        );
        assert_eq!(
            std::mem::align_of::<Option<Result<Fetched, Error>>>(),
            std::mem::align_of::<Result<Fetched, Error>>()
        );
        // ... and so the collect reuses the allocation.
        let slots: Vec<Option<Result<Fetched, Error>>> = (0..100).map(|_| None).collect();
        let at = slots.as_ptr() as usize;
        let results: Vec<Result<Fetched, Error>> = slots
            .into_iter()
            .map(|_| Err(Error::new(ErrorKind::Io)))
            .collect();
        assert_eq!(results.as_ptr() as usize, at);
    }

    #[test]
    fn boxed_bodies_keep_their_size_hint() {
        let body = ResponseBody::new(http_body_util::Full::new(Bytes::from_static(b"abc")));
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(3));
        assert!(!http_body::Body::is_end_stream(&body));
        let body = ResponseBody::new(http_body_util::Empty::<Bytes>::new());
        assert!(http_body::Body::is_end_stream(&body));
    }
}
