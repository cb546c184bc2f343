//! The README's tour: five classic WebSocket systems as tutorials write them, recorded on
//! loopback (`testdata/gen/tour/`, `record.py tour-*`), and what wsdissect must say about
//! each, bugs included. `cases.rs` checks the messages against each `truth.json`; these
//! tests check what the tour shows on top of that.

use crate::cases::capture_in;
use crate::util::*;
use serde_json::Value;
use std::process::Command;

fn capture(case: &str) -> String {
    capture_in(&testdata(case)).to_string_lossy().into_owned()
}

fn json(case: &str, extra: &[&str]) -> Vec<Value> {
    json_of(&capture_in(&testdata(case)), extra)
}

fn table(args: &[&str], case: &str) -> String {
    let cap = capture(case);
    let out = command()
        .args(args)
        .args(["--color", "never", &cap])
        .env("COLUMNS", "250")
        .output()
        .unwrap();
    assert!(out.status.code().is_some_and(|c| c <= 1), "{args:?} {case}: {:?}", out.status);
    String::from_utf8(out.stdout).unwrap()
}

fn codes(r: &Value) -> Vec<&str> {
    r["problems"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn problem_records<'a>(recs: &'a [Value], code: &str) -> Vec<&'a Value> {
    recs.iter().filter(|r| r["type"] == "problem" && r["code"] == code).collect()
}

