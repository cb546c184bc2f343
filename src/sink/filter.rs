//! Record selection (`--stream`, `--host`, `--port`, `--from`, `--opcode`, `--grep`,
//! `--problems`) as a sink in front of a view's sink, so every view filters the same way.

use super::{RunInfo, RunTotals, Sink};
use crate::event::{Event, Meta};
use crate::tcp::{Endpoint, Side};
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;

/// What the user selected; empty lists select everything.
#[derive(Clone, Debug, Default)]
pub struct FilterSpec {
    pub streams: Vec<u64>,
    pub hosts: Vec<IpAddr>,
    pub ports: Vec<u16>,
    pub from: Option<Side>,
    pub opcodes: Vec<u8>,
    pub grep: Option<regex::bytes::Regex>,
    pub only_problems: bool,
}

impl FilterSpec {
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
            && self.hosts.is_empty()
            && self.ports.is_empty()
            && self.from.is_none()
            && self.opcodes.is_empty()
            && self.grep.is_none()
            && !self.only_problems
    }

    /// Whether only frames and messages can pass (opcode and text filters).
    fn payload_only(&self) -> bool {
        !self.opcodes.is_empty() || self.grep.is_some()
    }

    fn endpoints_match(&self, a: Endpoint, b: Endpoint) -> bool {
        (self.hosts.is_empty() || self.hosts.contains(&a.addr) || self.hosts.contains(&b.addr))
            && (self.ports.is_empty()
                || self.ports.contains(&a.port)
                || self.ports.contains(&b.port))
    }
}

/// Endpoint decisions remembered per stream, for records that carry no endpoints (problem
/// records); forgotten wholesale past this many streams so memory stays bounded.
const REMEMBERED_STREAMS: usize = 1 << 16;

pub struct Filter<'a> {
    inner: &'a mut dyn Sink,
    spec: FilterSpec,
    by_stream: HashMap<u64, bool>,
    /// A final data frame held until its message arrives, so a compressed or fragmented
    /// frame is selected by its message's decoded text.
    held: Option<Event<'static>>,
}

impl<'a> Filter<'a> {
    pub fn new(inner: &'a mut dyn Sink, spec: FilterSpec) -> Self {
        Filter { inner, spec, by_stream: HashMap::new(), held: None }
    }

    fn endpoints_pass(&mut self, ev: &Event<'_>) -> bool {
        if self.spec.hosts.is_empty() && self.spec.ports.is_empty() {
            return true;
        }
        let Some(stream) = ev.stream() else { return false };
        match endpoints(ev) {
            Some((a, b)) => {
                let ok = self.spec.endpoints_match(a, b);
                if self.by_stream.len() >= REMEMBERED_STREAMS {
                    self.by_stream.clear();
                }
                self.by_stream.insert(stream, ok);
                ok
            }
            None => self.by_stream.get(&stream).copied().unwrap_or(false),
        }
    }

    /// Selection by everything but the payload.
    fn passes_header(&mut self, ev: &Event<'_>) -> bool {
        if !self.spec.streams.is_empty()
            && !ev.stream().is_some_and(|s| self.spec.streams.contains(&s))
        {
            return false;
        }
        if let (Some(want), Some(from)) = (self.spec.from, from(ev)) {
            if want != from {
                return false;
            }
        }
        if self.spec.payload_only() {
            let opcode = match ev {
                Event::Frame(f) => f.opcode,
                Event::Message(m) => m.opcode,
                _ => return false,
            };
            if !self.spec.opcodes.is_empty() && !self.spec.opcodes.contains(&opcode) {
                return false;
            }
        }
        self.endpoints_pass(ev)
    }

    fn text_matches(&self, ev: &Event<'_>) -> bool {
        let Some(re) = &self.spec.grep else { return true };
        match ev {
            Event::Frame(f) if f.payload_is_text => re.is_match(&f.payload),
            Event::Frame(f) => f.close_reason.as_deref().is_some_and(|r| re.is_match(r.as_bytes())),
            Event::Message(m) => m.is_text && re.is_match(&m.payload),
            _ => false,
        }
    }

    fn problems_pass(&self, ev: &Event<'_>, extra: &[crate::problem::ProblemCode]) -> bool {
        !self.spec.only_problems || !ev.problems().is_empty() || !extra.is_empty()
    }

    fn release_held(&mut self) -> io::Result<()> {
        if let Some(held) = self.held.take() {
            if self.text_matches(&held) && self.problems_pass(&held, &[]) {
                return self.inner.event(&held);
            }
        }
        Ok(())
    }
}

fn endpoints(ev: &Event<'_>) -> Option<(Endpoint, Endpoint)> {
    match ev {
        Event::Tcp(r) => Some((r.src, r.dst)),
        Event::Request(r) => Some((r.src, r.dst)),
        Event::Handshake(r) => r.client.zip(r.server),
        Event::Frame(r) => Some((r.src, r.dst)),
        Event::Message(r) => Some((r.src, r.dst)),
        Event::Problem(_) => None,
        Event::Tls(r) => Some((r.client, r.server)),
        Event::Connection(r) => Some((r.client, r.server)),
        Event::Packet(r) => r.src.zip(r.dst),
    }
}

fn from(ev: &Event<'_>) -> Option<Side> {
    match ev {
        Event::Tcp(r) => Some(r.from),
        Event::Frame(r) => Some(r.from),
        Event::Message(r) => Some(r.from),
        Event::Problem(r) => r.from,
        Event::Request(_) => Some(Side::Client),
        Event::Handshake(_) | Event::Tls(_) | Event::Connection(_) | Event::Packet(_) => None,
    }
}

impl Sink for Filter<'_> {
    fn begin(&mut self, info: &RunInfo) -> io::Result<()> {
        self.inner.begin(info)
    }

    fn capture_start(&mut self, first: Meta) {
        self.inner.capture_start(first)
    }

    fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        if self.spec.is_empty() {
            return self.inner.event(ev);
        }
        if let Some(held) = self.held.take() {
            let completes = matches!((&held, ev), (Event::Frame(f), Event::Message(m))
                if f.stream == m.stream && f.from == m.from && f.meta.packet == m.meta.packet);
            if completes {
                // The message decides for both: its text is the frame's decoded text.
                let pass_text = self.text_matches(ev) || self.text_matches(&held);
                let pass_problems = self.problems_pass(&held, ev.problems());
                if pass_text && pass_problems {
                    self.inner.event(&held)?;
                    if self.passes_header(ev) {
                        self.inner.event(ev)?;
                    }
                }
                return Ok(());
            }
            self.held = Some(held);
            self.release_held()?;
        }
        if !self.passes_header(ev) {
            return Ok(());
        }
        if let Event::Frame(f) = ev {
            if f.fin && f.opcode <= 2 && (self.spec.grep.is_some() || self.spec.only_problems) {
                self.held = Some(ev.clone().into_owned());
                return Ok(());
            }
        }
        if self.text_matches(ev) && self.problems_pass(ev, &[]) {
            self.inner.event(ev)?;
        }
        Ok(())
    }

    fn end(&mut self, totals: &RunTotals) -> io::Result<()> {
        self.release_held()?;
        self.inner.end(totals)
    }
}
