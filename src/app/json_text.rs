//! JSON text, checked and escaped a word at a time.
//!
//! Whether a text message is one JSON value is asked of every text message in the frames and
//! messages views. serde_json answers it (`from_slice::<IgnoredAny>`) a token at a time, which
//! was a fifth of the instructions of `--json` on the benchmark capture, more than inflating;
//! the check here accepts exactly what serde_json accepts (a differential test holds it to
//! that) and skips string contents eight bytes at a time. The same word test finds the bytes
//! that JSON output must escape. `--normalize` walks the records the writers made with the
//! same steps (`value_end`), and skips their strings, already known to be well formed, with
//! [`written_string_end`].

/// The high bit of each byte of `w` (little-endian) that is `"`, `\\` or below 0x20, and of no
/// other: exact, because no step carries from one byte into the next.
pub fn escape_mask(w: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    // (b & 0x7f) + 0x60 reaches 0x80 exactly when b & 0x7f >= 0x20.
    let below_0x20 = !(((w & LOW7) + ONES * 0x60) | w) & HIGH;
    below_0x20 | bytes_equal(w, b'"') | bytes_equal(w, b'\\')
}

/// Whether `text` is one JSON value (RFC 8259) with only whitespace around it: what
/// `serde_json::from_slice::<serde::de::IgnoredAny>` accepts. Nesting is unbounded (containers
/// are tracked on a heap stack, as serde_json does when ignoring a value).
pub fn is_json_text(text: &[u8]) -> bool {
    value_end(text, skip_ws(text, 0)).is_some_and(|end| skip_ws(text, end) == text.len())
}

/// The index after the one JSON value that starts at `i` (no whitespace before it), when
/// `text` holds a whole valid value there.
pub fn value_end(text: &[u8], mut i: usize) -> Option<usize> {
    let mut open: Vec<u8> = Vec::new();
    'value: loop {
        i = skip_ws(text, i);
        let &c = text.get(i)?;
        match c {
            b'{' | b'[' => {
                i = skip_ws(text, i + 1);
                let close = if c == b'{' { b'}' } else { b']' };
                if text.get(i) == Some(&close) {
                    i += 1;
                } else {
                    open.push(c);
                    if c == b'{' {
                        i = member_key(text, i)?;
                    }
                    continue 'value;
                }
            }
            b'"' => i = string_end(text, i + 1)?,
            b't' | b'f' | b'n' => {
                let word: &[u8] = match c {
                    b't' => b"true",
                    b'f' => b"false",
                    _ => b"null",
                };
                if !text.get(i..).is_some_and(|rest| rest.starts_with(word)) {
                    return None;
                }
                i += word.len();
            }
            b'-' | b'0'..=b'9' => i = number_end(text, i)?,
            _ => return None,
        }
        // A value is complete: close what it completes, or go on after a comma.
        loop {
            let Some(&top) = open.last() else { return Some(i) };
            i = skip_ws(text, i);
            match text.get(i) {
                Some(b',') => {
                    i += 1;
                    if top == b'{' {
                        i = member_key(text, skip_ws(text, i))?;
                    }
                    continue 'value;
                }
                Some(b']') if top == b'[' => {}
                Some(b'}') if top == b'{' => {}
                _ => return None,
            }
            open.pop();
            i += 1;
        }
    }
}

fn skip_ws(text: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = text.get(i) {
        i += 1;
    }
    i
}

/// A member's key and colon, from the key's opening quote; the index after the colon.
fn member_key(text: &[u8], i: usize) -> Option<usize> {
    if text.get(i) != Some(&b'"') {
        return None;
    }
    let j = skip_ws(text, string_end(text, i + 1)?);
    (text.get(j) == Some(&b':')).then_some(j + 1)
}

