//! One line of `cases.jsonl`: a case's input, fixtures, checks, human label and tags.

use super::GoldenContext;
use super::check::{self, Check};
use crate::decode;
use crate::diagnostic::FileDiags;
use crate::ids::{CaseId, ToolName};
use crate::limits::{MAX_CHECKS_PER_CASE, MAX_MESSAGES_PER_CASE};
use crate::tree::Node;
use serde_json::Value;
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
    pub tool_results: BTreeMap<ToolName, Value>,
    pub checks: Vec<Check>,
    pub label: Option<Label>,
    pub tags: Vec<String>,
}

const CASE: &[&str] = &["id", "input", "tool_results", "checks", "label", "tags"];
const INPUT: &[&str] = &["messages"];
const MESSAGE: &[&str] = &["role", "content"];

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
    let case = Case {
        id: id?,
        line: n.pos.line,
        messages: messages?,
        tool_results: tool_results?,
        checks: checks?,
        label: label?,
        tags: tags?,
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

fn tool_results(d: &mut FileDiags, n: &Node, ctx: Option<&GoldenContext>) -> Option<BTreeMap<ToolName, Value>> {
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
        out.insert(name, v.to_json());
    }
    (d.count() == before).then_some(out)
}
