//! The [`ProxyRotation`] service.

use std::fmt;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Request;
use tokio::time::Instant;
use tower_service::Service;

use super::ext::{ProxyOverride, SelectedProxy};
use super::future::{ResponseFuture, Waiting};
use super::layer::{ProxyRotationLayer, WhenAllDown};
use super::picker::PickContext;
use super::pool::{PoolInner, Recovery};
use crate::error::{Error, ErrorKind};
use crate::ext::{Deadline, RequestTimeout};

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

/// The error for "no proxy now": `why`, then the pool's last proxy failure (also its
/// source, so the user sees why the proxies are down).
pub(crate) fn no_proxy_error(pool: &PoolInner, uri: &http::Uri, why: &str) -> Error {
    let mut err = Error::new(ErrorKind::NoProxyAvailable).with_url(uri);
    match pool.last_failure() {
        Some(last) => {
            err = err
                .with_message(format!("{why}; the last failure: {last}"))
                .with_source(last);
        }
        None => err = err.with_message(why.to_owned()),
    }
    err
}

/// "all 3 proxies are cooling down; the first recovers in 58 s"
fn cooling_down(n: usize, wait: Duration) -> String {
    let wait = secs(wait);
    if n == 1 {
        format!("the only proxy is cooling down; it recovers in {wait}")
    } else {
        format!("all {n} proxies are cooling down; the first recovers in {wait}")
    }
}

/// A duration for people: "60 s", "2.5 s", "40 ms".
fn secs(d: Duration) -> String {
    if d < Duration::from_millis(950) {
        return format!("{} ms", d.as_millis());
    }
    let tenths = (d.as_millis() + 50) / 100;
    if tenths.is_multiple_of(10) {
        format!("{} s", tenths / 10)
    } else {
        format!("{}.{} s", tenths / 10, tenths % 10)
    }
}

/// What bounds a wait for a proxy.
enum Bound {
    MaxWait(Duration),
    Timeout(Duration),
    Deadline,
}

/// The earliest instant a request may wait until for a proxy, and what sets it: the
/// layer's `max_wait`, the request's [`RequestTimeout`] (both from `started`) and its
/// [`Deadline`]. `None`: unbounded.
fn wait_limit<B>(
    config: &ProxyRotationLayer,
    req: &Request<B>,
    started: Instant,
) -> Option<(Instant, Bound)> {
    let mut best: Option<(Instant, Bound)> = None;
    let mut consider = |at: Option<Instant>, bound: Bound| {
        if let Some(at) = at {
            if best.as_ref().is_none_or(|(b, _)| at < *b) {
                best = Some((at, bound));
            }
        }
    };
    if let Some(max) = config.max_wait {
        consider(started.checked_add(max), Bound::MaxWait(max));
    }
    if let Some(RequestTimeout(t)) = req.extensions().get::<RequestTimeout>() {
        consider(started.checked_add(*t), Bound::Timeout(*t));
    }
    if let Some(Deadline(d)) = req.extensions().get::<Deadline>() {
        consider(Some(*d), Bound::Deadline);
    }
    best
}

/// What to do when the picker found no proxy: wait until the instant returned (the first
/// recovery), or fail at once when that is beyond the request's bound (see [`wait_limit`]).
pub(crate) fn plan_wait<B>(
    config: &ProxyRotationLayer,
    req: &Request<B>,
    started: Instant,
) -> Result<Instant, Error> {
    let pool = &config.pool.inner;
    let n = pool.entries.len();
    match pool.recovery() {
        Recovery::Never => Err(no_proxy_error(
            pool,
            req.uri(),
            "every proxy was removed from the pool",
        )),
        // A proxy recovered since the pick (or a custom picker declined): pick again now.
        Recovery::Now => Ok(Instant::now()),
        Recovery::At(at) => {
            let Some((limit, bound)) = wait_limit(config, req, started) else {
                return Ok(at);
            };
            if at <= limit {
                return Ok(at);
            }
            let now = Instant::now();
            let beyond = match bound {
                Bound::MaxWait(max) => format!("the maximum wait of {}", secs(max)),
                Bound::Timeout(t) => format!("the request timeout of {}", secs(t)),
                Bound::Deadline if limit <= now => {
                    "the request's deadline, which has passed".to_owned()
                }
                Bound::Deadline => format!(
                    "the request's deadline (in {})",
                    secs(limit.saturating_duration_since(now))
                ),
            };
            let why = format!(
                "{}, beyond {beyond}",
                cooling_down(n, at.saturating_duration_since(now))
            );
            Err(no_proxy_error(pool, req.uri(), &why))
        }
    }
}

/// Logs the start of a wait until `at`: at WARN for the first request waiting for that
/// recovery, at DEBUG for the others.
fn log_wait(pool: &PoolInner, at: Instant, wait: Duration) {
    if pool.first_to_warn(at) {
        tracing::warn!(
            proxies = pool.entries.len(),
            "all proxies down, waiting {}",
            secs(wait)
        );
    } else {
        tracing::debug!(
            "all proxies down, waiting {} (one more request)",
            secs(wait)
        );
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
        if let Some(ProxyOverride(choice)) = req.extensions().get::<ProxyOverride>() {
            // Errors through a per-request proxy name it too.
            let via = choice.clone();
            return ResponseFuture::called(self.inner.call(req), None, via);
        }
        if let Some(i) = pick(&self.config, &mut req) {
            let track = Some((self.config.pool.clone(), i));
            return ResponseFuture::called(self.inner.call(req), track, None);
        }
        // Every proxy is cooling down (or the picker declined).
        let config = &self.config;
        match config.when_all_down {
            WhenAllDown::GoDirect => {
                tracing::debug!("no proxy available; sending directly as configured");
                ResponseFuture::called(self.inner.call(req), None, None)
            }
            WhenAllDown::Fail => {
                let pool = &config.pool.inner;
                let why = match pool.recovery() {
                    Recovery::At(at) => cooling_down(
                        pool.entries.len(),
                        at.saturating_duration_since(Instant::now()),
                    ),
                    Recovery::Never => "every proxy was removed from the pool".to_owned(),
                    Recovery::Now => "the proxy picker chose none of the available proxies".into(),
                };
                ResponseFuture::failed(no_proxy_error(pool, req.uri(), &why))
            }
            WhenAllDown::Wait => {
                let started = Instant::now();
                match plan_wait(config, &req, started) {
                    Err(e) => ResponseFuture::failed(e),
                    Ok(at) => {
                        log_wait(
                            &config.pool.inner,
                            at,
                            at.saturating_duration_since(started),
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
