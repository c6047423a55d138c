//! HTTP/3 over QUIC for [`Backend`](super::Backend) (feature `http3`): hyperium's `h3` on
//! `quinn`, with the backend's rustls settings (ring provider, the same roots).
//!
//! One QUIC connection per origin (host, port) carries every concurrent request to it as
//! its own stream. Concurrent first requests to an origin share one handshake (and its
//! failure). A connection that closed (idle timeout, the server's `GOAWAY` or close) is
//! replaced on the next request; a request that the closing connection refused before
//! handling it (`GOAWAY`, `H3_REQUEST_REJECTED`, a graceful close) is sent once more on the
//! new connection when its body can be replayed.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_util::future::{FutureExt, Shared};
use h3::error::{Code, ConnectionError, StreamError};
use h3::quic::ConnectionErrorIncoming;
use http::header::{CONNECTION, HOST, TE, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, Method, Request, Response, Uri, Version};
use http_body::Frame;
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::dns::Name;
use tower_service::Service;

use super::dns;
use crate::body::Body;
use crate::error::{Error, ErrorKind, Redactor};
use crate::ext::{BodyLimit, FinalUrl};
use crate::response::{ResponseBody, DEFAULT_BODY_LIMIT};

type SendRequest = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;
type RecvStream = h3::client::RequestStream<h3_quinn::RecvStream, Bytes>;

/// The boxed response future of an HTTP/3 request.
pub(super) type H3Future =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Error>> + Send>>;

/// What the HTTP/3 client takes from [`BackendBuilder`](super::BackendBuilder).
pub(super) struct H3Settings {
    pub(super) tls: rustls::ClientConfig,
    pub(super) resolver: dns::Resolver,
    pub(super) connect_timeout: Option<Duration>,
    pub(super) idle_timeout: Option<Duration>,
    pub(super) redactor: Redactor,
}

/// The HTTP/3 client: QUIC endpoints and one connection per origin.
pub(super) struct H3Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: quinn::ClientConfig,
    resolver: dns::Resolver,
    connect_timeout: Option<Duration>,
    redactor: Redactor,
    /// UDP endpoints, made on first use (quinn needs a runtime): IPv4 and IPv6.
    endpoints: Mutex<[Option<quinn::Endpoint>; 2]>,
    conns: Mutex<HashMap<Origin, Slot>>,
}

/// Host (lower case, without IPv6 brackets) and port: HTTP/3 is always `https`.
type Origin = (String, u16);

/// A connect attempt's outcome, shared by every request that waits for it.
type Connecting = Shared<Pin<Box<dyn Future<Output = Result<Arc<Conn>, Failure>> + Send>>>;

enum Slot {
    Ready(Arc<Conn>),
    Connecting(Connecting),
}

/// A connect failure: clonable, as every waiter gets it.
#[derive(Clone, Debug)]
struct Failure {
    kind: ErrorKind,
    message: String,
}

impl Failure {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }

    fn into_error(self) -> Error {
        Error::new(self.kind).with_message(self.message)
    }
}

/// One QUIC connection with its h3 session.
struct Conn {
    send: Mutex<SendRequest>,
    quic: quinn::Connection,
    closed: Arc<AtomicBool>,
}

impl Conn {
    fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Acquire) && self.quic.close_reason().is_none()
    }

    fn sender(&self) -> SendRequest {
        self.send.lock().expect("not poisoned").clone()
    }
}

