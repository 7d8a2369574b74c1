//! `evalgate check`: the valid example passes, and a corpus of broken inputs each yields
//! exactly the expected errors, at the exact file, line and column.

mod support;

use support::{Repo, TOOLS_YAML};

/// One broken input: what to change in the valid demo repository, and every error expected.
struct Broken {
    name: &'static str,
    /// (file, text to find, replacement): the first occurrence is replaced.
    patches: &'static [(&'static str, &'static str, &'static str)],
    /// Re-pin the golden set after patching (for cases about a golden set's content).
    repin: bool,
    /// (file, line, column, message substring) — exactly these errors, no others.
    expect: &'static [(&'static str, u32, u32, &'static str)],
}

const B: &str = "agent/bundle.yaml";
const T: &str = "agent/tools.yaml";
const P: &str = "agent/prompt.md";
const C: &str = "golden/cases.jsonl";
const G: &str = "golden/golden.yaml";
const CFG: &str = ".evalgate.yml";

const CORPUS: &[Broken] = &[
    // bundle.yaml: keys and values
    Broken {
        name: "unknown top-level key suggests the nearest",
        patches: &[(B, "metadata:", "metdata:")],
        repin: false,
        expect: &[(B, 23, 1, "unknown key `metdata`; did you mean `metadata`?")],
    },
    Broken {
        name: "unknown nested key names its path",
        patches: &[(B, "    samples: 3", "    sample: 3")],
        repin: false,
        expect: &[(B, 18, 5, "unknown key `eval.judge.sample`; did you mean `samples`?")],
    },
    Broken {
        name: "missing bundle name",
        patches: &[(B, "bundle: demo\n", "")],
        repin: false,
        expect: &[(B, 1, 1, "missing required key `bundle`")],
    },
    Broken {
        name: "bundle name with capitals and underscore",
        patches: &[(B, "bundle: demo", "bundle: Demo_Agent")],
        repin: false,
        expect: &[(B, 1, 9, "bundle name `Demo_Agent` is not valid")],
    },
    Broken {
        name: "unquoted version is a number, not a string",
        patches: &[(B, "version: \"1.0\"", "version: 1.0")],
        repin: false,
        expect: &[(B, 2, 10, "`version` must be a string, found a number (quote it")],
    },
    Broken {
        name: "unknown provider",
        patches: &[(B, "provider: anthropic", "provider: antropic")],
        repin: false,
        expect: &[(B, 4, 13, "unknown provider `antropic` in `model.provider`; did you mean `anthropic`?")],
    },
    Broken {
        name: "latest alias is not a pin",
        patches: &[(B, "claude-sonnet-4-5-20250929", "claude-3-5-sonnet-latest")],
        repin: false,
        expect: &[(B, 5, 13, "`claude-3-5-sonnet-latest` is a moving alias")],
    },
    Broken {
        name: "undated anthropic 4.5 id is not a pin",
        patches: &[(B, "claude-sonnet-4-5-20250929", "claude-sonnet-4-5")],
        repin: false,
        expect: &[(B, 5, 13, "`claude-sonnet-4-5` is not a pinned snapshot")],
    },
    Broken {
        name: "undated openai id is not a pin",
        patches: &[(
            B,
            "provider: anthropic\n  snapshot: claude-sonnet-4-5-20250929",
            "provider: openai\n  snapshot: gpt-4o",
        )],
        repin: false,
        expect: &[(B, 5, 13, "`gpt-4o` is not a pinned snapshot")],
    },
    Broken {
        name: "judge snapshot must be pinned too",
        patches: &[(B, "claude-haiku-4-5-20251001", "claude-haiku-latest")],
        repin: false,
        expect: &[(B, 16, 15, "`claude-haiku-latest` is a moving alias")],
    },
    Broken {
        name: "temperature out of range",
        patches: &[(B, "temperature: 0", "temperature: 3")],
        repin: false,
        expect: &[(B, 6, 26, "`model.params.temperature` must be from 0 to 2, found 3")],
    },
    Broken {
        name: "unknown model param",
        patches: &[(B, "max_tokens: 512", "max_token: 512")],
        repin: false,
        expect: &[(B, 6, 29, "unknown key `model.params.max_token`; did you mean `max_tokens`?")],
    },
    Broken {
        name: "zero max_turns",
        patches: &[(B, "max_turns: 4", "max_turns: 0")],
        repin: false,
        expect: &[(B, 9, 22, "`runner.max_turns` must be from 1 to 100, found 0")],
    },
    Broken {
        name: "prompt file missing",
        patches: &[(B, "prompt: prompt.md", "prompt: prompts/missing.md")],
        repin: false,
        expect: &[(B, 7, 9, "`prompt` file `agent/prompts/missing.md` not found")],
    },
    Broken {
        name: "prompt path climbing out of the repository",
        patches: &[(B, "prompt: prompt.md", "prompt: ../../etc/passwd")],
        repin: false,
        expect: &[(B, 7, 9, "`prompt` path `../../etc/passwd` leads outside the repository")],
    },
    Broken {
        name: "absolute prompt path",
        patches: &[(B, "prompt: prompt.md", "prompt: /etc/passwd")],
        repin: false,
        expect: &[(B, 7, 9, "must be a relative path")],
    },
    Broken {
        name: "tools file missing",
        patches: &[(B, "tools: tools.yaml", "tools: tool.yaml")],
        repin: false,
        expect: &[(B, 8, 8, "`tools` file `agent/tool.yaml` not found")],
    },
    Broken {
        name: "golden set path climbing out",
        patches: &[(B, "golden_set: ../golden", "golden_set: ../../../golden")],
        repin: false,
        expect: &[(B, 11, 15, "leads outside the repository")],
    },
    Broken {
        name: "placeholder pin",
        patches: &[(B, "golden_set_sha256: \"", "golden_set_sha256: \"3f5a...")],
        repin: false,
        expect: &[(B, 12, 22, "is not a sha256: expected 64 lowercase hex digits")],
    },
    Broken {
        name: "missing pin says how to write it",
        patches: &[(B, "  golden_set_sha256: ", "  #golden_set_sha256: ")],
        repin: false,
        expect: &[(B, 11, 3, "missing required key `eval.golden_set_sha256`; run `evalgate golden pin agent`")],
    },
    Broken {
        name: "stale pin",
        patches: &[(C, "\"Hi\"", "\"Hi there\"")],
        repin: false,
        expect: &[(B, 12, 22, "golden set `golden` does not match its pin")],
    },
    Broken {
        name: "zero samples",
        patches: &[(B, "  samples: 1", "  samples: 0")],
        repin: false,
        expect: &[(B, 13, 12, "`eval.samples` must be from 1 to 25, found 0")],
    },
    Broken {
        name: "regression rate above one",
        patches: &[(B, "max_regression_rate: 0.0", "max_regression_rate: 5")],
        repin: false,
        expect: &[(B, 20, 26, "`eval.gate.max_regression_rate` must be from 0 to 1, found 5")],
    },
    Broken {
        name: "misspelt gate key",
        patches: &[(B, "max_regression_rate", "max_regresion_rate")],
        repin: false,
        expect: &[(B, 20, 5, "unknown key `eval.gate.max_regresion_rate`; did you mean `max_regression_rate`?")],
    },
    Broken {
        name: "negative budget",
        patches: &[(B, "max_usd: 1.0", "max_usd: -1")],
        repin: false,
        expect: &[(B, 22, 22, "`eval.budget.max_usd` must be from 0")],
    },
    Broken {
        name: "nested metadata value",
        patches: &[(B, "author: alex", "author: [alex]")],
        repin: false,
        expect: &[(B, 23, 21, "`metadata.author` must be a single value, found a list")],
    },
    Broken {
        name: "duplicate key",
        patches: &[(B, "metadata: { author: alex }\n", "metadata: { author: alex }\nbundle: again\n")],
        repin: false,
        expect: &[(B, 24, 1, "duplicate key `bundle` (first at line 1)")],
    },
    Broken {
        name: "judge rubric missing",
        patches: &[(B, "rubric: rubric.md", "rubric: rubrik.md")],
        repin: false,
        expect: &[(B, 17, 13, "`eval.judge.rubric` file `agent/rubrik.md` not found")],
    },
    Broken {
        name: "YAML syntax error",
        patches: &[(B, "runner: { max_turns: 4 }", "runner: { max_turns: 4")],
        repin: false,
        expect: &[(B, 10, 5, "invalid YAML: while parsing a flow mapping")],
    },
    // tools.yaml
    Broken {
        name: "tool name with a space",
        patches: &[(T, "- name: lookup_order", "- name: lookup order")],
        repin: false,
        expect: &[(T, 1, 9, "tool name `lookup order` is not valid")],
    },
    Broken {
        name: "duplicate tool name",
        patches: &[(T, "- name: refund_order", "- name: lookup_order")],
        repin: false,
        expect: &[(T, 7, 9, "duplicate tool name `lookup_order` (first at line 1)")],
    },
    Broken {
        name: "input_schema that is not a JSON Schema",
        patches: &[(T, "{ type: string }", "{ type: strin }")],
        repin: false,
        expect: &[(T, 5, 37, "`tools[0].input_schema` is not a valid JSON Schema")],
    },
    Broken {
        name: "input_schema that is not an object schema",
        patches: &[(T, "    type: object", "    type: array")],
        repin: false,
        expect: &[(T, 4, 11, "must have `type: object`")],
    },
    Broken {
        name: "input_schema with a misspelt top-level type",
        patches: &[(T, "    type: object", "    type: objekt")],
        repin: false,
        expect: &[(T, 4, 11, "`tools[0].input_schema` must have `type: object`")],
    },
    Broken {
        name: "input_schema properties that are not a mapping",
        patches: &[(T, "    properties: { order_id: { type: string } }", "    properties: 5")],
        repin: false,
        expect: &[(T, 5, 17, "`tools[0].input_schema` is not a valid JSON Schema")],
    },
    Broken {
        name: "misspelt tool key",
        patches: &[(T, "  description: Look up an order", "  descripton: Look up an order")],
        repin: false,
        expect: &[
            (T, 1, 3, "missing required key `tools[0].description`"),
            (T, 2, 3, "unknown key `tools[0].descripton`; did you mean `description`?"),
        ],
    },
    Broken {
        name: "tools file that is not a list",
        patches: &[(T, TOOLS_YAML, "name: x\n")],
        repin: false,
        expect: &[(T, 1, 1, "`tools` must be a list, found a mapping")],
    },
    // prompt lints and drift
    Broken {
        name: "forbidden phrase, any case",
        patches: &[(P, "amount).\n", "amount).\nAs an AI Language Model I cannot.\n")],
        repin: false,
        expect: &[(P, 4, 1, "forbidden phrase `as an AI language model`")],
    },
    Broken {
        name: "required section missing",
        patches: &[(P, "## Policy", "## Rules")],
        repin: false,
        expect: &[(P, 1, 1, "lacks the required section `## Policy`")],
    },
    Broken {
        name: "prompt over the configured length",
        patches: &[(CFG, "prompt_max_chars: 2000", "prompt_max_chars: 20")],
        repin: false,
        expect: &[(P, 2, 8, "over `lint.prompt_max_chars` (20)")],
    },
    Broken {
        name: "prompt names a tool the schema lacks",
        patches: &[(P, "refund_order(", "refund_ordr(")],
        repin: false,
        expect: &[(
            P,
            3,
            63,
            "prompt names tool `refund_ordr(` that the tools file lacks; did you mean `refund_order`?",
        )],
    },
    Broken {
        name: "prompt call signature drifts from the schema",
        patches: &[(P, "refund_order(order_id, amount)", "refund_order(order_id, amt)")],
        repin: false,
        expect: &[
            (P, 3, 63, "with argument `amt`, which its input_schema lacks"),
            (P, 3, 63, "without its required argument `amount`"),
        ],
    },
    // .evalgate.yml
    Broken {
        name: "misspelt config key",
        patches: &[(CFG, "lint:", "lints:")],
        repin: false,
        expect: &[(CFG, 1, 1, "unknown key `lints`; did you mean `lint`?")],
    },
    Broken {
        name: "invalid bundle glob",
        patches: &[(CFG, "lint:", "bundles: [\"agent/[bundle.yaml\"]\nlint:")],
        repin: false,
        expect: &[(CFG, 1, 11, "`bundles` glob `agent/[bundle.yaml` is not valid")],
    },
    // golden.yaml and cases.jsonl
    Broken {
        name: "misspelt golden.yaml key",
        patches: &[(G, "version: 1", "versoin: 1")],
        repin: true,
        expect: &[
            (G, 1, 1, "missing required key `version`"),
            (G, 2, 1, "unknown key `versoin`; did you mean `version`?"),
        ],
    },
    Broken {
        name: "trailing comma in a case line",
        patches: &[(C, "\"label\": \"pass\"}", "\"label\": \"pass\",}")],
        repin: true,
        expect: &[(C, 2, 141, "invalid JSON: Trailing commas are not allowed")],
    },
    Broken {
        name: "duplicate case id",
        patches: &[(C, "\"id\": \"c2\"", "\"id\": \"c1\"")],
        repin: true,
        expect: &[(C, 2, 8, "duplicate case id `c1` (first at line 1)")],
    },
    Broken {
        name: "unknown check type",
        patches: &[(C, "\"type\": \"contains\"", "\"type\": \"contain\"")],
        repin: true,
        expect: &[(C, 2, 94, "unknown check type `contain`; did you mean `contains`?")],
    },
    Broken {
        name: "misspelt case key",
        patches: &[(C, "\"label\": \"pass\"", "\"lable\": \"pass\"")],
        repin: true,
        expect: &[(C, 2, 126, "unknown key `lable`; did you mean `label`?")],
    },
    Broken {
        name: "tool_called names a tool the bundle lacks",
        patches: &[(C, "\"tool\": \"refund_order\"", "\"tool\": \"refund\"")],
        repin: true,
        expect: &[(C, 1, 172, "tool `refund` is not in the bundle's tools")],
    },
    Broken {
        name: "tool_called args invalid under the schema",
        patches: &[(C, "{\"order_id\": \"A1\"}", "{\"order_id\": 7}")],
        repin: true,
        expect: &[(C, 1, 196, "`args` are not valid under `refund_order`'s input_schema")],
    },
    Broken {
        name: "fixture for a tool the bundle lacks",
        patches: &[(C, "\"lookup_order\": {", "\"lookup_ordr\": {")],
        repin: true,
        expect: &[(C, 1, 98, "tool `lookup_ordr` is not in the bundle's tools; did you mean `lookup_order`?")],
    },
    Broken {
        name: "last message is not the user's",
        patches: &[(
            C,
            "\"content\": \"Hi\"}]",
            "\"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}]",
        )],
        repin: true,
        expect: &[(C, 2, 72, "the last of `input.messages` must be the user's")],
    },
    Broken {
        name: "unknown role",
        patches: &[(C, "\"role\": \"user\", \"content\": \"Hi\"", "\"role\": \"bot\", \"content\": \"Hi\"")],
        repin: true,
        expect: &[(C, 2, 46, "`input.messages[0].role` must be \"user\" or \"assistant\"")],
    },
    Broken {
        name: "label other than pass or fail",
        patches: &[(C, "\"label\": \"pass\"", "\"label\": \"yes\"")],
        repin: true,
        expect: &[(C, 2, 135, "`label` must be \"pass\" or \"fail\"")],
    },
    Broken {
        name: "invalid regex",
        patches: &[(
            C,
            "{\"type\": \"contains\", \"value\": \"hello\"}",
            "{\"type\": \"regex\", \"pattern\": \"(unclosed\"}",
        )],
        repin: true,
        expect: &[(C, 2, 114, "`checks[0].pattern` is not a valid regex")],
    },
    Broken {
        name: "check missing its field",
        patches: &[(C, "{\"type\": \"contains\", \"value\": \"hello\"}", "{\"type\": \"contains\"}")],
        repin: true,
        expect: &[(C, 2, 85, "missing required key `checks[0].value`")],
    },
    Broken {
        name: "json_schema check with an invalid schema",
        patches: &[(
            C,
            "{\"type\": \"contains\", \"value\": \"hello\"}",
            "{\"type\": \"json_schema\", \"schema\": {\"type\": \"strin\"}}",
        )],
        repin: true,
        expect: &[(C, 2, 119, "`checks[0].schema` is not a valid JSON Schema")],
    },
    Broken {
        name: "no checks",
        patches: &[(C, "\"checks\": [{\"type\": \"contains\", \"value\": \"hello\"}]", "\"checks\": []")],
        repin: true,
        expect: &[(C, 2, 84, "`checks` must list at least one check")],
    },
    Broken {
        name: "judge check without a judge",
        patches: &[(
            B,
            "  judge:\n    provider: anthropic\n    snapshot: claude-haiku-4-5-20251001\n    rubric: rubric.md\n    samples: 3\n",
            "",
        )],
        repin: false,
        expect: &[(C, 1, 226, "a `judge` check needs `eval.judge` in the bundle")],
    },
    Broken {
        name: "judge check without any rubric",
        patches: &[(B, "    rubric: rubric.md\n", "")],
        repin: false,
        expect: &[(C, 1, 226, "gives no `rubric` and the bundle's judge has no default `rubric`")],
    },
    Broken {
        name: "empty cases file",
        patches: &[(C, support::CASES_JSONL, "\n")],
        repin: true,
        expect: &[(C, 0, 0, "has no cases")],
    },
];

