//! Cost of the rate limiter: acquiring a permit, and the layer over an in-memory service.
//!
//! ```text
//! cargo bench --bench rate_limit
//! cargo bench --bench rate_limit -- --quick
//! ```
//!
//! The rate is so high (10⁹/s, burst 2³²−1) that nothing ever waits: these measure the
//! bookkeeping, not the limiting.
//!
//! - `acquire/uncontended`: one `poll_acquire` with a reused waiter (what `poll_ready`
//!   does), single thread.
//! - `acquire/contended_8_tasks`: eight tokio tasks on a two-worker runtime take permits
//!   from one bucket as fast as they can; time per permit (all tasks together).
//! - `layer/*`: one request (`ready` then `call` then await; building the request and
//!   dropping the response are not timed) through `bare` = the
//!   `service_fn` alone, `global` = `RateLimit` with a global rate over it, `per_host` =
//!   with a per-host rate (key, map lookup, clone of the inner service),
//!   `global_and_per_host` = both. Overhead = variant − `bare`; the target is < 500 ns.

use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fastreq::rate_limit::{BucketWaiter, Limiter, Quota, RateLimitLayer, TokenBucket};
use fastreq::{Body, Error, ResponseBody};
use http::{Request, Response};
use tower::{Layer, Service, ServiceExt};

const URL: &str = "http://api.test/items/42?page=3";
const RATE: f64 = 1e9;
const BURST: u32 = u32::MAX;

fn request() -> Request<Body> {
    Request::get(URL).body(Body::empty()).unwrap()
}

fn inner() -> impl Service<Request<Body>, Response = Response<ResponseBody>, Error = Error> + Clone
{
    tower::service_fn(|req: Request<Body>| async move {
        black_box(&req);
        Ok::<_, Error>(Response::new(ResponseBody::empty()))
    })
}

fn bench_acquire(c: &mut Criterion) {
    let mut group = c.benchmark_group("acquire");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let bucket = rt.block_on(async { TokenBucket::new(Quota::new(RATE, BURST).unwrap()) });
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut waiter = BucketWaiter::default();
    group.throughput(Throughput::Elements(1));
    group.bench_function("uncontended", |b| {
        let _guard = rt.enter();
        b.iter(|| {
            let r = bucket.poll_acquire(&mut waiter, &mut cx);
            assert!(matches!(r, Poll::Ready(Ok(()))));
        })
    });

    group.bench_function("contended_8_tasks", |b| {
        b.iter_custom(|iters| {
            let bucket = bucket.clone();
            rt.block_on(async move {
                let per_task = iters.div_ceil(8);
                let barrier = Arc::new(tokio::sync::Barrier::new(8));
                let start = Instant::now();
                let tasks: Vec<_> = (0..8)
                    .map(|_| {
                        let bucket = bucket.clone();
                        let barrier = barrier.clone();
                        tokio::spawn(async move {
                            barrier.wait().await;
                            let mut waiter = BucketWaiter::default();
                            for _ in 0..per_task {
                                futures_util::future::poll_fn(|cx| {
                                    bucket.poll_acquire(&mut waiter, cx)
                                })
                                .await
                                .unwrap();
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                let elapsed = start.elapsed();
                // Time per permit, as if `iters` permits were taken.
                elapsed.mul_f64(iters as f64 / (per_task * 8) as f64)
            })
        })
    });
    group.finish();
}

fn bench_layer(c: &mut Criterion) {
    let mut group = c.benchmark_group("layer");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    macro_rules! case {
        ($name:expr, $svc:expr) => {{
            let mut svc = $svc;
            group.bench_function($name, |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let req = request();
                            let start = Instant::now();
                            // `ready` then `call`: what fan_out and the layers above do.
                            let resp = svc.ready().await.unwrap().call(req).await.unwrap();
                            total += start.elapsed();
                            black_box(resp);
                        }
                        total
                    })
                })
            });
        }};
    }

    let (global, per_host, both) = rt.block_on(async {
        let global = RateLimitLayer::builder()
            .rate(RATE)
            .burst(BURST)
            .build()
            .unwrap();
        let per_host = RateLimitLayer::builder()
            .per_host_rate(RATE)
            .per_host_burst(BURST)
            .build()
            .unwrap();
        let both = RateLimitLayer::builder()
            .rate(RATE)
            .burst(BURST)
            .per_host_rate(RATE)
            .per_host_burst(BURST)
            .build()
            .unwrap();
        (global, per_host, both)
    });
    case!("bare", inner());
    case!("global", global.layer(inner()));
    case!("per_host", per_host.layer(inner()));
    case!("global_and_per_host", both.layer(inner()));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = bench_acquire, bench_layer
}
criterion_main!(benches);
