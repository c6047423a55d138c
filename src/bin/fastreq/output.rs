//! The JSON lines written for each outcome (design §9), and saving bodies to files.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};

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
    /// Attempts made (0 for an invalid line).
    pub attempts: u32,
    /// Body length (`null` on failure).
    pub bytes: Option<usize>,
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
}

/// `"error": {"kind": …, "message": …}`.
#[derive(Debug, Serialize)]
pub struct ErrorRecord<'a> {
    /// `ErrorKind` in snake case.
    pub kind: &'static str,
    /// Human-readable, URLs redacted.
    pub message: Cow<'a, str>,
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
            final_url: Some(Cow::Owned(fastreq::redact_url(&f.final_url().to_string()))),
            status: Some(f.status().as_u16()),
            elapsed_ms: millis(f.elapsed()),
            attempts: f.attempts(),
            bytes: Some(f.body().len()),
            proxy: sent.proxy.as_deref(),
            error: None,
            body: None,
            body_file: None,
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
            attempts: failed.attempts,
            bytes: None,
            proxy: failed.proxy.as_deref(),
            error: Some(ErrorRecord {
                kind: failed.error.kind().as_str(),
                message: Cow::Owned(failed.error.to_string()),
            }),
            body: None,
            body_file: None,
        }
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

/// A buffered sink of JSON lines.
pub struct Output {
    writer: BufWriter<Pin<Box<dyn AsyncWrite + Send>>>,
    line: Vec<u8>,
    dirty: bool,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("dirty", &self.dirty)
            .finish_non_exhaustive()
    }
}

impl Output {
    /// Lines to `sink`.
    pub fn new(sink: impl AsyncWrite + Send + 'static) -> Self {
        Output {
            writer: BufWriter::with_capacity(64 * 1024, Box::pin(sink)),
            line: Vec::with_capacity(512),
            dirty: false,
        }
    }

    /// Writes one record and a newline (buffered).
    pub async fn write(&mut self, record: &Record<'_>) -> std::io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, record).map_err(std::io::Error::other)?;
        self.line.push(b'\n');
        self.writer.write_all(&self.line).await?;
        self.dirty = true;
        Ok(())
    }

    /// Flushes what was written, if anything.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if self.dirty {
            self.writer.flush().await?;
            self.dirty = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastreq::{Error, ErrorKind};

    #[test]
    fn failure_line_shape() {
        let failed = Failed {
            error: Error::new(ErrorKind::Timeout).with_message("headers took longer than 1s"),
            url: Some("http://a.test/?token=REDACTED".into()),
            proxy: None,
            elapsed: Duration::from_micros(1_700),
            attempts: 2,
        };
        let json = serde_json::to_string(&Record::failed(3, &failed)).unwrap();
        assert_eq!(
            json,
            r#"{"index":3,"url":"http://a.test/?token=REDACTED","final_url":null,"status":null,"elapsed_ms":1.7,"attempts":2,"bytes":null,"proxy":null,"error":{"kind":"timeout","message":"timed out: headers took longer than 1s"}}"#
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

    #[tokio::test]
    async fn output_writes_lines() {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let mut out = Output::new(client);
        let failed = Failed::unsent(Error::new(ErrorKind::InvalidRequest), None);
        out.write(&Record::failed(0, &failed)).await.unwrap();
        out.write(&Record::failed(1, &failed)).await.unwrap();
        out.flush().await.unwrap();
        drop(out);
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut server, &mut text)
            .await
            .unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with(r#"{"index":1,"url":null,"#), "{text}");
    }
}
