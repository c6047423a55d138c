//! The redirect layer over real loopback HTTP(S): two servers (`a.test`, `b.test`, so
//! origins differ by host and port) and a TLS server, through the hyper backend.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fastreq::ext::FinalUrl;
use fastreq::redirect::{FollowRedirect, FollowRedirectLayer, RedirectCount};
use fastreq::{Backend, Body, Certificate, ErrorKind, ResponseBody, ResponseExt};
use http::{Method, Request, Response};
use support::{Reply, TestRequest, TestServer};
use tower::{Layer, ServiceExt};

const T: Duration = Duration::from_secs(10);

type Log = Arc<Mutex<Vec<TestRequest>>>;

/// The handler of every test server:
/// - `?to=URL[&status=N]`: redirect (default 302) to `URL`;
/// - `/count/N`: 302 to `/count/N-1`, `/count/0` answers 200;
/// - `/loop`: 302 to itself;
/// - anything else: 200 with `METHOD PATH BODY`.
fn handler(log: Log) -> impl Fn(TestRequest) -> Reply + Send + Sync + 'static {
    move |req: TestRequest| {
        log.lock().unwrap().push(req.clone());
        if let Some(to) = req.query_param("to") {
            let status = req
                .query_param("status")
                .map_or(302, |s| s.parse::<u16>().unwrap());
            return Reply::status(status)
                .header("location", to)
                .body("redirect body that nobody reads");
        }
        if let Some(n) = req.path().strip_prefix("/count/") {
            let n: u32 = n.parse().unwrap();
            return if n == 0 {
                Reply::text("done")
            } else {
                Reply::status(302).header("location", format!("/count/{}", n - 1))
            };
        }
        if req.path() == "/loop" {
            return Reply::status(302).header("location", "/loop");
        }
        Reply::text(format!("{} {} {}", req.method, req.path(), req.text()))
    }
}

struct Server {
    server: TestServer,
    log: Log,
}

impl Server {
    fn plain() -> Server {
        let log = Log::default();
        let server = TestServer::start(handler(log.clone()));
        Server { server, log }
    }

    fn tls() -> Server {
        let log = Log::default();
        let server = TestServer::builder().tls().start(handler(log.clone()));
        Server { server, log }
    }

    /// `scheme://host:PORT/path`.
    fn url(&self, host: &str, path: &str) -> String {
        self.server.url_with_host(host, path)
    }

    fn seen(&self) -> Vec<TestRequest> {
        self.log.lock().unwrap().clone()
    }
}

/// `?to=` with the target percent-encoded.
fn to(target: &str) -> String {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("to", target)
        .finish();
    format!("?{q}")
}

fn to_status(target: &str, status: u16) -> String {
    format!("{}&status={status}", to(target))
}

/// A backend resolving `a.test` and `b.test` to 127.0.0.1 (the port comes from the URL)
/// and trusting the certificates of the given TLS servers.
fn backend(servers: &[&Server]) -> Backend {
    let loopback = "127.0.0.1:0".parse().unwrap();
    let mut b = Backend::builder()
        .tls_built_in_root_certs(false)
        .resolve("a.test", loopback)
        .resolve("b.test", loopback);
    for s in servers {
        if s.server.is_tls() {
            b = b.add_root_certificate(Certificate::from_der(s.server.cert_der()));
        }
    }
    b.build().unwrap()
}

type Client = FollowRedirect<Backend>;

fn client(backend: Backend) -> Client {
    FollowRedirectLayer::new().layer(backend)
}

async fn send<S>(svc: S, req: Request<Body>) -> Result<Response<ResponseBody>, fastreq::Error>
where
    S: tower::Service<Request<Body>, Response = Response<ResponseBody>, Error = fastreq::Error>,
{
    tokio::time::timeout(T, svc.oneshot(req))
        .await
        .expect("request finished in time")
}

