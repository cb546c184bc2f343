//! `--normalize`: records with what varies between two recordings of the same scenario
//! removed, so their outputs can be diffed.
//!
//! Removed: capture times (`ts`, `start`, `end`, `rtt_ms`), packet numbers, ports (endpoints
//! and the Host header become bare addresses), masking keys, the random handshake key and its accept value, the TLS client random,
//! the `Date` header, input names, packet and byte totals, and `tcp` records (which reflect
//! how the stack segmented and retransmitted, not what the peers said). Engine.IO session
//! ids, which the server draws at random, are numbered by first appearance ([`SessionIds`]),
//! and the cache-busting `t=` of Engine.IO polling requests is blanked. Everything the peers
//! said — handshake fields, frames, messages, close codes — stays.
//!
//! Done on the finished record rather than in every writer so the writers stay one simple
//! path for the common case; normalizing costs a parse per record, which only this option
//! pays.

use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashMap;

const DROPPED_KEYS: &[&str] = &[
    "packet",
    "first_packet",
    "last_packet",
    "request_packet",
    "response_packet",
    "ts",
    "start",
    "end",
    "rtt_ms",
    "mask_key",
    "key",
    "accept",
    "client_random",
    "inputs",
    "packets",
    "tcp_packets",
];

const ENDPOINT_KEYS: &[&str] = &["src", "dst", "client", "server", "host"];

/// Headers whose values are random or clock-dependent in every run.
const VARYING_HEADERS: &[&str] = &["sec-websocket-key", "sec-websocket-accept", "date"];

/// Normalizes the JSON Lines records of one run.
#[derive(Debug, Default)]
pub struct Normalizer {
    ids: SessionIds,
}

impl Normalizer {
    /// Normalizes one record in place (keeping its newline); returns false when the whole
    /// record is dropped.
    pub fn line(&mut self, buf: &mut Vec<u8>) -> bool {
        let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(buf) else {
            return true;
        };
        let kind = obj.get("type").and_then(Value::as_str).unwrap_or("").to_string();
        if kind == "tcp" {
            return false;
        }
        normalize_object(&mut obj, &kind);
        self.ids.in_object(&mut obj);
        buf.clear();
        if serde_json::to_writer(&mut *buf, &Value::Object(obj)).is_err() {
            return false;
        }
        buf.push(b'\n');
        true
    }
}

/// Engine.IO session ids seen in one capture, numbered by first appearance: two recordings
/// of one scenario draw different ids in the same places, so their numbers match.
#[derive(Debug, Default)]
pub struct SessionIds {
    numbers: HashMap<String, usize>,
}

impl SessionIds {
    /// `<sid N>` for one id.
    fn id(&mut self, id: &str) -> String {
        let count = self.numbers.len();
        let n = *self.numbers.entry(id.to_string()).or_insert(count + 1);
        format!("<sid {n}>")
    }

    /// `text` with each session id replaced by `<sid N>`: the value of a `sid=` query
    /// parameter, and of a `"sid"` JSON member (an Engine.IO `open` packet, a Socket.IO
    /// namespace's CONNECT). In an Engine.IO request path (`EIO=`), the `t=` parameter, a
    /// token against caches, becomes `<t>`.
    pub fn number<'t>(&mut self, text: &'t str) -> Cow<'t, str> {
        const MARKS: [(&str, &[char]); 4] = [
            ("sid=", &['&', '#', ' ', '"']),
            ("\"sid\":\"", &['"']),
            ("\"sid\": \"", &['"']),
            ("t=", &['&', '#', ' ', '"']),
        ];
        if !text.contains("sid") && !text.contains("EIO=") {
            return Cow::Borrowed(text);
        }
        let engine_io = text.contains("EIO=");
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        loop {
            let next = MARKS
                .iter()
                .filter(|(mark, _)| engine_io || *mark != "t=")
                .filter_map(|&(mark, ends)| rest.find(mark).map(|at| (at, mark, ends)))
                .min_by_key(|&(at, ..)| at);
            let Some((at, mark, ends)) = next else { break };
            let start = at + mark.len();
            let len = rest[start..].find(ends).unwrap_or(rest.len() - start);
            let value = &rest[start..start + len];
            out.push_str(&rest[..start]);
            // A parameter of that name (`?sid=`, `&sid=`, a summary's ` sid=`), not one whose
            // name ends in it (`usid=`).
            let parameter = !mark.ends_with('=')
                || !rest[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
            if value.is_empty() || !parameter {
                rest = &rest[start..];
                continue;
            }
            if mark == "t=" {
                out.push_str("<t>");
            } else {
                out.push_str(&self.id(value));
            }
            rest = &rest[start + len..];
        }
        out.push_str(rest);
        Cow::Owned(out)
    }

    /// [`SessionIds::number`] of `text`, in place.
    pub fn number_in(&mut self, text: &mut String) {
        if let Cow::Owned(numbered) = self.number(text) {
            *text = numbered;
        }
    }

    /// Numbers the ids in every string of a record, and the value of every `sid` key.
    fn in_object(&mut self, obj: &mut Map<String, Value>) {
        for (key, v) in obj.iter_mut() {
            match v {
                Value::String(s) if key == "sid" => *s = self.id(s),
                _ => self.in_value(v),
            }
        }
    }

    fn in_value(&mut self, v: &mut Value) {
        match v {
            Value::String(s) => self.number_in(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.in_value(v)),
            Value::Object(obj) => self.in_object(obj),
            _ => {}
        }
    }
}

