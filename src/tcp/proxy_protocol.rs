//! The PROXY protocol header (HAProxy's, version 1 text and version 2 binary) that load
//! balancers (HAProxy, AWS NLB and ELB, GCP, nginx `proxy_protocol`, Envoy, Traefik) put in
//! front of the client's first byte, so the backend learns the real client address. A capture
//! taken on a backend sees it before the HTTP upgrade or the TLS ClientHello.
//!
//! [`ProxyHeaderStage`] takes the header off the start of the client's stream, before TLS and
//! HTTP look at it, and says what it carried. Written by hand: the PROXY protocol crates
//! parse a header from a socket or a whole buffer, not one arriving in pieces whose bytes are
//! handed on afterwards.

use std::net::{Ipv4Addr, Ipv6Addr};

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
const V1_PREFIX: &[u8; 6] = b"PROXY ";
/// The longest version 1 line (the specification's 107 bytes, CRLF included).
const V1_MAX: usize = 107;
/// A version 2 header longer than this (its TLVs) is skipped without being kept.
const V2_KEEP: usize = 16 + 216;

/// What a complete header said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Bytes it took on the wire.
    pub len: u64,
    /// `PROXY protocol v2 from 203.0.113.7:51234 to 10.0.0.5:443` and the like.
    pub summary: String,
}

enum Parse {
    Need,
    NotProxy,
    Header(Header),
}

/// Whether `b` can be the start of a header (a short prefix counts).
fn could_start(b: &[u8]) -> bool {
    let prefix = |sig: &[u8]| {
        let n = sig.len().min(b.len());
        b[..n] == sig[..n]
    };
    !b.is_empty() && (prefix(V1_PREFIX) || prefix(V2_SIGNATURE))
}

fn parse(b: &[u8]) -> Parse {
    if !could_start(b) {
        return Parse::NotProxy;
    }
    if b.first() == Some(&b'P') {
        parse_v1(b)
    } else {
        parse_v2(b)
    }
}

fn parse_v1(b: &[u8]) -> Parse {
    let Some(end) = b.windows(2).take(V1_MAX - 1).position(|w| w == b"\r\n") else {
        return if b.len() >= V1_MAX { Parse::NotProxy } else { Parse::Need };
    };
    let Ok(line) = std::str::from_utf8(&b[V1_PREFIX.len()..end]) else { return Parse::NotProxy };
    let fields: Vec<&str> = line.split(' ').collect();
    let summary = match fields.as_slice() {
        ["UNKNOWN", ..] => "PROXY protocol v1 (UNKNOWN)".to_string(),
        [family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let (Ok(sport), Ok(dport)) = (sport.parse::<u16>(), dport.parse::<u16>()) else {
                return Parse::NotProxy;
            };
            let ends = if *family == "TCP4" {
                match (src.parse::<Ipv4Addr>(), dst.parse::<Ipv4Addr>()) {
                    (Ok(s), Ok(d)) => (format!("{s}:{sport}"), format!("{d}:{dport}")),
                    _ => return Parse::NotProxy,
                }
            } else {
                match (src.parse::<Ipv6Addr>(), dst.parse::<Ipv6Addr>()) {
                    (Ok(s), Ok(d)) => (format!("[{s}]:{sport}"), format!("[{d}]:{dport}")),
                    _ => return Parse::NotProxy,
                }
            };
            format!("PROXY protocol v1 from {} to {}", ends.0, ends.1)
        }
        _ => return Parse::NotProxy,
    };
    Parse::Header(Header { len: end as u64 + 2, summary })
}

fn parse_v2(b: &[u8]) -> Parse {
    let Some(&[ver_cmd, family, l0, l1]) = b.get(12..16) else { return Parse::Need };
    if ver_cmd >> 4 != 2 || ver_cmd & 0xf > 1 {
        return Parse::NotProxy;
    }
    let len = 16 + usize::from(u16::from_be_bytes([l0, l1]));
    let addr_len = match family {
        0x11 | 0x12 => 12,
        0x21 | 0x22 => 36,
        0x31 | 0x32 => 216,
        _ => 0,
    };
    if ver_cmd & 0xf == 0 {
        let summary = "PROXY protocol v2 (LOCAL: the proxy's own connection)".to_string();
        return Parse::Header(Header { len: len as u64, summary });
    }
    if 16 + addr_len > len {
        return Parse::NotProxy;
    }
    let Some(a) = b.get(16..16 + addr_len) else { return Parse::Need };
    let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
    let summary = match (family, a.len()) {
        (0x11 | 0x12, 12) => {
            let ip = |i: usize| Ipv4Addr::new(a[i], a[i + 1], a[i + 2], a[i + 3]);
            format!("PROXY protocol v2 from {}:{} to {}:{}", ip(0), port(8), ip(4), port(10))
        }
        (0x21 | 0x22, 36) => {
            let ip = |i: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&a[i..i + 16]);
                Ipv6Addr::from(o)
            };
            format!("PROXY protocol v2 from [{}]:{} to [{}]:{}", ip(0), port(32), ip(16), port(34))
        }
        _ => "PROXY protocol v2 (no TCP addresses)".to_string(),
    };
    Parse::Header(Header { len: len as u64, summary })
}

