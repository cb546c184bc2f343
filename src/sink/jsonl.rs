//! JSON Lines output: one record per line, the format users script against.
//!
//! The wire format (the core keys are a public contract and never change name or type; the
//! full reference with every key is `docs/json.md`):
//!
//! - Every line is an object whose first key is `"type"`. The first line is `begin`
//!   (`format`, `tool`, `version`, `view`, `inputs`), the last is `end` (run totals).
//! - `packet` is the 1-based packet number (Wireshark's `frame.number`) of the packet that
//!   completed the record; `ts` is that packet's capture time in seconds since the epoch with
//!   6 (or, from nanosecond captures, 9) decimals; `stream` is Wireshark's `tcp.stream`;
//!   `from` is `"client"` or `"server"`; `src`/`dst`/`client`/`server` are `"addr:port"`
//!   (IPv6 `"[addr]:port"`).
//! - `problems` is an array of stable kebab-case codes (see `problem.rs`), `[]` when none.
//! - Payloads: `"text"` when the bytes are valid UTF-8 and belong to a text message (or are a
//!   close reason), else `"bytes"` (standard base64). `--max-payload N` cuts them to N bytes
//!   and adds `"truncated": true`, as does a payload cut by a memory limit.
//! - Record types: `begin`, `tcp`, `request`, `handshake`, `frame`, `message`, `app`
//!   (Engine.IO packets of HTTP long-polling), `problem`, `tls`, `connection`, `end`. Messages
//!   (and frames of single-frame messages) of a known application protocol carry an `app`
//!   object.

use super::json::{write_f64, write_str, Obj};
use super::{RunInfo, RunTotals, Sink};
use crate::event::{
    AppRecord, ConnectionRecord, DirectionStats, Event, FrameRecord, H2StreamId, HandshakeRecord,
    MessageRecord, PacketRecord, ProblemRecord, RequestRecord, TcpRecord, TlsRecord,
};
use crate::problem::ProblemCode;
use crate::tcp::flow::{EndpointText, EndpointTexts};
use crate::tcp::{Endpoint, Side};
use crate::tls::TlsInfo;
use std::borrow::Cow;
use std::io::{self, Write};

/// The format version in the `begin` record; bumped only for incompatible changes.
pub const FORMAT_VERSION: u64 = 1;

/// Which records a JSON view writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonSelect {
    pub tcp: bool,
    pub requests: bool,
    pub handshakes: bool,
    pub frames: bool,
    pub messages: bool,
    pub problems: bool,
    pub connections: bool,
    /// Control frames as `message` records of their own opcode (the messages view).
    pub control_messages: bool,
    /// `packet` records (frames view with `--all`).
    pub packets: bool,
    /// `app` records (Engine.IO packets of HTTP long-polling requests).
    pub apps: bool,
}

impl JsonSelect {
    /// The frames view: everything but connection records.
    pub fn frames_view(conns: bool) -> Self {
        JsonSelect {
            tcp: true,
            requests: false,
            handshakes: true,
            frames: true,
            messages: true,
            problems: true,
            connections: conns,
            control_messages: false,
            packets: false,
            apps: true,
        }
    }

    /// Also `packet` records for packets that made no other record (`--all`).
    pub fn with_packets(mut self, on: bool) -> Self {
        self.packets = on;
        self
    }

    /// The messages view: complete messages, control frames as messages, and problems.
    pub fn messages_view() -> Self {
        JsonSelect {
            tcp: false,
            requests: false,
            handshakes: false,
            frames: false,
            messages: true,
            problems: false,
            connections: false,
            control_messages: true,
            packets: false,
            apps: true,
        }
    }

    /// The conns view: one record per connection.
    pub fn conns_view() -> Self {
        JsonSelect {
            tcp: false,
            requests: false,
            handshakes: false,
            frames: false,
            messages: false,
            problems: false,
            connections: true,
            control_messages: false,
            packets: false,
            apps: false,
        }
    }

    /// The follow view: one connection's handshake, messages, lifecycle and summary.
    pub fn follow_view() -> Self {
        JsonSelect {
            tcp: true,
            requests: false,
            handshakes: true,
            frames: false,
            messages: true,
            problems: true,
            connections: true,
            control_messages: true,
            packets: false,
            apps: true,
        }
    }
}

