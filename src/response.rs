//! Responses: the [`ResponseBody`], the [`ResponseExt`] helpers and the buffered [`Fetched`].
//!
//! A response from fastreq is an [`http::Response<ResponseBody>`](http::Response). Read it
//! with the [`ResponseExt`] helpers, which all stop at a size cap: the response's
//! [`BodyLimit`] extension (set by the backend, default [`DEFAULT_BODY_LIMIT`], 64 MiB), or
//! the limit given explicitly. A larger body is an
//! [`ErrorKind::BodyTooLarge`] error.
//!
//! Buffered bodies and [`Fetched`] headers are copied to exact-size buffers: hyper hands out
//! slices of its connection read buffer, and keeping those for many small responses pins
//! whole buffers (measured: 4.3 GB for 1,000,000 responses of 200 bytes).
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
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Response, StatusCode, Uri, Version};
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;

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
            inner: BodyInner::Boxed(UnsyncBoxBody::new(
                body.map_frame(|f| f.map_data(Into::into))
                    .map_err(|e| Error::from_boxed(e.into())),
            )),
        }
    }

    pub(crate) fn hyper(body: hyper::body::Incoming) -> Self {
        ResponseBody {
            inner: BodyInner::Hyper(body),
        }
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
    let too_large = |n: u64| {
        Error::new(ErrorKind::BodyTooLarge).with_message(format!(
            "response body exceeds the limit of {limit} bytes (at least {n} bytes)"
        ))
    };
    let hint = body.size_hint();
    if hint.lower() > limit as u64 {
        return Err(too_large(hint.lower()));
    }
    let mut body = std::pin::pin!(body);
    // Reserve what the peer announced (bounded by the limit) so the common case is one copy.
    let mut buf: Vec<u8> = Vec::with_capacity(hint.exact().unwrap_or(hint.lower()) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::from_boxed(e.into()))?;
        if let Ok(mut data) = frame.into_data() {
            let n = data.remaining();
            if buf.len() + n > limit {
                return Err(too_large((buf.len() + n) as u64));
            }
            buf.reserve(n);
            while data.has_remaining() {
                let chunk = data.chunk();
                let len = chunk.len();
                buf.extend_from_slice(chunk);
                data.advance(len);
            }
        }
    }
    buf.shrink_to_fit();
    Ok(Bytes::from(buf))
}

fn charset_of(headers: &HeaderMap) -> Option<&'static encoding_rs::Encoding> {
    let ct = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    ct.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("charset") {
            encoding_rs::Encoding::for_label(v.trim().trim_matches('"').as_bytes())
        } else {
            None
        }
    })
}

/// Decodes `bytes` as text: charset from `Content-Type`, UTF-8 otherwise, invalid sequences
/// replaced by U+FFFD.
fn decode_text<'a>(headers: &HeaderMap, bytes: &'a [u8]) -> Cow<'a, str> {
    let encoding = charset_of(headers).unwrap_or(encoding_rs::UTF_8);
    let (text, _, _) = encoding.decode(bytes);
    text
}

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
        let encoding = charset_of(self.headers()).unwrap_or(encoding_rs::UTF_8);
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
/// Its body and header values are exact-size copies, so keeping many of them costs only
/// what they hold.
#[derive(Clone)]
pub struct Fetched {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
    final_url: Uri,
    elapsed: Duration,
    attempts: u32,
    proxy: Option<crate::proxy::Proxy>,
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
        let (mut parts, body) = resp.into_parts();
        let final_url = parts
            .extensions
            .remove::<FinalUrl>()
            .map_or_else(|| request_url.clone(), |u| u.0);
        let limit = parts
            .extensions
            .get::<BodyLimit>()
            .map_or(DEFAULT_BODY_LIMIT, |l| l.0);
        let attempts = parts.extensions.get::<Attempts>().map_or(1, |a| a.0);
        let proxy = parts
            .extensions
            .get::<crate::proxy::SelectedProxy>()
            .map(|p| p.0.clone());
        let body = collect_limited(body, limit)
            .await
            .map_err(|e| with_url(e, Some(&final_url)))?;
        Ok(Fetched {
            status: parts.status,
            version: parts.version,
            headers: copy_headers(&parts.headers),
            body,
            final_url,
            elapsed: started.elapsed(),
            attempts,
            proxy,
        })
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The HTTP version the response came over.
    pub fn version(&self) -> Version {
        self.version
    }
    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }
    /// Takes the body.
    pub fn into_body(self) -> Bytes {
        self.body
    }
    /// The body as text: charset from `Content-Type`, else UTF-8, invalid sequences replaced.
    pub fn text(&self) -> Cow<'_, str> {
        decode_text(&self.headers, &self.body)
    }
    /// The body parsed as JSON.
    #[cfg(feature = "json")]
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::new(ErrorKind::Decode)
                .with_message(format!("invalid JSON body: {e}"))
                .with_url(&self.final_url)
                .with_source(e)
        })
    }
    /// The URL the response finally came from.
    pub fn final_url(&self) -> &Uri {
        &self.final_url
    }
    /// Time from sending the request to the end of the body.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
    /// Attempts made (1 when not retried).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
    /// The proxy the response came through, when a proxy layer chose one
    /// ([`SelectedProxy`](crate::proxy::SelectedProxy)). Its password is never displayed.
    pub fn proxy(&self) -> Option<&crate::proxy::Proxy> {
        self.proxy.as_ref()
    }
}

impl fmt::Debug for Fetched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetched")
            .field("status", &self.status)
            .field("final_url", &crate::redact_url(&self.final_url.to_string()))
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .field("elapsed", &self.elapsed)
            .field("attempts", &self.attempts)
            .field("proxy", &self.proxy)
            .finish()
    }
}

/// Copies a header map so that no name or value shares a buffer with the original.
fn copy_headers(src: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(src.keys_len());
    for (name, value) in src {
        // Well-known names are static; others get their own allocation.
        let name = HeaderName::from_bytes(name.as_str().as_bytes()).expect("valid header name");
        let mut v = HeaderValue::from_bytes(value.as_bytes()).expect("valid header value");
        v.set_sensitive(value.is_sensitive());
        out.append(name, v);
    }
    out
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
}
