//! Every request `evalgate serve` sends to GitHub, checked against GitHub's own OpenAPI
//! description (`tests/support/openapi.rs`): the main scenarios run end to end against the fake
//! GitHub, which records each request with its body; each one must match an operation of
//! api.github.com, with the query parameters it has and a JSON body its `requestBody` schema
//! accepts. Each scenario also asserts how many requests of the operations it uses were checked,
//! so the check cannot pass by checking nothing.
//!
//! It needs the description: `.ci/run` fetches a pinned `@octokit/openapi` and sets
//! `EVALGATE_GITHUB_OPENAPI` to its `api.github.com.json`. Without it the tests are ignored by
//! default and, run with `--ignored`, fail.

#[path = "support/fake_github.rs"]
mod fake_github;
#[path = "support/github_app.rs"]
mod github_app;
#[path = "support/openapi.rs"]
mod openapi;
mod support;

use github_app::{Commits, Harness, INSTALLATION, PRE_REGISTRATION, REPO};
use openapi::{Description, Report};
use serde_json::json;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use support::fake_provider::{Api, anthropic_model};
use support::scenario::{Plan, Script, Spec};

const BASE: &str = "1111111111111111111111111111111111111111";
const HEAD: &str = "2222222222222222222222222222222222222222";
const HEAD2: &str = "3333333333333333333333333333333333333333";
const DEMO: &str = "evalgate/demo";

fn description() -> &'static Description {
    static D: OnceLock<Description> = OnceLock::new();
    D.get_or_init(Description::from_env)
}

/// Every request the fake answered, checked; panics listing every mismatch. Returns the counts.
fn check_all(h: &Harness) -> Report {
    let d = description();
    let mut report = Report::default();
    for r in h.github.requests() {
        d.check(&r.method, &r.path, &r.body, &mut report);
    }
    assert!(
        report.problems.is_empty(),
        "requests that do not match GitHub's OpenAPI description {}:\n{}",
        d.version,
        report.problems.join("\n")
    );
    report
}

/// At least `n` requests of each operation were checked (bodies validated, for those with one).
fn at_least(report: &Report, expected: &[(&str, usize)]) {
    for (op, n) in expected {
        let seen = report.bodies.get(*op).or_else(|| report.checked.get(*op)).copied().unwrap_or(0);
        assert!(seen >= *n, "{op}: {seen} checked, expected at least {n}; checked: {:?}", report.checked);
    }
}

/// Waits until no job is pending (a pins run queued earlier has finished).
async fn settled(h: &Harness) {
    for _ in 0..600 {
        let (_, metrics) = h.get(&format!("{}/metrics", h.server.url)).await;
        if metrics.contains("evalgate_jobs_pending 0") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the queue did not drain:\n{}", h.logs());
}

async fn comment(h: &Harness, body: &str, author: &str) {
    let payload = h.github.issue_comment_event(REPO, 1, body, author);
    assert_eq!(h.deliver("issue_comment", &payload).await, 202);
}

async fn reply_containing(h: &Harness, text: &str) {
    h.until(&format!("a reply containing {text:?}"), |gh| {
        gh.comments(REPO, 1).into_iter().find(|c| c.author == fake_github::BOT_LOGIN && c.body.contains(text))
    })
    .await;
}

#[tokio::test]
#[ignore = "needs GitHub's OpenAPI description (.ci/run fetches @octokit/openapi)"]
async fn a_gate_an_override_and_an_explain_send_what_github_describes() {
    let _ = description();
    let h = Harness::start(Arc::new(Script::new().head(3, Plan::Fail).base(4, Plan::Fail))).await;
    let commits = Commits::of(&Spec { gate: "{ max_regression_rate: 0.0 }", ..Spec::new(4) });
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION.replace("50%", "0%").as_str()), false);
    // One check-run creation whose answer is lost after it took effect: the App then looks for
    // it by name (`GET …/commits/{sha}/check-runs?check_name=…`).
    h.github.fail("POST /repos/*/*/check-runs", 1, fake_github::Failure::AfterApplying(502));
    h.pr_opened(1).await;
    let gate = h.completed(HEAD, DEMO).await;
    assert_eq!(gate.conclusion.as_deref(), Some("failure"), "{}", gate.title);

    h.github.set_permission(REPO, "jordan", "write");
    comment(&h, "/evalgate override the judge is known to be wrong on c03", "jordan").await;
    h.until("the gate is overridden", |_| {
        h.checks(HEAD, DEMO).pop().filter(|c| c.conclusion.as_deref() == Some("success"))
    })
    .await;
    reply_containing(&h, "overridden by @jordan").await;
    comment(&h, "/evalgate explain c03", "jordan").await;
    reply_containing(&h, "`c03`").await;
    comment(&h, "/evalgate rerum", "jordan").await;
    reply_containing(&h, "/evalgate rerun").await;
    h.until("the sticky comment is edited", |gh| gh.comments(REPO, 1).into_iter().find(|c| c.edits > 0)).await;

    let report = check_all(&h);
    at_least(
        &report,
        &[
            ("apps/create-installation-access-token", 1),
            ("pulls/get", 1),
            ("repos/compare-commits", 1),
            ("pulls/list-files", 1),
            ("checks/list-for-ref", 1),
            ("git/get-tree", 2),
            ("checks/create", 2),
            ("checks/update", 3),
            ("issues/create-comment", 3),
            ("issues/update-comment", 1),
            ("reactions/create-for-issue-comment", 1),
            ("repos/get-collaborator-permission-level", 1),
        ],
    );
}

