//! Families of snapshots: which ids are the same model at different dates.
//!
//! The rule, per provider:
//! - Anthropic: a dated id (`claude-sonnet-4-5-20250929`, `claude-3-5-sonnet-20241022`) belongs
//!   to the family of the same id without its `-YYYYMMDD` suffix, written with a `<date>`
//!   placeholder (`claude-sonnet-4-5-<date>`). An undated id of generation 4.6 or later
//!   (`claude-opus-4-6`) is fixed by itself and is its own family, `claude-opus-4-6`: it is
//!   never the same family as another undated id (`claude-opus-4-7`) nor as the dated ids that
//!   share its prefix (`claude-opus-4-6-20260301`), since the placeholder keeps those apart.
//! - OpenAI: the id with its date segment (`-YYYY-MM-DD` or `-MMDD`, wherever it stands after
//!   the name) replaced by `<date>`: `gpt-4o-2024-08-06` → `gpt-4o-<date>`, `gpt-4-0613` and a
//!   later `gpt-4-2025-01-31` → `gpt-4-<date>`, `gpt-4-1106-preview` → `gpt-4-<date>-preview`.
//! - Aliases have no family: ids ending in `-latest`, undated OpenAI names (`gpt-4o`), undated
//!   Anthropic ids up to 4.5 (`claude-sonnet-4-5`), and anything else not fixed by SPEC's rule
//!   (fine-tuned or self-hosted names). They are never tracked and never proposed.
//!
//! A snapshot marked preview or experimental still has a family (so a pin of one can be
//! assessed) but is never proposed: see [`proposable`].

use crate::snapshot::{PinPolicy, Provider};

/// Written where the date was, so a family name can never be a real id.
pub const DATE_PLACEHOLDER: &str = "<date>";

/// The family of `id`, or `None` for an alias (or any id that names no fixed snapshot).
pub fn family(provider: Provider, id: &str) -> Option<String> {
    if id.is_empty() || id.ends_with("-latest") {
        return None;
    }
    match provider {
        Provider::Anthropic => anthropic_family(id),
        Provider::Openai => openai_family(id),
    }
}

/// Whether `id` may be proposed as a new pin: it has a family, SPEC's pinning rule accepts it,
/// and it is not marked preview or experimental (`preview`, `experimental`, `exp-`, `-exp`
/// anywhere in the id, in any letter case).
pub fn proposable(provider: Provider, id: &str) -> bool {
    family(provider, id).is_some() && !is_preview(id) && PinPolicy::default().snapshot(provider, id).is_ok()
}

/// Marked preview or experimental.
pub fn is_preview(id: &str) -> bool {
    let id = id.to_ascii_lowercase();
    ["preview", "experimental", "exp-", "-exp"].iter().any(|m| id.contains(m))
}

fn anthropic_family(id: &str) -> Option<String> {
    if let Some((prefix, last)) = id.rsplit_once('-') {
        if !prefix.is_empty() && is_yyyymmdd(last) {
            return Some(format!("{prefix}-{DATE_PLACEHOLDER}"));
        }
    }
    // Undated: fixed only from 4.6 on, and then its own family.
    PinPolicy::default().snapshot(Provider::Anthropic, id).is_ok().then(|| id.to_owned())
}

fn openai_family(id: &str) -> Option<String> {
    let parts: Vec<&str> = id.split('-').collect();
    for i in 1..parts.len() {
        let p = parts[i];
        let ymd = is_digits(p, 4)
            && i + 2 < parts.len()
            && is_digits(parts[i + 1], 2)
            && is_digits(parts[i + 2], 2)
            && valid_month_day(parts[i + 1], parts[i + 2]);
        let mmdd = is_digits(p, 4) && valid_month_day(&p[..2], &p[2..]);
        let len = if ymd {
            3
        } else if mmdd {
            1
        } else {
            continue;
        };
        let mut out: Vec<&str> = parts[..i].to_vec();
        out.push(DATE_PLACEHOLDER);
        out.extend_from_slice(&parts[i + len..]);
        return Some(out.join("-"));
    }
    None
}

fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn valid_month_day(mm: &str, dd: &str) -> bool {
    matches!(mm.parse::<u32>(), Ok(1..=12)) && matches!(dd.parse::<u32>(), Ok(1..=31))
}

