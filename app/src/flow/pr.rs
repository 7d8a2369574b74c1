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
use crate::github::check::{CheckBody, Conclusion, Status};
use crate::github::tree::CommitTree;
use crate::store::audit::NewEntry;
use crate::store::gate_runs::{Decision, GateRun, Guard, RunKind};
use crate::store::gate_runs::{NewGateRun, RunState};
use crate::store::head_syncs::Subject;
use evaluators::gate::{Key, fmt_value};
use evaluators::instrument;
use evaluators::preregistration::{self, PreRegistration, Problem};
use evaluators::report::Report;
use serde_json::{Value, json};
use std::sync::Arc;

/// The pull requests a check payload is about: GitHub lists them, except for forks, whose
/// head evalgate looks up in its own map.
pub async fn numbers_for(
    ctx: &Ctx,
    installation: u64,
    repo: &str,
    head_sha: &str,
    listed: &[u64],
) -> Result<Vec<u64>, JobError> {
    if !listed.is_empty() {
        return Ok(listed.to_vec());
    }
    let known: Vec<u64> = ctx.store.prs_with_head(repo, head_sha).await?.into_iter().map(|p| p.number as u64).collect();
    if !known.is_empty() {
        return Ok(known);
    }
    // Not seen yet (a lost delivery, a fresh database): GitHub's commit → pulls lookup.
    let gh = ctx.github.installation(installation)?;
    Ok(gh.pulls_with_head(repo, head_sha).await?)
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

/// `body_editor` is who last edited the PR body, when the event says (`edited`): the
/// pre-registration and threshold-edit entries name them; otherwise the PR's author.
pub async fn sync(
    ctx: &Arc<Ctx>,
    installation: u64,
    repo: &str,
    number: u64,
    body_editor: Option<&str>,
) -> Result<(), JobError> {
    let gh = ctx.github.installation(installation)?;
    let pr = gh.pull_request(repo, number).await?;
    if pr.state != "open" {
        return Ok(());
    }
    let head = pr.head.sha.clone();
    // What is compared: the merge base of the head and the base branch, as `evalgate eval` does.
    // A result holds for this (base, head) pair only: a new base branch, or a head that merged
    // the base branch, is evaluated again.
    let base = gh.merge_base(repo, &pr.base.git_ref, &head).await?;
    // The one check to mark required exists from here, before anything is read, so it never
    // waits on nothing; a base other than the one last read makes it pending until this pair is
    // read, never the old pair's result.
    let subject = Subject { repo, head_sha: &head, subject: number, installation_id: installation };
    super::aggregate::begin(ctx, subject, &base).await?;
    let fork = pr.is_fork();
    ctx.store.upsert_pr(repo, number, installation, &head, &base, fork).await?;
    ctx.store.remember_repository(repo, installation).await?;
    cancel_older(ctx, &gh, repo, number, &head, &base).await?;

    let files = gh.pull_request_files(repo, number).await?;
    let base_tree = CommitTree::fetch(&gh, repo, &base).await?;
    let head_tree = CommitTree::fetch(&gh, repo, &head).await?;
    let touched = touched::find(&gh, &base_tree, &head_tree, &files).await?;
    tracing::info!(pr = number, head = %head, base = %base, touched = touched.len(), "pull request synchronised");
    if touched.is_empty() {
        return super::aggregate::read(ctx, subject, &base, 0).await;
    }

    let prereg = preregistration::parse(pr.body.as_deref());
    let row = ctx.store.pr(repo, number).await?;
    let mut frozen = row.and_then(|r| r.thresholds);
    if let (Ok(p), None) = (&prereg, &frozen) {
        // The first evaluation of this pull request starts now: its thresholds are the ones in force.
        let thresholds = thresholds_json(p);
        let data = json!({ "head_sha": head, "thresholds": thresholds, "what_changed": p.what_changed,
            "expected_to_move": p.expected_to_move });
        let entry = NewEntry {
            repo,
            kind: Kind::PreRegistration,
            actor: body_editor.unwrap_or(&pr.user.login),
            pr_number: Some(number),
            data,
        };
        frozen = Some(ctx.store.freeze_thresholds(repo, number, &thresholds, &entry).await?);
    }
    record_threshold_edit(ctx, repo, number, body_editor.unwrap_or(&pr.user.login), &prereg, frozen.as_deref()).await?;
    post_pre_registration(ctx, installation, repo, &head, &prereg, frozen.as_deref()).await?;

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
    post_golden_set(ctx, installation, repo, (number, &pr.html_url), &head, &sides).await?;

    for t in &touched {
        let kind = t.kind();
        let state = match kind {
            // Nothing to evaluate: decided here, below.
            RunKind::Duplicate | RunKind::Removed => RunState::Queued,
            _ if prereg.is_err() => RunState::AwaitingPreRegistration,
            _ if fork => RunState::AwaitingApproval,
            _ => RunState::Queued,
        };
        let base_manifest = t.base.as_ref().map(|m| m.as_str().to_owned());
        let new = NewGateRun {
            repo,
            pr_number: number,
            head_sha: &head,
            base_sha: &base,
            bundle: &t.name,
            manifest: t.manifest.as_str(),
            base_manifest: base_manifest.as_deref(),
            kind,
            state,
        };
        let (run, created) = ctx.store.gate_run_for(&new).await?;
        match kind {
            // Decided here, and published again on every sync, so a GitHub failure after the
            // decision was stored only delays what GitHub shows.
            RunKind::Duplicate => {
                duplicate(ctx, &run, t.duplicate.as_deref().unwrap_or_default()).await?;
                continue;
            }
            RunKind::Removed => {
                removed(ctx, &run).await?;
                continue;
            }
            RunKind::Paired | RunKind::Added => {}
        }
        let waiting_for_body = run.state == RunState::AwaitingPreRegistration;
        // A run queued by an earlier attempt of this job that failed before its check run was
        // posted is started again.
        let unposted = run.state == RunState::Queued && ctx.store.run_check(&run.id).await?.is_none();
        // Cancelled while the pull request was closed, and it is open again: evaluate again.
        let reopened = run.state == RunState::Cancelled;
        if !(created || unposted || reopened || (waiting_for_body && prereg.is_ok())) {
            continue;
        }
        start(ctx, &gh, repo, &head, &t.name, &run.id, state, (!created).then_some(run.state)).await?;
    }
    // Every run of this pair exists now: the aggregate can tell "still running" from "done".
    super::aggregate::read(ctx, subject, &base, touched.len() as u64).await?;
    super::comment::update(ctx, &gh, repo, number).await?;
    Ok(())
}

/// Two manifests with one name: the check fails naming both, and neither is evaluated.
pub(super) async fn duplicate(ctx: &Ctx, run: &GateRun, message: &str) -> Result<(), JobError> {
    if run.state.is_final() {
        return Ok(()); // decided already; the publisher shows it
    }
    let title = format!("duplicate bundle name `{}`", run.bundle);
    let summary = format!(
        "`{}`: {message}.\n\nevalgate identifies a bundle by the path of its `bundle.yaml`, and its check by the bundle's name, so two manifests with one name cannot both be gated; nothing was evaluated. Rename one of them.",
        run.manifest
    );
    let data = json!({ "gate_run": run.id, "bundle": run.bundle, "manifest": run.manifest, "head_sha": run.head_sha,
        "base_sha": run.base_sha, "conclusion": "failure", "title": title, "reason": message });
    decide(
        ctx,
        run,
        Guard::NotCancelled,
        RunState::Completed,
        "failure",
        &title,
        &summary,
        Some((Kind::GateDecision, "evalgate", data)),
    )
    .await
}

/// A removed bundle: nothing to evaluate; a reviewer approves the removal (`approve-golden`),
/// and then the check is neutral naming who.
async fn removed(ctx: &Ctx, run: &GateRun) -> Result<(), JobError> {
    let approved = approval_at(ctx, &run.repo, run.pr_number, &run.head_sha).await?;
    let (conclusion, title) = match &approved {
        Some(actor) => ("neutral", format!("bundle removed: removal approved by @{actor}")),
        None => ("action_required", "bundle removed: awaiting a reviewer's approval".to_owned()),
    };
    if run.state == RunState::Cancelled || (run.state.is_final() && run.conclusion.as_deref() == Some(conclusion)) {
        return Ok(());
    }
    let summary = format!(
        "This pull request removes the bundle `{}` (`{}`), so there is nothing to evaluate. A reviewer with write access approves the removal with `/evalgate approve-golden` (see `evalgate/golden-set`).",
        run.bundle, run.manifest
    );
    let data = json!({ "gate_run": run.id, "bundle": run.bundle, "manifest": run.manifest, "head_sha": run.head_sha,
        "base_sha": run.base_sha, "conclusion": conclusion, "title": title });
    decide(
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

/// Commits a decision about `run` (with its audit entry, if any) and wakes the publisher.
#[allow(clippy::too_many_arguments)]
pub(super) async fn decide(
    ctx: &Ctx,
    run: &GateRun,
    guard: Guard,
    state: RunState,
    conclusion: &str,
    title: &str,
    summary: &str,
    audit: Option<(Kind, &str, Value)>,
) -> Result<(), JobError> {
    let audit = audit.map(|(kind, actor, data)| NewEntry { repo: &run.repo, kind, actor, pr_number: run.pr(), data });
    let d = Decision {
        run_id: &run.id,
        guard,
        state,
        conclusion,
        title,
        summary,
        report: None,
        annotations: None,
        override_by: None,
        audit,
    };
    if ctx.store.decide(&d).await? {
        ctx.publish_wake.notify_one();
    }
    Ok(())
}

/// Who approved the instrument change (new or removed bundles included) shown at `head`, if
/// anyone did: the approval holds for exactly that change.
pub async fn approval_at(ctx: &Ctx, repo: &str, number: u64, head: &str) -> Result<Option<String>, JobError> {
    let Some((fingerprint, _, _)) = ctx.store.golden_change(repo, head).await? else { return Ok(None) };
    Ok(ctx.store.approved_by(repo, number, "golden", &fingerprint).await?)
}

/// After `/evalgate approve-golden`: the new and removed bundles it covers show their own
/// conclusion now (a new bundle its gate on head alone, a removed one neutral).
pub async fn apply_bundle_approval(
    ctx: &Ctx,
    _gh: &Installation,
    repo: &str,
    number: u64,
    head: &str,
    actor: &str,
) -> Result<(), JobError> {
    for run in ctx.store.gate_runs_at(repo, number, head).await? {
        if !run.state.is_final() || run.state == RunState::Cancelled {
            continue;
        }
        let (conclusion, title) = match run.kind {
            RunKind::Removed => ("neutral".to_owned(), format!("bundle removed: removal approved by @{actor}")),
            RunKind::Added => {
                let Some(report) = run.report.as_deref().and_then(|r| serde_json::from_str::<Report>(r).ok()) else {
                    continue;
                };
                (gate::conclusion_of(&report).to_owned(), format!("approved by @{actor}: {}", report.title()))
            }
            _ => continue,
        };
        let summary = run.summary.clone().unwrap_or_default();
        // The approval itself is in the audit trail (`approve-golden`); this is what it decides.
        let data = json!({ "gate_run": run.id, "bundle": run.bundle, "manifest": run.manifest, "head_sha": run.head_sha,
            "base_sha": run.base_sha, "conclusion": conclusion, "title": title, "approved_by": actor });
        decide(
            ctx,
            &run,
            Guard::Completed,
            RunState::Completed,
            &conclusion,
            &title,
            &summary,
            Some((Kind::GateDecision, "evalgate", data)),
        )
        .await?;
    }
    Ok(())
}

/// Puts a gate run's check run in the state `state` asks for, and queues the evaluation.
/// Shows a run that is about to be evaluated, or waits, on its check run, then starts it (see
/// `Store::start_run`). `previous` is the state it is opened again from; `None` for a run
/// created just now. A check run that is still open (waiting for the pre-registration) is
/// updated in place; a finished one (a re-run, an approval) is followed by a fresh one, as
/// GitHub expects. GitHub is written first: a failure after it only leaves a check run that a
/// retry supersedes, never a run queued with nothing to run it.
#[allow(clippy::too_many_arguments)]
pub(super) async fn start(
    ctx: &Ctx,
    gh: &Installation,
    repo: &str,
    head: &str,
    bundle: &str,
    run_id: &str,
    state: RunState,
    previous: Option<RunState>,
) -> Result<(), JobError> {
    let name = bundle_check(bundle);
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
    let finished_on_github = previous.is_none_or(|p| p.is_final() || p == RunState::AwaitingApproval);
    let (id, fresh) = match ctx.store.run_check(run_id).await? {
        Some(id) if !finished_on_github => {
            checks::update(gh, repo, id, &body).await?;
            (id, false)
        }
        _ => (checks::create(ctx, gh, repo, head, &name, body).await?, true),
    };
    // The run's own check run, what its decision is published on, and its evaluation: together,
    // and only if no other delivery moved the run on meanwhile.
    let from = previous.unwrap_or(state);
    if !ctx.store.start_run(run_id, from, state, id, previous.is_some()).await? {
        tracing::info!(bundle, "the run was started, cancelled or decided by another delivery meanwhile");
        if fresh {
            // Nothing will ever complete the check run made just now: it says why it stops.
            let done = json!({ "status": "completed", "conclusion": "cancelled", "external_id": run_id,
                "completed_at": now(), "details_url": details,
                "output": checks::output("superseded", "Another delivery started or decided this evaluation at the same moment; its check run shows the result.", None) });
            checks::update(gh, repo, id, &done).await?;
        }
        return Ok(());
    }
    if state == RunState::Queued {
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
    let entry = pending.map(|now| NewEntry {
        repo,
        kind: Kind::ThresholdEdit,
        actor: author,
        pr_number: Some(number),
        data: json!({ "was": frozen, "now": now }),
    });
    ctx.store.set_pending_thresholds(repo, number, pending, entry.as_ref()).await?;
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
/// The golden-set check. GitHub asks an `action_required` check for a page with the details:
/// the pull request's changed files (`pr_url` + `/files`), where what measures the bundle changed.
pub fn golden_body(title: &str, summary: &str, conclusion: Conclusion, pr_url: &str) -> CheckBody {
    let mut body = CheckBody::new(Status::Completed(conclusion), title, summary);
    if !pr_url.is_empty() {
        body.details_url = Some(format!("{pr_url}/files"));
    }
    body
}

/// A newer head, or a new base, cancels the evaluations of older pairs.
async fn cancel_older(
    ctx: &Ctx,
    _gh: &Installation,
    repo: &str,
    number: u64,
    head: &str,
    base: &str,
) -> Result<(), JobError> {
    for run in ctx.store.open_runs_not_at(repo, number, head, base).await? {
        let title =
            if run.head_sha == head { "cancelled: the base changed" } else { "cancelled: superseded by a newer push" };
        let summary = format!(
            "The pull request is now `{}` against `{}`; its evaluation is in the newer check run.",
            short(head),
            short(base)
        );
        tracing::info!(bundle = %run.bundle, old_head = %run.head_sha, "{title}");
        let data = json!({ "gate_run": run.id, "bundle": run.bundle, "manifest": run.manifest, "head_sha": run.head_sha,
            "base_sha": run.base_sha, "conclusion": "cancelled", "title": title, "superseded_by": { "head_sha": head, "base_sha": base } });
        decide(
            ctx,
            &run,
            Guard::Open,
            RunState::Cancelled,
            "cancelled",
            title,
            &summary,
            Some((Kind::GateDecision, "evalgate", data)),
        )
        .await?;
    }
    Ok(())
}

/// A closed pull request spends nothing more: its running and waiting evaluations are
/// cancelled (reopening it evaluates again, from the cache where nothing changed).
pub async fn close(ctx: &Ctx, repo: &str, number: u64) -> Result<(), JobError> {
    // The heads' `evalgate` checks no longer wait on this pull request.
    if let Some(pr) = ctx.store.pr(repo, number).await? {
        super::aggregate::end_subject(ctx, pr.installation_id as u64, repo, number, false).await?;
    }
    for run in ctx.store.open_runs_not_at(repo, number, "", "").await? {
        let title = "cancelled: the pull request was closed";
        let summary = "The pull request was closed before this evaluation finished; reopening it evaluates again.";
        tracing::info!(bundle = %run.bundle, head = %run.head_sha, "{title}");
        let data = json!({ "gate_run": run.id, "bundle": run.bundle, "manifest": run.manifest, "head_sha": run.head_sha,
            "base_sha": run.base_sha, "conclusion": "cancelled", "title": title, "reason": "pull request closed" });
        decide(
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
    Ok(())
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

async fn post_pre_registration(
    ctx: &Ctx,
    installation: u64,
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
                Conclusion::Success,
                title,
                json!({ "ok": true, "thresholds": shown, "frozen": frozen_text, "problems": [], "keys": keys, "template": "" }),
            )
        }
        Err(problems) => {
            let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            let title = format!("pre-registration missing or invalid: {}", list.first().cloned().unwrap_or_default());
            (
                Conclusion::Failure,
                title,
                json!({ "ok": false, "thresholds": [], "frozen": null, "problems": list, "keys": keys, "template": preregistration::TEMPLATE.trim_end() }),
            )
        }
    };
    let summary = ctx.templates.markdown("pre-registration", &data).map_err(|e| JobError::Fatal(format!("{e:#}")))?;
    let body = CheckBody::new(Status::Completed(conclusion), title, summary);
    checks::keep(ctx, installation, repo, head, PRE_REGISTRATION, &body).await
}

/// `evalgate/golden-set`, when the pull request changes the instrument (golden set, `gate:`,
/// samples, budget, judge) or adds or removes a bundle: every change old → new, cases by
/// content. The approval covers a fingerprint of the pins and the canonical instrument of both
/// sides of every bundle listed, so any later change to them needs a new approval.
async fn post_golden_set(
    ctx: &Ctx,
    installation: u64,
    repo: &str,
    (number, pr_url): (u64, &str),
    head: &str,
    sides: &[(&Touched, Option<Side>, Option<Side>)],
) -> Result<(), JobError> {
    let mut bundles = Vec::new();
    let mut prints = Vec::new();
    let mut total = 0usize;
    for (t, base, head_side) in sides {
        if t.duplicate.is_some() {
            continue; // failed on its own check; nothing of it is measured
        }
        // An invalid side fails its own check; what could be read is still compared.
        let (b, h) = (base.as_ref().and_then(|b| b.as_ref().ok()), head_side.as_ref().and_then(|h| h.as_ref().ok()));
        let changes = match (t.kind(), b, h) {
            // A removal is listed (and approved) even when the base's bundle does not load.
            (RunKind::Removed, None, _) => vec![instrument::Change {
                what: "bundle".into(),
                old: Some(format!("{} removed (its base does not load)", t.manifest)),
                new: None,
            }],
            _ if (t.base.is_some() && b.is_none()) || (t.head.is_some() && h.is_none()) => continue,
            _ => instrument::changes(b, h),
        };
        if changes.is_empty() {
            continue;
        }
        total += changes.len();
        prints.push(format!("{} {}", t.manifest, instrument::fingerprint(t.manifest.as_str(), b, h).hex()));
        bundles.push(json!({
            "bundle": t.name,
            "manifest": t.manifest.as_str(),
            "changes": changes.iter().map(|c| {
                let (old, new) = instrument::shown(c);
                json!({ "what": c.what, "old": cell(old.as_deref()), "new": cell(new.as_deref()) })
            }).collect::<Vec<_>>(),
        }));
    }
    if bundles.is_empty() {
        return Ok(());
    }
    let title = format!("awaiting approval: {total} change(s) to what measures {} bundle(s)", bundles.len());
    let summary = ctx
        .templates
        .markdown("golden-set", &json!({ "bundles": bundles }))
        .map_err(|e| JobError::Fatal(format!("{e:#}")))?;
    // What exactly is approved: the instruments of both sides, whatever head carries them.
    prints.sort();
    let fingerprint = evaluators::ids::Sha256::digest(prints.join("\n").as_bytes()).hex();
    ctx.store.set_golden_change(repo, head, &fingerprint, &title, &summary).await?;
    let approved = ctx.store.approved_by(repo, number, "golden", &fingerprint).await?;
    let body = match &approved {
        Some(actor) => golden_body(&approved_title(&title, actor), &summary, Conclusion::Success, pr_url),
        None => golden_body(&title, &summary, Conclusion::ActionRequired, pr_url),
    };
    checks::keep(ctx, installation, repo, head, GOLDEN_SET, &body).await?;
    // An approval that landed while this was kept must not be undone by it.
    if approved.is_none() {
        if let Some(actor) = ctx.store.approved_by(repo, number, "golden", &fingerprint).await? {
            let body = golden_body(&approved_title(&title, &actor), &summary, Conclusion::Success, pr_url);
            checks::keep(ctx, installation, repo, head, GOLDEN_SET, &body).await?;
        }
    }
    Ok(())
}

/// One table cell of the golden-set listing: a code span whose fence is longer than any run of
/// backticks inside, on one line, with `|` escaped, so no value can close the span early and
/// hide the rows after it.
fn cell(v: Option<&str>) -> String {
    let Some(v) = v else { return "(none)".to_owned() };
    let v = v.replace('\r', "").replace('\n', "⏎ ").replace('|', "\\|");
    let longest = v.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    format!("{fence} {v} {fence}")
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
        tracing::info!(sender, bundle = %run.bundle, "fork evaluation approved");
        start(ctx, &gh, repo, head_sha, &run.bundle, &run.id, RunState::Queued, Some(run.state)).await?;
    }
    super::aggregate::refresh(ctx, installation, repo, head_sha).await
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
        return sync(ctx, installation, repo, number, None).await;
    };
    if pr.head_sha != head_sha {
        tracing::info!("re-run of an old head ignored");
        return Ok(());
    }
    // A re-run reads the base again: when the merge base moved, the new pair is evaluated.
    let live = gh.pull_request(repo, number).await?;
    if live.state != "open" {
        // A closed pull request spends nothing: reopening it evaluates again.
        tracing::info!("re-run of a closed pull request ignored");
        return Ok(());
    }
    if gh.merge_base(repo, &live.base.git_ref, head_sha).await? != pr.base_sha {
        return sync(ctx, installation, repo, number, None).await;
    }
    let runs = ctx.store.gate_runs_at(repo, number, head_sha).await?;
    let wanted: Vec<_> = runs.iter().filter(|r| name.is_none_or(|n| n == bundle_check(&r.bundle))).collect();
    if wanted.is_empty() {
        // The pre-registration or golden-set check, or a suite: look at the pull request again.
        return sync(ctx, installation, repo, number, None).await;
    }
    for run in wanted {
        if !(run.state.is_final() || run.state == RunState::AwaitingApproval) {
            continue;
        }
        if matches!(run.kind, RunKind::Duplicate | RunKind::Removed) {
            continue; // decided without an evaluation: nothing to run again
        }
        let state = if pr.is_fork && run.state == RunState::AwaitingApproval {
            RunState::AwaitingApproval
        } else {
            RunState::Queued
        };
        start(ctx, &gh, repo, head_sha, &run.bundle, &run.id, state, Some(run.state)).await?;
    }
    // The aggregate goes back to in progress while the re-run evaluates.
    super::aggregate::refresh(ctx, installation, repo, head_sha).await
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn a_listing_cell_cannot_be_closed_early_by_the_value_inside() {
        let c = cell(Some("x` <!-- hide | the rest\nline two"));
        assert_eq!(c, "`` x` <!-- hide \\| the rest⏎ line two ``");
        assert_eq!(cell(None), "(none)");
    }
}
