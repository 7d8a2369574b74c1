//! The gate report: SPEC's `--json` fields and everything the summaries render, computed from
//! the two sides' runs. Pure: the same runs give the same report, byte for byte.

use crate::bundle::Bundle;
use crate::engine::checks::args_error;
use crate::engine::judge::JudgeIdentity;
use crate::engine::{CallCounts, CaseRun, SideRun, Verdict};
use crate::gate::{self, Decision, Key, Measures, Sides, Threshold, Thresholds};
use crate::golden::{GoldenSet, Label};
use crate::ids::Sha256;
use crate::provider::ToolCall;
use crate::stats;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// What the report compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// Base and head on the base's instrument.
    Paired,
    /// A bundle the pull request adds: head alone, on its own instrument.
    HeadOnly,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub bundle: String,
    pub comparison: Comparison,
    /// `null` for a head-only evaluation.
    pub base: Option<SideSummary>,
    pub head: SideSummary,
    pub golden_set: String,
    pub golden_set_sha256: Sha256,
    /// The instrument's judge (with its default rubric); `null` without a judge.
    pub judge_sha256: Option<Sha256>,
    /// Judge-error regressions included (their change is `regression_judge_error`).
    pub regressions: Vec<String>,
    pub fixes: Vec<String>,
    /// Flaky on base: listed apart, counted neither as a regression nor as a fix.
    pub flaky: Vec<String>,
    /// Stable on base, flaky on head: counted by their majority.
    pub head_flaky: Vec<String>,
    /// A judge error on base: whether they passed there is unknown (see base's judge-error rate).
    pub ungraded_on_base: Vec<String>,
    /// `null` ("n/a") for a head-only evaluation, as are `fix_rate` and `mcnemar_p`.
    pub regression_rate: Option<f64>,
    pub fix_rate: Option<f64>,
    pub mcnemar_p: Option<f64>,
    /// The larger side's judge-error rate.
    pub judge_error_rate: f64,
    /// Set when the pull request changes the judge: both judges on the head's transcripts.
    pub judge_change: Option<JudgeChange>,
    /// One regression among the base-passing cases, as a rate: the smallest rate this golden
    /// set can resolve (`null` when no case passes on base).
    pub smallest_resolvable_rate: Option<f64>,
    /// Set when a threshold in force is finer than the set can resolve.
    pub resolution_note: Option<String>,
    pub thresholds: BTreeMap<String, Threshold>,
    /// Proposed thresholds not applied because they would loosen the gate.
    pub thresholds_ignored: Vec<String>,
    /// Thresholds that compare with a base, which a head-only evaluation does not have.
    pub thresholds_not_applicable: Vec<String>,
    pub critical_tags: Vec<String>,
    pub gate: Decision,
    pub incomplete: Option<Incomplete>,
    /// The instrument's judge.
    pub judge: Option<JudgeInfo>,
    /// The instrument's judge against the human labels, on each side's transcripts.
    pub agreement: AgreementSides,
    /// Head-side tool calls valid under the base bundle's schema but not under the head's.
    pub schema_drift: Vec<DriftCall>,
    pub calls: CallCounts,
    pub cases: Vec<CaseReport>,
}

/// Why an evaluation could not finish, and the cases it could not run on either side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incomplete {
    pub reason: String,
    pub cases: Vec<String>,
}

