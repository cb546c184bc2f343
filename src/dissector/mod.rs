//! The pipeline driver: capture records in, events to a sink out, in capture order.
//!
//! `Dissector` owns the decoder and the flow table (whose connections own their sessions) and
//! calls each stage in turn; no stage reaches back into another. Output goes through the
//! `Sequencer`, which keeps records in capture order while a connection's nature is still
//! unknown (its SYN records are only worth printing once it turns out to be WebSocket).

use crate::app::polling::SidTable;
use crate::capture::{CaptureNotice, CaptureRecord, LinkType, TsPrecision};
use crate::decode::TcpSegment;
use crate::decode::{DecodeError, DecodeNotice, Decoded, Decoder};
use crate::event::{ConnectionRecord, Event, Meta, PacketRecord, ProblemRecord, TlsRecord};
use crate::problem::ProblemCode;
use crate::session::h2::H2Conn;
use crate::session::{Accounting, Ctx, Emitter, Options, Session};
use crate::sink::{RunTotals, Sink};
use crate::tcp::proxy_protocol::{self, ProxyHeaderStage};
use crate::tcp::{ConnInfo, Feedback, FlowTable, PacketMeta, TcpEvent};
use crate::tcp::{Endpoint, Side};
use crate::tls::{KeyLog, Step, TlsConn, TlsInfo, TlsOut};
use foldhash::HashMap;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;

use crate::limits::{HOLD_BYTES, HOLD_PACKETS};

mod sharded;
pub use sharded::run_sharded;

/// What the flow table calls with each TCP event of a connection.
type StagesFn<'f> = dyn FnMut(&ConnInfo, &mut Conn, TcpEvent<'_>) -> Feedback + 'f;

/// Runs the stages over a sequence of capture records.
pub struct Dissector<'s> {
    decoder: Decoder,
    flows: FlowTable<Conn>,
    keys: KeyLog,
    opts: Options,
    out: Sequencer<'s>,
    acct: Accounting,
    sids: SidTable,
    totals: RunTotals,
    unsupported_links: BTreeSet<u32>,
    last_meta: Meta,
}