/// System 3: a server on Node's `upgrade` event with its own framing code.
#[test]
fn tour_upgrade_event_server() {
    let case = "tour-upgrade-event";
    let recs = json(case, &["--conns"]);
    let hs = of_type(&recs, "handshake");
    assert_eq!(hs.len(), 2);
    for h in &hs {
        assert_eq!(h["status"], 101);
        assert_eq!(h["reason"], "Web Socket Protocol Handshake");
        assert_eq!(h["accept_ok"], true);
        // `Upgrade: WebSocket` is legal (the token is case-insensitive) but noted.
        assert!(codes(h).is_empty(), "{h}");
        let notes: Vec<&str> =
            h["notes"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert!(notes.contains(&"Upgrade value \"WebSocket\""), "{notes:?}");
    }
    // Every length form the server's encoder writes, the 64-bit one as two 32-bit words.
    let server_frames: Vec<&Value> =
        of_type(&recs, "frame").into_iter().filter(|f| f["from"] == "server").collect();
    for (form, len) in [(7, 5), (16, 300), (64, 70000)] {
        assert!(
            server_frames.iter().any(|f| f["len_form"] == form && f["payload_len"] == len),
            "no server frame of {len} bytes in the {form}-bit form"
        );
    }
    assert!(server_frames.iter().all(|f| codes(f).is_empty()), "minimal lengths, unmasked");
    // The ping answered with a ping, and the client's pong to that ping is no surprise.
    let pp = problem_records(&recs, "ping-answered-with-ping");
    assert_eq!(pp.len(), 1);
    assert_eq!(pp[0]["from"], "server");
    assert!(problem_records(&recs, "unsolicited-pong").is_empty());
    // Close codes of both connections, and who closed.
    let conns = of_type(&recs, "connection");
    let closes: Vec<(u64, &str)> = conns
        .iter()
        .map(|c| (c["close"]["code"].as_u64().unwrap(), c["close"]["initiator"].as_str().unwrap()))
        .collect();
    assert_eq!(closes, vec![(1009, "server"), (1002, "server")]);
    assert_eq!(conns[0]["rtt_ms"].as_array().unwrap().len(), 1, "the pong to the server's ping");
    let reserved: Vec<&Value> =
        of_type(&recs, "frame").into_iter().filter(|f| f["opcode"] == 3).collect();
    assert_eq!(reserved.len(), 1);
    assert_eq!(
        (&reserved[0]["from"], codes(reserved[0])),
        (&"client".into(), vec!["reserved-opcode"])
    );
    // The table names the close codes and shows the quirks.
    let t = table(&[], case);
    assert!(t.contains("WebSocket Close [FIN] 1009 (Message Too Big) \"message too big\""), "{t}");
    assert!(t.contains("WebSocket Close [FIN] 1002 (Protocol Error) \"unknown opcode 3\""), "{t}");
    assert!(t.contains("[ping-answered-with-ping]"), "{t}");
    assert!(t.contains("101 Web Socket Protocol Handshake (accept ok) note:"), "{t}");
}

/// System 4: a raw-socket Python server that selects a subprotocol nobody offered.
#[test]
fn tour_python_raw_socket_server() {
    let case = "tour-python-raw";
    let recs = json(case, &["--conns"]);
    let hs = of_type(&recs, "handshake");
    assert_eq!(hs.len(), 1);
    let h = hs[0];
    assert_eq!(codes(h), vec!["protocol-not-offered"]);
    assert_eq!(
        (h["protocol"].as_str(), h["protocols_offered"].as_array().unwrap().len()),
        (Some("chat"), 0)
    );
    assert_eq!(h["accept_ok"], true, "the hand-computed accept key is right");
    // The pre-RFC header is in the record as sent, and named in a note.
    let headers = h["response_headers"].as_array().unwrap();
    assert!(headers.contains(&serde_json::json!(["WebSocket-Protocol", "chat"])), "{headers:?}");
    let notes = h["notes"].to_string();
    assert!(notes.contains("non-standard header WebSocket-Protocol: chat"), "{notes}");
    let frames = of_type(&recs, "frame");
    for (form, len) in [(7, 19), (16, 1500), (64, 100000)] {
        assert!(
            frames
                .iter()
                .any(|f| f["from"] == "server" && f["len_form"] == form && f["payload_len"] == len),
            "no server frame of {len} bytes in the {form}-bit form"
        );
    }
    // The large client frame crossed many segments; it is one frame, one message.
    let big: Vec<&&Value> =
        frames.iter().filter(|f| f["from"] == "client" && f["payload_len"] == 100000).collect();
    assert_eq!(big.len(), 1);
    assert!(big[0]["first_packet"].as_u64() < big[0]["packet"].as_u64());
    assert!(frames.iter().all(|f| codes(f).is_empty()));
    let t = table(&[], case);
    assert!(
        t.contains("(accept ok, protocol chat) note: non-standard header WebSocket-Protocol: chat"),
        "{t}"
    );
    assert!(t.contains("[protocol-not-offered]"), "{t}");
    let f = table(&["follow", "0", "--payload", "none"], case);
    assert!(
        f.contains("\n    note: non-standard header WebSocket-Protocol: chat (pre-RFC 6455 draft header)\n"),
        "{f}"
    );
    // A CI gate on this capture fails on the handshake.
    let out = command().args(["check", &capture(case)]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("protocol-not-offered"));
}

/// System 1: a server hand-rolled on Node `net` with a browser client; the server never
/// answers a frame.
#[test]
fn tour_net_server_with_a_browser() {
    let case = "tour-net-browser";
    let recs = json(case, &["--conns"]);
    let h = of_type(&recs, "handshake")[0];
    assert_eq!((h["status"].as_u64(), h["accept_ok"].as_bool()), (Some(101), Some(true)));
    assert!(codes(h).is_empty(), "the quirks are legal: {h}");
    let notes = h["notes"].to_string();
    assert!(
        notes.contains("response headers without a space after the colon: Upgrade, Connection, sec-websocket-Accept"),
        "{notes}"
    );
    assert!(
        notes.contains("response header names in unusual case: sec-websocket-Accept"),
        "{notes}"
    );
    let frames = of_type(&recs, "frame");
    let summary: Vec<(&str, &str, bool)> = frames
        .iter()
        .map(|f| {
            (f["from"].as_str().unwrap(), f["opcode_name"].as_str().unwrap(), f["masked"] == true)
        })
        .collect();
    assert_eq!(summary, vec![("client", "text", true), ("client", "close", true)]);
    assert_eq!(frames[0]["text"], "Hello");
    assert_eq!(frames[1]["close_code"], 1000);
    // The browser's close is never answered; the connection then ends with FINs, the
    // client's first.
    let p = problem_records(&recs, "close-not-echoed");
    assert_eq!((p.len(), p[0]["from"].as_str()), (1, Some("server")));
    let c = of_type(&recs, "connection")[0];
    assert_eq!(c["close"]["echoed"], false);
    assert_eq!(c["close"]["clean"], false);
    assert_eq!(
        (c["tcp_end"].as_str(), c["first_fin_from"].as_str()),
        (Some("fin"), Some("client"))
    );
    let fins: Vec<&str> = of_type(&recs, "tcp")
        .iter()
        .filter(|t| t["event"] == "fin")
        .map(|t| t["from"].as_str().unwrap())
        .collect();
    assert_eq!(fins, vec!["client", "server"]);
    let t = table(&[], case);
    assert!(t.contains("note: response headers without a space after the colon"), "{t}");
    assert!(t.contains("[close-not-echoed]"), "{t}");
}

/// The WebSocket stream of a capture that also holds the page's HTTP connections.
fn ws_stream(recs: &[Value]) -> u64 {
    let hs = of_type(recs, "handshake");
    assert_eq!(hs.len(), 1, "one WebSocket connection");
    hs[0]["stream"].as_u64().unwrap()
}

/// What system 5's two plain recordings share: the three-way handshake, the upgrade, the
/// server's push, the echoes with ACKs riding on the data, keepalives and their ACKs.
fn tour_ws_echo_common(case: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["--all", "--conns"];
    args.extend_from_slice(extra);
    let recs = json(case, &args);
    let stream = ws_stream(&recs);
    let mine: Vec<&Value> = recs.iter().filter(|r| r["stream"] == stream).collect();
    // SYN, SYN-ACK and the bare ACK completing the handshake come first.
    let head: Vec<(String, String)> = mine[..3]
        .iter()
        .map(|r| {
            let what = r["event"].as_str().or(r["info"].as_str()).unwrap_or("").to_string();
            (r["type"].as_str().unwrap().to_string(), what)
        })
        .collect();
    assert_eq!((head[0].1.as_str(), head[1].1.as_str()), ("syn", "syn-ack"), "{head:?}");
    assert!(head[2].0 == "packet" && head[2].1.contains("[ACK]") && head[2].1.ends_with("Len=0"));
    // The first frame is the server's push, before the client has said anything.
    let frames: Vec<&&Value> = mine.iter().filter(|r| r["type"] == "frame").collect();
    assert_eq!(
        (frames[0]["from"].as_str(), frames[0]["text"].as_str()),
        (Some("server"), Some("get it"))
    );
    // An echo acknowledges the message it answers: no bare ACK between the two.
    let wire: Vec<&Value> =
        mine.iter().copied().filter(|r| r["type"] == "frame" || r["type"] == "packet").collect();
    let piggybacked = wire.windows(2).any(|w| {
        w[0]["type"] == "frame"
            && w[0]["from"] == "client"
            && w[1]["type"] == "frame"
            && w[1]["from"] == "server"
            && w[0]["text"] == w[1]["text"]
    });
    assert!(piggybacked, "an echo right after its message");
    // Every keepalive probe (from the server, which enabled them) is answered.
    let tcp: Vec<&&Value> = mine.iter().filter(|r| r["type"] == "tcp").collect();
    let probes: Vec<usize> = (0..tcp.len()).filter(|&i| tcp[i]["event"] == "keepalive").collect();
    assert!(probes.len() >= 3, "{} keepalives", probes.len());
    for &i in &probes {
        assert_eq!(tcp[i]["from"], "server");
        assert_eq!(
            (tcp[i + 1]["event"].as_str(), tcp[i + 1]["from"].as_str()),
            (Some("keepalive-ack"), Some("client"))
        );
    }
    let conn = connection_of(&recs, stream);
    assert_eq!(conn["keepalives"].as_u64(), Some(probes.len() as u64));
    assert_eq!(conn["keepalive_acks"], conn["keepalives"], "every probe answered");
    recs
}

/// System 5, first run: the server hangs and is killed with a message unread, so its
/// kernel resets the connection.
#[test]
fn tour_ws_echo_server_killed() {
    let case = "tour-ws-echo-rst";
    let recs = tour_ws_echo_common(case, &[]);
    let stream = ws_stream(&recs);
    let conn = connection_of(&recs, stream);
    assert_eq!(
        (conn["tcp_end"].as_str(), conn["rst_from"].as_str()),
        (Some("rst"), Some("server"))
    );
    assert!(conn["close"].is_null());
    assert_eq!(codes(conn), vec!["no-close-frame"]);
    let last_msg = of_type(&recs, "message").into_iter().rev().find(|m| m["stream"] == stream);
    assert_eq!(last_msg.unwrap()["text"], "still there?", "the message the server never read");
    let p = problem_records(&recs, "no-close-frame");
    assert_eq!(p.len(), 1);
    let rst: Vec<&Value> = recs
        .iter()
        .filter(|r| r["type"] == "tcp" && r["event"] == "rst" && r["stream"] == stream)
        .collect();
    assert_eq!(rst.len(), 1);
    assert_eq!(rst[0]["packet"], p[0]["packet"], "the RST ends the connection");
    let t = table(&["conns"], case);
    assert!(t.contains("RST server"), "{t}");
}

/// System 5, second run: the page closes; close frames both ways, then the server's FIN
/// first, as RFC 6455 7.1.1 wants.
#[test]
fn tour_ws_echo_clean_close() {
    let case = "tour-ws-echo-close";
    let recs = tour_ws_echo_common(case, &[]);
    let stream = ws_stream(&recs);
    let conn = connection_of(&recs, stream);
    assert_eq!(
        conn["close"],
        serde_json::json!({"code": 1000, "reason": "bye", "initiator": "client", "echoed": true, "clean": true})
    );
    assert_eq!(
        (conn["tcp_end"].as_str(), conn["first_fin_from"].as_str()),
        (Some("fin"), Some("server"))
    );
    assert!(codes(conn).is_empty());
    // Close, close, FIN, FIN, in that order.
    let tail: Vec<String> = recs
        .iter()
        .filter(|r| r["stream"] == stream && (r["type"] == "frame" || r["type"] == "tcp"))
        .map(|r| {
            let what = r["opcode_name"].as_str().or(r["event"].as_str()).unwrap();
            format!("{what} {}", r["from"].as_str().unwrap())
        })
        .rev()
        .take(4)
        .collect();
    assert_eq!(tail, vec!["fin client", "fin server", "close server", "close client"]);
    let t = table(&["conns"], case);
    assert!(t.contains("1000 by client clean FIN server"), "{t}");
}

/// Socket.IO's `42["msg",DATA]` messages sent on a stream, as (from, DATA).
fn sio_events(recs: &[Value], stream: u64) -> Vec<(String, Value)> {
    of_type(recs, "message")
        .into_iter()
        .filter(|m| m["stream"] == stream)
        .filter_map(|m| {
            let body = m["text"].as_str()?.strip_prefix("42")?;
            let arr: Value = serde_json::from_str(body).ok()?;
            (arr[0] == "msg").then(|| (m["from"].as_str().unwrap().to_string(), arr[1].clone()))
        })
        .collect()
}

/// System 2 on the WebSocket level: a Socket.IO chat whose server re-emits each `msg` to
/// every other socket, and a raw browser WebSocket that sends plain JSON.
#[test]
fn tour_socketio_chat_frames() {
    let case = "tour-socketio-chat";
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(testdata(case).join("truth.json")).unwrap())
            .unwrap();
    let recs = json(case, &["--conns"]);
    let hs = of_type(&recs, "handshake");
    assert_eq!(hs.len(), 4, "three users and the raw page");
    assert!(hs.iter().all(|h| h["path"].as_str().unwrap().starts_with("/socket.io/?EIO=4")));
    let stream_of = |port: &Value| {
        let client = format!("127.0.0.1:{port}");
        hs.iter().find(|h| h["client"] == client.as_str()).unwrap()["stream"].as_u64().unwrap()
    };
    let users = truth["connections"].as_array().unwrap();
    // Each event a user sends arrives once on every other user's connection, from the
    // server, and never back on the sender's.
    let mut sent_total = 0;
    for sender in users {
        let sent: Vec<Value> = sio_events(&recs, stream_of(&sender["client_port"]))
            .into_iter()
            .filter(|(from, _)| from == "client")
            .map(|(_, data)| data)
            .collect();
        sent_total += sent.len();
        for data in &sent {
            for other in users {
                let echoed = sio_events(&recs, stream_of(&other["client_port"]))
                    .into_iter()
                    .filter(|(from, d)| from == "server" && d == data)
                    .count();
                let want = usize::from(other["user"] != sender["user"]);
                assert_eq!(echoed, want, "{data} to {}", other["user"]);
            }
        }
    }
    assert_eq!(sent_total, 2, "alice and bob each said one thing");
    // What each user got, as the peers logged it, is what the server sent them.
    for u in users {
        let got: Vec<Value> = sio_events(&recs, stream_of(&u["client_port"]))
            .into_iter()
            .filter(|(from, _)| from == "server")
            .map(|(_, d)| d)
            .collect();
        assert_eq!(&Value::from(got), &u["received"], "{}", u["user"]);
    }
    // The raw page: Engine.IO's open packet, then plain JSON, which the server refuses by
    // closing the connection.
    let raw = hs.iter().find(|h| !h["path"].as_str().unwrap().contains("sid=")).unwrap();
    let stream = raw["stream"].as_u64().unwrap();
    let msgs: Vec<&Value> =
        of_type(&recs, "message").into_iter().filter(|m| m["stream"] == stream).collect();
    assert!(msgs[0]["text"].as_str().unwrap().starts_with("0{\"sid\":"));
    let json_text: Value = serde_json::from_str(msgs[1]["text"].as_str().unwrap()).unwrap();
    assert_eq!(json_text, serde_json::json!({"name": "msg", "data": [12, 5]}));
    let conn = connection_of(&recs, stream);
    assert_eq!(conn["close"]["initiator"], "server");
}

