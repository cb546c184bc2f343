//! Stage 8: sinks turn events into output (table, JSON Lines, summaries, verdicts).
//!
//! Every view is a [`Sink`]: the core pushes events in capture order and calls `end` with the
//! run totals. A sink returns `Err` only for output errors (a closed pipe ends the run
//! quietly).

pub mod check;
pub mod conns;
pub mod diff;
pub mod escape;
pub mod filter;
pub mod follow;
pub mod json;
pub mod jsonl;
pub mod messages;
pub mod normalize;
pub mod table;
pub mod threaded;

use crate::event::{Event, Meta};
use crate::problem::ProblemCode;
use crate::session::Accounting;
use std::collections::BTreeMap;
use std::io;

/// What a run is, for the `begin` record.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    pub view: &'static str,
    pub inputs: Vec<String>,
}

/// Run totals, for the `end` record and summaries.
#[derive(Clone, Debug, Default)]
pub struct RunTotals {
    pub packets: u64,
    /// Captured bytes of all packets.
    pub bytes: u64,
    pub tcp_packets: u64,
    pub connections: u64,
    pub websocket_connections: u64,
    pub frames: u64,
    pub messages: u64,
    pub problems: BTreeMap<ProblemCode, u64>,
    pub accounting: Accounting,
    pub nanosecond: bool,
    /// Input errors met during the run (one line each), e.g. a truncated capture.
    pub errors: Vec<String>,
    /// Live capture: packets libpcap says the kernel received, dropped (buffer full), and
    /// the interface dropped; `None` for files.
    pub capture_received: Option<u64>,
    pub capture_dropped: Option<u64>,
    pub capture_if_dropped: Option<u64>,
}

impl RunTotals {
    /// Names of the limits that were hit during the run.
    pub fn limits_hit(&self) -> Vec<&'static str> {
        const LIMIT_CODES: [(ProblemCode, &str); 7] = [
            (ProblemCode::ConnectionLimit, "max-connections"),
            (ProblemCode::StreamBufferLimit, "max-stream-buffer"),
            (ProblemCode::IpFragmentLimit, "max-ip-fragments"),
            (ProblemCode::HeaderLimit, "max-http-header"),
            (ProblemCode::MessageLimit, "max-message"),
            (ProblemCode::InflateLimit, "max-inflate"),
            (ProblemCode::PingLimit, "max-pending-pings"),
        ];
        LIMIT_CODES
            .iter()
            .filter(|(code, _)| self.problems.contains_key(code))
            .map(|&(_, name)| name)
            .collect()
    }
}

/// An output view.
pub trait Sink {
    fn begin(&mut self, _info: &RunInfo) -> io::Result<()> {
        Ok(())
    }
    /// The first packet of the run (times in tables are relative to it).
    fn capture_start(&mut self, _first: Meta) {}
    fn event(&mut self, ev: &Event<'_>) -> io::Result<()>;
    /// A record the caller no longer needs: a sink that keeps records takes it without a copy.
    fn event_owned(&mut self, ev: Event<'static>) -> io::Result<()> {
        self.event(&ev)
    }
    fn end(&mut self, _totals: &RunTotals) -> io::Result<()> {
        Ok(())
    }
    /// Whether [`Sink::event_owned`] keeps what it is given (a payload, a whole record)
    /// instead of reading it and dropping it: such a sink is handed records by value, the
    /// others by reference, so that their maker may free them (see `crate::dissector`).
    fn keeps_records(&self) -> bool {
        false
    }
    /// How many leading payload bytes of frame and message records the sink reads (`None`:
    /// all), when it shows a payload cut short by its missing bytes exactly as the whole one
    /// cut at that length. Summaries and verdicts read none and previews a few, which spares
    /// the dissecting threads of `-j` copying every payload into the records they hand over.
    fn payload_prefix(&self) -> Option<usize> {
        None
    }
    /// Whether the sink reads frame and message records that carry no problem. One that does
    /// not (summaries, verdicts) has the dissecting threads of `-j` hand over only how many
    /// there were.
    fn reads_frames(&self) -> bool {
        true
    }
    /// Whether the sink shows which text messages are JSON (`MessageRecord::is_json`), so
    /// that a `-j` worker decides it before cutting a payload.
    fn reads_json_marks(&self) -> bool {
        false
    }
}
