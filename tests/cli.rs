//! The `fastreq` command line, run as a child process against the local test server:
//! JSON lines, exit codes, flags and messages of design §9.
#![cfg(feature = "cli")]

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cli::{
    fastreq, finish, finish_within, parse_lines, spawn, temp_dir, write_file, RUN_LIMIT,
};
use support::{closed_url, route, Reply, TestRequest, TestServer};

/// The test server: `/flaky` answers 503 once then 200, `/login` sets a cookie and
/// redirects to `/check?echo=1`, `/loop` redirects to itself; anything else is
/// `support::route`.
fn test_server() -> TestServer {
    let flaky = Arc::new(AtomicU32::new(0));
    TestServer::start(move |req: TestRequest| match req.path() {
        "/flaky" => {
            if flaky.fetch_add(1, Ordering::SeqCst) == 0 {
                Reply::status(503).body("try again")
            } else {
                Reply::text("finally")
            }
        }
        "/loop" => Reply::status(302).header("location", "/loop"),
        "/login" => Reply::status(302)
            .header("set-cookie", "sid=abc123; Path=/")
            .header("location", "/check?echo=1"),
        _ => route(&req),
    })
}

const LINE_KEYS: [&str; 11] = [
    "attempts",
    "bytes",
    "elapsed_ms",
    "error",
    "final_url",
    "index",
    "proxy",
    "status",
    "url",
    "version",
    "wait_ms",
];

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn assert_response(line: &Value, url: &str, status: u64) {
    assert_eq!(keys(line), BTreeSet::from(LINE_KEYS), "{line}");
    assert_eq!(line["url"], url, "{line}");
    assert_eq!(line["status"], status, "{line}");
    assert!(line["error"].is_null(), "{line}");
    assert!(line["proxy"].is_null(), "{line}");
    assert!(line["elapsed_ms"].as_f64().unwrap() >= 0.0, "{line}");
    assert!(line["bytes"].is_u64(), "{line}");
    assert!(line["attempts"].as_u64().unwrap() >= 1, "{line}");
    assert!(line["final_url"].is_string(), "{line}");
}

fn assert_failure(line: &Value, kind: &str) {
    assert_eq!(keys(line), BTreeSet::from(LINE_KEYS), "{line}");
    assert!(line["status"].is_null(), "{line}");
    assert!(line["bytes"].is_null(), "{line}");
    assert!(line["final_url"].is_null(), "{line}");
    assert_eq!(line["error"]["kind"], kind, "{line}");
    assert!(
        !line["error"]["message"].as_str().unwrap().is_empty(),
        "{line}"
    );
}

#[test]
fn mixed_file_gives_one_line_per_request_and_exit_1() {
    let server = test_server();
    let dir = temp_dir("mixed");
    let good = server.url("/good");
    let missing = server.url("/missing?status=404");
    let flaky = server.url("/flaky");
    let reset = server.url("/reset?fail=reset");
    let closed = closed_url("/nothing");
    let input = format!(
        "# a comment\n{good}\n\n{missing}\r\n{flaky}\n   # indented comment\n{reset}\n\
         not a url\n{{\"url\": 5}}\n  \t\n{closed}\nhttp://user:pw@127.0.0.1:1/x?token=secret\n"
    );
    let file = write_file(&dir, "urls.txt", &input);
    let run = fastreq(&["fetch", &file, "--progress", "none"], None);
    assert_eq!(run.code, Some(1), "{run:?}");
    let lines = run.by_index();
    assert_eq!(lines.len(), 8, "{run:?}");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["index"], i, "{run:?}");
    }
    // Every line is one JSON object on its own line, `index` first.
    assert!(run.stdout.lines().all(|l| l.starts_with("{\"index\":")));

    assert_response(&lines[0], &good, 200);
    assert_eq!(lines[0]["bytes"], 200);
    assert_eq!(lines[0]["attempts"], 1);
    assert_eq!(lines[0]["final_url"], good);

    assert_response(&lines[1], &missing, 404);

    assert_response(&lines[2], &flaky, 200);
    assert_eq!(lines[2]["attempts"], 2, "503 then 200: one retry");
    assert_eq!(lines[2]["bytes"], "finally".len());

    assert_failure(&lines[3], "io");
    assert_eq!(lines[3]["url"], reset);
    assert_eq!(lines[3]["attempts"], 4, "3 retries by default");

    assert_failure(&lines[4], "invalid_request");
    assert_eq!(lines[4]["attempts"], 0);
    assert_eq!(lines[4]["url"], "not a url");
    assert!(lines[4]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("line 8"));

    assert_failure(&lines[5], "invalid_request");
    assert!(lines[5]["url"].is_null());
    assert!(lines[5]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("invalid JSON"));

    assert_failure(&lines[6], "connect");
    assert_eq!(lines[6]["url"], closed);

    // Secrets never reach the output.
    assert_failure(&lines[7], "connect");
    assert_eq!(lines[7]["url"], "http://127.0.0.1:1/x?token=REDACTED");
    assert!(!run.stdout.contains("secret") && !run.stdout.contains("pw@"));

    // The summary on stderr counts by status and by error kind.
    let s = &run.stderr;
    assert!(s.contains("8 requests"), "{s}");
    assert!(s.contains("3 responses, 5 failed"), "{s}");
    assert!(s.contains("200=2") && s.contains("404=1"), "{s}");
    assert!(
        s.contains("connect=2") && s.contains("invalid_request=2") && s.contains("io=1"),
        "{s}"
    );
    assert!(
        s.contains("req/s") && s.contains("p50=") && s.contains("p99="),
        "{s}"
    );
    assert_eq!(server.hits_for("/flaky"), 2);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn all_good_from_stdin_exits_0() {
    let server = TestServer::routes();
    let urls: Vec<String> = (0..300).map(|i| server.url(&format!("/n/{i}"))).collect();
    let input = urls.join("\n");
    // The default one-thread runtime, and a multi-thread one (`--threads 2`).
    for args in [
        &["fetch", "-c", "8"][..],
        &["fetch", "-", "-c", "8", "--threads", "2"],
    ] {
        let run = fastreq(args, Some(&input));
        assert_eq!(run.code, Some(0), "{run:?}");
        let lines = run.by_index();
        assert_eq!(lines.len(), 300);
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(line["index"], i);
            assert_response(line, &urls[i], 200);
        }
        assert!(run.stderr.contains("300 requests"), "{run:?}");
        assert!(run.stderr.contains("200=300"), "{run:?}");
    }
    assert_eq!(server.hits(), 600);
    // Empty input: no lines, exit 0.
    let run = fastreq(&["fetch"], Some("# nothing\n\n"));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.is_empty());
}

