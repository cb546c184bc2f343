//! Engine.IO over HTTP long-polling: the requests of a Socket.IO session before (or instead
//! of) its WebSocket.
//!
//! A polling connection is plain HTTP/1.1 — keep-alive, several requests in turn — on a
//! connection of its own: `GET …&transport=polling` fetches what the server has to send
//! (the response body is a payload of packets), `POST` carries the client's packets in its
//! body (answered by `ok`). The session hands this module the heads and body bytes it has
//! already delimited by `Content-Length`; each body comes back as one record per Engine.IO
//! packet. Sessions are tied together by the `sid` query parameter (or, for the first GET,
//! by the `sid` of the `open` packet it returned), and [`SidTable`] remembers which streams
//! carried each session so that the WebSocket's connection record can name them.

use super::engineio::{is_engineio_path, query_param, EngineIo};
use super::{cut, App, Decoded};
use crate::tcp::Side;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

/// Requests awaiting their response per connection (HTTP pipelining is rare; bounded anyway).
const MAX_WAITING: usize = 4;
/// Bytes of a request target kept for the records of its packets (per-connection memory).
const MAX_PATH: usize = 1024;
/// Streams remembered per session.
const MAX_STREAMS_PER_SID: usize = 64;
/// Bytes of a `sid` used as its key: real ones are about 20 characters, and a request
/// target may be 64 KiB, which times the sessions remembered would be too much to remember.
pub const MAX_SID_KEY: usize = 64;

fn key(sid: &str) -> &str {
    cut(sid, MAX_SID_KEY)
}

/// Whether a request target is an Engine.IO long-polling request.
pub fn is_polling_request(path: &str) -> bool {
    is_engineio_path(path) && query_param(path, "transport") == Some("polling")
}

#[derive(Clone, Debug)]
struct Request {
    method: String,
    path: String,
}

struct Body {
    req: Request,
    bytes: Vec<u8>,
    cut: bool,
}

/// One Engine.IO packet of a polling body.
#[derive(Clone, Debug)]
pub struct PollPacket {
    pub method: String,
    pub path: String,
    pub sid: Option<String>,
    /// The packet as it was in the body.
    pub raw: String,
    pub app: App,
    pub error: Option<String>,
}

/// The polling state of one HTTP connection.
pub struct Polling {
    eio: EngineIo,
    sid: Option<String>,
    waiting: VecDeque<Request>,
    body: [Option<Body>; 2],
}

impl Polling {
    pub fn new(path: &str) -> Polling {
        Polling {
            eio: EngineIo::new(Some(path)),
            sid: None,
            waiting: VecDeque::new(),
            body: Default::default(),
        }
    }

    /// The Engine.IO session, once a request or an `open` packet named it.
    pub fn sid(&self) -> Option<String> {
        self.sid.clone()
    }

    /// A request head; `body_len` bytes of body follow it.
    pub fn request(&mut self, method: &str, path: &str, body_len: u64) {
        if let Some(sid) = query_param(path, "sid") {
            self.sid = Some(key(sid).to_owned());
        }
        let req =
            Request { method: cut(method, 16).to_owned(), path: cut(path, MAX_PATH).to_owned() };
        if self.waiting.len() >= MAX_WAITING {
            self.waiting.pop_front();
        }
        self.waiting.push_back(req.clone());
        self.body[0] = (body_len > 0).then(|| Body { req, bytes: Vec::new(), cut: false });
    }

    /// A response head; its body (`body_len` bytes) answers the oldest waiting request.
    pub fn response(&mut self, status: u16, body_len: u64) {
        let req = self.waiting.pop_front();
        self.body[1] = match req {
            Some(req) if status == 200 && body_len > 0 => {
                Some(Body { req, bytes: Vec::new(), cut: false })
            }
            _ => None,
        };
    }

    /// Body bytes of one side, kept up to `max` bytes.
    pub fn body_bytes(&mut self, from: Side, bytes: &[u8], max: usize) {
        if let Some(b) = self.body[from.index()].as_mut() {
            let room = max.saturating_sub(b.bytes.len());
            let take = bytes.len().min(room);
            b.bytes.extend_from_slice(&bytes[..take]);
            b.cut |= take < bytes.len();
        }
    }

