//! Engine.IO (protocol versions 3 and 4) and Socket.IO (protocol versions 4 and 5) packets,
//! over WebSocket messages and in HTTP long-polling payloads.
//!
//! An Engine.IO packet is a type digit (`0` open … `6` noop) and its data; a `4` message
//! carries a Socket.IO packet: a type digit, for binary packets the attachment count and
//! `-`, an optional `/namespace,`, an optional acknowledgement id, and a JSON payload
//! (`42["msg","hello"]`, `451-["upload",{"_placeholder":true,"num":0}]`). The binary
//! attachments of a BINARY_EVENT/BINARY_ACK follow it as binary messages (WebSocket) or
//! `b<base64>` packets (polling); each is reported with `attachment` (its index) and
//! `attachment_of` (the packet where its Socket.IO packet began), and the packet itself with
//! `attachments` (the count). Protocol references: socket.io-protocol and engine.io-protocol
//! (github.com/socketio).

use super::{compact, App, AppDecoder, AppMessage, Decoded, Hints, Registration};
use crate::tcp::Side;
use base64::Engine;
use serde_json::Value;
use std::collections::VecDeque;

pub const REGISTRATION: Registration = Registration {
    name: "engine.io",
    by_handshake,
    by_content,
    new: |h| Box::new(EngineIo::new(h.path)),
};

/// Attachments awaited at most per direction (a hostile count cannot take memory).
const MAX_PENDING: usize = 64;
/// Characters of JSON shown in summaries.
const SUMMARY_JSON: usize = 80;

fn by_handshake(h: &Hints<'_>) -> bool {
    h.path.is_some_and(is_engineio_path)
}

/// `/socket.io/?EIO=4&transport=websocket` and friends: an `EIO` query parameter, or the
/// default Socket.IO path.
pub fn is_engineio_path(path: &str) -> bool {
    query_param(path, "EIO").is_some() || path.starts_with("/socket.io/")
}

/// The value of a query parameter of a request target.
pub fn query_param<'p>(path: &'p str, name: &str) -> Option<&'p str> {
    let (_, query) = path.split_once('?')?;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    })
}

/// Engine.IO protocol version from the path (`EIO=3`); 4 when absent.
pub fn version_of(path: Option<&str>) -> u8 {
    match path.and_then(|p| query_param(p, "EIO")) {
        Some("3") => 3,
        Some("2") => 2,
        _ => 4,
    }
}

fn by_content(m: &AppMessage<'_>) -> bool {
    if !m.text {
        return false;
    }
    if m.payload.starts_with(b"0{\"sid\":") || m.payload == b"2probe" || m.payload == b"3probe" {
        return true;
    }
    // Joined mid-stream: a Socket.IO event, `42["name",…]`, whose payload is a JSON array
    // starting with a string, is specific enough.
    m.payload.starts_with(b"42[\"")
        && serde_json::from_slice::<Value>(&m.payload[2..])
            .is_ok_and(|v| v.get(0).is_some_and(Value::is_string))
}

const EIO_TYPES: [&str; 7] = ["open", "close", "ping", "pong", "message", "upgrade", "noop"];
const SIO_TYPES: [&str; 7] =
    ["CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK"];

/// A Socket.IO packet whose binary attachments are still to come.
#[derive(Clone, Debug)]
struct Awaiting {
    of_packet: u64,
    socket_io: &'static str,
    namespace: String,
    ack_id: Option<u64>,
    event: Option<String>,
    total: u64,
    next: u64,
}

pub struct EngineIo {
    version: u8,
    /// The path names Socket.IO (a `4` message then must hold a Socket.IO packet).
    socket_io: bool,
    /// From the `open` packet.
    sid: Option<String>,
    awaiting: [VecDeque<Awaiting>; 2],
}

impl EngineIo {
    pub fn new(path: Option<&str>) -> EngineIo {
        EngineIo {
            version: version_of(path),
            socket_io: path.is_none_or(|p| p.starts_with("/socket.io/")),
            sid: None,
            awaiting: Default::default(),
        }
    }

