//! The cookie layer over the real backend and a local server (loopback only; the names
//! `a.test`, `sub.a.test`, `b.test`, … resolve to the server through the backend's
//! resolver override).

#![cfg(feature = "cookies")]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use fastreq::cookies::{CookieJar, CookieLayer, Cookies};
use fastreq::{Backend, Body, Certificate, ResponseBody, ResponseExt};
use http::header::COOKIE;
use http::{Request, Response, StatusCode};
use support::{Reply, TestRequest, TestServer};
use tower::{Layer, ServiceExt};

/// Upper bound for each exchange in real time, so no test can hang.
const LIMIT: Duration = Duration::from_secs(20);

const NAMES: [&str; 6] = [
    "a.test",
    "sub.a.test",
    "b.test",
    "shop.co.uk",
    "me.github.io",
    "shop.com",
];

/// Echoes the request's `Cookie` header as the body; `?set=…` (repeatable) becomes
/// `Set-Cookie`, `?status=…` the status and `?location=…` a `Location` header.
fn handler(req: TestRequest) -> Reply {
    let mut reply = Reply::text(req.header("cookie").unwrap_or("").to_owned());
    let query = req.query().unwrap_or("").to_owned();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "set" => reply = reply.header("set-cookie", &*v),
            "status" => reply = reply.with_status(v.parse().unwrap()),
            "location" => reply = reply.header("location", &*v),
            _ => {}
        }
    }
    reply
}

fn backend(addr: SocketAddr) -> Backend {
    NAMES
        .iter()
        .fold(Backend::builder(), |b, name| b.resolve(name, addr))
        .build()
        .unwrap()
}

struct Fixture {
    server: TestServer,
    jar: CookieJar,
    svc: Cookies<Backend>,
}

impl Fixture {
    fn new() -> Self {
        Fixture::with_jar(CookieJar::new())
    }

    fn with_jar(jar: CookieJar) -> Self {
        let server = TestServer::start(handler);
        let svc = CookieLayer::new(jar.clone()).layer(backend(server.addr()));
        Fixture { server, jar, svc }
    }

    /// `http://{host}:{port}{path}` with one `set` parameter per cookie.
    fn url(&self, host: &str, path: &str, set: &[&str]) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for s in set {
            q.append_pair("set", s);
        }
        let q = q.finish();
        let sep = if q.is_empty() { "" } else { "?" };
        format!("{}{sep}{q}", self.server.url_with_host(host, path))
    }

    /// Sends a GET; returns the status and the `Cookie` header the server received.
    async fn get(&self, url: &str) -> (StatusCode, String) {
        exchange(&self.svc, url).await
    }

    async fn sent_to(&self, host: &str, path: &str) -> String {
        self.get(&self.url(host, path, &[])).await.1
    }
}

async fn exchange(svc: &Cookies<Backend>, url: &str) -> (StatusCode, String) {
    let req = fastreq::get(url).build().unwrap();
    let resp = tokio::time::timeout(LIMIT, svc.clone().oneshot(req))
        .await
        .expect("exchange within the limit")
        .unwrap();
    let status = resp.status();
    (status, resp.text().await.unwrap())
}

/// The cookies of a `Cookie` header, sorted.
fn sorted(header: &str) -> Vec<&str> {
    let mut v: Vec<&str> = header.split("; ").filter(|s| !s.is_empty()).collect();
    v.sort_unstable();
    v
}

#[tokio::test]
async fn round_trip_set_then_sent() {
    let f = Fixture::new();
    let (status, sent) = f.get(&f.url("a.test", "/login", &["sid=abc123"])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sent, "", "nothing to send before the first Set-Cookie");
    assert_eq!(f.jar.len(), 1);
    assert_eq!(f.sent_to("a.test", "/me").await, "sid=abc123");
    // A new value replaces the old one.
    f.get(&f.url("a.test", "/", &["sid=def456"])).await;
    assert_eq!(f.sent_to("a.test", "/me").await, "sid=def456");
    assert_eq!(f.jar.len(), 1);
}

