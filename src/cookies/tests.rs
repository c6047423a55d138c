//! Unit tests of the jar, the rules and the service over in-memory services.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, Response, StatusCode};
use tower::{Layer, Service, ServiceExt};

use super::rules::{is_public_suffix, site_of};
use super::*;
use crate::ErrorKind;

fn req(url: &str) -> Request<()> {
    Request::get(url).body(()).unwrap()
}

/// Names and values of a `Cookie` header, sorted.
fn pairs(v: Option<&HeaderValue>) -> Vec<String> {
    let mut out: Vec<String> = v
        .map(|v| v.to_str().unwrap().split("; ").map(str::to_owned).collect())
        .unwrap_or_default();
    out.sort();
    out
}

type Seen = Arc<Mutex<Vec<Option<HeaderValue>>>>;

/// An in-memory service that records each request's `Cookie` header and answers with the
/// `Set-Cookie` values listed for the request's path (and 302 for paths under `/redirect`).
fn recording(
    set: &'static [(&'static str, &'static [&'static str])],
) -> (
    Seen,
    impl Service<Request<()>, Response = Response<()>, Error = crate::Error> + Clone,
) {
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    let svc = tower::service_fn(move |req: Request<()>| {
        let seen = seen2.clone();
        async move {
            seen.lock()
                .unwrap()
                .push(req.headers().get(COOKIE).cloned());
            let mut resp = Response::new(());
            if req.uri().path().starts_with("/redirect") {
                *resp.status_mut() = StatusCode::FOUND;
            }
            for (path, values) in set {
                if req.uri().path() == *path {
                    for v in *values {
                        resp.headers_mut()
                            .append(SET_COOKIE, HeaderValue::from_static(v));
                    }
                }
            }
            Ok::<_, crate::Error>(resp)
        }
    });
    (seen, svc)
}

#[test]
fn public_suffix_list() {
    for d in ["com", "co.uk", "github.io", "test", "local", "uk"] {
        assert!(is_public_suffix(d), "{d}");
    }
    for d in [
        "a.com",
        "bbc.co.uk",
        "me.github.io",
        "a.test",
        "127.0.0.1",
        "[::1]",
    ] {
        assert!(!is_public_suffix(d), "{d}");
    }
    assert_eq!(site_of("a.b.example.co.uk"), "example.co.uk");
    assert_eq!(site_of("sub.a.test"), "a.test");
    assert_eq!(site_of("a.test"), "a.test");
    assert_eq!(site_of("x.me.github.io"), "me.github.io");
    assert_eq!(site_of("com"), "com");
    assert_eq!(site_of("127.0.0.1"), "127.0.0.1");
    assert_eq!(site_of("10.0.0.1"), "10.0.0.1");
    assert_eq!(site_of("localhost"), "localhost");
}

#[test]
fn public_suffix_domains_are_refused() {
    let jar = CookieJar::new();
    for (cookie, url) in [
        ("a=1; Domain=com", "http://a.com/"),
        ("a=1; Domain=.com", "http://a.com/"),
        ("a=1; Domain=co.uk", "http://shop.co.uk/"),
        ("a=1; Domain=github.io", "http://me.github.io/"),
        ("a=1; Domain=test", "http://a.test/"),
    ] {
        let err = jar.add_cookie_str(cookie, url).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert!(err.to_string().contains("public suffix"), "{err}");
    }
    assert!(jar.is_empty());
    // The host itself may: the cookie becomes host-only.
    jar.add_cookie_str("a=1; Domain=github.io", "http://github.io/")
        .unwrap();
    let stored = jar.cookies();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].host_only());
    assert_eq!(stored[0].domain(), "github.io");
    assert!(jar.cookie_header("http://me.github.io/").is_none());
    assert_eq!(jar.cookie_header("http://github.io/").unwrap(), "a=1");
    // A registrable domain is fine.
    jar.add_cookie_str("b=2; Domain=shop.co.uk", "http://www.shop.co.uk/")
        .unwrap();
    assert_eq!(jar.cookie_header("http://x.shop.co.uk/").unwrap(), "b=2");
}

