//! Checking an upgrade request/response pair against RFC 6455 §4 (and RFC 7692 for
//! permessage-deflate).

use super::accept::{derive_accept_key, key_is_valid};
use super::extensions::{parse_extensions, DeflateParams};
use super::upgrade::{Headers, RequestHead, ResponseHead};
use crate::problem::ProblemCode;

/// What the handshake negotiated and what is wrong with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HandshakeCheck {
    /// Accept matches the key; `None` without an accept header (or without a request).
    pub accept_ok: Option<bool>,
    pub protocol: Option<String>,
    pub extensions: Option<String>,
    /// Set when the response accepted permessage-deflate.
    pub deflate: Option<DeflateParams>,
    pub rejected: bool,
    pub problems: Vec<ProblemCode>,
    pub notes: Vec<String>,
}

/// "The request MUST contain an |Upgrade| header field whose value MUST include the
/// "websocket" keyword."
pub fn is_websocket_upgrade_request(req: &RequestHead) -> bool {
    req.has_token("upgrade", "websocket")
}

pub fn offered_protocols(req: &RequestHead) -> Vec<String> {
    req.joined("sec-websocket-protocol")
        .map(|v| v.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect())
        .unwrap_or_default()
}

pub fn offered_extensions(req: &RequestHead) -> Option<String> {
    req.joined("sec-websocket-extensions")
}

/// Problems of the request alone.
pub fn check_request(req: &RequestHead) -> Vec<ProblemCode> {
    let mut p = Vec::new();
    if !req.header("sec-websocket-key").is_some_and(key_is_valid) {
        p.push(ProblemCode::BadKey);
    }
    if !req.has_token("sec-websocket-version", "13") {
        p.push(ProblemCode::BadVersion);
    }
    if !req.has_token("connection", "upgrade") || !req.method.eq_ignore_ascii_case("GET") {
        p.push(ProblemCode::BadUpgradeHeaders);
    }
    p
}

/// Checks a response against its request (`None` when the request is not in the capture).
pub fn check_handshake(req: Option<&RequestHead>, resp: &ResponseHead) -> HandshakeCheck {
    let mut c = HandshakeCheck::default();
    if resp.status != 101 {
        c.rejected = true;
        c.problems.push(ProblemCode::UpgradeRejected);
        return c;
    }
    match req {
        Some(r) if is_websocket_upgrade_request(r) => {}
        _ => c.problems.push(ProblemCode::ResponseWithoutRequest),
    }
    if !resp.has_token("upgrade", "websocket") || !resp.has_token("connection", "upgrade") {
        c.problems.push(ProblemCode::BadUpgradeHeaders);
    }
    let accept = resp.header("sec-websocket-accept");
    match (accept, req.and_then(|r| r.header("sec-websocket-key"))) {
        (None, _) => c.problems.push(ProblemCode::AcceptMissing),
        (Some(a), Some(key)) => {
            let ok = a.trim() == derive_accept_key(key);
            c.accept_ok = Some(ok);
            if !ok {
                c.problems.push(ProblemCode::AcceptMismatch);
            }
        }
        (Some(_), None) => {}
    }
    negotiate(req, resp, &mut c);
    c.notes.extend(unknown_websocket_headers(&resp.headers));
    if !resp.reason.eq_ignore_ascii_case("Switching Protocols") {
        c.notes.push(format!("reason phrase {:?}", resp.reason));
    }
    if let Some(u) = resp.header("upgrade") {
        if u != "websocket" {
            c.notes.push(format!("Upgrade value {u:?}"));
        }
    }
    c.notes.extend(spelling_notes("response", &resp.headers, &resp.no_space_after_colon));
    if let Some(r) = req {
        c.notes.extend(spelling_notes("request", &r.headers, &r.no_space_after_colon));
    }
    c.problems.dedup();
    c
}

