//! The views people read (table, messages, conns, follow), their filters and escaping, the
//! JSON Schema of every record, and golden files of the text views.
//!
//! Golden files live in `testdata/<case>/expected/`; after an intended change of output,
//! regenerate them with `UPDATE_GOLDEN=1 cargo test golden` and review the diff.

use crate::cases::{capture_in, case_args, cases};
use crate::util::*;
use serde_json::Value;
use std::process::Command;

fn text_of(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} exited {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("text output is UTF-8")
}

fn path_str(rel: &str) -> String {
    testdata(rel).to_string_lossy().into_owned()
}

/// (case, golden file name, arguments before the capture path)
const GOLDEN: &[(&str, &str, &[&str])] = &[
    ("py-websockets-basic", "frames.txt", &[]),
    ("py-websockets-basic", "messages.txt", &["messages"]),
    ("py-websockets-basic", "conns.txt", &["conns"]),
    ("py-websockets-basic", "follow-0.txt", &["follow", "0"]),
    ("py-websockets-basic", "check.txt", &["check"]),
    ("crafted-frame-violations", "frames.txt", &[]),
    ("crafted-frame-violations", "messages.txt", &["messages"]),
    ("crafted-frame-violations", "check.txt", &["check"]),
    ("crafted-handshakes", "conns.txt", &["conns"]),
    ("crafted-handshakes", "check.txt", &["check"]),
    ("crafted-hostile-text", "frames.txt", &[]),
    ("crafted-hostile-text", "follow-0-pretty.txt", &["follow", "0", "--pretty"]),
    ("crafted-deflate", "messages.txt", &["messages", "-t", "ad"]),
    ("node-ws-deflate", "conns.txt", &["conns"]),
    ("crafted-midstream-gap", "follow-0.txt", &["follow", "0"]),
    ("crafted-capture-loss", "frames.txt", &[]),
    ("crafted-capture-loss", "check.txt", &["check"]),
    ("crafted-socks", "frames.txt", &[]),
    ("tour-upgrade-event", "frames.txt", &[]),
    ("tour-upgrade-event", "conns.txt", &["conns"]),
    ("tour-python-raw", "frames.txt", &[]),
    ("tour-python-raw", "conns.txt", &["conns"]),
    ("tour-net-browser", "frames.txt", &[]),
    ("tour-net-browser", "follow-0.txt", &["follow", "0"]),
    ("tour-socketio-chat", "conns.txt", &["conns"]),
    ("tour-ws-echo-rst", "frames.txt", &[]),
    ("tour-ws-echo-rst", "conns.txt", &["conns"]),
    ("tour-ws-echo-close", "frames.txt", &[]),
    ("tour-ws-echo-close", "conns.txt", &["conns"]),
    (
        "tour-ws-echo-wss",
        "conns-keylog.txt",
        &["conns", "--keylog", "testdata/tour-ws-echo-wss/keylog.txt"],
    ),
    ("node-wss-tls13", "frames-keylog.txt", &["--keylog", "testdata/node-wss-tls13/keylog.txt"]),
    ("node-wss-tls13", "conns-no-key.txt", &["conns"]),
    (
        "node-wss-tls12-aes128gcm",
        "follow-0-keylog.txt",
        &[
            "follow",
            "0",
            "--payload",
            "none",
            "--keylog",
            "testdata/node-wss-tls12-aes128gcm/keylog.txt",
        ],
    ),
    ("node-socketio", "frames.txt", &[]),
    ("node-socketio", "messages.txt", &["messages"]),
    ("node-socketio", "conns-all.txt", &["conns", "--all"]),
    ("node-socketio", "follow-3-pretty.txt", &["follow", "3", "--pretty"]),
    ("node-socketio-v2", "messages.txt", &["messages"]),
    ("node-mqtt", "messages.txt", &["messages"]),
    ("node-stomp", "follow-0.txt", &["follow", "0"]),
    ("node-graphql", "follow-0-pretty.txt", &["follow", "0", "--pretty"]),
    ("crafted-app-errors", "messages.txt", &["messages"]),
];

