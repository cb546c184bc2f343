//! One direction of a WebSocket connection: frames in, frame and message records out.
//!
//! Frames are decoded incrementally ([`FrameDecoder`]) and checked as their headers arrive;
//! payloads stream through the unmasker into at most `max_message` kept bytes, through the
//! inflater (RFC 7692) and the UTF-8 validator, so that a frame claiming 2^63 bytes or a
//! deflate bomb never takes memory. What needs both directions (close echo, ping/pong
//! pairing) is reported upwards as [`ControlSeen`] for the connection to decide.

use super::{Ctx, Endpoints};
use crate::event::{DirectionStats, Event, FrameRecord, MessageRecord, Meta, ProblemRecord};
use crate::problem::ProblemCode;
use crate::tcp::Side;
use crate::ws::decoder::{FrameDecoder, FrameEvent};
use crate::ws::deflate::{InflateError, Inflater};
use crate::ws::frame::FrameHeader;
use crate::ws::opcode::{close_code_valid, OpCode};
use crate::ws::sniff::{self, FrameScan};
use crate::ws::utf8::Utf8Stream;
use std::borrow::Cow;

/// Negotiated permessage-deflate state of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeflateSetup {
    pub negotiated: bool,
    pub no_context_takeover: bool,
}

/// A control frame the connection must pair with the other direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlSeen {
    Close { code: Option<u16>, reason: Option<String> },
    Ping { payload: Vec<u8> },
    Pong { payload: Vec<u8> },
}

/// The frame being received.
struct FrameInProgress {
    header: FrameHeader,
    first_packet: u64,
    kept: Vec<u8>,
    /// What is kept of a payload the sink reads only a prefix of
    /// ([`Options::frame_payload_prefix`]).
    cut: Cut,
    received: u64,
    missing: u64,
    problems: Vec<ProblemCode>,
}

/// The data message being received (possibly over several fragments).
struct MessageInProgress {
    opcode: OpCode,
    first_packet: u64,
    frames: u32,
    compressed: bool,
    wire_len: u64,
    /// Application bytes produced so far (kept or not).
    len: u64,
    kept: Vec<u8>,
    /// As for frames ([`Options::message_payload_prefix`]).
    cut: Cut,
    missing: u64,
    utf8: Utf8Stream,
    utf8_failed: bool,
    inflate_failed: bool,
    problems: Vec<ProblemCode>,
}

/// The prefix of a payload kept when the sink reads no further, and what judges whether the
/// payload kept whole would be text. A payload is cut only where the message's UTF-8 validator
/// sees every byte the payload would keep (see `frame_keep_at_most`); from a TCP gap on, where
/// that validator stops, a validator of the payload's own goes on from its state.
struct Cut {
    /// At most this many bytes are kept (`usize::MAX`: all).
    keep_at_most: usize,
    /// Bytes past `keep_at_most`, within the keep limit, not kept. Records count them as
    /// missing.
    bytes: u64,
    /// The payload's own validator after a gap, and whether it failed.
    own_utf8: Option<(Utf8Stream, bool)>,
}

impl Cut {
    fn at(keep_at_most: usize) -> Cut {
        Cut { keep_at_most, bytes: 0, own_utf8: None }
    }

    /// How long the payload would be kept whole, `kept` bytes being kept.
    fn whole(&self, kept: usize) -> usize {
        kept.saturating_add(usize::try_from(self.bytes).unwrap_or(usize::MAX))
    }

    /// How many of the `taken` bytes (within the keep limit) arriving after `kept` kept ones
    /// to keep; the others are cut.
    fn keep(&mut self, kept: usize, taken: &[u8]) -> usize {
        let keep = taken.len().min(self.keep_at_most.saturating_sub(kept));
        self.bytes += (taken.len() - keep) as u64;
        if let Some((utf8, failed)) = self.own_utf8.as_mut() {
            *failed = *failed || utf8.feed(taken).is_err();
        }
        keep
    }

    /// At a gap in a text payload that is being cut: the message's validator (its state and
    /// whether it failed) is about to stop, and the payload's own goes on from it.
    fn gap(&mut self, message: Option<(&Utf8Stream, bool)>) {
        if self.keep_at_most != usize::MAX && self.own_utf8.is_none() {
            self.own_utf8 = Some(match message {
                Some((utf8, false)) => (utf8.clone(), false),
                _ => (Utf8Stream::new(), true),
            });
        }
    }

