//! Per-connection application state: from TCP stream bytes to the upgrade handshake and then
//! WebSocket frames and messages.
//!
//! A [`Session`] lives inside its TCP connection (the flow table is generic over it) and
//! turns [`TcpEvent`]s into records. It finds the HTTP upgrade by content on any port, from
//! either side's first bytes; without a handshake it recognises WebSocket by a plausible run
//! of frames and resynchronises on frame boundaries. Close handshakes and ping/pong pairs are
//! matched across the two directions here, and the connection record is built at the end.

mod direction;
pub mod h2;
mod pings;
mod socks;

use direction::push_once;
pub use direction::{opcode_slot, DeflateSetup};

use crate::app::engineio::query_param;
use crate::app::polling::{is_polling_request, Polling, SidTable};
use crate::app::{AppConn, AppMessage, Hints};
use crate::event::{AppRecord, MessageRecord};
use crate::event::{
    CloseInfo, ConnectionRecord, Event, HandshakeRecord, Meta, ProblemRecord, RequestRecord,
    TcpKind, TcpRecord,
};
use crate::http::chunked::ChunkedDecoder;
use crate::http::extensions::DeflateParams;
use crate::http::h2 as h2_wire;
use crate::http::handshake::{
    check_handshake, check_request, is_websocket_upgrade_request, offered_extensions,
    offered_protocols,
};
use crate::http::upgrade::{
    looks_like_request, looks_like_response, parse_request, parse_response, HeadParse, RequestHead,
    ResponseHead,
};
use crate::limits::Limits;
use crate::problem::ProblemCode;
use crate::tcp::{CloseReason, ConnInfo, Endpoint, Feedback, GapReason, Side, TcpEvent};
use crate::ws::frame::FrameHeader;
use crate::ws::opcode::OpCode;
use crate::ws::sniff::{self, FrameScan};
use direction::{ControlSeen, Direction};
use pings::Pings;
use socks::SocksHandshake;

/// What the core keeps and reports; fixed for a run.
#[derive(Clone, Debug)]
pub struct Options {
    pub limits: Limits,
    /// Keep frame payloads for frame records.
    pub keep_frame_payload: bool,
    /// Keep message payloads for message records.
    pub keep_message_payload: bool,
    /// Keep at most this many bytes of a data frame's payload where the rest would not
    /// change the record but for its length ([`crate::sink::Sink::payload_prefix`]: a table
    /// shows previews). The bytes not kept count as missing.
    pub frame_payload_prefix: Option<usize>,
    /// The same for a message's payload, unless an application decoder may read it (or the
    /// sink shows JSON marks, which need the whole text).
    pub message_payload_prefix: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limits: Limits::default(),
            keep_frame_payload: true,
            keep_message_payload: true,
            frame_payload_prefix: None,
            message_payload_prefix: None,
        }
    }
}

/// Where every stream byte went, for the `end` record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accounting {
    /// HTTP heads and bodies before the upgrade (or on connections that never upgraded).
    pub http_bytes: u64,
    /// Bytes fed to the WebSocket frame decoder.
    pub ws_bytes: u64,
    /// Bytes skipped while resynchronising or left undecodable.
    pub skipped_bytes: u64,
    /// Bytes of connections that are not WebSocket.
    pub other_bytes: u64,
    /// Bytes never captured (TCP gaps).
    pub gap_bytes: u64,
    /// TLS record headers, handshakes, tags and records that were not decrypted.
    pub tls_bytes: u64,
}

/// Receives records from sessions; the dissector's output sequencer implements it.
pub trait Emitter {
    fn emit(&mut self, ev: Event<'_>);
    /// The connection has been recognised as WebSocket (or as not WebSocket).
    fn classify(&mut self, stream: u64, websocket: bool);
}

/// What a session needs from the run.
pub struct Ctx<'a> {
    pub opts: &'a Options,
    pub out: &'a mut dyn Emitter,
    pub acct: &'a mut Accounting,
    /// Engine.IO sessions and the streams that carried them, across connections.
    pub sids: &'a mut SidTable,
}

/// The connection's endpoints by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub stream: u64,
    /// The HTTP/2 stream, for a WebSocket over HTTP/2.
    pub h2_stream: Option<crate::event::H2StreamId>,
    pub client: Endpoint,
    pub server: Endpoint,
}

impl Endpoints {
    pub fn src(&self, side: Side) -> Endpoint {
        match side {
            Side::Client => self.client,
            Side::Server => self.server,
        }
    }
    pub fn dst(&self, side: Side) -> Endpoint {
        self.src(side.other())
    }
}

/// Where each packet's bytes start in a session's held bytes (`pending`), so that bytes read
/// later than they arrived (frames behind a request, a request pipelined behind another) keep
/// the packet and time they came in.
#[derive(Default)]
struct Arrivals {
    /// Per side: stream offsets (counted from the first byte ever held) and packets.
    at: [Vec<(u64, Meta)>; 2],
    /// Per side: the stream offset of the first byte held now.
    held_from: [u64; 2],
}

/// Packets remembered per side while bytes are held: held bytes are bounded by the scan
/// window, but one packet per byte would make this forty times that; past the cap the last
/// entry stands for every later packet (their bytes are reported at the newest packet).
const MAX_ARRIVALS: usize = 32;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Detecting,
    AwaitingResponse,
    WebSocket,
    /// The upgrade was refused: nothing after it is decoded as frames.
    Rejected,
    /// Not WebSocket (or given up on).
    Opaque,
    /// HTTP/2: the stage above reads the frames ([`Session::take_h2_opened`]), and the
    /// WebSockets they carry each have a session of their own.
    Http2,
}

/// The proxies a connection was tunnelled through, outermost first.
#[derive(Clone, Debug, Default)]
struct Proxies {
    /// A SOCKS handshake being read at the start of the connection (or of a tunnel).
    socks: Option<SocksHandshake>,
    /// The target of a CONNECT request waiting for its answer.
    connect_target: Option<String>,
    /// `SOCKS5 to host:port`, `HTTP CONNECT to host:port`, … per tunnel opened.
    hops: Vec<String>,
    /// Offset in the client's stream where the innermost tunnel (SOCKS, HTTP CONNECT, or
    /// after a PROXY protocol header) starts: a SOCKS handshake or HTTP/2's preface may
    /// begin only there.
    tunnel_start: u64,
}

/// A proxy tunnel opened, for the stage below to look for TLS again ([`Session::take_tunnel_opened`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TunnelOpened {
    /// What follows is left to the session (HTTP), or has not arrived yet.
    Empty,
    /// The client sent its ClientHello before the proxy answered: the held bytes go back to
    /// the TLS stage.
    TlsHeld,
}

/// Proxy tunnels named on one connection at most (proxychains-style chains nest them); SOCKS
/// handshakes past it are not followed.
const MAX_PROXY_HOPS: usize = 4;

/// The handshake facts the connection record repeats.
#[derive(Clone, Debug, Default)]
struct HandshakeSummary {
    path: Option<String>,
    status: Option<u16>,
    accept_ok: Option<bool>,
    protocol: Option<String>,
    extensions: Option<String>,
}

#[derive(Clone, Debug)]
struct CloseState {
    initiator: Side,
    code: Option<u16>,
    reason: Option<String>,
    echoed: bool,
}

/// Everything known about one connection above TCP.
#[derive(Default)]
pub struct Session {
    phase: Phase,
    ends: Option<Endpoints>,
    roles_from_syn: bool,
    /// Each side lost bytes in a TCP gap before detection finished: a handshake, its request
    /// or its answer may have been in the hole, which explains one coming without the other.
    lost_in_handshake: [bool; 2],
    pending: [Vec<u8>; 2],
    /// The packets `pending` came in: boxed, as it lives only while a handshake is read.
    arrivals: Option<Box<Arrivals>>,
    /// Incremental frame searches over `pending`, reset whenever it is not just appended to.
    scans: Option<Box<[FrameScan; 2]>>,
    /// HTTP body bytes still to skip, per side.
    body_skip: [u64; 2],
    /// A chunked HTTP body in progress, per side.
    chunked: [Option<ChunkedDecoder>; 2],
    http_seen: bool,
    /// An upgrade was refused with a response whose end is known: the client may ask again on
    /// the connection, and what is not a request after it stays the refused connection's.
    refused_may_retry: bool,
    /// A tunnel opened since the caller last asked ([`Session::take_tunnel_opened`]).
    tunnel_opened: Option<TunnelOpened>,
    /// Proxies the connection went through (SOCKS, HTTP CONNECT), a SOCKS handshake being
    /// read, and a CONNECT waiting for its answer (a 2xx opens a tunnel, and the bytes after
    /// it are the tunnelled connection's): boxed, as only proxied connections have one.
    proxy: Option<Box<Proxies>>,
    /// Boxed, as the frame scanners above and the ping table below: over a hundred bytes
    /// each that most connections of a busy capture never use, held per tracked connection.
    request: Option<Box<(RequestHead, Meta)>>,
    summary: HandshakeSummary,
    handshake_seen: bool,
    dirs: Option<Box<[Direction; 2]>>,
    first_meta: Meta,
    last_meta: Meta,
    fin_seen: [bool; 2],
    first_fin_from: Option<Side>,
    rst_from: Option<Side>,
    keepalives: u64,
    keepalive_acks: u64,
    gaps: u64,
    /// The stream bytes are decrypted TLS: a gap's length counts protected bytes, not
    /// the plaintext lost in it.
    decrypted: bool,
    close: Option<CloseState>,
    pings: Option<Box<Pings>>,
    problems: Vec<ProblemCode>,
    stream_bytes: [u64; 2],
    closed: bool,
    /// The application protocol inside the messages (from the handshake or by content).
    app: Option<Box<AppConn>>,
    /// Engine.IO long-polling requests on this (plain HTTP) connection.
    polling: Option<Box<Polling>>,
    /// The connection turned out to be HTTP/2, since the caller last asked.
    h2_opened: bool,
    /// An HTTP/2 connection: the WebSockets it carried.
    h2_websockets: Option<u32>,
}

