//! `--normalize`: records with what varies between two recordings of the same scenario
//! removed, so their outputs can be diffed.
//!
//! Removed: capture times (`ts`, `start`, `end`, `rtt_ms`), packet numbers, ports (endpoints
//! and the Host header become bare addresses), masking keys, the random handshake key and its
//! accept value, the TLS client random, the `Date` header, input names, packet and byte
//! totals, and `tcp` records (which reflect how the stack segmented and retransmitted, not
//! what the peers said). Engine.IO session
//! ids, which the server draws at random, are numbered by first appearance ([`SessionIds`]),
//! and the cache-busting `t=` of Engine.IO polling requests is blanked. Everything the peers
//! said — handshake fields, frames, messages, close codes — stays.
//!
//! Done on the finished record rather than in every writer so the writers stay one simple
//! path for the common case. A record is walked member by member without being parsed: a
//! member that has nothing to change (a payload, most of every record) is copied as it was
//! written, and only the few that change (an endpoint, the handshake's headers, a string
//! that names a session id) are parsed and written again. Parsing every record into a
//! `serde_json::Value` and serializing it made `--json --normalize` six and a half times
//! slower than `--json` on the benchmark capture, and under twice as slow with the walk. A
//! record the walk does not expect is normalized through a whole parse instead, with the same
//! result (a differential test holds the two to that).

use crate::app::json_text;
use memchr::memmem::Finder;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

/// Headers whose values are random or clock-dependent in every run.
const VARYING_HEADERS: &[&str] = &["sec-websocket-key", "sec-websocket-accept", "date"];

/// What normalizing does with a member of a record, by its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Dropped,
    /// An `addr:port` that loses its port.
    Endpoint,
    /// Handshake headers, or a connection's close: edited inside.
    Edited,
    /// An Engine.IO session id.
    Sid,
    Kept,
}

fn role(key: &[u8], end_record: bool) -> Role {
    match key {
        b"packet" | b"first_packet" | b"last_packet" | b"request_packet" | b"response_packet"
        | b"ts" | b"start" | b"end" | b"rtt_ms" | b"mask_key" | b"key" | b"accept"
        | b"client_random" | b"inputs" | b"packets" | b"tcp_packets" => Role::Dropped,
        // `bytes` is a payload key elsewhere; only the end record's total is a count.
        b"bytes" | b"errors" | b"kernel_received" | b"kernel_dropped" | b"interface_dropped"
            if end_record =>
        {
            Role::Dropped
        }
        b"src" | b"dst" | b"client" | b"server" | b"host" => Role::Endpoint,
        b"request_headers" | b"response_headers" | b"close" => Role::Edited,
        b"sid" => Role::Sid,
        _ => Role::Kept,
    }
}

/// Normalizes the JSON Lines records of one run.
#[derive(Debug)]
pub struct Normalizer {
    ids: SessionIds,
    /// The record being rewritten by [`Normalizer::walk`].
    out: Vec<u8>,
    /// The record's members (see [`members_into`]), kept between records to reuse the room.
    members: Vec<Member>,
    sid: Finder<'static>,
    engine_io: Finder<'static>,
}

impl Default for Normalizer {
    fn default() -> Self {
        Normalizer {
            ids: SessionIds::default(),
            out: Vec::new(),
            members: Vec::new(),
            sid: Finder::new(b"sid"),
            engine_io: Finder::new(b"EIO="),
        }
    }
}

impl Normalizer {
    /// Normalizes one record in place (keeping its newline); returns false when the whole
    /// record is dropped.
    pub fn line(&mut self, buf: &mut Vec<u8>) -> bool {
        match self.walk(buf) {
            Some(keep) => {
                if keep {
                    std::mem::swap(buf, &mut self.out);
                }
                keep
            }
            None => self.parsed(buf),
        }
    }

