//! How sure the pick is: the posterior probability that it is the best candidate, and its expected
//! loss against the best, by numeric integration that stays exact when a posterior is spiked at 0.
//!
//! With independent Beta posteriors, the pick's `F₀`, `f₀` and the rivals' `F_j`, and
//! `G(x) = Π_j (1 − F_j(x))` the probability that every rival is above `x`:
//!
//! ```text
//! probability_best = ∫ f₀(x) G(x) dx
//! expected_regret  = E[p₀ − min_j p_j] = E[(p₀ − min_{j≥1} p_j)⁺] = ∫ (1 − F₀(x)) (1 − G(x)) dx
//! ```
//!
//! Both are integrated in `z = ln x`, where every Beta is smooth: the density of `ln X`,
//! `x^a (1 − x)^{b−1}/B(a, b)`, rises like `e^{a z}` on the left (even for `a < 1`, where the density of
//! `X` is infinite at 0 and an evenly spaced grid in `x` puts half the mass in its first cell: the
//! previous integration reported 0.187 where the exact value is 0.408). Each distribution gets its
//! own grid ([`Table`]), walked out from its log-scale mean with steps set by the density's local
//! log-slope and curvature (a quarter of the sd where it is normal-like, `1/(4a)` in the far left tail,
//! fine on a skewed Beta's steep side) and shrinking towards `x = 1`, where `(1 − x)^{b−1}` changes on
//! the scale `(1 − x)/x` in `z` (and is infinite at 1 when `b < 1`, as for a pool with no jobs under a
//! weak prior), until a proven bound on the mass beyond is below 10⁻¹². Its CDF at the nodes is exact
//! in both tails, by the incomplete beta's power series (`x ≤ 0.1`, resp. `1 − x ≤ 0.1`, within the
//! series' reach), and in between the integral of the cubic through the density and its slope at each
//! end of a cell, scaled to meet the exact upper value; cubic Hermite interpolation between nodes
//! (value and density known at each), the series beyond them. The two integrals run over the union of
//! the pick's and the relevant rivals' nodes (thinned where several overlap, and no cell wider than
//! 0.3 above `x = e^{−25}`, for the regret's factor `x`), by Simpson's rule; rivals whose lower end lies
//! above the pick's upper end cannot matter and are skipped. Accuracy: a few 10⁻⁶ at worst against
//! brute-force and 20-digit adaptive integration in the tests, `a < 1` and `b < 1` included (the
//! previous tables, one grid of at most 0.3 from the mean ± 10 sd and growing steps into the left
//! tail, were 2·10⁻³ off in relative terms there and 0.96 off for `Beta(0.02, 0.48)`).

use crate::special::{digamma, ln_beta};

/// Mass left out at each end of a distribution's grid (a proven bound, see [`Table::new`]).
const TAIL: f64 = 1e-12;
/// Largest cell of the integrals' common grid above `x = e^{−25}`, in `ln x`.
const MAX_STEP: f64 = 0.3;
/// Below this `ln x`, the regret's integrand (at most `x`) is negligible and cells may be wide.
const REGRET_LO: f64 = -25.0;
/// Most nodes on each side of a distribution's centre (a safeguard; the rules below need far fewer).
const MAX_NODES: usize = 500;
/// Steps: at most `RATE_STEP/|λ|`, `λ = d ln f/dz` the density's local log-slope (relaxed by
/// `(RATE_MASS/m)^{1/4}` where the mass beyond, `m ≈ f/|λ|`, is below `RATE_MASS`), and
/// `CURVATURE_STEP/√κ`, `κ = −d² ln f/dz²` (a quarter of the sd where the density is normal-like),
/// and `NEAR_ONE_STEP (1 − x)/x` near `x = 1`, the scale on which `(1 − e^z)^{b−1}` varies in `z`.
const RATE_STEP: f64 = 0.25;
const RATE_MASS: f64 = 1e-4;
const CURVATURE_STEP: f64 = 0.25;
const NEAR_ONE_STEP: f64 = 0.3;
/// Largest `x` (and `1 − x`) where a tail's power series is used ([`lower_series`]).
const SERIES_X: f64 = 0.1;

