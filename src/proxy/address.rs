//! The [`Proxy`] value type: scheme, host, port and optional credentials, parsed from the
//! usual proxy-list formats.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::Ipv6Addr;
use std::str::FromStr;
use std::sync::Arc;

use http::{HeaderValue, Uri};

use crate::error::{Error, ErrorKind};

/// How fastreq talks to a proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyScheme {
    /// An HTTP proxy: plain `http://` targets are sent to it in absolute form, `https://`
    /// targets go through an HTTP `CONNECT` tunnel. Default port 80.
    Http,
    /// An HTTP proxy reached over TLS (the proxy's certificate is verified like a server's).
    /// Default port 443.
    Https,
    /// SOCKS5; target names are resolved locally and the proxy gets an IP address.
    /// Default port 1080.
    Socks5,
    /// SOCKS5 with the target name resolved by the proxy (no local DNS lookup).
    /// Default port 1080.
    Socks5h,
    /// SOCKS4; target names are resolved locally (IPv4 only), no credentials.
    /// Default port 1080.
    Socks4,
}

impl ProxyScheme {
    /// The scheme as written in a proxy URL: `http`, `https`, `socks5`, `socks5h`, `socks4`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProxyScheme::Http => "http",
            ProxyScheme::Https => "https",
            ProxyScheme::Socks5 => "socks5",
            ProxyScheme::Socks5h => "socks5h",
            ProxyScheme::Socks4 => "socks4",
        }
    }

    /// The port used when a proxy URL names none.
    pub const fn default_port(self) -> u16 {
        match self {
            ProxyScheme::Http => 80,
            ProxyScheme::Https => 443,
            ProxyScheme::Socks5 | ProxyScheme::Socks5h | ProxyScheme::Socks4 => 1080,
        }
    }

    /// True for the SOCKS schemes.
    pub const fn is_socks(self) -> bool {
        matches!(
            self,
            ProxyScheme::Socks5 | ProxyScheme::Socks5h | ProxyScheme::Socks4
        )
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "http" => ProxyScheme::Http,
            "https" => ProxyScheme::Https,
            "socks5" => ProxyScheme::Socks5,
            "socks5h" => ProxyScheme::Socks5h,
            "socks4" | "socks4a" => ProxyScheme::Socks4,
            _ => return None,
        })
    }
}

impl fmt::Display for ProxyScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One proxy server: scheme, host, port and optional credentials.
///
/// Cheap to clone (one `Arc`). Parsed from the formats found in proxy lists:
///
/// | line | meaning |
/// |---|---|
/// | `scheme://user:pass@host:port` | schemes `http`, `https`, `socks5`, `socks5h`, `socks4`; user info percent-encoded, optional |
/// | `scheme://host` | the scheme's [default port](ProxyScheme::default_port) |
/// | `host:port` | an HTTP proxy |
/// | `host:port:user:pass` | an HTTP proxy with credentials (the password may contain `:` and `@`) |
/// | `scheme://host:port:user:pass` | the same with a scheme |
/// | `user:pass@host:port` | an HTTP proxy with credentials |
///
/// IPv6 hosts are written in brackets (`[::1]:8080`).
///
/// **Credentials are secrets**: [`Display`](fmt::Display) and [`Debug`] show
/// `scheme://***@host:port`, never the user name or the password, and so do the errors and
/// logs of fastreq. Two proxies are equal when scheme, host, port and credentials are equal.
///
/// ```
/// use fastreq::proxy::{Proxy, ProxyScheme};
///
/// let p: Proxy = "socks5h://alice:s3cret@10.0.0.7:1080".parse().unwrap();
/// assert_eq!(p.scheme(), ProxyScheme::Socks5h);
/// assert_eq!((p.host(), p.port()), ("10.0.0.7", 1080));
/// assert_eq!(p.to_string(), "socks5h://***@10.0.0.7:1080");
/// assert!(!format!("{p:?}").contains("s3cret"));
///
/// let q = Proxy::parse("proxy.test:3128:bob:pa:ss").unwrap();
/// assert_eq!(q.scheme(), ProxyScheme::Http);
/// assert_eq!(q.username(), Some("bob"));
///
/// let err = Proxy::parse("ftp://bob:hunter2@h.test:21").unwrap_err();
/// assert!(err.to_string().contains("unknown scheme"));
/// assert!(!err.to_string().contains("hunter2"));
/// ```
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

