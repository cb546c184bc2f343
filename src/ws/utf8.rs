//! Streaming UTF-8 validation: a text message may be split anywhere across frames, segments
//! and inflater output, so up to 3 bytes of an unfinished character are carried over.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utf8Error;

/// Whether the bytes are valid UTF-8 (SIMD-accelerated; payload text is most of the input).
pub fn is_valid(bytes: &[u8]) -> bool {
    simdutf8::basic::from_utf8(bytes).is_ok()
}

/// Bytes at the end of `chunk` that start a multi-byte character without finishing it (0 to
/// 3); only the lead byte's length is read, validity is checked by the caller.
fn unfinished_tail(chunk: &[u8]) -> usize {
    for back in 1..=chunk.len().min(3) {
        let b = chunk[chunk.len() - back];
        if b & 0xC0 != 0x80 {
            let len = match b {
                0xF0.. => 4,
                0xE0.. => 3,
                0xC0.. => 2,
                _ => 1,
            };
            return if len > back { back } else { 0 };
        }
    }
    0
}

#[derive(Debug, Default, Clone)]
pub struct Utf8Stream {
    carry: [u8; 4],
    carry_len: usize,
}

impl Utf8Stream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fails as soon as the bytes so far cannot begin valid UTF-8.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), Utf8Error> {
        if self.carry_len > 0 {
            // Complete the carried character with up to 3 more bytes.
            let need = 4 - self.carry_len;
            let take = need.min(chunk.len());
            let mut buf = self.carry;
            buf[self.carry_len..self.carry_len + take].copy_from_slice(&chunk[..take]);
            let have = self.carry_len + take;
            match std::str::from_utf8(&buf[..have]) {
                Ok(_) => {
                    chunk = &chunk[take..];
                    self.carry_len = 0;
                }
                Err(e) if e.valid_up_to() > 0 => {
                    // The carried character completed inside `take`; continue after it.
                    let used = e.valid_up_to() - self.carry_len;
                    chunk = &chunk[used..];
                    self.carry_len = 0;
                }
                Err(e) if e.error_len().is_none() => {
                    // Still unfinished: all of chunk was consumed.
                    self.carry = buf;
                    self.carry_len = have;
                    return Ok(());
                }
                Err(_) => return Err(Utf8Error),
            }
        }
        // The common case, valid text, on the SIMD path; the exact error position only when
        // it is not. A chunk cut inside a character (a segment or inflater boundary, which is
        // most chunks of non-ASCII text) is validated up to that character, whose first bytes
        // are carried: validating it all again on the slow path cost as much as the SIMD pass.
        let tail = unfinished_tail(chunk);
        let (whole, rest) = chunk.split_at(chunk.len() - tail);
        if simdutf8::basic::from_utf8(whole).is_ok() {
            if rest.is_empty() {
                return Ok(());
            }
            chunk = rest;
        }
        match std::str::from_utf8(chunk) {
            Ok(_) => Ok(()),
            Err(e) => match e.error_len() {
                Some(_) => Err(Utf8Error),
                None => {
                    let tail = &chunk[e.valid_up_to()..];
                    self.carry[..tail.len()].copy_from_slice(tail);
                    self.carry_len = tail.len();
                    Ok(())
                }
            },
        }
    }

    /// Whether the bytes so far end with a whole character (none is carried).
    pub fn at_char_boundary(&self) -> bool {
        self.carry_len == 0
    }

    /// The message ended: an unfinished character is an error.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let r = if self.carry_len == 0 { Ok(()) } else { Err(Utf8Error) };
        self.carry_len = 0;
        r
    }

    pub fn reset(&mut self) {
        self.carry_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_in_pieces(bytes: &[u8], cut: &[usize]) -> bool {
        let mut v = Utf8Stream::new();
        let mut last = 0;
        for &c in cut.iter().chain(std::iter::once(&bytes.len())) {
            if v.feed(&bytes[last..c]).is_err() {
                return false;
            }
            last = c;
        }
        v.finish().is_ok()
    }

    #[test]
    fn every_split_of_multibyte_text() {
        let s = "héllo wörld ✓ 𝄞 end".as_bytes();
        for a in 0..=s.len() {
            for b in a..=s.len() {
                assert!(valid_in_pieces(s, &[a, b]), "cut at {a},{b}");
            }
        }
    }

    #[test]
    fn pieces_agree_with_the_whole_on_every_short_string() {
        const BYTES: [u8; 12] =
            [0x41, 0x80, 0x90, 0xA0, 0xBF, 0xC2, 0xDF, 0xE0, 0xED, 0xF0, 0xF4, 0xFF];
        let mut s = Vec::new();
        for len in 0..=5u32 {
            for mut n in 0..BYTES.len().pow(len) {
                s.clear();
                for _ in 0..len {
                    s.push(BYTES[n % BYTES.len()]);
                    n /= BYTES.len();
                }
                let whole = std::str::from_utf8(&s).is_ok();
                for a in 0..=s.len() {
                    for b in a..=s.len() {
                        assert_eq!(valid_in_pieces(&s, &[a, b]), whole, "{s:x?} cut at {a},{b}");
                    }
                }
            }
        }
    }

    #[test]
    fn invalid_sequences() {
        for bad in [&b"\xc0\xaf"[..], b"\xed\xa0\x80", b"\xff", b"ab\x80", b"\xf4\x90\x80\x80"] {
            for cut in 0..=bad.len() {
                assert!(!valid_in_pieces(bad, &[cut]), "{bad:?} cut {cut}");
            }
        }
        assert!(!valid_in_pieces("✓".as_bytes()[..2].as_ref(), &[]));
    }
}
