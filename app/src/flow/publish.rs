//! Brings GitHub in line with the database, as bors' refresh does. A decision about a gate run
//! (decided, cancelled, overridden, approved, failed for good) is committed with its audit entry
//! first (`Store::decide`); this publisher then makes the run's check run show it — status,
//! conclusion, title, summary, annotations — and refreshes the sticky comment, retried with
//! backoff until GitHub matches. A GitHub failure after the commit only delays what GitHub shows:
//! it never loses a decision, and never leaves a check `in_progress` once the decision exists.
//! On start-up the first pass publishes whatever an earlier process left pending.

use super::checks::{self, bundle_check};
use super::{Ctx, JobError};
use crate::store::gate_runs::{Publication, RunState};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How long a claimed publication is this replica's before another may take it.
const LEASE_MS: i64 = 60_000;
/// How long an idle publisher waits before looking again (a decision wakes it sooner).
const IDLE_POLL: Duration = Duration::from_secs(2);
/// The longest wait between two attempts of one publication.
const MAX_BACKOFF_MS: i64 = 10 * 60 * 1000;

/// Runs until `stop` says so: publishes pending decisions one at a time.
pub async fn run(ctx: Arc<Ctx>, stop: tokio::sync::watch::Receiver<bool>) {
    let owner = format!("publisher-{}", &crate::store::new_id()[..12]);
    // The start-up sweep: whatever an earlier process decided and did not publish goes now.
    match ctx.store.publications_due_now().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(pending = n, "publishing decisions left pending"),
        Err(e) => tracing::warn!(error = %e, "cannot read pending publications"),
    }
    loop {
        if *stop.borrow() {
            return;
        }
        match ctx.store.claim_publication(&owner, LEASE_MS).await {
            Ok(Some(p)) => publish_claimed(&ctx, &owner, p).await,
            Ok(None) => {
                let _ = tokio::time::timeout(IDLE_POLL, ctx.publish_wake.notified()).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim a publication");
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }
}

async fn publish_claimed(ctx: &Arc<Ctx>, owner: &str, p: Publication) {
    let span = tracing::info_span!("publish", repo = %p.run.repo, pr = p.run.pr_number, bundle = %p.run.bundle,
        head = %p.run.head_sha, version = p.version);
    let outcome = tracing::Instrument::instrument(publish(ctx, &p), span).await;
    let id = &p.run.id;
    let result = match outcome {
        Ok(()) => ctx.store.published(id, owner, p.version).await,
        Err(e) => {
            let backoff = (2_000i64 << p.attempts.clamp(0, 20)).min(MAX_BACKOFF_MS);
            let jitter = fastrand::i64(0..=backoff / 4);
            tracing::warn!(error = %e, attempts = p.attempts + 1, "publishing a decision failed; it is tried again");
            ctx.store.publish_failed(id, owner, crate::store::now_ms() + backoff + jitter, &e.to_string()).await
        }
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "recording a publication failed; its lease runs out and it is tried again");
    }
}

/// Makes the run's check run show its decision; idempotent, so a retry after an ambiguous
/// failure (the change applied, the answer lost) only writes the same thing again.
async fn publish(ctx: &Arc<Ctx>, p: &Publication) -> Result<(), JobError> {
    let run = &p.run;
    if !run.state.is_final() {
        return Ok(()); // re-opened since (a re-run): the new evaluation will decide
    }
    let Some(pr) = ctx.store.pr(&run.repo, run.pr_number).await? else {
        return Err(JobError::Fatal(format!("pull request {}#{} is not stored", run.repo, run.pr_number)));
    };
    let gh = ctx.github.installation(pr.installation_id as u64)?;
    let conclusion = match run.state {
        RunState::Cancelled => "cancelled".to_owned(),
        _ => run.conclusion.clone().unwrap_or_else(|| "failure".to_owned()),
    };
    let title = run.title.clone().unwrap_or_else(|| conclusion.clone());
    let summary = run.summary.clone().unwrap_or_default();
    let details = ctx.details_url(&run.id);
    let out = checks::output(&title, &summary, Some(&details));
    let body = json!({ "status": "completed", "conclusion": conclusion, "details_url": details,
        "completed_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "external_id": run.id, "output": out });
    let id = match p.check_run_id {
        Some(id) => id,
        // A run cancelled before it had a check run has nothing on GitHub to cancel; looking it
        // up by name could find the newer run's.
        None if run.state == RunState::Cancelled => return Ok(()),
        None => {
            let id =
                checks::ensure(ctx, &gh, &run.repo, &run.head_sha, &bundle_check(&run.bundle), body.clone()).await?;
            ctx.store.set_run_check(&run.id, id).await?;
            id
        }
    };
    let annotations: Vec<Value> =
        p.annotations.as_deref().and_then(|a| serde_json::from_str(a).ok()).unwrap_or_default();
    if annotations.is_empty() {
        checks::update(&gh, &run.repo, id, &body).await?;
    } else {
        checks::complete_with_annotations(&gh, &run.repo, id, &conclusion, out, annotations).await?;
    }
    tracing::info!(conclusion = %conclusion, "decision published");
    super::comment::update(ctx, &gh, &run.repo, run.pr_number).await
}
