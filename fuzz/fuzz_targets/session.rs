//! One connection above TCP: the HTTP upgrade, then WebSocket frames, messages, permessage-
//! deflate and UTF-8 in both directions, fed stream events: `[options u8]` then events (data
//! from either peer, gaps, FIN, RST, close), see fuzz/src/lib.rs.
//!
//! Role swaps asked for by the session are honoured as the flow table does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};
use wsdissect::app::polling::SidTable;
use wsdissect::capture::Timestamp;
use wsdissect::event::{Event, Meta};
use wsdissect::session::{Accounting, Ctx, Emitter, Options, Session};
use wsdissect::tcp::{CloseReason, ConnInfo, Endpoint, Feedback, GapReason, Side, TcpEvent};
use wsdissect_fuzz::{session_options, Input};

#[derive(Default)]
struct Out {
    events: u64,
    connection_records: u64,
}

impl Emitter for Out {
    fn emit(&mut self, ev: Event<'_>) {
        self.events += 1;
        if matches!(ev, Event::Connection(_)) {
            self.connection_records += 1;
        }
        // The output sequencer keeps owned copies of held records.
        let _ = ev.into_owned();
    }
    fn classify(&mut self, _stream: u64, _websocket: bool) {}
}

struct Conn {
    info: ConnInfo,
    /// Whether peer A is the client (roles may be swapped by the session).
    a_is_client: bool,
    session: Session,
    opts: Options,
    out: Out,
    acct: Accounting,
    sids: SidTable,
    packet: u64,
}

impl Conn {
    fn side(&self, from_b: bool) -> Side {
        if from_b != self.a_is_client {
            Side::Client
        } else {
            Side::Server
        }
    }

    fn send(&mut self, ev: TcpEvent<'_>) {
        self.packet += 1;
        let meta = Meta {
            packet: self.packet,
            ts: Timestamp::new(self.packet as i64, 0),
            ..Meta::default()
        };
        let mut ctx = Ctx {
            opts: &self.opts,
            out: &mut self.out,
            acct: &mut self.acct,
            sids: &mut self.sids,
        };
        let fb = self.session.on_tcp(&self.info, meta, ev, &mut ctx);
        if fb == Feedback::SwapRoles && !self.info.roles_from_syn {
            std::mem::swap(&mut self.info.client, &mut self.info.server);
            self.a_is_client = !self.a_is_client;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let o = input.u8();
    let opts = session_options(o);
    let a = Endpoint { addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), port: 40000 };
    let b = Endpoint { addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), port: 80 };
    let mut c = Conn {
        info: ConnInfo {
            stream: 0,
            client: a,
            server: b,
            roles_from_syn: o & 4 != 0,
            first_packet: 1,
            first_ts: Timestamp::default(),
        },
        a_is_client: true,
        session: Session::default(),
        opts,
        out: Out::default(),
        acct: Accounting::default(),
        sids: SidTable::default(),
        packet: 0,
    };
    c.send(TcpEvent::Opened);
    let mut offsets = [0u64; 2];
    let mut closed = false;
    while !input.is_empty() && !closed {
        let tag = input.u8();
        let side_b = tag & 8 != 0;
        match tag % 8 {
            0 | 1 | 7 => {
                let from_b = if tag % 8 == 7 { side_b } else { tag % 8 == 1 };
                let data = input.chunk();
                if data.is_empty() {
                    continue;
                }
                let from = c.side(from_b);
                let offset = offsets[usize::from(from_b)];
                offsets[usize::from(from_b)] += data.len() as u64;
                c.send(TcpEvent::Data { from, offset, data });
            }
            2 => {
                let n = u64::from(input.u16()).max(1);
                // The TCP stage reports gaps of at most a few times 2^32 bytes.
                let len = if tag & 0x10 != 0 { n << 17 } else { n };
                let from = c.side(side_b);
                let offset = offsets[usize::from(side_b)];
                offsets[usize::from(side_b)] = offset.saturating_add(len);
                let reason = [
                    GapReason::AckedUnseen,
                    GapReason::BufferLimit,
                    GapReason::ConnectionEnd,
                    GapReason::Truncated,
                ][usize::from(tag >> 5 & 3)];
                c.send(TcpEvent::Gap { from, offset, len, reason });
            }
            3 => {
                let from = c.side(side_b);
                c.send(TcpEvent::Fin { from, ack: tag & 0x20 != 0 });
            }
            4 => {
                let from = c.side(side_b);
                c.send(TcpEvent::Rst { from, ack: tag & 0x20 != 0 });
                c.send(TcpEvent::Closed { reason: CloseReason::Rst });
                closed = true;
            }
            5 => {
                let from = c.side(side_b);
                let ev = match (tag >> 4) & 7 {
                    0 => TcpEvent::Syn { from },
                    1 => TcpEvent::SynAck { from },
                    2 => TcpEvent::Keepalive { from },
                    3 => TcpEvent::KeepaliveAck { from },
                    4 => TcpEvent::Retransmission { from, bytes: 10 },
                    5 => TcpEvent::OutOfOrder { from },
                    6 => TcpEvent::StreamBufferLimit { from },
                    _ => TcpEvent::ZeroWindowProbe { from },
                };
                c.send(ev);
            }
            _ => {
                let reason = [
                    CloseReason::Fin,
                    CloseReason::Reused,
                    CloseReason::Evicted,
                    CloseReason::EndOfCapture,
                ][usize::from(tag >> 3 & 3)];
                if reason == CloseReason::Evicted {
                    c.send(TcpEvent::ConnectionLimit);
                }
                c.send(TcpEvent::Closed { reason });
                closed = true;
            }
        }
    }
    if !closed {
        c.send(TcpEvent::Closed { reason: CloseReason::EndOfCapture });
    }
    assert_eq!(c.out.connection_records, 1, "one connection record per connection");
});
