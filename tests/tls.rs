//! wss://: TLS connections decrypted with key logs (files, SSLKEYLOGFILE, pcapng secrets),
//! listed without them, and reported, not crashed on, with wrong ones; and the decrypted
//! frames against tshark's.

use crate::cases::{capture_in, case_args, cases};
use crate::util::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Cases recorded over TLS with a key log file.
/// The single-connection TLS recordings. The tour's wss recording (a browser that also
/// loads its page over https, by IP address, so without SNI) is checked in tests/tour.rs.
fn keylog_cases() -> Vec<PathBuf> {
    cases()
        .into_iter()
        .filter(|d| !case_args(d).is_empty())
        .filter(|d| !d.file_name().unwrap().to_string_lossy().starts_with("tour-"))
        // A browser's HTTP/2 connection, with tests of its own (tests/h2.rs).
        .filter(|d| !d.file_name().unwrap().to_string_lossy().contains("-h2-"))
        .collect()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsdissect-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn conns(cap: &Path, extra: &[&str]) -> (Vec<Value>, Vec<Value>) {
    let mut args = vec!["--conns"];
    args.extend_from_slice(extra);
    let recs = json_of(cap, &args);
    let conns = of_type(&recs, "connection").into_iter().cloned().collect();
    (recs, conns)
}

#[test]
fn there_are_tls_cases_of_each_version_and_suite_family() {
    let names: Vec<String> = keylog_cases()
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in ["node-wss-tls13", "node-wss-tls12-aes128gcm", "node-wss-tls13-chacha"] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    assert!(names.iter().any(|n| n.starts_with("py-")), "no Python TLS case in {names:?}");
}

/// Without a key the connection is still listed as TLS, with SNI, version, byte counts and
/// the tls-no-key problem, and nothing is made up from the encrypted bytes.
#[test]
fn without_a_key_the_connection_is_listed_as_tls() {
    for dir in keylog_cases() {
        let cap = capture_in(&dir);
        let (recs, conns) = conns(&cap, &[]);
        let name = dir.display();
        assert_eq!(conns.len(), 1, "{name}: {conns:?}");
        let c = &conns[0];
        assert_eq!(c["websocket"], false, "{name}");
        assert_eq!(c["tls"]["sni"], "wsdissect.test", "{name}");
        assert_eq!(c["tls"]["keys_found"], false, "{name}");
        assert_eq!(c["tls"]["decrypted"], false, "{name}");
        assert!(c["tls"]["version"].as_str().unwrap().starts_with("TLS 1."), "{name}");
        assert!(c["tls"]["client_bytes"].as_u64().unwrap() > 500, "{name}");
        assert!(c["tls"]["server_bytes"].as_u64().unwrap() > 500, "{name}");
        assert!(c["tls"]["undecrypted_records"].as_u64().unwrap() > 0, "{name}");
        assert!(c["problems"].as_array().unwrap().iter().any(|p| p == "tls-no-key"), "{name}");
        let problems: Vec<&Value> =
            of_type(&recs, "problem").into_iter().filter(|p| p["code"] == "tls-no-key").collect();
        assert_eq!(problems.len(), 1, "{name}");
        assert_eq!(of_type(&recs, "tls").len(), 1, "{name}");
        assert!(of_type(&recs, "message").is_empty(), "{name}");
        assert!(of_type(&recs, "frame").is_empty(), "{name}");
        let end = recs.last().unwrap();
        assert!(end["stream_bytes"]["tls"].as_u64().unwrap() > 1000, "{name}");
    }
}

/// A key log whose secrets are all wrong (every hex digit of every secret changed).
fn corrupt_keylog(src: &Path, dst: &Path) {
    let text = std::fs::read_to_string(src).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        if parts.len() == 3 && !line.starts_with('#') {
            let bad: String = parts[2].chars().map(|c| if c == '0' { '1' } else { '0' }).collect();
            out.push_str(&format!("{} {} {bad}\n", parts[0], parts[1]));
        }
    }
    std::fs::write(dst, out).unwrap();
}

