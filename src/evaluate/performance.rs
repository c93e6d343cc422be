//! How good the scores turned out to be (realised, on matured labels) and how good they are
//! expected to be before labels arrive (confidence-based, from the calibrated probabilities).

use super::drift::DriftStatus;
use super::stats::{
    auc_delong, chi2_quantile, mean_interval, quantile_sorted, wilson, wilson_estimate, Estimate,
};
use crate::model::metrics;
use serde::Serialize;

/// Fewer matured predictions than this, or fewer than [`MIN_CLASS`] of either outcome, and a
/// group's realised figures are not reported (they would be noise).
pub const MIN_MATURED: usize = 30;
/// Churned and retained customers a group needs at least of each for AUC and lift.
pub const MIN_CLASS: usize = 5;

/// One decile of predicted probability against what happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationBin {
    /// Matured predictions in the decile.
    pub n: usize,
    /// Mean predicted probability.
    pub predicted: f64,
    /// Realised churn rate with its 95% Wilson interval.
    pub realised: Estimate,
}

/// Realised performance of one group of matured predictions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Realised {
    /// Matured predictions.
    pub n: usize,
    /// Of which churned.
    pub churned: usize,
    /// Realised churn rate (Wilson interval).
    pub churn_rate: Estimate,
    /// ROC-AUC (DeLong interval); `None` with too few of either outcome.
    pub auc: Option<Estimate>,
    /// Brier score (normal interval).
    pub brier: Option<Estimate>,
    /// Log loss (normal interval).
    pub log_loss: Option<Estimate>,
    /// Expected calibration error over the deciles of predicted probability.
    pub ece: Option<f64>,
    /// Churn rate of the top 10% by probability over the group's churn rate (Wilson interval
    /// of the top decile's rate, the group's rate taken as known).
    pub top_decile_lift: Option<Estimate>,
    /// Predicted against realised by decile of predicted probability.
    pub calibration: Vec<CalibrationBin>,
    /// Why figures are missing, when they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Performance expected from the calibrated probabilities alone (confidence-based performance
/// estimation, as NannyML's CBPE): valid while the model stays calibrated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Expected {
    /// Predictions (matured or not).
    pub n: usize,
    /// Expected churn rate: the mean probability.
    pub churn_rate: f64,
    /// Expected ROC-AUC.
    pub auc: f64,
}

/// Realised figures of probabilities `p` and labels `y` (matured predictions only).
pub fn realised(p: &[f64], y: &[bool]) -> Realised {
    let n = p.len();
    let churned = y.iter().filter(|&&b| b).count();
    let churn_rate = {
        let (low, high) = wilson(churned as f64, n as f64);
        Estimate {
            value: if n > 0 {
                churned as f64 / n as f64
            } else {
                0.0
            },
            low,
            high,
        }
    };
    let mut out = Realised {
        n,
        churned,
        churn_rate,
        auc: None,
        brier: None,
        log_loss: None,
        ece: None,
        top_decile_lift: None,
        calibration: Vec::new(),
        note: None,
    };
    if n < MIN_MATURED {
        out.note = Some(format!(
            "too few matured predictions to judge ({n}; need at least {MIN_MATURED})"
        ));
        return out;
    }
    out.brier = mean_interval(p.iter().zip(y).map(|(&p, &y)| (p - y as u8 as f64).powi(2)));
    out.log_loss = mean_interval(p.iter().zip(y).map(|(&p, &y)| {
        let p = p.clamp(metrics::EPS, 1.0 - metrics::EPS);
        -if y { p.ln() } else { (1.0 - p).ln() }
    }));
    out.calibration = calibration_deciles(p, y);
    out.ece = Some(
        out.calibration
            .iter()
            .map(|b| b.n as f64 * (b.predicted - b.realised.value).abs())
            .sum::<f64>()
            / n as f64,
    );
    if churned < MIN_CLASS || n - churned < MIN_CLASS {
        out.note = Some(format!(
            "AUC and lift need at least {MIN_CLASS} churned and {MIN_CLASS} retained customers ({churned} churned of {n})"
        ));
        return out;
    }
    out.auc = auc_delong(p, y);
    let base = churned as f64 / n as f64;
    let top_n = (n as f64 * 0.1).max(1.0);
    let captured = metrics::capture_at(p, y, 0.1) * churned as f64;
    let (low, high) = wilson(captured, top_n);
    out.top_decile_lift = Some(Estimate {
        value: captured / top_n / base,
        low: low / base,
        high: high / base,
    });
    out
}

