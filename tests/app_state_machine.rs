//! The App's state machine: a decision is committed with its audit entry, and GitHub is told
//! from the database, so a GitHub failure after the decision only delays what GitHub shows. Each
//! test ends with exactly one check run per (head, name), the right conclusion, and exactly one
//! audit entry per decision, read through the evidence export.

#[path = "support/fake_github.rs"]
mod fake_github;
#[path = "support/github_app.rs"]
mod github_app;
mod support;

use fake_github::Failure;
use github_app::{Commits, Harness, PRE_REGISTRATION, REPO};
use std::io::Read as _;
use std::sync::Arc;
use support::scenario::{Plan, Script, Spec};

const BASE: &str = "1111111111111111111111111111111111111111";
const HEAD: &str = "2222222222222222222222222222222222222222";
const DEMO: &str = "evalgate/demo";
const TOKEN: &str = "admin-token-for-tests";

/// A server with the admin token and one PR whose gate (head regresses c03, base fails c04,
/// 50% allowed) passes once evaluated.
async fn harness() -> Harness {
    let script = Script::new().head(3, Plan::Fail).base(4, Plan::Fail);
    let h = Harness::start_with(Arc::new(script), &[("EVALGATE_ADMIN_TOKEN", TOKEN)]).await;
    let commits = Commits::of(&Spec { gate: "{ max_regression_rate: 0.5 }", ..Spec::new(4) });
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION), false);
    h
}

/// The audit entries of the repository, as the evidence export gives them.
async fn audit_entries(h: &Harness) -> Vec<serde_json::Value> {
    let url = format!("{}/api/evidence?repo={REPO}&since=2000-01-01&until=2999-12-31", h.server.url);
    let resp = reqwest::Client::new().get(url).bearer_auth(TOKEN).send().await.expect("evidence request");
    assert_eq!(resp.status().as_u16(), 200);
    let bytes = resp.bytes().await.expect("zip");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a zip");
    let mut text = String::new();
    zip.by_name("entries.jsonl").expect("entries.jsonl").read_to_string(&mut text).expect("read");
    text.lines().map(|l| serde_json::from_str(l).expect("an entry")).collect()
}

/// Gate decisions recorded for `bundle` with `conclusion`.
fn decisions(entries: &[serde_json::Value], conclusion: &str) -> usize {
    entries
        .iter()
        .filter(|e| {
            e["kind"] == "gate_decision" && e["data"]["bundle"] == "demo" && e["data"]["conclusion"] == conclusion
        })
        .count()
}

async fn completes_once_with_one_decision(h: &Harness) {
    let gate = h.completed(HEAD, DEMO).await;
    assert_eq!(gate.conclusion.as_deref(), Some("success"), "{}\n{}", gate.title, gate.summary);
    assert_eq!(gate.title, "gate passed: 1 regression, 1 fix");
    assert_eq!(h.checks(HEAD, DEMO).len(), 1, "one check run per (head, name)");
    let entries = audit_entries(h).await;
    assert_eq!(decisions(&entries, "success"), 1, "one audit entry for the decision: {entries:#?}");
}

#[tokio::test]
async fn github_failing_the_completing_update_delays_the_check_but_never_loses_the_decision() {
    let h = harness().await;
    h.pr_opened(1).await;
    h.until("the evaluation runs", |_| h.checks(HEAD, DEMO).pop().filter(|c| c.status == "in_progress")).await;
    // From now on every check-run update fails for a while: the completing one among them.
    h.github.fail("PATCH /repos/*/*/check-runs/*", 6, Failure::Status(502));
    completes_once_with_one_decision(&h).await;
}

#[tokio::test]
async fn an_update_that_applied_and_lost_its_answer_is_published_again_without_a_second_check() {
    let h = harness().await;
    h.pr_opened(1).await;
    h.until("the evaluation runs", |_| h.checks(HEAD, DEMO).pop().filter(|c| c.status == "in_progress")).await;
    h.github.fail("PATCH /repos/*/*/check-runs/*", 6, Failure::AfterApplying(502));
    completes_once_with_one_decision(&h).await;
}

