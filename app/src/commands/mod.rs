//! One module per subcommand. Each returns an [`Outcome`]; an `Err` is a setup error (exit 2).

mod check;
mod eval;
mod evidence;
mod golden_import;
mod golden_pin;
mod migrate;
mod pins;
mod serve;
mod setup;

use crate::cli::{Command, GoldenCommand};
use crate::exit::Outcome;

pub fn run(command: Command) -> anyhow::Result<Outcome> {
    match command {
        Command::Check { path } => check::run(&path),
        Command::Golden { command: GoldenCommand::Pin { bundle_dir } } => golden_pin::run(&bundle_dir),
        Command::Golden { command: GoldenCommand::Import(args) } => golden_import::run(&args),
        Command::Serve => serve::run(),
        Command::Setup { org } => setup::run(org.as_deref()),
        Command::Eval(args) => eval::run(&args),
        Command::Pins { path, json } => pins::run(&path, json),
        Command::Evidence { command } => evidence::run(&command),
        Command::Migrate => migrate::run(),
    }
}
