//! Deterministic checks, applied to a finished transcript. They are pure: the same transcript
//! and check give the same outcome, so cached transcripts are re-checked, never re-run.

use super::runner::Transcript;
use crate::golden::Check;
use crate::tools::ToolDef;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The result of one check on one sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckOutcome {
    #[serde(rename = "type")]
    pub check_type: String,
    pub passed: bool,
    /// What was found, said so a reviewer sees why without opening the transcript.
    pub detail: String,
}

impl CheckOutcome {
    fn new(check: &Check, passed: bool, detail: impl Into<String>) -> Self {
        CheckOutcome { check_type: check.type_name().to_owned(), passed, detail: detail.into() }
    }
}

/// Evaluates a deterministic check. `tools` are the bundle's declared tools (for
/// `tool_args_valid`). Returns `None` for `judge`, which the judge grades.
pub fn evaluate(check: &Check, t: &Transcript, tools: &[ToolDef]) -> Option<CheckOutcome> {
    let answer = t.final_text.as_str();
    let o = |passed: bool, detail: String| Some(CheckOutcome::new(check, passed, detail));
    match check {
        Check::Equals { value } => {
            o(answer.trim() == value.trim(), format!("answer {} {value:?}", eq_word(answer.trim() == value.trim())))
        }
        Check::Contains { value } => {
            let ok = answer.contains(value.as_str());
            o(ok, format!("answer {} {value:?}", if ok { "contains" } else { "does not contain" }))
        }
        Check::NotContains { value } => {
            let ok = !answer.contains(value.as_str());
            o(ok, format!("answer {} {value:?}", if ok { "does not contain" } else { "contains" }))
        }
        Check::IContains { value } => {
            let ok = answer.to_lowercase().contains(&value.to_lowercase());
            o(ok, format!("answer {} {value:?} (ignoring case)", if ok { "contains" } else { "does not contain" }))
        }
        Check::Regex { pattern } => {
            let ok = pattern.regex().is_match(answer);
            o(ok, format!("answer {} /{}/", if ok { "matches" } else { "does not match" }, pattern.regex().as_str()))
        }
        Check::StartsWith { value } => {
            let ok = answer.trim_start().starts_with(value.as_str());
            o(ok, format!("answer {} with {value:?}", if ok { "starts" } else { "does not start" }))
        }
        Check::JsonValid => match serde_json::from_str::<Value>(answer.trim()) {
            Ok(_) => o(true, "answer is JSON".into()),
            Err(e) => o(false, format!("answer is not JSON: {e}")),
        },
        Check::JsonSchema { schema } => o_schema(check, answer, schema),
        Check::MaxChars { value } => {
            let n = answer.chars().count() as u64;
            o(n <= *value, format!("answer has {n} characters (max {value})"))
        }
        Check::ToolCalled { tool, args } => {
            let calls: Vec<_> = t.tool_calls().filter(|c| c.name == tool.as_str()).collect();
            let ok = match args {
                None => !calls.is_empty(),
                Some(want) => calls
                    .iter()
                    .any(|c| c.args.as_object().is_some_and(|got| crate::golden::case::args_include(got, want))),
            };
            let detail = match (ok, calls.len(), args) {
                (true, _, _) => format!("`{tool}` called"),
                (false, 0, _) => format!("`{tool}` not called"),
                (false, n, Some(want)) => format!(
                    "`{tool}` called {n} time(s), never with {}; got {}",
                    Value::Object(want.clone()),
                    calls.iter().map(|c| c.args.to_string()).collect::<Vec<_>>().join(", ")
                ),
                (false, _, None) => format!("`{tool}` not called"),
            };
            o(ok, detail)
        }
        Check::ToolNotCalled { tool } => {
            let n = t.tool_calls().filter(|c| c.name == tool.as_str()).count();
            o(n == 0, if n == 0 { format!("`{tool}` not called") } else { format!("`{tool}` called {n} time(s)") })
        }
        Check::ToolArgsValid => {
            let bad: Vec<String> = t
                .tool_calls()
                .filter_map(|c| args_error(tools, &c.name, &c.args).map(|e| format!("`{}`: {e}", c.name)))
                .collect();
            let n = t.tool_calls().count();
            if bad.is_empty() { o(true, format!("{n} tool call(s), all valid")) } else { o(false, bad.join("; ")) }
        }
        Check::MaxTurns { value } => o(t.turns <= *value, format!("{} model turn(s) (max {value})", t.turns)),
        Check::MaxTokens { value } => {
            let n = t.tokens_in + t.tokens_out;
            o(n <= *value, format!("{n} tokens in and out (max {value})"))
        }
        Check::MaxLatencyMs { value } => {
            o(t.latency_ms <= *value, format!("{} ms of model time (max {value})", t.latency_ms))
        }
        Check::MaxCostUsd { value } => match t.cost_usd {
            Some(c) => o(c <= *value, format!("${c:.6} (max ${value})")),
            None => o(false, "cost unknown: the snapshot has no price; add it under `prices:` in .evalgate.yml".into()),
        },
        Check::Judge { .. } => None,
    }
}

