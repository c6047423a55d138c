//! `fastreq`: the command-line tool (feature `cli`). See `fastreq fetch --help` and
//! design §9 for the contract: flags, JSON lines and exit codes.
#![forbid(unsafe_code)]

mod args;
mod client;
mod filter;
mod input;
mod logging;
mod output;
mod progress;
mod queue;
mod resume;
mod run;
mod service;
mod summary;

use clap::Parser as _;

use crate::args::{Cli, Command};

fn main() {
    // Usage errors: clap prints them and exits with status 2; --help and --version exit 0.
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.log_format);
    let threads = match &cli.command {
        Command::Fetch(args) => args.threads,
        Command::Enqueue(_) | Command::Results(_) => 1,
    };
    // One thread by default: measured faster than a multi-thread runtime (BENCHMARKS.md,
    // "CLI throughput"); input and output have threads of their own.
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            say(&format!(
                "fastreq: error: cannot start the async runtime: {e}"
            ));
            std::process::exit(run::EXIT_FAILED);
        }
    };
    let code = match cli.command {
        Command::Fetch(args) if args.queue.is_some() => {
            runtime.block_on(queue::work(*args, cli.verbose))
        }
        Command::Fetch(args) => runtime.block_on(run::fetch(*args, cli.verbose)),
        Command::Enqueue(args) => runtime.block_on(queue::enqueue(args)),
        Command::Results(args) => runtime.block_on(queue::results(args)),
    };
    // A blocking read of stdin (tokio reads it on a blocking thread) must not delay the exit.
    runtime.shutdown_background();
    std::process::exit(code);
}

/// Writes `line` and a newline to stderr. Unlike `eprintln!` it never panics: stderr may be
/// gone (a closed terminal after SIGHUP, a closed pipe), and then there is no one to tell.
pub fn say(line: &str) {
    use std::io::Write as _;
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.write_all(b"\n");
    let _ = err.flush();
}
