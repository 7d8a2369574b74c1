//! `evalgate serve` end to end: the real binary against a fake GitHub and a fake model provider,
//! both on loopback. Each test proves one behaviour of the pull-request gate.

#[path = "support/fake_github.rs"]
mod fake_github;
#[path = "support/github_app.rs"]
mod github_app;
mod support;

use fake_github::Failure;
use github_app::{Commits, Harness, PRE_REGISTRATION, REPO};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use support::scenario::{Plan, Script, Spec};

const BASE: &str = "1111111111111111111111111111111111111111";
const HEAD: &str = "2222222222222222222222222222222222222222";
const HEAD2: &str = "3333333333333333333333333333333333333333";
const DEMO: &str = "evalgate/demo";
const PREREG: &str = "evalgate/pre-registration";
const GOLDEN: &str = "evalgate/golden-set";

/// Base passes everything; head regresses c03 and fixes c04.
fn moving_script() -> Script {
    Script::new().head(3, Plan::Fail).base(4, Plan::Fail)
}

fn spec(cases: usize) -> Spec {
    Spec { gate: "{ max_regression_rate: 0.5 }", ..Spec::new(cases) }
}

async fn harness_with_pr(script: Script, cases: usize, body: Option<&str>, fork: bool) -> Harness {
    let h = Harness::start(Arc::new(script)).await;
    let commits = Commits::of(&spec(cases));
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    h.open_pr(1, BASE, HEAD, body, fork);
    h
}

#[tokio::test]
async fn opening_a_pr_posts_the_gate_with_its_regressions_and_fixes() {
    let h = harness_with_pr(moving_script(), 6, Some(PRE_REGISTRATION), false).await;
    assert_eq!(h.pr_opened(1).await, 202);

    let prereg = h.completed(HEAD, PREREG).await;
    assert_eq!(prereg.conclusion.as_deref(), Some("success"), "{}", prereg.summary);
    let gate = h.completed(HEAD, DEMO).await;
    assert_eq!(gate.conclusion.as_deref(), Some("success"), "{}\n{}", gate.title, gate.summary);
    assert_eq!(gate.title, "gate passed: 1 regression, 1 fix");
    for status in ["queued", "in_progress", "completed"] {
        assert!(gate.statuses_seen.iter().any(|s| s == status), "{:?}", gate.statuses_seen);
    }
    let regressions = gate.summary.split("### Regressions").nth(1).unwrap_or_default();
    assert!(regressions.trim_start().starts_with("(1)\n- **c03**"), "regressed cases come first: {}", gate.summary);
    assert!(gate.summary.contains("max_regression_rate") && gate.summary.contains("pre-registration"));
    assert!(h.checks(HEAD, GOLDEN).is_empty(), "the golden set did not change");
    assert_eq!(h.checks(HEAD, DEMO).len(), 1);

    let comment = h
        .until("the sticky comment shows the result", |gh| {
            gh.comments(REPO, 1).into_iter().find(|c| c.body.contains("`demo`") && c.body.contains("passed"))
        })
        .await;
    assert!(comment.body.contains("| 83.3% → 83.3% | 1 | 1 |"), "{}", comment.body);
    assert_eq!(h.github.comments(REPO, 1).len(), 1, "one sticky comment");
}

#[tokio::test]
async fn a_pre_registered_threshold_tightens_the_gate_and_fails_it() {
    let body = PRE_REGISTRATION.replace("max_regression_rate: 50%", "max_regression_rate: 0%");
    let h = harness_with_pr(moving_script(), 6, Some(&body), false).await;
    h.pr_opened(1).await;
    let gate = h.completed(HEAD, DEMO).await;
    assert_eq!(gate.conclusion.as_deref(), Some("failure"));
    assert!(gate.title.starts_with("gate failed: 1 regression (regression rate 20.0% > 0.0%)"), "{}", gate.title);
}