/// Ten bins of (as near as ties allow) equal size by predicted probability.
fn calibration_deciles(p: &[f64], y: &[bool]) -> Vec<CalibrationBin> {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let n = idx.len();
    let mut bins = Vec::with_capacity(10);
    let mut start = 0;
    for d in 1..=10 {
        let mut end = (n * d / 10).max(start);
        // a tie never straddles two bins
        while end < n && end > 0 && p[idx[end]] == p[idx[end - 1]] {
            end += 1;
        }
        if end > start {
            let part = &idx[start..end];
            let pos = part.iter().filter(|&&i| y[i]).count() as f64;
            let m = part.len() as f64;
            let (low, high) = wilson(pos, m);
            bins.push(CalibrationBin {
                n: part.len(),
                predicted: part.iter().map(|&i| p[i]).sum::<f64>() / m,
                realised: Estimate {
                    value: pos / m,
                    low,
                    high,
                },
            });
        }
        start = end;
    }
    bins
}

/// Expected churn rate and AUC of calibrated probabilities `p`: each customer churns with
/// probability p, so a pair (i, j) is correctly ordered with probability p_i (1 − p_j) when
/// p_i > p_j, and half of that when the two are tied (a tree gives all customers of a leaf the
/// same score). The expected Mann–Whitney count over the expected number of pairs:
///
/// ```text
/// AUC ≈ Σ_{i≠j} p_i (1 − p_j) ([s_i > s_j] + ½ [s_i = s_j])  /  Σ_{i≠j} p_i (1 − p_j)
/// ```
pub fn expected(p: &[f64]) -> Expected {
    let n = p.len();
    let mut sorted: Vec<f64> = p.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    // ascending: `below` is Σ(1 − p) of strictly lower scores
    let (mut num, mut below) = (0.0f64, 0.0f64);
    let (mut tot_p, mut tot_q, mut self_pairs) = (0.0f64, 0.0f64, 0.0f64);
    let mut i = 0;
    while i < n {
        let mut j = i;
        let (mut gp, mut gq, mut gs) = (0.0, 0.0, 0.0);
        while j < n && sorted[j] == sorted[i] {
            let x = sorted[j];
            gp += x;
            gq += 1.0 - x;
            gs += x * (1.0 - x);
            j += 1;
        }
        num += gp * below + 0.5 * (gp * gq - gs);
        below += gq;
        tot_p += gp;
        tot_q += gq;
        self_pairs += gs;
        i = j;
    }
    let den = tot_p * tot_q - self_pairs;
    Expected {
        n,
        churn_rate: if n > 0 { tot_p / n as f64 } else { 0.0 },
        auc: if den > 0.0 { num / den } else { 0.5 },
    }
}

/// How far (AUC points) the expected AUC may lie outside the realised interval before the
/// check warns: the expectation has sampling noise of its own.
pub const AUC_WARNING_GAP: f64 = 0.01;
/// How far outside it alarms.
pub const AUC_ALARM_GAP: f64 = 0.05;

/// Label draws behind the expected AUC's interval.
pub const EXPECTED_DRAWS: usize = 400;

