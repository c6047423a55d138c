//! Fault soak: N requests (env `FASTREQ_SOAK_N`, default 5,000; the full size is 100,000)
//! through the preset (`fastreq::stack()`, fanned out as a user would) against local
//! servers that inject faults by a seeded schedule (`soak/plan.rs`): resets before and
//! after headers, truncated bodies, bad chunked encoding, slow headers, slow-drip bodies,
//! 429/503 with `Retry-After` (seconds, HTTP-date, huge), refused connections, and HTTP/2
//! `REFUSED_STREAM` and `GOAWAY` (h2c, the `h2` crate's server side).
//!
//! Asserts: exactly one outcome per input; the status or error kind and the attempt count
//! each input's fault calls for (so retries happen only where allowed: a POST is sent again
//! only when the server never processed it); that the servers saw exactly those attempts
//! (the GOAWAY server: no POST processed twice); a bounded wall time; a bounded
//! growth of the resident memory. Prints the figures.
//!
//! Real time on loopback (the point is real sockets under load), with small timeouts.
//!
//! ```text
//! FASTREQ_SOAK_N=100000 cargo test --release --all-features --test soak -- --nocapture
//! ```

#[path = "soak/h1.rs"]
mod h1;
#[path = "soak/h2.rs"]
mod h2srv;
#[path = "soak/plan.rs"]
mod plan;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use fastreq::ext::Deadline;
use fastreq::{Error, Fetched, RequestBuilder};
use futures::StreamExt;
use tokio::net::TcpListener;
use tokio::time::Instant;

use h1::Seen;
use plan::{Expect, Fault, Plan, Transport};

/// Resident memory may grow by at most this much over the run.
const MAX_RSS_GROWTH: u64 = 64 << 20;

