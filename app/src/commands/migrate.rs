//! `evalgate migrate`: applies the embedded migrations to `EVALGATE_DATABASE_URL`.

use crate::exit::Outcome;
use crate::settings;
use crate::store::{self, Store};
use anyhow::Context as _;

pub fn run() -> anyhow::Result<Outcome> {
    let rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")?;
    rt.block_on(async {
        let url = settings::database_url();
        let store = Store::connect(&url).await?;
        store.migrate().await?;
        println!("{}: migrations applied ({} known)", store::redact(&url), store::MIGRATOR.iter().count());
        Ok(Outcome::Ok)
    })
}
