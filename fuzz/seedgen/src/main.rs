//! Builds a seed corpus for every fuzz target from the captures in `testdata/`:
//!
//! ```text
//! seedgen <testdata dir> <corpus dir>
//! ```
//!
//! `capture_reader`, `dissector` and `sharded` get the capture files as they are (and gunzipped); the
//! structured targets get what the library itself finds in them, in the target's input format
//! (fuzz/src/lib.rs): the packets, the TCP segments, each connection's stream events, the HTTP
//! heads, each direction's WebSocket bytes after the handshake, the compressed messages, and
//! the frames of cleartext HTTP/2 connections.

#[path = "../../src/lib.rs"]
#[allow(dead_code)]
mod format;

use format::*;
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{Cursor, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use wsdissect::capture::CaptureReader;
use wsdissect::decode::{Decoded, Decoder};
use wsdissect::http::upgrade::{
    looks_like_request, looks_like_response, parse_request, parse_response, HeadParse,
};
use wsdissect::limits::Limits;
use wsdissect::tcp::{Feedback, FlowTable, PacketMeta, Side, TcpEvent};
use wsdissect::ws::decoder::{FrameDecoder, FrameEvent};
use wsdissect::ws::opcode::OpCode;

/// Largest seed written for the structured targets.
const MAX_SEED: usize = 32 << 10;

struct Corpus {
    dir: PathBuf,
    written: BTreeSet<(String, Vec<u8>)>,
    count: HashMap<String, usize>,
}

impl Corpus {
    fn add(&mut self, target: &str, name: &str, bytes: Vec<u8>) {
        if bytes.is_empty() || !self.written.insert((target.to_string(), bytes.clone())) {
            return;
        }
        let n = self.count.entry(target.to_string()).or_default();
        *n += 1;
        let dir = self.dir.join(target);
        fs::create_dir_all(&dir).expect("corpus directory");
        fs::write(dir.join(format!("seed-{name}-{n}")), bytes).expect("write seed");
    }
}

/// One connection's stream events, as the session target takes them.
#[derive(Default)]
struct Collected {
    roles_from_syn: bool,
    /// (tag, side is B, bytes or gap length)
    events: Vec<(u8, bool, Vec<u8>, u64)>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (testdata, out) = match args.as_slice() {
        [_, t, o] => (PathBuf::from(t), PathBuf::from(o)),
        _ => {
            eprintln!("usage: seedgen <testdata dir> <corpus dir>");
            std::process::exit(2);
        }
    };
    let mut corpus = Corpus { dir: out, written: BTreeSet::new(), count: HashMap::new() };
    let mut cases: Vec<PathBuf> = fs::read_dir(&testdata)
        .expect("testdata")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    for case in cases {
        let name = case.file_name().unwrap_or_default().to_string_lossy().to_string();
        let mut files: Vec<PathBuf> = fs::read_dir(&case)
            .expect("case dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("capture.")))
            .collect();
        files.sort();
        for file in files {
            let raw = fs::read(&file).expect("read capture");
            corpus.add("capture_reader", &name, raw.clone());
            corpus.add("dissector", &name, raw.clone());
            corpus.add("sharded", &name, raw.clone());
            if raw.starts_with(&[0x1f, 0x8b]) {
                let mut plain = Vec::new();
                if flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut plain).is_ok() {
                    corpus.add("capture_reader", &name, plain.clone());
                    corpus.add("dissector", &name, plain.clone());
                    corpus.add("sharded", &name, plain);
                }
            }
            structured(&mut corpus, &name, &file, raw);
        }
    }
    let mut counts: Vec<_> = corpus.count.iter().collect();
    counts.sort();
    for (target, n) in counts {
        println!("{target}: {n} seeds");
    }
}

/// Seeds for the targets that take the library's intermediate forms.
fn structured(corpus: &mut Corpus, name: &str, file: &Path, raw: Vec<u8>) {
    let Ok(mut reader) = CaptureReader::from_reader(file, Box::new(Cursor::new(raw))) else {
        return;
    };
    let limits = Limits::default();
    let mut decoder = Decoder::new(&limits);
    let mut table: FlowTable<Collected> = FlowTable::new(&limits);
    let mut done: Vec<Collected> = Vec::new();

    let mut packets = vec![0u8];
    let mut segments = vec![0u8];
    let mut ends: Vec<(IpAddr, u16)> = Vec::new();
    let mut last_secs: Option<i64> = None;
    let mut number = 0u64;
    while let Ok(Some(rec)) = reader.next_packet() {
        number += 1;
        // packet_decoder
        let sel = link_selector(rec.link).or_else(|| u8::try_from(rec.link.0).ok());
        if let Some(sel) = sel {
            let delta = last_secs.map_or(0, |l| rec.ts.secs.saturating_sub(l).clamp(0, 255));
            last_secs = Some(rec.ts.secs);
            put_packet(&mut packets, sel, delta as u8, rec.data);
            if packets.len() > MAX_SEED / 2 {
                corpus.add("packet_decoder", name, std::mem::replace(&mut packets, vec![0]));
            }
        }
        let Decoded::Tcp(seg) = decoder.decode(&rec) else { continue };
        // tcp_reassembler: the segments among up to four endpoints.
        let mut index = |e: (IpAddr, u16)| -> Option<u8> {
            if let Some(i) = ends.iter().position(|x| *x == e) {
                return Some(i as u8);
            }
            (ends.len() < 4).then(|| {
                ends.push(e);
                (ends.len() - 1) as u8
            })
        };
        let (s, d) = (index((seg.src, seg.src_port)), index((seg.dst, seg.dst_port)));
        match (s, d) {
            (Some(s), Some(d)) => put_segment(&mut segments, &seg, s, d, seg.src.is_ipv6()),
            _ => {
                corpus.add("tcp_reassembler", name, std::mem::replace(&mut segments, vec![0]));
                ends.clear();
            }
        }
        if segments.len() > MAX_SEED {
            corpus.add("tcp_reassembler", name, std::mem::replace(&mut segments, vec![0]));
            ends.clear();
        }
        // Connections, for the stream-level targets.
        let pkt = PacketMeta { number, ts: rec.ts };
        table.process(pkt, &seg, |info, c, ev| collect(info, c, ev, &mut done));
    }
    if packets.len() > 1 {
        corpus.add("packet_decoder", name, packets);
    }
    if segments.len() > 1 {
        corpus.add("tcp_reassembler", name, segments);
    }
    let pkt = PacketMeta { number, ts: Default::default() };
    table.finish(pkt, |info, c, ev| collect(info, c, ev, &mut done));
    for conn in done {
        connection_seeds(corpus, name, &conn);
    }
}

fn collect(
    info: &wsdissect::tcp::ConnInfo,
    c: &mut Collected,
    ev: TcpEvent<'_>,
    done: &mut Vec<Collected>,
) -> Feedback {
    c.roles_from_syn = info.roles_from_syn;
    let b = |from: Side| from == Side::Server;
    match ev {
        TcpEvent::Data { from, data, .. } => c.events.push((0, b(from), data.to_vec(), 0)),
        TcpEvent::Gap { from, len, .. } => c.events.push((EV_GAP, b(from), Vec::new(), len)),
        TcpEvent::Fin { from, .. } => c.events.push((EV_FIN, b(from), Vec::new(), 0)),
        TcpEvent::Rst { from, .. } => c.events.push((EV_RST, b(from), Vec::new(), 0)),
        TcpEvent::Closed { .. } => done.push(std::mem::take(c)),
        _ => {}
    }
    Feedback::Continue
}

/// The session, HTTP, frame and deflate seeds of one connection.
fn connection_seeds(corpus: &mut Corpus, name: &str, conn: &Collected) {
    // session
    let mut s = vec![0b11 | if conn.roles_from_syn { 4 } else { 0 }];
    for (tag, from_b, data, len) in &conn.events {
        if s.len() > MAX_SEED {
            break;
        }
        match *tag {
            0 => put_data(&mut s, *from_b, data),
            EV_GAP => {
                s.push(EV_GAP | if *from_b { 8 } else { 0 });
                s.extend_from_slice(&(*len).clamp(1, 65535).to_be_bytes()[6..]);
            }
            other => s.push(other | if *from_b { 8 } else { 0 }),
        }
    }
    s.push(EV_CLOSE);
    corpus.add("session", name, s);

    // h2: an HTTP/2 connection's bytes after the client's preface (the target sends it).
    let mut preface_left = wsdissect::http::h2::PREFACE.len();
    let starts_h2 = conn.events.iter().find(|e| e.0 == 0 && !e.1).is_some_and(|e| {
        wsdissect::http::h2::starts_with_preface(&e.2) && e.2.len() >= preface_left
    });
    if starts_h2 {
        let mut h = vec![0b11];
        for (tag, from_b, data, _) in &conn.events {
            if *tag != 0 || h.len() > MAX_SEED {
                continue;
            }
            let mut data = &data[..];
            if !*from_b && preface_left > 0 {
                let n = preface_left.min(data.len());
                preface_left -= n;
                data = &data[n..];
            }
            h.push(u8::from(*from_b));
            put_chunk(&mut h, data);
        }
        corpus.add("h2", name, h);
    }

    // Each direction's bytes up to the first gap.
    let stream = |b: bool| -> Vec<u8> {
        let mut out = Vec::new();
        for (tag, from_b, data, _) in &conn.events {
            if *from_b == b {
                match *tag {
                    0 => out.extend_from_slice(data),
                    EV_GAP => break,
                    _ => {}
                }
            }
        }
        out
    };
    let (client, server) = (stream(false), stream(true));

    // http_upgrade: the two heads.
    let head = |bytes: &[u8], req: bool| -> usize {
        let n = if req {
            match parse_request(bytes, 64 << 10) {
                HeadParse::Complete(h) => Some(h.head_len),
                _ => None,
            }
        } else {
            match parse_response(bytes, 64 << 10) {
                HeadParse::Complete(h) => Some(h.head_len),
                _ => None,
            }
        };
        n.unwrap_or(0)
    };
    let is_http = looks_like_request(&client) || looks_like_response(&server);
    let (req_len, resp_len) = (head(&client, true), head(&server, false));
    if is_http {
        let req = &client[..if req_len > 0 { req_len } else { client.len().min(2048) }];
        let resp = &server[..if resp_len > 0 { resp_len } else { server.len().min(2048) }];
        let mut h = vec![0u8];
        h.extend_from_slice(&(req.len().min(65535) as u16).to_be_bytes());
        h.extend_from_slice(req);
        h.extend_from_slice(resp);
        corpus.add("http_upgrade", name, h);
    }

    // frame_decoder and deflate: each direction's bytes after its head.
    for (bytes, skip, masked) in [(&client, req_len, true), (&server, resp_len, false)] {
        if is_http && skip == 0 {
            continue;
        }
        let ws = &bytes[skip..bytes.len().min(skip + MAX_SEED)];
        if ws.is_empty() {
            continue;
        }
        let mut f = vec![if masked { 6 } else { 13 }, 0];
        f.extend_from_slice(ws);
        corpus.add("frame_decoder", name, f);
        if let Some(d) = deflate_ops(ws) {
            corpus.add("deflate", name, d);
        }
    }
}

/// The compressed messages of a direction as deflate-target operations, if there are any.
fn deflate_ops(ws: &[u8]) -> Option<Vec<u8>> {
    let mut ops = vec![0u8];
    let mut compressed = false;
    let mut in_compressed = false;
    let mut frame_fin = false;
    let mut frame_data = false;
    let mut frame_payload: Vec<u8> = Vec::new();
    let mut d = FrameDecoder::new();
    d.feed(ws, &mut |ev| match ev {
        FrameEvent::Header(h) => {
            frame_data = matches!(h.opcode, OpCode::Text | OpCode::Binary | OpCode::Continuation);
            if matches!(h.opcode, OpCode::Text | OpCode::Binary) {
                in_compressed = h.rsv & 4 != 0;
            }
            frame_fin = h.fin;
            frame_payload.clear();
        }
        FrameEvent::Payload(p) => frame_payload.extend_from_slice(p),
        FrameEvent::End => {
            if frame_data && in_compressed {
                compressed = true;
                ops.push(OP_INFLATE);
                put_chunk(&mut ops, &frame_payload);
                if frame_fin {
                    ops.push(OP_FINISH);
                    in_compressed = false;
                }
            }
            frame_payload.clear();
        }
    });
    compressed.then_some(ops)
}
