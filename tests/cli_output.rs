//! The `fastreq` command line (issue 14): scheme-less input, output filters and formats,
//! the new fields of the JSON line (`wait_ms`, `version`, `headers`), the summary and
//! `--cacert`. Run as a child process against the local test server.
#![cfg(feature = "cli")]

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{route, Reply, TestRequest, TestServer};

/// Every run of the binary is killed after this long.
const RUN_LIMIT: Duration = Duration::from_secs(60);

const BIN: &str = env!("CARGO_BIN_EXE_fastreq");

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    /// The JSON lines of stdout, sorted by index.
    fn by_index(&self) -> Vec<Value> {
        let mut lines: Vec<Value> = self
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        lines.sort_by_key(|l| l["index"].as_u64().expect("index"));
        lines
    }
}

/// Runs `fastreq ARGS` with `stdin` as its input, killed after [`RUN_LIMIT`].
fn fastreq(args: &[&str], stdin: &str) -> Run {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fastreq");
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_owned();
    std::thread::spawn(move || {
        let _ = pipe.write_all(input.as_bytes());
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).map(|_| s)
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).map(|_| s)
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("fastreq did not finish within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code(),
        stdout: out.join().unwrap().expect("stdout is UTF-8"),
        stderr: err.join().unwrap().expect("stderr is UTF-8"),
    }
}

/// A fresh directory under the target's temporary directory.
fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cli-output-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `/moved` redirects to `/ok`, `/gone` is 404; anything else is `support::route`.
fn test_server() -> TestServer {
    TestServer::start(|req: TestRequest| match req.path() {
        "/moved" => Reply::status(301).header("location", "/ok"),
        "/gone" => Reply::status(404).body("gone"),
        _ => route(&req),
    })
}

/// `http://127.0.0.1:PORT/x` -> `127.0.0.1:PORT/x`.
fn without_scheme(url: &str) -> &str {
    url.strip_prefix("http://").expect("an http URL")
}

#[test]
fn lines_without_a_scheme_are_fetched_over_http() {
    let server = test_server();
    let plain = server.url("/plain");
    let json_url = server.url("/json");
    let input = format!(
        "{}\n{{\"url\":\"{}\"}}\n",
        without_scheme(&plain),
        without_scheme(&json_url)
    );
    let run = fastreq(&["fetch", "-q"], &input);
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines = run.by_index();
    assert_eq!(lines.len(), 2, "{run:?}");
    assert_eq!(lines[0]["url"], plain, "{run:?}");
    assert_eq!(lines[0]["status"], 200, "{run:?}");
    assert_eq!(lines[1]["url"], json_url, "{run:?}");
    assert_eq!(lines[1]["status"], 200, "{run:?}");
    assert_eq!(server.hits(), 2);
}
