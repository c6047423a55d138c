//! [`Fetched`]: a fully buffered response, kept compact.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, Response, StatusCode, Uri, Version};

use super::collect::CollectInto;
use super::compact::{self, Entries, Tail};
use super::ext::{charset_of, with_url};
use super::DEFAULT_BODY_LIMIT;
use crate::error::{BoxError, Error, ErrorKind};
use crate::ext::{Attempts, BodyLimit, FinalUrl};

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

/// What [`Fetched`] builds from its buffer on demand.
#[derive(Default)]
struct Lazy {
    headers: OnceLock<HeaderMap>,
    url: OnceLock<Uri>,
    /// [`Fetched::wait`]; set (with this box) only when the request waited.
    wait: Duration,
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
        let elapsed_width =
            compact::varint_len(nanos(started.elapsed()).saturating_mul(2).max(1 << 30));
        let tail = compact::tail_len(url_len, attempts, elapsed_width, &parts.headers);
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
        buf.reserve_exact(
            self.tail + compact::varint_len(elapsed).saturating_sub(self.elapsed_width),
        );
        compact::write_tail(
            &mut buf,
            uri_pieces(&self.url),
            self.attempts,
            (elapsed, self.elapsed_width),
            &self.parts.headers,
        );
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
            .get_or_init(|| compact::header_map(self.header_block()))
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
        compact::find_header(self.header_block(), name.as_ref())
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
    /// The URL the response finally came from, as text, borrowed from the buffer: no
    /// parsing (unlike [`final_url`](Fetched::final_url)). Not redacted.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
    /// let resp = http::Response::new(fastreq::ResponseBody::from("hi"));
    /// let uri = "http://a.test/x?y=1".parse().unwrap();
    /// let f = fastreq::Fetched::from_response(resp, &uri, std::time::Instant::now()).await?;
    /// assert_eq!(f.final_url_str(), "http://a.test/x?y=1");
    /// assert_eq!(f.final_url_str(), f.final_url().to_string());
    /// # Ok(()) }
    /// ```
    pub fn final_url_str(&self) -> &str {
        self.url_str()
    }
    /// Time from sending the request to the end of the body.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.tail().elapsed_nanos)
    }
    /// The part of [`elapsed`](Fetched::elapsed) spent waiting rather than on the wire
    /// (rate-limit tokens, concurrency slots, proxies, retry backoff), when the request
    /// carried a [`WaitTime`](crate::ext::WaitTime) (zero otherwise). Time on the wire:
    /// `elapsed().saturating_sub(wait())`.
    pub fn wait(&self) -> Duration {
        self.lazy.get().map_or(Duration::ZERO, |l| l.wait)
    }

    /// Records the request's wait (nothing is stored when it is zero).
    pub(crate) fn with_wait(mut self, wait: Option<crate::ext::WaitTime>) -> Self {
        let wait = wait.map_or(Duration::ZERO, |w| w.get());
        if !wait.is_zero() {
            match self.lazy.get_mut() {
                Some(lazy) => lazy.wait = wait,
                None => {
                    let _ = self.lazy.set(Box::new(Lazy {
                        wait,
                        ..Lazy::default()
                    }));
                }
            }
        }
        self
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
        Tail::decode(tail).unwrap_or(Tail {
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
        Entries::new(self.header_block())
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

/// A header value shown like [`HeaderValue`](http::HeaderValue)'s `Debug`: `Sensitive` for sensitive values.
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

#[cfg(test)]
mod tests {
    use http::header::{HeaderName, HeaderValue};
    use http_body::Frame;

    use super::*;
    use crate::response::ResponseBody;

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
}