    /// Whether the bytes the payload would keep whole are UTF-8 by themselves, given the kept
    /// ones and the message's validator.
    fn whole_is_valid(&self, kept: &[u8], message: Option<(&Utf8Stream, bool)>) -> bool {
        if self.bytes == 0 {
            return crate::ws::utf8::is_valid(kept);
        }
        let own = self.own_utf8.as_ref().map(|(utf8, failed)| (utf8, *failed));
        own.or(message).is_some_and(|(utf8, failed)| !failed && utf8.at_char_boundary())
    }
}

/// Whether the byte stream is at a known frame boundary.
enum Sync {
    InSync,
    /// Looking for a frame start; bytes so far are held here, and searched incrementally.
    Searching(Vec<u8>, FrameScan),
}

pub struct Direction {
    side: Side,
    decoder: FrameDecoder,
    state: DirState,
    sync: Sync,
}

/// Whether the next frames found may continue a message whose start this side never saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resumed {
    /// In step with the sender from a frame boundary on: a continuation frame with no message
    /// open, or a new message inside an open one, is the sender's error.
    No,
    /// The capture began after the handshake, maybe inside a fragmented message.
    JoinedLate,
    /// A TCP gap swallowed the framing, maybe with the end of one message and the start of
    /// the next.
    AfterGap,
}

/// Everything but the decoder, so that the decoder's callback can borrow it.
struct DirState {
    side: Side,
    frame: Option<FrameInProgress>,
    message: Option<MessageInProgress>,
    resumed: Resumed,
    inflater: Option<Inflater>,
    deflate: DeflateSetup,
    /// Deflate was not negotiated in a handshake we saw; RSV1 turns it on.
    deflate_unknown: bool,
    close_sent: bool,
    pub stats: DirectionStats,
    controls: Vec<(Meta, ControlSeen)>,
}

impl Direction {
    pub fn new(side: Side, deflate: DeflateSetup, handshake_seen: bool) -> Direction {
        Direction {
            side,
            decoder: FrameDecoder::new(),
            state: DirState {
                side,
                frame: None,
                message: None,
                resumed: if handshake_seen { Resumed::No } else { Resumed::JoinedLate },
                inflater: deflate.negotiated.then(|| Inflater::new(deflate.no_context_takeover)),
                deflate,
                deflate_unknown: !handshake_seen,
                close_sent: false,
                stats: DirectionStats::default(),
                controls: Vec::new(),
            },
            sync: if handshake_seen {
                Sync::InSync
            } else {
                Sync::Searching(Vec::new(), FrameScan::new())
            },
        }
    }

    pub fn stats(&self) -> &DirectionStats {
        &self.state.stats
    }

    /// Control frames seen since the last call, for the connection to pair.
    pub fn take_controls(&mut self) -> Vec<(Meta, ControlSeen)> {
        std::mem::take(&mut self.state.controls)
    }

    /// Stream bytes of this direction.
    pub fn on_data(&mut self, data: &[u8], meta: Meta, ends: &Endpoints, ctx: &mut Ctx<'_>) {
        let Sync::Searching(held, scan) = &mut self.sync else {
            self.decode(data, meta, ends, ctx);
            return;
        };
        let masked = Some(self.side == Side::Client);
        if held.is_empty() {
            // Borrow the packet while nothing is held; copy only what must wait.
            if let Some(at) = sniff::find_frame_start(data, masked) {
                self.resynced(at as u64, meta, ends, ctx);
                self.decode(data.get(at..).unwrap_or_default(), meta, ends, ctx);
                return;
            }
        }
        let window = ctx.opts.limits.max_scan_window.max(1);
        let room = window.saturating_sub(held.len());
        let take = data.len().min(room);
        held.extend_from_slice(data.get(..take).unwrap_or_default());
        let rest = data.get(take..).unwrap_or_default();
        if let Some(at) = scan.find(held, masked) {
            let bytes = std::mem::take(held);
            self.resynced(at as u64, meta, ends, ctx);
            self.decode(bytes.get(at..).unwrap_or_default(), meta, ends, ctx);
            self.decode(rest, meta, ends, ctx);
        } else if held.len() >= window {
            // Nothing plausible in a whole window: give it up and search on.
            let n = held.len() as u64;
            held.clear();
            scan.reset();
            self.report_skip(n, meta, ends, ctx);
            if !rest.is_empty() {
                self.on_data(rest, meta, ends, ctx);
            }
        }
    }