impl std::fmt::Display for Incomplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.reason)?;
        match self.cases.len() {
            0 => Ok(()),
            n if n <= 5 => write!(f, " (not run: {})", self.cases.join(", ")),
            n => write!(f, " (not run: {}, … {n} cases in all)", self.cases[..5].join(", ")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementSides {
    pub base: Option<AgreementInfo>,
    pub head: Option<AgreementInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideSummary {
    pub bundle_sha256: Sha256,
    pub version: String,
    pub snapshot: String,
    pub pass_rate: f64,
    pub pass_rate_ci95: Option<[f64; 2]>,
    pub cases: u64,
    pub passed: u64,
    pub failed: u64,
    /// Cases that could not be graded: run errors and judge errors.
    pub errors: u64,
    pub judge_errors: u64,
    /// Judge checks that ended in a judge error, over all judge checks graded on this side.
    pub judge_error_rate: f64,
    /// Agent cost of all samples; `null` when a snapshot has no price.
    pub cost_usd: Option<f64>,
    pub cost_per_case_usd: Option<f64>,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub p95_latency_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeInfo {
    pub snapshot: String,
    /// Identity of the judge with the bundle's default rubric.
    pub identity_sha256: Sha256,
    pub samples: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementInfo {
    pub cases: u64,
    pub percent: f64,
    pub kappa: Option<f64>,
    pub true_pass_rate: Option<f64>,
    pub true_fail_rate: Option<f64>,
}

impl From<stats::Agreement> for AgreementInfo {
    fn from(a: stats::Agreement) -> Self {
        AgreementInfo {
            cases: a.cases,
            percent: a.percent,
            kappa: a.kappa,
            true_pass_rate: a.true_pass_rate,
            true_fail_rate: a.true_fail_rate,
        }
    }
}

/// A pull request that changes the judge: base's judge (the instrument) and head's judge,
/// each grading the same head transcripts, measured against the human labels on the same
/// cases (labelled, and decided by both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeChange {
    pub base: Option<JudgeInfo>,
    pub head: Option<JudgeInfo>,
    pub base_agreement: Option<AgreementInfo>,
    pub head_agreement: Option<AgreementInfo>,
    /// Set when the comparison could not be made (no labelled case both judges decided).
    pub note: Option<String>,
    /// Judge errors of the head's judge over its judge checks on the head's transcripts.
    pub head_judge_error_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftCall {
    pub case: String,
    pub tool: String,
    pub args: Value,
    pub head_error: String,
}

/// What happened to one case between base and head (SPEC, "Words").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Passed on base (stable), does not pass on head.
    Regression,
    /// Passed on base (stable); the judge could not decide on head: an unknown is never a pass.
    RegressionJudgeError,
    /// Failed on base (stable), passes on head.
    Fix,
    /// Flaky on base: its instability predates the change, so it is counted neither way.
    Flaky,
    Unchanged,
    /// A judge error on base: whether it passed there is unknown.
    UngradedOnBase,
    /// Could not be run on a side (provider, budget, cache or database): the run is incomplete.
    NotRun,
    /// Head-only evaluation of a new bundle: nothing to compare with.
    New,
}

impl Change {
    pub fn is_regression(self) -> bool {
        matches!(self, Change::Regression | Change::RegressionJudgeError)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseReport {
    pub id: String,
    pub line: u32,
    pub tags: Vec<String>,
    pub label: Option<Label>,
    /// The conversation the case starts from (for `/evalgate explain` and the report page).
    pub input: Vec<crate::golden::Message>,
    pub change: Change,
    /// `null` in a head-only evaluation.
    pub base: Option<CaseRun>,
    pub head: CaseRun,
}

/// Everything besides the runs that the report needs.
pub struct Context<'a> {
    /// The base's bundle as it is (`None`: a bundle the pull request adds).
    pub base: Option<&'a Bundle>,
    /// The head's bundle as it is: its hash, its tools, and its own judge.
    pub head: &'a Bundle,
    /// The bundle whose instrument (gate, samples, judge) measured both sides: the base's, or
    /// the head's own when there is no base.
    pub instrument: &'a Bundle,
    pub golden: &'a GoldenSet,
    pub thresholds: &'a Thresholds,
    pub calls: CallCounts,
    /// Why the run stopped calling models (budget reached, provider unavailable), if it did.
    pub stopped: Option<String>,
}

/// The runs of one evaluation, in the golden set's case order.
pub struct Runs {
    pub base: Option<SideRun>,
    pub head: SideRun,
    /// The head's transcripts graded by the head's own judge, when the pull request changes it.
    pub head_regraded: Option<SideRun>,
}

/// What one case counts as, by SPEC's rules. Pure; each rule has a unit test.
pub fn classify(base: Option<&CaseRun>, head: &CaseRun) -> Change {
    let Some(b) = base else {
        return if head.verdict == Verdict::Error { Change::NotRun } else { Change::New };
    };
    match (b.verdict, head.verdict) {
        (Verdict::Error, _) | (_, Verdict::Error) => Change::NotRun,
        _ if b.flaky => Change::Flaky,
        (Verdict::JudgeError, _) => Change::UngradedOnBase,
        (Verdict::Pass, Verdict::Pass) => Change::Unchanged,
        (Verdict::Pass, Verdict::Fail) => Change::Regression,
        (Verdict::Pass, Verdict::JudgeError) => Change::RegressionJudgeError,
        (Verdict::Fail, Verdict::Pass) => Change::Fix,
        (Verdict::Fail, Verdict::Fail | Verdict::JudgeError) => Change::Unchanged,
    }
}

/// A critical case breaks the gate when it regresses by majority, flaky or not (or, on head
/// alone, when it does not pass).
fn critical_breach(base: Option<&CaseRun>, head: &CaseRun) -> bool {
    match base {
        Some(b) => b.verdict == Verdict::Pass && matches!(head.verdict, Verdict::Fail | Verdict::JudgeError),
        None => matches!(head.verdict, Verdict::Fail | Verdict::JudgeError),
    }
}

pub fn build(cx: &Context<'_>, runs: Runs) -> Report {
    let golden = cx.golden;
    let comparison = if runs.base.is_some() { Comparison::Paired } else { Comparison::HeadOnly };
    let mut base_runs = runs.base.map(|s| s.cases.into_iter().map(Some).collect::<Vec<_>>());
    let base_iter: Box<dyn Iterator<Item = Option<CaseRun>>> = match base_runs.take() {
        Some(v) => Box::new(v.into_iter()),
        None => Box::new(std::iter::repeat_with(|| None)),
    };
    let (mut regressions, mut fixes, mut flaky, mut head_flaky, mut ungraded) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut critical, mut not_run, mut cases) = (Vec::new(), Vec::new(), Vec::new());
    for ((case, b), h) in golden.cases.iter().zip(base_iter).zip(runs.head.cases) {
        let id = case.id.to_string();
        let change = classify(b.as_ref(), &h);
        let is_critical = case.tags.iter().any(|t| cx.thresholds.critical_tags.contains(t));
        if is_critical && critical_breach(b.as_ref(), &h) {
            critical.push(id.clone());
        }
        match change {
            c if c.is_regression() => regressions.push(id.clone()),
            Change::Fix => fixes.push(id.clone()),
            Change::Flaky => flaky.push(id.clone()),
            Change::UngradedOnBase => ungraded.push(id.clone()),
            Change::NotRun => not_run.push(id.clone()),
            _ => {}
        }
        if b.as_ref().is_some_and(|b| !b.flaky) && h.flaky {
            head_flaky.push(id.clone());
        }
        cases.push(CaseReport {
            id,
            line: case.line,
            tags: case.tags.clone(),
            label: case.label,
            input: case.messages.clone(),
            change,
            base: b,
            head: h,
        });
    }
    let regraded_not_run: Vec<String> = runs
        .head_regraded
        .iter()
        .flat_map(|r| golden.cases.iter().zip(&r.cases))
        .filter(|(_, r)| r.verdict == Verdict::Error)
        .map(|(c, _)| c.id.to_string())
        .filter(|id| !not_run.contains(id))
        .collect();
    not_run.extend(regraded_not_run);
    let incomplete = incomplete(cx, &cases, &not_run, runs.head_regraded.as_ref());
    let base_sum = cx.base.map(|b| summary(b, cases.iter().filter_map(|c| c.base.as_ref())));
    let head_sum = summary(cx.head, cases.iter().map(|c| &c.head));
    let paired = base_sum.is_some();
    let base_passing = base_sum.as_ref().map_or(0, |s| s.passed);
    let base_failing = base_sum.as_ref().map_or(0, |s| s.failed);
    let regression_rate = stats::rate(regressions.len() as u64, base_passing);
    let fix_rate = stats::rate(fixes.len() as u64, base_failing);
    let judge = judge_info(cx.instrument);
    let agreement = AgreementSides {
        base: paired.then(|| agreement(cases.iter().filter_map(|c| Some((c.label?, c.base.as_ref()?))))).flatten(),
        head: agreement(cases.iter().filter_map(|c| Some((c.label?, &c.head)))),
    };
    let judge_change = runs.head_regraded.as_ref().map(|r| judge_change(cx, &cases, r));
    let agreement_drop = judge_change.as_ref().and_then(agreement_drop);
    let measures = Measures {
        paired,
        regressions: regressions.len() as u64,
        regression_rate,
        fixes: fixes.len() as u64,
        fix_rate,
        base_failing,
        head_pass_rate: head_sum.pass_rate,
        cost_increase: match &base_sum {
            Some(b) => cost_increase(b, &head_sum),
            None => Err("a new bundle has no base".into()),
        },
        p95_latency_increase_ms: match &base_sum {
            Some(b) => latency_increase(b, &head_sum),
            None => Err("a new bundle has no base".into()),
        },
        critical_regressions: critical,
        judge_error_rate: Sides {
            base: base_sum.as_ref().map(|b| b.judge_error_rate),
            head: head_sum.judge_error_rate,
        },
        agreement_drop,
        incomplete: incomplete.as_ref().map(|i| i.to_string()),
    };
    let smallest = stats::smallest_resolvable_rate(base_passing).filter(|_| paired);
    let resolution_note = match (cx.thresholds.get(Key::MaxRegressionRate), smallest) {
        (Some(max), Some(s)) if max > 0.0 && s > max => Some(format!(
            "the golden set is too small to resolve max_regression_rate {}: one regression among {base_passing} base-passing cases is already {}; the smallest rate it can resolve is {}",
            gate::pct(max),
            gate::pct(s),
            gate::pct(s)
        )),
        _ => None,
    };
    let thresholds_not_applicable = if paired {
        Vec::new()
    } else {
        cx.thresholds
            .values
            .keys()
            .filter(|k| **k != Key::MinPassRate)
            .map(|k| format!("{k}: n/a for a new bundle (nothing to compare with)"))
            .collect()
    };
    let schema_drift = cx.base.map(|b| schema_drift(b, cx.head, &cases)).unwrap_or_default();
    let judge_error_rate = head_sum.judge_error_rate.max(base_sum.as_ref().map_or(0.0, |b| b.judge_error_rate));
    Report {
        bundle: cx.head.name.to_string(),
        comparison,
        head: head_sum,
        base: base_sum,
        golden_set: golden.name.clone(),
        golden_set_sha256: golden.pin,
        judge_sha256: judge.as_ref().map(|j| j.identity_sha256),
        mcnemar_p: paired.then(|| stats::mcnemar_exact_p(regressions.len() as u64, fixes.len() as u64)),
        regressions,
        fixes,
        flaky,
        head_flaky,
        ungraded_on_base: ungraded,
        regression_rate: paired.then_some(regression_rate),
        fix_rate: paired.then_some(fix_rate),
        judge_error_rate,
        judge_change,
        smallest_resolvable_rate: smallest,
        resolution_note,
        thresholds: cx.thresholds.values.iter().map(|(k, t)| (k.as_str().to_owned(), *t)).collect(),
        thresholds_ignored: cx.thresholds.ignored.clone(),
        thresholds_not_applicable,
        critical_tags: cx.thresholds.critical_tags.clone(),
        gate: gate::decide(cx.thresholds, &measures),
        incomplete,
        judge,
        agreement,
        schema_drift,
        calls: cx.calls,
        cases,
    }
}

/// Any case that could not be run, on either side, for any reason, makes the run incomplete.
fn incomplete(
    cx: &Context<'_>,
    cases: &[CaseReport],
    not_run: &[String],
    regraded: Option<&SideRun>,
) -> Option<Incomplete> {
    if cx.stopped.is_none() && not_run.is_empty() {
        return None;
    }
    let first_error = || {
        cases
            .iter()
            .flat_map(|c| c.base.iter().chain(std::iter::once(&c.head)))
            .chain(regraded.into_iter().flat_map(|r| &r.cases))
            .find_map(|r| r.error().map(str::to_owned))
    };
    let reason = cx.stopped.clone().or_else(first_error).unwrap_or_else(|| "a case could not be run".to_owned());
    Some(Incomplete { reason, cases: not_run.to_vec() })
}

fn cost_increase(base: &SideSummary, head: &SideSummary) -> gate::Measured<f64> {
    let per_case = |s: &SideSummary, side: &str| {
        s.cost_per_case_usd.ok_or_else(|| {
            if s.cases == 0 {
                format!("no case ran on {side}")
            } else {
                format!("the cost per case on {side} is unknown: no price for {}", s.snapshot)
            }
        })
    };
    Ok(gate::relative_increase(per_case(base, "base")?, per_case(head, "head")?))
}

fn latency_increase(base: &SideSummary, head: &SideSummary) -> gate::Measured<f64> {
    let p95 = |s: &SideSummary, side: &str| s.p95_latency_ms.ok_or_else(|| format!("no latency measured on {side}"));
    Ok(p95(head, "head")? - p95(base, "base")?)
}

fn summary<'a>(bundle: &Bundle, runs: impl Iterator<Item = &'a CaseRun>) -> SideSummary {
    let runs: Vec<&CaseRun> = runs.collect();
    let n = runs.len() as u64;
    let count = |v: Verdict| runs.iter().filter(|r| r.verdict == v).count() as u64;
    let passed = count(Verdict::Pass);
    let judge_errors = count(Verdict::JudgeError);
    let transcripts = || runs.iter().flat_map(|r| r.samples.iter().filter_map(|s| s.transcript.as_ref()));
    let costs: Option<Vec<f64>> = runs.iter().map(|r| r.cost_usd()).collect();
    let latencies: Vec<f64> = runs.iter().filter_map(|r| r.latency_ms()).collect();
    SideSummary {
        bundle_sha256: bundle.hash,
        version: bundle.version.clone(),
        snapshot: bundle.model.snapshot.to_string(),
        pass_rate: stats::rate(passed, n),
        pass_rate_ci95: stats::wilson_ci95(passed, n).map(|(lo, hi)| [lo, hi]),
        cases: n,
        passed,
        failed: count(Verdict::Fail),
        errors: count(Verdict::Error) + judge_errors,
        judge_errors,
        judge_error_rate: judge_error_rate(runs.iter().copied()),
        cost_usd: transcripts().map(|t| t.cost_usd).sum::<Option<f64>>(),
        cost_per_case_usd: costs.filter(|c| !c.is_empty()).map(|c| c.iter().sum::<f64>() / c.len() as f64),
        tokens_in: transcripts().map(|t| t.tokens_in).sum(),
        tokens_out: transcripts().map(|t| t.tokens_out).sum(),
        p95_latency_ms: stats::percentile(&latencies, 95.0),
    }
}

/// Judge checks that ended in a judge error, over all judge checks graded, on one side.
fn judge_error_rate<'a>(runs: impl Iterator<Item = &'a CaseRun>) -> f64 {
    let (mut errors, mut total) = (0u64, 0u64);
    for j in runs.flat_map(|r| &r.samples).flat_map(|s| &s.judge) {
        total += 1;
        errors += u64::from(j.outcome.passed().is_none());
    }
    stats::rate(errors, total)
}

fn judge_info(b: &Bundle) -> Option<JudgeInfo> {
    let j = b.eval.judge.as_ref()?;
    Some(JudgeInfo {
        snapshot: j.snapshot.to_string(),
        identity_sha256: JudgeIdentity::new(j, j.rubric.as_deref().unwrap_or_default()).sha256,
        samples: j.samples,
    })
}

/// The judge's verdict on one case run: the majority of its samples' judge verdicts (`None`
/// on a tie, or without a decided judge verdict).
fn judge_majority(run: &CaseRun) -> Option<bool> {
    let votes: Vec<bool> = run.samples.iter().filter_map(|s| s.judge_verdict()).collect();
    let yes = votes.iter().filter(|v| **v).count();
    let no = votes.len() - yes;
    (yes != no).then_some(yes > no)
}

/// Judge verdicts against human labels over (label, run) pairs.
fn agreement<'a>(runs: impl Iterator<Item = (Label, &'a CaseRun)>) -> Option<AgreementInfo> {
    let pairs: Vec<(bool, bool)> =
        runs.filter_map(|(label, run)| Some((judge_majority(run)?, label == Label::Pass))).collect();
    stats::agreement(&pairs).map(AgreementInfo::from)
}

