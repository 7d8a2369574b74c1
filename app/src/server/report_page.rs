//! `GET /runs/{id}?token=…`: one gate run's report as a page, opened by the signed, expiring
//! token in the check run's `details_url`. Every case with base and head side by side (answer,
//! tool calls, checks, judge verdicts and reasons, tokens, latency, cost), filters for
//! regressions / fixes / flaky / errors / all, the summary figures on top. Server-rendered; the
//! template escapes every value, since case inputs and model outputs are untrusted text.

use super::App;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use evaluators::engine::judge::JudgeOutcome;
use evaluators::engine::runner::Event;
use evaluators::engine::{CaseRun, SampleRun, Verdict};
use evaluators::golden::{Label, Role};
use evaluators::report::{CaseReport, Change, Report, SideSummary};
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(serde::Deserialize)]
pub struct Params {
    token: Option<String>,
    filter: Option<String>,
}

/// The filters, in the order shown.
const FILTERS: [(&str, &str); 5] =
    [("all", "All"), ("regressions", "Regressions"), ("fixes", "Fixes"), ("flaky", "Flaky"), ("errors", "Errors")];

/// Text shown in a cell, cut so one answer cannot make the page unusable.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}… ({} more characters)", s.chars().take(max).collect::<String>(), s.chars().count() - max)
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{:.1}%", x * 100.0)).unwrap_or_else(|| "n/a".into())
}

fn money(v: Option<f64>) -> String {
    v.map(|x| format!("${x:.4}")).unwrap_or_else(|| "unknown".into())
}

fn ms(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.0} ms")).unwrap_or_else(|| "–".into())
}

fn is_error(run: Option<&CaseRun>) -> bool {
    run.is_some_and(|r| matches!(r.verdict, Verdict::Error | Verdict::JudgeError))
}

fn matches(filter: &str, case: &CaseReport) -> bool {
    match filter {
        "regressions" => case.change.is_regression(),
        "fixes" => case.change == Change::Fix,
        "flaky" => case.change == Change::Flaky || case.head.flaky,
        "errors" => is_error(case.base.as_ref()) || is_error(Some(&case.head)),
        _ => true,
    }
}

fn change_name(c: Change) -> &'static str {
    match c {
        Change::Regression => "regression",
        Change::RegressionJudgeError => "regression_judge_error",
        Change::Fix => "fix",
        Change::Flaky => "flaky",
        Change::Unchanged => "unchanged",
        Change::UngradedOnBase => "ungraded_on_base",
        Change::NotRun => "not_run",
        Change::New => "new",
    }
}

fn sample_view(s: &SampleRun) -> Value {
    let t = s.transcript.as_ref();
    let tools: Vec<Value> = t
        .into_iter()
        .flat_map(|t| &t.events)
        .filter_map(|e| match e {
            Event::Tool { call, result, .. } => Some(
                json!({ "name": call.name, "args": clip(&call.args.to_string(), 400), "result": clip(result, 400) }),
            ),
            Event::Model { .. } => None,
        })
        .collect();
    let checks: Vec<Value> = s
        .checks
        .iter()
        .map(|c| json!({ "passed": c.passed, "kind": c.check_type, "detail": clip(&c.detail, 600) }))
        .collect();
    let judge: Vec<Value> = s
        .judge
        .iter()
        .map(|j| {
            let (verdict, class, votes) = match &j.outcome {
                JudgeOutcome::Decided { pass: true, votes } => ("pass".to_owned(), "pass", votes),
                JudgeOutcome::Decided { pass: false, votes } => ("FAIL".to_owned(), "fail", votes),
                JudgeOutcome::Error { reason, votes } => (format!("error: {reason}"), "fail", votes),
            };
            let votes: Vec<String> = votes
                .iter()
                .map(|v| format!("{} ({}): {}", if v.pass { "pass" } else { "fail" }, v.score, clip(&v.reason, 400)))
                .collect();
            json!({ "verdict": verdict, "class": class, "votes": votes })
        })
        .collect();
    let stats = t
        .map(|t| {
            format!(
                "{} turn(s) · tokens {} in / {} out · {} · {}",
                t.turns,
                t.tokens_in,
                t.tokens_out,
                ms(Some(t.latency_ms as f64)),
                money(t.cost_usd)
            )
        })
        .unwrap_or_default();
    json!({
        "n": s.sample + 1, "verdict": s.verdict.as_str(),
        "error": s.error, "tools": tools, "answer": t.map(|t| clip(&t.final_text, 6_000)),
        "checks": checks, "judge": judge, "stats": stats,
    })
}

fn case_view(c: &CaseReport) -> Value {
    let change = change_name(c.change);
    let sides: Vec<Value> = [("base", c.base.as_ref()), ("head", Some(&c.head))]
        .into_iter()
        .filter_map(|(side, run)| Some((side, run?)))
        .map(|(side, run)| {
            let samples: Vec<Value> = run.samples.iter().map(sample_view).collect();
            json!({ "name": side, "verdict": run.verdict.as_str(), "flaky": run.flaky,
                "multi": samples.len() > 1, "samples": samples })
        })
        .collect();
    let input: Vec<Value> = c
        .input
        .iter()
        .map(|m| {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({ "role": role, "content": clip(&m.content, 2_000) })
        })
        .collect();
    let label = c.label.map(|l| match l {
        Label::Pass => "pass",
        Label::Fail => "fail",
    });
    json!({
        "id": c.id, "change": change, "change_label": change.replace('_', " "),
        "tags": c.tags, "label": label, "input": input, "sides": sides,
    })
}

