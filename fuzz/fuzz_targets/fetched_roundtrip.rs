//! The compact encoding of `Fetched`: any headers (names, values, sensitivity, order,
//! repeats), URL, body and attempt count in, the same out. A damaged header block decodes
//! without a panic.
#![no_main]

use std::time::Instant;

use fastreq::ext::{Attempts, FinalUrl};
use fastreq::{Fetched, ResponseBody};
use futures_util::FutureExt as _;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode, Uri};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

/// Names the encoder stores as codes, and a few others, to pick from.
const NAMES: [&str; 10] = [
    "content-type",
    "set-cookie",
    "location",
    "retry-after",
    "authorization",
    "referer",
    "x-fuzz",
    "x-request-id",
    "vary",
    "cache-control",
];

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Header {
    name: Name,
    value: Vec<u8>,
    sensitive: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    url: String,
    status: u16,
    attempts: Option<u32>,
    final_url: bool,
    headers: Vec<Header>,
    body: Vec<u8>,
    damaged: Vec<u8>,
}

fn listed(h: &HeaderMap) -> Vec<(&HeaderName, &[u8], bool)> {
    h.iter()
        .map(|(n, v)| (n, v.as_bytes(), v.is_sensitive()))
        .collect()
}

fuzz_target!(|input: Input| {
    // Damaged blocks: never a panic, and what decodes reads back the same.
    let (map, first) = fastreq::__fuzz::decode_header_block(&input.damaged);
    assert_eq!(first, map.get("x-fuzz").map(HeaderValue::as_bytes));

    let Ok(url) = input.url.parse::<Uri>() else {
        return;
    };
    let mut headers = HeaderMap::new();
    for h in input.headers.iter().take(64) {
        let name = match &h.name {
            Name::Known(i) => HeaderName::from_static(NAMES[usize::from(*i) % NAMES.len()]),
            Name::Raw(raw) => match HeaderName::from_bytes(raw) {
                Ok(n) => n,
                Err(_) => continue,
            },
        };
        let Ok(mut value) = HeaderValue::from_bytes(&h.value) else {
            continue;
        };
        value.set_sensitive(h.sensitive);
        headers.append(name, value);
    }
    let status = StatusCode::from_u16(100 + input.status % 500).expect("a valid status");
    let mut resp = Response::new(ResponseBody::from(input.body.clone()));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers.clone();
    if let Some(a) = input.attempts {
        resp.extensions_mut().insert(Attempts(a));
    }
    let request_url: Uri = if input.final_url {
        resp.extensions_mut().insert(FinalUrl(url.clone()));
        "http://other.test/".parse().expect("a valid URL")
    } else {
        url.clone()
    };
    let fetched = Fetched::from_response(resp, &request_url, Instant::now())
        .now_or_never()
        .expect("ready at once")
        .expect("a small response is buffered");

    assert_eq!(fetched.status(), status);
    assert_eq!(fetched.body(), &input.body[..]);
    assert_eq!(fetched.attempts(), input.attempts.unwrap_or(1));
    assert_eq!(fetched.final_url(), &url);
    assert_eq!(fetched.final_url().to_string(), url.to_string());
    for name in headers.keys() {
        let first = headers.get(name).map(HeaderValue::as_bytes);
        assert_eq!(fetched.header(name.as_str()), first, "{name}");
        assert_eq!(
            fetched.header(name.as_str().to_ascii_uppercase()),
            first,
            "{name}"
        );
    }
    assert_eq!(
        fetched.header("x-absent-header"),
        headers.get("x-absent-header").map(HeaderValue::as_bytes)
    );
    assert_eq!(listed(fetched.headers()), listed(&headers));
    assert_eq!(fetched.into_body(), input.body);
});
