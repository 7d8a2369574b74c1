//! Model providers: one neutral conversation shape, spoken on the wire as Anthropic Messages or
//! OpenAI Chat Completions, with retries, a per-provider concurrency limit, and record/replay.
//!
//! The engine only sees [`ModelClient::complete`]. Whether the answer comes from the network
//! ([`Transport::Live`], optionally recording to a cassette) or from a cassette
//! ([`Transport::Replay`]) is decided once, when the client is built.

pub mod anthropic;
pub mod cassette;
pub mod client;
pub mod http;
pub mod limiter;
pub mod openai;

pub use client::{ModelClient, Transport};

use crate::bundle::ModelParams;
use crate::snapshot::{Provider, Snapshot};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// One request to a model, independent of the wire format.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub snapshot: Snapshot,
    pub params: ModelParams,
    /// The system prompt (Anthropic `system`, OpenAI a leading `system` message).
    pub system: String,
    pub messages: Vec<Turn>,
    pub tools: Vec<ToolSpec>,
    /// Force the model to call this tool (the judge's structured verdict).
    pub tool_choice: Option<String>,
}

/// A tool as offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments (Anthropic `input_schema`, OpenAI `function.parameters`).
    pub input_schema: Value,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Turn {
    User {
        text: String,
    },
    /// What the model said: text (possibly empty) and the tools it called, in order.
    Assistant {
        text: String,
        tool_calls: Vec<ToolCall>,
    },
    /// The results of the previous assistant turn's tool calls, in the same order.
    ToolResults {
        results: Vec<ToolResult>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for the call (`toolu_…`, `call_…`), echoed back with the result.
    pub id: String,
    pub name: String,
    /// The arguments. OpenAI sends them as a JSON string; one that does not parse is kept as
    /// `Value::String(raw)`, so `tool_args_valid` fails on it rather than the run.
    pub args: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    pub call_id: String,
    /// The result as sent to the model (JSON text for fixtures, a message for errors).
    pub content: String,
    pub is_error: bool,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Finished its answer (`end_turn` / `stop`).
    EndTurn,
    /// Wants tool results (`tool_use` / `tool_calls`).
    ToolUse,
    /// Ran into `max_tokens` (`max_tokens` / `length`).
    MaxTokens,
    /// Hit a stop sequence (Anthropic `stop_sequence`).
    StopSequence,
    /// Refused or filtered (`refusal` / `content_filter`).
    Refusal,
    Other(String),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// One model reply, independent of the wire format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub stop: StopReason,
    pub usage: Usage,
}

/// A completed call: the reply, and what it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub response: ChatResponse,
    /// Latency of the successful attempt (recorded latency when replayed, so a replay
    /// reproduces the report bit for bit).
    pub latency_ms: u64,
    /// HTTP attempts made (1 without retries; 0 when replayed).
    pub attempts: u32,
}

/// Why a call failed for good (after the retries the policy allows).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    #[error("{variable} is not set: the {provider} API key is needed to call {model}")]
    MissingKey { provider: Provider, variable: &'static str, model: String },
    #[error("{provider} spend limit reached (HTTP 429, not retried): {message}")]
    SpendLimit { provider: Provider, message: String },
    #[error("{provider} unavailable after {attempts} attempts: last HTTP {status}: {message}")]
    Unavailable { provider: Provider, status: u16, attempts: u32, message: String },
    #[error("{provider} rejected the request (HTTP {status}): {message}")]
    Rejected { provider: Provider, status: u16, message: String },
    #[error("{provider} timed out after {attempts} attempts ({timeout:?} each)")]
    Timeout { provider: Provider, attempts: u32, timeout: Duration },
    #[error("{provider} sent a reply evalgate cannot read after {attempts} attempts: {detail}")]
    Malformed { provider: Provider, attempts: u32, detail: String },
    #[error("{provider} could not be reached after {attempts} attempts: {detail}")]
    Connect { provider: Provider, attempts: u32, detail: String },
    #[error("the cassette has no answer for this {model} call (key {key}); record it again with --record")]
    NotInCassette { model: String, key: String },
}

/// An API key that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The key itself, for the one header that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where a provider lives and the key to call it with.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// `EVALGATE_ANTHROPIC_BASE_URL` (default `https://api.anthropic.com`) or
    /// `EVALGATE_OPENAI_BASE_URL` (default `https://api.openai.com/v1`).
    pub base_url: String,
    pub api_key: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoints {
    pub anthropic: Endpoint,
    pub openai: Endpoint,
}

/// How hard to try before a call fails for good.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff; doubles per retry, with full jitter, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A `retry-after` longer than this is cut to it (a provider asking for an hour would
    /// otherwise stall the run silently).
    pub max_retry_after: Duration,
    /// Per attempt, from sending the request to the last byte of the reply.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
            timeout: Duration::from_secs(120),
        }
    }
}

/// Calls in flight and requests per minute, per provider, shared by agent and judge calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub concurrency: usize,
    pub rpm: Option<u32>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { concurrency: 16, rpm: None }
    }
}
