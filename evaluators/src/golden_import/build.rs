//! One conversation → one case line of `cases.jsonl`.
//!
//! - `id`: `imported-<conversation id>` (characters a case id cannot hold become `-`, and then,
//!   or when the id is long, 12 hex digits of the conversation id's sha256 are added, so two
//!   conversations never share a case id); with `--redact`, a conversation id that holds
//!   personal data gives `imported-<12 hex digits>` only;
//! - `input.messages`: the conversation up to its last user message, earlier assistant
//!   answers included;
//! - `tool_results`: every recorded call as a fixture in the list form, by tool and arguments
//!   (the first call with given arguments wins; entries with more arguments come first, so
//!   each recorded call gets its own result); a call that failed keeps its `status`;
//! - `checks`: `tool_called` with the recorded arguments for each call (each distinct call
//!   once), `tool_args_valid`, and a `judge` whose rubric is `--rubric` or else asks for the
//!   answer recorded in production (a conversation without a recorded answer gets the
//!   bundle's rubric);
//! - `tags: ["imported"]` and `source: {"conversation", "time"}` (the earliest time recorded).
//!
//! A call the bundle's schemas reject (`--bundle`) is drift: reported, and left out of the
//! case's fixtures and checks, which stay valid for the bundle. The line is read back with the
//! golden-set reader before it is accepted.

use super::redact::Redactor;
use super::{Call, Conversation, Json, Options, Role};
use crate::diagnostic::{Diagnostics, FileDiags};
use crate::golden::{CallStatus, GoldenContext, case as golden_case};
use crate::limits::MAX_CASE_LINE_BYTES;
use crate::parse;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// One case made from one conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedCase {
    pub id: String,
    /// The conversation's id as written in `source` (redacted with `--redact`).
    pub conversation: String,
    /// The line of `cases.jsonl`, without its newline.
    pub line: String,
}

/// The tag every imported case carries.
pub const TAG: &str = "imported";

/// The rubric of an imported conversation's judge check when `--rubric` gives none.
pub fn recorded_answer_rubric(answer: &str) -> String {
    format!(
        "Judge the answer against the answer recorded in production for this conversation, below. Pass it when it \
         agrees with the recorded answer in substance (the facts, amounts, decisions and commitments it states, the \
         actions it reports) even if worded differently; fail it when it contradicts the recorded answer, leaves out \
         something the recorded answer does, or promises more.\n\nRecorded answer:\n{answer}"
    )
}

/// The case id of a conversation.
pub fn case_id(conversation: &str, redacted: bool) -> String {
    let hash = || {
        let d = Sha256::digest(conversation.as_bytes());
        d.iter().take(6).map(|b| format!("{b:02x}")).collect::<String>()
    };
    if redacted {
        return format!("imported-{}", hash());
    }
    let slug: String = conversation
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-') { c } else { '-' })
        .collect();
    if slug == conversation && slug.len() <= 100 {
        format!("imported-{slug}")
    } else {
        let short: String = slug.chars().take(80).collect();
        format!("imported-{short}-{}", hash())
    }
}