    /// [`Normalizer::line`] by copying the members that stay as they are; `None` (having
    /// numbered no session id) when the record is not the one-line object the writers make.
    fn walk(&mut self, buf: &[u8]) -> Option<bool> {
        let record = buf.strip_suffix(b"\n")?;
        let mut members = std::mem::take(&mut self.members);
        let walked =
            members_into(record, &mut members).and_then(|()| self.rewrite(record, &mut members));
        self.members = members;
        walked
    }

    fn rewrite(&mut self, record: &[u8], members: &mut [Member]) -> Option<bool> {
        let at = |r: &Range<usize>| record.get(r.clone()).unwrap_or_default();
        let kind = match members.first() {
            Some(m) if at(&m.key) == b"type" => plain_string(at(&m.value))?,
            _ => return None,
        };
        if kind == b"tcp" {
            return Some(false);
        }
        if kind == b"end" {
            // The end record's totals go too.
            for m in members.iter_mut() {
                m.role = role(at(&m.key), true);
            }
        }
        // Written strings leave ASCII letters and `=` unescaped: a record whose text names
        // neither `sid` nor `EIO=` holds no session id.
        let ids = self.names_session_id(record);
        // Members to rewrite are parsed before any is numbered, so that a record that fails
        // to parse falls back with the numbering untouched.
        let mut parsed = Vec::new();
        for (n, m) in members.iter().enumerate() {
            let value = at(&m.value);
            let reparse = match m.role {
                Role::Dropped => false,
                Role::Edited => true,
                // One with an escape in it (a hostile Host) is unescaped before its port goes.
                Role::Endpoint => ids || value.contains(&b'\\'),
                Role::Sid => ids,
                Role::Kept => ids && self.names_session_id(value),
            };
            if reparse {
                parsed.push((n, serde_json::from_slice::<Value>(value).ok()?));
            }
        }
        self.out.clear();
        self.out.reserve(record.len() + 1);
        self.out.push(b'{');
        let mut parsed = parsed.into_iter().peekable();
        // Members that stay as written, from the quote of the first one's key to the end of
        // the last one's value: copied at once.
        let mut verbatim: Option<Range<usize>> = None;
        for (n, m) in members.iter().enumerate() {
            let (key, value, role) = (&m.key, &m.value, m.role);
            let rewritten = parsed.next_if(|(index, _)| *index == n).map(|(_, v)| v);
            let endpoint = match role {
                Role::Endpoint if rewritten.is_none() => plain_string(at(value)),
                _ => None,
            };
            if role != Role::Dropped && rewritten.is_none() && endpoint.is_none() {
                let start = verbatim.as_ref().map_or(key.start - 1, |r| r.start);
                verbatim = Some(start..value.end);
                continue;
            }
            self.copy_members(record, verbatim.take());
            if role == Role::Dropped {
                continue;
            }
            self.separate();
            self.out.push(b'"');
            self.out.extend_from_slice(at(key));
            self.out.extend_from_slice(b"\":");
            if let Some(address) = endpoint {
                self.out.push(b'"');
                self.out.extend_from_slice(without_port(address));
                self.out.push(b'"');
            } else if let Some(mut value) = rewritten {
                // Keys are plain text here ([`members_into`] saw no escape in them).
                let key = std::str::from_utf8(at(key)).unwrap_or_default();
                normalize_member(key, &mut value);
                match (&mut value, role) {
                    (Value::String(s), Role::Sid) => *s = self.ids.id(s),
                    (v, _) => self.ids.in_value(v),
                }
                // Writing a Value into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut self.out, &value);
            }
        }
        self.copy_members(record, verbatim);
        self.out.extend_from_slice(b"}\n");
        Some(true)
    }

    /// A comma unless the object is still empty.
    fn separate(&mut self) {
        if self.out.len() > 1 {
            self.out.push(b',');
        }
    }

    fn copy_members(&mut self, record: &[u8], members: Option<Range<usize>>) {
        if let Some(members) = members.and_then(|r| record.get(r)) {
            self.separate();
            self.out.extend_from_slice(members);
        }
    }

    fn names_session_id(&self, written: &[u8]) -> bool {
        self.sid.find(written).is_some() || self.engine_io.find(written).is_some()
    }

