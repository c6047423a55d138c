//! The HTTP backend: a [`tower::Service`] over hyper-util's pooled client and rustls.
//!
//! [`Backend`] sends an [`http::Request<Body>`](http::Request) and returns an
//! [`http::Response<ResponseBody>`](http::Response). It speaks HTTP/1.1 and HTTP/2
//! (negotiated by ALPN over TLS, or h2c with prior knowledge), keeps connections alive in a
//! pool, verifies TLS certificates against bundled Mozilla roots by default (no CA files
//! needed), and maps every failure to a fastreq [`Error`] of the right
//! [kind](crate::ErrorKind): `Connect`, `Tls`, `Timeout`, `Io`, `Proxy` or `InvalidRequest`.
//!
//! Each response carries its [`FinalUrl`] (the request URL; a redirect layer above updates
//! it) and, when it is not [`DEFAULT_BODY_LIMIT`], its [`BodyLimit`] (readers such as
//! [`ResponseExt::bytes`](crate::ResponseExt::bytes) take the default when it is absent).
//!
//! # Proxies
//!
//! A request carrying a [`ProxyOverride`] (`Some(proxy)`; `None` means direct) or, failing
//! that, a [`SelectedProxy`] (set by the [rotation layer](crate::proxy)) goes through that
//! proxy; a request with neither goes direct, with no extra cost. Each proxy gets its own
//! connection pool, created on first use (hyper-util keys its pool by target only, so a
//! shared pool would hand one proxy's connection to another).
//!
//! | proxy | `http://` target | `https://` target |
//! |---|---|---|
//! | `http`, `https` | absolute form to the proxy, `Proxy-Authorization` added (sensitive) | `CONNECT` tunnel (credentials in the `CONNECT`), TLS to the target inside |
//! | `socks5`, `socks4` | target name resolved here (resolver overrides apply), tunnel | same, TLS inside |
//! | `socks5h` | target name resolved by the proxy, tunnel | same, TLS inside |
//!
//! With [`http2_prior_knowledge`](BackendBuilder::http2_prior_knowledge), `http://` targets
//! go through a `CONNECT` tunnel too (h2c cannot be forwarded). A `Proxy-Authorization`
//! header is removed from requests that go through a tunnel or SOCKS: it would reach the
//! target. Connecting to the proxy and its handshake must finish within
//! [`proxy_handshake_timeout`](BackendBuilder::proxy_handshake_timeout) (10 s). Failures of
//! the proxy are `Proxy` errors (a handshake timeout is a `Timeout`), carry a
//! [`ProxyError`] in their source chain and name the proxy with
//! its credentials redacted; a 407 answer of a forwarding proxy is such an error too.
//! Responses through a proxy carry its [`SelectedProxy`], and every error of a request
//! through a proxy, of any kind and also while reading the body, names it
//! ([`Error::proxy`](crate::Error::proxy)).
//!
//! # HTTP/3
//!
//! With feature `http3`, [`http3_prior_knowledge`](BackendBuilder::http3_prior_knowledge)
//! (or [`StackBuilder::http3`](crate::StackBuilder::http3)) sends `https` requests over
//! HTTP/3 on QUIC (hyperium's `h3` on `quinn`, rustls with ring), with the same contract:
//! streamed bodies both ways, the same error kinds, [`FinalUrl`], [`BodyLimit`],
//! [`RequestTimeout`], the same root options and [`resolve`](BackendBuilder::resolve)
//! overrides. One QUIC connection per origin carries all its concurrent requests (the
//! first requests to an origin share one handshake); a closed connection is replaced on
//! the next request, and a request the closing connection refused unhandled (`GOAWAY`,
//! `H3_REQUEST_REJECTED`) is sent once more on the new one. Responses have
//! [`Version::HTTP_3`](http::Version::HTTP_3); `http://` URLs still go over TCP.
//!
//! ```
//! use fastreq::Backend;
//! use fastreq::proxy::{Proxy, ProxyOverride};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
//! let built = Backend::builder().http3_prior_knowledge().build();
//! # #[cfg(not(feature = "http3"))]
//! # { assert!(built.unwrap_err().is_config()); return Ok(()); }
//! # #[cfg(feature = "http3")] {
//! let backend = built?;
//! assert!(backend.is_http3());
//! // QUIC cannot go through an HTTP or SOCKS proxy: refused, not ignored (no network).
//! let mut req = fastreq::get("https://h3.test/").build()?;
//! req.extensions_mut().insert(ProxyOverride(Some(Proxy::parse("http://127.0.0.1:3128")?)));
//! let err = backend.clone().oneshot(req).await.unwrap_err();
//! assert!(err.is_config());
//! assert_eq!(backend.http3_connections(), 0);
//! # }
//! # Ok(()) }
//! ```
//!
//! Clones of a backend share one connection pool. Two backends built separately never
//! share connections, so a backend that skips certificate checks can never hand its
//! connections to a verifying one.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use tower::ServiceExt;
//! use fastreq::{Backend, ResponseExt};
//!
//! # async fn run() -> Result<(), fastreq::Error> {
//! let backend = Backend::builder()
//!     .connect_timeout(Duration::from_secs(5))
//!     .pool_max_idle_per_host(32)
//!     // Tests can give local servers real-looking names:
//!     .resolve("api.test", "127.0.0.1:8080".parse().unwrap())
//!     .build()?;
//! let req = fastreq::get("http://api.test:8080/health").build()?;
//! let resp = backend.oneshot(req).await?;
//! println!("{} {}", resp.status(), resp.text().await?);
//! # Ok(()) }
//! ```

