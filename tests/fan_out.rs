//! The fan-out combinator over real loopback HTTP, plus get_all and blocking.

mod support;

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use fastreq::{Backend, Body, Error, ErrorKind, FanOutExt, ResponseExt};
use futures::StreamExt;
use http::Request;
use support::{Reply, TestServer};
use tower::{Service, ServiceExt};

const T: Duration = Duration::from_secs(60);

/// The URL of input `i`: every tenth one makes the server drop the connection.
fn url_for(server: &TestServer, i: usize) -> String {
    if i % 10 == 3 {
        server.url(&format!("/{i}?fail=reset"))
    } else {
        server.url(&format!("/{i}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_with_failures_one_outcome_each() {
    let server = TestServer::builder().track_paths(false).routes();
    let n = 10_000;
    let requests = (0..n).map(|i| fastreq::get(url_for(&server, i)));
    let fan = fastreq::fan_out(Backend::new(), requests).limit(64);
    let progress = fan.progress();
    let outcomes = tokio::time::timeout(
        T,
        fan.then(|o| async move {
            let ok = match o.result {
                Ok(resp) => resp.bytes().await.is_ok(),
                Err(_) => false,
            };
            (o.index, ok)
        })
        .collect::<Vec<_>>(),
    )
    .await
    .expect("fan-out finished in time");

    assert_eq!(outcomes.len(), n);
    let indices: HashSet<usize> = outcomes.iter().map(|(i, _)| *i).collect();
    assert_eq!(indices.len(), n, "every index exactly once");
    assert!(indices.iter().all(|&i| i < n));
    for (i, ok) in &outcomes {
        assert_eq!(*ok, i % 10 != 3, "outcome of input {i}");
    }
    assert_eq!(progress.completed(), n as u64);
    assert_eq!(progress.failed(), (n / 10) as u64);
    assert_eq!(progress.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_mode_yields_input_order() {
    let server = TestServer::builder().track_paths(false).start(|req| {
        // Early inputs are the slowest, so completion order differs from input order.
        let i: u64 = req.path()[1..].parse().unwrap();
        let delay = Duration::from_millis(if i < 8 { 40 - 5 * i } else { 0 });
        if i % 10 == 3 {
            Reply::reset_before_headers()
        } else {
            Reply::text(i.to_string()).delay(delay)
        }
    });
    let n = 2_000;
    let requests = (0..n).map(|i| fastreq::get(server.url(&format!("/{i}"))));
    let fan = Backend::new().fan_out(requests).limit(16).ordered();
    let outcomes: Vec<_> = tokio::time::timeout(T, fan.collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(outcomes.len(), n);
    for (pos, o) in outcomes.into_iter().enumerate() {
        assert_eq!(o.index, pos);
        match o.result {
            Ok(resp) => {
                assert_ne!(pos % 10, 3);
                assert_eq!(resp.text().await.unwrap(), pos.to_string());
            }
            Err(e) => {
                assert_eq!(pos % 10, 3);
                assert_eq!(e.kind(), ErrorKind::Io);
            }
        }
    }
}

#[tokio::test]
async fn ordered_window_is_bounded_by_a_slow_head() {
    let server = TestServer::builder()
        .track_paths(false)
        .start_async(|req| async move {
            if req.path() == "/0" {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Reply::ok()
        });
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = pulled.clone();
    let requests = (0..100).map(move |i| {
        p.fetch_add(1, Ordering::SeqCst);
        fastreq::get(server.url(&format!("/{i}")))
    });
    let mut fan = fastreq::fan_out(Backend::new(), requests)
        .limit(8)
        .ordered();
    let first = tokio::time::timeout(T, fan.next()).await.unwrap().unwrap();
    assert_eq!(first.index, 0);
    // While the head was slow, intake stopped at the window.
    assert!(
        pulled.load(Ordering::SeqCst) <= 9,
        "pulled {}",
        pulled.load(Ordering::SeqCst)
    );
    let rest: Vec<_> = tokio::time::timeout(T, fan.collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(rest.len(), 99);
}

#[tokio::test]
async fn a_million_inputs_are_pulled_lazily() {
    let server = TestServer::builder().track_paths(false).routes();
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = pulled.clone();
    let url = server.url("/");
    let requests = (0..1_000_000).map(move |_| {
        p.fetch_add(1, Ordering::Relaxed);
        fastreq::get(&url)
    });
    let limit = 32;
    let mut fan = fastreq::fan_out(Backend::new(), requests).limit(limit);
    for _ in 0..200 {
        let o = tokio::time::timeout(T, fan.next()).await.unwrap().unwrap();
        o.result.unwrap().bytes().await.unwrap();
    }
    let n = pulled.load(Ordering::Relaxed);
    assert!((200..=200 + limit).contains(&n), "pulled {n}");
    drop(fan);
    assert!(server.hits() <= (200 + limit) as u64);
}

/// Counts futures that are alive: a request "runs" until its future is dropped.
#[derive(Clone)]
struct Live<S> {
    inner: S,
    live: Arc<AtomicUsize>,
}

struct Guard(Arc<AtomicUsize>);
impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<S> Service<Request<Body>> for Live<S>
where
    S: Service<Request<Body>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        self.live.fetch_add(1, Ordering::SeqCst);
        let guard = Guard(self.live.clone());
        let fut = self.inner.call(req);
        Box::pin(async move {
            let _guard = guard;
            fut.await
        })
    }
}

#[tokio::test]
async fn dropping_the_stream_cancels_in_flight_requests() {
    let server = TestServer::routes();
    let live = Arc::new(AtomicUsize::new(0));
    let svc = Live {
        inner: Backend::new(),
        live: live.clone(),
    };
    let requests = (0..1000).map(|i| {
        let delay = if i < 10 { 0 } else { 10_000 };
        fastreq::get(server.url(&format!("/{i}?delay_ms={delay}")))
    });
    let mut fan = fastreq::fan_out(svc, requests).limit(20);
    for _ in 0..10 {
        tokio::time::timeout(T, fan.next()).await.unwrap().unwrap();
    }
    // The slow ones are now in flight, held by the server.
    assert!(
        server
            .stats()
            .wait_until(|s| s.active() >= 10, Duration::from_secs(10))
            .await
    );
    assert!(live.load(Ordering::SeqCst) >= 10);
    drop(fan);
    assert_eq!(
        live.load(Ordering::SeqCst),
        0,
        "no request future survives the drop"
    );
    let hits = server.hits();
    // The server sees the connections close and no new request arrives.
    assert!(
        server
            .stats()
            .wait_until(|s| s.active() == 0, Duration::from_secs(10))
            .await,
        "server still has {} active",
        server.active()
    );
    assert_eq!(server.hits(), hits);
}

/// A service whose readiness fails every other time.
struct Flaky {
    polls: usize,
}

impl Service<Request<Body>> for Flaky {
    type Response = u16;
    type Error = Error;
    type Future = std::future::Ready<Result<u16, Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.polls += 1;
        if self.polls.is_multiple_of(2) {
            Poll::Ready(Err(
                Error::new(ErrorKind::RateLimiter).with_message("store down")
            ))
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn call(&mut self, _req: Request<Body>) -> Self::Future {
        std::future::ready(Ok(200))
    }
}

#[tokio::test]
async fn readiness_errors_become_outcomes() {
    let requests = (0..10).map(|i| fastreq::get(format!("http://h.test/{i}")));
    let outcomes: Vec<_> = fastreq::fan_out(Flaky { polls: 0 }, requests)
        .ordered()
        .collect()
        .await;
    assert_eq!(outcomes.len(), 10);
    let errors = outcomes.iter().filter(|o| o.result.is_err()).count();
    assert_eq!(errors, 5);
    assert!(outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err())
        .all(|e| e.kind() == ErrorKind::RateLimiter));
}

#[tokio::test]
async fn get_all_keeps_order_and_duplicates() {
    let server = TestServer::routes();
    let urls = vec![
        server.url("/a"),
        server.url("/b?status=503"),
        "not a url".to_owned(),
        server.url("/a"),
        server.url("/c?fail=reset"),
    ];
    let results = tokio::time::timeout(T, fastreq::get_all_with(Backend::new(), &urls, 4))
        .await
        .unwrap();
    assert_eq!(results.len(), 5);
    assert_eq!(
        results[0].as_ref().unwrap().final_url().to_string(),
        urls[0]
    );
    assert_eq!(results[1].as_ref().unwrap().status(), 503);
    assert!(results[2].as_ref().unwrap_err().is_invalid_request());
    assert_eq!(
        results[3].as_ref().unwrap().final_url().to_string(),
        urls[3]
    );
    assert!(results[4].is_err());
    assert_eq!(server.hits_for("/a"), 2, "duplicates are fetched twice");

    let results = fastreq::get_all(Vec::<String>::new()).await;
    assert!(results.is_empty());
}

#[tokio::test]
async fn blocking_inside_a_runtime_is_an_error_not_a_panic() {
    let err = fastreq::blocking::get_all(["http://127.0.0.1:9/"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("inside a Tokio runtime"), "{err}");
    assert!(fastreq::blocking::get("http://127.0.0.1:9/")
        .unwrap_err()
        .is_config());
}

#[test]
fn blocking_get_all_outside_a_runtime() {
    let server = TestServer::routes();
    let urls = [
        server.url("/x"),
        server.url("/x"),
        server.url("/y?status=404"),
    ];
    let results = fastreq::blocking::get_all(&urls).unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().unwrap().status(), 200);
    assert_eq!(results[2].as_ref().unwrap().status(), 404);
    let one = fastreq::blocking::get(&server.url("/z")).unwrap();
    assert_eq!(one.body().len(), support::DEFAULT_JSON.len());
    assert_eq!(server.hits(), 4);
}

#[tokio::test]
async fn fan_out_stream_input() {
    let server = TestServer::routes();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let url = server.url("/s");
    let producer = tokio::spawn(async move {
        for _ in 0..50 {
            tx.send(fastreq::get(&url)).await.unwrap();
        }
    });
    let stream = tokio_stream_from(rx);
    let outcomes: Vec<_> = tokio::time::timeout(
        T,
        fastreq::fan_out_stream(Backend::new(), stream).collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    producer.await.unwrap();
    assert_eq!(outcomes.len(), 50);
    assert!(outcomes.iter().all(|o| o.result.is_ok()));
    let _ = Backend::new().ready().await;
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Ordered mode behind a slow head: with the default window (the limit) new requests stop
/// once `limit` have started behind it; with `reorder_window` they go on, up to the window,
/// and the outcomes still come in input order.
#[tokio::test(start_paused = true)]
async fn ordered_reorder_window_keeps_going_behind_a_slow_head() {
    for (window, started_by_5s) in [(0, 4), (64, 40)] {
        let started = Arc::new(AtomicUsize::new(0));
        let seen = started.clone();
        let svc = tower::service_fn(move |req: Request<usize>| {
            let i = *req.body();
            seen.fetch_add(1, Ordering::SeqCst);
            async move {
                let d = if i == 0 { 10_000 } else { 10 };
                tokio::time::sleep(Duration::from_millis(d)).await;
                Ok::<_, Error>(i)
            }
        });
        let fan = fastreq::fan_out(svc, (0..40usize).map(Request::new))
            .limit(4)
            .ordered()
            .reorder_window(window);
        let run = tokio::spawn(fan.map(|o| o.result.unwrap()).collect::<Vec<_>>());
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            started.load(Ordering::SeqCst),
            started_by_5s,
            "window {window}"
        );
        let out = run.await.unwrap();
        assert_eq!(out, (0..40).collect::<Vec<_>>(), "window {window}");
    }
}
