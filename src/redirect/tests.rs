//! Unit tests of the redirect layer over in-memory services.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, LOCATION, PROXY_AUTHORIZATION,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::{Layer, Service, ServiceExt};

use super::*;
use crate::ext::{FinalUrl, NoRedirects};
use crate::{Body, Error, ErrorKind, ResponseBody};

/// What the in-memory server saw for one request.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    uri: String,
    headers: HeaderMap,
    body: Bytes,
    tag: Option<Tag>,
}

#[derive(Clone, Debug, PartialEq)]
struct Tag(&'static str);

type Log = Arc<Mutex<Vec<Seen>>>;
type Route = fn(&Seen) -> (u16, Option<String>);

/// An in-memory server: `route` picks status and Location from what it saw.
fn server(
    route: Route,
) -> (
    Log,
    impl Service<Request<Body>, Response = Response<ResponseBody>, Error = Error, Future = impl Send>
        + Clone,
) {
    let log: Log = Arc::default();
    let log2 = log.clone();
    let svc = tower::service_fn(move |req: Request<Body>| {
        let log = log2.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.map_err(Error::from_boxed)?.to_bytes();
            let seen = Seen {
                method: parts.method,
                uri: parts.uri.to_string(),
                headers: parts.headers,
                body,
                tag: parts.extensions.get::<Tag>().cloned(),
            };
            let (status, location) = route(&seen);
            let text = format!("{} {} {}", seen.method, seen.uri, seen.body.len());
            log.lock().unwrap().push(seen);
            let mut resp = Response::builder().status(status);
            if let Some(l) = location {
                resp = resp.header(LOCATION, l);
            }
            Ok::<_, Error>(resp.body(ResponseBody::from(text)).unwrap())
        }
    });
    (log, svc)
}

fn to(location: &str) -> (u16, Option<String>) {
    (302, Some(location.to_string()))
}

fn ok() -> (u16, Option<String>) {
    (200, None)
}

fn layer() -> FollowRedirectLayer {
    FollowRedirectLayer::new()
}

async fn send<S>(svc: S, req: Request<Body>) -> Result<Response<ResponseBody>, Error>
where
    S: Service<Request<Body>, Response = Response<ResponseBody>, Error = Error>,
{
    svc.oneshot(req).await
}

fn seen(log: &Log) -> Vec<Seen> {
    log.lock().unwrap().clone()
}

#[tokio::test]
async fn follows_and_records_final_url_and_count() {
    let (log, inner) = server(|s| match s.uri.as_str() {
        "http://a.test/1" => to("/2"),
        "http://a.test/2" => to("http://a.test/3"),
        _ => ok(),
    });
    let svc = layer().layer(inner);
    let resp = send(svc, crate::get("http://a.test/1").build().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.extensions().get::<FinalUrl>().unwrap().0,
        "http://a.test/3"
    );
    assert_eq!(
        resp.extensions().get::<RedirectCount>(),
        Some(&RedirectCount(2))
    );
    let uris: Vec<_> = seen(&log).into_iter().map(|s| s.uri).collect();
    assert_eq!(
        uris,
        ["http://a.test/1", "http://a.test/2", "http://a.test/3"]
    );
}

#[tokio::test]
async fn no_redirect_still_records_final_url() {
    let (_log, inner) = server(|_| ok());
    let resp = send(
        layer().layer(inner),
        crate::get("http://a.test/x").build().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        resp.extensions().get::<FinalUrl>().unwrap().0,
        "http://a.test/x"
    );
    assert_eq!(RedirectCount::of(&resp), 0);
    assert!(resp.extensions().get::<RedirectCount>().is_none());
}

#[tokio::test]
async fn final_url_from_below_is_kept_without_hops_and_replaced_after() {
    // An inner service that stamps its own FinalUrl, as the backend does.
    let inner = tower::service_fn(|req: Request<Body>| async move {
        let mut resp = Response::new(ResponseBody::empty());
        if req.uri().path() == "/from" {
            *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
            resp.headers_mut()
                .insert(LOCATION, HeaderValue::from_static("/to"));
        }
        resp.extensions_mut().insert(FinalUrl(req.uri().clone()));
        Ok::<_, Error>(resp)
    });
    let svc = layer().layer(inner);
    let resp = send(svc.clone(), crate::get("http://a.test/x").build().unwrap())
        .await
        .unwrap();
    assert_eq!(
        resp.extensions().get::<FinalUrl>().unwrap().0,
        "http://a.test/x"
    );
    let resp = send(svc, crate::get("http://a.test/from").build().unwrap())
        .await
        .unwrap();
    assert_eq!(
        resp.extensions().get::<FinalUrl>().unwrap().0,
        "http://a.test/to"
    );
    assert_eq!(RedirectCount::of(&resp), 1);
}

