//! The agent loop: model → tool calls → fixture results → model … up to `max_turns`.
//!
//! Tools never run for real: each call is answered from the case's `tool_results` — the one
//! value of the tool, or the first entry of its list whose `args` are a subset of the call's. A
//! tool the case has no fixture for, a call no entry of the list matches, or a tool the bundle
//! does not declare gets an error result that the model sees and the transcript records, so a
//! case cannot pass by accident of a missing fixture. An entry recorded as a failed call
//! (`status: error | timeout`) is sent as an error result too.

use super::caller::{CallError, Caller};
use crate::bundle::Bundle;
use crate::golden::{CallStatus, Case, Role};
use crate::provider::{ChatRequest, StopReason, ToolCall, ToolResult, ToolSpec, Turn};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Everything one agent run did; cached and replayed as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// The agent's final answer: the text of its last model reply.
    pub final_text: String,
    /// Model calls made.
    pub turns: u32,
    /// The run ended because `max_turns` was reached while the model still wanted tools.
    pub hit_max_turns: bool,
    pub events: Vec<Event>,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// `None` when a snapshot of the run has no price.
    pub cost_usd: Option<f64>,
    /// Sum of the model calls' latencies.
    pub latency_ms: u64,
}

impl Transcript {
    /// A run that has not started: no answer, no calls.
    pub fn empty() -> Self {
        Transcript {
            final_text: String::new(),
            turns: 0,
            hit_max_turns: false,
            events: Vec::new(),
            tokens_in: 0,
            tokens_out: 0,
            cost_usd: Some(0.0),
            latency_ms: 0,
        }
    }

    /// Every tool call the agent made, in order.
    pub fn tool_calls(&self) -> impl Iterator<Item = &ToolCall> {
        self.events.iter().filter_map(|e| match e {
            Event::Tool { call, .. } => Some(call),
            Event::Model { .. } => None,
        })
    }
}

/// How a tool call was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolStatus {
    /// Answered from the case's fixture.
    Fixture,
    /// Answered from a fixture entry recorded as a failed call: the model got its error result.
    FixtureError,
    /// The case has no fixture for this tool, or none of its entries matches the call's
    /// arguments: the model got an error result.
    NoFixture,
    /// The bundle declares no such tool: the model got an error result.
    UnknownTool,
}

/// One step of a run. Times are milliseconds from the start of the run, summed from the
/// calls' latencies, so a replayed run reproduces them exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Model {
        turn: u32,
        start_ms: u64,
        end_ms: u64,
        latency_ms: u64,
        tokens_in: u64,
        tokens_out: u64,
        cost_usd: Option<f64>,
        stop: StopReason,
    },
    Tool {
        turn: u32,
        call: ToolCall,
        result: String,
        status: ToolStatus,
        at_ms: u64,
    },
}

/// The request of the first turn; the rest of the run appends to its messages.
pub fn first_request(bundle: &Bundle, case: &Case) -> ChatRequest {
    let messages = case
        .messages
        .iter()
        .map(|m| match m.role {
            Role::User => Turn::User { text: m.content.clone() },
            Role::Assistant => Turn::Assistant { text: m.content.clone(), tool_calls: Vec::new() },
        })
        .collect();
    ChatRequest {
        snapshot: bundle.model.snapshot.clone(),
        params: bundle.model.params.clone(),
        system: bundle.prompt.clone(),
        messages,
        tools: tool_specs(bundle),
        tool_choice: None,
    }
}

pub fn tool_specs(bundle: &Bundle) -> Vec<ToolSpec> {
    bundle
        .tools
        .iter()
        .map(|t| ToolSpec {
            name: t.name.to_string(),
            description: t.description.clone(),
            input_schema: t.input_schema.clone(),
        })
        .collect()
}

/// Runs the agent on one case. `nonce` tells samples of the same case apart.
pub async fn run(caller: &Caller, bundle: &Bundle, case: &Case, nonce: u32) -> Result<Transcript, CallError> {
    let mut req = first_request(bundle, case);
    let mut t = Transcript::empty();
    let max_turns = bundle.runner.max_turns;
    loop {
        let call = caller.call(&req, nonce).await?;
        let r = call.exchange.response;
        t.turns += 1;
        let start_ms = t.latency_ms;
        t.latency_ms += call.exchange.latency_ms;
        t.tokens_in += r.usage.input_tokens;
        t.tokens_out += r.usage.output_tokens;
        t.cost_usd = t.cost_usd.zip(call.cost_usd).map(|(a, b)| a + b);
        t.events.push(Event::Model {
            turn: t.turns,
            start_ms,
            end_ms: t.latency_ms,
            latency_ms: call.exchange.latency_ms,
            tokens_in: r.usage.input_tokens,
            tokens_out: r.usage.output_tokens,
            cost_usd: call.cost_usd,
            stop: r.stop.clone(),
        });
        t.final_text = r.text.clone();
        if r.tool_calls.is_empty() {
            return Ok(t);
        }
        if t.turns >= max_turns {
            t.hit_max_turns = true;
            return Ok(t);
        }
        let results: Vec<ToolResult> = r
            .tool_calls
            .iter()
            .map(|c| {
                let (content, status) = answer(bundle, case, c);
                t.events.push(Event::Tool {
                    turn: t.turns,
                    call: c.clone(),
                    result: content.clone(),
                    status,
                    at_ms: t.latency_ms,
                });
                ToolResult { call_id: c.id.clone(), content, is_error: status != ToolStatus::Fixture }
            })
            .collect();
        req.messages.push(Turn::Assistant { text: r.text, tool_calls: r.tool_calls });
        req.messages.push(Turn::ToolResults { results });
    }
}

