//! [`RetryLayer`] (the configuration) and its [`RetryBuilder`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::response::Parts;
use tower::Layer;

use super::backoff::{
    Backoff, ExponentialBackoff, Jitter, SeedSource, DEFAULT_BACKOFF_FACTOR,
    DEFAULT_INITIAL_BACKOFF, DEFAULT_MAX_BACKOFF,
};
use super::budget::RetryBudget;
use super::policy::{Classifier, Config, StatusSet, DEFAULT_MAX_RETRIES, DEFAULT_MAX_RETRY_AFTER};
use super::service::Retry;
use crate::error::Error;

/// Applies [`Retry`] to a service. Cheap to clone: the configuration is shared.
///
/// | option | default |
/// |---|---|
/// | [`max_retries`](RetryBuilder::max_retries) | 3 (4 attempts); a request's [`MaxRetries`](crate::ext::MaxRetries) overrides it |
/// | [`initial_backoff`](RetryBuilder::initial_backoff), [`backoff_factor`](RetryBuilder::backoff_factor), [`max_backoff`](RetryBuilder::max_backoff) | 100 ms, 2, 30 s |
/// | [`jitter`](RetryBuilder::jitter) | [`Jitter::Full`] |
/// | [`backoff`](RetryBuilder::backoff) | the exponential schedule above |
/// | [`retry_on_status`](RetryBuilder::retry_on_status) | 429, 500, 502, 503, 504 |
/// | errors | [`is_retryable_error`](super::is_retryable_error): connect, timeout, proxy, connection reset/closed, h2 refused/GOAWAY |
/// | [`classify`](RetryBuilder::classify) | none (the two rows above) |
/// | [`retry_non_idempotent`](RetryBuilder::retry_non_idempotent) | off: GET, HEAD, PUT, DELETE, OPTIONS, TRACE (and QUERY); other methods only after an error showing the request was never processed (connect failure, h2 `REFUSED_STREAM`) ([`is_unprocessed_error`](super::is_unprocessed_error)) |
/// | [`max_retry_after`](RetryBuilder::max_retry_after) | 60 s |
/// | [`deadline`](RetryBuilder::deadline) | none |
/// | [`budget`](RetryBuilder::budget) | none |
///
/// See the [module docs](super) for the behaviour.
#[derive(Clone)]
pub struct RetryLayer {
    pub(super) config: Arc<Config>,
}

impl RetryLayer {
    /// A layer with the defaults above.
    pub fn new() -> Self {
        RetryLayer::builder()
            .build()
            .expect("the default retry configuration is valid")
    }

    /// A builder starting from the defaults.
    pub fn builder() -> RetryBuilder {
        RetryBuilder::default()
    }

    /// The maximum number of retries for requests without a
    /// [`MaxRetries`](crate::ext::MaxRetries) extension.
    pub fn max_retries(&self) -> u32 {
        self.config.max_retries
    }

    /// The total deadline across attempts, if any.
    pub fn deadline(&self) -> Option<Duration> {
        self.config.deadline
    }
}

impl Default for RetryLayer {
    fn default() -> Self {
        RetryLayer::new()
    }
}

impl fmt::Debug for RetryLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.config.fmt(f)
    }
}

impl<S: Clone> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry::with_layer(inner, self)
    }
}

/// Builds a [`RetryLayer`]; starts from the defaults. Every setter consumes and returns the
/// builder; the first invalid value is returned by [`build`](Self::build) as an
/// [`ErrorKind::Config`](crate::ErrorKind::Config) error naming it.
#[must_use]
pub struct RetryBuilder {
    max_retries: u32,
    non_idempotent: bool,
    statuses: StatusSet,
    classifier: Option<Classifier>,
    initial: Duration,
    factor: f64,
    max: Duration,
    jitter: Jitter,
    custom: Option<Box<dyn Backoff>>,
    max_retry_after: Duration,
    deadline: Option<Duration>,
    budget: Option<RetryBudget>,
    seed: Option<u64>,
    error: Option<Error>,
}

impl Default for RetryBuilder {
    fn default() -> Self {
        RetryBuilder {
            max_retries: DEFAULT_MAX_RETRIES,
            non_idempotent: false,
            statuses: StatusSet::default(),
            classifier: None,
            initial: DEFAULT_INITIAL_BACKOFF,
            factor: DEFAULT_BACKOFF_FACTOR,
            max: DEFAULT_MAX_BACKOFF,
            jitter: Jitter::Full,
            custom: None,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            deadline: None,
            budget: None,
            seed: None,
            error: None,
        }
    }
}

