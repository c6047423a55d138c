//! The Redis rate limit store: shared-rate admission error and the store's own throughput.
//!
//! ```text
//! scripts/redis.sh start 6390
//! FASTREQ_REDIS_URL=redis://127.0.0.1:6390/ cargo bench --features redis --bench redis_rate
//! FASTREQ_REDIS_URL=... cargo bench --features redis --bench redis_rate -- --rate 5000 --secs 5 --clients 4
//! ```
//!
//! 1. **Admission error.** `--clients` independent clients (each its own `RedisStore`, so
//!    its own connection) share one quota of `--rate`/s (burst `rate / 100`) for `--secs`
//!    seconds, each with 64 tasks taking permits as fast as they are granted. Prints the
//!    permits admitted against `rate·t + burst` (the bound), the error, each client's share,
//!    and the Redis round trips (`EVALSHA` calls from `INFO commandstats`) per permit.
//! 2. **Throughput.** The same clients with a quota no one reaches (10⁸/s): permits per
//!    second through one Redis. The baseline in the same run is one round trip per request:
//!    the same clients sending `PING`s from 64 tasks each over the same kind of connection.
//!
//! No Redis at `FASTREQ_REDIS_URL` (default `redis://127.0.0.1:6379/`): says so and exits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fastreq::rate_limit::{Limiter, Quota, RedisLimiter, RedisStore};
use tokio::time::Instant;

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const TASKS: usize = 64;

async fn evalsha_calls(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap_or_default();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| l.split("calls=").nth(1))
        .filter_map(|r| r.split(',').next()?.parse::<u64>().ok())
        .sum()
}

/// Takes permits from `limiters` (64 tasks each) until `secs` have passed; a permit granted
/// after the deadline is not counted. Returns the permits per limiter.
async fn drain(limiters: &[RedisLimiter], secs: f64) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let counts: Vec<Arc<AtomicU64>> = limiters.iter().map(|_| Arc::default()).collect();
    let mut tasks = Vec::new();
    for (limiter, count) in limiters.iter().zip(&counts) {
        for _ in 0..TASKS {
            let limiter = limiter.clone();
            let count = count.clone();
            tasks.push(tokio::spawn(async move {
                // Bounded in count as well as time.
                for _ in 0..50_000_000u64 {
                    if Instant::now() >= deadline {
                        break;
                    }
                    limiter.acquire().await.expect("permit");
                    if Instant::now() >= deadline {
                        break;
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    counts.iter().map(|c| c.load(Ordering::Relaxed)).collect()
}

fn main() {
    let url =
        std::env::var("FASTREQ_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let rate: f64 = arg("--rate", 5000.0);
    let secs: f64 = arg("--secs", 5.0);
    let clients: usize = arg("--clients", 4);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let shown = fastreq::redact_url(&url);
        let Ok(client) = redis::Client::open(url.as_str()) else {
            println!("skipped: bad Redis URL {shown}");
            return;
        };
        let Ok(Ok(mut admin)) = tokio::time::timeout(
            Duration::from_secs(2),
            client.get_multiplexed_async_connection(),
        )
        .await
        else {
            println!("skipped: no Redis at {shown}");
            return;
        };
        let run = std::process::id();

        // 1. Admission error at `rate`.
        let burst = ((rate / 100.0) as u32).max(1);
        let quota = Quota::new(rate, burst).unwrap();
        let name = format!("bench-shared-{run}");
        let limiters: Vec<RedisLimiter> = (0..clients)
            .map(|_| {
                RedisStore::new(&url)
                    .unwrap()
                    .limiter(&name, quota)
                    .unwrap()
            })
            .collect();
        let calls_before = evalsha_calls(&mut admin).await;
        let per_client = drain(&limiters, secs).await;
        let calls = evalsha_calls(&mut admin).await - calls_before;
        let admitted: u64 = per_client.iter().sum();
        let bound = rate * secs + f64::from(burst);
        println!(
            "shared rate: {clients} clients x {TASKS} tasks, {rate}/s burst {burst} for {secs} s"
        );
        println!(
            "  admitted {admitted} (per client {per_client:?}); bound rate*t+burst = {bound}; \
             error {:+.3} %",
            (admitted as f64 - bound) / bound * 100.0
        );
        println!(
            "  Redis round trips: {calls} ({:.2} permits per round trip, {:.0} round trips/s)",
            admitted as f64 / calls.max(1) as f64,
            calls as f64 / secs
        );

        // 2. Throughput with a quota nobody reaches, against one PING per request.
        let quota = Quota::new(1e8, 1000).unwrap();
        let name = format!("bench-max-{run}");
        let limiters: Vec<RedisLimiter> = (0..clients)
            .map(|_| {
                RedisStore::new(&url)
                    .unwrap()
                    .limiter(&name, quota)
                    .unwrap()
            })
            .collect();
        let t = 3.0;
        let permits: u64 = drain(&limiters, t).await.iter().sum();
        let permits_per_s = permits as f64 / t;

        let pings = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs_f64(t);
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let conn = client.get_multiplexed_async_connection().await.unwrap();
            for _ in 0..TASKS {
                let mut conn = conn.clone();
                let pings = pings.clone();
                tasks.push(tokio::spawn(async move {
                    for _ in 0..50_000_000u64 {
                        if Instant::now() >= deadline {
                            break;
                        }
                        let _: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
                        pings.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
        }
        for task in tasks {
            task.await.unwrap();
        }
        let pings_per_s = pings.load(Ordering::Relaxed) as f64 / t;
        println!(
            "throughput: {clients} clients x {TASKS} tasks, quota 1e8/s, {t} s: \
             {permits_per_s:.0} permits/s through one Redis"
        );
        println!(
            "  baseline, one round trip per request (PING, same clients and tasks): \
             {pings_per_s:.0}/s; ratio {:.2}x",
            permits_per_s / pings_per_s
        );
    });
}