/// Both judges on the head's transcripts, against the labels of the same cases: those
/// labelled and decided by both judges.
fn judge_change(cx: &Context<'_>, cases: &[CaseReport], regraded: &SideRun) -> JudgeChange {
    let mut old = Vec::new();
    let mut new = Vec::new();
    for (c, r) in cases.iter().zip(&regraded.cases) {
        let Some(label) = c.label else { continue };
        let human = label == Label::Pass;
        if let (Some(o), Some(n)) = (judge_majority(&c.head), judge_majority(r)) {
            old.push((o, human));
            new.push((n, human));
        }
    }
    let (base_agreement, head_agreement) =
        (stats::agreement(&old).map(AgreementInfo::from), stats::agreement(&new).map(AgreementInfo::from));
    let note = base_agreement.is_none().then(|| {
        "no labelled case was decided by both judges, so the judges' agreement with human labels cannot be compared"
            .to_owned()
    });
    JudgeChange {
        base: judge_info(cx.instrument),
        head: judge_info(cx.head),
        base_agreement,
        head_agreement,
        note,
        head_judge_error_rate: judge_error_rate(regraded.cases.iter()),
    }
}

/// Why a changed judge fails the gate: it agrees less with the labels, its agreement cannot be
/// measured (an unknown is never a pass), or it cannot decide more than 5% of what it grades.
fn agreement_drop(c: &JudgeChange) -> Option<String> {
    let id = |j: &Option<JudgeInfo>| j.as_ref().map_or("none".to_owned(), |j| j.identity_sha256.short());
    let changed = format!("the judge changed ({} → {})", id(&c.base), id(&c.head));
    if c.head_judge_error_rate > gate::MAX_JUDGE_ERROR_RATE {
        return Some(format!(
            "{changed} and the new judge could not decide {} of its judge checks (> {})",
            gate::pct(c.head_judge_error_rate),
            gate::pct(gate::MAX_JUDGE_ERROR_RATE)
        ));
    }
    match (&c.base_agreement, &c.head_agreement) {
        (Some(old), Some(new)) if new.percent < old.percent => Some(format!(
            "{changed} and its agreement with human labels dropped from {:.1}% to {:.1}% on the same {} cases",
            old.percent, new.percent, old.cases
        )),
        (Some(_), Some(_)) => None,
        _ => Some(format!(
            "{changed} and its agreement with human labels cannot be measured: no labelled case was decided by both judges; label cases, or a reviewer overrides"
        )),
    }
}

