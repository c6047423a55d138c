//! [`ProxyPool`]: the proxies, their health, and building a pool from lists.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::address::{parse_line, redact_line};
use super::error::FailureRecord;
use super::{IntoProxy, Proxy, ProxyError};
use crate::error::Error;

/// Default first cooldown of a failing proxy.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(60);
/// Default cap on the cooldown of a proxy that keeps failing.
pub const DEFAULT_MAX_COOLDOWN: Duration = Duration::from_secs(15 * 60);

/// A shared list of proxies with their health.
///
/// Cheap to clone: clones share the list and the health. Build one from code
/// ([`from_iter`](Self::from_iter)), a string of lines ([`from_lines`](Self::from_lines)) or
/// a file ([`from_file`](Self::from_file)), or with [`builder`](Self::builder) to change
/// the cooldown. Lines are in the formats of [`Proxy`]; blank lines and lines starting with
/// `#` are skipped; any other bad line is an error naming its line number, with the
/// password replaced by `***` — never a silent skip.
///
/// **Health.** A proxy that fails (connection refused, tunnel or SOCKS handshake refused,
/// 407, handshake timeout: see [`ProxyError`](super::ProxyError)) cools down: it is not
/// picked for [`DEFAULT_COOLDOWN`] (60 s), then twice as long after each further failure,
/// capped at [`DEFAULT_MAX_COOLDOWN`] (15 min). Failures reported while it is already
/// cooling down (requests that were in flight) do not lengthen it. When the cooldown is over
/// the proxy is picked again; a success then clears its failure count, a failure cools it
/// down for longer.
///
/// ```
/// use fastreq::proxy::ProxyPool;
///
/// let pool = ProxyPool::from_lines("
///     ## office proxies
///     http://alice:s3cret@10.0.0.1:3128
///     10.0.0.2:3128
///     socks5h://10.0.0.3:1080
/// ").unwrap();
/// assert_eq!(pool.len(), 3);
///
/// let err = ProxyPool::from_lines("10.0.0.1:3128\nhttp://bob:hunter2@10.0.0.2:99999").unwrap_err();
/// assert!(err.to_string().contains("line 2"));
/// assert!(!err.to_string().contains("hunter2"));
/// ```
#[derive(Clone)]
pub struct ProxyPool {
    pub(crate) inner: Arc<PoolInner>,
}

pub(crate) struct PoolInner {
    pub(crate) entries: Box<[Entry]>,
    cooldown: Duration,
    max_cooldown: Duration,
    epoch: Instant,
    /// The last failure of any proxy, the cause of the `NoProxyAvailable` errors after it.
    /// Locked only to record a failure and to make such an error.
    last_failure: Mutex<Option<FailureRecord>>,
    /// The recovery instant (as in `Entry::until`) of the last "all proxies down" warning,
    /// so that the requests waiting for the same recovery log one warning, not one each.
    warned: AtomicU64,
}

/// One proxy and its health.
pub(crate) struct Entry {
    pub(crate) proxy: Proxy,
    /// End of the cooldown, in nanoseconds since the pool's epoch plus one; 0 = healthy.
    until: AtomicU64,
    failures: AtomicU32,
    removed: AtomicBool,
}

impl Entry {
    fn new(proxy: Proxy) -> Self {
        Entry {
            proxy,
            until: AtomicU64::new(0),
            failures: AtomicU32::new(0),
            removed: AtomicBool::new(false),
        }
    }
}

/// See [`PoolInner::recovery`].
pub(crate) enum Recovery {
    /// Some proxy is available now.
    Now,
    /// Every proxy is cooling down; the first recovers then.
    At(Instant),
    /// Every proxy was removed.
    Never,
}

/// A lazily read clock: `Instant::now()` is only called when a cooling proxy is seen.
pub(crate) struct Now {
    epoch: Instant,
    nanos: std::cell::Cell<Option<u64>>,
}

impl Now {
    pub(crate) fn get(&self) -> u64 {
        match self.nanos.get() {
            Some(n) => n,
            None => {
                let n = nanos_since(self.epoch, Instant::now());
                self.nanos.set(Some(n));
                n
            }
        }
    }
}

