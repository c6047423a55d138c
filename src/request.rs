//! Building requests: [`get`], [`post`], [`request`] and the [`RequestBuilder`].
//!
//! Requests in fastreq are plain [`http::Request<Body>`](http::Request). The builder covers
//! the common path: it parses and checks the URL (only `http` and `https`), adds query
//! parameters, headers, a body (bytes, text, form or JSON) and per-request overrides (see
//! [`ext`](crate::ext)). Errors are kept until [`RequestBuilder::build`], which returns an
//! [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) error naming the bad input.
//!
//! Credentials in the URL (`https://user:pass@host/`) are moved into an
//! `Authorization: Basic` header marked sensitive, so they never appear in the URI.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//!
//! let req = fastreq::get("http://api.test/search")
//!     .query([("q", "tower layers"), ("page", "2")])
//!     .header("accept", "application/json")
//!     .timeout(Duration::from_secs(5))
//!     .build()
//!     .unwrap();
//! assert_eq!(req.uri(), "http://api.test/search?q=tower+layers&page=2");
//!
//! let err = fastreq::get("ftp://files.test/x").build().unwrap_err();
//! assert!(err.is_invalid_request());
//! assert!(err.to_string().contains("ftp://files.test/x"));
//! ```

use std::time::Duration;

use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Uri, Version};

use crate::body::Body;
use crate::error::{redact_url, Error};
use crate::ext::{BodyLimit, MaxRetries, NoRedirects, RequestTimeout};

/// Starts a request with `method` to `url`.
pub fn request(method: Method, url: impl AsRef<str>) -> RequestBuilder {
    RequestBuilder::new(method, url.as_ref())
}

/// Starts a `GET` request to `url`.
pub fn get(url: impl AsRef<str>) -> RequestBuilder {
    request(Method::GET, url)
}

/// Starts a `POST` request to `url`.
pub fn post(url: impl AsRef<str>) -> RequestBuilder {
    request(Method::POST, url)
}

/// Starts a `PUT` request to `url`.
pub fn put(url: impl AsRef<str>) -> RequestBuilder {
    request(Method::PUT, url)
}

/// Starts a `DELETE` request to `url`.
pub fn delete(url: impl AsRef<str>) -> RequestBuilder {
    request(Method::DELETE, url)
}

/// Starts a `HEAD` request to `url`.
pub fn head(url: impl AsRef<str>) -> RequestBuilder {
    request(Method::HEAD, url)
}

/// Parses and checks an absolute `http`/`https` URL, as the builder does.
///
/// Returns the URI without userinfo, and the userinfo as a ready `Authorization` header if
/// there was one.
pub(crate) fn parse_url(input: &str) -> Result<(Uri, Option<HeaderValue>), Error> {
    if let Some(uri) = simple_uri(input) {
        return Ok((uri, None));
    }
    parse_url_full(input)
}

