//! `deliveries`: every verified webhook delivery, keyed by `X-GitHub-Delivery`. Storing it and
//! queueing its job happen in one transaction, before GitHub gets its answer.

use super::{Store, now_ms};
use crate::store::jobs::JobKind;
use serde::Deserialize;
use sqlx::Executor as _;

/// What happened to a delivery on intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    /// Stored, and a job queued when the event needs one.
    Stored,
    /// This delivery id was seen before: acknowledged, not processed again.
    Duplicate,
}

impl Store {
    /// Stores the delivery and, when `queue` is set, its job, atomically.
    pub async fn take_delivery(
        &self,
        delivery_id: &str,
        event: &str,
        action: &str,
        payload: &str,
        queue: bool,
    ) -> Result<Intake, sqlx::Error> {
        let now = now_ms();
        let ready = if queue { self.lease_clock(now).await? } else { now };
        let mut conn = self.pool.acquire().await?;
        if self.backend == super::Backend::Sqlite {
            // The one commit GitHub is answered after: synced to disk (see `Store::connect`).
            // Syncing the write-ahead log makes every earlier commit durable with it.
            conn.execute("PRAGMA synchronous = FULL").await?;
        }
        let outcome = Self::store_delivery(&mut conn, (delivery_id, event, action, payload), queue, now, ready).await;
        if self.backend == super::Backend::Sqlite {
            conn.execute("PRAGMA synchronous = NORMAL").await?;
        }
        outcome
    }

