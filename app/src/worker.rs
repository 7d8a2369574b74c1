//! Workers: each claims a job from the durable queue, keeps its lease alive while it works, and
//! records the outcome — done, retried after a backoff, or failed for good — only while the
//! lease is still its own. A worker whose lease another worker took stops its job at once; a job
//! that panics fails its attempt, not the worker; a worker whose task ends anyway is started
//! again.

use crate::jobs::{Ctx, JobError, dispatch};
use crate::store::Store;
use crate::store::jobs::Job;
use futures_util::FutureExt as _;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// How long an idle worker waits before looking at the queue again (a wake-up comes sooner).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// How long a worker whose task ended waits before it is started again.
const RESTART_AFTER: Duration = Duration::from_millis(500);

/// The running workers of one server, and how to stop them.
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    owners: Vec<String>,
    ctx: Arc<Ctx>,
}

pub fn spawn(ctx: Arc<Ctx>, workers: usize, lease_ms: i64) -> Workers {
    let node = crate::store::new_id();
    let (stop, watch) = watch::channel(false);
    let owners: Vec<String> = (0..workers).map(|i| format!("{}-{i}", &node[..12])).collect();
    let tasks = owners
        .iter()
        .map(|owner| {
            let (ctx, owner, watch) = (ctx.clone(), owner.clone(), watch.clone());
            let start = {
                let (owner, watch) = (owner.clone(), watch.clone());
                move || work(ctx.clone(), owner.clone(), lease_ms, watch.clone())
            };
            tokio::spawn(supervise(owner, watch, start))
        })
        .collect();
    Workers { stop, tasks, owners, ctx }
}

impl Workers {
    /// Stops claiming, lets the jobs in flight finish until `deadline`, then gives back the
    /// leases of those still running so another replica (or the next start) resumes them at once.
    pub async fn shutdown(self, deadline: Duration) {
        let _ = self.stop.send(true);
        self.ctx.wake.notify_waiters();
        let mut tasks = self.tasks;
        let all = futures_util::future::join_all(tasks.iter_mut());
        if tokio::time::timeout(deadline, all).await.is_err() {
            for t in &tasks {
                t.abort();
            }
            for owner in &self.owners {
                match self.ctx.store.release_jobs_of(owner).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(owner = %owner, jobs = n, "released unfinished jobs at shutdown"),
                    Err(e) => tracing::warn!(error = %e, "could not release jobs; their leases will run out"),
                }
            }
        }
    }
}

/// A task aborted when its handle is dropped: what a task started for another's sake must not
/// outlive it.
use crate::task::AbortOnDrop;

/// Keeps one worker running: its task is started again whenever it ends (a panic outside a job,
/// a bug) until `stop` is set. Aborting the supervisor aborts its worker.
async fn supervise<F, Fut>(owner: String, stop: watch::Receiver<bool>, start: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let mut task = AbortOnDrop(tokio::spawn(start()));
        let ended = (&mut task.0).await;
        if *stop.borrow() {
            return;
        }
        match ended {
            Err(e) if e.is_panic() => tracing::error!(worker = %owner, "worker panicked; starting it again"),
            _ => tracing::error!(worker = %owner, "worker stopped; starting it again"),
        }
        tokio::time::sleep(RESTART_AFTER).await;
    }
}

async fn work(ctx: Arc<Ctx>, owner: String, lease_ms: i64, stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let run = |job: Job| {
            let ctx = ctx.clone();
            async move { dispatch::run_job(&ctx, &job).await }
        };
        let gave_up = |job: Job, error: String| {
            let ctx = ctx.clone();
            async move { dispatch::gave_up(&ctx, &job, &error).await }
        };
        let m = &ctx.metrics;
        match run_once(&ctx.store, &owner, lease_ms, run, gave_up).await {
            Ok(Step::Idle) => {
                let _ = tokio::time::timeout(IDLE_POLL, ctx.wake.notified()).await;
            }
            Ok(Step::Done) => m.inc(&m.jobs_done),
            Ok(Step::Retried) => m.inc(&m.jobs_retried),
            Ok(Step::Failed) => m.inc(&m.jobs_failed),
            Ok(Step::LostLease) => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot claim a job or record its outcome; a job's lease runs out and it runs again");
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }
}

/// What one step of a worker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// No job was ready.
    Idle,
    Done,
    /// The attempt failed (or panicked); the job waits for the next one.
    Retried,
    /// The job failed for good, and that was published.
    Failed,
    /// Another worker took the job over: this attempt was stopped and recorded nothing.
    LostLease,
}

