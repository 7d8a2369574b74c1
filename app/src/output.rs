//! What `evalgate eval` writes: the terminal summary, and the `--json`, `--markdown` and
//! `--junit` files. The markdown comes from `templates/check-summary.md.hbs`, the same
//! template the check run's summary uses.

use anyhow::Context as _;
use evaluators::bundle::Bundle;
use evaluators::engine::estimate::Estimate;
use evaluators::engine::{CaseRun, Verdict};
use evaluators::gate::{self, Key};
use evaluators::golden::GoldenSet;
use evaluators::report::{AgreementInfo, Change, Comparison, JudgeInfo, Report, SideSummary};
use serde_json::{Value, json};
use std::path::Path;

pub fn json(r: &Report) -> anyhow::Result<String> {
    let mut s = serde_json::to_string_pretty(r).context("serialising the report")?;
    s.push('\n');
    Ok(s)
}

pub fn markdown(r: &Report) -> anyhow::Result<String> {
    crate::render::Templates::shared()?.markdown("check-summary", &view(r))
}

pub fn junit(r: &Report) -> anyhow::Result<String> {
    use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new(format!("evalgate/{}", r.bundle));
    let mut gate = if r.gate.passed {
        TestCaseStatus::success()
    } else {
        let mut s = TestCaseStatus::non_success(if r.incomplete.is_some() {
            NonSuccessKind::Error
        } else {
            NonSuccessKind::Failure
        });
        s.set_message(r.title());
        s.set_description(r.gate.reasons.join("\n"));
        s
    };
    if r.gate.passed {
        gate.set_description(r.title());
    }
    let mut gate_case = TestCase::new("gate", gate);
    gate_case.set_classname(format!("evalgate.{}", r.bundle));
    suite.add_test_case(gate_case);
    for c in &r.cases {
        let status = match c.head.verdict {
            Verdict::Pass => TestCaseStatus::success(),
            Verdict::Fail => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let what = if c.change.is_regression() { "regressed: " } else { "" };
                s.set_message(format!("{what}{}", why_failed(&c.head)));
                s
            }
            Verdict::JudgeError | Verdict::Error => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                let what = if c.change.is_regression() { "regressed: " } else { "" };
                s.set_message(format!("{what}{}", why_failed(&c.head)));
                s
            }
        };
        let mut case = TestCase::new(c.id.clone(), status);
        case.set_classname(format!("evalgate.{}", r.bundle));
        suite.add_test_case(case);
    }
    let mut report = quick_junit::Report::new(format!("evalgate/{}", r.bundle));
    report.add_test_suite(suite);
    report.to_string().context("serialising JUnit XML")
}

/// Writes a file whole or not at all.
pub fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Why a case did not pass on one side, in one line.
pub fn why_failed(run: &CaseRun) -> String {
    if let Some(e) = run.error() {
        return e.to_owned();
    }
    let mut why = Vec::new();
    for s in &run.samples {
        for c in s.checks.iter().filter(|c| !c.passed) {
            why.push(format!("{}: {}", c.check_type, c.detail));
        }
        for j in &s.judge {
            match &j.outcome {
                evaluators::engine::judge::JudgeOutcome::Decided { pass: false, votes } => {
                    let reason = votes.iter().find(|v| !v.pass).map(|v| v.reason.as_str()).unwrap_or_default();
                    why.push(format!("judge: {reason}"));
                }
                evaluators::engine::judge::JudgeOutcome::Error { reason, .. } => {
                    why.push(format!("judge error: {reason}"))
                }
                _ => {}
            }
        }
        if !why.is_empty() {
            break;
        }
    }
    why.dedup();
    if why.is_empty() { "no check failed".to_owned() } else { why.join("; ") }
}

fn side_view(s: &SideSummary, agreement: Option<&AgreementInfo>) -> Value {
    json!({
        "hash": s.bundle_sha256.short(),
        "version": s.version,
        "snapshot": s.snapshot,
        "pass_rate": gate::pct(s.pass_rate),
        "ci": s.pass_rate_ci95.map(|[lo, hi]| format!("[{}, {}]", gate::pct(lo), gate::pct(hi))).unwrap_or_default(),
        "passed": s.passed,
        "cases": s.cases,
        "errors": s.errors,
        "judge_errors": s.judge_errors,
        "judge_error_rate": gate::pct(s.judge_error_rate),
        "cost_per_case": s.cost_per_case_usd.map(|c| format!("${c:.4}")).unwrap_or_else(|| "unknown (no price)".into()),
        "p95": s.p95_latency_ms.map(|v| format!("{v:.0} ms")).unwrap_or_else(|| "n/a".into()),
        "tokens_in": s.tokens_in,
        "tokens_out": s.tokens_out,
        "agreement": agreement_text(agreement),
    })
}

