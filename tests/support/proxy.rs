#![allow(dead_code)]
//! In-process test proxies: an HTTP proxy (`CONNECT` tunnels and absolute-form forwarding,
//! optionally over TLS) and a SOCKS proxy (SOCKS5 with optional user/password, SOCKS4/4a).
//!
//! ```ignore
//! #[path = "support/proxy.rs"] mod test_proxy; // or `support::proxy` once declared there
//! use test_proxy::{Behavior, TestProxy};
//!
//! let proxy = TestProxy::http().auth("u", "p").start();
//! let line = proxy.url(); // "http://u:p@127.0.0.1:PORT"
//! proxy.set_behavior(Behavior::Status(407));
//! assert_eq!(proxy.connections(), 0);
//! ```
//!
//! * Binds `127.0.0.1:0` and only ever connects to loopback: target names `localhost` and
//!   `*.test` resolve to 127.0.0.1, IP targets must be loopback, anything else is refused.
//! * Runs on its own OS thread and tokio runtime (works with paused-clock tests).
//! * Counts accepted connections, established tunnels and forwarded requests, and records
//!   what it saw: request heads, tunnel targets, and the local addresses of its upstream
//!   connections (what the target sees as the peer).
//! * [`Behavior`] makes it refuse (close at once), answer a status, hang, or accept and then
//!   send garbage.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the proxy treats the next connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// Work as a proxy.
    Normal,
    /// Close every connection as soon as it is accepted.
    Refuse,
    /// Answer every request with this status (HTTP: `CONNECT` and forwarded requests; SOCKS5:
    /// the reply code, e.g. 2 = not allowed, 5 = refused; SOCKS4: rejected).
    Status(u16),
    /// Accept and never answer.
    Hang,
    /// Accept the request (HTTP: `CONNECT` answered 200, or a forwarded request; SOCKS: a
    /// success reply), then send [`GARBAGE`] instead of the target's bytes and close.
    Garbage,
}

/// What a proxy in [`Behavior::Garbage`] sends: neither HTTP nor TLS.
pub const GARBAGE: &[u8] = b"\x00\x01garbage, not HTTP nor TLS\r\n\r\n";

/// Sends [`GARBAGE`] (after `head`, the proxy's own success reply) and closes.
async fn garbage(mut io: Box<dyn Io>, head: &[u8]) -> std::io::Result<()> {
    io.write_all(head).await?;
    io.write_all(GARBAGE).await?;
    io.flush().await?;
    // Let the client read it before the close.
    tokio::time::sleep(Duration::from_millis(50)).await;
    io.shutdown().await
}

/// Which protocol the proxy speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// HTTP proxy: `CONNECT` and absolute-form requests.
    Http,
    /// SOCKS5 (and SOCKS4/4a on the same port).
    Socks,
}

/// A request head the HTTP proxy received.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    /// `CONNECT`, `GET`, ...
    pub method: String,
    /// The request target: `host:port` for `CONNECT`, an absolute URL when forwarding.
    pub target: String,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
}

impl SeenRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A SOCKS request the proxy received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocksTarget {
    /// 4 or 5.
    pub version: u8,
    /// The host as sent: an IP address, or a name when the client let the proxy resolve.
    pub host: String,
    /// True when the client sent a domain name (SOCKS5 ATYP 3, SOCKS4a).
    pub is_domain: bool,
    /// The port.
    pub port: u16,
}

#[derive(Default)]
struct Stats {
    connections: AtomicU64,
    tunnels: AtomicU64,
    forwarded: AtomicU64,
    requests: Mutex<Vec<SeenRequest>>,
    socks: Mutex<Vec<SocksTarget>>,
    upstream: Mutex<Vec<SocketAddr>>,
}

struct Control {
    behavior: Mutex<Behavior>,
    auth: Option<(String, String)>,
}

impl Control {
    fn behavior(&self) -> Behavior {
        *self.behavior.lock().unwrap()
    }
}

/// Configures a [`TestProxy`].
#[derive(Debug, Clone)]
pub struct TestProxyBuilder {
    kind: Kind,
    auth: Option<(String, String)>,
    tls: bool,
    behavior: Behavior,
}

