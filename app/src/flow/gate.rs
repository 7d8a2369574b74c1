//! A gate job: one bundle at one head of a pull request, evaluated against its base, its check
//! run taken from queued through in_progress (with a progress line) to its conclusion. The
//! gate configuration and the golden-set pin are the base branch's.

use super::checks::{self, bundle_check};
use super::{Ctx, JobError};
use crate::audit::Kind;
use crate::evaluate::{self, Pair, Setup};
use crate::github::tree::CommitTree;
use crate::github::{GitHubError, Installation};
use crate::store::audit::NewEntry;
use crate::store::gate_runs::{Decision, Guard, RunKind, RunState};
use crate::store::merge_groups::MERGE_GROUP;
use evaluators::config;
use evaluators::diagnostic::{Diagnostic, Diagnostics};
use evaluators::gate::{Source, Thresholds};
use evaluators::pricing::PriceTable;
use evaluators::repo::RepoPath;
use evaluators::report::Report;
use evaluators::workspace::{self, LoadedBundle};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One side of a bundle: valid, or every problem found in it.
pub type Side = Result<LoadedBundle, Vec<Diagnostic>>;

/// How often the check run's progress line is updated at most.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// How often a running evaluation looks whether a newer push cancelled it.
const CANCEL_POLL: Duration = Duration::from_millis(500);

