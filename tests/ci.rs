//! wsdissect in CI: `check` verdicts and exit codes, byte-identical output, `diff`.

use crate::cases::{capture_in, cases};
use crate::util::*;

fn code(args: &[&str]) -> (i32, String) {
    let out = run(args);
    let code = out.status.code().expect("exited");
    (code, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn cap(rel: &str) -> String {
    testdata(rel).to_string_lossy().into_owned()
}

const CLEAN_REAL: &[&str] = &[
    "py-websockets-basic/capture.pcap",
    "py-websockets-basic-rerun/capture.pcap",
    "node-ws-plain/capture.pcap",
    "node-ws-deflate/capture.pcap",
    "chromium-websockets/capture.pcap",
];

const VIOLATIONS: &[&str] = &[
    "crafted-frame-violations/capture.pcap",
    "crafted-handshakes/capture.pcap",
    "crafted-deflate/capture.pcap.gz",
];

#[test]
fn check_passes_clean_real_captures() {
    for c in CLEAN_REAL {
        let (status, out) = code(&["check", &cap(c)]);
        assert_eq!(status, 0, "{c}:\n{out}");
        assert!(out.lines().last().unwrap().starts_with("check: PASS"), "{out}");
        // The strictest settings too.
        let (status, out) =
            code(&["check", "--fail-on", "warning", "--expect-clean-close", &cap(c)]);
        assert_eq!(status, 0, "{c} --fail-on warning:\n{out}");
    }
}

#[test]
fn check_fails_crafted_violations_with_one_line_each() {
    for c in VIOLATIONS {
        let (status, out) = code(&["check", &cap(c)]);
        assert_eq!(status, 1, "{c}:\n{out}");
        assert!(out.lines().last().unwrap().starts_with("check: FAIL"));
    }
    let (_, out) = code(&["check", &cap("crafted-frame-violations/capture.pcap")]);
    for expected in [
        "stream 0 packet 8 error unmasked-client-frame:",
        "stream 0 packet 9 error masked-server-frame:",
        "stream 0 packet 10 error invalid-utf8:",
        "stream 1 packet 35 error length-msb-set:",
    ] {
        assert!(out.lines().any(|l| l.starts_with(expected)), "no line {expected:?} in\n{out}");
    }
    // A code found on a frame and again on its message is one finding.
    assert_eq!(out.lines().filter(|l| l.contains("invalid-utf8")).count(), 1, "{out}");
}

#[test]
fn check_input_errors_exit_2() {
    assert_eq!(code(&["check", "/nonexistent/x.pcap"]).0, 2);
    assert_eq!(code(&["check", &cap("file-not-a-capture/capture.pcap")]).0, 2);
    assert_eq!(code(&["check", &cap("file-truncated/capture.pcap")]).0, 2);
    assert_eq!(code(&["check", "--allow", "no-such-code", &cap(CLEAN_REAL[0])]).0, 2);
    assert_eq!(code(&["check", "--fail-on", "panic", &cap(CLEAN_REAL[0])]).0, 2);
}

#[test]
fn severity_threshold_and_allow_list() {
    // The keepalive capture ends with a RST and no close frame: a warning, not an error.
    let rst = cap("py-websockets-keepalive-rst/capture.pcap");
    assert_eq!(code(&["check", &rst]).0, 0);
    let (status, out) = code(&["check", "--fail-on", "warning", &rst]);
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("warning no-close-frame"));
    assert_eq!(code(&["check", "--fail-on", "warning", "--allow", "no-close-frame", &rst]).0, 0);
    // Allowing every error code found makes the violations capture pass.
    let v = cap("crafted-handshakes/capture.pcap");
    let allow = "accept-mismatch,accept-missing,bad-key,bad-version,protocol-not-offered,\
                 extension-not-offered,response-without-request,bad-upgrade-headers";
    let (status, out) = code(&["check", "--allow", allow, &v]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("8 allowed"), "{out}");
}

#[test]
fn assertions() {
    let basic = cap("py-websockets-basic/capture.pcap");
    assert_eq!(code(&["check", "--expect-handshakes", "1", &basic]).0, 0);
    let (status, out) = code(&["check", "--expect-handshakes", "2", &basic]);
    assert_eq!(status, 1);
    assert!(
        out.contains("assertion expect-handshakes FAILED: 1 successful handshakes, expected 2"),
        "{out}"
    );
    assert_eq!(code(&["check", "--expect-clean-close", &basic]).0, 0);
    let (status, out) =
        code(&["check", "--expect-clean-close", &cap("py-websockets-keepalive-rst/capture.pcap")]);
    assert_eq!(status, 1);
    assert!(out.contains("stream 0 close none"), "{out}");
    assert_eq!(code(&["check", "--max-rtt", "1000", &basic]).0, 0);
    let (status, out) = code(&["check", "--max-rtt", "0.001", &basic]);
    assert_eq!(status, 1, "the ping round trip took longer than 1 µs:\n{out}");
    let plain = cap("node-ws-plain/capture.pcap");
    assert_eq!(code(&["check", "--subprotocol", "chat.v2", &plain]).0, 0);
    assert_eq!(code(&["check", "--subprotocol", "chat.v2", &basic]).0, 1);
    // JSON: findings, assertions and the verdict.
    let out = run(&["check", "--json", "--expect-handshakes", "2", &basic]);
    assert_eq!(out.status.code(), Some(1));
    let recs = records(&out.stdout);
    let verdict = of_type(&recs, "verdict");
    assert_eq!(verdict.len(), 1);
    assert_eq!(verdict[0]["ok"], false);
    assert_eq!(verdict[0]["failed_assertions"], 1);
    assert_eq!(of_type(&recs, "assertion")[0]["name"], "expect-handshakes");
}

/// Same input and options, same bytes: every view and format, every capture.
#[test]
fn every_view_is_byte_identical_across_runs() {
    let views: &[&[&str]] = &[
        &["--color", "never"],
        &["--json", "--conns"],
        &["messages"],
        &["messages", "--json"],
        &["conns"],
        &["conns", "--json"],
        &["follow", "0"],
        &["check"],
        &["check", "--json"],
        &["--json", "--normalize"],
        // Workers cut payloads to what these read, and mark JSON text before cutting.
        &["--json", "--max-payload", "7"],
        &["messages", "--payload", "none", "--binary", "base64"],
        &["check", "--problems", "--grep", "a"],
    ];
    for dir in cases() {
        let c = capture_in(&dir).to_string_lossy().into_owned();
        for v in views {
            let mut args = v.to_vec();
            args.push(&c);
            let a = run(&args);
            let b = run(&args);
            assert_eq!(a.stdout, b.stdout, "{args:?}");
            assert_eq!(a.status.code(), b.status.code(), "{args:?}");
            // Neither does formatting on a second thread, nor sharding connections over
            // threads (three workers: connections of different host pairs meet on one).
            for jobs in ["-j1", "-j2", "-j3"] {
                let mut with_jobs = args.clone();
                with_jobs.insert(0, jobs);
                let j = run(&with_jobs);
                assert_eq!(a.stdout, j.stdout, "{with_jobs:?}");
                assert_eq!(a.status.code(), j.status.code(), "{with_jobs:?}");
            }
        }
    }
}

#[test]
fn normalize_makes_two_recordings_of_one_scenario_equal() {
    let a = cap("py-websockets-basic/capture.pcap");
    let b = cap("py-websockets-basic-rerun/capture.pcap");
    // Different client ports, masks and handshake keys…
    assert_ne!(run(&["--json", &a]).stdout, run(&["--json", &b]).stdout);
    // …the same conversation.
    for view in [&["--json", "--normalize"][..], &["messages", "--normalize"], &["--normalize"]] {
        let mut x = view.to_vec();
        x.push(&a);
        let mut y = view.to_vec();
        y.push(&b);
        let (ox, oy) = (run(&x).stdout, run(&y).stdout);
        assert_eq!(
            String::from_utf8_lossy(&ox).replace(&a, "X"),
            String::from_utf8_lossy(&oy).replace(&b, "X"),
            "{view:?}"
        );
    }
}

#[test]
fn normalize_numbers_the_session_ids_a_socket_io_server_draws() {
    let a = cap("node-socketio/capture.pcap");
    let b = cap("node-socketio-rerun/capture.pcap");
    assert_ne!(run(&["--json", &a]).stdout, run(&["--json", &b]).stdout);
    let views: [&[&str]; 7] = [
        &["--json", "--normalize"],
        &["messages", "--json", "--normalize"],
        &["--normalize"],
        &["messages", "--normalize"],
        &["conns", "--normalize"],
        &["conns", "--json", "--normalize"],
        &["follow", "3", "--normalize"],
    ];
    for view in views {
        let (x, y) = ([view, &[&a]].concat(), [view, &[&b]].concat());
        let (ox, oy) = (run(&x).stdout, run(&y).stdout);
        let (ox, oy) = (String::from_utf8_lossy(&ox), String::from_utf8_lossy(&oy));
        assert_eq!(ox.replace(&a, "X"), oy.replace(&b, "X"), "{view:?}");
        assert!(ox.contains("<sid 1>") && !ox.contains("BGg0XWdEhBknqQW0AAAA"), "{view:?}:\n{ox}");
    }
}

#[test]
fn diff_of_a_capture_with_itself_is_empty() {
    for c in CLEAN_REAL.iter().chain(VIOLATIONS) {
        let (status, out) = code(&["diff", &cap(c), &cap(c)]);
        assert_eq!(status, 0, "{c}:\n{out}");
        assert!(out.contains("no differences"), "{out}");
    }
}

#[test]
fn diff_of_different_scenarios_shows_the_differing_message() {
    let plain = cap("node-ws-plain/capture.pcap");
    let deflate = cap("node-ws-deflate/capture.pcap");
    let (status, out) = code(&["diff", &plain, &deflate]);
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("- ← binary") && out.contains("(70000 bytes, sha1"), "{out}");
    assert!(out.contains("+ ← binary") && out.contains("(200000 bytes, sha1"), "{out}");
    assert!(out.contains(
        "+ handshake GET /feed?x=1 → 101 protocol=chat.v2 extensions=permessage-deflate"
    ));
    assert!(out.contains("  ← text \"welcome alice\""), "context lines are shown:\n{out}");
    let (status, out) = code(&[
        "diff",
        &cap("py-websockets-basic/capture.pcap"),
        &cap("chromium-websockets/capture.pcap"),
    ]);
    assert_eq!(status, 1);
    assert!(out.contains("+ → text \"hello from chromium\""), "{out}");
    assert!(out.contains("only in base") && out.contains("only in new"));
    assert_eq!(code(&["diff", &plain, "/nonexistent.pcap"]).0, 2);
}

