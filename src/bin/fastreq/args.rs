//! Command-line arguments (clap derive). The flags follow design §9 exactly.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Exit status: 0 every request got an HTTP response (any status); 1 some failed (including input
lines that are not valid requests); 2 usage error, bad flag value, unreadable input or (with
--resume) an input that no longer matches the output, before any request; 129, 130, 143 stopped
by SIGHUP, SIGINT (Ctrl-C), SIGTERM; 141 the output was closed (e.g. `| head`).

Run `fastreq fetch --help` for the input and output formats.";

const FETCH_AFTER_HELP: &str = "\
Input: one request per line, a URL or a JSON object
  {\"method\":\"POST\",\"url\":\"https://…\",\"headers\":{\"K\":\"V\"},\"body\":\"…\"}
A URL without a scheme that starts with a host (`127.0.0.1:8080/get`, `example.com/a`,
`[::1]:8080/`) is fetched over plain http://, as curl does; write https:// to get TLS. Blank lines and lines starting with
'#' are skipped. -X, -H and -d are defaults for every line
(a JSON line's own method, headers and body win); -d without -X means POST. Any other line that
is not a valid request gives an `invalid_request` outcome and the run goes on.

Output: one JSON object per request line, in completion order (input order with --ordered):
  {\"index\":0,\"url\":\"…\",\"final_url\":\"…\",\"status\":200,\"elapsed_ms\":1.7,\"wait_ms\":0.0,
   \"attempts\":1,\"bytes\":200,\"version\":\"http/1.1\",\"proxy\":null,\"error\":null}
version is the response's HTTP version: \"http/1.0\", \"http/1.1\", \"h2\", \"h3\" (--http3); null on failure.
elapsed_ms is the whole outcome, from sending to the end of the body (or the failure), retries
included; wait_ms is the part of it spent waiting rather than on the wire: for a per-host rate
or a retry's rate token, a per-host slot, a proxy to recover, and retry backoff (waiting for a
global --rate token or a -c slot before a request starts is not part of either).
On failure \"status\":null and \"error\":{\"kind\":\"timeout\",\"message\":\"…\"}. URLs are redacted.
--header-fields/--include-headers add \"headers\":{\"content-type\":\"…\"} (null on failure).
--format csv writes a header row, then one row per outcome (RFC 4180 quoting, CRLF).
--match-status/--filter-status drop lines, never outcomes: the summary and the exit status count
every request, and with -o FILE the dropped ones are recorded in FILE.filtered as brief lines
{\"index\":…,\"url\":…,\"status\":404,\"error\":null} so that --resume does not run them again.

Progress (stderr): auto draws a bar on a terminal, prints a plain line every 2 s otherwise (also
with -v), and shows nothing while the JSON lines scroll on the terminal. Its req/s is the rate
of the last 5 s, and the ETA follows it (a slow tail of retries shows as a falling rate);
\"in flight\" counts the requests on the wire, \"waiting\" those started but waiting for a
per-host rate token or slot, a proxy, or a retry's backoff. A summary (counts by
status and error kind with one example message per kind, how many requests were retried,
req/s, p50/p90/p99 of the responses' time on the wire, elapsed_ms - wait_ms) ends the run; -q silences
progress and summary (not errors or warnings).
Logs: -v info, -vv debug, -vvv trace; with -v, RUST_LOG (when set) picks the filter instead.

Resume (--resume -o FILE): the outcomes already in FILE are kept and their requests are not sent
again; the others run and their lines are appended, so FILE ends with exactly one line per
request. A torn last line (the run was killed, the machine lost power) is removed and its request
runs again. Failed outcomes are kept (not re-run) unless --retry-failed: their lines are then
removed first (FILE is rewritten to a temporary file and renamed over it, atomically) and the
requests run again. INPUT must be a file, the one of the first run: if the URL at an index
differs from the one recorded in FILE, nothing runs and the exit status is 2. Each run appends
its lines in its own order (--ordered orders them within the run): sort by \"index\" to read
FILE in input order. Without FILE yet, the run starts from the beginning. Outcomes recorded in
FILE.filtered (dropped by a status filter) count as done too, whatever the filters of the
resumed run; --resume needs --format jsonl. The summary and the
exit status cover this run's requests; the summary also says how many were skipped.

Stopping: SIGINT (Ctrl-C), SIGTERM and SIGHUP stop the run the same way: no more input is read,
requests in flight are cancelled, every outcome already finished is written and flushed (with
--ordered too, still in input order, with gaps), the summary is printed; a second signal exits
at once. A closed output (`fastreq fetch big.txt | head -1`) stops the run quietly: requests in
flight are cancelled, no error is printed.

Work queue (--redis URL --queue NAME, instead of INPUT): a worker of a queue filled by
`fastreq enqueue`, on any machine. It takes requests lazily (at most 4 x -c ahead), sends each
through the same preset, writes its JSON line (\"index\" = the line's index in the enqueued
input) to -o FILE if given (appended) and to the queue's results, and acknowledges it only
then. What a worker held when it died (even by SIGKILL) is taken over by the others after
--claim-idle; a request whose workers died 5 times gets a \"queue\" error instead of a 6th
try. While Redis is unreachable the worker warns, retries with a backoff (at most 5 s) and
resumes. It stops when the queue is drained (enqueue finished, nothing left or pending), or
waits for more with --follow. --rate/--per-host-rate are shared by all the queue's workers
(while Redis is unreachable those requests fail with rate_limiter errors: never over quota).
Not with --ordered, --resume, --format csv, --match-status, --filter-status. Collect with
`fastreq results --redis URL --queue NAME -o all.jsonl`.

Exit status: 0 every request got an HTTP response (any status); 1 some failed; 2 usage error,
bad flag value, unreadable input, or --resume on an input that changed (before any request);
130 SIGINT, 143 SIGTERM, 129 SIGHUP (128 + the signal); 141 the output was closed (128 +
SIGPIPE, what a shell reports for `yes | head`).";

/// `fastreq`: many HTTP requests in parallel, politely and reliably.
#[derive(Debug, Parser)]
#[command(
    name = "fastreq",
    version,
    about = "Many HTTP requests in parallel, politely and reliably",
    after_help = AFTER_HELP,
    arg_required_else_help = true,
    propagate_version = true
)]
pub struct Cli {
    /// Logs on stderr: -v info plus retries, give-ups and proxy events, -vv debug, -vvv trace
    /// [default: only the "all proxies down, waiting" and "Redis failed / answers again" warnings]
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count, global = true, help_heading = "Progress and logs")]
    pub verbose: u8,

    /// Log format
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true, value_name = "FORMAT", help_heading = "Progress and logs")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch every request of INPUT (a file, `-` or absent for stdin); JSON lines out
    #[command(after_help = FETCH_AFTER_HELP)]
    Fetch(Box<FetchArgs>),
    /// Put the requests of INPUT (a file, `-` or absent for stdin) on a shared work queue
    /// in Redis, for workers on any machine (`fastreq fetch --redis URL --queue NAME`)
    #[command(after_help = crate::queue::ENQUEUE_AFTER_HELP)]
    Enqueue(crate::queue::EnqueueArgs),
    /// Write the outcomes of a shared work queue, one JSON line per input index, and say
    /// how many are missing
    #[command(after_help = crate::queue::RESULTS_AFTER_HELP)]
    Results(crate::queue::ResultsArgs),
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per event.
    Json,
}