    /// One Engine.IO packet given as text (a WebSocket text message, or a polling packet).
    pub fn text_packet(&mut self, from: Side, s: &str, first_packet: u64) -> Decoded {
        let mut app = App::new("engine.io");
        let Some(t) = s.bytes().next().filter(u8::is_ascii_digit).map(|b| usize::from(b - b'0'))
        else {
            return Decoded::error(None, "an Engine.IO packet must start with a type digit");
        };
        let Some(&name) = EIO_TYPES.get(t) else {
            return Decoded::error(None, format!("unknown Engine.IO packet type {t}"));
        };
        let data = &s[1..];
        app.set("engine_io", name);
        app.summary = format!("engine.io {name}");
        match t {
            0 => match serde_json::from_str::<Value>(data) {
                Ok(v) => {
                    if let Some(sid) = v.get("sid").and_then(Value::as_str) {
                        app.set("sid", sid);
                        app.summary.push_str(&format!(" sid={sid}"));
                        // Kept for the connection record: bounded like the sid table's keys.
                        self.sid = Some(super::cut(sid, super::polling::MAX_SID_KEY).to_owned());
                    }
                    app.set("data", v);
                }
                Err(e) => return Decoded::error(Some(app), format!("open packet: {e}")),
            },
            2 | 3 if data == "probe" => {
                app.set("probe", true);
                app.summary.push_str(" probe");
            }
            4 if self.socket_io => return self.socket_io_packet(app, from, data, first_packet),
            _ if !data.is_empty() => {
                app.set("data", data);
                app.summary.push_str(&format!(" {}", compact(&Value::from(data), SUMMARY_JSON)));
            }
            _ => {}
        }
        Decoded::app(app)
    }

    fn socket_io_packet(
        &mut self,
        mut app: App,
        from: Side,
        s: &str,
        first_packet: u64,
    ) -> Decoded {
        let b = s.as_bytes();
        let Some(t) = b.first().filter(|c| c.is_ascii_digit()).map(|c| usize::from(c - b'0'))
        else {
            app.set("data", s);
            return Decoded::error(Some(app), "a Socket.IO packet must start with a type digit");
        };
        let Some(&name) = SIO_TYPES.get(t) else {
            app.set("data", s);
            return Decoded::error(Some(app), format!("unknown Socket.IO packet type {t}"));
        };
        app.set("socket_io", name);
        let mut at = 1;
        let mut attachments = None;
        if t == 5 || t == 6 {
            let digits = b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
            let n = s[at..at + digits].parse::<u64>().ok();
            if n.is_none() || b.get(at + digits) != Some(&b'-') {
                return Decoded::error(Some(app), "binary packet without `<count>-`");
            }
            attachments = n;
            at += digits + 1;
        }
        let mut namespace = "/";
        if b.get(at) == Some(&b'/') {
            let end = s[at..].find(',').map_or(s.len(), |i| at + i);
            namespace = &s[at..end];
            at = (end + 1).min(s.len());
        }
        let digits = b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
        let ack_id = if digits > 0 { s[at..at + digits].parse::<u64>().ok() } else { None };
        at += digits;
        app.set("namespace", namespace);
        if let Some(id) = ack_id {
            app.set("ack_id", id);
        }
        let payload = &s[at..];
        let data = if payload.is_empty() {
            None
        } else {
            match serde_json::from_str::<Value>(payload) {
                Ok(v) => Some(v),
                Err(e) => {
                    app.set("data", payload);
                    return Decoded::error(Some(app), format!("Socket.IO payload: {e}"));
                }
            }
        };
        let mut event = None;
        let mut summary = format!("socket.io {name}");
        if namespace != "/" {
            summary.push_str(&format!(" {namespace}"));
        }
        match (t, data) {
            (2 | 5, Some(Value::Array(mut items))) => {
                if items.first().is_some_and(Value::is_string) {
                    let ev = items.remove(0);
                    let ev = ev.as_str().unwrap_or_default().to_owned();
                    summary.push_str(&format!(" {}", compact(&Value::from(ev.as_str()), 60)));
                    app.set("event", ev.as_str());
                    event = Some(ev);
                } else {
                    return Decoded::error(Some(app), "an EVENT payload must start with its name");
                }
                let args = Value::Array(items);
                summary.push_str(&format!(" {}", compact(&args, SUMMARY_JSON)));
                app.set("args", args);
            }
            (3 | 6, Some(args @ Value::Array(_))) => {
                if let Some(id) = ack_id {
                    summary.push_str(&format!(" {id}"));
                }
                summary.push_str(&format!(" {}", compact(&args, SUMMARY_JSON)));
                app.set("args", args);
            }
            (2 | 3 | 5 | 6, _) => {
                return Decoded::error(Some(app), format!("the {name} payload must be an array"));
            }
            (_, Some(v)) => {
                summary.push_str(&format!(" {}", compact(&v, SUMMARY_JSON)));
                app.set("data", v);
            }
            (_, None) => {}
        }
        if let (2 | 5, Some(id)) = (t, ack_id) {
            summary.push_str(&format!(" ack={id}"));
        }
        if let Some(n) = attachments {
            app.set("attachments", n);
            summary.push_str(&format!(" +{n} attachment{}", if n == 1 { "" } else { "s" }));
            let q = &mut self.awaiting[from.index()];
            if n > 0 && q.len() < MAX_PENDING {
                q.push_back(Awaiting {
                    of_packet: first_packet,
                    socket_io: name,
                    namespace: namespace.to_owned(),
                    ack_id,
                    event,
                    total: n,
                    next: 0,
                });
            }
        }
        app.summary = summary;
        Decoded::app(app)
    }

