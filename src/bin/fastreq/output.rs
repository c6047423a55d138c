//! The JSON lines written for each outcome (design §9), and saving bodies to files.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::service::{Failed, Sent};

/// One output line.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    /// Position of the request among the input lines that are not skipped.
    pub index: usize,
    /// Request URL, redacted (`null` for a line without a usable URL).
    pub url: Option<&'a str>,
    /// URL of the response after redirects, redacted (`null` on failure).
    pub final_url: Option<Cow<'a, str>>,
    /// HTTP status (`null` on failure).
    pub status: Option<u16>,
    /// Milliseconds from sending to the end of the body (or to the failure).
    pub elapsed_ms: f64,
    /// The part of `elapsed_ms` spent waiting (rate limits, slots, proxies, backoff).
    pub wait_ms: f64,
    /// Attempts made (0 for an invalid line).
    pub attempts: u32,
    /// Body length (`null` on failure).
    pub bytes: Option<usize>,
    /// HTTP version of the response: `http/1.1`, `h2`… (`null` on failure).
    pub version: Option<&'static str>,
    /// Proxy used, password redacted (`null`: direct).
    pub proxy: Option<&'a str>,
    /// The failure, if any.
    pub error: Option<ErrorRecord<'a>>,
    /// With `--include-body`: the body as lossy UTF-8 (`null` on failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Option<Cow<'a, str>>>,
    /// With `--save-bodies`: the file the body was written to (`null` when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_file: Option<Option<String>>,
    /// With `--header-fields` or `--include-headers`: response headers (`null` on failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Option<Headers<'a>>>,
}

/// `"headers": {"name": "value", …}`: the response headers named (all of them when
/// `names` is `None`), in lower case; absent ones are left out, repeated ones joined with
/// `", "`, values as lossy UTF-8. Nothing is copied: written straight from the header map.
#[derive(Debug, Clone, Copy)]
pub struct Headers<'a> {
    /// The response headers.
    pub map: &'a http::HeaderMap,
    /// The names asked for (`None`: every one).
    pub names: Option<&'a [http::HeaderName]>,
}

impl<'a> Headers<'a> {
    /// Calls `f(name, values)` for each header written.
    fn each(&self, mut f: impl FnMut(&'a str, http::header::GetAll<'a, http::HeaderValue>)) {
        match self.names {
            Some(names) => {
                for (i, name) in names.iter().enumerate() {
                    // A name asked for twice is written once.
                    if names[..i].contains(name) || !self.map.contains_key(name) {
                        continue;
                    }
                    f(name.as_str(), self.map.get_all(name));
                }
            }
            None => {
                for name in self.map.keys() {
                    f(name.as_str(), self.map.get_all(name));
                }
            }
        }
    }

    /// Appends the values of one header joined with `", "`.
    fn join(values: http::header::GetAll<'_, http::HeaderValue>, out: &mut String) {
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&String::from_utf8_lossy(v.as_bytes()));
        }
    }
}

impl Serialize for Headers<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(None)?;
        let mut result = Ok(());
        self.each(|name, values| {
            if result.is_ok() {
                let mut joined = String::new();
                Headers::join(values, &mut joined);
                result = map.serialize_entry(name, &joined);
            }
        });
        result?;
        map.end()
    }
}

/// `"error": {"kind": …, "message": …}`.
#[derive(Debug, Serialize)]
pub struct ErrorRecord<'a> {
    /// `ErrorKind` in snake case.
    pub kind: &'static str,
    /// Human-readable, URLs redacted.
    pub message: Cow<'a, str>,
}

/// The name of an HTTP version as ALPN spells it (`http/1.1`, `h2`, `h3`).
pub fn version_name(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "http/0.9",
        http::Version::HTTP_10 => "http/1.0",
        http::Version::HTTP_11 => "http/1.1",
        http::Version::HTTP_2 => "h2",
        http::Version::HTTP_3 => "h3",
        _ => "unknown",
    }
}

