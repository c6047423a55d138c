//! Fan-out benchmark: fastreq (`Backend` + `fan_out`) against raw hyper-util, and the peak
//! memory of a long fan-out.
//!
//! ```text
//! cargo bench --bench fan_out
//! FASTREQ_BENCH_N=5000 FASTREQ_BENCH_ROUNDS=1 FASTREQ_BENCH_RSS_N=10000,100000 cargo bench --bench fan_out
//! cargo bench --bench fan_out -- --n 5000 --rounds 1 --only throughput
//! ```
//!
//! Settings (environment variable, or the command-line flag after `--`, which wins):
//!
//! | variable | flag | default | meaning |
//! |---|---|---|---|
//! | `FASTREQ_BENCH_N` | `--n` | 50000 | requests per throughput run |
//! | `FASTREQ_BENCH_ROUNDS` | `--rounds` | 3 | measured runs per variant and configuration |
//! | `FASTREQ_BENCH_CONC` | `--conc` | 64,256 | concurrencies |
//! | `FASTREQ_BENCH_RSS_N` | `--rss-n` | 100000,1000000 | request counts of the memory runs |
//! | `FASTREQ_BENCH_RSS_CONC` | `--rss-conc` | 256 | `limit` of the memory runs |
//! | `FASTREQ_BENCH_ONLY` | `--only` | both | `throughput` or `rss` |
//! | `FASTREQ_BENCH_VARIANTS` | `--variants` | A,A',B | throughput variants to run (`A2` = `A'`; diagnostics `C`, `D`) |
//! | `FASTREQ_BENCH_RUNTIME` | `--runtime` | both | `current_thread` and/or `multi_thread` |
//! | `FASTREQ_BENCH_MAX_OTHER_LOAD` | `--max-other-load` | 0.25 | repeat a throughput run that saw more foreign CPU load than this many cores (negative: never) |
//! | `FASTREQ_BENCH_RETRIES` | `--retries` | 4 | at most this many repeats per run |
//!
//! The machine may be shared: every throughput run measures the CPU used by other processes
//! while it ran (`/proc/stat`), and a run disturbed by more than `max-other-load` is repeated
//! after waiting (up to 30 s) for the load to drop. The report says how many runs were
//! repeated and how many still saw foreign load.
//!
//! Throughput: one local server (1 worker thread, the 200-byte JSON of `routes()`), three
//! client variants that all build one `http::Request` per input lazily, send it over
//! HTTP/1.1 keep-alive and read the whole body:
//!
//! - `A` fastreq: `Backend.and_then(|r| r.bytes())` driven by `fastreq::fan_out(..).limit(c)`,
//!   inputs are hand-built `http::Request<fastreq::Body>` (same construction as `B`);
//! - `A'` the same with `fastreq::get(url)` (`RequestBuilder`) inputs;
//! - `B` raw `hyper_util::client::legacy::Client<HttpConnector, Empty<Bytes>>`, the body
//!   collected in the same future, `futures::stream::iter(..).map(..).buffer_unordered(c)`.
//!
//! Two diagnostic variants, off by default (`--variants A,B,C,D`), split A's overhead:
//!
//! - `C` fastreq's `Backend` driven like `B` (`buffer_unordered`, no `fan_out`);
//! - `D` `B` with fastreq's connector type, hyper-rustls `HttpsConnector<HttpConnector>`
//!   (hyper-util clones the client and its connector for every request).
//!
//! Each runtime flavour gets a warm-up run of every variant, then `rounds` rounds in which
//! every variant runs once per concurrency, the order rotating from round to round. The
//! driving future is spawned onto the runtime (so on `multi_thread` it runs on a worker).
//!
//! Memory: the bench re-executes itself as `fan_out rss N BASE_URL LIMIT` for each N; the
//! child streams N requests (a lazy iterator of `fastreq::get`) through
//! `Backend` + `fan_out` on a current-thread runtime, reads and drops each body, and prints
//! its `VmHWM`. The server stays in the parent, so the child's peak is the client's alone.
//!
//! Results go to stdout and, as markdown, to `target/bench-fan_out.md`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fastreq::{Backend, Body, ResponseBody, ResponseExt};
use futures::{StreamExt, TryFutureExt as _};
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use support::TestServer;
use tower::ServiceExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// ---------------------------------------------------------------------------------------
// Settings

#[derive(Debug, Clone)]
struct Settings {
    n: usize,
    rounds: usize,
    conc: Vec<usize>,
    rss_n: Vec<usize>,
    rss_conc: usize,
    /// A run that saw more foreign CPU load than this (cores) is repeated, after waiting
    /// for the machine to calm down, up to `retries` times. Negative: never repeat.
    max_other_load: f64,
    retries: usize,
    throughput: bool,
    rss: bool,
    variants: Vec<Variant>,
    flavors: Vec<Flavor>,
}

