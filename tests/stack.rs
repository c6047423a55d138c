//! The preset end to end: every layer observed at a local server, user layers, backend swap.

mod support;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fastreq::stack::Position;
use fastreq::{Body, ErrorKind, ResponseBody, ResponseExt};
use futures::StreamExt;
use support::proxy::TestProxy;
use support::{Reply, TestServer};

const T: Duration = Duration::from_secs(30);

fn fast_retries(b: fastreq::StackBuilder) -> fastreq::StackBuilder {
    b.backoff(Duration::from_millis(1), 2.0, Duration::from_millis(5))
}

#[tokio::test]
async fn preset_retries_redirects_cookies_and_user_agent_end_to_end() {
    let flaky = Arc::new(AtomicUsize::new(0));
    let seen_ua = Arc::new(Mutex::new(Vec::<String>::new()));
    let (f, ua) = (flaky.clone(), seen_ua.clone());
    let server = TestServer::start(move |req| {
        ua.lock()
            .unwrap()
            .push(req.header("user-agent").unwrap_or("").to_owned());
        match req.path() {
            "/flaky" => {
                if f.fetch_add(1, Ordering::SeqCst) < 2 {
                    Reply::status(503)
                } else {
                    Reply::text("finally")
                }
            }
            "/login" => Reply::status(302)
                .header("location", "/home")
                .header("set-cookie", "session=abc; Path=/"),
            "/home" => Reply::text(format!("cookie={}", req.header("cookie").unwrap_or("-"))),
            _ => Reply::status(404),
        }
    });
    let client = fast_retries(fastreq::stack()).build().unwrap();

    let flaky_page = tokio::time::timeout(T, client.get(server.url("/flaky")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(flaky_page.status(), 200);
    assert_eq!(flaky_page.attempts(), 3);
    assert_eq!(server.hits_for("/flaky"), 3);

    let home = client.get(server.url("/login")).await.unwrap();
    assert_eq!(home.final_url().path(), "/home");
    assert_eq!(home.text(), "cookie=session=abc");
    assert_eq!(client.cookie_jar().unwrap().len(), 1);

    let version = concat!("fastreq/", env!("CARGO_PKG_VERSION"));
    assert!(seen_ua.lock().unwrap().iter().all(|u| u == version));

    // A clone shares the jar.
    let clone = client.clone();
    let again = clone.get(server.url("/home")).await.unwrap();
    assert_eq!(again.text(), "cookie=session=abc");

    // Not retried: 404.
    let missing = client.get(server.url("/nope")).await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.attempts(), 1);
}

#[tokio::test]
async fn concurrency_is_bounded_at_the_server() {
    let server = TestServer::builder().worker_threads(2).routes();
    let client = fastreq::stack().concurrency(4).build().unwrap();
    let urls: Vec<_> = (0..40)
        .map(|i| server.url(&format!("/{i}?delay_ms=20")))
        .collect();
    let results = tokio::time::timeout(T, client.get_all(&urls))
        .await
        .unwrap();
    assert_eq!(results.len(), 40);
    assert!(results.iter().all(|r| r.as_ref().unwrap().status() == 200));
    assert!(
        server.max_active() <= 4,
        "max active {}",
        server.max_active()
    );
    assert!(server.max_active() >= 2);
    assert_eq!(client.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_holds_through_the_preset() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let backend = tower::service_fn(move |_req: http::Request<Body>| {
        c.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(http::Response::new(ResponseBody::from("x"))) }
    });
    let client = fastreq::stack()
        .rate_limit(20.0)
        .backend(backend)
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let urls: Vec<_> = (0..11).map(|i| format!("http://a.test/{i}")).collect();
    let results = client.get_all(&urls).await;
    assert!(results.iter().all(|r| r.is_ok()));
    // Burst 1 then 10 more at 20/s: 500 ms on the paused clock.
    assert_eq!(start.elapsed(), Duration::from_millis(500));
    assert_eq!(calls.load(Ordering::SeqCst), 11);
    // The rate can be changed at run time.
    let handle = client.rate_limit_handle().expect("rate limit is on");
    handle.set_rate(100.0).unwrap();
    let start = tokio::time::Instant::now();
    let _ = client.get_all(&urls[..10]).await;
    assert!(
        start.elapsed() <= Duration::from_millis(100),
        "{:?}",
        start.elapsed()
    );
}

/// Counts calls to the inner service at its position.
#[derive(Clone)]
struct CountLayer(Arc<AtomicUsize>);

impl<S> tower::Layer<S> for CountLayer {
    type Service = Count<S>;
    fn layer(&self, inner: S) -> Count<S> {
        Count(inner, self.0.clone())
    }
}

#[derive(Clone)]
struct Count<S>(S, Arc<AtomicUsize>);

impl<S: tower::Service<http::Request<Body>>> tower::Service<http::Request<Body>> for Count<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;
    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }
    fn call(&mut self, req: http::Request<Body>) -> S::Future {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.call(req)
    }
}