/// Milliseconds with microsecond resolution.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl<'a> Record<'a> {
    /// The line for a response.
    pub fn sent(index: usize, sent: &'a Sent) -> Self {
        let f = &sent.fetched;
        Record {
            index,
            url: Some(&sent.url),
            final_url: Some(crate::service::redact(f.final_url_str())),
            status: Some(f.status().as_u16()),
            elapsed_ms: millis(f.elapsed()),
            wait_ms: millis(f.wait()),
            attempts: f.attempts(),
            bytes: Some(f.body().len()),
            version: Some(version_name(f.version())),
            proxy: sent.proxy.as_deref(),
            error: None,
            body: None,
            body_file: None,
            headers: None,
        }
    }

    /// The line for a failure.
    pub fn failed(index: usize, failed: &'a Failed) -> Self {
        Record {
            index,
            url: failed.url.as_deref(),
            final_url: None,
            status: None,
            elapsed_ms: millis(failed.elapsed),
            wait_ms: millis(failed.wait),
            attempts: failed.attempts,
            bytes: None,
            version: None,
            proxy: failed.proxy.as_deref(),
            error: Some(ErrorRecord {
                kind: failed.error.kind().as_str(),
                message: Cow::Owned(failed.error.to_string()),
            }),
            body: None,
            body_file: None,
            headers: None,
        }
    }
}

/// What a line carries beyond the bare record: response headers (`--include-headers`,
/// `--header-fields`), the body (`--include-body`), the file of the saved body
/// (`--save-bodies`). Shared by file runs and queue workers.
#[derive(Debug)]
pub struct Extras {
    include_body: bool,
    save_dir: Option<PathBuf>,
    /// `Some(None)`: every header; `Some(Some(names))`: those.
    headers: Option<Option<Vec<http::HeaderName>>>,
    /// A body could not be saved (the exit status says so).
    pub save_failed: bool,
}

impl Extras {
    /// From the flags of `fetch`.
    pub fn new(args: &crate::args::FetchArgs) -> Self {
        Extras {
            include_body: args.include_body,
            save_dir: args.save_bodies.clone(),
            headers: if args.include_headers {
                Some(None)
            } else if !args.header_fields.is_empty() {
                Some(Some(args.header_fields.clone()))
            } else {
                None
            },
            save_failed: false,
        }
    }

    /// The full record of response `index`, its body saved first when asked (a failure to
    /// save is reported on stderr and in `save_failed`; the line says `"body_file":null`).
    pub async fn sent<'a>(&'a mut self, index: usize, sent: &'a Sent) -> Record<'a> {
        let fetched = &sent.fetched;
        let mut record = Record::sent(index, sent);
        if let Some(names) = &self.headers {
            record.headers = Some(Some(Headers {
                map: fetched.headers(),
                names: names.as_deref(),
            }));
        }
        if self.include_body {
            record.body = Some(Some(String::from_utf8_lossy(fetched.body())));
        }
        if let Some(dir) = &self.save_dir {
            record.body_file = Some(match save_body(dir, index, fetched.body()).await {
                Ok(path) => Some(path.display().to_string()),
                Err(e) => {
                    crate::say(&format!(
                        "fastreq: error: cannot save the body of request {index}: {e}"
                    ));
                    self.save_failed = true;
                    None
                }
            });
        }
        record
    }

    /// The full record of failure `index` (each extra asked for is `null`).
    pub fn failed<'a>(&self, index: usize, failed: &'a Failed) -> Record<'a> {
        let mut record = Record::failed(index, failed);
        if self.headers.is_some() {
            record.headers = Some(None);
        }
        if self.include_body {
            record.body = Some(None);
        }
        if self.save_dir.is_some() {
            record.body_file = Some(None);
        }
        record
    }
}

/// The name of the file holding the body of outcome `index`: `<index>.body`. Made of
/// digits only, so no input can make it escape the directory.
pub fn body_file_name(index: usize) -> String {
    format!("{index}.body")
}

/// Writes `body` to `dir/<index>.body`; returns the path written.
pub async fn save_body(dir: &Path, index: usize, body: &[u8]) -> std::io::Result<PathBuf> {
    let path = dir.join(body_file_name(index));
    tokio::fs::write(&path, body).await?;
    Ok(path)
}

/// Appends `s` as a JSON string, escaped as serde_json does: `"`, `\\` and control
/// characters (`\n`, `\r`, `\t`, `\b`, `\f`, else `\u00XX`); everything else, non-ASCII
/// included, as is.
fn json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    // Most strings (URLs, kinds, versions) need no escape: one pass without branches
    // that the compiler vectorises, then one copy.
    if !bytes.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    }) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn json_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends an unsigned integer in decimal.
