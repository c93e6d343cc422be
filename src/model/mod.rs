//! The churn model: a compiled decision tree or gradient-boosted trees with calibrated,
//! interval-carrying probabilities, plus the cross-validated hyper-parameter search and
//! threshold choice that produce it.

pub mod bins;
pub mod boost;
pub mod calibrate;
pub mod metrics;
pub mod shap;
pub mod tree;

use crate::features::Matrix;
use calibrate::Calibrator;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use tree::{Prepared, Tree, TreeParams};

/// Errors of the model layer.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A learner failed.
    #[error("tree fit failed: {0}")]
    Fit(String),
    /// Bad model settings.
    #[error("invalid model setting: {0}")]
    Config(String),
    /// Not enough data to do what was asked.
    #[error("not enough data: {0}")]
    Data(String),
}

impl ModelError {
    /// Process exit code: 1 when fitting itself failed, 2 for bad settings or data.
    pub fn exit_code(&self) -> i32 {
        match self {
            ModelError::Fit(_) => 1,
            _ => 2,
        }
    }
}

crate::util::text_enum! {
    /// Which model training ships (`model.model`, `--model`).
    #[derive(Default, clap::ValueEnum)]
    pub enum ModelChoice {
        /// The single tree or the boosted trees, whichever has the lower cross-validated log loss.
        #[default]
        Auto = "auto",
        /// The single calibrated tree.
        Tree = "tree",
        /// Gradient-boosted trees.
        Boosted = "boosted",
    }
}

/// Class weighting for split search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeight {
    /// Every row weighs 1.
    #[default]
    None,
    /// Rows weigh n / (2 · n_class), so both classes weigh the same.
    Balanced,
}

/// Sample weights for `y` on the rows `rows` (other entries are 1).
pub fn sample_weights(y: &[bool], rows: &[usize], cw: ClassWeight) -> Vec<f64> {
    let mut w = vec![1.0; y.len()];
    if cw == ClassWeight::Balanced {
        let npos = rows.iter().filter(|&&r| y[r]).count() as f64;
        let nneg = rows.len() as f64 - npos;
        if npos > 0.0 && nneg > 0.0 {
            let n = rows.len() as f64;
            for &r in rows {
                w[r] = if y[r] {
                    n / (2.0 * npos)
                } else {
                    n / (2.0 * nneg)
                };
            }
        }
    }
    w
}

/// 95% Wilson score interval for `pos` successes in `n` trials.
pub fn wilson(pos: f64, n: f64) -> (f64, f64) {
    if n <= 0.0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_985f64;
    let p = pos / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// One prediction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Calibrated churn probability.
    pub probability: f64,
    /// Lower end of the 95% interval.
    pub low: f64,
    /// Upper end of the 95% interval.
    pub high: f64,
    /// Training rows in the leaf.
    pub support: f64,
    /// Leaf node index.
    pub leaf: usize,
    /// `probability >= threshold`.
    pub churn: bool,
}

/// Calibrated (p, low, high) of a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LeafScore {
    /// Calibrated probability.
    pub p: f64,
    /// Interval low.
    pub low: f64,
    /// Interval high.
    pub high: f64,
}

/// One calibration bin of a boosted model: the out-of-fold rows whose uncalibrated
/// probability fell in the bin, and the 95% Wilson interval of their churn rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreBin {
    /// Largest uncalibrated probability of the bin (the last bin: +inf).
    pub upper: f64,
    /// Out-of-fold training rows in the bin.
    pub n: f64,
    /// Churned rows among them.
    pub pos: f64,
    /// Interval low.
    pub low: f64,
    /// Interval high.
    pub high: f64,
}

/// The boosted part of a [`Model`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Boosted {
    /// The trees.
    pub ensemble: boost::Ensemble,
    /// Calibration bins, ascending (see [`ScoreBin`]).
    pub bins: Vec<ScoreBin>,
}