#[tokio::test]
async fn a_server_killed_between_the_decision_and_publishing_publishes_it_after_restart() {
    let mut h = harness().await;
    h.pr_opened(1).await;
    h.until("the evaluation runs", |_| h.checks(HEAD, DEMO).pop().filter(|c| c.status == "in_progress")).await;
    // GitHub refuses every update until the decision is in the database, then the process dies.
    h.github.fail("PATCH /repos/*/*/check-runs/*", 10_000, Failure::Status(502));
    let audit_url_ready = {
        let mut found = false;
        for _ in 0..300 {
            if decisions(&audit_entries(&h).await, "success") == 1 {
                found = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        found
    };
    assert!(audit_url_ready, "the decision was committed while GitHub failed");
    assert_ne!(h.checks(HEAD, DEMO).pop().map(|c| c.status), Some("completed".into()), "GitHub was never told");
    h.crash_and_restart().await;
    h.github.clear_failures();
    completes_once_with_one_decision(&h).await;
}

#[tokio::test]
async fn an_override_whose_publishing_fails_is_recorded_once_and_shown_later() {
    let script = Script::new().head(3, Plan::Fail).base(4, Plan::Fail);
    let h = Harness::start_with(Arc::new(script), &[("EVALGATE_ADMIN_TOKEN", TOKEN)]).await;
    let commits = Commits::of(&Spec { gate: "{ max_regression_rate: 0.0 }", ..Spec::new(4) });
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION.replace("50%", "0%").as_str()), false);
    h.pr_opened(1).await;
    let failed = h.completed(HEAD, DEMO).await;
    assert_eq!(failed.conclusion.as_deref(), Some("failure"));
    h.github.set_permission(REPO, "jordan", "write");
    h.github.fail("PATCH /repos/*/*/check-runs/*", 8, Failure::Status(502));
    let payload = h.github.issue_comment_event(REPO, 1, "/evalgate override known flake in c03", "jordan");
    assert_eq!(h.deliver("issue_comment", &payload).await, 202);
    let overridden = h
        .until("the override is shown", |_| {
            h.checks(HEAD, DEMO).pop().filter(|c| c.conclusion.as_deref() == Some("success"))
        })
        .await;
    assert!(overridden.title.starts_with("gate overridden by @jordan"), "{}", overridden.title);
    assert_eq!(h.checks(HEAD, DEMO).len(), 1);
    let entries = audit_entries(&h).await;
    let overrides = entries.iter().filter(|e| e["kind"] == "override").count();
    assert_eq!(overrides, 1, "{entries:#?}");
    assert!(
        !h.github.comments(REPO, 1).iter().any(|c| c.body.contains("no failed gate")),
        "the command was not answered as if it had not run"
    );
}

#[tokio::test]
async fn closing_the_pr_cancels_its_evaluation_and_reopening_evaluates_again() {
    let script = Script::new().head(3, Plan::Fail).base(4, Plan::Fail);
    let h = Harness::start_slow_with(
        Arc::new(script),
        std::time::Duration::from_millis(300),
        &[("EVALGATE_ADMIN_TOKEN", TOKEN)],
    )
    .await;
    let commits = Commits::of(&Spec { gate: "{ max_regression_rate: 0.5 }", ..Spec::new(40) });
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION), false);
    h.pr_opened(1).await;
    h.until("the evaluation runs", |_| h.checks(HEAD, DEMO).pop().filter(|c| c.status == "in_progress")).await;
    h.github.close_pr(REPO, 1);
    assert_eq!(h.deliver("pull_request", &h.github.pull_request_event(REPO, 1, "closed")).await, 202);
    let cancelled = h.completed(HEAD, DEMO).await;
    assert_eq!(cancelled.conclusion.as_deref(), Some("cancelled"), "{}", cancelled.title);
    assert_eq!(cancelled.title, "cancelled: the pull request was closed");
    // The spend stops: a moment later no more calls are made.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let calls = h.provider.call_count();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(h.provider.call_count(), calls, "calls went on after the close");
    assert!(calls < 40 * 2 + 40, "the evaluation did not run to its end: {calls} calls");

    h.github.reopen_pr(REPO, 1);
    assert_eq!(h.deliver("pull_request", &h.github.pull_request_event(REPO, 1, "reopened")).await, 202);
    let again = h
        .until("the reopened PR is evaluated again", |_| {
            h.checks(HEAD, DEMO).pop().filter(|c| c.conclusion.as_deref() == Some("success"))
        })
        .await;
    assert_eq!(again.title, "gate passed: 1 regression, 1 fix");
    let entries = audit_entries(&h).await;
    assert_eq!(decisions(&entries, "cancelled"), 1, "{entries:#?}");
    assert_eq!(decisions(&entries, "success"), 1);
}

