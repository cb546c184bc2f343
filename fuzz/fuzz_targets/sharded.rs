//! Differential: the sharded dissector of `-j N` (three workers) must produce exactly the
//! records and totals of the one-thread dissector, on arbitrary bytes read as a capture.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use std::path::Path;
use wsdissect::capture::CaptureReader;
use wsdissect::dissector::{run_sharded, Dissect, Dissector};
use wsdissect::event::Event;
use wsdissect::session::Options;
use wsdissect::sink::Sink;
use wsdissect::tls::KeyLog;
use wsdissect_fuzz::small_limits;

/// Keeps every record, as its debug text.
#[derive(Default)]
struct Recorder(Vec<String>);

impl Sink for Recorder {
    fn event(&mut self, ev: &Event<'_>) -> std::io::Result<()> {
        self.0.push(format!("{ev:?}"));
        Ok(())
    }
}

fn read(data: &[u8], d: &mut dyn Dissect) {
    let input = Box::new(Cursor::new(data.to_vec()));
    let Ok(mut reader) = CaptureReader::from_reader(Path::new("fuzz"), input) else { return };
    while let Ok(Some(rec)) = reader.next_packet() {
        d.packet(&rec).expect("the recorder never fails");
        for (kind, secrets) in reader.take_decryption_secrets() {
            d.add_secrets(kind, &secrets);
        }
        for notice in reader.take_notices() {
            d.capture_notice(notice);
        }
    }
    for notice in reader.take_notices() {
        d.capture_notice(notice);
    }
}

fuzz_target!(|data: &[u8]| {
    // Small limits, so that evictions and buffer limits happen at fuzzer sizes.
    let limits = small_limits(16);
    let opts =
        Options { limits, keep_frame_payload: true, keep_message_payload: true, mark_json: true };
    let mut one = Recorder::default();
    let one_totals = {
        let mut dissector = Dissector::new(opts.clone(), false, &mut one);
        read(data, &mut dissector);
        dissector.finish().expect("the recorder never fails")
    };
    let mut three = Recorder::default();
    let (three_totals, _) = run_sharded(opts, KeyLog::default(), 3, &mut three, |d| {
        read(data, d);
        Ok(Ok(()))
    })
    .expect("the recorder never fails");
    assert_eq!(one.0, three.0);
    assert_eq!(format!("{one_totals:?}"), format!("{three_totals:?}"));
});