mod dns;
#[cfg(feature = "http3")]
mod http3;
mod proxy_connector;
#[cfg(feature = "reqwest")]
pub mod reqwest;
mod tls;

pub use tls::{Certificate, DEFAULT_TLS_SESSION_CACHE};

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::PROXY_AUTHORIZATION;
use http::{Request, Response, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::body::Body;
use crate::error::{Error, ErrorKind, Redactor};
use crate::ext::{BodyLimit, FinalUrl, RequestTimeout};
use crate::proxy::{Proxy, ProxyError, ProxyOverride, SelectedProxy};
use crate::response::{ResponseBody, DEFAULT_BODY_LIMIT};

/// The default of [`BackendBuilder::max_proxy_clients`].
pub const DEFAULT_MAX_PROXY_CLIENTS: usize = 1024;
use proxy_connector::{ClientSettings, ProxyClients};

type Connector = HttpsConnector<HttpConnector<dns::Resolver>>;

/// The default HTTP backend of fastreq. See the [module docs](self).
#[derive(Clone)]
pub struct Backend {
    /// Everything, behind one `Arc`: the layers above clone the backend, and a clone is
    /// then one reference count (hyper-util's client alone holds several).
    shared: Arc<Shared>,
}

struct Shared {
    client: Client<Connector, Body>,
    redactor: Redactor,
    body_limit: usize,
    insecure: bool,
    http2_prior_knowledge: bool,
    /// One client per proxy, made on first use (hyper-util's pool key ignores the proxy).
    proxies: ProxyClients,
    /// HTTP/3 for `https` requests (`http3_prior_knowledge`).
    #[cfg(feature = "http3")]
    h3: Option<http3::H3Client>,
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("body_limit", &self.shared.body_limit)
            .field("danger_accept_invalid_certs", &self.shared.insecure)
            .field("http2_prior_knowledge", &self.shared.http2_prior_knowledge)
            .field("http3_prior_knowledge", &self.is_http3())
            .field("proxy_clients", &self.shared.proxies.len())
            .finish_non_exhaustive()
    }
}

impl Default for Backend {
    fn default() -> Self {
        Backend::new()
    }
}

impl Backend {
    /// A backend with the default settings (see [`BackendBuilder`]).
    pub fn new() -> Backend {
        Backend::builder()
            .build()
            .expect("the default backend configuration is valid")
    }

