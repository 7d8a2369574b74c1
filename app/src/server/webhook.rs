//! `POST /webhooks/github`: verify the signature, store the delivery and its job in one
//! transaction, answer. Nothing else happens in the request: GitHub wants an answer within
//! ten seconds and does not redeliver on its own, so the work is queued durably first.

use super::App;
use crate::store::deliveries::Intake;
use crate::webhook::{self, Event, signature};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn answer(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, msg.into()).into_response()
}

pub async fn receive(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let delivery = header(&headers, "x-github-delivery").unwrap_or_default().chars().take(128).collect::<String>();
    let event = header(&headers, "x-github-event").unwrap_or_default().chars().take(64).collect::<String>();
    let span = tracing::info_span!("webhook", delivery = %delivery, event = %event);
    tracing::Instrument::instrument(intake(app, headers, body), span).await
}

async fn intake(app: Arc<App>, headers: HeaderMap, body: Bytes) -> Response {
    let m = &app.ctx.metrics;
    let secrets: Vec<&[u8]> = app.webhook_secrets.iter().map(|s| s.expose().as_bytes()).collect();
    if let Err(e) = signature::verify(&secrets, &body, header(&headers, "x-hub-signature-256")) {
        m.inc(&m.signature_failures);
        m.webhook(header(&headers, "x-github-event").unwrap_or("unknown"), "bad_signature");
        tracing::warn!(error = %e, "webhook refused");
        return answer(StatusCode::UNAUTHORIZED, e.to_string());
    }
    let Some(delivery) = header(&headers, "x-github-delivery").filter(|d| !d.is_empty() && d.len() <= 128) else {
        return answer(StatusCode::BAD_REQUEST, "missing or over-long X-GitHub-Delivery header");
    };
    let Some(event_name) = header(&headers, "x-github-event").filter(|e| !e.is_empty() && e.len() <= 64) else {
        return answer(StatusCode::BAD_REQUEST, "missing X-GitHub-Event header");
    };
    let (action, event) = match webhook::parse_delivery(event_name, &body) {
        Ok(parsed) => parsed,
        Err(e) => {
            tracing::warn!(error = %e, "malformed payload");
            m.webhook(event_name, "malformed");
            return answer(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    if let Event::Ignored(why) = &event {
        m.inc(&m.deliveries_ignored);
        tracing::debug!(why, "ignored");
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return answer(StatusCode::BAD_REQUEST, "the payload is not UTF-8");
    };
    match app.ctx.store.take_delivery(delivery, event_name, &action, text, event.needs_work()).await {
        Ok(Intake::Stored) => {
            m.inc(&m.deliveries_accepted);
            m.webhook(event_name, if event.needs_work() { "queued" } else { "ignored" });
            if event.needs_work() {
                app.ctx.wake.notify_waiters();
                answer(StatusCode::ACCEPTED, "queued")
            } else if event == Event::Ping {
                answer(StatusCode::OK, "pong")
            } else {
                answer(StatusCode::OK, "ignored")
            }
        }
        Ok(Intake::Duplicate) => {
            m.inc(&m.deliveries_duplicate);
            m.webhook(event_name, "duplicate");
            answer(StatusCode::OK, "duplicate delivery: already received")
        }
        Err(e) => {
            // Not stored, so not acknowledged: GitHub shows the failure and it can be redelivered.
            tracing::error!(error = %e, "cannot store a delivery");
            m.webhook(event_name, "store_error");
            answer(StatusCode::SERVICE_UNAVAILABLE, "cannot store the delivery right now")
        }
    }
}