fn idx(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

impl Session {
    /// Forgets what the frame search over `pending[side]` saw (its buffer changed).
    fn reset_scan(&mut self, side: usize) {
        if let Some(scans) = self.scans.as_mut().and_then(|s| s.get_mut(side)) {
            scans.reset();
        }
    }

    pub fn is_websocket(&self) -> bool {
        self.dirs.is_some() || self.phase == Phase::AwaitingResponse
    }

    /// Handles one TCP event of this connection.
    pub fn on_tcp(
        &mut self,
        info: &ConnInfo,
        meta: Meta,
        ev: TcpEvent<'_>,
        ctx: &mut Ctx<'_>,
    ) -> Feedback {
        if self.ends.is_none() {
            self.ends = Some(Endpoints {
                stream: info.stream,
                h2_stream: None,
                client: info.client,
                server: info.server,
            });
            self.first_meta = meta;
        }
        self.roles_from_syn = info.roles_from_syn;
        self.last_meta = meta;
        match ev {
            TcpEvent::Opened => {}
            TcpEvent::Syn { from } => self.tcp_record(TcpKind::Syn, from, None, meta, ctx),
            TcpEvent::SynAck { from } => self.tcp_record(TcpKind::SynAck, from, None, meta, ctx),
            TcpEvent::Fin { from, ack } => {
                self.fin_seen[idx(from)] = true;
                self.first_fin_from.get_or_insert(from);
                let rec = TcpRecord { ack, ..self.make_tcp(TcpKind::Fin, from, None, meta) };
                ctx.out.emit(Event::Tcp(rec));
            }
            TcpEvent::Rst { from, ack } => {
                self.rst_from.get_or_insert(from);
                let rec = TcpRecord { ack, ..self.make_tcp(TcpKind::Rst, from, None, meta) };
                ctx.out.emit(Event::Tcp(rec));
            }
            TcpEvent::Keepalive { from } => {
                self.keepalives += 1;
                self.tcp_record(TcpKind::Keepalive, from, None, meta, ctx);
            }
            TcpEvent::KeepaliveAck { from } => {
                self.keepalive_acks += 1;
                self.tcp_record(TcpKind::KeepaliveAck, from, None, meta, ctx)
            }
            TcpEvent::ZeroWindowProbe { from } => {
                self.tcp_record(TcpKind::ZeroWindowProbe, from, None, meta, ctx)
            }
            TcpEvent::Retransmission { from, bytes } => {
                self.tcp_record(TcpKind::Retransmission, from, Some(bytes.into()), meta, ctx)
            }
            TcpEvent::OutOfOrder { from } => {
                self.tcp_record(TcpKind::OutOfOrder, from, None, meta, ctx)
            }
            TcpEvent::OverlapConflict { from, len, .. } => {
                let rec = self.make_tcp(TcpKind::OverlapConflict, from, Some(len.into()), meta);
                ctx.out.emit(Event::Tcp(TcpRecord {
                    problems: vec![ProblemCode::OverlapConflict],
                    ..rec
                }));
            }
            TcpEvent::Data { from, data, .. } => return self.on_data(from, data, meta, ctx),
            TcpEvent::Gap { from, len, reason, .. } => self.on_gap(from, len, reason, meta, ctx),
            TcpEvent::ConnectionLimit => self.problem(
                ProblemCode::ConnectionLimit,
                None,
                meta,
                ctx,
                "connection limit reached; this connection was evicted (raise --max-connections)"
                    .into(),
            ),
            TcpEvent::StreamBufferLimit { from } => self.problem(
                ProblemCode::StreamBufferLimit,
                Some(from),
                meta,
                ctx,
                format!(
                    "more than {} out-of-order bytes buffered, small segments counting as 64 \
                     (raise --max-stream-buffer)",
                    ctx.opts.limits.max_stream_buffer
                ),
            ),
            TcpEvent::Closed { reason } => self.on_closed(reason, meta, ctx),
        }
        Feedback::Continue
    }

    /// The Engine.IO session of the connection: the `sid` of its WebSocket upgrade path, or
    /// of its polling requests.
    fn session_sid(&self) -> Option<String> {
        let path = self.summary.path.as_deref()?;
        if crate::app::engineio::is_engineio_path(path) {
            query_param(path, "sid").map(str::to_owned)
        } else {
            None
        }
    }

    fn ends(&self) -> Endpoints {
        // invariant: set on the first event of every connection, before anything else runs.
        self.ends.expect("endpoints are set on the first event")
    }

    fn make_tcp(&self, kind: TcpKind, from: Side, bytes: Option<u64>, meta: Meta) -> TcpRecord {
        let ends = self.ends();
        TcpRecord {
            meta,
            stream: ends.stream,
            from,
            src: ends.src(from),
            dst: ends.dst(from),
            kind,
            ack: false,
            bytes,
            problems: Vec::new(),
        }
    }

    fn tcp_record(
        &self,
        kind: TcpKind,
        from: Side,
        bytes: Option<u64>,
        meta: Meta,
        ctx: &mut Ctx<'_>,
    ) {
        ctx.out.emit(Event::Tcp(self.make_tcp(kind, from, bytes, meta)));
    }

    fn problem(
        &mut self,
        code: ProblemCode,
        from: Option<Side>,
        meta: Meta,
        ctx: &mut Ctx<'_>,
        detail: String,
    ) {
        if !self.problems.contains(&code) {
            self.problems.push(code);
        }
        ctx.out.emit(Event::Problem(ProblemRecord {
            meta,
            stream: self.ends.map(|e| e.stream),
            h2_stream: self.ends.and_then(|e| e.h2_stream),
            from,
            code,
            detail,
        }));
    }

    fn on_gap(&mut self, from: Side, len: u64, reason: GapReason, meta: Meta, ctx: &mut Ctx<'_>) {
        self.gaps += 1;
        ctx.acct.gap_bytes = ctx.acct.gap_bytes.saturating_add(len);
        let code = match reason {
            GapReason::Truncated => ProblemCode::TruncatedPacket,
            _ => ProblemCode::TcpGap,
        };
        if !self.problems.contains(&code) {
            self.problems.push(code);
        }
        let rec = self.make_tcp(TcpKind::Gap, from, Some(len), meta);
        ctx.out.emit(Event::Tcp(TcpRecord { problems: vec![code], ..rec }));
        let ends = self.ends();
        match self.phase {
            Phase::WebSocket => {
                if let Some(dirs) = self.dirs.as_mut() {
                    let plain_len = (!self.decrypted).then_some(len);
                    dirs[idx(from)].on_gap(len, plain_len, meta, &ends, ctx);
                }
                // Whole messages may have been in the hole.
                if let Some(app) = self.app.as_mut() {
                    app.lose(from);
                }
            }
            Phase::Detecting | Phase::AwaitingResponse => {
                // What was held cannot be continued across the hole; start detection afresh.
                if let Some(p) = self.proxy.as_mut() {
                    p.socks = None;
                }
                let (held, _, _) = self.take_held(idx(from));
                self.reset_scan(idx(from));
                ctx.acct.skipped_bytes += held.len() as u64;
                self.body_skip[idx(from)] = 0;
                self.lost_in_handshake[idx(from)] = true;
            }
            Phase::Rejected | Phase::Opaque | Phase::Http2 => {}
        }
    }

    fn on_data(&mut self, from: Side, data: &[u8], meta: Meta, ctx: &mut Ctx<'_>) -> Feedback {
        self.stream_bytes[idx(from)] += data.len() as u64;
        match self.phase {
            Phase::WebSocket => {
                self.feed_ws(from, data, meta, ctx);
                Feedback::Continue
            }
            Phase::Rejected => {
                ctx.acct.http_bytes += data.len() as u64;
                Feedback::Continue
            }
            Phase::Opaque => {
                ctx.acct.other_bytes += data.len() as u64;
                Feedback::Continue
            }
            Phase::Http2 => {
                ctx.acct.http_bytes += data.len() as u64;
                Feedback::Continue
            }
            Phase::Detecting | Phase::AwaitingResponse => self.detect(from, data, meta, ctx),
        }
    }

    fn feed_ws(&mut self, from: Side, data: &[u8], meta: Meta, ctx: &mut Ctx<'_>) {
        let ends = self.ends();
        let Some(dirs) = self.dirs.as_mut() else { return };
        let dir = &mut dirs[idx(from)];
        // Views that print no payloads (or a prefix) drop them, but an application protocol
        // needs the bytes to decode (and report what does not), whatever the view.
        let keep;
        let drops = !ctx.opts.keep_message_payload || ctx.opts.message_payload_prefix.is_some();
        let opts = if drops && self.app.as_ref().is_some_and(|a| a.active()) {
            keep = Options {
                keep_message_payload: true,
                message_payload_prefix: None,
                ..ctx.opts.clone()
            };
            &keep
        } else {
            ctx.opts
        };
        // Messages pass through the application layer on their way out.
        let mut tap = AppTap { inner: &mut *ctx.out, app: self.app.as_deref_mut(), held: None };
        let mut app_ctx = Ctx { opts, out: &mut tap, acct: &mut *ctx.acct, sids: &mut *ctx.sids };
        dir.on_data(data, meta, &ends, &mut app_ctx);
        tap.flush();
        let controls = dir.take_controls();
        for (meta, control) in controls {
            self.on_control(from, control, meta, ctx);
        }
    }

    fn on_control(&mut self, from: Side, control: ControlSeen, meta: Meta, ctx: &mut Ctx<'_>) {
        match control {
            ControlSeen::Close { code, reason } => match self.close.as_mut() {
                None => {
                    self.close = Some(CloseState { initiator: from, code, reason, echoed: false })
                }
                Some(c) if c.initiator != from => c.echoed = true,
                Some(_) => {}
            },
            ControlSeen::Ping { payload } => {
                let limit = ctx.opts.limits.max_pending_pings;
                let seen = self
                    .pings
                    .get_or_insert_with(Default::default)
                    .ping(from, payload, meta, limit);
                if seen.answered_with_ping {
                    self.problem(ProblemCode::PingAnsweredWithPing, Some(from), meta, ctx,
                        "a ping was answered with a ping carrying the same payload instead of a pong".into());
                }
                if seen.forgot || limit == 0 {
                    self.problem(ProblemCode::PingLimit, Some(from), meta, ctx,
                        format!("more than {limit} pings waiting for a pong: the oldest is no longer paired"));
                }
            }
            ControlSeen::Pong { payload } => {
                if !self.pings.get_or_insert_with(Default::default).pong(from, &payload, meta) {
                    self.problem(
                        ProblemCode::UnsolicitedPong,
                        Some(from),
                        meta,
                        ctx,
                        "pong without a matching ping".into(),
                    );
                }
            }
        }
    }

    /// Decides what the connection carries from its first bytes.
    fn detect(&mut self, mut from: Side, data: &[u8], meta: Meta, ctx: &mut Ctx<'_>) -> Feedback {
        let mut feedback = Feedback::Continue;
        let mut data = data;
        if self.chunked[idx(from)].is_some() {
            match self.chunked_input(idx(from), data, meta, ctx) {
                Some(n) => data = data.get(n..).unwrap_or_default(),
                None => return feedback,
            }
        }
        let skip = self.body_skip[idx(from)].min(data.len() as u64) as usize;
        if skip > 0 {
            self.body_skip[idx(from)] -= skip as u64;
            ctx.acct.http_bytes += skip as u64;
            self.body_bytes(idx(from), data.get(..skip).unwrap_or_default(), meta, ctx);
            data = data.get(skip..).unwrap_or_default();
        }
        if !data.is_empty() {
            self.note_arrival(idx(from), meta);
        }
        let buf = &mut self.pending[idx(from)];
        let room = ctx
            .opts
            .limits
            .max_scan_window
            .max(ctx.opts.limits.max_http_header)
            .saturating_sub(buf.len());
        let take = data.len().min(room);
        buf.extend_from_slice(data.get(..take).unwrap_or_default());
        if take < data.len() {
            ctx.acct.skipped_bytes += (data.len() - take) as u64;
        }
        loop {
            let buf = &self.pending[idx(from)];
            if buf.is_empty() {
                return feedback;
            }
            let step = match self.phase {
                Phase::AwaitingResponse if from == Side::Client => return feedback,
                Phase::AwaitingResponse
                    if self.lost_in_handshake[idx(Side::Server)] && !looks_like_response(buf) =>
                {
                    self.after_lost_response(meta, ctx)
                }
                Phase::AwaitingResponse => self.try_response(meta, ctx),
                // A client may send what goes through the tunnel (a ClientHello) before the
                // proxy answers its CONNECT: held until the answer says what it is.
                Phase::Detecting if from == Side::Client && self.connect_asked() => Step::Wait,
                Phase::Detecting if self.proxy.as_ref().is_some_and(|p| p.socks.is_some()) => {
                    self.try_socks(meta, ctx)
                }
                Phase::Detecting if self.may_start_h2() && self.h2_start(from) => {
                    if self.pending[0].len() < h2_wire::PREFACE.len() {
                        Step::Wait
                    } else {
                        self.phase = Phase::Http2;
                        self.h2_opened = true;
                        self.http_seen = true;
                        // Not WebSocket until a stream opens one (which says so): held back
                        // until then, its records would hold back every later connection's
                        // for as long as a browser keeps the connection open.
                        ctx.out.classify(self.ends().stream, false);
                        return feedback;
                    }
                }
                Phase::Detecting => {
                    if from == Side::Client
                        && socks::looks_like_start(buf)
                        && self.may_start_socks()
                    {
                        let hs = SocksHandshake::new(buf);
                        self.proxy.get_or_insert_with(Default::default).socks = Some(hs);
                        continue;
                    }
                    if looks_like_request(buf) {
                        if from == Side::Server {
                            if self.roles_from_syn || self.http_seen {
                                self.give_up(ctx);
                                return feedback;
                            }
                            from = self.swap_roles();
                            feedback = Feedback::SwapRoles;
                        }
                        self.try_request(meta, ctx)
                    } else if looks_like_response(buf) {
                        if from == Side::Client {
                            if self.roles_from_syn || self.http_seen {
                                self.give_up(ctx);
                                return feedback;
                            }
                            from = self.swap_roles();
                            feedback = Feedback::SwapRoles;
                        }
                        self.try_response(meta, ctx)
                    } else if self.http_seen || (self.roles_from_syn && !self.lost_start()) {
                        // A WebSocket connection seen from its start begins with a handshake;
                        // frames without one are only looked for when the start is missing.
                        self.give_up(ctx);
                        return feedback;
                    } else if buf.len() < 2 {
                        return feedback;
                    } else {
                        match self.sniff_websocket(from, meta, ctx) {
                            Sniffed::WebSocket(swap) => {
                                if swap {
                                    feedback = Feedback::SwapRoles;
                                }
                                return feedback;
                            }
                            Sniffed::Wait => Step::Wait,
                            Sniffed::No => {
                                self.give_up(ctx);
                                return feedback;
                            }
                        }
                    }
                }
                Phase::WebSocket | Phase::Rejected | Phase::Opaque | Phase::Http2 => {
                    return feedback
                }
            };
            match step {
                Step::Wait => {
                    if self.pending[idx(from)].len()
                        >= ctx.opts.limits.max_scan_window.max(ctx.opts.limits.max_http_header)
                    {
                        self.give_up(ctx);
                    }
                    return feedback;
                }
                Step::Again => continue,
                Step::Done => return feedback,
            }
        }
    }

    /// Whether the connection may begin with HTTP/2's preface here: seen from its start, at
    /// its first byte or at the first of the innermost proxy tunnel (after a PROXY protocol
    /// header, a SOCKS grant or a CONNECT's 2xx).
    fn may_start_h2(&self) -> bool {
        !self.lost_start()
            && !self.connect_asked()
            && self.proxy.as_ref().is_none_or(|p| p.socks.is_none())
            && self.at_tunnel_start()
    }

    /// Whether the client's held bytes begin where the innermost tunnel does (the start of
    /// the connection when there is none): all the client sent before them was read.
    fn at_tunnel_start(&self) -> bool {
        self.client_read() == self.proxy.as_ref().map_or(0, |p| p.tunnel_start)
    }

    /// Client bytes read so far: all it sent but those still held.
    fn client_read(&self) -> u64 {
        self.stream_bytes[0].saturating_sub(self.pending[0].len() as u64)
    }

    /// Whether the held bytes are HTTP/2's start: the client's preface (or a prefix of it),
    /// or, before the client's preface arrived, the server's SETTINGS with nothing from the
    /// client yet.
    fn h2_start(&self, from: Side) -> bool {
        let [client, server] = &self.pending;
        match from {
            Side::Client => h2_wire::starts_with_preface(client),
            Side::Server => {
                (client.is_empty() || h2_wire::starts_with_preface(client))
                    && h2_wire::may_start_server_settings(server)
            }
        }
    }

    /// Whether the connection turned out to be HTTP/2 since the last call; with the bytes
    /// each side sent so far, one piece per packet they came in, in capture order, for the
    /// stage that reads HTTP/2's frames.
    pub fn take_h2_opened(&mut self) -> Option<Vec<(Side, Meta, Vec<u8>)>> {
        if !std::mem::take(&mut self.h2_opened) {
            return None;
        }
        let mut out = Vec::new();
        for side in [Side::Client, Side::Server] {
            let (held, spans) = self.take_held_spans(idx(side), self.last_meta);
            out.extend(spans.into_iter().map(|(r, meta)| (side, meta, held[r].to_vec())));
        }
        self.drop_held();
        // Stable: a side's pieces keep their order within a packet.
        out.sort_by_key(|(_, meta, _)| meta.packet);
        Some(out)
    }

    /// The session of one WebSocket carried over HTTP/2 on the connection `info`.
    /// `proxies`: those the TCP connection went through ([`Session::proxy_hops`]).
    pub fn for_h2_stream(
        info: &ConnInfo,
        h2_stream: crate::event::H2StreamId,
        first: Meta,
        proxies: &[String],
    ) -> Session {
        let proxy = (!proxies.is_empty())
            .then(|| Box::new(Proxies { hops: proxies.to_vec(), ..Proxies::default() }));
        Session {
            proxy,
            ends: Some(Endpoints {
                stream: info.stream,
                h2_stream: Some(h2_stream),
                client: info.client,
                server: info.server,
            }),
            roles_from_syn: true,
            http_seen: true,
            first_meta: first,
            last_meta: first,
            ..Session::default()
        }
    }

    /// The proxies the connection went through so far, outermost first.
    pub fn proxy_hops(&self) -> &[String] {
        self.proxy.as_ref().map_or(&[], |p| &p.hops)
    }

    /// An HTTP/2 connection's count of WebSockets, for its connection record.
    pub fn set_h2_websockets(&mut self, n: u32) {
        self.h2_websockets = Some(n);
    }

    /// A WebSocket over HTTP/2's handshake (built by the stage that read it): reported, and
    /// the WebSocket started when it was accepted.
    pub fn h2_handshake(
        &mut self,
        rec: HandshakeRecord,
        deflate: Option<DeflateParams>,
        accepted: bool,
        ctx: &mut Ctx<'_>,
    ) {
        let meta = rec.meta;
        self.finish_handshake(rec, deflate, accepted, meta, ctx);
        if !accepted {
            self.phase = Phase::Rejected;
        }
    }

    /// A load balancer's PROXY protocol header (`summary`, when complete) took `len` bytes
    /// off the start of the client's stream, before this session saw any.
    pub fn note_proxy_header(&mut self, summary: Option<String>, len: u64) {
        self.stream_bytes[0] += len;
        let proxy = self.proxy.get_or_insert_with(Default::default);
        proxy.tunnel_start += len;
        proxy.hops.extend(summary);
    }

    /// A proxy tunnel opened. Returns whether the client's held bytes begin a TLS record (a
    /// ClientHello sent before the proxy answered): they are then left for the TLS stage, and
    /// the session stops reading them.
    fn open_tunnel(&mut self) -> bool {
        let tls = !self.decrypted && self.pending[0].first() == Some(&0x16);
        self.tunnel_opened = Some(if tls { TunnelOpened::TlsHeld } else { TunnelOpened::Empty });
        tls
    }

    /// Whether a proxy tunnel (HTTP CONNECT, SOCKS) opened since the last call, for the stage
    /// below to look for TLS again in what follows; with the bytes each side sent after it
    /// when they begin with TLS, taken back one piece per packet they came in (client
    /// first), to be handed to the TLS stage as if they had just arrived.
    pub fn take_tunnel_opened(&mut self) -> Option<Vec<(Side, Meta, Vec<u8>)>> {
        let opened = self.tunnel_opened.take()?;
        let mut out = Vec::new();
        if opened == TunnelOpened::TlsHeld {
            for side in [Side::Client, Side::Server] {
                let i = idx(side);
                let (held, spans) = self.take_held_spans(i, self.last_meta);
                self.reset_scan(i);
                self.stream_bytes[i] = self.stream_bytes[i].saturating_sub(held.len() as u64);
                out.extend(spans.into_iter().map(|(r, meta)| (side, meta, held[r].to_vec())));
            }
        }
        Some(out)
    }

    /// Whether a CONNECT request waits for its answer.
    fn connect_asked(&self) -> bool {
        self.proxy.as_ref().is_some_and(|p| p.connect_target.is_some())
    }

    /// Whether a SOCKS handshake may begin here: at the start of a connection seen from its
    /// SYN, or right where a proxy tunnel opened, before any HTTP.
    fn may_start_socks(&self) -> bool {
        self.roles_from_syn
            && !self.lost_start()
            && !self.http_seen
            && self.proxy_hops().len() < MAX_PROXY_HOPS
            && self.at_tunnel_start()
    }

    /// Reads the SOCKS handshake in progress from both sides' held bytes.
    fn try_socks(&mut self, meta: Meta, ctx: &mut Ctx<'_>) -> Step {
        let Some(hs) = self.proxy.as_mut().and_then(|p| p.socks.as_mut()) else {
            return Step::Done;
        };
        let (progress, used) = hs.advance(&self.pending[0], &self.pending[1]);
        for (i, n) in used.into_iter().enumerate() {
            let n = n.min(self.pending[i].len());
            self.consume_held(i, n);
            ctx.acct.http_bytes += n as u64;
            if let Some(p) = self.proxy.as_mut().filter(|_| i == 0) {
                p.tunnel_start += n as u64;
            }
        }
        match progress {
            socks::Progress::Need => Step::Wait,
            socks::Progress::Open => {
                if let Some(p) = self.proxy.as_mut() {
                    if let Some(hs) = p.socks.take() {
                        p.hops.push(format!("{} to {}", hs.name(), hs.target().unwrap_or("?")));
                    }
                }
                if self.open_tunnel() {
                    return Step::Done;
                }
                // What either side sent after the handshake starts the tunnelled connection.
                if !self.pending[0].is_empty() {
                    let _ = self.detect(Side::Client, &[], meta, ctx);
                }
                Step::Again
            }
            socks::Progress::Failed(_) => {
                if let Some(p) = self.proxy.as_mut() {
                    p.socks = None;
                }
                self.give_up(ctx);
                Step::Done
            }
        }
    }

    /// A later stage found the roles the TCP stage guessed to be wrong (a TLS ClientHello
    /// from the supposed server) before any stream bytes reached the session.
    pub fn swap_roles_before_data(&mut self) {
        self.swap_roles();
    }

    /// The bytes handed on are decrypted TLS records: a gap in them has no known length.
    pub fn set_decrypted(&mut self) {
        self.decrypted = true;
    }

    fn swap_roles(&mut self) -> Side {
        if let Some(e) = self.ends.as_mut() {
            std::mem::swap(&mut e.client, &mut e.server);
        }
        self.pending.swap(0, 1);
        if let Some(arrivals) = self.arrivals.as_mut() {
            arrivals.at.swap(0, 1);
            arrivals.held_from.swap(0, 1);
        }
        if let Some(scans) = self.scans.as_mut() {
            scans.swap(0, 1);
        }
        self.body_skip.swap(0, 1);
        self.chunked.swap(0, 1);
        self.stream_bytes.swap(0, 1);
        self.fin_seen.swap(0, 1);
        self.first_fin_from = self.first_fin_from.map(Side::other);
        self.rst_from = self.rst_from.map(Side::other);
        Side::Client
    }

    /// Notes that bytes of the packet `meta` are about to be appended to `pending[i]`.
    fn note_arrival(&mut self, i: usize, meta: Meta) {
        let held = self.pending[i].len() as u64;
        let arrivals = self.arrivals.get_or_insert_with(Default::default);
        let at = arrivals.held_from[i] + held;
        let list = &mut arrivals.at[i];
        let full = list.len() >= MAX_ARRIVALS;
        match list.last_mut() {
            Some((_, last)) if last.packet == meta.packet => {}
            Some((_, last)) if full => *last = meta,
            _ => list.push((at, meta)),
        }
    }

    /// Stream bytes of either side were lost before detection finished.
    fn lost_start(&self) -> bool {
        self.lost_in_handshake.contains(&true)
    }

    /// Takes the first `n` held bytes of side `i` off (read or skipped): their bytes, their
    /// arrivals and the frame search over them.
    fn consume_held(&mut self, i: usize, n: usize) {
        self.pending[i].drain(..n);
        self.forget_held(i, n);
        self.reset_scan(i);
    }

    /// Forgets the first `n` held bytes of side `i` (consumed or dropped).
    fn forget_held(&mut self, i: usize, n: usize) {
        let Some(arrivals) = self.arrivals.as_mut() else { return };
        arrivals.held_from[i] += n as u64;
        let from = arrivals.held_from[i];
        let list = &mut arrivals.at[i];
        // Keep the arrival the new first byte belongs to.
        let gone = list.iter().take_while(|&&(at, _)| at <= from).count().saturating_sub(1);
        list.drain(..gone);
    }

    /// The packet that brought held byte `at` of side `i`.
    fn arrival_of(&self, i: usize, at: usize) -> Option<Meta> {
        let arrivals = self.arrivals.as_ref()?;
        let abs = arrivals.held_from[i] + at as u64;
        arrivals.at[i].iter().rev().find(|&&(start, _)| start <= abs).map(|&(_, m)| m)
    }

    /// Takes all held bytes of side `i`, with the packets they came in (stream offsets, and
    /// the offset of the first byte).
    fn take_held(&mut self, i: usize) -> (Vec<u8>, Vec<(u64, Meta)>, u64) {
        let held = std::mem::take(&mut self.pending[i]);
        let Some(arrivals) = self.arrivals.as_mut() else { return (held, Vec::new(), 0) };
        let list = std::mem::take(&mut arrivals.at[i]);
        let from = arrivals.held_from[i];
        arrivals.held_from[i] += held.len() as u64;
        if self.pending.iter().all(Vec::is_empty) {
            self.arrivals = None;
        }
        (held, list, from)
    }

    /// Takes all held bytes of side `i`, cut where each packet's bytes begin: the non-empty
    /// ranges with the packet they came in (`fallback` when none was remembered).
    fn take_held_spans(
        &mut self,
        i: usize,
        fallback: Meta,
    ) -> (Vec<u8>, Vec<(std::ops::Range<usize>, Meta)>) {
        let (held, arrivals, from) = self.take_held(i);
        let len = held.len();
        // The first remembered packet holds the first byte (forget_held keeps it).
        let mut starts: Vec<(usize, Meta)> = arrivals
            .iter()
            .map(|&(at, m)| (usize::try_from(at.saturating_sub(from)).unwrap_or(len).min(len), m))
            .collect();
        match starts.first_mut() {
            Some(first) => first.0 = 0,
            None => starts.push((0, fallback)),
        }
        let spans = starts
            .iter()
            .enumerate()
            .filter_map(|(k, &(start, meta))| {
                let end = starts.get(k + 1).map_or(len, |&(next, _)| next);
                (start < end).then_some((start..end, meta))
            })
            .collect();
        (held, spans)
    }

    /// Drops everything held on both sides.
    fn drop_held(&mut self) {
        self.pending = Default::default();
        self.arrivals = None;
        self.scans = None;
    }

    fn give_up(&mut self, ctx: &mut Ctx<'_>) {
        let held: usize = self.pending.iter().map(Vec::len).sum();
        if self.http_seen {
            ctx.acct.http_bytes += held as u64;
        } else {
            ctx.acct.other_bytes += held as u64;
        }
        self.drop_held();
        if self.refused_may_retry {
            self.phase = Phase::Rejected;
            return;
        }
        self.phase = Phase::Opaque;
        ctx.out.classify(self.ends().stream, false);
    }

    fn try_request(&mut self, meta: Meta, ctx: &mut Ctx<'_>) -> Step {
        let buf = &self.pending[0];
        let req = match parse_request(buf, ctx.opts.limits.max_http_header) {
            HeadParse::Partial => return Step::Wait,
            HeadParse::Complete(req) => req,
            HeadParse::TooLarge => {
                self.problem(
                    ProblemCode::HeaderLimit,
                    Some(Side::Client),
                    meta,
                    ctx,
                    format!(
                        "request head longer than {} bytes (raise --max-http-header)",
                        ctx.opts.limits.max_http_header
                    ),
                );
                self.give_up(ctx);
                return Step::Done;
            }
            HeadParse::Invalid(why) => {
                if self.http_seen {
                    self.problem(ProblemCode::MalformedHttp, Some(Side::Client), meta, ctx, why);
                }
                self.give_up(ctx);
                return Step::Done;
            }
        };
        self.http_seen = true;
        let head_len = req.head_len.min(buf.len());
        if req.target_has_controls {
            self.problem(
                ProblemCode::MalformedHttp,
                Some(Side::Client),
                meta,
                ctx,
                "the request target contains control characters (RFC 9112 3.2); parsed anyway"
                    .into(),
            );
        }
        let meta = self.arrival_of(0, head_len.saturating_sub(1)).unwrap_or(meta);
        self.consume_held(0, head_len);
        ctx.acct.http_bytes += head_len as u64;
        let ends = self.ends();
        let upgrade = is_websocket_upgrade_request(&req);
        ctx.out.emit(Event::Request(RequestRecord {
            meta,
            stream: ends.stream,
            h2_stream: None,
            src: ends.client,
            dst: ends.server,
            method: req.method.clone(),
            path: req.path.clone(),
            upgrade,
            extensions_offered: offered_extensions(&req),
        }));
        if upgrade {
            self.phase = Phase::AwaitingResponse;
            ctx.out.classify(ends.stream, true);
            self.request = Some(Box::new((req, meta)));
            // Bytes the client sent after its request wait for the response's verdict.
            Step::Again
        } else {
            if req.method.eq_ignore_ascii_case("CONNECT") {
                self.proxy.get_or_insert_with(Default::default).connect_target =
                    Some(req.path.clone());
            } else if let Some(p) = self.proxy.as_mut() {
                p.connect_target = None;
            }
            let body_len =
                self.start_body(0, req.header("content-length"), req.header("transfer-encoding"));
            if is_polling_request(&req.path) {
                // Plain HTTP carrying an Engine.IO session: never WebSocket, decoded apart.
                ctx.out.classify(ends.stream, false);
                self.polling.get_or_insert_with(|| Box::new(Polling::new(&req.path))).request(
                    &req.method,
                    &req.path,
                    body_len,
                );
            }
            self.skip_pending_body(0, meta, ctx);
            Step::Again
        }
    }

    /// Sets up the body that follows a head of side `i` (RFC 9112 6.3: chunked wins over
    /// Content-Length); returns its length, `u64::MAX` when chunked (not known yet).
    fn start_body(&mut self, i: usize, length: Option<&str>, coding: Option<&str>) -> u64 {
        let chunked =
            coding.is_some_and(|c| c.split(',').any(|t| t.trim().eq_ignore_ascii_case("chunked")));
        if chunked {
            self.body_skip[i] = 0;
            self.chunked[i] = Some(ChunkedDecoder::default());
            u64::MAX
        } else {
            self.body_skip[i] = content_length(length);
            self.body_skip[i]
        }
    }

    /// Bytes of side `i` while a chunked body is open: returns how many belonged to it, or
    /// `None` when the body was malformed and the connection was given up on.
    fn chunked_input(
        &mut self,
        i: usize,
        data: &[u8],
        meta: Meta,
        ctx: &mut Ctx<'_>,
    ) -> Option<usize> {
        let mut dec = self.chunked[i].take()?;
        let mut body = Vec::new();
        match dec.feed(data, &mut body) {
            Ok(n) => {
                ctx.acct.http_bytes += n as u64;
                if !dec.is_done() {
                    self.chunked[i] = Some(dec);
                }
                self.body_bytes(i, &body, meta, ctx);
                Some(n)
            }
            Err(e) => {
                ctx.acct.http_bytes += data.len() as u64;
                let side = if i == 0 { Side::Client } else { Side::Server };
                self.problem(
                    ProblemCode::MalformedHttp,
                    Some(side),
                    meta,
                    ctx,
                    format!("chunked body: {e}"),
                );
                self.give_up(ctx);
                None
            }
        }
    }

    /// Skips as much of a pending HTTP body as is already held.
    fn skip_pending_body(&mut self, i: usize, meta: Meta, ctx: &mut Ctx<'_>) {
        if self.chunked[i].is_some() {
            let held = std::mem::take(&mut self.pending[i]);
            self.reset_scan(i);
            if let Some(n) = self.chunked_input(i, &held, meta, ctx) {
                self.pending[i] = held;
                self.pending[i].drain(..n);
                self.forget_held(i, n);
            } else {
                self.forget_held(i, held.len());
            }
            return;
        }
        let n = self.body_skip[i].min(self.pending[i].len() as u64) as usize;
        let body = std::mem::take(&mut self.pending[i]);
        self.body_skip[i] -= n as u64;
        self.body_bytes(i, body.get(..n).unwrap_or_default(), meta, ctx);
        self.pending[i] = body;
        self.consume_held(i, n);
        ctx.acct.http_bytes += n as u64;
    }

    /// HTTP body bytes of side `i` (already counted off `body_skip`): long-polling bodies are
    /// kept and, once whole, decoded into one `app` record per Engine.IO packet.
    fn body_bytes(&mut self, i: usize, bytes: &[u8], meta: Meta, ctx: &mut Ctx<'_>) {
        let ends = self.ends();
        let Some(poll) = self.polling.as_mut() else { return };
        let from = if i == 0 { Side::Client } else { Side::Server };
        poll.body_bytes(from, bytes, ctx.opts.limits.max_message);
        if self.body_skip[i] > 0 || self.chunked[i].is_some() {
            return;
        }
        for p in poll.body_done(from, meta.packet, ctx.sids) {
            if let Some(sid) = &p.sid {
                ctx.sids.add(sid, ends.stream);
            }
            let problems = if p.error.is_some() {
                push_once(&mut self.problems, ProblemCode::AppDecodeError);
                vec![ProblemCode::AppDecodeError]
            } else {
                Vec::new()
            };
            ctx.out.emit(Event::App(Box::new(AppRecord {
                meta,
                stream: ends.stream,
                from,
                src: ends.src(from),
                dst: ends.dst(from),
                transport: "polling",
                method: p.method,
                path: p.path,
                sid: p.sid,
                text: p.raw,
                app: p.app,
                problems,
            })));
        }
    }

    fn try_response(&mut self, meta: Meta, ctx: &mut Ctx<'_>) -> Step {
        let buf = &self.pending[1];
        let resp = match parse_response(buf, ctx.opts.limits.max_http_header) {
            HeadParse::Partial => return Step::Wait,
            HeadParse::Complete(resp) => resp,
            HeadParse::TooLarge => {
                self.problem(
                    ProblemCode::HeaderLimit,
                    Some(Side::Server),
                    meta,
                    ctx,
                    format!(
                        "response head longer than {} bytes (raise --max-http-header)",
                        ctx.opts.limits.max_http_header
                    ),
                );
                self.finish_unanswered(meta, ctx);
                self.give_up(ctx);
                return Step::Done;
            }
            HeadParse::Invalid(why) => {
                // Bytes of the handshake were lost: what comes before the answer may be a
                // proxy's reply whose request the capture lacks (a SOCKS grant). The answer
                // is read from where it starts; the bytes before it are skipped and told.
                let answer_at = (self.lost_start() && self.request.is_some())
                    .then(|| memchr::memmem::find(buf, b"HTTP/1."))
                    .flatten()
                    .filter(|&at| at > 0);
                if let Some(at) = answer_at {
                    self.consume_held(1, at);
                    ctx.acct.skipped_bytes += at as u64;
                    self.problem(
                        ProblemCode::UndecodableData,
                        Some(Side::Server),
                        meta,
                        ctx,
                        format!(
                            "{at} bytes before the answer to the upgrade request, after bytes \
                             of the handshake were lost (a proxy's reply?), were skipped"
                        ),
                    );
                    return Step::Again;
                }
                if self.request.is_some() {
                    self.problem(ProblemCode::MalformedHttp, Some(Side::Server), meta, ctx, why);
                    self.finish_unanswered(meta, ctx);
                }
                self.give_up(ctx);
                return Step::Done;
            }
        };
        self.http_seen = true;
        let head_len = resp.head_len.min(buf.len());
        let meta = self.arrival_of(1, head_len.saturating_sub(1)).unwrap_or(meta);
        self.consume_held(1, head_len);
        ctx.acct.http_bytes += head_len as u64;
        if (100..200).contains(&resp.status) && resp.status != 101 {
            // 100 Continue and friends come before the real answer.
            return Step::Again;
        }
        // The answer to a CONNECT, when one was asked (1xx other than 101 returned above).
        let connect_target = self.proxy.as_mut().and_then(|p| p.connect_target.take());
        let client_read = self.client_read();
        if let (Some(target), Some(p)) = (&connect_target, self.proxy.as_mut()) {
            if (200..300).contains(&resp.status) {
                // RFC 9110 9.3.6: the tunnel starts right after the head (a 2xx to CONNECT
                // has no body, whatever its headers say). Tunnels inside tunnels are named
                // up to a bound, whatever a stream repeats.
                if p.hops.len() < MAX_PROXY_HOPS {
                    p.hops.push(format!("HTTP CONNECT to {target}"));
                }
                // The client's bytes past the CONNECT are the tunnelled connection's start.
                p.tunnel_start = client_read;
                if self.open_tunnel() {
                    return Step::Done;
                }
                if !self.pending[0].is_empty() {
                    let _ = self.detect(Side::Client, &[], meta, ctx);
                }
                return Step::Again;
            }
        }
        let connect_refused = connect_target.is_some() && resp.status >= 200;
        if self.request.is_none() && resp.status != 101 {
            // An ordinary HTTP response on a connection we joined late.
            let body_len =
                self.start_body(1, resp.header("content-length"), resp.header("transfer-encoding"));
            if let Some(poll) = self.polling.as_mut() {
                poll.response(resp.status, body_len);
            }
            self.skip_pending_body(1, meta, ctx);
            if connect_refused && !self.pending[0].is_empty() {
                // The retry the client sent before the refusal arrived.
                let _ = self.detect(Side::Client, &[], meta, ctx);
            }
            return Step::Again;
        }
        if self.request.is_none() && resp.switches_to_another_protocol() {
            // An upgrade to HTTP/2 (h2c) or TLS, asked for by a request that was not
            // WebSocket's: the connection carries that protocol from here.
            self.give_up(ctx);
            return Step::Done;
        }
        let request = self.request.take();
        self.report_handshake(request.as_deref(), Some((&resp, meta)), meta, ctx);
        if self.phase != Phase::Detecting {
            return Step::Done;
        }
        // Refused, and the connection stays open: skip the refusal's body, then take the
        // client's next request, which may already be held (pipelined).
        self.start_body(1, resp.header("content-length"), resp.header("transfer-encoding"));
        self.skip_pending_body(1, meta, ctx);
        if !self.pending[0].is_empty() {
            let _ = self.detect(Side::Client, &[], meta, ctx);
        }
        Step::Again
    }

    /// Builds and emits the handshake record; starts WebSocket decoding after a 101.
    fn report_handshake(
        &mut self,
        request: Option<&(RequestHead, Meta)>,
        response: Option<(&ResponseHead, Meta)>,
        meta: Meta,
        ctx: &mut Ctx<'_>,
    ) {
        let ends = self.ends();
        let req = request.map(|(r, _)| r);
        let mut rec = HandshakeRecord {
            meta,
            stream: ends.stream,
            h2_stream: ends.h2_stream,
            request_packet: request.map(|(_, m)| m.packet),
            response_packet: response.map(|(_, m)| m.packet),
            client: Some(ends.client),
            server: Some(ends.server),
            ..HandshakeRecord::default()
        };
        if let Some(req) = req {
            rec.method = Some(req.method.clone());
            rec.path = Some(req.path.clone());
            rec.host = req.header("host").map(str::to_owned);
            rec.origin = req.header("origin").map(str::to_owned);
            rec.key = req.header("sec-websocket-key").map(str::to_owned);
            rec.version = req.header("sec-websocket-version").map(str::to_owned);
            rec.protocols_offered = offered_protocols(req);
            rec.extensions_offered = offered_extensions(req);
            rec.request_headers = req.headers.clone();
            rec.problems.extend(check_request(req));
        }
        let mut deflate = None;
        let mut websocket = false;
        match response {
            Some((resp, _)) => {
                let check = check_handshake(req, resp);
                rec.status = Some(resp.status);
                rec.reason = Some(resp.reason.clone());
                rec.accept = resp.header("sec-websocket-accept").map(str::to_owned);
                rec.accept_ok = check.accept_ok;
                rec.protocol = check.protocol.clone();
                rec.extensions = check.extensions.clone();
                rec.response_headers = resp.headers.clone();
                rec.notes = check.notes.clone();
                // An answer is blamed for coming without a request only when the client's side
                // shows what it sent instead; a request the capture lacks (lost in a TCP gap,
                // which may be told only later, or sent before the capture began) explains it.
                let tunnel_start = self.proxy.as_ref().map_or(0, |p| p.tunnel_start);
                let request_lost = req.is_none()
                    && (self.lost_in_handshake[idx(Side::Client)]
                        || self.stream_bytes[idx(Side::Client)] <= tunnel_start);
                if request_lost {
                    rec.notes.push("the upgrade request is not in the capture".into());
                }
                for p in check.problems {
                    let explained = request_lost && p == ProblemCode::ResponseWithoutRequest;
                    if !explained && !rec.problems.contains(&p) {
                        rec.problems.push(p);
                    }
                }
                deflate = check.deflate;
                websocket = resp.status == 101;
            }
            None if self.lost_in_handshake[idx(Side::Server)] => {
                rec.notes.push("the server's answer was lost in a TCP gap".into())
            }
            None => rec.notes.push("the connection ended before the server answered".into()),
        }
        self.finish_handshake(rec, deflate, websocket, meta, ctx);
        if websocket {
            return;
        }
        if response.is_some_and(|(r, _)| r.ends_before_the_connection()) {
            self.phase = Phase::Detecting;
            self.refused_may_retry = true;
        } else if response.is_some() {
            self.phase = Phase::Rejected;
            let held: usize = self.pending.iter().map(Vec::len).sum();
            ctx.acct.http_bytes += held as u64;
            self.drop_held();
        }
    }

    /// Reports a handshake and, when `websocket`, starts decoding frames.
    fn finish_handshake(
        &mut self,
        mut rec: HandshakeRecord,
        deflate: Option<DeflateParams>,
        websocket: bool,
        meta: Meta,
        ctx: &mut Ctx<'_>,
    ) {
        let ends = self.ends();
        if let Some(p) = self.proxy.as_ref().filter(|p| !p.hops.is_empty()) {
            rec.notes.push(format!("through a proxy: {}", p.hops.join(", then ")));
        }
        self.summary = HandshakeSummary {
            path: rec.path.clone(),
            status: rec.status,
            accept_ok: rec.accept_ok,
            protocol: rec.protocol.clone(),
            extensions: rec.extensions.clone(),
        };
        self.handshake_seen = true;
        for p in &rec.problems {
            if !self.problems.contains(p) {
                self.problems.push(*p);
            }
        }
        ctx.out.classify(ends.stream, true);
        ctx.out.emit(Event::Handshake(Box::new(rec)));
        if websocket {
            if let Some(sid) = self.session_sid() {
                ctx.sids.add(&sid, ends.stream);
            }
            self.app = Some(Box::new(AppConn::new(&Hints {
                path: self.summary.path.as_deref(),
                protocol: self.summary.protocol.as_deref(),
                max_held: ctx.opts.limits.max_message,
            })));
            let client = DeflateSetup {
                negotiated: deflate.is_some(),
                no_context_takeover: deflate.is_some_and(|d| d.client_no_context_takeover),
            };
            let server = DeflateSetup {
                negotiated: deflate.is_some(),
                no_context_takeover: deflate.is_some_and(|d| d.server_no_context_takeover),
            };
            self.start_websocket(client, server, true, meta, ctx);
        }
    }

    /// The upgrade request got no usable answer: report the handshake as it stands.
    fn finish_unanswered(&mut self, meta: Meta, ctx: &mut Ctx<'_>) {
        if let Some(request) = self.request.take() {
            self.report_handshake(Some(&request), None, meta, ctx);
        }
    }

    fn start_websocket(
        &mut self,
        client: DeflateSetup,
        server: DeflateSetup,
        handshake_seen: bool,
        meta: Meta,
        ctx: &mut Ctx<'_>,
    ) {
        self.phase = Phase::WebSocket;
        self.dirs = Some(Box::new([
            Direction::new(Side::Client, client, handshake_seen),
            Direction::new(Side::Server, server, handshake_seen),
        ]));
        self.scans = None;
        // Bytes that arrived with or after the handshake heads are the first frames: each
        // packet's bytes with its own packet number and time, both sides in the order their
        // packets came (which side closed first, or pinged first, is read from that order).
        let (server, server_spans) = self.take_held_spans(idx(Side::Server), meta);
        let (client, client_spans) = self.take_held_spans(idx(Side::Client), meta);
        let mut spans: Vec<(Side, std::ops::Range<usize>, Meta)> = server_spans
            .into_iter()
            .map(|(r, m)| (Side::Server, r, m))
            .chain(client_spans.into_iter().map(|(r, m)| (Side::Client, r, m)))
            .collect();
        // Stable: a packet's server bytes before its client bytes, as before.
        spans.sort_by_key(|(_, _, m)| m.packet);
        for (side, range, meta) in spans {
            let held = if side == Side::Server { &server } else { &client };
            self.feed_ws(side, &held[range], meta, ctx);
        }
    }

    /// The server's answer to the upgrade request was lost in a TCP gap, and what came after
    /// it is not an HTTP response: frames are looked for as in a capture joined mid-stream
    /// (the request asked for WebSocket), after the request is reported unanswered. Nothing
    /// is blamed on the peers.
    fn after_lost_response(&mut self, meta: Meta, ctx: &mut Ctx<'_>) -> Step {
        match self.find_frames(Side::Server, ctx) {
            Err(Sniffed::Wait) => Step::Wait,
            Err(_) => {
                self.finish_unanswered(meta, ctx);
                self.give_up(ctx);
                Step::Done
            }
            Ok(_) => {
                self.finish_unanswered(meta, ctx);
                self.start_by_content(
                    "WebSocket recognised by frame content; the server's answer to the upgrade \
                     request is not in the capture (lost in a TCP gap)",
                    meta,
                    ctx,
                );
                Step::Done
            }
        }
    }

    /// Mid-stream pickup: is this a run of WebSocket frames?
    fn sniff_websocket(&mut self, from: Side, meta: Meta, ctx: &mut Ctx<'_>) -> Sniffed {
        let sender_is_client = match self.find_frames(from, ctx) {
            Ok(masked) => masked,
            Err(no) => return no,
        };
        let mut swap = false;
        if sender_is_client != (from == Side::Client) && !self.roles_from_syn {
            self.swap_roles();
            swap = true;
        }
        self.start_by_content(
            "WebSocket recognised by frame content; the upgrade handshake is not in the capture",
            meta,
            ctx,
        );
        Sniffed::WebSocket(swap)
    }

    /// Whether the bytes held from `from` are a convincing run of WebSocket frames: `Ok` with
    /// whether the first is masked (a client's) when they are.
    fn find_frames(&mut self, from: Side, ctx: &mut Ctx<'_>) -> Result<bool, Sniffed> {
        let window = ctx.opts.limits.max_scan_window;
        let buf = &self.pending[idx(from)];
        let not_yet = if buf.len() >= window { Sniffed::No } else { Sniffed::Wait };
        let Some(at) = self.scans.get_or_insert_with(Default::default)[idx(from)].find(buf, None)
        else {
            return Err(not_yet);
        };
        let Some(first) = buf.get(at..).and_then(FrameHeader::parse) else {
            return Err(Sniffed::Wait);
        };
        let run =
            sniff::frame_run(buf.get(at..).unwrap_or_default(), Some(first.mask.is_some()), 4);
        // One frame alone is weak evidence: require a data or control opcode whose payload
        // makes sense, so that length-prefixed binary protocols are not taken for WebSocket.
        let strong =
            run.frames >= 2 || (at == 0 && run.ends_exactly && single_frame_plausible(buf, &first));
        if !strong {
            return Err(not_yet);
        }
        Ok(first.mask.is_some())
    }

    /// Decodes the connection as WebSocket from here on, its frames found by content: the
    /// handshake that would say what was negotiated is missing (`why`).
    fn start_by_content(&mut self, why: &str, meta: Meta, ctx: &mut Ctx<'_>) {
        let ends = self.ends();
        self.problem(ProblemCode::HandshakeNotSeen, None, meta, ctx, why.into());
        ctx.out.classify(ends.stream, true);
        self.app = Some(Box::new(AppConn::new(&Hints {
            path: self.summary.path.as_deref(),
            max_held: ctx.opts.limits.max_message,
            ..Hints::default()
        })));
        let off = DeflateSetup::default();
        self.start_websocket(off, off, false, meta, ctx);
    }

    fn on_closed(&mut self, reason: CloseReason, meta: Meta, ctx: &mut Ctx<'_>) {
        if self.closed {
            return;
        }
        self.closed = true;
        let ends = self.ends();
        if self.phase == Phase::AwaitingResponse {
            self.finish_unanswered(meta, ctx);
        }
        if let Some(dirs) = self.dirs.as_mut() {
            for dir in dirs.iter_mut() {
                dir.finish(meta, &ends, ctx);
            }
        }
        let leftover: usize = self.pending.iter().map(Vec::len).sum();
        if leftover > 0 {
            if self.http_seen {
                ctx.acct.http_bytes += leftover as u64;
            } else {
                ctx.acct.other_bytes += leftover as u64;
            }
            self.drop_held();
        }
        let websocket = self.dirs.is_some();
        let ended = matches!(reason, CloseReason::Fin | CloseReason::Rst | CloseReason::Reused);
        if websocket && ended {
            match &self.close {
                None => self.problem(
                    ProblemCode::NoCloseFrame,
                    None,
                    meta,
                    ctx,
                    "the connection ended without a close frame from either side".into(),
                ),
                Some(c) if !c.echoed => {
                    let who = c.initiator;
                    self.problem(
                        ProblemCode::CloseNotEchoed,
                        Some(who.other()),
                        meta,
                        ctx,
                        format!(
                            "the {} sent a close frame and the {} never answered it",
                            who.as_str(),
                            who.other().as_str()
                        ),
                    )
                }
                Some(_) => {}
            }
        }
        let tcp_end = if self.rst_from.is_some() {
            "rst"
        } else if self.fin_seen.iter().any(|&f| f) {
            "fin"
        } else {
            "open"
        };
        let (client_stats, server_stats) = match self.dirs.as_mut() {
            Some(dirs) => {
                let [c, s] = &mut **dirs;
                let mut cs = c.stats().clone();
                let mut ss = s.stats().clone();
                cs.stream_bytes = self.stream_bytes[0];
                ss.stream_bytes = self.stream_bytes[1];
                (cs, ss)
            }
            None => Default::default(),
        };
        // A WebSocket-only client has no sid in its path: the server's `open` packet names it.
        let sid = self
            .session_sid()
            .or_else(|| self.app.as_ref().and_then(|a| a.session_id()).map(str::to_owned))
            .or_else(|| self.polling.as_ref().and_then(|p| p.sid()));
        if let Some(s) = &sid {
            ctx.sids.add(s, ends.stream);
        }
        let close = self.close.as_ref().map(|c| CloseInfo {
            code: c.code,
            reason: c.reason.clone(),
            initiator: c.initiator,
            echoed: c.echoed,
            clean: c.echoed && tcp_end != "rst",
        });
        ctx.out.emit(Event::Connection(Box::new(ConnectionRecord {
            meta,
            stream: ends.stream,
            h2_stream: ends.h2_stream,
            h2_websockets: self.h2_websockets,
            client: ends.client,
            server: ends.server,
            first_packet: self.first_meta.packet,
            last_packet: self.last_meta.packet,
            start: self.first_meta.ts,
            end: self.last_meta.ts,
            precision: meta.precision,
            websocket,
            handshake_seen: self.handshake_seen,
            path: self.summary.path.clone(),
            status: self.summary.status,
            accept_ok: self.summary.accept_ok,
            protocol: self.summary.protocol.clone(),
            extensions: self.summary.extensions.clone(),
            client_stats,
            server_stats,
            rtts_ms: self
                .pings
                .as_mut()
                .map(|p| std::mem::take(&mut p.rtts_ms))
                .unwrap_or_default(),
            close,
            tcp_end,
            first_fin_from: self.first_fin_from,
            rst_from: self.rst_from,
            keepalives: self.keepalives,
            keepalive_acks: self.keepalive_acks,
            gaps: self.gaps,
            sid_streams: sid.as_deref().map(|s| ctx.sids.streams(s).to_vec()).unwrap_or_default(),
            app_protocol: self
                .app
                .as_ref()
                .and_then(|a| a.protocol())
                .or(self.polling.as_ref().map(|_| "engine.io")),
            sid,
            proxies: self.proxy.as_mut().map(|p| std::mem::take(&mut p.hops)).unwrap_or_default(),
            problems: self.problems.clone(),
            tls: None,
        })));
        // The connection's state is no longer needed; free it before the table does.
        self.dirs = None;
        self.pings = None;
    }
}

/// Passes records on, giving complete messages their JSON mark and `app` object. On
/// connections with an application protocol, the final frame of a data message waits for
/// its message (which follows at once), so that a single-frame message's frame carries the
/// same `app` object.
struct AppTap<'o> {
    inner: &'o mut dyn Emitter,
    app: Option<&'o mut AppConn>,
    held: Option<Event<'static>>,
}

