//! The command line, as SPEC's "Command line" section fixes it.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "evalgate", version, about = "Gates changes to AI agents the way CI gates code.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the GitHub App (webhooks, workers, scheduler, report pages).
    Serve,
    /// Register the GitHub App from its manifest in a browser (GitHub's manifest flow) and write
    /// its credentials (evalgate.toml and the private key) in the current folder.
    Setup {
        /// Register the App under this organization instead of your user.
        #[arg(long, value_name = "ORG")]
        org: Option<String>,
    },
    /// Static checks of every bundle and golden set under PATH; exit 1 on any error.
    Check {
        /// Where to look (default: the current folder).
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// The same gate as on a pull request, locally: head = working tree, base = REF.
    Eval(EvalArgs),
    /// Golden-set commands.
    Golden {
        #[command(subcommand)]
        command: GoldenCommand,
    },
    /// Pinned snapshots, the newest available, and the lag in days.
    Pins {
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Audit evidence: export a period, or verify an export.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// Apply database migrations.
    Migrate,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    pub bundle_dir: PathBuf,
    /// Base revision (default: merge-base with the default branch).
    #[arg(long)]
    pub base_ref: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// What the run would cost, without calling any model.
    #[arg(long)]
    pub estimate: bool,
    /// Record every model exchange to a cassette.
    #[arg(long, value_name = "FILE", conflicts_with = "replay")]
    pub record: Option<PathBuf>,
    /// Answer every model call from a cassette.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
    /// Model calls in flight per provider (default: EVALGATE_CONCURRENCY or 16).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Compare with the bundle in another folder of the same working tree instead of a git
    /// revision (both bundles are read as they are on disk).
    #[arg(long, value_name = "DIR", conflicts_with = "base_ref")]
    pub base_dir: Option<PathBuf>,
    /// Tighten a gate threshold, as a pre-registration would (KEY=VALUE, e.g.
    /// max_regression_rate=1%). A value looser than the base bundle's is ignored and reported.
    #[arg(long, value_name = "KEY=VALUE")]
    pub threshold: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum GoldenCommand {
    /// Recompute the golden-set pin and write it into bundle.yaml, leaving every other byte.
    Pin { bundle_dir: PathBuf },
    /// Turn recorded production conversations (an event log or OTLP/JSON GenAI traces) into
    /// golden cases, one per conversation.
    Import(GoldenImportArgs),
}

#[derive(Debug, Args)]
pub struct GoldenImportArgs {
    /// Event logs or OTLP/JSON trace files, one event (or one export) a line; `-` reads
    /// standard input.
    #[arg(value_name = "EVENTS", required = true)]
    pub events: Vec<PathBuf>,
    /// The golden set folder to write into (created when missing); other cases in it are kept.
    #[arg(long, value_name = "GOLDEN_DIR")]
    pub out: PathBuf,
    /// Check the recorded arguments against this bundle's tool schemas, and rewrite its
    /// golden-set pin afterwards (`--out` must be its golden set).
    #[arg(long, value_name = "BUNDLE_DIR")]
    pub bundle: Option<PathBuf>,
    /// Import only this conversation (repeatable).
    #[arg(long = "conversation", value_name = "ID")]
    pub conversations: Vec<String>,
    /// The judge's rubric for the imported cases: what the right behaviour is (default: agree
    /// with the answer recorded in production).
    #[arg(long, value_name = "TEXT")]
    pub rubric: Option<String>,
    /// Replace e-mail addresses, phone numbers, card numbers, IBANs and secrets with
    /// placeholders before anything is written.
    #[arg(long)]
    pub redact: bool,
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Export the audit trail of a period as a zip.
    Export {
        #[arg(long, value_name = "OWNER/NAME")]
        repo: String,
        #[arg(long, value_name = "DATE")]
        since: String,
        #[arg(long, value_name = "DATE")]
        until: String,
        #[arg(long, value_name = "FILE.zip")]
        out: PathBuf,
    },
    /// Verify an export offline; exit 1 when it was tampered with.
    Verify { file: PathBuf },
}