#[tokio::test]
async fn the_report_link_opens_the_run_and_a_forged_one_does_not() {
    let h = harness_with_pr(moving_script(), 4, Some(PRE_REGISTRATION), false).await;
    h.pr_opened(1).await;
    let gate = h.completed(HEAD, DEMO).await;
    let path = gate.details_url.strip_prefix("http://127.0.0.1:1").expect("details_url under EVALGATE_PUBLIC_URL");
    let (status, page) = h.get(&format!("{}{path}", h.server.url)).await;
    assert_eq!(status, 200);
    assert!(page.contains("c03") && page.contains("regression"), "{page}");
    let (status, page) = h.get(&format!("{}{path}&filter=fixes", h.server.url)).await;
    assert_eq!(status, 200);
    assert!(page.contains("c04") && !page.contains("<code>c03</code>"), "{page}");
    let forged = path.rsplit_once('.').map(|(a, _)| format!("{a}.{}", "0".repeat(64))).expect("token");
    assert_eq!(h.get(&format!("{}{forged}", h.server.url)).await.0, 403);
}

#[tokio::test]
async fn a_pr_without_pre_registration_fails_that_check_and_evaluates_nothing() {
    let h = harness_with_pr(moving_script(), 4, None, false).await;
    h.pr_opened(1).await;
    let prereg = h.completed(HEAD, PREREG).await;
    assert_eq!(prereg.conclusion.as_deref(), Some("failure"));
    assert!(prereg.summary.contains("### What changed") && prereg.summary.contains("### Success threshold"));
    let waiting = h.until("the bundle check waits", |_| h.checks(HEAD, DEMO).pop()).await;
    assert_eq!(waiting.status, "queued");
    assert!(waiting.title.contains("pre-registration"), "{}", waiting.title);
    assert_eq!(h.provider.call_count(), 0, "no result is seen before the pre-registration");
}

#[tokio::test]
async fn editing_the_body_flips_the_pre_registration_and_starts_the_evaluation() {
    let h = harness_with_pr(moving_script(), 4, Some("Just a change."), false).await;
    h.pr_opened(1).await;
    assert_eq!(h.completed(HEAD, PREREG).await.conclusion.as_deref(), Some("failure"));

    h.github.edit_body(REPO, 1, Some(PRE_REGISTRATION));
    h.deliver("pull_request", &h.github.pull_request_event(REPO, 1, "edited")).await;
    h.until("the pre-registration passes", |_| {
        h.checks(HEAD, PREREG).pop().filter(|c| c.conclusion.as_deref() == Some("success"))
    })
    .await;
    let gate = h.completed(HEAD, DEMO).await;
    assert_eq!(gate.conclusion.as_deref(), Some("success"), "{}", gate.summary);
}

#[tokio::test]
async fn a_threshold_edited_after_the_first_evaluation_does_not_apply() {
    let h = harness_with_pr(moving_script(), 4, Some(PRE_REGISTRATION), false).await;
    h.pr_opened(1).await;
    h.completed(HEAD, DEMO).await;
    let looser = PRE_REGISTRATION.replace("max_regression_rate: 50%", "max_regression_rate: 90%\nmin_pass_rate: 10%");
    h.github.edit_body(REPO, 1, Some(&looser));
    h.deliver("pull_request", &h.github.pull_request_event(REPO, 1, "edited")).await;
    let prereg =
        h.until("the edit is recorded", |_| h.checks(HEAD, PREREG).pop().filter(|c| c.title.contains("edited"))).await;
    assert!(prereg.summary.contains("accept-thresholds"), "{}", prereg.summary);
    assert!(prereg.summary.contains("`max_regression_rate` 50.0%"), "the original stands: {}", prereg.summary);
}

#[tokio::test]
async fn a_newer_push_cancels_the_older_evaluation() {
    // Every model call takes 150 ms, so the first evaluation is still running at the push.
    let h = Harness::start_slow(Arc::new(moving_script()), Duration::from_millis(150)).await;
    let commits = Commits::of(&spec(12));
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    let mut head2 = commits.head.clone();
    head2.insert("agent/NOTES.md".into(), b"unrelated to the agent's behaviour\n".to_vec());
    h.commit(HEAD2, &head2);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION), false);
    h.pr_opened(1).await;
    h.until("the first evaluation runs", |_| h.checks(HEAD, DEMO).pop().filter(|c| c.status == "in_progress")).await;

    h.github.push(REPO, 1, HEAD2);
    h.deliver("pull_request", &h.github.pull_request_event(REPO, 1, "synchronize")).await;
    let old = h.completed(HEAD, DEMO).await;
    assert_eq!(old.conclusion.as_deref(), Some("cancelled"), "{}", old.title);
    let new = h.completed(HEAD2, DEMO).await;
    assert_eq!(new.conclusion.as_deref(), Some("success"), "{}", new.summary);
    assert_eq!(h.github.comments(REPO, 1).len(), 1, "the sticky comment is edited, not posted again");
}