/// Loads the bundle at `manifest` with its golden set from one commit.
pub async fn load_at(gh: &Installation, tree: &CommitTree, manifest: &RepoPath) -> Result<Side, GitHubError> {
    tree.load(gh, |t| {
        let mut d = Diagnostics::new();
        let cfg = config::load(t, &mut d);
        match workspace::load_bundle(t, &cfg, manifest, &mut d) {
            Some(b) if d.is_empty() => Ok(b),
            _ => Err(d.into_sorted()),
        }
    })
    .await
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn fatal(e: impl std::fmt::Display) -> JobError {
    JobError::Fatal(e.to_string())
}

pub async fn run(ctx: &Arc<Ctx>, id: &str) -> Result<(), JobError> {
    let Some(run) = ctx.store.gate_run(id).await? else { return Err(fatal(format!("gate run {id} is not stored"))) };
    if run.state.is_final()
        || matches!(run.state, RunState::AwaitingApproval | RunState::AwaitingPreRegistration)
        || matches!(run.kind, RunKind::Duplicate | RunKind::Removed)
    {
        return Ok(());
    }
    let span =
        tracing::info_span!("gate", repo = %run.repo, pr = run.pr_number, bundle = %run.bundle, head = %run.head_sha);
    tracing::Instrument::instrument(evaluate_run(ctx, run), span).await
}

async fn evaluate_run(ctx: &Arc<Ctx>, run: crate::store::gate_runs::GateRun) -> Result<(), JobError> {
    let repo = run.repo.as_str();
    let installation = super::installation_of(ctx, &run).await?;
    // A merge group is measured without a pre-registration: the base's thresholds alone.
    let frozen = match run.pr_number {
        MERGE_GROUP => None,
        n => ctx.store.pr(repo, n).await?.and_then(|p| p.thresholds),
    };
    let gh = ctx.github.installation(installation)?;
    let name = bundle_check(&run.bundle);
    let details = ctx.details_url(&run.id);
    let first = json!({ "status": "queued", "external_id": run.id, "details_url": details,
        "output": checks::output("queued", "The evaluation is queued.", None) });
    let check = match ctx.store.run_check(&run.id).await? {
        Some(id) => id,
        None => checks::ensure(ctx, &gh, repo, &run.head_sha, &name, first).await?,
    };
    ctx.store.set_run_check(&run.id, check).await?;
    if !ctx.store.set_run_state(&run.id, RunState::InProgress).await? {
        return Ok(()); // cancelled meanwhile
    }
    let progress_body = |line: &str| {
        json!({ "status": "in_progress", "started_at": now(), "details_url": details,
            "output": checks::output(&format!("evaluating: {line}"), &format!("Evaluation in progress: {line}."), None) })
    };
    checks::update(&gh, repo, check, &progress_body("reading the bundles")).await?;
    ctx.metrics.inc(&ctx.metrics.evaluations_started);

    let head_tree = CommitTree::fetch(&gh, repo, &run.head_sha).await?;
    let base_tree = CommitTree::fetch(&gh, repo, &run.base_sha).await?;
    let manifest = RepoPath::parse(&run.manifest).map_err(fatal)?;
    let head = match load_at(&gh, &head_tree, &manifest).await? {
        Ok(h) => h,
        Err(diags) => return invalid(ctx, &gh, &run, check, &diags, "head").await,
    };
    let base = match &run.base_manifest {
        Some(m) => {
            let m = RepoPath::parse(m).map_err(fatal)?;
            match load_at(&gh, &base_tree, &m).await? {
                Ok(b) => Some(b),
                Err(diags) => return invalid(ctx, &gh, &run, check, &diags, "base").await,
            }
        }
        // A bundle the pull request adds has nothing to compare with: head alone, on its own
        // instrument (its check waits for a reviewer's approval of the new bundle first).
        None => None,
    };
    let pair = Pair { base: base.as_ref(), head: &head };
    let (cfg, _) = super::touched::config_of(&gh, &base_tree).await?;
    let mut thresholds = Thresholds::from_base(&pair.instrument().bundle.eval.gate);
    if let Some(frozen) = &frozen {
        for (k, v) in super::pr::parse_thresholds(frozen) {
            thresholds.tighten(k, v, Source::PreRegistration);
        }
    }
    let prices = PriceTable::new(cfg.prices.clone());
    if let Err(why) = evaluate::require_prices(&prices, pair) {
        return finish(ctx, &gh, &run, check, "failure", "cannot evaluate: no price for a snapshot", &why, None).await;
    }

    let total = evaluate::total_runs(pair);
    let done = Arc::new(AtomicU64::new(0));
    // Aborted when this job ends in any way, a lost lease (the job's future dropped) included.
    let ticker = {
        let (gh, done, repo) = (gh.clone(), done.clone(), repo.to_owned());
        let details = details.clone();
        crate::task::AbortOnDrop(tokio::spawn(async move {
            let mut shown = u64::MAX;
            loop {
                tokio::time::sleep(PROGRESS_EVERY).await;
                let n = done.load(Ordering::Relaxed);
                if n != shown {
                    shown = n;
                    let line = format!("{n}/{total} case runs");
                    let body = json!({ "status": "in_progress", "details_url": details,
                        "output": checks::output(&format!("evaluating: {line}"), &format!("Evaluation in progress: {line}."), None) });
                    if let Err(e) = checks::update(&gh, &repo, check, &body).await {
                        tracing::warn!(error = %e, "progress update failed");
                    }
                }
            }
        }))
    };
    let setup =
        Setup { client: ctx.models.clone(), cache: Arc::new(ctx.store.clone()), prices, concurrency: ctx.concurrency };
    let counter = done.clone();
    let evaluation = evaluate::evaluate(setup, pair, &thresholds, move || {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let cancelled = async {
        loop {
            tokio::time::sleep(CANCEL_POLL).await;
            if let Ok(Some(RunState::Cancelled)) = ctx.store.run_state(&run.id).await {
                return;
            }
        }
    };
    let outcome = tokio::select! {
        out = evaluation => Some(out),
        () = cancelled => None,
    };
    drop(ticker);
    let Some((report, engine)) = outcome else {
        tracing::info!("evaluation cancelled by a newer push");
        return Ok(());
    };
    record_metrics(ctx, &report, engine.counts());
    let mut conclusion = conclusion_of(&report);
    let mut title = report.title();
    // In a merge group, a person's decision on the pull request with this very content holds.
    if run.pr_number == MERGE_GROUP {
        let carried = super::merge_group::carried(ctx, &run, Some(&report)).await?;
        match (run.kind, carried) {
            (RunKind::Added, Some((who, number))) => title = format!("approved by @{who} on #{number}: {title}"),
            (RunKind::Added, None) => {
                conclusion = "action_required";
                title = format!("new bundle not approved on its pull request ({title})");
            }
            // An override passes a failed gate; it never stands in for an incomplete evaluation.
            (_, Some((who, number))) if conclusion == "failure" => {
                conclusion = "success";
                title = format!("gate overridden by @{who} on #{number}: {title}");
            }
            _ => {}
        }
    } else if run.kind == RunKind::Added {
        // A new bundle waits for a reviewer's approval; then its own gate on head alone decides.
        match super::pr::approval_at(ctx, repo, run.pr_number, &run.head_sha).await? {
            Some(actor) => title = format!("approved by @{actor}: {title}"),
            None => {
                conclusion = "action_required";
                title = format!("new bundle awaiting approval ({title})");
            }
        }
    }
    let summary = crate::output::markdown(&report).map_err(|e| fatal(format!("{e:#}")))?;
    let json = crate::output::json(&report).map_err(|e| fatal(format!("{e:#}")))?;
    ctx.metrics.inc(&ctx.metrics.evaluations_completed);
    finish(ctx, &gh, &run, check, conclusion, &title, &summary, Some(&json)).await
}

/// The check-run conclusion of a report: an incomplete evaluation waits for a person, never
/// passes.
pub fn conclusion_of(report: &Report) -> &'static str {
    if report.incomplete.is_some() {
        "action_required"
    } else if report.gate.passed {
        "success"
    } else {
        "failure"
    }
}

/// What one evaluation adds to `/metrics`: calls, cache hits, every model call's latency.
fn record_metrics(ctx: &Ctx, report: &evaluators::report::Report, counts: evaluators::engine::CallCounts) {
    let m = &ctx.metrics;
    m.add(&m.model_calls, counts.model_calls);
    m.add(&m.cached_transcripts, counts.cached_transcripts);
    m.add(&m.cached_votes, counts.cached_votes);
    if report.incomplete.is_some() {
        m.inc(&m.provider_errors);
    }
    for case in &report.cases {
        for sample in case.base.iter().flat_map(|b| &b.samples).chain(&case.head.samples) {
            if sample.cached {
                continue; // served from the cache: no call was made now
            }
            let Some(t) = &sample.transcript else { continue };
            for e in &t.events {
                if let evaluators::engine::runner::Event::Model { latency_ms, .. } = e {
                    m.observe_provider_latency(*latency_ms as f64);
                }
            }
        }
    }
}

/// Commits the decision with its audit entry; the publisher then tells GitHub (check run and
/// sticky comment), retrying until GitHub matches.
#[allow(clippy::too_many_arguments)]
async fn finish(
    ctx: &Arc<Ctx>,
    _gh: &Installation,
    run: &crate::store::gate_runs::GateRun,
    _check: u64,
    conclusion: &str,
    title: &str,
    summary: &str,
    report: Option<&str>,
) -> Result<(), JobError> {
    decide(ctx, run, conclusion, title, summary, report, None).await
}

/// One gate decision: the run's conclusion and the audit entry that records it, in one
/// transaction, then the publisher is woken. `false` from the store means the run was cancelled
/// meanwhile: the newer pair's run speaks, and nothing is recorded.
async fn decide(
    ctx: &Ctx,
    run: &crate::store::gate_runs::GateRun,
    conclusion: &str,
    title: &str,
    summary: &str,
    report: Option<&str>,
    annotations: Option<&str>,
) -> Result<(), JobError> {
    let details = ctx.details_url(&run.id);
    let data = decision_data(run, conclusion, title, report, &details)?;
    let audit = NewEntry { repo: &run.repo, kind: Kind::GateDecision, actor: "evalgate", pr_number: run.pr(), data };
    let d = Decision {
        run_id: &run.id,
        guard: Guard::NotCancelled,
        state: RunState::Completed,
        conclusion,
        title,
        summary,
        report,
        annotations,
        override_by: None,
        audit: Some(audit),
    };
    if ctx.store.decide(&d).await? {
        tracing::info!(conclusion, title, "gate decided");
        ctx.metrics.gate_outcome(conclusion);
        ctx.publish_wake.notify_one();
    }
    Ok(())
}

/// The audit entry of a gate decision: what was compared, under which thresholds, with what result.
fn decision_data(
    run: &crate::store::gate_runs::GateRun,
    conclusion: &str,
    title: &str,
    report: Option<&str>,
    details: &str,
) -> Result<serde_json::Value, JobError> {
    let r: Option<Report> =
        report.map(serde_json::from_str).transpose().map_err(|e| fatal(format!("stored report: {e}")))?;
    let side = |s: Option<&evaluators::report::SideSummary>| {
        s.map(|s| {
            json!({ "bundle_sha256": s.bundle_sha256, "pass_rate": s.pass_rate, "pass_rate_ci95": s.pass_rate_ci95,
            "cases": s.cases, "passed": s.passed, "cost_usd": s.cost_usd, "p95_latency_ms": s.p95_latency_ms,
            "judge_error_rate": s.judge_error_rate })
        })
    };
    Ok(match &r {
        Some(r) => json!({
            "gate_run": run.id, "bundle": run.bundle, "manifest": run.manifest, "head_sha": run.head_sha, "base_sha": run.base_sha,
            "comparison": r.comparison, "base": side(r.base.as_ref()), "head": side(Some(&r.head)),
            "golden_set_sha256": r.golden_set_sha256, "judge_sha256": r.judge_sha256, "thresholds": r.thresholds,
            "regressions": r.regressions, "fixes": r.fixes, "flaky": r.flaky, "head_flaky": r.head_flaky,
            "regression_rate": r.regression_rate, "fix_rate": r.fix_rate, "mcnemar_p": r.mcnemar_p,
            "judge_error_rate": r.judge_error_rate, "judge_change": r.judge_change, "incomplete": r.incomplete,
            "gate": r.gate, "conclusion": conclusion, "title": title, "check_run_url": details,
        }),
        None => json!({
            "gate_run": run.id, "bundle": run.bundle, "manifest": run.manifest, "head_sha": run.head_sha, "base_sha": run.base_sha,
            "conclusion": conclusion, "title": title, "check_run_url": details,
        }),
    })
}

/// An invalid bundle fails its check, with every problem as an annotation at file and line.
async fn invalid(
    ctx: &Arc<Ctx>,
    _gh: &Installation,
    run: &crate::store::gate_runs::GateRun,
    _check: u64,
    diags: &[Diagnostic],
    side: &str,
) -> Result<(), JobError> {
    let title = format!("bundle invalid at {side}: {} problem(s)", diags.len());
    let list: String = diags.iter().map(|d| format!("- `{d}`\n")).collect();
    let summary = if side == "head" {
        format!(
            "The bundle cannot be evaluated until these problems are fixed (run `evalgate check` locally):\n\n{list}"
        )
    } else {
        format!(
            "The base branch's bundle is invalid, so there is nothing to compare with; fix it on the base branch first:\n\n{list}"
        )
    };
    // Annotations point into the head's files; the base's problems are only listed.
    let annotations = if side == "head" { checks::annotations(diags) } else { Vec::new() };
    let annotations = (!annotations.is_empty()).then(|| serde_json::Value::from(annotations).to_string());
    decide(ctx, run, "failure", &title, &summary, None, annotations.as_deref()).await
}

/// After the last attempt failed: the run fails (an error is never a pass), recorded with its
/// audit entry, and the publisher makes the check run say "evalgate could not evaluate: …".
pub async fn fail_for_good(ctx: &Arc<Ctx>, id: &str, error: &str) -> Result<(), JobError> {
    let Some(run) = ctx.store.gate_run(id).await? else { return Ok(()) };
    let summary = format!(
        "evalgate could not evaluate this bundle after several attempts:\n\n```\n{error}\n```\n\nRe-run the check to try again."
    );
    let title = format!("evalgate could not evaluate: {}", error.lines().next().unwrap_or(error));
    decide(ctx, &run, "failure", &title, &summary, None, None).await
}
