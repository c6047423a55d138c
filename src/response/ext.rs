//! [`ResponseExt`]: helpers to read a response, each capped by a size limit.

use std::future::Future;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Response, Uri};

use super::collect::collect_limited;
use super::DEFAULT_BODY_LIMIT;
use crate::error::{BoxError, Error};
use crate::ext::{Attempts, BodyLimit, FinalUrl};

/// The encoding named by the `charset` parameter of a `Content-Type` value.
pub(super) fn charset_of(content_type: Option<&[u8]>) -> Option<&'static encoding_rs::Encoding> {
    content_type?
        .split(|&b| b == b';')
        .skip(1)
        .find_map(|param| {
            let eq = param.iter().position(|&b| b == b'=')?;
            let (key, value) = (&param[..eq], &param[eq + 1..]);
            if key.trim_ascii().eq_ignore_ascii_case(b"charset") {
                let mut label = value.trim_ascii();
                while let Some(rest) = label.strip_prefix(b"\"") {
                    label = rest;
                }
                while let Some(rest) = label.strip_suffix(b"\"") {
                    label = rest;
                }
                encoding_rs::Encoding::for_label(label)
            } else {
                None
            }
        })
}

#[cfg(feature = "json")]
fn url_of<B>(resp: &Response<B>) -> Option<Uri> {
    resp.extensions().get::<FinalUrl>().map(|u| u.0.clone())
}

pub(super) fn with_url(err: Error, url: Option<&Uri>) -> Error {
    match url {
        Some(u) if err.url().is_none() => err.with_url(u),
        _ => err,
    }
}

/// Helpers to read an [`http::Response`], each capped by a size limit.
///
/// Implemented for every `http::Response<B>` whose body yields bytes. See the
/// [module docs](crate::response) for the cap.
pub trait ResponseExt: sealed::Sealed {
    /// Reads the whole body, up to the response's [`BodyLimit`] (default 64 MiB).
    fn bytes(self) -> impl Future<Output = Result<Bytes, Error>> + Send;

    /// Reads the whole body, failing with `BodyTooLarge` past `limit` bytes.
    fn bytes_limited(self, limit: usize) -> impl Future<Output = Result<Bytes, Error>> + Send;

    /// Reads the body as text: charset from `Content-Type`, else UTF-8; invalid sequences
    /// become U+FFFD.
    fn text(self) -> impl Future<Output = Result<String, Error>> + Send;

    /// Reads the body as JSON into `T`; invalid JSON is a `Decode` error.
    #[cfg(feature = "json")]
    fn json<T: serde::de::DeserializeOwned>(self) -> impl Future<Output = Result<T, Error>> + Send;

    /// The URL this response finally came from, when a fastreq backend or redirect layer
    /// recorded it ([`FinalUrl`]).
    fn final_url(&self) -> Option<&Uri>;

    /// How many attempts were made for this response ([`Attempts`]; 1 when not recorded).
    fn attempts(&self) -> u32;
}

mod sealed {
    pub trait Sealed {}
    impl<B> Sealed for http::Response<B> {}
}