/// One Beta's CDF on its own grid in `z = ln x`.
#[derive(Debug, Clone)]
pub struct Table {
    a: f64,
    b: f64,
    /// `−ln B(a, b)`, the density's constant.
    ln_density_at: f64,
    /// At or below this `z`, the CDF is the lower tail's power series, exact.
    series_lo: f64,
    /// At or above this `z`, `1 −` the CDF is the upper tail's power series, exact.
    series_hi: f64,
    /// `d ln f/dz` at the lowest node, for the CDF below the grid (when the series does not hold).
    tail_rate: f64,
    z: Vec<f64>,
    /// CDF at the nodes.
    cdf: Vec<f64>,
    /// `dF/dz` at the nodes.
    slope: Vec<f64>,
    /// Step of the grid at each node (to the next).
    step: Vec<f64>,
}

fn ln_one_minus_exp(z: f64) -> f64 {
    // ln(1 − e^z), z < 0, accurate at both ends.
    if z < -std::f64::consts::LN_2 {
        (-z.exp()).ln_1p()
    } else {
        (-z.exp_m1()).ln()
    }
}

/// `Σ_n (1 − b)_n/n! · xⁿ/(a + n)`, so that `∫₀ˣ t^{a−1}(1 − t)^{b−1} dt = x^a ·` this: the
/// incomplete beta integral's power series, from `(1 − t)^{b−1} = Σ (1 − b)_n tⁿ/n!`. With `x ≤ 0.1`
/// and `(b − 1) x ≤ 1` the terms fall at least like `1/n!` and then like `0.1ⁿ`: a few dozen terms at
/// most, without cancellation worth mentioning. By symmetry (`t → 1 − t`),
/// `∫ₓ¹ t^{a−1}(1 − t)^{b−1} dt = (1 − x)^b · lower_series(b, a, 1 − x)`.
fn lower_series(a: f64, b: f64, x: f64) -> f64 {
    let mut c = 1.0;
    let mut sum = 1.0 / a;
    let mut n = 1.0;
    while n < 400.0 {
        c *= (n - b) / n * x;
        let term = c / (a + n);
        sum += term;
        if term.abs() <= 1e-17 * sum.abs() {
            break;
        }
        n += 1.0;
    }
    sum
}

/// A point of a grid: `z = ln x`, `x`, `1 − x`, `x/(1 − x)` and the density of `ln X`.
#[derive(Clone, Copy)]
struct Point {
    z: f64,
    x: f64,
    y: f64,
    odds: f64,
    f: f64,
}

/// Largest `x` where the series of `Beta(a, b)`'s lower tail holds: `x ≤ 0.1`, `(b − 1) x ≤ 1`.
fn series_reach(b: f64) -> f64 {
    if b > 1.0 {
        SERIES_X.min(1.0 / (b - 1.0))
    } else {
        SERIES_X
    }
}

/// The nodes never go below `z = −700` (`x = e^{−700}`) nor above `z = −10⁻¹²` (`x = 1 − 10⁻¹²`).
const Z_MIN: f64 = -700.0;
const Z_MAX: f64 = -1e-12;

/// The density of `z = ln X`, `X ~ Beta(a, b)`: `ln f = a z + (b − 1) ln(1 − e^z) + c`, with
/// `c = −ln B(a, b)`. What [`Table::new`] places its nodes on and integrates; the rules are in its
/// doc.
struct LogDensity {
    a: f64,
    b: f64,
    c: f64,
}

impl LogDensity {
    /// At `z`: `x`, `1 − x`, the odds `x/(1 − x)` and `f(z)`.
    fn point(&self, z: f64) -> Point {
        let (a, b, c) = (self.a, self.b, self.c);
        let x = z.exp();
        // 1 − x directly where it cannot cancel, else by expm1.
        let (y, ln_y) = if x < 0.5 {
            (1.0 - x, (-x).ln_1p())
        } else {
            let y = -z.exp_m1();
            (y, y.ln())
        };
        Point {
            z,
            x,
            y,
            odds: x / y,
            f: (a * z + (b - 1.0) * ln_y + c).exp(),
        }
    }

