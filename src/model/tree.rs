//! The compiled tree (flat arrays, our own prediction semantics) and the learners that grow it.
//!
//! Semantics, pinned by tests: a row goes **left when `x <= threshold`**, which is how the training
//! rows were partitioned when the split was chosen (linfa-trees partitions with `<=` in `fit` but
//! routes with `<` in `predict`; sklearn uses `<=` throughout).

use super::ModelError;
use crate::features::Matrix;
use serde::{Deserialize, Serialize};

/// Split criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Criterion {
    /// Gini impurity.
    #[default]
    Gini,
    /// Shannon entropy (bits).
    Entropy,
}

impl Criterion {
    /// Impurity of a node with weighted class totals `neg`, `pos`.
    pub fn impurity(self, neg: f64, pos: f64) -> f64 {
        let t = neg + pos;
        if t <= 0.0 {
            return 0.0;
        }
        let p = pos / t;
        let q = neg / t;
        match self {
            Criterion::Gini => 1.0 - p * p - q * q,
            Criterion::Entropy => {
                let h = |x: f64| if x > 0.0 { -x * x.log2() } else { 0.0 };
                h(p) + h(q)
            }
        }
    }
}

/// Hyper-parameters of one tree.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TreeParams {
    /// Split criterion.
    pub criterion: Criterion,
    /// Maximum depth (root = depth 0).
    pub max_depth: usize,
    /// Minimum training rows in a leaf.
    pub min_samples_leaf: usize,
    /// Minimum training rows in a node to try splitting it.
    pub min_samples_split: usize,
    /// Minimum weighted impurity decrease of a split.
    pub min_impurity_decrease: f64,
}

impl Default for TreeParams {
    fn default() -> Self {
        TreeParams {
            criterion: Criterion::Gini,
            max_depth: 6,
            min_samples_leaf: 1,
            min_samples_split: 2,
            min_impurity_decrease: 1e-7,
        }
    }
}

/// Sentinel child index marking a leaf.
pub const LEAF: u32 = u32::MAX;

/// A node of the compiled tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Encoded column tested (internal nodes).
    pub feature: u32,
    /// Threshold: `x <= threshold` goes left.
    pub threshold: f64,
    /// Left child or [`LEAF`].
    pub left: u32,
    /// Right child or [`LEAF`].
    pub right: u32,
    /// Training rows reaching the node.
    pub n: f64,
    /// Churned training rows reaching the node.
    pub pos: f64,
    /// Class the learner predicts here (majority by sample weight).
    pub class: bool,
    /// Smoothed churn rate of the node's training rows (before calibration).
    pub value: f64,
}

impl Node {
    /// True for leaves.
    pub fn is_leaf(&self) -> bool {
        self.left == LEAF
    }
}

/// The compiled tree: nodes in a flat vector, root first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Nodes; children always have larger indices than their parent.
    pub nodes: Vec<Node>,
    /// Which learner grew it.
    pub learner: String,
    /// Weighted impurity decrease per encoded column, normalised to sum 1.
    pub importances: Vec<f64>,
}

/// Structure handed over by a learner: (feature, threshold, left, right, class); leaves have
/// `left == right == LEAF`.
pub type Structure = Vec<(u32, f64, u32, u32, bool)>;

impl Tree {
    /// Index of the leaf reached when column `f` has value `value(f)`.
    #[inline]
    pub fn leaf_by(&self, value: impl Fn(usize) -> f64) -> usize {
        let mut i = 0usize;
        loop {
            let n = &self.nodes[i];
            if n.left == LEAF {
                return i;
            }
            i = if value(n.feature as usize) <= n.threshold {
                n.left as usize
            } else {
                n.right as usize
            };
        }
    }

    /// Index of the leaf that `row` (an encoded row) reaches.
    #[inline]
    pub fn leaf_of(&self, row: &[f64]) -> usize {
        self.leaf_by(|f| row[f])
    }

    /// Leaf index for row `r` of a matrix.
    #[inline]
    pub fn leaf_of_matrix(&self, x: &Matrix, r: usize) -> usize {
        self.leaf_by(|f| x.get(r, f))
    }

