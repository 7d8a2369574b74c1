//! Workers: each claims a job from the durable queue, keeps its lease alive while it works, and
//! records the outcome — done, retried after a backoff, or failed for good.

use crate::flow::{self, Ctx, JobError};
use std::sync::Arc;
use std::time::Duration;

/// How long an idle worker waits before looking at the queue again (a wake-up comes sooner).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// The running workers of one server, and how to stop them.
pub struct Workers {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    owners: Vec<String>,
    ctx: Arc<Ctx>,
}

pub fn spawn(ctx: Arc<Ctx>, workers: usize, lease_ms: i64) -> Workers {
    let node = crate::store::new_id();
    let (stop, watch) = tokio::sync::watch::channel(false);
    let owners: Vec<String> = (0..workers).map(|i| format!("{}-{i}", &node[..12])).collect();
    let tasks = owners
        .iter()
        .map(|owner| {
            let (ctx, owner, watch) = (ctx.clone(), owner.clone(), watch.clone());
            tokio::spawn(async move { work(ctx, owner, lease_ms, watch).await })
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

async fn work(ctx: Arc<Ctx>, owner: String, lease_ms: i64, stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let job = match ctx.store.claim_job(&owner, lease_ms).await {
            Ok(Some(job)) => job,
            Ok(None) => {
                let _ = tokio::time::timeout(IDLE_POLL, ctx.wake.notified()).await;
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot claim a job");
                tokio::time::sleep(IDLE_POLL).await;
                continue;
            }
        };
        let heartbeat = {
            let (ctx, owner, id) = (ctx.clone(), owner.clone(), job.id.clone());
            tokio::spawn(async move {
                let every = Duration::from_millis((lease_ms / 3).max(100) as u64);
                loop {
                    tokio::time::sleep(every).await;
                    match ctx.store.heartbeat(&id, &owner, lease_ms).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(job = %id, "lost the lease of a job");
                            return;
                        }
                        Err(e) => tracing::warn!(job = %id, error = %e, "heartbeat failed"),
                    }
                }
            })
        };
        let outcome = flow::run_job(&ctx, &job).await;
        heartbeat.abort();
        let recorded = match outcome {
            Ok(()) => {
                ctx.metrics.inc(&ctx.metrics.jobs_done);
                ctx.store.finish_job(&job.id).await
            }
            Err(JobError::Retry(e)) => {
                tracing::warn!(job = %job.id, attempts = job.attempts + 1, error = %e, "job failed; it will be retried");
                match ctx.store.retry_job(&job.id, job.attempts, &e).await {
                    Ok(true) => {
                        ctx.metrics.inc(&ctx.metrics.jobs_retried);
                        Ok(())
                    }
                    Ok(false) => {
                        ctx.metrics.inc(&ctx.metrics.jobs_failed);
                        flow::gave_up(&ctx, &job, &e).await;
                        Ok(())
                    }
                    Err(db) => Err(db),
                }
            }
            Err(JobError::Fatal(e)) => {
                tracing::error!(job = %job.id, error = %e, "job failed for good");
                ctx.metrics.inc(&ctx.metrics.jobs_failed);
                flow::gave_up(&ctx, &job, &e).await;
                ctx.store.fail_job(&job.id, &e).await
            }
        };
        if let Err(e) = recorded {
            tracing::error!(job = %job.id, error = %e, "cannot record a job's outcome; its lease will run out and it runs again");
        }
    }
}