/// The fixture result for one call, or the error result the model is told.
fn answer(bundle: &Bundle, case: &Case, call: &ToolCall) -> (String, ToolStatus) {
    if !bundle.tools.iter().any(|t| t.name.as_str() == call.name) {
        return (format!("error: there is no tool named `{}`", call.name), ToolStatus::UnknownTool);
    }
    let Some((_, fixture)) = case.tool_results.iter().find(|(name, _)| name.as_str() == call.name) else {
        return (format!("error: tool `{}` is unavailable in this test case", call.name), ToolStatus::NoFixture);
    };
    match fixture.answer(&call.args) {
        Some((value, CallStatus::Ok)) => (fixture_text(value), ToolStatus::Fixture),
        Some((value, status)) => {
            let text = match value {
                Value::Null if status == CallStatus::Timeout => format!("error: `{}` timed out", call.name),
                Value::Null => format!("error: `{}` failed", call.name),
                other => fixture_text(other),
            };
            (text, ToolStatus::FixtureError)
        }
        None => (
            format!("error: no fixture of tool `{}` in this test case matches these arguments", call.name),
            ToolStatus::NoFixture,
        ),
    }
}

/// Fixtures that are JSON strings are sent as the string itself, everything else as JSON text.
fn fixture_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden::{Fixture, FixtureEntry};
    use crate::ids::ToolName;
    use crate::repo::{RepoPath, WorkTree};
    use serde_json::json;

    /// The example bundle of this repository and its first case.
    fn example() -> (Bundle, Case) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let tree = WorkTree::new(&root).expect("the workspace");
        let mut diags = crate::diagnostic::Diagnostics::new();
        let cfg = crate::config::load(&tree, &mut diags);
        let manifest = RepoPath::parse("examples/refund-agent/bundle.yaml").expect("path");
        let loaded = crate::workspace::load_bundle(&tree, &cfg, &manifest, &mut diags);
        let ex = loaded.filter(|_| diags.is_empty()).unwrap_or_else(|| panic!("the example loads: {diags:?}"));
        let case = ex.golden.cases[0].clone();
        (ex.bundle, case)
    }

    fn call(name: &str, args: Value) -> ToolCall {
        ToolCall { id: "toolu_1".into(), name: name.into(), args }
    }

    fn entry(args: Value, result: Value, status: CallStatus) -> FixtureEntry {
        FixtureEntry { args: args.as_object().expect("args").clone(), result, status }
    }

    #[test]
    fn the_list_form_answers_by_arguments_and_a_call_no_entry_matches_gets_an_error() {
        let (bundle, mut case) = example();
        let fixture = Fixture::ByArgs(vec![
            entry(json!({"order_id": "A1", "reason": "damaged"}), json!({"refunded": 5}), CallStatus::Ok),
            entry(json!({"order_id": "B2"}), json!("gateway 502"), CallStatus::Error),
            entry(json!({"order_id": "C3"}), Value::Null, CallStatus::Timeout),
        ]);
        case.tool_results.insert(ToolName::parse("refund_order").unwrap(), fixture);
        let answer = |args: Value| answer(&bundle, &case, &call("refund_order", args));
        assert_eq!(
            answer(json!({"order_id": "A1", "reason": "damaged", "amount": 5})),
            ("{\"refunded\":5}".to_owned(), ToolStatus::Fixture)
        );
        assert_eq!(
            answer(json!({"order_id": "B2", "amount": 1})),
            ("gateway 502".to_owned(), ToolStatus::FixtureError)
        );
        assert_eq!(
            answer(json!({"order_id": "C3"})),
            ("error: `refund_order` timed out".to_owned(), ToolStatus::FixtureError)
        );
        let (text, status) = answer(json!({"order_id": "A1", "reason": "other"}));
        assert_eq!(status, ToolStatus::NoFixture);
        assert!(
            text.contains("no fixture of tool `refund_order`") && text.contains("matches these arguments"),
            "{text}"
        );
        // The map form still answers every call with its one value.
        let (text, status) = answer_lookup(&bundle, &case);
        assert_eq!(status, ToolStatus::Fixture, "{text}");
    }

    fn answer_lookup(bundle: &Bundle, case: &Case) -> (String, ToolStatus) {
        answer(bundle, case, &call("lookup_order", json!({"order_id": "anything"})))
    }

    #[test]
    fn a_changed_fixture_changes_the_transcript_key() {
        let (bundle, case) = example();
        let key = |c: &Case| super::super::cache::transcript_key(&bundle, c, 0, "live:x");
        let mut listed = case.clone();
        let list = |result: Value| Fixture::ByArgs(vec![entry(json!({"order_id": "A1042"}), result, CallStatus::Ok)]);
        listed.tool_results.insert(ToolName::parse("lookup_order").unwrap(), list(json!({"total": 1})));
        let mut changed = listed.clone();
        changed.tool_results.insert(ToolName::parse("lookup_order").unwrap(), list(json!({"total": 2})));
        let mut failed = listed.clone();
        failed.tool_results.insert(
            ToolName::parse("lookup_order").unwrap(),
            Fixture::ByArgs(vec![entry(json!({"order_id": "A1042"}), json!({"total": 1}), CallStatus::Error)]),
        );
        assert_ne!(key(&case), key(&listed));
        assert_ne!(key(&listed), key(&changed));
        assert_ne!(key(&listed), key(&failed));
        assert_eq!(key(&listed), key(&listed.clone()));
    }
}
