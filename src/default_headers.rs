//! Default headers: added to every request that does not already have them.
//!
//! In the preset this layer sits above the user-agent layer, so a `User-Agent` among the
//! defaults is an explicit choice that rotation never overrides. Values are validated once,
//! when the layer is built; the per-request cost is a clone of each missing header.
//!
//! # Examples
//!
//! ```
//! use tower::{service_fn, Layer, ServiceExt};
//! use fastreq::default_headers::DefaultHeadersLayer;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), fastreq::Error> {
//! let layer = DefaultHeadersLayer::builder()
//!     .header("accept", "application/json")
//!     .header("x-team", "crawlers")
//!     .build()?;
//! let svc = layer.layer(service_fn(|req: http::Request<fastreq::Body>| async move {
//!     Ok::<_, fastreq::Error>(req.headers().clone())
//! }));
//! let req = fastreq::get("http://a.test/").header("x-team", "search").build()?;
//! let seen = svc.oneshot(req).await?;
//! assert_eq!(seen["accept"], "application/json");
//! assert_eq!(seen["x-team"], "search"); // the request's own value wins
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Request};
use tower::Layer;
use tower_service::Service;

use crate::error::Error;

/// Adds [`DefaultHeaders`] to a service; see the [module docs](self).
#[derive(Clone, Debug, Default)]
pub struct DefaultHeadersLayer {
    headers: Arc<HeaderMap>,
}

impl DefaultHeadersLayer {
    /// A layer adding `headers` (every value of each name) to requests lacking that name.
    pub fn new(headers: HeaderMap) -> Self {
        DefaultHeadersLayer {
            headers: Arc::new(headers),
        }
    }

    /// A builder that validates names and values.
    pub fn builder() -> DefaultHeadersBuilder {
        DefaultHeadersBuilder::default()
    }

    /// The default headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// Builds a [`DefaultHeadersLayer`]; the first invalid name or value is returned by
/// [`build`](Self::build).
#[derive(Debug, Default)]
#[must_use]
pub struct DefaultHeadersBuilder {
    headers: HeaderMap,
    error: Option<Error>,
}

impl DefaultHeadersBuilder {
    /// Adds a default header (appended: a name may have several values).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if self.error.is_some() {
            return self;
        }
        let name = match HeaderName::from_bytes(name.as_bytes()) {
            Ok(n) => n,
            Err(_) => {
                self.error = Some(Error::config(format!(
                    "invalid default header name `{}`",
                    name.escape_debug()
                )));
                return self;
            }
        };
        match HeaderValue::from_str(value) {
            Ok(mut v) => {
                if is_sensitive(&name) {
                    v.set_sensitive(true);
                }
                self.headers.append(name, v);
            }
            Err(_) => {
                self.error = Some(Error::config(format!(
                    "invalid value for default header `{name}`"
                )));
            }
        }
        self
    }

    /// Builds the layer, or returns the first invalid header.
    pub fn build(self) -> Result<DefaultHeadersLayer, Error> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(DefaultHeadersLayer::new(self.headers)),
        }
    }
}

fn is_sensitive(name: &HeaderName) -> bool {
    name == http::header::AUTHORIZATION
        || name == http::header::PROXY_AUTHORIZATION
        || name == http::header::COOKIE
}

impl<S> Layer<S> for DefaultHeadersLayer {
    type Service = DefaultHeaders<S>;

    fn layer(&self, inner: S) -> DefaultHeaders<S> {
        DefaultHeaders {
            inner,
            headers: self.headers.clone(),
        }
    }
}

/// Adds default headers to requests that lack them; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct DefaultHeaders<S> {
    inner: S,
    headers: Arc<HeaderMap>,
}

impl<S, B> Service<Request<B>> for DefaultHeaders<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> S::Future {
        if !self.headers.is_empty() {
            let target = req.headers_mut();
            for name in self.headers.keys() {
                if !target.contains_key(name) {
                    for value in self.headers.get_all(name) {
                        target.append(name.clone(), value.clone());
                    }
                }
            }
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_input_is_named() {
        let e = DefaultHeadersLayer::builder()
            .header("bad name", "v")
            .build()
            .unwrap_err();
        assert!(e.is_config() && e.to_string().contains("bad name"), "{e}");
        let e = DefaultHeadersLayer::builder()
            .header("x-a", "line\nbreak")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("x-a"), "{e}");
        let l = DefaultHeadersLayer::builder()
            .header("authorization", "Bearer s3cret")
            .build()
            .unwrap();
        assert!(!format!("{l:?}").contains("s3cret"));
    }
}
