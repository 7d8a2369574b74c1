//! The `evalgate` check a team marks required: on every pull-request head and merge-queue group,
//! always, summing up the evalgate checks of that head and following every change of them; the
//! merge queue's groups checked against their base; fork check payloads mapped to their pull
//! request without GitHub's `pull_requests` list.

#[path = "support/fake_github.rs"]
mod fake_github;
#[path = "support/github_app.rs"]
mod github_app;
mod support;

use github_app::{Commits, Harness, PRE_REGISTRATION, REPO};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use support::scenario::{Plan, Script, Spec};

const BASE: &str = "1111111111111111111111111111111111111111";
const HEAD: &str = "2222222222222222222222222222222222222222";
const HEAD2: &str = "3333333333333333333333333333333333333333";
const GROUP: &str = "4444444444444444444444444444444444444444";
const EVALGATE: &str = "evalgate";
const DEMO: &str = "evalgate/demo";

/// Head regresses c03 and fixes c04.
fn moving() -> Script {
    Script::new().head(3, Plan::Fail).base(4, Plan::Fail)
}

/// A server and PR #1 (base → head) under `gate`, its pre-registration allowing `allowed`.
async fn pr_with_gate(gate: &'static str, allowed: &str) -> (Harness, Commits) {
    let h = Harness::start(Arc::new(moving())).await;
    let commits = Commits::of(&Spec { gate, ..Spec::new(4) });
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION.replace("50%", allowed).as_str()), false);
    (h, commits)
}

async fn comment(h: &Harness, body: &str, author: &str) {
    let payload = h.github.issue_comment_event(REPO, 1, body, author);
    assert_eq!(h.deliver("issue_comment", &payload).await, 202);
}

/// Waits for the newest `name` on `sha` to be completed with `conclusion`.
async fn concluded(h: &Harness, sha: &str, name: &str, conclusion: &str) -> fake_github::CheckRun {
    h.until(&format!("{name} on {sha} is {conclusion}"), |_| {
        h.checks(sha, name).pop().filter(|c| c.status == "completed" && c.conclusion.as_deref() == Some(conclusion))
    })
    .await
}

#[tokio::test]
async fn a_pr_that_touches_no_bundle_gets_evalgate_success() {
    let h = Harness::start(Arc::new(moving())).await;
    let commits = Commits::of(&Spec::new(2));
    h.commit(BASE, &commits.base);
    let mut readme_only = commits.base.clone();
    readme_only.insert("README.md".into(), b"# a change to the docs\n".to_vec());
    h.commit(HEAD, &readme_only);
    h.open_pr(1, BASE, HEAD, None, false);
    h.pr_opened(1).await;
    let check = concluded(&h, HEAD, EVALGATE, "success").await;
    assert_eq!(check.title, "no bundle touched");
    assert_eq!(h.checks(HEAD, EVALGATE).len(), 1);
    let names: Vec<String> = h.github.check_runs(REPO).into_iter().map(|c| c.name).collect();
    assert_eq!(names, vec![EVALGATE.to_owned()], "no other check on a PR that touches no bundle");
    assert_eq!(h.provider.call_count(), 0);
}

#[tokio::test]
async fn evalgate_fails_with_a_failing_bundle_turns_green_on_override_and_follows_a_rerun() {
    let (h, _) = pr_with_gate("{ max_regression_rate: 0.0 }", "0%").await;
    h.pr_opened(1).await;
    concluded(&h, HEAD, DEMO, "failure").await;
    let failed = concluded(&h, HEAD, EVALGATE, "failure").await;
    assert!(failed.summary.contains("| `evalgate/demo` | failure"), "{}", failed.summary);
    assert!(failed.summary.contains("| `evalgate/pre-registration` | success"), "{}", failed.summary);
    assert!(failed.summary.contains("/runs/"), "each bundle row links its report: {}", failed.summary);

    h.github.set_permission(REPO, "jordan", "write");
    comment(&h, "/evalgate override known flake in c03", "jordan").await;
    let green = concluded(&h, HEAD, EVALGATE, "success").await;
    assert!(green.summary.contains("gate overridden by @jordan"), "{}", green.summary);

    // A re-run discards the override and decides again: red again, through in-progress.
    let gate = h.checks(HEAD, DEMO).pop().expect("the gate's check");
    let rerun = h.github.check_run_event(REPO, gate.id, "rerequested", None, "jordan");
    assert_eq!(h.deliver("check_run", &rerun).await, 202);
    let red = concluded(&h, HEAD, EVALGATE, "failure").await;
    assert!(red.statuses_seen.iter().filter(|s| *s == "completed").count() >= 2, "{:?}", red.statuses_seen);
    assert!(red.statuses_seen.iter().any(|s| s == "in_progress"), "{:?}", red.statuses_seen);
    assert_eq!(h.checks(HEAD, EVALGATE).len(), 1, "one evalgate check per head, updated in place");
}

