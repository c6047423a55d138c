//! The `fastreq` command line (issue 14): scheme-less input, output filters and formats,
//! the new fields of the JSON line (`wait_ms`, `version`, `headers`), the summary and
//! `--cacert`. Run as a child process against the local test server.
#![cfg(feature = "cli")]

mod support;

use std::sync::atomic::Ordering;

use serde_json::Value;
use support::cli::{temp_dir, write_file, Run};
use support::{route, Reply, TestRequest, TestServer};

/// Runs `fastreq ARGS` with `stdin` as its input.
fn fastreq(args: &[&str], stdin: &str) -> Run {
    support::cli::fastreq(args, Some(stdin))
}

/// `/moved` redirects to `/ok`, `/gone` is 404; anything else is `support::route`.
fn test_server() -> TestServer {
    TestServer::start(|req: TestRequest| match req.path() {
        "/moved" => Reply::status(301).header("location", "/ok"),
        "/gone" => Reply::status(404).body("gone"),
        _ => route(&req),
    })
}

/// `http://127.0.0.1:PORT/x` -> `127.0.0.1:PORT/x`.
fn without_scheme(url: &str) -> &str {
    url.strip_prefix("http://").expect("an http URL")
}

#[test]
fn lines_without_a_scheme_are_fetched_over_http() {
    let server = test_server();
    let plain = server.url("/plain");
    let json_url = server.url("/json");
    let input = format!(
        "{}\n{{\"url\":\"{}\"}}\n",
        without_scheme(&plain),
        without_scheme(&json_url)
    );
    let run = fastreq(&["fetch", "-q"], &input);
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines = run.by_index();
    assert_eq!(lines.len(), 2, "{run:?}");
    assert_eq!(lines[0]["url"], plain, "{run:?}");
    assert_eq!(lines[0]["status"], 200, "{run:?}");
    assert_eq!(lines[1]["url"], json_url, "{run:?}");
    assert_eq!(lines[1]["status"], 200, "{run:?}");
    assert_eq!(server.hits(), 2);
}

#[test]
fn match_and_filter_status_keep_the_summary_whole() {
    let server = test_server();
    let ok = server.url("/ok");
    let gone = server.url("/gone");
    let moved = server.url("/moved");
    let bad = server.url("/x?status=500");
    let input = format!("{ok}\n{gone}\n{moved}\n{bad}\nnot a url\n");

    // --match-status: only these; failures dropped (no `error` in the list).
    let run = fastreq(
        &[
            "fetch",
            "--no-redirects",
            "--retries",
            "0",
            "--match-status",
            "200,3xx",
        ],
        &input,
    );
    assert_eq!(
        run.code,
        Some(1),
        "the invalid line still fails the run: {run:?}"
    );
    let lines = run.by_index();
    let kept: Vec<_> = lines.iter().map(|l| l["index"].as_u64().unwrap()).collect();
    assert_eq!(kept, [0, 2], "{run:?}");
    assert!(
        run.stderr.contains("5 requests") && run.stderr.contains("1 failed"),
        "the summary counts every outcome: {run:?}"
    );

    // `error` keeps the failures too.
    let run = fastreq(
        &[
            "fetch",
            "-q",
            "--retries",
            "0",
            "--match-status",
            "2xx,error",
        ],
        &input,
    );
    let kept: Vec<_> = run
        .by_index()
        .iter()
        .map(|l| l["index"].as_u64().unwrap())
        .collect();
    assert_eq!(kept, [0, 2, 4], "{run:?}");

    // --filter-status: not these; failures kept.
    let run = fastreq(
        &[
            "fetch",
            "-q",
            "--retries",
            "0",
            "--filter-status",
            "404,5xx",
        ],
        &input,
    );
    let lines = run.by_index();
    let kept: Vec<_> = lines.iter().map(|l| l["index"].as_u64().unwrap()).collect();
    assert_eq!(kept, [0, 2, 4], "{run:?}");
    assert_eq!(lines[2]["error"]["kind"], "invalid_request", "{run:?}");

    for bad in ["20", "6xxx", "abc", ""] {
        let run = fastreq(&["fetch", "--match-status", bad], "");
        assert_eq!(run.code, Some(2), "{bad}: {run:?}");
    }
}

