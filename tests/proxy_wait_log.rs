//! The warning logged when requests start waiting for a cooled-down proxy. In its own test
//! binary: tracing caches callsite interest process-wide.
#![cfg(feature = "cli")]

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use fastreq::proxy::{ProxyError, ProxyPool, ProxyRotationLayer, SelectedProxy};
use fastreq::{Body, Error, ErrorKind, ResponseBody};
use http::{Request, Response};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

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

/// Fails through every proxy while `failing` is set, else answers "ok".
#[derive(Clone, Default)]
struct Mock {
    failing: Arc<Mutex<bool>>,
}

impl Service<Request<Body>> for Mock {
    type Response = Response<ResponseBody>;
    type Error = Error;
    type Future = std::future::Ready<Result<Response<ResponseBody>, Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let proxy = req.extensions().get::<SelectedProxy>().unwrap().0.clone();
        std::future::ready(if *self.failing.lock().unwrap() {
            Err(ProxyError::new(&proxy, ErrorKind::Proxy, "answered 407").into_error())
        } else {
            Ok(Response::new(ResponseBody::from("ok")))
        })
    }
}

#[tokio::test(start_paused = true)]
async fn the_start_of_a_wait_is_logged_once_at_warn() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let pool = ProxyPool::from_lines("http://u:s3cret@a.test:1\nb.test:2").unwrap();
    let mock = Mock::default();
    *mock.failing.lock().unwrap() = true;
    let svc = ProxyRotationLayer::new(pool).layer(mock.clone());
    for _ in 0..2 {
        let req = fastreq::get("http://x.test/").build().unwrap();
        svc.clone().oneshot(req).await.unwrap_err();
    }
    *mock.failing.lock().unwrap() = false;

    let start = Instant::now();
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move {
                let req = fastreq::get("http://x.test/").build().unwrap();
                svc.oneshot(req).await
            })
        })
        .collect();
    for w in waiting {
        w.await.unwrap().unwrap();
    }
    assert_eq!(start.elapsed(), Duration::from_secs(60));

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warns: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("all proxies down"))
        .collect();
    assert_eq!(warns.len(), 1, "one warning for the three waiters:\n{logs}");
    assert!(
        warns[0].contains("all proxies down, waiting 60 s"),
        "{logs}"
    );
    assert!(warns[0].contains("proxies=2"), "{logs}");
    let debugs = logs
        .lines()
        .filter(|l| l.contains(" DEBUG ") && l.contains("all proxies down, waiting 60 s"))
        .count();
    assert_eq!(debugs, 2, "{logs}");
    assert!(!logs.contains("s3cret"), "{logs}");
}
