//! The rate limit layer: exact admissions under paused time with in-memory services, and
//! one loopback run through the real backend.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use fastreq::rate_limit::{
    HostBuckets, KeyedLimiter, Limiter, Quota, RateLimit, RateLimitLayer, TokenBucket,
};
use fastreq::{Backend, Body, Error, ErrorKind, ResponseBody, ResponseExt};
use futures::StreamExt;
use http::{Request, Response};
use support::{Reply, TestServer};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

/// Upper bound for tests in real time, so none can hang.
const LIMIT: Duration = Duration::from_secs(30);

fn get(url: &str) -> Request<Body> {
    fastreq::get(url).build().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Calls of the inner service: (time since `start`, path).
#[derive(Clone)]
struct Log {
    start: Instant,
    calls: Arc<Mutex<Vec<(Duration, String)>>>,
}

impl Log {
    fn new() -> Log {
        Log {
            start: Instant::now(),
            calls: Arc::default(),
        }
    }

    fn record(&self, req: &Request<Body>) {
        let host = req.uri().host().unwrap_or("").to_owned();
        let entry = format!("{host}{}", req.uri().path());
        self.calls
            .lock()
            .unwrap()
            .push((self.start.elapsed(), entry));
    }

    fn times(&self) -> Vec<Duration> {
        self.calls.lock().unwrap().iter().map(|c| c.0).collect()
    }

    fn entries(&self) -> Vec<(Duration, String)> {
        self.calls.lock().unwrap().clone()
    }

    fn len(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    /// An in-memory backend that records each call and answers 200 at once.
    fn service(
        &self,
    ) -> impl Service<
        Request<Body>,
        Response = Response<ResponseBody>,
        Error = Error,
        Future = impl Future<Output = Result<Response<ResponseBody>, Error>> + Send,
    > + Clone
           + Send
           + 'static {
        let log = self.clone();
        tower::service_fn(move |req: Request<Body>| {
            log.record(&req);
            async { Ok::<_, Error>(Response::new(ResponseBody::empty())) }
        })
    }
}

/// Runs `n` requests through `svc` with `fan_out` and checks they all succeed.
async fn run_all<S>(svc: S, urls: impl IntoIterator<Item = String>, limit: usize)
where
    S: Service<Request<Body>, Response = Response<ResponseBody>, Error = Error>,
{
    let outcomes: Vec<_> = fastreq::fan_out(svc, urls.into_iter().map(|u| get(&u)))
        .limit(limit)
        .collect()
        .await;
    for o in outcomes {
        o.result.expect("request succeeds");
    }
}

/// Counts admissions with time in `(lo, hi]`.
fn count_in(times: &[Duration], lo: Duration, hi: Duration) -> usize {
    times.iter().filter(|t| **t > lo && **t <= hi).count()
}

/// At most `burst + rate·t` admissions by time `t`, for every admission.
fn assert_bound(times: &[Duration], rate: f64, burst: u32) {
    for (i, t) in times.iter().enumerate() {
        let allowed = f64::from(burst) + rate * t.as_secs_f64();
        assert!(
            (i + 1) as f64 <= allowed + 1e-6,
            "admission #{} at {t:?} exceeds {burst} + {rate}/s",
            i + 1
        );
    }
}

#[tokio::test(start_paused = true)]
async fn burst_then_steady_state_exact_admissions() {
    let log = Log::new();
    let layer = RateLimitLayer::builder()
        .rate(10.0)
        .burst(5)
        .build()
        .unwrap();
    let svc = layer.layer(log.service());
    for _ in 0..8 {
        svc.clone().oneshot(get("http://a.test/")).await.unwrap();
    }
    assert_eq!(
        log.times(),
        vec![ms(0), ms(0), ms(0), ms(0), ms(0), ms(100), ms(200), ms(300)]
    );
    // Idle for a while: the bucket refills to the burst, no more.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let log2 = Log::new();
    let svc = layer.layer(log2.service());
    for _ in 0..7 {
        svc.clone().oneshot(get("http://a.test/")).await.unwrap();
    }
    assert_eq!(
        log2.times(),
        vec![ms(0), ms(0), ms(0), ms(0), ms(0), ms(100), ms(200)]
    );
}

#[tokio::test(start_paused = true)]
async fn exactly_5000_per_second_at_rate_5000() {
    let log = Log::new();
    let layer = RateLimitLayer::new(5000.0);
    let urls = (0..15_001).map(|i| format!("http://h{}.test/", i % 7));
    run_all(layer.layer(log.service()), urls, 64).await;

    let times = log.times();
    assert_eq!(times.len(), 15_001);
    assert_eq!(times[0], Duration::ZERO);
    for s in 0..3 {
        let lo = Duration::from_secs(s);
        assert_eq!(
            count_in(&times, lo, lo + Duration::from_secs(1)),
            5000,
            "second {s}"
        );
    }
    assert_bound(&times, 5000.0, 1);
    assert_eq!(*times.last().unwrap(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn exactly_5000_per_second_per_host() {
    let log = Log::new();
    let layer = RateLimitLayer::per_host(5000.0);
    let urls = (0..10_001).map(|_| "http://one.test/".to_owned());
    run_all(layer.layer(log.service()), urls, 256).await;

    let times = log.times();
    assert_eq!(times.len(), 10_001);
    for s in 0..2 {
        let lo = Duration::from_secs(s);
        assert_eq!(
            count_in(&times, lo, lo + Duration::from_secs(1)),
            5000,
            "second {s}"
        );
    }
    assert_bound(&times, 5000.0, 1);
}

#[tokio::test(start_paused = true)]
async fn fractional_rate_half_per_second() {
    let log = Log::new();
    let svc = RateLimitLayer::new(0.5).layer(log.service());
    for _ in 0..4 {
        svc.clone().oneshot(get("http://a.test/")).await.unwrap();
    }
    assert_eq!(log.times(), vec![ms(0), ms(2000), ms(4000), ms(6000)]);

    let log = Log::new();
    let layer = RateLimitLayer::builder()
        .per_host_rate(0.5)
        .per_host_burst(2)
        .build()
        .unwrap();
    let urls = (0..4).map(|_| "http://b.test/x".to_owned());
    run_all(layer.layer(log.service()), urls, 8).await;
    assert_eq!(log.times(), vec![ms(0), ms(0), ms(2000), ms(4000)]);
}

#[tokio::test(start_paused = true)]
async fn clones_share_one_budget() {
    let log = Log::new();
    let svc = RateLimitLayer::new(5.0).layer(log.service());
    // Twenty clones, each sending one request at once (tower's RateLimit would let all
    // twenty through at t=0: each of its clones has its own window).
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move { svc.oneshot(get("http://a.test/")).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let expected: Vec<_> = (0..20).map(|i| ms(200 * i)).collect();
    assert_eq!(log.times(), expected);

    // Services built by the same layer share it too.
    let log = Log::new();
    let layer = RateLimitLayer::new(5.0);
    let a = layer.layer(log.service());
    let b = layer.layer(log.service());
    a.oneshot(get("http://a.test/")).await.unwrap();
    b.oneshot(get("http://b.test/")).await.unwrap();
    assert_eq!(log.times(), vec![ms(0), ms(200)]);
}

#[tokio::test(start_paused = true)]
async fn fifty_contending_clones_progress_in_arrival_order() {
    let log = Log::new();
    let layer = RateLimitLayer::new(5000.0);
    let svc = layer.layer(log.service());
    // Spend the burst so that all fifty queue up, in spawn order.
    assert!(layer.global_limiter().unwrap().try_acquire());
    let rounds = 10;
    let tasks: Vec<_> = (0..50)
        .map(|id| {
            let mut svc = svc.clone();
            tokio::spawn(async move {
                for _ in 0..rounds {
                    let req = get(&format!("http://a.test/{id}"));
                    svc.ready().await.unwrap().call(req).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let entries = log.entries();
    assert_eq!(entries.len(), 50 * rounds);
    // First come, first served: each clone goes back to the end of the line, so the
    // order is 0..49, 0..49, ... and nobody starves.
    for (i, (_, who)) in entries.iter().enumerate() {
        assert_eq!(who, &format!("a.test/{}", i % 50), "admission #{i}");
    }
    // And the rate holds: 5 per millisecond after the initial permit at 0.
    let times: Vec<_> = entries.iter().map(|e| e.0).collect();
    assert_eq!(*times.last().unwrap(), ms(100));
    assert_bound(&times, 5000.0, 0);
}

#[tokio::test(start_paused = true)]
async fn per_host_buckets_are_independent() {
    let log = Log::new();
    let layer = RateLimitLayer::per_host(1.0);
    let urls = [
        "http://a.test/1",
        "http://a.test/2",
        "http://b.test/1",
        "http://A.TEST:80/3", // same host as a.test
        "https://a.test/4",   // another server: https, port 443
        "http://b.test/2",
    ];
    run_all(
        layer.layer(log.service()),
        urls.iter().map(|s| s.to_string()),
        16,
    )
    .await;
    let mut entries = log.entries();
    entries.sort();
    assert_eq!(
        entries,
        vec![
            (ms(0), "a.test/1".to_owned()),
            (ms(0), "a.test/4".to_owned()),
            (ms(0), "b.test/1".to_owned()),
            (ms(1000), "a.test/2".to_owned()),
            (ms(1000), "b.test/2".to_owned()),
            (ms(2000), "a.test/3".to_owned()),
        ]
    );
    assert_eq!(layer.per_host_limiter().unwrap().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn global_and_per_host_together() {
    let log = Log::new();
    let layer = RateLimitLayer::builder()
        .rate(10.0)
        .per_host_rate(2.0)
        .build()
        .unwrap();
    // Four requests to a.test and four to four other hosts, interleaved.
    let urls = (0..8).map(|i| {
        if i % 2 == 0 {
            "http://a.test/".to_owned()
        } else {
            format!("http://o{i}.test/")
        }
    });
    run_all(layer.layer(log.service()), urls, 16).await;
    let times = log.times();
    assert_eq!(times.len(), 8);
    assert_bound(&times, 10.0, 1);
    let a: Vec<_> = log
        .entries()
        .into_iter()
        .filter(|e| e.1.starts_with("a.test"))
        .map(|e| e.0)
        .collect();
    // a.test: at most one per 500 ms.
    for w in a.windows(2) {
        assert!(w[1] - w[0] >= ms(500), "{a:?}");
    }
}

/// An inner service answering 429 with `Retry-After: <secs>` to the first request for
/// `/limited`, 200 otherwise.
fn limited_backend(
    log: &Log,
    retry_after: &'static str,
) -> impl Service<
    Request<Body>,
    Response = Response<ResponseBody>,
    Error = Error,
    Future = impl Future<Output = Result<Response<ResponseBody>, Error>> + Send,
> + Clone
       + Send
       + 'static {
    let log = log.clone();
    let first = Arc::new(AtomicUsize::new(0));
    tower::service_fn(move |req: Request<Body>| {
        log.record(&req);
        let limited = req.uri().path() == "/limited" && first.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            let mut resp = Response::new(ResponseBody::empty());
            if limited {
                *resp.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
                resp.headers_mut()
                    .insert("retry-after", retry_after.parse().unwrap());
            }
            Ok::<_, Error>(resp)
        }
    })
}

#[tokio::test(start_paused = true)]
async fn retry_after_pauses_the_host_and_resumes_spread_by_the_rate() {
    let log = Log::new();
    let layer = RateLimitLayer::builder()
        .per_host_rate(10.0)
        .per_host_burst(5)
        .build()
        .unwrap();
    let svc = layer.layer(limited_backend(&log, "2"));
    let resp = svc
        .clone()
        .oneshot(get("http://a.test/limited"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);

    // Six more for a.test and one for b.test, all sent now.
    let mut urls: Vec<String> = (0..6).map(|i| format!("http://a.test/{i}")).collect();
    urls.push("http://b.test/".into());
    run_all(svc, urls, 16).await;

    let entries = log.entries();
    let a: Vec<_> = entries
        .iter()
        .filter(|e| e.1.starts_with("a.test/") && e.1 != "a.test/limited")
        .map(|e| e.0)
        .collect();
    // Paused until 2 s, then one per 100 ms: no burst at the end of the pause although the
    // bucket allows bursts of 5.
    assert_eq!(
        a,
        vec![ms(2000), ms(2100), ms(2200), ms(2300), ms(2400), ms(2500)]
    );
    // Other hosts are not paused.
    let b: Vec<_> = entries
        .iter()
        .filter(|e| e.1.starts_with("b.test"))
        .collect();
    assert_eq!(b[0].0, ms(0));
}

#[tokio::test(start_paused = true)]
async fn retry_after_pause_is_capped() {
    let log = Log::new();
    let layer = RateLimitLayer::builder()
        .per_host_rate(10.0)
        .max_pause(Duration::from_secs(5))
        .build()
        .unwrap();
    let svc = layer.layer(limited_backend(&log, "3600"));
    svc.clone()
        .oneshot(get("http://a.test/limited"))
        .await
        .unwrap();
    svc.oneshot(get("http://a.test/next")).await.unwrap();
    assert_eq!(log.times(), vec![ms(0), ms(5000)]);

    // Duration::ZERO turns the pauses off.
    let log = Log::new();
    let layer = RateLimitLayer::builder()
        .per_host_rate(10.0)
        .max_pause(Duration::ZERO)
        .build()
        .unwrap();
    let svc = layer.layer(limited_backend(&log, "3600"));
    svc.clone()
        .oneshot(get("http://a.test/limited"))
        .await
        .unwrap();
    svc.oneshot(get("http://a.test/next")).await.unwrap();
    assert_eq!(log.times(), vec![ms(0), ms(100)]);
}

#[tokio::test(start_paused = true)]
async fn huge_retry_after_with_an_unbounded_cap_does_not_overflow() {
    // Found while fuzzing Retry-After: `max_pause(Duration::MAX)` and a Retry-After of
    // u64::MAX seconds overflowed `Instant + Duration` (a panic in the response future).
    let log = Log::new();
    let layer = RateLimitLayer::builder()
        .per_host_rate(10.0)
        .max_pause(Duration::MAX)
        .build()
        .unwrap();
    let svc = layer.layer(limited_backend(&log, "99999999999999999999999"));
    let resp = svc
        .clone()
        .oneshot(get("http://a.test/limited"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    // The host is paused (for as long as the clock allows); other hosts are not.
    let next = tokio::time::timeout(
        Duration::from_secs(86_400),
        svc.clone().oneshot(get("http://a.test/next")),
    )
    .await;
    assert!(next.is_err(), "a.test is still paused a day later");
    svc.oneshot(get("http://b.test/")).await.unwrap();
    assert_eq!(log.times().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn retry_after_without_per_host_limit_pauses_nothing() {
    let log = Log::new();
    let svc = RateLimitLayer::new(10.0).layer(limited_backend(&log, "30"));
    svc.clone()
        .oneshot(get("http://a.test/limited"))
        .await
        .unwrap();
    svc.oneshot(get("http://a.test/next")).await.unwrap();
    assert_eq!(log.times(), vec![ms(0), ms(100)]);
}

#[tokio::test(start_paused = true)]
async fn idle_host_buckets_are_evicted() {
    let layer = RateLimitLayer::per_host(1000.0);
    let hosts = layer.per_host_limiter().unwrap().clone();
    let peak = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(AtomicUsize::new(0));
    let inner = {
        let (hosts, peak, seen) = (hosts.clone(), peak.clone(), seen.clone());
        tower::service_fn(move |_req: Request<Body>| {
            if seen.fetch_add(1, Ordering::Relaxed) % 500 == 0 {
                peak.fetch_max(hosts.len(), Ordering::Relaxed);
            }
            async {
                // Each request takes 1 ms, so time moves on.
                tokio::time::sleep(ms(1)).await;
                Ok::<_, Error>(Response::new(ResponseBody::empty()))
            }
        })
    };
    let n = 100_000;
    let urls = (0..n).map(|i| format!("http://host-{i}.test/"));
    run_all(layer.layer(inner), urls, 256).await;
    assert_eq!(seen.load(Ordering::Relaxed), n);
    let peak = peak.load(Ordering::Relaxed);
    // 100,000 hosts seen; only the ones used within the last millisecond or so matter.
    assert!(peak > 0 && peak < 5_000, "peak {peak}");
    tokio::time::sleep(ms(10)).await;
    hosts.evict_idle();
    assert!(hosts.is_empty());
}

#[tokio::test(start_paused = true)]
async fn rate_change_takes_effect_for_waiters() {
    let log = Log::new();
    let layer = RateLimitLayer::new(1.0);
    let handle = layer.handle();
    let svc = layer.layer(log.service());
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move { svc.oneshot(get("http://a.test/")).await })
        })
        .collect();
    tokio::time::sleep(ms(100)).await;
    assert_eq!(log.len(), 1);
    handle.set_rate(100.0).unwrap();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // The 0.9 s still owed at 1/s become 9 ms at 100/s; then one every 10 ms.
    assert_eq!(
        log.times(),
        vec![ms(0), ms(109), ms(119), ms(129), ms(139), ms(149)]
    );
    assert_eq!(handle.quota().unwrap().rate(), 100.0);

    // Burst changes too.
    handle.set_burst(3).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log = Log::new();
    let svc = layer.layer(log.service());
    for _ in 0..4 {
        svc.clone().oneshot(get("http://a.test/")).await.unwrap();
    }
    assert_eq!(log.times(), vec![ms(0), ms(0), ms(0), ms(10)]);

    // Per host as well.
    let log = Log::new();
    let layer = RateLimitLayer::per_host(0.1);
    let handle = layer.handle();
    let svc = layer.layer(log.service());
    let urls = (0..3).map(|_| "http://a.test/".to_owned());
    let run = tokio::spawn(run_all(svc, urls, 8));
    tokio::time::sleep(ms(100)).await;
    handle.set_per_host_rate(10.0).unwrap();
    run.await.unwrap();
    // 9.9 s owed at 0.1/s is 99 ms at 10/s.
    assert_eq!(log.times(), vec![ms(0), ms(199), ms(299)]);

    // Invalid values and absent limits are config errors and change nothing.
    assert!(handle.set_per_host_rate(0.0).unwrap_err().is_config());
    assert!(handle.set_per_host_burst(0).unwrap_err().is_config());
    assert!(handle.set_rate(5.0).unwrap_err().is_config());
    assert_eq!(handle.per_host_quota().unwrap().rate(), 10.0);
}

/// Counts `poll_ready` successes and calls; answers at once.
#[derive(Clone, Default)]
struct Counting {
    ready: Arc<AtomicUsize>,
    calls: Arc<AtomicUsize>,
}

impl Counting {
    /// `poll_ready` successes not yet followed by a call: readiness (a slot, a connection)
    /// that the layer above is holding.
    fn held(&self) -> usize {
        self.ready.load(Ordering::SeqCst) - self.calls.load(Ordering::SeqCst)
    }
}

impl Service<Request<Body>> for Counting {
    type Response = Response<ResponseBody>;
    type Error = Error;
    type Future = std::future::Ready<Result<Response<ResponseBody>, Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.ready.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<Body>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(Response::new(ResponseBody::empty())))
    }
}

#[tokio::test(start_paused = true)]
async fn waiting_for_a_global_permit_does_not_poll_the_inner_service() {
    let inner = Counting::default();
    let mut svc = RateLimitLayer::new(1.0).layer(inner.clone());
    svc.ready()
        .await
        .unwrap()
        .call(get("http://a.test/"))
        .await
        .unwrap();
    assert_eq!(inner.ready.load(Ordering::SeqCst), 1);

    let waiting = tokio::spawn(async move {
        svc.ready().await.unwrap();
        svc
    });
    tokio::time::sleep(ms(900)).await;
    assert!(!waiting.is_finished());
    assert_eq!(
        inner.ready.load(Ordering::SeqCst),
        1,
        "polled while waiting"
    );
    assert_eq!(inner.held(), 0);
    let mut svc = waiting.await.unwrap();
    assert_eq!(inner.ready.load(Ordering::SeqCst), 2);
    svc.call(get("http://a.test/")).await.unwrap();
    assert_eq!(inner.held(), 0);
}

#[tokio::test(start_paused = true)]
async fn waiting_for_a_host_permit_does_not_poll_the_inner_service() {
    let inner = Counting::default();
    let layer = RateLimitLayer::per_host(1.0);
    let svc = layer.layer(inner.clone());
    let urls = (0..3).map(|_| "http://a.test/".to_owned());
    let run = tokio::spawn(run_all(svc.clone(), urls, 8));
    tokio::time::sleep(ms(500)).await;
    // Three requests in the layer; only the one with a permit reached the inner service.
    assert_eq!(inner.ready.load(Ordering::SeqCst), 1);
    assert_eq!(inner.held(), 0);
    // Meanwhile another host goes straight through: the waiters hold nothing.
    svc.oneshot(get("http://b.test/")).await.unwrap();
    assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
    tokio::time::sleep(ms(600)).await;
    assert_eq!(inner.ready.load(Ordering::SeqCst), 3);
    run.await.unwrap();
    assert_eq!(inner.ready.load(Ordering::SeqCst), 4);
    assert_eq!(inner.held(), 0);
}

#[test]
fn absurd_config_is_a_config_error() {
    let errs = [
        RateLimitLayer::try_new(0.0).unwrap_err(),
        RateLimitLayer::try_new(-1.0).unwrap_err(),
        RateLimitLayer::try_new(f64::NAN).unwrap_err(),
        RateLimitLayer::try_new(f64::INFINITY).unwrap_err(),
        RateLimitLayer::try_per_host(0.0).unwrap_err(),
        RateLimitLayer::builder()
            .rate(1.0)
            .burst(0)
            .build()
            .unwrap_err(),
        RateLimitLayer::builder()
            .per_host_rate(1.0)
            .per_host_burst(0)
            .build()
            .unwrap_err(),
        RateLimitLayer::builder().build().unwrap_err(),
        RateLimitLayer::builder()
            .burst(5)
            .per_host_rate(1.0)
            .build()
            .unwrap_err(),
    ];
    for e in &errs {
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    }
    assert!(errs[0].to_string().contains("got 0"), "{}", errs[0]);
    assert!(errs[2].to_string().contains("NaN"), "{}", errs[2]);
    assert!(errs[5].to_string().contains("`burst`"), "{}", errs[5]);
    // The first error wins.
    let e = RateLimitLayer::builder()
        .rate(-2.0)
        .per_host_rate(f64::NAN)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("-2"), "{e}");
}

/// A store that is down.
#[derive(Clone, Debug)]
struct DownStore;

impl Limiter for DownStore {
    type Waiter = ();

    fn poll_acquire(&self, _: &mut (), _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Err(
            Error::new(ErrorKind::RateLimiter).with_message("store unreachable")
        ))
    }
    fn quota(&self) -> Quota {
        Quota::per_second(1.0).unwrap()
    }
    fn set_quota(&self, _: Quota) {}
    fn pause_until(&self, _: Instant) {}
}

#[derive(Clone, Debug)]
struct DownKeyed;

impl KeyedLimiter for DownKeyed {
    type Limiter = DownStore;
    fn limiter(&self, _key: &str) -> Result<DownStore, Error> {
        Ok(DownStore)
    }
    fn quota(&self) -> Quota {
        Quota::per_second(1.0).unwrap()
    }
    fn set_quota(&self, _: Quota) {}
}

#[tokio::test]
async fn a_failing_store_is_a_rate_limiter_error() {
    let inner = Counting::default();
    let layer = RateLimitLayer::<DownStore, HostBuckets>::from_limiters(Some(DownStore), None);
    let err = layer
        .layer(inner.clone())
        .oneshot(get("http://a.test/"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimiter);

    let layer = RateLimitLayer::<TokenBucket, DownKeyed>::from_limiters(None, Some(DownKeyed));
    let err = layer
        .layer(inner.clone())
        .oneshot(get("http://a.test/x?token=s3cret"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimiter);
    assert_eq!(err.url(), Some("http://a.test/x?token=REDACTED"));
    assert_eq!(inner.ready.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_through_the_backend() {
    let server = TestServer::routes();
    let layer = RateLimitLayer::builder()
        .rate(1000.0)
        .per_host_rate(20.0)
        .build()
        .unwrap();
    let svc: RateLimit<Backend> = RateLimit::new(Backend::new(), &layer);
    let start = std::time::Instant::now();
    let urls: Vec<_> = (0..10).map(|i| server.url(&format!("/r{i}"))).collect();
    let outcomes: Vec<_> = tokio::time::timeout(
        LIMIT,
        fastreq::fan_out(svc, urls.iter().map(|u| get(u)))
            .limit(16)
            .then(|o| async move { o.result.unwrap().text().await.unwrap() })
            .collect::<Vec<_>>(),
    )
    .await
    .expect("finished in time");
    let elapsed = start.elapsed();
    assert_eq!(outcomes.len(), 10);
    assert!(outcomes.iter().all(|b| b.contains("\"ok\":true")));
    assert_eq!(server.hits(), 10);
    // One at once, then one per 50 ms.
    assert!(elapsed >= ms(450), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_retry_after_pauses_the_host() {
    let first = Arc::new(AtomicUsize::new(0));
    let server = {
        let first = first.clone();
        TestServer::start(move |req| {
            if req.path() == "/limited" && first.fetch_add(1, Ordering::SeqCst) == 0 {
                Reply::status(429).header("retry-after", "1")
            } else {
                Reply::text("ok")
            }
        })
    };
    let layer = RateLimitLayer::per_host(100.0);
    let svc = layer.layer(Backend::new());
    let start = std::time::Instant::now();
    let resp = tokio::time::timeout(LIMIT, svc.clone().oneshot(get(&server.url("/limited"))))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 429);
    let resp = tokio::time::timeout(LIMIT, svc.oneshot(get(&server.url("/after"))))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(start.elapsed() >= ms(1000), "{:?}", start.elapsed());
    assert_eq!(server.hits(), 2);
}

/// The waiter future of a bucket is cancel-safe: a dropped request gives up its place.
#[tokio::test(start_paused = true)]
async fn dropped_requests_give_up_their_place() {
    let log = Log::new();
    let layer = RateLimitLayer::per_host(1.0);
    let svc = layer.layer(log.service());
    svc.clone().oneshot(get("http://a.test/0")).await.unwrap();
    let mut doomed = Box::pin(svc.clone().oneshot(get("http://a.test/dropped")));
    futures::future::poll_fn(|cx| {
        assert!(Pin::new(&mut doomed).poll(cx).is_pending());
        Poll::Ready(())
    })
    .await;
    drop(doomed);
    svc.oneshot(get("http://a.test/1")).await.unwrap();
    let entries = log.entries();
    assert_eq!(
        entries,
        vec![
            (ms(0), "a.test/0".to_owned()),
            (ms(1000), "a.test/1".to_owned())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_threads_contending_respect_the_bound() {
    // 8 tasks on 2 threads, 1,600 permits at 10,000/s: never faster than 1 + rate·t.
    let bucket = TokenBucket::new(Quota::per_second(10_000.0).unwrap());
    let start = std::time::Instant::now();
    let stamps = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (bucket, stamps) = (bucket.clone(), stamps.clone());
            tokio::spawn(async move {
                for _ in 0..200 {
                    bucket.acquire().await.unwrap();
                    stamps.lock().unwrap().push(std::time::Instant::now());
                }
            })
        })
        .collect();
    tokio::time::timeout(LIMIT, async {
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await
    .expect("no deadlock");
    let mut stamps = stamps.lock().unwrap().clone();
    stamps.sort();
    assert_eq!(stamps.len(), 1600);
    // The i-th permit (from 0) cannot be granted before i / rate after the first.
    let times: Vec<Duration> = stamps.iter().map(|t| *t - start).collect();
    assert!(
        *times.last().unwrap() >= Duration::from_micros(159_900),
        "{:?}",
        times.last()
    );
    assert_eq!(bucket.waiting(), 0);
}

#[test]
fn services_and_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn future_is_send<S>(_: &S)
    where
        S: Service<Request<Body>>,
        S::Future: Send,
    {
    }
    let layer = RateLimitLayer::builder()
        .rate(1.0)
        .per_host_rate(1.0)
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let svc: RateLimit<Backend> = layer.layer(Backend::new());
    send_sync(&svc);
    send_sync(&layer);
    send_sync(&layer.handle());
    future_is_send(&svc);
}