struct Inner {
    scheme: ProxyScheme,
    host: Box<str>,
    port: u16,
    credentials: Option<(Box<str>, Box<str>)>,
    /// Where to connect: `http://host:port` (or `https://` for an HTTPS proxy). No userinfo.
    uri: Uri,
    /// `scheme://[***@]host:port`.
    display: Box<str>,
    /// `Basic ..`, marked sensitive; HTTP(S) proxies with credentials only.
    authorization: Option<HeaderValue>,
    hash: u64,
}

impl Proxy {
    /// A proxy without credentials. The host is a DNS name, an IPv4 address or an IPv6
    /// address (with or without brackets). An invalid host or port 0 is a
    /// [`Config`](ErrorKind::Config) error.
    pub fn new(scheme: ProxyScheme, host: &str, port: u16) -> Result<Proxy, Error> {
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        build(scheme, &host, port, None).map_err(|why| {
            Error::config(format!(
                "invalid proxy `{}://{host}:{port}`: {why}",
                scheme.as_str()
            ))
        })
    }

    /// Returns this proxy with a user name and password (not allowed for SOCKS4; at most 255
    /// bytes each for SOCKS5).
    pub fn with_credentials(self, user: &str, password: &str) -> Result<Proxy, Error> {
        let inner = &self.inner;
        build(
            inner.scheme,
            &inner.host,
            inner.port,
            Some((user.to_owned(), password.to_owned())),
        )
        .map_err(|why| Error::config(format!("invalid proxy `{}`: {why}", inner.display)))
    }

    /// Parses one proxy in any of the formats of the [type docs](Proxy). Errors are
    /// [`Config`](ErrorKind::Config) errors quoting the input with its password replaced by
    /// `***`.
    pub fn parse(input: &str) -> Result<Proxy, Error> {
        let input = input.trim();
        parse_line(input)
            .map_err(|why| Error::config(format!("invalid proxy `{}`: {why}", redact_line(input))))
    }

    /// How fastreq talks to this proxy.
    pub fn scheme(&self) -> ProxyScheme {
        self.inner.scheme
    }

    /// The host: a lower-case DNS name, an IPv4 address, or an IPv6 address in brackets.
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.inner.port
    }

    /// The redacted form, as [`Display`](fmt::Display) prints it: `scheme://host:port`,
    /// with `***@` when the proxy has credentials.
    pub(crate) fn as_str(&self) -> &str {
        &self.inner.display
    }

    /// Whether the proxy has credentials.
    pub fn has_credentials(&self) -> bool {
        self.inner.credentials.is_some()
    }

    /// The user name, if the proxy has credentials. (There is no getter for the password.)
    pub fn username(&self) -> Option<&str> {
        self.inner.credentials.as_ref().map(|(u, _)| &**u)
    }

    /// The URI fastreq connects to: `http://host:port`, or `https://host:port` for an HTTPS
    /// proxy. It never holds credentials.
    pub(crate) fn connect_uri(&self) -> &Uri {
        &self.inner.uri
    }

    /// User name and password, for the SOCKS5 handshake.
    pub(crate) fn credentials(&self) -> Option<(&str, &str)> {
        self.inner.credentials.as_ref().map(|(u, p)| (&**u, &**p))
    }

    /// `Proxy-Authorization: Basic ..` for HTTP(S) proxies with credentials, sensitive.
    pub(crate) fn authorization(&self) -> Option<&HeaderValue> {
        self.inner.authorization.as_ref()
    }
}

