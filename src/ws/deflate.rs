//! permessage-deflate inflation (RFC 7692 §7.2.2) with bounded output.
//!
//! One raw-deflate stream per direction over flate2. A 15-bit window decodes data compressed
//! with any smaller window, so `*_max_window_bits` needs no special handling (and flate2's
//! `new_with_window_bits` would panic outside 9..=15). Output past the keep limit is still
//! inflated, into a fixed scratch buffer, so that the sliding window stays right for the next
//! message under context takeover; a hard output cap stops bombs.
//!
//! Under context takeover a message may refer back up to 32 KiB into what the sender sent
//! before (RFC 7692 §7.2.1), so a message lost to a TCP gap, sent before the capture began, or
//! not inflated leaves this side without part of that history. Inflating on over the old
//! window would turn such references into plausible garbage (tshark shows it as the text),
//! so the window is emptied instead: what remains is then always the latest part of the
//! sender's history, and a reference past it fails ("invalid distance too far back"), told
//! apart as [`InflateError::HistoryLost`] until 32 KiB inflated since then make it whole again.
//!
//! flate2's backend is zlib-ng: on the benchmark capture it inflated in 24 % fewer
//! instructions than zlib-rs (`conns`, 10 MB, callgrind: 202.2 M against 154.1 M in all),
//! and inflating is half the work of the views that print no payloads.

use flate2::{Decompress, FlushDecompress, Status};

