//! The interval arithmetic behind the evaluation: Wilson and Newcombe intervals for rates and
//! their differences, Hanley–McNeil for AUC, and the chi-square quantile behind drift
//! thresholds. Each is checked by simulation with known truth in the tests.

use serde::Serialize;

/// z of a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_985;
/// z of 80% power.
pub const Z_POWER80: f64 = 0.841_621_234;

/// A number with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// Point estimate.
    pub value: f64,
    /// Lower end of the 95% interval.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

impl Estimate {
    /// `value ± half`.
    pub fn around(value: f64, half: f64) -> Estimate {
        Estimate {
            value,
            low: value - half,
            high: value + half,
        }
    }

    /// Every part times `k` (k ≥ 0) plus `c`.
    pub fn affine(&self, k: f64, c: f64) -> Estimate {
        Estimate {
            value: self.value * k + c,
            low: self.low * k + c,
            high: self.high * k + c,
        }
    }
}

/// 95% Wilson interval of `pos` of `n` (re-exported from the model layer, which uses it for
/// the reliability diagram).
pub use crate::model::wilson;

/// Difference of two rates `a_pos / a_n − b_pos / b_n` with Newcombe's hybrid score interval
/// (method 10 of Newcombe 1998: Wilson limits of each rate combined), which keeps its coverage
/// near 95% at small counts and rates near 0 where the Wald interval does not.
pub fn rate_difference(a_pos: u64, a_n: u64, b_pos: u64, b_n: u64) -> Estimate {
    let (pa, pb) = (
        a_pos as f64 / a_n.max(1) as f64,
        b_pos as f64 / b_n.max(1) as f64,
    );
    let (la, ua) = wilson(a_pos as f64, a_n as f64);
    let (lb, ub) = wilson(b_pos as f64, b_n as f64);
    let d = pa - pb;
    Estimate {
        value: d,
        low: d - ((pa - la).powi(2) + (ub - pb).powi(2)).sqrt(),
        high: d + ((ua - pa).powi(2) + (pb - lb).powi(2)).sqrt(),
    }
}

/// The smallest absolute difference of rates a two-sided 5% test detects with 80% power at
/// these arm sizes, around a base rate `p`.
pub fn minimum_detectable_effect(p: f64, n_a: u64, n_b: u64) -> Option<f64> {
    if n_a == 0 || n_b == 0 {
        return None;
    }
    let p = p.clamp(0.0, 1.0);
    Some((Z95 + Z_POWER80) * (p * (1.0 - p) * (1.0 / n_a as f64 + 1.0 / n_b as f64)).sqrt())
}

/// 95% interval of an AUC `a` from `npos` positives and `nneg` negatives (Hanley & McNeil
/// 1982), clamped to [0, 1].
pub fn auc_interval(a: f64, npos: usize, nneg: usize) -> Estimate {
    let (n1, n0) = (npos as f64, nneg as f64);
    let q1 = a / (2.0 - a);
    let q2 = 2.0 * a * a / (1.0 + a);
    let var = (a * (1.0 - a) + (n1 - 1.0) * (q1 - a * a) + (n0 - 1.0) * (q2 - a * a)) / (n1 * n0);
    let half = Z95 * var.max(0.0).sqrt();
    Estimate {
        value: a,
        low: (a - half).max(0.0),
        high: (a + half).min(1.0),
    }
}

/// Mean of `xs` with a normal 95% interval.
pub fn mean_interval(xs: impl Iterator<Item = f64>) -> Option<Estimate> {
    let (mut n, mut sum, mut sq) = (0f64, 0f64, 0f64);
    for x in xs {
        n += 1.0;
        sum += x;
        sq += x * x;
    }
    if n < 2.0 {
        return None;
    }
    let mean = sum / n;
    let var = ((sq - n * mean * mean) / (n - 1.0)).max(0.0);
    Some(Estimate::around(mean, Z95 * (var / n).sqrt()))
}

/// Standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Chi-square quantile with `k` degrees of freedom (Wilson–Hilferty; within 1% of the exact
/// value for k ≥ 3 at the upper tail used here).
pub fn chi2_quantile(p: f64, k: f64) -> f64 {
    let z = normal_quantile(p);
    let h = 2.0 / (9.0 * k);
    (k * (1.0 - h + z * h.sqrt()).powi(3)).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::Rng;

    #[test]
    fn quantiles_match_tables() {
        assert!((normal_quantile(0.975) - Z95).abs() < 1e-8);
        assert!((normal_quantile(0.8) - Z_POWER80).abs() < 1e-8);
        assert!((normal_quantile(0.001) + 3.090_232_306).abs() < 1e-7);
        // chi-square 0.999 quantiles: 9 df 27.877, 19 df 43.820
        assert!((chi2_quantile(0.999, 9.0) - 27.877).abs() / 27.877 < 0.01);
        assert!((chi2_quantile(0.999, 19.0) - 43.820).abs() / 43.820 < 0.01);
    }

    /// Newcombe's interval covers a known difference about 95% of the time, also with small
    /// arms and low rates.
    #[test]
    fn rate_difference_covers_the_truth() {
        let mut rng = Rng::new(7);
        for &(pa, na, pb, nb) in &[(0.3, 400u64, 0.2, 300u64), (0.05, 120, 0.05, 80)] {
            let trials = 4000;
            let mut covered = 0;
            for _ in 0..trials {
                let a = (0..na).filter(|_| rng.uniform() < pa).count() as u64;
                let b = (0..nb).filter(|_| rng.uniform() < pb).count() as u64;
                let e = rate_difference(a, na, b, nb);
                if e.low <= pa - pb && pa - pb <= e.high {
                    covered += 1;
                }
            }
            let c = covered as f64 / trials as f64;
            assert!(
                (0.93..=0.975).contains(&c),
                "coverage {c} at {pa}/{na} vs {pb}/{nb}"
            );
        }
    }

    #[test]
    fn mde_shrinks_with_the_sample() {
        let small = minimum_detectable_effect(0.3, 100, 100).unwrap();
        let big = minimum_detectable_effect(0.3, 10_000, 10_000).unwrap();
        assert!((small / big - 10.0).abs() < 1e-9);
        // 0.3 base, 1000 per arm: 2.80 × sqrt(0.21 × 0.002) = 0.0574
        assert!((minimum_detectable_effect(0.3, 1000, 1000).unwrap() - 0.05738).abs() < 1e-4);
    }
}
