//! Recognising WebSocket frames without a handshake (mid-stream captures, after a gap).
//!
//! A run of consecutive frame headers whose fields are all plausible, with payload lengths
//! that chain exactly from one header to the next, is strong evidence of framing; random
//! bytes rarely chain twice.

use super::frame::FrameHeader;
use super::mask::apply_mask;
use super::opcode::OpCode;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Payload lengths above this are not plausible for a frame found by sniffing.
const MAX_PLAUSIBLE_LEN: u64 = 16 << 20;
/// A run this long is convincing even if it does not end at the buffer's end.
const LONG_RUN: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRun {
    /// Plausible frames in a row from the start.
    pub frames: usize,
    /// Bytes they cover (up to the end of the last complete one).
    pub bytes: usize,
    /// The last frame ends exactly at the end of the buffer.
    pub ends_exactly: bool,
}

fn plausible(h: &FrameHeader, masked: Option<bool>) -> bool {
    !matches!(h.opcode, OpCode::Reserved(_))
        && h.rsv & 0b011 == 0
        && !(h.opcode.is_control() && (h.payload_len > 125 || !h.fin || h.rsv != 0))
        && !h.non_minimal
        && !h.msb_set
        && masked.is_none_or(|m| m == h.mask.is_some())
        && h.payload_len <= MAX_PLAUSIBLE_LEN
}

/// What a complete frame's payload must look like: final uncompressed text is UTF-8 and a
/// close frame carries nothing or a code from the ranges peers use.
fn payload_plausible(h: &FrameHeader, payload: &[u8]) -> bool {
    // Only a prefix is looked at, so that scanning stays linear in the buffer.
    let mut head = [0u8; 256];
    let n = payload.len().min(head.len());
    head[..n].copy_from_slice(&payload[..n]);
    if let Some(key) = h.mask {
        apply_mask(&mut head[..n], key, 0);
    }
    let head = &head[..n];
    match h.opcode {
        OpCode::Text if h.fin && h.rsv == 0 => match std::str::from_utf8(head) {
            Ok(_) => true,
            // A character cut by the end of the prefix is not an error.
            Err(e) => e.error_len().is_none() && n < payload.len(),
        },
        OpCode::Close => match head {
            [] => true,
            [a, b, ..] => matches!(u16::from_be_bytes([*a, *b]), 1000..=1014 | 3000..=4999),
            [_] => false,
        },
        _ => true,
    }
}

/// Counts plausible frames chained from the start of `buf` (at most `max_frames`). A last
/// frame running past the end counts as plausible, with `ends_exactly` false. Every frame
/// of the run is masked alike, as one sender's frames are.
pub fn frame_run(buf: &[u8], masked: Option<bool>, max_frames: usize) -> FrameRun {
    frame_run_until(buf, masked, max_frames).0
}

/// [`frame_run`], and the buffer length from which a longer buffer (with `buf` as its prefix)
/// may give a different answer; `None` when no amount of further bytes changes it.
fn frame_run_until(
    buf: &[u8],
    masked: Option<bool>,
    max_frames: usize,
) -> (FrameRun, Option<usize>) {
    let mut at = 0usize;
    let mut frames = 0;
    let mut masked = masked;
    // Whether a fragmented message is open; unknown before the first data frame.
    let mut in_message: Option<bool> = None;
    while frames < max_frames && at < buf.len() {
        let Some(h) = buf.get(at..).and_then(FrameHeader::parse) else {
            // The header is cut by the end: its length is known from its second byte.
            let need = match buf.get(at + 1) {
                None => 2,
                Some(b1) => {
                    2 + [0, 2, 8][usize::from((b1 & 0x7f).saturating_sub(125))]
                        + 4 * usize::from(b1 >> 7)
                }
            };
            return (FrameRun { frames, bytes: at, ends_exactly: false }, Some(at + need));
        };
        if !plausible(&h, masked) {
            break;
        }
        match h.opcode {
            OpCode::Continuation => {
                // Zero bytes read as endless empty continuations; peers never send those.
                if in_message == Some(false) || (h.payload_len == 0 && !h.fin) {
                    break;
                }
                in_message = Some(!h.fin);
            }
            OpCode::Text | OpCode::Binary => {
                if in_message == Some(true) {
                    break;
                }
                in_message = Some(!h.fin);
            }
            _ => {}
        }
        masked = Some(h.mask.is_some());
        let body = at + usize::from(h.header_len);
        let end = (body as u64).saturating_add(h.payload_len);
        if end > buf.len() as u64 {
            frames += 1;
            // `end` is at most MAX_PLAUSIBLE_LEN past `body`.
            let until = usize::try_from(end).unwrap_or(usize::MAX);
            return (FrameRun { frames, bytes: at, ends_exactly: false }, Some(until));
        }
        if !payload_plausible(&h, buf.get(body..end as usize).unwrap_or_default()) {
            break;
        }
        frames += 1;
        at = end as usize;
    }
    let run = FrameRun { frames, bytes: at, ends_exactly: at == buf.len() && frames > 0 };
    // A run that reached the end of the buffer goes on with the next byte.
    (run, (at == buf.len()).then_some(buf.len() + 1))
}