fn location(line: &str) -> (String, u32, u32) {
    // path:line:col: error: … or path: error: …
    let head = line.split(": error: ").next().unwrap_or("");
    let mut parts = head.rsplitn(3, ':');
    let col = parts.next().and_then(|c| c.parse().ok());
    let ln = parts.next().and_then(|c| c.parse().ok());
    match (ln, col, parts.next()) {
        (Some(l), Some(c), Some(file)) => (file.to_owned(), l, c),
        _ => (head.to_owned(), 0, 0),
    }
}

#[test]
fn the_corpus_has_at_least_forty_broken_inputs() {
    assert!(CORPUS.len() >= 40, "{}", CORPUS.len());
}

#[test]
fn each_broken_input_yields_exactly_its_errors_at_the_exact_place() {
    let mut failures = Vec::new();
    for case in CORPUS {
        let repo = Repo::valid();
        for (file, from, to) in case.patches {
            repo.patch(file, from, to);
        }
        if case.repin {
            repo.pin();
        }
        let run = repo.check();
        let errors = run.errors();
        let mut problems = Vec::new();
        if run.code != 1 {
            problems.push(format!("exit code {} (want 1)", run.code));
        }
        for (file, line, col, text) in case.expect {
            let found = errors.iter().any(|e| location(e) == (file.to_string(), *line, *col) && e.contains(text));
            if !found {
                problems.push(format!("missing {file}:{line}:{col}: …{text}…"));
            }
        }
        if errors.len() != case.expect.len() {
            problems.push(format!("{} errors, want {}", errors.len(), case.expect.len()));
        }
        if !problems.is_empty() {
            failures.push(format!("[{}] {}\n  got:\n    {}", case.name, problems.join("; "), errors.join("\n    ")));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), CORPUS.len(), failures.join("\n"));
}