impl TestProxyBuilder {
    /// Require these credentials (HTTP: `Proxy-Authorization: Basic`; SOCKS5: user/password).
    pub fn auth(mut self, user: &str, pass: &str) -> Self {
        self.auth = Some((user.to_owned(), pass.to_owned()));
        self
    }

    /// Serve the HTTP proxy over TLS (an `https://` proxy) with a fresh self-signed
    /// certificate for `localhost` and `127.0.0.1` ([`TestProxy::cert_der`]).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// The initial behavior (default [`Behavior::Normal`]).
    pub fn behavior(mut self, b: Behavior) -> Self {
        self.behavior = b;
        self
    }

    /// Starts the proxy on its own thread.
    pub fn start(self) -> TestProxy {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local_addr");
        let stats = Arc::new(Stats::default());
        let control = Arc::new(Control {
            behavior: Mutex::new(self.behavior),
            auth: self.auth.clone(),
        });
        let (cert_der, acceptor) = if self.tls {
            let (der, acceptor) = tls_acceptor();
            (Some(der), Some(acceptor))
        } else {
            (None, None)
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("proxy runtime");
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let kind = self.kind;
        let (s2, c2) = (stats.clone(), control.clone());
        std::thread::Builder::new()
            .name(format!("test-proxy-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = shutdown_rx => {}
                        _ = accept_loop(listener, kind, s2, c2, acceptor) => {}
                    }
                });
                runtime.shutdown_timeout(Duration::from_millis(500));
                let _ = done_tx.send(());
            })
            .expect("spawn proxy thread");
        TestProxy {
            addr,
            kind,
            tls: self.tls,
            auth: self.auth,
            cert_der,
            stats,
            control,
            shutdown: Some(shutdown_tx),
            done: Some(done_rx),
        }
    }
}

/// A running test proxy; dropping it stops it.
pub struct TestProxy {
    addr: SocketAddr,
    kind: Kind,
    tls: bool,
    auth: Option<(String, String)>,
    cert_der: Option<Vec<u8>>,
    stats: Arc<Stats>,
    control: Arc<Control>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<std::sync::mpsc::Receiver<()>>,
}

