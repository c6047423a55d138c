//! Proxy list lines: never a panic; a parsed proxy displays as `scheme://[***@]host:port`
//! and parses back equal from its URL form; a password is never shown, in a proxy or in an
//! error; `host:port:user:pass` and URL lines with valid parts parse to exactly those parts.
#![no_main]

use fastreq::__fuzz::{proxy_credentials, redact_proxy_line};
use fastreq::proxy::{Proxy, ProxyScheme};
use fastreq::ErrorKind;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Input {
    Line(String),
    Parts {
        form: u8,
        scheme: u8,
        host: String,
        port: u16,
        user: String,
        pass: String,
    },
}

const SCHEMES: [ProxyScheme; 5] = [
    ProxyScheme::Http,
    ProxyScheme::Https,
    ProxyScheme::Socks5,
    ProxyScheme::Socks5h,
    ProxyScheme::Socks4,
];

fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A parsed proxy: its display form, and a round trip through its URL form.
fn check_parsed(p: &Proxy) {
    let creds = proxy_credentials(p);
    let expected = match creds {
        Some(_) => format!("{}://***@{}:{}", p.scheme(), p.host(), p.port()),
        None => format!("{}://{}:{}", p.scheme(), p.host(), p.port()),
    };
    assert_eq!(p.to_string(), expected);
    assert_eq!(format!("{p:?}"), format!("Proxy({expected:?})"));
    assert_eq!(p.has_credentials(), creds.is_some());
    assert_eq!(p.username(), creds.map(|c| c.0));
    let url = match creds {
        Some((u, pw)) => format!(
            "{}://{}:{}@{}:{}",
            p.scheme(),
            pct(u),
            pct(pw),
            p.host(),
            p.port()
        ),
        None => expected.clone(),
    };
    let again =
        Proxy::parse(&url).unwrap_or_else(|e| panic!("{expected} does not parse back: {e}"));
    assert_eq!(&again, p);
    assert_eq!(proxy_credentials(&again), creds);
    let mut built = Proxy::new(p.scheme(), p.host(), p.port()).expect("parts of a parsed proxy");
    if let Some((u, pw)) = creds {
        built = built
            .with_credentials(u, pw)
            .expect("credentials of a parsed proxy");
    }
    assert_eq!(&built, p);
}

fn plain_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && !h.starts_with(['.', '-'])
        && !h.contains("..")
}

fn no_space_or_control(s: &str) -> bool {
    !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fuzz_target!(|input: Input| {
    match input {
        Input::Line(line) => {
            let _ = redact_proxy_line(&line);
            match Proxy::parse(&line) {
                Ok(p) => check_parsed(&p),
                Err(e) => assert_eq!(e.kind(), ErrorKind::Config),
            }
        }
        Input::Parts {
            form,
            scheme,
            host,
            port,
            user,
            pass,
        } => {
            // Markers at both ends of the password: neither may ever be shown.
            let pass = format!("Q9x{pass}X9q");
            let scheme = SCHEMES[usize::from(scheme) % SCHEMES.len()];
            let line = match form % 4 {
                0 => format!("{host}:{port}:{user}:{pass}"),
                1 => format!("{scheme}://{}:{}@{host}:{port}", pct(&user), pct(&pass)),
                2 => format!("{user}:{pass}@{host}:{port}"),
                _ => format!("{scheme}://{host}:{port}:{user}:{pass}"),
            };
            let result = Proxy::parse(&line);
            let marked = |s: &str| s.contains("Q9x") || s.contains("X9q");
            let lower = |s: &str| s.to_ascii_lowercase();
            // A host with `@`, `:` or brackets in the colon forms changes the fields
            // (`a@b:80:u:p@q` reads as a URL's user info, `a:b:80:u:p` has its port in the
            // third field): which part is the password is then undecidable.
            // So is a user name with `:` in `user:pass@host:port` (`u:3:pass@h:80` reads
            // as `host:port:user:pass`).
            let ambiguous = (matches!(form % 4, 0 | 3) && host.contains(['@', ':', '[', ']']))
                || (form % 4 == 2 && user.contains(':'));
            let parts_marked = ambiguous
                || [&host, &user]
                    .iter()
                    .any(|s| marked(s) || lower(s).contains("q9x") || lower(s).contains("x9q"));
            if !parts_marked {
                let shown = match &result {
                    Ok(p) => format!("{p} {p:?}"),
                    Err(e) => format!("{e} {e:?}"),
                };
                assert!(!marked(&shown), "password shown for {line:?}: {shown}");
                let redacted = redact_proxy_line(line.trim());
                assert!(!marked(&redacted), "password kept by redaction: {redacted}");
            }
            if let Ok(p) = &result {
                check_parsed(p);
            }
            // Lines of valid parts parse to exactly those parts.
            let valid = plain_host(&host)
                && port != 0
                && !user.is_empty()
                && no_space_or_control(&user)
                && no_space_or_control(&pass);
            let expect_exact = valid
                && match form % 4 {
                    0 => !user.contains(':'),
                    1 => {
                        scheme != ProxyScheme::Socks4
                            && !(scheme.is_socks() && (user.len() > 255 || pass.len() > 255))
                    }
                    2 => {
                        !user.contains([':', '%', '@', '/'])
                            && !pass.contains('%')
                            && !user.contains("://")
                    }
                    _ => {
                        !user.contains(':')
                            && scheme != ProxyScheme::Socks4
                            && !(scheme.is_socks() && (user.len() > 255 || pass.len() > 255))
                    }
                };
            if expect_exact {
                let p = result.unwrap_or_else(|e| panic!("{line:?} does not parse: {e}"));
                let scheme = if matches!(form % 4, 1 | 3) {
                    scheme
                } else {
                    ProxyScheme::Http
                };
                assert_eq!(p.scheme(), scheme, "{line:?}");
                assert_eq!(p.host(), host.to_ascii_lowercase(), "{line:?}");
                assert_eq!(p.port(), port, "{line:?}");
                assert_eq!(proxy_credentials(&p), Some((&*user, &*pass)), "{line:?}");
            }
        }
    }
});
