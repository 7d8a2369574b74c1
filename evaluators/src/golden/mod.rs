//! Golden sets: a folder with `golden.yaml` and `cases.jsonl`, pinned by a hash.

pub mod case;
pub mod check;

pub use case::{CallStatus, Case, Fixture, FixtureEntry, Label, Message, Role};
pub use check::Check;

use crate::canonical::{CanonicalHasher, GOLDEN_SET_DOMAIN, HashingReader};
use crate::decode;
use crate::diagnostic::{Diagnostics, FileDiags, Pos};
use crate::ids::{CaseId, Sha256, ToolName};
use crate::limits::{MAX_CASE_LINE_BYTES, MAX_CASES, MAX_CASES_FILE_BYTES, MAX_YAML_FILE_BYTES};
use crate::parse;
use crate::repo::{RepoFs, RepoPath};
use crate::tools::ToolDef;
use crate::tree::Kind;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};

pub const META_NAME: &str = "golden.yaml";
pub const CASES_NAME: &str = "cases.jsonl";

#[derive(Debug, Clone, PartialEq)]
pub struct GoldenSet {
    pub dir: RepoPath,
    pub name: String,
    pub version: String,
    pub description: Option<String>,
    pub cases: Vec<Case>,
    /// The canonical hash of `golden.yaml` and `cases.jsonl` (see [`crate::canonical`]).
    pub pin: Sha256,
}

/// What a golden set is checked against when read for a bundle: its tools (names and
/// schemas) and whether a judge, and a default rubric, are configured.
pub struct GoldenContext<'a> {
    /// `None` when the bundle's tools could not be read (then tool names are not checked).
    tools: Option<&'a [ToolDef]>,
    /// `Some(None)`: no judge configured. `Some(Some(true))`: a judge with a default rubric.
    /// `None`: unknown (the bundle's `eval.judge` could not be read).
    judge: Option<Option<bool>>,
    /// Validators of each tool's schema without `required`, for `tool_called` args subsets.
    partial: HashMap<&'a str, jsonschema::Validator>,
}

impl<'a> GoldenContext<'a> {
    pub fn new(tools: Option<&'a [ToolDef]>, judge: Option<Option<bool>>) -> Self {
        let partial = tools
            .unwrap_or_default()
            .iter()
            .filter_map(|t| {
                let mut schema = t.input_schema.clone();
                if let Some(o) = schema.as_object_mut() {
                    o.remove("required");
                }
                jsonschema::draft202012::new(&schema).ok().map(|v| (t.name.as_str(), v))
            })
            .collect();
        GoldenContext { tools, judge, partial }
    }

    fn require_tool(&self, d: &mut FileDiags, pos: Pos, tool: &ToolName) -> Option<()> {
        let Some(tools) = self.tools else { return Some(()) };
        if tools.iter().any(|t| &t.name == tool) {
            return Some(());
        }
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        let hint = if names.is_empty() {
            "the bundle declares no tools".to_owned()
        } else {
            decode::suggestion(tool.as_str(), &names)
        };
        d.at(pos, format!("tool `{tool}` is not in the bundle's tools; {hint}"));
        None
    }

    fn check_partial_args(
        &self,
        d: &mut FileDiags,
        pos: Pos,
        tool: &ToolName,
        args: &serde_json::Map<String, serde_json::Value>,
    ) -> Option<()> {
        // No schema to check against (the bundle's tools are unknown): nothing is wrong.
        let Some(validator) = self.partial.get(tool.as_str()) else { return Some(()) };
        let value = serde_json::Value::Object(args.clone());
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() { e.to_string() } else { format!("{at}: {e}") }
            })
            .collect();
        if errors.is_empty() {
            Some(())
        } else {
            d.at(pos, format!("`args` are not valid under `{tool}`'s input_schema: {}", errors.join("; ")));
            None
        }
    }

    fn require_judge(&self, d: &mut FileDiags, pos: Pos, has_rubric: bool) -> Option<()> {
        let Some(judge) = self.judge else { return Some(()) };
        match judge {
            None => {
                d.at(pos, "a `judge` check needs `eval.judge` in the bundle");
                None
            }
            Some(false) if !has_rubric => {
                d.at(pos, "this `judge` check gives no `rubric` and the bundle's judge has no default `rubric`");
                None
            }
            Some(_) => Some(()),
        }
    }
}