impl std::fmt::Debug for TestProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestProxy")
            .field("addr", &self.addr)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl TestProxy {
    /// An HTTP proxy builder.
    pub fn http() -> TestProxyBuilder {
        TestProxyBuilder {
            kind: Kind::Http,
            auth: None,
            tls: false,
            behavior: Behavior::Normal,
        }
    }

    /// A SOCKS5/SOCKS4 proxy builder.
    pub fn socks() -> TestProxyBuilder {
        TestProxyBuilder {
            kind: Kind::Socks,
            ..TestProxy::http()
        }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy line: `http://` / `https://` for the HTTP proxy, `socks5://` for the SOCKS
    /// one, with the configured credentials.
    pub fn url(&self) -> String {
        let scheme = match (self.kind, self.tls) {
            (Kind::Http, false) => "http",
            (Kind::Http, true) => "https",
            (Kind::Socks, _) => "socks5",
        };
        self.url_with_scheme(scheme)
    }

    /// The proxy line with another scheme (`socks5h`, `socks4`), with the credentials.
    pub fn url_with_scheme(&self, scheme: &str) -> String {
        let host = if self.tls {
            format!("localhost:{}", self.addr.port())
        } else {
            self.addr.to_string()
        };
        match &self.auth {
            Some((u, p)) => format!("{scheme}://{u}:{p}@{host}"),
            None => format!("{scheme}://{host}"),
        }
    }

    /// The TLS certificate (DER) of a [`tls`](TestProxyBuilder::tls) proxy.
    pub fn cert_der(&self) -> Vec<u8> {
        self.cert_der
            .clone()
            .expect("the proxy was not built with .tls()")
    }

    /// Changes how the proxy treats new connections and requests.
    pub fn set_behavior(&self, b: Behavior) {
        *self.control.behavior.lock().unwrap() = b;
    }

    /// Accepted TCP connections.
    pub fn connections(&self) -> u64 {
        self.stats.connections.load(Ordering::SeqCst)
    }

    /// Tunnels established (HTTP `CONNECT` answered 200, SOCKS request granted).
    pub fn tunnels(&self) -> u64 {
        self.stats.tunnels.load(Ordering::SeqCst)
    }

    /// Absolute-form requests forwarded to a target.
    pub fn forwarded(&self) -> u64 {
        self.stats.forwarded.load(Ordering::SeqCst)
    }

    /// Every request head the HTTP proxy received (`CONNECT` and forwarded), in order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.stats.requests.lock().unwrap().clone()
    }

    /// Every SOCKS request received, in order.
    pub fn socks_targets(&self) -> Vec<SocksTarget> {
        self.stats.socks.lock().unwrap().clone()
    }

    /// The local addresses of the proxy's connections to targets: what a target sees as
    /// the client's address.
    pub fn upstream_addrs(&self) -> Vec<SocketAddr> {
        self.stats.upstream.lock().unwrap().clone()
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.recv_timeout(Duration::from_secs(2));
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn accept_loop(
    listener: TcpListener,
    kind: Kind,
    stats: Arc<Stats>,
    control: Arc<Control>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        stats.connections.fetch_add(1, Ordering::SeqCst);
        if control.behavior() == Behavior::Refuse {
            drop(tcp);
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let (stats, control, acceptor) = (stats.clone(), control.clone(), acceptor.clone());
        tokio::spawn(async move {
            let io: Box<dyn Io> = match acceptor {
                None => Box::new(tcp),
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    {
                        Ok(Ok(tls)) => Box::new(tls),
                        _ => return,
                    }
                }
            };
            if control.behavior() == Behavior::Hang {
                hang(io).await;
                return;
            }
            let _ = match kind {
                Kind::Http => serve_http(io, &stats, &control).await,
                Kind::Socks => serve_socks(io, &stats, &control).await,
            };
        });
    }
}

/// Holds the connection open without answering (until the peer closes or 60 s pass).
async fn hang(mut io: Box<dyn Io>) {
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// Resolves a target host, loopback only.
fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let ip = match bare.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => {
            let lower = bare.to_ascii_lowercase();
            if lower == "localhost" || lower.ends_with(".test") {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                return None;
            }
        }
    };
    ip.is_loopback().then_some(SocketAddr::new(ip, port))
}

async fn connect_upstream(stats: &Stats, host: &str, port: u16) -> Option<TcpStream> {
    let addr = resolve(host, port)?;
    let tcp = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    let _ = tcp.set_nodelay(true);
    if let Ok(local) = tcp.local_addr() {
        stats.upstream.lock().unwrap().push(local);
    }
    Some(tcp)
}

fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    Some((host.to_owned(), port.parse().ok()?))
}