fn report_view(r: &Report, filter: &str, token: &str) -> Value {
    // Regressions first, as on the check run.
    let mut shown: Vec<&CaseReport> = r.cases.iter().filter(|c| matches(filter, c)).collect();
    shown.sort_by_key(|c| !c.change.is_regression());
    let filters: Vec<Value> = FILTERS
        .iter()
        .map(|(name, label)| {
            json!({ "name": name, "label": label, "active": *name == filter,
                "count": r.cases.iter().filter(|c| matches(name, c)).count() })
        })
        .collect();
    let side = |k: &str, f: &dyn Fn(&SideSummary) -> String| json!({ "k": k, "base": r.base.as_ref().map(f).unwrap_or_else(|| "– (new bundle)".into()), "head": f(&r.head) });
    let ci = |s: &SideSummary| match s.pass_rate_ci95 {
        Some([lo, hi]) => format!("{} [{}, {}]", pct(Some(s.pass_rate)), pct(Some(lo)), pct(Some(hi))),
        None => pct(Some(s.pass_rate)),
    };
    let thresholds: Vec<String> = r
        .thresholds
        .iter()
        .map(|(k, t)| {
            let value = if k.ends_with("_ms") { ms(Some(t.value)) } else { pct(Some(t.value)) };
            format!("{k} {value} ({})", t.source)
        })
        .collect();
    json!({
        "figures": [
            { "k": "regression rate", "v": pct(r.regression_rate) },
            { "k": "fix rate", "v": pct(r.fix_rate) },
            { "k": "regressions / fixes", "v": format!("{} / {}", r.regressions.len(), r.fixes.len()) },
            { "k": "McNemar exact p", "v": r.mcnemar_p.map(|p| format!("{p:.3}")).unwrap_or_else(|| "n/a".into()) },
            { "k": "judge error rate", "v": pct(Some(r.judge_error_rate)) },
            { "k": "flaky cases", "v": format!("{} on base, {} on head", r.flaky.len(), r.head_flaky.len()) },
        ],
        "sides": [
            side("bundle", &|s| format!("{} {}", s.version, s.bundle_sha256.to_string().get(..19).unwrap_or(""))),
            side("pass rate (95% CI)", &ci),
            side("passed / cases", &|s| format!("{} / {}", s.passed, s.cases)),
            side("errors", &|s| s.errors.to_string()),
            side("judge error rate", &|s| pct(Some(s.judge_error_rate))),
            side("cost per case", &|s| money(s.cost_per_case_usd)),
            side("p95 latency per case", &|s| ms(s.p95_latency_ms)),
            side("tokens in / out", &|s| format!("{} / {}", s.tokens_in, s.tokens_out)),
        ],
        "reasons": r.gate.reasons.iter().cloned().chain(thresholds.into_iter().map(|t| format!("threshold in force: {t}"))).collect::<Vec<_>>(),
        "filters": filters,
        "cases": shown.into_iter().map(case_view).collect::<Vec<_>>(),
        "token": token,
    })
}

pub async fn show(State(app): State<Arc<App>>, Path(id): Path<String>, Query(p): Query<Params>) -> Response {
    let token = p.token.unwrap_or_default();
    if !app.ctx.links.verify(&id, &token, chrono::Utc::now().timestamp()) {
        return (StatusCode::FORBIDDEN, "this report link is invalid or has expired\n").into_response();
    }
    let run = match app.ctx.store.gate_run(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such run\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading a run");
            return (StatusCode::SERVICE_UNAVAILABLE, "the database does not answer\n").into_response();
        }
    };
    let filter = p.filter.as_deref().filter(|f| FILTERS.iter().any(|(n, _)| n == f)).unwrap_or("all");
    let report: Option<Report> = match run.report.as_deref().map(serde_json::from_str::<Report>).transpose() {
        Ok(r) => r,
        Err(e) => {
            // A stored report that no longer reads as a `Report` is said, never shown as blanks.
            tracing::error!(error = %e, run = %id, "a stored report does not read");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "this run's stored report cannot be read by this version
",
            )
                .into_response();
        }
    };
    let mut data = match &report {
        Some(r) => report_view(r, filter, &token),
        None => json!({}),
    };
    let title_class = match run.conclusion.as_deref() {
        Some("success") => "success",
        Some("failure") => "failure",
        _ => "other",
    };
    let fields = json!({
        "bundle": run.bundle, "title": run.title.clone().unwrap_or_else(|| run.state.as_str().replace('_', " ")),
        "title_class": title_class, "repo": run.repo, "pr": run.pr_number,
        "head_short": run.head_sha.get(..12).unwrap_or(&run.head_sha), "base_short": run.base_sha.get(..12).unwrap_or(&run.base_sha),
        "state": run.state.as_str().replace('_', " "), "has_report": report.is_some(),
        "override": run.override_by.as_ref().map(|by| format!("Overridden by @{by}: {}", run.override_reason.clone().unwrap_or_default())),
        "summary": run.summary.clone().unwrap_or_default(),
    });
    if let (Some(d), Some(f)) = (data.as_object_mut(), fields.as_object()) {
        d.extend(f.clone());
    }
    match app.ctx.templates.report_page(&data) {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "rendering a report page");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot render this report\n").into_response()
        }
    }
}
