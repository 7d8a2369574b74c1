//! Verdict integrity in the App: each test is a pull request written to fool its own gate, sent
//! through the real `evalgate serve` against the fake GitHub, and shows the gate does not pass.

#[path = "support/fake_github.rs"]
mod fake_github;
#[path = "support/github_app.rs"]
mod github_app;
mod support;

use github_app::{Commits, Harness, PRE_REGISTRATION, REPO};
use std::collections::BTreeMap;
use std::sync::Arc;
use support::scenario::{Plan, Script, Spec};

const BASE: &str = "1111111111111111111111111111111111111111";
const HEAD: &str = "2222222222222222222222222222222222222222";
const HEAD2: &str = "3333333333333333333333333333333333333333";
const MAIN: &str = "4444444444444444444444444444444444444444";
const DEMO: &str = "evalgate/demo";
const GOLDEN: &str = "evalgate/golden-set";

/// No regression allowed: the pre-registration tightens 50% to 0%.
fn strict_body() -> String {
    PRE_REGISTRATION.replace("50%", "0%")
}

/// Head regresses c03; base fails c04.
fn regressing() -> Script {
    Script::new().head(3, Plan::Fail).base(4, Plan::Fail)
}

fn commits() -> Commits {
    Commits::of(&Spec { gate: "{ max_regression_rate: 0.5 }", ..Spec::new(4) })
}

/// `files` with every file under `from/` copied to `to/` as well.
fn copy_folder(files: &BTreeMap<String, Vec<u8>>, from: &str, to: &str) -> BTreeMap<String, Vec<u8>> {
    let mut out = files.clone();
    for (path, bytes) in files {
        if let Some(rest) = path.strip_prefix(&format!("{from}/")) {
            out.insert(format!("{to}/{rest}"), bytes.clone());
        }
    }
    out
}

fn replace_in(files: &mut BTreeMap<String, Vec<u8>>, path: &str, from: &str, to: &str) {
    let text = String::from_utf8(files[path].clone()).expect("utf-8");
    assert!(text.contains(from), "{path} lacks {from:?}");
    files.insert(path.to_owned(), text.replacen(from, to, 1).into_bytes());
}

async fn approve_golden(h: &Harness, who: &str) {
    h.github.set_permission(REPO, who, "write");
    let payload = h.github.issue_comment_event(REPO, 1, "/evalgate approve-golden", who);
    assert_eq!(h.deliver("issue_comment", &payload).await, 202);
}

#[tokio::test]
async fn a_decoy_copy_of_the_old_bundle_under_the_same_name_fails_naming_both_files() {
    let h = Harness::start(Arc::new(regressing())).await;
    let c = commits();
    // The head degrades agent/ and adds zz/, a copy of the base's bundle under the same name.
    let mut base_as_folder = BTreeMap::new();
    for (path, bytes) in &c.base {
        if let Some(rest) = path.strip_prefix("agent/") {
            base_as_folder.insert(format!("base-copy/{rest}"), bytes.clone());
        }
    }
    let mut head = copy_folder(&c.head, "agent", "agent");
    for (path, bytes) in copy_folder(&base_as_folder, "base-copy", "zz") {
        if path.starts_with("zz/") {
            head.insert(path, bytes);
        }
    }
    h.commit(BASE, &c.base);
    h.commit(HEAD, &head);
    h.open_pr(1, BASE, HEAD, Some(&strict_body()), false);
    h.pr_opened(1).await;
    let gate = h.completed(HEAD, DEMO).await;
    assert_eq!(gate.conclusion.as_deref(), Some("failure"), "{}\n{}", gate.title, gate.summary);
    assert_eq!(gate.title, "duplicate bundle name `demo`");
    assert!(
        gate.summary.contains("agent/bundle.yaml") && gate.summary.contains("zz/bundle.yaml:1:9"),
        "{}",
        gate.summary
    );
    assert_eq!(h.checks(HEAD, DEMO).len(), 1, "one check run for the name");
    assert_eq!(h.provider.call_count(), 0, "nothing is evaluated");
}

