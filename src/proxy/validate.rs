//! Probing every proxy of a pool: [`ProxyPool::validate`].

use std::fmt;
use std::time::Duration;

use futures_util::StreamExt;
use http::{Request, Response, StatusCode};
use tokio::time::Instant;
use tower::ServiceExt;
use tower_service::Service;

use super::error::is_proxy_failure;
use super::{Proxy, ProxyOverride, ProxyPool};
use crate::body::Body;
use crate::error::{Error, ErrorKind};
use crate::ext::RequestTimeout;

/// Settings of [`ProxyPool::validate_with`].
#[derive(Clone, Copy, Debug)]
pub struct ValidateOptions {
    timeout: Duration,
    concurrency: usize,
    update_health: bool,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        ValidateOptions {
            timeout: Duration::from_secs(10),
            concurrency: 64,
            update_health: true,
        }
    }
}

impl ValidateOptions {
    /// Defaults: 10 s per probe, 64 probes at once, health updated.
    pub fn new() -> Self {
        ValidateOptions::default()
    }

    /// How long one probe may take, up to the response headers (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many proxies are probed at once (default 64).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Whether a working proxy's cooldown is cleared and a proxy failure starts one
    /// (default true).
    pub fn update_health(mut self, on: bool) -> Self {
        self.update_health = on;
        self
    }
}

/// A working probe: the target answered through the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The status of the target's answer (any status counts as working).
    pub status: StatusCode,
    /// Time to the response headers.
    pub elapsed: Duration,
}

/// The outcome of probing one proxy.
#[derive(Debug)]
pub struct ProbeOutcome {
    /// The proxy probed.
    pub proxy: Proxy,
    /// The answer, or why the request through this proxy failed.
    pub result: Result<Probe, Error>,
}

/// The report of [`ProxyPool::validate`], in pool order.
pub struct Validation {
    outcomes: Vec<ProbeOutcome>,
}

impl Validation {
    /// Every outcome, in pool order.
    pub fn outcomes(&self) -> &[ProbeOutcome] {
        &self.outcomes
    }

    /// The proxies through which the target answered.
    pub fn working(&self) -> impl Iterator<Item = &Proxy> {
        self.outcomes
            .iter()
            .filter(|o| o.result.is_ok())
            .map(|o| &o.proxy)
    }

    /// The proxies that failed, with their errors.
    pub fn dead(&self) -> impl Iterator<Item = (&Proxy, &Error)> {
        self.outcomes
            .iter()
            .filter_map(|o| o.result.as_ref().err().map(|e| (&o.proxy, e)))
    }

    /// The number of working proxies.
    pub fn working_count(&self) -> usize {
        self.working().count()
    }
}

impl fmt::Debug for Validation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validation")
            .field("outcomes", &self.outcomes)
            .finish()
    }
}

impl ProxyPool {
    /// Probes every proxy concurrently with a `GET url` sent through `service` (normally a
    /// [`Backend`](crate::Backend)) and reports which work, with
    /// [default options](ValidateOptions). Remove the dead ones with
    /// [`remove_dead`](Self::remove_dead).
    ///
    /// Each probe carries a [`ProxyOverride`], so it goes through its proxy even when
    /// `service` has a rotation layer. A bad `url` is an
    /// [`InvalidRequest`](ErrorKind::InvalidRequest) error.
    pub async fn validate<S, R>(&self, service: S, url: &str) -> Result<Validation, Error>
    where
        S: Service<Request<Body>, Response = Response<R>> + Clone,
        S::Error: Into<Error>,
    {
        self.validate_with(service, url, ValidateOptions::default())
            .await
    }

    /// [`validate`](Self::validate) with options. A zero timeout or concurrency is a
    /// [`Config`](ErrorKind::Config) error.
    pub async fn validate_with<S, R>(
        &self,
        service: S,
        url: &str,
        options: ValidateOptions,
    ) -> Result<Validation, Error>
    where
        S: Service<Request<Body>, Response = Response<R>> + Clone,
        S::Error: Into<Error>,
    {
        if options.timeout.is_zero() {
            return Err(Error::config("validate timeout must be greater than zero"));
        }
        if options.concurrency == 0 {
            return Err(Error::config(
                "validate concurrency must be greater than zero",
            ));
        }
        let (uri, _) = crate::request::parse_url(url)?;
        let probes = self.proxies().into_iter().map(|proxy| {
            let svc = service.clone();
            let uri = uri.clone();
            async move {
                let result = probe(svc, uri, &proxy, options.timeout).await;
                ProbeOutcome { proxy, result }
            }
        });
        let mut outcomes: Vec<(usize, ProbeOutcome)> = futures_util::stream::iter(probes)
            .enumerate()
            .map(|(i, fut)| async move { (i, fut.await) })
            .buffer_unordered(options.concurrency)
            .collect()
            .await;
        outcomes.sort_by_key(|(i, _)| *i);
        let outcomes: Vec<ProbeOutcome> = outcomes.into_iter().map(|(_, o)| o).collect();
        if options.update_health {
            for o in &outcomes {
                match &o.result {
                    Ok(_) => {
                        self.mark_healthy(&o.proxy);
                    }
                    Err(e) if is_proxy_failure(e) => {
                        self.mark_failed(&o.proxy);
                    }
                    Err(_) => {}
                }
            }
        }
        Ok(Validation { outcomes })
    }

    /// Removes every proxy that failed in `validation`; returns how many were removed.
    pub fn remove_dead(&self, validation: &Validation) -> usize {
        validation
            .dead()
            .filter(|(proxy, _)| self.remove(proxy))
            .count()
    }
}

async fn probe<S, R>(
    svc: S,
    uri: http::Uri,
    proxy: &Proxy,
    timeout: Duration,
) -> Result<Probe, Error>
where
    S: Service<Request<Body>, Response = Response<R>>,
    S::Error: Into<Error>,
{
    let mut req = Request::new(Body::empty());
    *req.uri_mut() = uri.clone();
    req.extensions_mut()
        .insert(ProxyOverride(Some(proxy.clone())));
    req.extensions_mut().insert(RequestTimeout(timeout));
    let start = Instant::now();
    let resp = match tokio::time::timeout(timeout, svc.oneshot(req)).await {
        Ok(r) => r.map_err(Into::into)?,
        Err(_) => {
            return Err(Error::new(ErrorKind::Timeout)
                .with_message(format!(
                    "probe through proxy {proxy} timed out after {timeout:?}"
                ))
                .with_url(&uri))
        }
    };
    let status = resp.status();
    if status == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
        return Err(super::ProxyError::new(
            proxy,
            ErrorKind::Proxy,
            "answered 407 Proxy Authentication Required",
        )
        .into_error()
        .with_url(&uri));
    }
    Ok(Probe {
        status,
        elapsed: start.elapsed(),
    })
}
