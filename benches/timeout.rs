//! Overhead of the timeout layer per request over an in-memory `service_fn`.
//!
//! ```text
//! cargo bench --bench timeout
//! cargo bench --bench timeout -- --quick
//! ```
//!
//! Each iteration sends one request (built in the untimed setup, from a `&str` URL as users
//! do) through the service and reads the whole one-frame body. Two shapes of inner service:
//!
//! - `ready`: the inner future and the body are ready at their first poll, so the layer's
//!   sleeps are created (headers) or not at all (body) but never registered with the timer;
//! - `pending`: the inner future and the body each return `Pending` once (they wake
//!   themselves at once), as a network backend does, so the headers sleep and the body's
//!   idle sleep are registered with the timer wheel and removed again.
//!
//! In each group: `bare` is the inner service alone, `layer` the default layer (30 s headers,
//! 30 s body idle), `headers_only` and `idle_only` one of the two timeouts each. The
//! overhead of the layer is `layer − bare` within a group; the target is < 500 ns.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use fastreq::timeout::TimeoutLayer;
use fastreq::{Body, Error};
use http::{Request, Response};
use http_body::Frame;
use http_body_util::BodyExt;
use tower::{Layer, Service, ServiceExt};

const URL: &str = "http://api.test/items/42?page=3";

fn request() -> Request<Body> {
    Request::get(URL).body(Body::empty()).unwrap()
}

/// A one-frame body that is `Pending` once before its frame when `pending`.
struct OneFrame {
    data: Option<Bytes>,
    pending: bool,
}

impl http_body::Body for OneFrame {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if self.pending {
            self.pending = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(self.data.take().map(|d| Ok(Frame::data(d))))
    }
}

/// A future that is `Pending` once when `pending`, then yields its value.
struct YieldOnce<T> {
    value: Option<T>,
    pending: bool,
}

impl<T: Unpin> std::future::Future for YieldOnce<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if self.pending {
            self.pending = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(self.value.take().expect("polled after completion"))
    }
}

fn backend(
    pending: bool,
) -> impl Service<Request<Body>, Response = Response<OneFrame>, Error = Error> + Clone {
    tower::service_fn(move |_req: Request<Body>| YieldOnce {
        value: Some(Ok(Response::new(OneFrame {
            data: Some(Bytes::from_static(b"hello")),
            pending,
        }))),
        pending,
    })
}

async fn send<S, B>(svc: S, req: Request<Body>) -> usize
where
    S: Service<Request<Body>, Response = Response<B>, Error = Error>,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let resp = svc.oneshot(req).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    body.len()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();

    for (name, pending) in [("ready", false), ("pending", true)] {
        let mut group = c.benchmark_group(format!("timeout/{name}"));
        let bare = backend(pending);
        let layered = TimeoutLayer::default().layer(backend(pending));
        group.bench_function("bare", |b| {
            b.to_async(&rt).iter_batched(
                request,
                |req| send(bare.clone(), req),
                BatchSize::SmallInput,
            )
        });
        group.bench_function("layer", |b| {
            b.to_async(&rt).iter_batched(
                request,
                |req| send(layered.clone(), req),
                BatchSize::SmallInput,
            )
        });
        for (label, layer) in [
            (
                "headers_only",
                TimeoutLayer::builder().body_idle(None).build().unwrap(),
            ),
            (
                "idle_only",
                TimeoutLayer::builder().headers(None).build().unwrap(),
            ),
        ] {
            let svc = layer.layer(backend(pending));
            group.bench_function(label, |b| {
                b.to_async(&rt).iter_batched(
                    request,
                    |req| send(svc.clone(), req),
                    BatchSize::SmallInput,
                )
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
