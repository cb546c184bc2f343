//! Record selection (`--stream`, `--host`, `--port`, `--from`, `--opcode`, `--grep`,
//! `--where`, `--problems`) as a sink in front of a view's sink, so every view filters the
//! same way.

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
    /// `--where`: conditions on the `app` object or the JSON text; all must hold.
    pub wheres: Vec<Where>,
    pub only_problems: bool,
}

/// Where a `--where` path starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhereRoot {
    /// `app.…`: the record's `app` object.
    App,
    /// `json.…`: the message text, parsed as JSON.
    Json,
}

/// `--where PATH[=VALUE]`: a dotted path (`app.event`, `json.payload.id`, `app.args.0`) that
/// must exist (and not be null), or equal VALUE (as JSON when it parses, else as a string).
#[derive(Clone, Debug, PartialEq)]
pub struct Where {
    pub root: WhereRoot,
    pub keys: Vec<String>,
    pub value: Option<(serde_json::Value, String)>,
}

impl Where {
    pub fn parse(s: &str) -> Result<Where, String> {
        let (path, value) = match s.split_once('=') {
            Some((p, v)) => (p, Some(v)),
            None => (s, None),
        };
        let mut keys = path.split('.').map(str::to_owned);
        let root = match keys.next().as_deref() {
            Some("app") => WhereRoot::App,
            Some("json") => WhereRoot::Json,
            _ => {
                return Err(format!(
                    "bad --where `{s}`: the path starts with `app.` (the app object) or `json.` \
                     (the message's JSON text)"
                ))
            }
        };
        let keys: Vec<String> = keys.collect();
        if keys.iter().any(String::is_empty) {
            return Err(format!("bad --where `{s}`: empty path segment"));
        }
        let value = value.map(|v| {
            let json = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::from(v));
            (json, v.to_owned())
        });
        Ok(Where { root, keys, value })
    }

    fn holds(&self, root: &serde_json::Value) -> bool {
        let mut node = root;
        for k in &self.keys {
            let next = match node {
                serde_json::Value::Object(o) => o.get(k),
                serde_json::Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => return false,
            }
        }
        match &self.value {
            None => !node.is_null(),
            Some((json, raw)) => node == json || node.as_str() == Some(raw.as_str()),
        }
    }
}

impl FilterSpec {
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
            && self.hosts.is_empty()
            && self.ports.is_empty()
            && self.from.is_none()
            && self.opcodes.is_empty()
            && self.grep.is_none()
            && self.wheres.is_empty()
            && !self.only_problems
    }

    /// Whether only frames and messages can pass (opcode and text filters).
    fn payload_only(&self) -> bool {
        !self.opcodes.is_empty() || self.grep.is_some() || !self.wheres.is_empty()
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
                // Polling packets are text, but not WebSocket frames: no opcode selects them.
                Event::App(_) if self.spec.opcodes.is_empty() => 1,
                _ => return false,
            };
            if !self.spec.opcodes.is_empty() && !self.spec.opcodes.contains(&opcode) {
                return false;
            }
        }
        self.endpoints_pass(ev)
    }

    fn text_matches(&self, ev: &Event<'_>) -> bool {
        self.grep_matches(ev) && self.where_matches(ev)
    }

    fn where_matches(&self, ev: &Event<'_>) -> bool {
        if self.spec.wheres.is_empty() {
            return true;
        }
        let (app, text): (Option<&crate::app::App>, Option<&[u8]>) = match ev {
            Event::Message(m) => (m.app.as_deref(), m.is_text.then_some(&m.payload[..])),
            Event::Frame(f) => (f.app.as_deref(), f.payload_is_text.then_some(&f.payload[..])),
            Event::App(a) => (Some(&a.app), None),
            _ => return false,
        };
        let app = app.map(|a| serde_json::Value::Object(a.fields.clone()));
        let mut json: Option<Option<serde_json::Value>> = None;
        self.spec.wheres.iter().all(|w| match w.root {
            WhereRoot::App => app.as_ref().is_some_and(|a| w.holds(a)),
            WhereRoot::Json => json
                .get_or_insert_with(|| text.and_then(|t| serde_json::from_slice(t).ok()))
                .as_ref()
                .is_some_and(|j| w.holds(j)),
        })
    }

    fn grep_matches(&self, ev: &Event<'_>) -> bool {
        let Some(re) = &self.spec.grep else { return true };
        match ev {
            Event::Frame(f) if f.payload_is_text => re.is_match(&f.payload),
            Event::Frame(f) => f.close_reason.as_deref().is_some_and(|r| re.is_match(r.as_bytes())),
            Event::Message(m) => m.is_text && re.is_match(&m.payload),
            Event::App(a) => re.is_match(a.text.as_bytes()),
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
        Event::App(r) => Some((r.src, r.dst)),
    }
}

fn from(ev: &Event<'_>) -> Option<Side> {
    match ev {
        Event::Tcp(r) => Some(r.from),
        Event::Frame(r) => Some(r.from),
        Event::Message(r) => Some(r.from),
        Event::Problem(r) => r.from,
        Event::Request(_) => Some(Side::Client),
        Event::App(r) => Some(r.from),
        Event::Handshake(_) | Event::Tls(_) | Event::Connection(_) | Event::Packet(_) => None,
    }
}

impl Sink for Filter<'_> {
    fn payload_prefix(&self) -> Option<usize> {
        if self.spec.grep.is_some() || !self.spec.wheres.is_empty() {
            return None;
        }
        self.inner.payload_prefix()
    }
    fn reads_json_marks(&self) -> bool {
        self.inner.reads_json_marks()
    }
    fn keeps_records(&self) -> bool {
        self.spec.is_empty() && self.inner.keeps_records()
    }
    fn reads_frames(&self) -> bool {
        // Host and port selection remembers each stream's endpoints from the first record
        // that carries them, which may be a frame; text and problem selection hold a final
        // frame back and decide it together with its message.
        let spec = &self.spec;
        self.inner.reads_frames()
            || !spec.hosts.is_empty()
            || !spec.ports.is_empty()
            || spec.grep.is_some()
            || !spec.wheres.is_empty()
            || spec.only_problems
    }

    fn begin(&mut self, info: &RunInfo) -> io::Result<()> {
        self.inner.begin(info)
    }

    fn capture_start(&mut self, first: Meta) {
        self.inner.capture_start(first)
    }

    fn event_owned(&mut self, ev: Event<'static>) -> io::Result<()> {
        if self.spec.is_empty() {
            return self.inner.event_owned(ev);
        }
        self.event(&ev)
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
            if f.fin
                && f.opcode <= 2
                && (self.spec.grep.is_some()
                    || !self.spec.wheres.is_empty()
                    || self.spec.only_problems)
            {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn where_paths() {
        let app = json!({"protocol":"engine.io","event":"msg","ack_id":0,"args":[{"id":"7"}]});
        let holds = |s: &str| Where::parse(s).unwrap().holds(&app);
        assert!(holds("app.event=msg"));
        assert!(!holds("app.event=other"));
        assert!(holds("app.ack_id=0"));
        assert!(holds("app.ack_id"));
        assert!(!holds("app.namespace"));
        assert!(holds("app.args.0.id=7"));
        assert!(holds(r#"app.args.0.id="7""#));
        assert!(!holds("app.args.1"));
        assert!(Where::parse("event=msg").is_err());
        assert!(Where::parse("app..x").is_err());
        assert_eq!(Where::parse("json.type").unwrap().root, WhereRoot::Json);
    }
}
