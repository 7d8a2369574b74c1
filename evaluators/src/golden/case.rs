//! One line of `cases.jsonl`: a case's input, fixtures, checks, human label, tags and source.
//!
//! `tool_results` maps a tool name to its fixture (SPEC): one JSON value, the same for every
//! call, or a list of `{"args": {...}, "result": …}` answered by the first entry whose `args` are
//! a subset of the call's. A list is read as that list form when its first entry is a mapping
//! with an `args` or a `result` key; any other value (a list of orders, say) is one value. An
//! entry may say `"status": "error"` or `"timeout"` (a recorded call that failed): its result
//! then reaches the model as an error result.

use super::GoldenContext;
use super::check::{self, Check};
use crate::decode;
use crate::diagnostic::FileDiags;
use crate::ids::{CaseId, ToolName};
use crate::limits::{MAX_CHECKS_PER_CASE, MAX_FIXTURE_ENTRIES, MAX_MESSAGES_PER_CASE};
use crate::tree::{Kind, Node};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// A human's verdict on the case, to measure the judge against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Pass,
    Fail,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub id: CaseId,
    /// The line of `cases.jsonl` it came from.
    pub line: u32,
    /// The conversation so far; the last message is the user's.
    pub messages: Vec<Message>,
    /// What each tool returns when the agent calls it.
    pub tool_results: BTreeMap<ToolName, Fixture>,
    pub checks: Vec<Check>,
    pub label: Option<Label>,
    pub tags: Vec<String>,
    /// Where the case came from (an imported conversation, say); not part of what is evaluated.
    pub source: Option<Map<String, Value>>,
}

/// What one tool returns in a case.
#[derive(Debug, Clone, PartialEq)]
pub enum Fixture {
    /// One JSON value, the same for every call.
    Value(Value),
    /// Answered by the first entry whose `args` are a subset of the call's; a call that matches
    /// none gets an error result.
    ByArgs(Vec<FixtureEntry>),
}

/// One entry of the list form: what the tool returned for calls with these arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct FixtureEntry {
    pub args: Map<String, Value>,
    pub result: Value,
    pub status: CallStatus,
}

/// How a recorded tool call ended. A failed one is replayed as an error result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallStatus {
    #[default]
    Ok,
    Error,
    Timeout,
}

impl CallStatus {
    pub fn parse(s: &str) -> Option<CallStatus> {
        match s {
            "ok" => Some(CallStatus::Ok),
            "error" => Some(CallStatus::Error),
            "timeout" => Some(CallStatus::Timeout),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Ok => "ok",
            CallStatus::Error => "error",
            CallStatus::Timeout => "timeout",
        }
    }
}

impl Fixture {
    /// The fixture as `cases.jsonl` writes it; reading that back gives the same fixture, so it
    /// is the fixture's identity (in the cache key and in the instrument's changes).
    pub fn to_json(&self) -> Value {
        match self {
            Fixture::Value(v) => v.clone(),
            Fixture::ByArgs(entries) => Value::Array(entries.iter().map(FixtureEntry::to_json).collect()),
        }
    }

    /// What a call with `args` is answered: the value, or the first entry whose `args` are a
    /// subset of the call's; `None` when no entry matches.
    pub fn answer(&self, args: &Value) -> Option<(&Value, CallStatus)> {
        match self {
            Fixture::Value(v) => Some((v, CallStatus::Ok)),
            Fixture::ByArgs(entries) => {
                let got = args.as_object()?;
                entries.iter().find(|e| args_include(got, &e.args)).map(|e| (&e.result, e.status))
            }
        }
    }

    /// How many answers the fixture holds (1 for a single value).
    pub fn answers(&self) -> usize {
        match self {
            Fixture::Value(_) => 1,
            Fixture::ByArgs(entries) => entries.len(),
        }
    }
}

impl FixtureEntry {
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("args".into(), Value::Object(self.args.clone()));
        m.insert("result".into(), self.result.clone());
        if self.status != CallStatus::Ok {
            m.insert("status".into(), Value::from(self.status.as_str()));
        }
        Value::Object(m)
    }
}

/// `got` includes `want`: every key of `want` is in `got` with an including value. Objects
/// compare as subsets, numbers by value (`42` matches `42.0`), everything else exactly — as
/// `tool_called` compares its `args`.
pub fn args_include(got: &Map<String, Value>, want: &Map<String, Value>) -> bool {
    want.iter().all(|(k, w)| got.get(k).is_some_and(|g| includes(g, w)))
}

fn includes(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => args_include(g, w),
        (Value::Number(g), Value::Number(w)) => g.as_f64() == w.as_f64(),
        (Value::Array(g), Value::Array(w)) => g.len() == w.len() && g.iter().zip(w).all(|(a, b)| includes(a, b)),
        _ => got == want,
    }
}

const CASE: &[&str] = &["id", "input", "tool_results", "checks", "label", "tags", "source"];
const INPUT: &[&str] = &["messages"];
const MESSAGE: &[&str] = &["role", "content"];
const ENTRY: &[&str] = &["args", "result", "status"];

