//! Verdict integrity through `evalgate eval`: each test is an attack a pull request could make
//! on its own gate, or a fault inside the run, and shows the gate does not pass.
//!
//! The repository is the scenario's (`base/` and `agent/` sharing tools and a golden set); the
//! fake provider answers by case and side, and its judge is scripted per test.

mod support;

use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use support::fake_provider::{FakeProvider, Reply, SeenRequest};
use support::scenario::{self, Plan, Script, Spec, ids};

fn db(repo: &support::Repo) -> std::path::PathBuf {
    repo.file("evalgate.db")
}

fn case<'a>(r: &'a Value, id: &str) -> &'a Value {
    r["cases"].as_array().and_then(|a| a.iter().find(|c| c["id"] == id)).unwrap_or(&Value::Null)
}

/// The answer the judge is asked to grade, and the rubric it is given.
fn graded(req: &SeenRequest) -> (String, String) {
    let text = req.last_user_text();
    let rubric = text.split("## Rubric").nth(1).and_then(|r| r.split("## Conversation").next()).unwrap_or_default();
    let answer = text.split("## Answer to grade").nth(1).unwrap_or_default();
    (rubric.trim().to_owned(), answer.trim().to_owned())
}

fn verdict(pass: bool) -> Reply {
    Reply::tool("record_verdict", json!({"pass": pass, "score": if pass { 1.0 } else { 0.0 }, "reason": "scripted"}))
}

/// A fake whose agent follows `script` and whose judge is `judge(request)`.
async fn provider_with_judge(
    script: Script,
    judge: impl Fn(&SeenRequest) -> Reply + Send + Sync + 'static,
) -> FakeProvider {
    let script = Arc::new(script);
    FakeProvider::start(move |req| {
        if req.tool_choice.as_deref() == Some("record_verdict") { judge(req) } else { script.reply(req) }
    })
    .await
}

