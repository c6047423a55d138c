//! The preset: [`stack()`] builds a [`Client`] with every fastreq layer in the right order.
//!
//! ```text
//! Retry ─ Collect ─ DefaultHeaders ─ UserAgent ─ ProxyRotation ─ FollowRedirect ─ Cookies
//!       ─ RateLimit ─ ConcurrencyLimit ─ Timeout ─ Decompression ─ Backend
//! ```
//!
//! Outermost, the [`Client`] opens a `tracing` debug span per request (target `fastreq`,
//! method and redacted URL; its end logs the status or error and the elapsed time), so the
//! events of every layer below are grouped by request. It costs nothing when debug events
//! of `fastreq` are off.
//!
//! Retry wraps everything, so each attempt takes a fresh rate token, a fresh concurrency
//! slot, and possibly another proxy and user agent; backoff sleeps hold neither a slot nor a
//! token. Each redirect hop passes cookies, the rate limit and the concurrency limit again.
//! [`Collect`], right inside the retry layer, reads the bodies of
//! buffered requests inside the attempt, so a body that fails half way is retried too.
//! See the crate's `README.md` and `design.md` for the reasoning.
//!
//! Without user layers ([`StackBuilder::layer_at`]) the preset is one statically typed
//! chain: no boxed service nor boxed future per layer and request (a few futures are boxed
//! where that saves moving large ones). With user layers, every layer is a [`BoxService`]
//! so that they fit in between. `BENCHMARKS.md` has the figures.
//!
//! # Defaults
//!
//! | setting | default | setter |
//! |---|---|---|
//! | concurrency (requests in flight, bodies included) | 64 | [`concurrency`](StackBuilder::concurrency) |
//! | per-host concurrency | off | [`per_host_concurrency`](StackBuilder::per_host_concurrency) |
//! | rate limit, burst | off, 1 | [`rate_limit`](StackBuilder::rate_limit), [`burst`](StackBuilder::burst) |
//! | per-host rate limit | off | [`per_host_rate_limit`](StackBuilder::per_host_rate_limit) |
//! | retries | 3 (4 attempts), idempotent methods only (any method the server never processed: [`is_unprocessed_error`](crate::retry::is_unprocessed_error)) | [`retries`](StackBuilder::retries), [`retry_non_idempotent`](StackBuilder::retry_non_idempotent) |
//! | backoff | 100 ms × 2ⁿ, cap 30 s, full jitter | [`backoff`](StackBuilder::backoff), [`jitter`](StackBuilder::jitter) |
//! | `Retry-After` cap | 60 s | [`max_retry_after`](StackBuilder::max_retry_after) |
//! | timeout per hop (to headers) | 30 s | [`timeout`](StackBuilder::timeout) |
//! | body idle timeout | 30 s | [`body_idle_timeout`](StackBuilder::body_idle_timeout) |
//! | total deadline (all attempts, body included) | off | [`total_timeout`](StackBuilder::total_timeout) |
//! | connect timeout | 10 s | [`connect_timeout`](StackBuilder::connect_timeout) |
//! | proxies | none (direct) | [`proxies`](StackBuilder::proxies), [`proxy_lines`](StackBuilder::proxy_lines), [`proxy_strategy`](StackBuilder::proxy_strategy) |
//! | user agent | `fastreq/<version>` | [`user_agent`](StackBuilder::user_agent), [`random_user_agent`](StackBuilder::random_user_agent) |
//! | cookies | on (bounded jar) | [`cookies`](StackBuilder::cookies), [`cookie_jar`](StackBuilder::cookie_jar) |
//! | redirects | on, at most 10 | [`max_redirects`](StackBuilder::max_redirects), [`no_redirects`](StackBuilder::no_redirects) |
//! | decompression | on (gzip, br, zstd, deflate) | [`decompression`](StackBuilder::decompression) |
//! | HTTP versions | HTTP/1.1 + HTTP/2 by ALPN | [`http1_only`](StackBuilder::http1_only), [`http2_prior_knowledge`](StackBuilder::http2_prior_knowledge) |
//! | body cap | 64 MiB | [`body_limit`](StackBuilder::body_limit) |
//! | fan-out limit | 4 × concurrency | [`fan_out_limit`](StackBuilder::fan_out_limit) |
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use fastreq::{Body, ResponseBody};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
//! // The backend can be any service: here an in-memory one, so the example needs no network.
//! let backend = tower::service_fn(|req: http::Request<Body>| async move {
//!     let ua = req.headers()["user-agent"].to_str().unwrap().to_owned();
//!     Ok::<_, fastreq::Error>(http::Response::new(ResponseBody::from(ua)))
//! });
//! let client = fastreq::stack()
//!     .concurrency(16)
//!     .rate_limit(100.0)
//!     .retries(2)
//!     .timeout(Duration::from_secs(5))
//!     .backend(backend)
//!     .build()?;
//! let page = client.get("http://api.test/").await?;
//! assert!(page.text().starts_with("fastreq/"));
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};
use tower_service::Service;

use crate::backend::{Backend, BackendBuilder, Certificate};
use crate::body::Body;
use crate::collect::{Collect, CollectedBody};
use crate::concurrency::{ConcurrencyLimit, ConcurrencyLimitLayer};
use crate::default_headers::{DefaultHeaders, DefaultHeadersBuilder, DefaultHeadersLayer};
use crate::error::{BoxError, Error};
use crate::fan_out::{fan_out, fan_out_stream, FanOut, IntoRequest};
use crate::fetch::Fetch;
use crate::proxy::{ProxyPool, ProxyRotation, ProxyRotationLayer, Strategy, WhenAllDown};
use crate::rate_limit::{RateLimit, RateLimitHandle, RateLimitLayer};
use crate::redirect::{FollowRedirect, FollowRedirectLayer};
use crate::response::{Fetched, ResponseBody};
use crate::retry::{Jitter, Retry, RetryBuilder, RetryLayer};
use crate::timeout::{Timeout, TimeoutLayer};
use crate::user_agent::{UserAgent, UserAgentLayer};

/// The type-erased service between layers of the preset: what a user layer inserted with
/// [`StackBuilder::layer_at`] wraps.
pub type BoxService = BoxCloneSyncService<Request<Body>, Response<ResponseBody>, Error>;

