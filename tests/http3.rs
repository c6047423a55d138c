//! The HTTP/3 backend (feature `http3`) against an in-process h3 server (quinn + h3, a
//! self-signed certificate from rcgen) on 127.0.0.1 UDP: bodies both ways, one connection
//! for many concurrent requests, reconnection, handshake failures, timeouts, limits and the
//! preset's retry over it.

#![cfg(feature = "http3")]

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use fastreq::{Backend, Certificate, ErrorKind, ResponseExt};
use http::{StatusCode, Version};
use tower::ServiceExt;

const T: Duration = Duration::from_secs(20);

/// An HTTP/3 server on 127.0.0.1 (UDP port 0). Routes:
/// `/hello`, `/echo` (the request body back, with its method and chunk count in headers),
/// `/big?n=N` (N bytes), `/hang` (never answers), `/flaky` (503 first, then 200).
struct H3Server {
    addr: SocketAddr,
    cert: Vec<u8>,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    live: Arc<Mutex<Vec<quinn::Connection>>>,
    /// How each request body ended on the server: its bytes, or the stream's error.
    bodies: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Result<Vec<u8>, String>>>,
    endpoint: quinn::Endpoint,
}

impl Drop for H3Server {
    fn drop(&mut self) {
        self.endpoint.close(quinn::VarInt::from_u32(0x100), b"bye");
    }
}

impl H3Server {
    fn start() -> H3Server {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "a.test".into()])
            .expect("rcgen");
        let cert = ck.cert.der().to_vec();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()),
        );
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone().into()], key)
            .unwrap();
        tls.alpn_protocols = vec![b"h3".to_vec()];
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
        let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
        let (bodies_tx, bodies) = tokio::sync::mpsc::unbounded_channel();
        let server = H3Server {
            bodies: tokio::sync::Mutex::new(bodies),
            addr: endpoint.local_addr().unwrap(),
            cert,
            connections: Arc::default(),
            requests: Arc::default(),
            live: Arc::default(),
            endpoint: endpoint.clone(),
        };
        let (connections, requests, live) = (
            server.connections.clone(),
            server.requests.clone(),
            server.live.clone(),
        );
        let flaky = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                let (requests, live, flaky) = (requests.clone(), live.clone(), flaky.clone());
                let bodies = bodies_tx.clone();
                let Ok(conn) = incoming.await else { continue };
                connections.fetch_add(1, Ordering::SeqCst);
                live.lock().unwrap().push(conn.clone());
                tokio::spawn(async move {
                    let Ok(mut h3) =
                        h3::server::Connection::<_, Bytes>::new(h3_quinn::Connection::new(conn))
                            .await
                    else {
                        return;
                    };
                    while let Ok(Some(resolver)) = h3.accept().await {
                        requests.fetch_add(1, Ordering::SeqCst);
                        let (flaky, bodies) = (flaky.clone(), bodies.clone());
                        tokio::spawn(async move {
                            match resolver.resolve_request().await {
                                Ok((req, stream)) => {
                                    let _ = handle(req, stream, flaky, bodies).await;
                                }
                                // A stream reset before its head was read.
                                Err(e) => {
                                    let _ = bodies.send(Err(e.to_string()));
                                }
                            }
                        });
                    }
                });
            }
        });
        server
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    fn certificate(&self) -> Certificate {
        Certificate::from_der(self.cert.clone())
    }

    /// A backend over HTTP/3 that trusts this server only.
    fn backend(&self) -> fastreq::BackendBuilder {
        Backend::builder()
            .http3_prior_knowledge()
            .tls_built_in_root_certs(false)
            .add_root_certificate(self.certificate())
    }

    /// How the next request body ended on the server.
    async fn next_body(&self) -> Result<Vec<u8>, String> {
        let mut rx = self.bodies.lock().await;
        tokio::time::timeout(T, rx.recv())
            .await
            .expect("a body in time")
            .expect("the server runs")
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Closes every connection from the server side (`H3_NO_ERROR`).
    fn close_connections(&self) {
        for c in self.live.lock().unwrap().drain(..) {
            c.close(quinn::VarInt::from_u32(0x100), b"server closing");
        }
    }
}