/// Payload handling for JSON records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PayloadOpts {
    /// Cut payloads to this many bytes (`--max-payload`).
    pub max: Option<usize>,
}

/// JSON Lines sink.
pub struct JsonlSink<W: Write> {
    out: W,
    buf: Vec<u8>,
    select: JsonSelect,
    payload: PayloadOpts,
    /// One JSON array instead of lines (`--json-array`).
    array: bool,
    /// Drop what varies between recordings of one scenario (`--normalize`).
    normalize: bool,
    normalizer: super::normalize::Normalizer,
    records: u64,
    /// Records are gathered in `buf` up to this many bytes before one write (see
    /// [`JsonlSink::gathering`]); 0 writes each record as it completes.
    gather: usize,
    memo: PayloadMemo,
    names: EndpointTexts,
}

impl<W: Write> JsonlSink<W> {
    pub fn new(out: W, select: JsonSelect, payload: PayloadOpts, array: bool) -> Self {
        JsonlSink {
            out,
            buf: Vec::with_capacity(64 << 10),
            select,
            payload,
            array,
            normalize: false,
            normalizer: super::normalize::Normalizer::default(),
            records: 0,
            gather: 0,
            memo: PayloadMemo::default(),
            names: EndpointTexts::default(),
        }
    }

    /// Writes normalized records (see [`super::normalize`]).
    pub fn normalized(mut self, on: bool) -> Self {
        self.normalize = on;
        self
    }

    /// Gathers records into writes of at least `bytes` (when neither normalizing nor writing
    /// an array, which rework each record on its own). For output into files and pipes: a
    /// block-buffered writer passes a write at least its capacity straight through, so JSON
    /// output, several times the size of its capture, is not copied a second time. Not for a
    /// terminal or live capture, where each record must show as it completes.
    pub fn gathering(mut self, bytes: usize) -> Self {
        self.gather = bytes;
        self
    }

    fn flush_record(&mut self) -> io::Result<()> {
        if self.gather > 0 && !self.normalize && !self.array {
            self.records += 1;
            if self.buf.len() >= self.gather {
                self.memo.detach(&self.buf);
                self.out.write_all(&self.buf)?;
                self.buf.clear();
            }
            return Ok(());
        }
        self.memo.detach(&self.buf);
        if self.normalize && !self.normalizer.line(&mut self.buf) {
            self.buf.clear();
            return Ok(());
        }
        if self.array {
            // Turn "{...}\n" into "[{...}" / ",\n{...}".
            if self.buf.last() == Some(&b'\n') {
                self.buf.pop();
            }
            let sep: &[u8] = if self.records == 0 { b"[" } else { b",\n" };
            self.out.write_all(sep)?;
        }
        self.records += 1;
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

impl<W: Write> Drop for JsonlSink<W> {
    /// Records gathered when a run stops short of [`Sink::end`] are still written.
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.out.write_all(&self.buf);
            let _ = self.out.flush();
        }
    }
}

impl<W: Write> Sink for JsonlSink<W> {
    fn reads_json_marks(&self) -> bool {
        self.select.messages
    }
    fn reads_frames(&self) -> bool {
        let s = &self.select;
        s.frames || s.messages || s.control_messages
    }
    fn payload_prefix(&self) -> Option<usize> {
        let s = &self.select;
        if s.frames || s.messages || s.control_messages {
            // `--max-payload` shows a longer payload cut, and `truncated`, as one with bytes
            // missing.
            self.payload.max
        } else {
            Some(0)
        }
    }

    fn begin(&mut self, info: &RunInfo) -> io::Result<()> {
        Obj::new(&mut self.buf, "begin")
            .u64("format", FORMAT_VERSION)
            .str("tool", "wsdissect")
            .str("version", env!("CARGO_PKG_VERSION"))
            .str("view", info.view)
            .str_array("inputs", info.inputs.iter().map(String::as_str))
            .end();
        self.flush_record()
    }

    fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        let s = self.select;
        let buf = &mut self.buf;
        match ev {
            Event::Tcp(r) if s.tcp => write_tcp(buf, r, &mut self.names),
            Event::Request(r) if s.requests => write_request(buf, r),
            Event::Handshake(r) if s.handshakes => write_handshake(buf, r),
            Event::Tls(r) if s.handshakes => write_tls(buf, r),
            Event::Frame(r) if s.frames => {
                if write_frame(buf, r, self.payload, &mut self.memo, &mut self.names) {
                    self.memo.keep_payload(Cow::Borrowed(&r.payload));
                }
            }
            Event::Frame(r) if s.control_messages && r.opcode >= 8 => {
                write_control_message(buf, r, self.payload)
            }
            Event::Message(r) if s.messages => write_message(buf, r, self.payload, &mut self.memo),
            Event::Problem(r) if s.problems => write_problem(buf, r),
            Event::Connection(r) if s.connections => write_connection(buf, r),
            Event::Packet(r) if s.packets => write_packet(buf, r),
            Event::App(r) if s.apps => write_app_record(buf, r, self.payload, &mut self.names),
            _ => return Ok(()),
        }
        self.flush_record()
    }

    fn keeps_records(&self) -> bool {
        // Only a data frame's payload is kept (by the memo, for its message).
        self.select.frames
    }

    fn event_owned(&mut self, ev: Event<'static>) -> io::Result<()> {
        match ev {
            // The payload moves into the memo instead of being copied there.
            Event::Frame(r) if self.select.frames => {
                if write_frame(&mut self.buf, &r, self.payload, &mut self.memo, &mut self.names) {
                    self.memo.keep_payload(r.payload);
                }
                self.flush_record()
            }
            ev => self.event(&ev),
        }
    }

    fn end(&mut self, totals: &RunTotals) -> io::Result<()> {
        write_end(&mut self.buf, totals);
        self.flush_record()?;
        self.memo.detach(&self.buf);
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        if self.array {
            self.out.write_all(b"]\n")?;
        }
        self.out.flush()
    }
}

fn problems(obj: &mut Obj<'_>, codes: &[ProblemCode]) {
    obj.str_array("problems", codes.iter().map(|c| c.as_str()));
}

/// The payload keys of the last data frame, for its message: a message of one uncompressed
/// frame carries the same payload, and escaping or encoding payloads is most of the work of
/// formatting.
#[derive(Default)]
pub struct PayloadMemo {
    payload: Vec<u8>,
    is_text: bool,
    missing: bool,
    /// Where [`payload_keys`] wrote them (`,"text":...`) in the sink's buffer, while it holds
    /// them: copied from there, they are not copied aside first.
    keys_at: Option<(usize, usize)>,
    /// The keys, once the buffer they were in was written out (see [`PayloadMemo::detach`]).
    keys: Vec<u8>,
}

/// What a record does with the [`PayloadMemo`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Memo {
    /// Write the payload keys and remember them (a data frame).
    Remember,
    /// Write the remembered keys when they are for this payload (its message).
    Reuse,
}

impl PayloadMemo {
    /// The payload of the frame whose keys were just remembered: moved in when owned.
    fn keep_payload(&mut self, payload: Cow<'_, [u8]>) {
        match payload {
            Cow::Owned(v) => self.payload = v,
            Cow::Borrowed(b) => {
                self.payload.clear();
                self.payload.extend_from_slice(b);
            }
        }
    }

    /// Keeps its own copy of keys still in `buf`, which is about to be written out or changed.
    fn detach(&mut self, buf: &[u8]) {
        if let Some((start, end)) = self.keys_at.take() {
            self.keys.clear();
            self.keys.extend_from_slice(buf.get(start..end).unwrap_or_default());
        }
    }

    fn keys(
        &mut self,
        memo: Memo,
        obj: &mut Obj<'_>,
        payload: &[u8],
        text: bool,
        missing: u64,
        opts: PayloadOpts,
    ) {
        if memo == Memo::Remember {
            // The caller keeps the payload (`keep_payload`), by a move when it owns the record.
            let start = obj.position();
            payload_keys(obj, payload, text, missing, opts);
            self.keys_at = Some((start, obj.position()));
            self.keys.clear();
            (self.is_text, self.missing) = (text, missing > 0);
            return;
        }
        let same = (self.keys_at.is_some() || !self.keys.is_empty())
            && (self.is_text, self.missing) == (text, missing > 0)
            && self.payload == payload;
        match self.keys_at.take() {
            Some(range) if same => {
                obj.members_copied(range);
            }
            _ if same => {
                obj.members(&self.keys);
            }
            _ => payload_keys(obj, payload, text, missing, opts),
        }
        self.keys.clear();
    }
}

