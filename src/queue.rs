//! A shared work queue on Redis Streams (feature `redis`): many `fastreq` workers, on
//! many machines, take request lines from one list and put their outcomes in another.
//!
//! This is the engine of the command line's `fastreq enqueue`, `fastreq fetch --redis URL
//! --queue NAME` (a worker) and `fastreq results`; it is public so that programs can feed
//! a queue or read its results themselves.
//!
//! # Keys
//!
//! Every key of a queue named `NAME` carries the hash tag `{NAME}`, so they share one slot
//! (Redis Cluster):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `fastreq:{NAME}:jobs` | stream | one entry per request line: fields `index`, `line_no`, `line` |
//! | `fastreq:{NAME}:results` | stream | one entry per outcome: fields `index`, `line` (a JSON line) |
//! | `fastreq:{NAME}:meta` | hash | `started`, `enqueued` (lines so far), `total` and `finished` once the enqueue ended |
//!
//! The jobs stream has one consumer group, [`GROUP`]. Each worker reads it as a consumer
//! of its own ([`read`](Queue::read)), acknowledges an entry only once its outcome is
//! published ([`complete`](Queue::complete): the result is added and the entry
//! acknowledged in one pipeline, in that order), keeps the entries it works on fresh
//! ([`touch`](Queue::touch)), and takes over the entries of a worker that died
//! ([`reclaim`](Queue::reclaim): `XAUTOCLAIM` after an idle time). Delivery is therefore
//! *at least once*: an outcome may be published twice (a worker that died after publishing
//! but before its acknowledgement counted); readers of the results keep one per index.
//!
//! An entry delivered more than [`max_deliveries`](QueueBuilder::max_deliveries) times
//! (it killed every worker that took it) is reported by [`Entry::is_poisoned`]: the worker
//! publishes an error outcome for it instead of trying again forever.
//!
//! # Failures
//!
//! Every call is bounded by [`timeout`](QueueBuilder::timeout) (default 5 s; a blocking
//! read by its block time plus that) and fails with an [`ErrorKind::Queue`] error; the
//! connections reconnect by themselves, so calling again after a failure (with a backoff)
//! resumes once Redis is back. Nothing acknowledged is ever lost, and nothing is lost
//! that is not acknowledged: it stays pending and is reclaimed.
//!
//! The Redis URL's user name and password never appear in `Debug`, errors or logs.
//!
//! # Example
//!
//! Building a queue does not connect (the first call does), so this runs without Redis:
//!
//! ```
//! use fastreq::queue::Queue;
//!
//! # fn main() -> Result<(), fastreq::Error> {
//! let queue = Queue::builder("redis://:hunter2@127.0.0.1:6379/", "crawl").build()?;
//! assert_eq!(queue.jobs_key(), "fastreq:{crawl}:jobs");
//! assert!(!format!("{queue:?}").contains("hunter2"));
//! assert!(Queue::new("redis://127.0.0.1/", "a{b}").unwrap_err().is_config());
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Value;
use tokio::sync::OnceCell;

use crate::error::{Error, ErrorKind};

/// The consumer group of every queue's jobs stream.
pub const GROUP: &str = "fastreq";
/// The default bound on one Redis call: 5 s.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// The default longest wait of a [`read`](Queue::read) for new entries: 1 s.
pub const DEFAULT_BLOCK: Duration = Duration::from_secs(1);
/// The default number of deliveries after which an entry is poisoned: 5.
pub const DEFAULT_MAX_DELIVERIES: u64 = 5;

/// One request line to enqueue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The outcome's index: the position of the line among the input lines that are not
    /// blank or comments (as `fastreq fetch` counts them).
    pub index: u64,
    /// The 1-based line number in the input (for messages).
    pub line_no: u64,
    /// The line, without its line ending.
    pub line: Bytes,
}

/// The id of a stream entry (`1700000000000-0`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(String);

impl EntryId {
    /// The id as Redis writes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A job delivered to a worker.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Its id in the jobs stream.
    pub id: EntryId,
    /// The request line.
    pub job: Job,
    /// How many times it was delivered, this time included (1 for a first delivery).
    pub deliveries: u64,
    /// The queue's [`max_deliveries`](QueueBuilder::max_deliveries).
    max_deliveries: u64,
}