    /// Node indices from the root to the leaf for `row`.
    pub fn path(&self, row: &[f64]) -> Vec<usize> {
        let mut out = vec![0usize];
        let mut i = 0usize;
        while !self.nodes[i].is_leaf() {
            let n = &self.nodes[i];
            i = if row[n.feature as usize] <= n.threshold {
                n.left as usize
            } else {
                n.right as usize
            };
            out.push(i);
        }
        out
    }

    /// Number of leaves.
    pub fn n_leaves(&self) -> usize {
        self.nodes.iter().filter(|n| n.is_leaf()).count()
    }

    /// Depth of the deepest leaf.
    pub fn depth(&self) -> usize {
        let mut depth = vec![0usize; self.nodes.len()];
        let mut max = 0;
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            if !n.is_leaf() {
                depth[n.left as usize] = depth[i] + 1;
                depth[n.right as usize] = depth[i] + 1;
                max = max.max(depth[i] + 1);
            }
        }
        max
    }

    /// Compile a learner's structure: route the training rows with `<=` to count every node's
    /// rows and churners, smooth the node rates toward the training prior, and compute
    /// sample-weighted impurity-decrease importances.
    #[allow(clippy::too_many_arguments)]
    pub fn compile(
        structure: Structure,
        learner: &str,
        x: &Matrix,
        y: &[bool],
        w: &[f64],
        rows: &[usize],
        criterion: Criterion,
        smoothing: f64,
    ) -> Result<Tree, ModelError> {
        let k = structure.len();
        if k == 0 {
            return Err(ModelError::Fit("learner returned an empty tree".into()));
        }
        for (i, s) in structure.iter().enumerate() {
            let ok = (s.2 == LEAF && s.3 == LEAF)
                || (s.2 != LEAF
                    && s.3 != LEAF
                    && (s.2 as usize) > i
                    && (s.3 as usize) > i
                    && (s.2 as usize) < k
                    && (s.3 as usize) < k
                    && (s.0 as usize) < x.ncols);
            if !ok {
                return Err(ModelError::Fit(format!(
                    "malformed tree structure at node {i}"
                )));
            }
        }
        let mut n = vec![0.0f64; k];
        let mut pos = vec![0.0; k];
        let mut wneg = vec![0.0; k];
        let mut wpos = vec![0.0; k];
        for &r in rows {
            let mut i = 0usize;
            loop {
                n[i] += 1.0;
                if y[r] {
                    pos[i] += 1.0;
                    wpos[i] += w[r];
                } else {
                    wneg[i] += w[r];
                }
                let s = &structure[i];
                if s.2 == LEAF {
                    break;
                }
                i = if x.get(r, s.0 as usize) <= s.1 {
                    s.2 as usize
                } else {
                    s.3 as usize
                };
            }
        }
        let total = rows.len().max(1) as f64;
        let prior = pos[0] / f64::max(n[0], 1.0);
        let nodes: Vec<Node> = structure
            .iter()
            .enumerate()
            .map(|(i, s)| Node {
                feature: s.0,
                threshold: s.1,
                left: s.2,
                right: s.3,
                n: n[i],
                pos: pos[i],
                class: s.4,
                value: (pos[i] + smoothing * prior) / (n[i] + smoothing),
            })
            .collect();
        let mut importances = vec![0.0; x.ncols];
        let wt = wneg[0] + wpos[0];
        for (i, node) in nodes.iter().enumerate() {
            if node.is_leaf() || wt <= 0.0 {
                continue;
            }
            let (l, r) = (node.left as usize, node.right as usize);
            let imp = |j: usize| (wneg[j] + wpos[j]) * criterion.impurity(wneg[j], wpos[j]);
            let dec = (imp(i) - imp(l) - imp(r)) / wt;
            importances[node.feature as usize] += dec.max(0.0);
        }
        let s: f64 = importances.iter().sum();
        if s > 0.0 {
            importances.iter_mut().for_each(|v| *v /= s);
        }
        let _ = total;
        Ok(Tree {
            nodes,
            learner: learner.to_string(),
            importances,
        })
    }
}

/// Grows trees on one prepared matrix (see [`Learner::prepare`]).
pub trait Grow: Sync {
    /// Grow a tree on rows `rows` with labels `y` and sample weights `w`, using up to `threads`
    /// threads.
    fn grow(
        &self,
        y: &[bool],
        w: &[f64],
        rows: &[usize],
        params: &TreeParams,
        threads: usize,
    ) -> Result<Structure, ModelError>;
}

