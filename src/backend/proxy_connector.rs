//! Connecting through proxies: HTTP forward (absolute form), HTTP `CONNECT` tunnels (hyper-util
//! `Tunnel`), SOCKS5 / SOCKS4 (hyper-util `SocksV5` / `SocksV4`), one client per proxy.
//!
//! Traps of hyper-util 0.1.21 handled here:
//! - `Tunnel` and the SOCKS connectors assume port 443 for a URI without a port: every target
//!   handed to them carries its scheme's port explicitly;
//! - `SocksV5`'s `Debug` prints the password: those connectors are built per connection and
//!   never formatted;
//! - no timeout covers the `CONNECT` / SOCKS handshake: the whole proxy connection runs under
//!   the proxy handshake timeout, counted against the proxy;
//! - a refused tunnel does not say its status: the first bytes the proxy sends are kept
//!   during the handshake and the status line is recovered from them;
//! - `local_dns` resolves with a blocking call on the runtime thread: names for `socks5` and
//!   `socks4` are resolved first with fastreq's resolver (blocking pool, overrides honoured)
//!   and the SOCKS connector only ever sees an IP address.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::rt::{Read, ReadBuf, ReadBufCursor, Write};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::proxy::{SocksV4, SocksV5, Tunnel};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower::ServiceExt;
use tower_service::Service;

use super::dns;
use crate::body::Body;
use crate::error::{BoxError, Error, ErrorKind};
use crate::proxy::{Proxy, ProxyError, ProxyScheme};

/// Connections to the proxy itself (TLS only for `https` proxies, ALPN http/1.1).
type ToProxyConnector = HttpsConnector<HttpConnector<dns::Resolver>>;
type BaseStream = MaybeHttpsStream<TokioIo<TcpStream>>;
/// The connector of a per-proxy client: TLS to `https://` targets over the proxy stream.
pub(crate) type ProxyConnector = HttpsConnector<ProxyHandshake>;
pub(crate) type ProxyClient = Client<ProxyConnector, Body>;

/// Everything needed to build a per-proxy client like the backend's direct one.
pub(crate) struct ClientSettings {
    pub(crate) tls: rustls::ClientConfig,
    pub(crate) resolver: dns::Resolver,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) nodelay: bool,
    pub(crate) handshake_timeout: Option<Duration>,
    pub(crate) http1: bool,
    pub(crate) http2: bool,
    pub(crate) http2_prior_knowledge: bool,
    pub(crate) pool_idle_timeout: Option<Duration>,
    pub(crate) pool_max_idle_per_host: usize,
    /// At most this many per-proxy clients alive at once (least recently used dropped).
    pub(crate) max_proxy_clients: usize,
}

impl ClientSettings {
    pub(crate) fn http_connector(&self) -> HttpConnector<dns::Resolver> {
        let mut http = HttpConnector::new_with_resolver(self.resolver.clone());
        http.enforce_http(false);
        http.set_connect_timeout(self.connect_timeout);
        http.set_nodelay(self.nodelay);
        http
    }

    /// Wraps `inner` in TLS for `https://` targets, with ALPN per the HTTP version settings.
    pub(crate) fn https<H>(&self, inner: H) -> HttpsConnector<H> {
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(self.tls.clone())
            .https_or_http();
        match (self.http1, self.http2) {
            #[cfg(feature = "http2")]
            (true, true) => builder.enable_all_versions().wrap_connector(inner),
            #[cfg(feature = "http2")]
            (false, true) => builder.enable_http2().wrap_connector(inner),
            _ => builder.enable_http1().wrap_connector(inner),
        }
    }