    fn resynced(&mut self, skipped: u64, meta: Meta, ends: &Endpoints, ctx: &mut Ctx<'_>) {
        if skipped > 0 {
            self.report_skip(skipped, meta, ends, ctx);
        }
        self.sync = Sync::InSync;
    }

    fn report_skip(&mut self, bytes: u64, meta: Meta, ends: &Endpoints, ctx: &mut Ctx<'_>) {
        ctx.acct.skipped_bytes += bytes;
        ctx.out.emit(Event::Problem(ProblemRecord {
            meta,
            stream: Some(ends.stream),
            h2_stream: ends.h2_stream,
            from: Some(self.side),
            code: ProblemCode::Resync,
            detail: format!("skipped {bytes} bytes to reach a frame boundary"),
        }));
    }

    fn decode(&mut self, data: &[u8], meta: Meta, ends: &Endpoints, ctx: &mut Ctx<'_>) {
        ctx.acct.ws_bytes += data.len() as u64;
        let state = &mut self.state;
        self.decoder.feed(data, &mut |ev| state.on_frame_event(ev, meta, ends, ctx));
    }

    /// `len` bytes of this direction were never captured.
    /// `plain_len`: how many of this direction's bytes the gap lost, when known (not after
    /// TLS, whose gaps lose whole records of unknown plaintext length).
    pub fn on_gap(
        &mut self,
        len: u64,
        plain_len: Option<u64>,
        meta: Meta,
        ends: &Endpoints,
        ctx: &mut Ctx<'_>,
    ) {
        self.state.stats.gap_bytes = self.state.stats.gap_bytes.saturating_add(len);
        if let Sync::Searching(held, scan) = &mut self.sync {
            // Whole messages may have been in the hole.
            self.state.lose_framing(plain_len, meta, ends, ctx);
            // Held bytes before a hole cannot start a frame that continues after it.
            let n = held.len() as u64;
            held.clear();
            scan.reset();
            if n > 0 {
                self.report_skip(n, meta, ends, ctx);
            }
            return;
        }
        // A hole inside the current payload leaves the framing intact: skip over it.
        if let Some(len) = plain_len {
            if self.decoder.skip_payload(len) == Some(len) {
                self.state.payload_gap(len);
                return;
            }
        }
        self.state.abort_frame(meta, ends, ctx, ProblemCode::TcpGap);
        self.state.lose_framing(plain_len, meta, ends, ctx);
        self.decoder.reset();
        self.sync = Sync::Searching(Vec::new(), FrameScan::new());
    }

    /// The stream ended: report what was left incomplete.
    pub fn finish(&mut self, meta: Meta, ends: &Endpoints, ctx: &mut Ctx<'_>) {
        if let Sync::Searching(held, _) = &mut self.sync {
            let n = held.len() as u64;
            held.clear();
            if n > 0 {
                ctx.acct.skipped_bytes += n;
                ctx.out.emit(Event::Problem(ProblemRecord {
                    meta,
                    stream: Some(ends.stream),
                    h2_stream: ends.h2_stream,
                    from: Some(self.side),
                    code: ProblemCode::UndecodableData,
                    detail: format!("{n} bytes at the end of the stream hold no complete frame"),
                }));
            }
        }
        self.state.abort_frame(meta, ends, ctx, ProblemCode::IncompleteFrame);
        self.state.abort_message(meta, ends, ctx);
    }
}

impl DirState {
    fn on_frame_event(
        &mut self,
        ev: FrameEvent<'_>,
        meta: Meta,
        ends: &Endpoints,
        ctx: &mut Ctx<'_>,
    ) {
        match ev {
            FrameEvent::Header(h) => self.on_header(h, meta, ends, ctx),
            FrameEvent::Payload(chunk) => self.on_payload(chunk, ctx),
            FrameEvent::End => self.on_end(meta, ends, ctx),
        }
    }

