//! `pull_requests`: the head evalgate last saw of each pull request, its frozen thresholds and
//! its sticky comment. Also the head-sha → pull-request map that fork PRs need, since GitHub
//! leaves them out of check payloads.

use super::{Store, now_ms};

#[derive(Debug, Clone, PartialEq)]
pub struct PrRow {
    pub repo: String,
    pub number: i64,
    pub installation_id: i64,
    pub head_sha: String,
    pub base_sha: String,
    pub is_fork: bool,
    /// JSON `[[key, value], …]` of the pre-registered thresholds frozen at the first evaluation.
    pub thresholds: Option<String>,
    pub comment_id: Option<i64>,
}

type Row = (String, i64, i64, String, String, i64, Option<String>, Option<i64>);

fn from_row(r: Row) -> PrRow {
    PrRow {
        repo: r.0,
        number: r.1,
        installation_id: r.2,
        head_sha: r.3,
        base_sha: r.4,
        is_fork: r.5 != 0,
        thresholds: r.6,
        comment_id: r.7,
    }
}

const COLUMNS: &str = "repo, number, installation_id, head_sha, base_sha, is_fork, thresholds, comment_id";

impl Store {
    /// Records the pull request's current head. One statement, so it never has to upgrade a
    /// read lock to a write lock (SQLite refuses that at once while another writer commits).
    pub async fn upsert_pr(
        &self,
        repo: &str,
        number: u64,
        installation_id: u64,
        head_sha: &str,
        base_sha: &str,
        is_fork: bool,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO pull_requests (repo, number, installation_id, head_sha, base_sha, is_fork, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (repo, number) DO UPDATE SET installation_id = $3, head_sha = $4, base_sha = $5, is_fork = $6, updated_at = $7",
        )
        .bind(repo)
        .bind(number as i64)
        .bind(installation_id as i64)
        .bind(head_sha)
        .bind(base_sha)
        .bind(i64::from(is_fork))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn pr(&self, repo: &str, number: u64) -> Result<Option<PrRow>, sqlx::Error> {
        sqlx::query_as::<_, Row>(&format!("SELECT {COLUMNS} FROM pull_requests WHERE repo = $1 AND number = $2"))
            .bind(repo)
            .bind(number as i64)
            .fetch_optional(&self.pool)
            .await
            .map(|r| r.map(from_row))
    }

    /// The pull requests whose current head is `head_sha`.
    pub async fn prs_with_head(&self, repo: &str, head_sha: &str) -> Result<Vec<PrRow>, sqlx::Error> {
        sqlx::query_as::<_, Row>(&format!("SELECT {COLUMNS} FROM pull_requests WHERE repo = $1 AND head_sha = $2"))
            .bind(repo)
            .bind(head_sha)
            .fetch_all(&self.pool)
            .await
            .map(|rows| rows.into_iter().map(from_row).collect())
    }

    /// Freezes the thresholds in force, unless an earlier evaluation already did; returns the
    /// frozen value (the earlier one when there was one).
    pub async fn freeze_thresholds(
        &self,
        repo: &str,
        number: u64,
        thresholds: &str,
        entry: &super::audit::NewEntry<'_>,
    ) -> Result<String, sqlx::Error> {
        // The freeze and its pre-registration entry commit together: a crash between them
        // cannot leave thresholds in force that the audit trail never recorded.
        for _ in 0..super::audit::MAX_RACES {
            let mut tx = self.pool.begin().await?;
            let froze = sqlx::query(
                "UPDATE pull_requests SET thresholds = $1 WHERE repo = $2 AND number = $3 AND thresholds IS NULL",
            )
            .bind(thresholds)
            .bind(repo)
            .bind(number as i64)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if froze {
                if let super::audit::Appended::Raced = super::audit::append(&mut tx, entry).await? {
                    tx.rollback().await?;
                    continue;
                }
            }
            let frozen = sqlx::query_scalar::<_, Option<String>>(
                "SELECT thresholds FROM pull_requests WHERE repo = $1 AND number = $2",
            )
            .bind(repo)
            .bind(number as i64)
            .fetch_optional(&mut *tx)
            .await?
            .flatten();
            tx.commit().await?;
            return Ok(frozen.unwrap_or_else(|| thresholds.to_owned()));
        }
        Err(super::audit::raced())
    }

    /// Claims the posting of the pull request's sticky comment (`comment_id` 0 marks it being
    /// posted): true for exactly one caller, whatever the replicas.
    pub async fn claim_comment(&self, repo: &str, number: u64) -> Result<bool, sqlx::Error> {
        let n = sqlx::query(
            "UPDATE pull_requests SET comment_id = 0 WHERE repo = $1 AND number = $2 AND comment_id IS NULL",
        )
        .bind(repo)
        .bind(number as i64)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Forgets a comment that was deleted on GitHub, so it is posted again.
    pub async fn release_comment_id(&self, repo: &str, number: u64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE pull_requests SET comment_id = NULL WHERE repo = $1 AND number = $2")
            .bind(repo)
            .bind(number as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Gives the claim back after a failed post, so the next attempt can make it.
    pub async fn release_comment(&self, repo: &str, number: u64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE pull_requests SET comment_id = NULL WHERE repo = $1 AND number = $2 AND comment_id = 0")
            .bind(repo)
            .bind(number as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_comment_id(&self, repo: &str, number: u64, comment_id: u64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE pull_requests SET comment_id = $1 WHERE repo = $2 AND number = $3")
            .bind(comment_id as i64)
            .bind(repo)
            .bind(number as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::{self, TestStore};

    #[tokio::test]
    async fn one_worker_claims_the_sticky_comment_until_it_is_posted_or_released() {
        comment_claimed_once(testing::sqlite().await).await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL at 127.0.0.1:5432"]
    async fn one_worker_claims_the_sticky_comment_until_it_is_posted_or_released_on_postgres() {
        comment_claimed_once(testing::postgres("comment_claim").await).await;
    }

    async fn comment_claimed_once(t: TestStore) {
        let s = &t.store;
        s.upsert_pr("o/r", 1, 7, "head", "base", false).await.expect("upsert");
        let other = s.clone(); // a second replica's handle on the same database
        let (a, b) = tokio::join!(s.claim_comment("o/r", 1), other.claim_comment("o/r", 1));
        assert!(a.expect("claim") ^ b.expect("claim"), "exactly one claims it");
        s.release_comment("o/r", 1).await.expect("release");
        assert!(s.claim_comment("o/r", 1).await.expect("claim"), "a released claim can be taken again");
        s.set_comment_id("o/r", 1, 99).await.expect("set");
        assert!(!s.claim_comment("o/r", 1).await.expect("claim"), "a posted comment is not claimed");
        assert_eq!(s.pr("o/r", 1).await.expect("pr").and_then(|p| p.comment_id), Some(99));
        t.done().await;
    }
}