/// Where [`StackBuilder::layer_at`] inserts a user layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Position {
    /// Outermost: sees each request once, before retries.
    Top,
    /// Between retry and the per-attempt layers: sees each attempt.
    PerAttempt,
    /// Just above the rate limit: sees each redirect hop, before it waits for a token.
    BeforeRateLimit,
    /// Just above the backend: sees each hop as it goes on the wire.
    AroundBackend,
}

type LayerFn = Arc<dyn Fn(BoxService) -> BoxService + Send + Sync>;

/// Starts a [`StackBuilder`] with the defaults of the [module docs](self).
pub fn stack() -> StackBuilder {
    StackBuilder::default()
}

enum UaChoice {
    Default,
    Fixed(String),
    Random,
    List(Vec<String>),
    File(PathBuf),
}

/// Configures the preset; see the [module docs](self) for defaults and order.
///
/// Setters consume and return the builder; the first invalid value is kept and returned by
/// [`build`](Self::build).
#[must_use]
pub struct StackBuilder {
    backend: BackendBuilder,
    custom_backend: Option<BoxService>,
    concurrency: usize,
    per_host_concurrency: Option<usize>,
    rate: Option<f64>,
    burst: u32,
    per_host_rate: Option<f64>,
    per_host_burst: u32,
    #[cfg(feature = "redis")]
    redis_rate: Option<(crate::rate_limit::RedisStore, String)>,
    retry: RetryBuilder,
    timeout: Option<Duration>,
    body_idle_timeout: Option<Duration>,
    user_agent: UaChoice,
    sticky_user_agent: bool,
    #[cfg(feature = "cookies")]
    cookies: Option<crate::cookies::CookieJar>,
    max_redirects: Option<u32>,
    decompression: bool,
    default_headers: DefaultHeadersBuilder,
    fan_out_limit: Option<usize>,
    proxies: Option<ProxyPool>,
    proxy_strategy: Strategy,
    when_all_proxies_down: WhenAllDown,
    layers: Vec<(Position, LayerFn)>,
    error: Option<Error>,
}

impl Default for StackBuilder {
    fn default() -> Self {
        StackBuilder {
            backend: Backend::builder(),
            custom_backend: None,
            concurrency: 64,
            per_host_concurrency: None,
            rate: None,
            burst: 1,
            per_host_rate: None,
            per_host_burst: 1,
            #[cfg(feature = "redis")]
            redis_rate: None,
            retry: RetryLayer::builder(),
            timeout: Some(Duration::from_secs(30)),
            body_idle_timeout: Some(Duration::from_secs(30)),
            user_agent: UaChoice::Default,
            sticky_user_agent: false,
            #[cfg(feature = "cookies")]
            cookies: Some(crate::cookies::CookieJar::new()),
            max_redirects: Some(crate::redirect::DEFAULT_MAX_REDIRECTS),
            decompression: cfg!(feature = "decompression"),
            default_headers: DefaultHeadersLayer::builder(),
            fan_out_limit: None,
            proxies: None,
            proxy_strategy: Strategy::RoundRobin,
            when_all_proxies_down: WhenAllDown::Wait,
            layers: Vec::new(),
            error: None,
        }
    }
}

impl fmt::Debug for StackBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackBuilder")
            .field("backend", &self.backend)
            .field("concurrency", &self.concurrency)
            .field("per_host_concurrency", &self.per_host_concurrency)
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .field("per_host_rate", &self.per_host_rate)
            .field("timeout", &self.timeout)
            .field("max_redirects", &self.max_redirects)
            .field("decompression", &self.decompression)
            .field("user_layers", &self.layers.len())
            .finish_non_exhaustive()
    }
}

impl StackBuilder {
    fn fail(mut self, err: Error) -> Self {
        if self.error.is_none() {
            self.error = Some(err);
        }
        self
    }

    fn backend_with(mut self, f: impl FnOnce(BackendBuilder) -> BackendBuilder) -> Self {
        self.backend = f(self.backend);
        self
    }

    /// Maximum requests in flight, response bodies included (default 64). Zero is an error.
    pub fn concurrency(mut self, max: usize) -> Self {
        if max == 0 {
            return self.fail(Error::config("concurrency must be at least 1 (got 0)"));
        }
        self.concurrency = max;
        self
    }

    /// Maximum requests in flight to one host (default off). Zero is an error.
    pub fn per_host_concurrency(mut self, max: usize) -> Self {
        if max == 0 {
            return self.fail(Error::config(
                "per-host concurrency must be at least 1 (got 0)",
            ));
        }
        self.per_host_concurrency = Some(max);
        self
    }

    /// Requests per second across all hosts (default off; fractions allowed).
    pub fn rate_limit(mut self, per_second: f64) -> Self {
        self.rate = Some(per_second);
        self
    }

