//! Problem codes: the one table of everything wsdissect can find wrong.
//!
//! Codes are a public contract (`problems` arrays in JSON Lines, `check` output, `--allow`):
//! they keep their spelling forever. Each has a severity that `check --fail-on` compares
//! against and a one-line meaning that `docs/json.md` mirrors.

use std::fmt;

/// How bad a problem is, for `check --fail-on`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing, never fails a check.
    Info,
    /// Suspicious or lossy (capture gaps, missing close): fails only with `--fail-on warning`.
    Warning,
    /// A protocol violation by a peer.
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

macro_rules! problem_codes {
    ($( $variant:ident => $code:literal, $sev:ident, $meaning:literal; )*) => {
        /// Every problem code wsdissect reports.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ProblemCode { $( $variant, )* }

        impl ProblemCode {
            /// All codes, in documentation order.
            pub const ALL: &'static [ProblemCode] = &[ $( ProblemCode::$variant, )* ];

            /// The stable kebab-case code.
            pub fn as_str(self) -> &'static str {
                match self { $( ProblemCode::$variant => $code, )* }
            }

            pub fn severity(self) -> Severity {
                match self { $( ProblemCode::$variant => Severity::$sev, )* }
            }

            /// One line saying what the code means.
            pub fn meaning(self) -> &'static str {
                match self { $( ProblemCode::$variant => $meaning, )* }
            }

            pub fn from_code(s: &str) -> Option<ProblemCode> {
                match s { $( $code => Some(ProblemCode::$variant), )* _ => None }
            }
        }
    };
}