/// Takes a PROXY protocol header off the start of a connection's client stream.
#[derive(Debug, Default)]
pub struct ProxyHeaderStage {
    state: State,
}

#[derive(Debug, Default)]
enum State {
    /// Nothing of the client's stream seen yet.
    #[default]
    Start,
    /// The first bytes could start a header that has not ended yet: held, from `offset`.
    Holding { held: Vec<u8>, offset: u64 },
    /// A header was read; this many of its bytes (TLVs) are still to come.
    Skipping(u64),
    /// Past the header, or there was none.
    Done,
}

/// What to do with a piece of the client's stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it on unchanged.
    Pass,
    /// Held until the header ends (nothing to hand on yet).
    Held,
    /// `consumed` bytes were a header (`header`, when it was read in this call); `rest`,
    /// starting at stream offset `offset`, is handed on instead of the piece.
    Replace { header: Option<Header>, consumed: u64, rest: Vec<u8>, offset: u64 },
}

impl ProxyHeaderStage {
    /// Whether the stage may still change what the client's stream carries.
    pub fn active(&self) -> bool {
        !matches!(self.state, State::Done)
    }

    /// A piece of the client's stream at stream offset `offset`. A header is looked for only
    /// at the start of a connection seen from its SYN (`from_start`).
    pub fn client_data(&mut self, offset: u64, data: &[u8], from_start: bool) -> Verdict {
        match std::mem::take(&mut self.state) {
            State::Done => {
                self.state = State::Done;
                Verdict::Pass
            }
            State::Start if !from_start || !could_start(data) => {
                self.state = State::Done;
                Verdict::Pass
            }
            State::Start => self.read(data.to_vec(), offset),
            State::Holding { mut held, offset } => {
                held.extend_from_slice(data);
                self.read(held, offset)
            }
            State::Skipping(left) => {
                let n = left.min(data.len() as u64);
                self.state = if n < left { State::Skipping(left - n) } else { State::Done };
                let rest = data.get(n as usize..).unwrap_or_default().to_vec();
                Verdict::Replace { header: None, consumed: n, rest, offset: offset + n }
            }
        }
    }

    fn read(&mut self, buf: Vec<u8>, offset: u64) -> Verdict {
        match parse(&buf) {
            Parse::Need if buf.len() < V2_KEEP.max(V1_MAX) => {
                self.state = State::Holding { held: buf, offset };
                Verdict::Held
            }
            Parse::Need | Parse::NotProxy => {
                self.state = State::Done;
                Verdict::Replace { header: None, consumed: 0, rest: buf, offset }
            }
            Parse::Header(h) => {
                let n = h.len.min(buf.len() as u64);
                let left = h.len - n;
                self.state = if left > 0 { State::Skipping(left) } else { State::Done };
                let rest = buf.get(n as usize..).unwrap_or_default().to_vec();
                Verdict::Replace { header: Some(h), consumed: n, rest, offset: offset + n }
            }
        }
    }

    /// The connection's client stream will not go on where it was held (a gap, the end):
    /// what was held is handed on as it is, from the returned offset.
    pub fn flush(&mut self) -> Option<(Vec<u8>, u64)> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Holding { held, offset } => Some((held, offset)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(cmd: u8, family: u8, addrs: &[u8], tlvs: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | cmd);
        h.push(family);
        h.extend_from_slice(&((addrs.len() + tlvs.len()) as u16).to_be_bytes());
        h.extend_from_slice(addrs);
        h.extend_from_slice(tlvs);
        h
    }

