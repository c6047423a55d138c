//! The end-of-run summary: counts by status and by error kind, req/s, and latency
//! percentiles from a fixed-size log-linear histogram (flat memory for any number of
//! requests, about 1.6 % resolution).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Values below this many microseconds have a bucket each.
const LINEAR: u64 = 128;
/// Sub-buckets per power of two above that (6 bits of mantissa).
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = LINEAR as usize + (64 - 7) * SUB as usize;

/// Latencies in microseconds, in log-linear buckets.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("max_us", &self.max)
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max: 0,
        }
    }
}

fn bucket(us: u64) -> usize {
    if us < LINEAR {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros(); // >= 7
    let shift = exp - SUB_BITS;
    let sub = (us >> shift) & (SUB - 1);
    LINEAR as usize + (exp as usize - 7) * SUB as usize + sub as usize
}

/// The middle of a bucket's range.
fn bucket_value(index: usize) -> f64 {
    if index < LINEAR as usize {
        return index as f64;
    }
    let rel = index - LINEAR as usize;
    let exp = (rel / SUB as usize) as u32 + 7;
    let sub = (rel % SUB as usize) as u64;
    let shift = exp - SUB_BITS;
    let low = (SUB + sub) << shift;
    let width = 1u64 << shift;
    low as f64 + (width as f64 - 1.0) / 2.0
}

impl Histogram {
    /// Records one latency.
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket(us)] += 1;
        self.total += 1;
        self.max = self.max.max(us);
    }

    /// The `q`-quantile (0 < q <= 1) in milliseconds, `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                // Never report more than the largest value seen.
                return Some(bucket_value(i).min(self.max as f64) / 1000.0);
            }
        }
        Some(self.max as f64 / 1000.0)
    }
}

/// Counts by status code (100..=999), indexed by the code itself: no map lookup per
/// response.
#[derive(Clone)]
struct StatusCounts(Box<[u64]>);

impl Default for StatusCounts {
    fn default() -> Self {
        StatusCounts(vec![0; 1000].into_boxed_slice())
    }
}

impl std::fmt::Debug for StatusCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl StatusCounts {
    fn add(&mut self, status: u16) {
        if let Some(n) = self.0.get_mut(usize::from(status)) {
            *n += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(|&n| n == 0)
    }

    /// (status, count) for every status seen, in order.
    fn iter(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(s, &n)| (s, n))
    }
}

/// Tallies of a run.
#[derive(Debug, Default)]
pub struct Summary {
    /// Outcomes with an HTTP response.
    pub responses: u64,
    /// Outcomes with an error (including invalid input lines).
    pub failures: u64,
    /// `--resume`: inputs whose outcome the output already had.
    pub skipped: u64,
    /// Outcomes that took more than one attempt (responses and failures).
    pub retried: u64,
    statuses: StatusCounts,
    /// Count and the first message of each error kind.
    errors: BTreeMap<&'static str, (u64, String)>,
    latency: Histogram,
}

/// Longest example error message shown, in characters.
const EXAMPLE_CHARS: usize = 160;

impl Summary {
    /// Records a response after `attempts`.
    pub fn response(&mut self, status: u16, elapsed: Duration, attempts: u32) {
        self.responses += 1;
        self.retried += u64::from(attempts > 1);
        self.statuses.add(status);
        self.latency.record(elapsed);
    }

    /// Records a failure of kind `kind` (snake case) after `attempts`; `message` is called
    /// for the first failure of each kind only (the summary's example).
    pub fn failure(&mut self, kind: &'static str, attempts: u32, message: impl FnOnce() -> String) {
        self.failures += 1;
        self.retried += u64::from(attempts > 1);
        self.errors
            .entry(kind)
            .and_modify(|(n, _)| *n += 1)
            .or_insert_with(|| (1, message()));
    }

    /// All outcomes of this run (not the skipped ones).
    pub fn total(&self) -> u64 {
        self.responses + self.failures
    }