#[tokio::test]
async fn a_newer_push_cancels_the_old_heads_evalgate_and_the_new_head_gets_its_own() {
    let script = moving();
    let h = Harness::start_slow(Arc::new(script), Duration::from_millis(400)).await;
    let commits = Commits::of(&Spec { gate: "{ max_regression_rate: 0.5 }", ..Spec::new(4) });
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    let mut newer = commits.head.clone();
    newer.insert(
        "agent/prompt.md".into(),
        b"# Demo agent\nVersion: head\n## Policy\nLook up the order with lookup_order(order_id) first. Be brief.\n"
            .to_vec(),
    );
    h.commit(HEAD2, &newer);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION), false);
    h.pr_opened(1).await;
    h.until("the first head evaluates", |_| h.checks(HEAD, DEMO).pop().filter(|c| c.status == "in_progress")).await;
    h.github.push(REPO, 1, HEAD2);
    h.deliver("pull_request", &h.github.pull_request_event(REPO, 1, "synchronize")).await;
    concluded(&h, HEAD, EVALGATE, "cancelled").await;
    concluded(&h, HEAD2, EVALGATE, "success").await;
}

/// Ten copies of the demo bundle (`demo1` … `demo10`), all changed by the pull request.
fn ten_bundles(side: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> =
        side.iter().filter(|(p, _)| !p.starts_with("agent/")).map(|(p, b)| (p.clone(), b.clone())).collect();
    for i in 1..=10 {
        for (path, bytes) in side.iter().filter(|(p, _)| p.starts_with("agent/")) {
            let mut bytes = bytes.clone();
            if path == "agent/bundle.yaml" {
                let text =
                    String::from_utf8(bytes).expect("utf8").replace("bundle: demo\n", &format!("bundle: demo{i}\n"));
                bytes = text.into_bytes();
            }
            out.insert(path.replacen("agent/", &format!("agent{i}/"), 1), bytes);
        }
    }
    out
}

#[tokio::test]
async fn ten_touched_bundles_are_summed_up_in_one_evalgate_check() {
    let h = Harness::start(Arc::new(moving())).await;
    let commits = Commits::of(&Spec { gate: "{ max_regression_rate: 0.5 }", ..Spec::new(2) });
    h.commit(BASE, &ten_bundles(&commits.base));
    h.commit(HEAD, &ten_bundles(&commits.head));
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION), false);
    h.pr_opened(1).await;
    let sum = concluded(&h, HEAD, EVALGATE, "success").await;
    for i in 1..=10 {
        assert!(sum.summary.contains(&format!("| `evalgate/demo{i}` | success")), "{}", sum.summary);
    }
    assert_eq!(sum.summary.matches("| `evalgate/demo").count(), 10, "{}", sum.summary);
    assert_eq!(sum.title, "all 11 evalgate checks passed or were approved", "ten bundles and the pre-registration");
    assert_eq!(h.checks(HEAD, EVALGATE).len(), 1);
}

#[tokio::test]
async fn a_merge_group_with_the_prs_content_gets_the_prs_conclusion_without_a_model_call() {
    let (h, commits) = pr_with_gate("{ max_regression_rate: 0.5 }", "50%").await;
    h.pr_opened(1).await;
    concluded(&h, HEAD, EVALGATE, "success").await;
    let calls = h.provider.call_count();
    // The queue's commit: the PR merged onto main, which has not moved.
    h.commit(GROUP, &commits.head);
    let event = h.github.merge_group_event(REPO, "checks_requested", GROUP, BASE, 1);
    assert_eq!(h.deliver("merge_group", &event).await, 202);
    let gate = concluded(&h, GROUP, DEMO, "success").await;
    assert_eq!(gate.title, "gate passed: 1 regression, 1 fix");
    concluded(&h, GROUP, EVALGATE, "success").await;
    assert_eq!(h.provider.call_count(), calls, "content-addressed results: no model call");
    assert!(h.checks(GROUP, "evalgate/pre-registration").is_empty(), "no pre-registration in the queue");
}

