//! Errors of proxied requests and of URLs (issue 13 §1): redaction of malformed URLs, the cap
//! on URLs in errors, waits for a proxy bounded by the request's deadline, the last proxy
//! failure kept as the cause of `NoProxyAvailable`, and every failure through a proxy naming
//! it. Real HTTP over loopback through the in-process test proxies; waits with paused time.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use fastreq::ext::{Deadline, RequestTimeout};
use fastreq::proxy::{
    Proxy, ProxyError, ProxyPool, ProxyRotationLayer, SelectedProxy, WhenAllDown,
};
use fastreq::{Backend, Body, Certificate, Error, ErrorKind, ResponseBody};
use http::{Request, Response};
use support::proxy::{Behavior, TestProxy};
use support::{Reply, TestServer};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

const SECRET: &str = "s3cret-Pa55";
/// Every real-network request of these tests ends within this.
const T: Duration = Duration::from_secs(10);

/// Every Display and Debug of the error and its source chain.
fn all_text(err: &Error) -> String {
    let mut out = format!("{err} | {err:?}");
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = next {
        out.push_str(&format!(" | {e} | {e:?}"));
        next = e.source();
    }
    out
}

/// The Display of each link of the source chain (not the error itself).
fn causes(err: &Error) -> Vec<String> {
    let mut out = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = next {
        out.push(e.to_string());
        next = e.source();
    }
    out
}

// ---------------------------------------------------------------------------------------
// URLs in errors
// ---------------------------------------------------------------------------------------

#[test]
fn a_password_in_a_malformed_url_never_reaches_the_error() {
    for input in [
        "http:/alice:s3cret@[::1/a",
        "http:alice:s3cret@[::1/a",
        "alice:s3cret@[::1/a",
        "//alice:s3cret@[::1/a",
    ] {
        let err = fastreq::get(input).build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{input}");
        let text = all_text(&err);
        assert!(!text.contains("s3cret"), "{input}: {text}");
        assert!(text.contains("[::1/a"), "the rest is kept: {text}");
    }
    let err = Error::new(ErrorKind::Io).with_url("http:/u:p@x.test/?a=1;token=T0K#id_token=I0K");
    assert_eq!(
        err.url(),
        Some("http:/x.test/?a=1;token=REDACTED#id_token=REDACTED")
    );
}

#[test]
fn a_1mb_url_gives_a_short_error() {
    let mut huge = String::from("http://h.test/?q=");
    huge.push_str(&"a".repeat(1024 * 1024));
    // Too long for a URI: an InvalidRequest error quoting the input.
    let err = fastreq::get(&huge).build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    let (display, debug) = (err.to_string(), format!("{err:?}"));
    assert!(display.len() < 8 * 1024, "{} bytes", display.len());
    assert!(debug.len() < 8 * 1024, "{} bytes", debug.len());
    assert!(display.contains("[truncated, "), "{}", &display[..200]);

    let err = Error::new(ErrorKind::Io).with_url(&huge);
    let url = err.url().unwrap();
    assert!(url.len() <= 2100, "{} bytes", url.len());
    assert!(url.starts_with("http://h.test/?q=aaaa"));
    assert!(
        url.ends_with(&format!("…[truncated, {} bytes]", huge.len())),
        "{url}"
    );
    assert!(err.to_string().len() < 2200);
}

// ---------------------------------------------------------------------------------------
// Waiting for a proxy: bounded by the request (paused time, in-memory backend)
// ---------------------------------------------------------------------------------------

/// Answers "ok", except through the proxies in `failing`: those give the backend's 407
/// error.
#[derive(Clone, Default)]
struct Mock {
    failing: Arc<Mutex<HashSet<Proxy>>>,
    calls: Arc<AtomicUsize>,
}

impl Service<Request<Body>> for Mock {
    type Response = Response<ResponseBody>;
    type Error = Error;
    type Future = std::future::Ready<Result<Response<ResponseBody>, Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let proxy = req.extensions().get::<SelectedProxy>().map(|s| s.0.clone());
        std::future::ready(match proxy {
            Some(p) if self.failing.lock().unwrap().contains(&p) => Err(ProxyError::new(
                &p,
                ErrorKind::Proxy,
                "answered 407 Proxy Authentication Required",
            )
            .into_error()),
            _ => Ok(Response::new(ResponseBody::from("ok"))),
        })
    }
}

