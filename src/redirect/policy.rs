//! [`Policy`]: custom decisions on redirects, on top of the layer's built-in rules.

use std::fmt;

use http::{HeaderMap, Method, StatusCode};
use url::Url;

use crate::error::Error;

/// What to do with a redirect that passed the layer's built-in rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send the next hop.
    Follow,
    /// Stop here: the 3xx response is returned as it is (with its
    /// [`FinalUrl`](crate::ext::FinalUrl) and [`RedirectCount`](super::RedirectCount)).
    Stop,
}

/// Decides whether to follow a redirect.
///
/// The [`FollowRedirect`](super::FollowRedirect) service applies its built-in rules first
/// (a resolvable `Location`, only `http`/`https` targets, no https → http downgrade unless
/// allowed, the hop limit) and only asks the policy about redirects that pass them, so a
/// policy can make the layer stricter but never weaker. Credentials are stripped after a
/// cross-origin hop whatever the policy says.
///
/// The policy is cloned for every request, so `&mut self` state lives for one chain of
/// hops (for example "at most two distinct hosts"). An `Err` ends the chain with that
/// error; [`ErrorKind::RedirectRejected`](crate::ErrorKind::RedirectRejected) is the
/// natural kind.
///
/// ```
/// use fastreq::redirect::{policy_fn, Action, Attempt, FollowRedirectLayer};
///
/// // Only follow redirects that stay on the same host.
/// let same_host = policy_fn(|attempt: &Attempt<'_>| {
///     Ok(if attempt.location().host() == attempt.previous().host() {
///         Action::Follow
///     } else {
///         Action::Stop
///     })
/// });
/// let layer = FollowRedirectLayer::new().policy(same_host);
/// # let _ = layer;
/// ```
pub trait Policy {
    /// Called once per redirect, after the built-in rules accepted it.
    fn redirect(&mut self, attempt: &Attempt<'_>) -> Result<Action, Error>;
}

/// The default policy: follows every redirect the layer's built-in rules accept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Standard;

impl Policy for Standard {
    #[inline]
    fn redirect(&mut self, _attempt: &Attempt<'_>) -> Result<Action, Error> {
        Ok(Action::Follow)
    }
}

/// A [`Policy`] from a closure; see [`policy_fn`].
#[derive(Clone, Copy)]
pub struct PolicyFn<F> {
    f: F,
}

/// Makes a [`Policy`] from a closure `FnMut(&Attempt<'_>) -> Result<Action, Error>`.
///
/// The closure must be `Clone` to be used by the layer (it is cloned per request).
pub fn policy_fn<F>(f: F) -> PolicyFn<F>
where
    F: FnMut(&Attempt<'_>) -> Result<Action, Error>,
{
    PolicyFn { f }
}

impl<F> Policy for PolicyFn<F>
where
    F: FnMut(&Attempt<'_>) -> Result<Action, Error>,
{
    fn redirect(&mut self, attempt: &Attempt<'_>) -> Result<Action, Error> {
        (self.f)(attempt)
    }
}

impl<F> fmt::Debug for PolicyFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PolicyFn")
    }
}

/// One redirect, as shown to a [`Policy`].
pub struct Attempt<'a> {
    pub(super) status: StatusCode,
    pub(super) headers: &'a HeaderMap,
    pub(super) previous: &'a Url,
    pub(super) location: &'a Url,
    pub(super) previous_method: &'a Method,
    pub(super) method: &'a Method,
    pub(super) hop: u32,
    pub(super) cross_origin: bool,
    pub(super) credentials_stripped: bool,
}

impl<'a> Attempt<'a> {
    /// The status of the redirect response (301, 302, 303, 307 or 308).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers of the redirect response.
    pub fn response_headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The URL that answered with the redirect.
    pub fn previous(&self) -> &'a Url {
        self.previous
    }

    /// The resolved target of the redirect (absolute, `http` or `https`, no fragment, no
    /// userinfo).
    pub fn location(&self) -> &'a Url {
        self.location
    }

    /// The method of the request that got the redirect.
    pub fn previous_method(&self) -> &'a Method {
        self.previous_method
    }

    /// The method the next hop will use (GET after a 303, or after a 301/302 to a POST).
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The number of this redirect in the chain: 1 for the first.
    pub fn hop(&self) -> u32 {
        self.hop
    }

    /// True when this hop changes the origin (scheme, host or port).
    pub fn is_cross_origin(&self) -> bool {
        self.cross_origin
    }

    /// True when credentials are stripped from the next hop: this hop or an earlier one
    /// crossed origin.
    pub fn credentials_stripped(&self) -> bool {
        self.credentials_stripped
    }
}

impl fmt::Debug for Attempt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // URLs redacted; response headers omitted (they may carry Set-Cookie values).
        f.debug_struct("Attempt")
            .field("status", &self.status)
            .field("previous", &crate::redact_url(self.previous.as_str()))
            .field("location", &crate::redact_url(self.location.as_str()))
            .field("previous_method", self.previous_method)
            .field("method", self.method)
            .field("hop", &self.hop)
            .field("cross_origin", &self.cross_origin)
            .field("credentials_stripped", &self.credentials_stripped)
            .finish_non_exhaustive()
    }
}