    fn on_header(&mut self, h: FrameHeader, meta: Meta, ends: &Endpoints, ctx: &mut Ctx<'_>) {
        let mut problems: Vec<ProblemCode> = h.problems().collect();
        match (self.side, h.mask.is_some()) {
            (Side::Client, false) => problems.push(ProblemCode::UnmaskedClientFrame),
            (Side::Server, true) => problems.push(ProblemCode::MaskedServerFrame),
            _ => {}
        }
        let rsv1 = h.rsv & 4 != 0;
        if h.rsv & 3 != 0 {
            problems.push(ProblemCode::RsvWithoutExtension);
        }
        if rsv1 {
            if h.opcode.is_control() {
                problems.push(ProblemCode::Rsv1OnControl);
            } else if h.opcode == OpCode::Continuation {
                problems.push(ProblemCode::Rsv1OnContinuation);
            } else if !self.deflate.negotiated {
                if self.deflate_unknown {
                    // Mid-stream: the handshake that negotiated deflate is not in the capture.
                    self.deflate = DeflateSetup { negotiated: true, no_context_takeover: false };
                    self.inflater = Some(Inflater::joined_late(false));
                } else {
                    problems.push(ProblemCode::RsvWithoutExtension);
                }
            }
        }
        if self.close_sent {
            problems.push(ProblemCode::DataAfterClose);
        }
        match h.opcode {
            // The rest of a message that began where this side lost (or never had) the
            // framing: its frames are reported, with the gap that explains them.
            OpCode::Continuation if self.message.is_none() => {
                match self.resumed {
                    Resumed::No => problems.push(ProblemCode::UnexpectedContinuation),
                    Resumed::AfterGap => problems.push(ProblemCode::TcpGap),
                    Resumed::JoinedLate => {}
                }
                if h.fin {
                    // That message is over: the next continuation has none to belong to.
                    self.resumed = Resumed::No;
                }
            }
            OpCode::Text | OpCode::Binary => {
                if self.message.is_some() {
                    // Only an unbroken stream shows the sender starting a message early.
                    if self.resumed == Resumed::No {
                        problems.push(ProblemCode::DataFrameInsideFragmentedMessage);
                    }
                    self.abort_message(meta, ends, ctx);
                }
                self.resumed = Resumed::No;
                let compressed = rsv1 && self.deflate.negotiated;
                // Inflated text past the keep limit is not validated, so the kept part is
                // judged by itself: a compressed message is kept whole.
                let keep_at_most = match ctx.opts.message_payload_prefix {
                    Some(prefix) if !compressed && ctx.opts.keep_message_payload => prefix,
                    _ => usize::MAX,
                };
                self.message = Some(MessageInProgress {
                    opcode: h.opcode,
                    first_packet: meta.packet,
                    frames: 0,
                    compressed,
                    wire_len: 0,
                    len: 0,
                    kept: Vec::with_capacity(if compressed || !ctx.opts.keep_message_payload {
                        0
                    } else {
                        initial_capacity(h.payload_len, ctx).min(keep_at_most)
                    }),
                    cut: Cut::at(keep_at_most),
                    missing: 0,
                    utf8: Utf8Stream::new(),
                    utf8_failed: false,
                    inflate_failed: false,
                    problems: Vec::new(),
                });
            }
            _ => {}
        }
        let keep_at_most = self.frame_keep_at_most(h.opcode, ctx);
        self.frame = Some(FrameInProgress {
            header: h,
            first_packet: meta.packet,
            kept: Vec::with_capacity(if ctx.opts.keep_frame_payload || h.opcode.is_control() {
                initial_capacity(h.payload_len, ctx).min(keep_at_most)
            } else {
                0
            }),
            cut: Cut::at(keep_at_most),
            received: 0,
            missing: 0,
            problems,
        });
    }

    /// How many payload bytes of a frame starting now to keep: all, unless the sink reads
    /// only a prefix and the frame's record needs no more. Whether a frame's payload is text
    /// depends on all its bytes; the message's validator has seen exactly those of the first
    /// frame of an uncompressed text message (and `emit_frame` asks it), but not those of a
    /// later fragment, which is kept whole. Binary and compressed payloads are never text.
    /// Control frames are kept whole: close reasons and ping payloads are read here.
    fn frame_keep_at_most(&self, opcode: OpCode, ctx: &Ctx<'_>) -> usize {
        let Some(prefix) = ctx.opts.frame_payload_prefix.filter(|_| ctx.opts.keep_frame_payload)
        else {
            return usize::MAX;
        };
        let needs_own_bytes = match (opcode, &self.message) {
            (OpCode::Text | OpCode::Binary, Some(_)) => false,
            (OpCode::Continuation, Some(m)) => m.opcode == OpCode::Text && !m.compressed,
            _ => true,
        };
        if needs_own_bytes {
            usize::MAX
        } else {
            prefix
        }
    }

