//! Runs a configured view: packets from the source, through the dissector and the filter,
//! into the view's sink.

use super::config::{Config, Source, View};
use super::exit::ExitStatus;
use crate::capture::{CaptureReader, PcapWriter};
use crate::dissector::{run_sharded, Dissect, Dissector};
use crate::session::Options;
use crate::sink::check::CheckSink;
use crate::sink::conns::ConnsTable;
use crate::sink::diff::{self, Conversation, DiffRules};
use crate::sink::filter::Filter;
use crate::sink::follow::FollowSink;
use crate::sink::jsonl::{JsonSelect, JsonlSink, PayloadOpts};
use crate::sink::messages::MessagesTable;
use crate::sink::table::TableSink;
use crate::sink::threaded::Threaded;
use crate::sink::{RunInfo, Sink};
use crate::tls::KeyLog;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;

/// The buffer of standard output into files and pipes.
const OUT_BUFFER: usize = 256 << 10;

/// Standard output, line-buffered on a terminal (each record shows as it completes, which
/// live capture needs too) and block-buffered into pipes.
fn stdout(line_buffered: bool) -> Box<dyn Write> {
    let out = io::stdout();
    let tty = out.is_terminal();
    let lock = out.lock();
    if tty || line_buffered {
        Box::new(io::LineWriter::new(lock))
    } else {
        Box::new(BufWriter::with_capacity(OUT_BUFFER, lock))
    }
}

/// How many bytes of JSON records a sink may gather before writing them, so that they pass
/// the output's buffer without a copy (0: each record as it completes).
fn json_gather(config: &Config) -> usize {
    if matches!(config.source, Source::Files(_)) && !io::stdout().is_terminal() {
        OUT_BUFFER
    } else {
        0
    }
}

/// Runs the configured view. A closed output pipe ends the run quietly with success.
pub fn run(config: Config) -> ExitStatus {
    let result = match &config.view {
        View::Diff(_) => run_diff(&config),
        _ => run_view(&config),
    };
    match result {
        Ok(status) => status,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitStatus::Ok,
        Err(e) if diff::is_spool_error(&e) => {
            eprintln!("wsdissect: {e}");
            ExitStatus::InputError
        }
        Err(e) => {
            eprintln!("wsdissect: error writing output: {e}");
            ExitStatus::InputError
        }
    }
}

fn run_view(config: &Config) -> io::Result<ExitStatus> {
    let out = stdout(matches!(config.source, Source::Live(_)));
    let payload = PayloadOpts { max: config.max_payload };
    let json = |select: JsonSelect, out: Box<dyn Write>| -> Box<dyn Sink> {
        Box::new(
            JsonlSink::new(out, select, payload, config.json_array).normalized(config.normalize),
        )
    };
    let mut filter_spec = config.filter.clone();
    let status = match &config.view {
        View::Check(opts) => {
            let mut sink = CheckSink::new(out, config.json, opts.clone());
            let status = dissect(config, &config.inputs, &mut Filter::new(&mut sink, filter_spec))?;
            if status == ExitStatus::Ok && sink.failed {
                ExitStatus::Problems
            } else {
                status
            }
        }
        View::Follow { stream, pretty } => {
            filter_spec.streams = vec![*stream];
            if config.json {
                let mut sink = json(JsonSelect::follow_view(), out);
                dissect(config, &config.inputs, &mut Filter::new(sink.as_mut(), filter_spec))?
            } else {
                let mut sink = FollowSink::new(out, config.table.clone(), *pretty);
                let status =
                    dissect(config, &config.inputs, &mut Filter::new(&mut sink, filter_spec))?;
                if !sink.seen && status == ExitStatus::Ok {
                    eprintln!("wsdissect: stream {stream} has no WebSocket records in this capture (see `wsdissect conns`)");
                    return Ok(ExitStatus::InputError);
                }
                status
            }
        }
        view => {
            let make = view_sink(config, view);
            let mut sink: Box<dyn Sink> = if formats_on_own_thread(config, view) {
                drop(out);
                Box::new(Threaded::spawn(move || make(stdout(false)))?)
            } else {
                make(out)
            };
            dissect(config, &config.inputs, &mut Filter::new(sink.as_mut(), filter_spec))?
        }
    };
    Ok(status)
}

/// The sink of a frames, messages or conns view, made from its output (on whichever thread
/// will run it).
fn view_sink(config: &Config, view: &View) -> impl FnOnce(Box<dyn Write>) -> Box<dyn Sink> + Send {
    let (table, json) = (config.table.clone(), config.json);
    let payload = PayloadOpts { max: config.max_payload };
    let (json_array, normalize) = (config.json_array, config.normalize);
    let gather = json_gather(config);
    let select = match view {
        View::Messages => JsonSelect::messages_view(),
        View::Conns => JsonSelect::conns_view(),
        _ => JsonSelect::frames_view(config.conns).with_packets(config.all),
    };
    let kind = match view {
        View::Messages => 1,
        View::Conns => 2,
        _ => 0,
    };
    move |out| -> Box<dyn Sink> {
        match (kind, json) {
            (_, true) => Box::new(
                JsonlSink::new(out, select, payload, json_array)
                    .normalized(normalize)
                    .gathering(gather),
            ),
            (1, false) => Box::new(MessagesTable::new(out, table)),
            (2, false) => Box::new(ConnsTable::new(out, table)),
            _ => Box::new(TableSink::new(out, table)),
        }
    }
}

