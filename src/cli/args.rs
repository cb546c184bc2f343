//! Command-line arguments as typed ("low args"); see `config` for what they mean.

use clap::{Parser, ValueEnum};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  wsdissect capture.pcap                      frames as a table
  wsdissect --json capture.pcapng | jq .      JSON Lines (see docs/json.md)
  wsdissect -r capture.pcap.gz --problems     only records with problems
  tcpdump -i lo -w - port 8080 | wsdissect -  read standard input
  wsdissect a.pcap b.pcap                     rotated captures, read as one";

/// Dissect WebSocket traffic in packet captures (pcap, pcapng, gzip'd, stdin).
#[derive(Parser, Debug, Clone)]
#[command(name = "wsdissect", version, about, after_help = EXAMPLES)]
pub struct Args {
    /// Capture files (`-` for standard input); several are read as one capture, in order.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Read this capture file (tshark-style alias for a FILE argument; repeatable).
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Vec<PathBuf>,

    /// Write JSON Lines (one record per line) instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Write one JSON array instead of JSON Lines.
    #[arg(long = "json-array")]
    pub json_array: bool,

    /// Also write a `connection` record when each connection ends (JSON).
    #[arg(long)]
    pub conns: bool,

    /// Report every TCP connection's events, not only WebSocket ones.
    #[arg(long)]
    pub all: bool,

    /// Only records that carry problems.
    #[arg(long)]
    pub problems: bool,

    /// Only this TCP stream (Wireshark's tcp.stream); repeatable.
    #[arg(long = "stream", value_name = "N")]
    pub streams: Vec<u64>,

    /// Stop after this many packets.
    #[arg(short = 'c', long = "count", value_name = "N")]
    pub count: Option<u64>,

    /// Cut JSON payloads to N bytes (adds "truncated": true).
    #[arg(long = "max-payload", value_name = "N")]
    pub max_payload: Option<usize>,

    /// Payload in tables: none, a preview, or all of it.
    #[arg(long, value_enum, default_value_t = PayloadMode::Preview)]
    pub payload: PayloadMode,

    /// Binary payloads in tables as hex or base64.
    #[arg(long, value_enum, default_value_t = BinaryMode::Hex)]
    pub binary: BinaryMode,

    /// Time column: r relative to the first packet, a absolute, ad absolute with date,
    /// d delta from the previous line (tshark's -t).
    #[arg(short = 't', value_enum, default_value_t = TimeMode::R)]
    pub time: TimeMode,

    /// Colour: auto (only on a terminal, not with NO_COLOR), always, never.
    #[arg(long, value_enum, default_value_t = ColorMode::Auto)]
    pub color: ColorMode,

    /// Never resolve names (accepted for tshark habits; wsdissect never resolves).
    #[arg(short = 'n')]
    pub no_resolve: bool,

    /// Tracked connections at most; the least recently active is evicted beyond it.
    #[arg(long = "max-connections", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Out-of-order bytes buffered per TCP direction.
    #[arg(long = "max-stream-buffer", value_name = "BYTES")]
    pub max_stream_buffer: Option<usize>,

    /// Bytes held for incomplete IP datagrams.
    #[arg(long = "max-ip-fragments", value_name = "BYTES")]
    pub max_ip_fragments: Option<usize>,

    /// Bytes of one HTTP request or response head.
    #[arg(long = "max-http-header", value_name = "BYTES")]
    pub max_http_header: Option<usize>,

    /// Payload bytes kept for one frame or message.
    #[arg(long = "max-message", value_name = "BYTES")]
    pub max_message: Option<usize>,

    /// Bytes one compressed message may inflate to.
    #[arg(long = "max-inflate", value_name = "BYTES")]
    pub max_inflate: Option<usize>,

    /// Inflated-to-compressed ratio limit (checked past 1 MiB of output).
    #[arg(long = "max-inflate-ratio", value_name = "N")]
    pub max_inflate_ratio: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PayloadMode {
    None,
    Preview,
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BinaryMode {
    Hex,
    Base64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TimeMode {
    R,
    A,
    Ad,
    D,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorMode {
    Auto,
    Always,
    Never,
}
