//! Backoff schedules: the [`Backoff`] trait, [`ExponentialBackoff`] with its [`Jitter`]
//! kinds, and the per-request random source [`BackoffRng`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};

use crate::error::Error;

/// The default delay before the first retry: 100 ms.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// The default growth factor of the delay from one retry to the next: 2.
pub const DEFAULT_BACKOFF_FACTOR: f64 = 2.0;
/// The default cap on one backoff delay: 30 s.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A schedule of delays between attempts.
///
/// The retry layer asks for one delay before each retry. `retry` counts retries from 1 (the
/// delay before the second attempt), `previous` is what this backoff returned for the
/// previous retry of the same request (`Duration::ZERO` before the first), and `rng` is the
/// request's own random source: every request gets its own, so two requests never share a
/// sequence of "random" delays.
///
/// A `Retry-After` header on the response replaces the delay (see the
/// [module docs](super)); the backoff is still asked, so its sequence advances.
///
/// # Examples
///
/// A fixed schedule: 50 ms, 1 s, then 5 s for every further retry.
///
/// ```
/// use std::time::Duration;
/// use fastreq::retry::{Backoff, BackoffRng, RetryLayer};
///
/// #[derive(Debug)]
/// struct Steps;
///
/// impl Backoff for Steps {
///     fn delay(&self, retry: u32, _previous: Duration, _rng: &mut BackoffRng) -> Duration {
///         match retry {
///             1 => Duration::from_millis(50),
///             2 => Duration::from_secs(1),
///             _ => Duration::from_secs(5),
///         }
///     }
/// }
///
/// let layer = RetryLayer::builder().backoff(Steps).max_retries(5).build()?;
/// # Ok::<(), fastreq::Error>(())
/// ```
pub trait Backoff: fmt::Debug + Send + Sync + 'static {
    /// The delay before retry number `retry` (1 for the first retry).
    fn delay(&self, retry: u32, previous: Duration, rng: &mut BackoffRng) -> Duration;
}

/// The random source of one request's backoff.
///
/// The retry layer seeds one per request (only when that request is about to be retried)
/// from a shared seed source, so requests draw independent delays.
pub struct BackoffRng {
    rng: SmallRng,
}

impl BackoffRng {
    /// A random source seeded with `seed` (the same seed gives the same sequence; for tests
    /// of custom [`Backoff`]s).
    pub fn from_seed(seed: u64) -> Self {
        BackoffRng {
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// A uniformly random `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// A uniformly random number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    /// A uniformly random duration in `[low, high]` (nanosecond resolution; `low` when
    /// `high <= low`). Durations above `u64::MAX` nanoseconds (584 years) saturate.
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let lo = nanos(low);
        let hi = nanos(high);
        if hi <= lo {
            return low;
        }
        Duration::from_nanos(self.rng.random_range(lo..=hi))
    }
}

impl fmt::Debug for BackoffRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BackoffRng")
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// How randomness is mixed into an [`ExponentialBackoff`] (AWS, "Exponential Backoff and
/// Jitter").
///
/// With `base(n) = min(max, initial · factor^(n-1))` for retry `n`:
///
/// | kind | delay before retry `n` |
/// |---|---|
/// | `None` | `base(n)` |
/// | `Full` (default) | uniform in `[0, base(n)]` |
/// | `Equal` | `base(n)/2` + uniform in `[0, base(n)/2]` |
/// | `Decorrelated` | `min(max, uniform in [initial, 3 · previous])`, `previous` starting at `initial` (the factor is not used) |
///
/// Full jitter spreads the retries of many clients best; `None` is for tests and for
/// servers that asked for a precise rhythm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Jitter {
    /// No randomness: exactly `base(n)`.
    None,
    /// Uniform in `[0, base(n)]`.
    #[default]
    Full,
    /// Half of `base(n)` plus a uniform share of the other half.
    Equal,
    /// Uniform between the initial delay and three times the previous delay, capped.
    Decorrelated,
}

/// Exponential backoff with jitter: the default [`Backoff`] of the retry layer.
///
/// Defaults: initial delay 100 ms, factor 2, cap 30 s, [`Jitter::Full`]. See [`Jitter`] for
/// the formulas.
///
/// ```
/// use std::time::Duration;
/// use fastreq::retry::{Backoff, BackoffRng, ExponentialBackoff, Jitter};
///
/// let b = ExponentialBackoff::new(Duration::from_millis(100), 2.0, Duration::from_secs(1), Jitter::None)?;
/// let mut rng = BackoffRng::from_seed(7);
/// let delays: Vec<_> = (1..=6).map(|n| b.delay(n, Duration::ZERO, &mut rng).as_millis()).collect();
/// assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
///
/// assert!(ExponentialBackoff::new(Duration::from_millis(100), f64::NAN, Duration::from_secs(1), Jitter::Full)
///     .unwrap_err()
///     .is_config());
/// # Ok::<(), fastreq::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExponentialBackoff {
    initial: Duration,
    factor: f64,
    max: Duration,
    jitter: Jitter,
}