fn schema_drift(base: &Bundle, head: &Bundle, cases: &[CaseReport]) -> Vec<DriftCall> {
    let mut out = Vec::new();
    for c in cases {
        let calls: Vec<&ToolCall> =
            c.head.samples.iter().filter_map(|s| s.transcript.as_ref()).flat_map(|t| t.tool_calls()).collect();
        for call in calls {
            if args_error(&base.tools, &call.name, &call.args).is_some() {
                continue;
            }
            if let Some(head_error) = args_error(&head.tools, &call.name, &call.args) {
                out.push(DriftCall {
                    case: c.id.clone(),
                    tool: call.name.clone(),
                    args: call.args.clone(),
                    head_error,
                });
            }
        }
    }
    out
}

impl Report {
    /// The one-line title of the check run, e.g.
    /// `gate failed: 2 regressions (regression rate 1.4% > 1.0%), 5 fixes`.
    pub fn title(&self) -> String {
        let n = |k: usize, one: &str, many: &str| format!("{k} {}", if k == 1 { one } else { many });
        let regressions = n(self.regressions.len(), "regression", "regressions");
        let fixes = n(self.fixes.len(), "fix", "fixes");
        if let Some(why) = &self.incomplete {
            return format!("evaluation incomplete: {why}");
        }
        if self.comparison == Comparison::HeadOnly {
            let rate =
                format!("pass rate {} ({}/{})", gate::pct(self.head.pass_rate), self.head.passed, self.head.cases);
            return match (self.gate.passed, self.gate.reasons.first()) {
                (true, _) | (false, None) => format!("new bundle, head alone: gate passed: {rate}"),
                (false, Some(reason)) => format!("new bundle, head alone: gate failed: {reason}"),
            };
        }
        if self.gate.passed {
            return format!("gate passed: {regressions}, {fixes}");
        }
        let rate = self
            .thresholds
            .get(Key::MaxRegressionRate.as_str())
            .zip(self.regression_rate)
            .filter(|(t, r)| *r > t.value);
        let first = match rate {
            Some((t, r)) => format!("{regressions} (regression rate {} > {})", gate::pct(r), gate::pct(t.value)),
            None => regressions,
        };
        let mut title = format!("gate failed: {first}, {fixes}");
        if rate.is_none() {
            if let Some(reason) = self.gate.reasons.first() {
                title.push_str(&format!(" ({reason})"));
            }
        }
        title
    }
}