    /// The step rule at a point: the longest step the interpolation error allows there.
    fn step_at(&self, p: &Point) -> f64 {
        let (a, b) = (self.a, self.b);
        let o = p.odds;
        let rate = (a - (b - 1.0) * o).abs();
        let curvature = (b - 1.0).abs() * o * (1.0 + o);
        let mut h = NEAR_ONE_STEP * p.y / p.x;
        if rate * h > RATE_STEP {
            // Relaxed where the tail beyond (≈ f/|λ|) holds less than RATE_MASS: the cubic's
            // error in a cell is about (|λ| h)³/384 of the cell's mass.
            let beyond = p.f / rate;
            let relax = if beyond < RATE_MASS {
                (RATE_MASS / beyond).sqrt().sqrt().min(40.0)
            } else {
                1.0
            };
            h = h.min(RATE_STEP * relax / rate);
        }
        if curvature * h * h > CURVATURE_STEP * CURVATURE_STEP {
            h = CURVATURE_STEP / curvature.sqrt();
        }
        h
    }

    /// A bound on the mass below (`dir < 0`) or above a point, where a walk may stop. Below:
    /// `x^a/(a B)` (times `(1 − x)^{b−1}` if `b < 1`: that is `f/a`); above: `(1 − x)^b/(b B)` (times
    /// `x^{a−1}` if `a < 1`); for `b ≥ 1` (log-concave) `f/|λ|` where the density falls away from the
    /// point.
    fn mass_beyond(&self, p: &Point, dir: f64) -> f64 {
        let (a, b) = (self.a, self.b);
        let l = a - (b - 1.0) * p.odds;
        if b >= 1.0 && l * dir < 0.0 {
            return p.f / l.abs();
        }
        if dir < 0.0 {
            if b < 1.0 {
                p.f / a
            } else {
                p.f / a * p.y.powf(1.0 - b)
            }
        } else {
            p.f * p.y / b / if a < 1.0 { p.x } else { p.x.powf(a) }
        }
    }

    /// The nodes, in order: walks down and up from the log-scale mean `ψ(a) − ψ(a + b)`.
    fn nodes(&self) -> Vec<Point> {
        let centre = self.point((digamma(self.a) - digamma(self.a + self.b)).clamp(Z_MIN, -1e-6));
        let below = self.walk(centre, -1.0);
        let above = self.walk(centre, 1.0);
        below
            .into_iter()
            .rev()
            .chain(std::iter::once(centre))
            .chain(above)
            .collect()
    }

    /// Walk from the centre until the mass beyond is below TAIL (or x = e^{−700}, 1 − 10⁻¹²). Each
    /// step is one the rule allows at both of its ends: shortened until the far end's own step is
    /// no shorter (a step of 25 from x = e^{−50} must not land by 0).
    fn walk(&self, centre: Point, dir: f64) -> Vec<Point> {
        let mut out = vec![];
        let mut at = centre;
        while out.len() < MAX_NODES
            && at.z > Z_MIN
            && at.z < Z_MAX
            && self.mass_beyond(&at, dir) > TAIL
        {
            let mut h = self.step_at(&at);
            let mut next;
            let mut tries = 0;
            loop {
                next = self.point((at.z + dir * h).clamp(Z_MIN, Z_MAX));
                let far = self.step_at(&next);
                tries += 1;
                if far >= h || tries == 60 {
                    break;
                }
                h = far.max(0.5 * h);
            }
            out.push(next);
            at = next;
        }
        out
    }

