//! Every input kept in `fuzz/regressions/` run through the built binary, so that each crash,
//! hang or blow-up fuzzing ever found stays a test of plain `cargo test`.
//!
//! Inputs of the targets that read a capture (`capture_reader`, `dissector`) are run as they
//! are; an input of a structured target (stream events, segments, frames...) cannot be, so it
//! must have a capture twin driving the same path, `<target>/capture/<name>.pcap.gz` (made by
//! `fuzz/regressions/make.py`).

use crate::util::*;
use std::path::{Path, PathBuf};

/// Peak memory allowed for one of these inputs, MiB: each is small, and the limits they hit
/// are far below this at their defaults.
const MAX_RSS_MIB: u64 = 64;
const MAX_SECS: u64 = 20;

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| !matches!(p.extension().and_then(|e| e.to_str()), Some("md" | "py")))
        .collect();
    out.sort();
    out
}

fn check(path: &Path) {
    let what = path.strip_prefix(repo()).unwrap_or(path).display().to_string();
    for all in [false, true] {
        let p = path.to_string_lossy();
        let mut args = vec!["--json", &p];
        if all {
            args.insert(0, "--all");
        }
        let m = run_measured(&args, MAX_SECS);
        let code = m.code.unwrap_or(-1);
        // 2 is a capture that could not be read to its end, said on one line; 0 all the rest.
        let expected = if code == 2 { 2 } else { 0 };
        m.assert_bounded(&format!("{what} {args:?}"), expected, MAX_RSS_MIB, MAX_SECS);
        let recs = records(&m.stdout);
        if expected == 2 {
            let stderr = String::from_utf8_lossy(&m.stderr);
            assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
            assert!(stderr.starts_with("wsdissect: "), "{what}: {stderr}");
            assert_eq!(recs.last().unwrap()["errors"].as_array().unwrap().len(), 1, "{what}");
        }
    }
}

#[test]
fn every_fuzz_regression_input_runs_bounded() {
    let root = repo().join("fuzz/regressions");
    let mut ran = 0;
    for target in std::fs::read_dir(&root).unwrap() {
        let dir = target.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let reads_captures = matches!(name.as_str(), "capture_reader" | "dissector");
        for input in files_in(&dir) {
            let capture = if reads_captures {
                input.clone()
            } else {
                let file = input.file_name().unwrap().to_string_lossy().to_string();
                let twin = dir.join("capture").join(format!("{file}.pcap.gz"));
                assert!(
                    twin.is_file(),
                    "{} has no capture twin {}",
                    input.display(),
                    twin.display()
                );
                twin
            };
            check(&capture);
            ran += 1;
        }
    }
    assert!(ran >= 3, "only {ran} regression inputs found");
}