#[test]
fn the_valid_repository_passes() {
    let run = Repo::valid().check();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.errors().is_empty());
    assert!(run.stdout.contains("ok: bundle demo"), "{}", run.stdout);
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let repo = Repo::valid();
    repo.patch(B, "metadata:", "metdata:");
    repo.patch(B, "temperature: 0", "temperature: 3");
    repo.patch(P, "## Policy", "## Rules");
    let run = repo.check();
    assert_eq!(run.errors().len(), 3, "{}", run.stdout);
    assert_eq!(run.code, 1);
}

#[test]
fn the_example_in_this_repository_passes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_evalgate"))
        .args(["check", "examples/"])
        .current_dir(&root)
        .output()
        .expect("run evalgate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("ok: bundle refund-agent"), "{stdout}");
}

#[test]
fn a_path_without_bundles_is_an_error_not_a_pass() {
    let repo = Repo::empty();
    repo.write("README.md", "nothing here\n");
    let run = repo.check();
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("no bundle found (looked for **/bundle.yaml"), "{}", run.stdout);
}

#[test]
fn a_golden_set_no_bundle_uses_is_still_checked() {
    let repo = Repo::valid();
    repo.write("other/golden.yaml", "name: other\nversion: 1\n");
    repo.write("other/cases.jsonl", "{\"id\": \"x\"}\n");
    let run = repo.check();
    assert_eq!(run.code, 1);
    assert!(
        run.errors().iter().any(|e| e.starts_with("other/cases.jsonl:1:1: error: missing required key `input`")),
        "{}",
        run.stdout
    );
}

