//! End-to-end fan-out: the full default fastreq preset against `Backend` + `fan_out` alone
//! and raw hyper-util, over a local hyper server; plus h2c against HTTP/1.1, and with
//! feature `http3` HTTP/3 over a local h3 (quinn) server.
//!
//! ```text
//! cargo bench --bench e2e
//! FASTREQ_E2E_N=20000 FASTREQ_E2E_ROUNDS=2 FASTREQ_E2E_RUNTIME=multi cargo bench --bench e2e
//! FASTREQ_E2E_N=20000 FASTREQ_E2E_CONC=64 cargo bench --bench e2e --features http3
//! ```
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `FASTREQ_E2E_N` | 50000 | GETs per run |
//! | `FASTREQ_E2E_ROUNDS` | 3 | measured rounds (after one warm-up round) |
//! | `FASTREQ_E2E_CONC` | 64,256 | concurrencies |
//! | `FASTREQ_E2E_RUNTIME` | current | client runtime: `current` (current-thread) or `multi` (2 workers) |
//! | `FASTREQ_E2E_MEM` | off | `1`: also the memory runs after the throughput; `only`: just them |
//! | `FASTREQ_E2E_ONLY` | all | comma-separated variant indexes to run (0 hyper, 1 full, 2 backend, 3 h2c, 4 boxed, 5 reqwest, 6 h3, 7 backend h3), e.g. for profiling |
//!
//! The server (`tests/support`, one worker thread, the 200-byte JSON of `routes()`, no path
//! tracking) runs on its own thread; the client on a runtime of its own. In every round each
//! variant runs once per concurrency; the order of the variants rotates from round to round
//! so that drift of the (shared, noisy) machine hits all of them alike. The figure reported
//! is the median req/s over the rounds, and the ratio to raw hyper-util of the same round
//! set.
//!
//! Memory runs (`FASTREQ_E2E_MEM`): the bench re-executes itself once per run so each has
//! its own peak RSS (`VmHWM`; the server stays in the parent): the full preset
//! (`concurrency(256)`, current-thread) streaming 100,000 and 1,000,000 lazy `fastreq::get`
//! inputs through `client.fan_out`, each response dropped, and `client.get_all` of
//! 1,000,000 URLs, every 200-byte response kept.
//!
//! Variants:
//! - `full`: `fastreq::stack().concurrency(c).fan_out_limit(c).build()` (retry, UA, cookies,
//!   redirects, decompression, timeouts on; rate limit off), `client.fan_out(requests)`;
//! - `full-h2c`: the same with `http2_prior_knowledge()` (one connection, multiplexed);
//! - `full-boxed`: `full` with a no-op user layer, which puts the preset on its general
//!   path (every layer a `BoxCloneSyncService`, as before the statically typed chain);
//! - `backend`: `fastreq::Backend` + `fastreq::fan_out(..).limit(c)`, body read;
//! - `hyper`: `hyper_util::client::legacy::Client` + `buffer_unordered(c)`, body collected;
//! - `reqwest`: reqwest 0.13 (rustls on `ring`, HTTP/1.1) + `buffer_unordered(c)`, `bytes()`;
//! - `full-h3`, `backend-h3` (feature `http3`): `full` and `backend` with
//!   `http3_prior_knowledge()` against an h3 server (quinn + h3, TLS 1.3 with a self-signed
//!   certificate, the same 200-byte JSON) on its own thread with one current-thread runtime,
//!   as the TCP server. Over TLS and QUIC, so compare them with h1/h2c knowing that those
//!   are plaintext.

#[path = "common/baseline.rs"]
mod baseline;
#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fastreq::{Backend, Body, ResponseBody, ResponseExt};
use futures::StreamExt;
use http::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use support::TestServer;
use tower::ServiceExt;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    Full,
    FullH2c,
    FullBoxed,
    Backend,
    Hyper,
    Reqwest,
    FullH3,
    BackendH3,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Full => "full preset (h1)",
            Variant::FullH2c => "full preset (h2c)",
            Variant::FullBoxed => "full preset, boxed path (h1)",
            Variant::Backend => "Backend + fan_out",
            Variant::Hyper => "hyper-util + buffer_unordered",
            Variant::Reqwest => "reqwest + buffer_unordered",
            Variant::FullH3 => "full preset (h3, TLS)",
            Variant::BackendH3 => "Backend + fan_out (h3, TLS)",
        }
    }
}

