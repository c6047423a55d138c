//! A rate limit shared by many processes, on Redis (feature `redis`).
//!
//! [`RedisLimiter`] (one global quota) and [`RedisHostLimiters`] (one quota per host)
//! implement [`Limiter`] and [`KeyedLimiter`], so they plug into
//! [`RateLimitLayer::from_limiters`](super::RateLimitLayer::from_limiters) unchanged. Every
//! process that names the same quota on the same Redis shares it: ten workers with a
//! 100/s quota named `api` send 100 requests per second between them, not 1,000.
//!
//! # How it works
//!
//! - **One Lua script, GCRA.** Each round trip runs one script (`EVALSHA`, loaded again
//!   after a `NOSCRIPT` reply, e.g. after a restart or `SCRIPT FLUSH`) that keeps the
//!   quota's *theoretical arrival time* in one key, reads the clock with Redis `TIME`
//!   (so the clocks of the client machines do not matter), and sets the key's expiry in
//!   the same script: an idle quota leaves nothing behind.
//! - **Leases.** A round trip asks for as many permits as there are requests waiting in
//!   this process, at most 10 ms worth of the rate (50 at 5,000/s), and the script grants
//!   those that are due. So high rates do not cost one round trip per request, and the
//!   admitted total stays within `burst + rate·t` counted from the first admission: Redis
//!   never grants a permit before it is due. A permit leased but not used within 20 ms is
//!   dropped (never handed out late). Like the in-process [`TokenBucket`], a caller
//!   arriving late may take the permits that fell due in the last 10 ms (catch-up), so a
//!   loaded machine still gets its rate; over an arbitrary window of length `t` the
//!   bound is therefore `burst + rate·(t + 10 ms)`.
//! - **Keys** are `fastreq:{NAME}:rate` (global) and `fastreq:{NAME}:host:KEY` (per host,
//!   `KEY` from [`host_key`](super::host_key)): the hash tag `{NAME}` puts every key of a
//!   quota in one slot, so it works on Redis Cluster too.
//! - **Retry-After.** A host's pause ([`Limiter::pause_until`]) is written to Redis, so a
//!   `429` seen by one process pauses that host for all of them.
//! - **Quota.** Each process passes its own [`Quota`] with every call: give every process
//!   the same one.
//!
//! # When Redis fails
//!
//! Every Redis call (connecting included) is bounded by
//! [`timeout`](RedisStoreBuilder::timeout) (default 500 ms), so a Redis that hangs does not
//! hang requests. What happens then is your choice, [`OnRedisFailure`]:
//!
//! | choice | requests while Redis is down |
//! |---|---|
//! | [`FailClosed`](OnRedisFailure::FailClosed) (default) | fail with an [`ErrorKind::RateLimiter`] error |
//! | [`FailOpen`](OnRedisFailure::FailOpen) | go without any limit |
//! | [`Local { processes: N }`](OnRedisFailure::Local) | are limited by a local bucket at `rate / N` (burst `burst / N`, at least 1) |
//!
//! After a failure the store does not try Redis again for
//! [`retry_interval`](RedisStoreBuilder::retry_interval) (default 1 s); then the next
//! request tries it. A `tracing` warning is logged when Redis fails (naming the mode) and
//! when it answers again.
//!
//! Connection strings are redacted everywhere (`Debug`, errors, logs): the password and
//! user name never appear.
//!
//! # Examples
//!
//! Building the limiters does not connect (the first request does), so this runs without
//! a Redis server:
//!
//! ```
//! use std::time::Duration;
//! use fastreq::rate_limit::{OnRedisFailure, Quota, RateLimitLayer, RedisStore};
//!
//! # fn main() -> Result<(), fastreq::Error> {
//! let store = RedisStore::builder("redis://:hunter2@127.0.0.1:6379/0")
//!     .timeout(Duration::from_millis(200))
//!     .on_failure(OnRedisFailure::Local { processes: 4 })
//!     .build()?;
//! // The password is never shown.
//! assert!(!format!("{store:?}").contains("hunter2"));
//!
//! // 100/s over all workers naming the quota "crawl", 5/s per host.
//! let global = store.limiter("crawl", Quota::new(100.0, 10)?)?;
//! let per_host = store.host_limiters("crawl", Quota::per_second(5.0)?)?;
//! let layer = RateLimitLayer::from_limiters(Some(global), Some(per_host));
//! # let _ = layer;
//!
//! // Hash tags are reserved for the key layout.
//! assert!(store.limiter("a{b}", Quota::per_second(1.0)?).unwrap_err().is_config());
//! # Ok(()) }
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::bucket::{BucketWaiter, TokenBucket};
use super::limiter::{KeyedLimiter, Limiter};
use super::quota::Quota;
use crate::error::{Error, ErrorKind};