    fn on_payload(&mut self, chunk: &[u8], ctx: &mut Ctx<'_>) {
        let Some(frame) = self.frame.as_mut() else { return };
        frame.received = frame.received.saturating_add(chunk.len() as u64);
        let is_control = frame.header.opcode.is_control();
        if ctx.opts.keep_frame_payload || is_control {
            let room =
                ctx.opts.limits.max_message.saturating_sub(frame.cut.whole(frame.kept.len()));
            let take = chunk.len().min(room);
            let keep = frame.cut.keep(frame.kept.len(), &chunk[..take]);
            frame.kept.extend_from_slice(&chunk[..keep]);
            frame.missing += (chunk.len() - take) as u64;
        }
        let is_data =
            matches!(frame.header.opcode, OpCode::Text | OpCode::Binary | OpCode::Continuation);
        if !is_data {
            return;
        }
        let Some(msg) = self.message.as_mut() else { return };
        if msg.compressed {
            if msg.inflate_failed {
                return;
            }
            let Some(inflater) = self.inflater.as_mut() else { return };
            let before = msg.kept.len();
            let keep_limit = if ctx.opts.keep_message_payload || msg.opcode == OpCode::Text {
                ctx.opts.limits.max_message
            } else {
                0
            };
            let max_out = inflate_cap(ctx, msg.wire_len + frame.received);
            inflater.set_max_output(max_out);
            match inflater.inflate(chunk, &mut msg.kept, keep_limit) {
                Ok(progress) => {
                    msg.len = progress.produced;
                }
                Err(e) => {
                    // What was inflated before the stop is still the message's known length.
                    msg.len = inflater.produced();
                    fail_inflate(msg, e);
                }
            }
            validate_text(msg, before);
        } else {
            msg.len = msg.len.saturating_add(chunk.len() as u64);
            let keep = ctx.opts.keep_message_payload || msg.opcode == OpCode::Text;
            if keep {
                let room =
                    ctx.opts.limits.max_message.saturating_sub(msg.cut.whole(msg.kept.len()));
                let take = chunk.len().min(room);
                if ctx.opts.keep_message_payload {
                    let keep = msg.cut.keep(msg.kept.len(), &chunk[..take]);
                    msg.kept.extend_from_slice(&chunk[..keep]);
                }
                // Validated where they are: a view that shows no payload keeps none, and a cut
                // one only a prefix.
                validate_text_bytes(msg, &chunk[..take]);
                if take < chunk.len() && !msg.problems.contains(&ProblemCode::MessageLimit) {
                    msg.problems.push(ProblemCode::MessageLimit);
                }
            }
        }
        if !ctx.opts.keep_message_payload && !msg.kept.is_empty() {
            // Only UTF-8 validation needed the bytes: drop them to keep memory flat.
            msg.kept.clear();
        }
    }

    /// A TCP gap swallowed the framing (after the frame in progress was reported): the
    /// message in progress ends here, as what follows the hole may be another message's; so
    /// does the deflate history, which whole messages in the hole may have added to.
    fn lose_framing(&mut self, lost: Option<u64>, meta: Meta, ends: &Endpoints, ctx: &mut Ctx<'_>) {
        if self.message.is_some() {
            self.payload_gap(lost.unwrap_or(0));
            self.abort_message(meta, ends, ctx);
        }
        if let Some(inflater) = self.inflater.as_mut() {
            inflater.lose_history();
        }
        self.resumed = Resumed::AfterGap;
    }

    /// Payload bytes of the current frame were lost in a TCP gap.
    fn payload_gap(&mut self, len: u64) {
        if let Some(frame) = self.frame.as_mut() {
            frame.received = frame.received.saturating_add(len);
            frame.missing = frame.missing.saturating_add(len);
            push_once(&mut frame.problems, ProblemCode::TcpGap);
            if frame.header.opcode == OpCode::Text {
                frame.cut.gap(self.message.as_ref().map(|m| (&m.utf8, m.utf8_failed)));
            }
        }
        if let Some(msg) = self.message.as_mut() {
            msg.missing = msg.missing.saturating_add(len);
            push_once(&mut msg.problems, ProblemCode::TcpGap);
            if msg.compressed {
                // The deflate stream cannot continue past missing bytes.
                msg.inflate_failed = true;
                if let Some(inflater) = self.inflater.as_mut() {
                    inflater.lose_history();
                }
            }
            if msg.opcode == OpCode::Text {
                msg.cut.gap(Some((&msg.utf8, msg.utf8_failed)));
            }
            // UTF-8 can no longer be judged across the hole.
            msg.utf8_failed = true;
        }
    }

