//! HTTPS across many hosts, like a crawl: the full fastreq preset, `Backend` + `fan_out`,
//! reqwest and raw hyper-util + hyper-rustls against a local rustls server whose one
//! wildcard certificate (`*.bench.test`, self-signed, trusted through each client's
//! root-certificate option) covers 1,000 host names, all resolved to 127.0.0.1 by each
//! client's resolver override.
//!
//! ```text
//! cargo bench --bench https
//! FASTREQ_HTTPS_N=20000 FASTREQ_HTTPS_ROUNDS=5 cargo bench --bench https
//! ```
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `FASTREQ_HTTPS_N` | 5000 | GETs per run (the figures in BENCHMARKS.md: 20000) |
//! | `FASTREQ_HTTPS_HOSTS` | 1000 | distinct host names (`h0.bench.test`, ...) |
//! | `FASTREQ_HTTPS_ROUNDS` | 3 | measured rounds (after one warm-up round) |
//! | `FASTREQ_HTTPS_CONC` | 64 | concurrency `c` (global) of every client |
//! | `FASTREQ_HTTPS_PER_HOST` | 0 (off) | also `per_host_concurrency` of the full preset |
//! | `FASTREQ_HTTPS_CLOSE_EVERY` | 2 | `reconnect` workload: the server closes a connection after this many responses |
//! | `FASTREQ_HTTPS_WORKLOADS` | h1,h2,reconnect | which workloads to run |
//! | `FASTREQ_HTTPS_ONLY` | all | variant indexes to run (0 hyper, 1 full, 2 backend, 3 reqwest), e.g. for profiling |
//!
//! Workloads (one server each, same certificate, one server worker thread for all):
//! - `h1`: the server offers only `http/1.1` by ALPN, keep-alive;
//! - `h2`: the server offers `h2` and `http/1.1`; every client negotiates `h2`;
//! - `reconnect`: `http/1.1` only, and the server closes each connection after
//!   `FASTREQ_HTTPS_CLOSE_EVERY` responses (`Connection: close`), so most requests need a new
//!   TLS handshake and session resumption decides its cost.
//!
//! Request `i` goes to host `hash(i) % hosts` (the same sequence for every variant), path
//! `/item/i`; the answer is 200 bytes. Every run builds a fresh client (empty pool and
//! session cache), outside the timed part, so each run starts as a new crawl: at least one
//! full handshake per host. All clients run on one current-thread runtime, c = 64, rate
//! limit off, and trust only the bench CA where the client allows it (the preset and the
//! backend also keep their built-in roots, as users have them).
//!
//! The server issues stateless TLS 1.3 session tickets (rustls `Ticketer`), as large sites
//! do; its default stateful cache of 256 sessions would cap resumption across 1,000 hosts
//! whatever the client does. The server counts, per run: full and resumed TLS handshakes (rustls
//! `ServerConnection::handshake_kind`), connections opened per host name (SNI), and the most
//! connections open at once to one host. The bench asserts that the latter never exceeds
//! the concurrency the client was given (and the preset's per-host limit when set).
//!
//! In every round each variant runs once per workload; the order of the variants rotates
//! from round to round. Reported: median req/s and median of the per-round ratios to raw
//! hyper-util (and of the preset to reqwest).
//!
//! Variants:
//! - `hyper`: `hyper_util` legacy client over `hyper_rustls::HttpsConnector` (a
//!   `rustls::ClientConfig` with the CA as its only root, rustls's default session cache of
//!   32 servers, ALPN h2 + http/1.1), a fixed-address resolver, `buffer_unordered(c)`;
//! - `full`: `fastreq::stack().concurrency(c).fan_out_limit(c)` + `add_root_certificate` +
//!   `resolve` per host, `client.fan_out(requests)`;
//! - `backend`: `fastreq::Backend` (same TLS and resolver settings) +
//!   `fastreq::fan_out(..).limit(c)`, body read;
//! - `reqwest`: reqwest 0.13 (rustls on `ring`, `tls_certs_only`, `resolve` per host, h2 by
//!   ALPN) + `buffer_unordered(c)`, `bytes()`.

