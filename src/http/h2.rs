//! HTTP/2 on the wire (RFC 9113), as far as WebSocket over HTTP/2 (RFC 8441) needs it: the
//! client preface, frame headers, and each direction's frames read incrementally, as they
//! arrive, with header blocks decoded by HPACK (`loona-hpack`).
//!
//! Written by hand because the HTTP/2 crates (`h2`) are endpoints that answer and enforce
//! flow control; a dissector only listens, must go on after what an endpoint would reject,
//! and must not hold a frame's payload to look at it: DATA payloads pass through in the
//! pieces they arrive in, so a 16 MiB frame costs nothing to hold.

use loona_hpack::Decoder;

/// What a client sends first on an HTTP/2 connection (RFC 9113 3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame types (RFC 9113 6).
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const CONTINUATION: u8 = 0x9;

pub const FLAG_END_STREAM: u8 = 0x1;
pub const FLAG_END_HEADERS: u8 = 0x4;
pub const FLAG_PADDED: u8 = 0x8;
pub const FLAG_PRIORITY: u8 = 0x20;

/// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 3).
pub const SETTINGS_ENABLE_CONNECT_PROTOCOL: u16 = 0x8;

/// Whether `buf` is the start of the client preface, or a prefix of it (more may come).
pub fn starts_with_preface(buf: &[u8]) -> bool {
    let n = buf.len().min(PREFACE.len());
    !buf.is_empty() && buf[..n] == PREFACE[..n]
}

/// Whether a server's first bytes may be its SETTINGS frame (sent before the client's
/// preface arrived): a frame header of type SETTINGS on stream 0, or a prefix of one.
pub fn may_start_server_settings(buf: &[u8]) -> bool {
    let Some(h) = buf.get(..9).and_then(FrameHeader::parse) else {
        // Too short to tell: a length's high byte is 0 for any sensible SETTINGS frame.
        return buf.first() == Some(&0) && buf.get(3).is_none_or(|&t| t == SETTINGS);
    };
    h.kind == SETTINGS && h.stream == 0 && h.len % 6 == 0 && h.flags & !1 == 0
}

/// A frame's 9-byte header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl FrameHeader {
    pub fn parse(b: &[u8]) -> Option<FrameHeader> {
        let b: &[u8; 9] = b.get(..9)?.try_into().ok()?;
        Some(FrameHeader {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        })
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// What reading a direction's bytes found, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum H2Item<'a> {
    /// DATA payload bytes of a stream (padding taken off), in the pieces they arrived in.
    Data {
        stream: u32,
        bytes: &'a [u8],
    },
    /// The end of a DATA frame; `end_stream` when it ended the sender's side of the stream.
    DataEnd {
        stream: u32,
        end_stream: bool,
    },
    /// A complete header block (HEADERS or PUSH_PROMISE and its CONTINUATIONs), decoded;
    /// `cut` when its fields decoded to more than the block limit and the rest were dropped
    /// (HPACK's table references can make a short block decode to a long list).
    Headers {
        stream: u32,
        end_stream: bool,
        fields: Vec<(String, String)>,
        cut: bool,
    },
    /// A header block that could not be decoded (HPACK error, or longer than the limit):
    /// the direction's header compression state is lost with it.
    HeadersLost {
        stream: u32,
        why: String,
        /// Lost to the block limit, not to a decoding error.
        too_long: bool,
    },
    RstStream {
        stream: u32,
    },
    Settings {
        ack: bool,
        values: Vec<(u16, u32)>,
    },
    /// The frames cannot be followed any more (a CONTINUATION out of place, a frame longer
    /// than any peer may send): the rest of the direction is not decoded.
    Broken {
        why: String,
    },
}

/// Frames of one direction, read incrementally.
pub struct H2Reader {
    header: [u8; 9],
    header_len: usize,
    frame: Option<Frame>,
    /// A header block in progress (HEADERS or PUSH_PROMISE waiting for CONTINUATIONs).
    block: Option<Block>,
    hpack: Decoder<'static>,
    hpack_lost: bool,
    broken: bool,
    max_block: usize,
    /// Bytes of framing, padding and frames other than DATA, for the byte accounting.
    pub overhead: u64,
}

struct Frame {
    header: FrameHeader,
    /// Payload bytes not yet read.
    left: u32,
    /// DATA: padding length once read (the first payload byte when PADDED).
    pad: Option<u8>,
    /// Frames other than DATA: their payload, kept up to the block limit.
    payload: Vec<u8>,
}

