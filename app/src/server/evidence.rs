//! `GET /api/evidence?repo=&since=&until=`: the audit export for one repository and period, as
//! `evalgate evidence export` writes it, behind `Authorization: Bearer $EVALGATE_ADMIN_TOKEN`.

use super::App;
use crate::audit::export::{self, ExportError, Period};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use evaluators::provider::Secret;
use sha2::{Digest, Sha256};
use std::sync::Arc;

#[derive(serde::Deserialize)]
pub struct Params {
    // Optional here so a missing one gets our 400 naming it, not the extractor's generic one.
    repo: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

fn text(status: StatusCode, body: String) -> Response {
    (status, format!("{body}\n")).into_response()
}

/// Whether the request carries the admin token. Both sides are hashed first so the comparison
/// runs over 32 bytes whatever the lengths, and the bytes are folded without an early exit, so
/// the time taken says nothing about how much of a guess was right.
pub(super) fn authorized(headers: &HeaderMap, token: &Secret) -> bool {
    let Some(given) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some((scheme, given)) = given.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
    let a = Sha256::digest(given.trim().as_bytes());
    let b = Sha256::digest(token.expose().as_bytes());
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The query is taken as a `Result` so that the token is checked first: a caller without it
/// learns nothing, not even whether its query would have parsed.
pub async fn export(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<Params>, QueryRejection>,
) -> Response {
    let Some(token) = &app.admin_token else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the evidence API is off: EVALGATE_ADMIN_TOKEN is not configured on this server".into(),
        );
    };
    if !authorized(&headers, token) {
        let mut r = text(StatusCode::UNAUTHORIZED, "send `Authorization: Bearer <EVALGATE_ADMIN_TOKEN>`".into());
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    let p = match query {
        Ok(Query(p)) => p,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("the query string: {e}")),
    };
    let bad = |param: &str, why: String| text(StatusCode::BAD_REQUEST, format!("{param}: {why}"));
    let Some(repo) = p.repo.filter(|r| !r.is_empty()) else {
        return bad("repo", "missing: expected ?repo=OWNER/NAME".into());
    };
    if let Err(e) = export::check_repo(&repo) {
        return bad("repo", e);
    }
    let (Some(since), Some(until)) = (p.since, p.until) else {
        return bad("since/until", "both are required (YYYY-MM-DD or RFC 3339)".into());
    };
    let since_ms = match export::parse_date(&since, false) {
        Ok(ms) => ms,
        Err(e) => return bad("since", e),
    };
    let until_ms = match export::parse_date(&until, true) {
        Ok(ms) => ms,
        Err(e) => return bad("until", e),
    };
    let period = match Period::new(since_ms, until_ms) {
        Ok(p) => p,
        Err(e) => return bad("since/until", e.to_string()),
    };
    match export::export(&app.ctx.store, &repo, period).await {
        Ok(exported) => {
            tracing::info!(%repo, entries = exported.entries, runs = exported.runs, "evidence exported");
            let day = |ms| export::rfc3339(ms).map(|t| t[..10].to_owned()).unwrap_or_default();
            let name =
                format!("evidence-{}-{}-{}.zip", repo.replace('/', "-"), day(period.since_ms), day(period.until_ms));
            let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("attachment; filename=\"evidence.zip\""));
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static("application/zip")),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                exported.zip,
            )
                .into_response()
        }
        Err(e @ (ExportError::TooManyEntries | ExportError::TooManyRuns | ExportError::FileTooLarge { .. })) => {
            text(StatusCode::BAD_REQUEST, e.to_string())
        }
        Err(ExportError::Period(e)) => bad("since/until", e),
        Err(e) => {
            tracing::error!(error = %e, "evidence export");
            text(StatusCode::SERVICE_UNAVAILABLE, "the export failed: the database does not answer".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).expect("header"));
        h
    }

    #[test]
    fn only_the_exact_bearer_token_is_accepted() {
        let t = Secret::new("s3cret-admin");
        assert!(authorized(&with("Bearer s3cret-admin"), &t));
        assert!(authorized(&with("bearer s3cret-admin"), &t));
        for bad in ["Bearer s3cret-admi", "Bearer s3cret-admin2", "Basic s3cret-admin", "s3cret-admin", "Bearer "] {
            assert!(!authorized(&with(bad), &t), "{bad}");
        }
        assert!(!authorized(&HeaderMap::new(), &t));
    }
}
