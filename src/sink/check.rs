//! The check view: a CI verdict. Prints every problem (one line: stream, packet, severity,
//! code, detail), evaluates the assertions asked for, and ends with a summary line; the run
//! fails when a problem at or above `--fail-on` (and not `--allow`ed) or a failed assertion
//! was found.

use super::json::Obj;
use super::jsonl::write_end;
use super::{RunInfo, RunTotals, Sink};
use crate::cli::config::CheckOpts;
use crate::event::{Event, Meta};
use crate::problem::{ProblemCode, Severity};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Write};

/// One problem occurrence as check reports it.
struct Finding {
    stream: Option<u64>,
    meta: Meta,
    from: Option<&'static str>,
    code: ProblemCode,
    detail: String,
}

/// An assertion's outcome.
struct Assertion {
    name: &'static str,
    ok: bool,
    detail: String,
}

pub struct CheckSink<W: Write> {
    out: W,
    json: bool,
    opts: CheckOpts,
    counts: [u64; 3],
    allowed: u64,
    failing: u64,
    /// The last few findings, so a code on a frame and again on its message counts once.
    recent: VecDeque<(Option<u64>, u64, ProblemCode)>,
    handshakes_ok: u64,
    websocket_connections: u64,
    /// First few connections that broke an assertion, for the summary.
    unclean: Vec<String>,
    unclean_count: u64,
    wrong_protocol: Vec<String>,
    wrong_protocol_count: u64,
    max_rtt_seen: Option<(f64, u64)>,
    /// Whether the run fails (set by `end`).
    pub failed: bool,
}

const EXAMPLES_KEPT: usize = 5;

impl<W: Write> CheckSink<W> {
    pub fn new(out: W, json: bool, opts: CheckOpts) -> Self {
        CheckSink {
            out,
            json,
            opts,
            counts: [0; 3],
            allowed: 0,
            failing: 0,
            recent: VecDeque::new(),
            handshakes_ok: 0,
            websocket_connections: 0,
            unclean: Vec::new(),
            unclean_count: 0,
            wrong_protocol: Vec::new(),
            wrong_protocol_count: 0,
            max_rtt_seen: None,
            failed: false,
        }
    }

    fn finding(&mut self, f: Finding) -> io::Result<()> {
        let key = (f.stream, f.meta.packet, f.code);
        if self.recent.contains(&key) {
            return Ok(());
        }
        if self.recent.len() >= 16 {
            self.recent.pop_front();
        }
        self.recent.push_back(key);
        let sev = f.code.severity();
        self.counts[sev as usize] += 1;
        let allowed = self.opts.allow.contains(&f.code);
        let fails = !allowed && sev >= self.opts.fail_on;
        if allowed {
            self.allowed += 1;
        } else if fails {
            self.failing += 1;
        }
        if self.json {
            let mut buf = Vec::new();
            let mut o = Obj::new(&mut buf, "problem");
            o.u64("packet", f.meta.packet)
                .ts("ts", f.meta.ts, f.meta.precision)
                .opt_u64("stream", f.stream)
                .opt_str("from", f.from)
                .str("code", f.code.as_str())
                .str("severity", sev.as_str())
                .str("detail", &f.detail)
                .bool("allowed", allowed)
                .bool("fails", fails)
                .end();
            self.out.write_all(&buf)
        } else {
            let stream = f.stream.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
            let mut detail = String::new();
            super::escape::escape_text(&f.detail, &mut detail);
            let mark = if allowed {
                " (allowed)"
            } else if fails {
                ""
            } else {
                " (not failing)"
            };
            writeln!(
                self.out,
                "stream {stream} packet {} {} {}: {detail}{mark}",
                f.meta.packet,
                sev.as_str(),
                f.code
            )
        }
    }

    fn assertions(&self) -> Vec<Assertion> {
        let mut v = Vec::new();
        if let Some(n) = self.opts.expect_handshakes {
            v.push(Assertion {
                name: "expect-handshakes",
                ok: self.handshakes_ok == n,
                detail: format!("{} successful handshakes, expected {n}", self.handshakes_ok),
            });
        }
        if self.opts.expect_clean_close {
            let detail = if self.unclean_count == 0 {
                format!("{} connections closed cleanly", self.websocket_connections)
            } else {
                format!(
                    "{} of {} connections did not close cleanly: {}",
                    self.unclean_count,
                    self.websocket_connections,
                    self.unclean.join("; ")
                )
            };
            v.push(Assertion { name: "expect-clean-close", ok: self.unclean_count == 0, detail });
        }
        if let Some(max) = self.opts.max_rtt_ms {
            let (ok, detail) = match self.max_rtt_seen {
                Some((rtt, stream)) => (
                    rtt <= max,
                    format!(
                        "slowest ping round trip {rtt:.3} ms (stream {stream}), limit {max} ms"
                    ),
                ),
                None => (true, "no ping/pong round trips".into()),
            };
            v.push(Assertion { name: "max-rtt", ok, detail });
        }
        if let Some(want) = &self.opts.subprotocol {
            let detail = if self.wrong_protocol_count == 0 {
                format!("every connection selected {want}")
            } else {
                format!(
                    "{} connections did not select {want}: {}",
                    self.wrong_protocol_count,
                    self.wrong_protocol.join("; ")
                )
            };
            v.push(Assertion { name: "subprotocol", ok: self.wrong_protocol_count == 0, detail });
        }
        v
    }
}

fn keep_example(list: &mut Vec<String>, count: &mut u64, example: String) {
    *count += 1;
    if list.len() < EXAMPLES_KEPT {
        list.push(example);
    }
}

impl<W: Write> Sink for CheckSink<W> {
    fn payload_prefix(&self) -> Option<usize> {
        Some(0)
    }
    fn reads_frames(&self) -> bool {
        false
    }

