//! Content-addressed results: the engine asks before it calls a model, and stores what a call
//! produced. The store itself (SQLite or PostgreSQL) lives in the app; this is the seam.
//!
//! Keys are SHA-256 over everything that decides the result ([`transcript_key`],
//! [`verdict_key`]), so a hit is by construction the answer the same inputs would get, and a
//! re-run with unchanged inputs calls no model.

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

/// An agent run is decided by the model snapshot and params, the prompt, the tools, the case's
/// input and fixtures, the turn limit and the sample index. The case's checks are not in the
/// key: they are re-evaluated on the cached transcript.
pub fn transcript_key(bundle: &Bundle, case: &Case, sample: u32) -> Sha256 {
    let req = runner::first_request(bundle, case);
    let tools = serde_json::to_string(&req.tools).unwrap_or_default();
    let messages = serde_json::to_string(&req.messages).unwrap_or_default();
    let fixtures: std::collections::BTreeMap<&str, &serde_json::Value> =
        case.tool_results.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let fixtures = serde_json::to_string(&fixtures).unwrap_or_default();
    let params = super::judge::params_json(&bundle.model.params).to_string();
    key_of(&[
        "evalgate-transcript-v1",
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

/// A judge vote is decided by the judge's identity (snapshot, params, rubric), the text it
/// grades and the vote index.
pub fn verdict_key(judge: &JudgeIdentity, graded_text: &str, vote: u32) -> Sha256 {
    key_of(&["evalgate-vote-v1", &judge.sha256.hex(), graded_text, &vote.to_string()])
}