/// System 5 over https and wss, decrypted with the key log the Node server wrote: the
/// same conversation as the clean-close run, TCP and all.
#[test]
fn tour_ws_echo_over_wss() {
    let case = "tour-ws-echo-wss";
    let keylog = testdata(case).join("keylog.txt").to_string_lossy().into_owned();
    let recs = tour_ws_echo_common(case, &["--keylog", &keylog]);
    let stream = ws_stream(&recs);
    let conn = connection_of(&recs, stream);
    assert_eq!(conn["tls"]["decrypted"], true);
    assert_eq!(conn["tls"]["undecrypted_records"], 0);
    assert_eq!(conn["close"]["clean"], true);
    assert_eq!(conn["first_fin_from"], "server");
    let texts: Vec<&str> = of_type(&recs, "message")
        .iter()
        .filter(|m| m["stream"] == stream)
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts, vec!["get it", "hello 1", "hello 1", "hello 2", "hello 2"]);
    // Without the key the connection is TLS and nothing more.
    let recs = json(case, &["--conns"]);
    assert!(of_type(&recs, "message").is_empty());
    assert!(of_type(&recs, "handshake").is_empty());
    // tshark, given the same key log, sees the same frames.
    let recs = json(case, &["--keylog", &keylog]);
    let ours = our_frames(&recs);
    let theirs = tshark_frames(&capture(case), &[11111], Some(&keylog));
    assert!(!theirs.is_empty());
    assert_eq!(ours, theirs);
}

