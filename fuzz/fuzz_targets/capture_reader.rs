//! The capture reader (pcap, pcapng, gzip of either) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use std::path::Path;
use wsdissect::capture::CaptureReader;

fuzz_target!(|data: &[u8]| {
    let input = Box::new(Cursor::new(data.to_vec()));
    let Ok(mut reader) = CaptureReader::from_reader(Path::new("fuzz"), input) else { return };
    let mut last_read = 0;
    while let Ok(Some(rec)) = reader.next_packet() {
        assert!(rec.data.len() as u64 <= u64::from(rec.origlen));
        assert!(rec.ts.nanos < 1_000_000_000);
        let read = reader.bytes_read();
        assert!(read >= last_read, "the reader went backwards");
        last_read = read;
        let _ = reader.take_notices();
        let _ = reader.take_decryption_secrets();
    }
});
