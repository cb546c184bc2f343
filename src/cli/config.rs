//! Validated, resolved configuration ("high args"): the terminal, colour, limits, filters and
//! the view, decided once from the arguments and the environment.

use super::args::{
    Args, BinaryMode, CheckArgs, ColorMode, Common, DiffArgs, FailOn, FromSide, PayloadMode,
    TimeMode, ViewCmd,
};
use crate::limits::Limits;
use crate::problem::{ProblemCode, Severity};
use crate::sink::filter::FilterSpec;
use crate::sink::table::{TableOpts, TimeFormat};
use crate::tcp::Side;
use std::io::IsTerminal;
use std::path::PathBuf;

/// What to show.
#[derive(Clone, Debug)]
pub enum View {
    Frames,
    Messages,
    Conns,
    Follow { stream: u64, pretty: bool },
    Check(CheckOpts),
    Diff(DiffOpts),
}

impl View {
    pub fn name(&self) -> &'static str {
        match self {
            View::Frames => "frames",
            View::Messages => "messages",
            View::Conns => "conns",
            View::Follow { .. } => "follow",
            View::Check(_) => "check",
            View::Diff(_) => "diff",
        }
    }
}

/// `check`'s verdict rules.
#[derive(Clone, Debug)]
pub struct CheckOpts {
    pub fail_on: Severity,
    pub allow: Vec<ProblemCode>,
    pub expect_handshakes: Option<u64>,
    pub expect_clean_close: bool,
    pub max_rtt_ms: Option<f64>,
    pub subprotocol: Option<String>,
}

/// `diff`'s inputs and what it ignores.
#[derive(Clone, Debug)]
pub struct DiffOpts {
    pub base: PathBuf,
    pub new: PathBuf,
    pub ignore_json_keys: Vec<String>,
    /// Messages of one direction closer than this many milliseconds compare as a set.
    pub order_window_ms: Option<f64>,
    pub context: usize,
}

/// Where packets come from.
#[derive(Clone, Debug)]
pub enum Source {
    Files(Vec<PathBuf>),
    Live(LiveOpts),
}

/// Live capture settings (`-i`).
#[derive(Clone, Debug)]
pub struct LiveOpts {
    pub interface: String,
    pub bpf: Option<String>,
    pub duration_secs: Option<f64>,
    pub snaplen: Option<i32>,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    pub view: View,
    pub source: Source,
    /// Inputs as given, for the `begin` record.
    pub inputs: Vec<PathBuf>,
    pub write: Option<PathBuf>,
    /// `--keylog`, read before the run (it must exist).
    pub keylog: Option<PathBuf>,
    /// `SSLKEYLOGFILE`, read when it exists.
    pub keylog_env: Option<PathBuf>,
    pub json: bool,
    pub json_array: bool,
    pub conns: bool,
    pub all: bool,
    pub filter: FilterSpec,
    pub count: Option<u64>,
    pub max_payload: Option<usize>,
    pub normalize: bool,
    /// Threads to use (`-j`); 0 picks by the machine.
    pub jobs: usize,
    pub progress: bool,
    pub table: TableOpts,
    pub limits: Limits,
}

/// What `main` does: run a view, or print something generated from the command line.
pub enum Action {
    Run(Box<Config>),
    Completions(clap_complete::Shell),
    Man,
    ListInterfaces,
}

