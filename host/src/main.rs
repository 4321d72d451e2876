//! The `tessera` command line. Each subcommand is a thin layer over
//! `tessera_host`; errors are printed as one sentence with their causes and
//! mapped to exit codes: 0 success, 2 usage or input error, 1 anything else.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
