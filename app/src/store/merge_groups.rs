//! `merge_groups`: the merge-queue groups evalgate was asked to check, so that a gate job, the
//! publisher and a re-run find a group's installation and base from its head alone. A group's
//! gate runs carry pull-request number 0 ([`MERGE_GROUP`]).

use super::{Store, now_ms};

/// The `pr_number` of a merge group's gate runs: GitHub numbers pull requests from 1.
pub const MERGE_GROUP: u64 = 0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeGroup {
    pub repo: String,
    pub head_sha: String,
    pub base_sha: String,
    pub head_ref: String,
    pub installation_id: u64,
    pub destroyed: bool,
}

impl Store {
    pub async fn upsert_merge_group(&self, g: &MergeGroup) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO merge_groups (repo, head_sha, base_sha, head_ref, installation_id, state, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (repo, head_sha) DO UPDATE SET base_sha = excluded.base_sha, head_ref = excluded.head_ref,
                 installation_id = excluded.installation_id, state = excluded.state",
        )
        .bind(&g.repo)
        .bind(&g.head_sha)
        .bind(&g.base_sha)
        .bind(&g.head_ref)
        .bind(g.installation_id as i64)
        .bind(if g.destroyed { "destroyed" } else { "open" })
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn merge_group(&self, repo: &str, head_sha: &str) -> Result<Option<MergeGroup>, sqlx::Error> {
        sqlx::query_as::<_, (String, String, String, String, i64, String)>(
            "SELECT repo, head_sha, base_sha, head_ref, installation_id, state FROM merge_groups
             WHERE repo = $1 AND head_sha = $2",
        )
        .bind(repo)
        .bind(head_sha)
        .fetch_optional(&self.pool)
        .await
        .map(|r| {
            r.map(|(repo, head_sha, base_sha, head_ref, installation, state)| MergeGroup {
                repo,
                head_sha,
                base_sha,
                head_ref,
                installation_id: installation as u64,
                destroyed: state == "destroyed",
            })
        })
    }
}