/// Progress display on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    /// A bar on a terminal, plain lines otherwise (none while JSON lines go to the terminal).
    Auto,
    /// An indicatif bar (plain lines when stderr is not a terminal).
    Bar,
    /// A plain line every 2 seconds.
    Plain,
    /// Nothing.
    None,
}

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

/// How requests pick a proxy of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProxyStrategyArg {
    /// Each request takes the next proxy.
    RoundRobin,
    /// Each request takes a proxy at random.
    Random,
    /// One proxy per host.
    Sticky,
}

/// What a request does when every proxy of the pool is cooling down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WhenAllDownArg {
    /// Wait for the first proxy to recover, bounded by the request's timeout.
    Wait,
    /// Fail at once with `no_proxy_available`.
    Fail,
    /// Send the request directly: this exposes your own address to the target.
    Direct,
}

/// `fastreq fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// File of requests, one per line; `-` or absent: stdin
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,

    // ---- Work queue
    /// Redis URL of a shared work queue (redis://[:password@]host[:port][/db]); with
    /// --queue, this process is a worker of that queue instead of reading INPUT, and
    /// --rate/--per-host-rate are quotas shared by all its workers
    #[arg(
        long,
        value_name = "URL",
        requires = "queue",
        help_heading = "Work queue"
    )]
    pub redis: Option<String>,

    /// Name of the queue (filled by `fastreq enqueue`): take its requests, write each
    /// outcome to -o FILE (if given) and to the queue's results, until it is drained
    #[arg(long, value_name = "NAME", requires = "redis", help_heading = "Work queue",
          conflicts_with_all = ["input", "ordered", "resume", "match_status", "filter_status"])]
    pub queue: Option<String>,

    /// With --queue: do not stop when the queue is drained; wait for more work (stop with
    /// Ctrl-C or SIGTERM)
    #[arg(long, requires = "queue", help_heading = "Work queue")]
    pub follow: bool,

    /// With --queue: take over the requests of a worker that has not been heard of for S
    /// seconds (it died or lost its network); a live worker keeps its own fresh
    #[arg(long, value_name = "S", default_value = "30", value_parser = seconds, requires = "queue", help_heading = "Work queue")]
    pub claim_idle: Duration,

    /// With --queue: a request whose worker died this many times (it was handed out N
    /// times and never finished) gets a "queue" error line instead of another try
    #[arg(long, value_name = "N", default_value = "5", value_parser = positive_u32,
          requires = "queue", help_heading = "Work queue")]
    pub max_deliveries: u32,

    /// With --queue and --rate/--per-host-rate: what the shared quota does while Redis does
    /// not answer: `closed` (those requests fail with rate_limiter errors), `open` (they go
    /// without a limit) or `local:N` (each worker limits itself to rate/N: N workers)
    #[arg(long, value_name = "MODE", default_value = "closed", value_parser = redis_failure,
          requires = "queue", help_heading = "Work queue")]
    pub redis_failure: fastreq::rate_limit::OnRedisFailure,

    // ---- Output
    /// Write the JSON lines to FILE instead of stdout
    #[arg(short = 'o', long, value_name = "FILE", help_heading = "Output")]
    pub output: Option<PathBuf>,

    /// Add "body" (text, lossy UTF-8) to each line
    #[arg(long, help_heading = "Output")]
    pub include_body: bool,

    /// Write each response body to DIR/<index>.body (adds "body_file" to each line)
    #[arg(long, value_name = "DIR", help_heading = "Output")]
    pub save_bodies: Option<PathBuf>,

    /// Output format: jsonl (one JSON object per line) or csv (a header row, then columns
    /// index,url,status,elapsed_ms,wait_ms,bytes,attempts,error_kind,error, quoted as RFC 4180)
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = FormatArg::Jsonl, help_heading = "Output")]
    pub format: FormatArg,

    /// Write a line only for the responses with these statuses: codes and ranges
    /// (`200,301`, `2xx`); failures (no status) are dropped too unless the list has `error`
    #[arg(long, value_name = "LIST", value_parser = crate::filter::parse_statuses, help_heading = "Output")]
    pub match_status: Option<crate::filter::StatusSet>,

    /// Write no line for the responses with these statuses (`404`, `5xx`); failures are kept
    /// unless the list has `error`. Dropped outcomes still count in the summary and the exit
    /// status; with -o FILE they are recorded in FILE.filtered (see Resume below)
    #[arg(long, value_name = "LIST", value_parser = crate::filter::parse_statuses, help_heading = "Output")]
    pub filter_status: Option<crate::filter::StatusSet>,

    /// Add "headers":{"name":"value",…} with these response headers (comma-separated,
    /// case-insensitive; absent ones are left out, repeated ones joined with ", ")
    #[arg(long, value_name = "NAMES", value_delimiter = ',', value_parser = header_name, help_heading = "Output")]
    pub header_fields: Vec<http::HeaderName>,

    /// Add "headers":{…} with every response header (names in lower case)
    #[arg(long, conflicts_with = "header_fields", help_heading = "Output")]
    pub include_headers: bool,

    /// Outcomes in input order (default: completion order). Finished outcomes wait in
    /// memory (bodies included) for the slower ones before them; up to --reorder-window of
    /// them, then new requests wait too. The run is then no slower than unordered unless a
    /// request is slower than the time the window takes to fill (--reorder-window / req/s)
    #[arg(long, help_heading = "Output")]
    pub ordered: bool,

    /// With --ordered: how many requests may start past the oldest unfinished one (in flight
    /// or finished and held back)
    #[arg(long, value_name = "N", default_value = "4096", value_parser = positive_usize, help_heading = "Output")]
    pub reorder_window: usize,

    /// Keep the outcomes already in the -o FILE, run only the others and append their lines
    #[arg(long, requires = "output", help_heading = "Output")]
    pub resume: bool,

    /// With --resume: also run again the requests whose outcome in FILE is a failure
    #[arg(long, requires = "resume", help_heading = "Output")]
    pub retry_failed: bool,

    // ---- Limits
    /// Maximum requests in flight
    #[arg(short = 'c', long, value_name = "N", default_value = "64", value_parser = positive_usize, help_heading = "Limits")]
    pub concurrency: usize,

    /// Threads running requests. 1: one thread (a current-thread runtime), the fastest per
    /// CPU: no cross-thread wake-ups, and on a small machine it leaves the other cores to the
    /// input reader and output writer threads (and to anything else running). N > 1: a
    /// multi-thread runtime with N workers, for big machines where one thread cannot keep up
    /// (many TLS handshakes, HTTP/2, hundreds of hosts); it costs cross-thread wake-ups and
    /// synchronisation per request: on 2 cores, twice the CPU per request and no more
    /// throughput
    #[arg(long, value_name = "N", default_value = "1", value_parser = positive_usize, help_heading = "Limits")]
    pub threads: usize,

    /// Maximum requests in flight to one host [default: off]
    #[arg(long, value_name = "N", value_parser = positive_usize, help_heading = "Limits")]
    pub per_host_concurrency: Option<usize>,

    /// Requests per second, all hosts together, fractions allowed. It counts what reaches
    /// the servers, hops not URLs: every retry and every redirect hop takes a token, so
    /// URLs finish at a lower rate when some are retried or redirected [default: off]
    #[arg(long, value_name = "R", value_parser = positive_f64, help_heading = "Limits")]
    pub rate: Option<f64>,

    /// Burst of the rate limits
    #[arg(long, value_name = "N", default_value = "1", value_parser = positive_u32, help_heading = "Limits")]
    pub burst: u32,

    /// Requests per second to each host, fractions allowed; counts hops as --rate does
    /// (retries and redirect hops take tokens) [default: off]
    #[arg(long, value_name = "R", value_parser = positive_f64, help_heading = "Limits")]
    pub per_host_rate: Option<f64>,

    /// Retries per request (0: none)
    #[arg(long, value_name = "N", default_value = "3", help_heading = "Limits")]
    pub retries: u32,

    /// Also retry non-idempotent methods (POST, PATCH)
    #[arg(long, help_heading = "Limits")]
    pub retry_post: bool,

    /// Timeout per attempt in seconds, fractions allowed (headers, and each pause in the body)
    #[arg(long, value_name = "S", default_value = "30", value_parser = seconds, help_heading = "Limits")]
    pub timeout: Duration,

    /// Deadline for a whole request in seconds, fractions allowed: every attempt, backoff
    /// and wait, body included (as curl's --max-time) [default: none]
    #[arg(long, value_name = "S", value_parser = seconds, help_heading = "Limits")]
    pub max_time: Option<Duration>,

    /// TCP connect timeout in seconds, fractions allowed
    #[arg(long, value_name = "S", default_value = "10", value_parser = seconds, help_heading = "Limits")]
    pub connect_timeout: Duration,

    // ---- Requests
    /// Method for lines that do not give one [default: GET, or POST with -d]
    #[arg(short = 'X', long, value_name = "M", help_heading = "Requests")]
    pub method: Option<String>,

    /// Header for every request, 'Name: value' (repeatable)
    #[arg(
        short = 'H',
        long = "header",
        value_name = "'K: V'",
        help_heading = "Requests"
    )]
    pub headers: Vec<String>,

    /// Body for lines that do not give one; @FILE reads it from FILE
    #[arg(short = 'd', long, value_name = "STR|@FILE", help_heading = "Requests")]
    pub data: Option<String>,

    // ---- Proxies
    /// Proxy URL, http://, https:// or socks5:// (repeatable)
    #[arg(long = "proxy", value_name = "URL", help_heading = "Proxies")]
    pub proxies: Vec<String>,

    /// File of proxy URLs, one per line
    #[arg(long = "proxies", value_name = "FILE", help_heading = "Proxies")]
    pub proxies_file: Option<PathBuf>,

    /// How requests pick a proxy [default: round-robin]
    #[arg(long, value_enum, value_name = "STRATEGY", help_heading = "Proxies")]
    pub proxy_strategy: Option<ProxyStrategyArg>,

    /// When every proxy is cooling down after failures (60 s at first): wait for the first one
    /// to recover, bounded by the request's timeout; fail at once (no_proxy_available); or
    /// send directly, which exposes your own address to the target [default: wait]
    #[arg(long, value_enum, value_name = "POLICY", help_heading = "Proxies")]
    pub when_all_proxies_down: Option<WhenAllDownArg>,

    // ---- Identity
    /// User-Agent for every request [default: fastreq/<version>]
    #[arg(long, value_name = "S", help_heading = "Identity", conflicts_with_all = ["user_agents", "random_user_agent"])]
    pub user_agent: Option<String>,

    /// Rotate at random over the user agents of FILE (one per line)
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Identity",
        conflicts_with = "random_user_agent"
    )]
    pub user_agents: Option<PathBuf>,

    /// Rotate over the built-in list of browser user agents
    #[arg(long, help_heading = "Identity")]
    pub random_user_agent: bool,

    // ---- Behaviour
    /// Follow at most N redirects (0: none)
    #[arg(
        long,
        value_name = "N",
        default_value = "10",
        help_heading = "Behaviour"
    )]
    pub max_redirects: u32,

    /// Do not follow redirects (3xx responses are reported as they are)
    #[arg(long, help_heading = "Behaviour")]
    pub no_redirects: bool,

    /// No cookie jar. By default one jar is shared by the whole run: a cookie set by a
    /// response goes with every later request to that site, whichever input line it comes
    /// from (a session); --no-cookies sends none
    #[arg(long, help_heading = "Behaviour")]
    pub no_cookies: bool,

    /// HTTP/1.1 only (default: HTTP/2 when the server offers it over TLS)
    #[arg(long, help_heading = "Behaviour")]
    pub http1_only: bool,

    /// HTTP/3 over QUIC for https:// URLs, with prior knowledge: the servers must speak h3
    /// (UDP); http:// URLs still go over TCP, and proxies cannot carry QUIC (an https://
    /// URL through --proxies fails with a config error). Lines show "version":"h3"
    #[arg(long, help_heading = "Behaviour", conflicts_with = "http1_only")]
    pub http3: bool,

    /// Also trust the CA certificates of FILE (PEM, one or more), besides the built-in
    /// roots, as curl's --cacert does (e.g. a private CA, a test server)
    #[arg(long, value_name = "FILE", help_heading = "Behaviour")]
    pub cacert: Option<PathBuf>,

    /// DANGEROUS: do not verify TLS certificates or host names
    #[arg(long, help_heading = "Behaviour")]
    pub insecure_skip_tls_verify: bool,

    // ---- Progress
    /// Progress on stderr
    #[arg(long, value_enum, value_name = "MODE", default_value_t = ProgressArg::Auto, help_heading = "Progress and logs")]
    pub progress: ProgressArg,

    /// No progress and no summary
    #[arg(short = 'q', long, help_heading = "Progress and logs")]
    pub quiet: bool,
}