#[test]
fn quiet_prints_neither_progress_nor_summary() {
    let server = TestServer::routes();
    let run = fastreq(
        &["fetch", "-q", "--progress", "plain"],
        Some(&server.url("/")),
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.lines().len(), 1);
    assert!(run.stderr.is_empty(), "{run:?}");
}

#[test]
fn json_lines_carry_method_headers_and_body() {
    let server = TestServer::routes();
    let url = server.url("/e?echo=1");
    let input = format!(
        "{{\"method\":\"PUT\",\"url\":\"{url}\",\"headers\":{{\"X-Test\":\"yes\"}},\"body\":\"hello json\"}}\n\
         {{\"url\":\"{url}\"}}\n\
         {{\"url\":\"{url}\",\"headerz\":{{}}}}\n"
    );
    let run = fastreq(&["fetch", "--include-body", "--ordered"], Some(&input));
    assert_eq!(run.code, Some(1), "{run:?}");
    let lines = run.lines();
    assert_eq!(lines.len(), 3, "{run:?}");
    let body = lines[0]["body"].as_str().unwrap();
    assert!(body.starts_with("PUT /e?echo=1 "), "{body}");
    assert!(body.contains("\nx-test: yes\n"), "{body}");
    assert!(body.ends_with("\n\nhello json"), "{body}");
    let body = lines[1]["body"].as_str().unwrap();
    assert!(body.starts_with("GET /e?echo=1 "), "{body}");
    assert!(body.contains("user-agent: fastreq/"), "{body}");
    assert_failure_with_body(&lines[2], "invalid_request");
    assert!(lines[2]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unknown field `headerz`"));
    assert_eq!(server.hits(), 2);
}

fn assert_failure_with_body(line: &Value, kind: &str) {
    assert_eq!(line["error"]["kind"], kind, "{line}");
    assert!(line["body"].is_null(), "{line}");
    assert!(line.as_object().unwrap().contains_key("body"), "{line}");
}

#[test]
fn method_header_and_data_flags_are_defaults() {
    let server = TestServer::routes();
    let dir = temp_dir("defaults");
    let url = server.url("/d?echo=1");
    let input = format!(
        "{url}\n{{\"url\":\"{url}\",\"method\":\"GET\",\"headers\":{{\"X-Default\":\"own\"}},\"body\":\"\"}}\n"
    );
    let run = fastreq(
        &[
            "fetch",
            "--ordered",
            "--include-body",
            "-X",
            "patch",
            "-H",
            "X-Default: d1",
            "-H",
            "X-Other:two words",
            "-d",
            "payload=1",
        ],
        Some(&input),
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines = run.lines();
    let first = lines[0]["body"].as_str().unwrap();
    assert!(first.starts_with("PATCH /d?echo=1 "), "{first}");
    assert!(first.contains("\nx-default: d1\n"), "{first}");
    assert!(first.contains("\nx-other: two words\n"), "{first}");
    assert!(first.ends_with("\n\npayload=1"), "{first}");
    // The JSON line's own method, header and body win over the flags.
    let second = lines[1]["body"].as_str().unwrap();
    assert!(second.starts_with("GET /d?echo=1 "), "{second}");
    assert!(second.contains("\nx-default: own\n"), "{second}");
    assert!(!second.contains("d1"), "{second}");
    assert!(second.contains("\nx-other: two words\n"), "{second}");
    assert!(second.ends_with("\n\n"), "{second}");

    // -d @FILE, and -d alone means POST.
    let data = write_file(&dir, "body.bin", "from a file");
    let run = fastreq(
        &["fetch", "--include-body", "-d", &format!("@{data}")],
        Some(&url),
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    let body = run.lines()[0]["body"].as_str().unwrap().to_owned();
    assert!(body.starts_with("POST /d?echo=1 "), "{body}");
    assert!(body.ends_with("\n\nfrom a file"), "{body}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn ordered_follows_input_order() {
    let server = TestServer::routes();
    let mut urls = vec![server.url("/slow?delay_ms=700")];
    urls.extend((0..5).map(|i| server.url(&format!("/fast/{i}"))));
    let input = urls.join("\n");

    let run = fastreq(&["fetch"], Some(&input));
    assert_eq!(run.code, Some(0), "{run:?}");
    let order: Vec<u64> = run
        .lines()
        .iter()
        .map(|l| l["index"].as_u64().unwrap())
        .collect();
    assert_eq!(order.len(), 6);
    assert_eq!(
        *order.last().unwrap(),
        0,
        "completion order: slow last, {order:?}"
    );

    let run = fastreq(&["fetch", "--ordered"], Some(&input));
    assert_eq!(run.code, Some(0), "{run:?}");
    let order: Vec<u64> = run
        .lines()
        .iter()
        .map(|l| l["index"].as_u64().unwrap())
        .collect();
    assert_eq!(order, [0, 1, 2, 3, 4, 5]);
    for (line, url) in run.lines().iter().zip(&urls) {
        assert_eq!(line["url"], url.as_str());
    }
}

#[test]
fn output_file() {
    let server = TestServer::routes();
    let dir = temp_dir("output");
    let out = dir.join("out.jsonl");
    let input = format!("{}\n{}\n", server.url("/a"), server.url("/b?status=500"));
    let run = fastreq(
        &["fetch", "-o", out.to_str().unwrap(), "--ordered"],
        Some(&input),
    );
    assert_eq!(run.code, Some(0), "any status is a response: {run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    let lines = parse_lines(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[1]["status"], 500);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn save_bodies_uses_safe_names() {
    let server = TestServer::routes();
    let dir = temp_dir("bodies");
    let bodies = dir.join("bodies");
    let input = format!(
        "{}\n{}\n{}\n{}\n",
        server.url("/x?bytes=10"),
        server.url("/../../../escape?bytes=3"),
        closed_url("/gone"),
        server.url("/%2e%2e%2fevil?bytes=5"),
    );
    let run = fastreq(
        &["fetch", "--save-bodies", bodies.to_str().unwrap()],
        Some(&input),
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    let lines = run.by_index();
    let mut names: Vec<String> = std::fs::read_dir(&bodies)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["0.body", "1.body", "3.body"]);
    assert_eq!(std::fs::read(bodies.join("0.body")).unwrap(), b"abcdefghij");
    assert_eq!(std::fs::read(bodies.join("1.body")).unwrap(), b"abc");
    assert_eq!(std::fs::read(bodies.join("3.body")).unwrap(), b"abcde");
    for i in [0, 1, 3] {
        let file = lines[i]["body_file"].as_str().unwrap();
        assert_eq!(Path::new(file), bodies.join(format!("{i}.body")));
    }
    assert!(lines[2]["body_file"].is_null());
    // Nothing was written outside the directory.
    let mut top: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    top.sort();
    assert_eq!(top, ["bodies"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_flags_exit_2_before_any_request() {
    let server = TestServer::routes();
    let dir = temp_dir("badflags");
    let input = write_file(&dir, "urls.txt", &format!("{}\n", server.url("/")));
    let missing = dir.join("missing.txt");
    let missing = missing.to_str().unwrap();
    let dir_str = dir.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["fetch", &input, "-c", "0"], "at least 1"),
        (
            vec!["fetch", &input, "--concurrency", "many"],
            "not a whole number",
        ),
        (
            vec!["fetch", &input, "--per-host-concurrency", "0"],
            "at least 1",
        ),
        (vec!["fetch", &input, "--rate", "0"], "above 0"),
        (vec!["fetch", &input, "--rate=-3"], "above 0"),
        (vec!["fetch", &input, "--burst", "0"], "at least 1"),
        (vec!["fetch", &input, "--threads", "0"], "at least 1"),
        (vec!["fetch", &input, "--timeout", "soon"], "not a number"),
        (vec!["fetch", &input, "--progress", "fancy"], "fancy"),
        (vec!["fetch", &input, "-H", "no colon here"], "Name: value"),
        (vec!["fetch", &input, "-H", "bad name: v"], "header name"),
        (vec!["fetch", &input, "-X", "GE T"], "invalid method"),
        (
            vec!["fetch", &input, "-d", "@/nonexistent/fastreq"],
            "cannot read -d file",
        ),
        (vec!["fetch", missing], "cannot read input"),
        (vec!["fetch", dir_str], "directory"),
        (
            vec!["fetch", &input, "-o", "/nonexistent/dir/out.jsonl"],
            "cannot create output",
        ),
        (
            vec!["fetch", &input, "--user-agents", "/nonexistent/agents.txt"],
            "agents",
        ),
        (vec!["fetch", &input, "-o", &input], "is the input"),
        (vec!["fetch", &input, "--proxy", "not a proxy url"], "prox"),
        (
            vec!["fetch", &input, "--proxy-strategy", "random"],
            "--proxy",
        ),
        (vec!["fetch", &input, "--frobnicate"], "--frobnicate"),
        (vec!["fetch", &input, "--resume"], "--output"),
        (
            vec!["fetch", &input, "-o", "out.jsonl", "--retry-failed"],
            "--resume",
        ),
        (
            vec!["fetch", "-o", "out.jsonl", "--resume"],
            "INPUT as a file",
        ),
        (vec!["fetch", &input, "--max-time", "0"], "above 0"),
        (
            vec!["fetch", &input, "--when-all-proxies-down", "fail"],
            "--proxy",
        ),
        (
            vec![
                "fetch",
                &input,
                "--proxy",
                "http://127.0.0.1:1",
                "--when-all-proxies-down",
                "later",
            ],
            "later",
        ),
        (
            vec!["fetch", &input, "--user-agent", "a", "--random-user-agent"],
            "cannot be used with",
        ),
        (
            vec!["fetch", &input, "--user-agent", "bad\u{7f}agent"],
            "user-agent",
        ),
    ];
    for (args, needle) in cases {
        let run = fastreq(&args, None);
        assert_eq!(run.code, Some(2), "{args:?}: {run:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
        let first = run.stderr.lines().next().unwrap_or("");
        assert!(
            first.starts_with("fastreq: error: ") || first.starts_with("error: "),
            "{args:?}: {run:?}"
        );
        assert!(run.stderr.contains(needle), "{args:?}: {run:?}");
        assert!(!run.stderr.contains("panicked"), "{args:?}: {run:?}");
        if first.starts_with("fastreq: error: ") {
            assert_eq!(run.stderr.lines().count(), 1, "one line: {args:?}: {run:?}");
        }
    }
    assert_eq!(server.hits(), 0, "no request was sent");
    assert_eq!(
        std::fs::read_to_string(&input).unwrap(),
        format!("{}\n", server.url("/")),
        "the input was not overwritten"
    );
    // No subcommand: usage on stderr, status 2. --help and --version: status 0.
    assert_eq!(fastreq(&[], None).code, Some(2));
    let help = fastreq(&["fetch", "--help"], None);
    assert_eq!(help.code, Some(0));
    for needle in [
        "--insecure-skip-tls-verify",
        "--resume",
        "--retry-failed",
        "--max-time",
        "--when-all-proxies-down",
        "exposes your own address",
        "130 SIGINT, 143 SIGTERM, 129 SIGHUP",
        "141 the output was closed",
    ] {
        assert!(help.stdout.contains(needle), "{needle}: {help:?}");
    }
    let version = fastreq(&["--version"], None);
    assert_eq!(version.code, Some(0));
    assert!(version.stdout.contains(env!("CARGO_PKG_VERSION")));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn rate_limit_slows_and_plain_progress_reports() {
    let server = TestServer::routes();
    let input: Vec<String> = (0..12).map(|i| server.url(&format!("/r/{i}"))).collect();
    let run = fastreq(
        &[
            "fetch",
            "--rate",
            "5",
            "--burst",
            "1",
            "--progress",
            "plain",
        ],
        Some(&input.join("\n")),
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.lines().len(), 12);
    // 12 requests at 5/s with a burst of 1: at least 11 intervals of 200 ms.
    assert!(run.elapsed >= Duration::from_millis(2000), "{run:?}");
    assert!(run.elapsed < Duration::from_secs(30), "{run:?}");
    assert!(
        run.stderr.contains("fastreq: progress: "),
        "a plain progress line every 2 s: {run:?}"
    );
    assert_eq!(server.hits(), 12);
}

#[test]
fn redirects_followed_or_not() {
    let server = TestServer::routes();
    let from = server.url("/from?status=302&location=/to");
    let to = server.url("/to");

    let run = fastreq(&["fetch"], Some(&from));
    assert_eq!(run.code, Some(0), "{run:?}");
    let line = &run.lines()[0];
    assert_response(line, &from, 200);
    assert_eq!(line["final_url"], to);

    for flag in [&["--no-redirects"][..], &["--max-redirects", "0"]] {
        let mut args = vec!["fetch"];
        args.extend_from_slice(flag);
        let run = fastreq(&args, Some(&from));
        assert_eq!(run.code, Some(0), "{run:?}");
        let line = &run.lines()[0];
        assert_response(line, &from, 302);
        assert_eq!(line["final_url"], from);
    }
    assert_eq!(server.hits_for("/to"), 1);

    // A redirect loop is a too_many_redirects failure.
    let looping = test_server();
    let run = fastreq(
        &["fetch", "--max-redirects", "3"],
        Some(&looping.url("/loop")),
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_failure(&run.lines()[0], "too_many_redirects");
    assert_eq!(
        looping.hits_for("/loop"),
        4,
        "the first request and 3 redirects"
    );
}

#[test]
fn timeouts_are_reported() {
    let server = TestServer::routes();
    let run = fastreq(
        &["fetch", "--timeout", "0.3", "--retries", "0"],
        Some(&server.url("/slow?delay_ms=5000")),
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    let line = &run.lines()[0];
    assert_failure(line, "timeout");
    assert_eq!(line["attempts"], 1);
    let ms = line["elapsed_ms"].as_f64().unwrap();
    assert!((250.0..4000.0).contains(&ms), "{line}");
    assert!(run.stderr.contains("timeout=1"), "{run:?}");
}

#[test]
fn user_agent_flags() {
    let server = TestServer::routes();
    let dir = temp_dir("ua");
    let url = server.url("/ua?echo=1");
    let agents = write_file(&dir, "agents.txt", "# mine\nfile-agent/9\n");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], "user-agent: fastreq/"),
        (
            vec!["--user-agent", "my-agent/1"],
            "user-agent: my-agent/1\n",
        ),
        (vec!["--user-agents", &agents], "user-agent: file-agent/9\n"),
        (vec!["--random-user-agent"], "user-agent: Mozilla/5.0"),
        (
            vec!["-H", "User-Agent: header-agent"],
            "user-agent: header-agent\n",
        ),
    ];
    for (flags, needle) in cases {
        let mut args = vec!["fetch", "--include-body"];
        args.extend_from_slice(&flags);
        let run = fastreq(&args, Some(&url));
        assert_eq!(run.code, Some(0), "{run:?}");
        let body = run.lines()[0]["body"].as_str().unwrap().to_owned();
        assert!(body.contains(needle), "{flags:?}: {body}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cookies_on_by_default_and_off_with_no_cookies() {
    let server = test_server();
    let url = server.url("/login");
    let run = fastreq(&["fetch", "--include-body"], Some(&url));
    assert_eq!(run.code, Some(0), "{run:?}");
    let line = &run.lines()[0];
    assert_eq!(line["status"], 200);
    assert!(
        line["body"]
            .as_str()
            .unwrap()
            .contains("cookie: sid=abc123"),
        "{line}"
    );
    let run = fastreq(&["fetch", "--include-body", "--no-cookies"], Some(&url));
    assert_eq!(run.code, Some(0), "{run:?}");
    let line = &run.lines()[0];
    assert!(
        !line["body"].as_str().unwrap().contains("cookie:"),
        "{line}"
    );
}

#[test]
fn tls_verification_http1_only_and_the_insecure_warning() {
    let server = TestServer::builder().tls().start(|req| route(&req));
    let url = server.url("/tls");

    let run = fastreq(&["fetch", "--retries", "0"], Some(&url));
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_failure(&run.lines()[0], "tls");
    assert!(!run.stderr.contains("WARNING"));

    let run = fastreq(&["fetch", "-q", "--insecure-skip-tls-verify"], Some(&url));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_response(&run.lines()[0], &url, 200);
    assert!(
        run.stderr.contains("WARNING") && run.stderr.contains("NOT verified"),
        "loud even with -q: {run:?}"
    );
    assert_eq!(server.http2_requests(), 1, "HTTP/2 by ALPN by default");

    let run = fastreq(
        &["fetch", "--insecure-skip-tls-verify", "--http1-only"],
        Some(&url),
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(server.http1_requests(), 1);
    assert_eq!(server.http2_requests(), 1);
}

#[test]
fn verbose_logs_in_json() {
    let server = TestServer::routes();
    let run = fastreq(
        &["fetch", "-v", "--log-format", "json", "--progress", "none"],
        Some(&server.url("/")),
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    let logs: Vec<Value> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        logs.iter()
            .any(|l| l["fields"]["message"] == "fetch starting"),
        "{run:?}"
    );
    // No logs without -v.
    let run = fastreq(&["fetch", "--progress", "none"], Some(&server.url("/")));
    assert!(!run.stderr.contains("fetch starting"), "{run:?}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_flushes_prints_the_summary_and_exits_130() {
    let server = TestServer::routes();
    let dir = temp_dir("sigint");
    let fast = server.url("/fast");
    let slow = server.url("/slow?delay_ms=30000");
    let input = write_file(&dir, "urls.txt", &format!("{fast}\n{slow}\n{slow}\n"));
    let started = Instant::now();
    let child = spawn(&["fetch", &input, "--progress", "none"], false);
    // Wait until the slow requests are in flight (the handler is installed before that).
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.hits_for("/slow") < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.hits_for("/slow") >= 2, "requests never started");
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let run = finish(child, started);
    assert_eq!(run.code, Some(130), "{run:?}");
    assert!(signalled.elapsed() < Duration::from_secs(10), "{run:?}");
    // What completed was written and flushed; the cancelled ones have no line.
    let lines = run.lines();
    assert_eq!(lines.len(), 1, "{run:?}");
    assert_response(&lines[0], &fast, 200);
    assert!(
        run.stderr
            .contains("interrupted by SIGINT after 1 requests"),
        "{run:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn proxies_from_flags_and_file_are_used_and_reported() {
    use support::proxy::TestProxy;
    let server = TestServer::routes();
    let first = TestProxy::http().auth("bob", "hunter2").start();
    let second = TestProxy::http().start();
    let dir = temp_dir("proxies");
    let file = write_file(&dir, "proxies.txt", &format!("# pool\n{}\n", second.url()));
    let input: String = (0..6).map(|i| server.url(&format!("/p{i}\n"))).collect();
    let first_url = first.url();
    let run = fastreq(
        &["fetch", "--proxy", &first_url, "--proxies", &file],
        Some(&input),
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines = run.lines();
    assert_eq!(lines.len(), 6);
    let mut via = BTreeSet::new();
    for line in &lines {
        let proxy = line["proxy"].as_str().expect("proxy reported");
        assert!(!proxy.contains("hunter2"), "password leaked: {proxy}");
        via.insert(proxy.to_owned());
    }
    assert_eq!(via.len(), 2, "round robin over both: {via:?}");
    assert_eq!(first.forwarded() + second.forwarded(), 6);
    assert!(!run.stdout.contains("hunter2") && !run.stderr.contains("hunter2"));

    // A dead proxy: the failure names it (redacted), the run goes on, exit 1.
    let dead = format!("http://bob:hunter2@{}", support::closed_port());
    let run = fastreq(
        &["fetch", "--retries", "0", "--proxy", &dead],
        Some(&server.url("/x")),
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    let line = &run.lines()[0];
    assert_eq!(line["error"]["kind"], "proxy", "{line}");
    assert!(line["proxy"].as_str().unwrap().contains("***"), "{line}");
    assert!(!run.stdout.contains("hunter2") && !run.stderr.contains("hunter2"));
    let _ = std::fs::remove_dir_all(dir);
}

/// Waits (at most 20 s) until `ready()`; panics naming `what` otherwise.
fn wait_until(what: &str, ready: impl FnMut() -> bool) {
    wait_until_within(Duration::from_secs(20), what, ready)
}

/// Waits (at most `limit`) until `ready()`; panics naming `what` otherwise.
fn wait_until_within(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(unix)]
fn send_signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name}");
}

/// The fast requests that were served before the signal all finished (their concurrency
/// slots went to the slow ones), so the set of outcomes to write is exactly known.
#[cfg(unix)]
#[test]
fn sigterm_and_sighup_write_every_finished_outcome() {
    for (signal, code) in [("TERM", 143), ("HUP", 129)] {
        let server = TestServer::routes();
        let dir = temp_dir("sigterm");
        let mut lines: Vec<String> = (0..100).map(|i| server.url(&format!("/f/{i}"))).collect();
        lines.extend((0..10).map(|_| server.url("/slow?delay_ms=30000")));
        let input = write_file(&dir, "urls.txt", &lines.join("\n"));
        let out = dir.join("out.jsonl");
        let started = Instant::now();
        let child = spawn(
            &[
                "fetch",
                &input,
                "-c",
                "4",
                "-o",
                out.to_str().unwrap(),
                "--progress",
                "none",
            ],
            false,
        );
        // 4 slow requests hold the 4 slots: every fast one has finished.
        wait_until("the slow requests hold every slot", || {
            server.hits_for("/slow") == 4
        });
        let served_fast = server.hits() - 4;
        assert_eq!(served_fast, 100);
        send_signal(&child, signal);
        let signalled = Instant::now();
        let run = finish(child, started);
        assert_eq!(run.code, Some(code), "SIG{signal}: {run:?}");
        assert!(signalled.elapsed() < Duration::from_secs(10), "{run:?}");
        let written = parse_lines(&std::fs::read_to_string(&out).unwrap());
        let indexes: BTreeSet<u64> = written
            .iter()
            .map(|l| l["index"].as_u64().unwrap())
            .collect();
        assert_eq!(written.len() as u64, served_fast, "SIG{signal}: {run:?}");
        assert_eq!(
            indexes,
            (0..100).collect(),
            "every served response has its line"
        );
        for line in &written {
            assert_eq!(line["status"], 200, "{line}");
        }
        assert!(
            run.stderr
                .contains(&format!("interrupted by SIG{signal} after 100 requests")),
            "{run:?}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// With --ordered, outcomes that finished behind a slow first request are written too (in
/// input order, with a gap for the cancelled one) rather than dropped with the stream.
#[cfg(unix)]
#[test]
fn ordered_interrupt_writes_the_outcomes_held_back() {
    let server = TestServer::routes();
    let dir = temp_dir("ordered-int");
    let slow = server.url("/slow?delay_ms=30000");
    let mut lines = vec![slow.clone()];
    lines.extend((1..=5).map(|i| server.url(&format!("/f/{i}"))));
    lines.extend((0..10).map(|_| slow.clone()));
    let input = write_file(&dir, "urls.txt", &lines.join("\n"));
    let started = Instant::now();
    let child = spawn(
        &[
            "fetch",
            &input,
            "-c",
            "2",
            "--ordered",
            "--progress",
            "none",
        ],
        false,
    );
    // Index 0 and index 6 hold both slots: 1..=5 have finished, held back behind 0.
    wait_until("two slow requests hold both slots", || {
        server.hits_for("/slow") == 2
    });
    assert_eq!(server.hits(), 7);
    send_signal(&child, "INT");
    let run = finish(child, started);
    assert_eq!(run.code, Some(130), "{run:?}");
    let order: Vec<u64> = run
        .lines()
        .iter()
        .map(|l| l["index"].as_u64().unwrap())
        .collect();
    assert_eq!(order, [1, 2, 3, 4, 5], "{run:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_closed_output_stops_quietly_with_141() {
    let server = TestServer::routes();
    let dir = temp_dir("epipe");
    let urls: Vec<String> = (0..100)
        .map(|i| server.url(&format!("/p/{i}?delay_ms=100")))
        .collect();
    let input = write_file(&dir, "urls.txt", &urls.join("\n"));
    let started = Instant::now();
    let mut child = spawn(&["fetch", &input, "-c", "2", "--progress", "none"], false);
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    {
        // `| head -1`: read one line, then close the pipe.
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        assert!(first.starts_with("{\"index\":"), "{first}");
    }
    let closed = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            panic!("fastreq did not stop after its output was closed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = stderr.join().unwrap();
    assert_eq!(status.code(), Some(141), "{stderr}");
    assert!(
        closed.elapsed() < Duration::from_secs(5),
        "stopped soon after: {stderr}"
    );
    assert!(!stderr.contains("error"), "no error line: {stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert!(stderr.contains("fastreq: output closed after"), "{stderr}");
    // 100 requests of 100 ms, 2 at a time, would take 5 s: the rest was not sent.
    assert!(server.hits() < 60, "{} requests sent", server.hits());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn max_time_bounds_the_whole_request() {
    let server = TestServer::routes();
    let run = fastreq(
        &["fetch", "--max-time", "0.5"],
        Some(&server.url("/slow?delay_ms=5000")),
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    let line = &run.lines()[0];
    assert_failure(line, "timeout");
    let ms = line["elapsed_ms"].as_f64().unwrap();
    assert!((450.0..2500.0).contains(&ms), "{line}");
    assert!(run.elapsed < Duration::from_secs(4), "{run:?}");
}

#[test]
fn when_all_proxies_down_fail_or_direct() {
    let server = TestServer::routes();
    let dead = format!("http://bob:hunter2@{}", support::closed_port());
    // The only proxy fails and cools down; the retry finds none.
    let run = fastreq(
        &[
            "fetch",
            "--retries",
            "1",
            "--proxy",
            &dead,
            "--when-all-proxies-down",
            "fail",
        ],
        Some(&server.url("/x")),
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    let line = &run.lines()[0];
    assert_failure(line, "no_proxy_available");
    assert!(run.elapsed < Duration::from_secs(10), "{run:?}");
    assert_eq!(server.hits(), 0);

    let run = fastreq(
        &[
            "fetch",
            "--retries",
            "1",
            "--proxy",
            &dead,
            "--when-all-proxies-down",
            "direct",
        ],
        Some(&server.url("/x")),
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    let line = &run.lines()[0];
    assert_eq!(line["status"], 200, "{line}");
    assert!(line["proxy"].is_null(), "sent directly: {line}");
    assert_eq!(line["attempts"], 2, "{line}");
    assert_eq!(server.hits(), 1);
    assert!(!run.stdout.contains("hunter2") && !run.stderr.contains("hunter2"));
}

/// Parses an output file: index → line, asserting one line per index.
fn one_line_per_index(text: &str) -> std::collections::BTreeMap<u64, Value> {
    let mut by_index = std::collections::BTreeMap::new();
    for line in parse_lines(text) {
        let index = line["index"].as_u64().unwrap();
        assert!(
            by_index.insert(index, line).is_none(),
            "two lines for index {index}"
        );
    }
    by_index
}

#[cfg(unix)]
#[test]
fn resume_after_sigkill_gives_exactly_one_line_per_index() {
    const N: u64 = 50_000;
    let server = TestServer::builder().track_paths(false).routes();
    let dir = temp_dir("resume-kill");
    let urls: Vec<String> = (0..N).map(|i| server.url(&format!("/k/{i}"))).collect();
    let input = write_file(&dir, "urls.txt", &urls.join("\n"));
    let out = dir.join("out.jsonl");
    let out_s = out.to_str().unwrap();
    let args = [
        "fetch",
        &input,
        "-o",
        out_s,
        "-c",
        "64",
        "--progress",
        "none",
    ];

    // A debug build on a loaded machine may do only ~1,000 requests a second: the limits
    // of this test are wider than the others'.
    let limit = Duration::from_secs(300);
    let mut child = spawn(&args, false);
    wait_until_within(limit, "a fifth of the outcomes are written", || {
        std::fs::metadata(&out).is_ok_and(|m| m.len() > 2_000_000)
    });
    child.kill().unwrap(); // SIGKILL: no flush, no summary
    let _ = child.wait();
    let first = std::fs::read(&out).unwrap();
    let whole = first.iter().filter(|&&b| b == b'\n').count() as u64;
    assert!(whole < N, "killed mid-way ({whole} lines)");
    let served_first = server.hits();

    let mut resumed = args.to_vec();
    resumed.push("--resume");
    let run = finish_within(spawn(&resumed, false), Instant::now(), limit);
    assert_eq!(run.code, Some(0), "{run:?}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.ends_with('\n'));
    let by_index = one_line_per_index(&text);
    assert_eq!(by_index.len() as u64, N);
    for (index, line) in &by_index {
        assert_eq!(line["url"], urls[*index as usize].as_str(), "{line}");
        assert_eq!(line["status"], 200, "{line}");
    }
    // Only the missing ones ran again: the kept lines were skipped.
    let skipped: u64 = run
        .stderr
        .split("; ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no skipped count: {run:?}"));
    // Every whole line is kept; so is a last one cut just before its newline.
    assert!(
        skipped == whole || skipped == whole + 1,
        "{skipped} skipped, {whole} whole lines: {run:?}"
    );
    let sent_again = server.hits() - served_first;
    assert_eq!(sent_again, N - skipped, "{run:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn resume_cuts_a_torn_line_and_runs_only_what_is_missing() {
    let server = TestServer::routes();
    let dir = temp_dir("resume-torn");
    let urls: Vec<String> = (0..20).map(|i| server.url(&format!("/t/{i}"))).collect();
    let input = write_file(&dir, "urls.txt", &urls.join("\n"));
    let out = dir.join("out.jsonl");
    let out_s = out.to_str().unwrap();
    let run = fastreq(&["fetch", &input, "-o", out_s, "--ordered"], None);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(server.hits(), 20);

    // Drop the lines of 3, 7 and 11, and tear the last one (19) in half, as a crash would.
    let text = std::fs::read_to_string(&out).unwrap();
    let mut kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            let index = serde_json::from_str::<Value>(l).unwrap()["index"].as_u64();
            ![Some(3), Some(7), Some(11)].contains(&index)
        })
        .collect();
    let last = kept.pop().unwrap();
    let mut damaged = kept.join("\n");
    damaged.push('\n');
    damaged.push_str(&last[..last.len() / 2]);
    std::fs::write(&out, &damaged).unwrap();

    let run = fastreq(
        &["fetch", &input, "-o", out_s, "--resume", "--ordered"],
        None,
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stderr.contains("incomplete") && run.stderr.contains("line 17"),
        "the torn line is reported: {run:?}"
    );
    assert!(
        run.stderr.contains("4 requests in") && run.stderr.contains("16 skipped"),
        "{run:?}"
    );
    assert_eq!(server.hits(), 24, "only 3, 7, 11 and 19 ran again");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.starts_with(&kept.join("\n")),
        "the kept lines are untouched"
    );
    let by_index = one_line_per_index(&text);
    assert_eq!(
        by_index.keys().copied().collect::<Vec<_>>(),
        (0..20).collect::<Vec<_>>()
    );
    // The appended lines, in input order with --ordered.
    let appended: Vec<u64> = parse_lines(&text)[16..]
        .iter()
        .map(|l| l["index"].as_u64().unwrap())
        .collect();
    assert_eq!(appended, [3, 7, 11, 19]);

    // Nothing left to do: nothing is sent.
    let run = fastreq(&["fetch", &input, "-o", out_s, "--resume"], None);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("0 requests in"), "{run:?}");
    assert!(run.stderr.contains("20 skipped"), "{run:?}");
    assert_eq!(server.hits(), 24);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), text);

    // A missing output: the run starts from the beginning, and says so.
    let fresh = dir.join("fresh.jsonl");
    let run = fastreq(
        &["fetch", &input, "-o", fresh.to_str().unwrap(), "--resume"],
        None,
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("does not exist yet"), "{run:?}");
    assert_eq!(
        one_line_per_index(&std::fs::read_to_string(&fresh).unwrap()).len(),
        20
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn resume_refuses_a_changed_input() {
    let server = TestServer::routes();
    let dir = temp_dir("resume-changed");
    let urls: Vec<String> = (0..10)
        .map(|i| server.url(&format!("/c/{i}?token=s3cret")))
        .collect();
    let input = write_file(&dir, "urls.txt", &urls.join("\n"));
    let out = dir.join("out.jsonl");
    let out_s = out.to_str().unwrap();
    let run = fastreq(&["fetch", &input, "-o", out_s], None);
    assert_eq!(run.code, Some(0), "{run:?}");
    // Index 3 of the output is missing, so a resume would send it.
    let text: String = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).unwrap()["index"] != 3)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&out, &text).unwrap();
    let hits = server.hits();

    // A comment and a blank line do not shift the indexes: this is the same input.
    let mut same = vec!["# the same requests".to_owned(), String::new()];
    same.extend(urls.iter().cloned());
    let same = write_file(&dir, "same.txt", &same.join("\n"));
    // Another URL at index 6.
    let mut other = urls.clone();
    other[6] = server.url("/c/other?token=s3cret");
    let other = write_file(&dir, "other.txt", &other.join("\n"));
    // A shorter input.
    let short = write_file(&dir, "short.txt", &urls[..5].join("\n"));

    for (input, needle) in [(&other, "at index 6"), (&short, "fewer requests")] {
        let run = fastreq(&["fetch", input, "-o", out_s, "--resume"], None);
        assert_eq!(run.code, Some(2), "{run:?}");
        assert!(run.stderr.contains(needle), "{run:?}");
        assert!(run.stderr.contains("nothing was run"), "{run:?}");
        assert!(!run.stderr.contains("s3cret"), "redacted: {run:?}");
        assert_eq!(server.hits(), hits, "no request sent");
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            text,
            "output untouched"
        );
    }
    let run = fastreq(&["fetch", &same, "-o", out_s, "--resume"], None);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(server.hits(), hits + 1);
    assert_eq!(
        one_line_per_index(&std::fs::read_to_string(&out).unwrap()).len(),
        10
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn resume_keeps_failures_unless_retry_failed() {
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = {
        let healthy = healthy.clone();
        TestServer::start(move |req: TestRequest| {
            if req.path().starts_with("/sick") && !healthy.load(Ordering::SeqCst) {
                Reply::reset_before_headers()
            } else {
                route(&req)
            }
        })
    };
    let dir = temp_dir("resume-failed");
    let urls: Vec<String> = (0..10)
        .map(|i| {
            let kind = if i % 3 == 1 { "sick" } else { "well" };
            server.url(&format!("/{kind}/{i}"))
        })
        .collect();
    let input = write_file(&dir, "urls.txt", &urls.join("\n"));
    let out = dir.join("out.jsonl");
    let out_s = out.to_str().unwrap();
    let run = fastreq(&["fetch", &input, "-o", out_s, "--retries", "0"], None);
    assert_eq!(run.code, Some(1), "{run:?}");
    let failed: Vec<u64> = one_line_per_index(&std::fs::read_to_string(&out).unwrap())
        .values()
        .filter(|l| !l["error"].is_null())
        .map(|l| l["index"].as_u64().unwrap())
        .collect();
    assert_eq!(failed, [1, 4, 7]);
    let hits = server.hits();

    // Failures are outcomes too: kept, not sent again.
    healthy.store(true, Ordering::SeqCst);
    let run = fastreq(&["fetch", &input, "-o", out_s, "--resume"], None);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("10 skipped"), "{run:?}");
    assert_eq!(server.hits(), hits);

    // --retry-failed: sent again, and the file still has one line per index.
    let run = fastreq(
        &["fetch", &input, "-o", out_s, "--resume", "--retry-failed"],
        None,
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stderr.contains("3 requests in") && run.stderr.contains("7 skipped"),
        "{run:?}"
    );
    assert_eq!(server.hits(), hits + 3);
    let by_index = one_line_per_index(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(by_index.len(), 10);
    assert!(
        by_index.values().all(|l| l["status"] == 200),
        "{by_index:?}"
    );
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// URLs and error messages with quotes, backslashes, control characters and non-ASCII come
/// out as valid JSON that reads back to the same text.
#[test]
fn json_lines_escape_urls_and_messages() {
    let nasty = [
        "ftp://h.test/\"q\"\\x\u{1}\u{1f}\u{7f}/é/日本/\u{1F600}",
        "gopher://h.test/\u{8}\u{c}\u{1b}'<>",
    ];
    // The same URLs as JSON input lines (the control characters escaped there).
    let as_json: Vec<String> = nasty
        .iter()
        .map(|u| serde_json::json!({ "url": u }).to_string())
        .collect();
    let input = format!(
        "{}\n{}\n{}\n{}\n",
        nasty[0], nasty[1], as_json[0], as_json[1]
    );
    let run = fastreq(&["fetch", "--ordered"], Some(&input));
    assert_eq!(run.code, Some(1), "{run:?}");
    let lines = run.lines();
    assert_eq!(lines.len(), 4, "{run:?}");
    for (i, line) in lines.iter().enumerate() {
        let url = nasty[i % 2];
        assert_eq!(line["index"], i);
        assert_eq!(line["url"], url, "{line}");
        assert_failure(line, "invalid_request");
        let message = line["error"]["message"].as_str().unwrap();
        assert!(message.contains(url), "{message}");
    }
    // Control characters are escaped, everything else is written as is (UTF-8).
    let first = run.stdout.lines().next().unwrap();
    assert!(first.contains(r#"\"q\"\\x\u0001\u001f"#), "{first}");
    assert!(first.contains("\u{7f}/é/日本/\u{1F600}"), "{first}");
    assert!(!first.contains('\u{1}'), "{first}");
}
