//! OpenTelemetry GenAI spans as OTLP/JSON: one `ExportTraceServiceRequest` a line
//! (`{"resourceSpans": [{"scopeSpans": [{"spans": [...]}]}]}`), as the OTLP file exporters
//! write them. OTLP/JSON writes `traceId` and `spanId` in hex (not the base64 of protobuf's
//! generic JSON mapping), 64-bit integers as strings or numbers, enums as integers.
//!
//! What is read follows the GenAI semantic conventions, in both of their forms:
//!
//! - the attribute form (semantic-conventions v1.37.0 and later): a model call's span carries
//!   the chat history it sent in `gen_ai.input.messages` and its reply in
//!   `gen_ai.output.messages` (JSON text, or structured values), each message
//!   `{"role", "parts": [...]}` with `text`, `tool_call {id, name, arguments}` and
//!   `tool_call_response {id, response}` parts; an `execute_tool` span
//!   (`gen_ai.operation.name`) names one call with `gen_ai.tool.name`, `gen_ai.tool.call.id`,
//!   `gen_ai.tool.call.arguments` and `gen_ai.tool.call.result`, and its span status (or
//!   `error.type`) says whether it failed;
//! - the event form (v1.36.0 and earlier): span events `gen_ai.user.message`,
//!   `gen_ai.assistant.message` (`content`, `tool_calls`), `gen_ai.tool.message` (`content`,
//!   `id`) and `gen_ai.choice` (`message`, `index`), the body's fields as the event's
//!   attributes or as JSON text in `gen_ai.event.content`.
//!
//! A span is in the conversation of its `gen_ai.conversation.id`; without one, in the
//! conversation another span of its trace named, or else the one of its trace id. A
//! conversation's messages are the history of its latest model call (by start time) followed by
//! that call's reply; its tool calls are every call any of its spans names, merged by call id.
//! Spans that are not GenAI spans (HTTP, database …) are skipped.

