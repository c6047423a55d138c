//! The compact encoding of a [`Fetched`](super::Fetched): one exact-size buffer holding
//! `[body][tail]`.
//!
//! The tail is `[URL length][attempts][elapsed nanoseconds][final URL][header block]`, the
//! three numbers as varints (the elapsed time possibly padded, see [`put_varint_padded`]).
//!
//! The header block holds, per value, in the header map's order,
//! `[code] ([varint name length] [name])? ([value index] | [varint value length] [value])`.
//! The code's low 6 bits are 0 for a name written out after it, else 1 + the index of a
//! [`Known`] name; bit 6 says the value is the [`KnownValue`] of the index that follows; bit 7
//! is the value's `is_sensitive` flag.
//!
//! Decoding never panics: a damaged block is cut short at its first malformed entry.

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

/// The tail of a [`Fetched`](super::Fetched) buffer, decoded.
pub(super) struct Tail<'a> {
    pub(super) url: &'a [u8],
    pub(super) attempts: u32,
    pub(super) elapsed_nanos: u64,
    pub(super) header_block: &'a [u8],
}

impl<'a> Tail<'a> {
    /// Decodes a tail; `None` if it is malformed.
    pub(super) fn decode(tail: &'a [u8]) -> Option<Tail<'a>> {
        let (url_len, rest) = get_len(tail)?;
        let (attempts, rest) = get_varint(rest)?;
        let (elapsed_nanos, rest) = get_varint(rest)?;
        let (url, header_block) = rest.split_at_checked(url_len)?;
        Some(Tail {
            url,
            attempts: u32::try_from(attempts).ok()?,
            elapsed_nanos,
            header_block,
        })
    }
}

/// The size of a tail for a URL of `url_len` bytes, `attempts`, an elapsed time written in
/// `elapsed_width` bytes and `headers`.
pub(super) fn tail_len(
    url_len: usize,
    attempts: u32,
    elapsed_width: usize,
    headers: &HeaderMap,
) -> usize {
    varint_len(url_len as u64)
        + varint_len(u64::from(attempts))
        + elapsed_width
        + url_len
        + header_block_len(headers)
}

/// Appends a tail to `buf`: the URL given as pieces to concatenate, and the elapsed time
/// (nanoseconds) padded to a width.
pub(super) fn write_tail(
    buf: &mut Vec<u8>,
    url_pieces: [&str; 6],
    attempts: u32,
    (elapsed, elapsed_width): (u64, usize),
    headers: &HeaderMap,
) {
    let url_len: usize = url_pieces.iter().map(|p| p.len()).sum();
    put_varint(buf, url_len as u64);
    put_varint(buf, u64::from(attempts));
    put_varint_padded(buf, elapsed, elapsed_width);
    for piece in url_pieces {
        buf.extend_from_slice(piece.as_bytes());
    }
    write_header_block(buf, headers);
}

/// The first value of header `name` (case-insensitive) in a header block, read in place.
pub(super) fn find_header<'a>(block: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut entries = Entries::new(block);
    match Known::from_name(name) {
        // Known names are always stored as their code.
        Some(known) => entries.find(|e| matches!(e.name, EntryName::Known(k) if k == known)),
        None => entries.find(|e| e.name.as_bytes().eq_ignore_ascii_case(name.as_bytes())),
    }
    .map(|e| e.value)
}

/// The code bit for a sensitive value.
const SENSITIVE: u8 = 0x80;
/// The code bit for a value stored as a [`KnownValue`] index.
const VALUE_CODED: u8 = 0x40;
/// The code bits of the name.
const NAME_BITS: u8 = 0x3f;
/// The name code of a name written out after it.
const CUSTOM: u8 = 0;

