//! The project's own exact CART learner (sorts each feature at every node).

use super::learner::{Direct, Grow, Learner};
use super::{Structure, TreeParams, LEAF};
use crate::features::Matrix;
use crate::model::ModelError;

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

impl Learner for CartLearner {
    fn name(&self) -> &'static str {
        super::LearnerKind::Cart.as_str()
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