/// The threads that dissect connections (`-j`): sharding pays where connections are many and
/// each is real work, and keeps output identical to one thread. Not for live capture (each
/// record must show the moment its packet arrives), `--all` (a packet's own record depends on
/// whether its connection's records said anything), or views of one stream or two files.
fn shards(config: &Config) -> usize {
    let jobs = jobs(config);
    let view_fits =
        matches!(config.view, View::Frames | View::Messages | View::Conns | View::Check(_));
    if !(matches!(config.source, Source::Files(_)) && !config.all && view_fits) {
        return 1;
    }
    // JSON of every frame or message is formatted on a thread of its own, which needs a core
    // as much as the dissecting does (on two cores, two dissecting threads and the formatter
    // took 0.43 s where one and the formatter took 0.36 s: bench/RESULTS.md).
    if formats_on_own_thread(config, &config.view) {
        jobs - 1
    } else {
        jobs
    }
}

/// Whether records are formatted on a second thread (`-j`): only where formatting is a large
/// part of the work (JSON of every frame or message, whole payloads escaped and encoded; the
/// tables print previews, and handing records over cost more than it saved), and never live,
/// where each record must show the moment it completes.
fn formats_on_own_thread(config: &Config, view: &View) -> bool {
    jobs(config) >= 2
        && config.json
        && matches!(config.source, Source::Files(_))
        && matches!(view, View::Frames | View::Messages)
}

/// The threads `-j` allows (0: one per core).
fn jobs(config: &Config) -> usize {
    match config.jobs {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n,
    }
}

fn run_diff(config: &Config) -> io::Result<ExitStatus> {
    // invariant: `run` calls this only for the diff view.
    let View::Diff(opts) = &config.view else { unreachable!("run_diff is only called for diff") };
    let rules = DiffRules {
        ignore_json_keys: opts.ignore_json_keys.clone(),
        order_window_ms: opts.order_window_ms,
        drop_control: config.normalize,
        session_ids: config.normalize,
        context: opts.context,
    };
    let side = |path: &PathBuf| -> io::Result<(Conversation, Result<(), Vec<String>>)> {
        let mut conv = Conversation::new(rules.clone());
        let mut sink = Filter::new(&mut conv, config.filter.clone());
        let ended = dissect_quietly(config, std::slice::from_ref(path), &mut sink)?;
        Ok((conv, ended))
    };
    // The two captures are dissected side by side where a second core may be used; what
    // is printed is the same as one after the other: the new capture's errors only when the
    // base one read cleanly. A progress bar each, or one `-w` file for both, would clash.
    let (base, new) = if jobs(config) >= 2 && !config.progress && config.write.is_none() {
        std::thread::scope(|s| {
            let base = std::thread::Builder::new()
                .name("diff-base".into())
                .spawn_scoped(s, || side(&opts.base))?;
            let new = side(&opts.new);
            let base = base.join().map_err(|_| io::Error::other("dissecting thread panicked"))?;
            io::Result::Ok((base?, new?))
        })?
    } else {
        let base = side(&opts.base)?;
        if let Err(errors) = &base.1 {
            return Ok(input_errors(errors));
        }
        (base, side(&opts.new)?)
    };
    let mut sides = Vec::new();
    for (conv, ended) in [base, new] {
        if let Err(errors) = ended {
            return Ok(input_errors(&errors));
        }
        sides.push(conv);
    }
    let mut out = stdout(false);
    let names = (opts.base.display().to_string(), opts.new.display().to_string());
    let (base, new) = sides.split_at_mut(1);
    let report = diff::report(
        &mut out,
        &mut base[0],
        &mut new[0],
        (&names.0, &names.1),
        config.json,
        rules.context,
    )?;
    Ok(if report.equal { ExitStatus::Ok } else { ExitStatus::Problems })
}

/// Reads `inputs` (or the live source) through one dissector into `sink`.
pub fn dissect(config: &Config, inputs: &[PathBuf], sink: &mut dyn Sink) -> io::Result<ExitStatus> {
    match dissect_quietly(config, inputs, sink)? {
        Ok(()) => Ok(ExitStatus::Ok),
        Err(errors) => Ok(input_errors(&errors)),
    }
}

/// Prints input errors, one line each, and says how the run ended.
fn input_errors(errors: &[String]) -> ExitStatus {
    for e in errors {
        eprintln!("wsdissect: {e}");
    }
    ExitStatus::InputError
}

