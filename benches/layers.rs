//! Per-request overhead of each fastreq layer, and of the full default preset, over an
//! in-memory `tower::service_fn` backend that answers a 200-byte body.
//!
//! ```text
//! cargo bench --bench layers
//! cargo bench --bench layers -- full_stack      # one group / filter
//! ```
//!
//! Every measurement is `build request + ready + call + read the whole body`, one request
//! after the other on a current-thread runtime (many iterations inside one `block_on`, so
//! the executor's per-iteration cost is not measured). The `bare` figure is the floor; a
//! layer's overhead is its figure minus `bare`. Targets (issue 6): < 500 ns per layer, the
//! full preset < 3 µs.
//!
//! `full_stack_boxed_path` is the preset with a no-op user layer, which makes it take the
//! general path (every layer a `BoxCloneSyncService`), for comparison with the statically
//! typed chain `full_stack` uses. `full_stack_clone_oneshot` clones the client per request,
//! as `Client::send` and the fan-out helpers do.
//!
//! Profiling one service without criterion:
//!
//! ```text
//! cargo bench --bench layers --no-run
//! FASTREQ_PROFILE=full_stack FASTREQ_PROFILE_N=20000 \
//!     valgrind --tool=callgrind target/release/deps/layers-<hash>
//! ```

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, Criterion};
use fastreq::{Body, Error, ResponseBody};
use http::{Request, Response};
use http_body_util::BodyExt;
use tower::{Layer, Service, ServiceExt};

const JSON: &[u8; 200] = br#"{"id":12345,"name":"fastreq benchmark payload","tags":["a","b","c"],"ok":true,"n":[1,2,3,4,5,6,7,8,9,10],"text":"lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incxxx"}"#;

const URL: &str = "http://api.test/items/1?q=2";

fn backend() -> impl Service<
    Request<Body>,
    Response = Response<ResponseBody>,
    Error = Error,
    Future = impl Future<Output = Result<Response<ResponseBody>, Error>> + Send,
> + Clone
       + Send
       + Sync
       + 'static {
    tower::service_fn(|_req: Request<Body>| async move {
        Ok::<_, Error>(Response::new(ResponseBody::from(Bytes::from_static(JSON))))
    })
}

fn request() -> Request<Body> {
    Request::get(URL).body(Body::empty()).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `iters` requests through `svc` (ready + call + collect) and returns the time.
fn run<S, B>(rt: &tokio::runtime::Runtime, svc: &mut S, iters: u64) -> Duration
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let res = svc.ready().await.unwrap().call(request()).await.unwrap();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            black_box(body);
        }
        start.elapsed()
    })
}

fn bench_one<S, B>(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, mut svc: S)
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    c.bench_function(name, |b| b.iter_custom(|iters| run(rt, &mut svc, iters)));
}

/// Calls `$each!(name, service)` for every measured service (a macro, as the services
/// all have different types).
macro_rules! services {
    ($each:ident) => {{
        $each!("bare", backend());
        $each!("retry", fastreq::retry::RetryLayer::new().layer(backend()));
        $each!(
            "user_agent",
            fastreq::user_agent::UserAgentLayer::new().layer(backend())
        );
        $each!(
            "default_headers",
            fastreq::default_headers::DefaultHeadersLayer::builder()
                .header("accept", "application/json")
                .build()
                .unwrap()
                .layer(backend())
        );
        $each!(
            "proxy_rotation_3",
            fastreq::proxy::ProxyRotationLayer::new(
                fastreq::proxy::ProxyPool::from_lines(
                    "http://10.0.0.1:8080\nhttp://10.0.0.2:8080\nhttp://10.0.0.3:8080\n",
                )
                .unwrap()
            )
            .layer(backend())
        );
        $each!(
            "follow_redirect",
            fastreq::redirect::FollowRedirectLayer::new().layer(backend())
        );
        $each!(
            "cookies_empty_jar",
            fastreq::cookies::CookieLayer::new(fastreq::cookies::CookieJar::new()).layer(backend())
        );
        $each!(
            "rate_limit_1e9",
            fastreq::rate_limit::RateLimitLayer::new(1e9).layer(backend())
        );
        $each!(
            "concurrency_1024",
            fastreq::concurrency::ConcurrencyLimitLayer::new(1024).layer(backend())
        );
        $each!(
            "timeout_default",
            fastreq::timeout::TimeoutLayer::default().layer(backend())
        );
        $each!(
            "decompression",
            fastreq::decompression::DecompressionLayer::new().layer(backend())
        );
        $each!(
            "full_stack",
            fastreq::stack().backend(backend()).build().unwrap()
        );
        // A no-op user layer puts the preset on its general path, where every layer is a
        // `BoxCloneSyncService` (the layout before the statically typed chain).
        $each!(
            "full_stack_boxed_path",
            fastreq::stack()
                .backend(backend())
                .layer_at(
                    fastreq::stack::Position::AroundBackend,
                    tower::layer::util::Identity::new()
                )
                .build()
                .unwrap()
        );
    }};
}

fn layers(c: &mut Criterion) {
    let rt = rt();
    // Layers that spawn or use timers need the runtime entered while they are built.
    let _guard = rt.enter();
    macro_rules! each {
        ($name:expr, $svc:expr) => {
            bench_one(c, &rt, $name, $svc)
        };
    }
    services!(each);

    let client = fastreq::stack().backend(backend()).build().unwrap();
    // What `Client::send` and the fan-out helpers do: one clone of the client per request.
    c.bench_function("full_stack_clone_oneshot", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let res = client.clone().oneshot(request()).await.unwrap();
                    black_box(res.into_body().collect().await.unwrap().to_bytes());
                }
                start.elapsed()
            })
        })
    });
}

/// `FASTREQ_PROFILE=<name> [FASTREQ_PROFILE_N=n] target/release/deps/layers-*`: runs only
/// that service, `n` requests (default 200000), without criterion; for `perf`/`callgrind`.
fn profile(wanted: &str) {
    let n: u64 = std::env::var("FASTREQ_PROFILE_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let rt = rt();
    let _guard = rt.enter();
    let mut found = false;
    macro_rules! each {
        ($name:expr, $svc:expr) => {
            if $name == wanted {
                found = true;
                let mut svc = $svc;
                let took = run(&rt, &mut svc, n);
                println!(
                    "{}: {} requests, {:?} per request",
                    $name,
                    n,
                    took / n as u32
                );
            }
        };
    }
    services!(each);
    assert!(found, "unknown service {wanted}");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = layers
}
fn main() {
    if let Ok(name) = std::env::var("FASTREQ_PROFILE") {
        profile(&name);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
