//! The concurrency limit over the real backend and a local server.
//!
//! The server holds response bodies open with `Reply::stream(rx)`: the test keeps the
//! senders and ends a body by dropping its sender. The headers of such a response arrive at
//! once, so a limit that released its slot at the headers (as tower's does) would let more
//! requests through; the server's `max_active` shows it.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fastreq::concurrency::{ConcurrencyLimit, ConcurrencyLimitLayer};
use fastreq::{Backend, Body, ErrorKind, ResponseExt};
use http::{Request, Uri};
use support::{Reply, TestServer};
use tokio::sync::mpsc;
use tower::{Layer, Service, ServiceExt};

/// Upper bound for any wait in real time, so no test can hang.
const LIMIT: Duration = Duration::from_secs(20);

fn get(url: &str) -> Request<Body> {
    fastreq::get(url).build().unwrap()
}

/// Bodies the server holds open: (host header, path, sender). Dropping a sender ends that
/// body.
type Held = Arc<Mutex<Vec<(String, String, mpsc::Sender<Bytes>)>>>;

/// A server whose every response streams until the test releases it.
fn holding_server() -> (TestServer, Held) {
    let held: Held = Arc::default();
    let h = Arc::clone(&held);
    let server = TestServer::start(move |req| {
        let (tx, rx) = mpsc::channel(4);
        let host = req.header("host").unwrap_or("").to_owned();
        h.lock().unwrap().push((host, req.path().to_owned(), tx));
        Reply::stream(rx)
    });
    (server, held)
}

fn held_count(held: &Held, host_prefix: &str) -> usize {
    held.lock()
        .unwrap()
        .iter()
        .filter(|(h, _, _)| h.starts_with(host_prefix))
        .count()
}

/// Ends the body of the first held request whose host starts with `host_prefix`, after
/// sending one chunk; returns its path.
async fn release_one(held: &Held, host_prefix: &str) -> String {
    let entry = {
        let mut held = held.lock().unwrap();
        let i = held
            .iter()
            .position(|(h, _, _)| h.starts_with(host_prefix))
            .expect("a held request for that host");
        held.remove(i)
    };
    let (_, path, tx) = entry;
    tx.send(Bytes::from_static(b"chunk")).await.unwrap();
    drop(tx);
    path
}

/// Waits (bounded) until `cond` holds.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Spawns one client task per URL: send, then read the whole body. Counts responses whose
/// body is being read (client side) and keeps the maximum. (Exact on the current-thread
/// runtime of `#[tokio::test]`: the count drops in the same poll that ends the body and
/// releases the slot, before another task can run.)
fn spawn_all<S>(
    svc: &S,
    urls: impl IntoIterator<Item = String>,
    open: &Arc<(AtomicUsize, AtomicUsize)>,
) -> Vec<tokio::task::JoinHandle<Result<Bytes, fastreq::Error>>>
where
    S: Service<Request<Body>, Error = fastreq::Error> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: ResponseExt + Send,
{
    urls.into_iter()
        .map(|url| {
            let svc = svc.clone();
            let open = Arc::clone(open);
            tokio::spawn(async move {
                let resp = svc.oneshot(get(&url)).await?;
                let now = open.0.fetch_add(1, SeqCst) + 1;
                open.1.fetch_max(now, SeqCst);
                let body = resp.bytes().await;
                open.0.fetch_sub(1, SeqCst);
                body
            })
        })
        .collect()
}

#[tokio::test]
async fn global_limit_bounds_requests_while_bodies_stream() {
    let (server, held) = holding_server();
    let layer = ConcurrencyLimitLayer::new(3);
    let svc = layer.layer(Backend::new());
    let open = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let tasks = spawn_all(&svc, (0..10).map(|i| server.url(&format!("/{i}"))), &open);

    let mut done = 0;
    while done < 10 {
        until("3 requests held, or the rest", || {
            held_count(&held, "") == 3.min(10 - done)
        })
        .await;
        // Headers are back for every held request (bodies still open), yet nothing more
        // goes out.
        until("headers received", || {
            open.0.load(SeqCst) == 3.min(10 - done)
        })
        .await;
        assert!(layer.in_flight() <= 3);
        assert!(server.active() <= 3);
        release_one(&held, "").await;
        done += 1;
    }
    for t in tasks {
        assert_eq!(
            tokio::time::timeout(LIMIT, t)
                .await
                .unwrap()
                .unwrap()
                .unwrap(),
            "chunk"
        );
    }
    assert_eq!(server.hits(), 10);
    assert_eq!(
        server.max_active(),
        3,
        "the server never saw more than 3 at once"
    );
    assert_eq!(open.1.load(SeqCst), 3, "client side: at most 3 bodies open");
    assert_eq!(layer.in_flight(), 0);
}

