//! The merge queue. On `merge_group` `checks_requested` the group's head (what the base branch
//! becomes) is compared with its `base_sha` (what it is): `evalgate` and one check per touched
//! bundle on the group's head, under the base's instrument, with no pre-registration. Results
//! are content-addressed, so a group whose bundles equal a pull request's costs no model call;
//! a person's override or approval on a pull request carries to a group whose bundle content
//! (and instrument) equals that pull request head's. `destroyed` cancels what still runs.

use super::pr;
use super::touched;
use super::{Ctx, JobError, aggregate};
use crate::audit::Kind;
use crate::github::tree::CommitTree;
use crate::store::gate_runs::{GateRun, Guard, NewGateRun, RunKind, RunState};
use crate::store::head_syncs::Subject;
use crate::store::merge_groups::{MERGE_GROUP, MergeGroup};
use evaluators::report::Report;
use serde_json::json;
use std::sync::Arc;

pub async fn checks_requested(ctx: &Arc<Ctx>, group: MergeGroup) -> Result<(), JobError> {
    let (repo, head, base) = (group.repo.as_str(), group.head_sha.as_str(), group.base_sha.as_str());
    ctx.store.upsert_merge_group(&group).await?;
    ctx.store.remember_repository(repo, group.installation_id).await?;
    let subject = Subject { repo, head_sha: head, subject: MERGE_GROUP, installation_id: group.installation_id };
    aggregate::begin(ctx, subject, base).await?;
    let gh = ctx.github.installation(group.installation_id)?;
    let base_tree = CommitTree::fetch(&gh, repo, base).await?;
    let head_tree = CommitTree::fetch(&gh, repo, head).await?;
    let files = base_tree.changed_files(&head_tree);
    let touched = touched::find(&gh, &base_tree, &head_tree, &files).await?;
    tracing::info!(head, base, touched = touched.len(), "merge group read");
    for t in &touched {
        let base_manifest = t.base.as_ref().map(|m| m.as_str().to_owned());
        let new = NewGateRun {
            repo,
            pr_number: MERGE_GROUP,
            head_sha: head,
            base_sha: base,
            bundle: &t.name,
            manifest: t.manifest.as_str(),
            base_manifest: base_manifest.as_deref(),
            kind: t.kind(),
            state: RunState::Queued,
        };
        let (run, created) = ctx.store.gate_run_for(&new).await?;
        match run.kind {
            RunKind::Duplicate => {
                pr::duplicate(ctx, &run, t.duplicate.as_deref().unwrap_or_default()).await?;
                continue;
            }
            RunKind::Removed => {
                removed(ctx, &run).await?;
                continue;
            }
            RunKind::Paired | RunKind::Added => {}
        }
        let unposted = run.state == RunState::Queued && ctx.store.run_check(&run.id).await?.is_none();
        if created || unposted {
            let previous = (!created).then_some(run.state);
            pr::start(ctx, &gh, repo, head, &t.name, &run.id, RunState::Queued, previous).await?;
        }
    }
    aggregate::read(ctx, subject, base, touched.len() as u64).await
}

/// "Re-run" on one of the group's checks (`name`), or on its suite: its finished evaluations
/// run again (from the cache where nothing changed); a destroyed group stays as it is.
pub async fn rerun(ctx: &Arc<Ctx>, group: MergeGroup, name: Option<&str>) -> Result<(), JobError> {
    if group.destroyed {
        tracing::info!(head = %group.head_sha, "re-run of a destroyed merge group ignored");
        return Ok(());
    }
    let (repo, head) = (group.repo.as_str(), group.head_sha.as_str());
    let runs = ctx.store.runs_at_pair(repo, MERGE_GROUP, head, &group.base_sha).await?;
    let wanted: Vec<&GateRun> =
        runs.iter().filter(|r| name.is_none_or(|n| n == super::checks::bundle_check(&r.bundle))).collect();
    if wanted.is_empty() {
        // `evalgate` itself, or a suite with nothing stored: read the group again.
        return checks_requested(ctx, group).await;
    }
    let gh = ctx.github.installation(group.installation_id)?;
    for run in wanted {
        if !run.state.is_final() || matches!(run.kind, RunKind::Duplicate | RunKind::Removed) {
            continue;
        }
        pr::start(ctx, &gh, repo, head, &run.bundle, &run.id, RunState::Queued, Some(run.state)).await?;
    }
    aggregate::refresh(ctx, group.installation_id, repo, head).await
}

