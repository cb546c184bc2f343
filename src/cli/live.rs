//! Live capture (`-i`): packets from libpcap into the dissector, until the count (`-c`), the
//! duration (`--duration`) or Ctrl-C (SIGINT, also SIGTERM/SIGHUP), then the dissector
//! finishes and the `end` record carries libpcap's drop counters.
//!
//! [`open`] is called before any output, so that a wrong interface, a missing permission or a
//! bad filter is one line on standard error and nothing on standard output.

use super::config::{Config, LiveOpts};
use crate::dissector::Dissector;
use crate::sink::RunTotals;

/// How a live capture ended.
#[derive(Debug, Default)]
pub struct LiveOutcome {
    /// The error that stopped the capture (one line), if it did not end normally.
    pub error: Option<String>,
    /// libpcap's counters: received, dropped (buffer full), dropped by the interface.
    pub stats: Option<(u64, u64, u64)>,
}

impl LiveOutcome {
    /// Puts the counters into the run totals (the `end` record's `kernel_*` keys).
    pub fn record(&self, totals: &mut RunTotals) {
        if let Some((received, dropped, if_dropped)) = self.stats {
            totals.capture_received = Some(received);
            totals.capture_dropped = Some(dropped);
            totals.capture_if_dropped = Some(if_dropped);
        }
    }
}

#[cfg(feature = "live")]
pub use imp::{capture, list_interfaces, open, LiveCapture};

#[cfg(feature = "live")]
mod imp {
    use super::{Config, Dissector, LiveOpts, LiveOutcome};
    use crate::capture::live::{self, LiveSettings, LiveSource, Next};
    use crate::capture::PcapWriter;
    use std::io::{self, IsTerminal};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    /// How often the capture loop wakes up without traffic (deadline, flushing `-w`).
    const READ_TIMEOUT_MS: i32 = 100;
    /// `-w` is flushed at least this often, so the file is readable while capturing.
    const FLUSH_EVERY: Duration = Duration::from_secs(1);

    /// Set by the signal handler; the loop sees it within the read timeout.
    static STOP: AtomicBool = AtomicBool::new(false);
    /// The handler is installed once per process.
    static HANDLER: OnceLock<Result<(), String>> = OnceLock::new();

    /// The first Ctrl-C stops the capture cleanly; a second one exits at once.
    fn install_handler() -> Result<(), String> {
        HANDLER
            .get_or_init(|| {
                ctrlc::set_handler(|| {
                    if STOP.swap(true, Ordering::SeqCst) {
                        std::process::exit(130);
                    }
                })
                .map_err(|e| format!("cannot handle Ctrl-C: {e}"))
            })
            .clone()
    }

    /// An open capture and its `-w` file, ready to run.
    pub struct LiveCapture {
        source: LiveSource,
        writer: Option<PcapWriter>,
        deadline: Option<Duration>,
    }

    /// Opens the interface (and `-w`); the error is one line for people.
    pub fn open(config: &Config, live: &LiveOpts) -> Result<LiveCapture, String> {
        let deadline = match live.duration_secs {
            None => None,
            Some(s) => Some(
                Duration::try_from_secs_f64(s)
                    .map_err(|_| format!("--duration takes a number of seconds >= 0, not {s}"))?,
            ),
        };
        install_handler()?;
        let settings = LiveSettings {
            interface: live.interface.clone(),
            filter: live.bpf.clone(),
            snaplen: live.snaplen,
            read_timeout_ms: READ_TIMEOUT_MS,
        };
        let source = LiveSource::open(&settings).map_err(|e| e.to_string())?;
        let writer = match &config.write {
            Some(path) => Some(PcapWriter::create(path).map_err(|e| e.to_string())?),
            None => None,
        };
        Ok(LiveCapture { source, writer, deadline })
    }

