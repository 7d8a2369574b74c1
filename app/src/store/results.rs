//! The result cache on the `results` table: the engine's [`ResultCache`].

use super::Store;
use evaluators::engine::cache::{BoxFuture, CacheError, CacheKind, ResultCache};
use evaluators::ids::Sha256;

impl ResultCache for Store {
    fn get<'a>(&'a self, kind: CacheKind, key: &'a Sha256) -> BoxFuture<'a, Result<Option<String>, CacheError>> {
        Box::pin(async move {
            sqlx::query_scalar::<_, String>("SELECT value FROM results WHERE kind = $1 AND key = $2")
                .bind(kind.as_str())
                .bind(key.hex())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| CacheError(e.to_string()))
        })
    }

    fn put<'a>(&'a self, kind: CacheKind, key: &'a Sha256, value: &'a str) -> BoxFuture<'a, Result<(), CacheError>> {
        Box::pin(async move {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            // Same key, same inputs: a second writer's value is the same result, so keep the first.
            sqlx::query("INSERT INTO results (kind, key, value, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (kind, key) DO NOTHING")
                .bind(kind.as_str())
                .bind(key.hex())
                .bind(value)
                .bind(now)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(|e| CacheError(e.to_string()))
        })
    }
}
