//! The messages view as text: one line per complete message (reassembled and decompressed)
//! and per control frame, with direction, size, compression ratio and the payload.

use super::table::{payload_preview, without_port, TableOpts, TimeColumn, RED, RESET};
use super::{RunTotals, Sink};
use crate::event::{Event, FrameRecord, MessageRecord, Meta};
use crate::problem::{ProblemCode, Severity};
use crate::tcp::Side;
use std::fmt::{self, Write as _};
use std::io::{self, Write};

/// The Stream column: the TCP stream, or `0:3` for the WebSocket on HTTP/2 stream 3 of TCP
/// stream 0 (formatted in place, as the plain number is: one is written per message).
struct StreamCell(u64, Option<crate::event::H2StreamId>);

impl fmt::Display for StreamCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            None => fmt::Display::fmt(&self.0, f),
            Some(id) => f.pad(&format!("{}:{id}", self.0)),
        }
    }
}

pub struct MessagesTable<W: Write> {
    out: W,
    opts: TableOpts,
    clock: TimeColumn,
    header_done: bool,
    /// Engine.IO session ids, numbered (`--normalize`).
    session_ids: super::normalize::SessionIds,
}

/// `→` for what the client sent, `←` for what the server sent.
pub fn arrow(from: Side) -> &'static str {
    match from {
        Side::Client => "→",
        Side::Server => "←",
    }
}

/// Inflated size over compressed size, e.g. `13.2x`; `-` for uncompressed messages.
pub fn ratio(compressed: bool, wire_len: u64, len: u64) -> String {
    if !compressed || wire_len == 0 {
        return "-".into();
    }
    format!("{:.1}x", len as f64 / wire_len as f64)
}

/// The `Payload` text of a close frame: code, name and reason.
pub fn close_text(opts: &TableOpts, f: &FrameRecord<'_>) -> String {
    let mut s = String::new();
    match f.close_code {
        Some(code) => {
            let _ = write!(s, "{code}");
            if let Some(name) = crate::ws::opcode::close_code_name(code) {
                let _ = write!(s, " ({name})");
            }
        }
        None => s.push_str("(no code)"),
    }
    if let Some(reason) = f.close_reason.as_deref().filter(|r| !r.is_empty()) {
        let _ = write!(s, " {}", payload_preview(opts, reason.as_bytes(), true, 0));
    }
    s
}

/// Control payloads (ping/pong) read as text when they are printable UTF-8.
pub fn control_is_text(payload: &[u8]) -> bool {
    std::str::from_utf8(payload).is_ok_and(|t| t.chars().all(|c| !c.is_control()))
}