#[tokio::test]
async fn renaming_the_bundle_inside_its_manifest_still_compares_with_the_base() {
    let h = Harness::start(Arc::new(regressing())).await;
    let c = commits();
    let mut head = c.head.clone();
    replace_in(&mut head, "agent/bundle.yaml", "bundle: demo", "bundle: demo-two");
    h.commit(BASE, &c.base);
    h.commit(HEAD, &head);
    h.open_pr(1, BASE, HEAD, Some(&strict_body()), false);
    h.pr_opened(1).await;
    let gate = h.completed(HEAD, "evalgate/demo-two").await;
    assert_eq!(gate.conclusion.as_deref(), Some("failure"), "{}\n{}", gate.title, gate.summary);
    assert!(gate.title.starts_with("gate failed: 1 regression"), "{}", gate.title);
    assert!(h.checks(HEAD, DEMO).is_empty(), "the bundle is not reported as removed under its old name");
}

#[tokio::test]
async fn a_bundle_moved_to_another_folder_pairs_with_its_old_path() {
    let h = Harness::start(Arc::new(regressing())).await;
    let c = commits();
    // The manifest moves unchanged (a rename in the PR's file list); the prompt is the head's.
    let mut head: BTreeMap<String, Vec<u8>> =
        c.head.iter().filter(|(p, _)| !p.starts_with("agent/")).map(|(p, b)| (p.clone(), b.clone())).collect();
    head.insert("moved/bundle.yaml".into(), c.base["agent/bundle.yaml"].clone());
    head.insert("moved/prompt.md".into(), c.head["agent/prompt.md"].clone());
    h.commit(BASE, &c.base);
    h.commit(HEAD, &head);
    h.open_pr(1, BASE, HEAD, Some(&strict_body()), false);
    h.pr_opened(1).await;
    let gate = h.completed(HEAD, DEMO).await;
    assert_eq!(gate.conclusion.as_deref(), Some("failure"), "{}\n{}", gate.title, gate.summary);
    assert!(gate.title.starts_with("gate failed: 1 regression"), "{}", gate.title);
}

#[tokio::test]
async fn a_bundle_moved_and_edited_at_once_is_still_compared_with_its_base() {
    let h = Harness::start(Arc::new(regressing())).await;
    let c = commits();
    // Moved and changed in one push: GitHub reports no rename, only a removal and an addition
    // of one bundle name. Were they two bundles, the new one would be measured by itself.
    let mut head: BTreeMap<String, Vec<u8>> =
        c.head.iter().filter(|(p, _)| !p.starts_with("agent/")).map(|(p, b)| (p.clone(), b.clone())).collect();
    for (p, b) in &c.head {
        if let Some(rest) = p.strip_prefix("agent/") {
            head.insert(format!("elsewhere/{rest}"), b.clone());
        }
    }
    h.commit(BASE, &c.base);
    h.commit(HEAD, &head);
    h.open_pr(1, BASE, HEAD, Some(&strict_body()), false);
    h.pr_opened(1).await;
    let gate = h.completed(HEAD, DEMO).await;
    assert_eq!(gate.conclusion.as_deref(), Some("failure"), "{}\n{}", gate.title, gate.summary);
    assert!(gate.title.starts_with("gate failed: 1 regression"), "{}", gate.title);
    assert_eq!(h.checks(HEAD, DEMO).len(), 1, "one bundle, one check");
}

#[tokio::test]
async fn a_head_that_narrows_the_bundle_globs_cannot_hide_its_bundle() {
    let h = Harness::start(Arc::new(regressing())).await;
    let c = commits();
    let mut head = c.head.clone();
    head.insert(
        ".evalgate.yml".into(),
        b"bundles: [\"nothing/*/bundle.yaml\"]\nlint: { required_sections: [\"## Policy\"] }\n".to_vec(),
    );
    h.commit(BASE, &c.base);
    h.commit(HEAD, &head);
    h.open_pr(1, BASE, HEAD, Some(&strict_body()), false);
    h.pr_opened(1).await;
    let gate = h.completed(HEAD, DEMO).await;
    assert_eq!(gate.conclusion.as_deref(), Some("failure"), "{}\n{}", gate.title, gate.summary);
    assert!(gate.title.starts_with("gate failed: 1 regression"), "{}", gate.title);
}