impl<'s> Dissector<'s> {
    /// `all`: report TCP events of every connection, not only WebSocket ones.
    pub fn new(opts: Options, all: bool, sink: &'s mut dyn Sink) -> Dissector<'s> {
        Dissector {
            decoder: Decoder::new(&opts.limits),
            flows: FlowTable::new(&opts.limits),
            keys: KeyLog::default(),
            out: Sequencer::new(sink, all),
            opts,
            acct: Accounting::default(),
            sids: SidTable::default(),
            totals: RunTotals::default(),
            unsupported_links: BTreeSet::new(),
            last_meta: Meta::default(),
        }
    }

    /// TLS secrets for decrypting wss:// connections (`--keylog`, `SSLKEYLOGFILE`).
    pub fn with_keys(mut self, keys: KeyLog) -> Self {
        self.keys = keys;
        self
    }

    /// Secrets from a pcapng Decryption Secrets Block.
    pub fn add_secrets(&mut self, secrets_type: u32, data: &[u8]) {
        self.keys.add_dsb(secrets_type, data);
    }

    /// Processes one captured packet. An `Err` is an output error (e.g. a closed pipe): stop.
    pub fn packet(&mut self, rec: &CaptureRecord<'_>) -> io::Result<()> {
        let meta = count_packet(&mut self.totals, rec);
        if meta.packet == 1 {
            self.out.sink.capture_start(meta);
        }
        self.last_meta = meta;
        self.out.now(meta.packet);
        let emitted_before = self.out.emitted;
        let mut quiet_packet: Option<PacketRecord> = None;
        match self.decoder.decode(rec) {
            Decoded::Tcp(seg) => {
                self.totals.tcp_packets += 1;
                let pkt = PacketMeta { number: meta.packet, ts: meta.ts };
                let stream =
                    self.with_stages(meta, |flows, stages| flows.process(pkt, &seg, stages));
                if self.out.all {
                    quiet_packet = Some(tcp_packet_record(meta, stream, &seg));
                }
            }
            Decoded::FragmentHeld => {
                quiet_packet = self.out.all.then(|| PacketRecord {
                    meta,
                    stream: None,
                    src: None,
                    dst: None,
                    proto: "IP",
                    info: "IP fragment (held for reassembly)".into(),
                });
            }
            Decoded::NotTcp => {
                quiet_packet = self.out.all.then(|| PacketRecord {
                    meta,
                    stream: None,
                    src: None,
                    dst: None,
                    proto: "-",
                    info: "not TCP (not dissected)".into(),
                });
            }
            Decoded::UnsupportedLink(LinkType(link)) => {
                if self.unsupported_links.insert(link) {
                    self.out.emit(unsupported_link_problem(meta, link));
                }
            }
            Decoded::Error(e) => self.out.emit(undecodable_problem(meta, &e)),
        }
        for notice in self.decoder.take_notices() {
            self.out.emit(decode_notice_problem(meta, notice));
        }
        if let Some(p) = quiet_packet {
            if self.out.emitted == emitted_before {
                self.out.emit(Event::Packet(Box::new(p)));
            }
        }
        self.out.flush_error()
    }

    /// Runs a flow table operation (`process`, `finish`) with the callback that hands each
    /// TCP event it causes to the stages above TCP of its connection.
    fn with_stages<R>(
        &mut self,
        meta: Meta,
        run: impl FnOnce(&mut FlowTable<Conn>, &mut StagesFn<'_>) -> R,
    ) -> R {
        let (opts, out, acct, keys, sids) =
            (&self.opts, &mut self.out, &mut self.acct, &mut self.keys, &mut self.sids);
        let mut stages = |info: &ConnInfo, conn: &mut Conn, ev: TcpEvent<'_>| {
            let mut ctx = Ctx { opts, out, acct, sids };
            conn.on_tcp(info, meta, ev, &mut ctx, keys)
        };
        run(&mut self.flows, &mut stages)
    }

    /// Reports something the capture reader noticed.
    pub fn capture_notice(&mut self, notice: CaptureNotice) {
        self.out.emit(capture_notice_problem(self.last_meta, notice));
    }

    /// End of input: flushes every connection and returns the run totals.
    pub fn finish(mut self) -> io::Result<RunTotals> {
        let meta = self.last_meta;
        let pkt = PacketMeta { number: meta.packet, ts: meta.ts };
        self.with_stages(meta, |flows, stages| flows.finish(pkt, stages));
        self.out.drain_all();
        self.out.flush_error()?;
        let mut totals = self.totals;
        totals.accounting = self.acct;
        totals.problems = std::mem::take(&mut self.out.problems);
        totals.connections = self.out.connections;
        totals.websocket_connections = self.out.websocket_connections;
        totals.frames = self.out.frames;
        totals.messages = self.out.messages;
        Ok(totals)
    }
}

/// Counts a captured packet in the run totals and gives its record metadata.
fn count_packet(totals: &mut RunTotals, rec: &CaptureRecord<'_>) -> Meta {
    totals.packets += 1;
    totals.bytes += rec.data.len() as u64;
    if rec.precision == TsPrecision::Nano {
        totals.nanosecond = true;
    }
    Meta { packet: totals.packets, ts: rec.ts, precision: rec.precision, len: rec.origlen }
}

/// Problem records of the stages below TCP, shared by the one-thread and sharded drivers.
fn unsupported_link_problem(meta: Meta, link: u32) -> Event<'static> {
    Event::Problem(ProblemRecord {
        meta,
        stream: None,
        h2_stream: None,
        from: None,
        code: ProblemCode::UnsupportedLinkType,
        detail: format!("link type {link} is not decoded; its packets are counted and skipped"),
    })
}

fn undecodable_problem(meta: Meta, e: &DecodeError) -> Event<'static> {
    Event::Problem(ProblemRecord {
        meta,
        stream: None,
        h2_stream: None,
        from: None,
        code: ProblemCode::UndecodablePacket,
        detail: format!("{} layer: {}", e.layer.as_str(), e.reason),
    })
}

fn decode_notice_problem(meta: Meta, notice: DecodeNotice) -> Event<'static> {
    let (code, detail) = match notice {
        DecodeNotice::FragmentLimit { dropped_bytes } => (
            ProblemCode::IpFragmentLimit,
            format!("dropped {dropped_bytes} bytes of IP fragments (raise --max-ip-fragments)"),
        ),
        DecodeNotice::FragmentIncomplete { dropped_bytes } => (
            ProblemCode::IpFragmentIncomplete,
            format!("gave up on an IP datagram; {dropped_bytes} fragment bytes dropped"),
        ),
    };
    Event::Problem(ProblemRecord { meta, stream: None, h2_stream: None, from: None, code, detail })
}

