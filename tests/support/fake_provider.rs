//! A fake of the real model providers, on loopback: Anthropic Messages (`POST /v1/messages`)
//! and OpenAI Chat Completions (`POST /v1/chat/completions`), each speaking its own wire format
//! as the real API does — its headers, its validation of the conversation (every tool call
//! answered, every tool result answering one), its reply and error shapes — so tests exercise
//! evalgate against the providers, not against a copy of evalgate's own assumptions.
//!
//! What it answers is scripted per request by a closure over a [`SeenRequest`], the
//! conversation normalised from either format. It also lists models (`GET /v1/models`, both
//! APIs on the same path, told apart by their auth headers), from lists a test sets with
//! [`FakeProvider::set_models`], paged as each API pages. Included by several test crates through
//! `#[path]`, so it depends on tokio, axum and serde_json only.
#![allow(dead_code)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which API a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Anthropic,
    OpenAi,
}

/// One message of the conversation, whatever the wire format.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenMessage {
    /// `user`, `assistant`, or `tool` (Anthropic's tool results in a user message, or OpenAI's
    /// consecutive `tool` messages, as one message).
    pub role: String,
    pub text: String,
    /// (name, arguments); OpenAI arguments that are not JSON are a `Value::String`.
    pub tool_calls: Vec<(String, Value)>,
    /// (content, is_error); OpenAI has no error flag, so it is always false there.
    pub tool_results: Vec<(String, bool)>,
}

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenRequest {
    pub api: Api,
    pub model: String,
    pub system: String,
    pub messages: Vec<SeenMessage>,
    pub tool_names: Vec<String>,
    /// The tool the request forces, if it forces one.
    pub tool_choice: Option<String>,
    /// The body as sent (`Null` when it was not JSON).
    pub body: Value,
}

impl SeenRequest {
    /// The text of the last `user` message ("" when there is none).
    pub fn last_user_text(&self) -> String {
        self.messages.iter().rev().find(|m| m.role == "user").map(|m| m.text.clone()).unwrap_or_default()
    }

    /// Tool results sent so far in the conversation.
    pub fn tool_results_so_far(&self) -> usize {
        self.messages.iter().map(|m| m.tool_results.len()).sum()
    }

    /// Assistant messages so far: 0 on the first call of a conversation.
    pub fn turn(&self) -> usize {
        self.messages.iter().filter(|m| m.role == "assistant").count()
    }

    pub fn system_contains(&self, s: &str) -> bool {
        self.system.contains(s)
    }
}

/// What the fake answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Text(String),
    /// Tool calls with generated ids. A `Value::String` argument is sent as the raw OpenAI
    /// `arguments` string (to fake arguments that are not JSON).
    ToolCalls(Vec<(String, Value)>),
    TextAndToolCalls(String, Vec<(String, Value)>),
    /// An error status. An empty `body` is replaced by the API's own error body for the status.
    Status {
        status: u16,
        retry_after: Option<String>,
        retry_after_ms: Option<u64>,
        body: String,
    },
    /// 200 with this raw body.
    Malformed(String),
    /// Waits, then replies.
    Slow(Duration, Box<Reply>),
    /// Overrides the reported usage (input, output tokens).
    WithUsage(u64, u64, Box<Reply>),
}

impl Reply {
    pub fn text(s: impl Into<String>) -> Reply {
        Reply::Text(s.into())
    }

    pub fn tool(name: impl Into<String>, args: Value) -> Reply {
        Reply::ToolCalls(vec![(name.into(), args)])
    }

    /// An error status with the API's own body for it.
    pub fn status(status: u16) -> Reply {
        Reply::Status { status, retry_after: None, retry_after_ms: None, body: String::new() }
    }

    /// A rate limit asking to wait `retry_after_secs` (`retry-after` header).
    pub fn status_429(retry_after_secs: u64) -> Reply {
        Reply::Status {
            status: 429,
            retry_after: Some(retry_after_secs.to_string()),
            retry_after_ms: None,
            body: String::new(),
        }
    }

