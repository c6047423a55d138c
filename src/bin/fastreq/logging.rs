//! `-v` / `--log-format`: tracing logs on stderr; without `-v` only the "all proxies down,
//! waiting" warning and the warnings of a failing Redis.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::args::LogFormat;

/// The filter for `-v` repeated `verbose` times (`None`: no logs).
pub fn filter_for(verbose: u8) -> Option<&'static str> {
    match verbose {
        // Without `-v`, only the warnings that every proxy is down and requests wait, and
        // that Redis (a work queue's, a shared rate limit's) failed or is back.
        0 => Some(
            "off,fastreq::proxy::service=warn,fastreq::queue=warn,fastreq::rate_limit::redis=warn",
        ),
        // Retries, give-ups and proxy events are debug events of the library (a library
        // keeps its info level quiet); `-v` shows them, and every warning.
        1 => Some("warn,fastreq=info,fastreq::retry=debug,fastreq::proxy=debug"),
        2 => Some("info,fastreq=debug"),
        _ => Some("trace"),
    }
}

/// Installs the subscriber. With `-v`, a valid `RUST_LOG` picks the filter instead.
pub fn init(verbose: u8, format: LogFormat) {
    let Some(default) = filter_for(verbose) else {
        return;
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert!(filter_for(0)
            .unwrap()
            .starts_with("off,fastreq::proxy::service=warn,"));
        assert!(filter_for(0).unwrap().contains("fastreq::queue=warn"));
        assert!(filter_for(1).unwrap().contains("fastreq=info"));
        assert!(filter_for(1).unwrap().contains("fastreq::retry=debug"));
        assert!(filter_for(2).unwrap().contains("fastreq=debug"));
        assert_eq!(filter_for(5), Some("trace"));
    }
}
