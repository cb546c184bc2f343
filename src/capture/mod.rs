//! Stage 1: capture input.
//!
//! Reads pcap (micro/nanosecond, either byte order), pcapng (several sections, several
//! interfaces, `if_tsresol`/`if_tsoffset`), gzip-compressed captures of either (detected by
//! magic bytes), from a file or standard input, streaming through a bounded buffer: a capture
//! is never read whole into memory. With the `live` feature, also from a network interface
//! through libpcap (`live`). `writer` writes records back to a pcap/pcapng file (`-w`).

pub mod linktype;
#[cfg(feature = "live")]
pub mod live;
pub mod reader;
pub mod writer;

pub use linktype::LinkType;
pub use reader::CaptureReader;
pub use writer::PcapWriter;

use std::path::PathBuf;

/// A capture timestamp: seconds and nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub secs: i64,
    /// 0..1_000_000_000
    pub nanos: u32,
}

impl Timestamp {
    pub fn new(secs: i64, nanos: u32) -> Self {
        Timestamp { secs, nanos }
    }

    /// Milliseconds since the epoch (for time windows; not exact past 2^53 ns).
    pub fn as_millis_f64(self) -> f64 {
        self.secs as f64 * 1000.0 + f64::from(self.nanos) / 1e6
    }
}

/// The resolution a capture recorded its timestamps in; decides how many digits `ts` has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TsPrecision {
    #[default]
    Micro,
    Nano,
}

/// Container format of an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    Pcap,
    PcapNg,
}

/// One captured packet, borrowed from the reader's buffer until the next call.
#[derive(Clone, Copy, Debug)]
pub struct CaptureRecord<'a> {
    pub ts: Timestamp,
    pub precision: TsPrecision,
    pub link: LinkType,
    /// pcapng interface id (0 for pcap).
    pub interface: u32,
    /// Bytes on the wire.
    pub origlen: u32,
    /// The captured bytes (`data.len()` is the capture length, never more than `origlen`
    /// unless the file lies, in which case `origlen` is raised to match).
    pub data: &'a [u8],
}

/// Something the reader noticed that does not stop the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaptureNotice {
    /// A pcapng packet named an interface the section never described; it was skipped.
    UnknownInterface { interface: u32 },
    /// A pcapng block of a type we skip on purpose is not reported; this is for a block we
    /// could not make sense of (bad length, bad body) and skipped.
    SkippedBlock { offset: u64, reason: String },
}

/// Why reading a capture stopped.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: no such file")]
    NotFound { path: PathBuf },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a capture file (expected pcap or pcapng, maybe gzip, zstd or lz4 compressed; starts with {magic})")]
    NotACapture { path: PathBuf, magic: String },
    #[error("{path}: capture is truncated at byte {offset} (in the middle of a record); {packets} packets read before it are valid")]
    Truncated { path: PathBuf, offset: u64, packets: u64 },
    #[error("{path}: corrupt capture at byte {offset}: {reason}")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
}