use super::time::format_nanos;
use super::{At, Call, Importer, Json, Key, Msg, Role};
use crate::golden::CallStatus;
use crate::ids::ToolName;
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize)]
pub(crate) struct ResourceSpans {
    #[serde(rename = "scopeSpans", default)]
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Deserialize)]
struct ScopeSpans {
    #[serde(default)]
    spans: Vec<Span>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Span {
    trace_id: String,
    span_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    start_time_unix_nano: U64,
    #[serde(default)]
    end_time_unix_nano: U64,
    #[serde(default)]
    attributes: Vec<KeyValue>,
    #[serde(default)]
    events: Vec<SpanEvent>,
    #[serde(default)]
    status: Option<Status>,
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    #[serde(default)]
    value: AnyValue,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AnyValue {
    string_value: Option<String>,
    bool_value: Option<bool>,
    int_value: Option<I64>,
    double_value: Option<F64>,
    array_value: Option<ArrayValue>,
    kvlist_value: Option<KvList>,
    bytes_value: Option<String>,
}

#[derive(Deserialize)]
struct ArrayValue {
    #[serde(default)]
    values: Vec<AnyValue>,
}

#[derive(Deserialize)]
struct KvList {
    #[serde(default)]
    values: Vec<KeyValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpanEvent {
    #[serde(default)]
    name: String,
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    code: Option<Code>,
    #[serde(default)]
    message: Option<String>,
}

/// A 64-bit unsigned integer: OTLP/JSON writes it as a string, but a number is accepted.
#[derive(Deserialize, Default, Clone, Copy)]
#[serde(from = "NumOrText")]
struct U64(Option<u64>);

#[derive(Deserialize, Clone, Copy)]
#[serde(from = "NumOrText")]
struct I64(Option<i64>);

#[derive(Deserialize, Clone, Copy)]
#[serde(from = "NumOrText")]
struct F64(Option<f64>);

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrText {
    U(u64),
    I(i64),
    F(f64),
    S(String),
}

impl From<NumOrText> for U64 {
    fn from(v: NumOrText) -> Self {
        U64(match v {
            NumOrText::U(u) => Some(u),
            NumOrText::S(s) => s.parse().ok(),
            _ => None,
        })
    }
}

impl From<NumOrText> for I64 {
    fn from(v: NumOrText) -> Self {
        I64(match v {
            NumOrText::U(u) => i64::try_from(u).ok(),
            NumOrText::I(i) => Some(i),
            NumOrText::S(s) => s.parse().ok(),
            NumOrText::F(_) => None,
        })
    }
}

impl From<NumOrText> for F64 {
    fn from(v: NumOrText) -> Self {
        F64(match v {
            NumOrText::U(u) => Some(u as f64),
            NumOrText::I(i) => Some(i as f64),
            NumOrText::F(f) => Some(f),
            NumOrText::S(s) => s.parse().ok(),
        })
    }
}

/// A status code: `2` (or `"STATUS_CODE_ERROR"`) is an error.
#[derive(Deserialize)]
#[serde(untagged)]
enum Code {
    N(i64),
    S(String),
}

impl Code {
    fn is_error(&self) -> bool {
        match self {
            Code::N(n) => *n == 2,
            Code::S(s) => s == "STATUS_CODE_ERROR" || s == "ERROR",
        }
    }
}

impl AnyValue {
    fn as_str(&self) -> Option<&str> {
        self.string_value.as_deref()
    }

    fn to_json(&self) -> Value {
        if let Some(s) = &self.string_value {
            Value::String(s.clone())
        } else if let Some(b) = self.bool_value {
            Value::Bool(b)
        } else if let Some(I64(i)) = self.int_value {
            i.map_or(Value::Null, Value::from)
        } else if let Some(F64(f)) = self.double_value {
            f.and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number)
        } else if let Some(a) = &self.array_value {
            Value::Array(a.values.iter().map(AnyValue::to_json).collect())
        } else if let Some(kv) = &self.kvlist_value {
            Value::Object(kv.values.iter().map(|e| (e.key.clone(), e.value.to_json())).collect())
        } else if let Some(b) = &self.bytes_value {
            Value::String(b.clone())
        } else {
            Value::Null
        }
    }

    /// A structured value, or the JSON text of one (as instrumentations that can only record
    /// strings write it).
    fn to_structured(&self) -> Result<Value, String> {
        match &self.string_value {
            Some(s) => serde_json::from_str(s).map_err(|e| format!("is not JSON: {e}")),
            None => Ok(self.to_json()),
        }
    }
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
}

const MESSAGE_EVENTS: &[&str] = &[
    "gen_ai.system.message",
    "gen_ai.user.message",
    "gen_ai.assistant.message",
    "gen_ai.tool.message",
    "gen_ai.choice",
];

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(super) fn read(imp: &mut Importer, at: At<'_>, resource_spans: Vec<ResourceSpans>) {
    let spans: Vec<Span> =
        resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans).collect::<Vec<_>>();
    let mut ok = Vec::with_capacity(spans.len());
    for (i, mut s) in spans.into_iter().enumerate() {
        let what = format!("span {} (`{}`)", i + 1, s.name);
        if !is_hex(&s.trace_id, 32) || !is_hex(&s.span_id, 16) {
            imp.error(at.error(format!(
                "{what}: `traceId` and `spanId` must be 32 and 16 hex digits, as OTLP/JSON writes them (not the base64 of protobuf's generic JSON mapping)"
            )));
            continue;
        }
        s.trace_id.make_ascii_lowercase();
        s.span_id.make_ascii_lowercase();
        ok.push((what, s));
    }
    // A span that names its conversation names it for every span of its trace.
    for (_, s) in &ok {
        if let Some(conv) = attr(&s.attributes, "gen_ai.conversation.id").and_then(AnyValue::as_str) {
            if !conv.is_empty() {
                imp.learn_trace(&s.trace_id, conv);
            }
        }
    }
    for (what, s) in ok {
        span(imp, at, &what, s);
    }
}

fn span(imp: &mut Importer, at: At<'_>, what: &str, s: Span) {
    let op = attr(&s.attributes, "gen_ai.operation.name").and_then(AnyValue::as_str);
    let is_tool = op == Some("execute_tool");
    let input = attr(&s.attributes, "gen_ai.input.messages");
    let output = attr(&s.attributes, "gen_ai.output.messages");
    let has_events = s.events.iter().any(|e| MESSAGE_EVENTS.contains(&e.name.as_str()));
    if !is_tool && input.is_none() && output.is_none() && !has_events {
        return;
    }
    let key = match attr(&s.attributes, "gen_ai.conversation.id").and_then(AnyValue::as_str) {
        Some(c) if !c.is_empty() => Key::Id(c.to_owned()),
        _ => match imp.trace_conversation(&s.trace_id) {
            Some(c) => Key::Id(c.clone()),
            None => Key::Trace(s.trace_id.clone()),
        },
    };
    let start = s.start_time_unix_nano.0.unwrap_or(0);
    let end = s.end_time_unix_nano.0.unwrap_or(start);
    let Some(c) = imp.conversation(at, key.clone()) else { return };
    if start > 0 {
        c.note_time(i128::from(start), || format_nanos(i128::from(start)));
    }
    if is_tool {
        if let Some(call) = tool_span(imp, at, what, &s, start) {
            merge_calls(imp, at, &key, vec![call]);
        }
    }
    if input.is_some() || output.is_some() || has_events {
        let history = if input.is_some() || output.is_some() {
            attribute_history(input, output)
        } else {
            event_history(&s.events)
        };
        let history = match history {
            Ok(h) => h,
            Err(e) => {
                imp.error(at.error(format!("{what}: {e}")));
                return;
            }
        };
        model_call(imp, at, &key, &s.span_id, (start, end), history);
    }
}

fn tool_span(imp: &mut Importer, at: At<'_>, what: &str, s: &Span, start: u64) -> Option<Call> {
    let name = attr(&s.attributes, "gen_ai.tool.name")
        .and_then(AnyValue::as_str)
        .map(str::to_owned)
        .or_else(|| s.name.strip_prefix("execute_tool ").map(str::to_owned));
    let Some(name) = name else {
        imp.error(at.error(format!("{what}: an `execute_tool` span without `gen_ai.tool.name`")));
        return None;
    };
    if let Err(e) = ToolName::parse(&name) {
        imp.error(at.error(format!("{what}: `gen_ai.tool.name`: {e}")));
        return None;
    }
    let id = attr(&s.attributes, "gen_ai.tool.call.id")
        .and_then(AnyValue::as_str)
        .map_or_else(|| format!("span:{}", s.span_id), str::to_owned);
    let args = match attr(&s.attributes, "gen_ai.tool.call.arguments") {
        None => None,
        Some(v) => match v.to_structured() {
            Ok(Value::Object(m)) => Some(m),
            Ok(Value::Null) => None,
            Ok(_) => {
                imp.error(at.error(format!("{what}: `gen_ai.tool.call.arguments` is not an object")));
                return None;
            }
            Err(e) => {
                imp.error(at.error(format!("{what}: `gen_ai.tool.call.arguments` {e}")));
                return None;
            }
        },
    };
    // A result is JSON when it reads as JSON, and text otherwise.
    let mut result = attr(&s.attributes, "gen_ai.tool.call.result").map(|v| match v.as_str() {
        Some(text) => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())),
        None => v.to_json(),
    });
    let error_type = attr(&s.attributes, "error.type").and_then(AnyValue::as_str);
    let failed = s.status.as_ref().and_then(|st| st.code.as_ref()).is_some_and(Code::is_error) || error_type.is_some();
    let status = match (failed, error_type) {
        (false, _) => CallStatus::Ok,
        (true, Some(t)) if t.to_ascii_lowercase().contains("timeout") => CallStatus::Timeout,
        (true, _) => CallStatus::Error,
    };
    if failed && result.is_none() {
        let message = s.status.as_ref().and_then(|st| st.message.clone()).filter(|m| !m.is_empty());
        result = message.or_else(|| error_type.map(str::to_owned)).map(Value::String);
    }
    // Within the limit and redacted, as every recorded value is.
    let args = match args {
        Some(a) => Some(Json::of(&imp.value(at, "`gen_ai.tool.call.arguments`", Value::Object(a))?)),
        None => None,
    };
    let result = match result {
        Some(r) => Some(Json::of(&imp.value(at, "`gen_ai.tool.call.result`", r)?)),
        None => None,
    };
    Some(Call { id, tool: Some(name), args, result, status, seq: start })
}

