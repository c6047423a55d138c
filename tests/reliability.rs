//! Nothing lost: a response body that fails half way is retried on the buffered path, and
//! the total deadline covers the body (buffered and streamed) — over the preset, the real
//! backend and a local server.
//!
//! Tests under paused time rely on tokio's auto-advance (see `tests/timeout.rs`): while the
//! client waits on real I/O, the paused clock jumps to the client's earliest timer, so the
//! timer under test is kept the earliest one.

mod support;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use fastreq::ext::Deadline;
use fastreq::{ErrorKind, ResponseExt};
use support::{Reply, TestServer};
use tokio::time::Instant;

const LIMIT: Duration = Duration::from_secs(20);
const BODY: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A server whose first `failures` replies are `fault()`, then the full body.
fn flaky(failures: u32, fault: fn() -> Reply) -> (TestServer, Arc<AtomicU32>) {
    let seen = Arc::new(AtomicU32::new(0));
    let n = seen.clone();
    let server = TestServer::start(move |_req| {
        if n.fetch_add(1, SeqCst) < failures {
            fault()
        } else {
            Reply::bytes(BODY)
        }
    });
    (server, seen)
}

fn truncated() -> Reply {
    Reply::truncated(&BODY[..10], BODY.len() as u64)
}

fn reset_mid_body() -> Reply {
    Reply::reset_after_headers(&BODY[..10])
}

fn client(retries: u32) -> fastreq::Client {
    fastreq::stack()
        .retries(retries)
        .backoff(Duration::from_millis(1), 2.0, Duration::from_millis(10))
        .build()
        .unwrap()
}

async fn in_time<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f).await.expect("in time")
}

#[tokio::test]
async fn truncated_body_is_retried_and_counted() {
    let (server, seen) = flaky(2, truncated);
    let f = in_time(client(3).get(server.url("/t"))).await.unwrap();
    assert_eq!(f.body(), BODY);
    assert_eq!(f.attempts(), 3, "two truncated bodies, then the whole one");
    assert_eq!(seen.load(SeqCst), 3);
}

#[tokio::test]
async fn reset_mid_body_is_retried() {
    let (server, seen) = flaky(1, reset_mid_body);
    let f = in_time(client(3).get(server.url("/r"))).await.unwrap();
    assert_eq!(f.body(), BODY);
    assert_eq!(f.attempts(), 2);
    assert_eq!(seen.load(SeqCst), 2);
}