#[path = "common/baseline.rs"]
mod baseline;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fastreq::{Backend, Certificate, ResponseBody, ResponseExt};
use futures::StreamExt;
use http::{Request, Response};
use http_body_util::Full;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_rustls::rustls;
use tower::ServiceExt;

const BODY: &[u8; 200] = &[b'x'; 200];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    Hyper,
    Full,
    Backend,
    Reqwest,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Hyper => "hyper-util + hyper-rustls + buffer_unordered",
            Variant::Full => "full preset `fastreq::stack()`",
            Variant::Backend => "Backend + fan_out",
            Variant::Reqwest => "reqwest + buffer_unordered",
        }
    }
}

const VARIANTS: [Variant; 4] = [
    Variant::Hyper,
    Variant::Full,
    Variant::Backend,
    Variant::Reqwest,
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Workload {
    H1,
    H2,
    Reconnect,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::H1 => "h1",
            Workload::H2 => "h2",
            Workload::Reconnect => "reconnect",
        }
    }
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// splitmix64: the host of request `i`.
fn host_of(i: usize, hosts: usize) -> usize {
    let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % hosts as u64) as usize
}

fn host_name(h: usize) -> String {
    format!("h{h}.bench.test")
}

// ---------------------------------------------------------------- server

/// Per host name (SNI): connections opened, open now, most open at once.
#[derive(Default, Clone, Copy)]
struct HostConns {
    opened: usize,
    open: usize,
    max_open: usize,
}

#[derive(Default)]
struct Stats {
    full: AtomicUsize,
    resumed: AtomicUsize,
    tls13: AtomicUsize,
    hosts: Mutex<HashMap<String, HostConns>>,
}

impl Stats {
    fn reset(&self) {
        self.full.store(0, Relaxed);
        self.resumed.store(0, Relaxed);
        self.tls13.store(0, Relaxed);
        self.hosts.lock().unwrap().clear();
    }
}

/// Decrements the open count of its host when the connection ends.
struct OpenGuard {
    stats: Arc<Stats>,
    host: String,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        if let Some(h) = self.stats.hosts.lock().unwrap().get_mut(&self.host) {
            h.open = h.open.saturating_sub(1);
        }
    }
}

struct Server {
    addr: SocketAddr,
    stats: Arc<Stats>,
}

fn server_config(
    cert: &rcgen::CertifiedKey<rcgen::KeyPair>,
    alpn: &[&[u8]],
) -> Arc<rustls::ServerConfig> {
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .expect("server certificate");
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // Stateless session tickets, as large servers use: rustls's default server-side session
    // cache (256 sessions) would otherwise be what limits resumption across 1,000 hosts.
    cfg.ticketer = rustls::crypto::ring::Ticketer::new().expect("ticketer");
    Arc::new(cfg)
}

async fn serve(
    listener: tokio::net::TcpListener,
    cfg: Arc<rustls::ServerConfig>,
    close_every: usize,
    stats: Arc<Stats>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, stats) = (acceptor.clone(), stats.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let conn = tls.get_ref().1;
            match conn.handshake_kind() {
                Some(rustls::HandshakeKind::Resumed) => stats.resumed.fetch_add(1, Relaxed),
                _ => stats.full.fetch_add(1, Relaxed),
            };
            if conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3) {
                stats.tls13.fetch_add(1, Relaxed);
            }
            let host = conn.server_name().unwrap_or("").to_owned();
            {
                let mut hosts = stats.hosts.lock().unwrap();
                let h = hosts.entry(host.clone()).or_default();
                h.opened += 1;
                h.open += 1;
                h.max_open = h.max_open.max(h.open);
            }
            let _guard = OpenGuard { stats, host };
            let served = Arc::new(AtomicUsize::new(0));
            let svc = hyper::service::service_fn(move |_req| {
                let n = served.fetch_add(1, Relaxed) + 1;
                async move {
                    let mut resp = Response::new(Full::new(Bytes::from_static(BODY)));
                    if close_every > 0 && n.is_multiple_of(close_every) {
                        resp.headers_mut().insert(
                            http::header::CONNECTION,
                            http::HeaderValue::from_static("close"),
                        );
                    }
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), svc)
                .await;
        });
    }
}

