use clap::{CommandFactory, Parser};
use std::process::ExitCode;
use wsdissect::cli::args::Args;
use wsdissect::cli::config::{Action, Config};
use wsdissect::cli::exit::ExitStatus;
use wsdissect::cli::{live, run};

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
    let action = match Config::from_args(args) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("wsdissect: {msg}");
            return ExitStatus::InputError.into();
        }
    };
    match action {
        Action::Run(config) => run::run(*config).into(),
        Action::Completions(shell) => {
            clap_complete::generate(
                shell,
                &mut Args::command(),
                "wsdissect",
                &mut std::io::stdout(),
            );
            ExitStatus::Ok.into()
        }
        Action::Man => {
            let man = clap_mangen::Man::new(Args::command());
            match man.render(&mut std::io::stdout()) {
                Ok(()) => ExitStatus::Ok.into(),
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitStatus::Ok.into(),
                Err(e) => {
                    eprintln!("wsdissect: {e}");
                    ExitStatus::InputError.into()
                }
            }
        }
        Action::ListInterfaces => match live::list_interfaces() {
            Ok(names) => {
                for (i, n) in names.iter().enumerate() {
                    println!("{}. {n}", i + 1);
                }
                ExitStatus::Ok.into()
            }
            Err(e) => {
                eprintln!("wsdissect: {e}");
                ExitStatus::InputError.into()
            }
        },
    }
}