impl H3Client {
    pub(super) fn new(settings: H3Settings) -> Result<Self, Error> {
        let mut tls = settings.tls;
        tls.alpn_protocols = vec![b"h3".to_vec()];
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| {
            Error::config(format!("TLS setup for HTTP/3 failed: {e}")).with_source(e)
        })?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        let mut transport = quinn::TransportConfig::default();
        // An idle QUIC connection closes itself after this: the pool's idle timeout.
        let idle = settings
            .idle_timeout
            .map(|t| quinn::IdleTimeout::try_from(t).unwrap_or(quinn::VarInt::MAX.into()));
        transport.max_idle_timeout(idle);
        config.transport_config(Arc::new(transport));
        Ok(H3Client {
            inner: Arc::new(Inner {
                config,
                resolver: settings.resolver,
                connect_timeout: settings.connect_timeout,
                redactor: settings.redactor,
                endpoints: Mutex::new([None, None]),
                conns: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// How many origins have a QUIC connection (open or being made).
    pub(super) fn connections(&self) -> usize {
        self.inner.conns.lock().expect("not poisoned").len()
    }

    /// Sends `req` (an `https` request) over HTTP/3.
    pub(super) fn request(
        &self,
        req: Request<Body>,
        timeout: Option<Duration>,
        body_limit: usize,
    ) -> H3Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let uri = req.uri().clone();
            let exchange = inner.clone().send(req, body_limit);
            let result = match timeout {
                None => exchange.await,
                Some(t) => match tokio::time::timeout(t, exchange).await {
                    Ok(r) => r,
                    Err(_) => Err(Error::new(ErrorKind::Timeout)
                        .with_message(format!("no response headers within {t:?}"))),
                },
            };
            result.map_err(|e| e.with_url_redacted(&uri, &inner.redactor))
        })
    }
}

/// The request body, kept for a second attempt while it can be.
enum ReqBody {
    Full(Bytes),
    Stream(Option<Body>),
}

impl ReqBody {
    fn replayable(&self) -> bool {
        !matches!(self, ReqBody::Stream(None))
    }
}

/// A failed exchange; `refused` when the server cannot have handled the request.
struct Fail {
    error: Error,
    refused: bool,
}

impl Inner {
    async fn send(
        self: Arc<Self>,
        req: Request<Body>,
        body_limit: usize,
    ) -> Result<Response<ResponseBody>, Error> {
        let (parts, body) = req.into_parts();
        let uri = parts.uri;
        let host = uri
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .unwrap_or_default()
            .to_ascii_lowercase();
        let port = uri.port_u16();
        let mut headers = parts.headers;
        // Connection-specific fields are malformed in HTTP/3 (RFC 9114 §4.2); the host
        // travels as `:authority`.
        for name in [CONNECTION, TRANSFER_ENCODING, UPGRADE, HOST] {
            headers.remove(name);
        }
        headers.remove("keep-alive");
        headers.remove("proxy-connection");
        if headers.get(TE).is_some_and(|v| v != "trailers") {
            headers.remove(TE);
        }
        let mut body = match body.into_bytes() {
            Ok(bytes) => ReqBody::Full(bytes.unwrap_or_default()),
            Err(stream) => ReqBody::Stream(Some(stream)),
        };
        let mut retried = false;
        loop {
            let (conn, reused) = self.connection(&host, port).await?;
            let head = head(&parts.method, &uri, &headers);
            match exchange(&conn, head, &mut body).await {
                Ok((resp, rx)) => {
                    let (mut parts, ()) = resp.into_parts();
                    parts.version = Version::HTTP_3;
                    parts.extensions.insert(FinalUrl(uri));
                    if body_limit != DEFAULT_BODY_LIMIT {
                        parts.extensions.insert(BodyLimit(body_limit));
                    }
                    let body = H3Body {
                        rx,
                        data_done: false,
                        finished: false,
                        _conn: conn,
                    };
                    return Ok(Response::from_parts(parts, ResponseBody::new(body)));
                }
                Err(fail) => {
                    if !conn.is_open() || fail.refused {
                        self.forget(&host, port, &conn);
                    }
                    if fail.refused && reused && !retried && body.replayable() {
                        tracing::debug!(error = %fail.error, "HTTP/3 connection refused the request; retrying on a new connection");
                        retried = true;
                        continue;
                    }
                    return Err(fail.error);
                }
            }
        }
    }

