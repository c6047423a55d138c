//! How a user agent is chosen from a list: the [`Picker`] trait and the built-in pickers
//! [`RoundRobin`], [`Random`] and [`StickyPerHost`].

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use http::Uri;
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};

/// Chooses which user agent of a list a request gets.
///
/// One picker is shared (behind an `Arc`) by the layer, every service it builds and all
/// their clones, so state such as a counter is shared too. It is called once per request
/// that gets a user agent from the layer, so it should be cheap and must not block.
///
/// # Examples
///
/// Always the first user agent for `/api/` paths, the second otherwise:
///
/// ```
/// use fastreq::user_agent::{Picker, UserAgentLayer};
///
/// #[derive(Debug)]
/// struct ByPath;
///
/// impl Picker for ByPath {
///     fn pick(&self, uri: &http::Uri, len: usize) -> usize {
///         if uri.path().starts_with("/api/") { 0 } else { 1 % len }
///     }
/// }
///
/// let layer = UserAgentLayer::builder()
///     .agents(["bot-api/1.0", "bot-web/1.0"])
///     .picker(ByPath)
///     .build()?;
/// # Ok::<(), fastreq::Error>(())
/// ```
pub trait Picker: fmt::Debug + Send + Sync + 'static {
    /// Returns the index of the user agent for a request to `uri`, in `0..len`
    /// (`len` ≥ 1). An index out of range is taken modulo `len`.
    fn pick(&self, uri: &Uri, len: usize) -> usize;
}

/// Takes the user agents in order, starting again at the first after the last.
///
/// One atomic counter shared by every clone of the layer and its services, so requests
/// from all of them together go through the list in order.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    /// Starts at the first user agent.
    pub fn new() -> Self {
        RoundRobin::default()
    }
}

impl Picker for RoundRobin {
    fn pick(&self, _uri: &Uri, len: usize) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % len
    }
}

/// Picks a user agent uniformly at random for each request.
///
/// [`Random::new`] draws from a per-thread generator seeded by the operating system (no
/// shared state, no lock); [`Random::with_seed`] gives a reproducible sequence from one
/// atomic counter shared by all clones.
#[derive(Debug)]
pub struct Random {
    seeded: Option<AtomicU64>,
}

impl Default for Random {
    fn default() -> Self {
        Random::new()
    }
}

impl Random {
    /// A picker drawing from a per-thread generator seeded by the operating system.
    pub fn new() -> Self {
        Random { seeded: None }
    }

    /// A reproducible picker: the same seed gives the same sequence of picks (in the order
    /// requests reach it).
    pub fn with_seed(seed: u64) -> Self {
        Random {
            seeded: Some(AtomicU64::new(seed)),
        }
    }
}

thread_local! {
    static RNG: RefCell<SmallRng> = RefCell::new(SmallRng::from_os_rng());
}

/// SplitMix64's output function: a good 64-bit mixer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Maps a uniform `u64` onto `0..len` (Lemire's multiply-shift; bias below 2^-50 for any
/// list size that fits in memory).
fn bounded(x: u64, len: usize) -> usize {
    ((u128::from(x) * len as u128) >> 64) as usize
}

impl Picker for Random {
    fn pick(&self, _uri: &Uri, len: usize) -> usize {
        match &self.seeded {
            Some(state) => {
                let s = state.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
                bounded(mix(s.wrapping_add(0x9e37_79b9_7f4a_7c15)), len)
            }
            None => RNG.with(|rng| rng.borrow_mut().random_range(0..len)),
        }
    }
}

/// The same host always gets the same user agent; different hosts spread over the list.
///
/// The host (compared case-insensitively) and port of the request URL are hashed into
/// the list, mixed with a seed: random per picker by default, so two clients map hosts
/// differently, or fixed with [`StickyPerHost::with_seed`]. Redirect hops to another host
/// keep the user agent chosen for the first one (the layer sits above the redirects).
#[derive(Debug)]
pub struct StickyPerHost {
    seed: u64,
}

impl Default for StickyPerHost {
    fn default() -> Self {
        StickyPerHost::new()
    }
}

impl StickyPerHost {
    /// A picker with a random seed.
    pub fn new() -> Self {
        StickyPerHost {
            seed: SmallRng::from_os_rng().next_u64(),
        }
    }

    /// A picker with a fixed seed: the same host gets the same index in every process.
    pub fn with_seed(seed: u64) -> Self {
        StickyPerHost { seed }
    }
}

impl Picker for StickyPerHost {
    fn pick(&self, uri: &Uri, len: usize) -> usize {
        // FNV-1a over the lowercased host and the port, finished by a strong mixer.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ self.seed;
        for b in uri.host().unwrap_or("").bytes() {
            h ^= u64::from(b.to_ascii_lowercase());
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        h ^= u64::from(port);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        bounded(mix(h), len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_wraps() {
        let rr = RoundRobin::new();
        let uri = Uri::from_static("http://a.test/");
        let picks: Vec<_> = (0..7).map(|_| rr.pick(&uri, 3)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn seeded_random_is_reproducible_and_in_range() {
        let uri = Uri::from_static("http://a.test/");
        let a = Random::with_seed(7);
        let b = Random::with_seed(7);
        let xs: Vec<_> = (0..100).map(|_| a.pick(&uri, 5)).collect();
        let ys: Vec<_> = (0..100).map(|_| b.pick(&uri, 5)).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().all(|&i| i < 5));
        for i in 0..5 {
            assert!(xs.contains(&i), "index {i} never picked in {xs:?}");
        }
        let r = Random::new();
        assert!((0..1000).all(|_| r.pick(&uri, 3) < 3));
    }

    #[test]
    fn sticky_ignores_case_and_path() {
        let s = StickyPerHost::with_seed(1);
        let a = s.pick(&Uri::from_static("http://A.test/x"), 25);
        assert_eq!(
            a,
            s.pick(&Uri::from_static("http://a.TEST:80/y?z"), 25),
            "same host"
        );
        let hosts: std::collections::HashSet<_> = (0..200)
            .map(|i| {
                let uri: Uri = format!("http://h{i}.test/").parse().unwrap();
                s.pick(&uri, 25)
            })
            .collect();
        assert!(hosts.len() > 15, "hosts spread over the list: {hosts:?}");
    }
}
