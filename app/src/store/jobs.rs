//! `jobs`: the durable work queue. A worker claims the oldest ready job by taking a lease,
//! renews the lease while it works (heartbeat), and marks the job done, retried or failed. A
//! job whose worker died keeps its `running` state with a lease that runs out; then any worker
//! claims it again, so a crash or a restart resumes unfinished work.
//!
//! A lease is owned: every renewal and every outcome names its owner and applies only while the
//! lease is still theirs, and says whether it applied. The claim counts the attempt, so one that
//! crashed the process counts too, and a job claimed past its last attempt is not run again.
//! Jobs may carry a serialisation key (one pull request's jobs run one at a time). Lease times
//! are the database server's clock on PostgreSQL, where replicas' clocks disagree, and this
//! process's on SQLite, which one process (or one machine) uses.

use super::{Backend, Store, new_id, now_ms};
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
    /// Attempts started, this one included (counted when claimed).
    pub attempts: i64,
    /// The error the last failed attempt recorded.
    pub last_error: Option<String>,
}

impl Job {
    /// Claimed past its last attempt: every attempt allowed was started and none finished (their
    /// workers died), so the job is failed instead of run again.
    pub fn exhausted(&self) -> bool {
        self.attempts > MAX_ATTEMPTS
    }

    /// This attempt is the last one allowed: if it fails, the job fails for good.
    pub fn last_attempt(&self) -> bool {
        self.attempts >= MAX_ATTEMPTS
    }

    /// Why an exhausted job failed, for the check run.
    pub fn exhausted_error(&self) -> String {
        let last = self.last_error.as_deref().map(|e| format!("; the last error recorded: {e}")).unwrap_or_default();
        format!("gave up after {MAX_ATTEMPTS} attempts: the last one never finished (its worker stopped){last}")
    }
}

/// Attempts after which a job is failed for good.
pub const MAX_ATTEMPTS: i64 = 8;

/// The wait after failed attempt `n + 1`: 2 s, 4 s, 8 s … capped at 5 minutes, with jitter so
/// that jobs failing together do not retry together.
pub fn backoff_ms(attempts: i64) -> i64 {
    let base = 2_000i64.saturating_mul(1i64 << attempts.clamp(0, 20)).min(300_000);
    base / 2 + fastrand::i64(0..=base / 2)
}

/// Inserts a queued job, ready at `now`, in the transaction or connection given (a delivery and
/// its job commit together).
pub(super) async fn insert<'c, E: sqlx::Executor<'c, Database = sqlx::Any>>(
    db: E,
    kind: JobKind,
    payload: &serde_json::Value,
    serial_key: Option<&str>,
    now: i64,
) -> Result<String, sqlx::Error> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO jobs (id, kind, payload, state, attempts, run_after, serial_key, created_at, updated_at) VALUES ($1, $2, $3, 'queued', 0, $4, $5, $4, $4)",
    )
    .bind(&id)
    .bind(kind.as_str())
    .bind(payload.to_string())
    .bind(now)
    .bind(serial_key)
    .execute(db)
    .await?;
    Ok(id)
}

/// The claim, one statement on both databases: the oldest job that is ready, or whose worker's
/// lease ran out, unless another job of its key is running; its attempt counted. `{lock}` is
/// PostgreSQL's row lock, so replicas skip each other's candidates instead of waiting on them.
const CLAIM: &str = "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $1, lease_until = $2, updated_at = $3
     WHERE id = (SELECT j.id FROM jobs j
                 WHERE ((j.state = 'queued' AND j.run_after <= $3) OR (j.state = 'running' AND j.lease_until < $3))
                   AND (j.serial_key IS NULL OR NOT EXISTS (
                        SELECT 1 FROM jobs r WHERE r.serial_key = j.serial_key AND r.state = 'running' AND r.id <> j.id))
                 ORDER BY j.run_after, j.created_at LIMIT 1{lock})
     RETURNING id, kind, payload, attempts, last_error";

impl Store {
    pub async fn enqueue(&self, kind: JobKind, payload: &serde_json::Value) -> Result<String, sqlx::Error> {
        self.enqueue_keyed(kind, payload, None).await
    }