    /// Burst of the rate limits (default 1).
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self.per_host_burst = burst;
        self
    }

    /// Requests per second to each host (default off). A `429`/`503` with `Retry-After`
    /// pauses that host's bucket.
    pub fn per_host_rate_limit(mut self, per_second: f64) -> Self {
        self.per_host_rate = Some(per_second);
        self
    }

    /// Shares the rate limits set with [`rate_limit`](Self::rate_limit),
    /// [`per_host_rate_limit`](Self::per_host_rate_limit) and [`burst`](Self::burst) with
    /// every process that uses the same `name` on the same Redis (feature `redis`; see
    /// [`rate_limit::redis`](crate::rate_limit::redis)). Without a rate limit it is a
    /// configuration error; the client then has no
    /// [`rate_limit_handle`](Client::rate_limit_handle).
    ///
    /// ```
    /// use fastreq::rate_limit::RedisStore;
    ///
    /// // Connects on the first request, not here.
    /// let store = RedisStore::new("redis://127.0.0.1:6379/")?;
    /// let client = fastreq::stack()
    ///     .rate_limit(100.0)
    ///     .per_host_rate_limit(5.0)
    ///     .redis_rate_limit(store, "crawl")
    ///     .build()?;
    /// assert!(client.rate_limit_handle().is_none());
    /// # Ok::<(), fastreq::Error>(())
    /// ```
    #[cfg(feature = "redis")]
    pub fn redis_rate_limit(mut self, store: crate::rate_limit::RedisStore, name: &str) -> Self {
        self.redis_rate = Some((store, name.to_owned()));
        self
    }

    /// Retries per request (default 3; 0 disables retrying).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retry = self.retry.max_retries(retries);
        self
    }

    /// Also retry non-idempotent methods such as `POST` (default off). Off, they are still
    /// retried after an error showing the server never processed them (a connect failure,
    /// HTTP/2 `REFUSED_STREAM`).
    pub fn retry_non_idempotent(mut self, on: bool) -> Self {
        self.retry = self.retry.retry_non_idempotent(on);
        self
    }

    /// Exponential backoff: first delay, growth factor and cap (default 100 ms, 2, 30 s).
    pub fn backoff(mut self, initial: Duration, factor: f64, max: Duration) -> Self {
        self.retry = self
            .retry
            .initial_backoff(initial)
            .backoff_factor(factor)
            .max_backoff(max);
        self
    }

    /// Jitter of the backoff (default [`Jitter::Full`]).
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.retry = self.retry.jitter(jitter);
        self
    }

    /// Longest `Retry-After` that is waited for (default 60 s); a longer one ends retrying.
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.retry = self.retry.max_retry_after(max);
        self
    }

    /// Configures the retry layer directly (status list, classifier, budget...).
    pub fn retry_with(mut self, f: impl FnOnce(RetryBuilder) -> RetryBuilder) -> Self {
        self.retry = f(self.retry);
        self
    }

    /// Timeout per hop up to the response headers (default 30 s); `None` for none.
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeout = timeout.into();
        self
    }

    /// Longest pause between two chunks of a response body (default 30 s); `None` for none.
    pub fn body_idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.body_idle_timeout = timeout.into();
        self
    }

    /// Deadline for a whole request (default none): every attempt, backoff, wait for a
    /// proxy, redirect hop and the reading of the response body, buffered or streamed,
    /// must be done within it, else the request fails with a `Timeout` error.
    ///
    /// What bounds a request end to end: without it, each hop's wait for headers is
    /// bounded by [`timeout`](Self::timeout) and each pause in a body by
    /// [`body_idle_timeout`](Self::body_idle_timeout), but a server that sends a byte
    /// every few seconds, or a chain of retries and backoffs, can take much longer. Set a
    /// total deadline for a bound on the whole (curl's `--max-time`; the CLI's
    /// `--max-time`). Time spent waiting for a rate token counts too.
    pub fn total_timeout(mut self, deadline: Duration) -> Self {
        self.retry = self.retry.deadline(deadline);
        self
    }

    /// TCP connect timeout (default 10 s).
    pub fn connect_timeout(self, timeout: Duration) -> Self {
        self.backend_with(|b| b.connect_timeout(timeout))
    }

    /// A fixed `User-Agent` (default `fastreq/<version>`).
    pub fn user_agent(mut self, user_agent: &str) -> Self {
        self.user_agent = UaChoice::Fixed(user_agent.to_owned());
        self
    }

    /// Rotate over the built-in list of current browser user agents, at random.
    pub fn random_user_agent(mut self) -> Self {
        self.user_agent = UaChoice::Random;
        self
    }

    /// Rotate at random over these user agents.
    pub fn user_agents<I, S>(mut self, agents: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.user_agent =
            UaChoice::List(agents.into_iter().map(|s| s.as_ref().to_owned()).collect());
        self
    }

    /// Rotate at random over the user agents of a file (one per line, `#` comments).
    pub fn user_agents_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.user_agent = UaChoice::File(path.into());
        self
    }

    /// Keep one user agent per host when rotating.
    pub fn sticky_user_agent(mut self, on: bool) -> Self {
        self.sticky_user_agent = on;
        self
    }

    /// Sends every attempt through a proxy of `pool` (default: direct). See
    /// [`proxy`](crate::proxy) for the formats, health and cooldowns.
    pub fn proxies(mut self, pool: ProxyPool) -> Self {
        self.proxies = Some(pool);
        self
    }

    /// Parses proxy lines (`scheme://user:pass@host:port`, `host:port`,
    /// `host:port:user:pass`; blank and `#` lines skipped) into the pool. A bad line is an
    /// error naming it, password redacted.
    pub fn proxy_lines(self, lines: &str) -> Self {
        match ProxyPool::from_lines(lines) {
            Ok(pool) => self.proxies(pool),
            Err(e) => self.fail(e),
        }
    }

    /// How a proxy is picked per attempt (default round robin).
    pub fn proxy_strategy(mut self, strategy: Strategy) -> Self {
        self.proxy_strategy = strategy;
        self
    }

    /// What happens when every proxy is cooling down (default: wait for the first to
    /// recover; never direct unless [`WhenAllDown::GoDirect`] is chosen).
    pub fn when_all_proxies_down(mut self, when: WhenAllDown) -> Self {
        self.when_all_proxies_down = when;
        self
    }

    /// Turns the cookie jar on (default) or off.
    #[cfg(feature = "cookies")]
    pub fn cookies(mut self, on: bool) -> Self {
        self.cookies = on.then(crate::cookies::CookieJar::new);
        self
    }

    /// Uses this jar (shared with whoever else holds it).
    #[cfg(feature = "cookies")]
    pub fn cookie_jar(mut self, jar: crate::cookies::CookieJar) -> Self {
        self.cookies = Some(jar);
        self
    }

    /// Follow at most this many redirects (default 10).
    pub fn max_redirects(mut self, max: u32) -> Self {
        if max == 0 {
            return self.no_redirects();
        }
        self.max_redirects = Some(max);
        self
    }

    /// Do not follow redirects: 3xx responses come back as they are.
    pub fn no_redirects(mut self) -> Self {
        self.max_redirects = None;
        self
    }

    /// Turns response decompression on (default with feature `decompression`) or off.
    pub fn decompression(mut self, on: bool) -> Self {
        if on && !cfg!(feature = "decompression") {
            return self.fail(Error::config(
                "decompression needs the `decompression` feature of fastreq",
            ));
        }
        self.decompression = on;
        self
    }

    /// HTTP/1.1 only.
    pub fn http1_only(self) -> Self {
        self.backend_with(BackendBuilder::http1_only)
    }

    /// HTTP/2 only (h2c prior knowledge for `http://`).
    pub fn http2_prior_knowledge(self) -> Self {
        self.backend_with(BackendBuilder::http2_prior_knowledge)
    }

    /// HTTP/3 (QUIC) for `https` URLs, with prior knowledge that the servers speak it: see
    /// [`BackendBuilder::http3_prior_knowledge`] (feature `http3`).
    pub fn http3(self) -> Self {
        self.backend_with(BackendBuilder::http3_prior_knowledge)
    }

    /// **Dangerous**: accept any TLS certificate. See
    /// [`BackendBuilder::danger_accept_invalid_certs`].
    pub fn danger_accept_invalid_certs(self, accept: bool) -> Self {
        self.backend_with(|b| b.danger_accept_invalid_certs(accept))
    }

    /// Trust an extra root certificate.
    pub fn add_root_certificate(self, cert: Certificate) -> Self {
        self.backend_with(|b| b.add_root_certificate(cert))
    }

    /// How many servers' TLS sessions to remember for resumption (default 1,024). See
    /// [`BackendBuilder::tls_session_cache`].
    pub fn tls_session_cache(self, hosts: usize) -> Self {
        self.backend_with(|b| b.tls_session_cache(hosts))
    }

    /// Resolve `name` to `addr` instead of asking DNS.
    pub fn resolve(self, name: &str, addr: SocketAddr) -> Self {
        self.backend_with(|b| b.resolve(name, addr))
    }

    /// Cap on buffered response bodies, decoded (default 64 MiB).
    pub fn body_limit(self, bytes: usize) -> Self {
        self.backend_with(|b| b.body_limit(bytes))
    }

    /// Configures the default backend directly.
    pub fn backend_config(self, f: impl FnOnce(BackendBuilder) -> BackendBuilder) -> Self {
        self.backend_with(f)
    }

    /// A header added to every request that lacks it. An invalid one is an error.
    pub fn default_header(mut self, name: &str, value: &str) -> Self {
        self.default_headers = self.default_headers.header(name, value);
        self
    }

    /// Bound on requests inside the stack for [`Client::fan_out`] and
    /// [`Client::get_all`] (default 4 × concurrency).
    pub fn fan_out_limit(mut self, limit: usize) -> Self {
        if limit == 0 {
            return self.fail(Error::config("fan-out limit must be at least 1 (got 0)"));
        }
        self.fan_out_limit = Some(limit);
        self
    }

    /// Replaces the HTTP backend with any service: a mock, an in-process axum `Router`,
    /// another client. Backend settings of this builder are then ignored.
    pub fn backend<S, B>(mut self, backend: S) -> Self
    where
        S: Service<Request<Body>, Response = Response<B>> + Clone + Send + Sync + 'static,
        S::Error: Into<Error>,
        S::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.custom_backend = Some(boxed(
            backend
                .map_err(Into::into)
                .map_response(|r: Response<B>| r.map(ResponseBody::new)),
        ));
        self
    }

    /// Inserts a user layer at `position`. Several layers at one position apply in the
    /// order given, the first outermost.
    ///
    /// The layer wraps a [`BoxService`]; its service may answer with any
    /// [`http_body::Body`] (mapped into a [`ResponseBody`], as [`backend`](Self::backend)
    /// does) and any error that converts into an [`Error`], so tower-http's layers fit as
    /// they are.
    ///
    /// # Examples
    ///
    /// tower-http's `TraceLayer` and `SetRequestHeaderLayer` in the preset:
    ///
    /// ```
    /// use fastreq::stack::Position;
    /// use http::header::{HeaderName, HeaderValue};
    /// use tower_http::set_header::SetRequestHeaderLayer;
    /// use tower_http::trace::TraceLayer;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
    /// let backend = tower::service_fn(|req: http::Request<fastreq::Body>| async move {
    ///     let tag = req.headers()["x-tenant"].to_str().unwrap().to_owned();
    ///     Ok::<_, fastreq::Error>(http::Response::new(fastreq::ResponseBody::from(tag)))
    /// });
    /// let client = fastreq::stack()
    ///     .layer_at(Position::Top, TraceLayer::new_for_http())
    ///     .layer_at(
    ///         Position::PerAttempt,
    ///         SetRequestHeaderLayer::overriding(
    ///             HeaderName::from_static("x-tenant"),
    ///             HeaderValue::from_static("acme"),
    ///         ),
    ///     )
    ///     .backend(backend)
    ///     .build()?;
    /// let fetched = client.get("http://api.test/").await?;
    /// assert_eq!(fetched.body(), b"acme");
    /// # Ok(()) }
    /// ```
    pub fn layer_at<L, B>(mut self, position: Position, layer: L) -> Self
    where
        L: Layer<BoxService> + Send + Sync + 'static,
        L::Service: Service<Request<Body>, Response = Response<B>> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request<Body>>>::Error: Into<Error>,
        <L::Service as Service<Request<Body>>>::Future: Send + 'static,
        B: http_body::Body + Send + 'static,
        B::Data: Into<Bytes>,
        B::Error: Into<BoxError>,
    {
        self.layers.push((
            position,
            Arc::new(move |svc| {
                boxed(
                    layer
                        .layer(svc)
                        .map_err(Into::into)
                        .map_response(|r: Response<B>| r.map(ResponseBody::new)),
                )
            }),
        ));
        self
    }

    fn apply_user_layers(&self, position: Position, mut svc: BoxService) -> BoxService {
        // The first given is outermost, so apply in reverse.
        for (_, f) in self.layers.iter().rev().filter(|(p, _)| *p == position) {
            svc = f(svc);
        }
        svc
    }

    /// Builds a [`blocking::Client`](crate::blocking::Client) for synchronous code: the
    /// same preset on a runtime of its own. Inside a Tokio runtime this is a
    /// [`Config`](crate::ErrorKind::Config) error; use [`build`](Self::build) there.
    ///
    /// ```
    /// let client = fastreq::stack().concurrency(32).retries(2).build_blocking().unwrap();
    /// let results = client.get_all(["not a url"]).unwrap();
    /// assert!(results[0].as_ref().unwrap_err().is_invalid_request());
    /// ```
    pub fn build_blocking(self) -> Result<crate::blocking::Client, Error> {
        crate::blocking::Client::build(self)
    }

    /// Builds the client, or returns the first configuration error.
    pub fn build(mut self) -> Result<Client, Error> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }

        // Bottom up: backend, decompression, timeout, concurrency, rate limit, cookies,
        // redirects, proxy, user agent, default headers, retry.
        let backend = match self.custom_backend.take() {
            Some(b) => AnyBackend::Custom(b),
            None => AnyBackend::Default(std::mem::take(&mut self.backend).build()?),
        };
        let timeout = TimeoutLayer::builder()
            .headers(self.timeout)
            .body_idle(self.body_idle_timeout)
            .build()?;
        let mut concurrency = ConcurrencyLimitLayer::builder().max(self.concurrency);
        if let Some(n) = self.per_host_concurrency {
            concurrency = concurrency.per_host(n);
        }
        let concurrency = concurrency.build()?;

        let mut rate = None;
        if self.rate.is_some() || self.per_host_rate.is_some() {
            let mut b = RateLimitLayer::builder();
            if let Some(r) = self.rate {
                b = b.rate(r).burst(self.burst);
            }
            if let Some(r) = self.per_host_rate {
                b = b.per_host_rate(r).per_host_burst(self.per_host_burst);
            }
            rate = Some(b.build()?);
        }
        #[cfg(feature = "redis")]
        let redis_rate = match self.redis_rate.take() {
            Some((store, name)) => {
                // The quotas were validated by the in-process builder above.
                let Some(local) = rate.take() else {
                    return Err(Error::config(
                        "`redis_rate_limit` needs `rate_limit`, `per_host_rate_limit` or both",
                    ));
                };
                let global = match local.quota() {
                    Some(q) => Some(store.limiter(&name, q)?),
                    None => None,
                };
                let per_host = match local.per_host_quota() {
                    Some(q) => Some(store.host_limiters(&name, q)?),
                    None => None,
                };
                Some(RateLimitLayer::from_limiters(global, per_host))
            }
            None => None,
        };
        let rate_handle = rate.as_ref().map(RateLimitLayer::handle);

        #[cfg(feature = "cookies")]
        let jar = self.cookies.clone();

        let redirect = match self.max_redirects {
            Some(max) => Some(FollowRedirectLayer::builder().max_redirects(max).build()?),
            None => None,
        };
        let proxy = self.proxies.take().map(|pool| {
            let layer = ProxyRotationLayer::new(pool)
                .strategy(self.proxy_strategy)
                .when_all_down(self.when_all_proxies_down);
            // A wait for a cooled-down proxy never outlasts the per-hop timeout (nor the
            // total deadline, which the layer reads from the request).
            match self.timeout {
                Some(t) => layer.max_wait(t),
                None => layer,
            }
        });
        let ua = match std::mem::replace(&mut self.user_agent, UaChoice::Default) {
            UaChoice::Default => UserAgentLayer::new(),
            UaChoice::Fixed(s) => UserAgentLayer::fixed(&s)?,
            UaChoice::Random => {
                let b = UserAgentLayer::builder().builtin().random();
                if self.sticky_user_agent {
                    b.sticky_per_host()
                } else {
                    b
                }
                .build()?
            }
            UaChoice::List(list) => {
                let b = UserAgentLayer::builder().agents(list).random();
                if self.sticky_user_agent {
                    b.sticky_per_host()
                } else {
                    b
                }
                .build()?
            }
            UaChoice::File(path) => {
                let b = UserAgentLayer::builder().agents_from_file(path).random();
                if self.sticky_user_agent {
                    b.sticky_per_host()
                } else {
                    b
                }
                .build()?
            }
        };
        let headers = std::mem::take(&mut self.default_headers).build()?;
        let headers = (!headers.headers().is_empty()).then_some(headers);
        let retry = std::mem::replace(&mut self.retry, RetryLayer::builder()).build()?;

        let layers = Layers {
            timeout,
            concurrency: concurrency.clone(),
            rate,
            #[cfg(feature = "redis")]
            redis_rate,
            #[cfg(feature = "cookies")]
            cookies: jar.clone().map(crate::cookies::CookieLayer::new),
            redirect,
            proxy,
            ua,
            headers,
            retry,
        };
        // The default shape (no user layer; decompression as the feature says) is one
        // statically typed chain: no boxed future nor boxed clone per layer and request.
        let svc = if self.layers.is_empty() && self.decompression == cfg!(feature = "decompression")
        {
            match backend {
                AnyBackend::Default(b) => ClientService::Default(layers.chain(b)),
                AnyBackend::Custom(b) => ClientService::Custom(layers.chain(b)),
            }
        } else {
            ClientService::Boxed(self.boxed_stack(backend, layers))
        };

        Ok(Client {
            svc,
            shared: Arc::new(ClientShared {
                fan_out_limit: self.fan_out_limit.unwrap_or(4 * self.concurrency),
                concurrency,
                rate: rate_handle,
                #[cfg(feature = "cookies")]
                jar,
            }),
        })
    }

    /// The general stack: every layer boxed, so user layers fit in between.
    fn boxed_stack(&self, backend: AnyBackend, layers: Layers) -> BoxService {
        let mut svc = match backend {
            AnyBackend::Custom(b) => b,
            AnyBackend::Default(b) => boxed(b),
        };
        #[cfg(feature = "decompression")]
        if self.decompression {
            let layer = crate::decompression::DecompressionLayer::new();
            svc = boxed(layer.layer(svc).map_response(|r| r.map(ResponseBody::new)));
        }
        svc = self.apply_user_layers(Position::AroundBackend, svc);
        svc = boxed(
            layers
                .concurrency
                .layer(layers.timeout.layer(svc))
                .map_response(|r| r.map(ResponseBody::new)),
        );
        if let Some(layer) = layers.rate {
            svc = boxed(layer.layer(svc));
        }
        svc = self.apply_user_layers(Position::BeforeRateLimit, svc);
        #[cfg(feature = "cookies")]
        if let Some(layer) = layers.cookies {
            svc = boxed(layer.layer(svc));
        }
        if let Some(layer) = layers.redirect {
            svc = boxed(layer.layer(svc));
        }
        // Per attempt: proxy, user agent, default headers.
        if let Some(layer) = layers.proxy {
            svc = boxed(layer.layer(svc));
        }
        svc = boxed(layers.ua.layer(svc));
        if let Some(layer) = layers.headers {
            svc = boxed(layer.layer(svc));
        }
        svc = self.apply_user_layers(Position::PerAttempt, svc);
        // Buffered requests read their body here, inside the retry layer (see `collect`).
        svc = boxed(Collect::new(svc).map_response(|r| {
            r.map(|b| match b.into_collected() {
                Ok(bytes) => ResponseBody::from(bytes),
                Err(streaming) => streaming,
            })
        }));
        svc = boxed(layers.retry.layer(svc));
        self.apply_user_layers(Position::Top, svc)
    }
}