/// A tree learner.
pub trait Learner: Sync {
    /// Name recorded in the bundle and the card.
    fn name(&self) -> &'static str;
    /// True when a tree grown to depth `d` is the top of the tree grown deeper (greedy CART), so
    /// the grid search can grow once and truncate.
    fn nests_by_depth(&self) -> bool {
        false
    }
    /// One-time work on the training matrix (binning, …) shared by every fit on it; `rows` are the
    /// rows any later fit may use (statistics such as bin edges come from them only).
    fn prepare<'a>(
        &self,
        x: &'a Matrix,
        rows: &[usize],
        threads: usize,
    ) -> Result<Box<dyn Grow + 'a>, ModelError>;
}

/// A learner prepared on a matrix: grows and compiles trees on subsets of the prepared rows.
pub struct Prepared<'a> {
    /// The learner.
    pub learner: &'a dyn Learner,
    /// The encoded matrix.
    pub x: &'a Matrix,
    grower: Box<dyn Grow + 'a>,
}

impl<'a> Prepared<'a> {
    /// Prepare `learner` on `x` for fits on (subsets of) `rows`.
    pub fn new(
        learner: &'a dyn Learner,
        x: &'a Matrix,
        rows: &[usize],
        threads: usize,
    ) -> Result<Prepared<'a>, ModelError> {
        Ok(Prepared {
            learner,
            x,
            grower: learner.prepare(x, rows, threads)?,
        })
    }

    /// Grow the raw structure.
    pub fn structure(
        &self,
        y: &[bool],
        w: &[f64],
        rows: &[usize],
        params: &TreeParams,
        threads: usize,
    ) -> Result<Structure, ModelError> {
        if rows.is_empty() {
            return Err(ModelError::Fit("no training rows".into()));
        }
        self.grower.grow(y, w, rows, params, threads)
    }

    /// Grow and compile.
    pub fn fit(
        &self,
        y: &[bool],
        w: &[f64],
        rows: &[usize],
        params: &TreeParams,
        threads: usize,
    ) -> Result<Tree, ModelError> {
        let s = self.structure(y, w, rows, params, threads)?;
        Tree::compile(
            s,
            self.learner.name(),
            self.x,
            y,
            w,
            rows,
            params.criterion,
            1.0,
        )
    }
}

/// Prepare, grow and compile in one step (one thread).
pub fn fit_tree(
    learner: &dyn Learner,
    x: &Matrix,
    y: &[bool],
    w: &[f64],
    rows: &[usize],
    params: &TreeParams,
) -> Result<Tree, ModelError> {
    if rows.is_empty() {
        return Err(ModelError::Fit("no training rows".into()));
    }
    Prepared::new(learner, x, rows, 1)?.fit(y, w, rows, params, 1)
}

/// The project's own exact CART learner.
///
/// Same split rule as linfa-trees (candidate thresholds at midpoints between consecutive distinct
/// values, weighted child impurity, first best in feature order), but it evaluates every candidate
/// of every node (linfa-trees skips a candidate when the last row of a value group in global
/// sort order belongs to another node), keeps same-class sibling leaves (their different churn
/// rates are the probability resolution we need), uses row counts for `min_samples_leaf` like
/// sklearn, and is fully deterministic.
#[derive(Debug, Clone, Copy, Default)]
pub struct CartLearner;

struct Grower<'a> {
    x: &'a Matrix,
    y: &'a [bool],
    w: &'a [f64],
    p: &'a TreeParams,
    out: Structure,
    buf: Vec<(f64, u32)>,
}

