//! Special functions the model evaluates thousands of times per fit, written for speed with the
//! accuracy the model needs (relative error below 10⁻¹⁰ where it matters), and checked against
//! `statrs` in the tests.
//!
//! * [`ln_gamma`]: Stirling's series above 8, shifted by the recurrence below; [`ln_rising`] the log of
//!   a rising factorial `ln Γ(x + m) − ln Γ(x)`, a product for small whole `m` (most pools' counts in a
//!   few hours are small, so most change-point likelihoods cost one `ln`).
//! * [`digamma`], [`trigamma`]: the mean and variance of `ln X` for `X ~ Beta`, which place the
//!   integration grids of [`crate::integrate`].
//! * [`expit`], [`logit`], [`normal_cdf`], and [`logit_normal_moments`] (the trapezoidal rule on the
//!   normal, accurate at any spread), used to turn the logit-normal prior into a Beta.

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
    // 1/y + 1/(2y²) + Σ B₂ₖ/y^{2k+1} = 1/y + 1/(2y²) + 1/(6y³) − 1/(30y⁵) + 1/(42y⁷) − 1/(30y⁹)
    // + 5/(66y¹¹) − 691/(2730y¹³); the next term, 7/(6y¹⁵), is 10⁻¹⁵ at 10 (relative 10⁻¹⁴). Without
    // the last two, the error at 10 was 7.6·10⁻¹³, relative 7·10⁻¹².
    let tail = r2
        * (1.0 / 30.0
            - r2 * (1.0 / 42.0 - r2 * (1.0 / 30.0 - r2 * (5.0 / 66.0 - r2 * 691.0 / 2730.0))));
    shift + r + 0.5 * r2 + r * r2 * (1.0 / 6.0 - tail)
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

/// Largest step of the trapezoidal rule in [`logit_normal_moments`], in standard deviations of `θ`,
/// and the step in units of `1/s` (see there).
const TRAPEZOID_STEP: f64 = 0.7;
const TRAPEZOID_POLE_STEP: f64 = 0.5;

