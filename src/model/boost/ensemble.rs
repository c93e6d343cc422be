//! The fitted ensemble: boosted trees, their margins row by row and in branch-free blocks.

use super::BoostParams;
use crate::features::Matrix;
use serde::{Deserialize, Serialize};

/// A node of a boosted tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoostNode {
    /// Encoded column tested (internal nodes).
    pub feature: u32,
    /// `x <= threshold` goes left.
    pub threshold: f64,
    /// Left child or [`crate::model::tree::LEAF`].
    pub left: u32,
    /// Right child or [`crate::model::tree::LEAF`].
    pub right: u32,
    /// Leaf value (margin, learning rate applied); 0 for internal nodes.
    pub value: f64,
    /// Training rows that reached the node (the path-dependent SHAP weights).
    pub cover: f64,
}

impl BoostNode {
    /// True for leaves.
    #[inline]
    pub fn is_leaf(&self) -> bool {
        self.left == crate::model::tree::LEAF
    }
}

/// One regression tree of the ensemble; root first, children after their parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoostTree {
    /// Nodes.
    pub nodes: Vec<BoostNode>,
}

impl BoostTree {
    /// Leaf index reached when column `f` has value `value(f)`.
    #[inline]
    pub fn leaf_by(&self, value: impl Fn(usize) -> f64) -> usize {
        let mut i = 0usize;
        loop {
            let n = &self.nodes[i];
            if n.is_leaf() {
                return i;
            }
            i = if value(n.feature as usize) <= n.threshold {
                n.left as usize
            } else {
                n.right as usize
            };
        }
    }

    /// Expected value over the training rows: leaves weighted by cover.
    pub fn expected_value(&self) -> f64 {
        let root = self.nodes[0].cover;
        if root <= 0.0 {
            return 0.0;
        }
        self.nodes
            .iter()
            .filter(|n| n.is_leaf())
            .map(|n| n.value * n.cover / root)
            .sum()
    }

    /// Depth of the deepest leaf.
    pub fn depth(&self) -> usize {
        let mut depth = vec![0usize; self.nodes.len()];
        let mut max = 0;
        for (i, n) in self.nodes.iter().enumerate() {
            if !n.is_leaf() {
                for c in [n.left, n.right] {
                    depth[c as usize] = depth[i] + 1;
                }
                max = max.max(depth[i] + 1);
            }
        }
        max
    }
}

/// The boosted trees: margin = `base_margin` + Σ tree leaf values; probability = σ(margin).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ensemble {
    /// Log-odds of the training churn rate (weighted), where boosting starts.
    pub base_margin: f64,
    /// The trees in boosting order.
    pub trees: Vec<BoostTree>,
    /// Hyper-parameters it was fitted with (`rounds` = trees kept).
    pub params: BoostParams,
}

impl Ensemble {
    /// Margin (log-odds) of an encoded row.
    #[inline]
    pub fn margin(&self, row: &[f64]) -> f64 {
        self.margin_by(|f| row[f])
    }

    /// Margin when column `f` has value `value(f)`.
    #[inline]
    pub fn margin_by(&self, value: impl Fn(usize) -> f64 + Copy) -> f64 {
        let mut m = self.base_margin;
        for t in &self.trees {
            m += t.nodes[t.leaf_by(value)].value;
        }
        m
    }

    /// Margins of the row-major `rows` (`width` columns each) into `out`, the same sums in the
    /// same order as [`Ensemble::margin`] row by row. Trees go outer and rows inner, in blocks
    /// of 256 rows, so a tree stays in the L1 cache while the block walks it; each walk is a
    /// fixed number of branch-free steps (leaves step to themselves), so the processor overlaps
    /// the rows' walks instead of stalling on a mispredicted branch at every level.
    pub fn margins(&self, rows: &[f64], width: usize, out: &mut Vec<f64>) {
        const BLOCK: usize = 256;
        let n = rows.len() / width.max(1);
        out.clear();
        out.resize(n, self.base_margin);
        let flat: Vec<FlatTree> = self.trees.iter().map(FlatTree::new).collect();
        for lo in (0..n).step_by(BLOCK) {
            let hi = (lo + BLOCK).min(n);
            for t in &flat {
                for (i, m) in out[lo..hi].iter_mut().enumerate() {
                    let row = &rows[(lo + i) * width..(lo + i + 1) * width];
                    let mut k = 0usize;
                    for _ in 0..t.depth {
                        let node = &t.nodes[k];
                        // NaN fails `<=` and goes right, as in `leaf_by`
                        let left = row[node.feature as usize] <= node.threshold;
                        k = node.next[usize::from(!left)] as usize;
                    }
                    *m += t.value[k];
                }
            }
        }
    }

    /// Margin of row `r` of a matrix.
    pub fn margin_of_matrix(&self, x: &Matrix, r: usize) -> f64 {
        self.margin_by(|f| x.get(r, f))
    }

    /// Expected margin over the training rows (the SHAP base value).
    pub fn expected_margin(&self) -> f64 {
        self.base_margin
            + self
                .trees
                .iter()
                .map(BoostTree::expected_value)
                .sum::<f64>()
    }

    /// Total leaves.
    pub fn n_leaves(&self) -> usize {
        self.trees
            .iter()
            .map(|t| t.nodes.iter().filter(|n| n.is_leaf()).count())
            .sum()
    }
}

/// A tree laid out for branch-free batch walks: a leaf's children are itself.
struct FlatTree {
    nodes: Vec<FlatNode>,
    /// Leaf values by node (0 for internal nodes).
    value: Vec<f64>,
    /// Steps that reach every leaf (the deepest leaf's depth).
    depth: usize,
}

/// One node of a [`FlatTree`]: `x <= threshold` goes to `next[0]`, else `next[1]`.
struct FlatNode {
    threshold: f64,
    feature: u32,
    next: [u32; 2],
}

impl FlatTree {
    fn new(t: &BoostTree) -> FlatTree {
        let nodes = t
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| FlatNode {
                threshold: n.threshold,
                feature: if n.is_leaf() { 0 } else { n.feature },
                next: if n.is_leaf() {
                    [i as u32; 2]
                } else {
                    [n.left, n.right]
                },
            })
            .collect();
        FlatTree {
            nodes,
            value: t
                .nodes
                .iter()
                .map(|n| if n.is_leaf() { n.value } else { 0.0 })
                .collect(),
            depth: t.depth(),
        }
    }
}
