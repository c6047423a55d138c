//! [`UserAgentLayer`] and its [`UserAgentBuilder`].

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use http::{HeaderValue, Uri};
use tower::Layer;

use super::list::{self, DEFAULT_USER_AGENT};
use super::picker::{Picker, Random, RoundRobin, StickyPerHost};
use super::service::UserAgent;
use crate::error::{Error, ErrorKind};

/// Sets the `User-Agent` of requests: `fastreq/<version>` by default, or a rotation over a
/// list of user agents.
///
/// | constructor | user agent |
/// |---|---|
/// | [`new`](Self::new), `default()` | [`DEFAULT_USER_AGENT`] (`fastreq/<version>`) |
/// | [`fixed`](Self::fixed) | one value of your choice |
/// | [`random`](Self::random) | the built-in [browser list](super::BROWSER_USER_AGENTS), random per request |
/// | [`round_robin`](Self::round_robin) | the built-in browser list, in order |
/// | [`builder`](Self::builder) | your list or file, any [`Picker`] |
///
/// A request that already has a `User-Agent` keeps it unless
/// [`override_existing(true)`](Self::override_existing) is set. Clones of the layer and
/// of every service built from it share the list and the picker (one round-robin counter).
/// See the [module docs](super).
#[derive(Clone)]
pub struct UserAgentLayer {
    pub(super) choice: Choice,
    pub(super) override_existing: bool,
}

/// How a request's user agent is found.
#[derive(Clone)]
pub(super) enum Choice {
    Fixed(HeaderValue),
    Rotate(Arc<Rotation>),
}

pub(super) struct Rotation {
    pub(super) agents: Box<[HeaderValue]>,
    pub(super) picker: Box<dyn Picker>,
}

impl Choice {
    /// The user agent for a request to `uri`: a clone of a pre-built header value.
    #[inline]
    pub(super) fn pick(&self, uri: &Uri) -> HeaderValue {
        match self {
            Choice::Fixed(v) => v.clone(),
            Choice::Rotate(r) => {
                let len = r.agents.len();
                let i = r.picker.pick(uri, len);
                // `len` ≥ 2 by construction; a picker's out-of-range index wraps.
                r.agents[if i < len { i } else { i % len }].clone()
            }
        }
    }

    fn agents(&self) -> &[HeaderValue] {
        match self {
            Choice::Fixed(v) => std::slice::from_ref(v),
            Choice::Rotate(r) => &r.agents,
        }
    }
}

impl fmt::Debug for UserAgentLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UserAgentLayer");
        match &self.choice {
            Choice::Fixed(v) => d.field("user_agent", v),
            Choice::Rotate(r) => d
                .field("agents", &r.agents.len())
                .field("picker", &r.picker),
        };
        d.field("override_existing", &self.override_existing)
            .finish()
    }
}

impl Default for UserAgentLayer {
    fn default() -> Self {
        UserAgentLayer::new()
    }
}

impl UserAgentLayer {
    /// Sends [`DEFAULT_USER_AGENT`] (`fastreq/<version>`) on requests that have none.
    pub fn new() -> Self {
        UserAgentLayer {
            choice: Choice::Fixed(HeaderValue::from_static(DEFAULT_USER_AGENT)),
            override_existing: false,
        }
    }

    /// Sends `user_agent` on requests that have none. A value that is not a valid header
    /// value (or is empty) is an [`ErrorKind::Config`] error naming it.
    pub fn fixed(user_agent: &str) -> Result<Self, Error> {
        let value = list::parse_one(user_agent, || "`fixed`".into())?;
        Ok(UserAgentLayer {
            choice: Choice::Fixed(value),
            override_existing: false,
        })
    }

    /// A random browser user agent from the
    /// [built-in list](super::BROWSER_USER_AGENTS) for each request.
    pub fn random() -> Self {
        Self::rotate(list::builtin(), Box::new(Random::new()))
    }

    /// The browser user agents of the [built-in list](super::BROWSER_USER_AGENTS), in
    /// order.
    pub fn round_robin() -> Self {
        Self::rotate(list::builtin(), Box::new(RoundRobin::new()))
    }

    /// A builder for your own list, file or picker.
    pub fn builder() -> UserAgentBuilder {
        UserAgentBuilder::default()
    }

    fn rotate(mut agents: Vec<HeaderValue>, picker: Box<dyn Picker>) -> Self {
        let choice = if agents.len() == 1 {
            Choice::Fixed(agents.pop().expect("one element"))
        } else {
            Choice::Rotate(Arc::new(Rotation {
                agents: agents.into_boxed_slice(),
                picker,
            }))
        };
        UserAgentLayer {
            choice,
            override_existing: false,
        }
    }

    /// Whether to replace a `User-Agent` the request already has (default `false`: an
    /// explicit user agent, for example from a default-headers layer above, is kept).
    pub fn override_existing(mut self, yes: bool) -> Self {
        self.override_existing = yes;
        self
    }