problem_codes! {
    // Capture and packet decoding.
    TruncatedPacket => "truncated-packet", Warning, "the capture kept fewer bytes of a packet than were on the wire (snaplen); the missing bytes are reported as a gap";
    UndecodablePacket => "undecodable-packet", Warning, "a packet's link, IP or TCP header could not be decoded; the packet was skipped";
    UnsupportedLinkType => "unsupported-link-type", Info, "packets of a link type wsdissect does not decode were counted and skipped";
    IpFragmentLimit => "ip-fragment-limit", Warning, "IP fragments were dropped because the fragment memory limit was reached";
    IpFragmentIncomplete => "ip-fragment-incomplete", Warning, "an IP datagram's fragments never all arrived; its fragments were dropped";
    // TCP.
    TcpGap => "tcp-gap", Warning, "bytes of a TCP stream are missing from the capture (never captured, or dropped at a limit)";
    OverlapConflict => "overlap-conflict", Error, "a retransmitted or overlapping TCP segment carried different bytes for the same sequence numbers; the first copy was kept";
    ConnectionLimit => "connection-limit", Warning, "the tracked-connection limit was reached and the least recently active connection was evicted";
    StreamBufferLimit => "stream-buffer-limit", Warning, "out-of-order bytes for one direction exceeded the buffer limit; the hole before them was declared a gap";
    // HTTP upgrade.
    AcceptMismatch => "accept-mismatch", Error, "Sec-WebSocket-Accept does not equal base64(SHA-1(key + GUID)) for the request's key";
    AcceptMissing => "accept-missing", Error, "the 101 response has no Sec-WebSocket-Accept header";
    BadKey => "bad-key", Error, "Sec-WebSocket-Key is missing or does not decode to 16 bytes";
    BadVersion => "bad-version", Error, "Sec-WebSocket-Version is missing or not 13";
    ProtocolNotOffered => "protocol-not-offered", Error, "the server selected a subprotocol the client did not offer";
    ExtensionNotOffered => "extension-not-offered", Error, "the server accepted an extension the client did not offer";
    UpgradeRejected => "upgrade-rejected", Warning, "the server answered the upgrade request with a status other than 101 (over HTTP/2: other than 2xx)";
    ResponseWithoutRequest => "response-without-request", Error, "a 101 Switching Protocols response answered something other than a WebSocket upgrade request (a response whose request the capture lacks is not reported)";
    BadUpgradeHeaders => "bad-upgrade-headers", Error, "the upgrade request or response lacks `Upgrade: websocket` or `Connection: Upgrade`";
    MalformedHttp => "malformed-http", Error, "an HTTP request or response head could not be parsed";
    H2StreamLimit => "h2-stream-limit", Warning, "an HTTP/2 connection had more WebSockets open (256), or more WebSocket CONNECTs awaiting an answer (16), than are followed at once; those past it were not decoded";
    HeaderLimit => "header-limit", Warning, "an HTTP head exceeded the header byte limit and was not parsed";
    HandshakeNotSeen => "handshake-not-seen", Info, "WebSocket was recognised by frame content; the upgrade handshake is not in the capture";
    // WebSocket frames.
    UnmaskedClientFrame => "unmasked-client-frame", Error, "a client-to-server frame is not masked (RFC 6455 5.1)";
    MaskedServerFrame => "masked-server-frame", Error, "a server-to-client frame is masked (RFC 6455 5.1)";
    ControlFrameTooLong => "control-frame-too-long", Error, "a control frame's payload is longer than 125 bytes (RFC 6455 5.5)";
    FragmentedControlFrame => "fragmented-control-frame", Error, "a control frame has FIN clear (RFC 6455 5.5)";
    ReservedOpcode => "reserved-opcode", Error, "a frame uses a reserved opcode (3-7, 0xB-0xF)";
    RsvWithoutExtension => "rsv-without-extension", Error, "RSV1 set without permessage-deflate, or RSV2/RSV3 set (RFC 6455 5.2)";
    Rsv1OnContinuation => "rsv1-on-continuation", Error, "RSV1 is set on a continuation frame (RFC 7692 6.1)";
    Rsv1OnControl => "rsv1-on-control", Error, "RSV1 is set on a control frame (RFC 7692 6.1)";
    NonMinimalLength => "non-minimal-length", Error, "the payload length is not in its minimal encoding (RFC 6455 5.2)";
    LengthMsbSet => "length-msb-set", Error, "the most significant bit of a 64-bit payload length is set (RFC 6455 5.2)";
    UnexpectedContinuation => "unexpected-continuation", Error, "a continuation frame arrived with no fragmented message in progress (where no TCP gap or capture start can explain it)";
    DataFrameInsideFragmentedMessage => "data-frame-inside-fragmented-message", Error, "a text or binary frame arrived while a fragmented message was still open (where no TCP gap can explain it)";
    InvalidCloseCode => "invalid-close-code", Error, "a close frame carries a 1-byte payload or a code that may not be sent (RFC 6455 7.4)";
    InvalidUtf8 => "invalid-utf8", Error, "a text message or close reason is not valid UTF-8";
    DataAfterClose => "data-after-close", Error, "a peer sent a frame after its own close frame";
    IncompleteFrame => "incomplete-frame", Warning, "the stream ended (or a gap began) inside a frame; the frame is reported with what arrived";
    IncompleteMessage => "incomplete-message", Warning, "the stream ended, or a TCP gap swallowed the framing, while a fragmented message was still open";
    // Messages and connections.
    InflateLimit => "inflate-limit", Warning, "a compressed message inflated past the size or ratio limit; the rest was not inflated";
    DecompressFailed => "decompress-failed", Error, "a permessage-deflate message could not be inflated";
    DeflateHistoryLost => "deflate-history-lost", Warning, "a compressed message refers back to earlier data of its sender that is not in the capture (lost in a TCP gap, sent before the capture began, or in a message that could not be inflated); it could not be inflated";
    MessageLimit => "message-limit", Warning, "a message exceeded the message size limit; its payload was truncated";
    NoCloseFrame => "no-close-frame", Warning, "the connection ended without a close frame from one or both sides (what a peer reports as 1006)";
    CloseNotEchoed => "close-not-echoed", Warning, "one side sent a close frame and the other never answered with its own";
    PingLimit => "ping-limit", Info, "more pings were waiting for a pong than the pending-ping limit; the oldest was forgotten, so its pong may count as unsolicited";
    PingAnsweredWithPing => "ping-answered-with-ping", Error, "a ping was answered with a ping carrying the same payload instead of a pong";
    UnsolicitedPong => "unsolicited-pong", Info, "a pong matched no outstanding ping (allowed as a heartbeat by RFC 6455 5.5.3)";
    // TLS (wss://).
    TlsNoKey => "tls-no-key", Warning, "a TLS connection's secrets are not in the key log (--keylog, SSLKEYLOGFILE, pcapng secrets); its records are not decrypted";
    TlsDecryptFailed => "tls-decrypt-failed", Warning, "TLS records did not decrypt with the logged secrets (wrong key, or no record after a gap opened); the rest of that direction is not decrypted";
    TlsUnsupportedCipher => "tls-unsupported-cipher", Warning, "the TLS version or cipher suite is not one wsdissect decrypts (TLS 1.2 and 1.3 with AES-GCM or ChaCha20-Poly1305, and TLS 1.2 AES-CBC)";
    TlsMalformed => "tls-malformed", Error, "bytes of a TLS connection are not valid TLS records or handshake messages; the rest of that direction is skipped";
    UndecodableData => "undecodable-data", Warning, "stream bytes that are neither an HTTP upgrade nor WebSocket frames; they were skipped";
    AppDecodeError => "app-decode-error", Warning, "a message (or polling payload) of the connection's application protocol (Socket.IO, MQTT, STOMP, GraphQL) did not decode; it is reported as it is";
    Resync => "resync", Warning, "after a gap or a mid-stream start, bytes were skipped to reach the next plausible frame boundary";
}

impl fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_kebab_case_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for &code in ProblemCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            assert_eq!(ProblemCode::from_code(s), Some(code));
            assert!(!code.meaning().is_empty());
        }
    }

    #[test]
    fn every_code_is_documented() {
        let doc = include_str!("../docs/json.md");
        for &code in ProblemCode::ALL {
            let row = format!("| `{}` | {} |", code.as_str(), code.severity().as_str());
            assert!(doc.contains(&row), "docs/json.md lacks the row for {code}");
        }
    }
}
