//! The permessage-deflate inflater, driven by operations: `[setup u8]` then ops
//! (inflate a piece, finish a message, reset, set the output cap), see fuzz/src/lib.rs.
//!
//! A second inflater gets each message's pieces joined into one, and must agree: splitting the
//! compressed bytes anywhere gives the same result. Output is bounded by the keep limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsdissect::ws::deflate::{InflateError, Inflater};
use wsdissect::ws::utf8::Utf8Stream;
use wsdissect_fuzz::{keep_limit, max_output, Input};

/// The reference side: pieces are joined until the message ends.
struct Joined {
    inf: Inflater,
    pending: Vec<u8>,
    out: Vec<u8>,
    failed: bool,
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let setup = input.u8();
    let no_context = setup & 1 != 0;
    let keep = keep_limit(setup >> 1);
    let mut cap = max_output(setup >> 3);
    let mut inf = Inflater::new(no_context);
    inf.set_max_output(cap);
    let mut reference = Joined {
        inf: Inflater::new(no_context),
        pending: Vec::new(),
        out: Vec::new(),
        failed: false,
    };
    reference.inf.set_max_output(cap);
    let mut out = Vec::new();
    let mut failed = false;
    let mut limited = false;
    let mut diverged = false;
    let mut utf8 = Utf8Stream::new();
    while !input.is_empty() {
        let op = input.u8();
        match op % 4 {
            0 => {
                let piece = input.chunk();
                let before = out.len();
                match inf.inflate(piece, &mut out, keep) {
                    Ok(p) => assert!(p.produced >= (out.len() - before) as u64),
                    Err(InflateError::Limit) => {
                        limited = true;
                        failed = true;
                    }
                    Err(InflateError::Corrupt(_) | InflateError::HistoryLost) => failed = true,
                }
                assert!(out.len() <= keep.max(before));
                let _ = utf8.feed(&out[before..]);
                reference.pending.extend_from_slice(piece);
            }
            1 => {
                let r = inf.finish_message(&mut out, keep);
                assert!(out.len() <= keep);
                let joined = std::mem::take(&mut reference.pending);
                let a = reference.inf.inflate(&joined, &mut reference.out, keep);
                let b = reference.inf.finish_message(&mut reference.out, keep);
                let ref_failed = reference.failed || a.is_err() || b.is_err();
                let ref_limited =
                    matches!(a, Err(InflateError::Limit)) || matches!(b, Err(InflateError::Limit));
                let this_failed = failed || r.is_err();
                if limited || ref_limited {
                    // A cap hit on one side only leaves the two windows different.
                    diverged |= this_failed != ref_failed;
                } else if !diverged {
                    assert_eq!(this_failed, ref_failed, "splitting changed success");
                    if !this_failed {
                        assert_eq!(out, reference.out, "splitting changed the output");
                        let p = r.unwrap();
                        assert_eq!(p, b.unwrap(), "splitting changed the progress");
                    }
                }
                let _ = utf8.finish();
                out.clear();
                reference.out.clear();
                reference.failed = false;
                failed = false;
                limited = false;
            }
            2 => {
                inf.reset();
                reference.inf.reset();
                reference.pending.clear();
                reference.out.clear();
                reference.failed = false;
                out.clear();
                failed = false;
                limited = false;
                diverged = false;
            }
            _ => {
                cap = u64::from(input.u32());
                inf.set_max_output(cap);
                reference.inf.set_max_output(cap);
                // The two sides no longer run with the same caps mid-message.
                limited = true;
            }
        }
    }
});
