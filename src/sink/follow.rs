//! The follow view: one connection as a transcript, like Wireshark's Follow WebSocket
//! Stream — the handshake, every message whole (text as text, binary as a hex dump, JSON
//! pretty-printed with `--pretty`, also after a Socket.IO-style packet prefix), control
//! frames, the decoded application packet, TCP lifecycle and a closing summary.
//! The stream is selected by the filter in front of this sink.

use super::conns::{close_summary, human_bytes, rtt_summary, tcp_end_summary};
use super::escape::{escape_bytes, escape_text};
use super::messages::{arrow, close_text, control_is_text, ratio};
use super::table::{payload_preview, without_port, TableOpts, TimeColumn};
use super::{RunTotals, Sink};
use crate::event::{Event, Meta, TcpKind};
use std::fmt::Write as _;
use std::io::{self, Write};

pub struct FollowSink<W: Write> {
    out: W,
    opts: TableOpts,
    pretty: bool,
    clock: TimeColumn,
    /// Whether anything of the stream was seen (the run fails when not).
    pub seen: bool,
    /// Rendered lines not written yet.
    held: Vec<u8>,
    /// Engine.IO session ids, numbered (`--normalize`).
    session_ids: super::normalize::SessionIds,
}

/// Bytes of lines held for the header at most.
const HOLD_LIMIT: usize = 64 << 10;

/// Client and server of a record, when it names them.
fn ends(ev: &Event<'_>) -> Option<(String, String)> {
    let pick =
        |from: crate::tcp::Side, src: crate::tcp::Endpoint, dst: crate::tcp::Endpoint| match from {
            crate::tcp::Side::Client => (src.to_string(), dst.to_string()),
            crate::tcp::Side::Server => (dst.to_string(), src.to_string()),
        };
    match ev {
        Event::Tcp(r) => Some(pick(r.from, r.src, r.dst)),
        Event::Handshake(h) => Some((h.client?.to_string(), h.server?.to_string())),
        Event::Frame(f) => Some(pick(f.from, f.src, f.dst)),
        Event::Message(m) => Some(pick(m.from, m.src, m.dst)),
        Event::Connection(c) => Some((c.client.to_string(), c.server.to_string())),
        Event::Tls(t) => Some((t.client.to_string(), t.server.to_string())),
        Event::App(a) => Some(pick(a.from, a.src, a.dst)),
        _ => None,
    }
}

impl<W: Write> FollowSink<W> {
    pub fn new(out: W, opts: TableOpts, pretty: bool) -> Self {
        FollowSink {
            out,
            clock: TimeColumn::new(opts.time),
            opts,
            pretty,
            seen: false,
            held: Vec::new(),
            session_ids: super::normalize::SessionIds::default(),
        }
    }

    fn stamp(&mut self, meta: Meta) -> String {
        if self.opts.normalize {
            String::new()
        } else {
            format!("[{}] ", self.clock.format(meta.ts))
        }
    }

    /// Payload lines, indented; text keeps its line breaks but nothing else that moves the
    /// cursor.
    fn body(&mut self, payload: &[u8], is_text: bool, missing: u64) -> io::Result<()> {
        if self.opts.no_payload || payload.is_empty() {
            return Ok(());
        }
        if is_text {
            let pretty = if self.pretty {
                pretty_json(payload).or_else(|| pretty_after_prefix(payload))
            } else {
                None
            };
            let text = match &pretty {
                Some(p) => p.as_bytes(),
                None => payload,
            };
            for line in text.split(|&b| b == b'\n') {
                let mut esc = String::new();
                escape_bytes(line, &mut esc);
                writeln!(self.held, "    {esc}")?;
            }
        } else if self.opts.hex {
            hexdump(&mut self.held, payload)?;
        } else {
            let b64 = payload_preview(
                &TableOpts { preview: None, ..self.opts.clone() },
                payload,
                false,
                0,
            );
            writeln!(self.held, "    {b64}")?;
        }
        if missing > 0 {
            writeln!(self.held, "    … {missing} more bytes not kept (--max-message)")?;
        }
        Ok(())
    }
}

