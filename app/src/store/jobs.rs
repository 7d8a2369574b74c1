//! `jobs`: the durable work queue. A worker claims the oldest ready job by taking a lease,
//! renews the lease while it works (heartbeat), and marks the job done or failed. A job whose
//! worker died keeps its `running` state with a lease that runs out; then any worker claims it
//! again, so a crash or a restart resumes unfinished work.

use super::{Store, new_id, now_ms};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobKind {
    /// Act on one stored webhook delivery.
    Delivery,
    /// Evaluate one bundle of one pull request head (a `gate_runs` row).
    Gate,
    /// Pin tracking: the daily record, and (weekly or on demand) the bump pull requests.
    Pins,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Delivery => "delivery",
            JobKind::Gate => "gate",
            JobKind::Pins => "pins",
        }
    }

    fn parse(s: &str) -> Option<JobKind> {
        match s {
            "delivery" => Some(JobKind::Delivery),
            "gate" => Some(JobKind::Gate),
            "pins" => Some(JobKind::Pins),
            _ => None,
        }
    }
}

/// A claimed job.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub kind: JobKind,
    pub payload: serde_json::Value,
    /// Attempts before this one.
    pub attempts: i64,
}

/// Attempts after which a job is failed for good.
pub const MAX_ATTEMPTS: i64 = 8;

/// The wait before attempt `n + 1`: 2 s, 4 s, 8 s … capped at 5 minutes, with jitter so that
/// jobs failing together do not retry together.
pub fn backoff_ms(attempts: i64) -> i64 {
    let base = 2_000i64.saturating_mul(1i64 << attempts.clamp(0, 20)).min(300_000);
    base / 2 + fastrand::i64(0..=base / 2)
}

impl Store {
    pub async fn enqueue(&self, kind: JobKind, payload: &serde_json::Value) -> Result<String, sqlx::Error> {
        let id = new_id();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO jobs (id, kind, payload, state, attempts, run_after, created_at, updated_at) VALUES ($1, $2, $3, 'queued', 0, $4, $4, $4)",
        )
        .bind(&id)
        .bind(kind.as_str())
        .bind(payload.to_string())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Claims the oldest job that is ready, or whose worker's lease ran out. On PostgreSQL the
    /// candidate row is locked with `FOR UPDATE SKIP LOCKED`, so replicas never wait on each
    /// other; SQLite has one writer at a time, and the update re-checks what it saw.
    pub async fn claim_job(&self, owner: &str, lease_ms: i64) -> Result<Option<Job>, sqlx::Error> {
        if self.backend == super::Backend::Postgres {
            return self.claim_job_skip_locked(owner, lease_ms).await;
        }
        loop {
            let now = now_ms();
            let candidate = sqlx::query_as::<_, (String, String, String, i64, String)>(
                "SELECT id, kind, payload, attempts, state FROM jobs
                 WHERE (state = 'queued' AND run_after <= $1) OR (state = 'running' AND lease_until < $1)
                 ORDER BY run_after, created_at LIMIT 1",
            )
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
            let Some((id, kind, payload, attempts, state)) = candidate else { return Ok(None) };
            // Take it only if nobody else did in between: the update names the state we saw.
            let taken = sqlx::query(
                "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, updated_at = $3
                 WHERE id = $4 AND state = $5 AND ((state = 'queued' AND run_after <= $3) OR (state = 'running' AND lease_until < $3))",
            )
            .bind(owner)
            .bind(now + lease_ms)
            .bind(now)
            .bind(&id)
            .bind(&state)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if taken == 0 {
                continue;
            }
            if let Some(job) = self.claimed(id, &kind, &payload, attempts, &state).await? {
                return Ok(Some(job));
            }
        }
    }

