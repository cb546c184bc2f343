//! Every `testdata/<case>/` against its `truth.json`: what the peers (or the crafting script)
//! really sent, and the problems a correct dissector must report.

use crate::util::*;
use base64::Engine;
use serde_json::Value;
use std::path::{Path, PathBuf};

pub fn cases() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo().join("testdata"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("truth.json").is_file())
        .collect();
    out.sort();
    out
}

pub fn capture_in(dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("capture"))
        .collect();
    files.sort();
    files.into_iter().next().unwrap_or_else(|| panic!("no capture in {}", dir.display()))
}

/// A payload as the truth states it: the bytes, or for long ones "len=N sha1=H".
fn truth_payload(m: &Value) -> Vec<u8> {
    if let Some(t) = m["text"].as_str() {
        t.as_bytes().to_vec()
    } else if let Some(h) = m["bytes_hex"].as_str() {
        (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap()).collect()
    } else if m["limited"] == true {
        b"<stopped at a limit>".to_vec()
    } else if let Some(h) = m["sha1"].as_str() {
        format!("len={} sha1={h}", m["len"]).into_bytes()
    } else {
        Vec::new()
    }
}

/// Our payload in the truth's form: long payloads by length and SHA-1.
fn comparable(p: Vec<u8>) -> Vec<u8> {
    use sha1::Digest;
    if p.len() > 512 {
        let h: String = sha1::Sha1::digest(&p).iter().map(|b| format!("{b:02x}")).collect();
        format!("len={} sha1={h}", p.len()).into_bytes()
    } else {
        p
    }
}

fn our_payload(r: &Value) -> Vec<u8> {
    if let Some(t) = r["text"].as_str() {
        t.as_bytes().to_vec()
    } else if let Some(b) = r["bytes"].as_str() {
        base64::engine::general_purpose::STANDARD.decode(b).unwrap()
    } else {
        Vec::new()
    }
}

/// `--keylog FILE` for cases recorded over TLS (`"keylog"` in truth.json names the file).
pub fn case_args(dir: &Path) -> Vec<String> {
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap()).unwrap();
    match truth["keylog"].as_str() {
        Some(name) => vec!["--keylog".into(), dir.join(name).to_string_lossy().into_owned()],
        None => Vec::new(),
    }
}

