//! The statistics of a gate run, as SPEC's "Words" and "Check runs" define them.
//!
//! Each function is small and pure, and unit-tested against values computed by hand, because a
//! gate is only as trustworthy as its arithmetic.

use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, Normal};

/// The two-sided 95% normal quantile, z = Φ⁻¹(0.975) ≈ 1.959964.
pub fn z95() -> f64 {
    Normal::standard().inverse_cdf(0.975)
}

/// `numerator / denominator`, and 0 when the denominator is 0 (SPEC: "0 when none pass on
/// base", "0 when none fail on base").
pub fn rate(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 { 0.0 } else { numerator as f64 / denominator as f64 }
}

/// The 95% Wilson score interval of a pass rate: unlike the normal approximation it stays in
/// [0, 1] and behaves at 0 and n successes, which small golden sets hit often. `None` for no
/// trials.
pub fn wilson_ci95(successes: u64, trials: u64) -> Option<(f64, f64)> {
    if trials == 0 || successes > trials {
        return None;
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z = z95();
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    // At 0 and n successes the bounds are exactly 0 and 1; say so rather than leave rounding.
    let lo = if successes == 0 { 0.0 } else { (center - half).max(0.0) };
    let hi = if successes == trials { 1.0 } else { (center + half).min(1.0) };
    Some((lo, hi))
}

/// McNemar's exact test on the discordant pairs (cases that regressed, cases that were fixed):
/// the two-sided binomial p-value of the smaller count under p = ½. 1 when there are none.
pub fn mcnemar_exact_p(regressions: u64, fixes: u64) -> f64 {
    let n = regressions + fixes;
    if n == 0 {
        return 1.0;
    }
    let k = regressions.min(fixes);
    let tail = Binomial::new(0.5, n).map(|b| b.cdf(k)).unwrap_or(1.0);
    (2.0 * tail).min(1.0)
}

/// The smallest non-zero regression rate the golden set can express: one regression among the
/// cases passing on base. A `max_regression_rate` below it (but above 0) cannot be resolved —
/// one regression already breaches it — and the report says so. `None` when none pass on base.
pub fn smallest_resolvable_rate(base_passing: u64) -> Option<f64> {
    (base_passing > 0).then(|| 1.0 / base_passing as f64)
}

/// The nearest-rank percentile (`p` in (0, 100]): the smallest value with at least p% of the
/// values at or below it. `None` for no values.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// How far the judge agrees with human labels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    /// Labelled cases compared.
    pub cases: u64,
    /// Share of cases where judge and human agree.
    pub percent: f64,
    /// Cohen's kappa: agreement beyond chance. `None` when chance agreement is total (every
    /// verdict on both sides the same), where kappa is undefined.
    pub kappa: Option<f64>,
    /// Of the cases humans passed, the share the judge passed (`None` when humans passed none).
    pub true_pass_rate: Option<f64>,
    /// Of the cases humans failed, the share the judge failed (`None` when humans failed none).
    pub true_fail_rate: Option<f64>,
}

