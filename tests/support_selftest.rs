//! Self-test of the shared local test server in `tests/support`, driven by raw
//! hyper client connections (no fastreq code involved).

mod support;

use std::future::Future;
use std::io::Read as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::rt::{Read, Write};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

use support::{closed_port, Reply, TestRequest, TestServer, DEFAULT_JSON};

/// Upper bound for any single network await in these tests.
const LIMIT: Duration = Duration::from_secs(10);

async fn within<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(LIMIT, fut)
        .await
        .expect("network operation timed out")
}

// ---------------------------------------------------------------- raw client

enum Client {
    H1 {
        tx: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        host: String,
    },
    H2 {
        tx: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
        base: String,
    },
}

impl Client {
    async fn h1_over<I>(io: I, host: String) -> Client
    where
        I: Read + Write + Unpin + Send + 'static,
    {
        let (tx, conn) = within(hyper::client::conn::http1::handshake(io))
            .await
            .expect("h1 handshake");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Client::H1 { tx, host }
    }

    async fn h2_over<I>(io: I, base: String) -> Client
    where
        I: Read + Write + Unpin + Send + 'static,
    {
        let (tx, conn) = within(hyper::client::conn::http2::handshake(
            TokioExecutor::new(),
            io,
        ))
        .await
        .expect("h2 handshake");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Client::H2 { tx, base }
    }

    /// Plain TCP HTTP/1.1 connection to `server`.
    async fn h1(server: &TestServer) -> Client {
        let tcp = within(TcpStream::connect(server.addr()))
            .await
            .expect("connect");
        Self::h1_over(TokioIo::new(tcp), server.addr().to_string()).await
    }

    /// Plain TCP h2c (prior knowledge) connection to `server`.
    async fn h2(server: &TestServer) -> Client {
        let tcp = within(TcpStream::connect(server.addr()))
            .await
            .expect("connect");
        Self::h2_over(TokioIo::new(tcp), server.base_url()).await
    }

    /// Same connection, another handle (HTTP/2 only: multiplexing).
    fn clone_h2(&self) -> Client {
        match self {
            Client::H2 { tx, base } => Client::H2 {
                tx: tx.clone(),
                base: base.clone(),
            },
            Client::H1 { .. } => panic!("clone_h2 on an HTTP/1 client"),
        }
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &'static str,
    ) -> hyper::Result<Response<Incoming>> {
        let mut builder = match self {
            Client::H1 { host, .. } => Request::builder().uri(path).header("host", host.as_str()),
            Client::H2 { base, .. } => Request::builder().uri(format!("{base}{path}")),
        };
        builder = builder.method(method);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let req = builder
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap();
        within(async {
            match self {
                Client::H1 { tx, .. } => {
                    tx.ready().await?;
                    tx.send_request(req).await
                }
                Client::H2 { tx, .. } => {
                    tx.ready().await?;
                    tx.send_request(req).await
                }
            }
        })
        .await
    }

    async fn get(&mut self, path: &str) -> Response<Incoming> {
        self.send("GET", path, &[], "").await.expect("GET failed")
    }
}

/// Reads the whole body (bounded).
async fn body(res: Response<Incoming>) -> Result<Bytes, hyper::Error> {
    within(res.into_body().collect())
        .await
        .map(|c| c.to_bytes())
}

/// Reads data frames until the end or an error; returns what arrived and the error.
async fn frames(res: Response<Incoming>) -> (Vec<u8>, Option<hyper::Error>) {
    let mut body = res.into_body();
    let mut data = Vec::new();
    loop {
        match within(body.frame()).await {
            None => return (data, None),
            Some(Ok(frame)) => {
                if let Ok(chunk) = frame.into_data() {
                    data.extend_from_slice(&chunk);
                }
            }
            Some(Err(e)) => return (data, Some(e)),
        }
    }
}

/// Next data frame of a body (None at the end). Panics on error.
async fn next_chunk(body: &mut Incoming) -> Option<Bytes> {
    loop {
        match within(body.frame()).await {
            None => return None,
            Some(Ok(frame)) => {
                // HTTP/2 may end the stream with an empty DATA frame.
                if let Ok(chunk) = frame.into_data().map_err(drop).and_then(non_empty) {
                    return Some(chunk);
                }
            }
            Some(Err(e)) => panic!("body error: {e}"),
        }
    }
}

