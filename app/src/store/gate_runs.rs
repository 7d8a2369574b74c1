//! `gate_runs`: one evaluation of one bundle at one head of a pull request, from queued to a
//! conclusion, with its report. A newer head cancels the older head's runs.

use super::audit::{Appended, MAX_RACES, NewEntry, append, raced};
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

/// What a gate run compares (SPEC, "Bundle identity").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// Head against its base, paired by manifest path (or by the PR's rename).
    Paired,
    /// A bundle the pull request adds: head alone, held for a reviewer's approval.
    Added,
    /// A bundle the pull request removes: nothing to evaluate, held for a reviewer's approval.
    Removed,
    /// Its name is also another manifest's: a failed check naming both, nothing evaluated.
    Duplicate,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Paired => "paired",
            RunKind::Added => "added",
            RunKind::Removed => "removed",
            RunKind::Duplicate => "duplicate",
        }
    }

    pub fn parse(s: &str) -> Option<RunKind> {
        Some(match s {
            "paired" => RunKind::Paired,
            "added" => RunKind::Added,
            "removed" => RunKind::Removed,
            "duplicate" => RunKind::Duplicate,
            _ => return None,
        })
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
    pub kind: RunKind,
    pub state: RunState,
    pub conclusion: Option<String>,
    pub title: Option<String>,
    pub report: Option<String>,
    pub summary: Option<String>,
    /// Set by `/evalgate override`: who passed the gate by hand, and why.
    pub override_by: Option<String>,
    pub override_reason: Option<String>,
}

impl GateRun {
    /// The pull request this run is about; `None` for a merge group's run.
    pub fn pr(&self) -> Option<u64> {
        (self.pr_number != super::merge_groups::MERGE_GROUP).then_some(self.pr_number)
    }
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
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

const COLUMNS: &str = "id, repo, pr_number, head_sha, base_sha, bundle, manifest, base_manifest, kind, state, conclusion, title, report, summary, override_by, override_reason";

/// A stored run; an unknown kind or state can only come from a newer evalgate, and is an error
/// rather than a guess that could let a run be decided on words this version cannot read.
fn from_row(r: Row) -> Result<GateRun, sqlx::Error> {
    let unknown = |what: &str, v: &str| sqlx::Error::Decode(format!("gate run {}: unknown {what} `{v}`", r.0).into());
    let kind = RunKind::parse(&r.8).ok_or_else(|| unknown("kind", &r.8))?;
    let state = RunState::parse(&r.9).ok_or_else(|| unknown("state", &r.9))?;
    Ok(GateRun {
        id: r.0,
        repo: r.1,
        pr_number: r.2 as u64,
        head_sha: r.3,
        base_sha: r.4,
        bundle: r.5,
        manifest: r.6,
        base_manifest: r.7,
        kind,
        state,
        conclusion: r.10,
        title: r.11,
        report: r.12,
        summary: r.13,
        override_by: r.14,
        override_reason: r.15,
    })
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
    pub kind: RunKind,
    pub state: RunState,
}

/// Which runs a decision may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Any run not cancelled (a newer head's cancellation always wins).
    NotCancelled,
    /// Only a run not yet final (a cancellation).
    Open,
    /// Only a completed run (an override, an approval's new conclusion).
    Completed,
}

impl Guard {
    fn sql(self) -> &'static str {
        match self {
            Guard::NotCancelled => "state <> 'cancelled'",
            Guard::Open => "state NOT IN ('completed', 'cancelled')",
            Guard::Completed => "state = 'completed'",
        }
    }
}

/// A decision about a gate run: its new state and what GitHub must show, with the audit entry
/// that records it. Both commit together or not at all; GitHub is told afterwards, from the
/// database ([`Store::claim_publication`]).
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    pub run_id: &'a str,
    pub guard: Guard,
    /// `Completed` or `Cancelled`.
    pub state: RunState,
    pub conclusion: &'a str,
    pub title: &'a str,
    pub summary: &'a str,
    /// `None` keeps the stored report.
    pub report: Option<&'a str>,
    pub annotations: Option<&'a str>,
    /// `/evalgate override`: who passed the gate, and why.
    pub override_by: Option<(&'a str, &'a str)>,
    pub audit: Option<NewEntry<'a>>,
}

