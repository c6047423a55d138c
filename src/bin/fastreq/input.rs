//! Reading the input lazily: a bounded line reader, and one request (or one
//! `invalid_request` failure) per line that is not blank or a comment.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fastreq::{Body, Error, ErrorKind};
use futures_util::Stream;
use http::{Method, Request};
use serde::Deserialize;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::resume::Bits;
use crate::service::{Failed, NoResponse};

/// Longest accepted input line; a longer one is an `invalid_request` outcome (its rest is
/// skipped without being buffered).
pub const MAX_LINE: usize = 8 * 1024 * 1024;

const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// One raw input line (without its line ending), capped at the reader's maximum.
#[derive(Debug, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in the input.
    pub number: u64,
    /// The bytes of the line, at most the maximum length.
    pub bytes: Vec<u8>,
    /// The line was longer than the maximum; `bytes` holds its beginning only.
    pub too_long: bool,
}

impl Line {
    /// Blank and `#` lines give no outcome.
    pub fn is_skipped(&self) -> bool {
        let t = self.bytes.trim_ascii_start();
        t.first() == Some(&b'#') || (!self.too_long && t.is_empty())
    }
}

/// Splits an async reader into [`Line`]s of bounded length.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    max: usize,
    number: u64,
}

impl<R> LineReader<R> {
    /// Lines of at most `max` bytes kept.
    pub fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            max,
            number: 0,
        }
    }

    /// Takes from `available` up to the end of the line into `bytes`; returns the bytes
    /// used and whether the line ended.
    fn take(
        max: usize,
        available: &[u8],
        bytes: &mut Vec<u8>,
        too_long: &mut bool,
    ) -> (usize, bool) {
        let (chunk, used, end) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        let room = max.saturating_sub(bytes.len());
        if chunk.len() > room {
            *too_long = true;
        }
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        (used, end)
    }

    fn finish(&mut self, mut bytes: Vec<u8>, too_long: bool) -> Line {
        if !too_long && bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        if self.number == 0 && bytes.starts_with(UTF8_BOM) {
            bytes.drain(..UTF8_BOM.len());
        }
        self.number += 1;
        Line {
            number: self.number,
            bytes,
            too_long,
        }
    }
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    /// The next line, `None` at the end of the input. A UTF-8 byte order mark at the
    /// start of the input is dropped.
    pub async fn next_line(&mut self) -> io::Result<Option<Line>> {
        let mut bytes = Vec::new();
        let mut too_long = false;
        let mut seen_any = false;
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                if !seen_any {
                    return Ok(None);
                }
                break;
            }
            seen_any = true;
            let (used, end) = Self::take(self.max, available, &mut bytes, &mut too_long);
            self.inner.consume(used);
            if end {
                break;
            }
        }
        Ok(Some(self.finish(bytes, too_long)))
    }
}

impl<R: io::BufRead> LineReader<R> {
    /// [`next_line`](LineReader::next_line) of a blocking reader.
    pub fn next_line_blocking(&mut self) -> io::Result<Option<Line>> {
        let mut bytes = Vec::new();
        let mut too_long = false;
        let mut seen_any = false;
        loop {
            let available = match self.inner.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                if !seen_any {
                    return Ok(None);
                }
                break;
            }
            seen_any = true;
            let (used, end) = Self::take(self.max, available, &mut bytes, &mut too_long);
            self.inner.consume(used);
            if end {
                break;
            }
        }
        Ok(Some(self.finish(bytes, too_long)))
    }
}

/// Counts the lines of `reader` that give an outcome (for the progress total).
pub async fn count_requests<R: AsyncBufRead + Unpin>(reader: R) -> io::Result<u64> {
    let mut lines = LineReader::new(reader, 4096);
    let mut n = 0;
    while let Some(line) = lines.next_line().await? {
        // A line cut at 4096 bytes is still one line; only its start matters here (a
        // blank line longer than that is counted although it is skipped: the total is an
        // estimate for the progress bar).
        if !line.is_skipped() {
            n += 1;
        }
    }
    Ok(n)
}

