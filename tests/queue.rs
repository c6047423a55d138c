//! The shared work queue (issue 10 §2): `fastreq enqueue`, workers (`fastreq fetch --redis
//! URL --queue NAME`, run as child processes) and `fastreq results`, against a real
//! `redis-server` and the local test server.
//!
//! The server is `FASTREQ_REDIS_URL` (default `redis://127.0.0.1:6379/`). Without one the
//! tests print "skipped: no Redis at ..." and pass, unless `FASTREQ_REDIS_REQUIRED=1` (CI),
//! then they fail. `scripts/redis.sh start 6390` starts one. The restart test starts a
//! private `redis-server` of its own (with an append-only file, so the streams survive).
//!
//! Every queue name is unique to its test and run; every wait is bounded.
#![cfg(feature = "cli")]

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fastreq::queue::{Job, Queue, QueueStatus};
use serde_json::Value;
use support::cli::{fastreq, finish_within, parse_lines, spawn, temp_dir, write_file};
use support::redis::{answers, redis_url, required, unique};
use support::{Reply, TestRequest, TestServer};

/// Upper bound of every run and wait here.
const LIMIT: Duration = Duration::from_secs(180);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn status(rt: &tokio::runtime::Runtime, queue: &Queue) -> Option<QueueStatus> {
    rt.block_on(queue.status()).ok()
}

