//! Special functions the model evaluates thousands of times per fit, written for speed with the
//! accuracy the model needs (relative error below 10⁻¹⁰ where it matters), and checked against
//! `statrs` in the tests.
//!
//! * [`ln_gamma`]: Stirling's series above 8, shifted by the recurrence below; [`ln_rising`] the log of
//!   a rising factorial `ln Γ(x + m) − ln Γ(x)`, a product for small whole `m` (most pools' counts in a
//!   few hours are small, so most change-point likelihoods cost one `ln`).
//! * [`digamma`], [`trigamma`]: the mean and variance of `ln X` for `X ~ Beta`, which place the
//!   integration grids of [`crate::integrate`].
//! * [`expit`], [`logit`], [`normal_cdf`], and Gauss–Hermite nodes for expectations under a normal
//!   ([`normal_expectation`]), used to turn the logit-normal prior into a Beta.

use std::sync::OnceLock;

/// `ln(2π)/2`.
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// `ln Γ(x)` for `x > 0`.
///
/// For `x ≥ 8`: Stirling's series `(x − ½) ln x − x + ½ ln 2π + 1/(12x) − 1/(360x³) + 1/(1260x⁵)
/// − 1/(1680x⁷)`, whose first omitted term is below 10⁻¹¹ at 8. Below, `Γ(x) = Γ(x + m)/(x(x+1)…(x+m−1))`
/// with the product taken in one `ln`.
pub fn ln_gamma(x: f64) -> f64 {
    if x >= 8.0 {
        return stirling(x);
    }
    let mut product = 1.0;
    let mut y = x;
    while y < 8.0 {
        product *= y;
        y += 1.0;
    }
    stirling(y) - product.ln()
}

fn stirling(x: f64) -> f64 {
    let r = 1.0 / x;
    let r2 = r * r;
    let series = r * (1.0 / 12.0 - r2 * (1.0 / 360.0 - r2 * (1.0 / 1260.0 - r2 / 1680.0)));
    (x - 0.5) * x.ln() - x + HALF_LN_2PI + series
}

/// `ln Γ(x + m) − ln Γ(x)` (the log of the rising factorial `x (x+1) … (x+m−1)`), `x > 0`, `m ≥ 0`.
/// `ln_gamma_x` is `ln Γ(x)`, passed in so a caller that needs it often computes it once.
pub fn ln_rising(x: f64, m: f64, ln_gamma_x: f64) -> f64 {
    if m <= 0.0 {
        return 0.0;
    }
    if m <= 8.0 && m.fract() == 0.0 {
        let mut product = x;
        let mut j = 1.0;
        while j < m {
            product *= x + j;
            j += 1.0;
        }
        return product.ln();
    }
    ln_gamma(x + m) - ln_gamma_x
}

/// `ln B(a, b)`.
pub fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// The digamma function `ψ(x) = d ln Γ(x)/dx`, `x > 0`.
pub fn digamma(x: f64) -> f64 {
    let mut y = x;
    let mut shift = 0.0;
    while y < 8.0 {
        shift -= 1.0 / y;
        y += 1.0;
    }
    let r = 1.0 / y;
    let r2 = r * r;
    shift + y.ln() - 0.5 * r - r2 * (1.0 / 12.0 - r2 * (1.0 / 120.0 - r2 / 252.0))
}

/// The trigamma function `ψ'(x)`, `x > 0`.
pub fn trigamma(x: f64) -> f64 {
    let mut y = x;
    let mut shift = 0.0;
    while y < 10.0 {
        shift += 1.0 / (y * y);
        y += 1.0;
    }
    let r = 1.0 / y;
    let r2 = r * r;
    // 1/y + 1/(2y²) + 1/(6y³) − 1/(30y⁵) + 1/(42y⁷) − 1/(30y⁹); the next term is below 10⁻¹² at 10.
    shift + r + 0.5 * r2 + r * r2 * (1.0 / 6.0 - r2 * (1.0 / 30.0 - r2 * (1.0 / 42.0 - r2 / 30.0)))
}

