//! Reviewers steer the gate from PR comments: `/evalgate override`, `explain`, `rerun`,
//! `accept-thresholds`, `approve-golden`. Only writers may; everyone is answered.

#[path = "support/fake_github.rs"]
mod fake_github;
#[path = "support/github_app.rs"]
mod github_app;
mod support;

use github_app::{Commits, Harness, PRE_REGISTRATION, REPO};
use std::sync::Arc;
use support::scenario::{Plan, Script, Spec};

const BASE: &str = "1111111111111111111111111111111111111111";
const HEAD: &str = "2222222222222222222222222222222222222222";
const DEMO: &str = "evalgate/demo";
const GOLDEN: &str = "evalgate/golden-set";
const PREREG: &str = "evalgate/pre-registration";

/// Base passes everything; head regresses c03 and fixes c04; the pre-registration allows no
/// regression, so the gate fails.
async fn failing_gate() -> Harness {
    failing_gate_under("{ max_regression_rate: 0.0 }").await
}

/// The same, under the base bundle's `gate:` block `gate`.
async fn failing_gate_under(gate: &'static str) -> Harness {
    let h = Harness::start(Arc::new(Script::new().head(3, Plan::Fail).base(4, Plan::Fail))).await;
    let commits = Commits::of(&Spec { gate, ..Spec::new(4) });
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION.replace("50%", "0%").as_str()), false);
    h.pr_opened(1).await;
    let gate = h.completed(HEAD, DEMO).await;
    assert_eq!(gate.conclusion.as_deref(), Some("failure"), "{}", gate.title);
    h
}

async fn comment(h: &Harness, body: &str, author: &str) -> u64 {
    let payload = h.github.issue_comment_event(REPO, 1, body, author);
    assert_eq!(h.deliver("issue_comment", &payload).await, 202);
    payload["comment"]["id"].as_u64().expect("comment id")
}

/// Waits for a reply of evalgate's that contains `text`.
async fn reply_containing(h: &Harness, text: &str) -> String {
    h.until(&format!("a reply containing {text:?}"), |gh| {
        gh.comments(REPO, 1).into_iter().find(|c| c.author == fake_github::BOT_LOGIN && c.body.contains(text))
    })
    .await
    .body
}

#[tokio::test]
async fn a_readers_override_is_refused_and_changes_nothing() {
    let h = failing_gate().await;
    h.github.set_permission(REPO, "mallory", "read");
    comment(&h, "/evalgate override ship it", "mallory").await;
    let text = reply_containing(&h, "@mallory").await;
    assert!(text.contains("write, maintain or admin"), "{text}");
    let gate = h.checks(HEAD, DEMO).pop().expect("the gate");
    assert_eq!(gate.conclusion.as_deref(), Some("failure"), "unchanged");
}

#[tokio::test]
async fn a_writers_override_turns_the_check_green_and_names_them() {
    let h = failing_gate().await;
    h.github.set_permission(REPO, "jordan", "maintain");
    let id = comment(&h, "/evalgate override the judge is known to be wrong on c03", "jordan").await;
    let gate = h
        .until("the gate is overridden", |_| {
            h.checks(HEAD, DEMO).pop().filter(|c| c.conclusion.as_deref() == Some("success"))
        })
        .await;
    assert!(gate.title.contains("@jordan") && gate.title.contains("known to be wrong"), "{}", gate.title);
    assert!(gate.summary.contains("gate failed"), "the gate's own result stays visible: {}", gate.summary);
    h.until("the comment gets a reaction", |gh| {
        gh.comments(REPO, 1).into_iter().find(|c| c.id == id && c.reactions.contains(&"+1".to_owned()))
    })
    .await;
    reply_containing(&h, "overridden by @jordan").await;
}