#[tokio::test]
async fn a_delivery_repeated_three_times_is_evaluated_once() {
    let h = harness_with_pr(moving_script(), 4, Some(PRE_REGISTRATION), false).await;
    let payload = h.github.pull_request_event(REPO, 1, "opened");
    assert_eq!(h.deliver_as("same-id", "pull_request", &payload).await, 202);
    assert_eq!(h.deliver_as("same-id", "pull_request", &payload).await, 200);
    assert_eq!(h.deliver_as("same-id", "pull_request", &payload).await, 200);
    h.completed(HEAD, DEMO).await;
    let calls = h.provider.call_count();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(h.checks(HEAD, DEMO).len(), 1);
    assert_eq!(h.checks(HEAD, PREREG).len(), 1);
    assert_eq!(h.provider.call_count(), calls, "nothing ran a second time");
}

#[tokio::test]
async fn a_bad_signature_is_refused_and_nothing_is_stored() {
    let h = harness_with_pr(moving_script(), 4, Some(PRE_REGISTRATION), false).await;
    let body = serde_json::to_vec(&h.github.pull_request_event(REPO, 1, "opened")).expect("json");
    let wrong = github_app::sign("not the secret", &body);
    assert_eq!(h.send("d-1", "pull_request", &body, Some(&wrong)).await.0, 401);
    assert_eq!(h.send("d-1", "pull_request", &body, None).await.0, 401);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(h.github.requests().is_empty(), "nothing reached GitHub: {:?}", h.github.requests());
    // The id was not stored: the same delivery, signed, is new.
    let good = github_app::sign(github_app::SECRET, &body);
    assert_eq!(h.send("d-1", "pull_request", &body, Some(&good)).await.0, 202);
}

#[tokio::test]
async fn a_restart_mid_run_completes_the_evaluation_with_one_check_run() {
    let script = Arc::new(moving_script());
    let mut h = Harness::start_slow(script, Duration::from_millis(100)).await;
    let commits = Commits::of(&spec(32));
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION), false);
    h.pr_opened(1).await;
    h.until("the evaluation is under way", |gh| {
        let running = h.checks(HEAD, DEMO).pop().is_some_and(|c| c.status == "in_progress");
        (running && h.provider.call_count() >= 60).then_some(()).filter(|_| gh.token_exchanges() > 0)
    })
    .await;
    h.crash_and_restart().await;
    let gate = h.completed(HEAD, DEMO).await;
    assert_eq!(gate.conclusion.as_deref(), Some("success"), "{}\n{}", gate.summary, h.logs());
    assert_eq!(gate.title, "gate passed: 1 regression, 1 fix");
    assert_eq!(h.checks(HEAD, DEMO).len(), 1, "the restarted server updated the same check run");
    // 32 cases, 16 of them with a tool call: 48 model calls a side. A case's transcript is
    // stored when it finishes, so only unfinished cases run again: at most the 16 calls in
    // flight at the crash, plus the first call of each two-call case (32) not finished.
    // Recomputing the 60 or more calls made before the crash would take 156 calls or more.
    let calls = h.provider.call_count();
    assert!((96..=96 + 16 + 32).contains(&calls), "{calls} model calls");
}

