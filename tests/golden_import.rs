//! `evalgate golden import` end to end: the real binary on event logs and OTLP/JSON traces,
//! what it writes byte for byte, what it keeps, what it redacts, what it refuses, and the
//! production example's imported cases replayed by `evalgate eval`.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use support::fake_provider::{FakeProvider, Reply, SeenRequest};
use support::{Repo, Run};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned()
}

fn import(repo: &Repo, args: &[&str]) -> Run {
    let mut all = vec!["golden", "import"];
    all.extend_from_slice(args);
    repo.evalgate(&all)
}

/// Every file under `dir` (relative path → bytes).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return out;
    }
    for e in walk(dir) {
        let rel = e.strip_prefix(dir).expect("under dir").display().to_string();
        out.insert(rel, std::fs::read(&e).expect("read"));
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let p = e.expect("entry").path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out.sort();
    out
}

const EVENTS: &str = r#"{"type": "message", "conversation": "t-1", "role": "system", "content": "You are a refund agent.", "at": "2026-03-01T10:00:00Z"}
{"type": "message", "conversation": "t-1", "role": "user", "content": "Order A1 arrived broken, refund please", "at": "2026-03-01T10:00:01Z"}
{"type": "message", "conversation": "t 2", "role": "user", "content": "hi", "at": "2026-03-01T11:00:00+01:00"}
{"type": "tool_call", "id": "k1", "conversation": "t-1", "tool": "lookup_order", "args": {"order_id": "A1"}, "result": {"total": 5}, "startedAt": "2026-03-01T10:00:02Z", "endedAt": "2026-03-01T10:00:02.300Z", "status": "ok", "tokensIn": 120, "tokensOut": 9, "spanId": "s1"}
{"type": "tool_call", "id": "k2", "conversation": "t-1", "tool": "refund_order", "args": {"order_id": "A1", "amount": 5}, "startedAt": "2026-03-01T10:00:03Z", "endedAt": "2026-03-01T10:00:33Z", "status": "timeout", "tokensIn": 150, "tokensOut": 12, "spanId": "s2"}
{"type": "tool_call", "id": "k3", "conversation": "t-1", "tool": "refund_order", "args": "{\"order_id\": \"A1\", \"amount\": 5}", "result": {"refunded": true}, "startedAt": "2026-03-01T10:00:34Z", "endedAt": "2026-03-01T10:00:35Z", "status": "ok", "tokensIn": 170, "tokensOut": 12, "spanId": "s3"}
{"type": "message", "conversation": "t 2", "role": "assistant", "content": "Hello! How can I help?", "at": "2026-03-01T10:00:02Z"}
{"type": "message", "conversation": "t-1", "role": "assistant", "content": "Refunded 5.00.", "at": "2026-03-01T10:00:36Z"}
{"type": "message", "conversation": "t 2", "role": "user", "content": "Where is A2?", "at": "2026-03-01T10:00:05Z"}
{"type": "tool_call", "id": "k4", "conversation": "t 2", "tool": "lookup_order", "args": {"order_id": "A2"}, "result": "A2: shipped", "startedAt": "2026-03-01T10:00:06Z", "endedAt": "2026-03-01T10:00:06.100Z", "status": "ok", "tokensIn": 80, "tokensOut": 7, "spanId": "s4"}
{"type": "tool_call", "id": "k5", "conversation": "t 2", "tool": "lookup_order", "args": {"order_id": "A2", "verbose": true}, "result": {"status": "shipped", "eta": "2026-03-03"}, "startedAt": "2026-03-01T10:00:07Z", "endedAt": "2026-03-01T10:00:07.100Z", "status": "ok", "tokensIn": 90, "tokensOut": 7, "spanId": "s5"}
{"type": "message", "conversation": "t 2", "role": "assistant", "content": "A2 is on its way.", "at": "2026-03-01T10:00:08Z"}
"#;

const RECORDED: &str = "Judge the answer against the answer recorded in production for this conversation, below. Pass it when it agrees with the recorded answer in substance (the facts, amounts, decisions and commitments it states, the actions it reports) even if worded differently; fail it when it contradicts the recorded answer, leaves out something the recorded answer does, or promises more.\\n\\nRecorded answer:\\n";

fn t1_line(rubric: &str) -> String {
    format!(
        r#"{{"id": "imported-t-1", "input": {{"messages": [{{"role": "user", "content": "Order A1 arrived broken, refund please"}}]}}, "tool_results": {{"lookup_order": [{{"args": {{"order_id": "A1"}}, "result": {{"total": 5}}}}], "refund_order": [{{"args": {{"amount": 5, "order_id": "A1"}}, "result": null, "status": "timeout"}}]}}, "checks": [{{"type": "tool_called", "tool": "lookup_order", "args": {{"order_id": "A1"}}}}, {{"type": "tool_called", "tool": "refund_order", "args": {{"amount": 5, "order_id": "A1"}}}}, {{"type": "tool_args_valid"}}, {{"type": "judge", "rubric": "{rubric}"}}], "tags": ["imported"], "source": {{"conversation": "t-1", "time": "2026-03-01T10:00:00Z"}}}}"#
    )
}