#[test]
fn bundle_globs_from_the_config_choose_what_is_checked() {
    let repo = Repo::valid();
    repo.write("ignored/bundle.yaml", "not: [valid\n");
    repo.patch(CFG, "lint:", "bundles: [\"agent/bundle.yaml\"]\nlint:");
    let run = repo.check();
    assert_eq!(run.code, 0, "{}", run.stdout);
}

#[cfg(unix)]
mod symlinks {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_symlinked_prompt_that_leaves_the_repository_is_an_error() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.md"), "## Policy\n").unwrap();
        let repo = Repo::valid();
        std::fs::remove_file(repo.file(P)).unwrap();
        symlink(outside.path().join("secret.md"), repo.file(P)).unwrap();
        let run = repo.check();
        assert_eq!(run.code, 1);
        assert!(
            run.errors().iter().any(|e| e.starts_with("agent/bundle.yaml:7:9: error: `prompt` file `agent/prompt.md` is a symlink that leads outside the repository")),
            "{}",
            run.stdout
        );
    }

    #[test]
    fn a_symlinked_golden_set_folder_that_leaves_the_repository_is_an_error() {
        let outside = tempfile::tempdir().unwrap();
        let repo = Repo::valid();
        std::fs::rename(repo.file("golden"), outside.path().join("golden")).unwrap();
        symlink(outside.path().join("golden"), repo.file("golden")).unwrap();
        let run = repo.check();
        assert_eq!(run.code, 1);
        assert!(
            run.errors().iter().any(|e| e.contains("golden/cases.jsonl") && e.contains("leads outside the repository")),
            "{}",
            run.stdout
        );
    }

    #[test]
    fn a_symlink_that_stays_inside_the_repository_is_fine() {
        let repo = Repo::valid();
        repo.write("shared/prompt.md", support::PROMPT_MD);
        std::fs::remove_file(repo.file(P)).unwrap();
        symlink("../shared/prompt.md", repo.file(P)).unwrap();
        let run = repo.check();
        assert_eq!(run.code, 0, "{}", run.stdout);
    }

    #[test]
    fn a_dangling_symlink_out_of_the_repository_is_named_as_such() {
        let repo = Repo::valid();
        std::fs::remove_file(repo.file(P)).unwrap();
        symlink("/nonexistent/evalgate/prompt.md", repo.file(P)).unwrap();
        let run = repo.check();
        assert!(run.errors().iter().any(|e| e.contains("leads outside the repository")), "{}", run.stdout);
    }
}

