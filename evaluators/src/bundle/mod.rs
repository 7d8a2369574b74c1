//! A bundle: everything that decides an agent's behaviour, read from `bundle.yaml` and the
//! files it references. A [`Bundle`] value exists only when every part was valid.

mod load;

pub use load::{MANIFEST_NAME, load};

use crate::diagnostic::Pos;
use crate::ids::{BundleName, Sha256};
use crate::repo::RepoPath;
use crate::snapshot::Snapshot;
use crate::tools::ToolDef;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    /// The `bundle.yaml` file.
    pub manifest: RepoPath,
    /// The folder holding it; references are relative to it.
    pub dir: RepoPath,
    pub name: BundleName,
    pub version: String,
    pub model: ModelSpec,
    pub prompt_path: RepoPath,
    pub prompt: String,
    pub tools_path: Option<RepoPath>,
    pub tools: Vec<ToolDef>,
    pub runner: Runner,
    pub eval: EvalSpec,
    pub metadata: BTreeMap<String, String>,
    /// The canonical bundle hash (see [`crate::canonical`]).
    pub hash: Sha256,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub snapshot: Snapshot,
    pub params: ModelParams,
}

/// Sampling parameters sent with every call. Unset values are left to the provider.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelParams {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u32>,
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
    pub seed: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Runner {
    /// Model turns in the agent loop (model → tool calls → fixture results → model …).
    pub max_turns: u32,
}

impl Default for Runner {
    fn default() -> Self {
        Runner { max_turns: 6 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EvalSpec {
    pub golden_set: RepoPath,
    /// The pin; `pin_pos` is where it is written, for diagnostics and `golden pin`.
    pub golden_set_sha256: Sha256,
    pub pin_pos: Pos,
    pub samples: u32,
    pub judge: Option<JudgeSpec>,
    pub gate: GateConfig,
    pub budget: Budget,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JudgeSpec {
    pub snapshot: Snapshot,
    pub params: ModelParams,
    pub rubric_path: Option<RepoPath>,
    /// The default rubric text for `judge` checks that give none.
    pub rubric: Option<String>,
    /// Votes per output; the majority decides.
    pub samples: u32,
}

/// The gate thresholds a bundle declares; every one optional.
#[derive(Debug, Clone, PartialEq)]
pub struct GateConfig {
    pub max_regression_rate: Option<f64>,
    pub min_pass_rate: Option<f64>,
    pub min_fix_rate: Option<f64>,
    pub max_cost_increase: Option<f64>,
    pub max_p95_latency_increase_ms: Option<u64>,
    pub critical_tags: Vec<String>,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            max_regression_rate: None,
            min_pass_rate: None,
            min_fix_rate: None,
            max_cost_increase: None,
            max_p95_latency_increase_ms: None,
            critical_tags: vec!["critical".to_owned()],
        }
    }
}

/// Spending caps for one gate run; a breach stops the run (never a pass).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Budget {
    pub max_usd: Option<f64>,
    pub max_tokens: Option<u64>,
}
