//! Stage 7: the typed events that flow from the dissector core to the sinks.
//!
//! Every record is tied to the packet that completed it (`Meta`). Payloads are `Cow` so that
//! the core can hand sinks borrowed bytes on the fast path, and the output sequencer can keep
//! an owned copy (`into_owned`) when it must hold records back to keep capture order.

use crate::app::App;
use crate::capture::{Timestamp, TsPrecision};
use crate::problem::ProblemCode;
use crate::tcp::{Endpoint, Side};
use crate::tls::TlsInfo;
use std::borrow::Cow;

/// An HTTP/2 stream identifier (never 0, which is the connection's own), four bytes in an
/// `Option`: every frame and message record carries one.
pub type H2StreamId = std::num::NonZeroU32;

/// The packet a record belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// 1-based packet number in the run.
    pub packet: u64,
    pub ts: Timestamp,
    pub precision: TsPrecision,
    /// The packet's length on the wire.
    pub len: u32,
}

/// A TCP lifecycle event of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpKind {
    Syn,
    SynAck,
    Fin,
    Rst,
    Keepalive,
    KeepaliveAck,
    ZeroWindowProbe,
    Retransmission,
    OutOfOrder,
    Gap,
    OverlapConflict,
}

impl TcpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TcpKind::Syn => "syn",
            TcpKind::SynAck => "syn-ack",
            TcpKind::Fin => "fin",
            TcpKind::Rst => "rst",
            TcpKind::Keepalive => "keepalive",
            TcpKind::KeepaliveAck => "keepalive-ack",
            TcpKind::ZeroWindowProbe => "zero-window-probe",
            TcpKind::Retransmission => "retransmission",
            TcpKind::OutOfOrder => "out-of-order",
            TcpKind::Gap => "gap",
            TcpKind::OverlapConflict => "overlap-conflict",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpRecord {
    pub meta: Meta,
    pub stream: u64,
    pub from: Side,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub kind: TcpKind,
    /// A FIN or RST packet that also had ACK set (text views show `[FIN, ACK]`).
    pub ack: bool,
    /// Stream bytes concerned (gap length, retransmitted bytes), when meaningful.
    pub bytes: Option<u64>,
    pub problems: Vec<ProblemCode>,
}

/// The HTTP upgrade request, reported at its own packet (table views show it there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    pub meta: Meta,
    pub stream: u64,
    /// See [`HandshakeRecord::h2_stream`]: the extended CONNECT of a WebSocket over HTTP/2.
    pub h2_stream: Option<H2StreamId>,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub method: String,
    pub path: String,
    pub upgrade: bool,
    pub extensions_offered: Option<String>,
}

/// The upgrade handshake, reported when the response is complete (or the connection ended
/// without one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HandshakeRecord {
    pub meta: Meta,
    pub stream: u64,
    /// The HTTP/2 stream of a WebSocket over HTTP/2 (RFC 8441); `None` over HTTP/1.1.
    pub h2_stream: Option<H2StreamId>,
    pub request_packet: Option<u64>,
    pub response_packet: Option<u64>,
    pub client: Option<Endpoint>,
    pub server: Option<Endpoint>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub host: Option<String>,
    pub origin: Option<String>,
    pub key: Option<String>,
    pub version: Option<String>,
    pub protocols_offered: Vec<String>,
    pub extensions_offered: Option<String>,
    pub status: Option<u16>,
    pub reason: Option<String>,
    pub accept: Option<String>,
    pub accept_ok: Option<bool>,
    pub protocol: Option<String>,
    pub extensions: Option<String>,
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
    pub notes: Vec<String>,
    pub problems: Vec<ProblemCode>,
    /// The connection is TLS (wss://): what its handshake said.
    pub tls: Option<TlsInfo>,
}

/// A TLS connection's handshake: reported when the ServerHello is complete (or the
/// connection ended without one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsRecord {
    pub meta: Meta,
    pub stream: u64,
    pub client: Endpoint,
    pub server: Endpoint,
    pub info: TlsInfo,
}

