//! The App on PostgreSQL, with several replicas: the same gate as on SQLite, every job done
//! exactly once, and a killed replica's work finished by the other after its lease. These need
//! a PostgreSQL server, so they are ignored by default; `.ci/run` starts the local one and runs
//! them with `--ignored` (`EVALGATE_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`); without a server they fail.

#[path = "support/fake_github.rs"]
mod fake_github;
#[path = "support/github_app.rs"]
mod github_app;
mod support;

use github_app::{Commits, Harness, PRE_REGISTRATION, REPO};
use sqlx::Connection as _;
use std::sync::Arc;
use std::time::Duration;
use support::scenario::{Plan, Script, Spec};

const BASE: &str = "1111111111111111111111111111111111111111";
const DEMO: &str = "evalgate/demo";

fn admin_url() -> String {
    std::env::var("EVALGATE_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database, migrated with `evalgate migrate` (replicas refuse an unmigrated one).
async fn database(name: &str) -> String {
    let admin = admin_url();
    let mut c = sqlx::postgres::PgConnection::connect(&admin).await.expect("PostgreSQL answers");
    let db = format!("evalgate_e2e_{name}_{:08x}", fastrand::u32(..));
    sqlx::query(&format!("CREATE DATABASE {db}")).execute(&mut c).await.expect("create database");
    let url = format!("{}/{db}", admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_evalgate"))
        .arg("migrate")
        .env("EVALGATE_DATABASE_URL", &url)
        .output()
        .expect("evalgate migrate");
    assert!(out.status.success(), "migrate: {}", String::from_utf8_lossy(&out.stderr));
    url
}

/// Drops a test's database, ending the connections the replicas still hold.
async fn drop_database(url: &str) {
    let Some((_, db)) = url.rsplit_once('/') else { return };
    if let Ok(mut c) = sqlx::postgres::PgConnection::connect(&admin_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(&mut c).await;
    }
}

async fn count(url: &str, sql: &str) -> i64 {
    let mut c = sqlx::postgres::PgConnection::connect(url).await.expect("connect");
    sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut c).await.expect(sql)
}

fn head(n: u64) -> String {
    format!("{n:040x}")
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run by .ci/run with --ignored"]
async fn serve_refuses_an_unmigrated_postgresql_database() {
    let admin = admin_url();
    let mut c = sqlx::postgres::PgConnection::connect(&admin).await.expect("PostgreSQL answers");
    let db = format!("evalgate_e2e_bare_{:08x}", fastrand::u32(..));
    sqlx::query(&format!("CREATE DATABASE {db}")).execute(&mut c).await.expect("create database");
    let url = format!("{}/{db}", admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin));
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/support/keys/test-app-private.pem");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_evalgate"))
        .arg("serve")
        .env("EVALGATE_DATABASE_URL", &url)
        .env("EVALGATE_APP_ID", "1")
        .env("EVALGATE_PRIVATE_KEY_PATH", key)
        .env("EVALGATE_WEBHOOK_SECRET", "s")
        .env("EVALGATE_BIND", "127.0.0.1:0")
        .output()
        .expect("evalgate serve");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("evalgate migrate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop_database(&url).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run by .ci/run with --ignored"]
async fn the_gate_runs_the_same_on_postgresql() {
    let url = database("gate").await;
    let script = Script::new().head(3, Plan::Fail).base(4, Plan::Fail);
    let h = Harness::start_with(Arc::new(script), &[("EVALGATE_DATABASE_URL", &url)]).await;
    let commits = Commits::of(&Spec { gate: "{ max_regression_rate: 0.5 }", ..Spec::new(6) });
    h.commit(BASE, &commits.base);
    h.commit(&head(1), &commits.head);
    h.open_pr(1, BASE, &head(1), Some(PRE_REGISTRATION), false);
    let payload = h.github.pull_request_event(REPO, 1, "opened");
    assert_eq!(h.deliver_as("pg-1", "pull_request", &payload).await, 202);
    assert_eq!(h.deliver_as("pg-1", "pull_request", &payload).await, 200, "a repeated delivery");
    let gate = h.completed(&head(1), DEMO).await;
    assert_eq!(gate.title, "gate passed: 1 regression, 1 fix");
    assert_eq!(h.checks(&head(1), DEMO).len(), 1);
    assert_eq!(count(&url, "SELECT COUNT(*) FROM deliveries").await, 1);
    assert!(count(&url, "SELECT COUNT(*) FROM audit_entries").await >= 2, "decision and pre-registration audited");
    drop_database(&url).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run by .ci/run with --ignored"]
async fn two_replicas_do_every_job_exactly_once() {
    const PRS: u64 = 50;
    let url = database("replicas").await;
    let h = Harness::start_with(Arc::new(Script::new()), &[("EVALGATE_DATABASE_URL", &url)]).await;
    let second = h.spawn_replica().await;
    let commits = Commits::of(&Spec::new(2));
    h.commit(BASE, &commits.base);
    for n in 1..=PRS {
        h.commit(&head(n), &commits.head);
        h.open_pr(n, BASE, &head(n), Some(PRE_REGISTRATION), false);
    }
    for n in 1..=PRS {
        // Spread over both replicas, as a load balancer would.
        let target = if n % 2 == 0 { &h.server.url } else { &second.url };
        let payload = h.github.pull_request_event(REPO, n, "opened");
        assert_eq!(h.deliver_to(target, &format!("replicas-{n}"), "pull_request", &payload).await, 202);
    }
    h.until("every pull request's gate completed", |_| {
        (1..=PRS).all(|n| h.checks(&head(n), DEMO).last().is_some_and(|c| c.status == "completed")).then_some(())
    })
    .await;
    // A job is marked done just after its check run completes (the comment and the audit entry
    // come in between): wait for the queue to be empty before counting.
    for _ in 0..600 {
        if count(&url, "SELECT COUNT(*) FROM jobs WHERE state <> 'done'").await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for n in 1..=PRS {
        assert_eq!(h.checks(&head(n), DEMO).len(), 1, "PR {n}: one check run");
        assert_eq!(h.checks(&head(n), "evalgate/pre-registration").len(), 1, "PR {n}");
        assert_eq!(h.github.comments(REPO, n).len(), 1, "PR {n}: one sticky comment, whichever replica wrote it");
    }
    assert_eq!(count(&url, "SELECT COUNT(*) FROM jobs WHERE kind = 'gate'").await, PRS as i64);
    assert_eq!(count(&url, "SELECT COUNT(*) FROM jobs WHERE state <> 'done'").await, 0);
    assert_eq!(
        count(&url, "SELECT COUNT(*) FROM audit_entries WHERE kind = 'gate_decision'").await,
        PRS as i64,
        "each decided once"
    );
    drop(second);
    drop_database(&url).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run by .ci/run with --ignored"]
async fn a_killed_replicas_evaluation_is_finished_by_the_other() {
    let url = database("takeover").await;
    let mut h = Harness::start_slow(Arc::new(Script::new()), Duration::from_millis(100)).await;
    // `start_slow` runs on SQLite; run both replicas on PostgreSQL instead.
    h.server.kill().await;
    let mut a = h.spawn_replica_with(&[("EVALGATE_DATABASE_URL", &url)]).await;
    let commits = Commits::of(&Spec::new(32));
    h.commit(BASE, &commits.base);
    h.commit(&head(1), &commits.head);
    h.open_pr(1, BASE, &head(1), Some(PRE_REGISTRATION), false);
    let payload = h.github.pull_request_event(REPO, 1, "opened");
    assert_eq!(h.deliver_to(&a.url, "takeover-1", "pull_request", &payload).await, 202);
    h.until("the evaluation runs", |_| {
        (h.checks(&head(1), DEMO).last().is_some_and(|c| c.status == "in_progress") && h.provider.call_count() >= 20)
            .then_some(())
    })
    .await;
    // Replica `a` holds the gate job; `b` starts, `a` dies, `b` takes it over after the lease.
    let b = h.spawn_replica_with(&[("EVALGATE_DATABASE_URL", &url)]).await;
    let owner = {
        let mut c = sqlx::postgres::PgConnection::connect(&url).await.expect("connect");
        sqlx::query_scalar::<_, Option<String>>("SELECT lease_owner FROM jobs WHERE kind = 'gate'")
            .fetch_one(&mut c)
            .await
            .expect("the gate job")
    };
    assert!(owner.is_some(), "the gate job is leased");
    a.kill().await;
    let gate = h.completed(&head(1), DEMO).await;
    if gate.conclusion.as_deref() != Some("success") {
        panic!("{}\n{}", gate.summary, h.logs());
    }
    assert_eq!(h.checks(&head(1), DEMO).len(), 1, "the same check run, finished by the survivor");
    drop(b);
    drop_database(&url).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run by .ci/run with --ignored"]
async fn a_replica_killed_while_publishing_a_decision_leaves_it_to_the_other() {
    let url = database("publish_takeover").await;
    let mut h = Harness::start_slow(Arc::new(Script::new()), Duration::from_millis(200)).await;
    h.server.kill().await;
    let mut a = h.spawn_replica_with(&[("EVALGATE_DATABASE_URL", &url)]).await;
    let commits = Commits::of(&Spec::new(4));
    h.commit(BASE, &commits.base);
    h.commit(&head(1), &commits.head);
    h.open_pr(1, BASE, &head(1), Some(PRE_REGISTRATION), false);
    let payload = h.github.pull_request_event(REPO, 1, "opened");
    assert_eq!(h.deliver_to(&a.url, "publish-1", "pull_request", &payload).await, 202);
    h.until("the evaluation runs", |_| h.checks(&head(1), DEMO).pop().filter(|c| c.status == "in_progress")).await;
    // From now on GitHub refuses every check-run update: replica `a` decides, then keeps
    // failing to publish.
    h.github.fail("PATCH /repos/*/*/check-runs/*", 100_000, fake_github::Failure::Status(502));
    let pending = "SELECT COUNT(*) FROM gate_runs WHERE state = 'completed' AND decision_version > published_version AND publish_attempts > 0";
    let mut decided = false;
    for _ in 0..900 {
        if count(&url, pending).await == 1 {
            decided = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(decided, "the decision is committed and its publishing failed at least once\n{}", h.logs());
    a.kill().await;
    h.github.clear_failures();
    let b = h.spawn_replica_with(&[("EVALGATE_DATABASE_URL", &url)]).await;
    let gate = h.completed(&head(1), DEMO).await;
    assert_eq!(gate.conclusion.as_deref(), Some("success"), "{}\n{}", gate.summary, h.logs());
    assert_eq!(h.checks(&head(1), DEMO).len(), 1, "the same check run, published by the survivor");
    assert_eq!(
        count(&url, "SELECT COUNT(*) FROM audit_entries WHERE kind = 'gate_decision'").await,
        1,
        "one decision, one entry"
    );
    let unpublished = "SELECT COUNT(*) FROM gate_runs WHERE decision_version > published_version";
    let mut caught_up = false;
    for _ in 0..100 {
        if count(&url, unpublished).await == 0 {
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(caught_up, "the survivor recorded the publication");
    drop(b);
    drop_database(&url).await;
}
