//! What a PR changes in a golden set and in a bundle's `gate:` block.
//!
//! The gate and the pin are taken from the base branch, so a PR cannot weaken its own gate; a PR
//! that edits either gets the `evalgate/golden-set` check, which lists every difference for a
//! reviewer to approve. The lists are sorted so the message is the same on every run.

use crate::bundle::GateConfig;
use crate::gate::Key;
use crate::golden::{Case, GoldenSet};
use crate::ids::CaseId;
use std::collections::{BTreeMap, BTreeSet};

/// Case ids by what happened to them, each list sorted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GoldenDiff {
    pub added: Vec<CaseId>,
    pub removed: Vec<CaseId>,
    pub changed: Vec<CaseId>,
}

impl GoldenDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Cases only in `head` are added, only in `base` removed, and in both but different changed.
pub fn diff_cases(base: &GoldenSet, head: &GoldenSet) -> GoldenDiff {
    let (base, head) = (by_id(base), by_id(head));
    let mut diff = GoldenDiff::default();
    for (&id, h) in &head {
        match base.get(id) {
            None => diff.added.push(id.clone()),
            Some(b) if !same_case(b, h) => diff.changed.push(id.clone()),
            Some(_) => {}
        }
    }
    diff.removed = base.keys().filter(|id| !head.contains_key(*id)).map(|&id| id.clone()).collect();
    diff
}

/// Ids are unique within a loaded set, so the map loses nothing; it sorts by id.
fn by_id(set: &GoldenSet) -> BTreeMap<&CaseId, &Case> {
    set.cases.iter().map(|c| (&c.id, c)).collect()
}

/// Whether two cases are the same test: everything but the line they sit on, which moves when
/// a case above is added or removed. Destructured so a new field of [`Case`] cannot be missed.
fn same_case(a: &Case, b: &Case) -> bool {
    let Case { id, line: _, messages, tool_results, checks, label, tags, source } = a;
    *id == b.id
        && *messages == b.messages
        && *tool_results == b.tool_results
        && *checks == b.checks
        && *label == b.label
        && *tags == b.tags
        && *source == b.source
}

/// One gate key whose value differs; `None` where the side does not set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateChange {
    pub key: &'static str,
    pub base: Option<String>,
    pub head: Option<String>,
}

/// Every gate key set differently on the two sides (added, removed or changed), in the order of
/// the gate vocabulary with `critical_tags` last.
pub fn diff_gate(base: &GateConfig, head: &GateConfig) -> Vec<GateChange> {
    let mut out: Vec<GateChange> = Key::ALL
        .into_iter()
        .filter_map(|k| {
            let (b, h) = (value_of(base, k), value_of(head, k));
            (b != h).then(|| GateChange { key: k.as_str(), base: b.map(fmt_number), head: h.map(fmt_number) })
        })
        .collect();
    // Tags are a set: reordering them changes nothing the gate does.
    if tag_set(base) != tag_set(head) {
        out.push(GateChange {
            key: "critical_tags",
            base: Some(fmt_tags(&base.critical_tags)),
            head: Some(fmt_tags(&head.critical_tags)),
        });
    }
    out
}

/// A threshold as the bundle holds it. Exhaustive, so a new [`Key`] must say where it lives.
fn value_of(g: &GateConfig, key: Key) -> Option<f64> {
    match key {
        Key::MaxRegressionRate => g.max_regression_rate,
        Key::MinPassRate => g.min_pass_rate,
        Key::MinFixRate => g.min_fix_rate,
        Key::MaxCostIncrease => g.max_cost_increase,
        Key::MaxP95LatencyIncreaseMs => g.max_p95_latency_increase_ms.map(|v| v as f64),
    }
}

/// As it would be written in `bundle.yaml` (`0.95`, `500`).
fn fmt_number(v: f64) -> String {
    format!("{v}")
}

fn tag_set(g: &GateConfig) -> BTreeSet<&str> {
    g.critical_tags.iter().map(String::as_str).collect()
}

