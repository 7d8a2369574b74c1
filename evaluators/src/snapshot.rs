//! Model providers and pinned snapshots.
//!
//! A [`Snapshot`] can only be built through [`PinPolicy::snapshot`], which applies SPEC's rule:
//! an id ending in `-latest` is an alias; an OpenAI id is pinned only with a date
//! (`-YYYY-MM-DD` or `-MMDD`); an Anthropic id carries a date up to the 4.5 generation
//! (`claude-sonnet-4-5-20250929`) and none from 4.6 on (`claude-opus-4-6` is itself fixed);
//! `.evalgate.yml` may declare more pinned ids or aliases. So a `Snapshot` is always pinned.

use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Anthropic,
    /// OpenAI, or any server speaking OpenAI's Chat Completions.
    Openai,
}

impl Provider {
    pub const NAMES: [&'static str; 2] = ["anthropic", "openai"];

    pub fn parse(s: &str) -> Option<Provider> {
        match s {
            "anthropic" => Some(Provider::Anthropic),
            "openai" => Some(Provider::Openai),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Anthropic => "anthropic",
            Provider::Openai => "openai",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A model id that names one fixed model, never a moving alias.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Snapshot {
    provider: Provider,
    id: String,
}

impl Snapshot {
    pub fn provider(&self) -> Provider {
        self.provider
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.id)
    }
}

/// The repository's additions to the pinning rule (`pinned_ids`, `aliases` in `.evalgate.yml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinPolicy {
    pub pinned_ids: BTreeMap<Provider, Vec<String>>,
    pub aliases: BTreeMap<Provider, Vec<String>>,
}

impl PinPolicy {
    /// The snapshot, or why `id` is not pinned.
    pub fn snapshot(&self, provider: Provider, id: &str) -> Result<Snapshot, String> {
        let listed = |m: &BTreeMap<Provider, Vec<String>>| m.get(&provider).is_some_and(|v| v.iter().any(|x| x == id));
        if id.is_empty() || id.len() > 256 || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("`{id}` is not a model id"));
        }
        if listed(&self.aliases) {
            return Err(format!("`{id}` is declared a moving alias in .evalgate.yml; pin a snapshot"));
        }
        if listed(&self.pinned_ids) {
            return Ok(Snapshot { provider, id: id.to_owned() });
        }
        if id.ends_with("-latest") {
            return Err(format!("`{id}` is a moving alias (`-latest`); pin a dated snapshot"));
        }
        let pinned = match provider {
            Provider::Openai => openai_has_date(id),
            Provider::Anthropic => anthropic_is_fixed(id),
        };
        if pinned {
            Ok(Snapshot { provider, id: id.to_owned() })
        } else {
            let hint = match provider {
                Provider::Openai => {
                    "an OpenAI id is pinned only with a date (`-YYYY-MM-DD` or `-MMDD`), e.g. `gpt-4o-2024-08-06`"
                }
                Provider::Anthropic => {
                    "Anthropic ids up to 4.5 need their date (`claude-sonnet-4-5-20250929`); from 4.6 on the bare id is fixed (`claude-opus-4-6`)"
                }
            };
            Err(format!("`{id}` is not a pinned snapshot: {hint}; or list it under `pinned_ids` in .evalgate.yml"))
        }
    }
}

fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn valid_month_day(mm: &str, dd: &str) -> bool {
    matches!(mm.parse::<u32>(), Ok(1..=12)) && matches!(dd.parse::<u32>(), Ok(1..=31))
}

/// A `-YYYY-MM-DD` or `-MMDD` date after the model's name (`gpt-4o-2024-08-06`, `gpt-4-0613`,
/// `gpt-4-1106-preview`).
fn openai_has_date(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    (1..parts.len()).any(|i| {
        let p = parts[i];
        let mmdd = is_digits(p, 4) && valid_month_day(&p[..2], &p[2..]);
        let ymd = is_digits(p, 4)
            && i + 2 < parts.len()
            && is_digits(parts[i + 1], 2)
            && is_digits(parts[i + 2], 2)
            && valid_month_day(parts[i + 1], parts[i + 2]);
        mmdd || ymd
    })
}

/// Dated (`…-YYYYMMDD`), or of generation 4.6 or later without a date.
fn anthropic_is_fixed(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    if let Some(last) = parts.last() {
        if is_digits(last, 8) && valid_month_day(&last[4..6], &last[6..]) && parts.len() > 1 {
            return true;
        }
    }
    // claude-<family>-<major>-<minor>, generation 4.6 and later.
    match parts.as_slice() {
        ["claude", family, major, minor] if matches!(*family, "opus" | "sonnet" | "haiku") => {
            match (major.parse::<u32>(), minor.parse::<u32>()) {
                (Ok(ma), Ok(mi)) => minor.len() <= 2 && (ma > 4 || (ma == 4 && mi >= 6)),
                _ => false,
            }
        }
        // claude-<family>-<major> for a major generation after 4 (`claude-opus-5`).
        ["claude", family, major] if matches!(*family, "opus" | "sonnet" | "haiku") => {
            major.parse::<u32>().is_ok_and(|ma| ma > 4)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned(p: Provider, id: &str) -> bool {
        PinPolicy::default().snapshot(p, id).is_ok()
    }

    #[test]
    fn anthropic_ids_up_to_4_5_need_a_date() {
        assert!(pinned(Provider::Anthropic, "claude-sonnet-4-5-20250929"));
        assert!(pinned(Provider::Anthropic, "claude-3-5-sonnet-20241022"));
        assert!(pinned(Provider::Anthropic, "claude-opus-4-7-20260108"));
        assert!(!pinned(Provider::Anthropic, "claude-sonnet-4-5"));
        assert!(!pinned(Provider::Anthropic, "claude-opus-4-1"));
        assert!(!pinned(Provider::Anthropic, "claude-sonnet-4-0"));
        assert!(!pinned(Provider::Anthropic, "claude-3-5-sonnet-latest"));
    }

    #[test]
    fn anthropic_ids_from_4_6_on_are_fixed_without_a_date() {
        assert!(pinned(Provider::Anthropic, "claude-opus-4-6"));
        assert!(pinned(Provider::Anthropic, "claude-sonnet-4-7"));
        assert!(pinned(Provider::Anthropic, "claude-opus-5"));
        assert!(!pinned(Provider::Anthropic, "claude-opus-4"));
    }

    #[test]
    fn openai_ids_need_a_date() {
        assert!(pinned(Provider::Openai, "gpt-4o-2024-08-06"));
        assert!(pinned(Provider::Openai, "gpt-4-0613"));
        assert!(pinned(Provider::Openai, "gpt-4-1106-preview"));
        assert!(!pinned(Provider::Openai, "gpt-4o"));
        assert!(!pinned(Provider::Openai, "gpt-4o-mini"));
        assert!(!pinned(Provider::Openai, "chatgpt-4o-latest"));
        assert!(!pinned(Provider::Openai, "gpt-4-1399"), "month 13 is no date");
    }

    #[test]
    fn repository_lists_override_the_rule() {
        let mut policy = PinPolicy::default();
        policy.pinned_ids.insert(Provider::Openai, vec!["ft-refund-7".into()]);
        policy.aliases.insert(Provider::Anthropic, vec!["claude-opus-4-6".into()]);
        assert!(policy.snapshot(Provider::Openai, "ft-refund-7").is_ok());
        assert!(policy.snapshot(Provider::Anthropic, "claude-opus-4-6").unwrap_err().contains("alias"));
    }
}
