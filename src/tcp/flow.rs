//! Flow keys, endpoints and sides.

use std::net::IpAddr;

/// An address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
}

impl Endpoint {
    /// The same text as `Display`, formatted on the stack without `core::fmt` for IPv4: sinks
    /// write an endpoint or two per line, and allocating and formatting them was a visible
    /// share of a run.
    pub fn text(&self) -> EndpointText {
        let mut t = EndpointText { buf: [0; ENDPOINT_TEXT_MAX], len: 0 };
        match self.addr {
            IpAddr::V4(a) => {
                let mut digits = itoa::Buffer::new();
                for (i, octet) in a.octets().into_iter().enumerate() {
                    if i > 0 {
                        t.push(".");
                    }
                    t.push(digits.format(octet));
                }
            }
            IpAddr::V6(a) => {
                use std::fmt::Write as _;
                let _ = write!(t, "[{a}]");
            }
        }
        t.push(":");
        t.push(itoa::Buffer::new().format(self.port));
        t
    }
}

/// `[` + the longest IPv6 text (45) + `]:` + five digits.
const ENDPOINT_TEXT_MAX: usize = 53;

/// An endpoint's text, held on the stack.
#[derive(Clone, Copy)]
pub struct EndpointText {
    buf: [u8; ENDPOINT_TEXT_MAX],
    len: usize,
}

impl EndpointText {
    fn push(&mut self, s: &str) {
        // The bound above holds for every address, so nothing is ever cut; if it were, the
        // text would stay valid UTF-8 because every character written is ASCII.
        let n = s.len().min(ENDPOINT_TEXT_MAX - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

/// The texts of endpoints named lately, for sinks that name one or two per line: a
/// connection's lines repeat the same two, and formatting an IPv6 address through `core::fmt`
/// cost a quarter of the table's formatting thread. Direct-mapped, so it never grows and a
/// slot simply changes hands when two endpoints collide.
pub struct EndpointTexts {
    slots: Vec<Option<(Endpoint, EndpointText)>>,
    hasher: foldhash::fast::FixedState,
}

impl Default for EndpointTexts {
    fn default() -> Self {
        EndpointTexts {
            slots: vec![None; ENDPOINT_SLOTS],
            hasher: foldhash::fast::FixedState::default(),
        }
    }
}

const ENDPOINT_SLOTS: usize = 1024;

impl EndpointTexts {
    /// `e.text()`, from the cache when `e` was named lately.
    pub fn text(&mut self, e: &Endpoint) -> EndpointText {
        use std::hash::BuildHasher as _;
        let slot = self.hasher.hash_one(e) as usize % ENDPOINT_SLOTS;
        match self.slots.get_mut(slot) {
            Some(Some((seen, text))) if seen == e => *text,
            Some(entry) => {
                let text = e.text();
                *entry = Some((*e, text));
                text
            }
            None => e.text(),
        }
    }
}

impl std::fmt::Write for EndpointText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.push(s);
        Ok(())
    }
}

impl std::fmt::Display for Endpoint {
    /// `addr:port`, IPv6 as `[addr]:port`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// Which peer sent something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
    /// 0 for the client, 1 for the server: for state kept per direction in a pair.
    pub fn index(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 1,
        }
    }
}

/// A connection's 4-tuple, the same from either direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub lo: Endpoint,
    pub hi: Endpoint,
}

impl FlowKey {
    /// The key and whether `src` is the `lo` end.
    pub fn of(src: Endpoint, dst: Endpoint) -> (FlowKey, bool) {
        if src <= dst {
            (FlowKey { lo: src, hi: dst }, true)
        } else {
            (FlowKey { lo: dst, hi: src }, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn cached_endpoint_texts_are_the_endpoints_own() {
        // Many more endpoints than slots, named over and over in shifting orders, so that
        // slots are shared and change hands.
        let mut cache = EndpointTexts::default();
        let endpoint = |i: u32| Endpoint {
            addr: if i % 3 == 0 {
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, (i >> 16) as u16, i as u16))
            } else {
                IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i & 0xff)))
            },
            port: (i.wrapping_mul(7919) % 65536) as u16,
        };
        for round in 0..3u32 {
            for i in 0..5000u32 {
                let e = endpoint(i.wrapping_mul(round * 2 + 1) % 5000);
                assert_eq!(cache.text(&e).as_str(), e.to_string());
            }
        }
    }

    #[test]
    fn key_is_direction_free_and_display() {
        let a = Endpoint { addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), port: 5000 };
        let b = Endpoint { addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), port: 80 };
        assert_eq!(FlowKey::of(a, b).0, FlowKey::of(b, a).0);
        assert_ne!(FlowKey::of(a, b).1, FlowKey::of(b, a).1);
        assert_eq!(a.to_string(), "10.0.0.1:5000");
        let v6 = Endpoint { addr: IpAddr::V6(Ipv6Addr::LOCALHOST), port: 443 };
        assert_eq!(v6.to_string(), "[::1]:443");
    }
    #[test]
    fn text_is_what_display_writes() {
        let addrs = [
            IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)),
            IpAddr::V4(Ipv4Addr::new(255, 10, 9, 100)),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6("2001:db8::ff00:42:8329".parse().unwrap()),
            IpAddr::V6("::ffff:1.2.3.4".parse().unwrap()),
            IpAddr::V6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap()),
            IpAddr::V6("::ffff:255.255.255.255".parse().unwrap()),
        ];
        for addr in addrs {
            for port in [0, 9, 80, 65535] {
                let e = Endpoint { addr, port };
                assert_eq!(e.text().as_str(), e.to_string());
            }
        }
    }
}
