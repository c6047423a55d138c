//! The user agent layer over real loopback HTTP: the default, rotation (random, round
//! robin, sticky per host), explicit user agents, lists and files.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use fastreq::user_agent::{
    Picker, StickyPerHost, UserAgent, UserAgentLayer, BROWSER_USER_AGENTS, DEFAULT_USER_AGENT,
};
use fastreq::{Backend, ErrorKind, ResponseExt};
use futures::StreamExt;
use http::HeaderValue;
use support::{Reply, TestServer};
use tower::{Layer, ServiceExt};

const T: Duration = Duration::from_secs(30);

/// A server answering with the `User-Agent` it received (or `<none>`).
fn echo_server() -> TestServer {
    TestServer::start(|req| Reply::text(req.header("user-agent").unwrap_or("<none>").to_owned()))
}

async fn ua_of(svc: &UserAgent<Backend>, req: http::Request<fastreq::Body>) -> String {
    let resp = tokio::time::timeout(T, svc.clone().oneshot(req))
        .await
        .expect("request finished in time")
        .expect("request succeeded");
    resp.text().await.unwrap()
}

/// Sends `n` GETs to `url` through `svc`, 32 at a time; returns the user agents in input
/// order.
async fn many(svc: &UserAgent<Backend>, url: &str, n: usize) -> Vec<String> {
    let reqs = (0..n).map(|_| fastreq::get(url));
    let mut out = vec![String::new(); n];
    let mut stream = fastreq::fan_out(svc.clone(), reqs).limit(32);
    let run = async {
        while let Some(o) = stream.next().await {
            out[o.index] = o.result.expect("request succeeded").text().await.unwrap();
        }
    };
    tokio::time::timeout(T, run)
        .await
        .expect("all requests in time");
    out
}

fn counts(uas: &[String]) -> HashMap<&str, usize> {
    let mut m = HashMap::new();
    for ua in uas {
        *m.entry(ua.as_str()).or_default() += 1;
    }
    m
}

#[test]
fn builtin_list_is_large_valid_distinct_and_varied() {
    assert!(
        BROWSER_USER_AGENTS.len() >= 20,
        "{}",
        BROWSER_USER_AGENTS.len()
    );
    let distinct: HashSet<_> = BROWSER_USER_AGENTS.iter().collect();
    assert_eq!(
        distinct.len(),
        BROWSER_USER_AGENTS.len(),
        "duplicates in the list"
    );
    for ua in BROWSER_USER_AGENTS {
        HeaderValue::from_str(ua).unwrap_or_else(|e| panic!("{ua:?}: {e}"));
        assert!(ua.starts_with("Mozilla/5.0 ("), "{ua}");
        assert_eq!(ua.trim(), *ua);
    }
    let has = |needle: &str| BROWSER_USER_AGENTS.iter().any(|ua| ua.contains(needle));
    for needle in [
        "Chrome/",
        "Firefox/",
        "Version/",
        "Edg/",
        "EdgA/",
        "EdgiOS/",
        "CriOS/",
        "FxiOS/",
        "Windows NT",
        "Macintosh",
        "X11; Linux",
        "Android",
        "iPhone",
        "iPad",
        "Mobile",
    ] {
        assert!(has(needle), "no user agent with {needle:?}");
    }
    // Safari proper: Version/ without a Chrome/Edge/Firefox token.
    assert!(BROWSER_USER_AGENTS.iter().any(|ua| ua.contains("Version/")
        && ua.ends_with("Safari/605.1.15")
        && !ua.contains("Edg")));

    assert_eq!(
        UserAgentLayer::random().agents().len(),
        BROWSER_USER_AGENTS.len()
    );
    assert_eq!(
        UserAgentLayer::round_robin().agents().len(),
        BROWSER_USER_AGENTS.len()
    );
}

