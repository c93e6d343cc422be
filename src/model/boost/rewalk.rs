//! Re-scoring one row with a few columns changed (the lever search re-scores a customer with
//! other contract or payment values hundreds of times per request). A tree whose path for the
//! row tests none of the changed columns sends the changed row to the same leaf, so only the
//! trees whose path tests one of them are walked again; the margin is then the same sum in the
//! same order as [`Ensemble::margin`], bit-identical to scoring the changed row from scratch.

use super::Ensemble;

/// One row's leaf in every tree and, per encoded column, the trees whose path tests it.
#[derive(Debug, Clone)]
pub struct RowPaths {
    /// The leaf value each tree gives the row, in boosting order.
    values: Vec<f64>,
    /// Trees whose path tests column `c`: `trees[start[c]..start[c + 1]]`, ascending.
    start: Vec<u32>,
    trees: Vec<u32>,
}

impl Ensemble {
    /// Walk `row` (an encoded row, every column this ensemble tests) through every tree once.
    pub fn row_paths(&self, row: &[f64]) -> RowPaths {
        let mut values = Vec::with_capacity(self.trees.len());
        // (column, tree) for every test on the row's paths
        let mut tests: Vec<(u32, u32)> = Vec::with_capacity(self.trees.len() * 8);
        for (ti, t) in self.trees.iter().enumerate() {
            let mut i = 0usize;
            loop {
                let n = &t.nodes[i];
                if n.is_leaf() {
                    values.push(n.value);
                    break;
                }
                tests.push((n.feature, ti as u32));
                // NaN fails `<=` and goes right, as in `BoostTree::leaf_by`
                i = if row[n.feature as usize] <= n.threshold {
                    n.left as usize
                } else {
                    n.right as usize
                };
            }
        }
        tests.sort_unstable();
        tests.dedup();
        let mut start = vec![0u32; row.len() + 1];
        for &(c, _) in &tests {
            start[c as usize + 1] += 1;
        }
        for c in 0..row.len() {
            start[c + 1] += start[c];
        }
        RowPaths {
            values,
            start,
            trees: tests.into_iter().map(|(_, t)| t).collect(),
        }
    }
}

impl RowPaths {
    /// Margin of `changed_row`, which equals the walked row except in the columns `changed`;
    /// equal to `e.margin(changed_row)` bit for bit (`e` is the ensemble that walked the row).
    pub fn margin(&self, e: &Ensemble, changed_row: &[f64], changed: &[usize]) -> f64 {
        let mut again = vec![false; self.values.len()];
        for &c in changed {
            let (lo, hi) = (self.start[c] as usize, self.start[c + 1] as usize);
            for &t in &self.trees[lo..hi] {
                again[t as usize] = true;
            }
        }
        let mut m = e.base_margin;
        for (t, (&v, &walk)) in self.values.iter().zip(&again).enumerate() {
            m += if walk {
                let tree = &e.trees[t];
                tree.nodes[tree.leaf_by(|f| changed_row[f])].value
            } else {
                v
            };
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::boost::testing::{leaf, node, xorshift};
    use crate::model::boost::{BoostParams, BoostTree};

    #[test]
    fn rescoring_changed_columns_equals_scoring_from_scratch() {
        // pseudo-random trees over 6 columns, depth 3, values with long mantissas so that any
        // change of summation order would show
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let trees: Vec<BoostTree> = (0..200)
            .map(|_| {
                let mut nodes = Vec::new();
                for i in 0..7u32 {
                    let f = (next() % 6) as u32;
                    let th = (next() % 100) as f64 / 50.0 - 1.0;
                    nodes.push(node(f, th, 2 * i + 1, 2 * i + 2, 1.0));
                }
                for _ in 0..8 {
                    nodes.push(leaf((next() % 1_000_000) as f64 / 777_777.0 - 0.6, 1.0));
                }
                // children of node i are 2i+1, 2i+2: the first 7 are splits, the rest leaves
                BoostTree { nodes }
            })
            .collect();
        let e = Ensemble {
            base_margin: -1.1,
            trees,
            params: BoostParams::default(),
        };
        let rows = [
            [0.1, -0.5, 0.9, 0.0, 1.0, -1.0],
            [f64::NAN, 0.3, 0.3, 0.7, -0.2, 0.5],
        ];
        for row in rows {
            let paths = e.row_paths(&row);
            for changed in [vec![0usize], vec![1, 4], vec![2, 3, 5], vec![]] {
                let mut moved = row;
                for &c in &changed {
                    moved[c] = (next() % 100) as f64 / 50.0 - 1.0;
                }
                let fast = paths.margin(&e, &moved, &changed);
                assert_eq!(fast.to_bits(), e.margin(&moved).to_bits(), "{changed:?}");
            }
            assert_eq!(
                paths.margin(&e, &row, &[]).to_bits(),
                e.margin(&row).to_bits()
            );
        }
    }
}
