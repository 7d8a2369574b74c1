//! `evalgate`: a thin entry point over the command modules.

mod cli;
mod commands;
mod exit;

use clap::Parser;
use exit::Outcome;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let outcome = match commands::run(cli.command) {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("evalgate: error: {e:#}");
            Outcome::Setup
        }
    };
    outcome.into()
}
