//! Uplift: each customer's incremental response to one action, `τ(x)` = churn probability
//! without the action − churn probability with it (positive: the action keeps the customer),
//! from meta-learners on the boosted learner.
//!
//! * **T-learner**: one churn model on the treated, one on the control; `τ = μ₀ − μ₁`.
//! * **X-learner** (Künzel et al. 2019): the two churn models impute each customer's effect
//!   (treated: `μ₀(x) − y`, control: `y − μ₁(x)`), one regression per arm (squared loss)
//!   learns it, and the two are mixed by the propensity `e`: `τ = e·τ₀ + (1 − e)·τ₁`.
//!
//! Both are cross-fitted: every customer's held-out effect comes from models fitted on the
//! other folds, the learner with the better held-out Qini coefficient is chosen, and the
//! chosen learner is refitted on every row. Weights (inverse propensities when exploration made
//! the assignment uneven) enter every fit.
//!
//! Files: `measures` (Qini, AUUC, uplift at k with bootstrap intervals).

pub mod measures;

use super::bins::Binned;
use super::boost::{self, BoostParams, Ensemble, Target};
use super::ModelError;
use crate::features::Matrix;
use crate::util::Rng;
use serde::{Deserialize, Serialize};

crate::util::text_enum! {
    /// A meta-learner.
    pub enum Learner {
        /// Two churn models, one per arm.
        T = "t",
        /// Two churn models, then two effect regressions mixed by the propensity.
        X = "x",
    }
}

/// A fitted uplift model of one action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UpliftModel {
    /// Churn models of the control and the treated arm.
    T {
        /// `μ₀`: churn without the action (log-odds).
        control: Ensemble,
        /// `μ₁`: churn with the action (log-odds).
        treated: Ensemble,
    },
    /// Effect regressions of each arm and the propensity that mixes them.
    X {
        /// `τ₀`, learned on the control arm.
        control: Ensemble,
        /// `τ₁`, learned on the treated arm.
        treated: Ensemble,
        /// Share of the rows treated (weighted).
        propensity: f64,
    },
}

impl Learner {
    /// Its name in text shown to people (`T-learner`).
    pub fn title(self) -> &'static str {
        match self {
            Learner::T => "T-learner",
            Learner::X => "X-learner",
        }
    }
}

impl UpliftModel {
    /// The learner behind this model.
    pub fn learner(&self) -> Learner {
        match self {
            UpliftModel::T { .. } => Learner::T,
            UpliftModel::X { .. } => Learner::X,
        }
    }

    /// Predicted drop in churn probability from the action, for an encoded row.
    pub fn effect(&self, row: &[f64]) -> f64 {
        self.effect_by(|f| row[f])
    }

    /// [`UpliftModel::effect`] when column `f` has value `value(f)`.
    pub fn effect_by(&self, value: impl Fn(usize) -> f64 + Copy) -> f64 {
        match self {
            UpliftModel::T { control, treated } => {
                boost::sigmoid(control.margin_by(value)) - boost::sigmoid(treated.margin_by(value))
            }
            UpliftModel::X {
                control,
                treated,
                propensity,
            } => {
                let e = *propensity;
                e * control.margin_by(value) + (1.0 - e) * treated.margin_by(value)
            }
        }
    }
}

/// The rows an uplift model learns from.
#[derive(Debug, Clone, Copy)]
pub struct UpliftSet<'a> {
    /// Encoded inputs.
    pub x: &'a Matrix,
    /// Offered the action (treated) or held out (control).
    pub treated: &'a [bool],
    /// Churned within the horizon.
    pub churned: &'a [bool],
    /// Sample weights (1: uniform assignment).
    pub weight: &'a [f64],
}

/// How uplift models are fitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpliftParams {
    /// The boosted learner of every stage (early stopping on an inner fifth of each fit).
    pub boost: BoostParams,
    /// Folds of the cross-fitting.
    pub folds: usize,
    /// Histogram bins.
    pub max_bins: usize,
    /// Seed of the folds and the inner splits.
    pub seed: u64,
    /// Threads of each fit.
    pub threads: usize,
}

impl Default for UpliftParams {
    fn default() -> Self {
        UpliftParams {
            boost: BoostParams {
                learning_rate: 0.05,
                max_depth: 3,
                min_samples_leaf: 50,
                l2: 10.0,
                ..BoostParams::default()
            },
            folds: 5,
            max_bins: 64,
            seed: 0,
            threads: 1,
        }
    }
}

/// Rows fewer than this in either arm are refused: a model per arm needs both classes.
pub const MIN_ARM_ROWS: usize = 50;

/// Split `rows` into (fit, stop) for early stopping: every fifth row (after a seeded shuffle)
/// stops.
fn inner_split(rows: &[usize], seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut v = rows.to_vec();
    Rng::new(seed ^ 0x1A7E_5701).shuffle(&mut v);
    let k = v.len() / 5;
    let mut stop = v[..k].to_vec();
    let mut fit = v[k..].to_vec();
    fit.sort_unstable();
    stop.sort_unstable();
    (fit, stop)
}

