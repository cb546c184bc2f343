//! Command-line arguments as typed ("low args"); see `config` for what they mean.
//!
//! `wsdissect [OPTIONS] FILE...` is the frames view; the other views are subcommands. Every
//! option is global, so it may stand before or after the view name.

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  wsdissect capture.pcap                       frames as a table
  wsdissect --json capture.pcapng | jq .       JSON Lines (see docs/json.md)
  wsdissect messages --from client cap.pcap    complete messages the clients sent
  wsdissect conns cap.pcap                     one row per connection
  wsdissect follow 3 --pretty cap.pcap         one connection as a transcript
  wsdissect check --expect-clean-close cap.pcap
                                               CI verdict: exit 1 on problems
  wsdissect diff baseline.pcap new.pcap        compare two recordings' conversations
  wsdissect -r capture.pcap.gz --problems      only records with problems
  wsdissect -i lo -f 'tcp port 8080'           live capture (needs CAP_NET_RAW)
  tcpdump -i lo -w - port 8080 | wsdissect -   read standard input
  wsdissect a.pcap b.pcap                      rotated captures, read as one

Exit codes: 0 ok; 1 check found problems / diff found differences; 2 usage or input error.";

/// Dissect WebSocket traffic in packet captures (pcap, pcapng, compressed, stdin) or live.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "wsdissect",
    version,
    about,
    after_help = EXAMPLES,
    subcommand_precedence_over_arg = true
)]
pub struct Args {
    #[command(subcommand)]
    pub view: Option<ViewCmd>,

    /// Capture files (`-` for standard input); several are read as one capture, in order.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    #[command(flatten)]
    pub common: Common,
}

