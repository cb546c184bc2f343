//! Stage 2: link, IP and TCP decoding.
//!
//! Turns a [`CaptureRecord`] into a [`TcpSegment`] (or says why not). Link layers: Ethernet
//! (with 802.1Q/802.1ad tags), Linux SLL and SLL2, raw IPv4/IPv6 (101, 228, 229), BSD NULL
//! (0) and OpenBSD LOOP (108). IPv4 options, IPv6 extension headers and bounded IPv4/IPv6
//! fragment reassembly. Tunnels (IP in IP, GRE, ERSPAN, VXLAN, Geneve, and below IP MPLS and
//! PPPoE; [`tunnel`]) are opened, up to [`MAX_TUNNELS`] deep, and the packet inside decoded. Checksums are not verified: offload makes them wrong in captures taken
//! on the sending host.

pub mod ipfrag;
pub mod link;
pub mod tunnel;

use crate::capture::{CaptureRecord, LinkType};
use crate::limits::Limits;
use etherparse::{
    EtherType, IpNumber, Ipv6ExtensionSlice, LaxNetSlice, LaxSlicedPacket, TcpSlice, TransportSlice,
};
use std::borrow::Cow;
use std::net::IpAddr;

/// TCP flags as on the wire (low 8 bits of the flags field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn psh(self) -> bool {
        self.0 & Self::PSH != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// A decoded TCP segment. The payload borrows from the capture buffer, except for a segment
/// rebuilt from IP fragments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    /// Payload bytes present in the capture.
    pub payload: Cow<'a, [u8]>,
    /// Payload bytes that were on the wire after `payload` but cut by the capture length
    /// (snaplen) or a short IP total length. `payload.len() + missing` is the segment's
    /// real payload length (what the sequence space advances by, plus SYN/FIN).
    pub missing: u32,
}

/// Where in the packet decoding failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    Link,
    Ip,
    Tcp,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Link => "link",
            Layer::Ip => "ip",
            Layer::Tcp => "tcp",
        }
    }
}

/// A packet that could not be decoded, with the layer and a reason for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub layer: Layer,
    pub reason: String,
}

/// What a packet turned out to be.
#[derive(Debug)]
pub enum Decoded<'a> {
    Tcp(TcpSegment<'a>),
    /// A fragment held for reassembly; nothing to do yet.
    FragmentHeld,
    /// IP but not TCP (UDP, ICMP, ...), or not IP at all (ARP, ...).
    NotTcp,
    /// A link type we do not decode.
    UnsupportedLink(LinkType),
    Error(DecodeError),
}

/// Something the decoder noticed outside any single packet's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeNotice {
    /// Fragment memory limit reached; held fragments were dropped.
    FragmentLimit { dropped_bytes: usize },
    /// A datagram's fragments were given up on (evicted incomplete).
    FragmentIncomplete { dropped_bytes: usize },
}

/// Tunnels opened inside one another at most: a mirror of tunnelled traffic (VXLAN around
/// GRE, say) is two; more is not traffic anyone records.
pub const MAX_TUNNELS: u8 = 2;

/// Decodes packets; keeps the IP fragment pool between calls.
pub struct Decoder {
    frags: ipfrag::FragmentPool,
}

impl Decoder {
    pub fn new(limits: &Limits) -> Decoder {
        Decoder {
            frags: ipfrag::FragmentPool::new(limits.max_ip_fragment_bytes, limits.max_ip_datagrams),
        }
    }