pub(super) fn case(
    c: &Conversation,
    opts: &Options,
    redactor: Option<&mut Redactor>,
    drift: &mut Vec<String>,
) -> Result<Option<ImportedCase>, String> {
    let Some(last_user) = c.messages.iter().rposition(|m| m.role == Role::User) else { return Ok(None) };
    let input = &c.messages[..=last_user];
    let answer = c.messages[last_user + 1..].iter().rev().find(|m| m.role == Role::Assistant).map(|m| m.text.as_str());

    let (conversation, redacted) = match redactor {
        Some(r) => match r.text(&c.id) {
            Some(red) => (red, true),
            None => (c.id.clone(), false),
        },
        None => (c.id.clone(), false),
    };
    let id = case_id(&c.id, redacted);

    let mut calls: Vec<&Call> = c.calls.iter().filter(|k| k.tool.is_some()).collect();
    calls.sort_by_key(|k| k.seq);
    let mut kept: Vec<(&str, Map<String, Value>, &Call)> = Vec::new();
    for call in calls {
        let tool = call.tool.as_deref().unwrap_or_default();
        let args = call.args.as_ref().map(Json::object).unwrap_or_default();
        if let Some(tools) = &opts.tools {
            let problem = match tools.iter().find(|t| t.name.as_str() == tool) {
                None => Some("the bundle has no such tool".to_owned()),
                Some(def) => schema_error(&def.input_schema, &args),
            };
            if let Some(p) = problem {
                drift.push(format!(
                    "drift: conversation `{conversation}` call `{}`: `{tool}` {}: {p} (left out of case `{id}`'s fixtures and checks)",
                    call.id,
                    Value::Object(args),
                ));
                continue;
            }
        }
        kept.push((tool, args, call));
    }

    // Fixtures: per tool, the first result of each distinct argument set, the more specific first.
    type Entries<'a> = Vec<(&'a Map<String, Value>, &'a Call)>;
    let mut fixtures: BTreeMap<&str, Entries> = BTreeMap::new();
    for (tool, args, call) in &kept {
        let (tool, call) = (*tool, *call);
        let entries = fixtures.entry(tool).or_default();
        if !entries.iter().any(|(a, _)| *a == args) {
            entries.push((args, call));
        }
    }
    for entries in fixtures.values_mut() {
        entries.sort_by_key(|(a, _)| std::cmp::Reverse(a.len()));
    }

    let mut line = String::with_capacity(1024);
    line.push_str("{\"id\": ");
    line.push_str(&json(&Value::String(id.clone())));
    line.push_str(", \"input\": {\"messages\": [");
    for (i, m) in input.iter().enumerate() {
        if i > 0 {
            line.push_str(", ");
        }
        let role = if m.role == Role::User { "user" } else { "assistant" };
        line.push_str(&format!("{{\"role\": \"{role}\", \"content\": {}}}", json(&Value::String(m.text.clone()))));
    }
    line.push_str("]}");
    if !fixtures.is_empty() {
        line.push_str(", \"tool_results\": {");
        for (i, (tool, entries)) in fixtures.iter().enumerate() {
            if i > 0 {
                line.push_str(", ");
            }
            line.push_str(&json(&Value::String((*tool).to_owned())));
            line.push_str(": [");
            for (j, (args, call)) in entries.iter().enumerate() {
                if j > 0 {
                    line.push_str(", ");
                }
                line.push_str("{\"args\": ");
                line.push_str(&json(&Value::Object((*args).clone())));
                line.push_str(", \"result\": ");
                line.push_str(&json(&call.result.as_ref().map_or(Value::Null, Json::value)));
                if call.status != CallStatus::Ok {
                    line.push_str(&format!(", \"status\": \"{}\"", call.status.as_str()));
                }
                line.push('}');
            }
            line.push(']');
        }
        line.push('}');
    }
    line.push_str(", \"checks\": [");
    let mut checks: Vec<String> = Vec::new();
    let mut seen: Vec<(&str, &Map<String, Value>)> = Vec::new();
    for (tool, args, _) in &kept {
        let tool = *tool;
        if seen.contains(&(tool, args)) {
            continue;
        }
        seen.push((tool, args));
        let mut check = format!("{{\"type\": \"tool_called\", \"tool\": {}", json(&Value::String(tool.to_owned())));
        if !args.is_empty() {
            check.push_str(&format!(", \"args\": {}", json(&Value::Object(args.clone()))));
        }
        check.push('}');
        checks.push(check);
    }
    checks.push("{\"type\": \"tool_args_valid\"}".to_owned());
    let rubric = match (&opts.rubric, answer) {
        (Some(r), _) => Some(r.clone()),
        (None, Some(a)) => Some(recorded_answer_rubric(a)),
        (None, None) => None,
    };
    checks.push(match rubric {
        Some(r) => format!("{{\"type\": \"judge\", \"rubric\": {}}}", json(&Value::String(r))),
        None => "{\"type\": \"judge\"}".to_owned(),
    });
    line.push_str(&checks.join(", "));
    line.push_str("], \"tags\": [\"");
    line.push_str(TAG);
    line.push_str("\"], \"source\": {\"conversation\": ");
    line.push_str(&json(&Value::String(conversation.clone())));
    if let Some((_, time)) = &c.time {
        line.push_str(", \"time\": ");
        line.push_str(&json(&Value::String(time.clone())));
    }
    line.push_str("}}");

    if line.len() > MAX_CASE_LINE_BYTES {
        return Err(format!(
            "its case would be a line of {} bytes, over the limit of {MAX_CASE_LINE_BYTES} bytes of cases.jsonl",
            line.len()
        ));
    }
    check_reads_back(&line, opts)?;
    Ok(Some(ImportedCase { id, conversation, line }))
}