#[tokio::test]
#[ignore = "needs GitHub's OpenAPI description (.ci/run fetches @octokit/openapi)"]
async fn a_fork_button_and_an_invalid_bundles_annotations_send_what_github_describes() {
    let _ = description();
    let script = Script::new().head(3, Plan::Fail).base(4, Plan::Fail);
    let h = Harness::start(Arc::new(script)).await;
    let commits = Commits::of(&Spec { gate: "{ max_regression_rate: 0.5 }", ..Spec::new(4) });
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION), true);
    h.pr_opened(1).await;
    let waiting = h.completed(HEAD, DEMO).await;
    assert_eq!(waiting.actions.first().and_then(|a| a["identifier"].as_str()), Some("run-evals"));
    h.github.set_permission(REPO, "jordan", "write");
    h.deliver(
        "check_run",
        &h.github.check_run_event(REPO, waiting.id, "requested_action", Some("run-evals"), "jordan"),
    )
    .await;
    h.until("the approved evaluation completes", |_| {
        h.checks(HEAD, DEMO).pop().filter(|c| c.id != waiting.id && c.status == "completed")
    })
    .await;

    // A second pull request whose head bundle is invalid: annotations at file and line.
    let mut broken = commits.head.clone();
    let yaml = String::from_utf8(broken["agent/bundle.yaml"].clone()).expect("utf8");
    broken.insert("agent/bundle.yaml".into(), yaml.replace("runner:", "runnr:").into_bytes());
    h.commit(HEAD2, &broken);
    h.github.open_pr(
        REPO,
        fake_github::PrSpec {
            number: 2,
            base_sha: BASE.into(),
            head_sha: HEAD2.into(),
            base_ref: "main".into(),
            head_ref: "broken".into(),
            body: Some(PRE_REGISTRATION.into()),
            author: "alex".into(),
            fork: false,
        },
    );
    h.deliver("pull_request", &h.github.pull_request_event(REPO, 2, "opened")).await;
    let invalid = h.completed(HEAD2, DEMO).await;
    assert!(!invalid.annotations.is_empty(), "{}", invalid.title);

    let report = check_all(&h);
    at_least(&report, &[("checks/create", 4), ("checks/update", 4), ("issues/create-comment", 1)]);
    let sent_actions = h
        .github
        .requests()
        .iter()
        .any(|r| r.path.contains("/check-runs") && r.body.contains("\"actions\"") && r.body.contains("run-evals"));
    let sent_annotations =
        h.github.requests().iter().any(|r| r.path.contains("/check-runs") && r.body.contains("\"annotations\""));
    assert!(sent_actions && sent_annotations, "the button and the annotations were among the checked bodies");
}

#[tokio::test]
#[ignore = "needs GitHub's OpenAPI description (.ci/run fetches @octokit/openapi)"]
async fn a_cancelled_run_sends_what_github_describes() {
    let _ = description();
    let h = Harness::start_slow(Arc::new(Script::new().head(3, Plan::Fail)), Duration::from_millis(150)).await;
    let commits = Commits::of(&Spec { gate: "{ max_regression_rate: 0.5 }", ..Spec::new(12) });
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    let mut head2 = commits.head.clone();
    head2.insert("agent/NOTES.md".into(), b"unrelated\n".to_vec());
    h.commit(HEAD2, &head2);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION), false);
    h.pr_opened(1).await;
    h.until("the first evaluation runs", |_| h.checks(HEAD, DEMO).pop().filter(|c| c.status == "in_progress")).await;
    h.github.push(REPO, 1, HEAD2);
    h.deliver("pull_request", &h.github.pull_request_event(REPO, 1, "synchronize")).await;
    let old = h.completed(HEAD, DEMO).await;
    assert_eq!(old.conclusion.as_deref(), Some("cancelled"), "{}", old.title);
    h.completed(HEAD2, DEMO).await;
    // Closing the pull request cancels nothing more here, but its event is read too.
    h.github.close_pr(REPO, 1);
    h.deliver("pull_request", &h.github.pull_request_event(REPO, 1, "closed")).await;

    let report = check_all(&h);
    at_least(&report, &[("checks/create", 4), ("checks/update", 4)]);
}

