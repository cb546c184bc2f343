//! ASP.NET Core SignalR's hub protocol over WebSocket, JSON encoding: the client opens with
//! `{"protocol":"json","version":1}`, the server answers `{}` (or an `error`), then hub
//! messages by `type` (1 invocation, 2 stream item, 3 completion, 4 stream invocation,
//! 5 cancel invocation, 6 ping, 7 close, 8 ack, 9 sequence). Every record ends with the
//! record separator 0x1E, and a WebSocket message may carry several. The MessagePack
//! encoding (binary messages) is named, not decoded.

use super::{preview, App, AppDecoder, AppMessage, Decoded, Fields, Registration};
use crate::tcp::Side;
use serde_json::{Map, Value};

pub const REGISTRATION: Registration = Registration {
    name: "signalr",
    by_handshake: |_| false,
    by_content: |m: &AppMessage<'_>| {
        m.text
            && m.payload.last() == Some(&RS)
            && records(m.payload).is_some_and(|rs| {
                rs.iter().all(|r| {
                    let handshake =
                        m.from == Side::Client && r.get("protocol").is_some_and(Value::is_string);
                    handshake
                        || r.get("type")
                            .and_then(Value::as_u64)
                            .is_some_and(|t| (1..=9).contains(&t))
                })
            })
    },
    new: |_| Box::new(SignalR),
};

/// The record separator that ends every JSON hub message.
const RS: u8 = 0x1e;

const TYPES: [&str; 9] = [
    "invocation",
    "stream-item",
    "completion",
    "stream-invocation",
    "cancel-invocation",
    "ping",
    "close",
    "ack",
    "sequence",
];

pub struct SignalR;

/// The JSON objects of a message, each ended by RS; `None` when one is not an object or the
/// last has no separator.
fn records(payload: &[u8]) -> Option<Vec<Map<String, Value>>> {
    let body = payload.strip_suffix(&[RS])?;
    body.split(|&b| b == RS)
        .map(|r| match serde_json::from_slice::<Value>(r).ok()? {
            Value::Object(o) => Some(o),
            _ => None,
        })
        .collect()
}

fn unit(from: Side, r: &Map<String, Value>) -> Result<(Fields, String), String> {
    // The keys each kind of record carries: (wire name, name in the app object).
    const HANDSHAKE: &[(&str, &str)] = &[("protocol", "hub_protocol"), ("version", "version")];
    const RESPONSE: &[(&str, &str)] = &[("error", "error_message")];
    const HUB: &[(&str, &str)] = &[
        ("target", "target"),
        ("invocationId", "invocation_id"),
        ("arguments", "arguments"),
        ("item", "item"),
        ("result", "result"),
        ("error", "error_message"),
        ("allowReconnect", "allow_reconnect"),
    ];
    let (kind, keys) = match r.get("type") {
        None if from == Side::Client && r.contains_key("protocol") => ("handshake", HANDSHAKE),
        None if from == Side::Server => ("handshake-response", RESPONSE),
        None => return Err("a hub message without a type".into()),
        Some(t) => match t.as_u64().and_then(|t| TYPES.get((t as usize).checked_sub(1)?)) {
            Some(name) => (*name, HUB),
            None => return Err(format!("an unknown hub message type {t}")),
        },
    };
    let mut f = Fields::new();
    f.insert("signalr".into(), Value::from(kind));
    for &(key, name) in keys {
        if let Some(v) = r.get(key) {
            f.insert(name.into(), v.clone());
        }
    }
    let mut summary = format!("signalr {kind}");
    for key in ["invocation_id", "target"] {
        if let Some(v) = f.get(key).and_then(Value::as_str) {
            summary.push(' ');
            summary.push_str(v);
        }
    }
    for key in ["arguments", "item", "result"] {
        if let Some(v) = f.get(key) {
            super::push_json(&mut summary, v, 80);
        }
    }
    if let Some(e) = f.get("error_message").and_then(Value::as_str) {
        summary.push_str(&format!(" error {}", preview(e.as_bytes(), 60)));
    }
    Ok((f, summary))
}