const CREDENTIALS: [&str; 5] = [
    "authorization",
    "cookie",
    "cookie2",
    "proxy-authorization",
    "x-api-key",
];

fn with_credentials(url: &str) -> Request<Body> {
    fastreq::get(url)
        .bearer_auth("s3cret")
        .header("cookie", "session=abc")
        .header("cookie2", "$Version=1")
        .header("proxy-authorization", "Basic cHJveHk=")
        .header("x-api-key", "k")
        .header("x-trace", "kept")
        .build()
        .unwrap()
}

fn strict_client(backend: Backend) -> FollowRedirect<Backend> {
    FollowRedirectLayer::builder()
        .sensitive_header("x-api-key")
        .build()
        .unwrap()
        .layer(backend)
}

fn assert_no_credentials(req: &TestRequest) {
    for name in CREDENTIALS {
        assert!(
            !req.headers.contains_key(name),
            "{} must not get {name}",
            req.uri
        );
    }
    assert_eq!(req.header("x-trace"), Some("kept"));
}

fn assert_credentials(req: &TestRequest) {
    for name in CREDENTIALS {
        assert!(
            req.headers.contains_key(name),
            "{} must get {name}",
            req.uri
        );
    }
}

/// The regression test: A → B/1 → B/2 must not send credentials to B/2 (reqwest 0.13,
/// tower-http 0.6 and Go before CVE-2024-45336 did, because B/1 → B/2 is same-origin).
#[tokio::test]
async fn credentials_stay_stripped_a_to_b1_to_b2() {
    let a = Server::plain();
    let b = Server::plain();
    let backend = backend(&[&a, &b]);
    let b1 = b.url("b.test", &format!("/1{}", to("/2")));
    let start = a.url("a.test", &format!("/start{}", to(&b1)));

    let resp = send(strict_client(backend), with_credentials(&start))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.final_url().unwrap().to_string(), b.url("b.test", "/2"));
    assert_eq!(
        resp.extensions().get::<RedirectCount>(),
        Some(&RedirectCount(2))
    );
    assert_eq!(resp.text().await.unwrap(), "GET /2 ");

    let seen_a = a.seen();
    assert_eq!(seen_a.len(), 1);
    assert_credentials(&seen_a[0]);
    let seen_b = b.seen();
    assert_eq!(seen_b.len(), 2);
    assert_eq!(seen_b[0].path(), "/1");
    assert_eq!(seen_b[1].path(), "/2");
    for req in &seen_b {
        assert_no_credentials(req);
        assert_eq!(
            req.header("host").unwrap(),
            format!("b.test:{}", b.server.port())
        );
    }
}

#[tokio::test]
async fn credentials_stay_stripped_a_to_b_to_a() {
    let a = Server::plain();
    let b = Server::plain();
    let backend = backend(&[&a, &b]);
    let back = a.url("a.test", "/back");
    let bounce = b.url("b.test", &format!("/bounce{}", to(&back)));
    let start = a.url("a.test", &format!("/start{}", to(&bounce)));

    let resp = send(strict_client(backend), with_credentials(&start))
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "GET /back ");
    let seen_a = a.seen();
    assert_eq!(seen_a.len(), 2);
    assert_credentials(&seen_a[0]);
    assert_eq!(seen_a[1].path(), "/back");
    assert_no_credentials(&seen_a[1]);
    assert_no_credentials(&b.seen()[0]);
}