fn get(url: &str) -> Request<Body> {
    fastreq::get(url).build().unwrap()
}

/// A pool of one proxy, failed once through `svc` (so cooling down for 60 s), and the mock.
async fn one_failed_proxy(
    layer: ProxyRotationLayer,
) -> (
    ProxyPool,
    Proxy,
    Mock,
    impl Clone + Service<Request<Body>, Response = Response<ResponseBody>, Error = Error>,
) {
    let pool = layer.pool().clone();
    let proxy = pool.proxies()[0].clone();
    let mock = Mock::default();
    mock.failing.lock().unwrap().insert(proxy.clone());
    let svc = layer.layer(mock.clone());
    let err = svc
        .clone()
        .oneshot(get("http://x.test/"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Proxy, "{err}");
    assert_eq!(err.proxy(), Some(&proxy));
    assert!(pool.health(&proxy).unwrap().cooling_down_for.is_some());
    (pool, proxy, mock, svc)
}

fn the_pool() -> ProxyPool {
    ProxyPool::from_lines(&format!("http://u:{SECRET}@a.test:3128")).unwrap()
}

/// The no-proxy error of a bounded wait: at once, saying when the proxy recovers and why
/// the request did not wait, with the 407 as its cause.
fn assert_bounded(err: &Error, start: Instant, bound: &str) {
    assert_eq!(err.kind(), ErrorKind::NoProxyAvailable, "{err}");
    assert_eq!(err.proxy(), None, "never sent");
    assert_eq!(start.elapsed(), Duration::ZERO, "failed at once, no sleep");
    let text = err.to_string();
    assert!(text.contains("recovers in 60 s"), "{text}");
    assert!(text.contains(bound), "{text}");
    let chain = causes(err);
    assert!(
        chain.iter().any(|c| c.contains("407")),
        "the last proxy failure is the source: {chain:?}"
    );
    assert!(
        chain.iter().any(|c| c.contains("http://***@a.test:3128")),
        "{chain:?}"
    );
    assert!(!all_text(err).contains(SECRET));
}

#[tokio::test(start_paused = true)]
async fn a_wait_for_a_proxy_is_bounded_by_the_request_timeout() {
    let (_, _, mock, svc) = one_failed_proxy(ProxyRotationLayer::new(the_pool())).await;
    let start = Instant::now();
    let mut req = get("http://x.test/");
    req.extensions_mut()
        .insert(RequestTimeout(Duration::from_secs(2)));
    let err = svc.clone().oneshot(req).await.unwrap_err();
    assert_bounded(&err, start, "timeout of 2 s");
    assert_eq!(mock.calls.load(Ordering::SeqCst), 1, "nothing sent");
}

#[tokio::test(start_paused = true)]
async fn a_wait_for_a_proxy_is_bounded_by_the_deadline() {
    let (pool, proxy, mock, svc) = one_failed_proxy(ProxyRotationLayer::new(the_pool())).await;
    let start = Instant::now();
    let mut req = get("http://x.test/");
    req.extensions_mut()
        .insert(Deadline::after(Duration::from_secs(5)));
    let err = svc.clone().oneshot(req).await.unwrap_err();
    assert_bounded(&err, start, "deadline (in 5 s)");
    assert_eq!(mock.calls.load(Ordering::SeqCst), 1);

    // A deadline already passed.
    let mut req = get("http://x.test/");
    req.extensions_mut().insert(Deadline(Instant::now()));
    let err = svc.clone().oneshot(req).await.unwrap_err();
    assert_bounded(&err, start, "deadline, which has passed");

    // A deadline beyond the recovery: it waits, then goes through the recovered proxy.
    mock.failing.lock().unwrap().clear();
    let mut req = get("http://x.test/");
    req.extensions_mut()
        .insert(Deadline::after(Duration::from_secs(90)));
    svc.clone().oneshot(req).await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(60),
        "woke when it recovered"
    );
    assert_eq!(mock.calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        pool.health(&proxy).unwrap().cooling_down_for,
        None,
        "the success cleared the cooldown"
    );
}

