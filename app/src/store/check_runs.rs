//! `check_runs`: the id of every check run evalgate created, by (repository, head, name), so
//! that a retried job or a restarted server updates its check run instead of posting another.

use super::{Store, now_ms};

impl Store {
    pub async fn check_run_id(&self, repo: &str, head_sha: &str, name: &str) -> Result<Option<u64>, sqlx::Error> {
        sqlx::query_scalar::<_, i64>(
            "SELECT check_run_id FROM check_runs WHERE repo = $1 AND head_sha = $2 AND name = $3",
        )
        .bind(repo)
        .bind(head_sha)
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map(|id| id.map(|id| id as u64))
    }

    pub async fn remember_check_run(&self, repo: &str, head_sha: &str, name: &str, id: u64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO check_runs (repo, head_sha, name, check_run_id) VALUES ($1, $2, $3, $4)
             ON CONFLICT (repo, head_sha, name) DO UPDATE SET check_run_id = $4",
        )
        .bind(repo)
        .bind(head_sha)
        .bind(name)
        .bind(id as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// What GitHub must show for one check that is not a gate run's (pre-registration, golden set,
/// the aggregate `evalgate`), claimed for publishing.
#[derive(Debug, Clone)]
pub struct CheckPublication {
    pub repo: String,
    pub head_sha: String,
    pub name: String,
    pub installation_id: u64,
    /// The typed body as JSON (`github::check::CheckBody`).
    pub body: String,
    /// The body GitHub was last brought to, if any.
    pub published_body: Option<String>,
    pub version: i64,
    pub attempts: i64,
}

impl Store {
    /// Records what check `name` on `head_sha` must show; `true` when that changed (then the
    /// publisher has something to do). Writing the same body again is a no-op.
    pub async fn set_check_state(
        &self,
        repo: &str,
        head_sha: &str,
        name: &str,
        installation_id: u64,
        body: &str,
    ) -> Result<bool, sqlx::Error> {
        let n = sqlx::query(
            "INSERT INTO check_states (repo, head_sha, name, installation_id, body, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (repo, head_sha, name) DO UPDATE SET body = excluded.body,
                 installation_id = excluded.installation_id, version = check_states.version + 1,
                 publish_after = 0, publish_attempts = 0, publish_error = NULL, updated_at = excluded.updated_at
             WHERE check_states.body <> excluded.body",
        )
        .bind(repo)
        .bind(head_sha)
        .bind(name)
        .bind(installation_id as i64)
        .bind(body)
        .bind(now_ms())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Check `name` on `head_sha` must be worked out again from the database when it is next
    /// published (the `evalgate` check: see `flow::aggregate`); its kept body is what it was
    /// last worked out as. Every call is a new version, so a change committed before the call
    /// is always seen by a publication that starts after it.
    pub async fn mark_check_state(
        &self,
        repo: &str,
        head_sha: &str,
        name: &str,
        installation_id: u64,
    ) -> Result<(), sqlx::Error> {
        mark(&self.pool, repo, head_sha, name, installation_id).await
    }

    /// Every kept check on `head_sha`: (name, body).
    pub async fn check_states_at(&self, repo: &str, head_sha: &str) -> Result<Vec<(String, String)>, sqlx::Error> {
        sqlx::query_as::<_, (String, String)>(
            "SELECT name, body FROM check_states WHERE repo = $1 AND head_sha = $2 ORDER BY name",
        )
        .bind(repo)
        .bind(head_sha)
        .fetch_all(&self.pool)
        .await
    }

    /// Claims one check whose body is not yet on GitHub, as `claim_publication` does for runs.
    pub async fn claim_check_publication(
        &self,
        owner: &str,
        lease_ms: i64,
    ) -> Result<Option<CheckPublication>, sqlx::Error> {
        let now = self.lease_clock(now_ms()).await?;
        type Row = (String, String, String, i64, String, Option<String>, i64, i64);
        let candidates = sqlx::query_as::<_, Row>(
            "SELECT repo, head_sha, name, installation_id, body, published_body, version, publish_attempts FROM check_states
             WHERE version > published_version AND publish_after <= $1 AND publish_lease < $1
             ORDER BY updated_at LIMIT 8",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        for (repo, head_sha, name, installation, body, published_body, version, attempts) in candidates {
            let won = sqlx::query(
                "UPDATE check_states SET publish_owner = $1, publish_lease = $2
                 WHERE repo = $3 AND head_sha = $4 AND name = $5 AND version = $6 AND publish_lease < $7",
            )
            .bind(owner)
            .bind(now + lease_ms)
            .bind(&repo)
            .bind(&head_sha)
            .bind(&name)
            .bind(version)
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected()
                == 1;
            if won {
                return Ok(Some(CheckPublication {
                    repo,
                    head_sha,
                    name,
                    installation_id: installation as u64,
                    body,
                    published_body,
                    version,
                    attempts,
                }));
            }
        }
        Ok(None)
    }

    /// Keeps the claim of `p` for another `lease_ms`; `false` when it is no longer this
    /// owner's (its lease ran out and another took it): then the publication must stop.
    pub async fn renew_check_publication(
        &self,
        p: &CheckPublication,
        owner: &str,
        lease_ms: i64,
    ) -> Result<bool, sqlx::Error> {
        let now = self.lease_clock(now_ms()).await?;
        let n = sqlx::query(
            "UPDATE check_states SET publish_lease = $1
             WHERE repo = $2 AND head_sha = $3 AND name = $4 AND publish_owner = $5",
        )
        .bind(now + lease_ms)
        .bind(&p.repo)
        .bind(&p.head_sha)
        .bind(&p.name)
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// GitHub shows `body` as version `p.version` of the check now; the lease is given up (also
    /// when another publisher recorded that version first). A body written since the claim
    /// stays: it is the next version to publish. The `evalgate` check's worked-out body is kept
    /// as what it last was.
    pub async fn check_published(&self, p: &CheckPublication, owner: &str, body: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE check_states SET publish_lease = 0, publish_owner = NULL, publish_error = NULL,
                 published_version = CASE WHEN published_version < $1 THEN $1 ELSE published_version END,
                 published_body = CASE WHEN published_version < $1 THEN $6 ELSE published_body END,
                 body = CASE WHEN version = $1 AND name = 'evalgate' THEN $6 ELSE body END
             WHERE repo = $2 AND head_sha = $3 AND name = $4 AND publish_owner = $5",
        )
        .bind(p.version)
        .bind(&p.repo)
        .bind(&p.head_sha)
        .bind(&p.name)
        .bind(owner)
        .bind(body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Publishing the check failed: tried again after `backoff_ms`.
    pub async fn check_publish_failed(
        &self,
        p: &CheckPublication,
        owner: &str,
        backoff_ms: i64,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        let retry_at_ms = self.lease_clock(now_ms()).await? + backoff_ms;
        sqlx::query(
            "UPDATE check_states SET publish_lease = 0, publish_owner = NULL, publish_after = $1,
                 publish_attempts = publish_attempts + 1, publish_error = $2
             WHERE repo = $3 AND head_sha = $4 AND name = $5 AND publish_owner = $6",
        )
        .bind(retry_at_ms)
        .bind(error)
        .bind(&p.repo)
        .bind(&p.head_sha)
        .bind(&p.name)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// At start-up: every pending check publication is due now. On SQLite (one server) the
    /// leases of the process that stopped go too; on PostgreSQL another replica may hold them,
    /// so they run out instead.
    pub async fn check_publications_due_now(&self) -> Result<u64, sqlx::Error> {
        let leases =
            if self.backend == super::Backend::Sqlite { ", publish_lease = 0, publish_owner = NULL" } else { "" };
        sqlx::query(&format!("UPDATE check_states SET publish_after = 0{leases} WHERE version > published_version"))
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
    }
}

/// [`Store::mark_check_state`] on `db`: a pool, or a transaction the mark belongs to.
pub(super) async fn mark<'c, E: sqlx::Executor<'c, Database = sqlx::Any>>(
    db: E,
    repo: &str,
    head_sha: &str,
    name: &str,
    installation_id: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO check_states (repo, head_sha, name, installation_id, body, updated_at)
         VALUES ($1, $2, $3, $4, '', $5)
         ON CONFLICT (repo, head_sha, name) DO UPDATE SET installation_id = excluded.installation_id,
             version = check_states.version + 1, publish_after = 0, publish_attempts = 0,
             publish_error = NULL, updated_at = excluded.updated_at",
    )
    .bind(repo)
    .bind(head_sha)
    .bind(name)
    .bind(installation_id as i64)
    .bind(now_ms())
    .execute(db)
    .await?;
    Ok(())
}
