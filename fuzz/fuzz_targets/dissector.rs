//! The whole dissector on arbitrary bytes read as a capture (pcap, pcapng, gzip), with a sink
//! that drops every record. An odd-length input runs with `--all` (every TCP connection
//! reported), an even-length one without, so both output sequencer paths are fuzzed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use std::path::Path;
use wsdissect::capture::CaptureReader;
use wsdissect::dissector::Dissector;
use wsdissect::session::Options;
use wsdissect_fuzz::{small_limits, NullSink};

fuzz_target!(|data: &[u8]| {
    let input = Box::new(Cursor::new(data.to_vec()));
    let Ok(mut reader) = CaptureReader::from_reader(Path::new("fuzz"), input) else { return };
    // Smaller limits than the defaults so that inputs of fuzzer size reach them.
    let limits = small_limits(64);
    // Every payload kept whole.
    let opts = Options { limits, ..Options::default() };
    let mut sink = NullSink::default();
    let mut dissector = Dissector::new(opts, data.len() % 2 == 1, &mut sink);
    let mut packets = 0u64;
    while let Ok(Some(rec)) = reader.next_packet() {
        packets += 1;
        dissector.packet(&rec).expect("the null sink never fails");
        for notice in reader.take_notices() {
            dissector.capture_notice(notice);
        }
    }
    for notice in reader.take_notices() {
        dissector.capture_notice(notice);
    }
    let totals = dissector.finish().expect("the null sink never fails");
    assert_eq!(totals.packets, packets);
    assert!(sink.last_packet <= packets);
});