    /// The body of one side is complete: its packets. Decoding state (binary attachments
    /// still to come) belongs to the Engine.IO session, whose requests may use several
    /// connections, so it lives in `sessions` once the `sid` is known.
    pub fn body_done(
        &mut self,
        from: Side,
        first_packet: u64,
        sessions: &mut SidTable,
    ) -> Vec<PollPacket> {
        let Some(body) = self.body[from.index()].take() else { return Vec::new() };
        let query_sid = query_param(&body.req.path, "sid").map(|s| key(s).to_owned());
        let packet = |raw: String, d: Decoded, sid: Option<String>| {
            let mut app = d.app.unwrap_or_else(|| App::new("engine.io"));
            if let Some(e) = &d.error {
                app.set("error", e.as_str());
                let base = if app.summary.is_empty() { "engine.io" } else { app.summary.as_str() };
                app.summary = format!("{base} (undecodable: {e})");
            }
            PollPacket {
                method: body.req.method.clone(),
                path: body.req.path.clone(),
                sid,
                raw,
                app,
                error: d.error,
            }
        };
        if body.cut {
            let d = Decoded::error(None, "the polling body is longer than --max-message");
            return vec![packet(String::new(), d, query_sid.or(self.sid.clone()))];
        }
        // The POST answer `ok` is HTTP, not Engine.IO.
        if from == Side::Server && body.req.method == "POST" {
            return Vec::new();
        }
        let sid = query_sid.clone().or_else(|| self.sid.clone());
        let eio = match sid.as_deref() {
            Some(sid) => sessions.decoder(sid, &body.req.path),
            None => &mut self.eio,
        };
        let decoded = eio.polling_body(from, &body.bytes, first_packet);
        let mut out = Vec::with_capacity(decoded.len());
        for (raw, d) in decoded {
            if let Some(sid) = d.app.as_ref().and_then(|a| a.fields.get("sid")?.as_str()) {
                self.sid = Some(key(sid).to_owned());
            }
            let sid = query_sid.clone().or_else(|| self.sid.clone());
            out.push(packet(raw, d, sid));
        }
        out
    }
}

#[derive(Default)]
struct SessionState {
    streams: Vec<u64>,
    eio: Option<EngineIo>,
}

/// The two hosts of a connection, in a fixed order: a `sid` names a session between one
/// client and one server, so sessions are keyed by both.
pub type HostPair = (IpAddr, IpAddr);

/// Engine.IO sessions by host pair and `sid`: the streams that carried each, and the decoding
/// state of its long-polling requests.
///
/// The table is cut into [`SID_PARTITIONS`] partitions by host pair, each with its own bound,
/// so that what a partition remembers depends only on the connections between its host pairs.
/// That is what lets `-j N` dissect each partition's connections on one thread and still
/// decide exactly what one thread decides (see [`SidTable::partition_of`]).
pub struct SidTable {
    partitions: Vec<Partition>,
    /// Host pair of the connection being dissected; set by the dissector before each event.
    scope: HostPair,
}

#[derive(Default)]
struct Partition {
    sessions: HashMap<(HostPair, String), SessionState>,
    order: VecDeque<(HostPair, String)>,
}

/// Partitions of the session table (and shards of `-j N` are unions of them).
pub const SID_PARTITIONS: usize = 64;
/// Sessions remembered per partition (65,536 in all at most): the oldest is forgotten first.
pub const MAX_SIDS_PER_PARTITION: usize = 1024;

impl Default for SidTable {
    fn default() -> Self {
        let unspecified = IpAddr::from([0, 0, 0, 0]);
        SidTable {
            partitions: (0..SID_PARTITIONS).map(|_| Partition::default()).collect(),
            scope: (unspecified, unspecified),
        }
    }
}

impl SidTable {
    /// The host pair of two endpoints' addresses, the same whichever side is which.
    pub fn host_pair(a: IpAddr, b: IpAddr) -> HostPair {
        if a <= b {
            (a, b)
        } else {
            (b, a)
        }
    }

    /// The partition of a host pair: a fixed function of the addresses (not of the run).
    pub fn partition_of(pair: HostPair) -> usize {
        let mut h = std::hash::DefaultHasher::new();
        pair.hash(&mut h);
        (h.finish() % SID_PARTITIONS as u64) as usize
    }

    /// Sets the connection whose sessions the next calls concern.
    pub fn set_scope(&mut self, a: IpAddr, b: IpAddr) {
        self.scope = Self::host_pair(a, b);
    }

    fn entry(&mut self, sid: &str) -> &mut SessionState {
        let scope = self.scope;
        let part = &mut self.partitions[Self::partition_of(scope)];
        let k = (scope, key(sid).to_owned());
        if !part.sessions.contains_key(&k) {
            if part.order.len() >= MAX_SIDS_PER_PARTITION {
                if let Some(old) = part.order.pop_front() {
                    part.sessions.remove(&old);
                }
            }
            part.order.push_back(k.clone());
        }
        part.sessions.entry(k).or_default()
    }

