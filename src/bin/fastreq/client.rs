//! Turning the flags into a configured [`fastreq::Client`] and request defaults.
//!
//! Every problem found here is a usage error (exit status 2), reported before any request.

use std::path::PathBuf;

use bytes::Bytes;
use fastreq::proxy::WhenAllDown;
use fastreq::{Client, Error, StackBuilder};
use http::{HeaderName, HeaderValue};

use crate::args::{FetchArgs, ProxyStrategyArg, WhenAllDownArg};
use crate::input::{parse_method, Defaults};

/// Parses one `-H 'Name: value'`. The value is never echoed in an error (it may be a secret).
pub fn parse_header(s: &str) -> Result<(HeaderName, HeaderValue), String> {
    let Some((name, value)) = s.split_once(':') else {
        return Err("invalid -H value: expected 'Name: value' (no ':' found)".into());
    };
    let name = name.trim();
    let header = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("invalid -H header name `{name}`"))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("invalid -H value for header `{header}`"))?;
    Ok((header, value))
}

/// The body of `-d`: the string itself, or the content of FILE for `@FILE`.
pub fn read_data(arg: &str) -> Result<Bytes, String> {
    match arg.strip_prefix('@') {
        Some("-") => Err("-d @- is not supported (stdin may hold the input)".into()),
        Some(path) => std::fs::read(path)
            .map(Bytes::from)
            .map_err(|e| format!("cannot read -d file `{path}`: {e}")),
        None => Ok(Bytes::copy_from_slice(arg.as_bytes())),
    }
}

/// The certificates of `--cacert FILE`; the error names the file.
pub fn read_cacert(path: &std::path::Path) -> Result<Vec<fastreq::Certificate>, String> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("cannot read --cacert `{shown}`: {e}"))?;
    fastreq::Certificate::from_pem_bundle(&pem).map_err(|e| {
        let why = e.message().map_or_else(|| e.to_string(), str::to_owned);
        format!("--cacert `{shown}` is not a PEM certificate file: {why}")
    })
}

/// `-X` and `-d`.
pub fn defaults(args: &FetchArgs) -> Result<Defaults, String> {
    let method = match &args.method {
        Some(m) => Some(parse_method(m).map_err(|e| format!("-X: {e}"))?),
        None => None,
    };
    let body = match &args.data {
        Some(d) => Some(read_data(d)?),
        None => None,
    };
    Ok(Defaults { method, body })
}

/// The one place where proxy flags reach the stack.
pub fn apply_proxies(
    builder: StackBuilder,
    proxies: Vec<String>,
    file: Option<PathBuf>,
    strategy: ProxyStrategyArg,
) -> Result<StackBuilder, Error> {
    if proxies.is_empty() && file.is_none() {
        return Ok(builder);
    }
    let mut pool = fastreq::proxy::ProxyPool::builder();
    for line in &proxies {
        pool = pool.lines(line);
    }
    if let Some(path) = file {
        pool = pool.file(path);
    }
    let strategy = match strategy {
        ProxyStrategyArg::RoundRobin => fastreq::proxy::Strategy::RoundRobin,
        ProxyStrategyArg::Random => fastreq::proxy::Strategy::Random,
        ProxyStrategyArg::Sticky => fastreq::proxy::Strategy::StickyPerHost,
    };
    Ok(builder.proxies(pool.build()?).proxy_strategy(strategy))
}

/// `--when-all-proxies-down`.
pub fn when_all_down(arg: WhenAllDownArg) -> WhenAllDown {
    match arg {
        WhenAllDownArg::Wait => WhenAllDown::Wait,
        WhenAllDownArg::Fail => WhenAllDown::Fail,
        WhenAllDownArg::Direct => WhenAllDown::GoDirect,
    }
}

