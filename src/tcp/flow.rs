//! Flow keys, endpoints and sides.

use std::net::IpAddr;

/// An address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
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
    fn key_is_direction_free_and_display() {
        let a = Endpoint { addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), port: 5000 };
        let b = Endpoint { addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), port: 80 };
        assert_eq!(FlowKey::of(a, b).0, FlowKey::of(b, a).0);
        assert_ne!(FlowKey::of(a, b).1, FlowKey::of(b, a).1);
        assert_eq!(a.to_string(), "10.0.0.1:5000");
        let v6 = Endpoint { addr: IpAddr::V6(Ipv6Addr::LOCALHOST), port: 443 };
        assert_eq!(v6.to_string(), "[::1]:443");
    }
}