/// One boosted fit of `target` on `rows` with early stopping on an inner split.
fn fit_one(
    b: &Binned,
    target: Target<'_>,
    w: &[f64],
    rows: &[usize],
    p: &UpliftParams,
    salt: u64,
) -> Result<Ensemble, ModelError> {
    let (fit, stop) = inner_split(rows, p.seed ^ salt);
    let (e, _) = boost::fit_target(b, target, w, &fit, &stop, &p.boost, p.threads)?;
    Ok(e)
}

/// Fit `learner` on `rows` of `set` (binned as `b`).
fn fit_learner(
    learner: Learner,
    b: &Binned,
    set: &UpliftSet<'_>,
    rows: &[usize],
    p: &UpliftParams,
) -> Result<UpliftModel, ModelError> {
    let (t_rows, c_rows): (Vec<usize>, Vec<usize>) = rows.iter().partition(|&&r| set.treated[r]);
    for (arm, r) in [("treated", &t_rows), ("control", &c_rows)] {
        if r.len() < MIN_ARM_ROWS {
            return Err(ModelError::Data(format!(
                "the {arm} arm has {} rows; an uplift model needs at least {MIN_ARM_ROWS}",
                r.len()
            )));
        }
    }
    let w = set.weight;
    let y = Target::Labels(set.churned);
    let control = fit_one(b, y, w, &c_rows, p, 1)?;
    let treated = fit_one(b, y, w, &t_rows, p, 2)?;
    if learner == Learner::T {
        return Ok(UpliftModel::T { control, treated });
    }
    // imputed effects: what the action changed for each customer, by the other arm's model
    let mut d = vec![0.0; set.x.nrows];
    let churn = |r: usize| if set.churned[r] { 1.0 } else { 0.0 };
    for &r in &t_rows {
        d[r] = boost::sigmoid(control.margin_of_matrix(set.x, r)) - churn(r);
    }
    for &r in &c_rows {
        d[r] = churn(r) - boost::sigmoid(treated.margin_of_matrix(set.x, r));
    }
    let tau_control = fit_one(b, Target::Values(&d), w, &c_rows, p, 3)?;
    let tau_treated = fit_one(b, Target::Values(&d), w, &t_rows, p, 4)?;
    let wt: f64 = t_rows.iter().map(|&r| w[r]).sum();
    let wa: f64 = rows.iter().map(|&r| w[r]).sum();
    Ok(UpliftModel::X {
        control: tau_control,
        treated: tau_treated,
        propensity: wt / wa,
    })
}

/// Held-out effects of one learner: every row's effect from the models of the other folds.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossFitted {
    /// The learner.
    pub learner: Learner,
    /// Effect of every row, predicted by models that did not see it.
    pub effect: Vec<f64>,
    /// Measures of those effects.
    pub measures: measures::UpliftMeasures,
}

/// The result of [`fit`]: the chosen model, fitted on every row, and each learner's held-out
/// record.
#[derive(Debug, Clone, PartialEq)]
pub struct UpliftFit {
    /// The chosen learner's model on every row.
    pub model: UpliftModel,
    /// Every learner tried, in [`Learner::ALL`] order.
    pub tried: Vec<CrossFitted>,
    /// The fold of every row.
    pub folds: Vec<usize>,
}