/// The preset configured from the flags.
pub fn build_client(args: &FetchArgs) -> Result<Client, String> {
    let mut b = fastreq::stack()
        .concurrency(args.concurrency)
        .burst(args.burst)
        .retries(args.retries)
        .retry_non_idempotent(args.retry_post)
        .timeout(args.timeout)
        .body_idle_timeout(args.timeout)
        .connect_timeout(args.connect_timeout);
    if let Some(deadline) = args.max_time {
        b = b.total_timeout(deadline);
    }
    if let Some(n) = args.per_host_concurrency {
        b = b.per_host_concurrency(n);
    }
    if let Some(r) = args.rate {
        b = b.rate_limit(r);
    }
    if let Some(r) = args.per_host_rate {
        b = b.per_host_rate_limit(r);
    }
    // A worker of a queue: the rates are quotas shared by all the queue's workers.
    if let (Some(url), Some(name)) = (&args.redis, &args.queue) {
        if args.rate.is_some() || args.per_host_rate.is_some() {
            let store = fastreq::rate_limit::RedisStore::builder(url)
                .on_failure(args.redis_failure)
                .build()
                .map_err(|e| format!("--redis: {e}"))?;
            b = b.redis_rate_limit(store, name);
        }
    }
    if let Some(ua) = &args.user_agent {
        HeaderValue::from_str(ua).map_err(|_| "invalid --user-agent value".to_owned())?;
        b = b.user_agent(ua);
    } else if let Some(file) = &args.user_agents {
        b = b.user_agents_file(file);
    } else if args.random_user_agent {
        b = b.random_user_agent();
    }
    b = if args.no_redirects || args.max_redirects == 0 {
        b.no_redirects()
    } else {
        b.max_redirects(args.max_redirects)
    };
    #[cfg(feature = "cookies")]
    if args.no_cookies {
        b = b.cookies(false);
    }
    if args.http1_only {
        b = b.http1_only();
    }
    if args.http3 {
        b = b.http3();
    }
    if args.insecure_skip_tls_verify {
        b = b.danger_accept_invalid_certs(true);
    }
    if let Some(path) = &args.cacert {
        for cert in read_cacert(path)? {
            b = b.add_root_certificate(cert);
        }
    }
    for h in &args.headers {
        let (name, value) = parse_header(h)?;
        let value = value
            .to_str()
            .map_err(|_| format!("invalid -H value for header `{name}`"))?;
        b = b.default_header(name.as_str(), value);
    }
    let no_pool = args.proxies.is_empty() && args.proxies_file.is_none();
    if args.proxy_strategy.is_some() && no_pool {
        return Err("--proxy-strategy needs --proxy or --proxies".into());
    }
    if let Some(when) = args.when_all_proxies_down {
        if no_pool {
            return Err("--when-all-proxies-down needs --proxy or --proxies".into());
        }
        b = b.when_all_proxies_down(when_all_down(when));
    }
    b = apply_proxies(
        b,
        args.proxies.clone(),
        args.proxies_file.clone(),
        args.proxy_strategy.unwrap_or(ProxyStrategyArg::RoundRobin),
    )
    .map_err(|e| e.to_string())?;
    b.build().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let (n, v) = parse_header("X-Api-Key:  s3cret ").unwrap();
        assert_eq!(n, "x-api-key");
        assert_eq!(v, "s3cret");
        let (n, v) = parse_header("Accept:").unwrap();
        assert_eq!((n.as_str(), v.as_bytes()), ("accept", &b""[..]));
        assert_eq!(parse_header("a:b:c").unwrap().1, "b:c");
        for bad in ["no colon", ": v", "bad name: v", "X: a\u{1}b"] {
            assert!(parse_header(bad).is_err(), "{bad}");
        }
        let e = parse_header("Authorization: Bearer x\ny").unwrap_err();
        assert!(!e.contains("Bearer"), "the value is not echoed: {e}");
    }

    #[test]
    fn data() {
        assert_eq!(read_data("a=1").unwrap(), "a=1");
        assert!(read_data("@-").is_err());
        let e = read_data("@/nonexistent/fastreq-data").unwrap_err();
        assert!(e.contains("/nonexistent/fastreq-data"), "{e}");
    }

    #[test]
    fn proxy_flags_build_a_pool_or_name_the_bad_line() {
        let b = apply_proxies(fastreq::stack(), vec![], None, ProxyStrategyArg::Random);
        assert!(b.is_ok());
        let b = apply_proxies(
            fastreq::stack(),
            vec!["http://p.test:8080".into(), "socks5://q.test:1080".into()],
            None,
            ProxyStrategyArg::RoundRobin,
        );
        assert!(b.is_ok());
        let e = apply_proxies(
            fastreq::stack(),
            vec!["http://bob:hunter2@p.test:notaport".into()],
            None,
            ProxyStrategyArg::Sticky,
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(s.contains("prox") && !s.contains("hunter2"), "{s}");
        let e = apply_proxies(
            fastreq::stack(),
            vec![],
            Some("/nonexistent/fastreq-proxies".into()),
            ProxyStrategyArg::Random,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("/nonexistent/fastreq-proxies"),
            "{e}"
        );
    }
}