impl Entry {
    /// True when the entry was delivered more than the queue's
    /// [`max_deliveries`](QueueBuilder::max_deliveries) times: the workers that took it
    /// stopped before finishing it, so it should get an error outcome, not another try.
    pub fn is_poisoned(&self) -> bool {
        self.deliveries > self.max_deliveries
    }
}

/// An outcome to publish, and the entry it finishes.
#[derive(Clone, Debug)]
pub struct Done {
    /// The entry to acknowledge.
    pub id: EntryId,
    /// The outcome's index ([`Job::index`]).
    pub index: u64,
    /// The outcome, one JSON line (without a newline).
    pub line: Bytes,
}

/// One published outcome, read back by [`Queue::results`].
#[derive(Clone, Debug)]
pub struct ResultEntry {
    /// Its id in the results stream (pass the last one to read on).
    pub id: EntryId,
    /// The outcome's index.
    pub index: u64,
    /// The outcome's JSON line.
    pub line: Bytes,
}

/// A snapshot of a queue, from [`Queue::status`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStatus {
    /// An enqueue started on this queue.
    pub started: bool,
    /// Lines enqueued so far.
    pub enqueued: u64,
    /// The enqueue ended: `Some(total lines)`.
    pub total: Option<u64>,
    /// Some entries of the jobs stream were never delivered to any worker.
    pub undelivered: bool,
    /// Entries delivered but not acknowledged yet (in progress, or of dead workers).
    pub pending: u64,
    /// Entries of the results stream (duplicates included).
    pub results: u64,
}

impl QueueStatus {
    /// The enqueue ended, every entry was delivered and acknowledged: no work is left.
    pub fn is_drained(&self) -> bool {
        self.total.is_some() && !self.undelivered && self.pending == 0
    }
}

/// Builds a [`Queue`]; see [`Queue::builder`].
#[must_use]
pub struct QueueBuilder {
    url: String,
    name: String,
    timeout: Duration,
    block: Duration,
    max_deliveries: u64,
}

impl fmt::Debug for QueueBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueBuilder")
            .field("url", &crate::redact_url(&self.url))
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .field("block", &self.block)
            .field("max_deliveries", &self.max_deliveries)
            .finish()
    }
}

impl QueueBuilder {
    /// Bounds every Redis call, connecting included (default 5 s). Zero is taken as 1 ms.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long a [`read`](Queue::read) waits for new entries when there are none
    /// (default 1 s). Zero: it does not wait.
    pub fn block(mut self, block: Duration) -> Self {
        self.block = block;
        self
    }

    /// Deliveries after which an entry is poisoned (default 5; 0 is taken as 1).
    pub fn max_deliveries(mut self, n: u64) -> Self {
        self.max_deliveries = n.max(1);
        self
    }

    /// The queue. Does not connect. A URL that does not parse, or a name that is empty,
    /// longer than 200 bytes or holds `{` or `}`, is an [`ErrorKind::Config`] error (the
    /// URL redacted).
    pub fn build(self) -> Result<Queue, Error> {
        let shown = crate::redact_url(&self.url);
        let name = &self.name;
        if name.is_empty() || name.len() > 200 || name.contains(['{', '}']) {
            return Err(Error::config(format!(
                "queue name must be 1 to 200 bytes without `{{` or `}}` (got {name:?})"
            )));
        }
        let mut secrets = Vec::new();
        if let Ok(u) = url::Url::parse(&self.url) {
            for s in [u.password().unwrap_or(""), u.username()] {
                if !s.is_empty() {
                    secrets.push(s.to_owned());
                    if let Ok(decoded) = percent_decode(s) {
                        if decoded != s {
                            secrets.push(decoded);
                        }
                    }
                }
            }
        }
        let scrubber = Scrubber {
            raw: self.url.clone(),
            shown: shown.clone(),
            secrets,
        };
        let client = redis::Client::open(self.url.as_str()).map_err(|e| {
            Error::config(scrubber.scrub(format!("invalid Redis URL `{shown}`: {e}")))
        })?;
        Ok(Queue {
            inner: Arc::new(Inner {
                keys: Keys::new(name),
                name: self.name,
                client,
                scrubber,
                timeout: self.timeout,
                block: self.block,
                max_deliveries: self.max_deliveries,
                conn: OnceCell::new(),
                reader: OnceCell::new(),
            }),
        })
    }
}

fn percent_decode(s: &str) -> Result<String, std::str::Utf8Error> {
    let bytes: Vec<u8> = url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())
        .unwrap_or_default();
    std::str::from_utf8(&bytes).map(str::to_owned)
}

