//! The gate: which thresholds are in force and where each came from, and the decision.
//!
//! Thresholds start from the **base** bundle's `gate:` block, so a change cannot weaken its own
//! gate. Pre-registered (or command-line) values may only tighten them: a looser value is
//! ignored and the report says so.

use crate::bundle::GateConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A threshold of the gate vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    MaxRegressionRate,
    MinPassRate,
    MinFixRate,
    MaxCostIncrease,
    MaxP95LatencyIncreaseMs,
}

impl Key {
    pub const ALL: [Key; 5] =
        [Key::MaxRegressionRate, Key::MinPassRate, Key::MinFixRate, Key::MaxCostIncrease, Key::MaxP95LatencyIncreaseMs];

    pub fn as_str(self) -> &'static str {
        match self {
            Key::MaxRegressionRate => "max_regression_rate",
            Key::MinPassRate => "min_pass_rate",
            Key::MinFixRate => "min_fix_rate",
            Key::MaxCostIncrease => "max_cost_increase",
            Key::MaxP95LatencyIncreaseMs => "max_p95_latency_increase_ms",
        }
    }

    pub fn parse(s: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// A `max_` threshold is tighter when lower, a `min_` one when higher.
    fn is_max(self) -> bool {
        !matches!(self, Key::MinPassRate | Key::MinFixRate)
    }

    fn is_rate(self) -> bool {
        !matches!(self, Key::MaxP95LatencyIncreaseMs)
    }

    /// Reads a value as written in a PR body or on the command line: rates as `1%` or `0.01`
    /// (0 to 1; `max_cost_increase` may exceed 1), latency as milliseconds.
    pub fn parse_value(self, s: &str) -> Result<f64, String> {
        let s = s.trim();
        let (num, percent) = match s.strip_suffix('%') {
            Some(n) => (n.trim(), true),
            None => (s, false),
        };
        if percent && !self.is_rate() {
            return Err(format!("`{}` is in milliseconds, not a percentage: `{s}`", self.as_str()));
        }
        let v: f64 = num.parse().map_err(|_| format!("`{}` needs a number, found `{s}`", self.as_str()))?;
        let v = if percent { v / 100.0 } else { v };
        let upper =
            if matches!(self, Key::MaxRegressionRate | Key::MinPassRate | Key::MinFixRate) { 1.0 } else { f64::MAX };
        if !v.is_finite() || v < 0.0 || v > upper {
            return Err(format!(
                "`{}` must be between 0 and {}, found `{s}`",
                self.as_str(),
                if upper == 1.0 { "100%" } else { "any positive number" }
            ));
        }
        Ok(v)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Bundle,
    PreRegistration,
    Cli,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Bundle => "bundle",
            Source::PreRegistration => "pre-registration",
            Source::Cli => "cli",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub value: f64,
    pub source: Source,
}

/// The thresholds in force, and what was asked for but not applied.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Thresholds {
    pub values: BTreeMap<Key, Threshold>,
    pub critical_tags: Vec<String>,
    /// Proposed values that would have loosened the gate, ignored.
    pub ignored: Vec<String>,
}

impl Thresholds {
    /// The base bundle's gate.
    pub fn from_base(gate: &GateConfig) -> Self {
        let mut values = BTreeMap::new();
        let pairs = [
            (Key::MaxRegressionRate, gate.max_regression_rate),
            (Key::MinPassRate, gate.min_pass_rate),
            (Key::MinFixRate, gate.min_fix_rate),
            (Key::MaxCostIncrease, gate.max_cost_increase),
            (Key::MaxP95LatencyIncreaseMs, gate.max_p95_latency_increase_ms.map(|v| v as f64)),
        ];
        for (k, v) in pairs {
            if let Some(value) = v {
                values.insert(k, Threshold { value, source: Source::Bundle });
            }
        }
        Thresholds { values, critical_tags: gate.critical_tags.clone(), ignored: Vec::new() }
    }

    /// Applies a proposed value if it is at least as tight as the one in force.
    pub fn tighten(&mut self, key: Key, value: f64, source: Source) {
        match self.values.get(&key) {
            Some(cur) if (key.is_max() && value > cur.value) || (!key.is_max() && value < cur.value) => {
                self.ignored.push(format!(
                    "{source} {key}: {} ignored: it would loosen the base gate's {}",
                    fmt_value(key, value),
                    fmt_value(key, cur.value)
                ));
            }
            _ => {
                self.values.insert(key, Threshold { value, source });
            }
        }
    }

    pub fn get(&self, key: Key) -> Option<f64> {
        self.values.get(&key).map(|t| t.value)
    }
}

