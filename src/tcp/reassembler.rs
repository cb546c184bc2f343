//! One direction of a TCP connection: sequence numbers in, ordered stream bytes out.
//!
//! Stream positions are kept as 64-bit offsets from the first byte seen, so they never wrap;
//! sequence numbers are turned into offsets by their modular distance from the next expected
//! one. In-order payload is handed on borrowed from the packet. Data ahead of a hole is copied
//! into a range map of non-overlapping pieces (the first copy of any byte wins; different
//! bytes for the same position are reported), bounded by the per-direction limit.

use super::seq::SeqNum;
use super::GapReason;
use std::collections::BTreeMap;

/// What one direction reports, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum DirOut<'a> {
    Data {
        offset: u64,
        data: &'a [u8],
    },
    Gap {
        offset: u64,
        len: u64,
        reason: GapReason,
    },
    Retransmission {
        bytes: u32,
    },
    OutOfOrder,
    OverlapConflict {
        offset: u64,
        len: u32,
    },
    BufferLimit,
    /// The FIN's place in the stream was reached.
    Fin,
}

/// The least a buffered piece counts for against the buffer limit ...
const PIECE_COST: usize = 64;
/// ... past this many pieces, so that small limits still mean bytes.
const FREE_PIECES: usize = 1024;

#[derive(Debug, Default)]
pub struct Reassembler {
    started: bool,
    /// Sequence number of the next byte to deliver.
    next: SeqNum,
    /// Stream offset of the next byte to deliver.
    delivered: u64,
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    fin_at: Option<u64>,
    fin_done: bool,
    /// The peer acknowledged bytes up to this offset that the capture has not shown.
    acked_unseen: Option<u64>,
    /// Whether any payload was seen in this direction.
    pub had_payload: bool,
    /// The last window this direction's sender advertised.
    pub window: u16,
}

impl Reassembler {
    /// Sets the next expected sequence number if this direction has not started yet.
    pub fn start(&mut self, seq: SeqNum) {
        if !self.started {
            self.started = true;
            self.next = seq;
        }
    }

    pub fn started(&self) -> bool {
        self.started
    }

    pub fn fin_done(&self) -> bool {
        self.fin_done
    }

    pub fn fin_seen(&self) -> bool {
        self.fin_at.is_some()
    }

    /// Buffered out-of-order bytes.
    pub fn buffered(&self) -> usize {
        self.pending_bytes
    }

    /// Whether what is buffered is over `limit`. Besides its bytes each piece costs a map entry
    /// and an allocation (about a hundred bytes), so beyond the first few pieces each counts as
    /// at least [`PIECE_COST`] bytes: one-byte segments cannot hold a hundred times the limit.
    fn over(&self, limit: usize) -> bool {
        self.pending_bytes > limit || self.pending.len() > (limit / PIECE_COST).max(FREE_PIECES)
    }

    fn offset_of(&self, seq: SeqNum) -> i64 {
        self.delivered as i64 + seq.diff(self.next)
    }

    /// A keepalive probe: one sequence number below the next expected, 0 or 1 byte.
    pub fn is_keepalive(&self, seq: SeqNum, len: usize) -> bool {
        self.started && len <= 1 && seq.advance(1) == self.next && !self.fin_done
    }