/// Writes `text` or `bytes` (and `truncated`) for a payload.
fn payload_keys(obj: &mut Obj<'_>, payload: &[u8], is_text: bool, missing: u64, opts: PayloadOpts) {
    let mut shown = payload;
    let mut truncated = missing > 0;
    if let Some(max) = opts.max {
        if shown.len() > max {
            shown = &shown[..max];
            truncated = true;
        }
    }
    if is_text && !truncated {
        // Whole text: the dissector kept it as text because it is valid UTF-8.
        obj.utf8("text", shown);
        return;
    }
    let text = if is_text {
        // A cut may split a character: back off to the last boundary.
        match simdutf8::basic::from_utf8(shown).map_or_else(|_| std::str::from_utf8(shown), Ok) {
            Ok(t) => Some(t),
            Err(e) if e.error_len().is_none() && truncated => {
                std::str::from_utf8(&shown[..e.valid_up_to()]).ok()
            }
            Err(_) => None,
        }
    } else {
        None
    };
    match text {
        Some(t) => obj.str("text", t),
        None => obj.base64("bytes", shown),
    };
    if truncated {
        obj.bool("truncated", true);
    }
}

/// `stream`, `from`, `src`, `dst`: the connection and direction of a record's bytes.
fn sent_on<'o, 'b>(
    o: &'o mut Obj<'b>,
    (stream, h2): (u64, Option<H2StreamId>),
    from: Side,
    (src, dst): (Endpoint, Endpoint),
    names: &mut EndpointTexts,
) -> &'o mut Obj<'b> {
    o.u64("stream", stream);
    h2_stream(o, h2)
        .str("from", from.as_str())
        .str("src", names.text(&src).as_str())
        .str("dst", names.text(&dst).as_str())
}

/// `h2_stream`, on the records of a WebSocket over HTTP/2 only.
fn h2_stream<'o, 'b>(o: &'o mut Obj<'b>, id: Option<H2StreamId>) -> &'o mut Obj<'b> {
    if let Some(id) = id {
        o.u64("h2_stream", id.get().into());
    }
    o
}

pub fn write_tcp(buf: &mut Vec<u8>, r: &TcpRecord, names: &mut EndpointTexts) {
    let mut o = Obj::new(buf, "tcp");
    o.u64("packet", r.meta.packet).ts("ts", r.meta.ts, r.meta.precision);
    sent_on(&mut o, (r.stream, None), r.from, (r.src, r.dst), names).str("event", r.kind.as_str());
    if let Some(b) = r.bytes {
        o.u64("bytes", b);
    }
    problems(&mut o, &r.problems);
    o.end();
}

pub fn write_request(buf: &mut Vec<u8>, r: &RequestRecord) {
    let mut o = Obj::new(buf, "request");
    o.u64("packet", r.meta.packet).ts("ts", r.meta.ts, r.meta.precision).u64("stream", r.stream);
    h2_stream(&mut o, r.h2_stream)
        .str("src", r.src.text().as_str())
        .str("dst", r.dst.text().as_str())
        .str("method", &r.method)
        .str("path", &r.path)
        .bool("upgrade", r.upgrade)
        .end();
}

fn headers(buf: &mut Vec<u8>, hs: &[(String, String)]) {
    buf.push(b'[');
    for (i, (name, value)) in hs.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.push(b'[');
        write_str(buf, name);
        buf.push(b',');
        write_str(buf, value);
        buf.push(b']');
    }
    buf.push(b']');
}