    /// Decodes one record.
    pub fn decode<'a>(&mut self, record: &CaptureRecord<'a>) -> Decoded<'a> {
        match plain_tcp(record) {
            Some(seg) => Decoded::Tcp(seg),
            None => self.decode_layered(record),
        }
    }

    /// Decodes one record through etherparse's layer-by-layer slicing, which handles every
    /// case (tags, options, extension headers, fragments, tunnels, cut packets).
    fn decode_layered<'a>(&mut self, record: &CaptureRecord<'a>) -> Decoded<'a> {
        let data = record.data;
        let (next, cut_short) = match record.link {
            LinkType::ETHERNET => match LaxSlicedPacket::from_ethernet(data) {
                Ok(p) => return self.decode_sliced(p, record.ts.secs, 0),
                Err(e) => return err(Layer::Link, format!("Ethernet header: {e}")),
            },
            LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 => {
                (Some(link::Next::Ip(data)), "IP packet cut short")
            }
            LinkType::LINUX_SLL => (link::sll(data), "Linux cooked header cut short"),
            LinkType::LINUX_SLL2 => (link::sll2(data), "Linux cooked header cut short"),
            LinkType::PPP | LinkType::PPP_HDLC => (link::ppp(data), "PPP header cut short"),
            LinkType::C_HDLC => (link::chdlc(data), "Cisco HDLC header cut short"),
            LinkType::NULL | LinkType::LOOP => {
                (link::null(data, record.link == LinkType::LOOP), "loopback header cut short")
            }
            LinkType::NFLOG => (link::nflog(data), "NFLOG attributes cut short"),
            LinkType::PKTAP => match link::pktap(data) {
                Some(Some((dlt, rest))) => {
                    // The packet's own link type, as its DLT names it.
                    let link = LinkType::from_dlt(dlt);
                    if link == LinkType::PKTAP {
                        return err(Layer::Link, "PKTAP inside PKTAP".into());
                    }
                    return self.decode(&CaptureRecord { link, data: rest, ..*record });
                }
                Some(None) => return Decoded::NotTcp,
                None => return err(Layer::Link, "PKTAP header cut short".into()),
            },
            other => return Decoded::UnsupportedLink(other),
        };
        let sliced = match next {
            Some(link::Next::Ip(ip)) => match LaxSlicedPacket::from_ip(ip) {
                Ok(p) => p,
                Err(e) => return err(Layer::Ip, format!("{e}")),
            },
            Some(link::Next::EtherType(t, rest)) => {
                LaxSlicedPacket::from_ether_type(EtherType(t), rest)
            }
            Some(link::Next::Other) => return Decoded::NotTcp,
            None => return err(Layer::Link, cut_short.into()),
        };
        self.decode_sliced(sliced, record.ts.secs, 0)
    }

    fn decode_sliced<'a>(&mut self, p: LaxSlicedPacket<'a>, now: i64, depth: u8) -> Decoded<'a> {
        let (src, dst, payload, expected, frag) = match &p.net {
            Some(LaxNetSlice::Ipv4(ip)) => {
                let h = ip.header();
                let pl = ip.payload();
                let expected = usize::from(h.total_len()).saturating_sub(usize::from(h.ihl()) * 4);
                let frag = ip.is_payload_fragmented().then(|| ipfrag::FragmentKey {
                    src: IpAddr::V4(h.source_addr()),
                    dst: IpAddr::V4(h.destination_addr()),
                    id: u32::from(h.identification()),
                    proto: h.protocol().0,
                    offset: usize::from(h.fragments_offset().value()) * 8,
                    more: h.more_fragments(),
                });
                (
                    IpAddr::V4(h.source_addr()),
                    IpAddr::V4(h.destination_addr()),
                    pl.clone(),
                    expected,
                    frag,
                )
            }
            Some(LaxNetSlice::Ipv6(ip)) => {
                let h = ip.header();
                let pl = ip.payload();
                let exts = ip.extensions().slice().len();
                let expected = usize::from(h.payload_length()).saturating_sub(exts);
                let frag = if ip.is_payload_fragmented() {
                    ip.extensions().clone().into_iter().find_map(|e| match e {
                        Ipv6ExtensionSlice::Fragment(f) => Some(ipfrag::FragmentKey {
                            src: IpAddr::V6(h.source_addr()),
                            dst: IpAddr::V6(h.destination_addr()),
                            id: f.identification(),
                            proto: f.next_header().0,
                            offset: usize::from(f.fragment_offset().value()) * 8,
                            more: f.more_fragments(),
                        }),
                        _ => None,
                    })
                } else {
                    None
                };
                (
                    IpAddr::V6(h.source_addr()),
                    IpAddr::V6(h.destination_addr()),
                    pl.clone(),
                    expected,
                    frag,
                )
            }
            Some(LaxNetSlice::Arp(_)) => return Decoded::NotTcp,
            None => {
                let below_ip = p.ether_payload().filter(|_| depth < MAX_TUNNELS);
                if let Some(inner) =
                    below_ip.and_then(|e| tunnel::open_link(e.ether_type.0, e.payload))
                {
                    return self.decode_tunnelled(inner, now, depth + 1);
                }
                return match &p.stop_err {
                    Some((e, layer)) => err(Layer::Ip, format!("{layer:?}: {e}")),
                    None => Decoded::NotTcp,
                };
            }
        };
        if let Some(key) = frag {
            return match self.frags.add(key, payload.payload, now) {
                Some(datagram) if key.proto == IpNumber::TCP.0 => {
                    tcp_from_owned(src, dst, datagram)
                }
                Some(datagram) if depth < MAX_TUNNELS && tunnel::may_carry(key.proto) => {
                    match tunnel::open(key.proto, &datagram) {
                        Some(inner) => self.decode_tunnelled(inner, now, depth + 1).into_owned(),
                        None => Decoded::NotTcp,
                    }
                }
                Some(_) => Decoded::NotTcp,
                None => Decoded::FragmentHeld,
            };
        }
        if depth < MAX_TUNNELS {
            if let Some(inner) = tunnel::open(payload.ip_number.0, payload.payload) {
                return self.decode_tunnelled(inner, now, depth + 1);
            }
        }
        if payload.ip_number != IpNumber::TCP {
            return Decoded::NotTcp;
        }
        let tcp = match &p.transport {
            Some(TransportSlice::Tcp(t)) => t,
            _ => {
                let why = match &p.stop_err {
                    Some((e, _)) if payload.incomplete => {
                        format!("TCP header cut short by the capture ({e})")
                    }
                    Some((e, _)) => format!("{e}"),
                    None => "no TCP header".into(),
                };
                return err(Layer::Tcp, why);
            }
        };
        let present = payload.payload.len();
        let missing = if payload.incomplete { expected.saturating_sub(present) } else { 0 };
        Decoded::Tcp(TcpSegment {
            src,
            dst,
            src_port: tcp.source_port(),
            dst_port: tcp.destination_port(),
            seq: tcp.sequence_number(),
            ack: tcp.acknowledgment_number(),
            flags: TcpFlags(tcp.header_slice().get(13).copied().unwrap_or(0)),
            window: tcp.window_size(),
            payload: Cow::Borrowed(tcp.payload()),
            missing: u32::try_from(missing).unwrap_or(u32::MAX),
        })
    }

    /// Decodes the packet a tunnel carried; `depth` counts the tunnels around it.
    fn decode_tunnelled<'a>(
        &mut self,
        inner: tunnel::Inner<'a>,
        now: i64,
        depth: u8,
    ) -> Decoded<'a> {
        let sliced = match inner {
            tunnel::Inner::Ethernet(frame) => LaxSlicedPacket::from_ethernet(frame)
                .map_err(|e| err(Layer::Link, format!("tunnelled Ethernet header: {e}"))),
            tunnel::Inner::Ip(packet) => LaxSlicedPacket::from_ip(packet)
                .map_err(|e| err(Layer::Ip, format!("tunnelled {e}"))),
        };
        match sliced {
            Ok(p) => self.decode_sliced(p, now, depth),
            Err(e) => e,
        }
    }

    /// Notices gathered since the last call.
    pub fn take_notices(&mut self) -> Vec<DecodeNotice> {
        self.frags.take_notices()
    }
}

