//! `evalgate`: a thin entry point over the command modules.

mod audit;
mod cli;
mod commands;
mod evaluate;
mod exit;
mod flow;
mod git;
mod github;
mod jobs;
mod link;
mod logging;
mod metrics;
mod output;
mod pins;
mod render;
mod review;
mod server;
mod settings;
mod setup;
mod store;
mod task;
mod webhook;
mod worker;

use clap::Parser;
use exit::Outcome;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Err(e) = settings::load_file() {
        eprintln!("evalgate: error: {e:#}");
        return Outcome::Setup.into();
    }
    match settings::log_json() {
        Ok(json) => logging::init(json, if matches!(cli.command, cli::Command::Serve) { "info" } else { "warn" }),
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