#[tokio::test]
async fn default_is_fastreq_and_version() {
    let server = echo_server();
    let svc = UserAgentLayer::new().layer(Backend::new());
    let ua = ua_of(&svc, fastreq::get(server.url("/")).build().unwrap()).await;
    assert_eq!(ua, format!("fastreq/{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(ua, DEFAULT_USER_AGENT);
    assert_eq!(UserAgentLayer::default().agents(), [DEFAULT_USER_AGENT]);
    // Without the layer, the backend sends none: the default really comes from the layer.
    let resp = Backend::new()
        .oneshot(fastreq::get(server.url("/")).build().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "<none>");
}

#[tokio::test]
async fn random_covers_the_whole_list_over_2000_requests() {
    let server = echo_server();
    let svc = UserAgentLayer::random().layer(Backend::new());
    let seen = many(&svc, &server.url("/r"), 2_000).await;
    let c = counts(&seen);
    assert_eq!(
        c.len(),
        BROWSER_USER_AGENTS.len(),
        "every built-in user agent seen"
    );
    for ua in BROWSER_USER_AGENTS {
        let n = c.get(ua).copied().unwrap_or(0);
        // Expected 2000/25 = 80, standard deviation ≈ 8.8: [35, 140] is beyond 5 sigma.
        assert!((35..=140).contains(&n), "{ua} seen {n} times: {c:?}");
    }
    assert_eq!(server.hits(), 2_000);
}

#[tokio::test]
async fn round_robin_is_exact() {
    let server = echo_server();
    let svc = UserAgentLayer::round_robin().layer(Backend::new());
    let n = BROWSER_USER_AGENTS.len();
    // In order, one at a time: exactly the list, twice, then from the start again.
    for i in 0..(2 * n + 3) {
        let ua = ua_of(&svc, fastreq::get(server.url("/o")).build().unwrap()).await;
        assert_eq!(ua, BROWSER_USER_AGENTS[i % n], "request {i}");
    }
    // 2,000 concurrent requests through clones: each user agent exactly 2000/25 times.
    let svc = UserAgentLayer::round_robin().layer(Backend::new());
    let seen = many(&svc, &server.url("/c"), 2_000).await;
    let c = counts(&seen);
    assert_eq!(c.len(), n);
    assert!(c.values().all(|&k| k == 2_000 / n), "{c:?}");
}

#[tokio::test]
async fn clones_and_services_of_one_layer_share_the_counter() {
    let server = echo_server();
    let layer = UserAgentLayer::builder()
        .agents(["one/1", "two/2", "three/3"])
        .round_robin()
        .build()
        .unwrap();
    let a = layer.layer(Backend::new());
    let b = layer.clone().layer(Backend::new());
    let mut seen = Vec::new();
    for i in 0..6 {
        let svc = if i % 2 == 0 { &a } else { &b };
        seen.push(ua_of(svc, fastreq::get(server.url("/")).build().unwrap()).await);
    }
    assert_eq!(
        seen,
        ["one/1", "two/2", "three/3", "one/1", "two/2", "three/3"]
    );
}

#[tokio::test]
async fn explicit_user_agent_is_kept_unless_overriding() {
    let server = echo_server();
    let explicit = || {
        fastreq::get(server.url("/"))
            .header("user-agent", "my-crawler/3.1 (+https://example.test/bot)")
            .build()
            .unwrap()
    };
    for layer in [
        UserAgentLayer::new(),
        UserAgentLayer::random(),
        UserAgentLayer::round_robin(),
    ] {
        assert!(!layer.overrides_existing());
        let svc = layer.layer(Backend::new());
        assert_eq!(
            ua_of(&svc, explicit()).await,
            "my-crawler/3.1 (+https://example.test/bot)"
        );
    }

    let svc = UserAgentLayer::fixed("forced/1.0")
        .unwrap()
        .override_existing(true)
        .layer(Backend::new());
    assert_eq!(ua_of(&svc, explicit()).await, "forced/1.0");

    let svc = UserAgentLayer::builder()
        .round_robin()
        .override_existing(true)
        .build()
        .unwrap()
        .layer(Backend::new());
    assert_eq!(ua_of(&svc, explicit()).await, BROWSER_USER_AGENTS[0]);
    assert_eq!(ua_of(&svc, explicit()).await, BROWSER_USER_AGENTS[1]);
}

#[tokio::test]
async fn sticky_per_host_keeps_one_user_agent_per_host() {
    let server = echo_server();
    let backend = || {
        Backend::builder()
            .resolve("a.test", server.addr())
            .resolve("b.test", server.addr())
            .build()
            .unwrap()
    };
    let url_a = server.url_with_host("a.test", "/x");
    let url_b = server.url_with_host("b.test", "/y");

    // A seed for which the two hosts get different user agents (most seeds do), so the
    // test shows the choice follows the host.
    let len = BROWSER_USER_AGENTS.len();
    let (ua, ub): (http::Uri, http::Uri) = (url_a.parse().unwrap(), url_b.parse().unwrap());
    let seed = (0..100u64)
        .find(|&s| {
            let p = StickyPerHost::with_seed(s);
            p.pick(&ua, len) != p.pick(&ub, len)
        })
        .expect("some seed separates a.test and b.test");

    for picker_seed in [Some(seed), None] {
        let mut builder = UserAgentLayer::builder();
        builder = match picker_seed {
            Some(s) => builder.picker(StickyPerHost::with_seed(s)),
            None => builder.sticky_per_host(),
        };
        let svc = builder.build().unwrap().layer(backend());
        let mut seen_a = HashSet::new();
        let mut seen_b = HashSet::new();
        for i in 0..20 {
            let path = format!("/p{i}?q={i}");
            let a = ua_of(
                &svc,
                fastreq::get(server.url_with_host("a.test", &path))
                    .build()
                    .unwrap(),
            );
            seen_a.insert(a.await);
            let b = ua_of(
                &svc,
                fastreq::get(server.url_with_host("b.test", &path))
                    .build()
                    .unwrap(),
            );
            seen_b.insert(b.await);
        }
        assert_eq!(seen_a.len(), 1, "one user agent for a.test: {seen_a:?}");
        assert_eq!(seen_b.len(), 1, "one user agent for b.test: {seen_b:?}");
        assert!(BROWSER_USER_AGENTS.contains(&seen_a.iter().next().unwrap().as_str()));
        if picker_seed.is_some() {
            assert_ne!(seen_a, seen_b, "the two hosts got different user agents");
        }
    }
}

fn temp_file(name: &str, contents: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let path = std::env::temp_dir().join(format!(
        "fastreq-ua-{}-{nanos}-{name}.txt",
        std::process::id()
    ));
    std::fs::write(&path, contents).unwrap();
    path
}

#[tokio::test]
async fn agents_from_a_file() {
    let path = temp_file(
        "good",
        "# user agents for the crawl\r\n\r\n  agent-a/1.0 (X11)  \r\n# agent-x/9\r\nagent-b/2.0\n\n   \nagent-c/3.0",
    );
    let layer = UserAgentLayer::builder()
        .agents_from_file(&path)
        .round_robin()
        .build()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        layer.agents(),
        ["agent-a/1.0 (X11)", "agent-b/2.0", "agent-c/3.0"]
    );

    let server = echo_server();
    let svc = layer.layer(Backend::new());
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(ua_of(&svc, fastreq::get(server.url("/")).build().unwrap()).await);
    }
    assert_eq!(
        seen,
        [
            "agent-a/1.0 (X11)",
            "agent-b/2.0",
            "agent-c/3.0",
            "agent-a/1.0 (X11)"
        ]
    );
}