#[tokio::test]
async fn a_new_bundle_is_evaluated_on_head_alone_and_waits_for_approval() {
    let h = Harness::start(Arc::new(Script::new())).await;
    let c = commits();
    let mut head = copy_folder(&c.head, "agent", "newb");
    replace_in(&mut head, "newb/bundle.yaml", "bundle: demo", "bundle: newb");
    // Only the new bundle changes: agent/ is the base's.
    for (p, b) in &c.base {
        if p.starts_with("agent/") {
            head.insert(p.clone(), b.clone());
        }
    }
    h.commit(BASE, &c.base);
    h.commit(HEAD, &head);
    h.open_pr(1, BASE, HEAD, Some(&strict_body()), false);
    h.pr_opened(1).await;
    let gate = h.completed(HEAD, "evalgate/newb").await;
    assert_eq!(gate.conclusion.as_deref(), Some("action_required"), "{}\n{}", gate.title, gate.summary);
    assert!(
        gate.title.starts_with("new bundle awaiting approval (new bundle, head alone: gate passed"),
        "{}",
        gate.title
    );
    assert!(gate.summary.contains("evaluated on head alone"), "{}", gate.summary);
    assert!(h.checks(HEAD, DEMO).is_empty(), "agent/ is untouched");
    let golden = h.completed(HEAD, GOLDEN).await;
    assert!(golden.summary.contains("| bundle | (none) | ` added: newb/bundle.yaml ` |"), "{}", golden.summary);
    assert_eq!(golden.conclusion.as_deref(), Some("action_required"));
    assert_eq!(golden.details_url, format!("https://github.com/{REPO}/pull/1/files"), "where a person sees the change");
    // Only the head side ran: every agent call was the head version's.
    assert!(h.provider.calls().iter().all(|c| c.tool_choice.is_some() || c.system.contains("Version: head")));

    approve_golden(&h, "jordan").await;
    let approved = h
        .until("the new bundle's check shows its own gate", |_| {
            h.checks(HEAD, "evalgate/newb").pop().filter(|c| c.conclusion.as_deref() == Some("success"))
        })
        .await;
    assert!(
        approved.title.starts_with("approved by @jordan: new bundle, head alone: gate passed"),
        "{}",
        approved.title
    );
}

#[tokio::test]
async fn a_removed_bundle_waits_for_approval_then_is_neutral() {
    let h = Harness::start(Arc::new(Script::new())).await;
    let c = commits();
    let mut base = copy_folder(&c.base, "agent", "old");
    replace_in(&mut base, "old/bundle.yaml", "bundle: demo", "bundle: old");
    h.commit(BASE, &base);
    h.commit(HEAD, &c.base); // old/ gone, agent/ unchanged
    h.open_pr(1, BASE, HEAD, Some(&strict_body()), false);
    h.pr_opened(1).await;
    let gone = h.completed(HEAD, "evalgate/old").await;
    assert_eq!(gone.conclusion.as_deref(), Some("action_required"), "{}", gone.title);
    assert_eq!(gone.title, "bundle removed: awaiting a reviewer's approval");
    approve_golden(&h, "jordan").await;
    let approved = h
        .until("the removal is approved", |_| {
            h.checks(HEAD, "evalgate/old").pop().filter(|c| c.conclusion.as_deref() == Some("neutral"))
        })
        .await;
    assert_eq!(approved.title, "bundle removed: removal approved by @jordan");
    assert_eq!(h.provider.call_count(), 0);
}

