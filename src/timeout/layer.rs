//! [`TimeoutLayer`] (the configuration) and its [`TimeoutBuilder`].

use std::time::Duration;

use tower::Layer;

use super::service::Timeout;
use super::{DEFAULT_BODY_IDLE_TIMEOUT, DEFAULT_HEADERS_TIMEOUT};
use crate::error::Error;

/// Applies [`Timeout`] to a service: a per-hop deadline up to the response headers and
/// idle/total deadlines while the response body is read.
///
/// This is also the (small, `Copy`) configuration of the middleware:
///
/// | option | default | what it bounds |
/// |---|---|---|
/// | [`headers`](TimeoutBuilder::headers) | 30 s | from the call until the response headers arrive, per hop; a request's [`RequestTimeout`](crate::ext::RequestTimeout) overrides it |
/// | [`body_idle`](TimeoutBuilder::body_idle) | 30 s | each wait for the next body frame while the body is being read |
/// | [`body_total`](TimeoutBuilder::body_total) | off | from the headers' arrival until the body's end |
///
/// `TimeoutLayer::default()` has the defaults above. See the [module docs](super).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeoutLayer {
    pub(super) headers: Option<Duration>,
    pub(super) body_idle: Option<Duration>,
    pub(super) body_total: Option<Duration>,
}

impl Default for TimeoutLayer {
    fn default() -> Self {
        TimeoutLayer {
            headers: Some(DEFAULT_HEADERS_TIMEOUT),
            body_idle: Some(DEFAULT_BODY_IDLE_TIMEOUT),
            body_total: None,
        }
    }
}

impl TimeoutLayer {
    /// A layer with the given headers timeout and the default body timeouts (30 s idle,
    /// no total).
    ///
    /// Never fails, so it goes straight into `ServiceBuilder::layer`: a zero duration is
    /// raised to the smallest one, 1 ns (every request then times out, as a zero timeout
    /// asks). Use [`try_new`](Self::try_new) to refuse zero instead.
    pub fn new(headers: Duration) -> Self {
        TimeoutLayer {
            headers: Some(headers.max(Duration::from_nanos(1))),
            ..TimeoutLayer::default()
        }
    }

    /// Like [`new`](Self::new), but a zero duration is an
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) error.
    pub fn try_new(headers: Duration) -> Result<Self, Error> {
        TimeoutLayer::builder().headers(headers).build()
    }

    /// A builder starting from the defaults.
    pub fn builder() -> TimeoutBuilder {
        TimeoutBuilder::default()
    }

    /// The timeout up to the response headers, when the request carries no
    /// [`RequestTimeout`](crate::ext::RequestTimeout).
    pub fn headers_timeout(&self) -> Option<Duration> {
        self.headers
    }

    /// The longest wait for one body frame while reading the body.
    pub fn body_idle_timeout(&self) -> Option<Duration> {
        self.body_idle
    }

    /// The longest time from the response headers to the end of the body.
    pub fn body_total_timeout(&self) -> Option<Duration> {
        self.body_total
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout::new(inner, *self)
    }
}

/// Builds a [`TimeoutLayer`]; starts from the defaults (30 s headers, 30 s body idle, no
/// total body deadline).
///
/// Every option takes a [`Duration`] or `None` to turn that timeout off. A zero duration is
/// recorded as an [`ErrorKind::Config`](crate::ErrorKind::Config) error that
/// [`build`](Self::build) returns (the first one, if several).
#[derive(Debug, Default)]
#[must_use]
pub struct TimeoutBuilder {
    config: TimeoutLayer,
    error: Option<Error>,
}

impl TimeoutBuilder {
    fn check(&mut self, name: &str, value: Option<Duration>) -> Option<Duration> {
        if value == Some(Duration::ZERO) {
            if self.error.is_none() {
                self.error = Some(Error::config(format!(
                    "timeout `{name}` must be greater than zero (got 0s); use None to turn it off"
                )));
            }
            return None;
        }
        value
    }

    /// Timeout per hop from the call until the response headers (default 30 s).
    ///
    /// A request's [`RequestTimeout`](crate::ext::RequestTimeout) extension replaces it for
    /// that request, also when this is `None`.
    pub fn headers(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.config.headers = self.check("headers", timeout.into());
        self
    }

    /// Longest wait for the next body frame while the body is read (default 30 s).
    ///
    /// The clock starts when the body is first polled and restarts at the first wait after
    /// each frame, so a consumer that is slow to poll is not blamed on the server.
    pub fn body_idle(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.config.body_idle = self.check("body_idle", timeout.into());
        self
    }

    /// Longest time from the arrival of the response headers to the end of the body
    /// (default off).
    pub fn body_total(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.config.body_total = self.check("body_total", timeout.into());
        self
    }

    /// The layer, or the first configuration error.
    pub fn build(self) -> Result<TimeoutLayer, Error> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.config),
        }
    }
}
