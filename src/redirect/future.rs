//! The response future of [`FollowRedirect`](super::FollowRedirect), and the rules that turn
//! a 3xx response into the next hop.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::header::{
    CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HOST, LOCATION, TRANSFER_ENCODING,
};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use pin_project_lite::pin_project;
use tower_service::Service;
use url::Url;

use super::layer::Config;
use super::policy::{Action, Attempt, Policy};
use super::RedirectCount;
use crate::body::Body;
use crate::error::{Error, ErrorKind};
use crate::ext::{ExtensionsSnapshot, FinalUrl};

pin_project! {
    /// The response future of [`FollowRedirect`](super::FollowRedirect).
    ///
    /// It drives one hop at a time: the inner call, then, for a redirect that is followed,
    /// the inner service ready again and the next call. The final response carries
    /// [`FinalUrl`], and [`RedirectCount`] when a redirect was followed.
    pub struct ResponseFuture<S, P>
    where
        S: Service<Request<Body>>,
    {
        #[pin]
        state: State<S::Future>,
        uri: Uri,
        hops: u32,
        // Boxed: it is large and only read when a 3xx arrives.
        chain: Option<Box<Chain<S, P>>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        // Waiting for the response of the current hop.
        Calling { #[pin] future: F },
        // Waiting for the inner service to be ready for the next hop.
        Ready { request: Option<Request<Body>> },
        Done,
    }
}

/// What a chain of hops remembers between them.
struct Chain<S, P> {
    /// Later hops clone `proto` into `service`.
    proto: Arc<S>,
    service: Option<S>,
    policy: P,
    config: Config,
    method: Method,
    version: Version,
    /// The headers of the next hop; credentials removed for good once the chain crossed
    /// origin.
    headers: HeaderMap,
    extensions: ExtensionsSnapshot,
    /// A replayable copy of the body; `None` when the body is a stream.
    body: Option<Body>,
    /// The current URL, parsed at the first redirect.
    url: Option<Url>,
    crossed: bool,
}

impl<S, P> ResponseFuture<S, P>
where
    S: Service<Request<Body>>,
{
    /// The first hop through `ready` (which `poll_ready` made ready); later hops clone
    /// `proto`.
    pub(super) fn new(
        ready: &mut S,
        proto: Arc<S>,
        req: Request<Body>,
        config: Config,
        policy: P,
    ) -> Self {
        let body = req.body().try_clone().or_else(|| {
            (http_body::Body::size_hint(req.body()).exact() == Some(0)).then(Body::empty)
        });
        let uri = req.uri().clone();
        let method = req.method().clone();
        let version = req.version();
        let headers = req.headers().clone();
        let extensions = ExtensionsSnapshot::of(req.extensions());
        let future = ready.call(req);
        ResponseFuture {
            state: State::Calling { future },
            uri,
            hops: 0,
            chain: Some(Box::new(Chain {
                proto,
                service: None,
                policy,
                config,
                method,
                version,
                headers,
                extensions,
                body,
                url: None,
                crossed: false,
            })),
        }
    }

    pub(super) fn passthrough(future: S::Future, uri: Uri) -> Self {
        ResponseFuture {
            state: State::Calling { future },
            uri,
            hops: 0,
            chain: None,
        }
    }
}

impl<S, P> fmt::Debug for ResponseFuture<S, P>
where
    S: Service<Request<Body>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("redirect::ResponseFuture")
            .field("hops", &self.hops)
            .finish_non_exhaustive()
    }
}

