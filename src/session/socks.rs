//! SOCKS proxy handshakes (SOCKS4, SOCKS4a, SOCKS5 with RFC 1929 user/password), read from
//! both sides of a connection's start, so that what is tunnelled after a granted CONNECT
//! (an HTTP upgrade, or TLS for wss://) is dissected as if the connection started there.
//!
//! Written by hand: the SOCKS crates are clients and servers that own a socket; none reads a
//! recorded exchange from bytes. Every step is parsed from held bytes and asks for more when
//! they end early, as the frame decoder does.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest SOCKS4 user id or SOCKS4a host name looked for before the bytes are taken for
/// something else (SOCKS5 bounds both by a length byte).
const MAX_SOCKS4_STRING: usize = 255;

/// How far the handshake got with the bytes given.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// More bytes are needed (from the side whose turn it is).
    Need,
    /// The proxy granted the CONNECT: the tunnel starts after the bytes consumed.
    Open,
    /// The proxy refused, or the bytes are not a SOCKS exchange we can follow.
    Failed(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Greeting,
    MethodChoice,
    Auth,
    AuthReply,
    Request,
    Reply,
    Done,
}

/// One SOCKS handshake being read.
#[derive(Clone, Debug)]
pub struct SocksHandshake {
    version: u8,
    step: Step,
    /// The methods the SOCKS5 client offered (bit per method number below 0x80 and one bit
    /// for the private range), to catch a choice it did not offer.
    offered: u128,
    private_offered: bool,
    /// SOCKS4a: the client asked the proxy to resolve a host name.
    named_target: bool,
    target: Option<String>,
}

/// Whether `client`, the first bytes of a connection's client side, can begin a SOCKS
/// handshake: a SOCKS5 greeting, or a SOCKS4 CONNECT. A short prefix counts.
pub fn looks_like_start(client: &[u8]) -> bool {
    match client {
        [5] => true,
        [5, n, methods @ ..] => *n > 0 && !methods.iter().take(usize::from(*n)).any(|&m| m == 0xff),
        [4] | [4, 1, ..] => true,
        _ => false,
    }
}

impl SocksHandshake {
    /// Starts reading a handshake whose client side begins as [`looks_like_start`] accepts.
    pub fn new(client: &[u8]) -> Self {
        let version = client.first().copied().unwrap_or(5);
        SocksHandshake {
            version,
            step: if version == 4 { Step::Request } else { Step::Greeting },
            offered: 0,
            private_offered: false,
            named_target: false,
            target: None,
        }
    }

