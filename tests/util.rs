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

/// What one measured run of wsdissect did.
#[derive(Debug)]
pub struct Measured {
    /// The exit code, `None` when a signal ended it (a crash) or it was killed at the deadline.
    pub code: Option<i32>,
    pub timed_out: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Peak resident memory of the wsdissect process alone, in KiB.
    pub max_rss_kib: u64,
    pub elapsed: std::time::Duration,
}

impl Measured {
    /// Asserts the run exited by itself (no signal, no deadline) with `code`, within `max_rss`
    /// MiB of memory and `max_secs` seconds.
    pub fn assert_bounded(&self, what: &str, code: i32, max_rss_mib: u64, max_secs: u64) {
        let stderr = String::from_utf8_lossy(&self.stderr);
        assert!(!self.timed_out, "{what}: still running after {max_secs} s");
        assert_eq!(self.code, Some(code), "{what}: exit status, stderr: {stderr}");
        assert!(
            self.max_rss_kib <= max_rss_mib * 1024,
            "{what}: peak RSS {} KiB over {max_rss_mib} MiB",
            self.max_rss_kib
        );
        assert!(
            self.elapsed.as_secs() < max_secs,
            "{what}: took {:?}, more than {max_secs} s",
            self.elapsed
        );
    }
}

const PROBE_ENV: &str = "WSDISSECT_TEST_RSS_PROBE";

/// Runs wsdissect with `args`, killing it after `deadline_secs`, and measures its peak memory.
///
/// The peak is `getrusage(RUSAGE_CHILDREN)` taken in a process whose only child is wsdissect:
/// this test binary run again as `util::rss_probe`. In this process the figure would be the
/// largest of every child any test has reaped so far.
pub fn run_measured(args: &[&str], deadline_secs: u64) -> Measured {
    let dir =
        std::env::temp_dir().join(format!("wsdissect-probe-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = serde_json::json!({
        "bin": bin(),
        "args": args,
        "deadline_secs": deadline_secs,
        "dir": dir,
    });
    let probe = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "util::rss_probe", "--nocapture", "--test-threads=1", "--quiet"])
        .env(PROBE_ENV, spec.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .expect("run the probe");
    assert!(probe.success(), "the probe failed: {probe:?}");
    let result: Value =
        serde_json::from_slice(&std::fs::read(dir.join("result.json")).unwrap()).unwrap();
    let m = Measured {
        code: result["code"].as_i64().map(|c| c as i32),
        timed_out: result["timed_out"].as_bool().unwrap(),
        stdout: std::fs::read(dir.join("stdout")).unwrap(),
        stderr: std::fs::read(dir.join("stderr")).unwrap(),
        max_rss_kib: result["max_rss_kib"].as_u64().unwrap(),
        elapsed: std::time::Duration::from_secs_f64(result["secs"].as_f64().unwrap()),
    };
    let _ = std::fs::remove_dir_all(&dir);
    m
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The other half of [`run_measured`]: does nothing unless started by it.
#[test]
fn rss_probe() {
    let Ok(spec) = std::env::var(PROBE_ENV) else { return };
    let spec: Value = serde_json::from_str(&spec).unwrap();
    let dir = PathBuf::from(spec["dir"].as_str().unwrap());
    let args: Vec<&str> =
        spec["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let deadline = std::time::Duration::from_secs(spec["deadline_secs"].as_u64().unwrap());
    let start = std::time::Instant::now();
    let mut child = Command::new(spec["bin"].as_str().unwrap())
        .args(&args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
        .spawn()
        .expect("run wsdissect");
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let secs = start.elapsed().as_secs_f64();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    let result = serde_json::json!({
        "code": status.code(),
        "timed_out": timed_out,
        // ru_maxrss is in KiB on Linux.
        "max_rss_kib": usage.max_rss().max(0) as u64,
        "secs": secs,
    });
    std::fs::write(dir.join("result.json"), result.to_string()).unwrap();
}

/// (packet, stream, fin, rsv, opcode, masked, payload length) per frame.
pub type FrameKey = (u64, u64, bool, u64, u64, bool, u64);

/// Our frame records as [`FrameKey`]s, sorted (to compare with tshark's).
pub fn our_frames(recs: &[Value]) -> Vec<FrameKey> {
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
