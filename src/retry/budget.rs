//! [`RetryBudget`]: caps retries to a share of the traffic, so a failing server does not
//! get a retry storm on top of its normal load.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;

/// A retry budget: retries may add at most a fixed share of extra load (like tower's
/// `TpsBudget` and Finagle's `RetryBudget`).
///
/// Every request the retry layer sends deposits `retry_ratio` of a retry; every retry
/// withdraws one. Deposits count for `ttl` (a sliding window of ten slots), and on top of
/// them `min_per_sec · ttl` retries are always allowed per window, so a client that sends
/// little can still retry. When the budget is empty the response or error comes back as it
/// is, marked [`NotRetried::BudgetExhausted`](super::NotRetried::BudgetExhausted).
///
/// Clones share one budget: give the same budget to several layers to cap them together.
/// It works without locks (one atomic per slot) and reads
/// [`tokio::time::Instant`], so tests with paused time see it expire.
///
/// The default is the one of tower and Finagle: `ttl` 10 s, 10 retries per second, 20 %.
///
/// ```
/// use std::time::Duration;
/// use fastreq::retry::RetryBudget;
///
/// // No free retries; one retry per 10 requests.
/// let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.1)?;
/// assert!(!budget.withdraw());
/// for _ in 0..10 {
///     budget.deposit();
/// }
/// assert!(budget.withdraw());
/// assert!(!budget.withdraw());
/// # Ok::<(), fastreq::Error>(())
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<Inner>,
}

const SLOTS: usize = 10;
/// Cost of one retry in budget units; a deposit is `retry_ratio · WITHDRAW` units.
const WITHDRAW: i64 = 1000;
const VALUE_BITS: u32 = 40;
const VALUE_MASK: u64 = (1 << VALUE_BITS) - 1;
const VALUE_MAX: i64 = (1 << (VALUE_BITS - 1)) - 1;
const EPOCH_MASK: u64 = (1 << (64 - VALUE_BITS)) - 1;

struct Inner {
    start: Instant,
    window_nanos: u128,
    reserve: i64,
    deposit: i64,
    /// Each slot packs (window number mod 2^24, signed 40-bit balance change).
    slots: [AtomicU64; SLOTS],
    ttl: Duration,
    min_per_sec: u32,
    ratio: f64,
}

impl RetryBudget {
    /// A budget where deposits count for `ttl` (1 s to 60 s), `min_per_sec` retries per
    /// second are always allowed, and each request adds `retry_ratio` retries (0 to 1000;
    /// 0.2 allows 20 % extra load).
    ///
    /// Values out of range are an [`ErrorKind::Config`](crate::ErrorKind::Config) error.
    pub fn new(ttl: Duration, min_per_sec: u32, retry_ratio: f64) -> Result<Self, Error> {
        if ttl < Duration::from_secs(1) || ttl > Duration::from_secs(60) {
            return Err(Error::config(format!(
                "retry budget ttl must be between 1 s and 60 s, got {ttl:?}"
            )));
        }
        if !retry_ratio.is_finite() || !(0.0..=1000.0).contains(&retry_ratio) {
            return Err(Error::config(format!(
                "retry budget ratio must be between 0 and 1000, got {retry_ratio}"
            )));
        }
        let reserve = (f64::from(min_per_sec) * ttl.as_secs_f64() * WITHDRAW as f64)
            .min(VALUE_MAX as f64) as i64;
        Ok(RetryBudget {
            inner: Arc::new(Inner {
                start: Instant::now(),
                window_nanos: (ttl.as_nanos() / SLOTS as u128).max(1),
                reserve,
                deposit: (retry_ratio * WITHDRAW as f64).round() as i64,
                slots: Default::default(),
                ttl,
                min_per_sec,
                ratio: retry_ratio,
            }),
        })
    }

    /// Records a request (adds `retry_ratio` of a retry to the budget).
    pub fn deposit(&self) {
        let inner = &*self.inner;
        if inner.deposit > 0 {
            inner.add(inner.epoch(), inner.deposit);
        }
    }

    /// Takes one retry from the budget; `false` when it is empty.
    ///
    /// Two threads withdrawing the last retry at once may both succeed (the budget is a
    /// bound on load, not an exact count).
    pub fn withdraw(&self) -> bool {
        let inner = &*self.inner;
        let epoch = inner.epoch();
        if inner.sum(epoch) >= WITHDRAW {
            inner.add(epoch, -WITHDRAW);
            true
        } else {
            false
        }
    }

    /// How many retries the budget allows now (may be fractional).
    pub fn balance(&self) -> f64 {
        let inner = &*self.inner;
        inner.sum(inner.epoch()) as f64 / WITHDRAW as f64
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget::new(Duration::from_secs(10), 10, 0.2).expect("valid default budget")
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("ttl", &self.inner.ttl)
            .field("min_per_sec", &self.inner.min_per_sec)
            .field("retry_ratio", &self.inner.ratio)
            .field("balance", &self.balance())
            .finish()
    }
}