fn is_yyyymmdd(s: &str) -> bool {
    is_digits(s, 8) && valid_month_day(&s[4..6], &s[6..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Provider = Provider::Anthropic;
    const O: Provider = Provider::Openai;

    fn fam(p: Provider, id: &str) -> Option<String> {
        family(p, id)
    }

    #[test]
    fn anthropic_dated_ids_share_the_family_of_their_prefix() {
        assert_eq!(fam(A, "claude-sonnet-4-5-20250929").as_deref(), Some("claude-sonnet-4-5-<date>"));
        assert_eq!(fam(A, "claude-sonnet-4-5-20251201"), fam(A, "claude-sonnet-4-5-20250929"));
        assert_eq!(fam(A, "claude-3-5-sonnet-20241022").as_deref(), Some("claude-3-5-sonnet-<date>"));
        assert_ne!(fam(A, "claude-3-5-sonnet-20241022"), fam(A, "claude-3-5-haiku-20241022"));
        assert_ne!(fam(A, "claude-sonnet-4-5-20250929"), fam(A, "claude-opus-4-5-20250929"));
        assert_eq!(fam(A, "claude-sonnet-4-5-20251399"), None, "month 13 is no date, and 4.5 needs one");
    }

    #[test]
    fn anthropic_undated_ids_from_4_6_on_are_their_own_family() {
        assert_eq!(fam(A, "claude-opus-4-6").as_deref(), Some("claude-opus-4-6"));
        assert_eq!(fam(A, "claude-opus-4-7").as_deref(), Some("claude-opus-4-7"));
        assert_ne!(fam(A, "claude-opus-4-6"), fam(A, "claude-opus-4-7"));
        assert_ne!(fam(A, "claude-opus-4-7"), fam(A, "claude-opus-4-7-20260108"));
        assert_eq!(fam(A, "claude-opus-5").as_deref(), Some("claude-opus-5"));
    }

    #[test]
    fn anthropic_aliases_have_no_family() {
        for id in ["claude-sonnet-4-5", "claude-3-5-sonnet-latest", "claude-opus-4-1", "claude-opus-4", "", "claude"] {
            assert_eq!(fam(A, id), None, "{id}");
            assert!(!proposable(A, id), "{id}");
        }
    }

    #[test]
    fn openai_families_replace_the_date_wherever_it_stands() {
        assert_eq!(fam(O, "gpt-4o-2024-08-06").as_deref(), Some("gpt-4o-<date>"));
        assert_eq!(fam(O, "gpt-4o-2024-11-20"), fam(O, "gpt-4o-2024-08-06"));
        assert_eq!(fam(O, "gpt-4-0613").as_deref(), Some("gpt-4-<date>"));
        assert_eq!(fam(O, "gpt-4-2025-01-31"), fam(O, "gpt-4-0613"), "both date forms are one family");
        assert_eq!(fam(O, "gpt-3.5-turbo-0125"), fam(O, "gpt-3.5-turbo-1106"));
        assert_eq!(fam(O, "gpt-4-1106-preview").as_deref(), Some("gpt-4-<date>-preview"));
        assert_eq!(fam(O, "gpt-4o-realtime-preview-2024-12-17").as_deref(), Some("gpt-4o-realtime-preview-<date>"));
        assert_ne!(fam(O, "gpt-4o-mini-2024-07-18"), fam(O, "gpt-4o-2024-08-06"));
    }

    #[test]
    fn openai_aliases_have_no_family() {
        for id in ["gpt-4o", "gpt-4o-mini", "chatgpt-4o-latest", "gpt-4-1399", "ft:gpt-4o-2024-08-06:org::abc", "o1"] {
            assert_eq!(fam(O, id), None, "{id}");
            assert!(!proposable(O, id), "{id}");
        }
    }

    #[test]
    fn previews_and_experiments_are_never_proposed() {
        assert!(fam(O, "gpt-4-1106-preview").is_some());
        for id in ["gpt-4-1106-preview", "gpt-4o-realtime-preview-2024-12-17", "gpt-5-exp-2025-01-01"] {
            assert!(!proposable(O, id), "{id}");
        }
        assert!(!proposable(A, "claude-experimental-20250101"));
        assert!(!proposable(A, "claude-sonnet-4-5-exp-20250929"));
        assert!(proposable(A, "claude-sonnet-4-5-20250929"));
        assert!(proposable(A, "claude-opus-4-6"));
        assert!(proposable(O, "gpt-4o-2024-08-06"));
        assert!(proposable(O, "gpt-4-0613"));
    }
}
