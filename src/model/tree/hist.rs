//! Histogram CART: the default learner.
//!
//! The same greedy CART as [`super::CartLearner`] (weighted Gini/entropy, first best split
//! in feature order, row-count `min_samples_leaf`, `x <= threshold` left), but split search runs
//! over per-feature bins instead of sorted values:
//!
//! * **Binning once per training run** ([`Binned`], in `model::bins`): a feature with at most `max_bins` distinct
//!   values gets one bin per value — split search is then *exact* and chooses the same splits as
//!   the sorting learners; other features get quantile bins (cut points from a strided sample of
//!   at most 200k rows). Codes are `u8`, one byte per cell (1/8 of the f64 matrix).
//! * **Row partitioning**: each node owns a contiguous slice of row indices, split stably in place,
//!   so no full-length masks are scanned.
//! * **Sibling subtraction**: only the smaller child's histogram is built; the larger one is the
//!   parent's minus it. Children that cannot split (depth, size, purity) get no histogram.
//! * **Threads**: binning and large histograms are split over features across `threads`.
//!
//! Thresholds are the midpoint between the largest value of the last bin on the left and the
//! smallest value of the next non-empty bin, taken over the prepared rows — identical to the
//! sorting learners' midpoints whenever bins hold a single value.

use super::{Grow, Learner, Structure, TreeParams, LEAF};
use crate::features::Matrix;
use crate::model::bins::{partition_rows, per_feature, Binned, PartBuffers, MAX_BINS};
use crate::model::ModelError;

/// Cell updates below which a histogram is built on one thread.
const PAR_MIN_WORK: usize = 1 << 21;

/// Histogram CART learner.
#[derive(Debug, Clone, Copy)]
pub struct HistLearner {
    /// Bins per feature (2..=256).
    pub max_bins: usize,
}

impl Default for HistLearner {
    fn default() -> Self {
        HistLearner { max_bins: MAX_BINS }
    }
}

impl Learner for HistLearner {
    fn name(&self) -> &'static str {
        super::LearnerKind::Hist.as_str()
    }
    fn nests_by_depth(&self) -> bool {
        true
    }
    fn prepare<'a>(
        &self,
        x: &'a Matrix,
        rows: &[usize],
        threads: usize,
    ) -> Result<Box<dyn Grow + 'a>, ModelError> {
        Ok(Box::new(Binned::new(x, rows, self.max_bins, threads)?))
    }
}

/// One histogram cell: weighted negatives / positives and the row count.
#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    w: [f64; 2],
    n: u64,
}

/// State of one tree growth on a [`Binned`] matrix.
struct HistGrower<'a> {
    b: &'a Binned,
    /// Per row: weight if negative, weight if positive.
    wc: Vec<[f64; 2]>,
    p: &'a TreeParams,
    threads: usize,
    out: Structure,
    scratch: PartBuffers,
}

