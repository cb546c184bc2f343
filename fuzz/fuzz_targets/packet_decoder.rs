//! The packet decoder (link, IP with fragment reassembly, TCP) on a sequence of packets:
//! `[frag-limit u8]` then records `[link u8][ts-delta u8][u16 len][bytes]` (fuzz/src/lib.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsdissect::capture::{CaptureRecord, Timestamp, TsPrecision};
use wsdissect::decode::{Decoded, Decoder};
use wsdissect::limits::Limits;
use wsdissect_fuzz::{fragment_limit, link_from_selector, Input};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let limits = Limits { max_ip_fragment_bytes: fragment_limit(input.u8()), ..Limits::default() };
    let mut decoder = Decoder::new(&limits);
    let mut secs = 0i64;
    while !input.is_empty() {
        let link = link_from_selector(input.u8());
        secs += i64::from(input.u8());
        let bytes = input.chunk();
        let rec = CaptureRecord {
            ts: Timestamp::new(secs, 0),
            precision: TsPrecision::Micro,
            link,
            interface: 0,
            origlen: bytes.len() as u32,
            data: bytes,
        };
        match decoder.decode(&rec) {
            Decoded::Tcp(seg) => {
                // A segment borrowed from the packet lies inside it; one rebuilt from
                // fragments is at most a whole IP datagram.
                assert!(seg.payload.len() <= bytes.len().max(65535));
            }
            Decoded::Error(e) => assert!(!e.reason.is_empty()),
            Decoded::FragmentHeld | Decoded::NotTcp | Decoded::UnsupportedLink(_) => {}
        }
        let _ = decoder.take_notices();
    }
});
