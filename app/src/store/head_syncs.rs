//! `head_syncs`: what each subject of a head — a pull request, or a merge-queue group — last
//! read that head as: against which base, and how many bundles it touches. The `evalgate` check
//! of a head sums up every open subject (see `flow::aggregate`).

use super::{Store, now_ms};

/// What one subject of a head was last read as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadSync {
    /// The pull request's number; [`super::merge_groups::MERGE_GROUP`] for a merge-queue group.
    pub subject: u64,
    pub base_sha: String,
    pub read: Read,
}

/// Where the read of a head against its base stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Being read (a first read, or the base moved): nothing is known yet.
    Reading,
    /// Read: this many bundles are touched.
    Touched(u64),
    /// The pull request closed or the group was destroyed.
    Closed,
    /// The read gave up for good: the head cannot be judged.
    Failed,
}

impl Store {
    /// The subject starts reading `head_sha`. Against an unknown base (`None`: not looked up
    /// yet) a subject new to this head, or one that was closed or failed (a reopened pull
    /// request), is recorded as being read; against a known base, a base other than the one last
    /// read is read again too, so no earlier read's result shows meanwhile. `true` when anything
    /// changed.
    pub async fn begin_head_sync(
        &self,
        repo: &str,
        head_sha: &str,
        subject: u64,
        base_sha: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let n = match base_sha {
            None => sqlx::query(
                "INSERT INTO head_syncs (repo, head_sha, subject, base_sha, touched, state, updated_at)
                 VALUES ($1, $2, $3, '', NULL, 'open', $4)
                 ON CONFLICT (repo, head_sha, subject) DO UPDATE SET touched = NULL, state = 'open',
                     updated_at = excluded.updated_at
                 WHERE head_syncs.state <> 'open'",
            )
            .bind(repo)
            .bind(head_sha)
            .bind(subject as i64)
            .bind(now_ms())
            .execute(&self.pool)
            .await?
            .rows_affected(),
            Some(base) => sqlx::query(
                "INSERT INTO head_syncs (repo, head_sha, subject, base_sha, touched, state, updated_at)
                 VALUES ($1, $2, $3, $4, NULL, 'open', $5)
                 ON CONFLICT (repo, head_sha, subject) DO UPDATE SET base_sha = excluded.base_sha, touched = NULL,
                     state = 'open', updated_at = excluded.updated_at
                 WHERE head_syncs.base_sha <> excluded.base_sha OR head_syncs.state <> 'open'",
            )
            .bind(repo)
            .bind(head_sha)
            .bind(subject as i64)
            .bind(base)
            .bind(now_ms())
            .execute(&self.pool)
            .await?
            .rows_affected(),
        };
        Ok(n == 1)
    }

    /// The subject read `head_sha` against `base_sha`: it touches `touched` bundles, and every
    /// run of them exists.
    pub async fn set_head_sync(
        &self,
        repo: &str,
        head_sha: &str,
        subject: u64,
        base_sha: &str,
        touched: u64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO head_syncs (repo, head_sha, subject, base_sha, touched, state, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'open', $6)
             ON CONFLICT (repo, head_sha, subject) DO UPDATE SET base_sha = excluded.base_sha,
                 touched = excluded.touched, state = 'open', updated_at = excluded.updated_at",
        )
        .bind(repo)
        .bind(head_sha)
        .bind(subject as i64)
        .bind(base_sha)
        .bind(touched as i64)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The subject no longer has `head_sha` to merge (closed, destroyed), or its read of it gave
    /// up (`failed`). `true` when that changed anything.
    pub async fn end_head_sync(
        &self,
        repo: &str,
        head_sha: &str,
        subject: u64,
        failed: bool,
    ) -> Result<bool, sqlx::Error> {
        let state = if failed { "failed" } else { "closed" };
        let n = sqlx::query(
            "UPDATE head_syncs SET state = $1, updated_at = $2
             WHERE repo = $3 AND head_sha = $4 AND subject = $5 AND state <> $1",
        )
        .bind(state)
        .bind(now_ms())
        .bind(repo)
        .bind(head_sha)
        .bind(subject as i64)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Every head the subject has open (a closed pull request: all of them) is closed, or every
    /// head it is still reading is failed (its read gave up). Gives the heads that changed.
    pub async fn end_subject(&self, repo: &str, subject: u64, failed: bool) -> Result<Vec<String>, sqlx::Error> {
        let which = if failed { "touched IS NULL" } else { "1 = 1" };
        let heads = sqlx::query_scalar::<_, String>(&format!(
            "SELECT head_sha FROM head_syncs WHERE repo = $1 AND subject = $2 AND state = 'open' AND {which}"
        ))
        .bind(repo)
        .bind(subject as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut changed = Vec::new();
        for head in heads {
            if self.end_head_sync(repo, &head, subject, failed).await? {
                changed.push(head);
            }
        }
        Ok(changed)
    }

    /// Every subject of `head_sha`, by subject.
    pub async fn head_syncs(&self, repo: &str, head_sha: &str) -> Result<Vec<HeadSync>, sqlx::Error> {
        let rows = sqlx::query_as::<_, (i64, String, Option<i64>, String)>(
            "SELECT subject, base_sha, touched, state FROM head_syncs WHERE repo = $1 AND head_sha = $2 ORDER BY subject",
        )
        .bind(repo)
        .bind(head_sha)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(subject, base_sha, touched, state)| {
                let read = match (state.as_str(), touched) {
                    ("open", None) => Read::Reading,
                    ("open", Some(n)) => Read::Touched(n.max(0) as u64),
                    ("closed", _) => Read::Closed,
                    ("failed", _) => Read::Failed,
                    _ => return Err(sqlx::Error::Decode(format!("head_syncs: unknown state `{state}`").into())),
                };
                Ok(HeadSync { subject: subject.max(0) as u64, base_sha, read })
            })
            .collect()
    }
}