#[cfg(test)]
mod tests {
    //! SPEC's "Words", one rule a test: majority verdicts on each side, flaky on either side,
    //! judge errors on either side, critical cases, and cases that could not run.

    use super::*;
    use crate::config::RepoConfig;
    use crate::diagnostic::Diagnostics;
    use crate::engine::{JudgeResult, SampleRun, case_verdict};
    use crate::gate::{Key, Source};
    use crate::golden::{Case, Message, Role};
    use crate::ids::CaseId;
    use crate::repo::{RepoPath, WorkTree};

    fn sample(v: Verdict) -> SampleRun {
        SampleRun {
            sample: 0,
            verdict: v,
            error: (v == Verdict::Error).then(|| "provider unavailable: 503".to_owned()),
            cached: false,
            transcript: None,
            checks: Vec::new(),
            judge: Vec::new(),
        }
    }

    /// A case run from its samples' verdicts, decided by SPEC's majority rule.
    fn run(vs: &[Verdict]) -> CaseRun {
        let samples: Vec<SampleRun> = vs.iter().map(|v| sample(*v)).collect();
        let (verdict, flaky) = case_verdict(&samples);
        CaseRun { verdict, flaky, samples }
    }

    use Verdict::{Error as E, Fail as F, JudgeError as J, Pass as P};

