//! `GET /runs/{id}?token=…`: one gate run's report as a page, opened by the signed, expiring
//! token in the check run's `details_url`.

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

fn side_text(case: &Value, side: &str) -> String {
    let run = &case[side];
    let verdict = run["verdict"].as_str().unwrap_or("?");
    let answer = run["samples"][0]["transcript"]["final_text"].as_str().unwrap_or("");
    if answer.is_empty() { verdict.to_owned() } else { format!("{verdict}\n\n{answer}") }
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
    let report: Option<Value> = run.report.as_deref().and_then(|r| serde_json::from_str(r).ok());
    let wanted = |change: &str| match p.filter.as_deref() {
        Some("regressions") => change == "regression",
        Some("fixes") => change == "fix",
        Some("flaky") => change == "flaky",
        _ => true,
    };
    let cases: Vec<Value> = report
        .as_ref()
        .and_then(|r| r["cases"].as_array())
        .map(|cases| {
            cases
                .iter()
                .filter(|c| wanted(c["change"].as_str().unwrap_or("")))
                .map(|c| {
                    let change = c["change"].as_str().unwrap_or("");
                    json!({ "id": c["id"], "change": change, "class": change,
                        "base": side_text(c, "base"), "head": side_text(c, "head") })
                })
                .collect()
        })
        .unwrap_or_default();
    let data = json!({
        "bundle": run.bundle, "title": run.title.clone().unwrap_or_else(|| run.state.as_str().to_owned()),
        "repo": run.repo, "pr": run.pr_number, "head_sha": run.head_sha, "base_sha": run.base_sha,
        "state": run.state.as_str(), "has_report": report.is_some(), "token": token, "cases": cases,
        "summary": run.summary.clone().unwrap_or_default(),
    });
    match app.ctx.templates.report_page(&data) {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "rendering a report page");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot render this report\n").into_response()
        }
    }
}