/// The default bound on one Redis call (connecting included): 500 ms.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(500);
/// The default time before Redis is tried again after a failure: 1 s.
pub const DEFAULT_REDIS_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Catch-up: permits due at most this long ago may still be granted (µs).
const LAG_US: u64 = 10_000;
/// A lease is at most this much of the rate.
const LEASE_SECONDS: f64 = 0.010;
/// Leased permits not handed out within this time are dropped.
const LEASE_TTL: Duration = Duration::from_millis(20);
/// The longest a driver waits before asking again after a partial grant.
const MAX_GAP: Duration = Duration::from_millis(5);
/// Idle host limiters are swept when the map has doubled, but not below this size.
const MIN_SWEEP: usize = 64;

/// GCRA over one key. KEYS[1]: the quota's key. ARGV: interval (µs, may be fractional),
/// burst, permits wanted, pause (µs from now, 0 = none), catch-up lag (µs).
/// Returns {granted, µs until the next permit is due}.
const SCRIPT: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local pause = tonumber(ARGV[4])
local lag = tonumber(ARGV[5])
local window = burst * interval
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then
  tat = math.max(tonumber(stored), now - lag)
end
local changed = false
if pause > 0 then
  local p = now + pause + window - interval
  if p > tat then
    tat = p
    changed = true
  end
end
local granted = 0
if want > 0 then
  local avail = math.floor((now + window - tat) / interval)
  if avail > 0 then
    granted = math.min(want, avail)
    tat = tat + granted * interval
    changed = true
  end
end
if changed then
  tat = math.ceil(tat)
  local ttl = math.ceil((tat - now + lag) / 1000) + 1
  if ttl > 0 then
    redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', ttl)
  end
end
local wait = tat + interval - window - now
if wait < 0 then wait = 0 end
return {granted, math.ceil(wait)}
";

/// What a Redis-backed limiter does while Redis fails (unreachable, hanging, erroring);
/// see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnRedisFailure {
    /// Requests fail with an [`ErrorKind::RateLimiter`]
    /// error (nothing is sent unlimited).
    #[default]
    FailClosed,
    /// Requests go without any limit.
    FailOpen,
    /// Requests are limited by a bucket in this process at `rate / processes` (burst
    /// `burst / processes`, at least 1): with `processes` set to the number of workers, the
    /// total stays near the shared quota.
    Local {
        /// How many processes share the quota (0 is taken as 1).
        processes: u32,
    },
}

/// Builds a [`RedisStore`]; see [`RedisStore::builder`].
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    timeout: Duration,
    retry_interval: Duration,
    on_failure: OnRedisFailure,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("url", &redact(&self.url))
            .field("timeout", &self.timeout)
            .field("retry_interval", &self.retry_interval)
            .field("on_failure", &self.on_failure)
            .finish()
    }
}