impl HistGrower<'_> {
    /// Histogram of `rows` over every feature's bins (split over features on large nodes).
    fn build(&self, rows: &[u32]) -> Vec<Cell> {
        let mut h = vec![Cell::default(); self.b.hist_len()];
        let threads = if rows.len() * self.b.ncols() >= PAR_MIN_WORK {
            self.threads
        } else {
            1
        };
        per_feature(
            &mut h,
            self.b.bin_counts(),
            threads,
            &|f, cells: &mut [Cell]| {
                let codes = self.b.codes_of(f);
                for &r in rows {
                    let c = &mut cells[codes[r as usize] as usize];
                    let wc = self.wc[r as usize];
                    c.n += 1;
                    c.w[0] += wc[0];
                    c.w[1] += wc[1];
                }
            },
        );
        h
    }

    /// Whether a node of `n` rows with class weights `wn`, `wp` at `depth` may be split.
    fn can_split(&self, n: usize, wn: f64, wp: f64, depth: usize) -> bool {
        n >= self.p.min_samples_split.max(2)
            && n >= 2 * self.p.min_samples_leaf.max(1)
            && depth < self.p.max_depth
            && wn > 0.0
            && wp > 0.0
    }

    /// Grow the subtree of the node owning `rows` (with histogram `hist` when the parent built
    /// or derived one, and weighted class totals `(wn, wp)`); returns the node's index.
    fn grow(
        &mut self,
        rows: &mut [u32],
        hist: Option<Vec<Cell>>,
        (wn, wp): (f64, f64),
        depth: usize,
    ) -> u32 {
        let me = self.out.len() as u32;
        let class = wp > wn;
        self.out.push((0, 0.0, LEAF, LEAF, class));
        let n = rows.len();
        if !self.can_split(n, wn, wp, depth) {
            return me;
        }
        let hist = match hist {
            Some(h) => h,
            None => self.build(rows),
        };
        let Some(best) = self.best_split(&hist, n, (wn, wp)) else {
            return me;
        };
        let (f, bl, (ln, lp)) = (best.feature, best.last_left, best.left);
        let off = self.b.offset(f);
        let br = (bl + 1..self.b.bins(f))
            .find(|&b| hist[off + b].n > 0)
            .expect("a right bin holds rows");
        let threshold = self.b.threshold(f, bl, br);
        let k = self.partition(rows, f, bl);
        let (l, r) = rows.split_at_mut(k);
        // right totals by subtraction: round residues of fractional weights to zero so a pure
        // child is recognised as pure
        let tiny = 1e-9 * (wn + wp);
        let clean = |v: f64| if v.abs() < tiny { 0.0 } else { v };
        let lt = (clean(ln), clean(lp));
        let rt = (clean(wn - ln), clean(wp - lp));
        let need_l = self.can_split(l.len(), lt.0, lt.1, depth + 1);
        let need_r = self.can_split(r.len(), rt.0, rt.1, depth + 1);
        let (hl, hr) = self.child_histograms(hist, l, r, (need_l, need_r));
        let left = self.grow(l, hl, lt, depth + 1);
        let right = self.grow(r, hr, rt, depth + 1);
        self.out[me as usize] = (f as u32, threshold, left, right, class);
        me
    }

    /// The best split of a node with `n` rows and class totals `(wn, wp)` from its histogram:
    /// lowest weighted child impurity, first in feature and bin order; `None` when no split
    /// respects `min_samples_leaf` or decreases impurity by `min_impurity_decrease`.
    #[inline(always)]
    fn best_split(&self, hist: &[Cell], n: usize, (wn, wp): (f64, f64)) -> Option<SplitChoice> {
        let total = wn + wp;
        let crit = self.p.criterion;
        let parent = crit.impurity(wn, wp);
        let min_leaf = self.p.min_samples_leaf.max(1);
        let mut best: Option<SplitChoice> = None;
        for f in 0..self.b.ncols() {
            let cells = &hist[self.b.offset(f)..self.b.offset(f) + self.b.bins(f)];
            let (mut ln, mut lp, mut lc) = (0.0, 0.0, 0usize);
            for (bi, c) in cells.iter().enumerate() {
                if c.n == 0 {
                    continue;
                }
                ln += c.w[0];
                lp += c.w[1];
                lc += c.n as usize;
                if lc >= n {
                    break;
                }
                if lc < min_leaf || n - lc < min_leaf {
                    continue;
                }
                let lw = ln + lp;
                let rw = total - lw;
                if lw <= 0.0 || rw <= 0.0 {
                    continue;
                }
                let score =
                    (lw * crit.impurity(ln, lp) + rw * crit.impurity(wn - ln, wp - lp)) / total;
                if best.is_none_or(|b| score < b.score) {
                    best = Some(SplitChoice {
                        score,
                        feature: f,
                        last_left: bi,
                        left: (ln, lp),
                    });
                }
            }
        }
        let best = best?;
        if parent - best.score < self.p.min_impurity_decrease {
            return None;
        }
        Some(best)
    }

    /// Stable in-place partition of `rows`: codes `<= last_left` of feature `f` first. Returns
    /// the number of left rows. Uses the grower's buffers, so it allocates nothing once grown.
    #[inline(always)]
    fn partition(&mut self, rows: &mut [u32], f: usize, last_left: usize) -> usize {
        partition_rows(self.b.codes_of(f), rows, last_left, &mut self.scratch)
    }

    /// Histograms for the children that will try to split (`need`): only the smaller child's is
    /// built; the larger one's is the parent's `hist` minus it, reusing its allocation.
    #[inline(always)]
    fn child_histograms(
        &self,
        mut hist: Vec<Cell>,
        l: &[u32],
        r: &[u32],
        (need_l, need_r): (bool, bool),
    ) -> (Option<Vec<Cell>>, Option<Vec<Cell>>) {
        if !(need_l || need_r) {
            (None, None)
        } else if l.len() <= r.len() {
            let small = self.build(l);
            if need_r {
                subtract(&mut hist, &small);
                (Some(small).filter(|_| need_l), Some(hist))
            } else {
                (Some(small), None)
            }
        } else {
            let small = self.build(r);
            if need_l {
                subtract(&mut hist, &small);
                (Some(hist), Some(small).filter(|_| need_r))
            } else {
                (None, Some(small))
            }
        }
    }
}

/// The chosen split of a node.
#[derive(Debug, Clone, Copy)]
struct SplitChoice {
    /// Weighted child impurity.
    score: f64,
    /// Feature split on.
    feature: usize,
    /// Last bin going left.
    last_left: usize,
    /// Weighted (negative, positive) totals of the left child.
    left: (f64, f64),
}

/// Turn a parent histogram into the larger child's: subtract the smaller child's cells.
fn subtract(parent: &mut [Cell], child: &[Cell]) {
    for (p, c) in parent.iter_mut().zip(child) {
        p.n -= c.n;
        p.w[0] -= c.w[0];
        p.w[1] -= c.w[1];
    }
}

impl Grow for Binned {
    fn binned(&self) -> Option<&Binned> {
        Some(self)
    }

    fn grow(
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
        if let Some(&r) = rows.iter().find(|&&r| r >= self.nrows_binned()) {
            return Err(ModelError::Fit(format!(
                "row {r} is outside the binned matrix ({} rows)",
                self.nrows_binned()
            )));
        }
        let wc: Vec<[f64; 2]> = y
            .iter()
            .zip(w)
            .map(|(&y, &w)| if y { [0.0, w] } else { [w, 0.0] })
            .collect();
        let (mut wn, mut wp) = (0.0, 0.0);
        for &r in rows {
            wn += wc[r][0];
            wp += wc[r][1];
        }
        let mut g = HistGrower {
            b: self,
            wc,
            p: params,
            threads: threads.max(1),
            out: Vec::new(),
            scratch: Default::default(),
        };
        let mut r: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        g.grow(&mut r, None, (wn, wp), 0);
        Ok(g.out)
    }
}