/// tshark's frames, with the server ports decoded as HTTP (or TLS, given a key log) so it
/// follows the upgrade.
fn tshark_frames(capture: &str, ports: &[u64], keylog: Option<&str>) -> Vec<FrameKey> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-r", capture, "-Y", "websocket", "-T", "fields", "-E", "occurrence=a"]);
    if let Some(k) = keylog {
        cmd.args(["-o", &format!("tls.keylog_file:{k}")]);
    }
    cmd.args(["-E", "aggregator=;"]);
    for p in ports {
        // Over TLS the port is decoded as TLS, and HTTP inside it is found by content.
        let proto = if keylog.is_some() { "tls" } else { "http" };
        cmd.args(["-d", &format!("tcp.port=={p},{proto}")]);
    }
    for f in [
        "frame.number",
        "tcp.stream",
        "websocket.fin",
        "websocket.rsv",
        "websocket.opcode",
        "websocket.mask",
        "websocket.payload_length",
        "websocket.payload_length_ext_16",
        "websocket.payload_length_ext_64",
    ] {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark is installed (scripts/setup.sh)");
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    let mut keys = Vec::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let cols: Vec<Vec<&str>> =
            line.split('\t').map(|c| c.split(';').filter(|s| !s.is_empty()).collect()).collect();
        let num = |s: &str| s.parse::<u64>().unwrap();
        let (packet, stream) = (num(cols[0][0]), num(cols[1][0]));
        // Extended lengths are listed only for the frames that have them, in order.
        let (mut ext16, mut ext64) = (cols[7].iter(), cols[8].iter());
        for (i, opcode) in cols[4].iter().enumerate() {
            let len = match num(cols[6][i]) {
                126 => num(ext16.next().unwrap()),
                127 => num(ext64.next().unwrap()),
                n => n,
            };
            let rsv = u64::from_str_radix(cols[3][i].trim_start_matches("0x"), 16).unwrap();
            let (fin, masked) = (cols[2][i] == "1", cols[5][i] == "1");
            keys.push((packet, stream, fin, rsv, num(opcode), masked, len));
        }
    }
    keys.sort();
    keys
}

