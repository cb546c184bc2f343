//! Input formats of the structured fuzz targets, shared by the targets (decoding) and by
//! `seedgen` (encoding seeds from `testdata/`), which includes this file with `#[path]`.
//!
//! Every format is a header of option bits followed by length-prefixed records. Decoding is
//! total: every byte string decodes to something (missing bytes read as zero, a length past the
//! end takes what is left), so the fuzzer never wastes executions on rejected inputs.
//! Integers are big-endian.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use wsdissect::capture::LinkType;
use wsdissect::decode::{TcpFlags, TcpSegment};
use wsdissect::event::Event;
use wsdissect::limits::Limits;
use wsdissect::sink::Sink;

/// A cursor that never fails: past the end it yields zeros and empty slices.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    pub fn u8(&mut self) -> u8 {
        self.bytes(1).first().copied().unwrap_or(0)
    }

    pub fn u16(&mut self) -> u16 {
        let b = self.bytes(2);
        let mut w = [0u8; 2];
        w[..b.len()].copy_from_slice(b);
        u16::from_be_bytes(w)
    }

    pub fn u32(&mut self) -> u32 {
        let b = self.bytes(4);
        let mut w = [0u8; 4];
        w[..b.len()].copy_from_slice(b);
        u32::from_be_bytes(w)
    }

    /// A `u16` length, then that many bytes (or what is left).
    pub fn chunk(&mut self) -> &'a [u8] {
        let n = self.u16();
        self.bytes(usize::from(n))
    }
}

/// Appends a `u16`-length-prefixed chunk (at most 65535 bytes of `data`).
pub fn put_chunk(out: &mut Vec<u8>, data: &[u8]) {
    let data = &data[..data.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

// ----------------------------------------------------------------------------------------
// packet_decoder: [frag-limit u8] then records [link u8][ts-delta u8][chunk]

/// Link types the decoder handles; a selector past the table is used as the raw link type.
pub const LINKS: [LinkType; 8] = [
    LinkType::ETHERNET,
    LinkType::LINUX_SLL,
    LinkType::LINUX_SLL2,
    LinkType::NULL,
    LinkType::LOOP,
    LinkType::RAW,
    LinkType::IPV4,
    LinkType::IPV6,
];

pub fn link_from_selector(sel: u8) -> LinkType {
    LINKS.get(usize::from(sel)).copied().unwrap_or(LinkType(u32::from(sel)))
}

pub fn link_selector(link: LinkType) -> Option<u8> {
    LINKS.iter().position(|l| *l == link).map(|i| i as u8)
}

/// Fragment-pool limits the packet decoder is run with, by the header byte.
pub fn fragment_limit(sel: u8) -> usize {
    [16 << 20, 4096, 100, 0][usize::from(sel & 3)]
}

pub fn put_packet(out: &mut Vec<u8>, link_sel: u8, ts_delta: u8, data: &[u8]) {
    out.push(link_sel);
    out.push(ts_delta);
    put_chunk(out, data);
}

// ----------------------------------------------------------------------------------------
// tcp_reassembler: [limits u8] then segments
// [flags u8][ends u8][seq u32][ack u32][window u16][missing u16][chunk]
//
// `ends`: bits 0-1 source endpoint, bits 2-3 destination endpoint, bit 4 IPv6 addresses,
// bit 6 "missing" counts down from u32::MAX, bit 7 the receiver answers the next data event
// with `SwapRoles`.

/// Limits for the TCP target: few connections and small buffers so that the limits are hit.
pub fn tcp_limits(sel: u8) -> Limits {
    Limits {
        max_connections: 1 + usize::from(sel & 7),
        max_stream_buffer: [4 << 20, 16, 1024, 65536][usize::from((sel >> 3) & 3)],
        ..Limits::default()
    }
}

pub fn endpoint(i: u8, v6: bool) -> (IpAddr, u16) {
    let host = [1u8, 2, 1, 3][usize::from(i & 3)];
    let port = [40000u16, 80, 40001, 80][usize::from(i & 3)];
    let addr = if v6 {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(host)))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, host))
    };
    (addr, port)
}

/// One decoded segment of the TCP format, and whether the receiver asks for a role swap.
pub fn next_segment<'a>(input: &mut Input<'a>) -> (TcpSegment<'a>, bool) {
    let flags = input.u8();
    let ends = input.u8();
    let seq = input.u32();
    let ack = input.u32();
    let window = input.u16();
    let missing = input.u16();
    let payload = input.chunk();
    let v6 = ends & 0x10 != 0;
    let (src, src_port) = endpoint(ends & 3, v6);
    let (dst, dst_port) = endpoint((ends >> 2) & 3, v6);
    let missing = if ends & 0x40 != 0 { u32::MAX - u32::from(missing) } else { u32::from(missing) };
    let seg = TcpSegment {
        src,
        dst,
        src_port,
        dst_port,
        seq,
        ack,
        flags: TcpFlags(flags),
        window,
        payload: std::borrow::Cow::Borrowed(payload),
        missing,
    };
    (seg, ends & 0x80 != 0)
}

