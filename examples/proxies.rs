//! Proxy pools: validate, drop the dead, rotate round robin, stick per host, and override
//! the proxy of one request.
//!
//! Everything is local: two HTTP proxies (one with a password), a SOCKS5 proxy and a port
//! where nothing listens, in front of a local test server. No network needed.
//!
//! ```text
//! cargo run --example proxies
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};

use fastreq::proxy::{ProxyPool, SelectedProxy, Strategy};
use fastreq::{Backend, Client};
use futures::StreamExt;
use support::proxy::TestProxy;
use support::TestServer;

/// Sends every request through `client` and counts the proxy each one went through (the
/// backend records it on the response as `SelectedProxy`; its password is redacted).
async fn proxies_used(
    client: &Client,
    urls: impl IntoIterator<Item = String>,
) -> Result<BTreeMap<String, usize>, fastreq::Error> {
    let mut used = BTreeMap::new();
    let mut outcomes = fastreq::fan_out(client.clone(), urls.into_iter().map(fastreq::get));
    while let Some(outcome) = outcomes.next().await {
        let response = outcome.result?;
        let proxy = response.extensions().get::<SelectedProxy>();
        let name = proxy.map_or("direct".to_owned(), |p| p.0.to_string());
        *used.entry(name).or_insert(0) += 1;
    }
    Ok(used)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = TestServer::routes();
    let http_a = TestProxy::http().auth("alice", "s3cret").start();
    let http_b = TestProxy::http().start();
    let socks = TestProxy::socks().start();
    let dead = support::closed_port();

    // One proxy per line; `socks5h` lets the proxy resolve target names.
    let lines = format!(
        "{}\n{}\n{}\nhttp://{dead}\n",
        http_a.url(),
        http_b.url(),
        socks.url_with_scheme("socks5h"),
    );
    let pool = ProxyPool::from_lines(&lines)?;

    // 1. Probe every proxy at once and drop the dead ones.
    println!("validating {} proxies:", pool.len());
    let report = pool.validate(Backend::new(), &server.url("/ping")).await?;
    for probe in report.outcomes() {
        match &probe.result {
            Ok(ok) => println!(
                "  ok    {}  ({} in {:?})",
                probe.proxy, ok.status, ok.elapsed
            ),
            Err(err) => println!("  dead  {}  ({}: {err})", probe.proxy, err.kind()),
        }
    }
    let removed = pool.remove_dead(&report);
    println!("removed {removed} dead proxy, {} left\n", pool.len());
    if removed != 1 || pool.len() != 3 {
        return Err("expected exactly the closed port to be dead".into());
    }

    // 2. Round robin (the default): 30 requests, 10 through each proxy.
    let client = fastreq::stack().proxies(pool.clone()).build()?;
    let forwarded_before = (http_a.forwarded(), http_b.forwarded());
    let urls = (0..30).map(|i| server.url(&format!("/items/{i}")));
    let used = proxies_used(&client, urls).await?;
    println!("round robin, requests per proxy:");
    for (proxy, n) in &used {
        println!("  {proxy:<28} {n}");
    }
    println!(
        "  as counted by the HTTP proxies: {} and {} forwarded; SOCKS tunnels: {} (pooled)\n",
        http_a.forwarded() - forwarded_before.0,
        http_b.forwarded() - forwarded_before.1,
        socks.socks_targets().len(),
    );
    if used.len() != 3 || used.values().any(|&n| n != 10) {
        return Err("expected 10 requests through each proxy".into());
    }
    if (http_a.forwarded(), http_b.forwarded())
        != (forwarded_before.0 + 10, forwarded_before.1 + 10)
    {
        return Err("the HTTP proxies did not forward 10 requests each".into());
    }

    // 3. Sticky per host: every request to one host leaves through the same proxy. The
    // test proxies resolve `*.test` to 127.0.0.1, so these names reach the local server.
    let sticky = fastreq::stack()
        .proxies(pool.clone())
        .proxy_strategy(Strategy::StickyPerHost)
        .build()?;
    let mut per_host = BTreeMap::new();
    for host in ["a.test", "b.test", "c.test", "d.test"] {
        let urls = (0..5).map(|i| server.url_with_host(host, &format!("/items/{i}")));
        let used = proxies_used(&sticky, urls).await?;
        per_host.insert(host, used.into_keys().collect::<BTreeSet<_>>());
    }
    println!("sticky per host, proxies used by each host (5 requests each):");
    for (host, proxies) in &per_host {
        println!("  {host}  {proxies:?}");
    }
    println!();
    if per_host.values().any(|proxies| proxies.len() != 1) {
        return Err("a host used more than one proxy".into());
    }

    // 4. One request through a proxy of its own, whatever the pool says.
    let before = http_b.forwarded();
    let request = fastreq::get(server.url("/override")).proxy(http_b.url());
    let response = sticky.send(request.build()?).await?;
    let via = response
        .extensions()
        .get::<SelectedProxy>()
        .map(|p| p.0.to_string());
    println!("per-request override: {} via {via:?}", response.status());
    if http_b.forwarded() != before + 1 {
        return Err("the override did not go through the chosen proxy".into());
    }
    Ok(())
}