/// The views other than the default frames table.
#[derive(Subcommand, Debug, Clone)]
pub enum ViewCmd {
    /// Frames, handshakes and TCP lifecycle events (the default view).
    Frames(Files),
    /// One line per complete message (reassembled, decompressed); control frames too.
    Messages(Files),
    /// One row per connection: handshake, counts, RTTs, close, TCP end, problems.
    Conns(Files),
    /// One connection as a transcript, like Wireshark's Follow WebSocket Stream.
    Follow {
        /// The TCP stream number (as in the `stream` key and tshark's tcp.stream).
        #[arg(value_name = "STREAM")]
        stream: u64,
        #[command(flatten)]
        files: Files,
        /// Pretty-print JSON payloads.
        #[arg(long)]
        pretty: bool,
    },
    /// CI verdict: print problems, exit 1 when any is at or above --fail-on.
    Check {
        #[command(flatten)]
        files: Files,
        #[command(flatten)]
        check: CheckArgs,
    },
    /// Compare the WebSocket conversations of two captures (exit 1 when they differ).
    Diff {
        /// The baseline capture.
        #[arg(value_name = "BASE")]
        base: PathBuf,
        /// The capture to compare with it.
        #[arg(value_name = "NEW")]
        new: PathBuf,
        #[command(flatten)]
        diff: DiffArgs,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

#[derive(ClapArgs, Debug, Clone, Default)]
pub struct Files {
    /// Capture files (`-` for standard input); several are read as one capture, in order.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(ClapArgs, Debug, Clone, Default)]
pub struct CheckArgs {
    /// Lowest severity that fails the check.
    #[arg(long = "fail-on", value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
    /// Problem codes that never fail the check (comma-separated; repeatable).
    #[arg(long = "allow", value_name = "CODE,...", value_delimiter = ',')]
    pub allow: Vec<String>,
    /// Fail unless exactly N upgrade handshakes succeeded (101 with a valid accept).
    #[arg(long = "expect-handshakes", value_name = "N")]
    pub expect_handshakes: Option<u64>,
    /// Fail unless every WebSocket connection ended with an echoed close handshake.
    #[arg(long = "expect-clean-close")]
    pub expect_clean_close: bool,
    /// Fail when a ping/pong round trip took longer than MS milliseconds.
    #[arg(long = "max-rtt", value_name = "MS")]
    pub max_rtt: Option<f64>,
    /// Fail unless every WebSocket connection selected this subprotocol.
    #[arg(long = "subprotocol", value_name = "NAME")]
    pub subprotocol: Option<String>,
}

#[derive(ClapArgs, Debug, Clone, Default)]
pub struct DiffArgs {
    /// Keys removed (at any depth) from JSON payloads before comparing (comma-separated).
    #[arg(long = "ignore-json-keys", value_name = "KEY,...", value_delimiter = ',')]
    pub ignore_json_keys: Vec<String>,
    /// Messages of one direction less than MS milliseconds apart may come in any order.
    #[arg(long = "ignore-order", value_name = "MS", num_args = 0..=1, default_missing_value = "1000")]
    pub ignore_order: Option<f64>,
    /// Lines of context around each difference.
    #[arg(long = "context", value_name = "N", default_value_t = 3)]
    pub context: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Warning,
    #[default]
    Error,
}

/// Options every view takes (global: before or after the view name).
#[derive(ClapArgs, Debug, Clone, Default)]
pub struct Common {
    /// Read this capture file (tshark-style alias for a FILE argument; repeatable).
    #[arg(short = 'r', long = "read", value_name = "FILE", global = true)]
    pub read: Vec<PathBuf>,

    /// Capture live on this interface (`any` for all) instead of reading files.
    #[arg(short = 'i', long = "interface", value_name = "IFACE", global = true)]
    pub interface: Option<String>,

    /// BPF capture filter for live capture, e.g. 'tcp port 8080'.
    #[arg(short = 'f', long = "filter", value_name = "BPF", global = true)]
    pub bpf: Option<String>,

    /// Stop live capture after this many seconds.
    #[arg(long = "duration", value_name = "SECONDS", global = true)]
    pub duration: Option<f64>,

    /// Live capture snapshot length in bytes.
    #[arg(short = 's', long = "snaplen", value_name = "BYTES", global = true)]
    pub snaplen: Option<i32>,

    /// List the interfaces live capture can use, and exit.
    #[arg(short = 'D', long = "list-interfaces", global = true)]
    pub list_interfaces: bool,

    /// TLS key log (NSS format, as SSLKEYLOGFILE writes it) for decrypting wss:// connections.
    /// SSLKEYLOGFILE is read too when set; pcapng decryption secrets are used as well.
    #[arg(long = "keylog", value_name = "FILE", global = true)]
    pub keylog: Option<PathBuf>,

    /// Also write the packets read (live or from files) to this pcap file.
    #[arg(short = 'w', long = "write", value_name = "FILE", global = true)]
    pub write: Option<PathBuf>,

    /// Write JSON Lines (one record per line) instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Write one JSON array instead of JSON Lines.
    #[arg(long = "json-array", global = true)]
    pub json_array: bool,

    /// Also write a `connection` record when each connection ends (frames view, JSON).
    #[arg(long, global = true)]
    pub conns: bool,

    /// Frames view: every packet, and every TCP connection, not only WebSocket ones.
    #[arg(long, global = true)]
    pub all: bool,

    /// Only records that carry problems.
    #[arg(long, global = true)]
    pub problems: bool,

    /// Only this TCP stream (Wireshark's tcp.stream); repeatable.
    #[arg(long = "stream", value_name = "N", global = true)]
    pub streams: Vec<u64>,

    /// Only connections with this IP address at either end; repeatable.
    #[arg(long = "host", value_name = "ADDR", global = true)]
    pub hosts: Vec<std::net::IpAddr>,

    /// Only connections with this TCP port at either end; repeatable.
    #[arg(long = "port", value_name = "N", global = true)]
    pub ports: Vec<u16>,

    /// Only what this side sent.
    #[arg(long = "from", value_enum, value_name = "SIDE", global = true)]
    pub from: Option<FromSide>,

    /// Only frames/messages with these opcodes (text,binary,continuation,close,ping,pong).
    #[arg(long = "opcode", value_name = "NAME,...", value_delimiter = ',', global = true)]
    pub opcodes: Vec<String>,

    /// Only frames/messages whose decoded text matches this regular expression.
    #[arg(long = "grep", value_name = "PATTERN", global = true)]
    pub grep: Option<String>,

    /// Only messages (and their frames, and polling packets) where PATH exists, or equals
    /// VALUE: `app.event=msg`, `app.mqtt=PUBLISH`, `json.type=subscribe`; repeatable, all must
    /// hold. `app.` paths look into the decoded application packet, `json.` into JSON text.
    #[arg(long = "where", value_name = "PATH[=VALUE]", global = true)]
    pub wheres: Vec<String>,

    /// Stop after this many packets.
    #[arg(short = 'c', long = "count", value_name = "N", global = true)]
    pub count: Option<u64>,

    /// Cut JSON payloads to N bytes (adds "truncated": true).
    #[arg(long = "max-payload", value_name = "N", global = true)]
    pub max_payload: Option<usize>,

    /// Payload in text views: none, a preview, or all of it.
    #[arg(long, value_enum, default_value_t = PayloadMode::Preview, global = true)]
    pub payload: PayloadMode,

    /// Binary payloads in text views as hex or base64.
    #[arg(long, value_enum, default_value_t = BinaryMode::Hex, global = true)]
    pub binary: BinaryMode,

    /// Time column: r relative to the first packet, a absolute, ad absolute with date,
    /// d delta from the previous line (tshark's -t).
    #[arg(short = 't', value_enum, default_value_t = TimeMode::R, global = true)]
    pub time: TimeMode,

    /// Drop what varies between recordings of the same scenario (timestamps, packet
    /// numbers, ports, masking keys, TCP segmentation events; Engine.IO session ids are
    /// numbered), for diffing outputs; `diff` also leaves out pings and pongs.
    #[arg(long, global = true)]
    pub normalize: bool,

    /// Colour: auto (only on a terminal, not with NO_COLOR), always, never.
    #[arg(long, value_enum, default_value_t = ColorMode::Auto, global = true)]
    pub color: ColorMode,

    /// Threads dissecting connections: with 2 or more, connections are spread over N
    /// threads by host pair, while one thread reads and reassembles and another puts the
    /// records back in capture order (output is byte-identical to -j 1), and JSON records
    /// are formatted on a thread of their own. 0, the default, uses the number of cores.
    /// Live capture, --all and follow always dissect on one thread; diff dissects its two
    /// captures side by side, one thread each.
    #[arg(short = 'j', long = "jobs", value_name = "N", default_value_t = 0, global = true)]
    pub jobs: usize,

    /// No progress bar on standard error.
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,

    /// Never resolve names (accepted for tshark habits; wsdissect never resolves).
    #[arg(short = 'n', global = true)]
    pub no_resolve: bool,

    /// Tracked connections at most; beyond it one is evicted, those without payload first
    /// (default 100000).
    #[arg(long = "max-connections", value_name = "N", global = true)]
    pub max_connections: Option<usize>,

    /// Out-of-order bytes buffered per TCP direction (default 4 MiB).
    #[arg(long = "max-stream-buffer", value_name = "BYTES", global = true)]
    pub max_stream_buffer: Option<usize>,

    /// Bytes held for incomplete IP datagrams (default 16 MiB).
    #[arg(long = "max-ip-fragments", value_name = "BYTES", global = true)]
    pub max_ip_fragments: Option<usize>,

    /// Incomplete IP datagrams held at once (default 1024).
    #[arg(long = "max-ip-datagrams", value_name = "N", global = true)]
    pub max_ip_datagrams: Option<usize>,

    /// Bytes held per direction while looking for a frame boundary, after a gap or mid-stream
    /// (default 64 KiB).
    #[arg(long = "max-scan-window", value_name = "BYTES", global = true)]
    pub max_scan_window: Option<usize>,

    /// Pings per side remembered while waiting for their pong (default 64).
    #[arg(long = "max-pending-pings", value_name = "N", global = true)]
    pub max_pending_pings: Option<usize>,

    /// Bytes of one HTTP request or response head (default 64 KiB).
    #[arg(long = "max-http-header", value_name = "BYTES", global = true)]
    pub max_http_header: Option<usize>,

    /// Payload bytes kept for one frame or message (default 16 MiB).
    #[arg(long = "max-message", value_name = "BYTES", global = true)]
    pub max_message: Option<usize>,

    /// Bytes one compressed message may inflate to (default 64 MiB).
    #[arg(long = "max-inflate", value_name = "BYTES", global = true)]
    pub max_inflate: Option<usize>,

    /// Inflated-to-compressed ratio limit, checked past 1 MiB of output (default 1000).
    #[arg(long = "max-inflate-ratio", value_name = "N", global = true)]
    pub max_inflate_ratio: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FromSide {
    Client,
    Server,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum PayloadMode {
    None,
    #[default]
    Preview,
    Full,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum BinaryMode {
    #[default]
    Hex,
    Base64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum TimeMode {
    #[default]
    R,
    A,
    Ad,
    D,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorMode {
    #[default]
    Auto,
    Always,
    Never,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn options_stand_before_or_after_the_view() {
        let a = Args::try_parse_from(["wsdissect", "--json", "messages", "x.pcap"]).unwrap();
        let b = Args::try_parse_from(["wsdissect", "messages", "x.pcap", "--json"]).unwrap();
        assert!(a.common.json && b.common.json);
        assert!(matches!(a.view, Some(ViewCmd::Messages(ref f)) if f.files.len() == 1));
    }

    #[test]
    fn a_file_argument_is_the_frames_view() {
        let a = Args::try_parse_from(["wsdissect", "-t", "a", "x.pcap", "y.pcap"]).unwrap();
        assert!(a.view.is_none());
        assert_eq!(a.files.len(), 2);
    }
}
