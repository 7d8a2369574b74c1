//! `check_runs`: the id of every check run evalgate created, by (repository, head, name), so
//! that a retried job or a restarted server updates its check run instead of posting another.

use super::Store;

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
