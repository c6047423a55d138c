//! The shared work queue on Redis (design §7): `fastreq enqueue`, `fastreq fetch --redis URL
//! --queue NAME` (a worker) and `fastreq results`, over [`fastreq::queue`].
//!
//! A worker takes entries lazily (at most 4 × concurrency taken and not finished), sends
//! each through the same preset, service and per-line parsing as a file run, and hands the finished outcomes in batches to a committer task, which writes
//! them to `-o FILE` (written to the operating system before going on), then publishes
//! them and acknowledges their entries in one Redis pipeline. So an entry is acknowledged
//! only after its outcome is written; a worker killed at any point loses nothing (what it
//! held is reclaimed by the others after `--claim-idle`), and a Redis that goes away is
//! waited for with a backoff.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use fastreq::queue::{Done, Entry, EntryId, Job, Queue};
use fastreq::{Error, ErrorKind, Outcome};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::args::{FetchArgs, FormatArg};
use crate::input::{self, Defaults, Line, MAX_LINE};
use crate::output::Extras;
use crate::resume::Bits;
use crate::run::{next_signal, Signals, StopSignal, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::service::{stopped, Failed, NoResponse, Sent, Timed};
use crate::summary::Summary;

pub const ENQUEUE_AFTER_HELP: &str = "\
INPUT follows the rules of `fastreq fetch`: one request per line (a URL or a JSON object),
blank lines and lines starting with '#' skipped; each other line keeps the index a file run
would give its outcome. Lines go to the stream fastreq:{NAME}:jobs in pipelined batches;
fastreq:{NAME}:meta records the total when the input has been read. A queue is filled once:
enqueueing into a NAME used before is refused (exit 2).

Then start workers, on any machines:  fastreq fetch --redis URL --queue NAME [-o FILE]
and collect the outcomes:           fastreq results --redis URL --queue NAME -o all.jsonl

Exit status: 0 every line enqueued; 1 Redis failed during the enqueue (for more than a
minute); 2 usage error, unreadable input, bad --redis URL, or a queue filled before.";

pub const RESULTS_AFTER_HELP: &str = "\
Reads the stream fastreq:{NAME}:results (what the workers published) and writes one JSON
line per input index, in the order the workers finished them (sort by \"index\" for input
order). Delivery is at least once: a worker that died after publishing an outcome but before
acknowledging it leaves a duplicate, which is dropped here. The summary on stderr says how
many outcomes were written, how many duplicates dropped, and how many indexes are missing
(requests still queued or in progress, or the enqueue not finished).

Exit status: 0 the enqueue finished and every index has its outcome; 1 some are missing
(run it again later) or Redis failed; 2 usage error, bad --redis URL, or no such queue.";

/// `fastreq enqueue`.
#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// File of requests, one per line; `-` or absent: stdin
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,

    /// Redis URL (redis://[:password@]host[:port][/db])
    #[arg(long, value_name = "URL")]
    pub redis: String,

    /// Name of the queue
    #[arg(long, value_name = "NAME")]
    pub queue: String,

    /// No message at the end
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `fastreq results`.
#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// Redis URL (redis://[:password@]host[:port][/db])
    #[arg(long, value_name = "URL")]
    pub redis: String,

    /// Name of the queue
    #[arg(long, value_name = "NAME")]
    pub queue: String,

    /// Write the JSON lines to FILE instead of stdout
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// No summary
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Lines enqueued per pipeline.
const ENQUEUE_BATCH: usize = 1000;
/// Outcomes per commit (one file write and one Redis pipeline), at most; a quarter of the
/// window below that.
const COMMIT_BATCH: usize = 256;
/// A partial batch is committed after this long.
const COMMIT_EVERY: Duration = Duration::from_millis(50);
/// Commits on their way to the committer, at most.
const COMMITS_IN_FLIGHT: usize = 4;
/// Entries asked for per read, at most.
const READ_BATCH: usize = 256;
/// A read waits this long for new entries when the worker holds none (1 s with --follow)…
const IDLE_BLOCK: Duration = Duration::from_millis(100);
/// …and this long when it still holds some (it is not drained before they are committed).
const BUSY_BLOCK: Duration = Duration::from_millis(50);
/// The drained check runs at most this often.
const STATUS_EVERY: Duration = Duration::from_millis(100);
/// Results read per call.
const RESULTS_BATCH: usize = 1000;
/// How long a stopped worker keeps trying to commit what it finished.
const COMMIT_GRACE: Duration = Duration::from_secs(10);
/// Backoff bounds while Redis fails.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// `enqueue` and `results` give up after Redis failed for this long.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

fn open_queue(url: &str, name: &str) -> Result<Queue, String> {
    Queue::new(url, name).map_err(|e| format!("--redis/--queue: {}", message(&e)))
}

/// An error's message without its kind prefix.
fn message(e: &Error) -> String {
    e.message().map_or_else(|| e.to_string(), str::to_owned)
}

/// Retries with a growing pause while Redis fails, warning once per outage.
struct Backoff {
    what: &'static str,
    delay: Duration,
    since: Option<Instant>,
}

impl Backoff {
    fn new(what: &'static str) -> Self {
        Backoff {
            what,
            delay: BACKOFF_MIN,
            since: None,
        }
    }

    /// Records a failure; returns the pause before the next try.
    fn failed(&mut self, e: &Error) -> Duration {
        if self.since.is_none() {
            self.since = Some(Instant::now());
            tracing::warn!(error = %message(e), "{}: Redis failed; retrying with a backoff, the work resumes when it is back", self.what);
        } else {
            tracing::debug!(error = %message(e), "{}: Redis still failing", self.what);
        }
        let d = self.delay;
        self.delay = (self.delay * 2).min(BACKOFF_MAX);
        d
    }

    fn ok(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::warn!(
                down_for = ?since.elapsed(),
                "{}: Redis answers again; resuming",
                self.what
            );
        }
        self.delay = BACKOFF_MIN;
    }

    /// Failing for longer than `limit`.
    fn longer_than(&self, limit: Duration) -> bool {
        self.since.is_some_and(|s| s.elapsed() > limit)
    }
}

