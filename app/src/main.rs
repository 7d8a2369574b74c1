//! `evalgate`: a thin entry point over the command modules.

mod cli;
mod commands;
mod exit;
mod git;
mod logging;
mod output;
mod settings;
mod store;

use clap::Parser;
use exit::Outcome;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match settings::log_json() {
        Ok(json) => logging::init(json),
        Err(e) => {
            eprintln!("evalgate: error: {e:#}");
            return Outcome::Setup.into();
        }
    }
    let outcome = match commands::run(cli.command) {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("evalgate: error: {e:#}");
            Outcome::Setup
        }
    };
    outcome.into()
}