/// Mean and variance of `expit(θ)` for `θ ~ N(m, s²)` (the logit-normal's first two moments),
/// with relative error below 10⁻¹⁰ for any spread the hierarchy can fit.
///
/// By the trapezoidal rule in `z = (θ − m)/s` on `[−9, 9 + c]`, `c = min(2s, max(0, −m/s) + 1)`.
/// For an integrand analytic in a strip `|Im z| < d` that decays on the real line, the rule's error
/// falls like `e^{−2π d/h}`: `φ(z) expit(m + s z)ᵏ` has its nearest poles at `Im z = ±π/s` (where
/// `1 + e^{−θ} = 0`), and `φ` alone limits `d` to about `2π/h`. So `h = min(0.7, 0.5/s)` gives
/// `e^{−2π²/(0.5)} ≈ 10⁻¹⁷` from the poles and `e^{−2π²/0.7²} ≈ 10⁻¹⁷` from `φ`, at every `s`:
/// the error does not grow with the spread, unlike a fixed Gauss–Hermite rule, whose 16 points are
/// polynomial-exact but resolve `expit`'s step (width `1/s` in `z`) worse and worse as `s` grows (the
/// variance 0.4 % off at `s = 2.5`, 3 % at `s = 4`, 22 % at `s = 5`). The range: where `expit ≈ e^θ` the `k`-th moment's integrand is
/// `∝ φ(z − k s)`, centred at `k s` until `θ` crosses 0 at `z = −m/s`; 9 standard deviations beyond
/// that centre leave out `10⁻¹⁹`. About 26 points at `s ≤ 0.7`, 40 at `s = 1`, 200 at `s = 4`.
pub fn logit_normal_moments(m: f64, s: f64) -> (f64, f64) {
    let centre = expit(m);
    if s <= 0.0 {
        return (centre, 0.0);
    }
    let shift = (2.0 * s).min((-m / s).max(0.0) + 1.0);
    let (lo, hi) = (-9.0, 9.0 + shift);
    let cells = ((hi - lo) / TRAPEZOID_STEP.min(TRAPEZOID_POLE_STEP / s)).ceil();
    let h = (hi - lo) / cells;
    let norm = h / (2.0 * std::f64::consts::PI).sqrt();
    // Moments of q = p − expit(m), so that the variance of a nearly fixed p (small s) is not a
    // difference of two nearly equal numbers.
    let (mut m1, mut m2) = (0.0, 0.0);
    // The end weights (½) multiply φ(−9) ≈ 10⁻¹⁸: left at 1. The normal's weights by their ratios,
    // φ(z + h)/φ(z) = e^{−z h − h²/2}, each ratio e^{−h²} times the last: one exp per point (expit's).
    let mut w = norm * (-0.5 * lo * lo).exp();
    let mut ratio = (-lo * h - 0.5 * h * h).exp();
    let decay = (-h * h).exp();
    for j in 0..=cells as usize {
        let z = lo + h * j as f64;
        let q = expit(m + s * z) - centre;
        m1 += w * q;
        m2 += w * q * q;
        w *= ratio;
        ratio *= decay;
    }
    (centre + m1, (m2 - m1 * m1).max(0.0))
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
        // Known values: ψ'(1) = π²/6, ψ'(½) = π²/2, ψ'(10) = π²/6 − Σ_{k<10} 1/k², and ψ'(0.1), ψ'(300)
        // (mpmath, 30 digits): below 10, at 10, and far above the series' switch.
        let pi2 = std::f64::consts::PI.powi(2);
        let below_ten: f64 = (1..10).map(|k| 1.0 / (k * k) as f64).sum();
        for (x, want) in [
            (1.0, pi2 / 6.0),
            (0.5, pi2 / 2.0),
            (10.0, pi2 / 6.0 - below_ten),
            (0.1, 101.433_299_150_792_75),
            (300.0, 0.003_338_895_061_714_677_7),
        ] {
            let got = trigamma(x);
            assert!(
                (got - want).abs() < 1e-12 * want,
                "ψ'({x}) = {got}, not {want}"
            );
        }
        assert!((trigamma(10.0) - 0.105_166_335_681_685_7).abs() < 1e-13);
    }

    #[test]
    fn logit_normal_moments_match_high_precision_integration() {
        // (m, s, mean, variance) by mpmath's adaptive quadrature at 40 digits, split at the step of
        // expit (z = −m/s ± k/s) and at the moments' centres (s, 2s): spreads from 0.001 to 8, far
        // beyond what the 16-point Gauss–Hermite rule this replaces could do (its variance was 0.4 % off
        // at (−6, 2.5), 3 % at (−3.2, 4), 22 % at (−20, 5)).
        let cases: [(f64, f64, f64, f64); 12] = [
            (
                -3.2,
                0.3,
                0.040_745_354_840_844_68,
                0.000_141_705_071_656_915_75,
            ),
            (
                -3.0,
                1.5,
                0.096_610_883_152_721_84,
                0.016_215_590_280_766_38,
            ),
            (0.0, 1.0, 0.5, 0.043_379_035_858_092_96),
            (
                -6.0,
                2.5,
                0.026_361_511_034_858_08,
                0.006_674_293_006_449_165,
            ),
            (
                -3.2,
                4.0,
                0.232_403_113_083_048_25,
                0.108_715_898_328_985_37,
            ),
            (-3.2, 6.0, 0.304_683_654_696_741_2, 0.155_953_731_204_971_2),
            (
                -12.0,
                0.05,
                6.151_859_480_596_191e-6,
                9.473_063_169_473_666e-14,
            ),
            (
                -12.0,
                3.0,
                0.000_445_572_657_737_663,
                4.334_834_653_407_155e-5,
            ),
            (
                -1.0,
                0.001,
                0.268_941_466_798_853_5,
                3.865_624_947_507_98e-8,
            ),
            (1.5, 2.0, 0.715_005_884_813_969_1, 0.075_784_817_366_411_62),
            (
                -20.0,
                5.0,
                9.583_313_454_977_762e-5,
                2.663_539_541_834_368e-5,
            ),
            (
                -3.2,
                8.0,
                0.348_184_425_554_272_35,
                0.181_870_768_364_226_17,
            ),
        ];
        for (m, s, want_mean, want_var) in cases {
            let (mean, var) = logit_normal_moments(m, s);
            assert!(
                (mean - want_mean).abs() <= 1e-10 * want_mean,
                "{m} {s}: mean {mean} vs {want_mean}"
            );
            assert!(
                (var - want_var).abs() <= 1e-10 * want_var,
                "{m} {s}: variance {var} vs {want_var}"
            );
        }
        // A nearly fixed p: the delta method, E p ≈ p + p (1 − p)(1 − 2p) s²/2 and
        // Var ≈ (p (1 − p) s)², relative error O(s²) (down to s ≈ 10⁻⁸, where rounding m + s z costs
        // more; a prior that tight is clamped at strength 10⁵ anyway).
        for s in [1e-4, 1e-6] {
            let (mean, var) = logit_normal_moments(-3.0, s);
            let p = expit(-3.0);
            let d = p * (1.0 - p);
            let want_mean = p + 0.5 * d * (1.0 - 2.0 * p) * s * s;
            assert!(
                (mean - want_mean).abs() < 1e-14 * p,
                "{s}: {mean} vs {want_mean}"
            );
            let want = (d * s).powi(2);
            assert!((var - want).abs() < 1e-6 * want, "{s}: {var} vs {want}");
        }
        assert_eq!(logit_normal_moments(-3.0, 0.0), (expit(-3.0), 0.0));
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
