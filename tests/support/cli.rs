//! Running the `fastreq` binary as a child process (feature `cli`): the helpers shared by
//! the command-line tests (`tests/cli*.rs`, `tests/queue.rs`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Every run of the binary is killed after this long.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_fastreq");

/// A finished run of the binary.
pub struct Run {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
    /// From the start to the exit.
    pub elapsed: Duration,
}

impl Run {
    /// The JSON lines of stdout, parsed.
    pub fn lines(&self) -> Vec<Value> {
        parse_lines(&self.stdout)
    }

    /// The JSON lines, sorted by index.
    pub fn by_index(&self) -> Vec<Value> {
        let mut lines = self.lines();
        lines.sort_by_key(|l| l["index"].as_u64().expect("index"));
        lines
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?} after {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Parses JSON lines (panics, naming the line, on one that is not JSON).
pub fn parse_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Starts `fastreq ARGS` (stdin piped when `stdin`, else null; stdout and stderr piped).
pub fn spawn(args: &[&str], stdin: bool) -> Child {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fastreq")
}

/// Waits for `child` (killing it after [`RUN_LIMIT`]) and collects its output.
pub fn finish(child: Child, started: Instant) -> Run {
    finish_within(child, started, RUN_LIMIT)
}

/// Waits for `child` (killing it after `limit`) and collects its output.
pub fn finish_within(mut child: Child, started: Instant, limit: Duration) -> Run {
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
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "fastreq did not finish within {limit:?}; stderr:\n{}",
                err.join().unwrap().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code(),
        stdout: out.join().unwrap().expect("stdout is UTF-8"),
        stderr: err.join().unwrap().expect("stderr is UTF-8"),
        elapsed: started.elapsed(),
    }
}

/// Runs `fastreq ARGS` with `stdin` as its input.
pub fn fastreq(args: &[&str], stdin: Option<&str>) -> Run {
    let started = Instant::now();
    let mut child = spawn(args, stdin.is_some());
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_owned();
        // A thread, so a child that stops reading cannot block the test.
        std::thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    finish(child, started)
}

/// A fresh directory under the target's temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cli-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}