fn soak_n() -> usize {
    std::env::var("FASTREQ_SOAK_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000)
}

/// `VmRSS` and `VmHWM` (peak) of this process, in bytes.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

struct Bases {
    h1: String,
    closed: String,
    h2: String,
    goaway: String,
}

fn request(p: &Plan, bases: &Bases) -> RequestBuilder {
    let base = match p.fault.transport() {
        Transport::H1 => &bases.h1,
        Transport::Closed => &bases.closed,
        Transport::H2 => &bases.h2,
        Transport::GoAway => &bases.goaway,
    };
    let url = format!("{base}{}", p.path());
    let mut req = if p.post {
        fastreq::post(url).body(p.post_body())
    } else {
        fastreq::get(url)
    };
    match p.fault {
        Fault::SlowHeaders => req = req.timeout(plan::SLOW_HOP),
        Fault::SlowDrip => req = req.extension(Deadline::after(plan::DRIP_DEADLINE)),
        Fault::GoAway => req = req.retries(plan::GOAWAY_RETRIES),
        _ => {}
    }
    req
}

/// Figures of one fault kind.
#[derive(Default)]
struct Tally {
    inputs: u64,
    ok: u64,
    statuses: u64,
    errors: u64,
    attempts: u64,
}

/// Checks one outcome against its plan; returns the attempts it took.
fn check(p: &Plan, result: &Result<Fetched, Error>, seen: &Seen) -> Result<u32, String> {
    let (attempts, got) = match result {
        Ok(f) => (f.attempts(), format!("status {}", f.status().as_u16())),
        Err(e) => (
            e.attempts().unwrap_or(1),
            format!("{:?} error: {e}", e.kind()),
        ),
    };
    let fail = |why: &str| Err(format!("{p:?}: {why}; got {got} after {attempts} attempts"));
    match (p.expect(), result) {
        (Expect::Ok(n), Ok(f)) if f.status() == 200 && attempts == n => {
            if f.body() != p.body().as_bytes() {
                return fail("wrong body");
            }
        }
        (Expect::OkAtLeast(n), Ok(f)) if f.status() == 200 && attempts >= n => {
            if f.body() != p.body().as_bytes() {
                return fail("wrong body");
            }
        }
        (Expect::Status(code, n), Ok(f)) if f.status() == code && attempts == n => {}
        (Expect::Err(kind, n), Err(e)) if e.kind() == kind && attempts == n => {}
        (Expect::OkOrErrOnce(_), Ok(f)) if f.status() == 200 && attempts == 1 => {
            if f.body() != p.body().as_bytes() {
                return fail("wrong body");
            }
        }
        (Expect::OkOrErrOnce(kind), Err(e)) if e.kind() == kind && attempts == 1 => {}
        (want, _) => return fail(&format!("expected {want:?}")),
    }
    // The server's view: every attempt reached it. An attempt that timed out may have timed
    // out before the loaded server read it: there, at most `attempts`. The GOAWAY server
    // counts the streams it processed: at most one per POST (a POST is never processed
    // twice), one for an answered POST, at least one for a GET.
    let server = seen.get(p.index);
    if p.fault == Fault::GoAway {
        let ok = match (p.post, result.is_ok()) {
            (true, true) => server == 1,
            (true, false) => server <= 1,
            (false, _) => (1..=attempts).contains(&server),
        };
        if !ok {
            return fail(&format!("the GOAWAY server processed it {server} times"));
        }
        return Ok(attempts);
    }
    let (want, at_most) = match p.fault {
        Fault::Refused => (0, false),
        Fault::SlowHeaders | Fault::SlowDrip => (attempts, true),
        _ => (attempts, false),
    };
    if server != want && !(at_most && server < want) {
        return fail(&format!(
            "the server saw {server} attempts, expected {want}"
        ));
    }
    Ok(attempts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_soak() {
    let n = soak_n();
    assert!(n > 0, "FASTREQ_SOAK_N must be positive");
    let limit = Duration::from_secs(60) + Duration::from_millis(2) * n as u32;

    let seen = Seen::new(n);
    let goaway_stats = Arc::new(h2srv::GoAwayStats::default());
    let bind = || async { TcpListener::bind("127.0.0.1:0").await.unwrap() };
    let (l1, l2, l3) = (bind().await, bind().await, bind().await);
    let closed = bind().await.local_addr().unwrap(); // dropped: nothing listens there
    let bases = Bases {
        h1: format!("http://{}", l1.local_addr().unwrap()),
        closed: format!("http://{closed}"),
        h2: format!("http://{}", l2.local_addr().unwrap()),
        goaway: format!("http://{}", l3.local_addr().unwrap()),
    };
    let servers = [
        tokio::spawn(h1::serve(l1, seen.clone())),
        tokio::spawn(h2srv::serve(l2, seen.clone())),
        tokio::spawn(h2srv::serve_goaway(l3, seen.clone(), goaway_stats.clone())),
    ];

    // The preset as a user would build it: small backoffs and a total bound per request.
    let build = |h2: bool| {
        let b = fastreq::stack()
            .concurrency(256)
            .retries(plan::RETRIES)
            .backoff(Duration::from_millis(1), 2.0, Duration::from_millis(8))
            .timeout(Duration::from_secs(5))
            .total_timeout(Duration::from_secs(20));
        if h2 {
            b.http2_prior_knowledge()
        } else {
            b.http1_only()
        }
        .build()
        .unwrap()
    };
    let (h1_client, h2_client) = (build(false), build(true));

    // Inputs of each client, pulled lazily; `ids` maps an outcome back to its input.
    let is_h2 = |p: &Plan| matches!(p.fault.transport(), Transport::H2 | Transport::GoAway);
    let ids_h1: Vec<u32> = (0..n)
        .filter(|&i| !is_h2(&plan::plan(i)))
        .map(|i| i as u32)
        .collect();
    let ids_h2: Vec<u32> = (0..n)
        .filter(|&i| is_h2(&plan::plan(i)))
        .map(|i| i as u32)
        .collect();

    let (rss_start, _) = memory();
    let started = Instant::now();
    let mut tallies: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut outcomes = vec![0u8; n];
    let mut failures = Vec::new();
    let mut rss_mid = 0;
    let mut done = 0usize;

    let run = async {
        let reqs1 = ids_h1
            .iter()
            .map(|&i| request(&plan::plan(i as usize), &bases));
        let reqs2 = ids_h2
            .iter()
            .map(|&i| request(&plan::plan(i as usize), &bases));
        let s1 = h1_client
            .fan_out(reqs1)
            .map(|o| (ids_h1[o.index], o.result));
        let s2 = h2_client
            .fan_out(reqs2)
            .map(|o| (ids_h2[o.index], o.result));
        let mut all = futures::stream::select(s1, s2);
        while let Some((i, result)) = all.next().await {
            let p = plan::plan(i as usize);
            outcomes[p.index] += 1;
            let t = tallies.entry(p.fault.name()).or_default();
            t.inputs += 1;
            match &result {
                Ok(f) if f.status() == 200 => t.ok += 1,
                Ok(_) => t.statuses += 1,
                Err(_) => t.errors += 1,
            }
            match check(&p, &result, &seen) {
                Ok(a) => t.attempts += u64::from(a),
                Err(e) => failures.push(e),
            }
            done += 1;
            if done == n / 2 {
                rss_mid = memory().0;
            }
        }
    };
    tokio::time::timeout(limit, run)
        .await
        .unwrap_or_else(|_| panic!("the soak of {n} requests did not finish within {limit:?}"));
    let wall = started.elapsed();
    let (rss_end, hwm) = memory();

    for s in servers {
        s.abort();
    }

    // Figures.
    let attempts: u64 = tallies.values().map(|t| t.attempts).sum();
    eprintln!(
        "fault soak: {n} requests in {:.2} s = {:.0} req/s; {attempts} attempts ({} retries)",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        attempts.saturating_sub(n as u64),
    );
    eprintln!(
        "{:<26} {:>7} {:>7} {:>7} {:>7} {:>8}",
        "fault", "inputs", "ok", "status", "error", "attempts"
    );
    for (name, t) in &tallies {
        eprintln!(
            "{name:<26} {:>7} {:>7} {:>7} {:>7} {:>8}",
            t.inputs, t.ok, t.statuses, t.errors, t.attempts
        );
    }
    eprintln!(
        "connections: h1+h2 servers {}, GOAWAY server {} refused + {} served",
        seen.connections.load(Relaxed),
        goaway_stats.refused_connections.load(Relaxed),
        goaway_stats.served_connections.load(Relaxed),
    );
    eprintln!(
        "memory: RSS start {:.1} MiB, middle {:.1} MiB, end {:.1} MiB, peak {:.1} MiB",
        mib(rss_start),
        mib(rss_mid),
        mib(rss_end),
        mib(hwm)
    );

    // Verdicts.
    assert!(
        failures.is_empty(),
        "{} of {n} outcomes are not as planned; the first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let missing = outcomes.iter().filter(|&&c| c == 0).count();
    let extra = outcomes.iter().filter(|&&c| c > 1).count();
    assert_eq!(
        (missing, extra),
        (0, 0),
        "every input has exactly one outcome"
    );
    if n >= 1_000 {
        for f in Fault::ALL {
            assert!(
                tallies.get(f.name()).is_some_and(|t| t.inputs > 0),
                "the schedule exercised {}",
                f.name()
            );
        }
        // The GOAWAY server refuses its first connection, which carries a stream at least:
        // a GET sent again, or a POST failed.
        let g = &tallies[Fault::GoAway.name()];
        assert!(
            g.attempts > g.inputs || g.errors > 0,
            "GOAWAY refusals happened"
        );
    }
    let growth = hwm.saturating_sub(rss_start);
    assert!(
        growth < MAX_RSS_GROWTH,
        "peak RSS grew by {:.1} MiB (start {:.1}, peak {:.1})",
        mib(growth),
        mib(rss_start),
        mib(hwm)
    );
}
