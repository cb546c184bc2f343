//! Writes capture records to a file (`-w`): pcap with the first packet's link type and
//! timestamp precision, so that tcpdump, Wireshark and wsdissect itself read it back.
//!
//! pcap holds one link type per file. When a later packet has another link type or precision
//! (several input files, a pcapng with several interfaces), the file written so far is
//! rewritten as pcapng, with one interface per (link type, precision), and writing goes on in
//! pcapng. A name ending in `.pcapng` gets pcapng from the start. Rewriting needs a regular
//! file; on a pipe or device a second link type is an error that says so.

use super::{CaptureRecord, LinkType, Timestamp, TsPrecision};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// The snapshot length written in headers: tcpdump's maximum.
const SNAPLEN: u32 = 262_144;

const PCAP_MAGIC_MICRO: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NANO: u32 = 0xa1b2_3c4d;

/// The format of the file so far.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Format {
    /// Nothing written yet.
    Empty {
        pcapng: bool,
    },
    Pcap {
        link: LinkType,
        precision: TsPrecision,
    },
    /// Interface descriptions written so far, in id order.
    PcapNg {
        interfaces: Vec<(LinkType, TsPrecision)>,
    },
}

/// A capture file being written.
pub struct PcapWriter {
    path: PathBuf,
    out: BufWriter<File>,
    format: Format,
    packets: u64,
}

fn err_at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl PcapWriter {
    /// Creates (or truncates) `path`. Nothing is written until the first packet or `finish`.
    pub fn create(path: &Path) -> io::Result<PcapWriter> {
        if path.as_os_str() == "-" {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "-w - would mix packets with the output on standard output; give a file name",
            ));
        }
        let file = File::create(path).map_err(|e| err_at(path, e))?;
        let pcapng = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("pcapng"));
        Ok(PcapWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(256 << 10, file),
            format: Format::Empty { pcapng },
            packets: 0,
        })
    }

    /// Packets written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Appends one packet.
    pub fn write(&mut self, rec: &CaptureRecord<'_>) -> io::Result<()> {
        self.write_inner(rec).map_err(|e| err_at(&self.path, e))
    }

    fn write_inner(&mut self, rec: &CaptureRecord<'_>) -> io::Result<()> {
        let key = (rec.link, rec.precision);
        match &self.format {
            Format::Empty { pcapng: false } => {
                write_pcap_header(&mut self.out, rec.link, rec.precision)?;
                self.format = Format::Pcap { link: rec.link, precision: rec.precision };
            }
            Format::Empty { pcapng: true } => {
                write_shb(&mut self.out)?;
                self.format = Format::PcapNg { interfaces: Vec::new() };
            }
            Format::Pcap { link, precision } if (*link, *precision) != key => {
                self.rewrite_as_pcapng(*link, *precision, rec)?;
            }
            _ => {}
        }
        match &mut self.format {
            Format::Pcap { precision, .. } => {
                write_pcap_record(&mut self.out, rec, *precision)?;
            }
            Format::PcapNg { interfaces } => {
                let id = match interfaces.iter().position(|i| *i == key) {
                    Some(id) => id,
                    None => {
                        write_idb(&mut self.out, rec.link, rec.precision)?;
                        interfaces.push(key);
                        interfaces.len() - 1
                    }
                };
                write_epb(&mut self.out, id as u32, rec.ts, rec.precision, rec.origlen, rec.data)?;
            }
            // invariant: the branch above turns Empty into Pcap or PcapNg before any record.
            Format::Empty { .. } => unreachable!("a header was written above"),
        }
        self.packets += 1;
        Ok(())
    }

    /// Pushes buffered packets to the file (live capture calls this when idle).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush().map_err(|e| err_at(&self.path, e))
    }

    /// Writes the header if no packet came (with `link`, for live capture, else Ethernet)
    /// and flushes.
    pub fn finish(mut self, link: Option<LinkType>) -> io::Result<()> {
        let link = link.unwrap_or(LinkType::ETHERNET);
        let r = match self.format {
            Format::Empty { pcapng: false } => {
                write_pcap_header(&mut self.out, link, TsPrecision::Micro)
            }
            Format::Empty { pcapng: true } => write_shb(&mut self.out)
                .and_then(|()| write_idb(&mut self.out, link, TsPrecision::Micro)),
            _ => Ok(()),
        };
        r.and_then(|()| self.out.flush()).map_err(|e| err_at(&self.path, e))
    }

    /// Rewrites the pcap written so far as pcapng (interface 0 = the pcap's link type), then
    /// continues in pcapng; `rec` is the packet that needs it.
    fn rewrite_as_pcapng(
        &mut self,
        link: LinkType,
        precision: TsPrecision,
        rec: &CaptureRecord<'_>,
    ) -> io::Result<()> {
        self.out.flush()?;
        let regular = fs::metadata(&self.path).is_ok_and(|m| m.is_file());
        if !regular {
            return Err(io::Error::other(format!(
                "packet {} has link type {} but the file so far is pcap with link type {}; \
                 a capture with several link types needs pcapng, and this is not a regular \
                 file that can be rewritten (give a regular file, or a name ending in .pcapng)",
                self.packets + 1,
                rec.link.0,
                link.0
            )));
        }
        let tmp = self.path.with_file_name(format!(
            ".{}.wsdissect-tmp",
            self.path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
        ));
        let result = (|| -> io::Result<()> {
            let mut src = BufReader::new(File::open(&self.path)?);
            let mut dst = BufWriter::new(File::create(&tmp)?);
            write_shb(&mut dst)?;
            write_idb(&mut dst, link, precision)?;
            copy_pcap_as_pcapng(&mut src, &mut dst, precision)?;
            dst.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            fs::rename(&tmp, &self.path)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let file = OpenOptions::new().append(true).open(&self.path)?;
        self.out = BufWriter::with_capacity(256 << 10, file);
        self.format = Format::PcapNg { interfaces: vec![(link, precision)] };
        Ok(())
    }
}

fn write_pcap_header(w: &mut impl Write, link: LinkType, precision: TsPrecision) -> io::Result<()> {
    let magic = match precision {
        TsPrecision::Micro => PCAP_MAGIC_MICRO,
        TsPrecision::Nano => PCAP_MAGIC_NANO,
    };
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&magic.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    h.extend_from_slice(&SNAPLEN.to_le_bytes());
    h.extend_from_slice(&link.0.to_le_bytes());
    w.write_all(&h)
}

/// Seconds as pcap's unsigned 32 bits (times before 1970 or after 2106 do not fit; they
/// wrap, as they would in any pcap writer).
fn pcap_secs(ts: Timestamp) -> u32 {
    ts.secs as u32
}

fn write_pcap_record(
    w: &mut impl Write,
    rec: &CaptureRecord<'_>,
    precision: TsPrecision,
) -> io::Result<()> {
    let frac = match precision {
        TsPrecision::Micro => rec.ts.nanos / 1000,
        TsPrecision::Nano => rec.ts.nanos,
    };
    let caplen = rec.data.len() as u32;
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&pcap_secs(rec.ts).to_le_bytes());
    h[4..8].copy_from_slice(&frac.to_le_bytes());
    h[8..12].copy_from_slice(&caplen.to_le_bytes());
    h[12..16].copy_from_slice(&rec.origlen.max(caplen).to_le_bytes());
    w.write_all(&h)?;
    w.write_all(rec.data)
}

