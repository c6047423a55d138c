//! The Redis rate limit store against a real `redis-server`.
//!
//! The server is `FASTREQ_REDIS_URL` (default `redis://127.0.0.1:6379/`). Without one the
//! tests print "skipped: no Redis at ..." and pass, unless `FASTREQ_REDIS_REQUIRED=1` (CI),
//! then they fail. `scripts/redis.sh start 6390` starts one on a loopback port.
//!
//! These run in real time: Redis `TIME` is the clock, so tokio's paused time cannot drive
//! it. Every loop is bounded in count and time.
#![cfg(feature = "redis")]

mod support;

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fastreq::rate_limit::{
    HostBuckets, KeyedLimiter, Limiter, OnRedisFailure, Quota, RateLimitLayer, RedisLimiter,
    RedisStore, TokenBucket,
};
use fastreq::{Backend, Body, ErrorKind};
use support::redis::{redis_url, unique};
use support::{Reply, TestServer};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

/// Upper bound for every wait in these tests.
const LIMIT: Duration = Duration::from_secs(30);

fn get(url: &str) -> http::Request<Body> {
    fastreq::get(url).build().unwrap()
}

/// Sends requests through `layer` from `tasks` tasks until `deadline`; a permit obtained
/// after the deadline is not used. Returns the number of requests sent.
async fn run_client<L, K>(
    layer: RateLimitLayer<L, K>,
    urls: Vec<String>,
    tasks: usize,
    deadline: Instant,
) -> u64
where
    L: Limiter,
    K: KeyedLimiter,
{
    let backend = Backend::new();
    let sent = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for t in 0..tasks {
        let mut svc = layer.layer(backend.clone());
        let sent = sent.clone();
        let urls = urls.clone();
        handles.push(tokio::spawn(async move {
            // Bounded in count too.
            for i in t..t + 100_000 {
                if Instant::now() >= deadline {
                    break;
                }
                let ready = svc.ready().await.expect("permit");
                if Instant::now() >= deadline {
                    break;
                }
                let resp = ready
                    .call(get(&urls[i % urls.len()]))
                    .await
                    .expect("request");
                assert_eq!(resp.status(), 200);
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    sent.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_clients_share_one_global_rate() {
    let Some(url) = redis_url() else { return };
    let server = TestServer::start(|_| Reply::ok());
    let name = unique("global");
    let (rate, burst, secs) = (200.0, 10u32, 5u64);
    let quota = Quota::new(rate, burst).unwrap();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut clients = Vec::new();
    for _ in 0..4 {
        // Each client has its own store, so its own connection.
        let store = RedisStore::new(&url).unwrap();
        let limiter = store.limiter(&name, quota).unwrap();
        let layer = RateLimitLayer::from_limiters(Some(limiter), None::<HostBuckets>);
        clients.push(tokio::spawn(run_client(
            layer,
            vec![server.url("/")],
            8,
            deadline,
        )));
    }
    let mut per_client = Vec::new();
    for c in clients {
        per_client.push(tokio::time::timeout(LIMIT, c).await.unwrap().unwrap());
    }
    let sent: u64 = per_client.iter().sum();
    let expected = rate * secs as f64 + f64::from(burst);
    let error = (sent as f64 - expected) / expected;
    eprintln!(
        "shared 200/s over 4 clients for {secs} s: {sent} admitted (per client {per_client:?}), \
         expected {expected}, error {:+.2} %",
        error * 100.0
    );
    assert_eq!(server.hits(), sent);
    assert!(
        sent as f64 <= expected,
        "{sent} > {expected}: the bound was broken"
    );
    assert!(
        error.abs() <= 0.01,
        "{sent} admitted, expected {expected} ± 1 %"
    );
    // Every client got a share: the quota is shared, not taken by one.
    assert!(per_client.iter().all(|&n| n > 50), "{per_client:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_share_per_host_rates() {
    let Some(url) = redis_url() else { return };
    let name = unique("hosts");
    let quota = Quota::new(20.0, 2).unwrap();
    let start = Instant::now();
    let deadline = start + Duration::from_millis(1500);
    // Per-host permits are taken after `ready()`, so some requests still get theirs after
    // the deadline: the server counts only those that arrive before it.
    let std_deadline = std::time::Instant::now() + Duration::from_millis(1500);
    let in_time = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let counts = in_time.clone();
    let server = TestServer::start(move |req| {
        if std::time::Instant::now() < std_deadline {
            counts[usize::from(req.path() == "/b")].fetch_add(1, Ordering::Relaxed);
        }
        Reply::ok()
    });
    // Two hosts on the same server: 127.0.0.1 and localhost.
    let urls = vec![server.url("/a"), server.url_with_host("localhost", "/b")];
    let mut clients = Vec::new();
    for _ in 0..2 {
        let store = RedisStore::new(&url).unwrap();
        let hosts = store.host_limiters(&name, quota).unwrap();
        let layer = RateLimitLayer::from_limiters(None::<TokenBucket>, Some(hosts));
        clients.push(tokio::spawn(run_client(layer, urls.clone(), 6, deadline)));
    }
    for c in clients {
        tokio::time::timeout(LIMIT, c).await.unwrap().unwrap();
    }
    // Each host: burst 2 + 20/s · 1.5 s = 32 at most, over both clients together.
    let (a, b) = (
        in_time[0].load(Ordering::Relaxed),
        in_time[1].load(Ordering::Relaxed),
    );
    eprintln!("per host 20/s shared by 2 clients for 1.5 s: a={a} b={b} (at most 32 each)");
    for n in [a, b] {
        assert!(n <= 32, "{n} > 32: the per-host bound was broken");
        assert!(n >= 26, "{n}: far below the per-host rate");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_pause_is_shared() {
    let Some(url) = redis_url() else { return };
    let name = unique("pause");
    let quota = Quota::new(100.0, 5).unwrap();
    let a = RedisStore::new(&url)
        .unwrap()
        .limiter(&name, quota)
        .unwrap();
    let b = RedisStore::new(&url)
        .unwrap()
        .limiter(&name, quota)
        .unwrap();
    // Connect b first, so the timing below is not a connect.
    tokio::time::timeout(LIMIT, b.acquire())
        .await
        .unwrap()
        .unwrap();
    let start = Instant::now();
    a.pause_until(start + Duration::from_millis(400));
    // The pause is written by a task; give it a moment to reach Redis.
    tokio::time::sleep(Duration::from_millis(50)).await;
    tokio::time::timeout(LIMIT, b.acquire())
        .await
        .unwrap()
        .unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(380),
        "the other process waited only {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_is_reloaded_after_flush() {
    let Some(url) = redis_url() else { return };
    let name = unique("flush");
    let limiter = RedisStore::new(&url)
        .unwrap()
        .limiter(&name, Quota::new(1000.0, 5).unwrap())
        .unwrap();
    tokio::time::timeout(LIMIT, limiter.acquire())
        .await
        .unwrap()
        .unwrap();
    // SCRIPT FLUSH: the next EVALSHA gets NOSCRIPT and must load the script again.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    tokio::time::timeout(LIMIT, limiter.acquire())
        .await
        .unwrap()
        .unwrap();
    // The key carries the hash tag and an expiry.
    let key = limiter.key().to_owned();
    assert!(key.starts_with(&format!("fastreq:{{{name}}}:")), "{key}");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((0..=1000).contains(&ttl) || ttl == -2, "PTTL {ttl}");
}

fn closed_redis_url(password: &str) -> String {
    format!("redis://:{password}@{}/", support::closed_port())
}

/// One request through a rate limit layer over `limiter`, bounded by [`LIMIT`].
async fn acquire_through_layer(
    limiter: RedisLimiter,
    server: &TestServer,
) -> Result<(), fastreq::Error> {
    let layer = RateLimitLayer::from_limiters(Some(limiter), None::<HostBuckets>);
    let svc = layer.layer(Backend::new());
    tokio::time::timeout(LIMIT, svc.oneshot(get(&server.url("/"))))
        .await
        .expect("the request finished within LIMIT")
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_fail_closed_gives_rate_limiter_errors() {
    let server = TestServer::start(|_| Reply::ok());
    let store = RedisStore::builder(&closed_redis_url("hunter2"))
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let limiter = store
        .limiter("closed", Quota::per_second(10.0).unwrap())
        .unwrap();
    let start = Instant::now();
    let err = acquire_through_layer(limiter.clone(), &server)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimiter, "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    // While Redis is down, later requests fail at once.
    let err2 = acquire_through_layer(limiter.clone(), &server)
        .await
        .unwrap_err();
    assert_eq!(err2.kind(), ErrorKind::RateLimiter);
    assert_eq!(server.hits(), 0);
    for text in [
        err.to_string(),
        format!("{err:?}"),
        format!("{store:?}"),
        format!("{limiter:?}"),
    ] {
        assert!(!text.contains("hunter2"), "password shown: {text}");
    }
    assert!(err.to_string().contains("Redis"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_fail_open_lets_requests_through() {
    let server = TestServer::start(|_| Reply::ok());
    let store = RedisStore::builder(&closed_redis_url("pw"))
        .timeout(Duration::from_millis(300))
        .on_failure(OnRedisFailure::FailOpen)
        .build()
        .unwrap();
    let limiter = store
        .limiter("open", Quota::per_second(1.0).unwrap())
        .unwrap();
    let start = Instant::now();
    for _ in 0..5 {
        acquire_through_layer(limiter.clone(), &server)
            .await
            .unwrap();
    }
    assert_eq!(server.hits(), 5);
    // No limit at all (1/s would take 4 s).
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_falls_back_to_a_local_share() {
    let server = TestServer::start(|_| Reply::ok());
    let store = RedisStore::builder(&closed_redis_url("pw"))
        .timeout(Duration::from_millis(200))
        .retry_interval(Duration::from_secs(60))
        .on_failure(OnRedisFailure::Local { processes: 2 })
        .build()
        .unwrap();
    // 20/s shared by 2 processes: 10/s here, burst 1.
    let limiter = store
        .limiter("local", Quota::per_second(20.0).unwrap())
        .unwrap();
    // The first request finds Redis down and goes to the local bucket.
    acquire_through_layer(limiter.clone(), &server)
        .await
        .unwrap();
    let start = Instant::now();
    for _ in 0..5 {
        acquire_through_layer(limiter.clone(), &server)
            .await
            .unwrap();
    }
    let took = start.elapsed();
    assert_eq!(server.hits(), 6);
    // Five more at 10/s: at least 400 ms (at 20/s it would be 200 ms).
    assert!(took >= Duration::from_millis(390), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_redis_does_not_hang_requests() {
    // Accepts TCP connections (backlog) and never answers.
    let hole = support::blackhole();
    let url = format!("redis://user:s3cr3t@{}/", hole.local_addr().unwrap());
    for mode in [
        OnRedisFailure::FailClosed,
        OnRedisFailure::FailOpen,
        OnRedisFailure::Local { processes: 4 },
    ] {
        let store = RedisStore::builder(&url)
            .timeout(Duration::from_millis(300))
            .on_failure(mode)
            .build()
            .unwrap();
        let limiter = store
            .limiter("hang", Quota::per_second(100.0).unwrap())
            .unwrap();
        let start = Instant::now();
        let res = tokio::time::timeout(LIMIT, limiter.acquire())
            .await
            .expect("a hanging Redis hung the request");
        let took = start.elapsed();
        assert!(took < Duration::from_secs(3), "{mode:?}: {took:?}");
        match mode {
            OnRedisFailure::FailClosed => {
                let err = res.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::RateLimiter);
                assert!(err.to_string().contains("Redis"), "{err}");
                assert!(!format!("{err} {err:?}").contains("s3cr3t"), "{err:?}");
                assert!(!format!("{err} {err:?}").contains("user"), "{err:?}");
            }
            _ => res.unwrap(),
        }
    }
    drop(hole);
}

/// A TCP relay to Redis that can be cut (closing every relayed connection and refusing new
/// ones) and restored: Redis going away and coming back.
struct Relay {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let relay = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns2.lock().unwrap().push(relay.abort_handle());
            }
        });
        Relay {
            addr,
            up,
            conns,
            accept,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_falls_back_then_shared_limiting_resumes() {
    let Some(url) = redis_url() else { return };
    let parsed = url::Url::parse(&url).unwrap();
    let target: SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(&(
        parsed.host_str().unwrap(),
        parsed.port().unwrap_or(6379),
    ))
    .unwrap()
    .next()
    .unwrap();
    let relay = Relay::start(target).await;
    let mut via_relay = parsed.clone();
    via_relay.set_port(Some(relay.addr.port())).unwrap();
    via_relay.set_host(Some("127.0.0.1")).unwrap();
    let store = RedisStore::builder(via_relay.as_str())
        .timeout(Duration::from_millis(300))
        .retry_interval(Duration::from_millis(200))
        .on_failure(OnRedisFailure::Local { processes: 2 })
        .build()
        .unwrap();
    let name = unique("outage");
    let limiter = store.limiter(&name, Quota::new(100.0, 5).unwrap()).unwrap();
    let acquire = || async {
        tokio::time::timeout(LIMIT, limiter.acquire())
            .await
            .expect("bounded")
    };

    acquire().await.unwrap();
    assert!(!store.is_down());

    // Redis goes away: the request still gets a permit, from the local bucket.
    relay.cut();
    acquire().await.unwrap();
    assert!(store.is_down(), "the failure went unnoticed");

    // Redis comes back: after the retry interval, requests go through Redis again.
    relay.restore();
    let start = Instant::now();
    for _ in 0..100 {
        if !store.is_down() || start.elapsed() > Duration::from_secs(10) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        acquire().await.unwrap();
    }
    assert!(
        !store.is_down(),
        "Redis is back but the store still falls back"
    );
    // The quota's key is in Redis again.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    acquire().await.unwrap();
    let exists: i64 = redis::cmd("EXISTS")
        .arg(limiter.key())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preset_clients_share_a_redis_rate() {
    let Some(url) = redis_url() else { return };
    let server = TestServer::start(|_| Reply::ok());
    let name = unique("preset");
    // Two clients, each its own connection, sharing 20/s (burst 2) through Redis: 12
    // requests take at least (12 - 2) / 20 = 500 ms between them.
    let mut clients = Vec::new();
    for _ in 0..2 {
        let store = RedisStore::new(&url).unwrap();
        let client = fastreq::stack()
            .rate_limit(20.0)
            .burst(2)
            .redis_rate_limit(store, &name)
            .build()
            .unwrap();
        assert!(client.rate_limit_handle().is_none());
        clients.push(client);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for client in clients {
        let url = server.url("/");
        tasks.push(tokio::spawn(async move {
            for _ in 0..6 {
                let resp = client.get(&url).await.unwrap();
                assert_eq!(resp.status(), 200);
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(LIMIT, t).await.unwrap().unwrap();
    }
    let took = start.elapsed();
    assert_eq!(server.hits(), 12);
    assert!(
        took >= Duration::from_millis(480),
        "{took:?}: the rate was not shared"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");

    // Without a rate limit, `redis_rate_limit` is a configuration error.
    let err = fastreq::stack()
        .redis_rate_limit(RedisStore::new(&url).unwrap(), &name)
        .build()
        .unwrap_err();
    assert!(err.is_config(), "{err:?}");
}