fn json_uint(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends milliseconds as serde_json writes an `f64`; the usual zero without formatting.
fn json_ms(out: &mut Vec<u8>, ms: f64) {
    if ms == 0.0 && ms.is_sign_positive() {
        out.extend_from_slice(b"0.0");
    } else {
        let _ = serde_json::to_writer(&mut *out, &ms);
    }
}

fn json_opt_uint(out: &mut Vec<u8>, n: Option<u64>) {
    match n {
        Some(n) => json_uint(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

impl Record<'_> {
    /// Appends the record as one JSON object (no newline): the bytes `serde_json` writes for
    /// it, without building anything on the way.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"index\":");
        json_uint(out, self.index as u64);
        out.extend_from_slice(b",\"url\":");
        json_opt_str(out, self.url);
        out.extend_from_slice(b",\"final_url\":");
        json_opt_str(out, self.final_url.as_deref());
        out.extend_from_slice(b",\"status\":");
        json_opt_uint(out, self.status.map(u64::from));
        out.extend_from_slice(b",\"elapsed_ms\":");
        // serde_json's own float format (shortest round-trip, `1.0` for whole numbers); a
        // number never fails to serialize.
        let _ = serde_json::to_writer(&mut *out, &self.elapsed_ms);
        out.extend_from_slice(b",\"wait_ms\":");
        json_ms(out, self.wait_ms);
        out.extend_from_slice(b",\"attempts\":");
        json_uint(out, u64::from(self.attempts));
        out.extend_from_slice(b",\"bytes\":");
        json_opt_uint(out, self.bytes.map(|b| b as u64));
        out.extend_from_slice(b",\"version\":");
        json_opt_str(out, self.version);
        out.extend_from_slice(b",\"proxy\":");
        json_opt_str(out, self.proxy);
        out.extend_from_slice(b",\"error\":");
        match &self.error {
            None => out.extend_from_slice(b"null"),
            Some(e) => {
                out.extend_from_slice(b"{\"kind\":");
                json_str(out, e.kind);
                out.extend_from_slice(b",\"message\":");
                json_str(out, &e.message);
                out.push(b'}');
            }
        }
        if let Some(body) = &self.body {
            out.extend_from_slice(b",\"body\":");
            json_opt_str(out, body.as_deref());
        }
        if let Some(file) = &self.body_file {
            out.extend_from_slice(b",\"body_file\":");
            json_opt_str(out, file.as_deref());
        }
        if let Some(headers) = &self.headers {
            out.extend_from_slice(b",\"headers\":");
            match headers {
                None => out.extend_from_slice(b"null"),
                Some(h) => {
                    out.push(b'{');
                    let mut first = true;
                    h.each(|name, values| {
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        json_str(out, name);
                        out.push(b':');
                        let mut values = values.iter();
                        match (values.next(), values.next()) {
                            // One value (the usual case): written without a copy.
                            (Some(v), None) => {
                                json_str(out, &String::from_utf8_lossy(v.as_bytes()))
                            }
                            _ => {
                                let mut joined = String::new();
                                Headers::join(h.map.get_all(name), &mut joined);
                                json_str(out, &joined);
                            }
                        }
                    });
                    out.push(b'}');
                }
            }
        }
        out.push(b'}');
    }

    /// Appends the brief JSON line recording an outcome that a status filter dropped, in
    /// FILE.filtered for `--resume`: `{"index":…,"url":…,"status":…,"error":null}`, or
    /// `"error":{"kind":…}` for a failure.
    pub fn write_brief_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"index\":");
        json_uint(out, self.index as u64);
        out.extend_from_slice(b",\"url\":");
        json_opt_str(out, self.url);
        out.extend_from_slice(b",\"status\":");
        json_opt_uint(out, self.status.map(u64::from));
        out.extend_from_slice(b",\"error\":");
        match &self.error {
            None => out.extend_from_slice(b"null"),
            Some(e) => {
                out.extend_from_slice(b"{\"kind\":");
                json_str(out, e.kind);
                out.push(b'}');
            }
        }
        out.push(b'}');
    }

    /// Appends the record as one CSV row (no newline), columns [`CSV_HEADER`].
    pub fn write_csv(&self, out: &mut Vec<u8>) {
        json_uint(out, self.index as u64);
        out.push(b',');
        csv_str(out, self.url.unwrap_or(""));
        out.push(b',');
        if let Some(s) = self.status {
            json_uint(out, u64::from(s));
        }
        out.push(b',');
        let _ = serde_json::to_writer(&mut *out, &self.elapsed_ms);
        out.push(b',');
        json_ms(out, self.wait_ms);
        out.push(b',');
        if let Some(b) = self.bytes {
            json_uint(out, b as u64);
        }
        out.push(b',');
        json_uint(out, u64::from(self.attempts));
        out.push(b',');
        if let Some(e) = &self.error {
            out.extend_from_slice(e.kind.as_bytes());
            out.push(b',');
            csv_str(out, &e.message);
        } else {
            out.push(b',');
        }
    }
}

