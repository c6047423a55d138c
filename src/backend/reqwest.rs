//! [`ReqwestBackend`]: a user's own [`reqwest::Client`] as a fastreq backend (feature
//! `reqwest`).
//!
//! Every fastreq layer (retry, rate and concurrency limits, redirects, cookies, timeouts,
//! decompression, the fan-out) runs over the client you configured: its TLS settings, DNS,
//! HTTP versions and connection pool. Plug it in with
//! [`StackBuilder::backend`](crate::StackBuilder::backend) or at the bottom of your own
//! `ServiceBuilder`.
//!
//! | fastreq contract | over reqwest |
//! |---|---|
//! | streaming request bodies | yes (sent once; full bodies stay replayable for retries) |
//! | streaming response bodies | yes, read through [`ResponseBody`] with the usual size cap |
//! | [`FinalUrl`], [`BodyLimit`] | set on every response (the URL reqwest ended on) |
//! | [`RequestTimeout`] | becomes reqwest's per-request timeout (to the headers and body) |
//! | error kinds | `Connect`, `Tls`, `Timeout`, `Io`, `Decode`, `TooManyRedirects`, `InvalidRequest` |
//! | a proxy chosen per request ([`ProxyRotation`](crate::proxy::ProxyRotation), [`ProxyOverride`]) | **refused** with a `Config` error: reqwest sets proxies per client, so configure them with `reqwest::Proxy` |
//!
//! Build the client with `redirect(reqwest::redirect::Policy::none())` so that fastreq's
//! redirect layer sees each hop (it strips credentials across origins and keeps cookies per
//! hop); with reqwest's own redirects on, fastreq only sees the last response. reqwest's
//! error messages name the URL, credentials included: the adapter drops that URL and names
//! the request's URL redacted, as the hyper backend does.
//!
//! # Examples
//!
//! ```
//! use fastreq::backend::reqwest::ReqwestBackend;
//! use fastreq::proxy::{Proxy, ProxyOverride};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
//! # let _ = rustls::crypto::ring::default_provider().install_default();
//! let client = reqwest::Client::builder()
//!     .redirect(reqwest::redirect::Policy::none())
//!     .build()
//!     .expect("a reqwest client");
//! let backend = ReqwestBackend::new(client);
//!
//! // The whole preset over it: `fastreq::stack().backend(backend.clone()).build()?`.
//! let _client = fastreq::stack().backend(backend.clone()).build()?;
//!
//! // What reqwest cannot honour is refused, not ignored (no network needed to see it).
//! let mut req = fastreq::get("http://a.test/").build()?;
//! let proxy = Proxy::parse("http://user:secret@127.0.0.1:3128")?;
//! req.extensions_mut().insert(ProxyOverride(Some(proxy)));
//! let err = backend.oneshot(req).await.unwrap_err();
//! assert!(err.is_config());
//! assert!(!err.to_string().contains("secret"));
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response, Uri};
use http_body_util::BodyExt;
use tower_service::Service;

use crate::body::Body;
use crate::error::{Error, ErrorKind, Redactor};
use crate::ext::{BodyLimit, FinalUrl, RequestTimeout};
use crate::proxy::{ProxyOverride, SelectedProxy};
use crate::response::{ResponseBody, DEFAULT_BODY_LIMIT};

/// A [`reqwest::Client`] behind the backend contract of fastreq (see the
/// [module docs](self)).
///
/// Cloning is cheap (reqwest's client is a shared handle): clones share its pool.
#[derive(Clone)]
pub struct ReqwestBackend {
    client: reqwest::Client,
    redactor: Redactor,
    body_limit: usize,
}

impl ReqwestBackend {
    /// Wraps `client`, with the default body cap (64 MiB) and the default list of redacted
    /// query parameters.
    pub fn new(client: reqwest::Client) -> Self {
        ReqwestBackend {
            client,
            redactor: Redactor::default(),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// Cap on a response body read through [`ResponseExt`](crate::ResponseExt) or into a
    /// [`Fetched`](crate::Fetched) (default 64 MiB). 0 is raised to 1 byte.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes.max(1);
        self
    }

    /// Query parameters whose values are hidden in error URLs (replaces the default list).
    pub fn redact_query_params<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.redactor = Redactor::new(names);
        self
    }