// Lives only while the client is built.
#[allow(clippy::large_enum_variant)]
enum AnyBackend {
    Default(Backend),
    Custom(BoxService),
}

/// The configured layers of the preset, before they are stacked.
struct Layers {
    timeout: TimeoutLayer,
    concurrency: ConcurrencyLimitLayer,
    rate: Option<RateLimitLayer>,
    #[cfg(feature = "redis")]
    redis_rate: Option<RedisRateLayer>,
    #[cfg(feature = "cookies")]
    cookies: Option<crate::cookies::CookieLayer>,
    redirect: Option<FollowRedirectLayer>,
    proxy: Option<ProxyRotationLayer>,
    ua: UserAgentLayer,
    headers: Option<DefaultHeadersLayer>,
    retry: RetryLayer,
}

impl Layers {
    fn chain<S: Clone>(self, backend: S) -> Chain<S> {
        #[cfg(feature = "decompression")]
        let svc = crate::decompression::DecompressionLayer::new().layer(backend);
        #[cfg(not(feature = "decompression"))]
        let svc = backend;
        let svc = self.concurrency.layer(self.timeout.layer(svc));
        #[cfg(feature = "redis")]
        let svc = Either::from_layer(self.redis_rate.map(boxed_fut), svc);
        let svc = Either::from_layer(self.rate.map(boxed_fut), svc);
        #[cfg(feature = "cookies")]
        let svc = Either::from_layer(self.cookies, svc);
        let svc = Either::from_layer(self.redirect, svc);
        let svc = Either::from_layer(self.proxy.map(boxed_fut), svc);
        let svc = self.ua.layer(svc);
        let svc = Either::from_layer(self.headers, svc);
        self.retry.layer(Collect::new(BoxFut(svc)))
    }
}

