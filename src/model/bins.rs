//! The training matrix cut into bins, shared by the histogram learners (the single tree's
//! [`crate::model::tree::HistLearner`] and the boosted trees of [`crate::model::boost`]):
//!
//! * **Binning once per training run** ([`Binned`]): a feature with at most `max_bins` distinct
//!   values gets one bin per value — split search is then *exact* and chooses the same splits as
//!   the sorting learners; other features get quantile bins (cut points from a strided sample of
//!   at most 200k rows). Codes are `u8`, one byte per cell (1/8 of the f64 matrix).
//! * **Row partitioning** (`partition_rows`): each node owns a contiguous slice of row indices,
//!   split stably in place by bin code, so no full-length masks are scanned.
//!
//! Thresholds are the midpoint between the largest value of the last bin on the left and the
//! smallest value of the next non-empty bin, taken over the prepared rows — identical to the
//! sorting learners' midpoints whenever bins hold a single value.

use super::ModelError;
use crate::features::Matrix;
use std::sync::OnceLock;

/// Largest number of bins per feature (codes are `u8`).
pub const MAX_BINS: usize = 256;
/// Rows sampled per feature to place quantile cut points.
const SAMPLE: usize = 200_000;

/// The matrix cut into bins: codes per cell plus each bin's value range.
#[derive(Debug)]
pub struct Binned {
    nrows: usize,
    ncols: usize,
    /// Column-major bin codes: `codes[f * nrows + r]`.
    codes: Vec<u8>,
    /// Bins per feature.
    nbins: Vec<usize>,
    /// Offset of feature `f`'s first bin in a histogram.
    offset: Vec<usize>,
    /// Inclusive upper cut of every bin (last bin of a feature: +inf).
    upper: Vec<f64>,
    /// Smallest / largest prepared value in every bin (±inf when empty).
    lo: Vec<f64>,
    hi: Vec<f64>,
    /// Row-major copy of `codes` (`ncols` per row), made on first use by the boosted learner
    /// and shared by every fit on this matrix (cross-validation fits run side by side).
    by_row: OnceLock<Vec<u8>>,
}

/// Cut points (inclusive upper bounds) for one feature from its sorted, NaN-free values.
fn cuts(sorted: &[f64], max_bins: usize) -> Vec<f64> {
    let mut distinct: Vec<f64> = Vec::new();
    for &v in sorted {
        if distinct.last() != Some(&v) {
            distinct.push(v);
            if distinct.len() > max_bins {
                break;
            }
        }
    }
    let mut up = if distinct.len() <= max_bins {
        distinct
    } else {
        let m = sorted.len();
        let mut q: Vec<f64> = (1..max_bins).map(|i| sorted[i * m / max_bins]).collect();
        q.dedup();
        q.push(f64::INFINITY);
        q
    };
    if up.is_empty() {
        up.push(f64::INFINITY);
    }
    let last = up.len() - 1;
    up[last] = f64::INFINITY;
    up
}

/// Run `f(feature, slice)` over disjoint per-feature chunks of `data` (chunk `i` has
/// `sizes[i]` items) on `threads` threads.
pub(crate) fn per_feature<T: Send>(
    data: &mut [T],
    sizes: &[usize],
    threads: usize,
    f: &(dyn Fn(usize, &mut [T]) + Sync),
) {
    let mut parts: Vec<(usize, &mut [T])> = Vec::with_capacity(sizes.len());
    let mut rest = data;
    for (i, &s) in sizes.iter().enumerate() {
        let (a, b) = rest.split_at_mut(s);
        parts.push((i, a));
        rest = b;
    }
    let threads = threads.clamp(1, sizes.len().max(1));
    if threads == 1 {
        parts.into_iter().for_each(|(i, s)| f(i, s));
        return;
    }
    let mut groups: Vec<Vec<(usize, &mut [T])>> = (0..threads).map(|_| Vec::new()).collect();
    for (k, p) in parts.into_iter().enumerate() {
        groups[k % threads].push(p);
    }
    std::thread::scope(|s| {
        for g in groups {
            s.spawn(move || g.into_iter().for_each(|(i, sl)| f(i, sl)));
        }
    });
}

/// One feature's bins: (inclusive upper cuts, smallest value per bin, largest value per bin).
type Ranges = (Vec<f64>, Vec<f64>, Vec<f64>);