macro_rules! known_headers {
    ($($konst:ident => $name:literal,)+) => {
        /// Header names stored as a code in a [`Fetched`](super::Fetched) header block.
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(super) enum Known {
            $($konst,)+
        }

        impl Known {
            /// Every known name, in code order.
            const ALL: &'static [Known] = &[$(Known::$konst,)+];

            /// The known name equal to `name` (lower case, as [`HeaderName::as_str`] gives).
            fn from_name(name: &str) -> Option<Known> {
                match name {
                    $($name => Some(Known::$konst),)+
                    _ => None,
                }
            }

            fn as_str(self) -> &'static str {
                match self {
                    $(Known::$konst => $name,)+
                }
            }

            fn header_name(self) -> HeaderName {
                match self {
                    $(Known::$konst => http::header::$konst,)+
                }
            }
        }
    };
}

known_headers! {
    CONTENT_TYPE => "content-type",
    CONTENT_LENGTH => "content-length",
    DATE => "date",
    SERVER => "server",
    CACHE_CONTROL => "cache-control",
    ETAG => "etag",
    LAST_MODIFIED => "last-modified",
    LOCATION => "location",
    SET_COOKIE => "set-cookie",
    VARY => "vary",
    CONTENT_ENCODING => "content-encoding",
    TRANSFER_ENCODING => "transfer-encoding",
    CONNECTION => "connection",
    EXPIRES => "expires",
    AGE => "age",
    ACCEPT_RANGES => "accept-ranges",
    ACCESS_CONTROL_ALLOW_CREDENTIALS => "access-control-allow-credentials",
    ACCESS_CONTROL_ALLOW_HEADERS => "access-control-allow-headers",
    ACCESS_CONTROL_ALLOW_METHODS => "access-control-allow-methods",
    ACCESS_CONTROL_ALLOW_ORIGIN => "access-control-allow-origin",
    ACCESS_CONTROL_EXPOSE_HEADERS => "access-control-expose-headers",
    ACCESS_CONTROL_MAX_AGE => "access-control-max-age",
    X_CONTENT_TYPE_OPTIONS => "x-content-type-options",
    STRICT_TRANSPORT_SECURITY => "strict-transport-security",
    X_FRAME_OPTIONS => "x-frame-options",
    X_XSS_PROTECTION => "x-xss-protection",
    X_DNS_PREFETCH_CONTROL => "x-dns-prefetch-control",
    CONTENT_SECURITY_POLICY => "content-security-policy",
    CONTENT_SECURITY_POLICY_REPORT_ONLY => "content-security-policy-report-only",
    REFERRER_POLICY => "referrer-policy",
    CONTENT_DISPOSITION => "content-disposition",
    CONTENT_LANGUAGE => "content-language",
    CONTENT_LOCATION => "content-location",
    CONTENT_RANGE => "content-range",
    RETRY_AFTER => "retry-after",
    WWW_AUTHENTICATE => "www-authenticate",
    PROXY_AUTHENTICATE => "proxy-authenticate",
    ALT_SVC => "alt-svc",
    ALLOW => "allow",
    LINK => "link",
    PRAGMA => "pragma",
    VIA => "via",
    WARNING => "warning",
    UPGRADE => "upgrade",
    TRAILER => "trailer",
    REFRESH => "refresh",
    PUBLIC_KEY_PINS => "public-key-pins",
    PUBLIC_KEY_PINS_REPORT_ONLY => "public-key-pins-report-only",
    SEC_WEBSOCKET_ACCEPT => "sec-websocket-accept",
    SEC_WEBSOCKET_EXTENSIONS => "sec-websocket-extensions",
    SEC_WEBSOCKET_PROTOCOL => "sec-websocket-protocol",
    SEC_WEBSOCKET_VERSION => "sec-websocket-version",
    AUTHORIZATION => "authorization",
    PROXY_AUTHORIZATION => "proxy-authorization",
    COOKIE => "cookie",
    USER_AGENT => "user-agent",
    ACCEPT => "accept",
    ACCEPT_ENCODING => "accept-encoding",
    ORIGIN => "origin",
    REFERER => "referer",
}

// Name codes 1..=63.
const _: () = assert!(Known::ALL.len() <= NAME_BITS as usize);

impl Known {
    fn code(self) -> u8 {
        self as u8 + 1
    }

    fn from_code(code: u8) -> Option<Known> {
        Known::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }
}

