//! Incremental frame decoding for one direction of a connection.
//!
//! Shaped like tungstenite's frame codec, but streaming the payload: a header is collected
//! (at most 14 bytes are ever held), then payload bytes are handed on as they arrive, unmasked,
//! so a frame claiming 2^63 bytes never needs memory. Unmasked payload is passed through
//! without copying; masked payload is unmasked in a reused scratch buffer.

use super::frame::FrameHeader;
use super::mask::apply_mask;

/// Masked payload is unmasked in pieces of at most this many bytes.
const SCRATCH: usize = 64 << 10;

/// What the decoder found, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameEvent<'a> {
    Header(FrameHeader),
    /// A piece of the current frame's payload, unmasked.
    Payload(&'a [u8]),
    /// The current frame's payload is complete.
    End,
}

#[derive(Default)]
pub struct FrameDecoder {
    head: [u8; 14],
    head_len: usize,
    current: Option<FrameHeader>,
    /// Payload bytes of the current frame seen so far (delivered or skipped).
    offset: u64,
    scratch: Vec<u8>,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes all of `input`, reporting events through `on`.
    pub fn feed(&mut self, mut input: &[u8], on: &mut dyn FnMut(FrameEvent<'_>)) {
        while !input.is_empty() || self.empty_payload_pending() {
            match self.current {
                None => {
                    // Collect header bytes; parse as soon as they suffice.
                    let take = (self.head.len() - self.head_len).min(input.len());
                    self.head[self.head_len..self.head_len + take].copy_from_slice(&input[..take]);
                    let held = self.head_len + take;
                    match FrameHeader::parse(&self.head[..held]) {
                        None => {
                            self.head_len = held;
                            return;
                        }
                        Some(h) => {
                            let used_from_input =
                                usize::from(h.header_len).saturating_sub(self.head_len);
                            input = input.get(used_from_input..).unwrap_or_default();
                            self.head_len = 0;
                            self.current = Some(h);
                            self.offset = 0;
                            on(FrameEvent::Header(h));
                        }
                    }
                }
                Some(h) => {
                    let remaining = h.payload_len.saturating_sub(self.offset);
                    if remaining == 0 {
                        self.current = None;
                        on(FrameEvent::End);
                        continue;
                    }
                    let n = usize::try_from(remaining).unwrap_or(usize::MAX).min(input.len());
                    let (chunk, rest) = input.split_at(n);
                    input = rest;
                    match h.mask {
                        None => on(FrameEvent::Payload(chunk)),
                        Some(key) => {
                            for piece in chunk.chunks(SCRATCH) {
                                self.scratch.clear();
                                self.scratch.extend_from_slice(piece);
                                apply_mask(&mut self.scratch, key, self.offset);
                                self.offset += piece.len() as u64;
                                on(FrameEvent::Payload(&self.scratch));
                            }
                            self.offset -= chunk.len() as u64;
                        }
                    }
                    self.offset += chunk.len() as u64;
                    if self.offset == h.payload_len {
                        self.current = None;
                        on(FrameEvent::End);
                    }
                }
            }
        }
    }

    /// A header with an empty payload was just parsed: its End is due without more input.
    fn empty_payload_pending(&self) -> bool {
        self.current.is_some_and(|h| h.payload_len == self.offset)
    }

    /// Skips `len` payload bytes of the current frame that were never captured. Returns how
    /// many were skipped, or `None` when no payload is in progress (the framing is lost).
    /// Skipping never completes the frame: at least the last byte must arrive to end it.
    pub fn skip_payload(&mut self, len: u64) -> Option<u64> {
        let h = self.current?;
        let remaining = h.payload_len.saturating_sub(self.offset);
        if len >= remaining {
            return Some(0);
        }
        self.offset += len;
        Some(len)
    }

    /// Whether a frame's header or payload is incomplete.
    pub fn in_frame(&self) -> bool {
        self.current.is_some() || self.head_len > 0
    }

    /// Payload bytes of the current frame still to come.
    pub fn remaining(&self) -> u64 {
        self.current.map_or(0, |h| h.payload_len.saturating_sub(self.offset))
    }

    pub fn current_header(&self) -> Option<FrameHeader> {
        self.current
    }

    pub fn payload_offset(&self) -> u64 {
        self.offset
    }

    /// Drops any partial frame (after a gap the framing must be found again).
    pub fn reset(&mut self) {
        self.head_len = 0;
        self.current = None;
        self.offset = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::opcode::OpCode;

    #[derive(Debug, PartialEq, Eq)]
    enum Ev {
        H(OpCode, u64),
        P(Vec<u8>),
        E,
    }

    /// Feeds `pieces` and returns events with payload chunks merged.
    fn run(pieces: &[&[u8]]) -> Vec<Ev> {
        let mut d = FrameDecoder::new();
        let mut out: Vec<Ev> = Vec::new();
        for p in pieces {
            d.feed(p, &mut |ev| match ev {
                FrameEvent::Header(h) => out.push(Ev::H(h.opcode, h.payload_len)),
                FrameEvent::Payload(b) => {
                    if let Some(Ev::P(v)) = out.last_mut() {
                        v.extend_from_slice(b)
                    } else {
                        out.push(Ev::P(b.to_vec()))
                    }
                }
                FrameEvent::End => out.push(Ev::E),
            });
        }
        out
    }

    const FRAMES: &[&[u8]] = &[
        &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
        &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58],
        &[0x01, 0x03, 0x48, 0x65, 0x6c],
        &[0x80, 0x02, 0x6c, 0x6f],
        &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
        &[0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58],
        &[0x88, 0x00],
    ];

    #[test]
    fn every_split_position_gives_the_same_events() {
        for f in FRAMES {
            let whole = run(&[f]);
            assert!(matches!(whole.last(), Some(Ev::E)), "{f:?}");
            for cut in 0..=f.len() {
                assert_eq!(run(&[&f[..cut], &f[cut..]]), whole, "frame {f:?} cut at {cut}");
            }
        }
        assert_eq!(run(&[FRAMES[1]])[1], Ev::P(b"Hello".to_vec()));
    }

    #[test]
    fn many_frames_in_one_feed() {
        let all: Vec<u8> = FRAMES.concat();
        let evs = run(&[&all]);
        assert_eq!(evs.iter().filter(|e| **e == Ev::E).count(), FRAMES.len());
        let bytewise: Vec<&[u8]> = all.chunks(1).collect();
        assert_eq!(run(&bytewise), evs);
    }

    #[test]
    fn large_masked_frame_in_pieces() {
        let payload: Vec<u8> = (0..70000u32).map(|i| (i % 251) as u8).collect();
        let key = [1, 2, 3, 4];
        let mut frame = Vec::new();
        FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask: Some(key),
            payload_len: 70000,
            len_form: 64,
            header_len: 0,
            non_minimal: false,
            msb_set: false,
        }
        .encode(&mut frame);
        let mut masked = payload.clone();
        apply_mask(&mut masked, key, 0);
        frame.extend_from_slice(&masked);
        for size in [1, 7, 1000, 100_000] {
            let pieces: Vec<&[u8]> = frame.chunks(size).collect();
            let evs = run(&pieces);
            assert_eq!(evs[1], Ev::P(payload.clone()), "piece size {size}");
            assert_eq!(evs[2], Ev::E);
        }
    }

    #[test]
    fn huge_claimed_length_streams_without_buffering() {
        let mut d = FrameDecoder::new();
        let mut got = 0usize;
        d.feed(&[0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 9, 9, 9], &mut |ev| {
            if let FrameEvent::Payload(p) = ev {
                got += p.len()
            }
        });
        assert_eq!(got, 3);
        assert!(d.in_frame());
        assert_eq!(d.skip_payload(10), Some(10));
        assert_eq!(d.remaining(), (1u64 << 63) - 1 - 13);
        d.reset();
        assert!(!d.in_frame());
    }
}
