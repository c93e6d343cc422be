//! How well a score ranks customers by their incremental response: the Qini curve and
//! coefficient, the uplift curve's area (AUUC) and uplift at the top k%, with bootstrap
//! intervals. Definitions follow scikit-uplift's `sklift.metrics` (so a peer's number and ours
//! mean the same): customers sorted by descending score, ties kept together, the outcome counted
//! is a *good* one (here: the customer stayed).
//!
//! * Qini curve at the top `n`: `Y_T(n) − Y_C(n) · N_T(n) / N_C(n)` — good outcomes among the
//!   treated minus the control's, scaled to the treated count.
//! * Qini coefficient: the area between the curve and the straight line to its end, divided by
//!   the same area of the perfect ranking (treated good outcomes first, control good outcomes
//!   last): 1 is perfect, 0 is random, negative is worse than random.
//! * AUUC: the same normalisation for the uplift curve `(Y_T/N_T − Y_C/N_C) · (N_T + N_C)`.
//! * Uplift at k: among the top `k` share of all customers, the treated good-outcome rate minus
//!   the control's.

use crate::model::Estimate;
use crate::util::Rng;
use serde::{Deserialize, Serialize};

/// Bootstrap resamples behind every interval.
pub const BOOTSTRAP: usize = 200;

/// Shares of customers at which uplift is reported.
pub const AT_K: [f64; 3] = [0.1, 0.2, 0.3];

/// One scored customer of a held-out set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Predicted uplift (higher: contact first).
    pub score: f64,
    /// In the treated arm.
    pub treated: bool,
    /// The good outcome happened (the customer stayed).
    pub good: bool,
}

/// A point of a curve: customers targeted, curve value.
pub type Point = (f64, f64);

/// Cumulative counts over customers sorted by descending score, one entry per distinct score
/// (the last customer of each run of ties): (customers, treated, treated good, control good).
/// `mult` gives each customer's multiplicity (a bootstrap resample); `None`: one each.
fn cumulative(sorted: &[Scored], mult: Option<&[u32]>) -> Vec<[f64; 4]> {
    let mut out = Vec::new();
    let mut acc = [0.0f64; 4];
    for (i, s) in sorted.iter().enumerate() {
        let m = f64::from(mult.map_or(1, |m| m[i]));
        acc[0] += m;
        if s.treated {
            acc[1] += m;
            if s.good {
                acc[2] += m;
            }
        } else if s.good {
            acc[3] += m;
        }
        let last_of_run = sorted.get(i + 1).is_none_or(|n| n.score != s.score);
        if last_of_run {
            out.push(acc);
        }
    }
    out
}

/// Sort by descending score, ties in the original order reversed as sklift's stable
/// ascending sort read backwards does (ties are summed together, so only the runs matter).
fn sort_desc(rows: &[Scored]) -> Vec<Scored> {
    let mut v = rows.to_vec();
    v.sort_by(|a, b| b.score.total_cmp(&a.score));
    v
}

fn qini_value(c: &[f64; 4]) -> f64 {
    let control = c[0] - c[1];
    if control > 0.0 {
        c[2] - c[3] * c[1] / control
    } else {
        c[2]
    }
}

fn uplift_value(c: &[f64; 4]) -> f64 {
    let control = c[0] - c[1];
    let t = if c[1] > 0.0 { c[2] / c[1] } else { 0.0 };
    let k = if control > 0.0 { c[3] / control } else { 0.0 };
    (t - k) * c[0]
}

fn curve(sorted: &[Scored], mult: Option<&[u32]>, value: fn(&[f64; 4]) -> f64) -> Vec<Point> {
    let mut pts = vec![(0.0, 0.0)];
    pts.extend(cumulative(sorted, mult).iter().map(|c| (c[0], value(c))));
    pts
}

/// Trapezoid area under a curve.
fn area(pts: &[Point]) -> f64 {
    pts.windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
        .sum()
}

/// The perfect ranking's score of a customer: treated good first, control good last.
fn perfect(rows: &[Scored]) -> Vec<Scored> {
    rows.iter()
        .map(|s| Scored {
            score: match (s.good, s.treated) {
                (true, true) => 1.0,
                (true, false) => -1.0,
                _ => 0.0,
            },
            ..*s
        })
        .collect()
}