fn parse_list(s: &str, what: &str) -> Vec<usize> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| parse_num(p, what))
        .collect()
}

fn parse_num(s: &str, what: &str) -> usize {
    let s = s.trim().replace('_', "");
    s.parse()
        .unwrap_or_else(|_| panic!("{what}: `{s}` is not a number"))
}

impl Settings {
    fn from_env_and_args(args: &[String]) -> Settings {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let mut n = env("FASTREQ_BENCH_N").map_or(50_000, |v| parse_num(&v, "FASTREQ_BENCH_N"));
        let mut rounds =
            env("FASTREQ_BENCH_ROUNDS").map_or(3, |v| parse_num(&v, "FASTREQ_BENCH_ROUNDS"));
        let mut conc = env("FASTREQ_BENCH_CONC")
            .map_or_else(|| vec![64, 256], |v| parse_list(&v, "FASTREQ_BENCH_CONC"));
        let mut rss_n = env("FASTREQ_BENCH_RSS_N").map_or_else(
            || vec![100_000, 1_000_000],
            |v| parse_list(&v, "FASTREQ_BENCH_RSS_N"),
        );
        let mut rss_conc =
            env("FASTREQ_BENCH_RSS_CONC").map_or(256, |v| parse_num(&v, "FASTREQ_BENCH_RSS_CONC"));
        let mut only = env("FASTREQ_BENCH_ONLY");
        let parse_load = |v: &str, what: &str| -> f64 {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{what}: `{v}` is not a number"))
        };
        let mut max_other_load = env("FASTREQ_BENCH_MAX_OTHER_LOAD")
            .map_or(0.25, |v| parse_load(&v, "FASTREQ_BENCH_MAX_OTHER_LOAD"));
        let mut retries =
            env("FASTREQ_BENCH_RETRIES").map_or(4, |v| parse_num(&v, "FASTREQ_BENCH_RETRIES"));
        let mut variants = env("FASTREQ_BENCH_VARIANTS");
        let mut flavors = env("FASTREQ_BENCH_RUNTIME");

        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |flag: &str| {
                it.next()
                    .unwrap_or_else(|| panic!("{flag} needs a value"))
                    .clone()
            };
            match arg.as_str() {
                "--n" => n = parse_num(&value("--n"), "--n"),
                "--rounds" => rounds = parse_num(&value("--rounds"), "--rounds"),
                "--conc" => conc = parse_list(&value("--conc"), "--conc"),
                "--rss-n" => rss_n = parse_list(&value("--rss-n"), "--rss-n"),
                "--rss-conc" => rss_conc = parse_num(&value("--rss-conc"), "--rss-conc"),
                "--max-other-load" => {
                    max_other_load = parse_load(&value("--max-other-load"), "--max-other-load")
                }
                "--retries" => retries = parse_num(&value("--retries"), "--retries"),
                "--only" => only = Some(value("--only")),
                "--variants" => variants = Some(value("--variants")),
                "--runtime" => flavors = Some(value("--runtime")),
                // `cargo bench` passes `--bench`; ignore it and any filter.
                _ => {}
            }
        }
        let (throughput, rss) = match only.as_deref() {
            None => (true, true),
            Some("throughput") => (true, false),
            Some("rss") => (false, true),
            Some(other) => panic!("--only / FASTREQ_BENCH_ONLY: `{other}` (throughput or rss)"),
        };
        let variants = match variants {
            None => VARIANTS.to_vec(),
            Some(list) => list
                .split(',')
                .map(|v| match v.trim() {
                    "A" | "a" => Variant::Fastreq,
                    "A'" | "a'" | "A2" | "a2" => Variant::FastreqBuilder,
                    "B" | "b" => Variant::Hyper,
                    "C" | "c" => Variant::BackendBuffered,
                    "D" | "d" => Variant::HyperHttps,
                    other => panic!("variant `{other}`: A, A' (or A2), B, C or D"),
                })
                .collect(),
        };
        let flavors = match flavors {
            None => vec![Flavor::CurrentThread, Flavor::MultiThread2],
            Some(list) => list
                .split(',')
                .map(|f| match f.trim() {
                    "current_thread" | "current" | "ct" => Flavor::CurrentThread,
                    "multi_thread" | "multi" | "mt" => Flavor::MultiThread2,
                    other => panic!("runtime `{other}`: current_thread or multi_thread"),
                })
                .collect(),
        };
        assert!(
            !variants.is_empty() && !flavors.is_empty() && !conc.is_empty(),
            "no variant, runtime or concurrency selected"
        );
        Settings {
            n: n.max(1),
            rounds: rounds.max(1),
            conc,
            rss_n,
            rss_conc: rss_conc.max(1),
            max_other_load,
            retries,
            throughput,
            rss,
            variants,
            flavors,
        }
    }
}