    #[test]
    fn a_case_passes_on_more_than_half_of_its_samples_and_a_tie_is_not_a_pass() {
        assert_eq!(run(&[P, P, F]).verdict, P);
        assert_eq!(run(&[P, F]).verdict, F);
        assert_eq!(run(&[P, F, F]).verdict, F);
        assert!(run(&[P, F, F]).flaky);
        assert!(!run(&[P, P, P]).flaky);
    }

    #[test]
    fn pass_on_base_and_fail_on_head_is_a_regression() {
        assert_eq!(classify(Some(&run(&[P])), &run(&[F])), Change::Regression);
    }

    #[test]
    fn fail_on_base_and_pass_on_head_is_a_fix() {
        assert_eq!(classify(Some(&run(&[F])), &run(&[P])), Change::Fix);
    }

    #[test]
    fn pass_on_base_and_a_judge_error_on_head_is_a_regression() {
        let c = classify(Some(&run(&[P])), &run(&[J]));
        assert_eq!(c, Change::RegressionJudgeError);
        assert!(c.is_regression());
    }

    #[test]
    fn fail_on_base_and_a_judge_error_on_head_is_not_a_fix() {
        assert_eq!(classify(Some(&run(&[F])), &run(&[J])), Change::Unchanged);
    }

    #[test]
    fn a_judge_error_on_base_is_counted_neither_way() {
        assert_eq!(classify(Some(&run(&[J])), &run(&[P])), Change::UngradedOnBase);
        assert_eq!(classify(Some(&run(&[J])), &run(&[F])), Change::UngradedOnBase);
    }

    #[test]
    fn a_case_flaky_on_base_is_listed_apart_whatever_head_does() {
        assert_eq!(classify(Some(&run(&[P, P, F])), &run(&[F, F, F])), Change::Flaky);
        assert_eq!(classify(Some(&run(&[F, F, P])), &run(&[P, P, P])), Change::Flaky);
    }

