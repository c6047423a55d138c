//! The fastreq demo: many requests through the full preset, against faults, with no network.
//!
//! The example starts its own local HTTP server (127.0.0.1, a free port) that injects faults
//! — connection resets, truncated bodies, 429 and 503 answers, slow responses, requests that
//! fail twice before they succeed — and two small HTTP forward proxies in front of it (all in
//! `mod server` at the bottom of this file). Then it fans out 20,000 requests through the full
//! preset (`fastreq::stack()`: retries with backoff, random user agents, a proxy pool for part
//! of the traffic, cookies, redirects, decompression, concurrency limit, timeouts), printing a
//! progress line and a summary: successes, HTTP statuses, errors by kind, retries, proxy use,
//! requests per second and latency percentiles.
//!
//! ```text
//! cargo run --release --example demo            # 20,000 requests
//! cargo run --release --example demo -- 100000  # another count
//! ```
//!
//! To run it as a program of your own, copy this file to `src/main.rs` with these
//! dependencies (fastreq's default features include the decompression used here):
//!
//! ```toml
//! [dependencies]
//! fastreq = "0.1"
//! tokio = { version = "1", features = ["macros", "rt-multi-thread", "net", "time", "io-util"] }
//! futures-util = "0.3"
//! http = "1"
//! tower = "0.5"
//! # for the local server and proxies only
//! hyper = { version = "1", features = ["server", "http1"] }
//! hyper-util = { version = "0.1", features = ["tokio"] }
//! http-body-util = "0.1"
//! bytes = "1"
//! flate2 = "1"
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use fastreq::proxy::{SelectedProxy, Strategy};
use futures_util::StreamExt;

/// What request `i` asks the local server for: most succeed, some fail on purpose.
fn request_for(i: usize, server: &str, closed: &str) -> fastreq::RequestBuilder {
    let url = match i % 100 {
        // Fails twice, then the retry layer gets a 200.
        0..=1 => format!("{server}/flaky/{i}"),
        2 => format!("{server}/item/{i}?status=503"),
        3 => format!("{server}/item/{i}?status=429"),
        4 => format!("{server}/item/{i}?status=404"),
        5 => format!("{server}/item/{i}?fail=reset"),
        6 => format!("{server}/item/{i}?fail=truncate"),
        7 => format!("{server}/item/{i}?delay_ms=50"),
        8 if i % 1000 == 8 => format!("{closed}/item/{i}"),
        9 if i % 1000 == 9 => "http://bad url/".to_owned(),
        10 => format!("{server}/item/{i}?gzip=1&bytes=2000"),
        12 => format!("{server}/item/{i}?status=302&location=/landed/{i}"),
        // Slower than the per-request timeout below: a Timeout error.
        11 if i % 500 == 11 => format!("{server}/item/{i}?delay_ms=2000"),
        _ => format!("{server}/item/{i}"),
    };
    let req = fastreq::get(url).timeout(Duration::from_millis(500));
    // One request in five goes through the proxy pool; the rest go direct.
    if i.is_multiple_of(5) {
        req
    } else {
        req.no_proxy()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total: usize = match std::env::args().nth(1) {
        Some(n) => n.parse().map_err(|_| format!("not a request count: {n}"))?,
        None => 20_000,
    };
    let concurrency = 64;

    // The local server with its faults, two forward proxies in front of it, and an address
    // where nothing listens.
    let server = server::start().await?;
    let proxies = [server::start_proxy().await?, server::start_proxy().await?];
    let closed = server::closed_address()?;
    println!(
        "fastreq demo: {total} requests to a local server at {} through the full preset \
         (concurrency {concurrency}, random user agents, 2 local proxies for 1 request in 5, \
         ~10% faults injected)",
        server
    );

    let client = fastreq::stack()
        .concurrency(concurrency)
        .retries(2)
        .backoff(Duration::from_millis(5), 2.0, Duration::from_millis(50))
        .random_user_agent()
        .proxy_lines(&format!("{}\n{}", proxies[0].url, proxies[1].url))
        .proxy_strategy(Strategy::RoundRobin)
        .build()?;
    let requests = (0..total).map(|i| {
        let req = request_for(i, &server, &closed).build()?;
        Ok::<_, fastreq::Error>(req)
    });
    let mut outcomes =
        fastreq::fan_out(RecordProxy(client.clone()), requests).limit(client.fan_out_limit());
    let progress = outcomes.progress();

    let started = Instant::now();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut errors: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut example_errors: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut latencies = Vec::with_capacity(total);
    let mut bytes = 0usize;
    let mut retried = 0usize;
    let mut via_proxy = 0usize;
    let mut last_print = Instant::now();
    let stderr = std::io::stderr();

    while let Some(outcome) = outcomes.next().await {
        match outcome.result {
            Ok((fetched, proxy)) => {
                *statuses.entry(fetched.status().as_u16()).or_default() += 1;
                retried += usize::from(fetched.attempts() > 1);
                via_proxy += usize::from(proxy);
                latencies.push(fetched.elapsed());
                bytes += fetched.body().len();
            }
            Err(err) => {
                let kind = err.kind().as_str();
                *errors.entry(kind).or_default() += 1;
                example_errors
                    .entry(kind)
                    .or_insert_with(|| err.to_string());
            }
        }
        if last_print.elapsed() >= Duration::from_millis(200) {
            last_print = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            let mut e = stderr.lock();
            let _ = write!(
                e,
                "\r{:>6}/{total} done  {:>5} errors  {:>7.0} req/s  {:>3} in flight ",
                progress.completed(),
                progress.failed(),
                progress.completed() as f64 / secs,
                progress.in_flight(),
            );
            let _ = e.flush();
        }
    }
    let elapsed = started.elapsed();
    eprintln!("\r{:>6}/{total} done{:40}", progress.completed(), "");

    latencies.sort_unstable();
    let responses: usize = statuses.values().sum();
    let failed: usize = errors.values().sum();
    println!();
    println!("requests      {total}");
    println!(
        "responses     {responses} (any HTTP status), {} bytes of body",
        bytes
    );
    for (status, n) in &statuses {
        println!("  status {status}  {n}");
    }
    println!("retried       {retried} responses needed more than one attempt");
    println!(
        "proxies       {via_proxy} responses came through the pool (proxy 1 forwarded {}, proxy 2 {})",
        proxies[0].forwarded(),
        proxies[1].forwarded()
    );
    println!("errors        {failed}");
    for (kind, n) in &errors {
        println!("  {kind:<16} {n:>6}   e.g. {}", example_errors[kind]);
    }
    println!(
        "throughput    {:.0} req/s ({:.2} s)",
        total as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "latency       p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms",
        percentile(&latencies, 50.0).as_secs_f64() * 1e3,
        percentile(&latencies, 90.0).as_secs_f64() * 1e3,
        percentile(&latencies, 99.0).as_secs_f64() * 1e3,
    );
    if responses + failed != total {
        return Err(format!("lost outcomes: {} of {total}", responses + failed).into());
    }
    println!("every request got exactly one outcome.");
    Ok(())
}

/// Buffers each response and notes whether it went through a proxy of the pool.
#[derive(Clone)]
struct RecordProxy(fastreq::Client);

impl tower::Service<http::Request<fastreq::Body>> for RecordProxy {
    type Response = (fastreq::Fetched, bool);
    type Error = fastreq::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, fastreq::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), fastreq::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<fastreq::Body>) -> Self::Future {
        let uri = req.uri().clone();
        let started = Instant::now();
        let fut = self.0.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            let proxied = resp.extensions().get::<SelectedProxy>().is_some();
            let fetched = fastreq::Fetched::from_response(resp, &uri, started).await?;
            Ok((fetched, proxied))
        })
    }
}