/// A tool call a message asks for: its id (when recorded), tool name and arguments.
type HCall = (Option<String>, String, Option<Value>);

/// One message of a model call's history, as the conventions write it.
#[derive(Default)]
struct HMsg {
    role: String,
    text: String,
    calls: Vec<HCall>,
    responses: Vec<(Option<String>, Value)>,
}

fn attribute_history(input: Option<&AnyValue>, output: Option<&AnyValue>) -> Result<Vec<HMsg>, String> {
    let mut out = Vec::new();
    if let Some(v) = input {
        let list = v.to_structured().map_err(|e| format!("`gen_ai.input.messages` {e}"))?;
        let items = list.as_array().ok_or("`gen_ai.input.messages` is not a list of messages")?;
        for m in items {
            out.push(parts_message(m).map_err(|e| format!("`gen_ai.input.messages`: {e}"))?);
        }
    }
    if let Some(v) = output {
        let list = v.to_structured().map_err(|e| format!("`gen_ai.output.messages` {e}"))?;
        let items = list.as_array().ok_or("`gen_ai.output.messages` is not a list of messages")?;
        // One message per choice: the first is the reply.
        if let Some(m) = items.first() {
            out.push(parts_message(m).map_err(|e| format!("`gen_ai.output.messages`: {e}"))?);
        }
    }
    Ok(out)
}

