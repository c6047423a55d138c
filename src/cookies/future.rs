//! The response future of [`Cookies`](super::Cookies).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::SET_COOKIE;
use http::{Response, Uri};
use pin_project_lite::pin_project;

use super::cookie_url::uri_to_url;
use super::jar::CookieJar;
use crate::error::Error;

pin_project! {
    /// The response future of [`Cookies`](super::Cookies): the inner future, then the
    /// response's `Set-Cookie` headers go into the jar (under the jar's write lock, taken
    /// once, only when there is a `Set-Cookie`).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        jar: CookieJar,
        uri: Option<Uri>,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, jar: CookieJar, uri: Uri) -> Self {
        ResponseFuture {
            inner,
            jar,
            uri: Some(uri),
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("cookies::ResponseFuture")
            .field("jar", &self.jar)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<Error>,
{
    type Output = Result<Response<B>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let resp = match this.inner.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
            Poll::Ready(Ok(resp)) => resp,
        };
        if resp.headers().contains_key(SET_COOKIE) {
            // A relative URI has no host to attribute cookies to: they are dropped.
            if let Some(url) = this.uri.take().as_ref().and_then(uri_to_url) {
                this.jar.store_response_cookies(resp.headers(), &url);
            }
        }
        Poll::Ready(Ok(resp))
    }
}