    /// `SOCKS4`, `SOCKS4a` or `SOCKS5`.
    pub fn name(&self) -> &'static str {
        match self.version {
            4 if self.named_target => "SOCKS4a",
            4 => "SOCKS4",
            _ => "SOCKS5",
        }
    }

    /// Where the client asked to be connected (`host:port`, IPv6 as `[addr]:port`), once its
    /// request is read.
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// Reads as many steps as the held bytes of each side complete. Returns the progress and
    /// how many bytes of each side (client, server) the completed steps took; the caller
    /// drops them before the next call.
    pub fn advance(&mut self, client: &[u8], server: &[u8]) -> (Progress, [usize; 2]) {
        let mut used = [0usize; 2];
        loop {
            let c = client.get(used[0]..).unwrap_or_default();
            let s = server.get(used[1]..).unwrap_or_default();
            // The client speaks in the greeting, login and request steps, the proxy in the rest.
            let side =
                usize::from(!matches!(self.step, Step::Greeting | Step::Auth | Step::Request));
            let read = match self.step {
                Step::Greeting => self.greeting(c),
                Step::MethodChoice => self.method_choice(s),
                Step::Auth => {
                    let read = auth_request(c);
                    if matches!(read, Read::Ok(_)) {
                        self.step = Step::AuthReply;
                    }
                    read
                }
                Step::AuthReply => self.auth_reply(s),
                Step::Request if self.version == 4 => self.socks4_request(c),
                Step::Request => self.socks5_request(c),
                Step::Reply if self.version == 4 => self.socks4_reply(s),
                Step::Reply => self.socks5_reply(s),
                Step::Done => return (Progress::Open, used),
            };
            match read {
                Read::Ok(n) => used[side] += n,
                Read::Need => return (Progress::Need, used),
                Read::Fail(why) => return (Progress::Failed(why), used),
            }
        }
    }

    fn greeting(&mut self, c: &[u8]) -> Read<usize> {
        let [5, n, rest @ ..] = c else { return short(c, 2, "not a SOCKS5 greeting") };
        let n = usize::from(*n);
        if n == 0 {
            return Read::Fail("a SOCKS5 greeting offering no method");
        }
        let Some(methods) = rest.get(..n) else { return Read::Need };
        for &m in methods {
            match m {
                0xff => return Read::Fail("a SOCKS5 greeting offering method 0xff"),
                0x80.. => self.private_offered = true,
                _ => self.offered |= 1u128 << m,
            }
        }
        self.step = Step::MethodChoice;
        Read::Ok(2 + n)
    }

    fn method_choice(&mut self, s: &[u8]) -> Read<usize> {
        let [5, m, ..] = s else { return short(s, 2, "not a SOCKS5 method choice") };
        let offered = match *m {
            0xff => return Read::Fail("the proxy accepts none of the client's methods"),
            0x80.. => self.private_offered,
            m => self.offered & (1u128 << m) != 0,
        };
        if !offered {
            return Read::Fail("the proxy chose a method the client did not offer");
        }
        self.step = match *m {
            0 => Step::Request,
            2 => Step::Auth,
            // GSSAPI and the rest wrap what follows in their own encapsulation.
            _ => return Read::Fail("a SOCKS5 authentication method that is not followed"),
        };
        Read::Ok(2)
    }

    fn auth_reply(&mut self, s: &[u8]) -> Read<usize> {
        // RFC 1929 says version 1; some proxies answer with 5.
        let [1 | 5, status, ..] = s else { return short(s, 2, "not a SOCKS5 login reply") };
        if *status != 0 {
            return Read::Fail("the proxy refused the login");
        }
        self.step = Step::Request;
        Read::Ok(2)
    }

    fn socks5_request(&mut self, c: &[u8]) -> Read<usize> {
        let [5, cmd, 0, ..] = c else { return short(c, 3, "not a SOCKS5 request") };
        if *cmd != 1 {
            return Read::Fail("a SOCKS5 request other than CONNECT");
        }
        match socks5_address(c.get(3..).unwrap_or_default()) {
            Read::Ok((target, n)) => {
                self.target = Some(target);
                self.step = Step::Reply;
                Read::Ok(3 + n)
            }
            Read::Need => Read::Need,
            Read::Fail(why) => Read::Fail(why),
        }
    }

    fn socks5_reply(&mut self, s: &[u8]) -> Read<usize> {
        let [5, rep, 0, ..] = s else { return short(s, 3, "not a SOCKS5 reply") };
        let rep = *rep;
        match socks5_address(s.get(3..).unwrap_or_default()) {
            Read::Ok((_, n)) if rep == 0 => {
                self.step = Step::Done;
                Read::Ok(3 + n)
            }
            Read::Ok(_) => Read::Fail(socks5_refusal(rep)),
            Read::Need => Read::Need,
            Read::Fail(why) => Read::Fail(why),
        }
    }

    fn socks4_request(&mut self, c: &[u8]) -> Read<usize> {
        let [4, 1, p0, p1, a, b, cc, d, rest @ ..] = c else {
            return short(c, 8, "not a SOCKS4 CONNECT");
        };
        let port = u16::from_be_bytes([*p0, *p1]);
        let Some(user_end) = nul_within(rest, MAX_SOCKS4_STRING) else {
            return if rest.len() > MAX_SOCKS4_STRING {
                Read::Fail("a SOCKS4 user id without its end")
            } else {
                Read::Need
            };
        };
        let mut n = 8 + user_end + 1;
        // SOCKS4a: 0.0.0.x (x not 0) asks the proxy to resolve the name that follows.
        let target = if [*a, *b, *cc] == [0, 0, 0] && *d != 0 {
            let name = rest.get(user_end + 1..).unwrap_or_default();
            let Some(name_end) = nul_within(name, MAX_SOCKS4_STRING) else {
                return if name.len() > MAX_SOCKS4_STRING {
                    Read::Fail("a SOCKS4a host name without its end")
                } else {
                    Read::Need
                };
            };
            n += name_end + 1;
            self.named_target = true;
            host_port(&String::from_utf8_lossy(name.get(..name_end).unwrap_or_default()), port)
        } else {
            format!("{}:{port}", Ipv4Addr::new(*a, *b, *cc, *d))
        };
        self.target = Some(target);
        self.step = Step::Reply;
        Read::Ok(n)
    }

    fn socks4_reply(&mut self, s: &[u8]) -> Read<usize> {
        let [0 | 4, code, _, _, _, _, _, _, ..] = s else {
            return short(s, 8, "not a SOCKS4 reply");
        };
        match code {
            90 => {
                self.step = Step::Done;
                Read::Ok(8)
            }
            91..=93 => Read::Fail("the SOCKS4 proxy refused the CONNECT"),
            _ => Read::Fail("not a SOCKS4 reply"),
        }
    }
}

