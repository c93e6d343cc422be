//! Evaluation metrics for probabilistic binary classifiers.

use serde::{Deserialize, Serialize};

/// Probabilities are clipped to `[EPS, 1 - EPS]` for log loss.
pub const EPS: f64 = 1e-15;

/// ROC-AUC with ties handled by average ranks (equals sklearn's `roc_auc_score`).
pub fn roc_auc(p: &[f64], y: &[bool]) -> f64 {
    let n = p.len();
    let npos = y.iter().filter(|&&b| b).count();
    let nneg = n - npos;
    if npos == 0 || nneg == 0 {
        return f64::NAN;
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && p[idx[j + 1]] == p[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if y[k] {
                rank_sum_pos += avg_rank;
            }
        }
        i = j + 1;
    }
    (rank_sum_pos - npos as f64 * (npos as f64 + 1.0) / 2.0) / (npos as f64 * nneg as f64)
}

/// Average precision (area under the precision-recall curve, step-wise as sklearn computes it).
pub fn average_precision(p: &[f64], y: &[bool]) -> f64 {
    let npos = y.iter().filter(|&&b| b).count();
    if npos == 0 {
        return f64::NAN;
    }
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut ap = 0.0;
    let mut prev_recall = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j < idx.len() && p[idx[j]] == p[idx[i]] {
            if y[idx[j]] {
                tp += 1;
            } else {
                fp += 1;
            }
            j += 1;
        }
        let recall = tp as f64 / npos as f64;
        let precision = tp as f64 / (tp + fp) as f64;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
        i = j;
    }
    ap
}

