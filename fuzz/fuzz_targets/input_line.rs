//! The CLI's input: the bounded line reader and the line parser (plain URL or JSON line).
//! Never a panic; lines are split and capped exactly; a bad line is an `invalid_request`
//! naming its line number, and neither its message nor its URL shows a password, a secret
//! query parameter or a header value.
#![no_main]

// The CLI's own modules, compiled here as they are (the binary has no library target).
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/fastreq/input.rs"]
mod input;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/fastreq/resume.rs"]
mod resume;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/fastreq/service.rs"]
mod service;

/// What `main.rs` gives the modules above: a line on stderr that never panics.
#[allow(dead_code)]
pub fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

use bytes::Bytes;
use fastreq::{ErrorKind, DEFAULT_REDACTED_PARAMS};
use futures_util::FutureExt as _;
use http::Method;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

use input::{parse_line, parse_method, Defaults, Line, LineReader};

#[derive(Arbitrary, Debug)]
enum Text {
    /// Raw input bytes, split into lines by the reader.
    Raw(Vec<u8>),
    /// A URL with a password and a secret query parameter, plain or in a JSON line.
    Secret {
        scheme: String,
        user: String,
        pass: String,
        host: String,
        path: String,
        param: u8,
        token: String,
        json: Option<Json>,
    },
}

#[derive(Arbitrary, Debug)]
struct Json {
    method: Option<String>,
    header: String,
    value: String,
    body: Option<String>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    text: Text,
    number: u64,
    method: Option<u8>,
    body: Option<Vec<u8>>,
}

const METHODS: [Method; 6] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::HEAD,
    Method::DELETE,
    Method::PATCH,
];

const BOM: &[u8] = b"\xef\xbb\xbf";

/// Every line of `raw` as the reader must give it.
fn expected_lines(raw: &[u8], max: usize) -> Vec<Line> {
    if raw.is_empty() {
        return Vec::new();
    }
    let mut pieces: Vec<&[u8]> = raw.split(|&b| b == b'\n').collect();
    if raw.ends_with(b"\n") {
        pieces.pop();
    }
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, piece)| {
            let too_long = piece.len() > max;
            let mut bytes = piece[..piece.len().min(max)].to_vec();
            if !too_long && bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
            if i == 0 && bytes.starts_with(BOM) {
                bytes.drain(..BOM.len());
            }
            Line {
                number: i as u64 + 1,
                bytes,
                too_long,
            }
        })
        .collect()
}

fn check(line: &Line, defaults: &Defaults, secrets: &[&str]) {
    match parse_line(line, defaults) {
        Ok(req) => {
            assert!(matches!(req.uri().scheme_str(), Some("http" | "https")));
            assert!(req.uri().host().is_some_and(|h| !h.is_empty()));
        }
        Err(failed) => {
            assert_eq!(failed.error.kind(), ErrorKind::InvalidRequest);
            let message = failed.error.to_string();
            assert!(
                message.contains(&format!("line {}: ", line.number)),
                "{message}"
            );
            let shown = format!("{message} {:?} {:?}", failed.error, failed.url);
            for secret in secrets {
                assert!(!shown.contains(secret), "{secret:?} shown: {shown}");
            }
        }
    }
}

fn keep(s: &str, banned: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !c.is_control() && !banned.contains(*c))
        .collect()
}

fuzz_target!(|input: Input| {
    let defaults = Defaults {
        method: input
            .method
            .map(|m| METHODS[usize::from(m) % METHODS.len()].clone()),
        body: input.body.map(Bytes::from),
    };
    match input.text {
        Text::Raw(raw) => {
            let max = 1 + (input.number % 64) as usize;
            let mut reader = LineReader::new(&raw[..], max);
            let mut got = Vec::new();
            while let Some(line) = reader
                .next_line()
                .now_or_never()
                .expect("a slice is always ready")
                .expect("a slice never fails")
            {
                got.push(line);
            }
            assert_eq!(got, expected_lines(&raw, max));
            for line in &got {
                if !line.is_skipped() {
                    check(line, &defaults, &[]);
                }
            }
            // The whole input as one line, uncut.
            let whole = Line {
                number: input.number,
                bytes: raw,
                too_long: false,
            };
            check(&whole, &defaults, &[]);
            if let Ok(text) = std::str::from_utf8(&whole.bytes) {
                let _ = parse_method(text);
            }
        }
        Text::Secret {
            scheme,
            user,
            pass,
            host,
            path,
            param,
            token,
            json,
        } => {
            // What ends a URL's authority, or its query parameter, is kept out of the
            // secrets, so that they stay a password and a parameter value.
            let scheme = keep(&scheme, ":/?#@\\");
            let user = keep(&user, ":/?#@\\");
            let pass = format!("Q9p{}X9p", keep(&pass, "/?#@\\"));
            let host = keep(&host, "/?#@\\");
            let path = keep(&path, "?#");
            let name = DEFAULT_REDACTED_PARAMS[usize::from(param) % DEFAULT_REDACTED_PARAMS.len()];
            let token = format!("Q9t{}X9t", keep(&token, "&#;"));
            let url = format!("{scheme}://{user}:{pass}@{host}/{path}?{name}={token}");
            let mut secrets = vec!["Q9p", "X9p", "Q9t", "X9t"];
            let mut others = format!("{scheme}{user}{host}{path}");
            let text = match json {
                None => url,
                Some(j) => {
                    secrets.extend(["Q9h", "X9h"]);
                    others.push_str(&j.header);
                    others.push_str(j.method.as_deref().unwrap_or(""));
                    others.push_str(j.body.as_deref().unwrap_or(""));
                    let mut line = serde_json::json!({
                        "url": url,
                        "headers": { j.header: format!("Q9h{}X9h", j.value) },
                    });
                    if let Some(m) = j.method {
                        line["method"] = m.into();
                    }
                    if let Some(b) = j.body {
                        line["body"] = b.into();
                    }
                    line.to_string()
                }
            };
            secrets.retain(|s| !others.contains(s));
            let line = Line {
                number: input.number,
                bytes: text.into_bytes(),
                too_long: false,
            };
            check(&line, &defaults, &secrets);
        }
    }
});