/// A value as people read it: rates in percent, latency in ms.
pub fn fmt_value(key: Key, v: f64) -> String {
    if key.is_rate() { pct(v) } else { format!("{v} ms") }
}

/// A rate in percent with one decimal (`0.0137` → `1.4%`).
pub fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// A measure the gate may not be able to compute (no price for a snapshot, no latency): the
/// reason it cannot is kept, so a threshold on it fails the gate naming why instead of being
/// skipped.
pub type Measured<T> = Result<T, String>;

/// What the gate looks at, computed by the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Measures {
    /// `false` for a bundle the pull request adds: nothing to compare with, so the comparative
    /// thresholds (regression, fix, cost and latency change) do not apply.
    pub paired: bool,
    pub regressions: u64,
    pub regression_rate: f64,
    pub fixes: u64,
    pub fix_rate: f64,
    pub base_failing: u64,
    pub head_pass_rate: f64,
    /// Relative change of mean cost per case (`+inf` when base costs 0 and head does not).
    pub cost_increase: Measured<f64>,
    pub p95_latency_increase_ms: Measured<f64>,
    /// Critical cases that regressed (flaky or not), or in a head-only run, that fail on head.
    pub critical_regressions: Vec<String>,
    /// Judge-error rate of each side, each held to [`MAX_JUDGE_ERROR_RATE`] on its own.
    pub judge_error_rate: Sides<f64>,
    /// Set when the judge changed and its agreement with human labels dropped.
    pub agreement_drop: Option<String>,
    /// Why the run could not finish, if it could not.
    pub incomplete: Option<String>,
}

/// One value per side of the comparison. `base` is `None` where there is no base (a bundle
/// the pull request adds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sides<T> {
    pub base: Option<T>,
    pub head: T,
}

/// The judge-error rate above which the gate fails (SPEC: 5%), on either side.
pub const MAX_JUDGE_ERROR_RATE: f64 = 0.05;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub passed: bool,
    pub reasons: Vec<String>,
}

/// Decides. Every breach is a reason, and so is every threshold in force that cannot be
/// computed; `passed` only when there is none and the run finished.
pub fn decide(t: &Thresholds, m: &Measures) -> Decision {
    let mut reasons = Vec::new();
    if let Some(why) = &m.incomplete {
        reasons.push(format!("evaluation incomplete: {why}"));
    }
    if let (Some(max), true) = (t.get(Key::MaxRegressionRate), m.paired) {
        if m.regression_rate > max {
            reasons.push(format!(
                "{} regression(s): regression rate {} > {} (max_regression_rate)",
                m.regressions,
                pct(m.regression_rate),
                pct(max)
            ));
        }
    }
    if let Some(min) = t.get(Key::MinPassRate) {
        if m.head_pass_rate < min {
            reasons.push(format!("pass rate {} < {} (min_pass_rate)", pct(m.head_pass_rate), pct(min)));
        }
    }
    if let (Some(min), true) = (t.get(Key::MinFixRate), m.paired) {
        if m.fix_rate < min {
            let why = if m.base_failing == 0 { "; no case fails on base, so there is nothing to fix" } else { "" };
            reasons.push(format!("fix rate {} < {} (min_fix_rate{why})", pct(m.fix_rate), pct(min)));
        }
    }
    if let (Some(max), true) = (t.get(Key::MaxCostIncrease), m.paired) {
        match &m.cost_increase {
            Ok(inc) if inc.is_infinite() => reasons.push(format!(
                "cost per case up from $0 on base (an unbounded increase) > {} (max_cost_increase)",
                pct(max)
            )),
            Ok(inc) if *inc > max => {
                reasons.push(format!("cost per case up {} > {} (max_cost_increase)", pct(*inc), pct(max)))
            }
            Ok(_) => {}
            Err(why) => reasons.push(format!("max_cost_increase cannot be computed: {why}")),
        }
    }
    if let (Some(max), true) = (t.get(Key::MaxP95LatencyIncreaseMs), m.paired) {
        match &m.p95_latency_increase_ms {
            Ok(inc) if *inc > max => {
                reasons.push(format!("p95 latency up {inc} ms > {max} ms (max_p95_latency_increase_ms)"))
            }
            Ok(_) => {}
            Err(why) => reasons.push(format!("max_p95_latency_increase_ms cannot be computed: {why}")),
        }
    }
    for id in &m.critical_regressions {
        if m.paired {
            reasons.push(format!("critical case {id} regressed"));
        } else {
            reasons.push(format!("critical case {id} does not pass"));
        }
    }
    let sides = [("base", m.judge_error_rate.base), ("head", Some(m.judge_error_rate.head))];
    for (side, rate) in sides {
        if let Some(rate) = rate.filter(|r| *r > MAX_JUDGE_ERROR_RATE) {
            reasons.push(format!("judge error rate on {side} {} > {}", pct(rate), pct(MAX_JUDGE_ERROR_RATE)));
        }
    }
    if let Some(why) = &m.agreement_drop {
        reasons.push(why.clone());
    }
    Decision { passed: reasons.is_empty(), reasons }
}

