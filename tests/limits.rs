//! Limits on size, count and nesting: over a limit is a clear error, never an out-of-memory.

mod support;

use support::Repo;

fn errors_of(repo: &Repo) -> String {
    let run = repo.check();
    assert_eq!(run.code, 1, "{}", run.stdout);
    run.errors().join("\n")
}

#[test]
fn a_prompt_over_one_mebibyte_is_refused_before_reading() {
    let repo = Repo::valid();
    repo.write("agent/prompt.md", "## Policy\n".repeat(110_000));
    let e = errors_of(&repo);
    assert!(e.contains("agent/bundle.yaml:7:9: error: `prompt` file `agent/prompt.md` is 1100000 bytes, over the limit of 1048576 bytes"), "{e}");
}

#[test]
fn a_case_line_over_one_mebibyte_is_an_error_naming_its_line() {
    let repo = Repo::valid();
    let long = format!("{{\"id\": \"big\", \"pad\": \"{}\"}}\n", "x".repeat(1024 * 1024));
    repo.write("golden/cases.jsonl", format!("{}{long}", support::CASES_JSONL));
    repo.pin();
    let e = errors_of(&repo);
    assert!(e.contains("golden/cases.jsonl:3:1: error: line is 1048600 bytes, over the limit of 1048576 bytes"), "{e}");
}

#[test]
fn a_cases_file_over_256_mebibytes_is_refused_before_reading() {
    let repo = Repo::valid();
    let f = std::fs::OpenOptions::new().write(true).open(repo.file("golden/cases.jsonl")).unwrap();
    f.set_len(256 * 1024 * 1024 + 1).unwrap(); // sparse: no disk, no memory
    let e = errors_of(&repo);
    assert!(
        e.contains("golden/cases.jsonl: error: cases.jsonl is 268435457 bytes, over the limit of 268435456 bytes"),
        "{e}"
    );
}

#[test]
fn more_than_one_hundred_thousand_cases_is_an_error() {
    let repo = Repo::valid();
    let mut text = String::with_capacity(8_000_000);
    for i in 0..100_001 {
        text.push_str(&format!("{{\"id\": \"c{i}\", \"input\": {{\"messages\": [{{\"role\": \"user\", \"content\": \"q\"}}]}}, \"checks\": [{{\"type\": \"json_valid\"}}]}}\n"));
    }
    repo.write("golden/cases.jsonl", text);
    repo.pin();
    let e = errors_of(&repo);
    assert!(e.contains("golden/cases.jsonl:100001:1: error: more than 100000 cases, over the limit"), "{e}");
}

#[test]
fn nesting_deeper_than_the_limit_is_an_error_not_a_crash() {
    let repo = Repo::valid();
    let deep =
        format!("{{\"id\": \"d\", \"tool_results\": {{\"lookup_order\": {}1{}}}}}\n", "[".repeat(500), "]".repeat(500));
    repo.write("golden/cases.jsonl", format!("{}{deep}", support::CASES_JSONL));
    repo.pin();
    let e = errors_of(&repo);
    assert!(e.contains("golden/cases.jsonl:3:") && e.contains("nesting deeper than 64 levels (limit)"), "{e}");
}

#[test]
fn a_yaml_alias_bomb_is_stopped() {
    let repo = Repo::valid();
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        bomb.push_str(&format!("a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 10].join(", ")));
    }
    repo.write("agent/bundle.yaml", bomb);
    let e = errors_of(&repo);
    assert!(e.contains("more than 1000000 values in one file (limit)"), "{e}");
}

#[test]
fn more_than_128_tools_is_an_error() {
    let repo = Repo::valid();
    let mut tools = String::new();
    for i in 0..129 {
        tools.push_str(&format!("- name: t{i}\n  description: d\n  input_schema: {{type: object}}\n"));
    }
    repo.write("agent/tools.yaml", tools);
    let e = errors_of(&repo);
    assert!(e.contains("agent/tools.yaml:1:1: error: 129 tools, over the limit of 128"), "{e}");
}