/// Encodes a segment between endpoints `src` and `dst` (indices 0..4).
pub fn put_segment(out: &mut Vec<u8>, seg: &TcpSegment<'_>, src: u8, dst: u8, v6: bool) {
    out.push(seg.flags.0);
    out.push((src & 3) | (dst & 3) << 2 | if v6 { 0x10 } else { 0 });
    out.extend_from_slice(&seg.seq.to_be_bytes());
    out.extend_from_slice(&seg.ack.to_be_bytes());
    out.extend_from_slice(&seg.window.to_be_bytes());
    out.extend_from_slice(&(seg.missing.min(u32::from(u16::MAX)) as u16).to_be_bytes());
    put_chunk(out, &seg.payload);
}

// ----------------------------------------------------------------------------------------
// http_upgrade: [max-head u8][split u16][bytes]; the request is bytes[..split], the response
// the rest.

pub fn max_head(sel: u8) -> usize {
    [64 << 10, 0, 16, 300][usize::from(sel & 3)]
}

// ----------------------------------------------------------------------------------------
// frame_decoder: [chunk u8][ops u8][stream bytes]

// ----------------------------------------------------------------------------------------
// deflate: [setup u8] then ops [op u8] ...
//   op % 4 == 0: inflate [chunk]
//   op % 4 == 1: finish_message
//   op % 4 == 2: reset
//   op % 4 == 3: set_max_output [u32]
// setup: bit 0 no context takeover, bits 1-2 keep limit, bits 3-4 initial output cap.

pub const OP_INFLATE: u8 = 0;
pub const OP_FINISH: u8 = 1;

/// What the session passes: the message limit (16 MiB by default), or 0 for binary messages
/// whose payload is not kept.
pub fn keep_limit(sel: u8) -> usize {
    [16 << 20, 0, 16, 1 << 20][usize::from(sel & 3)]
}

pub fn max_output(sel: u8) -> u64 {
    [64 << 20, 1 << 20, 4096, 0][usize::from(sel & 3)]
}

// ----------------------------------------------------------------------------------------
// session: [options u8] then events [tag u8] ...
//   tag % 8 == 0 | 1: data from peer A (client) / peer B (server) [chunk]
//   tag % 8 == 2: gap, side bit 3, reason bits 5-6, [len u16] (bit 4: times 2^17)
//   tag % 8 == 3: FIN, side bit 3
//   tag % 8 == 4: RST, side bit 3, then the connection closes
//   tag % 8 == 5: another TCP event (keepalive, retransmission, ...) by bits 4-6, side bit 3
//   tag % 8 == 6: the connection closes (reason by bits 3-4)
//   tag % 8 == 7: data, side bit 3 [chunk]
// options: bit 0 keep frame payloads, bit 1 keep message payloads, bit 2 roles from a SYN,
// bits 3-4 message limit, bits 5-6 HTTP head limit, bit 7 small inflate limits.

pub const EV_DATA_A: u8 = 0;
pub const EV_DATA_B: u8 = 1;
pub const EV_GAP: u8 = 2;
pub const EV_FIN: u8 = 3;
pub const EV_RST: u8 = 4;
pub const EV_CLOSE: u8 = 6;

pub fn session_limits(opts: u8) -> Limits {
    let small_inflate = opts & 0x80 != 0;
    Limits {
        max_message: [16 << 20, 0, 8, 1024][usize::from((opts >> 3) & 3)],
        max_http_header: [64 << 10, 0, 40, 512][usize::from((opts >> 5) & 3)],
        max_inflate: if small_inflate { 4096 } else { 64 << 20 },
        max_inflate_ratio: if small_inflate { 2 } else { 1000 },
        ..Limits::default()
    }
}

/// A session's options from the options byte: payloads kept or not, small limits.
pub fn session_options(o: u8) -> wsdissect::session::Options {
    wsdissect::session::Options {
        limits: session_limits(o),
        keep_frame_payload: o & 1 != 0,
        keep_message_payload: o & 2 != 0,
        // No bit of its own left: with frames kept and the small inflate limit.
        frame_payload_prefix: (o & 0x81 == 0x81).then_some(5),
        message_payload_prefix: (o & 0x81 == 0x81).then_some(5),
    }
}

pub fn put_data(out: &mut Vec<u8>, from_b: bool, data: &[u8]) {
    for piece in data.chunks(usize::from(u16::MAX)) {
        out.push(if from_b { EV_DATA_B } else { EV_DATA_A });
        put_chunk(out, piece);
    }
}

// ----------------------------------------------------------------------------------------

/// A sink that drops every record after a few consistency checks.
#[derive(Default)]
pub struct NullSink {
    pub events: u64,
    pub last_packet: u64,
}

impl Sink for NullSink {
    fn event(&mut self, ev: &Event<'_>) -> std::io::Result<()> {
        self.events += 1;
        // Touch what every sink reads.
        let _ = ev.stream();
        let _ = ev.problems().len();
        self.last_packet = self.last_packet.max(ev.packet());
        Ok(())
    }
}

/// Limits far below the defaults, so that inputs of fuzzer size reach them (whole-capture
/// targets).
pub fn small_limits(max_connections: usize) -> wsdissect::limits::Limits {
    wsdissect::limits::Limits {
        max_connections,
        max_stream_buffer: 16 << 10,
        max_ip_fragment_bytes: 16 << 10,
        max_http_header: 4 << 10,
        max_message: 16 << 10,
        max_inflate: 1 << 20,
        max_inflate_ratio: 1000,
        max_ip_datagrams: 16,
        max_scan_window: 4 << 10,
        max_pending_pings: 4,
    }
}