#[test]
fn secure_origin_and_prefixes() {
    let jar = CookieJar::new();
    let refused = |c: &str, u: &str| jar.add_cookie_str(c, u).unwrap_err().to_string();
    assert!(refused("s=1; Secure", "http://a.test/").contains("https"));
    assert!(refused("__Secure-s=1", "https://a.test/").contains("__Secure-"));
    assert!(refused("__Host-h=1; Secure", "https://a.test/").contains("__Host-"));
    assert!(refused(
        "__Host-h=1; Secure; Path=/; Domain=a.test",
        "https://a.test/"
    )
    .contains("__Host-"));
    assert!(refused("__host-h=1; Path=/", "https://a.test/").contains("__Host-"));
    jar.add_cookie_str("s=1; Secure", "https://a.test/")
        .unwrap();
    jar.add_cookie_str("__Secure-s=2; Secure", "https://a.test/")
        .unwrap();
    jar.add_cookie_str("__Host-h=3; Secure; Path=/", "https://a.test/")
        .unwrap();
    // Loopback counts as secure.
    jar.add_cookie_str("l=1; Secure", "http://127.0.0.1:8080/")
        .unwrap();
    assert_eq!(jar.len(), 4);
    assert!(jar.cookie_header("http://a.test/").is_none());
    assert_eq!(
        pairs(jar.cookie_header("https://a.test/").as_ref()),
        ["__Host-h=3", "__Secure-s=2", "s=1"]
    );
}

#[test]
fn size_and_characters() {
    let jar = CookieJar::builder().max_cookie_size(10).build().unwrap();
    assert!(jar
        .add_cookie_str("name=1234567", "http://a.test/")
        .unwrap_err()
        .to_string()
        .contains("larger than 10 bytes"));
    jar.add_cookie_str("name=123456", "http://a.test/").unwrap();
    assert!(jar.add_cookie_str("a=b\u{1}c", "http://a.test/").is_err());
    assert!(jar.add_cookie_str("=", "http://a.test/").is_err());
    assert!(jar
        .add_cookie_str("a=1", "not a url")
        .unwrap_err()
        .is_invalid_request());
    assert_eq!(jar.len(), 1);
}

#[test]
fn refusals_do_not_show_values() {
    let jar = CookieJar::new();
    let err = jar
        .add_cookie_str("sid=TOPSECRET; Domain=com", "http://a.com/?token=t0k")
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("`sid`"), "{text}");
    assert!(!text.contains("TOPSECRET"), "{text}");
    let err = jar
        .add_cookie_str("x=1", "http://a b/?token=t0k")
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("t0k"));
}

#[test]
fn debug_output_hides_values() {
    let jar = CookieJar::new();
    jar.add_cookie_str("sid=TOPSECRET", "http://a.test/")
        .unwrap();
    let stored = jar.cookies();
    let text = format!("{jar:?} {stored:?} {:?}", CookieLayer::new(jar.clone()));
    assert!(text.contains("sid"));
    assert!(!text.contains("TOPSECRET"), "{text}");
    assert_eq!(stored[0].value(), "TOPSECRET");
    let header = jar.cookie_header("http://a.test/").unwrap();
    assert!(header.is_sensitive());
    assert!(!format!("{header:?}").contains("TOPSECRET"));
}

#[test]
fn builder_rejects_zero() {
    for b in [
        CookieJar::builder().max_cookies(0),
        CookieJar::builder().max_cookies_per_domain(0),
        CookieJar::builder().max_cookie_size(0),
    ] {
        let err = b.build().unwrap_err();
        assert!(err.is_config());
        assert!(err.to_string().contains("got 0"), "{err}");
    }
    let jar = CookieJar::builder()
        .max_cookies(7)
        .max_cookies_per_domain(3)
        .max_cookie_size(100)
        .build()
        .unwrap();
    assert_eq!(
        (
            jar.max_cookies(),
            jar.max_cookies_per_domain(),
            jar.max_cookie_size()
        ),
        (7, 3, 100)
    );
    let d = CookieJar::default();
    assert_eq!(d.max_cookies(), DEFAULT_MAX_COOKIES);
    assert_eq!(d.max_cookies_per_domain(), DEFAULT_MAX_COOKIES_PER_DOMAIN);
    assert_eq!(d.max_cookie_size(), DEFAULT_MAX_COOKIE_SIZE);
}