    /// Feeds `stream` in pieces of `step` bytes; returns the headers read, the bytes
    /// handed on (with their offsets checked to follow on) and the bytes consumed.
    fn run(stream: &[u8], step: usize) -> (Vec<Header>, Vec<u8>, u64) {
        let mut stage = ProxyHeaderStage::default();
        let (mut headers, mut out, mut consumed) = (Vec::new(), Vec::new(), 0);
        for (i, piece) in stream.chunks(step).enumerate() {
            let offset = (i * step) as u64;
            match stage.client_data(offset, piece, true) {
                Verdict::Pass => out.extend_from_slice(piece),
                Verdict::Held => {}
                Verdict::Replace { header, consumed: n, rest, offset } => {
                    headers.extend(header);
                    consumed += n;
                    assert_eq!(offset, consumed + out.len() as u64);
                    out.extend_from_slice(&rest);
                }
            }
        }
        if let Some((held, _)) = stage.flush() {
            out.extend_from_slice(&held);
        }
        (headers, out, consumed)
    }

    #[test]
    fn version_1_headers_in_any_pieces() {
        let stream = b"PROXY TCP4 203.0.113.7 10.0.0.5 51234 443\r\nGET / HTTP/1.1\r\n";
        for step in [1, 2, 7, 44, 100] {
            let (h, out, n) = run(stream, step);
            assert_eq!(h.len(), 1, "step {step}");
            assert_eq!(h[0].summary, "PROXY protocol v1 from 203.0.113.7:51234 to 10.0.0.5:443");
            assert_eq!(out, b"GET / HTTP/1.1\r\n");
            assert_eq!(n, 43);
        }
        let (h, ..) = run(b"PROXY TCP6 2001:db8::1 ::1 1 2\r\nx", 5);
        assert_eq!(h[0].summary, "PROXY protocol v1 from [2001:db8::1]:1 to [::1]:2");
        let (h, out, _) = run(b"PROXY UNKNOWN\r\nx", 3);
        assert_eq!(
            (h[0].summary.as_str(), out.as_slice()),
            ("PROXY protocol v1 (UNKNOWN)", &b"x"[..])
        );
    }

    #[test]
    fn version_2_headers_with_tlvs_and_local() {
        let mut addrs = vec![203, 0, 113, 7, 10, 0, 0, 5];
        addrs.extend_from_slice(&51234u16.to_be_bytes());
        addrs.extend_from_slice(&443u16.to_be_bytes());
        // An AWS VPC endpoint TLV (type 0xEA), 300 bytes of padding TLV (type 0x04).
        let mut tlvs = vec![0xea, 0, 5, 1, b'v', b'p', b'c', b'e'];
        tlvs.extend_from_slice(&[0x04, 0x01, 0x2c]);
        tlvs.extend(std::iter::repeat_n(0u8, 300));
        let mut stream = v2(1, 0x11, &addrs, &tlvs);
        let header_len = stream.len() as u64;
        stream.extend_from_slice(&[0x16, 3, 1, 0, 5]);
        for step in [1, 16, 30, 200, 1000] {
            let (h, out, n) = run(&stream, step);
            assert_eq!(h.len(), 1, "step {step}");
            assert_eq!(h[0].summary, "PROXY protocol v2 from 203.0.113.7:51234 to 10.0.0.5:443");
            assert_eq!((out.as_slice(), n), (&[0x16, 3, 1, 0, 5][..], header_len));
        }
        let mut six = Ipv6Addr::LOCALHOST.octets().to_vec();
        six.extend_from_slice(&"2001:db8::9".parse::<Ipv6Addr>().unwrap().octets());
        six.extend_from_slice(&[0, 1, 0, 2]);
        let (h, ..) = run(&v2(1, 0x21, &six, &[]), 9);
        assert_eq!(h[0].summary, "PROXY protocol v2 from [::1]:1 to [2001:db8::9]:2");
        let (h, out, _) = run(&[v2(0, 0, &[], &[]), b"GET".to_vec()].concat(), 4);
        assert!(h[0].summary.contains("LOCAL"));
        assert_eq!(out, b"GET");
    }

    #[test]
    fn other_streams_pass_whole() {
        for stream in [
            &b"PROPFIND / HTTP/1.1\r\n"[..],
            b"GET / HTTP/1.1\r\n",
            b"PROXY TCP4 not an address\r\nrest",
            b"\r\n\r\n\0\r\nQUIT\n\x31\x11\0\0", // version 3
            b"PRO",
        ] {
            for step in [1, 3, 50] {
                let (h, out, n) = run(stream, step);
                assert!(h.is_empty(), "{stream:?}");
                assert_eq!((out.as_slice(), n), (stream, 0), "{stream:?}");
            }
        }
        // A line that never ends within the limit is not a header.
        let long = [&b"PROXY "[..], &[b'a'; 200]].concat();
        assert_eq!(run(&long, 10).1, long);
        // Mid-stream connections are not looked at.
        let mut stage = ProxyHeaderStage::default();
        assert_eq!(stage.client_data(0, b"PROXY UNKNOWN\r\n", false), Verdict::Pass);
    }
}