pub fn write_handshake(buf: &mut Vec<u8>, r: &HandshakeRecord) {
    let mut o = Obj::new(buf, "handshake");
    o.u64("stream", r.stream);
    h2_stream(&mut o, r.h2_stream)
        .u64("packet", r.meta.packet)
        .opt_u64("request_packet", r.request_packet)
        .opt_u64("response_packet", r.response_packet)
        .ts("ts", r.meta.ts, r.meta.precision)
        .opt_str("client", r.client.map(|e| e.text()).as_ref().map(EndpointText::as_str))
        .opt_str("server", r.server.map(|e| e.text()).as_ref().map(EndpointText::as_str))
        .opt_str("method", r.method.as_deref())
        .opt_str("path", r.path.as_deref())
        .opt_str("host", r.host.as_deref())
        .opt_str("origin", r.origin.as_deref())
        .opt_str("key", r.key.as_deref())
        .opt_u64("version", r.version.as_deref().and_then(|v| v.trim().parse().ok()))
        .str_array("protocols_offered", r.protocols_offered.iter().map(String::as_str))
        .opt_str("extensions_offered", r.extensions_offered.as_deref())
        .opt_u64("status", r.status.map(u64::from))
        .opt_str("reason", r.reason.as_deref())
        .opt_str("accept", r.accept.as_deref())
        .opt_bool("accept_ok", r.accept_ok)
        .opt_str("protocol", r.protocol.as_deref())
        .opt_str("extensions", r.extensions.as_deref())
        .raw("request_headers", |b| headers(b, &r.request_headers))
        .raw("response_headers", |b| headers(b, &r.response_headers))
        .str_array("notes", r.notes.iter().map(String::as_str));
    if let Some(t) = &r.tls {
        o.raw("tls", |b| tls_object(b, t));
    }
    problems(&mut o, &r.problems);
    o.end();
}

/// The `tls` object of handshake and connection records.
fn tls_object(buf: &mut Vec<u8>, t: &TlsInfo) {
    Obj::nested(buf)
        .opt_str("version", t.version.as_deref())
        .opt_str("cipher_suite", t.cipher_suite.as_deref())
        .opt_str("sni", t.sni.as_deref())
        .opt_str("alpn", t.alpn.as_deref())
        .bool("keys_found", t.keys_found)
        .bool("decrypted", t.decrypted)
        .u64("client_bytes", t.bytes[0])
        .u64("server_bytes", t.bytes[1])
        .u64("undecrypted_records", t.undecrypted_records)
        .close();
}

pub fn write_tls(buf: &mut Vec<u8>, r: &TlsRecord) {
    let t = &r.info;
    let mut o = Obj::new(buf, "tls");
    o.u64("packet", r.meta.packet)
        .ts("ts", r.meta.ts, r.meta.precision)
        .u64("stream", r.stream)
        .str("client", r.client.text().as_str())
        .str("server", r.server.text().as_str())
        .opt_str("version", t.version.as_deref())
        .opt_str("cipher_suite", t.cipher_suite.as_deref())
        .opt_u64("cipher_suite_id", t.cipher_suite_id.map(u64::from))
        .opt_str("sni", t.sni.as_deref())
        .str_array("alpn_offered", t.alpn_offered.iter().map(String::as_str))
        .opt_str("alpn", t.alpn.as_deref())
        .opt_str("client_random", t.client_random.as_deref())
        .bool("keys_found", t.keys_found);
    problems(&mut o, &t.problems);
    o.end();
}

/// Returns whether the frame's payload keys went into `memo`: its payload is then to be
/// stored there too (see `PayloadMemo::keys`).
pub fn write_frame(
    buf: &mut Vec<u8>,
    r: &FrameRecord<'_>,
    opts: PayloadOpts,
    memo: &mut PayloadMemo,
    names: &mut EndpointTexts,
) -> bool {
    let mut o = Obj::new(buf, "frame");
    o.u64("packet", r.meta.packet).u64("first_packet", r.first_packet).ts(
        "ts",
        r.meta.ts,
        r.meta.precision,
    );
    sent_on(&mut o, (r.stream, r.h2_stream), r.from, (r.src, r.dst), names)
        .bool("fin", r.fin)
        .u64("rsv", r.rsv.into())
        .u64("opcode", r.opcode.into())
        .str("opcode_name", r.opcode_name)
        .bool("masked", r.mask_key.is_some());
    match r.mask_key {
        Some(k) => o.hex("mask_key", &k),
        None => o.null("mask_key"),
    };
    o.u64("payload_len", r.payload_len).u64("len_form", r.len_form.into());
    let mut remembered = false;
    if r.opcode == 8 {
        o.opt_u64("close_code", r.close_code.map(u64::from));
        o.opt_str("close_reason", r.close_reason.as_deref());
        match r.close_reason.as_deref() {
            Some(reason) if !r.problems.contains(&ProblemCode::InvalidUtf8) => {
                payload_keys(&mut o, reason.as_bytes(), true, 0, opts)
            }
            _ => payload_keys(&mut o, &r.payload, false, r.payload_missing, opts),
        }
    } else {
        let (payload, text, missing) = (&r.payload, r.payload_is_text, r.payload_missing);
        // Only a final, uncompressed first frame can carry its message's payload.
        if r.fin && matches!(r.opcode, 1 | 2) && r.rsv & 4 == 0 {
            memo.keys(Memo::Remember, &mut o, payload, text, missing, opts);
            remembered = true;
        } else {
            payload_keys(&mut o, payload, text, missing, opts);
        }
    }
    if let Some(app) = &r.app {
        o.raw("app", |b| write_app(b, app));
    }
    problems(&mut o, &r.problems);
    o.end();
    remembered
}

