//! `evalgate golden import`: recorded production conversations become cases of a golden set
//! (SPEC, "Golden cases from production").
//!
//! Input is JSONL, one event a line, in either of two shapes, told apart line by line:
//!
//! - the event log of an agent platform ([`events`]): `{"type": "message", …}` and
//!   `{"type": "tool_call", …}`;
//! - OpenTelemetry GenAI spans as OTLP/JSON ([`otlp`]), one `{"resourceSpans": [...]}` export a
//!   line as the OTLP file exporters write them.
//!
//! Reading is streamed: a bounded line at a time, and only what a conversation's case needs is
//! kept (its messages, its tool calls, its first time), so the memory a run needs is bounded by
//! what it writes — at most the limits of `cases.jsonl` ([`crate::limits`]) — not by the size of
//! the log. Every line that cannot be read is an [`InputError`] with its file and line (and
//! column, where the JSON reader gives one); when there is any, nothing is written.
//!
//! Each conversation becomes one case ([`build`]); [`merge`] puts the cases into an existing
//! `cases.jsonl` in place, every other line kept byte for byte.

pub mod build;
mod events;
pub mod merge;
mod otlp;
pub mod redact;
pub(crate) mod time;

use crate::golden::CallStatus;
use crate::limits::{
    MAX_CASES, MAX_CASES_FILE_BYTES, MAX_IMPORT_EVENTS_PER_CONVERSATION, MAX_IMPORT_FILE_BYTES, MAX_IMPORT_LINE_BYTES,
    MAX_IMPORT_TEXT_BYTES,
};
use crate::tools::ToolDef;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::BufRead;

pub use build::ImportedCase;

/// What to import and how.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only these conversations (all when empty).
    pub conversations: Vec<String>,
    /// The judge's rubric for every imported case: what the right behaviour is.
    pub rubric: Option<String>,
    /// Replace personal data and secrets by placeholders ([`redact`]).
    pub redact: bool,
    /// The bundle's tools, when `--bundle` names one: recorded arguments are checked against
    /// their schemas, and a call a schema rejects is reported as drift.
    pub tools: Option<Vec<ToolDef>>,
    /// The bundle's judge, when known: `Some(None)` none, `Some(Some(has_default_rubric))`.
    /// The cases are checked against it as `evalgate check` would.
    pub judge: Option<Option<bool>>,
}

/// A problem with the input, at its file and line (and column, where known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub file: String,
    pub line: Option<u64>,
    pub col: Option<u64>,
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.col) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: error: {}", self.file, self.message),
            (Some(l), None) => write!(f, "{}:{l}: error: {}", self.file, self.message),
            _ => write!(f, "{}: error: {}", self.file, self.message),
        }
    }
}

/// Where a line is: how errors name it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At<'a> {
    pub file: &'a str,
    pub line: u64,
}

