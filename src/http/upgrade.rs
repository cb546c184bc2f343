//! HTTP/1.1 request and response heads over httparse, tolerant like real peers.
//!
//! `Partial` means more bytes are needed and nothing was consumed (tungstenite's `TryParse`
//! shape); a head that does not end within the header limit is `TooLarge`.

/// A request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub path: String,
    /// HTTP minor version (1 for HTTP/1.1).
    pub version: u8,
    pub headers: Vec<(String, String)>,
    /// Bytes of the head including the blank line.
    pub head_len: usize,
    /// The request target held control characters, which RFC 9112 forbids; it was parsed
    /// anyway (with them kept in `path`) so the rest of the conversation is not lost.
    pub target_has_controls: bool,
    /// Names of headers written `Name:value`, without the customary space.
    pub no_space_after_colon: Vec<String>,
}

/// A response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub version: u8,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub head_len: usize,
    /// Names of headers written `Name:value`, without the customary space.
    pub no_space_after_colon: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadParse<T> {
    Complete(T),
    Partial,
    TooLarge,
    Invalid(String),
}

/// Header lookups shared by requests and responses.
pub trait Headers {
    fn header_list(&self) -> &[(String, String)];

    /// The first header of that name (case-insensitive).
    fn header(&self, name: &str) -> Option<&str> {
        self.header_list()
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether a comma-separated token list (across all headers of that name) holds `token`.
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.header_list()
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// All values of that name joined by ", ".
    fn joined(&self, name: &str) -> Option<String> {
        let vals: Vec<&str> = self
            .header_list()
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        (!vals.is_empty()).then(|| vals.join(", "))
    }
}

impl Headers for RequestHead {
    fn header_list(&self) -> &[(String, String)] {
        &self.headers
    }
}

impl Headers for ResponseHead {
    fn header_list(&self) -> &[(String, String)] {
        &self.headers
    }
}

impl RequestHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        Headers::header(self, name)
    }
}

impl ResponseHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        Headers::header(self, name)
    }
}

impl ResponseHead {
    /// Whether a 101 switches to another protocol than WebSocket: its `Upgrade` names others
    /// (`h2c`, `TLS/1.2`...) and not `websocket`.
    pub fn switches_to_another_protocol(&self) -> bool {
        self.status == 101
            && self.header("upgrade").is_some()
            && !self.has_token("upgrade", "websocket")
    }

    /// Whether the response ends before the connection does (RFC 9112 6.3: a chunked body, a
    /// Content-Length, or a status without a body), so that what follows on the connection is
    /// the next exchange. A client refused an upgrade (401 or 407 with a challenge, say) asks
    /// again on the same connection; even after `Connection: close`, a request that follows is
    /// read, since the bytes show the connection did not close.
    pub fn ends_before_the_connection(&self) -> bool {
        self.has_token("transfer-encoding", "chunked")
            || self.header("content-length").is_some_and(|v| v.trim().parse::<u64>().is_ok())
            || matches!(self.status, 204 | 304)
    }
}

const METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// Whether `buf` starts like an HTTP request line (a known method and a space); a short
/// `buf` that is a prefix of one counts.
pub fn looks_like_request(buf: &[u8]) -> bool {
    METHODS.iter().any(|m| {
        let n = m.len().min(buf.len());
        !buf.is_empty() && buf[..n] == m[..n]
    })
}

/// Whether `buf` starts like a status line (`HTTP/1.`); a short prefix counts.
pub fn looks_like_response(buf: &[u8]) -> bool {
    let m = b"HTTP/1.";
    let n = m.len().min(buf.len());
    !buf.is_empty() && buf[..n] == m[..n]
}

fn owned_headers(hs: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    hs.iter()
        .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).trim().to_string()))
        .collect()
}

/// Header names whose value follows the colon directly. RFC 9110 5.6.3 makes the space
/// optional, so this is no violation, but hand-written servers that split on `": "` choke on
/// it, which makes it worth showing.
fn no_space_after_colon(head: &[u8]) -> Vec<String> {
    head.split(|&b| b == b'\n')
        .skip(1)
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
        .filter_map(|line| {
            let colon = memchr::memchr(b':', line)?;
            let after = line.get(colon + 1)?;
            let name = line.get(..colon)?;
            (!matches!(after, b' ' | b'\t') && !name.is_empty())
                .then(|| String::from_utf8_lossy(name).into_owned())
        })
        .collect()
}

fn parser_config() -> httparse::ParserConfig {
    let mut c = httparse::ParserConfig::default();
    c.allow_spaces_after_header_name_in_responses(true);
    c.allow_obsolete_multiline_headers_in_responses(true);
    c.allow_multiple_spaces_in_request_line_delimiters(true);
    c.allow_multiple_spaces_in_response_status_delimiters(true);
    c.ignore_invalid_headers_in_responses(true);
    c.ignore_invalid_headers_in_requests(true);
    c
}

