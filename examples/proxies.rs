//! Proxy pools: validate, drop the dead, rotate round robin, stick per host, and override
//! the proxy of one request.
//!
//! Everything is local, started by the example itself (see `mod local` at the bottom): a small
//! axum server, two HTTP forward proxies (one with a password) and a SOCKS5 proxy in front of
//! it, and a port where nothing listens. The proxies only ever connect to 127.0.0.1. No
//! network needed.
//!
//! ```text
//! cargo run --example proxies
//! ```
//!
//! To use it as a program of your own, copy this file to `src/main.rs` with these dependencies:
//!
//! ```toml
//! [dependencies]
//! fastreq = "0.1"
//! tokio = { version = "1", features = ["macros", "rt-multi-thread", "net", "time", "io-util"] }
//! futures-util = "0.3"
//! axum = "0.8"   # for the local server only
//! ```

use std::collections::{BTreeMap, BTreeSet};

use fastreq::proxy::{ProxyPool, SelectedProxy, Strategy};
use fastreq::{Backend, Client};
use futures_util::StreamExt;

/// Sends every request through `client` and counts the proxy each one went through (the
/// backend records it on the response as `SelectedProxy`; its password is redacted).
async fn proxies_used(
    client: &Client,
    urls: impl IntoIterator<Item = String>,
) -> Result<BTreeMap<String, usize>, fastreq::Error> {
    let mut used = BTreeMap::new();
    let mut outcomes = fastreq::fan_out(client.clone(), urls.into_iter().map(fastreq::get));
    while let Some(outcome) = outcomes.next().await {
        let response = outcome.result?;
        let proxy = response.extensions().get::<SelectedProxy>();
        let name = proxy.map_or("direct".to_owned(), |p| p.0.to_string());
        *used.entry(name).or_insert(0) += 1;
    }
    Ok(used)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let origin = local::server().await?;
    let server = format!("http://{origin}");
    let http_a = local::http_proxy(true).await?; // wants user `alice`, password `s3cret`
    let http_b = local::http_proxy(false).await?;
    let socks = local::socks5_proxy().await?;
    let dead = local::closed_address()?;

    // One proxy per line; `socks5h` lets the proxy resolve target names.
    let lines = format!(
        "{}\n{}\n{}\nhttp://{dead}\n",
        http_a.url, http_b.url, socks.url,
    );
    let pool = ProxyPool::from_lines(&lines)?;

    // 1. Probe every proxy at once and drop the dead ones.
    println!("validating {} proxies:", pool.len());
    let report = pool
        .validate(Backend::new(), &format!("{server}/ping"))
        .await?;
    for probe in report.outcomes() {
        match &probe.result {
            Ok(ok) => println!(
                "  ok    {}  ({} in {:?})",
                probe.proxy, ok.status, ok.elapsed
            ),
            Err(err) => println!("  dead  {}  ({}: {err})", probe.proxy, err.kind()),
        }
    }
    let removed = pool.remove_dead(&report);
    println!("removed {removed} dead proxy, {} left\n", pool.len());
    if removed != 1 || pool.len() != 3 {
        return Err("expected exactly the closed port to be dead".into());
    }

    // 2. Round robin (the default): 30 requests, 10 through each proxy.
    let client = fastreq::stack().proxies(pool.clone()).build()?;
    let forwarded_before = (http_a.forwarded(), http_b.forwarded());
    let urls = (0..30).map(|i| format!("{server}/items/{i}"));
    let used = proxies_used(&client, urls).await?;
    println!("round robin, requests per proxy:");
    for (proxy, n) in &used {
        println!("  {proxy:<28} {n}");
    }
    println!(
        "  as counted by the HTTP proxies: {} and {} forwarded; SOCKS tunnels: {} (pooled)\n",
        http_a.forwarded() - forwarded_before.0,
        http_b.forwarded() - forwarded_before.1,
        socks.forwarded(),
    );
    if used.len() != 3 || used.values().any(|&n| n != 10) {
        return Err("expected 10 requests through each proxy".into());
    }
    if (http_a.forwarded(), http_b.forwarded())
        != (forwarded_before.0 + 10, forwarded_before.1 + 10)
    {
        return Err("the HTTP proxies did not forward 10 requests each".into());
    }

    // 3. Sticky per host: every request to one host leaves through the same proxy. The
    // local proxies resolve `*.test` to 127.0.0.1, so these names reach the local server.
    let sticky = fastreq::stack()
        .proxies(pool.clone())
        .proxy_strategy(Strategy::StickyPerHost)
        .build()?;
    let mut per_host = BTreeMap::new();
    for host in ["a.test", "b.test", "c.test", "d.test"] {
        let urls = (0..5).map(|i| format!("http://{host}:{}/items/{i}", origin.port()));
        let used = proxies_used(&sticky, urls).await?;
        per_host.insert(host, used.into_keys().collect::<BTreeSet<_>>());
    }
    println!("sticky per host, proxies used by each host (5 requests each):");
    for (host, proxies) in &per_host {
        println!("  {host}  {proxies:?}");
    }
    println!();
    if per_host.values().any(|proxies| proxies.len() != 1) {
        return Err("a host used more than one proxy".into());
    }

    // 4. One request through a proxy of its own, whatever the pool says.
    let before = http_b.forwarded();
    let request = fastreq::get(format!("{server}/override")).proxy(&http_b.url);
    let response = sticky.send(request.build()?).await?;
    let via = response
        .extensions()
        .get::<SelectedProxy>()
        .map(|p| p.0.to_string());
    println!("per-request override: {} via {via:?}", response.status());
    if http_b.forwarded() != before + 1 {
        return Err("the override did not go through the chosen proxy".into());
    }
    Ok(())
}

