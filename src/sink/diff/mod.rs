//! The diff view: compares the WebSocket conversations of two captures.
//!
//! Each capture is dissected into a [`Conversation`]: its WebSocket connections in order,
//! each with its handshake outcome and, per direction, the sequence of messages as one-line
//! renderings (opcode and decoded payload; close code and reason). Timing, masking, ports,
//! TCP segmentation, fragmentation and compression never enter a rendering, so two
//! recordings of one scenario compare equal. Ping and pong payloads are left out (peers fill
//! them with nonces); with `--normalize` pings and pongs are left out altogether, since
//! timers send them, and Engine.IO session ids (`sid=…` in a request path, `"sid":"…"` in
//! a text payload), which the server draws at random, become `<sid N>`, numbered by first
//! appearance in their capture.
//!
//! Connections are matched by request path and order: the k-th connection to `/chat` in one
//! capture is compared with the k-th connection to `/chat` in the other. Message sequences
//! are compared with the `similar` crate's Myers diff and printed as unified hunks.
//!
//! Renderings wait for the report in a temporary file (`spool.rs`), so that a diff of
//! gigabyte captures holds in memory its connections' names and one connection's messages
//! at a time, not every message.

mod spool;

pub use spool::is_spool_error;

use super::escape::escape_bytes;
use super::json::Obj;
use super::normalize::SessionIds;
use super::Sink;
use crate::event::Event;
use crate::tcp::Side;
use sha1::{Digest, Sha1};
use similar::{ChangeTag, DiffOp, TextDiff};
use spool::{Item, Items, Spool};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

/// Comparisons allowed for one direction of a pair of connections. Myers' diff takes time in
/// proportion to the lists' length times the number of changes between them (minutes for
/// 100,000 messages that all differ); past this, the part between the longest common start
/// and end is shown as replaced whole. Counted, not timed, so that the report is the same
/// on every machine.
const DIFF_WORK: usize = 20_000_000;

/// Bytes of a payload kept in a rendering; longer ones end in a digest of the whole.
const RENDER_KEEP: usize = 2048;

/// What is compared and what is ignored.
#[derive(Clone, Debug, Default)]
pub struct DiffRules {
    pub ignore_json_keys: Vec<String>,
    pub order_window_ms: Option<f64>,
    pub drop_control: bool,
    /// Engine.IO session ids become `<sid N>` (see [`SessionIds`]).
    pub session_ids: bool,
    pub context: usize,
}

#[derive(Debug, Default)]
struct Connection {
    stream: ConnKey,
    path: Option<String>,
    handshake: String,
    items: [Items; 2],
}

/// A WebSocket: its TCP stream, and its HTTP/2 stream when it runs over HTTP/2 (several may
/// share one TCP connection).
type ConnKey = (u64, Option<crate::event::H2StreamId>);

/// `7`, or `7 (h2 stream 3)`.
fn key_text((stream, h2): ConnKey) -> String {
    match h2 {
        Some(id) => format!("{stream} (h2 stream {id})"),
        None => stream.to_string(),
    }
}

/// One capture's WebSocket conversations, collected as a sink.
#[derive(Debug, Default)]
pub struct Conversation {
    rules: DiffRules,
    conns: BTreeMap<ConnKey, Connection>,
    spool: Spool,
    sids: SessionIds,
    pub messages: u64,
}

impl Conversation {
    pub fn new(rules: DiffRules) -> Self {
        Conversation {
            rules,
            conns: BTreeMap::new(),
            spool: Spool::default(),
            sids: SessionIds::default(),
            messages: 0,
        }
    }

