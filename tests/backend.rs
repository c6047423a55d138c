//! The hyper backend over real loopback HTTP: HTTP/1.1, h2c, TLS + h2, errors, limits.

mod support;

use std::time::Duration;

use fastreq::{Backend, Certificate, ErrorKind, ResponseExt};
use http::{Method, StatusCode, Version};
use support::{Reply, TestServer};
use tower::ServiceExt;

const T: Duration = Duration::from_secs(10);

async fn send(
    backend: &Backend,
    req: http::Request<fastreq::Body>,
) -> Result<http::Response<fastreq::ResponseBody>, fastreq::Error> {
    tokio::time::timeout(T, backend.clone().oneshot(req))
        .await
        .expect("request finished in time")
}

#[tokio::test]
async fn get_post_head_over_http1() {
    let server = TestServer::start(|req| {
        if req.method == Method::HEAD {
            return Reply::ok().header("x-len", "5");
        }
        Reply::text(format!("{} {} {}", req.method, req.path(), req.text()))
    });
    let backend = Backend::new();

    let resp = send(&backend, fastreq::get(server.url("/a")).build().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), Version::HTTP_11);
    assert_eq!(resp.final_url().unwrap().to_string(), server.url("/a"));
    assert_eq!(resp.text().await.unwrap(), "GET /a ");

    let req = fastreq::post(server.url("/p"))
        .form([("k", "v w")])
        .build()
        .unwrap();
    let resp = send(&backend, req).await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "POST /p k=v+w");

    let resp = send(&backend, fastreq::head(server.url("/h")).build().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-len"], "5");
    assert!(resp.bytes().await.unwrap().is_empty());
    assert_eq!(server.http1_requests(), 3);
    // One keep-alive connection served all three.
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn h2c_prior_knowledge() {
    let server = TestServer::start(|req| Reply::text(format!("{:?}", req.version)));
    let backend = Backend::builder().http2_prior_knowledge().build().unwrap();
    for _ in 0..3 {
        let resp = send(&backend, fastreq::get(server.url("/")).build().unwrap())
            .await
            .unwrap();
        assert_eq!(resp.version(), Version::HTTP_2);
        assert_eq!(resp.text().await.unwrap(), "HTTP/2.0");
    }
    assert_eq!(server.http2_requests(), 3);
    assert_eq!(server.connections(), 1, "h2 multiplexes on one connection");
}

#[tokio::test]
async fn tls_with_alpn_h2_and_resolver_override() {
    let server = TestServer::builder().tls().start(|req| {
        // HTTP/2 carries the host as :authority, HTTP/1.1 as the Host header.
        let host = req
            .uri
            .authority()
            .map(|a| a.to_string())
            .or_else(|| req.header("host").map(str::to_owned))
            .unwrap_or_default();
        Reply::text(format!("{:?} {host}", req.version))
    });
    let backend = Backend::builder()
        .add_root_certificate(Certificate::from_der(server.cert_der()))
        .resolve("a.test", server.addr())
        .build()
        .unwrap();
    let url = format!("https://a.test:{}/secure", server.port());
    let resp = send(&backend, fastreq::get(&url).build().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.version(), Version::HTTP_2, "ALPN picked h2");
    let host = format!("a.test:{}", server.port());
    assert_eq!(resp.text().await.unwrap(), format!("HTTP/2.0 {host}"));

    // The same certificate from PEM, HTTP/1.1 only.
    let backend = Backend::builder()
        .add_root_certificate(Certificate::from_pem(server.cert_pem().as_bytes()).unwrap())
        .resolve("b.test", server.addr())
        .http1_only()
        .build()
        .unwrap();
    let url = format!("https://b.test:{}/", server.port());
    let resp = send(&backend, fastreq::get(&url).build().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.version(), Version::HTTP_11);
}

#[tokio::test]
async fn untrusted_certificate_is_a_tls_error() {
    let server = TestServer::builder().tls().start(|_| Reply::ok());
    let backend = Backend::builder()
        .resolve("a.test", server.addr())
        .build()
        .unwrap();
    let url = format!("https://a.test:{}/?token=abc", server.port());
    let err = send(&backend, fastreq::get(&url).build().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err:?}");
    assert!(err.is_tls());
    assert_eq!(
        err.url(),
        Some(format!("https://a.test:{}/?token=REDACTED", server.port()).as_str())
    );
    assert!(!err.to_string().contains("abc"));

    // A name the certificate does not cover is refused even with the root trusted.
    let backend = Backend::builder()
        .add_root_certificate(Certificate::from_der(server.cert_der()))
        .resolve("c.test", server.addr())
        .build()
        .unwrap();
    let url = format!("https://c.test:{}/", server.port());
    let err = send(&backend, fastreq::get(&url).build().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err:?}");

    // Explicitly turning verification off works, on its own pool.
    let insecure = Backend::builder()
        .danger_accept_invalid_certs(true)
        .resolve("c.test", server.addr())
        .build()
        .unwrap();
    let resp = send(&insecure, fastreq::get(&url).build().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(format!("{insecure:?}").contains("danger_accept_invalid_certs: true"));
}

#[tokio::test]
async fn closed_port_is_a_connect_error() {
    let url = support::closed_url("/x");
    let err = send(&Backend::new(), fastreq::get(&url).build().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
    assert!(err.is_connect());
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test]
async fn invalid_requests_are_named() {
    let err = fastreq::get("http//missing-colon.test")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(
        err.to_string().contains("http//missing-colon.test"),
        "{err}"
    );

    // A hand-built request with a relative URI reaches the backend: a clear error too.
    let req = http::Request::get("/relative")
        .body(fastreq::Body::empty())
        .unwrap();
    let err = send(&Backend::new(), req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err:?}");
    assert!(err.to_string().contains("absolute"), "{err}");

    let req = http::Request::get("ftp://h.test/")
        .body(fastreq::Body::empty())
        .unwrap();
    let err = send(&Backend::new(), req).await.unwrap_err();
    assert!(err.to_string().contains("ftp"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn per_request_timeout_up_to_headers() {
    let server = TestServer::routes();
    let backend = Backend::new();
    let req = fastreq::get(server.url("/slow?delay_ms=5000"))
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    // Paused time: the clock jumps to the deadline as soon as the client is idle.
    let err = backend.clone().oneshot(req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(err.is_timeout());
}

#[tokio::test]
async fn body_cap_is_enforced() {
    let server = TestServer::routes();
    let backend = Backend::builder().body_limit(1000).build().unwrap();

    let ok = send(
        &backend,
        fastreq::get(server.url("/?bytes=1000")).build().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(ok.bytes().await.unwrap().len(), 1000);

    let big = send(
        &backend,
        fastreq::get(server.url("/?bytes=1001")).build().unwrap(),
    )
    .await
    .unwrap();
    let err = big.bytes().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BodyTooLarge);

    // Chunked, no Content-Length: caught while streaming.
    let chunked = send(
        &backend,
        fastreq::get(server.url("/?bytes=5000&chunks=5&chunk_ms=1"))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    assert!(chunked.bytes().await.unwrap_err().is_body_too_large());

    // A per-request limit overrides the backend's.
    let req = fastreq::get(server.url("/?bytes=1000"))
        .body_limit(10)
        .build()
        .unwrap();
    let err = send(&backend, req)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap_err();
    assert!(err.is_body_too_large());

    assert!(Backend::builder()
        .body_limit(0)
        .build()
        .unwrap_err()
        .is_config());
    assert!(Backend::builder()
        .connect_timeout(Duration::ZERO)
        .build()
        .unwrap_err()
        .is_config());
}

#[tokio::test]
async fn faults_map_to_errors() {
    let server = TestServer::routes();
    let backend = Backend::new();

    let err = send(
        &backend,
        fastreq::get(server.url("/?fail=reset")).build().unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err:?}");

    let resp = send(
        &backend,
        fastreq::get(server.url("/?fail=truncate")).build().unwrap(),
    )
    .await
    .unwrap();
    let err = resp.bytes().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err:?}");
    assert!(err.url().unwrap().ends_with("/?fail=truncate"));

    let resp = send(
        &backend,
        fastreq::get(server.url("/?fail=reset_after"))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    assert!(resp.bytes().await.is_err());

    // The backend is still usable afterwards.
    let resp = send(&backend, fastreq::get(server.url("/")).build().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn pool_settings_are_honoured() {
    let server = TestServer::routes();
    let no_reuse = Backend::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for _ in 0..5 {
        let resp = send(&no_reuse, fastreq::get(server.url("/")).build().unwrap())
            .await
            .unwrap();
        resp.bytes().await.unwrap();
    }
    assert_eq!(server.connections(), 5);

    let server = TestServer::routes();
    let reuse = Backend::new();
    for _ in 0..5 {
        let resp = send(&reuse, fastreq::get(server.url("/")).build().unwrap())
            .await
            .unwrap();
        resp.bytes().await.unwrap();
    }
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn fetch_buffers_with_metadata() {
    let server = TestServer::routes();
    let req = fastreq::get(server.url("/?bytes=200")).build().unwrap();
    let fetched = fastreq::fetch(Backend::new(), req).await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.body().len(), 200);
    assert_eq!(fetched.final_url().to_string(), server.url("/?bytes=200"));
    assert_eq!(fetched.attempts(), 1);
    assert!(fetched.elapsed() > Duration::ZERO);
    assert!(fetched.headers().contains_key("content-length"));
}

#[tokio::test]
async fn streaming_request_body_is_sent() {
    let server = TestServer::start(|req| Reply::text(format!("{}", req.body.len())));
    let chunks = futures::stream::iter((0..10).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 1000])));
    let req = fastreq::post(server.url("/upload"))
        .body(fastreq::Body::wrap_stream(chunks))
        .build()
        .unwrap();
    let resp = send(&Backend::new(), req).await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "10000");
}

/// A listener whose accept queue is full: new handshakes get no answer, so a connect hangs
/// until the connect timeout. Returns the listener and the connections that fill it.
fn saturated_listener() -> (
    tokio::net::TcpListener,
    Vec<std::net::TcpStream>,
    std::net::SocketAddr,
) {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    (listener, fillers, addr)
}

#[tokio::test(start_paused = true)]
async fn connect_timeout_is_a_timeout() {
    let (_listener, _fillers, addr) = saturated_listener();
    let backend = Backend::builder()
        .connect_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let req = fastreq::get(format!("http://{addr}/")).build().unwrap();
    let started = tokio::time::Instant::now();
    let err = backend.oneshot(req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(err.to_string().contains("connect"), "{err}");
    assert!(started.elapsed() >= Duration::from_secs(3));
}

/// What a [`resumption_server`] saw: full and resumed handshakes, and the cipher suite
/// of the last one.
#[derive(Default)]
struct Handshakes {
    full: std::sync::atomic::AtomicUsize,
    resumed: std::sync::atomic::AtomicUsize,
    last_suite: std::sync::Mutex<Option<tokio_rustls::rustls::CipherSuite>>,
}

/// A TLS server (HTTP/1.1, every response closes its connection) valid for `hosts` names,
/// counting full and resumed handshakes. Returns its address, its certificate (DER) and
/// what it saw.
async fn resumption_server(
    hosts: &[String],
) -> (std::net::SocketAddr, Vec<u8>, std::sync::Arc<Handshakes>) {
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::Arc;
    use tokio_rustls::rustls;

    let ck = rcgen::generate_simple_self_signed(hosts.to_vec()).unwrap();
    let der = ck.cert.der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![der.clone().into()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Handshakes::default());
    let seen2 = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, seen) = (acceptor.clone(), Arc::clone(&seen2));
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let conn = tls.get_ref().1;
                match conn.handshake_kind() {
                    Some(rustls::HandshakeKind::Resumed) => seen.resumed.fetch_add(1, Relaxed),
                    _ => seen.full.fetch_add(1, Relaxed),
                };
                *seen.last_suite.lock().unwrap() =
                    conn.negotiated_cipher_suite().map(|s| s.suite());
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(false)
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, der, seen)
}

/// Two passes over 40 hosts, every connection closed by the server after one response:
/// with the default session cache every handshake of the second pass is resumed; with a
/// cache of 32 servers (rustls's own default) none is, since the cache cycles through.
#[tokio::test]
async fn tls_sessions_resume_across_more_than_32_hosts() {
    use std::sync::atomic::Ordering::Relaxed;
    const HOSTS: usize = 40;
    let hosts: Vec<String> = (0..HOSTS).map(|i| format!("h{i}.many.test")).collect();
    let (addr, der, seen) = resumption_server(&hosts).await;
    for (cache, expect_resumed) in [(None, HOSTS), (Some(32), 0), (Some(0), 0)] {
        let mut b = Backend::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(Certificate::from_der(der.clone()));
        if let Some(n) = cache {
            b = b.tls_session_cache(n);
        }
        for h in &hosts {
            b = b.resolve(h, addr);
        }
        let backend = b.build().unwrap();
        let start = (seen.full.load(Relaxed), seen.resumed.load(Relaxed));
        for _pass in 0..2 {
            for h in &hosts {
                let url = format!("https://{h}:{}/", addr.port());
                let resp = send(&backend, fastreq::get(&url).build().unwrap())
                    .await
                    .unwrap();
                assert_eq!(resp.text().await.unwrap(), "ok");
            }
        }
        let full = seen.full.load(Relaxed) - start.0;
        let resumed = seen.resumed.load(Relaxed) - start.1;
        assert_eq!(
            (full, resumed),
            (2 * HOSTS - expect_resumed, expect_resumed),
            "cache {cache:?}: (full, resumed) handshakes"
        );
    }
}

#[tokio::test]
async fn tls_offers_aes_128_gcm_first() {
    use tokio_rustls::rustls::CipherSuite;
    // rustls's server follows the client's order by default, so it picks the first suite
    // the backend offers (the ring provider alone would get AES-256-GCM).
    let hosts = vec!["aes.test".to_owned()];
    let (addr, der, seen) = resumption_server(&hosts).await;
    let backend = Backend::builder()
        .add_root_certificate(Certificate::from_der(der))
        .resolve("aes.test", addr)
        .build()
        .unwrap();
    let url = format!("https://aes.test:{}/", addr.port());
    let resp = send(&backend, fastreq::get(&url).build().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "ok");
    assert_eq!(
        *seen.last_suite.lock().unwrap(),
        Some(CipherSuite::TLS13_AES_128_GCM_SHA256)
    );
}