fn read_lines(path: &Path) -> Vec<Value> {
    parse_lines(&std::fs::read_to_string(path).expect("output file"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Waits until `ready` (polling every 20 ms), at most [`LIMIT`].
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < LIMIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn queue_flags_are_usage_errors() {
    let dir = temp_dir("queue-usage");
    let input = write_file(&dir, "in.txt", "http://127.0.0.1:9/\n");
    for args in [
        &["fetch", "--queue", "q"][..],
        &["fetch", "--redis", "redis://127.0.0.1:1/"],
        &[
            "fetch",
            &input,
            "--redis",
            "redis://127.0.0.1:1/",
            "--queue",
            "q",
        ],
        &[
            "fetch",
            "--redis",
            "redis://127.0.0.1:1/",
            "--queue",
            "q",
            "--ordered",
        ],
        &["fetch", "--follow"],
        &["fetch", "--claim-idle", "1"],
        &["fetch", "--redis-failure", "open"],
        &[
            "fetch",
            "--redis",
            "redis://127.0.0.1:1/",
            "--queue",
            "q",
            "--redis-failure",
            "local:0",
        ],
        &["enqueue", &input, "--queue", "q"],
        &["results", "--redis", "redis://127.0.0.1:1/"],
    ] {
        let run = fastreq(args, None);
        assert_eq!(run.code, Some(2), "{args:?}: {run:?}");
    }
    // A malformed URL, an unreachable Redis, a bad name: exit 2, and no password shown.
    for args in [
        &["fetch", "--redis", "notredis://:hunter2@h/", "--queue", "q"][..],
        &[
            "fetch",
            "--redis",
            "redis://:hunter2@127.0.0.1:1/",
            "--queue",
            "q",
        ],
        &[
            "fetch",
            "--redis",
            "redis://:hunter2@127.0.0.1:1/",
            "--queue",
            "a{b}",
        ],
        &[
            "enqueue",
            &input,
            "--redis",
            "redis://:hunter2@127.0.0.1:1/",
            "--queue",
            "q",
        ],
        &[
            "enqueue",
            "/nonexistent/in.txt",
            "--redis",
            "redis://:hunter2@127.0.0.1:1/",
            "--queue",
            "q",
        ],
        &[
            "results",
            "--redis",
            "redis://:hunter2@127.0.0.1:1/",
            "--queue",
            "q",
        ],
    ] {
        let run = fastreq(args, None);
        assert_eq!(run.code, Some(2), "{args:?}: {run:?}");
        assert!(run.stderr.contains("fastreq: error:"), "{args:?}: {run:?}");
        assert!(!run.stderr.contains("hunter2"), "{args:?}: {run:?}");
    }
}

/// (a) enqueue, one worker, results: every line gets the outcome a file run gives it, at
/// its index; invalid lines are outcomes too; a duplicate published outcome is dropped.
#[test]
fn enqueue_one_worker_and_results_round_trip() {
    let Some(url) = redis_url() else { return };
    let server = TestServer::start(|req: TestRequest| match req.path() {
        "/gone" => Reply::status(404).body("gone"),
        _ => Reply::text(format!("ok {}", req.path())),
    });
    let dir = temp_dir("queue-a");
    let mut text = String::from("# a comment\n\n");
    for i in 0..40 {
        text.push_str(&server.url(&format!("/r/{i}")));
        text.push('\n');
    }
    text.push_str("not a url\n");
    text.push_str(&format!(
        "{{\"method\":\"POST\",\"url\":\"{}\",\"body\":\"x\"}}\n",
        server.url("/post")
    ));
    text.push_str("   # indented comment\n");
    text.push_str(&server.url("/gone"));
    text.push('\n');
    let input = write_file(&dir, "in.txt", &text);
    let name = unique("a");
    let q = ["--redis", url.as_str(), "--queue", name.as_str()];

    let run = fastreq(&[&["enqueue", &input][..], &q].concat(), None);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("enqueued 43 requests"), "{run:?}");
    let run = fastreq(&[&["enqueue", &input][..], &q].concat(), None);
    assert_eq!(run.code, Some(2), "a queue is filled once: {run:?}");
    assert!(run.stderr.contains("already filled"), "{run:?}");

    // Before any worker: everything is missing.
    let all = dir.join("all.jsonl");
    let run = fastreq(&[&["results", "-o", s(&all)][..], &q].concat(), None);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("0 outcomes written"), "{run:?}");
    assert!(run.stderr.contains("43 of 43 missing"), "{run:?}");

    let worker_out = dir.join("worker.jsonl");
    let run = fastreq(
        &[&["fetch", "-o", s(&worker_out), "-c", "4"][..], &q].concat(),
        None,
    );
    // One line is not a valid request: exit 1, as a file run.
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("43 outcomes published and acknowledged"),
        "{run:?}"
    );
    assert_eq!(server.hits(), 42, "each valid request sent once");
    let mut worker_lines = read_lines(&worker_out);
    worker_lines.sort_by_key(|l| l["index"].as_u64().unwrap());
    assert_eq!(worker_lines.len(), 43);

    // The same input as a file run: same index, URL, status and error kind for every line.
    let file_run = fastreq(&["fetch", &input, "-q", "-c", "4"], None);
    assert_eq!(file_run.code, Some(1), "{file_run:?}");
    let file_lines = file_run.by_index();
    assert_eq!(file_lines.len(), 43);
    for (w, f) in worker_lines.iter().zip(&file_lines) {
        for field in ["index", "url", "status", "bytes", "attempts"] {
            assert_eq!(w[field], f[field], "{field}: {w} vs {f}");
        }
        assert_eq!(w["error"]["kind"], f["error"]["kind"], "{w} vs {f}");
        assert_eq!(w["error"]["message"], f["error"]["message"], "{w} vs {f}");
    }
    assert_eq!(worker_lines[40]["error"]["kind"], "invalid_request");
    assert!(worker_lines[40]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("line 43: "));
    assert_eq!(worker_lines[42]["status"], 404);

    // At-least-once: a duplicate of index 0 is published; `results` keeps one.
    let rt = runtime();
    let queue = Queue::new(&url, &name).unwrap();
    let dup = serde_json::to_string(&worker_lines[0]).unwrap();
    rt.block_on(queue.publish(&[(0, Bytes::from(dup))]))
        .unwrap();
    let run = fastreq(&[&["results", "-o", s(&all)][..], &q].concat(), None);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stderr
            .contains("43 outcomes written (1 duplicates dropped); 0 of 43 missing"),
        "{run:?}"
    );
    let lines = read_lines(&all);
    let indexes: BTreeSet<u64> = lines.iter().map(|l| l["index"].as_u64().unwrap()).collect();
    assert_eq!(lines.len(), 43);
    assert_eq!(indexes, (0..43).collect());
    // To stdout without -o.
    let run = fastreq(&[&["results", "-q"][..], &q].concat(), None);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.lines().len(), 43);

    // An unknown queue is a usage error.
    let other = unique("none");
    let run = fastreq(&["results", "--redis", &url, "--queue", &other], None);
    assert_eq!(run.code, Some(2), "{run:?}");
    rt.block_on(queue.delete()).unwrap();
}

