#![allow(dead_code)]
//! Local HTTP test server shared by integration tests and benches (the examples carry their own).
//!
//! ```ignore
//! mod support; // or: #[path = "../tests/support/mod.rs"] mod support;
//! use support::{Reply, TestServer};
//!
//! let server = TestServer::start(|req| Reply::text(format!("hi {}", req.path())));
//! let url = server.url("/x"); // http://127.0.0.1:PORT/x
//! // ... run the client ...
//! assert_eq!(server.hits_for("/x"), 1);
//! ```
//!
//! * Binds only `127.0.0.1:0`; never talks to anything but loopback.
//! * Each server owns an OS thread and a tokio runtime, so it works from plain
//!   `#[test]`s, `#[tokio::test]`s, and benches alike. Dropping the
//!   [`TestServer`] stops it (bounded wait, never panics).
//! * Speaks HTTP/1.1 and h2c (prior knowledge) on the same port by default;
//!   [`TestServerBuilder::tls`] adds a self-signed certificate with ALPN `h2` + `http/1.1`.
//! * The server's clock is its own runtime's: a test using a paused tokio
//!   clock does not pause the server's `delay`s.
//! * Handlers return a [`Reply`], which can also inject delays and faults.
//!   A panicking handler is answered with `500` (counted in [`Stats::panics`]).
//! * [`route`] is a ready-made handler driven by the query string.

#[cfg(feature = "cli")]
pub mod cli;
pub mod proxy;
#[cfg(feature = "redis")]
pub mod redis;
mod reply;
mod routes;
mod stats;
mod tls;

// Not every test / bench uses every re-export.
#[allow(unused_imports)]
pub use reply::{gzip_bytes, InjectedFault, Reply, ReplyBody};
#[allow(unused_imports)]
pub use routes::{echo_text, pattern_body, route, DEFAULT_JSON};
#[allow(unused_imports)]
pub use stats::Stats;
#[allow(unused_imports)]
pub use tls::{TestCert, CERT_NAMES};

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt as _;
use http::{HeaderMap, Method, Request, Response, Uri, Version};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A fully received request, as seen by handlers.
#[derive(Debug, Clone)]
pub struct TestRequest {
    /// Request method.
    pub method: Method,
    /// Request target. Origin-form (`/p?q`) over HTTP/1, absolute over HTTP/2.
    pub uri: Uri,
    /// `HTTP/1.1`, `HTTP/2.0`, ...
    pub version: Version,
    /// Request headers. Over HTTP/2 there is usually no `host` header: the
    /// authority is in [`uri`](Self::uri).
    pub headers: HeaderMap,
    /// The whole request body.
    pub body: Bytes,
    /// Client address of the connection.
    pub peer: SocketAddr,
}