/// The relative change of mean cost per case, head against base. Base at 0 is 0 when head is
/// 0 too, else an unbounded increase.
pub fn relative_increase(base: f64, head: f64) -> f64 {
    if base > 0.0 {
        (head - base) / base
    } else if head > 0.0 {
        f64::INFINITY
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measures() -> Measures {
        Measures {
            paired: true,
            regressions: 0,
            regression_rate: 0.0,
            fixes: 0,
            fix_rate: 0.0,
            base_failing: 0,
            head_pass_rate: 1.0,
            cost_increase: Ok(0.0),
            p95_latency_increase_ms: Ok(0.0),
            critical_regressions: Vec::new(),
            judge_error_rate: Sides { base: Some(0.0), head: 0.0 },
            agreement_drop: None,
            incomplete: None,
        }
    }

    fn base(max_reg: f64, min_pass: f64) -> Thresholds {
        Thresholds::from_base(&GateConfig {
            max_regression_rate: Some(max_reg),
            min_pass_rate: Some(min_pass),
            ..GateConfig::default()
        })
    }

    #[test]
    fn values_parse_as_percent_or_fraction() {
        assert_eq!(Key::MaxRegressionRate.parse_value("1%"), Ok(0.01));
        assert_eq!(Key::MaxRegressionRate.parse_value("0.01"), Ok(0.01));
        assert!(Key::MinPassRate.parse_value("120%").is_err());
        assert!(Key::MaxP95LatencyIncreaseMs.parse_value("5%").is_err());
        assert_eq!(Key::MaxP95LatencyIncreaseMs.parse_value("250"), Ok(250.0));
        assert!(Key::MaxRegressionRate.parse_value("lots").is_err());
    }

    #[test]
    fn tighter_values_apply_with_their_source() {
        let mut t = base(0.05, 0.8);
        t.tighten(Key::MaxRegressionRate, 0.01, Source::PreRegistration);
        t.tighten(Key::MinPassRate, 0.95, Source::Cli);
        assert_eq!(t.values[&Key::MaxRegressionRate], Threshold { value: 0.01, source: Source::PreRegistration });
        assert_eq!(t.values[&Key::MinPassRate], Threshold { value: 0.95, source: Source::Cli });
        assert!(t.ignored.is_empty());
    }

    #[test]
    fn looser_values_are_ignored_and_said() {
        let mut t = base(0.01, 0.95);
        t.tighten(Key::MaxRegressionRate, 0.10, Source::PreRegistration);
        t.tighten(Key::MinPassRate, 0.5, Source::PreRegistration);
        assert_eq!(t.values[&Key::MaxRegressionRate], Threshold { value: 0.01, source: Source::Bundle });
        assert_eq!(t.values[&Key::MinPassRate], Threshold { value: 0.95, source: Source::Bundle });
        assert_eq!(t.ignored.len(), 2);
    }

    #[test]
    fn a_threshold_the_base_lacks_can_be_added() {
        let mut t = Thresholds::from_base(&GateConfig::default());
        t.tighten(Key::MinPassRate, 0.9, Source::PreRegistration);
        assert_eq!(t.get(Key::MinPassRate), Some(0.9));
    }

    #[test]
    fn a_clean_run_passes() {
        assert!(decide(&base(0.0, 0.9), &measures()).passed);
    }

    #[test]
    fn a_breached_regression_rate_fails_with_the_numbers() {
        let m = Measures { regressions: 2, regression_rate: 0.014, ..measures() };
        let d = decide(&base(0.01, 0.0), &m);
        assert!(!d.passed);
        assert_eq!(d.reasons, ["2 regression(s): regression rate 1.4% > 1.0% (max_regression_rate)"]);
    }

    #[test]
    fn a_critical_regression_fails_even_within_the_rate() {
        let m =
            Measures { regressions: 1, regression_rate: 0.01, critical_regressions: vec!["c-1".into()], ..measures() };
        let d = decide(&base(0.05, 0.0), &m);
        assert_eq!(d.reasons, ["critical case c-1 regressed"]);
    }

    #[test]
    fn judge_errors_above_five_percent_on_either_side_fail() {
        let on = |base, head| Measures { judge_error_rate: Sides { base: Some(base), head }, ..measures() };
        let d = decide(&base(1.0, 0.0), &on(0.051, 0.0));
        assert_eq!(d.reasons, ["judge error rate on base 5.1% > 5.0%"]);
        let d = decide(&base(1.0, 0.0), &on(0.0, 0.06));
        assert_eq!(d.reasons, ["judge error rate on head 6.0% > 5.0%"]);
        assert!(decide(&base(1.0, 0.0), &on(0.05, 0.05)).passed);
    }

    #[test]
    fn judge_errors_are_not_pooled_over_both_sides() {
        // 0% on base and 8% on head pool to 4%: under the limit, but head alone is over it.
        let m = Measures { judge_error_rate: Sides { base: Some(0.0), head: 0.08 }, ..measures() };
        assert!(!decide(&base(1.0, 0.0), &m).passed);
    }

    #[test]
    fn an_incomplete_run_never_passes() {
        let d = decide(&Thresholds::default(), &Measures { incomplete: Some("budget reached".into()), ..measures() });
        assert!(!d.passed);
    }

    #[test]
    fn min_fix_rate_is_enforced_even_when_nothing_failed_on_base() {
        let mut t = Thresholds::default();
        t.tighten(Key::MinFixRate, 0.5, Source::Cli);
        let d = decide(&t, &measures());
        assert_eq!(
            d.reasons,
            ["fix rate 0.0% < 50.0% (min_fix_rate; no case fails on base, so there is nothing to fix)"]
        );
        assert!(!decide(&t, &Measures { base_failing: 4, fixes: 1, fix_rate: 0.25, ..measures() }).passed);
        assert!(decide(&t, &Measures { base_failing: 4, fixes: 2, fix_rate: 0.5, ..measures() }).passed);
    }

    fn cost_gate() -> Thresholds {
        Thresholds::from_base(&GateConfig { max_cost_increase: Some(0.25), ..GateConfig::default() })
    }

    #[test]
    fn a_cost_threshold_without_a_price_fails_naming_why() {
        let m = Measures { cost_increase: Err("no price for gpt-x-2025-01-01 on head".into()), ..measures() };
        let d = decide(&cost_gate(), &m);
        assert_eq!(d.reasons, ["max_cost_increase cannot be computed: no price for gpt-x-2025-01-01 on head"]);
    }

    #[test]
    fn a_cost_rise_from_zero_is_unbounded_and_fails() {
        assert_eq!(relative_increase(0.0, 0.0), 0.0);
        assert!(relative_increase(0.0, 0.01).is_infinite());
        assert!((relative_increase(0.02, 0.03) - 0.5).abs() < 1e-12);
        let d = decide(&cost_gate(), &Measures { cost_increase: Ok(relative_increase(0.0, 0.01)), ..measures() });
        assert!(!d.passed);
        assert!(d.reasons[0].contains("unbounded"), "{:?}", d.reasons);
        assert!(
            decide(&cost_gate(), &Measures { cost_increase: Ok(relative_increase(0.0, 0.0)), ..measures() }).passed
        );
    }

    #[test]
    fn a_latency_threshold_without_latencies_fails_naming_why() {
        let t = Thresholds::from_base(&GateConfig { max_p95_latency_increase_ms: Some(500), ..GateConfig::default() });
        let m = Measures { p95_latency_increase_ms: Err("no latency measured on base".into()), ..measures() };
        assert_eq!(
            decide(&t, &m).reasons,
            ["max_p95_latency_increase_ms cannot be computed: no latency measured on base"]
        );
    }

    #[test]
    fn a_head_only_run_is_held_to_its_pass_rate_and_critical_cases_only() {
        let t = Thresholds::from_base(&GateConfig {
            max_regression_rate: Some(0.0),
            min_fix_rate: Some(0.5),
            max_cost_increase: Some(0.1),
            min_pass_rate: Some(0.9),
            ..GateConfig::default()
        });
        let m = Measures {
            paired: false,
            cost_increase: Err("no base".into()),
            p95_latency_increase_ms: Err("no base".into()),
            judge_error_rate: Sides { base: None, head: 0.0 },
            ..measures()
        };
        assert!(decide(&t, &m).passed);
        let failing = Measures { head_pass_rate: 0.5, critical_regressions: vec!["c-1".into()], ..m };
        assert_eq!(
            decide(&t, &failing).reasons,
            ["pass rate 50.0% < 90.0% (min_pass_rate)", "critical case c-1 does not pass"]
        );
    }
}
