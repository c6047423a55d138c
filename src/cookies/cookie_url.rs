//! [`CookieUrl`]: what the jar's methods accept as a URL, and the `Uri` → `Url` conversion.

use std::borrow::Cow;

use http::Uri;
use url::Url;

use crate::error::{redact_url, Error, ErrorKind};

/// A URL as the [`CookieJar`](super::CookieJar) methods take it: a [`url::Url`], an
/// absolute [`http::Uri`], or a string.
///
/// ```
/// use fastreq::cookies::CookieJar;
///
/// let jar = CookieJar::new();
/// let url: url::Url = "http://a.test/".parse().unwrap();
/// let uri: http::Uri = "http://a.test/".parse().unwrap();
/// jar.add_cookie_str("a=1", &url).unwrap();
/// jar.add_cookie_str("b=2", &uri).unwrap();
/// jar.add_cookie_str("c=3", "http://a.test/").unwrap();
/// assert_eq!(jar.cookies_for("http://a.test/").len(), 3);
/// ```
pub trait CookieUrl {
    /// The URL, parsed. An error is an [`ErrorKind::InvalidRequest`] naming the URL
    /// (redacted).
    fn to_cookie_url(&self) -> Result<Cow<'_, Url>, Error>;
}

impl CookieUrl for Url {
    fn to_cookie_url(&self) -> Result<Cow<'_, Url>, Error> {
        Ok(Cow::Borrowed(self))
    }
}

impl CookieUrl for str {
    fn to_cookie_url(&self) -> Result<Cow<'_, Url>, Error> {
        Url::parse(self).map(Cow::Owned).map_err(|e| {
            Error::new(ErrorKind::InvalidRequest)
                .with_message(format!("not a URL: {}", redact_url(self)))
                .with_source(e)
        })
    }
}

impl CookieUrl for String {
    fn to_cookie_url(&self) -> Result<Cow<'_, Url>, Error> {
        self.as_str().to_cookie_url()
    }
}

impl CookieUrl for Uri {
    fn to_cookie_url(&self) -> Result<Cow<'_, Url>, Error> {
        uri_to_url(self).map(Cow::Owned).ok_or_else(|| {
            Error::new(ErrorKind::InvalidRequest).with_message(format!(
                "not an absolute URL: {}",
                redact_url(&self.to_string())
            ))
        })
    }
}

impl<T: CookieUrl + ?Sized> CookieUrl for &T {
    fn to_cookie_url(&self) -> Result<Cow<'_, Url>, Error> {
        (**self).to_cookie_url()
    }
}

/// `scheme://authority/path?query` of an absolute `Uri` as a `Url`; `None` for a relative
/// one (no scheme or no authority) or one `url` rejects.
pub(super) fn uri_to_url(uri: &Uri) -> Option<Url> {
    let scheme = uri.scheme_str()?;
    let authority = uri.authority()?.as_str();
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut s = String::with_capacity(scheme.len() + 4 + authority.len() + pq.len());
    s.push_str(scheme);
    s.push_str("://");
    s.push_str(authority);
    if !pq.starts_with('/') {
        s.push('/');
    }
    s.push_str(pq);
    Url::parse(&s).ok()
}
