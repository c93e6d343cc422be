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

/// Leaves whose path tests more distinct columns than this are explained by the recursive
/// algorithm (a table of `2^d` weights per leaf would grow too large).
const TABLE_MAX_PATH: usize = 10;

/// Leaves with at most this many distinct path columns store their contributions per mask
/// (`2^d · d` numbers, at most 384); longer paths store `G` (`2^d` numbers) and multiply at
/// scoring time, so deep trees do not multiply the table size by `d`.
const CONTRIB_MAX_PATH: usize = 6;

/// Total table entries (f64) per ensemble before the remaining trees fall back to recursion
/// (16 Mi entries = 128 MiB).
const TABLE_MAX_ENTRIES: usize = 1 << 24;

/// Path-dependent TreeSHAP from per-leaf tables.
///
/// With a leaf's `d` distinct path columns `P`, their cover fractions `z_j` and the row's
/// indicators `o_j` (1 when the row takes the path's branch at every node testing `j`), the
/// leaf adds to column `i`
/// `φ_i = v (o_i − z_i) Σ_{S ⊆ M∖{i}} |S|!(d−1−|S|)!/d! Π_{j ∈ P∖{i}∖S} z_j`, where `M` is the
/// set of columns with `o_j = 1` (a subset holding a 0 indicator contributes nothing). Dividing
/// by `z_i` makes the sum depend on `U = M∖{i}` alone: `φ_i = v (o_i − z_i) / z_i · G(U)` with
/// `G(U) = Σ_{S ⊆ U} c(|S|) Π_{j ∈ P∖S} z_j`. `G` is tabulated once per leaf (`2^d` entries, by
/// a subset-sum transform), so a row costs one top-down pass over the nodes (building every
/// leaf's mask `M`) and `d` look-ups per leaf, instead of `O(depth²)` work with divisions per
/// leaf (the idea of Yang 2021, "Fast TreeSHAP", v2). Tables are flat, ensemble-wide arrays.
///
/// For paths of at most six columns the tables go one step further and store,
/// per leaf and mask, the `d` contributions themselves (`v (1 − z_i) / z_i · G(M∖{i})` or
/// `−v · G(M)`, the same products): a leaf then costs one contiguous read of `d` numbers
/// instead of up to `d + 1` scattered reads of its `G` (measured: the scattered reads from
/// tables larger than the L2 cache were most of the time).
#[derive(Debug, Clone)]
pub struct ShapTables {
    trees: Vec<Option<TreeTable>>,
    /// Per leaf, its distinct path columns and, per column, `v (1 − z) / z` (the factor when
    /// the row takes the path's branches of that column; it is `−v` when not).
    columns: Vec<(u32, f64)>,
    /// Per leaf: for paths of at most `CONTRIB_MAX_PATH` columns, per mask `M` (`2^d` of
    /// them) the `d` contributions to its path columns; for longer paths, `G` per subset.
    contrib: Vec<f64>,
    /// [`Ensemble::expected_margin`], the base value every explanation starts from.
    expected_margin: f64,
}

/// One tree's part of [`ShapTables`].
#[derive(Debug, Clone)]
struct TreeTable {
    /// Per internal node, the slot of its column on the path from the root (a column keeps
    /// the slot of its first test on the path).
    slot: Vec<u8>,
    /// Per leaf: node, value, distinct path columns `d`, offsets into `columns` and `contrib`.
    leaves: Vec<LeafEntry>,
}

#[derive(Debug, Clone, Copy)]
struct LeafEntry {
    node: u32,
    value: f64,
    d: u32,
    columns: u32,
    contrib: u32,
}

impl ShapTables {
    /// Tabulate every tree of `e` that fits the limits (at most 10 distinct columns per path,
    /// no zero-cover branch, 16 Mi table entries in all); the others recurse.
    pub fn new(e: &Ensemble) -> ShapTables {
        let mut out = ShapTables {
            trees: Vec::with_capacity(e.trees.len()),
            columns: Vec::new(),
            contrib: Vec::new(),
            expected_margin: e.expected_margin(),
        };
        for t in &e.trees {
            let (nc, ng) = (out.columns.len(), out.contrib.len());
            let table = out.tabulate(t);
            if table.is_none() || out.contrib.len() > TABLE_MAX_ENTRIES {
                out.columns.truncate(nc);
                out.contrib.truncate(ng);
                out.trees.push(None);
            } else {
                out.trees.push(table);
            }
        }
        out
    }

    /// The ensemble's expected margin (the SHAP base value), computed once.
    pub fn expected_margin(&self) -> f64 {
        self.expected_margin
    }

    /// Trees explained from tables (the rest recurse).
    pub fn tabulated(&self) -> usize {
        self.trees.iter().filter(|t| t.is_some()).count()
    }