fn non_empty(b: Bytes) -> Result<Bytes, ()> {
    if b.is_empty() {
        Err(())
    } else {
        Ok(b)
    }
}

fn header<'a>(res: &'a Response<Incoming>, name: &str) -> Option<&'a str> {
    res.headers().get(name).map(|v| v.to_str().unwrap())
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

/// A handler that hands one pre-made receiver to the first request only.
fn take_once(rx: mpsc::Receiver<Bytes>) -> impl Fn(TestRequest) -> Reply + Send + Sync {
    let slot = Mutex::new(Some(rx));
    move |_| match slot.lock().unwrap().take() {
        Some(rx) => Reply::stream(rx),
        None => Reply::status(410),
    }
}

async fn tls_connect(
    server: &TestServer,
    trust_der: Vec<u8>,
    sni: &str,
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(trust_der))
        .expect("add root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = ServerName::try_from(sni).expect("server name").to_owned();
    let tcp = within(TcpStream::connect(server.addr())).await?;
    within(tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp)).await
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn status_headers_body_and_request_capture() {
    let (req_tx, mut req_rx) = mpsc::unbounded_channel::<TestRequest>();
    let server = TestServer::start(move |req| {
        let _ = req_tx.send(req);
        Reply::text("hello")
            .with_status(201)
            .header("x-test", "yes")
            .header("x-multi", "1")
            .header("x-multi", "2")
    });
    assert!(server.url("/a").starts_with("http://127.0.0.1:"));
    assert_eq!(server.url("a"), server.url("/a"));
    assert_eq!(server.addr().ip().to_string(), "127.0.0.1");

    let tcp = within(TcpStream::connect(server.addr())).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let mut c = Client::h1_over(TokioIo::new(tcp), server.addr().to_string()).await;
    let res = c
        .send("POST", "/echo?x=1&y=a%20b", &[("x-req", "abc")], "payload")
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.version(), Version::HTTP_11);
    assert_eq!(header(&res, "x-test"), Some("yes"));
    assert_eq!(
        header(&res, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(header(&res, "content-length"), Some("5"));
    let multi: Vec<_> = res.headers().get_all("x-multi").iter().collect();
    assert_eq!(multi, ["1", "2"]);
    assert_eq!(body(res).await.unwrap(), "hello");

    let req = req_rx.recv().await.unwrap();
    assert_eq!(req.method, http::Method::POST);
    assert_eq!(req.path(), "/echo");
    assert_eq!(req.query(), Some("x=1&y=a%20b"));
    assert_eq!(req.query_param("y").as_deref(), Some("a b"));
    assert_eq!(req.query_param("z"), None);
    assert_eq!(req.header("x-req"), Some("abc"));
    assert_eq!(req.version, Version::HTTP_11);
    assert_eq!(req.body, "payload");
    assert_eq!(req.text(), "payload");
    assert_eq!(req.peer, local);
}

#[tokio::test]
async fn reply_constructors() {
    let server = TestServer::start(|req| match req.path() {
        "/ok" => Reply::ok(),
        "/404" => Reply::status(404).body("nope"),
        "/bytes" => Reply::bytes(vec![0u8, 1, 2]),
        "/json" => Reply::json(r#"{"a":1}"#),
        _ => Reply::status(500),
    });
    let mut c = Client::h1(&server).await;

    let res = c.get("/ok").await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "content-length"), Some("0"));
    assert!(body(res).await.unwrap().is_empty());

    let res = c.get("/404").await;
    assert_eq!(res.status(), 404);
    assert_eq!(body(res).await.unwrap(), "nope");

    let res = c.get("/bytes").await;
    assert_eq!(
        header(&res, "content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(body(res).await.unwrap(), &[0u8, 1, 2][..]);

    let res = c.get("/json").await;
    assert_eq!(header(&res, "content-type"), Some("application/json"));
    assert_eq!(body(res).await.unwrap(), r#"{"a":1}"#);
}

#[tokio::test]
async fn async_handler() {
    let server = TestServer::start_async(|req| async move {
        tokio::task::yield_now().await;
        Reply::text(format!("async {}", req.path()))
    });
    let mut c = Client::h1(&server).await;
    let res = c.get("/x").await;
    assert_eq!(body(res).await.unwrap(), "async /x");
}

#[tokio::test]
async fn keep_alive_reuses_one_connection() {
    let server = TestServer::start(|_| Reply::text("k"));
    let mut c = Client::h1(&server).await;
    for _ in 0..20 {
        let res = c.get("/k").await;
        assert_eq!(body(res).await.unwrap(), "k");
    }
    assert_eq!(server.connections(), 1);
    assert_eq!(server.hits(), 20);
    assert_eq!(server.hits_for("/k"), 20);
    assert_eq!(server.hits_for("/other"), 0);
    assert_eq!(server.http1_requests(), 20);
    assert_eq!(server.http2_requests(), 0);
    assert_eq!(server.active(), 0);
    assert_eq!(server.max_active(), 1);
}

#[tokio::test]
async fn delay_holds_back_headers() {
    let server = TestServer::start(|_| Reply::text("late").delay(Duration::from_millis(200)));

    // A client deadline shorter than the delay expires.
    let mut c = Client::h1(&server).await;
    let early = tokio::time::timeout(Duration::from_millis(50), c.get("/d")).await;
    assert!(early.is_err(), "response arrived before the delay");
    assert!(server.stats().wait_until(|s| s.active() == 1, LIMIT).await);

    // A patient client gets the response after at least the delay.
    let mut c = Client::h1(&server).await;
    let start = Instant::now();
    let res = c.get("/d").await;
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(body(res).await.unwrap(), "late");
}

#[tokio::test]
async fn reset_before_headers_h1_and_h2() {
    let server = TestServer::start(|req| match req.path() {
        "/reset" => Reply::reset_before_headers(),
        _ => Reply::text("fine"),
    });

    let mut c = Client::h1(&server).await;
    let err = c.send("GET", "/reset", &[], "").await.unwrap_err();
    assert!(err.is_incomplete_message() || err.is_closed(), "{err:?}");

    // HTTP/2: only the stream is reset; the connection keeps working.
    let mut c = Client::h2(&server).await;
    assert!(c.send("GET", "/reset", &[], "").await.is_err());
    let res = c.get("/ok").await;
    assert_eq!(body(res).await.unwrap(), "fine");
    assert!(server.stats().wait_until(|s| s.active() == 0, LIMIT).await);
}

#[tokio::test]
async fn reset_after_headers_h1_and_h2() {
    let server = TestServer::start(|_| Reply::reset_after_headers("partial").header("x-h", "1"));

    let mut c = Client::h1(&server).await;
    let res = c.get("/r").await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "x-h"), Some("1"));
    assert_eq!(header(&res, "content-length"), None);
    let (data, err) = frames(res).await;
    assert_eq!(data, b"partial");
    assert!(err.is_some(), "body should fail after the partial chunk");

    let mut c = Client::h2(&server).await;
    let failed = match c.send("GET", "/r", &[], "").await {
        Err(_) => true,
        Ok(res) => frames(res).await.1.is_some(),
    };
    assert!(failed, "h2 stream should be reset");
    assert!(server.stats().wait_until(|s| s.active() == 0, LIMIT).await);
}

#[tokio::test]
async fn truncated_body_h1_and_h2() {
    let server = TestServer::start(|_| Reply::truncated("short", 100));

    let mut c = Client::h1(&server).await;
    let res = c.get("/t").await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "content-length"), Some("100"));
    let (data, err) = frames(res).await;
    assert_eq!(data, b"short");
    assert!(err.is_some(), "short body must be an error");

    let mut c = Client::h2(&server).await;
    let failed = match c.send("GET", "/t", &[], "").await {
        Err(_) => true,
        Ok(res) => frames(res).await.1.is_some(),
    };
    assert!(failed, "h2 content-length mismatch should be an error");
}

