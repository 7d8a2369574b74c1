//! `evalgate serve`: settings checked first (a missing one stops start-up with one line naming
//! it), then the database, the GitHub App client, the shared model client, workers and HTTP.

use crate::exit::Outcome;
use crate::github::GitHubApp;
use crate::jobs::Ctx;
use crate::link::LinkSigner;
use crate::render::Templates;
use crate::server::{self, App};
use crate::settings::{self, ServeSettings};
use crate::store::{Backend, Schema, Store};
use anyhow::Context as _;
use evaluators::provider::{ModelClient, RetryPolicy};
use std::sync::Arc;

pub fn run() -> anyhow::Result<Outcome> {
    let settings = ServeSettings::from_env()?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    rt.block_on(serve(settings))?;
    Ok(Outcome::Ok)
}

async fn serve(settings: ServeSettings) -> anyhow::Result<()> {
    let store = Store::connect(&settings.database_url).await?;
    match (store.schema().await?, store.backend()) {
        (Schema::Current, _) => {}
        // The embedded default sets itself up, as a first run should.
        (Schema::Behind { .. }, Backend::Sqlite) => store.migrate().await?,
        (Schema::Behind { missing }, Backend::Postgres) => anyhow::bail!(
            "the database schema is {missing} migration(s) behind this evalgate: run `evalgate migrate` once, then start the replicas"
        ),
        (Schema::Newer, _) => anyhow::bail!(
            "the database was migrated by a newer evalgate than this one: run that version, or a newer one"
        ),
    }
    tracing::info!(backend = ?store.backend(), "database ready");
    let github = GitHubApp::new(&settings.github_api_url, settings.app_id, settings.private_key.expose().as_bytes())?;
    let limits = settings::limits(None)?;
    let models = ModelClient::live(settings::endpoints(), RetryPolicy::default(), limits, None)
        .context("setting up the model providers")?;
    let secrets = settings.webhook_secrets.iter().map(|s| s.expose().as_bytes().to_vec()).collect::<Vec<_>>();
    let hooks: Vec<&[u8]> = secrets.iter().map(Vec::as_slice).collect();
    let links = LinkSigner::from_settings(settings.link_secret.as_ref().map(|s| s.expose().as_bytes()), &hooks);
    let ctx = Ctx::new(
        store,
        github,
        Arc::new(models),
        limits.concurrency,
        settings::endpoints(),
        Templates::new()?,
        links,
        settings.public_url.clone(),
    );
    let app = Arc::new(App {
        ctx: Arc::new(ctx),
        webhook_secrets: settings.webhook_secrets.clone(),
        admin_token: settings.admin_token.clone(),
    });
    server::serve(settings, app).await
}