fn header_name(s: &str) -> Result<http::HeaderName, String> {
    http::HeaderName::from_bytes(s.trim().as_bytes())
        .map_err(|_| format!("`{s}` is not a header name"))
}

pub fn positive_usize(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1 (got 0)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

fn positive_u32(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(0) => Err("must be at least 1 (got 0)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a whole number up to {}", u32::MAX)),
    }
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        Ok(_) => Err(format!("must be a number above 0 (got {s})")),
        Err(_) => Err(format!("`{s}` is not a number")),
    }
}

/// `closed`, `open` or `local:N` (N ≥ 1).
pub fn redis_failure(s: &str) -> Result<fastreq::rate_limit::OnRedisFailure, String> {
    use fastreq::rate_limit::OnRedisFailure;
    match s {
        "closed" => Ok(OnRedisFailure::FailClosed),
        "open" => Ok(OnRedisFailure::FailOpen),
        _ => match s.strip_prefix("local:").map(str::parse::<u32>) {
            Some(Ok(processes)) if processes >= 1 => Ok(OnRedisFailure::Local { processes }),
            _ => Err(format!(
                "`{s}` is not a failure mode: closed, open or local:N (N workers, at least 1)"
            )),
        },
    }
}

pub fn seconds(s: &str) -> Result<Duration, String> {
    let secs = positive_f64(s)?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s} seconds is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_follow_the_contract() {
        let cli = Cli::try_parse_from(["fastreq", "fetch"]).unwrap();
        let Command::Fetch(a) = cli.command else {
            panic!("not fetch")
        };
        assert_eq!(a.concurrency, 64);
        assert_eq!(a.burst, 1);
        assert_eq!(a.retries, 3);
        assert_eq!(a.max_redirects, 10);
        assert_eq!(a.timeout, Duration::from_secs(30));
        assert_eq!(a.connect_timeout, Duration::from_secs(10));
        assert_eq!(a.progress, ProgressArg::Auto);
        assert!(a.rate.is_none() && a.per_host_rate.is_none() && a.input.is_none());
        assert_eq!(cli.verbose, 0);
        assert_eq!(cli.log_format, LogFormat::Text);
    }

    #[test]
    fn values_are_checked() {
        for bad in [
            &["fastreq", "fetch", "-c", "0"][..],
            &["fastreq", "fetch", "--rate", "0"],
            &["fastreq", "fetch", "--rate", "NaN"],
            &["fastreq", "fetch", "--rate", "inf"],
            &["fastreq", "fetch", "--timeout", "-1"],
            &["fastreq", "fetch", "--burst", "0"],
            &["fastreq", "fetch", "--progress", "fancy"],
            &["fastreq", "fetch", "--proxy-strategy", "lucky"],
            &[
                "fastreq",
                "fetch",
                "--user-agent",
                "a",
                "--random-user-agent",
            ],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
        let cli = Cli::try_parse_from([
            "fastreq",
            "fetch",
            "-vv",
            "--timeout",
            "0.25",
            "--rate",
            "2.5",
            "-H",
            "A: 1",
            "-H",
            "B: 2",
            "--proxy-strategy",
            "round-robin",
        ])
        .unwrap();
        let Command::Fetch(a) = cli.command else {
            panic!("not fetch")
        };
        assert_eq!(cli.verbose, 2);
        assert_eq!(a.timeout, Duration::from_millis(250));
        assert_eq!(a.rate, Some(2.5));
        assert_eq!(a.headers, ["A: 1", "B: 2"]);
        assert_eq!(a.proxy_strategy, Some(ProxyStrategyArg::RoundRobin));
    }

    #[test]
    fn queue_flags() {
        let cli = Cli::try_parse_from([
            "fastreq",
            "fetch",
            "--redis",
            "redis://127.0.0.1/",
            "--queue",
            "q",
            "--follow",
            "--claim-idle",
            "1.5",
        ])
        .unwrap();
        let Command::Fetch(a) = cli.command else {
            panic!("not fetch")
        };
        assert_eq!(
            (a.redis.as_deref(), a.queue.as_deref()),
            (Some("redis://127.0.0.1/"), Some("q"))
        );
        assert!(a.follow);
        assert_eq!(a.claim_idle, Duration::from_millis(1500));
        assert_eq!(
            a.redis_failure,
            fastreq::rate_limit::OnRedisFailure::FailClosed
        );
        for (text, mode) in [
            ("open", fastreq::rate_limit::OnRedisFailure::FailOpen),
            (
                "local:4",
                fastreq::rate_limit::OnRedisFailure::Local { processes: 4 },
            ),
        ] {
            let cli = Cli::try_parse_from([
                "fastreq",
                "fetch",
                "--redis",
                "redis://127.0.0.1/",
                "--queue",
                "q",
                "--redis-failure",
                text,
            ])
            .unwrap();
            let Command::Fetch(a) = cli.command else {
                panic!("not fetch")
            };
            assert_eq!(a.redis_failure, mode);
        }
        for bad in ["local:0", "local", "local:x", "half"] {
            let err = redis_failure(bad).unwrap_err();
            assert!(err.contains(bad) && err.contains("local:N"), "{err}");
        }
        let cli = Cli::try_parse_from(["fastreq", "fetch"]).unwrap();
        let Command::Fetch(a) = cli.command else {
            panic!("not fetch")
        };
        assert_eq!(a.claim_idle, Duration::from_secs(30));
        for bad in [
            &["fastreq", "fetch", "--queue", "q"][..],
            &["fastreq", "fetch", "--redis", "redis://h/"],
            &[
                "fastreq",
                "fetch",
                "in.txt",
                "--redis",
                "redis://h/",
                "--queue",
                "q",
            ],
            &[
                "fastreq",
                "fetch",
                "--redis",
                "redis://h/",
                "--queue",
                "q",
                "--resume",
                "-o",
                "x",
            ],
            &[
                "fastreq",
                "fetch",
                "--redis",
                "redis://h/",
                "--queue",
                "q",
                "--claim-idle",
                "0",
            ],
            &["fastreq", "enqueue", "in.txt", "--redis", "redis://h/"],
            &["fastreq", "results", "--queue", "q"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
        assert!(Cli::try_parse_from([
            "fastreq",
            "enqueue",
            "--redis",
            "redis://h/",
            "--queue",
            "q"
        ])
        .is_ok());
    }

    #[test]
    fn resume_deadline_and_proxy_policy_flags() {
        let cli = Cli::try_parse_from(["fastreq", "fetch"]).unwrap();
        let Command::Fetch(a) = cli.command else {
            panic!("not fetch")
        };
        assert!(!a.resume && !a.retry_failed);
        assert_eq!((a.max_time, a.when_all_proxies_down), (None, None));

        let cli = Cli::try_parse_from([
            "fastreq",
            "fetch",
            "in.txt",
            "-o",
            "out.jsonl",
            "--resume",
            "--retry-failed",
            "--max-time",
            "2.5",
            "--when-all-proxies-down",
            "direct",
        ])
        .unwrap();
        let Command::Fetch(a) = cli.command else {
            panic!("not fetch")
        };
        assert!(a.resume && a.retry_failed);
        assert_eq!(a.max_time, Some(Duration::from_millis(2500)));
        assert_eq!(a.when_all_proxies_down, Some(WhenAllDownArg::Direct));
        for bad in [
            &["fastreq", "fetch", "--resume"][..],
            &["fastreq", "fetch", "-o", "x", "--retry-failed"],
            &["fastreq", "fetch", "--max-time", "0"],
            &["fastreq", "fetch", "--max-time", "soon"],
            &["fastreq", "fetch", "--when-all-proxies-down", "later"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
        for (value, want) in [
            ("wait", WhenAllDownArg::Wait),
            ("fail", WhenAllDownArg::Fail),
            ("direct", WhenAllDownArg::Direct),
        ] {
            let cli = Cli::try_parse_from(["fastreq", "fetch", "--when-all-proxies-down", value])
                .unwrap();
            let Command::Fetch(a) = cli.command else {
                panic!("not fetch")
            };
            assert_eq!(a.when_all_proxies_down, Some(want));
        }
    }
}
