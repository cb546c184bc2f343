//! Every memory and work limit, named in one place.
//!
//! Each field has a command-line flag (see `cli`), a default below, and a problem code that is
//! emitted when the limit is hit; the run always goes on.

/// Limits that keep memory bounded whatever the input claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections tracked at once; the least recently active is evicted beyond it
    /// (`connection-limit`).
    pub max_connections: usize,
    /// Out-of-order bytes buffered per TCP direction before the hole is declared a gap
    /// (`stream-buffer-limit`).
    pub max_stream_buffer: usize,
    /// Bytes held for incomplete IP datagrams, all together (`ip-fragment-limit`).
    pub max_ip_fragment_bytes: usize,
    /// Bytes of one HTTP request or response head (`header-limit`).
    pub max_http_header: usize,
    /// Application bytes kept for one message or frame payload (`message-limit`).
    pub max_message: usize,
    /// Bytes one compressed message may inflate to (`inflate-limit`).
    pub max_inflate: usize,
    /// Inflated-to-compressed ratio above which inflation stops (`inflate-limit`), checked once
    /// the output passes 1 MiB so that small, highly repetitive messages are never flagged.
    pub max_inflate_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 100_000,
            max_stream_buffer: 4 << 20,
            max_ip_fragment_bytes: 16 << 20,
            max_http_header: 64 << 10,
            max_message: 16 << 20,
            max_inflate: 64 << 20,
            max_inflate_ratio: 1000,
        }
    }
}
