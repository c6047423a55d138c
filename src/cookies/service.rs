//! The [`Cookies`] service.

use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::future::ResponseFuture;
use super::jar::{mark_cookie_sensitive, CookieJar};
use super::rules::Target;
use crate::error::Error;

/// Adds the jar's matching cookies to each request's `Cookie` header and stores the
/// `Set-Cookie` headers of each response. See the [module docs](super).
///
/// Each call is one HTTP exchange (one redirect hop): the redirect layer above calls it
/// once per hop, so a cookie set on a `302` is in the jar before the next hop is sent.
#[derive(Clone, Debug)]
pub struct Cookies<S> {
    inner: S,
    jar: CookieJar,
}

impl<S> Cookies<S> {
    /// Wraps `inner`, using `jar`.
    pub fn new(inner: S, jar: CookieJar) -> Self {
        Cookies { inner, jar }
    }

    /// The jar this service uses.
    pub fn jar(&self) -> &CookieJar {
        &self.jar
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Cookies<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<Error>,
{
    type Response = Response<ResBody>;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // Kept for the response: parsed into a `Url` only if it sets a cookie.
        let uri = req.uri().clone();
        // A relative URI has no host to match cookies against: nothing is added.
        let target = if self.jar.may_have_cookies() {
            Target::from_uri(&uri)
        } else {
            None
        };
        match target {
            Some(target) => self.jar.add_request_cookies(req.headers_mut(), &target),
            None => mark_cookie_sensitive(req.headers_mut()),
        }
        ResponseFuture::new(self.inner.call(req), self.jar.clone(), uri)
    }
}