/// A layer whose services box their futures.
#[derive(Clone)]
struct BoxFutLayer<L>(L);

fn boxed_fut<L>(layer: L) -> BoxFutLayer<L> {
    BoxFutLayer(layer)
}

impl<L: Layer<S>, S> Layer<S> for BoxFutLayer<L> {
    type Service = BoxFut<L::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        BoxFut(self.0.layer(inner))
    }
}

#[cfg(feature = "decompression")]
type Decompressed<S> = crate::decompression::Decompression<S>;
#[cfg(not(feature = "decompression"))]
type Decompressed<S> = S;
type Lower<S> = ConcurrencyLimit<Timeout<Decompressed<S>>>;
// Optional layers that are off by default box their (large) futures when on, so that they
// do not make every request's future larger when off.
#[cfg(feature = "redis")]
type RedisRateLayer =
    RateLimitLayer<crate::rate_limit::RedisLimiter, crate::rate_limit::RedisHostLimiters>;
#[cfg(feature = "redis")]
type SharedLimited<S> = Either<
    BoxFut<
        RateLimit<Lower<S>, crate::rate_limit::RedisLimiter, crate::rate_limit::RedisHostLimiters>,
    >,
    Lower<S>,
>;
#[cfg(not(feature = "redis"))]
type SharedLimited<S> = Lower<S>;
type Limited<S> = Either<BoxFut<RateLimit<SharedLimited<S>>>, SharedLimited<S>>;
#[cfg(feature = "cookies")]
type WithCookies<S> = Either<crate::cookies::Cookies<Limited<S>>, Limited<S>>;
#[cfg(not(feature = "cookies"))]
type WithCookies<S> = Limited<S>;
// Boxed below retries (`Chain`): it keeps the inner future across polls and replaces it
// per attempt, so an inline future would be moved at every level (measured: without the
// box, more instructions per request and a 1 KiB client future). Below redirects there
// is no box: since responses and futures were made small, it cost more than it saved.
type Redirected<S> = Either<FollowRedirect<WithCookies<S>>, WithCookies<S>>;
type Proxied<S> = Either<BoxFut<ProxyRotation<Redirected<S>>>, Redirected<S>>;
type Agent<S> = UserAgent<Proxied<S>>;
type WithHeaders<S> = Either<DefaultHeaders<Agent<S>>, Agent<S>>;
/// The preset without user layers, statically typed over its backend.
type Chain<S> = Retry<Collect<BoxFut<WithHeaders<S>>>>;
type ChainFuture<S> = <Chain<S> as Service<Request<Body>>>::Future;