#[test]
fn a_wrong_key_is_a_problem_not_a_crash() {
    for dir in keylog_cases() {
        let cap = capture_in(&dir);
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let bad = tmp(&format!("{name}-wrong.txt"));
        corrupt_keylog(&dir.join("keylog.txt"), &bad);
        let (recs, conns) = conns(&cap, &["--keylog", bad.to_str().unwrap()]);
        assert_eq!(conns.len(), 1, "{name}");
        let c = &conns[0];
        assert_eq!(c["tls"]["keys_found"], true, "{name}");
        assert_eq!(c["tls"]["decrypted"], false, "{name}");
        assert!(
            c["problems"].as_array().unwrap().iter().any(|p| p == "tls-decrypt-failed"),
            "{name}: {c}"
        );
        assert!(of_type(&recs, "message").is_empty(), "{name}");
        let failed = of_type(&recs, "problem")
            .into_iter()
            .filter(|p| p["code"] == "tls-decrypt-failed")
            .count();
        // Once per direction at most.
        assert!((1..=2).contains(&failed), "{name}: {failed}");
    }
}

/// SSLKEYLOGFILE works like --keylog.
#[test]
fn sslkeylogfile_is_read() {
    let dir = testdata("node-wss-tls13");
    let cap = capture_in(&dir);
    let with_flag =
        run_path(&["--json", "--keylog", dir.join("keylog.txt").to_str().unwrap()], &cap);
    let with_env = command()
        .env("SSLKEYLOGFILE", dir.join("keylog.txt"))
        .args(["--json"])
        .arg(&cap)
        .output()
        .unwrap();
    assert!(with_env.status.success());
    assert_eq!(with_flag.stdout, with_env.stdout);
    let recs = records(&with_env.stdout);
    assert_eq!(of_type(&recs, "message").len(), 5);
}

#[test]
fn a_missing_keylog_file_is_one_line_and_exit_2() {
    let cap = capture_in(&testdata("node-wss-tls13"));
    let out = run_path(&["--keylog", "/nonexistent/keys.txt"], &cap);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("wsdissect: --keylog /nonexistent/keys.txt"), "{err}");
    assert!(out.stdout.is_empty());
}

/// The pcapng with secrets inside decrypts without any key log, to the same messages as
/// the capture it was made from with its key log file.
#[test]
fn pcapng_decryption_secrets_are_used() {
    let src = testdata("py-websockets-tls");
    let dsb = testdata("py-websockets-tls-dsb");
    let messages = |recs: &[Value]| -> Vec<(Value, Value)> {
        of_type(recs, "message").iter().map(|m| (m["from"].clone(), m["text"].clone())).collect()
    };
    let a =
        json_of(&capture_in(&src), &case_args(&src).iter().map(String::as_str).collect::<Vec<_>>());
    let b = json_of(&capture_in(&dsb), &[]);
    assert!(!messages(&a).is_empty());
    assert_eq!(messages(&a), messages(&b));
    assert_eq!(of_type(&b, "tls")[0]["keys_found"], true);
}

