//! WebSockets over HTTP/2 (RFC 8441): an HTTP/2 connection's frames, read in both directions
//! ([`crate::http::h2`]), and a [`Session`] of its own for each WebSocket its streams carry.
//!
//! A browser opens a WebSocket on an HTTP/2 connection it already has to the server when the
//! server allows it (SETTINGS_ENABLE_CONNECT_PROTOCOL): an extended CONNECT with
//! `:protocol: websocket`, answered by a 2xx; the stream's DATA then carries the frames both
//! ways. Each such WebSocket's records carry its HTTP/2 stream (`h2_stream`), and its
//! session ends when its stream does (END_STREAM both ways, or RST_STREAM), so that a
//! long-lived connection holds only the WebSockets still open. The TCP connection keeps its
//! own session for what happens below HTTP/2 (FIN, RST, keepalives) and its own record.

use super::{idx, Ctx, Emitter, Session};
use crate::event::{Event, H2StreamId, HandshakeRecord, Meta, ProblemRecord, RequestRecord};
use crate::http::h2::{H2Item, H2Reader, PREFACE, SETTINGS_ENABLE_CONNECT_PROTOCOL};
use crate::http::handshake::{
    check_h2_handshake, offered_extensions, offered_protocols, HandshakeCheck,
};
use crate::http::upgrade::{RequestHead, ResponseHead};
use crate::problem::ProblemCode;
use crate::tcp::{CloseReason, ConnInfo, Side, TcpEvent};
use std::collections::BTreeMap;

/// WebSockets (asked for or open) followed at once on one connection; more are reported and
/// not followed.
pub const MAX_H2_WEBSOCKETS: usize = 256;
/// CONNECTs waiting for their answer at once on one connection.
pub const MAX_PENDING_CONNECTS: usize = 16;
/// Client bytes held, on all streams of a connection together, while CONNECTs wait for
/// their answer.
pub const MAX_EARLY_BYTES: usize = 64 << 10;

pub struct H2Conn {
    /// Bytes of the client's preface still to come (its frames follow it).
    preface_left: usize,
    readers: [H2Reader; 2],
    streams: Streams,
}

/// Everything but the readers, so that a reader's items can be handled while it reads.
struct Streams {
    /// The proxies the TCP connection went through, named on each WebSocket's records.
    proxies: Vec<String>,
    open: BTreeMap<H2StreamId, H2Stream>,
    /// The server allowed extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL = 1).
    connect_protocol: bool,
    websockets: u32,
    /// Client bytes held while CONNECTs wait for their answer.
    early_bytes: usize,
    limit_reported: bool,
}

enum H2Stream {
    /// An extended CONNECT waiting for its answer, with client bytes sent before it.
    Asked {
        request: RequestHead,
        at: Meta,
        early: Vec<(Meta, Vec<u8>)>,
    },
    Open {
        session: Box<Session>,
        ended: [bool; 2],
    },
}

/// A WebSocket session's records, minus the TCP records its stream's ends make (the TCP
/// connection's own session reports TCP).
struct StreamOut<'a> {
    inner: &'a mut dyn Emitter,
}

impl Emitter for StreamOut<'_> {
    fn emit(&mut self, ev: Event<'_>) {
        if !matches!(ev, Event::Tcp(_)) {
            self.inner.emit(ev);
        }
    }
    fn classify(&mut self, stream: u64, websocket: bool) {
        self.inner.classify(stream, websocket);
    }
}

impl H2Conn {
    /// `proxies`: those the TCP connection went through, outermost first.
    pub fn new(max_header_block: usize, proxies: Vec<String>) -> H2Conn {
        H2Conn {
            preface_left: PREFACE.len(),
            readers: [H2Reader::new(max_header_block), H2Reader::new(max_header_block)],
            streams: Streams {
                proxies,
                open: BTreeMap::new(),
                connect_protocol: false,
                websockets: 0,
                early_bytes: 0,
                limit_reported: false,
            },
        }
    }

    /// WebSockets the connection carried so far.
    pub fn websockets(&self) -> u32 {
        self.streams.websockets
    }

