//! The sticky PR comment: one per pull request, one row per bundle at the current head, edited
//! in place on every change — never a new comment per push. Found again by its marker when the
//! database lost its id.

use super::{Ctx, JobError};
use crate::github::Installation;
use crate::render::{MAX_COMMENT, fit};
use crate::store::gate_runs::{GateRun, RunState};
use serde_json::{Value, json};

/// The first line of the comment: how evalgate recognises its own comment.
pub const MARKER: &str = "<!-- evalgate:sticky-comment -->";

fn row(ctx: &Ctx, run: &GateRun) -> Value {
    let report: Option<Value> = run.report.as_deref().and_then(|r| serde_json::from_str(r).ok());
    let state = match (run.state, run.conclusion.as_deref()) {
        (RunState::Completed, Some("success")) if run.override_by.is_some() => format!(
            "✅ overridden by @{}: {}",
            run.override_by.as_deref().unwrap_or_default(),
            run.override_reason.as_deref().unwrap_or_default().replace('|', "\\|")
        ),
        (RunState::Completed, Some("success")) => "✅ passed".to_owned(),
        (RunState::Completed, Some("failure")) => "❌ failed".to_owned(),
        (RunState::Completed, Some("action_required")) => "⚠️ incomplete".to_owned(),
        (RunState::Completed, Some(other)) => other.to_owned(),
        (RunState::Completed, None) => "completed".to_owned(),
        (RunState::Cancelled, _) => "cancelled".to_owned(),
        (RunState::AwaitingApproval, _) => "⏸ awaiting approval (fork)".to_owned(),
        (RunState::AwaitingPreRegistration, _) => "⏸ awaiting pre-registration".to_owned(),
        (RunState::Queued, _) => "⏳ queued".to_owned(),
        (RunState::InProgress, _) => "⏳ running".to_owned(),
    };
    let pct = |v: &Value| v.as_f64().map(|x| format!("{:.1}%", x * 100.0)).unwrap_or_else(|| "–".into());
    let (rates, regressions, fixes) = match &report {
        Some(r) => (
            format!("{} → {}", pct(&r["base"]["pass_rate"]), pct(&r["head"]["pass_rate"])),
            r["regressions"].as_array().map_or(0, Vec::len).to_string(),
            r["fixes"].as_array().map_or(0, Vec::len).to_string(),
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
    let runs = ctx.store.gate_runs_at(repo, number, &pr.head_sha).await?;
    if runs.is_empty() {
        return Ok(());
    }
    let rows: Vec<Value> = runs.iter().map(|r| row(ctx, r)).collect();
    let head = pr.head_sha.get(..12).unwrap_or(&pr.head_sha);
    let body = ctx
        .templates
        .markdown("pr-comment", &json!({ "rows": rows, "head": head }))
        .map_err(|e| JobError::Fatal(format!("{e:#}")))?;
    let body = fit(&body, MAX_COMMENT, None);
    if let Some(id) = pr.comment_id {
        match gh.update_comment(repo, id as u64, &body).await {
            Ok(()) => return Ok(()),
            // Deleted by someone: post it again below.
            Err(e) if e.status() == Some(http::StatusCode::NOT_FOUND) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let existing = gh
        .comments(repo, number)
        .await?
        .into_iter()
        .find(|c| c.user.kind == "Bot" && c.body.as_deref().is_some_and(|b| b.starts_with(MARKER)));
    let id = match existing {
        Some(c) => {
            gh.update_comment(repo, c.id, &body).await?;
            c.id
        }
        None => gh.create_comment(repo, number, &body).await?,
    };
    ctx.store.set_comment_id(repo, number, id).await?;
    Ok(())
}