#[tokio::test]
async fn four_deliveries_of_one_pr_at_once_make_one_check_run_per_name_and_one_evaluation() {
    let h = harness().await;
    let one_evaluation = {
        // What a single evaluation of this PR costs, measured on a server of its own.
        let solo = harness().await;
        solo.pr_opened(1).await;
        completes_once_with_one_decision(&solo).await;
        solo.provider.call_count()
    };
    let events = ["opened", "edited", "synchronize", "reopened"];
    let sends = events.iter().map(|action| {
        let payload = h.github.pull_request_event(REPO, 1, action);
        let h = &h;
        async move { h.deliver("pull_request", &payload).await }
    });
    for status in futures_util::future::join_all(sends).await {
        assert_eq!(status, 202);
    }
    completes_once_with_one_decision(&h).await;
    for name in ["evalgate", PRE_REGISTRATION_CHECK] {
        assert_eq!(h.checks(HEAD, name).len(), 1, "one {name} check run");
    }
    // Let every delivery finish, then count: the evaluation ran once.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(h.provider.call_count(), one_evaluation, "four deliveries, one evaluation");
    assert_eq!(decisions(&audit_entries(&h).await, "success"), 1);
}

const PRE_REGISTRATION_CHECK: &str = "evalgate/pre-registration";

#[tokio::test]
async fn the_pre_registration_entry_names_who_wrote_it_into_the_body() {
    let script = Script::new().head(3, Plan::Fail).base(4, Plan::Fail);
    let h = Harness::start_with(Arc::new(script), &[("EVALGATE_ADMIN_TOKEN", TOKEN)]).await;
    let commits = Commits::of(&Spec { gate: "{ max_regression_rate: 0.5 }", ..Spec::new(4) });
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    h.open_pr(1, BASE, HEAD, None, false);
    h.pr_opened(1).await;
    let missing = h.completed(HEAD, PRE_REGISTRATION_CHECK).await;
    assert_eq!(missing.conclusion.as_deref(), Some("failure"));
    // A maintainer, not the author, fills the body in.
    h.github.edit_body(REPO, 1, Some(PRE_REGISTRATION));
    let mut edited = h.github.pull_request_event(REPO, 1, "edited");
    edited["sender"]["login"] = "morgan".into();
    assert_eq!(h.deliver("pull_request", &edited).await, 202);
    let gate = h
        .until("the gate decides", |_| {
            h.checks(HEAD, DEMO).pop().filter(|c| c.conclusion.as_deref() == Some("success"))
        })
        .await;
    assert_eq!(gate.title, "gate passed: 1 regression, 1 fix");
    let entries = audit_entries(&h).await;
    assert_eq!(decisions(&entries, "success"), 1);
    let prereg: Vec<_> = entries.iter().filter(|e| e["kind"] == "pre_registration").collect();
    assert_eq!(prereg.len(), 1, "{entries:#?}");
    assert_eq!(prereg[0]["actor"], "morgan");
}

#[tokio::test]
async fn a_run_that_waited_for_its_pre_registration_is_evaluated_on_the_check_run_it_waited_on() {
    let h = harness().await;
    h.github.edit_body(REPO, 1, None);
    h.pr_opened(1).await;
    let waiting = h
        .until("the run waits for the pre-registration", |_| {
            h.checks(HEAD, DEMO).pop().filter(|c| c.title == "waiting for the pre-registration")
        })
        .await;
    h.github.edit_body(REPO, 1, Some(PRE_REGISTRATION));
    h.deliver("pull_request", &h.github.pull_request_event(REPO, 1, "edited")).await;
    let gate = h.completed(HEAD, DEMO).await;
    assert_eq!(gate.id, waiting.id, "updated in place, not left queued beside a second one");
    assert_eq!(h.checks(HEAD, DEMO).len(), 1);
}

#[tokio::test]
async fn a_rerun_of_a_closed_prs_check_evaluates_nothing() {
    let h = harness().await;
    h.pr_opened(1).await;
    let gate = h.completed(HEAD, DEMO).await;
    h.github.close_pr(REPO, 1);
    h.deliver("pull_request", &h.github.pull_request_event(REPO, 1, "closed")).await;
    let rerun = h.github.check_run_event(REPO, gate.id, "rerequested", None, "alex");
    assert_eq!(h.deliver("check_run", &rerun).await, 202);
    h.until("the re-run is turned down", |_| {
        h.logs().contains("re-run of a closed pull request ignored").then_some(())
    })
    .await;
    assert_eq!(h.checks(HEAD, DEMO).len(), 1, "no new check run for a closed pull request");
    assert_eq!(h.checks(HEAD, DEMO)[0].conclusion.as_deref(), Some("success"));
}
