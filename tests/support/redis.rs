//! Finding the Redis the Redis tests run against, and names of their own for each test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Whether a missing Redis fails the test (`FASTREQ_REDIS_REQUIRED=1`, as in CI) instead of
/// skipping it.
pub fn required() -> bool {
    std::env::var("FASTREQ_REDIS_REQUIRED").is_ok_and(|v| v == "1")
}

/// Whether a Redis answers PING at `url` (`+PONG`, or `-NOAUTH` when it wants the URL's
/// password).
pub fn answers(url: &str) -> bool {
    let reachable = url::Url::parse(url).ok().and_then(|u| {
        let host = u.host_str()?.to_owned();
        let port = u.port().unwrap_or(6379);
        let addr: SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
            .ok()?
            .next()?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        s.write_all(b"PING\r\n").ok()?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).ok()?;
        (n > 0 && (buf[0] == b'+' || buf[0] == b'-')).then_some(())
    });
    reachable.is_some()
}

/// The Redis URL (`FASTREQ_REDIS_URL`, else the default port on loopback), or `None` after
/// saying the test is skipped; a panic instead when [`required`].
pub fn redis_url() -> Option<String> {
    let url =
        std::env::var("FASTREQ_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    if answers(&url) {
        return Some(url);
    }
    let shown = fastreq::redact_url(&url);
    if required() {
        panic!("no Redis at {shown}, and FASTREQ_REDIS_REQUIRED=1");
    }
    eprintln!("skipped: no Redis at {shown} (set FASTREQ_REDIS_URL; scripts/redis.sh start)");
    None
}

/// A quota or queue name of its own for each test and run.
pub fn unique(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "test-{name}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
