//! Brings GitHub in line with the database, as bors' refresh does. A decision about a gate run
//! (decided, cancelled, overridden, approved, failed for good) is committed with its audit entry
//! first (`Store::decide`); this publisher then makes the run's check run show it — status,
//! conclusion, title, summary, annotations — and refreshes the sticky comment, retried with
//! backoff until GitHub matches. A GitHub failure after the commit only delays what GitHub shows:
//! it never loses a decision, and never leaves a check `in_progress` once the decision exists.
//! On start-up the first pass publishes whatever an earlier process left pending.

use super::{Ctx, JobError};
use crate::flow::aggregate;
use crate::flow::checks::{self, bundle_check};
use crate::github::check::CheckBody;
use crate::store::check_runs::CheckPublication;
use crate::store::gate_runs::{Publication, RunState};
use crate::store::merge_groups::MERGE_GROUP;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How long a claimed publication is this replica's before another may take it.
const LEASE_MS: i64 = 60_000;
/// How long an idle publisher waits before looking again (a decision wakes it sooner).
const IDLE_POLL: Duration = Duration::from_secs(2);
/// Publications in flight at once.
const PARALLEL: usize = 4;
/// The longest wait between two attempts of one publication.
const MAX_BACKOFF_MS: i64 = 10 * 60 * 1000;

/// Runs until `stop` says so, then publishes what is due and ends: pending decisions, up to
/// [`PARALLEL`] at once.
pub async fn run(ctx: Arc<Ctx>, stop: tokio::sync::watch::Receiver<bool>) {
    let owner = format!("publisher-{}", &crate::store::new_id()[..12]);
    // The start-up sweep: whatever an earlier process decided and did not publish goes now.
    match (ctx.store.publications_due_now().await, ctx.store.check_publications_due_now().await) {
        (Ok(runs), Ok(checks)) if runs + checks > 0 => {
            tracing::info!(pending = runs + checks, "publishing decisions left pending")
        }
        (Ok(_), Ok(_)) => {}
        (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "cannot read pending publications"),
    }
    // Publications run side by side (each is one check run), so one that GitHub keeps refusing
    // — the client retries it for a while — never holds up the others.
    let slots = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut seq = 0u64;
    // Claims since the publisher last found nothing to do: on the way out, it stops once a pass
    // after every publication in flight ended finds nothing more (a published run marks its
    // head's `evalgate` check, which is published too).
    let mut claimed_since_idle = 0usize;
    loop {
        let stopping = *stop.borrow();
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        // Each claim has an owner of its own, so one slot's late answer can never settle
        // another slot's claim.
        seq += 1;
        let claim_owner = format!("{owner}-{seq}");
        let claimed = match ctx.store.claim_publication(&claim_owner, LEASE_MS).await {
            Ok(Some(p)) => Ok(Some(Claimed::Run(Box::new(p)))),
            Ok(None) => ctx.store.claim_check_publication(&claim_owner, LEASE_MS).await.map(|c| c.map(Claimed::Check)),
            Err(e) => Err(e),
        };
        match claimed {
            Ok(Some(claim)) => {
                claimed_since_idle += 1;
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    match claim {
                        Claimed::Run(p) => publish_claimed(&ctx, &claim_owner, *p).await,
                        Claimed::Check(p) => publish_check_claimed(&ctx, &claim_owner, p).await,
                    }
                    drop(permit);
                });
            }
            // Stopping: what the last jobs decided is published before the process ends (the
            // server bounds how long that may take; what is left, the next start publishes).
            Ok(None) if stopping => {
                drop(permit);
                let in_flight = PARALLEL - slots.available_permits();
                let Ok(all) = slots.clone().acquire_many_owned(PARALLEL as u32).await else { return };
                drop(all);
                if std::mem::take(&mut claimed_since_idle) == 0 && in_flight == 0 {
                    return;
                }
            }
            Ok(None) => {
                drop(permit);
                claimed_since_idle = 0;
                let _ = tokio::time::timeout(IDLE_POLL, ctx.publish_wake.notified()).await;
            }
            Err(_) if stopping => return,
            Err(e) => {
                drop(permit);
                tracing::warn!(error = %e, "cannot claim a publication");
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }
}

/// Runs `work` while keeping its claim: the lease is renewed every third of its length, and
/// `work` is dropped — it writes nothing more to GitHub — the moment the claim is found to be
/// another's. `None` then.
async fn holding<T, R, F>(work: impl Future<Output = T>, renew: R) -> Option<T>
where
    R: Fn() -> F,
    F: Future<Output = Result<bool, sqlx::Error>>,
{
    let keep = async {
        let mut renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis((LEASE_MS / 3) as u64)).await;
            match renew().await {
                Ok(true) => renewed = tokio::time::Instant::now(),
                Ok(false) => return,
                // The database is unreachable: keep going only while the lease surely holds.
                Err(e) => {
                    tracing::warn!(error = %e, "cannot renew a publication's lease");
                    if renewed.elapsed() >= Duration::from_millis((LEASE_MS * 2 / 3) as u64) {
                        return;
                    }
                }
            }
        }
    };
    tokio::select! {
        out = work => Some(out),
        () = keep => {
            tracing::warn!("a publication's lease was taken over; it stops here");
            None
        }
    }
}

