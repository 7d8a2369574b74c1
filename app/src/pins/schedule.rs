//! When pin tracking runs: the weekly bump on `EVALGATE_PIN_SCHEDULE` (five-field cron, UTC)
//! and the daily record. Each due slot is claimed in the database (one row per slot), so with
//! several replicas exactly one queues it; the work itself goes through the durable queue like a
//! webhook.

use crate::jobs::Ctx;
use crate::store::jobs::JobKind;
use chrono::{DateTime, Utc};
use croner::Cron;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_PIN_SCHEDULE: &str = "0 6 * * MON";
/// The daily record (and urgent retirements) run at this time every day.
pub const DAILY_SCHEDULE: &str = "0 5 * * *";
/// How often the scheduler looks at the clock.
const TICK: Duration = Duration::from_secs(30);
/// A slot older than this when first seen (the server was down) is not run late.
const GRACE_MS: i64 = 6 * 3600 * 1000;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    pub pattern: String,
}

impl Schedule {
    pub fn parse(pattern: &str) -> Result<Schedule, String> {
        if pattern.split_whitespace().count() != 5 {
            return Err(format!("`{pattern}` is not a five-field cron pattern (minute hour day month weekday)"));
        }
        let cron = Cron::from_str(pattern).map_err(|e| format!("`{pattern}`: {e}"))?;
        Ok(Schedule { cron, pattern: pattern.to_owned() })
    }

    /// The latest slot at or before `now`.
    pub fn last_slot(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_previous_occurrence(&now, true).ok()
    }
}

/// Queues the pins job for every due slot not yet claimed, forever.
pub fn spawn(ctx: Arc<Ctx>, weekly: Schedule) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let daily = Schedule::parse(DAILY_SCHEDULE).unwrap_or_else(|_| weekly.clone());
        loop {
            for (name, schedule, is_weekly) in [("pins-weekly", &weekly, true), ("pins-daily", &daily, false)] {
                if let Err(e) = fire_due(&ctx, name, schedule, is_weekly, Utc::now()).await {
                    tracing::warn!(error = %e, schedule = name, "scheduler");
                }
            }
            tokio::time::sleep(TICK).await;
        }
    })
}

async fn fire_due(ctx: &Ctx, name: &str, s: &Schedule, weekly: bool, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let Some(slot) = s.last_slot(now) else { return Ok(()) };
    let slot_ms = slot.timestamp_millis();
    if now.timestamp_millis() - slot_ms > GRACE_MS {
        return Ok(());
    }
    if ctx.store.claim_slot(name, slot_ms).await? {
        tracing::info!(schedule = name, slot = %slot, "scheduled pin tracking queued");
        ctx.store.enqueue(JobKind::Pins, &serde_json::json!({ "weekly": weekly, "slot_ms": slot_ms })).await?;
        ctx.wake.notify_waiters();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn the_default_is_monday_six_utc() {
        let s = Schedule::parse(DEFAULT_PIN_SCHEDULE).expect("parses");
        // Wednesday 2026-12-02 10:00 UTC → Monday 2026-11-30 06:00.
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0).single().expect("time");
        let slot = s.last_slot(now).expect("a slot");
        assert_eq!(slot, Utc.with_ymd_and_hms(2026, 11, 30, 6, 0, 0).single().expect("time"));
    }

    #[test]
    fn six_fields_or_nonsense_are_refused() {
        assert!(Schedule::parse("0 0 6 * * MON").is_err());
        assert!(Schedule::parse("not a cron").is_err());
        assert!(Schedule::parse("61 * * * *").is_err());
    }
}
