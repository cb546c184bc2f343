//! Stage 3: TCP connection tracking and reassembly.
//!
//! Every TCP connection gets a `stream` number exactly as Wireshark's `tcp.stream` (0-based,
//! by first packet; a SYN on a finished 4-tuple opens a new stream). Each direction is
//! reassembled with modular sequence arithmetic: in-order data is handed on at once
//! (borrowed from the packet), out-of-order data is buffered up to a limit, retransmissions
//! and overlaps are de-duplicated (the first copy wins; conflicting bytes are reported), and a
//! hole that can no longer be filled is reported as a gap before the data after it is
//! delivered. A hole is given up on when the other side acknowledges past it (the capture
//! missed it), when the direction's buffer limit is hit, or when the connection ends.
//!
//! The table is generic over per-connection application state `S` so that later stages keep
//! their state inside the connection without this module knowing what it is.

pub mod flow;
pub mod proxy_protocol;
pub mod reassembler;
pub mod seq;
pub mod table;

pub use flow::{Endpoint, Side};
pub use seq::SeqNum;
pub use table::FlowTable;

use crate::capture::Timestamp;

/// The packet being processed, as later stages report it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketMeta {
    /// 1-based packet number in the run.
    pub number: u64,
    pub ts: Timestamp,
}

/// What a connection is, as seen by later stages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// Wireshark's `tcp.stream`.
    pub stream: u64,
    pub client: Endpoint,
    pub server: Endpoint,
    /// Whether the roles come from a SYN (otherwise from a guess that a later stage may fix).
    pub roles_from_syn: bool,
    pub first_packet: u64,
    pub first_ts: Timestamp,
}

/// Why a connection's tracking ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// Both directions sent FIN (and the last one was seen).
    Fin,
    Rst,
    /// A new SYN reused the 4-tuple after the connection had finished.
    Reused,
    /// Evicted at the connection limit.
    Evicted,
    /// End of capture with the connection still open.
    EndOfCapture,
}

/// Why a stream has a hole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapReason {
    /// The peer acknowledged bytes the capture never saw.
    AckedUnseen,
    /// Out-of-order data exceeded the per-direction buffer limit.
    BufferLimit,
    /// The connection ended (FIN, RST, end of capture) with a hole still open.
    ConnectionEnd,
    /// The capture cut the packet short (snaplen).
    Truncated,
}

/// What the TCP stage reports, in order, for each packet.
#[derive(Debug, PartialEq, Eq)]
pub enum TcpEvent<'a> {
    /// A new connection (stream number allocated); always the first event of a stream.
    Opened,
    Syn {
        from: Side,
    },
    SynAck {
        from: Side,
    },
    /// `ack`: the packet that carried the FIN also had ACK set (Wireshark's `[FIN, ACK]`).
    Fin {
        from: Side,
        ack: bool,
    },
    Rst {
        from: Side,
        ack: bool,
    },
    /// Segment at next_seq-1 carrying 0 or 1 byte, sent to keep the connection alive.
    Keepalive {
        from: Side,
    },
    /// The ACK answering a keepalive.
    KeepaliveAck {
        from: Side,
    },
    ZeroWindowProbe {
        from: Side,
    },
    /// A segment all of whose bytes were already received.
    Retransmission {
        from: Side,
        bytes: u32,
    },
    /// A segment that arrived before bytes that precede it (it is buffered).
    OutOfOrder {
        from: Side,
    },
    /// Bytes that overlap data already received but differ from it; the first copy was kept.
    OverlapConflict {
        from: Side,
        offset: u64,
        len: u32,
    },
    /// In-order stream bytes. `offset` counts from the first byte seen in this direction.
    Data {
        from: Side,
        offset: u64,
        data: &'a [u8],
    },
    /// Bytes of the stream that will never be delivered.
    Gap {
        from: Side,
        offset: u64,
        len: u64,
        reason: GapReason,
    },
    /// The connection limit was hit; this connection is being evicted (Closed follows).
    ConnectionLimit,
    /// The per-direction buffer limit was hit (a Gap follows).
    StreamBufferLimit {
        from: Side,
    },
    /// No more events for this stream.
    Closed {
        reason: CloseReason,
    },
}

impl<'a> TcpEvent<'a> {
    /// The same event with the bytes of a `Data` event replaced by what `f` makes of them
    /// (to hand an event to another thread, its bytes copied elsewhere, and back).
    pub fn map_data<'b>(self, f: impl FnOnce(&'a [u8]) -> &'b [u8]) -> TcpEvent<'b> {
        use TcpEvent as E;
        match self {
            E::Data { from, offset, data } => E::Data { from, offset, data: f(data) },
            E::Opened => E::Opened,
            E::Syn { from } => E::Syn { from },
            E::SynAck { from } => E::SynAck { from },
            E::Fin { from, ack } => E::Fin { from, ack },
            E::Rst { from, ack } => E::Rst { from, ack },
            E::Keepalive { from } => E::Keepalive { from },
            E::KeepaliveAck { from } => E::KeepaliveAck { from },
            E::ZeroWindowProbe { from } => E::ZeroWindowProbe { from },
            E::Retransmission { from, bytes } => E::Retransmission { from, bytes },
            E::OutOfOrder { from } => E::OutOfOrder { from },
            E::OverlapConflict { from, offset, len } => E::OverlapConflict { from, offset, len },
            E::Gap { from, offset, len, reason } => E::Gap { from, offset, len, reason },
            E::ConnectionLimit => E::ConnectionLimit,
            E::StreamBufferLimit { from } => E::StreamBufferLimit { from },
            E::Closed { reason } => E::Closed { reason },
        }
    }

    /// Who sent what the event is about, for the events of one side.
    pub fn from_mut(&mut self) -> Option<&mut Side> {
        use TcpEvent as E;
        match self {
            E::Syn { from }
            | E::SynAck { from }
            | E::Fin { from, .. }
            | E::Rst { from, .. }
            | E::Keepalive { from }
            | E::KeepaliveAck { from }
            | E::ZeroWindowProbe { from }
            | E::Retransmission { from, .. }
            | E::OutOfOrder { from }
            | E::OverlapConflict { from, .. }
            | E::Data { from, .. }
            | E::Gap { from, .. }
            | E::StreamBufferLimit { from } => Some(from),
            E::Opened | E::ConnectionLimit | E::Closed { .. } => None,
        }
    }
}

/// What the application stage asks of the TCP stage after an event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Feedback {
    #[default]
    Continue,
    /// The side called "server" is really the client (e.g. it sent the HTTP upgrade request).
    /// Honoured only when the roles did not come from a SYN; later events use the new roles.
    SwapRoles,
}
