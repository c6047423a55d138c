//! The [`ConcurrencyLimit`] service.

use std::fmt;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::acquire::{Permit, PollPermit};
use super::body::{ConcurrencyLimitBody, Permits};
use super::future::ResponseFuture;
use super::layer::ConcurrencyLimitLayer;
use crate::error::{Error, ErrorKind};

/// Limits the requests in flight, in total and per host, counting each until its response
/// body is finished or dropped. See the [module docs](super).
///
/// - The global limit is backpressure: [`poll_ready`](Service::poll_ready) is `Pending`
///   until a permit is free, and a ready service holds that permit until it is called or
///   dropped.
/// - The per-host limit is checked in [`call`](Service::call): when the host has a free
///   slot the inner service is called at once; otherwise the request gives its global
///   permit back and waits in the response future, first come, first served for that
///   host, then takes a global permit again (waiting in line for it if needed) and calls
///   the ready inner service it took along (so `S: Clone`: the service keeps a fresh clone,
///   the ready one goes with the request).
///
/// A clone starts un-ready (no permit) and shares the limits of the original.
pub struct ConcurrencyLimit<S> {
    inner: S,
    layer: ConcurrencyLimitLayer,
    /// Acquires global permits; `None` without a global limit.
    global: Option<PollPermit>,
    /// The permit reserved by `poll_ready`.
    permit: Option<Permit>,
    /// When `poll_ready` began waiting for a global slot (only when it had to wait).
    waiting_since: Option<tokio::time::Instant>,
}

impl<S> ConcurrencyLimit<S> {
    /// Wraps `inner` with the limits of `layer` (shared with every other service of that
    /// layer).
    pub fn new(inner: S, layer: ConcurrencyLimitLayer) -> Self {
        let global = layer
            .shared
            .global
            .as_ref()
            .map(|s| PollPermit::new(Arc::clone(s)));
        ConcurrencyLimit {
            inner,
            layer,
            global,
            permit: None,
            waiting_since: None,
        }
    }

    /// The layer, to read [`in_flight`](ConcurrencyLimitLayer::in_flight) and the limits.
    pub fn layer(&self) -> &ConcurrencyLimitLayer {
        &self.layer
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service (a reserved permit is released).
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone> Clone for ConcurrencyLimit<S> {
    /// A clone shares the limits but holds no permit: it must be polled ready itself.
    fn clone(&self) -> Self {
        ConcurrencyLimit {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
            global: self.global.clone(),
            permit: None,
            waiting_since: None,
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for ConcurrencyLimit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimit")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .field("ready", &self.permit.is_some())
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ConcurrencyLimit<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    S::Error: Into<Error>,
    ResBody: http_body::Body,
{
    type Response = Response<ConcurrencyLimitBody<ResBody>>;
    type Error = Error;
    type Future = ResponseFuture<S::Future, S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.permit.is_none() {
            if let Some(global) = &mut self.global {
                let acquired = global.poll_acquire(cx);
                if acquired.is_pending() && self.waiting_since.is_none() {
                    self.waiting_since = Some(tokio::time::Instant::now());
                }
                self.permit = Some(ready!(acquired)?);
            }
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if let Some(since) = self.waiting_since.take() {
            crate::ext::record_wait(req.extensions(), since);
        }
        let global = self.permit.take();
        if self.global.is_some() && global.is_none() {
            return ResponseFuture::failed(
                Error::new(ErrorKind::Config)
                    .with_message("ConcurrencyLimit called without poll_ready returning Ready")
                    .with_url(req.uri()),
            );
        }
        let Some(hosts) = &self.layer.shared.hosts else {
            let permits = Permits {
                _global: global,
                _host: None,
            };
            return ResponseFuture::called(self.inner.call(req), permits);
        };
        let host = hosts.semaphore(req.uri());
        match Arc::clone(&host).try_acquire_owned() {
            Ok(host) => {
                let permits = Permits {
                    _global: global,
                    _host: Some(host),
                };
                ResponseFuture::called(self.inner.call(req), permits)
            }
            Err(_) => {
                // Wait for the host without holding a global slot, so a busy host does not
                // keep requests to other hosts out.
                drop(global);
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                let global = self.layer.shared.global.as_ref().map(Arc::clone);
                ResponseFuture::deferred(ready, req, PollPermit::new(host), global)
            }
        }
    }
}