type Stream = h3::server::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

async fn handle(
    req: http::Request<()>,
    mut stream: Stream,
    flaky: Arc<AtomicUsize>,
    bodies: tokio::sync::mpsc::UnboundedSender<Result<Vec<u8>, String>>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let mut body = Vec::new();
    let mut chunks = 0;
    loop {
        match stream.recv_data().await {
            Ok(Some(mut chunk)) => {
                chunks += 1;
                body.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
            }
            Ok(None) => break,
            Err(e) => {
                let _ = bodies.send(Err(e.to_string()));
                return Err(e.into());
            }
        }
    }
    let _ = bodies.send(Ok(body.clone()));
    let mut resp = http::Response::builder()
        .header("x-method", req.method().as_str())
        .header("x-chunks", chunks.to_string());
    let out: Bytes = match path.as_str() {
        "/hello" => Bytes::from_static(b"hello h3"),
        "/echo" => Bytes::from(body),
        "/big" => {
            let n: usize = query.trim_start_matches("n=").parse().unwrap_or(0);
            Bytes::from(vec![b'x'; n])
        }
        "/hang" => std::future::pending().await,
        "/flaky" => {
            if flaky.fetch_add(1, Ordering::SeqCst) == 0 {
                resp = resp.status(StatusCode::SERVICE_UNAVAILABLE);
                Bytes::from_static(b"try again")
            } else {
                Bytes::from_static(b"recovered")
            }
        }
        _ => {
            resp = resp.status(StatusCode::NOT_FOUND);
            Bytes::new()
        }
    };
    stream.send_response(resp.body(()).unwrap()).await?;
    // In chunks, so that large bodies arrive as several frames.
    for part in out.chunks(16 * 1024) {
        stream.send_data(Bytes::copy_from_slice(part)).await?;
    }
    stream.finish().await?;
    Ok(())
}

async fn send(
    backend: &Backend,
    req: http::Request<fastreq::Body>,
) -> Result<http::Response<fastreq::ResponseBody>, fastreq::Error> {
    tokio::time::timeout(T, backend.clone().oneshot(req))
        .await
        .expect("request finished in time")
}

/// GET `path` of `server` through `backend`, within the test's time bound.
async fn get(
    backend: &Backend,
    server: &H3Server,
    path: &str,
) -> Result<http::Response<fastreq::ResponseBody>, fastreq::Error> {
    send(backend, fastreq::get(server.url(path)).build().unwrap()).await
}

#[tokio::test]
async fn get_and_post_with_full_and_streamed_bodies() {
    let server = H3Server::start();
    let backend = server.backend().build().unwrap();
    assert!(backend.is_http3());

    let resp = get(&backend, &server, "/hello").await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), Version::HTTP_3);
    assert_eq!(resp.final_url().unwrap().to_string(), server.url("/hello"));
    assert_eq!(resp.text().await.unwrap(), "hello h3");

    let req = fastreq::post(server.url("/echo"))
        .body("posted body")
        .build()
        .unwrap();
    let resp = send(&backend, req).await.unwrap();
    assert_eq!(resp.headers()["x-method"], "POST");
    assert_eq!(resp.text().await.unwrap(), "posted body");

    // A streamed request body arrives whole, chunk by chunk.
    let chunks = (0..5).map(|i| Ok::<_, std::io::Error>(Bytes::from(format!("part{i};"))));
    let body = fastreq::Body::wrap_stream(futures::stream::iter(chunks));
    let mut req = fastreq::post(server.url("/echo")).build().unwrap();
    *req.body_mut() = body;
    let resp = send(&backend, req).await.unwrap();
    assert!(
        resp.headers()["x-chunks"]
            .to_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            >= 1
    );
    assert_eq!(resp.text().await.unwrap(), "part0;part1;part2;part3;part4;");

    // A large response body streams in many frames.
    let resp = get(&backend, &server, "/big?n=1000000").await.unwrap();
    let mut body = resp.into_body();
    let mut frames = 0;
    let mut total = 0;
    while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
        let data = frame.unwrap().into_data().unwrap();
        frames += 1;
        total += data.len();
    }
    assert_eq!(total, 1_000_000);
    assert!(frames > 1, "streamed, not buffered: {frames} frame(s)");

    assert_eq!(server.connections(), 1);
    assert_eq!(backend.http3_connections(), 1);
}

