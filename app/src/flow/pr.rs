//! A pull request's checks: on every opened / synchronize / reopened / edited /
//! ready_for_review, the pre-registration check from the body, the golden-set check when the
//! measure itself changes, and one gate run per touched bundle — queued, waiting for the
//! pre-registration, or (from a fork) waiting for a writer's approval.

use super::checks::{self, GOLDEN_SET, PRE_REGISTRATION, RUN_EVALS, bundle_check};
use super::gate::{self, Side};
use super::touched::{self, Touched};
use super::{Ctx, JobError};
use crate::audit::Kind;
use crate::github::Installation;
use crate::github::tree::CommitTree;
use crate::store::gate_runs::{NewGateRun, RunState};
use crate::store::jobs::JobKind;
use evaluators::gate::{Key, fmt_value};
use evaluators::golden_diff;
use evaluators::preregistration::{self, PreRegistration, Problem};
use serde_json::{Value, json};
use std::sync::Arc;

/// The pull requests a check payload is about: GitHub lists them, except for forks, whose
/// head evalgate looks up in its own map.
pub async fn numbers_for(ctx: &Ctx, repo: &str, head_sha: &str, listed: &[u64]) -> Result<Vec<u64>, JobError> {
    if !listed.is_empty() {
        return Ok(listed.to_vec());
    }
    Ok(ctx.store.prs_with_head(repo, head_sha).await?.into_iter().map(|p| p.number as u64).collect())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Frozen thresholds as stored: `[["max_regression_rate", 0.01], …]`.
pub fn thresholds_json(p: &PreRegistration) -> String {
    let list: Vec<(&str, f64)> = preregistration::thresholds_of(p).into_iter().map(|(k, v)| (k.as_str(), v)).collect();
    json!(list).to_string()
}

pub fn parse_thresholds(s: &str) -> Vec<(Key, f64)> {
    serde_json::from_str::<Vec<(String, f64)>>(s)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| Some((Key::parse(&k)?, v)))
        .collect()
}

