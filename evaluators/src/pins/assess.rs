//! One pinned snapshot against its provider's model list: the newest snapshot worth proposing,
//! the lag, and the retirement.
//!
//! Choices (SPEC "Pin tracking"):
//! - Candidates are the listed models of the pin's [`family`] that are [`proposable`] (never an
//!   alias, a preview or an experiment), released strictly after the pin, and released at least
//!   `soak_days` ago. Release times come from the provider, never from the id; ties of release
//!   time are broken by id. When the pin is within [`URGENT_DAYS`] of its retirement (or past
//!   it) the soak is ignored: the newest candidate is proposed at once.
//! - Without release times (the server gives none that mean anything, or the pin is not in the
//!   list) nothing is proposed: newer cannot be told from older, nor the soak checked.
//! - `lag_days` is the whole days from the pin's release to the release of `newest`, the
//!   snapshot that would be proposed; 0 when there is none (the pin is the newest proposable,
//!   even if a newer one is still soaking); `None` ("unknown") when the pin's release time is
//!   unknown.
//! - `retires_in_days` is the whole days from now to the pin's `shutdown` (negative once past).
//! - The repository's own `aliases` (`.evalgate.yml`) are removed from the list by the caller,
//!   with [`without_aliases`].

use super::family::{family, proposable};
use super::models::ModelInfo;
use crate::snapshot::{PinPolicy, Provider};

/// A pin this close to retirement (in days), or past it, is proposed at once.
pub const URGENT_DAYS: i64 = 30;
const DAY: i64 = 86_400;

/// What is known of one pinned snapshot. Times are unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Assessment {
    pub pinned: String,
    /// The pin's family; `None` when it has none (an id pinned through `pinned_ids`, say).
    pub family: Option<String>,
    /// Whether the provider lists the pin at all (a pin that is not listed may be retired).
    pub listed: bool,
    /// The newest proposable snapshot of the same family, newer than the pin.
    pub newest: Option<String>,
    pub newest_created: Option<i64>,
    pub pinned_created: Option<i64>,
    /// `None` = unknown.
    pub lag_days: Option<i64>,
    pub retires_in_days: Option<i64>,
    /// The pin's retirement (`shutdown_date`), unix seconds.
    pub retires_at: Option<i64>,
    /// Within [`URGENT_DAYS`] of retirement, or past it.
    pub urgent: bool,
}

/// Assesses `pinned` against `models` (one provider's list) at `now_secs`.
pub fn assess(provider: Provider, pinned: &str, models: &[ModelInfo], now_secs: i64, soak_days: u32) -> Assessment {
    let fam = family(provider, pinned);
    let me = models.iter().find(|m| m.id == pinned);
    let pinned_created = me.and_then(|m| m.created);
    let shutdown = me.and_then(|m| m.shutdown);
    let retires_in_days = shutdown.map(|s| s.saturating_sub(now_secs).div_euclid(DAY));
    let urgent = shutdown.is_some_and(|s| s.saturating_sub(now_secs) <= URGENT_DAYS * DAY);
    let soak = i64::from(soak_days) * DAY;
    let newest = match (&fam, pinned_created) {
        (Some(fam), Some(since)) => models
            .iter()
            .filter(|m| m.id != pinned && proposable(provider, &m.id))
            .filter(|m| family(provider, &m.id).as_ref() == Some(fam))
            .filter_map(|m| m.created.map(|c| (c, m)))
            .filter(|(c, _)| *c > since && (urgent || now_secs.saturating_sub(*c) >= soak))
            .max_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.id.cmp(&y.id))),
        _ => None,
    };
    let lag_days = pinned_created.map(|p| newest.map_or(0, |(c, _)| c.saturating_sub(p).div_euclid(DAY)));
    Assessment {
        pinned: pinned.to_owned(),
        family: fam,
        listed: me.is_some(),
        newest: newest.map(|(_, m)| m.id.clone()),
        newest_created: newest.map(|(c, _)| c),
        pinned_created,
        lag_days,
        retires_in_days,
        retires_at: shutdown,
        urgent,
    }
}