macro_rules! known_values {
    ($($variant:ident => $value:literal,)+) => {
        /// Common header values, stored as a one-byte index in a [`Fetched`](super::Fetched) header block.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum KnownValue {
            $($variant,)+
        }

        impl KnownValue {
            /// Every known value, in index order.
            const ALL: &'static [KnownValue] = &[$(KnownValue::$variant,)+];

            /// The known value equal to `value` (exactly: case and spaces count).
            fn from_bytes(value: &[u8]) -> Option<KnownValue> {
                match value {
                    $($value => Some(KnownValue::$variant),)+
                    _ => None,
                }
            }

            fn as_bytes(self) -> &'static [u8] {
                match self {
                    $(KnownValue::$variant => $value,)+
                }
            }
        }
    };
}

known_values! {
    Json => b"application/json",
    JsonUtf8 => b"application/json; charset=utf-8",
    JsonUtf8Upper => b"application/json; charset=UTF-8",
    JsonUtf8Tight => b"application/json;charset=utf-8",
    JsonUtf8TightUpper => b"application/json;charset=UTF-8",
    Html => b"text/html",
    HtmlUtf8 => b"text/html; charset=utf-8",
    HtmlUtf8Upper => b"text/html; charset=UTF-8",
    HtmlUtf8Tight => b"text/html;charset=utf-8",
    HtmlUtf8TightUpper => b"text/html;charset=UTF-8",
    Plain => b"text/plain",
    PlainUtf8 => b"text/plain; charset=utf-8",
    PlainUtf8Upper => b"text/plain; charset=UTF-8",
    PlainUtf8Tight => b"text/plain;charset=utf-8",
    PlainUtf8TightUpper => b"text/plain;charset=UTF-8",
    Css => b"text/css",
    TextJavascript => b"text/javascript",
    Javascript => b"application/javascript",
    Xml => b"application/xml",
    TextXml => b"text/xml",
    OctetStream => b"application/octet-stream",
    FormUrlencoded => b"application/x-www-form-urlencoded",
    Png => b"image/png",
    Jpeg => b"image/jpeg",
    Gif => b"image/gif",
    Webp => b"image/webp",
    Svg => b"image/svg+xml",
    Icon => b"image/x-icon",
    Gzip => b"gzip",
    Br => b"br",
    Deflate => b"deflate",
    Zstd => b"zstd",
    Identity => b"identity",
    Chunked => b"chunked",
    KeepAlive => b"keep-alive",
    KeepAliveTitle => b"Keep-Alive",
    Close => b"close",
    RangesBytes => b"bytes",
    RangesNone => b"none",
    AcceptEncoding => b"Accept-Encoding",
    AcceptEncodingLower => b"accept-encoding",
    Origin => b"Origin",
    AcceptEncodingOrigin => b"Accept-Encoding, Origin",
    OriginAcceptEncoding => b"Origin, Accept-Encoding",
    NoCache => b"no-cache",
    NoStore => b"no-store",
    NoCacheNoStore => b"no-cache, no-store, must-revalidate",
    Private => b"private",
    Public => b"public",
    MaxAge0 => b"max-age=0",
    MaxAge0Private => b"max-age=0, private, must-revalidate",
    MustRevalidate => b"must-revalidate",
    Nosniff => b"nosniff",
    Deny => b"DENY",
    SameOriginFrame => b"SAMEORIGIN",
    XssBlock => b"1; mode=block",
    Zero => b"0",
    One => b"1",
    HstsYear => b"max-age=31536000",
    HstsYearSub => b"max-age=31536000; includeSubDomains",
    HstsPreload => b"max-age=63072000; includeSubDomains; preload",
    StrictOrigin => b"strict-origin-when-cross-origin",
    NoReferrer => b"no-referrer",
    SameOrigin => b"same-origin",
    Star => b"*",
    True => b"true",
    Nginx => b"nginx",
    Cloudflare => b"cloudflare",
    Apache => b"Apache",
    AmazonS3 => b"AmazonS3",
    Hit => b"HIT",
    Miss => b"MISS",
}

