//! Every job runs once: `evalgate serve` end to end (the real binary, a fake GitHub and a fake
//! provider) when a worker's lease is taken while it works, and when two deliveries of one pull
//! request reach two workers at once. Both end with one evaluation and one check run per name.
//! (A job that panics cannot be reached through the App's inputs; `worker`'s unit tests cover
//! it.)

#[path = "support/fake_github.rs"]
mod fake_github;
#[path = "support/github_app.rs"]
mod github_app;
mod support;

use fake_github::Failure;
use github_app::{Commits, Harness, PRE_REGISTRATION, REPO};
use sqlx::Connection as _;
use std::sync::Arc;
use std::time::Duration;
use support::scenario::{Script, Spec, uses_tool};

const BASE: &str = "1111111111111111111111111111111111111111";
const HEAD: &str = "2222222222222222222222222222222222222222";
const DEMO: &str = "evalgate/demo";
const PREREG: &str = "evalgate/pre-registration";

/// Model calls of one evaluation of `cases` cases, both sides: a tool-using case takes two.
fn calls_of_one_evaluation(cases: usize) -> usize {
    2 * (1..=cases).map(|i| if uses_tool(i) { 2 } else { 1 }).sum::<usize>()
}

/// The server's own database, opened beside it (SQLite waits for the other writer).
async fn database(h: &Harness) -> sqlx::SqliteConnection {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(h.db_path()).busy_timeout(Duration::from_secs(10));
    sqlx::SqliteConnection::connect_with(&options).await.expect("open the server's database")
}

async fn running_gate_jobs(db: &mut sqlx::SqliteConnection) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM jobs WHERE kind = 'gate' AND state = 'running'")
        .fetch_one(db)
        .await
        .expect("count running gate jobs")
}

#[tokio::test]
async fn a_worker_whose_lease_is_taken_stops_and_the_job_is_evaluated_once() {
    // Every answer takes 3 s: the worker's first four calls (the first turn of each case on
    // each side) are in flight when its lease is taken, long before any answer comes back.
    let h = Harness::start_slow(Arc::new(Script::new()), Duration::from_secs(3)).await;
    let commits = Commits::of(&Spec::new(2));
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION), false);
    assert_eq!(h.pr_opened(1).await, 202);
    h.until("the evaluation's first calls are in flight", |_| (h.provider.call_count() >= 4).then_some(())).await;
    let in_flight = h.provider.call_count();
    assert_eq!(in_flight, 4, "both cases on both sides start at once");

    // Another worker takes the lease, as one does after this one stalled past it.
    let mut db = database(&h).await;
    let far = i64::MAX / 2;
    let taken = sqlx::query(
        "UPDATE jobs SET lease_owner = 'elsewhere', lease_until = $1 WHERE kind = 'gate' AND state = 'running'",
    )
    .bind(far)
    .execute(&mut db)
    .await
    .expect("take the lease")
    .rows_affected();
    assert_eq!(taken, 1, "the gate job was running");
    h.until("the worker notices it lost the lease", |_| h.logs().contains("lost the lease").then_some(())).await;
    // The other worker dies in turn: its lease runs out and the job is taken over.
    sqlx::query("UPDATE jobs SET lease_until = 0 WHERE lease_owner = 'elsewhere'")
        .execute(&mut db)
        .await
        .expect("expire");

    let gate = h.completed(HEAD, DEMO).await;
    assert_eq!(gate.conclusion.as_deref(), Some("success"), "{}\n{}", gate.summary, h.logs());
    assert_eq!(h.checks(HEAD, DEMO).len(), 1, "one check run for the bundle");
    assert_eq!(h.checks(HEAD, PREREG).len(), 1, "one pre-registration check run");
    // Had the first worker gone on, its four answers would have arrived after 3 s and it would
    // have made its two second-turn calls too. Give it that time before counting.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        h.provider.call_count(),
        in_flight + calls_of_one_evaluation(2),
        "the calls the stopped worker had in flight, then one evaluation\n{}",
        h.logs()
    );
    assert_eq!(running_gate_jobs(&mut db).await, 0);
    let states = sqlx::query_as::<_, (String, i64)>("SELECT state, attempts FROM jobs WHERE kind = 'gate'")
        .fetch_all(&mut db)
        .await
        .expect("gate jobs");
    assert_eq!(states, vec![("done".to_owned(), 2)], "one gate job, done on its second attempt");
}

#[tokio::test]
async fn two_deliveries_of_one_pull_request_on_two_workers_post_each_check_once() {
    let h = Harness::start(Arc::new(Script::new())).await;
    let commits = Commits::of(&Spec::new(2));
    h.commit(BASE, &commits.base);
    h.commit(HEAD, &commits.head);
    h.open_pr(1, BASE, HEAD, Some(PRE_REGISTRATION), false);
    // Creating a check run takes a second, so two deliveries handled side by side would both
    // find the gate run without its check run.
    h.github.fail("POST /repos/*/*/check-runs", 6, Failure::Delay(Duration::from_secs(1)));
    let opened = h.github.pull_request_event(REPO, 1, "opened");
    let edited = h.github.pull_request_event(REPO, 1, "edited");
    let (a, b) = tokio::join!(h.deliver("pull_request", &opened), h.deliver("pull_request", &edited));
    assert_eq!((a, b), (202, 202));

    let gate = h.completed(HEAD, DEMO).await;
    assert_eq!(gate.conclusion.as_deref(), Some("success"), "{}\n{}", gate.summary, h.logs());
    let mut db = database(&h).await;
    for _ in 0..200 {
        let pending = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')")
            .fetch_one(&mut db)
            .await
            .expect("pending jobs");
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(h.checks(HEAD, DEMO).len(), 1, "one check run for the bundle: {:#?}", h.checks(HEAD, DEMO));
    assert_eq!(h.checks(HEAD, PREREG).len(), 1, "one pre-registration check run");
    assert_eq!(h.provider.call_count(), calls_of_one_evaluation(2), "one evaluation");
    let keys = sqlx::query_scalar::<_, Option<String>>("SELECT serial_key FROM jobs WHERE kind = 'delivery'")
        .fetch_all(&mut db)
        .await
        .expect("delivery jobs");
    assert_eq!(keys, vec![Some(format!("{REPO}#1")); 2], "both deliveries carry the pull request's key");
}