    /// A builder to configure a backend.
    pub fn builder() -> BackendBuilder {
        BackendBuilder::default()
    }

    /// The redactor used for URLs in this backend's errors.
    pub fn redactor(&self) -> &Redactor {
        &self.shared.redactor
    }

    /// How many per-proxy clients (each with its own connection pool) are alive now; at
    /// most [`BackendBuilder::max_proxy_clients`].
    pub fn proxy_clients(&self) -> usize {
        self.shared.proxies.len()
    }

    /// The response body cap, stamped on responses as [`BodyLimit`] when it is not the
    /// default.
    pub fn body_limit(&self) -> usize {
        self.shared.body_limit
    }

    /// Whether `https` requests go over HTTP/3 ([`BackendBuilder::http3_prior_knowledge`]).
    pub fn is_http3(&self) -> bool {
        #[cfg(feature = "http3")]
        return self.shared.h3.is_some();
        #[cfg(not(feature = "http3"))]
        false
    }

    /// How many origins have an HTTP/3 (QUIC) connection, open or being made: one per
    /// origin at most. Always 0 without [`http3_prior_knowledge`](BackendBuilder::http3_prior_knowledge).
    pub fn http3_connections(&self) -> usize {
        #[cfg(feature = "http3")]
        return self.shared.h3.as_ref().map_or(0, |h3| h3.connections());
        #[cfg(not(feature = "http3"))]
        0
    }
}

/// Configures a [`Backend`].
///
/// | option | default |
/// |---|---|
/// | [`connect_timeout`](Self::connect_timeout) | 10 s |
/// | [`pool_idle_timeout`](Self::pool_idle_timeout) | 90 s |
/// | [`pool_max_idle_per_host`](Self::pool_max_idle_per_host) | unbounded |
/// | [`max_proxy_clients`](Self::max_proxy_clients) | 1,024 |
/// | [`http1_only`](Self::http1_only) / [`http2_prior_knowledge`](Self::http2_prior_knowledge) | HTTP/1.1 and HTTP/2 by ALPN; plain http uses HTTP/1.1 |
/// | [`http3_prior_knowledge`](Self::http3_prior_knowledge) | off (feature `http3`) |
/// | [`tcp_nodelay`](Self::tcp_nodelay) | on |
/// | [`proxy_handshake_timeout`](Self::proxy_handshake_timeout) | 10 s |
/// | [`tls_built_in_root_certs`](Self::tls_built_in_root_certs) | on (feature `webpki-roots`) |
/// | [`tls_session_cache`](Self::tls_session_cache) | sessions of 1,024 servers |
/// | [`body_limit`](Self::body_limit) | 64 MiB |
/// | [`redact_query_params`](Self::redact_query_params) | [`DEFAULT_REDACTED_PARAMS`](crate::DEFAULT_REDACTED_PARAMS) |
#[must_use]
pub struct BackendBuilder {
    connect_timeout: Option<Duration>,
    pool_idle_timeout: Option<Duration>,
    pool_max_idle_per_host: usize,
    max_proxy_clients: usize,
    http1: bool,
    http2: bool,
    http2_prior_knowledge: bool,
    http3: bool,
    nodelay: bool,
    proxy_handshake_timeout: Option<Duration>,
    overrides: HashMap<String, Vec<SocketAddr>>,
    tls: tls::TlsOptions,
    body_limit: usize,
    redactor: Redactor,
    error: Option<Error>,
}

impl Default for BackendBuilder {
    fn default() -> Self {
        BackendBuilder {
            connect_timeout: Some(Duration::from_secs(10)),
            pool_idle_timeout: Some(Duration::from_secs(90)),
            pool_max_idle_per_host: usize::MAX,
            max_proxy_clients: DEFAULT_MAX_PROXY_CLIENTS,
            http1: true,
            http2: cfg!(feature = "http2"),
            http2_prior_knowledge: false,
            http3: false,
            nodelay: true,
            proxy_handshake_timeout: Some(Duration::from_secs(10)),
            overrides: HashMap::new(),
            tls: tls::TlsOptions {
                built_in_roots: true,
                native_roots: false,
                extra_roots: Vec::new(),
                accept_invalid_certs: false,
                session_cache_hosts: DEFAULT_TLS_SESSION_CACHE,
            },
            body_limit: DEFAULT_BODY_LIMIT,
            redactor: Redactor::default(),
            error: None,
        }
    }
}