/// Why `args` do not validate against `schema`, or `None` when they do.
fn schema_error(schema: &Value, args: &Map<String, Value>) -> Option<String> {
    let value = Value::Object(args.clone());
    match jsonschema::validator_for(schema) {
        Ok(v) => {
            let errors: Vec<String> = v
                .iter_errors(&value)
                .map(|e| {
                    let at = e.instance_path().to_string();
                    if at.is_empty() { e.to_string() } else { format!("at `{at}`: {e}") }
                })
                .collect();
            (!errors.is_empty()).then(|| format!("rejected by the bundle's schema: {}", errors.join("; ")))
        }
        Err(e) => Some(format!("the tool's schema is invalid: {e}")),
    }
}

/// The line must be a case the golden-set reader accepts (for the bundle's tools, when given).
fn check_reads_back(line: &str, opts: &Options) -> Result<(), String> {
    let node = parse::json::parse_at(line, 1).map_err(|e| format!("its case cannot be written: {}", e.message))?;
    let mut diags = Diagnostics::new();
    let ctx = GoldenContext::new(opts.tools.as_deref(), opts.judge);
    let ok = {
        let mut d = FileDiags::new("cases.jsonl", &mut diags);
        golden_case::decode(&mut d, &node, Some(&ctx)).is_some()
    };
    if ok && diags.is_empty() {
        return Ok(());
    }
    let problems: Vec<String> = diags.into_sorted().into_iter().map(|d| d.message).collect();
    Err(format!("its case would not be valid: {}", problems.join("; ")))
}

/// JSON as `cases.jsonl` is written by hand: `{"a": 1, "b": [2, 3]}`.
pub fn json(v: &Value) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Spaced);
    serde::Serialize::serialize(v, &mut ser).expect("a JSON value serializes");
    String::from_utf8(out).expect("JSON is UTF-8")
}

struct Spaced;

impl serde_json::ser::Formatter for Spaced {
    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_ids_are_stable_and_distinct() {
        assert_eq!(case_id("c-1001", false), "imported-c-1001");
        assert_eq!(case_id("c-1001", false), case_id("c-1001", false));
        let spaced = case_id("c 1001", false);
        assert!(spaced.starts_with("imported-c-1001-") && spaced.len() == "imported-c-1001-".len() + 12, "{spaced}");
        assert_ne!(spaced, case_id("c-1001", false));
        assert!(crate::ids::CaseId::parse(&case_id(&"x".repeat(500), false)).is_ok());
        assert!(!case_id("jane@example.com", true).contains("jane"));
    }

    #[test]
    fn json_is_written_with_spaces_like_the_hand_written_lines() {
        let v: Value = serde_json::from_str(r#"{"b": [1, 2.5, "x"], "a": {"c": null}}"#).unwrap();
        assert_eq!(json(&v), r#"{"a": {"c": null}, "b": [1, 2.5, "x"]}"#);
    }
}