/// One WebSocket frame.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameRecord<'a> {
    pub meta: Meta,
    /// Packet in which the frame's first byte arrived.
    pub first_packet: u64,
    pub stream: u64,
    /// See [`HandshakeRecord::h2_stream`].
    pub h2_stream: Option<H2StreamId>,
    pub from: Side,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub opcode_name: &'static str,
    pub mask_key: Option<[u8; 4]>,
    pub payload_len: u64,
    pub len_form: u8,
    pub close_code: Option<u16>,
    pub close_reason: Option<Cow<'a, str>>,
    /// Unmasked payload as kept (possibly cut at the payload limit).
    pub payload: Cow<'a, [u8]>,
    /// The payload is (part of) a text message and valid UTF-8 so far.
    pub payload_is_text: bool,
    /// Payload bytes that were not kept (limit) or never captured (gap, end of capture).
    pub payload_missing: u64,
    /// Of the missing bytes, those not kept because the sink reads no further (see
    /// [`Event::cut_payload`]): what holding the whole record would weigh counts them.
    pub payload_cut: u64,
    /// A single-frame message's `app` object, repeated on its frame.
    pub app: Option<Box<App>>,
    pub problems: Vec<ProblemCode>,
}

impl FrameRecord<'_> {
    pub fn into_owned(self) -> FrameRecord<'static> {
        FrameRecord {
            meta: self.meta,
            first_packet: self.first_packet,
            stream: self.stream,
            h2_stream: self.h2_stream,
            from: self.from,
            src: self.src,
            dst: self.dst,
            fin: self.fin,
            rsv: self.rsv,
            opcode: self.opcode,
            opcode_name: self.opcode_name,
            mask_key: self.mask_key,
            payload_len: self.payload_len,
            len_form: self.len_form,
            close_code: self.close_code,
            close_reason: self.close_reason.map(|c| Cow::Owned(c.into_owned())),
            payload: Cow::Owned(self.payload.into_owned()),
            payload_is_text: self.payload_is_text,
            payload_missing: self.payload_missing,
            payload_cut: self.payload_cut,
            app: self.app,
            problems: self.problems,
        }
    }
}

/// One complete data message (text/binary), after reassembly and decompression.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageRecord<'a> {
    pub meta: Meta,
    pub first_packet: u64,
    pub stream: u64,
    /// See [`HandshakeRecord::h2_stream`].
    pub h2_stream: Option<H2StreamId>,
    pub from: Side,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub opcode: u8,
    pub opcode_name: &'static str,
    pub frames: u32,
    pub compressed: bool,
    pub wire_len: u64,
    pub len: u64,
    pub payload: Cow<'a, [u8]>,
    pub is_text: bool,
    /// Application bytes not kept (limit) or lost (gap, inflate failure).
    pub payload_missing: u64,
    /// Of the missing bytes, those not kept because the sink reads no further (as for
    /// frames).
    pub payload_cut: u64,
    /// Whether it is text that is one JSON value, once decided: `None` until asked (see
    /// [`MessageRecord::is_json`]), so that the check runs where the record is formatted, off
    /// the dissecting thread, and only for views that show it; a `-j` worker that cuts the
    /// payload for such a view decides it first.
    pub json: Option<bool>,
    /// What the connection's application protocol decoder made of it.
    pub app: Option<Box<App>>,
    pub problems: Vec<ProblemCode>,
}

impl MessageRecord<'_> {
    /// Nothing of the message is missing or cut: application decoders and the JSON check see
    /// only whole messages (a cut payload would give misleading answers).
    pub fn is_whole(&self) -> bool {
        self.payload_missing == 0
            && self.payload.len() as u64 == self.len
            && !self.problems.contains(&ProblemCode::IncompleteMessage)
    }

    /// Whether the message is whole text that is one JSON value.
    pub fn is_json(&self) -> bool {
        self.json.unwrap_or_else(|| {
            self.is_text && self.is_whole() && crate::app::is_json(&self.payload)
        })
    }

    pub fn into_owned(self) -> MessageRecord<'static> {
        MessageRecord {
            meta: self.meta,
            first_packet: self.first_packet,
            stream: self.stream,
            h2_stream: self.h2_stream,
            from: self.from,
            src: self.src,
            dst: self.dst,
            opcode: self.opcode,
            opcode_name: self.opcode_name,
            frames: self.frames,
            compressed: self.compressed,
            wire_len: self.wire_len,
            len: self.len,
            payload: Cow::Owned(self.payload.into_owned()),
            is_text: self.is_text,
            payload_missing: self.payload_missing,
            payload_cut: self.payload_cut,
            json: self.json,
            app: self.app,
            problems: self.problems,
        }
    }
}