/// Calls `f` until it succeeds, with a backoff; gives up after [`GIVE_UP_AFTER`].
async fn with_retries<T, F, Fut>(what: &'static str, mut f: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let mut backoff = Backoff::new(what);
    loop {
        match f().await {
            Ok(v) => {
                backoff.ok();
                return Ok(v);
            }
            Err(e) => {
                if backoff.longer_than(GIVE_UP_AFTER) {
                    return Err(e);
                }
                tokio::time::sleep(backoff.failed(&e)).await;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// fastreq enqueue

/// Runs `fastreq enqueue`; returns the exit status.
pub async fn enqueue(args: EnqueueArgs) -> i32 {
    let queue = match open_queue(&args.redis, &args.queue) {
        Ok(q) => q,
        Err(m) => return usage(&m),
    };
    let (reader, _) = match crate::run::open_input(args.input.as_deref(), args.quiet).await {
        Ok(r) => r,
        Err(m) => return usage(&m),
    };
    // The first call says whether Redis answers at all, and whether the name is free.
    match queue.begin_enqueue().await {
        Ok(()) => {}
        Err(e) => return usage(&message(&e)),
    }
    // Lines are read on a thread (the reader is blocking) and come in batches.
    let (tx, mut rx) = mpsc::channel::<std::io::Result<Vec<Job>>>(4);
    std::thread::spawn(move || {
        let mut lines = input::LineReader::new(std::io::BufReader::new(reader), MAX_LINE + 1);
        let mut index = 0u64;
        let mut batch = Vec::with_capacity(ENQUEUE_BATCH);
        loop {
            match lines.next_line_blocking() {
                Ok(Some(line)) if line.is_skipped() => continue,
                Ok(Some(line)) => {
                    batch.push(Job {
                        index,
                        line_no: line.number,
                        line: Bytes::from(line.bytes),
                    });
                    index += 1;
                    if batch.len() >= ENQUEUE_BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(ENQUEUE_BATCH));
                        if tx.blocking_send(Ok(full)).is_err() {
                            return;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
        let _ = tx.blocking_send(Ok(batch));
    });
    let mut total = 0u64;
    while let Some(batch) = rx.recv().await {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                crate::say(&format!(
                    "fastreq: error: reading the input failed after {total} requests: {e}; the \
                     queue is left unfinished (workers will wait): enqueue again into a new queue"
                ));
                return EXIT_FAILED;
            }
        };
        if let Err(e) = with_retries("enqueue", || queue.enqueue(&batch)).await {
            crate::say(&format!("fastreq: error: {}", message(&e)));
            return EXIT_FAILED;
        }
        total += batch.len() as u64;
    }
    if let Err(e) = with_retries("enqueue", || queue.finish_enqueue(total)).await {
        crate::say(&format!("fastreq: error: {}", message(&e)));
        return EXIT_FAILED;
    }
    if !args.quiet {
        crate::say(&format!(
            "fastreq: enqueued {total} requests into queue `{}` on {}",
            queue.name(),
            queue.url()
        ));
    }
    EXIT_OK
}

fn usage(m: &str) -> i32 {
    crate::say(&format!("fastreq: error: {m}"));
    EXIT_USAGE
}

// ---------------------------------------------------------------------------------------
// fastreq results

/// Runs `fastreq results`; returns the exit status.
pub async fn results(args: ResultsArgs) -> i32 {
    let queue = match open_queue(&args.redis, &args.queue) {
        Ok(q) => q,
        Err(m) => return usage(&m),
    };
    let status = match queue.status().await {
        Ok(s) => s,
        Err(e) => return usage(&message(&e)),
    };
    if !status.started && status.results == 0 {
        return usage(&format!(
            "queue `{}` on {} has no enqueue and no results (is the name right?)",
            queue.name(),
            queue.url()
        ));
    }
    let file: Box<dyn std::io::Write> = match &args.output {
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Box::new(f),
            Err(e) => return usage(&format!("cannot create output `{}`: {e}", p.display())),
        },
        None => Box::new(std::io::stdout()),
    };
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
    let mut seen = Bits::default();
    let mut written = 0u64;
    let mut duplicates = 0u64;
    let mut after: Option<EntryId> = None;
    loop {
        let batch =
            match with_retries("results", || queue.results(after.as_ref(), RESULTS_BATCH)).await {
                Ok(b) => b,
                Err(e) => {
                    crate::say(&format!("fastreq: error: {}", message(&e)));
                    return EXIT_FAILED;
                }
            };
        let Some(last) = batch.last() else { break };
        after = Some(last.id.clone());
        for r in &batch {
            let Ok(i) = usize::try_from(r.index) else {
                continue;
            };
            if !seen.insert(i) {
                duplicates += 1;
                continue;
            }
            written += 1;
            if let Err(e) = out.write_all(&r.line).and_then(|()| out.write_all(b"\n")) {
                return write_failed(&e);
            }
        }
    }
    if let Err(e) = out.flush() {
        return write_failed(&e);
    }
    // The status after reading: results published meanwhile are not counted as missing
    // twice (they were either read or are still missing).
    let status = match with_retries("results", || queue.status()).await {
        Ok(s) => s,
        Err(e) => {
            crate::say(&format!("fastreq: error: {}", message(&e)));
            return EXIT_FAILED;
        }
    };
    let expected = status.total.unwrap_or(status.enqueued);
    let missing = (0..expected)
        .filter(|i| usize::try_from(*i).is_ok_and(|i| !seen.contains(i)))
        .count() as u64;
    if !args.quiet {
        let mut text = format!(
            "fastreq: {written} outcomes written ({duplicates} duplicates dropped); {missing} of \
             {expected} missing"
        );
        match status.total {
            Some(_) if status.pending > 0 || status.undelivered => text.push_str(&format!(
                " (still queued or in progress: {} pending)",
                status.pending
            )),
            Some(_) => {}
            None => text.push_str(" (the enqueue has not finished)"),
        }
        crate::say(&text);
    }
    if missing == 0 && status.total.is_some() {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

fn write_failed(e: &std::io::Error) -> i32 {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return crate::run::EXIT_OUTPUT_CLOSED;
    }
    crate::say(&format!("fastreq: error: cannot write output: {e}"));
    EXIT_FAILED
}

// ---------------------------------------------------------------------------------------
// fastreq fetch --redis URL --queue NAME

/// What an outcome finishes: its entry and index.
#[derive(Debug, Clone)]
struct Tag {
    id: EntryId,
    index: u64,
}

/// The entries this worker holds (taken, not acknowledged), by fan-out position.
type Held = Arc<Mutex<HashMap<usize, Tag>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How outcomes are written (the flags of `fetch` that apply to a worker).
struct Lines {
    extras: Extras,
}

impl Lines {
    /// The JSON line of an outcome (none for a cancelled one), counted in `summary`.
    async fn line(
        &mut self,
        index: u64,
        result: Result<Sent, NoResponse>,
        summary: &mut Summary,
    ) -> Option<Vec<u8>> {
        let index = usize::try_from(index).unwrap_or(usize::MAX);
        let mut out = Vec::with_capacity(256);
        match result {
            Ok(sent) => {
                let fetched = &sent.fetched;
                summary.response(
                    fetched.status().as_u16(),
                    fetched.elapsed().saturating_sub(fetched.wait()),
                    fetched.attempts(),
                );
                self.extras.sent(index, &sent).await.write_json(&mut out);
            }
            Err(NoResponse::Failed(failed)) => {
                summary.failure(failed.error.kind().as_str(), failed.attempts, || {
                    failed.error.to_string()
                });
                self.extras.failed(index, &failed).write_json(&mut out);
            }
            Err(NoResponse::Skipped | NoResponse::Cancelled) => return None,
        }
        Some(out)
    }
}

/// A batch of finished outcomes for the committer.
struct Commit {
    done: Vec<Done>,
    /// Their fan-out positions (released from [`Held`] once committed).
    positions: Vec<usize>,
}

/// Runs `fastreq fetch --redis URL --queue NAME`; returns the exit status.
pub async fn work(args: FetchArgs, verbose: u8) -> i32 {
    let _ = verbose;
    let signals = match Signals::install() {
        Ok(s) => Some(s.watch()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot handle SIGINT, SIGTERM and SIGHUP");
            None
        }
    };
    let (url, name) = match (&args.redis, &args.queue) {
        (Some(u), Some(n)) => (u.clone(), n.clone()),
        _ => return usage("--redis and --queue go together"),
    };
    if args.format == FormatArg::Csv {
        return usage("a queue worker writes JSON lines (its results are JSON): drop --format csv");
    }
    let queue = match Queue::builder(&url, &name)
        .max_deliveries(u64::from(args.max_deliveries))
        .build()
    {
        Ok(q) => q,
        Err(e) => return usage(&format!("--redis/--queue: {}", message(&e))),
    };
    let defaults = match crate::client::defaults(&args) {
        Ok(d) => Arc::new(d),
        Err(m) => return usage(&m),
    };
    let client = match crate::client::build_client(&args) {
        Ok(c) => c,
        Err(m) => return usage(&m),
    };
    let file = match &args.output {
        Some(p) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            Ok(f) => Some(Arc::new(Mutex::new(f))),
            Err(e) => return usage(&format!("cannot open output `{}`: {e}", p.display())),
        },
        None => None,
    };
    if let Some(dir) = &args.save_bodies {
        if let Err(e) = tokio::fs::create_dir_all(dir).await {
            return usage(&format!(
                "cannot create --save-bodies directory `{}`: {e}",
                dir.display()
            ));
        }
    }
    if args.insecure_skip_tls_verify {
        crate::say(
            "fastreq: WARNING: --insecure-skip-tls-verify: TLS certificates and host names are \
             NOT verified; anyone on the network path can read and change this traffic",
        );
    }
    // Redis must answer once at the start (a wrong address is a usage error); later
    // outages are waited for.
    // (A queue of its own: the worker's connections are made on the queue thread.)
    let probe = match Queue::new(&url, &name) {
        Ok(q) => q,
        Err(e) => return usage(&format!("--redis/--queue: {}", message(&e))),
    };
    if let Err(e) = probe.create_group().await {
        return usage(&message(&e));
    }
    drop(probe);
    let consumer = consumer_name();
    tracing::info!(queue = %name, redis = %queue.url(), consumer = %consumer, "worker starting");
    let worker = Worker {
        queue,
        consumer,
        client,
        defaults,
        window: args.concurrency.saturating_mul(4).max(8),
        claim_idle: args.claim_idle,
        follow: args.follow,
        file,
        lines: Lines {
            extras: Extras::new(&args),
        },
        quiet: args.quiet,
    };
    worker.run(signals).await
}

/// A consumer name of its own: host, process, random.
fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty() && h.len() < 64)
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty() && h.len() < 64)
        })
        .unwrap_or_else(|| "host".to_owned());
    use rand::{Rng as _, SeedableRng as _};
    let tag: u32 = rand::rngs::SmallRng::from_os_rng().random();
    format!("{host}-{}-{tag:08x}", std::process::id())
}