impl TestRequest {
    /// URI path, e.g. `/a/b`.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// Raw query string without `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    /// First value of query parameter `key` (percent-decoded).
    pub fn query_param(&self, key: &str) -> Option<String> {
        form_urlencoded::parse(self.uri.query()?.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    /// First value of header `name` if it is valid UTF-8/ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

type SyncHandler = dyn Fn(TestRequest) -> Reply + Send + Sync;
type AsyncHandler = dyn Fn(TestRequest) -> BoxFuture<Reply> + Send + Sync;

enum Handler {
    Sync(Box<SyncHandler>),
    Async(Box<AsyncHandler>),
}

struct Shared {
    handler: Handler,
    stats: Arc<Stats>,
    conn: auto::Builder<TokioExecutor>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocols {
    Auto,
    Http1Only,
    Http2Only,
}

/// Configures a [`TestServer`]; see [`TestServer::builder`].
#[derive(Debug, Clone)]
pub struct TestServerBuilder {
    tls: bool,
    protocols: Protocols,
    worker_threads: usize,
    track_paths: bool,
}

impl Default for TestServerBuilder {
    fn default() -> Self {
        TestServerBuilder {
            tls: false,
            protocols: Protocols::Auto,
            worker_threads: 1,
            track_paths: true,
        }
    }
}

impl TestServerBuilder {
    /// Serve HTTPS with a fresh self-signed certificate for [`CERT_NAMES`]
    /// (`localhost`, `127.0.0.1`, `a.test`, `b.test`), ALPN `h2` + `http/1.1`.
    /// Clients must trust [`TestServer::cert_der`] / [`TestServer::cert_pem`].
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Only HTTP/1.x: no h2c, and no `h2` in ALPN.
    pub fn http1_only(mut self) -> Self {
        self.protocols = Protocols::Http1Only;
        self
    }

    /// Only HTTP/2 (h2c prior knowledge, or ALPN `h2` alone with TLS).
    pub fn http2_only(mut self) -> Self {
        self.protocols = Protocols::Http2Only;
        self
    }

    /// Runtime worker threads (default 1 = a current-thread runtime on the
    /// server's own OS thread).
    pub fn worker_threads(mut self, n: usize) -> Self {
        self.worker_threads = n.max(1);
        self
    }

    /// Whether to keep per-path hit counts ([`Stats::hits_for`]); default on.
    /// Turning it off removes the only mutex from the request path.
    pub fn track_paths(mut self, on: bool) -> Self {
        self.track_paths = on;
        self
    }

    /// Starts the server with a synchronous handler.
    pub fn start<F>(self, handler: F) -> TestServer
    where
        F: Fn(TestRequest) -> Reply + Send + Sync + 'static,
    {
        self.launch(Handler::Sync(Box::new(handler)))
    }

    /// Starts the server with an async handler.
    pub fn start_async<F, Fut>(self, handler: F) -> TestServer
    where
        F: Fn(TestRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        self.launch(Handler::Async(Box::new(move |req| Box::pin(handler(req)))))
    }

    /// Starts the server with the built-in [`route`] handler.
    pub fn routes(self) -> TestServer {
        self.start(|req| route(&req))
    }

    fn launch(self, handler: Handler) -> TestServer {
        let listener = StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("set_nonblocking on test listener");
        let addr = listener.local_addr().expect("local_addr");

        let runtime = if self.worker_threads <= 1 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(self.worker_threads)
                .thread_name(format!("test-server-{}-worker", addr.port()))
                .enable_all()
                .build()
        }
        .expect("build test server runtime");

        let mut conn = auto::Builder::new(TokioExecutor::new());
        conn = match self.protocols {
            Protocols::Auto => conn,
            Protocols::Http1Only => conn.http1_only(),
            Protocols::Http2Only => conn.http2_only(),
        };

        let cert = self.tls.then(TestCert::generate);
        let acceptor = cert.as_ref().map(|c| {
            tokio_rustls::TlsAcceptor::from(c.server_config(
                self.protocols != Protocols::Http1Only,
                self.protocols != Protocols::Http2Only,
            ))
        });

        let stats = Arc::new(Stats::new(self.track_paths));
        let shared = Arc::new(Shared {
            handler,
            stats: Arc::clone(&stats),
            conn,
        });

        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name(format!("test-server-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = shutdown_rx => {}
                        _ = accept_loop(listener, shared, acceptor) => {}
                    }
                });
                // Drops every connection task; bounded in case a handler used spawn_blocking.
                runtime.shutdown_timeout(Duration::from_millis(500));
                let _ = done_tx.send(());
            })
            .expect("spawn test server thread");

        TestServer {
            addr,
            cert,
            stats,
            shutdown: Some(shutdown_tx),
            done: Some(done_rx),
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(_) => {
                // e.g. EMFILE: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        shared.stats.connection_accepted();
        let shared = Arc::clone(&shared);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let svc = Svc {
                shared: Arc::clone(&shared),
                peer,
            };
            match acceptor {
                None => {
                    let _ = shared.conn.serve_connection(TokioIo::new(tcp), svc).await;
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp));
                    if let Ok(Ok(tls)) = handshake.await {
                        let _ = shared.conn.serve_connection(TokioIo::new(tls), svc).await;
                    }
                }
            }
        });
    }
}

/// Per-connection hyper service.
struct Svc {
    shared: Arc<Shared>,
    peer: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for Svc {
    type Response = Response<ReplyBody>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Response<ReplyBody>, BoxError>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        let peer = self.peer;
        Box::pin(async move {
            let guard = shared.stats.begin(req.uri().path(), req.version());
            let (parts, body) = req.into_parts();
            let body = body.collect().await?.to_bytes();
            let req = TestRequest {
                method: parts.method,
                uri: parts.uri,
                version: parts.version,
                headers: parts.headers,
                body,
                peer,
            };
            let reply = match &shared.handler {
                Handler::Sync(f) => std::panic::catch_unwind(AssertUnwindSafe(|| f(req))),
                Handler::Async(f) => match std::panic::catch_unwind(AssertUnwindSafe(|| f(req))) {
                    Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await,
                    Err(panic) => Err(panic),
                },
            };
            let reply = reply.unwrap_or_else(|panic| {
                shared.stats.handler_panicked();
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic".into());
                Reply::status(500).body(format!("test handler panicked: {msg}"))
            });
            Ok(reply.respond(guard).await?)
        })
    }
}