impl Default for ExponentialBackoff {
    fn default() -> Self {
        ExponentialBackoff {
            initial: DEFAULT_INITIAL_BACKOFF,
            factor: DEFAULT_BACKOFF_FACTOR,
            max: DEFAULT_MAX_BACKOFF,
            jitter: Jitter::Full,
        }
    }
}

impl ExponentialBackoff {
    /// A schedule starting at `initial`, multiplied by `factor` at each retry, capped at
    /// `max`, with `jitter`.
    ///
    /// A zero `initial` is allowed (retry at once). A `factor` that is not a finite number
    /// of at least 1, or a `max` below `initial`, is an
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) error.
    pub fn new(
        initial: Duration,
        factor: f64,
        max: Duration,
        jitter: Jitter,
    ) -> Result<Self, Error> {
        if !factor.is_finite() || factor < 1.0 {
            return Err(Error::config(format!(
                "retry backoff factor must be a finite number >= 1, got {factor}"
            )));
        }
        if max < initial {
            return Err(Error::config(format!(
                "retry max_backoff ({max:?}) must not be below initial_backoff ({initial:?})"
            )));
        }
        Ok(ExponentialBackoff {
            initial,
            factor,
            max,
            jitter,
        })
    }

    /// The delay before the first retry (before jitter).
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// The growth factor from one retry to the next.
    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// The cap on one delay.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The jitter kind.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// `min(max, initial · factor^(retry-1))`, before jitter.
    pub fn base(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(i32::MAX as u32) as i32;
        let cap = nanos(self.max) as f64;
        let value = nanos(self.initial) as f64 * self.factor.powi(exp);
        if !value.is_finite() || value >= cap {
            self.max
        } else {
            Duration::from_nanos(value.round() as u64)
        }
    }
}

impl Backoff for ExponentialBackoff {
    fn delay(&self, retry: u32, previous: Duration, rng: &mut BackoffRng) -> Duration {
        match self.jitter {
            Jitter::None => self.base(retry),
            Jitter::Full => rng.between(Duration::ZERO, self.base(retry)),
            Jitter::Equal => {
                let base = self.base(retry);
                let half = base / 2;
                half + rng.between(Duration::ZERO, base - half)
            }
            Jitter::Decorrelated => {
                let previous = previous.max(self.initial);
                let high = previous.saturating_mul(3);
                rng.between(self.initial, high).min(self.max)
            }
        }
    }
}

/// Hands out per-request RNG seeds: a base (random, or fixed for reproducible runs) mixed
/// with a counter. Shared by the clones of one layer; touched only when a request is
/// about to be retried.
pub(crate) struct SeedSource {
    base: u64,
    counter: AtomicU64,
}

