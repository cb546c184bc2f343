//! The flow table: finds or creates the connection for each segment, enforces the connection
//! limit, and drives the connection's two reassemblers.
//!
//! Eviction at the limit prefers connections that never carried payload or have already
//! ended (SYN floods, scans, finished connections), then the least recently active. Both
//! orders are kept in queues with lazy deletion, so each packet costs O(1) amortised.

use super::flow::FlowKey;
use super::reassembler::{DirOut, Reassembler};
use super::seq::SeqNum;
use super::{CloseReason, ConnInfo, Endpoint, Feedback, GapReason, PacketMeta, Side, TcpEvent};
use crate::decode::TcpSegment;
use crate::limits::Limits;
use foldhash::HashMap;
use std::collections::VecDeque;

/// One connection: its two directions (index 0 is the `lo` end of the flow key) and the
/// application state.
struct Connection<S> {
    key: FlowKey,
    info: ConnInfo,
    /// Which direction index is the client's.
    client_idx: usize,
    dirs: [Reassembler; 2],
    state: S,
    client_isn: Option<u32>,
    rst: bool,
    closed: bool,
    keepalive_pending: [bool; 2],
    /// Last activity (packet clock), for eviction.
    touch: u64,
    /// Id of this connection's valid queue entry, and the clock when it was queued.
    queued: u64,
    queued_at: u64,
}

impl<S> Connection<S> {
    fn finished(&self) -> bool {
        self.closed
    }
}

/// A place in the table. Both kinds of connection are boxed, so that a slot is two words:
/// a flood of half-open connections fills the table with open ones.
enum Slot<S> {
    Free,
    Open(Box<Connection<S>>),
    Ended(Box<Ended>),
}

/// A connection that has ended, kept small: its later segments (the last ACK, a FIN sent
/// again) still get its stream number, and a SYN on its addresses starts a new stream. Its
/// reassemblers and the caller's state, over a kilobyte together, are freed when it ends,
/// so that a capture of many short connections holds about two hundred bytes for each ended
/// one (with its map entry) until the connection limit evicts it, not the whole connection.
struct Ended {
    key: FlowKey,
    stream: u64,
    touch: u64,
    queued: u64,
    queued_at: u64,
}

impl<S> Slot<S> {
    fn open(&self) -> Option<&Connection<S>> {
        match self {
            Slot::Open(c) => Some(c),
            _ => None,
        }
    }

    fn open_mut(&mut self) -> Option<&mut Connection<S>> {
        match self {
            Slot::Open(c) => Some(c),
            _ => None,
        }
    }

    /// Last activity, queue entry id and the clock when queued, as [`Connection`] has them.
    fn marks(&self) -> Option<(u64, u64, u64)> {
        match self {
            Slot::Open(c) => Some((c.touch, c.queued, c.queued_at)),
            Slot::Ended(e) => Some((e.touch, e.queued, e.queued_at)),
            Slot::Free => None,
        }
    }

    fn set_queued(&mut self, id: u64, clock: u64) {
        let (queued, queued_at) = match self {
            Slot::Open(c) => (&mut c.queued, &mut c.queued_at),
            Slot::Ended(e) => (&mut e.queued, &mut e.queued_at),
            Slot::Free => return,
        };
        *queued = id;
        *queued_at = clock;
    }

    /// Low value for eviction: ended, or no payload yet.
    fn low_value(&self) -> bool {
        match self {
            Slot::Open(c) => c.closed || !(c.dirs[0].had_payload || c.dirs[1].had_payload),
            _ => true,
        }
    }
}

/// All tracked connections, each carrying application state `S`.
pub struct FlowTable<S> {
    map: HashMap<FlowKey, usize>,
    /// Open connections boxed: a connection's state is over a kilobyte, and a vector of them
    /// inline held twice that while it grew (old and new buffer), and moved every connection
    /// each time.
    slots: Vec<Slot<S>>,
    free: Vec<usize>,
    next_stream: u64,
    limits: Limits,
    clock: u64,
    queue_ids: u64,
    /// Eviction candidates of low value (no payload yet, or ended), oldest first.
    idle: VecDeque<(u64, usize)>,
    /// Everything else, least recently active first.
    active: VecDeque<(u64, usize)>,
}