#[tokio::test]
async fn github_errors_and_rate_limits_still_complete_with_one_check_run_per_name() {
    let h = harness_with_pr(moving_script(), 4, Some(PRE_REGISTRATION), false).await;
    h.github.fail("POST /repos/*/*/check-runs", 1, Failure::Status(502));
    h.github.fail("GET /repos/*/*/pulls/*/files", 1, Failure::SecondaryRateLimit { retry_after_secs: 1 });
    h.github.fail("PATCH /repos/*/*/check-runs/*", 2, Failure::Status(502));
    h.github.fail("GET /repos/*/*/git/trees/*", 1, Failure::Status(500));
    h.pr_opened(1).await;
    let gate = h.completed(HEAD, DEMO).await;
    assert_eq!(gate.conclusion.as_deref(), Some("success"), "{}", gate.summary);
    assert_eq!(h.checks(HEAD, DEMO).len(), 1);
    assert_eq!(h.checks(HEAD, PREREG).len(), 1);
    let statuses: Vec<u16> = h.github.requests().iter().map(|r| r.status).collect();
    assert!(statuses.contains(&502) && statuses.contains(&403), "the failures were served: {statuses:?}");
}

#[tokio::test]
async fn a_fork_pr_makes_no_model_call_until_a_writer_approves() {
    let h = harness_with_pr(moving_script(), 4, Some(PRE_REGISTRATION), true).await;
    h.pr_opened(1).await;
    let waiting = h.completed(HEAD, DEMO).await;
    assert_eq!(waiting.conclusion.as_deref(), Some("action_required"));
    assert_eq!(waiting.actions.first().and_then(|a| a["identifier"].as_str()), Some("run-evals"));
    assert_eq!(h.provider.call_count(), 0);

    h.github.set_permission(REPO, "mallory", "read");
    h.deliver(
        "check_run",
        &h.github.check_run_event(REPO, waiting.id, "requested_action", Some("run-evals"), "mallory"),
    )
    .await;
    h.until("the reader is told no", |gh| gh.comments(REPO, 1).into_iter().find(|c| c.body.contains("@mallory"))).await;
    assert_eq!(h.provider.call_count(), 0, "a reader cannot spend the budget");

    h.github.set_permission(REPO, "jordan", "write");
    h.deliver(
        "check_run",
        &h.github.check_run_event(REPO, waiting.id, "requested_action", Some("run-evals"), "jordan"),
    )
    .await;
    let gate = h
        .until("the approved evaluation completes", |_| {
            h.checks(HEAD, DEMO).pop().filter(|c| c.id != waiting.id && c.status == "completed")
        })
        .await;
    assert_eq!(gate.conclusion.as_deref(), Some("success"), "{}", gate.summary);
    assert!(h.provider.call_count() > 0);
}

#[tokio::test]
async fn an_invalid_head_bundle_fails_with_annotations_at_file_and_line() {
    let h = Harness::start(Arc::new(moving_script())).await;
    let commits = Commits::of(&spec(4));
    h.commit(BASE, &commits.base);
    let mut broken = commits.head.clone();
    let yaml = String::from_utf8(broken["agent/bundle.yaml"].clone()).expect("utf8");
    broken.insert("agent/bundle.yaml".into(), yaml.replace("runner:", "runnr:").into_bytes());
    h.commit(HEAD, &broken);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION), false);
    h.pr_opened(1).await;
    let gate = h.completed(HEAD, DEMO).await;
    assert_eq!(gate.conclusion.as_deref(), Some("failure"));
    assert!(gate.title.starts_with("bundle invalid at head"), "{}", gate.title);
    let a = gate.annotations.first().expect("an annotation");
    assert_eq!(a["path"], "agent/bundle.yaml");
    assert!(a["start_line"].as_u64().is_some_and(|l| l > 1), "{a}");
    assert!(a["message"].as_str().is_some_and(|m| m.contains("runner")), "did you mean: {a}");
    assert_eq!(h.provider.call_count(), 0);
}