#[tokio::test]
async fn several_set_cookie_in_one_response() {
    let f = Fixture::new();
    f.get(&f.url(
        "a.test",
        "/",
        &["a=1", "b=2; Path=/", "c=3; HttpOnly", "d=4; Max-Age=600"],
    ))
    .await;
    assert_eq!(f.jar.len(), 4);
    assert_eq!(
        sorted(&f.sent_to("a.test", "/x").await),
        ["a=1", "b=2", "c=3", "d=4"]
    );
}

#[tokio::test]
async fn domain_cookies_go_to_subdomains_and_not_elsewhere() {
    let f = Fixture::new();
    f.get(&f.url(
        "sub.a.test",
        "/",
        &["d=1; Domain=a.test", "e=2; Domain=.a.test"],
    ))
    .await;
    assert_eq!(sorted(&f.sent_to("a.test", "/").await), ["d=1", "e=2"]);
    assert_eq!(sorted(&f.sent_to("sub.a.test", "/").await), ["d=1", "e=2"]);
    assert_eq!(f.sent_to("b.test", "/").await, "");
    // A domain the host is not inside of is refused.
    f.get(&f.url(
        "a.test",
        "/",
        &["x=1; Domain=b.test", "y=1; Domain=sub.a.test"],
    ))
    .await;
    assert_eq!(f.sent_to("b.test", "/").await, "");
    assert_eq!(f.jar.len(), 2);
}

#[tokio::test]
async fn host_only_cookies_are_not_sent_to_subdomains() {
    let f = Fixture::new();
    f.get(&f.url("a.test", "/", &["h=1"])).await;
    assert_eq!(f.sent_to("a.test", "/").await, "h=1");
    assert_eq!(f.sent_to("sub.a.test", "/").await, "");
    assert!(f.jar.cookies()[0].host_only());
}

#[tokio::test]
async fn path_matching() {
    let f = Fixture::new();
    f.get(&f.url("a.test", "/", &["p=1; Path=/app", "q=2; Path=/app/admin/"]))
        .await;
    // Default path: the directory of the request path.
    f.get(&f.url("a.test", "/docs/page", &["r=3"])).await;
    assert_eq!(f.sent_to("a.test", "/app").await, "p=1");
    assert_eq!(f.sent_to("a.test", "/app/admin/users").await, "q=2; p=1");
    assert_eq!(f.sent_to("a.test", "/application").await, "");
    assert_eq!(f.sent_to("a.test", "/other").await, "");
    assert_eq!(f.sent_to("a.test", "/docs/other").await, "r=3");
    assert_eq!(f.sent_to("a.test", "/").await, "");
}

#[tokio::test]
async fn secure_cookies_are_not_sent_over_http() {
    let f = Fixture::new();
    // Set over http: refused (a Secure cookie needs a secure origin).
    f.get(&f.url("a.test", "/", &["s=1; Secure", "plain=1"]))
        .await;
    assert_eq!(f.jar.len(), 1);
    // Seeded for https: kept, but not sent over http.
    f.jar
        .add_cookie_str("s=2; Secure; Domain=a.test", "https://a.test/")
        .unwrap();
    assert_eq!(f.sent_to("a.test", "/").await, "plain=1");
    assert_eq!(f.jar.len(), 2);

    // Over https (a TLS server valid for a.test): sent.
    let tls = TestServer::builder().tls().start(handler);
    let backend = NAMES
        .iter()
        .fold(Backend::builder(), |b, n| b.resolve(n, tls.addr()))
        .add_root_certificate(Certificate::from_der(tls.cert_der()))
        .build()
        .unwrap();
    let svc = CookieLayer::new(f.jar.clone()).layer(backend);
    let (_, sent) = exchange(&svc, &tls.url_with_host("a.test", "/")).await;
    assert_eq!(sorted(&sent), ["plain=1", "s=2"]);
    // And a Secure cookie set over https is stored.
    let url = format!("{}?set=t%3D3%3B+Secure", tls.url_with_host("a.test", "/"));
    exchange(&svc, &url).await;
    assert_eq!(f.jar.len(), 3);
    assert_eq!(f.sent_to("a.test", "/").await, "plain=1");
}