/// Every frame of every plain-text tour recording, as tshark sees it.
#[test]
fn tour_frames_agree_with_tshark() {
    for case in [
        "tour-net-browser",
        "tour-socketio-chat",
        "tour-upgrade-event",
        "tour-python-raw",
        "tour-ws-echo-rst",
        "tour-ws-echo-close",
    ] {
        let recs = json(case, &[]);
        let mut ports: Vec<u64> = of_type(&recs, "handshake")
            .iter()
            .map(|h| h["server"].as_str().unwrap().rsplit(':').next().unwrap().parse().unwrap())
            .collect();
        ports.dedup();
        let ours = our_frames(&recs);
        let theirs = tshark_frames(&capture(case), &ports, None);
        assert!(!theirs.is_empty(), "{case}: tshark found no frames");
        assert_eq!(ours, theirs, "{case}");
    }
}

/// System 2 decoded: Engine.IO and Socket.IO packets, the broadcast as one incoming event
/// and its copies to the other users, the sessions tied to their long-polling requests, and
/// the raw page's JSON shown as JSON and flagged as no Engine.IO packet.
#[test]
fn tour_socketio_chat_decoded() {
    let case = "tour-socketio-chat";
    let recs = json(case, &["--conns"]);
    let events: Vec<&Value> = of_type(&recs, "message")
        .into_iter()
        .filter(|m| m["app"]["socket_io"] == "EVENT" && m["app"]["event"] == "msg")
        .collect();
    let incoming: Vec<&&Value> = events.iter().filter(|m| m["from"] == "client").collect();
    assert_eq!(incoming.len(), 2, "alice's and bob's");
    for m in &incoming {
        let copies: Vec<u64> = events
            .iter()
            .filter(|o| o["from"] == "server" && o["app"]["args"] == m["app"]["args"])
            .map(|o| o["stream"].as_u64().unwrap())
            .collect();
        assert_eq!(copies.len(), 2, "fanned out to the two others: {}", m["app"]);
        assert!(!copies.contains(&m["stream"].as_u64().unwrap()), "not back to the sender");
        assert!(
            events.iter().all(|o| o["packet"].as_u64() >= m["packet"].as_u64()
                || o["app"]["args"] != m["app"]["args"]),
            "no copy before the original"
        );
    }
    assert_eq!(incoming[1]["app"]["args"][0]["n"], serde_json::json!([1, 2, 3]));
    // Each user's WebSocket is tied to the long-polling requests of its session.
    let conns = of_type(&recs, "connection");
    let users: Vec<&&Value> =
        conns.iter().filter(|c| c["path"].as_str().is_some_and(|p| p.contains("sid="))).collect();
    assert_eq!(users.len(), 3);
    for c in &users {
        assert_eq!(c["app_protocol"], "engine.io");
        let streams = c["sid_streams"].as_array().unwrap();
        assert!(streams.len() >= 2, "polling and WebSocket: {c}");
        assert!(streams.contains(&c["stream"]));
    }
    // The raw page: its open packet decoded, its plain JSON marked as JSON, undecodable as
    // Engine.IO.
    let raw = conns.iter().find(|c| c["path"] == "/socket.io/?EIO=4&transport=websocket");
    let stream = raw.unwrap()["stream"].as_u64().unwrap();
    let msgs: Vec<&Value> =
        of_type(&recs, "message").into_iter().filter(|m| m["stream"] == stream).collect();
    assert_eq!(msgs[0]["app"]["engine_io"], "open");
    assert_eq!(msgs[1]["json"], true);
    assert!(msgs[1]["app"]["error"].is_string());
    assert_eq!(codes(msgs[1]), vec!["app-decode-error"]);
    let f = table(&["follow", &stream.to_string(), "--pretty"], case);
    assert!(f.contains("    {\n      \"name\": \"msg\",\n      \"data\": [\n        12,"), "{f}");
    let t = table(&["messages", "--where", "app.event=msg"], case);
    assert_eq!(t.matches("socket.io EVENT \"msg\"").count(), 6, "{t}");
}

/// The connection record of a stream.
fn connection_of(recs: &[Value], stream: u64) -> &Value {
    of_type(recs, "connection")
        .into_iter()
        .find(|c| c["stream"] == stream)
        .expect("its connection record")
}
