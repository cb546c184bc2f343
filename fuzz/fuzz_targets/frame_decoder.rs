//! The WebSocket frame decoder, header codec and frame sniffer (one-shot and incremental):
//! `[chunk u8][ops u8][stream]`.
//!
//! The stream is decoded whole and again in pieces of `chunk % 64 + 1` bytes, and both must give
//! the same frames and payload; then once more with payload skips and resets between pieces
//! (what a TCP gap causes), which must only keep the decoder's own accounting consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsdissect::ws::decoder::{FrameDecoder, FrameEvent};
use wsdissect::ws::frame::FrameHeader;
use wsdissect::ws::sniff::{find_frame_start, frame_run, FrameScan};

#[derive(Debug, PartialEq, Eq)]
enum Ev {
    Header(FrameHeader),
    Payload(Vec<u8>),
    End,
}

fn decode<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> (Vec<Ev>, FrameDecoder) {
    let mut d = FrameDecoder::new();
    let mut evs: Vec<Ev> = Vec::new();
    for p in pieces {
        d.feed(p, &mut |ev| match ev {
            FrameEvent::Header(h) => evs.push(Ev::Header(h)),
            FrameEvent::Payload(b) => {
                assert!(!b.is_empty());
                match evs.last_mut() {
                    Some(Ev::Payload(v)) => v.extend_from_slice(b),
                    _ => evs.push(Ev::Payload(b.to_vec())),
                }
            }
            FrameEvent::End => evs.push(Ev::End),
        });
    }
    (evs, d)
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else { return };
    let Some((&ops, stream)) = rest.split_first() else { return };
    let (whole, d) = decode(std::iter::once(stream));
    let (pieces, _) = decode(stream.chunks(usize::from(chunk % 64) + 1));
    assert_eq!(whole, pieces, "splitting the stream changed the frames");

    // Headers: lengths add up, and each header encodes back to itself.
    let mut used = 0u64;
    for ev in &whole {
        match ev {
            Ev::Header(h) => {
                used += u64::from(h.header_len);
                let mut buf = Vec::new();
                h.encode(&mut buf);
                assert_eq!(buf.len(), usize::from(h.header_len));
                assert_eq!(FrameHeader::parse(&buf), Some(*h));
                let _ = h.problems().count();
            }
            Ev::Payload(p) => used += p.len() as u64,
            Ev::End => {}
        }
    }
    let held = if d.in_frame() && d.current_header().is_none() {
        // Header bytes waiting for the rest of their header.
        (stream.len() as u64).saturating_sub(used)
    } else {
        0
    };
    assert_eq!(used + held, stream.len() as u64, "bytes lost");
    assert!(d.current_header().is_none_or(|h| d.payload_offset() <= h.payload_len));

    // Gaps: skips and resets between pieces.
    let mut d = FrameDecoder::new();
    for (i, p) in stream.chunks(usize::from(chunk % 64) + 1).enumerate() {
        d.feed(p, &mut |_| {});
        match (ops >> (i % 8)) & 1 {
            0 => {}
            _ if i % 3 == 0 => d.reset(),
            _ => {
                let before = d.remaining();
                if let Some(n) = d.skip_payload(u64::from(chunk)) {
                    assert!(n < before.max(1));
                    assert_eq!(d.remaining(), before - n);
                }
            }
        }
    }

    // The sniffer, with every masking hint; on short streams, the incremental search answers
    // as a fresh search of each prefix (a fresh search of every prefix is quadratic).
    let step = (usize::from(chunk % 64) + 1).max(stream.len() / 128);
    for masked in [None, Some(false), Some(true)] {
        if stream.len() <= 512 {
            let mut scan = FrameScan::new();
            let mut end = 0;
            while end < stream.len() {
                end = (end + step).min(stream.len());
                let prefix = &stream[..end];
                assert_eq!(scan.find(prefix, masked), find_frame_start(prefix, masked));
            }
        }
        // (A search looks at every offset: at most 4 KiB of them keep executions fast.)
        let head = &stream[..stream.len().min(4096)];
        if let Some(at) = find_frame_start(head, masked) {
            assert!(at < head.len());
            assert!(frame_run(&head[at..], masked, 64).frames >= 1);
        }
        let run = frame_run(stream, masked, usize::from(ops));
        assert!(run.bytes <= stream.len());
        assert!(run.frames <= usize::from(ops));
    }
});
