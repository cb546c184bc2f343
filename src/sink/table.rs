//! The frames view as a Wireshark-like table: one line per frame and per TCP lifecycle
//! event, with the handshake at its packets.
//!
//! Written by hand rather than with a table crate because it streams: each line is printed
//! as soon as its packet is processed, with fixed column widths, so output to a pipe is
//! line-stable and nothing is buffered for layout.

use super::escape::escape_bytes_limited;
use super::{RunTotals, Sink};
use crate::capture::Timestamp;
use crate::event::{Event, FrameRecord, HandshakeRecord, MessageRecord, Meta, TcpKind};
use crate::problem::{ProblemCode, Severity};
use crate::tcp::flow::EndpointTexts;
use crate::tcp::Endpoint;
use std::fmt::Write as _;
use std::io::{self, Write};

/// How `Time` is shown (tshark's `-t`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeFormat {
    /// Seconds since the first packet.
    #[default]
    Relative,
    /// Absolute time of day (UTC).
    Absolute,
    /// Absolute date and time (UTC).
    AbsoluteDate,
    /// Seconds since the previous displayed line.
    Delta,
}

/// Table options.
#[derive(Clone, Debug)]
pub struct TableOpts {
    pub time: TimeFormat,
    pub color: bool,
    /// Total line width; `None` for unlimited (pipes).
    pub width: Option<usize>,
    /// Characters of payload preview; `None` for the whole payload.
    pub preview: Option<usize>,
    /// Show binary payloads as hex (true) or base64.
    pub hex: bool,
    /// Show no payload at all.
    pub no_payload: bool,
    /// No packet numbers, times or ports, and no TCP segmentation events (`--normalize`).
    pub normalize: bool,
}

impl Default for TableOpts {
    fn default() -> Self {
        TableOpts {
            time: TimeFormat::Relative,
            color: false,
            width: None,
            preview: Some(60),
            hex: true,
            no_payload: false,
            normalize: false,
        }
    }
}

/// The `Time` column of text views (tshark's `-t`).
#[derive(Clone, Debug)]
pub struct TimeColumn {
    format: TimeFormat,
    first: Option<Timestamp>,
    prev: Option<Timestamp>,
}

impl TimeColumn {
    pub fn new(format: TimeFormat) -> Self {
        TimeColumn { format, first: None, prev: None }
    }

    /// The capture's first packet, which relative times count from.
    pub fn start(&mut self, first: Timestamp) {
        self.first = Some(first);
    }

    /// Characters the column takes.
    pub fn width(&self) -> usize {
        match self.format {
            TimeFormat::Relative | TimeFormat::Delta => 11,
            TimeFormat::Absolute => 15,
            TimeFormat::AbsoluteDate => 26,
        }
    }

    pub fn format(&mut self, ts: Timestamp) -> String {
        let mut s = String::new();
        self.push(ts, &mut s);
        s
    }

    /// Appends the column's text for `ts` (unpadded).
    pub fn push(&mut self, ts: Timestamp, out: &mut String) {
        let first = *self.first.get_or_insert(ts);
        match self.format {
            TimeFormat::Relative => push_secs_between(first, ts, out),
            TimeFormat::Delta => {
                let prev = self.prev.replace(ts).unwrap_or(ts);
                push_secs_between(prev, ts, out)
            }
            TimeFormat::Absolute => out.push_str(&clock(ts, false)),
            TimeFormat::AbsoluteDate => out.push_str(&clock(ts, true)),
        }
    }
}

pub const RED: &str = "\x1b[31m";
pub const YELLOW: &str = "\x1b[33m";
pub const DIM: &str = "\x1b[2m";
pub const BOLD: &str = "\x1b[1m";
pub const RESET: &str = "\x1b[0m";

/// A line not printed yet because the message completed by its frame may follow.
struct PendingFrame {
    line: Line,
    /// Length of the Info text before the payload preview.
    head_len: usize,
    stream: u64,
    from: crate::tcp::Side,
    packet: u64,
}

struct Line {
    meta: Meta,
    src: Option<Endpoint>,
    dst: Option<Endpoint>,
    proto: &'static str,
    info: String,
    problems: Vec<ProblemCode>,
}

