//! [`FollowRedirectLayer`] (the configuration) and its [`FollowRedirectBuilder`].

use std::fmt;
use std::sync::Arc;

use http::header::{self, HeaderName};
use tower::Layer;

use super::policy::Standard;
use super::service::FollowRedirect;
use super::DEFAULT_MAX_REDIRECTS;
use crate::error::{Error, Redactor};

/// The headers always stripped once a chain has crossed origin.
pub(super) static SENSITIVE_HEADERS: [HeaderName; 5] = [
    header::AUTHORIZATION,
    header::COOKIE,
    HeaderName::from_static("cookie2"),
    header::PROXY_AUTHORIZATION,
    header::WWW_AUTHENTICATE,
];

/// The configuration shared by the layer and its services. Cloning the default is free
/// (no reference counts to touch).
#[derive(Clone)]
pub(super) struct Config {
    pub(super) max_redirects: u32,
    pub(super) https_downgrade: bool,
    pub(super) extra_sensitive: Option<Arc<[HeaderName]>>,
    pub(super) redactor: Option<Redactor>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_redirects: DEFAULT_MAX_REDIRECTS,
            https_downgrade: false,
            extra_sensitive: None,
            redactor: None,
        }
    }
}

impl Config {
    pub(super) fn redact(&self, url: &str) -> String {
        match &self.redactor {
            Some(r) => r.redact(url),
            None => crate::redact_url(url),
        }
    }

    pub(super) fn sensitive_headers(&self) -> impl Iterator<Item = &HeaderName> {
        SENSITIVE_HEADERS
            .iter()
            .chain(self.extra_sensitive.iter().flat_map(|h| h.iter()))
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("max_redirects", &self.max_redirects)
            .field("https_downgrade", &self.https_downgrade)
            .field(
                "sensitive_headers",
                &self.sensitive_headers().collect::<Vec<_>>(),
            )
            .field("redactor", &self.redactor)
            .finish()
    }
}

/// Applies [`FollowRedirect`] to a service: follows redirects safely.
///
/// | option | default |
/// |---|---|
/// | [`max_redirects`](FollowRedirectBuilder::max_redirects) | 10, then [`TooManyRedirects`](crate::ErrorKind::TooManyRedirects) |
/// | [`https_downgrade`](FollowRedirectBuilder::https_downgrade) | refused ([`RedirectRejected`](crate::ErrorKind::RedirectRejected)) |
/// | [`sensitive_header`](FollowRedirectBuilder::sensitive_header) | `Authorization`, `Cookie`, `Cookie2`, `Proxy-Authorization`, `WWW-Authenticate` (more can be added) |
/// | [`redactor`](FollowRedirectBuilder::redactor) | [`DEFAULT_REDACTED_PARAMS`](crate::DEFAULT_REDACTED_PARAMS) |
/// | [`policy`](Self::policy) | [`Standard`]: follow whatever the built-in rules accept |
///
/// `FollowRedirectLayer::new()` (or `default()`) has these defaults. See the
/// [module docs](super) for the rules.
#[derive(Clone, Debug)]
pub struct FollowRedirectLayer<P = Standard> {
    pub(super) config: Config,
    pub(super) policy: P,
}

impl Default for FollowRedirectLayer {
    fn default() -> Self {
        FollowRedirectLayer::new()
    }
}

impl FollowRedirectLayer {
    /// A layer with the defaults: at most 10 hops, no https → http, the standard policy.
    pub fn new() -> Self {
        FollowRedirectLayer {
            config: Config::default(),
            policy: Standard,
        }
    }

    /// A builder starting from the defaults.
    pub fn builder() -> FollowRedirectBuilder {
        FollowRedirectBuilder::default()
    }
}

impl<P> FollowRedirectLayer<P> {
    /// Replaces the [`Policy`](super::Policy) asked about each redirect that passed the
    /// built-in rules.
    pub fn policy<Q>(self, policy: Q) -> FollowRedirectLayer<Q> {
        FollowRedirectLayer {
            config: self.config,
            policy,
        }
    }