    /// One TCP event of the connection: bytes are read as HTTP/2; a gap ends the reading of
    /// its direction; the end of the connection ends every WebSocket still open.
    pub fn on_tcp(&mut self, info: &ConnInfo, meta: Meta, ev: &TcpEvent<'_>, ctx: &mut Ctx<'_>) {
        match *ev {
            TcpEvent::Data { from, data, .. } => self.on_data(info, from, data, meta, ctx),
            TcpEvent::Gap { from, len, .. } => {
                let reader = &mut self.readers[idx(from)];
                if !reader.is_broken() {
                    reader.lose();
                    // The capture's loss, not the peer's fault: a warning, as the gap itself.
                    problem(
                        info,
                        meta,
                        Some(from),
                        ProblemCode::TcpGap,
                        format!(
                            "HTTP/2 frames from the {} cannot be followed after a gap of {len} \
                             bytes; the rest of its stream is not decoded",
                            from.as_str()
                        ),
                        ctx,
                    );
                }
                // The WebSockets open on it stop hearing from that side; each reports the
                // frame it was in as incomplete when it ends.
            }
            TcpEvent::Closed { reason } => self.close_all(info, meta, reason, ctx),
            _ => {}
        }
    }

    fn on_data(&mut self, info: &ConnInfo, from: Side, data: &[u8], meta: Meta, ctx: &mut Ctx<'_>) {
        let mut data = data;
        if from == Side::Client && self.preface_left > 0 {
            let n = self.preface_left.min(data.len());
            self.preface_left -= n;
            ctx.acct.http_bytes += n as u64;
            data = &data[n..];
        }
        let reader = &mut self.readers[idx(from)];
        let before = reader.overhead;
        let streams = &mut self.streams;
        let skipped = reader.feed(data, &mut |item| streams.item(info, from, item, meta, ctx));
        ctx.acct.http_bytes += reader.overhead - before;
        ctx.acct.skipped_bytes += skipped;
    }

    /// The connection ended: each WebSocket still open ends with it, in stream order; a
    /// CONNECT never answered is reported as such.
    fn close_all(&mut self, info: &ConnInfo, meta: Meta, reason: CloseReason, ctx: &mut Ctx<'_>) {
        let streams = &mut self.streams;
        for (id, stream) in std::mem::take(&mut streams.open) {
            match stream {
                H2Stream::Asked { request, at, early } => {
                    streams.unanswered(info, id, (request, at, early), meta, (reason, None), ctx)
                }
                H2Stream::Open { mut session, .. } => {
                    to_session(&mut session, info, meta, TcpEvent::Closed { reason }, ctx)
                }
            }
        }
    }
}

/// Runs `f` with the context a WebSocket's session is given: the TCP records it makes of its
/// stream's ends are dropped ([`StreamOut`]).
fn in_stream<R>(ctx: &mut Ctx<'_>, f: impl FnOnce(&mut Ctx<'_>) -> R) -> R {
    let mut out = StreamOut { inner: &mut *ctx.out };
    f(&mut Ctx { opts: ctx.opts, out: &mut out, acct: &mut *ctx.acct, sids: &mut *ctx.sids })
}

/// Hands a WebSocket's session one event.
fn to_session(
    session: &mut Session,
    info: &ConnInfo,
    meta: Meta,
    ev: TcpEvent<'_>,
    ctx: &mut Ctx<'_>,
) {
    in_stream(ctx, |sctx| session.on_tcp(info, meta, ev, sctx));
}

/// A WebSocket's session, started with its handshake record.
fn start_session(
    info: &ConnInfo,
    id: H2StreamId,
    (rec, check): (HandshakeRecord, HandshakeCheck),
    (accepted, at): (bool, Meta),
    proxies: &[String],
    ctx: &mut Ctx<'_>,
) -> Box<Session> {
    let mut session = Box::new(Session::for_h2_stream(info, id, at, proxies));
    in_stream(ctx, |sctx| session.h2_handshake(rec, check.deflate, accepted, sctx));
    session
}

