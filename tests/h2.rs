//! WebSockets over HTTP/2 (RFC 8441): a real recording of headless Chromium and Hypercorn,
//! two WebSockets on one TLS connection (`testdata/chromium-h2-websockets`).

use crate::util::*;
use serde_json::Value;
use std::path::PathBuf;

fn case() -> (PathBuf, String) {
    let dir = testdata("chromium-h2-websockets");
    (dir.join("capture.pcap"), dir.join("keylog.txt").to_string_lossy().into_owned())
}

#[test]
fn each_websocket_over_http2_has_its_stream_and_records() {
    let (cap, keylog) = case();
    let recs = json_of(&cap, &["--conns", "--keylog", &keylog]);
    let handshakes = of_type(&recs, "handshake");
    let streams: Vec<(u64, &str)> = handshakes
        .iter()
        .map(|h| (h["h2_stream"].as_u64().unwrap(), h["path"].as_str().unwrap()))
        .collect();
    assert_eq!(streams.len(), 2, "{streams:?}");
    assert!(streams[0].0 % 2 == 1 && streams[1].0 % 2 == 1 && streams[0].0 < streams[1].0);
    assert_eq!([streams[0].1, streams[1].1], ["/chat", "/bin"]);
    for h in &handshakes {
        assert_eq!(h["method"], "CONNECT");
        assert_eq!(h["status"], 200);
        assert_eq!(h["version"], 13);
        assert_eq!(h["key"], Value::Null);
        assert_eq!(h["accept_ok"], Value::Null);
        assert!(h["extensions"].as_str().unwrap().starts_with("permessage-deflate"), "{h}");
        assert!(h["request_headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f[0] == ":protocol" && f[1] == "websocket"));
        assert!(h["notes"][0].as_str().unwrap().starts_with("WebSocket over HTTP/2"), "{h}");
    }
    // Every frame and message names its HTTP/2 stream; /bin carries the binary ones.
    let bin = streams[1].0;
    for r in of_type(&recs, "frame").into_iter().chain(of_type(&recs, "message")) {
        let id = r["h2_stream"].as_u64().unwrap_or_else(|| panic!("no h2_stream: {r}"));
        match r["opcode_name"].as_str().unwrap() {
            "binary" => assert_eq!(id, bin, "{r}"),
            "text" => assert_ne!(id, bin, "{r}"),
            _ => assert!(id == bin || id == streams[0].0, "{r}"),
        }
    }
    let conns = of_type(&recs, "connection");
    let tcp: Vec<&&Value> = conns.iter().filter(|c| c["h2_stream"].is_null()).collect();
    assert_eq!(tcp.len(), 1, "{conns:?}");
    assert_eq!(tcp[0]["h2_websockets"], 2);
    assert_eq!(tcp[0]["websocket"], false);
    let websockets: Vec<&&Value> = conns.iter().filter(|c| c["websocket"] == true).collect();
    assert_eq!(websockets.len(), 2);
    for c in websockets {
        assert_eq!(c["stream"], tcp[0]["stream"]);
        assert_eq!(c["close"]["echoed"], true, "{c}");
        assert_eq!(c["tls"]["alpn"], "h2");
    }
    let end = recs.last().unwrap();
    assert_eq!(end["websocket_connections"], 2);
    assert!(end["stream_bytes"]["http"].as_u64().unwrap() > 0);
}

#[test]
fn views_name_the_http2_stream() {
    let (cap, keylog) = case();
    let table = String::from_utf8(run_path(&["--keylog", &keylog], &cap).stdout).unwrap();
    // Each WebSocket's extended CONNECT and its answer.
    assert_eq!(table.matches("HTTP2 ").count(), 4, "{table}");
    assert!(table.contains("CONNECT /chat HTTP/2 (WebSocket on stream 3, permessage-deflate"));
    assert!(table.contains("HTTP/2 200 (WebSocket on stream 3, permessage-deflate"), "{table}");
    let conns = String::from_utf8(run_path(&["conns", "--keylog", &keylog], &cap).stdout).unwrap();
    assert!(conns.contains("HTTP/2 with 2 WebSockets"), "{conns}");
    assert_eq!(conns.matches(" h2 stream ").count(), 2, "{conns}");
    let check = run_path(&["check", "--keylog", &keylog], &cap);
    let text = String::from_utf8(check.stdout).unwrap();
    assert_eq!(check.status.code(), Some(0), "{text}");
    assert!(text.contains("in 2 WebSocket connections (2 handshakes ok)"), "{text}");
    let messages =
        String::from_utf8(run_path(&["messages", "--keylog", &keylog], &cap).stdout).unwrap();
    assert!(messages.contains("    0:3 127.0.0.1"), "{messages}");
    assert!(messages.contains("    0:7 127.0.0.1"), "{messages}");
    let follow =
        String::from_utf8(run_path(&["follow", "0", "--keylog", &keylog], &cap).stdout).unwrap();
    assert!(follow.contains("→ CONNECT /chat HTTP/2 stream 3  Host: 127.0.0.1:8808"), "{follow}");
    assert!(follow.contains("→ h2:7 binary 4B"), "{follow}");
    assert_eq!(follow.matches("=== end of HTTP/2 stream ").count(), 2, "{follow}");
    // Both WebSockets compared as conversations of their own.
    let diff = run_path(&["diff", "--keylog", &keylog, cap.to_str().unwrap()], &cap);
    assert_eq!(diff.status.code(), Some(0), "{}", String::from_utf8_lossy(&diff.stdout));
}

/// TLS 1.3 hides the server's ALPN choice: without the key, the connections may carry
/// anything the client offered (HTTP/1.1 too), so they are listed as TLS not looked into.
#[test]
fn without_the_key_the_connections_are_listed_as_tls() {
    let (cap, _) = case();
    let recs = json_of(&cap, &["--conns"]);
    assert!(of_type(&recs, "handshake").is_empty());
    let conns = of_type(&recs, "connection");
    assert!(!conns.is_empty());
    for c in conns {
        assert_eq!(c["websocket"], false);
        assert_eq!(c["tls"]["keys_found"], false);
        assert!(c["h2_websockets"].is_null(), "{c}");
    }
}

/// A lost server packet: the server's frames cannot be followed after it (HTTP/2 framing has
/// no resynchronisation), which is reported as the gap's doing (a warning: `check` does not
/// blame the peers for it); everything before it stays decoded and the run goes on.
#[test]
fn a_lost_packet_ends_that_direction_not_the_run() {
    let (cap, keylog) = case();
    let whole = json_of(&cap, &["--keylog", &keylog]);
    let server: Vec<u64> = of_type(&whole, "frame")
        .iter()
        .filter(|f| f["from"] == "server")
        .map(|f| f["packet"].as_u64().unwrap())
        .collect();
    let lost = server[1];
    let gapped = std::env::temp_dir().join(format!("wsdissect-h2-{}.pcap", std::process::id()));
    crate::tls::without_packet(&cap, lost, &gapped);
    let recs = json_of(&gapped, &["--keylog", &keylog]);
    let got: Vec<u64> = of_type(&recs, "frame")
        .iter()
        .filter(|f| f["from"] == "server")
        .map(|f| f["packet"].as_u64().unwrap())
        .collect();
    assert_eq!(got, server[..1], "only the server frames before the lost packet");
    let lost_note = of_type(&recs, "problem").into_iter().any(|p| {
        p["code"] == "tcp-gap"
            && p["detail"].as_str().unwrap().contains("cannot be followed after a gap")
    });
    assert!(lost_note, "{recs:?}");
    let check = run_path(&["check", "--keylog", &keylog], &gapped);
    assert_eq!(check.status.code(), Some(0), "{}", String::from_utf8_lossy(&check.stdout));
    let client_frames = of_type(&recs, "frame").iter().filter(|f| f["from"] == "client").count();
    assert_eq!(
        client_frames,
        of_type(&whole, "frame").iter().filter(|f| f["from"] == "client").count()
    );
    let _ = std::fs::remove_file(gapped);
}

/// `testdata/crafted-h2`: what a recording does not give. Messages, closes and the byte
/// accounting are checked against its truth by tests/cases.rs; here, the streams that are not
/// open WebSockets, HTTP/2 inside a proxy tunnel, and the connection whose header compression
/// is lost.
#[test]
fn refused_reset_and_undecodable_streams_are_reported() {
    let cap = testdata("crafted-h2").join("capture.pcap");
    // --all: a refused WebSocket's connection record is listed only then, as over HTTP/1.1.
    let recs = json_of(&cap, &["--conns", "--all"]);
    let handshake = |path: &str| {
        of_type(&recs, "handshake").into_iter().find(|h| h["path"] == path).unwrap().clone()
    };
    let forbidden = handshake("/forbidden");
    assert_eq!(forbidden["status"], 403);
    assert!(forbidden["problems"].as_array().unwrap().iter().any(|p| p == "upgrade-rejected"));
    let given_up = handshake("/given-up");
    assert_eq!(given_up["status"], Value::Null);
    assert_eq!(given_up["response_packet"], Value::Null);
    let chat = handshake("/chat");
    assert_eq!(chat["protocol"], "chat");
    assert_eq!(chat["protocols_offered"], serde_json::json!(["chat", "superchat"]));
    assert_eq!(chat["origin"], "http://h2.example");
    assert_eq!(chat["host"], "h2.example");
    let conn = |path: &str| {
        of_type(&recs, "connection").into_iter().find(|c| c["path"] == path).unwrap().clone()
    };
    assert_eq!(conn("/forbidden")["websocket"], false);
    assert_eq!(conn("/given-up")["rst_from"], "client");
    assert_eq!(conn("/reset")["rst_from"], "server");
    assert_eq!(conn("/chat")["close"]["clean"], true);
    // HTTP/2 inside an HTTP proxy's tunnel: the WebSocket names the proxy, as its TCP
    // connection does.
    let via = serde_json::json!(["HTTP CONNECT to h2.example:8080"]);
    assert_eq!(conn("/tunnelled")["proxies"], via);
    let tcp = of_type(&recs, "connection")
        .into_iter()
        .find(|c| c["stream"] == 1 && c["h2_stream"].is_null());
    assert_eq!(tcp.unwrap()["proxies"], via);
    let lost: Vec<&str> = of_type(&recs, "problem")
        .into_iter()
        .filter(|p| p["stream"] == 2 && p["code"] == "malformed-http")
        .map(|p| p["detail"].as_str().unwrap())
        .collect();
    assert_eq!(lost.len(), 2, "{lost:?}");
    assert!(lost[0].contains("HPACK"), "{lost:?}");
    assert!(lost[1].contains("state lost"), "{lost:?}");
    // Sharded over threads, the same bytes.
    let one = run_path(&["--json", "--conns", "-j1"], &cap).stdout;
    let four = run_path(&["--json", "--conns", "-j4"], &cap).stdout;
    assert_eq!(one, four);
}
