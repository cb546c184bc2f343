//! Stage 6b: application protocols inside WebSocket messages.
//!
//! A connection's decoder is chosen once, from the upgrade handshake (the request path, e.g.
//! `/socket.io/?EIO=4&transport=websocket`, or the selected `Sec-WebSocket-Protocol`) or,
//! failing that, from the content of its first messages. Every complete data message then
//! goes through it and comes out with an `app` object (`{"protocol": ..., ...}`) and an Info
//! summary for the text views. Text messages that parse as JSON are marked whatever the
//! protocol.
//!
//! Each decoder is one file behind [`AppDecoder`] plus a line in [`DECODERS`]. Decoders see
//! the messages of both directions in capture order and keep their own per-direction state
//! (Socket.IO binary attachments, MQTT packets split over messages), bounded by
//! `max_message`. A payload that does not decode gives an `app-decode-error` problem on its
//! message, never a panic.

pub mod actioncable;
pub mod engineio;
pub mod graphql;
pub mod json_text;
pub mod jsonrpc;
pub mod mqtt;
pub mod phoenix;
pub mod polling;
pub mod pusher;
pub mod signalr;
pub mod sockjs;
pub mod stomp;

use crate::tcp::Side;
use serde_json::{Map, Value};

/// The keys of an `app` object, in output order; `protocol` comes first.
pub type Fields = Map<String, Value>;

/// What a decoder says about one message (or one Engine.IO packet of a polling request).
#[derive(Clone, Debug, PartialEq)]
pub struct App {
    pub fields: Fields,
    /// One line for the Info column, e.g. `socket.io EVENT "msg" ["hello"]`.
    pub summary: String,
}

impl App {
    pub fn new(protocol: &str) -> App {
        let mut fields = Fields::new();
        fields.insert("protocol".into(), Value::from(protocol));
        App { fields, summary: String::new() }
    }

    /// The protocol's name for a `Protocol` column, as Wireshark names the top layer.
    pub fn column(&self) -> &'static str {
        match self.fields.get("protocol").and_then(Value::as_str) {
            Some("engine.io") if self.fields.contains_key("socket_io") => "Socket.IO",
            Some("engine.io") => "Engine.IO",
            Some("mqtt") => "MQTT",
            Some("stomp") => "STOMP",
            Some("sockjs") => "SockJS",
            Some("jsonrpc") => "JSON-RPC",
            Some("signalr") => "SignalR",
            Some("phoenix") => "Phoenix",
            Some("actioncable") => "Cable",
            Some("pusher") => "Pusher",
            Some(p) if p.starts_with("graphql") => "GraphQL",
            _ => "WebSocket",
        }
    }

    pub fn set(&mut self, key: &str, v: impl Into<Value>) -> &mut Self {
        self.fields.insert(key.into(), v.into());
        self
    }
}

/// One complete data message as a decoder sees it.
#[derive(Clone, Copy, Debug)]
pub struct AppMessage<'a> {
    pub from: Side,
    /// A text message (valid UTF-8).
    pub text: bool,
    pub payload: &'a [u8],
    /// Packet in which the message began (attachments refer to their packet by it).
    pub first_packet: u64,
}

/// A decoder's verdict on one message.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decoded {
    pub app: Option<App>,
    /// Why (part of) the payload did not decode: reported as `app-decode-error`.
    pub error: Option<String>,
}

impl Decoded {
    pub fn app(app: App) -> Decoded {
        Decoded { app: Some(app), error: None }
    }
    pub fn error(app: Option<App>, why: impl Into<String>) -> Decoded {
        Decoded { app, error: Some(why.into()) }
    }
}

