//! Two versions of a model judged on the same matured customers (issue 34, item 4): each
//! customer's first logged input in the period is scored again by both versions, and their
//! probabilities are compared with the labels that came back — the paired AUC difference with
//! DeLong's variance, the Brier and log-loss differences with paired bootstrap intervals,
//! calibration, the churners and the value each would have reached at the same budget, and a
//! verdict.
//!
//! Customers a campaign offered an action are left out: their churn was changed by the offer,
//! and a model that ranks them high would be scored down for a save it helped bring about. The
//! control group and the customers without a contact decision remain — the population whose
//! churn the models predict.

use super::data::EvalData;
use super::stats::{placements, Estimate, Z95, Z_POWER80};
use super::EvalError;
use crate::model::metrics;
use crate::scoring::Scorer;
use rand_distr::{Distribution, Uniform};
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

/// Bootstrap resamples of the loss differences.
pub const BOOTSTRAP: usize = 2000;
/// Seed of the bootstrap (the comparison is reproducible).
const SEED: u64 = 0x5eed_c0de;
/// Power the minimum detectable AUC difference is stated for ([`Z_POWER80`]).
pub const POWER: f64 = 0.8;

/// One matured customer: the input that was scored, whether they churned within the horizon,
/// and their value.
#[derive(Debug, Clone, PartialEq)]
pub struct Matured {
    /// The stored input (JSON object).
    pub input: String,
    /// Churned within the horizon.
    pub churned: bool,
    /// Customer value (1 when none was logged).
    pub value: f64,
    /// The customer's store key (a keyed hash when the store hashes ids).
    pub customer: String,
    /// Where the row comes from in the campaign.
    pub origin: Origin,
    /// The model version that scored it.
    pub version: String,
}

crate::util::text_enum! {
    /// Where a matured customer stands in the campaign that followed its prediction.
    pub enum Origin {
        /// Held out as the control group: no action, whatever the advice.
        Control = "control group",
        /// In the treatment group with a negative contact decision (or no action to offer).
        NotContacted = "not contacted",
        /// Scored without a playbook decision (no advice was logged).
        NoDecision = "no contact decision",
        /// Offered an action: its churn was changed by the offer.
        Offered = "offered an action",
    }
}

impl Origin {
    /// The origin of prediction `p`.
    pub fn of(p: &super::PredictionObs) -> Origin {
        match p.control {
            None => Origin::NoDecision,
            Some(true) => Origin::Control,
            Some(false) if p.top_action.is_some() && p.contact != Some(false) => Origin::Offered,
            Some(false) => Origin::NotContacted,
        }
    }
}

/// How many customers the comparison used, and why the others were left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CompareCounts {
    /// Customers with a prediction in the period.
    pub customers: usize,
    /// Not matured yet (no label within the horizon before `as_of`).
    pub pending: usize,
    /// Offered an action (their churn was changed by it).
    pub treated: usize,
    /// Their stored input no longer encodes for one of the versions.
    pub unreadable: usize,
    /// Compared.
    pub compared: usize,
    /// Of those, churned.
    pub churned: usize,
}

/// The verdict of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareVerdict {
    /// The challenger ranks better (AUC interval above 0) and its log loss is not worse.
    ChallengerBetter,
    /// No interval excludes 0, or the challenger ranks better with worse probabilities
    /// (neither is better on both).
    NoDifferenceDetected,
    /// The champion ranks better, or the challenger's log loss is worse without a better ranking.
    ChampionBetter,
}

impl CompareVerdict {
    /// Words for reports: "challenger better", "no difference detected", "champion better".
    pub fn text(self) -> &'static str {
        match self {
            CompareVerdict::ChallengerBetter => "challenger better",
            CompareVerdict::NoDifferenceDetected => "no difference detected",
            CompareVerdict::ChampionBetter => "champion better",
        }
    }
}

/// One version's measures on the compared customers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionMeasures {
    /// Alias or version as asked for.
    pub name: String,
    /// Content version.
    pub version: String,
    /// ROC AUC.
    pub auc: f64,
    /// Brier score.
    pub brier: f64,
    /// Log loss.
    pub log_loss: f64,
    /// Mean predicted probability (calibration in the large: compare with the churn rate).
    pub mean_probability: f64,
    /// Expected calibration error over 10 equal-width bins.
    pub ece: f64,
    /// Churners among the `budget` customers with the highest expected loss.
    pub churners_caught: usize,
    /// Their value.
    pub value_caught: f64,
}