/// The [`Uri`] of a URL that is already in the form the WHATWG parser would give, built
/// without that parser: `http://` or `https://` (lower case), a host of lower-case ASCII
/// letters, digits, `-` and `.` (a dotted-quad IPv4 address in canonical form when its last
/// label is numeric), an optional port that is not the scheme's default, then `/` and a
/// path and query of characters the parser leaves as they are (no dot segments, `%` only
/// before two hex digits); a fragment is dropped. `None` for anything else (userinfo, IPv6,
/// upper case, spaces, controls, non-ASCII, `\\`, …): the full parser handles it.
fn simple_uri(input: &str) -> Option<Uri> {
    let b = input.as_bytes();
    let (rest, default_port) = if let Some(r) = b.strip_prefix(b"http://") {
        (r, &b"80"[..])
    } else if let Some(r) = b.strip_prefix(b"https://") {
        (r, &b"443"[..])
    } else {
        return None;
    };
    let authority_len = rest.iter().position(|&c| c == b'/')?;
    let (authority, path_and_more) = rest.split_at(authority_len);
    let (host, port) = match authority.iter().position(|&c| c == b':') {
        Some(i) => (&authority[..i], Some(&authority[i + 1..])),
        None => (authority, None),
    };
    if !simple_host(host) {
        return None;
    }
    if let Some(port) = port {
        let canonical = !port.is_empty()
            && port.len() <= 5
            && port.iter().all(u8::is_ascii_digit)
            && (port[0] != b'0' || port.len() == 1)
            && std::str::from_utf8(port).ok()?.parse::<u16>().is_ok();
        if !canonical || port == default_port {
            return None;
        }
    }
    // Path and query: up to the fragment, which is dropped.
    let end = path_and_more
        .iter()
        .position(|&c| c == b'#')
        .unwrap_or(path_and_more.len());
    let (path_query, _fragment) = path_and_more.split_at(end);
    let query_at = path_query
        .iter()
        .position(|&c| c == b'?')
        .unwrap_or(path_query.len());
    let (path, query) = path_query.split_at(query_at);
    if !simple_chars(path, false) || path.split(|&c| c == b'/').any(is_dot_segment) {
        return None;
    }
    if !simple_chars(query, true) {
        return None;
    }
    let kept = input.len() - (path_and_more.len() - end);
    Uri::try_from(&input[..kept]).ok()
}

/// Lower-case letters, digits, `-` and `.` in non-empty labels, not starting with `-` and
/// not punycode; a numeric last label only in a canonical dotted quad.
fn simple_host(host: &[u8]) -> bool {
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    let labels = || host.split(|&c| c == b'.');
    let ok_label = |l: &[u8]| {
        !l.is_empty()
            && l.len() <= 63
            && l[0] != b'-'
            && !l.starts_with(b"xn--")
            && l.iter()
                .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    };
    if !labels().all(ok_label) {
        return false;
    }
    let last = labels().next_back().unwrap_or_default();
    // The WHATWG parser reads a host whose last label is a number (or 0x…) as IPv4 and
    // rewrites it (`127.1` → `127.0.0.1`); only the canonical form is kept as is.
    if last.iter().all(u8::is_ascii_digit) || last.starts_with(b"0x") {
        let parts: Vec<&[u8]> = labels().collect();
        return parts.len() == 4
            && parts.iter().all(|p| {
                p.len() <= 3
                    && p.iter().all(u8::is_ascii_digit)
                    && (p[0] != b'0' || p.len() == 1)
                    && std::str::from_utf8(p)
                        .ok()
                        .and_then(|s| s.parse::<u8>().ok())
                        .is_some()
            });
    }
    true
}

/// Characters the WHATWG parser keeps as they are in a path (`query`: in a query, which
/// also allows `?` and encodes `'`); `%` only before two hex digits.
fn simple_chars(s: &[u8], query: bool) -> bool {
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let ok = match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => true,
            b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'(' | b')' | b'*' | b'+' | b','
            | b';' | b'=' | b':' | b'@' | b'/' => true,
            b'\'' => !query,
            b'?' => query,
            b'%' if s.len() > i + 2
                && s[i + 1].is_ascii_hexdigit()
                && s[i + 2].is_ascii_hexdigit() =>
            {
                i += 2;
                true
            }
            _ => false,
        };
        if !ok {
            return false;
        }
        i += 1;
    }
    true
}

/// `.`, `..` and their percent-encoded forms, which the parser removes.
fn is_dot_segment(seg: &[u8]) -> bool {
    seg.len() <= 6
        && [&b"."[..], b"..", b"%2e", b".%2e", b"%2e.", b"%2e%2e"]
            .iter()
            .any(|d| d.eq_ignore_ascii_case(seg))
}

