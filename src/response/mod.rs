//! Responses: the [`ResponseBody`], the [`ResponseExt`] helpers and the buffered [`Fetched`].
//!
//! A response from fastreq is an [`http::Response<ResponseBody>`](http::Response). Read it
//! with the [`ResponseExt`] helpers, which all stop at a size cap: the response's
//! [`BodyLimit`] extension (set by the backend, default [`DEFAULT_BODY_LIMIT`], 64 MiB), or
//! the limit given explicitly. A larger body is an
//! [`ErrorKind::BodyTooLarge`] error.
//!
//! [`BodyLimit`]: crate::ext::BodyLimit
//! [`ErrorKind::BodyTooLarge`]: crate::ErrorKind::BodyTooLarge
//!
//! Buffered bodies are copied to exact-size buffers, and a [`Fetched`] keeps its body, final
//! URL and headers in one: hyper hands out slices of its connection read buffer, and keeping
//! those for many small responses pins whole buffers (measured: 4.3 GB for 1,000,000
//! responses of 200 bytes).
//!
//! # Examples
//!
//! ```
//! use fastreq::{ResponseBody, ResponseExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
//! let resp = http::Response::builder()
//!     .header("content-type", "text/plain; charset=iso-8859-1")
//!     .body(ResponseBody::from(&b"caf\xe9"[..]))
//!     .unwrap();
//! assert_eq!(resp.text().await?, "café");
//!
//! let big = http::Response::new(ResponseBody::from(vec![0u8; 1000]));
//! let err = big.bytes_limited(100).await.unwrap_err();
//! assert!(err.is_body_too_large());
//! # Ok(()) }
//! ```

mod body;
mod collect;
mod compact;
mod ext;
mod fetched;

pub(crate) use body::hyper_body_error;
pub use body::ResponseBody;
pub use ext::ResponseExt;
pub use fetched::Fetched;

/// The default cap on a buffered response body: 64 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The header map of a compact header block, which may be damaged (for the fuzz targets).
#[cfg(feature = "__fuzz")]
pub(crate) fn decode_header_block(block: &[u8]) -> (http::HeaderMap, Option<&[u8]>) {
    (
        compact::header_map(block),
        compact::find_header(block, "x-fuzz"),
    )
}