#[tokio::test]
async fn same_origin_keeps_credentials_port_change_strips_them() {
    let a = Server::plain();
    let a2 = Server::plain();
    // Same host name, another port.
    let backend = backend(&[]);
    let other_port = a2.url("a.test", "/other");
    let next = format!("/next{}", to(&other_port));
    let start = a.url("a.test", &format!("/start{}", to(&next)));
    // a.test:PA/start -> a.test:PA/next (same origin) -> a.test:PB/other (port change).
    let resp = send(strict_client(backend.clone()), with_credentials(&start))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen_a = a.seen();
    assert_eq!(seen_a.len(), 2);
    assert_credentials(&seen_a[0]);
    assert_credentials(&seen_a[1]);
    assert_no_credentials(&a2.seen()[0]);

    // The same with IP literals: 127.0.0.1:PA -> 127.0.0.1:PB.
    let start = a.server.url(&format!("/start{}", to(&a2.server.url("/p"))));
    send(strict_client(backend), with_credentials(&start))
        .await
        .unwrap();
    assert_credentials(&a.seen()[2]);
    let seen = a2.seen();
    assert_eq!(seen[1].path(), "/p");
    assert_no_credentials(&seen[1]);
}

#[tokio::test]
async fn http_to_https_same_host_is_cross_origin() {
    let plain = Server::plain();
    let secure = Server::tls();
    let backend_a = backend(&[&plain, &secure]);
    let target = secure.url("a.test", "/secure");
    assert!(target.starts_with("https://a.test:"));
    let start = plain.url("a.test", &format!("/start{}", to(&target)));
    let resp = send(strict_client(backend_a.clone()), with_credentials(&start))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.final_url().unwrap().to_string(), target);
    assert_eq!(resp.text().await.unwrap(), "GET /secure ");
    assert_credentials(&plain.seen()[0]);
    assert_no_credentials(&secure.seen()[0]);

    // https -> http is refused by default: the plain server never sees the second hop.
    let plain_target = plain.url("a.test", "/plain");
    let start = secure.url("a.test", &format!("/down{}", to(&plain_target)));
    let err = send(client(backend_a.clone()), with_credentials(&start))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RedirectRejected);
    assert!(err.to_string().contains("https to http"), "{err}");
    assert!(err.url().unwrap().starts_with("https://a.test:"));
    assert_eq!(plain.seen().len(), 1);

    // Opt-in: followed, and credentials are stripped (scheme change = origin change).
    let allow = FollowRedirectLayer::builder()
        .https_downgrade(true)
        .sensitive_header("x-api-key")
        .build()
        .unwrap()
        .layer(backend_a);
    let resp = send(allow, with_credentials(&start)).await.unwrap();
    assert_eq!(resp.final_url().unwrap().to_string(), plain_target);
    let seen = plain.seen();
    assert_eq!(seen.len(), 2);
    assert_no_credentials(&seen[1]);
}

#[tokio::test]
async fn loops_end_with_too_many_redirects() {
    let a = Server::plain();
    let b = Server::plain();
    let backend = backend(&[&a, &b]);

    let err = send(
        client(backend.clone()),
        fastreq::get(a.url("a.test", "/loop")).build().unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooManyRedirects);
    assert!(err.to_string().contains("10 redirects"), "{err}");
    assert_eq!(err.url(), Some(a.url("a.test", "/loop").as_str()));
    assert_eq!(a.server.hits(), 11);

    // A ping-pong between two hosts (a.test <-> b.test), with a counter so the URLs keep
    // changing but the chain never ends.
    let n = Arc::new(AtomicU32::new(0));
    let n2 = n.clone();
    let pp = TestServer::start(move |req| {
        let i = n2.fetch_add(1, Ordering::SeqCst);
        let host = req.header("host").unwrap().to_string();
        let (name, port) = host.split_once(':').unwrap();
        let other = if name == "a.test" { "b.test" } else { "a.test" };
        Reply::status(307).header(
            "location",
            format!("http://{other}:{port}/pp?i={i}&token=secret"),
        )
    });
    let req = fastreq::get(pp.url_with_host("a.test", "/pp?token=secret"))
        .build()
        .unwrap();
    let err = send(client(backend), req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooManyRedirects);
    assert!(!err.to_string().contains("secret"));
    assert_eq!(n.load(Ordering::SeqCst), 11);
}