#[tokio::test]
async fn user_layers_see_requests_attempts_and_hops() {
    let server = TestServer::start(|req| match req.path() {
        "/a" => Reply::status(302).header("location", "/b"),
        "/b" => Reply::status(302).header("location", "/c"),
        _ => Reply::text("end"),
    });
    let (top, attempt, hop, wire) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let client = fastreq::stack()
        .layer_at(Position::Top, CountLayer(top.clone()))
        .layer_at(Position::PerAttempt, CountLayer(attempt.clone()))
        .layer_at(Position::BeforeRateLimit, CountLayer(hop.clone()))
        .layer_at(Position::AroundBackend, CountLayer(wire.clone()))
        .build()
        .unwrap();
    let page = client.get(server.url("/a")).await.unwrap();
    assert_eq!(page.text(), "end");
    assert_eq!(page.final_url().path(), "/c");
    assert_eq!(top.load(Ordering::SeqCst), 1);
    assert_eq!(attempt.load(Ordering::SeqCst), 1);
    assert_eq!(hop.load(Ordering::SeqCst), 3);
    assert_eq!(wire.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn backend_swap_to_an_axum_router() {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/hello", get(|| async { "hello from axum" }))
        .route(
            "/ua",
            get(|headers: http::HeaderMap| async move {
                headers["user-agent"].to_str().unwrap().to_owned()
            }),
        );
    let client = fastreq::stack()
        .user_agent("tester/1.0")
        .backend(app)
        .build()
        .unwrap();
    let page = client.get("http://in-process.test/hello").await.unwrap();
    assert_eq!(page.text(), "hello from axum");
    let page = client.get("http://in-process.test/ua").await.unwrap();
    assert_eq!(page.text(), "tester/1.0");
    let outcomes: Vec<_> = client
        .fan_out((0..20).map(|_| fastreq::get("http://in-process.test/hello")))
        .collect()
        .await;
    assert_eq!(outcomes.len(), 20);
    assert!(outcomes.iter().all(|o| o.result.is_ok()));
    // Plain URL strings are GET requests; a bad one is an outcome, not a panic.
    let outcomes: Vec<_> = client
        .fan_out(["http://in-process.test/hello", "not a url"])
        .ordered()
        .collect()
        .await;
    assert_eq!(
        outcomes[0].result.as_ref().unwrap().text(),
        "hello from axum"
    );
    assert!(outcomes[1]
        .result
        .as_ref()
        .unwrap_err()
        .is_invalid_request());
    let outcomes: Vec<_> = client
        .fan_out(vec!["http://in-process.test/hello".to_owned(); 20])
        .collect()
        .await;
    assert!(outcomes.iter().all(|o| o.result.is_ok()));
}

#[tokio::test]
async fn proxies_in_the_preset() {
    let server = TestServer::routes();
    let proxy = TestProxy::http().start();
    let client = fastreq::stack()
        .proxy_lines(&format!("# one proxy\n{}\n", proxy.url()))
        .build()
        .unwrap();
    for _ in 0..3 {
        let page = client.get(server.url("/via-proxy")).await.unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(page.proxy().unwrap().port(), proxy.addr().port());
    }
    assert_eq!(proxy.forwarded(), 3);
    // A per-request opt-out goes direct.
    let direct = client
        .request(fastreq::get(server.url("/direct")).no_proxy())
        .await
        .unwrap();
    assert!(direct.proxy().is_none());
    assert_eq!(proxy.forwarded(), 3);
}

#[tokio::test]
async fn bad_configuration_is_a_clear_error() {
    let e = fastreq::stack().concurrency(0).build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("concurrency"), "{e}");
    let e = fastreq::stack()
        .default_header("x-bad", "a\nb")
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("x-bad"), "{e}");
    let e = fastreq::stack()
        .proxy_lines("http://bob:hunter2@proxy.test:notaport")
        .build()
        .unwrap_err();
    let s = e.to_string();
    assert!(s.contains("line 1") && !s.contains("hunter2"), "{s}");
    let e = fastreq::stack().rate_limit(0.0).build().unwrap_err();
    assert!(e.is_config(), "{e}");
    let e = fastreq::stack().rate_limit(f64::NAN).build().unwrap_err();
    assert!(e.is_config(), "{e}");
    let e = fastreq::stack()
        .user_agent("bad\nagent")
        .build()
        .unwrap_err();
    assert!(e.is_config(), "{e}");
}

