//! `-v` / `--log-format`: tracing logs on stderr, off by default.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::args::LogFormat;

/// The filter for `-v` repeated `verbose` times (`None`: no logs).
pub fn filter_for(verbose: u8) -> Option<&'static str> {
    match verbose {
        0 => None,
        1 => Some("warn,fastreq=info"),
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
        assert_eq!(filter_for(0), None);
        assert!(filter_for(1).unwrap().contains("fastreq=info"));
        assert!(filter_for(2).unwrap().contains("fastreq=debug"));
        assert_eq!(filter_for(5), Some("trace"));
    }
}