/// [`parse_url`] with the WHATWG parser, for every URL.
fn parse_url_full(input: &str) -> Result<(Uri, Option<HeaderValue>), Error> {
    let invalid = |why: &str| {
        Error::invalid_request(format!("invalid URL `{}`: {why}", redact_url(input.trim())))
    };
    let mut url = url::Url::parse(input.trim()).map_err(|e| invalid(&e.to_string()))?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(invalid(&format!(
                "unsupported scheme `{other}` (only http and https)"
            )))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    let auth = if !url.username().is_empty() || url.password().is_some() {
        let user = percent_decode(url.username());
        let pass = url.password().map(percent_decode);
        let mut value = basic_auth(&user, pass.as_deref());
        value.set_sensitive(true);
        // Cannot fail for http(s) URLs with a host.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Some(value)
    } else {
        None
    };
    url.set_fragment(None);
    let uri = url
        .as_str()
        .parse::<Uri>()
        .map_err(|e| invalid(&e.to_string()))?;
    Ok((uri, auth))
}

fn percent_decode(s: &str) -> String {
    // form_urlencoded would turn '+' into ' ', which userinfo does not do.
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An `Authorization: Basic` value for `user` and `password`.
pub(crate) fn basic_auth(user: &str, password: Option<&str>) -> HeaderValue {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut input = Vec::with_capacity(user.len() + 1 + password.map_or(0, str::len));
    input.extend_from_slice(user.as_bytes());
    input.push(b':');
    if let Some(p) = password {
        input.extend_from_slice(p.as_bytes());
    }
    let mut out = String::from("Basic ");
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    let mut v = HeaderValue::from_str(&out).expect("base64 is a valid header value");
    v.set_sensitive(true);
    v
}

/// Builds an [`http::Request<Body>`](http::Request); see the [module docs](self).
///
/// Every setter consumes and returns the builder. The first error is kept and returned by
/// [`build`](RequestBuilder::build); later setters are then ignored.
#[must_use = "a request builder does nothing until built"]
pub struct RequestBuilder {
    inner: Result<Parts, Error>,
}

struct Parts {
    method: Method,
    uri: Uri,
    version: Option<Version>,
    headers: HeaderMap,
    body: Body,
    extensions: http::Extensions,
    query: Option<String>,
}

impl std::fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Ok(p) => f
                .debug_struct("RequestBuilder")
                .field("method", &p.method)
                .field("url", &redact_url(&p.uri.to_string()))
                .field("headers", &p.headers)
                .field("body", &p.body)
                .finish(),
            Err(e) => f.debug_tuple("RequestBuilder").field(e).finish(),
        }
    }
}

impl RequestBuilder {
    fn new(method: Method, url: &str) -> Self {
        let inner = parse_url(url).map(|(uri, auth)| {
            let mut headers = HeaderMap::new();
            if let Some(auth) = auth {
                headers.insert(AUTHORIZATION, auth);
            }
            Parts {
                method,
                uri,
                version: None,
                headers,
                body: Body::empty(),
                extensions: http::Extensions::new(),
                query: None,
            }
        });
        RequestBuilder { inner }
    }

    fn with(mut self, f: impl FnOnce(&mut Parts) -> Result<(), Error>) -> Self {
        if let Ok(parts) = &mut self.inner {
            if let Err(e) = f(parts) {
                self.inner = Err(e);
            }
        }
        self
    }

    /// Appends query parameters (form-encoded) to the URL.
    pub fn query<I, K, V>(self, pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        self.with(|p| {
            let q = p
                .query
                .get_or_insert_with(|| p.uri.query().unwrap_or("").to_owned());
            let mut ser = form_urlencoded::Serializer::for_suffix(std::mem::take(q), 0);
            for (k, v) in pairs {
                ser.append_pair(k.as_ref(), v.as_ref());
            }
            *q = ser.finish();
            Ok(())
        })
    }