/// `h2:3 `: which WebSocket over HTTP/2 a line is of (one connection may carry several).
fn h2_tag(id: Option<crate::event::H2StreamId>) -> String {
    id.map_or(String::new(), |id| format!("h2:{id} "))
}

/// Pretty-printed JSON when the text is a JSON object or array.
pub fn pretty_json(payload: &[u8]) -> Option<String> {
    let first = payload.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' && *first != b'[' {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    serde_json::to_string_pretty(&v).ok()
}

/// JSON after a short packet prefix, as Socket.IO writes it (`420["greet",{…}]`,
/// `42/admin,["x"]`): the prefix on its own line, then the JSON pretty-printed.
pub fn pretty_after_prefix(payload: &[u8]) -> Option<String> {
    const MAX_PREFIX: usize = 32;
    let at = payload.iter().take(MAX_PREFIX + 1).position(|&b| b == b'[' || b == b'{')?;
    let prefix = std::str::from_utf8(&payload[..at]).ok()?;
    if at == 0 || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    Some(format!("{prefix}\n{}", pretty_json(&payload[at..])?))
}

/// `xxd`-style dump: offset, 16 bytes in hex, printable ASCII.
pub fn hexdump(out: &mut dyn Write, bytes: &[u8]) -> io::Result<()> {
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let mut line = format!("    {:08x}  ", i * 16);
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => {
                    let _ = write!(line, "{b:02x} ");
                }
                None => line.push_str("   "),
            }
            if j == 7 {
                line.push(' ');
            }
        }
        line.push_str(" |");
        line.extend(chunk.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' }));
        line.push('|');
        writeln!(out, "{line}")?;
    }
    Ok(())
}

impl<W: Write> Sink for FollowSink<W> {
    fn capture_start(&mut self, first: Meta) {
        self.clock.start(first.ts);
    }

    fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        let before = self.held.len();
        self.render(ev)?;
        if self.opts.normalize {
            // The record's lines are escaped text: UTF-8.
            let lines = std::str::from_utf8(self.held.get(before..).unwrap_or_default());
            let numbered = lines.ok().and_then(|lines| match self.session_ids.number(lines) {
                std::borrow::Cow::Owned(n) => Some(n),
                std::borrow::Cow::Borrowed(_) => None,
            });
            if let Some(n) = numbered {
                self.held.truncate(before);
                self.held.extend_from_slice(n.as_bytes());
            }
        }
        // Lines before the first record that names the endpoints wait for the header.
        if self.seen || self.held.len() > HOLD_LIMIT {
            self.out.write_all(&self.held)?;
            self.held.clear();
        }
        Ok(())
    }

    fn end(&mut self, totals: &RunTotals) -> io::Result<()> {
        self.out.write_all(&self.held)?;
        self.held.clear();
        for e in &totals.errors {
            writeln!(self.out, "# {e}")?;
        }
        self.out.flush()
    }
}