#[test]
fn diff_reads_its_two_captures_side_by_side_and_reports_as_one_after_the_other() {
    // With two threads (the default here) and with one, the output and errors are the same:
    // the base capture's errors alone when it fails, the new one's when only it fails.
    let good = cap("py-websockets-basic/capture.pcap");
    let truncated = cap("file-truncated/capture.pcap");
    let cases: [(&str, &str, i32, &[&str]); 4] = [
        (&good, &good, 0, &[]),
        ("/nonexistent/base.pcap", "/nonexistent/new.pcap", 2, &["base.pcap"]),
        (&truncated, "/nonexistent/new.pcap", 2, &["file-truncated"]),
        (&good, &truncated, 2, &["file-truncated"]),
    ];
    for (base, new, want, names) in cases {
        let outputs: Vec<_> = ["-j2", "-j1"].iter().map(|j| run(&[j, "diff", base, new])).collect();
        for out in &outputs {
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(want), "{base} {new}: {err}");
            assert_eq!(err.lines().count(), names.len(), "{base} {new}: {err}");
            for (line, name) in err.lines().zip(names) {
                assert!(line.starts_with("wsdissect: ") && line.contains(name), "{err}");
            }
        }
        assert_eq!(outputs[0].stdout, outputs[1].stdout, "{base} {new}");
        assert_eq!(outputs[0].stderr, outputs[1].stderr, "{base} {new}");
    }
}