/// A run whose decision GitHub does not show yet, claimed for publishing.
#[derive(Debug, Clone)]
pub struct Publication {
    pub run: GateRun,
    pub version: i64,
    /// The check run created for this run, once there is one.
    pub check_run_id: Option<u64>,
    pub annotations: Option<String>,
    pub attempts: i64,
}

impl Store {
    /// Commits `d` and its audit entry in one transaction; `false` when the guard refused it
    /// (then nothing, the audit entry included, was written).
    pub async fn decide(&self, d: &Decision<'_>) -> Result<bool, sqlx::Error> {
        for _ in 0..MAX_RACES {
            let mut tx = self.pool.begin().await?;
            // The run's row first: its write lock serialises deciders before the chain is read.
            let n = sqlx::query(&format!(
                "UPDATE gate_runs SET state = $1, conclusion = $2, title = $3, summary = $4,
                     report = COALESCE($5, report), annotations = COALESCE($6, annotations),
                     override_by = COALESCE($7, override_by), override_reason = COALESCE($8, override_reason),
                     decision_version = decision_version + 1, publish_after = 0, publish_attempts = 0,
                     publish_error = NULL, updated_at = $9
                 WHERE id = $10 AND {}",
                d.guard.sql()
            ))
            .bind(d.state.as_str())
            .bind(d.conclusion)
            .bind(d.title)
            .bind(d.summary)
            .bind(d.report)
            .bind(d.annotations)
            .bind(d.override_by.map(|(by, _)| by))
            .bind(d.override_by.map(|(_, why)| why))
            .bind(now_ms())
            .bind(d.run_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            if let Some(entry) = &d.audit {
                if let Appended::Raced = append(&mut tx, entry).await? {
                    tx.rollback().await?;
                    continue;
                }
            }
            tx.commit().await?;
            return Ok(true);
        }
        Err(raced())
    }

    /// Claims one run whose decision is not yet on GitHub (its retry time reached, no other
    /// publisher's lease live), for `lease_ms`.
    pub async fn claim_publication(&self, owner: &str, lease_ms: i64) -> Result<Option<Publication>, sqlx::Error> {
        let now = self.lease_clock(now_ms()).await?;
        let candidates = sqlx::query_as::<_, (String, i64)>(
            "SELECT id, decision_version FROM gate_runs
             WHERE decision_version > published_version AND publish_after <= $1 AND publish_lease < $1
             ORDER BY updated_at LIMIT 8",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        for (id, version) in candidates {
            let won = sqlx::query(
                "UPDATE gate_runs SET publish_owner = $1, publish_lease = $2
                 WHERE id = $3 AND decision_version = $4 AND publish_lease < $5",
            )
            .bind(owner)
            .bind(now + lease_ms)
            .bind(&id)
            .bind(version)
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected()
                == 1;
            if !won {
                continue;
            }
            let row = sqlx::query_as::<_, (Option<String>, i64, Option<i64>)>(
                "SELECT annotations, publish_attempts, check_run_id FROM gate_runs WHERE id = $1",
            )
            .bind(&id)
            .fetch_one(&self.pool)
            .await?;
            if let Some(run) = self.gate_run(&id).await? {
                let check_run_id = row.2.map(|c| c as u64);
                return Ok(Some(Publication { run, version, annotations: row.0, attempts: row.1, check_run_id }));
            }
        }
        Ok(None)
    }

    /// Keeps the claim of run `id`'s publication for another `lease_ms`; `false` when it is no
    /// longer this owner's: then the publication must stop.
    pub async fn renew_publication(&self, id: &str, owner: &str, lease_ms: i64) -> Result<bool, sqlx::Error> {
        let now = self.lease_clock(now_ms()).await?;
        let n = sqlx::query("UPDATE gate_runs SET publish_lease = $1 WHERE id = $2 AND publish_owner = $3")
            .bind(now + lease_ms)
            .bind(id)
            .bind(owner)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// GitHub shows `version` of the run's decision now; the lease is given up.
    pub async fn published(&self, id: &str, owner: &str, version: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE gate_runs SET publish_lease = 0, publish_owner = NULL, publish_error = NULL,
                 published_version = CASE WHEN published_version < $1 THEN $1 ELSE published_version END
             WHERE id = $2 AND publish_owner = $3",
        )
        .bind(version)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Publishing failed: tried again after `backoff_ms` (on the lease clock); the lease is given up.
    pub async fn publish_failed(&self, id: &str, owner: &str, backoff_ms: i64, error: &str) -> Result<(), sqlx::Error> {
        let retry_at_ms = self.lease_clock(now_ms()).await? + backoff_ms;
        sqlx::query(
            "UPDATE gate_runs SET publish_lease = 0, publish_owner = NULL, publish_after = $1,
                 publish_attempts = publish_attempts + 1, publish_error = $2
             WHERE id = $3 AND publish_owner = $4",
        )
        .bind(retry_at_ms)
        .bind(error)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// At start-up: every pending publication is due now, its backoff and any lease of a process
    /// that died forgotten (a lease of a live replica only costs that replica one idempotent
    /// write done twice).
    pub async fn publications_due_now(&self) -> Result<u64, sqlx::Error> {
        let leases =
            if self.backend == super::Backend::Sqlite { ", publish_lease = 0, publish_owner = NULL" } else { "" };
        sqlx::query(&format!(
            "UPDATE gate_runs SET publish_after = 0{leases} WHERE decision_version > published_version"
        ))
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected())
    }

    /// Records the check run created for this run.
    pub async fn set_run_check(&self, id: &str, check_run_id: u64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE gate_runs SET check_run_id = $1 WHERE id = $2")
            .bind(check_run_id as i64)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The check run created for this run, if one was.
    pub async fn run_check(&self, id: &str) -> Result<Option<u64>, sqlx::Error> {
        sqlx::query_scalar::<_, Option<i64>>("SELECT check_run_id FROM gate_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map(|v| v.flatten().map(|c| c as u64))
    }
}

impl Store {
    /// The gate run of this bundle (by manifest) for this (base, head) pair, created when new
    /// (`true` when created).
    pub async fn gate_run_for(&self, n: &NewGateRun<'_>) -> Result<(GateRun, bool), sqlx::Error> {
        let now = now_ms();
        let created = sqlx::query(
            "INSERT INTO gate_runs (id, repo, pr_number, head_sha, base_sha, bundle, manifest, base_manifest, kind, state, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
             ON CONFLICT (repo, pr_number, head_sha, base_sha, manifest) DO NOTHING",
        )
        .bind(new_id())
        .bind(n.repo)
        .bind(n.pr_number as i64)
        .bind(n.head_sha)
        .bind(n.base_sha)
        .bind(n.bundle)
        .bind(n.manifest)
        .bind(n.base_manifest)
        .bind(n.kind.as_str())
        .bind(n.state.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        let run = sqlx::query_as::<_, Row>(&format!(
            "SELECT {COLUMNS} FROM gate_runs WHERE repo = $1 AND pr_number = $2 AND head_sha = $3 AND base_sha = $4 AND manifest = $5"
        ))
        .bind(n.repo)
        .bind(n.pr_number as i64)
        .bind(n.head_sha)
        .bind(n.base_sha)
        .bind(n.manifest)
        .fetch_one(&self.pool)
        .await?;
        Ok((from_row(run)?, created))
    }

    pub async fn gate_run(&self, id: &str) -> Result<Option<GateRun>, sqlx::Error> {
        sqlx::query_as::<_, Row>(&format!("SELECT {COLUMNS} FROM gate_runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .and_then(|r| r.map(from_row).transpose())
    }

    /// The runs of one pull request at one head, against the base recorded for the pull
    /// request (the current merge base), by bundle name and manifest.
    pub async fn gate_runs_at(&self, repo: &str, pr: u64, head_sha: &str) -> Result<Vec<GateRun>, sqlx::Error> {
        self.runs_of_pr(
            "head_sha = $3 AND base_sha = (SELECT base_sha FROM pull_requests p WHERE p.repo = $1 AND p.number = $2) ORDER BY bundle, manifest",
            repo,
            pr,
            head_sha,
        )
        .await
    }

    /// Runs of the pull request not at (this head, this base) that are not finished: a newer
    /// push, or a new base, cancels them.
    pub async fn open_runs_not_at(
        &self,
        repo: &str,
        pr: u64,
        head_sha: &str,
        base_sha: &str,
    ) -> Result<Vec<GateRun>, sqlx::Error> {
        sqlx::query_as::<_, Row>(&format!(
            "SELECT {COLUMNS} FROM gate_runs WHERE repo = $1 AND pr_number = $2
             AND (head_sha <> $3 OR base_sha <> $4) AND state NOT IN ('completed', 'cancelled')"
        ))
        .bind(repo)
        .bind(pr as i64)
        .bind(head_sha)
        .bind(base_sha)
        .fetch_all(&self.pool)
        .await
        .and_then(|rows| rows.into_iter().map(from_row).collect())
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
        .and_then(|rows| rows.into_iter().map(from_row).collect())
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
        .and_then(|rows| rows.into_iter().map(from_row).collect())
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

    /// A run starts on check run `check_run_id`: when `reopen`, what decided it before, an
    /// override included, no longer stands (a re-run, an approval, a pre-registration that
    /// arrived); when it starts `Queued`, its evaluation job is queued. One transaction, so no
    /// failure can leave a run queued with nothing to run it, or running on a check run it does
    /// not know.
    ///
    /// Only from state `from` (what the caller saw): `false` when another delivery started,
    /// cancelled or decided the run meanwhile — then nothing is written. A run's gate jobs share
    /// a serial key, so two never evaluate one run at once.
    pub async fn start_run(
        &self,
        id: &str,
        from: RunState,
        to: RunState,
        check_run_id: u64,
        reopen: bool,
    ) -> Result<bool, sqlx::Error> {
        let now = self.lease_clock(now_ms()).await?;
        let mut tx = self.pool.begin().await?;
        let reset =
            if reopen { ", conclusion = NULL, title = NULL, override_by = NULL, override_reason = NULL" } else { "" };
        let n = sqlx::query(&format!(
            "UPDATE gate_runs SET state = $1, check_run_id = $2, updated_at = $3{reset} WHERE id = $4 AND state = $5"
        ))
        .bind(to.as_str())
        .bind(check_run_id as i64)
        .bind(now_ms())
        .bind(id)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if to == RunState::Queued {
            let payload = serde_json::json!({ "gate_run": id });
            let key = format!("gate/{id}");
            super::jobs::insert(&mut *tx, super::jobs::JobKind::Gate, &payload, Some(&key), now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Every run of one subject (a pull request's number, or `MERGE_GROUP`) at (head, base):
    /// what the `evalgate` check on that head sums up for it.
    pub async fn runs_at_pair(
        &self,
        repo: &str,
        subject: u64,
        head_sha: &str,
        base_sha: &str,
    ) -> Result<Vec<GateRun>, sqlx::Error> {
        sqlx::query_as::<_, Row>(&format!(
            "SELECT {COLUMNS} FROM gate_runs WHERE repo = $1 AND pr_number = $2 AND head_sha = $3 AND base_sha = $4
             ORDER BY bundle, manifest"
        ))
        .bind(repo)
        .bind(subject as i64)
        .bind(head_sha)
        .bind(base_sha)
        .fetch_all(&self.pool)
        .await
        .and_then(|rows| rows.into_iter().map(from_row).collect())
    }

    /// Pull-request runs of `bundle` a person passed or approved (overridden, or a new or
    /// removed bundle approved), newest first: what may carry to a merge group.
    pub async fn decided_by_a_person(&self, repo: &str, bundle: &str) -> Result<Vec<GateRun>, sqlx::Error> {
        sqlx::query_as::<_, Row>(&format!(
            "SELECT {COLUMNS} FROM gate_runs WHERE repo = $1 AND bundle = $2 AND pr_number <> 0 AND state = 'completed'
             AND (override_by IS NOT NULL OR (kind IN ('added', 'removed') AND conclusion IN ('success', 'neutral')))
             ORDER BY updated_at DESC LIMIT 100"
        ))
        .bind(repo)
        .bind(bundle)
        .fetch_all(&self.pool)
        .await
        .and_then(|rows| rows.into_iter().map(from_row).collect())
    }

    pub async fn run_state(&self, id: &str) -> Result<Option<RunState>, sqlx::Error> {
        sqlx::query_scalar::<_, String>("SELECT state FROM gate_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map(|s| s.and_then(|s| RunState::parse(&s)))
    }
}