impl Grower<'_> {
    fn grow(&mut self, rows: &mut [u32], depth: usize) -> u32 {
        let me = self.out.len() as u32;
        let (mut wn, mut wp) = (0.0, 0.0);
        for &r in rows.iter() {
            if self.y[r as usize] {
                wp += self.w[r as usize];
            } else {
                wn += self.w[r as usize];
            }
        }
        let class = wp > wn;
        self.out.push((0, 0.0, LEAF, LEAF, class));
        let n = rows.len();
        if n < self.p.min_samples_split.max(2)
            || depth >= self.p.max_depth
            || wn == 0.0
            || wp == 0.0
        {
            return me;
        }
        let total = wn + wp;
        let parent = self.p.criterion.impurity(wn, wp);
        let min_leaf = self.p.min_samples_leaf.max(1);
        let mut best: Option<(f64, u32, f64)> = None; // (score, feature, threshold)
        for f in 0..self.x.ncols {
            let col = self.x.col(f);
            self.buf.clear();
            self.buf.extend(rows.iter().map(|&r| (col[r as usize], r)));
            self.buf.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
            if self.buf[0].0 == self.buf[n - 1].0 {
                continue;
            }
            let (mut ln, mut lp) = (0.0, 0.0);
            for i in 0..n - 1 {
                let (v, r) = self.buf[i];
                if self.y[r as usize] {
                    lp += self.w[r as usize];
                } else {
                    ln += self.w[r as usize];
                }
                let next = self.buf[i + 1].0;
                if next == v {
                    continue;
                }
                let left_n = i + 1;
                if left_n < min_leaf || n - left_n < min_leaf {
                    continue;
                }
                let lw = ln + lp;
                let rw = total - lw;
                if lw <= 0.0 || rw <= 0.0 {
                    continue;
                }
                let score = (lw * self.p.criterion.impurity(ln, lp)
                    + rw * self.p.criterion.impurity(wn - ln, wp - lp))
                    / total;
                if best.is_none_or(|b| score < b.0) {
                    let mut t = (v + next) / 2.0;
                    if t >= next {
                        t = v; // adjacent floats: keep `v <= t < next`
                    }
                    best = Some((score, f as u32, t));
                }
            }
        }
        let Some((score, feature, threshold)) = best else {
            return me;
        };
        if parent - score < self.p.min_impurity_decrease {
            return me;
        }
        // partition rows in place: left = x <= threshold
        let col = self.x.col(feature as usize);
        let mut k = 0;
        for i in 0..n {
            if col[rows[i] as usize] <= threshold {
                rows.swap(i, k);
                k += 1;
            }
        }
        let (l, r) = rows.split_at_mut(k);
        let left = self.grow(l, depth + 1);
        let right = self.grow(r, depth + 1);
        self.out[me as usize] = (feature, threshold, left, right, class);
        me
    }
}

/// Signature of a learner that grows straight from the matrix.
type DirectFn =
    fn(&Matrix, &[bool], &[f64], &[usize], &TreeParams) -> Result<Structure, ModelError>;

/// A learner that needs no preparation, bound to its matrix.
struct Direct<'a> {
    x: &'a Matrix,
    grow: DirectFn,
}

impl Grow for Direct<'_> {
    fn grow(
        &self,
        y: &[bool],
        w: &[f64],
        rows: &[usize],
        params: &TreeParams,
        _threads: usize,
    ) -> Result<Structure, ModelError> {
        (self.grow)(self.x, y, w, rows, params)
    }
}

fn grow_cart(
    x: &Matrix,
    y: &[bool],
    w: &[f64],
    rows: &[usize],
    params: &TreeParams,
) -> Result<Structure, ModelError> {
    let mut r: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
    let mut g = Grower {
        x,
        y,
        w,
        p: params,
        out: Vec::new(),
        buf: Vec::with_capacity(rows.len()),
    };
    g.grow(&mut r, 0);
    Ok(g.out)
}

fn grow_linfa(
    x: &Matrix,
    y: &[bool],
    w: &[f64],
    rows: &[usize],
    params: &TreeParams,
) -> Result<Structure, ModelError> {
    let t = LinfaLearner::fit_linfa(x, y, w, rows, params)?;
    Ok(LinfaLearner::structure_of(&t))
}

impl Learner for CartLearner {
    fn name(&self) -> &'static str {
        "cart"
    }
    fn nests_by_depth(&self) -> bool {
        true
    }
    fn prepare<'a>(
        &self,
        x: &'a Matrix,
        _rows: &[usize],
        _threads: usize,
    ) -> Result<Box<dyn Grow + 'a>, ModelError> {
        Ok(Box::new(Direct { x, grow: grow_cart }))
    }
}