#[tokio::test]
async fn max_hops_is_exact() {
    let a = Server::plain();
    let backend = backend(&[&a]);
    let resp = send(
        client(backend.clone()),
        fastreq::get(a.url("a.test", "/count/10")).build().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.extensions().get::<RedirectCount>(),
        Some(&RedirectCount(10))
    );
    assert_eq!(resp.text().await.unwrap(), "done");
    assert_eq!(a.server.hits(), 11);

    a.server.reset_stats();
    let err = send(
        client(backend.clone()),
        fastreq::get(a.url("a.test", "/count/11")).build().unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooManyRedirects);
    assert_eq!(err.url(), Some(a.url("a.test", "/count/1").as_str()));
    assert_eq!(a.server.hits(), 11);

    // Configured limit.
    let three = FollowRedirectLayer::builder()
        .max_redirects(3)
        .build()
        .unwrap();
    let resp = send(
        three.layer(backend.clone()),
        fastreq::get(a.url("a.test", "/count/3")).build().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let err = send(
        three.layer(backend),
        fastreq::get(a.url("a.test", "/count/4")).build().unwrap(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("after 3 redirects"), "{err}");
}

#[tokio::test]
async fn non_http_targets_are_rejected() {
    let a = Server::plain();
    let backend = backend(&[&a]);
    for target in [
        "file:///etc/passwd",
        "ftp://a.test/x",
        "data:text/plain,hi",
        "http://[::1",
    ] {
        a.server.reset_stats();
        let url = a.url("a.test", &format!("/start{}", to(target)));
        let err = send(client(backend.clone()), fastreq::get(&url).build().unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RedirectRejected, "{target}: {err}");
        assert!(err.is_redirect());
        assert_eq!(a.server.hits(), 1, "{target}");
    }
    // The opt-out gives the 302 back unchanged.
    let url = a.url("a.test", &format!("/start{}", to("file:///etc/passwd")));
    let resp = send(
        client(backend),
        fastreq::get(&url).no_redirects().build().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], "file:///etc/passwd");
    assert_eq!(resp.final_url().unwrap().to_string(), url);
    assert_eq!(RedirectCount::of(&resp), 0);
    assert!(resp.extensions().get::<RedirectCount>().is_none());
}

#[tokio::test]
async fn methods_and_bodies_per_status() {
    let a = Server::plain();
    let backend = backend(&[&a]);
    // (status, method sent, expected method and body on the next hop)
    let cases: [(u16, Method, Method, &str); 8] = [
        (303, Method::POST, Method::GET, ""),
        (303, Method::PUT, Method::GET, ""),
        (301, Method::POST, Method::GET, ""),
        (302, Method::POST, Method::GET, ""),
        (302, Method::PUT, Method::PUT, "payload"),
        (307, Method::POST, Method::POST, "payload"),
        (308, Method::POST, Method::POST, "payload"),
        (308, Method::PUT, Method::PUT, "payload"),
    ];
    for (status, method, next_method, next_body) in cases {
        let url = a.url("a.test", &format!("/form{}", to_status("/next", status)));
        let req = fastreq::request(method.clone(), &url)
            .header("content-type", "text/plain")
            .body("payload")
            .build()
            .unwrap();
        let resp = send(client(backend.clone()), req).await.unwrap();
        assert_eq!(
            resp.text().await.unwrap(),
            format!("{next_method} /next {next_body}")
        );
        let seen = a.seen();
        let (first, next) = (&seen[seen.len() - 2], &seen[seen.len() - 1]);
        assert_eq!(first.method, method);
        assert_eq!(first.text(), "payload");
        assert_eq!(next.method, next_method, "{status} after {method}");
        assert_eq!(next.text(), next_body, "{status} after {method}");
        if next_body.is_empty() {
            assert!(next.header("content-type").is_none());
            assert!(next.header("content-length").is_none_or(|l| l == "0"));
        } else {
            assert_eq!(next.header("content-type"), Some("text/plain"));
        }
    }
}

#[tokio::test]
async fn streamed_body_on_307_is_not_replayable() {
    let a = Server::plain();
    let backend = backend(&[&a]);
    let url = a.url("a.test", &format!("/upload{}", to_status("/next", 307)));
    let chunks = futures::stream::iter(vec![
        Ok::<_, std::io::Error>(Bytes::from("part1")),
        Ok(Bytes::from("part2")),
    ]);
    let req = fastreq::post(&url)
        .body(Body::wrap_stream(chunks))
        .build()
        .unwrap();
    let err = send(client(backend.clone()), req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BodyNotReplayable);
    assert!(err.to_string().contains("307"), "{err}");
    let seen = a.seen();
    assert_eq!(seen.len(), 1, "the redirect is not followed");
    assert_eq!(seen[0].text(), "part1part2");

    // A streamed body on a 303 is fine: the next hop is a GET without body.
    let url = a.url("a.test", &format!("/upload{}", to_status("/next", 303)));
    let chunks = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from("x"))]);
    let req = fastreq::post(&url)
        .body(Body::wrap_stream(chunks))
        .build()
        .unwrap();
    let resp = send(client(backend), req).await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "GET /next ");
}