fn normalize_object(obj: &mut Map<String, Value>, kind: &str) {
    for k in DROPPED_KEYS {
        // `bytes` is a payload key elsewhere; only the end record's total is a count.
        obj.shift_remove(*k);
    }
    if kind == "end" {
        obj.shift_remove("bytes");
        obj.shift_remove("errors");
        for k in ["kernel_received", "kernel_dropped", "interface_dropped"] {
            obj.shift_remove(k);
        }
    }
    for k in ENDPOINT_KEYS {
        if let Some(Value::String(s)) = obj.get_mut(*k) {
            *s = strip_port(s);
        }
    }
    for k in ["request_headers", "response_headers"] {
        if let Some(Value::Array(hs)) = obj.get_mut(k) {
            hs.retain(|h| {
                let name = h.get(0).and_then(Value::as_str).unwrap_or("");
                !VARYING_HEADERS.iter().any(|v| name.eq_ignore_ascii_case(v))
            });
            for h in hs.iter_mut() {
                let is_host = h
                    .get(0)
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case("host"));
                if let (true, Some(Value::String(v))) = (is_host, h.get_mut(1)) {
                    *v = strip_port(v);
                }
            }
        }
    }
    if let Some(Value::Object(close)) = obj.get_mut("close") {
        close.shift_remove("packet");
    }
}

/// `"1.2.3.4:80"` → `"1.2.3.4"`, `"[::1]:80"` → `"::1"`.
fn strip_port(s: &str) -> String {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            return rest[..end].to_string();
        }
    }
    match s.rsplit_once(':') {
        Some((addr, port)) if port.bytes().all(|b| b.is_ascii_digit()) => addr.to_string(),
        _ => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(line: &str) -> Option<String> {
        let mut buf = format!("{line}\n").into_bytes();
        Normalizer::default().line(&mut buf).then(|| String::from_utf8(buf).unwrap())
    }

    #[test]
    fn varying_keys_go_and_the_order_stays() {
        let out = norm(
            r#"{"type":"frame","packet":6,"ts":1.5,"stream":0,"src":"10.0.0.1:4000","dst":"[::1]:80","mask_key":"01020304","text":"hi"}"#,
        )
        .unwrap();
        assert_eq!(out, "{\"type\":\"frame\",\"stream\":0,\"src\":\"10.0.0.1\",\"dst\":\"::1\",\"text\":\"hi\"}\n");
    }

    #[test]
    fn tcp_records_are_dropped() {
        assert!(norm(r#"{"type":"tcp","packet":1,"event":"syn"}"#).is_none());
    }

    #[test]
    fn random_handshake_headers_are_dropped() {
        let out = norm(
            r#"{"type":"handshake","key":"abc","request_headers":[["Host","x"],["Sec-WebSocket-Key","abc"]]}"#,
        )
        .unwrap();
        assert_eq!(out, "{\"type\":\"handshake\",\"request_headers\":[[\"Host\",\"x\"]]}\n");
    }

    #[test]
    fn session_ids_are_numbered_by_first_appearance() {
        let mut ids = SessionIds::default();
        assert_eq!(
            ids.number("/socket.io/?EIO=4&transport=websocket&sid=Ab-c_9"),
            "/socket.io/?EIO=4&transport=websocket&sid=<sid 1>"
        );
        assert_eq!(
            ids.number(r#"0{"sid":"Ab-c_9","upgrades":[],"pingInterval":25000}"#),
            r#"0{"sid":"<sid 1>","upgrades":[],"pingInterval":25000}"#
        );
        assert_eq!(ids.number(r#"40/admin,{"sid": "xyz"}"#), r#"40/admin,{"sid": "<sid 2>"}"#);
        assert_eq!(ids.number("/x?sid=q&sid=Ab-c_9#f"), "/x?sid=<sid 3>&sid=<sid 1>#f");
        // Nothing to number: the text comes back as it is.
        assert!(matches!(ids.number("42[\"msg\",\"hello\"]"), Cow::Borrowed(_)));
        for same in ["42[\"sidebar\"]", r#"{"sid":""} sid="#, "/x?usid=abc&sid", "sid=a b"] {
            let want = if same == "sid=a b" { "sid=<sid 4> b" } else { same };
            assert_eq!(ids.number(same), want);
        }
        // `t=` is blanked only in Engine.IO paths.
        assert_eq!(ids.number("/socket.io/?EIO=4&t=Nq9&b64=1"), "/socket.io/?EIO=4&t=<t>&b64=1");
        assert_eq!(ids.number("/feed?t=5"), "/feed?t=5");
    }

    #[test]
    fn session_ids_are_numbered_across_records() {
        let mut n = Normalizer::default();
        let mut line = |l: &str| {
            let mut buf = format!("{l}\n").into_bytes();
            n.line(&mut buf);
            String::from_utf8(buf).unwrap()
        };
        assert_eq!(
            line(r#"{"type":"app","path":"/socket.io/?EIO=4&transport=polling&t=Pq1x","sid":"AAA","text":"0{\"sid\":\"AAA\"}","app":{"sid":"BBB"}}"#),
            "{\"type\":\"app\",\"path\":\"/socket.io/?EIO=4&transport=polling&t=<t>\",\"sid\":\"<sid 1>\",\"text\":\"0{\\\"sid\\\":\\\"<sid 1>\\\"}\",\"app\":{\"sid\":\"<sid 2>\"}}\n"
        );
        assert_eq!(
            line(r#"{"type":"handshake","path":"/socket.io/?EIO=4&transport=websocket&sid=BBB","t":"x?t=1"}"#),
            "{\"type\":\"handshake\",\"path\":\"/socket.io/?EIO=4&transport=websocket&sid=<sid 2>\",\"t\":\"x?t=1\"}\n"
        );
    }
}