    /// The CDF at each node, unclamped: exact in both tails where the incomplete beta's series holds
    /// (below `series_lo`, above `series_hi`), else, in the lower tail, the log-concave bound
    /// `f/λ ≤ TAIL` (`tail_rate`: `λ` at the lowest node); in between, integrated cell by cell and
    /// scaled to meet the exact value at the upper end (or 1).
    fn cdf_at_nodes(
        &self,
        points: &[Point],
        tail_rate: f64,
        series_lo: f64,
        series_hi: f64,
    ) -> Vec<f64> {
        let (a, b, c) = (self.a, self.b, self.c);
        let n = points.len();
        let lower = |p: &Point| (a * p.z + c).exp() * lower_series(a, b, p.x);
        let upper = |p: &Point| (b * p.y.ln() + c).exp() * lower_series(b, a, p.y);
        let mut cdf = vec![0.0; n];
        // The lower tail: the series where it holds (exact), else the log-concave bound f/λ ≤ TAIL.
        let exact_lo = points.iter().rposition(|p| p.z <= series_lo);
        let start = exact_lo.unwrap_or(0);
        for (k, p) in points.iter().enumerate().take(start + 1) {
            cdf[k] = if p.z <= series_lo {
                lower(p)
            } else if tail_rate > 0.0 {
                (p.f / tail_rate).min(TAIL)
            } else {
                0.0
            };
        }
        // The upper tail: the series from the first node in its reach.
        let exact_hi = points.iter().position(|p| p.z >= series_hi);
        let end = exact_hi.unwrap_or(n - 1);
        // In between: each cell's integral of the cubic through the density and its slope `λ f` at
        // both ends, `h (f₀ + f₁)/2 + h² (λ₀ f₀ − λ₁ f₁)/12` (Simpson's order without a midpoint),
        // scaled to meet the exact value at the upper end (or 1).
        for k in start + 1..=end {
            let (p, q) = (&points[k - 1], &points[k]);
            let h = q.z - p.z;
            let (dp, dq) = (
                (a - (b - 1.0) * p.odds) * p.f,
                (a - (b - 1.0) * q.odds) * q.f,
            );
            cdf[k] = cdf[k - 1] + h * (p.f + q.f) / 2.0 + h * h * (dp - dq) / 12.0;
        }
        let target = match exact_hi {
            Some(k) => 1.0 - upper(&points[k]),
            None => 1.0,
        };
        let (from, got) = (cdf[start], cdf[end]);
        if end > start && got > from {
            let scale = (target - from) / (got - from);
            for f in &mut cdf[start + 1..end] {
                *f = from + (*f - from) * scale;
            }
        }
        cdf[end] = target;
        for k in end + 1..n {
            cdf[k] = 1.0 - upper(&points[k]);
        }
        cdf
    }
}

impl Table {
    /// The grid and CDF of `Beta(a, b)`.
    ///
    /// With `f` the density of `z = ln X`, `ln f = a z + (b − 1) ln(1 − e^z) − ln B(a, b)`, its slope
    /// `λ = a − (b − 1) x/(1 − x)` and curvature `κ = (b − 1) x/(1 − x)²`, the grid walks down and up
    /// from the log-scale mean `ψ(a) − ψ(a + b)` with steps `min(0.25/|λ|, 0.25/√κ, 0.3 (1 − x)/x)`
    /// (the first relaxed by `(10⁻⁴/m)^{1/4}` where the mass beyond, `m ≈ f/|λ|`, is below 10⁻⁴, so
    /// each cell's interpolation error, about `(|λ| h)⁴/384` of that mass, stays near 10⁻⁹), each step
    /// shortened until the rule allows it at both ends: a quarter of the sd where the density is
    /// normal-like, `1/(4a)` in the far left tail (`f ≈ e^{a z}`, also for `a < 1`), fine on a skewed
    /// Beta's steep side (`a = 0.1, b = 500`: sd 10, but `λ ≈ −9` at `x = 0.02`), and shrinking
    /// geometrically towards `x = 1` (for `b < 1`, `f` is infinite there). Each walk stops where a bound
    /// on the mass beyond falls below `TAIL`: for `b ≥ 1` (`f` log-concave) `f/|λ|` where the density
    /// falls away from the point; else `x^a (1 − x)^{min(b−1, 0)}/(a B)` on the left and
    /// `(1 − x)^b x^{min(a−1, 0)}/(b B)` on the right; or at `x = e^{−700}`, `1 − 10⁻¹²`. The CDF at the
    /// nodes is exact in both tails (the incomplete beta's power series, for `x ≤ 0.1` and `1 − x ≤ 0.1`
    /// within the series' reach) and in between the integral of the cubic through `f` and `f' = λ f`
    /// at each end of a cell, `h (f₀ + f₁)/2 + h² (f'₀ − f'₁)/12`, scaled to meet the exact value at the
    /// upper end (or 1).
    pub fn new(a: f64, b: f64) -> Self {
        let a = a.max(1e-6);
        let b = b.max(1e-6);
        let density = LogDensity {
            a,
            b,
            c: -ln_beta(a, b),
        };
        let series_lo = series_reach(b).ln();
        let series_hi = (-series_reach(a)).ln_1p();
        let points = density.nodes();
        let n = points.len();
        let z: Vec<f64> = points.iter().map(|p| p.z).collect();
        let dens: Vec<f64> = points.iter().map(|p| p.f).collect();
        let tail_rate = a - (b - 1.0) * points[0].odds;
        let cdf = density.cdf_at_nodes(&points, tail_rate, series_lo, series_hi);
        let step = (0..n)
            .map(|k| {
                if k + 1 < n {
                    z[k + 1] - z[k]
                } else {
                    z[k] - z[k.saturating_sub(1)]
                }
            })
            .collect();
        Self {
            a,
            b,
            ln_density_at: density.c,
            series_lo,
            series_hi,
            tail_rate,
            cdf: cdf.iter().map(|f| f.clamp(0.0, 1.0)).collect(),
            slope: dens,
            step,
            z,
        }
    }