/// "91.7% on 24 labelled, κ 0.81, true-pass 94.1%, true-fail 85.7%", or "n/a".
pub fn agreement_text(a: Option<&AgreementInfo>) -> String {
    let Some(a) = a else { return "n/a".into() };
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map(f).unwrap_or_else(|| "n/a".into());
    format!(
        "{:.1}% on {} labelled, κ {}, true-pass {}, true-fail {}",
        a.percent,
        a.cases,
        opt(a.kappa, &|k| format!("{k:.2}")),
        opt(a.true_pass_rate, &gate::pct),
        opt(a.true_fail_rate, &gate::pct),
    )
}

/// A side that is not there (a new bundle's base): every cell "–".
fn no_side() -> Value {
    let dash = "–";
    json!({ "hash": dash, "version": "none", "snapshot": dash, "pass_rate": dash, "ci": "", "passed": dash, "cases": dash,
        "errors": dash, "judge_errors": dash, "judge_error_rate": dash, "cost_per_case": dash, "p95": dash,
        "tokens_in": dash, "tokens_out": dash, "agreement": dash })
}

/// A rate that a head-only evaluation does not have.
fn rate_text(v: Option<f64>) -> String {
    v.map(gate::pct).unwrap_or_else(|| "n/a".into())
}

fn judge_text(j: Option<&JudgeInfo>) -> String {
    j.map(|j| format!("{} ({} votes, `{}`)", j.snapshot, j.samples, j.identity_sha256.short()))
        .unwrap_or_else(|| "none".into())
}

fn view(r: &Report) -> Value {
    let tags = |t: &[String]| t.join(", ");
    let regressions: Vec<Value> = r
        .cases
        .iter()
        .filter(|c| c.change.is_regression())
        .map(|c| {
            let judge_error = if c.change == Change::RegressionJudgeError { " (judge error)" } else { "" };
            json!({"id": c.id, "tags": tags(&c.tags), "why": format!("regression{judge_error}: {}", why_failed(&c.head))})
        })
        .collect();
    let fixes: Vec<Value> = r
        .cases
        .iter()
        .filter(|c| c.change == Change::Fix)
        .map(|c| json!({"id": c.id, "tags": tags(&c.tags)}))
        .collect();
    let errors: Vec<Value> = r
        .cases
        .iter()
        .flat_map(|c| {
            [("base", c.base.as_ref()), ("head", Some(&c.head))]
                .into_iter()
                .filter_map(|(side, run)| Some((side, run?)))
                .filter(|(_, run)| matches!(run.verdict, Verdict::Error | Verdict::JudgeError))
                .map(|(side, run)| json!({"id": c.id, "side": side, "why": why_failed(run)}))
                .collect::<Vec<_>>()
        })
        .collect();
    let thresholds: Vec<Value> = Key::ALL
        .iter()
        .filter_map(|k| {
            r.thresholds.get(k.as_str()).map(
                |t| json!({"key": k.as_str(), "value": gate::fmt_value(*k, t.value), "source": t.source.to_string()}),
            )
        })
        .collect();
    let judge_change = r.judge_change.as_ref().map(|c| {
        json!({
            "base": judge_text(c.base.as_ref()),
            "head": judge_text(c.head.as_ref()),
            "base_agreement": agreement_text(c.base_agreement.as_ref()),
            "head_agreement": agreement_text(c.head_agreement.as_ref()),
            "note": c.note.clone().unwrap_or_default(),
        })
    });
    json!({
        "title": r.title(),
        "passed": r.gate.passed,
        "head_only": r.comparison == Comparison::HeadOnly,
        "base": r.base.as_ref().map(|b| side_view(b, r.agreement.base.as_ref())).unwrap_or_else(no_side),
        "head": side_view(&r.head, r.agreement.head.as_ref()),
        "regression_rate": rate_text(r.regression_rate),
        "fix_rate": rate_text(r.fix_rate),
        "mcnemar_p": r.mcnemar_p.map(|p| format!("{p:.3}")).unwrap_or_else(|| "n/a".into()),
        "judge_error_rate": gate::pct(r.judge_error_rate),
        "regression_count": r.regressions.len(),
        "fix_count": r.fixes.len(),
        "golden_set": r.golden_set,
        "golden_set_sha256": r.golden_set_sha256.short(),
        "judge": judge_text(r.judge.as_ref()),
        "judge_change": judge_change,
        "incomplete": r.incomplete.as_ref().map(|i| i.to_string()).unwrap_or_default(),
        "resolution_note": r.resolution_note.clone().unwrap_or_default(),
        "reasons": r.gate.reasons,
        "thresholds": thresholds,
        "critical_tags": r.critical_tags.join(", "),
        "ignored": r.thresholds_ignored,
        "not_applicable": r.thresholds_not_applicable,
        "regressions": regressions,
        "fixes": fixes,
        "flaky": r.flaky,
        "head_flaky": r.head_flaky,
        "ungraded_on_base": r.ungraded_on_base,
        "errors": errors,
        "schema_drift": r.schema_drift.iter().map(|d| json!({"case": d.case, "tool": d.tool, "args": d.args.to_string(), "error": d.head_error})).collect::<Vec<_>>(),
        "calls": format!("{} model calls; {} agent runs and {} judge votes from the cache", r.calls.model_calls, r.calls.cached_transcripts, r.calls.cached_votes),
    })
}