    /// The most redirects followed for one request.
    pub fn max_redirects(&self) -> u32 {
        self.config.max_redirects
    }

    /// Whether an https → http redirect is followed.
    pub fn allows_https_downgrade(&self) -> bool {
        self.config.https_downgrade
    }

    /// The headers stripped for the rest of a chain once it has crossed origin: the built-in
    /// ones, then the registered ones.
    pub fn sensitive_headers(&self) -> impl Iterator<Item = &HeaderName> {
        self.config.sensitive_headers()
    }
}

impl<S: Clone, P: Clone> Layer<S> for FollowRedirectLayer<P> {
    type Service = FollowRedirect<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        FollowRedirect::with_layer(inner, self)
    }
}

/// Builds a [`FollowRedirectLayer`]; starts from the defaults.
///
/// Invalid values are recorded as an [`ErrorKind::Config`](crate::ErrorKind::Config) error
/// that [`build`](Self::build) returns (the first one, if several).
#[derive(Debug, Default)]
#[must_use]
pub struct FollowRedirectBuilder {
    config: Config,
    extra: Vec<HeaderName>,
    error: Option<Error>,
}

impl FollowRedirectBuilder {
    fn fail(&mut self, err: Error) {
        if self.error.is_none() {
            self.error = Some(err);
        }
    }

    /// The most redirects followed for one request (default 10). One more is a
    /// [`TooManyRedirects`](crate::ErrorKind::TooManyRedirects) error.
    ///
    /// Zero is a configuration error: to get 3xx responses back as they are, leave the
    /// layer out or mark requests with [`NoRedirects`](crate::ext::NoRedirects).
    pub fn max_redirects(mut self, max: u32) -> Self {
        if max == 0 {
            self.fail(Error::config(
                "max_redirects must be at least 1 (got 0); to not follow redirects, leave the \
                 layer out or use the NoRedirects request extension",
            ));
        } else {
            self.config.max_redirects = max;
        }
        self
    }

    /// Whether to follow a redirect from an `https` URL to an `http` one (default `false`:
    /// such a hop is a [`RedirectRejected`](crate::ErrorKind::RedirectRejected) error).
    pub fn https_downgrade(mut self, allow: bool) -> Self {
        self.config.https_downgrade = allow;
        self
    }

    /// Registers one more header to strip for the rest of a chain once it has crossed
    /// origin (for example `X-Api-Key`). An invalid name is a configuration error.
    pub fn sensitive_header<K>(mut self, name: K) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
    {
        match HeaderName::try_from(name) {
            Ok(name) => {
                if !self.extra.contains(&name) && !SENSITIVE_HEADERS.contains(&name) {
                    self.extra.push(name);
                }
            }
            Err(e) => {
                let e: http::Error = e.into();
                self.fail(Error::config(format!("invalid sensitive header name: {e}")))
            }
        }
        self
    }

    /// Registers several headers; see [`sensitive_header`](Self::sensitive_header).
    pub fn sensitive_headers<I, K>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = K>,
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
    {
        for name in names {
            self = self.sensitive_header(name);
        }
        self
    }

    /// The redactor for URLs in this layer's errors and logs (default: userinfo and the
    /// values of [`DEFAULT_REDACTED_PARAMS`](crate::DEFAULT_REDACTED_PARAMS)).
    pub fn redactor(mut self, redactor: Redactor) -> Self {
        self.config.redactor = Some(redactor);
        self
    }

    /// The layer, or the first configuration error.
    pub fn build(self) -> Result<FollowRedirectLayer, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut config = self.config;
        if !self.extra.is_empty() {
            config.extra_sensitive = Some(self.extra.into());
        }
        Ok(FollowRedirectLayer {
            config,
            policy: Standard,
        })
    }
}