    /// The summary text (several lines, each ending in a newline). `stopped` says why the
    /// run ended early ("interrupted by SIGTERM", "output closed"), if it did.
    pub fn render(&self, wall: Duration, stopped: Option<&str>) -> String {
        let secs = wall.as_secs_f64();
        let rate = if secs > 0.0 {
            self.total() as f64 / secs
        } else {
            0.0
        };
        let mut s = String::new();
        let _ = write!(
            s,
            "fastreq: {}{} requests in {:.2} s ({:.1} req/s): {} responses, {} failed",
            match stopped {
                Some(why) => format!("{why} after "),
                None => String::new(),
            },
            self.total(),
            secs,
            rate,
            self.responses,
            self.failures,
        );
        if self.skipped > 0 {
            let _ = write!(s, "; {} skipped (already in the output)", self.skipped);
        }
        if self.retried > 0 {
            let _ = write!(s, "; {} retried", self.retried);
        }
        s.push('\n');
        if !self.statuses.is_empty() {
            s.push_str("  status:");
            for (status, n) in self.statuses.iter() {
                let _ = write!(s, " {status}={n}");
            }
            s.push('\n');
        }
        if !self.errors.is_empty() {
            s.push_str("  errors:");
            for (kind, (n, _)) in &self.errors {
                let _ = write!(s, " {kind}={n}");
            }
            s.push('\n');
            for (kind, (_, example)) in &self.errors {
                let _ = write!(s, "    {kind}, e.g.: ");
                let mut chars = example.chars();
                s.extend(chars.by_ref().take(EXAMPLE_CHARS));
                if chars.next().is_some() {
                    s.push('…');
                }
                s.push('\n');
            }
        }
        if let (Some(p50), Some(p90), Some(p99)) = (
            self.latency.quantile_ms(0.50),
            self.latency.quantile_ms(0.90),
            self.latency.quantile_ms(0.99),
        ) {
            let _ = writeln!(
                s,
                "  latency (responses, on the wire): p50={} p90={} p99={}",
                ms(p50),
                ms(p90),
                ms(p99)
            );
        }
        s
    }
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}ms")
    } else {
        format!("{v:.1}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for us in (0..2_000_000u64)
            .step_by(37)
            .chain([u64::MAX / 2, u64::MAX])
        {
            let b = bucket(us);
            assert!(b >= last && b < BUCKETS, "{us}");
            last = b;
            let v = bucket_value(b);
            let err = (v - us as f64).abs() / (us as f64).max(1.0);
            assert!(err <= 1.0 / 64.0 + 1e-9, "{us} -> {v}");
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile_ms(0.5), None);
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        assert_eq!(h.total, 100);
        let near = |q: f64, want: f64| {
            let got = h.quantile_ms(q).unwrap();
            assert!((got - want).abs() / want < 0.02, "q{q}: {got} vs {want}");
        };
        near(0.5, 50.0);
        near(0.9, 90.0);
        near(0.99, 99.0);
        near(1.0, 100.0);
        let mut one = Histogram::default();
        one.record(Duration::from_micros(1700));
        assert!((one.quantile_ms(0.99).unwrap() - 1.7).abs() < 0.03);
    }

    #[test]
    fn render_counts() {
        let mut s = Summary::default();
        s.response(200, Duration::from_millis(10), 1);
        s.response(200, Duration::from_millis(20), 1);
        s.response(404, Duration::from_millis(5), 1);
        s.failure("timeout", 1, || "timed out: 1".into());
        s.failure("invalid_request", 0, || "bad line".into());
        let text = s.render(Duration::from_secs(2), None);
        assert!(
            text.starts_with("fastreq: 5 requests in 2.00 s (2.5 req/s): 3 responses, 2 failed\n"),
            "{text}"
        );
        assert!(text.contains("  status: 200=2 404=1\n"), "{text}");
        assert!(
            text.contains("  errors: invalid_request=1 timeout=1\n"),
            "{text}"
        );
        assert!(text.contains("p50=10.0ms"), "{text}");
        assert!(
            text.contains(
                "\n    invalid_request, e.g.: bad line\n    timeout, e.g.: timed out: 1\n"
            ),
            "{text}"
        );
        assert!(!text.contains("retried"), "{text}");
        let mut r = Summary::default();
        r.response(200, Duration::from_millis(1), 3);
        r.failure("timeout", 4, || "timed out: first".into());
        r.failure("timeout", 4, || unreachable!("one example per kind"));
        r.failure("connect", 1, || "x".repeat(500));
        let text = r.render(Duration::from_secs(1), None);
        assert!(
            text.starts_with(
                "fastreq: 4 requests in 1.00 s (4.0 req/s): 1 responses, 3 failed; 3 retried\n"
            ),
            "{text}"
        );
        assert!(text.contains("timeout, e.g.: timed out: first\n"), "{text}");
        assert!(
            text.contains(&format!("connect, e.g.: {}…\n", "x".repeat(160))),
            "{text}"
        );
        assert!(s
            .render(Duration::ZERO, Some("interrupted by SIGTERM"))
            .starts_with("fastreq: interrupted by SIGTERM after 5 requests"));
        s.skipped = 7;
        assert!(s
            .render(Duration::from_secs(1), None)
            .starts_with("fastreq: 5 requests in 1.00 s (5.0 req/s): 3 responses, 2 failed; 7 skipped (already in the output)\n"));
        let empty = Summary::default().render(Duration::from_millis(1), None);
        assert_eq!(
            empty,
            "fastreq: 0 requests in 0.00 s (0.0 req/s): 0 responses, 0 failed\n"
        );
    }
}