struct Block {
    /// The stream of the frames (CONTINUATIONs must be on it).
    stream: u32,
    /// The stream the header block is of: the promised one of a PUSH_PROMISE (a request the
    /// server makes up, not an answer on the stream it came on).
    of: u32,
    end_stream: bool,
    bytes: Vec<u8>,
    too_long: bool,
}

/// The largest frame any peer may send (RFC 9113 4.2: SETTINGS_MAX_FRAME_SIZE ≤ 2^24-1).
const MAX_FRAME: u32 = (1 << 24) - 1;
/// HPACK dynamic tables larger than this are not followed (peers advertise 4 KiB to 64 KiB).
const MAX_HPACK_TABLE: usize = 1 << 16;

impl H2Reader {
    /// `max_block`: the longest header block decoded (the HTTP header limit).
    pub fn new(max_block: usize) -> H2Reader {
        let mut hpack = Decoder::new();
        hpack.set_max_allowed_table_size(MAX_HPACK_TABLE);
        H2Reader {
            header: [0; 9],
            header_len: 0,
            frame: None,
            block: None,
            hpack,
            hpack_lost: false,
            broken: false,
            max_block,
            overhead: 0,
        }
    }

    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Bytes of the direction were lost (a gap): its frames cannot be followed any more.
    pub fn lose(&mut self) {
        self.broken = true;
    }

