//! `fastreq fetch`: checks every flag and opens every file first (usage errors exit 2
//! before any request), then streams the input through the preset and writes one JSON line
//! per outcome.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastreq::{Client, Outcome};
use futures_util::StreamExt;
use tokio::io::BufReader;
use tokio::sync::{mpsc, watch};

use crate::args::FetchArgs;
use crate::args::FormatArg;
use crate::filter::Filter;
use crate::input::{self, Defaults, ReadError};
use crate::output::{Extras, Format, Output, Record};
use crate::progress::{self, Mode, Reporter, UNKNOWN};
use crate::resume::{self, Bits};
use crate::service::{stopped, NoResponse, Sent, Timed};
use crate::summary::Summary;

/// Exit status: every request got an HTTP response.
pub const EXIT_OK: i32 = 0;
/// Exit status: some requests failed (or input lines were invalid, or output failed).
pub const EXIT_FAILED: i32 = 1;
/// Exit status: usage error, before any request.
pub const EXIT_USAGE: i32 = 2;
/// Exit status: the output was closed (128 + SIGPIPE, as a shell reports `yes | head`).
pub const EXIT_OUTPUT_CLOSED: i32 = 141;

const READ_BUFFER: usize = 64 * 1024;
const FLUSH_EVERY: Duration = Duration::from_millis(500);

pub(crate) type Reader = Box<dyn std::io::Read + Send>;

/// Everything checked and opened, ready to run.
struct Job {
    client: Client,
    defaults: Arc<Defaults>,
    reader: Reader,
    input_path: Option<PathBuf>,
    sink: Sink,
    ordered: bool,
    reorder_window: usize,
    mode: Mode,
    quiet: bool,
    /// `--resume`: the indexes whose outcome the output already has.
    skip: Option<Arc<Bits>>,
    /// The first stop signal; `None` when the handlers could not be installed.
    signals: Option<mpsc::Receiver<StopSignal>>,
}

/// Where outcomes go.
struct Sink {
    output: Output,
    /// Headers, body, saved body: what each line carries beyond the bare record.
    extras: Extras,
    /// `--match-status`, `--filter-status`.
    filter: Filter,
    /// With -o FILE and a filter: FILE.filtered, the brief lines of the dropped outcomes.
    filtered: Option<Output>,
}

/// Runs `fastreq fetch`; returns the exit status.
pub async fn fetch(args: FetchArgs, verbose: u8) -> i32 {
    match prepare(args, verbose).await {
        Ok(job) => job.run().await,
        Err(message) => {
            crate::say(&format!("fastreq: error: {message}"));
            EXIT_USAGE
        }
    }
}

pub(crate) async fn open_input(
    path: Option<&Path>,
    quiet: bool,
) -> Result<(Reader, Option<PathBuf>), String> {
    match path {
        None => Ok((stdin_reader(quiet), None)),
        Some(p) if p == Path::new("-") => Ok((stdin_reader(quiet), None)),
        Some(p) => {
            let shown = p.display();
            let meta = tokio::fs::metadata(p)
                .await
                .map_err(|e| format!("cannot read input `{shown}`: {e}"))?;
            if meta.is_dir() {
                return Err(format!("cannot read input `{shown}`: it is a directory"));
            }
            let file =
                std::fs::File::open(p).map_err(|e| format!("cannot read input `{shown}`: {e}"))?;
            Ok((Box::new(file), Some(p.to_owned())))
        }
    }
}

fn stdin_reader(quiet: bool) -> Reader {
    if !quiet && std::io::stdin().is_terminal() {
        crate::say("fastreq: reading requests from the terminal, one per line (Ctrl-D to end)");
    }
    Box::new(std::io::stdin())
}

