//! Unit tests with in-memory services under paused time: exact timing.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as _, Frame};
use http_body_util::{BodyExt, StreamBody};
use tokio::time::{sleep, sleep_until, Instant};
use tower::{Layer, ServiceBuilder, ServiceExt};

use super::*;
use crate::ext::RequestTimeout;
use crate::{Body, ErrorKind, ResponseBody};

const URL: &str = "http://user:pw@api.test/x?token=s3cret&q=1";
const REDACTED: &str = "http://api.test/x?token=REDACTED&q=1";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn req() -> Request<Body> {
    Request::get(URL).body(Body::empty()).unwrap()
}

fn req_with_timeout(t: Duration) -> Request<Body> {
    let mut r = req();
    r.extensions_mut().insert(RequestTimeout(t));
    r
}

/// A service whose response headers come after `delay`, with an empty body.
fn headers_after(
    delay: Duration,
) -> impl tower::Service<
    Request<Body>,
    Response = Response<ResponseBody>,
    Error = Error,
    Future = impl Send,
> + Clone {
    tower::service_fn(move |_req: Request<Body>| async move {
        sleep(delay).await;
        Ok::<_, Error>(Response::new(ResponseBody::from("ok")))
    })
}

type TestBody = StreamBody<
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send>>,
>;

/// A body yielding one frame at each instant of `at`, then ending or stalling forever.
fn body_at(at: Vec<Instant>, stall: bool) -> TestBody {
    let s = futures_util::stream::unfold(at.into_iter(), move |mut it| async move {
        match it.next() {
            Some(when) => {
                sleep_until(when).await;
                Some((Ok(Frame::data(Bytes::from_static(b"x"))), it))
            }
            None => {
                if stall {
                    std::future::pending::<()>().await;
                }
                None
            }
        }
    });
    StreamBody::new(Box::pin(s))
}

/// A service answering at once with `body`.
fn with_body(
    body: TestBody,
) -> impl tower::Service<Request<Body>, Response = Response<TestBody>, Error = Error> {
    let mut body = Some(body);
    tower::service_fn(move |_req: Request<Body>| {
        let b = body.take().expect("one call");
        async move { Ok::<_, Error>(Response::new(b)) }
    })
}

fn layer(headers: Option<u64>, idle: Option<u64>, total: Option<u64>) -> TimeoutLayer {
    TimeoutLayer::builder()
        .headers(headers.map(ms))
        .body_idle(idle.map(ms))
        .body_total(total.map(ms))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn headers_timeout_is_exact_and_redacted() {
    let svc = layer(Some(1000), None, None).layer(headers_after(ms(5000)));
    let start = Instant::now();
    let err = svc.oneshot(req()).await.unwrap_err();
    assert_eq!(start.elapsed(), ms(1000));
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.message(), Some("no response headers within 1s"));
    assert_eq!(err.url(), Some(REDACTED));
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("pw"),
        "{shown}"
    );
}

#[tokio::test(start_paused = true)]
async fn headers_just_in_time_pass() {
    for delay in [0, 1, 999, 1000] {
        let svc = layer(Some(1000), None, None).layer(headers_after(ms(delay)));
        let start = Instant::now();
        let resp = svc.oneshot(req()).await.unwrap();
        assert_eq!(start.elapsed(), ms(delay));
        assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "ok");
    }
    let svc = layer(Some(1000), None, None).layer(headers_after(ms(1001)));
    let start = Instant::now();
    assert!(svc.oneshot(req()).await.unwrap_err().is_timeout());
    assert_eq!(start.elapsed(), ms(1000));
}

#[tokio::test(start_paused = true)]
async fn request_extension_shortens_and_lengthens() {
    // Shorter than the layer's.
    let svc = layer(Some(30_000), None, None).layer(headers_after(ms(5000)));
    let start = Instant::now();
    let err = svc.oneshot(req_with_timeout(ms(1500))).await.unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(err.message(), Some("no response headers within 1.5s"));
    assert_eq!(start.elapsed(), ms(1500));

    // Longer than the layer's.
    let svc = layer(Some(1000), None, None).layer(headers_after(ms(5000)));
    let start = Instant::now();
    svc.oneshot(req_with_timeout(ms(6000))).await.unwrap();
    assert_eq!(start.elapsed(), ms(5000));

    // Also when the layer has no headers timeout.
    let svc = layer(None, None, None).layer(headers_after(ms(5000)));
    let start = Instant::now();
    assert!(svc
        .oneshot(req_with_timeout(ms(2000)))
        .await
        .unwrap_err()
        .is_timeout());
    assert_eq!(start.elapsed(), ms(2000));
}