fn parts_message(m: &Value) -> Result<HMsg, String> {
    let role = m.get("role").and_then(Value::as_str).ok_or("a message without a `role`")?.to_owned();
    let parts = m.get("parts").and_then(Value::as_array).ok_or("a message without `parts`")?;
    let mut h = HMsg { role, ..HMsg::default() };
    let mut texts = Vec::new();
    for p in parts {
        let id = p.get("id").and_then(Value::as_str).map(|s| s.trim().to_owned());
        match p.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(t) = p.get("content").and_then(Value::as_str) {
                    texts.push(t.to_owned());
                }
            }
            Some("tool_call") => {
                let name = p.get("name").and_then(Value::as_str).ok_or("a `tool_call` part without a `name`")?;
                h.calls.push((id, name.to_owned(), p.get("arguments").cloned()));
            }
            Some("tool_call_response") => {
                let r = p.get("response").or_else(|| p.get("result")).cloned().unwrap_or(Value::Null);
                h.responses.push((id, r));
            }
            _ => {}
        }
    }
    h.text = texts.join("\n");
    Ok(h)
}

/// The body of a message event: its attributes, or the JSON text of `gen_ai.event.content`.
fn event_body(e: &SpanEvent) -> Result<Map<String, Value>, String> {
    if let Some(v) = attr(&e.attributes, "gen_ai.event.content") {
        return match v.to_structured() {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(format!("`{}`: `gen_ai.event.content` is not an object", e.name)),
            Err(err) => Err(format!("`{}`: `gen_ai.event.content` {err}", e.name)),
        };
    }
    Ok(e.attributes.iter().map(|kv| (kv.key.clone(), kv.value.to_json())).collect())
}

/// The text of a `content` field: a string, or the text parts of a list.
fn content_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.as_str().or_else(|| p.get("text").or_else(|| p.get("content")).and_then(Value::as_str)))
            .collect::<Vec<_>>()
            .join("\n"),
        Some(other) => other.to_string(),
    }
}

/// `tool_calls` of an assistant message or a choice: `[{id, type, function: {name, arguments}}]`,
/// as a list or its JSON text.
fn event_tool_calls(v: Option<&Value>) -> Result<Vec<HCall>, String> {
    let list = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => {
            serde_json::from_str::<Value>(s).map_err(|e| format!("`tool_calls` is not JSON: {e}"))?
        }
        Some(other) => other.clone(),
    };
    let items = list.as_array().ok_or("`tool_calls` is not a list")?;
    let mut out = Vec::new();
    for c in items {
        let f = c.get("function").unwrap_or(c);
        let name = f.get("name").and_then(Value::as_str).ok_or("a tool call without a `function.name`")?;
        let id = c.get("id").and_then(Value::as_str).map(str::to_owned);
        out.push((id, name.to_owned(), f.get("arguments").cloned()));
    }
    Ok(out)
}

