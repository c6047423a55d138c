//! The [`ProxyRotation`] service.

use std::fmt;
use std::task::{Context, Poll};

use http::Request;
use tokio::time::Instant;
use tower_service::Service;

use super::ext::{ProxyOverride, SelectedProxy};
use super::future::{ResponseFuture, Waiting};
use super::layer::{ProxyRotationLayer, WhenAllDown};
use super::picker::PickContext;
use super::pool::{PoolInner, Recovery};
use crate::error::{Error, ErrorKind};

/// Routes each attempt through a proxy of a pool; made by [`ProxyRotationLayer`].
#[derive(Clone)]
pub struct ProxyRotation<S> {
    pub(crate) inner: S,
    pub(crate) config: ProxyRotationLayer,
}

impl<S> ProxyRotation<S> {
    /// Wraps `inner`, with the settings of `layer`.
    pub fn new(inner: S, layer: ProxyRotationLayer) -> Self {
        ProxyRotation {
            inner,
            config: layer,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for ProxyRotation<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyRotation")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}

/// Picks an available proxy for `req`'s URI and records it on the request.
pub(crate) fn pick<B>(config: &ProxyRotationLayer, req: &mut Request<B>) -> Option<usize> {
    let pool: &PoolInner = &config.pool.inner;
    let now = pool.now();
    let i = {
        let cx = PickContext::new(req.uri(), pool, &now);
        config.picker.pick(&cx)?
    };
    if !pool.is_available(i, &now) {
        return None;
    }
    req.extensions_mut()
        .insert(SelectedProxy(pool.entries[i].proxy.clone()));
    Some(i)
}

/// The error for "no proxy now".
pub(crate) fn no_proxy_error(uri: &http::Uri, why: &str) -> Error {
    Error::new(ErrorKind::NoProxyAvailable)
        .with_message(why.to_owned())
        .with_url(uri)
}

/// What to do when the picker found no proxy: wait until `Some(instant)`, or fail.
pub(crate) fn plan_wait(
    config: &ProxyRotationLayer,
    uri: &http::Uri,
    started: Instant,
) -> Result<Instant, Error> {
    let pool = &config.pool.inner;
    let n = pool.entries.len();
    match pool.recovery() {
        Recovery::Never => Err(no_proxy_error(uri, "every proxy was removed from the pool")),
        // A proxy recovered since the pick (or a custom picker declined): pick again now.
        Recovery::Now => Ok(Instant::now()),
        Recovery::At(at) => {
            let wait = at.saturating_duration_since(Instant::now());
            let over = match config.max_wait {
                Some(max) => at.saturating_duration_since(started) > max,
                None => false,
            };
            if over {
                Err(no_proxy_error(
                    uri,
                    &format!(
                        "all {n} proxies are cooling down; the first recovers in {wait:?}, \
                         beyond the maximum wait of {:?}",
                        config.max_wait.unwrap_or_default()
                    ),
                ))
            } else {
                Ok(at)
            }
        }
    }
}

impl<S, B> Service<Request<B>> for ProxyRotation<S>
where
    S: Service<Request<B>> + Clone,
    S::Error: Into<Error>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if req.extensions().get::<ProxyOverride>().is_some() {
            return ResponseFuture::called(self.inner.call(req), None);
        }
        if let Some(i) = pick(&self.config, &mut req) {
            let track = Some((self.config.pool.clone(), i));
            return ResponseFuture::called(self.inner.call(req), track);
        }
        // Every proxy is cooling down (or the picker declined).
        let config = &self.config;
        match config.when_all_down {
            WhenAllDown::GoDirect => {
                tracing::debug!("no proxy available; sending directly as configured");
                ResponseFuture::called(self.inner.call(req), None)
            }
            WhenAllDown::Fail => {
                let pool = &config.pool.inner;
                let why = match pool.recovery() {
                    Recovery::At(at) => format!(
                        "all {} proxies are cooling down; the first recovers in {:?}",
                        pool.entries.len(),
                        at.saturating_duration_since(Instant::now())
                    ),
                    Recovery::Never => "every proxy was removed from the pool".to_owned(),
                    Recovery::Now => "the proxy picker chose none of the available proxies".into(),
                };
                ResponseFuture::failed(no_proxy_error(req.uri(), &why))
            }
            WhenAllDown::Wait => {
                let started = Instant::now();
                match plan_wait(config, req.uri(), started) {
                    Err(e) => ResponseFuture::failed(e),
                    Ok(at) => {
                        tracing::debug!(
                            wait = ?at.saturating_duration_since(started),
                            "every proxy is cooling down; waiting for the first to recover"
                        );
                        // The ready inner service stays here for the next call; the waiting
                        // request drives a clone ready only once a proxy is available, so it
                        // holds no slot or token of the layers below while it waits.
                        ResponseFuture::waiting(Waiting::new(
                            self.inner.clone(),
                            req,
                            config.clone(),
                            started,
                            at,
                        ))
                    }
                }
            }
        }
    }
}