    pub(crate) fn client<C>(&self, connector: C) -> Client<C, Body>
    where
        C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
    {
        use hyper_util::rt::{TokioExecutor, TokioTimer};
        let mut client = Client::builder(TokioExecutor::new());
        client
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host);
        #[cfg(feature = "http2")]
        if self.http2_prior_knowledge {
            client.http2_only(true);
        }
        client.build(connector)
    }

    /// Whether a plain `http://` target goes to an HTTP(S) proxy in absolute form (else
    /// through a tunnel: h2c with prior knowledge cannot be forwarded).
    pub(crate) fn forwards(&self, proxy: &Proxy, target: &Uri) -> bool {
        matches!(proxy.scheme(), ProxyScheme::Http | ProxyScheme::Https)
            && target.scheme() == Some(&http::uri::Scheme::HTTP)
            && !self.http2_prior_knowledge
    }

    fn proxy_client(&self, proxy: &Proxy) -> ProxyClient {
        let to_proxy = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(self.tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(self.http_connector());
        let handshake = ProxyHandshake {
            proxy: proxy.clone(),
            to_proxy,
            resolver: self.resolver.clone(),
            timeout: self.handshake_timeout,
            tunnel_plain_http: self.http2_prior_knowledge,
        };
        self.client(self.https(handshake))
    }
}

/// One client per proxy, created on first use; at most `max_proxy_clients` of them.
///
/// When a new proxy needs a client and the map is full, the least recently used client is
/// dropped. Requests already sent through it keep their own handle on it and finish; once
/// they are done its pool, and with it every idle connection to that proxy, is closed. So a
/// rotation over 100,000 proxies of a rotating provider keeps memory and sockets bounded.
pub(crate) struct ProxyClients {
    settings: ClientSettings,
    clients: RwLock<HashMap<Proxy, ProxyEntry>>,
    /// A logical clock for "least recently used".
    tick: AtomicU64,
}

struct ProxyEntry {
    client: ProxyClient,
    last_used: AtomicU64,
}

impl ProxyClients {
    pub(crate) fn new(settings: ClientSettings) -> Self {
        ProxyClients {
            settings,
            clients: RwLock::new(HashMap::new()),
            tick: AtomicU64::new(0),
        }
    }

    pub(crate) fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// Sends `req` with the client of `proxy`.
    pub(crate) fn request(
        &self,
        proxy: &Proxy,
        req: http::Request<Body>,
    ) -> hyper_util::client::legacy::ResponseFuture {
        let now = self.tick.fetch_add(1, Ordering::Relaxed);
        {
            let clients = self.clients.read().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = clients.get(proxy) {
                entry.last_used.store(now, Ordering::Relaxed);
                return entry.client.request(req);
            }
        }
        let mut clients = self.clients.write().unwrap_or_else(|e| e.into_inner());
        if !clients.contains_key(proxy) {
            while clients.len() >= self.settings.max_proxy_clients.max(1) {
                let oldest = clients
                    .iter()
                    .min_by_key(|(_, e)| e.last_used.load(Ordering::Relaxed))
                    .map(|(p, _)| p.clone());
                match oldest {
                    Some(p) => {
                        clients.remove(&p);
                    }
                    None => break,
                }
            }
        }
        let entry = clients.entry(proxy.clone()).or_insert_with(|| ProxyEntry {
            client: self.settings.proxy_client(proxy),
            last_used: AtomicU64::new(now),
        });
        entry.last_used.store(now, Ordering::Relaxed);
        entry.client.request(req)
    }

    /// The number of per-proxy clients alive now.
    pub(crate) fn len(&self) -> usize {
        self.clients.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// What happened on the way to the proxy, for error messages.
#[derive(Default)]
struct Trace {
    state: Mutex<TraceState>,
}

#[derive(Default)]
struct TraceState {
    connected: bool,
    connect_error: Option<(String, bool)>,
    /// The first bytes the proxy sent (only while recording, at most `RECORD_LIMIT`).
    received: Vec<u8>,
}

const RECORD_LIMIT: usize = 1024;

impl Trace {
    fn lock(&self) -> std::sync::MutexGuard<'_, TraceState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A connection to a proxy (or through one).
pub(crate) struct ProxyStream {
    io: BaseStream,
    proxied: bool,
    record: Option<Arc<Trace>>,
}

impl fmt::Debug for ProxyStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyStream")
            .field("proxied", &self.proxied)
            .finish_non_exhaustive()
    }
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        let connected = self.io.connected();
        if self.proxied {
            connected.proxy(true)
        } else {
            connected
        }
    }
}