/// The group left the queue (merged, or taken out): whatever still runs for it is cancelled.
pub async fn destroyed(ctx: &Ctx, group: MergeGroup) -> Result<(), JobError> {
    let (repo, head) = (group.repo.as_str(), group.head_sha.as_str());
    let Some(known) = ctx.store.merge_group(repo, head).await? else {
        return Ok(()); // never asked for checks: nothing runs
    };
    ctx.store.upsert_merge_group(&MergeGroup { destroyed: true, ..known.clone() }).await?;
    for run in ctx.store.runs_at_pair(repo, MERGE_GROUP, head, &known.base_sha).await? {
        if run.state.is_final() {
            continue;
        }
        let title = "cancelled: the merge group was destroyed";
        let summary = "The merge group left the queue before this evaluation finished.";
        let data = json!({ "gate_run": run.id, "bundle": run.bundle, "manifest": run.manifest, "head_sha": run.head_sha,
            "base_sha": run.base_sha, "conclusion": "cancelled", "title": title, "reason": "merge group destroyed" });
        pr::decide(
            ctx,
            &run,
            Guard::Open,
            RunState::Cancelled,
            "cancelled",
            title,
            summary,
            Some((Kind::GateDecision, "evalgate", data)),
        )
        .await?;
    }
    // Also when nothing had a check run to cancel: the group's `evalgate` follows.
    let subject = Subject { repo, head_sha: head, subject: MERGE_GROUP, installation_id: known.installation_id };
    aggregate::end(ctx, subject, false).await
}

/// A pull request's decision by a person that holds for this group's run too: the same bundle
/// (manifest), with the same content and instrument at head as the pull request's head had.
/// Gives who decided and on which pull request.
pub async fn carried(ctx: &Ctx, run: &GateRun, report: Option<&Report>) -> Result<Option<(String, u64)>, JobError> {
    for pr_run in ctx.store.decided_by_a_person(&run.repo, &run.bundle).await? {
        if pr_run.manifest != run.manifest || pr_run.kind != run.kind {
            continue;
        }
        // A compared bundle carries only an override; a new or removed one its approval.
        if run.kind == RunKind::Paired && pr_run.override_by.is_none() {
            continue;
        }
        let same_content = match (report, pr_run.report.as_deref().and_then(|r| serde_json::from_str::<Report>(r).ok()))
        {
            (Some(ours), Some(theirs)) => {
                ours.head.bundle_sha256 == theirs.head.bundle_sha256
                    && ours.golden_set_sha256 == theirs.golden_set_sha256
                    && ours.judge_sha256 == theirs.judge_sha256
            }
            // A removal has no head to compare: the same manifest removed is the same change.
            (None, _) => run.kind == RunKind::Removed,
            _ => false,
        };
        if !same_content {
            continue;
        }
        // Only a pull request that is still open at that head and base speaks for the group:
        // not a closed one, nor an older head or base of it.
        let current = ctx
            .store
            .pr(&pr_run.repo, pr_run.pr_number)
            .await?
            .is_some_and(|p| p.head_sha == pr_run.head_sha && p.base_sha == pr_run.base_sha);
        let open = ctx
            .store
            .head_syncs(&pr_run.repo, &pr_run.head_sha)
            .await?
            .iter()
            .any(|s| s.subject == pr_run.pr_number && matches!(s.read, crate::store::head_syncs::Read::Touched(_)));
        if !(current && open) {
            continue;
        }
        let who = match &pr_run.override_by {
            Some(by) => Some(by.clone()),
            None => pr::approval_at(ctx, &pr_run.repo, pr_run.pr_number, &pr_run.head_sha).await?,
        };
        if let Some(who) = who {
            return Ok(Some((who, pr_run.pr_number)));
        }
    }
    Ok(None)
}

/// A bundle the group removes: neutral when a reviewer approved that removal on its pull
/// request, waiting for a person otherwise.
async fn removed(ctx: &Ctx, run: &GateRun) -> Result<(), JobError> {
    if run.state.is_final() {
        return Ok(());
    }
    let (conclusion, title) = match carried(ctx, run, None).await? {
        Some((who, number)) => ("neutral", format!("bundle removed: removal approved by @{who} on #{number}")),
        None => ("action_required", "bundle removed: no approval of this removal on its pull request".to_owned()),
    };
    let summary = format!(
        "This merge group removes the bundle `{}` (`{}`), so there is nothing to evaluate.",
        run.bundle, run.manifest
    );
    let data = json!({ "gate_run": run.id, "bundle": run.bundle, "manifest": run.manifest, "head_sha": run.head_sha,
        "base_sha": run.base_sha, "conclusion": conclusion, "title": title });
    pr::decide(
        ctx,
        run,
        Guard::NotCancelled,
        RunState::Completed,
        conclusion,
        &title,
        &summary,
        Some((Kind::GateDecision, "evalgate", data)),
    )
    .await
}