pub async fn sync(ctx: &Arc<Ctx>, installation: u64, repo: &str, number: u64) -> Result<(), JobError> {
    let gh = ctx.github.installation(installation)?;
    let pr = gh.pull_request(repo, number).await?;
    if pr.state != "open" {
        return Ok(());
    }
    let (head, base) = (pr.head.sha.clone(), pr.base.sha.clone());
    let fork = pr.is_fork();
    ctx.store.upsert_pr(repo, number, installation, &head, &base, fork).await?;
    ctx.store.remember_repository(repo, installation).await?;
    cancel_older(ctx, &gh, repo, number, &head).await?;

    let files = gh.pull_request_files(repo, number).await?;
    let changed: Vec<String> =
        files.iter().flat_map(|f| std::iter::once(f.filename.clone()).chain(f.previous_filename.clone())).collect();
    let base_tree = CommitTree::fetch(&gh, repo, &base).await?;
    let head_tree = CommitTree::fetch(&gh, repo, &head).await?;
    let touched = touched::find(&gh, &base_tree, &head_tree, &changed).await?;
    tracing::info!(pr = number, head = %head, touched = touched.len(), "pull request synchronised");
    if touched.is_empty() {
        return Ok(());
    }

    let prereg = preregistration::parse(pr.body.as_deref());
    let row = ctx.store.pr(repo, number).await?;
    let mut frozen = row.and_then(|r| r.thresholds);
    if let (Ok(p), None) = (&prereg, &frozen) {
        // The first evaluation of this pull request starts now: its thresholds are the ones in force.
        let now_frozen = ctx.store.freeze_thresholds(repo, number, &thresholds_json(p)).await?;
        let data = json!({ "head_sha": head, "thresholds": now_frozen, "what_changed": p.what_changed,
            "expected_to_move": p.expected_to_move });
        ctx.store.audit(repo, Kind::PreRegistration, &pr.user.login, Some(number), data).await?;
        frozen = Some(now_frozen);
    }
    record_threshold_edit(ctx, repo, number, &pr.user.login, &prereg, frozen.as_deref()).await?;
    post_pre_registration(ctx, &gh, repo, &head, &prereg, frozen.as_deref()).await?;

    let mut sides = Vec::new();
    for t in &touched {
        let h = match &t.head {
            Some(m) => Some(gate::load_at(&gh, &head_tree, m).await?),
            None => None,
        };
        let b = match &t.base {
            Some(m) => Some(gate::load_at(&gh, &base_tree, m).await?),
            None => None,
        };
        sides.push((t, b, h));
    }
    post_golden_set(ctx, &gh, repo, number, &head, &sides).await?;

    for (t, _, _) in &sides {
        let Some(manifest) = &t.head else { continue }; // removed: nothing left to evaluate
        let state = if prereg.is_err() {
            RunState::AwaitingPreRegistration
        } else if fork {
            RunState::AwaitingApproval
        } else {
            RunState::Queued
        };
        let base_manifest = t.base.as_ref().map(|m| m.as_str().to_owned());
        let new = NewGateRun {
            repo,
            pr_number: number,
            head_sha: &head,
            base_sha: &base,
            bundle: &t.name,
            manifest: manifest.as_str(),
            base_manifest: base_manifest.as_deref(),
            state,
        };
        let (run, created) = ctx.store.gate_run_for(&new).await?;
        let waiting_for_body = run.state == RunState::AwaitingPreRegistration;
        // A run queued by an earlier attempt of this job that failed before its check run was
        // posted is started again.
        let unposted = run.state == RunState::Queued
            && ctx.store.check_run_id(repo, &head, &bundle_check(&t.name)).await?.is_none();
        if !(created || unposted || (waiting_for_body && prereg.is_ok())) {
            continue;
        }
        if !created {
            ctx.store.reopen_run(&run.id, state).await?;
        }
        start(ctx, &gh, repo, &head, t, &run.id, state).await?;
    }
    super::comment::update(ctx, &gh, repo, number).await?;
    Ok(())
}

/// Puts a gate run's check run in the state `state` asks for, and queues the evaluation.
async fn start(
    ctx: &Ctx,
    gh: &Installation,
    repo: &str,
    head: &str,
    t: &Touched,
    run_id: &str,
    state: RunState,
) -> Result<(), JobError> {
    let name = bundle_check(&t.name);
    let details = ctx.details_url(run_id);
    let body = match state {
        RunState::AwaitingPreRegistration => json!({
            "status": "queued", "external_id": run_id, "details_url": details,
            "output": checks::output("waiting for the pre-registration",
                "evalgate evaluates this bundle once the pull request body holds a valid pre-registration: see the `evalgate/pre-registration` check.", None),
        }),
        RunState::AwaitingApproval => json!({
            "status": "completed", "conclusion": "action_required", "external_id": run_id, "details_url": details,
            "completed_at": now(),
            "output": checks::output("fork pull request: awaiting approval",
                "This pull request comes from a fork, so evalgate spends no model budget on it until a user with write access presses **Run evals** or comments `/evalgate run`.", None),
            "actions": [{ "label": "Run evals", "description": "Evaluate this fork's bundle", "identifier": RUN_EVALS }],
        }),
        _ => json!({
            "status": "queued", "external_id": run_id, "details_url": details,
            "output": checks::output("queued", "The evaluation is queued.", None),
        }),
    };
    match ctx.store.check_run_id(repo, head, &name).await? {
        Some(id) if state != RunState::Queued => checks::update(gh, repo, id, &body).await?,
        // New, or queued after a wait or a re-run: a fresh check run, as GitHub expects.
        _ => {
            checks::create(ctx, gh, repo, head, &name, body).await?;
        }
    }
    if state == RunState::Queued {
        ctx.store.enqueue(JobKind::Gate, &json!({ "gate_run": run_id })).await?;
        ctx.wake.notify_waiters();
    }
    Ok(())
}