/// linfa-trees as a learner: fit `DecisionTree`, then convert its nodes.
///
/// Kept as the reference implementation. Its same-class leaf pruning and its `<`-in-predict
/// routing are documented in `ARCHITECTURE.md`; the compiled tree re-counts rows with `<=`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinfaLearner;

impl LinfaLearner {
    /// Fit linfa's tree on `rows` (exposed for the agreement tests).
    pub fn fit_linfa(
        x: &Matrix,
        y: &[bool],
        w: &[f64],
        rows: &[usize],
        params: &TreeParams,
    ) -> Result<linfa_trees::DecisionTree<f64, usize>, ModelError> {
        use linfa::prelude::*;
        use ndarray::{Array1, Array2, ShapeBuilder};
        let sub = x.select_rows(rows);
        let records = Array2::from_shape_vec((sub.nrows, sub.ncols).f(), sub.data)
            .map_err(|e| ModelError::Fit(e.to_string()))?;
        let targets: Array1<usize> = rows.iter().map(|&r| y[r] as usize).collect();
        let mean_w = rows.iter().map(|&r| w[r]).sum::<f64>() / rows.len().max(1) as f64;
        let weights: Array1<f32> = rows.iter().map(|&r| (w[r] / mean_w) as f32).collect();
        let ds = Dataset::new(records, targets).with_weights(weights);
        let quality = match params.criterion {
            Criterion::Gini => linfa_trees::SplitQuality::Gini,
            Criterion::Entropy => linfa_trees::SplitQuality::Entropy,
        };
        linfa_trees::DecisionTree::params()
            .split_quality(quality)
            .max_depth(Some(params.max_depth))
            .min_weight_split(params.min_samples_split.max(2) as f32)
            .min_weight_leaf(params.min_samples_leaf.max(1) as f32)
            .min_impurity_decrease(params.min_impurity_decrease)
            .fit(&ds)
            .map_err(|e| ModelError::Fit(format!("linfa-trees: {e}")))
    }

    /// Convert a fitted linfa tree to a [`Structure`] (pre-order).
    pub fn structure_of(tree: &linfa_trees::DecisionTree<f64, usize>) -> Structure {
        fn walk(node: &linfa_trees::TreeNode<f64, usize>, out: &mut Structure) -> u32 {
            let me = out.len() as u32;
            let class = node.prediction().unwrap_or(0) == 1;
            let children = node.children();
            match (node.is_leaf(), children[0], children[1]) {
                (false, Some(l), Some(r)) => {
                    let (f, t, _) = node.split();
                    out.push((f as u32, t, LEAF, LEAF, class));
                    let li = walk(l, out);
                    let ri = walk(r, out);
                    out[me as usize] = (f as u32, t, li, ri, class);
                }
                _ => {
                    // linfa's leaves keep `prediction`; internal nodes store the modal class too
                    let pred = if node.is_leaf() {
                        node.prediction().unwrap_or(0) == 1
                    } else {
                        class
                    };
                    out.push((0, 0.0, LEAF, LEAF, pred));
                }
            }
            me
        }
        let mut out = Vec::new();
        walk(tree.root_node(), &mut out);
        out
    }
}

impl Learner for LinfaLearner {
    fn name(&self) -> &'static str {
        "linfa"
    }
    fn prepare<'a>(
        &self,
        x: &'a Matrix,
        _rows: &[usize],
        _threads: usize,
    ) -> Result<Box<dyn Grow + 'a>, ModelError> {
        Ok(Box::new(Direct {
            x,
            grow: grow_linfa,
        }))
    }
}

/// Names of the learners, default first.
pub const LEARNERS: [&str; 3] = ["hist", "cart", "linfa"];

static HIST: super::hist::HistLearner = super::hist::HistLearner {
    max_bins: super::hist::MAX_BINS,
};

/// Look a learner up by name.
pub fn learner_by_name(name: &str) -> Result<&'static dyn Learner, ModelError> {
    match name {
        "hist" => Ok(&HIST),
        "cart" => Ok(&CartLearner),
        "linfa" => Ok(&LinfaLearner),
        other => Err(ModelError::Config(format!(
            "unknown learner '{other}' (expected one of: {})",
            LEARNERS.join(", ")
        ))),
    }
}
