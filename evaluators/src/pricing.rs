//! What a model call costs: list prices per snapshot, overridable in `.evalgate.yml`.

use crate::config::Price;
use crate::provider::Usage;
use crate::snapshot::Snapshot;
use std::collections::BTreeMap;

/// List prices in USD per million tokens (input, output), matched by id prefix, longest first.
/// They are what the providers published for these families; a repository that pays other
/// prices, or uses a model not listed, sets `prices:` in `.evalgate.yml`, which wins.
const LIST_PRICES: &[(&str, f64, f64)] = &[
    ("claude-opus-4-1", 15.0, 75.0),
    ("claude-opus-4-0", 15.0, 75.0),
    ("claude-opus-4-2025", 15.0, 75.0),
    ("claude-opus-4-5", 5.0, 25.0),
    ("claude-opus-4-6", 5.0, 25.0),
    ("claude-sonnet-4", 3.0, 15.0),
    ("claude-3-7-sonnet", 3.0, 15.0),
    ("claude-3-5-sonnet", 3.0, 15.0),
    ("claude-haiku-4-5", 1.0, 5.0),
    ("claude-3-5-haiku", 0.8, 4.0),
    ("claude-3-haiku", 0.25, 1.25),
    ("gpt-4o-mini", 0.15, 0.6),
    ("gpt-4o", 2.5, 10.0),
    ("gpt-4.1-nano", 0.1, 0.4),
    ("gpt-4.1-mini", 0.4, 1.6),
    ("gpt-4.1", 2.0, 8.0),
];

/// Prices for the snapshots of one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    overrides: BTreeMap<String, Price>,
}

impl PriceTable {
    pub fn new(overrides: BTreeMap<String, Price>) -> Self {
        PriceTable { overrides }
    }

    /// The repository's price for this exact id, else the list price of its family.
    pub fn price(&self, snapshot: &Snapshot) -> Option<Price> {
        let id = snapshot.id();
        if let Some(p) = self.overrides.get(id) {
            return Some(*p);
        }
        LIST_PRICES
            .iter()
            .filter(|(prefix, _, _)| id.starts_with(prefix))
            .max_by_key(|(prefix, _, _)| prefix.len())
            .map(|&(_, input_per_mtok, output_per_mtok)| Price { input_per_mtok, output_per_mtok })
    }

    /// USD for one call, or `None` when the snapshot has no price.
    pub fn cost(&self, snapshot: &Snapshot, usage: Usage) -> Option<f64> {
        let p = self.price(snapshot)?;
        Some((usage.input_tokens as f64 * p.input_per_mtok + usage.output_tokens as f64 * p.output_per_mtok) / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{PinPolicy, Provider};

    fn snap(p: Provider, id: &str) -> Snapshot {
        PinPolicy::default().snapshot(p, id).expect("pinned id")
    }

    #[test]
    fn list_price_matches_the_longest_prefix() {
        let t = PriceTable::default();
        let mini = t.price(&snap(Provider::Openai, "gpt-4o-mini-2024-07-18")).expect("listed");
        assert_eq!(mini.input_per_mtok, 0.15);
        let full = t.price(&snap(Provider::Openai, "gpt-4o-2024-08-06")).expect("listed");
        assert_eq!(full.input_per_mtok, 2.5);
    }

    #[test]
    fn repository_prices_win_over_list_prices() {
        let mut o = BTreeMap::new();
        o.insert("gpt-4o-2024-08-06".to_owned(), Price { input_per_mtok: 1.0, output_per_mtok: 2.0 });
        let t = PriceTable::new(o);
        let cost = t.cost(
            &snap(Provider::Openai, "gpt-4o-2024-08-06"),
            Usage { input_tokens: 1_000_000, output_tokens: 500_000 },
        );
        assert_eq!(cost, Some(2.0));
    }

    #[test]
    fn unknown_model_has_no_price() {
        assert_eq!(PriceTable::default().price(&snap(Provider::Openai, "ft-refund-2024-01-01")), None);
    }
}
