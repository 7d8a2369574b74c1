//! `head_syncs`: what each subject of a head — a pull request, or a merge-queue group — last
//! read that head as: against which base, and how many bundles it touches. The `evalgate` check
//! of a head sums up every open subject (see `flow::aggregate`). Every change here marks that
//! check in the same transaction, so no failure can leave a change the check never follows.

use super::check_runs::mark;
use super::{Store, now_ms};

/// The check that sums up a head: marked by every change of its subjects.
pub const AGGREGATE_CHECK: &str = "evalgate";

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

/// The head a subject change is about, and the installation that publishes its check.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub repo: &'a str,
    pub head_sha: &'a str,
    pub subject: u64,
    pub installation_id: u64,
}

/// A value bound after repo, head, subject and the time.
enum Bind<'a> {
    Text(&'a str),
    Int(i64),
}

impl Store {
    /// `sql` (binding repo, head, subject, then `extra`) in a transaction that also marks the
    /// head's `evalgate` check when it changed a row, or always when `always`. `true` when a row
    /// changed.
    async fn sync_and_mark(
        &self,
        s: Subject<'_>,
        sql: &str,
        extra: &[Bind<'_>],
        always: bool,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let mut q = sqlx::query(sql).bind(s.repo).bind(s.head_sha).bind(s.subject as i64).bind(now_ms());
        for e in extra {
            q = match *e {
                Bind::Text(t) => q.bind(t.to_owned()),
                Bind::Int(n) => q.bind(n),
            };
        }
        let changed = q.execute(&mut *tx).await?.rows_affected() == 1;
        if changed || always {
            mark(&mut *tx, s.repo, s.head_sha, AGGREGATE_CHECK, s.installation_id).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// The subject starts reading its head against `base_sha`: a subject new to this head, one
    /// that was closed or failed (a reopened pull request), or one whose base moved is recorded
    /// as being read, so no earlier read's result shows meanwhile. `true` when anything changed.
    pub async fn begin_head_sync(&self, s: Subject<'_>, base_sha: &str) -> Result<bool, sqlx::Error> {
        let sql = "INSERT INTO head_syncs (repo, head_sha, subject, base_sha, touched, state, updated_at)
             VALUES ($1, $2, $3, $5, NULL, 'open', $4)
             ON CONFLICT (repo, head_sha, subject) DO UPDATE SET base_sha = excluded.base_sha, touched = NULL,
                 state = 'open', updated_at = excluded.updated_at
             WHERE head_syncs.base_sha <> excluded.base_sha OR head_syncs.state <> 'open'";
        self.sync_and_mark(s, sql, &[Bind::Text(base_sha)], false).await
    }

    /// The subject read its head against `base_sha`: it touches `touched` bundles, and every run
    /// of them exists.
    pub async fn set_head_sync(&self, s: Subject<'_>, base_sha: &str, touched: u64) -> Result<(), sqlx::Error> {
        let sql = "INSERT INTO head_syncs (repo, head_sha, subject, base_sha, touched, state, updated_at)
             VALUES ($1, $2, $3, $5, $6, 'open', $4)
             ON CONFLICT (repo, head_sha, subject) DO UPDATE SET base_sha = excluded.base_sha,
                 touched = excluded.touched, state = 'open', updated_at = excluded.updated_at";
        self.sync_and_mark(s, sql, &[Bind::Text(base_sha), Bind::Int(touched as i64)], true).await?;
        Ok(())
    }

    /// The subject no longer has its head to merge (closed, destroyed), or its read of it gave
    /// up (`failed`). The check is marked either way (a retry after a failure marks it now).
    pub async fn end_head_sync(&self, s: Subject<'_>, failed: bool) -> Result<bool, sqlx::Error> {
        let state = if failed { "failed" } else { "closed" };
        let sql = "UPDATE head_syncs SET state = $5, updated_at = $4
             WHERE repo = $1 AND head_sha = $2 AND subject = $3 AND state <> $5";
        self.sync_and_mark(s, sql, &[Bind::Text(state)], true).await
    }

    /// The heads the subject has open (`failed`: only those it is still reading).
    pub async fn open_heads_of(&self, repo: &str, subject: u64, failed: bool) -> Result<Vec<String>, sqlx::Error> {
        let which = if failed { "touched IS NULL" } else { "1 = 1" };
        sqlx::query_scalar::<_, String>(&format!(
            "SELECT head_sha FROM head_syncs WHERE repo = $1 AND subject = $2 AND state = 'open' AND {which}"
        ))
        .bind(repo)
        .bind(subject as i64)
        .fetch_all(&self.pool)
        .await
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