async fn prepare(args: FetchArgs, verbose: u8) -> Result<Job, String> {
    // First, so that from now on a signal never kills the process abruptly.
    let signals = match Signals::install() {
        Ok(s) => Some(s.watch()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot handle SIGINT, SIGTERM and SIGHUP");
            None
        }
    };
    let defaults = crate::client::defaults(&args)?;
    let client = crate::client::build_client(&args)?;
    if args.resume && args.input.as_deref().is_none_or(|p| p == Path::new("-")) {
        return Err(
            "--resume needs INPUT as a file: it is read again to check it against the output"
                .into(),
        );
    }
    let (reader, input_path) = open_input(args.input.as_deref(), args.quiet).await?;
    let csv = args.format == FormatArg::Csv;
    if csv && (args.include_body || args.include_headers || !args.header_fields.is_empty()) {
        return Err(
            "--format csv has no body or headers columns: --include-body, --include-headers \
             and --header-fields need --format jsonl"
                .into(),
        );
    }
    if csv && args.resume {
        return Err("--resume reads back JSON lines: it needs --format jsonl".into());
    }
    let format = if csv { Format::Csv } else { Format::Json };
    let filter = Filter {
        keep: args.match_status.clone(),
        drop: args.filter_status.clone(),
    };
    let mut skip = None;
    let mut filtered = None;
    let output = match &args.output {
        None => Output::with_format(std::io::stdout(), format),
        Some(p) => {
            if let (Some(input), Ok(out)) = (&input_path, std::fs::canonicalize(p)) {
                if std::fs::canonicalize(input).is_ok_and(|i| i == out) {
                    return Err(format!(
                        "the output `{}` is the input: it would be overwritten",
                        p.display()
                    ));
                }
            }
            let file = match (&input_path, args.resume) {
                (Some(input), true) => {
                    let resumed =
                        resume::open(p, input, &defaults, args.retry_failed, args.quiet).await?;
                    skip = resumed.skip;
                    filtered = resumed.filtered;
                    resumed.file
                }
                _ => std::fs::File::create(p)
                    .map_err(|e| format!("cannot create output `{}`: {e}", p.display()))?,
            };
            let side = resume::filtered_path(p);
            if filter.is_active() && !csv {
                if filtered.is_none() {
                    filtered = Some(
                        std::fs::File::create(&side)
                            .map_err(|e| format!("cannot create `{}`: {e}", side.display()))?,
                    );
                }
            } else if !args.resume {
                // Left by an earlier run into this FILE: not this one's.
                let _ = std::fs::remove_file(&side);
            }
            Output::with_format(file, format)
        }
    }
    .map_err(|e| format!("cannot start the output thread: {e}"))?;
    let filtered = match filtered {
        Some(file) if filter.is_active() => Some(
            Output::with_format(file, Format::Brief)
                .map_err(|e| format!("cannot start the output thread: {e}"))?,
        ),
        _ => None,
    };
    if let Some(dir) = &args.save_bodies {
        tokio::fs::create_dir_all(dir).await.map_err(|e| {
            format!(
                "cannot create --save-bodies directory `{}`: {e}",
                dir.display()
            )
        })?;
    }
    if args.insecure_skip_tls_verify {
        crate::say(
            "fastreq: WARNING: --insecure-skip-tls-verify: TLS certificates and host names are \
             NOT verified; anyone on the network path can read and change this traffic",
        );
    }
    let terminals = progress::Terminals {
        stderr: std::io::stderr().is_terminal(),
        output: args.output.is_none() && std::io::stdout().is_terminal(),
    };
    let mode = progress::choose(args.progress, args.quiet, verbose, terminals);
    tracing::info!(
        concurrency = args.concurrency,
        rate = ?args.rate,
        retries = args.retries,
        ordered = args.ordered,
        resume = args.resume,
        skipped = skip.as_ref().map(|s| s.len()),
        "fetch starting"
    );
    Ok(Job {
        client,
        defaults: Arc::new(defaults),
        reader,
        input_path,
        sink: Sink {
            output,
            extras: Extras::new(&args),
            filter,
            filtered,
        },
        ordered: args.ordered,
        reorder_window: args.reorder_window,
        mode,
        quiet: args.quiet,
        skip,
        signals,
    })
}

/// How the loop over outcomes ended.
enum End {
    /// Every outcome was handled (after a stop signal too: the cancelled ones end fast).
    Done,
    /// The output was closed (`EPIPE`): nothing more can be written.
    OutputClosed,
    /// Writing the output failed otherwise.
    OutputFailed(std::io::Error),
}

impl End {
    fn write_failed(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            End::OutputClosed
        } else {
            End::OutputFailed(e)
        }
    }
}

/// The next stop signal; never when there is none to wait for.
pub(crate) async fn next_signal(signals: &mut Option<mpsc::Receiver<StopSignal>>) -> StopSignal {
    if let Some(rx) = signals {
        if let Some(sig) = rx.recv().await {
            return sig;
        }
    }
    std::future::pending().await
}

