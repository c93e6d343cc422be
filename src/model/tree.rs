//! The compiled tree (flat arrays, our own prediction semantics) and the learners that grow it.
//!
//! Semantics, pinned by tests: a row goes **left when `x <= threshold`**, which is how the training
//! rows were partitioned when the split was chosen (linfa-trees partitions with `<=` in `fit` but
//! routes with `<` in `predict`; sklearn uses `<=` throughout).

mod cart;
mod hist;
mod learner;
mod linfa_learner;

pub use cart::CartLearner;
pub use hist::HistLearner;
pub use learner::{fit_tree, learner_by_name, Grow, Learner, LearnerKind, Prepared, LEARNERS};
pub use linfa_learner::LinfaLearner;

use super::ModelError;
use crate::features::Matrix;
use serde::{Deserialize, Serialize};

/// Split criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
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
        validate(&structure, x.ncols)?;
        let t = NodeTotals::count(&structure, x, y, w, rows);
        let prior = t.pos[0] / f64::max(t.n[0], 1.0);
        let nodes: Vec<Node> = structure
            .iter()
            .enumerate()
            .map(|(i, s)| Node {
                feature: s.0,
                threshold: s.1,
                left: s.2,
                right: s.3,
                n: t.n[i],
                pos: t.pos[i],
                class: s.4,
                value: (t.pos[i] + smoothing * prior) / (t.n[i] + smoothing),
            })
            .collect();
        let importances = t.importances(&nodes, x.ncols, criterion);
        Ok(Tree {
            nodes,
            learner: learner.to_string(),
            importances,
        })
    }
}

/// Reject a structure that is empty, has a leaf with one child, points a child backwards or out
/// of range, or tests a column the matrix lacks — routing would otherwise loop or panic.
fn validate(structure: &Structure, ncols: usize) -> Result<(), ModelError> {
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
                && (s.0 as usize) < ncols);
        if !ok {
            return Err(ModelError::Fit(format!(
                "malformed tree structure at node {i}"
            )));
        }
    }
    Ok(())
}

/// Per-node totals of the training rows routed through a structure.
struct NodeTotals {
    /// Rows reaching each node.
    n: Vec<f64>,
    /// Churned rows reaching each node.
    pos: Vec<f64>,
    /// Sample weight of the non-churned rows.
    wneg: Vec<f64>,
    /// Sample weight of the churned rows.
    wpos: Vec<f64>,
}

impl NodeTotals {
    /// Route every row of `rows` from the root with `x <= threshold` going left.
    fn count(structure: &Structure, x: &Matrix, y: &[bool], w: &[f64], rows: &[usize]) -> Self {
        let k = structure.len();
        let mut t = NodeTotals {
            n: vec![0.0f64; k],
            pos: vec![0.0; k],
            wneg: vec![0.0; k],
            wpos: vec![0.0; k],
        };
        for &r in rows {
            let mut i = 0usize;
            loop {
                t.n[i] += 1.0;
                if y[r] {
                    t.pos[i] += 1.0;
                    t.wpos[i] += w[r];
                } else {
                    t.wneg[i] += w[r];
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
        t
    }

    /// Weighted impurity decrease per column over the internal `nodes`, normalised to sum 1.
    fn importances(&self, nodes: &[Node], ncols: usize, criterion: Criterion) -> Vec<f64> {
        let (wneg, wpos) = (&self.wneg, &self.wpos);
        let mut importances = vec![0.0; ncols];
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
        importances
    }
}
