//! Streaming UTF-8 validation: a text message may be split anywhere across frames, segments
//! and inflater output, so up to 3 bytes of an unfinished character are carried over.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utf8Error;

/// Whether the bytes are valid UTF-8 (SIMD-accelerated; payload text is most of the input).
pub fn is_valid(bytes: &[u8]) -> bool {
    simdutf8::basic::from_utf8(bytes).is_ok()
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
        // it is not.
        if simdutf8::basic::from_utf8(chunk).is_ok() {
            return Ok(());
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
    fn invalid_sequences() {
        for bad in [&b"\xc0\xaf"[..], b"\xed\xa0\x80", b"\xff", b"ab\x80", b"\xf4\x90\x80\x80"] {
            for cut in 0..=bad.len() {
                assert!(!valid_in_pieces(bad, &[cut]), "{bad:?} cut {cut}");
            }
        }
        assert!(!valid_in_pieces("✓".as_bytes()[..2].as_ref(), &[]));
    }
}
