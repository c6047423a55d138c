//! The response future of [`Retry`](super::Retry).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use http::header::RETRY_AFTER;
use http::{Request, Response, Uri};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use super::backoff::BackoffRng;
use super::policy::{is_unprocessed_error, mark_error, Config, NotRetried};
use super::retry_after::retry_after;
use crate::body::Body;
use crate::error::{Error, ErrorKind};
use crate::ext::{Attempts, Deadline, ExtensionsSnapshot};

/// What is needed to send the request again: its head (method, URI, version, headers and
/// every extension) and a replayable body.
pub(super) struct Template {
    /// The head, without its extensions (they are in `extensions`).
    parts: http::request::Parts,
    extensions: ExtensionsSnapshot,
    body: Body,
}

impl Template {
    /// A copy of the head `parts` and of the replayable `body`.
    pub(super) fn new(parts: &http::request::Parts, body: Body) -> Self {
        let mut head = Request::new(());
        *head.method_mut() = parts.method.clone();
        *head.uri_mut() = parts.uri.clone();
        *head.version_mut() = parts.version;
        *head.headers_mut() = parts.headers.clone();
        Template {
            parts: head.into_parts().0,
            extensions: ExtensionsSnapshot::of(&parts.extensions),
            body,
        }
    }

    fn request(&self) -> Request<Body> {
        let body = self
            .body
            .try_clone()
            .expect("a template only holds replayable bodies");
        let mut req = Request::from_parts(self.parts.clone(), body);
        *req.extensions_mut() = self.extensions.extensions();
        req
    }
}

pin_project! {
    /// The response future of [`Retry`](super::Retry).
    pub struct ResponseFuture<S>
    where
        S: Service<Request<Body>>,
    {
        #[pin]
        state: State<S::Future>,
        // Boxed: off by default, and a `Sleep` inline would grow every request's future.
        deadline: Option<Pin<Box<Sleep>>>,
        // The service later attempts clone; `svc` is that clone once a retry is due.
        proto: Arc<S>,
        // Boxed: services can be large, and only retries need one.
        svc: Option<Box<S>>,
        config: Arc<Config>,
        template: Option<Template>,
        // The request URI, kept for the deadline error when there is no template.
        uri: Option<Box<Uri>>,
        // Why this request cannot be retried, known before the first attempt.
        blocked: Option<NotRetried>,
        attempts: u32,
        max_retries: u32,
        previous: Duration,
        // Boxed, like the other fields only retries use: the future stays small.
        rng: Option<Box<BackoffRng>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Attempt { #[pin] fut: F },
        // Boxed: rare, and a `Sleep` inline would grow every request's future.
        Backoff { sleep: Pin<Box<Sleep>>, guard: Option<crate::ext::WaitGuard> },
        Ready,
        Done,
    }
}

impl<S> ResponseFuture<S>
where
    S: Service<Request<Body>>,
{
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        fut: S::Future,
        proto: Arc<S>,
        config: Arc<Config>,
        template: Option<Template>,
        uri: Option<Box<Uri>>,
        blocked: Option<NotRetried>,
        max_retries: u32,
        deadline: Option<Deadline>,
    ) -> Self {
        let deadline = deadline.map(|d| Box::pin(tokio::time::sleep_until(d.0)));
        ResponseFuture {
            state: State::Attempt { fut },
            deadline,
            proto,
            svc: None,
            config,
            template,
            uri,
            blocked,
            attempts: 1,
            max_retries,
            previous: Duration::ZERO,
            rng: None,
        }
    }
}

impl<S> fmt::Debug for ResponseFuture<S>
where
    S: Service<Request<Body>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("retry::ResponseFuture")
            .field("attempts", &self.attempts)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

/// Displays a URI with secrets redacted, formatted only if a log event is recorded.
struct Redacted<'a>(Option<&'a Uri>);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(uri) => f.write_str(&crate::error::redact_url(&uri.to_string())),
            None => f.write_str("?"),
        }
    }
}