pub struct TableSink<W: Write> {
    out: W,
    opts: TableOpts,
    clock: TimeColumn,
    header_done: bool,
    pending: Option<PendingFrame>,
    buf: String,
    /// A printed line's Info text, kept for the next line to write into.
    spare_info: String,
    /// Engine.IO session ids, numbered (`--normalize`).
    session_ids: super::normalize::SessionIds,
    /// Hex or base64 of a payload prefix, before it is cut to the preview length.
    scratch: String,
    /// The Time column of the line being printed, before it is padded.
    time: String,
    endpoints: EndpointTexts,
}

impl<W: Write> TableSink<W> {
    pub fn new(out: W, opts: TableOpts) -> Self {
        TableSink {
            out,
            clock: TimeColumn::new(opts.time),
            opts,
            header_done: false,
            pending: None,
            buf: String::new(),
            spare_info: String::new(),
            session_ids: super::normalize::SessionIds::default(),
            scratch: String::new(),
            time: String::new(),
            endpoints: EndpointTexts::default(),
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if self.header_done {
            return Ok(());
        }
        self.header_done = true;
        let mut h = if self.opts.normalize {
            format!("{:<16} {:<16} {:<9} {}", "Source", "Destination", "Protocol", "Info")
        } else {
            format!(
                "{:>6} {:>tw$} {:<22} {:<22} {:<9} {:>6} {}",
                "No.",
                "Time",
                "Source",
                "Destination",
                "Protocol",
                "Length",
                "Info",
                tw = self.clock.width()
            )
        };
        if let Some(w) = self.opts.width {
            truncate_chars(&mut h, w);
        }
        if self.opts.color {
            writeln!(self.out, "{BOLD}{h}{RESET}")
        } else {
            writeln!(self.out, "{h}")
        }
    }

    fn print(&mut self, mut line: Line) -> io::Result<()> {
        self.header()?;
        // Columns are padded by hand: every padded field is ASCII (numbers, times, endpoints,
        // protocol names), so bytes are characters, and `core::fmt` padding cost more than the
        // rest of the line.
        let mut text = std::mem::take(&mut self.buf);
        text.clear();
        let src = line.src.map(|e| self.endpoints.text(&e));
        let dst = line.dst.map(|e| self.endpoints.text(&e));
        let src = src.as_ref().map_or("", |t| t.as_str());
        let dst = dst.as_ref().map_or("", |t| t.as_str());
        if self.opts.normalize {
            push_left(&mut text, without_port(src), 16);
            text.push(' ');
            push_left(&mut text, without_port(dst), 16);
            text.push(' ');
            push_left(&mut text, line.proto, 9);
            text.push(' ');
        } else {
            push_right(&mut text, itoa::Buffer::new().format(line.meta.packet), 6);
            text.push(' ');
            self.time.clear();
            self.clock.push(line.meta.ts, &mut self.time);
            push_right(&mut text, &self.time, self.clock.width());
            text.push(' ');
            push_left(&mut text, src, 22);
            text.push(' ');
            push_left(&mut text, dst, 22);
            text.push(' ');
            push_left(&mut text, line.proto, 9);
            text.push(' ');
            push_right(&mut text, itoa::Buffer::new().format(line.meta.len), 6);
            text.push(' ');
        }
        text.push_str(&line.info);
        for p in &line.problems {
            text.push_str(" [");
            text.push_str(p.as_str());
            text.push(']');
        }
        if self.opts.normalize {
            self.session_ids.number_in(&mut text);
        }
        if let Some(w) = self.opts.width {
            truncate_chars(&mut text, w);
        }
        let worst = line.problems.iter().map(|p| p.severity()).max();
        let color = match worst {
            _ if !self.opts.color => "",
            Some(Severity::Error) => RED,
            Some(Severity::Warning) => YELLOW,
            _ if line.proto == "TCP" => DIM,
            _ => "",
        };
        let res = if color.is_empty() {
            text.push('\n');
            self.out.write_all(text.as_bytes())
        } else {
            writeln!(self.out, "{color}{text}{RESET}")
        };
        self.buf = text;
        line.info.clear();
        self.spare_info = line.info;
        res
    }

    fn flush_pending(&mut self) -> io::Result<()> {
        match self.pending.take() {
            Some(p) => self.print(p.line),
            None => Ok(()),
        }
    }

    fn frame_line(&mut self, r: &FrameRecord<'_>) -> (Line, usize) {
        let mut info = std::mem::take(&mut self.spare_info);
        info.push_str("WebSocket ");
        push_title(&mut info, r.opcode_name);
        let mut head_len = 0;
        if r.fin {
            info.push_str(" [FIN]");
        }
        if r.mask_key.is_some() {
            info.push_str(" [MASKED]");
        }
        if r.rsv & 4 != 0 {
            info.push_str(" [RSV1]");
        }
        if r.rsv & 3 != 0 {
            let _ = write!(info, " [RSV={}]", r.rsv);
        }
        if r.opcode == 8 {
            if let Some(code) = r.close_code {
                let _ = write!(info, " {code}");
                if let Some(name) = crate::ws::opcode::close_code_name(code) {
                    let _ = write!(info, " ({name})");
                }
            }
            if let Some(reason) = r.close_reason.as_deref() {
                let reason = reason.as_bytes();
                push_preview(&self.opts, reason, true, 0, " ", &mut info, &mut self.scratch);
            }
        } else {
            if r.payload_len > 0 {
                info.push_str(" len=");
                info.push_str(itoa::Buffer::new().format(r.payload_len));
            }
            head_len = info.len();
            let (payload, is_text, missing) = (&r.payload, r.payload_is_text, r.payload_missing);
            push_preview(&self.opts, payload, is_text, missing, " ", &mut info, &mut self.scratch);
        }
        let line = Line {
            meta: r.meta,
            src: Some(r.src),
            dst: Some(r.dst),
            proto: "WebSocket",
            info,
            problems: r.problems.clone(),
        };
        (line, head_len)
    }

    /// The completed message's decoded text replaces the frame's raw preview when the frame
    /// alone does not show it (compressed or fragmented messages).
    fn merge_message(&mut self, pending: &mut PendingFrame, m: &MessageRecord<'_>) {
        if let Some(app) = &m.app {
            // The decoded application packet says more than the raw payload preview.
            if !(m.compressed || m.frames > 1) && pending.head_len > 0 {
                pending.line.info.truncate(pending.head_len);
            }
            let mut esc = String::new();
            super::escape::escape_text(&app.summary, &mut esc);
            if !self.opts.no_payload {
                let _ = write!(pending.line.info, " {esc}");
            }
            pending.line.proto = app.column();
            for p in &m.problems {
                if !pending.line.problems.contains(p) {
                    pending.line.problems.push(*p);
                }
            }
            return;
        }
        if !(m.compressed || m.frames > 1) {
            for p in &m.problems {
                if !pending.line.problems.contains(p) {
                    pending.line.problems.push(*p);
                }
            }
            return;
        }
        let info = &mut pending.line.info;
        info.push_str(if m.compressed { " → inflated " } else { " → reassembled " });
        info.push_str(itoa::Buffer::new().format(m.len));
        info.push_str(" bytes");
        let (payload, is_text, missing) = (&m.payload, m.is_text, m.payload_missing);
        push_preview(&self.opts, payload, is_text, missing, " ", info, &mut self.scratch);
        for p in &m.problems {
            if !pending.line.problems.contains(p) {
                pending.line.problems.push(*p);
            }
        }
    }
}

/// A WebSocket over HTTP/2's handshake: the answer to its extended CONNECT.
fn h2_handshake_info(r: &HandshakeRecord, id: crate::event::H2StreamId) -> String {
    let mut s = match r.status {
        Some(status) if (200..300).contains(&status) => {
            format!("HTTP/2 {status} (WebSocket on stream {id}")
        }
        Some(status) => format!("HTTP/2 {status} (WebSocket on stream {id} refused"),
        None => {
            let path = r.path.as_deref().unwrap_or("");
            return format!("HTTP/2 CONNECT {path} on stream {id} got no response");
        }
    };
    push_negotiated(&mut s, r);
    // The first note names the protocol and stream, said above already.
    push_notes(&mut s, r.notes.get(1..).unwrap_or_default());
    s
}

/// `, protocol P, EXTENSIONS)`: what the answer selected, closing the parenthesis.
fn push_negotiated(s: &mut String, r: &HandshakeRecord) {
    if let Some(p) = &r.protocol {
        let _ = write!(s, ", protocol {p}");
    }
    if let Some(e) = &r.extensions {
        let _ = write!(s, ", {e}");
    }
    s.push(')');
}

/// Quirks of hand-written peers are what people debug; the table must show them without a
/// detour through --json.
fn push_notes(s: &mut String, notes: &[String]) {
    if !notes.is_empty() {
        let _ = write!(s, " note: {}", notes.join("; "));
    }
}

fn handshake_info(r: &HandshakeRecord) -> String {
    if let Some(id) = r.h2_stream {
        return h2_handshake_info(r, id);
    }
    match r.status {
        Some(101) => {
            let accept = match r.accept_ok {
                Some(true) => "accept ok",
                Some(false) => "accept MISMATCH",
                None => "no accept",
            };
            let mut s = format!("HTTP/1.1 101 {} ({accept}", r.reason.as_deref().unwrap_or(""));
            push_negotiated(&mut s, r);
            push_notes(&mut s, &r.notes);
            s
        }
        Some(status) => {
            format!("HTTP/1.1 {status} {} (upgrade rejected)", r.reason.as_deref().unwrap_or(""))
        }
        None => "upgrade request got no response".into(),
    }
}

/// A payload as text views show it: escaped text in quotes, or hex/base64, cut to the
/// preview length with `…` when anything is left out.
pub fn payload_preview(opts: &TableOpts, payload: &[u8], is_text: bool, missing: u64) -> String {
    let mut s = String::new();
    push_preview(opts, payload, is_text, missing, "", &mut s, &mut String::new());
    s
}

/// Appends `sep` and the [`payload_preview`] of a payload to `out`, or nothing when the
/// preview is empty; `scratch` is working space kept by the caller.
fn push_preview(
    opts: &TableOpts,
    payload: &[u8],
    is_text: bool,
    missing: u64,
    sep: &str,
    out: &mut String,
    scratch: &mut String,
) {
    if opts.no_payload || payload.is_empty() {
        return;
    }
    out.push_str(sep);
    let limit = opts.preview.unwrap_or(usize::MAX);
    scratch.clear();
    if is_text {
        // Only what can show is escaped: each character escapes to at least one, and
        // 4 × (limit + 1) bytes hold more than `limit` whole characters, so a character cut
        // at the end of the prefix is never shown, and a longer payload is always cut.
        let prefix = &payload[..payload.len().min(preview_bytes(limit))];
        out.push('"');
        let cut = escape_bytes_limited(prefix, limit, out);
        out.push('"');
        if cut || missing > 0 {
            out.push('…');
        }
    } else if opts.hex {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for &b in payload.iter().take(limit / 2 + 1) {
            scratch.push(char::from(DIGITS[usize::from(b >> 4)]));
            scratch.push(char::from(DIGITS[usize::from(b & 15)]));
        }
        let cut = push_limited(out, scratch, limit);
        if cut || scratch.len() < payload.len() * 2 || missing > 0 {
            out.push('…');
        }
    } else {
        use base64::Engine;
        // Base64 of a prefix of a multiple of 3 bytes is a prefix of the whole base64.
        let prefix_len = payload.len().min((limit / 4).saturating_add(1).saturating_mul(3));
        base64::engine::general_purpose::STANDARD.encode_string(&payload[..prefix_len], scratch);
        if push_limited(out, scratch, limit) || prefix_len < payload.len() || missing > 0 {
            out.push('…');
        }
    }
}

/// The bytes a text preview of `limit` characters escapes; hex and base64 previews read
/// fewer.
fn preview_bytes(limit: usize) -> usize {
    limit.saturating_add(1).saturating_mul(4)
}

/// `text` → `Text`.
fn push_title(out: &mut String, name: &str) {
    let mut c = name.chars();
    if let Some(f) = c.next() {
        out.extend(f.to_uppercase());
        out.push_str(c.as_str());
    }
}

/// `s` left-aligned in `width` columns (`s` is ASCII).
fn push_left(out: &mut String, s: &str, width: usize) {
    out.push_str(s);
    for _ in s.len()..width {
        out.push(' ');
    }
}

/// `s` right-aligned in `width` columns (`s` is ASCII).
fn push_right(out: &mut String, s: &str, width: usize) {
    for _ in s.len()..width {
        out.push(' ');
    }
    out.push_str(s);
}

impl<W: Write> Sink for TableSink<W> {
    fn payload_prefix(&self) -> Option<usize> {
        match (self.opts.no_payload, self.opts.preview) {
            (true, _) => Some(0),
            // What `push_preview` reads of a payload: text is the longest.
            (false, Some(limit)) => Some(preview_bytes(limit)),
            (false, None) => None,
        }
    }