fn build(
    scheme: ProxyScheme,
    host: &str,
    port: u16,
    credentials: Option<(String, String)>,
) -> Result<Proxy, String> {
    let host = check_host(host)?;
    if port == 0 {
        return Err("port 0 is not a valid port".into());
    }
    if let Some((user, pass)) = &credentials {
        if scheme == ProxyScheme::Socks4 {
            return Err("socks4 proxies take no user name or password (use socks5)".into());
        }
        if user.is_empty() {
            return Err("the user name is empty".into());
        }
        if user.chars().chain(pass.chars()).any(char::is_control) {
            return Err("the user name or password contains a control character".into());
        }
        if scheme.is_socks() && (user.len() > 255 || pass.len() > 255) {
            return Err("SOCKS5 user names and passwords are at most 255 bytes".into());
        }
    }
    let connect_scheme = if scheme == ProxyScheme::Https {
        "https"
    } else {
        "http"
    };
    let uri: Uri = format!("{connect_scheme}://{host}:{port}")
        .parse()
        .map_err(|e| format!("not a valid host and port: {e}"))?;
    let display = if credentials.is_some() {
        format!("{}://***@{host}:{port}", scheme.as_str())
    } else {
        format!("{}://{host}:{port}", scheme.as_str())
    };
    let authorization = match (&credentials, scheme) {
        (Some((u, p)), ProxyScheme::Http | ProxyScheme::Https) => {
            Some(crate::request::basic_auth(u, Some(p)))
        }
        _ => None,
    };
    let mut hasher = std::hash::DefaultHasher::new();
    (scheme, &host, port, &credentials).hash(&mut hasher);
    Ok(Proxy {
        inner: Arc::new(Inner {
            scheme,
            host: host.into_boxed_str(),
            port,
            credentials: credentials.map(|(u, p)| (u.into_boxed_str(), p.into_boxed_str())),
            uri,
            display: display.into_boxed_str(),
            authorization,
            hash: hasher.finish(),
        }),
    })
}

/// Checks and normalises a host: bracketed IPv6, or a name / IPv4 of `[A-Za-z0-9._-]`.
fn check_host(host: &str) -> Result<String, String> {
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| "unclosed `[` in the host".to_owned())?;
        let ip: Ipv6Addr = inner
            .parse()
            .map_err(|_| format!("`{inner}` is not an IPv6 address"))?;
        return Ok(format!("[{ip}]"));
    }
    if host.len() > 253 {
        return Err("the host name is longer than 253 bytes".into());
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return Err(format!("the host contains `{}`", c.escape_default()));
    }
    if host.starts_with('.') || host.starts_with('-') || host.contains("..") {
        return Err(format!("`{host}` is not a valid host name"));
    }
    Ok(host.to_ascii_lowercase())
}

/// The form of a proxy line, decided once for parsing and for redaction alike.
enum Form<'a> {
    /// `scheme://[user[:pass]@]host[:port][/]`, or `user:pass@host:port` (scheme `None`):
    /// the text after `scheme://`.
    Url(Option<&'a str>, &'a str),
    /// `host:port[:user:pass]`: the host, and what follows its `:` (`None`: no `:`).
    Colon(&'a str, Option<&'a str>),
    /// `scheme://host:port:user:pass`: the scheme name, the host, and what follows its `:`.
    SchemeColon(&'a str, &'a str, &'a str),
}

/// The scheme of `line` when it starts with `name://` and `name` is a scheme name
/// (letters, digits, `+`, `-`, `.`): the name and the rest. A `://` after a `:` or an `@`
/// is part of a password (`host:port:user:pa://ss`), not a scheme.
fn split_scheme(line: &str) -> Option<(&str, &str)> {
    let i = line.find("://")?;
    let name = &line[..i];
    let is_scheme = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    is_scheme.then(|| (name, &line[i + 3..]))
}

/// Splits `rest` into the host (an IPv6 address keeps its brackets) and what follows the
/// `:` after it.
fn split_colon_host(rest: &str) -> Option<(&str, Option<&str>)> {
    if rest.starts_with('[') {
        let end = rest.find(']')?;
        Some((&rest[..=end], rest[end + 1..].strip_prefix(':')))
    } else {
        Some(match rest.split_once(':') {
            Some((h, a)) => (h, Some(a)),
            None => (rest, None),
        })
    }
}