/// Offsets past 0 are looked at only this far into a buffer.
const SCAN_LIMIT: usize = 64 << 10;

/// Whether a run from offset 0 is enough.
fn accepted_at_zero(run: &FrameRun) -> bool {
    run.frames >= 2 || (run.frames == 1 && run.ends_exactly)
}

/// Whether a run from an offset past 0 is enough.
fn accepted_later(run: &FrameRun) -> bool {
    run.frames >= 3 && (run.ends_exactly || run.frames == LONG_RUN)
}

/// The first offset from which WebSocket framing plausibly starts. At offset 0 (a segment
/// boundary, where peers' writes begin) two chained frames, or one frame filling the buffer
/// exactly, will do; anywhere else random bytes chain by chance too often, so three frames
/// chained to the exact end of the buffer are needed.
///
/// This looks at every offset; a buffer that grows a segment at a time is searched with a
/// [`FrameScan`], which gives the same answers in time linear in the buffer.
pub fn find_frame_start(buf: &[u8], masked: Option<bool>) -> Option<usize> {
    if accepted_at_zero(&frame_run(buf, masked, 2)) {
        return Some(0);
    }
    let limit = buf.len().min(SCAN_LIMIT);
    (1..limit).find(|&at| accepted_later(&frame_run(&buf[at..], masked, LONG_RUN)))
}

/// [`find_frame_start`] over a buffer that grows at its end between calls (bytes held while
/// looking for a frame boundary). Calling `find_frame_start` on each longer buffer would look at
/// every offset again, quadratic in the buffer when it grows by small segments; this looks at
/// an offset again only once the buffer has reached the length at which its answer may change.
///
/// Each call must pass the buffer of the previous call with bytes appended, and the same
/// `masked`; call [`FrameScan::reset`] when the buffer is emptied or replaced.
#[derive(Debug, Default)]
pub struct FrameScan {
    /// Offsets `1..scanned` have been looked at.
    scanned: usize,
    /// Offsets whose answer may change, by the buffer length at which it may (both below
    /// `SCAN_LIMIT` plus a plausible frame, so `u32` keeps this small).
    waiting: BinaryHeap<Reverse<(u32, u32)>>,
    /// The first offset whose run is long enough whatever follows.
    settled: Option<usize>,
    /// Offsets looked at, for tests of the work done.
    #[cfg(test)]
    looks: usize,
}

impl FrameScan {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn reset(&mut self) {
        self.scanned = 0;
        self.waiting.clear();
        self.settled = None;
        #[cfg(test)]
        {
            self.looks = 0;
        }
    }