#[test]
fn per_domain_bound_evicts_that_domains_oldest() {
    let jar = CookieJar::builder()
        .max_cookies_per_domain(3)
        .build()
        .unwrap();
    jar.add_cookie_str("other=1", "http://b.test/").unwrap();
    for i in 0..3 {
        jar.add_cookie_str(&format!("c{i}={i}"), "http://a.test/")
            .unwrap();
    }
    // Updating c0 makes it the most recently set.
    jar.add_cookie_str("c0=new", "http://a.test/").unwrap();
    // A subdomain counts towards the same registrable domain.
    jar.add_cookie_str("c3=3", "http://sub.a.test/").unwrap();
    let mut names: Vec<_> = jar
        .cookies()
        .iter()
        .map(|c| format!("{}@{}", c.name(), c.domain()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["c0@a.test", "c2@a.test", "c3@sub.a.test", "other@b.test"]
    );
}

#[test]
fn total_bound_evicts_the_oldest() {
    let jar = CookieJar::builder().max_cookies(3).build().unwrap();
    for host in ["h1.test", "h2.test", "h3.test", "h4.test", "h5.test"] {
        jar.add_cookie_str("k=v", &format!("http://{host}/"))
            .unwrap();
    }
    let mut domains: Vec<_> = jar
        .cookies()
        .iter()
        .map(|c| c.domain().to_owned())
        .collect();
    domains.sort();
    assert_eq!(domains, ["h3.test", "h4.test", "h5.test"]);
    assert_eq!(jar.len(), 3);
}

#[test]
fn expired_cookies_delete() {
    let jar = CookieJar::new();
    jar.add_cookie_str("a=1; Max-Age=3600", "http://a.test/")
        .unwrap();
    jar.add_cookie_str("b=2", "http://a.test/").unwrap();
    jar.add_cookie_str(
        "c=3; Expires=Wed, 21 Oct 2099 07:28:00 GMT",
        "http://a.test/",
    )
    .unwrap();
    let c = jar.cookies().into_iter().find(|c| c.name() == "c").unwrap();
    assert!(c.expires().unwrap() > SystemTime::now() + Duration::from_secs(86400 * 365));
    assert_eq!(jar.len(), 3);
    jar.add_cookie_str("a=x; Max-Age=0", "http://a.test/")
        .unwrap();
    jar.add_cookie_str(
        "b=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        "http://a.test/",
    )
    .unwrap();
    // An expired cookie with nothing to delete is fine too.
    jar.add_cookie_str("z=x; Max-Age=0", "http://a.test/")
        .unwrap();
    assert_eq!(pairs(jar.cookie_header("http://a.test/").as_ref()), ["c=3"]);
    assert_eq!(jar.len(), 1);
}

#[test]
fn remove_and_clear() {
    let jar = CookieJar::new();
    jar.add_cookie_str("a=1; Path=/x", "http://a.test/")
        .unwrap();
    jar.add_cookie_str("b=1", "http://a.test/").unwrap();
    assert!(!jar.remove("a.test", "/", "a"));
    assert!(jar.remove("a.test", "/x", "a"));
    assert_eq!(jar.len(), 1);
    let handle = jar.clone();
    assert!(handle.same_jar(&jar));
    handle.clear();
    assert!(jar.is_empty());
    assert!(jar.cookies().is_empty());
    // Usable after clearing.
    jar.add_cookie_str("c=1", "http://a.test/").unwrap();
    assert_eq!(jar.len(), 1);
}

#[test]
fn header_order_is_longest_path_first() {
    let jar = CookieJar::new();
    jar.add_cookie_str("a=root; Path=/", "http://a.test/")
        .unwrap();
    jar.add_cookie_str("a=deep; Path=/x/y", "http://a.test/")
        .unwrap();
    jar.add_cookie_str("b=mid; Path=/x", "http://a.test/")
        .unwrap();
    // Same domain string, path and name as `a=deep`: replaces it (cookie_store's key).
    jar.add_cookie_str("a=dom; Domain=a.test; Path=/x/y", "http://sub.a.test/")
        .unwrap();
    jar.add_cookie_str("c=sub; Path=/x/y", "http://sub.a.test/")
        .unwrap();
    // Equal paths: the more specific domain first.
    assert_eq!(
        jar.cookie_header("http://sub.a.test/x/y/z").unwrap(),
        "c=sub; a=dom"
    );
    assert_eq!(
        jar.cookie_header("http://a.test/x/y/z").unwrap(),
        "a=dom; b=mid; a=root"
    );
    let for_url = jar.cookies_for("http://a.test/x/y");
    assert_eq!(for_url.len(), 3);
    assert_eq!(for_url[0].path(), "/x/y");
}

#[test]
fn cookie_url_forms() {
    let jar = CookieJar::new();
    let uri: http::Uri = "http://a.test/p".parse().unwrap();
    let url: url::Url = "http://a.test/p".parse().unwrap();
    jar.add_cookie_str("u=1", &uri).unwrap();
    jar.add_cookie_str("v=1", &url).unwrap();
    jar.add_cookie_str("w=1", &String::from("http://a.test/p"))
        .unwrap();
    assert_eq!(jar.cookies_for(&uri).len(), 3);
    let relative: http::Uri = "/p".parse().unwrap();
    assert!(jar
        .add_cookie_str("x=1", &relative)
        .unwrap_err()
        .is_invalid_request());
    assert!(jar.cookies_for(&relative).is_empty());
    assert!(jar.cookies_for("garbage").is_empty());
}

#[tokio::test]
async fn service_round_trip_and_several_set_cookie() {
    let (seen, inner) = recording(&[("/set", &["a=1", "b=2; Path=/", "c=3; Path=/other"])]);
    let jar = CookieJar::new();
    let mut svc = CookieLayer::new(jar.clone()).layer(inner);
    svc.ready()
        .await
        .unwrap()
        .call(req("http://a.test/set"))
        .await
        .unwrap();
    assert_eq!(jar.len(), 3);
    svc.ready()
        .await
        .unwrap()
        .call(req("http://a.test/x"))
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0], None);
    assert_eq!(pairs(seen[1].as_ref()), ["a=1", "b=2"]);
    assert!(seen[1].as_ref().unwrap().is_sensitive());
}