    /// Queues a job that never runs beside another job of `serial_key` (`owner/name#number`
    /// for a pull request's jobs); `None` runs it beside anything.
    pub async fn enqueue_keyed(
        &self,
        kind: JobKind,
        payload: &serde_json::Value,
        serial_key: Option<&str>,
    ) -> Result<String, sqlx::Error> {
        let now = self.lease_clock(now_ms()).await?;
        insert(&self.pool, kind, payload, serial_key, now).await
    }

    /// The time leases are measured in, in Unix milliseconds: the database server's clock on
    /// PostgreSQL (each replica's own clock may be off); on SQLite, `local`, this process's.
    pub(super) async fn lease_clock(&self, local: i64) -> Result<i64, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => Ok(local),
            Backend::Postgres => {
                sqlx::query_scalar::<_, i64>("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)")
                    .fetch_one(&self.pool)
                    .await
            }
        }
    }

    /// Claims the oldest job that is ready, or whose worker's lease ran out, and counts the
    /// attempt. A job of a serialisation key waits while another of its key runs. The returned
    /// job may be [`Job::exhausted`]: then fail it rather than run it.
    pub async fn claim_job(&self, owner: &str, lease_ms: i64) -> Result<Option<Job>, sqlx::Error> {
        self.claim_job_at(owner, lease_ms, now_ms()).await
    }

    /// [`Store::claim_job`] by a worker whose clock reads `local` (ignored on PostgreSQL).
    async fn claim_job_at(&self, owner: &str, lease_ms: i64, local: i64) -> Result<Option<Job>, sqlx::Error> {
        let lock = if self.backend == Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = CLAIM.replace("{lock}", lock);
        loop {
            let now = self.lease_clock(local).await?;
            let claimed = sqlx::query_as::<_, (String, String, String, i64, Option<String>)>(&sql)
                .bind(owner)
                .bind(now + lease_ms)
                .bind(now)
                .fetch_optional(&self.pool)
                .await;
            let (id, kind, payload, attempts, last_error) = match claimed {
                Ok(Some(row)) => row,
                Ok(None) => return Ok(None),
                // Another replica's claim of a job of the same key committed first: look again.
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                Err(e) => return Err(e),
            };
            if let Some(job) = self.claimed(owner, id, &kind, &payload, attempts, last_error).await? {
                return Ok(Some(job));
            }
        }
    }

    /// A claimed row as a [`Job`]; `None` (and the job failed for good) when it cannot be read,
    /// so one bad row never blocks the queue.
    async fn claimed(
        &self,
        owner: &str,
        id: String,
        kind: &str,
        payload: &str,
        attempts: i64,
        last_error: Option<String>,
    ) -> Result<Option<Job>, sqlx::Error> {
        let Some(kind) = JobKind::parse(kind) else {
            self.fail_job(&id, owner, &format!("unknown job kind `{kind}`")).await?;
            return Ok(None);
        };
        let payload = match serde_json::from_str(payload) {
            Ok(p) => p,
            Err(e) => {
                self.fail_job(&id, owner, &format!("job payload is not JSON: {e}")).await?;
                return Ok(None);
            }
        };
        Ok(Some(Job { id, kind, payload, attempts, last_error }))
    }

    /// Renews the lease; false when the job is no longer `owner`'s (another worker took it over
    /// after a stall, or it is not running any more).
    pub async fn heartbeat(&self, id: &str, owner: &str, lease_ms: i64) -> Result<bool, sqlx::Error> {
        let now = self.lease_clock(now_ms()).await?;
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
        let now = self.lease_clock(now_ms()).await?;
        sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, run_after = $1,
                 lease_owner = NULL, lease_until = NULL, updated_at = $1
             WHERE lease_owner = $2 AND state = 'running'",
        )
        .bind(now)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected())
    }

    /// Marks `owner`'s job done; false when the lease is no longer theirs (nothing changed).
    pub async fn finish_job(&self, id: &str, owner: &str) -> Result<bool, sqlx::Error> {
        let n = sqlx::query(
            "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, updated_at = $1
             WHERE id = $2 AND lease_owner = $3 AND state = 'running'",
        )
        .bind(self.lease_clock(now_ms()).await?)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Queues `owner`'s job again after a backoff, recording why attempt `attempts` failed;
    /// false when the lease is no longer theirs. Whether to retry at all is the caller's:
    /// [`Job::last_attempt`] says when to [`Store::fail_job`] instead.
    pub async fn retry_job(&self, id: &str, owner: &str, attempts: i64, error: &str) -> Result<bool, sqlx::Error> {
        let now = self.lease_clock(now_ms()).await?;
        let n = sqlx::query(
            "UPDATE jobs SET state = 'queued', run_after = $1, last_error = $2, lease_owner = NULL, lease_until = NULL, updated_at = $3
             WHERE id = $4 AND lease_owner = $5 AND state = 'running'",
        )
        .bind(now + backoff_ms(attempts - 1))
        .bind(error)
        .bind(now)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Fails `owner`'s job for good; false when the lease is no longer theirs.
    pub async fn fail_job(&self, id: &str, owner: &str, error: &str) -> Result<bool, sqlx::Error> {
        let n = sqlx::query(
            "UPDATE jobs SET state = 'failed', last_error = $1, lease_owner = NULL, lease_until = NULL, updated_at = $2
             WHERE id = $3 AND lease_owner = $4 AND state = 'running'",
        )
        .bind(error)
        .bind(self.lease_clock(now_ms()).await?)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Jobs by state, and the age of the oldest one ready to run (for `/metrics`).
    pub async fn queue_gauges(&self) -> Result<crate::metrics::QueueGauges, sqlx::Error> {
        let by_state =
            sqlx::query_as::<_, (String, i64)>("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await?;
        let now = self.lease_clock(now_ms()).await?;
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

    /// A job's (state, attempts, lease owner, last error).
    #[cfg(test)]
    pub async fn job_row(&self, id: &str) -> Result<(String, i64, Option<String>, Option<String>), sqlx::Error> {
        sqlx::query_as("SELECT state, attempts, lease_owner, last_error FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
    }

    /// Another worker takes over a running job's lease, as after this one stalled past it.
    #[cfg(test)]
    pub async fn take_lease(&self, id: &str, owner: &str, lease_ms: i64) -> Result<bool, sqlx::Error> {
        let now = self.lease_clock(now_ms()).await?;
        let n = sqlx::query("UPDATE jobs SET lease_owner = $1, lease_until = $2 WHERE id = $3 AND state = 'running'")
            .bind(owner)
            .bind(now + lease_ms)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
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
        assert!(s.finish_job(&first.id, "a").await.expect("finish"));
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
        assert_eq!(again.attempts, 2, "the dead worker's attempt counts");
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
        assert!(!job.last_attempt());
        assert!(s.retry_job(&job.id, "w", job.attempts, "boom").await.expect("retry"));
        assert!(s.claim_job("w", 60_000).await.expect("claim").is_none(), "backoff holds it");
        assert_eq!(s.job_row(&id).await.expect("row"), ("queued".into(), 1, None, Some("boom".into())));
        s.take_ready(&id).await;
        let again = s.claim_job("w", 60_000).await.expect("claim").expect("ready again");
        assert_eq!((again.attempts, again.last_error.as_deref()), (2, Some("boom")));
        assert!(s.fail_job(&id, "w", "boom").await.expect("fail"));
        assert_eq!(s.pending_jobs().await.expect("count"), 0);
    }

    impl Store {
        /// Ends a queued job's backoff now.
        async fn take_ready(&self, id: &str) {
            sqlx::query("UPDATE jobs SET run_after = 0 WHERE id = $1")
                .bind(id)
                .execute(&self.pool)
                .await
                .expect("ready");
        }
    }

    #[tokio::test]
    async fn a_stale_owners_outcome_does_not_apply_after_another_worker_took_the_lease() {
        let s = testing::sqlite().await;
        stale_owner(&s.store).await;
        s.done().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL at 127.0.0.1:5432"]
    async fn a_stale_owners_outcome_does_not_apply_after_another_worker_took_the_lease_on_postgres() {
        let s = testing::postgres("jobs_stale_owner").await;
        stale_owner(&s.store).await;
        s.done().await;
    }

    async fn stale_owner(s: &Store) {
        let id = s.enqueue(JobKind::Gate, &serde_json::json!({})).await.expect("enqueue");
        s.claim_job("stale", 1).await.expect("claim").expect("a job");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let job = s.claim_job("new", 60_000).await.expect("claim").expect("taken over");
        assert_eq!(job.id, id);
        assert!(!s.finish_job(&id, "stale").await.expect("finish"), "done by a worker that lost it");
        assert!(!s.retry_job(&id, "stale", 1, "boom").await.expect("retry"), "requeued by a worker that lost it");
        assert!(!s.fail_job(&id, "stale", "boom").await.expect("fail"), "failed by a worker that lost it");
        assert!(!s.heartbeat(&id, "stale", 60_000).await.expect("heartbeat"), "renewed by a worker that lost it");
        assert_eq!(s.job_row(&id).await.expect("row"), ("running".into(), 2, Some("new".into()), None));
        assert!(s.claim_job("third", 60_000).await.expect("claim").is_none(), "the new owner's lease holds");
        assert!(s.finish_job(&id, "new").await.expect("finish"));
        assert!(!s.finish_job(&id, "new").await.expect("finish"), "a finished job is no one's");
        assert_eq!(s.job_row(&id).await.expect("row").0, "done");
    }

    #[tokio::test]
    async fn attempts_are_counted_when_claimed_and_a_job_claimed_past_the_last_is_exhausted() {
        let s = testing::sqlite().await;
        counted_at_claim(&s.store).await;
        s.done().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL at 127.0.0.1:5432"]
    async fn attempts_are_counted_when_claimed_and_a_job_claimed_past_the_last_is_exhausted_on_postgres() {
        let s = testing::postgres("jobs_counted_at_claim").await;
        counted_at_claim(&s.store).await;
        s.done().await;
    }

    async fn counted_at_claim(s: &Store) {
        let id = s.enqueue(JobKind::Gate, &serde_json::json!({})).await.expect("enqueue");
        // A clean shutdown gives the job back without counting its attempt.
        s.claim_job("leaving", 60_000).await.expect("claim").expect("a job");
        assert_eq!(s.release_jobs_of("leaving").await.expect("release"), 1);
        assert_eq!(s.job_row(&id).await.expect("row").1, 0);
        // Every attempt crashes the process before it records anything: the claims count them.
        for n in 1..=MAX_ATTEMPTS {
            let job = s.claim_job(&format!("crashing-{n}"), 1).await.expect("claim").expect("a job");
            assert_eq!(job.attempts, n);
            assert_eq!(job.last_attempt(), n == MAX_ATTEMPTS);
            assert!(!job.exhausted());
            assert_eq!(s.job_row(&id).await.expect("row").1, n, "counted in the database at once");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let job = s.claim_job("w", 60_000).await.expect("claim").expect("a job");
        assert!(job.exhausted(), "claimed after its last attempt");
        assert!(job.exhausted_error().starts_with("gave up after 8 attempts"), "{}", job.exhausted_error());
        assert!(s.fail_job(&id, "w", &job.exhausted_error()).await.expect("fail"));
        assert!(s.claim_job("w", 60_000).await.expect("claim").is_none(), "a failed job is never claimed");
    }

    #[tokio::test]
    async fn two_jobs_with_one_serial_key_are_never_both_leased() {
        let s = testing::sqlite().await;
        one_per_key(&s.store).await;
        s.done().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL at 127.0.0.1:5432"]
    async fn two_jobs_with_one_serial_key_are_never_both_leased_on_postgres() {
        let s = testing::postgres("jobs_one_per_key").await;
        one_per_key(&s.store).await;
        s.done().await;
    }

    async fn one_per_key(s: &Store) {
        let job = |n: i64| serde_json::json!({ "n": n });
        let first = s.enqueue_keyed(JobKind::Delivery, &job(1), Some("acme/agents#1")).await.expect("enqueue");
        let second = s.enqueue_keyed(JobKind::Delivery, &job(2), Some("acme/agents#1")).await.expect("enqueue");
        let other = s.enqueue_keyed(JobKind::Delivery, &job(3), Some("acme/agents#2")).await.expect("enqueue");
        let free = s.enqueue(JobKind::Pins, &job(4)).await.expect("enqueue");
        let a = s.claim_job("a", 500).await.expect("claim").expect("a job");
        assert_eq!(a.id, first);
        let mut others = Vec::new();
        while let Some(j) = s.claim_job("b", 60_000).await.expect("claim") {
            others.push(j.id);
        }
        assert_eq!(others, vec![other.clone(), free.clone()], "the second job of #1 waits while the first runs");
        // The first job's worker dies: its job is taken over, and the second still waits.
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        let again = s.claim_job("c", 60_000).await.expect("claim").expect("taken over");
        assert_eq!(again.id, first);
        assert!(s.claim_job("d", 60_000).await.expect("claim").is_none());
        assert!(s.finish_job(&first, "c").await.expect("finish"));
        let next = s.claim_job("d", 60_000).await.expect("claim").expect("its turn");
        assert_eq!(next.id, second);
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL at 127.0.0.1:5432"]
    async fn replicas_claiming_at_once_lease_one_job_of_a_key_at_a_time_on_postgres() {
        let s = testing::postgres("jobs_one_per_key_racing").await;
        let keys = ["acme/agents#1", "acme/agents#2"];
        for n in 0..20 {
            let payload = serde_json::json!({ "n": n });
            s.store.enqueue_keyed(JobKind::Delivery, &payload, Some(keys[n % 2])).await.expect("enqueue");
        }
        let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let workers: Vec<_> = (0..6)
            .map(|w| {
                let (store, done) = (s.store.clone(), done.clone());
                tokio::spawn(async move {
                    let owner = format!("w{w}");
                    while done.load(std::sync::atomic::Ordering::SeqCst) < 20 {
                        let Some(job) = store.claim_job(&owner, 60_000).await.expect("a claim never fails") else {
                            tokio::task::yield_now().await;
                            continue;
                        };
                        for key in keys {
                            assert!(store.running_with_key(key).await <= 1, "two jobs of {key} running");
                        }
                        assert!(store.finish_job(&job.id, &owner).await.expect("finish"));
                        done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.expect("worker");
        }
        assert_eq!(s.store.pending_jobs().await.expect("count"), 0);
        s.done().await;
    }

    impl Store {
        async fn running_with_key(&self, key: &str) -> i64 {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM jobs WHERE serial_key = $1 AND state = 'running'")
                .bind(key)
                .fetch_one(&self.pool)
                .await
                .expect("count")
        }
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL at 127.0.0.1:5432"]
    async fn on_postgres_leases_use_the_servers_clock_not_the_replicas() {
        let t = testing::postgres("jobs_server_clock").await;
        let s = &t.store;
        let hour = 3_600_000;
        let id = s.enqueue(JobKind::Gate, &serde_json::json!({})).await.expect("enqueue");
        // A replica whose clock is an hour behind still claims a job that is ready …
        let job = s.claim_job_at("behind", 60_000, now_ms() - hour).await.expect("claim").expect("ready by the server");
        assert_eq!(job.id, id);
        let server = s.lease_clock(0).await.expect("server clock");
        let (until,) = sqlx::query_as::<_, (i64,)>("SELECT lease_until FROM jobs WHERE id = $1")
            .bind(&id)
            .fetch_one(&s.pool)
            .await
            .expect("lease");
        assert!(
            (until - (server + 60_000)).abs() < 10_000,
            "the lease is the server's now + 60 s: {until} vs {server}"
        );
        // … and one whose clock is an hour ahead cannot take its live lease.
        assert!(s.claim_job_at("ahead", 60_000, now_ms() + hour).await.expect("claim").is_none());
        assert!(s.heartbeat(&id, "behind", 60_000).await.expect("heartbeat"), "the lease is still the first one's");
        t.done().await;
    }

    #[tokio::test]
    async fn on_sqlite_leases_use_this_processs_clock() {
        let s = testing::sqlite().await;
        s.store.enqueue(JobKind::Gate, &serde_json::json!({})).await.expect("enqueue");
        s.store.claim_job("a", 60_000).await.expect("claim").expect("a job");
        let later = now_ms() + 120_000;
        assert!(s.store.claim_job_at("b", 60_000, later).await.expect("claim").is_some(), "one clock: the process's");
        s.done().await;
    }
}
