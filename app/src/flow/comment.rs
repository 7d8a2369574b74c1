//! The sticky PR comment: one per pull request, one row per bundle at the current head, edited
//! in place on every change — never a new comment per push. Found again by its marker when the
//! database lost its id.

use super::{Ctx, JobError};
use crate::github::Installation;
use crate::render::{MAX_COMMENT, fit};
use crate::store::gate_runs::{GateRun, RunKind, RunState};
use evaluators::report::{Comparison, Report};
use serde_json::{Value, json};

/// The first line of the comment: how evalgate recognises its own comment.
pub const MARKER: &str = "<!-- evalgate:sticky-comment -->";

fn row(ctx: &Ctx, run: &GateRun) -> Value {
    let report: Option<Report> = run.report.as_deref().and_then(|r| match serde_json::from_str(r) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(run = %run.id, error = %e, "a stored report does not read");
            None
        }
    });
    let state = match (run.state, run.conclusion.as_deref()) {
        (RunState::Completed, Some("success")) if run.override_by.is_some() => format!(
            "✅ overridden by @{}: {}",
            run.override_by.as_deref().unwrap_or_default(),
            run.override_reason.as_deref().unwrap_or_default().replace('|', "\\|")
        ),
        (RunState::Completed, Some("success")) => "✅ passed".to_owned(),
        (RunState::Completed, Some("failure")) => "❌ failed".to_owned(),
        (RunState::Completed, Some("action_required")) if run.kind == RunKind::Added => {
            "⏸ new bundle, awaiting approval".to_owned()
        }
        (RunState::Completed, Some("action_required")) if run.kind == RunKind::Removed => {
            "⏸ removed, awaiting approval".to_owned()
        }
        (RunState::Completed, Some("action_required")) => "⚠️ incomplete".to_owned(),
        (RunState::Completed, Some("neutral")) => "removal approved".to_owned(),
        (RunState::Completed, Some(other)) => other.to_owned(),
        (RunState::Completed, None) => "completed".to_owned(),
        (RunState::Cancelled, _) => "cancelled".to_owned(),
        (RunState::AwaitingApproval, _) => "⏸ awaiting approval (fork)".to_owned(),
        (RunState::AwaitingPreRegistration, _) => "⏸ awaiting pre-registration".to_owned(),
        (RunState::Queued, _) => "⏳ queued".to_owned(),
        (RunState::InProgress, _) => "⏳ running".to_owned(),
    };
    let pct = |v: Option<f64>| v.map(|x| format!("{:.1}%", x * 100.0)).unwrap_or_else(|| "–".into());
    let (rates, regressions, fixes) = match &report {
        Some(r) if r.comparison == Comparison::HeadOnly => {
            (format!("new: {}", pct(Some(r.head.pass_rate))), "n/a".into(), "n/a".into())
        }
        Some(r) => (
            format!("{} → {}", pct(r.base.as_ref().map(|b| b.pass_rate)), pct(Some(r.head.pass_rate))),
            r.regressions.len().to_string(),
            r.fixes.len().to_string(),
        ),
        None => ("–".into(), "–".into(), "–".into()),
    };
    let url = run.state.is_final().then(|| ctx.details_url(&run.id));
    json!({ "bundle": run.bundle, "state": state, "pass_rates": rates, "regressions": regressions, "fixes": fixes, "url": url })
}

pub async fn update(ctx: &Ctx, gh: &Installation, repo: &str, number: u64) -> Result<(), JobError> {
    let lock = ctx.comment_lock(repo, number);
    let _guard = lock.lock().await;
    let Some(pr) = ctx.store.pr(repo, number).await? else { return Ok(()) };
    let Some(body) = render(ctx, repo, number, &pr.head_sha).await? else { return Ok(()) };
    if let Some(id) = pr.comment_id.filter(|id| *id > 0) {
        match gh.update_comment(repo, id as u64, &body).await {
            Ok(()) => return Ok(()),
            // Deleted by someone: post it again below.
            Err(e) if e.status() == Some(http::StatusCode::NOT_FOUND) => {
                ctx.store.release_comment_id(repo, number).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !ctx.store.claim_comment(repo, number).await? {
        // Another worker (maybe on another replica) is posting it: edit its comment instead.
        for _ in 0..CLAIM_WAITS {
            tokio::time::sleep(CLAIM_WAIT).await;
            if let Some(id) = ctx.store.pr(repo, number).await?.and_then(|p| p.comment_id).filter(|id| *id > 0) {
                // Rendered again: the state may have moved while waiting.
                let body = render(ctx, repo, number, &pr.head_sha).await?.unwrap_or(body);
                gh.update_comment(repo, id as u64, &body).await?;
                return Ok(());
            }
        }
        // That worker died mid-post: adopt what it posted, or post it.
    }
    match post(gh, repo, number, &body).await {
        Ok(id) => {
            ctx.store.set_comment_id(repo, number, id).await?;
            Ok(())
        }
        Err(e) => {
            ctx.store.release_comment(repo, number).await?;
            Err(e)
        }
    }
}

/// The comment's text from the runs at `head`, or `None` when there are none yet.
async fn render(ctx: &Ctx, repo: &str, number: u64, head: &str) -> Result<Option<String>, JobError> {
    let runs = ctx.store.gate_runs_at(repo, number, head).await?;
    if runs.is_empty() {
        return Ok(None);
    }
    let rows: Vec<Value> = runs.iter().map(|r| row(ctx, r)).collect();
    let short = head.get(..12).unwrap_or(head);
    let body = ctx
        .templates
        .markdown("pr-comment", &json!({ "rows": rows, "head": short }))
        .map_err(|e| JobError::Fatal(format!("{e:#}")))?;
    Ok(Some(fit(&body, MAX_COMMENT, None)))
}

/// How long a worker waits for another one posting the sticky comment.
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_millis(250);
const CLAIM_WAITS: usize = 40;

/// Edits evalgate's existing comment (found by its marker) or posts a new one.
async fn post(gh: &Installation, repo: &str, number: u64, body: &str) -> Result<u64, JobError> {
    let existing = gh.comments(repo, number).await?.into_iter().find(|c| {
        c.user.as_ref().is_some_and(|u| u.kind == "Bot") && c.body.as_deref().is_some_and(|b| b.starts_with(MARKER))
    });
    Ok(match existing {
        Some(c) => {
            gh.update_comment(repo, c.id, body).await?;
            c.id
        }
        None => gh.create_comment(repo, number, body).await?,
    })
}