    #[test]
    fn a_case_stable_on_base_that_turns_flaky_on_head_counts_by_its_majority() {
        assert_eq!(classify(Some(&run(&[P, P, P])), &run(&[P, F, F])), Change::Regression);
        assert_eq!(classify(Some(&run(&[F, F, F])), &run(&[P, P, F])), Change::Fix);
        assert_eq!(classify(Some(&run(&[P, P, P])), &run(&[P, P, F])), Change::Unchanged);
    }

    #[test]
    fn a_case_that_could_not_run_on_either_side_is_not_run() {
        assert_eq!(classify(Some(&run(&[E])), &run(&[P])), Change::NotRun);
        assert_eq!(classify(Some(&run(&[P])), &run(&[P, E, P])), Change::NotRun);
        assert_eq!(classify(None, &run(&[E])), Change::NotRun);
    }

    #[test]
    fn a_head_only_case_is_new() {
        assert_eq!(classify(None, &run(&[F])), Change::New);
    }

    #[test]
    fn a_critical_case_breaks_the_gate_when_it_regresses_flaky_or_not() {
        assert!(critical_breach(Some(&run(&[P, P, F])), &run(&[F, F, P])));
        assert!(critical_breach(Some(&run(&[P])), &run(&[J])));
        assert!(!critical_breach(Some(&run(&[F])), &run(&[F])));
        assert!(critical_breach(None, &run(&[F])));
    }

    // --- whole reports ---------------------------------------------------------------------

    const BUNDLE: &str = "bundle: demo\nversion: \"1\"\nmodel: { provider: anthropic, snapshot: claude-opus-4-6 }\nprompt: prompt.md\neval:\n  golden_set: golden\n  golden_set_sha256: \"0000000000000000000000000000000000000000000000000000000000000000\"\n  samples: 3\n  judge: { provider: anthropic, snapshot: claude-haiku-4-5-20251001, rubric: rubric.md, samples: 1 }\n  gate: { max_regression_rate: 0.0, critical_tags: [critical] }\n";