    /// A binary Engine.IO message: an attachment when one is awaited, else binary data.
    /// `framed`: the bytes are not the record's payload as it stands (Engine.IO 3 type byte,
    /// base64 in a polling body), so the app object carries them.
    pub fn binary_packet(&mut self, from: Side, data: &[u8], framed: bool) -> Decoded {
        let mut app = App::new("engine.io");
        app.set("engine_io", "message");
        let q = &mut self.awaiting[from.index()];
        if let Some(w) = q.front_mut() {
            let i = w.next;
            w.next += 1;
            app.set("socket_io", w.socket_io).set("namespace", w.namespace.as_str());
            if let Some(id) = w.ack_id {
                app.set("ack_id", id);
            }
            if let Some(ev) = &w.event {
                app.set("event", ev.as_str());
            }
            app.set("attachment", i).set("attachment_of", w.of_packet).set("len", data.len());
            app.summary = format!(
                "socket.io {} attachment {}/{} ({} bytes)",
                w.socket_io,
                i + 1,
                w.total,
                data.len()
            );
            if w.next >= w.total {
                q.pop_front();
            }
        } else {
            app.set("len", data.len());
            app.summary = format!("engine.io message binary {} bytes", data.len());
        }
        if framed {
            app.set("payload_bytes", base64::engine::general_purpose::STANDARD.encode(data));
        }
        Decoded::app(app)
    }
}

impl AppDecoder for EngineIo {
    fn lose(&mut self, from: Side) {
        self.awaiting[from.index()].clear();
    }

    fn protocol(&self) -> &'static str {
        "engine.io"
    }

    fn session_id(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    fn decode(&mut self, m: &AppMessage<'_>) -> Decoded {
        if m.text {
            let s = std::str::from_utf8(m.payload).unwrap_or_default();
            return self.text_packet(m.from, s, m.first_packet);
        }
        // Engine.IO 3 prefixes binary WebSocket messages with their packet type (4).
        if self.version <= 3 {
            match m.payload.split_first() {
                Some((4, rest)) => self.binary_packet(m.from, rest, true),
                _ => Decoded::error(None, "an Engine.IO 3 binary message must start with 4"),
            }
        } else {
            self.binary_packet(m.from, m.payload, false)
        }
    }
}