// Indexes 0..=255.
const _: () = assert!(KnownValue::ALL.len() <= 256);

impl KnownValue {
    fn index(self) -> u8 {
        self as u8
    }

    fn from_index(index: u8) -> Option<KnownValue> {
        KnownValue::ALL.get(usize::from(index)).copied()
    }
}

pub(super) fn varint_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn put_varint(buf: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        buf.push((n & 0x7f) as u8 | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

/// Writes `n` in `width` bytes (a non-minimal varint: the low groups carry continuation
/// bits even when zero), or in more when it does not fit.
fn put_varint_padded(buf: &mut Vec<u8>, mut n: u64, width: usize) {
    for _ in 1..width {
        buf.push((n & 0x7f) as u8 | 0x80);
        n >>= 7;
    }
    put_varint(buf, n);
}

/// Reads a varint; `None` if `buf` ends inside it or it does not fit a `u64`.
fn get_varint(buf: &[u8]) -> Option<(u64, &[u8])> {
    let mut n = 0u64;
    for (i, &b) in buf.iter().enumerate() {
        let shift = 7 * i as u32;
        if shift >= u64::BITS {
            return None;
        }
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some((n, buf.get(i + 1..)?));
        }
    }
    None
}

/// Reads a varint length.
fn get_len(buf: &[u8]) -> Option<(usize, &[u8])> {
    let (n, rest) = get_varint(buf)?;
    Some((usize::try_from(n).ok()?, rest))
}

/// The size of the header block for `headers`.
fn header_block_len(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| {
            let name = name.as_str();
            let name_len = match Known::from_name(name) {
                Some(_) => 0,
                None => varint_len(name.len() as u64) + name.len(),
            };
            let value_len = match KnownValue::from_bytes(value.as_bytes()) {
                Some(_) => 1,
                None => varint_len(value.len() as u64) + value.len(),
            };
            1 + name_len + value_len
        })
        .sum()
}

/// Appends the header block for `headers` to `buf`.
fn write_header_block(buf: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        let name = name.as_str();
        let known_value = KnownValue::from_bytes(value.as_bytes());
        let mut code = match Known::from_name(name) {
            Some(known) => known.code(),
            None => CUSTOM,
        };
        if value.is_sensitive() {
            code |= SENSITIVE;
        }
        if known_value.is_some() {
            code |= VALUE_CODED;
        }
        buf.push(code);
        if code & NAME_BITS == CUSTOM {
            put_varint(buf, name.len() as u64);
            buf.extend_from_slice(name.as_bytes());
        }
        match known_value {
            Some(v) => buf.push(v.index()),
            None => {
                put_varint(buf, value.len() as u64);
                buf.extend_from_slice(value.as_bytes());
            }
        }
    }
}

/// A header name in a header block.
#[derive(Clone, Copy)]
pub(super) enum EntryName<'a> {
    Known(Known),
    Custom(&'a [u8]),
}

impl<'a> EntryName<'a> {
    pub(super) fn as_bytes(self) -> &'a [u8] {
        match self {
            EntryName::Known(k) => k.as_str().as_bytes(),
            EntryName::Custom(name) => name,
        }
    }
}

/// One value of a header block.
pub(super) struct Entry<'a> {
    pub(super) name: EntryName<'a>,
    pub(super) value: &'a [u8],
    pub(super) sensitive: bool,
}

/// The values of a header block, in order; stops at the first malformed entry.
pub(super) struct Entries<'a> {
    rest: &'a [u8],
}

impl<'a> Entries<'a> {
    pub(super) fn new(block: &'a [u8]) -> Self {
        Entries { rest: block }
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        match decode_entry(self.rest) {
            Some((entry, rest)) => {
                self.rest = rest;
                Some(entry)
            }
            None => {
                self.rest = &[];
                None
            }
        }
    }
}

