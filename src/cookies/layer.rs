//! [`CookieLayer`]: applies a [`CookieJar`] to a service.

use tower::Layer;

use super::jar::CookieJar;
use super::service::Cookies;

/// Wraps a service in [`Cookies`], which sends the jar's cookies with each request and
/// stores each response's `Set-Cookie` headers.
///
/// The layer holds a handle on one [`CookieJar`]: every service it makes (and every
/// clone of them) shares that jar. [`CookieLayer::default`] starts a new empty jar with
/// the default bounds; [`CookieLayer::new`] uses the jar you give it, so you keep a handle
/// to seed, read or clear it. See the [module docs](super).
#[derive(Clone, Debug, Default)]
pub struct CookieLayer {
    jar: CookieJar,
}

impl CookieLayer {
    /// A layer over `jar` (a handle: the layer and the caller share the jar).
    pub fn new(jar: CookieJar) -> Self {
        CookieLayer { jar }
    }

    /// The jar this layer applies.
    pub fn jar(&self) -> &CookieJar {
        &self.jar
    }
}

impl<S> Layer<S> for CookieLayer {
    type Service = Cookies<S>;

    fn layer(&self, inner: S) -> Cookies<S> {
        Cookies::new(inner, self.jar.clone())
    }
}