pub fn write_message(
    buf: &mut Vec<u8>,
    r: &MessageRecord<'_>,
    opts: PayloadOpts,
    memo: &mut PayloadMemo,
) {
    let mut o = Obj::new(buf, "message");
    o.u64("stream", r.stream);
    h2_stream(&mut o, r.h2_stream)
        .str("from", r.from.as_str())
        .u64("packet", r.meta.packet)
        .u64("first_packet", r.first_packet)
        .u64("last_packet", r.meta.packet)
        .ts("ts", r.meta.ts, r.meta.precision)
        .u64("opcode", r.opcode.into())
        .str("opcode_name", r.opcode_name)
        .u64("frames", r.frames.into())
        .bool("compressed", r.compressed)
        .u64("wire_len", r.wire_len)
        .u64("len", r.len);
    memo.keys(Memo::Reuse, &mut o, &r.payload, r.is_text, r.payload_missing, opts);
    if r.is_json() {
        o.bool("json", true);
    }
    if let Some(app) = &r.app {
        o.raw("app", |b| write_app(b, app));
    }
    problems(&mut o, &r.problems);
    o.end();
}

/// An `app` object: its keys in the decoder's order.
pub fn write_app(buf: &mut Vec<u8>, app: &crate::app::App) {
    // Writing into a Vec cannot fail, and a Map of Values always serializes.
    let _ = serde_json::to_writer(&mut *buf, &app.fields);
}

/// An Engine.IO packet of a long-polling request or response.
pub fn write_app_record(
    buf: &mut Vec<u8>,
    r: &AppRecord,
    opts: PayloadOpts,
    names: &mut EndpointTexts,
) {
    let mut o = Obj::new(buf, "app");
    o.u64("packet", r.meta.packet).ts("ts", r.meta.ts, r.meta.precision);
    sent_on(&mut o, (r.stream, None), r.from, (r.src, r.dst), names)
        .str("transport", r.transport)
        .str("method", &r.method)
        .str("path", &r.path)
        .opt_str("sid", r.sid.as_deref());
    payload_keys(&mut o, r.text.as_bytes(), true, 0, opts);
    o.raw("app", |b| write_app(b, &r.app));
    problems(&mut o, &r.problems);
    o.end();
}

/// A control frame as a message of its own opcode (messages and follow views).
pub fn write_control_message(buf: &mut Vec<u8>, r: &FrameRecord<'_>, opts: PayloadOpts) {
    let mut o = Obj::new(buf, "message");
    o.u64("stream", r.stream);
    h2_stream(&mut o, r.h2_stream)
        .str("from", r.from.as_str())
        .u64("packet", r.meta.packet)
        .u64("first_packet", r.first_packet)
        .u64("last_packet", r.meta.packet)
        .ts("ts", r.meta.ts, r.meta.precision)
        .u64("opcode", r.opcode.into())
        .str("opcode_name", r.opcode_name)
        .u64("frames", 1)
        .bool("compressed", false)
        .u64("wire_len", r.payload_len)
        .u64("len", r.payload_len);
    if r.opcode == 8 {
        o.opt_u64("close_code", r.close_code.map(u64::from));
        o.opt_str("close_reason", r.close_reason.as_deref());
    }
    payload_keys(&mut o, &r.payload, false, r.payload_missing, opts);
    problems(&mut o, &r.problems);
    o.end();
}

pub fn write_packet(buf: &mut Vec<u8>, r: &PacketRecord) {
    Obj::new(buf, "packet")
        .u64("packet", r.meta.packet)
        .ts("ts", r.meta.ts, r.meta.precision)
        .opt_u64("stream", r.stream)
        .opt_str("src", r.src.map(|e| e.text()).as_ref().map(EndpointText::as_str))
        .opt_str("dst", r.dst.map(|e| e.text()).as_ref().map(EndpointText::as_str))
        .str("proto", r.proto)
        .str("info", &r.info)
        .end();
}