fn all_problem_codes(recs: &[Value]) -> Vec<String> {
    let end = recs.last().unwrap();
    end["problems"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

fn check_case(dir: &Path) -> Result<(), String> {
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap()).unwrap();
    let capture = capture_in(dir);
    let keylog = case_args(dir);
    let mut args = vec!["--json", "--conns"];
    args.extend(keylog.iter().map(String::as_str));
    let out = run_path(&args, &capture);
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let expect_exit =
        truth["expect_exit"].as_i64().unwrap_or(if name.starts_with("file-") { 2 } else { 0 });
    if out.status.code() != Some(expect_exit as i32) {
        return Err(format!(
            "exit {:?}, want {expect_exit}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let recs = records(&out.stdout);
    let codes = all_problem_codes(&recs);
    let mut errs = Vec::new();
    for p in truth["expect_problems"].as_array().into_iter().flatten() {
        let p = p.as_str().unwrap();
        if !codes.iter().any(|c| c == p) {
            errs.push(format!("expected problem {p} not reported (got {codes:?})"));
        }
    }
    let expected: Vec<&str> = truth["expect_problems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for c in &codes {
        let sev = wsdissect::problem::ProblemCode::from_code(c).map(|p| p.severity());
        if sev == Some(wsdissect::problem::Severity::Error) && !expected.contains(&c.as_str()) {
            errs.push(format!("unexpected error-level problem {c}"));
        }
    }
    let conns = of_type(&recs, "connection");
    for tc in truth["connections"].as_array().into_iter().flatten() {
        let port = tc["server_port"].as_u64();
        let cport = tc["client_port"].as_u64();
        let found = conns.iter().find(|c| {
            let server = c["server"].as_str().unwrap();
            let client = c["client"].as_str().unwrap();
            port.is_none_or(|p| server.ends_with(&format!(":{p}")))
                && cport.is_none_or(|p| client.ends_with(&format!(":{p}")))
                && tc["path"].as_str().is_none_or(|p| c["path"] == p)
                && c["websocket"] == true
        });
        let Some(conn) = found else {
            errs.push(format!("no WebSocket connection to port {port:?} (client {cport:?})"));
            continue;
        };
        let stream = conn["stream"].as_u64().unwrap();
        // Several WebSockets over HTTP/2 share a TCP stream: each has its HTTP/2 stream.
        let h2_stream = &conn["h2_stream"];
        let sides: &[&str] = if tc["messages"].is_null() { &[] } else { &["client", "server"] };
        for &side in sides {
            let want: Vec<(String, Vec<u8>)> = tc["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["from"] == side)
                .map(|m| (m["opcode"].as_str().unwrap().to_string(), truth_payload(m)))
                .collect();
            let has_control = want.iter().any(|(op, _)| op == "ping" || op == "pong");
            let got: Vec<(String, Vec<u8>)> = recs
                .iter()
                .filter(|r| r["stream"] == stream && r["h2_stream"] == *h2_stream)
                .filter(|r| r["from"] == side)
                .filter(|r| {
                    r["type"] == "message"
                        || (has_control
                            && r["type"] == "frame"
                            && (r["opcode_name"] == "ping" || r["opcode_name"] == "pong"))
                })
                .map(|r| {
                    let limited = r["problems"].as_array().is_some_and(|p| {
                        p.iter().any(|c| c == "inflate-limit" || c == "message-limit")
                    });
                    let payload = if limited {
                        b"<stopped at a limit>".to_vec()
                    } else {
                        comparable(our_payload(r))
                    };
                    (r["opcode_name"].as_str().unwrap().to_string(), payload)
                })
                .collect();
            let got: Vec<_> = if has_control {
                got
            } else {
                got.into_iter().filter(|(op, _)| op == "text" || op == "binary").collect()
            };
            let want: Vec<_> = if has_control {
                want
            } else {
                want.into_iter().filter(|(op, _)| op == "text" || op == "binary").collect()
            };
            if got != want {
                let show = |v: &[(String, Vec<u8>)]| {
                    v.iter()
                        .map(|(o, p)| {
                            format!("{o}:{}", String::from_utf8_lossy(&p[..p.len().min(40)]))
                        })
                        .collect::<Vec<_>>()
                };
                errs.push(format!(
                    "{side} messages differ on stream {stream}: got {:?} want {:?}",
                    show(&got),
                    show(&want)
                ));
            }
        }
        if let Some(close) = tc.get("close").filter(|c| !c.is_null()) {
            let ours = &conn["close"];
            for key in ["initiator", "code", "echoed"] {
                if !close[key].is_null() && ours[key] != close[key] {
                    errs.push(format!("close {key}: got {} want {}", ours[key], close[key]));
                }
            }
            if let Some(reason) = close["reason"].as_str() {
                if ours["reason"].as_str() != Some(reason) {
                    errs.push(format!("close reason: got {} want {reason:?}", ours["reason"]));
                }
            }
        }
        if let Some(note) = tc["note"].as_str() {
            let noted = of_type(&recs, "handshake").iter().any(|h| {
                h["stream"] == stream
                    && h["notes"].as_array().is_some_and(|n| n.iter().any(|x| x == note))
            });
            if !noted {
                errs.push(format!("stream {stream}: no handshake note {note:?}"));
            }
            let proxies: Vec<&str> = conn["proxies"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if note.strip_prefix("through a proxy: ") != Some(proxies.join(", then ").as_str()) {
                errs.push(format!("stream {stream}: connection proxies {proxies:?} for {note:?}"));
            }
        }
        if let Some(end) = tc["tcp_end"].as_str() {
            if conn["tcp_end"] != end {
                errs.push(format!("tcp_end: got {} want {end}", conn["tcp_end"]));
            }
        }
    }
    if let Some(want) = truth["expect_stream_bytes"].as_u64() {
        let end = recs.last().map(|e| &e["stream_bytes"]);
        let got: u64 = end
            .and_then(Value::as_object)
            .map(|o| o.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0);
        if got != want {
            errs.push(format!("stream bytes accounted {got}, want every one of {want}"));
        }
    }
    if let Some(n) = truth["expect_websocket_connections"].as_u64() {
        let got = conns.iter().filter(|c| c["websocket"] == true).count() as u64;
        if got != n {
            errs.push(format!("{got} WebSocket connections, want {n}"));
        }
    }
    if let Some(hs) = truth.get("expect_handshake") {
        let found = of_type(&recs, "handshake");
        let Some(h) = found.first() else { return Err("no handshake record".into()) };
        for (k, v) in hs.as_object().unwrap() {
            if &h[k] != v {
                errs.push(format!("handshake {k}: got {} want {v}", h[k]));
            }
        }
    }
    if let Some(want) = truth.get("expect_tls") {
        let tls = of_type(&recs, "tls");
        if tls.is_empty() {
            errs.push("no tls record".into());
        }
        for t in &tls {
            for (k, v) in want.as_object().unwrap() {
                if &t[k] != v {
                    errs.push(format!("tls {k}: got {} want {v}", t[k]));
                }
            }
        }
        for c in conns.iter().filter(|c| c["websocket"] == true) {
            if c["tls"]["decrypted"] != true || c["tls"]["undecrypted_records"] != 0 {
                errs.push(format!("connection {} not fully decrypted: {}", c["stream"], c["tls"]));
            }
        }
    }
    if let Some(tcp) = truth.get("expect_tcp") {
        let n = |ev: &str| {
            recs.iter().filter(|r| r["type"] == "tcp" && r["event"] == ev).count() as u64
        };
        if let Some(k) = tcp["keepalive_min"].as_u64() {
            if n("keepalive") < k {
                errs.push(format!("{} keepalives, want at least {k}", n("keepalive")));
            }
        }
        if let Some(from) = tcp["rst_from"].as_str() {
            if !recs.iter().any(|r| r["type"] == "tcp" && r["event"] == "rst" && r["from"] == from)
            {
                errs.push(format!("no RST from the {from}"));
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

#[test]
fn testdata_cases_match_their_truth() {
    let cases = cases();
    assert!(!cases.is_empty(), "no testdata cases");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|d| {
            check_case(d)
                .err()
                .map(|e| format!("{}: {e}", d.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn output_is_deterministic() {
    for dir in cases().iter().take(12) {
        let capture = capture_in(dir);
        let a = run_path(&["--json", "--conns"], &capture);
        let b = run_path(&["--json", "--conns"], &capture);
        assert_eq!(a.stdout, b.stdout, "{}", dir.display());
        let a = run_path(&["--color", "never"], &capture);
        let b = run_path(&["--color", "never"], &capture);
        assert_eq!(a.stdout, b.stdout, "{}", dir.display());
    }
}

/// A refused upgrade is followed on the connection only when the refusal's end is known: each
/// connection of `crafted-upgrade-retry` shows its handshakes in order, and the refusals
/// whose body runs to the end, or that the client answered with frames, decode nothing; nor
/// does a 101 to HTTP/2.
#[test]
fn refused_upgrades_are_asked_again_where_the_refusal_ends() {
    let capture = testdata("crafted-upgrade-retry/capture.pcap");
    let recs = json_of(&capture, &[]);
    let conns = json_of(&capture, &["conns"]);
    let stream_of = |port: u16| {
        of_type(&recs, "handshake")
            .iter()
            .find(|h| h["server"].as_str().unwrap().ends_with(&format!(":{port}")))
            .map(|h| h["stream"].as_u64().unwrap())
            .unwrap_or_else(|| panic!("no handshake to port {port}"))
    };
    for (port, statuses, messages) in [
        (6200, vec![401, 101], 2),
        (6201, vec![407, 101], 2),
        (6202, vec![401, 101], 1),
        (6204, vec![403], 0),
        (6203, vec![401], 0),
    ] {
        let stream = stream_of(port);
        let of_stream = |kind| -> Vec<&Value> {
            of_type(&recs, kind).into_iter().filter(|r| r["stream"] == stream).collect()
        };
        let got: Vec<u64> =
            of_stream("handshake").iter().map(|h| h["status"].as_u64().unwrap()).collect();
        assert_eq!(got, statuses, "handshakes to port {port}");
        assert_eq!(of_stream("message").len(), messages, "messages to port {port}");
        let websocket = conns.iter().find(|c| c["stream"] == stream);
        if statuses.contains(&101) {
            assert_eq!(websocket.map(|c| c["status"].clone()), Some(101.into()), "port {port}");
        } else {
            assert!(websocket.is_none(), "a refused connection to port {port} is not WebSocket");
        }
    }
    // Bytes read after they arrived keep their packet: the retry pipelined behind the first
    // request (port 6201), and a frame sent behind its request before the 101 (port 6206).
    let packets = |kind: &str, key: &str, port: u16| -> Vec<u64> {
        let stream = stream_of(port);
        of_type(&recs, kind)
            .iter()
            .filter(|r| r["stream"] == stream && r["from"] != "server")
            .map(|r| r[key].as_u64().unwrap())
            .collect()
    };
    assert_eq!(packets("handshake", "request_packet", 6201), [18, 19]);
    let request = packets("handshake", "request_packet", 6206);
    let frame = packets("frame", "packet", 6206);
    assert_eq!((request.len(), frame.first()), (1, request.first()), "early frame's packet");
    // The h2c upgrade: a 101 to HTTP/2, so no handshake, no frames, and `check` passes.
    let to_h2c = |r: &&Value| {
        ["dst", "server"].iter().any(|k| r[k].as_str().is_some_and(|s| s.ends_with(":6205")))
    };
    assert!(!recs.iter().filter(to_h2c).any(|r| r["type"] != "tcp"), "h2c taken for WebSocket");
    assert!(run_path(&["check"], &capture).status.success());
}

/// Segments a capture lacks (`crafted-capture-loss`): a compressed message that refers back
/// to a lost one is reported as `deflate-history-lost` with nothing inflated, not as the text
/// the old window would give (tshark shows "ta gamma delta alpha b" for it); the messages
/// after it inflate right; frames continuing a message whose start was lost, and a message
/// begun after one whose end was lost, carry the gap, not a protocol error; a capture begun
/// mid-stream is read the same way; and a handshake that lost its answer or its request is
/// still followed by its frames. `check` passes: no peer did anything wrong.
#[test]
fn capture_loss_is_told_apart_from_peer_errors() {
    let capture = testdata("crafted-capture-loss/capture.pcap");
    let recs = json_of(&capture, &[]);
    let messages = |stream: u64, from: &str| -> Vec<(String, Vec<String>)> {
        of_type(&recs, "message")
            .iter()
            .filter(|m| m["stream"] == stream && m["from"] == from && m["opcode_name"] == "text")
            .map(|m| {
                let problems = m["problems"].as_array().unwrap();
                let problems = problems.iter().map(|p| p.as_str().unwrap().to_string());
                (m["text"].as_str().unwrap().to_string(), problems.collect())
            })
            .collect()
    };
    let ok = |t: &str| (t.to_string(), Vec::<String>::new());
    let flagged = |t: &str, p: &[&str]| (t.to_string(), p.iter().map(|s| s.to_string()).collect());
    assert_eq!(
        messages(0, "server"),
        [
            ok(&"alpha beta gamma delta ".repeat(3)),
            flagged("", &["deflate-history-lost"]),
            ok("0123456789"),
            ok("0123456789 0123456789 9876543210"),
            ok("after the orphans"),
        ]
    );
    assert_eq!(
        messages(0, "client"),
        [flagged("first part ", &["tcp-gap", "incomplete-message"]), ok("next message")]
    );
    assert_eq!(
        messages(1, "server"),
        [flagged("", &["deflate-history-lost"]), ok("fresh 42"), ok("fresh 42 fresh 42")]
    );
    let continuations: Vec<(u64, &Value)> = of_type(&recs, "frame")
        .into_iter()
        .filter(|f| f["opcode_name"] == "continuation")
        .map(|f| (f["stream"].as_u64().unwrap(), &f["problems"]))
        .collect();
    let gap = serde_json::json!(["tcp-gap"]);
    let none = serde_json::json!([]);
    assert_eq!(continuations, [(0, &gap), (0, &gap), (1, &none)]);
    // A lost answer to the upgrade request: the frames after it are found by content; a lost
    // request: the answer is not blamed for coming without one.
    assert_eq!(messages(2, "server"), [ok("hello after a lost answer")]);
    assert_eq!(messages(2, "client"), [ok("client after a lost answer")]);
    assert_eq!(messages(3, "server"), [ok("server after a lost request")]);
    let notes = |stream: u64| -> Value {
        let h = of_type(&recs, "handshake").into_iter().find(|h| h["stream"] == stream);
        h.map(|h| h["notes"].clone()).unwrap_or_default()
    };
    assert_eq!(notes(2), serde_json::json!(["the server's answer was lost in a TCP gap"]));
    assert_eq!(notes(3), serde_json::json!(["the upgrade request is not in the capture"]));
    let out = run_path(&["check"], &capture);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

/// Messages without a problem, by (stream, side, opcode, payload), each with its application
/// decoding, and error-level problem counts of a capture. A packet number in the decoding is
/// left out (dropping a packet renumbers the rest), and so is a message the decoder says it
/// could not read after a loss.
type Decodings = std::collections::HashMap<String, Vec<serde_json::Map<String, Value>>>;

fn clean_messages_and_errors(
    recs: &[Value],
) -> (Decodings, std::collections::HashMap<String, u64>) {
    let mut messages = Decodings::new();
    for m in of_type(recs, "message") {
        let mut app = m["app"].as_object().cloned().unwrap_or_default();
        app.remove("attachment_of");
        if m["problems"].as_array().is_some_and(|p| p.is_empty()) && !app.contains_key("not_read") {
            let key = format!(
                "{} {} {} {}{}",
                m["stream"], m["from"], m["opcode_name"], m["text"], m["bytes"]
            );
            messages.entry(key).or_default().push(app);
        }
    }
    let mut errors = std::collections::HashMap::new();
    for (code, n) in recs.last().unwrap()["problems"].as_object().unwrap() {
        let sev = wsdissect::problem::ProblemCode::from_code(code).map(|p| p.severity());
        if sev == Some(wsdissect::problem::Severity::Error) {
            errors.insert(code.clone(), n.as_u64().unwrap());
        }
    }
    (messages, errors)
}

/// Losing any one packet of a real recording (as tcpdump drops them under load) blames no
/// peer and shows nothing wrong: every message without a problem is one the whole capture
/// has, decoded the same way (MQTT packets split across messages included), and no
/// error-level problem appears that the whole capture lacks.
#[test]
fn losing_any_one_packet_blames_no_peer_and_shows_nothing_wrong() {
    let dir = std::env::temp_dir().join(format!("wsdissect-loss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lossy = dir.join("lossy.pcap");
    let mut runs = 0;
    for case in [
        "py-websockets-basic",
        "node-ws-deflate",
        "node-ws-plain",
        "chromium-websockets",
        "node-mqtt",
        "node-stomp-split",
    ] {
        let capture = testdata(&format!("{case}/capture.pcap"));
        let (whole, whole_errors) = clean_messages_and_errors(&json_of(&capture, &[]));
        let packets = of_type(&json_of(&capture, &[]), "end")[0]["packets"].as_u64().unwrap();
        for lost in 1..=packets {
            crate::tls::without_packet(&capture, lost, &lossy);
            let (messages, errors) = clean_messages_and_errors(&json_of(&lossy, &[]));
            // Each message is one of the whole capture's, decoded the same way or knowing less
            // (an application the lost handshake would have named stays unknown).
            for (m, apps) in &messages {
                let whole_apps = whole.get(m).map(Vec::as_slice).unwrap_or_default();
                assert!(
                    apps.len() <= whole_apps.len(),
                    "{case} without packet {lost}: {m} is not in the whole capture"
                );
                for app in apps {
                    let known =
                        whole_apps.iter().any(|w| app.iter().all(|(k, v)| w.get(k) == Some(v)));
                    assert!(known, "{case} without packet {lost}: {m} decoded as {app:?}");
                }
            }
            for (code, n) in &errors {
                assert!(
                    whole_errors.get(code).is_some_and(|w| w >= n),
                    "{case} without packet {lost}: {n} {code} (the whole capture has {:?})",
                    whole_errors.get(code)
                );
            }
            runs += 1;
        }
    }
    assert!(runs > 60, "{runs}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A SOCKS5 connection whose client lost a packet of the proxy handshake (packet 10 of
/// `py-websockets-socks`): the proxy's reply before the 101 is skipped and told, not read as a
/// malformed HTTP answer, so the WebSocket is decoded and `check` passes. (Losing packet 6, 8,
/// 11 or 28 of that handshake still leaves a frame search in the proxy's bytes: see
/// docs/tshark-differences.md.)
#[test]
fn a_proxy_reply_left_before_the_upgrade_answer_is_skipped() {
    let capture = testdata("py-websockets-socks/capture.pcap");
    let dir = std::env::temp_dir().join(format!("wsdissect-socks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lossy = dir.join("lossy.pcap");
    crate::tls::without_packet(&capture, 10, &lossy);
    let recs = json_of(&lossy, &[]);
    let texts: Vec<&str> = of_type(&recs, "message")
        .iter()
        .filter(|m| m["stream"] == 0)
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert!(texts.contains(&"hello through SOCKS5"), "{texts:?}");
    let skipped = of_type(&recs, "problem").into_iter().any(|p| {
        p["code"] == "undecodable-data"
            && p["detail"].as_str().unwrap().contains("before the answer to the upgrade request")
    });
    assert!(skipped);
    let out = run_path(&["check"], &lossy);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let _ = std::fs::remove_dir_all(&dir);
}
