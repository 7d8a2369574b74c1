//! `evalgate setup [--org ORG]`: registers the GitHub App from its manifest (see [`crate::setup`])
//! and writes its credentials in the current folder, then prints where to install it.

use crate::exit::Outcome;
use crate::settings::SetupSettings;
use crate::setup::{self, Options};
use anyhow::Context as _;

pub fn run(org: Option<&str>) -> anyhow::Result<Outcome> {
    let settings = SetupSettings::from_env()?;
    let dir = std::env::current_dir().context("cannot read the current folder")?;
    let opts = Options {
        bind: settings.bind,
        public_url: settings.public_url.clone(),
        github_url: settings.github_url,
        github_api_url: settings.github_api_url,
        org: org.map(str::to_owned),
        dir,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    let callback = format!("{}{}", settings.public_url, setup::manifest::CALLBACK_PATH);
    let registered = rt.block_on(setup::run(opts, |addr| {
        // The first line is for scripts (and the tests), as `serve` prints it.
        println!("evalgate setup listening on http://{addr}");
        println!(
            "Open http://{addr}/ in a browser and press \"Create the GitHub App\"; GitHub sends you back to {callback}."
        );
    }))?;
    let c = &registered.conversion;
    println!("Registered the GitHub App `{}` (id {}).", c.slug, c.id);
    println!("Wrote {} and {} (mode 0600).", registered.written.settings.display(), registered.written.key.display());
    println!("Install it on your repositories: {}", c.install_url());
    println!("Then run `evalgate serve` in this folder.");
    Ok(Outcome::Ok)
}
