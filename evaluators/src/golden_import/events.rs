//! The event log of an agent platform (SPEC): one event a line,
//!
//! - `{"type": "message", "conversation", "role", "content", "at"}` — `role` is `user` or
//!   `assistant` (a `system` message is read and left out: the bundle's prompt stands in for
//!   it); an empty `content` adds nothing;
//! - `{"type": "tool_call", "id", "conversation", "tool", "args", "result", "startedAt",
//!   "endedAt", "status", "tokensIn", "tokensOut", "spanId"}` — `status` is `ok`, `error` or
//!   `timeout`; `args` is an object (or a JSON text of one).
//!
//! `conversation`, `role` and `content` of a message and `id`, `conversation`, `tool`, `args`
//! and `status` of a tool call are required; the other fields are checked when present (times
//! are RFC 3339, token counts whole numbers). Messages are taken in the order of the log.

use super::time::parse_rfc3339;
use super::{At, Call, Importer, Json, Key, Msg, RawLine, Role};
use crate::decode::suggestion;
use crate::golden::CallStatus;
use crate::ids::ToolName;
use serde_json::Value;

const TYPES: &[&str] = &["message", "tool_call"];

pub(super) fn read(imp: &mut Importer, at: At<'_>, raw: RawLine) {
    let kind = raw.kind.clone().unwrap_or_default();
    match kind.as_str() {
        "message" => message(imp, at, raw),
        "tool_call" => tool_call(imp, at, raw),
        other => imp.error(at.error(format!("unknown event type `{other}`; {}", suggestion(other, TYPES)))),
    }
}

fn required(imp: &mut Importer, at: At<'_>, what: &str, v: Option<String>) -> Option<String> {
    match v {
        Some(s) if !s.trim().is_empty() => Some(s),
        Some(_) => {
            imp.error(at.error(format!("`{what}` must not be empty")));
            None
        }
        None => {
            imp.error(at.error(format!("missing required field `{what}`")));
            None
        }
    }
}

/// An optional time field: `Some(nanos)` when present and valid, an error when not RFC 3339.
fn time(imp: &mut Importer, at: At<'_>, what: &str, v: &Option<String>) -> Result<Option<i128>, ()> {
    let Some(s) = v else { return Ok(None) };
    match parse_rfc3339(s) {
        Some(t) => Ok(Some(t)),
        None => {
            imp.error(at.error(format!("`{what}` is not an RFC 3339 time: {s:?}")));
            Err(())
        }
    }
}

fn message(imp: &mut Importer, at: At<'_>, raw: RawLine) {
    let conversation = required(imp, at, "conversation", raw.conversation);
    let role = match raw.role.as_deref() {
        Some("user") => Some(Some(Role::User)),
        Some("assistant") => Some(Some(Role::Assistant)),
        Some("system") => Some(None),
        Some(other) => {
            imp.error(at.error(format!("`role` must be \"user\", \"assistant\" or \"system\", found {other:?}")));
            None
        }
        None => {
            imp.error(at.error("missing required field `role`"));
            None
        }
    };
    let content = match raw.content {
        Some(c) => Some(c),
        None => {
            imp.error(at.error("missing required field `content`"));
            None
        }
    };
    let Ok(when) = time(imp, at, "at", &raw.at) else { return };
    let (Some(conversation), Some(role), Some(content)) = (conversation, role, content) else { return };
    let key = Key::Id(conversation);
    let Some(c) = imp.conversation(at, key.clone()) else { return };
    if let (Some(t), Some(text)) = (when, &raw.at) {
        c.note_time(t, || text.clone());
    }
    let Some(role) = role else { return };
    if content.trim().is_empty() {
        return;
    }
    let Some(text) = imp.text(at, "`content`", content) else { return };
    let bytes = text.len();
    if let Some(c) = imp.convs.get_mut(&key) {
        c.messages.push(Msg { role, text });
    }
    imp.retain(at, &key, bytes);
}

fn tool_call(imp: &mut Importer, at: At<'_>, raw: RawLine) {
    let id = required(imp, at, "id", raw.id);
    let conversation = required(imp, at, "conversation", raw.conversation);
    let tool = required(imp, at, "tool", raw.tool).and_then(|t| match ToolName::parse(&t) {
        Ok(_) => Some(t),
        Err(e) => {
            imp.error(at.error(format!("`tool`: {e}")));
            None
        }
    });
    let args = match raw.args {
        Some(Value::Object(m)) => Some(m),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Object(m)) => Some(m),
            _ => {
                imp.error(at.error("`args` must be an object of argument names to values (or the JSON text of one)"));
                None
            }
        },
        Some(other) => {
            imp.error(
                at.error(format!("`args` must be an object of argument names to values, found {}", kind(&other))),
            );
            None
        }
        None => {
            imp.error(at.error("missing required field `args`"));
            None
        }
    };
    let status = match raw.status.as_deref() {
        Some(s) => match CallStatus::parse(s) {
            Some(st) => Some(st),
            None => {
                imp.error(at.error(format!("`status` must be \"ok\", \"error\" or \"timeout\", found {s:?}")));
                None
            }
        },
        None => {
            imp.error(at.error("missing required field `status`"));
            None
        }
    };
    let Ok(started) = time(imp, at, "startedAt", &raw.started_at) else { return };
    let Ok(_) = time(imp, at, "endedAt", &raw.ended_at) else { return };
    let (Some(id), Some(conversation), Some(tool), Some(args), Some(status)) = (id, conversation, tool, args, status)
    else {
        return;
    };
    let key = Key::Id(conversation);
    if imp.conversation(at, key.clone()).is_none() {
        return;
    }
    let Some(Value::Object(args)) = imp.value(at, "`args`", Value::Object(args)) else { return };
    let result = match raw.result {
        Some(r) => match imp.value(at, "`result`", r) {
            Some(r) => Some(r),
            None => return,
        },
        None => None,
    };
    let seq = imp.next_seq();
    let call = Call {
        id: id.clone(),
        tool: Some(tool),
        args: Some(Json::of(&Value::Object(args))),
        result: result.as_ref().map(Json::of),
        status,
        seq,
    };
    let Some(c) = imp.convs.get_mut(&key) else { return };
    if let (Some(t), Some(text)) = (started, &raw.started_at) {
        c.note_time(t, || text.clone());
    }
    if let Some(&i) = c.call_ids.get(&id) {
        let first = &c.calls[i];
        let same = first.tool == call.tool
            && first.args == call.args
            && first.result == call.result
            && first.status == call.status;
        if !same {
            imp.error(at.error(format!("tool call id `{id}` was recorded before with other content")));
        }
        return;
    }
    let bytes = c.merge_call(call);
    imp.retain(at, &key, bytes);
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
