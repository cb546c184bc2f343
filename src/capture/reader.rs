//! Streaming pcap/pcapng reader over any `Read` (file, gzip, stdin), on pcap-parser's
//! buffered readers: records are borrowed from a bounded buffer that grows only as far as the
//! largest block needs (up to [`MAX_BLOCK`]).

use super::{
    CaptureError, CaptureFormat, CaptureNotice, CaptureRecord, LinkType, Timestamp, TsPrecision,
};
use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Initial buffer size.
const BUFFER: usize = 1 << 20;
pub use crate::limits::{MAX_BLOCK, MAX_SECRETS};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];

/// A pcapng interface description, as far as timestamps and link types need it.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    /// Timestamp units per second.
    units: u64,
    offset: i64,
    precision: TsPrecision,
    snaplen: u32,
}

/// A packet found by `next_block`, located in the reader's buffer.
struct Found {
    ts: Timestamp,
    precision: TsPrecision,
    link: LinkType,
    interface: u32,
    origlen: u32,
    start: usize,
    len: usize,
}

/// Reads one capture input, record by record.
pub struct CaptureReader {
    path: PathBuf,
    format: CaptureFormat,
    inner: Box<dyn PcapReaderIterator>,
    /// Bytes of the block returned last, consumed at the next call (the record borrows them).
    pending_consume: usize,
    capacity: usize,
    // pcap
    link: LinkType,
    precision: TsPrecision,
    // pcapng
    interfaces: Vec<Interface>,
    unknown_interfaces: BTreeSet<u32>,
    notices: Vec<CaptureNotice>,
    secrets: Vec<(u32, Vec<u8>)>,
    /// Bytes in `secrets` and in those already taken.
    secrets_bytes: usize,
    packets: u64,
    /// The input's last read error (see [`KeepError`]).
    read_error: Rc<RefCell<Option<io::Error>>>,
}

/// Fills the caller's buffer as far as the source allows, so that small reads from pipes or
/// decompressors do not look like a short file to the parser.
struct FullRead<R>(R);

impl<R: Read> Read for FullRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.0.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if n > 0 => {
                    // Report what was read; the error comes back on the next call.
                    let _ = e;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

/// Keeps the last read error for the message: pcap-parser reports any as `ReadError`, and
/// "read error" tells a user nothing about a corrupt or cut gzip stream.
struct KeepError<R> {
    inner: R,
    last: Rc<RefCell<Option<io::Error>>>,
}

impl<R: Read> Read for KeepError<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            *self.last.borrow_mut() = Some(io::Error::new(e.kind(), e.to_string()));
        })
    }
}

/// Reads up to `n` bytes without losing them: returns them and a reader that yields them first.
fn peek(mut r: Box<dyn Read>, n: usize) -> io::Result<(Vec<u8>, Box<dyn Read>)> {
    let mut head = vec![0u8; n];
    let got = FullRead(&mut r).read(&mut head)?;
    head.truncate(got);
    let chained: Box<dyn Read> = Box::new(io::Cursor::new(head.clone()).chain(r));
    Ok((head, chained))
}