/// (b) Three worker processes on 20,000 lines; one is killed with SIGKILL mid-run. The
/// other two take over what it held (after `--claim-idle`) and finish: `results` has
/// exactly one line per index, none missing.
#[test]
fn three_workers_one_killed_lose_nothing() {
    let Some(url) = redis_url() else { return };
    const N: usize = 20_000;
    let dir = temp_dir("queue-b");
    let name = unique("b");
    let (server, q) = slow_server_enqueued(&dir, &url, &name, N, Duration::from_millis(3));

    let started = Instant::now();
    let mut workers: Vec<Child> = (0..3)
        .map(|i| {
            let out = dir.join(format!("w{i}.jsonl"));
            spawn(
                &[
                    &[
                        "fetch",
                        "-q",
                        "-v",
                        "-c",
                        "16",
                        "--claim-idle",
                        "1",
                        "-o",
                        s(&out),
                    ][..],
                    &q,
                ]
                .concat(),
                false,
            )
        })
        .collect();
    let rt = runtime();
    let queue = Queue::new(&url, &name).unwrap();
    wait_until("a fifth of the results", || {
        status(&rt, &queue).is_some_and(|st| st.results >= (N / 5) as u64)
    });
    let at_kill = status(&rt, &queue).unwrap();
    let mut victim = workers.remove(0);
    victim.kill().expect("SIGKILL");
    let killed = finish_within(victim, started, LIMIT);
    assert_eq!(killed.code, None, "killed by a signal: {killed:?}");
    assert!(
        at_kill.results < N as u64,
        "killed mid-run, not after: {at_kill:?}"
    );
    let mut logs = String::new();
    for w in workers {
        let run = finish_within(w, started, LIMIT);
        assert_eq!(run.code, Some(0), "{run:?}");
        logs.push_str(&run.stderr);
    }
    assert!(
        logs.contains("took over requests of a worker gone quiet"),
        "the killed worker held requests, taken over by the others: {logs}"
    );
    let final_status = status(&rt, &queue).unwrap();
    assert!(final_status.is_drained(), "{final_status:?}");

    let all = dir.join("all.jsonl");
    let run = fastreq(&[&["results", "-o", s(&all)][..], &q].concat(), None);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains(&format!("0 of {N} missing")), "{run:?}");
    let lines = read_lines(&all);
    assert_eq!(lines.len(), N);
    let indexes: BTreeSet<u64> = lines.iter().map(|l| l["index"].as_u64().unwrap()).collect();
    assert_eq!(indexes.len(), N, "one line per index");
    assert_eq!(indexes.last(), Some(&(N as u64 - 1)));
    assert!(lines.iter().all(|l| l["status"] == 200), "all succeeded");
    assert!(server.hits() >= N as u64);
    rt.block_on(queue.delete()).unwrap();
}

/// The `redis-server` binary, or `None` (after saying so).
fn redis_server_bin() -> Option<PathBuf> {
    let found = [
        "/usr/bin/redis-server",
        "/usr/sbin/redis-server",
        "/usr/local/bin/redis-server",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists());
    if found.is_none() {
        if required() {
            panic!("no redis-server binary, and FASTREQ_REDIS_REQUIRED=1");
        }
        eprintln!("skipped: no redis-server binary to start a private server");
    }
    found
}

