//! WebSockets over HTTP/2: one connection's HTTP/2 frames in both directions (the client's
//! preface is sent first), fed as `[options u8]` then chunks `[tag u8][chunk]` (tag bit 0:
//! from the server; tag 0x80: a gap instead), then the end of the connection.
//!
//! Besides "no crash": every byte handed over is accounted exactly once (HTTP/2 framing and
//! other streams as `http`, WebSocket frames as `websocket`, the rest `skipped`), and every
//! WebSocket the connection reports carried has a connection record of its own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};
use wsdissect::app::polling::SidTable;
use wsdissect::capture::Timestamp;
use wsdissect::event::{Event, Meta};
use wsdissect::http::h2::PREFACE;
use wsdissect::session::h2::H2Conn;
use wsdissect::session::{Accounting, Ctx, Emitter};
use wsdissect::tcp::{CloseReason, ConnInfo, Endpoint, GapReason, Side, TcpEvent};
use wsdissect_fuzz::{session_options, Input};

#[derive(Default)]
struct Out {
    websocket_records: u64,
}

impl Emitter for Out {
    fn emit(&mut self, ev: Event<'_>) {
        if let Event::Connection(c) = &ev {
            assert!(c.h2_stream.is_some(), "only WebSockets' records come from HTTP/2");
            if c.websocket {
                self.websocket_records += 1;
            }
        }
        let _ = ev.into_owned();
    }
    fn classify(&mut self, _stream: u64, _websocket: bool) {}
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let o = input.u8();
    let opts = session_options(o);
    let info = ConnInfo {
        stream: 0,
        client: Endpoint { addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), port: 40000 },
        server: Endpoint { addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), port: 443 },
        roles_from_syn: true,
        first_packet: 1,
        first_ts: Timestamp::default(),
    };
    let (mut out, mut acct, mut sids) =
        (Out::default(), Accounting::default(), SidTable::default());
    let mut conn = H2Conn::new(opts.limits.max_http_header, Vec::new());
    let mut fed = 0u64;
    let mut packet = 0u64;
    let mut send = |conn: &mut H2Conn, ev: TcpEvent<'_>, out: &mut Out, acct: &mut Accounting| {
        packet += 1;
        let meta = Meta { packet, ts: Timestamp::new(packet as i64, 0), ..Meta::default() };
        let mut ctx = Ctx { opts: &opts, out, acct, sids: &mut sids };
        conn.on_tcp(&info, meta, &ev, &mut ctx);
    };
    fed += PREFACE.len() as u64;
    let preface = TcpEvent::Data { from: Side::Client, offset: 0, data: PREFACE };
    send(&mut conn, preface, &mut out, &mut acct);
    while !input.is_empty() {
        let tag = input.u8();
        let from = if tag & 1 != 0 { Side::Server } else { Side::Client };
        if tag & 0x80 != 0 {
            let len = u64::from(input.u16()).max(1);
            let gap = TcpEvent::Gap { from, offset: 0, len, reason: GapReason::AckedUnseen };
            send(&mut conn, gap, &mut out, &mut acct);
            continue;
        }
        let chunk = input.chunk();
        fed += chunk.len() as u64;
        send(&mut conn, TcpEvent::Data { from, offset: 0, data: chunk }, &mut out, &mut acct);
    }
    send(&mut conn, TcpEvent::Closed { reason: CloseReason::Fin }, &mut out, &mut acct);
    let accounted = acct.http_bytes + acct.ws_bytes + acct.skipped_bytes + acct.other_bytes;
    assert_eq!(accounted, fed, "{acct:?}");
    assert_eq!(out.websocket_records, u64::from(conn.websockets()));
});