fn capture_notice_problem(meta: Meta, notice: CaptureNotice) -> Event<'static> {
    let detail = match notice {
        CaptureNotice::UnknownInterface { interface } => {
            format!("packets of undescribed interface {interface} were skipped")
        }
        CaptureNotice::SkippedBlock { offset, reason } => {
            format!("skipped a block at byte {offset}: {reason}")
        }
    };
    Event::Problem(ProblemRecord {
        meta,
        stream: None,
        h2_stream: None,
        from: None,
        code: ProblemCode::UndecodablePacket,
        detail,
    })
}

/// What reads a capture feeds: the one-thread [`Dissector`] or the sharded driver's reader.
pub trait Dissect {
    /// One captured packet; an `Err` is an output error (e.g. a closed pipe): stop reading.
    fn packet(&mut self, rec: &CaptureRecord<'_>) -> io::Result<()>;
    /// Secrets from a pcapng Decryption Secrets Block.
    fn add_secrets(&mut self, secrets_type: u32, data: &[u8]);
    /// Something the capture reader noticed.
    fn capture_notice(&mut self, notice: CaptureNotice);
}

impl Dissect for Dissector<'_> {
    fn packet(&mut self, rec: &CaptureRecord<'_>) -> io::Result<()> {
        Dissector::packet(self, rec)
    }
    fn add_secrets(&mut self, secrets_type: u32, data: &[u8]) {
        Dissector::add_secrets(self, secrets_type, data);
    }
    fn capture_notice(&mut self, notice: CaptureNotice) {
        Dissector::capture_notice(self, notice);
    }
}

/// One connection's state above TCP: TLS (when the connection turns out to be TLS), then the
/// HTTP/WebSocket session, which sees decrypted bytes as if they were the TCP stream.
#[derive(Default)]
pub struct Conn {
    /// A load balancer's PROXY protocol header, taken off before TLS and HTTP look.
    lb_header: ProxyHeaderStage,
    tls: LazyTls,
    session: Session,
    /// An HTTP/2 connection: its frames, and the WebSockets they carry (RFC 8441).
    h2: Option<Box<H2Conn>>,
    /// Decrypted bytes handed to the session, and TLS bytes counted as overhead so far
    /// (records held in a live capture count as overhead until they are decrypted).
    handed: u64,
    tls_accounted: u64,
}