#[tokio::test(start_paused = true)]
async fn no_headers_timeout_waits() {
    let svc = layer(None, None, None).layer(headers_after(Duration::from_secs(3600)));
    let start = Instant::now();
    svc.oneshot(req()).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(3600));
}

#[tokio::test(start_paused = true)]
async fn default_headers_timeout_is_30s() {
    let svc = TimeoutLayer::default().layer(headers_after(Duration::from_secs(60)));
    let start = Instant::now();
    assert!(svc.oneshot(req()).await.unwrap_err().is_timeout());
    assert_eq!(start.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn body_idle_fires_after_last_frame() {
    let t0 = Instant::now();
    let at: Vec<Instant> = [0, 900, 1800, 2700].iter().map(|&n| t0 + ms(n)).collect();
    let svc = layer(None, Some(1000), None).layer(with_body(body_at(at, true)));
    let resp = svc.oneshot(req()).await.unwrap();
    let mut body = std::pin::pin!(resp.into_body());
    assert_eq!(body.idle_timeout(), Some(ms(1000)));
    for n in [0, 900, 1800, 2700] {
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "x");
        assert_eq!(t0.elapsed(), ms(n));
    }
    let err = body.frame().await.unwrap().unwrap_err();
    assert_eq!(t0.elapsed(), ms(3700));
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.message(), Some("response body idle for 1s"));
    assert_eq!(err.url(), Some(REDACTED));
    // Finished after the error.
    assert!(body.is_end_stream());
    assert!(body.frame().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn body_idle_resets_on_every_frame() {
    let t0 = Instant::now();
    // 20 frames 999 ms apart: 19 s in all, far past one idle period of 1 s.
    let at: Vec<Instant> = (0..20).map(|i| t0 + ms(999 * i)).collect();
    let svc = layer(None, Some(1000), None).layer(with_body(body_at(at, false)));
    let body = svc.oneshot(req()).await.unwrap().into_body();
    let bytes = body.collect().await.unwrap().to_bytes();
    assert_eq!(bytes.len(), 20);
    assert_eq!(t0.elapsed(), ms(999 * 19));
}

#[tokio::test(start_paused = true)]
async fn body_idle_counts_only_waits() {
    let t0 = Instant::now();
    let at = vec![t0, t0 + ms(5500), t0 + ms(9000)];
    let svc = layer(None, Some(1000), None).layer(with_body(body_at(at, false)));
    let mut body = std::pin::pin!(svc.oneshot(req()).await.unwrap().into_body());
    // Not read for 5 s after the headers: the idle clock has not started.
    sleep(ms(5000)).await;
    body.frame().await.unwrap().unwrap();
    body.frame().await.unwrap().unwrap(); // waited 500 ms
    assert_eq!(t0.elapsed(), ms(5500));
    // A slow consumer: polls again 3 s after the frame, the next frame comes 500 ms later.
    sleep(ms(3000)).await;
    body.frame().await.unwrap().unwrap();
    assert_eq!(t0.elapsed(), ms(9000));
    assert!(body.frame().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn body_total_deadline_from_headers() {
    let t0 = Instant::now();
    // Headers after 3 s, then a frame every 500 ms for a long time.
    let at: Vec<Instant> = (0..100).map(|i| t0 + ms(3000 + 500 * i)).collect();
    let mut body = Some(body_at(at, false));
    let inner = tower::service_fn(move |_req: Request<Body>| {
        let b = body.take().unwrap();
        async move {
            sleep(ms(3000)).await;
            Ok::<_, Error>(Response::new(b))
        }
    });
    let svc = layer(Some(10_000), Some(1000), Some(2000)).layer(inner);
    let mut body = std::pin::pin!(svc.oneshot(req()).await.unwrap().into_body());
    assert_eq!(t0.elapsed(), ms(3000));
    let mut frames = 0;
    let err = loop {
        match body.frame().await.expect("ends with an error") {
            Ok(_) => frames += 1,
            Err(e) => break e,
        }
        assert!(frames <= 100);
    };
    assert_eq!(t0.elapsed(), ms(5000));
    assert_eq!(frames, 5); // at 3.0, 3.5, 4.0, 4.5, 5.0 (a frame due at the deadline wins)
    assert!(err.is_timeout());
    assert_eq!(err.message(), Some("response body not complete within 2s"));
    assert_eq!(err.url(), Some(REDACTED));
}

#[tokio::test(start_paused = true)]
async fn huge_durations_do_not_overflow() {
    let t0 = Instant::now();
    let svc = TimeoutLayer::builder()
        .headers(Duration::MAX)
        .body_idle(Duration::MAX)
        .body_total(Duration::MAX)
        .build()
        .unwrap()
        .layer(with_body(body_at(vec![t0], true)));
    let mut body = std::pin::pin!(svc.oneshot(req()).await.unwrap().into_body());
    body.frame().await.unwrap().unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(86_400), body.frame()).await;
    assert!(waited.is_err(), "no timeout within a day");

    let svc = TimeoutLayer::new(Duration::MAX).layer(headers_after(Duration::from_secs(86_400)));
    svc.oneshot(req()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn inner_timeout_errors_are_timeouts_with_url() {
    let svc = ServiceBuilder::new()
        .layer(layer(Some(10_000), None, None))
        .timeout(ms(100))
        .service(headers_after(ms(5000)));
    let start = Instant::now();
    let err = svc.oneshot(req()).await.unwrap_err();
    assert_eq!(start.elapsed(), ms(100));
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.url(), Some(REDACTED));
}

#[tokio::test]
async fn inner_errors_keep_kind_and_url() {
    let svc = TimeoutLayer::default().layer(tower::service_fn(|_req: Request<Body>| async {
        Err::<Response<ResponseBody>, _>(Error::new(ErrorKind::Connect))
    }));
    let err = svc.oneshot(req()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert_eq!(err.url(), Some(REDACTED));

    let svc = TimeoutLayer::default().layer(tower::service_fn(|_req: Request<Body>| async {
        Err::<Response<ResponseBody>, _>(Error::new(ErrorKind::Tls).with_url("http://other.test/"))
    }));
    let err = svc.oneshot(req()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls);
    assert_eq!(err.url(), Some("http://other.test/"));

    // Body errors too.
    let failing = StreamBody::new(futures_util::stream::iter(vec![
        Ok(Frame::data(Bytes::from_static(b"a"))),
        Err(std::io::Error::other("reset")),
    ]));
    let mut failing = Some(failing);
    let svc = TimeoutLayer::default().layer(tower::service_fn(move |_req: Request<Body>| {
        let b = failing.take().unwrap();
        async move { Ok::<_, Error>(Response::new(b)) }
    }));
    let mut body = std::pin::pin!(svc.oneshot(req()).await.unwrap().into_body());
    body.frame().await.unwrap().unwrap();
    let err = body.frame().await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert_eq!(err.url(), Some(REDACTED));
}

#[test]
fn config_errors_and_defaults() {
    let d = TimeoutLayer::default();
    assert_eq!(d.headers_timeout(), Some(DEFAULT_HEADERS_TIMEOUT));
    assert_eq!(d.body_idle_timeout(), Some(DEFAULT_BODY_IDLE_TIMEOUT));
    assert_eq!(d.body_total_timeout(), None);
    assert_eq!(TimeoutLayer::builder().build().unwrap(), d);

    let err = TimeoutLayer::try_new(Duration::ZERO).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("headers"), "{err}");
    for (name, b) in [
        (
            "body_idle",
            TimeoutLayer::builder().body_idle(Duration::ZERO),
        ),
        (
            "body_total",
            TimeoutLayer::builder().body_total(Duration::ZERO),
        ),
    ] {
        let err = b.build().unwrap_err();
        assert!(err.is_config());
        assert!(err.to_string().contains(name), "{err}");
    }
    // The first error is kept.
    let err = TimeoutLayer::builder()
        .body_total(Duration::ZERO)
        .headers(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("body_total"), "{err}");

    let off = layer(None, None, None);
    assert_eq!(off.headers_timeout(), None);
    assert_eq!(off.body_idle_timeout(), None);
    let l = TimeoutLayer::new(ms(1500));
    assert_eq!(l.headers_timeout(), Some(ms(1500)));
    assert_eq!(l.body_idle_timeout(), Some(DEFAULT_BODY_IDLE_TIMEOUT));
    let svc = l.layer(());
    assert_eq!(svc.config(), &l);
    assert!(format!("{svc:?}").contains("1.5s"));
}