/// A body edit after the first evaluation that changes the thresholds: recorded (once per
/// distinct edit) and shown; the frozen thresholds stand until `/evalgate accept-thresholds`.
async fn record_threshold_edit(
    ctx: &Ctx,
    repo: &str,
    number: u64,
    author: &str,
    prereg: &Result<PreRegistration, Vec<Problem>>,
    frozen: Option<&str>,
) -> Result<(), JobError> {
    let (Ok(p), Some(frozen)) = (prereg, frozen) else { return Ok(()) };
    let current = thresholds_json(p);
    let pending = (parse_thresholds(frozen) != parse_thresholds(&current)).then_some(current.as_str());
    if ctx.store.set_pending_thresholds(repo, number, pending).await? {
        if let Some(now) = pending {
            let data = json!({ "was": frozen, "now": now });
            ctx.store.audit(repo, Kind::ThresholdEdit, author, Some(number), data).await?;
        }
    }
    Ok(())
}

/// The text of stored thresholds for people: "`max_regression_rate` 1.0%, …".
fn thresholds_text(stored: &str) -> String {
    let list: Vec<String> =
        parse_thresholds(stored).into_iter().map(|(k, v)| format!("`{k}` {}", fmt_value(k, v))).collect();
    if list.is_empty() { "none".to_owned() } else { list.join(", ") }
}

/// The title of an approved golden-set change.
pub fn approved_title(waiting_title: &str, actor: &str) -> String {
    format!("approved by @{actor}: {}", waiting_title.strip_prefix("awaiting approval: ").unwrap_or(waiting_title))
}

/// The body of an `evalgate/golden-set` check run.
pub fn golden_body(title: &str, summary: &str, conclusion: &str) -> Value {
    json!({ "status": "completed", "conclusion": conclusion, "completed_at": now(),
        "output": checks::output(title, summary, None) })
}

