//! Recognising WebSocket frames without a handshake (mid-stream captures, after a gap).
//!
//! A run of consecutive frame headers whose fields are all plausible, with payload lengths
//! that chain exactly from one header to the next, is strong evidence of framing; random
//! bytes rarely chain twice.

use super::frame::FrameHeader;
use super::mask::apply_mask;
use super::opcode::OpCode;

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
    let mut at = 0usize;
    let mut frames = 0;
    let mut masked = masked;
    // Whether a fragmented message is open; unknown before the first data frame.
    let mut in_message: Option<bool> = None;
    while frames < max_frames && at < buf.len() {
        let Some(h) = buf.get(at..).and_then(FrameHeader::parse) else { break };
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
            return FrameRun { frames, bytes: at, ends_exactly: false };
        }
        if !payload_plausible(&h, buf.get(body..end as usize).unwrap_or_default()) {
            break;
        }
        frames += 1;
        at = end as usize;
    }
    FrameRun { frames, bytes: at, ends_exactly: at == buf.len() && frames > 0 }
}

/// The first offset from which WebSocket framing plausibly starts. At offset 0 (a segment
/// boundary, where peers' writes begin) two chained frames, or one frame filling the buffer
/// exactly, will do; anywhere else random bytes chain by chance too often, so three frames
/// chained to the exact end of the buffer are needed.
pub fn find_frame_start(buf: &[u8], masked: Option<bool>) -> Option<usize> {
    let limit = buf.len().min(64 << 10);
    let at_zero = frame_run(buf, masked, 2);
    if at_zero.frames >= 2 || (at_zero.frames == 1 && at_zero.ends_exactly) {
        return Some(0);
    }
    (1..limit).find(|&at| {
        let run = frame_run(&buf[at..], masked, LONG_RUN);
        run.frames >= 3 && (run.ends_exactly || run.frames == LONG_RUN)
    })
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
}