impl Streams {
    fn item(
        &mut self,
        info: &ConnInfo,
        from: Side,
        item: H2Item<'_>,
        meta: Meta,
        ctx: &mut Ctx<'_>,
    ) {
        match item {
            H2Item::Data { stream, bytes } => match H2StreamId::new(stream)
                .and_then(|id| self.open.get_mut(&id))
            {
                Some(H2Stream::Open { session, .. }) => to_session(
                    session,
                    info,
                    meta,
                    TcpEvent::Data { from, offset: 0, data: bytes },
                    ctx,
                ),
                Some(H2Stream::Asked { early, .. }) if from == Side::Client => {
                    if self.early_bytes + bytes.len() <= MAX_EARLY_BYTES {
                        self.early_bytes += bytes.len();
                        early.push((meta, bytes.to_vec()));
                    } else {
                        ctx.acct.skipped_bytes += bytes.len() as u64;
                        let detail = format!(
                            "{} bytes the client sent on HTTP/2 stream {stream} before the \
                             answer to its CONNECT, past {MAX_EARLY_BYTES} held, were not kept",
                            bytes.len()
                        );
                        problem(info, meta, Some(from), ProblemCode::UndecodableData, detail, ctx);
                    }
                }
                _ => ctx.acct.http_bytes += bytes.len() as u64,
            },
            H2Item::DataEnd { stream, end_stream } => {
                if let Some(id) = H2StreamId::new(stream).filter(|_| end_stream) {
                    self.end(info, id, from, false, meta, ctx);
                }
            }
            H2Item::Headers { stream, end_stream, fields, cut } => {
                if cut {
                    let detail = format!(
                        "HTTP/2 header block of stream {stream} decoded to more than the \
                         header limit; the fields past it were dropped (raise --max-http-header)"
                    );
                    problem(info, meta, Some(from), ProblemCode::HeaderLimit, detail, ctx);
                }
                // Header blocks on stream 0 (the connection's) are a peer's error: not a request.
                let Some(id) = H2StreamId::new(stream) else { return };
                match from {
                    Side::Client => self.request(info, id, fields, meta, ctx),
                    Side::Server => self.response(info, id, fields, meta, ctx),
                }
                if end_stream {
                    self.end(info, id, from, false, meta, ctx);
                }
            }
            H2Item::HeadersLost { stream, why, too_long } => {
                let code =
                    if too_long { ProblemCode::HeaderLimit } else { ProblemCode::MalformedHttp };
                let detail = format!("HTTP/2 header block of stream {stream} not decoded: {why}");
                problem(info, meta, Some(from), code, detail, ctx);
            }
            H2Item::RstStream { stream } => {
                if let Some(id) = H2StreamId::new(stream) {
                    self.end(info, id, from, true, meta, ctx);
                }
            }
            H2Item::Settings { ack: false, values } if from == Side::Server => {
                for (id, value) in values {
                    if id == SETTINGS_ENABLE_CONNECT_PROTOCOL {
                        self.connect_protocol = value == 1;
                    }
                }
            }
            H2Item::Broken { why } => {
                let detail = format!("HTTP/2 frames from the {}: {why}", from.as_str());
                problem(info, meta, Some(from), ProblemCode::MalformedHttp, detail, ctx);
            }
            H2Item::Settings { .. } => {}
        }
    }

    /// A client's header block: an extended CONNECT for a WebSocket is remembered.
    fn request(
        &mut self,
        info: &ConnInfo,
        id: H2StreamId,
        fields: Vec<(String, String)>,
        meta: Meta,
        ctx: &mut Ctx<'_>,
    ) {
        let field = |name: &str| field(&fields, name);
        let websocket = field(":method") == Some("CONNECT")
            && field(":protocol").is_some_and(|p| p.eq_ignore_ascii_case("websocket"));
        if !websocket || self.open.contains_key(&id) {
            return;
        }
        let pending = self.open.values().filter(|s| matches!(s, H2Stream::Asked { .. })).count();
        if self.open.len() >= MAX_H2_WEBSOCKETS || pending >= MAX_PENDING_CONNECTS {
            if !std::mem::replace(&mut self.limit_reported, true) {
                let detail = format!(
                    "more than {MAX_H2_WEBSOCKETS} WebSockets open, or {MAX_PENDING_CONNECTS} \
                     waiting for an answer, at once on one HTTP/2 connection; stream {id} and \
                     later ones over the limit are not decoded"
                );
                problem(info, meta, Some(Side::Client), ProblemCode::H2StreamLimit, detail, ctx);
            }
            return;
        }
        let request = RequestHead {
            method: "CONNECT".into(),
            path: field(":path").unwrap_or_default().to_owned(),
            version: 0,
            headers: fields,
            head_len: 0,
            target_has_controls: false,
            no_space_after_colon: Vec::new(),
        };
        // Shown, and the connection with it, as an HTTP/1.1 upgrade request is.
        ctx.out.classify(info.stream, true);
        ctx.out.emit(Event::Request(RequestRecord {
            meta,
            stream: info.stream,
            h2_stream: Some(id),
            src: info.client,
            dst: info.server,
            method: request.method.clone(),
            path: request.path.clone(),
            upgrade: true,
            extensions_offered: offered_extensions(&request),
        }));
        self.open.insert(id, H2Stream::Asked { request, at: meta, early: Vec::new() });
    }