struct Worker {
    queue: Queue,
    consumer: String,
    client: fastreq::Client,
    defaults: Arc<Defaults>,
    /// Entries held at most (taken and not acknowledged).
    window: usize,
    claim_idle: Duration,
    follow: bool,
    file: Option<Arc<Mutex<std::fs::File>>>,
    lines: Lines,
    quiet: bool,
}

type Item = Result<http::Request<fastreq::Body>, NoResponse>;

/// The request of an entry (or its `invalid_request` or poisoned failure).
fn item(entry: &Entry, defaults: &Defaults) -> Item {
    let bytes = entry.job.line.to_vec();
    let too_long = bytes.len() > MAX_LINE;
    let line = Line {
        number: entry.job.line_no,
        bytes: if too_long { Vec::new() } else { bytes },
        too_long,
    };
    let parsed = input::parse_line(&line, defaults);
    if entry.is_poisoned() {
        let url = parsed.as_ref().ok().map(crate::service::request_url);
        return Err(NoResponse::Failed(Failed::unsent(
            Error::new(ErrorKind::Queue).with_message(format!(
                "line {}: gave up after {} deliveries: every worker that took this request \
                 stopped before finishing it",
                entry.job.line_no,
                entry.deliveries - 1
            )),
            url,
        )));
    }
    parsed.map_err(NoResponse::Failed)
}