// ---------------------------------------------------------------------------------------
// One throughput run

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// fastreq Backend + fan_out, hand-built `http::Request<fastreq::Body>`.
    Fastreq,
    /// fastreq Backend + fan_out, `fastreq::get(url)` builder inputs.
    FastreqBuilder,
    /// Raw hyper-util legacy client + `buffer_unordered`.
    Hyper,
    /// Diagnostic: fastreq Backend driven by `buffer_unordered` instead of `fan_out`.
    BackendBuffered,
    /// Diagnostic: raw hyper-util with fastreq's connector type (hyper-rustls
    /// `HttpsConnector<HttpConnector>`, http and https) + `buffer_unordered`.
    HyperHttps,
}

/// The variants run by default.
const VARIANTS: [Variant; 3] = [Variant::Fastreq, Variant::FastreqBuilder, Variant::Hyper];
/// Every variant, in table order.
const ALL_VARIANTS: [Variant; 5] = [
    Variant::Fastreq,
    Variant::FastreqBuilder,
    Variant::Hyper,
    Variant::BackendBuffered,
    Variant::HyperHttps,
];

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::Fastreq => "A  fastreq Backend+fan_out",
            Variant::FastreqBuilder => "A' fastreq, fastreq::get builder",
            Variant::Hyper => "B  hyper-util Client+buffer_unordered",
            Variant::BackendBuffered => "C  fastreq Backend+buffer_unordered",
            Variant::HyperHttps => "D  hyper-util+HttpsConnector+buf_unord",
        }
    }
    fn short(self) -> &'static str {
        match self {
            Variant::Fastreq => "A",
            Variant::FastreqBuilder => "A'",
            Variant::Hyper => "B",
            Variant::BackendBuffered => "C",
            Variant::HyperHttps => "D",
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    failed: usize,
    body_bytes: usize,
    first_error: Option<String>,
    elapsed: Duration,
    /// CPU time of the client threads (everything but the server thread) during the run.
    client_cpu: Duration,
    /// CPU time of the server thread during the run.
    server_cpu: Duration,
    /// CPU used by everything else on the machine during the run, in cores (busy time from
    /// `/proc/stat`, steal included, minus this process's own); `NaN` if unknown.
    other_cores: f64,
}

/// Wall clock and per-role CPU clocks at the start of a run.
struct Clocks {
    wall: Instant,
    cpu: (u64, u64),
    machine_busy: Option<u64>,
}

impl Clocks {
    fn start() -> Clocks {
        Clocks {
            machine_busy: machine_busy_ns(),
            cpu: cpu_ns(),
            wall: Instant::now(),
        }
    }
    fn stop(self, tally: &mut Tally) {
        tally.elapsed = self.wall.elapsed();
        let (client, server) = cpu_ns();
        tally.client_cpu = Duration::from_nanos(client.saturating_sub(self.cpu.0));
        tally.server_cpu = Duration::from_nanos(server.saturating_sub(self.cpu.1));
        tally.other_cores = match (self.machine_busy, machine_busy_ns()) {
            (Some(a), Some(b)) => {
                let own = (tally.client_cpu + tally.server_cpu).as_nanos() as f64;
                ((b.saturating_sub(a) as f64 - own) / tally.elapsed.as_nanos() as f64).max(0.0)
            }
            _ => f64::NAN,
        };
    }
}

/// Waits (at most `max`) until the machine's busy CPU over one second is at most `cores`
/// (this process is idle meanwhile, so that is all foreign load).
fn wait_for_quiet(cores: f64, max: Duration) {
    let deadline = Instant::now() + max;
    while Instant::now() < deadline {
        let (Some(a), t0) = (machine_busy_ns(), Instant::now()) else {
            return;
        };
        std::thread::sleep(Duration::from_secs(1));
        let Some(b) = machine_busy_ns() else {
            return;
        };
        if (b.saturating_sub(a)) as f64 / t0.elapsed().as_nanos() as f64 <= cores {
            return;
        }
    }
}

/// Busy CPU time of the whole machine so far (user, nice, system, irq, softirq, steal), in
/// ns, from the first line of `/proc/stat` (USER_HZ = 100).
fn machine_busy_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = line
        .split_whitespace()
        .map(|t| t.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)? + f.get(7)?;
    Some(busy * 10_000_000)
}

