//! Proxy rotation and proxied connections: parsing, strategies, health with paused time,
//! all-down behaviour, and the backend through in-process HTTP (CONNECT + forward, plain and
//! TLS) and SOCKS5/SOCKS4 proxies on loopback. The `real_*` tests run against tinyproxy and
//! dante started by `scripts/real_proxies.sh`.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use fastreq::proxy::{
    PickContext, Picker, Proxy, ProxyError, ProxyOverride, ProxyPool, ProxyRotationLayer,
    ProxyScheme, SelectedProxy, Strategy, WhenAllDown,
};
use fastreq::{Backend, Body, Certificate, Error, ErrorKind, ResponseBody, ResponseExt};
use http::{Request, Response};
use support::proxy::{basic_auth, Behavior, TestProxy};
use support::{Reply, TestServer};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

const T: Duration = Duration::from_secs(10);
const SECRET: &str = "s3cret-Pa55";

// ---------------------------------------------------------------------------------------
// In-memory backend: records the proxy of every call, fails for the proxies in `failing`.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Mock {
    log: Arc<Mutex<Vec<Option<Proxy>>>>,
    failing: Arc<Mutex<HashSet<Proxy>>>,
    ready_calls: Arc<AtomicUsize>,
    calls: Arc<AtomicUsize>,
    /// Make failures plain timeouts (not the proxy's fault) instead of proxy errors.
    neutral_errors: Arc<std::sync::atomic::AtomicBool>,
}

impl Mock {
    fn used(&self) -> Vec<Option<Proxy>> {
        self.log.lock().unwrap().clone()
    }
    fn fail(&self, p: &Proxy) {
        self.failing.lock().unwrap().insert(p.clone());
    }
    fn heal(&self, p: &Proxy) {
        self.failing.lock().unwrap().remove(p);
    }
}

impl Service<Request<Body>> for Mock {
    type Response = Response<ResponseBody>;
    type Error = Error;
    type Future = std::future::Ready<Result<Response<ResponseBody>, Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.ready_calls.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let proxy = req.extensions().get::<SelectedProxy>().map(|s| s.0.clone());
        self.log.lock().unwrap().push(proxy.clone());
        let failing = proxy
            .as_ref()
            .is_some_and(|p| self.failing.lock().unwrap().contains(p));
        std::future::ready(if failing {
            if self.neutral_errors.load(Ordering::SeqCst) {
                Err(Error::new(ErrorKind::Timeout).with_message("slow origin"))
            } else {
                Err(
                    ProxyError::new(proxy.as_ref().unwrap(), ErrorKind::Proxy, "refused")
                        .into_error(),
                )
            }
        } else {
            Ok(Response::new(ResponseBody::from("ok")))
        })
    }
}

fn pool(lines: &str) -> ProxyPool {
    ProxyPool::from_lines(lines).unwrap()
}

fn abc() -> (ProxyPool, Proxy, Proxy, Proxy) {
    let p = pool("a.test:1\nb.test:2\nc.test:3");
    let v = p.proxies();
    (p, v[0].clone(), v[1].clone(), v[2].clone())
}

async fn get<S>(svc: &S, url: &str) -> Result<Response<ResponseBody>, Error>
where
    S: Service<Request<Body>, Response = Response<ResponseBody>, Error = Error> + Clone,
{
    svc.clone()
        .oneshot(fastreq::get(url).build().unwrap())
        .await
}