impl Worker {
    async fn run(self, mut signals: Option<mpsc::Receiver<StopSignal>>) -> i32 {
        let Worker {
            queue,
            consumer,
            client,
            defaults,
            window,
            claim_idle,
            follow,
            file,
            mut lines,
            quiet,
        } = self;
        let started = Instant::now();
        let (stop_tx, stop_rx) = watch::channel(false);
        let held: Held = Arc::default();
        let permits = Arc::new(Semaphore::new(window));
        let committer_failed = Arc::new(AtomicBool::new(false));
        let vanished = Arc::new(AtomicBool::new(false));

        // Reader: entries → (item, tag).
        // In batches (one per read): one wake-up of this thread per batch, not per entry.
        let (entries_tx, mut entries_rx) = mpsc::channel::<Vec<(Item, Tag)>>(4);
        let read = ReadLoop {
            queue: queue.clone(),
            consumer: consumer.clone(),
            defaults,
            permits: permits.clone(),
            claim_idle,
            follow,
            held: held.clone(),
            chunk: u32::try_from((window / 4).max(1)).unwrap_or(u32::MAX),
            vanished: vanished.clone(),
            stop: stop_rx.clone(),
            tx: entries_tx,
        };
        // Committer: writes, publishes, acknowledges.
        let (commit_tx, commit_rx) = mpsc::channel::<Commit>(COMMITS_IN_FLIGHT);
        let committed = Arc::new(AtomicU64::new(0));
        let commit = CommitLoop {
            queue: queue.clone(),
            file,
            held: held.clone(),
            rx: commit_rx,
            stop: stop_rx.clone(),
            failed: committer_failed.clone(),
            committed: committed.clone(),
        };
        // Redis is spoken on a thread of its own (its connections, their reading and
        // parsing, the lines' parsing), as a file run reads its input on a thread: the
        // runtime thread only runs the requests.
        let (queue_done_tx, queue_done) = tokio::sync::oneshot::channel::<()>();
        let held_beat = held.clone();
        let beat_queue = queue.clone();
        let spawned = std::thread::Builder::new()
            .name("fastreq-queue".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        crate::say(&format!(
                            "fastreq: error: cannot start the queue thread: {e}"
                        ));
                        return;
                    }
                };
                rt.block_on(async move {
                    let reader = tokio::spawn(read_loop(read));
                    // Keeps the entries held fresh, so that no other worker reclaims them.
                    let beat = tokio::spawn(heartbeat(beat_queue, consumer, held_beat, claim_idle));
                    commit_loop(commit).await;
                    reader.abort();
                    beat.abort();
                });
                rt.shutdown_background();
                let _ = queue_done_tx.send(());
            });
        if let Err(e) = spawned {
            crate::say(&format!(
                "fastreq: error: cannot start the queue thread: {e}"
            ));
            return EXIT_FAILED;
        }

        let held_in = held.clone();
        let mut position = 0usize;
        let mut batch_in = Vec::new().into_iter();
        let requests = futures_util::stream::poll_fn(move |cx| loop {
            if let Some((item, tag)) = batch_in.next() {
                lock(&held_in).insert(position, tag);
                position += 1;
                return std::task::Poll::Ready(Some(item));
            }
            match entries_rx.poll_recv(cx) {
                std::task::Poll::Ready(Some(batch)) => batch_in = batch.into_iter(),
                std::task::Poll::Ready(None) => return std::task::Poll::Ready(None),
                std::task::Poll::Pending => return std::task::Poll::Pending,
            }
        })
        .take_until(stopped(stop_rx.clone()));
        let service = Timed::new(
            fastreq::Fetch::new(client.clone()),
            stop_rx,
            Arc::new(AtomicU64::new(0)),
        );
        let outcomes = fastreq::fan_out_stream(service, requests).limit(client.fan_out_limit());
        let mut outcomes = Box::pin(outcomes);

        let mut summary = Summary::default();
        let mut batch = Commit {
            done: Vec::with_capacity(COMMIT_BATCH),
            positions: Vec::with_capacity(COMMIT_BATCH),
        };
        // Finished entries leave the window at once (in small groups): the window bounds
        // what is read ahead and in flight; what awaits its commit is bounded by the
        // committer's channel.
        let commit_at = (window / 2).clamp(1, COMMIT_BATCH);
        let free_at = (window / 8).max(1);
        let mut freed = 0usize;
        let mut tick = tokio::time::interval(COMMIT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopped_by = None;
        let mut cancelled = 0u64;
        loop {
            tokio::select! {
                biased;
                sig = next_signal(&mut signals) => {
                    tracing::info!(signal = sig.name(), "stopping");
                    stopped_by = Some(sig);
                    signals = None;
                    let _ = stop_tx.send(true);
                }
                next = outcomes.next() => {
                    let Some(Outcome { index: pos, result, .. }) = next else { break };
                    freed += 1;
                    if freed >= free_at {
                        permits.add_permits(std::mem::take(&mut freed));
                    }
                    let tag = lock(&held).get(&pos).cloned();
                    let Some(tag) = tag else { continue };
                    match lines.line(tag.index, result, &mut summary).await {
                        Some(line) => {
                            batch.done.push(Done { id: tag.id, index: tag.index, line: Bytes::from(line) });
                            batch.positions.push(pos);
                        }
                        None => {
                            // Cancelled: not acknowledged; another worker takes it over.
                            cancelled += 1;
                            lock(&held).remove(&pos);
                        }
                    }
                    if batch.done.len() >= commit_at && !send_commit(&commit_tx, &mut batch).await {
                        break;
                    }
                }
                _ = tick.tick() => {
                    permits.add_permits(std::mem::take(&mut freed));
                    if committer_failed.load(Ordering::Relaxed) {
                        let _ = stop_tx.send(true);
                        break;
                    }
                    if !batch.done.is_empty() && !send_commit(&commit_tx, &mut batch).await {
                        break;
                    }
                }
            }
        }
        let _ = send_commit(&commit_tx, &mut batch).await;
        drop(commit_tx);
        drop(outcomes);
        let _ = stop_tx.send(true);
        // The committer ends once it has handled every batch sent (or failed).
        let _ = queue_done.await;
        drop(signals);

        let mut code = if summary.failures > 0 || lines.extras.save_failed {
            EXIT_FAILED
        } else {
            EXIT_OK
        };
        if committer_failed.load(Ordering::Relaxed) || vanished.load(Ordering::Relaxed) {
            code = EXIT_FAILED;
        }
        if !quiet {
            let why = stopped_by.map(|s| format!("interrupted by {}", s.name()));
            let text = summary.render(started.elapsed(), why.as_deref());
            crate::say(text.trim_end_matches('\n'));
            let done = committed.load(Ordering::Relaxed);
            let mut note = format!(
                "queue `{}`: {done} outcomes published and acknowledged",
                queue.name()
            );
            if cancelled > 0 {
                note.push_str(&format!(
                    ", {cancelled} cancelled (left to the other workers)"
                ));
            }
            crate::say(&note);
        }
        match stopped_by {
            Some(sig) => sig.exit_code(),
            None => code,
        }
    }
}