/// Runs `f` with growing header arrays until it fits (real clients send many headers).
fn with_headers<'b, T>(
    mut f: impl FnMut(&mut [httparse::Header<'b>]) -> Result<T, httparse::Error>,
) -> Result<T, httparse::Error> {
    let mut n = 64;
    loop {
        let mut hs: Vec<httparse::Header<'b>> = vec![httparse::EMPTY_HEADER; n];
        match f(&mut hs) {
            Err(httparse::Error::TooManyHeaders) if n < 4096 => n *= 4,
            r => return r,
        }
    }
}

pub fn parse_request(buf: &[u8], max_head: usize) -> HeadParse<RequestHead> {
    let window = &buf[..buf.len().min(max_head)];
    match parse_request_strict(window, buf.len(), max_head) {
        HeadParse::Invalid(why) => match control_chars_in_target(window) {
            Some(range) => {
                // Parse a copy with the control characters replaced, then report the target
                // as it was on the wire.
                let mut copy = window.to_vec();
                copy[range.clone()].iter_mut().filter(|b| is_control(**b)).for_each(|b| *b = b'?');
                match parse_request_strict(&copy, buf.len(), max_head) {
                    HeadParse::Complete(mut req) => {
                        req.path = String::from_utf8_lossy(&window[range]).into_owned();
                        req.target_has_controls = true;
                        HeadParse::Complete(req)
                    }
                    HeadParse::Invalid(_) => HeadParse::Invalid(why),
                    other => other,
                }
            }
            None => HeadParse::Invalid(why),
        },
        other => other,
    }
}

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// The request target's byte range when the request line is `METHOD SP target SP HTTP/1.x`
/// and the target holds control characters (but no CR/LF, which end the line).
fn control_chars_in_target(head: &[u8]) -> Option<std::ops::Range<usize>> {
    let line_end = memchr::memchr(b'\n', head)?;
    let line = &head[..line_end];
    let start = memchr::memchr(b' ', line)? + 1;
    let end = start + memchr::memmem::find(&line[start..], b" HTTP/")?;
    let target = &line[start..end];
    let has = target.iter().any(|&b| is_control(b) && b != b'\r');
    (has && !target.contains(&b'\r')).then_some(start..end)
}

fn parse_request_strict(window: &[u8], have: usize, max_head: usize) -> HeadParse<RequestHead> {
    let cfg = parser_config();
    let r = with_headers(|hs| {
        let mut req = httparse::Request::new(hs);
        match cfg.parse_request(&mut req, window)? {
            httparse::Status::Partial => Ok(None),
            httparse::Status::Complete(len) => Ok(Some(RequestHead {
                method: req.method.unwrap_or("").to_string(),
                path: req.path.unwrap_or("").to_string(),
                version: req.version.unwrap_or(1),
                headers: owned_headers(req.headers),
                head_len: len,
                target_has_controls: false,
                no_space_after_colon: no_space_after_colon(window.get(..len).unwrap_or_default()),
            })),
        }
    });
    finish(r, have, max_head)
}

pub fn parse_response(buf: &[u8], max_head: usize) -> HeadParse<ResponseHead> {
    let window = &buf[..buf.len().min(max_head)];
    let cfg = parser_config();
    let r = with_headers(|hs| {
        let mut resp = httparse::Response::new(hs);
        match cfg.parse_response(&mut resp, window)? {
            httparse::Status::Partial => Ok(None),
            httparse::Status::Complete(len) => Ok(Some(ResponseHead {
                version: resp.version.unwrap_or(1),
                status: resp.code.unwrap_or(0),
                reason: resp.reason.unwrap_or("").to_string(),
                headers: owned_headers(resp.headers),
                head_len: len,
                no_space_after_colon: no_space_after_colon(window.get(..len).unwrap_or_default()),
            })),
        }
    });
    finish(r, buf.len(), max_head)
}

fn finish<T>(r: Result<Option<T>, httparse::Error>, have: usize, max_head: usize) -> HeadParse<T> {
    match r {
        Ok(Some(head)) => HeadParse::Complete(head),
        Ok(None) if have >= max_head => HeadParse::TooLarge,
        Ok(None) => HeadParse::Partial,
        Err(httparse::Error::TooManyHeaders) => HeadParse::TooLarge,
        Err(e) => HeadParse::Invalid(format!("bad HTTP head: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerant_request_and_response() {
        let req = b"GET /chat HTTP/1.1\r\nhost: x\r\nUPGRADE:websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n\x81\x00";
        let HeadParse::Complete(r) = parse_request(req, 1 << 16) else { panic!() };
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/chat"));
        assert_eq!(r.header("Upgrade"), Some("websocket"));
        assert!(r.has_token("connection", "upgrade"));
        assert_eq!(r.head_len, req.len() - 2);
        let resp = b"HTTP/1.1 101 Web Socket Protocol Handshake\r\nUpgrade: WebSocket\r\nsec-websocket-Accept:abc\r\n\r\n";
        let HeadParse::Complete(r) = parse_response(resp, 1 << 16) else { panic!() };
        assert_eq!((r.status, r.reason.as_str()), (101, "Web Socket Protocol Handshake"));
        assert_eq!(r.header("Sec-WebSocket-Accept"), Some("abc"));
        assert_eq!(r.no_space_after_colon, vec!["sec-websocket-Accept"]);
    }

    #[test]
    fn headers_without_a_space_after_the_colon() {
        let HeadParse::Complete(r) = parse_request(
            b"GET / HTTP/1.1\r\nHost:x\r\nUpgrade:\twebsocket\r\nX-Empty:\r\nConnection: Upgrade\r\n\r\n",
            1 << 16,
        ) else {
            panic!()
        };
        // A tab is whitespace too; an empty value has nothing to be spaced from.
        assert_eq!(r.no_space_after_colon, vec!["Host"]);
        let HeadParse::Complete(r) =
            parse_response(b"HTTP/1.1 101 OK\nUpgrade:websocket\nConnection:Upgrade\n\n", 1 << 16)
        else {
            panic!()
        };
        assert_eq!(r.no_space_after_colon, vec!["Upgrade", "Connection"]);
    }

    #[test]
    fn control_characters_in_the_target_are_kept_and_flagged() {
        let req = b"GET /evil\x1b[2J HTTP/1.1\r\nHost: x\r\n\r\n";
        let HeadParse::Complete(r) = parse_request(req, 1 << 16) else { panic!() };
        assert_eq!(r.path, "/evil\u{1b}[2J");
        assert!(r.target_has_controls);
        assert_eq!(r.head_len, req.len());
        // Control characters anywhere else still make the head invalid.
        assert!(matches!(
            parse_request(b"G\x1bET / HTTP/1.1\r\nHost: x\r\n\r\n", 1 << 16),
            HeadParse::Invalid(_)
        ));
    }

    #[test]
    fn partial_too_large_and_invalid() {
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost: x\r\n", 1 << 16), HeadParse::Partial);
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..2000 {
            big.extend_from_slice(format!("X-{i}: {}\r\n", "v".repeat(40)).as_bytes());
        }
        assert_eq!(parse_request(&big, 1 << 16), HeadParse::TooLarge);
        big.extend_from_slice(b"\r\n");
        assert!(matches!(parse_request(&big, 1 << 20), HeadParse::Complete(_)));
        assert!(matches!(parse_response(b"HTTP/1.1 abc\r\n\r\n", 1 << 16), HeadParse::Invalid(_)));
        assert!(looks_like_request(b"GE"));
        assert!(looks_like_request(b"GET /"));
        assert!(!looks_like_request(b"\x81\x05"));
        assert!(looks_like_response(b"HTTP/1.1 101"));
        assert!(!looks_like_response(b"HTTP/2"));
    }

    #[test]
    fn a_101_to_another_protocol_is_not_websocket() {
        let switch = |head: &str| match parse_response(head.as_bytes(), 4096) {
            HeadParse::Complete(r) => r.switches_to_another_protocol(),
            other => panic!("{other:?}"),
        };
        assert!(switch(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
        ));
        assert!(!switch("HTTP/1.1 101 OK\r\nUpgrade: WebSocket\r\n\r\n"));
        assert!(!switch("HTTP/1.1 101 OK\r\nUpgrade: h2c, websocket\r\n\r\n"));
        // Without an Upgrade header a 101 is a broken WebSocket answer, not another protocol.
        assert!(!switch("HTTP/1.1 101 OK\r\n\r\n"));
        assert!(!switch("HTTP/1.1 200 OK\r\nUpgrade: h2c\r\n\r\n"));
    }

    #[test]
    fn a_response_with_a_delimited_body_ends_before_the_connection() {
        let ends = |head: &str| match parse_response(head.as_bytes(), 4096) {
            HeadParse::Complete(r) => r.ends_before_the_connection(),
            other => panic!("{other:?}"),
        };
        assert!(ends("HTTP/1.1 401 Unauthorized\r\nContent-Length: 5\r\n\r\n"));
        assert!(ends("HTTP/1.1 407 Proxy\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"));
        assert!(ends("HTTP/1.1 304 Not Modified\r\n\r\n"));
        assert!(ends("HTTP/1.0 401 No\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"));
        // A body that runs to the end of the connection.
        assert!(!ends("HTTP/1.1 403 Forbidden\r\n\r\n"));
        assert!(!ends("HTTP/1.1 401 No\r\nContent-Length: x\r\n\r\n"));
    }
}
