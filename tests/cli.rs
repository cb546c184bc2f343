//! Errors for people: one clear line and a documented exit code.

use crate::util::*;
use std::io::Write;
use std::process::{Command, Stdio};

fn one_error_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr).to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "expected one stderr line, got {text:?}");
    assert!(lines[0].starts_with("wsdissect: "), "{text:?}");
    lines[0].to_string()
}

#[test]
fn missing_file_is_one_line_and_exit_2() {
    let out = run(&["--json", "/nonexistent/capture.pcap"]);
    assert_eq!(out.status.code(), Some(2));
    let line = one_error_line(&out.stderr);
    assert!(line.contains("no such file"), "{line}");
}

#[test]
fn no_input_is_a_usage_error() {
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    one_error_line(&out.stderr);
}

#[test]
fn text_file_named_pcap_is_not_a_capture() {
    let dir = std::env::temp_dir().join(format!("wsdissect-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("notes.pcap");
    std::fs::write(&p, "hello, this is text\n").unwrap();
    let out = run_path(&["--json"], &p);
    assert_eq!(out.status.code(), Some(2));
    let line = one_error_line(&out.stderr);
    assert!(line.contains("not a capture"), "{line}");
    // The records printed before the error stay valid JSON Lines.
    records(&out.stdout);
    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, "").unwrap();
    let out = run_path(&["--json"], &empty);
    assert_eq!(out.status.code(), Some(2));
    assert!(one_error_line(&out.stderr).contains("not a capture"));
}

#[test]
fn truncated_capture_keeps_what_was_read() {
    let Some(shared) = shared_captures() else { return };
    let src = std::fs::read(shared.join("zeek/websocket.pcap")).unwrap();
    let dir = std::env::temp_dir().join(format!("wsdissect-trunc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("cut.pcap");
    std::fs::write(&p, &src[..src.len() - 30]).unwrap();
    let out = run_path(&["--json"], &p);
    assert_eq!(out.status.code(), Some(2));
    let line = one_error_line(&out.stderr);
    assert!(line.contains("truncated"), "{line}");
    let recs = records(&out.stdout);
    let end = recs.last().unwrap();
    assert_eq!(end["packets"], 26);
    assert_eq!(end["errors"].as_array().unwrap().len(), 1);
    assert!(!of_type(&recs, "frame").is_empty());
}

#[test]
fn closed_pipe_exits_quietly() {
    let Some(shared) = shared_captures() else { return };
    let cap = shared.join("jaysenlestari-ctf/capture.pcap");
    let first = first_line_then_close(&[&cap.to_string_lossy()]);
    assert!(first.contains("No."));
}

#[test]
fn gzip_capture_from_stdin_is_detected_by_content() {
    let gz = std::fs::read(testdata("crafted-deflate/capture.pcap.gz")).unwrap();
    let mut child = Command::new(bin())
        .args(["--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&gz).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let recs = records(&out.stdout);
    let from_file = json_of(&testdata("crafted-deflate/capture.pcap.gz"), &[]);
    assert_eq!(of_type(&recs, "handshake").len(), 2);
    assert!(of_type(&recs, "message").len() > 8);
    assert_eq!(of_type(&recs, "message"), of_type(&from_file, "message"));
}

#[test]
fn zstd_and_lz4_captures_are_read_like_wireshark_reads_them() {
    use std::io::Write as _;
    let src = testdata("py-websockets-basic/capture.pcap");
    let plain = std::fs::read(&src).unwrap();
    let want = json_of(&src, &[]);
    let dir = std::env::temp_dir().join(format!("wsdissect-compressed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let zst = dir.join("capture.pcap.zst");
    std::fs::write(&zst, zstd::stream::encode_all(&plain[..], 19).unwrap()).unwrap();
    let lz4 = dir.join("capture.pcap.lz4");
    let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
    enc.write_all(&plain).unwrap();
    std::fs::write(&lz4, enc.finish().unwrap()).unwrap();
    for path in [&zst, &lz4] {
        let got = json_of(path, &[]);
        // Only the begin record names the input.
        assert_eq!(got[1..], want[1..], "{}", path.display());
    }
    // Cut short: the packets before the cut, then the truncated-capture exit code.
    let z = std::fs::read(&zst).unwrap();
    std::fs::write(&zst, &z[..z.len() / 2]).unwrap();
    let out = run_path(&["--json"], &zst);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn several_files_are_one_run_and_r_is_an_alias() {
    let a = testdata("py-websockets-basic/capture.pcap");
    let b = testdata("node-ws-deflate/capture.pcap");
    let both = run(&["--json", "-r", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(both.status.code(), Some(0), "{}", String::from_utf8_lossy(&both.stderr));
    let recs = records(&both.stdout);
    let one = |p: &std::path::Path| of_type(&json_of(p, &[]), "frame").len();
    assert_eq!(of_type(&recs, "frame").len(), one(&a) + one(&b));
    // Streams are numbered across the whole run, packets too.
    let streams: std::collections::BTreeSet<u64> =
        of_type(&recs, "handshake").iter().map(|h| h["stream"].as_u64().unwrap()).collect();
    assert_eq!(streams.len(), 2);
}

#[test]
fn limits_have_flags_and_are_reported_when_hit() {
    // 98 connections through a table of 10: the least recently active are evicted, and the
    // end record says which limit was hit.
    let Some(shared) = shared_captures() else { return };
    let p = shared.join("arkime/arkime_synthetic.pcap");
    let recs = json_of(&p, &["--all", "--max-connections", "10"]);
    let end = recs.last().unwrap();
    assert_eq!(end["limits_hit"], serde_json::json!(["max-connections"]));
    assert!(end["problems"]["connection-limit"].as_u64().unwrap() >= 88);
    assert_eq!(end["packets"], 918);
    assert_eq!(end["connections"], 98, "every connection is still counted");
    // A compressed message past the inflate limit is cut, not inflated whole.
    let bomb = testdata("crafted-deflate/capture.pcap.gz");
    let recs = json_of(&bomb, &["--max-inflate", "100000"]);
    let limited: Vec<&serde_json::Value> = of_type(&recs, "message")
        .into_iter()
        .filter(|m| m["problems"].as_array().unwrap().iter().any(|c| c == "inflate-limit"))
        .collect();
    assert_eq!(limited.len(), 1);
    assert!(limited[0]["len"].as_u64().unwrap() <= 100_000 + 64 * 1024);
    assert!(recs.last().unwrap()["limits_hit"].as_array().unwrap().contains(&"max-inflate".into()));
}