    /// `text` with its session ids numbered, when the rules say so.
    fn ids<'t>(&mut self, text: &'t str) -> std::borrow::Cow<'t, str> {
        if self.rules.session_ids {
            self.sids.number(text)
        } else {
            std::borrow::Cow::Borrowed(text)
        }
    }

    fn render_payload(&mut self, payload: &[u8], is_text: bool, missing: u64) -> String {
        let mut s = String::new();
        if is_text {
            let canonical = if self.rules.ignore_json_keys.is_empty() {
                None
            } else {
                canonical_json(payload, &self.rules.ignore_json_keys)
            };
            let text = canonical.as_deref().map(str::as_bytes).unwrap_or(payload);
            let numbered = std::str::from_utf8(text).ok().map(|t| self.ids(t));
            let text = match &numbered {
                Some(std::borrow::Cow::Owned(n)) => n.as_bytes(),
                _ => text,
            };
            s.push('"');
            escape_bytes(&text[..text.len().min(RENDER_KEEP)], &mut s);
            s.push('"');
            if text.len() > RENDER_KEEP {
                let _ = write!(s, "… ({} bytes, sha1 {})", text.len(), short_sha1(text));
            }
        } else {
            for b in payload.iter().take(64) {
                let _ = write!(s, "{b:02x}");
            }
            if payload.len() > 64 {
                let _ = write!(s, "… ({} bytes, sha1 {})", payload.len(), short_sha1(payload));
            }
        }
        if missing > 0 {
            let _ = write!(s, " (+{missing} bytes not kept)");
        }
        s
    }

    fn push(&mut self, stream: ConnKey, from: Side, at_ms: f64, render: String) -> io::Result<()> {
        self.messages += 1;
        let items = &mut connection(&mut self.conns, stream).items[from as usize];
        let capped = self.spool.push(items, &Item { render, at_ms })?;
        if capped {
            for c in self.conns.values_mut() {
                c.items.iter_mut().try_for_each(|i| self.spool.write_out(i))?;
            }
        }
        Ok(())
    }
}

/// One direction of a connection, read back, in the order the rules compare it.
fn read_items(spool: &mut Spool, items: &Items, rules: &DiffRules) -> io::Result<Vec<Item>> {
    let mut items = spool.read(items)?;
    if let Some(window) = rules.order_window_ms {
        sort_within_windows(&mut items, window);
    }
    Ok(items)
}

fn connection(conns: &mut BTreeMap<ConnKey, Connection>, stream: ConnKey) -> &mut Connection {
    conns.entry(stream).or_insert_with(|| Connection { stream, ..Default::default() })
}

fn short_sha1(b: &[u8]) -> String {
    let d = Sha1::digest(b);
    d.iter().take(6).map(|x| format!("{x:02x}")).collect()
}

/// The JSON text with the ignored keys removed at every depth, keys in their original order;
/// `None` when the text is not JSON.
pub fn canonical_json(payload: &[u8], ignore: &[String]) -> Option<String> {
    fn strip(v: &mut serde_json::Value, ignore: &[String]) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|k, _| !ignore.iter().any(|i| i == k));
                m.values_mut().for_each(|v| strip(v, ignore));
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|v| strip(v, ignore)),
            _ => {}
        }
    }
    let mut v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    strip(&mut v, ignore);
    serde_json::to_string(&v).ok()
}