/// Values of one column to place cut points on: the distinct values over *all* `rows` when there
/// are at most `max_bins` of them (a rare level missed by the sample would otherwise share a bin
/// and never be split on), else every `step`-th row's value. NaN-free, unsorted.
fn cut_sample(col: &[f64], rows: &[usize], step: usize, max_bins: usize) -> Vec<f64> {
    let mut few: crate::util::FxHashSet<u64> = Default::default();
    if step > 1 {
        for &r in rows {
            let v = col[r];
            if !v.is_nan() {
                few.insert((v + 0.0).to_bits());
                if few.len() > max_bins {
                    break;
                }
            }
        }
    }
    if step > 1 && few.len() <= max_bins {
        few.iter().map(|&b| f64::from_bits(b)).collect()
    } else {
        rows.iter()
            .step_by(step)
            .map(|&r| col[r])
            .filter(|v| !v.is_nan())
            .collect()
    }
}

/// Bin one column: write every cell's code into `out` (NaN goes to the last bin) and return the
/// cuts plus each bin's value range over `rows`.
fn bin_feature(
    col: &[f64],
    rows: &[usize],
    step: usize,
    max_bins: usize,
    out: &mut [u8],
) -> Ranges {
    let mut s = cut_sample(col, rows, step, max_bins);
    s.sort_unstable_by(|a, b| a.total_cmp(b));
    let up = cuts(&s, max_bins);
    let last = up.len() - 1;
    for (c, &v) in out.iter_mut().zip(col) {
        *c = if v.is_nan() {
            last as u8
        } else {
            up.partition_point(|&u| u < v).min(last) as u8
        };
    }
    let mut lo = vec![f64::INFINITY; up.len()];
    let mut hi = vec![f64::NEG_INFINITY; up.len()];
    for &r in rows {
        let v = col[r];
        if !v.is_nan() {
            let b = out[r] as usize;
            lo[b] = lo[b].min(v);
            hi[b] = hi[b].max(v);
        }
    }
    (up, lo, hi)
}

impl Binned {
    /// Bin every column of `x`; cut points and value ranges come from `rows` only.
    pub fn new(
        x: &Matrix,
        rows: &[usize],
        max_bins: usize,
        threads: usize,
    ) -> Result<Binned, ModelError> {
        if !(2..=MAX_BINS).contains(&max_bins) {
            return Err(ModelError::Config(format!(
                "max_bins must be in 2..={MAX_BINS}, got {max_bins}"
            )));
        }
        if rows.is_empty() {
            return Err(ModelError::Fit("no training rows".into()));
        }
        let (nrows, ncols) = (x.nrows, x.ncols);
        let step = rows.len().div_ceil(SAMPLE).max(1);
        let mut codes = vec![0u8; nrows * ncols];
        let ranges: std::sync::Mutex<Vec<Option<Ranges>>> =
            std::sync::Mutex::new(vec![None; ncols]);
        per_feature(
            &mut codes,
            &vec![nrows; ncols],
            threads,
            &|f, out: &mut [u8]| {
                let r = bin_feature(x.col(f), rows, step, max_bins, out);
                ranges.lock().expect("no poisoned lock")[f] = Some(r);
            },
        );
        let ranges = ranges.into_inner().expect("no poisoned lock");
        Ok(Binned::assemble(nrows, codes, ranges))
    }

    /// Concatenate the per-feature ranges into the flat histogram layout.
    fn assemble(nrows: usize, codes: Vec<u8>, ranges: Vec<Option<Ranges>>) -> Binned {
        let ncols = ranges.len();
        let mut b = Binned {
            nrows,
            ncols,
            codes,
            nbins: Vec::with_capacity(ncols),
            offset: Vec::with_capacity(ncols),
            upper: Vec::new(),
            lo: Vec::new(),
            hi: Vec::new(),
            by_row: OnceLock::new(),
        };
        for r in ranges {
            let (up, lo, hi) = r.expect("every feature binned");
            b.offset.push(b.upper.len());
            b.nbins.push(up.len());
            b.upper.extend(up);
            b.lo.extend(lo);
            b.hi.extend(hi);
        }
        b
    }

    /// Bins of feature `f`.
    pub fn bins(&self, f: usize) -> usize {
        self.nbins[f]
    }

    /// Rows of the binned matrix (every matrix row has codes).
    pub fn nrows_binned(&self) -> usize {
        self.nrows
    }

    /// Columns binned.
    pub fn ncols(&self) -> usize {
        self.ncols
    }

    /// Bins of every feature, in feature order.
    pub(crate) fn bin_counts(&self) -> &[usize] {
        &self.nbins
    }

    /// Offset of feature `f`'s first bin in a histogram.
    pub(crate) fn offset(&self, f: usize) -> usize {
        self.offset[f]
    }