/// Local stand-ins for the internet: a server, HTTP and SOCKS5 proxies, plain tokio (and axum
/// for the server). The proxies only connect to loopback: `localhost` and `*.test` resolve to
/// 127.0.0.1, other names and addresses are refused. Nothing here is fastreq.
mod local {
    use std::future::Future;
    use std::net::{Ipv4Addr, SocketAddr};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{self, AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    /// What the client sends in `Proxy-Authorization` for user `alice`, password `s3cret`.
    const ALICE: &str = "Basic YWxpY2U6czNjcmV0"; // base64("alice:s3cret")

    /// A running proxy.
    pub struct Proxy {
        /// Its line for the pool, e.g. `http://127.0.0.1:PORT`.
        pub url: String,
        count: Arc<AtomicU64>,
    }

    impl Proxy {
        /// HTTP proxy: requests forwarded so far; SOCKS proxy: connections tunnelled.
        pub fn forwarded(&self) -> u64 {
            self.count.load(Ordering::Relaxed)
        }
    }

    /// The server: a small JSON answer on every path. Returns its address.
    pub async fn server() -> io::Result<SocketAddr> {
        let app = axum::Router::new().fallback(|| async { r#"{"ok":true}"# });
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(addr)
    }

    /// An HTTP forward proxy (`GET http://host:port/path HTTP/1.1`), one request per
    /// connection, asking for `alice:s3cret` if `with_password`.
    pub async fn http_proxy(with_password: bool) -> io::Result<Proxy> {
        let count = Arc::new(AtomicU64::new(0));
        let counter = count.clone();
        let addr = listen(move |tcp| forward(tcp, with_password, counter.clone())).await?;
        let user = if with_password { "alice:s3cret@" } else { "" };
        let url = format!("http://{user}{addr}");
        Ok(Proxy { url, count })
    }

    async fn forward(
        client: TcpStream,
        with_password: bool,
        count: Arc<AtomicU64>,
    ) -> io::Result<()> {
        let mut client = BufReader::new(client);
        let mut line = String::new();
        client.read_line(&mut line).await?;
        let mut words = line.split_whitespace();
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let target = target.strip_prefix("http://").unwrap_or("");
        let (authority, path) = target.split_at(target.find('/').unwrap_or(target.len()));

        // The head for the server: origin form, without the proxy's own headers.
        let mut head = format!("{method} /{} HTTP/1.1\r\n", path.trim_start_matches('/'));
        let mut authorized = !with_password;
        loop {
            let mut header = String::new();
            if client.read_line(&mut header).await? == 0 || header == "\r\n" {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or_default();
            let name = name.to_ascii_lowercase();
            if name == "proxy-authorization" {
                authorized |= value.trim() == ALICE;
            } else if !name.starts_with("proxy-") && name != "connection" {
                head += &header;
            }
        }
        head += "connection: close\r\n\r\n";

        let upstream = authority
            .rsplit_once(':')
            .and_then(|(host, port)| loopback(host, port.parse().ok()?));
        let upstream = match (authorized, upstream) {
            (true, Some(addr)) => addr,
            (false, _) => {
                let answer = "407 Proxy Authentication Required\r\nproxy-authenticate: Basic";
                return refuse(client.get_mut(), answer).await;
            }
            (true, None) => return refuse(client.get_mut(), "403 Forbidden").await,
        };
        let mut server = TcpStream::connect(upstream).await?;
        count.fetch_add(1, Ordering::Relaxed);
        server.write_all(head.as_bytes()).await?;
        server.write_all(client.buffer()).await?;
        io::copy_bidirectional(client.get_mut(), &mut server).await?;
        Ok(())
    }

    async fn refuse(client: &mut TcpStream, status_and_headers: &str) -> io::Result<()> {
        let answer = format!("HTTP/1.1 {status_and_headers}\r\ncontent-length: 0\r\n\r\n");
        client.write_all(answer.as_bytes()).await
    }

    /// A SOCKS5 proxy (no authentication, `CONNECT` only); its line uses `socks5h://` so that
    /// target names are sent to it unresolved.
    pub async fn socks5_proxy() -> io::Result<Proxy> {
        let count = Arc::new(AtomicU64::new(0));
        let counter = count.clone();
        let addr = listen(move |tcp| socks5(tcp, counter.clone())).await?;
        let url = format!("socks5h://{addr}");
        Ok(Proxy { url, count })
    }

    async fn socks5(mut client: TcpStream, count: Arc<AtomicU64>) -> io::Result<()> {
        // Greeting: version 5, the client's methods; choose 0, "no authentication".
        let [version, n] = [client.read_u8().await?, client.read_u8().await?];
        let mut methods = vec![0; usize::from(n)];
        client.read_exact(&mut methods).await?;
        if version != 5 || !methods.contains(&0) {
            return client.write_all(&[5, 0xFF]).await;
        }
        client.write_all(&[5, 0]).await?;

        // Request: version, command (1 = CONNECT), reserved, address type, address, port.
        let mut request = [0; 4];
        client.read_exact(&mut request).await?;
        let host = match request[3] {
            1 => Ipv4Addr::from(client.read_u32().await?).to_string(),
            3 => {
                let mut name = vec![0; usize::from(client.read_u8().await?)];
                client.read_exact(&mut name).await?;
                String::from_utf8_lossy(&name).into_owned()
            }
            _ => return client.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0]).await, // type not supported
        };
        let port = client.read_u16().await?;
        let server = match loopback(&host, port).filter(|_| request[1] == 1) {
            Some(addr) => TcpStream::connect(addr).await.ok(),
            None => None,
        };
        let Some(mut server) = server else {
            return client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await; // refused
        };
        // Success. The bound address in the reply (0.0.0.0:0 here) is not used by clients.
        client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        count.fetch_add(1, Ordering::Relaxed);
        io::copy_bidirectional(&mut client, &mut server).await?;
        Ok(())
    }

    /// The loopback address for `host:port`, or `None` for anything off this machine.
    fn loopback(host: &str, port: u16) -> Option<SocketAddr> {
        let host = host.to_ascii_lowercase();
        let ip = match host.parse() {
            Ok(ip) => ip,
            Err(_) if host == "localhost" || host.ends_with(".test") => Ipv4Addr::LOCALHOST.into(),
            Err(_) => return None,
        };
        let addr = SocketAddr::new(ip, port);
        addr.ip().is_loopback().then_some(addr)
    }

    /// Binds a free port of 127.0.0.1 and runs `serve` on every connection.
    async fn listen<F, Fut>(serve: F) -> io::Result<SocketAddr>
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = io::Result<()>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((tcp, _)) => drop(tokio::spawn(serve(tcp))),
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        });
        Ok(addr)
    }

    /// A loopback address where nothing listens: bound, then released.
    pub fn closed_address() -> io::Result<SocketAddr> {
        std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
    }
}