/// Classifies a line. A line without a scheme is in the colon form when its first field
/// has no `@` and its second field is all digits (a port); this is checked before the
/// `user:pass@host:port` form, so an `@` in the user name or password of
/// `host:port:user:pass` stays part of them, also when the host is not valid.
fn classify(line: &str) -> Form<'_> {
    if let Some((name, rest)) = split_scheme(line) {
        return match colon_form(rest) {
            Some((host, after)) if after.contains(':') => Form::SchemeColon(name, host, after),
            _ => Form::Url(Some(name), rest),
        };
    }
    if let Some((host, after)) = colon_form(line) {
        return Form::Colon(host, Some(after));
    }
    if line.contains('@') {
        return Form::Url(None, line);
    }
    match split_colon_host(line) {
        Some((host, after)) => Form::Colon(host, after),
        None => Form::Colon(line, None),
    }
}

/// `host:port[:...]` with a host without `@` and a numeric port: the host and what follows
/// its `:`.
fn colon_form(s: &str) -> Option<(&str, &str)> {
    let (host, after) = split_colon_host(s)?;
    let after = after?;
    let port = after.split(':').next().unwrap_or("");
    let numeric = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    (!host.contains('@') && numeric).then_some((host, after))
}

/// Parses one line; the error is a reason without the line (the caller quotes it redacted).
pub(crate) fn parse_line(line: &str) -> Result<Proxy, String> {
    if line.is_empty() {
        return Err("empty".into());
    }
    if line.chars().any(char::is_whitespace) {
        return Err("contains white space".into());
    }
    let (scheme, host, after) = match classify(line) {
        Form::Url(name, rest) => return parse_url_form(name, rest),
        Form::Colon(host, after) => (ProxyScheme::Http, host, after),
        Form::SchemeColon(name, host, after) => (parse_scheme(name)?, host, Some(after)),
    };
    // Colon form: host:port or host:port:user:pass.
    if host.starts_with('[') && !host.ends_with(']') {
        return Err("unclosed `[` in the host".into());
    }
    let after = after.ok_or_else(|| "missing port (expected host:port)".to_owned())?;
    let mut fields = after.splitn(3, ':');
    let port = parse_port(fields.next().unwrap_or(""))?;
    let credentials = match (fields.next(), fields.next()) {
        (None, _) => None,
        (Some(user), Some(pass)) => Some((user.to_owned(), pass.to_owned())),
        (Some(_), None) => {
            return Err("expected host:port or host:port:user:pass".into());
        }
    };
    build(scheme, host, port, credentials)
}

fn parse_scheme(name: &str) -> Result<ProxyScheme, String> {
    ProxyScheme::parse(name).ok_or_else(|| {
        format!(
            "unknown scheme `{}` (expected http, https, socks5, socks5h or socks4)",
            name.escape_default()
        )
    })
}

/// The URL form: `[user[:pass]@]host[:port][/]` after `name://` (HTTP without a name).
fn parse_url_form(name: Option<&str>, rest: &str) -> Result<Proxy, String> {
    let scheme = match name {
        None => ProxyScheme::Http,
        Some(name) => parse_scheme(name)?,
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (userinfo, hostport) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    if hostport.contains(['/', '?', '#']) {
        return Err("a proxy URL has no path, query or fragment".into());
    }
    let (host, port) = split_host_port(hostport)?;
    let port = match port {
        // `scheme://host:port:user:pass` is not a URL; its port field must not be quoted.
        Some(p) if p.contains(':') => {
            return Err("expected host:port after the scheme (credentials go before an `@`)".into())
        }
        Some(p) => parse_port(p)?,
        None => scheme.default_port(),
    };
    let credentials = match userinfo {
        None => None,
        Some(info) => {
            let (user, pass) = info.split_once(':').unwrap_or((info, ""));
            Some((percent_decode(user)?, percent_decode(pass)?))
        }
    };
    build(scheme, host, port, credentials)
}

fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if s.starts_with('[') {
        let end = s
            .find(']')
            .ok_or_else(|| "unclosed `[` in the host".to_owned())?;
        let host = &s[..=end];
        match &s[end + 1..] {
            "" => Ok((host, None)),
            rest => match rest.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!(
                    "unexpected `{}` after the host",
                    rest.escape_default()
                )),
            },
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => Ok((h, Some(p))),
            None => Ok((s, None)),
        }
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    if s.is_empty() {
        return Err("missing port".into());
    }
    match s.parse::<u16>() {
        Ok(0) => Err("port 0 is not a valid port".into()),
        Ok(p) if s.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        // Only a number is quoted: other text in the place of the port may be a password
        // (`scheme://host:port:user@mail.test:pass` puts `pass` there).
        _ if s.bytes().all(|b| b.is_ascii_digit()) => Err(format!(
            "`{}` is not a port (1 to 65535)",
            s.escape_default()
        )),
        _ => Err("the port is not a number (1 to 65535)".into()),
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |c: Option<&u8>| c.and_then(|&c| (c as char).to_digit(16));
            match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => return Err("bad percent-encoding in the user info".into()),
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "the user info is not valid UTF-8".to_owned())
}

