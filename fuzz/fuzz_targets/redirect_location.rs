//! Redirect `Location` resolution through the real redirect layer: arbitrary statuses and
//! `Location` values. Never a panic; every hop goes to an absolute http(s) URL without
//! userinfo; no https → http hop unless allowed; at most `max_redirects` hops; once a hop
//! crosses origin, credentials stay stripped; the result names the last URL.
#![no_main]

use std::future::ready;
use std::sync::{Arc, Mutex};

use fastreq::ext::FinalUrl;
use fastreq::redirect::FollowRedirectLayer;
use fastreq::{Body, ErrorKind, ResponseBody};
use futures_util::FutureExt as _;
use http::header::{AUTHORIZATION, COOKIE, LOCATION, PROXY_AUTHORIZATION};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tower::{Layer as _, ServiceExt as _};

const STARTS: [&str; 6] = [
    "http://a.test/x/y?q=1",
    "https://a.test/",
    "http://a.test:8080/p",
    "https://b.test/deep/er/path",
    "http://[::1]:8000/",
    "http://127.0.0.1/",
];
const STATUSES: [u16; 9] = [301, 302, 303, 307, 308, 300, 304, 200, 404];
const METHODS: [Method; 4] = [Method::GET, Method::POST, Method::HEAD, Method::PUT];

#[derive(Arbitrary, Debug, Clone)]
struct Hop {
    status: u8,
    location: Option<Vec<u8>>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    start: u8,
    method: u8,
    max_redirects: u8,
    https_downgrade: bool,
    hops: Vec<Hop>,
}

fn origin(u: &Uri) -> (Option<&str>, Option<&str>, Option<u16>) {
    let port = u.port_u16().or(match u.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    });
    (u.scheme_str(), u.host(), port)
}

fuzz_target!(|input: Input| {
    let max = 1 + u32::from(input.max_redirects % 12);
    let layer = FollowRedirectLayer::builder()
        .max_redirects(max)
        .https_downgrade(input.https_downgrade)
        .sensitive_header("x-secret")
        .build()
        .expect("a valid configuration");
    let hops: Arc<Vec<Hop>> = Arc::new(input.hops.into_iter().take(16).collect());
    let seen: Arc<Mutex<Vec<(Uri, HeaderMap)>>> = Arc::default();
    let backend = {
        let seen = seen.clone();
        tower::service_fn(move |req: Request<Body>| {
            let mut seen = seen.lock().unwrap();
            let n = seen.len();
            seen.push((req.uri().clone(), req.headers().clone()));
            let mut resp = Response::new(ResponseBody::empty());
            if let Some(hop) = hops.get(n) {
                *resp.status_mut() =
                    StatusCode::from_u16(STATUSES[usize::from(hop.status) % STATUSES.len()])
                        .expect("a valid status");
                if let Some(v) = hop
                    .location
                    .as_ref()
                    .and_then(|l| HeaderValue::from_bytes(l).ok())
                {
                    resp.headers_mut().insert(LOCATION, v);
                }
            }
            ready(Ok::<_, fastreq::Error>(resp))
        })
    };
    let method = METHODS[usize::from(input.method) % METHODS.len()].clone();
    let body = if method == Method::POST || method == Method::PUT {
        Body::from("data")
    } else {
        Body::empty()
    };
    let start = STARTS[usize::from(input.start) % STARTS.len()];
    let req = fastreq::request(method, start)
        .header(AUTHORIZATION, "Bearer tok")
        .header(COOKIE, "c=1")
        .header(PROXY_AUTHORIZATION, "Basic cA==")
        .header("x-secret", "s")
        .body(body)
        .build()
        .expect("a valid request");
    let result = layer
        .layer(backend)
        .oneshot(req)
        .now_or_never()
        .expect("ready at once");

    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty());
    assert!(
        seen.len() - 1 <= max as usize,
        "{} hops, limit {max}",
        seen.len() - 1
    );
    let mut crossed = false;
    for pair in seen.windows(2) {
        let (prev, _) = &pair[0];
        let (next, headers) = &pair[1];
        assert!(
            matches!(next.scheme_str(), Some("http" | "https")),
            "{next}"
        );
        let authority = next.authority().expect("an absolute URL");
        assert!(!authority.as_str().contains('@'), "credentials in {next}");
        assert!(next.host().is_some_and(|h| !h.is_empty()), "{next}");
        if !input.https_downgrade {
            assert!(
                !(prev.scheme_str() == Some("https") && next.scheme_str() == Some("http")),
                "downgrade {prev} -> {next}"
            );
        }
        crossed |= origin(prev) != origin(next);
        if crossed {
            for name in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION] {
                assert!(!headers.contains_key(&name), "{name} sent to {next}");
            }
            assert!(!headers.contains_key("x-secret"), "x-secret sent to {next}");
        }
    }
    match result {
        Ok(resp) => {
            let last = &seen.last().expect("one request").0;
            if let Some(FinalUrl(url)) = resp.extensions().get::<FinalUrl>() {
                assert_eq!(url, last);
            }
        }
        Err(e) => assert!(
            matches!(
                e.kind(),
                ErrorKind::RedirectRejected | ErrorKind::TooManyRedirects
            ),
            "{:?}: {e}",
            e.kind()
        ),
    }
});
