//! The per-host semaphores: a sharded map from host key to semaphore, with idle entries
//! evicted so that memory stays bounded however many hosts are seen.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};

use http::Uri;
use tokio::sync::Semaphore;

/// Number of independently locked parts of the map.
const SHARDS: usize = 32;
/// A shard is not swept before it holds this many entries.
const MIN_SWEEP: usize = 64;

/// One semaphore per host key, created on first use with `per_host` permits.
///
/// An entry is *idle* when only the map holds its semaphore: every permit holds the
/// semaphore (`OwnedSemaphorePermit`), and so does every request waiting for one, so
/// `Arc::strong_count == 1` means no permit out and no waiter. Since new handles are only
/// taken from the map under the shard lock, an entry seen idle under that lock stays idle
/// until the lock is released, and evicting it loses nothing: a later request creates a
/// fresh semaphore with all permits free, which is the state the evicted one was in.
///
/// A shard sweeps its idle entries when it has doubled in size since its last sweep, so
/// eviction costs amortised O(1) per new host and memory is bounded by about twice the
/// number of hosts with requests in flight or waiting (plus [`MIN_SWEEP`] per shard).
pub(crate) struct HostMap {
    per_host: usize,
    hasher: RandomState,
    shards: Box<[Mutex<Shard>]>,
}

struct Shard {
    map: HashMap<Box<str>, Arc<Semaphore>>,
    sweep_at: usize,
}

impl Shard {
    fn sweep(&mut self) -> usize {
        let before = self.map.len();
        self.map.retain(|_, sem| Arc::strong_count(sem) > 1);
        self.sweep_at = (self.map.len() * 2).max(MIN_SWEEP);
        before - self.map.len()
    }
}

fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // Nothing in a shard can be left half-updated by a panic; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HostMap {
    pub(crate) fn new(per_host: usize) -> Self {
        HostMap {
            per_host,
            hasher: RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::new(),
                        sweep_at: MIN_SWEEP,
                    })
                })
                .collect(),
        }
    }

    pub(crate) fn per_host(&self) -> usize {
        self.per_host
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        let h = self.hasher.hash_one(key);
        &self.shards[(h as usize) % SHARDS]
    }

    /// The semaphore of `uri`'s host, created if needed. The lock is held only for the
    /// lookup (and, on insertion, an occasional sweep).
    pub(crate) fn semaphore(&self, uri: &Uri) -> Arc<Semaphore> {
        with_host_key(uri, |key| {
            let mut shard = lock(self.shard(key));
            if let Some(sem) = shard.map.get(key) {
                return Arc::clone(sem);
            }
            if shard.map.len() >= shard.sweep_at {
                shard.sweep();
            }
            let sem = Arc::new(Semaphore::new(self.per_host));
            shard.map.insert(key.into(), Arc::clone(&sem));
            sem
        })
    }

    /// Permits held for `uri`'s host (0 when it has no entry).
    pub(crate) fn in_flight(&self, uri: &Uri) -> usize {
        with_host_key(uri, |key| {
            lock(self.shard(key))
                .map
                .get(key)
                .map_or(0, |sem| self.per_host - sem.available_permits())
        })
    }

    /// Permits held over all hosts.
    pub(crate) fn total_in_flight(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                lock(s)
                    .map
                    .values()
                    .map(|sem| self.per_host - sem.available_permits())
                    .sum::<usize>()
            })
            .sum()
    }

    /// Entries in the map, idle ones not yet evicted included.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).map.len()).sum()
    }

    /// Evicts every idle entry now; returns how many.
    pub(crate) fn evict_idle(&self) -> usize {
        self.shards.iter().map(|s| lock(s).sweep()).sum()
    }
}

impl fmt::Debug for HostMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostMap")
            .field("per_host", &self.per_host)
            .finish_non_exhaustive()
    }
}

/// Calls `f` with the host key of `uri` (see `crate::host_key`); a URI without a host has
/// the key `""` (all such requests share one limit). The same format as the rate limiter's
/// [`host_key`](crate::rate_limit::host_key). Allocates nothing.
fn with_host_key<R>(uri: &Uri, f: impl FnOnce(&str) -> R) -> R {
    crate::host_key::with_host_key(uri, |k| f(k.unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> String {
        with_host_key(&s.parse().unwrap(), |k| k.to_owned())
    }

    #[test]
    fn keys() {
        assert_eq!(key("http://A.Test/x?y"), "http://a.test:80");
        assert_eq!(key("http://a.test:80/"), "http://a.test:80");
        assert_eq!(key("HTTPS://a.test/"), "https://a.test:443");
        assert_eq!(key("https://u:p@a.test:8443/"), "https://a.test:8443");
        assert_eq!(key("http://[::1]:0/"), "http://[::1]:0");
        assert_eq!(key("http://h:65535/"), "http://h:65535");
        assert_eq!(key("ftp://h/"), "ftp://h");
        assert_eq!(key("/relative"), "");
        let long = format!("http://{}.test/", "x".repeat(400));
        assert_eq!(key(&long), format!("http://{}.test:80", "x".repeat(400)));
    }

    #[test]
    fn same_host_same_semaphore() {
        let map = HostMap::new(2);
        let a = map.semaphore(&"http://a.test/1".parse().unwrap());
        let a2 = map.semaphore(&"http://A.TEST:80/2".parse().unwrap());
        let b = map.semaphore(&"http://b.test/".parse().unwrap());
        assert!(Arc::ptr_eq(&a, &a2));
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn idle_entries_are_evicted_busy_kept() {
        let map = HostMap::new(1);
        let busy_uri: Uri = "http://busy.test/".parse().unwrap();
        let permit = map.semaphore(&busy_uri).try_acquire_owned().unwrap();
        let waiter = map.semaphore(&"http://waiter.test/".parse().unwrap());
        for i in 0..10_000 {
            let uri: Uri = format!("http://h{i}.test/").parse().unwrap();
            drop(map.semaphore(&uri).try_acquire_owned().unwrap());
        }
        // Swept as it grew: bounded by about twice MIN_SWEEP per shard.
        assert!(map.len() <= 2 * MIN_SWEEP * SHARDS, "len {}", map.len());
        assert_eq!(map.in_flight(&busy_uri), 1);
        assert_eq!(map.total_in_flight(), 1);
        map.evict_idle();
        assert_eq!(map.len(), 2, "only the busy entry and the held one remain");
        drop(permit);
        drop(waiter);
        assert_eq!(map.evict_idle(), 2);
        assert_eq!(map.len(), 0);
        assert_eq!(map.in_flight(&busy_uri), 0);
    }
}