#[test]
fn filtered_outcomes_are_not_fetched_again_on_resume() {
    let server = test_server();
    let dir = temp_dir("filter-resume");
    let urls: Vec<String> = (0..6)
        .map(|i| {
            if i % 2 == 0 {
                server.url(&format!("/ok{i}"))
            } else {
                server.url(&format!("/x{i}?status=404"))
            }
        })
        .collect();
    let input = write_file(&dir, "in.txt", &(urls.join("\n") + "\n"));
    let out = dir.join("out.jsonl");
    let out_s = out.to_str().unwrap();
    let side = dir.join("out.jsonl.filtered");

    let run = fastreq(
        &["fetch", "-q", &input, "-o", out_s, "--filter-status", "404"],
        "",
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    let kept = std::fs::read_to_string(&out).unwrap();
    assert_eq!(kept.lines().count(), 3, "{kept}");
    let brief = std::fs::read_to_string(&side).unwrap();
    let recorded: Vec<Value> = brief
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut indexes: Vec<_> = recorded
        .iter()
        .map(|l| l["index"].as_u64().unwrap())
        .collect();
    indexes.sort();
    assert_eq!(indexes, [1, 3, 5], "{brief}");
    assert!(recorded.iter().all(|l| l["status"] == 404), "{brief}");

    // Nothing left to run: neither the kept nor the filtered outcomes are fetched again.
    let hits = server.hits();
    let run = fastreq(
        &[
            "fetch",
            &input,
            "-o",
            out_s,
            "--resume",
            "--filter-status",
            "404",
        ],
        "",
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(server.hits(), hits, "{run:?}");
    assert!(run.stderr.contains("6 skipped"), "{run:?}");

    // Without --resume the file starts over, and FILE.filtered of the earlier run goes.
    let run = fastreq(&["fetch", "-q", &input, "-o", out_s], "");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 6);
    assert!(!side.exists());
}

#[test]
fn header_fields_and_include_headers() {
    let server = test_server();
    let ok = server.url("/ok");
    let moved = server.url("/moved");
    let input = format!("{ok}\n{moved}\nnot a url\n");
    let run = fastreq(
        &[
            "fetch",
            "-q",
            "--no-redirects",
            "--header-fields",
            "Content-Type,location",
        ],
        &input,
    );
    let lines = run.by_index();
    assert_eq!(lines.len(), 3, "{run:?}");
    assert_eq!(
        lines[0]["headers"],
        serde_json::json!({"content-type": "application/json"}),
        "{run:?}"
    );
    assert_eq!(lines[1]["headers"]["location"], "/ok", "{run:?}");
    assert!(lines[2]["headers"].is_null(), "{run:?}");

    let run = fastreq(&["fetch", "-q", "--include-headers"], &format!("{ok}\n"));
    let line = &run.by_index()[0];
    let headers = line["headers"].as_object().expect("an object");
    assert!(
        headers.contains_key("content-type") && headers.contains_key("content-length"),
        "{run:?}"
    );

    let run = fastreq(&["fetch", "--header-fields", "bad name"], "");
    assert_eq!(run.code, Some(2), "{run:?}");
    let run = fastreq(&["fetch", "--format", "csv", "--include-headers"], "");
    assert_eq!(run.code, Some(2), "{run:?}");
}

#[test]
fn csv_output_has_a_header_row_and_quotes() {
    let server = test_server();
    let ok = server.url("/ok?a=1,2");
    let input = format!("{ok}\n\"quoted\" line\n");
    let run = fastreq(&["fetch", "-q", "--format", "csv", "--ordered"], &input);
    assert_eq!(run.code, Some(1), "{run:?}");
    let rows: Vec<&str> = run.stdout.split("\r\n").collect();
    assert_eq!(
        rows[0],
        "index,url,status,elapsed_ms,wait_ms,bytes,attempts,error_kind,error"
    );
    assert!(rows[1].starts_with(&format!("0,\"{ok}\",200,")), "{run:?}");
    assert!(rows[1].ends_with(",200,1,,"), "{run:?}");
    assert!(
        rows[2].starts_with(r#"1,"""quoted"" line",,0.0,0.0,,0,invalid_request,"#),
        "{run:?}"
    );
    assert_eq!(rows.len(), 4, "{run:?}");
    assert_eq!(rows[3], "");

    let dir = temp_dir("csv-resume");
    let input = write_file(&dir, "in.txt", &format!("{ok}\n"));
    let out = dir.join("out.csv");
    let run = fastreq(
        &[
            "fetch",
            &input,
            "--format",
            "csv",
            "-o",
            out.to_str().unwrap(),
            "--resume",
        ],
        "",
    );
    assert_eq!(run.code, Some(2), "{run:?}");
}

#[test]
fn summary_counts_retries_and_shows_an_example_per_error_kind() {
    let flaky = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let server = TestServer::start(move |req: TestRequest| {
        if req.path() == "/flaky" && flaky.fetch_add(1, Ordering::SeqCst) == 0 {
            return Reply::status(503).body("try again");
        }
        route(&req)
    });
    let input = format!(
        "{}\n{}\n{}\nnot a url\n",
        server.url("/flaky"),
        server.url("/ok"),
        support::closed_url("/down")
    );
    let run = fastreq(&["fetch", "--retries", "1", "--progress", "none"], &input);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("4 requests") && run.stderr.contains("; 2 retried\n"),
        "the flaky response and the refused connection: {run:?}"
    );
    assert!(
        run.stderr.contains("    invalid_request, e.g.: "),
        "{run:?}"
    );
    assert!(run.stderr.contains("    connect, e.g.: "), "{run:?}");
}

#[test]
fn wait_ms_separates_queueing_from_the_wire() {
    let server = test_server();
    let input: String = (0..3)
        .map(|i| server.url(&format!("/w{i}")) + "\n")
        .collect();
    // Three requests to one host at 5 per second: admitted at 0, 0.2 and 0.4 s.
    let run = fastreq(
        &["fetch", "--per-host-rate", "5", "--progress", "none"],
        &input,
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines = run.by_index();
    let mut waits: Vec<f64> = lines
        .iter()
        .map(|l| l["wait_ms"].as_f64().unwrap())
        .collect();
    waits.sort_by(f64::total_cmp);
    assert!(waits[0] < 100.0, "{run:?}");
    assert!(waits[2] >= 300.0 && waits[2] < 1000.0, "{run:?}");
    for l in &lines {
        let (elapsed, wait) = (
            l["elapsed_ms"].as_f64().unwrap(),
            l["wait_ms"].as_f64().unwrap(),
        );
        assert!(wait <= elapsed, "{l}");
        assert!(elapsed - wait < 250.0, "the wire time is small: {l}");
    }
    // The summary's percentiles are of the wire time, not of the queueing.
    let p99 = run
        .stderr
        .split("p99=")
        .nth(1)
        .and_then(|s| s.split("ms").next())
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no p99: {run:?}"));
    assert!(p99 < 250.0, "{run:?}");
    assert!(run.stderr.contains("on the wire"), "{run:?}");
}

#[test]
fn plain_progress_shows_waiting_requests_apart_from_those_in_flight() {
    let server = test_server();
    let input: String = (0..4)
        .map(|i| server.url(&format!("/p{i}")) + "\n")
        .collect();
    // One per second to one host: at the first progress line (2 s) one or two requests
    // are still waiting for the host's rate token, none on the wire.
    let run = fastreq(
        &["fetch", "--per-host-rate", "1", "--progress", "plain"],
        &input,
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("fastreq: progress:"))
        .unwrap_or_else(|| panic!("no progress line: {run:?}"));
    let waiting: u64 = line
        .split(" waiting")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no waiting count: {line}"));
    assert!(waiting >= 1, "{line}");
    // Every request has started (-c 64): each is done, on the wire or waiting, once.
    let number_before = |what: &str| -> u64 {
        line.split(what)
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no `{what}` count: {line}"))
    };
    let done = number_before(" done");
    let in_flight = number_before(" in flight");
    assert_eq!(done + in_flight + waiting, 4, "{line}");
    assert!(line.contains("req/s (last 5 s)"), "{line}");
}

#[test]
fn cacert_trusts_a_private_ca_and_lines_carry_the_http_version() {
    let server = TestServer::builder().tls().start(|req| route(&req));
    let url = server.url("/tls");
    let dir = temp_dir("cacert");

    // Not trusted by default.
    let run = fastreq(&["fetch", "-q", "--retries", "0"], &url);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(run.by_index()[0]["error"]["kind"], "tls", "{run:?}");
    assert!(run.by_index()[0]["version"].is_null(), "{run:?}");

    // Trusted with --cacert; HTTP/2 by ALPN.
    let pem = write_file(&dir, "ca.pem", &server.cert_pem());
    let run = fastreq(&["fetch", "-q", "--cacert", &pem], &url);
    assert_eq!(run.code, Some(0), "{run:?}");
    let line = &run.by_index()[0];
    assert_eq!(line["status"], 200, "{run:?}");
    assert_eq!(line["version"], "h2", "{run:?}");
    assert!(!run.stderr.contains("WARNING"), "{run:?}");
    let run = fastreq(&["fetch", "-q", "--cacert", &pem, "--http1-only"], &url);
    assert_eq!(run.by_index()[0]["version"], "http/1.1", "{run:?}");

    // Plain HTTP.
    let plain = test_server();
    let run = fastreq(&["fetch", "-q"], &plain.url("/ok"));
    assert_eq!(run.by_index()[0]["version"], "http/1.1", "{run:?}");

    // A missing file, and a file that is not PEM: usage errors naming the file.
    let missing = dir.join("missing.pem");
    let run = fastreq(&["fetch", "--cacert", missing.to_str().unwrap()], &url);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("missing.pem") && run.stderr.contains("--cacert"),
        "{run:?}"
    );
    let junk = write_file(&dir, "junk.pem", "not a certificate\n");
    let run = fastreq(&["fetch", "--cacert", &junk], &url);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("junk.pem") && run.stderr.contains("not a PEM certificate"),
        "{run:?}"
    );
    assert_eq!(server.hits(), 2, "no request after a usage error");
}

#[test]
fn ordered_with_a_reorder_window_keeps_input_order() {
    let server = test_server();
    // A slow head, then quick ones: they finish first and are held back behind it.
    let mut input = server.url("/head?delay_ms=300") + "\n";
    for i in 0..50 {
        input.push_str(&server.url(&format!("/q{i}")));
        input.push('\n');
    }
    for window in ["8", "4096"] {
        let run = fastreq(
            &[
                "fetch",
                "-q",
                "-c",
                "2",
                "--ordered",
                "--reorder-window",
                window,
            ],
            &input,
        );
        assert_eq!(run.code, Some(0), "{run:?}");
        let indexes: Vec<u64> = run
            .stdout
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["index"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(indexes, (0..51).collect::<Vec<u64>>(), "{run:?}");
    }
    let run = fastreq(&["fetch", "--reorder-window", "0"], "");
    assert_eq!(run.code, Some(2), "{run:?}");
}