/// `1 / (1 + e^−x)`.
pub fn expit(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `ln(p / (1 − p))`.
pub fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// The standard normal CDF `Φ(x)`.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * statrs::function::erf::erfc(-x / std::f64::consts::SQRT_2)
}

/// Nodes and weights of the Gauss–Hermite rule used by [`normal_expectation`].
pub const HERMITE_POINTS: usize = 16;

/// `(z_j, w_j)` with `Σ w_j g(z_j) ≈ E[g(Z)]`, `Z ~ N(0, 1)`: exact for polynomials up to degree 31;
/// for the logit-normal's moments, relative error below 10⁻⁶ up to a logit sd of 1.5 and 10⁻³ at 2.5.
/// The physicists' nodes (weight `e^{−x²}`) by Newton's method on the Hermite recurrence (Golub's
/// classic `gauher`), rescaled to the standard normal.
pub fn hermite_rule() -> &'static [(f64, f64); HERMITE_POINTS] {
    static RULE: OnceLock<[(f64, f64); HERMITE_POINTS]> = OnceLock::new();
    RULE.get_or_init(|| {
        let n = HERMITE_POINTS;
        let mut out = [(0.0, 0.0); HERMITE_POINTS];
        let pim4 = std::f64::consts::PI.powf(-0.25);
        let m = n.div_ceil(2);
        let mut z = 0.0f64;
        for i in 0..m {
            z = match i {
                0 => {
                    (2.0 * n as f64 + 1.0).sqrt()
                        - 1.855_75 * (2.0 * n as f64 + 1.0).powf(-1.0 / 6.0)
                }
                1 => z - 1.14 * (n as f64).powf(0.426) / z,
                2 => 1.86 * z - 0.86 * out[0].0,
                3 => 1.91 * z - 0.91 * out[1].0,
                _ => 2.0 * z - out[i - 2].0,
            };
            let mut pp = 0.0;
            for _ in 0..100 {
                let mut p1 = pim4;
                let mut p2 = 0.0;
                for j in 1..=n {
                    let p3 = p2;
                    p2 = p1;
                    p1 = z * (2.0 / j as f64).sqrt() * p2
                        - ((j as f64 - 1.0) / j as f64).sqrt() * p3;
                }
                pp = (2.0 * n as f64).sqrt() * p2;
                let z1 = z;
                z = z1 - p1 / pp;
                if (z - z1).abs() <= 1e-15 {
                    break;
                }
            }
            let w = 2.0 / (pp * pp);
            out[i] = (z, w);
            out[n - 1 - i] = (-z, w);
        }
        let sqrt_pi = std::f64::consts::PI.sqrt();
        for node in out.iter_mut() {
            *node = (node.0 * std::f64::consts::SQRT_2, node.1 / sqrt_pi);
        }
        out
    })
}

/// `E[g(m + s Z)]`, `Z ~ N(0, 1)`, by the Gauss–Hermite rule.
pub fn normal_expectation(m: f64, s: f64, mut g: impl FnMut(f64) -> f64) -> f64 {
    hermite_rule().iter().map(|&(z, w)| w * g(m + s * z)).sum()
}