impl Conn {
    fn on_tcp(
        &mut self,
        info: &ConnInfo,
        meta: Meta,
        ev: TcpEvent<'_>,
        ctx: &mut Ctx<'_>,
        keys: &mut KeyLog,
    ) -> Feedback {
        ctx.sids.set_scope(info.client.addr, info.server.addr);
        let rest;
        let ev = match ev {
            TcpEvent::Data { from: Side::Client, offset, data } if self.lb_header.active() => {
                match self.lb_header.client_data(offset, data, info.roles_from_syn) {
                    proxy_protocol::Verdict::Pass => ev,
                    proxy_protocol::Verdict::Held => return Feedback::Continue,
                    proxy_protocol::Verdict::Replace { header, consumed, rest: r, offset } => {
                        ctx.acct.http_bytes += consumed;
                        self.session.note_proxy_header(header.map(|h| h.summary), consumed);
                        if r.is_empty() {
                            return Feedback::Continue;
                        }
                        rest = r;
                        TcpEvent::Data { from: Side::Client, offset, data: &rest }
                    }
                }
            }
            TcpEvent::Gap { from: Side::Client, .. }
            | TcpEvent::Fin { from: Side::Client, .. }
            | TcpEvent::Rst { .. }
            | TcpEvent::Closed { .. } => {
                // The client's stream does not go on where a partial header was held.
                if let Some((held, offset)) = self.lb_header.flush() {
                    let data = TcpEvent::Data { from: Side::Client, offset, data: &held };
                    self.on_tcp(info, meta, data, ctx, keys);
                }
                ev
            }
            _ => ev,
        };
        let mut step = self.tls.on_tcp(&ev, info.roles_from_syn, keys);
        if self.tls.is_tls() {
            self.session.set_decrypted();
        }
        let swap = step == Step::ConsumedSwapRoles;
        if swap {
            // The events after this one come with the roles swapped; the session hears
            // of it before it sees any of this connection's bytes.
            self.session.swap_roles_before_data();
            step = Step::Consumed;
        }
        let mut feedback = Feedback::Continue;
        let mut handed_on = 0u64;
        let outputs = self.tls.take_outputs();
        // Borrowed, not cloned: the TLS facts are read for every event of a TLS connection.
        let tls = self.tls.info();
        let mut annotated = Annotate { inner: &mut *ctx.out, tls };
        let mut actx =
            Ctx { opts: ctx.opts, out: &mut annotated, acct: &mut *ctx.acct, sids: &mut *ctx.sids };
        let above = &mut Above { session: &mut self.session, h2: &mut self.h2 };
        if step == Step::Pass && !matches!(ev, TcpEvent::Closed { .. }) {
            feedback = above.on_tcp(info, meta, ev, &mut actx);
            tls_outputs(above, tls, info, meta, outputs, &mut actx, &mut handed_on);
        } else {
            tls_outputs(above, tls, info, meta, outputs, &mut actx, &mut handed_on);
            if step == Step::Pass {
                feedback = above.on_tcp(info, meta, ev, &mut actx);
            }
        }
        if let Some(t) = tls {
            self.handed += handed_on;
            let overhead = (t.bytes[0] + t.bytes[1]).saturating_sub(self.handed);
            let acct = &mut actx.acct.tls_bytes;
            *acct = (*acct + overhead).saturating_sub(self.tls_accounted);
            self.tls_accounted = overhead;
        }
        if let Some(held) = self.session.take_tunnel_opened() {
            self.tls.reopen();
            // A ClientHello the client sent before the proxy answered was held by the
            // session: it starts the tunnelled TLS connection.
            for (from, at, bytes) in held {
                let _ = self.on_tcp(
                    info,
                    at,
                    TcpEvent::Data { from, offset: 0, data: &bytes },
                    ctx,
                    keys,
                );
            }
        }
        // Roles come from the ClientHello on a TLS connection; the session only sees the
        // decrypted bytes, which cannot change them.
        if swap {
            Feedback::SwapRoles
        } else if self.tls.is_tls() {
            Feedback::Continue
        } else {
            feedback
        }
    }
}

/// What reads a connection's stream above TLS: its session, and once the stream turns out to
/// be HTTP/2, the reader of its frames, which takes the bytes (the session still hears of
/// the rest: FIN, RST, keepalives, gaps).
struct Above<'c> {
    session: &'c mut Session,
    h2: &'c mut Option<Box<H2Conn>>,
}

impl Above<'_> {
    fn on_tcp(
        &mut self,
        info: &ConnInfo,
        meta: Meta,
        ev: TcpEvent<'_>,
        ctx: &mut Ctx<'_>,
    ) -> Feedback {
        if let Some(h2) = self.h2.as_deref_mut() {
            match ev {
                TcpEvent::Data { .. } => {
                    h2.on_tcp(info, meta, &ev, ctx);
                    return Feedback::Continue;
                }
                TcpEvent::Gap { .. } => h2.on_tcp(info, meta, &ev, ctx),
                TcpEvent::Closed { .. } => {
                    h2.on_tcp(info, meta, &ev, ctx);
                    self.session.set_h2_websockets(h2.websockets());
                }
                _ => {}
            }
        }
        let feedback = self.session.on_tcp(info, meta, ev, ctx);
        if let Some(held) = self.session.take_h2_opened() {
            let proxies = self.session.proxy_hops().to_vec();
            let mut h2 = Box::new(H2Conn::new(ctx.opts.limits.max_http_header, proxies));
            for (from, at, bytes) in held {
                h2.on_tcp(info, at, &TcpEvent::Data { from, offset: 0, data: &bytes }, ctx);
            }
            *self.h2 = Some(h2);
        }
        feedback
    }
}

/// Hands what the TLS stage produced for one TCP event to the session (decrypted bytes, as
/// if they were the TCP stream) and to the output (the TLS record, problems).
fn tls_outputs(
    session: &mut Above<'_>,
    tls: Option<&TlsInfo>,
    info: &ConnInfo,
    meta: Meta,
    outputs: Vec<TlsOut>,
    ctx: &mut Ctx<'_>,
    handed_on: &mut u64,
) {
    for o in outputs {
        match o {
            TlsOut::Data { from, offset, bytes } => {
                *handed_on += bytes.len() as u64;
                let ev = TcpEvent::Data { from, offset, data: &bytes };
                session.on_tcp(info, meta, ev, ctx);
            }
            TlsOut::Handshake => {
                if let Some(t) = tls {
                    ctx.out.emit(Event::Tls(Box::new(TlsRecord {
                        meta,
                        stream: info.stream,
                        client: info.client,
                        server: info.server,
                        info: t.clone(),
                    })));
                }
            }
            TlsOut::Opaque => ctx.out.classify(info.stream, true),
            TlsOut::NotHttp1 => ctx.out.classify(info.stream, false),
            TlsOut::Problem { code, from, detail } => {
                let problem = ProblemRecord::of_stream(meta, info.stream, from, code, detail);
                ctx.out.emit(Event::Problem(problem));
            }
        }
    }
}