/// The `Proxy-Authorization` value the HTTP proxy expects for `user` and `pass`.
pub fn basic_auth(user: &str, pass: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{pass}").into_bytes();
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
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Reads a request head; returns it and any bytes read past it.
async fn read_head(io: &mut Box<dyn Io>) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Some((buf, rest));
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = io.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn reply(io: &mut Box<dyn Io>, status: u16, extra: &str) -> std::io::Result<()> {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Status");
    let msg = format!(
        "HTTP/1.1 {status} {reason}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    io.write_all(msg.as_bytes()).await?;
    io.flush().await
}

async fn serve_http(mut io: Box<dyn Io>, stats: &Stats, control: &Control) -> std::io::Result<()> {
    let Some((head, rest)) = read_head(&mut io).await else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_owned();
    let target = first.next().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let seen = SeenRequest {
        method: method.clone(),
        target: target.clone(),
        headers: headers.clone(),
    };
    stats.requests.lock().unwrap().push(seen.clone());

    match control.behavior() {
        Behavior::Hang => {
            hang(io).await;
            return Ok(());
        }
        Behavior::Status(code) => return reply(&mut io, code, "").await,
        Behavior::Garbage if method == "CONNECT" => {
            stats.tunnels.fetch_add(1, Ordering::SeqCst);
            return garbage(io, b"HTTP/1.1 200 Connection established\r\n\r\n").await;
        }
        Behavior::Garbage => {
            stats.forwarded.fetch_add(1, Ordering::SeqCst);
            return garbage(io, b"").await;
        }
        _ => {}
    }
    if let Some((u, p)) = &control.auth {
        if seen.header("proxy-authorization") != Some(basic_auth(u, p).as_str()) {
            return reply(&mut io, 407, "Proxy-Authenticate: Basic realm=\"test\"\r\n").await;
        }
    }

    if method == "CONNECT" {
        let Some((host, port)) = split_host_port(&target) else {
            return reply(&mut io, 400, "").await;
        };
        let Some(mut up) = connect_upstream(stats, &host, port).await else {
            return reply(&mut io, 502, "").await;
        };
        io.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        io.flush().await?;
        stats.tunnels.fetch_add(1, Ordering::SeqCst);
        if !rest.is_empty() {
            up.write_all(&rest).await?;
        }
        let _ = tokio::io::copy_bidirectional(&mut io, &mut up).await;
        return Ok(());
    }

    // Absolute form: http://host[:port]/path
    let Some(after) = target.strip_prefix("http://") else {
        return reply(&mut io, 400, "").await;
    };
    let (authority, path) = match after.find('/') {
        Some(i) => (&after[..i], &after[i..]),
        None => (after, "/"),
    };
    let (host, port) = match split_host_port(authority) {
        Some(hp) if !authority.ends_with(']') => hp,
        _ => (authority.to_owned(), 80),
    };
    let Some(mut up) = connect_upstream(stats, &host, port).await else {
        return reply(&mut io, 502, "").await;
    };
    stats.forwarded.fetch_add(1, Ordering::SeqCst);
    let mut out = format!("{method} {path} HTTP/1.1\r\n");
    for (n, v) in &headers {
        if n == "proxy-authorization" || n == "proxy-connection" || n == "connection" {
            continue;
        }
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("connection: close\r\n\r\n");
    up.write_all(out.as_bytes()).await?;
    if !rest.is_empty() {
        up.write_all(&rest).await?;
    }
    let _ = tokio::io::copy_bidirectional(&mut io, &mut up).await;
    Ok(())
}

async fn serve_socks(mut io: Box<dyn Io>, stats: &Stats, control: &Control) -> std::io::Result<()> {
    let version = io.read_u8().await?;
    match version {
        5 => serve_socks5(io, stats, control).await,
        4 => serve_socks4(io, stats, control).await,
        _ => Ok(()),
    }
}

async fn serve_socks5(
    mut io: Box<dyn Io>,
    stats: &Stats,
    control: &Control,
) -> std::io::Result<()> {
    let n = io.read_u8().await? as usize;
    let mut methods = vec![0u8; n];
    io.read_exact(&mut methods).await?;
    match &control.auth {
        Some((user, pass)) => {
            if !methods.contains(&2) {
                io.write_all(&[5, 0xFF]).await?;
                return Ok(());
            }
            io.write_all(&[5, 2]).await?;
            let _ver = io.read_u8().await?;
            let ulen = io.read_u8().await? as usize;
            let mut u = vec![0u8; ulen];
            io.read_exact(&mut u).await?;
            let plen = io.read_u8().await? as usize;
            let mut p = vec![0u8; plen];
            io.read_exact(&mut p).await?;
            if u != user.as_bytes() || p != pass.as_bytes() {
                io.write_all(&[1, 1]).await?;
                return Ok(());
            }
            io.write_all(&[1, 0]).await?;
        }
        None => {
            if !methods.contains(&0) {
                io.write_all(&[5, 0xFF]).await?;
                return Ok(());
            }
            io.write_all(&[5, 0]).await?;
        }
    }
    let mut head = [0u8; 4];
    io.read_exact(&mut head).await?;
    let (host, is_domain) = match head[3] {
        1 => {
            let mut ip = [0u8; 4];
            io.read_exact(&mut ip).await?;
            (Ipv4Addr::from(ip).to_string(), false)
        }
        4 => {
            let mut ip = [0u8; 16];
            io.read_exact(&mut ip).await?;
            (std::net::Ipv6Addr::from(ip).to_string(), false)
        }
        3 => {
            let len = io.read_u8().await? as usize;
            let mut name = vec![0u8; len];
            io.read_exact(&mut name).await?;
            (String::from_utf8_lossy(&name).into_owned(), true)
        }
        _ => return Ok(()),
    };
    let port = io.read_u16().await?;
    stats.socks.lock().unwrap().push(SocksTarget {
        version: 5,
        host: host.clone(),
        is_domain,
        port,
    });
    let fail = |code: u8| [5, code, 0, 1, 0, 0, 0, 0, 0, 0];
    match control.behavior() {
        Behavior::Hang => {
            hang(io).await;
            return Ok(());
        }
        Behavior::Status(code) => {
            io.write_all(&fail(code as u8)).await?;
            return Ok(());
        }
        Behavior::Garbage => {
            stats.tunnels.fetch_add(1, Ordering::SeqCst);
            return garbage(io, &[5, 0, 0, 1, 127, 0, 0, 1, 0, 80]).await;
        }
        _ => {}
    }
    if head[1] != 1 {
        io.write_all(&fail(7)).await?;
        return Ok(());
    }
    let Some(mut up) = connect_upstream(stats, &host, port).await else {
        io.write_all(&fail(5)).await?;
        return Ok(());
    };
    let bound = up.local_addr()?;
    let mut ok = vec![5, 0, 0, 1];
    match bound.ip() {
        IpAddr::V4(v4) => ok.extend_from_slice(&v4.octets()),
        IpAddr::V6(_) => ok.extend_from_slice(&[0, 0, 0, 0]),
    }
    ok.extend_from_slice(&bound.port().to_be_bytes());
    io.write_all(&ok).await?;
    stats.tunnels.fetch_add(1, Ordering::SeqCst);
    let _ = tokio::io::copy_bidirectional(&mut io, &mut up).await;
    Ok(())
}

async fn read_cstr(io: &mut Box<dyn Io>) -> std::io::Result<String> {
    let mut out = Vec::new();
    loop {
        let b = io.read_u8().await?;
        if b == 0 || out.len() > 255 {
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
        out.push(b);
    }
}

async fn serve_socks4(
    mut io: Box<dyn Io>,
    stats: &Stats,
    control: &Control,
) -> std::io::Result<()> {
    let cmd = io.read_u8().await?;
    let port = io.read_u16().await?;
    let mut ip = [0u8; 4];
    io.read_exact(&mut ip).await?;
    let _user = read_cstr(&mut io).await?;
    let (host, is_domain) = if ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0 {
        (read_cstr(&mut io).await?, true)
    } else {
        (Ipv4Addr::from(ip).to_string(), false)
    };
    stats.socks.lock().unwrap().push(SocksTarget {
        version: 4,
        host: host.clone(),
        is_domain,
        port,
    });
    let reject = [0, 0x5B, 0, 0, 0, 0, 0, 0];
    match control.behavior() {
        Behavior::Hang => {
            hang(io).await;
            return Ok(());
        }
        Behavior::Status(_) => {
            io.write_all(&reject).await?;
            return Ok(());
        }
        Behavior::Garbage => {
            stats.tunnels.fetch_add(1, Ordering::SeqCst);
            return garbage(io, &[0, 0x5A, 0, 0, 0, 0, 0, 0]).await;
        }
        _ => {}
    }
    if cmd != 1 {
        io.write_all(&reject).await?;
        return Ok(());
    }
    let Some(mut up) = connect_upstream(stats, &host, port).await else {
        io.write_all(&reject).await?;
        return Ok(());
    };
    io.write_all(&[0, 0x5A, 0, 0, 0, 0, 0, 0]).await?;
    stats.tunnels.fetch_add(1, Ordering::SeqCst);
    let _ = tokio::io::copy_bidirectional(&mut io, &mut up).await;
    Ok(())
}

fn tls_acceptor() -> (Vec<u8>, tokio_rustls::TlsAcceptor) {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("rcgen");
    let der = ck.cert.der().to_vec();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(der.clone())], key)
        .expect("cert");
    cfg.alpn_protocols.push(b"http/1.1".to_vec());
    (der, tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}
