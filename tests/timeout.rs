//! The timeout layer over the real backend and a local server.
//!
//! Tests under paused time rely on tokio's auto-advance: while the client waits on real
//! I/O from the server's own thread, the paused clock jumps to the client's next timer, so
//! a server that is slow in real time meets a client deadline in paused time exactly.
//! This only decides the race correctly when the timer under test is the client's
//! earliest one, so those tests keep the others (connect timeout 10 s) later.

mod support;

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use fastreq::ext::RequestTimeout;
use fastreq::timeout::{Timeout, TimeoutLayer};
use fastreq::{Backend, Body, ErrorKind, ResponseExt};
use http::Request;
use http_body_util::BodyExt;
use support::{Reply, TestServer};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tower::{Layer, ServiceBuilder, ServiceExt};

/// Upper bound for tests in real time, so none can hang.
const LIMIT: Duration = Duration::from_secs(20);

fn get(url: &str) -> Request<Body> {
    fastreq::get(url).build().unwrap()
}

fn timeouts(headers: Option<u64>, idle: Option<u64>) -> TimeoutLayer {
    TimeoutLayer::builder()
        .headers(headers.map(Duration::from_millis))
        .body_idle(idle.map(Duration::from_millis))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn slow_headers_time_out_with_redacted_url() {
    let server = TestServer::routes();
    let svc = timeouts(Some(1000), None).layer(Backend::new());
    let url = server.url("/slow?delay_ms=5000&token=s3cret");
    let start = Instant::now();
    let err = svc.oneshot(get(&url)).await.unwrap_err();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(1) && waited < Duration::from_millis(1100));
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.message(), Some("no response headers within 1s"));
    let expected = server.url("/slow?delay_ms=5000&token=REDACTED");
    assert_eq!(err.url(), Some(expected.as_str()));
    assert!(!format!("{err} {err:?}").contains("s3cret"));
}

#[tokio::test]
async fn fast_server_passes() {
    let server = TestServer::routes();
    let svc = TimeoutLayer::default().layer(Backend::new());
    let resp = tokio::time::timeout(LIMIT, svc.oneshot(get(&server.url("/fast"))))
        .await
        .expect("in time")
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), support::DEFAULT_JSON);
}

#[tokio::test(start_paused = true)]
async fn request_extension_shortens() {
    let server = TestServer::routes();
    // The backend honours `RequestTimeout` too; strip it below this layer so the test sees
    // this layer's deadline only.
    let backend = ServiceBuilder::new()
        .map_request(|mut req: Request<Body>| {
            req.extensions_mut().remove::<RequestTimeout>();
            req
        })
        .service(Backend::new());
    let svc = Timeout::new(backend, timeouts(Some(30_000), None));
    let req = fastreq::get(server.url("/?delay_ms=5000"))
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let start = Instant::now();
    let err = svc.oneshot(req).await.unwrap_err();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(500) && waited < Duration::from_millis(600));
    assert!(err.is_timeout());
    assert_eq!(err.message(), Some("no response headers within 500ms"));
}

#[tokio::test]
async fn request_extension_lengthens() {
    let server = TestServer::routes();
    // 100 ms from the layer would fail against a 300 ms server; the request allows 30 s.
    let svc = timeouts(Some(100), None).layer(Backend::new());
    let req = fastreq::get(server.url("/?delay_ms=300"))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let resp = tokio::time::timeout(LIMIT, svc.oneshot(req))
        .await
        .expect("in time")
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), support::DEFAULT_JSON);

    // Without the override the same request fails.
    let svc = timeouts(Some(100), None).layer(Backend::new());
    let err = tokio::time::timeout(LIMIT, svc.oneshot(get(&server.url("/?delay_ms=300"))))
        .await
        .expect("in time")
        .unwrap_err();
    assert!(err.is_timeout());
}