#[tokio::test]
async fn client_is_a_tower_service_and_reads_streaming_bodies() {
    use tower::ServiceExt;
    let server = TestServer::routes();
    let client = fastreq::Client::new();
    let resp = client
        .clone()
        .oneshot(
            fastreq::get(server.url("/?bytes=5000&gzip=1"))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().len(), 5000, "decompressed");
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<fastreq::Client>();
}

/// tower-http's layers plug into the preset as they are (their response bodies differ).
#[tokio::test]
async fn tower_http_layers_fit_in_the_preset() {
    use http::header::{HeaderName, HeaderValue};
    use tower_http::set_header::SetRequestHeaderLayer;
    use tower_http::trace::TraceLayer;

    let server = TestServer::routes();
    let client = fastreq::stack()
        .layer_at(Position::Top, TraceLayer::new_for_http())
        .layer_at(
            Position::PerAttempt,
            SetRequestHeaderLayer::overriding(
                HeaderName::from_static("x-tenant"),
                HeaderValue::from_static("acme"),
            ),
        )
        .build()
        .unwrap();
    let f = tokio::time::timeout(T, client.get(server.url("/?echo=1")))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(f.body()).into_owned();
    assert!(text.contains("x-tenant: acme"), "{text}");
}

/// The shortest path for synchronous code: a configured blocking client.
#[test]
fn blocking_client_runs_the_preset_outside_a_runtime() {
    let server = TestServer::routes();
    let client = fastreq::stack()
        .concurrency(8)
        .retries(1)
        .build_blocking()
        .unwrap();
    let urls = [server.url("/a"), "not a url".to_owned(), server.url("/a")];
    let results = client.get_all(&urls).unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(
        results[0].as_ref().unwrap().body(),
        support::DEFAULT_JSON.as_bytes()
    );
    assert!(results[1].as_ref().unwrap_err().is_invalid_request());
    assert!(results[2].is_ok());
    assert_eq!(client.get(server.url("/b")).unwrap().status(), 200);
}

#[tokio::test]
async fn blocking_client_refuses_to_block_inside_a_runtime() {
    let err = fastreq::stack().build_blocking().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("inside a Tokio runtime"), "{err}");
}

#[derive(serde::Deserialize, Debug)]
struct Served {
    ok: bool,
    items: Vec<u32>,
}