impl fmt::Debug for BackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendBuilder")
            .field("connect_timeout", &self.connect_timeout)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("http1", &self.http1)
            .field("http2", &self.http2)
            .field("http2_prior_knowledge", &self.http2_prior_knowledge)
            .field("http3_prior_knowledge", &self.http3)
            .field("proxy_handshake_timeout", &self.proxy_handshake_timeout)
            .field("resolve", &self.overrides)
            .field(
                "danger_accept_invalid_certs",
                &self.tls.accept_invalid_certs,
            )
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

impl BackendBuilder {
    fn fail(mut self, err: Error) -> Self {
        if self.error.is_none() {
            self.error = Some(err);
        }
        self
    }

    /// Timeout for establishing a TCP connection (default 10 s; `None` for none).
    /// A zero duration is a configuration error.
    pub fn connect_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        let timeout = timeout.into();
        if timeout == Some(Duration::ZERO) {
            return self.fail(Error::config("connect_timeout must be greater than zero"));
        }
        self.connect_timeout = timeout;
        self
    }

    /// How long an idle pooled connection is kept (default 90 s; `None` keeps it forever).
    pub fn pool_idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.pool_idle_timeout = timeout.into();
        self
    }

    /// At most this many idle connections kept per host (default unbounded; 0 disables
    /// keep-alive reuse).
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool_max_idle_per_host = max;
        self
    }

    /// At most `max` per-proxy clients (each with its own connection pool) alive at once
    /// (default 1,024; 0 is raised to 1).
    ///
    /// Requests through a proxy use a client of that proxy's own, made on first use. When a
    /// new proxy needs one and `max` are alive, the least recently used is dropped: its
    /// requests in flight finish, then its idle connections close. Rotating through more
    /// proxies than `max` still works, with fewer reused connections; raise it when your
    /// list is longer and you want every proxy's connections kept warm.
    pub fn max_proxy_clients(mut self, max: usize) -> Self {
        self.max_proxy_clients = max.max(1);
        self
    }

    /// Use HTTP/1.1 only (no HTTP/2, not even when the server offers it by ALPN).
    pub fn http1_only(mut self) -> Self {
        self.http1 = true;
        self.http2 = false;
        self.http2_prior_knowledge = false;
        self
    }

    /// Use HTTP/2 only: h2c with prior knowledge for `http://`, ALPN `h2` for `https://`.
    ///
    /// Needs feature `http2`.
    pub fn http2_prior_knowledge(mut self) -> Self {
        if !cfg!(feature = "http2") {
            return self.fail(Error::config(
                "http2_prior_knowledge needs the `http2` feature of fastreq",
            ));
        }
        self.http1 = false;
        self.http2 = true;
        self.http2_prior_knowledge = true;
        self
    }

    /// Sends `https` requests over HTTP/3 (QUIC, UDP) with prior knowledge that the origins
    /// speak it; `http` requests still go over TCP (HTTP/1.1, or h2c with
    /// [`http2_prior_knowledge`](Self::http2_prior_knowledge)). Needs feature `http3`.
    ///
    /// One QUIC connection per origin carries all its concurrent requests. The TLS options
    /// (roots, [`danger_accept_invalid_certs`](Self::danger_accept_invalid_certs)), the
    /// [`resolve`](Self::resolve) overrides, the [`connect_timeout`](Self::connect_timeout)
    /// (covering the QUIC and TLS handshake) and the
    /// [`pool_idle_timeout`](Self::pool_idle_timeout) (the QUIC idle timeout) apply.
    /// Responses have [`Version::HTTP_3`](http::Version::HTTP_3). An `https` request that
    /// must go through a proxy fails with a [`Config`](ErrorKind::Config) error: QUIC
    /// cannot be tunnelled through HTTP or SOCKS proxies.
    pub fn http3_prior_knowledge(mut self) -> Self {
        if !cfg!(feature = "http3") {
            return self.fail(Error::config(
                "http3_prior_knowledge needs the `http3` feature of fastreq",
            ));
        }
        self.http3 = true;
        self
    }

    /// Timeout for getting a connection through a proxy: connecting to the proxy and the
    /// `CONNECT` or SOCKS handshake (default 10 s; `None` for none). When it passes, the
    /// request fails with a [`Timeout`](ErrorKind::Timeout) error marked with a
    /// [`ProxyError`], which counts against the proxy. A zero duration is a configuration
    /// error.
    pub fn proxy_handshake_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        let timeout = timeout.into();
        if timeout == Some(Duration::ZERO) {
            return self.fail(Error::config(
                "proxy_handshake_timeout must be greater than zero",
            ));
        }
        self.proxy_handshake_timeout = timeout;
        self
    }

    /// Sets `TCP_NODELAY` on connections (default on).
    pub fn tcp_nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }

    /// Resolves `name` to `addr` instead of asking DNS. The port of the URL is used when it
    /// has one; otherwise the port of `addr` if it is not 0, else the scheme's default.
    /// The name is matched case-insensitively.
    pub fn resolve(self, name: &str, addr: SocketAddr) -> Self {
        self.resolve_to_addrs(name, &[addr])
    }

    /// Resolves `name` to the given addresses, tried in order.
    pub fn resolve_to_addrs(mut self, name: &str, addrs: &[SocketAddr]) -> Self {
        if addrs.is_empty() {
            return self.fail(Error::config(format!(
                "resolve override for `{name}` has no address"
            )));
        }
        self.overrides
            .insert(name.to_ascii_lowercase(), addrs.to_vec());
        self
    }

    /// Trusts the bundled Mozilla root certificates (default on, feature `webpki-roots`).
    pub fn tls_built_in_root_certs(mut self, on: bool) -> Self {
        self.tls.built_in_roots = on;
        self
    }

    /// Also trusts the operating system's certificate store (feature `native-roots`).
    #[cfg(feature = "native-roots")]
    pub fn tls_native_root_certs(mut self, on: bool) -> Self {
        self.tls.native_roots = on;
        self
    }

    /// Trusts an extra root certificate (for example a test server's self-signed one).
    pub fn add_root_certificate(mut self, cert: Certificate) -> Self {
        self.tls.extra_roots.push(cert);
        self
    }

    /// How many servers' TLS sessions to remember for resumption (default
    /// [`DEFAULT_TLS_SESSION_CACHE`], 1,024; `0` turns resumption off).
    ///
    /// A new connection to a server whose session is remembered resumes it (TLS 1.3
    /// tickets, or TLS 1.2 session ids and tickets): an abbreviated handshake in which no
    /// certificate is sent, verified or signed for.
    /// rustls's own default remembers 32 servers, which a crawl over many hosts cycles
    /// through before it comes back to one, so almost every reconnect was a full
    /// handshake. The cache is shared by every connection of this backend (and of its
    /// clones and per-proxy clients); the least recently added server is evicted first, and
    /// each server costs a few KiB at most (up to 8 tickets of ~200 bytes).
    ///
    /// The TLS configuration also offers AES-128-GCM ahead of AES-256-GCM (the ring
    /// provider lists AES-256 first): the server picks, and the 128-bit suite is cheaper
    /// per record at the same 128-bit security level TLS asks of its key exchange.
    pub fn tls_session_cache(mut self, hosts: usize) -> Self {
        self.tls.session_cache_hosts = hosts;
        self
    }

    /// **Dangerous**: accepts any TLS certificate, valid or not, for any name.
    ///
    /// Anyone on the path can read and change the traffic. Such a backend has its own
    /// connection pool; it never shares connections with a verifying backend.
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.tls.accept_invalid_certs = accept;
        self
    }

    /// Cap on a response body read through [`ResponseExt`](crate::ResponseExt) or into a
    /// [`Fetched`](crate::Fetched) (default 64 MiB). Zero is a configuration error.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        if bytes == 0 {
            return self.fail(Error::config("body_limit must be greater than zero"));
        }
        self.body_limit = bytes;
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

    /// Builds the backend, or returns the first configuration error.
    pub fn build(self) -> Result<Backend, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let tls = tls::client_config(&self.tls)?;
        #[cfg(feature = "http3")]
        let h3 = if self.http3 {
            Some(http3::H3Client::new(http3::H3Settings {
                tls: tls.clone(),
                resolver: dns::Resolver::new(self.overrides.clone()),
                connect_timeout: self.connect_timeout,
                idle_timeout: self.pool_idle_timeout,
                redactor: self.redactor.clone(),
            })?)
        } else {
            None
        };
        let settings = ClientSettings {
            tls,
            resolver: dns::Resolver::new(self.overrides),
            connect_timeout: self.connect_timeout,
            nodelay: self.nodelay,
            handshake_timeout: self.proxy_handshake_timeout,
            http1: self.http1,
            http2: self.http2,
            http2_prior_knowledge: self.http2_prior_knowledge,
            pool_idle_timeout: self.pool_idle_timeout,
            pool_max_idle_per_host: self.pool_max_idle_per_host,
            max_proxy_clients: self.max_proxy_clients,
        };
        let connector: Connector = settings.https(settings.http_connector());
        let client = settings.client(connector);

        Ok(Backend {
            shared: Arc::new(Shared {
                client,
                redactor: self.redactor,
                body_limit: self.body_limit,
                insecure: self.tls.accept_invalid_certs,
                http2_prior_knowledge: self.http2_prior_knowledge,
                proxies: ProxyClients::new(settings),
                #[cfg(feature = "http3")]
                h3,
            }),
        })
    }
}

