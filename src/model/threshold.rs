//! The decision threshold: expected profit (with customer economics) or F1 at every distinct
//! score, and the best of them.

use super::metrics;
use serde::{Deserialize, Serialize};

/// Customer economics for choosing the decision threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Economics {
    /// Value of keeping a customer who would have churned.
    pub customer_value: f64,
    /// Cost of one retention contact.
    pub contact_cost: f64,
    /// Share of contacted churners who stay.
    pub save_rate: f64,
}

/// How the threshold was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdChoice {
    /// The threshold (`p >= threshold` → churn).
    pub threshold: f64,
    /// `expected_profit` or `f1`.
    pub objective: String,
    /// Objective value on out-of-fold predictions (profit per customer, or F1).
    pub value: f64,
}

/// The decision objective at every distinct score, highest score first: `(threshold, value)`
/// with value = expected profit per customer (with economics) or F1 (without) when every
/// customer scoring at or above the threshold is flagged.
///
/// `values` (per row, when given) replaces the constant `customer_value`: the playbook's value
/// expression, so the profit threshold and the playbook's ranking value customers alike.
pub fn objective_curve(
    p: &[f64],
    y: &[bool],
    econ: Option<&Economics>,
    values: Option<&[f64]>,
) -> Vec<(f64, f64)> {
    let npos = y.iter().filter(|&&b| b).count() as f64;
    let (mut tp, mut fp) = (0.0, 0.0);
    // value of the churners caught so far
    let mut tp_value = 0.0;
    let mut out = Vec::new();
    for g in metrics::tie_groups_desc(p) {
        let t = g.score;
        for &r in &g.rows {
            if y[r] {
                tp += 1.0;
                tp_value += match (values, econ) {
                    (Some(v), _) => v[r],
                    (None, Some(e)) => e.customer_value,
                    (None, None) => 0.0,
                };
            } else {
                fp += 1.0;
            }
        }
        let v = match econ {
            Some(e) => {
                (tp_value * e.save_rate - (tp + fp) * e.contact_cost) / p.len().max(1) as f64
            }
            None => 2.0 * tp / (tp + fp + npos),
        };
        out.push((t, v));
    }
    out
}

/// Choose the threshold maximising [`objective_curve`]: expected profit (with economics) or F1
/// (without).
pub fn choose_threshold(
    p: &[f64],
    y: &[bool],
    econ: Option<&Economics>,
    values: Option<&[f64]>,
) -> ThresholdChoice {
    let mut best = (f64::NEG_INFINITY, 1.0 + 1e-9);
    for (t, v) in objective_curve(p, y, econ, values) {
        if v > best.0 {
            best = (v, t);
        }
    }
    if econ.is_some() && best.0 < 0.0 {
        // contacting anyone loses money: nobody is flagged
        best = (0.0, 1.0 + 1e-9);
    }
    ThresholdChoice {
        threshold: best.1,
        objective: if econ.is_some() {
            "expected_profit"
        } else {
            "f1"
        }
        .into(),
        value: best.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profit_threshold_values_customers_by_their_own_value() {
        // two churners at 0.9 (worth 10 each) and 0.4 (worth 1000); one non-churner at 0.6
        let p = [0.9, 0.6, 0.4];
        let y = [true, false, true];
        let econ = Economics {
            customer_value: 100.0,
            contact_cost: 30.0,
            save_rate: 0.5,
        };
        // constant value 100: contacting the top one pays 50 - 30 = 20; all three 100 - 90 = 10
        let flat = choose_threshold(&p, &y, Some(&econ), None);
        assert_eq!(flat.threshold, 0.9);
        assert!((flat.value - 20.0 / 3.0).abs() < 1e-12);
        // with per-customer values the big customer at 0.4 is worth reaching
        let values = [10.0, 10.0, 1000.0];
        let valued = choose_threshold(&p, &y, Some(&econ), Some(&values));
        assert_eq!(valued.threshold, 0.4);
        assert!((valued.value - (505.0 - 90.0) / 3.0).abs() < 1e-12);
        assert_eq!(valued.objective, "expected_profit");
        // F1 ignores values
        assert_eq!(
            choose_threshold(&p, &y, None, Some(&values)).threshold,
            choose_threshold(&p, &y, None, None).threshold
        );
    }
}
