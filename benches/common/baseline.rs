//! The raw hyper-util client every end-to-end bench measures against: the legacy client
//! (90 s idle pool, tokio timers) and `buffer_unordered` over the URLs, bodies collected.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::Connect;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The legacy client over `connector`, configured as a user would.
pub fn client<C>(connector: C) -> Client<C, Empty<Bytes>>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector)
}

/// GETs every URL, `c` at once, reading each body to the end; returns how many responses
/// had the benches' 200-byte body.
pub async fn get_each<C>(
    client: &Client<C, Empty<Bytes>>,
    urls: impl Iterator<Item = String>,
    c: usize,
) -> usize
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let mut ok = 0;
    let mut out = futures::stream::iter(urls)
        .map(|u| {
            let req = Request::get(u)
                .body(Empty::<Bytes>::new())
                .expect("valid request");
            let fut = client.request(req);
            async move {
                let body = fut.await?.into_body().collect().await?.to_bytes();
                Ok::<_, BoxError>(body.len())
            }
        })
        .buffer_unordered(c);
    while let Some(r) = out.next().await {
        ok += usize::from(r.is_ok_and(|len| len == 200));
    }
    ok
}
