//! The real-world captures in `../shared/captures/`: every one reads to the end, and our
//! frames agree with tshark's (the `expected/*.tsv` hints) except where tshark is wrong
//! (see docs/tshark-differences.md).

use crate::util::*;
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

/// Captures where we find more frames than tshark, and how many: WebSocket connections whose
/// handshake is not in the capture, which tshark does not dissect (docs/tshark-differences.md).
const FRAMES_TSHARK_MISSES: &[(&str, usize)] = &[
    ("ndn-tools/ipv4-websocket-segmented.pcap", 2),
    ("onewesong-websocket_test/websocket.pcap", 1),
    ("pcap-http-analyzer/imageTransfer.pcapng", 6),
];

#[test]
fn frames_agree_with_tshark() {
    let Some(dir) = shared_captures() else { return };
    let mut failures = Vec::new();
    for f in captures(&dir) {
        let rel = f.strip_prefix(&dir).unwrap().to_string_lossy().to_string();
        let tsv = dir.join("expected").join(format!("{rel}.tsv"));
        if !tsv.is_file() {
            continue;
        }
        let want = tshark_frames(&tsv);
        let recs = json_of(&f, &[]);
        let got = our_frames(&recs);
        let missing: Vec<_> = want.iter().filter(|w| !got.contains(w)).take(4).collect();
        let extra: Vec<_> = got.iter().filter(|g| !want.contains(g)).collect();
        let allowed = FRAMES_TSHARK_MISSES.iter().find(|(n, _)| *n == rel).map_or(0, |(_, n)| *n);
        // Every extra frame must belong to a connection picked up without its handshake.
        let midstream: Vec<u64> = of_type(&recs, "problem")
            .iter()
            .filter(|p| p["code"] == "handshake-not-seen")
            .map(|p| p["stream"].as_u64().unwrap())
            .collect();
        let unexplained = extra.iter().any(|e| !midstream.contains(&e.1));
        if !missing.is_empty() || extra.len() != allowed || unexplained {
            failures.push(format!(
                "{rel}: tshark {} frames, ours {}; missing {missing:?} extra {:?}",
                want.len(),
                got.len(),
                extra.iter().take(4).collect::<Vec<_>>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
