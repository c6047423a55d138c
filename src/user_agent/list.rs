//! The default user agent, the built-in browser list, and parsing of user agent lists.

use std::path::Path;

use http::HeaderValue;

use crate::error::{Error, ErrorKind};

/// What fastreq sends by default: `fastreq/<version>`.
pub const DEFAULT_USER_AGENT: &str = concat!("fastreq/", env!("CARGO_PKG_VERSION"));

/// The built-in list of current real browser user agents that rotation uses by default.
///
/// Desktop and mobile Chrome, Firefox, Safari and Edge on Windows, macOS, Linux, Android,
/// iOS and iPadOS, in the forms those browsers send (Chromium's reduced user agent with
/// `.0.0.0` minor versions; Safari 26 on iOS with the OS version frozen at `18_6`).
/// Every entry is distinct and a valid header value (tests check both).
pub const BROWSER_USER_AGENTS: &[&str] = &[
    // Chrome, desktop
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/144.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/143.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/144.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/143.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/144.0.0.0 Safari/537.36",
    // Chrome, mobile
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/144.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/144.0.7559.85 Mobile/15E148 Safari/604.1",
    // Firefox, desktop
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:147.0) Gecko/20100101 Firefox/147.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:146.0) Gecko/20100101 Firefox/146.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:147.0) Gecko/20100101 Firefox/147.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:147.0) Gecko/20100101 Firefox/147.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:146.0) Gecko/20100101 Firefox/146.0",
    // Firefox, mobile
    "Mozilla/5.0 (Android 16; Mobile; rv:147.0) Gecko/147.0 Firefox/147.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/147.0 Mobile/15E148 Safari/605.1.15",
    // Safari
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.2 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.2 Mobile/15E148 Safari/604.1",
    // Edge
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/144.0.0.0 Safari/537.36 Edg/144.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/143.0.0.0 Safari/537.36 Edg/143.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/144.0.0.0 Safari/537.36 Edg/144.0.0.0",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/144.0.0.0 Mobile Safari/537.36 EdgA/144.0.0.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.0 EdgiOS/144.0.3719.82 Mobile/15E148 Safari/605.1.15",
];

/// The built-in list as header values (each checked by `HeaderValue::from_static`).
pub(super) fn builtin() -> Vec<HeaderValue> {
    BROWSER_USER_AGENTS
        .iter()
        .map(|s| HeaderValue::from_static(s))
        .collect()
}

/// Checks one user agent; `at` says where it came from, for the error message.
pub(super) fn parse_one(value: &str, at: impl FnOnce() -> String) -> Result<HeaderValue, Error> {
    if value.trim().is_empty() {
        return Err(
            Error::new(ErrorKind::Config).with_message(format!("empty user agent at {}", at()))
        );
    }
    HeaderValue::from_str(value).map_err(|e| {
        Error::new(ErrorKind::Config)
            .with_message(format!(
                "invalid user agent at {}: {value:?} is not a valid header value",
                at()
            ))
            .with_source(e)
    })
}

/// Parses one user agent per line; blank lines and lines starting with `#` are skipped.
/// Surrounding whitespace is trimmed. `origin` names the source in errors.
pub(super) fn parse_lines(text: &str, origin: &str) -> Result<Vec<HeaderValue>, Error> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_one(line, || format!("{origin} line {}", n + 1))?);
    }
    if out.is_empty() {
        return Err(
            Error::new(ErrorKind::Config).with_message(format!("{origin} holds no user agent"))
        );
    }
    Ok(out)
}

/// Reads and parses a user agent file.
pub(super) fn read_file(path: &Path) -> Result<Vec<HeaderValue>, Error> {
    let origin = format!("user agent file `{}`", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(ErrorKind::Config)
            .with_message(format!("cannot read {origin}: {e}"))
            .with_source(e)
    })?;
    parse_lines(&text, &origin)
}