/// `/hop/N` redirects to `/hop/N-1`; `/hop/0` answers 200.
fn countdown(s: &Seen) -> (u16, Option<String>) {
    let n: u32 = s.uri.rsplit('/').next().unwrap().parse().unwrap();
    if n == 0 {
        ok()
    } else {
        to(&format!("/hop/{}", n - 1))
    }
}

#[tokio::test]
async fn max_hops_exact() {
    let (log, inner) = server(countdown);
    let svc = layer().layer(inner);
    let resp = send(
        svc.clone(),
        crate::get("http://a.test/hop/10").build().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.extensions().get::<RedirectCount>(),
        Some(&RedirectCount(10))
    );
    assert_eq!(seen(&log).len(), 11);

    log.lock().unwrap().clear();
    let err = send(svc, crate::get("http://a.test/hop/11").build().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooManyRedirects);
    assert!(err.to_string().contains("10 redirects"), "{err}");
    assert_eq!(err.url(), Some("http://a.test/hop/1"));
    // 11 requests sent (the original and 10 hops); the 11th redirect is not followed.
    assert_eq!(seen(&log).len(), 11);

    let (_, inner) = server(countdown);
    let svc = FollowRedirectLayer::builder()
        .max_redirects(2)
        .build()
        .unwrap()
        .layer(inner);
    assert!(send(
        svc.clone(),
        crate::get("http://a.test/hop/2").build().unwrap()
    )
    .await
    .is_ok());
    let err = send(svc, crate::get("http://a.test/hop/3").build().unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("after 2 redirects"), "{err}");
}

#[tokio::test]
async fn loop_ends_with_too_many_redirects_and_redacted_url() {
    let (log, inner) = server(|s| {
        if s.uri.contains("/a") {
            to("/b?token=t0p")
        } else {
            to("/a?token=t0p")
        }
    });
    let err = send(
        layer().layer(inner),
        crate::get("http://user:pw@a.test/a?token=t0p")
            .build()
            .unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooManyRedirects);
    assert!(err.is_redirect());
    let text = format!("{err} {err:?}");
    assert!(!text.contains("t0p") && !text.contains("pw@"), "{text}");
    assert_eq!(err.url(), Some("http://a.test/b?token=REDACTED"));
    assert_eq!(seen(&log).len(), 11);
}

#[tokio::test]
async fn non_http_targets_are_rejected() {
    for target in [
        "file:///etc/passwd",
        "ftp://a.test/x",
        "data:text/plain,hi",
        "javascript:alert(1)",
        "gopher://a.test/",
        "http://[::1",
        "http://exa mple.test/",
        "http://",
    ] {
        let (log, inner) = server(|s| {
            if s.uri.ends_with("/start") {
                (
                    302,
                    Some(s.headers["x-target"].to_str().unwrap().to_string()),
                )
            } else {
                ok()
            }
        });
        let req = crate::get("http://a.test/start")
            .header("x-target", target)
            .build()
            .unwrap();
        let err = send(layer().layer(inner), req).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RedirectRejected, "{target}: {err}");
        assert_eq!(err.url(), Some("http://a.test/start"));
        assert_eq!(seen(&log).len(), 1, "{target}");
    }
}

#[tokio::test]
async fn non_utf8_location_is_rejected() {
    let inner = tower::service_fn(|_req: Request<Body>| async {
        let mut resp = Response::new(ResponseBody::empty());
        *resp.status_mut() = StatusCode::FOUND;
        resp.headers_mut()
            .insert(LOCATION, HeaderValue::from_bytes(b"/caf\xe9").unwrap());
        Ok::<_, Error>(resp)
    });
    let err = send(
        layer().layer(inner),
        crate::get("http://a.test/").build().unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RedirectRejected);
}