/// [`dissect`], returning the input errors (each one line for standard error) instead of
/// printing them.
fn dissect_quietly(
    config: &Config,
    inputs: &[PathBuf],
    sink: &mut dyn Sink,
) -> io::Result<Result<(), Vec<String>>> {
    // A live source is opened before any output: a wrong interface, permission or filter is
    // one line on standard error.
    let mut live = match &config.source {
        Source::Live(opts) => match super::live::open(config, opts) {
            Ok(cap) => Some(cap),
            Err(e) => return Ok(Err(vec![e.to_string()])),
        },
        Source::Files(_) => None,
    };
    let mut live_outcome = None;
    let info = RunInfo {
        view: config.view.name(),
        inputs: inputs.iter().map(|p| p.display().to_string()).collect(),
    };
    sink.begin(&info)?;
    let opts = Options {
        limits: config.limits.clone(),
        // Views that print no data payloads skip copying them (text is still validated).
        keep_frame_payload: matches!(config.view, View::Frames) || config.filter.grep.is_some(),
        keep_message_payload: !matches!(config.view, View::Conns | View::Check(_))
            || config.filter.grep.is_some()
            || !config.filter.wheres.is_empty(),
        frame_payload_prefix: sink.payload_prefix(),
        // JSON marks are decided on whole messages.
        message_payload_prefix: sink.payload_prefix().filter(|_| !sink.reads_json_marks()),
    };
    let keys = match load_keys(config) {
        Ok(k) => k,
        Err(e) => return Ok(Err(vec![e])),
    };
    let mut errors: Vec<String> = Vec::new();
    let workers = shards(config);
    let totals = if live.is_none() && workers > 1 {
        let (totals, read) =
            run_sharded(opts, keys, workers, sink, |d| read_files(config, inputs, d))?;
        errors.extend(read.err());
        totals
    } else {
        let mut dissector = Dissector::new(opts, config.all, sink).with_keys(keys);
        match live.take() {
            Some(cap) => {
                let outcome = super::live::capture(config, cap, &mut dissector)?;
                errors.extend(outcome.error.clone());
                live_outcome = Some(outcome);
            }
            None => {
                if let Err(e) = read_files(config, inputs, &mut dissector)? {
                    errors.push(e);
                }
            }
        }
        dissector.finish()?
    };
    let mut totals = totals;
    if let Some(o) = &live_outcome {
        o.record(&mut totals);
    }
    totals.errors = errors.clone();
    sink.end(&totals)?;
    Ok(if errors.is_empty() { Ok(()) } else { Err(errors) })
}

/// The TLS key log: `--keylog` must be readable; `SSLKEYLOGFILE` is used when it exists
/// (programs create it on their first connection).
fn load_keys(config: &Config) -> Result<KeyLog, String> {
    let mut keys = match &config.keylog {
        Some(path) => {
            KeyLog::open(path).map_err(|e| format!("--keylog {}: {e}", path.display()))?
        }
        None => KeyLog::default(),
    };
    keys.set_live(matches!(config.source, Source::Live(_)));
    if let Some(path) = &config.keylog_env {
        if config.keylog.as_ref() != Some(path) && path.is_file() {
            keys.add_file(path).map_err(|e| format!("SSLKEYLOGFILE {}: {e}", path.display()))?;
        }
    }
    Ok(keys)
}

/// Feeds every file's packets to the dissector (and to the `-w` file); the outer error is an
/// output error, the inner one the input (or `-w`) error that stopped reading.
fn read_files(
    config: &Config,
    inputs: &[PathBuf],
    dissector: &mut dyn Dissect,
) -> io::Result<Result<(), String>> {
    let mut writer = match config.write.as_deref().map(PcapWriter::create).transpose() {
        Ok(w) => w,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let result = read_files_into(config, inputs, dissector, writer.as_mut())?;
    let finished = writer.map_or(Ok(()), |w| w.finish(None)).map_err(|e| e.to_string());
    Ok(result.and(finished))
}

fn read_files_into(
    config: &Config,
    inputs: &[PathBuf],
    dissector: &mut dyn Dissect,
    mut writer: Option<&mut PcapWriter>,
) -> io::Result<Result<(), String>> {
    let mut seen: u64 = 0;
    for path in inputs {
        let mut reader = match CaptureReader::open(path) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let mut progress = super::progress::Progress::new(config.progress, path);
        loop {
            if config.count.is_some_and(|c| seen >= c) {
                progress.finish();
                return Ok(Ok(()));
            }
            let rec = match reader.next_packet() {
                Ok(Some(rec)) => rec,
                Ok(None) => break,
                Err(e) => {
                    progress.finish();
                    return Ok(Err(e.to_string()));
                }
            };
            seen += 1;
            if let Some(w) = writer.as_deref_mut() {
                if let Err(e) = w.write(&rec) {
                    progress.finish();
                    return Ok(Err(e.to_string()));
                }
            }
            dissector.packet(&rec)?;
            // Secrets blocks read on the way to this packet serve the connections after it
            // (a connection looks its secrets up at its ServerHello).
            for (kind, data) in reader.take_decryption_secrets() {
                dissector.add_secrets(kind, &data);
            }
            for notice in reader.take_notices() {
                dissector.capture_notice(notice);
            }
            progress.tick(seen, reader.bytes_read());
        }
        for notice in reader.take_notices() {
            dissector.capture_notice(notice);
        }
        progress.finish();
    }
    Ok(Ok(()))
}
