//! The adversarial corpus (`testdata/hostile/`, made by `testdata/gen/hostile.py`, and a
//! connection flood generated here): for each input, the binary exits by itself with the
//! documented code, within a memory and a time bound measured on the process, and reports
//! what happened with the right problem code.

use crate::util::*;
use serde_json::Value;
use std::path::PathBuf;

/// Peak RSS allowed for a run, MiB. An ordinary small capture takes about 8 MiB; a limit hit
/// must not take much more.
const RSS_MIB: u64 = 64;
/// Seconds after which a run is killed and failed; each takes well under one.
const DEADLINE: u64 = 30;

fn hostile(name: &str) -> String {
    testdata(&format!("hostile/{name}")).to_string_lossy().into_owned()
}

/// Runs `args`, asserting exit `code` within `rss_mib`, and returns the JSON Lines.
fn run_json(args: &[&str], code: i32, rss_mib: u64) -> Vec<Value> {
    let m = run_measured(args, DEADLINE);
    m.assert_bounded(&format!("{args:?}"), code, rss_mib, DEADLINE);
    if code == 2 {
        let stderr = String::from_utf8_lossy(&m.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
    records(&m.stdout)
}

fn end(recs: &[Value]) -> &Value {
    recs.last().unwrap()
}

/// How many times the run reported `code` (the `end` record's count).
fn problems(recs: &[Value], code: &str) -> u64 {
    end(recs)["problems"][code].as_u64().unwrap_or(0)
}

/// How many problem records of `code` the run emitted.
fn problem_records(recs: &[Value], code: &str) -> usize {
    of_type(recs, "problem").iter().filter(|p| p["code"] == code).count()
}

fn texts(recs: &[Value]) -> Vec<&str> {
    of_type(recs, "message").iter().filter_map(|m| m["text"].as_str()).collect()
}

fn limits_hit(recs: &[Value]) -> Vec<&str> {
    end(recs)["limits_hit"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect()
}

#[test]
fn length_2_63_minus_1_and_length_with_msb_set() {
    let recs = run_json(&["--json", &hostile("huge-lengths.pcap.gz")], 0, RSS_MIB);
    // 2^63-1 is a legal length: the frame is cut short by the end of the stream, with its
    // megabyte kept (under --max-message) and nothing allocated for the rest.
    assert!(problems(&recs, "incomplete-frame") >= 1);
    let huge = of_type(&recs, "frame")
        .into_iter()
        .find(|f| f["payload_len"].as_u64() == Some((1 << 63) - 1))
        .expect("the 2^63-1 frame is reported");
    assert_eq!(huge["from"], "server");
    assert_eq!(huge["bytes"].as_str().unwrap().len(), (1 << 20) / 3 * 4 + 4, "1 MiB kept");
    // The most significant bit set is a violation, reported on the frame; the other peer's
    // messages are still decoded.
    assert_eq!(problems(&recs, "length-msb-set"), 1);
    let msb = of_type(&recs, "frame")
        .into_iter()
        .find(|f| f["payload_len"].as_u64() == Some(0xFFFF_FFFF_FFFF_FFF0))
        .expect("the frame with the MSB set is reported");
    assert!(msb["problems"].as_array().unwrap().iter().any(|p| p == "length-msb-set"), "{msb}");
    assert_eq!(texts(&recs), ["before", "after the msb"]);
    assert_eq!(end(&recs)["websocket_connections"], 2);
}

#[test]
fn deflate_bomb_stops_at_the_inflate_limit() {
    let recs = run_json(&["--json", &hostile("deflate-bomb.pcap.gz")], 0, 128);
    assert_eq!(problems(&recs, "inflate-limit"), 1);
    assert!(limits_hit(&recs).iter().any(|l| l.starts_with("max-inflate")), "{:?}", end(&recs));
    // The connection goes on: the next compressed message is inflated.
    assert_eq!(texts(&recs), ["after the bomb"]);
    // Smaller limits are honoured the same way, in less memory.
    let recs = run_json(
        &[
            "--json",
            "--max-inflate",
            "1048576",
            "--max-message",
            "65536",
            &hostile("deflate-bomb.pcap.gz"),
        ],
        0,
        RSS_MIB,
    );
    assert_eq!(problems(&recs, "inflate-limit"), 1);
    assert_eq!(texts(&recs), ["after the bomb"]);
}

#[test]
fn rsv1_garbage_is_reported_and_decoding_goes_on() {
    let recs = run_json(&["--json", &hostile("rsv1-garbage.pcap.gz")], 0, RSS_MIB);
    assert!(problems(&recs, "rsv-without-extension") >= 40);
    assert!(problems(&recs, "decompress-failed") >= 1);
    assert_eq!(texts(&recs).iter().filter(|t| **t == "still decoding").count(), 2);
}

#[test]
fn sequence_space_far_ahead_of_a_hole() {
    let recs = run_json(&["--json", &hostile("sequence-leap.pcap.gz")], 0, RSS_MIB);
    assert!(problems(&recs, "stream-buffer-limit") >= 1);
    assert!(problems(&recs, "tcp-gap") >= 1);
    assert!(limits_hit(&recs).contains(&"max-stream-buffer"));
    // The gaps add up to about 2 GB of sequence space: counted, never allocated.
    let gap = end(&recs)["stream_bytes"]["gap"].as_u64().unwrap();
    assert!(gap > 2_000_000_000, "gap bytes {gap}");
}

#[test]
fn a_small_scan_window_still_finds_frames_and_reports_the_skip() {
    let args = ["--json", "--max-scan-window", "1024", &hostile("sequence-leap.pcap.gz")];
    let recs = run_json(&args, 0, RSS_MIB);
    assert!(problems(&recs, "resync") >= 3000, "{}", end(&recs));
}

#[test]
fn pings_nobody_answers() {
    let recs = run_json(&["--json", &hostile("ping-flood.pcap.gz")], 0, RSS_MIB);
    assert_eq!(problem_records(&recs, "ping-limit"), 1000 - 64);
    assert!(limits_hit(&recs).contains(&"max-pending-pings"));
    // The last ping is still remembered, the first one forgotten.
    assert_eq!(problem_records(&recs, "unsolicited-pong"), 1);
    let recs = run_json(&["conns", "--json", &hostile("ping-flood.pcap.gz")], 0, RSS_MIB);
    assert_eq!(of_type(&recs, "connection")[0]["rtt_ms"].as_array().unwrap().len(), 1);
    let args = ["--json", "--max-pending-pings", "1000", &hostile("ping-flood.pcap.gz")];
    let recs = run_json(&args, 0, RSS_MIB);
    assert_eq!(problems(&recs, "ping-limit"), 0);
    assert_eq!(problems(&recs, "unsolicited-pong"), 0);
}

/// Each field of `Limits` has a row in the README's table, whose flag `--help` lists and
/// whose problem codes exist.
#[test]
fn every_limit_has_a_flag_a_documented_default_and_a_problem_code() {
    let src = std::fs::read_to_string(repo().join("src/limits.rs")).unwrap();
    let fields = src.lines().filter(|l| l.trim_start().starts_with("pub max_")).count();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let table = readme.split("## Limits").nth(1).unwrap().split("\n## ").next().unwrap();
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| `--")).collect();
    assert_eq!(rows.len(), fields, "README limits table vs src/limits.rs:\n{table}");
    let help = String::from_utf8(run(&["--help"]).stdout).unwrap();
    let docs = std::fs::read_to_string(repo().join("docs/json.md")).unwrap();
    for row in rows {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let flag = cells[1].trim_matches('`');
        assert!(help.contains(flag), "--help lacks {flag}");
        assert!(!cells[2].is_empty(), "{flag} has no default");
        let codes: Vec<&str> = cells[3].split('`').skip(1).step_by(2).collect();
        assert!(!codes.is_empty(), "{flag} names no problem code");
        for code in codes {
            assert!(docs.contains(&format!("| `{code}` |")), "{flag}: unknown code {code}");
        }
    }
}

#[test]
fn overlapping_retransmissions_with_conflicting_bytes() {
    let recs = run_json(&["--json", &hostile("overlap-conflict.pcap")], 0, RSS_MIB);
    assert_eq!(problems(&recs, "overlap-conflict"), 1);
    // The first copy of every byte wins.
    assert_eq!(texts(&recs), ["the first copy wins", "delivered, then rewritten"]);
}

#[test]
fn a_million_zero_length_frames() {
    let recs = run_json(&["conns", "--json", &hostile("zero-length-frames.pcap.gz")], 0, RSS_MIB);
    let conn = of_type(&recs, "connection")[0];
    let s2c = &conn["server_to_client"];
    assert_eq!(s2c["frames"], 1_000_001);
    assert_eq!(s2c["messages"], 500_001);
    assert_eq!(s2c["frames_by_opcode"]["continuation"], 499_999);
    assert_eq!(conn["close"]["clean"], true);
    assert_eq!(end(&recs)["frames"], 1_000_002);
    // The fragmented message is whole: 500,000 frames, its text from the last one.
    let recs = run_json(
        &["messages", "--json", "--opcode", "text", &hostile("zero-length-frames.pcap.gz")],
        0,
        RSS_MIB,
    );
    let msg = of_type(&recs, "message")[0];
    assert_eq!(msg["frames"], 500_000);
    assert_eq!(msg["text"], "end");
}

#[test]
fn diff_of_half_a_million_messages_holds_a_block_at_a_time() {
    // Renderings wait in a temporary file; an equal connection is compared, and a connection
    // only one side has is printed, a block at a time (whole, 77 and 35 MiB).
    let big = hostile("zero-length-frames.pcap.gz");
    let m = run_measured(&["diff", &big, &big], DEADLINE);
    m.assert_bounded("diff of the capture with itself", 0, 28, DEADLINE);
    let out = String::from_utf8_lossy(&m.stdout);
    assert!(out.contains("no differences: 1 connections and 500003 messages in base"), "{out}");
    let m = run_measured(&["diff", &big, &hostile("ping-flood.pcap.gz")], DEADLINE);
    m.assert_bounded("diff with another capture", 1, 28, DEADLINE);
    let out = String::from_utf8_lossy(&m.stdout);
    assert_eq!(out.lines().filter(|l| *l == "- ← binary ").count(), 500_000);
    assert!(out.contains("- ← text \"end\"\n- ← close 1000 \"\"\n"), "{out}");
}

#[test]
fn megabytes_of_http_headers() {
    let recs = run_json(&["--json", &hostile("http-headers.pcap.gz")], 0, RSS_MIB);
    assert!(problems(&recs, "header-limit") >= 1);
    assert!(limits_hit(&recs).contains(&"max-http-header"));
    assert_eq!(texts(&recs), ["ordinary"], "the next connection is decoded");
}

#[test]
fn proxy_tunnels_nested_thousands_deep() {
    let recs = run_json(&["--json", &hostile("nested-proxies.pcap.gz")], 0, RSS_MIB);
    assert_eq!(texts(&recs), ["at the bottom"], "the upgrade under 5,000 CONNECTs is decoded");
    let hs = of_type(&recs, "handshake");
    assert_eq!(hs.len(), 1);
    let note = hs[0]["notes"][0].as_str().unwrap();
    assert_eq!(note.matches("HTTP CONNECT to").count(), 4, "{}", &note[..note.len().min(200)]);
    // The fifth nested SOCKS5 handshake is not followed: that connection is not WebSocket.
    assert_eq!(end(&recs)["websocket_connections"], 1);
}

/// HTTP/2 against memory: header blocks that decode to 8 MB each through HPACK's table,
/// 1,000 CONNECTs never answered, 300 WebSockets on one connection; the WebSocket after them
/// is decoded, and each bound is reported.
#[test]
fn http2_floods_stay_bounded() {
    let recs = run_json(&["--json", &hostile("h2-floods.pcap.gz")], 0, RSS_MIB);
    assert_eq!(texts(&recs).last(), Some(&"after the floods"));
    let end = end(&recs);
    assert_eq!(end["problems"]["header-limit"], 50, "{end}");
    assert_eq!(end["problems"]["h2-stream-limit"], 2, "{end}");
    // 256 of the 300 on one connection, and the last one.
    assert_eq!(end["websocket_connections"], 257, "{end}");
    assert_eq!(end["connections"], 4);
}

#[test]
fn captures_truncated_mid_record() {
    for name in ["truncated.pcapng", "pcapng-absurd-length.pcapng"] {
        let recs = run_json(&["--json", &hostile(name)], 2, RSS_MIB);
        let errors = end(&recs)["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{name}");
        assert!(errors[0].as_str().unwrap().contains("truncated"), "{name}: {errors:?}");
        // What came before the cut is kept.
        assert_eq!(
            texts(&recs),
            ["hello", "hello back, with a longer reply to cut at the snaplen"]
        );
    }
    // A block past the largest one read is corruption, found within the 64 MiB read.
    let recs = run_json(&["--json", &hostile("pcapng-huge-block.pcapng.gz")], 2, 128);
    let errors = end(&recs)["errors"].as_array().unwrap();
    assert!(errors[0].as_str().unwrap().contains("larger than 64 MiB"), "{errors:?}");
    assert_eq!(texts(&recs).len(), 2);
    let recs = run_json(
        &["--json", &testdata("file-truncated/capture.pcap").to_string_lossy()],
        2,
        RSS_MIB,
    );
    assert_eq!(texts(&recs), ["before the cut"]);
}

#[test]
fn random_bytes_empty_file_and_text_named_pcap() {
    let text = testdata("file-not-a-capture/capture.pcap").to_string_lossy().into_owned();
    for path in [hostile("random.pcap"), hostile("empty.pcap"), text] {
        let recs = run_json(&["--json", &path], 2, RSS_MIB);
        let errors = end(&recs)["errors"].as_array().unwrap();
        assert!(errors[0].as_str().unwrap().contains("not a capture"), "{path}: {errors:?}");
    }
    // A valid file header followed by random records: corrupt at the first record.
    let recs = run_json(&["--json", &hostile("random-records.pcap")], 2, RSS_MIB);
    assert_eq!(end(&recs)["packets"], 0);
}

#[test]
fn pcapng_unknown_interface_ids() {
    let recs = run_json(&["--json", &hostile("pcapng-unknown-interface.pcapng")], 0, RSS_MIB);
    assert_eq!(problems(&recs, "undecodable-packet"), 2);
    // The conversations on either side of those packets are both decoded.
    assert_eq!(texts(&recs).len(), 4);
}

#[test]
fn snaplen_64_capture() {
    let recs = run_json(&["--json", &hostile("snaplen-64.pcap")], 0, RSS_MIB);
    assert!(problems(&recs, "truncated-packet") >= 4);
    assert_eq!(of_type(&recs, "message").len(), 0, "no payload survives a 64-byte snaplen");
}

#[test]
fn timestamps_going_backwards() {
    let recs = run_json(&["--json", &hostile("timestamps-backwards.pcap")], 0, RSS_MIB);
    assert_eq!(texts(&recs), ["one", "two"]);
    assert_eq!(end(&recs)["problems"].as_object().unwrap().len(), 0, "{}", end(&recs));
    // Records keep the capture's own timestamps, even the one at the epoch.
    assert!(of_type(&recs, "frame").iter().any(|f| f["ts"].as_f64().unwrap() < 10.0));
}

#[test]
fn ip_headers_with_impossible_lengths() {
    let recs = run_json(&["--json", &hostile("ip-impossible.pcap")], 0, RSS_MIB);
    assert!(problems(&recs, "undecodable-packet") >= 5);
    assert_eq!(texts(&recs), ["hello", "hello back, with a longer reply to cut at the snaplen"]);
}

#[test]
fn terminal_escapes_and_bidi_overrides_never_reach_the_terminal() {
    let cap = testdata("crafted-hostile-text/capture.pcap").to_string_lossy().into_owned();
    for view in [&[][..], &["messages"], &["conns"], &["follow", "0"], &["check"]] {
        let mut args = view.to_vec();
        args.extend(["--payload", "full", &cap]);
        let m = run_measured(&args, DEADLINE);
        let code = if view == ["check"] { 1 } else { 0 };
        m.assert_bounded(&format!("{args:?}"), code, RSS_MIB, DEADLINE);
        let out = String::from_utf8(m.stdout).unwrap();
        for c in out.chars() {
            let bad = (c.is_control() && c != '\n')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            assert!(!bad, "{args:?}: raw {c:?} in the output");
        }
    }
    // JSON keeps the text as it was sent, escaped by JSON itself.
    let recs = run_json(&["--json", &cap], 0, RSS_MIB);
    assert!(texts(&recs).iter().any(|t| t.contains('\u{202e}')));
}

/// Appends one Ethernet/IPv4/TCP packet to a pcap being built.
fn packet(
    out: &mut Vec<u8>,
    t: u32,
    (src, dst): ([u8; 4], [u8; 4]),
    ports: (u16, u16),
    (seq, ack): (u32, u32),
    flags: u8,
    payload: &[u8],
) {
    let len = 14 + 20 + 20 + payload.len();
    out.extend_from_slice(&t.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x08\x00");
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&((40 + payload.len()) as u16).to_be_bytes());
    out.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
    out.extend_from_slice(&src);
    out.extend_from_slice(&dst);
    out.extend_from_slice(&ports.0.to_be_bytes());
    out.extend_from_slice(&ports.1.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&ack.to_be_bytes());
    out.extend_from_slice(&[5 << 4, flags]);
    out.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    out.extend_from_slice(payload);
}

/// The 24-byte header of a microsecond pcap of Ethernet.
fn pcap_header(out: &mut Vec<u8>) {
    for v in [0xa1b2c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// A pcap of 200,000 half-open connections (a SYN each, from distinct ports and addresses)
/// between the handshake of one real WebSocket connection and the rest of its conversation.
fn syn_flood_capture(path: &std::path::Path, flood: u32) {
    let mut out = Vec::with_capacity(flood as usize * 72 + 4096);
    pcap_header(&mut out);
    let (c, s) = ([10, 7, 0, 1], [10, 7, 0, 2]);
    let (cp, sp) = ((50000, 8080), (8080, 50000));
    let (mut cs, mut ss) = (1000u32, 5000u32);
    let t = 1_700_000_000;
    let mut send = |out: &mut Vec<u8>, from_client: bool, flags: u8, payload: &[u8]| {
        if from_client {
            packet(out, t, (c, s), cp, (cs, ss), flags, payload);
            cs += payload.len() as u32 + u32::from(flags & 3 != 0);
        } else {
            packet(out, t, (s, c), sp, (ss, cs), flags, payload);
            ss += payload.len() as u32 + u32::from(flags & 3 != 0);
        }
    };
    let request = b"GET /real HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    send(&mut out, true, 0x02, b"");
    send(&mut out, false, 0x12, b"");
    send(&mut out, true, 0x10, b"");
    send(&mut out, true, 0x18, request);
    send(&mut out, false, 0x18, response);
    send(&mut out, false, 0x18, b"\x81\x10before the flood");
    for i in 0..flood {
        let src = [172, 16 + (i >> 16) as u8, (i >> 8) as u8, i as u8];
        packet(&mut out, t + 1, (src, s), (1024 + (i % 60000) as u16, 8080), (i, 0), 0x02, b"");
    }
    // A masked client text frame (key 0) and the server's answer, then both closes.
    send(&mut out, true, 0x18, b"\x81\x8f\0\0\0\0after the flood");
    send(&mut out, false, 0x18, b"\x81\x0astill here");
    send(&mut out, true, 0x18, b"\x88\x82\0\0\0\0\x03\xe8");
    send(&mut out, false, 0x18, b"\x88\x02\x03\xe8");
    send(&mut out, false, 0x11, b"");
    send(&mut out, true, 0x11, b"");
    std::fs::write(path, out).unwrap();
}

#[test]
fn one_websocket_connection_among_200000_half_open_ones() {
    let dir = std::env::temp_dir().join(format!("wsdissect-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("flood.pcap");
    syn_flood_capture(&path, 200_000);
    let p = path.to_string_lossy().into_owned();
    // At the default limit (100,000 connections) half of the flood is evicted, and the
    // connection carrying WebSocket is kept: eviction takes connections without payload first.
    // 100,000 tracked connections take about 130 MiB (250 MiB before the parts of a
    // connection's state that a half-open one never uses were allocated only when used, and
    // before the records of connections still open at the end stopped waiting for the last
    // of them).
    let recs = run_json(&["messages", "--json", &p], 0, 180);
    assert_eq!(texts(&recs), ["before the flood", "after the flood", "still here"]);
    assert!(problems(&recs, "connection-limit") >= 100_000, "{}", end(&recs));
    assert!(limits_hit(&recs).contains(&"max-connections"));
    assert_eq!(end(&recs)["connections"], 200_001);
    // A lower limit holds memory lower, and still keeps it.
    let recs = run_json(&["messages", "--json", "--max-connections", "1000", &p], 0, RSS_MIB);
    assert_eq!(texts(&recs), ["before the flood", "after the flood", "still here"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A pcap of `count` short WebSocket connections one after another, each a handshake, one
/// server frame and a FIN each way.
fn short_connections_capture(path: &std::path::Path, count: u32) {
    let mut out = Vec::with_capacity(count as usize * 700 + 24);
    pcap_header(&mut out);
    let request = b"GET /s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    let frame = b"\x81\x02hi";
    let s = [10, 9, 0, 2];
    for i in 0..count {
        let c = [172, 16 + (i >> 16) as u8, (i >> 8) as u8, i as u8];
        let (cp, sp) = (1024 + (i % 60000) as u16, 8080);
        let t = 1_700_000_000 + i / 100;
        let (c0, s0) = (i.wrapping_mul(7919), 1000);
        let (c1, s1) = (c0 + 1, s0 + 1);
        let c2 = c1 + request.len() as u32;
        let s2 = s1 + (response.len() + frame.len()) as u32;
        packet(&mut out, t, (c, s), (cp, sp), (c0, 0), 0x02, b"");
        packet(&mut out, t, (s, c), (sp, cp), (s0, c1), 0x12, b"");
        packet(&mut out, t, (c, s), (cp, sp), (c1, s1), 0x18, request);
        packet(&mut out, t, (s, c), (sp, cp), (s1, c2), 0x18, response);
        packet(&mut out, t, (s, c), (sp, cp), (s1 + response.len() as u32, c2), 0x18, frame);
        packet(&mut out, t, (s, c), (sp, cp), (s2, c2), 0x11, b"");
        packet(&mut out, t, (c, s), (cp, sp), (c2, s2 + 1), 0x11, b"");
        packet(&mut out, t, (s, c), (sp, cp), (s2 + 1, c2 + 1), 0x10, b"");
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn many_short_connections_leave_little_behind() {
    // An ended connection keeps what its later segments need (its stream number), not its
    // reassemblers and state: 40,000 of them took 60 MiB before.
    let dir = std::env::temp_dir().join(format!("wsdissect-short-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("short.pcap");
    short_connections_capture(&path, 40_000);
    let p = path.to_string_lossy().into_owned();
    let recs = run_json(&["-j1", "conns", "--json", &p], 0, 32);
    let conns = of_type(&recs, "connection");
    assert_eq!(conns.len(), 40_000);
    assert!(conns.iter().all(|c| c["tcp_end"] == "fin" && c["server_to_client"]["frames"] == 1));
    assert_eq!(end(&recs)["connections"], 40_000);
    // No close frame was sent: that is the only problem.
    let problems: Vec<&String> = end(&recs)["problems"].as_object().unwrap().keys().collect();
    assert_eq!(problems, ["no-close-frame"]);
    // The last ACK of each connection came after its end, and was given its stream.
    let recs = run_json(&["-j1", "--all", "--json", "--stream", "39999", &p], 0, 32);
    let last_ack = of_type(&recs, "packet").pop().unwrap();
    assert_eq!((&last_ack["packet"], &last_ack["stream"]), (&320_000.into(), &39_999.into()));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every JSON line of every small hostile input is valid against the schema.
#[test]
fn hostile_output_follows_the_schema() {
    let v = crate::views::schema();
    let mut files: Vec<PathBuf> = std::fs::read_dir(testdata("hostile"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().contains("zero-length"))
        .collect();
    files.sort();
    assert!(files.len() >= 10);
    let mut errors = Vec::new();
    for f in &files {
        let p = f.to_string_lossy();
        for args in [&["--json", "--all"][..], &["conns", "--json", "--all"]] {
            let mut a = args.to_vec();
            a.push(&p);
            let out = run(&a);
            for line in String::from_utf8(out.stdout).unwrap().lines() {
                let rec: Value = serde_json::from_str(line).unwrap();
                for e in v.iter_errors(&rec) {
                    errors.push(format!("{a:?}: {e} at {}", e.instance_path()));
                }
            }
        }
    }
    assert!(errors.is_empty(), "{} schema errors:\n{}", errors.len(), errors.join("\n"));
}