/// The local server the demo talks to and its forward proxies: plain hyper and tokio, bound to
/// 127.0.0.1 on free ports, never connecting beyond loopback. Nothing here is fastreq.
mod server {
    use std::collections::HashMap;
    use std::convert::Infallible;
    use std::io::{self, Write as _};
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::combinators::BoxBody;
    use http_body_util::{BodyExt as _, Full, StreamBody};
    use hyper::body::{Frame, Incoming};
    use hyper::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    type Body = BoxBody<Bytes, Infallible>;
    /// How many times each `/flaky/...` path was asked for.
    type Calls = Arc<Mutex<HashMap<String, u32>>>;

    /// What a normal request gets: a 200-byte JSON object.
    const JSON: &str = concat!(
        r#"{"ok":true,"server":"fastreq-demo","items":[1,2,3,4,5,6,7,8],"#,
        r#""message":"hello from the local demo server","padding":"#,
        r#""xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#
    );

    /// Starts the server; returns its base URL, `http://127.0.0.1:PORT`.
    ///
    /// `/flaky/...` answers 503 twice, then 200. Any path takes these query parameters:
    /// `status=N`, `delay_ms=N` (before the headers), `bytes=N` (a body of N bytes instead of
    /// the JSON), `gzip=1`, `location=PATH`, `fail=reset` (the connection is closed without an
    /// answer) and `fail=truncate` (half the declared body, then the connection is closed).
    pub async fn start() -> io::Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let calls = Calls::default();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(5)).await; // e.g. out of file handles
                    continue;
                };
                let calls = calls.clone();
                let service = hyper::service::service_fn(move |req| answer(req, calls.clone()));
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service);
                tokio::spawn(connection);
            }
        });
        Ok(url)
    }

    async fn answer(req: Request<Incoming>, calls: Calls) -> io::Result<Response<Body>> {
        let query = req.uri().query().unwrap_or("");
        let param = |key: &str| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
        };
        let path = req.uri().path();
        if path.starts_with("/flaky/") {
            let mut calls = calls.lock().unwrap();
            let n = calls.entry(path.to_owned()).or_insert(0);
            *n += 1;
            if *n <= 2 {
                return Ok(Response::builder().status(503).body(body("")).unwrap());
            }
        }
        if let Some(ms) = param("delay_ms").and_then(|ms| ms.parse().ok()) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        match param("fail") {
            // hyper closes the connection when the service fails.
            Some("reset") => return Err(io::Error::other("injected fault: reset")),
            Some("truncate") => return Ok(truncated(JSON)),
            _ => {}
        }

        let (mut content, content_type) = match param("bytes").and_then(|n| n.parse().ok()) {
            Some(n) => (pattern(n), "application/octet-stream"),
            None => (Bytes::from_static(JSON.as_bytes()), "application/json"),
        };
        let mut resp = Response::builder().header(CONTENT_TYPE, content_type);
        if param("gzip") == Some("1") {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&content)?;
            content = gz.finish()?.into();
            resp = resp.header(CONTENT_ENCODING, "gzip");
        }
        if let Some(location) = param("location") {
            resp = resp.header(LOCATION, location);
        }
        let status = param("status").and_then(|code| code.parse().ok());
        resp.status(status.unwrap_or(200))
            .body(body(content))
            .map_err(io::Error::other)
    }

    fn body(bytes: impl Into<Bytes>) -> Body {
        Full::new(bytes.into()).boxed()
    }

    /// `n` bytes of `abc…xyzabc…`.
    fn pattern(n: usize) -> Bytes {
        (0..n).map(|i| b'a' + (i % 26) as u8).collect()
    }

    /// A 200 that declares all of `text` but sends only its first half: when the body ends
    /// short, hyper closes the connection. The pause lets the half go out first.
    fn truncated(text: &'static str) -> Response<Body> {
        let half = Bytes::from_static(&text.as_bytes()[..text.len() / 2]);
        let chunks = futures_util::stream::unfold(Some(half), |half| async move {
            match half {
                Some(half) => Some((Ok(Frame::data(half)), None)),
                None => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    None
                }
            }
        });
        let mut resp = Response::new(StreamBody::new(chunks).boxed());
        resp.headers_mut().insert(CONTENT_LENGTH, text.len().into());
        resp
    }

    /// A local HTTP forward proxy; see [`start_proxy`].
    pub struct Proxy {
        /// The proxy line for the pool: `http://127.0.0.1:PORT`.
        pub url: String,
        forwarded: Arc<AtomicU64>,
    }

    impl Proxy {
        /// Requests forwarded so far.
        pub fn forwarded(&self) -> u64 {
            self.forwarded.load(Ordering::Relaxed)
        }
    }

    /// Starts a minimal forward proxy: it reads one request in absolute form
    /// (`GET http://127.0.0.1:PORT/path HTTP/1.1`), connects to that loopback address, and then
    /// relays bytes both ways, so the server's faults reach the client as they are.
    pub async fn start_proxy() -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let forwarded = Arc::new(AtomicU64::new(0));
        let counter = forwarded.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                tokio::spawn(forward(tcp, counter.clone()));
            }
        });
        Ok(Proxy { url, forwarded })
    }

    async fn forward(client: TcpStream, forwarded: Arc<AtomicU64>) -> io::Result<()> {
        let mut client = BufReader::new(client);
        let mut line = String::new();
        client.read_line(&mut line).await?;
        let mut words = line.split_whitespace();
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let target = target.strip_prefix("http://").unwrap_or("");
        let (authority, path) = target.split_at(target.find('/').unwrap_or(target.len()));
        let upstream = match authority.parse::<SocketAddr>() {
            Ok(addr) if addr.ip().is_loopback() => addr,
            _ => {
                let refused = b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n";
                return client.get_mut().write_all(refused).await;
            }
        };
        // The head for the server: origin form, without the hop-by-hop proxy headers.
        let mut head = format!("{method} /{} HTTP/1.1\r\n", path.trim_start_matches('/'));
        loop {
            let mut header = String::new();
            if client.read_line(&mut header).await? == 0 || header == "\r\n" {
                break;
            }
            let name = header.split(':').next().unwrap_or("").to_ascii_lowercase();
            if !name.starts_with("proxy-") && name != "connection" {
                head += &header;
            }
        }
        head += "connection: close\r\n\r\n";

        let mut server = TcpStream::connect(upstream).await?;
        forwarded.fetch_add(1, Ordering::Relaxed);
        server.write_all(head.as_bytes()).await?;
        server.write_all(client.buffer()).await?;
        tokio::io::copy_bidirectional(client.get_mut(), &mut server).await?;
        Ok(())
    }

    /// A loopback address where nothing listens: bound, then released.
    pub fn closed_address() -> io::Result<String> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        Ok(format!("http://{}", listener.local_addr()?))
    }
}