/// An application protocol decoder for one connection.
pub trait AppDecoder {
    /// `app.protocol` of what it decodes.
    fn protocol(&self) -> &'static str;
    fn decode(&mut self, msg: &AppMessage<'_>) -> Decoded;
    /// The session the connection belongs to, when the protocol names one (Engine.IO `sid`).
    fn session_id(&self) -> Option<&str> {
        None
    }
    /// Messages from `from` were lost or cut (a TCP gap, a limit): what a decoder holds from
    /// that side (bytes of a packet split across messages, attachments announced) cannot be
    /// continued by the messages after the loss, and continuing it would decode them wrong.
    fn lose(&mut self, _from: Side) {}
}

/// What the handshake says about the application protocol.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hints<'a> {
    /// Request target, e.g. `/socket.io/?EIO=4&transport=websocket&sid=…`.
    pub path: Option<&'a str>,
    /// The subprotocol the server selected (or, without a response, the first offered).
    pub protocol: Option<&'a str>,
    /// Bytes one decoder may hold across messages.
    pub max_held: usize,
}

/// How a decoder is found and made.
pub struct Registration {
    pub name: &'static str,
    /// The handshake names this protocol.
    pub by_handshake: fn(&Hints<'_>) -> bool,
    /// Without a handshake hint: the message looks like the start of this protocol.
    pub by_content: fn(&AppMessage<'_>) -> bool,
    pub new: fn(&Hints<'_>) -> Box<dyn AppDecoder>,
}

/// Every decoder, in the order they are tried.
pub const DECODERS: &[Registration] = &[
    engineio::REGISTRATION,
    sockjs::REGISTRATION,
    phoenix::REGISTRATION,
    mqtt::REGISTRATION,
    stomp::REGISTRATION,
    graphql::REGISTRATION,
    jsonrpc::REGISTRATION,
    signalr::REGISTRATION,
    actioncable::REGISTRATION,
    pusher::REGISTRATION,
];

/// Messages looked at for a protocol by content before giving up.
const CONTENT_TRIES: u32 = 4;

/// The application layer of one WebSocket connection.
pub struct AppConn {
    decoder: Option<Box<dyn AppDecoder>>,
    /// Content sniffing is still allowed (no handshake said what the protocol is).
    sniffing: bool,
    tried: u32,
    max_held: usize,
    path: Option<String>,
}

impl AppConn {
    /// Chooses the decoder from the handshake, or leaves it to the first messages.
    pub fn new(hints: &Hints<'_>) -> AppConn {
        let found = DECODERS.iter().find(|r| (r.by_handshake)(hints));
        AppConn {
            sniffing: found.is_none(),
            decoder: found.map(|r| (r.new)(hints)),
            tried: 0,
            max_held: hints.max_held,
            path: hints.path.map(str::to_owned),
        }
    }

    /// The session id the decoder has seen (an Engine.IO `open` packet's `sid`).
    pub fn session_id(&self) -> Option<&str> {
        self.decoder.as_ref().and_then(|d| d.session_id())
    }

    /// `app.protocol` of the chosen decoder, once there is one.
    pub fn protocol(&self) -> Option<&'static str> {
        self.decoder.as_ref().map(|d| d.protocol())
    }

    /// A decoder is chosen, or may still be chosen by content.
    pub fn active(&self) -> bool {
        self.decoder.is_some() || (self.sniffing && self.tried < CONTENT_TRIES)
    }

    /// Messages from `from` were lost or cut ([`AppDecoder::lose`]).
    pub fn lose(&mut self, from: Side) {
        if let Some(d) = self.decoder.as_mut() {
            d.lose(from);
        }
    }

    /// Decodes one complete message; `None` when no protocol is known for the connection.
    pub fn decode(&mut self, msg: &AppMessage<'_>) -> Option<Decoded> {
        if self.decoder.is_none() && self.sniffing && self.tried < CONTENT_TRIES {
            self.tried += 1;
            let hints =
                Hints { path: self.path.as_deref(), protocol: None, max_held: self.max_held };
            if let Some(r) = DECODERS.iter().find(|r| (r.by_content)(msg)) {
                self.decoder = Some((r.new)(&hints));
            }
        }
        let decoder = self.decoder.as_mut()?;
        let protocol = decoder.protocol();
        let mut d = decoder.decode(msg);
        if let Some(why) = &d.error {
            // The reason travels in the app object, so that the record says what failed.
            let app = d.app.get_or_insert_with(|| App::new(protocol));
            app.set("error", why.as_str());
            let base = if app.summary.is_empty() { protocol } else { app.summary.as_str() };
            app.summary = format!("{base} (undecodable: {why})");
        }
        Some(d)
    }
}

/// Whether a text message is one JSON value (RFC 8259), checked without building it.
pub fn is_json(payload: &[u8]) -> bool {
    let Some(first) = payload.iter().find(|b| !b.is_ascii_whitespace()) else { return false };
    // Only what can start a JSON text; saves a parse of most plain text.
    if !matches!(first, b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') {
        return false;
    }
    json_text::is_json_text(payload)
}

/// Keeps the bytes after the first `done` for the next message of a decoder that joins units
/// split over messages; keeps nothing and says false when they are more than `max`.
pub fn hold_rest(held: &mut Vec<u8>, done: usize, max: usize) -> bool {
    held.drain(..done.min(held.len()));
    if held.len() > max {
        held.clear();
        return false;
    }
    true
}

/// Describes a message that completed one or more protocol units (frames, packets): the
/// first fills `app` and its summary, the others are listed under `more` (same keys, without
/// `protocol`).
pub fn set_units(
    app: &mut App,
    first: (Fields, String),
    rest: impl Iterator<Item = (Fields, String)>,
) {
    let (fields, summary) = first;
    app.fields.extend(fields);
    app.summary = summary;
    let more: Vec<Value> = rest.map(|(f, _)| Value::Object(f)).collect();
    if !more.is_empty() {
        app.summary.push_str(&format!(" (+{} more)", more.len()));
        app.set("more", more);
    }
}

/// The verdict on a message of one or more units (see [`set_units`]): `error` when one of
/// them did not decode.
pub fn units_decoded(mut app: App, units: Vec<(Fields, String)>, error: Option<String>) -> Decoded {
    let mut it = units.into_iter();
    if let Some(first) = it.next() {
        set_units(&mut app, first, it);
    }
    match error {
        Some(why) => Decoded::error(Some(app), why),
        None => Decoded::app(app),
    }
}

/// A binary message of a protocol whose binary encoding (`encoding`, shown as `shown`) is
/// named, not decoded.
pub fn binary_not_decoded(protocol: &str, encoding: &str, shown: &str) -> Decoded {
    let mut app = App::new(protocol);
    app.set("encoding", encoding);
    app.summary = format!("{protocol} ({shown}, not decoded)");
    Decoded::app(app)
}

/// Decodes text messages in order with one decoder (the decoders' unit tests).
#[cfg(test)]
pub fn decode_texts(d: &mut dyn AppDecoder, msgs: &[(Side, &str)]) -> Vec<Decoded> {
    msgs.iter()
        .map(|(from, p)| {
            d.decode(&AppMessage {
                from: *from,
                text: true,
                payload: p.as_bytes(),
                first_packet: 1,
            })
        })
        .collect()
}

/// Sets a payload in an `app` object the way records carry payloads: UTF-8 text under
/// `key`, other bytes base64-encoded under `key_bytes`.
pub fn set_payload(fields: &mut Fields, key: &str, b: &[u8]) {
    use base64::Engine;
    match std::str::from_utf8(b) {
        Ok(s) => fields.insert(key.into(), Value::from(s)),
        Err(_) => fields.insert(
            format!("{key}_bytes"),
            Value::from(base64::engine::general_purpose::STANDARD.encode(b)),
        ),
    };
}

/// A payload for a summary: quoted text or hex, cut to `max` characters.
pub fn preview(b: &[u8], max: usize) -> String {
    let (s, quote) = match std::str::from_utf8(b) {
        Ok(s) => (s.to_owned(), true),
        Err(_) => (b.iter().map(|x| format!("{x:02x}")).collect(), false),
    };
    let cut = match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    };
    if quote {
        format!("\"{cut}\"")
    } else {
        cut
    }
}

/// A JSON value for a summary, after a space: its text cut to `max` bytes (ended by `…`).
pub fn push_json(summary: &mut String, v: &Value, max: usize) {
    let json = v.to_string();
    let shown = cut(&json, max);
    summary.push(' ');
    summary.push_str(shown);
    if shown.len() < json.len() {
        summary.push('…');
    }
}

/// At most `max` bytes of `s`, on a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// JSON in compact form for summaries, cut to `max` characters.
pub fn compact(v: &Value, max: usize) -> String {
    let s = v.to_string();
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Messages shaped like each protocol's, then mutated, so decoders get past their first
    /// checks.
    fn seeds() -> Vec<&'static [u8]> {
        vec![
            br#"451-["up",{"_placeholder":true,"num":0}]"#,
            br#"42/admin,12["ev",{"a":[1,2]}]"#,
            b"0{\"sid\":\"x\"}",
            b"\x10\x12\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x05abcde",
            b"\x32\x0a\x00\x03t/1\x00\x07\x00hi",
            b"\x82\x06\x00\x01\x00\x01a\x01",
            b"SEND\ndestination:/q\nx:a\\cb\n\nbody\x00",
            br#"{"id":"1","type":"subscribe","payload":{"query":"subscription S { x }"}}"#,
        ]
    }