mod duplicate_bundle_names {
    use super::*;

    const MESSAGE_END: &str = "; bundle names must be unique in a repository";

    /// The valid repository plus a full, valid copy of its bundle at `zz/` (same name `demo`).
    fn repo_with_a_copy() -> Repo {
        let repo = Repo::valid();
        for f in ["bundle.yaml", "prompt.md", "tools.yaml", "rubric.md"] {
            repo.write(&format!("zz/{f}"), repo.read(&format!("agent/{f}")));
        }
        repo
    }

    #[test]
    fn two_manifests_with_one_bundle_name_are_an_error_naming_both() {
        let repo = repo_with_a_copy();
        let run = repo.check();
        assert_eq!(run.code, 1, "{}", run.stdout);
        assert_eq!(
            run.errors(),
            [
                format!(
                    "agent/bundle.yaml:1:9: error: bundle name `demo` is also used by zz/bundle.yaml:1:9{MESSAGE_END}"
                ),
                format!(
                    "zz/bundle.yaml:1:9: error: bundle name `demo` is also used by agent/bundle.yaml:1:9{MESSAGE_END}"
                ),
            ],
            "{}",
            run.stdout
        );
        assert!(!run.stdout.contains("ok: bundle"), "a clashing bundle is not ok: {}", run.stdout);
    }