impl At<'_> {
    pub fn error(&self, message: impl Into<String>) -> InputError {
        InputError { file: self.file.to_owned(), line: Some(self.line), col: None, message: message.into() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Msg {
    pub role: Role,
    pub text: String,
}

/// One recorded tool call. Parts may be missing in OTLP (arguments and results are opt-in
/// there) and are merged from every span that names the call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    pub id: String,
    pub tool: Option<String>,
    /// The arguments (an object) and the result, kept as compact JSON text: a tree of values
    /// takes several times the memory, and a conversation may hold thousands of calls.
    pub args: Option<Json>,
    pub result: Option<Json>,
    pub status: CallStatus,
    /// The order calls were made in.
    pub seq: u64,
}

/// A JSON value kept as its compact text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Json(Box<str>);

impl Json {
    pub fn of(v: &Value) -> Json {
        Json(serde_json::to_string(v).unwrap_or_else(|_| "null".into()).into_boxed_str())
    }

    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// The object it holds (empty when it holds something else).
    pub fn object(&self) -> Map<String, Value> {
        serde_json::from_str(&self.0).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// How a conversation is known: by its id, or (OTLP spans without `gen_ai.conversation.id`)
/// by its trace until a span of the trace names the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Key {
    Id(String),
    Trace(String),
}

/// What is kept of one conversation while the input streams by.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conversation {
    pub id: String,
    pub first_seen: u64,
    /// The earliest time recorded: nanoseconds and how to write it.
    pub time: Option<(i128, String)>,
    pub messages: Vec<Msg>,
    /// OTLP: (start, end, order) of the model call whose history `messages` is; a later call's
    /// history replaces it.
    pub messages_from: Option<(u64, u64, u64)>,
    pub calls: Vec<Call>,
    pub call_ids: HashMap<String, usize>,
    pub events: usize,
    pub bytes: usize,
    /// Over a limit: reported once, nothing more kept.
    pub dropped: bool,
}

impl Conversation {
    fn note_time(&mut self, nanos: i128, text: impl FnOnce() -> String) {
        if self.time.as_ref().is_none_or(|(t, _)| nanos < *t) {
            self.time = Some((nanos, text()));
        }
    }

    fn messages_bytes(&self) -> usize {
        self.messages.iter().map(|m| m.text.len()).sum()
    }

    /// Adds or completes the call with this id; what is already known is kept.
    fn merge_call(&mut self, call: Call) -> usize {
        let added = call_bytes(&call);
        match self.call_ids.get(&call.id) {
            Some(&i) => {
                let c = &mut self.calls[i];
                let before = call_bytes(c);
                if c.tool.is_none() {
                    c.tool = call.tool;
                }
                if c.args.is_none() {
                    c.args = call.args;
                }
                if c.result.is_none() {
                    c.result = call.result;
                }
                if c.status == CallStatus::Ok {
                    c.status = call.status;
                }
                call_bytes(c).saturating_sub(before)
            }
            None => {
                self.call_ids.insert(call.id.clone(), self.calls.len());
                self.calls.push(call);
                added
            }
        }
    }

    /// Takes in another record of the same conversation (a trace that turned out to be it).
    fn absorb(&mut self, other: Conversation) {
        self.first_seen = self.first_seen.min(other.first_seen);
        if let Some((t, text)) = other.time {
            self.note_time(t, || text);
        }
        if other.messages_from > self.messages_from {
            self.messages = other.messages;
            self.messages_from = other.messages_from;
        }
        let mut calls = other.calls;
        calls.sort_by_key(|c| c.seq);
        for c in calls {
            self.merge_call(c);
        }
        self.calls.sort_by_key(|c| c.seq);
        self.call_ids = self.calls.iter().enumerate().map(|(i, c)| (c.id.clone(), i)).collect();
        self.events += other.events;
        self.bytes += other.bytes;
        self.dropped |= other.dropped;
    }
}

fn call_bytes(c: &Call) -> usize {
    c.id.len()
        + c.tool.as_ref().map_or(0, String::len)
        + c.args.as_ref().map_or(0, Json::len)
        + c.result.as_ref().map_or(0, Json::len)
}

/// Errors kept to show; the rest are counted.
const MAX_SHOWN_ERRORS: usize = 100;

/// Reads the inputs one after the other and keeps each conversation's state.
pub struct Importer {
    opts: Options,
    filter: Option<HashSet<String>>,
    convs: HashMap<Key, Conversation>,
    /// OTLP: trace id → the conversation a span of it named.
    traces: HashMap<String, String>,
    seq: u64,
    errors: Vec<InputError>,
    more_errors: u64,
    /// A limit of the whole run was reached: reading stops.
    stopped: bool,
    redactor: Option<redact::Redactor>,
    retained: usize,
}

/// What an import made: the cases in the order their conversations first appeared, and what
/// to tell the user about.
#[derive(Debug, Clone)]
pub struct Imported {
    pub cases: Vec<ImportedCase>,
    /// Recorded calls the bundle's schemas reject, with conversation and call id.
    pub drift: Vec<String>,
    /// Conversations that gave no case, and why.
    pub skipped: Vec<String>,
    pub redacted: Option<redact::Summary>,
}

/// Why nothing can be written: every input problem found (those past the first hundred only
/// counted).
#[derive(Debug, Clone)]
pub struct Failed {
    pub errors: Vec<InputError>,
    pub more: u64,
}

impl Importer {
    pub fn new(opts: Options) -> Self {
        let filter = (!opts.conversations.is_empty()).then(|| opts.conversations.iter().cloned().collect());
        let redactor = opts.redact.then(redact::Redactor::new);
        Importer {
            opts,
            filter,
            convs: HashMap::new(),
            traces: HashMap::new(),
            seq: 0,
            errors: Vec::new(),
            more_errors: 0,
            stopped: false,
            redactor,
            retained: 0,
        }
    }

    pub(crate) fn error(&mut self, e: InputError) {
        if self.errors.len() < MAX_SHOWN_ERRORS {
            self.errors.push(e);
        } else {
            self.more_errors += 1;
        }
    }

    /// A limit of the whole run: reported, and nothing more is read.
    fn stop(&mut self, e: InputError) {
        self.error(e);
        self.stopped = true;
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Reads one input to its end (or to a limit). `name` is how errors name it (the path as
    /// given, `-` for standard input). Fails only when the input cannot be read at all.
    pub fn read(&mut self, name: &str, reader: &mut dyn BufRead) -> std::io::Result<()> {
        let mut buf = Vec::new();
        let mut line_no: u64 = 0;
        let mut total: u64 = 0;
        while !self.stopped {
            line_no += 1;
            let at = At { file: name, line: line_no };
            let Some(Line { len, kept, .. }) = read_line(reader, &mut buf, MAX_IMPORT_LINE_BYTES)? else { break };
            total += len as u64 + 1;
            if total > MAX_IMPORT_FILE_BYTES + 1 {
                self.stop(InputError {
                    file: name.to_owned(),
                    line: None,
                    col: None,
                    message: format!("is over the limit of {MAX_IMPORT_FILE_BYTES} bytes"),
                });
                break;
            }
            if !kept {
                self.error(at.error(format!("line is {len} bytes, over the limit of {MAX_IMPORT_LINE_BYTES} bytes")));
                continue;
            }
            let mut line: &[u8] = &buf;
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.read_event(at, line);
        }
        Ok(())
    }

    fn read_event(&mut self, at: At<'_>, line: &[u8]) {
        let mut raw: RawLine = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                self.error(json_error(at, &e));
                return;
            }
        };
        match raw.resource_spans.take() {
            Some(spans) => otlp::read(self, at, spans),
            None if raw.kind.is_some() => events::read(self, at, raw),
            None => self.error(
                at.error("neither an event of the log (no `type`) nor an OTLP/JSON export (no `resourceSpans`)"),
            ),
        }
    }

    /// Whether the conversation is one to import (the filter), as far as can be told now.
    fn wanted(&self, key: &Key) -> bool {
        match (&self.filter, key) {
            (None, _) => true,
            (Some(f), Key::Id(id)) => f.contains(id),
            (Some(f), Key::Trace(t)) => f.contains(t),
        }
    }

    /// The state of a conversation to add to, created on first sight; `None` when it is not
    /// imported (filtered out, or over a limit).
    pub(crate) fn conversation(&mut self, at: At<'_>, key: Key) -> Option<&mut Conversation> {
        if self.stopped || !self.wanted(&key) {
            return None;
        }
        if !self.convs.contains_key(&key) {
            if self.convs.len() >= MAX_CASES {
                self.stop(at.error(format!(
                    "more than {MAX_CASES} conversations, over the limit of cases in a golden set; import fewer with --conversation"
                )));
                return None;
            }
            let id = match &key {
                Key::Id(id) | Key::Trace(id) => id.clone(),
            };
            let first_seen = self.next_seq();
            self.convs.insert(key.clone(), Conversation { id, first_seen, ..Conversation::default() });
        }
        let c = self.convs.get_mut(&key).expect("inserted above");
        if c.dropped {
            return None;
        }
        c.events += 1;
        if c.events > MAX_IMPORT_EVENTS_PER_CONVERSATION {
            c.dropped = true;
            let id = c.id.clone();
            self.error(at.error(format!(
                "conversation `{id}` has more than {MAX_IMPORT_EVENTS_PER_CONVERSATION} events, over the limit"
            )));
            return None;
        }
        self.convs.get_mut(&key)
    }

    /// Counts bytes kept; past the limit of `cases.jsonl` the run stops.
    pub(crate) fn retain(&mut self, at: At<'_>, key: &Key, bytes: usize) {
        self.retained += bytes;
        if let Some(c) = self.convs.get_mut(key) {
            c.bytes += bytes;
        }
        if self.retained as u64 > MAX_CASES_FILE_BYTES {
            self.stop(at.error(format!(
                "the conversations read so far hold more than the {MAX_CASES_FILE_BYTES} bytes a cases.jsonl may have; import fewer with --conversation"
            )));
        }
    }

    pub(crate) fn release(&mut self, key: &Key, bytes: usize) {
        self.retained = self.retained.saturating_sub(bytes);
        if let Some(c) = self.convs.get_mut(key) {
            c.bytes = c.bytes.saturating_sub(bytes);
        }
    }

    /// A text within the limit, redacted when asked; `None` (and an error) when over it.
    pub(crate) fn text(&mut self, at: At<'_>, what: &str, text: String) -> Option<String> {
        if text.len() > MAX_IMPORT_TEXT_BYTES {
            self.error(
                at.error(format!("{what} is {} bytes, over the limit of {MAX_IMPORT_TEXT_BYTES} bytes", text.len())),
            );
            return None;
        }
        Some(match &mut self.redactor {
            Some(r) => r.text(&text).unwrap_or(text),
            None => text,
        })
    }

    /// A JSON value (arguments, a result) within the limit, redacted when asked.
    pub(crate) fn value(&mut self, at: At<'_>, what: &str, mut v: Value) -> Option<Value> {
        let len = serde_json::to_string(&v).map_or(0, |s| s.len());
        if len > MAX_IMPORT_TEXT_BYTES {
            self.error(
                at.error(format!("{what} is {len} bytes of JSON, over the limit of {MAX_IMPORT_TEXT_BYTES} bytes")),
            );
            return None;
        }
        if let Some(r) = &mut self.redactor {
            r.value(&mut v);
        }
        Some(v)
    }

    pub(crate) fn trace_conversation(&self, trace: &str) -> Option<&String> {
        self.traces.get(trace)
    }

    pub(crate) fn learn_trace(&mut self, trace: &str, conversation: &str) {
        if !self.traces.contains_key(trace) {
            self.traces.insert(trace.to_owned(), conversation.to_owned());
        }
    }

    /// Every conversation read, made into cases; or every input problem found.
    pub fn finish(mut self) -> Result<Imported, Failed> {
        // Spans first seen under their trace join the conversation a later span named.
        let keys: Vec<Key> = self.convs.keys().filter(|k| matches!(k, Key::Trace(_))).cloned().collect();
        for key in keys {
            let Key::Trace(t) = &key else { continue };
            let Some(id) = self.traces.get(t).cloned() else { continue };
            let Some(c) = self.convs.remove(&key) else { continue };
            let target = Key::Id(id.clone());
            if !self.wanted(&target) {
                continue;
            }
            match self.convs.get_mut(&target) {
                Some(existing) => existing.absorb(c),
                None => {
                    self.convs.insert(target, Conversation { id, ..c });
                }
            }
        }
        if let Some(filter) = &self.filter {
            let found: HashSet<&str> = self.convs.values().map(|c| c.id.as_str()).collect();
            let mut missing: Vec<&String> = filter.iter().filter(|id| !found.contains(id.as_str())).collect();
            missing.sort();
            for id in missing {
                let e = InputError {
                    file: "--conversation".to_owned(),
                    line: None,
                    col: None,
                    message: format!("no conversation `{id}` in the input"),
                };
                self.errors.push(e);
            }
        }
        if !self.errors.is_empty() {
            return Err(Failed { errors: self.errors, more: self.more_errors });
        }
        let mut convs: Vec<Conversation> = self.convs.into_values().collect();
        convs.sort_by_key(|c| c.first_seen);
        let mut out = Imported { cases: Vec::new(), drift: Vec::new(), skipped: Vec::new(), redacted: None };
        let mut errors = Vec::new();
        let mut ids: HashMap<String, String> = HashMap::new();
        for c in convs {
            match build::case(&c, &self.opts, self.redactor.as_mut(), &mut out.drift) {
                Ok(Some(case)) => {
                    if let Some(other) = ids.insert(case.id.clone(), c.id.clone()) {
                        errors.push(InputError {
                            file: "input".into(),
                            line: None,
                            col: None,
                            message: format!(
                                "conversations `{other}` and `{}` both give case id `{}`",
                                case.conversation, case.id
                            ),
                        });
                    }
                    out.cases.push(case);
                }
                Ok(None) => out.skipped.push(format!("conversation `{}`: no user message, so no case", c.id)),
                Err(message) => errors.push(InputError {
                    file: "input".into(),
                    line: None,
                    col: None,
                    message: format!("conversation `{}`: {message}", c.id),
                }),
            }
        }
        if !errors.is_empty() {
            return Err(Failed { errors, more: 0 });
        }
        out.redacted = self.redactor.as_ref().map(redact::Redactor::summary);
        Ok(out)
    }
}

/// One line as read by [`read_line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Line {
    /// Its length in bytes, without the `\n`.
    pub len: usize,
    /// Whether its bytes are in the buffer (false when it was over the limit: then they were
    /// skipped, not kept).
    pub kept: bool,
    /// Whether a `\n` ended it (the last line of a file may lack one).
    pub newline: bool,
}