const META: &[&str] = &["name", "version", "description"];

/// Reads and checks a golden set, reporting every problem. `ctx` is the bundle it is read for
/// (tool names and schemas, the judge); without one only the set itself is checked.
pub fn load(
    fs: &dyn RepoFs,
    dir: &RepoPath,
    ctx: Option<&GoldenContext>,
    diags: &mut Diagnostics,
) -> Option<GoldenSet> {
    let before = diags.len();
    let meta_path = dir.join(META_NAME).ok()?;
    let cases_path = dir.join(CASES_NAME).ok()?;
    let mut hasher = CanonicalHasher::new(GOLDEN_SET_DOMAIN, dir);

    let meta_file = meta_path.as_str().to_owned();
    let mut d = FileDiags::new(&meta_file, diags);
    let meta = match fs.read(&meta_path, MAX_YAML_FILE_BYTES) {
        Ok(bytes) => {
            hasher.add_bytes(&meta_path, &bytes);
            decode_meta(&mut d, &bytes)
        }
        Err(e) => {
            d.whole(format!("{META_NAME} {e}"));
            None
        }
    };

    let cases_file = cases_path.as_str().to_owned();
    let mut d = FileDiags::new(&cases_file, diags);
    let cases = match fs.open(&cases_path, MAX_CASES_FILE_BYTES) {
        Ok(reader) => {
            let mut reader = HashingReader::new(reader);
            let cases = read_cases(&mut d, &mut reader, ctx);
            hasher.add(&cases_path, reader.finish());
            cases
        }
        Err(e) => {
            d.whole(format!("{CASES_NAME} {e}"));
            None
        }
    };
    let (name, version, description) = meta?;
    let set = GoldenSet { dir: dir.clone(), name, version, description, cases: cases?, pin: hasher.finish() };
    (diags.len() == before).then_some(set)
}

/// The pin of the golden set in `dir`, from its bytes alone (valid or not).
pub fn pin(fs: &dyn RepoFs, dir: &RepoPath) -> Result<Sha256, String> {
    let mut hasher = CanonicalHasher::new(GOLDEN_SET_DOMAIN, dir);
    for name in [META_NAME, CASES_NAME] {
        let path = dir.join(name)?;
        let limit = if name == CASES_NAME { MAX_CASES_FILE_BYTES } else { MAX_YAML_FILE_BYTES };
        let mut reader = HashingReader::new(fs.open(&path, limit).map_err(|e| format!("{path} {e}"))?);
        std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| format!("{path} cannot be read: {e}"))?;
        hasher.add(&path, reader.finish());
    }
    Ok(hasher.finish())
}

fn decode_meta(d: &mut FileDiags, bytes: &[u8]) -> Option<(String, String, Option<String>)> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        d.whole("is not UTF-8 text");
        return None;
    };
    let root = parse::yaml::parse(text).map_err(|e| d.at(e.pos, e.message)).ok()?;
    let f = decode::mapping(d, &root, "", META)?;
    let name = f.require(d, "name", "").and_then(|n| decode::nonempty_string(d, n, "name"));
    let version = f.require(d, "version", "").and_then(|n| match &n.kind {
        Kind::Int(i) => Some(i.to_string()),
        Kind::Str(s) if !s.trim().is_empty() => Some(s.clone()),
        _ => {
            d.at(n.pos, format!("`version` must be a whole number or a string, found {}", n.kind_name()));
            None
        }
    });
    let description = match f.get("description") {
        Some(n) => Some(decode::string(d, n, "description")?),
        None => None,
    };
    Some((name?, version?, description))
}