    /// SHAP values of every encoded column for `row` (length `ncols`), equal to
    /// [`shap_values`] up to rounding. `e` must be the ensemble the tables were built from.
    pub fn shap_values(&self, e: &Ensemble, row: &[f64], ncols: usize) -> Vec<f64> {
        let mut phi = vec![0.0; ncols];
        let mut scratch = ShapScratch::default();
        let mut mask: Vec<u32> = Vec::new();
        for (t, table) in e.trees.iter().zip(&self.trees) {
            let Some(tt) = table else {
                tree_shap(t, row, &mut phi, &mut scratch);
                continue;
            };
            // top-down: a child's mask clears the slot of a test the row fails on its way
            mask.clear();
            mask.resize(t.nodes.len(), u32::MAX);
            for (i, n) in t.nodes.iter().enumerate() {
                if n.is_leaf() {
                    continue;
                }
                let left = row[n.feature as usize] <= n.threshold;
                let bit = 1u32 << tt.slot[i];
                let m = mask[i];
                mask[n.left as usize] = if left { m } else { m & !bit };
                mask[n.right as usize] = if left { m & !bit } else { m };
            }
            for l in &tt.leaves {
                let d = l.d as usize;
                let m = (mask[l.node as usize] & ((1u32 << l.d) - 1)) as usize;
                let cols = &self.columns[l.columns as usize..l.columns as usize + d];
                if d <= CONTRIB_MAX_PATH {
                    let at = l.contrib as usize + m * d;
                    for (&(col, _), &c) in cols.iter().zip(&self.contrib[at..at + d]) {
                        phi[col as usize] += c;
                    }
                } else {
                    let g = &self.contrib[l.contrib as usize..l.contrib as usize + (1 << d)];
                    for (i, &(col, hot)) in cols.iter().enumerate() {
                        let bit = 1usize << i;
                        let factor = if m & bit != 0 { hot } else { -l.value };
                        phi[col as usize] += factor * g[m & !bit];
                    }
                }
            }
        }
        phi
    }

    /// Append `t`'s leaves to the flat arrays; `None` when a path is too long or a branch has
    /// no cover.
    fn tabulate(&mut self, t: &BoostTree) -> Option<TreeTable> {
        let mut slot = vec![0u8; t.nodes.len()];
        let mut leaves = Vec::new();
        // (node, path above it as (column, branch cover fraction), in root-to-node order)
        let mut stack: Vec<(usize, Vec<(u32, f64)>)> = vec![(0, Vec::new())];
        while let Some((i, path)) = stack.pop() {
            let n = &t.nodes[i];
            // distinct columns on the path, with their combined cover fractions
            let mut cols: Vec<(u32, f64)> = Vec::new();
            for &(col, frac) in &path {
                match cols.iter_mut().find(|c| c.0 == col) {
                    Some(c) => c.1 *= frac,
                    None => cols.push((col, frac)),
                }
            }
            if n.is_leaf() {
                if cols.len() > TABLE_MAX_PATH {
                    return None;
                }
                leaves.push(LeafEntry {
                    node: i as u32,
                    value: n.value,
                    d: cols.len() as u32,
                    columns: u32::try_from(self.columns.len()).ok()?,
                    contrib: u32::try_from(self.contrib.len()).ok()?,
                });
                // the factor when the row takes the path's branches of column i (else −v)
                let hot: Vec<f64> = cols.iter().map(|c| n.value * (1.0 - c.1) / c.1).collect();
                self.columns
                    .extend(cols.iter().zip(&hot).map(|(c, &h)| (c.0, h)));
                let z: Vec<f64> = cols.iter().map(|c| c.1).collect();
                let g = subset_weights(&z);
                if cols.len() > CONTRIB_MAX_PATH {
                    self.contrib.extend_from_slice(&g);
                    continue;
                }
                for m in 0..g.len() {
                    for (b, &h) in hot.iter().enumerate() {
                        let bit = 1usize << b;
                        let factor = if m & bit != 0 { h } else { -n.value };
                        self.contrib.push(factor * g[m & !bit]);
                    }
                }
                continue;
            }
            if n.cover <= 0.0 {
                return None;
            }
            let s = cols
                .iter()
                .position(|c| c.0 == n.feature)
                .unwrap_or(cols.len());
            slot[i] = u8::try_from(s).ok().filter(|&s| (s as usize) < 32)?;
            for child in [n.right, n.left] {
                let frac = t.nodes[child as usize].cover / n.cover;
                if frac <= 0.0 {
                    return None;
                }
                let mut p = path.clone();
                p.push((n.feature, frac));
                stack.push((child as usize, p));
            }
        }
        Some(TreeTable { slot, leaves })
    }
}

