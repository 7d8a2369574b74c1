//! Pin-bump pull requests, end to end: `evalgate serve` against a fake GitHub (git data API,
//! pulls) and a fake Anthropic model list. One PR per bundle, updated in place, left alone
//! once a person pushes, skipped snapshots remembered, soak and preview rules, two replicas.

#[path = "support/fake_github.rs"]
mod fake_github;
#[path = "support/github_app.rs"]
mod github_app;
mod support;

use github_app::{Commits, Harness, REPO};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use support::fake_provider::{Api, anthropic_model};
use support::scenario::{Script, Spec};

const MAIN: &str = "1111111111111111111111111111111111111111";
const ADMIN: &str = "test-admin-token";
const BRANCH: &str = "evalgate/pin-bump/demo";
const PINNED: &str = "claude-sonnet-4-5-20250929";
const JUDGE: &str = "claude-haiku-4-5-20251001";

fn days_ago(d: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(d)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The App installed on a repository whose `main` holds the demo bundle, pinned to `PINNED`.
async fn installed() -> (Harness, BTreeMap<String, Vec<u8>>) {
    let h = Harness::start_with(Arc::new(Script::new()), &[("EVALGATE_ADMIN_TOKEN", ADMIN)]).await;
    let files = Commits::of(&Spec::new(3)).base;
    h.commit(MAIN, &files);
    h.github.set_branch(REPO, "main", MAIN);
    let installation = json!({
        "action": "added", "installation": { "id": github_app::INSTALLATION },
        "repository_selection": "selected", "repositories_added": [{ "full_name": REPO, "name": "agents" }],
        "repositories_removed": [], "sender": { "login": "alex", "type": "User" },
    });
    assert_eq!(h.deliver("installation_repositories", &installation).await, 202);
    settled(&h).await;
    (h, files)
}

fn models(h: &Harness, extra: &[(&str, i64)]) {
    let mut list = vec![anthropic_model(PINNED, &days_ago(400)), anthropic_model(JUDGE, &days_ago(380))];
    list.extend(extra.iter().map(|(id, age)| anthropic_model(id, &days_ago(*age))));
    h.provider.set_models(Api::Anthropic, list);
    h.provider.set_models_page_size(Api::Anthropic, 2);
}

async fn run_pins(server_url: &str) {
    let resp = reqwest::Client::new()
        .post(format!("{server_url}/api/pins/run"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .send()
        .await
        .expect("POST /api/pins/run");
    assert_eq!(resp.status().as_u16(), 202);
}

/// Waits until the pins job queued last has finished (the queue is empty again).
async fn settled(h: &Harness) {
    for _ in 0..600 {
        let (_, metrics) = h.get(&format!("{}/metrics", h.server.url)).await;
        if metrics.contains("evalgate_jobs_pending 0") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the queue did not drain:\n{}", h.logs());
}

fn bumps(h: &Harness) -> Vec<fake_github::PullInfo> {
    h.github.pulls(REPO).into_iter().filter(|p| p.head_ref == BRANCH).collect()
}

fn bundle_at(h: &Harness, sha: &str) -> String {
    String::from_utf8(h.github.file_at(REPO, sha, "agent/bundle.yaml").expect("bundle.yaml")).expect("utf-8")
}

#[tokio::test]
async fn a_lagging_pin_gets_one_pr_with_only_the_id_changed() {
    let (h, files) = installed().await;
    models(&h, &[("claude-sonnet-4-5-20260301", 270)]);
    run_pins(&h.server.url).await;
    let pr = h.until("a bump PR is opened", |_| bumps(&h).pop()).await;
    assert_eq!(pr.base_ref, "main");
    assert!(pr.title.contains(PINNED) && pr.title.contains("claude-sonnet-4-5-20260301"), "{}", pr.title);
    let body = pr.body.clone().unwrap_or_default();
    assert!(body.contains("| model | anthropic | `claude-sonnet-4-5-20250929`"), "{body}");
    assert!(body.contains("130 days"), "the lag from the release times (400 - 270 days): {body}");
    for section in ["### What changed", "### Expected to move", "### Success threshold"] {
        assert!(body.contains(section), "the pre-registration is filled in: {body}");
    }
    let before = String::from_utf8(files["agent/bundle.yaml"].clone()).expect("utf-8");
    assert_eq!(
        bundle_at(&h, &pr.head_sha),
        before.replace(PINNED, "claude-sonnet-4-5-20260301"),
        "only the id changed"
    );
    let commit = h.github.commit_info(REPO, &pr.head_sha).expect("the commit");
    assert!(commit.by_app && commit.parents == vec![MAIN.to_owned()], "{commit:?}");

    // GitHub tells the App of the new pull request: its own gate runs at once.
    h.deliver("pull_request", &h.github.pull_request_event(REPO, pr.number, "opened")).await;
    let prereg = h.completed(&pr.head_sha, "evalgate/pre-registration").await;
    assert_eq!(prereg.conclusion.as_deref(), Some("success"), "{}", prereg.summary);
    let gate = h.completed(&pr.head_sha, "evalgate/demo").await;
    assert_eq!(gate.conclusion.as_deref(), Some("success"), "{}", gate.summary);

    // The same run again: still the one PR, untouched.
    run_pins(&h.server.url).await;
    settled(&h).await;
    let again = bumps(&h);
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].head_sha, pr.head_sha, "no new commit");
}

#[tokio::test]
async fn a_newer_snapshot_updates_the_same_pr_in_place() {
    let (h, _) = installed().await;
    models(&h, &[("claude-sonnet-4-5-20260301", 270)]);
    run_pins(&h.server.url).await;
    let first = h.until("a bump PR is opened", |_| bumps(&h).pop()).await;
    models(&h, &[("claude-sonnet-4-5-20260301", 270), ("claude-sonnet-4-5-20261001", 60)]);
    run_pins(&h.server.url).await;
    let updated = h
        .until("the PR proposes the newer snapshot", |_| bumps(&h).pop().filter(|p| p.title.contains("20261001")))
        .await;
    assert_eq!(updated.number, first.number, "updated in place, not superseded");
    assert_eq!(updated.state, "open");
    assert!(bundle_at(&h, &updated.head_sha).contains("snapshot: claude-sonnet-4-5-20261001"));
    assert_eq!(bumps(&h).len(), 1);
}

#[tokio::test]
async fn a_branch_a_person_pushed_to_is_left_alone() {
    let (h, _) = installed().await;
    models(&h, &[("claude-sonnet-4-5-20260301", 270)]);
    run_pins(&h.server.url).await;
    h.until("a bump PR is opened", |_| bumps(&h).pop()).await;
    let mut change = BTreeMap::new();
    change.insert("agent/NOTES.md".to_owned(), b"tuned by hand\n".to_vec());
    let human = h.github.human_push(REPO, BRANCH, change);
    models(&h, &[("claude-sonnet-4-5-20260301", 270), ("claude-sonnet-4-5-20261001", 60)]);
    run_pins(&h.server.url).await;
    settled(&h).await;
    assert_eq!(
        h.github.branch_head(REPO, BRANCH).as_deref(),
        Some(human.as_str()),
        "no force-push over a person's commit"
    );
    assert!(!bumps(&h)[0].title.contains("20261001"));
}

#[tokio::test]
async fn a_pr_closed_unmerged_skips_its_snapshot_until_a_newer_one() {
    let (h, _) = installed().await;
    models(&h, &[("claude-sonnet-4-5-20260301", 270)]);
    run_pins(&h.server.url).await;
    let first = h.until("a bump PR is opened", |_| bumps(&h).pop()).await;
    h.github.close_pull(REPO, first.number, false);
    run_pins(&h.server.url).await;
    settled(&h).await;
    let all = bumps(&h);
    assert_eq!(all.len(), 1, "not reopened for the skipped snapshot: {all:?}");
    assert_eq!(all[0].state, "closed");

    models(&h, &[("claude-sonnet-4-5-20260301", 270), ("claude-sonnet-4-5-20261001", 60)]);
    run_pins(&h.server.url).await;
    let second =
        h.until("a new PR for the newer snapshot", |_| bumps(&h).into_iter().find(|p| p.state == "open")).await;
    assert_ne!(second.number, first.number);
    assert!(second.title.contains("20261001"), "{}", second.title);
}

#[tokio::test]
async fn snapshots_in_their_soak_period_or_marked_preview_are_not_proposed() {
    let (h, _) = installed().await;
    models(&h, &[("claude-sonnet-4-5-20261128", 3), ("claude-sonnet-4-5-preview-20261001", 60)]);
    run_pins(&h.server.url).await;
    settled(&h).await;
    assert!(bumps(&h).is_empty(), "{:?}", bumps(&h));
    assert!(h.provider.model_list_requests().iter().any(|(api, _)| *api == Api::Anthropic), "the list was read");
    // The record keeps both pins, neither lagging by a proposable snapshot.
    let url = format!("sqlite://{}", h.db_path().display());
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.expect("the database");
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT role, pinned, newest FROM pin_records WHERE repo = 'acme/agents' ORDER BY role")
            .fetch_all(&mut db)
            .await
            .expect("the pin record");
    assert_eq!(rows, vec![("judge".into(), JUDGE.into(), None), ("model".into(), PINNED.into(), None)]);
}

#[tokio::test]
async fn two_replicas_triggered_at_once_open_one_pr() {
    let (h, _) = installed().await;
    models(&h, &[("claude-sonnet-4-5-20260301", 270)]);
    let second = h.spawn_replica().await;
    let (a, b) = (h.server.url.clone(), second.url.clone());
    tokio::join!(run_pins(&a), run_pins(&b));
    h.until("a bump PR is opened", |_| bumps(&h).pop()).await;
    settled(&h).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(bumps(&h).len(), 1, "{:?}", bumps(&h));
    drop(second);
}

#[tokio::test]
async fn the_admin_trigger_needs_the_token() {
    let (h, _) = installed().await;
    let resp = reqwest::Client::new().post(format!("{}/api/pins/run", h.server.url)).send().await.expect("post");
    assert_eq!(resp.status().as_u16(), 401);
    let resp = reqwest::Client::new()
        .post(format!("{}/api/pins/run", h.server.url))
        .header("authorization", "Bearer wrong")
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 401);
}

/// The App installed on a repository whose bundle is pinned to OpenAI snapshots.
async fn installed_openai() -> Harness {
    let h = Harness::start_with(Arc::new(Script::new()), &[("EVALGATE_ADMIN_TOKEN", ADMIN)]).await;
    h.commit(MAIN, &Commits::of(&Spec { provider: "openai", ..Spec::new(3) }).base);
    h.github.set_branch(REPO, "main", MAIN);
    let installation = json!({
        "action": "added", "installation": { "id": github_app::INSTALLATION },
        "repository_selection": "selected", "repositories_added": [{ "full_name": REPO, "name": "agents" }],
        "repositories_removed": [], "sender": { "login": "alex", "type": "User" },
    });
    h.deliver("installation_repositories", &installation).await;
    settled(&h).await;
    h
}

/// What the daily slot queues, put in the queue as the scheduler would.
async fn fire_daily(h: &Harness) {
    let url = format!("sqlite://{}", h.db_path().display());
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.expect("the database");
    let now = chrono::Utc::now().timestamp_millis();
    sqlx::query(
        "INSERT INTO jobs (id, kind, payload, state, attempts, run_after, created_at, updated_at)
         VALUES ($1, 'pins', '{\"weekly\": false}', 'queued', 0, $2, $2, $2)",
    )
    .bind(format!("daily-{now}"))
    .bind(now)
    .execute(&mut db)
    .await
    .expect("queue the daily run");
    tokio::time::sleep(std::time::Duration::from_millis(700)).await; // the workers poll every 500 ms
    settled(h).await;
}

fn openai_models(h: &Harness, pinned_shutdown: Option<&str>) {
    let now = chrono::Utc::now().timestamp();
    let mut pinned =
        json!({ "id": "gpt-4o-2024-08-06", "object": "model", "created": now - 480 * 86_400, "owned_by": "system" });
    if let Some(d) = pinned_shutdown {
        pinned["shutdown_date"] = json!(d);
    }
    h.provider.set_models(
        Api::OpenAi,
        vec![
            pinned,
            json!({ "id": "gpt-4o-mini-2024-07-18", "object": "model", "created": now - 500 * 86_400, "owned_by": "system" }),
            json!({ "id": "gpt-4o-2024-11-20", "object": "model", "created": now - 300 * 86_400, "owned_by": "system" }),
            json!({ "id": "gpt-4o", "object": "model", "created": now - 10 * 86_400, "owned_by": "system" }),
        ],
    );
}

#[tokio::test]
async fn a_pin_within_30_days_of_retirement_is_proposed_by_the_daily_run() {
    let h = installed_openai().await;
    let soon = (chrono::Utc::now() + chrono::Duration::days(10)).format("%Y-%m-%d").to_string();
    openai_models(&h, Some(&soon));
    fire_daily(&h).await;
    let pr = h.until("a bump PR outside the schedule", |_| bumps(&h).pop()).await;
    assert!(pr.title.contains("gpt-4o-2024-11-20"), "{}", pr.title);
    let body = pr.body.unwrap_or_default();
    assert!(body.contains("| in 9 days |") || body.contains("| in 10 days |"), "the retirement is shown: {body}");
}

#[tokio::test]
async fn the_daily_run_proposes_nothing_that_is_not_urgent() {
    let h = installed_openai().await;
    openai_models(&h, None);
    fire_daily(&h).await;
    assert!(bumps(&h).is_empty(), "bumps wait for the weekly schedule: {:?}", bumps(&h));
    run_pins(&h.server.url).await;
    h.until("the weekly run proposes it", |_| bumps(&h).pop()).await;
}
