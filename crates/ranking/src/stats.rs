//! Textbook statistics the ranking is built from: intervals on a proportion, Beta quantiles, and
//! Fisher's exact test for a change in a rate.

use statrs::distribution::{Beta, ContinuousCDF, Normal};
use statrs::function::factorial::ln_binomial;

/// Standard normal quantile for a two-sided interval at `confidence` (e.g. 0.95 → 1.96).
pub fn z_for(confidence: f64) -> f64 {
    let n = Normal::new(0.0, 1.0).expect("standard normal");
    n.inverse_cdf(0.5 + confidence / 2.0)
}

/// Wilson score interval for a proportion `p` observed over `n` trials.
pub fn wilson_interval(p: f64, n: f64, z: f64) -> (f64, f64) {
    if n <= 0.0 {
        return (0.0, 1.0);
    }
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).max(0.0).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// A Beta distribution; parameters are floored at a tiny positive value so degenerate evidence never
/// panics.
pub fn beta(a: f64, b: f64) -> Beta {
    Beta::new(a.max(1e-9), b.max(1e-9)).expect("positive Beta parameters")
}

/// Equal-tailed interval of Beta(a, b) holding `confidence` of its mass.
pub fn beta_interval(a: f64, b: f64, confidence: f64) -> (f64, f64) {
    let d = beta(a, b);
    let tail = (1.0 - confidence) / 2.0;
    (d.inverse_cdf(tail), d.inverse_cdf(1.0 - tail))
}

/// Equal-tailed credible interval of the Beta(k + ½, n − k + ½) posterior (Jeffreys prior).
pub fn jeffreys_interval(k: f64, n: f64, confidence: f64) -> (f64, f64) {
    beta_interval(k + 0.5, (n - k).max(0.0) + 0.5, confidence)
}

/// The `q` quantile of Beta(a, b).
pub fn beta_quantile(a: f64, b: f64, q: f64) -> f64 {
    beta(a, b).inverse_cdf(q)
}

/// One-sided p-values of Fisher's exact test that `k1` terminations in `n1` recent jobs differ from
/// `k0` in `n0` older jobs: `(worse, better)` = P(X ≥ k1), P(X ≤ k1) for X, the recent terminations
/// given the total, hypergeometric under "no change". Exact and conservative: under no change, a test
/// at level α fires with probability at most α.
pub fn fisher_one_sided(k1: u64, n1: u64, k0: u64, n0: u64) -> (f64, f64) {
    let population = n1 + n0;
    let successes = k1 + k0;
    if n1 == 0 || n0 == 0 || successes == 0 || successes == population {
        return (1.0, 1.0);
    }
    hypergeometric_tails(k1, population, successes, n1)
}

/// `(P(X ≥ x), P(X ≤ x))` for X ~ Hypergeometric(population, successes, draws).
///
/// Sums the shorter tail only, term by term with the ratio of successive terms, from `x` away from the
/// mode until the terms stop mattering: a few standard deviations of cheap products instead of one
/// log-gamma triple per term over the whole support (a pool with 5,000 terminations would otherwise
/// cost thousands of them per test).
pub fn hypergeometric_tails(x: u64, population: u64, successes: u64, draws: u64) -> (f64, f64) {
    let (n, k, d) = (population, successes, draws);
    let lo = (d + k).saturating_sub(n);
    let hi = k.min(d);
    if x < lo {
        return (1.0, 0.0);
    }
    if x > hi {
        return (0.0, 1.0);
    }
    let ln_pmf = ln_binomial(k, x) + ln_binomial(n - k, d - x) - ln_binomial(n, d);
    let pmf = ln_pmf.exp();
    // Ratio P(X = y + 1) / P(X = y).
    let up = |y: u64| {
        ((k - y) as f64 * (d - y) as f64)
            / ((y + 1) as f64 * (n as f64 - k as f64 - d as f64 + y as f64 + 1.0))
    };
    let mean = d as f64 * k as f64 / n as f64;
    let mut tail = pmf;
    let mut term = pmf;
    if x as f64 >= mean {
        // Upper tail: terms decrease from x upwards.
        let mut y = x;
        while y < hi {
            term *= up(y);
            tail += term;
            y += 1;
            if term < tail * 1e-17 {
                break;
            }
        }
        let upper = tail.min(1.0);
        (upper, (1.0 - upper + pmf).clamp(0.0, 1.0))
    } else {
        // Lower tail: terms decrease from x downwards.
        let mut y = x;
        while y > lo {
            term /= up(y - 1);
            tail += term;
            y -= 1;
            if term < tail * 1e-17 {
                break;
            }
        }
        let lower = tail.min(1.0);
        ((1.0 - lower + pmf).clamp(0.0, 1.0), lower)
    }
}