fn fmt_tags(tags: &[String]) -> String {
    format!("[{}]", tags.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden::{Check, Message, Role};
    use crate::ids::Sha256;
    use crate::repo::RepoPath;

    fn case(id: &str, contains: &str) -> Case {
        Case {
            id: CaseId::parse(id).expect("valid id"),
            line: 1,
            messages: vec![Message { role: Role::User, content: "refund please".into() }],
            tool_results: BTreeMap::new(),
            checks: vec![Check::Contains { value: contains.into() }],
            label: None,
            tags: Vec::new(),
            source: None,
        }
    }

    fn set(cases: Vec<Case>) -> GoldenSet {
        GoldenSet {
            dir: RepoPath::root(),
            name: "refund".into(),
            version: "1".into(),
            description: None,
            cases,
            pin: Sha256::digest(b""),
        }
    }

    fn ids(names: &[&str]) -> Vec<CaseId> {
        names.iter().map(|n| CaseId::parse(n).expect("valid id")).collect()
    }

    #[test]
    fn identical_sets_have_no_diff() {
        let s = set(vec![case("a", "x"), case("b", "y")]);
        assert!(diff_cases(&s, &s.clone()).is_empty());
    }

    #[test]
    fn added_removed_and_changed_cases_are_listed_sorted() {
        let base = set(vec![case("z-keep", "x"), case("m-gone", "x"), case("c-edit", "x"), case("a-gone", "x")]);
        let head = set(vec![case("y-new", "x"), case("c-edit", "y"), case("z-keep", "x"), case("b-new", "x")]);
        let d = diff_cases(&base, &head);
        assert_eq!(d.added, ids(&["b-new", "y-new"]));
        assert_eq!(d.removed, ids(&["a-gone", "m-gone"]));
        assert_eq!(d.changed, ids(&["c-edit"]));
    }

    #[test]
    fn a_changed_check_value_counts_as_changed() {
        let d = diff_cases(&set(vec![case("a", "refund")]), &set(vec![case("a", "refunded")]));
        assert_eq!(d, GoldenDiff { changed: ids(&["a"]), ..GoldenDiff::default() });
    }

    #[test]
    fn a_changed_tag_counts_as_changed() {
        let tagged = Case { tags: vec!["critical".into()], ..case("a", "x") };
        assert_eq!(diff_cases(&set(vec![case("a", "x")]), &set(vec![tagged])).changed, ids(&["a"]));
    }

    #[test]
    fn a_changed_fixture_of_the_list_form_or_source_counts_as_changed() {
        use crate::golden::{CallStatus, Fixture, FixtureEntry};
        use crate::ids::ToolName;
        let listed = |result: i64, status| {
            let mut c = case("a", "x");
            let args = serde_json::json!({"order_id": "A1"}).as_object().unwrap().clone();
            let entry = FixtureEntry { args, result: result.into(), status };
            c.tool_results.insert(ToolName::parse("lookup").unwrap(), Fixture::ByArgs(vec![entry]));
            c
        };
        let base = set(vec![listed(1, CallStatus::Ok)]);
        assert!(diff_cases(&base, &set(vec![listed(1, CallStatus::Ok)])).is_empty());
        assert_eq!(diff_cases(&base, &set(vec![listed(2, CallStatus::Ok)])).changed, ids(&["a"]));
        assert_eq!(diff_cases(&base, &set(vec![listed(1, CallStatus::Error)])).changed, ids(&["a"]));
        let sourced = Case {
            source: serde_json::json!({"conversation": "c-1"}).as_object().cloned(),
            ..listed(1, CallStatus::Ok)
        };
        assert_eq!(diff_cases(&base, &set(vec![sourced])).changed, ids(&["a"]));
    }

    #[test]
    fn a_case_that_only_moved_lines_is_unchanged() {
        let moved = Case { line: 7, ..case("a", "x") };
        assert!(diff_cases(&set(vec![case("a", "x")]), &set(vec![moved])).is_empty());
    }

    #[test]
    fn identical_gates_have_no_changes() {
        assert!(diff_gate(&GateConfig::default(), &GateConfig::default()).is_empty());
    }

    #[test]
    fn a_gate_key_added_removed_or_changed_is_listed() {
        let base = GateConfig { max_regression_rate: Some(0.0), min_pass_rate: Some(0.95), ..GateConfig::default() };
        let head =
            GateConfig { min_pass_rate: Some(0.9), max_p95_latency_increase_ms: Some(500), ..GateConfig::default() };
        let change = |key, base: Option<&str>, head: Option<&str>| GateChange {
            key,
            base: base.map(str::to_owned),
            head: head.map(str::to_owned),
        };
        assert_eq!(
            diff_gate(&base, &head),
            [
                change("max_regression_rate", Some("0"), None),
                change("min_pass_rate", Some("0.95"), Some("0.9")),
                change("max_p95_latency_increase_ms", None, Some("500")),
            ]
        );
    }

    #[test]
    fn changed_critical_tags_are_listed() {
        let head = GateConfig { critical_tags: vec!["critical".into(), "payments".into()], ..GateConfig::default() };
        let d = diff_gate(&GateConfig::default(), &head);
        assert_eq!(
            d,
            [GateChange {
                key: "critical_tags",
                base: Some("[critical]".into()),
                head: Some("[critical, payments]".into())
            }]
        );
    }

    #[test]
    fn reordered_critical_tags_are_unchanged() {
        let base = GateConfig { critical_tags: vec!["a".into(), "b".into()], ..GateConfig::default() };
        let head = GateConfig { critical_tags: vec!["b".into(), "a".into()], ..GateConfig::default() };
        assert!(diff_gate(&base, &head).is_empty());
    }
}