impl Read for ProxyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(trace) = &this.record {
            let mut tmp = [0u8; 512];
            let n = buf.remaining().min(tmp.len());
            let mut rb = ReadBuf::new(&mut tmp[..n]);
            ready!(Pin::new(&mut this.io).poll_read(cx, rb.unfilled()))?;
            let filled = rb.filled();
            {
                let mut state = trace.lock();
                let room = RECORD_LIMIT.saturating_sub(state.received.len());
                let keep = filled.len().min(room);
                state.received.extend_from_slice(&filled[..keep]);
            }
            buf.put_slice(filled);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl Write for ProxyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

/// Connects to the proxy itself and notes the outcome in a [`Trace`].
#[derive(Clone)]
struct ToProxy {
    inner: ToProxyConnector,
    trace: Arc<Trace>,
    record: bool,
}

impl Service<Uri> for ToProxy {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let fut = self.inner.call(uri);
        let trace = self.trace.clone();
        let record = self.record;
        Box::pin(async move {
            match fut.await {
                Ok(io) => {
                    trace.lock().connected = true;
                    Ok(ProxyStream {
                        io,
                        proxied: false,
                        record: record.then_some(trace),
                    })
                }
                Err(e) => {
                    let timed_out = chain_has_timeout(&*e);
                    trace.lock().connect_error = Some((innermost(&*e), timed_out));
                    Err(e)
                }
            }
        })
    }
}

/// Establishes a connection through one proxy to the target URI it is called with.
#[derive(Clone)]
pub(crate) struct ProxyHandshake {
    proxy: Proxy,
    to_proxy: ToProxyConnector,
    resolver: dns::Resolver,
    timeout: Option<Duration>,
    tunnel_plain_http: bool,
}

impl fmt::Debug for ProxyHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyHandshake")
            .field("proxy", &self.proxy)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Service<Uri> for ProxyHandshake {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let trace = Arc::new(Trace::default());
            let fut = this.handshake(dst, trace.clone());
            match this.timeout {
                None => fut.await,
                Some(limit) => match tokio::time::timeout(limit, fut).await {
                    Ok(r) => r,
                    Err(elapsed) => {
                        let what = if trace.lock().connected {
                            format!("{} handshake not finished within {limit:?}", this.kind())
                        } else {
                            format!("no connection to the proxy within {limit:?}")
                        };
                        Err(ProxyError::new(&this.proxy, ErrorKind::Timeout, what)
                            .with_source(elapsed)
                            .into())
                    }
                },
            }
        })
    }
}

