//! The one table of exit codes (mirrored in README.md).

use std::process::ExitCode;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything was read; for `check`, nothing at or above the chosen severity.
    Ok = 0,
    /// `check` found problems at or above the chosen severity.
    Problems = 1,
    /// Usage error, or an input that could not be read to its end (missing, unreadable, not a
    /// capture, truncated, corrupt). Records already printed stay valid. Also: the output, or
    /// `diff`'s temporary file, could not be written.
    InputError = 2,
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> ExitCode {
        ExitCode::from(s as u8)
    }
}
