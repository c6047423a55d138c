//! The response future of [`ProxyRotation`](super::ProxyRotation).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Request;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use super::error::is_proxy_failure;
use super::layer::ProxyRotationLayer;
use super::service::{pick, plan_wait};
use super::{Proxy, ProxyPool};
use crate::error::Error;

/// At most this many sleeps while waiting for a proxy (each ends when one should recover).
const MAX_WAIT_ROUNDS: u32 = 64;

pin_project! {
    /// The response future of [`ProxyRotation`](super::ProxyRotation).
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S::Future, Box<Waiting<S, B>>>,
        // The pool and index of the proxy this attempt uses, to record its outcome.
        track: Option<(ProxyPool, usize)>,
        // The per-request proxy this attempt uses (not from the pool).
        via: Option<Proxy>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, W> {
        Called { #[pin] fut: F },
        Waiting { wait: W },
        Failed { error: Option<Error> },
    }
}

/// A request waiting for a proxy to recover.
pub(crate) struct Waiting<S, B> {
    svc: S,
    req: Option<Request<B>>,
    config: ProxyRotationLayer,
    started: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    index: Option<usize>,
    rounds: u32,
    /// The wait, for the request's `WaitTime` (ends when dropped).
    guard: Option<crate::ext::WaitGuard>,
}

impl<S, B> Waiting<S, B> {
    pub(crate) fn new(
        svc: S,
        req: Request<B>,
        config: ProxyRotationLayer,
        started: Instant,
        until: Instant,
    ) -> Self {
        Waiting {
            svc,
            guard: crate::ext::WaitGuard::start(req.extensions()),
            req: Some(req),
            config,
            started,
            sleep: Some(Box::pin(tokio::time::sleep_until(until))),
            index: None,
            rounds: 1,
        }
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn called(
        fut: S::Future,
        track: Option<(ProxyPool, usize)>,
        via: Option<Proxy>,
    ) -> Self {
        ResponseFuture {
            state: State::Called { fut },
            track,
            via,
        }
    }

    pub(crate) fn waiting(wait: Waiting<S, B>) -> Self {
        ResponseFuture {
            state: State::Waiting {
                wait: Box::new(wait),
            },
            track: None,
            via: None,
        }
    }

    pub(crate) fn failed(error: Error) -> Self {
        ResponseFuture {
            state: State::Failed { error: Some(error) },
            track: None,
            via: None,
        }
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("proxy::ResponseFuture")
    }
}

impl<S, B> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
    S::Error: Into<Error>,
{
    type Output = Result<S::Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Called { fut } => {
                    let result = ready!(fut.poll(cx)).map_err(Into::into);
                    let track = this.track.take();
                    let via = this.via.take();
                    return Poll::Ready(match result {
                        Ok(resp) => {
                            if let Some((pool, i)) = track {
                                pool.inner.record_success(i);
                            }
                            Ok(resp)
                        }
                        Err(mut err) => {
                            let mut proxy = via;
                            if let Some((pool, i)) = &track {
                                if is_proxy_failure(&err) {
                                    pool.inner.record_failure_of(*i, &err);
                                }
                                proxy = pool.inner.entries.get(*i).map(|e| e.proxy.clone());
                            }
                            // Every error of an attempt through a proxy names it, whichever
                            // layer below made it (a hop's timeout, a redirect, the body).
                            if let Some(p) = proxy {
                                if err.proxy().is_none() {
                                    err = err.with_proxy(p);
                                }
                            }
                            Err(err)
                        }
                    });
                }
                StateProj::Failed { error } => {
                    return Poll::Ready(Err(error.take().expect("polled after completion")));
                }
                StateProj::Waiting { wait } => {
                    if let Some(sleep) = wait.sleep.as_mut() {
                        ready!(sleep.as_mut().poll(cx));
                        wait.sleep = None;
                        let req = wait.req.as_mut().expect("request kept while waiting");
                        match pick(&wait.config, req) {
                            Some(i) => {
                                wait.guard = None;
                                wait.index = Some(i);
                            }
                            None => {
                                let next = plan_wait(&wait.config, req, wait.started);
                                match next {
                                    Ok(at) if wait.rounds < MAX_WAIT_ROUNDS => {
                                        wait.rounds += 1;
                                        wait.sleep = Some(Box::pin(tokio::time::sleep_until(at)));
                                        continue;
                                    }
                                    Ok(_) => {
                                        let err = super::service::no_proxy_error(
                                            &wait.config.pool.inner,
                                            req.uri(),
                                            "no proxy became available after waiting",
                                        );
                                        this.state.set(State::Failed { error: Some(err) });
                                        continue;
                                    }
                                    Err(err) => {
                                        this.state.set(State::Failed { error: Some(err) });
                                        continue;
                                    }
                                }
                            }
                        }
                    }
                    // A proxy is chosen: now take the inner service's readiness.
                    if let Err(e) = ready!(wait.svc.poll_ready(cx)) {
                        let err: Error = e.into();
                        this.state.set(State::Failed { error: Some(err) });
                        continue;
                    }
                    let req = wait.req.take().expect("request kept while waiting");
                    let fut = wait.svc.call(req);
                    *this.track = wait.index.map(|i| (wait.config.pool.clone(), i));
                    this.state.set(State::Called { fut });
                }
            }
        }
    }
}