/// Bins for the intervals of a boosted model from out-of-fold uncalibrated probabilities `p`
/// and labels `y` (non-finite entries, rows never held out, are skipped): equal-count bins of at
/// least 200 rows (5 to 20 bins), ties never split.
pub fn score_bins(p: &[f64], y: &[bool]) -> Vec<ScoreBin> {
    let mut idx: Vec<usize> = (0..p.len()).filter(|&i| p[i].is_finite()).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let nb = (idx.len() / 200).clamp(5, 20);
    let per = idx.len().div_ceil(nb).max(1);
    let mut bins = Vec::new();
    let mut start = 0;
    while start < idx.len() {
        let mut end = (start + per).min(idx.len());
        while end < idx.len() && p[idx[end]] == p[idx[end - 1]] {
            end += 1;
        }
        let n = (end - start) as f64;
        let pos = idx[start..end].iter().filter(|&&i| y[i]).count() as f64;
        let (low, high) = wilson(pos, n);
        bins.push(ScoreBin {
            upper: p[idx[end - 1]],
            n,
            pos,
            low,
            high,
        });
        start = end;
    }
    if let Some(last) = bins.last_mut() {
        last.upper = f64::INFINITY;
    }
    bins
}

/// The fitted, calibrated model stored in the bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// The compiled tree. For a boosted model: the root alone (the training base rate), with
    /// the mean-|SHAP| importances.
    pub tree: Tree,
    /// Hyper-parameters it was grown with.
    pub params: TreeParams,
    /// Calibration map.
    pub calibrator: Calibrator,
    /// Decision threshold on the calibrated probability.
    pub threshold: f64,
    /// Per-node calibrated scores (indexed like `tree.nodes`).
    pub scores: Vec<LeafScore>,
    /// Gradient-boosted trees; when present they, not `tree`, make the predictions.
    pub boosted: Option<Boosted>,
}

impl Model {
    /// Assemble a model, precomputing every node's calibrated probability and interval.
    pub fn new(tree: Tree, params: TreeParams, calibrator: Calibrator, threshold: f64) -> Model {
        let scores = tree
            .nodes
            .iter()
            .map(|n| {
                let p = calibrator.apply(n.value);
                let (lo, hi) = wilson(n.pos, n.n);
                LeafScore {
                    p,
                    low: calibrator.apply(lo).min(p),
                    high: calibrator.apply(hi).max(p),
                }
            })
            .collect();
        Model {
            tree,
            params,
            calibrator,
            threshold,
            scores,
            boosted: None,
        }
    }

    /// A boosted model: `base` is the root-only tree (training rows and base rate, with the
    /// importances), `bins` the out-of-fold calibration bins for the intervals.
    pub fn boosted(
        base: Tree,
        params: TreeParams,
        ensemble: boost::Ensemble,
        bins: Vec<ScoreBin>,
        calibrator: Calibrator,
        threshold: f64,
    ) -> Model {
        let mut m = Model::new(base, params, calibrator, threshold);
        m.boosted = Some(Boosted { ensemble, bins });
        m
    }

    /// `"boosted"` or `"tree"`.
    pub fn kind(&self) -> &'static str {
        if self.boosted.is_some() {
            "boosted"
        } else {
            "tree"
        }
    }

    /// Predict one encoded row.
    #[inline]
    pub fn predict(&self, row: &[f64]) -> Prediction {
        match &self.boosted {
            Some(b) => self.predict_margin(b, b.ensemble.margin(row)),
            None => self.from_leaf(self.tree.leaf_of(row)),
        }
    }

    /// Predictions of the row-major `rows` (`width` columns each) into `out`, equal to
    /// [`Model::predict`] row by row; boosted margins are computed a block of rows at a time
    /// (see [`boost::Ensemble::margins`]), `margins` is scratch space.
    pub fn predict_rows(
        &self,
        rows: &[f64],
        width: usize,
        margins: &mut Vec<f64>,
        out: &mut Vec<Prediction>,
    ) {
        out.clear();
        match &self.boosted {
            Some(b) => {
                b.ensemble.margins(rows, width, margins);
                out.extend(margins.iter().map(|&m| self.predict_margin(b, m)));
            }
            None => out.extend(rows.chunks_exact(width.max(1)).map(|r| self.predict(r))),
        }
    }

    /// Predict row `r` of a matrix.
    pub fn predict_matrix(&self, x: &Matrix, r: usize) -> Prediction {
        match &self.boosted {
            Some(b) => self.predict_margin(b, b.ensemble.margin_of_matrix(x, r)),
            None => self.from_leaf(self.tree.leaf_of_matrix(x, r)),
        }
    }

    /// Uncalibrated probability of row `r` of a matrix (leaf rate or σ(margin)).
    pub fn raw_matrix(&self, x: &Matrix, r: usize) -> f64 {
        match &self.boosted {
            Some(b) => boost::sigmoid(b.ensemble.margin_of_matrix(x, r)),
            None => self.tree.nodes[self.tree.leaf_of_matrix(x, r)].value,
        }
    }

    /// Prediction of a boosted model from its margin; `leaf` is the calibration bin.
    #[inline]
    fn predict_margin(&self, b: &Boosted, margin: f64) -> Prediction {
        let raw = boost::sigmoid(margin);
        let p = self.calibrator.apply(raw);
        let i = b
            .bins
            .partition_point(|s| s.upper < raw)
            .min(b.bins.len().saturating_sub(1));
        let bin = b.bins.get(i).copied().unwrap_or(ScoreBin {
            upper: f64::INFINITY,
            n: 0.0,
            pos: 0.0,
            low: 0.0,
            high: 1.0,
        });
        Prediction {
            probability: p,
            low: bin.low.min(p),
            high: bin.high.max(p),
            support: bin.n,
            leaf: i,
            churn: p >= self.threshold,
        }
    }

    /// Prediction for a leaf index.
    #[inline]
    pub fn from_leaf(&self, leaf: usize) -> Prediction {
        let s = self.scores[leaf];
        Prediction {
            probability: s.p,
            low: s.low,
            high: s.high,
            support: self.tree.nodes[leaf].n,
            leaf,
            churn: s.p >= self.threshold,
        }
    }
}

