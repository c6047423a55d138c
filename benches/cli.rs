//! The `fastreq fetch` command against the library and raw hyper-util, in one run.
//!
//! ```text
//! cargo bench --bench cli --features cli
//! FASTREQ_CLI_N=50000 FASTREQ_CLI_ROUNDS=5 cargo bench --bench cli --features cli
//! ```
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `FASTREQ_CLI_N` | 50000 | GETs per run |
//! | `FASTREQ_CLI_ROUNDS` | 3 | measured rounds (after one warm-up round) |
//! | `FASTREQ_CLI_CONC` | 64 | concurrency (`-c` of the CLI) |
//! | `FASTREQ_CLI_ARGS` | none | extra flags for the CLI run, space-separated (e.g. `--threads 2`) |
//! | `FASTREQ_CLI_BIN` | the bench's own build | the `fastreq` binary to run |
//! | `FASTREQ_CLI_PY_N` | 2000 | GETs of the Python run (0: no Python run) |
//! | `FASTREQ_CLI_RSS_N` | 300000 | URLs of the peak-RSS runs from stdin (0: none) |
//!
//! The server (`tests/support`, one worker thread, the 200-byte JSON of `routes()`, no path
//! tracking) runs on its own thread in this process. Variants:
//! - `hyper`: `hyper_util::client::legacy::Client` + `buffer_unordered(c)` on a
//!   current-thread runtime, body collected (the baseline of every ratio);
//! - `library`: `fastreq::stack().concurrency(c).fan_out_limit(c).build()` and
//!   `client.fan_out(urls.map(fastreq::get))` on a current-thread runtime;
//! - `cli`: the `fastreq` binary, `fetch URLS -o FILE -c C --progress none`, timed from spawn
//!   to exit (process start, reading the file and writing every JSON line included); the
//!   output is checked: one line per URL, each with `"status":200`;
//! - `python`: Python fastreq 3.2.1 (`fastreq.fastreq(urls, concurrency=C)`, its other
//!   defaults) when `python3 -c 'import fastreq'` works, fewer requests (it is slow), once
//!   per round.
//!
//! `cli serve N` (the bench binary run by hand) starts only the server, writes N URLs to a
//! file and prints its path, for `perf record` of the binary.
//!
//! In every round each variant runs once, the order rotating from round to round so that
//! drift of the shared machine hits all alike. Reported: the median req/s over the rounds and
//! its ratio to `hyper`, and the client's CPU time per request (user + system: the runtime
//! thread for `hyper` and `library`, whose server shares the process; the whole process,
//! through `/usr/bin/time`, for the CLI, its input and output threads included). Then the CLI's peak RSS (`VmHWM`, sampled every 20 ms) reading
//! `FASTREQ_CLI_RSS_N` URLs and a tenth of them from stdin.

#[path = "common/baseline.rs"]
mod baseline;
#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hyper_util::client::legacy::connect::HttpConnector;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    Hyper,
    Library,
    Cli,
    Python,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Hyper => "hyper-util + buffer_unordered",
            Variant::Library => "fastreq::stack() + fan_out",
            Variant::Cli => "fastreq fetch -o FILE",
            Variant::Python => "Python fastreq 3.2.1",
        }
    }
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// CPU time (user + system) of the calling thread, from `/proc/thread-self/stat` (clock
/// ticks of 10 ms); zero where that is not readable.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // The fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Raw hyper-util; returns the responses with a 200-byte body.
async fn hyper(base: Arc<str>, n: usize, c: usize) -> usize {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = baseline::client(connector);
    baseline::get_each(&client, (0..n).map(|i| format!("{base}/item/{i}")), c).await
}

/// The library preset, as a program would use it.
async fn library(base: Arc<str>, n: usize, c: usize) -> usize {
    let client = fastreq::stack()
        .concurrency(c)
        .fan_out_limit(c)
        .build()
        .expect("valid stack");
    let mut ok = 0;
    let urls = (0..n).map(move |i| format!("{base}/item/{i}"));
    let mut out = client.fan_out(urls.map(fastreq::get));
    while let Some(o) = out.next().await {
        ok += usize::from(o.result.is_ok_and(|f| f.body().len() == 200));
    }
    ok
}

