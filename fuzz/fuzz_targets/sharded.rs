//! Differential: the sharded dissector of `-j N` (three workers) must produce exactly the
//! records and totals of the one-thread dissector, on arbitrary bytes read as a capture; also
//! for a sink that reads only a prefix of payloads, no problem-free frames and the JSON marks
//! of messages, which the workers then cut, leave out and decide.
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

/// Keeps every record it reads, as its debug text.
#[derive(Default)]
struct Recorder {
    records: Vec<String>,
    /// Reads only this many payload bytes, and no frame or message without problems.
    prefix: Option<usize>,
}

impl Sink for Recorder {
    fn event(&mut self, ev: &Event<'_>) -> std::io::Result<()> {
        let Some(keep) = self.prefix else {
            self.records.push(format!("{ev:?}"));
            return Ok(());
        };
        if matches!(ev, Event::Frame(_) | Event::Message(_)) && ev.problems().is_empty() {
            return Ok(());
        }
        let mut ev = ev.clone();
        // As a JSON view with a payload limit: marked before it is cut.
        ev.cut_payload(keep, true);
        self.records.push(format!("{ev:?}"));
        Ok(())
    }
    fn payload_prefix(&self) -> Option<usize> {
        self.prefix
    }
    fn reads_frames(&self) -> bool {
        self.prefix.is_none()
    }
    fn reads_json_marks(&self) -> bool {
        self.prefix.is_some()
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
    // Every payload kept whole.
    let opts = Options { limits, ..Options::default() };
    for prefix in [None, Some(data.len() % 7)] {
        let mut one = Recorder { records: Vec::new(), prefix };
        let one_totals = {
            let mut dissector = Dissector::new(opts.clone(), false, &mut one);
            read(data, &mut dissector);
            dissector.finish().expect("the recorder never fails")
        };
        let mut three = Recorder { records: Vec::new(), prefix };
        let (three_totals, _) = run_sharded(opts.clone(), KeyLog::default(), 3, &mut three, |d| {
            read(data, d);
            Ok(Ok(()))
        })
        .expect("the recorder never fails");
        assert_eq!(one.records, three.records);
        assert_eq!(format!("{one_totals:?}"), format!("{three_totals:?}"));
    }
});