pub fn write_problem(buf: &mut Vec<u8>, r: &ProblemRecord) {
    let mut o = Obj::new(buf, "problem");
    o.u64("packet", r.meta.packet)
        .ts("ts", r.meta.ts, r.meta.precision)
        .opt_u64("stream", r.stream);
    h2_stream(&mut o, r.h2_stream)
        .opt_str("from", r.from.map(|f| f.as_str()))
        .str("code", r.code.as_str())
        .str("severity", r.code.severity().as_str())
        .str("detail", &r.detail)
        .end();
}

fn direction_stats(buf: &mut Vec<u8>, s: &DirectionStats) {
    {
        let mut o = Obj::nested(buf);
        o.u64("frames", s.frames)
            .raw("frames_by_opcode", |b| {
                let names = ["continuation", "text", "binary", "close", "ping", "pong", "reserved"];
                b.push(b'{');
                for (i, (name, n)) in names.iter().zip(s.frames_by_opcode.iter()).enumerate() {
                    if i > 0 {
                        b.push(b',');
                    }
                    write_str(b, name);
                    b.push(b':');
                    b.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes());
                }
                b.push(b'}');
            })
            .u64("messages", s.messages)
            .u64("wire_bytes", s.wire_bytes)
            .u64("app_bytes", s.app_bytes)
            .u64("compressed_messages", s.compressed_messages)
            .u64("pings", s.pings)
            .u64("pongs", s.pongs)
            .u64("stream_bytes", s.stream_bytes)
            .u64("gap_bytes", s.gap_bytes);
        o.close();
    }
}

pub fn write_connection(buf: &mut Vec<u8>, r: &ConnectionRecord) {
    let mut o = Obj::new(buf, "connection");
    o.u64("stream", r.stream);
    h2_stream(&mut o, r.h2_stream)
        .str("client", r.client.text().as_str())
        .str("server", r.server.text().as_str())
        .u64("first_packet", r.first_packet)
        .u64("last_packet", r.last_packet)
        .ts("start", r.start, r.precision)
        .ts("end", r.end, r.precision)
        .bool("websocket", r.websocket)
        .bool("handshake_seen", r.handshake_seen)
        .opt_str("path", r.path.as_deref())
        .opt_u64("status", r.status.map(u64::from))
        .opt_bool("accept_ok", r.accept_ok)
        .opt_str("protocol", r.protocol.as_deref())
        .opt_str("extensions", r.extensions.as_deref())
        .raw("client_to_server", |b| direction_stats(b, &r.client_stats))
        .raw("server_to_client", |b| direction_stats(b, &r.server_stats))
        .raw("rtt_ms", |b| {
            b.push(b'[');
            for (i, v) in r.rtts_ms.iter().enumerate() {
                if i > 0 {
                    b.push(b',');
                }
                write_f64(b, *v);
            }
            b.push(b']');
        })
        .raw("close", |b| match &r.close {
            None => b.extend_from_slice(b"null"),
            Some(c) => {
                Obj::nested(b)
                    .opt_u64("code", c.code.map(u64::from))
                    .opt_str("reason", c.reason.as_deref())
                    .str("initiator", c.initiator.as_str())
                    .bool("echoed", c.echoed)
                    .bool("clean", c.clean)
                    .close();
            }
        })
        .str("tcp_end", r.tcp_end)
        .opt_str("first_fin_from", r.first_fin_from.map(|s| s.as_str()))
        .opt_str("rst_from", r.rst_from.map(|s| s.as_str()))
        .u64("keepalives", r.keepalives)
        .u64("keepalive_acks", r.keepalive_acks)
        .u64("gaps", r.gaps);
    if let Some(t) = &r.tls {
        o.raw("tls", |b| tls_object(b, t));
    }
    if let Some(p) = r.app_protocol {
        o.str("app_protocol", p);
    }
    if let Some(n) = r.h2_websockets {
        o.u64("h2_websockets", n.into());
    }
    if !r.proxies.is_empty() {
        o.str_array("proxies", r.proxies.iter().map(String::as_str));
    }
    if let Some(sid) = &r.sid {
        o.str("sid", sid).raw("sid_streams", |b| {
            b.push(b'[');
            for (i, s) in r.sid_streams.iter().enumerate() {
                if i > 0 {
                    b.push(b',');
                }
                b.extend_from_slice(itoa::Buffer::new().format(*s).as_bytes());
            }
            b.push(b']');
        });
    }
    problems(&mut o, &r.problems);
    o.end();
}

