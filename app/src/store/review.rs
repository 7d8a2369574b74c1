//! What reviewers decide: golden-set approvals, overrides, pending threshold edits.

use super::{Store, now_ms};

impl Store {
    pub async fn approve(
        &self,
        repo: &str,
        pr: u64,
        kind: &str,
        fingerprint: &str,
        actor: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO approvals (repo, pr_number, kind, fingerprint, actor, at_ms) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (repo, pr_number, kind, fingerprint) DO NOTHING",
        )
        .bind(repo)
        .bind(pr as i64)
        .bind(kind)
        .bind(fingerprint)
        .bind(actor)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Who approved this exact change, if anyone.
    pub async fn approved_by(
        &self,
        repo: &str,
        pr: u64,
        kind: &str,
        fingerprint: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar::<_, String>(
            "SELECT actor FROM approvals WHERE repo = $1 AND pr_number = $2 AND kind = $3 AND fingerprint = $4",
        )
        .bind(repo)
        .bind(pr as i64)
        .bind(kind)
        .bind(fingerprint)
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn set_golden_change(
        &self,
        repo: &str,
        head: &str,
        fingerprint: &str,
        title: &str,
        summary: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO golden_changes (repo, head_sha, fingerprint, title, summary) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (repo, head_sha) DO UPDATE SET fingerprint = $3, title = $4, summary = $5",
        )
        .bind(repo)
        .bind(head)
        .bind(fingerprint)
        .bind(title)
        .bind(summary)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `(fingerprint, title, summary)` of the golden-set change shown on `head`.
    pub async fn golden_change(&self, repo: &str, head: &str) -> Result<Option<(String, String, String)>, sqlx::Error> {
        sqlx::query_as::<_, (String, String, String)>(
            "SELECT fingerprint, title, summary FROM golden_changes WHERE repo = $1 AND head_sha = $2",
        )
        .bind(repo)
        .bind(head)
        .fetch_optional(&self.pool)
        .await
    }

    /// Records the thresholds of a body edited after the first evaluation; true when they are
    /// new (not already recorded), so each edit is audited once.
    pub async fn set_pending_thresholds(
        &self,
        repo: &str,
        pr: u64,
        pending: Option<&str>,
        entry: Option<&super::audit::NewEntry<'_>>,
    ) -> Result<bool, sqlx::Error> {
        // The edit and its threshold-edit entry commit together.
        for _ in 0..super::audit::MAX_RACES {
            let mut tx = self.pool.begin().await?;
            let n = sqlx::query(
                "UPDATE pull_requests SET pending_thresholds = $1 WHERE repo = $2 AND number = $3
                 AND ((pending_thresholds IS NULL AND $1 IS NOT NULL) OR (pending_thresholds IS NOT NULL AND $1 IS NULL) OR pending_thresholds <> $1)",
            )
            .bind(pending)
            .bind(repo)
            .bind(pr as i64)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                if let Some(e) = entry {
                    if let super::audit::Appended::Raced = super::audit::append(&mut tx, e).await? {
                        tx.rollback().await?;
                        continue;
                    }
                }
            }
            tx.commit().await?;
            return Ok(n == 1);
        }
        Err(super::audit::raced())
    }

    /// Replaces the frozen thresholds (`/evalgate accept-thresholds`).
    pub async fn accept_thresholds(&self, repo: &str, pr: u64, thresholds: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE pull_requests SET thresholds = $1, pending_thresholds = NULL WHERE repo = $2 AND number = $3",
        )
        .bind(thresholds)
        .bind(repo)
        .bind(pr as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