#[tokio::test]
async fn many_concurrent_requests_share_one_connection() {
    let server = H3Server::start();
    let backend = server.backend().build().unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let backend = backend.clone();
            let url = server.url("/echo");
            tokio::spawn(async move {
                let req = fastreq::post(url).body(format!("n{i}")).build().unwrap();
                let resp = send(&backend, req).await.unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
                assert_eq!(resp.text().await.unwrap(), format!("n{i}"));
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(server.requests(), 200);
    // The 200 first requests raced for the origin: one handshake, one connection.
    assert_eq!(server.connections(), 1);
    assert_eq!(backend.http3_connections(), 1);
}

#[tokio::test]
async fn a_closed_connection_is_replaced() {
    let server = H3Server::start();
    let backend = server.backend().build().unwrap();
    let resp = get(&backend, &server, "/hello").await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello h3");
    assert_eq!(server.connections(), 1);

    server.close_connections();
    // Whether the client saw the close yet or not, the next request gets an answer.
    let resp = get(&backend, &server, "/hello").await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello h3");
    assert_eq!(server.connections(), 2);
    let resp = get(&backend, &server, "/hello").await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error() {
    let server = H3Server::start();
    let backend = Backend::builder()
        .http3_prior_knowledge()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    let err = get(&backend, &server, "/hello").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.url().unwrap().contains("/hello"));
    assert_eq!(server.requests(), 0);

    // The same server, trusted through `danger_accept_invalid_certs`.
    let backend = Backend::builder()
        .http3_prior_knowledge()
        .tls_built_in_root_certs(false)
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let resp = get(&backend, &server, "/hello").await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

/// A UDP port that was free a moment ago (nobody answers QUIC there), and an HTTP/3
/// backend with a 500 ms connect timeout.
fn silent_port_and_backend() -> (u16, Backend) {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let backend = Backend::builder()
        .http3_prior_knowledge()
        .connect_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    (port, backend)
}

#[tokio::test]
async fn nothing_listening_fails_within_the_connect_timeout() {
    // A port that was free a moment ago: nobody answers QUIC there.
    let (port, backend) = silent_port_and_backend();
    let started = Instant::now();
    let req = fastreq::get(format!("https://127.0.0.1:{port}/"))
        .build()
        .unwrap();
    let err = send(&backend, req).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Connect | ErrorKind::Timeout),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // The failure was not cached as a connection: the origin has none.
    assert_eq!(backend.http3_connections(), 0);
}

#[tokio::test]
async fn concurrent_first_requests_share_one_failed_handshake() {
    let (port, backend) = silent_port_and_backend();
    let started = Instant::now();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let backend = backend.clone();
            let url = format!("https://127.0.0.1:{port}/");
            tokio::spawn(async move {
                send(&backend, fastreq::get(url).build().unwrap())
                    .await
                    .unwrap_err()
            })
        })
        .collect();
    for t in tasks {
        let err = t.await.unwrap();
        assert!(matches!(
            err.kind(),
            ErrorKind::Connect | ErrorKind::Timeout
        ));
    }
    // One shared attempt of 500 ms, not twenty in a row.
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn resolver_overrides_apply() {
    let server = H3Server::start();
    let backend = server
        .backend()
        .resolve("a.test", server.addr)
        .build()
        .unwrap();
    let url = format!("https://a.test:{}/hello", server.addr.port());
    let resp = send(&backend, fastreq::get(url).build().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello h3");
}

#[tokio::test]
async fn request_timeout_is_honoured() {
    let server = H3Server::start();
    let backend = server.backend().build().unwrap();
    let mut req = fastreq::get(server.url("/hang")).build().unwrap();
    req.extensions_mut()
        .insert(fastreq::ext::RequestTimeout(Duration::from_millis(300)));
    let started = Instant::now();
    let err = send(&backend, req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The connection is still good for the next request.
    let resp = get(&backend, &server, "/hello").await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn the_body_limit_applies() {
    let server = H3Server::start();
    let backend = server.backend().body_limit(1000).build().unwrap();
    let resp = get(&backend, &server, "/big?n=5000").await.unwrap();
    let err = resp.bytes().await.unwrap_err();
    assert!(err.is_body_too_large(), "{err}");
    let resp = get(&backend, &server, "/big?n=999").await.unwrap();
    assert_eq!(resp.bytes().await.unwrap().len(), 999);
}

#[tokio::test]
async fn a_proxy_is_refused_over_http3() {
    let server = H3Server::start();
    let backend = server.backend().build().unwrap();
    let mut req = fastreq::get(server.url("/hello")).build().unwrap();
    let proxy = fastreq::proxy::Proxy::parse("http://user:secret@127.0.0.1:9").unwrap();
    req.extensions_mut()
        .insert(fastreq::proxy::ProxyOverride(Some(proxy)));
    let err = send(&backend, req).await.unwrap_err();
    assert!(err.is_config(), "{err}");
    assert!(!err.to_string().contains("secret"));
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn the_preset_retries_over_http3() {
    let server = H3Server::start();
    let client = fastreq::stack()
        .http3()
        .backend_config(|b| b.tls_built_in_root_certs(false))
        .add_root_certificate(server.certificate())
        .resolve("a.test", server.addr)
        .retries(2)
        .backoff(Duration::from_millis(1), 1.0, Duration::from_millis(1))
        .build()
        .unwrap();
    let url = format!("https://a.test:{}/flaky", server.addr.port());
    let fetched = tokio::time::timeout(T, client.get(&url))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.version(), Version::HTTP_3);
    assert_eq!(fetched.text(), "recovered");
    assert_eq!(fetched.attempts(), 2);
    assert_eq!(server.requests(), 2);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_failing_request_body_is_never_sent_as_complete() {
    let server = H3Server::start();
    let backend = server.backend().build().unwrap();
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"first part")),
        Err(std::io::Error::other("disk gone")),
    ];
    let mut req = fastreq::post(server.url("/echo")).build().unwrap();
    *req.body_mut() = fastreq::Body::wrap_stream(futures::stream::iter(chunks));
    let err = send(&backend, req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    // The server saw the stream cancelled, not a short body that looks whole.
    let seen = server.next_body().await;
    assert!(seen.is_err(), "the server took {seen:?} as a complete body");
    // The connection serves the next request.
    let resp = get(&backend, &server, "/hello").await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn http_urls_still_go_over_tcp() {
    let tcp = support::TestServer::start(|_req| support::Reply::text("over tcp"));
    let h3 = H3Server::start();
    let backend = h3.backend().build().unwrap();
    let resp = send(&backend, fastreq::get(tcp.url("/plain")).build().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.version(), Version::HTTP_11);
    assert_eq!(resp.text().await.unwrap(), "over tcp");
    assert_eq!(backend.http3_connections(), 0);
    assert_eq!(h3.connections(), 0);
}

/// The CLI's `--http3`: a line fetched over QUIC says `"version":"h3"`.
#[cfg(feature = "cli")]
#[tokio::test]
async fn the_cli_fetches_over_http3() {
    let server = H3Server::start();
    let dir = std::env::temp_dir().join(format!("fastreq-h3-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("urls.txt");
    std::fs::write(&input, format!("{}\n", server.url("/hello"))).unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_fastreq"))
        .args([
            "fetch",
            "--http3",
            "--insecure-skip-tls-verify",
            "-q",
            "--progress",
            "none",
        ])
        .arg(&input)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the CLI finished in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(r#""status":200"#), "{stdout}");
    assert!(stdout.contains(r#""version":"h3""#), "{stdout}");
    assert_eq!(server.connections(), 1);

    let clash = tokio::process::Command::new(env!("CARGO_BIN_EXE_fastreq"))
        .args(["fetch", "--http3", "--http1-only"])
        .arg(&input)
        .output()
        .await
        .unwrap();
    assert_eq!(
        clash.status.code(),
        Some(2),
        "--http3 with --http1-only is a usage error"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