#[test]
fn a_bad_file_line_is_an_error_naming_it() {
    let path = temp_file("bad", "# header\nok/1.0\n\nbroken/\u{1}1.0\nok/2.0\n");
    let err = UserAgentLayer::builder()
        .agents_from_file(&path)
        .build()
        .unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(err.kind(), ErrorKind::Config);
    let msg = err.to_string();
    assert!(msg.contains("line 4"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("broken/"), "{msg}");

    // Only comments: nothing to rotate over.
    let path = temp_file("empty", "# nothing\n\n#\n");
    let err = UserAgentLayer::builder()
        .agents_from_file(&path)
        .build()
        .unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("no user agent"), "{err}");

    // A file that does not exist.
    let missing = std::env::temp_dir().join("fastreq-ua-does-not-exist-8d1f.txt");
    let err = UserAgentLayer::builder()
        .agents_from_file(&missing)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.to_string().contains("fastreq-ua-does-not-exist-8d1f"),
        "{err}"
    );
}

#[test]
fn invalid_values_are_rejected_up_front() {
    let err = UserAgentLayer::fixed("evil\r\nX-Injected: 1").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("evil"), "{err}");
    assert_eq!(
        UserAgentLayer::fixed("").unwrap_err().kind(),
        ErrorKind::Config
    );

    let err = UserAgentLayer::builder()
        .agents(["fine/1", "fine/2", "bad\n/3"])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("index 2"), "{err}");
    let err = UserAgentLayer::builder()
        .agents(["a/1", "  "])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("index 1"), "{err}");
    let err = UserAgentLayer::builder()
        .agents(Vec::<String>::new())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    // The first error is the one reported, even if a later list is fine.
    let err = UserAgentLayer::builder()
        .agents_from_str("x/1\ny\u{0}/2")
        .agents(["fine/1"])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");

    // A list of one is that user agent, always.
    let layer = UserAgentLayer::builder()
        .agents(["solo/1"])
        .build()
        .unwrap();
    assert_eq!(layer.agents(), ["solo/1"]);
    // The default builder rotates randomly over the built-in list.
    let layer = UserAgentLayer::builder().build().unwrap();
    assert_eq!(layer.agents().len(), BROWSER_USER_AGENTS.len());
}

#[test]
fn layer_and_service_are_send_sync_clone_debug() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug>() {}
    check::<UserAgentLayer>();
    check::<UserAgent<Backend>>();
    let dbg = format!("{:?}", UserAgentLayer::round_robin());
    assert!(dbg.contains("RoundRobin"), "{dbg}");
}