    fn on_end(&mut self, meta: Meta, ends: &Endpoints, ctx: &mut Ctx<'_>) {
        let Some(frame) = self.frame.take() else { return };
        self.emit_frame(frame, meta, ends, ctx, false);
    }

    /// Reports the frame in progress (if any) as incomplete.
    fn abort_frame(&mut self, meta: Meta, ends: &Endpoints, ctx: &mut Ctx<'_>, why: ProblemCode) {
        let Some(mut frame) = self.frame.take() else { return };
        let expected = frame.header.payload_len;
        frame.missing = frame.missing.saturating_add(expected.saturating_sub(frame.received));
        push_once(&mut frame.problems, why);
        if why != ProblemCode::IncompleteFrame {
            push_once(&mut frame.problems, ProblemCode::IncompleteFrame);
        }
        self.emit_frame(frame, meta, ends, ctx, true);
    }

    fn abort_message(&mut self, meta: Meta, ends: &Endpoints, ctx: &mut Ctx<'_>) {
        if let Some(mut msg) = self.message.take() {
            push_once(&mut msg.problems, ProblemCode::IncompleteMessage);
            self.emit_message(msg, meta, ends, ctx, true);
        }
    }

    fn emit_frame(
        &mut self,
        frame: FrameInProgress,
        meta: Meta,
        ends: &Endpoints,
        ctx: &mut Ctx<'_>,
        incomplete: bool,
    ) {
        let FrameInProgress { header: h, first_packet, kept, cut, missing, mut problems, .. } =
            frame;
        let stats = &mut self.stats;
        stats.frames += 1;
        let op = h.opcode.as_u8();
        if let Some(slot) = stats.frames_by_opcode.get_mut(opcode_slot(h.opcode)) {
            *slot += 1;
        }
        stats.wire_bytes = stats.wire_bytes.saturating_add(h.payload_len);
        let mut close_code = None;
        let mut close_reason: Option<Cow<'_, str>> = None;
        let mut payload_is_text = false;
        match h.opcode {
            OpCode::Close if !incomplete => {
                match kept.len() {
                    0 => {}
                    1 => problems.push(ProblemCode::InvalidCloseCode),
                    _ => {
                        let code = u16::from_be_bytes([kept[0], kept[1]]);
                        close_code = Some(code);
                        if !close_code_valid(code) {
                            problems.push(ProblemCode::InvalidCloseCode);
                        }
                        match std::str::from_utf8(&kept[2..]) {
                            // Owned, so that the payload can move into the record.
                            Ok(s) => close_reason = Some(Cow::Owned(s.to_owned())),
                            Err(_) => {
                                problems.push(ProblemCode::InvalidUtf8);
                                let lossy = String::from_utf8_lossy(&kept[2..]);
                                close_reason = Some(Cow::Owned(lossy.into_owned()));
                            }
                        }
                    }
                }
                self.close_sent = true;
                self.controls.push((
                    meta,
                    ControlSeen::Close {
                        code: close_code,
                        reason: close_reason.as_ref().map(|r| r.to_string()),
                    },
                ));
            }
            OpCode::Ping if !incomplete => {
                stats.pings += 1;
                self.controls.push((meta, ControlSeen::Ping { payload: kept.clone() }));
            }
            OpCode::Pong if !incomplete => {
                stats.pongs += 1;
                self.controls.push((meta, ControlSeen::Pong { payload: kept.clone() }));
            }
            OpCode::Text => payload_is_text = true,
            OpCode::Continuation => {
                payload_is_text = self.message.as_ref().is_some_and(|m| m.opcode == OpCode::Text)
            }
            _ => {}
        }
        // A text frame's own bytes are text only when they are valid UTF-8 by themselves
        // (a fragment may end inside a character); otherwise they are shown as bytes. The
        // first frame of an uncompressed message, kept whole, went through the message's
        // validator already, which says so unless it stopped inside a character.
        let validated = missing == 0
            && self.message.as_ref().is_some_and(|m| {
                m.frames == 0
                    && !m.compressed
                    && !m.utf8_failed
                    && m.utf8.at_char_boundary()
                    && m.len == kept.len() as u64 + cut.bytes
            });
        // Only the first frame of an uncompressed text message is cut (`frame_keep_at_most`):
        // the message's validator has seen exactly its bytes.
        let own_bytes_valid =
            || cut.whole_is_valid(&kept, self.message.as_ref().map(|m| (&m.utf8, m.utf8_failed)));
        if payload_is_text
            && (self.message.as_ref().is_some_and(|m| m.compressed)
                || !(validated || own_bytes_valid()))
        {
            payload_is_text = false;
        }
        let data_frame = matches!(h.opcode, OpCode::Text | OpCode::Binary | OpCode::Continuation);
        let record = FrameRecord {
            meta,
            first_packet,
            stream: ends.stream,
            h2_stream: ends.h2_stream,
            from: self.side,
            src: ends.src(self.side),
            dst: ends.dst(self.side),
            fin: h.fin,
            rsv: h.rsv,
            opcode: op,
            opcode_name: h.opcode.name(),
            mask_key: h.mask,
            payload_len: h.payload_len,
            len_form: h.len_form,
            close_code,
            close_reason,
            // Moved, not borrowed: a sink that keeps records (another thread formats them)
            // then takes the bytes without a copy.
            payload: Cow::Owned(kept),
            payload_is_text,
            payload_missing: missing.saturating_add(cut.bytes),
            payload_cut: cut.bytes,
            app: None,
            problems,
        };
        ctx.out.emit(Event::Frame(record));
        if data_frame {
            if let Some(msg) = self.message.as_mut() {
                msg.frames = msg.frames.saturating_add(1);
                msg.wire_len = msg.wire_len.saturating_add(h.payload_len);
                if incomplete {
                    msg.missing = msg.missing.saturating_add(missing);
                }
                if h.fin && !incomplete {
                    if let Some(msg) = self.message.take() {
                        self.emit_message(msg, meta, ends, ctx, false);
                    }
                }
            }
        }
    }

