//! Running the built binary and reading its JSON Lines.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_wsdissect")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn testdata(rel: &str) -> PathBuf {
    repo().join("testdata").join(rel)
}

/// `../shared/captures`, when it exists next to the repository.
pub fn shared_captures() -> Option<PathBuf> {
    let p = repo().join("../shared/captures");
    p.is_dir().then_some(p)
}

/// The binary, without a key log from the environment (tests say which key log they use).
pub fn command() -> Command {
    let mut c = Command::new(bin());
    c.env_remove("SSLKEYLOGFILE");
    c
}

pub fn run(args: &[&str]) -> Output {
    command().args(args).output().expect("run wsdissect")
}

pub fn run_path(args: &[&str], path: &Path) -> Output {
    command().args(args).arg(path).output().expect("run wsdissect")
}

/// Parses JSON Lines, asserting every line is an object with a string `type`, that the first
/// is `begin` and the last `end`.
pub fn records(stdout: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(stdout).expect("output is UTF-8");
    let recs: Vec<Value> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}"))
        })
        .collect();
    assert!(!recs.is_empty(), "no output");
    for r in &recs {
        assert!(r.get("type").and_then(Value::as_str).is_some(), "record without type: {r}");
    }
    assert_eq!(recs[0]["type"], "begin", "first record must be begin");
    assert_eq!(recs[recs.len() - 1]["type"], "end", "last record must be end");
    recs
}

pub fn of_type<'a>(recs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    recs.iter().filter(|r| r["type"] == kind).collect()
}

/// JSON Lines of a capture, asserting exit 0.
pub fn json_of(path: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let out = run_path(&args, path);
    assert!(
        out.status.success(),
        "{} exited {:?}: {}",
        path.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    records(&out.stdout)
}

/// Runs wsdissect, reads one line of its output and closes the pipe, like `| head -1`;
/// asserts it then exits 0 without a word on stderr, and returns the line.
pub fn first_line_then_close(args: &[&str]) -> String {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wsdissect");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    // The reader is dropped here.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    assert!(out.stderr.is_empty(), "{args:?}: {stderr}");
    first
}