/// Splits an HTTP long-polling body into Engine.IO packets: joined by the record separator
/// 0x1E in version 4, `<length>:<packet>` in version 3 (length in characters).
pub fn split_payload(version: u8, body: &str) -> Result<Vec<&str>, String> {
    if version >= 4 {
        return Ok(body.split('\u{1e}').filter(|p| !p.is_empty()).collect());
    }
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let Some((len, after)) = rest.split_once(':') else {
            return Err("an Engine.IO 3 payload packet lacks `<length>:`".into());
        };
        let n: usize = len.parse().map_err(|_| format!("bad packet length {len:?}"))?;
        let end = after.char_indices().nth(n).map_or(after.len(), |(i, _)| i);
        if after.chars().count() < n {
            return Err("an Engine.IO 3 payload packet is shorter than its length".into());
        }
        out.push(&after[..end]);
        rest = &after[end..];
    }
    Ok(out)
}

impl EngineIo {
    /// Every packet of one polling body, in order, with its text.
    pub fn polling_body(
        &mut self,
        from: Side,
        body: &[u8],
        first_packet: u64,
    ) -> Vec<(String, Decoded)> {
        let Ok(text) = std::str::from_utf8(body) else {
            return vec![(
                String::from_utf8_lossy(body).into_owned(),
                Decoded::error(None, "a polling payload is not UTF-8 text"),
            )];
        };
        let packets = match split_payload(self.version, text) {
            Ok(p) => p,
            Err(e) => return vec![(text.to_owned(), Decoded::error(None, e))],
        };
        packets
            .into_iter()
            .map(|p| (p.to_owned(), self.polling_packet(from, p, first_packet)))
            .collect()
    }

