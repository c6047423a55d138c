//! Unit tests over in-memory services.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::FutureExt;
use http::{Request, Response, Uri};
use http_body::{Body as _, Frame};
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tower::{Layer, Service, ServiceExt};

use super::*;
use crate::error::{Error, ErrorKind};

/// A response body fed by the test: each message is a frame or an error; the body ends
/// when the sender is dropped.
struct ChannelBody(mpsc::UnboundedReceiver<Result<Bytes, Error>>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.0.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

type Tx = mpsc::UnboundedSender<Result<Bytes, Error>>;

/// A backend that records the paths it is called with and answers with a [`ChannelBody`]
/// whose sender it hands to the test; `/empty` gets an empty full body instead, `/fail`
/// an error.
#[derive(Clone, Default)]
struct Backend {
    calls: Arc<Mutex<Vec<String>>>,
    senders: Arc<Mutex<Vec<Tx>>>,
}

enum TestBody {
    Channel(ChannelBody),
    Empty,
}

impl http_body::Body for TestBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match self.get_mut() {
            TestBody::Channel(b) => Pin::new(b).poll_frame(cx),
            TestBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, TestBody::Empty)
    }
}

impl Service<Request<()>> for Backend {
    type Response = Response<TestBody>;
    type Error = Error;
    type Future = std::future::Ready<Result<Response<TestBody>, Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<()>) -> Self::Future {
        let path = req.uri().path().to_owned();
        self.calls.lock().unwrap().push(
            req.uri()
                .host()
                .map_or(path.clone(), |h| format!("{h}{path}")),
        );
        if path == "/fail" {
            return std::future::ready(Err(Error::new(ErrorKind::Connect)));
        }
        if path == "/empty" {
            return std::future::ready(Ok(Response::new(TestBody::Empty)));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        self.senders.lock().unwrap().push(tx);
        std::future::ready(Ok(Response::new(TestBody::Channel(ChannelBody(rx)))))
    }
}

impl Backend {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    fn sender(&self, i: usize) -> Tx {
        self.senders.lock().unwrap()[i].clone()
    }
    /// Drops the backend's own copies of the senders, so bodies end when the test drops its
    /// clones.
    fn forget_senders(&self) {
        self.senders.lock().unwrap().clear();
    }
}

fn req(url: &str) -> Request<()> {
    Request::get(url).body(()).unwrap()
}

fn limit(max: Option<usize>, per_host: Option<usize>) -> ConcurrencyLimitLayer {
    let mut b = ConcurrencyLimitLayer::builder();
    if let Some(m) = max {
        b = b.max(m);
    }
    if let Some(p) = per_host {
        b = b.per_host(p);
    }
    b.build().unwrap()
}

fn noop_cx() -> Context<'static> {
    Context::from_waker(std::task::Waker::noop())
}

fn is_ready<S, R>(svc: &mut S) -> bool
where
    S: Service<R, Error = Error>,
{
    match svc.poll_ready(&mut noop_cx()) {
        Poll::Ready(r) => {
            r.unwrap();
            true
        }
        Poll::Pending => false,
    }
}

fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    f.poll_unpin(&mut noop_cx())
}

type Resp = Response<ConcurrencyLimitBody<TestBody>>;

async fn send(svc: &mut ConcurrencyLimit<Backend>, url: &str) -> Resp {
    svc.ready().await.unwrap().call(req(url)).await.unwrap()
}

#[tokio::test]
async fn global_limit_holds_until_body_end() {
    let backend = Backend::default();
    let layer = limit(Some(2), None);
    let mut svc = layer.layer(backend.clone());
    let r0 = send(&mut svc, "http://a.test/0").await;
    let r1 = send(&mut svc, "http://a.test/1").await;
    assert_eq!(layer.in_flight(), 2);
    assert!(!is_ready(&mut svc), "headers arrived but bodies are open");

    // Stream a frame on r0: still counted; then end it.
    let tx0 = backend.sender(0);
    backend.forget_senders();
    tx0.send(Ok(Bytes::from("x"))).unwrap();
    let mut body0 = r0.into_body();
    let frame = body0.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "x");
    assert!(body0.holds_permit());
    assert_eq!(layer.in_flight(), 2);
    drop(tx0);
    assert!(body0.frame().await.is_none());
    assert!(!body0.holds_permit());
    // The freed permit went straight to `svc`, which was waiting in `poll_ready`.
    assert_eq!(layer.in_flight(), 2);
    assert!(is_ready(&mut svc));
    drop(r1);
    // `svc` holds one reserved permit.
    assert_eq!(layer.in_flight(), 1);
    drop(svc);
    assert_eq!(layer.in_flight(), 0);
}