impl Config {
    pub fn from_args(args: Args) -> Result<Action, String> {
        let Args { view, files, common } = args;
        if common.list_interfaces {
            return Ok(Action::ListInterfaces);
        }
        // Files before the view name (`wsdissect a.pcap messages`) count too.
        let mut inputs = common.read.clone();
        inputs.extend(files);
        let (view, mut files) = match view {
            None => (View::Frames, Vec::new()),
            Some(ViewCmd::Frames(f)) => (View::Frames, f.files),
            Some(ViewCmd::Messages(f)) => (View::Messages, f.files),
            Some(ViewCmd::Conns(f)) => (View::Conns, f.files),
            Some(ViewCmd::Follow { stream, files, pretty }) => {
                (View::Follow { stream, pretty }, files.files)
            }
            Some(ViewCmd::Check { files, check }) => (View::Check(check_opts(check)?), files.files),
            Some(ViewCmd::Diff { base, new, diff }) => {
                if common.write.is_some() {
                    return Err("-w writes one capture; diff reads two".into());
                }
                (View::Diff(diff_opts(base.clone(), new.clone(), diff)), vec![base, new])
            }
            Some(ViewCmd::Completions { shell }) => return Ok(Action::Completions(shell)),
            Some(ViewCmd::Man) => return Ok(Action::Man),
        };
        inputs.append(&mut files);
        let source = match &common.interface {
            Some(iface) => {
                if !inputs.is_empty() {
                    return Err("give either -i INTERFACE or capture files, not both".into());
                }
                if matches!(view, View::Diff(_)) {
                    return Err("diff compares two capture files; it cannot capture live".into());
                }
                Source::Live(LiveOpts {
                    interface: iface.clone(),
                    bpf: common.bpf.clone(),
                    duration_secs: common.duration,
                    snaplen: common.snaplen,
                })
            }
            None => {
                if inputs.is_empty() {
                    return Err("no capture given (try `wsdissect FILE`, `-r FILE`, `-` for \
                                standard input, or `-i IFACE` to capture live)"
                        .into());
                }
                if common.bpf.is_some() || common.duration.is_some() {
                    return Err("-f and --duration apply to live capture (-i)".into());
                }
                if inputs.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
                    return Err("standard input (-) can be read only once".into());
                }
                Source::Files(inputs.clone())
            }
        };
        let filter = filter_spec(&common)?;
        let table = table_opts(&common);
        let stderr_tty = std::io::stderr().is_terminal();
        Ok(Action::Run(Box::new(Config {
            progress: stderr_tty && !common.quiet && matches!(source, Source::Files(_)),
            view,
            source,
            inputs,
            write: common.write.clone(),
            keylog: common.keylog.clone(),
            keylog_env: std::env::var_os("SSLKEYLOGFILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            json: common.json || common.json_array,
            json_array: common.json_array,
            conns: common.conns,
            all: common.all,
            filter,
            count: common.count,
            max_payload: common.max_payload,
            normalize: common.normalize,
            jobs: common.jobs,
            table,
            limits: limits(&common),
        })))
    }
}