/// Cross-fit every learner in `learners` on `set`, choose the one with the best held-out
/// Qini coefficient (ties: the first) and refit it on every row.
pub fn fit(
    set: &UpliftSet<'_>,
    learners: &[Learner],
    p: &UpliftParams,
) -> Result<UpliftFit, ModelError> {
    let n = set.x.nrows;
    if set.treated.len() != n || set.churned.len() != n || set.weight.len() != n {
        return Err(ModelError::Data(
            "uplift rows: inputs, arms, labels and weights differ in length".into(),
        ));
    }
    if learners.is_empty() || p.folds < 2 {
        return Err(ModelError::Config(
            "uplift needs at least one learner and two folds".into(),
        ));
    }
    let all: Vec<usize> = (0..n).collect();
    let b = Binned::new(set.x, &all, p.max_bins, p.threads)?;
    let folds = crate::util::stratified_folds(set.treated, p.folds, p.seed);
    // every (learner, fold) fit is independent: they share the threads, one thread each
    let jobs: Vec<(Learner, usize)> = learners
        .iter()
        .flat_map(|&l| (0..p.folds).map(move |k| (l, k)))
        .collect();
    let one = UpliftParams { threads: 1, ..*p };
    let t = std::time::Instant::now();
    let fitted = super::parallel_map(
        jobs.len(),
        p.threads,
        |j| {
            let (learner, k) = jobs[j];
            let train: Vec<usize> = all.iter().copied().filter(|&r| folds[r] != k).collect();
            fit_learner(learner, &b, set, &train, &one)
        },
        &|| {},
    );
    tracing::debug!(
        secs = t.elapsed().as_secs_f64(),
        fits = jobs.len(),
        "uplift cross-fitted"
    );
    let mut effect: Vec<Vec<f64>> = vec![vec![0.0; n]; learners.len()];
    for (j, m) in fitted.into_iter().enumerate() {
        let m = m?;
        let (learner, k) = jobs[j];
        let li = learners
            .iter()
            .position(|&l| l == learner)
            .expect("a listed learner");
        for r in (0..n).filter(|&r| folds[r] == k) {
            effect[li][r] = m.effect_by(|f| set.x.get(r, f));
        }
    }
    let t = std::time::Instant::now();
    let mut tried = Vec::new();
    for (&learner, effect) in learners.iter().zip(effect) {
        let scored: Vec<measures::Scored> = (0..n)
            .map(|r| measures::Scored {
                score: effect[r],
                treated: set.treated[r],
                good: !set.churned[r],
            })
            .collect();
        let m = measures::measure(&scored, p.seed);
        tried.push(CrossFitted {
            learner,
            effect,
            measures: m,
        });
    }
    tracing::debug!(secs = t.elapsed().as_secs_f64(), "uplift measured");
    let best = tried.iter().enumerate().fold(0, |best, (i, c)| {
        if c.measures.qini.value > tried[best].measures.qini.value {
            i
        } else {
            best
        }
    });
    let t = std::time::Instant::now();
    let model = fit_learner(tried[best].learner, &b, set, &all, p)?;
    tracing::debug!(secs = t.elapsed().as_secs_f64(), "uplift refitted");
    Ok(UpliftFit {
        model,
        tried,
        folds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two features; the action saves half the would-be churners where x0 > 0.5, harms
    /// (+0.1) where x1 > 0.8, nothing elsewhere.
    fn world(n: usize, seed: u64) -> (Matrix, Vec<bool>, Vec<bool>, Vec<f64>) {
        let mut rng = Rng::new(seed);
        let mut cols = [Vec::with_capacity(n), Vec::with_capacity(n)];
        let (mut t, mut y, mut tau) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..n {
            let (a, b) = (rng.uniform(), rng.uniform());
            cols[0].push(a);
            cols[1].push(b);
            let p = 0.2 + 0.3 * b;
            let effect = if a > 0.5 {
                0.5 * p
            } else if b > 0.8 {
                -0.1
            } else {
                0.0
            };
            let treated = rng.uniform() < 0.5;
            let q = if treated { p - effect } else { p };
            t.push(treated);
            y.push(rng.uniform() < q);
            tau.push(effect);
        }
        let data = cols.concat();
        (
            Matrix {
                nrows: n,
                ncols: 2,
                data,
            },
            t,
            y,
            tau,
        )
    }

    #[test]
    fn both_learners_rank_by_the_true_effect_and_the_better_is_chosen() {
        let (x, t, y, tau) = world(8000, 5);
        let w = vec![1.0; t.len()];
        let set = UpliftSet {
            x: &x,
            treated: &t,
            churned: &y,
            weight: &w,
        };
        let f = fit(&set, &Learner::ALL, &UpliftParams::default()).unwrap();
        assert_eq!(f.tried.len(), 2);
        for c in &f.tried {
            assert!(
                c.measures.qini.low > 0.0,
                "{:?}: {:?}",
                c.learner,
                c.measures.qini
            );
        }
        let best = f
            .tried
            .iter()
            .max_by(|a, b| a.measures.qini.value.total_cmp(&b.measures.qini.value))
            .unwrap();
        assert_eq!(f.model.learner(), best.learner);
        // the refitted model separates who it helps from whom it harms
        let mean = |sel: &dyn Fn(usize) -> bool| {
            let v: Vec<f64> = (0..x.nrows)
                .filter(|&r| sel(r))
                .map(|r| f.model.effect(&x.row(r)))
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        let helped = mean(&|r| tau[r] > 0.0);
        let harmed = mean(&|r| tau[r] < 0.0);
        assert!(helped > 0.08, "helped: {helped}");
        assert!(harmed < 0.0, "harmed: {harmed}");
    }

    #[test]
    fn an_arm_too_small_is_refused_with_its_count() {
        let (x, mut t, y, _) = world(400, 2);
        t.iter_mut().skip(30).for_each(|v| *v = false);
        let w = vec![1.0; t.len()];
        let set = UpliftSet {
            x: &x,
            treated: &t,
            churned: &y,
            weight: &w,
        };
        let e = fit(&set, &[Learner::T], &UpliftParams::default()).unwrap_err();
        assert!(e.to_string().contains("treated arm has"), "{e}");
    }
}