impl fmt::Debug for RetryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBuilder")
            .field("max_retries", &self.max_retries)
            .field("retry_non_idempotent", &self.non_idempotent)
            .field("retry_on_status", &self.statuses)
            .field("classifier", &self.classifier.as_ref().map(|_| "<closure>"))
            .field("initial_backoff", &self.initial)
            .field("backoff_factor", &self.factor)
            .field("max_backoff", &self.max)
            .field("jitter", &self.jitter)
            .field("backoff", &self.custom)
            .field("max_retry_after", &self.max_retry_after)
            .field("deadline", &self.deadline)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl RetryBuilder {
    fn fail(mut self, err: Error) -> Self {
        if self.error.is_none() {
            self.error = Some(err);
        }
        self
    }

    /// Retries per request (default 3, so 4 attempts; 0 turns retrying off). A request's
    /// [`MaxRetries`](crate::ext::MaxRetries) extension replaces it for that request.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Also retries methods that are not idempotent, such as POST and PATCH (default off).
    /// Off, they are still retried after an error showing the server never processed them
    /// ([`is_unprocessed_error`](super::is_unprocessed_error)).
    ///
    /// Only turn this on when the server de-duplicates (for example with an
    /// `Idempotency-Key` header): a POST that timed out may have been processed.
    pub fn retry_non_idempotent(mut self, on: bool) -> Self {
        self.non_idempotent = on;
        self
    }

    /// The delay before the first retry (default 100 ms; zero retries at once).
    pub fn initial_backoff(mut self, delay: Duration) -> Self {
        self.initial = delay;
        self
    }

    /// The growth of the delay from one retry to the next (default 2). It must be a finite
    /// number of at least 1.
    pub fn backoff_factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// The cap on one delay (default 30 s). It must not be below the initial delay.
    pub fn max_backoff(mut self, cap: Duration) -> Self {
        self.max = cap;
        self
    }

    /// How delays are randomised (default [`Jitter::Full`]).
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// A custom schedule instead of the exponential one; the four exponential options
    /// above are then ignored.
    pub fn backoff(mut self, backoff: impl Backoff) -> Self {
        self.custom = Some(Box::new(backoff));
        self
    }

    /// The statuses to retry (replaces the default 429, 500, 502, 503, 504). A code
    /// outside 100..=999 is a configuration error.
    pub fn retry_on_status<I>(mut self, statuses: I) -> Self
    where
        I: IntoIterator<Item = u16>,
    {
        let mut set = StatusSet::empty();
        for code in statuses {
            if !(100..=999).contains(&code) {
                return self.fail(Error::config(format!(
                    "retry_on_status: {code} is not an HTTP status code (100..=999)"
                )));
            }
            set.insert(code);
        }
        self.statuses = set;
        self
    }

    /// Decides what to retry with a function instead of the status list and the error
    /// rules: it sees the response head or the error of each attempt and returns `true` to
    /// retry it. Methods, bodies, limits, `Retry-After`, the deadline and the budget still
    /// apply.
    ///
    /// Compose with the defaults through
    /// [`DEFAULT_RETRY_STATUSES`](super::DEFAULT_RETRY_STATUSES) and
    /// [`is_retryable_error`](super::is_retryable_error):
    ///
    /// ```
    /// use fastreq::retry::{is_retryable_error, RetryLayer};
    ///
    /// // Also retry 409 Conflict, and never retry timeouts.
    /// let layer = RetryLayer::builder()
    ///     .classify(|outcome| match outcome {
    ///         Ok(head) => matches!(head.status.as_u16(), 409 | 429 | 500 | 502 | 503 | 504),
    ///         Err(e) => !e.is_timeout() && is_retryable_error(e),
    ///     })
    ///     .build()?;
    /// # Ok::<(), fastreq::Error>(())
    /// ```
    pub fn classify<F>(mut self, classifier: F) -> Self
    where
        F: Fn(Result<&Parts, &Error>) -> bool + Send + Sync + 'static,
    {
        self.classifier = Some(Arc::new(classifier));
        self
    }

    /// The longest `Retry-After` the layer waits for (default 60 s). A response asking for
    /// more comes back at once, marked
    /// [`NotRetried::RetryAfterTooLong`](super::NotRetried::RetryAfterTooLong).
    pub fn max_retry_after(mut self, cap: Duration) -> Self {
        self.max_retry_after = cap;
        self
    }

    /// A total deadline per request, across every attempt and backoff (default none).
    ///
    /// When it passes during an attempt (or while the inner service is not ready), the
    /// request fails with an [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) error. A
    /// backoff that would end after it is not slept: the last response or error comes back
    /// at once, marked [`NotRetried::Deadline`](super::NotRetried::Deadline). Zero is a
    /// configuration error.
    pub fn deadline(mut self, total: Duration) -> Self {
        if total.is_zero() {
            return self.fail(Error::config("retry deadline must be greater than zero"));
        }
        self.deadline = Some(total);
        self
    }

    /// Caps retries with a [`RetryBudget`] (default none). Clones of the budget share it,
    /// so one budget can cap several layers together.
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Seeds the per-request random sources from `seed` instead of the operating system,
    /// for reproducible delays (requests still get different sequences).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Builds the layer, or returns the first configuration error.
    pub fn build(self) -> Result<RetryLayer, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let backoff: Box<dyn Backoff> = match self.custom {
            Some(b) => b,
            None => Box::new(ExponentialBackoff::new(
                self.initial,
                self.factor,
                self.max,
                self.jitter,
            )?),
        };
        Ok(RetryLayer {
            config: Arc::new(Config {
                max_retries: self.max_retries,
                non_idempotent: self.non_idempotent,
                statuses: self.statuses,
                classifier: self.classifier,
                backoff,
                max_retry_after: self.max_retry_after,
                deadline: self.deadline,
                budget: self.budget,
                seeds: match self.seed {
                    Some(s) => SeedSource::fixed(s),
                    None => SeedSource::random(),
                },
            }),
        })
    }
}