#[tokio::test]
async fn an_override_on_the_pr_carries_to_a_merge_group_with_the_same_content() {
    let (h, commits) = pr_with_gate("{ max_regression_rate: 0.0 }", "0%").await;
    h.pr_opened(1).await;
    concluded(&h, HEAD, DEMO, "failure").await;
    h.github.set_permission(REPO, "jordan", "write");
    comment(&h, "/evalgate override known flake in c03", "jordan").await;
    concluded(&h, HEAD, EVALGATE, "success").await;
    let calls = h.provider.call_count();
    h.commit(GROUP, &commits.head);
    h.deliver("merge_group", &h.github.merge_group_event(REPO, "checks_requested", GROUP, BASE, 1)).await;
    let gate = concluded(&h, GROUP, DEMO, "success").await;
    assert!(gate.title.starts_with("gate overridden by @jordan on #1"), "{}", gate.title);
    concluded(&h, GROUP, EVALGATE, "success").await;
    assert_eq!(h.provider.call_count(), calls);
}

#[tokio::test]
async fn a_merge_group_whose_bundle_differs_from_the_pr_is_evaluated_and_an_override_does_not_carry() {
    let (h, commits) = pr_with_gate("{ max_regression_rate: 0.0 }", "0%").await;
    h.pr_opened(1).await;
    concluded(&h, HEAD, DEMO, "failure").await;
    h.github.set_permission(REPO, "jordan", "write");
    comment(&h, "/evalgate override known flake in c03", "jordan").await;
    concluded(&h, HEAD, EVALGATE, "success").await;
    let calls = h.provider.call_count();
    let mut other = commits.head.clone();
    other.insert(
        "agent/prompt.md".into(),
        b"# Demo agent\nVersion: head\n## Policy\nAnother change queued with it.\n".to_vec(),
    );
    h.commit(GROUP, &other);
    h.deliver("merge_group", &h.github.merge_group_event(REPO, "checks_requested", GROUP, BASE, 1)).await;
    let gate = concluded(&h, GROUP, DEMO, "failure").await;
    assert!(!gate.title.contains("overridden"), "{}", gate.title);
    concluded(&h, GROUP, EVALGATE, "failure").await;
    assert!(h.provider.call_count() > calls, "a bundle the PR did not have is evaluated");
}

#[tokio::test]
async fn a_destroyed_merge_group_cancels_its_running_evaluation() {
    let h = Harness::start_slow(Arc::new(moving()), Duration::from_millis(500)).await;
    let commits = Commits::of(&Spec { gate: "{ max_regression_rate: 0.5 }", ..Spec::new(4) });
    h.commit(BASE, &commits.base);
    h.commit(GROUP, &commits.head);
    h.deliver("merge_group", &h.github.merge_group_event(REPO, "checks_requested", GROUP, BASE, 1)).await;
    h.until("the group evaluates", |_| h.checks(GROUP, DEMO).pop().filter(|c| c.status == "in_progress")).await;
    h.deliver("merge_group", &h.github.merge_group_event(REPO, "destroyed", GROUP, BASE, 1)).await;
    let cancelled = concluded(&h, GROUP, DEMO, "cancelled").await;
    assert_eq!(cancelled.title, "cancelled: the merge group was destroyed");
    concluded(&h, GROUP, EVALGATE, "cancelled").await;
}

