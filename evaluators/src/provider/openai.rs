//! OpenAI Chat Completions (`POST {base}/chat/completions`, `Authorization: Bearer …`), also
//! spoken by many OpenAI-compatible servers.
//!
//! Only the non-streaming shape is spoken: a request body built from a [`ChatRequest`], a reply
//! read into a [`ChatResponse`], and the message of an error body.

use super::{ChatRequest, ChatResponse, StopReason, ToolCall, Turn, Usage};
use serde_json::{Map, Value, json};

/// The JSON body of one Chat Completions call.
pub fn request_body(req: &ChatRequest) -> Value {
    let p = &req.params;
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system}));
    }
    for turn in &req.messages {
        push_messages(&mut messages, turn);
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(req.snapshot.id()));
    body.insert("messages".into(), Value::Array(messages));
    if !req.tools.is_empty() {
        let tools = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.input_schema}})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(name) = &req.tool_choice {
        body.insert("tool_choice".into(), json!({"type": "function", "function": {"name": name}}));
    }
    insert_some(&mut body, "temperature", p.temperature.map(|v| json!(v)));
    insert_some(&mut body, "top_p", p.top_p.map(|v| json!(v)));
    insert_some(&mut body, "max_tokens", p.max_tokens.map(|v| json!(v)));
    if !p.stop.is_empty() {
        body.insert("stop".into(), json!(p.stop));
    }
    insert_some(&mut body, "seed", p.seed.map(|v| json!(v)));
    // `top_k` has no Chat Completions counterpart and is not sent.
    Value::Object(body)
}

fn insert_some(body: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        body.insert(key.into(), v);
    }
}

/// One turn as Chat Completions messages: tool results are one `tool` message per result.
fn push_messages(out: &mut Vec<Value>, turn: &Turn) {
    match turn {
        Turn::User { text } => out.push(json!({"role": "user", "content": text})),
        Turn::Assistant { text, tool_calls } => {
            let content = if text.is_empty() { Value::Null } else { json!(text) };
            let mut m = json!({"role": "assistant", "content": content});
            if !tool_calls.is_empty() {
                m["tool_calls"] = Value::Array(tool_calls.iter().map(wire_tool_call).collect());
            }
            out.push(m);
        }
        Turn::ToolResults { results } => {
            out.extend(results.iter().map(|r| json!({"role": "tool", "tool_call_id": r.call_id, "content": r.content})))
        }
    }
}

/// Arguments go back as the JSON string the API sent; ones that did not parse (kept as a
/// string) go back exactly as received.
fn wire_tool_call(c: &ToolCall) -> Value {
    let arguments = match &c.args {
        Value::String(raw) => raw.clone(),
        other => other.to_string(),
    };
    json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": arguments}})
}

/// Reads a successful Chat Completions reply (the first choice). Anything missing or of the
/// wrong type is an error naming the field.
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("reply is not JSON: {e}"))?;
    let choices = v.get("choices").ok_or("`choices` is missing")?.as_array().ok_or("`choices` is not an array")?;
    let choice = choices.first().ok_or("`choices` is empty")?;
    let message = choice.get("message").filter(|m| m.is_object()).ok_or("`choices[0].message` is missing")?;
    let mut text = opt_str(message, "content", "choices[0].message.content")?.unwrap_or_default().to_owned();
    let tool_calls = match message.get("tool_calls") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(calls)) => {
            calls.iter().enumerate().map(|(i, c)| tool_call(i, c)).collect::<Result<_, _>>()?
        }
        Some(_) => return Err("`choices[0].message.tool_calls` is not an array".into()),
    };
    let mut stop = finish_reason(
        opt_str(choice, "finish_reason", "choices[0].finish_reason")?.ok_or("`choices[0].finish_reason` is missing")?,
    );
    // A refusal comes as `refusal` text with no content; it is the answer, and a refusal.
    if let Some(refusal) = opt_str(message, "refusal", "choices[0].message.refusal")? {
        stop = StopReason::Refusal;
        if text.is_empty() {
            text = refusal.to_owned();
        }
    }
    let usage = v.get("usage").filter(|u| !u.is_null()).ok_or("`usage` is missing")?;
    let usage = Usage {
        input_tokens: u64_field(usage, "prompt_tokens", "usage.prompt_tokens")?,
        output_tokens: u64_field(usage, "completion_tokens", "usage.completion_tokens")?,
    };
    Ok(ChatResponse { text, tool_calls, stop, usage })
}