/// One step of a worker: claims a job and runs it to a recorded end. `run` does the job;
/// `gave_up` publishes that it failed for good (a gate run's check run completed as failure).
///
/// While `run` works, a heartbeat renews the lease; when the lease is gone, `run`'s future is
/// dropped at once, and nothing is recorded. A panic in `run` fails the attempt. Every outcome
/// applies only while the lease is this worker's. A job claimed past its last attempt (its
/// workers kept dying) is failed without running. `gave_up` runs while the lease is still ours
/// and before the failure is recorded, so a crash in between publishes it again on the next
/// claim, never not at all.
pub async fn run_once<R, RunFut, G, GaveUpFut>(
    store: &Store,
    owner: &str,
    lease_ms: i64,
    run: R,
    gave_up: G,
) -> Result<Step, sqlx::Error>
where
    R: FnOnce(Job) -> RunFut,
    RunFut: Future<Output = Result<(), JobError>>,
    G: FnOnce(Job, String) -> GaveUpFut,
    GaveUpFut: Future<Output = ()>,
{
    let Some(job) = store.claim_job(owner, lease_ms).await? else { return Ok(Step::Idle) };
    let mut lease = Lease::keep(store, &job.id, owner, lease_ms);
    if job.exhausted() {
        let error = job.exhausted_error();
        tracing::error!(job = %job.id, error = %error, "job failed for good");
        return give_up(store, owner, lease_ms, &mut lease, job, error, gave_up).await;
    }
    let attempt = AssertUnwindSafe(run(job.clone())).catch_unwind();
    let outcome = tokio::select! {
        outcome = attempt => outcome,
        () = lease.lost() => return Ok(lost(&job)),
    };
    let outcome = outcome
        .unwrap_or_else(|panic| Err(JobError::Retry(format!("the job panicked: {}", panic_message(panic.as_ref())))));
    match outcome {
        Ok(()) => Ok(if store.finish_job(&job.id, owner).await? { Step::Done } else { lost(&job) }),
        Err(JobError::Retry(e)) if !job.last_attempt() => {
            tracing::warn!(job = %job.id, attempts = job.attempts, error = %e, "job failed; it will be retried");
            Ok(if store.retry_job(&job.id, owner, job.attempts, &e).await? { Step::Retried } else { lost(&job) })
        }
        Err(JobError::Retry(e) | JobError::Fatal(e)) => {
            tracing::error!(job = %job.id, attempts = job.attempts, error = %e, "job failed for good");
            give_up(store, owner, lease_ms, &mut lease, job, e, gave_up).await
        }
    }
}

/// Publishes that `job` failed for good, then records it, both only while the lease is ours.
async fn give_up<G, GaveUpFut>(
    store: &Store,
    owner: &str,
    lease_ms: i64,
    lease: &mut Lease,
    job: Job,
    error: String,
    gave_up: G,
) -> Result<Step, sqlx::Error>
where
    G: FnOnce(Job, String) -> GaveUpFut,
    GaveUpFut: Future<Output = ()>,
{
    if !store.heartbeat(&job.id, owner, lease_ms).await? {
        return Ok(lost(&job));
    }
    let published = AssertUnwindSafe(gave_up(job.clone(), error.clone())).catch_unwind();
    tokio::select! {
        published = published => if let Err(panic) = published {
            tracing::error!(job = %job.id, panic = panic_message(panic.as_ref()), "publishing a failed job panicked");
        },
        () = lease.lost() => return Ok(lost(&job)),
    }
    Ok(if store.fail_job(&job.id, owner, &error).await? { Step::Failed } else { lost(&job) })
}

fn lost(job: &Job) -> Step {
    tracing::warn!(job = %job.id, "lost the lease of a job to another worker: this attempt stopped and recorded nothing");
    Step::LostLease
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => s,
        (_, Some(s)) => s,
        _ => "no message",
    }
}

/// A job's lease, renewed by a heartbeat task that ends with it: dropping the guard (the attempt
/// ended or was dropped, or its worker's task is gone) aborts the heartbeat, so a lease is never
/// kept alive for a job nobody runs.
struct Lease {
    _heartbeat: AbortOnDrop<()>,
    lost: oneshot::Receiver<()>,
}

