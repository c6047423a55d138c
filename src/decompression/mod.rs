//! Compressed responses: asked for, decoded, and capped in decoded size.
//!
//! [`DecompressionLayer`] wraps a service in [`Decompression`], which is tower-http's
//! [`Decompression`](tower_http::decompression::Decompression) plus the cap tower-http
//! lacks:
//!
//! - **Asks** for `zstd,gzip,deflate,br` with `Accept-Encoding`, unless the request already
//!   has an `Accept-Encoding` header (that one is sent as it is). Codings can be turned
//!   off one by one with the [builder](DecompressionLayer::builder).
//! - **Decodes** a response whose `Content-Encoding` is exactly `gzip`, `deflate` (zlib, as
//!   HTTP defines it), `br` or `zstd`, as the body is read; `Content-Encoding` and
//!   `Content-Length` are then removed from the response. Any other response (no coding,
//!   an unknown one, a coding turned off, a list of codings) passes through unchanged.
//!   Status, headers and extensions ([`FinalUrl`](crate::ext::FinalUrl),
//!   [`BodyLimit`](crate::ext::BodyLimit), …) are kept.
//! - **Caps the decoded size**: a small response can decode to gigabytes (a
//!   "decompression bomb", aiohttp CVE-2025-69223). The [`DecompressionBody`] counts the
//!   decoded bytes as they come (tower-http yields frames of at most 4 KiB) and fails with
//!   [`ErrorKind::BodyTooLarge`](crate::ErrorKind::BodyTooLarge) as soon as they exceed
//!   the cap, never holding more than a frame. The cap is, first found: the request's
//!   [`BodyLimit`](crate::ext::BodyLimit) extension, the layer's
//!   [`max_decoded_size`](DecompressionBuilder::max_decoded_size), the response's
//!   `BodyLimit` (the [`Backend`](crate::Backend) sets its `body_limit` there), else
//!   [`DEFAULT_BODY_LIMIT`](crate::DEFAULT_BODY_LIMIT) (64 MiB). Bodies that are not
//!   decoded are not counted here (their size is what the server sent; the
//!   [`ResponseExt`](crate::ResponseExt) helpers cap them when buffering).
//! - **Errors**: corrupt compressed data is [`ErrorKind::Decode`](crate::ErrorKind::Decode)
//!   (with the coding and the URL, redacted); errors of the inner service and of its body
//!   keep their kind.
//!
//! In fastreq's stack the layer sits right above the backend, inside the timeouts, so the
//! body-idle timeout covers a slow compressed body too.
//!
//! # Examples
//!
//! ```
//! use std::io::Write;
//! use fastreq::decompression::DecompressionLayer;
//! use fastreq::{Body, ErrorKind, ResponseBody, ResponseExt};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
//! fn gzip(data: &[u8]) -> Vec<u8> {
//!     let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
//!     enc.write_all(data).unwrap();
//!     enc.finish().unwrap()
//! }
//!
//! // An in-memory backend: 10 KB of text, gzipped, when the client accepts gzip.
//! let backend = tower::service_fn(|req: http::Request<Body>| async move {
//!     assert!(req.headers()["accept-encoding"].to_str().unwrap().contains("gzip"));
//!     let body = gzip("hello ".repeat(2_000).as_bytes());
//!     Ok::<_, fastreq::Error>(
//!         http::Response::builder()
//!             .header("content-encoding", "gzip")
//!             .body(ResponseBody::from(body))
//!             .unwrap(),
//!     )
//! });
//!
//! let svc = ServiceBuilder::new().layer(DecompressionLayer::new()).service(backend.clone());
//! let resp = svc.oneshot(fastreq::get("http://api.test/").build()?).await?;
//! assert!(resp.headers().get("content-encoding").is_none());
//! assert_eq!(resp.text().await?.len(), 12_000);
//!
//! // The same response with the decoded size capped at 1 KB.
//! let svc = ServiceBuilder::new()
//!     .layer(DecompressionLayer::with_max_decoded_size(1_000))
//!     .service(backend);
//! let resp = svc.oneshot(fastreq::get("http://api.test/").build()?).await?;
//! let err = resp.bytes().await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::BodyTooLarge);
//! # Ok(()) }
//! ```

mod adapter;
mod body;
mod future;
mod layer;
mod service;

pub use body::DecompressionBody;
pub use future::ResponseFuture;
pub use layer::{DecompressionBuilder, DecompressionLayer};
pub use service::Decompression;