/// Judge–human agreement over (judge passed, human passed) pairs; `None` without pairs.
pub fn agreement(pairs: &[(bool, bool)]) -> Option<Agreement> {
    if pairs.is_empty() {
        return None;
    }
    let n = pairs.len() as f64;
    let agree = pairs.iter().filter(|(j, h)| j == h).count() as f64;
    let judge_pass = pairs.iter().filter(|(j, _)| *j).count() as f64 / n;
    let human_pass = pairs.iter().filter(|(_, h)| *h).count() as f64 / n;
    let po = agree / n;
    let pe = judge_pass * human_pass + (1.0 - judge_pass) * (1.0 - human_pass);
    let kappa = ((1.0 - pe).abs() > f64::EPSILON).then(|| (po - pe) / (1.0 - pe));
    let share = |human: bool| {
        let of: Vec<bool> = pairs.iter().filter(|(_, h)| *h == human).map(|(j, _)| *j == human).collect();
        (!of.is_empty()).then(|| of.iter().filter(|ok| **ok).count() as f64 / of.len() as f64)
    };
    Some(Agreement {
        cases: pairs.len() as u64,
        percent: po * 100.0,
        kappa,
        true_pass_rate: share(true),
        true_fail_rate: share(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn z95_is_the_975_normal_quantile() {
        assert!(close(z95(), 1.959_963_985, 1e-8));
    }

    #[test]
    fn wilson_interval_of_8_in_10() {
        // By hand with z = 1.959964: centre 0.716 74, half-width 0.226 58.
        let (lo, hi) = wilson_ci95(8, 10).unwrap();
        assert!(close(lo, 0.4902, 1e-4), "{lo}");
        assert!(close(hi, 0.9433, 1e-4), "{hi}");
    }

    #[test]
    fn wilson_interval_at_the_edges_stays_in_bounds() {
        let (lo, hi) = wilson_ci95(0, 10).unwrap();
        assert_eq!(lo, 0.0);
        assert!(close(hi, 0.2775, 1e-4), "{hi}");
        let (lo, hi) = wilson_ci95(10, 10).unwrap();
        assert!(close(lo, 0.7225, 1e-4), "{lo}");
        assert_eq!(hi, 1.0);
        assert_eq!(wilson_ci95(0, 0), None);
    }

    #[test]
    fn rates_are_zero_without_a_denominator() {
        assert_eq!(rate(0, 0), 0.0);
        assert_eq!(rate(2, 40), 0.05);
    }

    #[test]
    fn mcnemar_exact_p_values() {
        // 1 regression, 9 fixes: 2 · (C(10,0) + C(10,1)) / 2¹⁰ = 22/1024.
        assert!(close(mcnemar_exact_p(1, 9), 22.0 / 1024.0, 1e-12));
        assert!(close(mcnemar_exact_p(9, 1), 22.0 / 1024.0, 1e-12));
        // 0 and 5: 2 / 32.
        assert!(close(mcnemar_exact_p(0, 5), 2.0 / 32.0, 1e-12));
        // Balanced: capped at 1.
        assert_eq!(mcnemar_exact_p(5, 5), 1.0);
        assert_eq!(mcnemar_exact_p(0, 0), 1.0);
    }

    #[test]
    fn one_regression_in_twenty_is_the_smallest_resolvable_rate() {
        assert_eq!(smallest_resolvable_rate(20), Some(0.05));
        assert_eq!(smallest_resolvable_rate(0), None);
    }

    #[test]
    fn p95_is_the_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 95.0), Some(19.0));
        let v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
        assert_eq!(percentile(&[], 95.0), None);
    }

    #[test]
    fn cohen_kappa_by_hand() {
        // 20 both pass, 5 judge-only pass, 10 human-only pass, 15 both fail:
        // po = 35/50 = 0.7; pe = 0.5·0.6 + 0.5·0.4 = 0.5; κ = 0.2/0.5 = 0.4.
        let mut pairs = vec![(true, true); 20];
        pairs.extend(vec![(true, false); 5]);
        pairs.extend(vec![(false, true); 10]);
        pairs.extend(vec![(false, false); 15]);
        let a = agreement(&pairs).unwrap();
        assert_eq!(a.cases, 50);
        assert!(close(a.percent, 70.0, 1e-9));
        assert!(close(a.kappa.unwrap(), 0.4, 1e-12));
        // Humans passed 30: the judge passed 20 of them; humans failed 20: the judge failed 15.
        assert!(close(a.true_pass_rate.unwrap(), 20.0 / 30.0, 1e-12));
        assert!(close(a.true_fail_rate.unwrap(), 15.0 / 20.0, 1e-12));
    }

    #[test]
    fn kappa_is_undefined_when_everything_agrees_by_construction() {
        let a = agreement(&[(true, true), (true, true)]).unwrap();
        assert_eq!(a.percent, 100.0);
        assert_eq!(a.kappa, None);
        assert_eq!((a.true_pass_rate, a.true_fail_rate), (Some(1.0), None));
        assert_eq!(agreement(&[]), None);
    }
}