/// Mean and variance of `expit(θ)` for `θ ~ N(m, s²)` (the logit-normal's first two moments).
pub fn logit_normal_moments(m: f64, s: f64) -> (f64, f64) {
    let (mut m1, mut m2) = (0.0, 0.0);
    for &(z, w) in hermite_rule() {
        let p = expit(m + s * z);
        m1 += w * p;
        m2 += w * p * p;
    }
    (m1, (m2 - m1 * m1).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use statrs::function::gamma as sg;

    #[test]
    fn ln_gamma_matches_statrs() {
        for &x in &[
            1e-6, 0.01, 0.3, 0.5, 1.0, 1.5, 2.0, 3.7, 7.99, 8.0, 8.01, 25.5, 1e3, 1e6,
        ] {
            let want = sg::ln_gamma(x);
            let got = ln_gamma(x);
            assert!(
                (got - want).abs() <= 1e-10 * want.abs().max(1.0),
                "{x}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn rising_factorials_match_gamma_differences() {
        for &x in &[0.05, 0.7, 3.0, 40.0] {
            for &m in &[0.0, 1.0, 2.0, 5.0, 8.0, 9.0, 120.0, 3.5] {
                let want = sg::ln_gamma(x + m) - sg::ln_gamma(x);
                let got = ln_rising(x, m, ln_gamma(x));
                assert!((got - want).abs() < 1e-9 * want.abs().max(1.0), "{x} {m}");
            }
        }
    }

    #[test]
    fn digamma_and_trigamma_match_statrs_and_differences() {
        for &x in &[0.1, 0.5, 1.0, 2.5, 9.0, 300.0] {
            assert!((digamma(x) - sg::digamma(x)).abs() < 1e-9, "{x}");
            // ψ'(x) by a central difference of ψ.
            let h = 1e-5 * x.max(1.0);
            let numeric = (sg::digamma(x + h) - sg::digamma(x - h)) / (2.0 * h);
            assert!((trigamma(x) - numeric).abs() < 1e-5 * numeric, "{x}");
        }
        // ψ'(1) = π²/6.
        assert!((trigamma(1.0) - std::f64::consts::PI.powi(2) / 6.0).abs() < 1e-10);
    }

    #[test]
    fn hermite_rule_integrates_normal_moments() {
        let e = |k: i32| normal_expectation(0.0, 1.0, |z| z.powi(k));
        assert!((e(0) - 1.0).abs() < 1e-12);
        assert!(e(1).abs() < 1e-12);
        assert!((e(2) - 1.0).abs() < 1e-12);
        assert!((e(4) - 3.0).abs() < 1e-11);
        assert!((e(6) - 15.0).abs() < 1e-9);
        // E[e^{sZ}] = e^{s²/2}.
        let got = normal_expectation(0.3, 0.5, f64::exp);
        assert!((got - (0.3f64 + 0.125).exp()).abs() < 1e-10);
    }

    #[test]
    fn logit_normal_moments_match_brute_force() {
        for &(m, s) in &[(-3.2, 0.3), (-3.0, 1.5), (0.0, 1.0), (-6.0, 2.5)] {
            let (mean, var) = logit_normal_moments(m, s);
            // Midpoint rule on ±10 sd, 200,000 cells.
            let cells = 200_000;
            let (mut m1, mut m2) = (0.0, 0.0);
            let width = 20.0 / cells as f64;
            for j in 0..cells {
                let z = -10.0 + width * (j as f64 + 0.5);
                let d = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt() * width;
                let p = expit(m + s * z);
                m1 += d * p;
                m2 += d * p * p;
            }
            // 16 nodes: exact to 10⁻⁶ for the spreads the hierarchy fits (≤ 1.5), 10⁻³ at 2.5.
            let tol = if s <= 1.5 { 1e-6 } else { 1e-3 };
            assert!((mean - m1).abs() < tol * m1, "{m} {s}: {mean} vs {m1}");
            assert!(
                (var - (m2 - m1 * m1)).abs() < 100.0 * tol * (m2 - m1 * m1),
                "{m} {s}"
            );
        }
    }

    #[test]
    fn expit_logit_and_phi() {
        assert!((expit(logit(0.037)) - 0.037).abs() < 1e-15);
        assert_eq!(expit(-800.0), 0.0);
        assert_eq!(expit(800.0), 1.0);
        assert!((normal_cdf(1.959_963_985) - 0.975).abs() < 1e-9);
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-15);
    }
}
