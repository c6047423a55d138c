//! The cookie jar and layer: arbitrary `Set-Cookie` headers and request URLs. Never a panic;
//! the jar's bounds hold; the `Cookie` header is sensitive; a `Secure` cookie is only sent
//! over https (or to a loopback host).
#![no_main]

use std::collections::HashMap;
use std::future::ready;

use fastreq::cookies::{CookieJar, CookieLayer};
use futures_util::FutureExt as _;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, Response};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tower::{Layer as _, Service as _};

const BASES: [&str; 10] = [
    "http://a.test",
    "https://a.test",
    "http://www.a.test",
    "https://shop.example.co.uk",
    "http://b.example.co.uk",
    "http://127.0.0.1:8080",
    "http://[::1]",
    "https://user.github.io",
    "http://co.uk",
    "http://localhost",
];

#[derive(Arbitrary, Debug)]
enum Url {
    Known(u8, String),
    Raw(String),
}

impl Url {
    fn text(&self) -> String {
        match self {
            Url::Known(i, path) => format!("{}/{path}", BASES[usize::from(*i) % BASES.len()]),
            Url::Raw(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// `add_cookie_str`.
    Add(Url, String),
    /// A request through the layer: its own `Cookie` header, and the response's
    /// `Set-Cookie` headers.
    Call(Url, Option<Vec<u8>>, Vec<Vec<u8>>),
    Read(Url),
    Remove(String, String, String),
    Clear,
}

#[derive(Arbitrary, Debug)]
struct Input {
    max_cookies: u8,
    per_domain: u8,
    max_size: u16,
    ops: Vec<Op>,
}

fn loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check_sent(jar: &CookieJar, url: &str) {
    let sent = jar.cookies_for(url);
    if let Some(header) = jar.cookie_header(url) {
        assert!(header.is_sensitive());
        assert!(!sent.is_empty());
    } else {
        assert!(sent.is_empty());
    }
    if sent.iter().any(|c| c.secure()) {
        let uri: http::Uri = url.parse().expect("a URL that matched cookies");
        assert!(
            uri.scheme_str() == Some("https") || uri.host().is_some_and(loopback),
            "secure cookie sent to {url}"
        );
    }
}

fn check_bounds(jar: &CookieJar) {
    let all = jar.cookies();
    assert!(all.len() <= jar.max_cookies(), "{} cookies", all.len());
    let mut per_domain: HashMap<&str, usize> = HashMap::new();
    for c in &all {
        assert!(c.name().len() + c.value().len() <= jar.max_cookie_size());
        *per_domain.entry(c.domain()).or_default() += 1;
    }
    assert!(per_domain
        .values()
        .all(|&n| n <= jar.max_cookies_per_domain()));
}

fuzz_target!(|input: Input| {
    let Ok(jar) = CookieJar::builder()
        .max_cookies(usize::from(input.max_cookies % 16) + 1)
        .max_cookies_per_domain(usize::from(input.per_domain % 8) + 1)
        .max_cookie_size(usize::from(input.max_size % 512) + 1)
        .build()
    else {
        return;
    };
    let layer = CookieLayer::new(jar.clone());
    for op in input.ops.into_iter().take(32) {
        match op {
            Op::Add(url, cookie) => {
                let _ = jar.add_cookie_str(&cookie, &url.text());
            }
            Op::Call(url, cookie, set_cookies) => {
                let Ok(uri) = url.text().parse::<http::Uri>() else {
                    continue;
                };
                let mut req = Request::new(());
                *req.uri_mut() = uri;
                if let Some(c) = cookie.and_then(|c| HeaderValue::from_bytes(&c).ok()) {
                    req.headers_mut().insert(COOKIE, c);
                }
                let set: Vec<HeaderValue> = set_cookies
                    .iter()
                    .take(8)
                    .filter_map(|v| HeaderValue::from_bytes(v).ok())
                    .collect();
                let mut svc = layer.layer(tower::service_fn(move |req: Request<()>| {
                    if let Some(c) = req.headers().get(COOKIE) {
                        assert!(c.is_sensitive(), "the Cookie header is sensitive");
                    }
                    let mut resp = Response::new(());
                    for v in &set {
                        resp.headers_mut().append(SET_COOKIE, v.clone());
                    }
                    ready(Ok::<_, fastreq::Error>(resp))
                }));
                let result = svc.call(req).now_or_never().expect("ready at once");
                assert!(result.is_ok());
            }
            Op::Read(url) => check_sent(&jar, &url.text()),
            Op::Remove(domain, path, name) => {
                let _ = jar.remove(&domain, &path, &name);
            }
            Op::Clear => {
                jar.clear();
                assert!(jar.is_empty());
            }
        }
        check_bounds(&jar);
    }
    for base in BASES {
        check_sent(&jar, &format!("{base}/"));
    }
});