/// The header row of `--format csv`.
pub const CSV_HEADER: &str = "index,url,status,elapsed_ms,wait_ms,bytes,attempts,error_kind,error";

/// Appends `s` as a CSV field (RFC 4180): as is, or in double quotes (with `"` doubled)
/// when it holds a comma, a quote or a line break.
fn csv_str(out: &mut Vec<u8>, s: &str) {
    if !s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    out.push(b'"');
    for part in s.split('"').enumerate() {
        if part.0 > 0 {
            out.extend_from_slice(b"\"\"");
        }
        out.extend_from_slice(part.1.as_bytes());
    }
    out.push(b'"');
}

/// How [`Output`] writes records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// [`Record::write_json`].
    Json,
    /// [`Record::write_csv`], after a header row.
    Csv,
    /// [`Record::write_brief_json`].
    Brief,
}

/// Lines are sent to the writer thread in chunks of about this many bytes.
const BATCH: usize = 64 * 1024;
/// Chunks on their way to the writer thread at most (the memory the output may hold).
const CHUNKS_IN_FLIGHT: usize = 8;

/// A sink of JSON lines, written by a thread of its own.
///
/// Lines are gathered into chunks of about [`BATCH`] bytes, which go to the writer thread
/// over a bounded channel (waiting asynchronously when it is full, so a slow output slows
/// the run down instead of growing memory); the thread writes each chunk with one
/// `write_all` and flushes. A write error ends the thread; it is returned by the next
/// [`write`](Output::write), [`flush`](Output::flush) or [`finish`](Output::finish).
pub struct Output {
    chunk: Vec<u8>,
    format: Format,
    tx: Option<mpsc::Sender<Vec<u8>>>,
    done: Option<oneshot::Receiver<std::io::Result<()>>>,
    error: Arc<Mutex<Option<std::io::Error>>>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("pending", &self.chunk.len())
            .finish_non_exhaustive()
    }
}