#[tokio::test]
async fn https_to_http_refused_unless_allowed() {
    let route: Route = |s| {
        if s.uri.starts_with("https://") {
            to("http://a.test/plain")
        } else {
            ok()
        }
    };
    let (log, inner) = server(route);
    let err = send(
        layer().layer(inner),
        crate::get("https://a.test/").build().unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RedirectRejected);
    assert!(err.to_string().contains("https to http"), "{err}");
    assert_eq!(seen(&log).len(), 1);

    let (log, inner) = server(route);
    let allow = FollowRedirectLayer::builder()
        .https_downgrade(true)
        .build()
        .unwrap();
    assert!(allow.allows_https_downgrade());
    let req = crate::get("https://a.test/")
        .bearer_auth("x")
        .build()
        .unwrap();
    let resp = send(allow.layer(inner), req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let seen = seen(&log);
    assert_eq!(seen[1].uri, "http://a.test/plain");
    // A scheme change is a change of origin.
    assert!(!seen[1].headers.contains_key(AUTHORIZATION));
}

#[tokio::test]
async fn relative_locations_resolve_against_current_url() {
    let (log, inner) = server(|s| match s.uri.as_str() {
        "http://a.test/dir/page" => to("../other?x=1#frag"),
        "http://a.test/other?x=1" => to("?y=2"),
        "http://a.test/other?y=2" => to("//b.test:8080/deep/"),
        "http://b.test:8080/deep/" => to("leaf"),
        "http://b.test:8080/deep/leaf" => to("http://u:p@b.test:8080/final"),
        _ => ok(),
    });
    let resp = send(
        layer().layer(inner),
        crate::get("http://a.test/dir/page").build().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let uris: Vec<_> = seen(&log).into_iter().map(|s| s.uri).collect();
    assert_eq!(
        uris,
        [
            "http://a.test/dir/page",
            "http://a.test/other?x=1",
            "http://a.test/other?y=2",
            "http://b.test:8080/deep/",
            "http://b.test:8080/deep/leaf",
            "http://b.test:8080/final",
        ]
    );
}

#[tokio::test]
async fn see_other_becomes_get_without_body() {
    let (log, inner) = server(|s| {
        if s.uri.ends_with("/form") {
            (303, Some("/result".into()))
        } else {
            ok()
        }
    });
    let svc = layer().layer(inner);
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        log.lock().unwrap().clear();
        let req = crate::request(method.clone(), "http://a.test/form")
            .header(CONTENT_TYPE, "text/plain")
            .header("x-keep", "1")
            .body("payload")
            .build()
            .unwrap();
        let resp = send(svc.clone(), req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let seen = seen(&log);
        assert_eq!(seen[0].method, method);
        assert_eq!(seen[0].body, "payload");
        assert_eq!(seen[1].method, Method::GET, "after {method}");
        assert!(seen[1].body.is_empty());
        assert!(!seen[1].headers.contains_key(CONTENT_TYPE));
        assert!(!seen[1].headers.contains_key(CONTENT_LENGTH));
        assert_eq!(seen[1].headers["x-keep"], "1");
    }
    // HEAD stays HEAD.
    log.lock().unwrap().clear();
    let req = crate::head("http://a.test/form").build().unwrap();
    send(svc, req).await.unwrap();
    assert_eq!(seen(&log)[1].method, Method::HEAD);
}

#[tokio::test]
async fn moved_and_found_after_post_become_get() {
    for status in [301u16, 302] {
        let (log, inner) = server(if status == 301 {
            |s: &Seen| {
                if s.uri.ends_with("/old") {
                    (301, Some("/new".into()))
                } else {
                    ok()
                }
            }
        } else {
            |s: &Seen| {
                if s.uri.ends_with("/old") {
                    (302, Some("/new".into()))
                } else {
                    ok()
                }
            }
        });
        let svc = layer().layer(inner);
        let req = crate::post("http://a.test/old")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("a=1")
            .build()
            .unwrap();
        send(svc.clone(), req).await.unwrap();
        let s = seen(&log);
        assert_eq!(s[1].method, Method::GET, "{status}");
        assert!(s[1].body.is_empty());
        assert!(!s[1].headers.contains_key(CONTENT_TYPE));

        // Other methods keep their method and body on 301/302.
        log.lock().unwrap().clear();
        let req = crate::put("http://a.test/old").body("doc").build().unwrap();
        send(svc, req).await.unwrap();
        let s = seen(&log);
        assert_eq!(s[1].method, Method::PUT, "{status}");
        assert_eq!(s[1].body, "doc");
    }
}

fn temporary(s: &Seen) -> (u16, Option<String>) {
    if s.uri.ends_with("/307") {
        (307, Some("/308".into()))
    } else if s.uri.ends_with("/308") {
        (308, Some("/done".into()))
    } else {
        ok()
    }
}

#[tokio::test]
async fn temporary_and_permanent_keep_method_and_body() {
    let (log, inner) = server(temporary);
    let req = crate::post("http://a.test/307")
        .header(CONTENT_TYPE, "application/json")
        .body(r#"{"a":1}"#)
        .build()
        .unwrap();
    let resp = send(layer().layer(inner), req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let s = seen(&log);
    assert_eq!(s.len(), 3);
    for hop in &s {
        assert_eq!(hop.method, Method::POST);
        assert_eq!(hop.body, r#"{"a":1}"#);
        assert_eq!(hop.headers[CONTENT_TYPE], "application/json");
    }
}

fn stream_body() -> Body {
    Body::wrap_stream(futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>(Bytes::from("chunk1")),
        Ok(Bytes::from("chunk2")),
    ]))
}

#[tokio::test]
async fn streamed_body_on_307_is_not_replayable() {
    let (log, inner) = server(temporary);
    let req = crate::post("http://a.test/307")
        .body(stream_body())
        .build()
        .unwrap();
    let err = send(layer().layer(inner), req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BodyNotReplayable);
    assert!(err.is_body_not_replayable());
    assert!(err.to_string().contains("307"), "{err}");
    assert_eq!(err.url(), Some("http://a.test/307"));
    let s = seen(&log);
    assert_eq!(s.len(), 1, "the redirect is not followed");
    assert_eq!(s[0].body, "chunk1chunk2");

    // With the opt-out, the 307 comes back as it is.
    let (_, inner) = server(temporary);
    let req = crate::post("http://a.test/307")
        .body(stream_body())
        .no_redirects()
        .build()
        .unwrap();
    let resp = send(layer().layer(inner), req).await.unwrap();
    assert_eq!(resp.status(), 307);
}

#[tokio::test]
async fn streamed_body_on_303_is_followed_as_get() {
    let (log, inner) = server(|s| {
        if s.uri.ends_with("/upload") {
            (303, Some("/status".into()))
        } else {
            ok()
        }
    });
    let req = crate::post("http://a.test/upload")
        .body(stream_body())
        .build()
        .unwrap();
    let resp = send(layer().layer(inner), req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let s = seen(&log);
    assert_eq!(s[1].method, Method::GET);
    assert!(s[1].body.is_empty());
}

fn with_credentials(url: &str) -> Request<Body> {
    crate::get(url)
        .header(AUTHORIZATION, "Bearer s3cret")
        .header(COOKIE, "session=abc")
        .header("cookie2", "$Version=1")
        .header(PROXY_AUTHORIZATION, "Basic cHJveHk=")
        .header("www-authenticate", "Basic")
        .header("x-api-key", "k")
        .header(HOST, "a.test")
        .header("x-other", "kept")
        .build()
        .unwrap()
}

const CREDENTIALS: [&str; 5] = [
    "authorization",
    "cookie",
    "cookie2",
    "proxy-authorization",
    "www-authenticate",
];

#[tokio::test]
async fn credentials_stay_stripped_after_crossing_origin() {
    // A -> B/1 -> B/2 (the second hop is same-origin, the bug of reqwest 0.13 / Go).
    let (log, inner) = server(|s| match s.uri.as_str() {
        "http://a.test/start" => to("http://b.test/1"),
        "http://b.test/1" => to("/2"),
        _ => ok(),
    });
    let layer = FollowRedirectLayer::builder()
        .sensitive_header("X-Api-Key")
        .build()
        .unwrap();
    let resp = send(layer.layer(inner), with_credentials("http://a.test/start"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let s = seen(&log);
    assert_eq!(s.len(), 3);
    for name in CREDENTIALS.iter().chain(&["x-api-key"]) {
        assert!(s[0].headers.contains_key(*name), "A gets {name}");
        assert!(!s[1].headers.contains_key(*name), "B/1 must not get {name}");
        assert!(!s[2].headers.contains_key(*name), "B/2 must not get {name}");
    }
    assert_eq!(s[0].headers[HOST], "a.test");
    assert!(
        !s[1].headers.contains_key(HOST),
        "a Host header is not sent to B"
    );
    assert_eq!(s[2].headers["x-other"], "kept");
}

#[tokio::test]
async fn credentials_not_restored_when_coming_back() {
    // A -> B -> A: the return to A is same-origin with the start, still stripped.
    let (log, inner) = server(|s| match s.uri.as_str() {
        "http://a.test/start" => to("http://b.test/bounce"),
        "http://b.test/bounce" => to("http://a.test/back"),
        _ => ok(),
    });
    send(
        layer().layer(inner),
        with_credentials("http://a.test/start"),
    )
    .await
    .unwrap();
    let s = seen(&log);
    assert_eq!(s[2].uri, "http://a.test/back");
    for name in CREDENTIALS {
        assert!(!s[1].headers.contains_key(name), "B must not get {name}");
        assert!(
            !s[2].headers.contains_key(name),
            "A again must not get {name}"
        );
    }
    // Not registered with this layer: kept.
    assert_eq!(s[2].headers["x-api-key"], "k");
}

#[tokio::test]
async fn same_origin_hops_keep_credentials_and_port_change_is_cross_origin() {
    let (log, inner) = server(|s| match s.uri.as_str() {
        "http://a.test/1" => to("/2"),
        "http://a.test/2" => to("http://A.TEST:80/3"),
        "http://a.test/3" => to("http://a.test:8080/4"),
        _ => ok(),
    });
    send(layer().layer(inner), with_credentials("http://a.test/1"))
        .await
        .unwrap();
    let s = seen(&log);
    assert_eq!(s.len(), 4);
    for name in CREDENTIALS {
        assert!(s[1].headers.contains_key(name), "same origin keeps {name}");
        assert!(
            s[2].headers.contains_key(name),
            "explicit default port keeps {name}"
        );
        assert!(
            !s[3].headers.contains_key(name),
            "port change strips {name}"
        );
    }
}

#[tokio::test]
async fn extensions_reach_every_hop() {
    let (log, inner) = server(|s| match s.uri.as_str() {
        "http://a.test/1" => to("http://b.test/2"),
        "http://b.test/2" => (303, Some("http://a.test/3".into())),
        _ => ok(),
    });
    let req = crate::post("http://a.test/1")
        .extension(Tag("mine"))
        .timeout(std::time::Duration::from_secs(3))
        .body("x")
        .build()
        .unwrap();
    // The inner service also checks the built-in override extension on every hop.
    let checked = Arc::new(AtomicUsize::new(0));
    let checked2 = checked.clone();
    let inner = tower::ServiceBuilder::new()
        .map_request(move |req: Request<Body>| {
            assert!(req
                .extensions()
                .get::<crate::ext::RequestTimeout>()
                .is_some());
            checked2.fetch_add(1, Ordering::SeqCst);
            req
        })
        .service(inner);
    send(layer().layer(inner), req).await.unwrap();
    let s = seen(&log);
    assert_eq!(s.len(), 3);
    for hop in &s {
        assert_eq!(hop.tag, Some(Tag("mine")), "{}", hop.uri);
    }
    assert_eq!(checked.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn no_redirects_returns_the_3xx() {
    let (log, inner) = server(|_| to("file:///etc/passwd"));
    let req = crate::get("http://a.test/x")
        .no_redirects()
        .build()
        .unwrap();
    let resp = send(layer().layer(inner), req).await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()[LOCATION], "file:///etc/passwd");
    assert_eq!(
        resp.extensions().get::<FinalUrl>().unwrap().0,
        "http://a.test/x"
    );
    assert_eq!(RedirectCount::of(&resp), 0);
    assert!(resp.extensions().get::<RedirectCount>().is_none());
    assert_eq!(seen(&log).len(), 1);
    // The hand-built way.
    let mut req = Request::new(Body::empty());
    *req.uri_mut() = "http://a.test/y".parse().unwrap();
    req.extensions_mut().insert(NoRedirects);
    let (_, inner) = server(|_| to("/z"));
    assert_eq!(send(layer().layer(inner), req).await.unwrap().status(), 302);
}

#[tokio::test]
async fn redirect_without_location_and_other_3xx_are_returned() {
    for status in [300u16, 301, 302, 303, 304, 307, 308] {
        let inner = tower::service_fn(move |_req: Request<Body>| async move {
            let mut resp = Response::new(ResponseBody::empty());
            *resp.status_mut() = StatusCode::from_u16(status).unwrap();
            if status == 300 || status == 304 {
                resp.headers_mut()
                    .insert(LOCATION, HeaderValue::from_static("/elsewhere"));
            }
            Ok::<_, Error>(resp)
        });
        let resp = send(
            layer().layer(inner),
            crate::get("http://a.test/").build().unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), status);
    }
}

#[tokio::test]
async fn policy_can_stop_or_fail() {
    let route: Route = |s| match s.uri.as_str() {
        "http://a.test/1" => to("/2"),
        "http://a.test/2" => to("http://b.test/3"),
        _ => ok(),
    };
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let attempts2 = attempts.clone();
    let same_host = policy_fn(move |a: &Attempt<'_>| {
        attempts2.lock().unwrap().push((
            a.hop(),
            a.status(),
            a.previous().to_string(),
            a.location().to_string(),
            a.is_cross_origin(),
            a.credentials_stripped(),
            a.method().clone(),
            a.previous_method().clone(),
        ));
        assert!(a.response_headers().contains_key(LOCATION));
        assert!(!format!("{a:?}").is_empty());
        Ok(if a.is_cross_origin() {
            Action::Stop
        } else {
            Action::Follow
        })
    });
    let (log, inner) = server(route);
    let resp = send(
        layer().policy(same_host).layer(inner),
        crate::get("http://a.test/1").build().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(
        resp.extensions().get::<FinalUrl>().unwrap().0,
        "http://a.test/2"
    );
    assert_eq!(
        resp.extensions().get::<RedirectCount>(),
        Some(&RedirectCount(1))
    );
    assert_eq!(seen(&log).len(), 2);
    let attempts = attempts.lock().unwrap().clone();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].0, 1);
    assert_eq!(attempts[0].1, StatusCode::FOUND);
    assert_eq!(attempts[0].3, "http://a.test/2");
    assert!(!attempts[0].4);
    assert_eq!(attempts[1].0, 2);
    assert_eq!(attempts[1].2, "http://a.test/2");
    assert_eq!(attempts[1].3, "http://b.test/3");
    assert!(attempts[1].4 && attempts[1].5);

    let refuse = policy_fn(|_a: &Attempt<'_>| {
        Err(Error::new(ErrorKind::RedirectRejected).with_message("no thanks"))
    });
    let (_, inner) = server(|_| to("/elsewhere"));
    let err = send(
        layer().policy(refuse).layer(inner),
        crate::get("http://a.test/1?key=k").build().unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RedirectRejected);
    assert_eq!(err.message(), Some("no thanks"));
    assert_eq!(err.url(), Some("http://a.test/1?key=REDACTED"));
}

#[tokio::test]
async fn built_in_rules_apply_before_the_policy() {
    let called = Arc::new(AtomicUsize::new(0));
    let called2 = called.clone();
    let follow_all = policy_fn(move |_a: &Attempt<'_>| {
        called2.fetch_add(1, Ordering::SeqCst);
        Ok(Action::Follow)
    });
    let (_, inner) = server(|_| to("file:///etc/passwd"));
    let err = send(
        layer().policy(follow_all).layer(inner),
        crate::get("http://a.test/").build().unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RedirectRejected);
    assert_eq!(called.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn custom_redactor_is_used() {
    let (_, inner) = server(|_| to("ftp://a.test/?session=zzz"));
    let layer = FollowRedirectLayer::builder()
        .redactor(crate::Redactor::new(["session"]))
        .build()
        .unwrap();
    let err = send(
        layer.layer(inner),
        crate::get("http://a.test/?session=abc").build().unwrap(),
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("abc") && !text.contains("zzz"), "{text}");
    assert!(text.contains("ftp://a.test/?session=REDACTED"), "{text}");
}

#[tokio::test]
async fn inner_errors_pass_through_with_url() {
    let inner = tower::service_fn(|_req: Request<Body>| async {
        Err::<Response<ResponseBody>, _>(Error::new(ErrorKind::Connect))
    });
    let err = send(
        layer().layer(inner),
        crate::get("http://a.test/?token=x").build().unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert_eq!(err.url(), Some("http://a.test/?token=REDACTED"));
}

// ---- readiness and dropping of intermediate responses ----

/// Counts live response bodies.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = Error;
    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        Poll::Ready(None)
    }
}

/// A service that must be polled ready before each call (a clone starts not ready), that
/// is ready only on every second poll, and checks no earlier response body is alive.
struct Strict {
    ready: bool,
    flip: bool,
    live: Arc<AtomicUsize>,
    calls: Arc<AtomicUsize>,
}

impl Clone for Strict {
    fn clone(&self) -> Self {
        Strict {
            ready: false,
            flip: false,
            live: self.live.clone(),
            calls: self.calls.clone(),
        }
    }
}

impl Service<Request<Body>> for Strict {
    type Response = Response<Tracked>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Tracked>, Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.flip = !self.flip;
        if self.flip {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        assert!(self.ready, "called without poll_ready");
        self.ready = false;
        assert_eq!(
            self.live.load(Ordering::SeqCst),
            0,
            "the previous 3xx body must be dropped before the next hop"
        );
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.live.fetch_add(1, Ordering::SeqCst);
        let body = Tracked(self.live.clone());
        let path = req.uri().path().to_string();
        Box::pin(async move {
            tokio::task::yield_now().await;
            let mut resp = Response::new(body);
            if n < 3 {
                *resp.status_mut() = StatusCode::TEMPORARY_REDIRECT;
                resp.headers_mut().insert(
                    LOCATION,
                    HeaderValue::from_str(&format!("{path}x")).unwrap(),
                );
            }
            Ok(resp)
        })
    }
}

#[tokio::test]
async fn each_hop_polls_ready_and_drops_the_previous_response() {
    let live = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let strict = Strict {
        ready: false,
        flip: false,
        live: live.clone(),
        calls: calls.clone(),
    };
    let svc = layer().layer(strict);
    let req = crate::post("http://a.test/").body("b").build().unwrap();
    let resp = svc.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.extensions().get::<FinalUrl>().unwrap().0,
        "http://a.test/xxx"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(
        live.load(Ordering::SeqCst),
        1,
        "only the final body is alive"
    );
    drop(resp);
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

#[test]
fn config_errors_are_clear() {
    let err = FollowRedirectLayer::builder()
        .max_redirects(0)
        .build()
        .unwrap_err();
    assert!(err.is_config());
    assert!(err.to_string().contains("got 0"), "{err}");

    let err = FollowRedirectLayer::builder()
        .sensitive_header("bad header")
        .build()
        .unwrap_err();
    assert!(err.is_config());
    assert!(err.to_string().contains("sensitive header"), "{err}");

    let layer = FollowRedirectLayer::builder()
        .max_redirects(3)
        .sensitive_headers(["x-a", "X-A", "authorization"])
        .sensitive_header(http::HeaderName::from_static("x-b"))
        .build()
        .unwrap();
    assert_eq!(layer.max_redirects(), 3);
    assert!(!layer.allows_https_downgrade());
    let names: Vec<_> = layer.sensitive_headers().map(|h| h.as_str()).collect();
    assert_eq!(
        names,
        [
            "authorization",
            "cookie",
            "cookie2",
            "proxy-authorization",
            "www-authenticate",
            "x-a",
            "x-b"
        ]
    );
    assert!(format!("{layer:?}").contains("x-b"));
    assert_eq!(
        FollowRedirectLayer::default().max_redirects(),
        DEFAULT_MAX_REDIRECTS
    );
    let svc = FollowRedirect::new(tower::service_fn(|_r: Request<Body>| async {
        Ok::<_, Error>(Response::new(ResponseBody::empty()))
    }));
    assert_eq!(svc.max_redirects(), 10);
    assert_eq!(*svc.policy(), Standard);
}