    fn emit_message(
        &mut self,
        mut msg: MessageInProgress,
        meta: Meta,
        ends: &Endpoints,
        ctx: &mut Ctx<'_>,
        incomplete: bool,
    ) {
        if msg.compressed && !msg.inflate_failed && !incomplete {
            if let Some(inflater) = self.inflater.as_mut() {
                let before = msg.kept.len();
                let keep_limit = if ctx.opts.keep_message_payload || msg.opcode == OpCode::Text {
                    ctx.opts.limits.max_message
                } else {
                    0
                };
                inflater.set_max_output(inflate_cap(ctx, msg.wire_len));
                match inflater.finish_message(&mut msg.kept, keep_limit) {
                    Ok(p) => msg.len = p.produced,
                    Err(e) => {
                        msg.len = msg.len.max(inflater.produced());
                        fail_inflate(&mut msg, e);
                    }
                }
                validate_text(&mut msg, before);
            }
        }
        if msg.compressed && (msg.inflate_failed || incomplete) {
            // What this message added to the sender's history is not in the window: the
            // next messages inflate from an empty one, and those that refer back past it
            // say so (`deflate-history-lost`).
            if let Some(inflater) = self.inflater.as_mut() {
                inflater.lose_history();
            }
        }
        if msg.opcode == OpCode::Text
            && !msg.utf8_failed
            && !incomplete
            && msg.utf8.finish().is_err()
        {
            msg.utf8_failed = true;
            push_once(&mut msg.problems, ProblemCode::InvalidUtf8);
        }
        let kept_len = msg.kept.len() as u64;
        let not_kept = msg.len.saturating_sub(kept_len);
        // Every kept byte went through the streaming validator; only a message cut short
        // (by a limit, or unfinished) may end inside a character and needs another look.
        let validated_whole =
            !incomplete && !msg.utf8_failed && kept_len + msg.cut.bytes == msg.len;
        let kept_valid = || msg.cut.whole_is_valid(&msg.kept, Some((&msg.utf8, msg.utf8_failed)));
        let is_text = msg.opcode == OpCode::Text
            && !msg.problems.contains(&ProblemCode::InvalidUtf8)
            && (validated_whole || kept_valid());
        let stats = &mut self.stats;
        stats.messages += 1;
        stats.app_bytes = stats.app_bytes.saturating_add(msg.len);
        if msg.compressed {
            stats.compressed_messages += 1;
            stats.compressed_wire_bytes = stats.compressed_wire_bytes.saturating_add(msg.wire_len);
            stats.compressed_app_bytes = stats.compressed_app_bytes.saturating_add(msg.len);
        }
        let payload: Cow<'_, [u8]> =
            if ctx.opts.keep_message_payload { Cow::Owned(msg.kept) } else { Cow::Borrowed(&[]) };
        ctx.out.emit(Event::Message(MessageRecord {
            meta,
            first_packet: msg.first_packet,
            stream: ends.stream,
            h2_stream: ends.h2_stream,
            from: self.side,
            src: ends.src(self.side),
            dst: ends.dst(self.side),
            opcode: msg.opcode.as_u8(),
            opcode_name: msg.opcode.name(),
            frames: msg.frames,
            compressed: msg.compressed,
            wire_len: msg.wire_len,
            len: msg.len,
            payload,
            is_text,
            payload_missing: msg.missing.saturating_add(not_kept),
            payload_cut: msg.cut.bytes,
            json: None,
            app: None,
            problems: msg.problems,
        }));
    }
}

