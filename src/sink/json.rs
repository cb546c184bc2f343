//! A small JSON object writer for one record per line.
//!
//! Records are flat objects written straight into a reused buffer: no intermediate values, no
//! per-record allocation once the buffer is warm, and a fixed key order so that output is
//! byte-for-byte deterministic (golden files, `diff`).

use crate::app::json_text::escape_mask;
use crate::capture::{Timestamp, TsPrecision};
use base64::Engine;
use std::io::Write;

/// Binary payloads are base64 in JSON; a tenth of the bytes of the frames view's output.
#[cfg(target_arch = "x86_64")]
static BASE64: std::sync::LazyLock<base64::engine::Simd> = std::sync::LazyLock::new(|| {
    base64::engine::Simd::standard(base64::engine::general_purpose::PAD)
});
#[cfg(not(target_arch = "x86_64"))]
static BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Writes one JSON object into `buf`.
pub struct Obj<'b> {
    buf: &'b mut Vec<u8>,
    first: bool,
}

impl<'b> Obj<'b> {
    /// Starts `{"type":"<kind>"`.
    pub fn new(buf: &'b mut Vec<u8>, kind: &str) -> Obj<'b> {
        buf.extend_from_slice(b"{\"type\":");
        write_str(buf, kind);
        Obj { buf, first: false }
    }

    /// Starts a nested object (no type key); finish it with [`Obj::close`].
    pub fn nested(buf: &'b mut Vec<u8>) -> Obj<'b> {
        buf.push(b'{');
        Obj { buf, first: true }
    }

    /// Closes a nested object.
    pub fn close(&mut self) {
        self.buf.push(b'}');
    }

    // Inlined into each caller, where the key is a constant: its copy is then a few moves
    // rather than a call to memcpy, and a record has some twenty keys.
    #[inline(always)]
    fn key(&mut self, key: &str) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        self.buf.push(b'"');
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    #[inline(always)]
    pub fn str(&mut self, key: &str, v: &str) -> &mut Self {
        self.key(key);
        write_str(self.buf, v);
        self
    }

    /// A string from bytes that are UTF-8 (a payload the dissector validated), without
    /// checking them again.
    pub fn utf8(&mut self, key: &str, utf8: &[u8]) -> &mut Self {
        debug_assert!(std::str::from_utf8(utf8).is_ok(), "not UTF-8: {utf8:02x?}");
        self.key(key);
        write_utf8(self.buf, utf8);
        self
    }

    pub fn opt_str(&mut self, key: &str, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.str(key, v),
            None => self.null(key),
        }
    }

    #[inline(always)]
    pub fn u64(&mut self, key: &str, v: u64) -> &mut Self {
        self.key(key);
        write_u64(self.buf, v);
        self
    }

    pub fn opt_u64(&mut self, key: &str, v: Option<u64>) -> &mut Self {
        match v {
            Some(v) => self.u64(key, v),
            None => self.null(key),
        }
    }

    pub fn f64(&mut self, key: &str, v: f64) -> &mut Self {
        self.key(key);
        write_f64(self.buf, v);
        self
    }

    #[inline(always)]
    pub fn bool(&mut self, key: &str, v: bool) -> &mut Self {
        self.key(key);
        self.buf.extend_from_slice(if v { b"true" } else { b"false" });
        self
    }

    pub fn opt_bool(&mut self, key: &str, v: Option<bool>) -> &mut Self {
        match v {
            Some(v) => self.bool(key, v),
            None => self.null(key),
        }
    }

    #[inline(always)]
    pub fn null(&mut self, key: &str) -> &mut Self {
        self.key(key);
        self.buf.extend_from_slice(b"null");
        self
    }

    pub fn ts(&mut self, key: &str, ts: Timestamp, precision: TsPrecision) -> &mut Self {
        self.key(key);
        write_ts(self.buf, ts, precision);
        self
    }

    /// Lower-case hex digits of `bytes`, as a string.
    pub fn hex(&mut self, key: &str, bytes: &[u8]) -> &mut Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        self.key(key);
        self.buf.push(b'"');
        for b in bytes {
            self.buf.extend_from_slice(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]);
        }
        self.buf.push(b'"');
        self
    }

    pub fn base64(&mut self, key: &str, bytes: &[u8]) -> &mut Self {
        self.key(key);
        self.buf.push(b'"');
        let start = self.buf.len();
        let encoded_len = bytes.len().div_ceil(3) * 4;
        self.buf.resize(start + encoded_len, 0);
        let written = BASE64.encode_slice(bytes, &mut self.buf[start..]).unwrap_or(0);
        self.buf.truncate(start + written);
        self.buf.push(b'"');
        self
    }

    pub fn str_array<'s>(
        &mut self,
        key: &str,
        items: impl IntoIterator<Item = &'s str>,
    ) -> &mut Self {
        self.key(key);
        self.buf.push(b'[');
        for (i, s) in items.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            write_str(self.buf, s);
        }
        self.buf.push(b']');
        self
    }

    /// Writes a value produced by a closure (nested objects and arrays).
    pub fn raw(&mut self, key: &str, write: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        self.key(key);
        write(self.buf);
        self
    }

    /// Where the next member will be written in the buffer.
    pub fn position(&self) -> usize {
        self.buf.len()
    }

    /// Appends members written before into this buffer, at `start..end` (see
    /// [`Obj::position`]; they begin with their comma).
    pub fn members_copied(&mut self, (start, end): (usize, usize)) -> &mut Self {
        self.first = false;
        if start <= end && end <= self.buf.len() {
            self.buf.extend_from_within(start..end);
        }
        self
    }

    /// Appends members written before (they begin with their comma).
    pub fn members(&mut self, written: &[u8]) -> &mut Self {
        self.first = false;
        self.buf.extend_from_slice(written);
        self
    }

    /// Closes the object and ends the line.
    pub fn end(&mut self) {
        self.buf.extend_from_slice(b"}\n");
    }
}