/// CPU time (ns) used so far by the threads of this process: (client threads, server
/// threads), from `/proc/self/task/*/schedstat`; the server thread is the one named
/// `test-server-*`. (0, 0) where `/proc` is not available.
fn cpu_ns() -> (u64, u64) {
    let (mut client, mut server) = (0, 0);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (0, 0);
    };
    for task in tasks.flatten() {
        let path = task.path();
        let Ok(stat) = std::fs::read_to_string(path.join("schedstat")) else {
            continue;
        };
        let ns: u64 = stat
            .split_whitespace()
            .next()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.starts_with("test-server") {
            server += ns;
        } else {
            client += ns;
        }
    }
    (client, server)
}

impl Tally {
    fn add<E: std::fmt::Display>(&mut self, r: Result<usize, E>) {
        match r {
            Ok(len) => {
                self.ok += 1;
                self.body_bytes += len;
            }
            Err(e) => {
                self.failed += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(e.to_string());
                }
            }
        }
    }
    fn req_per_s(&self) -> f64 {
        (self.ok + self.failed) as f64 / self.elapsed.as_secs_f64()
    }
    fn us_per_req(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / (self.ok + self.failed) as f64
    }
}

fn url(base: &str, i: usize) -> String {
    format!("{base}/item/{i}")
}

/// A: fastreq, requests built exactly like B's.
async fn run_fastreq(base: Arc<str>, n: usize, c: usize) -> Tally {
    let svc = Backend::new().and_then(|resp: Response<ResponseBody>| resp.bytes());
    let requests = (0..n).map(move |i| {
        Request::get(url(&base, i))
            .body(Body::empty())
            .expect("valid request")
    });
    let mut tally = Tally::default();
    let clocks = Clocks::start();
    let mut outcomes = fastreq::fan_out(svc, requests).limit(c);
    while let Some(outcome) = outcomes.next().await {
        tally.add(outcome.result.map(|b| b.len()));
    }
    clocks.stop(&mut tally);
    tally
}

/// A': fastreq with the request builder as input.
async fn run_fastreq_builder(base: Arc<str>, n: usize, c: usize) -> Tally {
    let svc = Backend::new().and_then(|resp: Response<ResponseBody>| resp.bytes());
    let requests = (0..n).map(move |i| fastreq::get(url(&base, i)));
    let mut tally = Tally::default();
    let clocks = Clocks::start();
    let mut outcomes = fastreq::fan_out(svc, requests).limit(c);
    while let Some(outcome) = outcomes.next().await {
        tally.add(outcome.result.map(|b| b.len()));
    }
    clocks.stop(&mut tally);
    tally
}

/// B: raw hyper-util, configured like fastreq's backend (nodelay, pool timer, 90 s idle).
async fn run_hyper(base: Arc<str>, n: usize, c: usize) -> Tally {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector);
    let mut tally = Tally::default();
    let clocks = Clocks::start();
    let mut results = futures::stream::iter(0..n)
        .map(|i| {
            let req = Request::get(url(&base, i))
                .body(Empty::<Bytes>::new())
                .expect("valid request");
            let fut = client.request(req);
            async move {
                let resp = fut.await?;
                let body = resp.into_body().collect().await?.to_bytes();
                Ok::<_, BoxError>(body.len())
            }
        })
        .buffer_unordered(c);
    while let Some(r) = results.next().await {
        tally.add(r);
    }
    clocks.stop(&mut tally);
    tally
}

/// C (diagnostic): fastreq's Backend, driven like B (`buffer_unordered`, no `fan_out`).
async fn run_backend_buffered(base: Arc<str>, n: usize, c: usize) -> Tally {
    let backend = Backend::new();
    let mut tally = Tally::default();
    let clocks = Clocks::start();
    let mut results = futures::stream::iter(0..n)
        .map(|i| {
            let req = Request::get(url(&base, i))
                .body(Body::empty())
                .expect("valid request");
            backend.clone().oneshot(req).and_then(|resp| resp.bytes())
        })
        .buffer_unordered(c);
    while let Some(r) = results.next().await {
        tally.add(r.map(|b| b.len()));
    }
    clocks.stop(&mut tally);
    tally
}

/// D (diagnostic): B with the connector type fastreq's Backend uses (hyper-rustls
/// `HttpsConnector` over `HttpConnector`, plain http allowed), to separate the cost of that
/// connector type (cloned by hyper-util for every request) from fastreq's own code.
async fn run_hyper_https(base: Arc<str>, n: usize, c: usize) -> Tally {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector);
    let mut tally = Tally::default();
    let clocks = Clocks::start();
    let mut results = futures::stream::iter(0..n)
        .map(|i| {
            let req = Request::get(url(&base, i))
                .body(Empty::<Bytes>::new())
                .expect("valid request");
            let fut = client.request(req);
            async move {
                let resp = fut.await?;
                let body = resp.into_body().collect().await?.to_bytes();
                Ok::<_, BoxError>(body.len())
            }
        })
        .buffer_unordered(c);
    while let Some(r) = results.next().await {
        tally.add(r);
    }
    clocks.stop(&mut tally);
    tally
}

