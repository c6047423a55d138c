//! `fastreq::ext::WaitTime`: the rate limit, concurrency and retry layers add the time a
//! request waits, and `Fetched::wait` reports it (paused time, in-memory services; the
//! elapsed time of a `Fetched` is wall-clock time, so the wire time is checked by the CLI
//! tests instead).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fastreq::concurrency::ConcurrencyLimitLayer;
use fastreq::ext::WaitTime;
use fastreq::rate_limit::RateLimitLayer;
use fastreq::retry::RetryLayer;
use fastreq::{Body, Error, Fetch, ResponseBody};
use futures::StreamExt;
use http::{Request, Response};
use tower::{Layer, Service, ServiceExt};

/// The time each in-memory request spends "on the wire".
const WIRE: Duration = Duration::from_millis(10);

/// An in-memory backend: answers 200 after [`WIRE`]; the first `fail_first` calls are 503.
fn backend(
    fail_first: usize,
) -> impl Service<
    Request<Body>,
    Response = Response<ResponseBody>,
    Error = Error,
    Future = impl std::future::Future<Output = Result<Response<ResponseBody>, Error>> + Send,
> + Clone
       + Send
       + 'static {
    let calls = Arc::new(AtomicUsize::new(0));
    tower::service_fn(move |_req: Request<Body>| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(WIRE).await;
            let mut resp = Response::new(ResponseBody::from("ok"));
            if n < fail_first {
                *resp.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
            }
            Ok::<_, Error>(resp)
        }
    })
}

/// `n` requests to `url`, each with a fresh `WaitTime` (made now), and their counters.
fn requests(url: &str, n: usize) -> (Vec<Request<Body>>, Vec<WaitTime>) {
    (0..n)
        .map(|_| {
            let wait = WaitTime::new();
            let mut req = fastreq::get(url).build().unwrap();
            req.extensions_mut().insert(wait.clone());
            (req, wait)
        })
        .unzip()
}

fn near(got: Duration, want: Duration) -> bool {
    got.abs_diff(want) <= Duration::from_millis(50)
}

#[tokio::test(start_paused = true)]
async fn a_global_rate_limit_wait_is_counted() {
    let svc = Fetch::new(RateLimitLayer::new(1.0).layer(backend(0)));
    let (reqs, waits) = requests("http://a.test/", 3);
    let outcomes: Vec<_> = fastreq::fan_out(svc, reqs).limit(8).collect().await;
    for o in &outcomes {
        let f = o.result.as_ref().expect("a response");
        let wait = waits[o.index].get();
        assert_eq!(f.wait(), wait, "Fetched::wait reads the counter");
        // The rate limit admits at 0 s, 1 s, 2 s. The global permit is taken in
        // `poll_ready`, one request at a time: the third waits for it only once the second
        // has been called (its first second was spent queued in the fan-out, not waiting
        // in the layer), so each waits about 1 s.
        let want = Duration::from_secs(u64::from(o.index > 0));
        assert!(near(wait, want), "#{}: {wait:?}", o.index);
    }
}

#[tokio::test(start_paused = true)]
async fn a_per_host_rate_limit_wait_is_counted() {
    // All three are called at once and wait in their futures: 0 s, 0.5 s, 1 s.
    let svc = Fetch::new(RateLimitLayer::per_host(2.0).layer(backend(0)));
    let (reqs, waits) = requests("http://a.test/", 3);
    let outcomes: Vec<_> = fastreq::fan_out(svc, reqs).limit(8).collect().await;
    let mut got: Vec<Duration> = waits.iter().map(WaitTime::get).collect();
    got.sort();
    for (i, w) in got.iter().enumerate() {
        let want = Duration::from_millis(500 * i as u64);
        assert!(near(*w, want), "#{i}: {got:?}");
    }
    for o in outcomes {
        let f = o.result.expect("a response");
        assert_eq!(f.wait(), waits[o.index].get());
    }
}

