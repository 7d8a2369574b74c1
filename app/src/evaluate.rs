//! One gate evaluation, the same on a pull request and under `evalgate eval`: both sides on the
//! base's pinned golden set, under the base's budget and the thresholds in force, into a report.

use evaluators::bundle::Bundle;
use evaluators::engine::Engine;
use evaluators::engine::budget::Budget;
use evaluators::engine::cache::ResultCache;
use evaluators::engine::caller::Caller;
use evaluators::gate::Thresholds;
use evaluators::pricing::PriceTable;
use evaluators::provider::ModelClient;
use evaluators::report::{self, Report};
use evaluators::workspace::LoadedBundle;
use std::sync::Arc;

/// What one evaluation needs besides the two bundles.
pub struct Setup {
    pub client: Arc<ModelClient>,
    pub cache: Arc<dyn ResultCache>,
    pub prices: PriceTable,
    pub concurrency: usize,
}

/// Case runs the evaluation will make (the progress bar's and the check run's total).
pub fn total_runs(base: &LoadedBundle, head: &LoadedBundle) -> u64 {
    base.golden.cases.len() as u64 * u64::from(base.bundle.eval.samples + head.bundle.eval.samples)
}

/// Runs both sides and builds the report. `progress` is called once per finished case run.
pub async fn evaluate(
    setup: Setup,
    base: &LoadedBundle,
    head: &LoadedBundle,
    thresholds: &Thresholds,
    progress: impl Fn() + Send + Sync + 'static,
) -> (Report, Engine) {
    let b = &base.bundle;
    let budget = Budget::new(b.eval.budget.max_usd, b.eval.budget.max_tokens);
    let caller = Caller::new(setup.client, budget, setup.prices, setup.concurrency);
    let engine = Engine::new(caller, setup.cache).on_progress(progress);
    // The golden set is the base's: the pin a pull request cannot move by itself.
    let golden = &base.golden;
    let (base_run, head_run) = engine.run(&base.bundle, &head.bundle, golden).await;
    let incomplete = engine.caller().stopped().map(|e| e.to_string());
    let cx = report::Context {
        base: &base.bundle,
        head: &head.bundle,
        golden,
        thresholds,
        calls: engine.counts(),
        incomplete,
    };
    (report::build(&cx, base_run, head_run), engine)
}

/// A spending cap or cost gate in dollars cannot be enforced without prices.
pub fn require_prices(prices: &PriceTable, b: &Bundle) -> Result<(), String> {
    let needs = b.eval.budget.max_usd.is_some() || b.eval.gate.max_cost_increase.is_some();
    if !needs {
        return Ok(());
    }
    let mut snapshots = vec![&b.model.snapshot];
    if let Some(j) = &b.eval.judge {
        snapshots.push(&j.snapshot);
    }
    for s in snapshots {
        if prices.price(s).is_none() {
            return Err(format!(
                "no price for {s}, and bundle {} sets a budget in USD or a cost gate: add it under `prices:` in .evalgate.yml",
                b.name
            ));
        }
    }
    Ok(())
}