    /// Anthropic's "overloaded" (on the OpenAI endpoint it is just a 529).
    pub fn overloaded_529() -> Reply {
        Reply::status(529)
    }

    pub fn server_error_500() -> Reply {
        Reply::status(500)
    }

    /// This reply after `delay`.
    pub fn after(self, delay: Duration) -> Reply {
        Reply::Slow(delay, Box::new(self))
    }

    /// This reply, reporting the given usage.
    pub fn with_usage(self, input_tokens: u64, output_tokens: u64) -> Reply {
        Reply::WithUsage(input_tokens, output_tokens, Box::new(self))
    }
}

/// An Anthropic error body: `{"type":"error","error":{"type":kind,"message":message},…}`.
pub fn anthropic_error_body(kind: &str, message: &str) -> String {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}).to_string()
}

/// An OpenAI error body: `{"error":{"message","type","param","code"}}`.
pub fn openai_error_body(kind: &str, code: Option<&str>, message: &str) -> String {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}}).to_string()
}

/// Anthropic's 429 when the organisation's monthly spend limit is reached.
pub fn anthropic_spend_limit_body() -> String {
    json!({"type": "error", "error": {"type": "rate_limit_error",
        "message": "You have reached your specified workspace API usage limits. You will regain access on 2026-01-01 at 00:00 UTC.",
        "details": {"error_code": "enforced_spend_limit_reached"}}, "request_id": "req_fake"})
    .to_string()
}

/// OpenAI's 429 when the account has no quota left.
pub fn openai_quota_body() -> String {
    openai_error_body(
        "insufficient_quota",
        Some("insufficient_quota"),
        "You exceeded your current quota, please check your plan and billing details.",
    )
}

type Script = dyn Fn(&SeenRequest) -> Reply + Send + Sync;

struct Shared {
    script: Box<Script>,
    calls: Mutex<Vec<SeenRequest>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    models: Mutex<ModelLists>,
}

/// What `GET /v1/models` serves, per API.
#[derive(Default)]
struct ModelLists {
    anthropic: ModelList,
    openai: ModelList,
    /// (API, query string) of every listing request, in arrival order.
    requests: Vec<(Api, String)>,
}

#[derive(Default)]
struct ModelList {
    models: Vec<Value>,
    /// Anthropic: the most models per page, whatever `limit` asks. OpenAI: `Some` turns on
    /// paging (`has_more`, `first_id`, `last_id`, `after=`); OpenAI's own API sends one page.
    page_size: Option<usize>,
    /// Error replies (`Reply::Status` / `Reply::Malformed`) for the next listing requests.
    failures: VecDeque<Reply>,
}

impl ModelLists {
    fn of(&mut self, api: Api) -> &mut ModelList {
        match api {
            Api::Anthropic => &mut self.anthropic,
            Api::OpenAi => &mut self.openai,
        }
    }
}

/// A model as Anthropic lists it (`created_at` RFC 3339, e.g. `2025-09-29T00:00:00Z`).
pub fn anthropic_model(id: &str, created_at: &str) -> Value {
    json!({"type": "model", "id": id, "display_name": id, "created_at": created_at})
}

/// A model as OpenAI lists it (`created` in unix seconds).
pub fn openai_model(id: &str, created: i64) -> Value {
    json!({"id": id, "object": "model", "created": created, "owned_by": "system"})
}

/// Counts a request in flight until its reply is sent (or the client goes away).
struct InFlight<'a>(&'a Shared);