/// One row of the cross-validation table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvRow {
    /// max_depth.
    pub max_depth: usize,
    /// min_samples_leaf.
    pub min_samples_leaf: usize,
    /// Mean validation log loss over folds (raw leaf probabilities).
    pub log_loss: f64,
    /// Standard deviation of the fold log losses.
    pub log_loss_std: f64,
    /// Mean validation ROC-AUC.
    pub roc_auc: f64,
    /// Mean validation Brier score.
    pub brier: f64,
    /// Mean number of leaves.
    pub leaves: f64,
}

/// Settings of the grid search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchSpace {
    /// Candidate depths.
    pub max_depth: Vec<usize>,
    /// Candidate leaf sizes.
    pub min_samples_leaf: Vec<usize>,
}

/// Fixed number of contiguous chunks [`parallel_chunks`] cuts a range into, so results that
/// are added up chunk by chunk do not depend on the machine's core count.
pub const FIXED_CHUNKS: usize = 16;

/// `f` over [`FIXED_CHUNKS`] contiguous, ordered ranges covering `0..n` (some empty when `n` is
/// small), on `threads` threads; results in range order.
pub fn parallel_chunks<T: Send>(
    n: usize,
    threads: usize,
    f: impl Fn(std::ops::Range<usize>) -> T + Sync,
) -> Vec<T> {
    parallel_map(
        FIXED_CHUNKS,
        threads,
        |c| f(c * n / FIXED_CHUNKS..(c + 1) * n / FIXED_CHUNKS),
        &|| {},
    )
}

/// Run `tasks` closures over `threads` threads; results in task order.
pub fn parallel_map<T: Send>(
    n: usize,
    threads: usize,
    f: impl Fn(usize) -> T + Sync,
    tick: &(dyn Fn() + Sync),
) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1).min(n.max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let v = f(i);
                out.lock().expect("no poisoned lock")[i] = Some(v);
                tick();
            });
        }
    });
    out.into_inner()
        .expect("no poisoned lock")
        .into_iter()
        .map(|v| v.expect("every task ran"))
        .collect()
}

/// Leaf value of `tree` for row `r` when growth stops at `depth`.
fn value_at_depth(tree: &Tree, x: &Matrix, r: usize, depth: usize) -> f64 {
    let mut i = 0usize;
    let mut d = 0usize;
    loop {
        let n = &tree.nodes[i];
        if n.is_leaf() || d >= depth {
            return n.value;
        }
        i = if x.get(r, n.feature as usize) <= n.threshold {
            n.left as usize
        } else {
            n.right as usize
        };
        d += 1;
    }
}

