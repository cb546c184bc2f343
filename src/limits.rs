//! Every memory and work limit, named in one place.
//!
//! What a capture says (lengths, sequence numbers, connection counts, compressed sizes) never
//! sizes an allocation by itself: each thing that grows with the input is capped here.
//!
//! [`Limits`] holds the caps a user may want to move: each field has a command-line flag
//! (`cli::args`, listed in the README's "Limits" table and in SECURITY.md), the default below,
//! and a problem code emitted when the limit is hit; the run always goes on. The constants
//! after it are fixed bounds of the format or of the output machinery, which no capture needs
//! raised; each says what happens when it is reached.

/// Limits that keep memory bounded whatever the input claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections tracked at once; beyond it one is evicted, those that never carried
    /// payload first, then the least recently active (`--max-connections`,
    /// `connection-limit`).
    pub max_connections: usize,
    /// Out-of-order bytes buffered per TCP direction before the hole is declared a gap
    /// (`--max-stream-buffer`, `stream-buffer-limit`).
    pub max_stream_buffer: usize,
    /// Bytes held for incomplete IP datagrams, all together (`--max-ip-fragments`,
    /// `ip-fragment-limit`).
    pub max_ip_fragment_bytes: usize,
    /// Incomplete IP datagrams held at once; the oldest is dropped beyond it
    /// (`--max-ip-datagrams`, `ip-fragment-limit`).
    pub max_ip_datagrams: usize,
    /// Bytes of one HTTP request or response head (`--max-http-header`, `header-limit`).
    pub max_http_header: usize,
    /// Bytes held per direction while looking for a frame boundary: after a gap, or in a
    /// connection picked up mid-stream while deciding whether it carries WebSocket
    /// (`--max-scan-window`; the bytes are reported skipped with `resync` or
    /// `undecodable-data`).
    pub max_scan_window: usize,
    /// Application bytes kept for one message or frame payload (`--max-message`,
    /// `message-limit`).
    pub max_message: usize,
    /// Bytes one compressed message may inflate to (`--max-inflate`, `inflate-limit`).
    pub max_inflate: usize,
    /// Inflated-to-compressed ratio above which inflation stops (`--max-inflate-ratio`,
    /// `inflate-limit`), checked once the output passes 1 MiB so that small, highly
    /// repetitive messages are never flagged.
    pub max_inflate_ratio: u64,
    /// Pings per side waiting for their pong; beyond it the oldest is forgotten
    /// (`--max-pending-pings`, `ping-limit`).
    pub max_pending_pings: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 100_000,
            max_stream_buffer: 4 << 20,
            max_ip_fragment_bytes: 16 << 20,
            max_ip_datagrams: 1024,
            max_http_header: 64 << 10,
            max_scan_window: 64 << 10,
            max_message: 16 << 20,
            max_inflate: 64 << 20,
            max_inflate_ratio: 1000,
            max_pending_pings: 64,
        }
    }
}

/// The largest capture block (pcapng block, pcap record) read; a larger one ends the read as
/// a corrupt capture (exit 2), with everything before it reported.
pub const MAX_BLOCK: usize = 64 << 20;

/// pcapng Decryption Secrets kept in all; later blocks are skipped with a notice.
pub const MAX_SECRETS: usize = 16 << 20;

/// Without `--all`, records of a connection not yet known to be WebSocket are held back (so
/// that a late handshake or frame can still claim them) for at most this many packets ...
pub const HOLD_PACKETS: u64 = 4096;
/// ... and this many payload bytes over all such connections; then they are released as
/// not WebSocket.
pub const HOLD_BYTES: usize = 16 << 20;

/// RFC 8446 5.1: "The length MUST NOT exceed 2^14 + 256 bytes" (TLS 1.3 ciphertext); TLS 1.2
/// allows 2^14 + 2048 (RFC 5246 6.2.3). A longer record ends decryption of its direction
/// (`tls-malformed`).
pub const MAX_TLS_RECORD: usize = (1 << 14) + 2048;
/// TLS handshake messages longer than this (certificate chains are the long ones) are
/// skipped; the record layer goes on.
pub const MAX_TLS_HANDSHAKE_MESSAGE: usize = 256 << 10;
/// Protected bytes held per connection while its secrets are awaited (live capture with a
/// key log still being written); beyond it the connection is reported without a key.
pub const MAX_TLS_WAITING: usize = 1 << 20;
/// Key log text read at most, all sources together: a key log line is about 170 bytes, so
/// this holds about 400 000 connections' secrets; later lines are ignored.
pub const MAX_KEYLOG_BYTES: u64 = 64 << 20;

/// Ping round trips kept per connection for its record (`rtt_ms`): the first ones; later
/// answered pings are still paired, only their times are not kept. At one ping every 25 s
/// (Socket.IO's default) this is seven hours of a connection.
pub const MAX_RTT_SAMPLES: usize = 1024;