impl<B> ResponseExt for Response<B>
where
    B: http_body::Body + Send,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    fn bytes(self) -> impl Future<Output = Result<Bytes, Error>> + Send {
        let limit = self
            .extensions()
            .get::<BodyLimit>()
            .map_or(DEFAULT_BODY_LIMIT, |l| l.0);
        self.bytes_limited(limit)
    }

    fn bytes_limited(self, limit: usize) -> impl Future<Output = Result<Bytes, Error>> + Send {
        // Moved out, not cloned: it is only needed if reading fails.
        let (mut parts, body) = self.into_parts();
        let url = parts.extensions.remove::<FinalUrl>().map(|u| u.0);
        async move {
            collect_limited(body, limit)
                .await
                .map_err(|e| with_url(e, url.as_ref()))
        }
    }

    fn text(self) -> impl Future<Output = Result<String, Error>> + Send {
        let content_type = self.headers().get(CONTENT_TYPE).map(HeaderValue::as_bytes);
        let encoding = charset_of(content_type).unwrap_or(encoding_rs::UTF_8);
        let bytes = self.bytes();
        async move {
            let bytes = bytes.await?;
            Ok(encoding.decode(&bytes).0.into_owned())
        }
    }

    #[cfg(feature = "json")]
    fn json<T: serde::de::DeserializeOwned>(self) -> impl Future<Output = Result<T, Error>> + Send {
        let url = url_of(&self);
        async move {
            let bytes = self.bytes().await?;
            serde_json::from_slice(&bytes).map_err(|e| {
                with_url(
                    Error::new(crate::error::ErrorKind::Decode)
                        .with_message(format!("invalid JSON body: {e}"))
                        .with_source(e),
                    url.as_ref(),
                )
            })
        }
    }

    fn final_url(&self) -> Option<&Uri> {
        self.extensions().get::<FinalUrl>().map(|u| &u.0)
    }

    fn attempts(&self) -> u32 {
        self.extensions().get::<Attempts>().map_or(1, |a| a.0)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(feature = "json")]
    use std::time::Instant;

    use http_body::Frame;

    use super::*;
    #[cfg(feature = "json")]
    use crate::response::Fetched;
    use crate::response::ResponseBody;

    #[tokio::test]
    async fn limit_by_extension_and_hint() {
        let mut resp = Response::new(ResponseBody::from(vec![1u8; 10]));
        resp.extensions_mut().insert(BodyLimit(9));
        resp.extensions_mut()
            .insert(FinalUrl("http://h.test/?token=x".parse().unwrap()));
        let err = resp.bytes().await.unwrap_err();
        assert!(err.is_body_too_large());
        assert_eq!(err.url(), Some("http://h.test/?token=REDACTED"));

        let resp = Response::new(ResponseBody::from(vec![1u8; 10]));
        assert_eq!(resp.bytes_limited(10).await.unwrap().len(), 10);
    }

    #[tokio::test]
    async fn streamed_body_is_capped_without_hint() {
        let chunks =
            (0..100).map(|_| Ok::<_, std::io::Error>(Frame::data(Bytes::from(vec![0u8; 100]))));
        let body = http_body_util::StreamBody::new(futures_util::stream::iter(chunks));
        let resp = Response::new(ResponseBody::new(body));
        let err = resp.bytes_limited(5_000).await.unwrap_err();
        assert!(err.is_body_too_large(), "{err}");
    }

    #[tokio::test]
    async fn text_charset() {
        let resp = Response::builder()
            .header("content-type", "text/html; Charset=\"windows-1252\"")
            .body(ResponseBody::from(&b"\x93hi\x94"[..]))
            .unwrap();
        assert_eq!(resp.text().await.unwrap(), "\u{201c}hi\u{201d}");
        let resp = Response::new(ResponseBody::from(&b"ok \xff"[..]));
        assert_eq!(resp.text().await.unwrap(), "ok \u{fffd}");
    }

    #[cfg(feature = "json")]
    #[tokio::test]
    async fn json_helpers() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Item {
            id: u32,
        }
        let resp = Response::new(ResponseBody::from(r#"{"id":7}"#));
        assert_eq!(resp.json::<Item>().await.unwrap(), Item { id: 7 });
        let mut resp = Response::new(ResponseBody::from("{oops"));
        resp.extensions_mut()
            .insert(FinalUrl("http://h.test/?key=k".parse().unwrap()));
        let err = resp.json::<Item>().await.unwrap_err();
        assert!(err.is_decode());
        assert_eq!(err.url(), Some("http://h.test/?key=REDACTED"));

        let uri: Uri = "http://h.test/".parse().unwrap();
        let f = Fetched::from_response(
            Response::new(ResponseBody::from(r#"{"id":1}"#)),
            &uri,
            Instant::now(),
        )
        .await
        .unwrap();
        assert_eq!(f.json::<Item>().unwrap(), Item { id: 1 });
        assert!(f.json::<Vec<u8>>().unwrap_err().is_decode());
    }
}
