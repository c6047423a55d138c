//! How a proxy is chosen: [`Strategy`], the [`Picker`] trait and the built-in pickers.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use http::Uri;

use super::pool::{Now, PoolInner};
use super::Proxy;

/// The built-in ways to choose a proxy for each attempt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Strategy {
    /// Each proxy in turn, skipping those cooling down (the default).
    #[default]
    RoundRobin,
    /// A uniformly random proxy among those not cooling down.
    Random,
    /// The same proxy for every request to the same target host (while it is healthy; when
    /// it cools down, that host's requests move to the next proxy of the list and come back
    /// when it recovers).
    StickyPerHost,
}

impl Strategy {
    pub(crate) fn picker(self) -> std::sync::Arc<dyn Picker> {
        match self {
            Strategy::RoundRobin => std::sync::Arc::new(RoundRobin::new()),
            Strategy::Random => std::sync::Arc::new(Random::new()),
            Strategy::StickyPerHost => std::sync::Arc::new(StickyPerHost::new()),
        }
    }
}

/// What a [`Picker`] sees: the request's URI and the pool's proxies by index, with their
/// availability.
///
/// Indices run from 0 to [`len`](Self::len) − 1 in list order; removed and cooling proxies
/// keep their index but are not [available](Self::is_available).
pub struct PickContext<'a> {
    uri: &'a Uri,
    pool: &'a PoolInner,
    now: &'a Now,
}

impl<'a> PickContext<'a> {
    pub(crate) fn new(uri: &'a Uri, pool: &'a PoolInner, now: &'a Now) -> Self {
        PickContext { uri, pool, now }
    }

    /// The request URI.
    pub fn uri(&self) -> &Uri {
        self.uri
    }

    /// The target host of the request, if the URI has one.
    pub fn host(&self) -> Option<&str> {
        self.uri.host()
    }

    /// The number of proxy slots (including removed and cooling proxies).
    pub fn len(&self) -> usize {
        self.pool.entries.len()
    }

    /// True if the pool has no slot at all (never the case for a built pool).
    pub fn is_empty(&self) -> bool {
        self.pool.entries.is_empty()
    }

    /// The proxy at `index`. Panics if `index >= len()`.
    pub fn proxy(&self, index: usize) -> &Proxy {
        &self.pool.entries[index].proxy
    }

    /// Whether the proxy at `index` may be picked now (exists, not removed, not cooling
    /// down).
    #[inline]
    pub fn is_available(&self, index: usize) -> bool {
        self.pool.is_available(index, self.now)
    }

    /// The number of available proxies (a scan of the pool).
    pub fn available_count(&self) -> usize {
        (0..self.len()).filter(|&i| self.is_available(i)).count()
    }

    /// The `k`-th available proxy's index (0-based), scanning from the start.
    pub fn nth_available(&self, k: usize) -> Option<usize> {
        (0..self.len()).filter(|&i| self.is_available(i)).nth(k)
    }
}

impl fmt::Debug for PickContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PickContext")
            .field("uri", &crate::error::redact_url(&self.uri.to_string()))
            .field("len", &self.len())
            .finish()
    }
}

/// Chooses a proxy for one attempt. Implement it for a custom strategy and pass it to
/// [`ProxyRotationLayer::picker`](super::ProxyRotationLayer::picker).
///
/// Return the index of an [available](PickContext::is_available) proxy, or `None` when none
/// suits; the layer then waits for a proxy to recover (or fails, per its
/// [`WhenAllDown`](super::WhenAllDown) setting). Returning an unavailable index counts as
/// `None`. `pick` runs on every attempt: keep it cheap and lock-free if you can.
///
/// ```
/// use fastreq::proxy::{PickContext, Picker};
///
/// /// Always the first available proxy: a primary with fallbacks.
/// struct FirstAvailable;
///
/// impl Picker for FirstAvailable {
///     fn pick(&self, cx: &PickContext<'_>) -> Option<usize> {
///         (0..cx.len()).find(|&i| cx.is_available(i))
///     }
/// }
/// ```
pub trait Picker: Send + Sync + 'static {
    /// The index of the proxy to use, or `None`.
    fn pick(&self, cx: &PickContext<'_>) -> Option<usize>;
}

/// Each proxy in turn, skipping those not available. See [`Strategy::RoundRobin`].
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    /// Starts at the first proxy.
    pub fn new() -> Self {
        RoundRobin::default()
    }
}

impl Picker for RoundRobin {
    fn pick(&self, cx: &PickContext<'_>) -> Option<usize> {
        let n = cx.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for k in 0..n {
            let i = (start + k) % n;
            if cx.is_available(i) {
                if k > 0 {
                    // Skip the unavailable ones for the next caller too, so the available
                    // proxies share the load evenly.
                    self.next.fetch_add(k, Ordering::Relaxed);
                }
                return Some(i);
            }
        }
        None
    }
}

/// A uniformly random available proxy. See [`Strategy::Random`].
///
/// Lock-free (a SplitMix64 sequence on an atomic counter).
#[derive(Debug)]
pub struct Random {
    state: AtomicU64,
}

impl Default for Random {
    fn default() -> Self {
        Random::new()
    }
}

impl Random {
    /// Seeded from the operating system.
    pub fn new() -> Self {
        use rand::{RngCore, SeedableRng};
        Random::seeded(rand::rngs::SmallRng::from_os_rng().next_u64())
    }

    /// A reproducible sequence (for tests and simulations).
    pub fn seeded(seed: u64) -> Self {
        Random {
            state: AtomicU64::new(seed),
        }
    }

    fn next_u64(&self) -> u64 {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut z = self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Picker for Random {
    fn pick(&self, cx: &PickContext<'_>) -> Option<usize> {
        let n = cx.len();
        if n == 0 {
            return None;
        }
        let r = self.next_u64();
        let i = (r % n as u64) as usize;
        if cx.is_available(i) {
            return Some(i);
        }
        let available = cx.available_count();
        if available == 0 {
            return None;
        }
        cx.nth_available(((r >> 32) % available as u64) as usize)
    }
}

/// The same proxy for the same target host. See [`Strategy::StickyPerHost`].
///
/// The host (case-insensitive, without the port) is hashed to a slot of the list; if that
/// proxy is not available the next available one in list order is used.
#[derive(Debug, Default)]
pub struct StickyPerHost {
    _priv: (),
}

impl StickyPerHost {
    /// A sticky picker.
    pub fn new() -> Self {
        StickyPerHost::default()
    }
}

impl Picker for StickyPerHost {
    fn pick(&self, cx: &PickContext<'_>) -> Option<usize> {
        let n = cx.len();
        if n == 0 {
            return None;
        }
        // FNV-1a over the lower-cased host, then a SplitMix64 finaliser: stable across
        // runs and processes, no allocation.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in cx.host().unwrap_or("").bytes() {
            h ^= u64::from(b.to_ascii_lowercase());
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
        let start = (h % n as u64) as usize;
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| cx.is_available(i))
    }
}