/// A connection's TLS state, allocated when its first bytes arrive and dropped as soon as
/// they are not a ClientHello. The state is over a kilobyte, and most connections of a SYN
/// flood, or of any capture, never need it; holding it inline made each tracked connection
/// cost twice as much.
#[derive(Default)]
struct LazyTls {
    state: Option<Box<TlsConn>>,
    plain: bool,
}

impl LazyTls {
    fn on_tcp(&mut self, ev: &TcpEvent<'_>, roles_from_syn: bool, keys: &mut KeyLog) -> Step {
        if self.plain {
            return Step::Pass;
        }
        // Until the first bytes, TlsConn passes every event on: no need to allocate it.
        if self.state.is_none() && !matches!(ev, TcpEvent::Data { .. }) {
            return Step::Pass;
        }
        let tls = self.state.get_or_insert_with(Box::default);
        let step = tls.on_tcp(ev, roles_from_syn, keys);
        if !tls.is_tls() {
            self.state = None;
            self.plain = true;
        }
        step
    }

    /// A proxy tunnel (HTTP CONNECT, SOCKS) opened on a plain connection: what follows may be
    /// TLS from its start (wss:// through a proxy), decided again by the next bytes.
    fn reopen(&mut self) {
        self.plain = false;
    }

    fn take_outputs(&mut self) -> Vec<TlsOut> {
        self.state.as_mut().map(|t| t.take_outputs()).unwrap_or_default()
    }

    fn info(&self) -> Option<&TlsInfo> {
        self.state.as_ref().and_then(|t| t.info())
    }

    fn is_tls(&self) -> bool {
        self.state.as_ref().is_some_and(|t| t.is_tls())
    }
}

/// Adds a TLS connection's facts to the session's handshake and connection records.
struct Annotate<'o, 't> {
    inner: &'o mut dyn Emitter,
    tls: Option<&'t TlsInfo>,
}

impl Emitter for Annotate<'_, '_> {
    fn emit(&mut self, mut ev: Event<'_>) {
        if let Some(t) = self.tls {
            match &mut ev {
                Event::Handshake(h) => h.tls = Some(t.clone()),
                Event::Connection(c) => {
                    for p in &t.problems {
                        if !c.problems.contains(p) {
                            c.problems.push(*p);
                        }
                    }
                    c.tls = Some(t.clone());
                }
                _ => {}
            }
        }
        self.inner.emit(ev);
    }

    fn classify(&mut self, stream: u64, websocket: bool) {
        self.inner.classify(stream, websocket);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    WebSocket,
    Other,
}

/// Passes records to the sink in capture order, holding TCP records of connections whose
/// nature is not known yet (bounded by [`HOLD_PACKETS`] and [`HOLD_BYTES`]).
struct Sequencer<'s> {
    sink: &'s mut dyn Sink,
    all: bool,
    class: HashMap<u64, Class>,
    /// Records held back, each with its [`payload_size`] (`None`: one the sink does not read).
    held: VecDeque<(Option<Event<'static>>, usize)>,
    held_bytes: usize,
    now: u64,
    error: Option<io::Error>,
    problems: BTreeMap<ProblemCode, u64>,
    connections: u64,
    websocket_connections: u64,
    frames: u64,
    messages: u64,
    /// Records emitted so far (a packet that adds none gets a `packet` record with `--all`).
    emitted: u64,
    /// Problem codes of each open stream's records, for its connection record (which lists
    /// every problem seen on the connection: a frame's `invalid-utf8`, a message's
    /// `app-decode-error`, a TLS alert…).
    /// Keyed by TCP stream and HTTP/2 stream: a WebSocket over HTTP/2 has a record of its
    /// own, and so has the TCP connection that carried it.
    seen: HashMap<(u64, Option<crate::event::H2StreamId>), Vec<ProblemCode>>,
    /// Records the sink is done with, when whoever made them frees them (`-j`: a dissecting
    /// thread); `None`: they are freed here, or kept by the sink.
    spent: Option<Spent>,
}

/// Records the sink is done with after the sequencer held them back, kept for the thread that
/// made them to free (the others go back in the chunks they came in), and the memory they
/// take ([`kept_size`]).
#[derive(Default)]
struct Spent {
    records: Vec<Event<'static>>,
    bytes: usize,
}

impl Spent {
    /// Beyond this weight, records are freed where they are: one event may make any number
    /// of records, and what is held must stay bounded whatever the input.
    const MAX_BYTES: usize = 1 << 20;