#[tokio::test]
async fn retargeting_the_pr_to_another_base_branch_evaluates_again_against_it() {
    let h = Harness::start(Arc::new(regressing())).await;
    let c = commits();
    // release (BASE) holds the base version; main (MAIN) already holds the head version and
    // branches off release; the PR's head adds a line to the prompt on top of main.
    let mut head = c.head.clone();
    replace_in(&mut head, "agent/prompt.md", "## Policy", "## Policy\nBe brief.");
    h.commit(BASE, &c.base);
    h.commit(MAIN, &c.head);
    h.commit(HEAD, &head);
    h.github.set_parents(REPO, MAIN, &[BASE]);
    h.github.set_branch(REPO, "release", BASE);
    h.open_pr(1, MAIN, HEAD, Some(&strict_body()), false);
    h.pr_opened(1).await;
    // Against main the head regresses nothing: main fails c03 too.
    let first = h.completed(HEAD, DEMO).await;
    assert_eq!(first.conclusion.as_deref(), Some("success"), "{}\n{}", first.title, first.summary);

    h.github.retarget(REPO, 1, "release");
    let payload = h.github.pull_request_event(REPO, 1, "edited");
    assert!(payload["changes"]["base"].is_object(), "{payload}");
    assert_eq!(h.deliver("pull_request", &payload).await, 202);
    let again = h
        .until("the gate is evaluated against release", |_| {
            h.checks(HEAD, DEMO).pop().filter(|c| c.conclusion.as_deref() == Some("failure"))
        })
        .await;
    assert!(again.title.starts_with("gate failed: 1 regression"), "{}", again.title);
    assert_eq!(h.checks(HEAD, DEMO).len(), 2, "a new check run for the new (base, head) pair");
}

#[tokio::test]
async fn an_approval_of_a_golden_set_change_does_not_cover_a_later_edit_of_the_same_case() {
    let h = Harness::start(Arc::new(Script::new())).await;
    let c = commits();
    let edit = |files: &BTreeMap<String, Vec<u8>>, value: &str| {
        let mut f = files.clone();
        let cases = String::from_utf8(f["golden/cases.jsonl"].clone()).expect("utf-8");
        let mut lines: Vec<String> = cases.lines().map(str::to_owned).collect();
        lines[1] = lines[1].replace("\"ANSWER-OK\"", &format!("\"{value}\""));
        f.insert("golden/cases.jsonl".into(), format!("{}\n", lines.join("\n")).into_bytes());
        f
    };
    let repin = |files: BTreeMap<String, Vec<u8>>| -> BTreeMap<String, Vec<u8>> {
        let repo = support::Repo::empty();
        for (p, b) in &files {
            repo.write(p, b);
        }
        assert_eq!(repo.evalgate(&["golden", "pin", "agent"]).code, 0);
        let mut out = files;
        out.insert("agent/bundle.yaml".into(), repo.read("agent/bundle.yaml").into_bytes());
        out
    };
    h.commit(BASE, &c.base);
    h.commit(HEAD, &repin(edit(&c.head, "ANSWER")));
    h.commit(HEAD2, &repin(edit(&c.head, "OK")));
    h.open_pr(1, BASE, HEAD, Some(&strict_body()), false);
    h.pr_opened(1).await;
    let golden = h.completed(HEAD, GOLDEN).await;
    assert_eq!(golden.conclusion.as_deref(), Some("action_required"));
    approve_golden(&h, "jordan").await;
    h.until("the change is approved", |_| {
        h.checks(HEAD, GOLDEN).pop().filter(|c| c.conclusion.as_deref() == Some("success"))
    })
    .await;

    // The same case, c02, changed again: the list of changed ids is the same, the content is not.
    h.github.push(REPO, 1, HEAD2);
    let payload = h.github.pull_request_event(REPO, 1, "synchronize");
    assert_eq!(h.deliver("pull_request", &payload).await, 202);
    let again = h.completed(HEAD2, GOLDEN).await;
    assert_eq!(again.conclusion.as_deref(), Some("action_required"), "{}\n{}", again.title, again.summary);
    assert!(again.summary.contains(r#"| case c02 checks | ` [{"type":"contains","value":"ANSWER-OK"}] ` | ` [{"type":"contains","value":"OK"}] ` |"#), "the new content is shown: {}", again.summary);
}