#[test]
fn golden_text_views() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for (case, name, args) in GOLDEN {
        let dir = testdata(case);
        let capture = capture_in(&dir);
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["--color", "never"]);
        let cap = capture.to_string_lossy().into_owned();
        full.push(&cap);
        let out = Command::new(bin()).args(&full).env("COLUMNS", "100").output().unwrap();
        // check exits 1 on violations; the output is what is compared.
        assert!(out.status.code().is_some_and(|c| c <= 1), "{case} {args:?}");
        let got = String::from_utf8(out.stdout).unwrap();
        let path = dir.join("expected").join(name);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{} missing (UPDATE_GOLDEN=1)", path.display()));
        if got != want {
            let first = got
                .lines()
                .zip(want.lines())
                .position(|(g, w)| g != w)
                .unwrap_or(got.lines().count().min(want.lines().count()));
            failures.push(format!(
                "{case} {args:?} differs from {} at line {}:\n  got:  {:?}\n  want: {:?}",
                path.display(),
                first + 1,
                got.lines().nth(first),
                want.lines().nth(first)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Nothing a peer wrote reaches the terminal as a control character.
#[test]
fn payloads_are_escaped_in_every_text_view() {
    let cap = path_str("crafted-hostile-text/capture.pcap");
    let views: &[&[&str]] = &[
        &[],
        &["--payload", "full"],
        &["--binary", "base64"],
        &["messages", "--payload", "full"],
        &["conns"],
        &["follow", "0"],
        &["follow", "0", "--pretty"],
        &["check"],
        &["-t", "ad"],
    ];
    let sgr = regex::Regex::new(r"\x1b\[[0-9;]*m").unwrap();
    for v in views {
        let mut args: Vec<&str> = v.to_vec();
        args.extend(["--color", "always", &cap]);
        let out = run(&args);
        let text = String::from_utf8(out.stdout).unwrap();
        // Colour is on: the only ESC bytes are our own SGR sequences.
        let without_sgr = sgr.replace_all(&text, "");
        for c in without_sgr.chars() {
            let bad = (c.is_control() && c != '\n')
                || matches!(c as u32, 0x200b..=0x200f | 0x2028..=0x202e | 0x2066..=0x2069);
            assert!(!bad, "{v:?} printed U+{:04X} raw", c as u32);
        }
        if !v.contains(&"conns") && !v.contains(&"check") {
            assert!(without_sgr.contains(r"\x1b[2J"), "{v:?} shows the escaped sequence");
        }
    }
    // JSON carries the payload exactly; escaping is JSON's own.
    let recs = records(&run(&["--json", &cap]).stdout);
    let texts: Vec<&str> =
        of_type(&recs, "message").iter().filter_map(|m| m["text"].as_str()).collect();
    assert!(texts.contains(&"\u{1b}[2J\u{1b}[Hscreen cleared"), "{texts:?}");
}

#[test]
fn no_payload_leaves_no_trailing_space() {
    // The close frames of this capture carry reasons, which `--payload none` leaves out.
    let cap = path_str("crafted-hostile-text/capture.pcap");
    let text = String::from_utf8(run(&["--payload", "none", &cap]).stdout).unwrap();
    assert!(text.contains("1000 (Normal Closure)"), "{text}");
    for line in text.lines() {
        assert!(!line.ends_with(' '), "{line:?}");
    }
}

#[test]
fn color_only_when_asked_or_on_a_terminal() {
    let cap = path_str("crafted-frame-violations/capture.pcap");
    let plain = text_of(&[&cap]);
    assert!(!plain.contains('\u{1b}'), "a pipe gets no colour by default");
    let forced = text_of(&["--color", "always", &cap]);
    assert!(forced.contains("\u{1b}[31m"), "errors are red with --color always");
    let out = Command::new(bin()).args(["--color", "auto", &cap]).env("NO_COLOR", "1").output();
    assert!(!String::from_utf8(out.unwrap().stdout).unwrap().contains('\u{1b}'));
}

fn json_with(args: &[&str], rel: &str) -> Vec<Value> {
    let cap = path_str(rel);
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    full.push(&cap);
    let out = run(&full);
    assert!(out.status.code().is_some_and(|c| c <= 1), "{args:?}: {:?}", out.status);
    records(&out.stdout)
}

fn body(recs: &[Value]) -> Vec<&Value> {
    recs.iter().filter(|r| r["type"] != "begin" && r["type"] != "end").collect()
}

#[test]
fn filters_select_records() {
    let case = "crafted-hostile-text/capture.pcap";
    let all = json_with(&[], case);
    assert!(
        body(&all).iter().any(|r| r["stream"] == 0) && body(&all).iter().any(|r| r["stream"] == 1)
    );

    let only = |args: &[&str], pred: &dyn Fn(&Value) -> bool, what: &str| {
        let recs = json_with(args, case);
        let b = body(&recs);
        assert!(!b.is_empty(), "{args:?} selected nothing");
        for r in &b {
            assert!(pred(r), "{args:?}: {what}, got {r}");
        }
        b.len()
    };
    only(&["--stream", "1"], &|r| r["stream"] == 1, "stream 1");
    only(&["--host", "10.9.1.1"], &|r| r["stream"] == 1, "host of stream 1");
    only(&["--port", "9100"], &|r| r["stream"] == 0, "port of stream 0");
    only(&["--from", "server"], &|r| r["from"] == "server" || r["from"].is_null(), "server side");
    let closes = only(&["--opcode", "close"], &|r| r["opcode"] == 8, "close frames");
    assert_eq!(closes, 4, "two close frames per connection");
    only(
        &["--grep", "plain re"],
        &|r| r["text"].as_str().is_some_and(|t| t.contains("plain re")),
        "text matching",
    );
    only(
        &["--problems"],
        &|r| !r["problems"].as_array().is_none_or(|p| p.is_empty()) || r["type"] == "problem",
        "problems",
    );
    // Filters compose.
    let n = only(
        &["--stream", "0", "--from", "client", "--opcode", "text"],
        &|r| r["stream"] == 0 && r["from"] == "client" && r["opcode"] == 1,
        "composed",
    );
    assert_eq!(n, 10, "5 client text frames and their 5 messages");
    // A compressed frame is selected by its message's decoded text.
    let recs = json_with(&["--grep", "frag-two"], "py-websockets-basic/capture.pcap");
    assert!(of_type(&recs, "frame").len() >= 2 && of_type(&recs, "message").len() == 2);
}

#[test]
fn json_array_holds_the_same_records() {
    let cap = path_str("py-websockets-basic/capture.pcap");
    let lines = records(&run(&["--json", &cap]).stdout);
    let out = run(&["--json-array", &cap]);
    let arr: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(arr.as_array().unwrap(), &lines);
    let out = run(&["messages", "--json-array", &cap]);
    let arr: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(arr
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .all(|r| r["type"] == "message" || r["type"] == "end"));
}

#[test]
fn messages_view_reports_control_frames_as_messages() {
    let recs = json_with(&["messages"], "py-websockets-basic/capture.pcap");
    assert_eq!(recs[0]["view"], "messages");
    let msgs = of_type(&recs, "message");
    let names: Vec<&str> = msgs.iter().map(|m| m["opcode_name"].as_str().unwrap()).collect();
    assert_eq!(names.iter().filter(|n| **n == "text").count(), 8);
    assert_eq!(names.iter().filter(|n| **n == "ping").count(), 1);
    let close = msgs.iter().find(|m| m["opcode_name"] == "close").unwrap();
    assert_eq!(
        (close["close_code"].as_u64(), close["close_reason"].as_str()),
        (Some(1000), Some("bye"))
    );
    assert!(of_type(&recs, "frame").is_empty());
}

#[test]
fn conns_and_follow_views() {
    let recs = json_with(&["conns"], "py-websockets-basic/capture.pcap");
    let conns = of_type(&recs, "connection");
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0]["close"]["clean"], true);
    let recs = json_with(&["follow", "0"], "crafted-hostile-text/capture.pcap");
    assert!(body(&recs).iter().all(|r| r["stream"] == 0));
    assert_eq!(of_type(&recs, "handshake").len(), 1);
    assert_eq!(of_type(&recs, "connection").len(), 1);
    let text =
        text_of(&["follow", "0", "--pretty", &path_str("crafted-hostile-text/capture.pcap")]);
    assert!(text.contains("    {\n      \"event\": \"msg\","), "JSON pretty-printed:\n{text}");
    let out = run(&["follow", "7", &path_str("crafted-hostile-text/capture.pcap")]);
    assert_eq!(out.status.code(), Some(2), "a stream that is not there is an error");
}

/// `wsdissect VIEW FILE | head -1` exits 0 in every view.
#[test]
fn every_view_survives_a_closed_pipe() {
    let cap = path_str("crafted-tcp-hostile/capture.pcapng");
    for view in [&[][..], &["messages", "--payload", "full"], &["follow", "0"], &["--json"]] {
        let mut args = view.to_vec();
        args.push(&cap);
        assert!(!first_line_then_close(&args).is_empty());
    }
}

#[test]
fn completions_and_man_page_come_from_the_command_line() {
    let bash = text_of(&["completions", "bash"]);
    assert!(
        bash.contains("wsdissect") && bash.contains("--max-payload") && bash.contains("follow")
    );
    let man = text_of(&["man"]);
    assert!(man.contains(".TH") && man.contains("wsdissect"));
    let help = text_of(&["--help"]);
    assert!(help.contains("Examples:") && help.contains("Exit codes"));
}

pub fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo().join("docs/json.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).expect("docs/json.schema.json is a valid schema")
}

/// Every line every view writes for every capture in testdata/ matches docs/json.schema.json.
#[test]
fn every_json_line_matches_the_schema() {
    let v = schema();
    let mut lines = 0;
    let mut errors = Vec::new();
    let mut check = |args: &[&str]| {
        let out = run(args);
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            lines += 1;
            let rec: Value = serde_json::from_str(line).unwrap();
            for e in v.iter_errors(&rec) {
                errors.push(format!("{args:?}: {e} at {}: {line}", e.instance_path()));
            }
        }
    };
    for dir in cases() {
        let cap = capture_in(&dir).to_string_lossy().into_owned();
        let views: &[&[&str]] = &[
            &["--json", "--conns"],
            &["--json", "--conns", "--all", "--max-payload", "3"],
            &["messages", "--json"],
            &["conns", "--json", "--all"],
            &["follow", "0", "--json"],
            &[
                "check",
                "--json",
                "--expect-handshakes",
                "1",
                "--expect-clean-close",
                "--max-rtt",
                "1",
            ],
            &["check", "--json", "--subprotocol", "chat.v2", "--allow", "no-close-frame"],
        ];
        let keylog = case_args(&dir);
        for view in views {
            let mut args = view.to_vec();
            args.extend(keylog.iter().map(String::as_str));
            args.push(&cap);
            check(&args);
        }
    }
    let a = path_str("py-websockets-basic/capture.pcap");
    let b = path_str("chromium-websockets/capture.pcap");
    let c = path_str("node-ws-plain/capture.pcap");
    let d = path_str("node-ws-deflate/capture.pcap");
    check(&["diff", "--json", &a, &b]);
    check(&["diff", "--json", &c, &d]);
    check(&["diff", "--json", &a, &a]);
    assert!(lines > 500, "only {lines} lines checked");
    assert!(errors.is_empty(), "{} schema errors:\n{}", errors.len(), errors.join("\n"));
}