#[tokio::test]
async fn fan_out_through_the_limit_bounds_slow_bodies() {
    // Bodies arrive in 4 chunks over ~30 ms; fan_out drives 16 at a time through a limit
    // of 4. The bound holds whatever the timing.
    let server = TestServer::routes();
    let layer = ConcurrencyLimitLayer::builder()
        .max(4)
        .per_host(4)
        .build()
        .unwrap();
    let svc = layer.layer(Backend::new());
    let url = server.url("/slow?bytes=400&chunks=4&chunk_ms=10");
    let reqs: Vec<_> = (0..24).map(|_| get(&url)).collect();
    let mut outcomes = fastreq::fan_out(svc, reqs).limit(16);
    // Bodies are read in their own tasks, so fan_out keeps sending while they stream.
    let mut readers = Vec::new();
    let run = async {
        use futures_util::StreamExt;
        while let Some(o) = outcomes.next().await {
            let resp = o.result.unwrap();
            readers.push(tokio::spawn(async move { resp.bytes().await }));
            assert!(layer.in_flight() <= 4);
        }
    };
    tokio::time::timeout(LIMIT, run).await.unwrap();
    // The finished stream may still hold a ready service, which holds a permit.
    drop(outcomes);
    assert_eq!(readers.len(), 24);
    for r in readers {
        let body = tokio::time::timeout(LIMIT, r)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(body.len(), 400);
    }
    assert!(
        server.max_active() <= 4,
        "max_active {}",
        server.max_active()
    );
    assert_eq!(layer.in_flight(), 0);
}