/// The terminal summary: the title, both sides, the rates, and what moved.
pub fn summary_text(r: &Report) -> String {
    let mut s = format!("evalgate/{}: {}\n", r.bundle, r.title());
    for (name, side) in [("base", r.base.as_ref()), ("head", Some(&r.head))] {
        let Some(side) = side else {
            s.push_str("  base  none: a new bundle, evaluated on head alone\n");
            continue;
        };
        let ci =
            side.pass_rate_ci95.map(|[lo, hi]| format!(" [{}, {}]", gate::pct(lo), gate::pct(hi))).unwrap_or_default();
        s.push_str(&format!(
            "  {name}  {} {}  pass rate {}{ci}  {}/{} passed, {} errors  cost/case {}  p95 {}\n",
            side.version,
            side.bundle_sha256.short(),
            gate::pct(side.pass_rate),
            side.passed,
            side.cases,
            side.errors,
            side.cost_per_case_usd.map(|c| format!("${c:.4}")).unwrap_or_else(|| "unknown".into()),
            side.p95_latency_ms.map(|v| format!("{v:.0} ms")).unwrap_or_else(|| "n/a".into()),
        ));
    }
    s.push_str(&format!(
        "  regression rate {}  fix rate {}  McNemar p {}  judge error rate {}\n",
        rate_text(r.regression_rate),
        rate_text(r.fix_rate),
        r.mcnemar_p.map(|p| format!("{p:.3}")).unwrap_or_else(|| "n/a".into()),
        gate::pct(r.judge_error_rate)
    ));
    let list = |ids: &[String]| if ids.is_empty() { "none".to_owned() } else { ids.join(", ") };
    s.push_str(&format!("  regressions: {}\n", list(&r.regressions)));
    s.push_str(&format!("  fixes: {}\n", list(&r.fixes)));
    if !r.flaky.is_empty() {
        s.push_str(&format!("  flaky on base (not counted): {}\n", list(&r.flaky)));
    }
    if !r.head_flaky.is_empty() {
        s.push_str(&format!("  flaky on head (counted by majority): {}\n", list(&r.head_flaky)));
    }
    if !r.ungraded_on_base.is_empty() {
        s.push_str(&format!("  judge error on base (not counted): {}\n", list(&r.ungraded_on_base)));
    }
    if let Some(c) = &r.judge_change {
        s.push_str(&format!(
            "  judge changed: base {} agrees {}; head {} agrees {}\n",
            judge_text(c.base.as_ref()),
            agreement_text(c.base_agreement.as_ref()),
            judge_text(c.head.as_ref()),
            agreement_text(c.head_agreement.as_ref())
        ));
    }
    if let Some(note) = &r.resolution_note {
        s.push_str(&format!("  note: {note}\n"));
    }
    for reason in &r.gate.reasons {
        s.push_str(&format!("  - {reason}\n"));
    }
    s.push_str(&format!(
        "  {} model calls; {} agent runs and {} judge votes from the cache\n",
        r.calls.model_calls, r.calls.cached_transcripts, r.calls.cached_votes
    ));
    s
}

pub fn print_estimate(e: &Estimate, base: &Bundle, head: &Bundle, golden: &GoldenSet) {
    println!(
        "evalgate/{}: estimate for {} cases of golden set {} (base {}, head {})",
        head.name,
        golden.cases.len(),
        golden.name,
        base.hash.short(),
        head.hash.short()
    );
    println!("  model calls: {} ({} agent, {} judge)", e.calls, e.agent_calls, e.judge_calls);
    println!("  cache hits: {} of {} agent runs and their judge votes", e.cache_hits, e.runs);
    println!("  tokens: ~{} in, ~{} out", e.tokens_in, e.tokens_out);
    match e.usd {
        Some(usd) => println!("  cost: ~${usd:.4}"),
        None => println!("  cost: unknown (a snapshot has no price; add it under `prices:` in .evalgate.yml)"),
    }
}