impl<W: Write> MessagesTable<W> {
    pub fn new(out: W, opts: TableOpts) -> Self {
        MessagesTable {
            out,
            clock: TimeColumn::new(opts.time),
            opts,
            header_done: false,
            session_ids: super::normalize::SessionIds::default(),
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if std::mem::replace(&mut self.header_done, true) {
            return Ok(());
        }
        let h = if self.opts.normalize {
            format!(
                "{:<16} {:<3} {:<12} {:>8} {:>7} Payload",
                "Client", "Dir", "Type", "Size", "Ratio"
            )
        } else {
            format!(
                "{:>6} {:>tw$} {:>6} {:<22} {:<3} {:<12} {:>8} {:>7} Payload",
                "No.",
                "Time",
                "Stream",
                "Client",
                "Dir",
                "Type",
                "Size",
                "Ratio",
                tw = self.clock.width()
            )
        };
        writeln!(self.out, "{h}")
    }

    #[allow(clippy::too_many_arguments)]
    fn line(
        &mut self,
        meta: Meta,
        (stream, h2): (u64, Option<crate::event::H2StreamId>),
        client: String,
        from: Side,
        kind: String,
        size: u64,
        ratio: String,
        payload: String,
        problems: &[ProblemCode],
    ) -> io::Result<()> {
        self.header()?;
        let mut text = if self.opts.normalize {
            format!(
                "{:<16} {:<3} {:<12} {:>8} {:>7} {payload}",
                without_port(&client),
                arrow(from),
                kind,
                size,
                ratio
            )
        } else {
            let time = self.clock.format(meta.ts);
            let stream = StreamCell(stream, h2);
            format!(
                "{:>6} {:>tw$} {:>6} {:<22} {:<3} {:<12} {:>8} {:>7} {payload}",
                meta.packet,
                time,
                stream,
                client,
                arrow(from),
                kind,
                size,
                ratio,
                tw = self.clock.width()
            )
        };
        for p in problems {
            let _ = write!(text, " [{p}]");
        }
        if self.opts.normalize {
            self.session_ids.number_in(&mut text);
        }
        if let Some(w) = self.opts.width {
            super::table::truncate_chars(&mut text, w);
        }
        let bad = problems.iter().any(|p| p.severity() == Severity::Error);
        if self.opts.color && bad {
            writeln!(self.out, "{RED}{text}{RESET}")
        } else {
            writeln!(self.out, "{text}")
        }
    }

    fn message(&mut self, m: &MessageRecord<'_>) -> io::Result<()> {
        let mut kind = m.opcode_name.to_string();
        if m.frames > 1 {
            let _ = write!(kind, " ({}fr)", m.frames);
        }
        let payload = match &m.app {
            Some(app) if !self.opts.no_payload => {
                let mut esc = String::new();
                super::escape::escape_text(&app.summary, &mut esc);
                esc
            }
            _ => payload_preview(&self.opts, &m.payload, m.is_text, m.payload_missing),
        };
        let client = if m.from == Side::Client { m.src } else { m.dst };
        self.line(
            m.meta,
            (m.stream, m.h2_stream),
            client.to_string(),
            m.from,
            kind,
            m.len,
            ratio(m.compressed, m.wire_len, m.len),
            payload,
            &m.problems,
        )
    }

    fn control(&mut self, f: &FrameRecord<'_>) -> io::Result<()> {
        let payload = if f.opcode == 8 {
            close_text(&self.opts, f)
        } else {
            payload_preview(&self.opts, &f.payload, control_is_text(&f.payload), f.payload_missing)
        };
        let client = if f.from == Side::Client { f.src } else { f.dst };
        self.line(
            f.meta,
            (f.stream, f.h2_stream),
            client.to_string(),
            f.from,
            f.opcode_name.to_string(),
            f.payload_len,
            "-".into(),
            payload,
            &f.problems,
        )
    }
}

impl<W: Write> Sink for MessagesTable<W> {
    fn capture_start(&mut self, first: Meta) {
        self.clock.start(first.ts);
    }

    fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        match ev {
            Event::Message(m) => self.message(m),
            Event::Frame(f) if f.opcode >= 8 => self.control(f),
            Event::App(a) => {
                let mut payload = String::new();
                super::escape::escape_text(&a.app.summary, &mut payload);
                let client = if a.from == Side::Client { a.src } else { a.dst };
                let kind = format!("poll {}", a.method);
                let size = a.text.len() as u64;
                self.line(
                    a.meta,
                    (a.stream, None),
                    client.to_string(),
                    a.from,
                    kind,
                    size,
                    "-".into(),
                    payload,
                    &a.problems,
                )
            }
            _ => Ok(()),
        }
    }

    fn end(&mut self, totals: &RunTotals) -> io::Result<()> {
        for e in &totals.errors {
            writeln!(self.out, "# {e}")?;
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_inflated_over_compressed() {
        assert_eq!(ratio(true, 5799, 76390), "13.2x");
        assert_eq!(ratio(false, 5, 5), "-");
        assert_eq!(ratio(true, 0, 0), "-");
    }

    #[test]
    fn control_text_must_be_printable() {
        assert!(control_is_text(b"are you there"));
        assert!(!control_is_text(b"\x1b[2J"));
        assert!(!control_is_text(&[0xff, 0]));
    }
}
