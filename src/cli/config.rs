//! Validated, resolved configuration ("high args"): the terminal, colour, limits and views
//! decided once from the arguments and the environment.

use super::args::{Args, BinaryMode, ColorMode, PayloadMode, TimeMode};
use crate::limits::Limits;
use crate::sink::table::{TableOpts, TimeFormat};
use std::io::IsTerminal;
use std::path::PathBuf;

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    pub inputs: Vec<PathBuf>,
    pub json: bool,
    pub json_array: bool,
    pub conns: bool,
    pub all: bool,
    pub only_problems: bool,
    pub streams: Vec<u64>,
    pub count: Option<u64>,
    pub max_payload: Option<usize>,
    pub table: TableOpts,
    pub limits: Limits,
}

impl Config {
    pub fn from_args(args: Args) -> Result<Config, String> {
        let mut inputs = args.read.clone();
        inputs.extend(args.files.iter().cloned());
        if inputs.is_empty() {
            return Err(
                "no capture given (try `wsdissect FILE`, `-r FILE`, or `-` for standard input)"
                    .into(),
            );
        }
        if inputs.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
            return Err("standard input (-) can be read only once".into());
        }
        let stdout_tty = std::io::stdout().is_terminal();
        let color = match args.color {
            ColorMode::Always => true,
            ColorMode::Never => false,
            ColorMode::Auto => {
                stdout_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        };
        let width = if stdout_tty { terminal_width() } else { None };
        let table = TableOpts {
            time: match args.time {
                TimeMode::R => TimeFormat::Relative,
                TimeMode::A => TimeFormat::Absolute,
                TimeMode::Ad => TimeFormat::AbsoluteDate,
                TimeMode::D => TimeFormat::Delta,
            },
            color,
            width,
            preview: match args.payload {
                PayloadMode::Full => None,
                _ => Some(60),
            },
            hex: args.binary == BinaryMode::Hex,
            no_payload: args.payload == PayloadMode::None,
        };
        let d = Limits::default();
        let limits = Limits {
            max_connections: args.max_connections.unwrap_or(d.max_connections).max(1),
            max_stream_buffer: args.max_stream_buffer.unwrap_or(d.max_stream_buffer),
            max_ip_fragment_bytes: args.max_ip_fragments.unwrap_or(d.max_ip_fragment_bytes),
            max_http_header: args.max_http_header.unwrap_or(d.max_http_header),
            max_message: args.max_message.unwrap_or(d.max_message),
            max_inflate: args.max_inflate.unwrap_or(d.max_inflate),
            max_inflate_ratio: args.max_inflate_ratio.unwrap_or(d.max_inflate_ratio).max(1),
        };
        Ok(Config {
            inputs,
            json: args.json || args.json_array,
            json_array: args.json_array,
            conns: args.conns,
            all: args.all,
            only_problems: args.problems,
            streams: args.streams,
            count: args.count,
            max_payload: args.max_payload,
            table,
            limits,
        })
    }
}

/// Columns of the terminal, from `COLUMNS` (set by shells) or a default.
fn terminal_width() -> Option<usize> {
    let cols = std::env::var("COLUMNS").ok().and_then(|c| c.parse::<usize>().ok());
    Some(cols.filter(|&c| c >= 40).unwrap_or(160))
}