/// Boxes the future of `S` (a typed box: one allocation, no vtable, no boxed service
/// clone), so that the layers above move a pointer instead of a large inline future.
#[derive(Clone)]
struct BoxFut<S>(S);

impl<S, Req> Service<Req> for BoxFut<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        Box::pin(self.0.call(req))
    }
}

/// An optional layer: the layered service, or the inner one unchanged.
#[derive(Clone)]
enum Either<A, B> {
    Layered(A),
    Plain(B),
}

impl<A, B> Either<A, B> {
    fn from_layer<L: Layer<B, Service = A>>(layer: Option<L>, inner: B) -> Self {
        match layer {
            Some(l) => Either::Layered(l.layer(inner)),
            None => Either::Plain(inner),
        }
    }
}

impl<A, B, Req> Service<Req> for Either<A, B>
where
    A: Service<Req, Error = Error>,
    B: Service<Req, Response = A::Response, Error = Error>,
{
    type Response = A::Response;
    type Error = Error;
    type Future = EitherFuture<A::Future, B::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match self {
            Either::Layered(s) => s.poll_ready(cx),
            Either::Plain(s) => s.poll_ready(cx),
        }
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self {
            Either::Layered(s) => EitherFuture::Layered { fut: s.call(req) },
            Either::Plain(s) => EitherFuture::Plain { fut: s.call(req) },
        }
    }
}