fn run_once(
    rt: &tokio::runtime::Runtime,
    v: Variant,
    base: &Arc<str>,
    n: usize,
    c: usize,
) -> Tally {
    let base = Arc::clone(base);
    let tally = rt.block_on(async move {
        // Spawned, so that on a multi-thread runtime the driver runs on a worker thread.
        let task = match v {
            Variant::Fastreq => tokio::spawn(run_fastreq(base, n, c)),
            Variant::FastreqBuilder => tokio::spawn(run_fastreq_builder(base, n, c)),
            Variant::Hyper => tokio::spawn(run_hyper(base, n, c)),
            Variant::BackendBuffered => tokio::spawn(run_backend_buffered(base, n, c)),
            Variant::HyperHttps => tokio::spawn(run_hyper_https(base, n, c)),
        };
        let tally = task.await.expect("bench task panicked");
        // Let the dropped client's connections close before the next run.
        tokio::time::sleep(Duration::from_millis(100)).await;
        tally
    });
    assert_eq!(tally.ok + tally.failed, n, "{v:?}: one result per request");
    if tally.failed > 0 {
        eprintln!(
            "warning: {} c={c}: {} of {n} requests failed; first: {}",
            v.short(),
            tally.failed,
            tally.first_error.as_deref().unwrap_or("?")
        );
    }
    tally
}

// ---------------------------------------------------------------------------------------
// Throughput driver

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    CurrentThread,
    MultiThread2,
}

impl Flavor {
    fn label(self) -> &'static str {
        match self {
            Flavor::CurrentThread => "current_thread",
            Flavor::MultiThread2 => "multi_thread(2)",
        }
    }
    fn runtime(self) -> tokio::runtime::Runtime {
        match self {
            Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
            Flavor::MultiThread2 => {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                b.worker_threads(2);
                b
            }
        }
        .enable_all()
        .build()
        .expect("client runtime")
    }
}

