//! Stage 2: link, IP and TCP decoding.
//!
//! Turns a [`CaptureRecord`] into a [`TcpSegment`] (or says why not). Link layers: Ethernet
//! (with 802.1Q/802.1ad tags), Linux SLL and SLL2, raw IPv4/IPv6 (101, 228, 229), BSD NULL
//! (0) and OpenBSD LOOP (108). IPv4 options, IPv6 extension headers and bounded IPv4/IPv6
//! fragment reassembly. Checksums are not verified: offload makes them wrong in captures taken
//! on the sending host.

pub mod ipfrag;
pub mod link;

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

/// Decodes packets; keeps the IP fragment pool between calls.
pub struct Decoder {
    frags: ipfrag::FragmentPool,
}

impl Decoder {
    pub fn new(limits: &Limits) -> Decoder {
        Decoder { frags: ipfrag::FragmentPool::new(limits.max_ip_fragment_bytes) }
    }

    /// Decodes one record.
    pub fn decode<'a>(&mut self, record: &CaptureRecord<'a>) -> Decoded<'a> {
        let data = record.data;
        let sliced = match record.link {
            LinkType::ETHERNET => match LaxSlicedPacket::from_ethernet(data) {
                Ok(p) => p,
                Err(e) => return err(Layer::Link, format!("Ethernet header: {e}")),
            },
            LinkType::LINUX_SLL | LinkType::LINUX_SLL2 => {
                let next = if record.link == LinkType::LINUX_SLL {
                    link::sll(data)
                } else {
                    link::sll2(data)
                };
                match next {
                    Some(link::Next::EtherType(t, rest)) => {
                        LaxSlicedPacket::from_ether_type(EtherType(t), rest)
                    }
                    _ => return err(Layer::Link, "Linux cooked header cut short".into()),
                }
            }
            LinkType::NULL | LinkType::LOOP => {
                match link::null(data, record.link == LinkType::LOOP) {
                    Some(link::Next::Ip(rest)) => match LaxSlicedPacket::from_ip(rest) {
                        Ok(p) => p,
                        Err(e) => return err(Layer::Ip, format!("{e}")),
                    },
                    Some(_) => return Decoded::NotTcp,
                    None => return err(Layer::Link, "loopback header cut short".into()),
                }
            }
            LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 => match LaxSlicedPacket::from_ip(data)
            {
                Ok(p) => p,
                Err(e) => return err(Layer::Ip, format!("{e}")),
            },
            other => return Decoded::UnsupportedLink(other),
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
                Some(datagram) if depth == 0 && (key.proto == 4 || key.proto == 41) => {
                    match LaxSlicedPacket::from_ip(&datagram) {
                        Ok(inner) => self.decode_sliced(inner, now, depth + 1).into_owned(),
                        Err(e) => err(Layer::Ip, format!("tunnelled {e}")),
                    }
                }
                Some(_) => Decoded::NotTcp,
                None => Decoded::FragmentHeld,
            };
        }
        // IP in IP (4) and IPv6 in IP (41): decode the inner packet (one level).
        if depth == 0 && (payload.ip_number.0 == 4 || payload.ip_number.0 == 41) {
            return match LaxSlicedPacket::from_ip(payload.payload) {
                Ok(inner) => self.decode_sliced(inner, now, depth + 1),
                Err(e) => err(Layer::Ip, format!("tunnelled {e}")),
            };
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