    fn capture_start(&mut self, first: Meta) {
        self.clock.start(first.ts);
    }

    fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        if let Event::Message(m) = ev {
            if let Some(mut p) = self.pending.take() {
                if p.stream == m.stream && p.from == m.from && p.packet == m.meta.packet {
                    self.merge_message(&mut p, m);
                }
                return self.print(p.line);
            }
            return Ok(());
        }
        self.flush_pending()?;
        match ev {
            Event::Tcp(_) if self.opts.normalize => Ok(()),
            Event::Tcp(r) => {
                let mut info = std::mem::take(&mut self.spare_info);
                match r.kind {
                    TcpKind::Syn => info.push_str("[SYN]"),
                    TcpKind::SynAck => info.push_str("[SYN, ACK]"),
                    TcpKind::Fin if r.ack => info.push_str("[FIN, ACK]"),
                    TcpKind::Fin => info.push_str("[FIN]"),
                    TcpKind::Rst if r.ack => info.push_str("[RST, ACK]"),
                    TcpKind::Rst => info.push_str("[RST]"),
                    TcpKind::Keepalive => info.push_str("[TCP Keep-Alive]"),
                    TcpKind::KeepaliveAck => info.push_str("[TCP Keep-Alive ACK]"),
                    TcpKind::ZeroWindowProbe => info.push_str("[TCP ZeroWindowProbe]"),
                    TcpKind::Retransmission => {
                        let _ = write!(info, "[TCP Retransmission] {} bytes", r.bytes.unwrap_or(0));
                    }
                    TcpKind::OutOfOrder => info.push_str("[TCP Out-Of-Order]"),
                    TcpKind::Gap => {
                        let _ = write!(info, "[TCP gap: {} bytes missing]", r.bytes.unwrap_or(0));
                    }
                    TcpKind::OverlapConflict => {
                        let bytes = r.bytes.unwrap_or(0);
                        let _ = write!(info, "[TCP overlap with different bytes: {bytes}]");
                    }
                }
                self.print(Line {
                    meta: r.meta,
                    src: Some(r.src),
                    dst: Some(r.dst),
                    proto: "TCP",
                    info,
                    problems: Vec::new(),
                })
            }
            Event::Request(r) => {
                let mut info = format!("{} {} HTTP/1.1", r.method, r.path);
                if let Some(id) = r.h2_stream {
                    info = format!("{} {} HTTP/2 (WebSocket on stream {id}", r.method, r.path);
                    if let Some(e) = &r.extensions_offered {
                        let _ = write!(info, ", {e}");
                    }
                    info.push(')');
                } else if r.upgrade {
                    info.push_str(" (Upgrade: websocket");
                    if let Some(e) = &r.extensions_offered {
                        let _ = write!(info, ", {e}");
                    }
                    info.push(')');
                }
                let mut esc = String::new();
                super::escape::escape_text(&info, &mut esc);
                self.print(Line {
                    meta: r.meta,
                    src: Some(r.src),
                    dst: Some(r.dst),
                    proto: if r.h2_stream.is_some() { "HTTP2" } else { "HTTP" },
                    info: esc,
                    problems: Vec::new(),
                })
            }
            Event::Handshake(r) => {
                let mut esc = String::new();
                super::escape::escape_text(&handshake_info(r), &mut esc);
                self.print(Line {
                    meta: r.meta,
                    src: r.server,
                    dst: r.client,
                    proto: if r.h2_stream.is_some() { "HTTP2" } else { "HTTP" },
                    info: esc,
                    problems: r.problems.clone(),
                })
            }
            Event::Frame(r) => {
                let (line, head_len) = self.frame_line(r);
                let data = matches!(r.opcode, 0..=2);
                if data && r.fin {
                    self.pending = Some(PendingFrame {
                        line,
                        head_len,
                        stream: r.stream,
                        from: r.from,
                        packet: r.meta.packet,
                    });
                    Ok(())
                } else {
                    self.print(line)
                }
            }
            Event::Tls(r) => {
                let mut esc = String::new();
                super::escape::escape_text(&tls_info(&r.info), &mut esc);
                self.print(Line {
                    meta: r.meta,
                    src: Some(r.server),
                    dst: Some(r.client),
                    proto: tls_proto(r.info.version.as_deref()),
                    info: esc,
                    problems: Vec::new(),
                })
            }
            Event::Problem(r) => {
                let mut info = String::new();
                super::escape::escape_text(&r.detail, &mut info);
                self.print(Line {
                    meta: r.meta,
                    src: None,
                    dst: None,
                    proto: "-",
                    info,
                    problems: vec![r.code],
                })
            }
            Event::Packet(r) if !self.opts.normalize => {
                let mut info = String::new();
                super::escape::escape_text(&r.info, &mut info);
                self.print(Line {
                    meta: r.meta,
                    src: r.src,
                    dst: r.dst,
                    proto: r.proto,
                    info,
                    problems: Vec::new(),
                })
            }
            Event::App(r) => {
                let mut info = String::new();
                super::escape::escape_text(
                    &format!("{} polling: {}", r.method, r.app.summary),
                    &mut info,
                );
                self.print(Line {
                    meta: r.meta,
                    src: Some(r.src),
                    dst: Some(r.dst),
                    proto: r.app.column(),
                    info,
                    problems: r.problems.clone(),
                })
            }
            Event::Message(_) | Event::Connection(_) | Event::Packet(_) => Ok(()),
        }
    }

