//! Property tests: whatever bytes arrive, the YAML and JSON parsers and the loaders built on
//! them return values or errors — they never panic. Run longer with `PROPTEST_CASES=N`.

use evaluators::config::RepoConfig;
use evaluators::diagnostic::Diagnostics;
use evaluators::parse::{json, yaml};
use evaluators::repo::{ReadError, RepoFs, RepoPath};
use proptest::prelude::*;
use std::collections::HashMap;
use std::io::Read;

/// An in-memory repository, so thousands of inputs run without touching the disk.
struct MemFs(HashMap<String, Vec<u8>>);

impl RepoFs for MemFs {
    fn open(&self, path: &RepoPath, max_bytes: u64) -> Result<Box<dyn Read + '_>, ReadError> {
        let bytes = self.0.get(path.as_str()).ok_or(ReadError::NotFound)?;
        if bytes.len() as u64 > max_bytes {
            return Err(ReadError::TooLarge { size: bytes.len() as u64, limit: max_bytes });
        }
        Ok(Box::new(bytes.as_slice()))
    }
}

const BUNDLE: &str = "bundle: demo\nversion: \"1\"\nmodel: {provider: anthropic, snapshot: claude-opus-4-6, params: {temperature: 0}}\nprompt: p.md\ntools: t.yaml\neval:\n  golden_set: g\n  golden_set_sha256: \"sha256:00\"\n  judge: {provider: openai, snapshot: gpt-4o-2024-08-06, rubric: p.md, samples: 3}\n  gate: {max_regression_rate: 0.01, critical_tags: [critical]}\n";
const TOOLS: &str = "- name: lookup\n  description: d\n  input_schema: {type: object, properties: {id: {type: string}}, required: [id]}\n";
const CASE: &str = r#"{"id": "a", "input": {"messages": [{"role": "user", "content": "hi"}]}, "tool_results": {"lookup": {"x": [1, 2.5, null, true]}}, "checks": [{"type": "tool_called", "tool": "lookup", "args": {"id": "1"}}, {"type": "regex", "pattern": "h.*"}, {"type": "judge"}], "label": "pass", "tags": ["critical"]}"#;

/// A valid text with a few random edits: inserted, deleted or replaced characters.
fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "{", "}", "[", "]", ":", ",", "\"", "'", "\n", " ", "-", "&a", "*a", "!!str", "#", "\\", "\t", "é", "0",
        "null", "\u{0}", "|", ">",
    ]);
    prop::collection::vec((any::<prop::sample::Index>(), pieces, 0usize..3), 1..6).prop_map(move |edits| {
        let mut chars: Vec<char> = base.chars().collect();
        for (at, piece, op) in edits {
            let i = at.index(chars.len() + 1);
            match op {
                0 => {
                    for (k, c) in piece.chars().enumerate() {
                        chars.insert((i + k).min(chars.len()), c);
                    }
                }
                1 if i < chars.len() => {
                    chars.remove(i);
                }
                _ if i < chars.len() => chars[i] = piece.chars().next().unwrap_or(' '),
                _ => {}
            }
        }
        chars.into_iter().collect()
    })
}

fn load_repo(bundle: &str, tools: &str, cases: &str) {
    let mut files = HashMap::new();
    files.insert("a/bundle.yaml".to_owned(), bundle.as_bytes().to_vec());
    files.insert("a/p.md".to_owned(), b"## Policy\ncall lookup(id)\n".to_vec());
    files.insert("a/t.yaml".to_owned(), tools.as_bytes().to_vec());
    files.insert("a/g/golden.yaml".to_owned(), b"name: g\nversion: 1\n".to_vec());
    files.insert("a/g/cases.jsonl".to_owned(), cases.as_bytes().to_vec());
    let fs = MemFs(files);
    let mut diags = Diagnostics::new();
    let manifest = RepoPath::parse("a/bundle.yaml").unwrap();
    let _ = evaluators::workspace::load_bundle(&fs, &RepoConfig::default(), &manifest, &mut diags);
    for d in diags.iter() {
        // Every diagnostic names a file and, when it has a position, a real one.
        assert!(!d.file.is_empty());
        if let Some(p) = d.pos {
            assert!(p.line >= 1 && p.col >= 1, "{d}");
        }
    }
}

proptest! {
    #[test]
    fn yaml_parser_never_panics_on_any_text(s in any::<String>()) {
        let _ = yaml::parse(&s);
    }

    #[test]
    fn json_parser_never_panics_on_any_text(s in any::<String>()) {
        let _ = json::parse(&s);
    }

    #[test]
    fn yaml_parser_never_panics_on_near_valid_bundles(s in mutated(BUNDLE)) {
        let _ = yaml::parse(&s);
    }

    #[test]
    fn json_parser_never_panics_on_near_valid_cases(s in mutated(CASE)) {
        let _ = json::parse(&s);
    }

    #[test]
    fn bundle_loading_never_panics_on_broken_bundles(s in mutated(BUNDLE)) {
        load_repo(&s, TOOLS, CASE);
    }

    #[test]
    fn bundle_loading_never_panics_on_broken_tools(s in mutated(TOOLS)) {
        load_repo(BUNDLE, &s, CASE);
    }

    #[test]
    fn golden_loading_never_panics_on_broken_cases(lines in prop::collection::vec(mutated(CASE), 1..4)) {
        load_repo(BUNDLE, TOOLS, &lines.join("\n"));
    }
}
