//! Anthropic Messages (`POST {base}/v1/messages`, `anthropic-version: 2023-06-01`).
//!
//! Only the non-streaming shape is spoken: a request body built from a [`ChatRequest`], a reply
//! read into a [`ChatResponse`], and the message of an error body. Headers and retries are the
//! caller's ([`super::http`]).

use super::{ChatRequest, ChatResponse, StopReason, ToolCall, Turn, Usage};
use serde_json::{Map, Value, json};

/// The API version every request names; the reply shape below is this version's.
pub const VERSION: &str = "2023-06-01";

/// Anthropic requires `max_tokens`; this is sent when the bundle leaves it unset.
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

/// The JSON body of one Messages call.
pub fn request_body(req: &ChatRequest) -> Value {
    let p = &req.params;
    let mut body = Map::new();
    body.insert("model".into(), json!(req.snapshot.id()));
    body.insert("max_tokens".into(), json!(p.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)));
    // An empty system prompt is left out: the API treats a missing one as none.
    if !req.system.is_empty() {
        body.insert("system".into(), json!(req.system));
    }
    body.insert("messages".into(), Value::Array(req.messages.iter().map(message).collect()));
    if !req.tools.is_empty() {
        let tools = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(name) = &req.tool_choice {
        body.insert("tool_choice".into(), json!({"type": "tool", "name": name}));
    }
    insert_some(&mut body, "temperature", p.temperature.map(|v| json!(v)));
    insert_some(&mut body, "top_p", p.top_p.map(|v| json!(v)));
    insert_some(&mut body, "top_k", p.top_k.map(|v| json!(v)));
    if !p.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(p.stop));
    }
    // `seed` has no Anthropic counterpart and is not sent.
    Value::Object(body)
}

fn insert_some(body: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        body.insert(key.into(), v);
    }
}

/// One turn as a Messages `message`. Tool results travel in a `user` message, as the API wants.
fn message(turn: &Turn) -> Value {
    match turn {
        Turn::User { text } => json!({"role": "user", "content": text}),
        Turn::Assistant { text, tool_calls } => {
            // The API rejects empty text blocks, so an assistant turn that only called tools has none.
            let mut content: Vec<Value> = Vec::new();
            if !text.is_empty() {
                content.push(json!({"type": "text", "text": text}));
            }
            content.extend(
                tool_calls.iter().map(|c| json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.args})),
            );
            json!({"role": "assistant", "content": content})
        }
        Turn::ToolResults { results } => {
            let content: Vec<Value> = results
                .iter()
                .map(|r| {
                    json!({"type": "tool_result", "tool_use_id": r.call_id, "content": r.content, "is_error": r.is_error})
                })
                .collect();
            json!({"role": "user", "content": content})
        }
    }
}

/// Reads a successful Messages reply. Anything missing or of the wrong type is an error naming
/// the field, so a broken reply is retried (and reported) rather than read as an empty answer.
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("reply is not JSON: {e}"))?;
    let content = field(&v, "content")?.as_array().ok_or("`content` is not an array")?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for (i, block) in content.iter().enumerate() {
        let at = |k: &str| format!("content[{i}].{k}");
        match str_field(block, "type", &at("type"))? {
            "text" => text.push_str(str_field(block, "text", &at("text"))?),
            "tool_use" => tool_calls.push(ToolCall {
                id: str_field(block, "id", &at("id"))?.to_owned(),
                name: str_field(block, "name", &at("name"))?.to_owned(),
                args: block.get("input").cloned().ok_or_else(|| format!("`{}` is missing", at("input")))?,
            }),
            // Thinking and server-tool blocks carry nothing the engine reads.
            _ => {}
        }
    }
    let stop = stop_reason(str_field(&v, "stop_reason", "stop_reason")?);
    let usage = field(&v, "usage")?;
    let usage = Usage {
        input_tokens: u64_field(usage, "input_tokens", "usage.input_tokens")?,
        output_tokens: u64_field(usage, "output_tokens", "usage.output_tokens")?,
    };
    Ok(ChatResponse { text, tool_calls, stop, usage })
}