impl AppTap<'_> {
    fn flush(&mut self) {
        if let Some(ev) = self.held.take() {
            self.inner.emit(ev);
        }
    }
}

impl Emitter for AppTap<'_> {
    fn emit(&mut self, mut ev: Event<'_>) {
        match &mut ev {
            Event::Frame(f)
                if f.fin
                    && matches!(f.opcode, 1 | 2)
                    && self.app.as_ref().is_some_and(|a| a.active()) =>
            {
                self.flush();
                self.held = Some(ev.into_owned());
                return;
            }
            Event::Message(m) => {
                annotate(self.app.as_deref_mut(), m);
                if let Some(Event::Frame(f)) = self.held.as_mut() {
                    if m.frames == 1 && f.stream == m.stream && f.meta.packet == m.meta.packet {
                        f.app = m.app.clone();
                    }
                }
            }
            _ => {}
        }
        self.flush();
        self.inner.emit(ev);
    }

    fn classify(&mut self, stream: u64, websocket: bool) {
        self.inner.classify(stream, websocket);
    }
}

fn annotate(app: Option<&mut AppConn>, m: &mut MessageRecord<'_>) {
    let Some(app) = app else { return };
    if !m.is_whole() {
        app.lose(m.from);
        return;
    }
    let msg = AppMessage {
        from: m.from,
        text: m.is_text,
        payload: &m.payload,
        first_packet: m.first_packet,
    };
    if let Some(d) = app.decode(&msg) {
        if d.error.is_some() && !m.problems.contains(&ProblemCode::AppDecodeError) {
            m.problems.push(ProblemCode::AppDecodeError);
        }
        m.app = d.app.map(Box::new);
    }
}