impl Shared {
    fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(self)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The running fake; stops when dropped.
pub struct FakeProvider {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeProvider {
    pub async fn start(script: impl Fn(&SeenRequest) -> Reply + Send + Sync + 'static) -> FakeProvider {
        let shared = Arc::new(Shared {
            script: Box::new(script),
            calls: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            models: Mutex::new(ModelLists::default()),
        });
        let app = Router::new()
            .route("/v1/messages", post(anthropic))
            .route("/v1/chat/completions", post(openai))
            .route("/v1/models", get(list_models))
            .layer(DefaultBodyLimit::max(32 << 20))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake provider");
        let addr = listener.local_addr().expect("the fake provider's address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeProvider { addr, shared, server }
    }

    pub fn anthropic_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request received, in arrival order (rejected ones included).
    pub fn calls(&self) -> Vec<SeenRequest> {
        self.shared.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn call_count(&self) -> usize {
        self.shared.calls.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The most requests ever in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// What `GET /v1/models` lists for `api`, in this order (Anthropic lists newest first).
    /// Build entries with [`anthropic_model`] / [`openai_model`], or give any JSON.
    pub fn set_models(&self, api: Api, models: Vec<Value>) {
        self.lists().of(api).models = models;
    }

    /// Anthropic: at most `n` models per page. OpenAI: page by `n` (`has_more` / `after`).
    pub fn set_models_page_size(&self, api: Api, n: usize) {
        self.lists().of(api).page_size = Some(n.max(1));
    }

    /// The next listing requests on `api` get these replies (`Reply::Status`, `Reply::Malformed`).
    pub fn fail_model_lists(&self, api: Api, replies: Vec<Reply>) {
        self.lists().of(api).failures.extend(replies);
    }

    /// (API, query string) of every `GET /v1/models` received.
    pub fn model_list_requests(&self) -> Vec<(Api, String)> {
        self.lists().requests.clone()
    }

    fn lists(&self) -> std::sync::MutexGuard<'_, ModelLists> {
        self.shared.models.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn anthropic(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let _guard = s.enter();
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let seen = seen_anthropic(parsed.clone().unwrap_or(Value::Null));
    s.calls.lock().unwrap_or_else(|e| e.into_inner()).push(seen.clone());
    let reject =
        |status: StatusCode, kind: &str, message: &str| json_response(status, anthropic_error_body(kind, message));
    if header_str(&headers, "x-api-key").is_none_or(str::is_empty) {
        return reject(StatusCode::UNAUTHORIZED, "authentication_error", "x-api-key header is required");
    }
    if header_str(&headers, "anthropic-version").is_none() {
        return reject(StatusCode::BAD_REQUEST, "invalid_request_error", "anthropic-version: header is required");
    }
    let Some(v) = parsed else {
        return reject(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "There was an error parsing the body of your request",
        );
    };
    if let Err(m) = check_anthropic(&v) {
        return reject(StatusCode::BAD_REQUEST, "invalid_request_error", &m);
    }
    let reply = (s.script)(&seen);
    respond(Api::Anthropic, &seen, &body, reply).await
}

async fn openai(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let _guard = s.enter();
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let seen = seen_openai(parsed.clone().unwrap_or(Value::Null));
    s.calls.lock().unwrap_or_else(|e| e.into_inner()).push(seen.clone());
    let reject = |status: StatusCode, code: Option<&str>, message: &str| {
        json_response(status, openai_error_body("invalid_request_error", code, message))
    };
    let bearer = header_str(&headers, "authorization").and_then(|a| a.strip_prefix("Bearer "));
    if bearer.is_none_or(|k| k.trim().is_empty()) {
        return reject(
            StatusCode::UNAUTHORIZED,
            None,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        );
    }
    let Some(v) = parsed else {
        return reject(StatusCode::BAD_REQUEST, None, "We could not parse the JSON body of your request.");
    };
    if let Err(m) = check_openai(&v) {
        return reject(StatusCode::BAD_REQUEST, None, &m);
    }
    let reply = (s.script)(&seen);
    respond(Api::OpenAi, &seen, &body, reply).await
}

/// `GET /v1/models`: Anthropic's when an Anthropic header is present, else OpenAI's (whose 401
/// then answers a request without any key).
async fn list_models(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let api = if headers.contains_key("anthropic-version") || headers.contains_key("x-api-key") {
        Api::Anthropic
    } else {
        Api::OpenAi
    };
    let mut qs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    qs.sort();
    let mut lists = s.models.lock().unwrap_or_else(|e| e.into_inner());
    lists.requests.push((api, qs.join("&")));
    match api {
        Api::Anthropic => {
            let reject = |status: StatusCode, kind: &str, message: &str| {
                json_response(status, anthropic_error_body(kind, message))
            };
            if header_str(&headers, "x-api-key").is_none_or(str::is_empty) {
                return reject(StatusCode::UNAUTHORIZED, "authentication_error", "x-api-key header is required");
            }
            if header_str(&headers, "anthropic-version").is_none() {
                return reject(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "anthropic-version: header is required",
                );
            }
        }
        Api::OpenAi => {
            let bearer = header_str(&headers, "authorization").and_then(|a| a.strip_prefix("Bearer "));
            if bearer.is_none_or(|k| k.trim().is_empty()) {
                return json_response(
                    StatusCode::UNAUTHORIZED,
                    openai_error_body(
                        "invalid_request_error",
                        None,
                        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    ),
                );
            }
        }
    }
    let list = lists.of(api);
    match list.failures.pop_front() {
        Some(Reply::Status { status, retry_after, retry_after_ms, body }) => {
            return failure(api, status, retry_after, retry_after_ms, body);
        }
        Some(Reply::Malformed(raw)) => return json_response(StatusCode::OK, raw),
        _ => {}
    }
    let ids: Vec<&str> = list.models.iter().map(|m| m["id"].as_str().unwrap_or_default()).collect();
    let start = |cursor: Option<&String>| -> Result<usize, String> {
        match cursor {
            None => Ok(0),
            Some(c) => ids.iter().position(|id| id == c).map(|i| i + 1).ok_or(format!("unknown model id `{c}`")),
        }
    };
    let page = |from: usize, n: usize| -> Value {
        let to = (from + n).min(list.models.len());
        let data = list.models[from.min(to)..to].to_vec();
        let first = data.first().map_or(Value::Null, |m| m["id"].clone());
        let last = data.last().map_or(Value::Null, |m| m["id"].clone());
        json!({"data": data, "has_more": to < list.models.len(), "first_id": first, "last_id": last})
    };
    match api {
        Api::Anthropic => {
            let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
                None => 20,
                Some(Ok(n)) if (1..=1000).contains(&n) => n,
                Some(_) => {
                    return json_response(
                        StatusCode::BAD_REQUEST,
                        anthropic_error_body("invalid_request_error", "limit: Input should be between 1 and 1000"),
                    );
                }
            };
            let from = match start(query.get("after_id")) {
                Ok(i) => i,
                Err(m) => {
                    return json_response(StatusCode::BAD_REQUEST, anthropic_error_body("invalid_request_error", &m));
                }
            };
            let n = list.page_size.map_or(limit, |cap| cap.min(limit));
            json_response(StatusCode::OK, page(from, n).to_string())
        }
        Api::OpenAi => match list.page_size {
            None => json_response(StatusCode::OK, json!({"object": "list", "data": list.models}).to_string()),
            Some(n) => {
                let from = match start(query.get("after")) {
                    Ok(i) => i,
                    Err(m) => {
                        return json_response(
                            StatusCode::BAD_REQUEST,
                            openai_error_body("invalid_request_error", None, &m),
                        );
                    }
                };
                let mut body = page(from, n);
                body["object"] = json!("list");
                json_response(StatusCode::OK, body.to_string())
            }
        },
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

// ---- what the real APIs refuse -------------------------------------------------------------

/// Anthropic's checks: required fields, non-empty text blocks, and tool results answering the
/// tool calls of the message just before, all of them.
fn check_anthropic(v: &Value) -> Result<(), String> {
    if !v.get("model").is_some_and(Value::is_string) {
        return Err("model: Field required".into());
    }
    if !v.get("max_tokens").is_some_and(Value::is_u64) {
        return Err("max_tokens: Field required".into());
    }
    let messages = v.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty());
    let messages = messages.ok_or("messages: Field required")?;
    let mut pending: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        if role != "user" && role != "assistant" {
            return Err(format!("messages.{i}.role: Input should be 'user' or 'assistant'"));
        }
        let blocks = m.get("content").and_then(Value::as_array).cloned().unwrap_or_default();
        let answered: Vec<String> =
            blocks.iter().filter(|b| b["type"] == "tool_result").map(|b| id_of(b, "tool_use_id")).collect();
        if let Some(stray) = answered.iter().find(|id| !pending.contains(id)) {
            return Err(format!(
                "messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: {stray}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
            ));
        }
        if let Some(missing) = pending.iter().find(|id| !answered.contains(id)) {
            return Err(format!(
                "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {missing}. Each `tool_use` block must have a corresponding `tool_result` block in the next message."
            ));
        }
        if blocks.iter().any(|b| b["type"] == "text" && b["text"].as_str().is_none_or(str::is_empty)) {
            return Err(format!("messages.{i}: text content blocks must be non-empty"));
        }
        pending = blocks.iter().filter(|b| b["type"] == "tool_use").map(|b| id_of(b, "id")).collect();
    }
    Ok(())
}

/// OpenAI's checks: required fields, and `tool` messages answering the preceding assistant
/// message's `tool_calls`, all of them.
fn check_openai(v: &Value) -> Result<(), String> {
    if !v.get("model").is_some_and(Value::is_string) {
        return Err("you must provide a model parameter".into());
    }
    let messages = v.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty());
    let messages = messages.ok_or("[] is too short - 'messages'")?;
    let mut pending: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        if role == "tool" {
            let id = id_of(m, "tool_call_id");
            if !pending.contains(&id) {
                return Err(format!(
                    "Invalid parameter: messages[{i}]: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'."
                ));
            }
            pending.retain(|p| *p != id);
            continue;
        }
        if !pending.is_empty() {
            return Err(format!(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
                pending.join(", ")
            ));
        }
        if role == "assistant" {
            let calls = m.get("tool_calls").and_then(Value::as_array).cloned().unwrap_or_default();
            if calls.iter().any(|c| !c["function"]["arguments"].is_string()) {
                return Err(format!(
                    "Invalid type for 'messages[{i}].tool_calls.function.arguments': expected a string"
                ));
            }
            pending = calls.iter().map(|c| id_of(c, "id")).collect();
        }
    }
    Ok(())
}

fn id_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

// ---- reading requests ------------------------------------------------------------------------

/// Text of an Anthropic `content` / OpenAI `content`: a string, or the text of its blocks/parts.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("")
        }
        _ => String::new(),
    }
}

