//! [`DecompressionBody`]: the decoded response body, capped.

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use http::Uri;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::adapter::{Coding, MappedBody};
use crate::error::{BoxError, Error, ErrorKind};

/// What the body knows when tower-http decodes it.
pub(super) struct Decoded {
    pub(super) coding: Coding,
    pub(super) limit: usize,
    pub(super) seen: usize,
    pub(super) url: Option<Uri>,
}

impl Decoded {
    fn error(&self, kind: ErrorKind, message: String) -> Error {
        let err = Error::new(kind).with_message(message);
        match &self.url {
            Some(url) => err.with_url(url),
            None => err,
        }
    }
}

pin_project! {
    /// The response body of [`Decompression`](super::Decompression).
    ///
    /// A body the server compressed (`Content-Encoding` gzip, deflate, br or zstd) is
    /// decoded as it is read, in frames of at most a few KiB, and fails with
    /// [`ErrorKind::BodyTooLarge`] as soon as the decoded bytes exceed the cap, or with
    /// [`ErrorKind::Decode`] when the compressed data is corrupt. Any other body passes
    /// through unchanged. Errors of the body below keep their kind. After an error the
    /// body ends.
    pub struct DecompressionBody<B>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        #[pin]
        inner: Inner<B>,
        done: bool,
    }
}

pin_project! {
    #[project = InnerProj]
    enum Inner<B>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        // The common case, kept small: the response moves through every layer above.
        Plain { #[pin] body: MappedBody<B> },
        // The decoder state is large (hundreds of bytes): boxed.
        Decoding { boxed: Pin<Box<Decoding<B>>> },
    }
}

pin_project! {
    struct Decoding<B>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        #[pin]
        body: tower_http::decompression::DecompressionBody<MappedBody<B>>,
        decoded: Decoded,
    }
}

impl<B> DecompressionBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    /// A body that passes through as the server sent it.
    pub(super) fn plain(body: B) -> Self {
        DecompressionBody {
            inner: Inner::Plain {
                body: MappedBody::new(body),
            },
            done: false,
        }
    }

    /// `decoded` is `Some` when, and only when, tower-http decodes the body.
    pub(super) fn new(
        inner: tower_http::decompression::DecompressionBody<MappedBody<B>>,
        decoded: Option<Decoded>,
    ) -> Self {
        let inner = match decoded {
            None => Inner::Plain {
                body: inner.into_inner(),
            },
            Some(decoded) => Inner::Decoding {
                boxed: Box::pin(Decoding {
                    body: inner,
                    decoded,
                }),
            },
        };
        DecompressionBody { inner, done: false }
    }

    fn decoded(&self) -> Option<&Decoded> {
        match &self.inner {
            Inner::Plain { .. } => None,
            Inner::Decoding { boxed } => Some(&boxed.decoded),
        }
    }

    /// The content coding being decoded (`"gzip"`, `"deflate"`, `"br"` or `"zstd"`), or
    /// `None` when the body passes through as the server sent it.
    pub fn coding(&self) -> Option<&'static str> {
        self.decoded().map(|d| d.coding.as_str())
    }

    /// The cap on the decoded size, in bytes, when the body is decoded.
    pub fn limit(&self) -> Option<usize> {
        self.decoded().map(|d| d.limit)
    }
}

impl<B> fmt::Debug for DecompressionBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecompressionBody")
            .field("coding", &self.coding())
            .field("limit", &self.limit())
            .finish_non_exhaustive()
    }
}

fn map_error(err: BoxError, decoded: Option<&Decoded>) -> Error {
    // The body below only fails with fastreq errors (see `MappedBody`), so anything else
    // comes from the decoder.
    match err.downcast::<Error>() {
        Ok(err) => *err,
        Err(err) => {
            let e = match decoded {
                Some(d) => d.error(
                    ErrorKind::Decode,
                    format!("invalid {}-encoded response body: {err}", d.coding.as_str()),
                ),
                None => Error::new(ErrorKind::Decode).with_message(err.to_string()),
            };
            e.with_source(err)
        }
    }
}

impl<B> Body for DecompressionBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        let (polled, decoded) = match this.inner.project() {
            InnerProj::Plain { body } => {
                let polled = ready!(body.poll_frame(cx))
                    .map(|r| r.map(|frame| frame.map_data(|mut d| d.copy_to_bytes(d.remaining()))));
                (polled, None)
            }
            InnerProj::Decoding { boxed } => {
                let d = boxed.as_mut().project();
                let polled = ready!(d.body.poll_frame(cx));
                let polled = polled.map(|r| r.map_err(|e| map_error(e, Some(&*d.decoded))));
                (polled, Some(d.decoded))
            }
        };
        match polled {
            Some(Ok(frame)) => {
                if let (Some(d), Some(data)) = (decoded, frame.data_ref()) {
                    d.seen = d.seen.saturating_add(data.len());
                    if d.seen > d.limit {
                        *this.done = true;
                        let msg = format!(
                            "decompressed ({}) response body exceeds the limit of {} bytes",
                            d.coding.as_str(),
                            d.limit
                        );
                        return Poll::Ready(Some(Err(d.error(ErrorKind::BodyTooLarge, msg))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(err)) => {
                *this.done = true;
                Poll::Ready(Some(Err(err)))
            }
            None => {
                *this.done = true;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        // tower-http's decoding body cannot tell; a pass-through body can.
        self.done
            || match &self.inner {
                Inner::Plain { body } => body.is_end_stream(),
                Inner::Decoding { .. } => false,
            }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Plain { body } => body.size_hint(),
            Inner::Decoding { boxed } => boxed.body.size_hint(),
        }
    }
}