/// Mean log loss.
pub fn log_loss(p: &[f64], y: &[bool]) -> f64 {
    let s: f64 = p
        .iter()
        .zip(y)
        .map(|(&p, &y)| {
            let p = p.clamp(EPS, 1.0 - EPS);
            if y {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum();
    s / p.len().max(1) as f64
}

/// Brier score (mean squared error of the probability).
pub fn brier(p: &[f64], y: &[bool]) -> f64 {
    let s: f64 = p
        .iter()
        .zip(y)
        .map(|(&p, &y)| (p - y as u8 as f64).powi(2))
        .sum();
    s / p.len().max(1) as f64
}

/// Expected calibration error over `bins` equal-width bins.
pub fn ece(p: &[f64], y: &[bool], bins: usize) -> f64 {
    let mut cnt = vec![0usize; bins];
    let mut sp = vec![0.0; bins];
    let mut sy = vec![0.0; bins];
    for (&p, &y) in p.iter().zip(y) {
        let b = ((p * bins as f64) as usize).min(bins - 1);
        cnt[b] += 1;
        sp[b] += p;
        sy[b] += y as u8 as f64;
    }
    let n = p.len().max(1) as f64;
    (0..bins)
        .filter(|&b| cnt[b] > 0)
        .map(|b| (sp[b] - sy[b]).abs() / n)
        .sum()
}

/// Confusion matrix at a threshold (`p >= threshold` predicts churn).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    /// True positives.
    pub tp: usize,
    /// False positives.
    pub fp: usize,
    /// True negatives.
    pub tn: usize,
    /// False negatives.
    pub fn_: usize,
}

impl Confusion {
    /// Count at `threshold`.
    pub fn at(p: &[f64], y: &[bool], threshold: f64) -> Confusion {
        let mut c = Confusion {
            tp: 0,
            fp: 0,
            tn: 0,
            fn_: 0,
        };
        for (&p, &y) in p.iter().zip(y) {
            match (p >= threshold, y) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.fn_ += 1,
            }
        }
        c
    }
    /// tp / (tp + fp).
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    /// tp / (tp + fn).
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    /// Harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Share of all churners found in the top `frac` of customers ranked by probability.
///
/// Customers with equal scores cannot be told apart, so a group of ties that straddles the cut
/// counts in proportion: the expected capture over every order of the ties (not row order).
pub fn capture_at(p: &[f64], y: &[bool], frac: f64) -> f64 {
    let npos = y.iter().filter(|&&b| b).count();
    if npos == 0 {
        return f64::NAN;
    }
    let k = ((p.len() as f64 * frac).ceil() as usize).min(p.len());
    let (mut taken, mut caught) = (0usize, 0.0f64);
    for g in tie_groups_desc(p) {
        if taken >= k {
            break;
        }
        let pos = g.rows.iter().filter(|&&r| y[r]).count();
        let take = g.rows.len().min(k - taken);
        caught += pos as f64 * take as f64 / g.rows.len() as f64;
        taken += take;
    }
    caught / npos as f64
}

/// Customers sharing one score, for the metrics that walk the ranking from the top.
pub struct TieGroup {
    /// The score.
    pub score: f64,
    /// Their rows.
    pub rows: Vec<usize>,
}

/// The rows of `p` grouped by equal score, highest score first (rows in index order within a
/// group): every metric over the ranking treats tied customers alike.
pub fn tie_groups_desc(p: &[f64]) -> Vec<TieGroup> {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
    let mut out: Vec<TieGroup> = Vec::new();
    for r in idx {
        match out.last_mut() {
            Some(g) if g.score == p[r] => g.rows.push(r),
            _ => out.push(TieGroup {
                score: p[r],
                rows: vec![r],
            }),
        }
    }
    out
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// Lower edge of the predicted-probability bin.
    pub from: f64,
    /// Upper edge.
    pub to: f64,
    /// Customers in the bin.
    pub n: usize,
    /// Mean predicted probability.
    pub predicted: f64,
    /// Observed churn rate.
    pub observed: f64,
    /// 95% Wilson interval of the observed rate.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
}

/// The curves behind the holdout metrics (for the report): one point per distinct score, so a
/// tree's curves have at most one point per leaf.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Curves {
    /// ROC: `[false positive rate, true positive rate, threshold]`, from (0, 0).
    pub roc: Vec<[f64; 3]>,
    /// Precision–recall: `[recall, precision, threshold]`.
    pub pr: Vec<[f64; 3]>,
    /// Cumulative gains: `[share of customers contacted, share of churners caught, threshold]`,
    /// from (0, 0).
    pub gains: Vec<[f64; 3]>,
    /// Reliability diagram, 10 equal-width bins (empty bins left out).
    pub reliability: Vec<ReliabilityBin>,
}

impl Curves {
    /// The curves of scores `p` for labels `y`.
    pub fn compute(p: &[f64], y: &[bool]) -> Curves {
        let n = p.len();
        let npos = y.iter().filter(|&&b| b).count();
        let nneg = n - npos;
        let mut c = Curves {
            roc: vec![[0.0, 0.0, 1.0]],
            gains: vec![[0.0, 0.0, 1.0]],
            ..Default::default()
        };
        let (mut tp, mut fp) = (0usize, 0usize);
        for g in tie_groups_desc(p) {
            let t = g.score;
            let pos = g.rows.iter().filter(|&&r| y[r]).count();
            tp += pos;
            fp += g.rows.len() - pos;
            let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
            c.roc.push([ratio(fp, nneg), ratio(tp, npos), t]);
            c.pr.push([ratio(tp, npos), ratio(tp, tp + fp), t]);
            c.gains.push([ratio(tp + fp, n), ratio(tp, npos), t]);
        }
        let bins = 10;
        for b in 0..bins {
            let (from, to) = (b as f64 / bins as f64, (b + 1) as f64 / bins as f64);
            let in_bin = |x: f64| ((x * bins as f64) as usize).min(bins - 1) == b;
            let rows: Vec<usize> = (0..n).filter(|&r| in_bin(p[r])).collect();
            if rows.is_empty() {
                continue;
            }
            let pos = rows.iter().filter(|&&r| y[r]).count() as f64;
            let m = rows.len() as f64;
            let (low, high) = crate::model::wilson(pos, m);
            c.reliability.push(ReliabilityBin {
                from,
                to,
                n: rows.len(),
                predicted: rows.iter().map(|&r| p[r]).sum::<f64>() / m,
                observed: pos / m,
                low,
                high,
            });
        }
        c
    }
}

/// Holdout metrics reported in the model card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Rows evaluated.
    pub rows: usize,
    /// Churn rate of those rows.
    pub churn_rate: f64,
    /// ROC-AUC.
    pub roc_auc: f64,
    /// PR-AUC (average precision).
    pub pr_auc: f64,
    /// Log loss.
    pub log_loss: f64,
    /// Brier score.
    pub brier: f64,
    /// Expected calibration error, 10 bins.
    pub ece: f64,
    /// Decision threshold used.
    pub threshold: f64,
    /// Confusion matrix at the threshold.
    pub confusion: Confusion,
    /// Precision at the threshold.
    pub precision: f64,
    /// Recall at the threshold.
    pub recall: f64,
    /// F1 at the threshold.
    pub f1: f64,
    /// Churn rate in the top 10% ÷ overall churn rate.
    pub top_decile_lift: f64,
    /// Share of churners in the top 10%.
    pub capture_top_10pct: f64,
    /// Share of churners in the top 20%.
    pub capture_top_20pct: f64,
}