#[tokio::test(start_paused = true)]
async fn the_earliest_bound_wins() {
    let layer = ProxyRotationLayer::new(the_pool()).max_wait(Duration::from_secs(45));
    let (_, _, _, svc) = one_failed_proxy(layer).await;
    let start = Instant::now();
    let mut req = get("http://x.test/");
    req.extensions_mut()
        .insert(Deadline::after(Duration::from_secs(10)));
    req.extensions_mut()
        .insert(RequestTimeout(Duration::from_secs(30)));
    let err = svc.clone().oneshot(req).await.unwrap_err();
    assert_bounded(&err, start, "deadline");
}

#[tokio::test(start_paused = true)]
async fn a_wait_for_a_proxy_is_bounded_by_max_wait() {
    let layer = ProxyRotationLayer::new(the_pool()).max_wait(Duration::from_secs(3));
    let (_, _, _, svc) = one_failed_proxy(layer).await;
    let start = Instant::now();
    let err = svc
        .clone()
        .oneshot(get("http://x.test/"))
        .await
        .unwrap_err();
    assert_bounded(&err, start, "maximum wait of 3 s");
}

#[tokio::test(start_paused = true)]
async fn fail_when_all_down_keeps_the_last_proxy_failure() {
    let layer = ProxyRotationLayer::new(the_pool()).when_all_down(WhenAllDown::Fail);
    let (_, proxy, _, svc) = one_failed_proxy(layer).await;
    let start = Instant::now();
    let err = svc
        .clone()
        .oneshot(get("http://x.test/"))
        .await
        .unwrap_err();
    assert_bounded(&err, start, "");
    let found = ProxyError::find(&err).expect("the cause names the proxy");
    assert_eq!(found.proxy(), &proxy);
}

// ---------------------------------------------------------------------------------------
// The same through the real backend and loopback proxies
// ---------------------------------------------------------------------------------------

fn backend(servers: &[&TestServer]) -> Backend {
    let mut b = Backend::builder().proxy_handshake_timeout(Duration::from_secs(2));
    for s in servers {
        if s.is_tls() {
            b = b.add_root_certificate(Certificate::from_der(s.cert_der()));
        }
    }
    b.build().unwrap()
}

async fn send<S>(svc: &S, req: Request<Body>) -> Result<Response<ResponseBody>, Error>
where
    S: Service<Request<Body>, Response = Response<ResponseBody>, Error = Error> + Clone,
{
    tokio::time::timeout(T, svc.clone().oneshot(req))
        .await
        .expect("finished in time")
}

#[tokio::test]
async fn one_proxy_answering_407_does_not_hold_requests_beyond_their_timeout() {
    let server = TestServer::start(|_| Reply::text("ok"));
    let http = TestProxy::http()
        .auth("u", SECRET)
        .behavior(Behavior::Status(407))
        .start();
    let socks = TestProxy::socks().behavior(Behavior::Status(2)).start();
    for (proxy, why) in [(&http, "407"), (&socks, "handshake failed")] {
        let pool = ProxyPool::from_iter([proxy.url()]).unwrap();
        let svc = ProxyRotationLayer::new(pool.clone()).layer(backend(&[]));
        let err = send(&svc, get(&server.url("/"))).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Proxy, "{err}");

        // The default waits for the proxy, but not beyond the request's timeout.
        let started = std::time::Instant::now();
        let req = fastreq::get(server.url("/"))
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let err = send(&svc, req).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(err.kind(), ErrorKind::NoProxyAvailable, "{err}");
        assert!(err.to_string().contains("recovers in "), "{err}");
        let chain = causes(&err);
        assert!(chain.iter().any(|c| c.contains(why)), "{why}: {chain:?}");
        assert!(
            chain.iter().any(|c| c.contains(&proxy.addr().to_string())),
            "{chain:?}"
        );
        assert!(!all_text(&err).contains(SECRET));

        // WhenAllDown::Fail: the same cause.
        let svc = ProxyRotationLayer::new(pool)
            .when_all_down(WhenAllDown::Fail)
            .layer(backend(&[]));
        let err = send(&svc, get(&server.url("/"))).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NoProxyAvailable, "{err}");
        assert!(causes(&err).iter().any(|c| c.contains(why)), "{err:?}");
    }
    assert_eq!(server.hits(), 0);
}