#[test]
fn the_schema_rejects_what_breaks_the_contract() {
    let v = schema();
    let good: Value = serde_json::from_str(
        r#"{"type":"tcp","packet":1,"ts":1.5,"stream":0,"from":"client","src":"1.2.3.4:5","dst":"[::1]:80","event":"syn","problems":[]}"#,
    )
    .unwrap();
    assert!(v.is_valid(&good));
    for (key, bad) in [
        ("stream", Value::from("0")),
        ("from", Value::from("middle")),
        ("problems", serde_json::json!(["no-such-code"])),
        ("src", Value::from("1.2.3.4")),
    ] {
        let mut r = good.clone();
        r[key] = bad;
        assert!(!v.is_valid(&r), "{key} accepted: {r}");
    }
    let mut r = good.clone();
    r.as_object_mut().unwrap().remove("event");
    assert!(!v.is_valid(&r), "missing key accepted");
}

#[test]
fn a_connection_record_lists_every_problem_its_records_carried() {
    // Every case: the codes on a stream's frame, message, TCP, TLS and problem records are all
    // on its connection record (as docs/json.md says), whichever thread count ran it.
    for case in ["crafted-frame-violations", "crafted-app-errors", "crafted-deflate"] {
        let path = testdata(&format!("{case}/capture.pcap"));
        let path = if path.exists() { path } else { testdata(&format!("{case}/capture.pcap.gz")) };
        for jobs in ["-j1", "-j2"] {
            let recs = json_of(&path, &[jobs, "--conns"]);
            let mut seen: std::collections::BTreeMap<u64, Vec<String>> = Default::default();
            let mut checked = 0;
            for r in &recs {
                let Some(stream) = r["stream"].as_u64() else { continue };
                let codes: Vec<String> = r["problems"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(r.get("code"))
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect();
                if r["type"] == "connection" {
                    for c in seen.remove(&stream).unwrap_or_default() {
                        assert!(
                            codes.contains(&c),
                            "{case} {jobs}: stream {stream} lacks {c}: {r}"
                        );
                        checked += 1;
                    }
                } else {
                    seen.entry(stream).or_default().extend(codes);
                }
            }
            assert!(checked > 0, "{case}: no problem to check");
        }
    }
}
