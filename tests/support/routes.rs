//! The built-in query-string driven handler ([`route`]).

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};

use super::{Reply, TestRequest};

/// Body served by [`route`] when no `bytes=` is given: a 200-byte JSON object.
pub const DEFAULT_JSON: &str = concat!(
    r#"{"ok":true,"server":"fastreq-test-support","items":[1,2,3,4,5,6,7,8],"#,
    r#""message":"hello from the local test server","padding":"#,
    r#""xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#
);

/// Deterministic body of `n` bytes used by `?bytes=N`: `abc…xyzabc…`.
pub fn pattern_body(n: usize) -> Bytes {
    (0..n)
        .map(|i| b'a' + (i % 26) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Text form of a request used by `?echo=1`:
///
/// ```text
/// GET /path?echo=1 HTTP/1.1
/// name: value            (one line per header, in received order)
///
/// <body, lossy UTF-8>
/// ```
pub fn echo_text(req: &TestRequest) -> String {
    let mut s = format!("{} {} {:?}\n", req.method, req.uri, req.version);
    for (name, value) in &req.headers {
        let _ = writeln!(s, "{}: {}", name, String::from_utf8_lossy(value.as_bytes()));
    }
    s.push('\n');
    s.push_str(&String::from_utf8_lossy(&req.body));
    s
}

/// Built-in handler driven by the query string, so demos and benches need no
/// closure. Keys (all optional, combinable, unknown keys ignored, a bad value
/// gives `400`):
///
/// | key | effect |
/// |---|---|
/// | (none) | `200`, JSON body [`DEFAULT_JSON`] (200 bytes) |
/// | `status=N` | respond with status `N` (body unchanged) |
/// | `delay_ms=N` | wait `N` ms before the headers |
/// | `bytes=N` | body of `N` bytes from [`pattern_body`], `application/octet-stream` |
/// | `echo=1` | body is [`echo_text`] of the request, `text/plain` |
/// | `gzip=1` | gzip the body, `Content-Encoding: gzip` |
/// | `chunks=N&chunk_ms=M` | [`Reply::slow_body`]`(N, M ms)` (`chunk_ms` defaults to 10) |
/// | `location=URL` | add a `Location` header (pair with `status=302`) |
/// | `fail=reset` | [`Reply::reset_before_headers`] |
/// | `fail=reset_after` | [`Reply::reset_after_headers`] with the first half of the body |
/// | `fail=truncate` | [`Reply::truncated`]: first half of the body, full length declared |
pub fn route(req: &TestRequest) -> Reply {
    let Some(query) = req.uri.query() else {
        return default_json();
    };
    match route_query(req, query) {
        Ok(reply) => reply,
        Err(msg) => Reply::status(400).body(msg),
    }
}

/// The no-query reply: static body, no allocation (benches hit this path).
fn default_json() -> Reply {
    Reply::ok()
        .body(Bytes::from_static(DEFAULT_JSON.as_bytes()))
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )
}

fn num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("bad value for query key `{key}`: `{value}`"))
}

fn route_query(req: &TestRequest, query: &str) -> Result<Reply, String> {
    let mut status = None;
    let mut delay_ms = None;
    let mut bytes = None;
    let mut echo = false;
    let mut gzip = false;
    let mut chunks = None;
    let mut chunk_ms = 10u64;
    let mut location = None;
    let mut fail = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "status" => status = Some(num::<u16>(&key, &value)?),
            "delay_ms" => delay_ms = Some(num::<u64>(&key, &value)?),
            "bytes" => bytes = Some(num::<usize>(&key, &value)?),
            "echo" => echo = value != "0",
            "gzip" => gzip = value != "0",
            "chunks" => chunks = Some(num::<usize>(&key, &value)?),
            "chunk_ms" => chunk_ms = num::<u64>(&key, &value)?,
            "location" => location = Some(value.into_owned()),
            "fail" => match &*value {
                "reset" | "reset_after" | "truncate" => fail = Some(value.into_owned()),
                other => return Err(format!("unknown fail mode `{other}`")),
            },
            _ => {}
        }
    }
    if status.is_some_and(|s| !(100..1000).contains(&s)) {
        return Err("status must be 100..=999".into());
    }

    let (mut reply, body) = if echo {
        let text = echo_text(req);
        (Reply::text(text.clone()), Bytes::from(text))
    } else if let Some(n) = bytes {
        let b = pattern_body(n);
        (Reply::bytes(b.clone()), b)
    } else {
        (default_json(), Bytes::from_static(DEFAULT_JSON.as_bytes()))
    };
    match fail.as_deref() {
        Some("reset") => reply = Reply::reset_before_headers(),
        Some("reset_after") => reply = Reply::reset_after_headers(body.slice(..body.len() / 2)),
        Some("truncate") => {
            let declared = (body.len() as u64).max(1);
            reply = Reply::truncated(body.slice(..body.len() / 2), declared);
        }
        _ => {}
    }
    if let Some(s) = status {
        reply = reply.with_status(s);
    }
    if let Some(ms) = delay_ms {
        reply = reply.delay(Duration::from_millis(ms));
    }
    if gzip {
        reply = reply.gzip();
    }
    if let Some(n) = chunks {
        reply = reply.slow_body(n, Duration::from_millis(chunk_ms));
    }
    if let Some(loc) = location {
        reply = reply.header(header::LOCATION, loc);
    }
    Ok(reply)
}
