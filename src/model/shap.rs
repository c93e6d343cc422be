//! Exact path-dependent TreeSHAP (Lundberg, Erion & Lee 2018, "Consistent individualized
//! feature attribution for tree ensembles", Algorithm 2) for boosted trees.
//!
//! The value of a set `S` of known columns is the tree's expectation when every split on a
//! column outside `S` sends the row down both branches weighted by the training rows (cover)
//! each branch received. The algorithm computes the Shapley values of that game in
//! `O(leaves · depth²)` per tree by carrying, along the root-to-leaf walk, the proportion of
//! subsets of every size that reach each node. Contributions are in margin (log-odds) units
//! and add up exactly: `expected_margin + Σ φ = margin`.

use super::boost::{BoostTree, Ensemble};

/// One element of the unique path: a column split on above the current node.
#[derive(Debug, Clone, Copy)]
struct PathElem {
    /// Column (`usize::MAX` for the root's placeholder).
    feature: usize,
    /// Share of the cover that follows this path when the column is unknown.
    zero: f64,
    /// 1 when the row itself follows this path, else 0.
    one: f64,
    /// Permutation weight.
    weight: f64,
}

/// Grow the path `path[..=l]` by element `l` (the path had `l` elements).
fn extend(path: &mut [PathElem], l: usize, zero: f64, one: f64, feature: usize) {
    path[l] = PathElem {
        feature,
        zero,
        one,
        weight: if l == 0 { 1.0 } else { 0.0 },
    };
    for i in (0..l).rev() {
        path[i + 1].weight += one * path[i].weight * (i + 1) as f64 / (l + 1) as f64;
        path[i].weight = zero * path[i].weight * (l - i) as f64 / (l + 1) as f64;
    }
}

/// Undo the extension of element `k` of `path[..=l]` (its column is split on again below);
/// the path then has `l` elements.
fn unwind(path: &mut [PathElem], l: usize, k: usize) {
    let (one, zero) = (path[k].one, path[k].zero);
    let mut next = path[l].weight;
    for j in (0..l).rev() {
        if one != 0.0 {
            let t = path[j].weight;
            path[j].weight = next * (l + 1) as f64 / ((j + 1) as f64 * one);
            next = t - path[j].weight * zero * (l - j) as f64 / (l + 1) as f64;
        } else {
            path[j].weight = path[j].weight * (l + 1) as f64 / (zero * (l - j) as f64);
        }
    }
    for j in k..l {
        path[j].feature = path[j + 1].feature;
        path[j].zero = path[j + 1].zero;
        path[j].one = path[j + 1].one;
    }
}

/// Total permutation weight of `path[..=l]` with element `k` unwound (without changing it).
fn unwound_sum(path: &[PathElem], l: usize, k: usize) -> f64 {
    let (one, zero) = (path[k].one, path[k].zero);
    let mut next = path[l].weight;
    let mut total = 0.0;
    for j in (0..l).rev() {
        if one != 0.0 {
            let t = next / ((j + 1) as f64 * one);
            total += t;
            next = path[j].weight - t * zero * (l - j) as f64;
        } else {
            total += path[j].weight / (zero * (l - j) as f64);
        }
    }
    total * (l + 1) as f64
}

/// Scratch space for [`tree_shap`]: one path segment per recursion level, so explaining a row
/// allocates once per tree depth, not once per node.
#[derive(Debug, Default)]
pub struct ShapScratch {
    buf: Vec<PathElem>,
}

/// Add one tree's SHAP values for `row` into `phi` (indexed by encoded column).
pub fn tree_shap(tree: &BoostTree, row: &[f64], phi: &mut [f64], scratch: &mut ShapScratch) {
    // level d holds a path of at most d + 1 elements; levels are tree depth + 2
    let levels = tree.depth() + 2;
    let need = levels * (levels + 1) / 2;
    if scratch.buf.len() < need {
        scratch.buf.resize(
            need,
            PathElem {
                feature: usize::MAX,
                zero: 0.0,
                one: 0.0,
                weight: 0.0,
            },
        );
    }
    let mut walk = Walk {
        tree,
        row,
        phi,
        buf: &mut scratch.buf,
    };
    walk.recurse(0, 0, 0, 0, 1.0, 1.0, usize::MAX);
}

/// One row's walk through one tree.
struct Walk<'a> {
    tree: &'a BoostTree,
    row: &'a [f64],
    phi: &'a mut [f64],
    buf: &'a mut [PathElem],
}