impl Decoded<'_> {
    /// Detaches the result from the buffer it was decoded from.
    fn into_owned(self) -> Decoded<'static> {
        match self {
            Decoded::Tcp(s) => {
                Decoded::Tcp(TcpSegment { payload: Cow::Owned(s.payload.into_owned()), ..s })
            }
            Decoded::FragmentHeld => Decoded::FragmentHeld,
            Decoded::NotTcp => Decoded::NotTcp,
            Decoded::UnsupportedLink(l) => Decoded::UnsupportedLink(l),
            Decoded::Error(e) => Decoded::Error(e),
        }
    }
}

/// The common case decoded directly: Ethernet without tags, then an IPv4 packet without
/// fragmentation or an IPv6 packet without extension headers, then a TCP header, all of it
/// captured. Anything else is left to [`Decoder::decode_layered`] (`None`).
///
/// Written by hand because building etherparse's packet slices (each layer a struct moved
/// from function to function) was a tenth of the reader thread's time, which is what `-j`
/// waits on; the result is the same, and a differential test checks it against etherparse.
fn plain_tcp<'a>(record: &CaptureRecord<'a>) -> Option<TcpSegment<'a>> {
    let data = record.data;
    let (ip, version) = match record.link {
        LinkType::ETHERNET => match data.get(12..14)? {
            [0x08, 0x00] => (data.get(14..)?, 4),
            [0x86, 0xdd] => (data.get(14..)?, 6),
            _ => return None,
        },
        LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 => (data, data.first()? >> 4),
        _ => return None,
    };
    if ip.first()? >> 4 != version {
        return None;
    }
    let (src, dst, tcp) = match version {
        4 => {
            let header_len = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(be16(ip, 2)?);
            let fragmented = be16(ip, 6)? & 0x3fff != 0;
            if header_len < 20 || total < header_len + 20 || total > ip.len() || fragmented {
                return None;
            }
            if ip[9] != IpNumber::TCP.0 {
                return None;
            }
            let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            (IpAddr::from(src), IpAddr::from(dst), ip.get(header_len..total)?)
        }
        6 => {
            let total = 40 + usize::from(be16(ip, 4)?);
            if total < 60 || total > ip.len() || ip[6] != IpNumber::TCP.0 {
                return None;
            }
            let src: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            (IpAddr::from(src), IpAddr::from(dst), ip.get(40..total)?)
        }
        _ => return None,
    };
    let header_len = usize::from(tcp.get(12)? >> 4) * 4;
    if header_len < 20 || header_len > tcp.len() {
        return None;
    }
    let be32 = |at: usize| -> Option<u32> {
        tcp.get(at..at + 4).map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
    };
    Some(TcpSegment {
        src,
        dst,
        src_port: be16(tcp, 0)?,
        dst_port: be16(tcp, 2)?,
        seq: be32(4)?,
        ack: be32(8)?,
        flags: TcpFlags(tcp[13]),
        window: be16(tcp, 14)?,
        payload: Cow::Borrowed(&tcp[header_len..]),
        missing: 0,
    })
}