/// Starts the three servers on one thread with a one-worker runtime.
fn start_servers(
    cert: &rcgen::CertifiedKey<rcgen::KeyPair>,
    close_every: usize,
) -> HashMap<&'static str, Server> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let mut out = HashMap::new();
    for (w, alpn, close) in [
        (Workload::H1, &[&b"http/1.1"[..]][..], 0),
        (Workload::H2, &[&b"h2"[..], &b"http/1.1"[..]][..], 0),
        (Workload::Reconnect, &[&b"http/1.1"[..]][..], close_every),
    ] {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stats = Arc::new(Stats::default());
        rt.spawn(serve(
            listener,
            server_config(cert, alpn),
            close,
            stats.clone(),
        ));
        out.insert(w.name(), Server { addr, stats });
    }
    std::thread::spawn(move || rt.block_on(std::future::pending::<()>()));
    out
}

// ---------------------------------------------------------------- clients

struct Setup {
    hosts: usize,
    c: usize,
    per_host: usize,
    ca_der: Vec<u8>,
}

fn urls(addr: SocketAddr, n: usize, hosts: usize) -> impl Iterator<Item = String> {
    let port = addr.port();
    (0..n).map(move |i| format!("https://{}:{port}/item/{i}", host_name(host_of(i, hosts))))
}

/// Runs `n` GETs; returns (successful 200-byte responses, elapsed).
async fn run(variant: Variant, s: &Setup, addr: SocketAddr, n: usize) -> (usize, Duration) {
    let (c, hosts) = (s.c, s.hosts);
    let mut ok = 0;
    let start;
    match variant {
        Variant::Full => {
            let mut b = fastreq::stack()
                .concurrency(c)
                .fan_out_limit(c)
                .add_root_certificate(Certificate::from_der(s.ca_der.clone()));
            if s.per_host > 0 {
                b = b.per_host_concurrency(s.per_host);
            }
            for h in 0..hosts {
                b = b.resolve(&host_name(h), addr);
            }
            let client = b.build().expect("valid stack");
            start = Instant::now();
            let mut out = client.fan_out(urls(addr, n, hosts).map(fastreq::get));
            while let Some(o) = out.next().await {
                ok += usize::from(o.result.is_ok_and(|f| f.body().len() == 200));
            }
        }
        Variant::Backend => {
            let mut b =
                Backend::builder().add_root_certificate(Certificate::from_der(s.ca_der.clone()));
            for h in 0..hosts {
                b = b.resolve(&host_name(h), addr);
            }
            let svc = b
                .build()
                .expect("backend")
                .and_then(|r: Response<ResponseBody>| r.bytes());
            let reqs = urls(addr, n, hosts).map(|u| {
                Request::get(u)
                    .body(fastreq::Body::empty())
                    .expect("valid request")
            });
            start = Instant::now();
            let mut out = fastreq::fan_out(svc, reqs).limit(c);
            while let Some(o) = out.next().await {
                ok += usize::from(o.result.is_ok_and(|b| b.len() == 200));
            }
        }
        Variant::Hyper => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(s.ca_der.clone().into()).expect("CA");
            let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            // Every name resolves to the server (the connector puts the URL's port on it).
            let resolver = tower::service_fn(move |_: Name| async move {
                Ok::<_, Infallible>(std::iter::once(addr))
            });
            let mut http = HttpConnector::new_with_resolver(resolver);
            http.enforce_http(false);
            http.set_nodelay(true);
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_only()
                .enable_all_versions()
                .wrap_connector(http);
            let client = baseline::client(connector);
            start = Instant::now();
            ok = baseline::get_each(&client, urls(addr, n, hosts), c).await;
        }
        Variant::Reqwest => {
            let mut b =
                reqwest::Client::builder()
                    .tls_certs_only([
                        reqwest::Certificate::from_der(&s.ca_der).expect("CA for reqwest")
                    ]);
            for h in 0..hosts {
                b = b.resolve(&host_name(h), addr);
            }
            let client = b.build().expect("reqwest client");
            start = Instant::now();
            let mut out = futures::stream::iter(urls(addr, n, hosts))
                .map(|u| {
                    let fut = client.get(u).send();
                    async move {
                        let body = fut.await?.bytes().await?;
                        Ok::<_, reqwest::Error>(body.len())
                    }
                })
                .buffer_unordered(c);
            while let Some(r) = out.next().await {
                ok += usize::from(r.is_ok_and(|len| len == 200));
            }
        }
    }
    (ok, start.elapsed())
}

