//! The shared work queue on Redis (issue 10): is the queue the bottleneck?
//!
//! ```text
//! scripts/redis.sh start 6390
//! FASTREQ_REDIS_URL=redis://127.0.0.1:6390/ cargo bench --bench queue --features cli
//! ```
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `FASTREQ_REDIS_URL` | `redis://127.0.0.1:6379/` | the Redis (the bench says so and stops when none answers) |
//! | `FASTREQ_QUEUE_N` | 100000 | lines of the throughput comparison |
//! | `FASTREQ_QUEUE_SLOW_N` | 3200 | lines of the 50 ms comparison |
//! | `FASTREQ_QUEUE_ROUNDS` | 3 | rounds (medians are reported) |
//!
//! 1. **Queue vs file**, one worker, local server (`tests/support`, one thread, a 200-byte
//!    JSON body, no delay), rate limit off, `-c 64`: `fastreq fetch FILE -o OUT` against
//!    `fastreq fetch --redis URL --queue NAME -o OUT` on the same lines (enqueued before,
//!    not timed), each timed from spawn to exit, the order alternating between rounds.
//!    Target: queue ≥ 0.9× the file's req/s.
//! 2. **4 workers vs 1** against a server that answers after 50 ms, `-c 16` per worker:
//!    the time until the last worker exits. Target: 4 workers ≥ 3.5× faster.
//!
//! Every run's output is checked (one line per input line; `fastreq results` finds none
//! missing). The load average (`/proc/loadavg`) is printed before and after: the machine
//! may be shared.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Reply, TestRequest, TestServer, DEFAULT_JSON};