fn nanos_since(epoch: Instant, t: Instant) -> u64 {
    // +1 so that 0 always means "not cooling down".
    u64::try_from(t.saturating_duration_since(epoch).as_nanos())
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

impl PoolInner {
    pub(crate) fn now(&self) -> Now {
        Now {
            epoch: self.epoch,
            nanos: std::cell::Cell::new(None),
        }
    }

    /// Whether entry `i` may be picked now.
    #[inline]
    pub(crate) fn is_available(&self, i: usize, now: &Now) -> bool {
        let Some(e) = self.entries.get(i) else {
            return false;
        };
        if e.removed.load(Ordering::Relaxed) {
            return false;
        }
        let until = e.until.load(Ordering::Relaxed);
        until == 0 || until <= now.get()
    }

    /// Whether a proxy is available now, or when the first cooling one recovers.
    pub(crate) fn recovery(&self) -> Recovery {
        let now = self.now();
        let mut first: Option<u64> = None;
        for e in self.entries.iter() {
            if e.removed.load(Ordering::Relaxed) {
                continue;
            }
            let until = e.until.load(Ordering::Relaxed);
            if until == 0 || until <= now.get() {
                return Recovery::Now;
            }
            first = Some(first.map_or(until, |f| f.min(until)));
        }
        match first {
            Some(n) => Recovery::At(self.epoch + Duration::from_nanos(n - 1)),
            None => Recovery::Never,
        }
    }

    pub(crate) fn record_success(&self, i: usize) {
        let Some(e) = self.entries.get(i) else { return };
        if e.failures.load(Ordering::Relaxed) == 0 && e.until.load(Ordering::Relaxed) == 0 {
            return;
        }
        let now = nanos_since(self.epoch, Instant::now());
        let until = e.until.load(Ordering::Relaxed);
        if until > now {
            // A straggler that started before the proxy failed: the cooldown stands.
            return;
        }
        if e.until
            .compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            e.failures.store(0, Ordering::Relaxed);
        }
    }

    /// Records `err`, a failure of entry `i`, as the pool's last failure, and cools `i` down.
    pub(crate) fn record_failure_of(&self, i: usize, err: &Error) {
        let Some(e) = self.entries.get(i) else { return };
        let record = FailureRecord::of(err, &e.proxy);
        *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(record);
        self.record_failure(i);
    }

    /// The last failure recorded with [`record_failure_of`](Self::record_failure_of).
    pub(crate) fn last_failure(&self) -> Option<ProxyError> {
        self.last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(FailureRecord::to_error)
    }

    /// True for the first caller about a wait until `at`: it logs the warning.
    pub(crate) fn first_to_warn(&self, at: Instant) -> bool {
        let key = nanos_since(self.epoch, at);
        self.warned.swap(key, Ordering::Relaxed) != key
    }

    pub(crate) fn record_failure(&self, i: usize) {
        let Some(e) = self.entries.get(i) else { return };
        let now = nanos_since(self.epoch, Instant::now());
        let until = e.until.load(Ordering::Relaxed);
        if until > now {
            // Already cooling down: requests that were in flight do not lengthen it.
            return;
        }
        let failures = e.failures.load(Ordering::Relaxed).saturating_add(1);
        let cooldown = self.cooldown_for(failures);
        let new_until = now.saturating_add(u64::try_from(cooldown.as_nanos()).unwrap_or(u64::MAX));
        if e.until
            .compare_exchange(until, new_until, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            e.failures.store(failures, Ordering::Relaxed);
            tracing::warn!(
                proxy = %e.proxy,
                failures,
                cooldown = ?cooldown,
                "proxy failed; cooling down"
            );
        }
    }

    fn cooldown_for(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(30);
        self.cooldown
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max_cooldown)
            .min(self.max_cooldown)
    }

    pub(crate) fn index_of(&self, proxy: &Proxy) -> Option<usize> {
        self.entries.iter().position(|e| &e.proxy == proxy)
    }
}

impl ProxyPool {
    /// A builder, to set the cooldown.
    pub fn builder() -> ProxyPoolBuilder {
        ProxyPoolBuilder::default()
    }

    /// A pool of the proxies in `text`, one per line (see the [type docs](Self)).
    pub fn from_lines(text: &str) -> Result<ProxyPool, Error> {
        ProxyPool::builder().lines(text).build()
    }