    fn push(&mut self, ev: Event<'static>) {
        self.bytes += kept_size(&ev);
        self.records.push(ev);
    }

    fn is_full(&self) -> bool {
        self.bytes >= Spent::MAX_BYTES
    }

    /// Moves `other`'s records to the end of these.
    fn append(&mut self, other: &mut Spent) {
        self.records.append(&mut other.records);
        self.bytes += std::mem::take(&mut other.bytes);
    }
}

impl<'s> Sequencer<'s> {
    fn new(sink: &'s mut dyn Sink, all: bool) -> Self {
        Sequencer {
            sink,
            all,
            class: HashMap::default(),
            held: VecDeque::new(),
            held_bytes: 0,
            now: 0,
            error: None,
            problems: BTreeMap::new(),
            connections: 0,
            websocket_connections: 0,
            frames: 0,
            messages: 0,
            emitted: 0,
            seen: HashMap::default(),
            spent: None,
        }
    }

    fn now(&mut self, packet: u64) {
        self.now = packet;
        self.release(false);
    }

    fn flush_error(&mut self) -> io::Result<()> {
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Whether a record must wait for its connection to be classified.
    fn must_hold(&self, ev: &Event<'_>) -> bool {
        if self.all {
            return false;
        }
        match ev {
            Event::Tcp(r) => !self.class.contains_key(&r.stream),
            Event::Tls(r) => !self.class.contains_key(&r.stream),
            _ => false,
        }
    }

    /// Whether a (released) record is shown at all.
    fn shown(&self, ev: &Event<'_>) -> bool {
        if self.all {
            return true;
        }
        match ev {
            Event::Tcp(r) => self.class.get(&r.stream) == Some(&Class::WebSocket),
            // A TLS connection that could not be looked into is listed, as one that could
            // and turned out to be WebSocket is.
            Event::Connection(r) => {
                r.websocket
                    || r.h2_websockets.is_some_and(|n| n > 0)
                    || (r.tls.is_some() && self.class.get(&r.stream) == Some(&Class::WebSocket))
            }
            Event::Request(r) => self.class.get(&r.stream) == Some(&Class::WebSocket),
            Event::Tls(r) => self.class.get(&r.stream) == Some(&Class::WebSocket),
            _ => true,
        }
    }

    fn release(&mut self, force: bool) {
        while let Some((front, _)) = self.held.front() {
            if let Some(front) = front.as_ref().filter(|ev| self.must_hold(ev)) {
                let stale = front.packet().saturating_add(HOLD_PACKETS) < self.now
                    || self.held_bytes > HOLD_BYTES;
                if !(force || stale) {
                    return;
                }
                // Waited long enough: the connection is not WebSocket as far as we know.
                if let Some(stream) = front.stream() {
                    self.class.insert(stream, Class::Other);
                }
            }
            let Some((ev, size)) = self.held.pop_front() else { return };
            self.held_bytes = self.held_bytes.saturating_sub(size);
            if let Some(ev) = ev {
                self.pass_owned(ev);
            }
        }
    }

    /// Delivers a record if it is shown (the sink may keep it without copying it); a
    /// connection record retires its stream's class.
    fn pass_owned(&mut self, ev: Event<'static>) {
        if self.spent.is_some() {
            self.pass_by_ref(&ev);
            if let Some(spent) = self.spent.as_mut() {
                spent.push(ev);
                if spent.is_full() {
                    *spent = Spent::default();
                }
            }
            return;
        }
        // A WebSocket over HTTP/2 ends before the TCP connection that carried it.
        let retired = match &ev {
            Event::Connection(c) if c.h2_stream.is_none() => Some(c.stream),
            _ => None,
        };
        if self.shown(&ev) && self.error.is_none() {
            if let Err(e) = self.sink.event_owned(ev) {
                self.error = Some(e);
            }
        }
        if let Some(stream) = retired {
            self.class.remove(&stream);
        }
    }

    /// [`Sequencer::pass_owned`] of a record whose maker frees it.
    fn pass_by_ref(&mut self, ev: &Event<'_>) {
        if self.shown(ev) && self.error.is_none() {
            if let Err(e) = self.sink.event(ev) {
                self.error = Some(e);
            }
        }
        if let Event::Connection(c) = ev {
            if c.h2_stream.is_none() {
                self.class.remove(&c.stream);
            }
        }
    }

    fn drain_all(&mut self) {
        self.release(true);
    }
}

/// Wireshark's summary of a TCP segment: ports, flags, raw sequence numbers, window, length.
fn tcp_packet_record(meta: Meta, stream: Option<u64>, seg: &TcpSegment<'_>) -> PacketRecord {
    const NAMES: [(u8, &str); 8] = [
        (0x02, "SYN"),
        (0x01, "FIN"),
        (0x04, "RST"),
        (0x08, "PSH"),
        (0x10, "ACK"),
        (0x20, "URG"),
        (0x40, "ECE"),
        (0x80, "CWR"),
    ];
    let flags: Vec<&str> =
        NAMES.iter().filter(|(bit, _)| seg.flags.0 & bit != 0).map(|(_, n)| *n).collect();
    let len = seg.payload.len() as u64 + u64::from(seg.missing);
    PacketRecord {
        meta,
        stream,
        src: Some(Endpoint { addr: seg.src, port: seg.src_port }),
        dst: Some(Endpoint { addr: seg.dst, port: seg.dst_port }),
        proto: "TCP",
        info: format!(
            "{} → {} [{}] Seq={} Ack={} Win={} Len={len}",
            seg.src_port,
            seg.dst_port,
            flags.join(", "),
            seg.seq,
            seg.ack,
            seg.window
        ),
    }
}

/// What a record weighs while it is held back: computed on the whole record, its payload as
/// the session would have kept it whole before it, or a dissecting thread, cut what the sink
/// does not read (so that every view and `-j` hold exactly the same records).
fn payload_size(ev: &Event<'_>) -> usize {
    let cut = match ev {
        Event::Frame(f) => f.payload_cut,
        Event::Message(m) => m.payload_cut,
        _ => 0,
    };
    kept_size(ev).saturating_add(usize::try_from(cut).unwrap_or(usize::MAX))
}

/// What holding a record takes: the record, and the larger parts it owns.
fn kept_size(ev: &Event<'_>) -> usize {
    const RECORD: usize = std::mem::size_of::<Event<'static>>();
    match ev {
        Event::Frame(f) => f.payload.len() + RECORD,
        Event::Message(m) => m.payload.len() + RECORD,
        Event::Connection(_) => RECORD + std::mem::size_of::<ConnectionRecord>(),
        _ => RECORD,
    }
}

impl Sequencer<'_> {
    /// [`Emitter::emit`] of a record that is owned already (from another thread), with its
    /// [`payload_size`].
    fn emit_owned(&mut self, mut ev: Event<'static>, size: usize) {
        self.count(&mut ev);
        self.classify_at_end(&ev);
        if self.held.is_empty() && !self.must_hold(&ev) {
            self.pass_owned(ev);
            return;
        }
        self.hold(ev, size);
    }