/// A JSON string with exactly the escapes serde_json writes (`\"`, `\\`, `\b`, `\f`,
/// `\n`, `\r`, `\t`, other C0 controls as `\u00xx`).
///
/// Hand-written because payload text dominates JSON output: runs that need no escape are
/// found eight bytes at a time (SWAR) and copied whole, which is several times faster than
/// serde_json's byte-at-a-time loop on long text.
pub fn write_str(buf: &mut Vec<u8>, s: &str) {
    write_utf8(buf, s.as_bytes());
}

/// [`write_str`] of bytes that are UTF-8 (bytes at or above 0x80 are copied as they are).
fn write_utf8(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.reserve(bytes.len() + 2);
    buf.push(b'"');
    // Most strings of a record (its kind, addresses, names) need no escape at all: copied
    // whole, they skip the block below, whose zeroing cost more than their bytes.
    let (plain, bytes) = bytes.split_at(plain_prefix(bytes).min(bytes.len()));
    buf.extend_from_slice(plain);
    if bytes.is_empty() {
        buf.push(b'"');
        return;
    }
    // Eight bytes at a time: each word is stored whole, and each byte in it to escape takes
    // its escape in its slot, with the rest of the word stored again after the escape. JSON
    // text payloads have a quote every few bytes, so an escape costs a shift and two stores,
    // with no reload and no new mask. Output is assembled on the stack and appended in
    // blocks, so that the vector's length and capacity are not checked per byte.
    const ROOM: usize = 512;
    // Room left for one word: eight escapes of up to 6 bytes, and a store's overhang.
    const STEP: usize = 64;
    let mut block = [0u8; ROOM];
    let mut n = 0;
    let mut i = 0;
    while let Some(word) = bytes.get(i..i + 8) {
        if n > ROOM - STEP {
            buf.extend_from_slice(&block[..n.min(ROOM)]);
            n = 0;
        }
        let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        put_word(&mut block, n, word);
        i += 8;
        let mut mask = escape_mask(word);
        // Bytes of the word already placed before `n`.
        let mut placed = 0;
        while mask != 0 {
            let bit = mask.trailing_zeros();
            let k = bit / 8;
            let b = (word >> (bit - 7)) as u8;
            n += (k - placed) as usize;
            // Quotes and backslashes are nearly all of the escapes in text: one predictable
            // test instead of a jump table.
            if b >= 0x20 {
                if let Some(dst) = block.get_mut(n..n + 2) {
                    dst.copy_from_slice(&[b'\\', b]);
                }
                n += 2;
            } else {
                n += escape_into(&mut block, n, b);
            }
            placed = k + 1;
            if placed < 8 {
                put_word(&mut block, n, word >> (8 * placed));
            }
            mask &= mask - 1;
        }
        n += (8 - placed) as usize;
    }
    for &b in bytes.get(i..).unwrap_or_default() {
        if n > ROOM - STEP {
            buf.extend_from_slice(&block[..n.min(ROOM)]);
            n = 0;
        }
        n += escape_into(&mut block, n, b);
    }
    buf.extend_from_slice(&block[..n.min(ROOM)]);
    buf.push(b'"');
}

