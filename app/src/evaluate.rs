//! One gate evaluation, the same on a pull request and under `evalgate eval`: both sides
//! measured by the base's instrument (golden set and pin, gate, samples, budget, judge), into
//! a report. A bundle the pull request adds is evaluated on head alone, on its own instrument.

use evaluators::bundle::Bundle;
use evaluators::engine::Engine;
use evaluators::engine::budget::Budget;
use evaluators::engine::cache::ResultCache;
use evaluators::engine::caller::Caller;
use evaluators::gate::Thresholds;
use evaluators::instrument;
use evaluators::pricing::PriceTable;
use evaluators::provider::ModelClient;
use evaluators::report::{self, Report, Runs};
use evaluators::workspace::LoadedBundle;
use std::sync::Arc;

/// What one evaluation needs besides the two bundles.
pub struct Setup {
    pub client: Arc<ModelClient>,
    pub cache: Arc<dyn ResultCache>,
    pub prices: PriceTable,
    pub concurrency: usize,
}

/// What is run: the base's bundle (none for a bundle the pull request adds) and the head's.
#[derive(Clone, Copy)]
pub struct Pair<'a> {
    pub base: Option<&'a LoadedBundle>,
    pub head: &'a LoadedBundle,
}

impl<'a> Pair<'a> {
    /// The side whose instrument measures both: the base's, or the head's own when new.
    pub fn instrument(&self) -> &'a LoadedBundle {
        self.base.unwrap_or(self.head)
    }

    /// Whether the pull request changes the judge (then head's judge grades head's
    /// transcripts too, beside the instrument's).
    pub fn judge_changed(&self) -> bool {
        self.base.is_some_and(|b| instrument::judge_changed(&b.bundle.eval, &self.head.bundle.eval))
    }
}

/// Case runs the evaluation will make (the progress bar's and the check run's total).
pub fn total_runs(pair: Pair<'_>) -> u64 {
    let inst = pair.instrument();
    let per_side = inst.golden.cases.len() as u64 * u64::from(inst.bundle.eval.samples);
    let sides = 1 + u64::from(pair.base.is_some()) + u64::from(pair.judge_changed());
    per_side * sides
}

/// Runs both sides and builds the report. `progress` is called once per finished case run.
pub async fn evaluate(
    setup: Setup,
    pair: Pair<'_>,
    thresholds: &Thresholds,
    progress: impl Fn() + Send + Sync + 'static,
) -> (Report, Engine) {
    let inst = pair.instrument();
    let budget = Budget::new(inst.bundle.eval.budget.max_usd, inst.bundle.eval.budget.max_tokens);
    let caller = Caller::new(setup.client, budget, setup.prices, setup.concurrency);
    let engine = Engine::new(caller, setup.cache).on_progress(progress);
    // The golden set is the instrument's: the pin a pull request cannot move by itself.
    let golden = &inst.golden;
    let head = instrument::measured(&pair.head.bundle, &inst.bundle);
    let regraded = pair.judge_changed().then(|| instrument::regraded(&head, pair.head.bundle.eval.judge.as_ref()));
    let base_side = async {
        match pair.base {
            Some(b) => Some(engine.side(&b.bundle, golden).await),
            None => None,
        }
    };
    let regraded_side = async {
        match &regraded {
            Some(r) => Some(engine.side(r, golden).await),
            None => None,
        }
    };
    let (base_run, head_run, head_regraded) = tokio::join!(base_side, engine.side(&head, golden), regraded_side);
    let cx = report::Context {
        base: pair.base.map(|b| &b.bundle),
        head: &pair.head.bundle,
        instrument: &inst.bundle,
        golden,
        thresholds,
        calls: engine.counts(),
        stopped: engine.caller().stopped().map(|e| e.to_string()),
    };
    (report::build(&cx, Runs { base: base_run, head: head_run, head_regraded }), engine)
}

/// A spending cap or cost gate in dollars cannot be enforced without prices: the instrument's
/// budget and cost gate, over every snapshot the evaluation calls.
pub fn require_prices(prices: &PriceTable, pair: Pair<'_>) -> Result<(), String> {
    let inst = &pair.instrument().bundle;
    let needs = inst.eval.budget.max_usd.is_some() || inst.eval.gate.max_cost_increase.is_some();
    if !needs {
        return Ok(());
    }
    for s in snapshots(pair) {
        if prices.price(s).is_none() {
            return Err(format!(
                "no price for {s}, and bundle {} sets a budget in USD or a cost gate: add it under `prices:` in .evalgate.yml",
                inst.name
            ));
        }
    }
    Ok(())
}

/// Every snapshot an evaluation calls: each side's agent, the instrument's judge, and the
/// head's judge when it changed.
pub fn snapshots<'a>(pair: Pair<'a>) -> Vec<&'a evaluators::snapshot::Snapshot> {
    let mut out: Vec<&Bundle> = pair.base.map(|b| &b.bundle).into_iter().collect();
    out.push(&pair.head.bundle);
    let mut snaps: Vec<&evaluators::snapshot::Snapshot> = out.iter().map(|b| &b.model.snapshot).collect();
    if let Some(j) = &pair.instrument().bundle.eval.judge {
        snaps.push(&j.snapshot);
    }
    if pair.judge_changed() {
        if let Some(j) = &pair.head.bundle.eval.judge {
            snaps.push(&j.snapshot);
        }
    }
    snaps.dedup();
    snaps
}
