//! Overhead of the concurrency limit per request over an in-memory `service_fn`.
//!
//! ```text
//! cargo bench --bench concurrency
//! cargo bench --bench concurrency -- --quick
//! ```
//!
//! Each iteration polls the service ready, sends one request (built in the untimed setup,
//! from a `&str` URL as users do) and reads the whole one-frame body, which releases the
//! slots. The limits are high enough that nothing ever waits:
//!
//! - `bare`: the `service_fn` alone;
//! - `global`: `ConcurrencyLimitLayer::new(1024)`;
//! - `global_per_host`: `.max(1024).per_host(1024)`, one host;
//! - `per_host_many_hosts`: `.max(1024).per_host(1024)`, the request cycling over 1,000
//!   hosts (a map lookup in a bigger map; entries stay, none is evicted while in use);
//! - `per_host_only`: `.per_host(1024)`, no global limit.
//!
//! The overhead of the layer is `<variant> − bare`; the target is < 500 ns.

use bytes::Bytes;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use fastreq::concurrency::ConcurrencyLimitLayer;
use fastreq::{Body, Error, ResponseBody};
use http::{Request, Response};
use http_body_util::BodyExt;
use tower::{Layer, Service, ServiceExt};

const URL: &str = "http://api.test/items/42?page=3";

fn request(url: &str) -> Request<Body> {
    Request::get(url).body(Body::empty()).unwrap()
}

fn backend() -> impl Service<
    Request<Body>,
    Response = Response<ResponseBody>,
    Error = Error,
    Future = std::future::Ready<Result<Response<ResponseBody>, Error>>,
> + Clone {
    tower::service_fn(|_req: Request<Body>| {
        std::future::ready(Ok::<_, Error>(Response::new(ResponseBody::from(
            Bytes::from_static(b"hello"),
        ))))
    })
}

async fn one<S, B>(svc: &mut S, req: Request<Body>)
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let resp = svc.ready().await.unwrap().call(req).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), 5);
}

/// Benchmarks `svc` over `urls` (cycled). Requests are built before the clock starts.
fn run<S, B>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    name: &str,
    svc: S,
    urls: &[String],
) where
    S: Service<Request<Body>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    group.bench_function(name, |b| {
        b.to_async(rt).iter_custom(|iters| {
            let mut svc = svc.clone();
            let reqs: Vec<_> = (0..iters as usize)
                .map(|i| request(&urls[i % urls.len()]))
                .collect();
            async move {
                let start = Instant::now();
                for req in reqs {
                    one(&mut svc, req).await;
                }
                start.elapsed()
            }
        })
    });
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("concurrency");
    let one_host = [URL.to_owned()];
    let many_hosts: Vec<String> = (0..1000)
        .map(|i| format!("https://host-{i}.example/items/42"))
        .collect();
    let both = || {
        ConcurrencyLimitLayer::builder()
            .max(1024)
            .per_host(1024)
            .build()
            .unwrap()
    };

    run(&mut group, &rt, "bare", backend(), &one_host);
    let global = ConcurrencyLimitLayer::new(1024);
    run(
        &mut group,
        &rt,
        "global",
        global.layer(backend()),
        &one_host,
    );
    run(
        &mut group,
        &rt,
        "global_per_host",
        both().layer(backend()),
        &one_host,
    );
    run(
        &mut group,
        &rt,
        "per_host_many_hosts",
        both().layer(backend()),
        &many_hosts,
    );
    let per_host = ConcurrencyLimitLayer::builder()
        .per_host(1024)
        .build()
        .unwrap();
    run(
        &mut group,
        &rt,
        "per_host_only",
        per_host.layer(backend()),
        &one_host,
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