/// The comparison of two versions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Customers used and left out.
    pub counts: CompareCounts,
    /// Observed churn rate of the compared customers.
    pub churn_rate: f64,
    /// The champion (first named).
    pub champion: VersionMeasures,
    /// The challenger (second named).
    pub challenger: VersionMeasures,
    /// AUC difference, challenger − champion, with DeLong's 95% interval.
    pub auc_difference: Estimate,
    /// The smallest AUC difference this many customers detect with 80% power.
    pub auc_minimum_detectable: f64,
    /// Brier difference (challenger − champion; negative is better) with a paired bootstrap
    /// 95% interval.
    pub brier_difference: Estimate,
    /// Log-loss difference (challenger − champion; negative is better), paired bootstrap.
    pub log_loss_difference: Estimate,
    /// Customers each version would contact: the same budget for both.
    pub budget: usize,
    /// The verdict.
    pub verdict: CompareVerdict,
    /// Why, in one sentence.
    pub why: String,
}

/// Each customer's first prediction in `data` that matured untreated, with its stored input
/// (`inputs`, by prediction index), and the counts of those left out. Untreated means neither
/// offered an action by that prediction nor reached by an action within the horizon after it
/// (a later prediction of a customer scored again may offer one). With `keep_offered` the
/// customers offered an action are kept too (still counted as `treated`): only to show what
/// they would teach a model.
pub fn matured(
    data: &EvalData,
    horizon_ms: i64,
    as_of: i64,
    inputs: &mut dyn FnMut(usize) -> Option<String>,
    keep_offered: bool,
) -> (Vec<Matured>, CompareCounts) {
    let (matured, pending) = data.first_matured(horizon_ms, as_of);
    let mut counts = CompareCounts {
        customers: matured.len() + pending,
        pending,
        ..CompareCounts::default()
    };
    let keys = data.customer_keys();
    // actions taken per customer: one taken within the horizon after the prediction (offered
    // by a later prediction of a customer scored again) changed the churn that follows too
    let mut taken: crate::util::FxHashMap<u32, Vec<i64>> = crate::util::FxHashMap::default();
    for o in &data.outcomes {
        if o.event == crate::store::OutcomeEvent::ActionTaken {
            taken.entry(o.customer).or_default().push(o.at);
        }
    }
    let acted_on = |p: &super::PredictionObs| {
        taken.get(&p.customer).is_some_and(|ts| {
            ts.iter()
                .any(|&t| t >= p.scored_at && t < p.scored_at + horizon_ms)
        })
    };
    let mut rows = Vec::new();
    for (i, churned) in matured {
        let p = &data.predictions[i];
        let origin = match Origin::of(p) {
            Origin::Control | Origin::NotContacted | Origin::NoDecision if acted_on(p) => {
                Origin::Offered
            }
            o => o,
        };
        if origin == Origin::Offered {
            counts.treated += 1;
            if !keep_offered {
                continue;
            }
        }
        let Some(input) = inputs(i) else {
            counts.unreadable += 1;
            continue;
        };
        counts.compared += 1;
        counts.churned += usize::from(churned);
        rows.push(Matured {
            input,
            churned,
            value: p.value.unwrap_or(1.0),
            customer: keys[p.customer as usize].to_string(),
            origin,
            version: data.name(p.version).to_string(),
        });
    }
    (rows, counts)
}

/// The matured untreated customers of `model` in the store: predictions scored in `period`,
/// labels judged as of `as_of` within `horizon_days`.
pub async fn from_store(
    store: &crate::store::Store,
    model: &str,
    period: (Option<i64>, Option<i64>),
    as_of: i64,
    horizon_days: u32,
) -> Result<(Vec<Matured>, CompareCounts), EvalError> {
    let data = super::load(store, model, period, crate::store::Events::LabelsAndActions).await?;
    let mut inputs = super::load::first_inputs(store, &data, model, period).await?;
    let horizon = i64::from(horizon_days) * crate::time::DAY_MS;
    Ok(matured(
        &data,
        horizon,
        as_of,
        &mut |i| inputs.remove(&i),
        false,
    ))
}

/// The two versions `names` (aliases or versions) of the model directory `dir`, as scorers.
pub fn load_pair(
    dir: &std::path::Path,
    names: [&str; 2],
) -> Result<[Scorer; 2], crate::bundle::BundleError> {
    let m = crate::bundle::registry::ModelDir::new(dir);
    let load = |w: &str| -> Result<Scorer, crate::bundle::BundleError> {
        Ok(Scorer::new(crate::bundle::load(&m.resolve(Some(w))?)?))
    };
    Ok([load(names[0])?, load(names[1])?])
}