impl<W: Write> FollowSink<W> {
    fn render(&mut self, ev: &Event<'_>) -> io::Result<()> {
        if !self.seen {
            if let (Some(stream), Some((client, server))) = (ev.stream(), ends(ev)) {
                self.seen = true;
                let (client, server) = if self.opts.normalize {
                    (without_port(&client).to_string(), without_port(&server).to_string())
                } else {
                    (client, server)
                };
                writeln!(self.out, "=== stream {stream}: client {client} ⇄ server {server} ===")?;
            }
        }
        match ev {
            Event::Handshake(h) => {
                let t = self.stamp(h.meta);
                // The request's own time is not in the record; its line is left unstamped.
                let pad = " ".repeat(t.chars().count());
                let mut req = String::new();
                let version = match h.h2_stream {
                    Some(id) => format!("HTTP/2 stream {id}"),
                    None => "HTTP/1.1".into(),
                };
                escape_text(
                    &format!(
                        "{} {} {version}  Host: {}",
                        h.method.as_deref().unwrap_or("?"),
                        h.path.as_deref().unwrap_or("?"),
                        match h.host.as_deref() {
                            Some(host) if self.opts.normalize => without_port(host),
                            Some(host) => host,
                            None => "-",
                        }
                    ),
                    &mut req,
                );
                writeln!(self.held, "{pad}→ {req}")?;
                let mut offers = String::new();
                if !h.protocols_offered.is_empty() {
                    let _ = write!(offers, " protocols: {}", h.protocols_offered.join(", "));
                }
                if let Some(e) = &h.extensions_offered {
                    let _ = write!(offers, " extensions: {e}");
                }
                if !offers.is_empty() {
                    let mut esc = String::new();
                    escape_text(offers.trim_start(), &mut esc);
                    writeln!(self.held, "    offers {esc}")?;
                }
                let mut resp = String::new();
                match h.status {
                    Some(status) => {
                        let accept = match h.accept_ok {
                            Some(true) => "accept ok",
                            Some(false) => "accept MISMATCH",
                            // HTTP/2 has no accept key.
                            None if h.h2_stream.is_some() => "WebSocket over HTTP/2",
                            None => "no accept",
                        };
                        let _ = write!(
                            resp,
                            "{status} {} ({accept}",
                            h.reason.as_deref().unwrap_or("")
                        );
                        if let Some(p) = &h.protocol {
                            let _ = write!(resp, ", protocol {p}");
                        }
                        if let Some(e) = &h.extensions {
                            let _ = write!(resp, ", {e}");
                        }
                        resp.push(')');
                    }
                    None => resp.push_str("(no response)"),
                }
                let mut esc = String::new();
                escape_text(&resp, &mut esc);
                writeln!(self.held, "{t}← {esc}")?;
                for n in &h.notes {
                    let mut esc = String::new();
                    escape_text(n, &mut esc);
                    writeln!(self.held, "    note: {esc}")?;
                }
                for p in &h.problems {
                    writeln!(self.held, "    ! {p}: {}", p.meaning())?;
                }
                Ok(())
            }
            Event::Message(m) => {
                let t = self.stamp(m.meta);
                let mut head = format!(
                    "{t}{} {}{} {}",
                    arrow(m.from),
                    h2_tag(m.h2_stream),
                    m.opcode_name,
                    human_bytes(m.len)
                );
                if m.compressed {
                    let _ = write!(
                        head,
                        " (deflated {}, {})",
                        human_bytes(m.wire_len),
                        ratio(true, m.wire_len, m.len)
                    );
                }
                if m.frames > 1 {
                    let _ = write!(head, " in {} frames", m.frames);
                }
                if let Some(app) = &m.app {
                    let mut esc = String::new();
                    escape_text(&app.summary, &mut esc);
                    let _ = write!(head, " · {esc}");
                }
                for p in &m.problems {
                    let _ = write!(head, " [{p}]");
                }
                writeln!(self.held, "{head}")?;
                self.body(&m.payload, m.is_text, m.payload_missing)
            }
            Event::App(a) => {
                let t = self.stamp(a.meta);
                let mut line = String::new();
                escape_text(&format!("{} (polling) · {}", a.method, a.app.summary), &mut line);
                for p in &a.problems {
                    let _ = write!(line, " [{p}]");
                }
                writeln!(self.held, "{t}{} {line}", arrow(a.from))
            }
            Event::Frame(f) if f.opcode >= 8 => {
                let t = self.stamp(f.meta);
                let mut head =
                    format!("{t}{} {}{}", arrow(f.from), h2_tag(f.h2_stream), f.opcode_name);
                if f.opcode == 8 {
                    let _ = write!(head, " {}", close_text(&self.opts, f));
                } else if !f.payload.is_empty() {
                    let p = payload_preview(
                        &self.opts,
                        &f.payload,
                        control_is_text(&f.payload),
                        f.payload_missing,
                    );
                    let _ = write!(head, " {p}");
                }
                for p in &f.problems {
                    let _ = write!(head, " [{p}]");
                }
                writeln!(self.held, "{head}")
            }
            Event::Tcp(r) if !self.opts.normalize => {
                let what = match r.kind {
                    TcpKind::Syn => "[SYN]".to_string(),
                    TcpKind::Fin if r.ack => "[FIN, ACK]".into(),
                    TcpKind::Fin => "[FIN]".into(),
                    TcpKind::Rst if r.ack => "[RST, ACK]".into(),
                    TcpKind::Rst => "[RST]".into(),
                    TcpKind::Gap => format!("[TCP gap: {} bytes missing]", r.bytes.unwrap_or(0)),
                    TcpKind::Keepalive => "[TCP Keep-Alive]".into(),
                    _ => return Ok(()),
                };
                let t = self.stamp(r.meta);
                writeln!(self.held, "{t}{} {what}", arrow(r.from))
            }
            Event::Tls(r) => {
                let t = self.stamp(r.meta);
                let mut info = String::new();
                escape_text(&super::table::tls_info(&r.info), &mut info);
                let version = r.info.version.as_deref().unwrap_or("TLS");
                writeln!(self.held, "{t}⇄ {version}: {info}")
            }
            Event::Problem(p) => {
                let t = self.stamp(p.meta);
                let mut detail = String::new();
                escape_text(&p.detail, &mut detail);
                writeln!(self.held, "{t}! {}: {detail}", p.code)
            }
            Event::Connection(c) => {
                let rtt = match rtt_summary(&c.rtts_ms) {
                    Some((lo, mid, hi)) if !self.opts.normalize => {
                        format!(" · RTT {lo:.2}/{mid:.2}/{hi:.2} ms")
                    }
                    _ => String::new(),
                };
                let problems = if c.problems.is_empty() {
                    "none".to_string()
                } else {
                    c.problems.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
                };
                // A WebSocket over HTTP/2 ends with its HTTP/2 stream.
                let (of, end) = match c.h2_stream {
                    Some(id) => (format!(" of HTTP/2 stream {id}"), "stream"),
                    None => (String::new(), "TCP"),
                };
                writeln!(
                    self.held,
                    "=== end{of}: close {} · {end} {} · → {} msgs {} · ← {} msgs {}{rtt} · problems: {problems} ===",
                    close_summary(c.close.as_ref()),
                    tcp_end_summary(c),
                    c.client_stats.messages,
                    human_bytes(c.client_stats.app_bytes),
                    c.server_stats.messages,
                    human_bytes(c.server_stats.app_bytes),
                )
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hexdump_has_offsets_and_ascii() {
        let mut out = Vec::new();
        hexdump(&mut out, b"hello, world! \x00\x01\xffmore").unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "    00000000  68 65 6c 6c 6f 2c 20 77  6f 72 6c 64 21 20 00 01  |hello, world! ..|\n    00000010  ff 6d 6f 72 65                                    |.more|\n"
        );
    }

    #[test]
    fn only_objects_and_arrays_are_pretty_printed() {
        assert_eq!(pretty_json(br#"{"a":[1,2]}"#).unwrap(), "{\n  \"a\": [\n    1,\n    2\n  ]\n}");
        assert!(pretty_json(b"42").is_none());
        assert!(pretty_json(b"{broken").is_none());
    }

    #[test]
    fn socket_io_packets_are_pretty_printed_after_their_prefix() {
        assert_eq!(
            pretty_after_prefix(br#"420["greet",{"name":"a"}]"#).unwrap(),
            "420\n[\n  \"greet\",\n  {\n    \"name\": \"a\"\n  }\n]"
        );
        assert!(pretty_after_prefix(br#"{"a":1}"#).is_none());
        assert!(pretty_after_prefix(br#"hello [1]"#).is_none());
        assert!(pretty_after_prefix(br#"42[broken"#).is_none());
    }
}