#[tokio::test]
async fn get_all_json_parses_in_input_order() {
    let server = TestServer::routes();
    let client = fastreq::stack().retries(0).build().unwrap();
    let urls = [
        server.url("/1"),
        server.url("/2?status=404&bytes=3"),
        "not a url".to_owned(),
        server.url("/3"),
    ];
    let out = tokio::time::timeout(T, client.get_all_json::<Served, _>(&urls))
        .await
        .unwrap();
    assert_eq!(out.len(), 4);
    let first = out[0].as_ref().unwrap();
    assert!(first.ok);
    assert_eq!(first.items.len(), 8);
    let err = out[1].as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(err.to_string().contains("status 404"), "{err}");
    assert!(out[2].as_ref().unwrap_err().is_invalid_request());
    assert!(out[3].as_ref().unwrap().ok);
}

#[test]
fn blocking_get_all_json() {
    let server = TestServer::routes();
    let client = fastreq::stack().build_blocking().unwrap();
    let out = client
        .get_all_json::<Served, _>([server.url("/x"), server.url("/y")])
        .unwrap();
    assert!(out.iter().all(|r| r.as_ref().unwrap().ok));
}

/// Issue 14: every layer's `new` is infallible (numbers clamped into range, as documented)
/// and its `try_` twin refuses the same numbers with a `Config` error naming them.
#[test]
fn layer_constructors_clamp_and_their_try_twins_refuse() {
    use fastreq::concurrency::ConcurrencyLimitLayer;
    use fastreq::decompression::DecompressionLayer;
    use fastreq::rate_limit::{RateLimitLayer, MIN_RATE};
    use fastreq::timeout::TimeoutLayer;
    use std::time::Duration;

    for bad in [0.0, -3.0, f64::NAN, 1e-12] {
        assert_eq!(RateLimitLayer::new(bad).quota().unwrap().rate(), MIN_RATE);
        assert_eq!(
            RateLimitLayer::per_host(bad)
                .per_host_quota()
                .unwrap()
                .rate(),
            MIN_RATE
        );
        let err = RateLimitLayer::try_new(bad).unwrap_err();
        assert!(
            err.is_config() && err.to_string().contains(&bad.to_string()),
            "{err}"
        );
        assert!(RateLimitLayer::try_per_host(bad).unwrap_err().is_config());
    }
    assert_eq!(
        RateLimitLayer::new(f64::INFINITY).quota().unwrap().rate(),
        1e9
    );
    assert_eq!(RateLimitLayer::new(250.0).quota().unwrap().rate(), 250.0);
    assert_eq!(RateLimitLayer::new(250.0).quota().unwrap().burst(), 1);

    assert_eq!(ConcurrencyLimitLayer::new(0).max(), Some(1));
    assert_eq!(ConcurrencyLimitLayer::new(7).max(), Some(7));
    assert_eq!(
        ConcurrencyLimitLayer::new(usize::MAX).max(),
        Some(tokio::sync::Semaphore::MAX_PERMITS)
    );
    let err = ConcurrencyLimitLayer::try_new(0).unwrap_err();
    assert!(
        err.is_config() && err.to_string().contains("got 0"),
        "{err}"
    );

    assert_eq!(
        TimeoutLayer::new(Duration::ZERO).headers_timeout(),
        Some(Duration::from_nanos(1))
    );
    assert_eq!(
        TimeoutLayer::new(Duration::from_secs(3)).body_idle_timeout(),
        TimeoutLayer::default().body_idle_timeout()
    );
    assert!(TimeoutLayer::try_new(Duration::ZERO)
        .unwrap_err()
        .is_config());

    assert_eq!(
        DecompressionLayer::with_max_decoded_size(0).max_decoded_size(),
        Some(1)
    );
    assert!(DecompressionLayer::try_with_max_decoded_size(0)
        .unwrap_err()
        .is_config());
}