    /// A segment's payload (`missing` more bytes were cut by the capture) and FIN flag.
    pub fn segment(
        &mut self,
        seq: SeqNum,
        payload: &[u8],
        missing: u32,
        fin: bool,
        limit: usize,
        out: &mut dyn FnMut(DirOut<'_>),
    ) {
        self.start(seq);
        let len = payload.len() as u64 + u64::from(missing);
        if len > 0 {
            self.had_payload = true;
        }
        let off = self.offset_of(seq);
        let end = off + len as i64;
        if fin && self.fin_at.is_none() && end >= 0 {
            self.fin_at = Some(end as u64);
        }
        if len > 0 {
            if end <= self.delivered as i64 {
                out(DirOut::Retransmission { bytes: u32::try_from(len).unwrap_or(u32::MAX) });
            } else {
                // Drop what was already delivered.
                let skip = (self.delivered as i64 - off).max(0) as u64;
                let (payload, missing) = if skip <= payload.len() as u64 {
                    (&payload[skip as usize..], u64::from(missing))
                } else {
                    (&payload[payload.len()..], u64::from(missing) - (skip - payload.len() as u64))
                };
                let off = (off + skip as i64) as u64;
                if off > self.delivered && self.acked_unseen.is_some_and(|a| a >= off) {
                    // The peer acknowledged the bytes before this segment: they were sent but
                    // the capture never saw them.
                    let hole = off - self.delivered;
                    self.skip(hole, GapReason::AckedUnseen, out);
                }
                if off == self.delivered {
                    if !self.pending.is_empty() {
                        out(DirOut::OutOfOrder);
                    }
                    self.deliver(payload, out);
                    if missing > 0 {
                        self.skip(missing, GapReason::Truncated, out);
                    }
                    self.drain(out);
                } else {
                    self.buffer(off, payload, out);
                    if self.over(limit) {
                        out(DirOut::BufferLimit);
                        while self.over(limit / 2) {
                            if !self.give_up_first_hole(GapReason::BufferLimit, out) {
                                break;
                            }
                        }
                    }
                }
            }
        }
        self.check_fin(out);
    }

    /// The peer acknowledged everything before `ack`.
    pub fn ack(&mut self, ack: SeqNum, out: &mut dyn FnMut(DirOut<'_>)) {
        if !self.started || self.fin_done {
            return;
        }
        let a = self.offset_of(ack);
        if a <= self.delivered as i64 {
            return;
        }
        let a = a as u64;
        while let Some((&k, _)) = self.pending.first_key_value() {
            if k > a {
                break;
            }
            self.give_up_first_hole(GapReason::AckedUnseen, out);
        }
        if a > self.delivered {
            self.acked_unseen = Some(self.acked_unseen.map_or(a, |x| x.max(a)));
        }
        self.check_fin(out);
    }

    /// The connection ended: every hole becomes a gap and everything buffered is delivered.
    pub fn flush(&mut self, reason: GapReason, out: &mut dyn FnMut(DirOut<'_>)) {
        while self.give_up_first_hole(reason, out) {}
        if let Some(a) = self.acked_unseen.take() {
            if a > self.delivered {
                self.skip(a - self.delivered, GapReason::AckedUnseen, out);
            }
        }
        if let Some(f) = self.fin_at {
            if !self.fin_done {
                if f > self.delivered {
                    self.skip(f - self.delivered, reason, out);
                }
                self.check_fin(out);
            }
        }
    }

    fn deliver(&mut self, data: &[u8], out: &mut dyn FnMut(DirOut<'_>)) {
        if data.is_empty() {
            return;
        }
        out(DirOut::Data { offset: self.delivered, data });
        self.advance(data.len() as u64);
    }

    fn advance(&mut self, n: u64) {
        self.delivered += n;
        self.next = self.next.advance(n as u32);
        if self.acked_unseen.is_some_and(|a| a <= self.delivered) {
            self.acked_unseen = None;
        }
    }

    /// Reports `n` bytes at the current position as missing and moves past them.
    fn skip(&mut self, n: u64, reason: GapReason, out: &mut dyn FnMut(DirOut<'_>)) {
        if n == 0 {
            return;
        }
        out(DirOut::Gap { offset: self.delivered, len: n, reason });
        self.advance(n);
        // Buffered bytes now behind the position are partly or wholly stale.
        self.drain(out);
    }

    /// Declares the hole before the first buffered piece a gap; false when nothing is buffered.
    fn give_up_first_hole(&mut self, reason: GapReason, out: &mut dyn FnMut(DirOut<'_>)) -> bool {
        let Some((&k, _)) = self.pending.first_key_value() else { return false };
        if k > self.delivered {
            self.skip(k - self.delivered, reason, out);
        } else {
            self.drain(out);
        }
        true
    }

    /// Delivers buffered pieces that are now in order.
    fn drain(&mut self, out: &mut dyn FnMut(DirOut<'_>)) {
        while let Some(entry) = self.pending.first_entry() {
            let k = *entry.key();
            if k > self.delivered {
                break;
            }
            let piece = entry.remove();
            self.pending_bytes -= piece.len();
            let end = k + piece.len() as u64;
            if end > self.delivered {
                let from = (self.delivered - k) as usize;
                self.deliver(&piece[from..], out);
            }
        }
    }

    fn check_fin(&mut self, out: &mut dyn FnMut(DirOut<'_>)) {
        if let Some(f) = self.fin_at {
            if !self.fin_done && self.delivered >= f && self.pending.is_empty() {
                self.fin_done = true;
                // The FIN occupies one sequence number.
                self.next = self.next.advance(1);
                out(DirOut::Fin);
            }
        }
    }

    /// Stores `data` at `off` (ahead of the position) where nothing is stored yet; reports
    /// bytes that differ from what is stored.
    fn buffer(&mut self, off: u64, data: &[u8], out: &mut dyn FnMut(DirOut<'_>)) {
        if data.is_empty() {
            return;
        }
        let end = off + data.len() as u64;
        let mut overlapping: Vec<(u64, u64)> = Vec::new();
        for (&k, v) in self.pending.range(..end).rev() {
            let kend = k + v.len() as u64;
            if kend <= off {
                break;
            }
            overlapping.push((k, kend));
            let a = k.max(off);
            let b = kend.min(end);
            let stored = &v[(a - k) as usize..(b - k) as usize];
            let new = &data[(a - off) as usize..(b - off) as usize];
            if stored != new {
                out(DirOut::OverlapConflict { offset: a, len: (b - a) as u32 });
            }
        }
        overlapping.reverse();
        let mut pos = off;
        let mut pieces = Vec::new();
        for (k, kend) in overlapping {
            if k > pos {
                pieces.push((pos, data[(pos - off) as usize..(k - off) as usize].to_vec()));
            }
            pos = pos.max(kend);
        }
        if pos < end {
            pieces.push((pos, data[(pos - off) as usize..].to_vec()));
        }
        for (k, v) in pieces {
            self.pending_bytes += v.len();
            self.pending.insert(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    enum O {
        D(u64, Vec<u8>),
        G(u64, u64, GapReason),
        R(u32),
        Ooo,
        C(u64, u32),
        L,
        F,
    }

    fn run(
        r: &mut Reassembler,
        f: impl FnOnce(&mut Reassembler, &mut dyn FnMut(DirOut<'_>)),
    ) -> Vec<O> {
        let mut v = Vec::new();
        f(r, &mut |o| {
            v.push(match o {
                DirOut::Data { offset, data } => O::D(offset, data.to_vec()),
                DirOut::Gap { offset, len, reason } => O::G(offset, len, reason),
                DirOut::Retransmission { bytes } => O::R(bytes),
                DirOut::OutOfOrder => O::Ooo,
                DirOut::OverlapConflict { offset, len } => O::C(offset, len),
                DirOut::BufferLimit => O::L,
                DirOut::Fin => O::F,
            })
        });
        v
    }

    const ISN: u32 = u32::MAX - 3;

    #[test]
    fn in_order_across_the_wrap_then_fin() {
        let mut r = Reassembler::default();
        r.start(SeqNum(ISN));
        let s = SeqNum(ISN);
        assert_eq!(
            run(&mut r, |r, o| r.segment(s, b"abcdef", 0, false, 1000, o)),
            vec![O::D(0, b"abcdef".to_vec())]
        );
        assert_eq!(
            run(&mut r, |r, o| r.segment(s.advance(6), b"gh", 0, true, 1000, o)),
            vec![O::D(6, b"gh".to_vec()), O::F]
        );
        assert!(r.fin_done());
    }

    #[test]
    fn out_of_order_retransmission_and_conflict() {
        let mut r = Reassembler::default();
        let s = SeqNum(ISN);
        r.start(s);
        assert_eq!(run(&mut r, |r, o| r.segment(s.advance(4), b"efgh", 0, false, 1000, o)), vec![]);
        assert_eq!(
            run(&mut r, |r, o| r.segment(s.advance(6), b"XXij", 0, false, 1000, o)),
            vec![O::C(6, 2)]
        );
        assert_eq!(
            run(&mut r, |r, o| r.segment(s, b"abcd", 0, false, 1000, o)),
            vec![
                O::Ooo,
                O::D(0, b"abcd".to_vec()),
                O::D(4, b"efgh".to_vec()),
                O::D(8, b"ij".to_vec())
            ]
        );
        assert_eq!(run(&mut r, |r, o| r.segment(s, b"abcd", 0, false, 1000, o)), vec![O::R(4)]);
        assert_eq!(
            run(&mut r, |r, o| r.segment(s.advance(8), b"ijkl", 0, false, 1000, o)),
            vec![O::D(10, b"kl".to_vec())]
        );
    }

    #[test]
    fn ack_past_a_hole_is_a_gap() {
        let mut r = Reassembler::default();
        let s = SeqNum(100);
        r.start(s);
        run(&mut r, |r, o| r.segment(s, b"ab", 0, false, 1000, o));
        assert_eq!(run(&mut r, |r, o| r.segment(s.advance(5), b"fg", 0, false, 1000, o)), vec![]);
        assert_eq!(
            run(&mut r, |r, o| r.ack(s.advance(7), o)),
            vec![O::G(2, 3, GapReason::AckedUnseen), O::D(5, b"fg".to_vec())]
        );
        // Acknowledged but never seen, then later data: the hole is reported as soon as it shows.
        assert_eq!(run(&mut r, |r, o| r.ack(s.advance(10), o)), vec![]);
        assert_eq!(
            run(&mut r, |r, o| r.segment(s.advance(10), b"k", 0, false, 1000, o)),
            vec![O::G(7, 3, GapReason::AckedUnseen), O::D(10, b"k".to_vec())]
        );
    }

    #[test]
    fn keepalive_and_truncation_and_limit() {
        let mut r = Reassembler::default();
        let s = SeqNum(0);
        r.start(s);
        run(&mut r, |r, o| r.segment(s, b"abc", 2, false, 1000, o));
        assert!(r.is_keepalive(s.advance(4), 1));
        assert!(r.is_keepalive(s.advance(4), 0));
        assert!(!r.is_keepalive(s.advance(5), 0));
        let out = run(&mut r, |r, o| r.segment(s.advance(10), &[1; 600], 0, false, 1000, o));
        assert!(out.is_empty());
        let out = run(&mut r, |r, o| r.segment(s.advance(700), &[2; 600], 0, false, 1000, o));
        assert_eq!(out[0], O::L);
        assert_eq!(out[1], O::G(5, 5, GapReason::BufferLimit));
        assert!(r.buffered() <= 600);
    }

    #[test]
    fn flush_reports_holes_and_late_fin() {
        let mut r = Reassembler::default();
        let s = SeqNum(7);
        r.start(s);
        run(&mut r, |r, o| r.segment(s.advance(3), b"de", 0, true, 1000, o));
        assert_eq!(
            run(&mut r, |r, o| r.flush(GapReason::ConnectionEnd, o)),
            vec![O::G(0, 3, GapReason::ConnectionEnd), O::D(3, b"de".to_vec()), O::F]
        );
    }

    /// Regression: the limit counted only payload bytes, so one-byte segments behind a hole
    /// were all kept (a 71-byte packet each, about 100 bytes of memory each: 400 MB for one
    /// direction under the default 4 MiB limit).
    #[test]
    fn tiny_pieces_count_against_the_limit() {
        let mut r = Reassembler::default();
        let s = SeqNum(1000);
        r.start(s);
        let limit = 4 << 20;
        let mut events = Vec::new();
        for i in 0..200_000u32 {
            // Every other byte, so that no two pieces touch; byte 0 never arrives.
            r.segment(s.advance(1 + 2 * i), b"x", 0, false, limit, &mut |o| {
                if !matches!(o, DirOut::Data { .. }) {
                    events.push(format!("{o:?}"));
                }
            });
            assert!(r.pending.len() <= limit / PIECE_COST + 1);
        }
        assert!(events.iter().any(|e| e == "BufferLimit"));
        assert!(events.iter().any(|e| e.contains("BufferLimit") && e.starts_with("Gap")));
        // Small limits still count bytes: 1000 buffered bytes in 1000 pieces fit 4096.
        let mut r = Reassembler::default();
        r.start(s);
        let mut limited = false;
        for i in 0..1000u32 {
            r.segment(s.advance(1 + 2 * i), b"y", 0, false, 4096, &mut |o| {
                limited |= o == DirOut::BufferLimit;
            });
        }
        assert!(!limited);
        assert_eq!(r.buffered(), 1000);
    }

    mod property {
        use super::*;
        use proptest::prelude::*;

        /// Cuts `len` bytes into segments at the given cut points.
        fn segments(len: usize, cuts: &[usize]) -> Vec<(usize, usize)> {
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
            points.push(0);
            points.push(len);
            points.sort_unstable();
            points.dedup();
            points.windows(2).map(|w| (w[0], w[1])).collect()
        }

        proptest! {
            /// Any segmentation, order and duplication (including overlapping copies) of a
            /// byte stream reassembles to the same bytes, starting near the 2^32 wrap.
            #[test]
            fn any_order_and_duplication_gives_the_same_bytes(
                data in proptest::collection::vec(any::<u8>(), 1..600),
                cuts in proptest::collection::vec(any::<usize>(), 0..20),
                order in proptest::collection::vec(any::<usize>(), 0..40),
                isn in any::<u32>(),
            ) {
                let segs = segments(data.len(), &cuts);
                // The first segment goes first (it fixes where the stream starts); the rest,
                // and duplicates and overlapping spans of them, in the order drawn.
                let mut sends = vec![segs[0]];
                let mut rest: Vec<(usize, usize)> = segs[1..].to_vec();
                for (i, o) in order.iter().enumerate() {
                    if rest.is_empty() {
                        break;
                    }
                    let pick = rest.remove(o % rest.len());
                    sends.push(pick);
                    if i % 3 == 0 {
                        sends.push(pick); // an exact retransmission
                    }
                    if i % 5 == 0 && pick.1 < data.len() {
                        sends.push((pick.0, pick.1 + 1)); // an overlap reaching one byte on
                    }
                }
                sends.extend(rest);
                let mut r = Reassembler::default();
                let mut got = Vec::new();
                let mut gaps = 0;
                let mut conflicts = 0;
                for (a, b) in sends {
                    let seq = SeqNum(isn).advance(a as u32);
                    r.segment(seq, &data[a..b], 0, false, 1 << 20, &mut |o| match o {
                        DirOut::Data { offset, data } => {
                            assert_eq!(offset as usize, got.len());
                            got.extend_from_slice(data);
                        }
                        DirOut::Gap { .. } => gaps += 1,
                        DirOut::OverlapConflict { .. } => conflicts += 1,
                        _ => {}
                    });
                }
                prop_assert_eq!(gaps, 0);
                prop_assert_eq!(conflicts, 0);
                prop_assert_eq!(got, data);
            }
        }
    }
}