impl<S, P, ResBody> Future for ResponseFuture<S, P>
where
    S: Service<Request<Body>, Response = Response<ResBody>> + Clone,
    S::Error: Into<Error>,
    P: Policy,
{
    type Output = Result<Response<ResBody>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let result = ready!(future.poll(cx));
                    let mut res = match result {
                        Ok(res) => res,
                        Err(e) => {
                            this.state.set(State::Done);
                            let err =
                                add_url(e.into(), this.uri, this.chain.as_ref().map(|c| &c.config));
                            return Poll::Ready(Err(err));
                        }
                    };
                    let next = match this.chain.as_mut() {
                        None => None,
                        Some(chain) => match chain.next_hop(&res, this.uri, *this.hops) {
                            Ok(next) => next,
                            Err(e) => {
                                this.state.set(State::Done);
                                return Poll::Ready(Err(e));
                            }
                        },
                    };
                    match next {
                        None => {
                            this.state.set(State::Done);
                            let ext = res.extensions_mut();
                            if *this.hops > 0 {
                                ext.insert(FinalUrl(std::mem::take(this.uri)));
                                ext.insert(RedirectCount(*this.hops));
                            } else if ext.get::<FinalUrl>().is_none() {
                                // The backend stamps it already; only fill it in when missing.
                                ext.insert(FinalUrl(std::mem::take(this.uri)));
                            }
                            return Poll::Ready(Ok(res));
                        }
                        Some(request) => {
                            // Unread: the connection (or concurrency permit) below is freed
                            // before the next hop asks for one.
                            drop(res);
                            *this.hops += 1;
                            *this.uri = request.uri().clone();
                            this.state.set(State::Ready {
                                request: Some(request),
                            });
                        }
                    }
                }
                StateProj::Ready { request } => {
                    let chain = this
                        .chain
                        .as_mut()
                        .expect("a chain is set when a hop is pending");
                    let service = chain.service.get_or_insert_with(|| S::clone(&chain.proto));
                    if let Err(e) = ready!(service.poll_ready(cx)) {
                        this.state.set(State::Done);
                        let err =
                            add_url(e.into(), this.uri, this.chain.as_ref().map(|c| &c.config));
                        return Poll::Ready(Err(err));
                    }
                    let request = request.take().expect("the next request is set");
                    let future = service.call(request);
                    this.state.set(State::Calling { future });
                }
                StateProj::Done => panic!("redirect::ResponseFuture polled after completion"),
            }
        }
    }
}

fn add_url(err: Error, uri: &Uri, config: Option<&Config>) -> Error {
    if err.url().is_some() {
        return err;
    }
    match config.and_then(|c| c.redactor.as_ref()) {
        Some(r) => err.with_url_redacted(uri, r),
        None => err.with_url(uri),
    }
}