/// A running local test server. Dropping it shuts the server down.
///
/// Started with [`TestServer::start`], [`TestServer::start_async`],
/// [`TestServer::routes`] or [`TestServer::builder`].
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    cert: Option<TestCert>,
    stats: Arc<Stats>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<std::sync::mpsc::Receiver<()>>,
}

impl TestServer {
    /// Builder for TLS / protocol / thread options.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    /// Plain HTTP/1.1 + h2c server with a synchronous handler.
    pub fn start<F>(handler: F) -> TestServer
    where
        F: Fn(TestRequest) -> Reply + Send + Sync + 'static,
    {
        Self::builder().start(handler)
    }

    /// Plain HTTP/1.1 + h2c server with an async handler:
    /// `TestServer::start_async(|req| async move { Reply::ok() })`.
    pub fn start_async<F, Fut>(handler: F) -> TestServer
    where
        F: Fn(TestRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        Self::builder().start_async(handler)
    }

    /// Plain HTTP/1.1 + h2c server running the built-in [`route`] handler.
    pub fn routes() -> TestServer {
        Self::builder().routes()
    }

    /// Listening address (always `127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Whether the server speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.cert.is_some()
    }

    /// `http://127.0.0.1:PORT` or `https://localhost:PORT` (no trailing slash).
    pub fn base_url(&self) -> String {
        match self.cert {
            None => format!("http://127.0.0.1:{}", self.port()),
            Some(_) => format!("https://localhost:{}", self.port()),
        }
    }

    /// `base_url() + path`; a missing leading `/` is added. The path may carry a query.
    pub fn url(&self, path: &str) -> String {
        let sep = if path.starts_with('/') { "" } else { "/" };
        format!("{}{sep}{path}", self.base_url())
    }

    /// Like [`url`](Self::url) but with another host name, e.g. `"a.test"` for
    /// TLS name tests (the client must resolve it to 127.0.0.1 itself).
    pub fn url_with_host(&self, host: &str, path: &str) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        let sep = if path.starts_with('/') { "" } else { "/" };
        format!("{scheme}://{host}:{}{sep}{path}", self.port())
    }

    /// The self-signed certificate, DER. Panics if the server has no TLS.
    pub fn cert_der(&self) -> Vec<u8> {
        self.cert().der.clone()
    }

    /// The self-signed certificate, PEM. Panics if the server has no TLS.
    pub fn cert_pem(&self) -> String {
        self.cert().pem.clone()
    }

    fn cert(&self) -> &TestCert {
        self.cert
            .as_ref()
            .expect("TestServer has no certificate: build it with TestServer::builder().tls()")
    }

    /// Shared counters (clone the `Arc` to keep reading after moving the server).
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// See [`Stats::hits`].
    pub fn hits(&self) -> u64 {
        self.stats.hits()
    }

    /// See [`Stats::hits_for`].
    pub fn hits_for(&self, path: &str) -> u64 {
        self.stats.hits_for(path)
    }

    /// See [`Stats::active`].
    pub fn active(&self) -> usize {
        self.stats.active()
    }

    /// See [`Stats::max_active`].
    pub fn max_active(&self) -> usize {
        self.stats.max_active()
    }

    /// See [`Stats::connections`].
    pub fn connections(&self) -> u64 {
        self.stats.connections()
    }

    /// See [`Stats::http1_requests`].
    pub fn http1_requests(&self) -> u64 {
        self.stats.http1_requests()
    }

    /// See [`Stats::http2_requests`].
    pub fn http2_requests(&self) -> u64 {
        self.stats.http2_requests()
    }

    /// See [`Stats::reset`].
    pub fn reset_stats(&self) {
        self.stats.reset()
    }

    /// Stops the server now (same as dropping it).
    pub fn shutdown(self) {}
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Wait (bounded) for the listener to close and connections to drop,
        // so "nothing listens after drop" holds. Never panics.
        if let Some(done) = self.done.take() {
            let _ = done.recv_timeout(Duration::from_secs(2));
        }
    }
}

/// A loopback address where nothing listens (bound, then released): connecting
/// to it fails with "connection refused".
pub fn closed_port() -> SocketAddr {
    let listener = StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr")
}

/// `http://127.0.0.1:PORT/path` for a [`closed_port`].
pub fn closed_url(path: &str) -> String {
    let sep = if path.starts_with('/') { "" } else { "/" };
    format!("http://{}{sep}{path}", closed_port())
}

/// A bound loopback listener that never accepts: TCP connects succeed (via the
/// backlog) but no byte is ever read or written. Keep it alive while in use.
pub fn blackhole() -> StdTcpListener {
    StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0")
}
