//! Counts on a capture from `../shared/bench/gen_capture.py` equal the generator's ground
//! truth exactly.

use crate::util::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

const GEN_ARGS: &[&str] = &[
    "--connections",
    "40",
    "--messages-per-conn",
    "30",
    "--seed",
    "3",
    "--reorder-fraction",
    "0.05",
    "--retransmit-fraction",
    "0.05",
    "--rst-fraction",
    "0.2",
    "--fragment-fraction",
    "0.1",
    "--large-fraction",
    "0.01",
];

/// Reordering alone, so that every swapped pair is an out-of-order segment (with
/// retransmissions on, the generator also swaps two retransmitted copies, which are
/// retransmissions and not out of order; tshark counts them as we do).
const REORDER_ONLY_ARGS: &[&str] = &[
    "--connections",
    "20",
    "--messages-per-conn",
    "30",
    "--seed",
    "5",
    "--reorder-fraction",
    "0.1",
    "--retransmit-fraction",
    "0",
];

fn generate(name: &str, args: &[&str]) -> Option<(PathBuf, Value)> {
    let script = repo().join("../shared/bench/gen_capture.py");
    if !script.is_file() {
        eprintln!("skipping: {} not found", script.display());
        return None;
    }
    let dir = std::env::temp_dir().join(format!("wsdissect-gt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join(format!("{name}.pcap"));
    let out = Command::new("python3").arg(&script).args(args).arg(&pcap).output().expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let truth: Value = serde_json::from_slice(&out.stderr).expect("ground truth JSON");
    Some((pcap, truth))
}

/// Generates the capture once per test run.
fn generated() -> Option<&'static (PathBuf, Value)> {
    static GEN: OnceLock<Option<(PathBuf, Value)>> = OnceLock::new();
    GEN.get_or_init(|| generate("mixed", GEN_ARGS)).as_ref()
}

fn count_where(recs: &[Value], kind: &str, f: impl Fn(&Value) -> bool) -> u64 {
    recs.iter().filter(|r| r["type"] == kind && f(r)).count() as u64
}

#[test]
fn tcp_events_match_ground_truth() {
    let Some((pcap, truth)) = generated() else { return };
    let c = &truth["counts"];
    let recs = json_of(pcap, &["--conns"]);
    let end = recs.last().unwrap();
    let tcp = |ev: &str| count_where(&recs, "tcp", |r| r["event"] == ev);
    assert_eq!(end["packets"], c["packets"]);
    assert_eq!(end["connections"], c["connections"]);
    assert_eq!(end["websocket_connections"], c["connections"]);
    assert_eq!(tcp("syn") + tcp("syn-ack"), c["tcp_syn"].as_u64().unwrap());
    assert_eq!(tcp("fin"), c["tcp_fin"].as_u64().unwrap());
    assert_eq!(tcp("rst"), c["tcp_rst"].as_u64().unwrap());
    assert_eq!(tcp("keepalive"), c["tcp_keepalives"].as_u64().unwrap());
    assert_eq!(tcp("keepalive-ack"), c["tcp_keepalive_acks"].as_u64().unwrap());
    assert_eq!(tcp("retransmission"), c["tcp_retransmissions"].as_u64().unwrap());
    assert!(tcp("out-of-order") <= c["tcp_reordered_pairs"].as_u64().unwrap());
    assert_eq!(tcp("gap"), 0, "a complete capture has no gaps");
    let conns = of_type(&recs, "connection");
    assert_eq!(conns.len() as u64, c["connections"].as_u64().unwrap());
    let rst = conns.iter().filter(|r| r["tcp_end"] == "rst").count() as u64;
    assert_eq!(rst, c["connections_rst"].as_u64().unwrap());
    let stream_bytes: u64 =
        end["stream_bytes"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(
        stream_bytes,
        c["tcp_stream_bytes"].as_u64().unwrap(),
        "every stream byte accounted for"
    );
    assert_eq!(end["stream_bytes"]["skipped"], 0);
    assert_eq!(end["stream_bytes"]["gap"], 0);
}

#[test]
fn websocket_counts_match_ground_truth() {
    let Some((pcap, truth)) = generated() else { return };
    let c = &truth["counts"];
    let recs = json_of(pcap, &[]);
    let frames = of_type(&recs, "frame");
    let by_op = &truth["ws_frames_by_opcode"];
    for name in ["continuation", "text", "binary", "close", "ping", "pong"] {
        let n = frames.iter().filter(|f| f["opcode_name"] == name).count() as u64;
        assert_eq!(n, by_op[name].as_u64().unwrap(), "{name} frames");
    }
    assert_eq!(frames.len() as u64, c["ws_frames"].as_u64().unwrap());
    let n = |f: &dyn Fn(&&Value) -> bool| frames.iter().filter(|x| f(x)).count() as u64;
    assert_eq!(n(&|f| f["from"] == "client"), c["ws_frames_client"].as_u64().unwrap());
    assert_eq!(n(&|f| f["masked"] == true), c["ws_frames_masked"].as_u64().unwrap());
    assert_eq!(n(&|f| f["rsv"] == 4), c["ws_frames_rsv1"].as_u64().unwrap());
    assert_eq!(n(&|f| f["fin"] == false), c["ws_frames_fin0"].as_u64().unwrap());
    assert_eq!(n(&|f| f["len_form"] == 7), c["ws_frames_len7"].as_u64().unwrap());
    assert_eq!(n(&|f| f["len_form"] == 16), c["ws_frames_len16"].as_u64().unwrap());
    assert_eq!(n(&|f| f["len_form"] == 64), c["ws_frames_len64"].as_u64().unwrap());
    let payload: u64 = frames.iter().map(|f| f["payload_len"].as_u64().unwrap()).sum();
    assert_eq!(payload, c["ws_frame_payload_bytes"].as_u64().unwrap());
    let msgs = of_type(&recs, "message");
    assert_eq!(msgs.len() as u64, c["ws_messages"].as_u64().unwrap());
    let m = |f: &dyn Fn(&&Value) -> bool| msgs.iter().filter(|x| f(x)).count() as u64;
    assert_eq!(m(&|x| x["opcode_name"] == "text"), c["ws_messages_text"].as_u64().unwrap());
    assert_eq!(
        m(&|x| x["frames"].as_u64().unwrap() > 1),
        c["ws_messages_fragmented"].as_u64().unwrap()
    );
    assert_eq!(m(&|x| x["compressed"] == true), c["ws_messages_compressed"].as_u64().unwrap());
    let bytes: u64 = msgs.iter().map(|x| x["len"].as_u64().unwrap()).sum();
    assert_eq!(bytes, c["ws_message_bytes"].as_u64().unwrap());
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    for f in frames.iter().filter(|f| f["opcode_name"] == "close") {
        *codes.entry(f["close_code"].to_string()).or_default() += 1;
    }
    let want: BTreeMap<String, u64> = truth["close_codes"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(codes, want);
    // Real peers' traffic: nothing is a protocol violation.
    let problems: Vec<&Value> =
        recs.iter().filter(|r| r["problems"].as_array().is_some_and(|p| !p.is_empty())).collect();
    let errors: Vec<&&Value> = problems
        .iter()
        .filter(|r| r["problems"].as_array().unwrap().iter().any(|p| p != "no-close-frame"))
        .collect();
    assert!(
        errors.is_empty(),
        "unexpected problems: {:?}",
        errors.iter().take(5).collect::<Vec<_>>()
    );
}

#[test]
fn text_messages_are_valid_utf8_text() {
    let Some((pcap, _)) = generated() else { return };
    let recs = json_of(pcap, &[]);
    for m in of_type(&recs, "message") {
        if m["opcode_name"] == "text" {
            assert!(m["text"].is_string(), "text message without text: {m}");
            assert_eq!(m["text"].as_str().unwrap().len() as u64, m["len"].as_u64().unwrap());
        } else {
            assert!(m["bytes"].is_string());
        }
    }
}

#[test]
fn every_reordered_pair_is_one_out_of_order_segment() {
    let Some((pcap, truth)) = generate("reorder", REORDER_ONLY_ARGS) else { return };
    let c = &truth["counts"];
    let recs = json_of(&pcap, &["--conns"]);
    let n = count_where(&recs, "tcp", |r| r["event"] == "out-of-order");
    assert!(n > 10, "the capture has reordering");
    assert_eq!(n, c["tcp_reordered_pairs"].as_u64().unwrap());
    assert_eq!(count_where(&recs, "tcp", |r| r["event"] == "retransmission"), 0);
    assert_eq!(count_where(&recs, "tcp", |r| r["event"] == "gap"), 0);
    let msgs = of_type(&recs, "message");
    assert_eq!(msgs.len() as u64, c["ws_messages"].as_u64().unwrap());
}

#[test]
fn sharded_threads_give_the_same_output_as_one() {
    // Many epochs between the threads, with deflate, reordering, fragments and thousands of
    // connections spread over the shards.
    let Some((pcap, _)) = generated() else { return };
    let p = pcap.to_string_lossy().into_owned();
    let views: [&[&str]; 8] = [
        &["--json"],
        // Workers cut payloads to what the formatting thread's sink reads.
        &["--json", "--max-payload", "9"],
        &[],
        &["messages"],
        &["messages", "--json"],
        &["conns", "--json"],
        &["check", "--json"],
        &["--json", "--max-connections", "50"],
    ];
    for view in views {
        let mut one = vec!["-j1"];
        one.extend_from_slice(view);
        one.push(&p);
        let a = run(&one);
        assert!(a.stdout.len() > 1000, "{one:?}");
        for jobs in ["-j2", "-j3"] {
            let mut more = one.clone();
            more[0] = jobs;
            let b = run(&more);
            assert!(a.stdout == b.stdout, "{view:?}: -j1 and {jobs} differ");
            assert_eq!(a.status.code(), b.status.code(), "{more:?}");
        }
    }
}
