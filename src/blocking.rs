//! A blocking wrapper: runs fastreq on its own runtime, for code that is not async.
//!
//! Each call builds a Tokio runtime, runs the work and shuts the runtime down. Called from
//! inside a Tokio runtime (where blocking would stall the runtime's thread, or panic), it
//! returns a [`Config`](crate::ErrorKind::Config) error instead.
//!
//! For a configured client (concurrency, rate limit, retries…) in synchronous code, build
//! the preset with [`StackBuilder::build_blocking`](crate::StackBuilder::build_blocking):
//! the [`Client`] it returns keeps one runtime for all its calls.
//!
//! # Examples
//!
//! ```
//! // Outside any runtime this runs the fetches; a bad URL gives an error in its place.
//! let results = fastreq::blocking::get_all(["not a url"]).unwrap();
//! assert!(results[0].as_ref().unwrap_err().is_invalid_request());
//!
//! // The whole job in one call, as the Python library does:
//! let client = fastreq::stack()
//!     .concurrency(32)
//!     .rate_limit(200.0)
//!     .retries(2)
//!     .build_blocking()
//!     .unwrap();
//! let results = client.get_all(["not a url either"]).unwrap();
//! assert!(results[0].as_ref().unwrap_err().is_invalid_request());
//! ```

use std::future::Future;
use std::sync::Arc;

use http::Request;

use crate::body::Body;
use crate::error::Error;
use crate::response::Fetched;

fn outside_runtime(what: &str) -> Result<(), Error> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::config(format!(
            "fastreq::blocking::{what} was called from inside a Tokio runtime; \
             use the async API there instead (fastreq::get_all, fastreq::fetch, fastreq::Client)"
        )));
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::config(format!("cannot start a Tokio runtime: {e}")).with_source(e))
}

fn run<F: Future>(what: &str, fut: F) -> Result<F::Output, Error> {
    outside_runtime(what)?;
    Ok(runtime()?.block_on(fut))
}

/// Blocking [`crate::get_all`]: GETs every URL and returns the results in input order.
///
/// The outer `Err` only says the call could not run (inside a runtime, or no runtime could
/// be started); each URL's own failure is in its place in the vector.
pub fn get_all<I>(urls: I) -> Result<Vec<Result<Fetched, Error>>, Error>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    run("get_all", crate::get_all(urls))
}

/// Blocking GET of one URL with a default backend, buffered into a [`Fetched`].
pub fn get(url: &str) -> Result<Fetched, Error> {
    run("get", async {
        let req = crate::get(url).build()?;
        crate::fetch(crate::Backend::new(), req).await
    })?
}

/// A configured [`Client`](crate::Client) for synchronous code, made by
/// [`StackBuilder::build_blocking`](crate::StackBuilder::build_blocking).
///
/// It owns a Tokio runtime that every call runs on (and that keeps connections alive
/// between calls). Clones share the runtime, the limits and the pools. Each method returns
/// a [`Config`](crate::ErrorKind::Config) error instead of blocking when called from inside
/// a Tokio runtime; there, use [`async_client`](Self::async_client).
#[derive(Clone)]
pub struct Client {
    inner: crate::Client,
    rt: Option<Arc<tokio::runtime::Runtime>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("blocking::Client")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub(crate) fn build(builder: crate::StackBuilder) -> Result<Client, Error> {
        outside_runtime("StackBuilder::build_blocking")?;
        let rt = runtime()?;
        let inner = {
            let _entered = rt.enter();
            builder.build()?
        };
        Ok(Client {
            inner,
            rt: Some(Arc::new(rt)),
        })
    }

    fn run<F: Future>(&self, what: &str, fut: F) -> Result<F::Output, Error> {
        outside_runtime(what)?;
        let rt = self.rt.as_ref().expect("present until dropped");
        Ok(rt.block_on(fut))
    }

    /// The async client inside, for use from async code.
    pub fn async_client(&self) -> &crate::Client {
        &self.inner
    }

    /// GETs `url` and buffers the response.
    pub fn get(&self, url: impl AsRef<str>) -> Result<Fetched, Error> {
        self.run("Client::get", self.inner.get(url))?
    }

    /// Sends a request and buffers the response.
    pub fn fetch(&self, req: Request<Body>) -> Result<Fetched, Error> {
        self.run("Client::fetch", self.inner.fetch(req))?
    }

    /// Builds `req` and sends it, buffered.
    pub fn request(&self, req: crate::RequestBuilder) -> Result<Fetched, Error> {
        self.run("Client::request", self.inner.request(req))?
    }

    /// GETs every URL, buffered, in input order (duplicates kept); see
    /// [`Client::get_all`](crate::Client::get_all). The outer `Err` only says the call could
    /// not run.
    pub fn get_all<I>(&self, urls: I) -> Result<Vec<Result<Fetched, Error>>, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.run("Client::get_all", self.inner.get_all(urls))
    }

    /// GETs every URL and parses each body as JSON into `T`, in input order; see
    /// [`Client::get_all_json`](crate::Client::get_all_json).
    #[cfg(feature = "json")]
    pub fn get_all_json<T, I>(&self, urls: I) -> Result<Vec<Result<T, Error>>, Error>
    where
        T: serde::de::DeserializeOwned,
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.run("Client::get_all_json", self.inner.get_all_json(urls))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // The last clone ends the runtime without blocking, so that dropping the client
        // is safe anywhere (even inside another runtime).
        if let Some(rt) = self.rt.take().and_then(|rt| Arc::try_unwrap(rt).ok()) {
            rt.shutdown_background();
        }
    }
}