fn tool_call(i: usize, c: &Value) -> Result<ToolCall, String> {
    let at = |k: &str| format!("choices[0].message.tool_calls[{i}].{k}");
    let id = opt_str(c, "id", &at("id"))?.ok_or_else(|| format!("`{}` is missing", at("id")))?;
    let function =
        c.get("function").filter(|f| f.is_object()).ok_or_else(|| format!("`{}` is missing", at("function")))?;
    let name = opt_str(function, "name", &at("function.name"))?
        .ok_or_else(|| format!("`{}` is missing", at("function.name")))?;
    let raw = opt_str(function, "arguments", &at("function.arguments"))?
        .ok_or_else(|| format!("`{}` is missing", at("function.arguments")))?;
    // Unparseable arguments are the model's mistake, not the transport's: kept as a string so
    // the `tool_args_valid` check fails on them.
    let args = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
    Ok(ToolCall { id: id.to_owned(), name: name.to_owned(), args })
}

fn finish_reason(s: &str) -> StopReason {
    match s {
        "stop" => StopReason::EndTurn,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "length" => StopReason::MaxTokens,
        "content_filter" => StopReason::Refusal,
        other => StopReason::Other(other.to_owned()),
    }
}

/// A string field that may be absent or null.
fn opt_str<'a>(v: &'a Value, key: &str, path: &str) -> Result<Option<&'a str>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{path}` is not a string")),
    }
}

fn u64_field(v: &Value, key: &str, path: &str) -> Result<u64, String> {
    match v.get(key) {
        None | Some(Value::Null) => Err(format!("`{path}` is missing")),
        Some(x) => x.as_u64().ok_or_else(|| format!("`{path}` is not a non-negative integer")),
    }
}

/// The message of an error reply (`{"error":{"message","type","code"}}`), else a short piece of
/// the raw body.
pub fn error_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    let message = err.and_then(|e| e.get("message")).and_then(Value::as_str);
    let code =
        err.and_then(|e| e.get("code").and_then(Value::as_str).or_else(|| e.get("type").and_then(Value::as_str)));
    match (code, message) {
        (Some(c), Some(m)) => super::http::snippet(format!("{c}: {m}").as_bytes()),
        (None, Some(m)) => super::http::snippet(m.as_bytes()),
        _ => super::http::snippet(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(message: Value, finish: &str) -> Vec<u8> {
        json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn tool_call_arguments_are_parsed_and_unparseable_ones_kept_raw() {
        let m = json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"id\":\"A1\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "lookup", "arguments": "{id: A1"}}]});
        let r = parse_response(&reply(m, "tool_calls")).expect("parses");
        assert_eq!(r.text, "");
        assert_eq!(r.tool_calls[0].args, json!({"id": "A1"}));
        assert_eq!(r.tool_calls[1].args, Value::String("{id: A1".into()));
        assert_eq!(r.stop, StopReason::ToolUse);
        assert_eq!(r.usage, Usage { input_tokens: 9, output_tokens: 4 });
    }

    #[test]
    fn raw_arguments_go_back_exactly_as_received() {
        let call = ToolCall { id: "call_2".into(), name: "lookup".into(), args: Value::String("{id: A1".into()) };
        assert_eq!(wire_tool_call(&call)["function"]["arguments"], "{id: A1");
    }

    #[test]
    fn finish_reasons_are_mapped() {
        for (wire, ours) in [
            ("stop", StopReason::EndTurn),
            ("length", StopReason::MaxTokens),
            ("content_filter", StopReason::Refusal),
            ("weird", StopReason::Other("weird".into())),
        ] {
            assert_eq!(finish_reason(wire), ours);
        }
    }

    #[test]
    fn missing_and_ill_typed_fields_are_named() {
        assert_eq!(parse_response(br#"{"choices":[]}"#).unwrap_err(), "`choices` is empty");
        let m = json!({"role": "assistant", "content": 5});
        assert_eq!(parse_response(&reply(m, "stop")).unwrap_err(), "`choices[0].message.content` is not a string");
        let no_usage = br#"{"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}]}"#;
        assert_eq!(parse_response(no_usage).unwrap_err(), "`usage` is missing");
    }

    #[test]
    fn error_bodies_give_code_and_message() {
        let body = br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        assert_eq!(error_message(body), "insufficient_quota: You exceeded your current quota");
        assert_eq!(error_message(b"upstream connect error"), "upstream connect error");
    }
}
