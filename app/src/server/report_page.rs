//! `GET /runs/{id}?token=…`: one gate run's report as a page, opened by the signed, expiring
//! token in the check run's `details_url`. Every case with base and head side by side (answer,
//! tool calls, checks, judge verdicts and reasons, tokens, latency, cost), filters for
//! regressions / fixes / flaky / errors / all, the summary figures on top. Server-rendered; the
//! template escapes every value, since case inputs and model outputs are untrusted text.

use super::App;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
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

fn pct(v: &Value) -> String {
    v.as_f64().map(|x| format!("{:.1}%", x * 100.0)).unwrap_or_else(|| "–".into())
}

fn money(v: &Value) -> String {
    v.as_f64().map(|x| format!("${x:.4}")).unwrap_or_else(|| "unknown".into())
}

fn ms(v: &Value) -> String {
    v.as_f64().map(|x| format!("{x:.0} ms")).unwrap_or_else(|| "–".into())
}

fn is_error(run: &Value) -> bool {
    matches!(run["verdict"].as_str(), Some("error" | "judge_error"))
}

fn matches(filter: &str, case: &Value) -> bool {
    let change = case["change"].as_str().unwrap_or("");
    match filter {
        "regressions" => change == "regression",
        "fixes" => change == "fix",
        "flaky" => change == "flaky",
        "errors" => is_error(&case["base"]) || is_error(&case["head"]),
        _ => true,
    }
}

fn sample_view(s: &Value) -> Value {
    let t = &s["transcript"];
    let tools: Vec<Value> = t["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "tool")
        .map(|e| {
            json!({ "name": e["call"]["name"].as_str().unwrap_or("?"), "args": clip(&e["call"]["args"].to_string(), 400),
                "result": clip(e["result"].as_str().unwrap_or(""), 400) })
        })
        .collect();
    let checks: Vec<Value> = s["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            json!({ "passed": c["passed"].as_bool() == Some(true), "kind": c["type"].as_str().unwrap_or("?"),
            "detail": clip(c["detail"].as_str().unwrap_or(""), 600) })
        })
        .collect();
    let judge: Vec<Value> = s["judge"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|j| {
            let (verdict, class) = match (j["state"].as_str(), j["pass"].as_bool()) {
                (Some("decided"), Some(true)) => ("pass".to_owned(), "pass"),
                (Some("decided"), _) => ("FAIL".to_owned(), "fail"),
                _ => (format!("error: {}", j["reason"].as_str().unwrap_or("")), "fail"),
            };
            let votes: Vec<String> = j["votes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| {
                    let p = if v["pass"].as_bool() == Some(true) { "pass" } else { "fail" };
                    format!("{p} ({}): {}", v["score"], clip(v["reason"].as_str().unwrap_or(""), 400))
                })
                .collect();
            json!({ "verdict": verdict, "class": class, "votes": votes })
        })
        .collect();
    let stats = if t.is_object() {
        format!(
            "{} turn(s) · tokens {} in / {} out · {} · {}",
            t["turns"],
            t["tokens_in"],
            t["tokens_out"],
            ms(&t["latency_ms"]),
            money(&t["cost_usd"])
        )
    } else {
        String::new()
    };
    json!({
        "n": s["sample"].as_u64().map_or(1, |n| n + 1), "verdict": s["verdict"].as_str().unwrap_or("?"),
        "error": s["error"].as_str(), "tools": tools, "answer": t["final_text"].as_str().map(|a| clip(a, 6_000)),
        "checks": checks, "judge": judge, "stats": stats,
    })
}