    async fn claim_job_skip_locked(&self, owner: &str, lease_ms: i64) -> Result<Option<Job>, sqlx::Error> {
        loop {
            let now = now_ms();
            let claimed = sqlx::query_as::<_, (String, String, String, i64, String)>(
                "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, updated_at = $3
                 FROM (SELECT id AS cid, state AS old_state FROM jobs
                       WHERE (state = 'queued' AND run_after <= $3) OR (state = 'running' AND lease_until < $3)
                       ORDER BY run_after, created_at LIMIT 1 FOR UPDATE SKIP LOCKED) c
                 WHERE jobs.id = c.cid
                 RETURNING jobs.id, jobs.kind, jobs.payload, jobs.attempts, c.old_state",
            )
            .bind(owner)
            .bind(now + lease_ms)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
            let Some((id, kind, payload, attempts, state)) = claimed else { return Ok(None) };
            if let Some(job) = self.claimed(id, &kind, &payload, attempts, &state).await? {
                return Ok(Some(job));
            }
        }
    }

    /// A claimed row as a [`Job`]; `None` (and the job failed for good) when it cannot be read,
    /// so one bad row never blocks the queue.
    async fn claimed(
        &self,
        id: String,
        kind: &str,
        payload: &str,
        attempts: i64,
        state: &str,
    ) -> Result<Option<Job>, sqlx::Error> {
        let Some(kind) = JobKind::parse(kind) else {
            self.fail_job(&id, &format!("unknown job kind `{kind}`")).await?;
            return Ok(None);
        };
        let payload = match serde_json::from_str(payload) {
            Ok(p) => p,
            Err(e) => {
                self.fail_job(&id, &format!("job payload is not JSON: {e}")).await?;
                return Ok(None);
            }
        };
        // A job taken over from a dead worker counts that worker's attempt.
        let attempts = if state == "running" { attempts + 1 } else { attempts };
        Ok(Some(Job { id, kind, payload, attempts }))
    }

    /// Renews the lease; false when the job is no longer ours (taken over after a stall).
    pub async fn heartbeat(&self, id: &str, owner: &str, lease_ms: i64) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let n = sqlx::query(
            "UPDATE jobs SET lease_until = $1, updated_at = $2 WHERE id = $3 AND lease_owner = $4 AND state = 'running'",
        )
        .bind(now + lease_ms)
        .bind(now)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Gives back the jobs `owner` holds, ready at once, their attempt not counted (a clean
    /// shutdown is not a failure).
    pub async fn release_jobs_of(&self, owner: &str) -> Result<u64, sqlx::Error> {
        let now = now_ms();
        sqlx::query(
            "UPDATE jobs SET state = 'queued', run_after = $1, lease_owner = NULL, lease_until = NULL, updated_at = $1
             WHERE lease_owner = $2 AND state = 'running'",
        )
        .bind(now)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected())
    }

    pub async fn finish_job(&self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, updated_at = $1 WHERE id = $2",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a failed attempt: queued again after a backoff, or failed for good after
    /// [`MAX_ATTEMPTS`]. Returns whether it will be retried.
    pub async fn retry_job(&self, id: &str, attempts_before: i64, error: &str) -> Result<bool, sqlx::Error> {
        let attempts = attempts_before + 1;
        if attempts >= MAX_ATTEMPTS {
            self.fail_job(id, error).await?;
            return Ok(false);
        }
        let now = now_ms();
        sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = $1, run_after = $2, last_error = $3, lease_owner = NULL, lease_until = NULL, updated_at = $4 WHERE id = $5",
        )
        .bind(attempts)
        .bind(now + backoff_ms(attempts_before))
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(true)
    }

