//! `--normalize`: records with what varies between two recordings of the same scenario
//! removed, so their outputs can be diffed.
//!
//! Removed: capture times (`ts`, `start`, `end`, `rtt_ms`), packet numbers, ports (endpoints
//! and the Host header become bare addresses), masking keys, the random handshake key and its accept value, the TLS client random,
//! the `Date` header, input names, packet and byte totals, and `tcp` records (which reflect
//! how the stack segmented and retransmitted, not what the peers said). Everything the peers
//! said — handshake fields, frames, messages, close codes — stays.
//!
//! Done on the finished record rather than in every writer so the writers stay one simple
//! path for the common case; normalizing costs a parse per record, which only this option
//! pays.

use serde_json::{Map, Value};

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

/// Normalizes one JSON Lines record in place (keeping its newline); returns false when the
/// whole record is dropped.
pub fn normalize_line(buf: &mut Vec<u8>) -> bool {
    let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(buf) else {
        return true;
    };
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or("").to_string();
    if kind == "tcp" {
        return false;
    }
    normalize_object(&mut obj, &kind);
    buf.clear();
    if serde_json::to_writer(&mut *buf, &Value::Object(obj)).is_err() {
        return false;
    }
    buf.push(b'\n');
    true
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
        normalize_line(&mut buf).then(|| String::from_utf8(buf).unwrap())
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
}
