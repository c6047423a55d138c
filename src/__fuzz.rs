//! Thin wrappers over private items for the cargo-fuzz targets in `fuzz/` (feature
//! `__fuzz`). Not a public API: no stability, hidden from the docs.

use http::HeaderMap;

use crate::proxy::Proxy;

/// The user name and password of a proxy.
pub fn proxy_credentials(proxy: &Proxy) -> Option<(&str, &str)> {
    proxy.credentials()
}

/// A proxy line with its password replaced by `***`, as errors quote it.
pub fn redact_proxy_line(line: &str) -> String {
    crate::proxy::redact_line(line)
}

/// Decodes a compact header block (possibly damaged): the header map, and the first value
/// of `x-fuzz` read in place.
pub fn decode_header_block(block: &[u8]) -> (HeaderMap, Option<&[u8]>) {
    crate::response::decode_header_block(block)
}