/// How many bytes `bytes` begins with that need no escape, found a word at a time.
fn plain_prefix(bytes: &[u8]) -> usize {
    let mut i = 0;
    while let Some(word) = bytes.get(i..i + 8) {
        let mask = escape_mask(u64::from_le_bytes(word.try_into().unwrap_or([0; 8])));
        if mask != 0 {
            return i + (mask.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    let tail = bytes.get(i..).unwrap_or_default();
    i + tail.iter().take_while(|&&b| b >= 0x20 && b != b'"' && b != b'\\').count()
}

/// Stores the eight bytes of `word` at `out[at..]` (the caller leaves room).
#[inline]
fn put_word(out: &mut [u8], at: usize, word: u64) {
    if let Some(dst) = out.get_mut(at..at + 8) {
        dst.copy_from_slice(&word.to_le_bytes());
    }
}

/// Writes `b`, escaped if need be, at `out[at..]`; returns how many bytes that took (the
/// caller leaves six bytes of room per input byte).
#[inline]
fn escape_into(out: &mut [u8], at: usize, b: u8) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0x08 => b'b',
        0x0c => b'f',
        0..=0x1f => {
            let seq =
                [b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]];
            if let Some(dst) = out.get_mut(at..at + 6) {
                dst.copy_from_slice(&seq);
            }
            return 6;
        }
        _ => {
            if let Some(dst) = out.get_mut(at) {
                *dst = b;
            }
            return 1;
        }
    };
    if let Some(dst) = out.get_mut(at..at + 2) {
        dst.copy_from_slice(&[b'\\', short]);
    }
    2
}

/// Decimal digits of `v`. Most numbers of a record (opcodes, stream numbers, header fields)
/// are below 100: written in place, they skip itoa's buffer and the copy out of it.
fn write_u64(buf: &mut Vec<u8>, v: u64) {
    match v {
        0..=9 => buf.push(b'0' + v as u8),
        10..=99 => buf.extend_from_slice(&[b'0' + (v / 10) as u8, b'0' + (v % 10) as u8]),
        _ => buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
    }
}

/// A finite float with a fixed, shortest round-trip form; non-finite as null.
pub fn write_f64(buf: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let _ = write!(buf, "{}", (v * 1000.0).round() / 1000.0);
    } else {
        buf.extend_from_slice(b"null");
    }
}

