//! Progress on stderr: an indicatif bar on a terminal, plain periodic lines otherwise.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastreq::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use crate::args::ProgressArg;

/// How often a plain progress line is printed.
pub const PLAIN_INTERVAL: Duration = Duration::from_secs(2);
const BAR_INTERVAL: Duration = Duration::from_millis(100);

/// The total is not known (yet).
pub const UNKNOWN: u64 = u64::MAX;

/// The rate shown is over the last this long (the ETA follows it too).
pub const RATE_WINDOW: Duration = Duration::from_secs(5);

/// The completion rate over the last [`RATE_WINDOW`], from samples of the done count: near
/// the end of a run, when what is left is slow (retries, backoff), it falls, where a
/// cumulative average would stay high and promise an ETA of 0 s.
#[derive(Debug, Default)]
pub struct RecentRate {
    samples: std::collections::VecDeque<(Instant, u64)>,
}

impl RecentRate {
    /// Records `done` (not counting skipped ones) at `now`; returns the rate per second
    /// over the window (since the first sample while the run is younger than it).
    pub fn update(&mut self, now: Instant, done: u64) -> f64 {
        self.samples.push_back((now, done));
        // Keep one sample at or before the window's start, to measure over all of it.
        while self.samples.len() > 2
            && now.saturating_duration_since(self.samples[1].0) >= RATE_WINDOW
        {
            self.samples.pop_front();
        }
        let (then, before) = self.samples[0];
        let secs = now.saturating_duration_since(then).as_secs_f64();
        if secs > 0.0 {
            done.saturating_sub(before) as f64 / secs
        } else {
            0.0
        }
    }
}

/// What is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An indicatif bar.
    Bar,
    /// A line every [`PLAIN_INTERVAL`].
    Plain,
    /// Nothing.
    Off,
}

/// Where stderr and the JSON lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminals {
    /// stderr is a terminal.
    pub stderr: bool,
    /// The JSON lines go to a terminal (stdout without `-o`).
    pub output: bool,
}

/// Picks the mode. `auto`: a bar when stderr is a terminal, plain lines when it is not
/// or when logs (`-v`) also go there, and nothing when the JSON lines themselves scroll on
/// the terminal. A bar asked for on a non-terminal becomes plain lines.
pub fn choose(arg: ProgressArg, quiet: bool, verbose: u8, terminals: Terminals) -> Mode {
    if quiet {
        return Mode::Off;
    }
    match arg {
        ProgressArg::None => Mode::Off,
        ProgressArg::Plain => Mode::Plain,
        ProgressArg::Bar if terminals.stderr => Mode::Bar,
        ProgressArg::Bar => Mode::Plain,
        ProgressArg::Auto if terminals.stderr && terminals.output => Mode::Off,
        ProgressArg::Auto if terminals.stderr && verbose == 0 => Mode::Bar,
        ProgressArg::Auto => Mode::Plain,
    }
}

/// A running progress display.
#[derive(Debug)]
pub struct Reporter {
    task: Option<JoinHandle<()>>,
    bar: Option<ProgressBar>,
}

impl Reporter {
    /// Starts drawing `progress`; `total` is [`UNKNOWN`] until known. `skipped` counts the
    /// inputs `--resume` skips: done, but not failed (the fan-out counts them as failures).
    pub fn start(
        mode: Mode,
        progress: Progress,
        total: Arc<AtomicU64>,
        skipped: Arc<AtomicU64>,
        waiting: Arc<AtomicU64>,
        started: Instant,
    ) -> Self {
        let counts = Counts {
            progress,
            total,
            skipped,
            waiting,
        };
        match mode {
            Mode::Off => Reporter {
                task: None,
                bar: None,
            },
            Mode::Plain => Reporter {
                task: Some(tokio::spawn(plain(counts, started))),
                bar: None,
            },
            Mode::Bar => {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                    .with_style(spinner_style());
                let task = tokio::spawn(draw_bar(bar.clone(), counts, started));
                Reporter {
                    task: Some(task),
                    bar: Some(bar),
                }
            }
        }
    }

    /// Stops drawing and clears the bar, so the summary prints on a clean line.
    pub fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// What the display reads.
struct Counts {
    progress: Progress,
    total: Arc<AtomicU64>,
    skipped: Arc<AtomicU64>,
    /// Requests waiting now (rate, slot, proxy, backoff): started, but not on the wire.
    waiting: Arc<AtomicU64>,
}

impl Counts {
    /// (on the wire, waiting): the requests started, split.
    fn in_flight(&self) -> (u64, u64) {
        let started = self.progress.in_flight();
        let waiting = self.waiting.load(Ordering::Relaxed).min(started);
        (started - waiting, waiting)
    }

    fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    fn failed(&self) -> u64 {
        self.progress.failed().saturating_sub(self.skipped())
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos} done, {msg}")
        .expect("valid template")
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} [{elapsed_precise}] [{wide_bar}] {pos}/{len}, {msg}")
        .expect("valid template")
        .progress_chars("=> ")
}