/// The subprotocol and extensions the response selected, checked against the offer.
fn negotiate(req: Option<&RequestHead>, resp: &ResponseHead, c: &mut HandshakeCheck) {
    c.protocol = resp.header("sec-websocket-protocol").map(|p| p.trim().to_string());
    if let (Some(p), Some(r)) = (&c.protocol, req) {
        // "the server MUST NOT send ... a value that was not present in the client's handshake"
        if !offered_protocols(r).iter().any(|o| o == p) {
            c.problems.push(ProblemCode::ProtocolNotOffered);
        }
    }
    c.extensions = resp.joined("sec-websocket-extensions");
    if let Some(ext) = &c.extensions {
        let offered: Vec<String> = req
            .and_then(offered_extensions)
            .map(|o| parse_extensions(&o).into_iter().map(|e| e.name).collect())
            .unwrap_or_default();
        for e in parse_extensions(ext) {
            if req.is_some() && !offered.contains(&e.name) {
                c.problems.push(ProblemCode::ExtensionNotOffered);
            }
            if e.name == DeflateParams::NAME && c.deflate.is_none() {
                match DeflateParams::from_offer(&e) {
                    Ok(p) => c.deflate = Some(p),
                    Err(why) => {
                        c.notes.push(format!(
                            "permessage-deflate response not understood ({why}); assumed defaults"
                        ));
                        c.deflate = Some(DeflateParams::default());
                    }
                }
            }
        }
    }
}

/// Checks the extended CONNECT that opens a WebSocket over HTTP/2 (RFC 8441 5) and its
/// answer, both decoded from header blocks (pseudo-headers included, names in lower case).
/// There is no key and no accept: `accept_ok` stays `None`. `status`: the answer's, `None`
/// while unanswered.
pub fn check_h2_handshake(req: &RequestHead, resp: Option<&ResponseHead>) -> HandshakeCheck {
    let mut c = HandshakeCheck::default();
    if !req.has_token("sec-websocket-version", "13") {
        c.problems.push(ProblemCode::BadVersion);
    }
    if req.header("sec-websocket-key").is_some() {
        c.notes.push("Sec-WebSocket-Key sent over HTTP/2, where it has no use".into());
    }
    let Some(resp) = resp else { return c };
    if !(200..300).contains(&resp.status) {
        c.rejected = true;
        c.problems.push(ProblemCode::UpgradeRejected);
        return c;
    }
    negotiate(Some(req), resp, &mut c);
    c.notes.extend(unknown_websocket_headers(&resp.headers));
    c.problems.dedup();
    c
}

/// WebSocket handshake headers as RFC 6455 spells them.
const CANONICAL: &[&str] = &[
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
];

/// Header names are case-insensitive (RFC 9110 5.1), so neither quirk is a violation; both
/// mark a hand-written peer and break other hand-written peers that match names exactly or
/// split lines on `": "`.
fn spelling_notes(side: &str, headers: &[(String, String)], no_space: &[String]) -> Vec<String> {
    let mut notes = Vec::new();
    if !no_space.is_empty() {
        notes.push(format!(
            "{side} headers without a space after the colon: {}",
            no_space.join(", ")
        ));
    }
    // All-lowercase is what HTTP/2-minded libraries send; anything else off the RFC's
    // spelling is worth a note.
    let odd: Vec<&str> = headers
        .iter()
        .filter_map(|(name, _)| {
            let canon = CANONICAL.iter().find(|c| c.eq_ignore_ascii_case(name))?;
            (name != canon && *name != canon.to_ascii_lowercase()).then_some(name.as_str())
        })
        .collect();
    if !odd.is_empty() {
        notes.push(format!("{side} header names in unusual case: {}", odd.join(", ")));
    }
    notes
}