    /// A server's header block: the answer to a WebSocket's CONNECT (1xx are interim).
    fn response(
        &mut self,
        info: &ConnInfo,
        id: H2StreamId,
        fields: Vec<(String, String)>,
        meta: Meta,
        ctx: &mut Ctx<'_>,
    ) {
        let Some(H2Stream::Asked { .. }) = self.open.get(&id) else { return };
        let status = field(&fields, ":status").and_then(|v| v.parse::<u16>().ok()).unwrap_or(0);
        if (100..200).contains(&status) {
            return;
        }
        let Some(H2Stream::Asked { request, at, early }) = self.open.remove(&id) else { return };
        self.early_bytes -= early.iter().map(|(_, b)| b.len()).sum::<usize>();
        let response = ResponseHead {
            version: 0,
            status,
            reason: String::new(),
            headers: fields,
            head_len: 0,
            no_space_after_colon: Vec::new(),
        };
        let hs = handshake(info, id, &request, at, Some((&response, meta)), self.connect_protocol);
        let accepted = !hs.1.rejected;
        let mut session = start_session(info, id, hs, (accepted, at), &self.proxies, ctx);
        if accepted {
            self.websockets += 1;
        }
        // A refused stream's session stays until the stream ends, to say how it ended (it
        // counts what else the stream carries as HTTP).
        for (at, bytes) in early {
            to_session(
                &mut session,
                info,
                at,
                TcpEvent::Data { from: Side::Client, offset: 0, data: &bytes },
                ctx,
            );
        }
        self.open.insert(id, H2Stream::Open { session, ended: [false; 2] });
    }

    /// A CONNECT that got no answer (reset, or the connection ended): its handshake record
    /// says so, and its connection record follows.
    fn unanswered(
        &mut self,
        info: &ConnInfo,
        id: H2StreamId,
        (request, at, early): (RequestHead, Meta, Vec<(Meta, Vec<u8>)>),
        meta: Meta,
        (reason, reset_by): (CloseReason, Option<Side>),
        ctx: &mut Ctx<'_>,
    ) {
        let held: usize = early.iter().map(|(_, b)| b.len()).sum();
        self.early_bytes -= held;
        ctx.acct.http_bytes += held as u64;
        let hs = handshake(info, id, &request, at, None, self.connect_protocol);
        let mut session = start_session(info, id, hs, (false, at), &self.proxies, ctx);
        if let Some(from) = reset_by {
            to_session(&mut session, info, meta, TcpEvent::Rst { from, ack: false }, ctx);
        }
        to_session(&mut session, info, meta, TcpEvent::Closed { reason }, ctx);
    }

    /// One side ended a stream (END_STREAM), or either reset it: a WebSocket whose stream
    /// is over in both directions is reported and forgotten.
    fn end(
        &mut self,
        info: &ConnInfo,
        id: H2StreamId,
        from: Side,
        reset: bool,
        meta: Meta,
        ctx: &mut Ctx<'_>,
    ) {
        let over = match self.open.get_mut(&id) {
            Some(H2Stream::Open { session, ended }) => {
                let ev = if reset {
                    TcpEvent::Rst { from, ack: false }
                } else {
                    TcpEvent::Fin { from, ack: false }
                };
                to_session(session, info, meta, ev, ctx);
                ended[idx(from)] = true;
                reset || ended.iter().all(|&e| e)
            }
            // A CONNECT reset before its answer gets none; one whose client side ended may
            // still be answered.
            Some(H2Stream::Asked { .. }) => reset,
            None => false,
        };
        if !over {
            return;
        }
        let reason = if reset { CloseReason::Rst } else { CloseReason::Fin };
        match self.open.remove(&id) {
            Some(H2Stream::Open { mut session, .. }) => {
                to_session(&mut session, info, meta, TcpEvent::Closed { reason }, ctx)
            }
            Some(H2Stream::Asked { request, at, early }) => {
                self.unanswered(info, id, (request, at, early), meta, (reason, Some(from)), ctx)
            }
            None => {}
        }
    }
}