fn case_view(c: &Value) -> Value {
    let change = c["change"].as_str().unwrap_or("unchanged");
    let sides: Vec<Value> = ["base", "head"]
        .iter()
        .map(|side| {
            let run = &c[*side];
            let samples: Vec<Value> = run["samples"].as_array().into_iter().flatten().map(sample_view).collect();
            json!({ "name": side, "verdict": run["verdict"].as_str().unwrap_or("?"), "flaky": run["flaky"].as_bool() == Some(true),
                "multi": samples.len() > 1, "samples": samples })
        })
        .collect();
    let input: Vec<Value> = c["input"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| json!({ "role": m["role"].as_str().unwrap_or("?"), "content": clip(m["content"].as_str().unwrap_or(""), 2_000) }))
        .collect();
    json!({
        "id": c["id"].as_str().unwrap_or("?"), "change": change, "change_label": change.replace('_', " "),
        "tags": c["tags"].as_array().cloned().unwrap_or_default(), "label": c["label"].as_str(),
        "input": input, "sides": sides,
    })
}

fn report_view(r: &Value, filter: &str, token: &str) -> Value {
    let cases_all = r["cases"].as_array().cloned().unwrap_or_default();
    // Regressions first, as on the check run.
    let mut shown: Vec<&Value> = cases_all.iter().filter(|c| matches(filter, c)).collect();
    shown.sort_by_key(|c| c["change"].as_str() != Some("regression"));
    let filters: Vec<Value> = FILTERS
        .iter()
        .map(|(name, label)| {
            json!({ "name": name, "label": label, "active": *name == filter,
                "count": cases_all.iter().filter(|c| matches(name, c)).count() })
        })
        .collect();
    let side = |k: &str, f: &dyn Fn(&Value) -> String| json!({ "k": k, "base": f(&r["base"]), "head": f(&r["head"]) });
    let ci = |s: &Value| match s["pass_rate_ci95"].as_array() {
        Some(v) if v.len() == 2 => format!("{} [{}, {}]", pct(&s["pass_rate"]), pct(&v[0]), pct(&v[1])),
        _ => pct(&s["pass_rate"]),
    };
    let thresholds: Vec<String> = r["thresholds"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, t)| {
            let value = if k.ends_with("_ms") { ms(&t["value"]) } else { pct(&t["value"]) };
            format!("{k} {value} ({})", t["source"].as_str().unwrap_or("?"))
        })
        .collect();
    json!({
        "figures": [
            { "k": "regression rate", "v": pct(&r["regression_rate"]) },
            { "k": "fix rate", "v": pct(&r["fix_rate"]) },
            { "k": "regressions / fixes", "v": format!("{} / {}", r["regressions"].as_array().map_or(0, Vec::len), r["fixes"].as_array().map_or(0, Vec::len)) },
            { "k": "McNemar exact p", "v": r["mcnemar_p"].as_f64().map(|p| format!("{p:.3}")).unwrap_or_else(|| "–".into()) },
            { "k": "judge error rate", "v": pct(&r["judge_error_rate"]) },
            { "k": "flaky cases", "v": r["flaky"].as_array().map_or(0, Vec::len).to_string() },
        ],
        "sides": [
            side("bundle", &|s| format!("{} {}", s["version"].as_str().unwrap_or(""), s["bundle_sha256"].as_str().unwrap_or("").get(..19).unwrap_or(""))),
            side("pass rate (95% CI)", &ci),
            side("passed / cases", &|s| format!("{} / {}", s["passed"], s["cases"])),
            side("errors", &|s| s["errors"].to_string()),
            side("cost per case", &|s| money(&s["cost_per_case_usd"])),
            side("p95 latency per case", &|s| ms(&s["p95_latency_ms"])),
            side("tokens in / out", &|s| format!("{} / {}", s["tokens_in"], s["tokens_out"])),
        ],
        "reasons": r["gate"]["reasons"].as_array().cloned().unwrap_or_default().into_iter().chain(thresholds.into_iter().map(|t| json!(format!("threshold in force: {t}")))).collect::<Vec<_>>(),
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
    let report: Option<Value> = run.report.as_deref().and_then(|r| serde_json::from_str(r).ok());
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
