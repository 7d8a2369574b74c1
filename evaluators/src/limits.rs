//! Limits on what evalgate reads. Every input is bounded before it is read, so a hostile or
//! mistaken file yields a clear error, never an out-of-memory or a stack overflow.

/// A prompt or a rubric (SPEC).
pub const MAX_TEXT_FILE_BYTES: u64 = 1024 * 1024;
/// `bundle.yaml`, `tools.yaml`, `golden.yaml`, `.evalgate.yml`.
pub const MAX_YAML_FILE_BYTES: u64 = 1024 * 1024;
/// One line of `cases.jsonl` (SPEC).
pub const MAX_CASE_LINE_BYTES: usize = 1024 * 1024;
/// The whole of `cases.jsonl` (SPEC).
pub const MAX_CASES_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// Cases in one golden set (SPEC).
pub const MAX_CASES: usize = 100_000;
/// Checks on one case.
pub const MAX_CHECKS_PER_CASE: usize = 100;
/// Messages in one case's input.
pub const MAX_MESSAGES_PER_CASE: usize = 1_000;
/// Entries of one tool's fixture in the list form (`tool_results.<tool>: [{args, result}, …]`).
pub const MAX_FIXTURE_ENTRIES: usize = 1_000;
/// Tools in one bundle (the most that the providers accept in one request).
pub const MAX_TOOLS: usize = 128;
/// Nesting of mappings and lists in any YAML or JSON input.
pub const MAX_DEPTH: usize = 64;
/// Values in one YAML file, counting what aliases expand to.
pub const MAX_NODES: usize = 1_000_000;
/// Bundles found under one path.
pub const MAX_BUNDLES: usize = 10_000;
/// Agent turns a bundle may allow.
pub const MAX_TURNS: u32 = 100;
/// Samples per case, and judge votes per output.
pub const MAX_SAMPLES: u32 = 25;
/// One input of `evalgate golden import` (a file of events or traces).
pub const MAX_IMPORT_FILE_BYTES: u64 = 16 * 1024 * 1024 * 1024;
/// One line of such an input: an event, or one OTLP/JSON export of spans.
pub const MAX_IMPORT_LINE_BYTES: usize = 16 * 1024 * 1024;
/// One message's text, one call's arguments or one call's result (as JSON) in such an input.
pub const MAX_IMPORT_TEXT_BYTES: usize = 256 * 1024;
/// Events (messages, tool calls, spans) of one imported conversation.
pub const MAX_IMPORT_EVENTS_PER_CONVERSATION: usize = 2_000;