enum Read<T> {
    Ok(T),
    Need,
    Fail(&'static str),
}

/// `Need` when `b` is shorter than `n` (the pattern could still match), else `Fail(why)`.
fn short<T>(b: &[u8], n: usize, why: &'static str) -> Read<T> {
    if b.len() < n {
        Read::Need
    } else {
        Read::Fail(why)
    }
}

/// RFC 1929 username/password request: version 1, then two length-prefixed strings. Only
/// its length is read; the credentials are never kept.
fn auth_request(c: &[u8]) -> Read<usize> {
    let [1, ulen, rest @ ..] = c else { return short(c, 2, "not a SOCKS5 login") };
    let ulen = usize::from(*ulen);
    let Some(&plen) = rest.get(ulen) else { return Read::Need };
    let n = 2 + ulen + 1 + usize::from(plen);
    if c.len() < n {
        return Read::Need;
    }
    Read::Ok(n)
}

/// A SOCKS5 address (ATYP, address, port) at the start of `b`: the target as text, and its
/// length on the wire.
fn socks5_address(b: &[u8]) -> Read<(String, usize)> {
    let Some(&atyp) = b.first() else { return Read::Need };
    let (addr_len, skip) = match atyp {
        1 => (4, 1),
        4 => (16, 1),
        3 => match b.get(1) {
            Some(&n) => (usize::from(n), 2),
            None => return Read::Need,
        },
        _ => return Read::Fail("a SOCKS5 address of an unknown type"),
    };
    let Some(addr) = b.get(skip..skip + addr_len) else { return Read::Need };
    let Some(&[p0, p1]) = b.get(skip + addr_len..skip + addr_len + 2) else { return Read::Need };
    let port = u16::from_be_bytes([p0, p1]);
    let target = match (atyp, addr) {
        (1, &[a, b, c, d]) => format!("{}:{port}", Ipv4Addr::new(a, b, c, d)),
        (4, a) => match <[u8; 16]>::try_from(a) {
            Ok(a) => format!("[{}]:{port}", Ipv6Addr::from(a)),
            Err(_) => return Read::Fail("a SOCKS5 address of an unknown type"),
        },
        (_, name) => host_port(&String::from_utf8_lossy(name), port),
    };
    Read::Ok((target, skip + addr_len + 2))
}

fn host_port(host: &str, port: u16) -> String {
    format!("{host}:{port}")
}

fn nul_within(b: &[u8], max: usize) -> Option<usize> {
    b.iter().take(max + 1).position(|&x| x == 0)
}

fn socks5_refusal(rep: u8) -> &'static str {
    match rep {
        1 => "the SOCKS5 proxy failed (general failure)",
        2 => "the SOCKS5 proxy's rules do not allow the connection",
        3 => "the SOCKS5 proxy found the network unreachable",
        4 => "the SOCKS5 proxy found the host unreachable",
        5 => "the SOCKS5 proxy's connection was refused",
        6 => "the SOCKS5 proxy's TTL expired",
        7 => "the SOCKS5 proxy does not support the command",
        8 => "the SOCKS5 proxy does not support the address type",
        _ => "the SOCKS5 proxy answered with an unknown error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds the two sides a byte at a time, in turn, as a proxy exchange would trickle in.
    fn bytewise(
        client: &[u8],
        server: &[u8],
    ) -> (Progress, [usize; 2], Option<String>, &'static str) {
        let mut hs = SocksHandshake::new(client);
        let (mut ci, mut si) = (0, 0);
        let mut taken = [0usize; 2];
        loop {
            let (p, used) = hs.advance(
                client.get(taken[0]..ci).unwrap_or_default(),
                server.get(taken[1]..si).unwrap_or_default(),
            );
            taken[0] += used[0];
            taken[1] += used[1];
            if p != Progress::Need || (ci == client.len() && si == server.len()) {
                return (p, taken, hs.target().map(String::from), hs.name());
            }
            ci = (ci + 1).min(client.len());
            si = (si + 1).min(server.len());
        }
    }

    #[test]
    fn socks5_without_login_opens_after_the_reply() {
        let client =
            [&[5, 1, 0][..], &[5, 1, 0, 3, 11], b"example.com", &[0x1f, 0x90], b"GET"].concat();
        let server = [&[5, 0][..], &[5, 0, 0, 1, 10, 0, 0, 1, 0x04, 0x38], b"HTTP"].concat();
        let (p, taken, target, name) = bytewise(&client, &server);
        assert_eq!(p, Progress::Open);
        assert_eq!(taken, [client.len() - 3, server.len() - 4]);
        assert_eq!(target.as_deref(), Some("example.com:8080"));
        assert_eq!(name, "SOCKS5");
    }

    #[test]
    fn socks5_with_a_login_and_an_ipv6_target() {
        let mut client = vec![5, 2, 0, 2, 1, 4];
        client.extend_from_slice(b"user");
        client.push(6);
        client.extend_from_slice(b"secret");
        client.extend_from_slice(&[5, 1, 0, 4]);
        client.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        client.extend_from_slice(&443u16.to_be_bytes());
        let server = [&[5, 2, 1, 0][..], &[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]].concat();
        let (p, taken, target, _) = bytewise(&client, &server);
        assert_eq!(p, Progress::Open);
        assert_eq!(taken, [client.len(), server.len()]);
        assert_eq!(target.as_deref(), Some("[::1]:443"));
    }

    #[test]
    fn socks4_and_socks4a_requests() {
        let mut v4 = vec![4, 1, 0, 80, 127, 0, 0, 1];
        v4.extend_from_slice(b"me\0");
        let granted = [0, 90, 0, 0, 0, 0, 0, 0];
        let (p, _, target, name) = bytewise(&v4, &granted);
        assert_eq!((p, target.as_deref(), name), (Progress::Open, Some("127.0.0.1:80"), "SOCKS4"));

        let mut v4a = vec![4, 1, 0, 80, 0, 0, 0, 7, 0];
        v4a.extend_from_slice(b"ws.example\0");
        let (p, taken, target, name) = bytewise(&v4a, &granted);
        assert_eq!(p, Progress::Open);
        assert_eq!(taken, [v4a.len(), 8]);
        assert_eq!((target.as_deref(), name), (Some("ws.example:80"), "SOCKS4a"));

        let (p, ..) = bytewise(&v4, &[0, 91, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(p, Progress::Failed(_)));
    }

    #[test]
    fn refusals_and_other_bytes_fail() {
        let hello = [5, 1, 0];
        let connect = [&hello[..], &[5, 1, 0, 1, 10, 0, 0, 1, 0, 80]].concat();
        for (client, server) in [
            (&hello[..], &[5, 0xff][..]),
            (&hello[..], &[5, 2][..]), // a method not offered
            (&connect[..], &[5, 0, 5, 5, 0, 1, 0, 0, 0, 0, 0, 0][..]),
            (&connect[..], &[5, 0, 5, 0, 0, 9][..]), // unknown address type
            (&[5, 1, 0, 5, 2, 0, 1, 10, 0, 0, 1, 0, 80][..], &[5, 0][..]), // BIND
            (&hello[..], b"HTTP/1.1 400 Bad Request\r\n".as_slice()),
        ] {
            let (p, ..) = bytewise(client, server);
            assert!(matches!(p, Progress::Failed(_)), "{client:?} / {server:?}: {p:?}");
        }
        let mut long_user = vec![4, 1, 0, 80, 1, 2, 3, 4];
        long_user.extend(std::iter::repeat_n(b'u', 300));
        assert!(matches!(bytewise(&long_user, &[]).0, Progress::Failed(_)));
    }

    #[test]
    fn what_can_start_a_handshake() {
        assert!(looks_like_start(&[5]));
        assert!(looks_like_start(&[5, 2, 0, 2]));
        assert!(looks_like_start(&[4, 1, 0]));
        assert!(!looks_like_start(&[5, 0]));
        assert!(!looks_like_start(&[5, 1, 0xff]));
        assert!(!looks_like_start(&[4, 2]));
        assert!(!looks_like_start(b"GET / HTTP/1.1"));
        assert!(!looks_like_start(&[0x16, 3, 1]));
    }

    #[test]
    fn any_bytes_end_without_panicking() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut side = || {
                let n = (seed % 40) as usize;
                (0..n)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        [0u8, 1, 2, 3, 4, 5, 90, 0xff][(seed % 8) as usize]
                    })
                    .collect::<Vec<u8>>()
            };
            let (c, s) = (side(), side());
            let mut hs = SocksHandshake::new(&c);
            let (_, used) = hs.advance(&c, &s);
            assert!(used[0] <= c.len() && used[1] <= s.len());
        }
    }
}