struct Cell {
    flavor: Flavor,
    conc: usize,
    variant: Variant,
    /// req/s of each run.
    samples: Vec<f64>,
    /// Client CPU µs per request of each run.
    client_us: Vec<f64>,
    /// Server CPU µs per request of each run.
    server_us: Vec<f64>,
    /// Other load on the machine during each run, in cores.
    other_cores: Vec<f64>,
    /// Runs thrown away because of foreign load.
    repeats: usize,
    failed: usize,
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn throughput(settings: &Settings, server: &TestServer) -> Vec<Cell> {
    let base: Arc<str> = server.base_url().into();
    let warm_n = (settings.n / 5).clamp(1, 10_000);
    let mut cells = Vec::new();
    let variants = &settings.variants;
    for &flavor in &settings.flavors {
        let rt = flavor.runtime();
        eprint!(
            "[{}] warm-up ({warm_n} requests per variant) ...",
            flavor.label()
        );
        for &v in variants {
            run_once(&rt, v, &base, warm_n, settings.conc[0]);
        }
        eprintln!(" done");
        let first = cells.len();
        for &conc in &settings.conc {
            for &variant in variants {
                cells.push(Cell {
                    flavor,
                    conc,
                    variant,
                    samples: Vec::new(),
                    client_us: Vec::new(),
                    server_us: Vec::new(),
                    other_cores: Vec::new(),
                    repeats: 0,
                    failed: 0,
                });
            }
        }
        for round in 0..settings.rounds {
            for &conc in &settings.conc {
                // Rotate the order every round: A A' B, A' B A, B A A', ...
                let mut order = variants.clone();
                order.rotate_left(round % variants.len());
                for v in order {
                    let mut attempt = 0;
                    let (t, conns) = loop {
                        let conns_before = server.connections();
                        let t = run_once(&rt, v, &base, settings.n, conc);
                        let conns = server.connections() - conns_before;
                        if settings.max_other_load < 0.0
                            || t.other_cores <= settings.max_other_load
                            || attempt >= settings.retries
                        {
                            break (t, conns);
                        }
                        attempt += 1;
                        eprintln!(
                            "[{}] round {}/{} c={conc:<4} {:<40} {:>7.0} req/s  disturbed \
                             ({:.2} cores of other load): waiting, then repeat {attempt}/{}",
                            flavor.label(),
                            round + 1,
                            settings.rounds,
                            v.label(),
                            t.req_per_s(),
                            t.other_cores,
                            settings.retries,
                        );
                        wait_for_quiet(settings.max_other_load, Duration::from_secs(30));
                    };
                    let rps = t.req_per_s();
                    let (cus, sus) = (t.us_per_req(t.client_cpu), t.us_per_req(t.server_cpu));
                    eprintln!(
                        "[{}] round {}/{} c={conc:<4} {:<40} {:>7.0} req/s  \
                         client {cus:5.2} µs/req  server {sus:5.2} µs/req  \
                         other load {:.2} cores  ({:.2} s, {conns} connections, {} failed)",
                        flavor.label(),
                        round + 1,
                        settings.rounds,
                        v.label(),
                        rps,
                        t.other_cores,
                        t.elapsed.as_secs_f64(),
                        t.failed,
                    );
                    let cell = cells[first..]
                        .iter_mut()
                        .find(|c| c.conc == conc && c.variant == v)
                        .expect("cell");
                    cell.samples.push(rps);
                    cell.client_us.push(cus);
                    cell.server_us.push(sus);
                    cell.other_cores.push(t.other_cores);
                    cell.failed += t.failed;
                    cell.repeats += attempt;
                }
            }
        }
    }
    cells
}

// ---------------------------------------------------------------------------------------
// Memory: the child side

fn proc_status_kb(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// `fan_out rss N BASE_URL LIMIT`: stream N requests, report peak RSS as `key=value` lines.
fn rss_child(args: &[String]) {
    let n = parse_num(&args[0], "rss N");
    let base = args[1].clone();
    let limit = parse_num(&args[2], "rss LIMIT");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let hwm_start = proc_status_kb("VmHWM").unwrap_or(0);
    let (tally, hwm_tenth) = rt.block_on(async move {
        let svc = Backend::new().and_then(|resp: Response<ResponseBody>| resp.bytes());
        // A lazy iterator: nothing is built before the fan-out asks for it.
        let requests = (0..n).map(move |i| fastreq::get(url(&base, i)));
        let mut tally = Tally::default();
        let mut hwm_tenth = 0;
        let start = Instant::now();
        let mut outcomes = fastreq::fan_out(svc, requests).limit(limit);
        while let Some(outcome) = outcomes.next().await {
            // The body is read inside the service future; here its length is taken and
            // the bytes dropped.
            tally.add(outcome.result.map(|b| b.len()));
            if tally.ok + tally.failed == n / 10 {
                hwm_tenth = proc_status_kb("VmHWM").unwrap_or(0);
            }
        }
        tally.elapsed = start.elapsed();
        (tally, hwm_tenth)
    });
    println!("n={n}");
    println!("ok={}", tally.ok);
    println!("failed={}", tally.failed);
    println!("body_bytes={}", tally.body_bytes);
    println!("secs={:.3}", tally.elapsed.as_secs_f64());
    println!("vmhwm_start_kb={hwm_start}");
    println!("vmhwm_tenth_kb={hwm_tenth}");
    println!("vmhwm_kb={}", proc_status_kb("VmHWM").unwrap_or(0));
    println!("vmrss_end_kb={}", proc_status_kb("VmRSS").unwrap_or(0));
    if let Some(e) = tally.first_error {
        println!("first_error={e}");
    }
}

// ---------------------------------------------------------------------------------------
// Memory: the parent side

#[derive(Debug, Default)]
struct RssRun {
    n: usize,
    ok: usize,
    failed: usize,
    secs: f64,
    hwm_start_kb: u64,
    hwm_tenth_kb: u64,
    hwm_kb: u64,
    rss_end_kb: u64,
    first_error: Option<String>,
}

fn rss_parent(settings: &Settings, server: &TestServer) -> Vec<RssRun> {
    let exe = std::env::current_exe().expect("current_exe");
    let mut runs = Vec::new();
    for &n in &settings.rss_n {
        eprint!(
            "[rss] N={n} limit={} in a fresh process ...",
            settings.rss_conc
        );
        let _ = std::io::stderr().flush();
        let out = Command::new(&exe)
            .arg("rss")
            .arg(n.to_string())
            .arg(server.base_url())
            .arg(settings.rss_conc.to_string())
            .output()
            .expect("re-execute the bench");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "rss child failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let mut run = RssRun {
            n,
            ..RssRun::default()
        };
        for line in stdout.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "ok" => run.ok = v.parse().unwrap_or(0),
                "failed" => run.failed = v.parse().unwrap_or(0),
                "secs" => run.secs = v.parse().unwrap_or(0.0),
                "vmhwm_start_kb" => run.hwm_start_kb = v.parse().unwrap_or(0),
                "vmhwm_tenth_kb" => run.hwm_tenth_kb = v.parse().unwrap_or(0),
                "vmhwm_kb" => run.hwm_kb = v.parse().unwrap_or(0),
                "vmrss_end_kb" => run.rss_end_kb = v.parse().unwrap_or(0),
                "first_error" => run.first_error = Some(v.to_owned()),
                _ => {}
            }
        }
        eprintln!(
            " VmHWM {} kB ({:.1} s, {} failed)",
            run.hwm_kb, run.secs, run.failed
        );
        runs.push(run);
    }
    runs
}