    proptest! {
        /// No payload makes a decoder panic, whatever the protocol and message sequence.
        #[test]
        fn decoders_never_panic(
            msgs in prop::collection::vec(
                (any::<bool>(), any::<bool>(), 0usize..8, prop::collection::vec(any::<u8>(), 0..64), 0usize..80),
                1..12,
            ),
            which in 0usize..4,
            v3: bool,
        ) {
            let seeds = seeds();
            let path = if v3 { "/socket.io/?EIO=3&transport=websocket" } else { "/socket.io/?EIO=4" };
            let hints = Hints { path: Some(path), protocol: None, max_held: 256 };
            let mut dec = (DECODERS[which].new)(&hints);
            for (client, text, seed, noise, at) in msgs {
                let mut p = seeds[seed].to_vec();
                let at = at.min(p.len());
                p.splice(at..at, noise);
                let from = if client { Side::Client } else { Side::Server };
                let _ = dec.decode(&AppMessage { from, text, payload: &p, first_packet: 1 });
                let mut eio = engineio::EngineIo::new(Some(path));
                let _ = eio.polling_body(from, &p, 1);
            }
        }
    }

    #[test]
    fn json_marking() {
        assert!(is_json(br#" {"a":[1,2,{"b":null}]} "#));
        assert!(is_json(b"42"));
        assert!(is_json(br#""s""#));
        assert!(!is_json(b"hello"));
        assert!(!is_json(br#"42["msg","hello"]"#));
        assert!(!is_json(b"{broken"));
        assert!(!is_json(b""));
    }

    #[test]
    fn content_detection_chooses_a_decoder() {
        let mut conn = AppConn::new(&Hints { max_held: 1 << 20, ..Hints::default() });
        let m = AppMessage {
            from: Side::Server,
            text: true,
            payload: br#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#,
            first_packet: 1,
        };
        let d = conn.decode(&m).expect("engine.io by content");
        let app = d.app.unwrap();
        assert_eq!(app.fields["protocol"], "engine.io");
        assert_eq!(app.fields["engine_io"], "open");
        let mut plain = AppConn::new(&Hints::default());
        let m = AppMessage { text: true, payload: b"hello", ..m };
        assert!(plain.decode(&m).is_none());
    }
}