/// Checks what hyper-util would reject with an opaque error.
fn check_request(req: &Request<Body>) -> Result<(), String> {
    let uri = req.uri();
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(other) => {
            return Err(format!(
                "unsupported scheme `{other}` (only http and https)"
            ))
        }
        None => return Err("the URL must be absolute (scheme and host)".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(())
}

impl Service<Request<Body>> for Backend {
    type Response = Response<ResponseBody>;
    type Error = Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // hyper-util's client is always ready; backpressure comes from the layers above.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Body>) -> ResponseFuture {
        let uri = req.uri().clone();
        if let Err(why) = check_request(&req) {
            return ResponseFuture::error(
                Error::invalid_request(why).with_url_redacted(&uri, &self.shared.redactor),
            );
        }
        let timeout = req.extensions().get::<RequestTimeout>().map(|t| t.0);
        let body_limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(self.shared.body_limit, |l| l.0);
        #[cfg(feature = "http3")]
        if let Some(h3) = &self.shared.h3 {
            if uri.scheme_str() == Some("https") {
                if let Some(proxy) = route(&req) {
                    return ResponseFuture::error(
                        Error::config(
                            "an HTTP/3 request cannot go through a proxy (QUIC is UDP): \
                             build a backend without http3_prior_knowledge for proxied requests",
                        )
                        .with_proxy(proxy)
                        .with_url_redacted(&uri, &self.shared.redactor),
                    );
                }
                return ResponseFuture::boxed(h3.request(req, timeout, body_limit));
            }
        }
        let (fut, via) = match route(&req) {
            // The hot path: no proxy, no lookup.
            None => (self.shared.client.request(req), None),
            Some(proxy) => {
                let proxies = &self.shared.proxies;
                let forward = proxies.settings().forwards(&proxy, &uri);
                if forward {
                    // Absolute form to the proxy: it reads (and strips) Proxy-Authorization.
                    if let Some(auth) = proxy.authorization() {
                        req.headers_mut()
                            .entry(PROXY_AUTHORIZATION)
                            .or_insert_with(|| auth.clone());
                    }
                } else {
                    // Through a tunnel or SOCKS the headers reach the origin: never this one.
                    req.headers_mut().remove(PROXY_AUTHORIZATION);
                }
                let fut = proxies.request(&proxy, req);
                (fut, Some(Box::new(Via { proxy, forward })))
            }
        };
        ResponseFuture {
            state: State::Pending { fut },
            sleep: timeout.map(|t| Box::pin(tokio::time::sleep(t))),
            timeout,
            uri: Some(uri),
            body_limit,
            shared: Some(self.shared.clone()),
            via,
        }
    }
}