impl Sink for Conversation {
    fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        match ev {
            Event::Handshake(h) => {
                let path = h.path.as_deref().map(|p| self.ids(p).into_owned());
                let mut s = format!(
                    "{} {}",
                    h.method.as_deref().unwrap_or("?"),
                    path.as_deref().unwrap_or("?")
                );
                match h.status {
                    Some(st) => {
                        let _ = write!(s, " → {st}");
                    }
                    None => s.push_str(" → no response"),
                }
                if let Some(p) = &h.protocol {
                    let _ = write!(s, " protocol={p}");
                }
                if let Some(e) = &h.extensions {
                    let _ = write!(s, " extensions={e}");
                }
                if h.accept_ok == Some(false) {
                    s.push_str(" accept=MISMATCH");
                }
                let mut esc = String::new();
                escape_bytes(s.as_bytes(), &mut esc);
                let c = connection(&mut self.conns, (h.stream, h.h2_stream));
                c.path = path;
                c.handshake = esc;
            }
            Event::Message(m) => {
                let mut r = m.opcode_name.to_string();
                r.push(' ');
                r.push_str(&self.render_payload(&m.payload, m.is_text, m.payload_missing));
                self.push((m.stream, m.h2_stream), m.from, m.meta.ts.as_millis_f64(), r)?;
            }
            Event::Frame(f) if f.opcode == 8 => {
                let mut r =
                    format!("close {}", f.close_code.map(|c| c.to_string()).unwrap_or("-".into()));
                if let Some(reason) = f.close_reason.as_deref() {
                    let _ = write!(r, " {}", self.render_payload(reason.as_bytes(), true, 0));
                }
                self.push((f.stream, f.h2_stream), f.from, f.meta.ts.as_millis_f64(), r)?;
            }
            Event::Frame(f) if f.opcode >= 9 && !self.rules.drop_control => {
                self.push(
                    (f.stream, f.h2_stream),
                    f.from,
                    f.meta.ts.as_millis_f64(),
                    f.opcode_name.to_string(),
                )?;
            }
            Event::Connection(c) if c.websocket => {
                // The connection's end: what it has pending goes out, as it will get no more.
                let c = connection(&mut self.conns, (c.stream, c.h2_stream));
                c.items.iter_mut().try_for_each(|i| self.spool.write_out(i))?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Items closer than `window` ms to their predecessor form a group whose order is ignored
/// (sorted by rendering).
fn sort_within_windows(items: &mut [Item], window: f64) {
    let mut start = 0;
    for i in 1..=items.len() {
        let split = i == items.len() || items[i].at_ms - items[i - 1].at_ms >= window;
        if split {
            items[start..i].sort_by(|a, b| a.render.cmp(&b.render));
            start = i;
        }
    }
}

/// The outcome of comparing two conversations.
pub struct DiffReport {
    pub equal: bool,
}

/// Pairs connections by path and order: (base, new), either may be missing.
fn pair(base: &Conversation, new: &Conversation) -> Vec<(Option<ConnKey>, Option<ConnKey>)> {
    let mut by_path: BTreeMap<Option<String>, Vec<ConnKey>> = BTreeMap::new();
    for c in new.conns.values() {
        by_path.entry(c.path.clone()).or_default().push(c.stream);
    }
    let mut taken: BTreeMap<Option<String>, usize> = BTreeMap::new();
    let mut pairs = Vec::new();
    for c in base.conns.values() {
        let k = taken.entry(c.path.clone()).or_insert(0);
        let other = by_path.get(&c.path).and_then(|v| v.get(*k)).copied();
        if other.is_some() {
            *k += 1;
        }
        pairs.push((Some(c.stream), other));
    }
    for (path, streams) in &by_path {
        let used = taken.get(path).copied().unwrap_or(0);
        for s in streams.iter().skip(used) {
            pairs.push((None, Some(*s)));
        }
    }
    pairs
}

/// A `diff` record's keys common to every status.
fn diff_record<'b>(
    buf: &'b mut Vec<u8>,
    path: &str,
    (base, new): (Option<ConnKey>, Option<ConnKey>),
    status: &str,
) -> Obj<'b> {
    let mut o = Obj::new(buf, "diff");
    o.str("path", path)
        .opt_u64("base_stream", base.map(|k| k.0))
        .opt_u64("new_stream", new.map(|k| k.0))
        .str("status", status);
    o
}

/// The edits from `old` to `new`: Myers' minimal diff when it takes at most [`DIFF_WORK`],
/// else the common start and end kept and all between replaced.
fn diff_ops(old: &[&str], new: &[&str]) -> Vec<DiffOp> {
    let edits_allowed = DIFF_WORK / (old.len() + new.len()).max(1);
    if within_edits(old, new, edits_allowed) {
        return TextDiff::configure().diff_slices(old, new).ops().to_vec();
    }
    let start = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let (old_rest, new_rest) = (old.get(start..).unwrap_or(&[]), new.get(start..).unwrap_or(&[]));
    let end = old_rest.iter().rev().zip(new_rest.iter().rev()).take_while(|(a, b)| a == b).count();
    let (old_len, new_len) = (old_rest.len() - end, new_rest.len() - end);
    let mut ops = Vec::new();
    if start > 0 {
        ops.push(DiffOp::Equal { old_index: 0, new_index: 0, len: start });
    }
    ops.push(match (old_len, new_len) {
        (0, _) => DiffOp::Insert { old_index: start, new_index: start, new_len },
        (_, 0) => DiffOp::Delete { old_index: start, old_len, new_index: start },
        _ => DiffOp::Replace { old_index: start, old_len, new_index: start, new_len },
    });
    if end > 0 {
        let (old_index, new_index) = (start + old_len, start + new_len);
        ops.push(DiffOp::Equal { old_index, new_index, len: end });
    }
    ops
}

/// Whether `new` is at most `max` insertions and deletions away from `old`: the forward
/// pass of Myers' algorithm, given up past `max` edits, in O((N + M) · max) time.
fn within_edits(old: &[&str], new: &[&str], max: usize) -> bool {
    let (n, m) = (old.len(), new.len());
    if n.abs_diff(m) > max {
        return false;
    }
    // The furthest `x` reached on each diagonal `k = x - y`, at index `k + max + 1`.
    let mut far = vec![0usize; 2 * max + 3];
    for d in 0..=max {
        for step in 0..=d {
            let k = 2 * step as isize - d as isize;
            let at = (k + max as isize + 1) as usize;
            let below = far.get(at.wrapping_sub(1)).copied().unwrap_or(0);
            let above = far.get(at + 1).copied().unwrap_or(0);
            // Down (an insertion) from the diagonal above, or right (a deletion) from below.
            let mut x = if step == 0 || (step != d && below < above) { above } else { below + 1 };
            let Some(mut y) = x.checked_add_signed(-k) else { continue };
            while x < n && y < m && old.get(x) == new.get(y) {
                x += 1;
                y += 1;
            }
            if let Some(slot) = far.get_mut(at) {
                *slot = x;
            }
            if x >= n && y >= m {
                return true;
            }
        }
    }
    false
}

fn lines(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.render.as_str()).collect()
}

