//! The LLM judge: the bundle's pinned judge model grades one output against a rubric and
//! answers through a forced tool call `record_verdict {pass, score, reason}`.
//!
//! Fail-closed: a reply that cannot be parsed is asked again (a fresh nonce), and after
//! [`PARSE_ATTEMPTS`] it is a **judge error**, its own state, never a pass. The judge never
//! falls back to the model under test: a bundle without a judge cannot have judge checks
//! (`evalgate check` refuses it), and this module only ever calls `JudgeSpec::snapshot`.

use super::caller::{CallError, Caller};
use super::runner::Transcript;
use crate::bundle::{JudgeSpec, ModelParams};
use crate::canonical::key_of;
use crate::golden::{Case, Role};
use crate::ids::Sha256;
use crate::provider::{ChatRequest, ChatResponse, ToolSpec, Turn};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Replies asked for per vote before the vote is a judge error.
pub const PARSE_ATTEMPTS: u32 = 3;

const TOOL: &str = "record_verdict";

const INSTRUCTIONS: &str = "You are an exacting evaluator of an AI agent's answer. Grade the answer against the rubric \
only. Call the tool record_verdict exactly once with: pass (true only when the answer meets every point of the \
rubric), score (0 to 1), and reason (one or two sentences naming what decided it).";

/// One vote of the judge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vote {
    pub pass: bool,
    pub score: f64,
    pub reason: String,
}

/// What decides a judge verdict, hashed into the verdict cache key and shown in the report.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeIdentity {
    pub snapshot: String,
    pub params: Value,
    pub rubric: String,
    pub sha256: Sha256,
}

impl JudgeIdentity {
    pub fn new(judge: &JudgeSpec, rubric: &str) -> Self {
        let snapshot = judge.snapshot.to_string();
        let params = params_json(&judge.params);
        let sha256 = key_of(&["evalgate-judge-v1", &snapshot, &params.to_string(), rubric]);
        JudgeIdentity { snapshot, params, rubric: rubric.to_owned(), sha256 }
    }
}

pub fn params_json(p: &ModelParams) -> Value {
    json!({
        "temperature": p.temperature,
        "top_p": p.top_p,
        "top_k": p.top_k,
        "max_tokens": p.max_tokens,
        "stop": p.stop,
        "seed": p.seed,
    })
}

/// The outcome of one judge check: decided by majority, or a judge error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JudgeOutcome {
    Decided {
        pass: bool,
        votes: Vec<Vote>,
    },
    /// No majority of the votes could be read.
    Error {
        reason: String,
        votes: Vec<Vote>,
    },
}

impl JudgeOutcome {
    pub fn passed(&self) -> Option<bool> {
        match self {
            JudgeOutcome::Decided { pass, .. } => Some(*pass),
            JudgeOutcome::Error { .. } => None,
        }
    }
}

/// The text the judge reads: the rubric, the conversation, the tool calls and the answer.
pub fn user_text(rubric: &str, case: &Case, t: &Transcript) -> String {
    let mut s = format!("## Rubric\n{rubric}\n\n## Conversation\n");
    for m in &case.messages {
        let who = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        s.push_str(&format!("{who}: {}\n", m.content));
    }
    let calls: Vec<String> = t.tool_calls().map(|c| format!("- {}({})", c.name, c.args)).collect();
    if !calls.is_empty() {
        s.push_str("\n## Tool calls the agent made\n");
        s.push_str(&calls.join("\n"));
        s.push('\n');
    }
    s.push_str(&format!("\n## Answer to grade\n{}\n", t.final_text));
    s
}

pub fn request(judge: &JudgeSpec, text: &str) -> ChatRequest {
    ChatRequest {
        snapshot: judge.snapshot.clone(),
        params: judge.params.clone(),
        system: INSTRUCTIONS.to_owned(),
        messages: vec![Turn::User { text: text.to_owned() }],
        tools: vec![ToolSpec {
            name: TOOL.to_owned(),
            description: "Record the verdict on the answer.".to_owned(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "pass": {"type": "boolean"},
                    "score": {"type": "number", "minimum": 0, "maximum": 1},
                    "reason": {"type": "string"}
                },
                "required": ["pass", "score", "reason"],
                "additionalProperties": false
            }),
        }],
        tool_choice: Some(TOOL.to_owned()),
    }
}

/// Reads a vote from the judge's reply: the `record_verdict` call, or (for servers without
/// forced tool calls) a JSON object as the whole text.
pub fn parse_vote(r: &ChatResponse) -> Result<Vote, String> {
    let args = match r.tool_calls.iter().find(|c| c.name == TOOL) {
        Some(c) => c.args.clone(),
        None => serde_json::from_str::<Value>(r.text.trim()).map_err(|_| {
            format!("no `{TOOL}` call and the text is not a JSON verdict: {:?}", truncate(&r.text, 120))
        })?,
    };
    let obj =
        args.as_object().ok_or_else(|| format!("verdict is not an object: {}", truncate(&args.to_string(), 120)))?;
    let pass = obj.get("pass").and_then(Value::as_bool).ok_or("verdict has no boolean `pass`")?;
    let score = obj.get("score").and_then(Value::as_f64).ok_or("verdict has no numeric `score`")?;
    if !(0.0..=1.0).contains(&score) {
        return Err(format!("verdict score {score} is outside 0..1"));
    }
    let reason = obj.get("reason").and_then(Value::as_str).ok_or("verdict has no string `reason`")?.to_owned();
    Ok(Vote { pass, score, reason })
}

fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Asks for one vote, retrying unreadable replies. `Ok(Err(reason))` is a judge error.
pub async fn vote(caller: &Caller, req: &ChatRequest, vote_index: u32) -> Result<Result<Vote, String>, CallError> {
    let mut last = String::new();
    for attempt in 0..PARSE_ATTEMPTS {
        let reply = caller.call(req, vote_index * 16 + attempt).await?;
        match parse_vote(&reply.exchange.response) {
            Ok(v) => return Ok(Ok(v)),
            Err(e) => {
                tracing::warn!(vote = vote_index, attempt, error = %e, "judge reply unreadable");
                last = e;
            }
        }
    }
    Ok(Err(format!("judge reply unreadable after {PARSE_ATTEMPTS} attempts: {last}")))
}

/// The majority of `samples` votes decides; votes that errored count for neither side, so
/// when they keep both sides short of a majority the outcome is a judge error.
pub fn decide(samples: u32, votes: Vec<Result<Vote, String>>) -> JudgeOutcome {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for v in votes {
        match v {
            Ok(v) => ok.push(v),
            Err(e) => errors.push(e),
        }
    }
    let passes = ok.iter().filter(|v| v.pass).count() as u32;
    let fails = ok.len() as u32 - passes;
    if passes * 2 > samples {
        JudgeOutcome::Decided { pass: true, votes: ok }
    } else if fails * 2 > samples {
        JudgeOutcome::Decided { pass: false, votes: ok }
    } else if let Some(e) = errors.first() {
        JudgeOutcome::Error { reason: e.clone(), votes: ok }
    } else {
        JudgeOutcome::Error {
            reason: format!("no majority: {passes} pass, {fails} fail of {samples} votes"),
            votes: ok,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{StopReason, ToolCall, Usage};

    fn reply(text: &str, args: Option<Value>) -> ChatResponse {
        ChatResponse {
            text: text.to_owned(),
            tool_calls: args.map(|a| vec![ToolCall { id: "t".into(), name: TOOL.into(), args: a }]).unwrap_or_default(),
            stop: StopReason::ToolUse,
            usage: Usage::default(),
        }
    }

    fn v(pass: bool) -> Result<Vote, String> {
        Ok(Vote { pass, score: if pass { 1.0 } else { 0.0 }, reason: String::new() })
    }

    #[test]
    fn a_verdict_tool_call_is_read() {
        let vote = parse_vote(&reply("", Some(json!({"pass": true, "score": 0.9, "reason": "ok"})))).expect("valid");
        assert!(vote.pass);
        assert_eq!(vote.score, 0.9);
    }

    #[test]
    fn a_json_text_verdict_is_read() {
        assert!(!parse_vote(&reply("{\"pass\": false, \"score\": 0, \"reason\": \"no\"}", None)).expect("valid").pass);
    }

    #[test]
    fn prose_is_not_a_verdict() {
        let e = parse_vote(&reply("Looks good to me!", None)).expect_err("prose");
        assert!(e.contains("not a JSON verdict"), "{e}");
    }

    #[test]
    fn a_verdict_missing_pass_or_with_a_bad_score_is_unreadable() {
        assert!(parse_vote(&reply("", Some(json!({"score": 1, "reason": ""})))).is_err());
        assert!(parse_vote(&reply("", Some(json!({"pass": "yes", "score": 1, "reason": ""})))).is_err());
        assert!(parse_vote(&reply("", Some(json!({"pass": true, "score": 7, "reason": ""})))).is_err());
    }

    #[test]
    fn the_majority_of_votes_decides() {
        assert_eq!(decide(3, vec![v(true), v(false), v(true)]).passed(), Some(true));
        assert_eq!(decide(3, vec![v(false), v(false), v(true)]).passed(), Some(false));
    }

    #[test]
    fn errored_votes_that_block_a_majority_make_a_judge_error() {
        let o = decide(3, vec![v(true), Err("garbled".into()), Err("garbled".into())]);
        assert_eq!(o.passed(), None);
        let o = decide(2, vec![v(true), v(false)]);
        assert_eq!(o.passed(), None, "a tie is not a pass");
    }

    #[test]
    fn a_majority_survives_one_errored_vote() {
        assert_eq!(decide(3, vec![v(true), v(true), Err("garbled".into())]).passed(), Some(true));
    }

    #[test]
    fn identity_changes_with_the_rubric() {
        let spec = JudgeSpec {
            snapshot: crate::snapshot::PinPolicy::default()
                .snapshot(crate::snapshot::Provider::Anthropic, "claude-haiku-4-5-20251001")
                .expect("pinned"),
            params: ModelParams::default(),
            rubric_path: None,
            rubric: None,
            samples: 3,
        };
        assert_ne!(JudgeIdentity::new(&spec, "a").sha256, JudgeIdentity::new(&spec, "b").sha256);
        assert_eq!(JudgeIdentity::new(&spec, "a").sha256, JudgeIdentity::new(&spec, "a").sha256);
    }
}