impl RedisStoreBuilder {
    /// Bounds every Redis call, connecting included (default 500 ms). Zero is taken as 1 ms.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long after a failure Redis is left alone before the next request tries it
    /// again (default 1 s).
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }

    /// What requests do while Redis fails (default [`OnRedisFailure::FailClosed`]).
    pub fn on_failure(mut self, mode: OnRedisFailure) -> Self {
        self.on_failure = mode;
        self
    }

    /// The store. Does not connect: the first request does. A URL that does not parse is an
    /// [`ErrorKind::Config`] error (with the URL redacted).
    pub fn build(self) -> Result<RedisStore, Error> {
        let shown = redact(&self.url);
        let mut secrets = Vec::new();
        if let Ok(u) = url::Url::parse(&self.url) {
            for s in [u.password().unwrap_or(""), u.username()] {
                if !s.is_empty() {
                    secrets.push(s.to_owned());
                    let decoded = percent_decode(s);
                    if decoded != s {
                        secrets.push(decoded);
                    }
                }
            }
        }
        let store = StoreInner {
            client: None,
            url: shown,
            raw_url: self.url,
            secrets,
            timeout: self.timeout,
            retry_interval: self.retry_interval,
            on_failure: self.on_failure,
            conn: OnceCell::new(),
            script: redis::Script::new(SCRIPT),
            down: Mutex::new(None),
        };
        let client = redis::Client::open(store.raw_url.as_str()).map_err(|e| {
            Error::config(store.scrub(format!("invalid Redis URL `{}`: {e}", store.url)))
        })?;
        Ok(RedisStore {
            inner: Arc::new(StoreInner {
                client: Some(client),
                ..store
            }),
        })
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The URL without its user name and password (and with secret-looking query values
/// hidden), as [`redact_url`](crate::redact_url) does for request URLs.
fn redact(url: &str) -> String {
    crate::error::redact_url(url)
}

/// A connection to one Redis (one multiplexed connection, reconnecting by itself) and the
/// failure policy; it makes the limiters. Clones share the connection.
///
/// See the [module docs](self).
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    client: Option<redis::Client>,
    /// Redacted.
    url: String,
    raw_url: String,
    /// User name and password as written in the URL (and decoded), scrubbed from messages.
    secrets: Vec<String>,
    timeout: Duration,
    retry_interval: Duration,
    on_failure: OnRedisFailure,
    conn: OnceCell<ConnectionManager>,
    script: redis::Script,
    down: Mutex<Option<Down>>,
}

#[derive(Clone)]
struct Down {
    retry_at: Instant,
    reason: String,
}

impl StoreInner {
    fn scrub(&self, mut message: String) -> String {
        if message.contains(&self.raw_url) {
            message = message.replace(&self.raw_url, &self.url);
        }
        for s in &self.secrets {
            if message.contains(s.as_str()) {
                message = message.replace(s.as_str(), "REDACTED");
            }
        }
        message
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.url)
            .field("timeout", &self.inner.timeout)
            .field("retry_interval", &self.inner.retry_interval)
            .field("on_failure", &self.inner.on_failure)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > 200 || name.contains(['{', '}']) {
        return Err(Error::config(format!(
            "Redis quota name must be 1 to 200 bytes without `{{` or `}}` (got {name:?})"
        )));
    }
    Ok(())
}

impl RedisStore {
    /// A store with the defaults (timeout 500 ms, fail closed); does not connect.
    ///
    /// `url` is a Redis URL: `redis://[[user]:password@]host[:port][/db]`, `rediss://` for
    /// TLS (when the `redis` crate is built with TLS), `redis+unix:///path`.
    pub fn new(url: &str) -> Result<RedisStore, Error> {
        RedisStore::builder(url).build()
    }

    /// A builder for a store at `url`.
    pub fn builder(url: &str) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.to_owned(),
            timeout: DEFAULT_REDIS_TIMEOUT,
            retry_interval: DEFAULT_REDIS_RETRY_INTERVAL,
            on_failure: OnRedisFailure::FailClosed,
        }
    }

    /// The URL, redacted.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// True after a Redis call failed, until one succeeds again (while the failure mode
    /// is in force).
    pub fn is_down(&self) -> bool {
        lock(&self.inner.down).is_some()
    }

    /// The failure mode.
    pub fn on_failure(&self) -> OnRedisFailure {
        self.inner.on_failure
    }

    /// A global quota named `name` (key `fastreq:{name}:rate`), shared by every process
    /// that uses the same name on the same Redis.
    ///
    /// A name that is empty, longer than 200 bytes or contains `{` or `}` is an
    /// [`ErrorKind::Config`] error.
    pub fn limiter(&self, name: &str, quota: Quota) -> Result<RedisLimiter, Error> {
        check_name(name)?;
        Ok(RedisLimiter::create(
            self.clone(),
            format!("fastreq:{{{name}}}:rate"),
            quota,
        ))
    }

    /// Per-host quotas named `name` (keys `fastreq:{name}:host:KEY`), each host with
    /// `quota`, shared by every process that uses the same name on the same Redis.
    pub fn host_limiters(&self, name: &str, quota: Quota) -> Result<RedisHostLimiters, Error> {
        check_name(name)?;
        Ok(RedisHostLimiters {
            inner: Arc::new(HostsInner {
                store: self.clone(),
                prefix: format!("fastreq:{{{name}}}:host:"),
                quota: Mutex::new(quota),
                map: Mutex::new(HostMap {
                    map: HashMap::new(),
                    sweep_at: MIN_SWEEP,
                }),
            }),
        })
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::RateLimiter).with_message(self.inner.scrub(message.into()))
    }

    /// `Some` while Redis is considered down (before the next try).
    fn down(&self, now: Instant) -> Option<Down> {
        lock(&self.inner.down)
            .as_ref()
            .filter(|d| now < d.retry_at)
            .cloned()
    }

    fn mark_down(&self, reason: &str) {
        let mut down = lock(&self.inner.down);
        if down.is_none() {
            let mode = match self.inner.on_failure {
                OnRedisFailure::FailClosed => "failing closed: requests get errors".to_owned(),
                OnRedisFailure::FailOpen => "failing open: requests go unlimited".to_owned(),
                OnRedisFailure::Local { processes } => {
                    format!("falling back to a local limit at rate/{}", processes.max(1))
                }
            };
            tracing::warn!(
                redis = %self.inner.url,
                error = %reason,
                "rate limit: Redis failed; {mode}"
            );
        }
        *down = Some(Down {
            retry_at: Instant::now() + self.inner.retry_interval,
            reason: reason.to_owned(),
        });
    }

    fn mark_up(&self) {
        let mut down = lock(&self.inner.down);
        if down.take().is_some() {
            tracing::warn!(
                redis = %self.inner.url,
                "rate limit: Redis answers again; the shared limit is back"
            );
        }
    }

    async fn connection(&self) -> Result<ConnectionManager, redis::RedisError> {
        let inner = &self.inner;
        let conn = inner
            .conn
            .get_or_try_init(|| async {
                let client = inner.client.clone().expect("built with a client");
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(inner.timeout))
                    .set_response_timeout(Some(inner.timeout))
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(10))
                    .set_max_delay(Duration::from_millis(100));
                ConnectionManager::new_with_config(client, config).await
            })
            .await?;
        Ok(conn.clone())
    }

    /// One run of the script; bounded by the timeout.
    async fn run(
        &self,
        key: &str,
        quota: Quota,
        want: u64,
        pause_us: u64,
    ) -> Result<(u64, u64), String> {
        let interval_us = 1e6 / quota.rate();
        let call = async {
            let mut conn = self.connection().await?;
            self.inner
                .script
                .key(key)
                .arg(interval_us)
                .arg(quota.burst())
                .arg(want)
                .arg(pause_us)
                .arg(LAG_US)
                .invoke_async::<(u64, u64)>(&mut conn)
                .await
        };
        match tokio::time::timeout(self.inner.timeout, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self
                .inner
                .scrub(format!("Redis at {} failed: {e}", self.inner.url))),
            Err(_) => Err(format!(
                "Redis at {} did not answer within {:?}",
                self.inner.url, self.inner.timeout
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------
// One quota: RedisLimiter.

#[derive(Clone, Debug, PartialEq)]
enum Status {
    Waiting,
    Granted,
    /// Redis failed, fail closed: the message.
    Failed(String),
    /// Redis failed, local fallback: go to the local bucket.
    Fallback,
    /// Taken, cancelled, or moved on.
    Done,
}

struct Node {
    inner: Mutex<NodeInner>,
}

struct NodeInner {
    status: Status,
    waker: Option<Waker>,
}

impl Node {
    fn resolve(&self, status: Status) -> bool {
        let mut n = lock(&self.inner);
        if n.status != Status::Waiting {
            return false;
        }
        n.status = status;
        if let Some(w) = n.waker.take() {
            w.wake();
        }
        true
    }

    fn is_waiting(&self) -> bool {
        lock(&self.inner).status == Status::Waiting
    }
}

/// A global quota shared through Redis; see the [module docs](self). Clones share one
/// local state (one line of waiters, one lease).
#[derive(Clone)]
pub struct RedisLimiter {
    inner: Arc<LimiterInner>,
}

struct LimiterInner {
    store: RedisStore,
    key: String,
    state: Mutex<State>,
}

struct State {
    quota: Quota,
    fallback: TokenBucket,
    /// Leased permits not handed out yet.
    permits: u64,
    leased_at: Instant,
    paused_until: Option<Instant>,
    queue: VecDeque<Arc<Node>>,
    driving: bool,
}

fn fallback_quota(quota: Quota, mode: OnRedisFailure) -> Quota {
    let n = match mode {
        OnRedisFailure::Local { processes } => processes.max(1),
        _ => 1,
    };
    let burst = (quota.burst() / n).max(1);
    Quota::new(quota.rate() / f64::from(n), burst).unwrap_or(quota)
}

impl State {
    fn expire(&mut self, now: Instant) {
        if self.permits > 0 && now > self.leased_at + LEASE_TTL {
            self.permits = 0;
        }
    }

    fn skip_done(&mut self) {
        while let Some(front) = self.queue.front() {
            if front.is_waiting() {
                break;
            }
            self.queue.pop_front();
        }
    }

    /// Hands leased permits to the waiters in line, in order.
    fn grant(&mut self, now: Instant) {
        self.expire(now);
        if self.paused_until.is_some_and(|p| now < p) {
            return;
        }
        while self.permits > 0 {
            let Some(node) = self.queue.pop_front() else {
                break;
            };
            if node.resolve(Status::Granted) {
                self.permits -= 1;
            }
        }
        self.skip_done();
    }

    fn waiting(&self) -> u64 {
        self.queue.iter().filter(|n| n.is_waiting()).count() as u64
    }

    fn resolve_all(&mut self, status: &Status) {
        for node in self.queue.drain(..) {
            node.resolve(status.clone());
        }
    }
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.inner.state);
        f.debug_struct("RedisLimiter")
            .field("store", &self.inner.store)
            .field("key", &self.inner.key)
            .field("quota", &st.quota)
            .field("leased", &st.permits)
            .field("waiting", &st.queue.len())
            .finish()
    }
}

impl RedisLimiter {
    fn create(store: RedisStore, key: String, quota: Quota) -> RedisLimiter {
        let fallback = TokenBucket::new(fallback_quota(quota, store.inner.on_failure));
        RedisLimiter {
            inner: Arc::new(LimiterInner {
                store,
                key,
                state: Mutex::new(State {
                    quota,
                    fallback,
                    permits: 0,
                    leased_at: Instant::now(),
                    paused_until: None,
                    queue: VecDeque::new(),
                    driving: false,
                }),
            }),
        }
    }

    /// The Redis key of this quota.
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    /// The store this limiter talks to.
    pub fn store(&self) -> &RedisStore {
        &self.inner.store
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    fn is_idle(&self) -> bool {
        let now = Instant::now();
        let mut st = self.state();
        st.skip_done();
        st.expire(now);
        st.queue.is_empty()
            && !st.driving
            && st.permits == 0
            && st.paused_until.is_none_or(|p| p <= now)
    }

    /// Starts the driver task unless it runs.
    fn kick(&self) {
        let mut st = self.state();
        if st.driving {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            st.driving = true;
            drop(st);
            handle.spawn(self.clone().drive());
        }
    }

    /// Leases permits from Redis for the waiters in line, until there are none.
    async fn drive(self) {
        let mut guard = DriveGuard(Some(self.clone()));
        let batch = (self.state().quota.rate() * LEASE_SECONDS).ceil().max(1.0) as u64;
        loop {
            let now = Instant::now();
            let (want, quota, paused) = {
                let mut st = self.state();
                st.grant(now);
                let waiting = st.waiting();
                if waiting == 0 {
                    st.driving = false;
                    guard.0 = None;
                    return;
                }
                let paused = st.paused_until.filter(|p| now < *p);
                (waiting.min(batch), st.quota, paused)
            };
            if let Some(until) = paused {
                tokio::time::sleep_until(until).await;
                continue;
            }
            match self.inner.store.run(&self.inner.key, quota, want, 0).await {
                Ok((granted, wait_us)) => {
                    self.inner.store.mark_up();
                    let now = Instant::now();
                    {
                        let mut st = self.state();
                        st.permits += granted;
                        st.leased_at = now;
                        st.grant(now);
                    }
                    if granted < want {
                        let interval = quota.interval();
                        let half_batch = u32::try_from((batch / 2).max(1)).unwrap_or(u32::MAX);
                        let gap = interval.saturating_mul(half_batch).min(MAX_GAP);
                        let wait = Duration::from_micros(wait_us).max(gap);
                        tokio::time::sleep(wait).await;
                    }
                }
                Err(reason) => {
                    self.inner.store.mark_down(&reason);
                    let status = match self.inner.store.inner.on_failure {
                        OnRedisFailure::FailClosed => Status::Failed(reason),
                        OnRedisFailure::FailOpen => Status::Granted,
                        OnRedisFailure::Local { .. } => Status::Fallback,
                    };
                    let mut st = self.state();
                    st.resolve_all(&status);
                    st.driving = false;
                    guard.0 = None;
                    return;
                }
            }
        }
    }

    /// A permit granted to a waiter that went away goes back to the lease.
    fn give_back(&self) {
        let now = Instant::now();
        let mut st = self.state();
        st.permits += 1;
        st.grant(now);
    }
}

/// Resets `driving` if the driver task ends early (its runtime shut down), and wakes the
/// waiters so one of them starts a new driver.
struct DriveGuard(Option<RedisLimiter>);

impl Drop for DriveGuard {
    fn drop(&mut self) {
        if let Some(limiter) = self.0.take() {
            let mut st = limiter.state();
            st.driving = false;
            for node in &st.queue {
                if let Some(w) = lock(&node.inner).waker.take() {
                    w.wake();
                }
            }
        }
    }
}

/// The waiter of a [`RedisLimiter`]: a place in this process's line, or in the local
/// fallback bucket while Redis is down.
#[derive(Default)]
pub struct RedisWaiter {
    node: Option<Arc<Node>>,
    limiter: Option<RedisLimiter>,
    fallback: Option<(TokenBucket, BucketWaiter)>,
}

impl fmt::Debug for RedisWaiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisWaiter")
            .field("waiting", &self.node.is_some())
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl RedisWaiter {
    fn leave(&mut self) {
        let (Some(node), Some(limiter)) = (self.node.take(), self.limiter.as_ref()) else {
            return;
        };
        let mut n = lock(&node.inner);
        match n.status {
            Status::Waiting => n.status = Status::Done,
            Status::Granted => {
                n.status = Status::Done;
                drop(n);
                limiter.give_back();
            }
            _ => {}
        }
    }
}

impl Drop for RedisWaiter {
    fn drop(&mut self) {
        self.leave();
    }
}

impl Limiter for RedisLimiter {
    type Waiter = RedisWaiter;

    fn poll_acquire(
        &self,
        waiter: &mut RedisWaiter,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Error>> {
        if waiter
            .limiter
            .as_ref()
            .is_some_and(|l| !Arc::ptr_eq(&l.inner, &self.inner))
        {
            waiter.leave();
            waiter.fallback = None;
            waiter.limiter = None;
        }
        if let Some((bucket, bw)) = waiter.fallback.as_mut() {
            let r = bucket.poll_acquire(bw, cx);
            if r.is_ready() {
                waiter.fallback = None;
            }
            return r;
        }
        if let Some(node) = &waiter.node {
            let mut n = lock(&node.inner);
            match std::mem::replace(&mut n.status, Status::Done) {
                Status::Granted => return Poll::Ready(Ok(())),
                Status::Failed(msg) => {
                    return Poll::Ready(Err(Error::new(ErrorKind::RateLimiter).with_message(msg)))
                }
                Status::Fallback => {
                    drop(n);
                    return self.poll_fallback(waiter, cx);
                }
                Status::Waiting => {
                    n.status = Status::Waiting;
                    match &n.waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => n.waker = Some(cx.waker().clone()),
                    }
                    drop(n);
                    self.kick();
                    return Poll::Pending;
                }
                Status::Done => {}
            }
        }

        let now = Instant::now();
        if let Some(down) = self.inner.store.down(now) {
            match self.inner.store.inner.on_failure {
                OnRedisFailure::FailClosed => {
                    return Poll::Ready(Err(self.inner.store.error(down.reason)))
                }
                OnRedisFailure::FailOpen => return Poll::Ready(Ok(())),
                OnRedisFailure::Local { .. } => return self.poll_fallback(waiter, cx),
            }
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Poll::Ready(Err(Error::new(ErrorKind::RateLimiter).with_message(
                "the Redis rate limiter must be polled inside a tokio runtime",
            )));
        }
        let mut st = self.state();
        st.expire(now);
        st.skip_done();
        let paused = st.paused_until.is_some_and(|p| now < p);
        if st.queue.is_empty() && st.permits > 0 && !paused {
            st.permits -= 1;
            return Poll::Ready(Ok(()));
        }
        let node = Arc::new(Node {
            inner: Mutex::new(NodeInner {
                status: Status::Waiting,
                waker: Some(cx.waker().clone()),
            }),
        });
        st.queue.push_back(node.clone());
        drop(st);
        waiter.node = Some(node);
        if waiter.limiter.is_none() {
            waiter.limiter = Some(self.clone());
        }
        self.kick();
        Poll::Pending
    }

    fn quota(&self) -> Quota {
        self.state().quota
    }

    fn set_quota(&self, quota: Quota) {
        let mut st = self.state();
        st.quota = quota;
        st.fallback
            .set_quota(fallback_quota(quota, self.inner.store.inner.on_failure));
    }

    fn pause_until(&self, until: Instant) {
        let now = Instant::now();
        if until <= now {
            return;
        }
        let quota = {
            let mut st = self.state();
            if st.paused_until.is_some_and(|p| p >= until) {
                return;
            }
            st.paused_until = Some(until);
            st.permits = 0;
            st.fallback.pause_until(until);
            st.quota
        };
        let pause_us = u64::try_from((until - now).as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let this = self.clone();
            handle.spawn(async move {
                if let Err(reason) = this.inner.store.run(&this.inner.key, quota, 0, pause_us).await
                {
                    tracing::debug!(error = %reason, "rate limit: could not share a pause through Redis");
                }
            });
        }
    }
}

impl RedisLimiter {
    fn poll_fallback(
        &self,
        waiter: &mut RedisWaiter,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Error>> {
        let bucket = self.state().fallback.clone();
        let mut bw = BucketWaiter::default();
        let r = bucket.poll_acquire(&mut bw, cx);
        if r.is_pending() {
            waiter.fallback = Some((bucket, bw));
        }
        r
    }
}

// ---------------------------------------------------------------------------------------
// Per host: RedisHostLimiters.

/// One quota per host shared through Redis: a [`KeyedLimiter`] of [`RedisLimiter`]s.
///
/// Each host's quota lives in Redis (key `fastreq:{NAME}:host:KEY`); this process keeps a
/// small local state per host only while it is in use: idle ones are dropped when the map
/// has doubled since its last sweep, so memory stays bounded.
#[derive(Clone)]
pub struct RedisHostLimiters {
    inner: Arc<HostsInner>,
}

struct HostsInner {
    store: RedisStore,
    prefix: String,
    quota: Mutex<Quota>,
    map: Mutex<HostMap>,
}

struct HostMap {
    map: HashMap<Box<str>, RedisLimiter>,
    sweep_at: usize,
}

impl fmt::Debug for RedisHostLimiters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisHostLimiters")
            .field("store", &self.inner.store)
            .field("prefix", &self.inner.prefix)
            .field("quota", &*lock(&self.inner.quota))
            .field("hosts", &self.len())
            .finish()
    }
}

impl RedisHostLimiters {
    /// How many hosts have local state now.
    pub fn len(&self) -> usize {
        lock(&self.inner.map).map.len()
    }

    /// True when no host has local state.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl KeyedLimiter for RedisHostLimiters {
    type Limiter = RedisLimiter;

    fn limiter(&self, key: &str) -> Result<RedisLimiter, Error> {
        let mut m = lock(&self.inner.map);
        if let Some(l) = m.map.get(key) {
            return Ok(l.clone());
        }
        if m.map.len() >= m.sweep_at {
            m.map
                .retain(|_, l| Arc::strong_count(&l.inner) > 1 || !l.is_idle());
            m.sweep_at = (m.map.len() * 2).max(MIN_SWEEP);
        }
        let limiter = RedisLimiter::create(
            self.inner.store.clone(),
            format!("{}{key}", self.inner.prefix),
            *lock(&self.inner.quota),
        );
        m.map.insert(key.into(), limiter.clone());
        Ok(limiter)
    }

    fn quota(&self) -> Quota {
        *lock(&self.inner.quota)
    }

    fn set_quota(&self, quota: Quota) {
        let m = lock(&self.inner.map);
        *lock(&self.inner.quota) = quota;
        for l in m.map.values() {
            l.set_quota(quota);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_scrubbed() {
        let store = RedisStore::new("redis://bob:hunter%21x@127.0.0.1:1/").unwrap();
        let msg = store
            .inner
            .scrub("failed: redis://bob:hunter%21x@127.0.0.1:1/ with hunter!x".into());
        assert!(!msg.contains("hunter"), "{msg}");
        assert!(!msg.contains("bob"), "{msg}");
        assert!(!format!("{store:?}").contains("hunter"));
    }

    #[test]
    fn bad_urls_and_names() {
        let err = RedisStore::new("http://:pw@x/").unwrap_err();
        assert!(err.is_config());
        assert!(!err.to_string().contains("pw@"), "{err}");
        let store = RedisStore::new("redis://127.0.0.1/").unwrap();
        let q = Quota::per_second(1.0).unwrap();
        for bad in ["", "a{", "b}", &"x".repeat(201)] {
            assert!(store.limiter(bad, q).unwrap_err().is_config());
        }
        assert_eq!(store.limiter("api", q).unwrap().key(), "fastreq:{api}:rate");
        let hosts = store.host_limiters("api", q).unwrap();
        assert_eq!(
            hosts.limiter("https://a.test:443").unwrap().key(),
            "fastreq:{api}:host:https://a.test:443"
        );
    }

    #[test]
    fn fallback_quota_divides() {
        let q = Quota::new(100.0, 10).unwrap();
        let f = fallback_quota(q, OnRedisFailure::Local { processes: 4 });
        assert_eq!((f.rate(), f.burst()), (25.0, 2));
        let f = fallback_quota(q, OnRedisFailure::Local { processes: 0 });
        assert_eq!((f.rate(), f.burst()), (100.0, 10));
    }
}
