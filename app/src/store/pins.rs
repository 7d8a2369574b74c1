//! Pin tracking's tables: installed repositories, the daily pin record, bump PRs, skipped
//! snapshots and scheduled slots.

use super::{Store, now_ms};

/// A bump PR as evalgate left it.
#[derive(Debug, Clone, PartialEq)]
pub struct PinBump {
    pub branch: String,
    pub pr_number: u64,
    pub proposed: String,
    pub commit_sha: String,
}

/// One line of the daily record.
pub struct PinRecord<'a> {
    pub repo: &'a str,
    pub bundle: &'a str,
    pub role: &'a str,
    pub provider: &'a str,
    pub pinned: &'a str,
    pub newest: Option<&'a str>,
    pub lag_days: Option<i64>,
    pub retires_in_days: Option<i64>,
}

impl Store {
    pub async fn remember_repository(&self, repo: &str, installation_id: u64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO repositories (repo, installation_id, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (repo) DO UPDATE SET installation_id = $2, updated_at = $3",
        )
        .bind(repo)
        .bind(installation_id as i64)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn forget_repository(&self, repo: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM repositories WHERE repo = $1").bind(repo).execute(&self.pool).await?;
        Ok(())
    }

    /// `(repo, installation)` of every installed repository, by name.
    pub async fn repositories(&self) -> Result<Vec<(String, u64)>, sqlx::Error> {
        sqlx::query_as::<_, (String, i64)>("SELECT repo, installation_id FROM repositories ORDER BY repo")
            .fetch_all(&self.pool)
            .await
            .map(|rows| rows.into_iter().map(|(r, i)| (r, i as u64)).collect())
    }

    pub async fn record_pin(&self, r: &PinRecord<'_>) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO pin_records (repo, bundle, role, provider, pinned, newest, lag_days, retires_in_days, checked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (repo, bundle, role) DO UPDATE SET provider = $4, pinned = $5, newest = $6, lag_days = $7, retires_in_days = $8, checked_at = $9",
        )
        .bind(r.repo)
        .bind(r.bundle)
        .bind(r.role)
        .bind(r.provider)
        .bind(r.pinned)
        .bind(r.newest)
        .bind(r.lag_days)
        .bind(r.retires_in_days)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn pin_bump(&self, repo: &str, bundle: &str) -> Result<Option<PinBump>, sqlx::Error> {
        sqlx::query_as::<_, (String, i64, String, String)>(
            "SELECT branch, pr_number, proposed, commit_sha FROM pin_bumps WHERE repo = $1 AND bundle = $2",
        )
        .bind(repo)
        .bind(bundle)
        .fetch_optional(&self.pool)
        .await
        .map(|r| {
            r.map(|(branch, n, proposed, commit_sha)| PinBump { branch, pr_number: n as u64, proposed, commit_sha })
        })
    }

    pub async fn save_pin_bump(&self, repo: &str, bundle: &str, b: &PinBump) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO pin_bumps (repo, bundle, branch, pr_number, proposed, commit_sha, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (repo, bundle) DO UPDATE SET branch = $3, pr_number = $4, proposed = $5, commit_sha = $6, updated_at = $7",
        )
        .bind(repo)
        .bind(bundle)
        .bind(&b.branch)
        .bind(b.pr_number as i64)
        .bind(&b.proposed)
        .bind(&b.commit_sha)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn skip_snapshot(&self, repo: &str, bundle: &str, snapshot: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO pin_skips (repo, bundle, snapshot, at_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (repo, bundle, snapshot) DO NOTHING",
        )
        .bind(repo)
        .bind(bundle)
        .bind(snapshot)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn is_skipped(&self, repo: &str, bundle: &str, snapshot: &str) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM pin_skips WHERE repo = $1 AND bundle = $2 AND snapshot = $3")
            .bind(repo)
            .bind(bundle)
            .bind(snapshot)
            .fetch_one(&self.pool)
            .await
            .map(|n| n > 0)
    }

    /// Claims a scheduled slot; true for exactly one caller per (name, slot), whatever the
    /// number of replicas asking.
    pub async fn claim_slot(&self, name: &str, slot_ms: i64) -> Result<bool, sqlx::Error> {
        let n = sqlx::query(
            "INSERT INTO schedule_slots (name, slot_ms) VALUES ($1, $2) ON CONFLICT (name, slot_ms) DO NOTHING",
        )
        .bind(name)
        .bind(slot_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::{self, TestStore};

    #[tokio::test]
    async fn a_slot_is_claimed_once_whatever_the_replicas() {
        slot_claimed_once(testing::sqlite().await).await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL at 127.0.0.1:5432"]
    async fn a_slot_is_claimed_once_whatever_the_replicas_on_postgres() {
        slot_claimed_once(testing::postgres("slots").await).await;
    }

    async fn slot_claimed_once(t: TestStore) {
        let other = t.store.clone(); // a second replica's handle on the same database
        let (a, b) = tokio::join!(t.store.claim_slot("pins-weekly", 1_000), other.claim_slot("pins-weekly", 1_000));
        assert!(a.expect("claim") ^ b.expect("claim"), "exactly one replica claims the slot");
        assert!(t.store.claim_slot("pins-weekly", 2_000).await.expect("claim"), "the next slot is new");
        t.done().await;
    }
}
