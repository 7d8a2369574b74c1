//! Check runs: created once per (head, name) and updated after, annotations sent in batches of
//! GitHub's 50, text kept within its 65,535 characters.

use super::{Ctx, JobError};
use crate::github::Installation;
use evaluators::diagnostic::Diagnostic;
use serde_json::{Value, json};

pub const PRE_REGISTRATION: &str = "evalgate/pre-registration";
pub const GOLDEN_SET: &str = "evalgate/golden-set";
/// The identifier of the "Run evals" button on a fork's check run.
pub const RUN_EVALS: &str = "run-evals";
/// GitHub accepts at most this many annotations per request.
pub const ANNOTATIONS_PER_REQUEST: usize = 50;

pub fn bundle_check(bundle: &str) -> String {
    format!("evalgate/{bundle}")
}

use crate::github::check::CheckBody;
pub use crate::github::check::output;

/// Keeps what check `name` on `head_sha` must show; the publisher creates or updates the check
/// run from it (once, retried until GitHub matches), so a GitHub failure only delays it.
pub async fn keep(
    ctx: &Ctx,
    installation: u64,
    repo: &str,
    head_sha: &str,
    name: &str,
    body: &CheckBody,
) -> Result<(), JobError> {
    let json = serde_json::to_string(body).map_err(|e| JobError::Fatal(format!("check body: {e}")))?;
    if ctx.store.set_check_state(repo, head_sha, name, installation, &json).await? {
        ctx.publish_wake.notify_one();
    }
    Ok(())
}

/// The id of the check run `name` on `head_sha`, creating it (queued) the first time.
pub async fn ensure(
    ctx: &Ctx,
    gh: &Installation,
    repo: &str,
    head_sha: &str,
    name: &str,
    first: Value,
) -> Result<u64, JobError> {
    if let Some(id) = ctx.store.check_run_id(repo, head_sha, name).await? {
        return Ok(id);
    }
    create(ctx, gh, repo, head_sha, name, first).await
}

/// Creates a new check run `name` on `head_sha` (a re-run gets a new one, as GitHub expects).
pub async fn create(
    ctx: &Ctx,
    gh: &Installation,
    repo: &str,
    head_sha: &str,
    name: &str,
    mut body: Value,
) -> Result<u64, JobError> {
    body["name"] = json!(name);
    body["head_sha"] = json!(head_sha);
    let id = gh.create_check_run(repo, &body).await?;
    ctx.metrics.inc(&ctx.metrics.check_runs_created);
    ctx.store.remember_check_run(repo, head_sha, name, id).await?;
    Ok(id)
}

pub async fn update(gh: &Installation, repo: &str, id: u64, body: &Value) -> Result<(), JobError> {
    gh.update_check_run(repo, id, body).await.map_err(JobError::from)
}

/// GitHub annotations for diagnostics: at file and line, whole-file problems on line 1.
pub fn annotations(diags: &[Diagnostic]) -> Vec<Value> {
    diags
        .iter()
        .map(|d| {
            let line = d.pos.map(|p| p.line.max(1)).unwrap_or(1);
            json!({
                "path": d.file,
                "start_line": line,
                "end_line": line,
                "annotation_level": "failure",
                "message": d.message.chars().take(60_000).collect::<String>(),
            })
        })
        .collect()
}

/// Completes a check run with every annotation: the first 50 with the conclusion, the rest in
/// further updates (GitHub appends them).
pub async fn complete_with_annotations(
    gh: &Installation,
    repo: &str,
    id: u64,
    conclusion: &str,
    out: Value,
    annotations: Vec<Value>,
) -> Result<(), JobError> {
    let mut batches = annotations.chunks(ANNOTATIONS_PER_REQUEST);
    let mut first_out = out.clone();
    first_out["annotations"] = json!(batches.next().unwrap_or_default());
    let body = json!({ "status": "completed", "conclusion": conclusion, "output": first_out,
        "completed_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true) });
    update(gh, repo, id, &body).await?;
    for batch in batches {
        let mut o = out.clone();
        o["annotations"] = json!(batch);
        update(gh, repo, id, &json!({ "output": o })).await?;
    }
    Ok(())
}