async fn draw_bar(bar: ProgressBar, counts: Counts, started: Instant) {
    let mut has_length = false;
    let mut recent = RecentRate::default();
    recent.update(started, 0);
    let mut tick = tokio::time::interval(BAR_INTERVAL);
    loop {
        tick.tick().await;
        let t = counts.total.load(Ordering::Relaxed);
        if !has_length && t != UNKNOWN {
            bar.set_length(t);
            bar.set_style(bar_style());
            has_length = true;
        }
        let done = counts.progress.completed();
        let skipped = counts.skipped();
        let rate = recent.update(Instant::now(), done.saturating_sub(skipped));
        bar.set_position(done);
        let (in_flight, waiting) = counts.in_flight();
        let mut message = format!(
            "{rate:.1} req/s (last {} s), {} failed, {in_flight} in flight, {waiting} waiting",
            RATE_WINDOW.as_secs(),
            counts.failed(),
        );
        let t = counts.total.load(Ordering::Relaxed);
        if t != UNKNOWN && rate > 0.0 && t >= done {
            message.push_str(&format!(", ETA {:.0} s", (t - done) as f64 / rate));
        }
        if skipped > 0 {
            message.push_str(&format!(", {skipped} skipped"));
        }
        bar.set_message(message);
    }
}

/// The text of one plain progress line. `done` includes the `skipped` ones (`--resume`);
/// `rate` is the recent one ([`RecentRate`]), without them; the ETA follows it.
pub fn plain_line(
    done: u64,
    failed: u64,
    skipped: u64,
    (in_flight, waiting): (u64, u64),
    total: u64,
    elapsed: Duration,
    rate: f64,
) -> String {
    let secs = elapsed.as_secs_f64();
    let mut s = format!("fastreq: progress: {done}");
    if total != UNKNOWN {
        s.push_str(&format!("/{total}"));
    }
    s.push_str(&format!(" done, {failed} failed, "));
    if skipped > 0 {
        s.push_str(&format!("{skipped} skipped, "));
    }
    s.push_str(&format!(
        "{in_flight} in flight, {waiting} waiting, {rate:.1} req/s (last {} s), {secs:.0} s",
        RATE_WINDOW.as_secs()
    ));
    if total != UNKNOWN && rate > 0.0 && total >= done {
        s.push_str(&format!(", ETA {:.0} s", (total - done) as f64 / rate));
    }
    s
}

async fn plain(counts: Counts, started: Instant) {
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + PLAIN_INTERVAL, PLAIN_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut recent = RecentRate::default();
    recent.update(started, 0);
    loop {
        tick.tick().await;
        let done = counts.progress.completed();
        let skipped = counts.skipped();
        let rate = recent.update(Instant::now(), done.saturating_sub(skipped));
        crate::say(&plain_line(
            done,
            counts.failed(),
            skipped,
            counts.in_flight(),
            counts.total.load(Ordering::Relaxed),
            started.elapsed(),
            rate,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let tty = Terminals {
            stderr: true,
            output: false,
        };
        let pipes = Terminals {
            stderr: false,
            output: false,
        };
        let both = Terminals {
            stderr: true,
            output: true,
        };
        assert_eq!(choose(ProgressArg::Auto, false, 0, tty), Mode::Bar);
        assert_eq!(choose(ProgressArg::Auto, false, 1, tty), Mode::Plain);
        assert_eq!(choose(ProgressArg::Auto, false, 0, pipes), Mode::Plain);
        assert_eq!(choose(ProgressArg::Auto, false, 0, both), Mode::Off);
        assert_eq!(choose(ProgressArg::Bar, false, 0, both), Mode::Bar);
        assert_eq!(choose(ProgressArg::Bar, false, 0, pipes), Mode::Plain);
        assert_eq!(choose(ProgressArg::Bar, false, 2, tty), Mode::Bar);
        assert_eq!(choose(ProgressArg::None, false, 0, tty), Mode::Off);
        assert_eq!(choose(ProgressArg::Plain, true, 0, tty), Mode::Off);
    }

    #[test]
    fn plain_lines() {
        assert_eq!(
            plain_line(50, 2, 0, (8, 3), 100, Duration::from_secs(5), 10.0),
            "fastreq: progress: 50/100 done, 2 failed, 8 in flight, 3 waiting, 10.0 req/s (last 5 s), 5 s, ETA 5 s"
        );
        assert_eq!(
            plain_line(0, 0, 0, (3, 0), UNKNOWN, Duration::from_secs(2), 0.0),
            "fastreq: progress: 0 done, 0 failed, 3 in flight, 0 waiting, 0.0 req/s (last 5 s), 2 s"
        );
        assert_eq!(
            plain_line(60, 1, 40, (2, 0), 100, Duration::from_secs(2), 10.0),
            "fastreq: progress: 60/100 done, 1 failed, 40 skipped, 2 in flight, 0 waiting, 10.0 req/s (last 5 s), 2 s, ETA 4 s"
        );
    }

    #[test]
    fn the_rate_is_over_the_last_seconds() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut r = RecentRate::default();
        assert_eq!(r.update(at(0), 0), 0.0);
        // 100 per second for 10 s...
        for s in 1..=10 {
            let rate = r.update(at(s), 100 * s);
            assert!((rate - 100.0).abs() < 1e-9, "{s}: {rate}");
        }
        // ...then 2 per second: the cumulative average would still say ~60 after 5 s more;
        // the recent rate says 2.
        let mut rate = 0.0;
        for s in 11..=15 {
            rate = r.update(at(s), 1000 + 2 * (s - 10));
        }
        assert!((rate - 2.0).abs() < 1e-9, "{rate}");
        assert!(r.samples.len() <= 7, "{}", r.samples.len());
        // Plain lines, every 2 s: the window still spans about 5 s.
        let mut r = RecentRate::default();
        r.update(at(0), 0);
        for s in [2, 4, 6, 8] {
            r.update(at(s), 10 * s);
        }
        assert!((r.update(at(10), 100) - 10.0).abs() < 1e-9);
    }
}
