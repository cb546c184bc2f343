//! The Pusher Channels protocol (Pusher, Laravel Reverb, Soketi; `/app/<key>?protocol=7`):
//! JSON objects `{"event", "channel"?, "data"}` whose `data` is usually a JSON string.
//! Protocol events are `pusher:…` (`connection_established`, `subscribe`, `unsubscribe`,
//! `ping`, `pong`, `error`) and `pusher_internal:…` (`subscription_succeeded`, member
//! events); the rest are the application's events on a channel, `client-…` ones sent by
//! clients.

use super::{App, AppDecoder, AppMessage, Decoded, Hints, Registration};
use crate::tcp::Side;
use serde_json::{Map, Value};

pub const REGISTRATION: Registration = Registration {
    name: "pusher",
    by_handshake: |h: &Hints<'_>| h.path.is_some_and(is_app_path),
    // The server's first message.
    by_content: |m: &AppMessage<'_>| {
        m.from == Side::Server
            && m.text
            && memchr::memmem::find(m.payload, b"pusher:connection_established").is_some()
            && serde_json::from_slice::<Map<String, Value>>(m.payload).is_ok_and(|o| {
                o.get("event").and_then(Value::as_str) == Some("pusher:connection_established")
            })
    },
    new: |_| Box::new(Pusher),
};

/// `/app/<key>?…protocol=…` (a path prefix may come before it).
fn is_app_path(path: &str) -> bool {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut parts = path.rsplit('/');
    matches!((parts.next(), parts.next()), (Some(key), Some("app")) if !key.is_empty())
        && query.split('&').any(|kv| kv.starts_with("protocol="))
}

pub struct Pusher;

impl AppDecoder for Pusher {
    fn protocol(&self) -> &'static str {
        "pusher"
    }

    fn decode(&mut self, m: &AppMessage<'_>) -> Decoded {
        let mut app = App::new("pusher");
        let parsed = if m.text {
            serde_json::from_slice::<Map<String, Value>>(m.payload).ok()
        } else {
            None
        };
        let Some(o) = parsed else {
            return Decoded::error(Some(app), "not a Pusher message (a JSON object)");
        };
        let Some(event) = o.get("event").and_then(Value::as_str) else {
            return Decoded::error(Some(app), "a Pusher message without an event");
        };
        app.set("pusher", event);
        // `data` is a JSON string on the wire, except in what clients send (subscribe).
        let data = match o.get("data") {
            Some(Value::String(s)) => {
                serde_json::from_str::<Value>(s).unwrap_or(Value::from(s.as_str()))
            }
            Some(v) => v.clone(),
            None => Value::Null,
        };
        let channel = o
            .get("channel")
            .and_then(Value::as_str)
            .or_else(|| data.get("channel").and_then(Value::as_str));
        let mut summary = format!("pusher {event}");
        if let Some(ch) = channel {
            summary.push(' ');
            summary.push_str(ch);
            app.set("channel", ch);
        }
        if event == "pusher:error" {
            for (from, to) in [("code", "error_code"), ("message", "error_message")] {
                if let Some(v) = data.get(from) {
                    app.set(to, v.clone());
                }
            }
        }
        if !data.is_null() {
            if !event.starts_with("pusher") {
                super::push_json(&mut summary, &data, 80);
            }
            app.set("data", data);
        }
        app.summary = summary;
        Decoded::app(app)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(from: Side, p: &str) -> Decoded {
        Pusher.decode(&AppMessage { from, text: true, payload: p.as_bytes(), first_packet: 1 })
    }

    #[test]
    fn protocol_and_channel_events() {
        let f = |d: Decoded| d.app.unwrap().fields;
        let e = f(decode(
            Side::Server,
            r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\"}"}"#,
        ));
        assert_eq!(
            (e["pusher"].as_str(), e["data"]["socket_id"].as_str()),
            (Some("pusher:connection_established"), Some("1.2"))
        );
        let s = f(decode(
            Side::Client,
            r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"orders"}}"#,
        ));
        assert_eq!(s["channel"], "orders");
        let d = decode(
            Side::Server,
            r#"{"event":"order.shipped","channel":"orders","data":"{\"id\":42}"}"#,
        );
        assert_eq!(d.app.as_ref().unwrap().summary, r#"pusher order.shipped orders {"id":42}"#);
        let err = f(decode(
            Side::Server,
            r#"{"event":"pusher:error","data":{"code":4001,"message":"App key not in this cluster"}}"#,
        ));
        assert_eq!(err["error_code"], 4001);
        for bad in ["[]", "{}", r#"{"event":5}"#, "x"] {
            assert!(decode(Side::Client, bad).error.is_some(), "{bad}");
        }
    }

    #[test]
    fn app_paths() {
        assert!(is_app_path("/app/app-key?protocol=7&client=js&version=8.4.0&flash=false"));
        assert!(is_app_path("/ws/app/k1?protocol=7"));
        assert!(!is_app_path("/app/key"));
        assert!(!is_app_path("/app/?protocol=7"));
    }
}
