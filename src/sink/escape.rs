//! Terminal-safe text: payloads are written by whoever is on the other end of a connection,
//! so nothing they contain may move the cursor, change colours or reorder text on screen.

use std::fmt::Write;

/// Escapes control characters (C0, DEL, C1), bidi overrides/isolates and other invisible
/// formatting characters as `\n`, `\t`, `\xNN` or `\u{NNNN}`; everything else is kept.
pub fn escape_text(s: &str, out: &mut String) {
    let mut unlimited = usize::MAX;
    escape_str_limited(s, &mut unlimited, out);
}

/// [`escape_text`] of `s`, stopping once `left` characters are written (`left` counts down);
/// says whether it stopped short.
fn escape_str_limited(s: &str, left: &mut usize, out: &mut String) -> bool {
    // Printable ASCII is copied in runs; everything else goes through the character match.
    let mut rest = s;
    while !rest.is_empty() {
        let plain = rest.bytes().take_while(|&b| (0x20..0x7f).contains(&b) && b != b'\\').count();
        if plain > *left {
            out.push_str(&rest[..*left]);
            *left = 0;
            return true;
        }
        out.push_str(&rest[..plain]);
        *left -= plain;
        rest = &rest[plain..];
        let Some(c) = rest.chars().next() else { break };
        rest = &rest[c.len_utf8()..];
        let at = out.len();
        escape_char(c, out);
        if keep_within(out, at, left) {
            return true;
        }
    }
    false
}

/// Counts what was written to `out` from `at` against `left`; cuts it to what fits and says
/// so when it does not.
fn keep_within(out: &mut String, at: usize, left: &mut usize) -> bool {
    let written = out[at..].chars().count();
    if written <= *left {
        *left -= written;
        return false;
    }
    let end = out[at..].char_indices().nth(*left).map_or(out.len(), |(i, _)| at + i);
    out.truncate(end);
    *left = 0;
    true
}

fn escape_char(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\\' => out.push_str("\\\\"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if is_invisible_or_control(c) => {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// Escapes arbitrary bytes: valid UTF-8 runs as [`escape_text`], other bytes as `\xNN`.
pub fn escape_bytes(bytes: &[u8], out: &mut String) {
    escape_bytes_limited(bytes, usize::MAX, out);
}

/// Appends the first `limit` characters of what [`escape_bytes`] makes of `bytes`, and says
/// whether it made more: a preview escapes only what it shows.
pub fn escape_bytes_limited(bytes: &[u8], limit: usize, out: &mut String) -> bool {
    let mut left = limit;
    // Payload text is nearly always valid: checked whole (SIMD), it is one chunk;
    // `utf8_chunks` walks it byte by byte.
    let (valid, tail) = match simdutf8::compat::from_utf8(bytes) {
        Ok(text) => (text, &[][..]),
        Err(e) => (
            simdutf8::basic::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
            &bytes[e.valid_up_to()..],
        ),
    };
    let first = std::iter::once((valid, &[][..]));
    let rest = tail.utf8_chunks().map(|c| (c.valid(), c.invalid()));
    for (valid, invalid) in first.chain(rest) {
        if escape_str_limited(valid, &mut left, out) {
            return true;
        }
        for b in invalid {
            let at = out.len();
            let _ = write!(out, "\\x{b:02x}");
            if keep_within(out, at, &mut left) {
                return true;
            }
        }
    }
    false
}

fn is_invisible_or_control(c: char) -> bool {
    matches!(c as u32,
        0x80..=0x9f            // C1 controls (CSI is 0x9b)
        | 0x200b..=0x200f      // zero-width, LRM, RLM
        | 0x2028..=0x202e      // separators, bidi embeddings and overrides
        | 0x2060..=0x2069      // word joiner, bidi isolates
        | 0xfeff               // BOM / zero-width no-break space
        | 0xfff9..=0xfffb      // interlinear annotations
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        let mut out = String::new();
        escape_text(s, &mut out);
        out
    }

    #[test]
    fn runs_of_plain_text_escape_as_character_by_character() {
        let samples =
            ["", "plain", "a\\b", "\u{1b}[2Jx", "naïve \u{202e}txt\u{9b}", "\n\n", "é", "x\u{7f}"];
        for s in samples {
            let mut want = String::new();
            for c in s.chars() {
                escape_char(c, &mut want);
            }
            assert_eq!(esc(s), want, "{s:?}");
        }
    }

    #[test]
    fn limited_escaping_is_the_cut_of_the_whole() {
        let samples: [&[u8]; 8] = [
            b"",
            b"plain ascii text",
            "naïve \u{202e}txt\u{9b} ✓ 日本語".as_bytes(),
            b"a\\b\n\tc\x1b[2J",
            b"ok\xff\x00\xe6\x97",
            b"\xe6\x97\xa5\xe6",
            b"\x7f\x7f\x7f",
            "😀😀😀😀x\u{200b}y".as_bytes(),
        ];
        for bytes in samples {
            // Reference: character by character, each invalid byte as `\xNN`.
            let mut whole = String::new();
            for chunk in bytes.utf8_chunks() {
                chunk.valid().chars().for_each(|c| escape_char(c, &mut whole));
                for b in chunk.invalid() {
                    let _ = write!(whole, "\\x{b:02x}");
                }
            }
            let mut all = String::new();
            escape_bytes(bytes, &mut all);
            assert_eq!(all, whole, "{bytes:?}");
            for limit in 0..whole.chars().count() + 2 {
                let mut got = String::from("prefix ");
                let cut = escape_bytes_limited(bytes, limit, &mut got);
                let want: String = whole.chars().take(limit).collect();
                assert_eq!(got, format!("prefix {want}"), "{bytes:?} {limit}");
                assert_eq!(cut, whole.chars().count() > limit, "{bytes:?} {limit}");
            }
        }
    }

    #[test]
    fn escapes_terminal_controls_and_bidi() {
        assert_eq!(esc("hi\x1b[31mred"), "hi\\x1b[31mred");
        assert_eq!(esc("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(esc("x\u{9b}2J"), "x\\u{009b}2J");
        assert_eq!(esc("tab\there\nline"), "tab\\there\\nline");
        assert_eq!(esc("héllo ✓"), "héllo ✓");
        let mut out = String::new();
        escape_bytes(b"ok\xff\x00", &mut out);
        assert_eq!(out, "ok\\xff\\x00");
    }
}