enum Step {
    Wait,
    Again,
    Done,
}

enum Sniffed {
    /// Recognised; true when the roles were swapped.
    WebSocket(bool),
    Wait,
    No,
}

/// A lone frame filling a segment is taken for WebSocket only if it looks like what peers
/// send: a final text frame with UTF-8 text, a final binary frame, or a well-formed control.
fn single_frame_plausible(buf: &[u8], h: &FrameHeader) -> bool {
    let payload = buf.get(usize::from(h.header_len)..).unwrap_or_default();
    match h.opcode {
        OpCode::Text => h.fin && (h.mask.is_some() || std::str::from_utf8(payload).is_ok()),
        OpCode::Binary => h.fin,
        OpCode::Close | OpCode::Ping | OpCode::Pong => h.fin,
        _ => false,
    }
}

fn content_length(value: Option<&str>) -> u64 {
    value.and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0)
}

fn millis_between(a: Meta, b: Meta) -> f64 {
    let secs = b.ts.secs.saturating_sub(a.ts.secs) as f64;
    let nanos = f64::from(b.ts.nanos) - f64::from(a.ts.nanos);
    (secs * 1e3 + nanos / 1e6).max(0.0)
}

/// A connection from 127.0.0.1:40000 to port 80 whose SYN was seen, for tests.
#[cfg(test)]
pub(crate) fn test_connection() -> ConnInfo {
    let at = |port| Endpoint { addr: std::net::Ipv4Addr::LOCALHOST.into(), port };
    ConnInfo {
        stream: 0,
        client: at(40000),
        server: at(80),
        roles_from_syn: true,
        first_packet: 1,
        first_ts: crate::capture::Timestamp::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frame records as (opcode, payload, shown as text), and message records' text.
    #[derive(Default)]
    struct Seen {
        frames: Vec<(u8, Vec<u8>, bool)>,
        messages: Vec<(Vec<u8>, bool)>,
    }

    impl Emitter for Seen {
        fn emit(&mut self, ev: Event<'_>) {
            match ev {
                Event::Frame(f) => {
                    self.frames.push((f.opcode, f.payload.to_vec(), f.payload_is_text))
                }
                Event::Message(m) => self.messages.push((m.payload.to_vec(), m.is_text)),
                _ => {}
            }
        }
        fn classify(&mut self, _stream: u64, _websocket: bool) {}
    }

    /// A server frame (unmasked) with a payload under 126 bytes.
    fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![u8::from(fin) << 7 | opcode, payload.len() as u8];
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn a_text_frame_is_text_by_itself_only_when_its_own_bytes_are_valid() {
        let info = test_connection();
        let request = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        let mut server = Vec::new();
        server.extend_from_slice(response);
        // One frame; a message whose first fragment ends inside "é"; one whose first fragment
        // ends between characters; and a single frame that is not UTF-8.
        server.extend(server_frame(true, 1, "héllo".as_bytes()));
        server.extend(server_frame(false, 1, b"caf\xc3"));
        server.extend(server_frame(true, 0, b"\xa9!"));
        server.extend(server_frame(false, 1, "ab".as_bytes()));
        server.extend(server_frame(true, 0, "cd".as_bytes()));
        server.extend(server_frame(true, 1, b"bad \xff"));
        let opts = Options::default();
        let (mut seen, mut acct, mut sids) =
            (Seen::default(), Accounting::default(), SidTable::default());
        let mut session = Session::default();
        let events = [
            TcpEvent::Data { from: Side::Client, offset: 0, data: request },
            TcpEvent::Data { from: Side::Server, offset: 0, data: &server },
        ];
        for (i, ev) in events.into_iter().enumerate() {
            let meta = Meta { packet: i as u64 + 1, ..Meta::default() };
            let mut ctx = Ctx { opts: &opts, out: &mut seen, acct: &mut acct, sids: &mut sids };
            session.on_tcp(&info, meta, ev, &mut ctx);
        }
        let texts: Vec<bool> = seen.frames.iter().map(|f| f.2).collect();
        assert_eq!(texts, [true, false, false, true, true, false], "{:?}", seen.frames);
        let messages: Vec<(&[u8], bool)> =
            seen.messages.iter().map(|(p, t)| (&p[..], *t)).collect();
        assert_eq!(
            messages,
            [
                ("héllo".as_bytes(), true),
                ("café!".as_bytes(), true),
                (&b"abcd"[..], true),
                (&b"bad \xff"[..], false)
            ]
        );
    }

    /// The weight of a record held back (its payload as kept whole), what sinks read of it
    /// (payload, whether it is text, bytes missing), and the rest of the record, printed.
    type Says = (u64, Vec<u8>, bool, u64, String);

    /// Frame and message records, for comparing runs.
    #[derive(Default)]
    struct Records {
        frames: Vec<Says>,
        messages: Vec<Says>,
    }

    impl Emitter for Records {
        fn emit(&mut self, ev: Event<'_>) {
            match ev {
                Event::Frame(mut f) => {
                    let payload = std::mem::take(&mut f.payload).into_owned();
                    let weight = payload.len() as u64 + std::mem::take(&mut f.payload_cut);
                    let (text, missing) =
                        (f.payload_is_text, std::mem::take(&mut f.payload_missing));
                    self.frames.push((weight, payload, text, missing, format!("{f:?}")))
                }
                Event::Message(mut m) => {
                    let payload = std::mem::take(&mut m.payload).into_owned();
                    let weight = payload.len() as u64 + std::mem::take(&mut m.payload_cut);
                    let (text, missing) = (m.is_text, std::mem::take(&mut m.payload_missing));
                    self.messages.push((weight, payload, text, missing, format!("{m:?}")))
                }
                _ => {}
            }
        }
        fn classify(&mut self, _stream: u64, _websocket: bool) {}
    }

    /// Runs a server stream, with some byte ranges lost, through a session.
    fn run_server_stream(
        opts: &Options,
        deflate: bool,
        stream: &[u8],
        lost: &[(usize, usize)],
    ) -> Records {
        let info = test_connection();
        let request = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
            Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
        let mut response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            .to_vec();
        if deflate {
            response.extend_from_slice(b"Sec-WebSocket-Extensions: permessage-deflate\r\n");
        }
        response.extend_from_slice(b"\r\n");
        let base = response.len();
        response.extend_from_slice(stream);
        let mut events = vec![TcpEvent::Data { from: Side::Client, offset: 0, data: request }];
        // The server's bytes in segments of at most 16 bytes after the handshake (an
        // application decoder's interest is decided per segment).
        fn segments<'r>(
            events: &mut Vec<TcpEvent<'r>>,
            bytes: &'r [u8],
            base: usize,
            span: (usize, usize),
        ) {
            let (mut at, to) = span;
            while at < to {
                let end = if at < base { base.min(to) } else { (at + 16).min(to) };
                let data = &bytes[at..end];
                events.push(TcpEvent::Data { from: Side::Server, offset: at as u64, data });
                at = end;
            }
        }
        let mut pos = 0;
        for &(start, len) in lost {
            let start = (base + start).clamp(pos, response.len());
            let end = (start + len).min(response.len());
            segments(&mut events, &response, base, (pos, start));
            if end > start {
                events.push(TcpEvent::Gap {
                    from: Side::Server,
                    offset: start as u64,
                    len: (end - start) as u64,
                    reason: crate::tcp::GapReason::AckedUnseen,
                });
            }
            pos = end;
        }
        segments(&mut events, &response, base, (pos, response.len()));
        events.push(TcpEvent::Closed { reason: crate::tcp::CloseReason::Fin });
        let (mut seen, mut acct, mut sids) =
            (Records::default(), Accounting::default(), SidTable::default());
        let mut session = Session::default();
        for (i, ev) in events.into_iter().enumerate() {
            let meta = Meta { packet: i as u64 + 1, ..Meta::default() };
            let mut ctx = Ctx { opts, out: &mut seen, acct: &mut acct, sids: &mut sids };
            session.on_tcp(&info, meta, ev, &mut ctx);
        }
        seen
    }

    #[test]
    fn records_kept_to_a_prefix_are_whole_records_cut_there() {
        use proptest::prelude::*;
        let piece = proptest::sample::select(vec![
            &b"ab"[..],
            "é".as_bytes(),
            "日本".as_bytes(),
            b"\xff",
            b"\xc3",
            b"\xe6\x97",
            b"xyz012",
        ]);
        let payload = proptest::collection::vec(piece, 0..12).prop_map(|p| p.concat());
        // fin, opcode (text, binary, continuation, ping), RSV1, payload
        let opcode = proptest::sample::select(vec![1u8, 2, 0, 0, 9]);
        let frame = (proptest::bool::weighted(0.7), opcode, proptest::bool::weighted(0.2), payload);
        let lost = proptest::collection::vec((0..300usize, 1..6usize), 0..3);
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 2000,
            ..ProptestConfig::default()
        });
        let cases = (
            proptest::collection::vec(frame, 1..16),
            lost,
            0..10usize,
            any::<bool>(),
            proptest::bool::weighted(0.2),
        );
        let cut_messages = std::cell::Cell::new(0usize);
        runner
            .run(&cases, |(frames, mut lost, prefix, deflate, socket_io)| {
                lost.sort_unstable();
                // Four short messages first, after which no application protocol is looked
                // for by content, and messages may be cut; or a Socket.IO event, after which
                // the decoder reads every message, and none may be.
                let mut stream = if socket_io {
                    server_frame(true, 1, br#"42["ev",1]"#)
                } else {
                    server_frame(true, 1, b"x").repeat(4)
                };
                for (fin, opcode, rsv1, payload) in &frames {
                    let first = u8::from(*fin) << 7 | u8::from(*rsv1) << 6 | opcode;
                    stream.extend([first, payload.len() as u8]);
                    stream.extend_from_slice(payload);
                }
                let whole = run_server_stream(&Options::default(), deflate, &stream, &lost);
                let opts = Options {
                    frame_payload_prefix: Some(prefix),
                    message_payload_prefix: Some(prefix),
                    ..Options::default()
                };
                let cut = run_server_stream(&opts, deflate, &stream, &lost);
                // What a sink that reads the prefix sees (`Event::cut_payload`); the session
                // may keep more than the prefix of a frame, never less.
                let seen = |records: &[Says]| -> Vec<Says> {
                    records
                        .iter()
                        .cloned()
                        .map(|(weight, mut payload, text, mut missing, rest)| {
                            if payload.len() > prefix {
                                missing += (payload.len() - prefix) as u64;
                                payload.truncate(prefix);
                            }
                            (weight, payload, text, missing, rest)
                        })
                        .collect()
                };
                cut_messages.set(
                    cut_messages.get()
                        + cut.messages.iter().filter(|m| m.0 > m.1.len() as u64).count(),
                );
                prop_assert_eq!(seen(&cut.frames), seen(&whole.frames));
                prop_assert_eq!(seen(&cut.messages), seen(&whole.messages));
                Ok(())
            })
            .unwrap();
        // The cases reached messages kept to a prefix, not only frames.
        assert!(cut_messages.get() > 0, "no message was cut");
    }
}