// ---------------------------------------------------------------------------------------
// Report

/// One markdown table of a per-run metric: median per variant, ratios to `B`, all samples.
fn metric_table(
    md: &mut String,
    cells: &[Cell],
    keys: &[(Flavor, usize)],
    unit: &str,
    metric: fn(&Cell) -> &[f64],
    short: fn(f64) -> String,
) {
    // Columns: the variants that ran, in their usual order; ratios against B.
    let mut variants: Vec<Variant> = Vec::new();
    for v in ALL_VARIANTS {
        if cells.iter().any(|c| c.variant == v) {
            variants.push(v);
        }
    }
    let has_b = variants.contains(&Variant::Hyper);
    let others: Vec<Variant> = variants
        .iter()
        .copied()
        .filter(|&v| v != Variant::Hyper)
        .collect();
    let mut head = String::from("| client runtime | c |");
    let mut rule = String::from("|---|---:|");
    for v in &variants {
        let _ = write!(head, " {} {unit} |", v.short());
        rule.push_str("---:|");
    }
    if has_b {
        for v in &others {
            let _ = write!(head, " {}/B |", v.short());
            rule.push_str("---:|");
        }
    }
    let names: Vec<&str> = variants.iter().map(|v| v.short()).collect();
    let _ = write!(head, " runs {} |", names.join(" / "));
    rule.push_str("---|");
    let _ = writeln!(md, "{head}\n{rule}");

    let show = |x: f64| {
        if x >= 100.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.2}")
        }
    };
    for &(flavor, conc) in keys {
        let cell = |v: Variant| {
            cells
                .iter()
                .find(|c| c.flavor == flavor && c.conc == conc && c.variant == v)
        };
        let med = |v: Variant| cell(v).map(|c| median(metric(c)));
        let mut row = format!("| {} | {conc} |", flavor.label());
        for &v in &variants {
            let _ = write!(row, " {} |", med(v).map_or_else(|| "–".to_owned(), show));
        }
        if has_b {
            for (i, &v) in others.iter().enumerate() {
                let r = match (med(v), med(Variant::Hyper)) {
                    (Some(a), Some(b)) => format!("{:.3}", a / b),
                    _ => "–".to_owned(),
                };
                if i == 0 {
                    let _ = write!(row, " **{r}** |");
                } else {
                    let _ = write!(row, " {r} |");
                }
            }
        }
        let runs: Vec<String> = variants
            .iter()
            .map(|&v| {
                cell(v).map_or_else(
                    || "–".to_owned(),
                    |c| {
                        metric(c)
                            .iter()
                            .map(|&x| short(x))
                            .collect::<Vec<_>>()
                            .join(" ")
                    },
                )
            })
            .collect();
        let _ = writeln!(md, "{row} {} |", runs.join(" / "));
    }
}