/// One line into `buf` (without its `\n`), never holding more than `max` bytes of it; `None`
/// at the end of the input.
pub(crate) fn read_line(r: &mut dyn BufRead, buf: &mut Vec<u8>, max: usize) -> std::io::Result<Option<Line>> {
    buf.clear();
    let mut len = 0usize;
    let mut any = false;
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            return Ok(any.then_some(Line { len, kept: len <= max, newline: false }));
        }
        any = true;
        let (chunk, done) = match memchr(b'\n', avail) {
            Some(i) => (&avail[..i], Some(i + 1)),
            None => (avail, None),
        };
        len += chunk.len();
        if len <= max {
            buf.extend_from_slice(chunk);
        } else {
            buf.clear();
        }
        let consumed = done.unwrap_or(chunk.len());
        r.consume(consumed);
        if done.is_some() {
            return Ok(Some(Line { len, kept: len <= max, newline: true }));
        }
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// A JSON error at its line, with serde_json's column and without its own position suffix.
pub(crate) fn json_error(at: At<'_>, e: &serde_json::Error) -> InputError {
    let text = e.to_string();
    let message = match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    };
    let message = match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => format!("invalid JSON: {message}"),
        _ => message,
    };
    InputError {
        file: at.file.to_owned(),
        line: Some(at.line),
        col: (e.column() > 0).then_some(e.column() as u64),
        message,
    }
}

/// One line of input as read: the fields of both shapes (unknown fields are ignored; these
/// are other systems' formats, and a field the reader does not use is no reason to refuse a
/// line).
#[derive(serde::Deserialize)]
pub(crate) struct RawLine {
    #[serde(rename = "resourceSpans")]
    pub resource_spans: Option<Vec<otlp::ResourceSpans>>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub conversation: Option<String>,
    pub role: Option<String>,
    pub content: Option<String>,
    pub at: Option<String>,
    pub id: Option<String>,
    pub tool: Option<String>,
    pub args: Option<Value>,
    pub result: Option<Value>,
    #[serde(rename = "startedAt")]
    pub started_at: Option<String>,
    #[serde(rename = "endedAt")]
    pub ended_at: Option<String>,
    pub status: Option<String>,
    // Read so that a value of the wrong type is an error; a case has no use for them.
    #[serde(rename = "tokensIn")]
    #[allow(dead_code)]
    pub tokens_in: Option<u64>,
    #[serde(rename = "tokensOut")]
    #[allow(dead_code)]
    pub tokens_out: Option<u64>,
    #[serde(rename = "spanId")]
    #[allow(dead_code)]
    pub span_id: Option<String>,
}