/// The handshake record of a WebSocket over HTTP/2, and what the checks found.
fn handshake(
    info: &ConnInfo,
    id: H2StreamId,
    req: &RequestHead,
    at: Meta,
    response: Option<(&ResponseHead, Meta)>,
    connect_protocol: bool,
) -> (HandshakeRecord, HandshakeCheck) {
    let check = check_h2_handshake(req, response.map(|(r, _)| r));
    let mut notes = vec![format!("WebSocket over HTTP/2 (RFC 8441), stream {id}")];
    if response.is_some() && !connect_protocol {
        notes.push("the server's SETTINGS_ENABLE_CONNECT_PROTOCOL was not seen".into());
    }
    if response.is_none() {
        notes.push("the connection ended before the server answered".into());
    }
    notes.extend(check.notes.iter().cloned());
    let rec = HandshakeRecord {
        meta: response.map_or(at, |(_, m)| m),
        stream: info.stream,
        h2_stream: Some(id),
        request_packet: Some(at.packet),
        response_packet: response.map(|(_, m)| m.packet),
        client: Some(info.client),
        server: Some(info.server),
        method: Some(req.method.clone()),
        path: Some(req.path.clone()),
        host: req.header(":authority").map(str::to_owned),
        origin: req.header("origin").map(str::to_owned),
        key: None,
        version: req.header("sec-websocket-version").map(str::to_owned),
        protocols_offered: offered_protocols(req),
        extensions_offered: offered_extensions(req),
        status: response.map(|(r, _)| r.status),
        reason: None,
        accept: None,
        accept_ok: None,
        protocol: check.protocol.clone(),
        extensions: check.extensions.clone(),
        request_headers: req.headers.clone(),
        response_headers: response.map(|(r, _)| r.headers.clone()).unwrap_or_default(),
        notes,
        problems: check.problems.clone(),
        tls: None,
    };
    (rec, check)
}

fn problem(
    info: &ConnInfo,
    meta: Meta,
    from: Option<Side>,
    code: ProblemCode,
    detail: String,
    ctx: &mut Ctx<'_>,
) {
    ctx.out.emit(Event::Problem(ProblemRecord::of_stream(meta, info.stream, from, code, detail)));
}

