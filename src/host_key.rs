//! The host key shared by the per-host limits: `scheme://host:port`.

use http::Uri;

/// Longest key built on the stack; longer ones (rare) are built on the heap.
const STACK_KEY: usize = 320;

/// Calls `f` with the host key of `uri`: `scheme://host:port`, scheme and host lowercased,
/// the scheme's default port filled in (`http://A.test/x` → `http://a.test:80`), userinfo
/// left out; `None` for a URI without a host. A URI without a scheme counts as `http`.
///
/// The key is built on the stack, so it allocates nothing.
pub(crate) fn with_host_key<R>(uri: &Uri, f: impl FnOnce(Option<&str>) -> R) -> R {
    let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
        return f(None);
    };
    let scheme = uri.scheme_str().unwrap_or("http");
    let port = uri.port_u16().or_else(|| default_port(scheme));
    // scheme + "://" + host + ":" + 5 digits
    let len = scheme.len() + 3 + host.len() + 6;
    if len <= STACK_KEY {
        let mut buf = [0u8; STACK_KEY];
        let n = write_key(&mut buf, scheme, host, port);
        // Only ASCII was written: URI schemes and hosts are ASCII, and so are digits.
        match std::str::from_utf8(&buf[..n]) {
            Ok(key) => f(Some(key)),
            Err(_) => f(Some(&String::from_utf8_lossy(&buf[..n]))),
        }
    } else {
        let mut buf = vec![0u8; len];
        let n = write_key(&mut buf, scheme, host, port);
        f(Some(&String::from_utf8_lossy(&buf[..n])))
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("ws") {
        Some(80)
    } else if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss") {
        Some(443)
    } else {
        None
    }
}

/// Writes the key into `buf` (long enough) and returns its length.
fn write_key(buf: &mut [u8], scheme: &str, host: &str, port: Option<u16>) -> usize {
    let mut n = 0;
    let mut put = |b: u8| {
        buf[n] = b;
        n += 1;
    };
    scheme.bytes().for_each(|b| put(b.to_ascii_lowercase()));
    b"://".iter().for_each(|&b| put(b));
    host.bytes().for_each(|b| put(b.to_ascii_lowercase()));
    if let Some(port) = port {
        put(b':');
        let mut digits = [0u8; 5];
        let mut i = digits.len();
        let mut p = port;
        loop {
            i -= 1;
            digits[i] = b'0' + (p % 10) as u8;
            p /= 10;
            if p == 0 {
                break;
            }
        }
        digits[i..].iter().for_each(|&b| put(b));
    }
    n
}