    /// The same answer as `find_frame_start(buf, masked)`.
    pub fn find(&mut self, buf: &[u8], masked: Option<bool>) -> Option<usize> {
        if accepted_at_zero(&frame_run(buf, masked, 2)) {
            return Some(0);
        }
        let mut found = self.settled;
        let mut look = |at: usize, waiting: &mut BinaryHeap<Reverse<(u32, u32)>>| {
            #[cfg(test)]
            {
                self.looks += 1;
            }
            let (run, until) = frame_run_until(&buf[at..], masked, LONG_RUN);
            let accepted = accepted_later(&run);
            match until.map(|n| (u32::try_from(at + n), u32::try_from(at))) {
                Some((Ok(until), Ok(at))) => waiting.push(Reverse((until, at))),
                // Past 4 GiB: a buffer never grows that far.
                Some(_) => {}
                None if accepted => self.settled = Some(self.settled.map_or(at, |s| s.min(at))),
                None => {}
            }
            if accepted {
                found = Some(found.map_or(at, |f| f.min(at)));
            }
        };
        while let Some(&Reverse((until, at))) = self.waiting.peek() {
            if until as usize > buf.len() {
                break;
            }
            self.waiting.pop();
            look(at as usize, &mut self.waiting);
        }
        let limit = buf.len().min(SCAN_LIMIT);
        for at in self.scanned.max(1)..limit {
            look(at, &mut self.waiting);
        }
        self.scanned = self.scanned.max(limit);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked_text(s: &[u8]) -> Vec<u8> {
        let mut f = vec![0x81, 0x80 | s.len() as u8, 0, 0, 0, 0];
        f.extend_from_slice(s);
        f
    }

    #[test]
    fn finds_frames_after_garbage() {
        let mut buf: Vec<u8> = (0..37u8).map(|i| i.wrapping_mul(97) | 0x70).collect();
        for m in [&b"one"[..], b"two", b"three"] {
            buf.extend(masked_text(m));
        }
        assert_eq!(find_frame_start(&buf, Some(true)), Some(37));
        let run = frame_run(&buf[37..], Some(true), 10);
        assert_eq!(run, FrameRun { frames: 3, bytes: buf.len() - 37, ends_exactly: true });
    }

    #[test]
    fn prefers_offset_zero_and_respects_masking() {
        let buf = [0x81, 0x02, b'h', b'i', 0x82, 0x01, 0xff];
        assert_eq!(find_frame_start(&buf, Some(false)), Some(0));
        assert_eq!(find_frame_start(&buf, Some(true)), None);
        let run = frame_run(&buf, None, 10);
        assert!(run.ends_exactly && run.frames == 2);
    }

    #[test]
    fn rejects_implausible_headers() {
        assert_eq!(frame_run(&[0x83, 0x00], None, 4).frames, 0);
        assert_eq!(frame_run(&[0xa1, 0x00], None, 4).frames, 0); // RSV2
        assert_eq!(frame_run(&[0x09, 0x00], None, 4).frames, 0); // fragmented ping
        assert_eq!(frame_run(&[0x81, 0x7e, 0x00, 0x05], None, 4).frames, 0);
        assert_eq!(find_frame_start(b"SSH-2.0-OpenSSH_9.6\r\n", None), None);
        assert_eq!(find_frame_start(&[0u8; 64], None), None, "zero padding");
        // Fragments must follow each other: no text frame inside an open message.
        assert_eq!(frame_run(&[0x01, 0x01, b'a', 0x81, 0x01, b'b'], None, 4).frames, 1);
        assert_eq!(frame_run(&[0x01, 0x01, b'a', 0x80, 0x01, b'b'], None, 4).frames, 2);
        // Text that is not UTF-8, and close codes nobody sends.
        assert_eq!(frame_run(&[0x81, 0x02, 0xff, 0xfe], None, 4).frames, 0);
        assert_eq!(frame_run(&[0x88, 0x02, 0x00, 0x01], None, 4).frames, 0);
        assert_eq!(find_frame_start(&[0x16, 0x03, 0x01, 0x00, 0xa5, 0x01], None), None);
    }

    /// Feeds `buf` to a [`FrameScan`] in pieces of `step` bytes; checks every answer against
    /// [`find_frame_start`] when `check`; returns the answers and the offsets looked at.
    fn grow(
        buf: &[u8],
        step: usize,
        masked: Option<bool>,
        check: bool,
    ) -> (Vec<Option<usize>>, usize) {
        let mut scan = FrameScan::new();
        let mut answers = Vec::new();
        let mut end = 0;
        while end < buf.len() {
            end = (end + step).min(buf.len());
            let got = scan.find(&buf[..end], masked);
            if check {
                assert_eq!(
                    got,
                    find_frame_start(&buf[..end], masked),
                    "prefix {end} of {buf:02x?}"
                );
            }
            answers.push(got);
        }
        (answers, scan.looks)
    }

    #[test]
    fn incremental_search_gives_the_same_answers() {
        let mut buf: Vec<u8> = (0..37u8).map(|i| i.wrapping_mul(97) | 0x70).collect();
        for m in [&b"one"[..], b"two", b"three", b"four"] {
            buf.extend(masked_text(m));
        }
        for step in 1..12 {
            for masked in [None, Some(true), Some(false)] {
                grow(&buf, step, masked, true);
            }
        }
        // A frame that runs past the end is looked at again once it is complete.
        let mut buf = vec![0x83, 0x82, 0x7e, 0x01, 0x00];
        buf.extend(std::iter::repeat_n(7, 256));
        buf.extend([0x82, 0x00, 0x82, 0x01, 9]);
        let (answers, _) = grow(&buf, 3, Some(false), true);
        assert_eq!(answers.last(), Some(&Some(1)));
    }

    /// Regression: a buffer growing by tiny segments was searched from every offset again at
    /// each segment, so 64 KiB of held bytes arriving a byte at a time took 2^31 frame runs
    /// (22 s for a 4.6 MB capture of 1-byte segments carrying no frames).
    #[test]
    fn incremental_search_is_linear() {
        let mut x = 0x2545_f491u32;
        let random: Vec<u8> = (0..SCAN_LIMIT)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let patterns: [Vec<u8>; 3] = [
            vec![0x83; SCAN_LIMIT],
            random,
            // Every fourth offset a plausible header whose payload runs past the end.
            [0x02, 0x7e, 0xff, 0xf0].repeat(SCAN_LIMIT / 4),
        ];
        for buf in &patterns {
            for step in [1, 7] {
                for masked in [None, Some(false)] {
                    let (_, looks) = grow(buf, step, masked, false);
                    assert!(looks <= 4 * buf.len(), "{looks} looks for {} bytes", buf.len());
                }
            }
        }
    }

    proptest::proptest! {
        /// Bytes that often look like frame headers, grown in any steps: the same answers as a
        /// search of each prefix from scratch.
        #[test]
        fn incremental_search_equals_a_fresh_search(
            bytes in proptest::collection::vec(proptest::sample::select(vec![
                0x00u8, 0x01, 0x02, 0x03, 0x08, 0x09, 0x0a, 0x80, 0x81, 0x82, 0x88, 0x89, 0x8a,
                0xc1, 0x7e, 0x7f, 0x05, b'a', 0xff, 0x03, 0xe8,
            ]), 0..300),
            step in 1usize..9,
            masked in proptest::option::of(proptest::bool::ANY),
        ) {
            grow(&bytes, step, masked, true);
        }
    }
}