#[tokio::test]
async fn slow_body_arrives_in_pieces_over_time() {
    let server =
        TestServer::start(|_| Reply::text("abcdefgh").slow_body(4, Duration::from_millis(40)));
    for mut c in [Client::h1(&server).await, Client::h2(&server).await] {
        let start = Instant::now();
        let res = c.get("/slow").await;
        assert_eq!(header(&res, "content-length"), Some("8"));
        let (data, err) = frames(res).await;
        assert!(err.is_none());
        assert_eq!(data, b"abcdefgh");
        // 4 chunks = 3 pauses.
        assert!(start.elapsed() >= Duration::from_millis(120));
    }
}

#[tokio::test]
async fn stream_body_is_controlled_by_the_test() {
    for h2 in [false, true] {
        let (tx, rx) = mpsc::channel::<Bytes>(4);
        let server = TestServer::start(take_once(rx));
        let mut c = if h2 {
            Client::h2(&server).await
        } else {
            Client::h1(&server).await
        };
        let res = c.get("/stream").await;
        assert_eq!(res.status(), 200);
        if !h2 {
            assert_eq!(header(&res, "transfer-encoding"), Some("chunked"));
        }
        assert_eq!(server.active(), 1, "open stream body counts as active");

        let mut body = res.into_body();
        tx.send(Bytes::from_static(b"one")).await.unwrap();
        assert_eq!(next_chunk(&mut body).await.unwrap(), "one");
        tx.send(Bytes::from_static(b"two")).await.unwrap();
        assert_eq!(next_chunk(&mut body).await.unwrap(), "two");
        assert_eq!(server.active(), 1);
        drop(tx);
        assert_eq!(next_chunk(&mut body).await, None);
        assert!(server.stats().wait_until(|s| s.active() == 0, LIMIT).await);
        assert_eq!(server.max_active(), 1);
    }
}

