//! Issue 12 §3: the per-proxy clients are bounded. A rotation over 10,000 distinct proxies
//! (one in-process HTTP proxy, a distinct user name per request, so a distinct `Proxy` each
//! time) keeps the number of live clients, the open sockets and the memory flat.
//!
//! The backend speaks h2c with prior knowledge, so every request goes through a `CONNECT`
//! tunnel that stays open in its client's pool (a forwarded HTTP/1.1 request would be closed
//! by the proxy and hide a leak of sockets).

mod support;

use std::time::Duration;

use fastreq::proxy::{Proxy, ProxyOverride};
use fastreq::{Backend, ResponseExt};
use futures::StreamExt;
use support::proxy::TestProxy;
use support::{Reply, TestServer};
use tower::ServiceExt;

/// Open file descriptors of this process (sockets of the client, the proxy and the server).
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_distinct_proxies_keep_clients_sockets_and_memory_flat() {
    const N: usize = 10_000;
    const MAX_CLIENTS: usize = 32;
    let server = TestServer::start(|_req| Reply::text("ok"));
    let proxy = TestProxy::http().start();
    let proxy_addr = proxy.url().trim_start_matches("http://").to_owned();
    let backend = Backend::builder()
        .max_proxy_clients(MAX_CLIENTS)
        .http2_prior_knowledge()
        .build()
        .unwrap();
    assert_eq!(
        fastreq::backend::DEFAULT_MAX_PROXY_CLIENTS,
        1024,
        "the documented default"
    );

    let url = server.url("/");
    let base_fds = open_fds();
    let mut fds_seen = Vec::new();
    let mut rss_at_2k = 0;
    let run = async {
        let mut done = 0usize;
        let mut results = futures::stream::iter(0..N)
            .map(|i| {
                let backend = backend.clone();
                let mut req = fastreq::get(&url).build().unwrap();
                let proxy = Proxy::parse(&format!("http://user{i}:pw@{proxy_addr}")).unwrap();
                req.extensions_mut().insert(ProxyOverride(Some(proxy)));
                async move {
                    let resp = backend.oneshot(req).await?;
                    resp.text().await
                }
            })
            .buffer_unordered(8);
        while let Some(r) = results.next().await {
            assert_eq!(r.expect("request through the proxy"), "ok");
            done += 1;
            assert!(
                backend.proxy_clients() <= MAX_CLIENTS,
                "{done}: too many clients"
            );
            if done.is_multiple_of(1_000) {
                fds_seen.push(open_fds());
                if done == 2_000 {
                    rss_at_2k = rss_kib();
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("10,000 proxied requests in 120 s");

    let rss_end = rss_kib();
    eprintln!(
        "proxy_pools: {N} proxies, clients {} (max {MAX_CLIENTS}), fds base {base_fds} \
         every 1,000: {fds_seen:?}, RSS at 2,000 {rss_at_2k} KiB, at {N} {rss_end} KiB, \
         proxy connections {}",
        backend.proxy_clients(),
        proxy.connections()
    );
    assert_eq!(
        proxy.connections(),
        N as u64,
        "one connection per distinct proxy"
    );
    // Each live client keeps its tunnel open: the client's socket, the proxy's two, the
    // server's one; evicted clients close theirs, whatever the number of proxies seen.
    let bound = base_fds + MAX_CLIENTS * 4 + 64;
    for (k, fds) in fds_seen.iter().enumerate() {
        assert!(
            *fds <= bound,
            "after {} requests: {fds} fds > {bound}",
            (k + 1) * 1000
        );
    }
    // Memory is flat: the last 8,000 distinct proxies add less than 8 MiB.
    assert!(
        rss_end < rss_at_2k + 8 * 1024,
        "RSS grew from {rss_at_2k} KiB to {rss_end} KiB"
    );
}