impl Lease {
    fn keep(store: &Store, id: &str, owner: &str, lease_ms: i64) -> Lease {
        let (tell, lost) = oneshot::channel();
        let (store, id, owner) = (store.clone(), id.to_owned(), owner.to_owned());
        let heartbeat = tokio::spawn(async move {
            let every = Duration::from_millis((lease_ms / 3).max(100) as u64);
            let lease = Duration::from_millis(lease_ms.max(0) as u64);
            let mut renewed = Instant::now();
            loop {
                tokio::time::sleep(every).await;
                match store.heartbeat(&id, &owner, lease_ms).await {
                    Ok(true) => renewed = Instant::now(),
                    Ok(false) => break,
                    Err(e) if renewed.elapsed() < lease => {
                        tracing::warn!(job = %id, error = %e, "heartbeat failed; trying again");
                    }
                    Err(e) => {
                        tracing::warn!(job = %id, error = %e, "no heartbeat for a whole lease: another worker may have the job");
                        break;
                    }
                }
            }
            let _ = tell.send(());
        });
        Lease { _heartbeat: AbortOnDrop(heartbeat), lost }
    }

    /// Resolves once the lease is no longer ours, or can no longer be renewed.
    async fn lost(&mut self) {
        let _ = (&mut self.lost).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::jobs::{JobKind, MAX_ATTEMPTS};
    use crate::store::testing;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn never_gives_up(job: Job, error: String) {
        panic!("{} gave up: {error}", job.id);
    }

    #[tokio::test]
    async fn a_job_that_panics_fails_its_attempt_not_the_worker() {
        let s = testing::sqlite().await;
        let id = s.store.enqueue(JobKind::Gate, &serde_json::json!({})).await.expect("enqueue");
        let step = run_once(&s.store, "w", 60_000, |_| async { panic!("boom") }, never_gives_up).await;
        assert_eq!(step.expect("recorded"), Step::Retried);
        let (state, attempts, owner, error) = s.store.job_row(&id).await.expect("row");
        assert_eq!((state.as_str(), attempts, owner), ("queued", 1, None));
        assert_eq!(error.as_deref(), Some("the job panicked: boom"));
        // The same worker goes on with the next job.
        let next = s.store.enqueue(JobKind::Gate, &serde_json::json!({})).await.expect("enqueue");
        let step = run_once(&s.store, "w", 60_000, |_| async { Ok(()) }, never_gives_up).await;
        assert_eq!(step.expect("recorded"), Step::Done);
        assert_eq!(s.store.job_row(&next).await.expect("row").0, "done");
        s.done().await;
    }

    /// Set when the job's future is dropped.
    struct Dropped(Arc<AtomicUsize>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_worker_whose_lease_is_taken_drops_its_job_and_records_nothing() {
        let s = testing::sqlite().await;
        let id = s.store.enqueue(JobKind::Gate, &serde_json::json!({})).await.expect("enqueue");
        let dropped = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(tokio::sync::Notify::new());
        let run = {
            let (dropped, started) = (dropped.clone(), started.clone());
            move |_| async move {
                let _guard = Dropped(dropped);
                started.notify_one();
                std::future::pending::<()>().await;
                Ok(())
            }
        };
        let thief = async {
            started.notified().await;
            assert!(s.store.take_lease(&id, "thief", 60_000).await.expect("take"));
        };
        // Lease 300 ms: a heartbeat every 100 ms finds the lease gone.
        let worker = tokio::time::timeout(Duration::from_secs(5), run_once(&s.store, "w", 300, run, never_gives_up));
        let (step, ()) = tokio::join!(worker, thief);
        assert_eq!(step.expect("stopped soon").expect("no database error"), Step::LostLease);
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "the job's future was dropped");
        let (state, attempts, owner, _) = s.store.job_row(&id).await.expect("row");
        assert_eq!((state.as_str(), attempts, owner.as_deref()), ("running", 1, Some("thief")));
        assert!(s.store.finish_job(&id, "thief").await.expect("finish"), "the new owner's outcome applies");
        s.done().await;
    }

    #[tokio::test]
    async fn a_worker_that_finishes_after_its_lease_was_taken_records_nothing() {
        let s = testing::sqlite().await;
        let id = s.store.enqueue(JobKind::Gate, &serde_json::json!({})).await.expect("enqueue");
        for outcome in [Ok(()), Err(JobError::Retry("later".into())), Err(JobError::Fatal("never".into()))] {
            let (store, taken) = (s.store.clone(), id.clone());
            let run = move |_| async move {
                assert!(store.take_lease(&taken, "thief", 60_000).await.expect("take"));
                outcome
            };
            // A long lease: the heartbeat would not notice before the job ends.
            let step = run_once(&s.store, "w", 60_000, run, never_gives_up).await.expect("no database error");
            assert_eq!(step, Step::LostLease);
            assert_eq!(s.store.job_row(&id).await.expect("row").2.as_deref(), Some("thief"));
            // The thief dies: its lease runs out and the next round claims the job again.
            assert!(s.store.take_lease(&id, "thief", -1).await.expect("expire"));
        }
        s.done().await;
    }

    #[tokio::test]
    async fn a_job_claimed_after_its_last_attempt_is_failed_and_published_not_run() {
        let s = testing::sqlite().await;
        let id = s.store.enqueue(JobKind::Gate, &serde_json::json!({})).await.expect("enqueue");
        // Every attempt crashes its worker: the lease runs out each time.
        for n in 1..=MAX_ATTEMPTS {
            let job = s.store.claim_job(&format!("dead-{n}"), 1).await.expect("claim").expect("a job");
            assert_eq!(job.attempts, n);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let published = Mutex::new(None);
        let gave_up = |job: Job, error: String| {
            *published.lock().expect("lock") = Some((job.id, error));
            async {}
        };
        let run = |_| async { panic!("an exhausted job is not run again") };
        let step = run_once(&s.store, "w", 60_000, run, gave_up).await.expect("no database error");
        assert_eq!(step, Step::Failed);
        let (job, error) = published.lock().expect("lock").clone().expect("published");
        assert_eq!(job, id);
        assert!(error.starts_with("gave up after 8 attempts: the last one never finished"), "{error}");
        let (state, _, owner, last) = s.store.job_row(&id).await.expect("row");
        assert_eq!((state.as_str(), owner, last), ("failed", None, Some(error)));
        s.done().await;
    }

    #[tokio::test]
    async fn a_job_that_fails_for_good_is_published_then_recorded() {
        let s = testing::sqlite().await;
        let fatal = s.store.enqueue(JobKind::Gate, &serde_json::json!({})).await.expect("enqueue");
        let published = Mutex::new(Vec::new());
        let gave_up = |job: Job, error: String| {
            published.lock().expect("lock").push((job.id, error));
            async {}
        };
        let run = |_| async { Err(JobError::Fatal("no such bundle".into())) };
        assert_eq!(run_once(&s.store, "w", 60_000, run, gave_up).await.expect("step"), Step::Failed);
        assert_eq!(*published.lock().expect("lock"), vec![(fatal.clone(), "no such bundle".to_owned())]);
        assert_eq!(s.store.job_row(&fatal).await.expect("row").0, "failed");
        s.done().await;
    }

    #[tokio::test]
    async fn a_lease_is_renewed_while_kept_and_runs_out_once_dropped() {
        let s = testing::sqlite().await;
        s.store.enqueue(JobKind::Gate, &serde_json::json!({})).await.expect("enqueue");
        let job = s.store.claim_job("w", 300).await.expect("claim").expect("a job");
        let lease = Lease::keep(&s.store, &job.id, "w", 300);
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(s.store.claim_job("other", 300).await.expect("claim").is_none(), "the heartbeat keeps it");
        drop(lease);
        tokio::time::sleep(Duration::from_millis(700)).await;
        let again = s.store.claim_job("other", 300).await.expect("claim").expect("its lease ran out");
        assert_eq!(again.id, job.id);
        s.done().await;
    }

    #[tokio::test]
    async fn a_worker_whose_task_ends_is_started_again_until_stopped() {
        let (stop, watch) = watch::channel(false);
        let starts = Arc::new(AtomicUsize::new(0));
        let start = {
            let starts = starts.clone();
            move || {
                let n = starts.fetch_add(1, Ordering::SeqCst);
                async move {
                    match n {
                        0 => panic!("a bug outside any job"),
                        1 => {} // ended without a reason
                        _ => std::future::pending().await,
                    }
                }
            }
        };
        let supervisor = tokio::spawn(supervise("w".into(), watch, start));
        for _ in 0..100 {
            if starts.load(Ordering::SeqCst) >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(starts.load(Ordering::SeqCst), 3, "started again after a panic and after an end");
        stop.send(true).expect("stop");
        supervisor.abort();
        let _ = supervisor.await;
    }
}
