//! [`HostBuckets`]: one [`TokenBucket`] per host, with idle buckets evicted.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use http::Uri;

use super::bucket::TokenBucket;
use super::limiter::{KeyedLimiter, Limiter};
use super::quota::Quota;
use crate::error::Error;

const SHARDS: usize = 32;
/// A shard is not swept before it holds this many buckets.
const MIN_SWEEP: usize = 64;

/// One [`TokenBucket`] per key (per host in [`RateLimit`](super::RateLimit)), all with the
/// same [`Quota`]; clones share the buckets.
///
/// # Memory
///
/// A bucket that is full, has nobody waiting, is not paused and is not in use is *idle*: it
/// is exactly what a new bucket would be, so dropping it changes nothing. Such buckets are
/// evicted: whenever a shard of the map has doubled in size since its last sweep, it drops
/// its idle buckets (amortised O(1) per new key). So memory is bounded by about twice the
/// number of hosts that were used within the last `burst / rate` seconds (or are paused, or
/// have requests waiting), not by the number of hosts ever seen.
/// [`evict_idle`](Self::evict_idle) sweeps everything at once.
///
/// ```
/// use fastreq::rate_limit::{HostBuckets, KeyedLimiter, Limiter, Quota};
///
/// let hosts = HostBuckets::new(Quota::per_second(1.0)?);
/// let a = hosts.limiter("https://a.test:443")?;
/// let b = hosts.limiter("https://b.test:443")?;
/// # let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
/// # rt.block_on(async {
/// assert!(a.try_acquire());
/// assert!(!a.try_acquire()); // a's budget is spent ...
/// assert!(b.try_acquire()); // ... b has its own
/// # });
/// assert_eq!(hosts.len(), 2);
/// # Ok::<(), fastreq::Error>(())
/// ```
#[derive(Clone)]
pub struct HostBuckets {
    inner: Arc<Inner>,
}

struct Inner {
    quota: Mutex<Quota>,
    shards: Box<[Mutex<Shard>]>,
}

struct Shard {
    map: HashMap<Box<str>, TokenBucket>,
    sweep_at: usize,
}

impl Shard {
    /// Drops idle buckets; returns how many.
    fn sweep(&mut self) -> usize {
        let before = self.map.len();
        self.map.retain(|_, b| b.handles() > 1 || !b.is_idle());
        self.sweep_at = (self.map.len() * 2).max(MIN_SWEEP);
        before - self.map.len()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HostBuckets {
    /// No buckets yet; each key gets a full bucket with `quota` on first use.
    pub fn new(quota: Quota) -> HostBuckets {
        HostBuckets {
            inner: Arc::new(Inner {
                quota: Mutex::new(quota),
                shards: (0..SHARDS)
                    .map(|_| {
                        Mutex::new(Shard {
                            map: HashMap::new(),
                            sweep_at: MIN_SWEEP,
                        })
                    })
                    .collect(),
            }),
        }
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        // FNV-1a picks the shard (cheap; a skewed key set costs only contention); the
        // maps inside keep std's keyed SipHash against crafted host names.
        let mut h: u32 = 0x811c_9dc5;
        for b in key.bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        &self.inner.shards[(h as usize) % SHARDS]
    }

    /// How many buckets exist now (idle ones not yet evicted included).
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|s| lock(s).map.len()).sum()
    }

    /// True when there are no buckets.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Evicts every idle bucket now; returns how many were evicted.
    pub fn evict_idle(&self) -> usize {
        self.inner.shards.iter().map(|s| lock(s).sweep()).sum()
    }

    /// The bucket of `key`, if it exists.
    pub fn get(&self, key: &str) -> Option<TokenBucket> {
        lock(self.shard(key)).map.get(key).cloned()
    }
}

impl KeyedLimiter for HostBuckets {
    type Limiter = TokenBucket;

    fn limiter(&self, key: &str) -> Result<TokenBucket, Error> {
        let mut shard = lock(self.shard(key));
        if let Some(b) = shard.map.get(key) {
            return Ok(b.clone());
        }
        if shard.map.len() >= shard.sweep_at {
            shard.sweep();
        }
        let bucket = TokenBucket::new(*lock(&self.inner.quota));
        shard.map.insert(key.into(), bucket.clone());
        Ok(bucket)
    }

    fn quota(&self) -> Quota {
        *lock(&self.inner.quota)
    }

    fn set_quota(&self, quota: Quota) {
        // New buckets read the quota under their shard's lock, so every bucket created
        // after this line has the new quota and every older one is updated below.
        *lock(&self.inner.quota) = quota;
        for shard in self.inner.shards.iter() {
            for bucket in lock(shard).map.values() {
                bucket.set_quota(quota);
            }
        }
    }
}

impl fmt::Debug for HostBuckets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostBuckets")
            .field("quota", &self.quota())
            .field("buckets", &self.len())
            .finish()
    }
}

