//! `evalgate serve`: the HTTP endpoints of SPEC, the workers and the queue they share.

mod evidence;
mod health;
mod pins;
mod report_page;
mod webhook;

use crate::jobs::Ctx;
use crate::settings::ServeSettings;
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

/// GitHub caps webhook payloads at 25 MB; nothing larger is read.
pub const MAX_WEBHOOK_BODY: usize = 25 << 20;

/// How long in-flight jobs may run on after SIGTERM before their leases are given back.
pub const SHUTDOWN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

/// SIGTERM (what a container runtime sends) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// What the handlers share.
pub struct App {
    pub ctx: Arc<Ctx>,
    pub webhook_secrets: Vec<evaluators::provider::Secret>,
    /// `EVALGATE_ADMIN_TOKEN`: the admin API is off without it.
    pub admin_token: Option<evaluators::provider::Secret>,
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/webhooks/github",
            post(webhook::receive).layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_WEBHOOK_BODY)),
        )
        .route("/runs/{id}", get(report_page::show))
        .route("/api/evidence", get(evidence::export))
        .route("/api/pins/run", post(pins::run_now))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_WEBHOOK_BODY))
        .with_state(app)
}

/// Deletes deliveries and finished jobs older than `days`, at start-up and hourly after.
async fn retention(ctx: Arc<crate::jobs::Ctx>, days: u64) {
    let keep_ms = (days as i64).saturating_mul(24 * 3600 * 1000);
    loop {
        match ctx.store.prune(crate::store::now_ms() - keep_ms).await {
            Ok((0, 0)) => {}
            Ok((deliveries, jobs)) => {
                tracing::info!(deliveries, jobs, days, "retention: old deliveries and jobs deleted")
            }
            Err(e) => tracing::warn!(error = %e, "retention: cannot delete old deliveries and jobs"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
}

/// Binds, prints where it listens, and serves until interrupted.
pub async fn serve(settings: ServeSettings, app: Arc<App>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&settings.bind)
        .await
        .map_err(|e| anyhow::anyhow!("EVALGATE_BIND {}: cannot listen: {e}", settings.bind))?;
    let addr = listener.local_addr()?;
    // One line on stdout that scripts (and the tests) read to learn the port.
    println!("evalgate listening on http://{addr}");
    tracing::info!(%addr, pin_schedule = %settings.pin_schedule.pattern, "listening");
    let workers = crate::worker::spawn(app.ctx.clone(), settings.workers, settings.job_lease_ms);
    let (stop_publisher, publisher_stop) = tokio::sync::watch::channel(false);
    let publisher = tokio::spawn(crate::jobs::publish::run(app.ctx.clone(), publisher_stop));
    let ctx = app.ctx.clone();
    let scheduler = crate::pins::schedule::spawn(app.ctx.clone(), settings.pin_schedule.clone());
    let _retention = crate::task::AbortOnDrop(tokio::spawn(retention(app.ctx.clone(), settings.retention_days)));
    let shutdown = async {
        shutdown_signal().await;
        tracing::info!("shutting down: no new work; finishing what runs");
    };
    axum::serve(listener, router(app)).with_graceful_shutdown(shutdown).await?;
    scheduler.abort();
    workers.shutdown(SHUTDOWN_DEADLINE).await;
    // What is still pending stays in the database: the next start (or another replica) publishes it.
    let _ = stop_publisher.send(true);
    ctx.publish_wake.notify_waiters();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), publisher).await;
    tracing::info!("stopped");
    Ok(())
}
