//! What every job runs with: the shared context of one server (store, GitHub, the model
//! client, templates, links, metrics, wake-ups). Handlers (`flow`, `review`, `pins`) take it;
//! it knows none of them.

use super::JobError;
use crate::github::GitHubApp;
use crate::link::LinkSigner;
use crate::metrics::Metrics;
use crate::render::Templates;
use crate::store::Store;
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

    pub fn comment_lock(&self, repo: &str, pr: u64) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.comment_locks.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((repo.to_owned(), pr)).or_default().clone()
    }

    /// The report link of a gate run (a signed, expiring capability).
    pub fn details_url(&self, run_id: &str) -> String {
        let token = self.links.token(run_id, chrono::Utc::now().timestamp());
        format!("{}/runs/{run_id}?token={token}", self.public_url)
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
