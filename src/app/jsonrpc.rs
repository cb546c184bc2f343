//! JSON-RPC 2.0 over WebSocket (Ethereum nodes, language servers, MCP servers,
//! rpc-websockets): requests (`method` and `id`), notifications (`method`, no `id`),
//! responses (`result` or `error`, and the request's `id`), and batches (arrays of them).
//! A response is named by the method of the request it answers, remembered per side.

use super::{App, AppDecoder, AppMessage, Decoded, Fields, Hints, Registration};
use crate::tcp::Side;
use serde_json::{Map, Value};
use std::collections::VecDeque;

pub const REGISTRATION: Registration = Registration {
    name: "jsonrpc",
    by_handshake: |h: &Hints<'_>| {
        h.protocol.is_some_and(|p| {
            let p = p.to_ascii_lowercase();
            p == "jsonrpc" || p == "json-rpc" || p.starts_with("jsonrpc-2")
        })
    },
    by_content: |m: &AppMessage<'_>| {
        m.text
            && memchr::memmem::find(m.payload, b"\"jsonrpc\"").is_some()
            && serde_json::from_slice::<Value>(m.payload)
                .ok()
                .is_some_and(|v| units(&v).is_some_and(|u| u.iter().all(|o| describe(o).is_ok())))
    },
    new: |_| Box::new(JsonRpc::default()),
};

/// Requests remembered per side while their response is awaited.
const PENDING: usize = 256;

#[derive(Default)]
pub struct JsonRpc {
    /// Per side: the ids of its requests not answered yet, and their methods.
    pending: [VecDeque<(Value, String)>; 2],
}

/// The objects of a message: itself, or the members of a batch.
fn units(v: &Value) -> Option<Vec<&Map<String, Value>>> {
    match v {
        Value::Object(o) => Some(vec![o]),
        Value::Array(items) if !items.is_empty() => items.iter().map(Value::as_object).collect(),
        _ => None,
    }
}

/// What one object is: its kind, method and id, or why it is not JSON-RPC 2.0.
fn describe(
    o: &Map<String, Value>,
) -> Result<(&'static str, Option<&str>, Option<&Value>), String> {
    if o.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(r#"an object without "jsonrpc": "2.0""#.into());
    }
    let id = o.get("id");
    match (o.get("method"), o.get("result"), o.get("error")) {
        (Some(Value::String(m)), None, None) => {
            Ok((if id.is_some() { "request" } else { "notification" }, Some(m), id))
        }
        (Some(_), None, None) => Err("a method that is not a string".into()),
        (None, Some(_), None) => Ok(("response", None, id)),
        (None, None, Some(e)) if e.get("code").is_some_and(Value::is_i64) => {
            Ok(("error", None, id))
        }
        (None, None, Some(_)) => Err("an error without an integer code".into()),
        _ => Err("neither a request nor a response (method, result and error)".into()),
    }
}

impl JsonRpc {
    fn unit(&mut self, from: Side, o: &Map<String, Value>) -> Result<(Fields, String), String> {
        let (kind, method, id) = describe(o)?;
        let mut f = Fields::new();
        f.insert("jsonrpc".into(), Value::from(kind));
        let mut method = method.map(str::to_owned);
        let mine = from.index();
        let theirs = 1 - mine;
        match kind {
            "request" => {
                let pending = &mut self.pending[mine];
                if pending.len() == PENDING {
                    pending.pop_front();
                }
                if let (Some(id), Some(m)) = (id, &method) {
                    pending.push_back((id.clone(), m.clone()));
                }
            }
            "response" | "error" => {
                let pending = &mut self.pending[theirs];
                if let Some(at) = id.and_then(|id| pending.iter().position(|(p, _)| p == id)) {
                    method = pending.remove(at).map(|(_, m)| m);
                }
            }
            _ => {}
        }
        if let Some(m) = &method {
            f.insert("method".into(), Value::from(m.as_str()));
        }
        if let Some(id) = id {
            f.insert("id".into(), id.clone());
        }
        let mut summary = format!("jsonrpc {kind}");
        if let Some(id) = id {
            summary.push(' ');
            summary.push_str(&id.to_string());
        }
        if let Some(m) = &method {
            summary.push(' ');
            summary.push_str(m);
        }
        if let Some(e) = o.get("error") {
            let code = e.get("code").cloned().unwrap_or(Value::Null);
            summary.push_str(&format!(" {code}"));
            f.insert("error_code".into(), code);
            if let Some(msg) = e.get("message").and_then(Value::as_str) {
                summary.push_str(&format!(" {}", super::preview(msg.as_bytes(), 60)));
                f.insert("error_message".into(), Value::from(msg));
            }
        }
        Ok((f, summary))
    }
}