pub fn decode(d: &mut FileDiags, n: &Node, ctx: Option<&GoldenContext>) -> Option<Case> {
    let before = d.count();
    let f = decode::mapping(d, n, "", CASE)?;
    let id = f.require(d, "id", "").and_then(|v| {
        let s = decode::string(d, v, "id")?;
        CaseId::parse(&s).map_err(|e| d.at(v.pos, e)).ok()
    });
    let messages = f.require(d, "input", "").and_then(|v| messages(d, v));
    let tool_results = match f.get("tool_results") {
        None => Some(BTreeMap::new()),
        Some(v) => tool_results(d, v, ctx),
    };
    let checks = f.require(d, "checks", "").and_then(|v| {
        let items = decode::list(d, v, "checks")?;
        if items.is_empty() {
            d.at(v.pos, "`checks` must list at least one check");
            return None;
        }
        if items.len() > MAX_CHECKS_PER_CASE {
            d.at(v.pos, format!("{} checks, over the limit of {MAX_CHECKS_PER_CASE}", items.len()));
            return None;
        }
        let out: Vec<Check> =
            items.iter().enumerate().filter_map(|(i, c)| check::decode(d, c, &format!("checks[{i}]"), ctx)).collect();
        (out.len() == items.len()).then_some(out)
    });
    let label = match f.get("label") {
        None => Some(None),
        Some(v) => match v.as_str() {
            Some("pass") => Some(Some(Label::Pass)),
            Some("fail") => Some(Some(Label::Fail)),
            _ => {
                d.at(v.pos, "`label` must be \"pass\" or \"fail\"");
                None
            }
        },
    };
    let tags = f.get("tags").map_or(Some(Vec::new()), |v| decode::string_list(d, v, "tags"));
    let source = match f.get("source") {
        None => Some(None),
        Some(v) => match v.to_json() {
            Value::Object(m) => Some(Some(m)),
            _ => {
                d.at(v.pos, format!("`source` must be a mapping, found {}", v.kind_name()));
                None
            }
        },
    };
    let case = Case {
        id: id?,
        line: n.pos.line,
        messages: messages?,
        tool_results: tool_results?,
        checks: checks?,
        label: label?,
        tags: tags?,
        source: source?,
    };
    (d.count() == before).then_some(case)
}

fn messages(d: &mut FileDiags, n: &Node) -> Option<Vec<Message>> {
    let f = decode::mapping(d, n, "input", INPUT)?;
    let list_node = f.require(d, "messages", "input")?;
    let items = decode::list(d, list_node, "input.messages")?;
    if items.is_empty() {
        d.at(list_node.pos, "`input.messages` must hold at least one message");
        return None;
    }
    if items.len() > MAX_MESSAGES_PER_CASE {
        d.at(list_node.pos, format!("{} messages, over the limit of {MAX_MESSAGES_PER_CASE}", items.len()));
        return None;
    }
    let before = d.count();
    let mut out = Vec::with_capacity(items.len());
    for (i, m) in items.iter().enumerate() {
        let what = format!("input.messages[{i}]");
        let Some(mf) = decode::mapping(d, m, &what, MESSAGE) else { continue };
        let role = mf.require(d, "role", &what).and_then(|r| match r.as_str() {
            Some("user") => Some(Role::User),
            Some("assistant") => Some(Role::Assistant),
            _ => {
                d.at(r.pos, format!("`{what}.role` must be \"user\" or \"assistant\""));
                None
            }
        });
        let content =
            mf.require(d, "content", &what).and_then(|c| decode::nonempty_string(d, c, &format!("{what}.content")));
        if let (Some(role), Some(content)) = (role, content) {
            out.push(Message { role, content });
        }
    }
    if d.count() != before {
        return None;
    }
    if out.last().is_some_and(|m| m.role != Role::User) {
        d.at(items[items.len() - 1].pos, "the last of `input.messages` must be the user's (the agent answers it)");
        return None;
    }
    Some(out)
}

fn tool_results(d: &mut FileDiags, n: &Node, ctx: Option<&GoldenContext>) -> Option<BTreeMap<ToolName, Fixture>> {
    let entries = decode::free_mapping(d, n, "tool_results")?;
    let before = d.count();
    let mut out = BTreeMap::new();
    for (k, v) in entries {
        let Ok(name) = ToolName::parse(&k.name).map_err(|e| d.at(k.pos, e)) else { continue };
        if let Some(ctx) = ctx {
            if ctx.require_tool(d, k.pos, &name).is_none() {
                continue;
            }
        }
        if let Some(fixture) = fixture(d, v, &name, ctx) {
            out.insert(name, fixture);
        }
    }
    (d.count() == before).then_some(out)
}

/// Whether a fixture value is the list form: a list whose first entry is a mapping with an
/// `args` or a `result` key.
fn is_list_form(n: &Node) -> bool {
    match &n.kind {
        Kind::Seq(items) => {
            items.first().is_some_and(|first| first.get("args").is_some() || first.get("result").is_some())
        }
        _ => false,
    }
}