pin_project! {
    #[project = EitherProj]
    enum EitherFuture<A, B> {
        Layered { #[pin] fut: A },
        Plain { #[pin] fut: B },
    }
}

impl<A, B, T> Future for EitherFuture<A, B>
where
    A: Future<Output = T>,
    B: Future<Output = T>,
{
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.project() {
            EitherProj::Layered { fut } => fut.poll(cx),
            EitherProj::Plain { fut } => fut.poll(cx),
        }
    }
}

// Inline on purpose: boxing the typed chain would cost an allocation per client clone.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum ClientService {
    Default(Chain<Backend>),
    Custom(Chain<BoxService>),
    Boxed(BoxService),
}

pin_project! {
    /// The response future of [`Client`].
    pub struct ResponseFuture {
        #[pin]
        inner: FutureInner,
        // Only when `fastreq` debug events are enabled: the request's span and start.
        trace: Option<Box<Traced>>,
    }
}

/// The span of one request through the client (target `fastreq`, level debug): every event
/// of the layers below (retries, redirects, proxies, rate limit) is inside it, and its end
/// is logged with the status or the error and the elapsed time.
struct Traced {
    span: tracing::Span,
    started: std::time::Instant,
}

impl Traced {
    fn start(req: &Request<Body>) -> Option<Box<Traced>> {
        if !tracing::enabled!(target: "fastreq", tracing::Level::DEBUG) {
            return None;
        }
        let span = tracing::debug_span!(
            target: "fastreq",
            "request",
            method = %req.method(),
            url = %crate::redact_url(&req.uri().to_string()),
        );
        Some(Box::new(Traced {
            span,
            started: std::time::Instant::now(),
        }))
    }

    fn finish(&self, result: &Result<Response<ResponseBody>, Error>) {
        // Rounded to the microsecond: no float noise (`6.507645999999999`) in the logs.
        let elapsed_ms = (self.started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
        match result {
            Ok(resp) => tracing::debug!(
                target: "fastreq",
                status = resp.status().as_u16(),
                attempts = crate::ResponseExt::attempts(resp),
                elapsed_ms,
                "response"
            ),
            Err(e) => tracing::debug!(
                target: "fastreq",
                kind = e.kind().as_str(),
                error = %e,
                elapsed_ms,
                "request failed"
            ),
        }
    }
}

pin_project! {
    #[project = FutureProj]
    enum FutureInner {
        Default { #[pin] fut: ChainFuture<Backend> },
        Custom { #[pin] fut: ChainFuture<BoxService> },
        Boxed { #[pin] fut: <BoxService as Service<Request<Body>>>::Future },
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.trace.as_ref().map(|t| t.span.enter());
        let out = match this.inner.project() {
            FutureProj::Default { fut } => fut
                .poll(cx)
                .map(|r| r.map(|res| res.map(CollectedBody::into_response_body))),
            FutureProj::Custom { fut } => fut
                .poll(cx)
                .map(|r| r.map(|res| res.map(CollectedBody::into_response_body))),
            FutureProj::Boxed { fut } => fut.poll(cx),
        };
        if let (Poll::Ready(result), Some(trace)) = (&out, this.trace.as_ref()) {
            trace.finish(result);
        }
        out
    }
}

fn boxed<S>(svc: S) -> BoxService
where
    S: Service<Request<Body>, Response = Response<ResponseBody>, Error = Error>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    BoxCloneSyncService::new(svc)
}

/// A configured HTTP client: the preset stack as one cheap-to-clone service.
///
/// Clones share the limits, the cookie jar and the connection pools. It implements
/// `Service<http::Request<Body>>` for use inside other tower stacks, and has helpers for
/// the common paths. Built by [`stack()`].
#[derive(Clone)]
pub struct Client {
    svc: ClientService,
    shared: Arc<ClientShared>,
}

struct ClientShared {
    fan_out_limit: usize,
    concurrency: ConcurrencyLimitLayer,
    rate: Option<RateLimitHandle>,
    #[cfg(feature = "cookies")]
    jar: Option<crate::cookies::CookieJar>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("fan_out_limit", &self.shared.fan_out_limit)
            .field("in_flight", &self.shared.concurrency.in_flight())
            .finish_non_exhaustive()
    }
}

impl Default for Client {
    fn default() -> Self {
        stack()
            .build()
            .expect("the default stack configuration is valid")
    }
}

impl Client {
    /// A client with the default preset.
    pub fn new() -> Client {
        Client::default()
    }

    /// Sends a request; the response body streams (read it with
    /// [`ResponseExt`](crate::ResponseExt)).
    pub async fn send(&self, req: Request<Body>) -> Result<Response<ResponseBody>, Error> {
        self.clone().oneshot(req).await
    }

    /// Sends a request and buffers the response.
    pub async fn fetch(&self, req: Request<Body>) -> Result<Fetched, Error> {
        crate::fetch::fetch(self.clone(), req).await
    }

    /// GETs `url` and buffers the response.
    pub async fn get(&self, url: impl AsRef<str>) -> Result<Fetched, Error> {
        self.fetch(crate::get(url).build()?).await
    }

    /// Builds `req` and sends it, buffered: `client.request(fastreq::post(url).json(&v))`.
    pub async fn request(&self, req: crate::RequestBuilder) -> Result<Fetched, Error> {
        self.fetch(req.build()?).await
    }

    /// Fans requests out through this client, buffering each response into a [`Fetched`];
    /// the limit is the client's fan-out limit. See [`fan_out`](crate::fan_out()).
    pub fn fan_out<I>(
        &self,
        requests: I,
    ) -> FanOut<Fetch<Client>, futures_util::stream::Iter<I::IntoIter>, Request<Body>>
    where
        I: IntoIterator,
        I::Item: IntoRequest<Request<Body>, Error>,
    {
        fan_out(Fetch::new(self.clone()), requests).limit(self.shared.fan_out_limit)
    }

    /// Like [`fan_out`](Self::fan_out) for a stream of requests.
    pub fn fan_out_stream<St>(&self, requests: St) -> FanOut<Fetch<Client>, St, Request<Body>>
    where
        St: futures_core::Stream,
        St::Item: IntoRequest<Request<Body>, Error>,
    {
        fan_out_stream(Fetch::new(self.clone()), requests).limit(self.shared.fan_out_limit)
    }

    /// GETs every URL, buffered, in input order (duplicates kept).
    pub async fn get_all<I>(&self, urls: I) -> Vec<Result<Fetched, Error>>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        crate::fetch::get_all_with(self.clone(), urls, self.shared.fan_out_limit).await
    }

    /// GETs every URL and parses each body as JSON into `T`: one result per URL, in input
    /// order (duplicates kept). Each body is parsed as soon as it arrives and then dropped,
    /// so only the parsed values are kept.
    ///
    /// The body is parsed whatever the status; a body that is not `T` is a
    /// [`Decode`](crate::ErrorKind::Decode) error naming the URL and the status.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
    /// #[derive(serde::Deserialize)]
    /// struct Item { id: u32 }
    ///
    /// let backend = tower::service_fn(|req: http::Request<fastreq::Body>| async move {
    ///     let id = req.uri().path().trim_start_matches("/items/").to_owned();
    ///     let body = format!(r#"{{"id":{id}}}"#);
    ///     Ok::<_, fastreq::Error>(http::Response::new(fastreq::ResponseBody::from(body)))
    /// });
    /// let client = fastreq::stack().backend(backend).build()?;
    /// let urls = (1..=3).map(|i| format!("http://api.test/items/{i}"));
    /// let items = client.get_all_json::<Item, _>(urls).await;
    /// assert_eq!(items.iter().map(|r| r.as_ref().unwrap().id).collect::<Vec<_>>(), [1, 2, 3]);
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "json")]
    pub async fn get_all_json<T, I>(&self, urls: I) -> Vec<Result<T, Error>>
    where
        T: serde::de::DeserializeOwned,
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        use futures_util::StreamExt;
        let urls = urls.into_iter();
        let mut results: Vec<Option<Result<T, Error>>> = Vec::with_capacity(urls.size_hint().0);
        let mut outcomes = self.fan_out(urls.map(|u| crate::get(u).build()));
        while let Some(o) = outcomes.next().await {
            if results.len() <= o.index {
                results.resize_with(o.index + 1, || None);
            }
            results[o.index] = Some(o.result.and_then(|f| {
                f.json::<T>().map_err(|e| {
                    if f.status().is_success() {
                        e
                    } else {
                        let message = format!(
                            "status {}: {}",
                            f.status().as_u16(),
                            e.message().unwrap_or("invalid JSON body")
                        );
                        e.with_message(message)
                    }
                })
            }));
        }
        results
            .into_iter()
            .map(|r| r.expect("fan_out yields exactly one outcome per input"))
            .collect()
    }

    /// The bound on requests inside the stack used by the fan-out helpers.
    pub fn fan_out_limit(&self) -> usize {
        self.shared.fan_out_limit
    }

    /// Requests in flight now (bodies included).
    pub fn in_flight(&self) -> usize {
        self.shared.concurrency.in_flight()
    }

    /// The handle to change the rate limits at run time, when a rate limit is set.
    pub fn rate_limit_handle(&self) -> Option<&RateLimitHandle> {
        self.shared.rate.as_ref()
    }

    /// The cookie jar, when cookies are on.
    #[cfg(feature = "cookies")]
    pub fn cookie_jar(&self) -> Option<&crate::cookies::CookieJar> {
        self.shared.jar.as_ref()
    }
}

