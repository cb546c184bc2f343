//! The command line: what the user typed (`args`), what it means (`config`), and the exit
//! codes (`exit`).

pub mod args;
pub mod config;
pub mod exit;
pub mod live;
pub mod progress;
pub mod run;
