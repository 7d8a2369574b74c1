//! `POST /api/pins/run` (admin token): runs the weekly pin-tracking job now, through the same
//! durable queue as the schedule and the webhooks.

use super::App;
use super::evidence::authorized;
use crate::store::jobs::JobKind;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub async fn run_now(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(token) = &app.admin_token else {
        return (StatusCode::SERVICE_UNAVAILABLE, "EVALGATE_ADMIN_TOKEN is not configured: the admin API is off\n")
            .into_response();
    };
    if !authorized(&headers, token) {
        let mut r = (StatusCode::UNAUTHORIZED, "send `Authorization: Bearer <EVALGATE_ADMIN_TOKEN>`\n").into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    let payload = serde_json::json!({ "weekly": true, "trigger": "api" });
    match app.ctx.store.enqueue(JobKind::Pins, &payload).await {
        Ok(id) => {
            app.ctx.wake.notify_waiters();
            tracing::info!(job = %id, "pin tracking queued by the admin API");
            (StatusCode::ACCEPTED, format!("pin tracking queued (job {id})\n")).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot queue pin tracking");
            (StatusCode::SERVICE_UNAVAILABLE, "cannot queue the job right now\n").into_response()
        }
    }
}
