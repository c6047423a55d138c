//! The command line's report of failures through proxies and of malformed input URLs
//! (issue 13 §1): the `"proxy"` field of every failure through a proxy, and no password of
//! a malformed URL in the output or the logs.
#![cfg(feature = "cli")]

mod support;

use serde_json::Value;
use support::proxy::{Behavior, TestProxy};
use support::{Reply, TestServer};

/// Runs `fastreq ARGS` with `input` on stdin; returns (exit code, stdout, stderr).
fn fastreq(args: &[&str], input: &str) -> (Option<i32>, String, String) {
    let run = support::cli::fastreq(args, Some(input));
    (run.code, run.stdout, run.stderr)
}

fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn a_failure_after_a_proxy_accepted_names_the_proxy() {
    let server = TestServer::start(|_| Reply::text("ok"));
    let proxy = TestProxy::http()
        .auth("bob", "hunter2")
        .behavior(Behavior::Garbage)
        .start();
    let (code, stdout, stderr) = fastreq(
        &["fetch", "--retries", "0", "--proxy", &proxy.url()],
        &server.url("/x"),
    );
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let line = &lines(&stdout)[0];
    assert_eq!(line["error"]["kind"], "io", "{line}");
    assert_eq!(
        line["proxy"].as_str(),
        Some(format!("http://***@{}", proxy.addr()).as_str()),
        "{line}"
    );
    assert!(!stdout.contains("hunter2") && !stderr.contains("hunter2"));
    assert_eq!(server.hits(), 0);
}

#[test]
fn a_password_in_a_malformed_input_url_is_never_shown() {
    let input = "http:/alice:s3cret@[::1/a\nhttp://h.test/?a=1;token=t0k3n#access_token=4cc355\n";
    let (_, stdout, stderr) = fastreq(
        &[
            "fetch",
            "--retries",
            "0",
            "-vv",
            "--log-format",
            "json",
            "--timeout",
            "1",
        ],
        input,
    );
    let lines = lines(&stdout);
    assert_eq!(lines.len(), 2, "{stdout}{stderr}");
    for secret in ["s3cret", "t0k3n", "4cc355"] {
        assert!(!stdout.contains(secret), "{secret} in {stdout}");
        assert!(!stderr.contains(secret), "{secret} in {stderr}");
    }
    assert_eq!(lines[0]["error"]["kind"], "invalid_request", "{}", lines[0]);
}