    fn polling_packet(&mut self, from: Side, p: &str, first_packet: u64) -> Decoded {
        match p.strip_prefix('b') {
            // Binary packets travel base64-encoded: `b<base64>` (v4) or `b4<base64>` (v3).
            Some(b64) => {
                let b64 = if self.version <= 3 { b64.get(1..).unwrap_or_default() } else { b64 };
                match base64::engine::general_purpose::STANDARD.decode(b64) {
                    Ok(bytes) => self.binary_packet(from, &bytes, true),
                    Err(e) => Decoded::error(None, format!("binary packet base64: {e}")),
                }
            }
            None => self.text_packet(from, p, first_packet),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(e: &mut EngineIo, from: Side, s: &str) -> App {
        let d = e.text_packet(from, s, 7);
        assert_eq!(d.error, None, "{s}");
        d.app.unwrap()
    }

    #[test]
    fn socket_io_event_ack_and_namespace() {
        let mut e = EngineIo::new(Some("/socket.io/?EIO=4&transport=websocket"));
        let a = text(&mut e, Side::Client, r#"42["msg","hello"]"#);
        assert_eq!(a.fields["socket_io"], "EVENT");
        assert_eq!(a.fields["event"], "msg");
        assert_eq!(a.fields["args"], serde_json::json!(["hello"]));
        assert_eq!(a.summary, r#"socket.io EVENT "msg" ["hello"]"#);
        let a = text(&mut e, Side::Client, r#"42/admin,0["stats"]"#);
        assert_eq!(
            (a.fields["namespace"].as_str(), a.fields["ack_id"].as_u64()),
            (Some("/admin"), Some(0))
        );
        assert_eq!(a.fields["args"], serde_json::json!([]));
        let a = text(&mut e, Side::Server, r#"4313["hi alice"]"#);
        assert_eq!(
            (a.fields["socket_io"].as_str(), a.fields["ack_id"].as_u64()),
            (Some("ACK"), Some(13))
        );
        let a = text(&mut e, Side::Server, r#"40{"sid":"x"}"#);
        assert_eq!(a.fields["data"]["sid"], "x");
        let a = text(&mut e, Side::Client, "41");
        assert_eq!(a.fields["socket_io"], "DISCONNECT");
    }

    #[test]
    fn engine_io_packets_and_probe() {
        let mut e = EngineIo::new(None);
        assert_eq!(text(&mut e, Side::Client, "2probe").fields["probe"], true);
        assert_eq!(text(&mut e, Side::Client, "5").fields["engine_io"], "upgrade");
        assert_eq!(text(&mut e, Side::Server, "6").fields["engine_io"], "noop");
        let a = text(&mut e, Side::Server, r#"0{"sid":"abc","upgrades":["websocket"]}"#);
        assert_eq!(a.fields["sid"], "abc");
        assert!(e.text_packet(Side::Server, "9", 1).error.is_some());
        assert!(e.text_packet(Side::Server, "", 1).error.is_some());
        assert!(e.text_packet(Side::Server, "42[broken", 1).error.is_some());
        assert!(e.text_packet(Side::Server, "42{}", 1).error.is_some());
        assert!(e.text_packet(Side::Server, "0{", 1).error.is_some());
    }

    #[test]
    fn binary_attachments_follow_their_packet() {
        let mut e = EngineIo::new(None);
        let a = text(
            &mut e,
            Side::Client,
            r#"452-["up",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
        );
        assert_eq!(a.fields["attachments"], 2);
        // The other direction's binary message is not an attachment of it.
        assert!(e
            .binary_packet(Side::Server, b"x", false)
            .app
            .unwrap()
            .fields
            .get("attachment")
            .is_none());
        for i in 0..2u64 {
            let b = e.binary_packet(Side::Client, b"\x01\x02", false).app.unwrap();
            assert_eq!(
                (b.fields["attachment"].as_u64(), b.fields["attachment_of"].as_u64()),
                (Some(i), Some(7))
            );
            assert_eq!(b.fields["event"], "up");
        }
        assert!(e
            .binary_packet(Side::Client, b"x", false)
            .app
            .unwrap()
            .fields
            .get("attachment")
            .is_none());
        assert!(e.text_packet(Side::Client, "45[]", 1).error.is_some());
        // After a loss, a binary message is not taken for an attachment announced before it:
        // the attachments in between may have been in the hole.
        text(&mut e, Side::Client, r#"451-["up",{"_placeholder":true,"num":0}]"#);
        e.lose(Side::Client);
        let b = e.binary_packet(Side::Client, b"\x01", false).app.unwrap();
        assert!(b.fields.get("attachment").is_none());
    }

    #[test]
    fn polling_payloads_split_by_version() {
        assert_eq!(split_payload(4, "40\u{1e}42[\"a\"]").unwrap(), vec!["40", "42[\"a\"]"]);
        assert_eq!(split_payload(3, "2:407:42[\"é\"]").unwrap(), vec!["40", "42[\"é\"]"]);
        assert!(split_payload(3, "9:40").is_err());
        assert!(split_payload(3, "x:40").is_err());
        let mut e = EngineIo::new(Some("/socket.io/?EIO=4&transport=polling"));
        let out = e.polling_body(
            Side::Client,
            b"451-[\"f\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID",
            3,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].1.app.as_ref().unwrap().fields["attachment_of"], 3);
    }

    #[test]
    fn recognised_by_content() {
        let m = |p: &'static [u8]| AppMessage {
            from: Side::Client,
            text: true,
            payload: p,
            first_packet: 1,
        };
        assert!(by_content(&m(br#"0{"sid":"a","upgrades":[]}"#)));
        assert!(by_content(&m(b"2probe")));
        assert!(by_content(&m(br#"42["msg",{"a":1}]"#)));
        assert!(!by_content(&m(br#"42[1,2]"#)));
        assert!(!by_content(&m(b"42 is the answer")));
        assert!(!by_content(&AppMessage { text: false, ..m(b"2probe") }));
    }

    #[test]
    fn query_parameters() {
        let p = "/socket.io/?EIO=3&transport=polling&sid=abc";
        assert_eq!(query_param(p, "sid"), Some("abc"));
        assert_eq!(version_of(Some(p)), 3);
        assert!(is_engineio_path("/engine.io/?EIO=4&transport=websocket"));
        assert!(!is_engineio_path("/chat"));
    }
}