impl Job {
    async fn run(self) -> i32 {
        let Job {
            client,
            defaults,
            reader,
            input_path,
            mut sink,
            ordered,
            reorder_window,
            mode,
            quiet,
            skip,
            mut signals,
        } = self;
        let started = Instant::now();
        let read_error = ReadError::default();
        // Turned true by the first stop signal: intake ends, what runs is cancelled.
        let (stop_tx, stop_rx) = watch::channel(false);
        let skipped = Arc::new(AtomicU64::new(0));
        let skip = skip.map(|indexes| input::Skip {
            indexes,
            count: skipped.clone(),
        });
        let requests = input::requests(reader, defaults, read_error.clone(), skip)
            .take_until(stopped(stop_rx.clone()));
        let waiting = Arc::new(AtomicU64::new(0));
        let service = Timed::new(
            fastreq::Fetch::new(client.clone()),
            stop_rx,
            waiting.clone(),
        );
        let mut outcomes = fastreq::fan_out_stream(service, requests).limit(client.fan_out_limit());
        if ordered {
            // Behind a slow head, requests go on starting up to the window (not only up to
            // the fan-out limit): see --ordered.
            outcomes = outcomes.ordered().reorder_window(reorder_window);
        }

        let total = Arc::new(AtomicU64::new(UNKNOWN));
        let counter = match (&input_path, mode) {
            (Some(path), Mode::Bar | Mode::Plain) => {
                Some(tokio::spawn(count_total(path.clone(), total.clone())))
            }
            _ => None,
        };
        let mut reporter = Some(Reporter::start(
            mode,
            outcomes.progress(),
            total,
            skipped,
            waiting,
            started,
        ));

        let mut summary = Summary::default();
        let mut outcomes = Box::pin(outcomes);
        let mut stopped_by = None;
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        let end = loop {
            tokio::select! {
                biased;
                sig = next_signal(&mut signals) => {
                    tracing::info!(signal = sig.name(), "stopping");
                    stopped_by = Some(sig);
                    // Dropping the receiver makes a second signal exit at once.
                    signals = None;
                    let _ = stop_tx.send(true);
                    if let Some(r) = reporter.take() {
                        r.finish();
                    }
                    // The loop goes on: the outcomes that finished are still written, the
                    // cancelled ones (no line) come at once, then the stream ends.
                }
                next = outcomes.next() => {
                    let Some(outcome) = next else { break End::Done };
                    if let Err(e) = sink.write(outcome, &mut summary).await {
                        break End::write_failed(e);
                    }
                }
                _ = flush.tick() => {
                    if let Err(e) = sink.output.flush().await {
                        break End::write_failed(e);
                    }
                    if let Some(filtered) = &mut sink.filtered {
                        if let Err(e) = filtered.flush().await {
                            break End::write_failed(e);
                        }
                    }
                }
            }
        };
        // Dropping the fan-out stops the input and cancels the requests in flight (after an
        // output error; otherwise it has ended).
        drop(outcomes);
        // From now on a signal exits at once (the final flush may block on a full pipe).
        drop(signals);
        if let Some(r) = reporter.take() {
            r.finish();
        }
        if let Some(c) = counter {
            c.abort();
        }

        let mut code = if summary.failures > 0 || sink.extras.save_failed {
            EXIT_FAILED
        } else {
            EXIT_OK
        };
        let mut closed = false;
        match end {
            End::OutputClosed => closed = true,
            End::OutputFailed(e) => {
                crate::say(&format!("fastreq: error: cannot write output: {e}"));
                code = EXIT_FAILED;
            }
            End::Done => match finish_outputs(&mut sink).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => closed = true,
                Err(e) => {
                    crate::say(&format!("fastreq: error: cannot write output: {e}"));
                    code = EXIT_FAILED;
                }
            },
        }
        if let Some(e) = read_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            crate::say(&format!(
                "fastreq: error: reading the input failed, the rest of it was not read: {e}"
            ));
            code = EXIT_FAILED;
        }
        if !quiet {
            let why = match (stopped_by, closed) {
                (Some(sig), _) => Some(format!("interrupted by {}", sig.name())),
                (None, true) => Some("output closed".to_owned()),
                (None, false) => None,
            };
            let text = summary.render(started.elapsed(), why.as_deref());
            crate::say(text.trim_end_matches('\n'));
        }
        match stopped_by {
            Some(sig) => sig.exit_code(),
            None if closed => EXIT_OUTPUT_CLOSED,
            None => code,
        }
    }
}

/// Finishes the output, then FILE.filtered.
async fn finish_outputs(sink: &mut Sink) -> std::io::Result<()> {
    sink.output.finish().await?;
    if let Some(filtered) = &mut sink.filtered {
        filtered.finish().await?;
    }
    Ok(())
}

