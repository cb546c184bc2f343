//! STOMP 1.0–1.2 frames over WebSocket (`Sec-WebSocket-Protocol: v12.stomp`, `v11.stomp`,
//! `v10.stomp` or `stomp`): a command line, `name:value` header lines, a blank line and a
//! body ended by NUL. A message holding only line ends is a heart-beat.

use super::{preview, set_payload, App, AppDecoder, AppMessage, Decoded, Hints, Registration};
use serde_json::{Map, Value};

pub const REGISTRATION: Registration = Registration {
    name: "stomp",
    by_handshake: |h: &Hints<'_>| {
        h.protocol.is_some_and(|p| {
            let p = p.to_ascii_lowercase();
            p == "stomp" || (p.starts_with('v') && p.ends_with(".stomp"))
        })
    },
    by_content: |m: &AppMessage<'_>| {
        m.text
            && [&b"CONNECT\n"[..], b"STOMP\n", b"CONNECTED\n", b"CONNECT\r\n", b"STOMP\r\n"]
                .iter()
                .any(|c| m.payload.starts_with(c))
    },
    new: |_| Box::new(Stomp),
};

const COMMANDS: [&str; 15] = [
    "CONNECT",
    "STOMP",
    "CONNECTED",
    "SEND",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "ACK",
    "NACK",
    "BEGIN",
    "COMMIT",
    "ABORT",
    "DISCONNECT",
    "MESSAGE",
    "RECEIPT",
    "ERROR",
];

pub struct Stomp;

/// STOMP 1.2 header escapes: `\r`, `\n`, `\c` (colon) and `\\`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('c') => out.push(':'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

impl AppDecoder for Stomp {
    fn protocol(&self) -> &'static str {
        "stomp"
    }

    fn decode(&mut self, m: &AppMessage<'_>) -> Decoded {
        let mut app = App::new("stomp");
        if m.payload.iter().all(|b| matches!(b, b'\n' | b'\r')) {
            app.set("stomp", "HEARTBEAT");
            app.summary = "stomp heart-beat".into();
            return Decoded::app(app);
        }
        // Frames may be preceded by heart-beat line ends.
        let start = m.payload.iter().position(|b| !matches!(b, b'\n' | b'\r')).unwrap_or(0);
        let p = &m.payload[start..];
        let Some(head_end) =
            find(p, b"\n\n").map(|i| (i, 2)).or_else(|| find(p, b"\r\n\r\n").map(|i| (i, 4)))
        else {
            return Decoded::error(None, "a STOMP frame needs a blank line after its headers");
        };
        let Ok(head) = std::str::from_utf8(&p[..head_end.0]) else {
            return Decoded::error(None, "STOMP headers are not UTF-8");
        };
        let mut lines = head.lines();
        let command = lines.next().unwrap_or_default().trim_end_matches('\r');
        if !COMMANDS.contains(&command) {
            return Decoded::error(None, format!("unknown STOMP command {command:?}"));
        }
        app.set("stomp", command);
        let mut headers = Map::new();
        for line in lines {
            let Some((k, v)) = line.trim_end_matches('\r').split_once(':') else {
                return Decoded::error(
                    Some(app),
                    format!("STOMP header without a colon: {line:?}"),
                );
            };
            // The first of repeated headers wins (STOMP 1.2, "Repeated Header Entries").
            let (k, v) = (unescape(k), unescape(v));
            headers.entry(k).or_insert(Value::from(v));
        }
        let body_all = &p[head_end.0 + head_end.1..];
        // With a content-length, the body is that many octets whatever they hold, NULs
        // included (STOMP 1.2, "Value Encoding"); without one it ends at the first NUL.
        let length = headers.get("content-length").and_then(Value::as_str);
        let body = match length.map(|l| l.trim().parse::<usize>()) {
            Some(Ok(len)) => match body_all.get(len) {
                Some(0) => &body_all[..len],
                Some(_) => {
                    return Decoded::error(
                        Some(app),
                        format!("no NUL after the STOMP body's content-length of {len}"),
                    )
                }
                None => {
                    return Decoded::error(
                        Some(app),
                        format!("a STOMP frame shorter than its content-length of {len}"),
                    )
                }
            },
            Some(Err(_)) => {
                return Decoded::error(
                    Some(app),
                    format!("STOMP content-length is not a number: {:?}", length.unwrap_or("")),
                )
            }
            None => match body_all.iter().position(|&b| b == 0) {
                Some(nul) => &body_all[..nul],
                None => return Decoded::error(Some(app), "a STOMP frame must end with NUL"),
            },
        };
        let mut summary = format!("stomp {command}");
        for key in ["destination", "subscription", "receipt-id", "message"] {
            if let Some(v) = headers.get(key).and_then(Value::as_str) {
                summary.push_str(&format!(" {key}={v}"));
            }
        }
        if let Some(d) = headers.get("destination").cloned() {
            app.set("destination", d);
        }
        app.set("headers", Value::Object(headers));
        if !body.is_empty() {
            summary.push_str(&format!(" {}", preview(body, 60)));
            set_payload(&mut app, "body", body);
        }
        app.summary = summary;
        Decoded::app(app)
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    memchr::memmem::find(h, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::Side;

    fn dec(p: &[u8]) -> Decoded {
        Stomp.decode(&AppMessage { from: Side::Client, text: true, payload: p, first_packet: 1 })
    }

    #[test]
    fn frames_heartbeats_and_errors() {
        let d = dec(b"SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello\0");
        let a = d.app.unwrap();
        assert_eq!(a.fields["stomp"], "SEND");
        assert_eq!(a.fields["destination"], "/queue/a");
        assert_eq!(a.fields["body"], "hello");
        assert_eq!(a.fields["headers"]["content-type"], "text/plain");
        assert_eq!(dec(b"\n").app.unwrap().fields["stomp"], "HEARTBEAT");
        assert_eq!(
            dec(b"CONNECTED\r\nversion:1.2\r\n\r\n\0").app.unwrap().fields["headers"]["version"],
            "1.2"
        );
        assert_eq!(dec(b"MESSAGE\nx:a\\cb\n\n\0").app.unwrap().fields["headers"]["x"], "a:b");
        assert!(dec(b"HELLO\n\n\0").error.is_some());
        assert!(dec(b"SEND\ndestination:/q\n\nno nul").error.is_some());
        assert!(dec(b"SEND\nbad header\n\n\0").error.is_some());
        assert!(dec(b"SEND").error.is_some());
    }

    #[test]
    fn content_length_bodies_may_hold_nul() {
        let d = dec(b"MESSAGE\ncontent-length:5\ndestination:/q\n\na\0b\0c\0\n");
        let a = d.app.unwrap();
        assert!(d.error.is_none());
        assert_eq!(a.fields["destination"], "/q");
        assert_eq!(a.fields["body"], "a\0b\0c");
        let short = dec(b"SEND\ncontent-length:9\n\nabc\0");
        assert!(short.error.unwrap().contains("shorter than its content-length of 9"));
        let unended = dec(b"SEND\ncontent-length:2\n\nabc\0");
        assert!(unended.error.unwrap().contains("no NUL after"));
        let bad = dec(b"SEND\ncontent-length:x\n\nabc\0");
        assert!(bad.error.unwrap().contains("not a number"));
        let empty = dec(b"SEND\ncontent-length:0\ndestination:/q\n\n\0");
        assert!(empty.error.is_none());
        assert!(empty.app.unwrap().fields.get("body").is_none());
    }
}
