//! One suite for the backend contract, run against every real backend: fastreq's own
//! [`Backend`] (hyper-util + hyper-rustls) and [`ReqwestBackend`] over a user's
//! `reqwest::Client`. "Swap the backend without changing code" is tested here, not claimed:
//! each case is written once, generic over the backend, and instantiated for both.
#![cfg(feature = "reqwest")]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fastreq::backend::reqwest::ReqwestBackend;
use fastreq::ext::{BodyLimit, FinalUrl, RequestTimeout};
use fastreq::{Backend, Body, Certificate, Error, ErrorKind, ResponseBody, ResponseExt};
use http::{Request, Response};
use support::{closed_url, pattern_body, Reply, TestServer};
use tower::{Service, ServiceExt};

const LIMIT: Duration = Duration::from_secs(20);

/// Builds a backend that trusts `ca_pem` in addition to its usual roots (or no extra root).
trait MakeBackend {
    type S: Service<
            Request<Body>,
            Response = Response<ResponseBody>,
            Error = Error,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static;
    fn make(ca_pem: Option<&str>) -> Self::S;
}

struct Hyper;
impl MakeBackend for Hyper {
    type S = Backend;
    fn make(ca_pem: Option<&str>) -> Backend {
        let mut b = Backend::builder().tls_built_in_root_certs(false);
        if let Some(pem) = ca_pem {
            b = b.add_root_certificate(Certificate::from_pem(pem.as_bytes()).unwrap());
        }
        b.build().unwrap()
    }
}

struct Reqwest;
impl MakeBackend for Reqwest {
    type S = ReqwestBackend;
    fn make(ca_pem: Option<&str>) -> ReqwestBackend {
        // The dev-dependency is built with `rustls-no-provider`: use ring, as fastreq does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = ca_pem {
            b = b.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
        }
        ReqwestBackend::new(b.build().unwrap())
    }
}

async fn send<S>(svc: &S, req: Request<Body>) -> Result<Response<ResponseBody>, Error>
where
    S: Service<Request<Body>, Response = Response<ResponseBody>, Error = Error> + Clone,
{
    tokio::time::timeout(LIMIT, svc.clone().oneshot(req))
        .await
        .expect("the request finished in time")
}

fn get(url: &str) -> Request<Body> {
    fastreq::get(url).build().unwrap()
}

mod cases {
    use super::*;

    pub async fn get_reads_the_body_and_sets_final_url<M: MakeBackend>() {
        let server = TestServer::routes();
        let svc = M::make(None);
        let url = server.url("/big?bytes=100000");
        let resp = send(&svc, get(&url)).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.extensions().get::<FinalUrl>().map(|u| u.0.to_string()),
            Some(url.clone())
        );
        assert_eq!(resp.bytes().await.unwrap(), pattern_body(100_000));
    }

    pub async fn full_request_body_is_sent<M: MakeBackend>() {
        let server = TestServer::routes();
        let svc = M::make(None);
        let req = fastreq::post(server.url("/e?echo=1"))
            .body("hello, backend")
            .build()
            .unwrap();
        let text = send(&svc, req).await.unwrap().text().await.unwrap();
        assert!(text.starts_with("POST /e?echo=1"), "{text}");
        assert!(text.ends_with("\n\nhello, backend"), "{text}");
    }

    pub async fn streamed_request_body_is_sent<M: MakeBackend>() {
        let server = TestServer::routes();
        let svc = M::make(None);
        let chunks = ["one,", "two,", "three"]
            .into_iter()
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::from(c)));
        let req = fastreq::post(server.url("/s?echo=1"))
            .body(Body::wrap_stream(futures::stream::iter(chunks)))
            .build()
            .unwrap();
        let text = send(&svc, req).await.unwrap().text().await.unwrap();
        assert!(text.ends_with("\n\none,two,three"), "{text}");
    }

    pub async fn response_body_streams<M: MakeBackend>() {
        let server = TestServer::routes();
        let svc = M::make(None);
        let resp = send(&svc, get(&server.url("/c?chunks=4&chunk_ms=20")))
            .await
            .unwrap();
        let mut body = resp.into_body();
        let mut frames = 0;
        let mut total = 0;
        while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
            if let Ok(data) = frame.unwrap().into_data() {
                frames += 1;
                total += data.len();
            }
        }
        assert!(
            frames >= 2,
            "the body came in {frames} frame(s), not streamed"
        );
        assert!(total > 0);
    }

    pub async fn refused_connection_is_a_connect_error<M: MakeBackend>() {
        let svc = M::make(None);
        let url = closed_url("/x?token=abc").replace("http://", "http://user:s3cret@");
        let err = send(&svc, get(&url)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
        let text = format!("{err} {err:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(!text.contains("abc"), "the token is redacted: {text}");
    }

    pub async fn request_timeout_is_a_timeout_error<M: MakeBackend>() {
        let server = TestServer::routes();
        let svc = M::make(None);
        let mut req = get(&server.url("/slow?delay_ms=3000"));
        req.extensions_mut()
            .insert(RequestTimeout(Duration::from_millis(200)));
        let err = send(&svc, req).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    }

    pub async fn body_limit_is_enforced<M: MakeBackend>() {
        let server = TestServer::routes();
        let svc = M::make(None);
        let mut req = get(&server.url("/b?bytes=5000"));
        req.extensions_mut().insert(BodyLimit(100));
        let resp = send(&svc, req).await.unwrap();
        let err = resp.bytes().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BodyTooLarge, "{err}");
    }

    pub async fn truncated_body_is_an_io_error<M: MakeBackend>() {
        let server = TestServer::routes();
        let svc = M::make(None);
        let resp = send(&svc, get(&server.url("/t?bytes=4000&fail=truncate")))
            .await
            .unwrap();
        let err = resp.bytes().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    }

    pub async fn tls_is_verified<M: MakeBackend>() {
        let server = TestServer::builder().tls().routes();
        let url = server.url("/tls");
        let err = send(&M::make(None), get(&url)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
        let trusting = M::make(Some(&server.cert_pem()));
        let resp = send(&trusting, get(&url)).await.unwrap();
        assert_eq!(resp.status(), 200);
    }

    /// The preset over the backend: retries, the buffered path, attempts counted.
    pub async fn the_preset_runs_over_it<M: MakeBackend>() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let server = TestServer::start(move |_req| {
            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                Reply::status(503)
            } else {
                Reply::text("second time lucky")
            }
        });
        let client = fastreq::stack()
            .backend(M::make(None))
            .retries(2)
            .build()
            .unwrap();
        let fetched = tokio::time::timeout(LIMIT, client.fetch(get(&server.url("/r"))))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(fetched.status(), 200);
        assert_eq!(fetched.text(), "second time lucky");
        assert_eq!(fetched.attempts(), 2);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}