    /// [`Sequencer::emit_owned`] of a record that stays where it is, to be freed by the
    /// thread that made it: counted, and shown by reference unless it must wait behind (or
    /// for) held records. Says whether it was; if not, the caller passes it to
    /// [`Sequencer::hold`].
    fn emit_in_place(&mut self, ev: &mut Event<'static>) -> bool {
        self.count(ev);
        self.classify_at_end(ev);
        if self.held.is_empty() && !self.must_hold(ev) {
            self.pass_by_ref(ev);
            return true;
        }
        false
    }

    /// Holds a counted record until its connection is classified, or the records before it
    /// are released.
    fn hold(&mut self, ev: Event<'static>, size: usize) {
        self.held_bytes += size;
        self.held.push_back((Some(ev), size));
        self.release(false);
    }

    /// Frame and message records of one event that were not handed over, because the sink
    /// does not read them (`Sink::reads_frames`): counted, and held in their place while
    /// records are held, so that what is held weighs what it weighs with the records (as one
    /// entry: nothing is released between the records of one event that is not released
    /// after the last of them).
    fn unread(&mut self, frames: u32, messages: u32, size: usize) {
        self.emitted += u64::from(frames) + u64::from(messages);
        self.frames += u64::from(frames);
        self.messages += u64::from(messages);
        if !self.held.is_empty() {
            self.held_bytes += size;
            self.held.push_back((None, size));
            self.release(false);
        }
    }