/// Request defaults from `-X` and `-d` (headers from `-H` go to the stack's default headers).
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    /// `-X`.
    pub method: Option<Method>,
    /// `-d`.
    pub body: Option<Bytes>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonLine {
    method: Option<String>,
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: Option<String>,
}

/// Parses a method name (upper-cased, so `post` is `POST`).
pub fn parse_method(s: &str) -> Result<Method, String> {
    let upper = s.trim().to_ascii_uppercase();
    if upper.is_empty() {
        return Err("empty method".into());
    }
    Method::from_bytes(upper.as_bytes()).map_err(|_| format!("invalid method `{}`", s.trim()))
}

fn invalid(line: u64, message: impl std::fmt::Display, url: Option<&str>) -> Failed {
    Failed::unsent(
        Error::new(ErrorKind::InvalidRequest).with_message(format!("line {line}: {message}")),
        url.map(fastreq::redact_url),
    )
}

/// The message of a request-building error without the kind's own prefix.
fn bare_message(e: &Error) -> String {
    match e.message() {
        Some(m) => m.to_owned(),
        None => match std::error::Error::source(e) {
            Some(s) => s.to_string(),
            None => e.to_string(),
        },
    }
}

/// `url` itself, or `http://` + `url` when it has no scheme, as curl does:
/// `127.0.0.1:8080/get`, `example.com/a`, `[::1]:8080/` are plain-HTTP URLs. Only text
/// that starts as a host does (a letter, a digit or `[`) and has no `:` before its path
/// other than a port's is prefixed: `http:/x`, `mailto:a` or `user:pw@h` are left as they
/// are (and refused with a clear error), so nothing of them moves into a path, where a
/// password would no longer be recognised and redacted.
fn with_scheme(url: String) -> String {
    if needs_scheme(&url) {
        format!("http://{url}")
    } else {
        url
    }
}

fn needs_scheme(url: &str) -> bool {
    let Some(first) = url.chars().next() else {
        return false;
    };
    if url.contains("://") || url.contains(char::is_whitespace) {
        return false;
    }
    if first == '[' {
        return true;
    }
    if !first.is_ascii_alphanumeric() {
        return false;
    }
    let authority = url.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return false;
    }
    match authority.split_once(':') {
        None => true,
        Some((_, port)) => !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// The request for a line that is not skipped, or its `invalid_request` failure.
pub fn parse_line(line: &Line, defaults: &Defaults) -> Result<Request<Body>, Failed> {
    if line.too_long {
        return Err(invalid(
            line.number,
            format!("line longer than {MAX_LINE} bytes"),
            None,
        ));
    }
    let text = match std::str::from_utf8(&line.bytes) {
        Ok(t) => t.trim(),
        Err(_) => return Err(invalid(line.number, "line is not valid UTF-8", None)),
    };
    let (method, url, headers, body) = if text.starts_with('{') {
        let json: JsonLine = serde_json::from_str(text)
            .map_err(|e| invalid(line.number, format!("invalid JSON request: {e}"), None))?;
        let method = match &json.method {
            Some(m) => Some(parse_method(m).map_err(|e| invalid(line.number, e, Some(&json.url)))?),
            None => None,
        };
        (
            method,
            with_scheme(json.url),
            json.headers,
            json.body.map(Bytes::from),
        )
    } else {
        (None, with_scheme(text.to_owned()), BTreeMap::new(), None)
    };
    let body = body.or_else(|| defaults.body.clone());
    let method = method
        .or_else(|| defaults.method.clone())
        .unwrap_or(if body.is_some() {
            Method::POST
        } else {
            Method::GET
        });
    let mut builder = fastreq::request(method, &url);
    for (name, value) in &headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if let Some(body) = body {
        builder = builder.body(body);
    }
    builder
        .build()
        .map_err(|e| invalid(line.number, bare_message(&e), Some(&url)))
}

/// Where the input stream leaves a read error that ended it early.
pub type ReadError = Arc<Mutex<Option<io::Error>>>;

/// `--resume`: the indexes whose outcome the output already has; their lines are not
/// even parsed, and each gives a [`NoResponse::Skipped`] outcome.
#[derive(Debug, Clone)]
pub struct Skip {
    /// The indexes to skip.
    pub indexes: Arc<Bits>,
    /// How many were skipped so far (for the progress display).
    pub count: Arc<AtomicU64>,
}

/// The input is read in blocks of this size.
const READ_BUFFER: usize = 64 * 1024;
/// Requests (or their failures) handed from the reader thread at once, at most.
const BATCH: usize = 256;
/// Batches on their way from the reader thread at most.
const BATCHES_IN_FLIGHT: usize = 4;

/// The lazy stream of requests of an input: one item per line that is not blank or a
/// comment, the `index`-th of them for the fan-out's outcome `index`.
///
/// A thread of its own reads the input, parses the lines and sends the requests in
/// batches (of up to [`BATCH`], fewer when the input pauses) over a bounded channel: the
/// input is read only as fast as the requests are taken, and reading, parsing and URL
/// checking stay off the thread that runs the requests. Dropping the stream stops the
/// thread at its next batch (a thread blocked reading a terminal stays until the process
/// exits). A read error ends the stream and is left in `error`.
pub fn requests<R>(
    reader: R,
    defaults: Arc<Defaults>,
    error: ReadError,
    skip: Option<Skip>,
) -> impl Stream<Item = Result<Request<Body>, NoResponse>>
where
    R: io::Read + Send + 'static,
{
    let reader = io::BufReader::with_capacity(READ_BUFFER, reader);
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Item>>(BATCHES_IN_FLIGHT);
    let spawned = std::thread::Builder::new()
        .name("fastreq-input".into())
        .spawn(move || read_requests(reader, &defaults, &error, skip.as_ref(), &tx));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the input thread");
    }
    futures_util::stream::unfold(
        (rx, Vec::new().into_iter()),
        |(mut rx, mut batch)| async move {
            loop {
                if let Some(item) = batch.next() {
                    return Some((item, (rx, batch)));
                }
                batch = rx.recv().await?.into_iter();
            }
        },
    )
}