    /// Reads `data`, calling `out` for each item found. Returns the bytes not read because
    /// the direction is broken.
    pub fn feed(&mut self, mut data: &[u8], out: &mut dyn FnMut(H2Item<'_>)) -> u64 {
        while !data.is_empty() {
            if self.broken {
                return data.len() as u64;
            }
            let Some(frame) = self.frame.as_mut() else {
                let take = (9 - self.header_len).min(data.len());
                self.header[self.header_len..self.header_len + take].copy_from_slice(&data[..take]);
                self.header_len += take;
                self.overhead += take as u64;
                data = &data[take..];
                if self.header_len == 9 {
                    self.header_len = 0;
                    self.start_frame(out);
                }
                continue;
            };
            let h = frame.header;
            if h.kind == DATA {
                if frame.pad.is_none() {
                    if h.has(FLAG_PADDED) {
                        let pad = data[0];
                        frame.pad = Some(pad);
                        frame.left -= 1;
                        self.overhead += 1;
                        data = &data[1..];
                        if u32::from(pad) > frame.left {
                            self.broken = true;
                            out(H2Item::Broken {
                                why: format!(
                                    "DATA frame on stream {} with more padding than payload",
                                    h.stream
                                ),
                            });
                            return data.len() as u64;
                        }
                    } else {
                        frame.pad = Some(0);
                    }
                }
                let pad = u32::from(frame.pad.unwrap_or(0));
                let take = (frame.left.saturating_sub(pad) as usize).min(data.len());
                if take > 0 {
                    out(H2Item::Data { stream: h.stream, bytes: &data[..take] });
                    frame.left -= take as u32;
                    data = &data[take..];
                }
                if frame.left <= pad {
                    let skip = (frame.left as usize).min(data.len());
                    frame.left -= skip as u32;
                    self.overhead += skip as u64;
                    data = &data[skip..];
                }
            } else {
                let take = (frame.left as usize).min(data.len());
                let room = self.max_block.saturating_sub(frame.payload.len());
                frame.payload.extend_from_slice(&data[..take.min(room)]);
                frame.left -= take as u32;
                self.overhead += take as u64;
                data = &data[take..];
            }
            if self.frame.as_ref().is_some_and(|f| f.left == 0) {
                self.end_frame(out);
            }
        }
        0
    }

    fn start_frame(&mut self, out: &mut dyn FnMut(H2Item<'_>)) {
        let Some(h) = FrameHeader::parse(&self.header) else { return };
        if h.len > MAX_FRAME {
            self.broken = true;
            out(H2Item::Broken { why: format!("frame length {} out of range", h.len) });
            return;
        }
        if self.block.is_some() && h.kind != CONTINUATION {
            self.broken = true;
            out(H2Item::Broken {
                why: format!("a header block was not continued (frame type {})", h.kind),
            });
            return;
        }
        self.frame = Some(Frame { header: h, left: h.len, pad: None, payload: Vec::new() });
        if h.len == 0 {
            self.end_frame(out);
        }
    }

    fn end_frame(&mut self, out: &mut dyn FnMut(H2Item<'_>)) {
        let Some(frame) = self.frame.take() else { return };
        let h = frame.header;
        let p = &frame.payload;
        let complete = p.len() == h.len as usize;
        match h.kind {
            DATA => out(H2Item::DataEnd { stream: h.stream, end_stream: h.has(FLAG_END_STREAM) }),
            HEADERS | PUSH_PROMISE => {
                let fragment = header_fragment(&h, p);
                let promised = (h.kind == PUSH_PROMISE)
                    .then(|| promised_stream(&h, p))
                    .flatten()
                    .unwrap_or(h.stream);
                let mut block = Block {
                    stream: h.stream,
                    of: promised,
                    end_stream: h.kind == HEADERS && h.has(FLAG_END_STREAM),
                    bytes: Vec::new(),
                    too_long: !complete || fragment.is_none(),
                };
                block.bytes.extend_from_slice(fragment.unwrap_or_default());
                self.block = Some(block);
                if h.has(FLAG_END_HEADERS) {
                    self.end_block(out);
                }
            }
            CONTINUATION => {
                let Some(block) = self.block.as_mut().filter(|b| b.stream == h.stream) else {
                    self.broken = true;
                    out(H2Item::Broken {
                        why: format!("CONTINUATION on stream {} without a header block", h.stream),
                    });
                    return;
                };
                let room = self.max_block.saturating_sub(block.bytes.len());
                block.too_long |= !complete || p.len() > room;
                block.bytes.extend_from_slice(&p[..p.len().min(room)]);
                if h.has(FLAG_END_HEADERS) {
                    self.end_block(out);
                }
            }
            RST_STREAM if p.len() >= 4 => out(H2Item::RstStream { stream: h.stream }),
            SETTINGS if h.stream == 0 => {
                let values = p
                    .chunks_exact(6)
                    .map(|c| {
                        (
                            u16::from_be_bytes([c[0], c[1]]),
                            u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                        )
                    })
                    .collect();
                out(H2Item::Settings { ack: h.has(1), values })
            }
            // PRIORITY, PING, GOAWAY, WINDOW_UPDATE, extensions: nothing a WebSocket needs.
            _ => {}
        }
    }

    fn end_block(&mut self, out: &mut dyn FnMut(H2Item<'_>)) {
        let Some(block) = self.block.take() else { return };
        let stream = block.of;
        if self.hpack_lost {
            out(H2Item::HeadersLost {
                stream,
                why: "header compression state lost with an earlier header block".into(),
                too_long: false,
            });
            return;
        }
        if block.too_long {
            self.hpack_lost = true;
            out(H2Item::HeadersLost {
                stream,
                why: format!(
                    "header block longer than {} bytes (raise --max-http-header)",
                    self.max_block
                ),
                too_long: true,
            });
            return;
        }
        let mut fields = Vec::new();
        let (mut size, mut cut) = (0usize, false);
        let max = self.max_block;
        // Every field is decoded (the table must follow the encoder's), but only a block's
        // worth of them is kept.
        let decoded = self.hpack.decode_with_cb(&block.bytes, |name, value| {
            size = size.saturating_add(name.len() + value.len());
            if fields.len() < MAX_FIELDS && size <= max {
                fields.push((
                    String::from_utf8_lossy(&name).into_owned(),
                    String::from_utf8_lossy(&value).into_owned(),
                ));
            } else {
                cut = true;
            }
        });
        match decoded {
            Ok(()) => out(H2Item::Headers { stream, end_stream: block.end_stream, fields, cut }),
            Err(e) => {
                self.hpack_lost = true;
                out(H2Item::HeadersLost { stream, why: format!("HPACK: {e}"), too_long: false });
            }
        }
    }
}

/// Header fields kept per block (a block of a few kilobytes holds a few dozen).
const MAX_FIELDS: usize = 256;

/// The stream a PUSH_PROMISE promises (after its padding length, when padded).
fn promised_stream(h: &FrameHeader, p: &[u8]) -> Option<u32> {
    let at = usize::from(h.has(FLAG_PADDED));
    let b: [u8; 4] = p.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(b) & 0x7fff_ffff)
}

/// The header block fragment of a HEADERS or PUSH_PROMISE payload: padding, priority and the
/// promised stream taken off. `None` when the payload is shorter than they say.
fn header_fragment<'p>(h: &FrameHeader, p: &'p [u8]) -> Option<&'p [u8]> {
    let mut start = 0usize;
    let mut pad = 0usize;
    if h.has(FLAG_PADDED) {
        pad = usize::from(*p.first()?);
        start = 1;
    }
    if h.kind == HEADERS && h.has(FLAG_PRIORITY) {
        start += 5;
    }
    if h.kind == PUSH_PROMISE {
        start += 4;
    }
    let end = p.len().checked_sub(pad)?;
    p.get(start..end)
}

/// A frame's bytes, for tests here and of the stages that read HTTP/2.
#[cfg(test)]
pub fn frame_bytes(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.extend([kind, flags]);
    f.extend(stream.to_be_bytes());
    f.extend(payload);
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use loona_hpack::Encoder;

    use super::frame_bytes as frame;

    fn read_all(reader: &mut H2Reader, bytes: &[u8], step: usize) -> Vec<String> {
        let mut items = Vec::new();
        for piece in bytes.chunks(step) {
            reader.feed(piece, &mut |i| items.push(format!("{i:?}")));
        }
        items
    }

    #[test]
    fn preface_and_server_settings_are_recognised_from_a_prefix() {
        assert!(starts_with_preface(b"PRI * HT"));
        assert!(starts_with_preface(PREFACE));
        assert!(!starts_with_preface(b"GET / HTTP/1.1"));
        assert!(may_start_server_settings(&frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100])));
        assert!(may_start_server_settings(&[0, 0]));
        assert!(!may_start_server_settings(b"HTTP/1.1 200"));
        assert!(!may_start_server_settings(&frame(HEADERS, 4, 1, &[0x82])));
    }

    #[test]
    fn frames_read_the_same_whatever_the_pieces() {
        let mut enc = Encoder::new();
        let block = enc.encode([
            (&b":method"[..], &b"CONNECT"[..]),
            (b":protocol", b"websocket"),
            (b":path", b"/chat"),
        ]);
        let mut bytes =
            frame(HEADERS, FLAG_PADDED, 1, &[[2u8].as_slice(), &block[..3], &[0, 0]].concat());
        bytes.extend(frame(CONTINUATION, FLAG_END_HEADERS, 1, &block[3..]));
        bytes.extend(frame(DATA, FLAG_PADDED | FLAG_END_STREAM, 1, b"\x03hello\0\0\0"));
        bytes.extend(frame(RST_STREAM, 0, 1, &8u32.to_be_bytes()));
        let whole = read_all(&mut H2Reader::new(4096), &bytes, bytes.len());
        assert_eq!(whole.len(), 4, "{whole:?}");
        assert!(whole[0].contains(r#"(":protocol", "websocket")"#), "{whole:?}");
        assert_eq!(whole[1], r#"Data { stream: 1, bytes: [104, 101, 108, 108, 111] }"#);
        assert_eq!(whole[2], "DataEnd { stream: 1, end_stream: true }");
        assert_eq!(whole[3], "RstStream { stream: 1 }");
        let mut by_byte = read_all(&mut H2Reader::new(4096), &bytes, 1);
        by_byte.retain(|i| !i.starts_with("Data {"));
        let mut expected = whole.clone();
        expected.remove(1);
        assert_eq!(by_byte, expected);
    }

    #[test]
    fn a_push_promise_is_a_request_of_the_promised_stream() {
        let mut enc = Encoder::new();
        let block = enc.encode([(&b":method"[..], &b"GET"[..]), (b":path", b"/pushed")]);
        let mut payload = 6u32.to_be_bytes().to_vec();
        payload.extend(&block[..2]);
        let mut bytes = frame(PUSH_PROMISE, 0, 1, &payload);
        bytes.extend(frame(CONTINUATION, FLAG_END_HEADERS, 1, &block[2..]));
        let items = read_all(&mut H2Reader::new(4096), &bytes, 3);
        assert_eq!(items.len(), 1, "{items:?}");
        assert!(items[0].starts_with("Headers { stream: 6, end_stream: false"), "{items:?}");
    }

    #[test]
    fn a_block_too_long_or_out_of_place_is_reported_not_followed() {
        let mut enc = Encoder::new();
        let block = enc.encode([(&b":path"[..], &b"/a-rather-long-path-for-this-limit"[..])]);
        let bytes = frame(HEADERS, FLAG_END_HEADERS, 1, &block);
        let items = read_all(&mut H2Reader::new(8), &bytes, 5);
        assert!(items[0].starts_with("HeadersLost"), "{items:?}");
        let mut r = H2Reader::new(4096);
        let items = read_all(&mut r, &frame(CONTINUATION, FLAG_END_HEADERS, 3, b"x"), 4);
        assert!(items[0].starts_with("Broken"), "{items:?}");
        assert_eq!(r.feed(b"more", &mut |_| {}), 4);
        let items = read_all(
            &mut H2Reader::new(64),
            &frame(HEADERS, FLAG_END_HEADERS, 1, b"\xff\xff\xff\xff\xff\xff"),
            9,
        );
        assert!(items[0].starts_with("HeadersLost"), "{items:?}");
    }
}
