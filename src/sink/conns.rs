//! The conns view as text: one row per connection, printed when the connection ends (or at
//! the end of the capture), so the view streams and holds nothing per row.

use super::escape::escape_text;
use super::table::{without_port, TableOpts, RED, RESET, YELLOW};
use super::{RunTotals, Sink};
use crate::event::{CloseInfo, ConnectionRecord, DirectionStats, Event};
use crate::problem::Severity;
use crate::tcp::Side;
use std::fmt::Write as _;
use std::io::{self, Write};

pub struct ConnsTable<W: Write> {
    out: W,
    opts: TableOpts,
    header_done: bool,
    /// Engine.IO session ids, numbered (`--normalize`).
    session_ids: super::normalize::SessionIds,
}

/// `1.2kB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", UNITS[unit])
    }
}

/// `frames/messages/bytes` of one direction.
fn direction(s: &DirectionStats) -> String {
    format!("{}/{}/{}", s.frames, s.messages, human_bytes(s.app_bytes))
}

/// Minimum, median and maximum round trip in milliseconds.
pub fn rtt_summary(rtts: &[f64]) -> Option<(f64, f64, f64)> {
    if rtts.is_empty() {
        return None;
    }
    let mut v = rtts.to_vec();
    v.sort_by(f64::total_cmp);
    let median =
        if v.len() % 2 == 1 { v[v.len() / 2] } else { (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0 };
    Some((v[0], median, v[v.len() - 1]))
}

/// `1000 client→ echoed`-style close summary.
pub fn close_summary(c: Option<&CloseInfo>) -> String {
    let Some(c) = c else { return "none".into() };
    let mut s = match c.code {
        Some(code) => code.to_string(),
        None => "nocode".into(),
    };
    let _ = write!(s, " by {}", c.initiator.as_str());
    s.push_str(if c.clean {
        " clean"
    } else if c.echoed {
        " echoed"
    } else {
        " unechoed"
    });
    s
}

/// `FIN client` / `RST server` / `open`.
pub fn tcp_end_summary(r: &ConnectionRecord) -> String {
    let side = |s: Option<Side>| s.map(|s| s.as_str()).unwrap_or("?");
    match r.tcp_end {
        "rst" => format!("RST {}", side(r.rst_from)),
        "fin" => format!("FIN {}", side(r.first_fin_from)),
        other => other.to_string(),
    }
}

/// Probes alone when each was answered; `probes/acks` when some were not, which is what
/// keepalives are there to find out.
fn keepalive_cell(probes: u64, acks: u64) -> String {
    if acks >= probes {
        probes.to_string()
    } else {
        format!("{probes}/{acks}")
    }
}

fn compression_ratio(r: &ConnectionRecord) -> String {
    let wire = r.client_stats.compressed_wire_bytes + r.server_stats.compressed_wire_bytes;
    let app = r.client_stats.compressed_app_bytes + r.server_stats.compressed_app_bytes;
    super::messages::ratio(wire > 0, wire, app)
}

/// The path column: the upgrade path, `wss://SNI/path` on TLS, `TLS 1.3 SNI (no key)` on
/// TLS that was not looked into.
fn path_cell(r: &ConnectionRecord) -> String {
    let path = r.path.as_deref().unwrap_or("-");
    let Some(t) = &r.tls else { return path.to_string() };
    let sni = t.sni.as_deref().unwrap_or("-");
    if r.websocket {
        let path = r.path.as_deref().unwrap_or("");
        return format!("wss://{sni}{path}");
    }
    let version = t.version.as_deref().unwrap_or("TLS");
    let why = if !t.keys_found {
        " (no key)"
    } else if t.decrypted {
        ""
    } else {
        " (not decrypted)"
    };
    format!("{version} {sni}{why}")
}

impl<W: Write> ConnsTable<W> {
    pub fn new(out: W, opts: TableOpts) -> Self {
        ConnsTable {
            out,
            opts,
            header_done: false,
            session_ids: super::normalize::SessionIds::default(),
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if std::mem::replace(&mut self.header_done, true) {
            return Ok(());
        }
        writeln!(
            self.out,
            "{:>6} {:<22} {:<22} {:>9} {:<6} {:<18} {:<18} {:>6} {:>5} {:<17} {:<20} {:<10} {:>3} {:>4} {:<24} {:<12} Problems",
            "Stream",
            "Client",
            "Server",
            "Duration",
            "Accept",
            "C→S fr/msg/bytes",
            "S→C fr/msg/bytes",
            "Ratio",
            "Pings",
            "RTT ms min/med/max",
            "Close",
            "TCP end",
            "KA",
            "Gaps",
            "Path",
            "Protocol"
        )
    }

    fn row(&mut self, r: &ConnectionRecord) -> io::Result<()> {
        // (the path cell marks TLS connections: `wss://SNI/path`, or the TLS version and SNI
        // when the contents could not be decrypted)
        self.header()?;
        let (client, server) = (r.client.to_string(), r.server.to_string());
        let (client, server, stream, duration) = if self.opts.normalize {
            (
                without_port(&client).to_string(),
                without_port(&server).to_string(),
                "-".into(),
                "-".into(),
            )
        } else {
            let d = super::table::secs_between(r.start, r.end);
            (client, server, r.stream.to_string(), format!("{d}s"))
        };
        let accept = match (r.websocket, r.accept_ok, r.handshake_seen) {
            (_, Some(true), _) => "ok",
            (_, Some(false), _) => "BAD",
            (true, None, false) => "unseen",
            _ => "-",
        };
        let rtt = match rtt_summary(&r.rtts_ms) {
            Some((lo, mid, hi)) if !self.opts.normalize => format!("{lo:.2}/{mid:.2}/{hi:.2}"),
            _ => "-".into(),
        };
        let mut path = String::new();
        escape_text(&path_cell(r), &mut path);
        let mut protocol = String::new();
        // The subprotocol, or else the application protocol found inside (Socket.IO has none).
        escape_text(r.protocol.as_deref().or(r.app_protocol).unwrap_or("-"), &mut protocol);
        let mut line = format!(
            "{:>6} {:<22} {:<22} {:>9} {:<6} {:<18} {:<18} {:>6} {:>5} {:<17} {:<20} {:<10} {:>3} {:>4} {:<24} {:<12} ",
            stream,
            client,
            server,
            duration,
            accept,
            direction(&r.client_stats),
            direction(&r.server_stats),
            compression_ratio(r),
            r.client_stats.pings + r.server_stats.pings,
            rtt,
            close_summary(r.close.as_ref()),
            tcp_end_summary(r),
            keepalive_cell(r.keepalives, r.keepalive_acks),
            r.gaps,
            path,
            protocol
        );
        if r.problems.is_empty() {
            line.push('-');
        } else {
            let codes: Vec<&str> = r.problems.iter().map(|p| p.as_str()).collect();
            line.push_str(&codes.join(","));
        }
        if let Some(sid) = &r.sid {
            // The Engine.IO session ties the WebSocket to its long-polling connections.
            let mut esc = String::new();
            escape_text(sid, &mut esc);
            let streams: Vec<String> = r.sid_streams.iter().map(u64::to_string).collect();
            let _ = write!(line, " sid={esc} streams={}", streams.join(","));
        }
        if !r.proxies.is_empty() {
            let mut esc = String::new();
            escape_text(&r.proxies.join(", then "), &mut esc);
            let _ = write!(line, " via {esc}");
        }
        if let Some(id) = r.h2_stream {
            let _ = write!(line, " h2 stream {id}");
        }
        if let Some(n) = r.h2_websockets {
            let _ = write!(line, " HTTP/2 with {n} WebSocket{}", if n == 1 { "" } else { "s" });
        }
        if self.opts.normalize {
            self.session_ids.number_in(&mut line);
        }
        if let Some(w) = self.opts.width {
            super::table::truncate_chars(&mut line, w);
        }
        let worst = r.problems.iter().map(|p| p.severity()).max();
        match worst {
            Some(Severity::Error) if self.opts.color => writeln!(self.out, "{RED}{line}{RESET}"),
            Some(Severity::Warning) if self.opts.color => {
                writeln!(self.out, "{YELLOW}{line}{RESET}")
            }
            _ => writeln!(self.out, "{}", line.trim_end()),
        }
    }
}

impl<W: Write> Sink for ConnsTable<W> {
    fn payload_prefix(&self) -> Option<usize> {
        Some(0)
    }
    fn reads_frames(&self) -> bool {
        false
    }

    fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        match ev {
            Event::Connection(r) => self.row(r),
            _ => Ok(()),
        }
    }

    fn end(&mut self, totals: &RunTotals) -> io::Result<()> {
        if !self.header_done {
            writeln!(
                self.out,
                "# no WebSocket connections (use --all to list every TCP connection)"
            )?;
        }
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
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_bytes(999), "999B");
        assert_eq!(human_bytes(76390), "76.4kB");
        assert_eq!(human_bytes(3_000_000_000), "3.0GB");
    }

    #[test]
    fn keepalives_show_unanswered_probes() {
        assert_eq!(keepalive_cell(0, 0), "0");
        assert_eq!(keepalive_cell(4, 4), "4");
        assert_eq!(keepalive_cell(5, 3), "5/3");
    }

    #[test]
    fn rtt_median_of_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(rtt_summary(&[4.0, 1.0, 3.0, 2.0]), Some((1.0, 2.5, 4.0)));
        assert_eq!(rtt_summary(&[]), None);
    }
}