impl Service<Request<Body>> for Client {
    type Response = Response<ResponseBody>;
    type Error = Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match &mut self.svc {
            ClientService::Default(s) => s.poll_ready(cx),
            ClientService::Custom(s) => s.poll_ready(cx),
            ClientService::Boxed(s) => s.poll_ready(cx),
        }
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let trace = Traced::start(&req);
        let _entered = trace.as_ref().map(|t| t.span.enter());
        let inner = match &mut self.svc {
            ClientService::Default(s) => FutureInner::Default { fut: s.call(req) },
            ClientService::Custom(s) => FutureInner::Custom { fut: s.call(req) },
            ClientService::Boxed(s) => FutureInner::Boxed { fut: s.call(req) },
        };
        drop(_entered);
        ResponseFuture { inner, trace }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> impl Service<
        Request<Body>,
        Response = Response<ResponseBody>,
        Error = Error,
        Future = std::future::Ready<Result<Response<ResponseBody>, Error>>,
    > + Clone
           + Send
           + Sync
           + 'static {
        tower::service_fn(|_req: Request<Body>| {
            std::future::ready(Ok(Response::new(ResponseBody::from("ok"))))
        })
    }

    #[tokio::test]
    async fn default_shape_takes_the_typed_chain_and_user_layers_the_boxed_path() {
        let typed = stack().backend(backend()).build().unwrap();
        assert!(matches!(typed.svc, ClientService::Custom(_)));
        let with_options = stack()
            .backend(backend())
            .rate_limit(1e6)
            .default_header("accept", "text/plain")
            .proxy_lines("http://10.0.0.1:8080")
            .no_redirects()
            .build()
            .unwrap();
        assert!(matches!(with_options.svc, ClientService::Custom(_)));
        let boxed = stack()
            .backend(backend())
            .layer_at(Position::Top, tower::layer::util::Identity::new())
            .build()
            .unwrap();
        assert!(matches!(boxed.svc, ClientService::Boxed(_)));
        #[cfg(feature = "decompression")]
        {
            let off = stack()
                .backend(backend())
                .decompression(false)
                .build()
                .unwrap();
            assert!(matches!(off.svc, ClientService::Boxed(_)));
        }
        for client in [typed, boxed] {
            let resp = client
                .send(crate::get("http://a.test/").build().unwrap())
                .await;
            let body = crate::ResponseExt::bytes(resp.unwrap()).await.unwrap();
            assert_eq!(&body[..], b"ok");
        }
    }

    #[tokio::test]
    async fn optional_layers_on_the_typed_chain_apply() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let backend = tower::service_fn(move |req: Request<Body>| {
            log.lock()
                .unwrap()
                .push(req.headers().get("accept").cloned());
            std::future::ready(Ok::<_, Error>(Response::new(ResponseBody::from("ok"))))
        });
        let client = stack()
            .backend(backend)
            .rate_limit(1e6)
            .default_header("accept", "text/plain")
            .build()
            .unwrap();
        assert!(matches!(client.svc, ClientService::Custom(_)));
        assert!(client.rate_limit_handle().is_some());
        let page = client.get("http://a.test/").await.unwrap();
        assert_eq!(page.body(), b"ok");
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            &[Some(http::HeaderValue::from_static("text/plain"))]
        );
    }
}