#[tokio::test]
async fn relative_locations() {
    let a = Server::plain();
    let backend = backend(&[&a]);
    let url = a.url("a.test", &format!("/dir/page{}", to("../other?x=1#frag")));
    let resp = send(client(backend.clone()), fastreq::get(&url).build().unwrap())
        .await
        .unwrap();
    assert_eq!(
        resp.final_url().unwrap().to_string(),
        a.url("a.test", "/other?x=1")
    );
    assert_eq!(resp.text().await.unwrap(), "GET /other ");

    let url = a.url("a.test", &format!("/dir/page{}", to("sibling")));
    let resp = send(client(backend), fastreq::get(&url).build().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "GET /dir/sibling ");
}

#[derive(Clone, Debug, PartialEq)]
struct Mark(u64);

#[tokio::test]
async fn extensions_reach_every_hop() {
    let a = Server::plain();
    let b = Server::plain();
    let backend = backend(&[&a, &b]);
    let b1 = b.url("b.test", &format!("/1{}", to_status("/2", 307)));
    let start = a.url("a.test", &format!("/start{}", to_status(&b1, 303)));

    let hops = Arc::new(Mutex::new(Vec::new()));
    let hops2 = hops.clone();
    // An inner service between the layer and the backend records what each hop carries.
    let inner = tower::ServiceBuilder::new()
        .map_request(move |req: Request<Body>| {
            hops2.lock().unwrap().push((
                req.uri().to_string(),
                req.extensions().get::<Mark>().cloned(),
                req.extensions()
                    .get::<fastreq::ext::RequestTimeout>()
                    .copied(),
            ));
            req
        })
        .service(backend);
    let req = fastreq::post(&start)
        .body("x")
        .extension(Mark(42))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let resp = send(FollowRedirectLayer::new().layer(inner), req)
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "GET /2 ");
    let hops = hops.lock().unwrap().clone();
    assert_eq!(hops.len(), 3);
    for (uri, mark, timeout) in hops {
        assert_eq!(mark, Some(Mark(42)), "{uri}");
        assert_eq!(timeout.map(|t| t.0), Some(Duration::from_secs(5)), "{uri}");
    }
}

#[tokio::test]
async fn final_url_is_recorded() {
    let a = Server::plain();
    let b = Server::plain();
    let backend = backend(&[&a, &b]);
    let target = b.url("b.test", "/landing?q=1");
    let start = a.url("a.test", &format!("/start{}", to(&target)));
    let resp = send(
        client(backend.clone()),
        fastreq::get(&start).build().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        resp.extensions().get::<FinalUrl>().map(|u| u.0.to_string()),
        Some(target.clone())
    );
    assert_eq!(
        resp.extensions().get::<RedirectCount>(),
        Some(&RedirectCount(1))
    );
    assert_eq!(b.seen()[0].query(), Some("q=1"));
}