/// (area above the baseline of `sorted`, of the perfect order) for curve `value`.
fn normalised(
    sorted: &[Scored],
    perfect_sorted: &[Scored],
    mult: Option<&[u32]>,
    perfect_mult: Option<&[u32]>,
    value: fn(&[f64; 4]) -> f64,
) -> f64 {
    let best = curve(perfect_sorted, perfect_mult, value);
    let end = *best.last().expect("a curve has its origin");
    let baseline = end.0 * end.1 / 2.0;
    let top = area(&best) - baseline;
    let actual = area(&curve(sorted, mult, value)) - baseline;
    if top.abs() > 0.0 {
        actual / top
    } else {
        0.0
    }
}

/// Uplift among the top `k` share of the customers (by position, ties broken by order).
fn uplift_at(sorted: &[Scored], mult: Option<&[u32]>, k: f64) -> f64 {
    let total: f64 = mult.map_or(sorted.len() as f64, |m| {
        m.iter().map(|&x| f64::from(x)).sum()
    });
    let cut = (total * k).ceil();
    let (mut n, mut nt, mut gt, mut gc) = (0.0, 0.0, 0.0, 0.0);
    for (i, s) in sorted.iter().enumerate() {
        if n >= cut {
            break;
        }
        let m = f64::from(mult.map_or(1, |m| m[i]));
        n += m;
        if s.treated {
            nt += m;
            gt += if s.good { m } else { 0.0 };
        } else {
            gc += if s.good { m } else { 0.0 };
        }
    }
    let nc = n - nt;
    if nt > 0.0 && nc > 0.0 {
        gt / nt - gc / nc
    } else {
        0.0
    }
}

/// Uplift at one share of the customers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpliftAt {
    /// Share of customers targeted (0.1: the top 10%).
    pub share: f64,
    /// Good-outcome rate of the treated minus the control's among them, with its interval.
    pub uplift: Estimate,
}

/// The measures of one score on one held-out set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpliftMeasures {
    /// Customers measured.
    pub rows: usize,
    /// Of them treated.
    pub treated: usize,
    /// Qini coefficient (sklift's `qini_auc_score`), 95% bootstrap interval.
    pub qini: Estimate,
    /// Area under the uplift curve, normalised (sklift's `uplift_auc_score`).
    pub auuc: Estimate,
    /// Uplift at 10, 20, 30%.
    pub at: Vec<UpliftAt>,
    /// The Qini curve at up to 21 points (customers targeted, extra good outcomes).
    pub qini_curve: Vec<Point>,
}

/// Qini coefficient of `rows` (no interval).
pub fn qini_coefficient(rows: &[Scored]) -> f64 {
    normalised(
        &sort_desc(rows),
        &sort_desc(&perfect(rows)),
        None,
        None,
        qini_value,
    )
}