/// The error for input that could not be read: a stream that ends early (a cut gzip file) is
/// a truncated capture; anything else is told as the reader said it.
fn read_failure(
    path: &Path,
    offset: u64,
    packets: u64,
    kept: &RefCell<Option<io::Error>>,
) -> CaptureError {
    let path = path.to_path_buf();
    match kept.borrow_mut().take() {
        Some(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            CaptureError::Truncated { path, offset, packets }
        }
        Some(e) => CaptureError::Io { path, source: e },
        None => CaptureError::Io { path, source: io::Error::other("read error") },
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

impl CaptureReader {
    /// Opens a path (`-` is standard input); gzip, zstd and LZ4 are detected by magic bytes.
    pub fn open(path: &Path) -> Result<CaptureReader, CaptureError> {
        if path.as_os_str() == "-" {
            return Self::from_reader(path, Box::new(io::stdin()));
        }
        let file = File::open(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => CaptureError::NotFound { path: path.to_path_buf() },
            _ => CaptureError::Io { path: path.to_path_buf(), source: e },
        })?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(CaptureError::Io {
                path: path.to_path_buf(),
                source: io::Error::other("is a directory"),
            });
        }
        Self::from_reader(path, Box::new(file))
    }

    /// Reads from any byte source; `name` is used in errors.
    pub fn from_reader(name: &Path, input: Box<dyn Read>) -> Result<CaptureReader, CaptureError> {
        let path = name.to_path_buf();
        let io_err = |e: io::Error| CaptureError::Io { path: path.clone(), source: e };
        let (head, input) = peek(input, 4).map_err(io_err)?;
        let (kind, inner): (&str, Box<dyn Read>) = if head.starts_with(&GZIP_MAGIC) {
            ("gzip", Box::new(flate2::read::MultiGzDecoder::new(input)))
        } else if head.starts_with(&ZSTD_MAGIC) {
            // Decodes every frame of the file, as `zstd -d` does.
            let zstd = zstd::stream::read::Decoder::new(input).map_err(io_err)?;
            ("zstd", Box::new(zstd))
        } else if head.starts_with(&LZ4_MAGIC) {
            ("lz4", Box::new(lz4_flex::frame::FrameDecoder::new(input)))
        } else {
            return Self::from_sniffed(path, &head, input);
        };
        let (inner_head, inner) = peek(inner, 4).map_err(|e| match e.kind() {
            // Cut before its first block ended.
            io::ErrorKind::UnexpectedEof => {
                CaptureError::Truncated { path: path.clone(), offset: 0, packets: 0 }
            }
            _ => CaptureError::Corrupt {
                path: path.clone(),
                offset: 0,
                reason: format!("bad {kind} data: {e}"),
            },
        })?;
        Self::from_sniffed(path, &inner_head, inner)
    }

    fn from_sniffed(
        path: PathBuf,
        head: &[u8],
        input: Box<dyn Read>,
    ) -> Result<CaptureReader, CaptureError> {
        let read_error = Rc::new(RefCell::new(None));
        let input: Box<dyn Read> =
            Box::new(KeepError { inner: FullRead(input), last: read_error.clone() });
        let magic_le = head.get(..4).map(|m| u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
        let format = match magic_le {
            Some(0xa1b2c3d4 | 0xd4c3b2a1 | 0xa1b23c4d | 0x4d3cb2a1 | 0xa1b2cd34 | 0x34cdb2a1) => {
                CaptureFormat::Pcap
            }
            Some(0x0a0d0d0a) => CaptureFormat::PcapNg,
            _ => {
                let magic =
                    if head.is_empty() { "nothing (empty file)".to_string() } else { hex(head) };
                return Err(CaptureError::NotACapture { path, magic });
            }
        };
        let opened: Result<Box<dyn PcapReaderIterator>, PcapError<&'static [u8]>> = match format {
            CaptureFormat::Pcap => LegacyPcapReader::new(BUFFER, input).map(|r| Box::new(r) as _),
            CaptureFormat::PcapNg => PcapNGReader::new(BUFFER, input).map(|r| Box::new(r) as _),
        };
        let inner = opened.map_err(|e| match e {
            PcapError::Incomplete(_) | PcapError::UnexpectedEof => {
                CaptureError::Truncated { path: path.clone(), offset: 0, packets: 0 }
            }
            PcapError::ReadError => read_failure(&path, 0, 0, &read_error),
            other => CaptureError::Corrupt {
                path: path.clone(),
                offset: 0,
                reason: format!("bad file header: {other:?}"),
            },
        })?;
        Ok(CaptureReader {
            path,
            format,
            inner,
            pending_consume: 0,
            capacity: BUFFER,
            link: LinkType::ETHERNET,
            precision: TsPrecision::Micro,
            interfaces: Vec::new(),
            unknown_interfaces: BTreeSet::new(),
            notices: Vec::new(),
            secrets: Vec::new(),
            read_error,
            secrets_bytes: 0,
            packets: 0,
        })
    }

    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// Bytes of the (decompressed) capture consumed so far.
    pub fn bytes_read(&self) -> u64 {
        (self.inner.consumed() + self.pending_consume) as u64
    }

    /// Notices gathered since the last call.
    pub fn take_notices(&mut self) -> Vec<CaptureNotice> {
        std::mem::take(&mut self.notices)
    }

    /// pcapng Decryption Secrets Blocks seen so far: (secrets type, data).
    pub fn take_decryption_secrets(&mut self) -> Vec<(u32, Vec<u8>)> {
        std::mem::take(&mut self.secrets)
    }

    /// Next packet, `Ok(None)` at a clean end of input.
    pub fn next_packet(&mut self) -> Result<Option<CaptureRecord<'_>>, CaptureError> {
        let found = loop {
            if self.pending_consume > 0 {
                // Not `consume`, which shifts the rest of the buffer down whenever more than
                // half of it is consumed (copying the capture a second time): the refill after
                // the last whole block moves only the part of a block left.
                self.inner.consume_noshift(self.pending_consume);
                self.pending_consume = 0;
            }
            match self.next_block()? {
                Step::Packet(found) => break found,
                Step::Skip => continue,
                Step::End => return Ok(None),
            }
        };
        self.packets += 1;
        let data = self.inner.data();
        let data = data.get(found.start..found.start + found.len).unwrap_or_default();
        Ok(Some(CaptureRecord {
            ts: found.ts,
            precision: found.precision,
            link: found.link,
            interface: found.interface,
            origlen: found.origlen.max(data.len() as u32),
            data,
        }))
    }

    fn offset(&self) -> u64 {
        self.inner.consumed() as u64
    }

    fn read_failure(&self) -> CaptureError {
        read_failure(&self.path, self.offset(), self.packets, &self.read_error)
    }

    /// Reads one block; a packet is located in the buffer, everything else handled here.
    fn next_block(&mut self) -> Result<Step, CaptureError> {
        if self.format == CaptureFormat::PcapNg
            && short_process_information_block(self.inner.data())
        {
            return Err(CaptureError::Corrupt {
                path: self.path.clone(),
                offset: self.offset(),
                reason: "a pcapng block shorter than its 12-byte frame".into(),
            });
        }
        let base = self.inner.data().as_ptr() as usize;
        let result = self.inner.next();
        let (size, block) = match result {
            Ok(ok) => ok,
            Err(PcapError::Eof) => return Ok(Step::End),
            Err(PcapError::Incomplete(_)) => {
                return match self.inner.refill() {
                    Ok(()) => Ok(Step::Skip),
                    Err(_) => Err(self.read_failure()),
                };
            }
            Err(PcapError::UnexpectedEof) => {
                return Err(CaptureError::Truncated {
                    path: self.path.clone(),
                    offset: self.offset(),
                    packets: self.packets,
                });
            }
            Err(PcapError::BufferTooSmall) => {
                if self.capacity >= MAX_BLOCK {
                    return Err(CaptureError::Corrupt {
                        path: self.path.clone(),
                        offset: self.offset(),
                        reason: format!("a block is larger than {} MiB", MAX_BLOCK >> 20),
                    });
                }
                self.capacity = (self.capacity * 2).min(MAX_BLOCK);
                self.inner.grow(self.capacity);
                return match self.inner.refill() {
                    Ok(()) => Ok(Step::Skip),
                    Err(_) => Err(self.read_failure()),
                };
            }
            Err(PcapError::ReadError) => return Err(self.read_failure()),
            Err(e) => {
                let reason = match e {
                    PcapError::NomError(_, kind) => format!("unparsable block ({kind:?})"),
                    PcapError::OwnedNomError(_, kind) => format!("unparsable block ({kind:?})"),
                    PcapError::HeaderNotRecognized => "header not recognized".to_string(),
                    _ => "unparsable block".to_string(),
                };
                let offset = self.inner.consumed() as u64;
                return Err(CaptureError::Corrupt { path: self.path.clone(), offset, reason });
            }
        };
        let located = |data: &[u8], len: usize| -> (usize, usize) {
            let start = (data.as_ptr() as usize).saturating_sub(base);
            (start, len.min(data.len()))
        };
        let step = match block {
            PcapBlockOwned::LegacyHeader(h) => {
                self.link = LinkType(h.network.0 as u32);
                self.precision = if h.is_nanosecond_precision() {
                    TsPrecision::Nano
                } else {
                    TsPrecision::Micro
                };
                Step::Skip
            }
            PcapBlockOwned::Legacy(b) => {
                let nanos = match self.precision {
                    TsPrecision::Nano => b.ts_usec.min(999_999_999),
                    TsPrecision::Micro => b.ts_usec.min(999_999) * 1000,
                };
                let (start, len) = located(b.data, b.caplen as usize);
                Step::Packet(Found {
                    ts: Timestamp::new(i64::from(b.ts_sec), nanos),
                    precision: self.precision,
                    link: self.link,
                    interface: 0,
                    origlen: b.origlen,
                    start,
                    len,
                })
            }
            PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                self.interfaces.clear();
                self.unknown_interfaces.clear();
                Step::Skip
            }
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                let units = units_per_second(idb.if_tsresol).unwrap_or(1_000_000);
                self.interfaces.push(Interface {
                    link: LinkType(idb.linktype.0 as u32),
                    units,
                    offset: idb.if_tsoffset,
                    precision: if units > 1_000_000 {
                        TsPrecision::Nano
                    } else {
                        TsPrecision::Micro
                    },
                    snaplen: idb.snaplen,
                });
                Step::Skip
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                match self.interfaces.get(epb.if_id as usize) {
                    None => {
                        if self.unknown_interfaces.insert(epb.if_id) {
                            self.notices
                                .push(CaptureNotice::UnknownInterface { interface: epb.if_id });
                        }
                        Step::Skip
                    }
                    Some(iface) => {
                        let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                        let (start, len) = located(epb.data, epb.caplen as usize);
                        Step::Packet(Found {
                            ts: scale_ts(raw, iface.units, iface.offset),
                            precision: iface.precision,
                            link: iface.link,
                            interface: epb.if_id,
                            origlen: epb.origlen,
                            start,
                            len,
                        })
                    }
                }
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => match self.interfaces.first() {
                None => {
                    if self.unknown_interfaces.insert(0) {
                        self.notices.push(CaptureNotice::UnknownInterface { interface: 0 });
                    }
                    Step::Skip
                }
                Some(iface) => {
                    let snap = if iface.snaplen == 0 { usize::MAX } else { iface.snaplen as usize };
                    let (start, len) = located(spb.data, (spb.origlen as usize).min(snap));
                    Step::Packet(Found {
                        ts: Timestamp::default(),
                        precision: iface.precision,
                        link: iface.link,
                        interface: 0,
                        origlen: spb.origlen,
                        start,
                        len,
                    })
                }
            },
            PcapBlockOwned::NG(Block::DecryptionSecrets(dsb)) => {
                let len = (dsb.secrets_len as usize).min(dsb.data.len());
                if self.secrets_bytes.saturating_add(len) > MAX_SECRETS {
                    self.notices.push(CaptureNotice::SkippedBlock {
                        offset: self.offset(),
                        reason: format!(
                            "decryption secrets past {} MiB in all are not kept",
                            MAX_SECRETS >> 20
                        ),
                    });
                } else {
                    self.secrets_bytes += len;
                    self.secrets.push((dsb.secrets_type.0, dsb.data[..len].to_vec()));
                }
                Step::Skip
            }
            PcapBlockOwned::NG(_) => Step::Skip,
        };
        self.pending_consume = size;
        Ok(step)
    }
}