    async fn store_delivery(
        conn: &mut sqlx::AnyConnection,
        (delivery_id, event, action, payload): (&str, &str, &str, &str),
        queue: bool,
        now: i64,
        ready: i64,
    ) -> Result<Intake, sqlx::Error> {
        let mut tx = sqlx::Connection::begin(conn).await?;
        let inserted = sqlx::query(
            "INSERT INTO deliveries (delivery_id, event, action, received_at, payload) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (delivery_id) DO NOTHING",
        )
        .bind(delivery_id)
        .bind(event)
        .bind(action)
        .bind(now)
        .bind(payload)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(Intake::Duplicate);
        }
        if queue {
            let job = serde_json::json!({ "delivery_id": delivery_id });
            let key = serial_key(payload);
            super::jobs::insert(&mut *tx, JobKind::Delivery, &job, key.as_deref(), ready).await?;
        }
        tx.commit().await?;
        Ok(Intake::Stored)
    }

    /// Retention (`EVALGATE_RETENTION_DAYS`): deletes deliveries received before `cutoff_ms`
    /// and jobs that finished (done or failed) before it; a queued or running job, and the
    /// audit log, are never touched. Returns (deliveries, jobs) deleted.
    pub async fn prune(&self, cutoff_ms: i64) -> Result<(u64, u64), sqlx::Error> {
        let jobs = sqlx::query("DELETE FROM jobs WHERE state IN ('done', 'failed') AND updated_at < $1")
            .bind(cutoff_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let deliveries = sqlx::query("DELETE FROM deliveries WHERE received_at < $1")
            .bind(cutoff_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok((deliveries, jobs))
    }

    /// `(event, payload)` of a stored delivery.
    pub async fn delivery(&self, delivery_id: &str) -> Result<Option<(String, String)>, sqlx::Error> {
        sqlx::query_as::<_, (String, String)>("SELECT event, payload FROM deliveries WHERE delivery_id = $1")
            .bind(delivery_id)
            .fetch_optional(&self.pool)
            .await
    }
}

/// The serialisation key of a delivery's job: the pull request the payload names, as
/// `owner/name#number`, so two deliveries of one pull request are never handled at once (both
/// would find its gate run without a check run and post two). `None` when it names none (an
/// installation event, a fork's check run, whose `pull_requests` GitHub leaves empty). Only
/// these few fields are read; the rest of the payload is skipped.
fn serial_key(payload: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Named {
        repository: Option<Repository>,
        pull_request: Option<Numbered>,
        issue: Option<Numbered>,
        check_run: Option<Listed>,
        check_suite: Option<Listed>,
        merge_group: Option<Group>,
    }
    #[derive(Deserialize)]
    struct Group {
        head_sha: String,
    }
    #[derive(Deserialize)]
    struct Repository {
        full_name: String,
    }
    #[derive(Deserialize)]
    struct Numbered {
        number: u64,
    }
    #[derive(Deserialize)]
    struct Listed {
        #[serde(default)]
        pull_requests: Vec<Numbered>,
    }
    let named: Named = serde_json::from_str(payload).ok()?;
    // A merge group is keyed by its head: its deliveries (requested, destroyed) run in order.
    if let Some(g) = &named.merge_group {
        return Some(format!("{}@{}", named.repository?.full_name, g.head_sha));
    }
    let listed = |l: Option<Listed>| l.and_then(|l| l.pull_requests.first().map(|p| p.number));
    let number = named
        .pull_request
        .or(named.issue)
        .map(|n| n.number)
        .or_else(|| listed(named.check_run))
        .or_else(|| listed(named.check_suite))?;
    Some(format!("{}#{number}", named.repository?.full_name))
}

#[cfg(test)]
mod tests {
    use super::serial_key;
    use crate::store::testing;

    async fn prune_keeps_what_is_recent_or_unfinished(store: &crate::store::Store) {
        store.take_delivery("old", "ping", "", "{}", true).await.expect("old delivery");
        sqlx::query("UPDATE deliveries SET received_at = 1").execute(&store.pool).await.expect("age it");
        sqlx::query("UPDATE jobs SET updated_at = 1, state = 'done'").execute(&store.pool).await.expect("finish it");
        store.take_delivery("queued-old", "ping", "", "{}", true).await.expect("second");
        sqlx::query("UPDATE jobs SET updated_at = 1 WHERE state = 'queued'").execute(&store.pool).await.expect("age");
        store.take_delivery("new", "ping", "", "{}", false).await.expect("new delivery");
        store.audit("o/r", crate::audit::Kind::Command, "a", None, serde_json::json!({})).await.expect("audit");
        let cutoff = crate::store::now_ms() - 1_000;
        let (deliveries, jobs) = store.prune(cutoff).await.expect("prune");
        assert_eq!((deliveries, jobs), (1, 1), "the old delivery and its finished job");
        assert!(store.delivery("new").await.expect("read").is_some());
        assert!(store.delivery("queued-old").await.expect("read").is_some());
        let queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state = 'queued'")
            .fetch_one(&store.pool)
            .await
            .expect("count");
        assert_eq!(queued, 1, "an unfinished job is never deleted, however old");
        let audit: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_entries").fetch_one(&store.pool).await.expect("count");
        assert_eq!(audit, 1, "the audit log is never pruned");
    }

    #[tokio::test]
    async fn retention_deletes_old_deliveries_and_finished_jobs_only() {
        let t = testing::sqlite().await;
        prune_keeps_what_is_recent_or_unfinished(&t.store).await;
        t.done().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL at 127.0.0.1:5432"]
    async fn retention_deletes_old_deliveries_and_finished_jobs_only_on_postgres() {
        let t = testing::postgres("retention").await;
        prune_keeps_what_is_recent_or_unfinished(&t.store).await;
        t.done().await;
    }

    #[test]
    fn a_deliverys_key_is_the_pull_request_its_payload_names() {
        let repo = r#""repository": {"full_name": "acme/agents", "id": 1}"#;
        let pr = format!(r#"{{"action": "opened", "number": 7, "pull_request": {{"number": 7}}, {repo}}}"#);
        assert_eq!(serial_key(&pr).as_deref(), Some("acme/agents#7"));
        let comment = format!(r#"{{"action": "created", "issue": {{"number": 8, "pull_request": {{}}}}, {repo}}}"#);
        assert_eq!(serial_key(&comment).as_deref(), Some("acme/agents#8"));
        let check = format!(r#"{{"check_run": {{"id": 3, "pull_requests": [{{"number": 9}}]}}, {repo}}}"#);
        assert_eq!(serial_key(&check).as_deref(), Some("acme/agents#9"));
        let suite = format!(r#"{{"check_suite": {{"pull_requests": [{{"number": 10}}, {{"number": 11}}]}}, {repo}}}"#);
        assert_eq!(serial_key(&suite).as_deref(), Some("acme/agents#10"));
        let fork = format!(r#"{{"check_run": {{"id": 3, "pull_requests": []}}, {repo}}}"#);
        assert_eq!(serial_key(&fork), None, "a fork's check run names no pull request");
        assert_eq!(serial_key(r#"{"action": "created", "installation": {"id": 1}}"#), None);
        assert_eq!(serial_key("not json"), None);
        let group = r#"{"repository": {"full_name": "acme/agents"}, "merge_group": {"head_sha": "abc"}}"#;
        assert_eq!(serial_key(group).as_deref(), Some("acme/agents@abc"));
    }
}