fn fixture(d: &mut FileDiags, n: &Node, tool: &ToolName, ctx: Option<&GoldenContext>) -> Option<Fixture> {
    if !is_list_form(n) {
        return Some(Fixture::Value(n.to_json()));
    }
    let what = format!("tool_results.{tool}");
    let items = decode::list(d, n, &what)?;
    if items.len() > MAX_FIXTURE_ENTRIES {
        d.at(n.pos, format!("{} entries in `{what}`, over the limit of {MAX_FIXTURE_ENTRIES}", items.len()));
        return None;
    }
    let before = d.count();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let what = format!("{what}[{i}]");
        let Some(f) = decode::mapping(d, item, &what, ENTRY) else { continue };
        let args = f.require(d, "args", &what).and_then(|a| match a.to_json() {
            Value::Object(map) => {
                if let Some(ctx) = ctx {
                    // A problem is reported; the count below then drops the fixture.
                    let _ = ctx.check_partial_args(d, a.pos, tool, &map);
                }
                Some(map)
            }
            _ => {
                d.at(
                    a.pos,
                    format!("`{what}.args` must be a mapping of argument names to values, found {}", a.kind_name()),
                );
                None
            }
        });
        let result = f.require(d, "result", &what).map(Node::to_json);
        let status = match f.get("status") {
            None => Some(CallStatus::Ok),
            Some(s) => match s.as_str().and_then(CallStatus::parse) {
                Some(status) => Some(status),
                None => {
                    d.at(s.pos, format!("`{what}.status` must be \"ok\", \"error\" or \"timeout\""));
                    None
                }
            },
        };
        if let (Some(args), Some(result), Some(status)) = (args, result, status) {
            out.push(FixtureEntry { args, result, status });
        }
    }
    (d.count() == before).then_some(Fixture::ByArgs(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Diagnostics;
    use serde_json::json;

    fn decode_line(line: &str) -> (Option<Case>, Vec<String>) {
        let node = crate::parse::json::parse(line).expect("JSON");
        let mut diags = Diagnostics::new();
        let case = decode(&mut FileDiags::new("cases.jsonl", &mut diags), &node, None);
        (case, diags.into_sorted().into_iter().map(|d| d.to_string()).collect())
    }

    const HEAD: &str = r#"{"id": "a", "input": {"messages": [{"role": "user", "content": "hi"}]}, "checks": [{"type": "json_valid"}], "tool_results": "#;

    #[test]
    fn a_value_is_one_fixture_and_a_list_of_args_and_results_is_the_list_form() {
        let (case, errors) = decode_line(&format!(
            r#"{HEAD}{{"orders": [{{"id": 1}}, {{"id": 2}}], "lookup": [{{"args": {{"id": "A1"}}, "result": {{"total": 5}}}}, {{"args": {{}}, "result": "down", "status": "timeout"}}]}}}}"#
        ));
        assert!(errors.is_empty(), "{errors:?}");
        let f = &case.expect("a case").tool_results;
        let name = |n: &str| ToolName::parse(n).unwrap();
        assert_eq!(f[&name("orders")], Fixture::Value(json!([{"id": 1}, {"id": 2}])));
        let lookup = &f[&name("lookup")];
        assert_eq!(lookup.answer(&json!({"id": "A1", "verbose": true})), Some((&json!({"total": 5}), CallStatus::Ok)));
        assert_eq!(lookup.answer(&json!({"id": "B2"})), Some((&json!("down"), CallStatus::Timeout)));
        assert_eq!(lookup.answers(), 2);
        assert_eq!(
            lookup.to_json(),
            json!([{"args": {"id": "A1"}, "result": {"total": 5}}, {"args": {}, "result": "down", "status": "timeout"}])
        );
    }

    #[test]
    fn a_call_no_entry_matches_has_no_answer() {
        let f = Fixture::ByArgs(vec![FixtureEntry {
            args: json!({"id": "A1", "n": 2}).as_object().unwrap().clone(),
            result: json!(1),
            status: CallStatus::Ok,
        }]);
        assert_eq!(f.answer(&json!({"id": "A1"})), None, "a subset of the entry's args is not enough");
        assert_eq!(f.answer(&json!({"id": "A1", "n": 2.0})), Some((&json!(1), CallStatus::Ok)), "numbers by value");
        assert_eq!(f.answer(&json!("not an object")), None);
    }

    #[test]
    fn entries_of_the_list_form_are_checked_with_their_positions() {
        let (case, errors) = decode_line(&format!(
            r#"{HEAD}{{"lookup": [{{"args": 5, "result": 1}}, {{"result": 1, "status": "late", "extra": 0}}]}}}}"#
        ));
        assert!(case.is_none());
        assert_eq!(
            errors,
            [
                "cases.jsonl:1:146: error: `tool_results.lookup[0].args` must be a mapping of argument names to values, found a whole number",
                "cases.jsonl:1:163: error: missing required key `tool_results.lookup[1].args`",
                "cases.jsonl:1:187: error: `tool_results.lookup[1].status` must be \"ok\", \"error\" or \"timeout\"",
                "cases.jsonl:1:195: error: unknown key `tool_results.lookup[1].extra`; expected one of: `args`, `result`, `status`",
            ]
        );
    }
}