/// Where the realised AUC of probabilities `p` falls 95% of the time if they are calibrated:
/// labels drawn from them [`EXPECTED_DRAWS`] times (seeded), the 2.5% and 97.5% quantiles of
/// the draws' AUCs. Equal probabilities are drawn together (binomial count of churners per
/// distinct value), so a tree's few leaves cost a few draws each. `None` under two values.
pub fn expected_auc_interval(p: &[f64]) -> Option<[f64; 2]> {
    use rand_distr::{Binomial, Distribution};
    use rand_xoshiro::rand_core::SeedableRng;
    if p.len() < 2 {
        return None;
    }
    let mut sorted = p.to_vec();
    sorted.sort_by(f64::total_cmp);
    // (churners' distribution, customers) per distinct probability, ascending
    let groups: Vec<(Binomial, u64)> = sorted
        .chunk_by(|a, b| a == b)
        .map(|g| {
            let n = g.len() as u64;
            (
                Binomial::new(n, g[0].clamp(0.0, 1.0)).expect("a probability"),
                n,
            )
        })
        .collect();
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(0xa0c0_5eed);
    let mut aucs = Vec::with_capacity(EXPECTED_DRAWS);
    for _ in 0..EXPECTED_DRAWS {
        // ascending: churners of a group rank above the non-churners below it, half above its own
        let (mut num, mut neg_below, mut pos) = (0.0f64, 0.0f64, 0.0f64);
        for (b, g) in &groups {
            let g = *g;
            let k = b.sample(&mut rng) as f64;
            let neg = g as f64 - k;
            num += k * (neg_below + 0.5 * neg);
            neg_below += neg;
            pos += k;
        }
        if pos > 0.0 && neg_below > 0.0 {
            aucs.push(num / (pos * neg_below));
        }
    }
    if aucs.len() < EXPECTED_DRAWS / 2 {
        return None;
    }
    aucs.sort_by(f64::total_cmp);
    Some([quantile_sorted(&aucs, 0.025), quantile_sorted(&aucs, 0.975)])
}

/// Precision, recall and F1 of the decision threshold (`predicted_churn`): what the calibrated
/// probabilities promise (CBPE: a prediction at p is a churner with probability p) and what the
/// matured labels show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdMetrics {
    /// The model's decision threshold on the calibrated probability.
    pub threshold: f64,
    /// Matured predictions compared.
    pub n: usize,
    /// Expected precision: Σ p over the flagged / flagged.
    pub expected_precision: Option<f64>,
    /// Expected recall: Σ p over the flagged / Σ p.
    pub expected_recall: Option<f64>,
    /// Expected F1: 2 TP / (2 TP + FP + FN) with the expected counts.
    pub expected_f1: Option<f64>,
    /// Realised precision (Wilson interval).
    pub precision: Option<Estimate>,
    /// Realised recall (Wilson interval).
    pub recall: Option<Estimate>,
    /// Realised F1.
    pub f1: Option<f64>,
}

/// [`ThresholdMetrics`] of matured probabilities `p` with labels `y` at `threshold`.
pub fn threshold_metrics(p: &[f64], y: &[bool], threshold: f64) -> ThresholdMetrics {
    let (mut etp, mut efp, mut efn) = (0.0, 0.0, 0.0);
    let (mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64);
    for (&x, &churned) in p.iter().zip(y) {
        let flagged = x >= threshold;
        if flagged {
            etp += x;
            efp += 1.0 - x;
        } else {
            efn += x;
        }
        tp += (flagged && churned) as u64;
        fp += (flagged && !churned) as u64;
        fn_ += (!flagged && churned) as u64;
    }
    let frac = |a: f64, b: f64| (b > 0.0).then(|| a / b);
    ThresholdMetrics {
        threshold,
        n: p.len(),
        expected_precision: frac(etp, etp + efp),
        expected_recall: frac(etp, etp + efn),
        expected_f1: frac(2.0 * etp, 2.0 * etp + efp + efn),
        precision: wilson_estimate(tp, tp + fp),
        recall: wilson_estimate(tp, tp + fn_),
        f1: frac(2.0 * tp as f64, (2 * tp + fp + fn_) as f64),
    }
}

/// How far (probability points) a decile's predicted probability may lie outside its
/// realised interval before the calibration check warns, when the deciles together are also
/// significantly off.
pub const CALIBRATION_WARNING_GAP: f64 = 0.02;
/// How far outside it alarms.
pub const CALIBRATION_ALARM_GAP: f64 = 0.05;

