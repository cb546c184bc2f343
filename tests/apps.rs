//! Application protocols inside WebSocket, against what real peers logged sending.

use crate::util::*;
use base64::Engine;
use serde_json::{json, Value};

fn truth(case: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(testdata(case).join("truth.json")).unwrap())
        .unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Bytes of a record's payload (`text` or base64 `bytes`).
fn payload_of(r: &Value) -> Vec<u8> {
    match (r["text"].as_str(), r["bytes"].as_str()) {
        (Some(t), _) => t.as_bytes().to_vec(),
        (_, Some(b)) => base64::engine::general_purpose::STANDARD.decode(b).unwrap(),
        _ => Vec::new(),
    }
}

/// Socket.IO events and acknowledgements as (from, namespace, event, args, ack_id), with
/// binary placeholders replaced by their attachments as `{"bytes_hex": …}`.
fn socket_io_packets(recs: &[Value]) -> Vec<(String, Value, Value, Value, Value)> {
    let with_app: Vec<&Value> = recs.iter().filter(|r| r["app"].is_object()).collect();
    let attachment = |of: &Value, num: &Value| -> Value {
        let att = with_app
            .iter()
            .find(|r| r["app"]["attachment_of"] == *of && r["app"]["attachment"] == *num)
            .unwrap_or_else(|| panic!("no attachment {num} of packet {of}"));
        json!({ "bytes_hex": hex(&payload_of(att)) })
    };
    with_app
        .iter()
        .filter(|r| {
            let t = r["app"]["socket_io"].as_str().unwrap_or_default();
            matches!(t, "EVENT" | "ACK" | "BINARY_EVENT" | "BINARY_ACK")
                && r["app"]["attachment"].is_null()
        })
        .map(|r| {
            let a = &r["app"];
            let args: Vec<Value> = a["args"]
                .as_array()
                .unwrap_or_else(|| panic!("no args: {r}"))
                .iter()
                .map(|v| {
                    if v["_placeholder"] == true {
                        attachment(&r["first_packet"], &v["num"])
                    } else {
                        v.clone()
                    }
                })
                .collect();
            (
                r["from"].as_str().unwrap().to_string(),
                a["namespace"].clone(),
                a["event"].clone(),
                Value::Array(args),
                a["ack_id"].clone(),
            )
        })
        .collect()
}

#[test]
fn socket_io_events_acks_and_binary_attachments_match_the_peers() {
    let t = truth("node-socketio");
    let recs = json_of(&testdata("node-socketio/capture.pcap"), &[]);
    let ours = socket_io_packets(&recs);
    for side in ["client", "server"] {
        let want: Vec<_> = t["socket_io"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["from"] == side)
            .map(|p| {
                (
                    side.to_string(),
                    p["namespace"].clone(),
                    p["event"].clone(),
                    p["args"].clone(),
                    p["ack_id"].clone(),
                )
            })
            .collect();
        let got: Vec<_> = ours.iter().filter(|p| p.0 == side).cloned().collect();
        assert_eq!(got, want, "{side}");
    }
    // The transport upgrade: probe ping/pong and the upgrade packet, on the WebSocket.
    let apps: Vec<&Value> = of_type(&recs, "message").into_iter().map(|m| &m["app"]).collect();
    assert!(apps.iter().any(|a| a["engine_io"] == "ping" && a["probe"] == true));
    assert!(apps.iter().any(|a| a["engine_io"] == "pong" && a["probe"] == true));
    assert!(apps.iter().any(|a| a["engine_io"] == "upgrade"));
    assert!(apps.iter().all(|a| a["protocol"] == "engine.io"));
    let end = recs.last().unwrap();
    assert!(end["problems"].get("app-decode-error").is_none(), "{end}");
}

#[test]
fn socket_io_info_in_text_views() {
    let cap = testdata("node-socketio/capture.pcap");
    let table = String::from_utf8(run_path(&[], &cap).stdout).unwrap();
    assert!(table.contains(r#"socket.io EVENT "msg" ["hello"]"#), "{table}");
    assert!(table.contains(r#"socket.io ACK 0 ["hi alice"]"#), "{table}");
    let msgs = String::from_utf8(run_path(&["messages"], &cap).stdout).unwrap();
    assert!(msgs.contains(r#"socket.io EVENT "greet" [{"name":"alice"}] ack=0"#), "{msgs}");
    let stream = of_type(&json_of(&cap, &[]), "handshake")[0]["stream"].to_string();
    let follow = String::from_utf8(run_path(&["follow", &stream], &cap).stdout).unwrap();
    assert!(follow.contains(r#"· socket.io EVENT /admin "stats" [] ack=0"#), "{follow}");
}

#[test]
fn json_text_messages_are_marked() {
    let recs = json_of(&testdata("crafted-hostile-text/capture.pcap"), &[]);
    let msgs = of_type(&recs, "message");
    let marked: Vec<&&Value> = msgs.iter().filter(|m| m["json"] == true).collect();
    assert!(!marked.is_empty());
    for m in &msgs {
        let parses = m["text"].as_str().is_some_and(|t| serde_json::from_str::<Value>(t).is_ok());
        assert_eq!(m["json"] == true, parses, "{m}");
    }
}
