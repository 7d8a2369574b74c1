//! What `evalgate eval` writes: the terminal summary, and the `--json`, `--markdown` and
//! `--junit` files. The markdown comes from `templates/check-summary.md.hbs`, the same
//! template the check run's summary uses.

use anyhow::Context as _;
use evaluators::bundle::Bundle;
use evaluators::engine::estimate::Estimate;
use evaluators::engine::{CaseRun, Verdict};
use evaluators::gate::{self, Key};
use evaluators::golden::GoldenSet;
use evaluators::report::{Change, Report, SideSummary};
use serde_json::{Value, json};
use std::path::Path;

const SUMMARY_TEMPLATE: &str = include_str!("../../templates/check-summary.md.hbs");

pub fn json(r: &Report) -> anyhow::Result<String> {
    let mut s = serde_json::to_string_pretty(r).context("serialising the report")?;
    s.push('\n');
    Ok(s)
}

pub fn markdown(r: &Report) -> anyhow::Result<String> {
    let mut hb = handlebars::Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    hb.register_template_string("summary", SUMMARY_TEMPLATE).context("templates/check-summary.md.hbs")?;
    hb.render("summary", &view(r)).context("rendering templates/check-summary.md.hbs")
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
                let what = if c.change == Change::Regression { "regressed: " } else { "" };
                s.set_message(format!("{what}{}", why_failed(&c.head)));
                s
            }
            Verdict::JudgeError | Verdict::Error => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(why_failed(&c.head));
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

fn side_view(s: &SideSummary, agreement: Option<&evaluators::report::AgreementInfo>) -> Value {
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
        "cost_per_case": s.cost_per_case_usd.map(|c| format!("${c:.4}")).unwrap_or_else(|| "unknown (no price)".into()),
        "p95": s.p95_latency_ms.map(|v| format!("{v:.0} ms")).unwrap_or_else(|| "n/a".into()),
        "tokens_in": s.tokens_in,
        "tokens_out": s.tokens_out,
        "agreement": agreement.map(|a| format!("{:.1}% on {} labelled, κ {}", a.percent, a.cases, a.kappa.map(|k| format!("{k:.2}")).unwrap_or_else(|| "n/a".into()))).unwrap_or_else(|| "n/a".into()),
    })
}

fn view(r: &Report) -> Value {
    let tags = |t: &[String]| t.join(", ");
    let regressions: Vec<Value> = r
        .cases
        .iter()
        .filter(|c| c.change == Change::Regression)
        .map(|c| json!({"id": c.id, "tags": tags(&c.tags), "why": why_failed(&c.head)}))
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
            [("base", &c.base), ("head", &c.head)]
                .into_iter()
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
    let judge = match (&r.judge.base, &r.judge.head) {
        (Some(b), Some(h)) if b.identity_sha256 == h.identity_sha256 => {
            format!("{} (`{}`)", h.snapshot, h.identity_sha256.short())
        }
        (Some(b), Some(h)) => format!(
            "base {} (`{}`), head {} (`{}`)",
            b.snapshot,
            b.identity_sha256.short(),
            h.snapshot,
            h.identity_sha256.short()
        ),
        (None, Some(h)) => format!("{} (`{}`)", h.snapshot, h.identity_sha256.short()),
        (Some(b), None) => format!("base {} (`{}`), head none", b.snapshot, b.identity_sha256.short()),
        (None, None) => "none".to_owned(),
    };
    json!({
        "title": r.title(),
        "passed": r.gate.passed,
        "base": side_view(&r.base, r.agreement.base.as_ref()),
        "head": side_view(&r.head, r.agreement.head.as_ref()),
        "regression_rate": gate::pct(r.regression_rate),
        "fix_rate": gate::pct(r.fix_rate),
        "mcnemar_p": format!("{:.3}", r.mcnemar_p),
        "judge_error_rate": gate::pct(r.judge_error_rate),
        "regression_count": r.regressions.len(),
        "fix_count": r.fixes.len(),
        "golden_set": r.golden_set,
        "golden_set_sha256": r.golden_set_sha256.short(),
        "judge": judge,
        "incomplete": r.incomplete.clone().unwrap_or_default(),
        "resolution_note": r.resolution_note.clone().unwrap_or_default(),
        "reasons": r.gate.reasons,
        "thresholds": thresholds,
        "critical_tags": r.critical_tags.join(", "),
        "ignored": r.thresholds_ignored,
        "regressions": regressions,
        "fixes": fixes,
        "flaky": r.flaky,
        "errors": errors,
        "schema_drift": r.schema_drift.iter().map(|d| json!({"case": d.case, "tool": d.tool, "args": d.args.to_string(), "error": d.head_error})).collect::<Vec<_>>(),
        "calls": format!("{} model calls; {} agent runs and {} judge votes from the cache", r.calls.model_calls, r.calls.cached_transcripts, r.calls.cached_votes),
    })
}

/// The terminal summary: the title, both sides, the rates, and what moved.
pub fn summary_text(r: &Report) -> String {
    let mut s = format!("evalgate/{}: {}\n", r.bundle, r.title());
    for (name, side) in [("base", &r.base), ("head", &r.head)] {
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
        "  regression rate {}  fix rate {}  McNemar p {:.3}  judge error rate {}\n",
        gate::pct(r.regression_rate),
        gate::pct(r.fix_rate),
        r.mcnemar_p,
        gate::pct(r.judge_error_rate)
    ));
    let list = |ids: &[String]| if ids.is_empty() { "none".to_owned() } else { ids.join(", ") };
    s.push_str(&format!("  regressions: {}\n", list(&r.regressions)));
    s.push_str(&format!("  fixes: {}\n", list(&r.fixes)));
    if !r.flaky.is_empty() {
        s.push_str(&format!("  flaky (not counted): {}\n", list(&r.flaky)));
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