fn pack(epoch: u64, value: i64) -> u64 {
    ((epoch & EPOCH_MASK) << VALUE_BITS) | (value as u64 & VALUE_MASK)
}

fn unpack(word: u64) -> (u64, i64) {
    let epoch = word >> VALUE_BITS;
    // Sign-extend the low 40 bits.
    let value = ((word << (64 - VALUE_BITS)) as i64) >> (64 - VALUE_BITS);
    (epoch, value)
}

impl Inner {
    fn epoch(&self) -> u64 {
        let elapsed = Instant::now().saturating_duration_since(self.start);
        (elapsed.as_nanos() / self.window_nanos) as u64
    }

    fn add(&self, epoch: u64, amount: i64) {
        let slot = &self.slots[(epoch % SLOTS as u64) as usize];
        let tag = epoch & EPOCH_MASK;
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            let (e, v) = unpack(current);
            // A slot last written in an older window starts over.
            let base = if e == tag { v } else { 0 };
            let next = pack(epoch, (base + amount).clamp(-VALUE_MAX, VALUE_MAX));
            match slot.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    fn sum(&self, epoch: u64) -> i64 {
        let tag = epoch & EPOCH_MASK;
        let windowed: i64 = self
            .slots
            .iter()
            .map(|slot| {
                let (e, v) = unpack(slot.load(Ordering::Acquire));
                let age = tag.wrapping_sub(e) & EPOCH_MASK;
                if age < SLOTS as u64 {
                    v
                } else {
                    0
                }
            })
            .sum();
        windowed.saturating_add(self.reserve)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips() {
        for (e, v) in [(0, 0), (5, -1000), (EPOCH_MASK, VALUE_MAX), (7, -VALUE_MAX)] {
            assert_eq!(unpack(pack(e, v)), (e, v));
        }
        assert_eq!(unpack(pack(EPOCH_MASK + 3, 1)).0, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn reserve_then_ratio() {
        // 1 free retry per second over 10 s = 10 free retries.
        let b = RetryBudget::new(Duration::from_secs(10), 1, 0.5).unwrap();
        for _ in 0..10 {
            assert!(b.withdraw());
        }
        assert!(!b.withdraw());
        b.deposit();
        assert!(!b.withdraw(), "half a retry is not enough");
        b.deposit();
        assert!(b.withdraw());
        assert!(!b.withdraw());
        assert!(b.balance() < 1.0);
    }

    #[tokio::test(start_paused = true)]
    async fn deposits_and_withdrawals_expire_after_ttl() {
        let b = RetryBudget::new(Duration::from_secs(2), 0, 1.0).unwrap();
        for _ in 0..5 {
            b.deposit();
        }
        assert_eq!(b.balance(), 5.0);
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(b.balance(), 5.0, "still inside the window");
        assert!(b.withdraw() && b.withdraw());
        assert_eq!(b.balance(), 3.0);
        tokio::time::advance(Duration::from_millis(600)).await;
        // The deposits (t=0) left the window; the withdrawals (t=1.5 s) did not.
        assert_eq!(b.balance(), -2.0);
        assert!(!b.withdraw());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(b.balance(), 0.0);
        // Long idle gaps wrap around the slots cleanly.
        tokio::time::advance(Duration::from_secs(3600)).await;
        b.deposit();
        assert_eq!(b.balance(), 1.0);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_ratio_only_allows_the_reserve() {
        let b = RetryBudget::new(Duration::from_secs(1), 3, 0.0).unwrap();
        for _ in 0..100 {
            b.deposit();
        }
        let granted = (0..100).filter(|_| b.withdraw()).count();
        assert_eq!(granted, 3);
    }

    #[test]
    fn invalid_values_are_config_errors() {
        let s = Duration::from_secs;
        for (ttl, ratio) in [
            (Duration::from_millis(999), 0.2),
            (s(61), 0.2),
            (s(10), -0.1),
            (s(10), f64::NAN),
            (s(10), 1000.5),
        ] {
            let e = RetryBudget::new(ttl, 1, ratio).unwrap_err();
            assert!(e.is_config(), "{e}");
        }
        assert!(RetryBudget::new(s(10), 1, f64::NAN)
            .unwrap_err()
            .to_string()
            .contains("NaN"));
        let d = RetryBudget::default();
        assert!(format!("{d:?}").contains("min_per_sec: 10"));
        let shared = d.clone();
        assert!(shared.withdraw());
        assert_eq!(d.balance(), 99.0);
    }
}