/// `models` without the ids the repository declares moving aliases of `provider`.
pub fn without_aliases(provider: Provider, models: &[ModelInfo], policy: &PinPolicy) -> Vec<ModelInfo> {
    let aliases = policy.aliases.get(&provider);
    models.iter().filter(|m| !aliases.is_some_and(|a| a.contains(&m.id))).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Provider = Provider::Anthropic;
    const O: Provider = Provider::Openai;
    const NOW: i64 = 1_800_000_000;

    fn m(id: &str, days_ago: i64) -> ModelInfo {
        ModelInfo { id: id.into(), created: Some(NOW - days_ago * DAY), shutdown: None }
    }

    fn retiring(mut model: ModelInfo, in_days: i64) -> ModelInfo {
        model.shutdown = Some(NOW + in_days * DAY);
        model
    }

    #[test]
    fn the_lag_runs_from_the_pin_to_the_newest_release_of_its_family() {
        let models = [
            m("claude-sonnet-4-5-20250929", 100),
            m("claude-sonnet-4-5-20251201", 60),
            m("claude-sonnet-4-5-20260101", 40),
            m("claude-opus-4-5-20260201", 10),
            m("claude-sonnet-4-5-latest", 1),
        ];
        let a = assess(A, "claude-sonnet-4-5-20250929", &models, NOW, 7);
        assert_eq!(a.newest.as_deref(), Some("claude-sonnet-4-5-20260101"));
        assert_eq!(a.lag_days, Some(60));
        assert_eq!((a.pinned_created, a.newest_created), (Some(NOW - 100 * DAY), Some(NOW - 40 * DAY)));
        assert!(a.listed && !a.urgent);
        assert_eq!(a.family.as_deref(), Some("claude-sonnet-4-5-<date>"));

        let newest = assess(A, "claude-sonnet-4-5-20260101", &models, NOW, 7);
        assert_eq!((newest.newest, newest.lag_days), (None, Some(0)));
    }

    #[test]
    fn lag_is_in_whole_days_of_release_time_not_of_the_id() {
        // The id says a later date than the release; the release time counts.
        let mut later = m("gpt-4o-2024-11-20", 0);
        later.created = Some(NOW - 10 * DAY - 3600);
        let models = [m("gpt-4o-2024-08-06", 20), later, m("gpt-4o", 0)];
        let a = assess(O, "gpt-4o-2024-08-06", &models, NOW, 7);
        assert_eq!(a.newest.as_deref(), Some("gpt-4o-2024-11-20"));
        assert_eq!(a.lag_days, Some(9), "9 days and 23 hours");
    }

    #[test]
    fn snapshots_still_soaking_are_not_proposed() {
        let models = [m("gpt-4o-2024-08-06", 100), m("gpt-4o-2024-11-20", 30), m("gpt-4o-2025-03-01", 6)];
        let a = assess(O, "gpt-4o-2024-08-06", &models, NOW, 7);
        assert_eq!(a.newest.as_deref(), Some("gpt-4o-2024-11-20"));
        assert_eq!(a.lag_days, Some(70));
        let none = assess(O, "gpt-4o-2024-08-06", &models, NOW, 60);
        assert_eq!((none.newest, none.lag_days), (None, Some(0)));
        let all = assess(O, "gpt-4o-2024-08-06", &models, NOW, 0);
        assert_eq!(all.newest.as_deref(), Some("gpt-4o-2025-03-01"));
        let exactly = assess(O, "gpt-4o-2024-08-06", &models, NOW, 6);
        assert_eq!(exactly.newest.as_deref(), Some("gpt-4o-2025-03-01"), "6 days old passes a 6-day soak");
    }

    #[test]
    fn previews_experiments_and_aliases_are_skipped() {
        let models = [
            m("gpt-4-0613", 300),
            m("gpt-4-2024-01-01", 200),
            m("gpt-4-2025-01-01-preview", 100),
            m("gpt-4-exp-2025-02-01", 50),
            m("gpt-4", 20),
        ];
        let a = assess(O, "gpt-4-0613", &models, NOW, 7);
        assert_eq!(a.newest.as_deref(), Some("gpt-4-2024-01-01"));
        let preview = [m("gpt-4-1106-preview", 300), m("gpt-4-0125-preview", 100)];
        assert_eq!(assess(O, "gpt-4-1106-preview", &preview, NOW, 7).newest, None);
    }

    #[test]
    fn undated_anthropic_ids_from_4_6_on_have_no_successor_in_another_family() {
        let models = [m("claude-opus-4-6", 100), m("claude-opus-4-7", 30), m("claude-opus-4-6-20260601", 20)];
        let a = assess(A, "claude-opus-4-6", &models, NOW, 7);
        assert_eq!((a.newest, a.lag_days), (None, Some(0)));
    }

    #[test]
    fn a_pin_close_to_retirement_is_proposed_at_once_ignoring_the_soak() {
        let models = [retiring(m("gpt-4-0613", 400), 20), m("gpt-4-2025-01-01", 2)];
        let a = assess(O, "gpt-4-0613", &models, NOW, 7);
        assert!(a.urgent);
        assert_eq!((a.retires_in_days, a.retires_at), (Some(20), Some(NOW + 20 * DAY)));
        assert_eq!(a.newest.as_deref(), Some("gpt-4-2025-01-01"));
        assert_eq!(a.lag_days, Some(398));

        let far = [retiring(m("gpt-4-0613", 400), 31), m("gpt-4-2025-01-01", 2)];
        let a = assess(O, "gpt-4-0613", &far, NOW, 7);
        assert!(!a.urgent);
        assert_eq!((a.newest, a.retires_in_days), (None, Some(31)));

        let past = [retiring(m("gpt-4-0613", 400), -3)];
        let a = assess(O, "gpt-4-0613", &past, NOW, 7);
        assert!(a.urgent);
        assert_eq!(a.retires_in_days, Some(-3));
    }

    #[test]
    fn unknown_release_times_give_an_unknown_lag_and_no_proposal() {
        let unknown = |id: &str| ModelInfo { id: id.into(), created: None, shutdown: None };
        let models = [unknown("gpt-4o-2024-08-06"), unknown("gpt-4o-2024-11-20")];
        let a = assess(O, "gpt-4o-2024-08-06", &models, NOW, 7);
        assert_eq!((a.newest, a.lag_days, a.listed), (None, None, true));

        let not_listed = assess(O, "gpt-4o-2024-05-13", &[m("gpt-4o-2024-08-06", 90)], NOW, 7);
        assert_eq!((not_listed.newest, not_listed.lag_days, not_listed.listed), (None, None, false));
    }

    #[test]
    fn equal_release_times_are_not_newer_and_ties_among_candidates_go_by_id() {
        let models =
            [m("gpt-4o-2024-08-06", 50), m("gpt-4o-2024-08-07", 50), m("gpt-4o-0901", 20), m("gpt-4o-0902", 20)];
        let a = assess(O, "gpt-4o-2024-08-06", &models, NOW, 7);
        assert_eq!(a.newest.as_deref(), Some("gpt-4o-0902"));
        let tie = assess(O, "gpt-4o-2024-08-06", &models[..2], NOW, 7);
        assert_eq!(tie.newest, None);
    }

    #[test]
    fn repository_aliases_are_taken_out_of_the_list() {
        let mut policy = PinPolicy::default();
        policy.aliases.insert(O, vec!["gpt-4o-2024-11-20".into()]);
        let models = [m("gpt-4o-2024-08-06", 100), m("gpt-4o-2024-11-20", 30)];
        let kept = without_aliases(O, &models, &policy);
        assert_eq!(kept.len(), 1);
        assert_eq!(assess(O, "gpt-4o-2024-08-06", &kept, NOW, 7).newest, None);
        assert_eq!(without_aliases(A, &models, &policy).len(), 2);
    }
}