    /// Whether a `User-Agent` already on the request is replaced.
    pub fn overrides_existing(&self) -> bool {
        self.override_existing
    }

    /// The user agents this layer chooses from (one for a fixed user agent).
    pub fn agents(&self) -> &[HeaderValue] {
        self.choice.agents()
    }
}

impl<S> Layer<S> for UserAgentLayer {
    type Service = UserAgent<S>;

    fn layer(&self, inner: S) -> UserAgent<S> {
        UserAgent::from_layer(inner, self.clone())
    }
}

/// Builds a rotating [`UserAgentLayer`].
///
/// | option | default |
/// |---|---|
/// | list: [`agents`](Self::agents), [`agents_from_str`](Self::agents_from_str), [`agents_from_file`](Self::agents_from_file), [`builtin`](Self::builtin) | the [built-in browser list](super::BROWSER_USER_AGENTS) |
/// | picker: [`random`](Self::random), [`round_robin`](Self::round_robin), [`sticky_per_host`](Self::sticky_per_host), [`picker`](Self::picker) | random |
/// | [`override_existing`](Self::override_existing) | `false` |
///
/// Every value is checked with `HeaderValue::from_str` here, once; an invalid or empty
/// one is recorded as an [`ErrorKind::Config`] error naming it (and its line, for a file
/// or text) that [`build`](Self::build) returns (the first one, if several).
/// A list of one user agent sends that one always.
#[must_use]
#[derive(Default)]
pub struct UserAgentBuilder {
    agents: Option<Vec<HeaderValue>>,
    picker: Option<Box<dyn Picker>>,
    override_existing: bool,
    error: Option<Error>,
}

impl fmt::Debug for UserAgentBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserAgentBuilder")
            .field("agents", &self.agents.as_ref().map(Vec::len))
            .field("picker", &self.picker)
            .field("override_existing", &self.override_existing)
            .field("error", &self.error)
            .finish()
    }
}

impl UserAgentBuilder {
    fn set_agents(mut self, agents: Result<Vec<HeaderValue>, Error>) -> Self {
        match agents {
            Ok(a) => self.agents = Some(a),
            Err(e) => {
                if self.error.is_none() {
                    self.error = Some(e);
                }
            }
        }
        self
    }

    /// Rotates over these user agents (replaces any list set before).
    pub fn agents<I, S>(self, agents: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let parsed = agents
            .into_iter()
            .enumerate()
            .map(|(i, s)| list::parse_one(s.as_ref(), || format!("index {i}")))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|v| {
                if v.is_empty() {
                    Err(Error::new(ErrorKind::Config).with_message("the user agent list is empty"))
                } else {
                    Ok(v)
                }
            });
        self.set_agents(parsed)
    }

    /// Rotates over the user agents in `text`, one per line; blank lines and lines
    /// starting with `#` are skipped, surrounding whitespace is trimmed.
    pub fn agents_from_str(self, text: &str) -> Self {
        self.set_agents(list::parse_lines(text, "user agent text"))
    }

    /// Rotates over the user agents in the file at `path`, read now, in the format of
    /// [`agents_from_str`](Self::agents_from_str). A file that cannot be read, or an
    /// invalid line (the error names its number), is a configuration error.
    pub fn agents_from_file(self, path: impl AsRef<Path>) -> Self {
        self.set_agents(list::read_file(path.as_ref()))
    }

    /// Rotates over the [built-in browser list](super::BROWSER_USER_AGENTS) (the default).
    pub fn builtin(self) -> Self {
        self.set_agents(Ok(list::builtin()))
    }

    /// A random user agent for each request ([`Random`]; the default).
    pub fn random(self) -> Self {
        self.picker(Random::new())
    }

    /// The user agents in order ([`RoundRobin`]).
    pub fn round_robin(self) -> Self {
        self.picker(RoundRobin::new())
    }

    /// The same user agent for every request to the same host ([`StickyPerHost`]).
    pub fn sticky_per_host(self) -> Self {
        self.picker(StickyPerHost::new())
    }

    /// Chooses with your own [`Picker`].
    pub fn picker(mut self, picker: impl Picker) -> Self {
        self.picker = Some(Box::new(picker));
        self
    }

    /// Whether to replace a `User-Agent` the request already has (default `false`).
    pub fn override_existing(mut self, yes: bool) -> Self {
        self.override_existing = yes;
        self
    }

    /// Builds the layer, or returns the first configuration error.
    pub fn build(self) -> Result<UserAgentLayer, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let agents = self.agents.unwrap_or_else(list::builtin);
        let picker = self.picker.unwrap_or_else(|| Box::new(Random::new()));
        Ok(UserAgentLayer::rotate(agents, picker).override_existing(self.override_existing))
    }
}