    /// Cells of a histogram over every feature's bins.
    pub(crate) fn hist_len(&self) -> usize {
        self.upper.len()
    }

    /// Threshold separating bin `l` (last on the left) from bin `r` (first non-empty on the
    /// right) of feature `f`.
    pub(crate) fn threshold(&self, f: usize, l: usize, r: usize) -> f64 {
        let (a, b) = (self.hi[self.offset[f] + l], self.lo[self.offset[f] + r]);
        if !(a.is_finite() && b.is_finite()) {
            return self.upper[self.offset[f] + l];
        }
        let t = (a + b) / 2.0;
        if t >= b {
            a // adjacent floats: keep `a <= t < b`
        } else {
            t
        }
    }

    /// Bin codes of feature `f`, one per matrix row.
    pub(crate) fn codes_of(&self, f: usize) -> &[u8] {
        &self.codes[f * self.nrows..(f + 1) * self.nrows]
    }

    /// Bin codes row by row: row `r`'s codes are `[r * ncols, (r + 1) * ncols)`. Made on the
    /// first call (another `nrows × ncols` bytes) and kept.
    pub(crate) fn codes_by_row(&self) -> &[u8] {
        self.by_row.get_or_init(|| {
            let w = self.ncols;
            let mut out = vec![0u8; self.nrows * w];
            for f in 0..w {
                for (r, &c) in self.codes_of(f).iter().enumerate() {
                    out[r * w + f] = c;
                }
            }
            out
        })
    }
}

/// Rows ahead of the one being processed whose data a loop over a node's scattered rows
/// prefetches (the boosted histograms; a partition reads one code per row, which the
/// hardware prefetcher already follows: prefetching there measured no gain).
pub(crate) const AHEAD: usize = 32;

/// Ask the CPU to bring the cache line holding `v` into its nearest cache (a hint; no-op off
/// x86-64).
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn prefetch<T>(v: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 only hints the cache: it never dereferences the address in a way the
    // program can observe, cannot fault, and changes no memory or register the program reads.
    // The address comes from a live reference, and SSE is part of the x86-64 baseline, so the
    // instruction exists on every CPU this binary runs on.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (v as *const T).cast(),
        )
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// One thread's buffers of a partition: its left rows and its right rows (kept between calls,
/// so nothing is allocated once they have grown).
pub(crate) type PartBuffers = (Vec<u32>, Vec<u32>);

/// Split `rows` by their bin `codes` into the buffers' left rows (codes `<= last_left`) and
/// right rows, both in row order; returns how many went each way. Branch-free: every row is
/// written to both buffers and only the side it belongs to advances, so a left/right pattern
/// the processor cannot predict costs nothing.
fn split_rows(
    codes: &[u8],
    rows: &[u32],
    last_left: usize,
    (left, right): &mut PartBuffers,
) -> (usize, usize) {
    left.resize(rows.len(), 0);
    right.resize(rows.len(), 0);
    let (mut k, mut j) = (0usize, 0usize);
    for &r in rows {
        let l = usize::from(codes[r as usize] as usize <= last_left);
        left[k] = r;
        right[j] = r;
        k += l;
        j += 1 - l;
    }
    (k, j)
}

/// Stable in-place partition of `rows` by their bin `codes`: codes `<= last_left` first;
/// returns how many went left.
pub(crate) fn partition_rows(
    codes: &[u8],
    rows: &mut [u32],
    last_left: usize,
    buf: &mut PartBuffers,
) -> usize {
    let (k, j) = split_rows(codes, rows, last_left, buf);
    rows[..k].copy_from_slice(&buf.0[..k]);
    rows[k..].copy_from_slice(&buf.1[..j]);
    k
}

/// Rows below which [`partition_rows_par`] stays on one thread.
const PAR_PARTITION_MIN: usize = 1 << 16;