enum Step {
    Packet(Found),
    Skip,
    End,
}

/// A pcapng timestamp in `units` per second, plus the interface's offset in seconds.
fn scale_ts(raw: u64, units: u64, offset: i64) -> Timestamp {
    let secs = raw / units;
    let frac = raw % units;
    let nanos = (u128::from(frac) * 1_000_000_000 / u128::from(units)) as u32;
    Timestamp::new((secs as i64).saturating_add(offset), nanos)
}

/// Units per second for an `if_tsresol` byte: 10^n, or 2^n when the top bit is set.
///
/// Written here rather than taken from pcap-parser's `ts_resolution`, which checks the exponent
/// before masking off the top bit and so rejects every binary resolution (`0x80 | n`).
fn units_per_second(tsresol: u8) -> Option<u64> {
    let exp = u32::from(tsresol & 0x7f);
    let units = if tsresol & 0x80 == 0 { 10u64.checked_pow(exp)? } else { 1u64.checked_shl(exp)? };
    Some(units)
}

/// Whether the next pcapng block is a Process Information Block (type 0x80000001) whose
/// length is below the 12 bytes every block takes: pcap-parser 0.17 subtracts 12 from it
/// unchecked for this block type and panics (found by fuzzing). The type is written in the
/// section's byte order, so its bytes also tell how to read the length.
fn short_process_information_block(data: &[u8]) -> bool {
    let (Some(kind), Some(len)) = (data.get(..4), data.get(4..8)) else { return false };
    let len: [u8; 4] = len.try_into().unwrap_or([0xff; 4]);
    match kind {
        [0x01, 0x00, 0x00, 0x80] => u32::from_le_bytes(len) < 12,
        [0x80, 0x00, 0x00, 0x01] => u32::from_be_bytes(len) < 12,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pcap(nano: bool, big: bool, link: u32, packets: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let magic: u32 = if nano { 0xa1b23c4d } else { 0xa1b2c3d4 };
        let w32 = |v: u32| if big { v.to_be_bytes() } else { v.to_le_bytes() };
        let w16 = |v: u16| if big { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut out = Vec::new();
        out.extend_from_slice(&w32(magic));
        out.extend_from_slice(&w16(2));
        out.extend_from_slice(&w16(4));
        out.extend_from_slice(&w32(0));
        out.extend_from_slice(&w32(0));
        out.extend_from_slice(&w32(65535));
        out.extend_from_slice(&w32(link));
        for (s, frac, data) in packets {
            out.extend_from_slice(&w32(*s));
            out.extend_from_slice(&w32(*frac));
            out.extend_from_slice(&w32(data.len() as u32));
            out.extend_from_slice(&w32(data.len() as u32 + 10));
            out.extend_from_slice(data);
        }
        out
    }

    type Packet = (Timestamp, TsPrecision, LinkType, u32, Vec<u8>, u32);

    fn read_all(bytes: Vec<u8>) -> (Vec<Packet>, Option<CaptureError>) {
        let mut r =
            match CaptureReader::from_reader(Path::new("t"), Box::new(io::Cursor::new(bytes))) {
                Ok(r) => r,
                Err(e) => return (Vec::new(), Some(e)),
            };
        let mut out = Vec::new();
        loop {
            match r.next_packet() {
                Ok(Some(p)) => {
                    out.push((p.ts, p.precision, p.link, p.interface, p.data.to_vec(), p.origlen))
                }
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn pcap_micro_nano_both_byte_orders() {
        for nano in [false, true] {
            for big in [false, true] {
                let bytes = pcap(nano, big, 1, &[(10, 500, b"abc"), (11, 7, b"defg")]);
                let (pkts, err) = read_all(bytes);
                assert!(err.is_none(), "{err:?}");
                assert_eq!(pkts.len(), 2);
                assert_eq!(pkts[0].4, b"abc");
                assert_eq!(pkts[0].5, 13);
                let want = if nano { 500 } else { 500_000 };
                assert_eq!(pkts[0].0, Timestamp::new(10, want));
                assert_eq!(pkts[0].1, if nano { TsPrecision::Nano } else { TsPrecision::Micro });
                assert_eq!(pkts[1].2, LinkType::ETHERNET);
            }
        }
    }

    #[test]
    fn gzip_is_detected_by_magic() {
        let bytes = pcap(false, false, 228, &[(1, 2, b"xyz")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        let (pkts, err) = read_all(gz.finish().unwrap());
        assert!(err.is_none());
        assert_eq!(pkts[0].2, LinkType::IPV4);
        assert_eq!(pkts[0].4, b"xyz");
    }

    #[test]
    fn not_a_capture_and_empty() {
        let (_, err) = read_all(b"hello world\n".to_vec());
        assert!(matches!(err, Some(CaptureError::NotACapture { .. })), "{err:?}");
        let (_, err) = read_all(Vec::new());
        assert!(
            matches!(err, Some(CaptureError::NotACapture { ref magic, .. }) if magic.contains("empty"))
        );
    }

    #[test]
    fn truncated_mid_record_keeps_earlier_records() {
        let mut bytes = pcap(false, false, 1, &[(1, 0, b"first"), (2, 0, b"second-packet")]);
        bytes.truncate(bytes.len() - 4);
        let (pkts, err) = read_all(bytes);
        assert_eq!(pkts.len(), 1);
        assert!(matches!(err, Some(CaptureError::Truncated { packets: 1, .. })), "{err:?}");
    }

    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let pad = (4 - body.len() % 4) % 4;
        let total = (12 + body.len() + pad) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(&kind.to_le_bytes());
        b.extend_from_slice(&total.to_le_bytes());
        b.extend_from_slice(body);
        b.extend(std::iter::repeat_n(0, pad));
        b.extend_from_slice(&total.to_le_bytes());
        b
    }

    fn shb() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&0x1a2b3c4du32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes());
        block(0x0a0d0d0a, &body)
    }

    fn idb(link: u16, tsresol: Option<u8>, tsoffset: Option<i64>) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&link.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        if let Some(r) = tsresol {
            body.extend_from_slice(&9u16.to_le_bytes());
            body.extend_from_slice(&1u16.to_le_bytes());
            body.extend_from_slice(&[r, 0, 0, 0]);
        }
        if let Some(o) = tsoffset {
            body.extend_from_slice(&14u16.to_le_bytes());
            body.extend_from_slice(&8u16.to_le_bytes());
            body.extend_from_slice(&o.to_le_bytes());
        }
        body.extend_from_slice(&[0, 0, 0, 0]);
        block(1, &body)
    }

    fn epb(if_id: u32, ts: u64, data: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&if_id.to_le_bytes());
        body.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ts as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        body.extend(std::iter::repeat_n(0, (4 - data.len() % 4) % 4));
        block(6, &body)
    }

    #[test]
    fn gzip_cut_short_is_truncated_and_corrupt_gzip_says_why() {
        use flate2::{write::GzEncoder, Compression};
        use std::io::Write;
        let mut f = shb();
        f.extend(idb(1, None, None));
        for _ in 0..200 {
            f.extend(epb(0, 1, &[0u8; 60]));
        }
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&f).unwrap();
        let gz = gz.finish().unwrap();
        let (packets, err) = read_all(gz[..gz.len() - 12].to_vec());
        assert!(!packets.is_empty());
        assert!(matches!(err, Some(CaptureError::Truncated { .. })), "{err:?}");
        // Bytes changed inside the deflate stream.
        let mut bad = gz.clone();
        for b in &mut bad[40..60] {
            *b ^= 0x55;
        }
        let (_, err) = read_all(bad);
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(!text.is_empty() && !text.ends_with("read error"), "{text}");
    }

    #[test]
    fn zstd_and_lz4_captures_read_whole_and_cut_short_is_truncated() {
        use std::io::Write;
        let mut f = shb();
        f.extend(idb(1, None, None));
        for i in 0..3000u32 {
            f.extend(epb(0, u64::from(i), &[i as u8; 60]));
        }
        let (plain, err) = read_all(f.clone());
        assert!(err.is_none());
        let zstd_file = {
            // Two frames, as concatenated or parallel compressors write them.
            let half = f.len() / 2;
            let mut z = zstd::stream::encode_all(&f[..half], 3).unwrap();
            z.extend(zstd::stream::encode_all(&f[half..], 3).unwrap());
            z
        };
        let lz4_file = {
            use lz4_flex::frame::{BlockSize, FrameEncoder, FrameInfo};
            let info = FrameInfo::new().block_size(BlockSize::Max64KB);
            let mut w = FrameEncoder::with_frame_info(info, Vec::new());
            w.write_all(&f).unwrap();
            w.finish().unwrap()
        };
        for (name, file) in [("zstd", zstd_file), ("lz4", lz4_file)] {
            let (packets, err) = read_all(file.clone());
            assert!(err.is_none(), "{name}: {err:?}");
            assert_eq!(packets.len(), plain.len(), "{name}");
            let (packets, err) = read_all(file[..file.len() * 2 / 3].to_vec());
            assert!(!packets.is_empty() && packets.len() < plain.len(), "{name}");
            assert!(matches!(err, Some(CaptureError::Truncated { .. })), "{name}: {err:?}");
            let mut bad = file.clone();
            for b in &mut bad[12..40] {
                *b ^= 0x55;
            }
            let (_, err) = read_all(bad);
            let text = err.map(|e| e.to_string()).unwrap_or_default();
            assert!(!text.is_empty() && !text.ends_with("read error"), "{name}: {text}");
        }
    }

    #[test]
    fn short_process_information_block_is_corrupt_not_a_panic() {
        // The input fuzzing found (fuzz/regressions/capture_reader/): a Process Information
        // Block of length 5, which pcap-parser would take 12 from.
        let found: &[u8] = &[
            0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x1d, 0, 0, 0, 0x01, 0, 0, 0x80, 5, 0, 0, 0, 0, 0,
            0, 0, 0, 0x20, 0, 0, 0x36, 0, 0,
        ];
        let (packets, err) = read_all(found.to_vec());
        assert!(packets.is_empty());
        assert!(matches!(err, Some(CaptureError::Corrupt { .. })), "{err:?}");
        // Every short length, in both byte orders, after a packet that still comes out.
        for len in 0..12u32 {
            let mut f = shb();
            f.extend(idb(1, None, None));
            f.extend(epb(0, 1, &[0u8; 60]));
            f.extend_from_slice(&0x8000_0001u32.to_le_bytes());
            f.extend_from_slice(&len.to_le_bytes());
            f.extend_from_slice(&[0; 16]);
            let (packets, err) = read_all(f);
            assert_eq!(packets.len(), 1, "length {len}");
            assert!(matches!(err, Some(CaptureError::Corrupt { .. })), "length {len}: {err:?}");
        }
        assert!(short_process_information_block(&[0x80, 0, 0, 1, 0, 0, 0, 8]));
        assert!(!short_process_information_block(&[0x80, 0, 0, 1, 0, 0, 0, 12]));
        assert!(!short_process_information_block(&[1, 0, 0, 0x80, 12, 0, 0, 0]));
        assert!(!short_process_information_block(&[6, 0, 0, 0, 8, 0, 0, 0]));
    }

    #[test]
    fn pcapng_sections_interfaces_resolution_and_offset() {
        let mut f = shb();
        f.extend(idb(1, None, None));
        f.extend(epb(0, 1_500_000, b"one"));
        f.extend(shb());
        f.extend(idb(228, Some(9), None));
        f.extend(idb(229, Some(0x80 | 20), Some(100)));
        f.extend(epb(1, 2_000_000_123, b"two"));
        f.extend(epb(0, 3_000_000_001, b"three"));
        f.extend(epb(7, 1, b"nobody"));
        let (pkts, err) = read_all(f);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(pkts.len(), 3);
        assert_eq!(
            (pkts[0].0, pkts[0].2, pkts[0].4.as_slice()),
            (Timestamp::new(1, 500_000_000), LinkType::ETHERNET, &b"one"[..])
        );
        // 2_000_000_123 units of 2^-20 s is 1907 s and 365691/1048576 s, plus the 100 s offset.
        assert_eq!(pkts[1].0, Timestamp::new(2007, 348_750_114));
        assert_eq!(pkts[1].2, LinkType::IPV6);
        assert_eq!(
            (pkts[2].0, pkts[2].1, pkts[2].2),
            (Timestamp::new(3, 1), TsPrecision::Nano, LinkType::IPV4)
        );
    }

    #[test]
    fn pcapng_unknown_interface_and_absurd_length() {
        let mut f = shb();
        f.extend(idb(1, None, None));
        f.extend(epb(3, 5, b"x"));
        let mut r =
            CaptureReader::from_reader(Path::new("t"), Box::new(io::Cursor::new(f))).unwrap();
        assert!(r.next_packet().unwrap().is_none());
        assert_eq!(r.take_notices(), vec![CaptureNotice::UnknownInterface { interface: 3 }]);
        let mut f = shb();
        f.extend(idb(1, None, None));
        f.extend_from_slice(&6u32.to_le_bytes());
        f.extend_from_slice(&0xfffffff0u32.to_le_bytes());
        f.extend_from_slice(&[0u8; 64]);
        let (_, err) = read_all(f);
        assert!(
            matches!(err, Some(CaptureError::Corrupt { .. } | CaptureError::Truncated { .. })),
            "{err:?}"
        );
    }

    /// Regression: Decryption Secrets Blocks were all kept for the whole run (nothing takes
    /// them), so a gzip'd pcapng of large secrets blocks, a few hundred KB, held hundreds of MB.
    #[test]
    fn decryption_secrets_are_bounded() {
        let secrets = |n: usize| {
            let mut body = Vec::new();
            body.extend_from_slice(&0x544c_534bu32.to_le_bytes()); // TLS key log
            body.extend_from_slice(&(n as u32).to_le_bytes());
            body.extend(std::iter::repeat_n(b'k', n));
            body.extend(std::iter::repeat_n(0, (4 - n % 4) % 4));
            block(10, &body)
        };
        let mut f = shb();
        f.extend(secrets(100));
        for _ in 0..3 {
            f.extend(secrets(7 << 20));
        }
        let mut r =
            CaptureReader::from_reader(Path::new("t"), Box::new(io::Cursor::new(f))).unwrap();
        assert!(r.next_packet().unwrap().is_none());
        let kept = r.take_decryption_secrets();
        assert_eq!(
            kept.iter().map(|(_, d)| d.len()).collect::<Vec<_>>(),
            vec![100, 7 << 20, 7 << 20]
        );
        assert!(matches!(r.take_notices().as_slice(), [CaptureNotice::SkippedBlock { .. }]));
    }
}