#[tokio::test]
async fn explain_replies_with_the_case_on_both_sides() {
    let h = failing_gate().await;
    h.github.set_permission(REPO, "jordan", "write");
    comment(&h, "/evalgate explain c03", "jordan").await;
    let text = reply_containing(&h, "`c03`").await;
    assert!(text.contains("Input:") && text.contains("case c03"), "the input: {text}");
    assert!(text.contains("#### base: pass") && text.contains("#### head: fail"), "both sides: {text}");
    assert!(text.contains("ANSWER-OK for c03 (base)") && text.contains("sorry, no for c03 (head)"), "{text}");
    assert!(text.contains("FAIL `contains`"), "the failed check: {text}");
}

#[tokio::test]
async fn rerun_evaluates_again_from_the_cache() {
    let h = failing_gate().await;
    let first = h.checks(HEAD, DEMO).pop().expect("gate");
    let calls = h.provider.call_count();
    h.github.set_permission(REPO, "jordan", "write");
    comment(&h, "/evalgate rerun", "jordan").await;
    let again = h
        .until("a new gate run completes", |_| {
            h.checks(HEAD, DEMO).pop().filter(|c| c.id != first.id && c.status == "completed")
        })
        .await;
    assert_eq!(again.conclusion.as_deref(), Some("failure"));
    assert_eq!(h.provider.call_count(), calls, "nothing was evaluated twice");
}

#[tokio::test]
async fn edited_thresholds_are_flagged_and_stand_only_once_accepted() {
    // The base allows 50%; the pre-registration tightened it to 0%, then an edit asks for 50%.
    let h = failing_gate_under("{ max_regression_rate: 0.5 }").await;
    h.github.edit_body(REPO, 1, Some(PRE_REGISTRATION));
    h.deliver("pull_request", &h.github.pull_request_event(REPO, 1, "edited")).await;
    let prereg =
        h.until("the edit is flagged", |_| h.checks(HEAD, PREREG).pop().filter(|c| c.title.contains("edited"))).await;
    assert!(
        prereg.summary.contains("was `max_regression_rate` 0.0%, now `max_regression_rate` 50.0%"),
        "{}",
        prereg.summary
    );
    assert_eq!(h.checks(HEAD, DEMO).pop().and_then(|c| c.conclusion), Some("failure".into()), "the original stands");

    h.github.set_permission(REPO, "jordan", "admin");
    comment(&h, "/evalgate accept-thresholds", "jordan").await;
    let gate = h
        .until("the gate passes under the accepted thresholds", |_| {
            h.checks(HEAD, DEMO).pop().filter(|c| c.conclusion.as_deref() == Some("success"))
        })
        .await;
    assert!(gate.title.starts_with("gate passed"), "{}", gate.title);
}

#[tokio::test]
async fn approve_golden_clears_the_golden_set_check() {
    let h = Harness::start(Arc::new(Script::new())).await;
    let repo = support::scenario::repo(&Spec::new(3));
    let before = Commits::from_repo(&repo);
    let yaml = std::fs::read_to_string(repo.file("agent/bundle.yaml")).expect("bundle");
    repo.write("agent/bundle.yaml", yaml.replace("max_regression_rate: 0.0", "max_regression_rate: 0.2"));
    let after = Commits::from_repo(&repo);
    h.commit(BASE, &before.base);
    h.commit(HEAD, &after.head);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION), false);
    h.pr_opened(1).await;
    let golden = h.completed(HEAD, GOLDEN).await;
    assert_eq!(golden.conclusion.as_deref(), Some("action_required"));
    assert!(golden.summary.contains("| gate.max_regression_rate | ` 0 ` | ` 0.2 ` |"), "{}", golden.summary);

    h.github.set_permission(REPO, "jordan", "write");
    comment(&h, "/evalgate approve-golden", "jordan").await;
    let approved = h
        .until("the golden-set check passes", |_| {
            h.checks(HEAD, GOLDEN).pop().filter(|c| c.conclusion.as_deref() == Some("success"))
        })
        .await;
    assert!(approved.title.contains("approved by @jordan"), "{}", approved.title);
}