/// DeLong's paired comparison of two scores `a` and `b` of the same customers with labels `y`:
/// (AUC of a, AUC of b, variance of AUC(b) − AUC(a)), from each customer's placement under
/// both scores ([`super::stats::placements`], the one-score DeLong's). `None` without at least
/// two of each class.
pub fn delong(y: &[bool], a: &[f64], b: &[f64]) -> Option<(f64, f64, f64)> {
    let npos = y.iter().filter(|&&c| c).count();
    if npos < 2 || y.len() - npos < 2 {
        return None;
    }
    // each customer's placement under a score: v10 for churners, v01 for the others
    let per_row = |s: &[f64]| {
        let mut v = vec![0.0; s.len()];
        placements(s, y, |group, _, v10, v01| {
            for &i in group {
                v[i] = if y[i] { v10 } else { v01 };
            }
        });
        v
    };
    let (va, vb) = (per_row(a), per_row(b));
    let class = |c: bool| -> (Vec<f64>, Vec<f64>) {
        (0..y.len())
            .filter(|&i| y[i] == c)
            .map(|i| (va[i], vb[i]))
            .unzip()
    };
    let ((pa, pb), (na, nb)) = (class(true), class(false));
    let mean = |u: &[f64]| u.iter().sum::<f64>() / u.len() as f64;
    let cov = |u: &[f64], v: &[f64]| {
        let (mu, mv) = (mean(u), mean(v));
        u.iter()
            .zip(v)
            .map(|(x, y)| (x - mu) * (y - mv))
            .sum::<f64>()
            / (u.len() - 1) as f64
    };
    let var_diff = (cov(&pa, &pa) + cov(&pb, &pb) - 2.0 * cov(&pa, &pb)) / pa.len() as f64
        + (cov(&na, &na) + cov(&nb, &nb) - 2.0 * cov(&na, &nb)) / na.len() as f64;
    Some((mean(&pa), mean(&pb), var_diff.max(0.0)))
}

/// The mean of the paired differences `d` with a percentile bootstrap 95% interval
/// ([`BOOTSTRAP`] resamples, seeded).
pub fn paired_bootstrap(d: &[f64]) -> Estimate {
    let n = d.len();
    let mean = d.iter().sum::<f64>() / n.max(1) as f64;
    if n < 2 {
        return Estimate {
            value: mean,
            low: mean,
            high: mean,
        };
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    let pick = Uniform::new(0, n);
    let mut means: Vec<f64> = (0..BOOTSTRAP)
        .map(|_| (0..n).map(|_| d[pick.sample(&mut rng)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * BOOTSTRAP as f64) as usize).min(BOOTSTRAP - 1)];
    Estimate {
        value: mean,
        low: at(0.025),
        high: at(0.975),
    }
}

/// The verdict from the AUC interval (the ranking decides who is contacted) and the log-loss
/// interval (a challenger must not be worse calibrated), with the sentence that explains it.
fn verdict(auc: &Estimate, log_loss: &Estimate, mde: f64) -> (CompareVerdict, String) {
    let f = |e: &Estimate| format!("{:+.4} [{:+.4}, {:+.4}]", e.value, e.low, e.high);
    if auc.low > 0.0 && log_loss.low <= 0.0 {
        (
            CompareVerdict::ChallengerBetter,
            format!(
                "the challenger ranks better: AUC difference {} excludes 0",
                f(auc)
            ),
        )
    } else if auc.high < 0.0 {
        (
            CompareVerdict::ChampionBetter,
            format!(
                "the champion ranks better: AUC difference {} excludes 0",
                f(auc)
            ),
        )
    } else if auc.low > 0.0 {
        (
            CompareVerdict::NoDifferenceDetected,
            format!(
                "neither is better on both: the challenger ranks better (AUC difference {}) but its probabilities are worse (log-loss difference {}); recalibrate it and compare again",
                f(auc),
                f(log_loss)
            ),
        )
    } else if log_loss.low > 0.0 {
        (
            CompareVerdict::ChampionBetter,
            format!(
                "the challenger's probabilities are worse: log-loss difference {} excludes 0",
                f(log_loss)
            ),
        )
    } else {
        (
            CompareVerdict::NoDifferenceDetected,
            format!(
                "AUC difference {} includes 0; with these customers only a difference of ±{mde:.4} or more is detected with {:.0}% power",
                f(auc),
                POWER * 100.0
            ),
        )
    }
}

/// The paired statistics of two versions' probabilities `pa` (champion) and `pb`
/// (challenger) of the same customers with labels `y`.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// AUC of each.
    pub auc: [f64; 2],
    /// AUC difference (b − a), DeLong 95% interval.
    pub auc_difference: Estimate,
    /// Smallest AUC difference detected with [`POWER`].
    pub auc_minimum_detectable: f64,
    /// Brier difference (b − a), paired bootstrap.
    pub brier_difference: Estimate,
    /// Log-loss difference (b − a), paired bootstrap.
    pub log_loss_difference: Estimate,
    /// The verdict.
    pub verdict: CompareVerdict,
    /// Why.
    pub why: String,
}