impl ProxyHandshake {
    fn kind(&self) -> &'static str {
        match self.proxy.scheme() {
            ProxyScheme::Socks5 | ProxyScheme::Socks5h => "SOCKS5",
            ProxyScheme::Socks4 => "SOCKS4",
            _ => "CONNECT",
        }
    }

    fn to_proxy(&self, trace: &Arc<Trace>, record: bool) -> ToProxy {
        ToProxy {
            inner: self.to_proxy.clone(),
            trace: trace.clone(),
            record,
        }
    }

    async fn handshake(&self, dst: Uri, trace: Arc<Trace>) -> Result<ProxyStream, BoxError> {
        let https = dst.scheme() == Some(&http::uri::Scheme::HTTPS);
        let host = dst
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::invalid_request("the URL has no host"))?
            .to_owned();
        // hyper-util's proxy connectors take 443 for a URI without a port: always give one.
        let port = dst.port_u16().unwrap_or(if https { 443 } else { 80 });
        let proxy = &self.proxy;
        let proxy_uri = proxy.connect_uri().clone();

        match proxy.scheme() {
            ProxyScheme::Http | ProxyScheme::Https if !https && !self.tunnel_plain_http => {
                // Plain http through an HTTP proxy: absolute-form requests on a connection
                // to the proxy (the backend adds Proxy-Authorization).
                let mut stream = self
                    .to_proxy(&trace, false)
                    .oneshot(proxy_uri)
                    .await
                    .map_err(|e| connect_failure(proxy, &trace, e))?;
                stream.proxied = true;
                Ok(stream)
            }
            ProxyScheme::Http | ProxyScheme::Https => {
                let target = target_uri(&host, port)?;
                let mut tunnel = Tunnel::new(proxy_uri, self.to_proxy(&trace, true));
                if let Some(auth) = proxy.authorization() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                match tunnel.oneshot(target).await {
                    Ok(mut stream) => {
                        stream.record = None;
                        Ok(stream)
                    }
                    Err(e) => Err(tunnel_failure(proxy, &host, port, &trace, e).into()),
                }
            }
            ProxyScheme::Socks5 | ProxyScheme::Socks5h => {
                let target_host = if proxy.scheme() == ProxyScheme::Socks5h {
                    host.clone()
                } else {
                    ip_host(self.resolve(&host, false).await?)
                };
                let target = target_uri(&target_host, port)?;
                let mut socks = SocksV5::new(proxy_uri, self.to_proxy(&trace, false));
                if let Some((user, pass)) = proxy.credentials() {
                    socks = socks.with_auth(user.to_owned(), pass.to_owned());
                }
                // Never format `socks`: its Debug prints the password.
                socks
                    .oneshot(target)
                    .await
                    .map_err(|e| socks_failure(proxy, "SOCKS5", &trace, e).into())
            }
            ProxyScheme::Socks4 => {
                let target_host = ip_host(self.resolve(&host, true).await?);
                let target = target_uri(&target_host, port)?;
                SocksV4::new(proxy_uri, self.to_proxy(&trace, false))
                    .oneshot(target)
                    .await
                    .map_err(|e| socks_failure(proxy, "SOCKS4", &trace, e).into())
            }
        }
    }

    /// Resolves the target for `socks5` / `socks4` with fastreq's resolver (overrides, blocking
    /// pool), never with the SOCKS connectors' blocking `local_dns`.
    async fn resolve(&self, host: &str, v4_only: bool) -> Result<IpAddr, Error> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            if v4_only && ip.is_ipv6() {
                return Err(Error::invalid_request(format!(
                    "SOCKS4 cannot reach the IPv6 address {host}"
                )));
            }
            return Ok(ip);
        }
        let fail = |why: String| {
            Error::new(ErrorKind::Connect).with_message(format!("could not resolve {host}: {why}"))
        };
        let name = Name::from_str(bare).map_err(|e| fail(e.to_string()))?;
        let addrs: Vec<SocketAddr> = self
            .resolver
            .clone()
            .oneshot(name)
            .await
            .map_err(|e| fail(innermost(&*e)))?
            .collect();
        addrs
            .iter()
            .map(SocketAddr::ip)
            .find(|ip| !v4_only || ip.is_ipv4())
            .ok_or_else(|| {
                fail(if v4_only {
                    "no IPv4 address (SOCKS4 needs one)".to_owned()
                } else {
                    "no address".to_owned()
                })
            })
    }
}

fn ip_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

fn target_uri(host: &str, port: u16) -> Result<Uri, Error> {
    format!("http://{host}:{port}/")
        .parse()
        .map_err(|e| Error::invalid_request(format!("invalid target {host}:{port}: {e}")))
}

fn connect_failure(proxy: &Proxy, trace: &Trace, err: BoxError) -> BoxError {
    let (why, timed_out) = trace
        .lock()
        .connect_error
        .clone()
        .unwrap_or_else(|| (innermost(&*err), chain_has_timeout(&*err)));
    let (kind, message) = if timed_out {
        (
            ErrorKind::Timeout,
            format!("connecting to the proxy timed out: {why}"),
        )
    } else {
        (ErrorKind::Proxy, format!("could not connect: {why}"))
    };
    ProxyError::new(proxy, kind, message)
        .with_source(err)
        .into()
}

