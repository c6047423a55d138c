//! Name resolution with per-name overrides.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use tower_service::Service;

use crate::error::BoxError;

/// Resolves names with the system resolver (on the blocking pool), except names that were
/// mapped to fixed addresses with [`BackendBuilder::resolve`](super::BackendBuilder::resolve).
#[derive(Clone)]
pub(crate) struct Resolver {
    overrides: Arc<HashMap<String, Vec<SocketAddr>>>,
    gai: GaiResolver,
}

impl Resolver {
    pub(crate) fn new(overrides: HashMap<String, Vec<SocketAddr>>) -> Self {
        Resolver {
            overrides: Arc::new(overrides),
            gai: GaiResolver::new(),
        }
    }
}

type Addrs = std::vec::IntoIter<SocketAddr>;

impl Service<Name> for Resolver {
    type Response = Addrs;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Addrs, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        if let Some(addrs) = self.overrides.get(&name.as_str().to_ascii_lowercase()) {
            let addrs = addrs.clone();
            return Box::pin(async move { Ok(addrs.into_iter()) });
        }
        let fut = self.gai.call(name);
        Box::pin(async move {
            let addrs = fut.await?;
            Ok(addrs.collect::<Vec<_>>().into_iter())
        })
    }
}
