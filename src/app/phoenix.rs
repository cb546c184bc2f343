//! Phoenix Channels (Elixir) over WebSocket (`/socket/websocket?vsn=2.0.0`): with the 2.0.0
//! serializer a message is the array `[join_ref, ref, topic, event, payload]`, with 1.0.0 the
//! object `{"topic", "event", "payload", "ref", "join_ref"}`. Events `phx_join`,
//! `phx_leave`, `phx_reply` (payload `{"status", "response"}`), `phx_error`, `phx_close`,
//! the `heartbeat` on topic `phoenix`, and the application's own. Binary messages (2.0.0's
//! binary pushes, replies and broadcasts) are named, not decoded.

use super::{App, AppDecoder, AppMessage, Decoded, Hints, Registration};
use serde_json::Value;

pub const REGISTRATION: Registration = Registration {
    name: "phoenix",
    by_handshake: |h: &Hints<'_>| h.path.is_some_and(is_socket_path),
    by_content: |m: &AppMessage<'_>| {
        m.text
            && (memchr::memmem::find(m.payload, b"\"phx_").is_some()
                || memchr::memmem::find(m.payload, b"\"heartbeat\"").is_some())
            && serde_json::from_slice::<Value>(m.payload).ok().as_ref().and_then(parts).is_some_and(
                |p| p.event.starts_with("phx_") || (p.topic == "phoenix" && p.event == "heartbeat"),
            )
    },
    new: |_| Box::new(Phoenix),
};

/// `…/websocket?…vsn=…`: the socket path Phoenix serves, with its serializer version.
fn is_socket_path(path: &str) -> bool {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    path.ends_with("/websocket") && query.split('&').any(|kv| kv.starts_with("vsn="))
}

struct Parts<'v> {
    join_ref: &'v Value,
    msg_ref: &'v Value,
    topic: &'v str,
    event: &'v str,
    payload: &'v Value,
}

fn parts(v: &Value) -> Option<Parts<'_>> {
    static NULL: Value = Value::Null;
    match v {
        Value::Array(a) if a.len() == 5 => Some(Parts {
            join_ref: &a[0],
            msg_ref: &a[1],
            topic: a[2].as_str()?,
            event: a[3].as_str()?,
            payload: &a[4],
        }),
        Value::Object(o) => Some(Parts {
            join_ref: o.get("join_ref").unwrap_or(&NULL),
            msg_ref: o.get("ref").unwrap_or(&NULL),
            topic: o.get("topic")?.as_str()?,
            event: o.get("event")?.as_str()?,
            payload: o.get("payload").unwrap_or(&NULL),
        }),
        _ => None,
    }
}

pub struct Phoenix;

impl AppDecoder for Phoenix {
    fn protocol(&self) -> &'static str {
        "phoenix"
    }

    fn decode(&mut self, m: &AppMessage<'_>) -> Decoded {
        if !m.text {
            return super::binary_not_decoded("phoenix", "binary", "binary message");
        }
        let mut app = App::new("phoenix");
        let value = serde_json::from_slice::<Value>(m.payload).ok();
        let Some(p) = value.as_ref().and_then(parts) else {
            return Decoded::error(
                Some(app),
                "not a Phoenix message ([join_ref, ref, topic, event, payload])",
            );
        };
        app.set("phoenix", p.event).set("topic", p.topic);
        let mut summary = format!("phoenix {} {}", p.topic, p.event);
        for (key, v) in [("ref", p.msg_ref), ("join_ref", p.join_ref)] {
            if !v.is_null() {
                app.set(key, v.clone());
            }
        }
        if let Some(r) = p.msg_ref.as_str() {
            summary.push_str(&format!(" ref={r}"));
        }
        if p.event == "phx_reply" {
            if let Some(status) = p.payload.get("status").and_then(Value::as_str) {
                app.set("status", status);
                summary.push_str(&format!(" {status}"));
            }
        } else if p.payload.as_object().is_some_and(|o| !o.is_empty()) {
            super::push_json(&mut summary, p.payload, 80);
        }
        app.set("payload", p.payload.clone());
        app.summary = summary;
        Decoded::app(app)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::Side;

    fn decode(p: &str) -> Decoded {
        Phoenix.decode(&AppMessage {
            from: Side::Client,
            text: true,
            payload: p.as_bytes(),
            first_packet: 1,
        })
    }

    #[test]
    fn both_serializers_and_replies() {
        let d = decode(r#"["1","1","room:lobby","phx_join",{}]"#);
        let f = d.app.unwrap().fields;
        assert_eq!(
            (f["phoenix"].as_str(), f["topic"].as_str(), f["ref"].as_str()),
            (Some("phx_join"), Some("room:lobby"), Some("1"))
        );
        let d = decode(r#"["1","2","room:lobby","phx_reply",{"status":"ok","response":{}}]"#);
        assert_eq!(d.app.as_ref().unwrap().fields["status"], "ok");
        assert_eq!(d.app.unwrap().summary, "phoenix room:lobby phx_reply ref=2 ok");
        let d = decode(r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"5"}"#);
        assert_eq!(d.app.unwrap().fields["phoenix"], "heartbeat");
        for bad in [r#"[1,2,3]"#, r#"{"topic":1,"event":"x"}"#, "nope", r#"[null,null,"t",5,{}]"#] {
            assert!(decode(bad).error.is_some(), "{bad}");
        }
    }

    #[test]
    fn found_by_path_or_by_phoenix_events() {
        assert!(is_socket_path("/socket/websocket?vsn=2.0.0&token=x"));
        assert!(!is_socket_path("/socket/websocket"));
        assert!(!is_socket_path("/stomp/1/abc/websocket"));
        let m = |p: &'static str| AppMessage {
            from: Side::Client,
            text: true,
            payload: p.as_bytes(),
            first_packet: 1,
        };
        assert!((REGISTRATION.by_content)(&m(r#"["1","1","room:1","phx_join",{}]"#)));
        assert!(!(REGISTRATION.by_content)(&m(r#"["a","b","c","d","e"]"#)));
    }
}