type Item = Result<Request<Body>, NoResponse>;

/// The input thread: reads, parses and sends batches until the end, an error, or the
/// receiver is gone.
fn read_requests<R: io::Read>(
    reader: io::BufReader<R>,
    defaults: &Defaults,
    error: &ReadError,
    skip: Option<&Skip>,
    tx: &tokio::sync::mpsc::Sender<Vec<Item>>,
) {
    let mut lines = LineReader::new(reader, MAX_LINE);
    let mut index = 0usize;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        // Send what is ready before a read that may block (a pipe, a terminal), so that
        // requests never wait behind a slow input.
        if !batch.is_empty() && (batch.len() >= BATCH || lines.inner.buffer().is_empty()) {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if tx.blocking_send(full).is_err() {
                return;
            }
        }
        match lines.next_line_blocking() {
            Ok(Some(line)) if line.is_skipped() => {}
            Ok(Some(line)) => {
                let item = match skip {
                    Some(skip) if skip.indexes.contains(index) => {
                        skip.count.fetch_add(1, Ordering::Relaxed);
                        Err(NoResponse::Skipped)
                    }
                    _ => parse_line(&line, defaults).map_err(NoResponse::Failed),
                };
                batch.push(item);
                index += 1;
            }
            Ok(None) => break,
            Err(e) => {
                *error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                break;
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    async fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut r = LineReader::new(input, max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().await.unwrap() {
            out.push(l);
        }
        out
    }

    fn line(n: u64, s: &str) -> Line {
        Line {
            number: n,
            bytes: s.as_bytes().to_vec(),
            too_long: false,
        }
    }

    #[tokio::test]
    async fn reader_splits_lines_and_caps_length() {
        let got = lines(b"a\r\nbb\n\nccc", 100).await;
        assert_eq!(
            got,
            [line(1, "a"), line(2, "bb"), line(3, ""), line(4, "ccc")]
        );
        assert!(lines(b"", 100).await.is_empty());
        assert_eq!(lines(b"\n", 100).await, [line(1, "")]);
        assert_eq!(
            lines(b"\xef\xbb\xbf# c\n\xef\xbb\xbfx", 100).await,
            [
                line(1, "# c"),
                Line {
                    number: 2,
                    bytes: b"\xef\xbb\xbfx".to_vec(),
                    too_long: false
                }
            ]
        );

        let got = lines(b"0123456789\nok\n", 4).await;
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].bytes, b"0123");
        assert!(got[0].too_long);
        assert_eq!(got[1], line(2, "ok"));
    }

    #[tokio::test]
    async fn reader_caps_across_buffer_refills() {
        // A reader with a tiny buffer: the line arrives in many pieces.
        let data = [b'x'; 100];
        let mut input = data.to_vec();
        input.extend_from_slice(b"\nend\n");
        let buffered = tokio::io::BufReader::with_capacity(7, &input[..]);
        let mut r = LineReader::new(buffered, 30);
        let first = r.next_line().await.unwrap().unwrap();
        assert!(first.too_long);
        assert_eq!(first.bytes.len(), 30);
        assert_eq!(r.next_line().await.unwrap().unwrap(), line(2, "end"));
        assert!(r.next_line().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn counting_matches_the_stream() {
        let input = b"# c\n\nhttp://a.test/\n  \t\nnot a url\n  # indented comment\n{\"url\":1}\n";
        assert_eq!(count_requests(&input[..]).await.unwrap(), 3);
        let err = ReadError::default();
        let items: Vec<_> = requests(&input[..], Arc::default(), err.clone(), None)
            .collect()
            .await;
        assert_eq!(items.len(), 3);
        assert!(items[0].is_ok());
        assert!(matches!(items[1], Err(NoResponse::Failed(_))));
        assert!(matches!(items[2], Err(NoResponse::Failed(_))));
        assert!(err.lock().unwrap().is_none());
    }

    #[tokio::test]
    async fn skipped_indexes_keep_their_place() {
        let input = b"# c
http://a.test/0

http://a.test/1
not a url
http://a.test/3
";
        let mut indexes = Bits::default();
        indexes.insert(1);
        indexes.insert(2);
        let skip = Skip {
            indexes: Arc::new(indexes),
            count: Arc::default(),
        };
        let items: Vec<_> = requests(
            &input[..],
            Arc::default(),
            ReadError::default(),
            Some(skip.clone()),
        )
        .collect()
        .await;
        assert_eq!(items.len(), 4);
        assert_eq!(items[0].as_ref().unwrap().uri(), "http://a.test/0");
        assert!(matches!(items[1], Err(NoResponse::Skipped)));
        assert!(matches!(items[2], Err(NoResponse::Skipped)), "not parsed");
        assert_eq!(items[3].as_ref().unwrap().uri(), "http://a.test/3");
        assert_eq!(skip.count.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn url_lines_take_the_defaults() {
        let d = Defaults::default();
        let req = parse_line(&line(1, "  http://a.test/x?q=1  "), &d).unwrap();
        assert_eq!(req.method(), Method::GET);
        assert_eq!(req.uri(), "http://a.test/x?q=1");

        let d = Defaults {
            method: None,
            body: Some(Bytes::from_static(b"hi")),
        };
        let req = parse_line(&line(1, "http://a.test/"), &d).unwrap();
        assert_eq!(req.method(), Method::POST, "-d without -X means POST");

        let d = Defaults {
            method: Some(Method::PUT),
            body: None,
        };
        let req = parse_line(&line(1, "http://a.test/"), &d).unwrap();
        assert_eq!(req.method(), Method::PUT);
    }

    #[test]
    fn lines_without_a_scheme_are_http() {
        let d = Defaults::default();
        for (text, want) in [
            ("127.0.0.1:8080/get", "http://127.0.0.1:8080/get"),
            ("example.com/a?b=1", "http://example.com/a?b=1"),
            ("example.com", "http://example.com/"),
            ("localhost:3000", "http://localhost:3000/"),
            ("https://a.test/x", "https://a.test/x"),
            (r#"{"url":"a.test/j"}"#, "http://a.test/j"),
        ] {
            let req = parse_line(&line(1, text), &d).unwrap();
            assert_eq!(req.uri(), want, "{text}");
        }
        // A scheme other than http(s) is still refused, not prefixed.
        assert!(parse_line(&line(1, "ftp://a.test/"), &d).is_err());
        assert_eq!(
            parse_line(&line(1, "[::1]:8080/x"), &d).unwrap().uri(),
            "http://[::1]:8080/x"
        );
        // Not host-like: left as it is, refused, and no password moves into a path.
        for text in [
            "http:/alice:s3cret@[::1/a",
            "mailto:a@b.test",
            "alice:s3cret@a.test/",
            "a.test:/x",
            "/just/a/path",
            "-x",
        ] {
            let f = parse_line(&line(1, text), &d).unwrap_err();
            assert_eq!(f.error.kind(), ErrorKind::InvalidRequest, "{text}");
            let shown = format!("{} {:?}", f.error, f.url);
            assert!(!shown.contains("s3cret"), "{text}: {shown}");
            assert!(!shown.contains("http://http"), "{text}: {shown}");
        }
    }

    #[test]
    fn json_lines_override_the_defaults() {
        let d = Defaults {
            method: Some(Method::PUT),
            body: Some(Bytes::from_static(b"default")),
        };
        let req = parse_line(
            &line(
                1,
                r#"{"method":"patch","url":"http://a.test/j","headers":{"X-A":"1"},"body":"own"}"#,
            ),
            &d,
        )
        .unwrap();
        assert_eq!(req.method(), Method::PATCH);
        assert_eq!(req.headers()["x-a"], "1");
        let req = parse_line(&line(1, r#"{"url":"http://a.test/j"}"#), &d).unwrap();
        assert_eq!(req.method(), Method::PUT);
    }

    #[test]
    fn bad_lines_are_invalid_requests() {
        let d = Defaults::default();
        for (text, needle) in [
            ("not a url", "invalid URL"),
            ("ftp://a.test/", "scheme"),
            ("{\"url\":5}", "invalid JSON"),
            (
                "{\"url\":\"http://a.test/\",\"header\":{}}",
                "unknown field `header`",
            ),
            (
                "{\"method\":\"GE T\",\"url\":\"http://a.test/\"}",
                "invalid method",
            ),
            (
                "{\"url\":\"http://a.test/\",\"headers\":{\"bad name\":\"v\"}}",
                "header",
            ),
            ("{\"url\":", "invalid JSON"),
        ] {
            let f = parse_line(&line(7, text), &d).unwrap_err();
            assert_eq!(f.error.kind(), ErrorKind::InvalidRequest, "{text}");
            let msg = f.error.to_string();
            assert!(
                msg.contains("line 7: ") && msg.contains(needle),
                "{text}: {msg}"
            );
        }
        let f = parse_line(
            &Line {
                number: 2,
                bytes: vec![0xff, b'a'],
                too_long: false,
            },
            &d,
        )
        .unwrap_err();
        assert!(f.error.to_string().contains("UTF-8"));
        // The URL of a bad line is reported, redacted.
        let f = parse_line(&line(1, "http://u:pw@a.test:99999/?token=t"), &d).unwrap_err();
        assert_eq!(
            f.url.as_deref(),
            Some("http://a.test:99999/?token=REDACTED")
        );
    }

    #[test]
    fn skipped_lines() {
        assert!(line(1, "").is_skipped());
        assert!(line(1, " \t").is_skipped());
        assert!(line(1, "# x").is_skipped());
        assert!(line(1, "   #x").is_skipped());
        assert!(!line(1, "http://a.test/#frag").is_skipped());
        let long_blank = Line {
            number: 1,
            bytes: b"   ".to_vec(),
            too_long: true,
        };
        assert!(!long_blank.is_skipped());
    }
}