    pub async fn fail_job(&self, id: &str, error: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE jobs SET state = 'failed', last_error = $1, lease_owner = NULL, lease_until = NULL, updated_at = $2 WHERE id = $3",
        )
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Jobs by state, and the age of the oldest one ready to run (for `/metrics`).
    pub async fn queue_gauges(&self) -> Result<crate::metrics::QueueGauges, sqlx::Error> {
        let by_state =
            sqlx::query_as::<_, (String, i64)>("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await?;
        let now = now_ms();
        let oldest = sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MIN(run_after) FROM jobs WHERE state = 'queued' AND run_after <= $1",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(crate::metrics::QueueGauges {
            by_state,
            oldest_ready_age_secs: oldest.map(|t| (now - t).max(0) as f64 / 1000.0),
        })
    }

    /// Jobs not yet done or failed.
    #[cfg(test)]
    pub async fn pending_jobs(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')")
            .fetch_one(&self.pool)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempts in 0..30 {
            let b = backoff_ms(attempts);
            assert!((1_000..=300_000).contains(&b), "{attempts}: {b}");
        }
        assert!(backoff_ms(0) <= 2_000);
        assert!(backoff_ms(3) >= 8_000);
    }

    #[tokio::test]
    async fn a_job_is_claimed_once_until_its_lease_runs_out() {
        let s = testing::sqlite().await;
        claimed_once(&s.store).await;
        s.done().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL at 127.0.0.1:5432"]
    async fn a_job_is_claimed_once_until_its_lease_runs_out_on_postgres() {
        let s = testing::postgres("jobs_claimed_once").await;
        claimed_once(&s.store).await;
        s.done().await;
    }

    async fn claimed_once(s: &Store) {
        s.enqueue(JobKind::Gate, &serde_json::json!({"x": 1})).await.expect("enqueue");
        let first = s.claim_job("a", 60_000).await.expect("claim").expect("a job");
        assert!(s.claim_job("b", 60_000).await.expect("claim").is_none(), "leased jobs are not claimed twice");
        assert_eq!(first.payload["x"], 1);
        s.finish_job(&first.id).await.expect("finish");
        assert!(s.claim_job("b", 60_000).await.expect("claim").is_none());
    }

    #[tokio::test]
    async fn a_dead_workers_job_is_claimed_again_after_its_lease() {
        let s = testing::sqlite().await;
        taken_over(&s.store).await;
        s.done().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL at 127.0.0.1:5432"]
    async fn a_dead_workers_job_is_claimed_again_after_its_lease_on_postgres() {
        let s = testing::postgres("jobs_taken_over").await;
        taken_over(&s.store).await;
        s.done().await;
    }

    async fn taken_over(s: &Store) {
        s.enqueue(JobKind::Gate, &serde_json::json!({})).await.expect("enqueue");
        let first = s.claim_job("dead", 1).await.expect("claim").expect("a job");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let again = s.claim_job("alive", 60_000).await.expect("claim").expect("taken over");
        assert_eq!(again.id, first.id);
        assert_eq!(again.attempts, 1);
        assert!(!s.heartbeat(&first.id, "dead", 60_000).await.expect("heartbeat"), "the dead worker lost it");
        assert!(s.heartbeat(&first.id, "alive", 60_000).await.expect("heartbeat"));
    }

    #[tokio::test]
    async fn a_failed_attempt_waits_then_gives_up_after_the_limit() {
        let s = testing::sqlite().await;
        backs_off(&s.store).await;
        s.done().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL at 127.0.0.1:5432"]
    async fn a_failed_attempt_waits_then_gives_up_after_the_limit_on_postgres() {
        let s = testing::postgres("jobs_backoff").await;
        backs_off(&s.store).await;
        s.done().await;
    }

    async fn backs_off(s: &Store) {
        let id = s.enqueue(JobKind::Gate, &serde_json::json!({})).await.expect("enqueue");
        let job = s.claim_job("w", 60_000).await.expect("claim").expect("a job");
        assert!(s.retry_job(&job.id, job.attempts, "boom").await.expect("retry"));
        assert!(s.claim_job("w", 60_000).await.expect("claim").is_none(), "backoff holds it");
        assert!(!s.retry_job(&id, MAX_ATTEMPTS - 1, "boom").await.expect("retry"));
        assert_eq!(s.pending_jobs().await.expect("count"), 0);
    }
}
