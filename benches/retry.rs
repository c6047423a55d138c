//! Overhead of the retry layer per request when no retry is needed, over an in-memory
//! `service_fn`.
//!
//! ```text
//! cargo bench --bench retry
//! cargo bench --bench retry -- --quick
//! ```
//!
//! Each iteration sends one request (built in the untimed setup) through the service and
//! drops the 200 response. Groups:
//!
//! - `retry/plain`: a GET without headers or extensions. `bare` is the inner service alone,
//!   `layer` the default layer (3 retries, full jitter), `budget_deadline` the layer with a
//!   retry budget and a total deadline (one timer entry per request).
//! - `retry/headers`: a GET with four headers and a per-request timeout extension, as the
//!   request builder makes them, so the layer's copy of the request head (kept for a
//!   possible retry) costs what it costs in real use.
//!
//! The overhead of the layer is `layer − bare` within a group; the target is < 500 ns.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use fastreq::retry::{RetryBudget, RetryLayer};
use fastreq::{Body, Error, ResponseBody};
use http::{Request, Response};
use tower::{Layer, Service, ServiceExt};

const URL: &str = "http://api.test/items/42?page=3";

fn plain() -> Request<Body> {
    Request::get(URL).body(Body::empty()).unwrap()
}

fn with_headers() -> Request<Body> {
    fastreq::get(URL)
        .header("accept", "application/json")
        .header("user-agent", "fastreq/0.1")
        .header("x-request-id", "4b1c2f0e-1d5a-4a61-9a55-3b1f0d3c2e11")
        .header("authorization", "Bearer abcdefghijklmnopqrstuvwxyz")
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn backend() -> impl Service<Request<Body>, Response = Response<ResponseBody>, Error = Error> + Clone
{
    tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, Error>(Response::new(ResponseBody::empty()))
    })
}

async fn send<S>(svc: S, req: Request<Body>) -> u16
where
    S: Service<Request<Body>, Response = Response<ResponseBody>, Error = Error>,
{
    svc.oneshot(req).await.unwrap().status().as_u16()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();

    let bare = backend();
    let layer = RetryLayer::new().layer(backend());
    let limited = {
        let _guard = rt.enter();
        RetryLayer::builder()
            .budget(RetryBudget::default())
            .deadline(Duration::from_secs(60))
            .build()
            .unwrap()
            .layer(backend())
    };

    for (group_name, make) in [
        ("retry/plain", plain as fn() -> Request<Body>),
        ("retry/headers", with_headers),
    ] {
        let mut group = c.benchmark_group(group_name);
        group.bench_function("bare", |b| {
            b.to_async(&rt)
                .iter_batched(make, |req| send(bare.clone(), req), BatchSize::SmallInput)
        });
        group.bench_function("layer", |b| {
            b.to_async(&rt).iter_batched(
                make,
                |req| send(layer.clone(), req),
                BatchSize::SmallInput,
            )
        });
        group.bench_function("budget_deadline", |b| {
            b.to_async(&rt).iter_batched(
                make,
                |req| send(limited.clone(), req),
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
