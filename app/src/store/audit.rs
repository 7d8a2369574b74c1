//! `audit_entries`: append and read, nothing else — no update or delete exists.

use super::{Store, now_ms};
use crate::audit::{Entry, GENESIS, Kind};
use serde_json::Value;

type Row = (String, i64, i64, String, String, Option<i64>, String, String, String);

fn from_row(r: Row) -> Entry {
    Entry {
        repo: r.0,
        seq: r.1,
        at_ms: r.2,
        kind: r.3,
        actor: r.4,
        pr_number: r.5,
        // Stored by `append` from a `Value`; a row that is not JSON keeps its text, so
        // verification (which rehashes) fails on it rather than hiding it.
        data: serde_json::from_str(&r.6).unwrap_or(Value::String(r.6)),
        prev_sha256: r.7,
        sha256: r.8,
    }
}

const COLUMNS: &str = "repo, seq, at_ms, kind, actor, pr_number, data, prev_sha256, sha256";

/// One database transaction.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// How often a transaction that appends to the audit chain starts again after another writer
/// took the chain's next `seq`.
pub const MAX_RACES: usize = 8;

pub fn raced() -> sqlx::Error {
    sqlx::Error::Protocol("audit chain: too many concurrent appends".into())
}

/// What an append inside a transaction ended with.
pub enum Appended<T> {
    Done(T),
    /// Another writer took the chain's next `seq`: start the transaction again.
    Raced,
}

/// An audit entry to append.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub repo: &'a str,
    pub kind: Kind,
    pub actor: &'a str,
    pub pr_number: Option<u64>,
    pub data: Value,
}

/// Now, in Unix milliseconds: the database server's clock on PostgreSQL (shared by every
/// replica), this process's on SQLite (one process owns the file).
async fn clock(tx: &mut Tx) -> Result<i64, sqlx::Error> {
    if tx.backend_name() != "PostgreSQL" {
        return Ok(now_ms());
    }
    sqlx::query_scalar::<_, i64>("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)")
        .fetch_one(&mut **tx)
        .await
}

/// Appends `e` to its repository's chain inside `tx`: committed with whatever else `tx` holds
/// (the decision it records), or not at all.
pub async fn append(tx: &mut Tx, e: &NewEntry<'_>) -> Result<Appended<Entry>, sqlx::Error> {
    let head = sqlx::query_as::<_, (i64, String, i64)>(
        "SELECT seq, sha256, at_ms FROM audit_entries WHERE repo = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(e.repo)
    .fetch_optional(&mut **tx)
    .await?;
    let (seq, prev, prev_at) = head.map(|(s, h, at)| (s + 1, h, at)).unwrap_or((1, GENESIS.to_owned(), 0));
    // Times never go backwards along the chain, whichever replica (and clock) appends: a period
    // of time is then always an unbroken run of the chain, so its export verifies.
    let at_ms = clock(tx).await?.max(prev_at);
    let mut entry = Entry {
        repo: e.repo.to_owned(),
        seq,
        at_ms,
        kind: e.kind.as_str().to_owned(),
        actor: e.actor.to_owned(),
        pr_number: e.pr_number.map(|n| n as i64),
        data: e.data.clone(),
        prev_sha256: prev,
        sha256: String::new(),
    };
    entry.sha256 = entry.compute_sha256();
    let inserted = sqlx::query(&format!(
        "INSERT INTO audit_entries ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (repo, seq) DO NOTHING"
    ))
    .bind(&entry.repo)
    .bind(entry.seq)
    .bind(entry.at_ms)
    .bind(&entry.kind)
    .bind(&entry.actor)
    .bind(entry.pr_number)
    .bind(entry.data.to_string())
    .bind(&entry.prev_sha256)
    .bind(&entry.sha256)
    .execute(&mut **tx)
    .await?;
    Ok(if inserted.rows_affected() == 1 { Appended::Done(entry) } else { Appended::Raced })
}

impl Store {
    /// Appends an entry to the repository's chain, in a transaction of its own.
    pub async fn audit(
        &self,
        repo: &str,
        kind: Kind,
        actor: &str,
        pr_number: Option<u64>,
        data: Value,
    ) -> Result<Entry, sqlx::Error> {
        let entry = NewEntry { repo, kind, actor, pr_number, data };
        for _ in 0..MAX_RACES {
            let mut tx = self.pool.begin().await?;
            match append(&mut tx, &entry).await? {
                Appended::Done(e) => {
                    tx.commit().await?;
                    return Ok(e);
                }
                Appended::Raced => tx.rollback().await?,
            }
        }
        Err(raced())
    }

    /// The repository's entries with `since_ms <= at_ms <= until_ms`, in chain order.
    pub async fn audit_entries(&self, repo: &str, since_ms: i64, until_ms: i64) -> Result<Vec<Entry>, sqlx::Error> {
        sqlx::query_as::<_, Row>(&format!(
            "SELECT {COLUMNS} FROM audit_entries WHERE repo = $1 AND at_ms >= $2 AND at_ms <= $3 ORDER BY seq"
        ))
        .bind(repo)
        .bind(since_ms)
        .bind(until_ms)
        .fetch_all(&self.pool)
        .await
        .map(|rows| rows.into_iter().map(from_row).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::testing;

    #[tokio::test]
    async fn entries_chain_by_the_previous_hash() {
        let t = testing::sqlite().await;
        chains(&t.store).await;
        t.done().await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL at 127.0.0.1:5432"]
    async fn entries_chain_by_the_previous_hash_on_postgres() {
        let t = testing::postgres("audit_chain").await;
        chains(&t.store).await;
        t.done().await;
    }

    async fn chains(s: &Store) {
        let a =
            s.audit("o/r", Kind::Command, "jordan", Some(1), serde_json::json!({"c": "rerun"})).await.expect("append");
        let b =
            s.audit("o/r", Kind::Override, "jordan", Some(1), serde_json::json!({"why": "x"})).await.expect("append");
        let other = s.audit("o/other", Kind::Command, "x", None, serde_json::json!({})).await.expect("append");
        assert_eq!((a.seq, a.prev_sha256.as_str()), (1, GENESIS));
        assert_eq!((b.seq, b.prev_sha256.as_str()), (2, a.sha256.as_str()));
        assert_eq!(other.seq, 1, "each repository has its own chain");
        let all = s.audit_entries("o/r", 0, i64::MAX).await.expect("read");
        assert_eq!(all, vec![a, b]);
        assert!(all.iter().all(|e| e.sha256 == e.compute_sha256()));
    }
}