impl<S, ResB> Future for ResponseFuture<S>
where
    S: Service<Request<Body>, Response = Response<ResB>> + Clone,
    S::Error: Into<Error>,
{
    type Output = Result<Response<ResB>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Attempt { fut } => {
                    let result = match fut.poll(cx) {
                        Poll::Ready(r) => r.map_err(Into::into),
                        Poll::Pending => {
                            return deadline_check(
                                this.deadline,
                                this.state.as_mut(),
                                cx,
                                this.config,
                                this.template
                                    .as_ref()
                                    .map(|t| &t.parts.uri)
                                    .or(this.uri.as_deref()),
                                *this.attempts,
                            );
                        }
                    };
                    let (result, retry) = this.config.classify(result);
                    if !retry {
                        this.state.set(State::Done);
                        return Poll::Ready(finish(result, None, *this.attempts));
                    }
                    let decision = decide(
                        &result,
                        this.config,
                        *this.blocked,
                        this.template.is_some(),
                        *this.attempts,
                        *this.max_retries,
                        this.previous,
                        this.rng,
                        this.deadline.as_deref(),
                    );
                    let uri = this.template.as_ref().map(|t| &t.parts.uri);
                    match decision {
                        Err(reason) => {
                            tracing::debug!(
                                url = %Redacted(uri.or(this.uri.as_deref())),
                                attempts = *this.attempts,
                                %reason,
                                "not retrying",
                            );
                            this.state.set(State::Done);
                            return Poll::Ready(finish(result, Some(reason), *this.attempts));
                        }
                        Ok(delay) => {
                            tracing::debug!(
                                url = %Redacted(uri),
                                attempt = *this.attempts,
                                ?delay,
                                outcome = %Outcome(&result),
                                "retrying after backoff",
                            );
                            // Free the connection (and any permit the body holds) before
                            // sleeping.
                            drop(result);
                            // The backoff is a wait, for the request's WaitTime.
                            let guard = this
                                .template
                                .as_ref()
                                .and_then(|t| t.extensions.wait().map(crate::ext::WaitGuard::of));
                            this.state.set(State::Backoff {
                                guard,
                                sleep: Box::pin(tokio::time::sleep(delay)),
                            });
                        }
                    }
                }
                StateProj::Backoff { sleep, .. } => {
                    if sleep.as_mut().poll(cx).is_pending() {
                        return deadline_check(
                            this.deadline,
                            this.state.as_mut(),
                            cx,
                            this.config,
                            this.template.as_ref().map(|t| &t.parts.uri),
                            *this.attempts,
                        );
                    }
                    this.state.set(State::Ready);
                }
                StateProj::Ready => match this
                    .svc
                    .get_or_insert_with(|| Box::new(S::clone(this.proto)))
                    .poll_ready(cx)
                {
                    Poll::Pending => {
                        return deadline_check(
                            this.deadline,
                            this.state.as_mut(),
                            cx,
                            this.config,
                            this.template.as_ref().map(|t| &t.parts.uri),
                            *this.attempts,
                        );
                    }
                    Poll::Ready(Err(e)) => {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(e.into().with_attempts(*this.attempts)));
                    }
                    Poll::Ready(Ok(())) => {
                        let req = this
                            .template
                            .as_ref()
                            .expect("a retry always has a template")
                            .request();
                        *this.attempts += 1;
                        let svc = this.svc.as_mut().expect("made ready above");
                        let fut = svc.call(req);
                        this.state.set(State::Attempt { fut });
                    }
                },
                StateProj::Done => panic!("retry::ResponseFuture polled after completion"),
            }
        }
    }
}