#[tokio::test]
async fn gzip_body_decodes_with_flate2() {
    let text = "hello gzip ".repeat(50);
    let expected = text.clone();
    let server = TestServer::start(move |_| Reply::text(text.clone()).gzip());
    let mut c = Client::h1(&server).await;
    let res = c.get("/gz").await;
    assert_eq!(header(&res, "content-encoding"), Some("gzip"));
    let raw = body(res).await.unwrap();
    assert!(raw.len() < expected.len());
    assert_eq!(gunzip(&raw), expected.as_bytes());
    assert_eq!(gunzip(&support::gzip_bytes(b"abc")), b"abc");
}

#[tokio::test]
async fn stats_counters_and_reset() {
    let (tx_out, mut senders) = mpsc::unbounded_channel::<mpsc::Sender<Bytes>>();
    let server = TestServer::start(move |req| {
        if req.path() == "/hold" {
            let (tx, rx) = mpsc::channel(1);
            let _ = tx_out.send(tx);
            Reply::stream(rx)
        } else {
            Reply::ok()
        }
    });

    // Three bodies held open concurrently on one h2 connection.
    let c = Client::h2(&server).await;
    let mut pending = Vec::new();
    for _ in 0..3 {
        let mut c = c.clone_h2();
        pending.push(tokio::spawn(async move { c.get("/hold").await }));
    }
    let mut responses = Vec::new();
    for p in pending {
        responses.push(within(p).await.unwrap());
    }
    assert_eq!(server.active(), 3);
    assert_eq!(server.max_active(), 3);
    assert_eq!(server.http2_requests(), 3);
    assert_eq!(server.connections(), 1);

    let mut h1 = Client::h1(&server).await;
    body(h1.get("/a").await).await.unwrap();
    body(h1.get("/a").await).await.unwrap();
    assert_eq!(server.hits(), 5);
    assert_eq!(server.hits_for("/a"), 2);
    assert_eq!(server.hits_for("/hold"), 3);
    assert_eq!(server.stats().paths().len(), 2);
    assert_eq!(server.http1_requests(), 2);
    assert_eq!(server.connections(), 2);

    // Release the held bodies.
    let mut txs = Vec::new();
    while let Ok(tx) = senders.try_recv() {
        txs.push(tx);
    }
    assert_eq!(txs.len(), 3);
    drop(txs);
    for res in responses {
        assert!(body(res).await.unwrap().is_empty());
    }
    assert!(server.stats().wait_until(|s| s.active() == 0, LIMIT).await);
    // The (sequential) `/a` requests ran while the three bodies were held open.
    assert_eq!(server.max_active(), 4);

    server.reset_stats();
    assert_eq!(server.hits(), 0);
    assert_eq!(server.hits_for("/a"), 0);
    assert_eq!(server.connections(), 0);
    assert_eq!(server.http1_requests(), 0);
    assert_eq!(server.http2_requests(), 0);
    assert_eq!(server.max_active(), 0);

    body(h1.get("/b").await).await.unwrap();
    assert_eq!(server.hits(), 1);
    assert_eq!(server.hits_for("/b"), 1);
    assert_eq!(
        server.connections(),
        0,
        "reused connection is not counted again"
    );

    // Path tracking can be switched off.
    let untracked = TestServer::builder()
        .track_paths(false)
        .start(|_| Reply::ok());
    let mut c = Client::h1(&untracked).await;
    body(c.get("/p").await).await.unwrap();
    assert_eq!(untracked.hits(), 1);
    assert_eq!(untracked.hits_for("/p"), 0);
}

