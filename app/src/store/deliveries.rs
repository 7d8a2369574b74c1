//! `deliveries`: every verified webhook delivery, keyed by `X-GitHub-Delivery`. Storing it and
//! queueing its job happen in one transaction, before GitHub gets its answer.

use super::{Store, new_id, now_ms};
use crate::store::jobs::JobKind;

/// What happened to a delivery on intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    /// Stored, and a job queued when the event needs one.
    Stored,
    /// This delivery id was seen before: acknowledged, not processed again.
    Duplicate,
}

impl Store {
    /// Stores the delivery and, when `queue` is set, its job, atomically.
    pub async fn take_delivery(
        &self,
        delivery_id: &str,
        event: &str,
        action: &str,
        payload: &str,
        queue: bool,
    ) -> Result<Intake, sqlx::Error> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO deliveries (delivery_id, event, action, received_at, payload) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (delivery_id) DO NOTHING",
        )
        .bind(delivery_id)
        .bind(event)
        .bind(action)
        .bind(now)
        .bind(payload)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(Intake::Duplicate);
        }
        if queue {
            let job = serde_json::json!({ "delivery_id": delivery_id }).to_string();
            sqlx::query(
                "INSERT INTO jobs (id, kind, payload, state, attempts, run_after, created_at, updated_at) VALUES ($1, $2, $3, 'queued', 0, $4, $4, $4)",
            )
            .bind(new_id())
            .bind(JobKind::Delivery.as_str())
            .bind(job)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Intake::Stored)
    }

    /// `(event, payload)` of a stored delivery.
    pub async fn delivery(&self, delivery_id: &str) -> Result<Option<(String, String)>, sqlx::Error> {
        sqlx::query_as::<_, (String, String)>("SELECT event, payload FROM deliveries WHERE delivery_id = $1")
            .bind(delivery_id)
            .fetch_optional(&self.pool)
            .await
    }
}
