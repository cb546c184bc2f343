use clap::Parser;
use std::process::ExitCode;
use wsdissect::cli::{args::Args, config::Config, exit::ExitStatus, run};

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { ExitStatus::InputError } else { ExitStatus::Ok };
            // --help and --version go to stdout; a closed pipe there is not an error.
            let _ = e.print();
            return code.into();
        }
    };
    let config = match Config::from_args(args) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("wsdissect: {msg}");
            return ExitStatus::InputError.into();
        }
    };
    run::run(config).into()
}