    /// Captures until the count, the duration or Ctrl-C. The outer error is an output error
    /// (a closed pipe ends the run quietly); a capture error is in the outcome.
    pub fn capture(
        config: &Config,
        cap: LiveCapture,
        d: &mut Dissector<'_>,
    ) -> io::Result<LiveOutcome> {
        let LiveCapture { mut source, mut writer, deadline } = cap;
        if io::stderr().is_terminal() {
            eprintln!(
                "wsdissect: capturing on {} ({}), Ctrl-C to stop",
                source.interface(),
                source.link_name()
            );
        }
        let start = Instant::now();
        let deadline = deadline.map(|d| start + d);
        let mut seen: u64 = 0;
        let mut flushed = start;
        let result = (|| -> io::Result<Option<String>> {
            loop {
                if STOP.load(Ordering::SeqCst)
                    || config.count.is_some_and(|c| seen >= c)
                    || deadline.is_some_and(|t| Instant::now() >= t)
                {
                    return Ok(None);
                }
                let rec = match source.next_packet() {
                    Ok(Next::Packet(rec)) => rec,
                    Ok(Next::Idle) => continue,
                    Err(e) => return Ok(Some(e.to_string())),
                };
                seen += 1;
                if let Some(w) = writer.as_mut() {
                    if let Err(e) = w.write(&rec) {
                        return Ok(Some(e.to_string()));
                    }
                    if flushed.elapsed() >= FLUSH_EVERY {
                        flushed = Instant::now();
                        if let Err(e) = w.flush() {
                            return Ok(Some(e.to_string()));
                        }
                    }
                }
                d.packet(&rec)?;
            }
        })();
        let mut outcome = LiveOutcome { error: result?, stats: None };
        if let Some(s) = source.stats() {
            if s.dropped > 0 || s.if_dropped > 0 {
                eprintln!(
                    "wsdissect: {} packets dropped by the kernel and {} by the interface; the \
                     dissection has gaps (see the end record)",
                    s.dropped, s.if_dropped
                );
            }
            outcome.stats = Some((s.received, s.dropped, s.if_dropped));
        }
        if let Some(w) = writer {
            if let Err(e) = w.finish(Some(source.link())) {
                outcome.error.get_or_insert(e.to_string());
            }
        }
        Ok(outcome)
    }

    /// One line per interface: name, and libpcap's description or flags.
    pub fn list_interfaces() -> Result<Vec<String>, String> {
        let list = live::interfaces().map_err(|e| e.to_string())?;
        Ok(list
            .into_iter()
            .map(|i| {
                let mut notes = Vec::new();
                if let Some(d) = i.description.filter(|d| !d.is_empty()) {
                    notes.push(d);
                }
                if i.loopback {
                    notes.push("loopback".into());
                }
                if !i.up {
                    notes.push("down".into());
                }
                if notes.is_empty() {
                    i.name
                } else {
                    format!("{} ({})", i.name, notes.join(", "))
                }
            })
            .collect())
    }
}

/// Without the `live` feature there is nothing to open.
#[cfg(not(feature = "live"))]
pub enum LiveCapture {}

/// Opens the interface; the error is one line for people.
#[cfg(not(feature = "live"))]
pub fn open(_config: &Config, live: &LiveOpts) -> Result<LiveCapture, String> {
    Err(format!(
        "cannot capture on {}: this wsdissect was built without live capture (the `live` \
         feature, on by default; rebuild with `cargo build --features live`, which needs \
         libpcap-dev)",
        live.interface
    ))
}

/// Captures until the count, the duration or Ctrl-C.
#[cfg(not(feature = "live"))]
pub fn capture(
    _config: &Config,
    cap: LiveCapture,
    _d: &mut Dissector<'_>,
) -> std::io::Result<LiveOutcome> {
    match cap {}
}

/// Lists the interfaces live capture can use.
#[cfg(not(feature = "live"))]
pub fn list_interfaces() -> Result<Vec<String>, String> {
    Err("this wsdissect was built without live capture (the `live` feature, on by default; \
         rebuild with `cargo build --features live`, which needs libpcap-dev)"
        .into())
}
