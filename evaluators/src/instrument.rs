//! The instrument: what measures a change — the golden set and its pin, the `gate:` block,
//! `eval.samples`, `eval.budget` and the judge (provider, snapshot, params, rubric text,
//! samples). It is always the **base** branch's (SPEC, "The instrument comes from base"), so a
//! pull request cannot make its own rubric lenient, switch to a weaker judge, or raise the
//! samples until its failures turn "flaky".
//!
//! [`measured`] builds the bundle that is actually run for a side: its agent (prompt, model,
//! params, tools, runner) with the instrument's `eval`. [`changes`] lists every difference of
//! the instrument between the two sides for the `evalgate/golden-set` check, cases by content,
//! and [`fingerprint`] is what an approval of that list covers.

use crate::bundle::{Bundle, EvalSpec, JudgeSpec};
use crate::canonical::key_of;
use crate::engine::judge::params_json;
use crate::golden::{Case, GoldenSet};
use crate::golden_diff;
use crate::ids::Sha256;
use crate::workspace::LoadedBundle;
use serde_json::{Value, json};

/// The bundle run for one side: `agent`'s behaviour measured with `instrument`'s `eval`. The
/// hash, name, version and manifest stay the agent's: they say what was measured.
pub fn measured(agent: &Bundle, instrument: &Bundle) -> Bundle {
    Bundle { eval: instrument.eval.clone(), ..agent.clone() }
}

/// `measured`, but graded by another judge: the head's judge on the head's transcripts (the
/// transcripts are the same, since the judge is not part of what decides them).
pub fn regraded(measured: &Bundle, judge: Option<&JudgeSpec>) -> Bundle {
    let mut b = measured.clone();
    b.eval.judge = judge.cloned();
    b
}

/// Whether the two sides' judges differ in anything that decides a verdict.
pub fn judge_changed(base: &EvalSpec, head: &EvalSpec) -> bool {
    judge_json(base.judge.as_ref()) != judge_json(head.judge.as_ref())
}

/// The canonical instrument of one side, as JSON: everything that measures, pins included.
pub fn canonical(b: &LoadedBundle) -> Value {
    let e = &b.bundle.eval;
    let g = &b.golden;
    json!({
        "golden_set": { "path": e.golden_set.as_str(), "pin": e.golden_set_sha256.to_string(),
            "name": g.name, "version": g.version, "description": g.description },
        "samples": e.samples,
        "budget": { "max_usd": e.budget.max_usd, "max_tokens": e.budget.max_tokens },
        "gate": {
            "max_regression_rate": e.gate.max_regression_rate,
            "min_pass_rate": e.gate.min_pass_rate,
            "min_fix_rate": e.gate.min_fix_rate,
            "max_cost_increase": e.gate.max_cost_increase,
            "max_p95_latency_increase_ms": e.gate.max_p95_latency_increase_ms,
            "critical_tags": sorted(&e.gate.critical_tags),
        },
        "judge": judge_json(e.judge.as_ref()),
    })
}

fn judge_json(j: Option<&JudgeSpec>) -> Value {
    match j {
        None => Value::Null,
        Some(j) => json!({
            "provider": j.snapshot.provider().as_str(),
            "snapshot": j.snapshot.to_string(),
            "params": params_json(&j.params),
            "rubric": j.rubric,
            "samples": j.samples,
        }),
    }
}