impl Walk<'_> {
    /// Visit `node` with the parent's path at `buf[parent..parent + len]` (`len` elements);
    /// this level's path starts at `start` (= parent + level capacity).
    #[allow(clippy::too_many_arguments)]
    fn recurse(
        &mut self,
        node: usize,
        parent: usize,
        len: usize,
        start: usize,
        zero: f64,
        one: f64,
        feature: usize,
    ) {
        self.buf.copy_within(parent..parent + len, start);
        let mut l = len;
        {
            let path = &mut self.buf[start..start + l + 1];
            extend(path, l, zero, one, feature);
        }
        let n = &self.tree.nodes[node];
        if n.is_leaf() {
            let path = &self.buf[start..start + l + 1];
            for k in 1..=l {
                let w = unwound_sum(path, l, k);
                let e = path[k];
                self.phi[e.feature] += w * (e.one - e.zero) * n.value;
            }
            return;
        }
        let f = n.feature as usize;
        let (hot, cold) = if self.row[f] <= n.threshold {
            (n.left as usize, n.right as usize)
        } else {
            (n.right as usize, n.left as usize)
        };
        let cover = n.cover;
        let share = |c: usize| {
            if cover > 0.0 {
                self.tree.nodes[c].cover / cover
            } else {
                0.5
            }
        };
        let (sh, sc) = (share(hot), share(cold));
        let (mut iz, mut io) = (1.0, 1.0);
        if let Some(k) = (1..=l).find(|&k| self.buf[start + k].feature == f) {
            iz = self.buf[start + k].zero;
            io = self.buf[start + k].one;
            unwind(&mut self.buf[start..start + l + 1], l, k);
            l -= 1;
        }
        // this level's path has l + 1 elements; the next level starts after its capacity
        let next = start + len + 1;
        self.recurse(hot, start, l + 1, next, sh * iz, io, f);
        self.recurse(cold, start, l + 1, next, sc * iz, 0.0, f);
    }
}

/// SHAP values of every encoded column for `row` (length `ncols`); they sum to
/// `ensemble.margin(row) - ensemble.expected_margin()`.
pub fn shap_values(ensemble: &Ensemble, row: &[f64], ncols: usize) -> Vec<f64> {
    let mut phi = vec![0.0; ncols];
    let mut scratch = ShapScratch::default();
    for t in &ensemble.trees {
        tree_shap(t, row, &mut phi, &mut scratch);
    }
    phi
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::boost::{BoostNode, BoostParams};
    use crate::model::tree::LEAF;

    fn node(feature: u32, threshold: f64, left: u32, right: u32, cover: f64) -> BoostNode {
        BoostNode {
            feature,
            threshold,
            left,
            right,
            value: 0.0,
            cover,
        }
    }

    fn leaf(value: f64, cover: f64) -> BoostNode {
        BoostNode {
            feature: 0,
            threshold: 0.0,
            left: LEAF,
            right: LEAF,
            value,
            cover,
        }
    }

    /// E[tree | columns in `known` fixed to `row`], the path-dependent way.
    fn cond_value(t: &BoostTree, row: &[f64], known: u32, i: usize) -> f64 {
        let n = &t.nodes[i];
        if n.is_leaf() {
            return n.value;
        }
        let f = n.feature as usize;
        if known & (1 << f) != 0 {
            let next = if row[f] <= n.threshold {
                n.left
            } else {
                n.right
            };
            return cond_value(t, row, known, next as usize);
        }
        let (l, r) = (n.left as usize, n.right as usize);
        (t.nodes[l].cover * cond_value(t, row, known, l)
            + t.nodes[r].cover * cond_value(t, row, known, r))
            / n.cover
    }

    /// Shapley values by enumerating every subset of the `m` columns.
    fn brute_force(e: &Ensemble, row: &[f64], m: usize) -> Vec<f64> {
        let fact = |k: usize| (1..=k).map(|v| v as f64).product::<f64>();
        let v = |s: u32| {
            e.trees
                .iter()
                .map(|t| cond_value(t, row, s, 0))
                .sum::<f64>()
        };
        (0..m)
            .map(|i| {
                let mut phi = 0.0;
                for s in 0u32..(1 << m) {
                    if s & (1 << i) != 0 {
                        continue;
                    }
                    let k = s.count_ones() as usize;
                    let w = fact(k) * fact(m - k - 1) / fact(m);
                    phi += w * (v(s | (1 << i)) - v(s));
                }
                phi
            })
            .collect()
    }

    #[test]
    fn shap_matches_brute_force_with_repeated_columns() {
        // column 0 is split on twice along one path; column 2 appears in two trees
        let t1 = BoostTree {
            nodes: vec![
                node(0, 0.5, 1, 2, 100.0),
                node(1, 1.5, 3, 4, 60.0),
                node(0, 2.5, 5, 6, 40.0),
                leaf(-0.3, 45.0),
                node(2, 0.0, 7, 8, 15.0),
                leaf(0.2, 10.0),
                leaf(0.9, 30.0),
                leaf(0.1, 5.0),
                leaf(-0.6, 10.0),
            ],
        };
        let t2 = BoostTree {
            nodes: vec![
                node(2, 0.0, 1, 2, 100.0),
                leaf(0.4, 30.0),
                node(3, 7.0, 3, 4, 70.0),
                leaf(-0.25, 50.0),
                leaf(0.33, 20.0),
            ],
        };
        let e = Ensemble {
            base_margin: -1.0,
            trees: vec![t1, t2],
            params: BoostParams::default(),
        };
        for row in [
            [0.0, 1.0, -1.0, 3.0],
            [1.0, 2.0, 1.0, 8.0],
            [3.0, 0.0, 0.5, 7.0],
            [0.2, 9.0, 0.0, 100.0],
        ] {
            let phi = shap_values(&e, &row, 4);
            let exact = brute_force(&e, &row, 4);
            for (a, b) in phi.iter().zip(&exact) {
                assert!((a - b).abs() < 1e-12, "{phi:?} vs {exact:?}");
            }
            let sum: f64 = phi.iter().sum();
            assert!((e.expected_margin() + sum - e.margin(&row)).abs() < 1e-12);
        }
    }
}
