//! TCP connection tracking and reassembly fed sequences of segments: `[limits u8]` then
//! segments `[flags][ends][seq][ack][window][missing][u16 len][payload]` (fuzz/src/lib.rs).
//!
//! Checks the stage's contract as well as that it does not panic: every stream opens first
//! and closes exactly once (at the latest at `finish`), and each direction's data and gaps
//! follow each other without a hole or an overlap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use wsdissect::capture::Timestamp;
use wsdissect::tcp::{Endpoint, Feedback, FlowTable, PacketMeta, Side, TcpEvent};
use wsdissect_fuzz::{next_segment, tcp_limits, Input};

#[derive(Default)]
struct Track {
    closed: bool,
    /// Next stream offset per sending endpoint.
    next: Vec<(Endpoint, u64)>,
}

impl Track {
    fn at(&mut self, src: Endpoint) -> &mut u64 {
        let i = match self.next.iter().position(|(e, _)| *e == src) {
            Some(i) => i,
            None => {
                assert!(self.next.len() < 2, "a third direction in one connection");
                self.next.push((src, 0));
                self.next.len() - 1
            }
        };
        &mut self.next[i].1
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let limits = tcp_limits(input.u8());
    let mut table: FlowTable<()> = FlowTable::new(&limits);
    let mut streams: HashMap<u64, Track> = HashMap::new();
    let mut number = 0u64;
    let check = |streams: &mut HashMap<u64, Track>,
                 swap: &mut bool,
                 info: &wsdissect::tcp::ConnInfo,
                 ev: TcpEvent<'_>|
     -> Feedback {
        if ev == TcpEvent::Opened {
            assert!(streams.insert(info.stream, Track::default()).is_none(), "opened twice");
            return Feedback::Continue;
        }
        let t = streams.get_mut(&info.stream).expect("an event before Opened");
        assert!(!t.closed, "an event after Closed: {ev:?}");
        let src = |from: Side| if from == Side::Client { info.client } else { info.server };
        match ev {
            TcpEvent::Data { from, offset, data } => {
                assert!(!data.is_empty());
                let next = t.at(src(from));
                assert_eq!(offset, *next, "data out of place");
                *next += data.len() as u64;
                if std::mem::take(swap) {
                    return Feedback::SwapRoles;
                }
            }
            TcpEvent::Gap { from, offset, len, .. } => {
                assert!(len > 0);
                let next = t.at(src(from));
                assert_eq!(offset, *next, "gap out of place");
                *next += len;
            }
            TcpEvent::Closed { .. } => t.closed = true,
            _ => {}
        }
        Feedback::Continue
    };
    while !input.is_empty() {
        let (seg, swap) = next_segment(&mut input);
        number += 1;
        let pkt = PacketMeta { number, ts: Timestamp::new(number as i64, 0) };
        let mut swap = swap;
        table.process(pkt, &seg, |info, _, ev| check(&mut streams, &mut swap, info, ev));
        assert!(table.len() <= limits.max_connections);
    }
    let pkt = PacketMeta { number, ts: Timestamp::new(number as i64, 0) };
    let mut swap = false;
    table.finish(pkt, |info, _, ev| check(&mut streams, &mut swap, info, ev));
    assert!(streams.values().all(|t| t.closed), "a stream never closed");
});