fn t2_line(rubric: &str) -> String {
    format!(
        r#"{{"id": "imported-t-2-fd555bee8f13", "input": {{"messages": [{{"role": "user", "content": "hi"}}, {{"role": "assistant", "content": "Hello! How can I help?"}}, {{"role": "user", "content": "Where is A2?"}}]}}, "tool_results": {{"lookup_order": [{{"args": {{"order_id": "A2", "verbose": true}}, "result": {{"eta": "2026-03-03", "status": "shipped"}}}}, {{"args": {{"order_id": "A2"}}, "result": "A2: shipped"}}]}}, "checks": [{{"type": "tool_called", "tool": "lookup_order", "args": {{"order_id": "A2"}}}}, {{"type": "tool_called", "tool": "lookup_order", "args": {{"order_id": "A2", "verbose": true}}}}, {{"type": "tool_args_valid"}}, {{"type": "judge", "rubric": "{rubric}"}}], "tags": ["imported"], "source": {{"conversation": "t 2", "time": "2026-03-01T11:00:00+01:00"}}}}"#
    )
}

#[test]
fn an_event_log_becomes_one_case_per_conversation_exactly() {
    let repo = Repo::empty();
    repo.write("events.jsonl", EVENTS);
    let run = import(&repo, &["events.jsonl", "--out", "golden"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // One case per conversation, in the order they first appear: the conversation up to its
    // last user turn, every call a fixture by arguments (the more specific first; a repeated
    // call once, with its first result; a timeout keeps its status), a `tool_called` per
    // distinct call, `tool_args_valid`, a judge against the recorded answer.
    let expected = format!(
        "{}\n{}\n",
        t1_line(&format!("{RECORDED}Refunded 5.00.")),
        t2_line(&format!("{RECORDED}A2 is on its way."))
    );
    assert_eq!(repo.read("golden/cases.jsonl"), expected);
    assert_eq!(
        repo.read("golden/golden.yaml"),
        "# Created by `evalgate golden import`: cases made from recorded production conversations.\nname: \"golden\"\nversion: 1\ndescription: Imported from production conversations\n"
    );
    assert!(run.stdout.contains("2 imported case(s): 2 added, 0 updated, 0 unchanged"), "{}", run.stdout);
    // What it wrote is a golden set `evalgate check` reads.
    let check = repo.evalgate(&["check", "."]);
    assert!(check.stdout.contains("ok: golden set golden (2 cases)"), "{}{}", check.stdout, check.stderr);

    // --rubric says what the right behaviour is, for every conversation imported.
    let run = import(&repo, &["events.jsonl", "--out", "golden", "--rubric", "Refunds once; confirms the amount."]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rubric = "Refunds once; confirms the amount.";
    assert_eq!(repo.read("golden/cases.jsonl"), format!("{}\n{}\n", t1_line(rubric), t2_line(rubric)));
}

#[test]
fn conversation_limits_the_import_to_the_named_ones() {
    let repo = Repo::empty();
    repo.write("events.jsonl", EVENTS);
    let run = import(&repo, &["events.jsonl", "--out", "golden", "--conversation", "t 2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(repo.read("golden/cases.jsonl"), format!("{}\n", t2_line(&format!("{RECORDED}A2 is on its way."))));
    let run = import(&repo, &["events.jsonl", "--out", "other", "--conversation", "t-9"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("no conversation `t-9` in the input"), "{}", run.stderr);
    assert!(!repo.file("other").exists());
}

/// The OTLP/JSON fixture: line 1 in the attribute form (an `execute_tool` span before its
/// model calls, naming no conversation, and an HTTP span that is not read), line 2 in the event
/// form with no conversation id (its trace is the conversation) and a tool call that timed out.
#[test]
fn otlp_json_in_both_forms_of_the_genai_conventions_becomes_cases_exactly() {
    let repo = Repo::empty();
    let fixture = workspace().join("tests/fixtures/otlp/genai.jsonl");
    let out = repo.file("golden");
    let run = import(&repo, &[fixture.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let expected = [
        format!(
            r#"{{"id": "imported-conv-otel-1", "input": {{"messages": [{{"role": "user", "content": "Where is my order A1042?"}}]}}, "tool_results": {{"lookup_order": [{{"args": {{"order_id": "A1042"}}, "result": {{"carrier": "DHL", "order_id": "A1042", "status": "shipped"}}}}]}}, "checks": [{{"type": "tool_called", "tool": "lookup_order", "args": {{"order_id": "A1042"}}}}, {{"type": "tool_args_valid"}}, {{"type": "judge", "rubric": "{RECORDED}Your order A1042 has shipped with DHL."}}], "tags": ["imported"], "source": {{"conversation": "conv-otel-1", "time": "2026-03-02T10:14:03.000Z"}}}}"#
        ),
        format!(
            r#"{{"id": "imported-0af7651916cd43dd8448eb211c80319c", "input": {{"messages": [{{"role": "user", "content": "Refund order B7, the vase arrived broken."}}]}}, "tool_results": {{"refund_order": [{{"args": {{"amount": 12.5, "order_id": "B7", "reason": "damaged"}}, "result": "refund service did not answer within 30 s", "status": "timeout"}}]}}, "checks": [{{"type": "tool_called", "tool": "refund_order", "args": {{"amount": 12.5, "order_id": "B7", "reason": "damaged"}}}}, {{"type": "tool_args_valid"}}, {{"type": "judge", "rubric": "{RECORDED}I'm sorry, the refund service timed out. A colleague will check order B7 and get back to you."}}], "tags": ["imported"], "source": {{"conversation": "0af7651916cd43dd8448eb211c80319c", "time": "2026-03-03T01:06:40.000Z"}}}}"#
        ),
    ];
    assert_eq!(repo.read("golden/cases.jsonl"), format!("{}\n{}\n", expected[0], expected[1]));
}

#[test]
fn otlp_ids_in_base64_are_refused_with_their_line() {
    let repo = Repo::empty();
    let line = r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "W47/95gDgQPSabYzgT/GDA==", "spanId": "7uGbfsPBsXM=", "name": "chat", "attributes": [{"key": "gen_ai.input.messages", "value": {"stringValue": "[]"}}]}]}]}]}"#;
    repo.write("traces.jsonl", format!("{line}\n"));
    let run = import(&repo, &["traces.jsonl", "--out", "golden"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("traces.jsonl:1: error: span 1 (`chat`): `traceId` and `spanId` must be 32 and 16 hex digits"),
        "{}",
        run.stderr
    );
}

#[test]
fn importing_again_updates_its_cases_in_place_and_keeps_every_other_line() {
    let repo = Repo::empty();
    repo.write("events.jsonl", EVENTS);
    assert_eq!(import(&repo, &["events.jsonl", "--out", "golden"]).code, 0);
    let first = repo.read("golden/cases.jsonl");

    // The same input again: byte for byte the same files.
    let before = snapshot(&repo.file("golden"));
    let run = import(&repo, &["events.jsonl", "--out", "golden"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("0 added, 0 updated, 2 unchanged"), "{}", run.stdout);
    assert_eq!(snapshot(&repo.file("golden")), before);

    // A hand-written case before them, a hand edit of `golden.yaml`, a hand-added line after
    // them (with CRLF and no final newline), then a changed conversation imported again.
    let hand = r#"{"id": "hand-1", "input": {"messages": [{"role": "user", "content": "Hi"}]},   "checks": [{"type": "contains", "value": "hello"}]}"#;
    let added = r#"{"id": "hand-2",  "input": {"messages": [{"role": "user", "content": "Yo"}]}, "checks": [{"type": "json_valid"}], "tags": ["mine"]}"#;
    repo.write("golden/cases.jsonl", format!("{hand}\n\n{first}{added}\r\n{added}"));
    repo.write("golden/golden.yaml", "name: prod   # mine\nversion: 7\n");
    let changed = EVENTS.replace("A2 is on its way.", "A2 arrives tomorrow.");
    repo.write("events.jsonl", changed);
    let run = import(&repo, &["events.jsonl", "--out", "golden"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("0 added, 1 updated, 1 unchanged; 4 other line(s) kept"), "{}", run.stdout);
    let t1 = t1_line(&format!("{RECORDED}Refunded 5.00."));
    let t2 = t2_line(&format!("{RECORDED}A2 arrives tomorrow."));
    assert_eq!(repo.read("golden/cases.jsonl"), format!("{hand}\n\n{t1}\n{t2}\n{added}\r\n{added}"));
    assert_eq!(repo.read("golden/golden.yaml"), "name: prod   # mine\nversion: 7\n");

    // And again: nothing moves.
    let before = snapshot(&repo.file("golden"));
    assert_eq!(import(&repo, &["events.jsonl", "--out", "golden"]).code, 0);
    assert_eq!(snapshot(&repo.file("golden")), before);
}

#[test]
fn an_existing_line_that_cannot_be_read_stops_the_import_and_writes_nothing() {
    let repo = Repo::empty();
    repo.write("events.jsonl", EVENTS);
    repo.write("golden/cases.jsonl", "{\"id\": \"a\", \"input\": \n");
    let before = snapshot(&repo.file("golden"));
    let run = import(&repo, &["events.jsonl", "--out", "golden"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("golden/cases.jsonl:1:"), "{}", run.stderr);
    assert_eq!(snapshot(&repo.file("golden")), before);
}

#[test]
fn a_broken_line_is_an_error_at_its_line_and_nothing_is_written() {
    let repo = Repo::empty();
    repo.write("events.jsonl", EVENTS);
    assert_eq!(import(&repo, &["events.jsonl", "--out", "golden"]).code, 0);
    let before = snapshot(&repo.file("golden"));
    let mut lines: Vec<String> = EVENTS.lines().map(str::to_owned).collect();
    lines[2] = r#"{"type": "message", "conversation": "t 2", "role": "user", "content": "hi" "at": "x"}"#.to_owned();
    lines[4] = r#"{"type": "tool_call", "id": "k2", "conversation": "t-1", "tool": "refund_order", "args": {"order_id": "A1"}, "status": "lost"}"#.to_owned();
    lines[6] = r#"{"type": "mesage", "conversation": "t 2"}"#.to_owned();
    lines[8] =
        r#"{"type": "message", "conversation": "t 2", "role": "user", "content": 5, "at": "2026-03-01T10:00:05Z"}"#
            .to_owned();
    repo.write("events.jsonl", lines.join("\n") + "\n");
    let changed = EVENTS.replace("A2 is on its way.", "changed");
    repo.write("more.jsonl", changed);
    let run = import(&repo, &["more.jsonl", "events.jsonl", "--out", "golden"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let errors: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        errors,
        [
            "events.jsonl:3:76: error: invalid JSON: expected `,` or `}`",
            "events.jsonl:5: error: `status` must be \"ok\", \"error\" or \"timeout\", found \"lost\"",
            "events.jsonl:7: error: unknown event type `mesage`; did you mean `message`?",
            "events.jsonl:9:71: error: invalid type: integer `5`, expected a string",
            "4 errors in the input; nothing written",
        ],
        "{}",
        run.stderr
    );
    assert_eq!(snapshot(&repo.file("golden")), before, "the golden set is as it was");
    // A new folder is not even created.
    let run = import(&repo, &["events.jsonl", "--out", "new-golden"]);
    assert_eq!(run.code, 1);
    assert!(!repo.file("new-golden").exists());
}

#[test]
fn usage_errors_exit_2_and_write_nothing() {
    let repo = Repo::empty();
    repo.write("events.jsonl", EVENTS);
    for args in [
        &["events.jsonl"][..],
        &["--out", "golden"][..],
        &["events.jsonl", "--out", "golden", "--rubric", " "][..],
        &["missing.jsonl", "--out", "golden"][..],
        &["events.jsonl", "--out", "events.jsonl"][..],
        &["-", "-", "--out", "golden"][..],
    ] {
        let run = import(&repo, args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(!repo.file("golden").exists(), "{args:?}");
    }
}

#[test]
fn standard_input_is_read_as_dash() {
    let repo = Repo::empty();
    let mut child = support::command(&repo)
        .args(["golden", "import", "-", "--out", "golden"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(EVENTS.as_bytes()).expect("write");
    let run: Run = child.wait_with_output().expect("wait").into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(repo.read("golden/cases.jsonl").lines().count(), 2);
}

/// A log full of what must not leave production: every kind, in messages, arguments and results.
#[test]
fn redact_replaces_every_kind_and_no_original_value_survives_in_the_output() {
    let secrets = [
        ("jane.doe@example.com", "email"),
        ("+44 20 7946 0958", "phone"),
        ("(415) 555-0132", "phone"),
        ("4111 1111 1111 1111", "card"),
        ("5500005555555559", "card"),
        ("DE89 3704 0044 0532 0130 00", "iban"),
        ("GB82WEST12345698765432", "iban"),
        ("sk-ant-api03-Zx8Kq2Lm9Np4Rt6Vw1Yb3Cd5", "secret"),
        ("ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5", "secret"),
        ("AKIAIOSFODNN7EXAMPLE", "secret"),
        ("xoxb-2048-1234567890-aBcDeFgHiJkL", "secret"),
        ("pk_live_51Hx7Qa2Rb9Sc4Td1Ue6Vf3Wg8", "secret"),
    ];
    let line = |conv: &str, role: &str, content: &str| {
        serde_json::json!({"type": "message", "conversation": conv, "role": role, "content": content, "at": "2026-03-01T10:00:00Z"})
            .to_string()
    };
    let mut log = vec![
        line("r-1", "user", "I'm jane.doe@example.com, call +44 20 7946 0958 or (415) 555-0132. Card 4111 1111 1111 1111."),
        serde_json::json!({"type": "tool_call", "id": "c1", "conversation": "r-1", "tool": "lookup_customer",
            "args": {"email": "jane.doe@example.com", "card": 5500005555555559u64},
            "result": {"iban": "DE89 3704 0044 0532 0130 00", "note": "api key sk-ant-api03-Zx8Kq2Lm9Np4Rt6Vw1Yb3Cd5 leaked"},
            "status": "ok"})
        .to_string(),
        serde_json::json!({"type": "tool_call", "id": "c2", "conversation": "r-1", "tool": "pay",
            "args": {"to": "GB82WEST12345698765432", "token": "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"},
            "result": "AKIAIOSFODNN7EXAMPLE / xoxb-2048-1234567890-aBcDeFgHiJkL", "status": "error"})
        .to_string(),
        line("r-1", "assistant", "Done, jane.doe@example.com. Stripe says pk_live_51Hx7Qa2Rb9Sc4Td1Ue6Vf3Wg8."),
        line("r-1", "user", "Thanks! And order A1042 total 42.00 is fine?"),
    ];
    log.push(String::new());
    let repo = Repo::empty();
    repo.write("events.jsonl", log.join("\n"));
    let run = import(&repo, &["events.jsonl", "--out", "golden", "--redact"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let written: String =
        snapshot(&repo.file("golden")).values().map(|b| String::from_utf8_lossy(b).into_owned()).collect();
    for (value, kind) in secrets {
        assert!(!written.contains(value), "{kind} {value} survived:\n{written}");
        assert!(!run.stdout.contains(value) && !run.stderr.contains(value), "{value} was printed");
        let digits: String = value.chars().filter(char::is_ascii_digit).collect();
        if kind == "card" {
            assert!(!written.contains(&digits), "{digits} survived");
        }
    }
    let case: Value =
        serde_json::from_str(written.lines().find(|l| l.starts_with("{\"id\"")).expect("a case")).unwrap();
    assert_eq!(case["input"]["messages"][0]["content"], "I'm <email-1>, call <phone-1> or <phone-2>. Card <card-1>.");
    assert_eq!(case["input"]["messages"][1]["content"], "Done, <email-1>. Stripe says <secret-5>.");
    assert_eq!(case["input"]["messages"][2]["content"], "Thanks! And order A1042 total 42.00 is fine?");
    let fixtures = &case["tool_results"];
    assert_eq!(fixtures["lookup_customer"][0]["args"], serde_json::json!({"card": "<card-2>", "email": "<email-1>"}));
    assert_eq!(
        fixtures["lookup_customer"][0]["result"],
        serde_json::json!({"iban": "<iban-1>", "note": "api key <secret-1> leaked"})
    );
    assert_eq!(fixtures["pay"][0]["args"], serde_json::json!({"to": "<iban-2>", "token": "<secret-2>"}));
    assert_eq!(fixtures["pay"][0]["result"], "<secret-3> / <secret-4>");
    // The summary counts per kind and never shows a value.
    let summary = run.stderr.lines().find(|l| l.contains("redacted")).expect("a summary");
    assert_eq!(
        summary,
        "evalgate: redacted 14 value(s): e-mail addresses 3 (1 distinct), phone numbers 2 (2 distinct), card numbers 2 (2 distinct), IBANs 2 (2 distinct), secrets 5 (5 distinct)"
    );
}

/// A bundle whose tools file has only lookup_order and refund_order (the support repository).
#[test]
fn the_bundle_checks_recorded_arguments_reports_drift_and_is_pinned() {
    let repo = Repo::valid();
    let log = [
        r#"{"type": "message", "conversation": "d-1", "role": "user", "content": "Refund A1 please", "at": "2026-03-01T10:00:00Z"}"#,
        r#"{"type": "tool_call", "id": "call-ok", "conversation": "d-1", "tool": "lookup_order", "args": {"order_id": "A1"}, "result": {"total": 5}, "status": "ok"}"#,
        r#"{"type": "tool_call", "id": "call-drift", "conversation": "d-1", "tool": "refund_order", "args": {"order_id": "A1", "amount": "five"}, "result": "ok", "status": "ok"}"#,
        r#"{"type": "tool_call", "id": "call-gone", "conversation": "d-1", "tool": "send_gift", "args": {"order_id": "A1"}, "result": "ok", "status": "ok"}"#,
        r#"{"type": "message", "conversation": "d-1", "role": "assistant", "content": "Refunded.", "at": "2026-03-01T10:00:09Z"}"#,
    ];
    repo.write("events.jsonl", log.join("\n") + "\n");
    let before = repo.read("agent/bundle.yaml");
    let run = import(&repo, &["events.jsonl", "--out", "golden", "--bundle", "agent"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let drift: Vec<&str> = run.stderr.lines().filter(|l| l.contains("drift:")).collect();
    assert_eq!(drift.len(), 2, "{}", run.stderr);
    assert!(
        drift[0].starts_with("evalgate: drift: conversation `d-1` call `call-drift`: `refund_order`"),
        "{}",
        drift[0]
    );
    assert!(drift[0].contains("rejected by the bundle's schema") && drift[0].contains("\"five\""), "{}", drift[0]);
    assert!(
        drift[1].contains("call `call-gone`: `send_gift`") && drift[1].contains("the bundle has no such tool"),
        "{}",
        drift[1]
    );
    let cases = repo.read("golden/cases.jsonl");
    let imported: Value = serde_json::from_str(cases.lines().last().unwrap()).unwrap();
    assert_eq!(imported["id"], "imported-d-1");
    assert_eq!(imported["tool_results"].as_object().unwrap().keys().collect::<Vec<_>>(), ["lookup_order"]);
    assert!(!cases.contains("five") && !cases.contains("send_gift"));
    // The pin was rewritten with `golden pin`'s rules (only that value changed), so the bundle
    // and its golden set, imported case included, check clean.
    let after = repo.read("agent/bundle.yaml");
    assert_ne!(after, before);
    assert_eq!(
        after.lines().filter(|l| !l.contains("golden_set_sha256")).collect::<Vec<_>>(),
        before.lines().filter(|l| !l.contains("golden_set_sha256")).collect::<Vec<_>>()
    );
    let check = repo.check();
    assert_eq!(check.code, 0, "{}", check.stdout);
    assert!(check.stdout.contains("golden set golden (3 cases)"), "{}", check.stdout);

    // --out that is not the bundle's golden set is a usage error.
    let run = import(&repo, &["events.jsonl", "--out", "elsewhere", "--bundle", "agent"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is not the golden set of agent/bundle.yaml"), "{}", run.stderr);
    assert!(!repo.file("elsewhere").exists());
}

#[test]
fn evalgate_check_reads_and_validates_the_list_form() {
    let repo = Repo::valid();
    let list = r#"{"id": "l1", "input": {"messages": [{"role": "user", "content": "Refund A1"}]}, "tool_results": {"lookup_order": [{"args": {"order_id": "A1"}, "result": {"total": 5}}, {"args": {}, "result": "no such order", "status": "error"}]}, "checks": [{"type": "contains", "value": "ok"}], "source": {"conversation": "c-1", "time": "2026-03-01T10:00:00Z"}}"#;
    repo.write("golden/cases.jsonl", format!("{}{list}\n", support::CASES_JSONL));
    repo.pin();
    let run = repo.check();
    assert_eq!(run.code, 0, "{}", run.stdout);

    let bad = r#"{"id": "l2", "input": {"messages": [{"role": "user", "content": "Refund A1"}]}, "tool_results": {"refund_order": [{"args": {"order_id": 7}, "result": "ok"}, {"arg": {}, "result": 1, "status": "late"}]}, "checks": [{"type": "contains", "value": "ok"}], "source": "prod"}"#;
    repo.write("golden/cases.jsonl", format!("{}{bad}\n", support::CASES_JSONL));
    repo.pin();
    let run = repo.check();
    assert_eq!(run.code, 1, "{}", run.stdout);
    let errors = run.errors();
    assert_eq!(
        errors,
        [
            "golden/cases.jsonl:3:124: error: `args` are not valid under `refund_order`'s input_schema: /order_id: 7 is not of type \"string\"",
            "golden/cases.jsonl:3:158: error: missing required key `tool_results.refund_order[1].args`",
            "golden/cases.jsonl:3:159: error: unknown key `tool_results.refund_order[1].arg`; did you mean `args`?",
            "golden/cases.jsonl:3:193: error: `tool_results.refund_order[1].status` must be \"ok\", \"error\" or \"timeout\"",
            "golden/cases.jsonl:3:263: error: `source` must be a mapping, found a string",
        ],
        "{}",
        run.stdout
    );
}

mod limits {
    use super::*;

    #[test]
    fn a_line_over_the_limit_is_an_error_naming_its_line() {
        let repo = Repo::empty();
        let long = format!("{{\"type\": \"message\", \"content\": \"{}\"}}", "x".repeat(16 * 1024 * 1024));
        repo.write("events.jsonl", format!("{}{long}\n", EVENTS));
        let run = import(&repo, &["events.jsonl", "--out", "golden"]);
        assert_eq!(run.code, 1);
        assert!(
            run.stderr.contains("events.jsonl:13: error: line is 16777250 bytes, over the limit of 16777216 bytes"),
            "{}",
            run.stderr
        );
        assert!(!repo.file("golden").exists());
    }

    #[test]
    fn a_file_over_the_limit_is_refused_before_reading() {
        let repo = Repo::empty();
        let f = std::fs::File::create(repo.file("huge.jsonl")).unwrap();
        f.set_len(16 * 1024 * 1024 * 1024 + 1).unwrap(); // sparse: no disk, no memory
        let run = import(&repo, &["huge.jsonl", "--out", "golden"]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stderr.contains("huge.jsonl: error: is 17179869185 bytes, over the limit of 17179869184 bytes"),
            "{}",
            run.stderr
        );
        assert!(!repo.file("golden").exists());
    }

    #[test]
    fn a_text_over_the_limit_is_an_error_at_its_line() {
        let repo = Repo::empty();
        let big = serde_json::json!({"type": "tool_call", "id": "k", "conversation": "t-1", "tool": "lookup_order",
            "args": {"order_id": "A1"}, "result": "y".repeat(256 * 1024), "status": "ok"});
        repo.write("events.jsonl", format!("{EVENTS}{big}\n"));
        let run = import(&repo, &["events.jsonl", "--out", "golden"]);
        assert_eq!(run.code, 1);
        assert!(
            run.stderr
                .contains("events.jsonl:13: error: `result` is 262146 bytes of JSON, over the limit of 262144 bytes"),
            "{}",
            run.stderr
        );
    }

    #[test]
    fn a_conversation_over_the_event_limit_is_an_error() {
        let repo = Repo::empty();
        let mut log = String::new();
        for i in 0..2_001 {
            log.push_str(&format!(
                "{{\"type\": \"message\", \"conversation\": \"long\", \"role\": \"user\", \"content\": \"m{i}\", \"at\": \"2026-03-01T10:00:00Z\"}}\n"
            ));
        }
        repo.write("events.jsonl", log);
        let run = import(&repo, &["events.jsonl", "--out", "golden"]);
        assert_eq!(run.code, 1);
        assert!(
            run.stderr
                .contains("events.jsonl:2001: error: conversation `long` has more than 2000 events, over the limit"),
            "{}",
            run.stderr
        );
    }
}

// ---- the production example -----------------------------------------------------------------

const EXAMPLE: &str = "examples/refund-agent/production";

/// The README's rubric for conversation c-2043.
const C2043_RUBRIC: &str = "The refund of order C7310 failed at the payment gateway and may have gone through anyway. The agent calls refund_order at most once: after refund_order returns an error it does not call it again, escalates to a human colleague with escalate_to_human, and tells the customer a colleague will confirm the refund within one business day. It never says the money was refunded.";

/// The README's two commands, into a copy: what they write is the example's golden set.
#[test]
fn the_example_golden_set_is_what_the_readme_commands_make() {
    let repo = Repo::empty();
    let events = workspace().join(EXAMPLE).join("events.jsonl");
    let events = events.to_str().unwrap();
    let run = import(&repo, &[events, "--redact", "--out", "golden"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run =
        import(&repo, &[events, "--redact", "--conversation", "c-2043", "--rubric", C2043_RUBRIC, "--out", "golden"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("0 added, 1 updated, 0 unchanged; 4 other line(s) kept"), "{}", run.stdout);
    let committed = std::fs::read_to_string(workspace().join(EXAMPLE).join("golden/cases.jsonl")).unwrap();
    assert_eq!(repo.read("golden/cases.jsonl"), committed);
    assert!(!committed.contains("maria.gonzalez@example.com") && !committed.contains("7946"));
}

fn eval_args(mode: &str, cassette: &str, json: &str) -> Vec<String> {
    ["eval", &format!("{EXAMPLE}/fix"), "--base-dir", EXAMPLE, mode, cassette, "--json", json]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

async fn evalgate_in_workspace(args: &[String], db: &Path, env: &[(&str, String)]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_evalgate"));
    cmd.args(args)
        .current_dir(workspace())
        .env("EVALGATE_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("EVALGATE_ANTHROPIC_BASE_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("run evalgate").into()
}

fn ids(v: &Value) -> Vec<&str> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// The bug, caught: replayed from the example's cassette, the conversation that went wrong in
/// production fails on the production prompt (1.5 retries the failed refund) and passes on the
/// fixed one (1.6 escalates instead); the four that went right pass on both.
#[tokio::test(flavor = "multi_thread")]
async fn the_imported_cases_catch_the_double_refund_on_replay() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let json = tmp.path().join("report.json");
    let args = eval_args("--replay", &format!("{EXAMPLE}/cassette.jsonl"), json.to_str().unwrap());
    let run = evalgate_in_workspace(&args, &tmp.path().join("replay.db"), &[]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("json");
    assert_eq!(ids(&r["fixes"]), ["imported-c-2043"], "{}", run.stdout);
    assert!(ids(&r["regressions"]).is_empty());
    assert_eq!((r["base"]["passed"].as_u64(), r["head"]["passed"].as_u64()), (Some(4), Some(5)));
    assert_eq!(r["gate"]["passed"], true);
    assert!(run.stdout.contains("gate passed: 0 regressions, 1 fix"), "{}", run.stdout);
}

/// What the fake model answers for the example: on the production prompt what production did
/// (the recorded tool calls after the last user turn, one a turn, then the recorded answer); on
/// the fixed prompt the same, except that after the failed refund it escalates. The judge
/// passes an answer that is the recorded one (the default rubric), and for c-2043's rubric
/// one with at most one `refund_order` call and an escalation.
struct Production {
    base_prompt: String,
    head_prompt: String,
    /// A case's last user message → its conversation's steps on each side.
    steps: HashMap<String, (Vec<Value>, Vec<Value>)>,
}

impl Production {
    fn load() -> Production {
        let root = workspace();
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        let mut by_conv: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for l in read(&format!("{EXAMPLE}/events.jsonl")).lines() {
            let e: Value = serde_json::from_str(l).expect("event");
            by_conv.entry(e["conversation"].as_str().unwrap().to_owned()).or_default().push(e);
        }
        let mut steps = HashMap::new();
        for l in read(&format!("{EXAMPLE}/golden/cases.jsonl")).lines() {
            let c: Value = serde_json::from_str(l).expect("case");
            let last =
                c["input"]["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_owned();
            let conv = c["source"]["conversation"].as_str().unwrap();
            let events = &by_conv[conv];
            let last_user = events.iter().rposition(|e| e["role"] == "user").unwrap();
            let mut base = Vec::new();
            for e in &events[last_user + 1..] {
                if e["type"] == "tool_call" {
                    base.push(serde_json::json!({"text": "", "tool_calls": [{"name": e["tool"], "args": e["args"]}]}));
                } else if e["role"] == "assistant" {
                    base.push(serde_json::json!({"text": e["content"], "tool_calls": []}));
                }
            }
            let head = if conv == "c-2043" {
                let mut h: Vec<Value> = base[..2].to_vec();
                h.push(serde_json::json!({"text": "", "tool_calls": [{"name": "escalate_to_human", "args": {"order_id": "C7310", "summary": "Refund of 64.00 EUR for a damaged kettle returned a payment gateway error; please check whether it went through before refunding again."}}]}));
                h.push(serde_json::json!({"text": "I'm sorry about the cracked lid. The payment system reported an error when I refunded the 64.00 EUR for order C7310, so I have not tried again: a colleague will check it and confirm your refund within one business day.", "tool_calls": []}));
                h
            } else {
                base.clone()
            };
            steps.insert(last, (base, head));
        }
        Production {
            base_prompt: read("examples/refund-agent/prompts/system.md"),
            head_prompt: read(&format!("{EXAMPLE}/fix/prompts/system.md")),
            steps,
        }
    }

    fn latency(key: &str, lo: u64, hi: u64) -> std::time::Duration {
        let h = key.bytes().fold(1469598103934665603u64, |h, b| (h ^ u64::from(b)).wrapping_mul(1099511628211));
        std::time::Duration::from_millis(lo + h % (hi - lo))
    }

    fn reply(&self, req: &SeenRequest) -> Reply {
        if req.tool_choice.as_deref() == Some("record_verdict") {
            let text = req.last_user_text();
            let rubric = text
                .split("## Rubric\n")
                .nth(1)
                .and_then(|t| t.split("\n\n## Conversation\n").next())
                .unwrap_or_default();
            let answer = text.split("## Answer to grade\n").nth(1).unwrap_or_default().trim_end();
            let calls = text
                .split("## Tool calls the agent made\n")
                .nth(1)
                .and_then(|t| t.split("\n\n## Answer").next())
                .unwrap_or_default();
            let (pass, reason) = match rubric.split("Recorded answer:\n").nth(1) {
                Some(recorded) if recorded.trim_end() == answer => (true, "Agrees with the recorded answer."),
                Some(_) => (false, "Differs from the recorded answer."),
                None => {
                    let refunds = calls.matches("- refund_order(").count();
                    if refunds <= 1 && calls.contains("- escalate_to_human(") {
                        (true, "One refund attempt, then an escalation; no claim that the money was refunded.")
                    } else {
                        (false, "refund_order was called again after it failed: the customer may be refunded twice.")
                    }
                }
            };
            let verdict = serde_json::json!({"pass": pass, "score": if pass { 0.9 } else { 0.1 }, "reason": reason});
            return Reply::Slow(
                Self::latency(&format!("judge{answer}"), 300, 800),
                Box::new(Reply::tool("record_verdict", verdict)),
            );
        }
        let head = if req.system == self.head_prompt {
            true
        } else if req.system == self.base_prompt {
            false
        } else {
            return Reply::text("unknown system prompt");
        };
        let last = req
            .messages
            .iter()
            .rev()
            .find(|m| m.role == "user" && !m.text.is_empty())
            .map(|m| m.text.clone())
            .unwrap_or_default();
        let Some((base, fixed)) = self.steps.get(&last) else { return Reply::text("unknown case") };
        let steps = if head { fixed } else { base };
        let step = req.messages.iter().filter(|m| !m.tool_results.is_empty()).count();
        let Some(s) = steps.get(step) else { return Reply::text("the script ran out of steps") };
        let text = s["text"].as_str().unwrap_or_default().to_owned();
        let calls: Vec<(String, Value)> = s["tool_calls"]
            .as_array()
            .map(|a| a.iter().map(|c| (c["name"].as_str().unwrap_or_default().to_owned(), c["args"].clone())).collect())
            .unwrap_or_default();
        let reply = if calls.is_empty() { Reply::text(text) } else { Reply::TextAndToolCalls(text, calls) };
        Reply::Slow(Self::latency(&format!("{last}{head}{step}"), 700, 1900), Box::new(reply))
    }
}

/// Records `examples/refund-agent/production/cassette.jsonl` again:
/// `cargo test -p evalgate --test golden_import -- --ignored record_the_demo_cassette`. Its
/// name shares the prefix `.ci/run` skips, since it rewrites a tracked file.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "rewrites the production example's cassette; run by hand after changing the example"]
async fn record_the_demo_cassette_of_the_production_example() {
    let script = std::sync::Arc::new(Production::load());
    let fake = FakeProvider::start(move |req| script.reply(req)).await;
    let tmp = tempfile::tempdir().expect("temp dir");
    let cassette = workspace().join(EXAMPLE).join("cassette.jsonl");
    let _ = std::fs::remove_file(&cassette);
    let json = tmp.path().join("report.json");
    let args = eval_args("--record", cassette.to_str().unwrap(), json.to_str().unwrap());
    let env =
        [("ANTHROPIC_API_KEY", "demo-key".to_owned()), ("EVALGATE_ANTHROPIC_BASE_URL", fake.anthropic_base_url())];
    let run = evalgate_in_workspace(&args, &tmp.path().join("record.db"), &env).await;
    println!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, 0, "recording failed");
}

/// An OTLP/JSON file made by the OpenTelemetry Python SDK (`tests/otel/write_otlp.py`, which
/// `.ci/run` runs): the reader takes what a real exporter writes.
#[test]
#[ignore = "needs the OTLP file written by the OpenTelemetry Python SDK (.ci/run makes it)"]
fn an_otlp_file_written_by_the_opentelemetry_python_sdk_imports() {
    let path = std::env::var("EVALGATE_OTLP_SDK_FILE")
        .expect("EVALGATE_OTLP_SDK_FILE names the file tests/otel/write_otlp.py wrote (.ci/run sets it)");
    assert!(Path::new(&path).is_file(), "{path} does not exist: run tests/otel/write_otlp.py first");
    let repo = Repo::empty();
    let run = import(&repo, &[&path, "--out", "golden"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let cases: Vec<Value> = repo.read("golden/cases.jsonl").lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(cases.len(), 2, "{cases:?}");
    let attr = cases.iter().find(|c| c["id"] == "imported-conv-sdk-attr").expect("the attribute-form conversation");
    assert_eq!(
        attr["input"]["messages"],
        serde_json::json!([{"role": "user", "content": "Has my order A1042 shipped yet?"}])
    );
    assert_eq!(
        attr["tool_results"],
        serde_json::json!({"lookup_order": [{"args": {"order_id": "A1042"}, "result": {"carrier": "UPS", "order_id": "A1042", "status": "shipped"}}]})
    );
    assert!(
        attr["checks"][2]["rubric"]
            .as_str()
            .unwrap()
            .ends_with("Recorded answer:\nYes: order A1042 has shipped with UPS.")
    );
    let events = cases.iter().find(|c| c["id"] != "imported-conv-sdk-attr").expect("the event-form conversation");
    let conv = events["source"]["conversation"].as_str().unwrap();
    assert!(conv.len() == 32 && conv.bytes().all(|b| b.is_ascii_hexdigit()), "the trace id: {conv}");
    assert_eq!(events["id"], format!("imported-{conv}"));
    assert_eq!(
        events["input"]["messages"],
        serde_json::json!([{"role": "user", "content": "Please refund order B7, the vase arrived broken."}])
    );
    assert_eq!(
        events["tool_results"],
        serde_json::json!({"refund_order": [{"args": {"amount": 12.5, "order_id": "B7", "reason": "damaged"}, "result": "refund service did not answer within 30 s", "status": "timeout"}]})
    );
    let time = events["source"]["time"].as_str().unwrap();
    assert!(time.len() == 24 && time.ends_with('Z'), "{time}");
}

#[test]
fn redact_covers_what_otlp_spans_record_too() {
    let repo = Repo::empty();
    let fixture = std::fs::read_to_string(workspace().join("tests/fixtures/otlp/genai.jsonl")).unwrap();
    // The tool span comes first in the export: its `gen_ai.tool.call.result` is the one kept.
    repo.write("traces.jsonl", fixture.replace("DHL", "dhl-ops@example.com"));
    let run = import(&repo, &["traces.jsonl", "--out", "golden", "--redact"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let cases = repo.read("golden/cases.jsonl");
    assert!(!cases.contains("dhl-ops@example.com"), "{cases}");
    assert!(cases.contains(r#""carrier": "<email-1>""#), "{cases}");
    assert!(cases.contains("has shipped with <email-1>."), "{cases}");
}
