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

/// Bytes of a record's payload (`text` or base64 `bytes`), or of the attachment in it when
/// they differ (`app.payload_bytes`: Engine.IO 3 type byte, polling base64).
fn payload_of(r: &Value) -> Vec<u8> {
    if let Some(b64) = r["app"]["payload_bytes"].as_str() {
        return base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    }
    match (r["text"].as_str(), r["bytes"].as_str()) {
        (Some(t), _) => t.as_bytes().to_vec(),
        (_, Some(b)) => base64::engine::general_purpose::STANDARD.decode(b).unwrap(),
        _ => Vec::new(),
    }
}

/// Socket.IO events and acknowledgements as (from, namespace, event, args, ack_id), with
/// binary placeholders replaced by their attachments as `{"bytes_hex": …}`.
fn socket_io_packets(recs: &[Value]) -> Vec<(String, Value, Value, Value, Value)> {
    // Messages and polling packets (frames repeat their single-frame message's app).
    let with_app: Vec<&Value> = recs
        .iter()
        .filter(|r| r["app"].is_object() && (r["type"] == "message" || r["type"] == "app"))
        .collect();
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
                        // Polling records have no first_packet: their packet is the one.
                        let of = if r["type"] == "app" { &r["packet"] } else { &r["first_packet"] };
                        attachment(of, &v["num"])
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
    // Socket.IO 4 (Engine.IO 4, Socket.IO protocol 5) and 2 (Engine.IO 3, protocol 4), and
    // the first joined after its upgrade (recognised by content, no handshake).
    for case in
        ["node-socketio", "node-socketio-v2", "node-socketio-midstream", "node-socketio-wsonly"]
    {
        socket_io_case(case);
    }
}

fn socket_io_case(case: &str) {
    let t = truth(case);
    let recs = json_of(&testdata(case).join("capture.pcap"), &[]);
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
        assert_eq!(got, want, "{case} {side}");
    }
    // A single-frame message's frame carries the same app object.
    for m in of_type(&recs, "message") {
        let f = recs
            .iter()
            .find(|f| {
                f["type"] == "frame"
                    && f["stream"] == m["stream"]
                    && f["packet"] == m["packet"]
                    && f["from"] == m["from"]
                    && f["opcode"] != 8
            })
            .unwrap();
        assert_eq!(f["app"], m["app"], "{case}: {f}");
    }
    let apps: Vec<&Value> = of_type(&recs, "message").into_iter().map(|m| &m["app"]).collect();
    assert!(apps.iter().all(|a| a["protocol"] == "engine.io"));
    if case.ends_with("midstream") {
        return;
    }
    // The connection names its Engine.IO session (from the path, or the open packet when
    // the client connected by WebSocket only).
    let conns = json_of(&testdata(case).join("capture.pcap"), &["conns"]);
    let ws = of_type(&conns, "connection")[0];
    assert_eq!(ws["sid"], t["engine_io_sid"], "{case}");
    if case.ends_with("wsonly") {
        return;
    }
    // The transport upgrade: probe ping/pong and the upgrade packet, on the WebSocket.
    assert!(apps.iter().any(|a| a["engine_io"] == "ping" && a["probe"] == true));
    assert!(apps.iter().any(|a| a["engine_io"] == "pong" && a["probe"] == true));
    assert!(apps.iter().any(|a| a["engine_io"] == "upgrade"));
    assert!(apps.iter().all(|a| a["protocol"] == "engine.io"));
    let end = recs.last().unwrap();
    assert!(end["problems"].get("app-decode-error").is_none(), "{end}");
}

#[test]
fn socket_io_polling_requests_are_decoded_and_tied_to_the_websocket() {
    for case in ["node-socketio", "node-socketio-v2"] {
        polling_case(case);
    }
}