    /// The origin's open connection (`true`: it served requests before), or a new one.
    async fn connection(
        self: &Arc<Self>,
        host: &str,
        port: Option<u16>,
    ) -> Result<(Arc<Conn>, bool), Error> {
        let key = (host.to_owned(), port.unwrap_or(443));
        let connecting = {
            let mut conns = self.conns.lock().expect("not poisoned");
            match conns.get(&key) {
                Some(Slot::Ready(c)) if c.is_open() => return Ok((c.clone(), true)),
                Some(Slot::Connecting(f)) => f.clone(),
                _ => {
                    let fut: Pin<Box<dyn Future<Output = _> + Send>> =
                        Box::pin(self.clone().connect(key.0.clone(), port));
                    let fut = fut.shared();
                    conns.insert(key.clone(), Slot::Connecting(fut.clone()));
                    fut
                }
            }
        };
        let result = connecting.clone().await;
        let mut conns = self.conns.lock().expect("not poisoned");
        // The first waiter to finish settles the slot.
        if let Some(Slot::Connecting(f)) = conns.get(&key) {
            if f.ptr_eq(&connecting) {
                match &result {
                    Ok(c) => {
                        conns.insert(key, Slot::Ready(c.clone()));
                    }
                    Err(_) => {
                        conns.remove(&key);
                    }
                }
            }
        }
        result.map(|c| (c, false)).map_err(Failure::into_error)
    }

    /// Drops `conn` from the pool (when it is still the origin's connection).
    fn forget(&self, host: &str, port: Option<u16>, conn: &Arc<Conn>) {
        let key = (host.to_owned(), port.unwrap_or(443));
        let mut conns = self.conns.lock().expect("not poisoned");
        if let Some(Slot::Ready(c)) = conns.get(&key) {
            if Arc::ptr_eq(c, conn) {
                conns.remove(&key);
            }
        }
    }

    fn endpoint(&self, v6: bool) -> Result<quinn::Endpoint, Failure> {
        let mut endpoints = self.endpoints.lock().expect("not poisoned");
        let slot = &mut endpoints[usize::from(v6)];
        if let Some(e) = slot {
            return Ok(e.clone());
        }
        let bind: SocketAddr = if v6 {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let endpoint = quinn::Endpoint::client(bind).map_err(|e| {
            Failure::new(
                ErrorKind::Connect,
                format!("could not open a UDP socket on {bind}: {e}"),
            )
        })?;
        *slot = Some(endpoint.clone());
        Ok(endpoint)
    }

    /// Resolves the host, makes the QUIC handshake and the h3 session, within the connect
    /// timeout.
    async fn connect(
        self: Arc<Self>,
        host: String,
        port: Option<u16>,
    ) -> Result<Arc<Conn>, Failure> {
        let attempt = self.clone().connect_inner(host, port);
        match self.connect_timeout {
            None => attempt.await,
            Some(t) => tokio::time::timeout(t, attempt).await.unwrap_or_else(|_| {
                Err(Failure::new(
                    ErrorKind::Timeout,
                    format!("QUIC handshake timed out after {t:?} (is UDP blocked?)"),
                ))
            }),
        }
    }

    async fn connect_inner(
        self: Arc<Self>,
        host: String,
        port: Option<u16>,
    ) -> Result<Arc<Conn>, Failure> {
        let addrs = self.resolve(&host, port).await?;
        let mut last = None;
        for addr in addrs {
            let endpoint = self.endpoint(addr.is_ipv6())?;
            let connecting = endpoint
                .connect_with(self.config.clone(), addr, &host)
                .map_err(|e| {
                    Failure::new(
                        ErrorKind::Connect,
                        format!("could not connect to {addr}: {e}"),
                    )
                })?;
            let quic = match connecting.await {
                Ok(c) => c,
                Err(e) => {
                    let f = classify_quic(&e, addr);
                    if f.kind == ErrorKind::Tls {
                        return Err(f);
                    }
                    last = Some(f);
                    continue;
                }
            };
            let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(quic.clone()))
                .await
                .map_err(|e| {
                    Failure::new(
                        ErrorKind::Connect,
                        format!("HTTP/3 setup with {addr} failed: {e}"),
                    )
                })?;
            let closed = Arc::new(AtomicBool::new(false));
            let flag = closed.clone();
            tokio::spawn(async move {
                let why = futures_util::future::poll_fn(|cx| driver.poll_close(cx)).await;
                flag.store(true, Ordering::Release);
                tracing::debug!(reason = %why, "HTTP/3 connection closed");
            });
            return Ok(Arc::new(Conn {
                send: Mutex::new(send),
                quic,
                closed,
            }));
        }
        Err(last.unwrap_or_else(|| Failure::new(ErrorKind::Connect, "no address to connect to")))
    }