    /// Adds a header (appended, so a name may repeat). An invalid name or value is an error.
    pub fn header<K, V>(self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: std::fmt::Display,
        V: TryInto<HeaderValue>,
        V::Error: std::fmt::Display,
    {
        self.with(|p| {
            let name: HeaderName = name
                .try_into()
                .map_err(|e| Error::invalid_request(format!("invalid header name: {e}")))?;
            let value: HeaderValue = value.try_into().map_err(|e| {
                Error::invalid_request(format!("invalid value for header `{name}`: {e}"))
            })?;
            p.headers.append(name, value);
            Ok(())
        })
    }

    /// Adds all of `headers` (appended).
    pub fn headers(self, headers: HeaderMap) -> Self {
        self.with(|p| {
            let mut last = None;
            for (name, value) in headers {
                let name = match name {
                    Some(n) => {
                        last = Some(n.clone());
                        n
                    }
                    None => last.clone().expect("HeaderMap yields a name first"),
                };
                p.headers.append(name, value);
            }
            Ok(())
        })
    }

    /// Sets `Authorization: Bearer <token>`, marked sensitive (never logged).
    pub fn bearer_auth(self, token: impl std::fmt::Display) -> Self {
        self.with(|p| {
            let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                Error::invalid_request("invalid bearer token: not a valid header value")
            })?;
            v.set_sensitive(true);
            p.headers.insert(AUTHORIZATION, v);
            Ok(())
        })
    }

    /// Sets `Authorization: Basic ..` from a user and an optional password, marked sensitive.
    pub fn basic_auth(self, user: &str, password: Option<&str>) -> Self {
        self.with(|p| {
            p.headers.insert(AUTHORIZATION, basic_auth(user, password));
            Ok(())
        })
    }

    /// Sets the body. A `Bytes`, `Vec<u8>`, `String` or `&'static str` body is replayable.
    pub fn body(self, body: impl Into<Body>) -> Self {
        self.with(|p| {
            p.body = body.into();
            Ok(())
        })
    }

    /// Sets a form-encoded body and `Content-Type: application/x-www-form-urlencoded`.
    pub fn form<I, K, V>(self, pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        self.with(|p| {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in pairs {
                ser.append_pair(k.as_ref(), v.as_ref());
            }
            p.body = Body::from(ser.finish());
            p.headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            Ok(())
        })
    }

    /// Sets a JSON body and `Content-Type: application/json`.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Self {
        self.with(|p| {
            let body = serde_json::to_vec(value).map_err(|e| {
                Error::invalid_request(format!("cannot serialize JSON body: {e}")).with_source(e)
            })?;
            p.body = Body::from(body);
            p.headers
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(())
        })
    }

    /// Requests a specific HTTP version (normally negotiated).
    pub fn version(self, version: Version) -> Self {
        self.with(|p| {
            p.version = Some(version);
            Ok(())
        })
    }

    /// Per-request timeout for each hop up to the response headers ([`RequestTimeout`]).
    pub fn timeout(self, timeout: Duration) -> Self {
        self.extension(RequestTimeout(timeout))
    }

    /// Per-request maximum number of retries ([`MaxRetries`]).
    pub fn retries(self, retries: u32) -> Self {
        self.extension(MaxRetries(retries))
    }

    /// Do not follow redirects for this request ([`NoRedirects`]).
    pub fn no_redirects(self) -> Self {
        self.extension(NoRedirects)
    }

    /// Per-request cap on the response body size ([`BodyLimit`]).
    pub fn body_limit(self, bytes: usize) -> Self {
        self.extension(BodyLimit(bytes))
    }

    /// Sends this request (every redirect hop of it) through `proxy`, a
    /// [`Proxy`](crate::proxy::Proxy) or a proxy line such as `"socks5h://user:pass@10.0.0.1:1080"`,
    /// overriding any proxy pool. A line that does not parse is an `InvalidRequest` error,
    /// quoted with its password redacted.
    pub fn proxy(self, proxy: impl crate::proxy::IntoProxy) -> Self {
        self.with(|p| {
            let proxy = proxy.into_proxy()?;
            p.extensions
                .insert(crate::proxy::ProxyOverride(Some(proxy)));
            Ok(())
        })
    }

    /// Sends this request directly, bypassing any proxy pool.
    pub fn no_proxy(self) -> Self {
        self.with(|p| {
            p.extensions.insert(crate::proxy::ProxyOverride(None));
            Ok(())
        })
    }

    /// Inserts any request extension.
    pub fn extension<T: Clone + Send + Sync + 'static>(self, value: T) -> Self {
        self.with(|p| {
            p.extensions.insert(value);
            Ok(())
        })
    }

    /// Builds the request, or returns the first error met while building it.
    pub fn build(self) -> Result<Request<Body>, Error> {
        let p = self.inner?;
        let uri = match p.query {
            None => p.uri,
            Some(q) => {
                let mut parts = p.uri.into_parts();
                let path = parts
                    .path_and_query
                    .as_ref()
                    .map_or("/", |pq| pq.path())
                    .to_owned();
                let pq = if q.is_empty() {
                    path
                } else {
                    format!("{path}?{q}")
                };
                parts.path_and_query = Some(pq.parse().map_err(|e: http::uri::InvalidUri| {
                    Error::invalid_request(format!("invalid query: {e}"))
                })?);
                Uri::from_parts(parts)
                    .map_err(|e| Error::invalid_request(format!("invalid URL: {e}")))?
            }
        };
        let mut req = Request::new(p.body);
        *req.method_mut() = p.method;
        *req.uri_mut() = uri;
        if let Some(v) = p.version {
            *req.version_mut() = v;
        }
        *req.headers_mut() = p.headers;
        *req.extensions_mut() = p.extensions;
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_becomes_basic_auth() {
        let req = get("https://Aladdin:open%20sesame@h.test/p")
            .build()
            .unwrap();
        assert_eq!(req.uri(), "https://h.test/p");
        let auth = req.headers().get(AUTHORIZATION).unwrap();
        assert!(auth.is_sensitive());
        assert_eq!(auth, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(basic_auth("a", None), "Basic YTo=");
        assert_eq!(basic_auth("ab", Some("c")), "Basic YWI6Yw==");
    }

    /// Both paths give the same result; `fast` says which inputs take the fast one.
    #[test]
    fn url_fast_path_agrees_with_the_full_parser() {
        let fast = [
            "http://h.test/",
            "https://h.test/a/b?x=1&y=2",
            "http://127.0.0.1:8080/item/17",
            "https://a-b.c0.test:8443/p;q=1/%41%e9?x=%2F&y=a:b@c!$()*+,;=~",
            "http://h.test/a//b/.x/..y/a%2eb?",
            "http://h.test/p#frag",
            "http://h.test/p?q#f?g#h",
            "http://localhost:0/",
            "https://h.test:65535/",
            "http://255.255.255.255/",
            "http://0.0.0.0/x",
            "http://a.1.test/",
            "http://ab-.test/",
            "http://h.test/it's",
        ];
        let slow = [
            "HTTP://h.test/",
            "Http://h.test/",
            "http://H.test/",
            "http://h.TEST/p",
            "http://user:pass@h.test/",
            "http://user@h.test/",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]/",
            "http://h.test",
            "http://h.test?x=1",
            "http://h.test:80/",
            "https://h.test:443/",
            "http://h.test:080/",
            "http://h.test:/",
            "http://h.test:99999/",
            "http://h.test:8a/",
            "http://127.1/",
            "http://0x7f.0.0.1/",
            "http://127.0.0.01/",
            "http://256.0.0.1/",
            "http://1.2.3.4.5/",
            "http://h.test./",
            "http://.h.test/",
            "http://h..test/",
            "http://-h.test/",
            "http://xn--nxasmq6b.test/",
            "http://h_u.test/",
            "http://h%41.test/",
            "http://h.test/a b",
            " http://h.test/",
            "http://h.test/ ",
            "http://h.test/\tx",
            "http://h.test/a\nb",
            "http://h.test/é",
            "http://hé.test/",
            "http://日本.test/",
            "http://h.test/%zz",
            "http://h.test/%4",
            "http://h.test/a/../b",
            "http://h.test/a/./b",
            "http://h.test/a/%2E%2e/b",
            "http://h.test/..",
            "http://h.test\\a",
            "http://h.test/a\\b",
            "http://h.test/a|b^c[d]",
            "http://h.test/\"q\"",
            "http://h.test/<x>",
            "http://h.test/?q='x'",
            "http://h.test/?q=\"x\"",
            "http://h.test/?a b",
            "http://h.test/`x`{y}",
            "http:/h.test/",
            "http:h.test/",
            "ftp://h.test/",
            "https:///h.test/",
            "",
            "http://",
            "http:///",
        ];
        for input in fast {
            assert!(simple_uri(input).is_some(), "fast path: {input}");
            let (a, auth) = parse_url(input).unwrap();
            let (b, _) = parse_url_full(input).unwrap();
            assert_eq!(a, b, "{input}");
            assert_eq!(a.to_string(), b.to_string(), "{input}");
            assert!(auth.is_none());
        }
        for input in slow {
            assert!(simple_uri(input).is_none(), "full parser: {input}");
            match (parse_url(input), parse_url_full(input)) {
                (Ok((a, auth_a)), Ok((b, auth_b))) => {
                    assert_eq!(a.to_string(), b.to_string(), "{input}");
                    assert_eq!(auth_a, auth_b, "{input}");
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{input}"),
                (a, b) => panic!("{input}: {a:?} vs {b:?}"),
            }
        }
        // What the full parser makes of some of them.
        let full = |s: &str| parse_url(s).map(|(u, _)| u.to_string());
        assert_eq!(full("HTTP://H.TEST").unwrap(), "http://h.test/");
        assert_eq!(full("http://127.1/").unwrap(), "http://127.0.0.1/");
        assert_eq!(full("http://h.test:80/a/../b").unwrap(), "http://h.test/b");
        assert_eq!(full("http://h.test/a b").unwrap(), "http://h.test/a%20b");
        assert_eq!(full("http://h.test/é").unwrap(), "http://h.test/%C3%A9");
        assert_eq!(full("http://[::1]:8080/").unwrap(), "http://[::1]:8080/");
        assert_eq!(full(" http://h.test/ ").unwrap(), "http://h.test/");
        assert!(full("http://h.test:99999/").is_err());
        assert!(full("http://h.test/%zz").is_ok());
    }

    #[test]
    fn query_appends_to_existing() {
        let req = get("http://h.test/p?a=1#frag")
            .query([("b", "x y"), ("c", "&")])
            .build()
            .unwrap();
        assert_eq!(req.uri(), "http://h.test/p?a=1&b=x+y&c=%26");
    }

    #[test]
    fn bad_inputs_are_named() {
        for bad in ["", "no scheme", "http://", "mailto:a@b.test", "http://[::1"] {
            let e = get(bad).build().unwrap_err();
            assert!(e.is_invalid_request(), "{bad}: {e}");
        }
        let e = get("http://u:hunter2@h.test/?token=t0k&ok=1 x")
            .header("x", "a\nb")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("`x`"), "{e}");
        let e = get("gopher://u:hunter2@h.test/?token=t0k")
            .build()
            .unwrap_err();
        let s = e.to_string();
        assert!(s.contains("gopher://h.test/?token=REDACTED"), "{s}");
        assert!(!s.contains("hunter2") && !s.contains("t0k"));
        let e = get("http://h.test/")
            .header("bad name", "v")
            .build()
            .unwrap_err();
        assert!(e.is_invalid_request());
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_body() {
        let req = post("http://h.test/")
            .json(&serde_json::json!({"a": [1, 2]}))
            .build()
            .unwrap();
        assert_eq!(req.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(req.body().as_bytes().unwrap(), br#"{"a":[1,2]}"#);
    }

    #[test]
    fn form_and_overrides() {
        let req = post("http://h.test/")
            .form([("a", "1"), ("b", "é")])
            .retries(0)
            .no_redirects()
            .build()
            .unwrap();
        assert_eq!(req.body().as_bytes().unwrap(), b"a=1&b=%C3%A9");
        assert_eq!(req.extensions().get::<MaxRetries>(), Some(&MaxRetries(0)));
        assert!(req.extensions().get::<NoRedirects>().is_some());
    }
}