/// Room for a payload the header announces, so that it is not regrown segment by segment; no
/// more than 64 KiB up front, whatever the header claims (it may claim 2^63 bytes).
fn initial_capacity(payload_len: u64, ctx: &Ctx<'_>) -> usize {
    let announced = usize::try_from(payload_len).unwrap_or(usize::MAX);
    announced.min(ctx.opts.limits.max_message).min(64 << 10)
}

/// The most one message may inflate to: the size limit, and the ratio limit once past 1 MiB.
fn inflate_cap(ctx: &Ctx<'_>, compressed_so_far: u64) -> u64 {
    let limits = &ctx.opts.limits;
    let by_ratio = compressed_so_far.saturating_mul(limits.max_inflate_ratio).max(1 << 20);
    (limits.max_inflate as u64).min(by_ratio)
}

fn fail_inflate(msg: &mut MessageInProgress, e: InflateError) {
    msg.inflate_failed = true;
    let code = match e {
        InflateError::Limit => ProblemCode::InflateLimit,
        InflateError::Corrupt(_) => ProblemCode::DecompressFailed,
        InflateError::HistoryLost => ProblemCode::DeflateHistoryLost,
    };
    push_once(&mut msg.problems, code);
}

/// Validates the text bytes appended to `msg.kept` since `from`.
fn validate_text(msg: &mut MessageInProgress, from: usize) {
    let bytes = msg.kept.get(from..).unwrap_or_default();
    feed_text(msg.opcode, &mut msg.utf8, &mut msg.utf8_failed, &mut msg.problems, bytes);
}

/// Feeds the next bytes of a text message, kept or not, to its UTF-8 validator.
fn validate_text_bytes(msg: &mut MessageInProgress, bytes: &[u8]) {
    feed_text(msg.opcode, &mut msg.utf8, &mut msg.utf8_failed, &mut msg.problems, bytes);
}

fn feed_text(
    opcode: OpCode,
    utf8: &mut Utf8Stream,
    failed: &mut bool,
    problems: &mut Vec<ProblemCode>,
    bytes: &[u8],
) {
    if opcode != OpCode::Text || *failed {
        return;
    }
    if utf8.feed(bytes).is_err() {
        *failed = true;
        push_once(problems, ProblemCode::InvalidUtf8);
    }
}

pub(super) fn push_once(problems: &mut Vec<ProblemCode>, code: ProblemCode) {
    if !problems.contains(&code) {
        problems.push(code);
    }
}

/// Index into `DirectionStats::frames_by_opcode`: continuation, text, binary, close, ping,
/// pong, reserved.
pub fn opcode_slot(op: OpCode) -> usize {
    match op {
        OpCode::Continuation => 0,
        OpCode::Text => 1,
        OpCode::Binary => 2,
        OpCode::Close => 3,
        OpCode::Ping => 4,
        OpCode::Pong => 5,
        OpCode::Reserved(_) => 6,
    }
}
