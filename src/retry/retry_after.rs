//! Parsing `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.

use std::time::{Duration, SystemTime};

use http::header::RETRY_AFTER;
use http::HeaderMap;

/// The delay a `Retry-After` header asks for, measured from `now`.
///
/// Accepts both forms: a whole number of seconds (`120`) and an HTTP-date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, also the obsolete RFC 850 and asctime forms). A date in
/// the past gives `Duration::ZERO`. A missing, repeated-but-different or malformed value
/// gives `None`.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use fastreq::retry::retry_after;
///
/// let mut h = http::HeaderMap::new();
/// h.insert("retry-after", "7".parse().unwrap());
/// assert_eq!(retry_after(&h, SystemTime::now()), Some(Duration::from_secs(7)));
///
/// let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
/// h.insert("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT".parse().unwrap());
/// assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
/// ```
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let mut values = headers.get_all(RETRY_AFTER).iter();
    let first = values.next()?;
    if values.any(|v| v != first) {
        return None;
    }
    let s = first.to_str().ok()?.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        // Saturate absurd values instead of overflowing; callers cap them anyway.
        return Some(Duration::from_secs(s.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(s).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(RETRY_AFTER, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forms() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(retry_after(&headers(&["0"]), now), Some(Duration::ZERO));
        assert_eq!(
            retry_after(&headers(&[" 3 "]), now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&headers(&["99999999999999999999999"]), now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            retry_after(&headers(&["Sun, 06 Nov 1994 08:50:37 GMT"]), now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            retry_after(&headers(&["Sunday, 06-Nov-94 08:49:47 GMT"]), now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after(&headers(&["Sun Nov  6 08:49:39 1994"]), now),
            Some(Duration::from_secs(2))
        );
        // In the past: retry now.
        assert_eq!(
            retry_after(&headers(&["Sat, 05 Nov 1994 08:49:37 GMT"]), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers(&[]), now), None);
        assert_eq!(retry_after(&headers(&["-1"]), now), None);
        assert_eq!(retry_after(&headers(&["1.5"]), now), None);
        assert_eq!(retry_after(&headers(&["soon"]), now), None);
        assert_eq!(retry_after(&headers(&["1", "2"]), now), None);
        assert_eq!(
            retry_after(&headers(&["5", "5"]), now),
            Some(Duration::from_secs(5))
        );
    }
}
