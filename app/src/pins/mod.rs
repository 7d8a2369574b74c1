//! Pin tracking in the App: for every installed repository, each bundle's pinned snapshots
//! (model and judge) against the providers' model lists — recorded daily — and, weekly or on
//! demand, one bump pull request per bundle whose pins lag. A pin within 30 days of retirement
//! is proposed at once, whatever the schedule.

mod bump;
pub mod schedule;

use crate::flow::touched;
use crate::github::tree::CommitTree;
use crate::jobs::{Ctx, JobError};
use crate::store::pins::PinRecord;
use evaluators::limits::MAX_YAML_FILE_BYTES;
use evaluators::pins::{self, Assessment, ModelInfo};
use evaluators::repo::RepoFs as _;
use evaluators::snapshot::Provider;
use evaluators::snapshot_writer::{self, Role};
use evaluators::workspace;
use std::collections::HashMap;
use std::sync::Arc;

/// One pin that a bump would change.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Change {
    pub role: Role,
    pub provider: String,
    pub from: String,
    pub to: String,
    pub from_released: Option<i64>,
    pub to_released: Option<i64>,
    pub lag_days: Option<i64>,
    pub retires_in_days: Option<i64>,
}

fn provider_of(name: &str) -> Option<Provider> {
    match name {
        "anthropic" => Some(Provider::Anthropic),
        "openai" => Some(Provider::Openai),
        _ => None,
    }
}

/// The model lists of one run, fetched once per provider.
struct Lists<'a> {
    ctx: &'a Ctx,
    cache: HashMap<&'static str, Result<Vec<ModelInfo>, String>>,
}

impl Lists<'_> {
    async fn get(&mut self, p: Provider) -> Result<&[ModelInfo], String> {
        let key = match p {
            Provider::Anthropic => "anthropic",
            Provider::Openai => "openai",
        };
        if !self.cache.contains_key(key) {
            let endpoint = match p {
                Provider::Anthropic => &self.ctx.endpoints.anthropic,
                Provider::Openai => &self.ctx.endpoints.openai,
            };
            let listed = pins::list_models(&self.ctx.http, p, endpoint).await.map_err(|e| e.to_string());
            self.cache.insert(key, listed);
        }
        match self.cache.get(key) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(e.clone()),
            None => Err("no model list".into()),
        }
    }
}

/// The pins job: every repository, every bundle at the default branch's head.
pub async fn run(ctx: &Arc<Ctx>, weekly: bool) -> Result<(), JobError> {
    let mut lists = Lists { ctx, cache: HashMap::new() };
    let now = chrono::Utc::now().timestamp();
    let mut failures = Vec::new();
    for (repo, installation) in ctx.store.repositories().await? {
        let span = tracing::info_span!("pins", repo = %repo, weekly);
        let outcome =
            tracing::Instrument::instrument(repository(ctx, &mut lists, &repo, installation, weekly, now), span).await;
        if let Err(e) = outcome {
            // One repository's trouble does not stop the others'; the job retries them all.
            tracing::warn!(repo = %repo, error = %e, "pin tracking failed for a repository");
            failures.push(format!("{repo}: {e}"));
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(JobError::Retry(failures.join("; "))) }
}

async fn repository(
    ctx: &Arc<Ctx>,
    lists: &mut Lists<'_>,
    repo: &str,
    installation: u64,
    weekly: bool,
    now: i64,
) -> Result<(), JobError> {
    let gh = ctx.github.installation(installation)?;
    let default = gh.default_branch(repo).await?;
    let Some(base_sha) = gh.branch_head(repo, &default).await? else { return Ok(()) };
    let tree = CommitTree::fetch(&gh, repo, &base_sha).await?;
    let (cfg, _) = touched::config_of(&gh, &tree).await?;
    let manifests = workspace::match_bundles(&cfg, tree.paths()).map_err(JobError::Fatal)?;
    let soak_days = cfg.soak_days;
    for manifest in manifests {
        let text = tree
            .load(&gh, |t| t.read_text(&manifest, MAX_YAML_FILE_BYTES).ok())
            .await?
            .ok_or_else(|| JobError::Fatal(format!("{manifest} cannot be read at {base_sha}")))?;
        let refs = tree.load(&gh, |t| workspace::references(t, &manifest)).await?;
        let bundle = refs.name.clone().unwrap_or_else(|| manifest.parent().file_name().to_owned());
        let Ok(written) = snapshot_writer::read_pins(&text) else { continue };
        let mut changes = Vec::new();
        for pin in written {
            let Some(provider) = provider_of(&pin.provider) else { continue };
            let models = match lists.get(provider).await {
                Ok(m) => m,
                Err(e) => return Err(JobError::Retry(format!("listing {} models: {e}", pin.provider))),
            };
            // The repository's own `aliases:` are never proposed either.
            let models = pins::without_aliases(provider, models, &cfg.pin_policy);
            let a: Assessment = pins::assess(provider, &pin.snapshot, &models, now, soak_days);
            ctx.store
                .record_pin(&PinRecord {
                    repo,
                    bundle: &bundle,
                    role: pin.role.as_str(),
                    provider: &pin.provider,
                    pinned: &pin.snapshot,
                    newest: a.newest.as_deref(),
                    lag_days: a.lag_days,
                    retires_in_days: a.retires_in_days,
                })
                .await?;
            let Some(to) = a.newest.clone() else { continue };
            if !(weekly || a.urgent) || ctx.store.is_skipped(repo, &bundle, &to).await? {
                continue;
            }
            changes.push(Change {
                role: pin.role,
                provider: pin.provider.clone(),
                from: pin.snapshot.clone(),
                to,
                from_released: a.pinned_created,
                to_released: a.newest_created,
                lag_days: a.lag_days,
                retires_in_days: a.retires_in_days,
            });
        }
        if changes.is_empty() {
            continue;
        }
        let target = bump::Target {
            repo,
            default: &default,
            base_sha: &base_sha,
            bundle: &bundle,
            manifest: &manifest,
            text: &text,
        };
        bump::propose(ctx, &gh, &target, changes).await?;
    }
    Ok(())
}
