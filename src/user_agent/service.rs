//! The [`UserAgent`] service.

use std::task::{Context, Poll};

use http::header::USER_AGENT;
use http::Request;
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::UserAgentLayer;
use crate::error::Error;

/// Sets the `User-Agent` header of each request it passes on (unless the request has one
/// and the layer does not override). See the [module docs](super).
#[derive(Clone, Debug)]
pub struct UserAgent<S> {
    inner: S,
    config: UserAgentLayer,
}

impl<S> UserAgent<S> {
    /// Wraps `inner`, sending [`DEFAULT_USER_AGENT`](super::DEFAULT_USER_AGENT) on requests
    /// that have no user agent.
    pub fn new(inner: S) -> Self {
        UserAgent::from_layer(inner, UserAgentLayer::new())
    }

    pub(super) fn from_layer(inner: S, config: UserAgentLayer) -> Self {
        UserAgent { inner, config }
    }

    /// The configuration this service applies.
    pub fn config(&self) -> &UserAgentLayer {
        &self.config
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

impl<S, ReqBody> Service<Request<ReqBody>> for UserAgent<S>
where
    S: Service<Request<ReqBody>>,
    S::Error: Into<Error>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        if self.config.override_existing || !req.headers().contains_key(USER_AGENT) {
            let value = self.config.choice.pick(req.uri());
            req.headers_mut().insert(USER_AGENT, value);
        }
        ResponseFuture::new(self.inner.call(req))
    }
}
