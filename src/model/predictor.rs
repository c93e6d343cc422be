//! The fitted model: a [`Predictor`] (one tree or boosted trees) behind a calibration map and a
//! decision threshold, and the [`Prediction`] it gives a row.

use super::boost;
use super::calibrate::Calibrator;
use super::tree::{Node, Tree, TreeParams};
use super::{wilson, ModelKind};
use crate::features::Matrix;
use serde::{Deserialize, Serialize};

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

/// A single calibrated tree: the compiled tree and every node's calibrated score.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeModel {
    /// The compiled tree.
    pub tree: Tree,
    /// Per-node calibrated scores (indexed like `tree.nodes`).
    pub scores: Vec<LeafScore>,
}

/// Gradient-boosted trees with the calibration bins their intervals come from.
#[derive(Debug, Clone, PartialEq)]
pub struct Boosted {
    /// The trees.
    pub ensemble: boost::Ensemble,
    /// Calibration bins, ascending (see [`ScoreBin`]).
    pub bins: Vec<ScoreBin>,
    /// The training rows before any split: rows, churners and the smoothed base rate.
    pub base: Node,
    /// Mean |SHAP| per encoded column over the training rows, normalised to sum 1.
    pub importances: Vec<f64>,
}

/// What turns an encoded row into an uncalibrated score: one tree, or boosted trees (room for
/// more, such as a model per action).
#[derive(Debug, Clone, PartialEq)]
pub enum Predictor {
    /// A single tree: the leaf's rate, its node's Wilson interval.
    Tree(TreeModel),
    /// Boosted trees: σ(margin), the calibration bin's Wilson interval.
    Boosted(Boosted),
}

/// The fitted, calibrated model stored in the bundle (serialized as its stored layout,
/// [`super::ModelRecord`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The tree or the boosted trees.
    pub predictor: Predictor,
    /// Hyper-parameters the single tree was (or would have been) grown with.
    pub params: TreeParams,
    /// Calibration map.
    pub calibrator: Calibrator,
    /// Decision threshold on the calibrated probability.
    pub threshold: f64,
}

/// Every node's calibrated probability and interval.
pub(super) fn node_scores(tree: &Tree, calibrator: &Calibrator) -> Vec<LeafScore> {
    tree.nodes
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
        .collect()
}

impl Model {
    /// A single-tree model, precomputing every node's calibrated probability and interval.
    pub fn tree(tree: Tree, params: TreeParams, calibrator: Calibrator, threshold: f64) -> Model {
        let scores = node_scores(&tree, &calibrator);
        Model {
            predictor: Predictor::Tree(TreeModel { tree, scores }),
            params,
            calibrator,
            threshold,
        }
    }

    /// A boosted model.
    pub fn boosted(
        boosted: Boosted,
        params: TreeParams,
        calibrator: Calibrator,
        threshold: f64,
    ) -> Model {
        Model {
            predictor: Predictor::Boosted(boosted),
            params,
            calibrator,
            threshold,
        }
    }

    /// Tree or boosted.
    pub fn kind(&self) -> ModelKind {
        match self.predictor {
            Predictor::Tree(_) => ModelKind::Tree,
            Predictor::Boosted(_) => ModelKind::Boosted,
        }
    }

    /// The single tree, if this is one.
    pub fn single_tree(&self) -> Option<&TreeModel> {
        match &self.predictor {
            Predictor::Tree(t) => Some(t),
            Predictor::Boosted(_) => None,
        }
    }

    /// The single tree, if this is one, to change (tests that damage a bundle on purpose).
    pub fn single_tree_mut(&mut self) -> Option<&mut TreeModel> {
        match &mut self.predictor {
            Predictor::Tree(t) => Some(t),
            Predictor::Boosted(_) => None,
        }
    }

    /// The boosted trees, if these are.
    pub fn boosted_trees(&self) -> Option<&Boosted> {
        match &self.predictor {
            Predictor::Boosted(b) => Some(b),
            Predictor::Tree(_) => None,
        }
    }

