//! The WebSocket frame header (RFC 6455 §5.2): a checked view over its 2–14 bytes.
//!
//! Every bit pattern is a header; what the RFC forbids (non-minimal lengths, the 64-bit
//! length's most significant bit, reserved opcodes, long or fragmented control frames) is
//! recorded as findings rather than refused, so that a dissector can show the frame and say
//! what is wrong with it.

use super::opcode::OpCode;
use crate::problem::ProblemCode;

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    /// RSV1..RSV3 as a 3-bit value (RSV1 = 4).
    pub rsv: u8,
    pub opcode: OpCode,
    pub mask: Option<[u8; 4]>,
    /// The payload length as the header states it.
    pub payload_len: u64,
    /// 7, 16 or 64: the length encoding used.
    pub len_form: u8,
    /// Header bytes, 2..=14.
    pub header_len: u8,
    /// "The minimal number of bytes MUST be used to encode the length" was not followed.
    pub non_minimal: bool,
    /// "the most significant bit MUST be 0" of the 64-bit length was 1.
    pub msb_set: bool,
}

impl FrameHeader {
    /// Parses a header from the start of `buf`; `None` means more bytes are needed.
    pub fn parse(buf: &[u8]) -> Option<FrameHeader> {
        let b0 = *buf.first()?;
        let b1 = *buf.get(1)?;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7f;
        let (payload_len, len_form, mut at, non_minimal) = match len7 {
            126 => {
                let b = buf.get(2..4)?;
                let n = u64::from(u16::from_be_bytes([b[0], b[1]]));
                (n, 16, 4usize, n < 126)
            }
            127 => {
                let b = buf.get(2..10)?;
                let mut w = [0u8; 8];
                w.copy_from_slice(b);
                let n = u64::from_be_bytes(w);
                (n, 64, 10usize, n <= 0xffff)
            }
            n => (u64::from(n), 7, 2usize, false),
        };
        let mask = if masked {
            let k = buf.get(at..at + 4)?;
            at += 4;
            Some([k[0], k[1], k[2], k[3]])
        } else {
            None
        };
        Some(FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0x07,
            opcode: OpCode::from(b0 & 0x0f),
            mask,
            payload_len,
            len_form,
            header_len: at as u8,
            non_minimal,
            msb_set: len_form == 64 && payload_len >> 63 != 0,
        })
    }

    /// Writes the header (with the length in its `len_form`, even when not minimal).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(self.fin) << 7 | (self.rsv & 7) << 4 | self.opcode.as_u8());
        let m = if self.mask.is_some() { 0x80 } else { 0 };
        match self.len_form {
            16 => {
                out.push(m | 126);
                out.extend_from_slice(&(self.payload_len as u16).to_be_bytes());
            }
            64 => {
                out.push(m | 127);
                out.extend_from_slice(&self.payload_len.to_be_bytes());
            }
            _ => out.push(m | (self.payload_len as u8 & 0x7f)),
        }
        if let Some(k) = self.mask {
            out.extend_from_slice(&k);
        }
    }

    /// Findings that depend on this header alone.
    pub fn problems(&self) -> impl Iterator<Item = ProblemCode> {
        let control = self.opcode.is_control();
        [
            self.non_minimal.then_some(ProblemCode::NonMinimalLength),
            self.msb_set.then_some(ProblemCode::LengthMsbSet),
            matches!(self.opcode, OpCode::Reserved(_)).then_some(ProblemCode::ReservedOpcode),
            // "All control frames MUST have a payload length of 125 bytes or less and MUST
            // NOT be fragmented." (RFC 6455 §5.5)
            (control && self.payload_len > 125).then_some(ProblemCode::ControlFrameTooLong),
            (control && !self.fin).then_some(ProblemCode::FragmentedControlFrame),
        ]
        .into_iter()
        .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hdr(bytes: &[u8]) -> FrameHeader {
        FrameHeader::parse(bytes).expect("complete header")
    }

    #[test]
    fn rfc6455_section_5_7_examples() {
        let h = hdr(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert!(h.fin && h.mask.is_none() && h.opcode == OpCode::Text && h.payload_len == 5);
        let h = hdr(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(h.header_len, 6);
        let h = hdr(&[0x01, 0x03, 0x48, 0x65, 0x6c]);
        assert!(!h.fin && h.opcode == OpCode::Text && h.payload_len == 3);
        let h = hdr(&[0x80, 0x02, 0x6c, 0x6f]);
        assert!(h.fin && h.opcode == OpCode::Continuation);
        let h = hdr(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(h.opcode, OpCode::Ping);
        let h = hdr(&[0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f]);
        assert_eq!(h.opcode, OpCode::Pong);
        let h = hdr(&[0x82, 0x7e, 0x01, 0x00]);
        assert_eq!((h.payload_len, h.len_form, h.header_len), (256, 16, 4));
        let h = hdr(&[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!((h.payload_len, h.len_form, h.header_len), (65536, 64, 10));
        assert_eq!(h.problems().count(), 0);
    }

    #[test]
    fn every_strict_prefix_needs_more() {
        let full = [0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4];
        for n in 0..full.len() {
            assert_eq!(FrameHeader::parse(&full[..n]), None, "prefix {n}");
        }
        assert_eq!(hdr(&full).header_len, 14);
    }

    #[test]
    fn findings() {
        let h = hdr(&[0x81, 0x7e, 0x00, 0x05]);
        assert_eq!(h.problems().collect::<Vec<_>>(), vec![ProblemCode::NonMinimalLength]);
        let h = hdr(&[0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert!(!h.msb_set && h.payload_len == (1 << 63) - 1);
        let h = hdr(&[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1]);
        assert!(h.problems().any(|p| p == ProblemCode::LengthMsbSet));
        let h = hdr(&[0x09, 0x7e, 0x00, 0x80]);
        let p: Vec<_> = h.problems().collect();
        assert!(p.contains(&ProblemCode::ControlFrameTooLong));
        assert!(p.contains(&ProblemCode::FragmentedControlFrame));
        assert!(hdr(&[0x83, 0x00]).problems().any(|p| p == ProblemCode::ReservedOpcode));
    }

    proptest! {
        #[test]
        fn any_header_round_trips(fin: bool, rsv in 0u8..8, op in 0u8..16, mask: Option<[u8; 4]>,
                                  form in prop::sample::select(vec![7u8, 16, 64]), len: u64) {
            let payload_len = match form { 7 => len % 126, 16 => len % 65536, _ => len };
            let h = FrameHeader { fin, rsv, opcode: OpCode::from(op), mask, payload_len, len_form: form,
                header_len: 0, non_minimal: false, msb_set: false };
            let mut buf = Vec::new();
            h.encode(&mut buf);
            let back = FrameHeader::parse(&buf).unwrap();
            prop_assert_eq!(back.header_len as usize, buf.len());
            prop_assert_eq!((back.fin, back.rsv, back.opcode, back.mask, back.payload_len, back.len_form),
                (fin, rsv, OpCode::from(op), mask, payload_len, form));
        }
    }
}