    /// A connection's record is its last: a connection still unclassified then is what the
    /// record says, and its held records need not wait any longer. (At the end of a capture
    /// every open connection ends at once; its held records waited for the last of them, a
    /// kilobyte per connection, before.)
    fn classify_at_end(&mut self, ev: &Event<'_>) {
        if let Event::Connection(c) = ev {
            if c.h2_stream.is_some() {
                return;
            }
            let class = if c.websocket { Class::WebSocket } else { Class::Other };
            self.class.entry(c.stream).or_insert(class);
        }
    }

    /// Counts a record, and completes a connection record's problems (counted as the session
    /// made them: the codes added here were counted on their own records).
    fn count(&mut self, ev: &mut Event<'_>) {
        self.emitted += 1;
        for &code in ev.problems() {
            *self.problems.entry(code).or_insert(0) += 1;
        }
        if let Event::Connection(c) = ev {
            for p in self.seen.remove(&(c.stream, c.h2_stream)).unwrap_or_default() {
                if !c.problems.contains(&p) {
                    c.problems.push(p);
                }
            }
        } else if let Some(stream) = ev.stream().filter(|_| !ev.problems().is_empty()) {
            let seen = self.seen.entry((stream, ev.h2_stream())).or_default();
            for p in ev.problems() {
                if !seen.contains(p) {
                    seen.push(*p);
                }
            }
        }
        match &ev {
            Event::Frame(_) => self.frames += 1,
            Event::Message(_) => self.messages += 1,
            Event::Connection(c) => {
                // TCP connections; a WebSocket over HTTP/2 is one of the WebSockets.
                if c.h2_stream.is_none() {
                    self.connections += 1;
                }
                if c.websocket {
                    self.websocket_connections += 1;
                }
            }
            _ => {}
        }
    }
}

impl Emitter for Sequencer<'_> {
    fn emit(&mut self, mut ev: Event<'_>) {
        self.count(&mut ev);
        self.classify_at_end(&ev);
        if self.held.is_empty() && !self.must_hold(&ev) {
            // Sessions hand over their payload buffers (the records own them), so this moves
            // rather than copies, and a sink that keeps records takes them as they are.
            self.pass_owned(ev.into_owned());
            return;
        }
        let size = payload_size(&ev);
        self.held_bytes += size;
        self.held.push_back((Some(ev.into_owned()), size));
        self.release(false);
    }

    fn classify(&mut self, stream: u64, websocket: bool) {
        let class = if websocket { Class::WebSocket } else { Class::Other };
        self.class.insert(stream, class);
        self.release(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::Side;

    #[test]
    fn tls_state_exists_only_for_connections_that_start_with_a_client_hello() {
        let mut keys = KeyLog::default();
        let mut t = LazyTls::default();
        assert_eq!(t.on_tcp(&TcpEvent::Syn { from: Side::Client }, true, &mut keys), Step::Pass);
        assert!(t.state.is_none() && !t.plain, "nothing allocated before the first bytes");
        let get = TcpEvent::Data { from: Side::Client, offset: 0, data: b"GET / HTTP/1.1\r\n" };
        assert_eq!(t.on_tcp(&get, true, &mut keys), Step::Pass);
        assert!(t.state.is_none() && t.plain && !t.is_tls() && t.info().is_none());
        // A plain connection stays plain, whatever comes later.
        let hello = [22, 3, 1, 0, 4, 1, 0, 0, 0];
        let ch = TcpEvent::Data { from: Side::Client, offset: 16, data: &hello };
        assert_eq!(t.on_tcp(&ch, true, &mut keys), Step::Pass);
        assert!(t.state.is_none());
        let mut t = LazyTls::default();
        let ch = TcpEvent::Data { from: Side::Client, offset: 0, data: &hello };
        assert_eq!(t.on_tcp(&ch, true, &mut keys), Step::Consumed);
        assert!(t.is_tls() && t.state.is_some());
    }
}