/// Response headers that look like WebSocket headers but are not in RFC 6455: the
/// `WebSocket-*` headers of the pre-RFC drafts (hixie-75), or misspellings.
fn unknown_websocket_headers(headers: &[(String, String)]) -> Vec<String> {
    headers
        .iter()
        .filter(|(name, _)| {
            let lower = name.to_ascii_lowercase();
            (lower.starts_with("websocket-") || lower.starts_with("sec-websocket-"))
                && !CANONICAL.iter().any(|c| c.eq_ignore_ascii_case(name))
        })
        .map(|(name, value)| {
            let draft = if name.to_ascii_lowercase().starts_with("websocket-") {
                " (pre-RFC 6455 draft header)"
            } else {
                ""
            };
            format!("non-standard header {name}: {value}{draft}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::upgrade::{parse_request, parse_response, HeadParse};

    fn req(extra: &str) -> RequestHead {
        let text = format!(
            "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        );
        match parse_request(text.as_bytes(), 1 << 16) {
            HeadParse::Complete(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn resp(status: &str, extra: &str) -> ResponseHead {
        let text = format!(
            "HTTP/1.1 {status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{extra}\r\n"
        );
        match parse_response(text.as_bytes(), 1 << 16) {
            HeadParse::Complete(r) => r,
            other => panic!("{other:?}"),
        }
    }

    const GOOD: &str = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";

    #[test]
    fn valid_handshake() {
        let r = req("Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
        assert!(check_request(&r).is_empty());
        let c = check_handshake(Some(&r), &resp("101 Switching Protocols", &format!("{GOOD}Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n")));
        assert_eq!(c.problems, vec![]);
        assert_eq!(c.accept_ok, Some(true));
        assert_eq!(c.protocol.as_deref(), Some("chat"));
        assert!(c.deflate.unwrap().server_no_context_takeover);
    }

    #[test]
    fn each_problem() {
        let r = req("");
        let c = check_handshake(
            Some(&r),
            &resp("101 Switching Protocols", "Sec-WebSocket-Accept: xxx=\r\n"),
        );
        assert_eq!(c.problems, vec![ProblemCode::AcceptMismatch]);
        let c = check_handshake(Some(&r), &resp("101 Switching Protocols", ""));
        assert_eq!(c.problems, vec![ProblemCode::AcceptMissing]);
        assert_eq!(c.accept_ok, None);
        let c = check_handshake(
            Some(&r),
            &resp("101 Switching Protocols", &format!("{GOOD}Sec-WebSocket-Protocol: chat\r\n")),
        );
        assert_eq!(c.problems, vec![ProblemCode::ProtocolNotOffered]);
        let c = check_handshake(
            Some(&r),
            &resp(
                "101 Switching Protocols",
                &format!("{GOOD}Sec-WebSocket-Extensions: permessage-deflate\r\n"),
            ),
        );
        assert_eq!(c.problems, vec![ProblemCode::ExtensionNotOffered]);
        let c = check_handshake(Some(&r), &resp("403 Forbidden", ""));
        assert!(c.rejected && c.problems == vec![ProblemCode::UpgradeRejected]);
        let c = check_handshake(None, &resp("101 Switching Protocols", GOOD));
        assert_eq!(c.problems, vec![ProblemCode::ResponseWithoutRequest]);
        let bad = match parse_request(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 8\r\n\r\n", 1 << 16) {
            HeadParse::Complete(r) => r,
            _ => panic!(),
        };
        assert_eq!(check_request(&bad), vec![ProblemCode::BadKey, ProblemCode::BadVersion]);
    }

    #[test]
    fn notes_on_hand_written_heads() {
        let r = req("");
        // A hand-rolled server: no space after the colon, names in odd case.
        let c = check_handshake(
            Some(&r),
            &resp(
                "101 Switching Protocols",
                "sec-websocket-Accept:s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nsec-websocket-version: 13\r\n",
            ),
        );
        assert_eq!(c.problems, vec![]);
        assert_eq!(
            c.notes,
            vec![
                "response headers without a space after the colon: sec-websocket-Accept",
                "response header names in unusual case: sec-websocket-Accept",
            ]
        );
        // Pre-RFC and unknown WebSocket headers are named with their value.
        let c = check_handshake(
            Some(&r),
            &resp(
                "101 Web Socket Protocol Handshake",
                &format!("{GOOD}WebSocket-Protocol: chat\r\nSec-WebSocket-Foo: 1\r\nServer: x\r\n"),
            ),
        );
        assert_eq!(
            c.notes,
            vec![
                "non-standard header WebSocket-Protocol: chat (pre-RFC 6455 draft header)",
                "non-standard header Sec-WebSocket-Foo: 1",
                "reason phrase \"Web Socket Protocol Handshake\"",
            ]
        );
        // The RFC's spelling and all-lowercase names are not noted.
        let r = req("sec-websocket-protocol: a\r\n");
        let c = check_handshake(Some(&r), &resp("101 Switching Protocols", GOOD));
        assert_eq!(c.notes, Vec::<String>::new());
    }
}
