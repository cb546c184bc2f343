//! `Sec-WebSocket-Accept` (RFC 6455 §4.2.2).

use base64::Engine;
use sha1::{Digest, Sha1};

/// The GUID a server appends to the client's key.
pub const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// base64(SHA-1(key + GUID)), what the server must answer.
pub fn derive_accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(WS_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// "a base64-encoded value that, when decoded, is 16 bytes in length" (RFC 6455 §4.1).
pub fn key_is_valid(key: &str) -> bool {
    base64::engine::general_purpose::STANDARD.decode(key.trim()).is_ok_and(|k| k.len() == 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_section_1_3_example() {
        assert_eq!(derive_accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert!(key_is_valid("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!key_is_valid("c2hvcnQ="));
        assert!(!key_is_valid("not base64!"));
    }
}