impl Sink {
    /// Records an outcome a status filter dropped: a brief line in FILE.filtered, if any.
    async fn drop_line(&mut self, record: &Record<'_>) -> std::io::Result<()> {
        match &mut self.filtered {
            Some(out) => out.write(record).await,
            None => Ok(()),
        }
    }

    async fn write(
        &mut self,
        outcome: Outcome<Sent, NoResponse>,
        summary: &mut Summary,
    ) -> std::io::Result<()> {
        let index = outcome.index;
        match outcome.result {
            Ok(sent) => {
                let fetched = &sent.fetched;
                let status = fetched.status().as_u16();
                // Percentiles of the time on the wire: waits (rate limits, slots, backoff) are
                // queueing, not latency.
                summary.response(
                    status,
                    fetched.elapsed().saturating_sub(fetched.wait()),
                    fetched.attempts(),
                );
                if !self.filter.keeps(Some(status)) {
                    return self.drop_line(&Record::sent(index, &sent)).await;
                }
                let record = self.extras.sent(index, &sent).await;
                self.output.write(&record).await
            }
            Err(NoResponse::Failed(failed)) => {
                tracing::debug!(index, error = %failed.error, "request failed");
                summary.failure(failed.error.kind().as_str(), failed.attempts, || {
                    failed.error.to_string()
                });
                if !self.filter.keeps(None) {
                    return self.drop_line(&Record::failed(index, &failed)).await;
                }
                let record = self.extras.failed(index, &failed);
                self.output.write(&record).await
            }
            Err(NoResponse::Skipped) => {
                summary.skipped += 1;
                Ok(())
            }
            // Stopped before it finished: no line (a resumed run sends it again).
            Err(NoResponse::Cancelled) => Ok(()),
        }
    }
}

async fn count_total(path: PathBuf, total: Arc<AtomicU64>) {
    let Ok(file) = tokio::fs::File::open(&path).await else {
        return;
    };
    if let Ok(n) = input::count_requests(BufReader::with_capacity(READ_BUFFER, file)).await {
        total.store(n, Ordering::Relaxed);
    }
}

/// A signal that stops a run: SIGINT (Ctrl-C), SIGTERM (`kill`, `timeout`, `docker stop`,
/// systemd) or SIGHUP (the terminal went away).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT, Ctrl-C.
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGHUP.
    Hangup,
}

impl StopSignal {
    /// `SIGINT`, `SIGTERM`, `SIGHUP`.
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
            StopSignal::Hangup => "SIGHUP",
        }
    }

    /// 128 + the signal's number, as a shell reports a process it killed: 130, 143, 129.
    pub fn exit_code(self) -> i32 {
        128 + match self {
            StopSignal::Hangup => 1,
            StopSignal::Interrupt => 2,
            StopSignal::Terminate => 15,
        }
    }
}

/// The handlers of the stop signals, installed when created (before any request), so that
/// from then on these signals never kill the process abruptly.
pub(crate) struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
    #[cfg(windows)]
    ctrl_c: tokio::signal::windows::CtrlC,
}

impl Signals {
    pub(crate) fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
                hangup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(windows)]
        {
            Ok(Signals {
                ctrl_c: tokio::signal::windows::ctrl_c()?,
            })
        }
        #[cfg(not(any(unix, windows)))]
        Ok(Signals {})
    }

    async fn recv(&mut self) -> Option<StopSignal> {
        #[cfg(unix)]
        return tokio::select! {
            Some(()) = self.interrupt.recv() => Some(StopSignal::Interrupt),
            Some(()) = self.terminate.recv() => Some(StopSignal::Terminate),
            Some(()) = self.hangup.recv() => Some(StopSignal::Hangup),
            else => None,
        };
        #[cfg(windows)]
        return self.ctrl_c.recv().await.map(|()| StopSignal::Interrupt);
        #[cfg(not(any(unix, windows)))]
        std::future::pending().await
    }

    /// Watches in a task: the first signal goes to the receiver returned (the run stops,
    /// flushes and prints its summary); a signal that finds it gone or still full (a second
    /// one, or one during the final flush) exits at once, in case that is stuck on a
    /// blocked output.
    pub(crate) fn watch(mut self) -> mpsc::Receiver<StopSignal> {
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            while let Some(sig) = self.recv().await {
                if tx.try_send(sig).is_err() {
                    std::process::exit(sig.exit_code());
                }
            }
        });
        rx
    }
}
