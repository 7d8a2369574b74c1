//! `evalgate eval` end to end: the real binary against a fake provider on loopback, on a
//! repository built so the right answer is known case by case.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use support::fake_provider::Reply;
use support::scenario::{self, JudgeMode, Plan, Script, Spec, ids};

fn db(repo: &support::Repo) -> std::path::PathBuf {
    repo.file("evalgate.db")
}

#[tokio::test(flavor = "multi_thread")]
async fn regressions_and_fixes_are_exactly_the_cases_that_moved() {
    let repo = scenario::repo(&Spec { gate: "{ max_regression_rate: 0.1 }", ..Spec::new(12) });
    let script = Script::new()
        .head(3, Plan::Fail)
        .head(8, Plan::Fail)
        .base(5, Plan::Fail)
        .base(6, Plan::Fail)
        .base(11, Plan::Fail)
        .base(12, Plan::Fail)
        .head(12, Plan::Fail);
    let fake = scenario::provider(Arc::new(script)).await;
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;

    assert_eq!(ids(&r["regressions"]), ["c03", "c08"], "{}", run.stderr);
    assert_eq!(ids(&r["fixes"]), ["c05", "c06", "c11"]);
    // 8 cases pass on base, 2 of them regress; 4 fail on base, 3 of them are fixed.
    assert_eq!(r["base"]["passed"], 8);
    assert_eq!(r["regression_rate"], 0.25);
    assert_eq!(r["fix_rate"], 0.75);
    assert_eq!(r["head"]["passed"], 9);
    assert_eq!(r["gate"]["passed"], false);
    assert_eq!(r["gate"]["reasons"][0], "2 regression(s): regression rate 25.0% > 10.0% (max_regression_rate)");
    assert_eq!(run.code, 1, "gate failed exits 1: {}", run.stderr);
    assert!(
        run.stdout.contains("gate failed: 2 regressions (regression rate 25.0% > 10.0%), 3 fixes"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_has_every_field_spec_names() {
    let repo = scenario::repo(&Spec::new(4));
    let fake = scenario::provider(Arc::new(Script::new())).await;
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    for key in [
        "bundle",
        "base",
        "head",
        "golden_set_sha256",
        "regressions",
        "fixes",
        "flaky",
        "regression_rate",
        "fix_rate",
        "mcnemar_p",
        "judge_error_rate",
        "thresholds",
        "gate",
        "incomplete",
    ] {
        assert!(r.get(key).is_some(), "report lacks `{key}`");
    }
    for side in ["base", "head"] {
        for key in [
            "bundle_sha256",
            "pass_rate",
            "pass_rate_ci95",
            "cases",
            "passed",
            "failed",
            "errors",
            "cost_usd",
            "tokens_in",
            "tokens_out",
            "p95_latency_ms",
        ] {
            assert!(r[side].get(key).is_some(), "report.{side} lacks `{key}`");
        }
    }
    assert_eq!(r["bundle"], "demo");
    assert_eq!(r["incomplete"], Value::Null);
    assert_eq!(r["gate"]["passed"], true);
    assert_eq!(r["thresholds"]["max_regression_rate"], serde_json::json!({"value": 0.0, "source": "bundle"}));
    assert_eq!(r["head"]["pass_rate_ci95"].as_array().map(Vec::len), Some(2));
    assert!(r["head"]["bundle_sha256"].as_str().is_some_and(|s| s.starts_with("sha256:")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_with_unchanged_inputs_calls_no_model() {
    let spec = Spec { judged: BTreeSet::from([1, 2]), ..Spec::new(6) };
    let repo = scenario::repo(&spec);
    let fake = scenario::provider(Arc::new(Script::new())).await;
    let (first, r1) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let calls = fake.call_count();
    assert!(calls > 0);
    let (second, r2) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(fake.call_count(), calls, "the second run called a model");
    assert_eq!(r2["calls"]["model_calls"], 0);
    assert_eq!(r2["calls"]["cached_votes"], 12, "2 judged cases x 3 votes x 2 sides");
    assert_eq!(r2["calls"]["cached_transcripts"], 12, "6 cases x 2 sides");
    assert_eq!(r1["regressions"], r2["regressions"]);
    assert_eq!(r1["head"]["pass_rate"], r2["head"]["pass_rate"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn identical_work_on_both_sides_is_done_once() {
    // Base and head differ only in their gate: every transcript and vote is shared.
    let repo = scenario::repo(&Spec { judged: BTreeSet::from([1]), ..Spec::new(4) });
    repo.write("base/prompt.md", repo.read("agent/prompt.md"));
    let fake = scenario::provider(Arc::new(Script::new())).await;
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // 4 cases, 2 of them with a tool round: 6 agent calls; 3 judge votes.
    assert_eq!(fake.call_count(), 9);
    assert_eq!(r["calls"]["model_calls"], 9);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_estimate_matches_the_real_call_count() {
    let spec = Spec { judged: BTreeSet::from([1, 4]), ..Spec::new(8) };
    let repo = scenario::repo(&spec);
    let fake = scenario::provider(Arc::new(Script::new().head(2, Plan::Fail))).await;
    let est =
        scenario::evalgate(&repo, Some(&fake), &db(&repo), &["eval", "agent", "--base-dir", "base", "--estimate"])
            .await;
    assert_eq!(est.code, 0, "{}", est.stderr);
    assert_eq!(fake.call_count(), 0, "an estimate calls no model");
    let predicted: u64 = est
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("model calls: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no call count in {}", est.stdout));
    let (run, _) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(run.code, 1, "c02 regressed: {}", run.stderr);
    assert_eq!(predicted, fake.call_count() as u64);

    let again =
        scenario::evalgate(&repo, Some(&fake), &db(&repo), &["eval", "agent", "--base-dir", "base", "--estimate"])
            .await;
    assert!(again.stdout.contains("model calls: 0 "), "after a run everything is cached: {}", again.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn judge_errors_are_never_a_pass() {
    let spec = Spec { judged: BTreeSet::from([1, 2, 3]), gate: "{ max_regression_rate: 1.0 }", ..Spec::new(4) };
    let repo = scenario::repo(&spec);
    let fake = scenario::provider(Arc::new(Script::new().judge(JudgeMode::Prose))).await;
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(r["judge_error_rate"], 1.0, "{}", run.stderr);
    assert_eq!(r["head"]["passed"], 1, "only the unjudged case passes");
    assert_eq!(r["head"]["judge_errors"], 3);
    assert_eq!(ids(&r["regressions"]), Vec::<String>::new(), "an ungraded case is not a regression");
    assert_eq!(r["gate"]["passed"], false);
    assert!(r["gate"]["reasons"].to_string().contains("judge error rate on head 100.0% > 5.0%"), "{}", r["gate"]);
    assert_eq!(r["base"]["judge_error_rate"], 1.0);
    assert_eq!(run.code, 1);
    // Each vote was asked again before it counted as an error: 3 cases x 3 votes x 3 attempts
    // on each side.
    let judge_calls = fake.calls().iter().filter(|c| c.tool_choice.is_some()).count();
    assert_eq!(judge_calls, 54);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_judge_is_the_pinned_judge_model_never_the_model_under_test() {
    let repo = scenario::repo(&Spec { judged: BTreeSet::from([1]), ..Spec::new(2) });
    let fake = scenario::provider(Arc::new(Script::new())).await;
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let calls = fake.calls();
    assert!(calls.iter().filter(|c| c.tool_choice.is_some()).all(|c| c.model == "claude-haiku-4-5-20251001"));
    assert!(calls.iter().filter(|c| c.tool_choice.is_none()).all(|c| c.model == "claude-sonnet-4-5-20250929"));
    assert!(r["judge_sha256"].as_str().is_some_and(|s| s.starts_with("sha256:")));
    assert_eq!(r["judge"]["identity_sha256"], r["judge_sha256"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn flaky_cases_are_listed_apart_and_not_counted() {
    let spec = Spec { samples: 3, gate: "{ max_regression_rate: 0.0 }", ..Spec::new(4) };
    let repo = scenario::repo(&spec);
    let fake = scenario::provider(Arc::new(Script::new().head(3, Plan::Flaky).base(4, Plan::Flaky))).await;
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    // Flaky on base: not counted. Flaky on head only (pass, fail, pass): counted by its
    // majority, a pass, so it moved nowhere; listed in head_flaky.
    assert_eq!(ids(&r["flaky"]), ["c04"], "{}", run.stderr);
    assert_eq!(ids(&r["head_flaky"]), ["c03"]);
    assert!(ids(&r["regressions"]).is_empty());
    assert!(ids(&r["fixes"]).is_empty());
    assert_eq!(r["gate"]["passed"], true);
    assert_eq!(run.code, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_critical_regression_fails_the_gate_within_the_rate() {
    let spec = Spec { critical: BTreeSet::from([2]), gate: "{ max_regression_rate: 0.5 }", ..Spec::new(4) };
    let repo = scenario::repo(&spec);
    let fake = scenario::provider(Arc::new(Script::new().head(2, Plan::Fail))).await;
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(r["gate"]["reasons"], serde_json::json!(["critical case c02 regressed"]), "{}", run.stderr);
    assert_eq!(run.code, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_budget_cap_stops_the_run_and_exits_3() {
    let spec = Spec { budget: "{ max_tokens: 1 }", ..Spec::new(10) };
    let repo = scenario::repo(&spec);
    let fake = scenario::provider(Arc::new(Script::new())).await;
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &["--concurrency", "1"]).await;
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(r["incomplete"]["reason"].as_str().is_some_and(|s| s.contains("budget reached")), "{}", r["incomplete"]);
    assert_eq!(r["gate"]["passed"], false);
    assert_eq!(r["incomplete"]["cases"].as_array().map(Vec::len), Some(10), "every case it could not run is named");
    assert_eq!(fake.call_count(), 1, "one call, then the cap");
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_after_429_with_retry_after_and_completes() {
    let repo = scenario::repo(&Spec::new(2));
    let script = Arc::new(Script::new());
    let first = std::sync::atomic::AtomicBool::new(true);
    let fake = support::fake_provider::FakeProvider::start(move |req| {
        if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Reply::status_429(1);
        }
        script.reply(req)
    })
    .await;
    let started = std::time::Instant::now();
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &["--concurrency", "1"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(r["incomplete"], Value::Null);
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "Retry-After was not honoured");
    // 2 cases x 2 sides: c01 one call, c02 two; the 429 adds one.
    assert_eq!(fake.call_count(), 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unavailable_provider_makes_the_run_incomplete_never_a_pass() {
    let repo = scenario::repo(&Spec::new(3));
    let fake = support::fake_provider::FakeProvider::start(|_| Reply::Status {
        status: 503,
        retry_after: None,
        retry_after_ms: Some(5),
        body: support::fake_provider::anthropic_error_body("overloaded_error", "Overloaded"),
    })
    .await;
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(r["incomplete"]["reason"].as_str().is_some_and(|s| s.contains("unavailable")), "{}", r["incomplete"]);
    assert_eq!(r["gate"]["passed"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_api_key_is_a_setup_error_naming_the_variable() {
    let repo = scenario::repo(&Spec::new(1));
    let run = scenario::evalgate(&repo, None, &db(&repo), &["eval", "agent", "--base-dir", "base"]).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("ANTHROPIC_API_KEY"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn record_then_replay_reproduces_the_report_offline_bit_for_bit() {
    let spec = Spec { judged: BTreeSet::from([1, 2]), gate: "{ max_regression_rate: 1.0 }", ..Spec::new(6) };
    let repo = scenario::repo(&spec);
    let fake = scenario::provider(Arc::new(Script::new().head(3, Plan::Fail).base(4, Plan::Fail))).await;
    let (rec, recorded) =
        scenario::eval(&repo, Some(&fake), &repo.file("record.db"), &["--record", "cassette.jsonl"]).await;
    assert_eq!(rec.code, 0, "{}", rec.stderr);
    let calls = fake.call_count();
    let (rep, replayed) = scenario::eval(&repo, None, &repo.file("replay.db"), &["--replay", "cassette.jsonl"]).await;
    assert_eq!(rep.code, 0, "{}", rep.stderr);
    assert_eq!(fake.call_count(), calls, "the replay went to the network");
    assert_eq!(recorded, replayed);
    assert_eq!(rec.stdout, rep.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_missing_from_the_cassette_makes_the_run_incomplete() {
    let repo = scenario::repo(&Spec::new(3));
    let fake = scenario::provider(Arc::new(Script::new())).await;
    let (rec, _) = scenario::eval(&repo, Some(&fake), &repo.file("a.db"), &["--record", "cassette.jsonl"]).await;
    assert_eq!(rec.code, 0, "{}", rec.stderr);
    repo.patch("agent/prompt.md", "first.", "first, always.");
    let (run, r) = scenario::eval(&repo, None, &repo.file("b.db"), &["--replay", "cassette.jsonl"]).await;
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(r["incomplete"]["reason"].as_str().is_some_and(|s| s.contains("cassette")), "{}", r["incomplete"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn command_line_thresholds_tighten_and_say_where_they_came_from() {
    let repo = scenario::repo(&Spec { gate: "{ max_regression_rate: 0.5, min_pass_rate: 0.5 }", ..Spec::new(4) });
    let fake = scenario::provider(Arc::new(Script::new().head(1, Plan::Fail))).await;
    let (run, r) = scenario::eval(
        &repo,
        Some(&fake),
        &db(&repo),
        &["--threshold", "max_regression_rate=10%", "--threshold", "min_pass_rate=0.2"],
    )
    .await;
    assert_eq!(r["thresholds"]["max_regression_rate"], serde_json::json!({"value": 0.1, "source": "cli"}));
    assert_eq!(r["thresholds"]["min_pass_rate"], serde_json::json!({"value": 0.5, "source": "bundle"}));
    assert!(r["thresholds_ignored"].to_string().contains("would loosen"));
    assert_eq!(run.code, 1, "1 of 4 regressed: 25% > 10%");
}

#[tokio::test(flavor = "multi_thread")]
async fn markdown_and_junit_reports_are_written() {
    let repo = scenario::repo(&Spec::new(3));
    let fake = scenario::provider(Arc::new(Script::new().head(2, Plan::Fail))).await;
    let (run, _) = scenario::eval(&repo, Some(&fake), &db(&repo), &["--markdown", "r.md", "--junit", "r.xml"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let md = repo.read("r.md");
    assert!(md.starts_with("## gate failed: 1 regression"), "{md}");
    assert!(md.contains("**c02**"), "{md}");
    let xml = repo.read("r.xml");
    assert!(xml.contains("<testcase name=\"c02\""), "{xml}");
    assert!(xml.contains("regressed: contains"), "{xml}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openai_wire_format_runs_the_same_gate() {
    let repo = scenario::repo(&Spec { provider: "openai", judged: BTreeSet::from([1]), ..Spec::new(4) });
    let fake = scenario::provider(Arc::new(Script::new().head(2, Plan::Fail))).await;
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(ids(&r["regressions"]), ["c02"], "{}", run.stderr);
    assert!(fake.calls().iter().all(|c| matches!(c.api, support::fake_provider::Api::OpenAi)));
    assert_eq!(run.code, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_in_flight_never_exceed_the_concurrency() {
    let repo = scenario::repo(&Spec::new(12));
    let script = Arc::new(Script::new());
    let fake = support::fake_provider::FakeProvider::start(move |req| {
        Reply::Slow(std::time::Duration::from_millis(30), Box::new(script.reply(req)))
    })
    .await;
    let (run, _) = scenario::eval(&repo, Some(&fake), &db(&repo), &["--concurrency", "3"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(fake.max_in_flight() <= 3, "{} in flight", fake.max_in_flight());
    assert!(fake.max_in_flight() >= 2, "the run did not overlap calls");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_base_is_read_from_a_git_revision() {
    let repo = scenario::repo(&Spec::new(2));
    // Make the repository a real git repository whose HEAD holds the head prompt as base.
    std::fs::remove_dir_all(repo.file(".git")).expect("rm fake .git");
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(repo.path())
            .output()
            .expect("git");
        assert!(ok.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&ok.stderr));
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "base"]);
    repo.patch("agent/prompt.md", "Version: head", "Version: head (edited)");
    let fake = scenario::provider(Arc::new(Script::new().head(1, Plan::Fail))).await;
    let run = scenario::evalgate(&repo, Some(&fake), &db(&repo), &["eval", "agent", "--json", "r.json"]).await;
    let r: Value = serde_json::from_str(&repo.read("r.json")).expect("json report");
    // Committed `agent/` says "Version: head" too, so both sides follow the head plan: the
    // committed version fails c01 as well, and nothing moved.
    assert_eq!(r["base"]["passed"], 1, "{}", run.stderr);
    assert_ne!(r["base"]["bundle_sha256"], r["head"]["bundle_sha256"]);
    assert_eq!(run.code, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_valid_under_the_base_schema_but_not_the_heads_are_named() {
    let repo = scenario::repo(&Spec { gate: "{ max_regression_rate: 1.0 }", ..Spec::new(4) });
    // The head narrows `order_id` to ids starting with "A"; the agent keeps sending "c02", "c04".
    repo.write(
        "agent/tools.yaml",
        "- name: lookup_order\n  description: Look up an order\n  input_schema:\n    type: object\n    properties: { order_id: { type: string, pattern: \"^A\" } }\n    required: [order_id]\n",
    );
    repo.patch("agent/bundle.yaml", "tools: ../tools.yaml", "tools: tools.yaml");
    let fake = scenario::provider(Arc::new(Script::new())).await;
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let drift: Vec<(String, String)> = r["schema_drift"]
        .as_array()
        .expect("schema_drift")
        .iter()
        .map(|d| {
            (
                d["case"].as_str().unwrap_or_default().to_owned(),
                d["args"]["order_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(drift, [("c02".to_owned(), "c02".to_owned()), ("c04".to_owned(), "c04".to_owned())]);
    assert!(r["schema_drift"][0]["head_error"].as_str().is_some_and(|e| e.contains("^A")), "{}", r["schema_drift"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn judge_human_agreement_is_reported_on_labelled_cases() {
    let spec = Spec { judged: BTreeSet::from([1, 2, 3, 4]), gate: "{ max_regression_rate: 1.0 }", ..Spec::new(4) };
    let repo = scenario::repo(&spec);
    // Humans say c01, c02 pass and c03, c04 fail; the head passes all four, so its judge agrees
    // on 2 of 4. The base fails c03 and c04, so its judge agrees on all 4.
    let cases = repo.read("golden/cases.jsonl");
    let labelled: String = cases
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let label = if i < 2 { "pass" } else { "fail" };
            format!("{},\"label\":\"{label}\"}}\n", l.trim_end().strip_suffix('}').unwrap_or(l))
        })
        .collect();
    repo.write("golden/cases.jsonl", labelled);
    for dir in ["agent", "base"] {
        assert_eq!(repo.evalgate(&["golden", "pin", dir]).code, 0);
    }
    let fake = scenario::provider(Arc::new(Script::new().base(3, Plan::Fail).base(4, Plan::Fail))).await;
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(r["agreement"]["base"]["percent"], 100.0, "{}", run.stderr);
    assert_eq!(r["agreement"]["head"]["percent"], 50.0);
    assert_eq!(r["agreement"]["head"]["cases"], 4);
    assert_eq!(r["agreement"]["head"]["kappa"], 0.0);
    // The judge itself did not change, so the drop is the agent's, not a reason to fail.
    assert_eq!(r["gate"]["passed"], true);
}
