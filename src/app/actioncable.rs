//! Rails Action Cable over WebSocket (`Sec-WebSocket-Protocol: actioncable-v1-json`): the
//! server's `{"type": …}` messages (`welcome`, `ping`, `confirm_subscription`,
//! `reject_subscription`, `disconnect`), the client's `{"command": …}` (`subscribe`,
//! `unsubscribe`, `message` with its `data`, a JSON string holding the `action`), and
//! broadcasts `{"identifier", "message"}`. The identifier is itself a JSON string naming the
//! `channel`. Binary messages (the MessagePack variant) are named, not decoded.

use super::{App, AppDecoder, AppMessage, Decoded, Hints, Registration};
use crate::tcp::Side;
use serde_json::{Map, Value};

pub const REGISTRATION: Registration = Registration {
    name: "actioncable",
    by_handshake: |h: &Hints<'_>| {
        h.protocol.is_some_and(|p| p.to_ascii_lowercase().starts_with("actioncable-"))
    },
    // The server's first message.
    by_content: |m: &AppMessage<'_>| {
        m.from == Side::Server
            && m.text
            && memchr::memmem::find(m.payload, b"\"welcome\"").is_some()
            && serde_json::from_slice::<Map<String, Value>>(m.payload)
                .is_ok_and(|o| o.get("type").and_then(Value::as_str) == Some("welcome"))
    },
    new: |_| Box::new(ActionCable),
};

pub struct ActionCable;

/// The `channel` an identifier (a JSON string of an object) names.
fn channel_of(identifier: &str) -> Option<String> {
    let v: Value = serde_json::from_str(identifier).ok()?;
    v.get("channel")?.as_str().map(str::to_owned)
}

impl AppDecoder for ActionCable {
    fn protocol(&self) -> &'static str {
        "actioncable"
    }

    fn decode(&mut self, m: &AppMessage<'_>) -> Decoded {
        if !m.text {
            return super::binary_not_decoded("actioncable", "messagepack", "MessagePack");
        }
        let mut app = App::new("actioncable");
        let Ok(o) = serde_json::from_slice::<Map<String, Value>>(m.payload) else {
            return Decoded::error(Some(app), "not an Action Cable message (a JSON object)");
        };
        let identifier = o.get("identifier").and_then(Value::as_str);
        let kind = match (o.get("type"), o.get("command")) {
            (Some(Value::String(t)), None) => t.clone(),
            (None, Some(Value::String(c))) => c.clone(),
            (None, None) if identifier.is_some() && o.contains_key("message") => "broadcast".into(),
            _ => {
                return Decoded::error(
                    Some(app),
                    "an Action Cable message without a type, a command or a broadcast",
                )
            }
        };
        app.set("actioncable", kind.as_str());
        let mut summary = format!("actioncable {kind}");
        if let Some(id) = identifier {
            app.set("identifier", id);
            match channel_of(id) {
                Some(ch) => {
                    summary.push_str(&format!(" {ch}"));
                    app.set("channel", ch);
                }
                None => {
                    return Decoded::error(Some(app), "an identifier that is not a JSON object")
                }
            }
        }
        if let Some(data) = o.get("data").and_then(Value::as_str) {
            // `perform(action, data)` sends the action inside the data string.
            let parsed: Option<Value> = serde_json::from_str(data).ok();
            if let Some(action) = parsed.as_ref().and_then(|d| d.get("action")?.as_str()) {
                summary.push_str(&format!(" {action}"));
                app.set("action", action);
            }
            app.set("data", parsed.unwrap_or_else(|| Value::from(data)));
        }
        for key in ["message", "reason", "reconnect"] {
            if let Some(v) = o.get(key) {
                app.set(key, v.clone());
            }
        }
        if kind == "broadcast" {
            if let Some(v) = o.get("message") {
                super::push_json(&mut summary, v, 80);
            }
        }
        app.summary = summary;
        Decoded::app(app)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(from: Side, p: &str) -> Decoded {
        ActionCable.decode(&AppMessage { from, text: true, payload: p.as_bytes(), first_packet: 1 })
    }

    #[test]
    fn types_commands_and_broadcasts() {
        let id = r#""{\"channel\":\"ChatChannel\",\"room\":\"lobby\"}""#;
        let f = |d: Decoded| d.app.unwrap().fields;
        assert_eq!(f(decode(Side::Server, r#"{"type":"welcome"}"#))["actioncable"], "welcome");
        let s = f(decode(Side::Client, &format!(r#"{{"command":"subscribe","identifier":{id}}}"#)));
        assert_eq!(
            (s["actioncable"].as_str(), s["channel"].as_str()),
            (Some("subscribe"), Some("ChatChannel"))
        );
        let data = r#""{\"body\":\"hi\",\"action\":\"speak\"}""#;
        let p = decode(
            Side::Client,
            &format!(r#"{{"command":"message","identifier":{id},"data":{data}}}"#),
        );
        assert_eq!(p.app.as_ref().unwrap().summary, "actioncable message ChatChannel speak");
        assert_eq!(f(p)["data"]["body"], "hi");
        let b =
            f(decode(Side::Server, &format!(r#"{{"identifier":{id},"message":{{"body":"hi"}}}}"#)));
        assert_eq!(b["actioncable"], "broadcast");
        let d = f(decode(
            Side::Server,
            r#"{"type":"disconnect","reason":"unauthorized","reconnect":false}"#,
        ));
        assert_eq!(
            (d["reason"].as_str(), d["reconnect"].as_bool()),
            (Some("unauthorized"), Some(false))
        );
        for bad in ["[]", "{}", r#"{"command":"subscribe","identifier":"nope"}"#, "x"] {
            assert!(decode(Side::Client, bad).error.is_some(), "{bad}");
        }
    }
}