#[tokio::test]
async fn explicit_cookie_header_is_kept_and_merged() {
    let (seen, inner) = recording(&[]);
    let jar = CookieJar::new();
    jar.add_cookie_str("a=jar", "http://a.test/").unwrap();
    jar.add_cookie_str("b=jar", "http://a.test/").unwrap();
    let svc = CookieLayer::new(jar.clone()).layer(inner);

    // Explicit `a` wins; the jar adds `b`.
    let mut r = req("http://a.test/");
    r.headers_mut()
        .insert(COOKIE, HeaderValue::from_static("a=mine"));
    svc.clone().oneshot(r).await.unwrap();
    // Two explicit headers are merged into one, nothing from the jar is duplicated.
    let mut r = req("http://a.test/");
    r.headers_mut()
        .append(COOKIE, HeaderValue::from_static("a=1"));
    r.headers_mut()
        .append(COOKIE, HeaderValue::from_static("b=2"));
    svc.clone().oneshot(r).await.unwrap();
    // An explicit header and an empty jar: kept as is, marked sensitive.
    jar.clear();
    let mut r = req("http://a.test/");
    r.headers_mut()
        .insert(COOKIE, HeaderValue::from_static("x=1"));
    svc.clone().oneshot(r).await.unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].as_ref().unwrap(), "a=mine; b=jar");
    assert!(seen[0].as_ref().unwrap().is_sensitive());
    assert_eq!(seen[1].as_ref().unwrap(), "a=1; b=2");
    assert!(seen[1].as_ref().unwrap().is_sensitive());
    assert_eq!(seen[2].as_ref().unwrap(), "x=1");
    assert!(seen[2].as_ref().unwrap().is_sensitive());
}

#[tokio::test]
async fn set_cookie_on_a_302_is_sent_on_the_next_hop() {
    // What the redirect layer above does: one call per hop.
    let (seen, inner) = recording(&[("/redirect/login", &["sid=xyz; Path=/"])]);
    let jar = CookieJar::new();
    let mut svc = CookieLayer::new(jar.clone()).layer(inner);
    let mut url = "http://a.test/redirect/login".to_owned();
    for hop in 0..5 {
        let resp = svc.ready().await.unwrap().call(req(&url)).await.unwrap();
        if resp.status() != StatusCode::FOUND {
            break;
        }
        assert!(hop < 4, "bounded loop");
        url = "http://a.test/home".to_owned();
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], None);
    assert_eq!(seen[1].as_ref().unwrap(), "sid=xyz");
}

#[tokio::test]
async fn relative_uri_passes_through() {
    let (seen, inner) = recording(&[("/set", &["a=1"])]);
    let jar = CookieJar::new();
    jar.add_cookie_str("z=1", "http://a.test/").unwrap();
    let svc = CookieLayer::new(jar.clone()).layer(inner);
    svc.clone().oneshot(req("/set")).await.unwrap();
    // An explicit header on a relative request is kept and marked sensitive.
    let mut r = req("/other");
    r.headers_mut()
        .insert(COOKIE, HeaderValue::from_static("mine=1"));
    svc.clone().oneshot(r).await.unwrap();
    jar.clear();
    svc.oneshot(req("/set")).await.unwrap();
    assert!(jar.is_empty());
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert_eq!((&seen[0], &seen[2]), (&None, &None));
    assert_eq!(seen[1].as_ref().unwrap(), "mine=1");
    assert!(seen[1].as_ref().unwrap().is_sensitive());
}

#[tokio::test]
async fn errors_pass_through_as_fastreq_errors() {
    let inner = tower::service_fn(|_: Request<()>| async {
        Err::<Response<()>, _>(crate::Error::new(ErrorKind::Connect))
    });
    let err = CookieLayer::default()
        .layer(inner)
        .oneshot(req("http://a.test/"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
}

#[tokio::test]
async fn clones_of_the_service_share_the_jar() {
    let (seen, inner) = recording(&[("/set", &["a=1"])]);
    let layer = CookieLayer::default();
    let svc1 = layer.layer(inner.clone());
    let svc2 = layer.layer(inner);
    assert!(svc1.jar().same_jar(svc2.jar()));
    svc1.clone()
        .oneshot(req("http://a.test/set"))
        .await
        .unwrap();
    svc2.clone().oneshot(req("http://a.test/")).await.unwrap();
    assert_eq!(seen.lock().unwrap()[1].as_ref().unwrap(), "a=1");
    assert_eq!(layer.jar().len(), 1);
}
