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
use tokio::io::{AsyncBufRead, BufReader};
use tokio::sync::Notify;

use crate::args::FetchArgs;
use crate::input::{self, Defaults, ReadError};
use crate::output::{save_body, Output, Record};
use crate::progress::{self, Mode, Reporter, UNKNOWN};
use crate::service::{Failed, Sent, Timed};
use crate::summary::Summary;

/// Exit status: every request got an HTTP response.
pub const EXIT_OK: i32 = 0;
/// Exit status: some requests failed (or input lines were invalid, or output failed).
pub const EXIT_FAILED: i32 = 1;
/// Exit status: usage error, before any request.
pub const EXIT_USAGE: i32 = 2;
/// Exit status: interrupted by Ctrl-C (128 + SIGINT).
pub const EXIT_INTERRUPTED: i32 = 130;

const READ_BUFFER: usize = 64 * 1024;
const FLUSH_EVERY: Duration = Duration::from_millis(500);

type Reader = Box<dyn AsyncBufRead + Unpin + Send>;

/// Everything checked and opened, ready to run.
struct Job {
    client: Client,
    defaults: Arc<Defaults>,
    reader: Reader,
    input_path: Option<PathBuf>,
    sink: Sink,
    ordered: bool,
    mode: Mode,
    quiet: bool,
    interrupts: Option<Interrupts>,
}

/// Where outcomes go.
struct Sink {
    output: Output,
    save_dir: Option<PathBuf>,
    include_body: bool,
    save_failed: bool,
}

/// Runs `fastreq fetch`; returns the exit status.
pub async fn fetch(args: FetchArgs, verbose: u8) -> i32 {
    match prepare(args, verbose).await {
        Ok(job) => job.run().await,
        Err(message) => {
            eprintln!("fastreq: error: {message}");
            EXIT_USAGE
        }
    }
}

async fn open_input(path: Option<&Path>, quiet: bool) -> Result<(Reader, Option<PathBuf>), String> {
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
            let file = tokio::fs::File::open(p)
                .await
                .map_err(|e| format!("cannot read input `{shown}`: {e}"))?;
            Ok((
                Box::new(BufReader::with_capacity(READ_BUFFER, file)),
                Some(p.to_owned()),
            ))
        }
    }
}

fn stdin_reader(quiet: bool) -> Reader {
    if !quiet && std::io::stdin().is_terminal() {
        eprintln!("fastreq: reading requests from the terminal, one per line (Ctrl-D to end)");
    }
    Box::new(BufReader::with_capacity(READ_BUFFER, tokio::io::stdin()))
}