/// The big-endian 16-bit field at `at`, when the bytes are there.
fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at.checked_add(2)?).map(|x| u16::from_be_bytes([x[0], x[1]]))
}

fn err(layer: Layer, reason: String) -> Decoded<'static> {
    Decoded::Error(DecodeError { layer, reason })
}

/// A TCP segment from a reassembled datagram.
fn tcp_from_owned(src: IpAddr, dst: IpAddr, datagram: Vec<u8>) -> Decoded<'static> {
    match TcpSlice::from_slice(&datagram) {
        Ok(t) => Decoded::Tcp(TcpSegment {
            src,
            dst,
            src_port: t.source_port(),
            dst_port: t.destination_port(),
            seq: t.sequence_number(),
            ack: t.acknowledgment_number(),
            flags: TcpFlags(t.header_slice().get(13).copied().unwrap_or(0)),
            window: t.window_size(),
            payload: Cow::Owned(t.payload().to_vec()),
            missing: 0,
        }),
        Err(e) => err(Layer::Tcp, format!("reassembled datagram: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{Timestamp, TsPrecision};
    use etherparse::PacketBuilder;

    const PAYLOAD: &[u8] = b"\x81\x02hi";

    fn ipv4_tcp() -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 8080, 1000, 65535)
            .ack(5)
            .psh()
            .write(&mut out, PAYLOAD)
            .unwrap();
        out
    }

    fn ipv6_tcp() -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv6([1; 16], [2; 16], 64)
            .tcp(40000, 8080, 1000, 65535)
            .write(&mut out, PAYLOAD)
            .unwrap();
        out
    }

    /// IPv6 with hop-by-hop and destination-options extension headers before TCP.
    fn ipv6_ext_tcp() -> Vec<u8> {
        let plain = ipv6_tcp();
        let tcp = &plain[40..];
        let mut out = plain[..40].to_vec();
        out[6] = 0; // next header: hop-by-hop
        let len = (tcp.len() + 16) as u16;
        out[4..6].copy_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop -> dest opts, PadN
        out.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]); // dest opts -> TCP, PadN
        out.extend_from_slice(tcp);
        out
    }

    /// IPv4 with a 4-byte options field (NOPs and end of list).
    fn ipv4_options_tcp() -> Vec<u8> {
        let plain = ipv4_tcp();
        let mut out = vec![0x46];
        out.extend_from_slice(&plain[1..20]);
        out.extend_from_slice(&[1, 1, 1, 0]);
        out.extend_from_slice(&plain[20..]);
        let total = out.len() as u16;
        out[2..4].copy_from_slice(&total.to_be_bytes());
        out[10..12].copy_from_slice(&[0, 0]);
        let sum =
            etherparse::checksum::Sum16BitWords::new().add_slice(&out[..24]).ones_complement();
        out[10..12].copy_from_slice(&sum.to_be_bytes());
        out
    }

    fn ether(ethertype: u16, tags: &[(u16, u16)], ip: &[u8]) -> Vec<u8> {
        let mut out = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        for (tpid, vid) in tags {
            out.extend_from_slice(&tpid.to_be_bytes());
            out.extend_from_slice(&vid.to_be_bytes());
        }
        out.extend_from_slice(&ethertype.to_be_bytes());
        out.extend_from_slice(ip);
        out
    }

    /// A record of `data`, which was `origlen` bytes on the wire.
    fn record(link: LinkType, data: &[u8], origlen: usize) -> CaptureRecord<'_> {
        CaptureRecord {
            ts: Timestamp::new(1, 0),
            precision: TsPrecision::Micro,
            link,
            interface: 0,
            origlen: origlen as u32,
            data,
        }
    }

    fn decode(link: LinkType, data: &[u8]) -> Result<(u16, u16, Vec<u8>), String> {
        let rec = record(link, data, data.len());
        match Decoder::new(&Limits::default()).decode(&rec) {
            Decoded::Tcp(t) => Ok((t.src_port, t.dst_port, t.payload.to_vec())),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn every_link_type_reaches_tcp() {
        let v4 = ipv4_tcp();
        let v6 = ipv6_tcp();
        let mut sll = vec![0, 0, 3, 4, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&v4);
        let mut sll2 = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
        sll2.extend_from_slice(&v6);
        let mut null_le = 2u32.to_le_bytes().to_vec();
        null_le.extend_from_slice(&v4);
        let mut null_v6 = 30u32.to_le_bytes().to_vec();
        null_v6.extend_from_slice(&v6);
        let mut lo = 24u32.to_be_bytes().to_vec();
        lo.extend_from_slice(&v6);
        // PKTAP: a 108-byte header naming Ethernet (DLT 1), or BSD DLT_RAW (12).
        let pktap = |dlt: u32, inner: &[u8]| {
            let mut h = [108u32.to_le_bytes(), 1u32.to_le_bytes(), dlt.to_le_bytes()].concat();
            h.resize(108, 0);
            h.extend_from_slice(inner);
            h
        };
        // NFLOG: a header, a packet-header attribute, then the payload (type 9), little-endian.
        let mut nflog = vec![2, 0, 0, 1, 8, 0, 1, 0, 0x08, 0x00, 3, 0];
        nflog.extend_from_slice(&(4 + v4.len() as u16).to_le_bytes());
        nflog.extend_from_slice(&9u16.to_le_bytes());
        nflog.extend_from_slice(&v4);
        let mut ppp = vec![0xff, 0x03, 0x00, 0x21];
        ppp.extend_from_slice(&v4);
        let mut chdlc = vec![0x0f, 0x00, 0x86, 0xdd];
        chdlc.extend_from_slice(&v6);
        let cases: Vec<(&str, LinkType, Vec<u8>)> = vec![
            ("ppp", LinkType::PPP, ppp),
            ("cisco hdlc", LinkType::C_HDLC, chdlc),
            ("pktap ethernet", LinkType::PKTAP, pktap(1, &ether(0x0800, &[], &v4))),
            ("pktap raw", LinkType::PKTAP, pktap(12, &v6)),
            ("nflog", LinkType::NFLOG, nflog),
            ("ethernet ipv4", LinkType::ETHERNET, ether(0x0800, &[], &v4)),
            ("ethernet ipv4 options", LinkType::ETHERNET, ether(0x0800, &[], &ipv4_options_tcp())),
            ("802.1Q", LinkType::ETHERNET, ether(0x0800, &[(0x8100, 42)], &v4)),
            ("802.1ad", LinkType::ETHERNET, ether(0x86dd, &[(0x88a8, 7), (0x8100, 42)], &v6)),
            ("ipv6 ext headers", LinkType::ETHERNET, ether(0x86dd, &[], &ipv6_ext_tcp())),
            ("sll", LinkType::LINUX_SLL, sll),
            ("sll2", LinkType::LINUX_SLL2, sll2),
            ("raw v4", LinkType::RAW, v4.clone()),
            ("raw v6", LinkType::RAW, v6.clone()),
            ("ipv4", LinkType::IPV4, v4.clone()),
            ("ipv6", LinkType::IPV6, v6.clone()),
            ("null", LinkType::NULL, null_le),
            ("null v6", LinkType::NULL, null_v6),
            ("loop", LinkType::LOOP, lo),
        ];
        for (name, link, data) in cases {
            assert_eq!(decode(link, &data), Ok((40000, 8080, PAYLOAD.to_vec())), "{name}");
        }
    }

    /// The direct decoding of the common case says what etherparse says, on every packet it
    /// takes: valid ones, and each with bytes of its headers changed or cut.
    #[test]
    fn plain_tcp_agrees_with_etherparse() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let bases: Vec<(LinkType, Vec<u8>)> = vec![
            (LinkType::ETHERNET, ether(0x0800, &[], &ipv4_tcp())),
            (LinkType::ETHERNET, ether(0x0800, &[], &ipv4_options_tcp())),
            (LinkType::ETHERNET, ether(0x86dd, &[], &ipv6_tcp())),
            (LinkType::ETHERNET, ether(0x86dd, &[], &ipv6_ext_tcp())),
            (LinkType::ETHERNET, ether(0x0800, &[(0x8100, 42)], &ipv4_tcp())),
            (LinkType::RAW, ipv4_tcp()),
            (LinkType::RAW, ipv6_tcp()),
            (LinkType::IPV4, ipv4_tcp()),
            (LinkType::IPV6, ipv6_tcp()),
        ];
        let (mut taken, mut tried) = (0, 0);
        for (link, base) in &bases {
            for round in 0..4000 {
                let mut data = base.clone();
                // Change up to three header bytes (the first 80), then maybe cut or pad.
                for _ in 0..(round % 4) {
                    let at = (next() as usize) % data.len().min(80);
                    data[at] = match next() % 4 {
                        0 => 0,
                        1 => 0xff,
                        2 => data[at] ^ (1 << (next() % 8)),
                        _ => next() as u8,
                    };
                }
                match next() % 5 {
                    0 => data.truncate((next() as usize) % (data.len() + 1)),
                    1 => data.extend_from_slice(&[0; 6]), // Ethernet padding
                    _ => {}
                }
                let rec = CaptureRecord {
                    ts: Timestamp::new(1, 0),
                    precision: TsPrecision::Micro,
                    link: *link,
                    interface: 0,
                    origlen: data.len() as u32,
                    data: &data,
                };
                tried += 1;
                if let Some(fast) = plain_tcp(&rec) {
                    taken += 1;
                    match Decoder::new(&Limits::default()).decode_layered(&rec) {
                        Decoded::Tcp(slow) => assert_eq!(fast, slow, "{link:?} {data:02x?}"),
                        other => panic!("{link:?} {data:02x?}: etherparse says {other:?}"),
                    }
                }
            }
        }
        // Most packets still take the direct path, and many are left to etherparse.
        assert!(taken > tried / 4 && taken < tried * 9 / 10, "{taken} of {tried}");
    }

    #[test]
    fn unknown_links_and_short_packets_are_values_not_panics() {
        assert!(matches!(
            Decoder::new(&Limits::default()).decode(&CaptureRecord {
                ts: Timestamp::new(1, 0),
                precision: TsPrecision::Micro,
                link: LinkType(147),
                interface: 0,
                origlen: 3,
                data: b"abc",
            }),
            Decoded::UnsupportedLink(_)
        ));
        let v4 = ether(0x0800, &[], &ipv4_tcp());
        for cut in 0..v4.len() {
            let _ = decode(LinkType::ETHERNET, &v4[..cut]);
        }
    }

    /// Decodes `full` with its last `cut` bytes not captured: the payload kept, and how many
    /// bytes are missing.
    fn decode_cut(link: LinkType, full: &[u8], cut: usize) -> (Vec<u8>, u32) {
        let rec = record(link, &full[..full.len() - cut], full.len());
        match Decoder::new(&Limits::default()).decode(&rec) {
            Decoded::Tcp(t) => (t.payload.to_vec(), t.missing),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn truncated_payload_is_counted_missing_not_decoded() {
        let full = ether(0x0800, &[], &ipv4_tcp());
        assert_eq!(decode_cut(LinkType::ETHERNET, &full, 2), (PAYLOAD[..2].to_vec(), 2));
    }

    /// `inner` in an IPv4 packet of protocol `proto` (no fragmentation).
    fn ipv4_around(proto: u8, inner: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .write(&mut out, IpNumber(proto), inner)
            .unwrap();
        out
    }

    fn vxlan_around(frame: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let body = [&[0x08, 0, 0, 0, 0, 0, 42, 0][..], frame].concat();
        PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .udp(40000, tunnel::VXLAN_PORT)
            .write(&mut out, &body)
            .unwrap();
        out
    }

    #[test]
    fn tunnels_are_opened_to_the_tcp_inside() {
        let v4 = ipv4_tcp();
        let v6 = ipv6_tcp();
        let gre = |ether_type: u16, inner: &[u8]| {
            ipv4_around(
                47,
                &[&[0x20, 0][..], &ether_type.to_be_bytes(), &[0, 0, 0, 9], inner].concat(),
            )
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("ip in ip", ipv4_around(4, &v4)),
            ("ipv6 in ip", ipv4_around(41, &v6)),
            ("gre", gre(0x0800, &v4)),
            ("gre ethernet", gre(0x6558, &ether(0x86dd, &[(0x8100, 5)], &v6))),
            ("vxlan", vxlan_around(&ether(0x0800, &[], &v4))),
            ("vxlan around gre", vxlan_around(&ether(0x0800, &[], &gre(0x0800, &v4)))),
        ];
        let mpls = [&[0, 0x10, 0x01, 64][..], &v4].concat();
        let pppoe =
            [&[0x11, 0, 0, 7][..], &(v6.len() as u16 + 2).to_be_bytes(), &[0, 0x57], &v6].concat();
        for (name, data) in [
            ("mpls", ether(0x8847, &[], &mpls)),
            ("mpls in a vlan", ether(0x8847, &[(0x8100, 9)], &mpls)),
            ("pppoe", ether(0x8864, &[], &pppoe)),
            (
                "mpls around ethernet",
                ether(
                    0x8847,
                    &[],
                    &[&[0, 0x10, 0x01, 64, 0, 0, 0, 0][..], &ether(0x0800, &[], &v4)].concat(),
                ),
            ),
        ] {
            assert_eq!(
                decode(LinkType::ETHERNET, &data),
                Ok((40000, 8080, PAYLOAD.to_vec())),
                "{name}"
            );
        }
        for (name, data) in cases {
            assert_eq!(
                decode(LinkType::ETHERNET, &ether(0x0800, &[], &data)),
                Ok((40000, 8080, PAYLOAD.to_vec())),
                "{name}"
            );
            assert_eq!(
                decode(LinkType::RAW, &data),
                Ok((40000, 8080, PAYLOAD.to_vec())),
                "raw {name}"
            );
        }
        // A third tunnel is not opened; UDP elsewhere is UDP.
        let three = vxlan_around(&ether(0x0800, &[], &gre(0x0800, &ipv4_around(4, &v4))));
        assert_eq!(decode(LinkType::RAW, &three), Err("NotTcp".into()));
        let mut dns = Vec::new();
        PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
            .udp(5353, 53)
            .write(&mut dns, &v4)
            .unwrap();
        assert_eq!(decode(LinkType::RAW, &dns), Err("NotTcp".into()));
    }

    #[test]
    fn a_tunnel_cut_by_the_capture_counts_the_inner_bytes_missing() {
        let full = vxlan_around(&ether(0x0800, &[], &ipv4_tcp()));
        assert_eq!(decode_cut(LinkType::RAW, &full, 3), (PAYLOAD[..1].to_vec(), 3));
        for at in 0..full.len() {
            let _ = decode(LinkType::RAW, &full[..at]);
        }
    }

    #[test]
    fn tunnelled_fragments_are_reassembled_then_opened() {
        let datagram = [
            &[0x9c, 0x40, 0x12, 0xb5, 0, 0, 0, 0][..],
            &[0x08, 0, 0, 0, 0, 0, 42, 0],
            &ether(0x0800, &[], &ipv4_tcp()),
        ]
        .concat();
        let mut decoder = Decoder::new(&Limits::default());
        let mut results = Vec::new();
        for (offset, more) in [(0usize, true), (32, false)] {
            let part = if more { &datagram[..32] } else { &datagram[32..] };
            let mut header = ipv4_around(17, part)[..20].to_vec();
            let flags_offset = (if more { 0x2000 } else { 0 }) | (offset / 8) as u16;
            header[4..6].copy_from_slice(&7u16.to_be_bytes());
            header[6..8].copy_from_slice(&flags_offset.to_be_bytes());
            header[10..12].copy_from_slice(&[0, 0]);
            let sum =
                etherparse::checksum::Sum16BitWords::new().add_slice(&header).ones_complement();
            header[10..12].copy_from_slice(&sum.to_be_bytes());
            let packet = [&header[..], part].concat();
            results.push(match decoder.decode(&record(LinkType::RAW, &packet, packet.len())) {
                Decoded::Tcp(t) => Ok((t.src_port, t.dst_port, t.payload.to_vec())),
                other => Err(format!("{other:?}")),
            });
        }
        assert_eq!(results, vec![Err("FragmentHeld".into()), Ok((40000, 8080, PAYLOAD.to_vec()))]);
    }
}