/// Every measure with 95% bootstrap intervals ([`BOOTSTRAP`] resamples, seeded).
pub fn measure(rows: &[Scored], seed: u64) -> UpliftMeasures {
    let sorted = sort_desc(rows);
    // the perfect order of the same customers, with each one's position in `sorted`
    let mut order: Vec<usize> = (0..sorted.len()).collect();
    let best = perfect(&sorted);
    order.sort_by(|&a, &b| best[b].score.total_cmp(&best[a].score));
    let perfect_sorted: Vec<Scored> = order.iter().map(|&i| best[i]).collect();
    let point = |mult: Option<&[u32]>| -> Vec<f64> {
        let pm: Option<Vec<u32>> = mult.map(|m| order.iter().map(|&i| m[i]).collect());
        let pm = pm.as_deref();
        let mut v = vec![
            normalised(&sorted, &perfect_sorted, mult, pm, qini_value),
            normalised(&sorted, &perfect_sorted, mult, pm, uplift_value),
        ];
        v.extend(AT_K.iter().map(|&k| uplift_at(&sorted, mult, k)));
        v
    };
    let at = point(None);
    let mut draws: Vec<Vec<f64>> = vec![Vec::with_capacity(BOOTSTRAP); at.len()];
    let mut rng = Rng::new(seed ^ 0x0B00_7577);
    let mut mult = vec![0u32; sorted.len()];
    for _ in 0..BOOTSTRAP {
        mult.fill(0);
        for _ in 0..sorted.len() {
            mult[rng.below(sorted.len())] += 1;
        }
        for (d, v) in draws.iter_mut().zip(point(Some(&mult))) {
            d.push(v);
        }
    }
    for d in &mut draws {
        d.sort_by(f64::total_cmp);
    }
    let est = |k: usize| {
        let d = &draws[k];
        let q = |p: f64| d[((d.len() - 1) as f64 * p).round() as usize];
        Estimate {
            value: at[k],
            low: q(0.025),
            high: q(0.975),
        }
    };
    let full = curve(&sorted, None, qini_value);
    let step = (full.len() / 20).max(1);
    let mut qini_curve: Vec<Point> = full.iter().step_by(step).copied().collect();
    if qini_curve.last() != full.last() {
        qini_curve.extend(full.last().copied());
    }
    UpliftMeasures {
        rows: rows.len(),
        treated: rows.iter().filter(|s| s.treated).count(),
        qini: est(0),
        auuc: est(1),
        at: AT_K
            .iter()
            .enumerate()
            .map(|(i, &share)| UpliftAt {
                share,
                uplift: est(2 + i),
            })
            .collect(),
        qini_curve,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, seed: u64, signal: f64) -> Vec<Scored> {
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|_| {
                let x = rng.uniform();
                let treated = rng.uniform() < 0.5;
                // the treatment raises the good-outcome rate by `signal · x`
                let p = 0.5 + if treated { signal * x } else { 0.0 };
                Scored {
                    score: x,
                    treated,
                    good: rng.uniform() < p,
                }
            })
            .collect()
    }

    #[test]
    fn the_perfect_order_scores_one_and_a_random_one_about_zero() {
        let r = rows(4000, 1, 0.4);
        let best = perfect(&r);
        assert!((qini_coefficient(&best) - 1.0).abs() < 1e-12);
        let mut rng = Rng::new(9);
        let random: Vec<Scored> = r
            .iter()
            .map(|s| Scored {
                score: rng.uniform(),
                ..*s
            })
            .collect();
        let q = qini_coefficient(&random);
        assert!(q.abs() < 0.03, "random ranking: {q}");
        // the true ranking does better than random and worse than the perfect one (which also
        // ranks the outcomes' noise: true rankings score far below 1)
        let t = qini_coefficient(&r);
        assert!(t > 0.04 && t < 1.0, "true ranking: {t}");
        let reversed: Vec<Scored> = r
            .iter()
            .map(|s| Scored {
                score: -s.score,
                ..*s
            })
            .collect();
        assert!(qini_coefficient(&reversed) < -0.05);
    }

    #[test]
    fn intervals_cover_the_point_and_uplift_at_k_follows_the_signal() {
        let m = measure(&rows(6000, 3, 0.4), 1);
        assert!(m.qini.low <= m.qini.value && m.qini.value <= m.qini.high);
        assert!(m.qini.low > 0.0, "{:?}", m.qini);
        // the top 10% have x near 0.95: uplift about 0.38
        assert!((m.at[0].uplift.value - 0.38).abs() < 0.08, "{:?}", m.at[0]);
        assert!(m.at[0].uplift.value > m.at[2].uplift.value);
        assert_eq!(m.qini_curve.first(), Some(&(0.0, 0.0)));
        assert_eq!(m.qini_curve.last().map(|p| p.0), Some(6000.0));
    }

    #[test]
    fn ties_are_one_step_of_the_curve() {
        let r = vec![
            Scored {
                score: 1.0,
                treated: true,
                good: true,
            },
            Scored {
                score: 1.0,
                treated: false,
                good: false,
            },
            Scored {
                score: 0.0,
                treated: true,
                good: false,
            },
            Scored {
                score: 0.0,
                treated: false,
                good: true,
            },
        ];
        let c = curve(&sort_desc(&r), None, qini_value);
        assert_eq!(c, vec![(0.0, 0.0), (2.0, 1.0), (4.0, 0.0)]);
    }
}
