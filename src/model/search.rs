//! The cross-validated grid search of the single tree and its out-of-fold predictions.

use super::metrics;
use super::parallel::parallel_map;
use super::tree::{Prepared, Tree, TreeParams};
use super::ModelError;
use crate::features::Matrix;
use serde::{Deserialize, Serialize};

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