    fn end(&mut self, totals: &RunTotals) -> io::Result<()> {
        self.flush_pending()?;
        for e in &totals.errors {
            writeln!(self.out, "# {e}")?;
        }
        self.out.flush()
    }
}

/// Wireshark's protocol column for a TLS version.
pub fn tls_proto(version: Option<&str>) -> &'static str {
    match version {
        Some("TLS 1.3") => "TLSv1.3",
        Some("TLS 1.2") => "TLSv1.2",
        Some("TLS 1.1") => "TLSv1.1",
        Some("TLS 1.0") => "TLSv1",
        Some("SSL 3.0") => "SSLv3",
        _ => "TLS",
    }
}

/// `Client Hello (SNI=…, ALPN=…), Server Hello TLS_AES_128_GCM_SHA256, key logged`.
pub fn tls_info(t: &crate::tls::TlsInfo) -> String {
    let mut info = String::from("Client Hello");
    let mut ext = Vec::new();
    if let Some(sni) = &t.sni {
        ext.push(format!("SNI={sni}"));
    }
    if !t.alpn_offered.is_empty() {
        ext.push(format!("ALPN={}", t.alpn_offered.join(",")));
    }
    if !ext.is_empty() {
        let _ = write!(info, " ({})", ext.join(", "));
    }
    match &t.cipher_suite {
        Some(cs) => {
            let _ = write!(info, ", Server Hello {cs}");
        }
        None => info.push_str(", no Server Hello"),
    }
    info.push_str(if t.keys_found { ", key logged" } else { ", no key" });
    info
}