enum Claimed {
    Run(Box<Publication>),
    Check(CheckPublication),
}

/// The wait before attempt `attempts + 1` of a publication: doubling, capped, with jitter.
fn backoff(attempts: i64) -> i64 {
    let backoff = (2_000i64 << attempts.clamp(0, 20)).min(MAX_BACKOFF_MS);
    backoff + fastrand::i64(0..=backoff / 4)
}

async fn publish_check_claimed(ctx: &Arc<Ctx>, owner: &str, p: CheckPublication) {
    let span = tracing::info_span!("publish", repo = %p.repo, head = %p.head_sha, check = %p.name, version = p.version);
    let work = tracing::Instrument::instrument(publish_check(ctx, &p), span);
    let Some(outcome) = holding(work, || ctx.store.renew_check_publication(&p, owner, LEASE_MS)).await else {
        return;
    };
    let result = match outcome {
        Ok(body) => ctx.store.check_published(&p, owner, &body).await,
        Err(e) => {
            tracing::warn!(error = %e, check = %p.name, attempts = p.attempts + 1, "publishing a check failed; it is tried again");
            ctx.store.check_publish_failed(&p, owner, backoff(p.attempts), &e.to_string()).await
        }
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "recording a publication failed; its lease runs out and it is tried again");
    }
}

/// Creates the check run from its body the first time (one write, never a create and then the
/// same update), updates it after; a create whose answer was lost is found, not repeated. The
/// `evalgate` check's body is worked out here, under the claim, from the database as it is now.
/// A body GitHub already shows is not written again. Gives the body GitHub shows.
async fn publish_check(ctx: &Arc<Ctx>, p: &CheckPublication) -> Result<String, JobError> {
    let body: CheckBody = if p.name == aggregate::EVALGATE {
        match aggregate::compute(ctx, &p.repo, &p.head_sha).await? {
            Some(body) => body,
            None => return Ok(p.body.clone()), // no subject read this head: nothing to show
        }
    } else {
        serde_json::from_str(&p.body).map_err(|e| JobError::Fatal(format!("stored check body: {e}")))?
    };
    let json = serde_json::to_string(&body).map_err(|e| JobError::Fatal(format!("check body: {e}")))?;
    let known = ctx.store.check_run_id(&p.repo, &p.head_sha, &p.name).await?;
    if known.is_some() && p.published_body.as_deref() == Some(json.as_str()) {
        return Ok(json);
    }
    let gh = ctx.github.installation(p.installation_id)?;
    let github = body.to_github();
    match known {
        Some(id) => checks::update(&gh, &p.repo, id, &github).await?,
        None => {
            checks::create(ctx, &gh, &p.repo, &p.head_sha, &p.name, github).await?;
        }
    }
    // The aggregate follows every check it sums up.
    if p.name != aggregate::EVALGATE {
        aggregate::refresh(ctx, p.installation_id, &p.repo, &p.head_sha).await?;
    }
    Ok(json)
}

async fn publish_claimed(ctx: &Arc<Ctx>, owner: &str, p: Publication) {
    let span = tracing::info_span!("publish", repo = %p.run.repo, pr = p.run.pr_number, bundle = %p.run.bundle,
        head = %p.run.head_sha, version = p.version);
    let id = &p.run.id;
    let work = tracing::Instrument::instrument(publish(ctx, &p), span);
    let Some(outcome) = holding(work, || ctx.store.renew_publication(id, owner, LEASE_MS)).await else {
        return;
    };
    let result = match outcome {
        Ok(()) => ctx.store.published(id, owner, p.version).await,
        Err(e) => {
            tracing::warn!(error = %e, attempts = p.attempts + 1, "publishing a decision failed; it is tried again");
            ctx.store.publish_failed(id, owner, backoff(p.attempts), &e.to_string()).await
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
    let installation = super::installation_of(ctx, run).await?;
    let gh = ctx.github.installation(installation)?;
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
        // up by name could find the newer run's. The aggregate still follows.
        None if run.state == RunState::Cancelled => {
            return aggregate::refresh(ctx, installation, &run.repo, &run.head_sha).await;
        }
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
    aggregate::refresh(ctx, installation, &run.repo, &run.head_sha).await?;
    if run.pr_number == MERGE_GROUP {
        return Ok(()); // a merge group has no conversation to comment on
    }
    crate::flow::comment::update(ctx, &gh, &run.repo, run.pr_number).await
}
