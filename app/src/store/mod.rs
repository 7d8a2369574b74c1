//! The database: one pool, migrations embedded in the binary, and the tables' queries in one
//! module each. SQLite by default (`sqlite://evalgate.db`, created when missing).

pub mod audit;
pub mod check_runs;
pub mod deliveries;
pub mod gate_runs;
pub mod head_syncs;
pub mod jobs;
pub mod merge_groups;
pub mod pins;
pub mod pull_requests;
mod results;
pub mod review;

use anyhow::Context as _;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::{Connection as _, Executor as _};

/// Migrations from the workspace's `migrations/` folder, compiled in. One set for both
/// databases: the SQL in them is the common subset of SQLite and PostgreSQL.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// The database's schema against this binary's migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    Current,
    /// Migrations not applied yet.
    Behind {
        missing: usize,
    },
    /// Applied migrations this binary does not know: a newer evalgate migrated it.
    Newer,
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded, one server: the default.
    Sqlite,
    /// Several replicas on one database.
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// The store: one pool over either database. Queries are runtime queries (`sqlx::query`), the
/// same text for both: sqlx's compile-time macros do not work over `AnyPool`.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
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
        sqlx::any::install_default_drivers();
        let Some(backend) = Backend::of(url) else {
            anyhow::bail!(
                "EVALGATE_DATABASE_URL `{}` is not supported: use sqlite://FILE or postgres://USER@HOST/DB",
                redact(url)
            );
        };
        let url = match backend {
            // Create the file when missing, as an embedded default should.
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_owned(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 10 })
            .acquire_timeout(std::time::Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; a writer waits up to 10 s.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        // Commits reach the log at once but are synced to disk only with the next
                        // synced one: a power loss can take the last few back, always as a whole
                        // and in order (a consistent earlier state; jobs redo what was lost). The
                        // commit a webhook is answered after is synced (`take_delivery`), so an
                        // acknowledged delivery, and all before it, survives a power loss too.
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .with_context(|| format!("cannot open the database `{}`", redact(&url)))?;
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// How the database's schema compares with this binary's migrations.
    pub async fn schema(&self) -> Result<Schema, sqlx::Error> {
        let applied = sqlx::query_scalar::<_, i64>("SELECT version FROM _sqlx_migrations WHERE success = true")
            .fetch_all(&self.pool)
            .await;
        let applied = match applied {
            Ok(v) => v,
            // No migrations table: nothing was ever applied.
            Err(sqlx::Error::Database(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        Ok(if applied.iter().any(|v| !known.contains(v)) {
            Schema::Newer
        } else if known.iter().all(|v| applied.contains(v)) {
            Schema::Current
        } else {
            Schema::Behind { missing: known.iter().filter(|v| !applied.contains(v)).count() }
        })
    }

    /// Whether the database answers (`/readyz`).
    pub async fn ping(&self) -> bool {
        match self.pool.acquire().await {
            Ok(mut c) => c.ping().await.is_ok(),
            Err(_) => false,
        }
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
    use super::{redact, testing};

    #[tokio::test]
    async fn the_schema_is_current_after_migrating_and_newer_after_an_unknown_migration() {
        schema_current_then_newer(testing::sqlite().await).await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL at 127.0.0.1:5432"]
    async fn the_schema_is_current_after_migrating_and_newer_after_an_unknown_migration_on_postgres() {
        schema_current_then_newer(testing::postgres("schema").await).await;
    }

    async fn schema_current_then_newer(t: testing::TestStore) {
        assert_eq!(t.store.schema().await.expect("schema"), super::Schema::Current);
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time)
             VALUES (99999999, 'from the future', CURRENT_TIMESTAMP, true, $1, 0)",
        )
        .bind(vec![0u8; 48])
        .execute(&t.store.pool)
        .await
        .expect("insert");
        assert_eq!(t.store.schema().await.expect("schema"), super::Schema::Newer);
        t.done().await;
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(redact("postgres://ev:s3cret@db:5432/x"), "postgres://ev:***@db:5432/x");
        assert_eq!(redact("sqlite://evalgate.db"), "sqlite://evalgate.db");
    }
}

/// Stores for tests. Each store test runs on a fresh SQLite file by default, and has a
/// PostgreSQL twin `#[ignore = "needs PostgreSQL at 127.0.0.1:5432"]` on a fresh database of
/// the server at `EVALGATE_TEST_POSTGRES_URL` (default the local one), which `.ci/run` runs with
/// `--ignored`. A twin whose server does not answer fails; it is never counted as a pass.
#[cfg(test)]
pub mod testing {
    use super::Store;
    use sqlx::Connection as _;

    pub struct TestStore {
        pub store: Store,
        _dir: Option<tempfile::TempDir>,
        drop_db: Option<(String, String)>,
    }

    impl TestStore {
        /// Drops the PostgreSQL database made for the test (ending connections still open).
        pub async fn done(self) {
            if let Some((admin, db)) = self.drop_db {
                self.store.pool.close().await;
                if let Ok(mut c) = sqlx::postgres::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(&mut c).await;
                }
            }
        }
    }

    pub fn postgres_admin_url() -> String {
        std::env::var("EVALGATE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
    }

    /// A migrated store on a fresh SQLite file.
    pub async fn sqlite() -> TestStore {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        TestStore { store: Store::open(&url).await.expect("sqlite"), _dir: Some(dir), drop_db: None }
    }

    /// A migrated store on a fresh PostgreSQL database named after `name`; panics when the
    /// server does not answer.
    pub async fn postgres(name: &str) -> TestStore {
        let admin = postgres_admin_url();
        let connect =
            tokio::time::timeout(std::time::Duration::from_secs(10), sqlx::postgres::PgConnection::connect(&admin));
        let mut c = match connect.await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                panic!("PostgreSQL at {admin} does not answer ({e}): start it (.ci/run does) to run `{name}`")
            }
            Err(_) => {
                panic!("PostgreSQL at {admin} did not answer within 10 s: start it (.ci/run does) to run `{name}`")
            }
        };
        let db = format!("evalgate_test_{name}_{:08x}", fastrand::u32(..));
        sqlx::query(&format!("CREATE DATABASE {db}")).execute(&mut c).await.expect("create database");
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin.clone());
        let store = Store::open(&format!("{base}/{db}")).await.expect("postgres");
        TestStore { store, _dir: None, drop_db: Some((admin, db)) }
    }
}