/// Whether the probabilities still mean what they say: the deciles of predicted probability
/// against their realised churn (Hosmer–Lemeshow statistic over the bins, and the largest
/// distance of a bin's predicted rate from its realised 95% interval).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationCheck {
    /// Σ (churned − n p̄)² / (n p̄ (1 − p̄)) over the bins.
    pub statistic: f64,
    /// Bins (the χ² degrees of freedom: the probabilities were not fitted on these labels).
    pub bins: usize,
    /// The statistic's 99.9% point under calibration (χ² with `bins` degrees of freedom).
    pub critical: f64,
    /// The largest distance of a bin's mean predicted probability from its realised interval.
    pub max_gap: f64,
    /// `too_few` under 100 matured predictions or 2 bins; when the statistic exceeds its
    /// critical value, `warning` beyond a gap of [`CALIBRATION_WARNING_GAP`] and `alarm` beyond
    /// [`CALIBRATION_ALARM_GAP`]; else `stable`.
    pub status: DriftStatus,
}

/// Judge the calibration of a group's realised deciles.
pub fn calibration_check(realised: &Realised) -> CalibrationCheck {
    let mut statistic = 0.0;
    let mut max_gap = 0.0f64;
    for b in &realised.calibration {
        let (n, p) = (b.n as f64, b.predicted);
        let var = n * p * (1.0 - p);
        if var > 0.0 {
            statistic += (b.realised.value * n - n * p).powi(2) / var;
        }
        max_gap = max_gap.max((b.realised.low - p).max(p - b.realised.high));
    }
    let bins = realised.calibration.len();
    let critical = chi2_quantile(0.999, bins.max(1) as f64);
    let status = if realised.n < 100 || bins < 2 {
        DriftStatus::TooFew
    } else if statistic <= critical || max_gap <= CALIBRATION_WARNING_GAP {
        DriftStatus::Stable
    } else if max_gap <= CALIBRATION_ALARM_GAP {
        DriftStatus::Warning
    } else {
        DriftStatus::Alarm
    };
    CalibrationCheck {
        statistic,
        bins,
        critical,
        max_gap: max_gap.max(0.0),
        status,
    }
}

/// Realised ranking quality against what the calibrated probabilities promised (the CBPE
/// expectation of [`expected`]), judged on the control group (actions change the treated
/// customers' outcomes; see [`super::drift::BaseRate::group`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PerformanceCheck {
    /// `control`, or `all` for models without a control group.
    pub group: String,
    /// Expected AUC of the group's probabilities.
    pub expected_auc: f64,
    /// Where the realised AUC of the group's matured predictions falls 95% of the time if the
    /// probabilities are calibrated ([`expected_auc_interval`]).
    pub expected_auc_interval: Option<[f64; 2]>,
    /// Precision, recall and F1 at the model's decision threshold, expected and realised
    /// (with a bundle).
    pub at_threshold: Option<ThresholdMetrics>,
    /// Realised AUC with its DeLong interval (`None`: too few matured labels).
    pub realised_auc: Option<Estimate>,
    /// The calibration of the group's deciles.
    pub calibration: CalibrationCheck,
    /// The worse of the ranking and the calibration check. Ranking: `too_few` without a
    /// realised AUC; `warning` when the expected AUC lies more than [`AUC_WARNING_GAP`] outside
    /// the realised interval, `alarm` more than [`AUC_ALARM_GAP`] outside it; else `stable`.
    pub status: DriftStatus,
}

/// Judge group `group`'s realised AUC against its expected AUC.
pub fn check(group: &str, realised: &Realised, expected: &Expected) -> PerformanceCheck {
    check_with(group, realised, expected, None)
}