    pub fn add(&mut self, sid: &str, stream: u64) {
        let v = &mut self.entry(sid).streams;
        if !v.contains(&stream) && v.len() < MAX_STREAMS_PER_SID {
            v.push(stream);
        }
    }

    /// The session's polling decoder.
    fn decoder(&mut self, sid: &str, path: &str) -> &mut EngineIo {
        self.entry(sid).eio.get_or_insert_with(|| EngineIo::new(Some(path)))
    }

    /// Streams of the session, in the order they were first seen.
    pub fn streams(&self, sid: &str) -> &[u64] {
        let part = &self.partitions[Self::partition_of(self.scope)];
        part.sessions.get(&(self.scope, key(sid).to_owned())).map_or(&[], |s| s.streams.as_slice())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.partitions.iter().map(|p| p.sessions.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_over_several_requests() {
        let p = "/socket.io/?EIO=4&transport=polling&t=x";
        assert!(is_polling_request(p));
        assert!(!is_polling_request("/socket.io/?EIO=4&transport=websocket"));
        let mut t = SidTable::default();
        let mut poll = Polling::new(p);
        poll.request("GET", p, 0);
        let open = br#"0{"sid":"S1","upgrades":["websocket"]}"#;
        poll.response(200, open.len() as u64);
        poll.body_bytes(Side::Server, &open[..5], 1 << 20);
        poll.body_bytes(Side::Server, &open[5..], 1 << 20);
        let out = poll.body_done(Side::Server, 6, &mut t);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].sid.as_deref(), Some("S1"));
        assert_eq!(out[0].app.fields["engine_io"], "open");
        let post = "/socket.io/?EIO=4&transport=polling&sid=S1";
        poll.request("POST", post, 25);
        poll.body_bytes(Side::Client, b"40\x1e42[\"hello\",\"world\"]", 1 << 20);
        let out = poll.body_done(Side::Client, 9, &mut t);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].app.fields["event"], "hello");
        poll.response(200, 2);
        poll.body_bytes(Side::Server, b"ok", 1 << 20);
        assert!(poll.body_done(Side::Server, 10, &mut t).is_empty());
        poll.request("POST", post, 10);
        poll.body_bytes(Side::Client, b"42[\"long\"]", 4);
        let out = poll.body_done(Side::Client, 11, &mut t);
        assert!(out[0].error.is_some());
        // A binary packet's attachment may come in the next POST, on another connection.
        let mut other = Polling::new(post);
        poll.request("POST", post, 30);
        poll.body_bytes(Side::Client, br#"451-["f",{"_placeholder":true,"num":0}]"#, 1 << 20);
        assert_eq!(poll.body_done(Side::Client, 12, &mut t)[0].app.fields["attachments"], 1);
        other.request("POST", post, 5);
        other.body_bytes(Side::Client, b"bAQID", 1 << 20);
        let out = other.body_done(Side::Client, 13, &mut t);
        assert_eq!(out[0].app.fields["attachment_of"], 12);
    }

    #[test]
    fn sessions_of_different_host_pairs_are_apart() {
        let mut t = SidTable::default();
        let (a, b, c) =
            (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]), IpAddr::from([10, 0, 0, 3]));
        t.set_scope(a, b);
        t.add("S", 1);
        t.set_scope(b, a);
        t.add("S", 2);
        assert_eq!(t.streams("S"), &[1, 2]);
        t.set_scope(a, c);
        assert!(t.streams("S").is_empty());
        assert_eq!(SidTable::host_pair(a, b), SidTable::host_pair(b, a));
    }

    #[test]
    fn sid_table_is_bounded() {
        let mut t = SidTable::default();
        t.add("a", 1);
        t.add("a", 1);
        t.add("a", 3);
        assert_eq!(t.streams("a"), &[1, 3]);
        for i in 0..MAX_SIDS_PER_PARTITION as u64 + 5 {
            t.add(&i.to_string(), i);
        }
        assert!(t.streams("a").is_empty());
        assert!(t.len() <= MAX_SIDS_PER_PARTITION);
        // Every host pair's sessions count against its partition's bound.
        for i in 0..(SID_PARTITIONS * MAX_SIDS_PER_PARTITION * 2) as u32 {
            t.set_scope(IpAddr::from([10, 0, 0, 1]), IpAddr::from(i.to_be_bytes()));
            t.add("s", u64::from(i));
        }
        assert!(t.len() <= SID_PARTITIONS * MAX_SIDS_PER_PARTITION);
        let long = "é".repeat(1000);
        t.add(&long, 9);
        assert_eq!(t.streams(&long), &[9]);
        assert!(t.partitions.iter().all(|p| p.sessions.keys().all(|k| k.1.len() <= MAX_SID_KEY)));
    }
}