    fn begin(&mut self, info: &RunInfo) -> io::Result<()> {
        if self.json {
            let mut buf = Vec::new();
            Obj::new(&mut buf, "begin")
                .u64("format", super::jsonl::FORMAT_VERSION)
                .str("tool", "wsdissect")
                .str("version", env!("CARGO_PKG_VERSION"))
                .str("view", info.view)
                .str_array("inputs", info.inputs.iter().map(String::as_str))
                .end();
            self.out.write_all(&buf)?;
        }
        Ok(())
    }

    fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        match ev {
            Event::Problem(p) => {
                return self.finding(Finding {
                    stream: p.stream,
                    meta: p.meta,
                    from: p.from.map(|s| s.as_str()),
                    code: p.code,
                    detail: p.detail.clone(),
                });
            }
            Event::Connection(c) => {
                // Its problems are a roll-up of records already reported.
                if !c.websocket {
                    return Ok(());
                }
                self.websocket_connections += 1;
                if !c.close.as_ref().is_some_and(|cl| cl.clean) {
                    let what = super::conns::close_summary(c.close.as_ref());
                    keep_example(
                        &mut self.unclean,
                        &mut self.unclean_count,
                        format!("stream {} close {what}", c.stream),
                    );
                }
                if let Some(want) = &self.opts.subprotocol {
                    if c.protocol.as_deref() != Some(want.as_str()) {
                        let got = c.protocol.clone().unwrap_or_else(|| "none".into());
                        keep_example(
                            &mut self.wrong_protocol,
                            &mut self.wrong_protocol_count,
                            format!("stream {} selected {got}", c.stream),
                        );
                    }
                }
                for &rtt in &c.rtts_ms {
                    if self.max_rtt_seen.is_none_or(|(m, _)| rtt > m) {
                        self.max_rtt_seen = Some((rtt, c.stream));
                    }
                }
                return Ok(());
            }
            // A valid accept key with an error (a subprotocol the client never offered, say)
            // is not an ok handshake.
            // Over HTTP/2 (RFC 8441) there is no accept key: a 2xx to the CONNECT is success.
            Event::Handshake(h)
                if match h.h2_stream {
                    None => h.status == Some(101) && h.accept_ok == Some(true),
                    Some(_) => h.status.is_some_and(|s| (200..300).contains(&s)),
                } && !h.problems.iter().any(|p| p.severity() == Severity::Error) =>
            {
                self.handshakes_ok += 1;
            }
            _ => {}
        }
        if ev.problems().is_empty() {
            return Ok(());
        }
        let (what, from) = match ev {
            Event::Tcp(r) => (format!("TCP {}", r.kind.as_str()), Some(r.from)),
            Event::Handshake(_) => ("upgrade handshake".to_string(), None),
            Event::Frame(f) => (format!("{} frame", f.opcode_name), Some(f.from)),
            Event::Message(m) => (format!("{} message", m.opcode_name), Some(m.from)),
            _ => (String::new(), None),
        };
        for &code in ev.problems() {
            let mut detail = String::new();
            if !what.is_empty() {
                let _ = write!(detail, "{what}");
                if let Some(f) = from {
                    let _ = write!(detail, " from {}", f.as_str());
                }
                detail.push_str(": ");
            }
            detail.push_str(code.meaning());
            self.finding(Finding {
                stream: ev.stream(),
                meta: ev.meta(),
                from: from.map(|s| s.as_str()),
                code,
                detail,
            })?;
        }
        Ok(())
    }

    fn end(&mut self, totals: &RunTotals) -> io::Result<()> {
        let assertions = self.assertions();
        let failed_assertions = assertions.iter().filter(|a| !a.ok).count();
        self.failed = self.failing > 0 || failed_assertions > 0;
        let [info, warnings, errors] = self.counts;
        if self.json {
            let mut buf = Vec::new();
            for a in &assertions {
                Obj::new(&mut buf, "assertion")
                    .str("name", a.name)
                    .bool("ok", a.ok)
                    .str("detail", &a.detail)
                    .end();
            }
            Obj::new(&mut buf, "verdict")
                .bool("ok", !self.failed)
                .str("fail_on", self.opts.fail_on.as_str())
                .u64("errors", errors)
                .u64("warnings", warnings)
                .u64("info", info)
                .u64("allowed", self.allowed)
                .u64("failing", self.failing)
                .u64("failed_assertions", failed_assertions as u64)
                .u64("websocket_connections", self.websocket_connections)
                .u64("handshakes_ok", self.handshakes_ok)
                .end();
            write_end(&mut buf, totals);
            self.out.write_all(&buf)?;
        } else {
            for a in &assertions {
                let mut detail = String::new();
                super::escape::escape_text(&a.detail, &mut detail);
                writeln!(
                    self.out,
                    "assertion {} {}: {detail}",
                    a.name,
                    if a.ok { "ok" } else { "FAILED" }
                )?;
            }
            for e in &totals.errors {
                writeln!(self.out, "input error: {e}")?;
            }
            let verdict = if !totals.errors.is_empty() {
                "INPUT ERROR"
            } else if self.failed {
                "FAIL"
            } else {
                "PASS"
            };
            let mut line = format!(
                "check: {verdict} — {errors} errors, {warnings} warnings, {info} info in {} WebSocket connections ({} handshakes ok); failing at {}",
                self.websocket_connections,
                self.handshakes_ok,
                self.opts.fail_on.as_str()
            );
            if self.allowed > 0 {
                let _ = write!(line, ", {} allowed", self.allowed);
            }
            if failed_assertions > 0 {
                let _ = write!(line, ", {failed_assertions} assertions failed");
            }
            writeln!(self.out, "{line}")?;
        }
        self.out.flush()
    }
}
