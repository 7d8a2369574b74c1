//! Per-provider admission: at most `concurrency` HTTP attempts in flight and, when `rpm` is set,
//! at most `rpm` attempts started in any minute.
//!
//! Agent and judge calls share one limiter per provider, because the provider's limits are per
//! account, not per kind of call. A [`Permit`] covers one HTTP attempt only: a call waiting to
//! retry gives its place to others.

use super::Limits;
use crate::snapshot::Provider;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The limits of both providers; each has its own, so one slow provider never starves the other.
#[derive(Debug)]
pub struct Limiter {
    anthropic: Gate,
    openai: Gate,
}

/// Held while one attempt is in flight; dropping it frees the place.
#[derive(Debug)]
pub struct Permit {
    _place: OwnedSemaphorePermit,
}

impl Limiter {
    pub fn new(limits: Limits) -> Self {
        Limiter { anthropic: Gate::new(limits), openai: Gate::new(limits) }
    }

    /// Waits for a place among the calls in flight, then for the next start slot.
    pub async fn acquire(&self, provider: Provider) -> Permit {
        let gate = match provider {
            Provider::Anthropic => &self.anthropic,
            Provider::Openai => &self.openai,
        };
        gate.acquire().await
    }
}

#[derive(Debug)]
struct Gate {
    places: Arc<Semaphore>,
    pacer: Option<Pacer>,
}

impl Gate {
    fn new(limits: Limits) -> Self {
        // Zero places would hang every call; a limit beyond the semaphore's maximum is no limit.
        let places = limits.concurrency.clamp(1, Semaphore::MAX_PERMITS);
        Gate { places: Arc::new(Semaphore::new(places)), pacer: limits.rpm.filter(|&r| r > 0).map(Pacer::new) }
    }

    async fn acquire(&self) -> Permit {
        let Ok(place) = Arc::clone(&self.places).acquire_owned().await else {
            unreachable!("the limiter owns its semaphore and never closes it")
        };
        if let Some(p) = &self.pacer {
            p.wait_for_slot().await;
        }
        Permit { _place: place }
    }
}

/// Evenly spaced start slots, `60 s / rpm` apart: whatever the burst, no more than `rpm`
/// attempts start in any 60 s window. Slots are taken after a place is held, so a start is
/// never later than its slot by more than the timer's resolution.
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    fn new(rpm: u32) -> Self {
        Pacer { interval: Duration::from_secs(60) / rpm, next: Mutex::new(None) }
    }

    async fn wait_for_slot(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_limit_of_zero_still_admits_one_call() {
        let l = Limiter::new(Limits { concurrency: 0, rpm: None });
        let _p = l.acquire(Provider::Anthropic).await;
    }

    #[tokio::test]
    async fn providers_do_not_share_places() {
        let l = Limiter::new(Limits { concurrency: 1, rpm: None });
        let _a = l.acquire(Provider::Anthropic).await;
        let b = tokio::time::timeout(Duration::from_millis(200), l.acquire(Provider::Openai)).await;
        assert!(b.is_ok(), "openai waited for anthropic's place");
    }

    #[tokio::test]
    async fn starts_are_spaced_by_sixty_seconds_over_rpm() {
        let l = Limiter::new(Limits { concurrency: 8, rpm: Some(1200) });
        let t0 = Instant::now();
        for i in 0..4u32 {
            let _p = l.acquire(Provider::Openai).await;
            assert!(Instant::now() - t0 >= Duration::from_millis(50) * i, "start {i} came before its slot");
        }
        assert!(Instant::now() - t0 < Duration::from_secs(2), "pacing waited far longer than 3 slots");
    }
}