fn message(role: &str) -> SeenMessage {
    SeenMessage { role: role.into(), text: String::new(), tool_calls: Vec::new(), tool_results: Vec::new() }
}

fn seen_anthropic(v: Value) -> SeenRequest {
    let mut messages = Vec::new();
    for m in v["messages"].as_array().into_iter().flatten() {
        let role = m["role"].as_str().unwrap_or_default();
        let blocks: Vec<Value> = match &m["content"] {
            Value::String(s) => vec![json!({"type": "text", "text": s})],
            Value::Array(b) => b.clone(),
            _ => Vec::new(),
        };
        let results: Vec<(String, bool)> = blocks
            .iter()
            .filter(|b| b["type"] == "tool_result")
            .map(|b| (text_of(&b["content"]), b["is_error"].as_bool().unwrap_or(false)))
            .collect();
        let has_results = !results.is_empty();
        if has_results {
            messages.push(SeenMessage { tool_results: results, ..message("tool") });
        }
        let text = blocks.iter().filter(|b| b["type"] == "text").filter_map(|b| b["text"].as_str()).collect::<String>();
        let calls: Vec<(String, Value)> = blocks
            .iter()
            .filter(|b| b["type"] == "tool_use")
            .map(|b| (b["name"].as_str().unwrap_or_default().to_owned(), b["input"].clone()))
            .collect();
        // A user message holding only tool results is the `tool` message above.
        if role == "assistant" || !has_results || !text.is_empty() {
            messages.push(SeenMessage { text, tool_calls: calls, ..message(role) });
        }
    }
    let tool_choice =
        (v["tool_choice"]["type"] == "tool").then(|| v["tool_choice"]["name"].as_str().unwrap_or_default().to_owned());
    SeenRequest {
        api: Api::Anthropic,
        model: v["model"].as_str().unwrap_or_default().to_owned(),
        system: text_of(&v["system"]),
        messages,
        tool_names: names(&v["tools"], "/name"),
        tool_choice,
        body: v,
    }
}