#[tokio::test]
async fn expiry_deletes_cookies() {
    let f = Fixture::new();
    f.get(&f.url("a.test", "/", &["e=1", "f=1; Max-Age=3600", "g=1"]))
        .await;
    assert_eq!(
        sorted(&f.sent_to("a.test", "/").await),
        ["e=1", "f=1", "g=1"]
    );
    f.get(&f.url(
        "a.test",
        "/",
        &[
            "e=gone; Max-Age=0",
            "f=gone; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        ],
    ))
    .await;
    assert_eq!(f.sent_to("a.test", "/").await, "g=1");
    assert_eq!(f.jar.len(), 1);
    // A cookie born expired is not stored.
    f.get(&f.url(
        "a.test",
        "/",
        &["old=1; Expires=Mon, 01 Jan 2001 00:00:00 GMT"],
    ))
    .await;
    assert_eq!(f.sent_to("a.test", "/").await, "g=1");
}

#[tokio::test]
async fn public_suffix_domains_are_refused() {
    let f = Fixture::new();
    f.get(&f.url("shop.com", "/", &["a=1; Domain=com"])).await;
    f.get(&f.url(
        "shop.co.uk",
        "/",
        &["b=1; Domain=co.uk", "c=1; Domain=.co.uk"],
    ))
    .await;
    f.get(&f.url("me.github.io", "/", &["d=1; Domain=github.io"]))
        .await;
    f.get(&f.url("a.test", "/", &["e=1; Domain=test"])).await;
    assert!(f.jar.is_empty(), "{:?}", f.jar.cookies());
    for host in NAMES {
        assert_eq!(f.sent_to(host, "/").await, "", "{host}");
    }
    // The registrable domain itself is fine.
    f.get(&f.url("shop.co.uk", "/", &["ok=1; Domain=shop.co.uk"]))
        .await;
    assert_eq!(f.sent_to("shop.co.uk", "/").await, "ok=1");
    assert_eq!(f.jar.len(), 1);
}

#[tokio::test]
async fn bounds_evict_the_oldest() {
    let jar = CookieJar::builder()
        .max_cookies(5)
        .max_cookies_per_domain(3)
        .build()
        .unwrap();
    let f = Fixture::with_jar(jar);
    // Four in one response for one domain: the first is evicted.
    f.get(&f.url("a.test", "/", &["c1=1", "c2=2", "c3=3", "c4=4"]))
        .await;
    assert_eq!(
        sorted(&f.sent_to("a.test", "/").await),
        ["c2=2", "c3=3", "c4=4"]
    );
    // A subdomain counts for the same registrable domain.
    f.get(&f.url("sub.a.test", "/", &["s=1; Domain=a.test"]))
        .await;
    assert_eq!(
        sorted(&f.sent_to("a.test", "/").await),
        ["c3=3", "c4=4", "s=1"]
    );
    // Three more elsewhere: six in all, so the jar's oldest (c3) goes.
    f.get(&f.url("b.test", "/", &["b1=1", "b2=2", "b3=3"]))
        .await;
    assert_eq!(f.jar.len(), 5);
    assert_eq!(sorted(&f.sent_to("a.test", "/").await), ["c4=4", "s=1"]);
    assert_eq!(
        sorted(&f.sent_to("b.test", "/").await),
        ["b1=1", "b2=2", "b3=3"]
    );
}

#[tokio::test]
async fn seed_read_and_clear_through_the_handle() {
    let f = Fixture::new();
    f.jar
        .add_cookie_str("seed=1; Domain=a.test; Path=/", "http://a.test/")
        .unwrap();
    assert_eq!(f.sent_to("sub.a.test", "/").await, "seed=1");
    f.get(&f.url("a.test", "/", &["got=2"])).await;
    let for_a = f.jar.cookies_for("http://a.test/");
    let mut names: Vec<_> = for_a.iter().map(|c| c.name()).collect();
    names.sort_unstable();
    assert_eq!(names, ["got", "seed"]);
    assert_eq!(f.jar.cookie_header("http://sub.a.test/").unwrap(), "seed=1");
    f.jar.clear();
    assert!(f.jar.is_empty());
    assert_eq!(f.sent_to("a.test", "/").await, "");
}

#[tokio::test]
async fn clones_share_one_jar() {
    let server = TestServer::start(handler);
    let jar = CookieJar::new();
    let layer = CookieLayer::new(jar.clone());
    let svc1 = layer.layer(backend(server.addr()));
    let svc2 = layer.clone().layer(backend(server.addr()));
    let url = format!("{}?set=shared%3D1", server.url_with_host("a.test", "/"));
    exchange(&svc1, &url).await;
    let (_, sent) = exchange(&svc2.clone(), &server.url_with_host("a.test", "/")).await;
    assert_eq!(sent, "shared=1");
    assert!(svc1.jar().same_jar(svc2.jar()));
    assert!(layer.jar().same_jar(&jar));
    assert_eq!(jar.len(), 1);
}

#[tokio::test]
async fn cookie_header_is_sensitive_and_hidden_from_debug() {
    let server = TestServer::start(handler);
    let jar = CookieJar::new();
    jar.add_cookie_str("sid=TOPSECRET", "http://a.test/")
        .unwrap();
    let backend = backend(server.addr());
    // Look at the request between the cookie layer and the backend.
    let inspect = tower::service_fn(move |req: Request<Body>| {
        let backend = backend.clone();
        async move {
            let value = req.headers().get(COOKIE).expect("a Cookie header").clone();
            assert!(value.is_sensitive());
            let debug = format!("{req:?} {:?}", req.headers());
            assert!(!debug.contains("TOPSECRET"), "{debug}");
            backend.oneshot(req).await
        }
    });
    let svc = CookieLayer::new(jar.clone()).layer(inspect);
    let resp: Response<ResponseBody> = svc
        .oneshot(
            fastreq::get(server.url_with_host("a.test", "/"))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "sid=TOPSECRET");
    let debug = format!("{jar:?} {:?}", jar.cookies());
    assert!(!debug.contains("TOPSECRET"), "{debug}");
}

#[tokio::test]
async fn cookie_set_on_a_302_is_sent_on_the_next_request() {
    let f = Fixture::new();
    // Hop 1: a 302 that sets two cookies; the backend does not follow it.
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("set", "sid=xyz; Path=/")
        .append_pair("set", "wide=1; Domain=a.test")
        .append_pair("status", "302")
        .append_pair("location", "/home");
    let url = format!(
        "{}?{}",
        f.server.url_with_host("a.test", "/login"),
        q.finish()
    );
    let (status, sent) = f.get(&url).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(sent, "");
    // Hop 2, as a redirect layer above would send it: same host, then another host.
    assert_eq!(
        sorted(&f.sent_to("a.test", "/home").await),
        ["sid=xyz", "wide=1"]
    );
    assert_eq!(f.sent_to("sub.a.test", "/home").await, "wide=1");
}

#[tokio::test]
async fn redirect_hops_through_one_service_in_a_loop() {
    // A small redirect loop over the service: each hop is one call.
    let f = Fixture::new();
    let next = f.url("sub.a.test", "/step2", &["two=2; Domain=a.test"]);
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("set", "one=1; Domain=a.test")
        .append_pair("status", "302")
        .append_pair("location", &next);
    let mut url = format!(
        "{}?{}",
        f.server.url_with_host("a.test", "/step1"),
        q.finish()
    );
    let mut sent_per_hop = Vec::new();
    for _ in 0..5 {
        let req = fastreq::get(&url).build().unwrap();
        let resp = tokio::time::timeout(LIMIT, f.svc.clone().oneshot(req))
            .await
            .unwrap()
            .unwrap();
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        sent_per_hop.push(resp.text().await.unwrap());
        match location {
            Some(l) => url = l,
            None => break,
        }
    }
    assert_eq!(sent_per_hop, ["", "one=1"]);
    assert_eq!(sorted(&f.sent_to("a.test", "/").await), ["one=1", "two=2"]);
}