/// [`partition_rows`] over `threads` (one [`PartBuffers`] each in `bufs`): each thread splits
/// its contiguous share of the rows into its buffers, then each copies its buffers to their
/// final places — every share's left rows in share order, then every share's right rows in
/// share order, which is exactly the one-thread result.
pub(crate) fn partition_rows_par(
    codes: &[u8],
    rows: &mut [u32],
    last_left: usize,
    threads: usize,
    bufs: &mut Vec<PartBuffers>,
) -> usize {
    let n = rows.len();
    bufs.resize_with(bufs.len().max(threads.max(1)), Default::default);
    if threads <= 1 || n < PAR_PARTITION_MIN {
        return partition_rows(codes, rows, last_left, &mut bufs[0]);
    }
    let share = n.div_ceil(threads);
    // phase 1: every share into its thread's buffers
    let counts: Vec<(usize, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = rows
            .chunks(share)
            .zip(bufs.iter_mut())
            .map(|(rows, buf)| s.spawn(move || split_rows(codes, rows, last_left, buf)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("partition thread"))
            .collect()
    });
    let total_left: usize = counts.iter().map(|c| c.0).sum();
    // phase 2: cut the rows into each thread's left and right slots, in final order
    let (mut lefts, mut rights) = rows.split_at_mut(total_left);
    let mut slots = Vec::with_capacity(counts.len());
    for &(k, j) in &counts {
        let (a, rest) = std::mem::take(&mut lefts).split_at_mut(k);
        lefts = rest;
        let (b, rest) = std::mem::take(&mut rights).split_at_mut(j);
        rights = rest;
        slots.push((a, b));
    }
    std::thread::scope(|s| {
        for ((a, b), (left, right)) in slots.into_iter().zip(bufs.iter()) {
            s.spawn(move || {
                a.copy_from_slice(&left[..a.len()]);
                b.copy_from_slice(&right[..b.len()]);
            });
        }
    });
    total_left
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_partition_equals_the_serial_one() {
        let mut rng = crate::util::Rng::new(7);
        let codes: Vec<u8> = (0..300_000).map(|_| rng.below(256) as u8).collect();
        // a sparse increasing subset, as a node holds
        let rows: Vec<u32> = (0..300_000u32).filter(|_| rng.uniform() < 0.7).collect();
        let mut bufs = Vec::new();
        for (last_left, threads) in [(0, 2), (100, 2), (127, 3), (200, 5), (255, 2), (50, 1)] {
            let (mut a, mut b) = (rows.clone(), rows.clone());
            let ka = partition_rows(&codes, &mut a, last_left, &mut Default::default());
            let kb = partition_rows_par(&codes, &mut b, last_left, threads, &mut bufs);
            assert_eq!((ka, &a), (kb, &b), "{last_left}, {threads} threads");
            assert!(a[..ka]
                .iter()
                .all(|&r| codes[r as usize] as usize <= last_left));
            assert!(a[ka..]
                .iter()
                .all(|&r| codes[r as usize] as usize > last_left));
            assert!(a[..ka].is_sorted() && a[ka..].is_sorted(), "stable");
        }
    }

    #[test]
    fn few_distinct_values_get_one_bin_each_and_many_get_quantiles() {
        let v: Vec<f64> = vec![1.0, 1.0, 2.0, 5.0, 5.0, 9.0];
        assert_eq!(cuts(&v, 256), vec![1.0, 2.0, 5.0, f64::INFINITY]);
        let many: Vec<f64> = (0..10_000).map(|i| i as f64).collect();
        let c = cuts(&many, 256);
        assert_eq!(c.len(), 256);
        assert!(c.windows(2).all(|w| w[0] < w[1]));
        // NaN-only or empty columns still get one bin
        assert_eq!(cuts(&[], 256), vec![f64::INFINITY]);
    }

    #[test]
    fn codes_respect_cut_points_and_nan_goes_right() {
        let x = Matrix {
            nrows: 5,
            ncols: 1,
            data: vec![3.0, 1.0, f64::NAN, 2.0, 3.0],
        };
        let b = Binned::new(&x, &[0, 1, 2, 3, 4], 256, 1).unwrap();
        assert_eq!(b.bins(0), 3);
        assert_eq!(b.codes, vec![2, 0, 2, 1, 2]);
        assert_eq!(b.threshold(0, 0, 1), 1.5);
        assert_eq!(b.threshold(0, 1, 2), 2.5);
    }
}

#[cfg(test)]
mod sample_tests {
    use super::*;

    #[test]
    fn a_rare_value_outside_the_sample_still_gets_its_own_bin() {
        // 600k rows (sampled with a stride of 3): the value 1.0 appears once, at a row the sample skips
        let n = 600_000;
        let mut data = vec![0.0; n];
        data[1] = 1.0;
        let x = Matrix {
            nrows: n,
            ncols: 1,
            data,
        };
        let rows: Vec<usize> = (0..n).collect();
        let b = Binned::new(&x, &rows, 256, 1).unwrap();
        assert_eq!(b.bins(0), 2);
        assert_eq!(b.codes[1], 1);
        assert_eq!(b.codes[0], 0);
        assert_eq!(b.threshold(0, 0, 1), 0.5);
    }
}
