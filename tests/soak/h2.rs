//! The HTTP/2 (h2c, prior knowledge) servers, on the `h2` crate's server side: one that
//! refuses streams with `RST_STREAM(REFUSED_STREAM)` by plan, and one that sends `GOAWAY`.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::RecvStream;
use http::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::h1::Seen;
use super::plan::{self, Fault};

/// The h2c server of [`Fault::H2Ok`] and [`Fault::H2Refused`].
pub async fn serve(listener: TcpListener, seen: Arc<Seen>) {
    while let Ok((tcp, _)) = listener.accept().await {
        seen.connections.fetch_add(1, Relaxed);
        let _ = tcp.set_nodelay(true);
        let seen = seen.clone();
        tokio::spawn(async move {
            let Ok(mut conn) = h2::server::Builder::new()
                .max_concurrent_streams(1000)
                .handshake::<_, Bytes>(tcp)
                .await
            else {
                return;
            };
            while let Some(Ok((req, respond))) = conn.accept().await {
                tokio::spawn(stream(req, respond, seen.clone(), None));
            }
        });
    }
}

/// Answers one stream by plan. With `processed`, counts it there instead (GOAWAY server).
async fn stream(
    req: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    seen: Arc<Seen>,
    processed: Option<()>,
) {
    let Some(i) = plan::index_of(req.uri().path()).filter(|&i| i < seen.len()) else {
        respond.send_reset(h2::Reason::PROTOCOL_ERROR);
        return;
    };
    let mut body = req.into_body();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let p = plan::plan(i);
    let attempt = seen.record(i);
    if processed.is_none() && p.fault == Fault::H2Refused && p.fails_at(attempt) {
        respond.send_reset(h2::Reason::REFUSED_STREAM);
        return;
    }
    let head = Response::builder().status(200).body(()).unwrap();
    if let Ok(mut tx) = respond.send_response(head, false) {
        let _ = tx.send_data(Bytes::from(p.body()), true);
    }
}

/// Counters of the GOAWAY server.
#[derive(Default)]
pub struct GoAwayStats {
    /// Connections answered with `GOAWAY(last_stream_id = 0)`.
    pub refused_connections: AtomicU32,
    /// Connections served, each ended by a graceful shutdown after [`SERVED_PER_CONN`]
    /// streams (its own GOAWAY, which refuses the streams that were in flight past it).
    pub served_connections: AtomicU32,
}

/// Streams a served connection of the GOAWAY server takes before shutting down.
const SERVED_PER_CONN: usize = 8;

/// The h2c server of [`Fault::GoAway`]: every other connection gets, once its first
/// request's HEADERS arrive, a `GOAWAY` with last stream id 0 (raw frames: the h2 crate
/// never names a last stream below one it has received); so none of its streams was
/// processed. The other connections serve [`SERVED_PER_CONN`] streams, then shut down
/// gracefully. `seen` counts the streams *processed*: a POST must never be processed twice.
pub async fn serve_goaway(listener: TcpListener, seen: Arc<Seen>, stats: Arc<GoAwayStats>) {
    let mut n = 0u64;
    while let Ok((tcp, _)) = listener.accept().await {
        seen.connections.fetch_add(1, Relaxed);
        let _ = tcp.set_nodelay(true);
        n += 1;
        if n % 2 == 1 {
            stats.refused_connections.fetch_add(1, Relaxed);
            tokio::spawn(refuse_all(tcp));
        } else {
            stats.served_connections.fetch_add(1, Relaxed);
            let seen = seen.clone();
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(tcp).await else {
                    return;
                };
                let mut taken = 0;
                while let Some(Ok((req, respond))) = conn.accept().await {
                    tokio::spawn(stream(req, respond, seen.clone(), Some(())));
                    taken += 1;
                    if taken == SERVED_PER_CONN {
                        conn.graceful_shutdown();
                    }
                }
            });
        }
    }
}

/// Reads the client preface and frames until a HEADERS frame, then sends
/// `GOAWAY(last_stream_id = 0, NO_ERROR)` and closes.
async fn refuse_all(mut tcp: TcpStream) {
    const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];
    const GOAWAY: [u8; 17] = [0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let work = async {
        tcp.write_all(&SETTINGS).await?;
        let mut preface = [0u8; 24];
        tcp.read_exact(&mut preface).await?;
        loop {
            let mut header = [0u8; 9];
            tcp.read_exact(&mut header).await?;
            let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
            let mut payload = vec![0u8; len];
            tcp.read_exact(&mut payload).await?;
            if header[3] == 1 {
                break;
            }
        }
        tcp.write_all(&GOAWAY).await?;
        tcp.flush().await?;
        // Let the client read the frame and leave; then close.
        let mut sink = [0u8; 1024];
        while tcp.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), work).await;
}