    #[test]
    fn a_duplicate_name_outside_the_checked_path_is_still_found() {
        let repo = Repo::valid();
        // Read leniently: the other manifest is broken in every other way, and outside the path.
        repo.write("other/deep/bundle.yaml", "# another team's bundle\nbundle:   demo\n");
        let run = repo.evalgate(&["check", "agent"]);
        assert_eq!(run.code, 1, "{}", run.stdout);
        assert_eq!(
            run.errors(),
            [format!(
                "agent/bundle.yaml:1:9: error: bundle name `demo` is also used by other/deep/bundle.yaml:2:11{MESSAGE_END}"
            )],
            "{}",
            run.stdout
        );
    }

    #[test]
    fn every_other_manifest_with_the_name_is_named() {
        let repo = repo_with_a_copy();
        repo.write("b/bundle.yaml", "bundle: demo\n");
        let run = repo.evalgate(&["check", "agent"]);
        assert_eq!(
            run.errors(),
            [format!(
                "agent/bundle.yaml:1:9: error: bundle name `demo` is also used by b/bundle.yaml:1:9, zz/bundle.yaml:1:9{MESSAGE_END}"
            )],
            "{}",
            run.stdout
        );
    }

    #[test]
    fn a_manifest_the_globs_do_not_match_is_not_a_duplicate() {
        let repo = repo_with_a_copy();
        repo.patch(CFG, "lint:", "bundles: [\"agent/bundle.yaml\"]\nlint:");
        let run = repo.check();
        assert_eq!(run.code, 0, "{}", run.stdout);
    }

