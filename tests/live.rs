//! Live capture (`-i`) and `-w`, end to end.
//!
//! The capture tests need root or CAP_NET_RAW (CI runs as root). Without it they fail with a
//! message saying so; they are never skipped. The WebSocket exchange is made by real peers:
//! Python `websockets` (scripts/setup.sh installs it), client and server on loopback.

use crate::util::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wsdissect-live-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits at most `limit` for `child`; kills it and fails past that.
fn wait_for(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `wsdissect -i ...` whose `begin` record has been read: the capture (and its
/// filter) is active from then on.
struct Capture {
    child: Child,
    stdout: BufReader<ChildStdout>,
    begin: String,
}

fn start_capture(args: &[&str]) -> Capture {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wsdissect");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut begin = String::new();
    stdout.read_line(&mut begin).unwrap();
    if begin.is_empty() {
        let status = wait_for(&mut child, Duration::from_secs(5), "wsdissect");
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        if err.contains("permission denied") {
            panic!(
                "live capture tests need root or CAP_NET_RAW (CI runs as root); wsdissect said: \
                 {err}"
            );
        }
        panic!("wsdissect {args:?} did not start capturing ({status}): {err}");
    }
    Capture { child, stdout, begin }
}

impl Capture {
    /// Waits for the exit (at most `limit`) and returns it with every record.
    fn finish(mut self, limit: Duration) -> (ExitStatus, Vec<Value>, String) {
        // Read stdout while waiting, so a full pipe cannot block the capture.
        let mut stdout = self.stdout;
        let reader = std::thread::spawn(move || {
            let mut rest = String::new();
            stdout.read_to_string(&mut rest).unwrap();
            rest
        });
        let status = wait_for(&mut self.child, limit, "wsdissect");
        let rest = reader.join().unwrap();
        let mut err = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let all = format!("{}{rest}", self.begin);
        (status, records(all.as_bytes()), err)
    }
}

/// The peers: a Python `websockets` server that answers each message (text with "echo: "
/// before it, binary reversed), and a client that sends text, binary and non-ASCII text, then
/// closes with 1000 "done". Compression is off so that frames carry the messages as sent.
/// Prints what each side sent, as JSON.
const PEERS: &str = r#"
import asyncio, json, sys
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

port = int(sys.argv[1])
sent = []

def note(frm, m):
    sent.append({"from": frm, "text": m} if isinstance(m, str) else {"from": frm, "hex": m.hex()})

async def answer(ws):
    async for m in ws:
        reply = "echo: " + m if isinstance(m, str) else bytes(reversed(m))
        await ws.send(reply)
        note("server", reply)

async def main():
    async with serve(answer, "127.0.0.1", port, compression=None, ping_interval=None):
        url = f"ws://127.0.0.1:{port}/live"
        async with connect(url, compression=None, ping_interval=None) as ws:
            for m in ["hello live", b"\x00\x01\xfe\xff", "second \u2713"]:
                await ws.send(m)
                note("client", m)
                await ws.recv()
            await ws.close(1000, "done")

asyncio.run(asyncio.wait_for(main(), 10))
print(json.dumps(sent))
"#;

/// Runs the peers on `port`; returns what they sent as (from, opcode name, payload key,
/// payload) with the payload as wsdissect writes it (text, or base64 bytes).
fn run_peers(port: u16) -> Vec<(String, &'static str, &'static str, String)> {
    let mut child = Command::new("python3")
        .args(["-c", PEERS, &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/setup.sh installs it)");
    let status = wait_for(&mut child, Duration::from_secs(20), "the WebSocket peers");
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(
        status.success(),
        "the WebSocket peers failed (Python `websockets` is needed: scripts/setup.sh installs \
         it): {err}"
    );
    let sent: Vec<Value> = serde_json::from_str(out.trim()).expect("peers print JSON");
    sent.iter()
        .map(|m| {
            let from = m["from"].as_str().unwrap().to_string();
            match (m.get("text"), m.get("hex")) {
                (Some(t), _) => (from, "text", "text", t.as_str().unwrap().to_string()),
                (_, Some(h)) => {
                    let h = h.as_str().unwrap();
                    let bytes: Vec<u8> = (0..h.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                        .collect();
                    (from, "binary", "bytes", base64(&bytes))
                }
                _ => panic!("bad peer line {m}"),
            }
        })
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Records other than `begin` and `end`.
fn body(recs: &[Value]) -> Vec<Value> {
    recs.iter().filter(|r| r["type"] != "begin" && r["type"] != "end").cloned().collect()
}

#[test]
fn live_capture_of_a_websocket_exchange_on_loopback() {
    let port = free_port();
    let dir = tmp_dir("exchange");
    let written = dir.join("live.pcap");
    let filter = format!("tcp port {port}");
    let w = written.to_str().unwrap();
    let cap = start_capture(&["-i", "lo", "-f", &filter, "--json", "--duration", "8", "-w", w]);
    let started = Instant::now();
    let sent = run_peers(port);
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "the peers took {:?}, too close to --duration 8 for the capture to hold everything",
        started.elapsed()
    );
    let (status, recs, err) = cap.finish(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "exit status; stderr: {err}");

    // The handshake, accepted and checked.
    let hs = of_type(&recs, "handshake");
    assert_eq!(hs.len(), 1, "one handshake: {hs:?}");
    assert_eq!(hs[0]["status"], 101);
    assert_eq!(hs[0]["accept_ok"], true);
    assert_eq!(hs[0]["path"], "/live");
    assert_eq!(hs[0]["server"], format!("127.0.0.1:{port}"));

    // Every data frame, in order, both directions, as the peers sent it.
    let frames = of_type(&recs, "frame");
    let data: Vec<_> = frames.iter().filter(|f| f["opcode"] == 1 || f["opcode"] == 2).collect();
    assert_eq!(data.len(), sent.len(), "data frames: {data:?}\nsent: {sent:?}");
    for (f, (from, opcode, key, payload)) in data.iter().zip(&sent) {
        assert_eq!(f["from"], from.as_str(), "{f}");
        assert_eq!(f["opcode_name"], *opcode, "{f}");
        assert_eq!(f[*key], payload.as_str(), "{f}");
        assert_eq!(f["masked"], from == "client", "{f}");
        assert_eq!(f["problems"], serde_json::json!([]), "{f}");
    }
    let messages = of_type(&recs, "message");
    assert_eq!(messages.len(), sent.len(), "messages: {messages:?}");

    // The close handshake: client's close, then the server's echo.
    let closes: Vec<_> = frames.iter().filter(|f| f["opcode_name"] == "close").collect();
    assert_eq!(closes.len(), 2, "close frames: {closes:?}");
    for (f, from) in closes.iter().zip(["client", "server"]) {
        assert_eq!(f["from"], from, "{f}");
        assert_eq!(f["close_code"], 1000, "{f}");
        assert_eq!(f["close_reason"], "done", "{f}");
    }
    let problems = of_type(&recs, "problem");
    assert!(problems.is_empty(), "problems: {problems:?}");

    // The end record, with libpcap's counters.
    let end = recs.last().unwrap();
    assert_eq!(end["type"], "end");
    assert_eq!(end["websocket_connections"], 1, "{end}");
    assert_eq!(end["errors"], serde_json::json!([]), "{end}");
    assert_eq!(end["kernel_dropped"], 0, "{end}");
    assert!(end["kernel_received"].as_u64().unwrap() >= end["packets"].as_u64().unwrap(), "{end}");

    // -w wrote the same packets: reading the file back gives the same records.
    let again = json_of(&written, &[]);
    assert_eq!(body(&again), body(&recs), "records of the -w file differ from the live run");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn live_capture_stops_on_sigint_and_on_count() {
    // Ctrl-C: the run ends cleanly with its end record and exit 0.
    let filter = format!("tcp port {}", free_port());
    let cap = start_capture(&["-i", "lo", "-f", &filter, "--json"]);
    let pid = cap.child.id().to_string();
    let kill = Command::new("kill").args(["-INT", &pid]).status().expect("kill");
    assert!(kill.success());
    let (status, recs, err) = cap.finish(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "exit status after SIGINT; stderr: {err}");
    let end = recs.last().unwrap();
    assert_eq!(end["packets"], 0, "{end}");
    assert!(end.get("kernel_received").is_some(), "{end}");

    // -c 2 on connection attempts to a closed port (SYN, RST each).
    let port = free_port();
    let filter = format!("tcp port {port}");
    let mut cap = start_capture(&["-i", "lo", "-f", &filter, "--json", "-c", "2"]);
    let start = Instant::now();
    while cap.child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(10) {
        let _ = TcpStream::connect(("127.0.0.1", port));
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, recs, err) = cap.finish(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "exit status with -c; stderr: {err}");
    assert_eq!(recs.last().unwrap()["packets"], 2);

    // --duration ends the run without any traffic (the loop wakes up on its own).
    let filter = format!("tcp port {}", free_port());
    let start = Instant::now();
    let cap = start_capture(&["-i", "any", "-f", &filter, "--json", "--duration", "0.5"]);
    let (status, recs, err) = cap.finish(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    assert_eq!(recs.last().unwrap()["type"], "end");
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
}

/// One line on standard error, nothing on standard output, exit 2.
fn one_line_exit_2(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    assert!(out.stdout.is_empty(), "{args:?} wrote to stdout: {:?}", out.stdout);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(err.lines().count(), 1, "{args:?}: expected one line, got {err:?}");
    assert!(err.starts_with("wsdissect: "), "{err:?}");
    err
}

#[test]
fn unknown_interface_is_one_line_listing_the_available_ones() {
    let err = one_line_exit_2(&["-i", "no-such-if0", "--json"]);
    assert!(err.contains("no interface \"no-such-if0\""), "{err}");
    assert!(err.contains("available: ") && err.contains("lo"), "{err}");
}

#[test]
fn bad_filter_is_one_line() {
    let err = one_line_exit_2(&["-i", "lo", "-f", "tcp port and", "--json"]);
    if err.contains("permission denied") {
        panic!("live capture tests need root or CAP_NET_RAW (CI runs as root): {err}");
    }
    assert!(err.contains("bad capture filter \"tcp port and\""), "{err}");
}

#[test]
fn list_interfaces() {
    let out = run(&["-D"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with(|c: char| c.is_ascii_digit()) && l.contains(". lo")),
        "{text}"
    );
}

/// `-w` on file input, then the written file read back: the same output but for `inputs`.
fn write_then_reread(inputs: &[PathBuf], name: &str, magic: &[u8; 4]) {
    let dir = tmp_dir("write");
    let written = dir.join(name);
    let mut args: Vec<&str> = vec!["--json", "--conns", "-w", written.to_str().unwrap()];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    let first = run(&args);
    assert_eq!(first.status.code(), Some(0), "{}", String::from_utf8_lossy(&first.stderr));
    let head = std::fs::read(&written).unwrap();
    assert_eq!(&head[..4], magic, "{name}: format of the written file");
    let second = run_path(&["--json", "--conns"], &written);
    assert_eq!(second.status.code(), Some(0), "{}", String::from_utf8_lossy(&second.stderr));
    let (a, b) = (records(&first.stdout), records(&second.stdout));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        let (mut x, mut y) = (x.clone(), y.clone());
        if x["type"] == "begin" {
            x.as_object_mut().unwrap().remove("inputs");
            y.as_object_mut().unwrap().remove("inputs");
        }
        assert_eq!(x, y, "{name}: records differ after -w and reading back");
    }
    let _ = std::fs::remove_file(&written);
}

#[test]
fn write_file_input_and_read_it_back() {
    // One link type: pcap.
    let pcap_le = 0xa1b2_c3d4u32.to_le_bytes();
    let pcapng = 0x0a0d_0d0au32.to_le_bytes();
    write_then_reread(&[testdata("py-websockets-basic/capture.pcap")], "one.pcap", &pcap_le);
    write_then_reread(&[testdata("crafted-deflate/capture.pcap.gz")], "gz.pcap", &pcap_le);
    // Several link types (Ethernet, then SLL2, raw IP, loop...): rewritten as pcapng.
    let mixed = [
        testdata("node-ws-deflate/capture.pcap"),
        testdata("crafted-link-types/capture.pcapng"),
        testdata("crafted-midstream-gap/capture.pcap"),
    ];
    write_then_reread(&mixed, "mixed.pcap", &pcapng);
    // A .pcapng name asks for pcapng.
    write_then_reread(&[testdata("py-websockets-basic/capture.pcap")], "named.pcapng", &pcapng);
}

#[test]
fn write_to_a_directory_that_does_not_exist_is_an_error() {
    let out = run(&[
        "--json",
        "-w",
        "/nonexistent-dir/x.pcap",
        testdata("py-websockets-basic/capture.pcap").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent-dir/x.pcap"), "{err}");
}

/// wss:// captured live with `--keylog` naming a key log that is still empty when the capture
/// starts: the TLS peers (Node `ws` over https, testdata/gen/node_wss.js, `npm ci` there)
/// append their secrets during the handshake, and wsdissect reads the file again when a
/// connection's secrets are not in it yet.
#[test]
fn live_capture_decrypts_wss_with_a_growing_key_log() {
    let gen = repo().join("testdata/gen");
    assert!(
        gen.join("node_modules/ws").is_dir(),
        "testdata/gen/node_modules/ws is missing: run `npm ci` in testdata/gen"
    );
    let port = free_port();
    let dir = tmp_dir("wss");
    let keylog = dir.join("keylog.txt");
    std::fs::write(&keylog, "").unwrap();
    let filter = format!("tcp port {port}");
    let k = keylog.to_str().unwrap();
    let cap =
        start_capture(&["-i", "lo", "-f", &filter, "--json", "--duration", "8", "--keylog", k]);
    let mut peers = Command::new("node")
        .arg(gen.join("node_wss.js"))
        .args([&port.to_string(), "tls13-aes128", k])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    let status = wait_for(&mut peers, Duration::from_secs(7), "the Node TLS peers");
    let mut out = String::new();
    peers.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(status.success(), "node_wss.js failed");
    let sent: Vec<Value> = serde_json::from_str(&out).expect("peers print JSON");
    let (status, recs, err) = cap.finish(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "exit status; stderr: {err}");
    let tls = of_type(&recs, "tls");
    assert_eq!(tls.len(), 1, "{tls:?}");
    assert_eq!(tls[0]["keys_found"], true, "{}", tls[0]);
    assert_eq!(tls[0]["cipher_suite"], "TLS_AES_128_GCM_SHA256");
    let texts: Vec<(Value, Value)> = of_type(&recs, "message")
        .iter()
        .filter(|m| m["opcode_name"] == "text")
        .map(|m| (m["from"].clone(), m["text"].clone()))
        .collect();
    let want: Vec<(Value, Value)> = sent
        .iter()
        .filter(|m| m["opcode"] == "text")
        .map(|m| (m["from"].clone(), m["text"].clone()))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(texts, want);
    let problems = of_type(&recs, "problem");
    assert!(problems.is_empty(), "problems: {problems:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