/// A problem that belongs to no single frame, message or handshake record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProblemRecord {
    pub meta: Meta,
    pub stream: Option<u64>,
    /// See [`HandshakeRecord::h2_stream`].
    pub h2_stream: Option<H2StreamId>,
    pub from: Option<Side>,
    pub code: ProblemCode,
    pub detail: String,
}

impl ProblemRecord {
    /// A problem of a TCP connection as a whole (of none of its WebSockets over HTTP/2).
    pub fn of_stream(
        meta: Meta,
        stream: u64,
        from: Option<Side>,
        code: ProblemCode,
        detail: String,
    ) -> Self {
        ProblemRecord { meta, stream: Some(stream), h2_stream: None, from, code, detail }
    }
}

/// Per-direction totals of a connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    pub frames: u64,
    pub frames_by_opcode: [u64; 7],
    pub messages: u64,
    pub wire_bytes: u64,
    pub app_bytes: u64,
    pub compressed_messages: u64,
    pub compressed_wire_bytes: u64,
    pub compressed_app_bytes: u64,
    pub pings: u64,
    pub pongs: u64,
    pub stream_bytes: u64,
    pub gap_bytes: u64,
}

/// The close handshake of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseInfo {
    pub code: Option<u16>,
    pub reason: Option<String>,
    pub initiator: Side,
    pub echoed: bool,
    pub clean: bool,
}

/// One connection, reported when it ends.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionRecord {
    pub meta: Meta,
    pub stream: u64,
    /// See [`HandshakeRecord::h2_stream`]: the record is that WebSocket's, and the TCP
    /// connection has one of its own.
    pub h2_stream: Option<H2StreamId>,
    /// A TCP connection that carried HTTP/2: the WebSockets it carried (each with a record
    /// of its own).
    pub h2_websockets: Option<u32>,
    pub client: Endpoint,
    pub server: Endpoint,
    pub first_packet: u64,
    pub last_packet: u64,
    pub start: Timestamp,
    pub end: Timestamp,
    pub precision: TsPrecision,
    pub websocket: bool,
    pub handshake_seen: bool,
    pub path: Option<String>,
    pub status: Option<u16>,
    pub accept_ok: Option<bool>,
    pub protocol: Option<String>,
    pub extensions: Option<String>,
    pub client_stats: DirectionStats,
    pub server_stats: DirectionStats,
    /// Ping round-trip times in milliseconds, in the order the pongs arrived.
    pub rtts_ms: Vec<f64>,
    pub close: Option<CloseInfo>,
    pub tcp_end: &'static str,
    pub first_fin_from: Option<Side>,
    pub rst_from: Option<Side>,
    pub keepalives: u64,
    /// Keepalive probes the other side acknowledged; fewer than `keepalives` means a peer
    /// stopped answering.
    pub keepalive_acks: u64,
    pub gaps: u64,
    /// The application protocol decoded inside its messages (`app.protocol`), or `engine.io`
    /// for a long-polling connection.
    pub app_protocol: Option<&'static str>,
    /// The Engine.IO session (`sid`) the connection carried, WebSocket or long-polling.
    pub sid: Option<String>,
    /// Streams that carried the same session so far (this one included).
    pub sid_streams: Vec<u64>,
    /// The proxies the connection went through, outermost first (`SOCKS5 to host:port`,
    /// `HTTP CONNECT to host:port`, `PROXY protocol v2 from client to server`).
    pub proxies: Vec<String>,
    pub problems: Vec<ProblemCode>,
    /// The connection is TLS (wss://).
    pub tls: Option<TlsInfo>,
}

/// A packet that produced no other record, reported only with `--all` so every packet has
/// a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketRecord {
    pub meta: Meta,
    /// The TCP connection, when the packet is TCP.
    pub stream: Option<u64>,
    pub src: Option<Endpoint>,
    pub dst: Option<Endpoint>,
    /// `TCP`, `IP` or `-` (undecoded).
    pub proto: &'static str,
    /// Wireshark-style summary, e.g. `41000 → 9100 [ACK] Seq=… Ack=… Win=512 Len=0`.
    pub info: String,
}