#[tokio::test]
#[ignore = "needs GitHub's OpenAPI description (.ci/run fetches @octokit/openapi)"]
async fn a_pin_bump_pr_opened_then_updated_sends_what_github_describes() {
    let _ = description();
    const ADMIN: &str = "test-admin-token";
    const BRANCH: &str = "evalgate/pin-bump/demo";
    let days_ago =
        |d: i64| (chrono::Utc::now() - chrono::Duration::days(d)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let h = Harness::start_with(Arc::new(Script::new()), &[("EVALGATE_ADMIN_TOKEN", ADMIN)]).await;
    h.commit(BASE, &Commits::of(&Spec::new(3)).base);
    h.github.set_branch(REPO, "main", BASE);
    let installation = json!({
        "action": "added", "installation": { "id": INSTALLATION },
        "repository_selection": "selected", "repositories_added": [{ "full_name": REPO, "name": "agents" }],
        "repositories_removed": [], "sender": { "login": "alex", "type": "User" },
    });
    assert_eq!(h.deliver("installation_repositories", &installation).await, 202);
    settled(&h).await;
    let models = |newer: &[(&str, i64)]| {
        let mut list = vec![
            anthropic_model("claude-sonnet-4-5-20250929", &days_ago(400)),
            anthropic_model("claude-haiku-4-5-20251001", &days_ago(380)),
        ];
        list.extend(newer.iter().map(|(id, age)| anthropic_model(id, &days_ago(*age))));
        h.provider.set_models(Api::Anthropic, list);
    };
    let run_pins = || async {
        let resp = reqwest::Client::new()
            .post(format!("{}/api/pins/run", h.server.url))
            .header("authorization", format!("Bearer {ADMIN}"))
            .send()
            .await
            .expect("POST /api/pins/run");
        assert_eq!(resp.status().as_u16(), 202);
    };
    let bump = |title: &'static str| {
        move |gh: &fake_github::FakeGitHub| {
            gh.pulls(REPO).into_iter().find(|p| p.head_ref == BRANCH && p.title.contains(title))
        }
    };
    models(&[("claude-sonnet-4-5-20260301", 270)]);
    run_pins().await;
    let pr = h.until("a bump PR is opened", bump("20260301")).await;
    h.deliver("pull_request", &h.github.pull_request_event(REPO, pr.number, "opened")).await;
    h.completed(&pr.head_sha, DEMO).await;
    settled(&h).await;
    models(&[("claude-sonnet-4-5-20260301", 270), ("claude-sonnet-4-5-20261001", 60)]);
    run_pins().await;
    let updated = h.until("the PR proposes the newer snapshot", bump("20261001")).await;
    assert_eq!(updated.number, pr.number);

    let report = check_all(&h);
    at_least(
        &report,
        &[
            ("repos/get", 1),
            ("git/get-ref", 1),
            ("git/create-blob", 2),
            ("git/get-commit", 2),
            ("git/create-tree", 2),
            ("git/create-commit", 2),
            ("git/create-ref", 1),
            ("git/update-ref", 1),
            ("pulls/list", 1),
            ("pulls/create", 1),
            ("pulls/update", 1),
        ],
    );
}

/// The checker, against GitHub's real description, refuses what GitHub would: so a clean run
/// above means the bodies are right, not that nothing was looked at.
#[test]
#[ignore = "needs GitHub's OpenAPI description (.ci/run fetches @octokit/openapi)"]
fn the_description_refuses_bodies_github_would_refuse() {
    let d = description();
    let problems = |method: &str, path: &str, body: serde_json::Value| {
        let mut r = Report::default();
        d.check(method, path, &body.to_string(), &mut r);
        r.problems
    };
    let create = "/repos/acme/agents/check-runs";
    let ok = json!({ "name": "evalgate", "head_sha": HEAD, "status": "queued",
        "output": { "title": "t", "summary": "s", "annotations": [{ "path": "a.yaml", "start_line": 1, "end_line": 1,
        "annotation_level": "failure", "message": "m" }] },
        "actions": [{ "label": "Run evals", "description": "d", "identifier": "run-evals" }] });
    assert_eq!(problems("POST", create, ok.clone()), Vec::<String>::new());
    for (bad, why) in [
        (json!({ "status": "done" }), "an unknown status"),
        (json!({ "output": { "title": 1, "summary": "s" } }), "a title that is not a string"),
        (json!({ "output": { "title": "t" } }), "an output without summary"),
        (
            json!({ "output": { "title": "t", "summary": "s", "annotations": [{ "path": "a", "start_line": 1,
            "end_line": 1, "annotation_level": "error", "message": "m" }] } }),
            "an unknown annotation level",
        ),
        (json!({ "colour": "red" }), "a field GitHub does not take"),
        (json!({ "head_sha": null }), "null where a string is required"),
    ] {
        let mut body = ok.clone();
        for (k, v) in bad.as_object().expect("object") {
            body[k] = v.clone();
        }
        assert!(!problems("POST", create, body).is_empty(), "{why} is refused");
    }
    let missing = json!({ "name": "evalgate" });
    assert!(problems("POST", create, missing).iter().any(|p| p.contains("head_sha")), "head_sha is required");
    assert!(
        !problems("POST", "/repos/acme/agents/issues/comments/1/reactions", json!({ "content": "thumbsup" }))
            .is_empty()
    );
    assert!(!problems("GET", "/repos/acme/agents/pulls/1/filez", json!(null)).is_empty(), "an unknown path");
}