/// Brier loss of one probability.
fn brier(p: f64, churned: bool) -> f64 {
    metrics::brier(&[p], &[churned])
}

/// Log loss of one probability (clipped as the training metrics clip it).
fn log_loss(p: f64, churned: bool) -> f64 {
    metrics::log_loss(&[p], &[churned])
}

/// Judge `pb` against `pa` on labels `y`; `None` without at least two of each class.
pub fn judge(y: &[bool], pa: &[f64], pb: &[f64]) -> Option<Judged> {
    let (auc_a, auc_b, var) = delong(y, pa, pb)?;
    let se = var.sqrt();
    let diff = auc_b - auc_a;
    let auc_difference = Estimate {
        value: diff,
        low: diff - Z95 * se,
        high: diff + Z95 * se,
    };
    let mde = (Z95 + Z_POWER80) * se;
    let paired = |loss: fn(f64, bool) -> f64| -> Vec<f64> {
        (0..y.len())
            .map(|i| loss(pb[i], y[i]) - loss(pa[i], y[i]))
            .collect()
    };
    let log_loss_difference = paired_bootstrap(&paired(log_loss));
    let (verdict, why) = verdict(&auc_difference, &log_loss_difference, mde);
    Some(Judged {
        auc: [auc_a, auc_b],
        auc_difference,
        auc_minimum_detectable: mde,
        brier_difference: paired_bootstrap(&paired(brier)),
        log_loss_difference,
        verdict,
        why,
    })
}

/// Why the challenger of `c` should be promoted under `[lifecycle] promote = "when-better"`, or
/// `None`: only a "challenger better" verdict whose AUC difference interval lies above 0 and
/// whose log-loss difference interval lies below 0 (better ranking and better probabilities).
pub fn promotion(c: &Comparison) -> Option<String> {
    let (auc, ll) = (&c.auc_difference, &c.log_loss_difference);
    (c.verdict == CompareVerdict::ChallengerBetter && auc.low > 0.0 && ll.high < 0.0).then(|| {
        format!(
            "challenger better on {} matured customers: AUC difference {:+.4} [{:+.4}, {:+.4}], \
             log-loss difference {:+.4} [{:+.4}, {:+.4}]",
            c.counts.compared, auc.value, auc.low, auc.high, ll.value, ll.low, ll.high
        )
    })
}

/// Score `rows` with both versions and compare them; `budget` customers are contacted by
/// each (at least 1). `names` are the versions as asked for (alias or version).
pub fn compare(
    rows: &[Matured],
    mut counts: CompareCounts,
    champion: (&str, &Scorer),
    challenger: (&str, &Scorer),
    budget: usize,
) -> Result<Comparison, EvalError> {
    let mut y = Vec::with_capacity(rows.len());
    let mut value = Vec::with_capacity(rows.len());
    let (mut pa, mut pb) = (Vec::new(), Vec::new());
    for r in rows {
        let enc = |s: &Scorer| super::drift::encode_stored(&s.bundle.encoder, &r.input);
        let (Some(xa), Some(xb)) = (enc(champion.1), enc(challenger.1)) else {
            counts.unreadable += 1;
            continue;
        };
        pa.push(champion.1.bundle.model.predict(&xa).probability);
        pb.push(challenger.1.bundle.model.predict(&xb).probability);
        y.push(r.churned);
        value.push(r.value);
    }
    counts.compared = y.len();
    counts.churned = y.iter().filter(|&&c| c).count();
    let Some(j) = judge(&y, &pa, &pb) else {
        return Err(EvalError::Invalid {
            field: "compare",
            message: format!(
                "{} matured customers without a contact ({} churned): both churners and stayers (at least 2 each) are needed to compare",
                counts.compared, counts.churned
            ),
        });
    };
    let budget = budget.clamp(1, y.len());
    let n = y.len() as f64;
    let measures = |name: &str, s: &Scorer, p: &[f64], auc: f64| {
        let mut order: Vec<usize> = (0..p.len()).collect();
        order.sort_by(|&a, &b| (p[b] * value[b]).total_cmp(&(p[a] * value[a])));
        let top = &order[..budget];
        VersionMeasures {
            name: name.to_string(),
            version: s.version.clone(),
            auc,
            brier: metrics::brier(p, &y),
            log_loss: metrics::log_loss(p, &y),
            mean_probability: p.iter().sum::<f64>() / n,
            ece: metrics::ece(p, &y, 10),
            churners_caught: top.iter().filter(|&&i| y[i]).count(),
            value_caught: top.iter().filter(|&&i| y[i]).map(|&i| value[i]).sum(),
        }
    };
    Ok(Comparison {
        churn_rate: counts.churned as f64 / n,
        champion: measures(champion.0, champion.1, &pa, j.auc[0]),
        challenger: measures(challenger.0, challenger.1, &pb, j.auc[1]),
        counts,
        auc_difference: j.auc_difference,
        auc_minimum_detectable: j.auc_minimum_detectable,
        brier_difference: j.brier_difference,
        log_loss_difference: j.log_loss_difference,
        budget,
        verdict: j.verdict,
        why: j.why,
    })
}