/// The value of a decoded header field (pseudo-header names are lowercase by RFC 9113).
fn field<'f>(fields: &'f [(String, String)], name: &str) -> Option<&'f str> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::polling::SidTable;
    use crate::session::{Accounting, Options};
    use loona_hpack::Encoder;

    use crate::http::h2::frame_bytes as frame;

    /// Records as short strings: `handshake 3 200`, `message 3 client hello`, `problem …`.
    #[derive(Default)]
    struct Lines(Vec<String>);

    impl Emitter for Lines {
        fn emit(&mut self, ev: Event<'_>) {
            let id = ev.h2_stream().map_or("-".into(), |i| i.to_string());
            match ev {
                Event::Handshake(h) => {
                    self.0.push(format!("handshake {id} {:?}", h.status));
                }
                Event::Message(m) => self.0.push(format!(
                    "message {id} {} {}",
                    m.from.as_str(),
                    String::from_utf8_lossy(&m.payload)
                )),
                Event::Connection(c) => {
                    self.0.push(format!("connection {id} {} {:?}", c.tcp_end, c.h2_websockets))
                }
                Event::Problem(p) => self.0.push(format!("problem {}", p.code.as_str())),
                _ => {}
            }
        }
        fn classify(&mut self, _stream: u64, _websocket: bool) {}
    }

    /// Feeds the client's and server's bytes, each in pieces of `step` bytes, alternating as
    /// listed, then ends the connection; returns the records and the byte accounting.
    fn run(flights: &[(Side, Vec<u8>)], step: usize) -> (Vec<String>, Accounting) {
        let info = crate::session::test_connection();
        let opts = Options::default();
        let (mut out, mut acct, mut sids) =
            (Lines::default(), Accounting::default(), SidTable::default());
        let mut conn = H2Conn::new(opts.limits.max_http_header, Vec::new());
        let mut packet = 0;
        for (from, bytes) in flights {
            for piece in bytes.chunks(step) {
                packet += 1;
                let meta = Meta { packet, ..Meta::default() };
                let mut ctx = Ctx { opts: &opts, out: &mut out, acct: &mut acct, sids: &mut sids };
                let ev = TcpEvent::Data { from: *from, offset: 0, data: piece };
                conn.on_tcp(&info, meta, &ev, &mut ctx);
            }
        }
        let mut ctx = Ctx { opts: &opts, out: &mut out, acct: &mut acct, sids: &mut sids };
        let closed = TcpEvent::Closed { reason: CloseReason::Fin };
        conn.on_tcp(&info, Meta { packet: packet + 1, ..Meta::default() }, &closed, &mut ctx);
        (out.0, acct)
    }

    fn connect(enc: &mut Encoder, path: &str) -> Vec<u8> {
        enc.encode([
            (&b":method"[..], &b"CONNECT"[..]),
            (b":protocol", b"websocket"),
            (b":scheme", b"https"),
            (b":path", path.as_bytes()),
            (b":authority", b"example"),
            (b"sec-websocket-version", b"13"),
        ])
    }

    /// A masked client text frame (zero mask) and an unmasked server one.
    fn ws_text(masked: bool, s: &str) -> Vec<u8> {
        let mut f = vec![0x81, s.len() as u8 | if masked { 0x80 } else { 0 }];
        if masked {
            f.extend([0; 4]);
        }
        f.extend(s.as_bytes());
        f
    }

    #[test]
    fn bytes_sent_before_the_answer_are_read_once_it_comes() {
        let (mut c, mut s) = (Encoder::new(), Encoder::new());
        let mut client = PREFACE.to_vec();
        client.extend(frame(0x1, 0x4, 1, &connect(&mut c, "/early")));
        client.extend(frame(0x0, 0, 1, &ws_text(true, "before the answer")));
        let server = frame(0x1, 0x4, 1, &s.encode([(&b":status"[..], &b"200"[..])]));
        let mut tail = frame(0x0, 0x1, 1, &ws_text(false, "after"));
        tail.extend(frame(0x3, 0, 1, &8u32.to_be_bytes()));
        for step in [1, 7, 4096] {
            let flights = [
                (Side::Client, client.clone()),
                (Side::Server, server.clone()),
                (Side::Server, tail.clone()),
            ];
            let (lines, acct) = run(&flights, step);
            assert_eq!(
                lines,
                [
                    "handshake 1 Some(200)",
                    "message 1 client before the answer",
                    "message 1 server after",
                    "problem no-close-frame",
                    "connection 1 rst None",
                ],
                "step {step}"
            );
            let total = (client.len() + server.len() + tail.len()) as u64;
            assert_eq!(acct.http_bytes + acct.ws_bytes, total, "step {step}: {acct:?}");
        }
    }

    #[test]
    fn connects_past_the_bound_are_reported_once_and_not_followed() {
        let mut c = Encoder::new();
        let mut client = PREFACE.to_vec();
        for i in 0..MAX_PENDING_CONNECTS as u32 + 3 {
            client.extend(frame(0x1, 0x4, 1 + 2 * i, &connect(&mut c, "/p")));
        }
        let (lines, _) = run(&[(Side::Client, client)], 4096);
        assert_eq!(lines.iter().filter(|l| *l == "problem h2-stream-limit").count(), 1);
        // Each followed CONNECT is reported unanswered when the connection ends.
        let unanswered = lines.iter().filter(|l| l.starts_with("handshake") && l.ends_with("None"));
        assert_eq!(unanswered.count(), MAX_PENDING_CONNECTS);
    }
}