fn polling_case(case: &str) {
    let t = truth(case);
    let (ws_sid, poll_sid) =
        (t["engine_io_sid"].as_str().unwrap(), t["polling_only_sid"].as_str().unwrap());
    let recs = json_of(&testdata(case).join("capture.pcap"), &["--all", "--conns"]);
    let polls = of_type(&recs, "app");
    assert!(polls
        .iter()
        .all(|r| r["transport"] == "polling" && r["app"]["protocol"] == "engine.io"));
    // Each session's first GET returns the open packet naming its sid.
    for sid in [ws_sid, poll_sid] {
        let open = polls
            .iter()
            .find(|r| r["app"]["engine_io"] == "open" && r["app"]["sid"] == sid)
            .unwrap_or_else(|| panic!("no open packet for {sid}"));
        assert_eq!((open["from"].as_str(), open["method"].as_str()), (Some("server"), Some("GET")));
        // Socket.IO protocol 5: the client asks to join `/` by POST; protocol 4: the server
        // says it joined, in a GET response.
        let (from, method) =
            if case.ends_with("v2") { ("server", "GET") } else { ("client", "POST") };
        assert!(polls.iter().any(|r| r["sid"] == sid
            && r["from"] == from
            && r["method"] == method
            && r["app"]["socket_io"] == "CONNECT"));
    }
    // The session that never upgraded sent its events, ack and binary attachment by polling.
    let of_poll: Vec<&&Value> = polls.iter().filter(|r| r["sid"] == poll_sid).collect();
    assert!(of_poll
        .iter()
        .any(|r| r["app"]["socket_io"] == "BINARY_EVENT" && r["app"]["ack_id"] == 0));
    assert!(of_poll.iter().any(|r| r["app"]["socket_io"] == "ACK" && r["from"] == "server"));
    assert!(of_poll.iter().any(|r| r["app"]["attachment"] == 0));
    // The WebSocket names its polling connections by sid, and they name it.
    let conns = of_type(&recs, "connection");
    let ws = conns.iter().find(|c| c["websocket"] == true).unwrap();
    assert_eq!(ws["sid"], ws_sid);
    let streams: Vec<u64> =
        ws["sid_streams"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap()).collect();
    assert!(streams.contains(&ws["stream"].as_u64().unwrap()) && streams.len() >= 3, "{streams:?}");
    for s in &streams {
        let c = conns.iter().find(|c| c["stream"] == *s).unwrap();
        assert_eq!(c["sid"], ws_sid, "{c}");
        if c["websocket"] == false {
            assert!(polls.iter().any(|r| r["stream"] == *s && r["sid"] == ws_sid));
        }
    }
    let text = String::from_utf8(run_path(&["conns"], &testdata(case).join("capture.pcap")).stdout)
        .unwrap();
    assert!(text.contains(&format!("sid={ws_sid} streams=")), "{text}");
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

/// Every `app` object of the run from one side, packets that shared a message (`more`)
/// included, parts of packets left out.
fn apps_from(recs: &[Value], side: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for r in recs.iter().filter(|r| r["type"] == "message" && r["from"] == side) {
        let a = &r["app"];
        assert!(a.is_object(), "a message without app: {r}");
        if a["partial"] == true {
            continue;
        }
        out.push(a.clone());
        for m in a["more"].as_array().into_iter().flatten() {
            out.push(m.clone());
        }
    }
    out
}

/// The truth's `app` list (what the peers logged sending) against our decoded packets: per
/// side, in order, for the packet types the peers logged; every logged key must match
/// (`payload_hex` against our base64 `payload_bytes`).
fn check_app_truth(case: &str, protocol: &str, kind: &str) {
    let t = truth(case);
    let recs = json_of(&testdata(case).join("capture.pcap"), &[]);
    let end = recs.last().unwrap();
    assert!(end["problems"].get("app-decode-error").is_none(), "{case}: {end}");
    for side in ["client", "server"] {
        let want: Vec<&Value> =
            t["app"].as_array().unwrap().iter().filter(|p| p["from"] == side).collect();
        assert!(!want.is_empty(), "{case}: nothing logged by the {side}");
        let kinds: Vec<&Value> = want.iter().map(|p| &p[kind]).collect();
        let got: Vec<Value> =
            apps_from(&recs, side).into_iter().filter(|a| kinds.contains(&&a[kind])).collect();
        assert_eq!(got.len(), want.len(), "{case} {side}: got {got:#?}");
        for (g, w) in got.iter().zip(&want) {
            for (k, v) in w.as_object().unwrap() {
                match k.as_str() {
                    "from" => {}
                    "payload_hex" => {
                        let b = base64::engine::general_purpose::STANDARD
                            .decode(g["payload_bytes"].as_str().unwrap())
                            .unwrap();
                        assert_eq!(hex(&b), *v, "{case} {side}: {g}");
                    }
                    _ => assert_eq!(&g[k], v, "{case} {side} {k}: {g}"),
                }
            }
        }
    }
    // The handshake chose the decoder, and the connection record names it.
    let first = of_type(&recs, "message")[0];
    assert_eq!(first["app"]["protocol"], protocol, "{case}");
    let conns = json_of(&testdata(case).join("capture.pcap"), &["conns"]);
    assert!(of_type(&conns, "connection").iter().all(|c| c["app_protocol"] == protocol));
}

#[test]
fn mqtt_3_and_5_packets_over_websocket_match_the_peers() {
    check_app_truth("node-mqtt", "mqtt", "mqtt");
    let recs = json_of(&testdata("node-mqtt/capture.pcap"), &[]);
    // mqtt.js writes a packet in several WebSocket messages: some complete none.
    assert!(of_type(&recs, "message").iter().any(|m| m["app"]["partial"] == true));
    let table = String::from_utf8(run_path(&[], &testdata("node-mqtt/capture.pcap")).stdout);
    assert!(table.unwrap().contains(r#"mqtt PUBLISH chat/bob/text qos=1"#));
}

#[test]
fn stomp_frames_match_the_peers() {
    check_app_truth("node-stomp", "stomp", "stomp");
}

#[test]
fn json_rpc_messages_match_what_the_peers_sent() {
    // rpc-websockets, found by content; the truth is every message as it went on the wire.
    let t = truth("node-jsonrpc");
    let recs = json_of(&testdata("node-jsonrpc/capture.pcap"), &[]);
    let msgs = of_type(&recs, "message");
    let want = t["app"].as_array().unwrap();
    assert_eq!(msgs.len(), want.len());
    for (m, w) in msgs.iter().zip(want) {
        assert_eq!(m["from"], w["from"], "{m}");
        let app = &m["app"];
        assert_eq!(app["protocol"], "jsonrpc", "{m}");
        let undecodable = m["problems"].as_array().unwrap().iter().any(|p| p == "app-decode-error");
        if w["jsonrpc"].is_null() {
            // rpc-websockets sends events as {"notification": …}, which is not JSON-RPC.
            assert!(undecodable, "{m}");
            continue;
        }
        assert!(!undecodable, "{m}");
        for k in ["jsonrpc", "method", "id", "error_code"] {
            assert_eq!(app[k], w[k], "{k}: {m}");
        }
    }
}

#[test]
fn signalr_hub_messages_match_what_the_peers_sent() {
    // @microsoft/signalr, found by content (its handshake record); a message may carry
    // several hub messages, listed under `more`.
    let t = truth("node-signalr");
    let recs = json_of(&testdata("node-signalr/capture.pcap"), &[]);
    let mut got = Vec::new();
    for m in of_type(&recs, "message") {
        assert_eq!(m["app"]["protocol"], "signalr", "{m}");
        assert!(m["problems"].as_array().unwrap().is_empty(), "{m}");
        let more = m["app"]["more"].as_array().cloned().unwrap_or_default();
        for unit in std::iter::once(m["app"].clone()).chain(more) {
            let mut e = serde_json::Map::new();
            e.insert("from".into(), m["from"].clone());
            for k in ["signalr", "target", "invocation_id"] {
                if !unit[k].is_null() {
                    e.insert(k.into(), unit[k].clone());
                }
            }
            got.push(Value::Object(e));
        }
    }
    assert_eq!(&got, t["app"].as_array().unwrap());
}

#[test]
fn phoenix_channel_messages_match_the_peers() {
    // The phoenix client, chosen by its socket path (vsn=2.0.0).
    check_app_truth("node-phoenix", "phoenix", "phoenix");
}

#[test]
fn action_cable_messages_match_the_peers() {
    // The @rails/actioncable client, chosen by its subprotocol.
    check_app_truth("node-actioncable", "actioncable", "actioncable");
}

#[test]
fn pusher_events_match_the_peers() {
    // pusher-js, chosen by its /app/<key>?protocol=7 path.
    check_app_truth("node-pusher", "pusher", "pusher");
}

#[test]
fn stomp_over_sockjs_matches_the_peers() {
    // sockjs-client's websocket transport, chosen by its path; STOMP found inside by content.
    check_app_truth("node-sockjs-stomp", "sockjs", "stomp");
    let recs = json_of(&testdata("node-sockjs-stomp/capture.pcap"), &[]);
    let apps: Vec<&Value> = of_type(&recs, "message").iter().map(|m| &m["app"]).collect();
    assert_eq!(apps[0]["sockjs"], "open");
    assert!(apps[1..].iter().all(|a| a["inner_protocol"] == "stomp"), "{apps:#?}");
}

#[test]
fn stomp_frames_split_over_messages_by_the_client_are_joined() {
    // stompjs with splitLargeFrames sent a 3000-byte SEND as messages of 1024, 1024 and 1003
    // bytes: the first two complete nothing, the third carries the whole frame.
    check_app_truth("node-stomp-split", "stomp", "stomp");
    let recs = json_of(&testdata("node-stomp-split/capture.pcap"), &[]);
    let msgs = of_type(&recs, "message");
    let partial: Vec<&&Value> = msgs.iter().filter(|m| m["app"]["partial"] == true).collect();
    assert_eq!(partial.len(), 2, "{partial:#?}");
    assert!(partial.iter().all(|m| m["app"]["stomp"] == "SEND" && m["len"] == 1024));
    let joined = msgs
        .iter()
        .find(|m| {
            m["from"] == "client" && m["app"]["body"].as_str().is_some_and(|b| b.len() == 3000)
        })
        .expect("the split SEND, decoded");
    assert_eq!(joined["app"]["destination"], "/topic/chat");
    assert_eq!(joined["app"]["headers"]["content-length"], "3000");
}

#[test]
fn graphql_ws_messages_match_the_peers() {
    check_app_truth("node-graphql", "graphql-transport-ws", "graphql");
}

#[test]
fn undecodable_application_payloads_are_problems_not_crashes() {
    let recs = json_of(&testdata("crafted-app-errors/capture.pcap"), &[]);
    let msgs: Vec<&Value> =
        of_type(&recs, "message").into_iter().filter(|m| m["opcode"] != 8).collect();
    let bad: Vec<&&Value> = msgs
        .iter()
        .filter(|m| m["problems"].as_array().unwrap().iter().any(|p| p == "app-decode-error"))
        .collect();
    // What craft.py made undecodable: 6 Socket.IO, 3 MQTT, 2 STOMP, 2 GraphQL messages.
    assert_eq!(bad.len(), 13, "{bad:#?}");
    for m in &bad {
        assert!(m["app"]["error"].as_str().is_some_and(|e| !e.is_empty()), "{m}");
        assert!(m["app"]["protocol"].is_string(), "{m}");
    }
    // The good messages among them still decode.
    let good: Vec<&Value> =
        msgs.iter().filter(|m| m["app"]["error"].is_null()).map(|m| &m["app"]).collect();
    assert!(good.iter().any(|a| a["event"] == "ok" && a["args"] == json!([1])));
    assert!(good.iter().any(|a| a["mqtt"] == "PINGREQ"));
    assert!(good.iter().any(|a| a["mqtt"] == "PINGRESP"));
    assert!(good.iter().any(|a| a["stomp"] == "SEND" && a["body"] == "fine"));
    assert!(good.iter().any(|a| a["graphql"] == "connection_init"));
    let end = recs.last().unwrap();
    assert_eq!(end["problems"]["app-decode-error"], 13);
    let check = run_path(&["check"], &testdata("crafted-app-errors/capture.pcap"));
    assert_eq!(check.status.code(), Some(0), "a warning does not fail a check by default");
    // The check view keeps no payloads, except to decode them.
    let check =
        run_path(&["check", "--fail-on", "warning"], &testdata("crafted-app-errors/capture.pcap"));
    assert_eq!(check.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&check.stdout).contains("app-decode-error"));
}

#[test]
fn where_filters_on_app_objects_and_json_text() {
    let sio = testdata("node-socketio/capture.pcap");
    let recs = json_of(&sio, &["--where", "app.socket_io=ACK"]);
    let body: Vec<&Value> =
        recs.iter().filter(|r| r["type"] != "begin" && r["type"] != "end").collect();
    assert!(!body.is_empty());
    assert!(body.iter().all(|r| r["app"]["socket_io"] == "ACK"), "{body:#?}");
    // Polling packets too: the ACK of the session that never upgraded.
    assert!(body.iter().any(|r| r["type"] == "app"));
    let recs =
        json_of(&sio, &["messages", "--where", "app.event=greet", "--where", "app.ack_id=0"]);
    assert_eq!(of_type(&recs, "message").len(), 1);
    let gql = testdata("node-graphql/capture.pcap");
    let recs = json_of(&gql, &["messages", "--where", "json.type=subscribe"]);
    let msgs = of_type(&recs, "message");
    assert_eq!(msgs.len(), 3);
    assert!(msgs.iter().all(|m| m["from"] == "client" && m["json"] == true));
    let recs = json_of(&gql, &["messages", "--where", "json.payload.query"]);
    assert_eq!(of_type(&recs, "message").len(), 3);
    assert_eq!(run(&["--where", "type=x", &gql.to_string_lossy()]).status.code(), Some(2));
}

#[test]
fn chunked_keep_alive_polling_is_decoded() {
    let t = truth("crafted-polling-chunked");
    let recs = json_of(&testdata("crafted-polling-chunked/capture.pcap"), &["--conns", "--all"]);
    let got: Vec<Value> = of_type(&recs, "app")
        .iter()
        .map(|r| json!({"from": r["from"], "method": r["method"], "text": r["text"]}))
        .collect();
    assert_eq!(&Value::Array(got), &t["polling"]);
    let sid = &t["engine_io_sid"];
    assert!(of_type(&recs, "app").iter().all(|r| r["sid"] == *sid && r["problems"] == json!([])));
    let ws = of_type(&recs, "connection").into_iter().find(|c| c["websocket"] == true).unwrap();
    assert_eq!((&ws["sid"], &ws["sid_streams"]), (sid, &json!([0, 1])));
    let end = recs.last().unwrap();
    assert_eq!(end["problems"], json!({}), "{end}");
    assert_eq!(end["stream_bytes"]["other"], 0, "every polling byte is HTTP: {end}");
}