impl Output {
    /// JSON lines to `sink`, written by a new thread.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn new(sink: impl Write + Send + 'static) -> std::io::Result<Self> {
        Self::with_format(sink, Format::Json)
    }

    /// Records in `format` to `sink`, written by a new thread (CSV starts with its header
    /// row).
    pub fn with_format(sink: impl Write + Send + 'static, format: Format) -> std::io::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
        let (done_tx, done) = oneshot::channel();
        let error = Arc::new(Mutex::new(None));
        let slot = error.clone();
        std::thread::Builder::new()
            .name("fastreq-output".into())
            .spawn(move || {
                let mut sink = sink;
                let mut result = Ok(());
                while let Some(chunk) = rx.blocking_recv() {
                    if let Err(e) = sink.write_all(&chunk).and_then(|()| sink.flush()) {
                        // Also seen by the sender, whose next send fails as `rx` is dropped.
                        *slot.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(std::io::Error::new(e.kind(), e.to_string()));
                        result = Err(e);
                        break;
                    }
                }
                drop(rx);
                let _ = done_tx.send(result);
            })?;
        let mut chunk = Vec::with_capacity(BATCH + 1024);
        if format == Format::Csv {
            chunk.extend_from_slice(CSV_HEADER.as_bytes());
            chunk.extend_from_slice(b"\r\n");
        }
        Ok(Output {
            chunk,
            format,
            tx: Some(tx),
            done: Some(done),
            error,
        })
    }

    /// Writes one record and a newline (buffered).
    pub async fn write(&mut self, record: &Record<'_>) -> std::io::Result<()> {
        match self.format {
            Format::Json => record.write_json(&mut self.chunk),
            Format::Csv => record.write_csv(&mut self.chunk),
            Format::Brief => record.write_brief_json(&mut self.chunk),
        }
        if self.format == Format::Csv {
            // RFC 4180 rows end in CRLF.
            self.chunk.push(b'\r');
        }
        self.chunk.push(b'\n');
        if self.chunk.len() >= BATCH {
            self.send().await?;
        }
        Ok(())
    }

    /// Hands what was written to the writer thread, if anything.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        self.send().await
    }

    /// Flushes, and waits until the writer thread has written everything.
    pub async fn finish(&mut self) -> std::io::Result<()> {
        self.flush().await?;
        drop(self.tx.take());
        match self.done.take() {
            Some(done) => done
                .await
                .unwrap_or_else(|_| Err(std::io::Error::other("the output thread failed"))),
            None => Ok(()),
        }
    }

    async fn send(&mut self) -> std::io::Result<()> {
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(BATCH + 1024));
        let sent = match &self.tx {
            Some(tx) => tx.send(chunk).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        Err(self
            .error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| std::io::Error::other("the output is closed")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastreq::{Error, ErrorKind};

    /// A timeout after 1.7 ms and 2 attempts, with `message`, for `url`.
    fn timed_out(message: &str, url: &str) -> Failed {
        Failed {
            error: Error::new(ErrorKind::Timeout).with_message(message),
            url: Some(url.into()),
            proxy: None,
            elapsed: Duration::from_micros(1_700),
            wait: Duration::ZERO,
            attempts: 2,
        }
    }

    #[test]
    fn failure_line_shape() {
        let failed = timed_out(
            "headers took longer than 1s",
            "http://a.test/?token=REDACTED",
        );
        let json = serde_json::to_string(&Record::failed(3, &failed)).unwrap();
        assert_eq!(
            json,
            r#"{"index":3,"url":"http://a.test/?token=REDACTED","final_url":null,"status":null,"elapsed_ms":1.7,"wait_ms":0.0,"attempts":2,"bytes":null,"version":null,"proxy":null,"error":{"kind":"timeout","message":"timed out: headers took longer than 1s"}}"#
        );
        let mut r = Record::failed(3, &failed);
        r.body = Some(None);
        r.body_file = Some(None);
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.ends_with(r#","body":null,"body_file":null}"#),
            "{json}"
        );
    }

    #[test]
    fn body_file_names_are_digits() {
        assert_eq!(body_file_name(0), "0.body");
        assert_eq!(body_file_name(1234567), "1234567.body");
        assert!(Path::new(&body_file_name(usize::MAX)).parent() == Some(Path::new("")));
    }

    /// A `Write` into a shared buffer.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn output_writes_lines() {
        let shared = Shared::default();
        let mut out = Output::new(shared.clone()).unwrap();
        let failed = Failed::unsent(Error::new(ErrorKind::InvalidRequest), None);
        out.write(&Record::failed(0, &failed)).await.unwrap();
        out.write(&Record::failed(1, &failed)).await.unwrap();
        out.finish().await.unwrap();
        let text = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with(r#"{"index":1,"url":null,"#), "{text}");
    }

    #[tokio::test]
    async fn output_batches_and_reports_write_errors() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let failed = Failed::unsent(Error::new(ErrorKind::InvalidRequest), None);
        // Many more lines than one chunk: every one arrives, in order.
        let shared = Shared::default();
        let mut out = Output::new(shared.clone()).unwrap();
        for i in 0..5_000 {
            out.write(&Record::failed(i, &failed)).await.unwrap();
        }
        out.finish().await.unwrap();
        let text = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 5_000);
        assert!(text
            .lines()
            .enumerate()
            .all(|(i, l)| l.starts_with(&format!("{{\"index\":{i},"))));
        // A closed output: the error comes back, with its kind.
        let mut out = Output::new(Closed).unwrap();
        let mut err = None;
        for i in 0..50_000 {
            if let Err(e) = out.write(&Record::failed(i, &failed)).await {
                err = Some(e);
                break;
            }
        }
        let err = match err {
            Some(e) => e,
            None => out.finish().await.unwrap_err(),
        };
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn headers_match_serde_json() {
        let mut map = http::HeaderMap::new();
        map.insert("content-type", "text/plain".parse().unwrap());
        map.append("set-cookie", "a=1".parse().unwrap());
        map.append("set-cookie", "b=\"2\"".parse().unwrap());
        map.insert("x-bin", http::HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let failed = Failed::unsent(Error::new(ErrorKind::InvalidRequest), None);
        let names: Vec<http::HeaderName> = ["location", "set-cookie", "content-type", "set-cookie"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        let mut cases = Vec::new();
        for names in [None, Some(&names[..]), Some(&[][..])] {
            let mut r = Record::failed(0, &failed);
            r.headers = Some(Some(Headers { map: &map, names }));
            cases.push(r);
        }
        let mut r = Record::failed(1, &failed);
        r.headers = Some(None);
        cases.push(r);
        for record in &cases {
            let mut mine = Vec::new();
            record.write_json(&mut mine);
            assert_eq!(
                String::from_utf8_lossy(&mine),
                serde_json::to_string(record).unwrap()
            );
        }
        let mut line = Vec::new();
        cases[1].write_json(&mut line);
        let back: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            back["headers"],
            serde_json::json!({"set-cookie": "a=1, b=\"2\"", "content-type": "text/plain"})
        );
        let mut line = Vec::new();
        cases[0].write_json(&mut line);
        let back: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(back["headers"]["x-bin"], "caf\u{fffd}");
    }

    #[test]
    fn csv_rows_quote_as_rfc_4180() {
        let failed = timed_out("took \"long\", then\nmore", "http://a.test/?q=1,2");
        let mut row = Vec::new();
        Record::failed(3, &failed).write_csv(&mut row);
        assert_eq!(
            String::from_utf8(row).unwrap(),
            "3,\"http://a.test/?q=1,2\",,1.7,0.0,,2,timeout,\"timed out: took \"\"long\"\", then\nmore\""
        );
        let mut r = Record::failed(4, &failed);
        r.error = None;
        r.status = Some(200);
        r.bytes = Some(10);
        r.url = Some("http://a.test/plain");
        let mut row = Vec::new();
        r.write_csv(&mut row);
        assert_eq!(
            String::from_utf8(row).unwrap(),
            "4,http://a.test/plain,200,1.7,0.0,10,2,,"
        );
        assert_eq!(CSV_HEADER.split(',').count(), 9);
        let mut brief = Vec::new();
        Record::failed(5, &failed).write_brief_json(&mut brief);
        assert_eq!(
            String::from_utf8(brief).unwrap(),
            r#"{"index":5,"url":"http://a.test/?q=1,2","status":null,"error":{"kind":"timeout"}}"#
        );
    }

    /// The hand-written JSON is byte for byte what serde_json writes, escapes included.
    #[test]
    fn json_lines_match_serde_json_and_escape() {
        let nasty = "http://h.test/\"q\"\\x\u{1}\u{1f}\u{7f}\n\r\t\u{8}\u{c}/é/日本/\u{1F600}";
        let failed = Failed {
            error: Error::new(ErrorKind::Timeout).with_message(format!("bad \"{nasty}\" \u{0}")),
            url: Some(nasty.into()),
            proxy: Some("http://p.test:8080 \"x\"".into()),
            elapsed: Duration::from_nanos(1_234_567_891),
            wait: Duration::from_nanos(234_567_891),
            attempts: 3,
        };
        let mut cases = vec![
            Record::failed(7, &failed),
            Record::failed(usize::MAX, &failed),
        ];
        let mut r = Record::failed(0, &failed);
        r.body = Some(Some(Cow::Borrowed("{\"a\":\"\u{2028}\u{0}\"}")));
        r.body_file = Some(Some("/tmp/0.body".into()));
        cases.push(r);
        let mut r = Record::failed(1, &failed);
        r.body = Some(None);
        r.body_file = Some(None);
        r.elapsed_ms = 0.0;
        cases.push(r);
        let mut r = Record::failed(2, &failed);
        r.error = None;
        r.status = Some(200);
        r.bytes = Some(0);
        r.version = Some(version_name(http::Version::HTTP_2));
        r.final_url = Some(Cow::Borrowed("https://h.test/ü?x=\u{1b}"));
        r.elapsed_ms = 1e-3;
        cases.push(r);
        for (i, record) in cases.iter().enumerate() {
            let mut mine = Vec::new();
            record.write_json(&mut mine);
            let theirs = serde_json::to_vec(record).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&mine),
                String::from_utf8_lossy(&theirs),
                "case {i}"
            );
            let back: serde_json::Value = serde_json::from_slice(&mine).unwrap();
            if let Some(url) = record.url {
                assert_eq!(back["url"], url);
            }
        }
        let mut line = Vec::new();
        Record::failed(7, &failed).write_json(&mut line);
        let text = String::from_utf8(line).unwrap();
        assert!(text.contains(r#"\"q\"\\x\u0001\u001f"#), "{text}");
        assert!(
            text.contains("\u{7f}\\n\\r\\t\\b\\f/é/日本/\u{1F600}"),
            "{text}"
        );
        assert!(text.contains(r#"\u0000"}"#), "{text}");
    }
}