/// An application packet outside WebSocket messages: one Engine.IO packet of an HTTP
/// long-polling request or response body.
#[derive(Clone, Debug, PartialEq)]
pub struct AppRecord {
    pub meta: Meta,
    pub stream: u64,
    pub from: Side,
    pub src: Endpoint,
    pub dst: Endpoint,
    /// `polling`.
    pub transport: &'static str,
    pub method: String,
    pub path: String,
    /// The Engine.IO session, from the request's `sid` or the `open` packet.
    pub sid: Option<String>,
    /// The packet's text in the body.
    pub text: String,
    pub app: App,
    pub problems: Vec<ProblemCode>,
}

/// What the core tells the sinks, in capture order.
#[derive(Clone, Debug)]
pub enum Event<'a> {
    Tcp(TcpRecord),
    Request(RequestRecord),
    Handshake(Box<HandshakeRecord>),
    Tls(Box<TlsRecord>),
    Frame(FrameRecord<'a>),
    Message(MessageRecord<'a>),
    Problem(ProblemRecord),
    Connection(Box<ConnectionRecord>),
    Packet(Box<PacketRecord>),
    App(Box<AppRecord>),
}

impl Event<'_> {
    /// The packet the record belongs to (its place in capture order).
    pub fn packet(&self) -> u64 {
        match self {
            Event::Tcp(r) => r.meta.packet,
            Event::Request(r) => r.meta.packet,
            Event::Handshake(r) => r.meta.packet,
            Event::Tls(r) => r.meta.packet,
            Event::Frame(r) => r.meta.packet,
            Event::Message(r) => r.meta.packet,
            Event::Problem(r) => r.meta.packet,
            Event::Connection(r) => r.meta.packet,
            Event::Packet(r) => r.meta.packet,
            Event::App(r) => r.meta.packet,
        }
    }

    /// The packet that completed the record.
    pub fn meta(&self) -> Meta {
        match self {
            Event::Tcp(r) => r.meta,
            Event::Request(r) => r.meta,
            Event::Handshake(r) => r.meta,
            Event::Tls(r) => r.meta,
            Event::Frame(r) => r.meta,
            Event::Message(r) => r.meta,
            Event::Problem(r) => r.meta,
            Event::Connection(r) => r.meta,
            Event::Packet(r) => r.meta,
            Event::App(r) => r.meta,
        }
    }

    pub fn stream(&self) -> Option<u64> {
        match self {
            Event::Tcp(r) => Some(r.stream),
            Event::Request(r) => Some(r.stream),
            Event::Handshake(r) => Some(r.stream),
            Event::Tls(r) => Some(r.stream),
            Event::Frame(r) => Some(r.stream),
            Event::Message(r) => Some(r.stream),
            Event::Problem(r) => r.stream,
            Event::Connection(r) => Some(r.stream),
            Event::Packet(r) => r.stream,
            Event::App(r) => Some(r.stream),
        }
    }

    /// The HTTP/2 stream of a WebSocket over HTTP/2's records.
    pub fn h2_stream(&self) -> Option<H2StreamId> {
        match self {
            Event::Handshake(r) => r.h2_stream,
            Event::Frame(r) => r.h2_stream,
            Event::Message(r) => r.h2_stream,
            Event::Connection(r) => r.h2_stream,
            Event::Problem(r) => r.h2_stream,
            _ => None,
        }
    }

    pub fn problems(&self) -> &[ProblemCode] {
        match self {
            Event::Tcp(r) => &r.problems,
            Event::Request(_) => &[],
            Event::Handshake(r) => &r.problems,
            Event::Tls(_) => &[],
            Event::Frame(r) => &r.problems,
            Event::Message(r) => &r.problems,
            Event::Problem(r) => std::slice::from_ref(&r.code),
            Event::Connection(r) => &r.problems,
            Event::Packet(_) => &[],
            Event::App(r) => &r.problems,
        }
    }

    /// Keeps the first `keep` payload bytes of a frame or message record and counts the rest
    /// as missing, for a sink that reads no further (see `Sink::payload_prefix`). With
    /// `json_marks` (the sink shows them), a message's JSON mark is decided on the whole
    /// payload first.
    pub fn cut_payload(&mut self, keep: usize, json_marks: bool) {
        let (payload, missing, cut) = match self {
            Event::Frame(r) => (&mut r.payload, &mut r.payload_missing, &mut r.payload_cut),
            Event::Message(r) => {
                if json_marks && r.payload.len() > keep {
                    r.json = Some(r.is_json());
                }
                (&mut r.payload, &mut r.payload_missing, &mut r.payload_cut)
            }
            _ => return,
        };
        if payload.len() <= keep {
            return;
        }
        let not_kept = (payload.len() - keep) as u64;
        *missing = missing.saturating_add(not_kept);
        *cut = cut.saturating_add(not_kept);
        match payload {
            Cow::Borrowed(b) => *b = &b[..keep],
            // A fresh buffer: the old one's capacity would stay with the few bytes kept.
            Cow::Owned(v) => *v = v[..keep].to_vec(),
        }
    }

    /// A copy that owns its payloads, for records held back by the sequencer.
    pub fn into_owned(self) -> Event<'static> {
        match self {
            Event::Tcp(r) => Event::Tcp(r),
            Event::Request(r) => Event::Request(r),
            Event::Handshake(r) => Event::Handshake(r),
            Event::Tls(r) => Event::Tls(r),
            Event::Frame(r) => Event::Frame(r.into_owned()),
            Event::Message(r) => Event::Message(r.into_owned()),
            Event::Problem(r) => Event::Problem(r),
            Event::Connection(r) => Event::Connection(r),
            Event::Packet(r) => Event::Packet(r),
            Event::App(r) => Event::App(r),
        }
    }
}