/// Every case is judged only (the `contains` check removed), with human labels: c01 and c03
/// pass, c02 and c04 fail. Both sides re-pinned.
fn judged_repo(cases: usize) -> support::Repo {
    let all: BTreeSet<usize> = (1..=cases).collect();
    let repo = scenario::repo(&Spec { judged: all, gate: "{ max_regression_rate: 0.0 }", ..Spec::new(cases) });
    let text = repo.read("golden/cases.jsonl");
    let lines: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut v: Value = serde_json::from_str(l).expect("case line");
            v["checks"] = json!([{"type": "judge"}]);
            v["label"] = json!(if i % 2 == 0 { "pass" } else { "fail" });
            format!("{v}\n")
        })
        .collect();
    repo.write("golden/cases.jsonl", lines);
    for dir in ["agent", "base"] {
        let run = repo.evalgate(&["golden", "pin", dir]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    repo
}

/// The honest judge: an answer passes when it says ANSWER-OK.
fn honest(req: &SeenRequest) -> Reply {
    let (_, answer) = graded(req);
    verdict(answer.contains("ANSWER-OK"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_head_that_switches_to_a_lenient_judge_is_still_graded_by_the_bases_judge() {
    let repo = judged_repo(4);
    // The attack: degrade c01 and point the head at a judge that passes everything.
    repo.patch("agent/bundle.yaml", "snapshot: claude-haiku-4-5-20251001", "snapshot: claude-3-haiku-20240307");
    let plan = Script::new()
        .base(2, Plan::Fail)
        .base(4, Plan::Fail)
        .head(1, Plan::Fail)
        .head(2, Plan::Fail)
        .head(4, Plan::Fail);
    let fake =
        provider_with_judge(
            plan,
            |req| {
                if req.model == "claude-3-haiku-20240307" { verdict(true) } else { honest(req) }
            },
        )
        .await;
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(ids(&r["regressions"]), ["c01"], "{}{}", run.stdout, run.stderr);
    assert_eq!(r["gate"]["passed"], false);
    assert_eq!(run.code, 1);
    // Both judges graded the head's transcripts; the new one agrees less with the labels.
    let change = &r["judge_change"];
    assert_eq!(change["base_agreement"]["percent"], 75.0, "{change}");
    assert_eq!(change["head_agreement"]["percent"], 50.0, "{change}");
    assert_eq!(change["head_agreement"]["true_fail_rate"], 0.0, "{change}");
    assert!(
        r["gate"]["reasons"].as_array().is_some_and(|rs| rs.iter().any(|x| x
            .as_str()
            .is_some_and(|s| s.contains("agreement with human labels dropped from 75.0% to 50.0%")))),
        "{}",
        r["gate"]
    );
    // The head's agent ran once per case: the new judge regraded the same transcripts.
    let agent_calls =
        fake.calls().iter().filter(|c| c.tool_choice.is_none() && c.system.contains("Version: head")).count();
    assert_eq!(agent_calls, 6, "4 cases, 2 of them with a tool call");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_head_that_makes_its_rubric_lenient_is_graded_with_the_bases_rubric() {
    let repo = judged_repo(2);
    repo.write("agent/rubric.md", "Anything passes.\n");
    repo.patch("agent/bundle.yaml", "rubric: ../rubric.md", "rubric: rubric.md");
    let fake = provider_with_judge(Script::new().head(1, Plan::Fail), |req| {
        let (rubric, _) = graded(req);
        if rubric.contains("Anything passes") { verdict(true) } else { honest(req) }
    })
    .await;
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(ids(&r["regressions"]), ["c01"], "{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, 1);
    assert_eq!(r["judge_sha256"], r["judge_change"]["base"]["identity_sha256"], "the instrument's judge is base's");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_head_that_raises_samples_to_turn_its_failure_flaky_is_run_with_the_bases_samples() {
    let spec = Spec { gate: "{ max_regression_rate: 0.0 }", ..Spec::new(4) };
    let repo = scenario::repo(&spec);
    repo.patch("agent/bundle.yaml", "samples: 1", "samples: 3");
    repo.patch("agent/bundle.yaml", "temperature: 0", "temperature: 1");
    // c03 fails on head's first sample and alternates after: with 3 samples it would be
    // "flaky" and not counted; with base's 1 sample it is a plain regression.
    let fake = scenario::provider(Arc::new(Script::new().head(3, Plan::FlakyFailingFirst))).await;
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(ids(&r["regressions"]), ["c03"], "{}{}", run.stdout, run.stderr);
    assert!(ids(&r["flaky"]).is_empty());
    assert_eq!(case(&r, "c03")["head"]["samples"].as_array().map(Vec::len), Some(1), "base's samples: 1");
    assert_eq!(run.code, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pass_that_becomes_a_judge_error_on_head_is_a_regression() {
    let repo = judged_repo(2);
    // The head's answer to c01 makes the judge unable to answer (e.g. an injection in the
    // answer); c01 passed on base.
    let fake = provider_with_judge(Script::new().base(2, Plan::Fail).head(2, Plan::Fail), |req| {
        let (_, answer) = graded(req);
        if answer.contains("c01 (head)") { Reply::text("I would rather not say.") } else { honest(req) }
    })
    .await;
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(ids(&r["regressions"]), ["c01"], "{}{}", run.stdout, run.stderr);
    assert_eq!(case(&r, "c01")["change"], "regression_judge_error");
    assert_eq!(r["regression_rate"], 1.0);
    assert_eq!(r["head"]["judge_error_rate"], 0.5);
    assert_eq!(r["base"]["judge_error_rate"], 0.0);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("gate failed: 1 regression"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn judge_errors_on_one_side_are_not_diluted_by_the_other() {
    // 20 judged cases; 2 judge errors on head only: 10% on head, 5% pooled over both sides.
    let all: BTreeSet<usize> = (1..=20).collect();
    let repo = scenario::repo(&Spec { judged: all, gate: "{ max_regression_rate: 1.0 }", ..Spec::new(20) });
    let fake = provider_with_judge(Script::new().base(1, Plan::Fail).base(2, Plan::Fail), |req| {
        let (_, answer) = graded(req);
        if answer.contains("c01 (head)") || answer.contains("c02 (head)") {
            Reply::text("prose, no verdict")
        } else {
            honest(req)
        }
    })
    .await;
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(r["head"]["judge_error_rate"], 0.1, "{}{}", run.stdout, run.stderr);
    assert_eq!(r["judge_error_rate"], 0.1, "the larger side's");
    assert!(r["gate"]["reasons"].to_string().contains("judge error rate on head 10.0% > 5.0%"), "{}", r["gate"]);
    assert_eq!(run.code, 1);
}

/// Runs git in the repository, as its user would.
fn git_in(repo: &support::Repo, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(repo.path())
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Runs the scenario once so the database exists and is migrated, then changes it with `sql`.
async fn break_the_store(repo: &support::Repo, sql: &[&str]) {
    let url = format!("sqlite://{}", db(repo).display());
    let pool = sqlx::SqlitePool::connect(&url).await.expect("open the test database");
    for s in sql {
        sqlx::query(s).execute(&pool).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_result_cache_that_fails_on_store_makes_the_run_incomplete() {
    let repo = scenario::repo(&Spec::new(3));
    let fake = scenario::provider(Arc::new(Script::new())).await;
    let (migrate, _) = scenario::eval(&repo, None, &db(&repo), &["--estimate"]).await;
    assert_eq!(migrate.code, 0, "{}", migrate.stderr);
    break_the_store(
        &repo,
        &["CREATE TRIGGER fail_store BEFORE INSERT ON results BEGIN SELECT RAISE(ABORT, 'disk I/O error (test)'); END"],
    )
    .await;
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(r["incomplete"]["reason"].as_str().is_some_and(|s| s.contains("result cache")), "{}", r["incomplete"]);
    assert_eq!(ids(&r["incomplete"]["cases"]), ["c01", "c02", "c03"]);
    assert_eq!(r["gate"]["passed"], false);
    assert!(!run.stdout.contains("gate passed"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_result_cache_that_fails_on_lookup_makes_the_run_incomplete() {
    let repo = scenario::repo(&Spec::new(3));
    let fake = scenario::provider(Arc::new(Script::new())).await;
    let (first, _) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    break_the_store(&repo, &["ALTER TABLE results RENAME TO results_gone"]).await;
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(r["incomplete"]["reason"].as_str().is_some_and(|s| s.contains("result cache")), "{}", r["incomplete"]);
    assert_eq!(ids(&r["incomplete"]["cases"]), ["c01", "c02", "c03"]);
    assert!(run.stdout.contains("evaluation incomplete"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cost_rise_from_a_free_base_is_an_unbounded_increase_and_fails() {
    let spec = Spec { gate: "{ max_regression_rate: 0.0, max_cost_increase: 0.25 }", ..Spec::new(2) };
    let repo = scenario::repo(&spec);
    // Base runs on a model priced at 0 (self-hosted, say); head moves to a paid one.
    repo.write(
        ".evalgate.yml",
        "lint: { required_sections: [\"## Policy\"] }\nprices:\n  claude-sonnet-4-5-20250929: { input_per_mtok: 0, output_per_mtok: 0 }\n  claude-opus-4-6: { input_per_mtok: 5, output_per_mtok: 25 }\n",
    );
    repo.patch("agent/bundle.yaml", "snapshot: claude-sonnet-4-5-20250929", "snapshot: claude-opus-4-6");
    let fake = scenario::provider(Arc::new(Script::new())).await;
    let (run, r) = scenario::eval(&repo, Some(&fake), &db(&repo), &[]).await;
    assert_eq!(r["base"]["cost_per_case_usd"], 0.0, "{}{}", run.stdout, run.stderr);
    assert!(r["gate"]["reasons"].to_string().contains("unbounded"), "{}", r["gate"]);
    assert_eq!(run.code, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bundle_new_at_the_base_revision_is_evaluated_on_head_alone() {
    let repo = scenario::repo(&Spec { gate: "{ max_regression_rate: 0.0, min_pass_rate: 0.5 }", ..Spec::new(2) });
    std::fs::remove_dir_all(repo.file(".git")).expect("rm fake .git");
    let git = |args: &[&str]| git_in(&repo, args);
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A", "--", ".", ":!agent"]);
    git(&["commit", "-qm", "base without agent/"]);
    let fake = scenario::provider(Arc::new(Script::new().head(1, Plan::Fail))).await;
    let run = scenario::evalgate(
        &repo,
        Some(&fake),
        &db(&repo),
        &["eval", "agent", "--base-ref", "HEAD", "--json", "r.json"],
    )
    .await;
    let r: Value = serde_json::from_str(&repo.read("r.json")).unwrap_or_else(|_| panic!("no report: {}", run.stderr));
    assert_eq!(r["comparison"], "head_only");
    assert_eq!(r["base"], Value::Null);
    assert_eq!(r["regression_rate"], Value::Null);
    assert_eq!(r["head"]["passed"], 1);
    assert_eq!(run.code, 0, "pass rate 50% meets its own min_pass_rate: {}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("new bundle, head alone: gate passed"), "{}", run.stdout);
    // No base side was run: every agent call was the head's.
    assert!(fake.calls().iter().all(|c| c.tool_choice.is_some() || c.system.contains("Version: head")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renamed_bundle_folder_is_still_compared_with_its_base() {
    let repo = scenario::repo(&Spec::new(2));
    std::fs::remove_dir_all(repo.file(".git")).expect("rm fake .git");
    let git = |args: &[&str]| git_in(&repo, args);
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "base"]);
    // Move the head bundle to a new folder (so it is "new" by path) and degrade c01.
    git(&["mv", "agent", "renamed"]);
    let fake = scenario::provider(Arc::new(Script::new().head(1, Plan::Fail))).await;
    let run = scenario::evalgate(
        &repo,
        Some(&fake),
        &db(&repo),
        &["eval", "renamed", "--base-ref", "HEAD", "--json", "r.json"],
    )
    .await;
    let r: Value = serde_json::from_str(&repo.read("r.json")).unwrap_or_else(|_| panic!("no report: {}", run.stderr));
    // Paired with the old folder: the committed agent/ says "Version: head" too, so it fails
    // c01 as well, and nothing moved.
    assert_eq!(r["comparison"], "paired", "{}", run.stderr);
    assert_eq!(r["base"]["passed"], 1);
    assert!(ids(&r["regressions"]).is_empty());
}