/// The proxy a request must go through: its [`ProxyOverride`], else its [`SelectedProxy`].
#[inline]
fn route(req: &Request<Body>) -> Option<Proxy> {
    let ext = req.extensions();
    match ext.get::<ProxyOverride>() {
        Some(ProxyOverride(choice)) => choice.clone(),
        None => ext.get::<SelectedProxy>().map(|s| s.0.clone()),
    }
}

/// How a request was proxied.
struct Via {
    proxy: Proxy,
    /// Sent to an HTTP proxy in absolute form (its 407 is a proxy failure).
    forward: bool,
}

pin_project! {
    /// The response future of [`Backend`].
    pub struct ResponseFuture {
        #[pin]
        state: State,
        // Boxed: only per-request timeouts use it, and inline it would triple the
        // future's size for every request.
        sleep: Option<Pin<Box<tokio::time::Sleep>>>,
        timeout: Option<Duration>,
        uri: Option<Uri>,
        body_limit: usize,
        shared: Option<Arc<Shared>>,
        via: Option<Box<Via>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State {
        Pending { #[pin] fut: hyper_util::client::legacy::ResponseFuture },
        Boxed { fut: BoxedResponse },
        Error { error: Option<Error> },
    }
}

/// A response future made elsewhere (HTTP/3), complete with its errors' URL.
type BoxedResponse = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Error>> + Send>>;

impl ResponseFuture {
    #[cfg_attr(not(feature = "http3"), allow(dead_code))]
    fn boxed(fut: BoxedResponse) -> Self {
        ResponseFuture {
            state: State::Boxed { fut },
            sleep: None,
            timeout: None,
            uri: None,
            body_limit: 0,
            shared: None,
            via: None,
        }
    }

    fn error(error: Error) -> Self {
        ResponseFuture {
            state: State::Error { error: Some(error) },
            sleep: None,
            timeout: None,
            uri: None,
            body_limit: 0,
            shared: None,
            via: None,
        }
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("backend::ResponseFuture")
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let fut = match this.state.project() {
            StateProj::Error { error } => {
                return Poll::Ready(Err(error.take().expect("polled after completion")))
            }
            StateProj::Boxed { fut } => return fut.as_mut().poll(cx),
            StateProj::Pending { fut } => fut,
        };
        let result = match fut.poll(cx) {
            Poll::Ready(r) => r,
            Poll::Pending => {
                if let Some(sleep) = this.sleep.as_mut() {
                    if sleep.as_mut().poll(cx).is_ready() {
                        let shared = this.shared.as_ref().expect("set when pending");
                        let mut err = Error::new(ErrorKind::Timeout).with_message(format!(
                            "no response headers within {:?}",
                            this.timeout.unwrap_or_default()
                        ));
                        if let Some(uri) = this.uri.as_ref() {
                            err = err.with_url_redacted(uri, &shared.redactor);
                        }
                        if let Some(via) = this.via.as_ref() {
                            err = err.with_proxy(via.proxy.clone());
                        }
                        return Poll::Ready(Err(err));
                    }
                }
                return Poll::Pending;
            }
        };
        let uri = this.uri.take().expect("polled after completion");
        let shared = this.shared.as_ref().expect("set when pending");
        Poll::Ready(match result {
            Ok(resp) => {
                let (mut parts, body) = resp.into_parts();
                if let Some(via) = this.via.take() {
                    if via.forward && parts.status == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
                        let err = ProxyError::new(
                            &via.proxy,
                            ErrorKind::Proxy,
                            "answered 407 Proxy Authentication Required",
                        )
                        .into_error();
                        return Poll::Ready(Err(err.with_url_redacted(&uri, &shared.redactor)));
                    }
                    parts.extensions.insert(FinalUrl(uri));
                    if *this.body_limit != DEFAULT_BODY_LIMIT {
                        parts.extensions.insert(BodyLimit(*this.body_limit));
                    }
                    // Errors reading the body name the proxy too.
                    let body = ResponseBody::new(ProxiedBody {
                        inner: body,
                        proxy: via.proxy.clone(),
                    });
                    parts.extensions.insert(SelectedProxy(via.proxy));
                    return Poll::Ready(Ok(Response::from_parts(parts, body)));
                }
                parts.extensions.insert(FinalUrl(uri));
                // Readers take the default when it is absent: one allocation less.
                if *this.body_limit != DEFAULT_BODY_LIMIT {
                    parts.extensions.insert(BodyLimit(*this.body_limit));
                }
                Ok(Response::from_parts(parts, ResponseBody::hyper(body)))
            }
            Err(e) => {
                let err = classify(e).with_url_redacted(&uri, &shared.redactor);
                Err(match this.via.as_ref() {
                    Some(via) if err.proxy().is_none() => err.with_proxy(via.proxy.clone()),
                    _ => err,
                })
            }
        })
    }
}

pin_project! {
    /// The body of a response through a proxy: its errors name the proxy.
    struct ProxiedBody {
        #[pin]
        inner: hyper::body::Incoming,
        proxy: Proxy,
    }
}

impl http_body::Body for ProxiedBody {
    type Data = bytes::Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Error>>> {
        let this = self.project();
        this.inner.poll_frame(cx).map(|frame| {
            frame.map(|r| {
                r.map_err(|e| crate::response::hyper_body_error(e).with_proxy(this.proxy.clone()))
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Maps a hyper-util client error to a fastreq error kind.
fn classify(err: hyper_util::client::legacy::Error) -> Error {
    // A failure of the proxy, or a fastreq error from a connector, says it best.
    if let Some(pe) = ProxyError::find(&err) {
        let message = pe.to_string();
        return Error::new(pe.kind()).with_message(message).with_source(err);
    }
    let mut ours = None;
    crate::error::visit_chain(&err, &mut |e| {
        if let Some(fe) = e.downcast_ref::<Error>() {
            if ours.is_none() {
                ours = Some((fe.kind(), fe.message().map(str::to_owned)));
            }
        }
    });
    if let Some((kind, message)) = ours {
        let mut e = Error::new(kind);
        if let Some(m) = message {
            e = e.with_message(m);
        }
        return e.with_source(err);
    }
    let mut kind = None;
    let mut message = None;
    let mut timed_out = false;
    crate::error::visit_chain(&err, &mut |e| {
        if e.is::<rustls::Error>() {
            kind.get_or_insert(ErrorKind::Tls);
            message.get_or_insert_with(|| format!("TLS handshake failed: {e}"));
        } else if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                timed_out = true;
            }
        } else if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_timeout() {
                timed_out = true;
            }
        }
    });
    let kind = match kind {
        Some(k) => k,
        None if timed_out => ErrorKind::Timeout,
        None if err.is_connect() => ErrorKind::Connect,
        None => ErrorKind::Io,
    };
    let message = message.unwrap_or_else(|| {
        let mut m = match kind {
            ErrorKind::Timeout if err.is_connect() => "connect timed out".to_owned(),
            ErrorKind::Connect => "could not connect".to_owned(),
            _ => "request failed".to_owned(),
        };
        // The innermost cause says the most ("Connection refused", "connection reset").
        let mut last = None;
        crate::error::visit_chain(&err, &mut |e| last = Some(e.to_string()));
        if let Some(l) = last {
            m.push_str(": ");
            m.push_str(&l);
        }
        m
    });
    Error::new(kind).with_message(message).with_source(err)
}
