//! The real-world captures in `../shared/captures/`: every one reads to the end, and our
//! frames agree with tshark's (the `expected/*.tsv` hints) except where tshark is wrong
//! (see docs/tshark-differences.md).

use crate::util::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn captures(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "expected") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// (packet, stream, fin, rsv, opcode, masked, payload length) per frame.
type FrameKey = (u64, u64, bool, u64, u64, bool, u64);

fn tshark_frames(tsv: &Path) -> Vec<FrameKey> {
    let text = std::fs::read_to_string(tsv).unwrap();
    let mut out: Vec<FrameKey> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok());
            let len7 = num(9).unwrap();
            let len = match len7 {
                126 => num(10).unwrap(),
                127 => num(11).unwrap(),
                n => n,
            };
            let rsv = u64::from_str_radix(f[6].trim_start_matches("0x"), 16).unwrap();
            (num(0).unwrap(), num(1).unwrap(), f[5] == "1", rsv, num(7).unwrap(), f[8] == "1", len)
        })
        .collect();
    out.sort();
    out
}

fn our_frames(recs: &[Value]) -> Vec<FrameKey> {
    let mut out: Vec<FrameKey> = of_type(recs, "frame")
        .iter()
        .map(|f| {
            (
                f["packet"].as_u64().unwrap(),
                f["stream"].as_u64().unwrap(),
                f["fin"].as_bool().unwrap(),
                f["rsv"].as_u64().unwrap(),
                f["opcode"].as_u64().unwrap(),
                f["masked"].as_bool().unwrap(),
                f["payload_len"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_shared_capture_reads_to_the_end() {
    let Some(dir) = shared_captures() else { return };
    let files = captures(&dir);
    assert!(files.len() >= 30, "expected the shared captures, found {}", files.len());
    for f in files {
        let recs = json_of(&f, &["--conns"]);
        let end = recs.last().unwrap();
        assert!(end["packets"].as_u64().unwrap() > 0, "{}", f.display());
        assert!(end["errors"].as_array().unwrap().is_empty(), "{}: {}", f.display(), end["errors"]);
    }
}

/// Captures where our frames differ from tshark's on purpose.
const TSHARK_DIFFERS: &[&str] = &[];

#[test]
fn frames_agree_with_tshark() {
    let Some(dir) = shared_captures() else { return };
    let mut failures = Vec::new();
    for f in captures(&dir) {
        let rel = f.strip_prefix(&dir).unwrap().to_string_lossy().to_string();
        let tsv = dir.join("expected").join(format!("{rel}.tsv"));
        if !tsv.is_file() || TSHARK_DIFFERS.contains(&rel.as_str()) {
            continue;
        }
        let want = tshark_frames(&tsv);
        let got = our_frames(&json_of(&f, &[]));
        if want != got {
            let missing: Vec<_> = want.iter().filter(|w| !got.contains(w)).take(4).collect();
            let extra: Vec<_> = got.iter().filter(|g| !want.contains(g)).take(4).collect();
            failures.push(format!(
                "{rel}: tshark {} frames, ours {}; missing {missing:?} extra {extra:?}",
                want.len(),
                got.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
