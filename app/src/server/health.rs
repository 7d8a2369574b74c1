//! `/healthz` (the process answers), `/readyz` (the database answers), `/metrics`.

use super::App;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use std::sync::Arc;

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(app): State<Arc<App>>) -> impl IntoResponse {
    if !app.ctx.store.ping().await {
        return (StatusCode::SERVICE_UNAVAILABLE, "the database does not answer\n");
    }
    match app.ctx.store.schema().await {
        Ok(crate::store::Schema::Current) => (StatusCode::OK, "ready\n"),
        Ok(_) => (StatusCode::SERVICE_UNAVAILABLE, "the database schema does not match this evalgate's migrations\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the database does not answer\n"),
    }
}

pub async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    let queue = app.ctx.store.queue_gauges().await.ok();
    let text = app.ctx.metrics.render(queue.as_ref(), app.ctx.github.ratelimit_remaining());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