#[test]
fn diff_without_a_writable_temporary_directory_keeps_renderings_in_memory() {
    // The renderings normally wait in an unnamed temporary file; without one the report is
    // the same, from memory.
    let plain = cap("node-ws-plain/capture.pcap");
    let deflate = cap("node-ws-deflate/capture.pcap");
    for args in [["diff", &plain, &deflate], ["diff", &plain, &plain]] {
        let spooled = run(&args);
        let in_memory =
            command().env("TMPDIR", "/nonexistent/tmp").args(args).output().expect("run wsdissect");
        assert_eq!(spooled.status.code(), in_memory.status.code(), "{args:?}");
        assert_eq!(spooled.stdout, in_memory.stdout, "{args:?}");
        assert!(in_memory.stderr.is_empty(), "{}", String::from_utf8_lossy(&in_memory.stderr));
    }
}

#[test]
fn diff_normalize_equates_two_recordings_and_ignores_what_it_is_told() {
    let a = cap("py-websockets-basic/capture.pcap");
    let b = cap("py-websockets-basic-rerun/capture.pcap");
    let (status, out) = code(&["diff", "--normalize", &a, &b]);
    assert_eq!(status, 0, "{out}");
    // Socket.IO: the server drew other session ids, in the upgrade's path and in payloads.
    let a = cap("node-socketio/capture.pcap");
    let b = cap("node-socketio-rerun/capture.pcap");
    let (status, out) = code(&["diff", &a, &b]);
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("only in base") && out.contains("only in new"), "{out}");
    let (status, out) = code(&["diff", "--normalize", &a, &b]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("1 connections and 19 messages in base, 1 and 19 in new"), "{out}");
    // Numbered ids still tell one session from another: the second session of one capture
    // is not the first of the other.
    let (status, out) = code(&["diff", "--normalize", &a, &cap("node-socketio-v2/capture.pcap")]);
    assert_eq!(status, 1, "{out}");
    // Ignored JSON keys: the hostile capture's JSON message differs from nothing, so compare
    // the capture with itself under the option to see it parses; key removal is unit-tested.
    let h = cap("crafted-hostile-text/capture.pcap");
    assert_eq!(code(&["diff", "--ignore-json-keys", "id", "--ignore-order", "50", &h, &h]).0, 0);
}
