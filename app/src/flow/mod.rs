//! The pull-request gate: what each job does. A delivery job reads what changed and posts the
//! pre-registration and golden-set checks and one queued check per touched bundle; a gate job
//! evaluates one bundle at one head and completes its check. Both are safe to run again after
//! a crash: check runs are found by their stored ids, results come from the result cache.

pub mod aggregate;
pub mod checks;
pub mod comment;
pub mod gate;
pub mod merge_group;
pub mod pr;
pub mod publish;
pub mod touched;

use crate::github::{GitHubApp, GitHubError};
use crate::link::LinkSigner;
use crate::metrics::Metrics;
use crate::render::Templates;
use crate::store::Store;
use crate::store::jobs::{Job, JobKind};
use crate::webhook::{self, Event};
use evaluators::provider::ModelClient;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type CommentLock = Arc<tokio::sync::Mutex<()>>;

/// Everything a job needs, shared by every worker of one server.
pub struct Ctx {
    pub store: Store,
    pub github: GitHubApp,
    /// One model client for the whole server: its limits are per provider, shared by all runs.
    pub models: Arc<ModelClient>,
    pub concurrency: usize,
    /// Where the providers are, for pin tracking's model lists.
    pub endpoints: evaluators::provider::Endpoints,
    pub http: reqwest::Client,
    pub templates: Templates,
    pub links: LinkSigner,
    pub public_url: String,
    pub metrics: Metrics,
    /// Wakes idle workers when a job is queued.
    pub wake: tokio::sync::Notify,
    /// Wakes the publisher when a decision is committed.
    pub publish_wake: tokio::sync::Notify,
    /// One lock per pull request around its sticky comment, so two finishing runs never both
    /// create one.
    comment_locks: Mutex<HashMap<(String, u64), CommentLock>>,
}

impl Ctx {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        github: GitHubApp,
        models: Arc<ModelClient>,
        concurrency: usize,
        endpoints: evaluators::provider::Endpoints,
        templates: Templates,
        links: LinkSigner,
        public_url: String,
    ) -> Ctx {
        Ctx {
            store,
            github,
            models,
            concurrency,
            endpoints,
            // The model-list client carries provider keys: it never follows a redirect (which
            // would hand the key to wherever the redirect points) and never waits forever.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            templates,
            links,
            public_url,
            metrics: Metrics::default(),
            wake: tokio::sync::Notify::new(),
            publish_wake: tokio::sync::Notify::new(),
            comment_locks: Mutex::default(),
        }
    }

    fn comment_lock(&self, repo: &str, pr: u64) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.comment_locks.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((repo.to_owned(), pr)).or_default().clone()
    }

    /// The report link of a gate run (a signed, expiring capability).
    pub fn details_url(&self, run_id: &str) -> String {
        let token = self.links.token(run_id, chrono::Utc::now().timestamp());
        format!("{}/runs/{run_id}?token={token}", self.public_url)
    }
}

/// Why a job did not finish.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt later (GitHub or the database was unavailable).
    #[error("{0}")]
    Retry(String),
    /// Will not get better by trying again.
    #[error("{0}")]
    Fatal(String),
}

impl From<GitHubError> for JobError {
    fn from(e: GitHubError) -> Self {
        match &e {
            GitHubError::Status { status, .. } if status.is_client_error() && status.as_u16() != 429 => {
                JobError::Fatal(e.to_string())
            }
            GitHubError::Setup(_) => JobError::Fatal(e.to_string()),
            _ => JobError::Retry(e.to_string()),
        }
    }
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        JobError::Retry(format!("database: {e}"))
    }
}

/// The installation a gate run acts through: its pull request's, or its merge group's.
pub async fn installation_of(ctx: &Ctx, run: &crate::store::gate_runs::GateRun) -> Result<u64, JobError> {
    if run.pr_number == crate::store::merge_groups::MERGE_GROUP {
        return match ctx.store.merge_group(&run.repo, &run.head_sha).await? {
            Some(g) => Ok(g.installation_id),
            None => Err(JobError::Fatal(format!("merge group {} of {} is not stored", run.head_sha, run.repo))),
        };
    }
    match ctx.store.pr(&run.repo, run.pr_number).await? {
        Some(pr) => Ok(pr.installation_id as u64),
        None => Err(JobError::Fatal(format!("pull request {}#{} is not stored", run.repo, run.pr_number))),
    }
}