impl SeedSource {
    pub(crate) fn random() -> Self {
        let base = match SmallRng::try_from_os_rng() {
            Ok(mut r) => r.next_u64(),
            Err(_) => {
                // No OS randomness: std's hasher keys (randomised per process where
                // possible) mixed with the clock. Each request still gets its own stream.
                use std::hash::{BuildHasher, Hasher};
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_u128(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos()),
                );
                h.finish()
            }
        };
        SeedSource::fixed(base)
    }

    pub(crate) fn fixed(base: u64) -> Self {
        SeedSource {
            base,
            counter: AtomicU64::new(0),
        }
    }

    pub(crate) fn next_rng(&self) -> BackoffRng {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        BackoffRng::from_seed(self.base ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
}

impl fmt::Debug for SeedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeedSource")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: usize = 2_000;

    fn exp(jitter: Jitter) -> ExponentialBackoff {
        ExponentialBackoff::new(
            Duration::from_millis(100),
            2.0,
            Duration::from_secs(30),
            jitter,
        )
        .unwrap()
    }

    #[test]
    fn none_grows_exponentially_and_caps() {
        let b = exp(Jitter::None);
        let mut rng = BackoffRng::from_seed(1);
        let got: Vec<u128> = (1..=12)
            .map(|n| b.delay(n, Duration::ZERO, &mut rng).as_millis())
            .collect();
        assert_eq!(
            got,
            [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000]
        );
        // Huge retry numbers saturate at the cap instead of overflowing.
        assert_eq!(b.base(u32::MAX), Duration::from_secs(30));
        let b = ExponentialBackoff::new(
            Duration::from_millis(10),
            1.5,
            Duration::from_secs(1),
            Jitter::None,
        )
        .unwrap();
        assert_eq!(b.base(3), Duration::from_micros(22_500));
    }

    /// Checks samples stay in `[lo, hi]` and actually spread over the range.
    fn check_spread(samples: &[Duration], lo: Duration, hi: Duration) {
        let min = *samples.iter().min().unwrap();
        let max = *samples.iter().max().unwrap();
        assert!(
            min >= lo && max <= hi,
            "{min:?}..{max:?} outside {lo:?}..{hi:?}"
        );
        let width = (hi - lo).as_secs_f64();
        assert!(
            (min - lo).as_secs_f64() < 0.05 * width,
            "min {min:?} not near {lo:?}"
        );
        assert!(
            (hi - max).as_secs_f64() < 0.05 * width,
            "max {max:?} not near {hi:?}"
        );
        let distinct: std::collections::HashSet<_> = samples.iter().collect();
        assert!(distinct.len() > samples.len() * 9 / 10);
    }

    #[test]
    fn full_jitter_within_zero_and_base() {
        let b = exp(Jitter::Full);
        let seeds = SeedSource::fixed(42);
        for retry in [1, 3, 10, 20] {
            let base = b.base(retry);
            let samples: Vec<_> = (0..SAMPLES)
                .map(|_| b.delay(retry, Duration::ZERO, &mut seeds.next_rng()))
                .collect();
            check_spread(&samples, Duration::ZERO, base);
        }
    }

    #[test]
    fn equal_jitter_within_half_and_base() {
        let b = exp(Jitter::Equal);
        let mut rng = BackoffRng::from_seed(3);
        for retry in [1, 4, 15] {
            let base = b.base(retry);
            let samples: Vec<_> = (0..SAMPLES)
                .map(|_| b.delay(retry, Duration::ZERO, &mut rng))
                .collect();
            check_spread(&samples, base / 2, base);
        }
    }

    #[test]
    fn decorrelated_within_initial_and_three_times_previous() {
        let b = exp(Jitter::Decorrelated);
        let mut rng = BackoffRng::from_seed(9);
        // First retry: previous counts as the initial delay.
        let first: Vec<_> = (0..SAMPLES)
            .map(|_| b.delay(1, Duration::ZERO, &mut rng))
            .collect();
        check_spread(
            &first,
            Duration::from_millis(100),
            Duration::from_millis(300),
        );
        let later: Vec<_> = (0..SAMPLES)
            .map(|_| b.delay(5, Duration::from_secs(2), &mut rng))
            .collect();
        check_spread(&later, Duration::from_millis(100), Duration::from_secs(6));
        // Capped.
        for _ in 0..SAMPLES {
            let d = b.delay(9, Duration::from_secs(25), &mut rng);
            assert!(d >= Duration::from_millis(100) && d <= Duration::from_secs(30));
        }
        // Chained as the layer does: never above the cap, never below initial.
        let mut prev = Duration::ZERO;
        for n in 1..200 {
            prev = b.delay(n, prev, &mut rng);
            assert!(prev >= Duration::from_millis(100) && prev <= Duration::from_secs(30));
        }
    }

    #[test]
    fn each_request_gets_its_own_sequence() {
        let b = ExponentialBackoff::default();
        let seeds = SeedSource::random();
        let mut a = seeds.next_rng();
        let mut c = seeds.next_rng();
        let da: Vec<_> = (1..=4)
            .map(|n| b.delay(n, Duration::ZERO, &mut a))
            .collect();
        let dc: Vec<_> = (1..=4)
            .map(|n| b.delay(n, Duration::ZERO, &mut c))
            .collect();
        assert_ne!(da, dc);
        // A fixed base is reproducible.
        let x = SeedSource::fixed(5).next_rng().next_u64();
        let y = SeedSource::fixed(5).next_rng().next_u64();
        assert_eq!(x, y);
    }

    #[test]
    fn invalid_config_is_an_error_naming_the_value() {
        let ms = Duration::from_millis;
        for f in [f64::NAN, f64::INFINITY, 0.5, -2.0] {
            let e = ExponentialBackoff::new(ms(100), f, ms(1000), Jitter::Full).unwrap_err();
            assert!(e.is_config());
            assert!(e.to_string().contains(&f.to_string()), "{e}");
        }
        let e = ExponentialBackoff::new(ms(100), 2.0, ms(50), Jitter::Full).unwrap_err();
        assert!(e.is_config() && e.to_string().contains("50ms"), "{e}");
        // Zero delays are allowed: retry at once.
        let z = ExponentialBackoff::new(Duration::ZERO, 1.0, Duration::ZERO, Jitter::Full).unwrap();
        assert_eq!(
            z.delay(3, Duration::ZERO, &mut BackoffRng::from_seed(0)),
            Duration::ZERO
        );
    }

    #[test]
    fn between_edges() {
        let mut rng = BackoffRng::from_seed(0);
        let ms = Duration::from_millis;
        assert_eq!(rng.between(ms(5), ms(5)), ms(5));
        assert_eq!(rng.between(ms(5), ms(1)), ms(5));
        let u = rng.unit();
        assert!((0.0..1.0).contains(&u));
        let d = rng.between(Duration::ZERO, Duration::MAX);
        assert!(d <= Duration::from_nanos(u64::MAX));
    }
}