#[tokio::test]
async fn body_error_releases_at_once() {
    let backend = Backend::default();
    let layer = limit(Some(1), None);
    let mut svc = layer.layer(backend.clone());
    let r = send(&mut svc, "http://a.test/").await;
    let tx = backend.sender(0);
    tx.send(Err(Error::new(ErrorKind::Timeout))).unwrap();
    let mut body = r.into_body();
    let err = body.frame().await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(!body.holds_permit());
    assert_eq!(layer.in_flight(), 0);
    assert!(is_ready(&mut svc));
}

#[tokio::test]
async fn dropped_unread_response_releases() {
    let backend = Backend::default();
    let layer = limit(Some(1), Some(1));
    let mut svc = layer.layer(backend.clone());
    let r = send(&mut svc, "http://a.test/").await;
    assert_eq!(layer.in_flight(), 1);
    assert_eq!(layer.in_flight_for(&"http://a.test/".parse().unwrap()), 1);
    assert!(!is_ready(&mut svc));
    drop(r);
    assert_eq!(layer.in_flight_for(&"http://a.test/".parse().unwrap()), 0);
    // The global permit went straight to `svc`, waiting in `poll_ready`.
    assert_eq!(layer.in_flight(), 1);
    assert!(is_ready(&mut svc));
    drop(svc);
    assert_eq!(layer.in_flight(), 0);
}

