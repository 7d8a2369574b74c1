//! `gate_runs`: one evaluation of one bundle at one head of a pull request, from queued to a
//! conclusion, with its report. A newer head cancels the older head's runs.

use super::{Store, new_id, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// A fork's pull request: no model is called until a writer approves.
    AwaitingApproval,
    /// Waiting for a valid pre-registration before anything is evaluated.
    AwaitingPreRegistration,
    Queued,
    InProgress,
    Completed,
    Cancelled,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::AwaitingApproval => "awaiting_approval",
            RunState::AwaitingPreRegistration => "awaiting_pre_registration",
            RunState::Queued => "queued",
            RunState::InProgress => "in_progress",
            RunState::Completed => "completed",
            RunState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RunState> {
        Some(match s {
            "awaiting_approval" => RunState::AwaitingApproval,
            "awaiting_pre_registration" => RunState::AwaitingPreRegistration,
            "queued" => RunState::Queued,
            "in_progress" => RunState::InProgress,
            "completed" => RunState::Completed,
            "cancelled" => RunState::Cancelled,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        matches!(self, RunState::Completed | RunState::Cancelled)
    }
}

#[derive(Debug, Clone)]
pub struct GateRun {
    pub id: String,
    pub repo: String,
    pub pr_number: u64,
    pub head_sha: String,
    pub base_sha: String,
    pub bundle: String,
    pub manifest: String,
    pub base_manifest: Option<String>,
    pub state: RunState,
    pub conclusion: Option<String>,
    pub title: Option<String>,
    pub report: Option<String>,
    pub summary: Option<String>,
    /// Set by `/evalgate override`: who passed the gate by hand, and why.
    pub override_by: Option<String>,
    pub override_reason: Option<String>,
}

type Row = (
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

const COLUMNS: &str = "id, repo, pr_number, head_sha, base_sha, bundle, manifest, base_manifest, state, conclusion, title, report, summary, override_by, override_reason";

fn from_row(r: Row) -> GateRun {
    GateRun {
        id: r.0,
        repo: r.1,
        pr_number: r.2 as u64,
        head_sha: r.3,
        base_sha: r.4,
        bundle: r.5,
        manifest: r.6,
        base_manifest: r.7,
        // An unknown state can only come from a newer version: treat it as still open.
        state: RunState::parse(&r.8).unwrap_or(RunState::Queued),
        conclusion: r.9,
        title: r.10,
        report: r.11,
        summary: r.12,
        override_by: r.13,
        override_reason: r.14,
    }
}

/// Identifies the gate run to create or find.
pub struct NewGateRun<'a> {
    pub repo: &'a str,
    pub pr_number: u64,
    pub head_sha: &'a str,
    pub base_sha: &'a str,
    pub bundle: &'a str,
    pub manifest: &'a str,
    pub base_manifest: Option<&'a str>,
    pub state: RunState,
}

impl Store {
    /// The gate run of this bundle at this head, created when new (`true` when created).
    pub async fn gate_run_for(&self, n: &NewGateRun<'_>) -> Result<(GateRun, bool), sqlx::Error> {
        let now = now_ms();
        let created = sqlx::query(
            "INSERT INTO gate_runs (id, repo, pr_number, head_sha, base_sha, bundle, manifest, base_manifest, state, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
             ON CONFLICT (repo, pr_number, head_sha, bundle) DO NOTHING",
        )
        .bind(new_id())
        .bind(n.repo)
        .bind(n.pr_number as i64)
        .bind(n.head_sha)
        .bind(n.base_sha)
        .bind(n.bundle)
        .bind(n.manifest)
        .bind(n.base_manifest)
        .bind(n.state.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        let run = sqlx::query_as::<_, Row>(&format!(
            "SELECT {COLUMNS} FROM gate_runs WHERE repo = $1 AND pr_number = $2 AND head_sha = $3 AND bundle = $4"
        ))
        .bind(n.repo)
        .bind(n.pr_number as i64)
        .bind(n.head_sha)
        .bind(n.bundle)
        .fetch_one(&self.pool)
        .await?;
        Ok((from_row(run), created))
    }

    pub async fn gate_run(&self, id: &str) -> Result<Option<GateRun>, sqlx::Error> {
        sqlx::query_as::<_, Row>(&format!("SELECT {COLUMNS} FROM gate_runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map(|r| r.map(from_row))
    }

    /// The runs of one pull request at one head, by bundle name.
    pub async fn gate_runs_at(&self, repo: &str, pr: u64, head_sha: &str) -> Result<Vec<GateRun>, sqlx::Error> {
        self.runs_of_pr("head_sha = $3 ORDER BY bundle", repo, pr, head_sha).await
    }

    /// Runs of the pull request at other heads that are not finished: a newer push cancels them.
    pub async fn open_runs_not_at(&self, repo: &str, pr: u64, head_sha: &str) -> Result<Vec<GateRun>, sqlx::Error> {
        self.runs_of_pr("head_sha <> $3 AND state NOT IN ('completed', 'cancelled')", repo, pr, head_sha).await
    }

    /// Runs of one pull request that also meet `condition` (on `$3`, the head).
    async fn runs_of_pr(
        &self,
        condition: &str,
        repo: &str,
        pr: u64,
        head_sha: &str,
    ) -> Result<Vec<GateRun>, sqlx::Error> {
        sqlx::query_as::<_, Row>(&format!(
            "SELECT {COLUMNS} FROM gate_runs WHERE repo = $1 AND pr_number = $2 AND {condition}"
        ))
        .bind(repo)
        .bind(pr as i64)
        .bind(head_sha)
        .fetch_all(&self.pool)
        .await
        .map(|rows| rows.into_iter().map(from_row).collect())
    }

    /// The repository's runs created or last updated in `[since_ms, until_ms]`, oldest first, at
    /// most `limit` of them: what an evidence export lists. The caller asks for one more than it
    /// accepts, so it can refuse a period that is too large instead of silently cutting it.
    pub async fn gate_runs_between(
        &self,
        repo: &str,
        since_ms: i64,
        until_ms: i64,
        limit: i64,
    ) -> Result<Vec<GateRun>, sqlx::Error> {
        sqlx::query_as::<_, Row>(&format!(
            "SELECT {COLUMNS} FROM gate_runs WHERE repo = $1
             AND ((created_at >= $2 AND created_at <= $3) OR (updated_at >= $2 AND updated_at <= $3))
             ORDER BY created_at, id LIMIT $4"
        ))
        .bind(repo)
        .bind(since_ms)
        .bind(until_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map(|rows| rows.into_iter().map(from_row).collect())
    }

    /// Moves a run to `to` unless it already reached a final state; true when it moved.
    pub async fn set_run_state(&self, id: &str, to: RunState) -> Result<bool, sqlx::Error> {
        let n = sqlx::query(
            "UPDATE gate_runs SET state = $1, updated_at = $2 WHERE id = $3 AND state NOT IN ('completed', 'cancelled')",
        )
        .bind(to.as_str())
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Opens a finished run again (a reviewer's re-run).
    pub async fn reopen_run(&self, id: &str, to: RunState) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE gate_runs SET state = $1, conclusion = NULL, title = NULL, updated_at = $2 WHERE id = $3")
            .bind(to.as_str())
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn run_state(&self, id: &str) -> Result<Option<RunState>, sqlx::Error> {
        sqlx::query_scalar::<_, String>("SELECT state FROM gate_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map(|s| s.and_then(|s| RunState::parse(&s)))
    }

    /// Completes a run with its conclusion and report, unless it was cancelled meanwhile.
    pub async fn complete_run(
        &self,
        id: &str,
        conclusion: &str,
        title: &str,
        report: Option<&str>,
        summary: &str,
    ) -> Result<bool, sqlx::Error> {
        let n = sqlx::query(
            "UPDATE gate_runs SET state = 'completed', conclusion = $1, title = $2, report = $3, summary = $4, updated_at = $5
             WHERE id = $6 AND state <> 'cancelled'",
        )
        .bind(conclusion)
        .bind(title)
        .bind(report)
        .bind(summary)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}