fn decode_entry(buf: &[u8]) -> Option<(Entry<'_>, &[u8])> {
    let (&code, rest) = buf.split_first()?;
    let (name, rest) = match code & NAME_BITS {
        CUSTOM => {
            let (len, rest) = get_len(rest)?;
            let (name, rest) = rest.split_at_checked(len)?;
            (EntryName::Custom(name), rest)
        }
        known => (EntryName::Known(Known::from_code(known)?), rest),
    };
    let (value, rest) = if code & VALUE_CODED != 0 {
        let (&index, rest) = rest.split_first()?;
        (KnownValue::from_index(index)?.as_bytes(), rest)
    } else {
        let (len, rest) = get_len(rest)?;
        rest.split_at_checked(len)?
    };
    let entry = Entry {
        name,
        value,
        sensitive: code & SENSITIVE != 0,
    };
    Some((entry, rest))
}

/// Builds a header map from a header block (skipping anything malformed).
pub(super) fn header_map(block: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(Entries::new(block).count());
    for entry in Entries::new(block) {
        let name = match entry.name {
            EntryName::Known(k) => k.header_name(),
            EntryName::Custom(name) => match HeaderName::from_bytes(name) {
                Ok(name) => name,
                Err(_) => continue,
            },
        };
        let Ok(mut value) = HeaderValue::from_bytes(entry.value) else {
            continue;
        };
        value.set_sensitive(entry.sensitive);
        map.append(name, value);
    }
    map
}

#[cfg(test)]
mod tests {
    use http::header::CONTENT_TYPE;

    use super::*;

    /// The header block for `headers`, checked to be of the announced size.
    fn block_of(headers: &HeaderMap) -> Vec<u8> {
        let mut block = Vec::new();
        write_header_block(&mut block, headers);
        assert_eq!(block.len(), header_block_len(headers));
        block
    }

    #[test]
    fn every_known_name_round_trips() {
        let mut h = HeaderMap::new();
        for (i, k) in Known::ALL.iter().enumerate() {
            assert_eq!(k.header_name().as_str(), k.as_str());
            assert_eq!(Known::from_name(k.as_str()), Some(*k));
            assert_eq!(Known::from_code(k.code()), Some(*k));
            h.append(
                k.header_name(),
                HeaderValue::from_str(&format!("v{i}")).unwrap(),
            );
        }
        assert_eq!(Known::from_code(0), None);
        assert_eq!(Known::from_code(Known::ALL.len() as u8 + 1), None);
        // One code byte, one length byte and the value per known header.
        let expected: usize = h.values().map(|v| 2 + v.len()).sum();
        assert_eq!(header_block_len(&h), expected);
        let block = block_of(&h);
        assert_eq!(header_map(&block), h);
        for (i, k) in Known::ALL.iter().enumerate() {
            assert_eq!(
                find_header(&block, k.as_str()),
                Some(format!("v{i}").as_bytes())
            );
        }
    }

    #[test]
    fn every_known_value_round_trips() {
        let mut h = HeaderMap::new();
        for (i, v) in KnownValue::ALL.iter().enumerate() {
            assert_eq!(KnownValue::from_bytes(v.as_bytes()), Some(*v));
            assert_eq!(KnownValue::from_index(v.index()), Some(*v));
            let mut value = HeaderValue::from_bytes(v.as_bytes()).unwrap();
            // Coded values keep the sensitive flag too.
            value.set_sensitive(i % 3 == 0);
            // Under known and custom names.
            h.append("x-value", value.clone());
            h.append(CONTENT_TYPE, value);
        }
        assert_eq!(KnownValue::from_index(KnownValue::ALL.len() as u8), None);
        assert_eq!(KnownValue::from_bytes(b"Application/JSON"), None);
        // Code and index: two bytes a value, plus the custom name once per value.
        let custom = 1 + "x-value".len();
        assert_eq!(
            header_block_len(&h),
            h.len() * 2 + KnownValue::ALL.len() * custom
        );
        let block = block_of(&h);
        let map = header_map(&block);
        assert_eq!(map, h);
        let sensitive = |m: &HeaderMap| {
            m.values()
                .map(HeaderValue::is_sensitive)
                .collect::<Vec<_>>()
        };
        assert_eq!(sensitive(&map), sensitive(&h));
        assert_eq!(
            find_header(&block, "X-Value"),
            Some(KnownValue::ALL[0].as_bytes())
        );
    }

