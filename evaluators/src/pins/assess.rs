//! One pinned snapshot against a provider's model list.
use super::models::ModelInfo;
use crate::snapshot::{PinPolicy, Provider};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Assessment {
    pub pinned: String,
    pub family: Option<String>,
    pub listed: bool,
    pub newest: Option<String>,
    pub newest_created: Option<i64>,
    pub pinned_created: Option<i64>,
    pub lag_days: Option<i64>,
    pub retires_in_days: Option<i64>,
    pub urgent: bool,
}

pub fn assess(provider: Provider, pinned: &str, models: &[ModelInfo], now_secs: i64, soak_days: u32) -> Assessment {
    let _ = (provider, models, now_secs, soak_days);
    Assessment {
        pinned: pinned.to_owned(),
        family: None,
        listed: false,
        newest: None,
        newest_created: None,
        pinned_created: None,
        lag_days: None,
        retires_in_days: None,
        urgent: false,
    }
}

pub fn without_aliases(provider: Provider, models: &[ModelInfo], policy: &PinPolicy) -> Vec<ModelInfo> {
    let aliases = policy.aliases.get(&provider);
    models.iter().filter(|m| !aliases.is_some_and(|a| a.contains(&m.id))).cloned().collect()
}