    async fn resolve(&self, host: &str, port: Option<u16>) -> Result<Vec<SocketAddr>, Failure> {
        let addrs = if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            vec![SocketAddr::new(ip, 0)]
        } else {
            let name = Name::from_str(host).map_err(|e| {
                Failure::new(ErrorKind::InvalidRequest, format!("invalid host: {e}"))
            })?;
            let mut resolver = self.resolver.clone();
            resolver
                .call(name)
                .await
                .map_err(|e| {
                    Failure::new(
                        ErrorKind::Connect,
                        format!("could not resolve `{host}`: {e}"),
                    )
                })?
                .collect()
        };
        // The URL's port, else the override's when it has one, else 443.
        Ok(addrs
            .into_iter()
            .map(|mut a| {
                match port {
                    Some(p) => a.set_port(p),
                    None if a.port() == 0 => a.set_port(443),
                    None => {}
                }
                a
            })
            .collect())
    }
}

fn head(method: &Method, uri: &Uri, headers: &HeaderMap) -> Request<()> {
    let mut head = Request::new(());
    *head.method_mut() = method.clone();
    *head.uri_mut() = uri.clone();
    *head.version_mut() = Version::HTTP_3;
    *head.headers_mut() = headers.clone();
    head
}

type SendFuture = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

/// The sending half of a request stream. Dropped before the body was finished (the body
/// failed, the request was cancelled or timed out), it resets the stream: quinn would
/// otherwise finish it, and a truncated body would look complete.
struct SendHalf {
    tx: h3::client::RequestStream<h3_quinn::SendStream<Bytes>, Bytes>,
    finished: bool,
}