/// Removes the URL's secrets from messages.
struct Scrubber {
    raw: String,
    shown: String,
    secrets: Vec<String>,
}

impl Scrubber {
    fn scrub(&self, mut message: String) -> String {
        if message.contains(&self.raw) {
            message = message.replace(&self.raw, &self.shown);
        }
        for s in &self.secrets {
            if message.contains(s.as_str()) {
                message = message.replace(s.as_str(), "REDACTED");
            }
        }
        message
    }
}

struct Keys {
    jobs: String,
    results: String,
    meta: String,
}

impl Keys {
    fn new(name: &str) -> Keys {
        Keys {
            jobs: format!("fastreq:{{{name}}}:jobs"),
            results: format!("fastreq:{{{name}}}:results"),
            meta: format!("fastreq:{{{name}}}:meta"),
        }
    }
}

/// A handle on one queue of one Redis: two connections (one for blocking reads), each
/// reconnecting by itself. Clones share them. See the [module docs](self).
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    keys: Keys,
    client: redis::Client,
    scrubber: Scrubber,
    timeout: Duration,
    block: Duration,
    max_deliveries: u64,
    conn: OnceCell<ConnectionManager>,
    reader: OnceCell<ConnectionManager>,
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("url", &self.inner.scrubber.shown)
            .field("name", &self.inner.name)
            .field("timeout", &self.inner.timeout)
            .field("block", &self.inner.block)
            .field("max_deliveries", &self.inner.max_deliveries)
            .finish()
    }
}