fn event_history(events: &[SpanEvent]) -> Result<Vec<HMsg>, String> {
    let mut out = Vec::new();
    for e in events {
        let role = match e.name.as_str() {
            "gen_ai.user.message" => "user",
            "gen_ai.assistant.message" => "assistant",
            "gen_ai.tool.message" => "tool",
            "gen_ai.choice" => "choice",
            _ => continue, // the system message (the bundle's prompt stands in for it), others
        };
        let body = event_body(e)?;
        match role {
            "choice" => {
                if body.get("index").and_then(Value::as_i64).is_some_and(|i| i != 0) {
                    continue;
                }
                let message = match body.get("message") {
                    Some(Value::String(s)) => serde_json::from_str::<Value>(s)
                        .map_err(|err| format!("`gen_ai.choice`: `message` is not JSON: {err}"))?,
                    Some(m) => m.clone(),
                    None => Value::Object(body.clone()),
                };
                let calls =
                    event_tool_calls(message.get("tool_calls")).map_err(|err| format!("`gen_ai.choice`: {err}"))?;
                out.push(HMsg {
                    role: "assistant".into(),
                    text: content_text(message.get("content")),
                    calls,
                    responses: Vec::new(),
                });
            }
            "tool" => {
                let id = body.get("id").and_then(Value::as_str).map(str::to_owned);
                let content = body.get("content").cloned().unwrap_or(Value::Null);
                let content = match content {
                    Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
                    other => other,
                };
                out.push(HMsg { role: "tool".into(), responses: vec![(id, content)], ..HMsg::default() });
            }
            _ => {
                let calls = event_tool_calls(body.get("tool_calls")).map_err(|err| format!("`{}`: {err}", e.name))?;
                out.push(HMsg {
                    role: role.into(),
                    text: content_text(body.get("content")),
                    calls,
                    responses: Vec::new(),
                });
            }
        }
    }
    Ok(out)
}

/// One model call's history and reply: its messages replace the conversation's when it is the
/// latest call; its tool calls and their results join the conversation's.
fn model_call(imp: &mut Importer, at: At<'_>, key: &Key, span_id: &str, (start, end): (u64, u64), history: Vec<HMsg>) {
    let order = imp.next_seq();
    let mut messages = Vec::new();
    let mut calls: Vec<Call> = Vec::new();
    let mut n = 0u64;
    for h in history {
        for (id, name, args) in h.calls {
            n += 1;
            if ToolName::parse(&name).is_err() {
                imp.error(at.error(format!("span `{span_id}`: tool call of `{name}`: not a valid tool name")));
                return;
            }
            let args = match args {
                None | Some(Value::Null) => None,
                Some(Value::Object(m)) => Some(m),
                Some(Value::String(s)) => match serde_json::from_str::<Value>(&s) {
                    Ok(Value::Object(m)) => Some(m),
                    _ => {
                        imp.error(at.error(format!(
                            "span `{span_id}`: tool call of `{name}`: arguments are not a JSON object"
                        )));
                        return;
                    }
                },
                Some(_) => {
                    imp.error(
                        at.error(format!("span `{span_id}`: tool call of `{name}`: arguments are not an object")),
                    );
                    return;
                }
            };
            let id = id.filter(|i| !i.is_empty()).unwrap_or_else(|| format!("span:{span_id}:{n}"));
            let args = match args {
                Some(a) => match imp.value(at, "tool call arguments", Value::Object(a)) {
                    Some(a) => Some(Json::of(&a)),
                    None => return,
                },
                None => None,
            };
            calls.push(Call {
                id,
                tool: Some(name),
                args,
                result: None,
                status: CallStatus::Ok,
                seq: start.saturating_add(n),
            });
        }
        for (id, response) in h.responses {
            let Some(id) = id.filter(|i| !i.is_empty()) else { continue };
            let Some(response) = imp.value(at, "tool call result", response) else { return };
            let response = Json::of(&response);
            match calls.iter_mut().find(|c| c.id == id) {
                Some(c) => c.result = Some(response),
                None => calls.push(Call {
                    id,
                    tool: None,
                    args: None,
                    result: Some(response),
                    status: CallStatus::Ok,
                    seq: u64::MAX,
                }),
            }
        }
        let role = match h.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            _ => continue,
        };
        if h.text.trim().is_empty() {
            continue;
        }
        let Some(text) = imp.text(at, "a message", h.text) else { return };
        messages.push(Msg { role, text });
    }
    merge_calls(imp, at, key, calls);
    let from = (start, end, order);
    let Some(c) = imp.convs.get_mut(key) else { return };
    if c.messages_from.is_some_and(|f| f > from) {
        return;
    }
    let old = c.messages_bytes();
    c.messages = messages;
    c.messages_from = Some(from);
    let new = c.messages_bytes();
    imp.release(key, old);
    imp.retain(at, key, new);
}

fn merge_calls(imp: &mut Importer, at: At<'_>, key: &Key, calls: Vec<Call>) {
    let mut added = 0;
    let Some(c) = imp.convs.get_mut(key) else { return };
    for call in calls {
        let seq = call.seq;
        let id = call.id.clone();
        added += c.merge_call(call);
        if let Some(&i) = c.call_ids.get(&id) {
            c.calls[i].seq = c.calls[i].seq.min(seq);
        }
    }
    imp.retain(at, key, added);
}