/// The key of a request's host: `scheme://host:port`, the host lowercased and the
/// scheme's default port filled in (`http://A.test/x` → `http://a.test:80`), so the same
/// server always gets the same bucket. `None` for a URI without a host.
///
/// ```
/// use fastreq::rate_limit::host_key;
///
/// let key = |s: &str| host_key(&s.parse().unwrap());
/// assert_eq!(key("https://API.example/v1?x=1").as_deref(), Some("https://api.example:443"));
/// assert_eq!(key("http://u:p@api.example:8080/").as_deref(), Some("http://api.example:8080"));
/// assert_eq!(key("/relative"), None);
/// ```
pub fn host_key(uri: &Uri) -> Option<String> {
    let mut s = String::new();
    write_host_key(uri, &mut s).then_some(s)
}

/// Writes [`host_key`] into `out` (cleared first); false when the URI has no host.
pub(crate) fn write_host_key(uri: &Uri, out: &mut String) -> bool {
    out.clear();
    crate::host_key::with_host_key(uri, |key| match key {
        Some(key) => {
            out.push_str(key);
            true
        }
        None => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn keys() {
        let key = |s: &str| host_key(&s.parse().unwrap());
        assert_eq!(key("http://a.test/").as_deref(), Some("http://a.test:80"));
        assert_eq!(
            key("http://a.test:80/x").as_deref(),
            Some("http://a.test:80")
        );
        assert_eq!(
            key("HTTPS://A.Test/").as_deref(),
            Some("https://a.test:443")
        );
        assert_eq!(
            key("https://a.test:8443").as_deref(),
            Some("https://a.test:8443")
        );
        assert_eq!(
            key("http://[::1]:8080/").as_deref(),
            Some("http://[::1]:8080")
        );
        assert_eq!(key("ftp://a.test/").as_deref(), Some("ftp://a.test"));
        assert_eq!(key("a.test:80").as_deref(), Some("http://a.test:80"));
        assert_eq!(key("http://a.test:0/").as_deref(), Some("http://a.test:0"));
        assert_eq!(
            key("http://a.test:65535/").as_deref(),
            Some("http://a.test:65535")
        );
        assert_eq!(key("/x"), None);
        // http and https to the same host are different servers.
        assert_ne!(key("http://a.test/"), key("https://a.test/"));
    }

    #[tokio::test(start_paused = true)]
    async fn independent_buckets() {
        let hosts = HostBuckets::new(Quota::per_second(1.0).unwrap());
        let a = hosts.limiter("http://a:80").unwrap();
        assert!(a.try_acquire());
        assert!(!hosts.limiter("http://a:80").unwrap().try_acquire());
        assert!(hosts.limiter("http://b:80").unwrap().try_acquire());
        assert_eq!(hosts.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_buckets_are_evicted() {
        // 10 ms per permit: a bucket is idle again 10 ms after its last permit.
        let hosts = HostBuckets::new(Quota::per_second(100.0).unwrap());
        let batch = 10_000;
        let mut peak = 0;
        for round in 0..20 {
            for i in 0..batch {
                let key = format!("http://h{round}-{i}.test:80");
                assert!(hosts.limiter(&key).unwrap().try_acquire());
            }
            peak = peak.max(hosts.len());
            tokio::time::advance(Duration::from_millis(20)).await;
        }
        // 200,000 hosts seen; the map never held much more than two batches.
        assert!(peak <= 2 * batch + SHARDS * MIN_SWEEP, "peak {peak}");
        assert!(hosts.evict_idle() > 0);
        assert_eq!(hosts.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn busy_buckets_are_kept() {
        let hosts = HostBuckets::new(Quota::per_second(1.0).unwrap());
        let held = hosts.limiter("http://held:80").unwrap(); // a handle in use
        assert!(hosts.limiter("http://spent:80").unwrap().try_acquire()); // not full yet
        let _ = hosts.limiter("http://unused:80").unwrap(); // full and unused: idle
        assert_eq!(hosts.evict_idle(), 1);
        assert!(hosts.get("http://spent:80").is_some());
        assert!(hosts.get("http://held:80").is_some());
        // Once full again and released, both go.
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(held);
        assert_eq!(hosts.evict_idle(), 2);
        assert!(hosts.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn set_quota_reaches_existing_and_new_buckets() {
        let hosts = HostBuckets::new(Quota::per_second(1.0).unwrap());
        let a = hosts.limiter("http://a:80").unwrap();
        hosts.set_quota(Quota::new(2.0, 3).unwrap());
        assert_eq!(a.quota(), Quota::new(2.0, 3).unwrap());
        assert_eq!(hosts.limiter("http://b:80").unwrap().quota().burst(), 3);
        assert_eq!(hosts.quota().rate(), 2.0);
    }
}