/// The line with its password (and anything that may be one) replaced by `***`.
pub(crate) fn redact_line(line: &str) -> String {
    match classify(line) {
        Form::Url(name, rest) => {
            let prefix = name.map(|n| format!("{n}://")).unwrap_or_default();
            let (shown, hostport) = match rest.rfind('@') {
                Some(at) => {
                    let shown = match rest[..at].split_once(':') {
                        Some((user, _)) => format!("{user}:***@"),
                        None => "***@".to_owned(),
                    };
                    (shown, &rest[at + 1..])
                }
                None => (String::new(), rest),
            };
            // Anything after a second `:` (`scheme://host:port:user:pass`) may be a
            // password too.
            let hostport = match split_colon_host(hostport) {
                Some((host, Some(after))) if after.contains(':') => {
                    let port = after.split(':').next().unwrap_or("");
                    format!("{host}:{port}:***")
                }
                // A port that is not a number may be a password.
                Some((host, Some(port))) if !port.bytes().all(|b| b.is_ascii_digit()) => {
                    format!("{host}:***")
                }
                Some(_) => hostport.to_owned(),
                None => "[***".to_owned(),
            };
            format!("{prefix}{shown}{hostport}")
        }
        // An unclosed `[`: where the host ends is unknown, and so is where a password starts.
        Form::Colon(host, None) if host.starts_with('[') && !host.ends_with(']') => {
            "[***".to_owned()
        }
        Form::Colon(host, None) => host.to_owned(),
        Form::Colon(host, Some(after)) => redact_colon(host, after),
        Form::SchemeColon(name, host, after) => format!("{name}://{}", redact_colon(host, after)),
    }
}

/// `host:port:user:***`: host and port (and the user) kept, what follows hidden.
fn redact_colon(host: &str, after: &str) -> String {
    let mut fields = after.splitn(3, ':');
    let port = fields.next().unwrap_or("");
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        // Not a port: `user:pass` without a host, or worse.
        return format!("{host}:***");
    }
    match (fields.next(), fields.next()) {
        (None, _) => format!("{host}:{port}"),
        (Some(user), Some(_)) => format!("{host}:{port}:{user}:***"),
        (Some(_), None) => format!("{host}:{port}:***"),
    }
}

impl fmt::Display for Proxy {
    /// `scheme://host:port`, with `***@` when the proxy has credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.display)
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Proxy").field(&&*self.inner.display).finish()
    }
}

impl PartialEq for Proxy {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
            || (self.inner.hash == other.inner.hash
                && self.inner.scheme == other.inner.scheme
                && self.inner.port == other.inner.port
                && self.inner.host == other.inner.host
                && self.inner.credentials == other.inner.credentials)
    }
}

impl Eq for Proxy {}

impl Hash for Proxy {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.inner.hash);
    }
}

impl FromStr for Proxy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Proxy::parse(s)
    }
}

impl TryFrom<&str> for Proxy {
    type Error = Error;

    fn try_from(s: &str) -> Result<Self, Error> {
        Proxy::parse(s)
    }
}

impl TryFrom<String> for Proxy {
    type Error = Error;

    fn try_from(s: String) -> Result<Self, Error> {
        Proxy::parse(&s)
    }
}