fn check_opts(a: CheckArgs) -> Result<CheckOpts, String> {
    let allow = a
        .allow
        .iter()
        .filter(|c| !c.is_empty())
        .map(|c| {
            ProblemCode::from_code(c.trim())
                .ok_or_else(|| format!("unknown problem code `{c}` in --allow (see docs/json.md)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if a.max_rtt.is_some_and(|m| m.is_nan() || m < 0.0) {
        return Err("--max-rtt takes a number of milliseconds >= 0".into());
    }
    Ok(CheckOpts {
        fail_on: match a.fail_on {
            FailOn::Warning => Severity::Warning,
            FailOn::Error => Severity::Error,
        },
        allow,
        expect_handshakes: a.expect_handshakes,
        expect_clean_close: a.expect_clean_close,
        max_rtt_ms: a.max_rtt,
        subprotocol: a.subprotocol,
    })
}

fn diff_opts(base: PathBuf, new: PathBuf, a: DiffArgs) -> DiffOpts {
    DiffOpts {
        base,
        new,
        ignore_json_keys: a.ignore_json_keys.into_iter().filter(|k| !k.is_empty()).collect(),
        order_window_ms: a.ignore_order.filter(|w| *w >= 0.0),
        context: a.context,
    }
}

fn filter_spec(c: &Common) -> Result<FilterSpec, String> {
    let opcodes = c
        .opcodes
        .iter()
        .filter(|o| !o.is_empty())
        .map(|o| {
            crate::ws::opcode::opcode_from_name(o.trim()).ok_or_else(|| {
                format!(
                    "unknown opcode `{o}` (use continuation, text, binary, close, ping, pong or a \
                     number 0-15)"
                )
            })
        })
        .collect::<Result<Vec<u8>, _>>()?;
    let grep = match &c.grep {
        Some(p) => Some(
            regex::bytes::RegexBuilder::new(p)
                .size_limit(1 << 22)
                .build()
                .map_err(|e| format!("bad --grep pattern: {e}"))?,
        ),
        None => None,
    };
    Ok(FilterSpec {
        streams: c.streams.clone(),
        hosts: c.hosts.clone(),
        ports: c.ports.clone(),
        from: c.from.map(|f| match f {
            FromSide::Client => Side::Client,
            FromSide::Server => Side::Server,
        }),
        opcodes,
        grep,
        wheres: c
            .wheres
            .iter()
            .map(|w| crate::sink::filter::Where::parse(w))
            .collect::<Result<_, _>>()?,
        only_problems: c.problems,
    })
}

fn table_opts(c: &Common) -> TableOpts {
    let stdout_tty = std::io::stdout().is_terminal();
    let color = match c.color {
        ColorMode::Always => true,
        ColorMode::Never => false,
        ColorMode::Auto => stdout_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    TableOpts {
        time: match c.time {
            TimeMode::R => TimeFormat::Relative,
            TimeMode::A => TimeFormat::Absolute,
            TimeMode::Ad => TimeFormat::AbsoluteDate,
            TimeMode::D => TimeFormat::Delta,
        },
        color,
        width: if stdout_tty { terminal_width() } else { None },
        preview: match c.payload {
            PayloadMode::Full => None,
            _ => Some(60),
        },
        hex: c.binary == BinaryMode::Hex,
        no_payload: c.payload == PayloadMode::None,
        normalize: c.normalize,
    }
}

fn limits(c: &Common) -> Limits {
    let d = Limits::default();
    Limits {
        max_connections: c.max_connections.unwrap_or(d.max_connections).max(1),
        max_stream_buffer: c.max_stream_buffer.unwrap_or(d.max_stream_buffer),
        max_ip_fragment_bytes: c.max_ip_fragments.unwrap_or(d.max_ip_fragment_bytes),
        max_ip_datagrams: c.max_ip_datagrams.unwrap_or(d.max_ip_datagrams).max(1),
        max_scan_window: c.max_scan_window.unwrap_or(d.max_scan_window).max(1),
        max_pending_pings: c.max_pending_pings.unwrap_or(d.max_pending_pings),
        max_http_header: c.max_http_header.unwrap_or(d.max_http_header),
        max_message: c.max_message.unwrap_or(d.max_message),
        max_inflate: c.max_inflate.unwrap_or(d.max_inflate),
        max_inflate_ratio: c.max_inflate_ratio.unwrap_or(d.max_inflate_ratio).max(1),
    }
}

/// Columns of the terminal: `COLUMNS` when the shell exports it, else the tty's own size.
fn terminal_width() -> Option<usize> {
    let cols = std::env::var("COLUMNS").ok().and_then(|c| c.parse::<usize>().ok());
    let cols = cols.or_else(tty_columns);
    Some(cols.filter(|&c| c >= 40).unwrap_or(160))
}

/// Asks the terminal for its width with `stty size` on `/dev/tty` (no libc call, so no
/// `unsafe`; standard input may be a capture being piped in).
fn tty_columns() -> Option<usize> {
    let tty = std::fs::File::open("/dev/tty").ok()?;
    let out = std::process::Command::new("stty")
        .arg("size")
        .stdin(std::process::Stdio::from(tty))
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?;
    s.split_whitespace().nth(1)?.parse().ok()
}
