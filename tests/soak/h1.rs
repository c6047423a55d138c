//! A raw HTTP/1.1 server that injects the faults of the plan: written on plain TCP so that
//! it can send what no well-behaved server library sends (bad chunks, short bodies, resets).

use std::sync::atomic::{AtomicU32, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::plan::{self, Fault, DRIP_EVERY, DRIP_LEN};

/// What the servers saw: attempts per input (saturating at 255).
pub struct Seen {
    attempts: Vec<AtomicU8>,
    /// Connections accepted.
    pub connections: AtomicU32,
}

impl Seen {
    pub fn new(n: usize) -> Arc<Seen> {
        Arc::new(Seen {
            attempts: (0..n).map(|_| AtomicU8::new(0)).collect(),
            connections: AtomicU32::new(0),
        })
    }

    /// Records an attempt at input `i`; returns its number (from 1).
    pub fn record(&self, i: usize) -> u32 {
        let prev = self.attempts[i]
            .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_add(1)))
            .unwrap_or(u8::MAX);
        u32::from(prev) + 1
    }

    pub fn get(&self, i: usize) -> u32 {
        u32::from(self.attempts[i].load(Relaxed))
    }

    pub fn len(&self) -> usize {
        self.attempts.len()
    }
}

pub async fn serve(listener: TcpListener, seen: Arc<Seen>) {
    while let Ok((tcp, _)) = listener.accept().await {
        seen.connections.fetch_add(1, Relaxed);
        let _ = tcp.set_nodelay(true);
        tokio::spawn(connection(tcp, seen.clone()));
    }
}

/// Serves requests on one connection until a fault ends it or the client leaves.
async fn connection(mut tcp: TcpStream, seen: Arc<Seen>) {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let Some((path, body_len)) = read_head(&mut tcp, &mut buf).await else {
            return;
        };
        // The request body (Content-Length): read it all, as a server that processes it.
        while buf.len() < body_len {
            if read_more(&mut tcp, &mut buf).await == 0 {
                return;
            }
        }
        buf.drain(..body_len);
        let Some(i) = plan::index_of(&path).filter(|&i| i < seen.len()) else {
            let _ = tcp
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .await;
            continue;
        };
        let p = plan::plan(i);
        let attempt = seen.record(i);
        if !p.fails_at(attempt) {
            let body = p.body();
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
            if tcp.write_all((head + &body).as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        match p.fault {
            Fault::ResetBeforeHeaders => return reset(tcp),
            Fault::ResetAfterHeaders => {
                let _ = tcp.write_all(&partial_body()).await;
                let _ = tcp.flush().await;
                return reset(tcp);
            }
            Fault::Truncated => {
                let _ = tcp.write_all(&partial_body()).await;
                return close(tcp).await;
            }
            Fault::BadChunk => {
                let bad = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
                            5\r\nhello\r\nzz\r\nnot a chunk\r\n0\r\n\r\n";
                let _ = tcp.write_all(bad).await;
                return close(tcp).await;
            }
            Fault::SlowHeaders => {
                // Never answers in time: wait until the client gives up (or 5 s).
                let mut byte = [0u8; 1];
                let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut byte)).await;
                return;
            }
            Fault::SlowDrip => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {DRIP_LEN}\r\n\r\n");
                if tcp.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for _ in 0..DRIP_LEN {
                    tokio::time::sleep(DRIP_EVERY).await;
                    if tcp.write_all(b".").await.is_err() {
                        return;
                    }
                }
                continue;
            }
            Fault::RetryAfterSeconds => {
                if !status(&mut tcp, 503, "0").await {
                    return;
                }
            }
            Fault::RetryAfterDate => {
                let past = SystemTime::now() - Duration::from_secs(30);
                if !status(&mut tcp, 429, &httpdate::fmt_http_date(past)).await {
                    return;
                }
            }
            Fault::RetryAfterHuge => {
                let value = if i % 2 == 0 {
                    "86400".to_owned()
                } else {
                    httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(86400))
                };
                if !status(&mut tcp, 429, &value).await {
                    return;
                }
            }
            Fault::Ok | Fault::Refused | Fault::H2Ok | Fault::H2Refused | Fault::GoAway => {
                unreachable!("{:?} is not served by the HTTP/1 server", p.fault)
            }
        }
    }
}

/// 64 bytes announced, 16 sent.
fn partial_body() -> Vec<u8> {
    let mut v = b"HTTP/1.1 200 OK\r\ncontent-length: 64\r\n\r\n".to_vec();
    v.extend_from_slice(&[b'x'; 16]);
    v
}

async fn status(tcp: &mut TcpStream, code: u16, retry_after: &str) -> bool {
    let reason = if code == 429 {
        "Too Many Requests"
    } else {
        "Service Unavailable"
    };
    let msg = format!(
        "HTTP/1.1 {code} {reason}\r\nretry-after: {retry_after}\r\ncontent-length: 4\r\n\r\nbusy"
    );
    tcp.write_all(msg.as_bytes()).await.is_ok()
}

/// Drops the connection with a TCP reset.
fn reset(tcp: TcpStream) {
    let _ = tcp.set_zero_linger();
    drop(tcp);
}

/// Closes the sending side cleanly, then waits (bounded) for the client to close.
async fn close(mut tcp: TcpStream) {
    let _ = tcp.shutdown().await;
    let mut sink = [0u8; 256];
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

async fn read_more(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> usize {
    let mut chunk = [0u8; 4096];
    match tcp.read(&mut chunk).await {
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            n
        }
        Err(_) => 0,
    }
}

/// Reads one request head: its path and Content-Length. `None` at the end of the
/// connection or on a malformed head.
async fn read_head(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, usize)> {
    let end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        if buf.len() > 64 * 1024 || read_more(tcp, buf).await == 0 {
            return None;
        }
    };
    let head = std::str::from_utf8(&buf[..end]).ok()?.to_owned();
    buf.drain(..end + 4);
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let mut len = 0;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        if name.eq_ignore_ascii_case("content-length") {
            len = value.trim().parse().ok()?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // The soak only sends full bodies, which have a length.
            return None;
        }
    }
    Some((path, len))
}