/// Section header block: little-endian, version 1.0, section length unknown.
fn write_shb(w: &mut impl Write) -> io::Result<()> {
    let mut b = Vec::with_capacity(28);
    b.extend_from_slice(&0x0a0d_0d0au32.to_le_bytes());
    b.extend_from_slice(&28u32.to_le_bytes());
    b.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&(-1i64).to_le_bytes());
    b.extend_from_slice(&28u32.to_le_bytes());
    w.write_all(&b)
}

/// Interface description block with `if_tsresol` 6 or 9.
fn write_idb(w: &mut impl Write, link: LinkType, precision: TsPrecision) -> io::Result<()> {
    let tsresol: u8 = match precision {
        TsPrecision::Micro => 6,
        TsPrecision::Nano => 9,
    };
    let len: u32 = 16 + 8 + 4 + 4; // header, if_tsresol option (padded), opt_endofopt, length
    let mut b = Vec::with_capacity(len as usize);
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    // The pcapng link type field is 16 bits; LINKTYPE_ values all fit.
    b.extend_from_slice(&(link.0 as u16).to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&SNAPLEN.to_le_bytes());
    b.extend_from_slice(&9u16.to_le_bytes()); // if_tsresol
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&[tsresol, 0, 0, 0]);
    b.extend_from_slice(&0u32.to_le_bytes()); // opt_endofopt
    b.extend_from_slice(&len.to_le_bytes());
    w.write_all(&b)
}

/// Enhanced packet block; timestamps before 1970 are written as 0.
fn write_epb(
    w: &mut impl Write,
    interface: u32,
    ts: Timestamp,
    precision: TsPrecision,
    origlen: u32,
    data: &[u8],
) -> io::Result<()> {
    let units = match precision {
        TsPrecision::Micro => {
            (ts.secs.max(0) as u64).saturating_mul(1_000_000) + u64::from(ts.nanos / 1000)
        }
        TsPrecision::Nano => {
            (ts.secs.max(0) as u64).saturating_mul(1_000_000_000) + u64::from(ts.nanos)
        }
    };
    let caplen = data.len() as u32;
    let pad = (4 - data.len() % 4) % 4;
    let len = 28 + data.len() as u32 + pad as u32 + 4;
    let mut h = Vec::with_capacity(28);
    h.extend_from_slice(&6u32.to_le_bytes());
    h.extend_from_slice(&len.to_le_bytes());
    h.extend_from_slice(&interface.to_le_bytes());
    h.extend_from_slice(&((units >> 32) as u32).to_le_bytes());
    h.extend_from_slice(&(units as u32).to_le_bytes());
    h.extend_from_slice(&caplen.to_le_bytes());
    h.extend_from_slice(&origlen.max(caplen).to_le_bytes());
    w.write_all(&h)?;
    w.write_all(data)?;
    w.write_all(&[0u8; 3][..pad])?;
    w.write_all(&len.to_le_bytes())
}