/// A newer head cancels the evaluations of older ones.
async fn cancel_older(ctx: &Ctx, gh: &Installation, repo: &str, number: u64, head: &str) -> Result<(), JobError> {
    for run in ctx.store.open_runs_not_at(repo, number, head).await? {
        if !ctx.store.set_run_state(&run.id, RunState::Cancelled).await? {
            continue;
        }
        tracing::info!(bundle = %run.bundle, old_head = %run.head_sha, "superseded by a newer push");
        if let Some(id) = ctx.store.check_run_id(repo, &run.head_sha, &bundle_check(&run.bundle)).await? {
            let body = json!({
                "status": "completed", "conclusion": "cancelled", "completed_at": now(),
                "output": checks::output("cancelled: superseded by a newer push",
                    &format!("A newer push (`{}`) replaced this head; its evaluation is in the newer check run.", short(head)), None),
            });
            checks::update(gh, repo, id, &body).await?;
        }
    }
    Ok(())
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

async fn post_pre_registration(
    ctx: &Ctx,
    gh: &Installation,
    repo: &str,
    head: &str,
    prereg: &Result<PreRegistration, Vec<Problem>>,
    frozen: Option<&str>,
) -> Result<(), JobError> {
    let keys = Key::ALL.map(|k| format!("`{}`", k.as_str())).join(", ");
    let (conclusion, title, data) = match prereg {
        Ok(p) => {
            let current = thresholds_json(p);
            let edited = frozen.filter(|f| parse_thresholds(f) != parse_thresholds(&current));
            let shown: Vec<Value> = preregistration::thresholds_of(p)
                .into_iter()
                .map(|(k, v)| json!({ "key": k.as_str(), "value": fmt_value(k, v) }))
                .collect();
            let frozen_text = edited.map(|f| {
                format!(
                    "{} — edited after results were posted: was {}, now {}; the original stands until a reviewer runs `/evalgate accept-thresholds`",
                    thresholds_text(f),
                    thresholds_text(f),
                    thresholds_text(&current)
                )
            });
            let title = if edited.is_some() {
                "pre-registration found; thresholds edited after the first evaluation".to_owned()
            } else {
                format!("pre-registration found: {} threshold(s)", shown.len())
            };
            (
                "success",
                title,
                json!({ "ok": true, "thresholds": shown, "frozen": frozen_text, "problems": [], "keys": keys, "template": "" }),
            )
        }
        Err(problems) => {
            let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            let title = format!("pre-registration missing or invalid: {}", list.first().cloned().unwrap_or_default());
            (
                "failure",
                title,
                json!({ "ok": false, "thresholds": [], "frozen": null, "problems": list, "keys": keys, "template": preregistration::TEMPLATE.trim_end() }),
            )
        }
    };
    let summary = ctx.templates.markdown("pre-registration", &data).map_err(|e| JobError::Fatal(format!("{e:#}")))?;
    let body = json!({ "status": "completed", "conclusion": conclusion, "completed_at": now(), "output": checks::output(&title, &summary, None) });
    let id = checks::ensure(ctx, gh, repo, head, PRE_REGISTRATION, body.clone()).await?;
    checks::update(gh, repo, id, &body).await
}

/// `evalgate/golden-set`, when the pull request changes a golden set or a `gate:` block.
async fn post_golden_set(
    ctx: &Ctx,
    gh: &Installation,
    repo: &str,
    number: u64,
    head: &str,
    sides: &[(&Touched, Option<Side>, Option<Side>)],
) -> Result<(), JobError> {
    let mut bundles = Vec::new();
    for (t, base, head_side) in sides {
        let (Some(Ok(h)), b) = (head_side, base) else { continue };
        let b = match b {
            Some(Ok(b)) => Some(b),
            _ => None,
        };
        let (golden_changed, diff, gate) = match b {
            Some(b) => {
                let changed = b.bundle.eval.golden_set_sha256 != h.bundle.eval.golden_set_sha256;
                let diff = golden_diff::diff_cases(&b.golden, &h.golden);
                let gate = golden_diff::diff_gate(&b.bundle.eval.gate, &h.bundle.eval.gate);
                (changed, diff, gate)
            }
            None => {
                // A new bundle: every case and every gate key is new.
                let empty = evaluators::bundle::GateConfig { critical_tags: vec![], ..Default::default() };
                let diff = golden_diff::GoldenDiff {
                    added: h.golden.cases.iter().map(|c| c.id.clone()).collect(),
                    ..Default::default()
                };
                (true, diff, golden_diff::diff_gate(&empty, &h.bundle.eval.gate))
            }
        };
        if !golden_changed && gate.is_empty() {
            continue;
        }
        let ids = |v: &[evaluators::ids::CaseId]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        bundles.push(json!({
            "bundle": t.name,
            "golden": golden_changed,
            "golden_set": h.bundle.eval.golden_set.as_str(),
            "added": ids(&diff.added), "removed": ids(&diff.removed), "changed": ids(&diff.changed),
            "added_count": diff.added.len(), "removed_count": diff.removed.len(), "changed_count": diff.changed.len(),
            "gate": gate.iter().map(|g| json!({
                "key": g.key,
                "base": g.base.clone().unwrap_or_else(|| "(unset)".into()),
                "head": g.head.clone().unwrap_or_else(|| "(unset)".into()),
            })).collect::<Vec<_>>(),
        }));
    }
    if bundles.is_empty() {
        return Ok(());
    }
    let total = |k: &str| bundles.iter().map(|b| b[k].as_u64().unwrap_or(0)).sum::<u64>();
    let gate_changes: usize = bundles.iter().map(|b| b["gate"].as_array().map_or(0, Vec::len)).sum();
    let title = format!(
        "awaiting approval: {} added, {} removed, {} changed case(s), {} gate change(s)",
        total("added_count"),
        total("removed_count"),
        total("changed_count"),
        gate_changes
    );
    let summary = ctx
        .templates
        .markdown("golden-set", &json!({ "bundles": bundles }))
        .map_err(|e| JobError::Fatal(format!("{e:#}")))?;
    // What exactly is approved: the listed change, whatever head carries it.
    let fingerprint = evaluators::ids::Sha256::digest(summary.as_bytes()).hex();
    ctx.store.set_golden_change(repo, head, &fingerprint, &title, &summary).await?;
    let approved = ctx.store.approved_by(repo, number, "golden", &fingerprint).await?;
    let body = match &approved {
        Some(actor) => golden_body(&approved_title(&title, actor), &summary, "success"),
        None => golden_body(&title, &summary, "action_required"),
    };
    let id = checks::ensure(ctx, gh, repo, head, GOLDEN_SET, body.clone()).await?;
    checks::update(gh, repo, id, &body).await?;
    // An approval that landed while this was posted must not be undone by it.
    if approved.is_none() {
        if let Some(actor) = ctx.store.approved_by(repo, number, "golden", &fingerprint).await? {
            checks::update(gh, repo, id, &golden_body(&approved_title(&title, &actor), &summary, "success")).await?;
        }
    }
    Ok(())
}

/// "Run evals" on a fork's check run: a writer's approval starts the evaluation.
pub async fn approve_fork(
    ctx: &Arc<Ctx>,
    installation: u64,
    repo: &str,
    number: u64,
    head_sha: &str,
    sender: &str,
) -> Result<(), JobError> {
    let gh = ctx.github.installation(installation)?;
    let permission = gh.permission(repo, sender).await?;
    let data = json!({ "approved": "fork evaluation", "head_sha": head_sha, "accepted": permission.can_write() });
    ctx.store.audit(repo, Kind::Approval, sender, Some(number), data).await?;
    if !permission.can_write() {
        tracing::info!(sender, "approval refused: no write permission");
        gh.create_comment(
            repo,
            number,
            &format!("@{sender}: only users with write, maintain or admin permission on this repository can run evals on a fork's pull request."),
        )
        .await?;
        return Ok(());
    }
    for run in ctx.store.gate_runs_at(repo, number, head_sha).await? {
        if run.state != RunState::AwaitingApproval {
            continue;
        }
        ctx.store.reopen_run(&run.id, RunState::Queued).await?;
        let t = Touched { name: run.bundle.clone(), head: None, base: None };
        tracing::info!(sender, bundle = %run.bundle, "fork evaluation approved");
        start(ctx, &gh, repo, head_sha, &t, &run.id, RunState::Queued).await?;
    }
    Ok(())
}

/// A check run's or suite's "Re-run": evaluate again (results already cached are reused).
pub async fn rerun(
    ctx: &Arc<Ctx>,
    installation: u64,
    repo: &str,
    number: u64,
    head_sha: &str,
    name: Option<&str>,
) -> Result<(), JobError> {
    let gh = ctx.github.installation(installation)?;
    let Some(pr) = ctx.store.pr(repo, number).await? else {
        return sync(ctx, installation, repo, number).await;
    };
    if pr.head_sha != head_sha {
        tracing::info!("re-run of an old head ignored");
        return Ok(());
    }
    let runs = ctx.store.gate_runs_at(repo, number, head_sha).await?;
    let wanted: Vec<_> = runs.iter().filter(|r| name.is_none_or(|n| n == bundle_check(&r.bundle))).collect();
    if wanted.is_empty() {
        // The pre-registration or golden-set check, or a suite: look at the pull request again.
        return sync(ctx, installation, repo, number).await;
    }
    for run in wanted {
        if !(run.state.is_final() || run.state == RunState::AwaitingApproval) {
            continue;
        }
        let state = if pr.is_fork && run.state == RunState::AwaitingApproval {
            RunState::AwaitingApproval
        } else {
            RunState::Queued
        };
        ctx.store.reopen_run(&run.id, state).await?;
        let t = Touched { name: run.bundle.clone(), head: None, base: None };
        start(ctx, &gh, repo, head_sha, &t, &run.id, state).await?;
    }
    Ok(())
}