    /// Importance per encoded column (impurity decrease of the tree, mean |SHAP| of boosted
    /// trees), normalised to sum 1.
    pub fn importances(&self) -> &[f64] {
        match &self.predictor {
            Predictor::Tree(t) => &t.tree.importances,
            Predictor::Boosted(b) => &b.importances,
        }
    }

    /// The training rows before any split (the tree's root).
    pub fn base(&self) -> &Node {
        match &self.predictor {
            Predictor::Tree(t) => &t.tree.nodes[0],
            Predictor::Boosted(b) => &b.base,
        }
    }

    /// Predict one encoded row.
    #[inline]
    pub fn predict(&self, row: &[f64]) -> Prediction {
        match &self.predictor {
            Predictor::Boosted(b) => self.predict_margin(b, b.ensemble.margin(row)),
            Predictor::Tree(t) => self.from_leaf(t, t.tree.leaf_of(row)),
        }
    }

    /// The prediction of boosted trees for a margin computed elsewhere (see
    /// [`boost::ChoiceTables`]); `None` for a single tree.
    pub fn predict_from_margin(&self, margin: f64) -> Option<Prediction> {
        self.boosted_trees().map(|b| self.predict_margin(b, margin))
    }

    /// `row` prepared for [`Model::predict_changed`]: boosted trees remember the row's leaf in
    /// every tree (a single tree keeps nothing; its walk is already a handful of steps).
    pub fn rescorer(&self, row: &[f64]) -> Option<boost::RowPaths> {
        self.boosted_trees().map(|b| b.ensemble.row_paths(row))
    }

    /// [`Model::predict`] of `changed_row`, which equals the row `paths` was prepared from
    /// except in the columns `changed`: only trees whose path tests a changed column are
    /// walked again, and the result is bit-identical to predicting from scratch.
    pub fn predict_changed(
        &self,
        paths: Option<&boost::RowPaths>,
        changed_row: &[f64],
        changed: &[usize],
    ) -> Prediction {
        match (&self.predictor, paths) {
            (Predictor::Boosted(b), Some(p)) => {
                self.predict_margin(b, p.margin(&b.ensemble, changed_row, changed))
            }
            _ => self.predict(changed_row),
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
        match &self.predictor {
            Predictor::Boosted(b) => {
                b.ensemble.margins(rows, width, margins);
                out.extend(margins.iter().map(|&m| self.predict_margin(b, m)));
            }
            Predictor::Tree(_) => {
                out.extend(rows.chunks_exact(width.max(1)).map(|r| self.predict(r)))
            }
        }
    }

    /// Predict row `r` of a matrix.
    pub fn predict_matrix(&self, x: &Matrix, r: usize) -> Prediction {
        match &self.predictor {
            Predictor::Boosted(b) => self.predict_margin(b, b.ensemble.margin_of_matrix(x, r)),
            Predictor::Tree(t) => self.from_leaf(t, t.tree.leaf_of_matrix(x, r)),
        }
    }

    /// Uncalibrated probability of row `r` of a matrix (leaf rate or σ(margin)).
    pub fn raw_matrix(&self, x: &Matrix, r: usize) -> f64 {
        match &self.predictor {
            Predictor::Boosted(b) => boost::sigmoid(b.ensemble.margin_of_matrix(x, r)),
            Predictor::Tree(t) => t.tree.nodes[t.tree.leaf_of_matrix(x, r)].value,
        }
    }

    /// Prediction of a boosted model from its margin; `leaf` is the calibration bin.
    #[inline]
    fn predict_margin(&self, b: &Boosted, margin: f64) -> Prediction {
        let raw = boost::sigmoid(margin);
        let p = self.calibrator.apply_margin(margin, raw);
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

    /// Prediction for leaf `leaf` of the single tree `t`.
    #[inline]
    pub fn from_leaf(&self, t: &TreeModel, leaf: usize) -> Prediction {
        let s = t.scores[leaf];
        Prediction {
            probability: s.p,
            low: s.low,
            high: s.high,
            support: t.tree.nodes[leaf].n,
            leaf,
            churn: s.p >= self.threshold,
        }
    }
}
