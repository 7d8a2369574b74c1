//! Every model call of a run goes through one [`Caller`]: it asks the budget first, calls the
//! provider, prices the reply, charges the budget and counts the call.

use super::budget::{Budget, BudgetReached};
use crate::pricing::PriceTable;
use crate::provider::{ChatRequest, Exchange, ModelClient, ProviderError};
use crate::snapshot::Provider;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Why a call was not made or did not succeed. Either way the run is incomplete.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Budget(#[from] BudgetReached),
    #[error(transparent)]
    Cache(#[from] super::cache::CacheError),
}

pub struct Priced {
    pub exchange: Exchange,
    pub cost_usd: Option<f64>,
}

pub struct Caller {
    client: Arc<ModelClient>,
    budget: Budget,
    prices: PriceTable,
    calls: AtomicU64,
    /// Whole calls in flight per provider (anthropic, openai). The budget is asked once a call
    /// has its place, so calls queued behind the limit cannot slip past a cap reached meanwhile.
    places: [Semaphore; 2],
    /// The first call that failed for good. After it no call is made: the run is incomplete
    /// anyway, and a dead provider should not be asked hundreds more times.
    stopped: Mutex<Option<CallError>>,
}

impl Caller {
    pub fn new(client: Arc<ModelClient>, budget: Budget, prices: PriceTable, concurrency: usize) -> Self {
        let n = concurrency.clamp(1, Semaphore::MAX_PERMITS);
        Caller {
            client,
            budget,
            prices,
            calls: AtomicU64::new(0),
            places: [Semaphore::new(n), Semaphore::new(n)],
            stopped: Mutex::new(None),
        }
    }

    pub async fn call(&self, req: &ChatRequest, nonce: u32) -> Result<Priced, CallError> {
        let place = match req.snapshot.provider() {
            Provider::Anthropic => &self.places[0],
            Provider::Openai => &self.places[1],
        };
        let Ok(_place) = place.acquire().await else { unreachable!("the caller never closes its semaphores") };
        if let Some(e) = self.stopped() {
            return Err(e);
        }
        if let Err(e) = self.budget.admit() {
            return Err(self.stop(e.into()));
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let exchange = self.client.complete(req, nonce).await.map_err(|e| self.stop(e.into()))?;
        let usage = exchange.response.usage;
        let cost_usd = self.prices.cost(&req.snapshot, usage);
        self.budget.charge(cost_usd.unwrap_or(0.0), usage.input_tokens + usage.output_tokens);
        Ok(Priced { exchange, cost_usd })
    }

    /// Why the run stopped calling models, if it did.
    pub fn stopped(&self) -> Option<CallError> {
        self.stopped.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn stop(&self, e: CallError) -> CallError {
        let mut s = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        s.get_or_insert(e).clone()
    }

    /// Model calls made so far (replayed ones included, cache hits not).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub fn spent(&self) -> (f64, u64) {
        self.budget.spent()
    }

    pub fn client(&self) -> &ModelClient {
        &self.client
    }

    pub fn prices(&self) -> &PriceTable {
        &self.prices
    }
}