impl SendHalf {
    async fn finish(&mut self) -> Result<(), Error> {
        self.tx
            .finish()
            .await
            .map_err(|e| stream_error(e, "could not send the request body"))?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for SendHalf {
    fn drop(&mut self) {
        if !self.finished {
            self.tx.stop_stream(Code::H3_REQUEST_CANCELLED);
        }
    }
}

/// Sends the request on a new stream and reads the response head, sending the body
/// meanwhile (what is left of it after the head arrives is sent by a task of its own).
async fn exchange(
    conn: &Conn,
    head: Request<()>,
    body: &mut ReqBody,
) -> Result<(Response<()>, RecvStream), Fail> {
    let mut sender = conn.sender();
    let stream = sender.send_request(head).await.map_err(|e| Fail {
        refused: true,
        error: stream_error(e, "could not send the request"),
    })?;
    let (tx, mut rx) = stream.split();
    let mut tx = SendHalf {
        tx,
        finished: false,
    };
    let mut send: Option<SendFuture> = Some(match body {
        ReqBody::Full(bytes) => {
            let bytes = bytes.clone();
            Box::pin(async move {
                if !bytes.is_empty() {
                    tx.tx
                        .send_data(bytes)
                        .await
                        .map_err(|e| stream_error(e, "could not send the request body"))?;
                }
                tx.finish().await
            })
        }
        ReqBody::Stream(stream) => {
            let mut stream = stream.take().expect("a streamed body is sent once");
            Box::pin(async move {
                while let Some(frame) = stream.frame().await {
                    let frame = match frame {
                        Ok(f) => f,
                        Err(e) => {
                            // Dropping `tx` resets the stream: the body is not complete.
                            return Err(Error::new(ErrorKind::Io)
                                .with_message("the request body stream failed")
                                .with_source(e));
                        }
                    };
                    match frame.into_data() {
                        Ok(data) if data.is_empty() => {}
                        Ok(data) => tx
                            .tx
                            .send_data(data)
                            .await
                            .map_err(|e| stream_error(e, "could not send the request body"))?,
                        Err(frame) => {
                            if let Ok(trailers) = frame.into_trailers() {
                                tx.tx.send_trailers(trailers).await.map_err(|e| {
                                    stream_error(e, "could not send the request trailers")
                                })?;
                            }
                        }
                    }
                }
                tx.finish().await
            })
        }
    });
    let mut sent: Option<Result<(), Error>> = None;
    let resp = {
        let mut recv = std::pin::pin!(rx.recv_response());
        futures_util::future::poll_fn(|cx| {
            if let Some(s) = send.as_mut() {
                if let Poll::Ready(r) = s.as_mut().poll(cx) {
                    send = None;
                    let failed = r.is_err();
                    sent = Some(r);
                    if failed {
                        // The request failed on our side: no point waiting for an answer.
                        return Poll::Ready(None);
                    }
                }
            }
            recv.as_mut().poll(cx).map(Some)
        })
        .await
    };
    match resp {
        Some(Ok(resp)) => {
            if let Some(rest) = send {
                // The server answered before the whole body was sent: finish in the
                // background (it stops reading when it does not want the rest).
                tokio::spawn(async move {
                    if let Err(e) = rest.await {
                        tracing::debug!(error = %e, "HTTP/3 request body not sent in full");
                    }
                });
            }
            Ok((resp, rx))
        }
        Some(Err(e)) => {
            let refused = is_refusal(&e);
            let error = match sent {
                Some(Err(send_error)) => send_error,
                _ => stream_error(e, "no response"),
            };
            Err(Fail { error, refused })
        }
        None => Err(Fail {
            error: sent
                .and_then(Result::err)
                .expect("a send error ended the exchange"),
            refused: false,
        }),
    }
}

/// Errors by which the server says it did not handle the request.
fn is_refusal(e: &StreamError) -> bool {
    match e {
        StreamError::RemoteClosing { .. } => true,
        StreamError::RemoteTerminate { code, .. } | StreamError::StreamError { code, .. } => {
            *code == Code::H3_REQUEST_REJECTED
        }
        StreamError::ConnectionError { 0: c, .. } => c.is_h3_no_error(),
        _ => false,
    }
}

/// An h3 stream error as a fastreq error.
fn stream_error(e: StreamError, what: &str) -> Error {
    let timeout = matches!(
        &e,
        StreamError::ConnectionError {
            0: ConnectionError::Timeout { .. }
                | ConnectionError::Remote {
                    0: ConnectionErrorIncoming::Timeout,
                    ..
                },
            ..
        }
    );
    let kind = if timeout {
        ErrorKind::Timeout
    } else if matches!(e, StreamError::HeaderTooBig { .. }) && what.contains("send") {
        ErrorKind::InvalidRequest
    } else {
        ErrorKind::Io
    };
    Error::new(kind)
        .with_message(format!("{what} (HTTP/3): {e}"))
        .with_source(e)
}

/// A failed QUIC handshake as a fastreq error kind.
fn classify_quic(e: &quinn::ConnectionError, addr: SocketAddr) -> Failure {
    use quinn::ConnectionError as E;
    // QUIC carries TLS alerts as transport error codes 0x100..=0x1ff (RFC 9001 §4.8).
    let is_tls = |code: quinn::TransportErrorCode| (0x100..0x200).contains(&u64::from(code));
    let kind = match e {
        E::TransportError(t) if is_tls(t.code) => ErrorKind::Tls,
        E::ConnectionClosed(c) if is_tls(c.error_code) => ErrorKind::Tls,
        E::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Connect,
    };
    let what = match kind {
        ErrorKind::Tls => "TLS handshake failed",
        ErrorKind::Timeout => "QUIC handshake timed out",
        _ => "could not connect",
    };
    Failure::new(kind, format!("{what} (QUIC, {addr}): {e}"))
}

/// A response body read from an HTTP/3 stream.
struct H3Body {
    rx: RecvStream,
    data_done: bool,
    finished: bool,
    /// Keeps the connection's h3 session alive while the body is read.
    _conn: Arc<Conn>,
}

impl http_body::Body for H3Body {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        if !this.data_done {
            match ready!(this.rx.poll_recv_data(cx)) {
                Ok(Some(mut buf)) => {
                    let bytes = buf.copy_to_bytes(buf.remaining());
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                Ok(None) => this.data_done = true,
                Err(e) => {
                    this.finished = true;
                    return Poll::Ready(Some(Err(body_error(e))));
                }
            }
        }
        let trailers = ready!(this.rx.poll_recv_trailers(cx));
        this.finished = true;
        Poll::Ready(match trailers {
            Ok(Some(t)) => Some(Ok(Frame::trailers(t))),
            Ok(None) => None,
            Err(e) => Some(Err(body_error(e))),
        })
    }

    fn is_end_stream(&self) -> bool {
        self.finished
    }
}

fn body_error(e: StreamError) -> Error {
    stream_error(e, "error reading the response body")
}