/// Stratified k-fold grid search over `space`, scored by mean validation log loss over the
/// folds listed in `eval_folds` (all `0..k` for full cross-validation).
///
/// For learners whose trees nest by depth (CART), one deepest tree per (leaf size, fold) is grown
/// and evaluated truncated at every candidate depth — identical to growing each depth separately.
#[allow(clippy::too_many_arguments)]
pub fn grid_search(
    prep: &Prepared,
    y: &[bool],
    w: &[f64],
    rows: &[usize],
    folds: &[usize],
    eval_folds: &[usize],
    base: &TreeParams,
    space: &SearchSpace,
    threads: usize,
    tick: &(dyn Fn() + Sync),
) -> Result<(Vec<CvRow>, TreeParams), ModelError> {
    if space.max_depth.is_empty() || space.min_samples_leaf.is_empty() {
        return Err(ModelError::Config("the search grid is empty".into()));
    }
    if eval_folds.is_empty() {
        return Err(ModelError::Config("no fold to validate on".into()));
    }
    let grid = Grid {
        prep,
        y,
        w,
        rows,
        folds,
        eval_folds,
        base,
        space,
        groups: grid_groups(prep.learner.nests_by_depth(), space),
    };
    let tasks = grid.groups.len() * eval_folds.len();
    let results = parallel_map(tasks, threads, |t| grid.run_task(t), tick);
    let table = grid.table(&results)?;
    let params = best_params(&table, base);
    Ok((table, params))
}

/// Task groups of the grid: (leaf-size index, depth index). Nested learners get one group per
/// leaf size (depth `None`: grown to the deepest candidate and truncated at every depth).
fn grid_groups(nested: bool, space: &SearchSpace) -> Vec<(usize, Option<usize>)> {
    if nested {
        (0..space.min_samples_leaf.len())
            .map(|l| (l, None))
            .collect()
    } else {
        (0..space.min_samples_leaf.len())
            .flat_map(|l| (0..space.max_depth.len()).map(move |d| (l, Some(d))))
            .collect()
    }
}

/// Validation scores of one fitted tree truncated at one candidate depth.
#[derive(Debug, Clone, Copy)]
struct FoldScore {
    /// Index into the candidate depths.
    depth: usize,
    /// Log loss.
    log_loss: f64,
    /// ROC-AUC.
    roc_auc: f64,
    /// Brier score.
    brier: f64,
    /// Leaves of the truncated tree.
    leaves: f64,
}

/// Shared state of a grid search; with `e` validation folds, task `t` is group `t / e` on
/// fold `eval_folds[t % e]`.
struct Grid<'a, 'p> {
    prep: &'a Prepared<'p>,
    y: &'a [bool],
    w: &'a [f64],
    rows: &'a [usize],
    folds: &'a [usize],
    eval_folds: &'a [usize],
    base: &'a TreeParams,
    space: &'a SearchSpace,
    groups: Vec<(usize, Option<usize>)>,
}

impl Grid<'_, '_> {
    /// Fit task `t` on its training folds and score it on its validation fold, per depth index.
    fn run_task(&self, t: usize) -> Result<Vec<FoldScore>, ModelError> {
        let depths = &self.space.max_depth;
        let max_d = *depths.iter().max().expect("non-empty");
        let e = self.eval_folds.len();
        let (l, d) = self.groups[t / e];
        let fold = self.eval_folds[t % e];
        let folds = self.folds;
        let tr: Vec<usize> = self
            .rows
            .iter()
            .copied()
            .filter(|&r| folds[r] != fold)
            .collect();
        let va: Vec<usize> = self
            .rows
            .iter()
            .copied()
            .filter(|&r| folds[r] == fold)
            .collect();
        let params = TreeParams {
            max_depth: d.map_or(max_d, |d| depths[d]),
            min_samples_leaf: self.space.min_samples_leaf[l],
            ..*self.base
        };
        let tree = self.prep.fit(self.y, self.w, &tr, &params, 1)?;
        let vy: Vec<bool> = va.iter().map(|&r| self.y[r]).collect();
        let which: Vec<usize> = match d {
            Some(d) => vec![d],
            None => (0..depths.len()).collect(),
        };
        Ok(which
            .into_iter()
            .map(|di| {
                let p: Vec<f64> = va
                    .iter()
                    .map(|&r| value_at_depth(&tree, self.prep.x, r, depths[di]))
                    .collect();
                let leaves = count_leaves_at_depth(&tree, depths[di]);
                FoldScore {
                    depth: di,
                    log_loss: metrics::log_loss(&p, &vy),
                    roc_auc: metrics::roc_auc(&p, &vy),
                    brier: metrics::brier(&p, &vy),
                    leaves: leaves as f64,
                }
            })
            .collect())
    }