// ---------------------------------------------------------------------------------------
// Every failure through a proxy names it
// ---------------------------------------------------------------------------------------

/// The proxy's redacted form, `http://***@127.0.0.1:PORT`.
fn shown(proxy: &TestProxy, scheme: &str) -> String {
    format!("{scheme}://***@{}", proxy.addr())
}

#[tokio::test]
async fn a_proxy_answering_connect_200_then_garbage_is_named() {
    let tls = TestServer::builder().tls().start(|_| Reply::text("ok"));
    let plain = TestServer::start(|_| Reply::text("ok"));
    let http = TestProxy::http()
        .auth("u", SECRET)
        .behavior(Behavior::Garbage)
        .start();
    let socks = TestProxy::socks()
        .auth("u", SECRET)
        .behavior(Behavior::Garbage)
        .start();

    let cases = [
        (
            &http,
            "http",
            tls.url("/"),
            "CONNECT 200, then garbage for TLS",
        ),
        (
            &http,
            "http",
            plain.url("/"),
            "garbage for a forwarded request",
        ),
        (
            &socks,
            "socks5",
            plain.url("/"),
            "SOCKS success, then garbage",
        ),
        (
            &socks,
            "socks5h",
            tls.url("/"),
            "SOCKS success, then garbage for TLS",
        ),
    ];
    for (proxy, scheme, url, what) in cases {
        let line = proxy.url_with_scheme(scheme);
        let pool = ProxyPool::from_iter([line.as_str()]).unwrap();
        let svc = ProxyRotationLayer::new(pool).layer(backend(&[&tls]));
        let err = send(&svc, get(&url)).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&shown(proxy, scheme)), "{what}: {text}");
        assert!(!all_text(&err).contains(SECRET), "{what}");
        assert_eq!(err.proxy(), Some(&Proxy::parse(&line).unwrap()), "{what}");

        // The same with a per-request proxy, straight to the backend.
        let mut req = get(&url);
        req.extensions_mut()
            .insert(fastreq::proxy::ProxyOverride(Some(
                Proxy::parse(&line).unwrap(),
            )));
        let err = send(&backend(&[&tls]), req).await.unwrap_err();
        assert!(
            err.to_string().contains(&shown(proxy, scheme)),
            "{what}: {err}"
        );
        assert_eq!(err.proxy(), Some(&Proxy::parse(&line).unwrap()), "{what}");
    }
    assert_eq!((tls.hits(), plain.hits()), (0, 0));
}

#[tokio::test]
async fn every_failure_of_an_attempt_through_a_proxy_names_it() {
    let server = TestServer::start(|req| match req.path() {
        "/slow" => Reply::text("late").delay(Duration::from_secs(5)),
        "/cut" => Reply::truncated("only part", 1000),
        "/loop" => Reply::status(302).header("location", "/loop"),
        _ => Reply::text("ok"),
    });
    let proxy = TestProxy::http().auth("u", SECRET).start();
    let client = fastreq::stack()
        .proxy_lines(&proxy.url())
        .retries(0)
        .timeout(Duration::from_millis(300))
        .max_redirects(2)
        .build()
        .unwrap();
    let want = shown(&proxy, "http");
    for (path, kind) in [
        ("/slow", ErrorKind::Timeout),
        ("/cut", ErrorKind::Io),
        ("/loop", ErrorKind::TooManyRedirects),
    ] {
        let err = tokio::time::timeout(T, client.get(server.url(path)))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{path}: {err}");
        assert!(err.to_string().contains(&want), "{path}: {err}");
        assert_eq!(
            err.proxy().map(|p| p.to_string()),
            Some(want.clone()),
            "{path}"
        );
        assert!(!all_text(&err).contains(SECRET));
    }
    // A direct failure names no proxy.
    let direct = fastreq::stack().retries(0).build().unwrap();
    let err = direct.get(support::closed_url("/")).await.unwrap_err();
    assert!(!err.to_string().contains("proxy"), "{err}");
    assert_eq!(err.proxy(), None);
}
