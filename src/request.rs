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
