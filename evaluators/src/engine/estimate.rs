//! `evalgate eval --estimate`: what a run would cost, without calling any model.
//!
//! Cache hits are exact: the same keys the run would look up are looked up, under the origins
//! of the client the run would use (a live endpoint's answers are not a cassette's). For work not
//! cached, the number of agent calls is predicted as one call per tool the case has a fixture
//! for (per entry of a list of fixtures) plus the final answer (capped by `max_turns`), which is how an agent that uses each
//! fixture once behaves; judge calls are one per vote and side. (When both sides happen to give
//! the same answer the run grades it once, so the real count is then lower: the estimate never
//! undercounts for that reason.) Tokens are estimated from the request text (4 bytes a token)
//! and a typical reply length, and priced like a real run.

use super::cache::{self, CacheKind, ResultCache};
use super::judge::{self, JudgeIdentity};
use super::runner::{self, Transcript};
use crate::bundle::Bundle;
use crate::golden::{Case, Check, GoldenSet};
use crate::pricing::PriceTable;
use crate::provider::{ModelClient, Usage};
use crate::snapshot::Snapshot;
use serde::Serialize;
use std::collections::HashSet;

/// Output tokens assumed per agent call and per judge vote when predicting.
const AGENT_REPLY_TOKENS: u64 = 150;
const JUDGE_REPLY_TOKENS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Estimate {
    /// Model calls the run would make.
    pub calls: u64,
    pub agent_calls: u64,
    pub judge_calls: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// `None` when a snapshot has no price.
    pub usd: Option<f64>,
    /// Agent runs and judge votes answered from the cache.
    pub cache_hits: u64,
    /// Agent runs in all (cases × samples × sides, shared work counted once).
    pub runs: u64,
}

impl Estimate {
    fn add_call(&mut self, prices: &PriceTable, snapshot: &Snapshot, tokens_in: u64, tokens_out: u64) {
        self.calls += 1;
        self.tokens_in += tokens_in;
        self.tokens_out += tokens_out;
        let cost = prices.cost(snapshot, Usage { input_tokens: tokens_in, output_tokens: tokens_out });
        self.usd = self.usd.zip(cost).map(|(a, b)| a + b);
    }
}

/// `client` is the one the run would use: its [`ModelClient::origin`]s decide which cached
/// answers the run could be served. It is never called.
pub async fn estimate(
    cache: &dyn ResultCache,
    client: &ModelClient,
    prices: &PriceTable,
    base: &Bundle,
    head: &Bundle,
    golden: &GoldenSet,
) -> Result<Estimate, cache::CacheError> {
    let mut e = Estimate { usd: Some(0.0), ..Estimate::default() };
    let mut seen = HashSet::new();
    let mut seen_votes = HashSet::new();
    for bundle in [base, head] {
        for case in &golden.cases {
            for sample in 0..bundle.eval.samples {
                let origin = client.origin(bundle.model.snapshot.provider());
                let key = cache::transcript_key(bundle, case, sample, &origin);
                if !seen.insert(key) {
                    continue;
                }
                e.runs += 1;
                let cached = match cache.get(CacheKind::Transcript, &key).await? {
                    Some(text) => serde_json::from_str::<Transcript>(&text).ok(),
                    None => None,
                };
                match cached {
                    Some(t) => {
                        e.cache_hits += 1;
                        judge_calls(&mut e, cache, client, prices, bundle, case, Some(&t), &mut seen_votes).await?;
                    }
                    None => {
                        agent_calls(&mut e, prices, bundle, case);
                        judge_calls(&mut e, cache, client, prices, bundle, case, None, &mut seen_votes).await?;
                    }
                }
            }
        }
    }
    Ok(e)
}

fn agent_calls(e: &mut Estimate, prices: &PriceTable, bundle: &Bundle, case: &Case) {
    // A list of fixtures holds one answer per recorded call: each counts as a call.
    let answers: u64 = case.tool_results.values().map(|f| f.answers() as u64).sum();
    let turns = (1 + answers).min(u64::from(bundle.runner.max_turns));
    let req = runner::first_request(bundle, case);
    let base_tokens = request_tokens(&req);
    let fixture_tokens: u64 = case.tool_results.values().map(|f| f.to_json().to_string().len() as u64 / 4).sum();
    for turn in 0..turns {
        // Each turn resends the conversation, grown by the replies and tool results so far.
        let grown = turn * AGENT_REPLY_TOKENS + fixture_tokens * turn / turns.max(1);
        e.agent_calls += 1;
        e.add_call(prices, &bundle.model.snapshot, base_tokens + grown, AGENT_REPLY_TOKENS);
    }
}

#[allow(clippy::too_many_arguments)]
async fn judge_calls(
    e: &mut Estimate,
    cache: &dyn ResultCache,
    client: &ModelClient,
    prices: &PriceTable,
    bundle: &Bundle,
    case: &Case,
    transcript: Option<&Transcript>,
    seen: &mut HashSet<crate::ids::Sha256>,
) -> Result<(), cache::CacheError> {
    let Some(spec) = &bundle.eval.judge else { return Ok(()) };
    let origin = client.origin(spec.snapshot.provider());
    for check in &case.checks {
        let Check::Judge { rubric } = check else { continue };
        let rubric = rubric.as_deref().or(spec.rubric.as_deref()).unwrap_or_default();
        let identity = JudgeIdentity::new(spec, rubric);
        for vote in 0..spec.samples {
            if let Some(t) = transcript {
                let text = judge::user_text(rubric, case, t);
                let key = cache::verdict_key(&identity, &text, vote, &origin);
                if !seen.insert(key) {
                    continue;
                }
                if cache.get(CacheKind::Vote, &key).await?.is_some() {
                    e.cache_hits += 1;
                    continue;
                }
                let tokens = request_tokens(&judge::request(spec, &text));
                e.judge_calls += 1;
                e.add_call(prices, &spec.snapshot, tokens, JUDGE_REPLY_TOKENS);
            } else {
                let text = judge::user_text(rubric, case, &Transcript::empty());
                let tokens = request_tokens(&judge::request(spec, &text)) + AGENT_REPLY_TOKENS;
                e.judge_calls += 1;
                e.add_call(prices, &spec.snapshot, tokens, JUDGE_REPLY_TOKENS);
            }
        }
    }
    Ok(())
}

fn request_tokens(req: &crate::provider::ChatRequest) -> u64 {
    let tools = serde_json::to_string(&req.tools).map(|s| s.len()).unwrap_or(0);
    let messages = serde_json::to_string(&req.messages).map(|s| s.len()).unwrap_or(0);
    ((req.system.len() + tools + messages) / 4) as u64
}