pub fn write_end(buf: &mut Vec<u8>, t: &RunTotals) {
    let a = &t.accounting;
    let mut obj = Obj::new(buf, "end");
    obj.u64("packets", t.packets)
        .u64("bytes", t.bytes)
        .u64("tcp_packets", t.tcp_packets)
        .u64("connections", t.connections)
        .u64("websocket_connections", t.websocket_connections)
        .u64("frames", t.frames)
        .u64("messages", t.messages)
        .raw("problems", |b| {
            b.push(b'{');
            for (i, (code, n)) in t.problems.iter().enumerate() {
                if i > 0 {
                    b.push(b',');
                }
                write_str(b, code.as_str());
                b.push(b':');
                b.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes());
            }
            b.push(b'}');
        })
        .str_array("limits_hit", t.limits_hit())
        .raw("stream_bytes", |b| {
            Obj::nested(b)
                .u64("http", a.http_bytes)
                .u64("websocket", a.ws_bytes)
                .u64("skipped", a.skipped_bytes)
                .u64("other", a.other_bytes)
                .u64("gap", a.gap_bytes)
                .u64("tls", a.tls_bytes)
                .close();
        })
        .str_array("errors", t.errors.iter().map(String::as_str));
    // Live capture only: libpcap's counters.
    for (key, v) in [
        ("kernel_received", t.capture_received),
        ("kernel_dropped", t.capture_dropped),
        ("interface_dropped", t.capture_if_dropped),
    ] {
        if let Some(v) = v {
            obj.u64(key, v);
        }
    }
    obj.end();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::FrameRecord;

    fn frame(text: &'static [u8]) -> FrameRecord<'static> {
        FrameRecord::text_for_test(Cow::Borrowed(text))
    }

    fn message(text: &'static [u8]) -> MessageRecord<'static> {
        MessageRecord::text_for_test(Cow::Borrowed(text))
    }

    /// Lines of a frames view of `events`, written each as it completes (`gather` 0) or
    /// gathered into writes of `gather` bytes, handed over borrowed or owned.
    fn lines(events: &[Event<'static>], gather: usize, owned: bool) -> Vec<String> {
        let mut out = Vec::new();
        let mut sink =
            JsonlSink::new(&mut out, JsonSelect::frames_view(false), PayloadOpts::default(), false)
                .gathering(gather);
        for ev in events {
            if owned {
                sink.event_owned(ev.clone()).unwrap();
            } else {
                sink.event(ev).unwrap();
            }
        }
        sink.end(&RunTotals::default()).unwrap();
        drop(sink);
        String::from_utf8(out).unwrap().lines().map(str::to_owned).collect()
    }

    #[test]
    fn a_message_shows_the_payload_keys_of_its_frame_however_records_are_written() {
        let events = [
            Event::Frame(frame(br#"{"a":"q\"b"}"#)),
            Event::Message(message(br#"{"a":"q\"b"}"#)),
            // A message whose payload is not its last frame's shows its own.
            Event::Frame(frame(b"first")),
            Event::Message(message(b"other \\ text")),
        ];
        let want = lines(&events, 0, false);
        let text = |line: &str| {
            let after = line.split(",\"text\":").nth(1).unwrap_or_default();
            after.split(",\"").next().unwrap_or_default().to_owned()
        };
        assert_eq!(want.len(), 5, "{want:?}");
        assert_eq!(text(&want[0]), r#""{\"a\":\"q\\\"b\"}""#);
        assert_eq!(text(&want[1]), text(&want[0]));
        assert_eq!(text(&want[2]), r#""first""#);
        assert_eq!(text(&want[3]), r#""other \\ text""#);
        // One byte gathered writes out every record before the next: the message finds its
        // frame's keys no longer in the buffer.
        for gather in [1, 64 << 10] {
            for owned in [false, true] {
                assert_eq!(lines(&events, gather, owned), want, "gather {gather}, owned {owned}");
            }
        }
    }
}