fn seen_openai(v: Value) -> SeenRequest {
    let mut system = Vec::new();
    let mut messages: Vec<SeenMessage> = Vec::new();
    for m in v["messages"].as_array().into_iter().flatten() {
        let role = m["role"].as_str().unwrap_or_default();
        match role {
            "system" | "developer" => system.push(text_of(&m["content"])),
            "tool" => {
                let result = (text_of(&m["content"]), false);
                match messages.last_mut() {
                    Some(last) if last.role == "tool" => last.tool_results.push(result),
                    _ => messages.push(SeenMessage { tool_results: vec![result], ..message("tool") }),
                }
            }
            _ => {
                let calls = m["tool_calls"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        let raw = c["function"]["arguments"].as_str().unwrap_or_default();
                        let args = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
                        (c["function"]["name"].as_str().unwrap_or_default().to_owned(), args)
                    })
                    .collect();
                messages.push(SeenMessage { text: text_of(&m["content"]), tool_calls: calls, ..message(role) });
            }
        }
    }
    let tool_choice = (v["tool_choice"]["type"] == "function")
        .then(|| v["tool_choice"]["function"]["name"].as_str().unwrap_or_default().to_owned());
    SeenRequest {
        api: Api::OpenAi,
        model: v["model"].as_str().unwrap_or_default().to_owned(),
        system: system.join("\n"),
        messages,
        tool_names: names(&v["tools"], "/function/name"),
        tool_choice,
        body: v,
    }
}