    /// Lowest node.
    pub fn lo(&self) -> f64 {
        self.z[0]
    }

    /// Highest node.
    pub fn hi(&self) -> f64 {
        self.z[self.z.len() - 1]
    }

    /// Density of `ln X` at `z`.
    pub fn density(&self, z: f64) -> f64 {
        if z >= 0.0 {
            return 0.0;
        }
        (self.a * z + (self.b - 1.0) * ln_one_minus_exp(z) + self.ln_density_at).exp()
    }

    /// `P(X ≤ e^z)`, with `cursor` the node search's position (calls with increasing `z` are O(1)).
    /// Cubic Hermite between the nodes (value and density known at each); beyond the grid, exact by
    /// the power series where it holds (else the tail the grid leaves out, below 10⁻¹²).
    pub fn cdf(&self, z: f64, cursor: &mut usize) -> f64 {
        let n = self.z.len();
        if z <= self.z[0] {
            if z <= self.series_lo {
                let x = z.exp();
                if x <= 0.0 {
                    return 0.0;
                }
                let lower =
                    (self.a * z + self.ln_density_at).exp() * lower_series(self.a, self.b, x);
                return lower.min(1.0);
            }
            return self.cdf[0] * (self.tail_rate.max(0.0) * (z - self.z[0])).exp();
        }
        if z >= self.z[n - 1] {
            if z >= 0.0 {
                return 1.0;
            }
            if z >= self.series_hi {
                let y = -z.exp_m1();
                let upper =
                    (self.b * y.ln() + self.ln_density_at).exp() * lower_series(self.b, self.a, y);
                return (1.0 - upper).max(0.0);
            }
            return 1.0;
        }
        let mut k = (*cursor).min(n - 2);
        if self.z[k] > z {
            k = 0;
        }
        while self.z[k + 1] < z {
            k += 1;
        }
        *cursor = k;
        let h = self.z[k + 1] - self.z[k];
        let t = (z - self.z[k]) / h;
        let (t2, t3) = (t * t, t * t * t);
        let v = (2.0 * t3 - 3.0 * t2 + 1.0) * self.cdf[k]
            + (t3 - 2.0 * t2 + t) * h * self.slope[k]
            + (-2.0 * t3 + 3.0 * t2) * self.cdf[k + 1]
            + (t3 - t2) * h * self.slope[k + 1];
        v.clamp(self.cdf[k], self.cdf[k + 1])
    }
}

