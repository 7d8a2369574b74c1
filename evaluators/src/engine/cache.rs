//! Content-addressed results: the engine asks before it calls a model, and stores what a call
//! produced. The store itself (SQLite or PostgreSQL) lives in the app; this is the seam.
//!
//! Keys are SHA-256 over everything that decides the result ([`transcript_key`],
//! [`verdict_key`]), so a hit is by construction the answer the same inputs would get, and a
//! re-run with unchanged inputs calls no model. Where the answer came from is one of those
//! inputs (the `origin`, [`crate::provider::ModelClient::origin`]): answers replayed from a
//! cassette are evidence of that cassette and are never served to a live run, and a live
//! endpoint's answers only to runs against the same endpoint.

use super::judge::JudgeIdentity;
use super::runner;
use crate::bundle::Bundle;
use crate::canonical::key_of;
use crate::golden::Case;
use crate::ids::Sha256;
use std::future::Future;
use std::pin::Pin;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheKind {
    /// An agent run ([`runner::Transcript`]).
    Transcript,
    /// One judge vote ([`super::judge::Vote`]).
    Vote,
}

impl CacheKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheKind::Transcript => "transcript",
            CacheKind::Vote => "vote",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("result cache: {0}")]
pub struct CacheError(pub String);

pub trait ResultCache: Send + Sync {
    fn get<'a>(&'a self, kind: CacheKind, key: &'a Sha256) -> BoxFuture<'a, Result<Option<String>, CacheError>>;
    fn put<'a>(&'a self, kind: CacheKind, key: &'a Sha256, value: &'a str) -> BoxFuture<'a, Result<(), CacheError>>;
}

/// An agent run is decided by where the model's answers come from (`origin`, that of the
/// bundle model's provider), the model snapshot and params, the prompt, the tools, the case's
/// input and fixtures, the turn limit and the sample index. The case's checks are not in the
/// key: they are re-evaluated on the cached transcript.
pub fn transcript_key(bundle: &Bundle, case: &Case, sample: u32, origin: &str) -> Sha256 {
    let req = runner::first_request(bundle, case);
    let tools = serde_json::to_string(&req.tools).unwrap_or_default();
    let messages = serde_json::to_string(&req.messages).unwrap_or_default();
    // Each fixture as `cases.jsonl` writes it: a single value keeps the key it always had, and a
    // list's entries (args, result, status) are all in it.
    let fixtures: std::collections::BTreeMap<&str, serde_json::Value> =
        case.tool_results.iter().map(|(k, v)| (k.as_str(), v.to_json())).collect();
    let fixtures = serde_json::to_string(&fixtures).unwrap_or_default();
    let params = super::judge::params_json(&bundle.model.params).to_string();
    key_of(&[
        "evalgate-transcript-v2",
        origin,
        &bundle.model.snapshot.to_string(),
        &params,
        &bundle.prompt,
        &tools,
        &messages,
        &fixtures,
        &bundle.runner.max_turns.to_string(),
        &sample.to_string(),
    ])
}

/// A judge vote is decided by where the judge's answers come from (`origin`, that of the
/// judge's provider), the judge's identity (snapshot, params, rubric), the text it grades and
/// the vote index.
pub fn verdict_key(judge: &JudgeIdentity, graded_text: &str, vote: u32, origin: &str) -> Sha256 {
    key_of(&["evalgate-vote-v2", origin, &judge.sha256.hex(), graded_text, &vote.to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::{RepoPath, WorkTree};

    const LIVE: &str = "live:https://api.anthropic.com";
    const CASSETTE: &str = "cassette:sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// The example bundle of this repository and its golden set.
    fn example() -> crate::workspace::LoadedBundle {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let tree = WorkTree::new(&root).expect("the workspace");
        let mut diags = crate::diagnostic::Diagnostics::new();
        let cfg = crate::config::load(&tree, &mut diags);
        let manifest = RepoPath::parse("examples/refund-agent/bundle.yaml").expect("path");
        let loaded = crate::workspace::load_bundle(&tree, &cfg, &manifest, &mut diags);
        loaded.filter(|_| diags.is_empty()).unwrap_or_else(|| panic!("the example loads: {diags:?}"))
    }

    #[test]
    fn transcript_keys_differ_by_origin() {
        let ex = example();
        let case = &ex.golden.cases[0];
        let key = |origin: &str| transcript_key(&ex.bundle, case, 0, origin);
        assert_eq!(key(LIVE), key(LIVE));
        assert_ne!(key(LIVE), key(CASSETTE), "a cassette's answers are not a live endpoint's");
        assert_ne!(key(LIVE), key("live:http://127.0.0.1:9"), "nor one endpoint's another's");
        assert_ne!(key(CASSETTE), key("cassette:sha256:00"), "nor one cassette's another's");
        assert_ne!(key(LIVE), transcript_key(&ex.bundle, case, 1, LIVE));
    }

    #[test]
    fn verdict_keys_differ_by_origin() {
        let ex = example();
        let judge = ex.bundle.eval.judge.as_ref().expect("the example has a judge");
        let identity = JudgeIdentity::new(judge, "Polite and correct.");
        let key = |origin: &str| verdict_key(&identity, "graded", 0, origin);
        assert_eq!(key(LIVE), key(LIVE));
        assert_ne!(key(LIVE), key(CASSETTE));
        assert_ne!(key(LIVE), key("live:http://127.0.0.1:9"));
        assert_ne!(key(LIVE), verdict_key(&identity, "graded", 1, LIVE));
        assert_ne!(key(LIVE), verdict_key(&identity, "other", 0, LIVE));
    }
}