#[tokio::test]
async fn body_failures_count_against_the_retry_limit() {
    let (server, seen) = flaky(u32::MAX, truncated);
    let err = in_time(client(2).get(server.url("/always")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert_eq!(err.attempts(), Some(3), "{err}");
    assert_eq!(seen.load(SeqCst), 3);
}

#[tokio::test]
async fn fan_out_retries_bodies_and_reports_attempts() {
    let (server, seen) = flaky(3, truncated);
    let client = client(3);
    let urls: Vec<String> = (0..8).map(|i| server.url(&format!("/{i}"))).collect();
    let results = in_time(client.get_all(&urls)).await;
    assert_eq!(results.len(), 8);
    let mut attempts = 0;
    for r in &results {
        let f = r.as_ref().expect("every body complete in the end");
        assert_eq!(f.body(), BODY);
        attempts += f.attempts();
    }
    assert_eq!(
        attempts,
        8 + 3,
        "the three truncated bodies were each sent again"
    );
    assert_eq!(seen.load(SeqCst), 11);
}

#[tokio::test]
async fn post_body_failure_is_not_retried() {
    let (server, seen) = flaky(1, truncated);
    let req = fastreq::post(server.url("/p")).body("x");
    let err = in_time(client(3).request(req)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert_eq!(seen.load(SeqCst), 1, "a POST is not sent twice");
}

#[tokio::test]
async fn streamed_body_failure_is_not_retried() {
    let (server, seen) = flaky(1, truncated);
    let resp = in_time(client(3).send(fastreq::get(server.url("/s")).build().unwrap()))
        .await
        .unwrap();
    // The headers came back; the body streams and fails as it is read.
    let err = in_time(resp.bytes()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert_eq!(seen.load(SeqCst), 1);
}

#[tokio::test]
async fn too_large_body_is_final() {
    let (server, seen) = flaky(0, truncated);
    let req = fastreq::get(server.url("/big"))
        .body_limit(8)
        .build()
        .unwrap();
    let err = in_time(client(3).fetch(req)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BodyTooLarge, "{err}");
    assert_eq!(seen.load(SeqCst), 1);
}

/// 40 bytes announced, one byte sent every 100 ms: 4 s in all.
fn drip() -> TestServer {
    TestServer::start(|_req| Reply::bytes(vec![b'x'; 40]).slow_body(40, Duration::from_millis(100)))
}

const IN_BODY: &str = "the request's deadline passed while the response body was read";

/// Real time: the headers must really arrive before the deadline (under paused time the
/// clock would jump to the deadline while the client waits for them). The window is wide;
/// the drip takes 4 s.
fn assert_ended_at(waited: Duration, deadline: Duration) {
    assert!(
        waited >= deadline && waited < deadline + Duration::from_millis(1500),
        "{waited:?}"
    );
}

/// The issue's case: `retries(0).timeout(1 s).total_timeout(3 s)` against a drip finished
/// OK after 8 s; the deadline now ends it, in the body.
#[tokio::test]
async fn total_deadline_ends_a_dripping_buffered_body() {
    let server = drip();
    let client = fastreq::stack()
        .retries(0)
        .timeout(Duration::from_secs(1))
        .total_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let start = Instant::now();
    let err = in_time(client.get(server.url("/drip"))).await.unwrap_err();
    assert_ended_at(start.elapsed(), Duration::from_millis(500));
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains(IN_BODY), "{err}");
}

#[tokio::test]
async fn total_deadline_ends_a_dripping_streamed_body() {
    let server = drip();
    let client = fastreq::stack()
        .retries(0)
        .total_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let start = Instant::now();
    let resp = in_time(client.send(fastreq::get(server.url("/drip")).build().unwrap()))
        .await
        .unwrap();
    let err = in_time(resp.bytes()).await.unwrap_err();
    assert_ended_at(start.elapsed(), Duration::from_millis(500));
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(err.message(), Some(IN_BODY));
}

#[tokio::test]
async fn a_deadline_on_the_request_bounds_it_without_total_timeout() {
    let server = drip();
    let client = client(0);
    let mut req = fastreq::get(server.url("/drip")).build().unwrap();
    req.extensions_mut()
        .insert(Deadline::after(Duration::from_millis(400)));
    let start = Instant::now();
    let err = in_time(client.fetch(req)).await.unwrap_err();
    assert_ended_at(start.elapsed(), Duration::from_millis(400));
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains(IN_BODY), "{err}");
}

/// Without a total deadline the same drip completes: the per-hop timeout only bounds the
/// wait for headers, and the body never pauses long enough for the idle timeout.
#[tokio::test]
async fn without_a_deadline_a_drip_completes() {
    let server = TestServer::start(|_req| {
        Reply::bytes(vec![b'x'; 5]).slow_body(5, Duration::from_millis(100))
    });
    let client = fastreq::stack()
        .retries(0)
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let f = in_time(client.get(server.url("/drip"))).await.unwrap();
    assert_eq!(f.body(), b"xxxxx");
}

/// A body that keeps failing is retried only while the deadline allows: the attempt in
/// flight at the deadline ends with a timeout, and no attempt starts after it.
#[tokio::test]
async fn body_retries_stop_at_the_deadline() {
    let seen = Arc::new(AtomicU32::new(0));
    let n = seen.clone();
    let server = TestServer::start(move |_req| {
        n.fetch_add(1, SeqCst);
        Reply::truncated(&BODY[..10], BODY.len() as u64).delay(Duration::from_millis(50))
    });
    let client = fastreq::stack()
        .retries(1000)
        .backoff(Duration::from_millis(50), 1.0, Duration::from_millis(50))
        .jitter(fastreq::retry::Jitter::None)
        .total_timeout(Duration::from_millis(600))
        .build()
        .unwrap();
    let start = Instant::now();
    let err = in_time(client.get(server.url("/x"))).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(1000));
    assert!(
        matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Io),
        "{err}"
    );
    let attempts = err.attempts().expect("counted");
    assert!((2..=7).contains(&attempts), "{err}");
    assert_eq!(seen.load(SeqCst), attempts);
}