/// Counts the lines of `path` and those with status 200.
fn check_output(path: &Path) -> (usize, usize) {
    let file = std::io::BufReader::new(std::fs::File::open(path).expect("CLI output"));
    let (mut lines, mut ok) = (0, 0);
    for line in file.lines() {
        let line = line.expect("CLI output is UTF-8");
        lines += 1;
        ok += usize::from(line.contains(r#""status":200,"#));
    }
    (lines, ok)
}

/// The CLI on `input`; returns the responses with status 200 and the wall time.
fn cli(
    bin: &Path,
    input: &Path,
    output: &Path,
    c: usize,
    extra: &[String],
) -> (usize, Duration, Option<Duration>) {
    // `/usr/bin/time` (when there) gives the CPU time of the whole process.
    let time_file = output.with_extension("time");
    let timed = Path::new("/usr/bin/time").exists();
    let mut cmd = if timed {
        let mut c = Command::new("/usr/bin/time");
        c.args(["-f", "%U %S", "-o"]).arg(&time_file).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    let started = Instant::now();
    let out = cmd
        .arg("fetch")
        .arg(input)
        .arg("-o")
        .arg(output)
        .args(["-c", &c.to_string(), "--progress", "none"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run the fastreq binary");
    let took = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (lines, ok) = check_output(output);
    assert_eq!(lines, ok, "every line has status 200");
    let cpu = timed
        .then(|| std::fs::read_to_string(&time_file).ok())
        .flatten()
        .and_then(|t| {
            let v: Vec<f64> = t
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (v.len() == 2).then(|| Duration::from_secs_f64(v[0] + v[1]))
        });
    (ok, took, cpu)
}

const PYTHON: &str = r#"
import sys, time, fastreq
n, c, base = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
urls = [f"{base}/item/{i}" for i in range(n)]
t = time.perf_counter()
out = fastreq.fastreq(urls, concurrency=c, verbose=False)
took = time.perf_counter() - t
ok = sum(1 for r in out if r is not None)
print(f"{ok} {took}")
"#;

fn python_available() -> bool {
    Command::new("python3")
        .args(["-c", "import fastreq"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Python fastreq; returns the non-`None` results and the time of the call.
fn python(base: &str, n: usize, c: usize) -> (usize, Duration) {
    let out = Command::new("python3")
        .args(["-c", PYTHON, &n.to_string(), &c.to_string(), base])
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    let mut parts = last.split_whitespace();
    let ok = parts.next().and_then(|s| s.parse().ok());
    let secs: Option<f64> = parts.next().and_then(|s| s.parse().ok());
    match (ok, secs) {
        (Some(ok), Some(secs)) => (ok, Duration::from_secs_f64(secs)),
        _ => panic!(
            "python run failed: {}\n{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Peak RSS (kB) of the CLI fetching the URLs of `input` read from stdin.
fn cli_rss(bin: &Path, input: &Path, output: &Path, c: usize) -> (u64, Duration) {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .arg("fetch")
        .arg("-o")
        .arg(output)
        .args(["-c", &c.to_string(), "--progress", "none", "-q"])
        .stdin(std::fs::File::open(input).expect("URL file"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run the fastreq binary");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            if let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            {
                peak_kb = peak_kb.max(kb);
            }
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
            panic!("the RSS run took longer than 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "the RSS run failed");
    (peak_kb, started.elapsed())
}

fn write_urls(path: &Path, base: &str, n: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("URL file"));
    for i in 0..n {
        writeln!(f, "{base}/item/{i}").expect("write URL file");
    }
    f.flush().expect("write URL file");
}

/// `cli serve N`: only the server, for profiling the binary by hand; writes N URLs to a
/// file, prints its path and the base URL, and serves until stdin closes.
fn serve(n: usize) {
    let server = support::TestServer::builder()
        .worker_threads(1)
        .track_paths(false)
        .routes();
    let base = server.base_url();
    let base = base.trim_end_matches('/');
    let path = std::env::temp_dir().join(format!("fastreq-cli-serve-{}.txt", server.port()));
    write_urls(&path, base, n);
    println!("{base} {}", path.display());
    let _ = std::io::stdin().lines().count();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        serve(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(50_000));
        return;
    }
    let n = env_num("FASTREQ_CLI_N", 50_000);
    let rounds = env_num("FASTREQ_CLI_ROUNDS", 3).max(1);
    let c = env_num("FASTREQ_CLI_CONC", 64);
    let py_n = env_num("FASTREQ_CLI_PY_N", 2_000);
    let rss_n = env_num("FASTREQ_CLI_RSS_N", 300_000);
    let extra: Vec<String> = std::env::var("FASTREQ_CLI_ARGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let bin: PathBuf = std::env::var_os("FASTREQ_CLI_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_fastreq")));

    let server = support::TestServer::builder()
        .worker_threads(1)
        .track_paths(false)
        .routes();
    let base: Arc<str> = server.base_url().trim_end_matches('/').into();
    let dir = std::env::temp_dir().join(format!("fastreq-cli-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let input = dir.join("urls.txt");
    let output = dir.join("out.jsonl");
    write_urls(&input, &base, n);

    let mut variants = vec![Variant::Hyper, Variant::Library, Variant::Cli];
    let has_python = py_n > 0 && python_available();
    if has_python {
        variants.push(Variant::Python);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "cli: {n} GETs per run (Python: {py_n}), c={c}, {rounds} rounds (+1 warm-up), binary {}{}",
        bin.display(),
        if extra.is_empty() {
            String::new()
        } else {
            format!(" with {}", extra.join(" "))
        }
    );
    if !has_python {
        println!("(no Python run: `python3 -c 'import fastreq'` fails or FASTREQ_CLI_PY_N=0)");
    }

    let mut results = vec![Vec::new(); variants.len()];
    let mut cpu_per_req: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for round in 0..=rounds {
        for k in 0..variants.len() {
            let vi = (k + round) % variants.len();
            let v = variants[vi];
            let count = if v == Variant::Python { py_n } else { n };
            let (ok, took, cpu) = match v {
                Variant::Hyper | Variant::Library => {
                    let base = base.clone();
                    let started = Instant::now();
                    let cpu = thread_cpu();
                    let ok = rt.block_on(async move {
                        tokio::spawn(async move {
                            if v == Variant::Hyper {
                                hyper(base, n, c).await
                            } else {
                                library(base, n, c).await
                            }
                        })
                        .await
                        .expect("run")
                    });
                    (
                        ok,
                        started.elapsed(),
                        Some(thread_cpu().saturating_sub(cpu)),
                    )
                }
                Variant::Cli => cli(&bin, &input, &output, c, &extra),
                Variant::Python => {
                    let (ok, took) = python(&base, py_n, c);
                    (ok, took, None)
                }
            };
            assert_eq!(ok, count, "{}: {} of {count} failed", v.name(), count - ok);
            let rps = count as f64 / took.as_secs_f64();
            let cpu_us = cpu.map(|d| d.as_secs_f64() * 1e6 / count as f64);
            if round > 0 {
                results[vi].push(rps);
                if let Some(us) = cpu_us {
                    cpu_per_req[vi].push(us);
                }
            }
            println!(
                "{} {:<32} {:>9.0} req/s  {}",
                if round == 0 { "warm-up " } else { "measured" },
                v.name(),
                rps,
                cpu_us.map_or(String::new(), |us| format!("{us:.1} µs CPU/req"))
            );
        }
    }

    let med: Vec<f64> = results.iter_mut().map(|r| median(r)).collect();
    println!(
        "\n| variant | requests | req/s (median) | × hyper-util | client CPU µs/req (median) |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (vi, v) in variants.iter().enumerate() {
        let cpu = if cpu_per_req[vi].is_empty() {
            "–".to_owned()
        } else {
            format!("{:.1}", median(&mut cpu_per_req[vi]))
        };
        println!(
            "| {} | {} | {:.0} | {:.2} | {cpu} |",
            v.name(),
            if *v == Variant::Python { py_n } else { n },
            med[vi],
            med[vi] / med[0]
        );
    }
    if has_python {
        println!("\nCLI / Python: {:.0}×", med[2] / med[variants.len() - 1]);
    }

    if rss_n > 0 {
        println!("\n| CLI, URLs from stdin | peak RSS (VmHWM) | time |");
        println!("|---:|---:|---:|");
        for count in [rss_n / 10, rss_n] {
            let path = dir.join(format!("rss-{count}.txt"));
            write_urls(&path, &base, count);
            let (kb, took) = cli_rss(&bin, &path, &output, c);
            println!(
                "| {count} | {:.1} MiB | {:.2} s |",
                kb as f64 / 1024.0,
                took.as_secs_f64()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