#[tokio::test]
async fn a_changed_golden_set_asks_for_approval_listing_the_cases() {
    let h = Harness::start(Arc::new(moving_script())).await;
    let repo = support::scenario::repo(&spec(4));
    let before = Commits::from_repo(&repo);
    let cases = std::fs::read_to_string(repo.file("golden/cases.jsonl")).expect("cases");
    let added = cases.lines().last().expect("a case").replace("\"c04\"", "\"c99\"");
    repo.write("golden/cases.jsonl", format!("{cases}{added}\n"));
    assert_eq!(repo.evalgate(&["golden", "pin", "agent"]).code, 0);
    let after = Commits::from_repo(&repo);
    h.commit(BASE, &before.base);
    h.commit(HEAD, &after.head);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION), false);
    h.pr_opened(1).await;
    let golden = h.completed(HEAD, GOLDEN).await;
    assert_eq!(golden.conclusion.as_deref(), Some("action_required"));
    assert!(golden.title.starts_with("awaiting approval: 2 change(s)"), "{}", golden.title);
    // Listed by content: the pin, old → new, and the added case with what it holds.
    assert!(golden.summary.contains("| golden set pin | ` sha256:"), "{}", golden.summary);
    assert!(
        golden
            .summary
            .contains("| case c99 | (none) | ` {\"checks\":[{\"type\":\"contains\",\"value\":\"ANSWER-OK\"}]"),
        "{}",
        golden.summary
    );
    // The gate still measures on the base's pinned set.
    let gate = h.completed(HEAD, DEMO).await;
    assert!(gate.summary.contains("| passed / cases | 3 / 4 | 3 / 4 |"), "{}", gate.summary);
}

#[tokio::test]
async fn a_3000_case_report_is_cut_within_githubs_limit() {
    let mut script = Script::new();
    for i in 1..=3000 {
        script = script.head(i, Plan::Fail);
    }
    let h = harness_with_pr(script, 3000, Some(PRE_REGISTRATION), false).await;
    h.pr_opened(1).await;
    let gate = h.completed(HEAD, DEMO).await;
    assert_eq!(gate.conclusion.as_deref(), Some("failure"));
    assert!(gate.summary.chars().count() <= 65_535, "{}", gate.summary.chars().count());
    assert!(gate.summary.contains("more lines not shown here"), "cut with a count");
    assert!(gate.summary.contains("/runs/"), "and a link to the full report");
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let h = Harness::start(Arc::new(Script::new())).await;
    assert_eq!(h.get(&format!("{}/healthz", h.server.url)).await.0, 200);
    assert_eq!(h.get(&format!("{}/readyz", h.server.url)).await.0, 200);
    let (status, text) = h.get(&format!("{}/metrics", h.server.url)).await;
    assert_eq!(status, 200);
    assert!(text.contains("evalgate_deliveries_accepted_total 0"), "{text}");
}

#[tokio::test]
async fn unhandled_events_and_ping_are_acknowledged_and_ignored() {
    let h = Harness::start(Arc::new(Script::new())).await;
    let ping: Value = serde_json::json!({ "zen": "Keep it logically awesome.", "hook_id": 1 });
    assert_eq!(h.deliver("ping", &ping).await, 200);
    assert_eq!(h.deliver("star", &serde_json::json!({ "action": "created" })).await, 200);
    assert_eq!(h.deliver("pull_request", &serde_json::json!({ "action": "labeled" })).await, 200);
    assert_eq!(h.deliver("pull_request", &serde_json::json!({ "action": "opened", "number": "x" })).await, 400);
    assert!(h.github.requests().is_empty());
}

/// GitHub's own example payloads, from `../shared/github-webhook-examples` beside the
/// repository (CI has it; `.ci/run` runs this with `--ignored`).
#[tokio::test]
#[ignore = "needs ../shared/github-webhook-examples"]
async fn githubs_example_payloads_are_accepted() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/github-webhook-examples");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!("{}: {e}: GitHub's example payloads belong at ../shared beside the repository", dir.display())
    });
    let h = Harness::start(Arc::new(Script::new())).await;
    let mut seen = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") {
            continue;
        }
        let event = name.split('.').next().unwrap_or_default().to_owned();
        let body = std::fs::read(entry.path()).expect("read example");
        let (status, text) =
            h.send(&format!("example-{name}"), &event, &body, Some(&github_app::sign(github_app::SECRET, &body))).await;
        assert!(status == 200 || status == 202, "{name}: {status} {text}");
        seen += 1;
    }
    assert!(seen >= 10, "read {seen} examples");
}