/// Passes events to the caller's callback with the connection's current roles, applying a
/// role swap as soon as it is asked for.
struct Out<'c, S, F> {
    info: &'c mut ConnInfo,
    client_idx: &'c mut usize,
    state: &'c mut S,
    cb: &'c mut F,
    /// The segment being processed carries FIN and ACK: a FIN it delivers shows as
    /// `[FIN, ACK]` (a FIN released later, after a hole is filled, has no flags of its own).
    fin_ack: bool,
}

impl<S, F> Out<'_, S, F>
where
    F: FnMut(&ConnInfo, &mut S, TcpEvent<'_>) -> Feedback,
{
    fn side(&self, idx: usize) -> Side {
        if idx == *self.client_idx {
            Side::Client
        } else {
            Side::Server
        }
    }

    fn send(&mut self, ev: TcpEvent<'_>) {
        if (self.cb)(self.info, self.state, ev) == Feedback::SwapRoles && !self.info.roles_from_syn
        {
            std::mem::swap(&mut self.info.client, &mut self.info.server);
            *self.client_idx = 1 - *self.client_idx;
        }
    }

    fn dir(&mut self, idx: usize, o: DirOut<'_>) {
        let from = self.side(idx);
        let ev = match o {
            DirOut::Data { offset, data } => TcpEvent::Data { from, offset, data },
            DirOut::Gap { offset, len, reason } => TcpEvent::Gap { from, offset, len, reason },
            DirOut::Retransmission { bytes } => TcpEvent::Retransmission { from, bytes },
            DirOut::OutOfOrder => TcpEvent::OutOfOrder { from },
            DirOut::OverlapConflict { offset, len } => {
                TcpEvent::OverlapConflict { from, offset, len }
            }
            DirOut::BufferLimit => TcpEvent::StreamBufferLimit { from },
            DirOut::Fin => TcpEvent::Fin { from, ack: std::mem::take(&mut self.fin_ack) },
        };
        self.send(ev);
    }
}

impl<S: Default> FlowTable<S> {
    pub fn new(limits: &Limits) -> Self {
        FlowTable {
            map: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            next_stream: 0,
            limits: limits.clone(),
            clock: 0,
            queue_ids: 0,
            idle: VecDeque::new(),
            active: VecDeque::new(),
        }
    }

    /// Processes one segment; calls `on_event` for every event it causes, in order, and
    /// returns the segment's stream number.
    pub fn process<F>(
        &mut self,
        pkt: PacketMeta,
        seg: &TcpSegment<'_>,
        mut on_event: F,
    ) -> Option<u64>
    where
        F: FnMut(&ConnInfo, &mut S, TcpEvent<'_>) -> Feedback,
    {
        self.clock += 1;
        let src = Endpoint { addr: seg.src, port: seg.src_port };
        let dst = Endpoint { addr: seg.dst, port: seg.dst_port };
        let (key, src_is_lo) = FlowKey::of(src, dst);
        let idx = if src_is_lo { 0 } else { 1 };
        let syn_only = seg.flags.syn() && !seg.flags.ack();

        let mut slot = self.map.get(&key).copied();
        if let Some(s) = slot {
            let reuse = match self.slots.get(s) {
                Some(Slot::Open(c)) if syn_only => {
                    c.finished()
                        || c.client_isn.is_some_and(|isn| {
                            isn != seg.seq && (c.dirs[0].had_payload || c.dirs[1].had_payload)
                        })
                }
                Some(Slot::Ended(_)) => syn_only,
                _ => false,
            };
            if reuse {
                self.close_slot(s, pkt, CloseReason::Reused, &mut on_event);
                self.remove_slot(s);
                slot = None;
            }
        }
        let slot = match slot {
            Some(s) => s,
            None => {
                if self.map.len() >= self.limits.max_connections {
                    self.evict_one(pkt, &mut on_event);
                }
                let s = self.insert(key, src, dst, seg, pkt);
                let c = self.slots.get_mut(s)?.open_mut()?;
                let mut out = Out {
                    info: &mut c.info,
                    client_idx: &mut c.client_idx,
                    state: &mut c.state,
                    cb: &mut on_event,
                    fin_ack: false,
                };
                out.send(TcpEvent::Opened);
                s
            }
        };
        let clock = self.clock;
        let limit = self.limits.max_stream_buffer;
        let c = match self.slots.get_mut(slot)? {
            Slot::Open(c) => c,
            Slot::Ended(e) => {
                e.touch = clock;
                return Some(e.stream);
            }
            Slot::Free => return None,
        };
        c.touch = clock;
        let stream = c.info.stream;
        let was_quiet = !(c.dirs[0].had_payload || c.dirs[1].had_payload);
        if c.closed {
            return Some(stream);
        }
        let Connection {
            info,
            client_idx,
            dirs,
            state,
            keepalive_pending,
            client_isn,
            rst,
            closed,
            ..
        } = &mut **c;
        let fin_ack = seg.flags.fin() && seg.flags.ack();
        let mut out = Out { info, client_idx, state, cb: &mut on_event, fin_ack };
        let from = out.side(idx);
        let seq = SeqNum(seg.seq);
        let flags = seg.flags;
        let payload: &[u8] = &seg.payload;
        let len = payload.len() + seg.missing as usize;

        if flags.syn() {
            if flags.ack() {
                out.send(TcpEvent::SynAck { from });
            } else {
                client_isn.get_or_insert(seg.seq);
                out.send(TcpEvent::Syn { from });
            }
            dirs[idx].start(seq.advance(1));
        }
        if flags.rst() {
            for (i, d) in dirs.iter_mut().enumerate() {
                d.flush(GapReason::ConnectionEnd, &mut |o| out.dir(i, o));
            }
            let from = out.side(idx);
            out.send(TcpEvent::Rst { from, ack: flags.ack() });
            out.send(TcpEvent::Closed { reason: CloseReason::Rst });
            *rst = true;
            *closed = true;
            self.push(slot, true);
            self.end_slot(slot);
            return Some(stream);
        }
        let other = 1 - idx;
        // This segment's ACK speaks of the other direction.
        if flags.ack() {
            if len == 0 && !flags.syn() && !flags.fin() && keepalive_pending[other] {
                keepalive_pending[other] = false;
                let from = out.side(idx);
                out.send(TcpEvent::KeepaliveAck { from });
            }
            dirs[other].ack(SeqNum(seg.ack), &mut |o| out.dir(other, o));
        }
        let plain = flags.ack() && !flags.syn() && !flags.fin();
        if plain && dirs[idx].is_keepalive(seq, len) {
            keepalive_pending[idx] = true;
            let from = out.side(idx);
            out.send(TcpEvent::Keepalive { from });
        } else if !flags.syn() || len > 0 || flags.fin() {
            if len == 1 && dirs[other].window == 0 && dirs[idx].started() {
                let from = out.side(idx);
                out.send(TcpEvent::ZeroWindowProbe { from });
            }
            let data_seq = if flags.syn() { seq.advance(1) } else { seq };
            dirs[idx].segment(data_seq, payload, seg.missing, flags.fin(), limit, &mut |o| {
                out.dir(idx, o)
            });
        }
        dirs[idx].window = seg.window;
        if dirs[0].fin_done() && dirs[1].fin_done() {
            out.send(TcpEvent::Closed { reason: CloseReason::Fin });
            *closed = true;
        }
        let ended = *closed;
        let has_payload = dirs[0].had_payload || dirs[1].had_payload;
        if ended || (was_quiet && has_payload) {
            self.push(slot, ended);
        }
        if ended {
            self.end_slot(slot);
        }
        Some(stream)
    }

    /// End of input: flushes every open connection in stream order (gaps, then `Closed`).
    pub fn finish<F>(&mut self, pkt: PacketMeta, mut on_event: F)
    where
        F: FnMut(&ConnInfo, &mut S, TcpEvent<'_>) -> Feedback,
    {
        let _ = pkt;
        let mut open: Vec<(u64, usize)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.open().filter(|c| !c.closed).map(|c| (c.info.stream, i)))
            .collect();
        open.sort_unstable();
        for (_, s) in open {
            self.close_slot(s, pkt, CloseReason::EndOfCapture, &mut on_event);
        }
    }

    /// Connections currently tracked.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(
        &mut self,
        key: FlowKey,
        src: Endpoint,
        dst: Endpoint,
        seg: &TcpSegment<'_>,
        pkt: PacketMeta,
    ) -> usize {
        let src_is_lo = key.lo == src;
        let idx = if src_is_lo { 0 } else { 1 };
        // The SYN's sender is the client; the SYN-ACK's receiver is; otherwise the higher port
        // (ties: the first sender).
        let (client_idx, from_syn) = if seg.flags.syn() && !seg.flags.ack() {
            (idx, true)
        } else if seg.flags.syn() {
            (1 - idx, true)
        } else if src.port != dst.port {
            let lo_is_client = key.lo.port > key.hi.port;
            (if lo_is_client { 0 } else { 1 }, false)
        } else {
            (idx, false)
        };
        let (client, server) = if client_idx == 0 { (key.lo, key.hi) } else { (key.hi, key.lo) };
        let info = ConnInfo {
            stream: self.next_stream,
            client,
            server,
            roles_from_syn: from_syn,
            first_packet: pkt.number,
            first_ts: pkt.ts,
        };
        self.next_stream += 1;
        let conn = Connection {
            key,
            info,
            client_idx,
            dirs: [Reassembler::default(), Reassembler::default()],
            state: S::default(),
            client_isn: None,
            rst: false,
            closed: false,
            keepalive_pending: [false; 2],
            touch: self.clock,
            queued: 0,
            queued_at: 0,
        };
        let slot = match self.free.pop().filter(|&s| s < self.slots.len()) {
            Some(s) => {
                self.slots[s] = Slot::Open(Box::new(conn));
                s
            }
            None => {
                self.slots.push(Slot::Open(Box::new(conn)));
                self.slots.len() - 1
            }
        };
        self.map.insert(key, slot);
        self.push(slot, true);
        slot
    }

    fn remove_slot(&mut self, slot: usize) {
        let Some(place) = self.slots.get_mut(slot) else { return };
        let key = match std::mem::replace(place, Slot::Free) {
            Slot::Open(c) => c.key,
            Slot::Ended(e) => e.key,
            Slot::Free => return,
        };
        self.map.remove(&key);
        self.free.push(slot);
    }

    /// Frees an ended connection's reassemblers and state, keeping what its later segments
    /// need (see [`Ended`]).
    fn end_slot(&mut self, slot: usize) {
        let Some(place) = self.slots.get_mut(slot) else { return };
        let ended = match place {
            Slot::Open(c) if c.closed => Ended {
                key: c.key,
                stream: c.info.stream,
                touch: c.touch,
                queued: c.queued,
                queued_at: c.queued_at,
            },
            _ => return,
        };
        *place = Slot::Ended(Box::new(ended));
    }

    /// Flushes a connection and reports it closed (if it was not already).
    fn close_slot<F>(
        &mut self,
        slot: usize,
        _pkt: PacketMeta,
        reason: CloseReason,
        on_event: &mut F,
    ) where
        F: FnMut(&ConnInfo, &mut S, TcpEvent<'_>) -> Feedback,
    {
        let Some(c) = self.slots.get_mut(slot).and_then(Slot::open_mut) else { return };
        if c.closed {
            return;
        }
        c.closed = true;
        let Connection { info, client_idx, dirs, state, .. } = c;
        let mut out = Out { info, client_idx, state, cb: on_event, fin_ack: false };
        for (i, d) in dirs.iter_mut().enumerate() {
            d.flush(GapReason::ConnectionEnd, &mut |o| out.dir(i, o));
        }
        out.send(TcpEvent::Closed { reason });
    }

    /// Evicts the least valuable connection to make room.
    fn evict_one<F>(&mut self, pkt: PacketMeta, on_event: &mut F)
    where
        F: FnMut(&ConnInfo, &mut S, TcpEvent<'_>) -> Feedback,
    {
        let victim = loop {
            let (from_idle, entry) = match self.idle.pop_front() {
                Some(e) => (true, e),
                None => match self.active.pop_front() {
                    Some(e) => (false, e),
                    None => return,
                },
            };
            let (id, slot) = entry;
            let Some((touch, queued, queued_at)) = self.slots.get(slot).and_then(Slot::marks)
            else {
                continue;
            };
            if queued != id {
                continue; // stale entry
            }
            if !from_idle && touch > queued_at {
                // Active since it was queued: a second chance at the back.
                self.push(slot, false);
                continue;
            }
            break slot;
        };
        let was_open = self.slots.get(victim).and_then(Slot::open).is_some_and(|c| !c.closed);
        if was_open {
            if let Some(c) = self.slots.get_mut(victim).and_then(Slot::open_mut) {
                let Connection { info, client_idx, state, .. } = c;
                let mut out = Out { info, client_idx, state, cb: &mut *on_event, fin_ack: false };
                out.send(TcpEvent::ConnectionLimit);
            }
            self.close_slot(victim, pkt, CloseReason::Evicted, on_event);
        }
        self.remove_slot(victim);
    }

    /// Queues a connection for eviction: with the low-value ones (no payload yet, or ended)
    /// or with the active ones.
    fn push(&mut self, slot: usize, low_value: bool) {
        self.queue_ids += 1;
        let id = self.queue_ids;
        let clock = self.clock;
        let Some(place) = self.slots.get_mut(slot) else { return };
        place.set_queued(id, clock);
        if low_value {
            self.idle.push_back((id, slot));
        } else {
            self.active.push_back((id, slot));
        }
        self.compact();
    }

    /// Keeps the lazy queues proportional to the live connections.
    fn compact(&mut self) {
        let live = self.map.len();
        if self.idle.len() + self.active.len() <= 2 * live + 1024 {
            return;
        }
        let mut entries: Vec<(bool, u64, usize)> = Vec::with_capacity(live);
        for (slot, place) in self.slots.iter().enumerate() {
            if let Some((touch, _, _)) = place.marks() {
                entries.push((place.low_value(), touch, slot));
            }
        }
        entries.sort_unstable();
        self.idle.clear();
        self.active.clear();
        for (low, _, slot) in entries {
            self.queue_ids += 1;
            let id = self.queue_ids;
            let clock = self.clock;
            if let Some(place) = self.slots.get_mut(slot) {
                place.set_queued(id, clock);
            }
            if low {
                self.idle.push_back((id, slot));
            } else {
                self.active.push_back((id, slot));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Timestamp;
    use crate::decode::TcpFlags;
    use std::borrow::Cow;
    use std::net::IpAddr;

    const SYN: u8 = TcpFlags::SYN;
    const ACK: u8 = TcpFlags::ACK;
    const FIN_ACK: u8 = TcpFlags::FIN | TcpFlags::ACK;

    /// Feeds one segment between 10.0.0.1:40000 (`client`) and 10.0.0.2:80, with `n` as
    /// the packet number; returns its stream and the names of the events it caused.
    fn feed(
        t: &mut FlowTable<u32>,
        n: u64,
        client: bool,
        flags: u8,
        (seq, ack): (u32, u32),
        payload: &'static [u8],
    ) -> (Option<u64>, Vec<String>) {
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let (src, dst, sp, dp) = if client { (a, b, 40000, 80) } else { (b, a, 80, 40000) };
        let seg = TcpSegment {
            src,
            dst,
            src_port: sp,
            dst_port: dp,
            seq,
            ack,
            flags: TcpFlags(flags),
            window: 1000,
            payload: Cow::Borrowed(payload),
            missing: 0,
        };
        let mut events = Vec::new();
        let pkt = PacketMeta { number: n, ts: Timestamp { secs: n as i64, nanos: 0 } };
        let stream = t.process(pkt, &seg, |_, state, ev| {
            *state += 1;
            events.push(format!("{ev:?}").split([' ', '{']).next().unwrap_or("").to_string());
            Feedback::Continue
        });
        (stream, events)
    }

    #[test]
    fn an_ended_connection_keeps_its_stream_number_and_frees_the_rest() {
        let mut t = FlowTable::<u32>::new(&Limits::default());
        assert_eq!(feed(&mut t, 1, true, SYN, (100, 0), b"").0, Some(0));
        feed(&mut t, 2, false, SYN | ACK, (500, 101), b"");
        feed(&mut t, 3, true, ACK | TcpFlags::PSH, (101, 501), b"hello");
        feed(&mut t, 4, false, FIN_ACK, (501, 106), b"");
        let (stream, events) = feed(&mut t, 5, true, FIN_ACK, (106, 502), b"");
        assert_eq!(stream, Some(0));
        assert_eq!(events.last().map(String::as_str), Some("Closed"));
        assert!(matches!(t.slots[0], Slot::Ended(_)), "ended: reassemblers and state freed");
        // The last ACK, and a FIN sent again, still belong to stream 0, and cause nothing.
        assert_eq!(feed(&mut t, 6, false, ACK, (502, 107), b""), (Some(0), vec![]));
        assert_eq!(feed(&mut t, 7, false, FIN_ACK, (501, 106), b""), (Some(0), vec![]));
        assert_eq!(t.len(), 1);
        // A SYN on the same addresses starts stream 1 in the same slot.
        let (stream, events) = feed(&mut t, 8, true, SYN, (9000, 0), b"");
        assert_eq!((stream, events), (Some(1), vec!["Opened".into(), "Syn".into()]));
        assert!(matches!(t.slots[0], Slot::Open(_)));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn ended_connections_are_evicted_first_and_quietly() {
        let limits = Limits { max_connections: 2, ..Limits::default() };
        let mut t = FlowTable::<u32>::new(&limits);
        feed(&mut t, 1, true, SYN, (100, 0), b"");
        feed(&mut t, 2, false, TcpFlags::RST | ACK, (0, 101), b"");
        assert!(matches!(t.slots[0], Slot::Ended(_)));
        // Two more connections (other client ports): the ended one goes, with no event.
        let mut other = |n: u64, port: u16| {
            let seg = TcpSegment {
                src: IpAddr::from([10, 0, 0, 3]),
                dst: IpAddr::from([10, 0, 0, 2]),
                src_port: port,
                dst_port: 80,
                seq: 1,
                ack: 0,
                flags: TcpFlags(SYN),
                window: 1000,
                payload: Cow::Borrowed(b""),
                missing: 0,
            };
            let pkt = PacketMeta { number: n, ts: Timestamp { secs: 0, nanos: 0 } };
            let mut events = Vec::new();
            let s = t.process(pkt, &seg, |_, _, ev| {
                events.push(format!("{ev:?}"));
                Feedback::Continue
            });
            (s, events.len())
        };
        assert_eq!(other(3, 1), (Some(1), 2));
        assert_eq!(other(4, 2), (Some(2), 2), "Opened and Syn only: no ConnectionLimit");
        assert_eq!(t.len(), 2);
        assert_eq!(feed(&mut t, 5, false, ACK, (0, 101), b"").0, Some(3), "forgotten: new");
    }
}