/// Reads `cases.jsonl` line by line, never holding more than one line over the limit.
fn read_cases(d: &mut FileDiags, reader: &mut dyn Read, ctx: Option<&GoldenContext>) -> Option<Vec<Case>> {
    let before = d.count();
    let mut lines = BufReader::with_capacity(64 * 1024, reader);
    let mut buf = Vec::new();
    let mut cases: Vec<Case> = Vec::new();
    let mut seen: HashMap<CaseId, u32> = HashMap::new();
    let mut line_no: u32 = 0;
    let mut over_count = false;
    loop {
        line_no += 1;
        let line = match read_bounded_line(&mut lines, &mut buf, MAX_CASE_LINE_BYTES) {
            Ok(Line::Eof) => break,
            Ok(Line::TooLong(n)) => {
                d.at(Pos::new(line_no, 1), format!("line is {n} bytes, over the limit of {MAX_CASE_LINE_BYTES} bytes"));
                continue;
            }
            Ok(Line::Text) => &buf,
            Err(e) => {
                d.whole(format!("cannot be read: {e}"));
                return None;
            }
        };
        if over_count {
            continue; // keep reading, so the file is hashed whole
        }
        let Ok(text) = std::str::from_utf8(line) else {
            d.at(Pos::new(line_no, 1), "line is not UTF-8 text");
            continue;
        };
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.trim().is_empty() {
            continue;
        }
        let node = match parse::json::parse_at(text, line_no) {
            Ok(n) => n,
            Err(e) => {
                d.at(e.pos, e.message);
                continue;
            }
        };
        let id_node = node.get("id").cloned();
        if let Some(case) = case::decode(d, &node, ctx) {
            if let Some(first) = seen.get(&case.id) {
                let pos = id_node.map_or(Pos::new(line_no, 1), |n| n.pos);
                d.at(pos, format!("duplicate case id `{}` (first at line {first})", case.id));
                continue;
            }
            seen.insert(case.id.clone(), line_no);
            cases.push(case);
            if cases.len() > MAX_CASES {
                d.at(Pos::new(line_no, 1), format!("more than {MAX_CASES} cases, over the limit"));
                over_count = true;
            }
        }
    }
    if cases.is_empty() && d.count() == before {
        d.whole("has no cases");
    }
    (d.count() == before).then_some(cases)
}

enum Line {
    Text,
    TooLong(usize),
    Eof,
}

/// One line (without its `\n`) into `buf`, or its length if it exceeds `max` (then its bytes
/// are skipped, not kept).
fn read_bounded_line(r: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> std::io::Result<Line> {
    buf.clear();
    let mut len = 0usize;
    let mut any = false;
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            return Ok(match (any, len > max) {
                (false, _) => Line::Eof,
                (true, true) => Line::TooLong(len),
                (true, false) => Line::Text,
            });
        }
        any = true;
        let (chunk, done) = match avail.iter().position(|&b| b == b'\n') {
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
            return Ok(if len > max { Line::TooLong(len) } else { Line::Text });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_lines_skip_overlong_lines_without_keeping_them() {
        let data = format!("short\n{}\nafter", "x".repeat(100));
        let mut r = BufReader::with_capacity(8, data.as_bytes());
        let mut buf = Vec::new();
        assert!(matches!(read_bounded_line(&mut r, &mut buf, 10).unwrap(), Line::Text));
        assert_eq!(buf, b"short");
        assert!(matches!(read_bounded_line(&mut r, &mut buf, 10).unwrap(), Line::TooLong(100)));
        assert!(buf.len() <= 10);
        assert!(matches!(read_bounded_line(&mut r, &mut buf, 10).unwrap(), Line::Text));
        assert_eq!(buf, b"after");
        assert!(matches!(read_bounded_line(&mut r, &mut buf, 10).unwrap(), Line::Eof));
    }
}
