//! The retry layer: what is retried, backoff and jitter, Retry-After, limits, marks,
//! resources; over in-memory services with paused time, and over real loopback HTTP.

mod support;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use fastreq::ext::{MaxRetries, NoRedirects, RequestTimeout};
use fastreq::retry::{Jitter, NotRetried, RetryBudget, RetryLayer};
use fastreq::{Backend, Body, Error, ErrorKind, ResponseBody, ResponseExt};
use futures::future::join_all;
use http::{Method, Request, Response};
use support::{Reply, TestServer};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

const MS: fn(u64) -> Duration = Duration::from_millis;

/// What the mock backend saw of one attempt.
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    method: Method,
    uri: String,
    headers: http::HeaderMap,
    body: Option<Vec<u8>>,
    timeout: Option<RequestTimeout>,
    marker: Option<Marker>,
    no_redirects: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Marker(u32);

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    /// Gaps between consecutive attempts of one URI.
    fn gaps(&self, uri: &str) -> Vec<Duration> {
        let times: Vec<Instant> = self
            .all()
            .iter()
            .filter(|s| s.uri == uri)
            .map(|s| s.at)
            .collect();
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

type Reply1 = Result<Response<ResponseBody>, Error>;

/// An in-memory backend: `f(n, uri)` answers the n-th call (0-based, per URI) after
/// recording the request.
fn mock<F>(
    log: Log,
    f: F,
) -> impl Service<Request<Body>, Response = Response<ResponseBody>, Error = Error, Future: Send>
       + Clone
       + Send
where
    F: Fn(usize, &str) -> Reply1 + Send + Sync + 'static,
{
    let f = Arc::new(f);
    tower::service_fn(move |req: Request<Body>| {
        let log = log.clone();
        let f = f.clone();
        async move {
            let uri = req.uri().to_string();
            let seen = Seen {
                at: Instant::now(),
                method: req.method().clone(),
                uri: uri.clone(),
                headers: req.headers().clone(),
                body: req.body().as_bytes().map(<[u8]>::to_vec),
                timeout: req.extensions().get::<RequestTimeout>().copied(),
                marker: req.extensions().get::<Marker>().copied(),
                no_redirects: req.extensions().get::<NoRedirects>().is_some(),
            };
            let n = {
                let mut all = log.0.lock().unwrap();
                let n = all.iter().filter(|s| s.uri == uri).count();
                all.push(seen);
                n
            };
            f(n, &uri)
        }
    })
}

fn status(code: u16) -> Reply1 {
    Ok(Response::builder()
        .status(code)
        .body(ResponseBody::from(format!("status {code}")))
        .unwrap())
}

fn status_with(code: u16, name: &str, value: &str) -> Reply1 {
    Ok(Response::builder()
        .status(code)
        .header(name, value)
        .body(ResponseBody::from(format!("status {code}")))
        .unwrap())
}

fn get(url: &str) -> Request<Body> {
    fastreq::get(url).build().unwrap()
}

fn no_jitter() -> fastreq::retry::RetryBuilder {
    RetryLayer::builder()
        .jitter(Jitter::None)
        .initial_backoff(MS(100))
}

fn assert_close(actual: Duration, expected: Duration) {
    let diff = actual.abs_diff(expected);
    assert!(diff <= MS(1), "expected {expected:?}, got {actual:?}");
}

#[tokio::test(start_paused = true)]
async fn retries_503_until_success_and_counts_attempts() {
    let log = Log::default();
    let svc = RetryLayer::new().layer(mock(log.clone(), |n, _| {
        status(if n < 2 { 503 } else { 200 })
    }));
    let resp = svc.oneshot(get("http://a.test/x")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.attempts(), 3);
    assert_eq!(
        resp.extensions().get::<fastreq::ext::Attempts>(),
        Some(&fastreq::ext::Attempts(3))
    );
    assert_eq!(resp.extensions().get::<NotRetried>(), None);
    assert_eq!(log.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn first_success_is_one_attempt() {
    let log = Log::default();
    let svc = RetryLayer::new().layer(mock(log.clone(), |_, _| status(404)));
    let resp = svc.oneshot(get("http://a.test/x")).await.unwrap();
    assert_eq!(resp.status(), 404, "4xx other than 429 is not retried");
    assert_eq!(resp.attempts(), 1);
    // One attempt is not recorded: the extension map of a first-try response stays empty.
    assert!(resp.extensions().get::<fastreq::ext::Attempts>().is_none());
    assert_eq!(resp.extensions().get::<NotRetried>(), None);
    assert_eq!(log.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_max_retries_marked_exhausted() {
    for code in [429, 500, 502, 503, 504] {
        let log = Log::default();
        let svc = RetryLayer::new().layer(mock(log.clone(), move |_, _| status(code)));
        let resp = svc.oneshot(get("http://a.test/x")).await.unwrap();
        assert_eq!(resp.status(), code);
        assert_eq!(resp.attempts(), 4, "3 retries by default");
        assert_eq!(
            resp.extensions().get::<NotRetried>(),
            Some(&NotRetried::RetriesExhausted)
        );
        // The body of the last response is intact.
        assert_eq!(resp.text().await.unwrap(), format!("status {code}"));
        assert_eq!(log.len(), 4);
    }
}

#[tokio::test(start_paused = true)]
async fn errors_count_attempts() {
    let log = Log::default();
    let svc = RetryLayer::builder()
        .max_retries(2)
        .build()
        .unwrap()
        .layer(mock(log.clone(), |_, _| {
            Err(Error::new(ErrorKind::Connect)
                .with_message("could not connect")
                .with_url("http://a.test/x?token=s"))
        }));
    let err = svc.oneshot(get("http://a.test/x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert_eq!(err.attempts(), Some(3));
    assert_eq!(
        NotRetried::from_error(&err),
        Some(NotRetried::RetriesExhausted)
    );
    assert_eq!(err.url(), Some("http://a.test/x?token=REDACTED"));
    assert!(err.to_string().contains("after 3 attempts"), "{err}");
    assert_eq!(log.len(), 3);

    // Errors that are not retryable come back after one attempt, unmarked.
    for kind in [ErrorKind::Tls, ErrorKind::InvalidRequest, ErrorKind::Decode] {
        let log = Log::default();
        let svc = RetryLayer::new().layer(mock(log.clone(), move |_, _| Err(Error::new(kind))));
        let err = svc.oneshot(get("http://a.test/x")).await.unwrap_err();
        assert_eq!(err.kind(), kind);
        assert_eq!(err.attempts(), Some(1));
        assert_eq!(NotRetried::from_error(&err), None);
        assert_eq!(log.len(), 1);
    }

    // Timeouts and resets are retried until success.
    let log = Log::default();
    let svc = RetryLayer::new().layer(mock(log.clone(), |n, _| match n {
        0 => Err(Error::new(ErrorKind::Timeout)),
        1 => Err(Error::new(ErrorKind::Io)
            .with_source(std::io::Error::from(std::io::ErrorKind::ConnectionReset))),
        _ => status(200),
    }));
    let resp = svc.oneshot(get("http://a.test/x")).await.unwrap();
    assert_eq!(resp.attempts(), 3);
}

#[tokio::test(start_paused = true)]
async fn exponential_growth_and_cap_without_jitter() {
    let log = Log::default();
    let svc = no_jitter()
        .max_backoff(MS(1000))
        .max_retries(6)
        .build()
        .unwrap()
        .layer(mock(log.clone(), |_, _| status(503)));
    let start = Instant::now();
    let resp = svc.oneshot(get("http://a.test/x")).await.unwrap();
    assert_eq!(resp.attempts(), 7);
    let gaps = log.gaps("http://a.test/x");
    let want = [100, 200, 400, 800, 1000, 1000];
    assert_eq!(gaps.len(), want.len());
    for (g, w) in gaps.iter().zip(want) {
        assert_close(*g, MS(w));
    }
    // No sleep after the last attempt.
    assert_close(start.elapsed(), MS(3500));

    // Factor 3.
    let log = Log::default();
    let svc = no_jitter()
        .backoff_factor(3.0)
        .max_retries(3)
        .build()
        .unwrap()
        .layer(mock(log.clone(), |_, _| status(503)));
    svc.oneshot(get("http://a.test/y")).await.unwrap();
    let gaps = log.gaps("http://a.test/y");
    for (g, w) in gaps.iter().zip([100, 300, 900]) {
        assert_close(*g, MS(w));
    }
}

/// Sends `n` concurrent requests that each fail once, returns each one's gap.
async fn first_gaps(layer: RetryLayer, n: usize) -> Vec<Duration> {
    let log = Log::default();
    let svc = layer.layer(mock(log.clone(), |n, _| {
        status(if n == 0 { 503 } else { 200 })
    }));
    let futs = (0..n).map(|i| svc.clone().oneshot(get(&format!("http://a.test/r/{i}"))));
    for r in join_all(futs).await {
        assert_eq!(r.unwrap().attempts(), 2);
    }
    (0..n)
        .map(|i| log.gaps(&format!("http://a.test/r/{i}"))[0])
        .collect()
}

#[tokio::test(start_paused = true)]
async fn each_jitter_kind_stays_within_its_bounds() {
    const N: usize = 200;
    let layer = |j| {
        RetryLayer::builder()
            .jitter(j)
            .initial_backoff(MS(100))
            .build()
            .unwrap()
    };
    let within = |gaps: &[Duration], lo: u64, hi: u64| {
        for g in gaps {
            assert!(
                *g >= MS(lo) && *g <= MS(hi + 1),
                "{g:?} outside {lo}..{hi} ms"
            );
        }
    };
    let distinct = |gaps: &[Duration]| {
        gaps.iter()
            .map(|g| g.as_micros() / 500)
            .collect::<std::collections::HashSet<_>>()
            .len()
    };

    let none = first_gaps(layer(Jitter::None), N).await;
    within(&none, 100, 100);
    assert_eq!(distinct(&none), 1);

    let full = first_gaps(layer(Jitter::Full), N).await;
    within(&full, 0, 100);
    assert!(
        distinct(&full) > 50,
        "full jitter spreads: {}",
        distinct(&full)
    );
    assert!(full.iter().any(|g| *g < MS(20)) && full.iter().any(|g| *g > MS(80)));

    let equal = first_gaps(layer(Jitter::Equal), N).await;
    within(&equal, 50, 100);
    assert!(distinct(&equal) > 30);

    let decorrelated = first_gaps(layer(Jitter::Decorrelated), N).await;
    within(&decorrelated, 100, 300);
    assert!(distinct(&decorrelated) > 50);
}

/// Two concurrent requests that each fail three times: their gaps.
async fn gap_sequences(layer: RetryLayer) -> [Vec<Duration>; 2] {
    let log = Log::default();
    let svc = layer.layer(mock(log.clone(), |n, _| {
        status(if n < 3 { 503 } else { 200 })
    }));
    let (a, b) = tokio::join!(
        svc.clone().oneshot(get("http://a.test/a")),
        svc.clone().oneshot(get("http://a.test/b")),
    );
    assert_eq!(a.unwrap().attempts(), 4);
    assert_eq!(b.unwrap().attempts(), 4);
    [log.gaps("http://a.test/a"), log.gaps("http://a.test/b")]
}

#[tokio::test(start_paused = true)]
async fn two_requests_get_different_delays() {
    // Default layer (full jitter), and a fixed seed: requests still differ. (Timers tick
    // in milliseconds; three equal gaps in a row by chance is about one in 8 million.)
    for layer in [
        RetryLayer::new(),
        RetryLayer::builder().seed(1).build().unwrap(),
    ] {
        let [a, b] = gap_sequences(layer).await;
        assert_eq!(a.len(), 3);
        assert_ne!(a, b);
    }
    // A fixed seed is reproducible.
    let a = gap_sequences(RetryLayer::builder().seed(9).build().unwrap()).await;
    let b = gap_sequences(RetryLayer::builder().seed(9).build().unwrap()).await;
    assert_eq!(a, b);
}

#[tokio::test(start_paused = true)]
async fn retry_after_seconds_replaces_the_backoff() {
    let log = Log::default();
    let svc = no_jitter()
        .build()
        .unwrap()
        .layer(mock(log.clone(), |n, _| match n {
            0 => status_with(503, "retry-after", "7"),
            1 => status_with(429, "retry-after", "0"),
            _ => status(200),
        }));
    let resp = svc.oneshot(get("http://a.test/x")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.attempts(), 3);
    let gaps = log.gaps("http://a.test/x");
    assert_close(gaps[0], Duration::from_secs(7));
    assert_close(gaps[1], Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn retry_after_http_date() {
    let log = Log::default();
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(5));
    let svc = no_jitter()
        .build()
        .unwrap()
        .layer(mock(log.clone(), move |n, _| {
            if n == 0 {
                status_with(503, "retry-after", &at)
            } else {
                status(200)
            }
        }));
    let resp = svc.oneshot(get("http://a.test/x")).await.unwrap();
    assert_eq!(resp.attempts(), 2);
    let gap = log.gaps("http://a.test/x")[0];
    // The date has one-second resolution.
    assert!(gap >= Duration::from_secs(4) && gap <= MS(5001), "{gap:?}");
}

#[tokio::test(start_paused = true)]
async fn huge_retry_after_returns_the_response_without_sleeping() {
    let far_date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(7200));
    for (value, cap) in [
        ("3600", None),
        ("99999999999999999999", None),
        (far_date.as_str(), None),
        ("11", Some(Duration::from_secs(10))),
    ] {
        let log = Log::default();
        let mut b = no_jitter();
        if let Some(cap) = cap {
            b = b.max_retry_after(cap);
        }
        let v = value.to_owned();
        let svc = b.build().unwrap().layer(mock(log.clone(), move |_, _| {
            status_with(503, "retry-after", &v)
        }));
        let start = Instant::now();
        let resp = svc.oneshot(get("http://a.test/x")).await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO, "{value}: no sleep");
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.attempts(), 1);
        assert_eq!(
            resp.extensions().get::<NotRetried>(),
            Some(&NotRetried::RetryAfterTooLong)
        );
        assert_eq!(resp.headers()["retry-after"], value);
        assert_eq!(log.len(), 1);
    }
    // At the cap exactly: honoured.
    let log = Log::default();
    let svc = no_jitter()
        .max_retry_after(Duration::from_secs(10))
        .build()
        .unwrap()
        .layer(mock(log.clone(), |n, _| {
            if n == 0 {
                status_with(503, "retry-after", "10")
            } else {
                status(200)
            }
        }));
    assert_eq!(
        svc.oneshot(get("http://a.test/x"))
            .await
            .unwrap()
            .attempts(),
        2
    );
    assert_close(log.gaps("http://a.test/x")[0], Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn post_not_retried_unless_enabled() {
    let post = || {
        fastreq::post("http://a.test/x")
            .body("data")
            .build()
            .unwrap()
    };
    for method in [Method::POST, Method::PATCH] {
        let log = Log::default();
        let svc = RetryLayer::new().layer(mock(log.clone(), |_, _| status(503)));
        let req = Request::builder()
            .method(method.clone())
            .uri("http://a.test/x")
            .body(Body::from("data"))
            .unwrap();
        let resp = svc.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.attempts(), 1);
        assert_eq!(
            resp.extensions().get::<NotRetried>(),
            Some(&NotRetried::NotIdempotent),
            "{method}"
        );
        assert_eq!(log.len(), 1);
    }
    // A POST error is marked too: a timeout may come after the server processed it.
    let log = Log::default();
    let svc = RetryLayer::new().layer(mock(log.clone(), |_, _| {
        Err(Error::new(ErrorKind::Timeout))
    }));
    let err = svc.oneshot(post()).await.unwrap_err();
    assert_eq!(
        NotRetried::from_error(&err),
        Some(NotRetried::NotIdempotent)
    );
    assert_eq!(log.len(), 1);

    // But a connect error means nothing was sent: a POST is retried after it.
    let log = Log::default();
    let svc = RetryLayer::new().layer(mock(log.clone(), |n, _| {
        if n == 0 {
            Err(Error::new(ErrorKind::Connect))
        } else {
            status(201)
        }
    }));
    let resp = svc.oneshot(post()).await.unwrap();
    assert_eq!((resp.status().as_u16(), resp.attempts()), (201, 2));
    assert_eq!(log.all()[1].body.as_deref(), Some(&b"data"[..]));

    // Idempotent methods are retried.
    for method in [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
        Method::TRACE,
    ] {
        let log = Log::default();
        let svc = RetryLayer::new().layer(mock(log.clone(), |_, _| status(503)));
        let req = Request::builder()
            .method(method.clone())
            .uri("http://a.test/x")
            .body(Body::empty())
            .unwrap();
        assert_eq!(svc.oneshot(req).await.unwrap().attempts(), 4, "{method}");
    }

    // Opt in.
    let log = Log::default();
    let svc = RetryLayer::builder()
        .retry_non_idempotent(true)
        .build()
        .unwrap()
        .layer(mock(log.clone(), |n, _| {
            status(if n == 0 { 503 } else { 201 })
        }));
    let resp = svc.oneshot(post()).await.unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.attempts(), 2);
    let seen = log.all();
    assert_eq!(seen[1].method, Method::POST);
    assert_eq!(seen[1].body.as_deref(), Some(&b"data"[..]));
}

fn streamed() -> Body {
    Body::wrap_stream(futures::stream::iter(vec![
        Ok::<_, std::io::Error>(Bytes::from("a")),
        Ok(Bytes::from("b")),
    ]))
}

#[tokio::test(start_paused = true)]
async fn streaming_body_on_503_returns_the_503_marked() {
    let log = Log::default();
    let svc = RetryLayer::new().layer(mock(log.clone(), |_, _| status(503)));
    let req = Request::put("http://a.test/upload")
        .body(streamed())
        .unwrap();
    let resp = svc.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.attempts(), 1);
    assert_eq!(
        resp.extensions().get::<NotRetried>(),
        Some(&NotRetried::BodyNotReplayable)
    );
    assert_eq!(
        resp.text().await.unwrap(),
        "status 503",
        "the real response"
    );
    assert_eq!(log.len(), 1);

    // A streamed body that succeeds carries no mark.
    let svc = RetryLayer::new().layer(mock(Log::default(), |_, _| status(200)));
    let resp = svc
        .oneshot(Request::put("http://a.test/u").body(streamed()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.extensions().get::<NotRetried>(), None);
}

#[tokio::test(start_paused = true)]
async fn streaming_body_error_comes_back_marked() {
    let log = Log::default();
    let svc = RetryLayer::new().layer(mock(log.clone(), |_, _| {
        Err(Error::new(ErrorKind::Io)
            .with_message("request failed: connection reset")
            .with_url("http://a.test/upload")
            .with_source(std::io::Error::from(std::io::ErrorKind::ConnectionReset)))
    }));
    let req = Request::put("http://a.test/upload")
        .body(streamed())
        .unwrap();
    let err = svc.oneshot(req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "the kind is kept");
    assert_eq!(err.attempts(), Some(1));
    assert_eq!(
        NotRetried::from_error(&err),
        Some(NotRetried::BodyNotReplayable)
    );
    assert_eq!(err.url(), Some("http://a.test/upload"));
    assert_eq!(
        err.message(),
        Some("request failed: connection reset (not retried: the request body is a stream and cannot be replayed)")
    );
    // The original error is in the chain.
    let mark = std::error::Error::source(&err).unwrap();
    let original = mark.source().unwrap().downcast_ref::<Error>().unwrap();
    assert_eq!(original.message(), Some("request failed: connection reset"));
    assert_eq!(log.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn budget_stops_a_retry_storm() {
    const N: usize = 100;
    // Control: without a budget every request makes 4 attempts.
    let log = Log::default();
    let svc = RetryLayer::builder()
        .initial_backoff(MS(1))
        .build()
        .unwrap()
        .layer(mock(log.clone(), |_, _| status(503)));
    for i in 0..N {
        svc.clone()
            .oneshot(get(&format!("http://a.test/{i}")))
            .await
            .unwrap();
    }
    assert_eq!(log.len(), 4 * N);

    // 10 % extra load, no free retries.
    let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.1).unwrap();
    let log = Log::default();
    let svc = RetryLayer::builder()
        .initial_backoff(MS(1))
        .budget(budget.clone())
        .build()
        .unwrap()
        .layer(mock(log.clone(), |_, _| status(503)));
    let mut exhausted = 0;
    for i in 0..N {
        let resp = svc
            .clone()
            .oneshot(get(&format!("http://a.test/{i}")))
            .await
            .unwrap();
        if resp.extensions().get::<NotRetried>() == Some(&NotRetried::BudgetExhausted) {
            exhausted += 1;
        }
    }
    let retries = log.len() - N;
    assert!(retries <= N / 10, "{retries} retries for {N} requests");
    assert!(
        retries >= N / 10 - 1,
        "the budget's share is used: {retries}"
    );
    assert!(exhausted >= N - retries, "{exhausted}");
    assert!(budget.balance() < 1.0);
}

#[tokio::test(start_paused = true)]
async fn total_deadline_times_out_a_slow_attempt() {
    let slow = tower::service_fn(|_req: Request<Body>| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        status(200)
    });
    let svc = RetryLayer::builder()
        .deadline(Duration::from_secs(1))
        .build()
        .unwrap()
        .layer(slow);
    let start = Instant::now();
    let err = svc
        .oneshot(get("http://a.test/slow?token=x"))
        .await
        .unwrap_err();
    assert_close(start.elapsed(), Duration::from_secs(1));
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.attempts(), Some(1));
    assert!(err.to_string().contains("deadline"), "{err}");
    assert_eq!(err.url(), Some("http://a.test/slow?token=REDACTED"));

    // Across attempts: 503 at 0, then a slow attempt at 100 ms cut at 1 s.
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let svc = no_jitter()
        .deadline(Duration::from_secs(1))
        .build()
        .unwrap()
        .layer(tower::service_fn(move |_req: Request<Body>| {
            let n = c.fetch_add(1, SeqCst);
            async move {
                if n > 0 {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
                status(503)
            }
        }));
    let start = Instant::now();
    let err = svc.oneshot(get("http://a.test/x")).await.unwrap_err();
    assert_close(start.elapsed(), Duration::from_secs(1));
    assert!(err.is_timeout());
    assert_eq!(err.attempts(), Some(2));
    assert_eq!(calls.load(SeqCst), 2);

    // A streamed body has no template; the deadline error still names the URL.
    let svc = RetryLayer::builder()
        .deadline(MS(500))
        .build()
        .unwrap()
        .layer(tower::service_fn(|_req: Request<Body>| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            status(200)
        }));
    let err = svc
        .oneshot(Request::put("http://a.test/up").body(streamed()).unwrap())
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(err.url(), Some("http://a.test/up"));
}

#[tokio::test(start_paused = true)]
async fn deadline_stops_before_a_backoff_that_would_pass_it() {
    let log = Log::default();
    let svc = no_jitter()
        .deadline(MS(500))
        .max_retries(10)
        .build()
        .unwrap()
        .layer(mock(log.clone(), |_, _| status(503)));
    let start = Instant::now();
    let resp = svc.oneshot(get("http://a.test/x")).await.unwrap();
    // Attempts at 0, 100, 300 ms; the next would be at 700 ms.
    assert_eq!(resp.attempts(), 3);
    assert_close(start.elapsed(), MS(300));
    assert_eq!(
        resp.extensions().get::<NotRetried>(),
        Some(&NotRetried::Deadline)
    );

    // A Retry-After past the deadline: returned at once.
    let log = Log::default();
    let svc = no_jitter()
        .deadline(Duration::from_secs(5))
        .build()
        .unwrap()
        .layer(mock(log.clone(), |_, _| {
            status_with(503, "retry-after", "30")
        }));
    let start = Instant::now();
    let resp = svc.oneshot(get("http://a.test/x")).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(
        resp.extensions().get::<NotRetried>(),
        Some(&NotRetried::Deadline)
    );
    assert_eq!(log.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn per_request_max_retries() {
    for (ext, layer_max, calls) in [
        (Some(0), 3, 1),
        (Some(1), 3, 2),
        (Some(5), 1, 6),
        (None, 2, 3),
    ] {
        let log = Log::default();
        let svc = RetryLayer::builder()
            .max_retries(layer_max)
            .initial_backoff(MS(1))
            .build()
            .unwrap()
            .layer(mock(log.clone(), |_, _| status(503)));
        let mut b = fastreq::get("http://a.test/x");
        if let Some(n) = ext {
            b = b.retries(n);
        }
        let resp = svc.oneshot(b.build().unwrap()).await.unwrap();
        assert_eq!(log.len(), calls, "{ext:?}");
        assert_eq!(resp.attempts() as usize, calls);
        assert_eq!(
            resp.extensions().get::<NotRetried>(),
            Some(&NotRetried::RetriesExhausted)
        );
    }
    // MaxRetries(0) with a success: no mark.
    let svc = RetryLayer::new().layer(mock(Log::default(), |_, _| status(200)));
    let mut req = get("http://a.test/x");
    req.extensions_mut().insert(MaxRetries(0));
    let resp = svc.oneshot(req).await.unwrap();
    assert_eq!(resp.extensions().get::<NotRetried>(), None);
    assert_eq!(resp.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn status_list_and_classifier() {
    // Status list: only 418.
    let layer = RetryLayer::builder()
        .retry_on_status([418])
        .initial_backoff(MS(1))
        .build()
        .unwrap();
    let log = Log::default();
    let svc = layer.layer(mock(log.clone(), |n, _| {
        status(if n == 0 { 418 } else { 200 })
    }));
    assert_eq!(
        svc.oneshot(get("http://a.test/x"))
            .await
            .unwrap()
            .attempts(),
        2
    );
    let svc = layer.layer(mock(Log::default(), |_, _| status(503)));
    let resp = svc.oneshot(get("http://a.test/x")).await.unwrap();
    assert_eq!(resp.attempts(), 1, "503 is no longer in the list");
    assert_eq!(resp.extensions().get::<NotRetried>(), None);
    // Errors still follow the default rules.
    let svc = layer.layer(mock(Log::default(), |_, _| {
        Err(Error::new(ErrorKind::Connect))
    }));
    assert_eq!(
        svc.oneshot(get("http://a.test/x"))
            .await
            .unwrap_err()
            .attempts(),
        Some(4)
    );

    // Classifier: a header says retry; timeouts are never retried.
    let layer = RetryLayer::builder()
        .initial_backoff(MS(1))
        .classify(|outcome| match outcome {
            Ok(head) => head.headers.get("x-retry").is_some_and(|v| v == "yes"),
            Err(e) => !e.is_timeout() && fastreq::retry::is_retryable_error(e),
        })
        .build()
        .unwrap();
    let log = Log::default();
    let svc = layer.layer(mock(log.clone(), |n, _| {
        if n < 2 {
            status_with(200, "x-retry", "yes")
        } else {
            status(503)
        }
    }));
    let resp = svc.oneshot(get("http://a.test/x")).await.unwrap();
    assert_eq!(resp.status(), 503, "503 is not retried by this classifier");
    assert_eq!(resp.attempts(), 3);
    let svc = layer.layer(mock(Log::default(), |_, _| {
        Err(Error::new(ErrorKind::Timeout))
    }));
    assert_eq!(
        svc.oneshot(get("http://a.test/x"))
            .await
            .unwrap_err()
            .attempts(),
        Some(1)
    );
    let svc = layer.layer(mock(Log::default(), |n, _| {
        if n == 0 {
            Err(Error::new(ErrorKind::Connect))
        } else {
            status(200)
        }
    }));
    assert_eq!(
        svc.oneshot(get("http://a.test/x"))
            .await
            .unwrap()
            .attempts(),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn each_attempt_gets_a_full_copy_of_the_request() {
    let log = Log::default();
    let svc = RetryLayer::new().layer(mock(log.clone(), |n, _| {
        status(if n < 2 { 503 } else { 200 })
    }));
    let mut req = fastreq::put("http://a.test/x?q=1")
        .header("x-one", "1")
        .header("authorization", "Bearer t")
        .timeout(Duration::from_secs(3))
        .no_redirects()
        .body("payload")
        .build()
        .unwrap();
    req.extensions_mut().insert(Marker(7));
    let resp = svc.oneshot(req).await.unwrap();
    assert_eq!(resp.attempts(), 3);
    let seen = log.all();
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert_eq!(s.method, Method::PUT);
        assert_eq!(s.uri, "http://a.test/x?q=1");
        assert_eq!(s.headers["x-one"], "1");
        assert_eq!(s.headers["authorization"], "Bearer t");
        assert_eq!(s.body.as_deref(), Some(&b"payload"[..]));
        assert_eq!(s.timeout, Some(RequestTimeout(Duration::from_secs(3))));
        assert_eq!(s.marker, Some(Marker(7)), "every extension is copied");
        assert!(s.no_redirects);
    }
}

/// A response body that records when it is dropped.
struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}
impl http_body::Body for DropFlag {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Pending
    }
}

#[tokio::test(start_paused = true)]
async fn retried_response_body_is_dropped_before_the_backoff() {
    let flags: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
    let f = flags.clone();
    let svc = no_jitter()
        .max_retries(1)
        .build()
        .unwrap()
        .layer(tower::service_fn(move |_req: Request<Body>| {
            let flag = Arc::new(AtomicBool::new(false));
            f.lock().unwrap().push(flag.clone());
            async move {
                Ok::<_, Error>(
                    Response::builder()
                        .status(503)
                        .body(ResponseBody::new(DropFlag(flag)))
                        .unwrap(),
                )
            }
        }));
    let task = tokio::spawn(svc.oneshot(get("http://a.test/x")));
    tokio::time::sleep(MS(50)).await; // inside the 100 ms backoff
    {
        let flags = flags.lock().unwrap();
        assert_eq!(flags.len(), 1, "still sleeping");
        assert!(
            flags[0].load(SeqCst),
            "the 503's body was dropped before sleeping"
        );
    }
    let resp = task.await.unwrap().unwrap();
    assert_eq!(resp.attempts(), 2);
    assert!(
        !flags.lock().unwrap()[1].load(SeqCst),
        "the last body is returned"
    );
}

/// A service whose readiness holds a slot (like a concurrency limit): `poll_ready` takes
/// one, the response future gives it back.
struct Gate {
    held: Arc<AtomicUsize>,
    ready_at: Arc<Mutex<Vec<Instant>>>,
    has_slot: bool,
    calls: Arc<AtomicU32>,
}

impl Clone for Gate {
    /// A clone starts without a slot, like a tower service clone starts not ready.
    fn clone(&self) -> Self {
        Gate {
            held: self.held.clone(),
            ready_at: self.ready_at.clone(),
            has_slot: false,
            calls: self.calls.clone(),
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if self.has_slot {
            self.held.fetch_sub(1, SeqCst);
        }
    }
}

impl Service<Request<Body>> for Gate {
    type Response = Response<ResponseBody>;
    type Error = Error;
    type Future = Pin<Box<dyn std::future::Future<Output = Reply1> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if !self.has_slot {
            self.has_slot = true;
            self.held.fetch_add(1, SeqCst);
            self.ready_at.lock().unwrap().push(Instant::now());
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<Body>) -> Self::Future {
        assert!(self.has_slot, "called without poll_ready");
        self.has_slot = false;
        let held = self.held.clone();
        let n = self.calls.fetch_add(1, SeqCst);
        Box::pin(async move {
            tokio::time::sleep(MS(10)).await;
            held.fetch_sub(1, SeqCst);
            status(if n == 0 { 503 } else { 200 })
        })
    }
}

#[tokio::test(start_paused = true)]
async fn backoff_holds_no_readiness() {
    let gate = Gate {
        held: Arc::default(),
        ready_at: Arc::default(),
        has_slot: false,
        calls: Arc::default(),
    };
    let held = gate.held.clone();
    let ready_at = gate.ready_at.clone();
    let start = Instant::now();
    let svc = no_jitter().build().unwrap().layer(gate);
    // `oneshot` drives poll_ready, then call (which takes the ready service).
    let task = tokio::spawn(svc.oneshot(get("http://a.test/x")));
    tokio::time::sleep(MS(5)).await;
    assert_eq!(held.load(SeqCst), 1, "the first attempt holds its slot");
    tokio::time::sleep(MS(50)).await; // t = 55 ms: the first attempt ended at 10 ms
    assert_eq!(held.load(SeqCst), 0, "no slot held during the backoff");
    assert_eq!(ready_at.lock().unwrap().len(), 1);
    let resp = task.await.unwrap().unwrap();
    assert_eq!(resp.attempts(), 2);
    let ready_at = ready_at.lock().unwrap().clone();
    assert_eq!(ready_at.len(), 2);
    // The second readiness was asked for when the backoff ended (10 ms + 100 ms).
    assert_close(ready_at[1] - start, MS(110));
    assert_eq!(held.load(SeqCst), 0);
}

#[tokio::test]
async fn configuration_errors_name_the_value() {
    let e = RetryLayer::builder()
        .retry_on_status([503, 99])
        .build()
        .unwrap_err();
    assert!(e.is_config() && e.to_string().contains("99"), "{e}");
    let e = RetryLayer::builder()
        .deadline(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(e.is_config() && e.to_string().contains("deadline"), "{e}");
    let e = RetryLayer::builder()
        .backoff_factor(f64::NAN)
        .build()
        .unwrap_err();
    assert!(e.is_config() && e.to_string().contains("NaN"), "{e}");
    let e = RetryLayer::builder()
        .initial_backoff(Duration::from_secs(2))
        .max_backoff(Duration::from_secs(1))
        .build()
        .unwrap_err();
    assert!(
        e.is_config() && e.to_string().contains("max_backoff"),
        "{e}"
    );
    // The first error wins.
    let e = RetryLayer::builder()
        .retry_on_status([1000])
        .deadline(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("1000"), "{e}");
    let layer = RetryLayer::new();
    assert_eq!(layer.max_retries(), 3);
    let dbg = format!("{layer:?}");
    assert!(
        dbg.contains("max_retries: 3") && dbg.contains("[429, 500, 502, 503, 504]"),
        "{dbg}"
    );
}

// ---- Real loopback HTTP through fastreq::Backend (real time, tiny backoffs) ----

const T: Duration = Duration::from_secs(20);

fn loopback_layer() -> RetryLayer {
    RetryLayer::builder()
        .initial_backoff(MS(5))
        .jitter(Jitter::None)
        .build()
        .unwrap()
}

#[tokio::test]
async fn loopback_503_twice_then_ok() {
    let n = Arc::new(AtomicU32::new(0));
    let c = n.clone();
    let server = TestServer::start(move |_req| {
        if c.fetch_add(1, SeqCst) < 2 {
            Reply::status(503).body("busy")
        } else {
            Reply::text("ok")
        }
    });
    let svc = loopback_layer().layer(Backend::new());
    let req = fastreq::get(server.url("/flaky")).build().unwrap();
    let resp = tokio::time::timeout(T, svc.oneshot(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.attempts(), 3);
    assert_eq!(resp.text().await.unwrap(), "ok");
    assert_eq!(server.hits_for("/flaky"), 3);
}

#[tokio::test]
async fn loopback_reset_then_ok() {
    let n = Arc::new(AtomicU32::new(0));
    let c = n.clone();
    let server = TestServer::start(move |_req| {
        if c.fetch_add(1, SeqCst) == 0 {
            Reply::reset_before_headers()
        } else {
            Reply::text("ok")
        }
    });
    let svc = loopback_layer().layer(Backend::new());
    let req = fastreq::get(server.url("/reset")).build().unwrap();
    let resp = tokio::time::timeout(T, svc.oneshot(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.attempts(), 2);
    assert_eq!(resp.text().await.unwrap(), "ok");
    assert_eq!(server.hits_for("/reset"), 2);

    // Without retries the reset is an Io error that the default rules call retryable.
    let server2 = TestServer::start(|_req| Reply::reset_before_headers());
    let svc = RetryLayer::builder()
        .max_retries(0)
        .build()
        .unwrap()
        .layer(Backend::new());
    let err = tokio::time::timeout(
        T,
        svc.oneshot(fastreq::get(server2.url("/r")).build().unwrap()),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(fastreq::retry::is_retryable_error(&err), "{err:?}");
    assert_eq!(
        NotRetried::from_error(&err),
        Some(NotRetried::RetriesExhausted)
    );
}

#[tokio::test]
async fn loopback_connection_refused_counts_attempts() {
    let svc = RetryLayer::builder()
        .initial_backoff(MS(1))
        .max_retries(2)
        .build()
        .unwrap()
        .layer(Backend::new());
    let req = fastreq::get(support::closed_url("/x")).build().unwrap();
    let err = tokio::time::timeout(T, svc.oneshot(req))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(err.attempts(), Some(3));
}

#[tokio::test]
async fn loopback_many_requests_share_one_layer() {
    let hits: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let h = hits.clone();
    let server = TestServer::start(move |req| {
        let mut hits = h.lock().unwrap();
        let n = hits.entry(req.path().to_owned()).or_default();
        *n += 1;
        if *n == 1 {
            Reply::status(502)
        } else {
            Reply::text(req.path().to_owned())
        }
    });
    let svc = loopback_layer().layer(Backend::new());
    let futs = (0..20).map(|i| {
        let svc = svc.clone();
        let url = server.url(&format!("/p/{i}"));
        async move {
            let resp = svc
                .oneshot(fastreq::get(url).build().unwrap())
                .await
                .unwrap();
            (resp.attempts(), resp.text().await.unwrap())
        }
    });
    let results = tokio::time::timeout(T, join_all(futs)).await.unwrap();
    for (i, (attempts, text)) in results.into_iter().enumerate() {
        assert_eq!(attempts, 2);
        assert_eq!(text, format!("/p/{i}"));
    }
    assert_eq!(server.hits(), 40);
}

// ---- Requests the server never processed: retried whatever the method ----

/// An h2c (prior knowledge) server built on the `h2` crate: the first `refuse` streams are
/// answered with `RST_STREAM(REFUSED_STREAM)`, the others with 200 and the request body.
/// Returns its URL base and the request bodies it received (refused ones included).
async fn h2_refusing_server(refuse: usize) -> (String, Arc<Mutex<Vec<Bytes>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(tcp).await else {
                    return;
                };
                while let Some(Ok((req, mut respond))) = conn.accept().await {
                    let log = log.clone();
                    tokio::spawn(async move {
                        let mut body = req.into_body();
                        let mut got = Vec::new();
                        while let Some(Ok(chunk)) = body.data().await {
                            let _ = body.flow_control().release_capacity(chunk.len());
                            got.extend_from_slice(&chunk);
                        }
                        let n = {
                            let mut log = log.lock().unwrap();
                            log.push(Bytes::from(got.clone()));
                            log.len()
                        };
                        if n <= refuse {
                            respond.send_reset(h2::Reason::REFUSED_STREAM);
                        } else {
                            let head = Response::builder().status(200).body(()).unwrap();
                            if let Ok(mut tx) = respond.send_response(head, false) {
                                let _ = tx.send_data(Bytes::from(got), true);
                            }
                        }
                    });
                }
            });
        }
    });
    (format!("http://{addr}"), seen)
}

fn h2c_client(retries: u32) -> fastreq::Client {
    fastreq::stack()
        .http2_prior_knowledge()
        .retries(retries)
        .backoff(MS(1), 2.0, MS(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn post_refused_stream_is_retried() {
    // REFUSED_STREAM: the server did no application processing (RFC 9113 §8.7), so even
    // a POST is safe to send again.
    let (base, seen) = h2_refusing_server(1).await;
    let req = fastreq::post(format!("{base}/submit")).body("payload");
    let f = tokio::time::timeout(T, h2c_client(3).request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.status(), 200);
    assert_eq!(f.body(), b"payload");
    assert_eq!(f.attempts(), 2, "refused once, then accepted");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|b| b == "payload"), "{seen:?}");
}

#[tokio::test]
async fn post_refused_every_time_stops_at_the_limit() {
    let (base, seen) = h2_refusing_server(usize::MAX).await;
    let req = fastreq::post(format!("{base}/submit")).body("payload");
    let err = tokio::time::timeout(T, h2c_client(2).request(req))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err:?}");
    assert!(fastreq::retry::is_unprocessed_error(&err), "{err:?}");
    assert_eq!(err.attempts(), Some(3), "{err}");
    assert_eq!(
        NotRetried::from_error(&err),
        Some(NotRetried::RetriesExhausted)
    );
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn post_refused_with_a_streamed_body_is_not_resent() {
    let (base, seen) = h2_refusing_server(1).await;
    let req = fastreq::post(format!("{base}/submit"))
        .body(streamed())
        .build()
        .unwrap();
    let err = tokio::time::timeout(T, h2c_client(3).fetch(req))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        NotRetried::from_error(&err),
        Some(NotRetried::BodyNotReplayable),
        "{err}"
    );
    assert_eq!(err.attempts(), Some(1));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn post_to_a_closed_port_is_retried() {
    // Nothing was sent: a connect error is safe to retry for any method.
    let svc = RetryLayer::builder()
        .initial_backoff(MS(1))
        .max_retries(2)
        .build()
        .unwrap()
        .layer(Backend::new());
    let req = fastreq::post(support::closed_url("/x"))
        .body("x")
        .build()
        .unwrap();
    let err = tokio::time::timeout(T, svc.oneshot(req))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(err.attempts(), Some(3));
    assert!(fastreq::retry::is_unprocessed_error(&err));
}

#[tokio::test]
async fn post_reset_after_the_server_read_it_is_not_retried() {
    let server = TestServer::start(|_req| Reply::reset_before_headers());
    let svc = loopback_layer().layer(Backend::new());
    let req = fastreq::post(server.url("/p")).body("x").build().unwrap();
    let err = tokio::time::timeout(T, svc.oneshot(req))
        .await
        .unwrap()
        .unwrap_err();
    assert!(fastreq::retry::is_retryable_error(&err), "{err:?}");
    assert!(!fastreq::retry::is_unprocessed_error(&err), "{err:?}");
    assert_eq!(
        NotRetried::from_error(&err),
        Some(NotRetried::NotIdempotent)
    );
    assert_eq!(server.hits_for("/p"), 1);
}
