//! The gate report: SPEC's `--json` fields and everything the summaries render, computed from
//! the two sides' runs. Pure: the same runs give the same report, byte for byte.

use crate::bundle::Bundle;
use crate::engine::checks::args_error;
use crate::engine::judge::JudgeIdentity;
use crate::engine::{CallCounts, CaseRun, SideRun, Verdict};
use crate::gate::{self, Decision, Key, Measures, Threshold, Thresholds};
use crate::golden::{GoldenSet, Label};
use crate::ids::Sha256;
use crate::provider::ToolCall;
use crate::stats;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub bundle: String,
    pub base: SideSummary,
    pub head: SideSummary,
    pub golden_set: String,
    pub golden_set_sha256: Sha256,
    pub regressions: Vec<String>,
    pub fixes: Vec<String>,
    pub flaky: Vec<String>,
    pub regression_rate: f64,
    pub fix_rate: f64,
    pub mcnemar_p: f64,
    pub judge_error_rate: f64,
    /// One regression among the base-passing cases, as a rate: the smallest rate this golden
    /// set can resolve (`null` when no case passes on base).
    pub smallest_resolvable_rate: Option<f64>,
    /// Set when a threshold in force is finer than the set can resolve.
    pub resolution_note: Option<String>,
    pub thresholds: BTreeMap<&'static str, Threshold>,
    /// Proposed thresholds not applied because they would loosen the gate.
    pub thresholds_ignored: Vec<String>,
    pub critical_tags: Vec<String>,
    pub gate: Decision,
    pub incomplete: Option<String>,
    pub judge: Sides<Option<JudgeInfo>>,
    pub agreement: Sides<Option<AgreementInfo>>,
    /// Head-side tool calls valid under the base bundle's schema but not under the head's.
    pub schema_drift: Vec<DriftCall>,
    pub calls: CallCounts,
    pub cases: Vec<CaseReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sides<T> {
    pub base: T,
    pub head: T,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// Agent cost of all samples; `null` when a snapshot has no price.
    pub cost_usd: Option<f64>,
    pub cost_per_case_usd: Option<f64>,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub p95_latency_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JudgeInfo {
    pub snapshot: String,
    /// Identity of the judge with the bundle's default rubric.
    pub identity_sha256: Sha256,
    pub samples: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgreementInfo {
    pub cases: u64,
    pub percent: f64,
    pub kappa: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftCall {
    pub case: String,
    pub tool: String,
    pub args: Value,
    pub head_error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Regression,
    Fix,
    Flaky,
    Unchanged,
    /// One side could not be graded.
    Ungraded,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseReport {
    pub id: String,
    pub line: u32,
    pub tags: Vec<String>,
    pub label: Option<Label>,
    /// The conversation the case starts from (for `/evalgate explain` and the report page).
    pub input: Vec<crate::golden::Message>,
    pub change: Change,
    pub base: CaseRun,
    pub head: CaseRun,
}

/// Everything besides the runs that the report needs.
pub struct Context<'a> {
    pub base: &'a Bundle,
    pub head: &'a Bundle,
    pub golden: &'a GoldenSet,
    pub thresholds: &'a Thresholds,
    pub calls: CallCounts,
    /// Why the run could not finish (budget reached, provider unavailable), if it could not.
    pub incomplete: Option<String>,
}

pub fn build(cx: &Context<'_>, base: SideRun, head: SideRun) -> Report {
    let golden = cx.golden;
    let mut regressions = Vec::new();
    let mut fixes = Vec::new();
    let mut flaky = Vec::new();
    let mut critical = Vec::new();
    let mut cases = Vec::new();
    for ((case, b), h) in golden.cases.iter().zip(base.cases).zip(head.cases) {
        let id = case.id.to_string();
        let change = match (b.verdict, h.verdict) {
            _ if b.flaky || h.flaky => Change::Flaky,
            (Verdict::Pass, Verdict::Fail) => Change::Regression,
            (Verdict::Fail, Verdict::Pass) => Change::Fix,
            (Verdict::Pass | Verdict::Fail, Verdict::Pass | Verdict::Fail) => Change::Unchanged,
            _ => Change::Ungraded,
        };
        match change {
            Change::Regression => {
                if case.tags.iter().any(|t| cx.thresholds.critical_tags.contains(t)) {
                    critical.push(id.clone());
                }
                regressions.push(id.clone());
            }
            Change::Fix => fixes.push(id.clone()),
            Change::Flaky => flaky.push(id.clone()),
            Change::Unchanged | Change::Ungraded => {}
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
    let base_sum = summary(cx.base, cases.iter().map(|c| &c.base));
    let head_sum = summary(cx.head, cases.iter().map(|c| &c.head));
    let base_passing = base_sum.passed;
    let base_failing = base_sum.failed;
    let regression_rate = stats::rate(regressions.len() as u64, base_passing);
    let fix_rate = stats::rate(fixes.len() as u64, base_failing);
    let judge_error_rate = judge_error_rate(&cases);
    let judge = Sides { base: judge_info(cx.base), head: judge_info(cx.head) };
    let agreement = Sides { base: agreement(&cases, |c| &c.base), head: agreement(&cases, |c| &c.head) };
    let agreement_drop = agreement_drop(&judge, &agreement);
    let measures = Measures {
        regressions: regressions.len() as u64,
        regression_rate,
        fixes: fixes.len() as u64,
        fix_rate,
        base_failing,
        head_pass_rate: head_sum.pass_rate,
        cost_increase: match (base_sum.cost_per_case_usd, head_sum.cost_per_case_usd) {
            (Some(b), Some(h)) if b > 0.0 => Some((h - b) / b),
            _ => None,
        },
        p95_latency_increase_ms: base_sum.p95_latency_ms.zip(head_sum.p95_latency_ms).map(|(b, h)| h - b),
        critical_regressions: critical,
        judge_error_rate,
        agreement_drop,
        incomplete: cx.incomplete.clone(),
    };
    let smallest = stats::smallest_resolvable_rate(base_passing);
    let resolution_note = match (cx.thresholds.get(Key::MaxRegressionRate), smallest) {
        (Some(max), Some(s)) if max > 0.0 && s > max => Some(format!(
            "the golden set is too small to resolve max_regression_rate {}: one regression among {base_passing} base-passing cases is already {}; the smallest rate it can resolve is {}",
            gate::pct(max),
            gate::pct(s),
            gate::pct(s)
        )),
        _ => None,
    };
    let schema_drift = schema_drift(cx, &cases);
    Report {
        bundle: cx.head.name.to_string(),
        base: base_sum,
        head: head_sum,
        golden_set: golden.name.clone(),
        golden_set_sha256: golden.pin,
        mcnemar_p: stats::mcnemar_exact_p(regressions.len() as u64, fixes.len() as u64),
        regressions,
        fixes,
        flaky,
        regression_rate,
        fix_rate,
        judge_error_rate,
        smallest_resolvable_rate: smallest,
        resolution_note,
        thresholds: cx.thresholds.values.iter().map(|(k, t)| (k.as_str(), *t)).collect(),
        thresholds_ignored: cx.thresholds.ignored.clone(),
        critical_tags: cx.thresholds.critical_tags.clone(),
        gate: gate::decide(cx.thresholds, &measures),
        incomplete: cx.incomplete.clone(),
        judge,
        agreement,
        schema_drift,
        calls: cx.calls,
        cases,
    }
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
        cost_usd: transcripts().map(|t| t.cost_usd).sum::<Option<f64>>(),
        cost_per_case_usd: costs.filter(|c| !c.is_empty()).map(|c| c.iter().sum::<f64>() / c.len() as f64),
        tokens_in: transcripts().map(|t| t.tokens_in).sum(),
        tokens_out: transcripts().map(|t| t.tokens_out).sum(),
        p95_latency_ms: stats::percentile(&latencies, 95.0),
    }
}

/// Judge checks that ended in a judge error, over all judge checks graded, both sides.
fn judge_error_rate(cases: &[CaseReport]) -> f64 {
    let outcomes = cases
        .iter()
        .flat_map(|c| [&c.base, &c.head])
        .flat_map(|r| &r.samples)
        .flat_map(|s| &s.judge)
        .map(|j| j.outcome.passed().is_none());
    let (mut errors, mut total) = (0u64, 0u64);
    for e in outcomes {
        total += 1;
        errors += u64::from(e);
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

/// Judge verdicts against human labels on one side: per case, the majority of its samples'
/// judge verdicts (ties and judge errors left out).
fn agreement(cases: &[CaseReport], side: impl Fn(&CaseReport) -> &CaseRun) -> Option<AgreementInfo> {
    let pairs: Vec<(bool, bool)> = cases
        .iter()
        .filter_map(|c| {
            let human = c.label? == Label::Pass;
            let votes: Vec<bool> = side(c).samples.iter().filter_map(|s| s.judge_verdict()).collect();
            let yes = votes.iter().filter(|v| **v).count();
            let no = votes.len() - yes;
            (yes != no).then_some((yes > no, human))
        })
        .collect();
    stats::agreement(&pairs).map(|a| AgreementInfo { cases: a.cases, percent: a.percent, kappa: a.kappa })
}

fn agreement_drop(judge: &Sides<Option<JudgeInfo>>, a: &Sides<Option<AgreementInfo>>) -> Option<String> {
    let (Some(jb), Some(jh)) = (&judge.base, &judge.head) else { return None };
    let (Some(ab), Some(ah)) = (&a.base, &a.head) else { return None };
    (jb.identity_sha256 != jh.identity_sha256 && ah.percent < ab.percent).then(|| {
        format!(
            "the judge changed ({} → {}) and its agreement with human labels dropped from {:.1}% to {:.1}%",
            jb.identity_sha256.short(),
            jh.identity_sha256.short(),
            ab.percent,
            ah.percent
        )
    })
}

fn schema_drift(cx: &Context<'_>, cases: &[CaseReport]) -> Vec<DriftCall> {
    let mut out = Vec::new();
    for c in cases {
        let calls: Vec<&ToolCall> =
            c.head.samples.iter().filter_map(|s| s.transcript.as_ref()).flat_map(|t| t.tool_calls()).collect();
        for call in calls {
            if args_error(&cx.base.tools, &call.name, &call.args).is_some() {
                continue;
            }
            if let Some(head_error) = args_error(&cx.head.tools, &call.name, &call.args) {
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
        if self.gate.passed {
            return format!("gate passed: {regressions}, {fixes}");
        }
        let rate = self.thresholds.get(Key::MaxRegressionRate.as_str()).filter(|t| self.regression_rate > t.value);
        let first = match rate {
            Some(t) => {
                format!("{regressions} (regression rate {} > {})", gate::pct(self.regression_rate), gate::pct(t.value))
            }
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
