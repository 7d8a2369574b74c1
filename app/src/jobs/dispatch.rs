//! The dispatcher: a claimed job to the handler of its kind — a delivery's event to `flow`
//! (pull requests, checks, merge groups), `review` (comments) or the installation records; a
//! gate job to `flow::gate`; a pins job to `pins`. The one module that knows every handler.

use super::{Ctx, JobError};
use crate::flow::{aggregate, checks, gate, merge_group, pr};
use crate::store::jobs::{Job, JobKind};
use crate::webhook::{self, Event};
use std::sync::Arc;

/// Runs one claimed job to its end.
pub async fn run_job(ctx: &Arc<Ctx>, job: &Job) -> Result<(), JobError> {
    match job.kind {
        JobKind::Delivery => {
            let id = job.payload.get("delivery_id").and_then(|v| v.as_str()).unwrap_or_default();
            let Some((event, payload)) = ctx.store.delivery(id).await? else {
                return Err(JobError::Fatal(format!("delivery {id} is not stored")));
            };
            let event = webhook::parse_event(&event, payload.as_bytes()).map_err(|e| JobError::Fatal(e.to_string()))?;
            let span = tracing::info_span!(
                "delivery",
                delivery = id,
                repo = event.repo().map(|r| r.as_str()).unwrap_or(""),
                pr = event.pr_number()
            );
            tracing::Instrument::instrument(handle_event(ctx, event), span).await
        }
        JobKind::Gate => {
            let id = job.payload.get("gate_run").and_then(|v| v.as_str()).unwrap_or_default();
            gate::run(ctx, id).await
        }
        JobKind::Pins => {
            let weekly = job.payload.get("weekly").and_then(|v| v.as_bool()).unwrap_or(false);
            crate::pins::run(ctx, weekly).await
        }
    }
}

/// When a job gave up for good: a gate run's check must not stay open or, worse, look passed.
/// Nor may the `evalgate` check of a head whose read gave up wait forever: it fails.
pub async fn gave_up(ctx: &Arc<Ctx>, job: &Job, error: &str) {
    match job.kind {
        JobKind::Gate => {
            let id = job.payload.get("gate_run").and_then(|v| v.as_str()).unwrap_or_default();
            if let Err(e) = gate::fail_for_good(ctx, id, error).await {
                tracing::error!(gate_run = id, error = %e, "could not mark the check run failed");
            }
        }
        JobKind::Delivery => {
            if let Err(e) = read_gave_up(ctx, job).await {
                tracing::error!(error = %e, "could not mark the `evalgate` check failed");
            }
        }
        JobKind::Pins => {}
    }
}

/// A delivery that may have been reading a head gave up: a pull request's sync (from its
/// events, a check's re-run, a comment) or a merge group's checks. Every head its subject was
/// still reading fails — the head the sync began on, whichever the event named.
async fn read_gave_up(ctx: &Arc<Ctx>, job: &Job) -> Result<(), JobError> {
    let id = job.payload.get("delivery_id").and_then(|v| v.as_str()).unwrap_or_default();
    let Some((event, payload)) = ctx.store.delivery(id).await? else { return Ok(()) };
    let Ok(event) = webhook::parse_event(&event, payload.as_bytes()) else { return Ok(()) };
    let Some(repo) = event.repo().cloned() else { return Ok(()) };
    let installation = match &event {
        Event::PullRequest { action: crate::webhook::events::PrAction::Closed, .. } => return Ok(()),
        Event::PullRequest { installation, .. }
        | Event::CheckRun { installation, .. }
        | Event::CheckSuite { installation, .. }
        | Event::PrComment { installation, .. }
        | Event::MergeGroup { installation, .. } => *installation,
        _ => return Ok(()),
    };
    let subjects: Vec<u64> = match &event {
        Event::MergeGroup { .. } => vec![crate::store::merge_groups::MERGE_GROUP],
        Event::CheckRun { pull_requests, .. } | Event::CheckSuite { pull_requests, .. } => pull_requests.clone(),
        _ => event.pr_number().into_iter().collect(),
    };
    for subject in subjects {
        aggregate::end_subject(ctx, installation, repo.as_str(), subject, true).await?;
    }
    Ok(())
}

async fn handle_event(ctx: &Arc<Ctx>, event: Event) -> Result<(), JobError> {
    match event {
        Event::PullRequest { repo, number, action: crate::webhook::events::PrAction::Closed, .. } => {
            pr::close(ctx, repo.as_str(), number).await
        }
        Event::PullRequest { installation, repo, number, action, sender, .. } => {
            let editor = (action == crate::webhook::events::PrAction::Edited).then_some(sender.as_str());
            pr::sync(ctx, installation, repo.as_str(), number, editor).await
        }
        Event::CheckRun {
            installation,
            repo,
            check_run_id,
            name,
            head_sha,
            pull_requests,
            requested_action,
            sender,
        } => {
            // A merge group's check: its "Re-run" evaluates the group again.
            if let Some(group) = ctx.store.merge_group(repo.as_str(), &head_sha).await? {
                return merge_group::rerun(ctx, group, Some(&name)).await;
            }
            let numbers = pr::numbers_for(ctx, installation, repo.as_str(), &head_sha, &pull_requests).await?;
            match requested_action.as_deref() {
                Some(checks::RUN_EVALS) => {
                    for n in numbers {
                        pr::approve_fork(ctx, installation, repo.as_str(), n, &head_sha, &sender).await?;
                    }
                }
                Some(other) => tracing::info!(action = other, check_run_id, "unknown requested action ignored"),
                None => {
                    for n in numbers {
                        pr::rerun(ctx, installation, repo.as_str(), n, &head_sha, Some(&name)).await?;
                    }
                }
            }
            Ok(())
        }
        Event::CheckSuite { installation, repo, head_sha, pull_requests, .. } => {
            if let Some(group) = ctx.store.merge_group(repo.as_str(), &head_sha).await? {
                return merge_group::rerun(ctx, group, None).await;
            }
            for n in pr::numbers_for(ctx, installation, repo.as_str(), &head_sha, &pull_requests).await? {
                pr::rerun(ctx, installation, repo.as_str(), n, &head_sha, None).await?;
            }
            Ok(())
        }
        Event::PrComment {
            installation,
            repo,
            number,
            comment_id,
            body,
            previous_body,
            author,
            author_is_bot,
            sender,
        } => {
            let comment = crate::review::Comment {
                installation,
                repo: repo.as_str(),
                number,
                id: comment_id,
                body: &body,
                previous: previous_body.as_deref(),
                comment_author: &author,
                author: &sender,
                author_is_bot,
            };
            crate::review::on_comment(ctx, comment).await
        }
        Event::MergeGroup { installation, repo, action, head_sha, base_sha, head_ref } => {
            let group = crate::store::merge_groups::MergeGroup {
                repo: repo.0,
                head_sha,
                base_sha,
                head_ref,
                installation_id: installation,
                destroyed: false,
            };
            match action {
                crate::webhook::events::MergeGroupAction::ChecksRequested => {
                    merge_group::checks_requested(ctx, group).await
                }
                crate::webhook::events::MergeGroupAction::Destroyed => merge_group::destroyed(ctx, group).await,
            }
        }
        Event::Installation { installation, added, removed } => {
            for r in added {
                ctx.store.remember_repository(r.as_str(), installation).await?;
            }
            for r in removed {
                ctx.store.forget_repository(r.as_str()).await?;
            }
            Ok(())
        }
        Event::Ping | Event::Ignored(_) => Ok(()),
    }
}