/// Hands the batch to the committer (waiting while it is busy); false when it is gone.
async fn send_commit(tx: &mpsc::Sender<Commit>, batch: &mut Commit) -> bool {
    if batch.done.is_empty() {
        return true;
    }
    let full = std::mem::replace(
        batch,
        Commit {
            done: Vec::with_capacity(COMMIT_BATCH),
            positions: Vec::with_capacity(COMMIT_BATCH),
        },
    );
    tx.send(full).await.is_ok()
}

struct ReadLoop {
    queue: Queue,
    consumer: String,
    defaults: Arc<Defaults>,
    permits: Arc<Semaphore>,
    claim_idle: Duration,
    follow: bool,
    held: Held,
    /// Permits taken per read at least.
    chunk: u32,
    /// Set when the queue disappeared from Redis.
    vanished: Arc<AtomicBool>,
    stop: watch::Receiver<bool>,
    tx: mpsc::Sender<Vec<(Item, Tag)>>,
}

/// Takes entries while there are free places in the window: reclaimed ones first (every
/// half idle time), else new ones (blocking up to 1 s); ends when the queue is drained
/// (unless following) or the run stops. Redis failures are retried with a backoff.
async fn read_loop(r: ReadLoop) {
    let reclaim_every = (r.claim_idle / 2).max(Duration::from_millis(100));
    let mut last_reclaim: Option<Instant> = None;
    let mut last_status: Option<Instant> = None;
    let mut backoff = Backoff::new("queue worker");
    let mut said_waiting = false;
    loop {
        if *r.stop.borrow() {
            return;
        }
        // A quarter of the window at least per read: fewer, bigger round trips.
        let first = tokio::select! {
            p = r.permits.clone().acquire_many_owned(r.chunk) => p,
            () = stopped(r.stop.clone()) => return,
        };
        let Ok(first) = first else { return };
        first.forget();
        let mut n = r.chunk as usize;
        while n < READ_BATCH {
            match r.permits.try_acquire() {
                Ok(p) => {
                    p.forget();
                    n += 1;
                }
                Err(_) => break,
            }
        }
        let mut result = Ok(Vec::new());
        if last_reclaim.is_none_or(|t| t.elapsed() >= reclaim_every) {
            last_reclaim = Some(Instant::now());
            result = r.queue.reclaim(&r.consumer, r.claim_idle, n).await;
            if let Ok(v) = &result {
                if !v.is_empty() {
                    tracing::info!(count = v.len(), "took over requests of a worker gone quiet");
                }
            }
        }
        if matches!(&result, Ok(v) if v.is_empty()) {
            // Holding entries, the worker is not drained before they are committed: a short
            // wait, then look again (for new entries, or for the end).
            let block = if !lock(&r.held).is_empty() {
                BUSY_BLOCK
            } else if r.follow {
                fastreq::queue::DEFAULT_BLOCK
            } else {
                IDLE_BLOCK
            };
            result = r.queue.read_block(&r.consumer, n, block).await;
        }
        let entries = match result {
            Ok(v) => {
                backoff.ok();
                v
            }
            Err(e) => {
                r.permits.add_permits(n);
                // No group any more: the queue was deleted, or Redis restarted without
                // persistence. Nothing can be taken from it again: stop, and say so.
                if e.message().is_some_and(|m| m.contains("NOGROUP")) {
                    if let Ok(st) = r.queue.status().await {
                        if !st.started {
                            crate::say(&format!(
                                "fastreq: error: queue `{}` no longer exists on {} (deleted, or \
                                 Redis restarted without persistence); the outcomes published \
                                 before are in its results, the rest must be enqueued again",
                                r.queue.name(),
                                r.queue.url()
                            ));
                            r.vanished.store(true, Ordering::Relaxed);
                            return;
                        }
                    }
                }
                let pause = backoff.failed(&e);
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = stopped(r.stop.clone()) => return,
                }
                continue;
            }
        };
        r.permits.add_permits(n - entries.len().min(n));
        if entries.is_empty() {
            if r.follow
                || !lock(&r.held).is_empty()
                || last_status.is_some_and(|t| t.elapsed() < STATUS_EVERY)
            {
                continue;
            }
            last_status = Some(Instant::now());
            match r.queue.status().await {
                Ok(s) if s.is_drained() => {
                    tracing::info!("queue drained");
                    return;
                }
                Ok(s) if s.total.is_none() && !said_waiting => {
                    said_waiting = true;
                    tracing::info!(
                        enqueued = s.enqueued,
                        "waiting: the enqueue of this queue has not finished"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    let pause = backoff.failed(&e);
                    tokio::time::sleep(pause).await;
                }
            }
            continue;
        }
        if r.tx.send(parse_all(entries, &r.defaults)).await.is_err() {
            return;
        }
    }
}