fn report(settings: &Settings, cells: &[Cell], rss: &[RssRun], server_hits: u64) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## fastreq `fan_out` benchmark\n");
    let _ = writeln!(
        md,
        "Machine: {} CPU(s), {}; server: `TestServer::builder().worker_threads(1).track_paths(false).routes()` \
         on 127.0.0.1, HTTP/1.1 keep-alive, {}-byte JSON body. Server saw {server_hits} requests in total.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::ARCH,
        support::DEFAULT_JSON.len(),
    );
    if !cells.is_empty() {
        let _ = writeln!(
            md,
            "### Throughput\n\n{} requests per run, median of {} rounds (order rotated each round, \
             after one warm-up run per variant). Every response body is read to the end. \
             `A` = `Backend.and_then(|r| r.bytes())` + `fastreq::fan_out(..).limit(c)` with \
             hand-built `http::Request<Body>`; `A'` = the same with `fastreq::get(url)` inputs; \
             `B` = raw `hyper_util` legacy `Client<HttpConnector, Empty<Bytes>>` + \
             `buffer_unordered(c)`, body collected in the same future.\n",
            settings.n, settings.rounds
        );
        let mut keys: Vec<(Flavor, usize)> = Vec::new();
        for c in cells {
            if !keys.contains(&(c.flavor, c.conc)) {
                keys.push((c.flavor, c.conc));
            }
        }
        metric_table(
            &mut md,
            cells,
            &keys,
            "req/s",
            |c| &c.samples,
            |x| format!("{:.0}k", x / 1000.0),
        );
        let _ = writeln!(
            md,
            "\nCPU time per request over the same runs, median (from `/proc/self/task/*/schedstat`; \
             client = every thread but the server's; lower is better, so A/B > 1 means fastreq \
             spends more client CPU per request):\n"
        );
        metric_table(
            &mut md,
            cells,
            &keys,
            "client CPU µs/req",
            |c| &c.client_us,
            |x| format!("{x:.2}"),
        );
        let _ = writeln!(md);
        metric_table(
            &mut md,
            cells,
            &keys,
            "server CPU µs/req",
            |c| &c.server_us,
            |x| format!("{x:.2}"),
        );
        let other: Vec<f64> = cells
            .iter()
            .flat_map(|c| c.other_cores.iter().copied())
            .filter(|x| x.is_finite())
            .collect();
        if !other.is_empty() {
            let limit = settings.max_other_load.max(0.25);
            let busy = other.iter().filter(|&&x| x > limit).count();
            let repeats: usize = cells.iter().map(|c| c.repeats).sum();
            let _ = writeln!(
                md,
                "\nOther load on the machine during the kept runs (from `/proc/stat`, minus \
                 this process): median {:.2} cores, max {:.2} cores; {busy} of {} kept runs saw \
                 more than {limit:.2} core of foreign load; {repeats} disturbed runs were \
                 repeated.",
                median(&other),
                other.iter().copied().fold(0.0, f64::max),
                other.len(),
            );
        }
        for c in cells {
            if c.failed > 0 {
                let _ = writeln!(
                    md,
                    "\n> {} {} c={}: {} failed requests",
                    c.flavor.label(),
                    c.variant.short(),
                    c.conc,
                    c.failed
                );
            }
        }
        md.push('\n');
    }
    if !rss.is_empty() {
        let _ = writeln!(
            md,
            "### Peak memory\n\nEach N in a fresh process (the bench re-executes itself; the server \
             stays in the parent): a lazy iterator of `fastreq::get(url)` through \
             `Backend.and_then(|r| r.bytes())` + `fan_out(..).limit({})` on a current-thread \
             runtime, each body read and dropped. `VmHWM` from `/proc/self/status`.\n",
            settings.rss_conc
        );
        let _ = writeln!(
            md,
            "| N | VmHWM | VmHWM at N/10 | VmHWM before | VmRSS at end | time | req/s | failed |"
        );
        let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in rss {
            let _ = writeln!(
                md,
                "| {} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} s | {:.0} | {} |",
                r.n,
                r.hwm_kb as f64 / 1024.0,
                r.hwm_tenth_kb as f64 / 1024.0,
                r.hwm_start_kb as f64 / 1024.0,
                r.rss_end_kb as f64 / 1024.0,
                r.secs,
                (r.ok + r.failed) as f64 / r.secs,
                r.failed,
            );
            if let Some(e) = &r.first_error {
                let _ = writeln!(md, "\n> N={}: first error: {e}", r.n);
            }
        }
        if rss.len() >= 2 {
            let (lo, hi) = (&rss[0], &rss[rss.len() - 1]);
            let ratio = hi.hwm_kb as f64 / lo.hwm_kb as f64;
            let _ = writeln!(
                md,
                "\nPeak RSS ratio N={} / N={}: **{ratio:.3}** (target ≤ 1.1: {}).",
                hi.n,
                lo.n,
                if ratio <= 1.1 { "met" } else { "NOT met" }
            );
        }
    }
    md
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("rss") {
        assert!(args.len() >= 4, "usage: fan_out rss N BASE_URL LIMIT");
        rss_child(&args[1..]);
        return;
    }
    let settings = Settings::from_env_and_args(&args);
    eprintln!("settings: {settings:?}");
    let server = TestServer::builder()
        .worker_threads(1)
        .track_paths(false)
        .routes();

    let cells = if settings.throughput {
        throughput(&settings, &server)
    } else {
        Vec::new()
    };
    let rss = if settings.rss {
        rss_parent(&settings, &server)
    } else {
        Vec::new()
    };

    let md = report(&settings, &cells, &rss, server.hits());
    println!("\n{md}");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let path = target.join("bench-fan_out.md");
    match std::fs::create_dir_all(&target).and_then(|()| std::fs::write(&path, &md)) {
        Ok(()) => eprintln!("wrote {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
}
