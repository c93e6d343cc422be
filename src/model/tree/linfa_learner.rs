//! linfa-trees wrapped as a learner (the reference implementation).

use super::learner::{Direct, Grow, Learner};
use super::{Criterion, Structure, TreeParams, LEAF};
use crate::features::Matrix;
use crate::model::ModelError;

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
        super::LearnerKind::Linfa.as_str()
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