/// Writes the report (text or JSON Lines) and says whether the conversations are equal.
pub fn report(
    out: &mut dyn Write,
    base: &mut Conversation,
    new: &mut Conversation,
    names: (&str, &str),
    json: bool,
    context: usize,
) -> io::Result<DiffReport> {
    let mut equal = true;
    let mut differing = 0u64;
    let pairs = pair(base, new);
    if !json {
        writeln!(out, "--- {}", names.0)?;
        writeln!(out, "+++ {}", names.1)?;
    }
    for (b, n) in &pairs {
        let bc = b.and_then(|s| base.conns.get(&s));
        let nc = n.and_then(|s| new.conns.get(&s));
        let path =
            bc.or(nc).and_then(|c| c.path.clone()).unwrap_or_else(|| "(no handshake)".into());
        let mut esc_path = String::new();
        escape_bytes(path.as_bytes(), &mut esc_path);
        let title = format!(
            "connection {esc_path} (base stream {}, new stream {})",
            b.map(key_text).unwrap_or("-".into()),
            n.map(key_text).unwrap_or("-".into())
        );
        let (Some(bc), Some(nc)) = (bc, nc) else {
            equal = false;
            differing += 1;
            let only_base = bc.is_some();
            // invariant: `pair` puts at least one stream in each pair, taken from these maps.
            let c = bc.or(nc).expect("one side of a pair exists");
            let count = c.items[0].len() + c.items[1].len();
            if json {
                let mut buf = Vec::new();
                let status = if only_base { "only-base" } else { "only-new" };
                diff_record(&mut buf, &path, (*b, *n), status).u64("messages", count).end();
                out.write_all(&buf)?;
            } else {
                let (sign, only, spool, rules) = if only_base {
                    ('-', "only in base", &mut base.spool, &base.rules)
                } else {
                    ('+', "only in new", &mut new.spool, &new.rules)
                };
                writeln!(out, "@@ {title}: {only} @@")?;
                writeln!(out, "{sign} handshake {}", c.handshake)?;
                for (side, arrow) in [(0, "→"), (1, "←")] {
                    let mut line = |i: &Item| writeln!(out, "{sign} {arrow} {}", i.render);
                    if rules.order_window_ms.is_some() {
                        read_items(spool, &c.items[side], rules)?.iter().try_for_each(line)?;
                    } else {
                        spool::for_each(spool, &c.items[side], &mut line)?;
                    }
                }
            }
            continue;
        };
        let mut changes: Vec<(String, &'static str, String)> = Vec::new();
        let mut hunks = String::new();
        if bc.handshake != nc.handshake {
            changes.push(("handshake".into(), "delete", bc.handshake.clone()));
            changes.push(("handshake".into(), "insert", nc.handshake.clone()));
            let _ = writeln!(hunks, "- handshake {}\n+ handshake {}", bc.handshake, nc.handshake);
        }
        for (side, arrow, name) in [(0, "→", "client"), (1, "←", "server")] {
            // Order windows sort a whole list; otherwise equal lists are found without
            // holding them.
            if base.rules.order_window_ms.is_none()
                && spool::same_renderings(
                    (&mut base.spool, &bc.items[side]),
                    (&mut new.spool, &nc.items[side]),
                )?
            {
                continue;
            }
            let old_items = read_items(&mut base.spool, &bc.items[side], &base.rules)?;
            let new_items = read_items(&mut new.spool, &nc.items[side], &new.rules)?;
            let (old, new_lines) = (lines(&old_items), lines(&new_items));
            if old == new_lines {
                continue;
            }
            for group in similar::group_diff_ops(diff_ops(&old, &new_lines), context) {
                let first = group.first().map(|o| o.old_range().start).unwrap_or(0);
                let _ = writeln!(hunks, "@@ {arrow} {name} messages from #{} @@", first + 1);
                for op in &group {
                    for ch in op.iter_changes(&old, &new_lines) {
                        let (sign, tag) = match ch.tag() {
                            ChangeTag::Equal => (' ', "equal"),
                            ChangeTag::Delete => ('-', "delete"),
                            ChangeTag::Insert => ('+', "insert"),
                        };
                        let _ = writeln!(hunks, "{sign} {arrow} {}", ch.value());
                        if tag != "equal" {
                            changes.push((name.into(), tag, ch.value().to_string()));
                        }
                    }
                }
            }
        }
        if changes.is_empty() {
            continue;
        }
        equal = false;
        differing += 1;
        if json {
            let mut buf = Vec::new();
            diff_record(&mut buf, &path, (*b, *n), "different")
                .raw("changes", |buf| {
                    buf.push(b'[');
                    for (i, (dir, tag, item)) in changes.iter().enumerate() {
                        if i > 0 {
                            buf.push(b',');
                        }
                        Obj::nested(buf)
                            .str("direction", dir)
                            .str("change", tag)
                            .str("item", item)
                            .close();
                    }
                    buf.push(b']');
                })
                .end();
            out.write_all(&buf)?;
        } else {
            writeln!(out, "@@ {title} @@")?;
            out.write_all(hunks.as_bytes())?;
        }
    }
    let summary = format!(
        "{} connections and {} messages in base, {} and {} in new; {differing} connections differ",
        base.conns.len(),
        base.messages,
        new.conns.len(),
        new.messages
    );
    if json {
        let mut buf = Vec::new();
        Obj::new(&mut buf, "diff-summary")
            .bool("equal", equal)
            .u64("base_connections", base.conns.len() as u64)
            .u64("new_connections", new.conns.len() as u64)
            .u64("base_messages", base.messages)
            .u64("new_messages", new.messages)
            .u64("differing_connections", differing)
            .end();
        out.write_all(&buf)?;
    } else if equal {
        writeln!(out, "no differences: {summary}")?;
    } else {
        writeln!(out, "DIFFERENT: {summary}")?;
    }
    out.flush()?;
    Ok(DiffReport { equal })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_json_keys_go_at_every_depth() {
        let ignore = vec!["id".to_string(), "ts".to_string()];
        assert_eq!(
            canonical_json(br#"{"id":1,"a":{"ts":5,"b":[{"id":2,"c":3}]}}"#, &ignore).unwrap(),
            r#"{"a":{"b":[{"c":3}]}}"#
        );
        assert!(canonical_json(b"not json", &ignore).is_none());
    }

    #[test]
    fn edit_distance_is_counted_up_to_the_cap() {
        let a = ["a", "b", "c", "d"];
        assert!(within_edits(&a, &a, 0));
        assert!(within_edits(&a, &["a", "c", "d"], 1));
        assert!(!within_edits(&a, &["a", "x", "c", "d"], 1));
        assert!(within_edits(&a, &["a", "x", "c", "d"], 2));
        assert!(within_edits(&a, &["x", "a", "b", "c", "d", "y"], 2));
        assert!(!within_edits(&a, &["x", "a", "b", "c", "d", "y"], 1));
        assert!(within_edits(&[], &a, 4) && !within_edits(&[], &a, 3));
        assert!(
            within_edits(&a, &["d", "c", "b", "a"], 6)
                && !within_edits(&a, &["d", "c", "b", "a"], 5)
        );
    }

    #[test]
    fn long_lists_that_differ_everywhere_are_replaced_whole_and_quickly() {
        let n = 60_000;
        let a: Vec<String> = (0..n).map(|i| format!("text \"a{i}\"")).collect();
        let b: Vec<String> = (0..n).map(|i| format!("text \"b{i}\"")).collect();
        let mut old: Vec<&str> = a.iter().map(String::as_str).collect();
        let mut new: Vec<&str> = b.iter().map(String::as_str).collect();
        for list in [&mut old, &mut new] {
            list.insert(0, "open");
            list.push("close 1000");
        }
        let started = std::time::Instant::now();
        let ops = diff_ops(&old, &new);
        assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
        assert_eq!(
            ops,
            [
                DiffOp::Equal { old_index: 0, new_index: 0, len: 1 },
                DiffOp::Replace { old_index: 1, old_len: n, new_index: 1, new_len: n },
                DiffOp::Equal { old_index: n + 1, new_index: n + 1, len: 1 },
            ]
        );
        // A few changes in long lists still get the minimal diff.
        let mut changed = old.clone();
        changed[30_000] = "text \"changed\"";
        changed.remove(50_000);
        let ops = diff_ops(&old, &changed);
        assert_eq!(ops.iter().filter(|o| !matches!(o, DiffOp::Equal { .. })).count(), 2, "{ops:?}");
    }

    #[test]
    fn order_is_ignored_only_within_a_window() {
        let mk = |r: &str, at| Item { render: r.into(), at_ms: at };
        let mut v =
            vec![mk("b", 0.0), mk("a", 10.0), mk("d", 5000.0), mk("c", 5001.0), mk("e", 9000.0)];
        sort_within_windows(&mut v, 100.0);
        let got: Vec<&str> = v.iter().map(|i| &*i.render).collect();
        assert_eq!(got, ["a", "b", "c", "d", "e"]);
    }
}