const VARIANTS: [Variant; 8] = [
    Variant::Hyper,
    Variant::Full,
    Variant::Backend,
    Variant::FullH2c,
    Variant::FullBoxed,
    Variant::Reqwest,
    Variant::FullH3,
    Variant::BackendH3,
];

/// The h3 server of the `*-h3` variants: its base URL and certificate.
#[derive(Clone)]
struct H3Target {
    base: Arc<str>,
    cert: fastreq::Certificate,
}

/// Starts an HTTP/3 server on 127.0.0.1 on a thread of its own (one current-thread
/// runtime, as the TCP server's one worker): every request gets `DEFAULT_JSON`.
#[cfg(feature = "http3")]
fn start_h3_server() -> H3Target {
    use bytes::Buf;
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("rcgen");
    let cert = ck.cert.der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        ck.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone().into()], key)
        .expect("server certificate");
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).expect("QUIC TLS");
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.max_concurrent_bidi_streams(1024u32.into());
    config.transport_config(Arc::new(transport));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap())
                .expect("UDP endpoint");
            tx.send(endpoint.local_addr().expect("local addr"))
                .expect("main thread waits");
            while let Some(incoming) = endpoint.accept().await {
                tokio::spawn(async move {
                    let Ok(conn) = incoming.await else { return };
                    let Ok(mut h3) =
                        h3::server::Connection::<_, Bytes>::new(h3_quinn::Connection::new(conn))
                            .await
                    else {
                        return;
                    };
                    while let Ok(Some(resolver)) = h3.accept().await {
                        tokio::spawn(async move {
                            let Ok((_req, mut stream)) = resolver.resolve_request().await else {
                                return;
                            };
                            while let Ok(Some(mut chunk)) = stream.recv_data().await {
                                chunk.advance(chunk.remaining());
                            }
                            let resp = http::Response::builder()
                                .header("content-type", "application/json")
                                .body(())
                                .expect("response");
                            if stream.send_response(resp).await.is_ok()
                                && stream
                                    .send_data(Bytes::from_static(support::DEFAULT_JSON.as_bytes()))
                                    .await
                                    .is_ok()
                            {
                                let _ = stream.finish().await;
                            }
                        });
                    }
                });
            }
        });
    });
    let addr: std::net::SocketAddr = rx.recv().expect("h3 server started");
    H3Target {
        base: format!("https://localhost:{}", addr.port()).into(),
        cert: fastreq::Certificate::from_der(cert),
    }
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn requests(base: &Arc<str>, n: usize) -> impl Iterator<Item = Request<Body>> {
    let base = base.clone();
    (0..n).map(move |i| {
        Request::get(format!("{base}/item/{i}"))
            .body(Body::empty())
            .expect("valid request")
    })
}