#[tokio::test]
async fn inner_error_and_empty_body_release_at_once() {
    let backend = Backend::default();
    let layer = limit(Some(1), Some(1));
    let mut svc = layer.layer(backend.clone());
    let err = svc
        .ready()
        .await
        .unwrap()
        .call(req("http://a.test/fail"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert_eq!(layer.in_flight(), 0);

    let r = send(&mut svc, "http://a.test/empty").await;
    assert!(!r.body().holds_permit());
    assert!(r.body().is_end_stream());
    assert_eq!(layer.in_flight(), 0);
    assert!(is_ready(&mut svc));
}

#[tokio::test]
async fn clone_starts_unready_and_call_without_ready_is_an_error() {
    let backend = Backend::default();
    let layer = limit(Some(1), None);
    let mut svc = layer.layer(backend.clone());
    assert!(is_ready(&mut svc));
    let mut clone = svc.clone();
    assert!(!is_ready(&mut clone), "the clone shares the limit of 1");
    let err = clone
        .call(req("http://a.test/x?token=s3cret"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(!err.to_string().contains("s3cret"));
    assert!(backend.calls().is_empty());
    // The original still holds the permit and can use it.
    let r = svc.call(req("http://a.test/ok")).await.unwrap();
    drop(r);
    assert!(is_ready(&mut clone));
}

#[tokio::test]
async fn per_host_waiters_are_served_in_call_order() {
    let backend = Backend::default();
    let layer = limit(None, Some(1));
    let mut svc = layer.layer(backend.clone());
    let r0 = send(&mut svc, "http://a.test/0").await;
    let mut futs: Vec<_> = (1..=3)
        .map(|i| {
            assert!(is_ready(&mut svc));
            svc.call(req(&format!("http://a.test/{i}")))
        })
        .collect();
    // Poll them in reverse order: the queue is in call order regardless.
    for f in futs.iter_mut().rev() {
        assert!(poll_once(f).is_pending());
    }
    assert_eq!(backend.calls(), ["a.test/0"]);
    drop(r0);
    let mut served = Vec::new();
    for _ in 0..3 {
        let mut ready = None;
        for (i, f) in futs.iter_mut().enumerate().rev() {
            if served.contains(&i) {
                continue;
            }
            if let Poll::Ready(r) = poll_once(f) {
                assert!(ready.is_none(), "only one request per host at a time");
                ready = Some((i, r.unwrap()));
            }
        }
        let (i, resp) = ready.expect("the next waiter gets the slot");
        assert_eq!(layer.in_flight_for(&"http://a.test/".parse().unwrap()), 1);
        served.push(i);
        drop(resp);
    }
    assert_eq!(served, [0, 1, 2]);
    assert_eq!(
        backend.calls(),
        ["a.test/0", "a.test/1", "a.test/2", "a.test/3"]
    );
    assert_eq!(layer.in_flight(), 0);
}

#[tokio::test]
async fn waiting_for_a_host_holds_no_global_slot() {
    let backend = Backend::default();
    let layer = limit(Some(2), Some(1));
    let mut svc = layer.layer(backend.clone());
    let a0 = send(&mut svc, "http://a.test/0").await;
    assert!(is_ready(&mut svc));
    let mut a1 = svc.call(req("http://a.test/1"));
    assert!(poll_once(&mut a1).is_pending());
    assert_eq!(layer.in_flight(), 1, "a1 gave its global permit back");

    // b is not blocked by a's queue.
    let b0 = send(&mut svc, "http://b.test/0").await;
    assert_eq!(layer.in_flight(), 2);

    // c waits for a global slot in poll_ready, queued before a1 gets its host slot.
    let mut c = layer.layer(backend.clone());
    assert!(!is_ready(&mut c));

    // a0 ends: the host slot goes to a1, the global slot to c (first in line); a1 holds
    // its host slot and waits for a global one.
    drop(a0);
    assert!(poll_once(&mut a1).is_pending());
    assert!(is_ready(&mut c));
    assert_eq!(layer.in_flight_for(&"http://a.test/".parse().unwrap()), 1);
    assert_eq!(backend.calls(), ["a.test/0", "b.test/0"]);

    drop(b0);
    let a1 = match poll_once(&mut a1) {
        Poll::Ready(r) => r.unwrap(),
        Poll::Pending => panic!("a1 should have both slots now"),
    };
    assert_eq!(backend.calls(), ["a.test/0", "b.test/0", "a.test/1"]);
    assert_eq!(layer.in_flight(), 2); // a1 + c's reservation
    drop(a1);
    drop(c);
    assert_eq!(layer.in_flight(), 0);
}

#[tokio::test]
async fn dropped_waiter_leaves_the_queue() {
    let backend = Backend::default();
    let layer = limit(None, Some(1));
    let mut svc = layer.layer(backend.clone());
    let r0 = send(&mut svc, "http://a.test/0").await;
    assert!(is_ready(&mut svc));
    let f1 = svc.call(req("http://a.test/1"));
    assert!(is_ready(&mut svc));
    let mut f2 = svc.call(req("http://a.test/2"));
    assert!(poll_once(&mut f2).is_pending());
    drop(f1);
    drop(r0);
    let r2 = match poll_once(&mut f2) {
        Poll::Ready(r) => r.unwrap(),
        Poll::Pending => panic!("f2 is next once f1 is gone"),
    };
    assert_eq!(backend.calls(), ["a.test/0", "a.test/2"]);
    drop(r2);
    assert_eq!(layer.evict_idle(), 1);
    assert_eq!(layer.tracked_hosts(), 0);
}

#[tokio::test]
async fn hosts_are_independent_and_keys_normalised() {
    let backend = Backend::default();
    let layer = limit(None, Some(1));
    let mut svc = layer.layer(backend.clone());
    let a = send(&mut svc, "http://a.test/").await;
    let b = send(&mut svc, "http://b.test/").await;
    let a_https = send(&mut svc, "https://a.test/").await;
    let a_port = send(&mut svc, "http://a.test:8080/").await;
    assert_eq!(layer.in_flight(), 4);
    assert_eq!(layer.tracked_hosts(), 4);
    // Same host as `a`, spelt differently: must wait.
    assert!(is_ready(&mut svc));
    let mut same = svc.call(req("http://A.TEST:80/x"));
    assert!(poll_once(&mut same).is_pending());
    drop((b, a_https, a_port));
    assert!(poll_once(&mut same).is_pending());
    drop(a);
    assert!(poll_once(&mut same).is_ready());
}

#[tokio::test]
async fn idle_host_entries_are_evicted() {
    let backend = Backend::default();
    let layer = limit(Some(10_000), Some(2));
    let mut svc = layer.layer(backend.clone());
    let busy = send(&mut svc, "http://busy.test/").await;
    for i in 0..20_000 {
        backend.forget_senders();
        drop(send(&mut svc, &format!("http://h{i}.test/")).await);
    }
    let tracked = layer.tracked_hosts();
    assert!(tracked <= 4096, "map bounded, got {tracked}");
    assert!(layer.evict_idle() > 0 || tracked == 1);
    assert_eq!(layer.tracked_hosts(), 1, "only the busy host stays");
    assert_eq!(
        layer.in_flight_for(&"http://busy.test/".parse().unwrap()),
        1
    );
    drop(busy);
    assert_eq!(layer.evict_idle(), 1);
    assert_eq!(layer.tracked_hosts(), 0);
}

#[tokio::test]
async fn per_host_only_is_always_ready() {
    let backend = Backend::default();
    let layer = limit(None, Some(1));
    let mut svc = layer.layer(backend.clone());
    let _a = send(&mut svc, "http://a.test/").await;
    let _b = send(&mut svc, "http://b.test/").await;
    assert!(is_ready(&mut svc));
    assert_eq!(layer.in_flight(), 2);
    assert_eq!(layer.max(), None);
    assert_eq!(layer.max_per_host(), Some(1));
    // Relative URLs share one slot pool.
    let _r = send(&mut svc, "/rel").await;
    let mut rel = svc.call(req("/other"));
    assert!(poll_once(&mut rel).is_pending());
}

#[test]
fn config_errors_name_the_value() {
    let e = ConcurrencyLimitLayer::try_new(0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.to_string().contains("`max` must be at least 1 (got 0)"),
        "{e}"
    );

    let e = ConcurrencyLimitLayer::builder()
        .max(8)
        .per_host(0)
        .build()
        .unwrap_err();
    assert!(
        e.to_string().contains("`per_host` must be at least 1"),
        "{e}"
    );

    let e = ConcurrencyLimitLayer::builder()
        .max(usize::MAX)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("too large"), "{e}");

    let e = ConcurrencyLimitLayer::builder().build().unwrap_err();
    assert!(e.is_config());
    assert!(
        e.to_string().contains("set `max`, `per_host` or both"),
        "{e}"
    );

    // The first error wins, even if a later call is valid.
    let e = ConcurrencyLimitLayer::builder()
        .max(0)
        .max(4)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("got 0"), "{e}");

    let ok = ConcurrencyLimitLayer::builder()
        .per_host(3)
        .build()
        .unwrap();
    assert_eq!((ok.max(), ok.max_per_host()), (None, Some(3)));
    assert!(format!("{ok:?}").contains("per_host: Some(3)"));
}

#[test]
fn types_are_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<ConcurrencyLimitLayer>();
    check::<ConcurrencyLimit<Backend>>();
    check::<ConcurrencyLimitBody<TestBody>>();
    type Fut = <ConcurrencyLimit<Backend> as Service<Request<()>>>::Future;
    fn check_send<T: Send>() {}
    check_send::<Fut>();
}

#[tokio::test]
async fn works_with_fastreq_body_and_response_body() {
    let layer = limit(Some(4), Some(2));
    let svc = layer.layer(tower::service_fn(|r: Request<crate::Body>| async move {
        Ok::<_, Error>(Response::new(crate::ResponseBody::from(
            r.uri().path().to_owned(),
        )))
    }));
    let resp = svc
        .oneshot(crate::get("http://a.test/hello").build().unwrap())
        .await
        .unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "/hello");
    assert_eq!(layer.in_flight(), 0);
    let _: Uri = "http://a.test/".parse().unwrap();
}