/// Copies the records of a pcap this module wrote (little-endian, `precision`) as EPBs of
/// interface 0.
fn copy_pcap_as_pcapng(
    src: &mut impl Read,
    dst: &mut impl Write,
    precision: TsPrecision,
) -> io::Result<()> {
    let mut header = [0u8; 24];
    src.read_exact(&mut header)?;
    let mut data = Vec::new();
    loop {
        let mut h = [0u8; 16];
        match src.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let (secs, frac, caplen, origlen) = (word(0), word(4), word(8), word(12));
        let nanos = match precision {
            TsPrecision::Micro => frac * 1000,
            TsPrecision::Nano => frac,
        };
        data.resize(caplen as usize, 0);
        src.read_exact(&mut data)?;
        write_epb(dst, 0, Timestamp::new(i64::from(secs), nanos), precision, origlen, &data)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::CaptureReader;

    type Pkt = (Timestamp, TsPrecision, LinkType, Vec<u8>, u32);

    fn read_back(path: &Path) -> Vec<Pkt> {
        let mut r = CaptureReader::open(path).expect("open written file");
        let mut out = Vec::new();
        while let Some(p) = r.next_packet().expect("read written file") {
            out.push((p.ts, p.precision, p.link, p.data.to_vec(), p.origlen));
        }
        out
    }

    fn write_all(path: &Path, pkts: &[Pkt]) {
        let mut w = PcapWriter::create(path).unwrap();
        for (ts, precision, link, data, origlen) in pkts {
            let r = CaptureRecord {
                ts: *ts,
                precision: *precision,
                link: *link,
                interface: 0,
                origlen: *origlen,
                data,
            };
            w.write(&r).unwrap();
        }
        assert_eq!(w.packets(), pkts.len() as u64);
        w.finish(None).unwrap();
    }

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wsdissect-writer-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn pcap_round_trip_micro_and_nano() {
        for precision in [TsPrecision::Micro, TsPrecision::Nano] {
            let nanos = if precision == TsPrecision::Nano { 123_456_789 } else { 123_456_000 };
            let pkts: Vec<Pkt> = vec![
                (
                    Timestamp::new(1_700_000_000, nanos),
                    precision,
                    LinkType::ETHERNET,
                    b"abcde".to_vec(),
                    5,
                ),
                (
                    Timestamp::new(1_700_000_001, 0),
                    precision,
                    LinkType::ETHERNET,
                    vec![7; 64],
                    1500,
                ),
            ];
            let path = tmp(&format!("rt-{precision:?}.pcap"));
            write_all(&path, &pkts);
            assert_eq!(read_back(&path), pkts);
            let head = fs::read(&path).unwrap();
            assert_eq!(head.len(), 24 + 16 + 5 + 16 + 64);
        }
    }

    #[test]
    fn second_link_type_rewrites_as_pcapng() {
        let pkts: Vec<Pkt> = vec![
            (Timestamp::new(10, 1000), TsPrecision::Micro, LinkType::ETHERNET, vec![1, 2, 3], 3),
            (Timestamp::new(11, 5), TsPrecision::Nano, LinkType::LINUX_SLL2, vec![4; 9], 9),
            (Timestamp::new(12, 2000), TsPrecision::Micro, LinkType::ETHERNET, vec![5; 4], 60),
            (Timestamp::new(13, 0), TsPrecision::Micro, LinkType::RAW, vec![6], 1),
        ];
        let path = tmp("mixed.pcap");
        write_all(&path, &pkts);
        let head = fs::read(&path).unwrap();
        assert_eq!(&head[..4], &0x0a0d_0d0au32.to_le_bytes());
        assert_eq!(read_back(&path), pkts);
        assert!(!path.with_file_name(".mixed.pcap.wsdissect-tmp").exists());
    }

    #[test]
    fn pcapng_by_name_and_empty_files() {
        let pkts: Vec<Pkt> =
            vec![(Timestamp::new(5, 7), TsPrecision::Nano, LinkType::RAW, vec![0x45; 20], 20)];
        let path = tmp("named.pcapng");
        write_all(&path, &pkts);
        assert_eq!(&fs::read(&path).unwrap()[..4], &0x0a0d_0d0au32.to_le_bytes());
        assert_eq!(read_back(&path), pkts);
        for name in ["empty.pcap", "empty.pcapng"] {
            let path = tmp(name);
            PcapWriter::create(&path).unwrap().finish(Some(LinkType::LINUX_SLL)).unwrap();
            assert!(read_back(&path).is_empty(), "{name}");
        }
    }

    #[test]
    fn dash_is_refused() {
        assert!(PcapWriter::create(Path::new("-")).is_err());
    }
}