macro_rules! contract {
    ($module:ident, $make:ty) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn get_reads_the_body_and_sets_final_url() {
                cases::get_reads_the_body_and_sets_final_url::<$make>().await
            }
            #[tokio::test]
            async fn full_request_body_is_sent() {
                cases::full_request_body_is_sent::<$make>().await
            }
            #[tokio::test]
            async fn streamed_request_body_is_sent() {
                cases::streamed_request_body_is_sent::<$make>().await
            }
            #[tokio::test]
            async fn response_body_streams() {
                cases::response_body_streams::<$make>().await
            }
            #[tokio::test]
            async fn refused_connection_is_a_connect_error() {
                cases::refused_connection_is_a_connect_error::<$make>().await
            }
            #[tokio::test]
            async fn request_timeout_is_a_timeout_error() {
                cases::request_timeout_is_a_timeout_error::<$make>().await
            }
            #[tokio::test]
            async fn body_limit_is_enforced() {
                cases::body_limit_is_enforced::<$make>().await
            }
            #[tokio::test]
            async fn truncated_body_is_an_io_error() {
                cases::truncated_body_is_an_io_error::<$make>().await
            }
            #[tokio::test]
            async fn tls_is_verified() {
                cases::tls_is_verified::<$make>().await
            }
            #[tokio::test]
            async fn the_preset_runs_over_it() {
                cases::the_preset_runs_over_it::<$make>().await
            }
        }
    };
}

contract!(hyper_backend, Hyper);
contract!(reqwest_backend, Reqwest);

/// What reqwest cannot honour is refused with a clear `Config` error, never ignored: a proxy
/// chosen per request (here by the preset's rotation), and it is not retried.
#[tokio::test]
async fn reqwest_refuses_a_proxy_chosen_per_request() {
    let server = TestServer::routes();
    let client = fastreq::stack()
        .backend(Reqwest::make(None))
        .proxies(
            fastreq::proxy::ProxyPool::from_lines("http://user:pw-secret@127.0.0.1:9").unwrap(),
        )
        .build()
        .unwrap();
    let err = tokio::time::timeout(LIMIT, client.get(server.url("/p")))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.is_config(), "{err}");
    assert!(err.to_string().contains("reqwest::Proxy"), "{err}");
    assert!(!format!("{err} {err:?}").contains("pw-secret"));
    assert_eq!(
        server.hits(),
        0,
        "nothing was sent, neither direct nor through the proxy"
    );
}