    /// [`Normalizer::line`] through a whole parse of the record.
    fn parsed(&mut self, buf: &mut Vec<u8>) -> bool {
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

/// One `"key":value` of a record: where its key's text and its value are.
#[derive(Debug)]
struct Member {
    key: Range<usize>,
    value: Range<usize>,
    /// As in any record but `end`.
    role: Role,
}

/// The members of a one-line object without whitespace between its tokens, in order; `None`
/// for anything else, or a key with an escape in it.
fn members_into(record: &[u8], members: &mut Vec<Member>) -> Option<()> {
    members.clear();
    if record.first() != Some(&b'{') {
        return None;
    }
    if record == b"{}" {
        return Some(());
    }
    let mut i = 1;
    loop {
        // A key the writers made: plain text between quotes, then a colon.
        if record.get(i) != Some(&b'"') {
            return None;
        }
        // Keys are short: a byte loop finds their end sooner than a vectorized search.
        let key_len = record.get(i + 1..)?.iter().position(|&b| b == b'"' || b == b'\\')?;
        let key_end = i + 1 + key_len;
        if record.get(key_end..key_end + 2) != Some(b"\":") {
            return None;
        }
        let value_start = key_end + 2;
        // Payloads are most of a record, and strings: skipped without checking their escapes.
        let end = match record.get(value_start) {
            Some(b'"') => json_text::written_string_end(record, value_start + 1)?,
            _ => json_text::value_end(record, value_start)?,
        };
        let role = role(record.get(i + 1..key_end)?, false);
        members.push(Member { key: i + 1..key_end, value: value_start..end, role });
        match record.get(end) {
            Some(b',') => i = end + 1,
            Some(b'}') if end + 1 == record.len() => return Some(()),
            _ => return None,
        }
    }
}

/// The text of a written string with no escape in it.
fn plain_string(written: &[u8]) -> Option<&[u8]> {
    let text = written.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    (!text.contains(&b'\\')).then_some(text)
}

fn normalize_object(obj: &mut Map<String, Value>, kind: &str) {
    obj.retain(|k, _| role(k.as_bytes(), kind == "end") != Role::Dropped);
    for (k, v) in obj.iter_mut() {
        normalize_member(k, v);
    }
}

/// The edits of one member that stays: endpoints lose their port, the handshake's headers
/// their random and clock-dependent fields, a connection's close its packet number.
fn normalize_member(key: &str, value: &mut Value) {
    match (key, value) {
        (k, Value::String(s)) if role(k.as_bytes(), false) == Role::Endpoint => *s = strip_port(s),
        ("request_headers" | "response_headers", Value::Array(hs)) => {
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
        ("close", Value::Object(close)) => {
            close.shift_remove("packet");
        }
        _ => {}
    }
}

/// `"1.2.3.4:80"` → `"1.2.3.4"`, `"[::1]:80"` → `"::1"`.
fn strip_port(s: &str) -> String {
    String::from_utf8_lossy(without_port(s.as_bytes())).into_owned()
}

/// An endpoint's address: what is inside its brackets, or what is before a numeric port.
fn without_port(endpoint: &[u8]) -> &[u8] {
    if let Some(rest) = endpoint.strip_prefix(b"[") {
        if let Some(end) = memchr::memchr(b']', rest) {
            return &rest[..end];
        }
    }
    match memchr::memrchr(b':', endpoint) {
        Some(colon) if endpoint[colon + 1..].iter().all(u8::is_ascii_digit) => &endpoint[..colon],
        _ => endpoint,
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

    /// The walk and the whole parse of the same records, each with its own numbering.
    fn both_ways(lines: &[String]) -> (Vec<Option<String>>, Vec<Option<String>>) {
        let (mut walker, mut parser) = (Normalizer::default(), Normalizer::default());
        let mut walked = Vec::new();
        let mut whole = Vec::new();
        for l in lines {
            let mut buf = format!("{l}\n").into_bytes();
            walked.push(walker.line(&mut buf).then(|| String::from_utf8(buf).unwrap()));
            let mut buf = format!("{l}\n").into_bytes();
            whole.push(parser.parsed(&mut buf).then(|| String::from_utf8(buf).unwrap()));
        }
        (walked, whole)
    }

    #[test]
    fn the_walk_gives_what_the_whole_parse_gives() {
        let lines: Vec<String> = [
            r#"{"type":"frame","packet":6,"src":"10.0.0.1:4000","dst":"[fe80::1]:443","text":"{\"sid\":\"Q1\",\"a\":\"\\\\\\\"\"}","bytes":"AAEC","problems":[]}"#,
            r#"{"type":"handshake","host":"evil\"host:80","request_headers":[["Host","h:1"],["Date","x"]],"response_headers":[["Sec-WebSocket-Accept","y"]],"key":"k","path":"/socket.io/?EIO=4&t=abc&sid=Q1"}"#,
            r#"{"type":"message","app":{"protocol":"engine.io","sid":"Q2","data":[1,2.5,{"sid":"Q1"}]},"client":null,"server":"1.2.3.4"}"#,
            r#"{"type":"connection","close":{"code":1000,"packet":9},"rtt_ms":1.25,"sid":"Q3","start":1.0}"#,
            r#"{"type":"end","bytes":10,"errors":[],"frames":3,"kernel_dropped":0,"inputs":["a"]}"#,
            r#"{"type":"tcp","packet":1}"#,
            r#"{"ty\u0070e":"frame","packet":1}"#,
            r#"{"type":"frame", "packet":1}"#,
            r#"{"packet":1,"type":"frame"}"#,
            r#"{"type":"frame","text":"t=1 usid=2 sid= EIO="}"#,
            r#"{"type":"frame","src":"no-port","dst":"1.2.3.4:","host":"[::1"}"#,
            r#"{"type":"handshake","host":"evil\"host:80","src":"a\\b:1","dst":"\u0031:2"}"#,
            r#"{}"#,
            r#"not json"#,
        ]
        .iter()
        .map(|l| l.to_string())
        .collect();
        let (walked, whole) = both_ways(&lines);
        assert_eq!(walked, whole);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        /// Keys that normalizing treats apart, and others.
        const KEYS: &[&str] = &[
            "packet",
            "ts",
            "src",
            "dst",
            "host",
            "sid",
            "bytes",
            "errors",
            "close",
            "text",
            "request_headers",
            "app",
            "path",
            "x",
            "kernel_dropped",
        ];

        fn text() -> impl Strategy<Value = String> {
            let pieces = prop_oneof![
                Just("sid".to_string()),
                Just("sid=".to_string()),
                Just("EIO=4".to_string()),
                Just("t=".to_string()),
                Just("\"".to_string()),
                Just("\\".to_string()),
                Just(":80".to_string()),
                Just("[::1]".to_string()),
                Just("&".to_string()),
                Just("é\u{1}\n".to_string()),
                "[a-z0-9.:]{0,12}",
            ];
            proptest::collection::vec(pieces, 0..8).prop_map(|p| p.concat())
        }

        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                (-1e6f64..1e6).prop_map(Value::from),
                text().prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..4)
                        .prop_map(|m| Value::Object(
                            m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                        )),
                ]
            })
        }

        fn record() -> impl Strategy<Value = String> {
            let kind = proptest::sample::select(&["frame", "message", "end", "tcp", "app"][..]);
            let members =
                proptest::collection::vec((proptest::sample::select(KEYS), value()), 0..8);
            (kind, members).prop_map(|(kind, members)| {
                let mut obj = Map::new();
                obj.insert("type".into(), Value::from(kind));
                for (k, v) in members {
                    obj.insert(k.to_string(), v);
                }
                serde_json::to_string(&Value::Object(obj)).unwrap()
            })
        }

        proptest! {
            #[test]
            fn the_walk_gives_what_the_whole_parse_gives(lines in proptest::collection::vec(record(), 1..6)) {
                let (walked, whole) = both_ways(&lines);
                prop_assert_eq!(walked, whole);
            }
        }
    }
}