fn stop_reason(s: &str) -> StopReason {
    match s {
        "end_turn" => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "refusal" => StopReason::Refusal,
        other => StopReason::Other(other.to_owned()),
    }
}

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value, String> {
    v.get(key).ok_or_else(|| format!("`{key}` is missing"))
}

fn str_field<'a>(v: &'a Value, key: &str, path: &str) -> Result<&'a str, String> {
    match v.get(key) {
        None | Some(Value::Null) => Err(format!("`{path}` is missing")),
        Some(x) => x.as_str().ok_or_else(|| format!("`{path}` is not a string")),
    }
}

fn u64_field(v: &Value, key: &str, path: &str) -> Result<u64, String> {
    match v.get(key) {
        None | Some(Value::Null) => Err(format!("`{path}` is missing")),
        Some(x) => x.as_u64().ok_or_else(|| format!("`{path}` is not a non-negative integer")),
    }
}

/// The message of an error reply (`{"type":"error","error":{"type":…,"message":…}}`), else a
/// short piece of the raw body (a proxy's HTML page, say).
pub fn error_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    let kind = err.and_then(|e| e.get("type")).and_then(Value::as_str);
    let message = err.and_then(|e| e.get("message")).and_then(Value::as_str);
    match (kind, message) {
        (Some(k), Some(m)) => super::http::snippet(format!("{k}: {m}").as_bytes()),
        (None, Some(m)) => super::http::snippet(m.as_bytes()),
        _ => super::http::snippet(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_with_text_and_a_tool_call_is_read_in_order() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[
            {"type":"text","text":"Let me look."},{"type":"tool_use","id":"toolu_1","name":"lookup","input":{"id":"A1"}}],
            "stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":7}}"#;
        let r = parse_response(body).expect("parses");
        assert_eq!(r.text, "Let me look.");
        assert_eq!(r.tool_calls[0].id, "toolu_1");
        assert_eq!(r.tool_calls[0].args, json!({"id": "A1"}));
        assert_eq!(r.stop, StopReason::ToolUse);
        assert_eq!(r.usage, Usage { input_tokens: 12, output_tokens: 7 });
    }

    #[test]
    fn missing_and_ill_typed_fields_are_named() {
        let no_usage = br#"{"content":[],"stop_reason":"end_turn"}"#;
        assert_eq!(parse_response(no_usage).unwrap_err(), "`usage` is missing");
        let bad_tokens = br#"{"content":[],"stop_reason":"end_turn","usage":{"input_tokens":"3","output_tokens":1}}"#;
        assert_eq!(parse_response(bad_tokens).unwrap_err(), "`usage.input_tokens` is not a non-negative integer");
        let bad_block = br#"{"content":[{"type":"tool_use","id":"t","input":{}}],"stop_reason":"tool_use","usage":{}}"#;
        assert_eq!(parse_response(bad_block).unwrap_err(), "`content[0].name` is missing");
        assert!(parse_response(b"<html>").unwrap_err().starts_with("reply is not JSON"));
    }

    #[test]
    fn every_stop_reason_is_mapped() {
        for (wire, ours) in [
            ("end_turn", StopReason::EndTurn),
            ("max_tokens", StopReason::MaxTokens),
            ("stop_sequence", StopReason::StopSequence),
            ("refusal", StopReason::Refusal),
            ("pause_turn", StopReason::Other("pause_turn".into())),
        ] {
            assert_eq!(stop_reason(wire), ours);
        }
    }

    #[test]
    fn error_bodies_give_type_and_message_else_a_short_snippet() {
        let body =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#;
        assert_eq!(error_message(body), "overloaded_error: Overloaded");
        let long = "x".repeat(10_000);
        assert!(error_message(long.as_bytes()).len() < 400);
    }
}
