//! The `fastreq` command on a large URL file: throughput and peak memory.
//!
//! `cargo bench --bench cli --features cli` (or `--all-features`); `FASTREQ_CLI_N` sets the
//! number of lines (default 200,000). The file is written first, then the binary fetches it
//! from a local server with output to /dev/null while this program samples its VmHWM.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::var("FASTREQ_CLI_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let server = support::TestServer::builder()
        .worker_threads(1)
        .track_paths(false)
        .routes();
    let dir = std::env::temp_dir().join(format!("fastreq-cli-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("urls.txt");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for i in 0..n {
            writeln!(f, "{}", server.url(&format!("/item/{i}"))).unwrap();
        }
    }
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fastreq"))
        .args(["fetch", path.to_str().unwrap(), "-o", "/dev/null"])
        .args(["--progress", "none"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("VmHWM:") {
                    let kb = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
                    peak_kb = peak_kb.max(kb);
                }
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(900) {
            let _ = child.kill();
            panic!("the run took longer than 15 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let elapsed = started.elapsed();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(status.code(), Some(0), "{stderr}");
    println!(
        "{n} requests in {:.2} s = {:.0} req/s, peak RSS {} MB\n{stderr}",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        peak_kb / 1024
    );
}
