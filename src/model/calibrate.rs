//! Probability calibration on out-of-fold predictions: isotonic regression or Platt scaling,
//! chosen by cross-validated log loss. Both maps are strictly increasing, so calibration never
//! changes the ranking of customers (and therefore never changes ROC-AUC).

use super::metrics::log_loss;
use serde::{Deserialize, Serialize};

/// Weight of the identity map blended into isotonic output, making it strictly increasing.
pub const TILT: f64 = 1e-4;

/// A fitted calibration map from raw leaf probability to calibrated probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calibrator {
    /// Piecewise-linear isotonic map through (raw, calibrated) knots.
    Isotonic {
        /// Raw probabilities (increasing).
        x: Vec<f64>,
        /// Calibrated probabilities (non-decreasing).
        y: Vec<f64>,
    },
    /// Logistic map on the raw log-odds: `1 / (1 + exp(-(a * logit(p) + b)))`, `a > 0`.
    Platt {
        /// Slope.
        a: f64,
        /// Intercept.
        b: f64,
    },
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

impl Calibrator {
    /// Method name.
    pub fn method(&self) -> &'static str {
        match self {
            Calibrator::Isotonic { .. } => "isotonic",
            Calibrator::Platt { .. } => "platt",
        }
    }

    /// Calibrated probability of a raw probability.
    pub fn apply(&self, p: f64) -> f64 {
        match self {
            Calibrator::Platt { a, b } => 1.0 / (1.0 + (-(a * logit(p) + b)).exp()),
            Calibrator::Isotonic { x, y } => {
                let iso = if x.is_empty() {
                    p
                } else if p <= x[0] {
                    y[0]
                } else if p >= x[x.len() - 1] {
                    y[y.len() - 1]
                } else {
                    let j = x.partition_point(|&v| v <= p); // x[j-1] <= p < x[j]
                    let (x0, x1, y0, y1) = (x[j - 1], x[j], y[j - 1], y[j]);
                    y0 + (y1 - y0) * (p - x0) / (x1 - x0)
                };
                (1.0 - TILT) * iso + TILT * p
            }
        }
    }

    /// Calibrated probability of a boosted model's margin `m` whose raw probability σ(m) is `raw`
    /// (the caller has it already), in steps the exported SQL repeats: Platt on the margin itself
    /// (clamped as the logit clamps the probability, see [`Calibrator::platt_bounds`]), isotonic
    /// on `raw` — σ being the portable link [`crate::model::boost::sigmoid`].
    pub fn apply_margin(&self, m: f64, raw: f64) -> f64 {
        match self {
            Calibrator::Platt { a, b } => {
                let (lo, hi) = Calibrator::platt_bounds();
                crate::model::boost::sigmoid(a * m.clamp(lo, hi) + b)
            }
            Calibrator::Isotonic { .. } => self.apply(raw),
        }
    }

    /// The log-odds Platt scaling reads are clamped to: the logits of 10⁻⁶ and 1 − 10⁻⁶.
    pub fn platt_bounds() -> (f64, f64) {
        (logit(0.0), logit(1.0))
    }

    /// Fit isotonic regression (pool-adjacent-violators), with block rates shrunk toward the
    /// prior by one pseudo-observation so that no knot is exactly 0 or 1.
    pub fn fit_isotonic(p: &[f64], y: &[bool]) -> Calibrator {
        let n = p.len();
        if n == 0 {
            return Calibrator::Isotonic {
                x: vec![],
                y: vec![],
            };
        }
        let prior = y.iter().filter(|&&b| b).count() as f64 / n as f64;
        let mut idx: Vec<usize> = (0..n).collect();
        idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
        // group equal raw values: (sum x, sum y, count)
        let mut groups: Vec<(f64, f64, f64)> = Vec::new();
        let mut last = f64::NAN;
        for &i in &idx {
            if p[i] == last {
                let g = groups.last_mut().expect("group exists");
                g.0 += p[i];
                g.1 += y[i] as u8 as f64;
                g.2 += 1.0;
            } else {
                groups.push((p[i], y[i] as u8 as f64, 1.0));
                last = p[i];
            }
        }
        let blocks = pav(groups);
        // shrink, then re-pool to restore monotonicity
        let shrunk: Vec<(f64, f64, f64)> = blocks
            .iter()
            .map(|&(sx, sy, c)| {
                let rate = (sy + prior) / (c + 1.0);
                (sx, rate * c, c)
            })
            .collect();
        let blocks = pav(shrunk);
        Calibrator::Isotonic {
            x: blocks.iter().map(|b| b.0 / b.2).collect(),
            y: blocks.iter().map(|b| b.1 / b.2).collect(),
        }
    }

    /// Fit Platt scaling by Newton's method with Platt's smoothed targets. `None` when the fitted
    /// slope is not positive (the map would not preserve the ranking).
    pub fn fit_platt(p: &[f64], y: &[bool]) -> Option<Calibrator> {
        let npos = y.iter().filter(|&&b| b).count() as f64;
        let nneg = y.len() as f64 - npos;
        if npos == 0.0 || nneg == 0.0 {
            return None;
        }
        let hi = (npos + 1.0) / (npos + 2.0);
        let lo = 1.0 / (nneg + 2.0);
        let z: Vec<f64> = p.iter().map(|&v| logit(v)).collect();
        let t: Vec<f64> = y.iter().map(|&b| if b { hi } else { lo }).collect();
        let (mut a, mut b) = (1.0f64, 0.0f64);
        let loss = |a: f64, b: f64| -> f64 {
            z.iter()
                .zip(&t)
                .map(|(&z, &t)| {
                    let f = a * z + b;
                    // t*log(1+e^-f) + (1-t)*log(1+e^f)
                    let l1 = if f > 0.0 {
                        (-f).exp().ln_1p()
                    } else {
                        -f + f.exp().ln_1p()
                    };
                    let l0 = if f > 0.0 {
                        f + (-f).exp().ln_1p()
                    } else {
                        f.exp().ln_1p()
                    };
                    t * l1 + (1.0 - t) * l0
                })
                .sum()
        };
        let mut cur = loss(a, b);
        for _ in 0..100 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-12, 0.0, 1e-12);
            for (&z, &t) in z.iter().zip(&t) {
                let q = 1.0 / (1.0 + (-(a * z + b)).exp());
                let d = q - t;
                ga += d * z;
                gb += d;
                let w = q * (1.0 - q);
                haa += w * z * z;
                hab += w * z;
                hbb += w;
            }
            let det = haa * hbb - hab * hab;
            if det.abs() < 1e-18 {
                break;
            }
            let da = (hbb * ga - hab * gb) / det;
            let db = (haa * gb - hab * ga) / det;
            let mut step = 1.0;
            let mut improved = false;
            while step > 1e-8 {
                let (na, nb) = (a - step * da, b - step * db);
                let l = loss(na, nb);
                if l < cur {
                    a = na;
                    b = nb;
                    improved = cur - l > 1e-12 * cur.abs().max(1.0);
                    cur = l;
                    break;
                }
                step /= 2.0;
            }
            if !improved {
                break;
            }
        }
        (a > 0.0 && a.is_finite() && b.is_finite()).then_some(Calibrator::Platt { a, b })
    }
}

