//! Runs a configured dissection: inputs through the dissector into the chosen sink.

use super::config::Config;
use super::exit::ExitStatus;
use crate::capture::{CaptureError, CaptureReader};
use crate::dissector::Dissector;
use crate::event::Event;
use crate::session::Options;
use crate::sink::jsonl::{JsonSelect, JsonlSink, PayloadOpts};
use crate::sink::table::TableSink;
use crate::sink::{RunInfo, RunTotals, Sink};
use std::io::{self, BufWriter, IsTerminal, Write};

/// Keeps only the records the user asked for (`--stream`, `--problems`).
struct Filter<'a> {
    inner: &'a mut dyn Sink,
    streams: Vec<u64>,
    only_problems: bool,
}

impl Sink for Filter<'_> {
    fn begin(&mut self, info: &RunInfo) -> io::Result<()> {
        self.inner.begin(info)
    }
    fn capture_start(&mut self, first: crate::event::Meta) {
        self.inner.capture_start(first)
    }
    fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        if !self.streams.is_empty() && !ev.stream().is_some_and(|s| self.streams.contains(&s)) {
            return Ok(());
        }
        if self.only_problems && ev.problems().is_empty() {
            return Ok(());
        }
        self.inner.event(ev)
    }
    fn end(&mut self, totals: &RunTotals) -> io::Result<()> {
        self.inner.end(totals)
    }
}

/// Runs the frames view. Output errors other than a closed pipe are reported; a closed pipe
/// ends the run quietly with success.
pub fn run(config: Config) -> ExitStatus {
    let stdout = io::stdout();
    let tty = stdout.is_terminal();
    let lock = stdout.lock();
    // Line-buffered on a terminal so each frame shows as it completes; block-buffered in pipes.
    let out: Box<dyn Write> = if tty {
        Box::new(io::LineWriter::new(lock))
    } else {
        Box::new(BufWriter::with_capacity(256 << 10, lock))
    };
    let mut sink: Box<dyn Sink> = if config.json {
        Box::new(JsonlSink::new(
            out,
            JsonSelect::frames_view(config.conns),
            PayloadOpts { max: config.max_payload },
            config.json_array,
        ))
    } else {
        Box::new(TableSink::new(out, config.table.clone()))
    };
    let mut filter = Filter {
        inner: sink.as_mut(),
        streams: config.streams.clone(),
        only_problems: config.only_problems,
    };
    match dissect(&config, &mut filter, "frames") {
        Ok(status) => status,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitStatus::Ok,
        Err(e) => {
            eprintln!("wsdissect: error writing output: {e}");
            ExitStatus::InputError
        }
    }
}

/// Reads every input through one dissector into `sink`.
pub fn dissect(config: &Config, sink: &mut dyn Sink, view: &'static str) -> io::Result<ExitStatus> {
    let info =
        RunInfo { view, inputs: config.inputs.iter().map(|p| p.display().to_string()).collect() };
    sink.begin(&info)?;
    let opts = Options {
        limits: config.limits.clone(),
        keep_frame_payload: true,
        keep_message_payload: true,
    };
    let mut errors = Vec::new();
    let totals = {
        let mut dissector = Dissector::new(opts, config.all, sink);
        let mut seen: u64 = 0;
        'inputs: for path in &config.inputs {
            let mut reader = match CaptureReader::open(path) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(e);
                    break;
                }
            };
            loop {
                if config.count.is_some_and(|c| seen >= c) {
                    break 'inputs;
                }
                let rec = match reader.next_packet() {
                    Ok(Some(rec)) => rec,
                    Ok(None) => break,
                    Err(e) => {
                        errors.push(e);
                        break 'inputs;
                    }
                };
                seen += 1;
                dissector.packet(&rec)?;
                for notice in reader.take_notices() {
                    dissector.capture_notice(notice);
                }
            }
            for notice in reader.take_notices() {
                dissector.capture_notice(notice);
            }
        }
        dissector.finish()?
    };
    let mut totals = totals;
    totals.errors = errors.iter().map(error_line).collect();
    sink.end(&totals)?;
    for e in &errors {
        eprintln!("wsdissect: {}", error_line(e));
    }
    Ok(if errors.is_empty() { ExitStatus::Ok } else { ExitStatus::InputError })
}

fn error_line(e: &CaptureError) -> String {
    e.to_string()
}
