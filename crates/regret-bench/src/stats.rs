//! Error bars: means over seeds with their 95 % intervals (Student's t), paired differences, and
//! bootstrap intervals of ratios of means.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// A mean over seeds and the half-width of its 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub mean: f64,
    pub half: f64,
}

impl Estimate {
    pub fn lo(&self) -> f64 {
        self.mean - self.half
    }
    pub fn hi(&self) -> f64 {
        self.mean + self.half
    }
}

/// Mean and 95 % t-interval half-width of `xs` (one value per seed).
pub fn estimate(xs: &[f64]) -> Estimate {
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n.max(1) as f64;
    if n < 2 {
        return Estimate {
            mean,
            half: f64::NAN,
        };
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
        .expect("positive degrees of freedom")
        .inverse_cdf(0.975);
    Estimate {
        mean,
        half: t * (var / n as f64).sqrt(),
    }
}

/// The paired difference `a − b`, seed by seed.
pub fn paired(a: &[f64], b: &[f64]) -> Estimate {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    estimate(&d)
}

/// `mean(a)/mean(b)` and its 95 % percentile-bootstrap interval, resampling seeds (pairs kept).
pub fn ratio(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let n = a.len();
    let r = |idx: &mut dyn Iterator<Item = usize>| {
        let (mut sa, mut sb) = (0.0, 0.0);
        for i in idx {
            sa += a[i];
            sb += b[i];
        }
        sa / sb
    };
    let point = r(&mut (0..n));
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut rs: Vec<f64> = (0..2000)
        .map(|_| {
            let picks: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
            r(&mut picks.into_iter())
        })
        .collect();
    rs.sort_by(f64::total_cmp);
    (point, rs[49], rs[1949])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_match_the_textbook() {
        // n = 4, mean 2.5, sd 1.291, t(3) = 3.182: half-width 2.054.
        let e = estimate(&[1.0, 2.0, 3.0, 4.0]);
        assert!((e.mean - 2.5).abs() < 1e-12);
        assert!((e.half - 3.182_446 * 1.290_994 / 2.0).abs() < 1e-4, "{e:?}");
        let d = paired(&[2.0, 3.0, 4.0], &[1.0, 2.0, 3.0]);
        assert_eq!((d.mean, d.half), (1.0, 0.0));
        let (p, lo, hi) = ratio(&[1.0, 2.0, 3.0, 2.0], &[2.0, 4.0, 6.0, 4.0]);
        assert!((p - 0.5).abs() < 1e-12 && (lo - 0.5).abs() < 1e-12 && (hi - 0.5).abs() < 1e-12);
    }
}