    #[test]
    fn different_names_in_two_manifests_are_fine() {
        let repo = repo_with_a_copy();
        repo.patch("zz/bundle.yaml", "bundle: demo", "bundle: demo-two");
        let run = repo.check();
        assert_eq!(run.code, 0, "{}", run.stdout);
        assert!(run.stdout.contains("ok: bundle demo-two"), "{}", run.stdout);
    }
}

mod input_schema_positions {
    use super::*;

    fn errors_with_tools(tools: &str) -> Vec<String> {
        let repo = Repo::valid();
        repo.write(T, tools);
        let run = repo.check();
        assert_eq!(run.code, 1, "{}", run.stdout);
        run.errors().into_iter().map(str::to_owned).collect()
    }

    #[test]
    fn a_wrong_required_inside_input_schema_is_reported_at_its_own_line() {
        let errors = errors_with_tools(&TOOLS_YAML.replacen("    required: [order_id]", "    required: notalist", 1));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("agent/tools.yaml:6:15: error: `tools[0].input_schema` is not a valid JSON Schema: "),
            "{errors:?}"
        );
        assert!(errors[0].contains("(at `/required`)"), "{errors:?}");
    }

    #[test]
    fn a_nested_wrong_type_inside_input_schema_is_reported_at_its_own_line() {
        let tools = "\
- name: lookup_order
  description: Look up an order
  input_schema: { type: object, properties: { order_id: { type: string } }, required: [order_id] }
- name: refund_order
  description: Refund an order
  input_schema:
    type: object
    properties:
      order_id: { type: string }
      amount:
        minimum: 0
        type: numbr
    required: [order_id, amount]
";
        let errors = errors_with_tools(tools);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0]
                .starts_with("agent/tools.yaml:12:15: error: `tools[1].input_schema` is not a valid JSON Schema: "),
            "{errors:?}"
        );
        assert!(errors[0].contains("(at `/properties/amount/type`)"), "{errors:?}");
    }

    #[test]
    fn a_nested_defect_in_a_flow_mapping_is_reported_at_its_column() {
        let tools =
            TOOLS_YAML.replacen("amount: { type: number, minimum: 0 }", "amount: { type: number, minimum: zero }", 1);
        let errors = errors_with_tools(&tools);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("agent/tools.yaml:11:80: error: `tools[1].input_schema`"), "{errors:?}");
    }

    #[test]
    fn a_schema_that_compiles_badly_is_reported_at_the_offending_keyword() {
        // Valid under the meta-schema (formats are not asserted there), rejected when compiled.
        let tools =
            TOOLS_YAML.replacen("{ order_id: { type: string } }", "{ order_id: { type: string, pattern: \"(\" } }", 1);
        let errors = errors_with_tools(&tools);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("agent/tools.yaml:5:54: error: `tools[0].input_schema`"), "{errors:?}");
    }
}