/// The comparison as text for the CLI.
pub fn summary(c: &Comparison) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let k = &c.counts;
    let _ = writeln!(
        s,
        "compared on {} matured customers without a contact ({} churned, {:.1}%); left out: {} offered an action, {} not matured, {} unreadable",
        k.compared,
        k.churned,
        100.0 * c.churn_rate,
        k.treated,
        k.pending,
        k.unreadable
    );
    let _ = writeln!(
        s,
        "  {:<28} {:>8} {:>8} {:>9} {:>10} {:>7} {:>9}",
        "version", "AUC", "Brier", "log loss", "mean p", "ECE", "caught"
    );
    for v in [&c.champion, &c.challenger] {
        let _ = writeln!(
            s,
            "  {:<28} {:>8.4} {:>8.4} {:>9.4} {:>10.4} {:>7.4} {:>9}",
            format!("{} ({})", v.name, v.version),
            v.auc,
            v.brier,
            v.log_loss,
            v.mean_probability,
            v.ece,
            v.churners_caught
        );
    }
    let f = |e: &Estimate| format!("{:+.4} [{:+.4}, {:+.4}]", e.value, e.low, e.high);
    let _ = writeln!(
        s,
        "  challenger − champion: AUC {} (DeLong; detectable ±{:.4}), Brier {}, log loss {} (paired bootstrap)",
        f(&c.auc_difference),
        c.auc_minimum_detectable,
        f(&c.brier_difference),
        f(&c.log_loss_difference)
    );
    let _ = writeln!(
        s,
        "  at a budget of {} contacts: churners caught {} vs {}, their value {:.0} vs {:.0}",
        c.budget,
        c.champion.churners_caught,
        c.challenger.churners_caught,
        c.champion.value_caught,
        c.challenger.value_caught
    );
    let _ = writeln!(s, "verdict: {} — {}", c.verdict.text(), c.why);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delong_matches_the_mann_whitney_auc_and_a_hand_computed_variance() {
        // every positive above every negative for b; a ties one pair
        let y = [true, true, false, false];
        let a = [0.9, 0.4, 0.4, 0.1];
        let b = [0.9, 0.8, 0.3, 0.1];
        let (auc_a, auc_b, var) = delong(&y, &a, &b).unwrap();
        assert!((auc_a - 0.875).abs() < 1e-12, "{auc_a}");
        assert!((auc_b - 1.0).abs() < 1e-12);
        // a: v10 = [1, 0.75], v01 = [0.75, 1]; b: all 1 → var = (s²(v10a) + s²(v01a)) / 2
        assert!(
            (var - (0.03125 / 2.0 + 0.03125 / 2.0)).abs() < 1e-12,
            "{var}"
        );
    }

    #[test]
    fn a_better_ranking_with_worse_probabilities_is_not_called_better() {
        let e = |value: f64, low: f64, high: f64| Estimate { value, low, high };
        let (v, why) = verdict(&e(0.02, 0.01, 0.03), &e(0.01, 0.005, 0.015), 0.01);
        assert_eq!(v, CompareVerdict::NoDifferenceDetected);
        assert!(why.contains("neither is better on both"), "{why}");
        let (v, _) = verdict(&e(0.02, 0.01, 0.03), &e(-0.01, -0.02, 0.001), 0.01);
        assert_eq!(v, CompareVerdict::ChallengerBetter);
        let (v, _) = verdict(&e(0.0, -0.01, 0.01), &e(0.01, 0.005, 0.015), 0.01);
        assert_eq!(v, CompareVerdict::ChampionBetter);
    }
}