/// Pool adjacent violators over (sum x, sum y, weight) groups sorted by x.
fn pav(groups: Vec<(f64, f64, f64)>) -> Vec<(f64, f64, f64)> {
    let mut st: Vec<(f64, f64, f64)> = Vec::with_capacity(groups.len());
    for g in groups {
        st.push(g);
        while st.len() >= 2 {
            let b = st[st.len() - 1];
            let a = st[st.len() - 2];
            if a.1 / a.2 >= b.1 / b.2 {
                st.pop();
                let l = st.len() - 1;
                st[l] = (a.0 + b.0, a.1 + b.1, a.2 + b.2);
            } else {
                break;
            }
        }
    }
    st
}

/// Result of choosing a calibrator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationChoice {
    /// Chosen method.
    pub method: String,
    /// Cross-validated log loss of the raw (uncalibrated) probabilities.
    pub cv_log_loss_raw: f64,
    /// Cross-validated log loss of isotonic calibration.
    pub cv_log_loss_isotonic: f64,
    /// Cross-validated log loss of Platt scaling (NaN when not applicable).
    pub cv_log_loss_platt: f64,
}

/// Fit isotonic and Platt on out-of-fold predictions, compare them by `k`-fold cross-validated
/// log loss (folds from `folds`), and return the better one refitted on all rows.
pub fn choose(p: &[f64], y: &[bool], folds: &[usize], k: usize) -> (Calibrator, CalibrationChoice) {
    let mut iso_pred = vec![0.0; p.len()];
    let mut platt_pred = vec![0.0; p.len()];
    let mut platt_ok = true;
    for f in 0..k {
        let tr: Vec<usize> = (0..p.len()).filter(|&i| folds[i] != f).collect();
        let te: Vec<usize> = (0..p.len()).filter(|&i| folds[i] == f).collect();
        if tr.is_empty() || te.is_empty() {
            continue;
        }
        let tp: Vec<f64> = tr.iter().map(|&i| p[i]).collect();
        let ty: Vec<bool> = tr.iter().map(|&i| y[i]).collect();
        let iso = Calibrator::fit_isotonic(&tp, &ty);
        let platt = Calibrator::fit_platt(&tp, &ty);
        platt_ok &= platt.is_some();
        for &i in &te {
            iso_pred[i] = iso.apply(p[i]);
            platt_pred[i] = platt.as_ref().map_or(p[i], |c| c.apply(p[i]));
        }
    }
    let li = log_loss(&iso_pred, y);
    let lp = if platt_ok {
        log_loss(&platt_pred, y)
    } else {
        f64::NAN
    };
    let choice = CalibrationChoice {
        method: String::new(),
        cv_log_loss_raw: log_loss(p, y),
        cv_log_loss_isotonic: li,
        cv_log_loss_platt: lp,
    };
    let platt_all = if platt_ok {
        Calibrator::fit_platt(p, y)
    } else {
        None
    };
    let cal = match platt_all {
        Some(c) if lp < li => c,
        _ => Calibrator::fit_isotonic(p, y),
    };
    let choice = CalibrationChoice {
        method: cal.method().to_string(),
        ..choice
    };
    (cal, choice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isotonic_is_strictly_increasing_and_fixes_miscalibration() {
        // raw scores systematically too high: true rate = p/2
        let mut p = Vec::new();
        let mut y = Vec::new();
        for i in 0..2000 {
            let v = (i % 10) as f64 / 10.0 + 0.05;
            p.push(v);
            y.push(((i * 7919) % 1000) as f64 / 1000.0 < v / 2.0);
        }
        let c = Calibrator::fit_isotonic(&p, &y);
        let mut prev = -1.0;
        for k in 0..=100 {
            let v = c.apply(k as f64 / 100.0);
            assert!(v > prev, "not strictly increasing at {k}");
            prev = v;
        }
        assert!(
            log_loss(&p.iter().map(|&v| c.apply(v)).collect::<Vec<_>>(), &y) < log_loss(&p, &y)
        );
    }

    #[test]
    fn platt_recovers_a_logistic_map() {
        let mut p = Vec::new();
        let mut y = Vec::new();
        for i in 0..5000 {
            let raw = (i % 50) as f64 / 50.0 + 0.01;
            let truth = 1.0 / (1.0 + (-(2.0 * logit(raw) - 0.5)).exp());
            p.push(raw);
            y.push(((i as u64 * 2654435761) % 10007) as f64 / 10007.0 < truth);
        }
        let Some(Calibrator::Platt { a, b }) = Calibrator::fit_platt(&p, &y) else {
            panic!("platt failed")
        };
        assert!((a - 2.0).abs() < 0.3, "a = {a}");
        assert!((b + 0.5).abs() < 0.3, "b = {b}");
    }
}
