//! [`Quota`]: a rate per second and a burst.

use std::fmt;
use std::time::Duration;

use crate::error::Error;

/// The smallest accepted rate: one request in about 31.7 years.
pub const MIN_RATE: f64 = 1e-9;

/// A rate limit: `rate` requests per second with bursts of up to `burst` requests.
///
/// Over any interval of length `t`, at most `burst + rate * t` requests are admitted. The
/// rate may be fractional (`0.5` is one request every two seconds). Rates above
/// 10⁹ per second are admitted at most once per nanosecond.
///
/// ```
/// use fastreq::rate_limit::Quota;
///
/// let q = Quota::new(0.5, 3)?;
/// assert_eq!(q.rate(), 0.5);
/// assert_eq!(q.burst(), 3);
/// assert_eq!(q.interval(), std::time::Duration::from_secs(2));
///
/// assert!(Quota::per_second(0.0).unwrap_err().is_config());
/// assert!(Quota::new(f64::NAN, 1).unwrap_err().is_config());
/// assert!(Quota::new(5.0, 0).unwrap_err().is_config());
/// # Ok::<(), fastreq::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq)]
pub struct Quota {
    rate: f64,
    burst: u32,
}

impl Quota {
    /// `rate` requests per second, bursts of up to `burst`.
    ///
    /// A rate that is zero, negative, NaN, infinite or below [`MIN_RATE`], or a burst of 0,
    /// is an [`ErrorKind::Config`](crate::ErrorKind::Config) error naming the value.
    pub fn new(rate: f64, burst: u32) -> Result<Quota, Error> {
        check_rate(rate)?;
        check_burst(burst)?;
        Ok(Quota { rate, burst })
    }

    /// `rate` requests per second with a burst of 1 (requests evenly spaced).
    pub fn per_second(rate: f64) -> Result<Quota, Error> {
        Quota::new(rate, 1)
    }

    /// `rate` per second with a burst of 1, the rate clamped into the accepted range (see
    /// `clamp_rate`): for the infallible layer constructors.
    pub(crate) fn per_second_clamped(rate: f64) -> Quota {
        Quota {
            rate: clamp_rate(rate),
            burst: 1,
        }
    }

    /// The same quota with another rate (the burst is kept).
    pub fn with_rate(self, rate: f64) -> Result<Quota, Error> {
        Quota::new(rate, self.burst)
    }

    /// The same quota with another burst (the rate is kept).
    pub fn with_burst(self, burst: u32) -> Result<Quota, Error> {
        Quota::new(self.rate, burst)
    }

    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The largest number of requests admitted at once after an idle period.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The time between two requests at the steady rate (`1 / rate`), rounded up to whole
    /// nanoseconds so that the bound is never exceeded.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval_nanos())
    }

    pub(crate) fn interval_nanos(&self) -> u64 {
        // Exact for the usual integer rates (5,000/s gives 200,000 ns); otherwise rounded up.
        let ns = (1e9 / self.rate).ceil();
        // MIN_RATE keeps this below 1e18, far from overflow.
        (ns as u64).max(1)
    }
}

impl fmt::Debug for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quota")
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .finish()
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s (burst {})", self.rate, self.burst)
    }
}

/// `rate` moved into the accepted range, for the infallible constructors: NaN and rates
/// below [`MIN_RATE`] (zero and negatives included) become [`MIN_RATE`]; rates above 10⁹
/// (infinity included) become 10⁹, which admits one request per nanosecond as any higher
/// rate would.
pub(crate) fn clamp_rate(rate: f64) -> f64 {
    if rate.is_nan() || rate < MIN_RATE {
        MIN_RATE
    } else {
        rate.min(1e9)
    }
}

pub(crate) fn check_rate(rate: f64) -> Result<(), Error> {
    if !rate.is_finite() || rate < MIN_RATE {
        return Err(Error::config(format!(
            "rate limit must be a finite number of requests per second of at least {MIN_RATE} \
             (got {rate})"
        )));
    }
    Ok(())
}

pub(crate) fn check_burst(burst: u32) -> Result<(), Error> {
    if burst == 0 {
        return Err(Error::config("rate limit burst must be at least 1 (got 0)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_value() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e-12] {
            let err = Quota::per_second(bad).unwrap_err();
            assert!(err.is_config());
            assert!(err.to_string().contains(&format!("{bad}")), "{err}");
        }
        let err = Quota::new(1.0, 0).unwrap_err();
        assert!(err.is_config());
        assert!(err.to_string().contains("got 0"), "{err}");
    }

    #[test]
    fn intervals() {
        assert_eq!(Quota::per_second(5000.0).unwrap().interval_nanos(), 200_000);
        assert_eq!(
            Quota::per_second(0.5).unwrap().interval_nanos(),
            2_000_000_000
        );
        assert_eq!(
            Quota::per_second(3.0).unwrap().interval_nanos(),
            333_333_334
        );
        assert_eq!(Quota::per_second(1e12).unwrap().interval_nanos(), 1);
        assert_eq!(
            Quota::per_second(MIN_RATE).unwrap().interval_nanos(),
            1_000_000_000_000_000_000
        );
    }
}
