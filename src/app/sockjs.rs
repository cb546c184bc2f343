//! SockJS over its WebSocket transport (`…/<server>/<session>/websocket`), as Spring and
//! sockjs-node serve it: the server opens with `o`, sends heart-beats `h`, messages as a
//! JSON array of strings `a[…]` (or one JSON string `m"…"`) and closes with `c[code,"reason"]`;
//! the client sends a JSON array of strings (or one string). The strings are the
//! application's own messages, STOMP for Spring, and are decoded by the protocol they carry
//! (found by content, as for a plain WebSocket), its fields set beside SockJS's.

use super::{
    preview, set_units, App, AppDecoder, AppMessage, Decoded, Fields, Hints, Registration, DECODERS,
};
use crate::tcp::Side;
use serde_json::Value;

pub const REGISTRATION: Registration = Registration {
    name: "sockjs",
    by_handshake: |h: &Hints<'_>| h.path.is_some_and(is_transport_path),
    // A SockJS server's first message is the open frame.
    by_content: |m: &AppMessage<'_>| m.from == Side::Server && m.text && m.payload == b"o",
    new: |h| Box::new(SockJs::new(h)),
};

/// Messages of the inner protocol looked at by content before giving up.
const INNER_TRIES: u32 = 4;

/// `…/<server>/<session>/websocket`: the server id is a number (three digits in the
/// specification), the session id has no dots; a query string may follow.
fn is_transport_path(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let mut parts = path.rsplit('/');
    let (Some("websocket"), Some(session), Some(server)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !session.is_empty()
        && !session.contains('.')
        && (1..=3).contains(&server.len())
        && server.bytes().all(|b| b.is_ascii_digit())
}

pub struct SockJs {
    inner: Option<Box<dyn AppDecoder>>,
    tried: u32,
    hints_max_held: usize,
}

impl SockJs {
    fn new(h: &Hints<'_>) -> SockJs {
        SockJs { inner: None, tried: 0, hints_max_held: h.max_held }
    }

    /// Decodes the application messages a SockJS frame carried.
    fn inner(
        &mut self,
        from: Side,
        first_packet: u64,
        texts: &[String],
    ) -> (Vec<App>, Option<String>) {
        let mut apps = Vec::new();
        let mut error = None;
        for t in texts {
            let msg = AppMessage { from, text: true, payload: t.as_bytes(), first_packet };
            if self.inner.is_none() && self.tried < INNER_TRIES {
                self.tried += 1;
                let hints = Hints { path: None, protocol: None, max_held: self.hints_max_held };
                self.inner = DECODERS
                    .iter()
                    .filter(|r| r.name != REGISTRATION.name)
                    .find(|r| (r.by_content)(&msg))
                    .map(|r| (r.new)(&hints));
            }
            if let Some(d) = self.inner.as_mut() {
                let decoded = d.decode(&msg);
                error = error.or(decoded.error);
                apps.extend(decoded.app);
            }
        }
        (apps, error)
    }
}

/// A JSON array of strings, or one JSON string.
fn strings(json: &[u8]) -> Option<Vec<String>> {
    match serde_json::from_slice::<Value>(json).ok()? {
        Value::Array(items) => {
            items.into_iter().map(|v| v.as_str().map(str::to_owned)).collect::<Option<_>>()
        }
        Value::String(s) => Some(vec![s]),
        _ => None,
    }
}

impl AppDecoder for SockJs {
    fn lose(&mut self, from: Side) {
        if let Some(inner) = self.inner.as_mut() {
            inner.lose(from);
        }
    }

    fn protocol(&self) -> &'static str {
        "sockjs"
    }

    fn decode(&mut self, m: &AppMessage<'_>) -> Decoded {
        let mut app = App::new("sockjs");
        if !m.text {
            return Decoded::error(Some(app), "a binary message (SockJS frames are text)");
        }
        let (kind, rest) = match (m.from, m.payload.split_first()) {
            (Side::Server, Some((b'o', []))) => ("open", None),
            (Side::Server, Some((b'h', []))) => ("heartbeat", None),
            (Side::Server, Some((b'a', rest))) => ("array", Some(rest)),
            (Side::Server, Some((b'm', rest))) => ("message", Some(rest)),
            (Side::Server, Some((b'c', rest))) => ("close", Some(rest)),
            (Side::Client, Some((b'[', _))) => ("array", Some(m.payload)),
            (Side::Client, Some((b'"', _))) => ("message", Some(m.payload)),
            _ => {
                return Decoded::error(
                    Some(app),
                    format!("not a SockJS frame: {}", preview(m.payload, 40)),
                )
            }
        };
        app.set("sockjs", kind);
        app.summary = format!("sockjs {kind}");
        let Some(json) = rest else { return Decoded::app(app) };
        if kind == "close" {
            let close: Option<(u64, String)> = serde_json::from_slice(json).ok();
            let Some((code, reason)) = close else {
                return Decoded::error(
                    Some(app),
                    "a SockJS close frame that is not [code, reason]",
                );
            };
            app.summary = format!("sockjs close {code} {}", preview(reason.as_bytes(), 60));
            app.set("code", code).set("reason", reason);
            return Decoded::app(app);
        }
        let Some(texts) = strings(json) else {
            return Decoded::error(Some(app), "a SockJS frame whose messages are not JSON strings");
        };
        app.set("messages", texts.len());
        let (inner, error) = self.inner(m.from, m.first_packet, &texts);
        if inner.len() == texts.len() && !inner.is_empty() {
            // The carried protocol's fields beside SockJS's, as a message of its own has them.
            let mut units = inner.into_iter().map(|a| {
                let mut fields: Fields = a.fields;
                if let Some(p) = fields.remove("protocol") {
                    fields.insert("inner_protocol".into(), p);
                }
                (fields, format!("sockjs {kind} {}", a.summary))
            });
            if let Some(first) = units.next() {
                set_units(&mut app, first, units);
            }
        } else {
            let shown: Vec<String> = texts.iter().map(|t| preview(t.as_bytes(), 60)).collect();
            app.summary = format!("sockjs {kind} [{}]", shown.join(", "));
        }
        match error {
            Some(why) => Decoded::error(Some(app), why),
            None => Decoded::app(app),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(from: Side, p: &[u8]) -> AppMessage<'_> {
        AppMessage { from, text: true, payload: p, first_packet: 1 }
    }

    fn decode_all(frames: &[(Side, &[u8])]) -> Vec<Decoded> {
        let mut d = SockJs::new(&Hints { path: None, protocol: None, max_held: 1 << 16 });
        frames.iter().map(|(from, p)| d.decode(&msg(*from, p))).collect()
    }

    #[test]
    fn transport_paths() {
        assert!(is_transport_path("/stomp/120/3pruqf0j/websocket"));
        assert!(is_transport_path("/ws/7/abc/websocket?x=1"));
        assert!(!is_transport_path("/stomp/websocket"), "the raw endpoint has no SockJS framing");
        assert!(!is_transport_path("/a/1234/abc/websocket"));
        assert!(!is_transport_path("/a/12/ab.c/websocket"));
        assert!(!is_transport_path("/socket.io/?EIO=4&transport=websocket"));
    }

    #[test]
    fn frames_and_the_stomp_they_carry() {
        let connect = br#"["CONNECT\naccept-version:1.2\n\n\u0000"]"#;
        let connected = br#"a["CONNECTED\nversion:1.2\n\n\u0000"]"#;
        let two =
            br#"a["MESSAGE\ndestination:/t\n\nhi\u0000","MESSAGE\ndestination:/t\n\nho\u0000"]"#;
        let out = decode_all(&[
            (Side::Server, b"o"),
            (Side::Client, connect),
            (Side::Server, connected),
            (Side::Server, two),
            (Side::Server, b"h"),
            (Side::Server, br#"c[3000,"Go away!"]"#),
        ]);
        let f = |i: usize| out[i].app.as_ref().unwrap().fields.clone();
        assert!(out.iter().all(|d| d.error.is_none()), "{out:#?}");
        assert_eq!(f(0)["sockjs"], "open");
        assert_eq!(
            (f(1)["sockjs"].as_str(), f(1)["stomp"].as_str()),
            (Some("array"), Some("CONNECT"))
        );
        assert_eq!(f(1)["inner_protocol"], "stomp");
        assert_eq!(f(2)["stomp"], "CONNECTED");
        assert_eq!(
            (f(3)["body"].as_str(), f(3)["more"][0]["body"].as_str()),
            (Some("hi"), Some("ho"))
        );
        assert_eq!(f(4)["sockjs"], "heartbeat");
        assert_eq!(
            (f(5)["code"].as_u64(), f(5)["reason"].as_str()),
            (Some(3000), Some("Go away!"))
        );
    }

    #[test]
    fn other_payloads_are_decode_errors_not_panics() {
        for (from, p) in [
            (Side::Server, &b"x"[..]),
            (Side::Server, b"a[1,2]"),
            (Side::Server, b"a["),
            (Side::Server, b"c[1]"),
            (Side::Client, b"{}"),
            (Side::Client, b""),
            (Side::Server, b"oo"),
        ] {
            let out = decode_all(&[(from, p)]);
            assert!(out[0].error.is_some(), "{p:?}");
        }
        // Plain text inside SockJS: listed, no inner protocol.
        let out = decode_all(&[(Side::Server, br#"a["just text"]"#)]);
        assert!(out[0].error.is_none());
        assert_eq!(out[0].app.as_ref().unwrap().summary, r#"sockjs array ["just text"]"#);
    }
}