#[tokio::test]
async fn a_forks_rerun_resolves_to_its_pr_without_githubs_pull_request_list() {
    let h = Harness::start(Arc::new(moving())).await;
    let commits = Commits::of(&Spec { gate: "{ max_regression_rate: 0.5 }", ..Spec::new(4) });
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION), true);
    // evalgate never saw this PR opened: a "Re-run all" of the fork's suite is its first word of
    // it, with `pull_requests: []`, so the head is looked up on GitHub.
    let suite = h.github.check_suite_event(REPO, HEAD, "rerequested", "jordan");
    assert_eq!(suite["check_suite"]["pull_requests"], serde_json::json!([]));
    h.deliver("check_suite", &suite).await;
    let waiting = concluded(&h, HEAD, DEMO, "action_required").await;
    concluded(&h, HEAD, EVALGATE, "action_required").await;
    assert_eq!(h.provider.call_count(), 0, "a fork spends nothing until a writer approves");

    h.github.set_permission(REPO, "jordan", "write");
    let run = h.github.check_run_event(REPO, waiting.id, "requested_action", Some("run-evals"), "jordan");
    assert_eq!(run["check_run"]["pull_requests"], serde_json::json!([]));
    h.deliver("check_run", &run).await;
    let gate = h
        .until("the approved evaluation completes", |_| {
            h.checks(HEAD, DEMO).pop().filter(|c| c.id != waiting.id && c.status == "completed")
        })
        .await;
    assert_eq!(gate.conclusion.as_deref(), Some("success"), "{}", gate.summary);
    concluded(&h, HEAD, EVALGATE, "success").await;

    let calls = h.provider.call_count();
    let rerun = h.github.check_run_event(REPO, gate.id, "rerequested", None, "jordan");
    h.deliver("check_run", &rerun).await;
    h.until("the re-run completes", |_| {
        h.checks(HEAD, DEMO).pop().filter(|c| c.id != gate.id && c.status == "completed")
    })
    .await;
    assert_eq!(h.provider.call_count(), calls, "re-run from the cache");
}

/// A second pull request whose head is #1's head, against a base that already holds it (so it
/// touches nothing).
fn open_second_pr_on_the_same_head(h: &Harness, commits: &Commits) {
    const RELEASE: &str = "5555555555555555555555555555555555555555";
    let mut release = commits.head.clone();
    release.insert("README.md".into(), b"# release branch\n".to_vec());
    h.commit(RELEASE, &release);
    h.github.set_parents(REPO, RELEASE, &[HEAD]);
    h.github.open_pr(
        REPO,
        fake_github::PrSpec {
            number: 2,
            base_sha: RELEASE.into(),
            head_sha: HEAD.into(),
            base_ref: "release".into(),
            head_ref: "change-1".into(),
            body: None,
            author: "mallory".into(),
            fork: false,
        },
    );
}

/// Re-runs #1's gate and waits for `evalgate` on the head to be decided a second time.
async fn rerun_and_decide_again(h: &Harness) -> fake_github::CheckRun {
    let gate = h.checks(HEAD, DEMO).pop().expect("the gate's check");
    let rerun = h.github.check_run_event(REPO, gate.id, "rerequested", None, "alex");
    assert_eq!(h.deliver("check_run", &rerun).await, 202);
    h.until("evalgate decided again after the re-run", |_| {
        h.checks(HEAD, EVALGATE)
            .pop()
            .filter(|c| c.status == "completed" && c.statuses_seen.iter().filter(|s| *s == "completed").count() >= 2)
    })
    .await
}

#[tokio::test]
async fn a_second_pr_on_the_same_head_that_touches_nothing_never_turns_evalgate_green() {
    let (h, commits) = pr_with_gate("{ max_regression_rate: 0.0 }", "0%").await;
    h.pr_opened(1).await;
    concluded(&h, HEAD, EVALGATE, "failure").await;
    open_second_pr_on_the_same_head(&h, &commits);
    h.pr_opened(2).await;
    h.until("pull request #2 was read", |_| h.logs().contains("pull request synchronised pr=2").then_some(())).await;
    // #1's re-run goes through in progress to its decision again, with #2 read: the `evalgate`
    // check is one per commit, and #2's "nothing touched" cannot speak for #1.
    let check = rerun_and_decide_again(&h).await;
    assert_eq!(check.conclusion.as_deref(), Some("failure"), "{check:#?}");
    assert!(check.summary.contains("| `evalgate/demo` | failure"), "{}", check.summary);
    assert!(!check.conclusions_seen.iter().any(|c| c == "success"), "{:?}", check.conclusions_seen);
}