    fn bundle() -> Bundle {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("bundle.yaml"), BUNDLE).expect("write");
        std::fs::write(dir.path().join("prompt.md"), "You are helpful.\n").expect("write");
        std::fs::write(dir.path().join("rubric.md"), "Be right.\n").expect("write");
        std::fs::create_dir(dir.path().join(".git")).expect("mkdir");
        let fs = WorkTree::new(dir.path()).expect("worktree");
        let mut d = Diagnostics::new();
        let manifest = RepoPath::parse("bundle.yaml").expect("path");
        let b = crate::bundle::load(&fs, &RepoConfig::default(), &manifest, &mut d);
        b.unwrap_or_else(|| panic!("fixture bundle: {:?}", d.into_sorted()))
    }

    fn golden(ids: &[(&str, &[&str])]) -> GoldenSet {
        let cases = ids
            .iter()
            .enumerate()
            .map(|(i, (id, tags))| Case {
                id: CaseId::parse(id).expect("id"),
                line: i as u32 + 1,
                messages: vec![Message { role: Role::User, content: "hi".into() }],
                tool_results: Default::default(),
                checks: Vec::new(),
                label: None,
                tags: tags.iter().map(|t| t.to_string()).collect(),
                source: None,
            })
            .collect();
        GoldenSet {
            dir: RepoPath::parse("golden").expect("path"),
            name: "g".into(),
            version: "1".into(),
            description: None,
            cases,
            pin: Sha256::digest(b"g"),
        }
    }

    fn report(ids: &[(&str, &[&str])], base: Option<Vec<CaseRun>>, head: Vec<CaseRun>) -> Report {
        let b = bundle();
        let g = golden(ids);
        let t = Thresholds::from_base(&b.eval.gate);
        let cx = Context {
            base: base.is_some().then_some(&b),
            head: &b,
            instrument: &b,
            golden: &g,
            thresholds: &t,
            calls: CallCounts::default(),
            stopped: None,
        };
        build(
            &cx,
            Runs { base: base.map(|cases| SideRun { cases }), head: SideRun { cases: head }, head_regraded: None },
        )
    }

    #[test]
    fn a_judge_error_regression_counts_in_the_regression_rate_and_fails_the_gate() {
        let r = report(&[("a", &[]), ("b", &[])], Some(vec![run(&[P]), run(&[P])]), vec![run(&[J]), run(&[P])]);
        assert_eq!(r.regressions, ["a"]);
        assert_eq!(r.regression_rate, Some(0.5));
        assert!(!r.gate.passed);
    }

    #[test]
    fn flaky_on_base_and_flaky_on_head_are_listed_in_their_own_lists() {
        let r = report(
            &[("base-flaky", &[]), ("head-flaky", &[])],
            Some(vec![run(&[P, P, F]), run(&[P, P, P])]),
            vec![run(&[F, F, F]), run(&[F, F, P])],
        );
        assert_eq!(r.flaky, ["base-flaky"]);
        assert_eq!(r.head_flaky, ["head-flaky"]);
        assert_eq!(r.regressions, ["head-flaky"]);
    }

    #[test]
    fn a_critical_case_flaky_on_base_that_regresses_fails_the_gate_even_with_no_rate_limit() {
        let b = bundle();
        let g = golden(&[("c", &["critical"])]);
        let mut t = Thresholds::from_base(&crate::bundle::GateConfig::default());
        t.tighten(Key::MinPassRate, 0.0, Source::Cli);
        let cx = Context {
            base: Some(&b),
            head: &b,
            instrument: &b,
            golden: &g,
            thresholds: &t,
            calls: CallCounts::default(),
            stopped: None,
        };
        let runs = Runs {
            base: Some(SideRun { cases: vec![run(&[P, P, F])] }),
            head: SideRun { cases: vec![run(&[F, F, P])] },
            head_regraded: None,
        };
        let r = build(&cx, runs);
        assert!(r.regressions.is_empty(), "flaky on base is not counted as a regression");
        assert_eq!(r.gate.reasons, ["critical case c regressed"]);
    }

    #[test]
    fn a_case_that_could_not_run_makes_the_run_incomplete_naming_it() {
        let r = report(&[("a", &[]), ("b", &[])], Some(vec![run(&[P]), run(&[P])]), vec![run(&[P]), run(&[E])]);
        let inc = r.incomplete.as_ref().expect("incomplete");
        assert_eq!(inc.cases, ["b"]);
        assert_eq!(inc.reason, "provider unavailable: 503");
        assert!(!r.gate.passed);
        assert!(
            r.title().starts_with("evaluation incomplete: provider unavailable: 503 (not run: b)"),
            "{}",
            r.title()
        );
    }

    #[test]
    fn judge_error_rates_are_per_side() {
        let mut judged = run(&[P]);
        let judge = |pass: Option<bool>| JudgeResult {
            judge_sha256: Sha256::digest(b"j"),
            rubric: String::new(),
            outcome: match pass {
                Some(pass) => crate::engine::judge::JudgeOutcome::Decided { pass, votes: Vec::new() },
                None => crate::engine::judge::JudgeOutcome::Error { reason: "unreadable".into(), votes: Vec::new() },
            },
        };
        judged.samples[0].judge = vec![judge(Some(true))];
        let mut errored = run(&[J]);
        errored.samples[0].judge = vec![judge(None)];
        let r = report(&[("a", &[]), ("b", &[])], Some(vec![judged.clone(), judged.clone()]), vec![judged, errored]);
        assert_eq!(r.base.as_ref().map(|b| b.judge_error_rate), Some(0.0));
        assert_eq!(r.head.judge_error_rate, 0.5);
        assert_eq!(r.judge_error_rate, 0.5);
        assert!(r.gate.reasons.iter().any(|x| x == "judge error rate on head 50.0% > 5.0%"), "{:?}", r.gate.reasons);
    }

    #[test]
    fn a_head_only_report_has_no_rates_to_compare() {
        let r = report(&[("a", &[])], None, vec![run(&[P])]);
        assert_eq!(r.comparison, Comparison::HeadOnly);
        assert_eq!((r.regression_rate, r.fix_rate, r.mcnemar_p), (None, None, None));
        assert!(r.base.is_none());
        assert_eq!(r.cases[0].change, Change::New);
        assert!(r.gate.passed, "{:?}", r.gate.reasons);
        assert_eq!(
            r.thresholds_not_applicable,
            ["max_regression_rate: n/a for a new bundle (nothing to compare with)"]
        );
    }

    #[test]
    fn a_changed_judge_whose_agreement_cannot_be_measured_fails_the_gate() {
        let b = bundle();
        let g = golden(&[("a", &[])]);
        let t = Thresholds::from_base(&b.eval.gate);
        let cx = Context {
            base: Some(&b),
            head: &b,
            instrument: &b,
            golden: &g,
            thresholds: &t,
            calls: CallCounts::default(),
            stopped: None,
        };
        let runs = Runs {
            base: Some(SideRun { cases: vec![run(&[P])] }),
            head: SideRun { cases: vec![run(&[P])] },
            head_regraded: Some(SideRun { cases: vec![run(&[P])] }),
        };
        let r = build(&cx, runs);
        let change = r.judge_change.as_ref().expect("judge change");
        assert!(change.note.is_some());
        assert!(!r.gate.passed);
        assert!(r.gate.reasons.iter().any(|x| x.contains("cannot be measured")), "{:?}", r.gate.reasons);
    }

    #[test]
    fn a_report_reads_back_as_the_report_it_was() {
        let r = report(&[("a", &[])], Some(vec![run(&[P])]), vec![run(&[F])]);
        let text = serde_json::to_string(&r).expect("serialise");
        let back: Report = serde_json::from_str(&text).expect("deserialise");
        assert_eq!(back, r);
    }
}
