//! The gate: which thresholds are in force and where each came from, and the decision.
//!
//! Thresholds start from the **base** bundle's `gate:` block, so a change cannot weaken its own
//! gate. Pre-registered (or command-line) values may only tighten them: a looser value is
//! ignored and the report says so.

use crate::bundle::GateConfig;
use serde::Serialize;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
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

/// What the gate looks at, computed by the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Measures {
    pub regressions: u64,
    pub regression_rate: f64,
    pub fixes: u64,
    pub fix_rate: f64,
    pub base_failing: u64,
    pub head_pass_rate: f64,
    /// Relative change of mean cost per case; `None` when either side has no price or base costs 0.
    pub cost_increase: Option<f64>,
    pub p95_latency_increase_ms: Option<f64>,
    pub critical_regressions: Vec<String>,
    pub judge_error_rate: f64,
    /// Set when the judge changed and its agreement with human labels dropped.
    pub agreement_drop: Option<String>,
    /// Why the run could not finish, if it could not.
    pub incomplete: Option<String>,
}

/// The judge-error rate above which the gate fails (SPEC: 5%).
pub const MAX_JUDGE_ERROR_RATE: f64 = 0.05;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub passed: bool,
    pub reasons: Vec<String>,
}

/// Decides. Every breach is a reason; `passed` only when there is none and the run finished.
pub fn decide(t: &Thresholds, m: &Measures) -> Decision {
    let mut reasons = Vec::new();
    if let Some(why) = &m.incomplete {
        reasons.push(format!("evaluation incomplete: {why}"));
    }
    if let Some(max) = t.get(Key::MaxRegressionRate) {
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
    if let Some(min) = t.get(Key::MinFixRate) {
        // With no case failing on base there is nothing to fix: the threshold does not apply.
        if m.base_failing > 0 && m.fix_rate < min {
            reasons.push(format!("fix rate {} < {} (min_fix_rate)", pct(m.fix_rate), pct(min)));
        }
    }
    if let (Some(max), Some(inc)) = (t.get(Key::MaxCostIncrease), m.cost_increase) {
        if inc > max {
            reasons.push(format!("cost per case up {} > {} (max_cost_increase)", pct(inc), pct(max)));
        }
    }
    if let (Some(max), Some(inc)) = (t.get(Key::MaxP95LatencyIncreaseMs), m.p95_latency_increase_ms) {
        if inc > max {
            reasons.push(format!("p95 latency up {inc} ms > {max} ms (max_p95_latency_increase_ms)"));
        }
    }
    for id in &m.critical_regressions {
        reasons.push(format!("critical case {id} regressed"));
    }
    if m.judge_error_rate > MAX_JUDGE_ERROR_RATE {
        reasons.push(format!("judge error rate {} > {}", pct(m.judge_error_rate), pct(MAX_JUDGE_ERROR_RATE)));
    }
    if let Some(why) = &m.agreement_drop {
        reasons.push(why.clone());
    }
    Decision { passed: reasons.is_empty(), reasons }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measures() -> Measures {
        Measures {
            regressions: 0,
            regression_rate: 0.0,
            fixes: 0,
            fix_rate: 0.0,
            base_failing: 0,
            head_pass_rate: 1.0,
            cost_increase: Some(0.0),
            p95_latency_increase_ms: Some(0.0),
            critical_regressions: Vec::new(),
            judge_error_rate: 0.0,
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
    fn judge_errors_above_five_percent_fail() {
        let d = decide(&base(1.0, 0.0), &Measures { judge_error_rate: 0.051, ..measures() });
        assert!(!d.passed);
        assert!(decide(&base(1.0, 0.0), &Measures { judge_error_rate: 0.05, ..measures() }).passed);
    }

    #[test]
    fn an_incomplete_run_never_passes() {
        let d = decide(&Thresholds::default(), &Measures { incomplete: Some("budget reached".into()), ..measures() });
        assert!(!d.passed);
    }

    #[test]
    fn min_fix_rate_applies_only_when_something_failed_on_base() {
        let mut t = Thresholds::default();
        t.tighten(Key::MinFixRate, 0.5, Source::Cli);
        assert!(decide(&t, &measures()).passed);
        assert!(!decide(&t, &Measures { base_failing: 4, fixes: 1, fix_rate: 0.25, ..measures() }).passed);
    }
}