const BIN: &str = env!("CARGO_BIN_EXE_fastreq");

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn answers(url: &str) -> bool {
    use std::io::{Read, Write};
    let Some((host, port)) = url::Url::parse(url)
        .ok()
        .and_then(|u| Some((u.host_str()?.to_owned(), u.port().unwrap_or(6379))))
    else {
        return false;
    };
    let Ok(mut s) = std::net::TcpStream::connect((host.as_str(), port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = [0u8; 16];
    s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).is_ok_and(|n| n > 0)
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("bench-{name}-{}-{nanos}", std::process::id())
}

fn fastreq(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start fastreq")
}

fn wait_ok(mut child: Child, what: &str, ok: &[i32]) {
    let status = child.wait().expect("wait");
    assert!(
        status.code().is_some_and(|c| ok.contains(&c)),
        "{what}: {status}"
    );
}

fn count_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn write_urls(dir: &Path, name: &str, base: &str, n: usize) -> PathBuf {
    let mut text = String::with_capacity(n * (base.len() + 8));
    for i in 0..n {
        text.push_str(base);
        text.push_str(&i.to_string());
        text.push('\n');
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn enqueue(input: &Path, redis: &str, queue: &str) {
    let child = fastreq(&[
        "enqueue",
        input.to_str().unwrap(),
        "--redis",
        redis,
        "--queue",
        queue,
        "-q",
    ]);
    wait_ok(child, "enqueue", &[0]);
}

fn check_results(redis: &str, queue: &str, dir: &Path, n: usize) {
    let out = dir.join("results.jsonl");
    let child = fastreq(&[
        "results",
        "--redis",
        redis,
        "--queue",
        queue,
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    wait_ok(child, "results (none missing)", &[0]);
    assert_eq!(count_lines(&out), n, "results of {queue}");
}

fn delete(redis: &str, queue: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Ok(q) = fastreq::queue::Queue::new(redis, queue) {
        let _ = rt.block_on(q.delete());
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `queue serve N`: only the local server and a file of N URLs (for profiling by hand),
    // up to 10 minutes.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        let n = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(100_000);
        let server = TestServer::builder()
            .worker_threads(1)
            .track_paths(false)
            .start(|_req: TestRequest| Reply::json(DEFAULT_JSON));
        let path = write_urls(
            &std::env::temp_dir(),
            "fastreq-queue-serve.txt",
            &server.url("/j?i="),
            n,
        );
        println!("{}", path.display());
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let redis =
        std::env::var("FASTREQ_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    if !answers(&redis) {
        println!(
            "queue bench: no Redis at {} (set FASTREQ_REDIS_URL; scripts/redis.sh start); skipped",
            fastreq::redact_url(&redis)
        );
        return;
    }
    let n = env_num("FASTREQ_QUEUE_N", 100_000);
    let slow_n = env_num("FASTREQ_QUEUE_SLOW_N", 3_200);
    let rounds = env_num("FASTREQ_QUEUE_ROUNDS", 3).max(1);
    let dir = std::env::temp_dir().join(format!("fastreq-queue-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!("load average before: {}", loadavg());

    // 1. One worker from Redis vs the same worker from a file.
    let fast = TestServer::builder()
        .worker_threads(1)
        .track_paths(false)
        .start(|_req: TestRequest| Reply::json(DEFAULT_JSON));
    let input = write_urls(&dir, "fast.txt", &fast.url("/j?i="), n);
    let out = dir.join("out.jsonl");
    let (mut file_rates, mut queue_rates) = (Vec::new(), Vec::new());
    for round in 0..=rounds {
        for step in 0..2 {
            let from_queue = (round + step) % 2 == 1;
            let _ = std::fs::remove_file(&out);
            let name = unique("fast");
            if from_queue {
                enqueue(&input, &redis, &name);
            }
            let o = out.to_str().unwrap();
            let args: Vec<&str> = if from_queue {
                vec![
                    "fetch", "--redis", &redis, "--queue", &name, "-o", o, "-q", "-c", "64",
                ]
            } else {
                vec!["fetch", input.to_str().unwrap(), "-o", o, "-q", "-c", "64"]
            };
            let started = Instant::now();
            wait_ok(fastreq(&args), "fetch", &[0]);
            let rate = n as f64 / started.elapsed().as_secs_f64();
            assert_eq!(count_lines(&out), n, "one line per request");
            if from_queue {
                check_results(&redis, &name, &dir, n);
                delete(&redis, &name);
            }
            // Round 0 is a warm-up.
            if round > 0 {
                if from_queue {
                    queue_rates.push(rate);
                } else {
                    file_rates.push(rate);
                }
            }
        }
    }
    let file = median(&mut file_rates);
    let queue = median(&mut queue_rates);
    println!(
        "1. one worker, {n} GETs, -c 64, local server: file {file:.0} req/s, queue {queue:.0} \
         req/s: queue/file = {:.2}x (target >= 0.9x)",
        queue / file
    );
    drop(fast);

    // 2. 4 workers vs 1 against a server that answers after 50 ms.
    let slow = TestServer::builder()
        .worker_threads(1)
        .track_paths(false)
        .start(|_req: TestRequest| Reply::json(DEFAULT_JSON).delay(Duration::from_millis(50)));
    let input = write_urls(&dir, "slow.txt", &slow.url("/s?i="), slow_n);
    let (mut one, mut four) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for step in 0..2 {
            let workers = if (round + step) % 2 == 0 { 1 } else { 4 };
            let name = unique("slow");
            enqueue(&input, &redis, &name);
            let started = Instant::now();
            let children: Vec<Child> = (0..workers)
                .map(|_| {
                    fastreq(&[
                        "fetch", "--redis", &redis, "--queue", &name, "-q", "-c", "16",
                    ])
                })
                .collect();
            for c in children {
                wait_ok(c, "worker", &[0]);
            }
            let secs = started.elapsed().as_secs_f64();
            check_results(&redis, &name, &dir, slow_n);
            delete(&redis, &name);
            if workers == 1 {
                one.push(secs);
            } else {
                four.push(secs);
            }
        }
    }
    let t1 = median(&mut one);
    let t4 = median(&mut four);
    println!(
        "2. {slow_n} GETs answered after 50 ms, -c 16 per worker: 1 worker {t1:.2} s, 4 workers \
         {t4:.2} s: {:.2}x faster (target >= 3.5x; ideal 4x)",
        t1 / t4
    );
    println!("load average after: {}", loadavg());
    let _ = std::fs::remove_dir_all(&dir);
}