impl AppDecoder for JsonRpc {
    fn protocol(&self) -> &'static str {
        "jsonrpc"
    }

    fn decode(&mut self, m: &AppMessage<'_>) -> Decoded {
        let mut app = App::new("jsonrpc");
        let parsed = if m.text { serde_json::from_slice::<Value>(m.payload).ok() } else { None };
        let Some(objects) = parsed.as_ref().and_then(units) else {
            return Decoded::error(Some(app), "not a JSON-RPC message (a JSON object or batch)");
        };
        let batch = parsed.as_ref().is_some_and(Value::is_array);
        let mut done = Vec::new();
        let mut error = None;
        for o in objects {
            match self.unit(m.from, o) {
                Ok(u) => done.push(u),
                Err(why) => error = error.or(Some(why)),
            }
        }
        if batch {
            app.set("batch", done.len());
        }
        super::units_decoded(app, done, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(msgs: &[(Side, &str)]) -> Vec<Decoded> {
        crate::app::decode_texts(&mut JsonRpc::default(), msgs)
    }

    #[test]
    fn requests_responses_errors_notifications_and_batches() {
        let out = run(&[
            (Side::Client, r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#),
            (Side::Client, r#"{"jsonrpc":"2.0","method":"eth_call","id":"b"}"#),
            (Side::Server, r#"{"jsonrpc":"2.0","error":{"code":-32601,"message":"no"},"id":"b"}"#),
            (Side::Server, r#"{"jsonrpc":"2.0","result":3,"id":1}"#),
            (Side::Server, r#"{"jsonrpc":"2.0","method":"news","params":{}}"#),
            (
                Side::Client,
                r#"[{"jsonrpc":"2.0","method":"a","id":7},{"jsonrpc":"2.0","method":"b"}]"#,
            ),
            (Side::Server, r#"[{"jsonrpc":"2.0","result":null,"id":7}]"#),
        ]);
        assert!(out.iter().all(|d| d.error.is_none()), "{out:#?}");
        let f = |i: usize| out[i].app.as_ref().unwrap().fields.clone();
        assert_eq!(
            (f(0)["jsonrpc"].as_str(), f(0)["method"].as_str()),
            (Some("request"), Some("sum"))
        );
        assert_eq!(
            (f(2)["jsonrpc"].as_str(), f(2)["method"].as_str()),
            (Some("error"), Some("eth_call"))
        );
        assert_eq!(
            (f(2)["error_code"].as_i64(), f(2)["error_message"].as_str()),
            (Some(-32601), Some("no"))
        );
        assert_eq!((f(3)["method"].as_str(), f(3)["id"].as_i64()), (Some("sum"), Some(1)));
        assert_eq!(f(4)["jsonrpc"], "notification");
        assert_eq!(
            (f(5)["batch"].as_u64(), f(5)["more"][0]["jsonrpc"].as_str()),
            (Some(2), Some("notification"))
        );
        assert_eq!(f(6)["method"], "a");
        assert_eq!(out[3].app.as_ref().unwrap().summary, "jsonrpc response 1 sum");
    }

    #[test]
    fn other_messages_are_decode_errors() {
        for p in [
            r#"{"notification":"news","params":[]}"#,
            r#"{"jsonrpc":"1.0","method":"x"}"#,
            r#"{"jsonrpc":"2.0","method":5,"id":1}"#,
            r#"{"jsonrpc":"2.0","result":1,"error":{"code":1},"id":1}"#,
            r#"{"jsonrpc":"2.0","error":{"message":"no code"},"id":1}"#,
            "[]",
            "not json",
            "[1]",
        ] {
            assert!(run(&[(Side::Server, p)])[0].error.is_some(), "{p}");
        }
    }

    #[test]
    fn found_by_content_only_when_every_object_is_json_rpc() {
        let m = |p: &'static str| AppMessage {
            from: Side::Client,
            text: true,
            payload: p.as_bytes(),
            first_packet: 1,
        };
        assert!((REGISTRATION.by_content)(&m(r#"{"jsonrpc":"2.0","method":"a","id":1}"#)));
        assert!(!(REGISTRATION.by_content)(&m(r#"{"jsonrpc":"2.0"}"#)));
        assert!(!(REGISTRATION.by_content)(&m(r#"{"type":"jsonrpc"}"#)));
    }
}