fn tunnel_failure(
    proxy: &Proxy,
    host: &str,
    port: u16,
    trace: &Trace,
    err: impl std::error::Error + Send + Sync + 'static,
) -> ProxyError {
    let (connected, connect_error, status) = {
        let state = trace.lock();
        (
            state.connected,
            state.connect_error.clone(),
            status_line(&state.received),
        )
    };
    if !connected {
        let (why, timed_out) = connect_error.unwrap_or_else(|| (err.to_string(), false));
        let (kind, message) = if timed_out {
            (
                ErrorKind::Timeout,
                format!("connecting to the proxy timed out: {why}"),
            )
        } else {
            (ErrorKind::Proxy, format!("could not connect: {why}"))
        };
        return ProxyError::new(proxy, kind, message).with_source(err);
    }
    let message = match status {
        Some(status) => format!("refused the tunnel to {host}:{port}: {status}"),
        None => {
            let text = err.to_string();
            if text.contains("unexpected end of file") {
                format!("closed the connection during the CONNECT to {host}:{port}")
            } else if text.contains("io error") {
                format!(
                    "I/O error during the CONNECT to {host}:{port}: {}",
                    innermost(&err)
                )
            } else {
                format!("tunnel refused ({host}:{port}): {text}")
            }
        }
    };
    ProxyError::new(proxy, ErrorKind::Proxy, message).with_source(err)
}

fn socks_failure(
    proxy: &Proxy,
    version: &str,
    trace: &Trace,
    err: impl std::error::Error + Send + Sync + 'static,
) -> ProxyError {
    let (connected, connect_error) = {
        let state = trace.lock();
        (state.connected, state.connect_error.clone())
    };
    if !connected {
        let (why, timed_out) = connect_error.unwrap_or_else(|| (err.to_string(), false));
        let (kind, message) = if timed_out {
            (
                ErrorKind::Timeout,
                format!("connecting to the proxy timed out: {why}"),
            )
        } else {
            (ErrorKind::Proxy, format!("could not connect: {why}"))
        };
        return ProxyError::new(proxy, kind, message).with_source(err);
    }
    // Display only: the Debug of hyper-util's SOCKS errors is not ours to vouch for.
    let text = err.to_string();
    let text = text.strip_prefix("SOCKS error: ").unwrap_or(&text);
    ProxyError::new(
        proxy,
        ErrorKind::Proxy,
        format!("{version} handshake failed: {text}"),
    )
    .with_source(DisplayOnly(err.to_string()))
}

/// An error that is only its message.
struct DisplayOnly(String);

impl fmt::Debug for DisplayOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for DisplayOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DisplayOnly {}

/// `407 Proxy Authentication Required` from the start of an HTTP response, if it is one.
fn status_line(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&bytes[..end]).ok()?.trim_end();
    let rest = line.strip_prefix("HTTP/")?;
    let mut parts = rest.splitn(3, ' ');
    let _version = parts.next()?;
    let code: u16 = parts.next()?.parse().ok()?;
    let reason: String = parts
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect();
    let reason = if reason.trim().is_empty() {
        http::StatusCode::from_u16(code)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("")
            .to_owned()
    } else {
        reason.trim().to_owned()
    };
    Some(format!("{code} {reason}").trim_end().to_owned())
}

fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err.to_string();
    crate::error::visit_chain(err, &mut |e| last = e.to_string());
    last
}

fn chain_has_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut found = false;
    crate::error::visit_chain(err, &mut |e| {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            found |= io.kind() == io::ErrorKind::TimedOut;
        }
    });
    found
}

#[cfg(test)]
mod tests {
    use super::status_line;

    #[test]
    fn status_lines() {
        assert_eq!(
            status_line(b"HTTP/1.1 407 Proxy Authentication Required\r\nX: y\r\n\r\n").unwrap(),
            "407 Proxy Authentication Required"
        );
        assert_eq!(
            status_line(b"HTTP/1.0 503\r\n\r\n").unwrap(),
            "503 Service Unavailable"
        );
        assert_eq!(status_line(b"HTTP/1.1 403 \r\n").unwrap(), "403 Forbidden");
        assert_eq!(status_line(b"SSH-2.0\r\n"), None);
        assert_eq!(status_line(b"HTTP/1.1 40"), None);
    }
}