fn make_error(config: &Config, kind: ErrorKind, message: String, current: &Uri) -> Error {
    let err = Error::new(kind).with_message(message);
    match &config.redactor {
        Some(r) => err.with_url_redacted(current, r),
        None => err.with_url(current),
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

impl<S, P: Policy> Chain<S, P> {
    /// The next hop for `res`, `None` to return `res` as it is, or the error that ends the
    /// chain. Nothing is changed unless a hop is returned.
    fn next_hop<B>(
        &mut self,
        res: &Response<B>,
        current: &Uri,
        hops: u32,
    ) -> Result<Option<Request<Body>>, Error> {
        let status = res.status();
        if !is_redirect(status) {
            return Ok(None);
        }
        // A 3xx without Location is not a redirect that can be followed (RFC 9110 15.4).
        let Some(location) = res.headers().get(LOCATION) else {
            return Ok(None);
        };
        let config = &self.config;
        let reject =
            |message: String| make_error(config, ErrorKind::RedirectRejected, message, current);

        let Ok(location) = std::str::from_utf8(location.as_bytes()) else {
            return Err(reject(format!(
                "the Location header of the {status} response is not valid UTF-8"
            )));
        };
        if self.url.is_none() {
            match Url::parse(&current.to_string()) {
                Ok(url) => self.url = Some(url),
                Err(e) => {
                    return Err(reject(format!(
                        "cannot resolve the Location of the {status} response: the request \
                         URL is not absolute ({e})"
                    )))
                }
            }
        }
        let base = self.url.as_ref().expect("parsed above");
        let mut next = match base.join(location) {
            Ok(url) => url,
            Err(e) => {
                return Err(reject(format!(
                    "the Location `{}` of the {status} response is not a valid URL ({e})",
                    self.config.redact(location)
                )))
            }
        };
        match next.scheme() {
            "http" | "https" => {}
            other => {
                return Err(reject(format!(
                    "refused a redirect to `{}`: only http and https targets are followed \
                     (got `{other}:`)",
                    self.config.redact(next.as_str())
                )))
            }
        }
        if next.host_str().is_none_or(str::is_empty) {
            return Err(reject(format!(
                "refused a redirect to `{}`: the target has no host",
                self.config.redact(next.as_str())
            )));
        }
        next.set_fragment(None);
        // fastreq never sends credentials from a URL it did not build itself.
        if next.password().is_some() || !next.username().is_empty() {
            let _ = next.set_password(None);
            let _ = next.set_username("");
        }
        if base.scheme() == "https" && next.scheme() == "http" && !self.config.https_downgrade {
            return Err(reject(format!(
                "refused a redirect from https to http (`{}`); allow it with \
                 FollowRedirectBuilder::https_downgrade(true)",
                self.config.redact(next.as_str())
            )));
        }
        if hops >= self.config.max_redirects {
            return Err(make_error(
                &self.config,
                ErrorKind::TooManyRedirects,
                format!(
                    "stopped after {hops} redirects, the limit (a redirect loop?); the next \
                     one pointed to `{}`",
                    self.config.redact(next.as_str())
                ),
                current,
            ));
        }
        let uri: Uri = match next.as_str().parse() {
            Ok(uri) => uri,
            Err(e) => {
                return Err(reject(format!(
                    "the redirect target `{}` is not a valid request URI ({e})",
                    self.config.redact(next.as_str())
                )))
            }
        };

        // RFC 9110 15.4: 303 becomes GET (HEAD stays HEAD); 301/302 after POST become GET
        // (what every browser does); 307/308 keep the method and the body.
        let (method, keep_body) = match status {
            StatusCode::SEE_OTHER if self.method == Method::HEAD => (Method::HEAD, false),
            StatusCode::SEE_OTHER => (Method::GET, false),
            StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND if self.method == Method::POST => {
                (Method::GET, false)
            }
            _ => (self.method.clone(), true),
        };
        let cross = !same_origin(base, &next);

        let attempt = Attempt {
            status,
            headers: res.headers(),
            previous: base,
            location: &next,
            previous_method: &self.method,
            method: &method,
            hop: hops + 1,
            cross_origin: cross,
            credentials_stripped: self.crossed || cross,
        };
        match self.policy.redirect(&attempt) {
            Ok(Action::Follow) => {}
            Ok(Action::Stop) => return Ok(None),
            Err(e) => return Err(add_url(e, current, Some(&self.config))),
        }

        let body = if keep_body {
            match self.body.as_ref().and_then(Body::try_clone) {
                Some(body) => body,
                None => {
                    return Err(make_error(
                        &self.config,
                        ErrorKind::BodyNotReplayable,
                        format!(
                            "a {status} redirect to `{}` must send the request body again, but \
                             it is a stream that cannot be replayed; use a full body to follow \
                             it, or the NoRedirects extension to get the {status} response",
                            self.config.redact(next.as_str())
                        ),
                        current,
                    ))
                }
            }
        } else {
            for name in [
                CONTENT_TYPE,
                CONTENT_LENGTH,
                CONTENT_ENCODING,
                TRANSFER_ENCODING,
            ] {
                self.headers.remove(name);
            }
            self.body = Some(Body::empty());
            Body::empty()
        };

        if cross {
            // Removed from the remembered headers, so they stay removed for every later hop,
            // also one that returns to the first origin.
            self.crossed = true;
            for name in self.config.sensitive_headers() {
                self.headers.remove(name);
            }
            self.headers.remove(HOST);
        }
        tracing::debug!(
            status = status.as_u16(),
            from = %self.config.redact(base.as_str()),
            to = %self.config.redact(next.as_str()),
            hop = hops + 1,
            cross_origin = cross,
            "following redirect"
        );
        self.method = method;
        self.url = Some(next);

        let mut request = Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = uri;
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers.clone();
        *request.extensions_mut() = self.extensions.extensions();
        Ok(Some(request))
    }
}