/// Runs one claimed job to its end.
pub async fn run_job(ctx: &Arc<Ctx>, job: &Job) -> Result<(), JobError> {
    match job.kind {
        JobKind::Delivery => {
            let id = job.payload.get("delivery_id").and_then(|v| v.as_str()).unwrap_or_default();
            let Some((event, payload)) = ctx.store.delivery(id).await? else {
                return Err(JobError::Fatal(format!("delivery {id} is not stored")));
            };
            let event = webhook::parse_event(&event, payload.as_bytes()).map_err(|e| JobError::Fatal(e.to_string()))?;
            let span = tracing::info_span!(
                "delivery",
                delivery = id,
                repo = event.repo().map(|r| r.as_str()).unwrap_or(""),
                pr = event.pr_number()
            );
            tracing::Instrument::instrument(handle_event(ctx, event), span).await
        }
        JobKind::Gate => {
            let id = job.payload.get("gate_run").and_then(|v| v.as_str()).unwrap_or_default();
            gate::run(ctx, id).await
        }
        JobKind::Pins => {
            let weekly = job.payload.get("weekly").and_then(|v| v.as_bool()).unwrap_or(false);
            crate::pins::run(ctx, weekly).await
        }
    }
}

/// When a job gave up for good: a gate run's check must not stay open or, worse, look passed.
pub async fn gave_up(ctx: &Arc<Ctx>, job: &Job, error: &str) {
    if job.kind == JobKind::Gate {
        let id = job.payload.get("gate_run").and_then(|v| v.as_str()).unwrap_or_default();
        if let Err(e) = gate::fail_for_good(ctx, id, error).await {
            tracing::error!(gate_run = id, error = %e, "could not mark the check run failed");
        }
    }
}

async fn handle_event(ctx: &Arc<Ctx>, event: Event) -> Result<(), JobError> {
    match event {
        Event::PullRequest { repo, number, action: crate::webhook::events::PrAction::Closed, .. } => {
            pr::close(ctx, repo.as_str(), number).await
        }
        Event::PullRequest { installation, repo, number, action, sender, .. } => {
            let editor = (action == crate::webhook::events::PrAction::Edited).then_some(sender.as_str());
            pr::sync(ctx, installation, repo.as_str(), number, editor).await
        }
        Event::CheckRun {
            installation,
            repo,
            check_run_id,
            name,
            head_sha,
            pull_requests,
            requested_action,
            sender,
        } => {
            // A merge group's check: its "Re-run" evaluates the group again.
            if let Some(group) = ctx.store.merge_group(repo.as_str(), &head_sha).await? {
                return merge_group::rerun(ctx, group, Some(&name)).await;
            }
            let numbers = pr::numbers_for(ctx, installation, repo.as_str(), &head_sha, &pull_requests).await?;
            match requested_action.as_deref() {
                Some(checks::RUN_EVALS) => {
                    for n in numbers {
                        pr::approve_fork(ctx, installation, repo.as_str(), n, &head_sha, &sender).await?;
                    }
                }
                Some(other) => tracing::info!(action = other, check_run_id, "unknown requested action ignored"),
                None => {
                    for n in numbers {
                        pr::rerun(ctx, installation, repo.as_str(), n, &head_sha, Some(&name)).await?;
                    }
                }
            }
            Ok(())
        }
        Event::CheckSuite { installation, repo, head_sha, pull_requests, .. } => {
            if let Some(group) = ctx.store.merge_group(repo.as_str(), &head_sha).await? {
                return merge_group::rerun(ctx, group, None).await;
            }
            for n in pr::numbers_for(ctx, installation, repo.as_str(), &head_sha, &pull_requests).await? {
                pr::rerun(ctx, installation, repo.as_str(), n, &head_sha, None).await?;
            }
            Ok(())
        }
        Event::PrComment {
            installation,
            repo,
            number,
            comment_id,
            body,
            previous_body,
            author,
            author_is_bot,
            sender,
        } => {
            let comment = crate::review::Comment {
                installation,
                repo: repo.as_str(),
                number,
                id: comment_id,
                body: &body,
                previous: previous_body.as_deref(),
                comment_author: &author,
                author: &sender,
                author_is_bot,
            };
            crate::review::on_comment(ctx, comment).await
        }
        Event::MergeGroup { installation, repo, action, head_sha, base_sha, head_ref } => {
            let group = crate::store::merge_groups::MergeGroup {
                repo: repo.0,
                head_sha,
                base_sha,
                head_ref,
                installation_id: installation,
                destroyed: false,
            };
            match action {
                crate::webhook::events::MergeGroupAction::ChecksRequested => {
                    merge_group::checks_requested(ctx, group).await
                }
                crate::webhook::events::MergeGroupAction::Destroyed => merge_group::destroyed(ctx, group).await,
            }
        }
        Event::Installation { installation, added, removed } => {
            for r in added {
                ctx.store.remember_repository(r.as_str(), installation).await?;
            }
            for r in removed {
                ctx.store.forget_repository(r.as_str()).await?;
            }
            Ok(())
        }
        Event::Ping | Event::Ignored(_) => Ok(()),
    }
}