/// Two-sided p-value of Fisher's exact test (twice the smaller tail, at most 1).
pub fn fisher_two_sided(k1: u64, n1: u64, k0: u64, n0: u64) -> f64 {
    let (w, b) = fisher_one_sided(k1, n1, k0, n0);
    (2.0 * w.min(b)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z_values() {
        assert!((z_for(0.95) - 1.959964).abs() < 1e-5);
        assert!((z_for(0.90) - 1.644854).abs() < 1e-5);
    }

    #[test]
    fn wilson_matches_the_textbook() {
        // 0 of 2: upper bound z²/(n+z²) = 3.8415/5.8415.
        let (lo, hi) = wilson_interval(0.0, 2.0, 1.959964);
        assert_eq!(lo, 0.0);
        assert!((hi - 0.657_61).abs() < 1e-4, "{hi}");
        // 50 of 5000 (1%).
        let (lo, hi) = wilson_interval(0.01, 5000.0, 1.959964);
        assert!((lo - 0.007_60).abs() < 1e-4, "{lo}");
        assert!((hi - 0.013_16).abs() < 1e-4, "{hi}");
    }

    #[test]
    fn jeffreys_posterior_is_sane() {
        let (lo, hi) = jeffreys_interval(50.0, 5000.0, 0.95);
        assert!(lo < 0.01 && hi > 0.01 && hi < 0.014, "{lo} {hi}");
        let (_, hi_small) = jeffreys_interval(0.0, 2.0, 0.95);
        assert!(hi_small > 0.4, "{hi_small}");
    }

    #[test]
    fn fisher_matches_hand_computed_tables() {
        // Recent 3 of 3 terminated, older 0 of 3: P(X ≥ 3) = C(3,3)C(3,0)/C(6,3) = 1/20.
        let (worse, better) = fisher_one_sided(3, 3, 0, 3);
        assert!((worse - 0.05).abs() < 1e-12, "{worse}");
        assert!((better - 1.0).abs() < 1e-12, "{better}");
        // The tea-tasting table 3/4 vs 1/4: P(X ≥ 3) = (16 + 1)/70.
        let (worse, _) = fisher_one_sided(3, 4, 1, 4);
        assert!((worse - 17.0 / 70.0).abs() < 1e-12, "{worse}");
        assert!((fisher_two_sided(3, 4, 1, 4) - 34.0 / 70.0).abs() < 1e-12);
        // No evidence either way.
        assert_eq!(fisher_one_sided(0, 0, 5, 10), (1.0, 1.0));
        assert_eq!(fisher_one_sided(0, 10, 0, 10), (1.0, 1.0));
    }

    #[test]
    fn hypergeometric_tails_match_the_full_sums() {
        use statrs::distribution::{DiscreteCDF, Hypergeometric};
        for (n, k, d) in [
            (20, 7, 5),
            (480, 10, 60),
            (5000, 400, 300),
            (60_000, 3_000, 1_500),
        ] {
            let h = Hypergeometric::new(n, k, d).unwrap();
            for x in [
                0,
                1,
                2,
                d * k / n,
                d * k / n + 3,
                (d * k / n) * 2 + 5,
                k.min(d),
            ] {
                let (upper, lower) = hypergeometric_tails(x, n, k, d);
                let want_upper = if x == 0 { 1.0 } else { h.sf(x - 1) };
                let want_lower = h.cdf(x);
                assert!(
                    (upper - want_upper).abs() < 1e-9,
                    "{n} {k} {d} {x}: {upper} vs {want_upper}"
                );
                assert!(
                    (lower - want_lower).abs() < 1e-9,
                    "{n} {k} {d} {x}: {lower} vs {want_lower}"
                );
            }
        }
    }
}