fn eq_word(ok: bool) -> &'static str {
    if ok { "equals" } else { "does not equal" }
}

fn o_schema(check: &Check, answer: &str, schema: &Value) -> Option<CheckOutcome> {
    let value = match serde_json::from_str::<Value>(answer.trim()) {
        Ok(v) => v,
        Err(e) => return Some(CheckOutcome::new(check, false, format!("answer is not JSON: {e}"))),
    };
    let outcome = match jsonschema::validator_for(schema) {
        Ok(v) => match v.iter_errors(&value).next() {
            None => CheckOutcome::new(check, true, "answer matches the schema"),
            Some(e) => CheckOutcome::new(check, false, format!("at `{}`: {e}", e.instance_path())),
        },
        // `evalgate check` rejects invalid schemas; this is defence in depth, and never a pass.
        Err(e) => CheckOutcome::new(check, false, format!("the check's schema is invalid: {e}")),
    };
    Some(outcome)
}

/// Why `args` do not validate against the declared schema of `tool`, or `None` when they do.
pub fn args_error(tools: &[ToolDef], tool: &str, args: &Value) -> Option<String> {
    let Some(def) = tools.iter().find(|t| t.name.as_str() == tool) else {
        return Some("no such tool in the bundle".to_owned());
    };
    match jsonschema::validator_for(&def.input_schema) {
        Ok(v) => v.iter_errors(args).next().map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() { e.to_string() } else { format!("at `{at}`: {e}") }
        }),
        Err(e) => Some(format!("the tool's schema is invalid: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::runner::{Event, ToolStatus};
    use crate::ids::ToolName;
    use crate::provider::ToolCall;
    use serde_json::json;

    fn transcript(answer: &str, calls: &[(&str, Value)]) -> Transcript {
        Transcript {
            final_text: answer.to_owned(),
            turns: 2,
            hit_max_turns: false,
            events: calls
                .iter()
                .enumerate()
                .map(|(i, (name, args))| Event::Tool {
                    turn: 1,
                    call: ToolCall { id: format!("c{i}"), name: (*name).to_owned(), args: args.clone() },
                    result: "{}".into(),
                    status: ToolStatus::Fixture,
                    at_ms: 0,
                })
                .collect(),
            tokens_in: 100,
            tokens_out: 20,
            cost_usd: Some(0.01),
            latency_ms: 900,
        }
    }

    fn tool(name: &str, schema: Value) -> ToolDef {
        ToolDef {
            name: ToolName::parse(name).expect("valid"),
            description: String::new(),
            input_schema: schema,
            line: 1,
        }
    }

    fn passed(check: &Check, t: &Transcript) -> bool {
        evaluate(check, t, &[]).expect("deterministic").passed
    }

    #[test]
    fn contains_is_case_sensitive_and_icontains_is_not() {
        let t = transcript("Your Refund is on its way", &[]);
        assert!(!passed(&Check::Contains { value: "refund".into() }, &t));
        assert!(passed(&Check::IContains { value: "refund".into() }, &t));
        assert!(passed(&Check::NotContains { value: "refund".into() }, &t));
    }

    #[test]
    fn equals_ignores_surrounding_whitespace_only() {
        let t = transcript("  OK\n", &[]);
        assert!(passed(&Check::Equals { value: "OK".into() }, &t));
        assert!(!passed(&Check::Equals { value: "ok".into() }, &t));
    }

    #[test]
    fn json_schema_fails_on_non_json_and_on_mismatch() {
        let schema = json!({"type": "object", "required": ["a"]});
        assert!(!passed(&Check::JsonSchema { schema: schema.clone() }, &transcript("nope", &[])));
        assert!(!passed(&Check::JsonSchema { schema: schema.clone() }, &transcript("{\"b\":1}", &[])));
        assert!(passed(&Check::JsonSchema { schema }, &transcript("{\"a\":1}", &[])));
    }

    #[test]
    fn max_chars_counts_characters_not_bytes() {
        let t = transcript("ééé", &[]);
        assert!(passed(&Check::MaxChars { value: 3 }, &t));
        assert!(!passed(&Check::MaxChars { value: 2 }, &t));
    }

    #[test]
    fn tool_called_matches_an_argument_subset_and_numbers_by_value() {
        let t = transcript("", &[("refund_order", json!({"order_id": "A1", "amount": 42, "reason": "damaged"}))]);
        let tool = ToolName::parse("refund_order").expect("valid");
        let want = |v: Value| Check::ToolCalled { tool: tool.clone(), args: v.as_object().cloned() };
        assert!(passed(&want(json!({"order_id": "A1", "amount": 42.0})), &t));
        assert!(!passed(&want(json!({"order_id": "A2"})), &t));
        assert!(!passed(&Check::ToolNotCalled { tool: tool.clone() }, &t));
    }

    #[test]
    fn tool_args_valid_names_the_bad_call() {
        let tools = [tool(
            "refund_order",
            json!({"type": "object", "required": ["amount"], "properties": {"amount": {"type": "number"}}}),
        )];
        let t = transcript("", &[("refund_order", json!({"amount": "42"}))]);
        let o = evaluate(&Check::ToolArgsValid, &t, &tools).expect("deterministic");
        assert!(!o.passed);
        assert!(o.detail.contains("refund_order") && o.detail.contains("/amount"), "{}", o.detail);
        let ok = transcript("", &[("refund_order", json!({"amount": 42}))]);
        assert!(evaluate(&Check::ToolArgsValid, &ok, &tools).expect("deterministic").passed);
    }

    #[test]
    fn a_call_of_an_undeclared_tool_is_invalid() {
        assert!(args_error(&[], "nope", &json!({})).is_some());
    }

    #[test]
    fn budget_checks_compare_the_whole_run() {
        let t = transcript("", &[]);
        assert!(passed(&Check::MaxTokens { value: 120 }, &t));
        assert!(!passed(&Check::MaxTokens { value: 119 }, &t));
        assert!(!passed(&Check::MaxLatencyMs { value: 899 }, &t));
        assert!(passed(&Check::MaxTurns { value: 2 }, &t));
        assert!(!passed(&Check::MaxCostUsd { value: 0.009 }, &t));
    }

    #[test]
    fn unknown_cost_never_passes_a_cost_check() {
        let mut t = transcript("", &[]);
        t.cost_usd = None;
        assert!(!passed(&Check::MaxCostUsd { value: 100.0 }, &t));
    }

    #[test]
    fn judge_is_not_deterministic() {
        assert!(evaluate(&Check::Judge { rubric: None }, &transcript("", &[]), &[]).is_none());
    }
}