/// A private `redis-server` with an append-only file fsynced on every write, killed on
/// drop.
struct PrivateRedis {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start(bin: PathBuf, dir: PathBuf) -> PrivateRedis {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut r = PrivateRedis {
            bin,
            dir,
            port,
            child: None,
        };
        r.up();
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn up(&mut self) {
        let child = Command::new(&self.bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--dir", self.dir.to_str().unwrap()])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let url = self.url();
        wait_until("the private redis-server", || answers(&url));
    }

    /// SIGKILL: no chance to save anything beyond what is already in the append-only file.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// (c) Redis killed mid-run and restarted: the worker warns, waits with a backoff,
/// resumes when Redis is back, and the run completes with nothing lost.
#[test]
fn redis_killed_and_restarted_mid_run_loses_nothing() {
    // The shared server is not used, but its absence says whether to skip.
    if redis_url().is_none() {
        return;
    }
    let Some(bin) = redis_server_bin() else {
        return;
    };
    const N: usize = 3_000;
    let dir = temp_dir("queue-c");
    let redis_dir = dir.join("redis");
    std::fs::create_dir_all(&redis_dir).unwrap();
    let mut redis = PrivateRedis::start(bin, redis_dir);
    let url = redis.url();
    let name = unique("c");
    let (server, q) = slow_server_enqueued(&dir, &url, &name, N, Duration::from_millis(5));

    let started = Instant::now();
    let out = dir.join("w.jsonl");
    let worker = spawn(
        &[
            &["fetch", "-c", "8", "--claim-idle", "2", "-o", s(&out)][..],
            &q,
        ]
        .concat(),
        false,
    );
    let rt = runtime();
    let queue = Queue::new(&url, &name).unwrap();
    wait_until("some results", || {
        status(&rt, &queue).is_some_and(|st| st.results >= 300)
    });
    redis.kill();
    // The worker goes on with what it holds, then waits for Redis.
    std::thread::sleep(Duration::from_millis(1500));
    let before = server.hits();
    assert!(
        before < N as u64,
        "the run was cut mid-way: {before} requests"
    );
    redis.up();
    let run = finish_within(worker, started, LIMIT);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("Redis failed"), "a warning: {run:?}");
    assert!(run.stderr.contains("answers again"), "{run:?}");

    let all = dir.join("all.jsonl");
    let run = fastreq(&[&["results", "-o", s(&all)][..], &q].concat(), None);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains(&format!("0 of {N} missing")), "{run:?}");
    let lines = read_lines(&all);
    let indexes: BTreeSet<u64> = lines.iter().map(|l| l["index"].as_u64().unwrap()).collect();
    assert_eq!((lines.len(), indexes.len()), (N, N));
    // The worker's own file has every index too (some possibly twice: at least once).
    let local: BTreeSet<u64> = read_lines(&out)
        .iter()
        .map(|l| l["index"].as_u64().unwrap())
        .collect();
    assert_eq!(local.len(), N);
}

/// A server answering "ok" after `delay`, and `n` of its URLs enqueued into queue `name`
/// (`fastreq enqueue`); returns the server and the `--redis URL --queue NAME` flags.
fn slow_server_enqueued<'a>(
    dir: &Path,
    url: &'a str,
    name: &'a str,
    n: usize,
    delay: Duration,
) -> (TestServer, [&'a str; 4]) {
    let server = TestServer::builder()
        .track_paths(false)
        .start(move |_req: TestRequest| Reply::text("ok").delay(delay));
    let mut text = String::with_capacity(n * 40);
    for i in 0..n {
        text.push_str(&server.url(&format!("/{name}/{i}")));
        text.push('\n');
    }
    let input = write_file(dir, "in.txt", &text);
    let q = ["--redis", url, "--queue", name];
    let run = fastreq(&[&["enqueue", &input][..], &q].concat(), None);
    assert_eq!(run.code, Some(0), "{run:?}");
    (server, q)
}

/// Runs one worker (`extra` flags added) on a queue whose only request is due to be given
/// up; returns its one line, a `"queue"` error.
fn poisoned_line(url: &str, name: &str, extra: &[&str]) -> Value {
    let dir = temp_dir("queue-poison");
    let out = dir.join("w.jsonl");
    let args = [
        &["fetch", "-o", s(&out), "--claim-idle", "0.2"][..],
        extra,
        &["--redis", url, "--queue", name],
    ]
    .concat();
    let run = fastreq(&args, None);
    assert_eq!(run.code, Some(1), "{run:?}");
    let lines = read_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["error"]["kind"], "queue");
    lines.into_iter().next().unwrap()
}

/// Fills `queue` with one request (to a port nobody listens on), from input line `line_no`.
async fn enqueue_one(queue: &Queue, line_no: u64) {
    queue.begin_enqueue().await.unwrap();
    let job = Job {
        index: 0,
        line_no,
        line: Bytes::from_static(b"http://127.0.0.1:9/never"),
    };
    queue.enqueue(&[job]).await.unwrap();
    queue.finish_enqueue(1).await.unwrap();
}

/// An entry delivered more than 5 times (every worker that took it died) gets an error
/// outcome (`"kind":"queue"`) instead of a sixth try; delivery counts go up by one per
/// delivery.
#[test]
fn an_entry_that_kills_every_worker_gets_an_error_outcome() {
    let Some(url) = redis_url() else { return };
    let rt = runtime();
    let name = unique("poison");
    let queue = Queue::new(&url, &name).unwrap();
    rt.block_on(async {
        enqueue_one(&queue, 3).await;
        let got = queue.read("dead-0", 10).await.unwrap();
        assert_eq!((got.len(), got[0].deliveries), (1, 1));
        assert!(!got[0].is_poisoned());
        for i in 1..5u64 {
            let got = queue
                .reclaim(&format!("dead-{i}"), Duration::ZERO, 10)
                .await
                .unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].deliveries, i + 1);
            assert!(!got[0].is_poisoned());
        }
        let st = queue.status().await.unwrap();
        assert_eq!((st.pending, st.is_drained()), (1, false), "{st:?}");
    });
    let line = poisoned_line(&url, &name, &[]);
    assert_eq!(line["index"], 0);
    assert_eq!(line["url"], "http://127.0.0.1:9/never");
    let message = line["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("line 3: gave up after 5 deliveries"),
        "{message}"
    );
    let st = rt.block_on(queue.status()).unwrap();
    assert!(st.is_drained(), "{st:?}");
    rt.block_on(queue.delete()).unwrap();
}