#[tokio::test]
async fn a_bundle_touched_only_on_the_last_page_of_files_is_found() {
    let h = Harness::start(Arc::new(moving_script())).await;
    let commits = Commits::of(&spec(4));
    let mut base = commits.base.clone();
    let mut head = commits.head.clone();
    // 250 unrelated changes sort before `agent/`'s on the listing's last page.
    for i in 0..250 {
        base.insert(format!("aaa/{i:03}.txt"), b"old\n".to_vec());
        head.insert(format!("aaa/{i:03}.txt"), b"new\n".to_vec());
    }
    h.commit(BASE, &base);
    h.commit(HEAD, &head);
    h.github.set_files_per_page_max(20);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION), false);
    h.pr_opened(1).await;
    let gate = h.completed(HEAD, DEMO).await;
    assert_eq!(gate.conclusion.as_deref(), Some("success"), "{}", gate.summary);
    let pages: Vec<_> = h.github.requests().into_iter().filter(|r| r.path.contains("/pulls/1/files")).collect();
    assert!(pages.len() >= 13, "every page was read: {pages:?}");
    assert!(pages.iter().all(|r| r.authorized && r.status == 200), "each page carried the token: {pages:?}");
}

#[tokio::test]
async fn a_rerequested_check_run_evaluates_again_from_the_cache() {
    let h = harness_with_pr(moving_script(), 4, Some(PRE_REGISTRATION), false).await;
    h.pr_opened(1).await;
    let first = h.completed(HEAD, DEMO).await;
    let calls = h.provider.call_count();
    h.deliver("check_run", &h.github.check_run_event(REPO, first.id, "rerequested", None, "jordan")).await;
    let again = h
        .until("a new check run completes", |_| {
            h.checks(HEAD, DEMO).pop().filter(|c| c.id != first.id && c.status == "completed")
        })
        .await;
    assert_eq!(again.title, first.title);
    assert_eq!(h.provider.call_count(), calls, "every result came from the cache");
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let h = harness_with_pr(moving_script(), 4, Some(PRE_REGISTRATION), false).await;
    h.pr_opened(1).await;
    h.completed(HEAD, DEMO).await;
    let logs = h.logs();
    assert!(logs.contains("pull request synchronised"), "the server logged: {logs}");
    for secret in [github_app::SECRET, "sk-ant-test-secret-key", "BEGIN RSA PRIVATE KEY", "ghs_"] {
        assert!(!logs.contains(secret), "`{secret}` is in the logs");
    }
}

#[tokio::test]
async fn sigterm_finishes_the_evaluation_in_flight_and_exits_0() {
    let mut h = Harness::start_slow(Arc::new(moving_script()), Duration::from_millis(50)).await;
    let commits = Commits::of(&spec(8));
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION), false);
    h.pr_opened(1).await;
    h.until("the evaluation runs", |_| h.checks(HEAD, DEMO).pop().filter(|c| c.status == "in_progress")).await;
    assert_eq!(h.server.terminate().await, Some(0), "a clean exit:\n{}", h.logs());
    let gate = h.checks(HEAD, DEMO).pop().expect("the gate");
    assert_eq!(gate.status, "completed", "the job in flight was finished before exiting:\n{}", h.logs());
    assert!(h.logs().contains("shutting down"));
}

#[tokio::test]
async fn json_logs_carry_the_delivery_repo_pr_and_bundle() {
    let h = Harness::start_with(Arc::new(moving_script()), &[("EVALGATE_LOG_FORMAT", "json")]).await;
    let commits = Commits::of(&spec(4));
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION), false);
    h.pr_opened(1).await;
    h.completed(HEAD, DEMO).await;
    let lines: Vec<Value> = h.logs().lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(!lines.is_empty(), "JSON lines: {}", h.logs());
    let spans = |l: &Value| l["spans"].as_array().cloned().unwrap_or_default();
    let synced = lines.iter().find(|l| l["fields"]["message"] == "pull request synchronised").expect("a sync line");
    assert!(spans(synced).iter().any(|s| s["delivery"].is_string() && s["repo"] == REPO), "{synced}");
    let gate_line = lines
        .iter()
        .find(|l| spans(l).iter().any(|s| s["name"] == "gate"))
        .unwrap_or_else(|| panic!("a line inside a gate job: {}", h.logs()));
    let gate_span = spans(gate_line).into_iter().find(|s| s["name"] == "gate").expect("gate span");
    assert_eq!(gate_span["repo"], REPO);
    assert_eq!(gate_span["pr"], 1);
    assert_eq!(gate_span["bundle"], "demo");
}