/// Anything that names a proxy: a [`Proxy`] or a proxy line (`&str`, `String`).
///
/// Used by the request builder's `.proxy(..)`. A line that does not parse becomes an
/// [`InvalidRequest`](ErrorKind::InvalidRequest) error quoting it redacted.
pub trait IntoProxy {
    /// Converts into a [`Proxy`].
    fn into_proxy(self) -> Result<Proxy, Error>;
}

impl IntoProxy for Proxy {
    fn into_proxy(self) -> Result<Proxy, Error> {
        Ok(self)
    }
}

impl IntoProxy for &Proxy {
    fn into_proxy(self) -> Result<Proxy, Error> {
        Ok(self.clone())
    }
}

impl IntoProxy for &str {
    fn into_proxy(self) -> Result<Proxy, Error> {
        Proxy::parse(self).map_err(as_invalid_request)
    }
}

impl IntoProxy for String {
    fn into_proxy(self) -> Result<Proxy, Error> {
        Proxy::parse(&self).map_err(as_invalid_request)
    }
}

impl IntoProxy for &String {
    fn into_proxy(self) -> Result<Proxy, Error> {
        Proxy::parse(self).map_err(as_invalid_request)
    }
}

fn as_invalid_request(e: Error) -> Error {
    Error::new(ErrorKind::InvalidRequest).with_message(e.message().unwrap_or("invalid proxy"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let p = Proxy::parse("http://u%40x:p%3Aw@Proxy.Test:8080/").unwrap();
        assert_eq!(p.credentials(), Some(("u@x", "p:w")));
        assert_eq!(p.host(), "proxy.test");
        assert_eq!(p.connect_uri(), "http://proxy.test:8080/");
        assert!(p.authorization().unwrap().is_sensitive());

        let p = Proxy::parse("1.2.3.4:3128").unwrap();
        assert_eq!(
            (p.scheme(), p.host(), p.port()),
            (ProxyScheme::Http, "1.2.3.4", 3128)
        );
        assert!(!p.has_credentials());

        let p = Proxy::parse("[::1]:1080:me:a:b").unwrap();
        assert_eq!((p.host(), p.credentials()), ("[::1]", Some(("me", "a:b"))));

        let p = Proxy::parse("SOCKS5://h.test").unwrap();
        assert_eq!((p.scheme(), p.port()), (ProxyScheme::Socks5, 1080));
        let p = Proxy::parse("https://[2001:db8::1]").unwrap();
        assert_eq!(p.connect_uri(), "https://[2001:db8::1]:443/");
        let p = Proxy::parse("user:pw@h.test:8000").unwrap();
        assert_eq!(p.credentials(), Some(("user", "pw")));
        assert_eq!(p.to_string(), "http://***@h.test:8000");
        let p = Proxy::new(ProxyScheme::Socks4, "::1", 9).unwrap();
        assert_eq!(p.to_string(), "socks4://[::1]:9");
    }

    #[test]
    fn bad_lines() {
        for (line, why) in [
            ("h.test", "missing port"),
            ("h.test:0", "port 0"),
            ("h.test:99999", "not a port"),
            ("h.test:80:user", "host:port:user:pass"),
            ("gopher://h.test:1", "unknown scheme"),
            ("http://h.test:1/path", "no path"),
            ("http://h test:1", "white space"),
            ("socks4://u:p@h.test:1", "socks4"),
            ("http://:pw@h.test:1", "user name is empty"),
            ("http://h_/:1", "no path"),
            ("[::1:80", "unclosed"),
            ("http://h!.test:1", "contains `!`"),
        ] {
            let err = Proxy::parse(line).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(err.to_string().contains(why), "{line}: {err}");
        }
    }

    #[test]
    fn redaction() {
        assert_eq!(redact_line("http://u:secret@h:1"), "http://u:***@h:1");
        assert_eq!(redact_line("http://token@h:1"), "http://***@h:1");
        assert_eq!(redact_line("h:1:u:sec:ret"), "h:1:u:***");
        assert_eq!(redact_line("h:1:secret"), "h:1:***");
        assert_eq!(redact_line("[::1]:1:u:secret"), "[::1]:1:u:***");
        assert_eq!(redact_line("u:secret@h:1"), "u:***@h:1");
        assert_eq!(redact_line("h:1"), "h:1");
        let e = Proxy::parse("ftp://u:secret@h:1").unwrap_err();
        assert!(!format!("{e} {e:?}").contains("secret"));
        let e = Proxy::parse("h:0:u:secret:x").unwrap_err();
        assert!(!format!("{e} {e:?}").contains("secret"), "{e}");
    }

    #[test]
    fn colon_form_password_with_at_or_scheme_separator() {
        // Found by fuzzing: an `@` or `://` in the password of host:port:user:pass made the
        // line parse as a URL (with the wrong host) or fail quoting the password.
        for (line, user, pass) in [
            ("h.test:8080:user:p@ss", "user", "p@ss"),
            ("h.test:8080:user:pa://ss", "user", "pa://ss"),
            ("h.test:8080:us@r:x@y:z", "us@r", "x@y:z"),
            ("[::1]:80:u:a@b", "u", "a@b"),
            ("10.0.0.1:3128:u:http://x@y", "u", "http://x@y"),
        ] {
            let p = Proxy::parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(p.scheme(), ProxyScheme::Http, "{line}");
            assert_eq!(p.credentials(), Some((user, pass)), "{line}");
            assert!(!p.to_string().contains(pass), "{line}");
            assert!(!redact_line(line).contains(pass), "{line}");
        }
        assert_eq!(
            Proxy::parse("h.test:8080:user:p@ss").unwrap().host(),
            "h.test"
        );
        // With a scheme too (found by fuzzing: `me@mail.test` as the user name and an `@` in
        // the password made the end of the password the host).
        let p = Proxy::parse("socks5://10.0.0.1:1080:me@mail.test:p@ss").unwrap();
        assert_eq!(p.scheme(), ProxyScheme::Socks5);
        assert_eq!((p.host(), p.port()), ("10.0.0.1", 1080));
        assert_eq!(p.credentials(), Some(("me@mail.test", "p@ss")));
        assert_eq!(
            redact_line("socks5://10.0.0.1:1080:me@mail.test:p@ss"),
            "socks5://10.0.0.1:1080:me@mail.test:***"
        );
        let e = Proxy::parse("gopher://h.test:1:u:s3cret").unwrap_err();
        assert!(e.to_string().contains("unknown scheme"), "{e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
        // The URL form without a scheme still works, also with an `@` in the password.
        let p = Proxy::parse("user:p@ss@h.test:8000").unwrap();
        assert_eq!(p.credentials(), Some(("user", "p@ss")));
        assert_eq!((p.host(), p.port()), ("h.test", 8000));
    }

    #[test]
    fn errors_never_quote_a_password_after_the_port() {
        for line in [
            "http://h.test:8o:user:s3cret",
            "h.test:80:user:s3cret x",
            "h.test:8o:user:s3cret",
            "ho@st:80:u:s3cret",
            "h.test:0:user:pa://s3cret",
            // Found by fuzzing: an unclosed `[` showed the whole line.
            "[:0::s3cret",
            "[::1:80:u:s3cret",
            "http://u@[::1:80:u:s3cret",
            // Found by fuzzing: an `@` in the user name of scheme://host:port:user:pass puts
            // the password in the place of the port.
            "socks4://10.0.0.1:1080:me@mail.test:s3cret",
            "http://:19199:@:s3cret",
            "user:s3cret",
            // Found by fuzzing: an empty or invalid host made an `@` in the password
            // split the line as a URL.
            ":16::s3c@r3t",
            "a/b:16:u:s3c@r3t",
        ] {
            let e = Proxy::parse(line).unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(
                !shown.contains("s3c") && !shown.contains("r3t"),
                "{line}: {e}"
            );
        }
    }

    #[test]
    fn equality_includes_credentials() {
        let a = Proxy::parse("http://u:a@h:1").unwrap();
        let b = Proxy::parse("http://u:b@h:1").unwrap();
        let a2 = Proxy::parse("h:1:u:a").unwrap();
        assert_ne!(a, b);
        assert_eq!(a, a2);
        assert_eq!(a.to_string(), b.to_string());
    }
}