impl AppDecoder for SignalR {
    fn protocol(&self) -> &'static str {
        "signalr"
    }

    fn decode(&mut self, m: &AppMessage<'_>) -> Decoded {
        if !m.text {
            return super::binary_not_decoded("signalr", "messagepack", "MessagePack");
        }
        let app = App::new("signalr");
        let Some(rs) = records(m.payload) else {
            return Decoded::error(
                Some(app),
                "not SignalR JSON hub messages (JSON objects each ended by 0x1E)",
            );
        };
        let mut units = Vec::new();
        let mut error = None;
        for r in &rs {
            match unit(m.from, r) {
                Ok(u) => units.push(u),
                Err(why) => error = error.or(Some(why)),
            }
        }
        super::units_decoded(app, units, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(msgs: &[(Side, &str)]) -> Vec<Decoded> {
        crate::app::decode_texts(&mut SignalR, msgs)
    }

    #[test]
    fn handshake_invocations_completions_and_several_records_in_a_message() {
        let out = run(&[
            (Side::Client, "{\"protocol\":\"json\",\"version\":1}\x1e"),
            (Side::Server, "{}\x1e"),
            (
                Side::Client,
                "{\"type\":1,\"invocationId\":\"0\",\"target\":\"Add\",\"arguments\":[2,3]}\x1e",
            ),
            (Side::Server, "{\"type\":3,\"invocationId\":\"0\",\"result\":5}\x1e"),
            (
                Side::Server,
                "{\"type\":1,\"target\":\"Rx\",\"arguments\":[\"a\"]}\x1e{\"type\":6}\x1e",
            ),
            (Side::Server, "{\"type\":7,\"error\":\"bye\",\"allowReconnect\":true}\x1e"),
        ]);
        assert!(out.iter().all(|d| d.error.is_none()), "{out:#?}");
        let f = |i: usize| out[i].app.as_ref().unwrap().fields.clone();
        assert_eq!(
            (f(0)["signalr"].as_str(), f(0)["hub_protocol"].as_str()),
            (Some("handshake"), Some("json"))
        );
        assert_eq!(f(1)["signalr"], "handshake-response");
        assert_eq!(
            (f(2)["target"].as_str(), f(2)["invocation_id"].as_str()),
            (Some("Add"), Some("0"))
        );
        assert_eq!(f(3)["result"], 5);
        assert_eq!(
            (f(4)["target"].as_str(), f(4)["more"][0]["signalr"].as_str()),
            (Some("Rx"), Some("ping"))
        );
        assert_eq!(
            (f(5)["signalr"].as_str(), f(5)["allow_reconnect"].as_bool()),
            (Some("close"), Some(true))
        );
        assert_eq!(out[3].app.as_ref().unwrap().summary, "signalr completion 0 5");
    }

    #[test]
    fn found_by_content_and_other_messages_are_errors() {
        let m = |from, p: &'static str| AppMessage {
            from,
            text: true,
            payload: p.as_bytes(),
            first_packet: 1,
        };
        assert!((REGISTRATION.by_content)(&m(
            Side::Client,
            "{\"protocol\":\"json\",\"version\":1}\x1e"
        )));
        assert!((REGISTRATION.by_content)(&m(Side::Server, "{\"type\":6}\x1e")));
        assert!(!(REGISTRATION.by_content)(&m(Side::Server, "{\"type\":6}")));
        assert!(!(REGISTRATION.by_content)(&m(Side::Server, "{\"type\":\"x\"}\x1e")));
        for p in ["{\"type\":6}", "[1]\x1e", "{\"type\":42}\x1e", "{\"a\":1}\x1e", "\x1e"] {
            assert!(run(&[(Side::Client, p)])[0].error.is_some(), "{p:?}");
        }
        // The MessagePack encoding is named, not taken for broken JSON.
        let binary =
            AppMessage { from: Side::Server, text: false, payload: &[0x95, 1], first_packet: 1 };
        let d = SignalR.decode(&binary);
        assert!(d.error.is_none());
        assert_eq!(d.app.unwrap().fields["encoding"], "messagepack");
    }
}
