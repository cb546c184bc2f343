//! Recognising WebSocket frames without a handshake (mid-stream captures, after a gap).
//!
//! A run of consecutive frame headers whose fields are all plausible, with payload lengths
//! that chain exactly from one header to the next, is strong evidence of framing; random
//! bytes rarely chain twice.

use super::frame::FrameHeader;
use super::opcode::OpCode;

/// Payload lengths above this are not plausible for a frame found by sniffing.
const MAX_PLAUSIBLE_LEN: u64 = 16 << 20;

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

/// Counts plausible frames chained from the start of `buf` (at most `max_frames`). A last
/// frame running past the end counts as plausible, with `ends_exactly` false.
pub fn frame_run(buf: &[u8], masked: Option<bool>, max_frames: usize) -> FrameRun {
    let mut at = 0usize;
    let mut frames = 0;
    while frames < max_frames && at < buf.len() {
        let Some(h) = buf.get(at..).and_then(FrameHeader::parse) else { break };
        if !plausible(&h, masked) {
            break;
        }
        // Sender consistency: every frame of one direction is masked alike.
        let masked_now = Some(h.mask.is_some());
        let end = (at as u64).saturating_add(u64::from(h.header_len)).saturating_add(h.payload_len);
        frames += 1;
        if end > buf.len() as u64 {
            return FrameRun { frames, bytes: at, ends_exactly: false };
        }
        at = end as usize;
        if masked.is_none() {
            return frame_run_tail(buf, at, masked_now, frames, max_frames);
        }
    }
    FrameRun { frames, bytes: at, ends_exactly: at == buf.len() && frames > 0 }
}

fn frame_run_tail(
    buf: &[u8],
    at: usize,
    masked: Option<bool>,
    frames: usize,
    max_frames: usize,
) -> FrameRun {
    let rest =
        frame_run(buf.get(at..).unwrap_or_default(), masked, max_frames.saturating_sub(frames));
    FrameRun {
        frames: frames + rest.frames,
        bytes: at + rest.bytes,
        ends_exactly: if rest.frames == 0 { at == buf.len() } else { rest.ends_exactly },
    }
}

/// The first offset from which WebSocket framing plausibly starts: at least two chained
/// frames, or one frame ending exactly at the end of `buf`. Offset 0 is preferred.
pub fn find_frame_start(buf: &[u8], masked: Option<bool>) -> Option<usize> {
    let limit = buf.len().min(64 << 10);
    (0..limit).find(|&at| {
        let run = frame_run(&buf[at..], masked, 2);
        run.frames >= 2 || (run.frames == 1 && run.ends_exactly)
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
        assert_eq!(find_frame_start(&[0x16, 0x03, 0x01, 0x00, 0xa5, 0x01], None), None);
    }
}