    /// The wrapped client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    fn convert(&self, req: Request<Body>) -> Result<reqwest::Request, Error> {
        let ext = req.extensions();
        let proxy = match ext.get::<ProxyOverride>() {
            Some(ProxyOverride(choice)) => choice.clone(),
            None => ext.get::<SelectedProxy>().map(|s| s.0.clone()),
        };
        if let Some(proxy) = proxy {
            return Err(Error::config(
                "the reqwest backend cannot send a request through a proxy chosen per request \
                 (proxy rotation or ProxyOverride): configure proxies on the reqwest::Client \
                 with reqwest::Proxy, or use fastreq's own backend",
            )
            .with_proxy(proxy));
        }
        let timeout = ext.get::<RequestTimeout>().map(|t| t.0);
        let (parts, body) = req.into_parts();
        let url = reqwest::Url::parse(&parts.uri.to_string())
            .map_err(|e| Error::invalid_request(format!("not a URL reqwest accepts: {e}")))?;
        let mut out = reqwest::Request::new(parts.method, url);
        *out.headers_mut() = parts.headers;
        if parts.version != http::Version::HTTP_11 {
            *out.version_mut() = parts.version;
        }
        *out.timeout_mut() = timeout;
        *out.body_mut() = match body.into_bytes() {
            Ok(None) => None,
            Ok(Some(bytes)) => Some(reqwest::Body::from(bytes)),
            Err(stream) => Some(reqwest::Body::wrap_stream(
                http_body_util::BodyDataStream::new(stream),
            )),
        };
        Ok(out)
    }
}

impl fmt::Debug for ReqwestBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestBackend")
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

impl Service<Request<Body>> for ReqwestBackend {
    type Response = Response<ResponseBody>;
    type Error = Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // reqwest's client is always ready; backpressure comes from the layers above.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> ResponseFuture {
        let uri = req.uri().clone();
        let body_limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(self.body_limit, |l| l.0);
        let redactor = self.redactor.clone();
        let request = match self.convert(req) {
            Ok(r) => r,
            Err(e) => {
                let e = e.with_url_redacted(&uri, &redactor);
                return ResponseFuture {
                    inner: Box::pin(async move { Err(e) }),
                };
            }
        };
        let sent = self.client.execute(request);
        ResponseFuture {
            inner: Box::pin(async move {
                let resp = sent
                    .await
                    .map_err(|e| map_error(e).with_url_redacted(&uri, &redactor))?;
                let final_url = resp.url().as_str().parse::<Uri>().unwrap_or(uri);
                let (mut parts, body) = Response::<reqwest::Body>::from(resp).into_parts();
                parts.extensions.insert(FinalUrl(final_url));
                if body_limit != DEFAULT_BODY_LIMIT {
                    parts.extensions.insert(BodyLimit(body_limit));
                }
                let body = body.map_err(body_error);
                Ok(Response::from_parts(parts, ResponseBody::new(body)))
            }),
        }
    }
}

/// The response future of [`ReqwestBackend`] (reqwest's own future is not nameable, so it
/// is boxed here, once per request).
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Error>> + Send>>,
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("reqwest::ResponseFuture")
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

/// The innermost cause's message: "Connection refused", "connection reset".
fn innermost(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut last = None;
    crate::error::visit_chain(err, &mut |e| last = Some(e.to_string()));
    last
}

/// A reqwest error as a fastreq error of the matching kind. reqwest's message names the
/// URL with its credentials: the URL is dropped, and the caller adds the redacted one.
fn map_error(err: reqwest::Error) -> Error {
    let err = err.without_url();
    let mut tls = false;
    crate::error::visit_chain(&err, &mut |e| tls |= e.is::<rustls::Error>());
    let (kind, what) = if tls {
        (ErrorKind::Tls, "TLS handshake failed")
    } else if err.is_timeout() {
        // reqwest's innermost cause only repeats it ("operation timed out").
        return Error::new(ErrorKind::Timeout)
            .with_message("no response within the request's timeout (reqwest)")
            .with_source(err);
    } else if err.is_connect() {
        (ErrorKind::Connect, "could not connect")
    } else if err.is_redirect() {
        (
            ErrorKind::TooManyRedirects,
            "reqwest's redirect policy stopped",
        )
    } else if err.is_builder() {
        (ErrorKind::InvalidRequest, "reqwest refused the request")
    } else if err.is_decode() {
        (ErrorKind::Decode, "could not decode the response")
    } else {
        (ErrorKind::Io, "request failed")
    };
    let message = match innermost(&err) {
        Some(cause) => format!("{what}: {cause}"),
        None => what.to_owned(),
    };
    Error::new(kind).with_message(message).with_source(err)
}

/// An error while reading a response body through reqwest.
fn body_error(err: reqwest::Error) -> Error {
    let err = err.without_url();
    let (kind, what) = if err.is_timeout() {
        return Error::new(ErrorKind::Timeout)
            .with_message("the body did not end within the request's timeout (reqwest)")
            .with_source(err);
    } else if err.is_decode() {
        (ErrorKind::Decode, "could not decode the body")
    } else {
        (ErrorKind::Io, "error reading the body")
    };
    let message = match innermost(&err) {
        Some(cause) => format!("{what}: {cause}"),
        None => what.to_owned(),
    };
    Error::new(kind).with_message(message).with_source(err)
}