/// Appends at most `limit` characters of `s`; says whether it cut.
fn push_limited(out: &mut String, s: &str, limit: usize) -> bool {
    match s.char_indices().nth(limit) {
        Some((i, _)) => {
            out.push_str(&s[..i]);
            true
        }
        None => {
            out.push_str(s);
            false
        }
    }
}

/// `1.2.3.4:80` → `1.2.3.4`, `[::1]:80` → `::1`.
pub fn without_port(s: &str) -> &str {
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match s.rsplit_once(':') {
        Some((addr, _)) => addr,
        None => s,
    }
}

pub fn truncate_chars(s: &mut String, width: usize) {
    if let Some((i, _)) = s.char_indices().nth(width) {
        s.truncate(i);
    }
}

pub fn secs_between(a: Timestamp, b: Timestamp) -> String {
    let mut s = String::new();
    push_secs_between(a, b, &mut s);
    s
}

/// `b - a` in seconds with six decimals.
fn push_secs_between(a: Timestamp, b: Timestamp, out: &mut String) {
    let total = (b.secs as i128 * 1_000_000_000 + b.nanos as i128)
        - (a.secs as i128 * 1_000_000_000 + a.nanos as i128);
    if total < 0 {
        out.push('-');
    }
    let t = total.unsigned_abs();
    out.push_str(itoa::Buffer::new().format(t / 1_000_000_000));
    out.push('.');
    let mut digits = itoa::Buffer::new();
    let micros = digits.format((t % 1_000_000_000) / 1000);
    for _ in micros.len()..6 {
        out.push('0');
    }
    out.push_str(micros);
}