fn parse_all(entries: Vec<Entry>, defaults: &Defaults) -> Vec<(Item, Tag)> {
    entries
        .into_iter()
        .map(|entry| {
            let item = item(&entry, defaults);
            let tag = Tag {
                id: entry.id,
                index: entry.job.index,
            };
            (item, tag)
        })
        .collect()
}

/// Every third of the idle time, resets the idle time of the entries held.
async fn heartbeat(queue: Queue, consumer: String, held: Held, claim_idle: Duration) {
    let every = (claim_idle / 3).max(Duration::from_millis(50));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let ids: Vec<EntryId> = lock(&held).values().map(|t| t.id.clone()).collect();
        if let Err(e) = queue.touch(&consumer, &ids).await {
            tracing::debug!(error = %message(&e), "queue heartbeat failed");
        }
    }
}

struct CommitLoop {
    queue: Queue,
    file: Option<Arc<Mutex<std::fs::File>>>,
    held: Held,
    rx: mpsc::Receiver<Commit>,
    stop: watch::Receiver<bool>,
    failed: Arc<AtomicBool>,
    committed: Arc<AtomicU64>,
}

/// For each batch: write it to the file (if any), then publish it and acknowledge its
/// entries, retrying while Redis fails (after a stop, for [`COMMIT_GRACE`] at most: what is
/// not acknowledged is taken over by another worker).
async fn commit_loop(mut c: CommitLoop) {
    let mut backoff = Backoff::new("queue worker");
    while let Some(commit) = c.rx.recv().await {
        if let Some(file) = &c.file {
            let mut buf = Vec::with_capacity(commit.done.iter().map(|d| d.line.len() + 1).sum());
            for d in &commit.done {
                buf.extend_from_slice(&d.line);
                buf.push(b'\n');
            }
            // This thread only speaks to Redis: it may block on the file.
            let written = {
                let mut f = lock(file);
                f.write_all(&buf).and_then(|()| f.flush())
            };
            if let Err(e) = written {
                crate::say(&format!(
                    "fastreq: error: cannot write output: {e}; stopping (what was not written is \
                     not acknowledged: other workers take it over)"
                ));
                c.failed.store(true, Ordering::Relaxed);
                return;
            }
        }
        let mut stopped_at: Option<Instant> = None;
        loop {
            match c.queue.complete(&commit.done).await {
                Ok(()) => {
                    backoff.ok();
                    break;
                }
                Err(e) => {
                    if *c.stop.borrow() {
                        let since = *stopped_at.get_or_insert_with(Instant::now);
                        if since.elapsed() > COMMIT_GRACE {
                            crate::say(&format!(
                                "fastreq: error: stopped with {} outcomes not acknowledged ({}); \
                                 other workers will run them again",
                                commit.done.len(),
                                message(&e)
                            ));
                            c.failed.store(true, Ordering::Relaxed);
                            return;
                        }
                    }
                    tokio::time::sleep(backoff.failed(&e)).await;
                }
            }
        }
        {
            let mut held = lock(&c.held);
            for pos in &commit.positions {
                held.remove(pos);
            }
        }
        c.committed
            .fetch_add(commit.done.len() as u64, Ordering::Relaxed);
    }
}