fn sorted(tags: &[String]) -> Vec<&str> {
    let mut v: Vec<&str> = tags.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// What an approval of one bundle's instrument change covers: the pins and the canonical
/// instrument of both sides (`None` where the side has no bundle). Any later change to either
/// gives another fingerprint, so the approval no longer holds.
pub fn fingerprint(manifest: &str, base: Option<&LoadedBundle>, head: Option<&LoadedBundle>) -> Sha256 {
    let side = |b: Option<&LoadedBundle>| b.map(canonical).unwrap_or(Value::Null).to_string();
    key_of(&["evalgate-instrument-approval-v1", manifest, &side(base), &side(head)])
}

/// One difference of the instrument, old → new (`None` where a side has nothing).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub what: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

fn change(what: impl Into<String>, old: Option<String>, new: Option<String>) -> Change {
    Change { what: what.into(), old, new }
}

/// Every difference of the instrument between base and head, in a stable order: the bundle
/// itself (added or removed), the golden set (pin, `golden.yaml`, each case by content), the
/// gate, samples, budget and judge.
pub fn changes(base: Option<&LoadedBundle>, head: Option<&LoadedBundle>) -> Vec<Change> {
    match (base, head) {
        (None, None) => Vec::new(),
        (None, Some(h)) => {
            let mut out = vec![change("bundle", None, Some(format!("added: {}", h.bundle.manifest)))];
            let c = canonical(h);
            for key in ["golden_set", "gate", "samples", "budget", "judge"] {
                out.push(change(key, None, Some(c[key].to_string())));
            }
            // Every case is new: the count and the pin (which covers their content) say it.
            let (n, pin) = (h.golden.cases.len(), h.golden.pin);
            out.push(change("cases", None, Some(format!("{n} case(s), all new (golden set pin {pin})"))));
            out
        }
        (Some(b), None) => vec![change("bundle", Some(format!("{} removed", b.bundle.manifest)), None)],
        (Some(b), Some(h)) => side_changes(b, h),
    }
}

fn side_changes(b: &LoadedBundle, h: &LoadedBundle) -> Vec<Change> {
    let mut out = Vec::new();
    let (be, he) = (&b.bundle.eval, &h.bundle.eval);
    let opt = |v: &dyn Fn(&LoadedBundle) -> Option<String>, what: &str, out: &mut Vec<Change>| {
        let (o, n) = (v(b), v(h));
        if o != n {
            out.push(change(what, o, n));
        }
    };
    opt(&|x| Some(x.bundle.eval.golden_set.as_str().to_owned()), "golden set folder", &mut out);
    opt(&|x| Some(x.golden.pin.to_string()), "golden set pin", &mut out);
    opt(&|x| Some(x.golden.name.clone()), "golden.yaml name", &mut out);
    opt(&|x| Some(x.golden.version.clone()), "golden.yaml version", &mut out);
    opt(&|x| x.golden.description.clone(), "golden.yaml description", &mut out);
    out.extend(case_changes(&b.golden, &h.golden));
    for g in golden_diff::diff_gate(&be.gate, &he.gate) {
        out.push(change(format!("gate.{}", g.key), g.base, g.head));
    }
    opt(&|x| Some(x.bundle.eval.samples.to_string()), "eval.samples", &mut out);
    opt(&|x| x.bundle.eval.budget.max_usd.map(|v| v.to_string()), "eval.budget.max_usd", &mut out);
    opt(&|x| x.bundle.eval.budget.max_tokens.map(|v| v.to_string()), "eval.budget.max_tokens", &mut out);
    let (bj, hj) = (be.judge.as_ref(), he.judge.as_ref());
    match (bj, hj) {
        (None, None) => {}
        (Some(_), None) | (None, Some(_)) => {
            let show = |j: Option<&JudgeSpec>| j.map(|j| format!("{} ({} votes)", j.snapshot, j.samples));
            out.push(change("eval.judge", show(bj), show(hj)));
        }
        (Some(x), Some(y)) => {
            if x.snapshot != y.snapshot {
                out.push(change("eval.judge.snapshot", Some(x.snapshot.to_string()), Some(y.snapshot.to_string())));
            }
            let (px, py) = (params_json(&x.params), params_json(&y.params));
            if px != py {
                out.push(change("eval.judge.params", Some(px.to_string()), Some(py.to_string())));
            }
            if x.rubric != y.rubric {
                out.push(change("eval.judge.rubric", x.rubric.clone(), y.rubric.clone()));
            }
            if x.samples != y.samples {
                out.push(change("eval.judge.samples", Some(x.samples.to_string()), Some(y.samples.to_string())));
            }
        }
    }
    out
}

/// Cases added, removed and changed, each shown by its content (what changed, old → new).
fn case_changes(base: &GoldenSet, head: &GoldenSet) -> Vec<Change> {
    let diff = golden_diff::diff_cases(base, head);
    let find = |set: &GoldenSet, id: &crate::ids::CaseId| set.cases.iter().find(|c| c.id == *id).cloned();
    let mut out = Vec::new();
    for id in &diff.removed {
        out.push(change(format!("case {id}"), find(base, id).map(|c| case_json(&c).to_string()), None));
    }
    for id in &diff.added {
        out.push(change(format!("case {id}"), None, find(head, id).map(|c| case_json(&c).to_string())));
    }
    for id in &diff.changed {
        let (Some(o), Some(n)) = (find(base, id), find(head, id)) else { continue };
        let (oj, nj) = (case_json(&o), case_json(&n));
        for field in ["input", "tool_results", "checks", "label", "tags", "source"] {
            if oj[field] != nj[field] {
                out.push(change(
                    format!("case {id} {field}"),
                    Some(oj[field].to_string()),
                    Some(nj[field].to_string()),
                ));
            }
        }
    }
    out
}

/// A case as `cases.jsonl` holds it.
pub fn case_json(c: &Case) -> Value {
    json!({
        "id": c.id.to_string(),
        "input": { "messages": c.messages },
        "tool_results": c.tool_results.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_json())).collect::<serde_json::Map<_, _>>(),
        "checks": c.checks.iter().map(|c| c.to_json()).collect::<Vec<_>>(),
        "label": c.label,
        "tags": c.tags,
        "source": c.source,
    })
}

/// What a reviewer is shown of one change: each side cut to a window around the first place
/// they differ, so a change after the first few hundred characters is still seen (the approval
/// fingerprint covers both sides whole).
pub fn shown(change: &Change) -> (Option<String>, Option<String>) {
    const BEFORE: usize = 80;
    const WIDTH: usize = 400;
    let (old, new) = (change.old.as_deref(), change.new.as_deref());
    let first_diff = match (old, new) {
        (Some(o), Some(n)) => o.chars().zip(n.chars()).take_while(|(a, b)| a == b).count(),
        _ => 0,
    };
    let start = first_diff.saturating_sub(BEFORE);
    let window = |s: &str| {
        let total = s.chars().count();
        let body: String = s.chars().skip(start).take(WIDTH).collect();
        let lead = if start > 0 { format!("…({start} characters before) ") } else { String::new() };
        let rest = total.saturating_sub(start + WIDTH);
        let tail = if rest > 0 { format!(" …({rest} characters after)") } else { String::new() };
        format!("{lead}{body}{tail}")
    };
    (old.map(window), new.map(window))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_late_in_a_long_value_is_in_what_is_shown() {
        let base = "a".repeat(1_000);
        let c = Change {
            what: "eval.judge.rubric".into(),
            old: Some(format!("{base}strict")),
            new: Some(format!("{base}lenient")),
        };
        let (o, n) = shown(&c);
        let (o, n) = (o.expect("old"), n.expect("new"));
        assert!(o.contains("strict") && n.contains("lenient"), "{o} / {n}");
        assert!(o.starts_with("…(920 characters before) "), "{o}");
    }

    #[test]
    fn a_short_value_is_shown_whole() {
        let c = Change { what: "eval.samples".into(), old: Some("1".into()), new: Some("5".into()) };
        assert_eq!(shown(&c), (Some("1".into()), Some("5".into())));
    }
}