// ---------------------------------------------------------------- report

/// One run's figures.
#[derive(Clone, Copy, Default)]
struct Sample {
    rps: f64,
    full: usize,
    resumed: usize,
    tls13: usize,
    hs_per_s: f64,
    opened_max: usize,
    opened_mean: f64,
    open_max: usize,
    /// Handshakes beyond the first one to each host: the ones that could resume.
    reconnects: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn median_by(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    median(samples.iter().map(f).collect())
}

fn main() {
    // reqwest is built with `rustls-no-provider`: install ring, as fastreq uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let n = env_num("FASTREQ_HTTPS_N", 5_000);
    let rounds = env_num("FASTREQ_HTTPS_ROUNDS", 3).max(1);
    let setup_hosts = env_num("FASTREQ_HTTPS_HOSTS", 1000).max(1);
    let c = env_num("FASTREQ_HTTPS_CONC", 64).max(1);
    let per_host = env_num("FASTREQ_HTTPS_PER_HOST", 0);
    let close_every = env_num("FASTREQ_HTTPS_CLOSE_EVERY", 2);
    let workloads: Vec<Workload> = std::env::var("FASTREQ_HTTPS_WORKLOADS")
        .unwrap_or_else(|_| "h1,h2,reconnect".into())
        .split(',')
        .map(|w| match w.trim() {
            "h1" => Workload::H1,
            "h2" => Workload::H2,
            "reconnect" => Workload::Reconnect,
            other => panic!("FASTREQ_HTTPS_WORKLOADS: unknown workload `{other}`"),
        })
        .collect();
    let only: Vec<usize> = std::env::var("FASTREQ_HTTPS_ONLY")
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_default();
    let variants: Vec<Variant> = VARIANTS
        .iter()
        .enumerate()
        .filter(|(i, _)| only.is_empty() || only.contains(i))
        .map(|(_, v)| *v)
        .collect();

    let cert = rcgen::generate_simple_self_signed(vec!["*.bench.test".to_owned()])
        .expect("rcgen: wildcard certificate");
    let setup = Setup {
        hosts: setup_hosts,
        c,
        per_host,
        ca_der: cert.cert.der().to_vec(),
    };
    let servers = start_servers(&cert, close_every);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");

    println!(
        "https: {n} GETs per run over {} hosts, c = {c}{}, {rounds} rounds (+1 warm-up), \
         reconnect closes every {close_every} responses, client current_thread, server 1 worker",
        setup.hosts,
        if per_host > 0 {
            format!(", preset per_host_concurrency = {per_host}")
        } else {
            String::new()
        }
    );
    let bench_start = Instant::now();
    // samples[workload][variant] = one Sample per measured round.
    let mut samples: Vec<Vec<Vec<Sample>>> =
        vec![vec![Vec::new(); variants.len()]; workloads.len()];
    let mut violations = Vec::new();
    for round in 0..=rounds {
        for (wi, w) in workloads.iter().enumerate() {
            let server = &servers[w.name()];
            for k in 0..variants.len() {
                let vi = (k + round) % variants.len();
                let v = variants[vi];
                server.stats.reset();
                let (ok, elapsed) = rt.block_on(run(v, &setup, server.addr, n));
                assert_eq!(
                    ok,
                    n,
                    "{} / {}: {ok} of {n} requests succeeded",
                    w.name(),
                    v.name()
                );
                // Let the server see the last connections close before reading its stats.
                std::thread::sleep(Duration::from_millis(20));
                let st = &server.stats;
                let hosts = st.hosts.lock().unwrap();
                let opened: Vec<usize> = hosts.values().map(|h| h.opened).collect();
                let open_max = hosts.values().map(|h| h.max_open).max().unwrap_or(0);
                let limit = if v == Variant::Full && per_host > 0 {
                    per_host.min(c)
                } else {
                    c
                };
                if open_max > limit {
                    violations.push(format!(
                        "{} / {}: {open_max} connections open at once to one host (limit {limit})",
                        w.name(),
                        v.name()
                    ));
                }
                let secs = elapsed.as_secs_f64();
                let (full, resumed) = (st.full.load(Relaxed), st.resumed.load(Relaxed));
                let s = Sample {
                    rps: n as f64 / secs,
                    full,
                    resumed,
                    tls13: st.tls13.load(Relaxed),
                    hs_per_s: (full + resumed) as f64 / secs,
                    opened_max: opened.iter().copied().max().unwrap_or(0),
                    opened_mean: opened.iter().sum::<usize>() as f64 / setup.hosts as f64,
                    open_max,
                    reconnects: (full + resumed).saturating_sub(hosts.len()),
                };
                if round > 0 {
                    samples[wi][vi].push(s);
                }
            }
        }
    }

    let hyper_i = variants.iter().position(|v| *v == Variant::Hyper);
    let reqwest_i = variants.iter().position(|v| *v == Variant::Reqwest);
    for (wi, w) in workloads.iter().enumerate() {
        println!("\n### workload `{}`\n", w.name());
        println!(
            "| variant | req/s (median) | × hyper-rustls | full handshakes | resumed | TLS 1.3 | handshakes/s | conns opened per host max / mean | most open at once to one host |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (vi, v) in variants.iter().enumerate() {
            let ss = &samples[wi][vi];
            let ratio = |base: Option<usize>| -> String {
                match base {
                    Some(b) => {
                        let r: Vec<f64> = ss
                            .iter()
                            .zip(&samples[wi][b])
                            .map(|(a, b)| a.rps / b.rps)
                            .collect();
                        format!("{:.2}", median(r))
                    }
                    None => "-".into(),
                }
            };
            println!(
                "| {} | {:.0} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} / {:.1} | {:.0} |",
                v.name(),
                median_by(ss, |s| s.rps),
                ratio(hyper_i),
                median_by(ss, |s| s.full as f64),
                median_by(ss, |s| s.resumed as f64),
                median_by(ss, |s| s.tls13 as f64),
                median_by(ss, |s| s.hs_per_s),
                median_by(ss, |s| s.opened_max as f64),
                median_by(ss, |s| s.opened_mean),
                median_by(ss, |s| s.open_max as f64),
            );
        }
        let full_i = variants.iter().position(|v| *v == Variant::Full);
        if let (Some(f), Some(r)) = (full_i, reqwest_i) {
            let ratios: Vec<f64> = samples[wi][f]
                .iter()
                .zip(&samples[wi][r])
                .map(|(a, b)| a.rps / b.rps)
                .collect();
            println!(
                "\nfull preset / reqwest (median of per-round ratios): {:.2}",
                median(ratios)
            );
        }
        if *w == Workload::Reconnect {
            for (vi, v) in variants.iter().enumerate() {
                let resumed = median_by(&samples[wi][vi], |s| s.resumed as f64);
                let reconnects = median_by(&samples[wi][vi], |s| s.reconnects as f64);
                let share = resumed / reconnects.max(1.0);
                println!(
                    "TLS 1.3 session resumption on reconnects, {}: {} ({resumed:.0} of \
                     {reconnects:.0} reconnects resumed, {:.0} %)",
                    v.name(),
                    if share >= 0.5 { "yes" } else { "no" },
                    share * 100.0
                );
            }
        }
    }
    println!(
        "\ntotal bench time: {:.1} s",
        bench_start.elapsed().as_secs_f64()
    );
    if violations.is_empty() {
        println!("connections per host: never above the concurrency set (asserted)");
    } else {
        for v in &violations {
            eprintln!("VIOLATION: {v}");
        }
        panic!("connections per host exceeded the concurrency set");
    }
}