#[tokio::test]
async fn closing_and_reopening_one_of_two_prs_on_a_head_never_shows_the_others_success() {
    let (h, commits) = pr_with_gate("{ max_regression_rate: 0.0 }", "0%").await;
    h.pr_opened(1).await;
    concluded(&h, HEAD, EVALGATE, "failure").await;
    open_second_pr_on_the_same_head(&h, &commits);
    h.pr_opened(2).await;
    h.github.close_pr(REPO, 1);
    h.deliver("pull_request", &h.github.pull_request_event(REPO, 1, "closed")).await;
    h.github.reopen_pr(REPO, 1);
    h.deliver("pull_request", &h.github.pull_request_event(REPO, 1, "reopened")).await;
    h.until("#1 was read again", |_| (h.logs().matches("pull request synchronised pr=1").count() >= 2).then_some(()))
        .await;
    // #1's failure stands on the shared head through its close and reopening: #2 (nothing
    // touched at its base) never speaks for it.
    let check = rerun_and_decide_again(&h).await;
    assert_eq!(check.conclusion.as_deref(), Some("failure"), "{check:#?}");
    assert!(!check.conclusions_seen.iter().any(|c| c == "success"), "{:?}", check.conclusions_seen);
}

#[tokio::test]
async fn a_moved_base_shows_evalgate_pending_until_the_new_pair_is_read() {
    let (h, commits) = pr_with_gate("{ max_regression_rate: 0.5 }", "50%").await;
    h.pr_opened(1).await;
    concluded(&h, HEAD, EVALGATE, "success").await;
    // The base branch moves to a commit that holds the head, and GitHub cannot list the files.
    const MOVED: &str = "6666666666666666666666666666666666666666";
    h.commit(MOVED, &commits.head);
    h.github.set_parents(REPO, MOVED, &[HEAD]);
    h.github.set_branch(REPO, "release", MOVED);
    h.github.retarget(REPO, 1, "release");
    h.github.fail("GET /repos/*/*/pulls/*/files", 10_000, fake_github::Failure::Status(500));
    h.deliver("pull_request", &h.github.pull_request_event(REPO, 1, "edited")).await;
    // The old pair's success no longer shows while the new pair cannot be read.
    let pending = h
        .until("evalgate is pending again", |_| h.checks(HEAD, EVALGATE).pop().filter(|c| c.status != "completed"))
        .await;
    assert_eq!(h.checks(HEAD, EVALGATE).len(), 1, "{pending:#?}");
    h.github.clear_failures();
    h.deliver("pull_request", &h.github.pull_request_event(REPO, 1, "edited")).await;
    concluded(&h, HEAD, EVALGATE, "success").await;
}

#[tokio::test]
async fn a_bundle_named_like_an_evalgate_check_fails_under_a_name_of_its_own() {
    let h = Harness::start(Arc::new(moving())).await;
    let mut commits = Commits::of(&Spec { gate: "{ max_regression_rate: 0.5 }", ..Spec::new(4) });
    let manifest = commits.head.get_mut("agent/bundle.yaml").expect("the head's manifest");
    *manifest =
        String::from_utf8(manifest.clone()).expect("utf-8").replace("bundle: demo", "bundle: golden-set").into();
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION), false);
    h.pr_opened(1).await;
    concluded(&h, HEAD, EVALGATE, "failure").await;
    let runs = h.github.check_runs(REPO);
    let invalid = runs.iter().find(|c| c.name.starts_with("evalgate/invalid.")).expect("the bundle's own check");
    assert_eq!(invalid.conclusion.as_deref(), Some("failure"), "{invalid:#?}");
    assert!(invalid.summary.contains("reserved"), "{}", invalid.summary);
    let pre_registration = runs.iter().find(|c| c.name == "evalgate/pre-registration").expect("evalgate's own check");
    assert_eq!(pre_registration.conclusion.as_deref(), Some("success"));
    assert!(!pre_registration.details_url.contains("/runs/"), "no gate run stands in for it: {pre_registration:#?}");
    assert!(runs.iter().all(|c| c.name != "evalgate/golden-set"), "nothing of the instrument changed: {runs:#?}");
}
