//! `Transfer-Encoding: chunked` bodies (RFC 9112 section 7.1), decoded incrementally: bytes
//! go in as they arrive, body data comes out, and the decoder says how much of its input
//! belonged to the body, so that what follows (the next request on a keep-alive
//! connection) is parsed as HTTP again.

/// Characters of a chunk-size line (with extensions) or trailer line we accept.
const MAX_LINE: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// Reading a chunk-size line; the bytes so far.
    Size(Vec<u8>),
    Data(u64),
    /// The CRLF after chunk data; bytes of it seen.
    DataEnd(u8),
    /// Trailer lines after the last chunk; length of the current line.
    Trailer(usize),
    Done,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: State,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("bad chunk size line {0:?}")]
    BadSize(String),
    #[error("chunk data not followed by CRLF")]
    MissingCrlf,
    #[error("a chunk-size or trailer line longer than {MAX_LINE} bytes")]
    LineTooLong,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder { state: State::Size(Vec::new()) }
    }
}

impl ChunkedDecoder {
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes what it can of `input`, appending body data to `out`; returns how many input
    /// bytes belonged to the chunked body (all of them unless it ended inside `input`).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ChunkError> {
        let mut at = 0;
        while at < input.len() {
            let rest = &input[at..];
            match &mut self.state {
                State::Done => break,
                State::Size(line) => {
                    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                        if line.len() + rest.len() > MAX_LINE {
                            return Err(ChunkError::LineTooLong);
                        }
                        line.extend_from_slice(rest);
                        at = input.len();
                        continue;
                    };
                    line.extend_from_slice(&rest[..nl]);
                    at += nl + 1;
                    if line.len() > MAX_LINE {
                        return Err(ChunkError::LineTooLong);
                    }
                    let text = String::from_utf8_lossy(line);
                    // chunk-size [ chunk-ext ] CRLF
                    let hex = text.split(';').next().unwrap_or_default().trim();
                    let size = u64::from_str_radix(hex, 16)
                        .map_err(|_| ChunkError::BadSize(text.trim_end().to_string()))?;
                    self.state = if size == 0 { State::Trailer(0) } else { State::Data(size) };
                }
                State::Data(left) => {
                    let n = (*left).min(rest.len() as u64) as usize;
                    out.extend_from_slice(&rest[..n]);
                    *left -= n as u64;
                    at += n;
                    if *left == 0 {
                        self.state = State::DataEnd(0);
                    }
                }
                State::DataEnd(seen) => {
                    let want = if *seen == 0 { b'\r' } else { b'\n' };
                    match rest[0] {
                        // A bare LF is tolerated (RFC 9112 2.2 lets recipients accept it).
                        b'\n' if *seen == 0 => self.state = State::Size(Vec::new()),
                        b if b == want && *seen == 0 => *seen = 1,
                        b if b == want => self.state = State::Size(Vec::new()),
                        _ => return Err(ChunkError::MissingCrlf),
                    }
                    at += 1;
                }
                State::Trailer(len) => {
                    let b = rest[0];
                    at += 1;
                    match b {
                        b'\n' if *len == 0 => self.state = State::Done,
                        b'\n' => *len = 0,
                        b'\r' => {}
                        _ => {
                            *len += 1;
                            if *len > MAX_LINE {
                                return Err(ChunkError::LineTooLong);
                            }
                        }
                    }
                }
            }
        }
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] =
        b"4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\nNEXT";

    #[test]
    fn decodes_and_stops_at_the_end() {
        let mut d = ChunkedDecoder::default();
        let mut out = Vec::new();
        let used = d.feed(BODY, &mut out).unwrap();
        assert!(d.is_done());
        assert_eq!(out, b"Wikipedia in \r\n\r\nchunks.");
        assert_eq!(&BODY[used..], b"NEXT");
    }

    #[test]
    fn any_split_gives_the_same_body() {
        let end = BODY.len() - 4;
        for cut in 0..=end {
            let mut d = ChunkedDecoder::default();
            let mut out = Vec::new();
            let a = d.feed(&BODY[..cut], &mut out).unwrap();
            assert_eq!(a, cut);
            let b = d.feed(&BODY[cut..], &mut out).unwrap();
            assert!(d.is_done(), "cut {cut}");
            assert_eq!(out, b"Wikipedia in \r\n\r\nchunks.");
            assert_eq!(cut + b, end);
        }
    }

    #[test]
    fn errors() {
        let mut out = Vec::new();
        assert!(ChunkedDecoder::default().feed(b"zz\r\n", &mut out).is_err());
        assert!(ChunkedDecoder::default().feed(b"1\r\nab", &mut out).is_err());
        assert!(ChunkedDecoder::default().feed(&[b'1'; MAX_LINE + 2], &mut out).is_err());
        assert!(ChunkedDecoder::default().feed(b"ffffffffffffffffff\r\n", &mut out).is_err());
    }
}