async fn prepare(args: FetchArgs, verbose: u8) -> Result<Job, String> {
    let defaults = crate::client::defaults(&args)?;
    let client = crate::client::build_client(&args)?;
    let (reader, input_path) = open_input(args.input.as_deref(), args.quiet).await?;
    let output = match &args.output {
        None => Output::new(tokio::io::stdout()),
        Some(p) => {
            if let (Some(input), Ok(out)) = (&input_path, std::fs::canonicalize(p)) {
                if std::fs::canonicalize(input).is_ok_and(|i| i == out) {
                    return Err(format!(
                        "the output `{}` is the input: it would be overwritten",
                        p.display()
                    ));
                }
            }
            let file = tokio::fs::File::create(p)
                .await
                .map_err(|e| format!("cannot create output `{}`: {e}", p.display()))?;
            Output::new(file)
        }
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
        eprintln!(
            "fastreq: WARNING: --insecure-skip-tls-verify: TLS certificates and host names are \
             NOT verified; anyone on the network path can read and change this traffic"
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
        "fetch starting"
    );
    Ok(Job {
        client,
        defaults: Arc::new(defaults),
        reader,
        input_path,
        sink: Sink {
            output,
            save_dir: args.save_bodies,
            include_body: args.include_body,
            save_failed: false,
        },
        ordered: args.ordered,
        mode,
        quiet: args.quiet,
        interrupts: match Interrupts::install() {
            Ok(i) => Some(i),
            Err(e) => {
                tracing::warn!(error = %e, "cannot handle Ctrl-C");
                None
            }
        },
    })
}

/// How the loop over outcomes ended.
enum End {
    Done,
    Interrupted,
    OutputFailed(std::io::Error),
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
            mode,
            quiet,
            interrupts,
        } = self;
        let started = Instant::now();
        let read_error = ReadError::default();
        let requests = input::requests(reader, defaults, read_error.clone());
        let service = Timed::new(fastreq::Fetch::new(client.clone()));
        let mut outcomes = fastreq::fan_out_stream(service, requests).limit(client.fan_out_limit());
        if ordered {
            outcomes = outcomes.ordered();
        }

        let total = Arc::new(AtomicU64::new(UNKNOWN));
        let counter = match (&input_path, mode) {
            (Some(path), Mode::Bar | Mode::Plain) => {
                Some(tokio::spawn(count_total(path.clone(), total.clone())))
            }
            _ => None,
        };
        let reporter = Reporter::start(mode, outcomes.progress(), total, started);

        let mut summary = Summary::default();
        let mut outcomes = Box::pin(outcomes);
        let interrupt = Arc::new(Notify::new());
        let signals = interrupts.map(|i| tokio::spawn(i.watch(interrupt.clone())));
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        let end = loop {
            tokio::select! {
                biased;
                _ = interrupt.notified() => break End::Interrupted,
                next = outcomes.next() => {
                    let Some(outcome) = next else { break End::Done };
                    if let Err(e) = sink.write(outcome, &mut summary).await {
                        break End::OutputFailed(e);
                    }
                }
                _ = flush.tick() => {
                    if let Err(e) = sink.output.flush().await {
                        break End::OutputFailed(e);
                    }
                }
            }
        };
        // Dropping the fan-out stops the input and cancels the requests in flight.
        drop(outcomes);
        reporter.finish();
        if let Some(c) = counter {
            c.abort();
        }
        // After a Ctrl-C the signal task stays, so that a second one exits at once.
        if !matches!(end, End::Interrupted) {
            if let Some(s) = signals {
                s.abort();
            }
        }

        let mut code = if summary.failures > 0 || sink.save_failed {
            EXIT_FAILED
        } else {
            EXIT_OK
        };
        let flushed = sink.output.flush().await;
        let interrupted = matches!(end, End::Interrupted);
        match end {
            End::OutputFailed(e) => {
                eprintln!("fastreq: error: cannot write output: {e}");
                code = EXIT_FAILED;
            }
            _ => {
                if let Err(e) = flushed {
                    eprintln!("fastreq: error: cannot write output: {e}");
                    code = EXIT_FAILED;
                }
            }
        }
        if let Some(e) = read_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            eprintln!("fastreq: error: reading the input failed, the rest of it was not read: {e}");
            code = EXIT_FAILED;
        }
        if !quiet {
            eprint!("{}", summary.render(started.elapsed(), interrupted));
        }
        if interrupted {
            EXIT_INTERRUPTED
        } else {
            code
        }
    }
}

impl Sink {
    async fn write(
        &mut self,
        outcome: Outcome<Sent, Failed>,
        summary: &mut Summary,
    ) -> std::io::Result<()> {
        let index = outcome.index;
        match outcome.result {
            Ok(sent) => {
                let fetched = &sent.fetched;
                summary.response(fetched.status().as_u16(), fetched.elapsed());
                let mut record = Record::sent(index, &sent);
                if self.include_body {
                    record.body = Some(Some(String::from_utf8_lossy(fetched.body())));
                }
                if let Some(dir) = &self.save_dir {
                    record.body_file = Some(match save_body(dir, index, fetched.body()).await {
                        Ok(path) => Some(path.display().to_string()),
                        Err(e) => {
                            eprintln!(
                                "fastreq: error: cannot save the body of request {index}: {e}"
                            );
                            self.save_failed = true;
                            None
                        }
                    });
                }
                self.output.write(&record).await
            }
            Err(failed) => {
                tracing::debug!(index, error = %failed.error, "request failed");
                summary.failure(failed.error.kind().as_str());
                let mut record = Record::failed(index, &failed);
                if self.include_body {
                    record.body = Some(None);
                }
                if self.save_dir.is_some() {
                    record.body_file = Some(None);
                }
                self.output.write(&record).await
            }
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

/// The Ctrl-C handler, installed when created (before any request), so that from then on
/// Ctrl-C never kills the process abruptly.
struct Interrupts {
    #[cfg(unix)]
    inner: tokio::signal::unix::Signal,
    #[cfg(windows)]
    inner: tokio::signal::windows::CtrlC,
}

impl Interrupts {
    fn install() -> std::io::Result<Self> {
        Ok(Interrupts {
            #[cfg(unix)]
            inner: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?,
            #[cfg(windows)]
            inner: tokio::signal::windows::ctrl_c()?,
        })
    }

    async fn recv(&mut self) -> Option<()> {
        #[cfg(any(unix, windows))]
        return self.inner.recv().await;
        #[cfg(not(any(unix, windows)))]
        std::future::pending().await
    }

    /// The first Ctrl-C wakes `interrupted` (the run stops, flushes and prints its
    /// summary); a second one exits at once, in case that is stuck on a blocked output.
    async fn watch(mut self, interrupted: Arc<Notify>) {
        if self.recv().await.is_none() {
            return;
        }
        interrupted.notify_one();
        if self.recv().await.is_some() {
            std::process::exit(EXIT_INTERRUPTED);
        }
    }
}
