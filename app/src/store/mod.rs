//! The database: one pool, migrations embedded in the binary, and the tables' queries in one
//! module each. SQLite by default (`sqlite://evalgate.db`, created when missing).

pub mod audit;
pub mod check_runs;
pub mod deliveries;
pub mod gate_runs;
pub mod jobs;
pub mod pins;
pub mod pull_requests;
mod results;
pub mod review;

use anyhow::Context as _;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// Migrations from the workspace's `migrations/` folder, compiled in.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens the database named by `url` and applies pending migrations.
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens without migrating (`evalgate migrate` reports what it applies).
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        if !url.starts_with("sqlite:") {
            anyhow::bail!("EVALGATE_DATABASE_URL `{}` is not supported by this build: use sqlite://FILE", redact(url));
        }
        let opts = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("EVALGATE_DATABASE_URL `{}` is not a valid SQLite URL", redact(url)))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .with_context(|| format!("cannot open the database `{}`", redact(url)))?;
        Ok(Store { pool })
    }

    /// Whether the database answers (`/readyz`).
    pub async fn ping(&self) -> bool {
        sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(&self.pool).await.is_ok()
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR.run(&self.pool).await.context("applying database migrations")?;
        Ok(())
    }
}

/// Milliseconds since the Unix epoch: the one clock every table uses.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A fresh random id (128 bits as 32 hex digits).
pub fn new_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(redact("postgres://ev:s3cret@db:5432/x"), "postgres://ev:***@db:5432/x");
        assert_eq!(redact("sqlite://evalgate.db"), "sqlite://evalgate.db");
    }
}