#[tokio::test]
async fn h2c_prior_knowledge() {
    let (req_tx, mut req_rx) = mpsc::unbounded_channel::<TestRequest>();
    let server = TestServer::start(move |req| {
        let _ = req_tx.send(req);
        Reply::text("over h2")
    });
    let mut c = Client::h2(&server).await;
    for _ in 0..3 {
        let res = c.get("/h2?q=1").await;
        assert_eq!(res.version(), Version::HTTP_2);
        assert_eq!(body(res).await.unwrap(), "over h2");
    }
    let req = req_rx.recv().await.unwrap();
    assert_eq!(req.version, Version::HTTP_2);
    assert_eq!(req.path(), "/h2");
    assert_eq!(req.query_param("q").as_deref(), Some("1"));
    assert_eq!(server.http2_requests(), 3);
    assert_eq!(server.http1_requests(), 0);
    assert_eq!(server.connections(), 1);
    assert_eq!(server.hits_for("/h2"), 3);
}

#[tokio::test]
async fn http1_only_and_http2_only() {
    let h1_only = TestServer::builder().http1_only().start(|_| Reply::ok());
    let tcp = within(TcpStream::connect(h1_only.addr())).await.unwrap();
    let h2_attempt = async {
        let (mut tx, conn) = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(
            TokioExecutor::new(),
            TokioIo::new(tcp),
        )
        .await?;
        tokio::spawn(conn);
        let req = Request::builder()
            .uri(h1_only.url("/"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        tx.send_request(req).await
    };
    assert!(within(h2_attempt).await.is_err(), "h2c must be refused");
    let mut c = Client::h1(&h1_only).await;
    assert_eq!(c.get("/").await.status(), 200);

    let h2_only = TestServer::builder().http2_only().start(|_| Reply::ok());
    let mut c = Client::h1(&h2_only).await;
    assert!(
        c.send("GET", "/", &[], "").await.is_err(),
        "HTTP/1 must be refused"
    );
    let mut c = Client::h2(&h2_only).await;
    assert_eq!(c.get("/").await.status(), 200);
}

#[tokio::test]
async fn tls_with_alpn_h2_and_http1() {
    let server = TestServer::builder()
        .tls()
        .start(|req| Reply::text(format!("{:?}", req.version)));
    assert!(server.is_tls());
    assert!(server.url("/x").starts_with("https://localhost:"));
    assert!(server.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    let from_pem = CertificateDer::from_pem_slice(server.cert_pem().as_bytes()).unwrap();
    assert_eq!(from_pem.as_ref(), server.cert_der().as_slice());

    // ALPN h2 -> HTTP/2.
    let tls = tls_connect(
        &server,
        server.cert_der(),
        "localhost",
        &[b"h2", b"http/1.1"],
    )
    .await
    .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut c = Client::h2_over(TokioIo::new(tls), server.base_url()).await;
    let res = c.get("/tls").await;
    assert_eq!(res.version(), Version::HTTP_2);
    assert_eq!(body(res).await.unwrap(), "HTTP/2.0");

    // ALPN http/1.1 -> HTTP/1.1.
    let tls = tls_connect(&server, server.cert_der(), "localhost", &[b"http/1.1"])
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut c = Client::h1_over(TokioIo::new(tls), format!("localhost:{}", server.port())).await;
    assert_eq!(body(c.get("/tls").await).await.unwrap(), "HTTP/1.1");

    // Other names on the certificate.
    for name in ["a.test", "b.test", "127.0.0.1"] {
        tls_connect(&server, server.cert_der(), name, &[b"http/1.1"])
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(server
        .url_with_host("a.test", "/p")
        .starts_with("https://a.test:"));

    // A name not on the certificate, and an untrusted certificate, both fail.
    assert!(tls_connect(&server, server.cert_der(), "c.test", &[])
        .await
        .is_err());
    let other = TestServer::builder().tls().start(|_| Reply::ok());
    assert!(tls_connect(&server, other.cert_der(), "localhost", &[])
        .await
        .is_err());

    assert_eq!(server.http2_requests(), 1);
    assert_eq!(server.http1_requests(), 1);
}

#[tokio::test]
async fn tls_http1_only_does_not_offer_h2() {
    let server = TestServer::builder()
        .tls()
        .http1_only()
        .start(|_| Reply::ok());
    let tls = tls_connect(
        &server,
        server.cert_der(),
        "localhost",
        &[b"h2", b"http/1.1"],
    )
    .await
    .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut c = Client::h1_over(TokioIo::new(tls), format!("localhost:{}", server.port())).await;
    assert_eq!(c.get("/").await.status(), 200);
}

#[tokio::test]
async fn builtin_routes() {
    let server = TestServer::routes();

    // Default: 200-byte JSON.
    let mut c = Client::h1(&server).await;
    let res = c.get("/any/path").await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "content-type"), Some("application/json"));
    let b = body(res).await.unwrap();
    assert_eq!(b, DEFAULT_JSON);
    assert_eq!(b.len(), 200);

    let res = c.get("/?status=503").await;
    assert_eq!(res.status(), 503);
    assert_eq!(body(res).await.unwrap(), DEFAULT_JSON);

    let res = c.get("/?bytes=300").await;
    let b = body(res).await.unwrap();
    assert_eq!(b.len(), 300);
    assert!(b.starts_with(b"abcdefghijklmnopqrstuvwxyzabc"));
    assert_eq!(b, support::pattern_body(300));

    let start = Instant::now();
    let res = c.get("/?delay_ms=100").await;
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert_eq!(res.status(), 200);
    body(res).await.unwrap();

    let res = c.get("/?gzip=1").await;
    assert_eq!(header(&res, "content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&body(res).await.unwrap()), DEFAULT_JSON.as_bytes());

    let start = Instant::now();
    let res = c.get("/?bytes=40&chunks=4&chunk_ms=20").await;
    assert_eq!(body(res).await.unwrap(), support::pattern_body(40));
    assert!(start.elapsed() >= Duration::from_millis(60));

    let res = c.get("/?status=302&location=/elsewhere").await;
    assert_eq!(res.status(), 302);
    assert_eq!(header(&res, "location"), Some("/elsewhere"));
    body(res).await.unwrap();

    let res = c.get("/?status=abc").await;
    assert_eq!(res.status(), 400);
    body(res).await.unwrap();

    let res = c
        .send("POST", "/r?echo=1", &[("x-echo", "42")], "echo body")
        .await
        .unwrap();
    assert_eq!(
        header(&res, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    let text = String::from_utf8(body(res).await.unwrap().to_vec()).unwrap();
    assert!(text.starts_with("POST /r?echo=1 HTTP/1.1\n"), "{text}");
    assert!(text.contains("\nx-echo: 42\n"), "{text}");
    assert!(text.ends_with("\n\necho body"), "{text}");

    // Faults (each closes its HTTP/1 connection, so use fresh ones).
    let mut c = Client::h1(&server).await;
    assert!(c.send("GET", "/?fail=reset", &[], "").await.is_err());

    let mut c = Client::h1(&server).await;
    let res = c.get("/?fail=reset_after").await;
    let (data, err) = frames(res).await;
    assert!(err.is_some());
    assert_eq!(data, &DEFAULT_JSON.as_bytes()[..100]);

    let mut c = Client::h1(&server).await;
    let res = c.get("/?fail=truncate").await;
    assert_eq!(header(&res, "content-length"), Some("200"));
    let (data, err) = frames(res).await;
    assert!(err.is_some());
    assert_eq!(data, &DEFAULT_JSON.as_bytes()[..100]);

    let mut c = Client::h1(&server).await;
    let res = c.get("/?fail=bogus").await;
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn closed_port_and_blackhole() {
    let err = within(TcpStream::connect(closed_port())).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(support::closed_url("/x").starts_with("http://127.0.0.1:"));

    let hole = support::blackhole();
    let mut tcp = within(TcpStream::connect(hole.local_addr().unwrap()))
        .await
        .unwrap();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(
        Duration::from_millis(100),
        tokio::io::AsyncReadExt::read(&mut tcp, &mut buf),
    )
    .await;
    assert!(read.is_err(), "blackhole must never send anything");
}

#[tokio::test]
async fn concurrent_requests_on_worker_threads() {
    let barrier = Arc::new(tokio::sync::Barrier::new(4));
    let server = TestServer::builder()
        .worker_threads(4)
        .start_async(move |_| {
            let barrier = Arc::clone(&barrier);
            async move {
                // Completes only when 4 requests are in the handler at once.
                barrier.wait().await;
                Reply::text("together")
            }
        });
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut c = Client::h1(&server).await;
        tasks.push(tokio::spawn(async move {
            body(c.get("/b").await).await.unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(within(t).await.unwrap(), "together");
    }
    assert_eq!(server.max_active(), 4);
    assert_eq!(server.connections(), 4);
}

#[tokio::test]
async fn handler_panic_becomes_500() {
    let server = TestServer::start(|req| {
        if req.path() == "/boom" {
            panic!("intentional test panic");
        }
        Reply::ok()
    });
    let mut c = Client::h1(&server).await;
    let res = c.get("/boom").await;
    assert_eq!(res.status(), 500);
    let text = body(res).await.unwrap();
    assert!(std::str::from_utf8(&text)
        .unwrap()
        .contains("intentional test panic"));
    assert_eq!(server.stats().panics(), 1);
    assert_eq!(c.get("/fine").await.status(), 200);
    assert_eq!(server.active(), 0);
}

#[tokio::test]
async fn drop_stops_listening_without_hanging() {
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let server = TestServer::start(take_once(rx));
    let addr = server.addr();
    let mut c = Client::h1(&server).await;
    let res = c.get("/held").await;

    // Dropping inside an async context, with a body still open, must be quick and not panic.
    let start = Instant::now();
    drop(server);
    assert!(start.elapsed() < Duration::from_secs(3));

    let (_, err) = frames(res).await;
    assert!(err.is_some(), "open body must fail once the server is gone");
    drop(tx);
    let err = within(TcpStream::connect(addr)).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);

    // Explicit shutdown is the same as drop.
    let server = TestServer::routes();
    let addr = server.addr();
    server.shutdown();
    assert!(within(TcpStream::connect(addr)).await.is_err());
}

/// No tokio runtime at all on the caller side.
#[test]
fn works_from_sync_code() {
    use std::io::Write as _;
    let server = TestServer::routes();
    let mut tcp = std::net::TcpStream::connect(server.addr()).unwrap();
    tcp.set_read_timeout(Some(LIMIT)).unwrap();
    tcp.write_all(b"GET /?bytes=5 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\nabcde"), "{out}");
    assert_eq!(server.hits(), 1);
    drop(server);
}