/// UTC wall-clock time, without a date crate: days since the epoch to a civil date
/// (Howard Hinnant's algorithm).
pub fn clock(ts: Timestamp, with_date: bool) -> String {
    let days = ts.secs.div_euclid(86_400);
    let secs = ts.secs.rem_euclid(86_400);
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let time = format!("{h:02}:{m:02}:{s:02}.{:06}", ts.nanos / 1000);
    if !with_date {
        return time;
    }
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!("{y:04}-{mo:02}-{d:02} {time}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::escape::escape_bytes;

    #[test]
    fn previews_escape_only_what_shows_and_match_the_whole_payload_cut() {
        let text = "héllo \u{1b}[31m 😀 wörld \u{202e} ✓ ".repeat(40);
        let bytes: Vec<u8> = (0..=255u8).cycle().take(900).collect();
        for limit in [0, 1, 3, 7, 8, 40, 100, 1000, 5000] {
            let opts = TableOpts { preview: Some(limit), ..TableOpts::default() };
            // Reference: escape or encode everything, then cut.
            let mut esc = String::new();
            escape_bytes(text.as_bytes(), &mut esc);
            let mut want = String::from("\"");
            let cut = push_limited(&mut want, &esc, limit);
            want.push('"');
            if cut {
                want.push('…');
            }
            assert_eq!(payload_preview(&opts, text.as_bytes(), true, 0), want, "text {limit}");
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let mut want = String::new();
            if push_limited(&mut want, &b64, limit) {
                want.push('…');
            }
            let opts = TableOpts { hex: false, ..opts };
            assert_eq!(payload_preview(&opts, &bytes, false, 0), want, "base64 {limit}");
        }
    }

    #[test]
    fn handshake_line_shows_the_notes() {
        let mut r = HandshakeRecord {
            status: Some(101),
            reason: Some("Switching Protocols".into()),
            accept_ok: Some(true),
            ..HandshakeRecord::default()
        };
        assert_eq!(handshake_info(&r), "HTTP/1.1 101 Switching Protocols (accept ok)");
        r.notes = vec!["a".into(), "b c".into()];
        assert_eq!(handshake_info(&r), "HTTP/1.1 101 Switching Protocols (accept ok) note: a; b c");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(clock(Timestamp::new(0, 0), true), "1970-01-01 00:00:00.000000");
        assert_eq!(clock(Timestamp::new(1_700_000_000, 5000), true), "2023-11-14 22:13:20.000005");
    }

    #[test]
    fn relative_seconds() {
        assert_eq!(
            secs_between(Timestamp::new(10, 500_000_000), Timestamp::new(12, 0)),
            "1.500000"
        );
    }
}
