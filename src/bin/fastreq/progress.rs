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
        started: Instant,
    ) -> Self {
        let counts = Counts {
            progress,
            total,
            skipped,
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
}

impl Counts {
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
    ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] [{wide_bar}] {pos}/{len} ETA {eta}, {msg}",
    )
    .expect("valid template")
    .progress_chars("=> ")
}

async fn draw_bar(bar: ProgressBar, counts: Counts, started: Instant) {
    let mut has_length = false;
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
        let secs = started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            done.saturating_sub(skipped) as f64 / secs
        } else {
            0.0
        };
        bar.set_position(done);
        let mut message = format!(
            "{rate:.1} req/s, {} failed, {} in flight",
            counts.failed(),
            counts.progress.in_flight()
        );
        if skipped > 0 {
            message.push_str(&format!(", {skipped} skipped"));
        }
        bar.set_message(message);
    }
}

/// The text of one plain progress line. `done` includes the `skipped` ones (`--resume`),
/// the rate does not.
pub fn plain_line(
    done: u64,
    failed: u64,
    skipped: u64,
    in_flight: u64,
    total: u64,
    elapsed: Duration,
) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        done.saturating_sub(skipped) as f64 / secs
    } else {
        0.0
    };
    let mut s = format!("fastreq: progress: {done}");
    if total != UNKNOWN {
        s.push_str(&format!("/{total}"));
    }
    s.push_str(&format!(" done, {failed} failed, "));
    if skipped > 0 {
        s.push_str(&format!("{skipped} skipped, "));
    }
    s.push_str(&format!(
        "{in_flight} in flight, {rate:.1} req/s, {secs:.0} s"
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
    loop {
        tick.tick().await;
        crate::say(&plain_line(
            counts.progress.completed(),
            counts.failed(),
            counts.skipped(),
            counts.progress.in_flight(),
            counts.total.load(Ordering::Relaxed),
            started.elapsed(),
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
            plain_line(50, 2, 0, 8, 100, Duration::from_secs(5)),
            "fastreq: progress: 50/100 done, 2 failed, 8 in flight, 10.0 req/s, 5 s, ETA 5 s"
        );
        assert_eq!(
            plain_line(0, 0, 0, 3, UNKNOWN, Duration::from_secs(2)),
            "fastreq: progress: 0 done, 0 failed, 3 in flight, 0.0 req/s, 2 s"
        );
        assert_eq!(
            plain_line(60, 1, 40, 2, 100, Duration::from_secs(2)),
            "fastreq: progress: 60/100 done, 1 failed, 40 skipped, 2 in flight, 10.0 req/s, 2 s, ETA 4 s"
        );
    }
}