/// Seconds since the epoch with micro- or nanosecond digits.
pub fn write_ts(buf: &mut Vec<u8>, ts: Timestamp, precision: TsPrecision) {
    let (secs, nanos) = if ts.secs < 0 && ts.nanos > 0 {
        // -1 s + 0.25 s is -0.75 s: print the magnitude with a sign.
        buf.push(b'-');
        ((-(ts.secs + 1)) as u64, 1_000_000_000 - ts.nanos)
    } else if ts.secs < 0 {
        buf.push(b'-');
        (ts.secs.unsigned_abs(), 0)
    } else {
        (ts.secs as u64, ts.nanos)
    };
    // By hand rather than through `core::fmt`: every record has a timestamp, and the
    // formatting machinery cost more than the digits.
    let nanos = nanos.min(999_999_999);
    let (fraction, digits) = match precision {
        TsPrecision::Micro => (nanos / 1000, 6),
        TsPrecision::Nano => (nanos, 9),
    };
    buf.extend_from_slice(itoa::Buffer::new().format(secs).as_bytes());
    buf.push(b'.');
    let mut text = [b'0'; 9];
    let mut rest = fraction;
    for d in text[..digits].iter_mut().rev() {
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    buf.extend_from_slice(&text[..digits]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_exactly_as_serde_json() {
        let mut samples: Vec<String> = vec![
            String::new(),
            "plain ascii text that is longer than eight bytes".into(),
            "quote \" backslash \\ newline \n tab \t cr \r bs \u{8} ff \u{c} esc \u{1b} nul \u{0}"
                .into(),
            "héllo wörld ✓ \u{202e} \u{7f} \u{9b} 😀".into(),
        ];
        for b in 0u8..0x80 {
            samples.push(format!("abcdefg{}hijklmnop", b as char));
            samples.push(format!("{}", b as char));
        }
        for s in samples {
            let mut ours = Vec::new();
            write_str(&mut ours, &s);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&s).unwrap(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn long_strings_with_dense_escapes_match_serde_json() {
        let alphabet = ["a", "\"", "\\", "\n", "\u{1}", "é", "😀", "\u{1f}", " ", "\u{7f}"];
        let mut state = 12345u32;
        for len in (0..200).chain([255, 256, 511, 512, 1000, 4097]) {
            let mut s = String::new();
            for _ in 0..len {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                s.push_str(alphabet[(state >> 16) as usize % alphabet.len()]);
            }
            let mut ours = Vec::new();
            write_str(&mut ours, &s);
            assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&s).unwrap());
        }
    }

    #[test]
    fn writes_a_flat_object() {
        let mut buf = Vec::new();
        Obj::new(&mut buf, "x")
            .u64("n", 42)
            .u64("n0", 0)
            .u64("n9", 9)
            .u64("n10", 10)
            .u64("n99", 99)
            .u64("n100", 100)
            .u64("max", u64::MAX)
            .str("s", "a\"b\n")
            .bool("b", true)
            .null("z")
            .base64("bytes", b"hello")
            .ts("ts", Timestamp::new(1, 5000), TsPrecision::Micro)
            .end();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "{\"type\":\"x\",\"n\":42,\"n0\":0,\"n9\":9,\"n10\":10,\"n99\":99,\"n100\":100,\"max\":18446744073709551615,\"s\":\"a\\\"b\\n\",\"b\":true,\"z\":null,\"bytes\":\"aGVsbG8=\",\"ts\":1.000005}\n"
        );
    }

    #[test]
    fn timestamps_keep_their_precision() {
        let mut buf = Vec::new();
        write_ts(&mut buf, Timestamp::new(1700000000, 123456789), TsPrecision::Nano);
        assert_eq!(buf, b"1700000000.123456789");
        buf.clear();
        write_ts(&mut buf, Timestamp::new(-1, 250_000_000), TsPrecision::Micro);
        assert_eq!(buf, b"-0.750000");
        for (ts, micro, nano) in [
            (Timestamp::new(0, 0), "0.000000", "0.000000000"),
            (Timestamp::new(5, 7), "5.000000", "5.000000007"),
            (Timestamp::new(5, 999_999_999), "5.999999", "5.999999999"),
            (Timestamp::new(-3, 0), "-3.000000", "-3.000000000"),
            (
                Timestamp::new(i64::MAX, 1_000),
                "9223372036854775807.000001",
                "9223372036854775807.000001000",
            ),
        ] {
            for (precision, want) in [(TsPrecision::Micro, micro), (TsPrecision::Nano, nano)] {
                buf.clear();
                write_ts(&mut buf, ts, precision);
                assert_eq!(String::from_utf8_lossy(&buf), want);
            }
        }
    }
}