/// The index after a string's closing quote, from the byte after its opening one.
fn string_end(text: &[u8], mut i: usize) -> Option<usize> {
    loop {
        while let Some(word) = text.get(i..i + 8) {
            let word: [u8; 8] = word.try_into().unwrap_or([0; 8]);
            let mask = escape_mask(u64::from_le_bytes(word));
            if mask != 0 {
                i += (mask.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        match *text.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match *text.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' if text.get(i + 2..i + 6)?.iter().all(u8::is_ascii_hexdigit) => i += 6,
                _ => return None,
            },
            0..=0x1f => return None,
            _ => i += 1,
        }
    }
}

/// The index after the closing quote of a string, from the byte after its opening one, for
/// a string known to be well formed (one the writers made): its escapes are skipped, not
/// checked. Sixty-four bytes at a time, with the quotes and backslashes of a block gathered
/// into bit masks: JSON text inside a string has an escaped quote every few bytes, and
/// stopping at each one, as the checking scan does, took most of the time of `--normalize`.
pub fn written_string_end(text: &[u8], mut i: usize) -> Option<usize> {
    // Most strings of a record (its kind, endpoints, names) are short and have no escape:
    // the first words that hold a quote end them, before any block is gathered.
    let short_until = i.saturating_add(32);
    while let Some(word) = text.get(i..i + 8) {
        let w = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        let marks = bytes_equal(w, b'"') | bytes_equal(w, b'\\');
        if marks != 0 {
            let at = i + (marks.trailing_zeros() / 8) as usize;
            if text.get(at) == Some(&b'"') {
                return Some(at + 1);
            }
            // An escape: the blocks take over from this word, which ends no earlier escape.
            break;
        }
        i += 8;
        if i >= short_until {
            break;
        }
    }
    // Whether the block's first byte is escaped by a backslash ending the previous block.
    let mut carry = 0u64;
    loop {
        let rest = text.get(i..)?;
        if rest.is_empty() {
            return None;
        }
        let n = rest.len().min(64);
        let (quotes, backslashes) = match rest.first_chunk::<64>() {
            Some(block) => block_masks(block),
            None => {
                // The last bytes, padded with zeros (neither quotes nor backslashes).
                let mut block = [0u8; 64];
                block[..n].copy_from_slice(&rest[..n]);
                block_masks(&block)
            }
        };
        let escaped = escaped_bits(backslashes, &mut carry);
        let ends = quotes & !escaped;
        if ends != 0 {
            let at = ends.trailing_zeros() as usize;
            return (at < n).then_some(i + at + 1);
        }
        i += 64;
    }
}

/// Bit `k` set where byte `k` of the block is a quote, and where it is a backslash.
fn block_masks(block: &[u8; 64]) -> (u64, u64) {
    // One bit per byte: the high bits of a word's bytes gathered into its low eight bits.
    let gather = |m: u64| ((m >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56;
    let (mut quotes, mut backslashes) = (0u64, 0u64);
    for (k, word) in block.chunks_exact(8).enumerate() {
        let w = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        quotes |= gather(bytes_equal(w, b'"')) << (8 * k);
        backslashes |= gather(bytes_equal(w, b'\\')) << (8 * k);
    }
    (quotes, backslashes)
}

/// The high bit of each byte of `w` that is `b`, exactly (no carry between bytes).
fn bytes_equal(w: u64, b: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let x = w ^ (0x0101_0101_0101_0101 * u64::from(b));
    !(((x & LOW7) + LOW7) | x) & HIGH
}

/// The bits of the bytes a backslash escapes (the byte after each odd-length run of
/// backslashes), given the block's backslashes and whether the previous block ended in an
/// escaping backslash (`carry`, updated for the next block). simdjson's method.
fn escaped_bits(backslashes: u64, carry: &mut u64) -> u64 {
    const EVEN: u64 = 0x5555_5555_5555_5555;
    let backslashes = backslashes & !*carry;
    let follows_escape = (backslashes << 1) | *carry;
    let odd_starts = backslashes & !EVEN & !follows_escape;
    let (even_runs, overflow) = odd_starts.overflowing_add(backslashes);
    *carry = u64::from(overflow);
    let invert = even_runs << 1;
    (EVEN ^ invert) & follows_escape
}

/// The index after a number (`-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`).
fn number_end(text: &[u8], mut i: usize) -> Option<usize> {
    let digits = |mut i: usize| {
        while let Some(b'0'..=b'9') = text.get(i) {
            i += 1;
        }
        i
    };
    if text.get(i) == Some(&b'-') {
        i += 1;
    }
    match text.get(i)? {
        b'0' if matches!(text.get(i + 1), Some(b'0'..=b'9')) => return None,
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(i + 1),
        _ => return None,
    }
    if text.get(i) == Some(&b'.') {
        let end = digits(i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if let Some(b'e' | b'E') = text.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = text.get(i) {
            i += 1;
        }
        let end = digits(i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_says(text: &[u8]) -> bool {
        serde_json::from_slice::<serde::de::IgnoredAny>(text).is_ok()
    }

    #[test]
    fn written_string_end_finds_the_quote_that_ends_the_string() {
        // Every string serde_json writes, at every offset into a longer text, with runs of
        // backslashes across the 64-byte blocks.
        let mut strings: Vec<String> = vec![
            String::new(),
            "a".into(),
            "\"".into(),
            "\\".into(),
            "\\\"".into(),
            "{\"type\":\"message\",\"id\":2908}".into(),
            "ü € 👍 \u{1} \n \t".into(),
        ];
        for n in 0..140 {
            strings.push("\\".repeat(n));
            strings.push(format!("{}\"{}", "x".repeat(n), "\\".repeat(n % 7)));
        }
        for s in &strings {
            let written = serde_json::to_string(s).unwrap();
            for pad in 0..70 {
                let text = format!("{}{written},\"k\":\"v\"", " ".repeat(pad));
                let want = pad + written.len();
                assert_eq!(written_string_end(text.as_bytes(), pad + 1), Some(want), "{text}");
                assert_eq!(string_end(text.as_bytes(), pad + 1), Some(want), "{text}");
            }
        }
        assert_eq!(written_string_end(b"\"abc", 1), None);
        assert_eq!(written_string_end(b"\"ab\\\"", 1), None);
        assert_eq!(written_string_end(b"\"", 1), None);
    }

    #[test]
    fn escape_mask_marks_exactly_the_bytes_to_escape() {
        let fillers =
            [0x00u8, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7f, 0x80, 0xa2, 0xff];
        for b in 0..=255u8 {
            for pos in 0..8 {
                for &f in &fillers {
                    let mut word = [f; 8];
                    word[pos] = b;
                    let want = word.iter().enumerate().fold(0u64, |m, (i, &x)| {
                        if x < 0x20 || x == b'"' || x == b'\\' {
                            m | 0x80 << (8 * i)
                        } else {
                            m
                        }
                    });
                    assert_eq!(escape_mask(u64::from_le_bytes(word)), want, "{word:02x?}");
                }
            }
        }
    }

    #[test]
    fn accepts_what_serde_json_accepts_on_chosen_texts() {
        let texts: &[&[u8]] = &[
            b"",
            b" ",
            b"0",
            b"-0",
            b"01",
            b"-",
            b"1.",
            b"1.5",
            b"1e",
            b"1e+",
            b"1E-7",
            b"-0.0e0",
            b"2.e3",
            b".5",
            b"+1",
            b"true",
            b"tru",
            b"truex",
            b"false",
            b"null",
            b"nul",
            b"[]",
            b"[ ]",
            b"[1,]",
            b"[,1]",
            b"[1 2]",
            b"[[[[]]]]",
            b"[[]",
            b"[]]",
            b"{}",
            b"{ }",
            b"{\"a\":1}",
            b"{\"a\" : [1, {\"b\": null}] }",
            b"{\"a\"}",
            b"{\"a\":}",
            b"{\"a\":1,}",
            b"{,}",
            b"{1:2}",
            b"{\"a\":1 \"b\":2}",
            b"\"\"",
            b"\"a\\\"b\"",
            b"\"\\u00e9\\uD83D\"",
            b"\"\\u00g9\"",
            b"\"\\x\"",
            b"\"tab\there\"",
            b"\"unterminated",
            b"\"\\",
            b"\" \\u12",
            b" \t\r\n[1]\r\n ",
            b"[1]\x0c",
            b"\x0c[1]",
            b"[1] [2]",
            b"\"caf\xc3\xa9 \xf0\x9f\x98\x80\"",
            b"[\"0123456789abcdef0123456789\\n\", \"x\"]",
            b"{\"k\":\"v\",\"k\":\"w\"}",
        ];
        for &t in texts {
            assert_eq!(is_json_text(t), serde_says(t), "{:?}", String::from_utf8_lossy(t));
        }
    }

    /// Random sequences of JSON fragments, and random byte changes of valid documents.
    #[test]
    fn accepts_what_serde_json_accepts_on_generated_texts() {
        let fragments: &[&[u8]] = &[
            b"{",
            b"}",
            b"[",
            b"]",
            b",",
            b":",
            b" ",
            b"\t",
            b"\n",
            b"\"",
            b"\"k\"",
            b"\"a b\"",
            b"\\",
            b"\\u",
            b"00e9",
            b"\\n",
            b"\\q",
            b"\x01",
            b"1",
            b"0",
            b"-",
            b".",
            b"5",
            b"e",
            b"E+",
            b"true",
            b"fals",
            b"null",
            b"x",
            b"\xc3\xa9",
            b"\"long string of plain text\"",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut yes, mut total) = (0, 0);
        for _ in 0..200_000 {
            let mut t = Vec::new();
            for _ in 0..(next() % 12) {
                t.extend_from_slice(fragments[(next() as usize) % fragments.len()]);
            }
            total += 1;
            yes += usize::from(serde_says(&t));
            assert_eq!(is_json_text(&t), serde_says(&t), "{:?}", String::from_utf8_lossy(&t));
        }
        let valid = br#"{"type":"message","id":2908,"tags":["a","b\n",{"x":[1.5e3,-0,true,null]}],"text":"p99 \u00e9 merge world, with a longer run of plain text"}"#;
        for _ in 0..100_000 {
            let mut t = valid.to_vec();
            for _ in 0..1 + next() % 2 {
                let at = (next() as usize) % t.len();
                t[at] = match next() % 3 {
                    0 => fragments[(next() as usize) % fragments.len()][0],
                    1 => t[at] ^ (1 << (next() % 7)),
                    _ => b' ',
                };
            }
            total += 1;
            yes += usize::from(serde_says(&t));
            assert_eq!(is_json_text(&t), serde_says(&t), "{:?}", String::from_utf8_lossy(&t));
        }
        // Both answers come up often.
        assert!(yes > total / 20 && yes < total * 19 / 20, "{yes} of {total}");
    }
}