/// `--max-deliveries N`: the entry is given up after N deliveries instead of 5.
#[test]
fn max_deliveries_sets_the_poison_threshold() {
    let Some(url) = redis_url() else { return };
    let rt = runtime();
    let name = unique("poison2");
    let queue = Queue::new(&url, &name).unwrap();
    rt.block_on(async {
        enqueue_one(&queue, 1).await;
        // Two workers took it and died.
        assert_eq!(queue.read("dead-0", 10).await.unwrap().len(), 1);
        let got = queue.reclaim("dead-1", Duration::ZERO, 10).await.unwrap();
        assert_eq!(got[0].deliveries, 2);
    });
    let line = poisoned_line(&url, &name, &["--max-deliveries", "2"]);
    let message = line["error"]["message"].as_str().unwrap();
    assert!(message.contains("gave up after 2 deliveries"), "{message}");
    assert_eq!(
        fastreq(
            &[
                "fetch",
                "--redis",
                &url,
                "--queue",
                &name,
                "--max-deliveries",
                "0"
            ],
            None
        )
        .code,
        Some(2)
    );
    rt.block_on(queue.delete()).unwrap();
}

/// With `--redis`, `--rate` is one quota for all the queue's workers: two workers at
/// `--rate 20` take about 2 s for 40 requests between them (not 1 s, as two separate quotas
/// would).
#[test]
fn rate_is_shared_by_the_workers_of_a_queue() {
    let Some(url) = redis_url() else { return };
    const N: usize = 40;
    let server = TestServer::start(|_req: TestRequest| Reply::text("ok"));
    let dir = temp_dir("queue-rate");
    let text: String = (0..N)
        .map(|i| server.url(&format!("/{i}")) + "\n")
        .collect();
    let input = write_file(&dir, "in.txt", &text);
    let name = unique("rate");
    let q = ["--redis", url.as_str(), "--queue", name.as_str()];
    let run = fastreq(&[&["enqueue", &input][..], &q].concat(), None);
    assert_eq!(run.code, Some(0), "{run:?}");
    let started = Instant::now();
    let workers: Vec<Child> = (0..2)
        .map(|_| {
            spawn(
                &[
                    &["fetch", "-q", "-c", "4", "--rate", "20", "--burst", "1"][..],
                    &q,
                ]
                .concat(),
                false,
            )
        })
        .collect();
    for w in workers {
        let run = finish_within(w, started, LIMIT);
        assert_eq!(run.code, Some(0), "{run:?}");
    }
    let took = started.elapsed();
    assert_eq!(server.hits(), N as u64);
    // 40 admissions at 20/s shared: at least (40 - burst) / 20 = 1.95 s after the first.
    assert!(
        took >= Duration::from_millis(1_700),
        "took {took:?}: not shared?"
    );
    let queue = Queue::new(&url, &name).unwrap();
    runtime().block_on(queue.delete()).unwrap();
}

/// A queue deleted under a worker (or lost by a Redis restarted without persistence): the
/// worker stops with exit 1 and says so, instead of waiting forever.
#[test]
fn a_worker_whose_queue_vanishes_stops_and_says_so() {
    let Some(url) = redis_url() else { return };
    let server =
        TestServer::start(|_req: TestRequest| Reply::text("ok").delay(Duration::from_millis(20)));
    let dir = temp_dir("queue-vanish");
    let text: String = (0..400)
        .map(|i| server.url(&format!("/{i}")) + "\n")
        .collect();
    let input = write_file(&dir, "in.txt", &text);
    let name = unique("vanish");
    let q = ["--redis", url.as_str(), "--queue", name.as_str()];
    let run = fastreq(&[&["enqueue", &input][..], &q].concat(), None);
    assert_eq!(run.code, Some(0), "{run:?}");
    let started = Instant::now();
    let worker = spawn(&[&["fetch", "-q", "-c", "4"][..], &q].concat(), false);
    let rt = runtime();
    let queue = Queue::new(&url, &name).unwrap();
    wait_until("some results", || {
        status(&rt, &queue).is_some_and(|st| st.results >= 20)
    });
    rt.block_on(queue.delete()).unwrap();
    let run = finish_within(worker, started, LIMIT);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("no longer exists"), "{run:?}");
    assert!(server.hits() < 400, "stopped early: {}", server.hits());
    rt.block_on(queue.delete()).unwrap();
}
