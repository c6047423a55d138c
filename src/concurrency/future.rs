//! The response future of [`ConcurrencyLimit`](super::ConcurrencyLimit).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tokio::sync::Semaphore;
use tower_service::Service;

use super::acquire::{Permit, PollPermit};
use super::body::{ConcurrencyLimitBody, Permits};
use crate::error::Error;

pin_project! {
    /// The response future of [`ConcurrencyLimit`](super::ConcurrencyLimit).
    ///
    /// Either the inner future, holding the request's permits until the response arrives
    /// (they then move into the [`ConcurrencyLimitBody`]; an error releases them at once),
    /// or a request waiting for its host's slot (boxed, so the common case stays small):
    /// it holds the ready inner service and the request, and calls the service once it has
    /// the host permit and then a global permit.
    pub struct ResponseFuture<F, S, Req> {
        #[pin]
        state: State<F, S, Req>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, S, Req> {
        Called {
            #[pin]
            fut: F,
            permits: Option<Permits>,
        },
        Waiting {
            wait: Box<Waiting<S, Req>>,
        },
        Failed {
            error: Option<Error>,
        },
    }
}

struct Waiting<S, Req> {
    service: Option<S>,
    req: Option<Request<Req>>,
    host: PollPermit,
    host_permit: Option<Permit>,
    global: Option<PollPermit>,
    /// The wait, for the request's `WaitTime` (ends when dropped).
    _guard: Option<crate::ext::WaitGuard>,
}

impl<F, S, Req> ResponseFuture<F, S, Req> {
    pub(super) fn called(fut: F, permits: Permits) -> Self {
        ResponseFuture {
            state: State::Called {
                fut,
                permits: Some(permits),
            },
        }
    }

    pub(super) fn failed(error: Error) -> Self {
        ResponseFuture {
            state: State::Failed { error: Some(error) },
        }
    }

    /// A request that waits for its host's slot, then a global slot, then calls `service`
    /// (which was polled ready). It joins the host's queue now, in call order.
    pub(super) fn deferred(
        service: S,
        req: Request<Req>,
        mut host: PollPermit,
        global: Option<Arc<Semaphore>>,
    ) -> Self {
        let host_permit = match host.enqueue() {
            Some(Ok(permit)) => Some(permit),
            Some(Err(e)) => return ResponseFuture::failed(e),
            None => None,
        };
        let guard = crate::ext::WaitGuard::start(req.extensions());
        ResponseFuture {
            state: State::Waiting {
                wait: Box::new(Waiting {
                    service: Some(service),
                    _guard: guard,
                    req: Some(req),
                    host,
                    host_permit,
                    global: global.map(PollPermit::new),
                }),
            },
        }
    }
}

impl<F, S, Req> fmt::Debug for ResponseFuture<F, S, Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Called { .. } => "called",
            State::Waiting { wait } if wait.host_permit.is_none() => "waiting for host",
            State::Waiting { .. } => "waiting for global",
            State::Failed { .. } => "failed",
        };
        f.debug_struct("concurrency::ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<F, S, Req, B, E> Future for ResponseFuture<F, S, Req>
where
    S: Service<Request<Req>, Future = F>,
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<Error>,
    B: http_body::Body,
{
    type Output = Result<Response<ConcurrencyLimitBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.state.as_mut().project() {
                StateProj::Called { fut, permits } => {
                    return match fut.poll(cx) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(Ok(resp)) => {
                            let permits = permits.take().unwrap_or_default();
                            Poll::Ready(Ok(resp.map(|b| ConcurrencyLimitBody::new(b, permits))))
                        }
                        Poll::Ready(Err(e)) => {
                            // Release before anything else sees the error.
                            *permits = None;
                            Poll::Ready(Err(e.into()))
                        }
                    };
                }
                StateProj::Failed { error } => {
                    return Poll::Ready(Err(error.take().unwrap_or_else(|| {
                        Error::new(crate::ErrorKind::Config)
                            .with_message("concurrency::ResponseFuture polled after completion")
                    })));
                }
                StateProj::Waiting { wait } => {
                    if wait.host_permit.is_none() {
                        match wait.host.poll_acquire(cx) {
                            Poll::Pending => return Poll::Pending,
                            Poll::Ready(Ok(p)) => wait.host_permit = Some(p),
                            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        }
                    }
                    let global = match &mut wait.global {
                        None => None,
                        Some(g) => match g.poll_acquire(cx) {
                            Poll::Pending => return Poll::Pending,
                            Poll::Ready(Ok(p)) => Some(p),
                            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        },
                    };
                    let permits = Permits {
                        _global: global,
                        _host: wait.host_permit.take(),
                    };
                    match (wait.service.take(), wait.req.take()) {
                        (Some(mut service), Some(req)) => State::Called {
                            fut: service.call(req),
                            permits: Some(permits),
                        },
                        _ => State::Failed {
                            error: Some(Error::new(crate::ErrorKind::Config).with_message(
                                "concurrency::ResponseFuture polled after completion",
                            )),
                        },
                    }
                }
            };
            this.state.set(next);
        }
    }
}