fn names(tools: &Value, pointer: &str) -> Vec<String> {
    tools
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.pointer(pointer).and_then(Value::as_str))
        .map(String::from)
        .collect()
}

// ---- replies ---------------------------------------------------------------------------------

async fn respond(api: Api, seen: &SeenRequest, request: &[u8], mut reply: Reply) -> Response {
    let mut usage = None;
    loop {
        reply = match reply {
            Reply::Slow(delay, inner) => {
                tokio::time::sleep(delay).await;
                *inner
            }
            Reply::WithUsage(input, output, inner) => {
                usage.get_or_insert((input, output));
                *inner
            }
            Reply::Text(text) => return success(api, seen, request, &text, &[], usage),
            Reply::ToolCalls(calls) => return success(api, seen, request, "", &calls, usage),
            Reply::TextAndToolCalls(text, calls) => return success(api, seen, request, &text, &calls, usage),
            Reply::Malformed(raw) => return json_response(StatusCode::OK, raw),
            Reply::Status { status, retry_after, retry_after_ms, body } => {
                return failure(api, status, retry_after, retry_after_ms, body);
            }
        }
    }
}

/// FNV-1a of the request: ids derived from it are the same whatever order requests arrive in,
/// so a recording made twice is the same recording.
fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

fn success(
    api: Api,
    seen: &SeenRequest,
    request: &[u8],
    text: &str,
    calls: &[(String, Value)],
    usage: Option<(u64, u64)>,
) -> Response {
    let (input, output) = usage.unwrap_or((request.len() as u64 / 4, text.len() as u64 / 4 + 10 * calls.len() as u64));
    let fp = fingerprint(request);
    let body = match api {
        Api::Anthropic => {
            let mut content = Vec::new();
            if !text.is_empty() {
                content.push(json!({"type": "text", "text": text}));
            }
            for (i, (name, args)) in calls.iter().enumerate() {
                content.push(
                    json!({"type": "tool_use", "id": format!("toolu_{fp:016x}{i:02}"), "name": name, "input": args}),
                );
            }
            json!({"id": format!("msg_{fp:016x}"), "type": "message", "role": "assistant", "model": seen.model,
                "content": content, "stop_reason": if calls.is_empty() { "end_turn" } else { "tool_use" },
                "stop_sequence": null, "usage": {"input_tokens": input, "output_tokens": output}})
        }
        Api::OpenAi => {
            let content = if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) };
            let mut message = json!({"role": "assistant", "content": content, "refusal": null});
            if !calls.is_empty() {
                let calls: Vec<Value> = calls
                    .iter()
                    .enumerate()
                    .map(|(i, (name, args))| {
                        let arguments = match args {
                            Value::String(raw) => raw.clone(),
                            other => other.to_string(),
                        };
                        json!({"id": format!("call_{fp:016x}{i:02}"), "type": "function", "function": {"name": name, "arguments": arguments}})
                    })
                    .collect();
                message["tool_calls"] = Value::Array(calls);
            }
            json!({"id": format!("chatcmpl-{fp:016x}"), "object": "chat.completion", "created": 1_700_000_000u64,
                "model": seen.model, "choices": [{"index": 0, "message": message, "logprobs": null,
                "finish_reason": if calls.is_empty() { "stop" } else { "tool_calls" }}],
                "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output},
                "system_fingerprint": null})
        }
    };
    json_response(StatusCode::OK, body.to_string())
}