    /// The cross-validation table, leaf sizes outer and depths inner; the first failed task in
    /// that order is the error.
    fn table(
        &self,
        results: &[Result<Vec<FoldScore>, ModelError>],
    ) -> Result<Vec<CvRow>, ModelError> {
        let mut table = Vec::new();
        for (l, &leaf) in self.space.min_samples_leaf.iter().enumerate() {
            for (di, &depth) in self.space.max_depth.iter().enumerate() {
                table.push(self.cv_row(results, (l, leaf), (di, depth))?);
            }
        }
        Ok(table)
    }

    /// Mean (and log-loss spread) over folds of one grid cell.
    fn cv_row(
        &self,
        results: &[Result<Vec<FoldScore>, ModelError>],
        (l, leaf): (usize, usize),
        (di, depth): (usize, usize),
    ) -> Result<CvRow, ModelError> {
        let mut ll = Vec::new();
        let (mut auc, mut br, mut lv) = (0.0, 0.0, 0.0);
        for (t, res) in results.iter().enumerate() {
            let (gl, gd) = self.groups[t / self.eval_folds.len()];
            if gl != l || gd.is_some_and(|g| g != di) {
                continue;
            }
            let scores = res.as_ref().map_err(|e| ModelError::Fit(e.to_string()))?;
            for s in scores.iter().filter(|s| s.depth == di) {
                ll.push(s.log_loss);
                auc += s.roc_auc;
                br += s.brier;
                lv += s.leaves;
            }
        }
        let m = ll.len().max(1) as f64;
        let mean = ll.iter().sum::<f64>() / m;
        let var = ll.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / m;
        Ok(CvRow {
            max_depth: depth,
            min_samples_leaf: leaf,
            log_loss: mean,
            log_loss_std: var.sqrt(),
            roc_auc: auc / m,
            brier: br / m,
            leaves: lv / m,
        })
    }
}

/// Parameters of the best table row: lowest log loss; ties → simpler tree (smaller depth,
/// larger leaves).
fn best_params(table: &[CvRow], base: &TreeParams) -> TreeParams {
    let best = table
        .iter()
        .min_by(|a, b| {
            a.log_loss
                .total_cmp(&b.log_loss)
                .then(a.max_depth.cmp(&b.max_depth))
                .then(b.min_samples_leaf.cmp(&a.min_samples_leaf))
        })
        .expect("non-empty table");
    TreeParams {
        max_depth: best.max_depth,
        min_samples_leaf: best.min_samples_leaf,
        ..*base
    }
}

/// Leaves of `tree` when growth stops at `depth`.
fn count_leaves_at_depth(tree: &Tree, depth: usize) -> usize {
    let mut count = 0;
    let mut stack = vec![(0usize, 0usize)];
    while let Some((i, d)) = stack.pop() {
        let n = &tree.nodes[i];
        if n.is_leaf() || d >= depth {
            count += 1;
        } else {
            stack.push((n.left as usize, d + 1));
            stack.push((n.right as usize, d + 1));
        }
    }
    count
}

/// Out-of-fold raw probabilities for every row in `rows` (entries of other rows are NaN).
#[allow(clippy::too_many_arguments)]
pub fn out_of_fold(
    prep: &Prepared,
    y: &[bool],
    w: &[f64],
    rows: &[usize],
    folds: &[usize],
    k: usize,
    params: &TreeParams,
    threads: usize,
) -> Result<Vec<f64>, ModelError> {
    // threads left over when there are fewer folds than threads go into each fit
    let inner = (threads / k.max(1)).max(1);
    let per_fold = parallel_map(
        k,
        threads,
        |fold| -> Result<Vec<(usize, f64)>, ModelError> {
            let tr: Vec<usize> = rows.iter().copied().filter(|&r| folds[r] != fold).collect();
            let tree = prep.fit(y, w, &tr, params, inner)?;
            Ok(rows
                .iter()
                .copied()
                .filter(|&r| folds[r] == fold)
                .map(|r| (r, tree.nodes[tree.leaf_of_matrix(prep.x, r)].value))
                .collect())
        },
        &|| {},
    );
    let mut out = vec![f64::NAN; y.len()];
    for res in per_fold {
        for (r, p) in res? {
            out[r] = p;
        }
    }
    Ok(out)
}

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