    /// A pool of the proxies in a file, one per line. An unreadable file is an
    /// [`Io`](crate::ErrorKind::Io) error naming the path.
    pub fn from_file(path: impl AsRef<Path>) -> Result<ProxyPool, Error> {
        ProxyPool::builder().file(path).build()
    }

    /// A pool of the given proxies: [`Proxy`] values or lines (`&str`, `String`).
    #[allow(clippy::should_implement_trait)]
    pub fn from_iter<I>(proxies: I) -> Result<ProxyPool, Error>
    where
        I: IntoIterator,
        I::Item: IntoProxy,
    {
        ProxyPool::builder().proxies(proxies).build()
    }

    /// The number of proxies (not counting removed ones).
    pub fn len(&self) -> usize {
        self.inner
            .entries
            .iter()
            .filter(|e| !e.removed.load(Ordering::Relaxed))
            .count()
    }

    /// True when every proxy was removed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The proxies (not counting removed ones), in list order.
    pub fn proxies(&self) -> Vec<Proxy> {
        self.inner
            .entries
            .iter()
            .filter(|e| !e.removed.load(Ordering::Relaxed))
            .map(|e| e.proxy.clone())
            .collect()
    }

    /// The proxies that may be picked now (not cooling down, not removed).
    pub fn available(&self) -> Vec<Proxy> {
        let now = self.inner.now();
        (0..self.inner.entries.len())
            .filter(|&i| self.inner.is_available(i, &now))
            .map(|i| self.inner.entries[i].proxy.clone())
            .collect()
    }

    /// The health of `proxy`, or `None` if it is not in the pool (or was removed).
    pub fn health(&self, proxy: &Proxy) -> Option<ProxyHealth> {
        let i = self.inner.index_of(proxy)?;
        let e = &self.inner.entries[i];
        if e.removed.load(Ordering::Relaxed) {
            return None;
        }
        let until = e.until.load(Ordering::Relaxed);
        let now = nanos_since(self.inner.epoch, Instant::now());
        Some(ProxyHealth {
            failures: e.failures.load(Ordering::Relaxed),
            cooling_down_for: (until > now).then(|| Duration::from_nanos(until - now)),
        })
    }

    /// Reports a failure of `proxy` (as the rotation layer does); returns false if it is not
    /// in the pool.
    pub fn mark_failed(&self, proxy: &Proxy) -> bool {
        match self.inner.index_of(proxy) {
            Some(i) => {
                self.inner.record_failure(i);
                true
            }
            None => false,
        }
    }

    /// Ends the cooldown of `proxy` and clears its failures; returns false if it is not in
    /// the pool.
    pub fn mark_healthy(&self, proxy: &Proxy) -> bool {
        match self.inner.index_of(proxy) {
            Some(i) => {
                let e = &self.inner.entries[i];
                e.until.store(0, Ordering::Relaxed);
                e.failures.store(0, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Removes `proxy` from rotation (for every clone of the pool); returns false if it was
    /// not in the pool or already removed.
    pub fn remove(&self, proxy: &Proxy) -> bool {
        self.inner
            .entries
            .iter()
            .any(|e| &e.proxy == proxy && !e.removed.swap(true, Ordering::Relaxed))
    }
}

impl fmt::Debug for ProxyPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyPool")
            .field("proxies", &self.proxies())
            .field("cooldown", &self.inner.cooldown)
            .field("max_cooldown", &self.inner.max_cooldown)
            .finish()
    }
}

/// The health of one proxy of a [`ProxyPool`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyHealth {
    /// Failures since the last success.
    pub failures: u32,
    /// How long it is still cooling down, if it is.
    pub cooling_down_for: Option<Duration>,
}

/// Builds a [`ProxyPool`]; see [`ProxyPool::builder`].
///
/// The first error (a bad line, an unreadable file, a bad cooldown) is kept and returned by
/// [`build`](Self::build).
#[must_use]
pub struct ProxyPoolBuilder {
    proxies: Vec<Proxy>,
    cooldown: Duration,
    max_cooldown: Duration,
    error: Option<Error>,
}

impl Default for ProxyPoolBuilder {
    fn default() -> Self {
        ProxyPoolBuilder {
            proxies: Vec::new(),
            cooldown: DEFAULT_COOLDOWN,
            max_cooldown: DEFAULT_MAX_COOLDOWN,
            error: None,
        }
    }
}

impl fmt::Debug for ProxyPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyPoolBuilder")
            .field("proxies", &self.proxies)
            .field("cooldown", &self.cooldown)
            .field("max_cooldown", &self.max_cooldown)
            .finish_non_exhaustive()
    }
}