    #[test]
    fn varints() {
        for n in [0, 1, 127, 128, 300, 16_383, 16_384, 20_000, u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, n);
            assert_eq!(buf.len(), varint_len(n), "{n}");
            buf.push(42);
            assert_eq!(get_varint(&buf), Some((n, &[42u8][..])), "{n}");
            assert_eq!(get_varint(&buf[..buf.len() - 2]), None, "{n} truncated");
            // Padded to a width, or longer when it does not fit.
            for width in 1..=10 {
                let mut buf = Vec::new();
                put_varint_padded(&mut buf, n, width);
                assert_eq!(buf.len(), width.max(varint_len(n)), "{n} in {width}");
                assert_eq!(get_varint(&buf), Some((n, &[][..])), "{n} in {width}");
            }
        }
        assert_eq!(get_varint(&[0xff; 11]), None);
        assert_eq!(get_len(&[0x80, 0x80, 0]), Some((0, &[][..])));
    }

    #[test]
    fn damaged_header_block_is_cut_short_not_a_panic() {
        let mut h = HeaderMap::new();
        h.append("x-a", HeaderValue::from_static("1"));
        h.append("x-b", HeaderValue::from_static("2"));
        let mut block = Vec::new();
        write_header_block(&mut block, &h);
        assert_eq!(block.len(), header_block_len(&h));
        for cut in 0..block.len() {
            let map = header_map(&block[..cut]);
            assert!(map.len() <= 1, "{cut}");
        }
        assert_eq!(header_map(&[0x7f, 0, 0]).len(), 0);
        assert_eq!(header_map(&[CUSTOM, 2, b'\n', b'x', 0]).len(), 0);
        let coded = Known::DATE.code() | VALUE_CODED;
        assert_eq!(header_map(&[coded, 255]).len(), 0);
        assert_eq!(header_map(&[coded]).len(), 0);
        assert_eq!(header_map(&[coded, 0]).len(), 1);
        assert_eq!(header_map(&block), h);
    }

    #[test]
    fn tail_round_trip() {
        let mut h = HeaderMap::new();
        h.append("x-a", HeaderValue::from_static("1"));
        h.append("content-type", HeaderValue::from_static("text/plain"));
        let url = "http://h.test:8080/p?q=1";
        let pieces = ["http", "://", "h.test:8080", "/p", "?", "q=1"];
        for (attempts, elapsed, width) in [(1, 0, 1), (300, 1 << 40, 5), (u32::MAX, u64::MAX, 3)] {
            let mut buf = b"body".to_vec();
            write_tail(&mut buf, pieces, attempts, (elapsed, width), &h);
            let len = tail_len(url.len(), attempts, width, &h);
            // Exact when the elapsed time fits its width.
            if super::varint_len(elapsed) <= width {
                assert_eq!(buf.len(), 4 + len);
            }
            let tail = Tail::decode(&buf[4..]).unwrap();
            assert_eq!(tail.url, url.as_bytes());
            assert_eq!((tail.attempts, tail.elapsed_nanos), (attempts, elapsed));
            assert_eq!(header_map(tail.header_block), h);
            assert_eq!(find_header(tail.header_block, "X-A"), Some(&b"1"[..]));
            // Cut anywhere in the numbers or the URL: no tail.
            for cut in 0..buf.len() - 4 - header_block_len(&h) {
                assert!(Tail::decode(&buf[4..4 + cut]).is_none(), "{cut}");
            }
        }
        assert!(Tail::decode(&[]).is_none());
        // Attempts over `u32::MAX`.
        assert!(Tail::decode(&[0, 0x80, 0x80, 0x80, 0x80, 0x10, 0]).is_none());
        // A URL longer than what follows.
        assert!(Tail::decode(&[5, 1, 0, b'a']).is_none());
    }
}
