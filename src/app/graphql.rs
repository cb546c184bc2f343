//! GraphQL over WebSocket: `graphql-transport-ws` (the graphql-ws library) and the older
//! `graphql-ws` (subscriptions-transport-ws). Each message is a JSON object with `type`,
//! usually `id`, and a `payload`; for operations, the operation name comes from
//! `payload.operationName` or else from the query document (`subscription OnMsg { … }`).

use super::{compact, App, AppDecoder, AppMessage, Decoded, Hints, Registration};
use serde_json::Value;

pub const REGISTRATION: Registration = Registration {
    name: "graphql",
    by_handshake: |h: &Hints<'_>| {
        h.protocol.is_some_and(|p| p == "graphql-transport-ws" || p == "graphql-ws")
    },
    by_content: |m: &AppMessage<'_>| {
        m.text
            && m.payload.starts_with(b"{")
            && memchr::memmem::find(m.payload, b"\"connection_init\"").is_some()
    },
    new: |h| {
        // Without a subprotocol (found by content) the current protocol is assumed; the
        // message types of both are decoded alike.
        let legacy = h.protocol == Some("graphql-ws");
        Box::new(Graphql { protocol: if legacy { "graphql-ws" } else { "graphql-transport-ws" } })
    },
};

pub struct Graphql {
    protocol: &'static str,
}

/// `query Name(…) {` / `subscription Name {` → (`query`, `Name`).
fn operation_of(query: &str) -> (Option<&str>, Option<&str>) {
    let mut words =
        query.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty());
    match words.next() {
        Some(kind @ ("query" | "mutation" | "subscription")) => {
            let trimmed = query.trim_start().get(kind.len()..).unwrap_or_default().trim_start();
            let name = if trimmed.starts_with(['{', '(']) { None } else { words.next() };
            (Some(kind), name)
        }
        _ if query.trim_start().starts_with('{') => (Some("query"), None),
        _ => (None, None),
    }
}

impl AppDecoder for Graphql {
    fn protocol(&self) -> &'static str {
        self.protocol
    }

    fn decode(&mut self, m: &AppMessage<'_>) -> Decoded {
        let mut app = App::new(self.protocol);
        let v: Value = match serde_json::from_slice(m.payload) {
            Ok(v) => v,
            Err(e) => return Decoded::error(None, format!("GraphQL message is not JSON: {e}")),
        };
        let Some(kind) = v.get("type").and_then(Value::as_str) else {
            return Decoded::error(None, "GraphQL message without a string `type`");
        };
        app.set("graphql", kind);
        let mut summary = format!("graphql {kind}");
        if let Some(id) = v.get("id") {
            app.set("id", id.clone());
            let id = id.as_str().map_or_else(|| id.to_string(), str::to_owned);
            summary.push_str(&format!(" id={id}"));
        }
        let payload = v.get("payload");
        if let Some(q) = payload.and_then(|p| p.get("query")).and_then(Value::as_str) {
            let (op, name) = operation_of(q);
            let name =
                payload.and_then(|p| p.get("operationName")).and_then(Value::as_str).or(name);
            if let Some(op) = op {
                app.set("operation", op);
                summary.push_str(&format!(" {op}"));
            }
            if let Some(name) = name {
                app.set("operation_name", name);
                summary.push_str(&format!(" {name}"));
            }
        } else if let Some(p) = payload {
            summary.push_str(&format!(" {}", compact(p, 80)));
        }
        if let Some(p) = payload {
            app.set("payload", p.clone());
        }
        app.summary = summary;
        Decoded::app(app)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::Side;

    #[test]
    fn operations_and_names() {
        let mut g = Graphql { protocol: "graphql-transport-ws" };
        let m = |p: &'static [u8]| AppMessage {
            from: Side::Client,
            text: true,
            payload: p,
            first_packet: 1,
        };
        let a = g.decode(&m(br#"{"id":"1","type":"subscribe","payload":{"query":"subscription OnGreet { greetings }"}}"#)).app.unwrap();
        assert_eq!(
            (a.fields["operation"].as_str(), a.fields["operation_name"].as_str()),
            (Some("subscription"), Some("OnGreet"))
        );
        assert_eq!(a.fields["id"], "1");
        let a = g
            .decode(&m(br#"{"id":"2","type":"subscribe","payload":{"query":"{ hello }"}}"#))
            .app
            .unwrap();
        assert_eq!(a.fields["operation"], "query");
        assert!(a.fields.get("operation_name").is_none());
        let a = g.decode(&m(br#"{"type":"connection_ack"}"#)).app.unwrap();
        assert_eq!(a.summary, "graphql connection_ack");
        assert!(g.decode(&m(b"not json")).error.is_some());
        assert!(g.decode(&m(br#"{"id":"1"}"#)).error.is_some());
        assert_eq!(operation_of("query($a: Int) { x }"), (Some("query"), None));
        assert_eq!(operation_of("mutation Add($a: Int) { x }"), (Some("mutation"), Some("Add")));
    }
}