impl Evaluation {
    /// Compute every metric.
    pub fn compute(p: &[f64], y: &[bool], threshold: f64) -> Evaluation {
        let n = p.len();
        let rate = y.iter().filter(|&&b| b).count() as f64 / n.max(1) as f64;
        let c = Confusion::at(p, y, threshold);
        let cap10 = capture_at(p, y, 0.1);
        let k10 = ((n as f64 * 0.1).ceil()).max(1.0);
        let lift = if rate > 0.0 {
            cap10 * (rate * n as f64) / k10 / rate
        } else {
            f64::NAN
        };
        Evaluation {
            rows: n,
            churn_rate: rate,
            roc_auc: roc_auc(p, y),
            pr_auc: average_precision(p, y),
            log_loss: log_loss(p, y),
            brier: brier(p, y),
            ece: ece(p, y, 10),
            threshold,
            confusion: c,
            precision: c.precision(),
            recall: c.recall(),
            f1: c.f1(),
            top_decile_lift: lift,
            capture_top_10pct: cap10,
            capture_top_20pct: capture_at(p, y, 0.2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_matches_hand_computation() {
        // sklearn: roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) == 0.75
        let y = [false, false, true, true];
        assert!((roc_auc(&[0.1, 0.4, 0.35, 0.8], &y) - 0.75).abs() < 1e-12);
        // ties count half
        assert!((roc_auc(&[0.5, 0.5, 0.5, 0.5], &y) - 0.5).abs() < 1e-12);
        // sklearn average_precision_score([0,0,1,1],[0.1,0.4,0.35,0.8]) == 0.8333...
        assert!((average_precision(&[0.1, 0.4, 0.35, 0.8], &y) - 0.833_333_333).abs() < 1e-6);
    }

    #[test]
    fn losses_and_capture() {
        let y = [true, false];
        assert!((brier(&[0.8, 0.3], &y) - (0.04 + 0.09) / 2.0).abs() < 1e-12);
        assert!((log_loss(&[0.5, 0.5], &y) - 2f64.ln()).abs() < 1e-12);
        let p: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
        let y: Vec<bool> = (0..100).map(|i| i >= 90).collect();
        assert_eq!(capture_at(&p, &y, 0.1), 1.0);
        // a tie straddling the cut counts in proportion, whatever the row order: top 1 of 4
        // tied rows holding 2 churners catches 0.5 churners of 2
        let tied = [0.5; 4];
        assert_eq!(capture_at(&tied, &[true, true, false, false], 0.25), 0.25);
        assert_eq!(capture_at(&tied, &[false, false, true, true], 0.25), 0.25);
        let e = Evaluation::compute(&p, &y, 0.9);
        assert!((e.top_decile_lift - 10.0).abs() < 1e-9);
        assert_eq!(e.confusion.tp, 10);
        assert_eq!(e.f1, 1.0);
    }
}
