//! Overhead of the redirect layer per request over an in-memory `service_fn`.
//!
//! ```text
//! cargo bench --bench redirect
//! cargo bench --bench redirect -- --quick
//! ```
//!
//! Each iteration sends one request (built in the untimed setup: a GET with three headers
//! and a `RequestTimeout` extension, as the request builder makes them) and reads the whole
//! one-frame body.
//!
//! - `redirect/none`: the inner service answers 200. `bare` is the inner service alone,
//!   `layer` the default layer, `opt_out` the layer with a `NoRedirects` request. The
//!   overhead of the layer is `layer − bare`; the target is < 500 ns.
//! - `redirect/one_hop`: the inner service answers 302 to a relative `Location`, then 200.
//!   `bare_twice` sends the two requests straight to the inner service; `layer` follows the
//!   redirect. `layer − bare_twice` is the cost of one followed hop (URL parsing and
//!   resolution, the rebuilt request, the dropped 3xx).

use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use fastreq::ext::RequestTimeout;
use fastreq::redirect::FollowRedirectLayer;
use fastreq::{Body, Error, ResponseBody};
use http::{Request, Response};
use http_body_util::BodyExt;
use tower::{Layer, Service, ServiceExt};

const URL: &str = "http://api.test/items/42?page=3";

fn request_to(url: &str) -> Request<Body> {
    fastreq::get(url)
        .header("accept", "application/json")
        .header("user-agent", "fastreq-bench/1")
        .bearer_auth("token")
        .extension(RequestTimeout(Duration::from_secs(30)))
        .build()
        .unwrap()
}

fn request() -> Request<Body> {
    request_to(URL)
}

fn backend(
) -> impl Service<Request<Body>, Response = Response<ResponseBody>, Error = Error, Future = impl Send>
       + Clone {
    tower::service_fn(|req: Request<Body>| async move {
        let mut resp = Response::new(ResponseBody::from(Bytes::from_static(b"hello")));
        if req.uri().path() == "/start" {
            *resp.status_mut() = http::StatusCode::FOUND;
            resp.headers_mut()
                .insert("location", http::HeaderValue::from_static("/items/42"));
        }
        Ok::<_, Error>(resp)
    })
}

async fn send<S>(svc: S, req: Request<Body>) -> usize
where
    S: Service<Request<Body>, Response = Response<ResponseBody>, Error = Error>,
{
    let resp = svc.oneshot(req).await.unwrap();
    resp.into_body().collect().await.unwrap().to_bytes().len()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    let bare = backend();
    let layered = FollowRedirectLayer::new().layer(backend());

    let mut group = c.benchmark_group("redirect/none");
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
    group.bench_function("opt_out", |b| {
        b.to_async(&rt).iter_batched(
            || {
                let mut req = request();
                req.extensions_mut().insert(fastreq::ext::NoRedirects);
                req
            },
            |req| send(layered.clone(), req),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let start = "http://api.test/start";
    let mut group = c.benchmark_group("redirect/one_hop");
    group.bench_function("bare_twice", |b| {
        b.to_async(&rt).iter_batched(
            || (request_to(start), request()),
            |(first, second)| {
                let bare = bare.clone();
                async move { send(bare.clone(), first).await + send(bare, second).await }
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("layer", |b| {
        b.to_async(&rt).iter_batched(
            || request_to(start),
            |req| send(layered.clone(), req),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