/// The tail a sender removes from each compressed message (RFC 7692 §7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
const SCRATCH: usize = 32 << 10;
/// The farthest a deflate back-reference reaches (a 15-bit window).
const WINDOW: u64 = 32 << 10;
/// The least a message's buffer starts with; then eight times its input, which most text
/// does not inflate past (messages of the benchmark capture grew 5 to 8 times).
const FIRST_GUESS: usize = 4 << 10;
/// Spare room below which an output buffer is grown before inflating into it.
const MIN_SPARE: usize = 1 << 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InflateError {
    /// The compressed data is not valid deflate (or needs a context we do not have).
    Corrupt(String),
    /// The message refers back to history this side lost (see the module doc).
    HistoryLost,
    /// The message inflated past the output cap.
    Limit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InflateProgress {
    /// Bytes this message has inflated to so far (kept or not).
    pub produced: u64,
    /// Whether every produced byte is in the caller's buffer.
    pub kept_all: bool,
}

pub struct Inflater {
    z: Decompress,
    no_context_takeover: bool,
    produced: u64,
    max_output: u64,
    scratch: Vec<u8>,
    /// Whether this message produced bytes past the caller's keep limit.
    dropped: bool,
    /// A failed stream cannot continue (later pieces fail as it did); it is reset at the
    /// next message.
    failed: Option<InflateError>,
    /// Part of the sender's last 32 KiB of history is missing from the window, and how much
    /// has been inflated since the window was emptied for it.
    history_lost: bool,
    since_loss: u64,
    /// The message's data so far ended with a final block (BFINAL, RFC 7692 §7.2.3.3): the
    /// stream is over, and the tail the receiver appends is not part of it.
    ended: bool,
}

impl Inflater {
    pub fn new(no_context_takeover: bool) -> Inflater {
        Inflater {
            z: Decompress::new(false),
            no_context_takeover,
            produced: 0,
            max_output: u64::MAX,
            scratch: vec![0; SCRATCH],
            dropped: false,
            failed: None,
            history_lost: false,
            since_loss: 0,
            ended: false,
        }
    }

    /// An inflater for a stream already under way, whose history before now was not seen (a
    /// capture that starts after the handshake).
    pub fn joined_late(no_context_takeover: bool) -> Inflater {
        let mut inflater = Inflater::new(no_context_takeover);
        inflater.lose_history();
        inflater
    }

    /// Caps the current message's inflated size; past it `inflate` fails with `Limit`.
    pub fn set_max_output(&mut self, n: u64) {
        self.max_output = n;
    }

    /// Inflates a piece of the current message's compressed payload, appending to `out` while
    /// `out` holds fewer than `keep_limit` bytes.
    pub fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        keep_limit: usize,
    ) -> Result<InflateProgress, InflateError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.run(input, out, keep_limit);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    /// Ends the current message: feeds the removed tail, and resets the stream when the
    /// sender does not keep its context.
    pub fn finish_message(
        &mut self,
        out: &mut Vec<u8>,
        keep_limit: usize,
    ) -> Result<InflateProgress, InflateError> {
        let r = if let Some(e) = &self.failed {
            Err(e.clone())
        } else if self.ended {
            // A sender that ends messages with a final block removes no tail: none is fed.
            Ok(InflateProgress { produced: self.produced, kept_all: !self.dropped })
        } else {
            self.run(&TAIL, out, keep_limit)
        };
        self.ended = false;
        let kept_all = r.as_ref().map(|p| p.kept_all).unwrap_or(false);
        let produced = self.produced;
        if r.is_err() {
            // What the message would have added to the history is missing.
            self.lose_history();
        } else if self.no_context_takeover {
            self.reset();
        } else {
            self.produced = 0;
            self.dropped = false;
        }
        r.map(|_| InflateProgress { produced, kept_all })
    }

    /// Bytes the current message has inflated to so far, also after a failure.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// Starts over with an empty window, as the sender does (no context takeover, a final
    /// block).
    pub fn reset(&mut self) {
        self.z.reset(false);
        self.produced = 0;
        self.dropped = false;
        self.failed = None;
        self.ended = false;
        self.history_lost = false;
        self.since_loss = 0;
    }

    /// Starts over with an empty window because bytes the sender compressed were lost (a TCP
    /// gap, a message that could not be inflated): later messages that refer to them fail
    /// with [`InflateError::HistoryLost`] instead of inflating to garbage. A sender without
    /// context takeover starts each message afresh, so it loses nothing past this message.
    pub fn lose_history(&mut self) {
        self.reset();
        self.history_lost = !self.no_context_takeover;
    }

    fn run(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        keep_limit: usize,
    ) -> Result<InflateProgress, InflateError> {
        loop {
            let before_in = self.z.total_in();
            let before_out = self.z.total_out();
            let room = keep_limit.saturating_sub(out.len());
            let (status, offered) = if room > 0 {
                let start = out.len();
                // Into spare capacity: zeroing the room per call first cost more than
                // inflating small messages. Room left over from the last call is used first
                // (the message's 4-byte tail usually adds nothing, and reserving for it
                // copied every inflated message), then grown by at least as much again as
                // there is already.
                if out.capacity() - start < MIN_SPARE.min(room) {
                    let guess = FIRST_GUESS.max(input.len().saturating_mul(8)).max(start);
                    // No further than just past the inflate limit, which bounds memory.
                    let budget = self.max_output.saturating_sub(self.produced).saturating_add(1);
                    let budget = usize::try_from(budget).unwrap_or(usize::MAX);
                    out.reserve_exact(room.min(guess).min(budget));
                }
                let r = self.z.decompress_vec(input, out, FlushDecompress::Sync);
                if out.len() > start + room {
                    // The allocator gave more capacity than asked: keep no more than allowed.
                    out.truncate(start + room);
                    self.dropped = true;
                }
                (r, (out.capacity() - start).min(room))
            } else {
                let r = self.z.decompress(input, &mut self.scratch, FlushDecompress::Sync);
                if self.z.total_out() > before_out {
                    self.dropped = true;
                }
                (r, self.scratch.len())
            };
            let status = status.map_err(|e| self.error(&e))?;
            let used = (self.z.total_in() - before_in) as usize;
            let made = self.z.total_out() - before_out;
            if self.history_lost {
                self.since_loss += made;
                self.history_lost = self.since_loss < WINDOW;
            }
            input = input.get(used..).unwrap_or_default();
            if used > 0 {
                self.ended = false;
            }
            self.produced += made;
            if self.produced > self.max_output {
                return Err(InflateError::Limit);
            }
            if status == Status::StreamEnd {
                // A final block (BFINAL) ends the stream; start afresh for what follows. The
                // window goes with it: a sender that ends messages so starts each afresh, and
                // nothing before refers past this point.
                self.z.reset(false);
                self.ended = true;
                self.history_lost = false;
                if input.is_empty() {
                    break;
                }
                continue;
            }
            let output_full = made as usize >= offered;
            if used == 0 && made == 0 {
                break;
            }
            if input.is_empty() && !output_full {
                break;
            }
        }
        Ok(InflateProgress { produced: self.produced, kept_all: !self.dropped })
    }

    /// A reference past the window's start is the lost history's doing while it is lost;
    /// anything else is bad data.
    fn error(&self, e: &flate2::DecompressError) -> InflateError {
        let message = e.to_string();
        if self.history_lost && message.contains("too far back") {
            InflateError::HistoryLost
        } else {
            InflateError::Corrupt(message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    fn inflate_all(inf: &mut Inflater, msg: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        inf.inflate(msg, &mut out, usize::MAX).unwrap();
        inf.finish_message(&mut out, usize::MAX).unwrap();
        out
    }

    #[test]
    fn rfc7692_hello_and_context_takeover() {
        let mut inf = Inflater::new(false);
        assert_eq!(inflate_all(&mut inf, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]), b"Hello");
        assert_eq!(inflate_all(&mut inf, &[0xf2, 0x00, 0x11, 0x00, 0x00]), b"Hello");
    }

    #[test]
    fn no_context_takeover_resets() {
        let mut inf = Inflater::new(true);
        assert_eq!(inflate_all(&mut inf, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]), b"Hello");
        assert_eq!(inflate_all(&mut inf, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]), b"Hello");
        // The context-takeover form needs the previous window: without it, it is corrupt.
        let mut out = Vec::new();
        let r = inf.inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], &mut out, usize::MAX);
        let r = r.and_then(|_| inf.finish_message(&mut out, usize::MAX));
        assert!(r.is_err() || out != b"Hello");
    }

    fn compress(data: &[u8]) -> Vec<u8> {
        let mut c = Compress::new(Compression::default(), false);
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
        while out.len() == out.capacity() {
            out.reserve(1 << 20);
            c.compress_vec(&[], &mut out, FlushCompress::Sync).unwrap();
        }
        assert!(out.ends_with(&TAIL));
        out.truncate(out.len() - 4);
        out
    }

    /// The messages a sender with context takeover writes for `texts`: one stream, each
    /// message sync-flushed and its tail removed.
    fn takeover_messages(texts: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut c = Compress::new(Compression::best(), false);
        texts
            .iter()
            .map(|t| {
                let mut out = Vec::with_capacity(t.len() + 64);
                c.compress_vec(t, &mut out, FlushCompress::Sync).unwrap();
                assert!(out.ends_with(&TAIL));
                out.truncate(out.len() - 4);
                out
            })
            .collect()
    }

    /// One message, as a direction inflates it: a message that fails is not finished, and
    /// its part of the history is lost.
    fn message(inf: &mut Inflater, z: &[u8]) -> Result<Vec<u8>, InflateError> {
        let mut out = Vec::new();
        if let Err(e) = inf.inflate(z, &mut out, usize::MAX) {
            inf.lose_history();
            return Err(e);
        }
        inf.finish_message(&mut out, usize::MAX)?;
        Ok(out)
    }

    const FIRST: &[u8] = b"alpha beta gamma delta alpha beta gamma delta";
    const LOST: &[u8] = b"zeta eta theta iota kappa lambda mu nu";
    const ACROSS: &[u8] = b"alpha beta gamma delta";

    #[test]
    fn a_message_referring_to_lost_history_says_so_and_the_next_ones_inflate() {
        let z = takeover_messages(&[FIRST, LOST, ACROSS, b"0123456789", b"0123456789 0123456789"]);
        let mut inf = Inflater::new(false);
        assert_eq!(message(&mut inf, &z[0]).unwrap(), FIRST);
        // Over the old window the reference lands on the wrong bytes: plausible garbage.
        let mut stale = Inflater::new(false);
        message(&mut stale, &z[0]).unwrap();
        assert_ne!(message(&mut stale, &z[2]), Ok(ACROSS.to_vec()));
        // The second message was lost in a gap.
        inf.lose_history();
        assert_eq!(message(&mut inf, &z[2]), Err(InflateError::HistoryLost));
        // What the window holds since is the sender's latest history, so what refers only to
        // it inflates right.
        assert_eq!(message(&mut inf, &z[3]).unwrap(), b"0123456789");
        assert_eq!(message(&mut inf, &z[4]).unwrap(), b"0123456789 0123456789");
    }

    #[test]
    fn a_stream_joined_late_lacks_its_history_and_bad_data_is_still_bad() {
        let z = takeover_messages(&[FIRST, ACROSS]);
        let mut inf = Inflater::joined_late(false);
        assert_eq!(message(&mut inf, &z[1]), Err(InflateError::HistoryLost));
        // Not deflate at all: corrupt whatever the history.
        let mut inf = Inflater::joined_late(false);
        assert!(matches!(message(&mut inf, &[0xff, 0xff, 0xff]), Err(InflateError::Corrupt(_))));
        // A whole history: a reference past the window is the data's fault.
        let mut inf = Inflater::new(false);
        assert!(matches!(message(&mut inf, &z[1]), Err(InflateError::Corrupt(_))));
    }

    #[test]
    fn a_message_that_failed_leaves_the_history_lost_until_a_window_is_inflated() {
        let z = takeover_messages(&[FIRST, ACROSS]);
        let mut inf = Inflater::new(false);
        assert!(matches!(message(&mut inf, &[0xff, 0xff]), Err(InflateError::Corrupt(_))));
        assert_eq!(message(&mut inf, &z[1]), Err(InflateError::HistoryLost));
        // 32 KiB inflated since: every reference the sender can make is in the window again,
        // so one that is not is bad data.
        let fresh: Vec<u8> =
            (0..40_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let mut c = Compress::new(Compression::fast(), false);
        let mut fz = Vec::with_capacity(64 << 10);
        c.compress_vec(&fresh, &mut fz, FlushCompress::Sync).unwrap();
        fz.truncate(fz.len() - 4);
        assert_eq!(message(&mut inf, &fz).unwrap(), fresh);
        assert!(matches!(message(&mut inf, &[0xff, 0xff]), Err(InflateError::Corrupt(_))));
        // A sender without context takeover starts each message afresh: nothing is lost.
        let mut inf = Inflater::new(true);
        inf.lose_history();
        assert!(matches!(message(&mut inf, &z[1]), Err(InflateError::Corrupt(_))));
    }

    #[test]
    fn split_anywhere() {
        let text: Vec<u8> = (0..5000).map(|i| b"abcdefghij"[i % 10] ^ (i / 700) as u8).collect();
        let z = compress(&text);
        for step in [1, 3, 100, z.len()] {
            let mut inf = Inflater::new(false);
            let mut out = Vec::new();
            for piece in z.chunks(step) {
                inf.inflate(piece, &mut out, usize::MAX).unwrap();
            }
            let p = inf.finish_message(&mut out, usize::MAX).unwrap();
            assert_eq!(out, text);
            assert_eq!(p.produced, 5000);
        }
    }

    #[test]
    fn keep_limit_counts_the_rest() {
        let data = vec![7u8; 100_000];
        let z = compress(&data);
        let mut inf = Inflater::new(false);
        let mut out = Vec::new();
        inf.inflate(&z, &mut out, 1000).unwrap();
        let p = inf.finish_message(&mut out, 1000).unwrap();
        assert_eq!(out.len(), 1000);
        assert_eq!(p.produced, 100_000);
        assert!(!p.kept_all);
    }

    #[test]
    fn bomb_stops_at_the_cap() {
        let zeros = vec![0u8; 200 << 20];
        let z = compress(&zeros);
        assert!(z.len() < 300_000);
        let mut inf = Inflater::new(false);
        inf.set_max_output(64 << 20);
        let mut out = Vec::new();
        let mut err = None;
        for piece in z.chunks(1460) {
            if let Err(e) = inf.inflate(piece, &mut out, 1 << 20) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(InflateError::Limit));
        assert!(out.len() <= 1 << 20);
    }

    #[test]
    fn corrupt_input() {
        let mut inf = Inflater::new(false);
        let mut out = Vec::new();
        let r = inf.inflate(&[0xff, 0xff, 0xff, 0xff, 0xff], &mut out, usize::MAX);
        assert!(matches!(r, Err(InflateError::Corrupt(_))));
        inf.reset();
        assert_eq!(inflate_all(&mut inf, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]), b"Hello");
    }

    /// Messages that end with a final block (RFC 7692 §7.2.3.3), as one-shot compressors
    /// write them, whole or in pieces, then one with the usual sync-flush ending.
    #[test]
    fn messages_ending_with_a_final_block() {
        let finished = |d: &[u8]| {
            let mut c = Compress::new(Compression::default(), false);
            let mut out = Vec::with_capacity(d.len() + 64);
            c.compress_vec(d, &mut out, FlushCompress::Finish).unwrap();
            out
        };
        for step in [1, 2, 5, 1000] {
            let mut inf = Inflater::new(false);
            for m in [&b"first message, first message"[..], b"second", b"", b"third third third"] {
                let mut out = Vec::new();
                for piece in finished(m).chunks(step) {
                    inf.inflate(piece, &mut out, usize::MAX).unwrap();
                }
                let p = inf.finish_message(&mut out, usize::MAX).unwrap();
                assert_eq!((out.as_slice(), p.produced), (m, m.len() as u64), "step {step}");
            }
            assert_eq!(
                inflate_all(&mut inf, &compress(b"then sync-flushed")),
                b"then sync-flushed"
            );
        }
    }
}