fn failure(api: Api, status: u16, retry_after: Option<String>, retry_after_ms: Option<u64>, body: String) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = if body.is_empty() { standard_error(api, status) } else { body };
    let json = serde_json::from_str::<Value>(&body).is_ok();
    let mut resp = (code, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(if json { "application/json" } else { "text/plain" }));
    if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        h.insert(header::RETRY_AFTER, v);
    }
    if let Some(ms) = retry_after_ms {
        h.insert(HeaderName::from_static("retry-after-ms"), HeaderValue::from(ms));
    }
    resp
}

/// The body each API sends with a status.
fn standard_error(api: Api, status: u16) -> String {
    match api {
        Api::Anthropic => {
            let (kind, message) = match status {
                400 => ("invalid_request_error", "Invalid request"),
                401 => ("authentication_error", "invalid x-api-key"),
                403 => ("permission_error", "Your API key does not have permission to use the specified resource."),
                404 => ("not_found_error", "The requested resource could not be found."),
                413 => ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
                429 => (
                    "rate_limit_error",
                    "This request would exceed the rate limit for your organization of 50 requests per minute.",
                ),
                529 => ("overloaded_error", "Overloaded"),
                _ => ("api_error", "Internal server error"),
            };
            anthropic_error_body(kind, message)
        }
        Api::OpenAi => {
            let (kind, code, message) = match status {
                400 => ("invalid_request_error", None, "Invalid request"),
                401 => ("invalid_request_error", Some("invalid_api_key"), "Incorrect API key provided."),
                404 => (
                    "invalid_request_error",
                    Some("model_not_found"),
                    "The model does not exist or you do not have access to it.",
                ),
                429 => (
                    "requests",
                    Some("rate_limit_exceeded"),
                    "Rate limit reached for requests per min (RPM). Please try again in 1s.",
                ),
                503 => ("server_error", None, "The server is overloaded or not ready yet."),
                _ => ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
            };
            openai_error_body(kind, code, message)
        }
    }
}
