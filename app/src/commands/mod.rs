//! One module per subcommand. Each returns an [`Outcome`]; an `Err` is a setup error (exit 2).

mod check;
mod eval;
mod evidence;
mod golden_pin;
mod migrate;
mod serve;

use crate::cli::{Command, GoldenCommand};
use crate::exit::Outcome;

pub fn run(command: Command) -> anyhow::Result<Outcome> {
    match command {
        Command::Check { path } => check::run(&path),
        Command::Golden { command: GoldenCommand::Pin { bundle_dir } } => golden_pin::run(&bundle_dir),
        Command::Serve => serve::run(),
        Command::Eval(args) => eval::run(&args),
        Command::Pins { .. } => not_yet("pins"),
        Command::Evidence { command } => evidence::run(&command),
        Command::Migrate => migrate::run(),
    }
}

/// Subcommands of SPEC that this build does not have yet: a clear message and exit 2, never a
/// silent success.
fn not_yet(name: &str) -> anyhow::Result<Outcome> {
    eprintln!("evalgate {name}: not available yet in this version of evalgate");
    Ok(Outcome::Setup)
}