/// Runs `n` GETs; returns (successful responses, elapsed).
async fn run(
    variant: Variant,
    base: Arc<str>,
    h3: Option<H3Target>,
    n: usize,
    c: usize,
) -> (usize, Duration) {
    let mut ok = 0;
    let start;
    match variant {
        Variant::FullH3 => {
            let h3 = h3.expect("an h3 server");
            let client = fastreq::stack()
                .concurrency(c)
                .fan_out_limit(c)
                .http3()
                .add_root_certificate(h3.cert)
                .build()
                .expect("valid stack");
            start = Instant::now();
            let mut out = client.fan_out(requests(&h3.base, n));
            while let Some(o) = out.next().await {
                ok += usize::from(o.result.is_ok_and(|f| f.body().len() == 200));
            }
        }
        Variant::BackendH3 => {
            let h3 = h3.expect("an h3 server");
            let svc = Backend::builder()
                .http3_prior_knowledge()
                .add_root_certificate(h3.cert)
                .build()
                .expect("valid backend")
                .and_then(|r: Response<ResponseBody>| r.bytes());
            start = Instant::now();
            let mut out = fastreq::fan_out(svc, requests(&h3.base, n)).limit(c);
            while let Some(o) = out.next().await {
                ok += usize::from(o.result.is_ok_and(|b| b.len() == 200));
            }
        }
        Variant::Full | Variant::FullH2c | Variant::FullBoxed => {
            let mut b = fastreq::stack().concurrency(c).fan_out_limit(c);
            if variant == Variant::FullH2c {
                b = b.http2_prior_knowledge();
            }
            if variant == Variant::FullBoxed {
                // A (no-op) user layer puts the preset on its general path, where every
                // layer is a `BoxCloneSyncService`: the layout before the typed chain.
                b = b.layer_at(
                    fastreq::stack::Position::AroundBackend,
                    tower::layer::util::Identity::new(),
                );
            }
            let client = b.build().expect("valid stack");
            start = Instant::now();
            let mut out = client.fan_out(requests(&base, n));
            while let Some(o) = out.next().await {
                ok += usize::from(o.result.is_ok_and(|f| f.body().len() == 200));
            }
        }
        Variant::Backend => {
            let svc = Backend::new().and_then(|r: Response<ResponseBody>| r.bytes());
            start = Instant::now();
            let mut out = fastreq::fan_out(svc, requests(&base, n)).limit(c);
            while let Some(o) = out.next().await {
                ok += usize::from(o.result.is_ok_and(|b| b.len() == 200));
            }
        }
        Variant::Hyper => {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            let client = baseline::client(connector);
            start = Instant::now();
            ok = baseline::get_each(&client, (0..n).map(|i| format!("{base}/item/{i}")), c).await;
        }
        Variant::Reqwest => {
            let client = reqwest::Client::builder()
                .http1_only()
                .build()
                .expect("reqwest client");
            start = Instant::now();
            let mut out = futures::stream::iter(0..n)
                .map(|i| {
                    let fut = client.get(format!("{base}/item/{i}")).send();
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

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn proc_status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Child process of the memory runs: `e2e mem <stream|get_all> N BASE_URL`. Prints
/// `vmhwm_kb=..` and `ok=..`.
fn mem_child(mode: &str, n: usize, base: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let base = base.to_owned();
    let ok = rt.block_on(async move {
        let client = fastreq::stack().concurrency(256).build().expect("stack");
        let urls = (0..n).map(move |i| format!("{base}/item/{i}"));
        match mode {
            "stream" => {
                let mut ok = 0;
                let mut out = client.fan_out(urls.map(fastreq::get));
                while let Some(o) = out.next().await {
                    ok += usize::from(o.result.is_ok_and(|f| f.body().len() == 200));
                }
                ok
            }
            _ => {
                let all = client.get_all(urls).await;
                all.iter()
                    .filter(|r| r.as_ref().is_ok_and(|f| f.body().len() == 200))
                    .count()
            }
        }
    });
    println!("vmhwm_kb={}", proc_status_kb("VmHWM"));
    println!("ok={ok}");
}

/// Peak RSS of the full preset: streaming 100k vs 1M requests, and `get_all` of 1M.
fn mem_runs(base: &str) {
    let exe = std::env::current_exe().expect("current_exe");
    println!("\n| run | N | peak RSS (VmHWM) | time | ok |");
    println!("|---|---:|---:|---:|---:|");
    let mut stream = Vec::new();
    for (mode, n) in [
        ("stream", 100_000usize),
        ("stream", 1_000_000),
        ("get_all", 1_000_000),
    ] {
        let start = Instant::now();
        let out = std::process::Command::new(&exe)
            .args(["mem", mode, &n.to_string(), base])
            .output()
            .expect("spawn memory child");
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |name: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.parse().ok())
                .unwrap_or(0)
        };
        let kb = field("vmhwm_kb=");
        if mode == "stream" {
            stream.push(kb);
        }
        println!(
            "| full preset, {} | {n} | {:.1} MiB | {:.1} s | {} |",
            if mode == "stream" {
                "`client.fan_out` (lazy `fastreq::get`), each response dropped"
            } else {
                "`client.get_all`, all responses kept"
            },
            kb as f64 / 1024.0,
            start.elapsed().as_secs_f64(),
            field("ok=")
        );
    }
    if let [small, large] = stream[..] {
        println!(
            "\nPeak RSS ratio 1M / 100k streaming: {:.3} (target ≤ 1.1, absolute < 64 MiB)",
            large as f64 / small.max(1) as f64
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("mem") {
        let n = args[3].parse().expect("N");
        mem_child(&args[2], n, &args[4]);
        return;
    }
    // `cargo bench` passes `--bench`; nothing else to parse.
    // reqwest is built with `rustls-no-provider`: install ring, as fastreq uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let n = env_num("FASTREQ_E2E_N", 50_000);
    let rounds = env_num("FASTREQ_E2E_ROUNDS", 3).max(1);
    let concs: Vec<usize> = std::env::var("FASTREQ_E2E_CONC")
        .unwrap_or_else(|_| "64,256".into())
        .split(',')
        .map(|s| s.trim().parse().expect("FASTREQ_E2E_CONC: numbers"))
        .collect();
    let only: Vec<usize> = std::env::var("FASTREQ_E2E_ONLY")
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_default();
    let multi = std::env::var("FASTREQ_E2E_RUNTIME").is_ok_and(|s| s == "multi");

    let server = TestServer::builder()
        .worker_threads(1)
        .track_paths(false)
        .routes();
    let base: Arc<str> = server.base_url().trim_end_matches('/').into();
    #[cfg(feature = "http3")]
    let h3 = Some(start_h3_server());
    #[cfg(not(feature = "http3"))]
    let h3: Option<H3Target> = None;
    let mem = std::env::var("FASTREQ_E2E_MEM").unwrap_or_default();
    if mem == "only" {
        mem_runs(&base);
        return;
    }
    let rt = if multi {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .expect("runtime");
    println!(
        "e2e: {n} GETs per run, {rounds} rounds (+1 warm-up), client runtime {}",
        if multi {
            "multi_thread(2)"
        } else {
            "current_thread"
        }
    );

    // results[conc][variant] = req/s per round
    let mut results = vec![vec![Vec::new(); VARIANTS.len()]; concs.len()];
    for round in 0..=rounds {
        for (ci, &c) in concs.iter().enumerate() {
            for k in 0..VARIANTS.len() {
                let vi = (k + round) % VARIANTS.len();
                let v = VARIANTS[vi];
                if !only.is_empty() && !only.contains(&vi) {
                    continue;
                }
                if matches!(v, Variant::FullH3 | Variant::BackendH3) && h3.is_none() {
                    continue; // Needs feature `http3`.
                }
                let base = base.clone();
                let h3 = h3.clone();
                let (ok, took) =
                    rt.block_on(
                        async move { tokio::spawn(run(v, base, h3, n, c)).await.expect("run") },
                    );
                assert_eq!(ok, n, "{}: {} of {n} requests failed", v.name(), n - ok);
                let rps = n as f64 / took.as_secs_f64();
                if round > 0 {
                    results[ci][vi].push(rps);
                }
                println!(
                    "{} c={c:<4} {:<32} {:>9.0} req/s",
                    if round == 0 { "warm-up " } else { "measured" },
                    v.name(),
                    rps
                );
            }
        }
    }

    println!(
        "\n| concurrency | variant | req/s (median) | × hyper-util | × Backend+fan_out | × reqwest |"
    );
    println!("|---|---|---:|---:|---:|---:|");
    for (ci, &c) in concs.iter().enumerate() {
        // Variants left out by `FASTREQ_E2E_ONLY` have no runs: no row, and ratios to them
        // are NaN.
        let med: Vec<f64> = results[ci]
            .iter_mut()
            .map(|v| if v.is_empty() { f64::NAN } else { median(v) })
            .collect();
        let hyper = med[0];
        let backend = med[2];
        let reqwest = med[5];
        for (vi, v) in VARIANTS.iter().enumerate() {
            if med[vi].is_nan() {
                continue;
            }
            println!(
                "| {c} | {} | {:.0} | {:.2} | {:.2} | {:.2} |",
                v.name(),
                med[vi],
                med[vi] / hyper,
                med[vi] / backend,
                med[vi] / reqwest
            );
        }
    }
    if mem == "1" {
        mem_runs(&base);
    }
}