/// A pipeline or command to run.
enum Call<'a> {
    Cmd(&'a redis::Cmd),
    Pipe(&'a redis::Pipeline),
}

impl Queue {
    /// A queue named `name` on the Redis at `url` with the defaults; does not connect.
    pub fn new(url: &str, name: &str) -> Result<Queue, Error> {
        Queue::builder(url, name).build()
    }

    /// A builder for the queue `name` on the Redis at `url`
    /// (`redis://[[user]:password@]host[:port][/db]`).
    pub fn builder(url: &str, name: &str) -> QueueBuilder {
        QueueBuilder {
            url: url.to_owned(),
            name: name.to_owned(),
            timeout: DEFAULT_QUEUE_TIMEOUT,
            block: DEFAULT_BLOCK,
            max_deliveries: DEFAULT_MAX_DELIVERIES,
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The Redis URL, redacted.
    pub fn url(&self) -> &str {
        &self.inner.scrubber.shown
    }

    /// The jobs stream's key, `fastreq:{NAME}:jobs`.
    pub fn jobs_key(&self) -> &str {
        &self.inner.keys.jobs
    }

    /// The results stream's key, `fastreq:{NAME}:results`.
    pub fn results_key(&self) -> &str {
        &self.inner.keys.results
    }

    /// The meta hash's key, `fastreq:{NAME}:meta`.
    pub fn meta_key(&self) -> &str {
        &self.inner.keys.meta
    }

    fn error(&self, message: String) -> Error {
        Error::new(ErrorKind::Queue).with_message(self.inner.scrubber.scrub(message))
    }

    async fn connection(&self, reader: bool) -> Result<ConnectionManager, redis::RedisError> {
        let inner = &self.inner;
        let (cell, response) = if reader {
            (&inner.reader, inner.block + inner.timeout)
        } else {
            (&inner.conn, inner.timeout)
        };
        let conn = cell
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(inner.timeout))
                    .set_response_timeout(Some(response))
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(10))
                    .set_max_delay(Duration::from_millis(200));
                ConnectionManager::new_with_config(inner.client.clone(), config).await
            })
            .await?;
        Ok(conn.clone())
    }

    /// Runs `call`, bounded by the timeout (plus the block time on the reader).
    async fn run(&self, what: &str, call: Call<'_>, reader: bool) -> Result<Value, Error> {
        let limit = if reader {
            self.inner.timeout + self.inner.block
        } else {
            self.inner.timeout
        };
        let fut = async {
            let mut conn = self.connection(reader).await?;
            match call {
                Call::Cmd(c) => c.query_async::<Value>(&mut conn).await,
                Call::Pipe(p) => p.query_async::<Value>(&mut conn).await,
            }
        };
        match tokio::time::timeout(limit, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.error(format!(
                "queue `{}`: {what} on Redis at {} failed: {e}",
                self.inner.name,
                self.url()
            ))),
            Err(_) => Err(self.error(format!(
                "queue `{}`: {what} on Redis at {}: no answer within {limit:?}",
                self.inner.name,
                self.url()
            ))),
        }
    }

    /// Creates the jobs stream and its consumer group if they do not exist (workers and
    /// the enqueue both call it, in any order).
    pub async fn create_group(&self) -> Result<(), Error> {
        let mut cmd = redis::cmd("XGROUP");
        cmd.arg("CREATE")
            .arg(&self.inner.keys.jobs)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM");
        match self.run("XGROUP CREATE", Call::Cmd(&cmd), false).await {
            Ok(_) => Ok(()),
            Err(e) if e.message().is_some_and(|m| m.contains("BUSYGROUP")) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Starts the enqueue of this queue: creates the group and marks the queue as
    /// started. A queue can be filled once: if an enqueue already started on it, this is
    /// an [`ErrorKind::Config`] error (pick another name, or [`delete`](Self::delete) it).
    pub async fn begin_enqueue(&self) -> Result<(), Error> {
        self.create_group().await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut cmd = redis::cmd("HSETNX");
        cmd.arg(&self.inner.keys.meta).arg("started").arg(now);
        match self.run("HSETNX", Call::Cmd(&cmd), false).await? {
            Value::Int(1) => Ok(()),
            _ => Err(Error::config(format!(
                "queue `{}` on Redis at {} was already filled by an earlier enqueue: use a new \
                 queue name",
                self.inner.name,
                self.url()
            ))),
        }
    }

    /// Adds `jobs` to the jobs stream, in one pipeline, and records how many lines were
    /// enqueued (the highest index + 1). Safe to call again after a failure: a job added
    /// twice is fetched twice, and its outcome kept once.
    pub async fn enqueue(&self, jobs: &[Job]) -> Result<(), Error> {
        let Some(last) = jobs.iter().map(|j| j.index).max() else {
            return Ok(());
        };
        let mut pipe = redis::pipe();
        for job in jobs {
            pipe.cmd("XADD")
                .arg(&self.inner.keys.jobs)
                .arg("*")
                .arg("index")
                .arg(job.index)
                .arg("line_no")
                .arg(job.line_no)
                .arg("line")
                .arg(job.line.as_ref())
                .ignore();
        }
        pipe.cmd("HSET")
            .arg(&self.inner.keys.meta)
            .arg("enqueued")
            .arg(last + 1)
            .ignore();
        self.run("XADD", Call::Pipe(&pipe), false).await.map(drop)
    }

    /// Marks the enqueue as ended with `total` lines: once they are all done, the queue is
    /// drained ([`QueueStatus::is_drained`]).
    pub async fn finish_enqueue(&self, total: u64) -> Result<(), Error> {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(&self.inner.keys.meta)
            .arg("enqueued")
            .arg(total)
            .arg("total")
            .arg(total)
            .arg("finished")
            .arg(1);
        self.run("HSET", Call::Cmd(&cmd), false).await.map(drop)
    }

    /// Up to `count` entries never delivered before, for `consumer`; waits up to the
    /// [`block`](QueueBuilder::block) time when there are none (on a connection of its own,
    /// so other calls do not wait behind it). Returns none on timeout.
    pub async fn read(&self, consumer: &str, count: usize) -> Result<Vec<Entry>, Error> {
        self.read_block(consumer, count, self.inner.block).await
    }

    /// [`read`](Self::read) waiting at most `block` (itself at most the queue's
    /// [`block`](QueueBuilder::block) time; zero: no wait).
    pub async fn read_block(
        &self,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Entry>, Error> {
        let block = block.min(self.inner.block);
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(count.max(1));
        if !block.is_zero() {
            cmd.arg("BLOCK").arg(block.as_millis().max(1) as u64);
        }
        cmd.arg("STREAMS").arg(&self.inner.keys.jobs).arg(">");
        let reply = self.run("XREADGROUP", Call::Cmd(&cmd), true).await?;
        // [[key, [[id, [field, value, ...]], ...]]] or nil.
        let mut out = Vec::new();
        for stream in array(reply) {
            let mut parts = array(stream).into_iter();
            let _key = parts.next();
            for item in parts.next().map(array).unwrap_or_default() {
                if let Some((id, job)) = self.parse_entry(item)? {
                    out.push(self.entry(id, job, 1));
                }
            }
        }
        Ok(out)
    }

    fn entry(&self, id: EntryId, job: Job, deliveries: u64) -> Entry {
        Entry {
            id,
            job,
            deliveries,
            max_deliveries: self.inner.max_deliveries,
        }
    }

    /// `[id, [field, value, ...]]` of the jobs stream; `None` for a deleted entry (nil).
    fn parse_entry(&self, item: Value) -> Result<Option<(EntryId, Job)>, Error> {
        let mut parts = array(item).into_iter();
        let Some(id) = parts.next().and_then(string) else {
            return Ok(None);
        };
        let fields = parts.next().map(array).unwrap_or_default();
        if fields.is_empty() {
            return Ok(None);
        }
        let mut index = None;
        let mut line_no = 0;
        let mut line = Bytes::new();
        let mut it = fields.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            match bytes(k).as_deref() {
                Some(b"index") => index = bytes(v).and_then(|b| parse_u64(&b)),
                Some(b"line_no") => line_no = bytes(v).and_then(|b| parse_u64(&b)).unwrap_or(0),
                Some(b"line") => line = Bytes::from(bytes(v).unwrap_or_default()),
                _ => {}
            }
        }
        let Some(index) = index else {
            return Err(self.error(format!(
                "queue `{}`: entry {id} of {} has no `index` field (not written by fastreq?)",
                self.inner.name, self.inner.keys.jobs
            )));
        };
        Ok(Some((
            EntryId(id),
            Job {
                index,
                line_no,
                line,
            },
        )))
    }

    /// Takes over up to `count` entries that were delivered to some consumer (a worker
    /// that died, or hangs) and not acknowledged for at least `min_idle` (`XAUTOCLAIM`),
    /// with their delivery counts (this one included).
    pub async fn reclaim(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Entry>, Error> {
        let count = count.max(1);
        let mut claimed = Vec::new();
        let mut cursor = "0-0".to_owned();
        // The pending list is scanned from the start, at most 16 steps (each looks at up to
        // 10·count entries).
        for _ in 0..16 {
            let mut cmd = redis::cmd("XAUTOCLAIM");
            cmd.arg(&self.inner.keys.jobs)
                .arg(GROUP)
                .arg(consumer)
                .arg(min_idle.as_millis() as u64)
                .arg(&cursor)
                .arg("COUNT")
                .arg(count - claimed.len());
            let reply = self.run("XAUTOCLAIM", Call::Cmd(&cmd), false).await?;
            let mut parts = array(reply).into_iter();
            let next = parts
                .next()
                .and_then(string)
                .unwrap_or_else(|| "0-0".into());
            for item in parts.next().map(array).unwrap_or_default() {
                if let Some(found) = self.parse_entry(item)? {
                    claimed.push(found);
                }
            }
            if next == "0-0" || claimed.len() >= count {
                break;
            }
            cursor = next;
        }
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        // Their delivery counts: XPENDING over the claimed range, for this consumer.
        let first = claimed.iter().map(|(id, _)| id).min().cloned();
        let last = claimed.iter().map(|(id, _)| id).max().cloned();
        let mut counts = HashMap::new();
        if let (Some(first), Some(last)) = (first, last) {
            let mut cmd = redis::cmd("XPENDING");
            cmd.arg(&self.inner.keys.jobs)
                .arg(GROUP)
                .arg(first.as_str())
                .arg(last.as_str())
                .arg(10_000)
                .arg(consumer);
            let reply = self.run("XPENDING", Call::Cmd(&cmd), false).await?;
            for row in array(reply) {
                let mut f = array(row).into_iter();
                let id = f.next().and_then(string);
                let deliveries = f.nth(2).and_then(int);
                if let (Some(id), Some(d)) = (id, deliveries) {
                    counts.insert(id, d);
                }
            }
        }
        Ok(claimed
            .into_iter()
            .map(|(id, job)| {
                let d = counts.get(id.as_str()).copied().unwrap_or(2);
                self.entry(id, job, d)
            })
            .collect())
    }

    /// Tells Redis that `consumer` still works on `ids` (resets their idle time, not their
    /// delivery count: `XCLAIM … JUSTID`), so that no other worker reclaims them while
    /// they take long. Call it more often than the reclaim idle time.
    pub async fn touch(&self, consumer: &str, ids: &[EntryId]) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("XCLAIM");
        cmd.arg(&self.inner.keys.jobs)
            .arg(GROUP)
            .arg(consumer)
            .arg(0);
        for id in ids {
            cmd.arg(id.as_str());
        }
        cmd.arg("JUSTID");
        self.run("XCLAIM", Call::Cmd(&cmd), false).await.map(drop)
    }

    /// Publishes the outcomes to the results stream and acknowledges their entries, in
    /// one pipeline, results first: an entry is never acknowledged without its outcome.
    /// Safe to call again after a failure (an outcome may then be published twice).
    pub async fn complete(&self, done: &[Done]) -> Result<(), Error> {
        if done.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for d in done {
            pipe.cmd("XADD")
                .arg(&self.inner.keys.results)
                .arg("*")
                .arg("index")
                .arg(d.index)
                .arg("line")
                .arg(d.line.as_ref())
                .ignore();
        }
        let ack = pipe.cmd("XACK").arg(&self.inner.keys.jobs).arg(GROUP);
        for d in done {
            ack.arg(d.id.as_str());
        }
        ack.ignore();
        self.run("XADD/XACK", Call::Pipe(&pipe), false)
            .await
            .map(drop)
    }

    /// Publishes outcomes without acknowledging anything.
    pub async fn publish(&self, results: &[(u64, Bytes)]) -> Result<(), Error> {
        if results.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (index, line) in results {
            pipe.cmd("XADD")
                .arg(&self.inner.keys.results)
                .arg("*")
                .arg("index")
                .arg(*index)
                .arg("line")
                .arg(line.as_ref())
                .ignore();
        }
        self.run("XADD", Call::Pipe(&pipe), false).await.map(drop)
    }

    /// Acknowledges entries without publishing anything; returns how many were pending.
    pub async fn ack(&self, ids: &[EntryId]) -> Result<u64, Error> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut cmd = redis::cmd("XACK");
        cmd.arg(&self.inner.keys.jobs).arg(GROUP);
        for id in ids {
            cmd.arg(id.as_str());
        }
        Ok(int(self.run("XACK", Call::Cmd(&cmd), false).await?).unwrap_or(0))
    }

    /// Where the queue stands: enqueue progress, undelivered and pending entries, results.
    pub async fn status(&self) -> Result<QueueStatus, Error> {
        let mut pipe = redis::pipe();
        pipe.cmd("HGETALL").arg(&self.inner.keys.meta);
        pipe.cmd("EXISTS").arg(&self.inner.keys.jobs);
        pipe.cmd("XLEN").arg(&self.inner.keys.results);
        let reply = array(self.run("HGETALL", Call::Pipe(&pipe), false).await?);
        let mut it = reply.into_iter();
        let meta = it.next().map(pairs).unwrap_or_default();
        let exists = it.next().and_then(int).unwrap_or(0) > 0;
        let results = it.next().and_then(int).unwrap_or(0);
        let field = |name: &str| meta.get(name).and_then(|v| parse_u64(v.as_bytes()));
        let mut status = QueueStatus {
            started: meta.contains_key("started"),
            enqueued: field("enqueued").unwrap_or(0),
            total: field("finished")
                .filter(|f| *f == 1)
                .map(|_| field("total").unwrap_or(0)),
            undelivered: false,
            pending: 0,
            results,
        };
        if !exists {
            // No stream at all: nothing was enqueued (or Redis lost it).
            status.undelivered = status.enqueued > 0;
            return Ok(status);
        }
        let mut pipe = redis::pipe();
        pipe.cmd("XINFO").arg("STREAM").arg(&self.inner.keys.jobs);
        pipe.cmd("XINFO").arg("GROUPS").arg(&self.inner.keys.jobs);
        let reply = array(self.run("XINFO", Call::Pipe(&pipe), false).await?);
        let mut it = reply.into_iter();
        let stream = it.next().map(pairs).unwrap_or_default();
        let last = stream.get("last-generated-id").cloned();
        let length = stream
            .get("length")
            .and_then(|v| parse_u64(v.as_bytes()))
            .unwrap_or(0);
        let group = it
            .next()
            .map(array)
            .unwrap_or_default()
            .into_iter()
            .map(pairs)
            .find(|g| g.get("name").map(String::as_str) == Some(GROUP));
        match group {
            Some(g) => {
                status.pending = g
                    .get("pending")
                    .and_then(|v| parse_u64(v.as_bytes()))
                    .unwrap_or(0);
                let delivered = g.get("last-delivered-id").cloned();
                status.undelivered = length > 0 && delivered != last;
            }
            None => status.undelivered = length > 0,
        }
        Ok(status)
    }

    /// Up to `count` published outcomes after `after` (from the start when `None`), in
    /// the order they were published.
    pub async fn results(
        &self,
        after: Option<&EntryId>,
        count: usize,
    ) -> Result<Vec<ResultEntry>, Error> {
        let start = match after {
            Some(id) => format!("({id}"),
            None => "-".to_owned(),
        };
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(&self.inner.keys.results)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(count.max(1));
        let reply = self.run("XRANGE", Call::Cmd(&cmd), false).await?;
        let mut out = Vec::new();
        for item in array(reply) {
            let mut parts = array(item).into_iter();
            let Some(id) = parts.next().and_then(string) else {
                continue;
            };
            let mut index = None;
            let mut line = Bytes::new();
            let mut it = parts.next().map(array).unwrap_or_default().into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                match bytes(k).as_deref() {
                    Some(b"index") => index = bytes(v).and_then(|b| parse_u64(&b)),
                    Some(b"line") => line = Bytes::from(bytes(v).unwrap_or_default()),
                    _ => {}
                }
            }
            let Some(index) = index else {
                return Err(self.error(format!(
                    "queue `{}`: entry {id} of {} has no `index` field (not written by fastreq?)",
                    self.inner.name, self.inner.keys.results
                )));
            };
            out.push(ResultEntry {
                id: EntryId(id),
                index,
                line,
            });
        }
        Ok(out)
    }

    /// Deletes the queue's keys (jobs, results, meta).
    pub async fn delete(&self) -> Result<(), Error> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(&self.inner.keys.jobs)
            .arg(&self.inner.keys.results)
            .arg(&self.inner.keys.meta);
        self.run("DEL", Call::Cmd(&cmd), false).await.map(drop)
    }
}

fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) | Value::Set(a) => a,
        Value::Map(m) => m.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    }
}

fn bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        _ => None,
    }
}

fn string(v: Value) -> Option<String> {
    bytes(v).and_then(|b| String::from_utf8(b).ok())
}

fn int(v: Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(i).ok(),
        other => bytes(other).and_then(|b| parse_u64(&b)),
    }
}

fn parse_u64(b: &[u8]) -> Option<u64> {
    std::str::from_utf8(b).ok()?.trim().parse().ok()
}

/// A flat `[k, v, k, v…]` reply (or a map) as text pairs; values that are not strings or
/// numbers are left out.
fn pairs(v: Value) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut it = array(v).into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        if let (Some(k), Some(v)) = (string(k), string(v)) {
            out.insert(k, v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_a_hash_tag_and_secrets_stay_hidden() {
        let q = Queue::new("redis://bob:hunter%212@127.0.0.1:1/", "crawl").unwrap();
        assert_eq!(q.jobs_key(), "fastreq:{crawl}:jobs");
        assert_eq!(q.results_key(), "fastreq:{crawl}:results");
        assert_eq!(q.meta_key(), "fastreq:{crawl}:meta");
        let shown = format!("{q:?} {}", q.url());
        assert!(
            !shown.contains("hunter") && !shown.contains("bob"),
            "{shown}"
        );
        let e = q.error("x redis://bob:hunter%212@127.0.0.1:1/ hunter!2".into());
        assert!(!e.to_string().contains("hunter"), "{e}");
        for bad in ["", "a{b", "a}b"] {
            assert!(Queue::new("redis://127.0.0.1/", bad)
                .unwrap_err()
                .is_config());
        }
        let e = Queue::new("notredis://:pw@h/", "q").unwrap_err();
        assert!(e.is_config() && !e.to_string().contains("pw@"), "{e}");
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_a_bounded_queue_error() {
        let q = Queue::builder("redis://:s3cret@127.0.0.1:1/", "q")
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let e = q.status().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Queue);
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn drained_needs_the_enqueue_finished_and_nothing_pending() {
        let mut s = QueueStatus {
            total: Some(3),
            ..QueueStatus::default()
        };
        assert!(s.is_drained());
        s.pending = 1;
        assert!(!s.is_drained());
        s.pending = 0;
        s.undelivered = true;
        assert!(!s.is_drained());
        s.undelivered = false;
        s.total = None;
        assert!(!s.is_drained());
    }
}