/// `(probability_best, expected_regret)` of the pick `Beta(pick)` against `Beta(rivals[j])`, all
/// independent. See the module docs.
pub fn best_and_regret(pick: (f64, f64), rivals: &[(f64, f64)]) -> (f64, f64) {
    let p = Table::new(pick.0, pick.1);
    let end = p.hi();
    let tables: Vec<Table> = rivals
        .iter()
        .map(|&(a, b)| Table::new(a, b))
        .filter(|t| t.lo() < end)
        .collect();
    if tables.is_empty() {
        return (1.0, 0.0);
    }
    let start = tables.iter().map(Table::lo).fold(p.lo(), f64::min);
    // The union of the nodes in [start, end], thinned: a node closer to the last one kept than 0.8 of
    // its own step adds nothing its neighbours do not resolve.
    let mut nodes: Vec<(f64, f64)> = std::iter::once(&p)
        .chain(&tables)
        .flat_map(|t| t.z.iter().zip(&t.step).map(|(&z, &h)| (z, h)))
        .filter(|&(z, _)| z > start && z < end)
        .collect();
    nodes.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut grid = vec![start];
    for (z, h) in nodes {
        if z - grid[grid.len() - 1] >= 0.8 * h {
            grid.push(z);
        }
    }
    if end > grid[grid.len() - 1] {
        grid.push(end);
    }
    // Above `x = e^{−25}`, no cell wider than MAX_STEP: the regret's integrand carries the factor
    // `x = e^z`, which the distributions' own grids do not resolve where none of them has mass (a gap
    // of 3 in `ln x` between a rival's top and the pick's bottom would be one Simpson cell, 4 % off).
    let mut filled = Vec::with_capacity(grid.len() + 16);
    filled.push(grid[0]);
    for &z in &grid[1..] {
        let prev = filled[filled.len() - 1];
        let from = prev.max(REGRET_LO);
        if z - from > MAX_STEP {
            if from > prev {
                filled.push(from);
            }
            let cells = ((z - from) / MAX_STEP).ceil();
            for j in 1..cells as usize {
                filled.push(from + (z - from) * j as f64 / cells);
            }
        }
        filled.push(z);
    }
    let grid = filled;
    let mut cursors = vec![0usize; tables.len()];
    let mut pick_cursor = 0usize;
    // ln G and 1 − G at z.
    // G and 1 − G at z, both by products (no cancellation when every F_j is tiny):
    // 1 − Π_{j≤k}(1 − F_j) = (1 − Π_{j<k}) + F_k Π_{j<k}.
    let rivals_at = |z: f64, cursors: &mut [usize]| -> (f64, f64) {
        let (mut g, mut one_minus_g) = (1.0, 0.0);
        for (t, c) in tables.iter().zip(cursors.iter_mut()) {
            if z <= t.lo() {
                // Below its grid: at most TAIL of its mass, a factor of 1 to 10⁻¹².
                continue;
            }
            let f = t.cdf(z, c);
            if f >= 1.0 {
                return (0.0, 1.0);
            }
            one_minus_g += f * g;
            g *= 1.0 - f;
        }
        (g, one_minus_g)
    };
    let at = |z: f64, cursors: &mut [usize], pc: &mut usize| -> (f64, f64) {
        let (g, one_minus_g) = rivals_at(z, cursors);
        let best = p.density(z) * g;
        let regret = z.exp() * (1.0 - p.cdf(z, pc)) * one_minus_g;
        (best, regret)
    };
    let (mut best, mut regret) = (0.0, 0.0);
    let mut left = at(grid[0], &mut cursors, &mut pick_cursor);
    // Below the grid: the pick's mass there, with every rival above it.
    best += p.cdf(start, &mut 0);
    for k in 1..grid.len() {
        let h = grid[k] - grid[k - 1];
        let mid = at(
            0.5 * (grid[k] + grid[k - 1]),
            &mut cursors,
            &mut pick_cursor,
        );
        let right = at(grid[k], &mut cursors, &mut pick_cursor);
        best += h / 6.0 * (left.0 + 4.0 * mid.0 + right.0);
        regret += h / 6.0 * (left.1 + 4.0 * mid.1 + right.1);
        left = right;
    }
    // Above the grid: the pick's mass there (only a Beta with b ≪ 1 leaves any), at the rivals' G there.
    let above = 1.0 - p.cdf(end, &mut 0);
    if above > 0.0 {
        best += above * rivals_at(end, &mut cursors).0;
    }
    (best.clamp(0.0, 1.0), regret.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::Distribution;
    use statrs::distribution::{Beta, ContinuousCDF};

    /// Brute force: the midpoint rule on 100,000 cells evenly spaced in `u = x^(1/4)` (dense near 0,
    /// where an `a < 1` density is infinite) over [0, 1], with statrs' exact CDFs.
    fn brute(pick: (f64, f64), rivals: &[(f64, f64)]) -> (f64, f64) {
        let d0 = Beta::new(pick.0, pick.1).unwrap();
        let ds: Vec<Beta> = rivals
            .iter()
            .map(|&(a, b)| Beta::new(a, b).unwrap())
            .collect();
        let cells = 100_000;
        let (mut best, mut regret) = (0.0, 0.0);
        for j in 0..cells {
            let u0 = j as f64 / cells as f64;
            let u1 = (j + 1) as f64 / cells as f64;
            let (x0, x1) = (u0.powi(4), u1.powi(4));
            let x = 0.5 * (x0 + x1);
            let g: f64 = ds.iter().map(|d| 1.0 - d.cdf(x)).product();
            best += (d0.cdf(x1) - d0.cdf(x0)) * g;
            regret += (x1 - x0) * (1.0 - d0.cdf(x)) * (1.0 - g);
        }
        (best, regret)
    }

    #[test]
    fn a_pick_spiked_at_zero_is_integrated_exactly() {
        // The case the old grid got wrong: a posterior with a < 1 (a fallback spread and no
        // termination), against rivals around it.
        type Case = ((f64, f64), &'static [(f64, f64)]);
        let cases: [Case; 8] = [
            ((0.3, 40.0), &[(2.0, 60.0), (0.5, 10.0)]),
            ((0.2, 15.0), &[(0.8, 30.0)]),
            ((0.6, 300.0), &[(3.0, 400.0), (12.0, 900.0), (0.4, 20.0)]),
            ((5.0, 95.0), &[(8.0, 92.0), (30.0, 270.0)]),
            ((200.0, 5000.0), &[(210.0, 5000.0), (1.2, 30.0)]),
            // Rivals with no jobs under a weak prior (b < 1: mass piled at both 0 and 1).
            ((2.0, 60.0), &[(0.02, 0.48), (0.5, 0.5)]),
            ((1.0, 1.0), &[(2.0, 2.0), (0.3, 1.5)]),
            ((30.0, 970.0), &[(30.0, 970.0), (0.1, 2.0)]),
        ];
        for (pick, rivals) in cases {
            let (best, regret) = best_and_regret(pick, rivals);
            let (want_best, want_regret) = brute(pick, rivals);
            assert!(
                (best - want_best).abs() < 1e-4,
                "{pick:?} {rivals:?}: P(best) {best} vs {want_best}"
            );
            assert!(
                (regret - want_regret).abs() < 1e-5 + 1e-3 * want_regret,
                "{pick:?} {rivals:?}: regret {regret} vs {want_regret}"
            );
        }
    }

    #[test]
    fn monte_carlo_agrees() {
        let pick = (0.4, 25.0);
        let rivals = [(1.0, 60.0), (3.0, 70.0), (0.7, 12.0)];
        let (best, regret) = best_and_regret(pick, &rivals);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let d0 = rand_distr::Beta::new(pick.0, pick.1).unwrap();
        let ds: Vec<_> = rivals
            .iter()
            .map(|&(a, b)| rand_distr::Beta::new(a, b).unwrap())
            .collect();
        let draws = 400_000;
        let (mut wins, mut loss) = (0usize, 0.0);
        for _ in 0..draws {
            let x0: f64 = d0.sample(&mut rng);
            let m = ds
                .iter()
                .map(|d| d.sample(&mut rng))
                .fold(f64::INFINITY, f64::min);
            wins += usize::from(x0 < m);
            loss += (x0 - m).max(0.0);
        }
        let mc_best = wins as f64 / draws as f64;
        let mc_regret = loss / draws as f64;
        // Standard errors: ≤ 0.0008 and about 2 % of the regret.
        assert!((best - mc_best).abs() < 0.004, "{best} vs {mc_best}");
        assert!(
            (regret - mc_regret).abs() < 0.05 * mc_regret,
            "{regret} vs {mc_regret}"
        );
    }

    #[test]
    fn far_apart_and_identical_posteriors() {
        let (best, regret) = best_and_regret((1.0, 1000.0), &[(900.0, 100.0)]);
        assert_eq!((best, regret), (1.0, 0.0));
        let (best, regret) = best_and_regret((900.0, 100.0), &[(1.0, 1000.0)]);
        assert!(best < 1e-9);
        assert!((regret - (0.9 - 1.0 / 1001.0)).abs() < 1e-4, "{regret}");
        // Two identical posteriors: each is best with probability ½.
        let (best, _) = best_and_regret((30.0, 970.0), &[(30.0, 970.0)]);
        assert!((best - 0.5).abs() < 1e-5, "{best}");
        // No rival at all.
        assert_eq!(best_and_regret((3.0, 10.0), &[]), (1.0, 0.0));
    }

    #[test]
    fn tiny_a_and_b_against_high_precision_integration() {
        // Where the brute force above is itself wrong (a ≤ 0.1 leaves a tenth of the mass below its
        // first cell, x < 10⁻²⁰): references by mpmath's tanh-sinh quadrature of both integrals at 20
        // digits, with its regularised incomplete beta.
        type Case = ((f64, f64), &'static [(f64, f64)], f64, f64);
        let cases: [Case; 4] = [
            (
                (0.02, 0.48),
                &[(2.0, 60.0), (0.3, 7.0)],
                0.865_111_334_1,
                0.038_399_546_2,
            ),
            (
                (0.05, 1.2),
                &[(0.04, 0.9), (1.0, 20.0)],
                0.441_443_772_5,
                0.038_869_219_22,
            ),
            (
                (0.1, 500.0),
                &[(0.1, 400.0), (1.0, 300.0), (4.0, 200.0)],
                0.506_136_281_2,
                0.000_176_461_962_6,
            ),
            (
                (200.0, 5000.0),
                &[(210.0, 5000.0), (1.2, 30.0)],
                0.272_530_741_3,
                0.013_158_401_39,
            ),
        ];
        for (pick, rivals, want_best, want_regret) in cases {
            let (best, regret) = best_and_regret(pick, rivals);
            assert!(
                (best - want_best).abs() < 1e-5,
                "{pick:?} {rivals:?}: P(best) {best} vs {want_best}"
            );
            assert!(
                (regret - want_regret).abs() < 1e-8 + 1e-4 * want_regret,
                "{pick:?} {rivals:?}: regret {regret} vs {want_regret}"
            );
        }
    }

    #[test]
    fn tables_hold_the_whole_mass_and_match_the_exact_cdf() {
        // Against statrs' CDF (the regularised incomplete beta, accurate far into the left tail, where
        // its inverse is not), from the 10⁻⁹ tail to the top of the mass.
        // b ≤ 1.5: a pool with no jobs under a weak prior, its density of ln X infinite (b < 1) or
        // steep at x = 1.
        for &(a, b) in &[
            (0.2, 15.0),
            (0.9, 3.0),
            (4.0, 200.0),
            (2500.0, 60000.0),
            (0.1, 500.0),
            (900.0, 100.0),
            (7.0, 60.0),
            (0.02, 0.48),
            (0.5, 0.5),
            (0.3, 1.5),
            (1.5, 1.2),
            (0.05, 1.2),
        ] {
            let t = Table::new(a, b);
            let exact = Beta::new(a, b).unwrap();
            let (lo, hi) = (t.lo(), t.hi());
            for k in 0..=1000 {
                let z = lo + (hi - lo) * k as f64 / 1000.0;
                let want = exact.cdf(z.exp());
                let got = t.cdf(z, &mut 0);
                assert!(
                    (got - want).abs() < 2e-6 + 1e-4 * want,
                    "Beta({a}, {b}) at ln x = {z}: {got} vs {want}"
                );
            }
            assert_eq!(t.cdf(hi.max(-0.5) + 1.0, &mut 0), 1.0);
            // Below the grid: under 10⁻¹¹, unless the grid stops at x = e^{−700} (a = 0.02 leaves
            // 10⁻⁸ of its mass there), where the series still gives the exact value.
            let below = t.cdf(lo - 1.0, &mut 0);
            let want = exact.cdf((lo - 1.0).exp());
            assert!(
                below < 1e-11 || lo == -700.0,
                "Beta({a}, {b}): {below} below"
            );
            assert!(
                (below - want).abs() <= 1e-9 * want + 1e-15,
                "{below} vs {want}"
            );
            // Above the grid's top, what is left is exact too (the upper series), against the mirror
            // Beta(b, a) at 1 − x (statrs' 1 − F cancels there).
            let z = 0.5 * hi;
            let want = Beta::new(b, a).unwrap().cdf(-z.exp_m1());
            let got = 1.0 - t.cdf(z, &mut 0);
            assert!(
                (got - want).abs() < 1e-15 + 1e-9 * want,
                "Beta({a}, {b}) near 1: {got} vs {want}"
            );
        }
    }
}