/// `Pending`, or the total deadline's `Timeout` error when it has passed (dropping the
/// attempt in flight).
fn deadline_check<F, T>(
    deadline: &mut Option<Pin<Box<Sleep>>>,
    mut state: Pin<&mut State<F>>,
    cx: &mut Context<'_>,
    config: &Config,
    uri: Option<&Uri>,
    attempts: u32,
) -> Poll<Result<T, Error>> {
    let Some(sleep) = deadline else {
        return Poll::Pending;
    };
    if sleep.as_mut().poll(cx).is_pending() {
        return Poll::Pending;
    }
    state.set(State::Done);
    let message = match config.deadline {
        Some(total) => format!("total deadline of {total:?} exceeded"),
        None => "the request's deadline passed".to_owned(),
    };
    let mut err = Error::new(ErrorKind::Timeout)
        .with_message(message)
        .with_attempts(attempts);
    if let Some(uri) = uri {
        err = err.with_url(uri);
    }
    Poll::Ready(Err(err))
}

/// The delay before the next attempt, or why there is none.
#[allow(clippy::too_many_arguments)]
fn decide<B>(
    result: &Result<Response<B>, Error>,
    config: &Config,
    blocked: Option<NotRetried>,
    replayable: bool,
    attempts: u32,
    max_retries: u32,
    previous: &mut Duration,
    rng: &mut Option<Box<BackoffRng>>,
    deadline: Option<&Sleep>,
) -> Result<Duration, NotRetried> {
    if let Some(reason) = blocked {
        // A request the server never processed is safe to send again, whatever its method.
        let unprocessed = reason == NotRetried::NotIdempotent
            && matches!(result, Err(e) if is_unprocessed_error(e));
        match (unprocessed, replayable) {
            (false, _) => return Err(reason),
            (true, false) => return Err(NotRetried::BodyNotReplayable),
            (true, true) => {}
        }
    }
    let retries_done = attempts - 1;
    if retries_done >= max_retries {
        return Err(NotRetried::RetriesExhausted);
    }
    let asked = match result {
        Ok(resp) if resp.headers().contains_key(RETRY_AFTER) => {
            retry_after(resp.headers(), SystemTime::now())
        }
        _ => None,
    };
    if asked.is_some_and(|d| d > config.max_retry_after) {
        return Err(NotRetried::RetryAfterTooLong);
    }
    let rng = rng.get_or_insert_with(|| Box::new(config.seeds.next_rng()));
    let computed = config.backoff.delay(retries_done + 1, *previous, rng);
    *previous = computed;
    // The server's Retry-After wins over the computed backoff.
    let delay = asked.unwrap_or(computed);
    if let Some(deadline) = deadline {
        let ends = Instant::now().checked_add(delay);
        if ends.is_none_or(|t| t >= deadline.deadline()) {
            return Err(NotRetried::Deadline);
        }
    }
    if let Some(budget) = &config.budget {
        if !budget.withdraw() {
            return Err(NotRetried::BudgetExhausted);
        }
    }
    Ok(delay)
}

fn finish<B>(
    result: Result<Response<B>, Error>,
    reason: Option<NotRetried>,
    attempts: u32,
) -> Result<Response<B>, Error> {
    match result {
        Ok(mut resp) => {
            // Recorded only when it says something: absent means one attempt, and the
            // extension map of a first-try response then costs no allocation.
            if attempts > 1 {
                resp.extensions_mut().insert(Attempts(attempts));
            }
            if let Some(reason) = reason {
                resp.extensions_mut().insert(reason);
            }
            Ok(resp)
        }
        Err(e) => Err(match reason {
            Some(reason) => mark_error(e, reason, attempts),
            None => e.with_attempts(attempts),
        }),
    }
}

/// Logs an attempt's outcome: the status, or the error kind.
struct Outcome<'a, B>(&'a Result<Response<B>, Error>);

impl<B> fmt::Display for Outcome<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ok(resp) => write!(f, "status {}", resp.status().as_u16()),
            Err(e) => write!(f, "{} error", e.kind()),
        }
    }
}