/// [`check`], with the interval of the expected AUC and the threshold metrics of the group's
/// matured probabilities and labels (`matured`: p, y, the model's threshold).
pub fn check_with(
    group: &str,
    realised: &Realised,
    expected: &Expected,
    matured: Option<(&[f64], &[bool], f64)>,
) -> PerformanceCheck {
    let e = expected.auc;
    let status = match realised.auc {
        None => DriftStatus::TooFew,
        Some(r) => {
            let gap = (r.low - e).max(e - r.high);
            if gap > AUC_ALARM_GAP {
                DriftStatus::Alarm
            } else if gap > AUC_WARNING_GAP {
                DriftStatus::Warning
            } else {
                DriftStatus::Stable
            }
        }
    };
    let calibration = calibration_check(realised);
    PerformanceCheck {
        group: group.to_string(),
        expected_auc: e,
        expected_auc_interval: matured.and_then(|(p, _, _)| expected_auc_interval(p)),
        at_threshold: matured.map(|(p, y, t)| threshold_metrics(p, y, t)),
        realised_auc: realised.auc,
        status: status.max(calibration.status),
        calibration,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::Rng;

    /// On calibrated scores with many ties (a tree's leaves), the expected AUC lands on the
    /// realised AUC of labels drawn from the same probabilities.
    #[test]
    fn expected_auc_matches_drawn_labels() {
        let mut rng = Rng::new(3);
        let leaves = [0.02, 0.08, 0.15, 0.3, 0.45, 0.6, 0.8];
        let p: Vec<f64> = (0..50_000)
            .map(|_| leaves[rng.below(leaves.len())])
            .collect();
        let y: Vec<bool> = p.iter().map(|&x| rng.uniform() < x).collect();
        let e = expected(&p);
        let r = metrics::roc_auc(&p, &y);
        assert!((e.auc - r).abs() < 0.01, "expected {} realised {r}", e.auc);
        let mean = p.iter().sum::<f64>() / p.len() as f64;
        assert!((e.churn_rate - mean).abs() < 1e-12);
    }

    /// Stable calibrated scores raise no performance warning in ≥ 95% of 100 runs; a collapse
    /// (labels drawn from 0.5 p + 0.5 × mean p: half the signal gone, the same base rate)
    /// alarms every time (realised AUC ~0.69 against ~0.83 expected).
    #[test]
    fn a_performance_collapse_alarms_and_stable_data_does_not() {
        let mut rng = Rng::new(21);
        let (mut flagged, mut collapsed) = (0, 0);
        for _ in 0..100 {
            let p: Vec<f64> = (0..3_000)
                .map(|_| {
                    let u = rng.uniform();
                    0.03 + 0.9 * u * u
                })
                .collect();
            let mean = p.iter().sum::<f64>() / p.len() as f64;
            let stable: Vec<bool> = p.iter().map(|&x| rng.uniform() < x).collect();
            let worse: Vec<bool> = p
                .iter()
                .map(|&x| rng.uniform() < 0.5 * x + 0.5 * mean)
                .collect();
            let e = expected(&p);
            let s = check("control", &realised(&p, &stable), &e);
            flagged += u32::from(s.status >= DriftStatus::Warning);
            let c = check("control", &realised(&p, &worse), &e);
            collapsed += u32::from(c.status == DriftStatus::Alarm);
        }
        eprintln!("stable runs flagged: {flagged} of 100; collapses alarmed: {collapsed} of 100");
        assert!(flagged <= 5, "{flagged} of 100 stable runs flagged");
        assert_eq!(
            collapsed, 100,
            "a collapse alarmed in {collapsed} of 100 runs"
        );
    }

    /// The expected AUC's interval holds the realised AUC of labels drawn from calibrated
    /// probabilities 95% of the time (200 runs each of tied leaf scores and continuous
    /// scores), and is narrower for more customers.
    #[test]
    fn the_expected_auc_interval_covers_calibrated_labels() {
        let mut rng = Rng::new(5);
        let leaves = [0.02, 0.08, 0.15, 0.3, 0.45, 0.6, 0.8];
        for tied in [true, false] {
            let mut covered = 0;
            for _ in 0..200 {
                let p: Vec<f64> = (0..2_000)
                    .map(|_| {
                        if tied {
                            leaves[rng.below(leaves.len())]
                        } else {
                            0.02 + 0.9 * rng.uniform()
                        }
                    })
                    .collect();
                let y: Vec<bool> = p.iter().map(|&x| rng.uniform() < x).collect();
                let [low, high] = expected_auc_interval(&p).unwrap();
                let r = metrics::roc_auc(&p, &y);
                covered += u32::from(low <= r && r <= high);
            }
            eprintln!("tied {tied}: covered {covered} of 200");
            assert!(
                (180..=198).contains(&covered),
                "tied {tied}: {covered} of 200"
            );
        }
        let p: Vec<f64> = (0..20_000).map(|i| leaves[i % leaves.len()]).collect();
        let [l1, h1] = expected_auc_interval(&p[..2_000]).unwrap();
        let [l2, h2] = expected_auc_interval(&p).unwrap();
        assert!(h2 - l2 < 0.5 * (h1 - l1), "{l1} {h1} / {l2} {h2}");
        assert!(expected_auc_interval(&[0.3]).is_none());
    }

    /// Hand-computed: threshold 0.5 flags 0.9, 0.6 (expected TP 1.5, FP 0.5) and leaves 0.2,
    /// 0.1 (expected FN 0.3); labels: 0.9 churned, 0.6 not, 0.2 churned, 0.1 not.
    #[test]
    fn threshold_metrics_match_hand_computation() {
        let t = threshold_metrics(&[0.9, 0.6, 0.2, 0.1], &[true, false, true, false], 0.5);
        assert_eq!(t.n, 4);
        assert!((t.expected_precision.unwrap() - 0.75).abs() < 1e-12);
        assert!((t.expected_recall.unwrap() - 1.5 / 1.8).abs() < 1e-12);
        assert!((t.expected_f1.unwrap() - 3.0 / 3.8).abs() < 1e-12);
        assert_eq!(t.precision.unwrap().value, 0.5);
        assert_eq!(t.recall.unwrap().value, 0.5);
        assert_eq!(t.f1, Some(0.5));
        let none = threshold_metrics(&[0.1], &[false], 0.5);
        assert!(none.precision.is_none() && none.recall.is_none() && none.f1.is_none());
    }

    /// Probabilities that still rank but no longer mean what they say (churn drawn from
    /// √p: a model grown overconfident in retention) alarm the calibration check in 100 of 100
    /// runs; calibrated ones flag it in at most 5.
    #[test]
    fn a_miscalibration_alarms_and_calibrated_scores_do_not() {
        let mut rng = Rng::new(8);
        let (mut flagged, mut alarmed) = (0, 0);
        for _ in 0..100 {
            let p: Vec<f64> = (0..3_000).map(|_| 0.02 + 0.6 * rng.uniform()).collect();
            let fine: Vec<bool> = p.iter().map(|&x| rng.uniform() < x).collect();
            let off: Vec<bool> = p.iter().map(|&x| rng.uniform() < x.sqrt()).collect();
            let c = calibration_check(&realised(&p, &fine));
            flagged += u32::from(c.status >= DriftStatus::Warning);
            let c = calibration_check(&realised(&p, &off));
            alarmed += u32::from(c.status == DriftStatus::Alarm);
        }
        eprintln!(
            "calibrated runs flagged {flagged} of 100; miscalibrated alarmed {alarmed} of 100"
        );
        assert!(flagged <= 5, "{flagged}");
        assert_eq!(alarmed, 100);
        let few = calibration_check(&realised(&[0.2, 0.4], &[false, true]));
        assert_eq!(few.status, DriftStatus::TooFew);
    }

    #[test]
    fn small_groups_say_so_instead_of_nan() {
        let r = realised(&[0.2, 0.4], &[false, true]);
        assert!(r.auc.is_none() && r.brier.is_none());
        assert!(r.note.unwrap().contains("too few matured predictions"));
        let p: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
        let y: Vec<bool> = (0..100).map(|i| i == 99).collect();
        let r = realised(&p, &y);
        assert!(r.auc.is_none() && r.brier.is_some());
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("NaN") && !json.contains("null,\"brier\":null"));
    }

    #[test]
    fn deciles_never_split_a_tie() {
        let p: Vec<f64> = (0..1000).map(|i| (i / 150) as f64 / 10.0).collect();
        let y: Vec<bool> = (0..1000).map(|i| i % 3 == 0).collect();
        let bins = calibration_deciles(&p, &y);
        assert_eq!(bins.iter().map(|b| b.n).sum::<usize>(), 1000);
        assert!(bins.len() <= 7);
    }
}