#[tokio::test]
async fn an_unknown_command_is_answered_with_the_nearest_one() {
    let h = failing_gate().await;
    comment(&h, "/evalgate rerum", "jordan").await;
    let text = reply_containing(&h, "rerum").await;
    assert!(text.contains("/evalgate rerun"), "{text}");
}

#[tokio::test]
async fn an_edited_comment_runs_only_the_command_it_adds() {
    let h = failing_gate().await;
    h.github.set_permission(REPO, "jordan", "write");
    let id = comment(&h, "/evalgate explain c03", "jordan").await;
    reply_containing(&h, "`c03`").await;
    let edited = h.github.issue_comment_edited_event(REPO, 1, id, "/evalgate explain c03\n/evalgate explain c04");
    h.deliver("issue_comment", &edited).await;
    reply_containing(&h, "`c04`").await;
    let explains_of_c03 = h.github.comments(REPO, 1).iter().filter(|c| c.body.contains("### `c03`")).count();
    assert_eq!(explains_of_c03, 1, "c03 was explained once");
}

#[tokio::test]
async fn commands_in_code_blocks_and_quotes_are_not_run() {
    let h = failing_gate().await;
    h.github.set_permission(REPO, "jordan", "write");
    comment(&h, "> /evalgate override quoted\n\n```\n/evalgate override in code\n```\n/evalgate explain c04", "jordan")
        .await;
    reply_containing(&h, "`c04`").await;
    assert_eq!(h.checks(HEAD, DEMO).pop().and_then(|c| c.conclusion), Some("failure".into()), "no override ran");
}

#[tokio::test]
async fn comments_by_bots_are_ignored() {
    let h = failing_gate().await;
    let before = h.github.comments(REPO, 1).len();
    comment(&h, "/evalgate override a bot said so", "evalgate[bot]").await;
    comment(&h, "/evalgate rerum", "dependabot[bot]").await;
    // A person's command after them is answered, so the bots' were read and skipped.
    h.github.set_permission(REPO, "jordan", "write");
    comment(&h, "/evalgate explain c04", "jordan").await;
    reply_containing(&h, "`c04`").await;
    assert_eq!(h.github.comments(REPO, 1).len(), before + 3 + 1, "three comments sent, one reply");
    assert_eq!(h.checks(HEAD, DEMO).pop().and_then(|c| c.conclusion), Some("failure".into()));
}

#[tokio::test]
async fn an_edit_by_another_user_of_a_writers_comment_runs_nothing() {
    let h = failing_gate().await;
    h.github.set_permission(REPO, "jordan", "write");
    h.github.set_permission(REPO, "mallory", "read");
    let id = comment(&h, "Looks worth a look.", "jordan").await;
    // mallory (read-only) edits jordan's comment to add an override.
    let payload = h.github.issue_comment_edited_by(
        REPO,
        1,
        id,
        "Looks worth a look.\n/evalgate override ship it",
        Some("mallory"),
    );
    assert_eq!(h.deliver("issue_comment", &payload).await, 202);
    // Something else afterwards, so we know the edit was handled.
    comment(&h, "/evalgate explain c03", "jordan").await;
    reply_containing(&h, "`c03`").await;
    let gate = h.checks(HEAD, DEMO).pop().expect("the gate");
    assert_eq!(gate.conclusion.as_deref(), Some("failure"), "the edit passed the gate: {}", gate.title);
}

#[tokio::test]
async fn the_author_cannot_override_their_own_pr() {
    let h = failing_gate().await;
    // `alex` opened the pull request and has write access.
    h.github.set_permission(REPO, "alex", "write");
    comment(&h, "/evalgate override my own change is fine", "alex").await;
    let text = reply_containing(&h, "separation of duties").await;
    assert!(text.contains("@alex"), "{text}");
    let gate = h.checks(HEAD, DEMO).pop().expect("the gate");
    assert_eq!(gate.conclusion.as_deref(), Some("failure"));
}