#[tokio::test(start_paused = true)]
async fn a_per_host_concurrency_wait_is_counted() {
    let layer = ConcurrencyLimitLayer::builder()
        .per_host(1)
        .build()
        .unwrap();
    let svc = Fetch::new(layer.layer(backend(0)));
    let (reqs, waits) = requests("http://a.test/", 3);
    let outcomes: Vec<_> = fastreq::fan_out(svc, reqs).limit(8).collect().await;
    assert!(outcomes.iter().all(|o| o.result.is_ok()));
    let mut got: Vec<Duration> = waits.iter().map(WaitTime::get).collect();
    got.sort();
    // One at a time, each on the wire for WIRE: the others wait for it.
    for (i, w) in got.iter().enumerate() {
        assert!(near(*w, WIRE * i as u32), "#{i}: {got:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn retry_backoff_is_counted() {
    let retry = RetryLayer::builder()
        .max_retries(2)
        .initial_backoff(Duration::from_secs(1))
        .backoff_factor(2.0)
        .jitter(fastreq::retry::Jitter::None)
        .build()
        .unwrap();
    let svc = Fetch::new(retry.layer(backend(2)));
    let (mut reqs, waits) = requests("http://a.test/", 1);
    let f = svc.oneshot(reqs.remove(0)).await.expect("a response");
    assert_eq!((f.status().as_u16(), f.attempts()), (200, 3));
    // Backoffs of 1 s then 2 s; three attempts on the wire.
    assert!(
        near(waits[0].get(), Duration::from_secs(3)),
        "{:?}",
        waits[0].get()
    );
    assert_eq!(f.wait(), waits[0].get());
}

#[tokio::test(start_paused = true)]
async fn without_a_wait_time_nothing_is_recorded() {
    let svc = Fetch::new(RateLimitLayer::new(1.0).layer(backend(0)));
    let reqs = (0..2).map(|_| fastreq::get("http://a.test/").build().unwrap());
    let outcomes: Vec<_> = fastreq::fan_out(svc, reqs).limit(8).collect().await;
    for o in outcomes {
        assert_eq!(o.result.expect("a response").wait(), Duration::ZERO);
    }
}

#[tokio::test(start_paused = true)]
async fn a_gauge_counts_the_requests_waiting_now() {
    let gauge = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let layer = ConcurrencyLimitLayer::builder()
        .per_host(1)
        .build()
        .unwrap();
    let svc = Fetch::new(RateLimitLayer::per_host(1.0).layer(layer.layer(backend(0))));
    let reqs: Vec<_> = (0..3)
        .map(|_| {
            let mut req = fastreq::get("http://a.test/").build().unwrap();
            req.extensions_mut()
                .insert(WaitTime::with_gauge(gauge.clone()));
            req
        })
        .collect();
    let run = tokio::spawn(async move {
        fastreq::fan_out(svc, reqs)
            .limit(8)
            .collect::<Vec<_>>()
            .await
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    // One on the wire, two waiting for the host's rate token.
    assert_eq!(gauge.load(Ordering::Relaxed), 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(gauge.load(Ordering::Relaxed), 1);
    let outcomes = run.await.unwrap();
    assert!(outcomes.iter().all(|o| o.result.is_ok()));
    assert_eq!(gauge.load(Ordering::Relaxed), 0, "every wait ended");
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_wait_leaves_the_gauge() {
    let gauge = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let retry = RetryLayer::builder()
        .max_retries(1)
        .initial_backoff(Duration::from_secs(10))
        .jitter(fastreq::retry::Jitter::None)
        .build()
        .unwrap();
    let svc = Fetch::new(retry.layer(backend(1)));
    let mut req = fastreq::get("http://a.test/").build().unwrap();
    let wait = WaitTime::with_gauge(gauge.clone());
    req.extensions_mut().insert(wait.clone());
    let fut = svc.oneshot(req);
    // Cancelled during the backoff (after the first attempt's 503).
    assert!(tokio::time::timeout(Duration::from_secs(3), fut)
        .await
        .is_err());
    assert_eq!(gauge.load(Ordering::Relaxed), 0);
    assert!(
        near(wait.get(), Duration::from_secs(3) - WIRE),
        "{:?}",
        wait.get()
    );
}