/// Reads the first body frame in real time, then pauses the clock and expects the next
/// read to fail after exactly the idle timeout.
async fn expect_idle_timeout_after_first_frame(svc: Timeout<Backend>, url: String, idle: Duration) {
    let resp = tokio::time::timeout(LIMIT, svc.oneshot(get(&url)))
        .await
        .expect("headers in time")
        .unwrap();
    let mut body = std::pin::pin!(resp.into_body());
    let first = tokio::time::timeout(LIMIT, body.frame())
        .await
        .expect("first frame in time")
        .expect("a frame")
        .expect("not an error");
    assert!(first.is_data());

    tokio::time::pause();
    let start = Instant::now();
    let err = body.frame().await.expect("an error").unwrap_err();
    // Timers tick in whole milliseconds; the clock was paused between two ticks.
    let waited = start.elapsed();
    assert!(
        waited >= idle && waited <= idle + Duration::from_millis(1),
        "{waited:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(
        err.message(),
        Some(format!("response body idle for {idle:?}").as_str())
    );
    assert_eq!(err.url(), Some(url.as_str()));
    assert!(body.frame().await.is_none(), "finished after the timeout");
}

#[tokio::test]
async fn stalled_stream_body_times_out() {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    tx.send(Bytes::from_static(b"first chunk")).await.unwrap();
    let rx = Mutex::new(Some(rx));
    let server = TestServer::start(move |_req| {
        Reply::stream(rx.lock().unwrap().take().expect("one request"))
    });
    let svc = timeouts(None, Some(2000)).layer(Backend::new());
    expect_idle_timeout_after_first_frame(svc, server.url("/stream"), Duration::from_secs(2)).await;
    drop(tx);
}

#[tokio::test]
async fn stalled_chunked_body_times_out() {
    let server = TestServer::routes();
    let svc = timeouts(Some(30_000), Some(1000)).layer(Backend::new());
    expect_idle_timeout_after_first_frame(
        svc,
        server.url("/?chunks=3&chunk_ms=5000"),
        Duration::from_secs(1),
    )
    .await;
}

#[tokio::test]
async fn slow_steady_body_completes() {
    let server = TestServer::routes();
    // 16 chunks 100 ms apart: 1.5 s in all, longer than the 1 s idle timeout.
    let svc = timeouts(Some(30_000), Some(1000)).layer(Backend::new());
    let url = server.url("/?bytes=1600&chunks=16&chunk_ms=100");
    let start = std::time::Instant::now();
    let resp = tokio::time::timeout(LIMIT, svc.oneshot(get(&url)))
        .await
        .expect("in time")
        .unwrap();
    let body = tokio::time::timeout(LIMIT, resp.bytes())
        .await
        .expect("in time")
        .unwrap();
    assert_eq!(body, support::pattern_body(1600));
    assert!(start.elapsed() >= Duration::from_millis(1500));
}

#[tokio::test(start_paused = true)]
async fn body_total_deadline() {
    let server = TestServer::routes();
    let layer = TimeoutLayer::builder()
        .headers(None)
        .body_idle(None)
        .body_total(Duration::from_secs(3))
        .build()
        .unwrap();
    let svc = layer.layer(Backend::builder().connect_timeout(None).build().unwrap());
    let url = server.url("/?chunks=3&chunk_ms=5000");
    // The earliest client timer while waiting is the total deadline, set once the
    // headers are in; the server's remaining chunks take 10 s of real time.
    let resp = svc.oneshot(get(&url)).await.unwrap();
    let start = Instant::now();
    let err = resp.bytes().await.unwrap_err();
    let waited = start.elapsed();
    assert!(waited > Duration::from_millis(2900) && waited <= Duration::from_secs(3));
    assert!(err.is_timeout());
    assert_eq!(err.message(), Some("response body not complete within 3s"));
    assert_eq!(err.url(), Some(url.as_str()));
}

#[tokio::test(start_paused = true)]
async fn inner_tower_timeout_is_a_timeout_with_url() {
    let server = TestServer::routes();
    let svc = ServiceBuilder::new()
        .layer(timeouts(Some(30_000), None))
        .timeout(Duration::from_millis(250))
        .service(Backend::new());
    let url = server.url("/?delay_ms=5000");
    let err = svc.oneshot(get(&url)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.url(), Some(url.as_str()));
}

#[test]
fn zero_durations_are_config_errors() {
    assert_eq!(
        TimeoutLayer::try_new(Duration::ZERO).unwrap_err().kind(),
        ErrorKind::Config
    );
    let err = TimeoutLayer::builder()
        .body_idle(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(err.is_config());
    assert!(err.to_string().contains("body_idle"), "{err}");
}
