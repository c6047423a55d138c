//! The client's per-request tracing span. In its own test binary: tracing caches callsite
//! interest process-wide, so tests running in parallel without a subscriber would race it.
#![cfg(feature = "cli")]

mod support;

use std::sync::{Arc, Mutex};

use support::{Reply, TestServer};

/// A writer for tracing-subscriber that keeps what is logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn each_request_is_traced_with_a_redacted_url() {
    let server = TestServer::start(|req| match req.path() {
        "/a" => Reply::status(302).header("location", "/b"),
        _ => Reply::text("ok"),
    });
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let client = fastreq::Client::new();
    let page = client.get(server.url("/a?token=s3cret")).await.unwrap();
    assert_eq!(page.status(), 200);
    let _ = client.get(support::closed_url("/x")).await.unwrap_err();
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("request{method=GET url="), "{logs}");
    assert!(logs.contains("token=REDACTED"), "{logs}");
    assert!(!logs.contains("s3cret"), "{logs}");
    assert!(logs.contains("status=200"), "{logs}");
    assert!(logs.contains("kind=\"connect\""), "{logs}");
}