impl ProxyPoolBuilder {
    fn fail(mut self, err: Error) -> Self {
        if self.error.is_none() {
            self.error = Some(err);
        }
        self
    }

    /// Adds one proxy.
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxies.push(proxy);
        self
    }

    /// Adds proxies: [`Proxy`] values or lines. A bad line is a
    /// [`Config`](crate::ErrorKind::Config) error naming its position (1-based).
    pub fn proxies<I>(mut self, proxies: I) -> Self
    where
        I: IntoIterator,
        I::Item: IntoProxy,
    {
        for (n, p) in proxies.into_iter().enumerate() {
            match p.into_proxy() {
                Ok(p) => self.proxies.push(p),
                Err(e) => {
                    let why = e.message().unwrap_or("invalid proxy").to_owned();
                    return self.fail(Error::config(format!("proxy #{}: {why}", n + 1)));
                }
            }
        }
        self
    }

    /// Adds the proxies in `text`, one per line; blank lines and `#` comments are skipped.
    pub fn lines(mut self, text: &str) -> Self {
        self.add_lines(text, None);
        self
    }

    /// Adds the proxies in the file at `path`, one per line.
    pub fn file(mut self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                self.add_lines(&text, Some(path));
                self
            }
            Err(e) => self.fail(
                Error::new(crate::ErrorKind::Io)
                    .with_message(format!("cannot read proxy list {}: {e}", path.display()))
                    .with_source(e),
            ),
        }
    }

    fn add_lines(&mut self, text: &str, path: Option<&Path>) {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Ok(p) => self.proxies.push(p),
                Err(why) => {
                    if self.error.is_none() {
                        let place = match path {
                            Some(p) => format!("{}:{}", p.display(), n + 1),
                            None => format!("line {}", n + 1),
                        };
                        self.error = Some(Error::config(format!(
                            "invalid proxy on {place} `{}`: {why}",
                            redact_line(line)
                        )));
                    }
                    return;
                }
            }
        }
    }

    /// How long a proxy cools down after its first failure (default 60 s); each further
    /// failure doubles it, up to [`max_cooldown`](Self::max_cooldown). Zero is a
    /// configuration error.
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        if cooldown.is_zero() {
            return self.fail(Error::config("proxy cooldown must be greater than zero"));
        }
        self.cooldown = cooldown;
        self
    }

    /// The longest cooldown (default 15 min). It must not be shorter than the
    /// [`cooldown`](Self::cooldown).
    pub fn max_cooldown(mut self, max: Duration) -> Self {
        if max.is_zero() {
            return self.fail(Error::config(
                "proxy max_cooldown must be greater than zero",
            ));
        }
        self.max_cooldown = max;
        self
    }

    /// Builds the pool. Duplicates are kept once. An empty list is a
    /// [`Config`](crate::ErrorKind::Config) error.
    pub fn build(self) -> Result<ProxyPool, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.max_cooldown < self.cooldown {
            return Err(Error::config(format!(
                "proxy max_cooldown ({:?}) is shorter than the cooldown ({:?})",
                self.max_cooldown, self.cooldown
            )));
        }
        let mut seen = std::collections::HashSet::new();
        let entries: Box<[Entry]> = self
            .proxies
            .into_iter()
            .filter(|p| seen.insert(p.clone()))
            .map(Entry::new)
            .collect();
        if entries.is_empty() {
            return Err(Error::config("the proxy list is empty"));
        }
        Ok(ProxyPool {
            inner: Arc::new(PoolInner {
                entries,
                cooldown: self.cooldown,
                max_cooldown: self.max_cooldown,
                epoch: Instant::now(),
                last_failure: Mutex::new(None),
                warned: AtomicU64::new(0),
            }),
        })
    }
}
