//! A blocking wrapper: runs fastreq on its own runtime, for code that is not async.
//!
//! Each call builds a Tokio runtime, runs the work and shuts the runtime down. Called from
//! inside a Tokio runtime (where blocking would stall the runtime's thread, or panic), it
//! returns a [`Config`](crate::ErrorKind::Config) error instead.
//!
//! # Examples
//!
//! ```
//! // Outside any runtime this runs the fetches; a bad URL gives an error in its place.
//! let results = fastreq::blocking::get_all(["not a url"]).unwrap();
//! assert!(results[0].as_ref().unwrap_err().is_invalid_request());
//! ```

use std::future::Future;

use crate::error::Error;
use crate::response::Fetched;

fn run<F: Future>(what: &str, fut: F) -> Result<F::Output, Error> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::config(format!(
            "fastreq::blocking::{what} was called from inside a Tokio runtime; \
             use the async API there instead (fastreq::get_all, fastreq::fetch)"
        )));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::config(format!("cannot start a Tokio runtime: {e}")).with_source(e))?;
    Ok(rt.block_on(fut))
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
