//! The [`FollowRedirect`] service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::{Config, FollowRedirectLayer};
use super::policy::{Policy, Standard};
use crate::body::Body;
use crate::error::Error;
use crate::ext::NoRedirects;

/// Follows redirects safely; see the [module docs](super) for the rules.
///
/// Made by [`FollowRedirectLayer`]. Every hop is a real call of the inner service: the
/// first uses the service that `poll_ready` made ready; later hops use a clone of a copy of
/// the inner service made when this service was built, driven ready before each call
/// (after the previous 3xx response was dropped, so its connection and any concurrency
/// permit are free). A request that is not redirected so costs no clone of the inner stack.
///
/// Cloning gives a clone of the inner service, which (like every tower clone) starts not
/// ready.
#[derive(Clone)]
pub struct FollowRedirect<S, P = Standard> {
    inner: S,
    proto: Arc<S>,
    config: Config,
    policy: P,
}

impl<S: fmt::Debug, P: fmt::Debug> fmt::Debug for FollowRedirect<S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FollowRedirect")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .field("policy", &self.policy)
            .finish()
    }
}

impl<S: Clone> FollowRedirect<S> {
    /// Wraps `inner` with the defaults ([`FollowRedirectLayer::new`]).
    pub fn new(inner: S) -> Self {
        FollowRedirect::with_layer(inner, &FollowRedirectLayer::new())
    }

    /// The default layer, same as [`FollowRedirectLayer::new`].
    pub fn layer() -> FollowRedirectLayer {
        FollowRedirectLayer::new()
    }
}

impl<S: Clone, P: Clone> FollowRedirect<S, P> {
    /// Wraps `inner` with `layer`'s configuration and policy.
    pub fn with_layer(inner: S, layer: &FollowRedirectLayer<P>) -> Self {
        FollowRedirect {
            proto: Arc::new(inner.clone()),
            inner,
            config: layer.config.clone(),
            policy: layer.policy.clone(),
        }
    }
}

impl<S, P> FollowRedirect<S, P> {
    /// The most redirects followed for one request.
    pub fn max_redirects(&self) -> u32 {
        self.config.max_redirects
    }

    /// The policy.
    pub fn policy(&self) -> &P {
        &self.policy
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

impl<S, P, ResBody> Service<Request<Body>> for FollowRedirect<S, P>
where
    S: Service<Request<Body>, Response = Response<ResBody>> + Clone,
    S::Error: Into<Error>,
    P: Policy + Clone,
{
    type Response = Response<ResBody>;
    type Error = Error;
    type Future = ResponseFuture<S, P>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        if req.extensions().get::<NoRedirects>().is_some() {
            // Opt-out: no hop will follow, so no clone of the inner service is needed.
            let uri = req.uri().clone();
            return ResponseFuture::passthrough(self.inner.call(req), uri);
        }
        ResponseFuture::new(
            &mut self.inner,
            self.proto.clone(),
            req,
            self.config.clone(),
            self.policy.clone(),
        )
    }
}
