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

impl Store {
    /// Appends an entry to the repository's chain. Two writers racing for the same `seq` collide
    /// on the primary key; the loser reads the new head and tries again.
    pub async fn audit(
        &self,
        repo: &str,
        kind: Kind,
        actor: &str,
        pr_number: Option<u64>,
        data: Value,
    ) -> Result<Entry, sqlx::Error> {
        let mut last_err = None;
        for _ in 0..8 {
            let head = sqlx::query_as::<_, (i64, String)>(
                "SELECT seq, sha256 FROM audit_entries WHERE repo = $1 ORDER BY seq DESC LIMIT 1",
            )
            .bind(repo)
            .fetch_optional(&self.pool)
            .await?;
            let (seq, prev) = head.map(|(s, h)| (s + 1, h)).unwrap_or((1, GENESIS.to_owned()));
            let mut e = Entry {
                repo: repo.to_owned(),
                seq,
                at_ms: now_ms(),
                kind: kind.as_str().to_owned(),
                actor: actor.to_owned(),
                pr_number: pr_number.map(|n| n as i64),
                data: data.clone(),
                prev_sha256: prev,
                sha256: String::new(),
            };
            e.sha256 = e.compute_sha256();
            let inserted = sqlx::query(&format!(
                "INSERT INTO audit_entries ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (repo, seq) DO NOTHING"
            ))
            .bind(&e.repo)
            .bind(e.seq)
            .bind(e.at_ms)
            .bind(&e.kind)
            .bind(&e.actor)
            .bind(e.pr_number)
            .bind(e.data.to_string())
            .bind(&e.prev_sha256)
            .bind(&e.sha256)
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(r) if r.rows_affected() == 1 => return Ok(e),
                Ok(_) => continue,
                Err(err) => last_err = Some(err),
            }
        }
        Err(last_err.unwrap_or(sqlx::Error::Protocol("audit chain: too many concurrent appends".into())))
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

    #[tokio::test]
    async fn entries_chain_by_the_previous_hash() {
        for t in crate::store::testing::stores("audit_chain").await {
            chains(&t.store).await;
            t.done().await;
        }
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