/// `G(U) = Σ_{S ⊆ U} c(|S|) Π_{j ∉ S} z_j` for every subset `U` of the `d = z.len()` path
/// columns, with `c(s) = s! (d − 1 − s)! / d!`.
fn subset_weights(z: &[f64]) -> Vec<f64> {
    let d = z.len();
    let fact = |k: usize| (1..=k).map(|v| v as f64).product::<f64>();
    let full = (1usize << d) - 1;
    let mut g: Vec<f64> = (0..=full)
        .map(|s: usize| {
            let size = s.count_ones() as usize;
            if size >= d {
                return 0.0; // U never holds every column: i itself is left out
            }
            let c = fact(size) * fact(d - 1 - size) / fact(d);
            c * (0..d)
                .filter(|j| s & (1 << j) == 0)
                .map(|j| z[j])
                .product::<f64>()
        })
        .collect();
    for b in 0..d {
        for s in 0..=full {
            if s & (1 << b) != 0 {
                g[s] += g[s ^ (1 << b)];
            }
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::boost::testing::{leaf, node};
    use crate::model::boost::BoostParams;

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
            let tables = ShapTables::new(&e);
            assert_eq!(tables.tabulated(), 2);
            let fast = tables.shap_values(&e, &row, 4);
            for (a, b) in fast.iter().zip(&exact) {
                assert!((a - b).abs() < 1e-12, "tables {fast:?} vs {exact:?}");
            }
            let sum: f64 = phi.iter().sum();
            assert!((e.expected_margin() + sum - e.margin(&row)).abs() < 1e-12);
        }
    }

    #[test]
    fn tables_of_paths_longer_than_six_columns_match_the_recursion() {
        // a chain over columns 0..8: the deepest leaves test 8 distinct columns (G layout),
        // the shallow ones fewer (contribution layout)
        let mut nodes = Vec::new();
        for c in 0..8u32 {
            let i = nodes.len() as u32;
            nodes.push(node(c, 0.5, i + 2, i + 1, 0.0));
            nodes.push(leaf(0.05 * c as f64 - 0.2, 0.0));
        }
        nodes.push(leaf(0.9, 0.0));
        // covers: each leaf 3 + c rows, the final leaf 20
        let mut below = 20.0;
        for c in (0..8usize).rev() {
            nodes[2 * c + 1].cover = 3.0 + c as f64;
            below += 3.0 + c as f64;
            nodes[2 * c].cover = below;
        }
        nodes[16].cover = 20.0;
        let e = Ensemble {
            base_margin: 0.1,
            trees: vec![BoostTree { nodes }],
            params: BoostParams::default(),
        };
        let tables = ShapTables::new(&e);
        assert_eq!(tables.tabulated(), 1);
        for bits in [0u32, 0xff, 0b1010_0110, 0b0111_1111, 0b1000_0000] {
            let row: Vec<f64> = (0..8).map(|c| f64::from((bits >> c) & 1)).collect();
            let slow = shap_values(&e, &row, 8);
            let fast = tables.shap_values(&e, &row, 8);
            for (a, b) in fast.iter().zip(&slow) {
                assert!((a - b).abs() < 1e-12, "{bits:b}: {fast:?} vs {slow:?}");
            }
        }
    }

    #[test]
    fn tables_fall_back_to_recursion_past_ten_path_columns() {
        // a chain testing columns 0..12 in turn: 12 distinct columns on the deepest paths
        let mut nodes = Vec::new();
        for c in 0..12u32 {
            let i = nodes.len() as u32;
            nodes.push(node(c, 0.5, i + 1, i + 2, 100.0 - 5.0 * c as f64));
            nodes.push(leaf(0.1 * c as f64 - 0.3, 5.0));
        }
        // the last internal node's left child is the chain's final leaf
        nodes.push(leaf(0.7, 40.0));
        // fix up: each node's left is the next internal node, its right the leaf beside it
        for c in 0..12usize {
            let i = 2 * c;
            nodes[i].left = (i + 2) as u32;
            nodes[i].right = (i + 1) as u32;
            nodes[i + 1].cover = 5.0;
            nodes[i].cover = 5.0 * (12 - c) as f64 + 40.0;
        }
        let deep = BoostTree { nodes };
        let shallow = BoostTree {
            nodes: vec![node(3, 0.0, 1, 2, 10.0), leaf(0.5, 4.0), leaf(-0.5, 6.0)],
        };
        let e = Ensemble {
            base_margin: 0.0,
            trees: vec![deep, shallow],
            params: BoostParams::default(),
        };
        let tables = ShapTables::new(&e);
        assert_eq!(tables.tabulated(), 1, "only the shallow tree is tabulated");
        for row in [[0.0; 12], [1.0; 12], {
            let mut r = [0.0; 12];
            r[5] = 1.0;
            r
        }] {
            let slow = shap_values(&e, &row, 12);
            let fast = tables.shap_values(&e, &row, 12);
            for (a, b) in fast.iter().zip(&slow) {
                assert!((a - b).abs() < 1e-12, "{fast:?} vs {slow:?}");
            }
            let sum: f64 = fast.iter().sum();
            assert!((e.expected_margin() + sum - e.margin(&row)).abs() < 1e-12);
        }
    }
}
