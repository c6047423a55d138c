//! Request / connection counters shared between the server and the test.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::Version;

/// Live counters of a [`TestServer`](super::TestServer), shared through an `Arc`.
///
/// Everything is updated with atomics on the request path (the per-path map
/// takes an uncontended mutex, and can be switched off with
/// [`TestServerBuilder::track_paths`](super::TestServerBuilder::track_paths)).
/// Readable at any time from any thread.
#[derive(Debug)]
pub struct Stats {
    hits: AtomicU64,
    active: AtomicUsize,
    max_active: AtomicUsize,
    connections: AtomicU64,
    http1: AtomicU64,
    http2: AtomicU64,
    panics: AtomicU64,
    track_paths: bool,
    paths: Mutex<HashMap<String, u64>>,
}

impl Stats {
    pub(super) fn new(track_paths: bool) -> Self {
        Stats {
            hits: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            max_active: AtomicUsize::new(0),
            connections: AtomicU64::new(0),
            http1: AtomicU64::new(0),
            http2: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            track_paths,
            paths: Mutex::new(HashMap::new()),
        }
    }

    fn paths_lock(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        self.paths.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the start of a request and returns the guard that keeps it "active".
    pub(super) fn begin(self: &Arc<Self>, path: &str, version: Version) -> ActiveGuard {
        self.hits.fetch_add(1, SeqCst);
        if version == Version::HTTP_2 {
            self.http2.fetch_add(1, SeqCst);
        } else {
            self.http1.fetch_add(1, SeqCst);
        }
        if self.track_paths {
            let mut paths = self.paths_lock();
            match paths.get_mut(path) {
                Some(n) => *n += 1,
                None => {
                    paths.insert(path.to_owned(), 1);
                }
            }
        }
        let now = self.active.fetch_add(1, SeqCst) + 1;
        self.max_active.fetch_max(now, SeqCst);
        ActiveGuard(Arc::clone(self))
    }

    pub(super) fn connection_accepted(&self) {
        self.connections.fetch_add(1, SeqCst);
    }

    pub(super) fn handler_panicked(&self) {
        self.panics.fetch_add(1, SeqCst);
    }

    /// Total requests received (all paths, both protocols).
    pub fn hits(&self) -> u64 {
        self.hits.load(SeqCst)
    }

    /// Requests received for exactly this path (query string excluded), e.g. `"/a"`.
    /// Always 0 when path tracking is off.
    pub fn hits_for(&self, path: &str) -> u64 {
        self.paths_lock().get(path).copied().unwrap_or(0)
    }

    /// Snapshot of the per-path hit counts.
    pub fn paths(&self) -> HashMap<String, u64> {
        self.paths_lock().clone()
    }

    /// Requests in flight: the handler (or `delay`) is running, or the response
    /// body has not yet produced its last chunk.
    pub fn active(&self) -> usize {
        self.active.load(SeqCst)
    }

    /// Highest value [`active`](Self::active) has reached (since start / last reset).
    pub fn max_active(&self) -> usize {
        self.max_active.load(SeqCst)
    }

    /// TCP connections accepted (since start / last reset).
    pub fn connections(&self) -> u64 {
        self.connections.load(SeqCst)
    }

    /// Requests that arrived over HTTP/1.x.
    pub fn http1_requests(&self) -> u64 {
        self.http1.load(SeqCst)
    }

    /// Requests that arrived over HTTP/2 (h2c or TLS+ALPN h2).
    pub fn http2_requests(&self) -> u64 {
        self.http2.load(SeqCst)
    }

    /// Handler invocations that panicked (each was answered with a 500).
    pub fn panics(&self) -> u64 {
        self.panics.load(SeqCst)
    }

    /// Zeroes every counter; `max_active` restarts from the current `active` value.
    /// `active` itself is live state and is not touched.
    pub fn reset(&self) {
        self.hits.store(0, SeqCst);
        self.connections.store(0, SeqCst);
        self.http1.store(0, SeqCst);
        self.http2.store(0, SeqCst);
        self.panics.store(0, SeqCst);
        self.max_active.store(self.active.load(SeqCst), SeqCst);
        self.paths_lock().clear();
    }

    /// Waits (async, polling every millisecond) until `cond` holds, for at most
    /// `timeout` of wall-clock time (also correct under a paused tokio clock).
    /// Returns whether it held. Useful for conditions that settle just after a
    /// client finished, such as `active() == 0` after a dropped body.
    pub async fn wait_until(&self, cond: impl Fn(&Stats) -> bool, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if cond(self) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Keeps one request counted in [`Stats::active`] until dropped.
#[derive(Debug)]
pub(super) struct ActiveGuard(Arc<Stats>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, SeqCst);
    }
}