/// Frames of every decrypted case: packet, opcode, mask and payload length as tshark
/// dissects them with the same key log (`tshark -o tls.keylog_file:… -Y websocket`).
/// tshark's `websocket.payload_length` is the 7-bit header field (126/127 for longer
/// payloads); the real length is in `payload_length_ext_16`/`_64`.
#[test]
fn decrypted_frames_agree_with_tshark() {
    let tshark_ok = std::process::Command::new("tshark").arg("-v").output().is_ok();
    if !tshark_ok {
        eprintln!("skipping: tshark not installed");
        return;
    }
    for dir in keylog_cases() {
        let cap = capture_in(&dir);
        let truth = std::fs::read_to_string(dir.join("truth.json")).unwrap();
        let truth: Value = serde_json::from_str(&truth).unwrap();
        if truth["tshark_differs"].is_string() {
            // Where tshark is known to be wrong; testdata_cases_match_their_truth covers ours.
            continue;
        }
        let keylog = dir.join("keylog.txt");
        let out = std::process::Command::new("tshark")
            .arg("-o")
            .arg(format!("tls.keylog_file:{}", keylog.display()))
            .arg("-r")
            .arg(&cap)
            .args(["-Y", "websocket", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=;"])
            .args(["-e", "frame.number", "-e", "websocket.opcode", "-e", "websocket.mask"])
            .args(["-e", "websocket.payload_length", "-e", "websocket.payload_length_ext_16"])
            .args(["-e", "websocket.payload_length_ext_64"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut theirs = Vec::new();
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let packet: u64 = f[0].parse().unwrap();
            // Several frames in one packet are `;`-separated.
            let split = |i: usize| -> Vec<String> {
                f.get(i).unwrap_or(&"").split(';').map(str::to_string).collect()
            };
            let (ops, masks, lens) = (split(1), split(2), split(3));
            let mut ext16 = split(4).into_iter().filter(|s| !s.is_empty());
            let mut ext64 = split(5).into_iter().filter(|s| !s.is_empty());
            for k in 0..ops.len() {
                let short: u64 = lens[k].parse().unwrap();
                let len = match short {
                    126 => ext16.next().unwrap().parse().unwrap(),
                    127 => ext64.next().unwrap().parse().unwrap(),
                    n => n,
                };
                theirs.push((packet, ops[k].parse::<u64>().unwrap(), masks[k] == "1", len));
            }
        }
        let recs = json_of(&cap, &case_args(&dir).iter().map(String::as_str).collect::<Vec<_>>());
        let ours: Vec<(u64, u64, bool, u64)> = of_type(&recs, "frame")
            .iter()
            .map(|f| {
                (
                    f["packet"].as_u64().unwrap(),
                    f["opcode"].as_u64().unwrap(),
                    f["masked"].as_bool().unwrap(),
                    f["payload_len"].as_u64().unwrap(),
                )
            })
            .collect();
        assert!(!ours.is_empty(), "{}", dir.display());
        assert_eq!(ours, theirs, "{}", dir.display());
    }
}

/// Every TLS stream byte is accounted for once: decrypted bytes where they went (HTTP,
/// WebSocket), the rest (headers, handshake, tags) as `tls`; the totals with and without the
/// key are the same.
#[test]
fn stream_bytes_add_up_with_and_without_the_key() {
    let total = |recs: &[Value]| -> u64 {
        let b = &recs.last().unwrap()["stream_bytes"];
        ["http", "websocket", "skipped", "other", "gap", "tls"]
            .iter()
            .map(|k| b[*k].as_u64().unwrap())
            .sum()
    };
    for dir in keylog_cases() {
        let cap = capture_in(&dir);
        let args = case_args(&dir);
        let with = json_of(&cap, &args.iter().map(String::as_str).collect::<Vec<_>>());
        let without = json_of(&cap, &[]);
        let b = &with.last().unwrap()["stream_bytes"];
        assert!(b["websocket"].as_u64().unwrap() > 0, "{}", dir.display());
        assert_eq!(without.last().unwrap()["stream_bytes"]["websocket"], 0);
        assert_eq!(total(&with), total(&without), "{}", dir.display());
    }
}

/// `src` (classic pcap) without its packet number `drop` (counted from 1).
pub fn without_packet(src: &Path, drop: u64, dst: &Path) {
    let b = std::fs::read(src).unwrap();
    let le = b[..4] == [0xd4, 0xc3, 0xb2, 0xa1] || b[..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    let mut out = b[..24].to_vec();
    let (mut at, mut n) = (24, 0);
    while at + 16 <= b.len() {
        let field: [u8; 4] = b[at + 8..at + 12].try_into().unwrap();
        let incl = if le { u32::from_le_bytes(field) } else { u32::from_be_bytes(field) } as usize;
        n += 1;
        if n != drop {
            out.extend_from_slice(&b[at..at + 16 + incl]);
        }
        at += 16 + incl;
    }
    std::fs::write(dst, out).unwrap();
}

/// A server packet lost from each real TLS recording (TLS 1.2 and 1.3, AES-GCM, ChaCha20,
/// CBC with and without encrypt-then-MAC): decryption finds the next record by its sequence
/// number and goes on, so the server's later frames are all decoded, the gap is reported,
/// and no TLS problem is.
#[test]
fn decryption_resumes_after_a_lost_packet() {
    let mut tried = 0;
    for dir in keylog_cases() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with("-no-syn") {
            // Its capture starts after the handshake's first packets: nothing to lose there.
            continue;
        }
        let cap = capture_in(&dir);
        let args = case_args(&dir);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server_frames = |recs: &[Value]| -> Vec<(u64, u64, u64)> {
            of_type(recs, "frame")
                .into_iter()
                .filter(|f| f["from"] == "server")
                .map(|f| {
                    let n = |k: &str| f[k].as_u64().unwrap();
                    (n("packet"), n("opcode"), n("payload_len"))
                })
                .collect()
        };
        let whole = server_frames(&json_of(&cap, &args));
        // The first packet that completes a server frame, when later packets complete more.
        let lost = whole[0].0;
        let after: Vec<(u64, u64)> =
            whole.iter().filter(|f| f.0 > lost).map(|f| (f.1, f.2)).collect();
        assert!(!after.is_empty(), "{name}: {whole:?}");
        let gapped = tmp(&format!("{name}-gap.pcap"));
        without_packet(&cap, lost, &gapped);
        let recs = json_of(&gapped, &args);
        let got: Vec<(u64, u64)> = server_frames(&recs).iter().map(|f| (f.1, f.2)).collect();
        assert_eq!(got, after, "{name}: the server frames after the lost packet");
        let gaps = of_type(&recs, "tcp").into_iter().filter(|t| t["event"] == "gap").count();
        assert_eq!(gaps, 1, "{name}");
        let tls_problems: Vec<&Value> = of_type(&recs, "problem")
            .into_iter()
            .filter(|p| p["code"].as_str().unwrap().starts_with("tls-"))
            .collect();
        assert!(tls_problems.is_empty(), "{name}: {tls_problems:?}");
        tried += 1;
    }
    assert!(tried >= 10, "{tried} TLS recordings tried");
}

/// A client that pipelines its ClientHello behind an HTTP `CONNECT` to a proxy, the `CONNECT`
/// lost from the capture: the proxy's `HTTP/1.1 200` then comes before the server's first
/// record, and is skipped instead of ending that direction as malformed TLS, so the
/// connection is decrypted and decoded as from the whole capture, and `check` passes.
#[test]
fn a_proxy_answer_whose_connect_was_lost_is_skipped() {
    let dir = testdata("py-websockets-tls-proxy-pipelined");
    let cap = dir.join("capture.pcap");
    let keylog = dir.join("keylog.txt").to_string_lossy().into_owned();
    let texts = |path: &Path| -> Vec<String> {
        of_type(&json_of(path, &["--keylog", &keylog]), "message")
            .iter()
            .filter_map(|m| m["text"].as_str().map(str::to_owned))
            .collect()
    };
    let whole = texts(&cap);
    assert!(whole.len() >= 4, "{whole:?}");
    // Packet 4 is the CONNECT.
    let table = String::from_utf8(run_path(&["--keylog", &keylog], &cap).stdout).unwrap();
    assert!(
        table.lines().any(|l| l.trim_start().starts_with("4 ") && l.contains("CONNECT ")),
        "{table}"
    );
    let lossy = std::env::temp_dir().join(format!("wsdissect-connect-{}.pcap", std::process::id()));
    without_packet(&cap, 4, &lossy);
    assert_eq!(texts(&lossy), whole);
    let check = run_path(&["check", "--keylog", &keylog], &lossy);
    assert_eq!(check.status.code(), Some(0), "{}", String::from_utf8_lossy(&check.stdout));
    let _ = std::fs::remove_file(lossy);
}