fn names(used: &[Option<Proxy>]) -> Vec<String> {
    used.iter()
        .map(|p| p.as_ref().map_or("direct".into(), |p| p.host().to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

#[test]
fn parses_every_format_and_skips_comments() {
    let text = format!(
        "# a comment\n\n  http://alice:{SECRET}@10.0.0.1:3128  \n10.0.0.2:8080\n\
         10.0.0.3:8080:bob:{SECRET}\nsocks5://10.0.0.4:1080\nsocks5h://carol:{SECRET}@h.test:1081\n\
         socks4://10.0.0.5\nhttps://[::1]:8443\n"
    );
    let pool = ProxyPool::from_lines(&text).unwrap();
    let got: Vec<(ProxyScheme, String, u16, Option<String>)> = pool
        .proxies()
        .iter()
        .map(|p| {
            (
                p.scheme(),
                p.host().to_owned(),
                p.port(),
                p.username().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                ProxyScheme::Http,
                "10.0.0.1".into(),
                3128,
                Some("alice".into())
            ),
            (ProxyScheme::Http, "10.0.0.2".into(), 8080, None),
            (
                ProxyScheme::Http,
                "10.0.0.3".into(),
                8080,
                Some("bob".into())
            ),
            (ProxyScheme::Socks5, "10.0.0.4".into(), 1080, None),
            (
                ProxyScheme::Socks5h,
                "h.test".into(),
                1081,
                Some("carol".into())
            ),
            (ProxyScheme::Socks4, "10.0.0.5".into(), 1080, None),
            (ProxyScheme::Https, "[::1]".into(), 8443, None),
        ]
    );
    assert!(!format!("{pool:?}").contains(SECRET));

    // The same from a file and from an iterator of lines and values.
    let path = std::env::temp_dir().join(format!("fastreq-proxies-{}.txt", std::process::id()));
    std::fs::write(&path, &text).unwrap();
    let from_file = ProxyPool::from_file(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(from_file.proxies(), pool.proxies());
    let from_iter = ProxyPool::from_iter(["10.0.0.2:8080", "socks5://10.0.0.4:1080"]).unwrap();
    assert_eq!(
        from_iter.proxies(),
        vec![pool.proxies()[1].clone(), pool.proxies()[3].clone()]
    );
    let values = ProxyPool::from_iter(pool.proxies()).unwrap();
    assert_eq!(values.len(), 7);
}

#[test]
fn a_bad_line_is_an_error_naming_it_with_the_password_redacted() {
    let cases = [
        (
            format!("10.0.0.1:80\n\nftp://bob:{SECRET}@h.test:21"),
            "line 3",
            "bob:***@h.test:21",
        ),
        (
            "# x\n10.0.0.1:80:bob\n".to_owned(),
            "line 2",
            "10.0.0.1:80:***",
        ),
        (
            // Not a port: what follows may be anything, so only the host is shown.
            format!("10.0.0.1:80\n10.0.0.2:http:bob:{SECRET}"),
            "line 2",
            "10.0.0.2:***",
        ),
        (
            format!("socks4://u:{SECRET}@h.test:1"),
            "line 1",
            "u:***@h.test:1",
        ),
        ("10.0.0.1".to_owned(), "line 1", "missing port"),
    ];
    for (text, place, shown) in cases {
        let err = ProxyPool::from_lines(&text).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        let s = format!("{err} {err:?}");
        assert!(s.contains(place) && s.contains(shown), "{s}");
        assert!(!s.contains(SECRET), "{s}");
    }
    let err = ProxyPool::from_iter(["10.0.0.1:80", "nope"]).unwrap_err();
    assert!(err.to_string().contains("proxy #2"), "{err}");
    assert_eq!(
        ProxyPool::from_lines("# only comments\n")
            .unwrap_err()
            .kind(),
        ErrorKind::Config
    );
    let err = ProxyPool::from_file("/nonexistent/proxies.txt").unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/proxies.txt"),
        "{err}"
    );
    let err = ProxyPool::builder()
        .lines("h:1")
        .cooldown(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(err.is_config());
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn round_robin_visits_each_in_turn_and_skips_cooling_ones() {
    let (pool, _a, b, _c) = abc();
    let mock = Mock::default();
    let svc = ProxyRotationLayer::new(pool.clone()).layer(mock.clone());
    for _ in 0..6 {
        get(&svc, "http://x.test/").await.unwrap();
    }
    assert_eq!(
        names(&mock.used()),
        ["a.test", "b.test", "c.test", "a.test", "b.test", "c.test"]
    );

    pool.mark_failed(&b);
    mock.log.lock().unwrap().clear();
    for _ in 0..6 {
        get(&svc, "http://x.test/").await.unwrap();
    }
    assert_eq!(
        names(&mock.used()),
        ["a.test", "c.test", "a.test", "c.test", "a.test", "c.test"]
    );
}

#[tokio::test]
async fn random_covers_every_proxy_evenly_and_never_a_cooling_one() {
    let (pool, a, b, c) = abc();
    let mock = Mock::default();
    let svc = ProxyRotationLayer::new(pool.clone())
        .strategy(Strategy::Random)
        .layer(mock.clone());
    for _ in 0..3000 {
        get(&svc, "http://x.test/").await.unwrap();
    }
    let mut counts: HashMap<Proxy, usize> = HashMap::new();
    for p in mock.used() {
        *counts.entry(p.unwrap()).or_default() += 1;
    }
    for p in [&a, &b, &c] {
        let n = counts[p];
        assert!((850..=1150).contains(&n), "{p}: {n} of 3000");
    }
    pool.mark_failed(&a);
    mock.log.lock().unwrap().clear();
    for _ in 0..300 {
        get(&svc, "http://x.test/").await.unwrap();
    }
    let used = mock.used();
    assert!(used.iter().all(|p| p.as_ref() != Some(&a)));
    assert!(
        used.iter().any(|p| p.as_ref() == Some(&b)) && used.iter().any(|p| p.as_ref() == Some(&c))
    );
}

#[tokio::test(start_paused = true)]
async fn sticky_per_host_keeps_a_host_on_one_proxy_until_it_fails() {
    let pool = pool("p1.test:1\np2.test:1\np3.test:1\np4.test:1\np5.test:1");
    let mock = Mock::default();
    let svc = ProxyRotationLayer::new(pool.clone())
        .strategy(Strategy::StickyPerHost)
        .layer(mock.clone());
    let hosts: Vec<String> = (0..40).map(|i| format!("host{i}.test")).collect();
    let mut first: HashMap<String, Proxy> = HashMap::new();
    for round in 0..3 {
        for h in &hosts {
            // Port and case do not matter.
            let url = if round == 1 {
                format!("http://{}:8080/x", h.to_uppercase())
            } else {
                format!("http://{h}/")
            };
            get(&svc, &url).await.unwrap();
            let p = mock.used().last().unwrap().clone().unwrap();
            let prev = first.entry(h.clone()).or_insert_with(|| p.clone());
            assert_eq!(prev, &p, "{h} moved");
        }
    }
    let distinct: HashSet<&Proxy> = first.values().collect();
    assert!(
        distinct.len() >= 4,
        "40 hosts use {} of 5 proxies",
        distinct.len()
    );

    // The proxy of host0 fails: host0 moves, other hosts on other proxies stay.
    let p0 = first["host0.test"].clone();
    mock.fail(&p0);
    assert_eq!(
        get(&svc, "http://host0.test/").await.unwrap_err().kind(),
        ErrorKind::Proxy
    );
    mock.heal(&p0);
    get(&svc, "http://host0.test/").await.unwrap();
    let moved = mock.used().last().unwrap().clone().unwrap();
    assert_ne!(moved, p0);
    for h in &hosts {
        if first[h] != p0 {
            get(&svc, &format!("http://{h}/")).await.unwrap();
            assert_eq!(mock.used().last().unwrap().as_ref(), Some(&first[h]));
        }
    }
    // After the cooldown it comes back.
    tokio::time::advance(Duration::from_secs(60)).await;
    get(&svc, "http://host0.test/").await.unwrap();
    assert_eq!(mock.used().last().unwrap().as_ref(), Some(&p0));
}

#[tokio::test]
async fn a_custom_picker_is_used() {
    struct Last;
    impl Picker for Last {
        fn pick(&self, cx: &PickContext<'_>) -> Option<usize> {
            (0..cx.len()).rev().find(|&i| cx.is_available(i))
        }
    }
    let (pool, _a, b, c) = abc();
    let mock = Mock::default();
    let svc = ProxyRotationLayer::new(pool.clone())
        .picker(Last)
        .layer(mock.clone());
    get(&svc, "http://x.test/").await.unwrap();
    pool.mark_failed(&c);
    get(&svc, "http://x.test/").await.unwrap();
    assert_eq!(mock.used(), vec![Some(c), Some(b)]);
}

#[tokio::test]
async fn a_per_request_override_bypasses_the_pool() {
    let (pool, a, _b, _c) = abc();
    let mock = Mock::default();
    let svc = ProxyRotationLayer::new(pool.clone()).layer(mock.clone());
    let other = Proxy::parse("socks5://z.test:9").unwrap();
    let mut req = fastreq::get("http://x.test/").build().unwrap();
    req.extensions_mut()
        .insert(ProxyOverride(Some(other.clone())));
    svc.clone().oneshot(req).await.unwrap();
    let mut req = fastreq::get("http://x.test/").build().unwrap();
    req.extensions_mut().insert(ProxyOverride(None));
    svc.clone().oneshot(req).await.unwrap();
    get(&svc, "http://x.test/").await.unwrap();
    // The layer set no SelectedProxy on the overridden requests (the backend reads the
    // override), and the rotation went on from the start.
    assert_eq!(mock.used(), vec![None, None, Some(a)]);
}

// ---------------------------------------------------------------------------------------
// Health, with paused time
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn cooldown_starts_at_60s_doubles_and_a_success_clears_it() {
    let pool = ProxyPool::builder()
        .lines("a.test:1\nb.test:1")
        .max_cooldown(Duration::from_secs(150))
        .build()
        .unwrap();
    let (a, b) = (pool.proxies()[0].clone(), pool.proxies()[1].clone());
    let mock = Mock::default();
    let svc = ProxyRotationLayer::new(pool.clone()).layer(mock.clone());
    mock.fail(&a);

    let err = get(&svc, "http://x.test/").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Proxy);
    let h = pool.health(&a).unwrap();
    assert_eq!(
        (h.failures, h.cooling_down_for),
        (1, Some(Duration::from_secs(60)))
    );

    // 1 ms before the end of the cooldown only b is used.
    tokio::time::advance(Duration::from_millis(59_999)).await;
    for _ in 0..3 {
        get(&svc, "http://x.test/").await.unwrap();
    }
    assert_eq!(names(&mock.used()[1..]), ["b.test", "b.test", "b.test"]);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(pool.available().len(), 2);

    // a fails again: 120 s; a third time: capped at 150 s.
    let mut failed_at = Vec::new();
    for expected in [120u64, 150] {
        loop {
            let r = get(&svc, "http://x.test/").await;
            if mock.used().last().unwrap().as_ref() == Some(&a) {
                assert!(r.is_err());
                failed_at.push(Instant::now());
                break;
            }
        }
        assert_eq!(
            pool.health(&a).unwrap().cooling_down_for,
            Some(Duration::from_secs(expected))
        );
        tokio::time::advance(Duration::from_secs(expected)).await;
    }
    assert_eq!(pool.health(&a).unwrap().failures, 3);

    // It works again: a success clears the failure count.
    mock.heal(&a);
    for _ in 0..2 {
        get(&svc, "http://x.test/").await.unwrap();
    }
    assert_eq!(
        pool.health(&a).unwrap(),
        fastreq::proxy::ProxyHealth {
            failures: 0,
            cooling_down_for: None
        }
    );
    assert_eq!(pool.health(&b).unwrap().failures, 0);
}

#[tokio::test(start_paused = true)]
async fn failures_of_requests_in_flight_do_not_lengthen_the_cooldown() {
    let (pool, a, _b, _c) = abc();
    pool.mark_failed(&a);
    tokio::time::advance(Duration::from_secs(10)).await;
    pool.mark_failed(&a);
    pool.mark_failed(&a);
    let h = pool.health(&a).unwrap();
    assert_eq!(
        (h.failures, h.cooling_down_for),
        (1, Some(Duration::from_secs(50)))
    );
}

#[tokio::test(start_paused = true)]
async fn errors_that_are_not_the_proxys_fault_do_not_cool_it_down() {
    let (pool, a, _b, _c) = abc();
    let mock = Mock::default();
    mock.neutral_errors.store(true, Ordering::SeqCst);
    mock.fail(&a);
    let svc = ProxyRotationLayer::new(pool.clone()).layer(mock.clone());
    let err = get(&svc, "http://x.test/").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(pool.health(&a).unwrap().failures, 0);
    // A timeout marked with a ProxyError (a handshake timeout) does.
    let svc2 =
        ProxyRotationLayer::new(pool.clone()).layer(tower::service_fn(move |r: Request<Body>| {
            let p = r.extensions().get::<SelectedProxy>().unwrap().0.clone();
            let e = Error::new(ErrorKind::Timeout)
                .with_message("handshake")
                .with_source(ProxyError::new(&p, ErrorKind::Timeout, "handshake"));
            async move { Err::<Response<ResponseBody>, _>(e) }
        }));
    assert_eq!(
        get(&svc2, "http://x.test/").await.unwrap_err().kind(),
        ErrorKind::Timeout
    );
    assert_eq!(pool.health(&a).unwrap().failures, 1);
}

// ---------------------------------------------------------------------------------------
// Every proxy cooling down
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn all_down_waits_for_the_first_to_recover_holding_nothing_below() {
    let pool = pool("a.test:1\nb.test:1");
    let (a, b) = (pool.proxies()[0].clone(), pool.proxies()[1].clone());
    pool.mark_failed(&a); // recovers at +60 s
    tokio::time::advance(Duration::from_secs(10)).await;
    pool.mark_failed(&b); // recovers at +70 s
    let mock = Mock::default();
    let svc = ProxyRotationLayer::new(pool.clone()).layer(mock.clone());

    let start = Instant::now();
    let waiting = tokio::spawn({
        let svc = svc.clone();
        async move { get(&svc, "http://x.test/").await }
    });
    tokio::time::sleep(Duration::from_secs(30)).await;
    // While it waits: the inner service was driven ready once (by `oneshot`'s poll_ready on
    // the layer, kept for the next call), not called, and is free for other requests.
    assert_eq!(mock.ready_calls.load(Ordering::SeqCst), 1);
    assert_eq!(mock.calls.load(Ordering::SeqCst), 0);
    let mut direct = fastreq::get("http://y.test/").build().unwrap();
    direct.extensions_mut().insert(ProxyOverride(None));
    svc.clone().oneshot(direct).await.unwrap();
    assert_eq!(mock.calls.load(Ordering::SeqCst), 1);

    waiting.await.unwrap().unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(50),
        "woke when a recovered"
    );
    assert_eq!(mock.used(), vec![None, Some(a)]);
}

#[tokio::test(start_paused = true)]
async fn all_down_can_fail_at_once_and_never_goes_direct_silently() {
    let (pool, a, b, c) = abc();
    for p in [&a, &b, &c] {
        pool.mark_failed(p);
    }
    let mock = Mock::default();

    let svc = ProxyRotationLayer::new(pool.clone())
        .when_all_down(WhenAllDown::Fail)
        .layer(mock.clone());
    let start = Instant::now();
    let err = get(&svc, "http://x.test/path?token=t0k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoProxyAvailable);
    assert!(err.is_proxy());
    assert!(
        err.to_string().contains("all 3 proxies are cooling down"),
        "{err}"
    );
    assert!(!err.to_string().contains("t0k"));
    assert_eq!(start.elapsed(), Duration::ZERO);

    // Wait, but at most 30 s: the first recovers in 60 s, so it fails now.
    let svc = ProxyRotationLayer::new(pool.clone())
        .max_wait(Duration::from_secs(30))
        .layer(mock.clone());
    let err = get(&svc, "http://x.test/").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoProxyAvailable);
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(
        mock.calls.load(Ordering::SeqCst),
        0,
        "nothing was sent, least of all directly"
    );

    // 40 s later the wait fits in the bound.
    tokio::time::advance(Duration::from_secs(40)).await;
    get(&svc, "http://x.test/").await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(60));
    let used = mock.used();
    assert_eq!(used.len(), 1);
    assert!(pool
        .proxies()
        .contains(used[0].as_ref().expect("through a proxy")));

    // Every proxy removed: no proxy, never direct.
    for p in pool.proxies() {
        assert!(pool.remove(&p));
    }
    let svc = ProxyRotationLayer::new(pool.clone()).layer(mock.clone());
    let err = get(&svc, "http://x.test/").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoProxyAvailable);
    assert!(err.to_string().contains("removed"), "{err}");
    assert_eq!(mock.used().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn going_direct_is_an_explicit_opt_in() {
    let (pool, a, b, c) = abc();
    for p in [&a, &b, &c] {
        pool.mark_failed(p);
    }
    let mock = Mock::default();
    let svc = ProxyRotationLayer::new(pool.clone())
        .when_all_down(WhenAllDown::GoDirect)
        .layer(mock.clone());
    get(&svc, "http://x.test/").await.unwrap();
    assert_eq!(mock.used(), vec![None]);
}

// ---------------------------------------------------------------------------------------
// The backend through real (loopback) proxies
// ---------------------------------------------------------------------------------------

fn via(proxy: &str, mut req: Request<Body>) -> Request<Body> {
    req.extensions_mut()
        .insert(ProxyOverride(Some(Proxy::parse(proxy).unwrap())));
    req
}

async fn send(backend: &Backend, req: Request<Body>) -> Result<Response<ResponseBody>, Error> {
    tokio::time::timeout(T, backend.clone().oneshot(req))
        .await
        .expect("request finished in time")
}

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

fn echo_server() -> TestServer {
    TestServer::start(|req| {
        Reply::text(format!(
            "{}|{}|{}",
            req.uri,
            req.header("proxy-authorization").unwrap_or("-"),
            req.peer
        ))
    })
}

fn tls_echo_server() -> TestServer {
    TestServer::builder().tls().start(|req| {
        Reply::text(format!(
            "{}|{}|{}",
            req.uri.path(),
            req.header("proxy-authorization").unwrap_or("-"),
            req.peer
        ))
    })
}

fn backend_for(servers: &[&TestServer]) -> Backend {
    let mut b = Backend::builder()
        .resolve("a.test", "127.0.0.1:0".parse().unwrap())
        .resolve("b.test", "127.0.0.1:0".parse().unwrap())
        .resolve("localhost", "127.0.0.1:0".parse().unwrap());
    for s in servers {
        if s.is_tls() {
            b = b.add_root_certificate(Certificate::from_der(s.cert_der()));
        }
    }
    b.build().unwrap()
}

fn fields(text: &str) -> (String, String, std::net::SocketAddr) {
    let v: Vec<&str> = text.split('|').collect();
    (v[0].to_owned(), v[1].to_owned(), v[2].parse().unwrap())
}

#[tokio::test]
async fn http_target_through_an_http_proxy_goes_in_absolute_form_with_proxy_authorization() {
    let server = echo_server();
    let proxy = TestProxy::http().auth("alice", SECRET).start();
    let backend = backend_for(&[]);

    let resp = send(
        &backend,
        via(
            &proxy.url(),
            fastreq::get(server.url("/hello?x=1")).build().unwrap(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let used = resp.extensions().get::<SelectedProxy>().unwrap().0.clone();
    assert_eq!(used.to_string(), format!("http://***@{}", proxy.addr()));
    let (uri, auth, peer) = fields(&resp.text().await.unwrap());
    assert_eq!(uri, "/hello?x=1", "the origin gets origin form");
    assert_eq!(auth, "-", "the origin never sees Proxy-Authorization");
    assert!(
        proxy.upstream_addrs().contains(&peer),
        "the target saw the proxy's connection"
    );

    let seen = proxy.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(
        seen[0].target,
        server.url("/hello?x=1"),
        "absolute form at the proxy"
    );
    assert_eq!(
        seen[0].header("proxy-authorization"),
        Some(basic_auth("alice", SECRET).as_str())
    );
    assert_eq!((proxy.forwarded(), proxy.tunnels()), (1, 0));
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn https_target_through_connect_and_proxy_authorization_never_reaches_the_origin() {
    let server = tls_echo_server();
    let proxy = TestProxy::http().auth("alice", SECRET).start();
    let backend = backend_for(&[&server]);

    for _ in 0..3 {
        // Even one set by the user is removed on a tunnel.
        let req = fastreq::get(server.url("/secure"))
            .header("proxy-authorization", "Basic dXNlcjpzZXQ=")
            .build()
            .unwrap();
        let resp = send(&backend, via(&proxy.url(), req)).await.unwrap();
        let (path, auth, peer) = fields(&resp.text().await.unwrap());
        assert_eq!((path.as_str(), auth.as_str()), ("/secure", "-"));
        assert!(proxy.upstream_addrs().contains(&peer));
    }
    let seen = proxy.requests();
    assert_eq!(
        seen.len(),
        1,
        "one tunnel, kept alive for the three requests"
    );
    assert_eq!(seen[0].method, "CONNECT");
    assert_eq!(seen[0].target, format!("localhost:{}", server.port()));
    assert_eq!(
        seen[0].header("proxy-authorization"),
        Some(basic_auth("alice", SECRET).as_str())
    );
    assert_eq!(proxy.tunnels(), 1);
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn h2c_prior_knowledge_goes_through_a_tunnel_not_absolute_form() {
    let server =
        TestServer::start(|req| Reply::text(format!("{:?} {}", req.version, req.uri.path())));
    let proxy = TestProxy::http().auth("alice", SECRET).start();
    let backend = Backend::builder().http2_prior_knowledge().build().unwrap();
    for _ in 0..2 {
        let resp = send(
            &backend,
            via(
                &proxy.url(),
                fastreq::get(server.url("/h2")).build().unwrap(),
            ),
        )
        .await
        .unwrap();
        assert_eq!(resp.text().await.unwrap(), "HTTP/2.0 /h2");
    }
    let seen = proxy.requests();
    assert_eq!(seen.len(), 1, "one tunnel, multiplexed");
    assert_eq!(seen[0].method, "CONNECT");
    assert_eq!(seen[0].target, server.addr().to_string());
    assert_eq!(proxy.forwarded(), 0);
}

#[tokio::test]
async fn default_ports_are_passed_explicitly_to_tunnels_and_socks() {
    let http = TestProxy::http().behavior(Behavior::Status(502)).start();
    let socks = TestProxy::socks().behavior(Behavior::Status(5)).start();
    let backend = backend_for(&[]);

    let err = send(
        &backend,
        via(
            &http.url(),
            fastreq::get("https://a.test/").build().unwrap(),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(http.requests()[0].target, "a.test:443");
    assert_eq!(err.kind(), ErrorKind::Proxy);
    assert!(
        err.to_string()
            .contains("refused the tunnel to a.test:443: 502 Bad Gateway"),
        "{err}"
    );

    // http:// through SOCKS: port 80, not hyper-util's 443.
    for (scheme, host, domain) in [
        ("socks5h", "a.test", true),
        ("socks5", "127.0.0.1", false),
        ("socks4", "127.0.0.1", false),
    ] {
        let err = send(
            &backend,
            via(
                &socks.url_with_scheme(scheme),
                fastreq::get("http://a.test/").build().unwrap(),
            ),
        )
        .await
        .unwrap_err();
        let t = socks.socks_targets().last().unwrap().clone();
        assert_eq!(
            (t.host.as_str(), t.port, t.is_domain),
            (host, 80, domain),
            "{scheme}"
        );
        assert_eq!(err.kind(), ErrorKind::Proxy, "{scheme}: {err}");
        assert!(err.to_string().contains("handshake failed"), "{err}");
    }
}

#[tokio::test]
async fn socks5_and_socks5h_carry_http_and_https_with_credentials() {
    let plain = echo_server();
    let tls = tls_echo_server();
    let proxy = TestProxy::socks().auth("bob", SECRET).start();
    let backend = backend_for(&[&tls]);

    for (scheme, domain) in [("socks5", false), ("socks5h", true)] {
        for server in [&plain, &tls] {
            let url = server.url_with_host("a.test", "/via-socks");
            let resp = send(
                &backend,
                via(
                    &proxy.url_with_scheme(scheme),
                    fastreq::get(&url).build().unwrap(),
                ),
            )
            .await
            .unwrap();
            assert_eq!(resp.status(), 200);
            let (_, auth, peer) = fields(&resp.text().await.unwrap());
            assert_eq!(auth, "-");
            assert!(proxy.upstream_addrs().contains(&peer), "{scheme} {url}");
            let t = proxy.socks_targets().last().unwrap().clone();
            assert_eq!(t.version, 5);
            assert_eq!(
                t.is_domain,
                domain,
                "{scheme}: name resolved {}",
                if domain { "by the proxy" } else { "locally" }
            );
            assert_eq!(t.host, if domain { "a.test" } else { "127.0.0.1" });
            assert_eq!(t.port, server.port());
        }
    }
    assert_eq!(proxy.tunnels(), 4);

    // A wrong password is the proxy's failure, and is never shown.
    let bad = format!("socks5://bob:wrong-{SECRET}@{}", proxy.addr());
    let err = send(
        &backend,
        via(&bad, fastreq::get(plain.url("/")).build().unwrap()),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Proxy);
    assert!(
        err.to_string().contains("credentials not accepted"),
        "{err}"
    );
    assert!(!all_text(&err).contains(SECRET));
    assert!(ProxyError::find(&err).is_some());
}

#[tokio::test]
async fn socks4_resolves_locally() {
    let server = echo_server();
    let proxy = TestProxy::socks().start();
    let backend = backend_for(&[]);
    let url = server.url_with_host("a.test", "/four");
    let resp = send(
        &backend,
        via(
            &proxy.url_with_scheme("socks4"),
            fastreq::get(&url).build().unwrap(),
        ),
    )
    .await
    .unwrap();
    let (uri, _, peer) = fields(&resp.text().await.unwrap());
    assert_eq!(uri, "/four");
    assert!(proxy.upstream_addrs().contains(&peer));
    let t = proxy.socks_targets()[0].clone();
    assert_eq!(
        (t.version, t.host.as_str(), t.is_domain),
        (4, "127.0.0.1", false)
    );
}

#[tokio::test]
async fn https_proxy_speaks_tls_to_the_proxy() {
    let plain = echo_server();
    let tls = tls_echo_server();
    let proxy = TestProxy::http().tls().auth("alice", SECRET).start();
    let backend = Backend::builder()
        .resolve("localhost", "127.0.0.1:0".parse().unwrap())
        .add_root_certificate(Certificate::from_der(proxy.cert_der()))
        .add_root_certificate(Certificate::from_der(tls.cert_der()))
        .build()
        .unwrap();
    assert!(proxy.url().starts_with("https://alice:"));

    let resp = send(
        &backend,
        via(&proxy.url(), fastreq::get(plain.url("/p")).build().unwrap()),
    )
    .await
    .unwrap();
    let (uri, auth, _) = fields(&resp.text().await.unwrap());
    assert_eq!((uri.as_str(), auth.as_str()), ("/p", "-"));
    assert_eq!(proxy.forwarded(), 1);

    // TLS to the target inside the tunnel inside TLS to the proxy.
    let resp = send(
        &backend,
        via(&proxy.url(), fastreq::get(tls.url("/s")).build().unwrap()),
    )
    .await
    .unwrap();
    let (path, auth, peer) = fields(&resp.text().await.unwrap());
    assert_eq!((path.as_str(), auth.as_str()), ("/s", "-"));
    assert!(proxy.upstream_addrs().contains(&peer));
    assert_eq!(proxy.tunnels(), 1);

    // A proxy certificate that is not trusted is the proxy's failure.
    let untrusting = backend_for(&[&tls]);
    let err = send(
        &untrusting,
        via(&proxy.url(), fastreq::get(tls.url("/s")).build().unwrap()),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Proxy, "{err}");
    assert!(!all_text(&err).contains(SECRET));
}

#[tokio::test]
async fn proxy_failures_are_proxy_errors_naming_the_redacted_proxy() {
    let plain = echo_server();
    let tls = tls_echo_server();
    let backend = Backend::builder()
        .add_root_certificate(Certificate::from_der(tls.cert_der()))
        .proxy_handshake_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let https_req = || fastreq::get(tls.url("/")).build().unwrap();

    // Nothing listens.
    let dead = format!("http://u:{SECRET}@{}", support::closed_port());
    let err = send(&backend, via(&dead, https_req())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Proxy);
    assert!(err.to_string().contains("could not connect"), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("http://***@{}", dead.rsplit('@').next().unwrap())),
        "{err}"
    );
    assert_eq!(
        ProxyError::find(&err).unwrap().proxy(),
        &Proxy::parse(&dead).unwrap()
    );
    let mut texts = vec![all_text(&err)];

    // CONNECT answered with an error status: recovered from the proxy's reply.
    let proxy = TestProxy::http().auth("u", SECRET).start();
    for (code, text) in [
        (407, "407 Proxy Authentication Required"),
        (403, "403 Forbidden"),
        (503, "503 Service Unavailable"),
    ] {
        proxy.set_behavior(Behavior::Status(code));
        let err = send(&backend, via(&proxy.url(), https_req()))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Proxy);
        assert!(err.to_string().contains(text), "{err}");
        texts.push(all_text(&err));
    }
    // Missing credentials: the proxy's own 407.
    proxy.set_behavior(Behavior::Normal);
    let no_creds = format!("http://{}", proxy.addr());
    let err = send(&backend, via(&no_creds, https_req()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("407"), "{err}");
    // ... and on the forward path the 407 response becomes the same error.
    let err = send(
        &backend,
        via(&no_creds, fastreq::get(plain.url("/")).build().unwrap()),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Proxy);
    assert!(err.to_string().contains("407"), "{err}");
    assert_eq!(plain.hits(), 0);

    // The proxy closes the connection at once.
    proxy.set_behavior(Behavior::Refuse);
    let err = send(&backend, via(&proxy.url(), https_req()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Proxy, "{err}");
    texts.push(all_text(&err));

    // The proxy hangs: the handshake timeout, counted against the proxy.
    proxy.set_behavior(Behavior::Hang);
    let socks = TestProxy::socks()
        .auth("u", SECRET)
        .behavior(Behavior::Hang)
        .start();
    for line in [proxy.url(), socks.url()] {
        let start = std::time::Instant::now();
        let err = send(&backend, via(&line, https_req())).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(
            err.to_string()
                .contains("handshake not finished within 300ms"),
            "{err}"
        );
        assert!(ProxyError::find(&err).is_some());
        assert!(start.elapsed() < Duration::from_secs(5));
        texts.push(all_text(&err));
    }
    for t in texts {
        assert!(!t.contains(SECRET), "{t}");
    }
    assert_eq!(tls.hits(), 0);
}

#[tokio::test]
async fn one_connection_pool_per_proxy() {
    let tls = tls_echo_server();
    let p1 = TestProxy::http().start();
    let p2 = TestProxy::http().start();
    let pool = ProxyPool::from_iter([p1.url(), p2.url()]).unwrap();
    let backend = backend_for(&[&tls]);
    let svc = ProxyRotationLayer::new(pool).layer(backend.clone());
    let mut peers = Vec::new();
    for _ in 0..6 {
        let resp = svc
            .clone()
            .oneshot(fastreq::get(tls.url("/")).build().unwrap())
            .await
            .unwrap();
        peers.push(fields(&resp.text().await.unwrap()).2);
    }
    // Each proxy carried every other request over its own kept-alive tunnel: a pool shared
    // across proxies would have reused the first tunnel for all six.
    assert_eq!((p1.tunnels(), p2.tunnels()), (1, 1));
    for (i, peer) in peers.iter().enumerate() {
        let p = if i % 2 == 0 { &p1 } else { &p2 };
        assert!(p.upstream_addrs().contains(peer), "request {i}");
    }
    // A direct request opens its own connection, through no proxy.
    let resp = send(&backend, fastreq::get(tls.url("/")).build().unwrap())
        .await
        .unwrap();
    assert!(resp.extensions().get::<SelectedProxy>().is_none());
    assert_eq!((p1.connections(), p2.connections()), (1, 1));
    assert_eq!(tls.connections(), 3);
}

#[tokio::test]
async fn the_layer_learns_from_backend_failures() {
    let server = echo_server();
    let good = TestProxy::http().start();
    let dead = format!("http://{}", support::closed_port());
    let pool = ProxyPool::from_iter([dead.clone(), good.url()]).unwrap();
    let svc = ProxyRotationLayer::new(pool.clone()).layer(backend_for(&[]));

    let err = svc
        .clone()
        .oneshot(fastreq::get(server.url("/")).build().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Proxy);
    let dead = Proxy::parse(&dead).unwrap();
    assert!(pool.health(&dead).unwrap().cooling_down_for.is_some());
    for _ in 0..4 {
        let resp = svc
            .clone()
            .oneshot(fastreq::get(server.url("/")).build().unwrap())
            .await
            .unwrap();
        assert_eq!(
            resp.extensions()
                .get::<SelectedProxy>()
                .unwrap()
                .0
                .to_string(),
            good.url()
        );
    }
    assert_eq!(good.forwarded(), 4);
    assert_eq!(server.hits(), 4);
}

#[tokio::test]
async fn a_retry_takes_another_proxy() {
    let server = echo_server();
    let good = TestProxy::http().start();
    let dead = format!("http://{}", support::closed_port());
    let pool = ProxyPool::from_iter([dead, good.url()]).unwrap();
    let retry = fastreq::retry::RetryLayer::builder()
        .initial_backoff(Duration::from_millis(1))
        .build()
        .unwrap();
    let svc = tower::ServiceBuilder::new()
        .layer(retry)
        .layer(ProxyRotationLayer::new(pool))
        .service(backend_for(&[]));
    let resp = svc
        .oneshot(fastreq::get(server.url("/r")).build().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.attempts(), 2);
    assert_eq!(good.forwarded(), 1);
}

#[tokio::test]
async fn sticky_per_host_through_loopback_proxies() {
    let server = echo_server();
    let proxies: Vec<TestProxy> = (0..3).map(|_| TestProxy::http().start()).collect();
    let pool = ProxyPool::from_iter(proxies.iter().map(|p| p.url())).unwrap();
    let svc = ProxyRotationLayer::new(pool)
        .strategy(Strategy::StickyPerHost)
        .layer(backend_for(&[]));
    for i in 0..12 {
        let host = if i % 2 == 0 { "a.test" } else { "b.test" };
        let url = server.url_with_host(host, &format!("/{i}"));
        svc.clone()
            .oneshot(fastreq::get(&url).build().unwrap())
            .await
            .unwrap();
    }
    for host in ["a.test", "b.test"] {
        let carrying: Vec<usize> = proxies
            .iter()
            .map(|p| {
                p.requests()
                    .iter()
                    .filter(|r| r.target.contains(host))
                    .count()
            })
            .collect();
        assert_eq!(carrying.iter().sum::<usize>(), 6, "{host}: {carrying:?}");
        assert!(
            carrying.contains(&6),
            "{host} stayed on one proxy: {carrying:?}"
        );
    }
}

#[tokio::test]
async fn validate_reports_working_and_dead_proxies_and_removes_the_dead() {
    let server = echo_server();
    let http = TestProxy::http().start();
    let socks = TestProxy::socks().start();
    let denying = TestProxy::http().behavior(Behavior::Status(407)).start();
    let dead = format!("socks5://u:{SECRET}@{}", support::closed_port());
    let pool =
        ProxyPool::from_iter([http.url(), socks.url(), denying.url(), dead.clone()]).unwrap();
    let backend = backend_for(&[]);

    let report = pool.validate(backend, &server.url("/probe")).await.unwrap();
    let working: Vec<String> = report.working().map(|p| p.to_string()).collect();
    assert_eq!(working, vec![http.url(), socks.url()]);
    let dead_ones: Vec<(String, ErrorKind)> = report
        .dead()
        .map(|(p, e)| (p.to_string(), e.kind()))
        .collect();
    assert_eq!(dead_ones.len(), 2);
    assert!(
        dead_ones.iter().all(|(_, k)| *k == ErrorKind::Proxy),
        "{dead_ones:?}"
    );
    assert!(!format!("{report:?}").contains(SECRET));
    for o in report.outcomes() {
        if let Ok(p) = &o.result {
            assert_eq!(p.status, 200);
        }
    }
    // Dead ones are cooling down; removing them leaves the two that work.
    assert_eq!(pool.available().len(), 2);
    assert_eq!(pool.remove_dead(&report), 2);
    assert_eq!(
        pool.proxies()
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>(),
        working
    );
    assert_eq!(server.hits(), 2);
}

#[test]
fn credentials_are_absent_from_every_debug_and_display() {
    let lines = format!("http://alice:{SECRET}@10.0.0.1:3128\n10.0.0.2:80:bob:{SECRET}\nsocks5h://carol:{SECRET}@h.test:1080");
    let pool = ProxyPool::from_lines(&lines).unwrap();
    let layer = ProxyRotationLayer::new(pool.clone()).strategy(Strategy::Random);
    let svc = layer.clone().layer(Mock::default());
    let mut texts = vec![
        format!("{pool:?}"),
        format!("{layer:?}"),
        format!("{:?}", svc.get_ref().used()),
    ];
    for p in pool.proxies() {
        texts.push(format!(
            "{p} {p:?} {:?} {:?}",
            SelectedProxy(p.clone()),
            ProxyOverride(Some(p.clone()))
        ));
        texts.push(format!("{:?}", pool.health(&p)));
        let e = ProxyError::new(&p, ErrorKind::Proxy, "x");
        texts.push(format!("{e} {e:?}"));
        let e = e.into_error();
        texts.push(all_text(&e));
    }
    for t in &texts {
        assert!(!t.contains(SECRET), "{t}");
        assert!(!t.contains("alice") && !t.contains("carol"), "{t}");
    }
    assert!(
        texts[0].contains("http://***@10.0.0.1:3128"),
        "{}",
        texts[0]
    );
}

// ---------------------------------------------------------------------------------------
// Real proxy servers (scripts/real_proxies.sh starts tinyproxy and dante)
// ---------------------------------------------------------------------------------------

fn real(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("set {var} (scripts/real_proxies.sh does)"))
}

fn via_server() -> TestServer {
    TestServer::start(|req| {
        Reply::text(format!(
            "{}|{}|{}",
            req.uri,
            req.header("via").unwrap_or("-"),
            req.peer
        ))
    })
}

#[tokio::test]
#[ignore = "needs tinyproxy: run scripts/real_proxies.sh"]
async fn real_tinyproxy_forwards_http_and_tunnels_https() {
    let line = format!("http://{}", real("FASTREQ_REAL_HTTP_PROXY"));
    let server = via_server();
    let tls = tls_echo_server();
    let backend = backend_for(&[&tls]);

    let resp = send(
        &backend,
        via(
            &line,
            fastreq::get(server.url("/plain?q=1")).build().unwrap(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let (uri, via_header, _) = fields(&resp.text().await.unwrap());
    assert_eq!(uri, "/plain?q=1");
    assert!(
        via_header.contains("tinyproxy"),
        "the request went through tinyproxy: {via_header}"
    );

    for i in 0..3 {
        let resp = send(
            &backend,
            via(
                &line,
                fastreq::get(tls.url(&format!("/tls{i}"))).build().unwrap(),
            ),
        )
        .await
        .unwrap();
        let (path, auth, _) = fields(&resp.text().await.unwrap());
        assert_eq!((path, auth), (format!("/tls{i}"), "-".to_owned()));
    }
    assert_eq!(tls.hits(), 3);
}

#[tokio::test]
#[ignore = "needs dante: run scripts/real_proxies.sh"]
async fn real_dante_socks5_and_socks5h() {
    let addr = real("FASTREQ_REAL_SOCKS5");
    let plain = echo_server();
    let tls = tls_echo_server();
    let backend = backend_for(&[&tls]);
    for scheme in ["socks5", "socks5h"] {
        let line = format!("{scheme}://{addr}");
        for server in [&plain, &tls] {
            // socks5h: dante resolves `localhost` itself.
            let url = server.url("/socks");
            let resp = send(&backend, via(&line, fastreq::get(&url).build().unwrap()))
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{scheme} {url}");
            let (path, _, _) = fields(&resp.text().await.unwrap());
            assert!(path.ends_with("/socks"), "{path}");
        }
    }
    assert_eq!((plain.hits(), tls.hits()), (2, 2));
}

#[tokio::test]
#[ignore = "needs tinyproxy and dante: run scripts/real_proxies.sh"]
async fn real_rotation_validation_and_cooldown_over_both() {
    let http = format!("http://{}", real("FASTREQ_REAL_HTTP_PROXY"));
    let socks = format!("socks5://{}", real("FASTREQ_REAL_SOCKS5"));
    let dead = format!("http://{}", support::closed_port());
    let server = via_server();
    let backend = backend_for(&[]);
    let pool = ProxyPool::from_iter([http.clone(), socks.clone(), dead.clone()]).unwrap();

    let report = pool
        .validate(backend.clone(), &server.url("/probe"))
        .await
        .unwrap();
    let working: Vec<String> = report.working().map(|p| p.to_string()).collect();
    assert_eq!(working, vec![http.clone(), socks.clone()]);
    assert_eq!(report.dead().count(), 1);
    assert!(pool
        .health(&Proxy::parse(&dead).unwrap())
        .unwrap()
        .cooling_down_for
        .is_some());

    let svc = ProxyRotationLayer::new(pool.clone()).layer(backend);
    let mut through_tinyproxy = 0;
    for i in 0..6 {
        let resp = svc
            .clone()
            .oneshot(fastreq::get(server.url(&format!("/{i}"))).build().unwrap())
            .await
            .unwrap();
        let used = resp
            .extensions()
            .get::<SelectedProxy>()
            .unwrap()
            .0
            .to_string();
        let (_, via_header, _) = fields(&resp.text().await.unwrap());
        assert_eq!(
            via_header.contains("tinyproxy"),
            used == http,
            "{used}: {via_header}"
        );
        through_tinyproxy += usize::from(used == http);
    }
    assert_eq!(
        through_tinyproxy, 3,
        "round robin over the two live proxies"
    );
}
