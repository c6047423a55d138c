//! `Retry-After`: never a panic or an overflow; seconds are taken exactly (absurd values
//! saturate); a date gives at most its distance from `now`; repeated different values are
//! refused.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fastreq::retry::retry_after;
use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    values: Vec<Vec<u8>>,
    now_secs: u64,
    now_nanos: u32,
}

/// 9999-12-31T23:59:59Z, the last instant an HTTP-date can name.
const LAST_HTTP_DATE: u64 = 253_402_300_799;

fuzz_target!(|input: Input| {
    let mut headers = HeaderMap::new();
    let mut texts = Vec::new();
    for v in input.values.iter().take(8) {
        if let Ok(value) = HeaderValue::from_bytes(v) {
            texts.push(value.clone());
            headers.append(RETRY_AFTER, value);
        }
    }
    let offset = Duration::new(
        input.now_secs % (LAST_HTTP_DATE + 1),
        input.now_nanos % 1_000_000_000,
    );
    let Some(now) = UNIX_EPOCH.checked_add(offset) else {
        return;
    };
    let got = retry_after(&headers, now);
    let Some(first) = texts.first() else {
        assert_eq!(got, None);
        return;
    };
    if texts.iter().any(|t| t != first) {
        assert_eq!(got, None, "different values are refused");
        return;
    }
    let Some(delay) = got else { return };
    let text = first.to_str().expect("a parsed value is text").trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let secs = text.parse::<u64>().unwrap_or(u64::MAX);
        assert_eq!(delay, Duration::from_secs(secs));
    } else {
        // A date: at most its distance from now, so never past the last HTTP-date.
        assert!(
            delay <= Duration::from_secs(LAST_HTTP_DATE + 1),
            "{text:?}: {delay:?}"
        );
        let at = httpdate::parse_http_date(text).expect("accepted as a date");
        assert_eq!(delay, at.duration_since(now).unwrap_or_default());
    }
    // What callers do with it: a deadline from now, checked.
    let _ = std::time::Instant::now().checked_add(delay);
    let _ = SystemTime::now().checked_add(delay);
});