/// Records for unit tests: a final, unmasked text frame from the client, and its message.
#[cfg(test)]
impl FrameRecord<'static> {
    pub fn text_for_test(payload: Cow<'static, [u8]>) -> Self {
        let at = Endpoint { addr: std::net::Ipv4Addr::LOCALHOST.into(), port: 80 };
        FrameRecord {
            meta: Meta::default(),
            first_packet: 1,
            stream: 0,
            h2_stream: None,
            from: Side::Client,
            src: at,
            dst: at,
            fin: true,
            rsv: 0,
            opcode: 1,
            opcode_name: "text",
            mask_key: None,
            payload_len: payload.len() as u64,
            len_form: 7,
            close_code: None,
            close_reason: None,
            payload,
            payload_is_text: true,
            payload_missing: 0,
            payload_cut: 0,
            app: None,
            problems: Vec::new(),
        }
    }
}

#[cfg(test)]
impl MessageRecord<'static> {
    pub fn text_for_test(payload: Cow<'static, [u8]>) -> Self {
        let f = FrameRecord::text_for_test(Cow::Borrowed(&[]));
        MessageRecord {
            meta: f.meta,
            first_packet: f.first_packet,
            stream: f.stream,
            h2_stream: None,
            from: f.from,
            src: f.src,
            dst: f.dst,
            opcode: 1,
            opcode_name: "text",
            frames: 1,
            compressed: false,
            wire_len: payload.len() as u64,
            len: payload.len() as u64,
            payload,
            is_text: true,
            payload_missing: 0,
            payload_cut: 0,
            json: None,
            app: None,
            problems: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_payload_keeps_its_prefix_and_counts_the_rest_missing() {
        let frame = |payload: Cow<'static, [u8]>| {
            let mut f = FrameRecord::text_for_test(payload);
            (f.payload_len, f.payload_missing) = (7, 2);
            Event::Frame(f)
        };
        for payload in [Cow::Borrowed(&b"hello"[..]), Cow::Owned(b"hello".to_vec())] {
            let mut ev = frame(payload);
            ev.cut_payload(9, true);
            let Event::Frame(f) = &ev else { unreachable!() };
            assert_eq!((&f.payload[..], f.payload_missing), (&b"hello"[..], 2), "nothing to cut");
            ev.cut_payload(2, true);
            let Event::Frame(f) = &ev else { unreachable!() };
            assert_eq!((&f.payload[..], f.payload_missing, f.payload_len), (&b"he"[..], 5, 7));
            ev.cut_payload(0, true);
            let Event::Frame(f) = &ev else { unreachable!() };
            assert_eq!((f.payload.len(), f.payload_missing), (0, 7));
        }
    }
}