#[tokio::test]
async fn permit_is_released_when_the_body_ends_errors_or_is_dropped() {
    let server = TestServer::start(|req| match req.path() {
        "/reset" => Reply::reset_after_headers("partial"),
        "/empty" => Reply::ok(),
        _ => Reply::text("hello"),
    });
    let layer = ConcurrencyLimitLayer::new(1);
    let mut svc: ConcurrencyLimit<Backend> = layer.layer(Backend::new());
    let ready = |svc: &mut ConcurrencyLimit<Backend>| {
        let mut svc = svc.clone();
        async move {
            tokio::time::timeout(LIMIT, svc.ready())
                .await
                .expect("a permit is free")
                .unwrap();
        }
    };

    // Ends: read to the end.
    let resp = svc
        .ready()
        .await
        .unwrap()
        .call(get(&server.url("/a")))
        .await
        .unwrap();
    assert_eq!(layer.in_flight(), 1);
    assert!(resp.body().holds_permit());
    assert_eq!(resp.text().await.unwrap(), "hello");
    assert_eq!(layer.in_flight(), 0);
    ready(&mut svc).await;

    // Errors: the server resets mid-body.
    let resp = svc
        .ready()
        .await
        .unwrap()
        .call(get(&server.url("/reset")))
        .await
        .unwrap();
    assert_eq!(layer.in_flight(), 1);
    let err = resp.text().await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Io | ErrorKind::Decode),
        "{err:?}"
    );
    assert_eq!(layer.in_flight(), 0);
    ready(&mut svc).await;

    // Dropped unread.
    let resp = svc
        .ready()
        .await
        .unwrap()
        .call(get(&server.url("/b")))
        .await
        .unwrap();
    assert_eq!(layer.in_flight(), 1);
    drop(resp);
    assert_eq!(layer.in_flight(), 0);
    ready(&mut svc).await;

    // An empty body is finished on arrival.
    let resp = svc
        .ready()
        .await
        .unwrap()
        .call(get(&server.url("/empty")))
        .await
        .unwrap();
    assert!(!resp.body().holds_permit());
    assert_eq!(layer.in_flight(), 0);
    drop(resp);

    // A connect error releases at once.
    let err = svc
        .ready()
        .await
        .unwrap()
        .call(get(&support::closed_url("/")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert_eq!(layer.in_flight(), 0);
    ready(&mut svc).await;
}

#[tokio::test]
async fn unread_streaming_response_is_released_on_drop_and_server_sees_it() {
    let (server, held) = holding_server();
    let layer = ConcurrencyLimitLayer::new(1);
    let mut svc = layer.layer(Backend::new());
    let resp = svc
        .ready()
        .await
        .unwrap()
        .call(get(&server.url("/s")))
        .await
        .unwrap();
    assert_eq!(layer.in_flight(), 1);
    let mut next = svc.clone();
    let mut next_ready = Box::pin(async move {
        next.ready().await.unwrap();
    });
    assert!(futures::poll!(next_ready.as_mut()).is_pending());
    drop(resp);
    tokio::time::timeout(LIMIT, next_ready).await.unwrap();
    assert!(
        server.stats().wait_until(|s| s.active() == 0, LIMIT).await,
        "the connection of the dropped body is closed"
    );
    drop(held);
}

#[tokio::test]
async fn per_host_limits_are_independent() {
    let (server, held) = holding_server();
    let addr = server.addr();
    let backend = Backend::builder()
        .resolve("a.test", addr)
        .resolve("b.test", addr)
        .build()
        .unwrap();
    let layer = ConcurrencyLimitLayer::builder()
        .max(10)
        .per_host(2)
        .build()
        .unwrap();
    let svc = layer.layer(backend);
    let open = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let a_url = |i: usize| server.url_with_host("a.test", &format!("/a{i}"));
    let b_url = |i: usize| server.url_with_host("b.test", &format!("/b{i}"));
    let a_uri: Uri = a_url(0).parse().unwrap();
    let b_uri: Uri = b_url(0).parse().unwrap();

    // Five requests to a: two go out, three wait for a's slots.
    let mut tasks = spawn_all(&svc, (0..5).map(a_url), &open);
    until("a has 2 in flight", || held_count(&held, "a.test") == 2).await;
    assert_eq!(layer.in_flight_for(&a_uri), 2);

    // b is not held up by a's queue.
    tasks.extend(spawn_all(&svc, (0..3).map(b_url), &open));
    until("b has 2 in flight", || held_count(&held, "b.test") == 2).await;
    assert_eq!(held_count(&held, "a.test"), 2);
    assert_eq!(layer.in_flight_for(&b_uri), 2);
    assert_eq!(server.active(), 4);
    assert_eq!(layer.tracked_hosts(), 2);

    // Release everything one at a time; each host stays at or below 2.
    for _ in 0..8 {
        until("something held", || held_count(&held, "") > 0).await;
        assert!(held_count(&held, "a.test") <= 2);
        assert!(held_count(&held, "b.test") <= 2);
        let prefix = if held_count(&held, "a.test") > 0 {
            "a.test"
        } else {
            "b.test"
        };
        release_one(&held, prefix).await;
    }
    for t in tasks {
        tokio::time::timeout(LIMIT, t)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
    assert_eq!(server.hits(), 8);
    assert_eq!(server.max_active(), 4);
    assert_eq!(layer.in_flight(), 0);
    // Both hosts are idle now: their entries can go.
    assert_eq!(layer.evict_idle(), 2);
    assert_eq!(layer.tracked_hosts(), 0);
}

#[tokio::test]
async fn per_host_waiters_are_served_first_come_first_served() {
    let (server, held) = holding_server();
    let layer = ConcurrencyLimitLayer::builder()
        .per_host(1)
        .build()
        .unwrap();
    let mut svc = layer.layer(Backend::new());
    let first = svc
        .ready()
        .await
        .unwrap()
        .call(get(&server.url("/0")))
        .await
        .unwrap();
    until("first held", || held_count(&held, "") == 1).await;

    // Call 1..=5 in order, then start them in reverse order: the queue is in call order.
    let mut futures = Vec::new();
    for i in 1..=5 {
        svc.ready().await.unwrap();
        futures.push(svc.call(get(&server.url(&format!("/{i}")))));
    }
    let tasks: Vec<_> = futures
        .into_iter()
        .rev()
        .map(|f| {
            tokio::spawn(async move {
                let resp = f.await?;
                resp.bytes().await
            })
        })
        .collect();
    // End /0 on the server first, then drop the client's response: its slot frees.
    let (_, path, tx) = held.lock().unwrap().remove(0);
    assert_eq!(path, "/0");
    drop(tx);
    drop(first);

    let mut order = Vec::new();
    for _ in 1..=5 {
        until("next request arrives", || held_count(&held, "") == 1).await;
        let (_, path, tx) = held.lock().unwrap().remove(0);
        // Nothing else may reach the server while this one is held (per-host limit 1).
        // Counted from the held list, not the server's `max_active`: the server's guard of
        // the previous request may drop a moment after the client has read its body's end
        // and sent the next one, which made that figure flaky.
        assert_eq!(
            held_count(&held, ""),
            0,
            "a second request arrived while {path} was held"
        );
        order.push(path);
        drop(tx);
    }
    for t in tasks {
        tokio::time::timeout(LIMIT, t)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
    assert_eq!(order, ["/1", "/2", "/3", "/4", "/5"]);
    assert_eq!(layer.in_flight(), 0);
}

#[test]
fn zero_limits_are_config_errors() {
    let e = ConcurrencyLimitLayer::try_new(0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("(got 0)"), "{e}");
    let e = ConcurrencyLimitLayer::builder()
        .per_host(0)
        .build()
        .unwrap_err();
    assert!(e.is_config());
    assert!(e.to_string().contains("per_host"), "{e}");
    assert!(ConcurrencyLimitLayer::builder()
        .build()
        .unwrap_err()
        .is_config());
}
