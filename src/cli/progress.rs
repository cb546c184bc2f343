//! The progress bar on standard error for long file reads (indicatif): bytes read,
//! packets/s and ETA. Only on a terminal and without `--quiet`; never in pipes.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::Path;
use std::time::Duration;

pub struct Progress {
    bar: Option<ProgressBar>,
    len: u64,
}

impl Progress {
    pub fn new(enabled: bool, path: &Path) -> Progress {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        // Small files are done before a bar would be worth drawing.
        if !enabled || len < (8 << 20) {
            return Progress { bar: None, len };
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr_with_hz(4));
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {msg} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(path.display().to_string());
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress { bar: Some(bar), len }
    }

    /// Cheap enough for every packet: the bar itself redraws at most 4 times a second.
    pub fn tick(&mut self, packets: u64, bytes: u64) {
        if let Some(bar) = &self.bar {
            if packets % 1024 == 0 {
                bar.set_position(bytes.min(self.len));
                let secs = bar.elapsed().as_secs_f64();
                if secs > 0.0 {
                    bar.set_message(format!("{:.0} packets/s", packets as f64 / secs));
                }
            }
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
