//! The [`Retry`] service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::future::{ResponseFuture, Template};
use super::layer::RetryLayer;
use super::policy::{Config, NotRetried};
use crate::body::Body;
use crate::error::Error;
use crate::ext::{Deadline, MaxRetries};

/// Retries failed requests with backoff; see the [module docs](super).
///
/// Made by [`RetryLayer`]. Each call takes the inner service that `poll_ready` made ready;
/// later attempts of the same request drive a clone of the inner service ready again only
/// when they start, so a request sleeping on its backoff holds no readiness (no
/// concurrency slot, no rate token).
pub struct Retry<S> {
    inner: S,
    /// A clone of the inner service made once, at construction: later attempts clone it.
    /// The first attempt, the common case, then costs no clone of the inner stack.
    proto: Arc<S>,
    config: Arc<Config>,
}

impl<S: Clone> Retry<S> {
    /// Wraps `inner` with the default configuration ([`RetryLayer::new`]).
    pub fn new(inner: S) -> Self {
        Retry::with_layer(inner, &RetryLayer::new())
    }

    /// Wraps `inner` with `layer`'s configuration.
    pub fn with_layer(inner: S, layer: &RetryLayer) -> Self {
        Retry {
            proto: Arc::new(inner.clone()),
            inner,
            config: layer.config.clone(),
        }
    }
}

impl<S> Retry<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    ///
    /// Later attempts of a request are sent through clones of a copy of the inner service
    /// made when this `Retry` was built, not through this one.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone> Clone for Retry<S> {
    /// A clone of the inner service; like every tower clone, it starts not ready.
    fn clone(&self) -> Self {
        Retry {
            inner: self.inner.clone(),
            proto: self.proto.clone(),
            config: self.config.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Retry<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}

impl<S, ResB> Service<Request<Body>> for Retry<S>
where
    S: Service<Request<Body>, Response = Response<ResB>> + Clone,
    S::Error: Into<Error>,
{
    type Response = Response<ResB>;
    type Error = Error;
    type Future = ResponseFuture<S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<Body>) -> ResponseFuture<S> {
        let config = &*self.config;

        // The total deadline (the layer's, or one the request brings, whichever is
        // earlier) travels down with every attempt, so the timeout layer ends the body
        // at the same instant and the proxy layer never waits beyond it.
        let asked = req.extensions().get::<Deadline>().copied();
        let deadline = match (config.deadline.map(Deadline::after), asked) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(d) = deadline {
            if asked != Some(d) {
                req.extensions_mut().insert(d);
            }
        }

        if let Some(budget) = &config.budget {
            budget.deposit();
        }
        let max_retries = req
            .extensions()
            .get::<MaxRetries>()
            .map_or(config.max_retries, |m| m.0);

        // Keep a copy for replays only when a retry is possible at all.
        let blocked;
        let mut template = None;
        let req = if max_retries == 0 {
            blocked = Some(NotRetried::RetriesExhausted);
            req
        } else {
            // A non-idempotent request keeps a copy too: it is sent again after an error
            // showing the server never processed it (`is_unprocessed_error`), and only then.
            let method_blocked =
                (!config.method_allowed(req.method())).then_some(NotRetried::NotIdempotent);
            match req.body().try_clone() {
                None => {
                    blocked = method_blocked.or(Some(NotRetried::BodyNotReplayable));
                    req
                }
                Some(body) => {
                    blocked = method_blocked;
                    let (parts, first) = req.into_parts();
                    template = Some(Template::new(&parts, body));
                    Request::from_parts(parts, first)
                }
            }
        };

        // The deadline's error names the URL; the template has it otherwise.
        let uri = (deadline.is_some() && template.is_none()).then(|| Box::new(req.uri().clone()));
        // `poll_ready` made `inner` ready for this call; later attempts use clones of
        // `proto`, each driven ready before its call.
        let fut = self.inner.call(req);
        ResponseFuture::new(
            fut,
            self.proto.clone(),
            self.config.clone(),
            template,
            uri,
            blocked,
            max_retries,
            deadline,
        )
    }
}
