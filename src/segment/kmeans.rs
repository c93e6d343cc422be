//! k-means: linfa-clustering on a seeded sample, Lloyd refinement over all rows, and the choice
//! of k by mean silhouette.

use super::model::nearest;
use super::scale::{scale_rows, ScaledFeature};
use super::{FitInput, SegmentConfig, SegmentError};
use crate::util::Rng;
use serde::{Deserialize, Serialize};

/// Rows linfa-clustering fits on; larger inputs are then refined by Lloyd steps on all rows.
pub const LINFA_ROWS: usize = 20_000;

/// How k was chosen, per candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KChoice {
    /// k.
    pub k: usize,
    /// Mean silhouette on the sample.
    pub silhouette: f64,
    /// Sum of squared distances on the fit sample (scaled space).
    pub sse: f64,
}

/// Indices `0..n` when `n <= max`, else a seeded sample of `max` of them in ascending order.
fn seeded_sample(n: usize, max: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    if n > max {
        Rng::new(seed).shuffle(&mut idx);
        idx.truncate(max);
        idx.sort_unstable();
    }
    idx
}

/// A seeded sample of at most `max` of `rows` (all of them, in order, when few enough).
pub(super) fn sample_of(rows: &[usize], max: usize, seed: u64) -> Vec<usize> {
    seeded_sample(rows.len(), max, seed)
        .into_iter()
        .map(|i| rows[i])
        .collect()
}

/// The k used and its centroids (scaled space), plus the candidates tried when k was automatic.
pub(super) struct KSelection {
    /// Chosen k.
    pub(super) k: usize,
    /// Its centroids.
    pub(super) centroids: Vec<Vec<f64>>,
    /// Candidates tried (empty when k was configured).
    pub(super) search: Vec<KChoice>,
}

/// k-means on the scaled fit sample `zfit`, with the configured k or the best by silhouette.
pub(super) fn choose_k(
    cfg: &SegmentConfig,
    input: &FitInput,
    features: &[ScaledFeature],
    fit_rows: &[usize],
    zfit: &[f64],
) -> Result<KSelection, SegmentError> {
    let d = features.len();
    let Some(k) = cfg.k else {
        if cfg.k_min < 2 || cfg.k_max < cfg.k_min || cfg.k_max > 20 {
            return Err(SegmentError::Config(format!(
                "segments.k_min / k_max must satisfy 2 <= k_min <= k_max <= 20, got {} / {}",
                cfg.k_min, cfg.k_max
            )));
        }
        let srows = sample_of(fit_rows, cfg.silhouette_sample, input.seed ^ 0x51);
        let zs = scale_rows(input.x, features, &srows);
        return search_k(cfg, input.seed, zfit, &zs, d);
    };
    if !(1..=20).contains(&k) {
        return Err(SegmentError::Config(format!(
            "segments.k must be 1..=20, got {k}"
        )));
    }
    Ok(KSelection {
        k,
        centroids: kmeans(zfit, d, k, cfg, input.seed)?,
        search: Vec::new(),
    })
}

/// Fits every k in `k_min..=k_max` (capped below the fit sample size) on `zfit` and keeps the
/// highest mean silhouette on the points `zs`; ties keep the smaller k.
fn search_k(
    cfg: &SegmentConfig,
    seed: u64,
    zfit: &[f64],
    zs: &[f64],
    d: usize,
) -> Result<KSelection, SegmentError> {
    let fit_len = zfit.len() / d;
    let ks: Vec<usize> =
        (cfg.k_min..=cfg.k_max.min(fit_len.saturating_sub(1)).max(cfg.k_min)).collect();
    // every k on the (≤ LINFA_ROWS) clustering sample; only the chosen one is refined on all
    // fit rows below (Lloyd over 200k rows for each k was most of the segment stage)
    let sample = linfa_sample(zfit, d, seed);
    let fitted = ks
        .iter()
        .map(|&k| linfa_fit(sample.0.clone(), sample.1, d, k, cfg, seed))
        .collect::<Result<Vec<_>, _>>()?;
    // one pass over the pairwise distances scores every k
    let scores = silhouettes(zs, d, &fitted);
    let mut search = Vec::new();
    let mut best: Option<(f64, usize)> = None;
    for (i, (&k, &s)) in ks.iter().zip(&scores).enumerate() {
        search.push(KChoice {
            k,
            silhouette: s,
            sse: sse(&fitted[i], zfit, d),
        });
        if best.is_none_or(|b| s > b.0 + 1e-12) {
            best = Some((s, i));
        }
    }
    let (_, i) = best.ok_or_else(|| SegmentError::Fit("no k could be fitted".into()))?;
    let mut centroids = fitted.into_iter().nth(i).unwrap_or_default();
    if fit_len > sample.1 {
        centroids = lloyd(zfit, d, centroids, cfg.max_iterations, cfg.tolerance);
    }
    Ok(KSelection {
        k: ks[i],
        centroids,
        search,
    })
}

/// Sum of squared distances of the row-major points `z` to their nearest centroid.
fn sse(centroids: &[Vec<f64>], z: &[f64], d: usize) -> f64 {
    z.chunks(d).map(|p| nearest(centroids, p).1).sum()
}

/// k-means on row-major `data` (`n × d`), seeded.
///
/// linfa-clustering (k-means++ init, `n_runs` restarts, `max_iterations`, `tolerance`) clusters a
/// seeded sample of at most [`LINFA_ROWS`] rows; when there are more rows, its centroids seed
/// Lloyd iterations over all rows (parallel, same `max_iterations` and `tolerance` on centroid
/// movement). Returns the centroids.
pub fn kmeans(
    data: &[f64],
    d: usize,
    k: usize,
    cfg: &SegmentConfig,
    seed: u64,
) -> Result<Vec<Vec<f64>>, SegmentError> {
    let n = data.len() / d.max(1);
    if n < k {
        return Err(SegmentError::Config(format!(
            "{n} rows cannot make {k} clusters; lower segments.k or use --no-segments"
        )));
    }
    let (sample, rows) = linfa_sample(data, d, seed);
    let centroids = linfa_fit(sample, rows, d, k, cfg, seed)?;
    if n <= rows {
        return Ok(centroids);
    }
    Ok(lloyd(data, d, centroids, cfg.max_iterations, cfg.tolerance))
}

/// The seeded sample (row-major, and its row count) of at most [`LINFA_ROWS`] rows of `data`
/// that linfa-clustering fits on.
fn linfa_sample(data: &[f64], d: usize, seed: u64) -> (Vec<f64>, usize) {
    let n = data.len() / d.max(1);
    let idx = seeded_sample(n, LINFA_ROWS, seed ^ 0x6b6d);
    let mut sample = Vec::with_capacity(idx.len() * d);
    for &i in &idx {
        sample.extend_from_slice(&data[i * d..(i + 1) * d]);
    }
    (sample, idx.len())
}

/// linfa-clustering k-means (k-means++ init, seeded Xoshiro256+) on the row-major `sample`
/// (`rows × d`); returns its centroids.
fn linfa_fit(
    sample: Vec<f64>,
    rows: usize,
    d: usize,
    k: usize,
    cfg: &SegmentConfig,
    seed: u64,
) -> Result<Vec<Vec<f64>>, SegmentError> {
    use linfa::prelude::*;
    use rand_xoshiro::rand_core::SeedableRng;
    let records = ndarray::Array2::from_shape_vec((rows, d), sample)
        .map_err(|e| SegmentError::Fit(e.to_string()))?;
    let ds = DatasetBase::from(records);
    let rng = rand_xoshiro::Xoshiro256Plus::seed_from_u64(seed);
    let model = linfa_clustering::KMeans::params_with_rng(k, rng)
        .n_runs(cfg.n_runs.max(1))
        .max_n_iterations(cfg.max_iterations.max(1))
        .tolerance(cfg.tolerance)
        .init_method(linfa_clustering::KMeansInit::KMeansPlusPlus)
        .fit(&ds)
        .map_err(|e| SegmentError::Fit(e.to_string()))?;
    Ok(model
        .centroids()
        .rows()
        .into_iter()
        .map(|r| r.to_vec())
        .collect())
}

/// Lloyd iterations over all rows until the centroids move less than `tol` (Frobenius norm).
pub fn lloyd(
    data: &[f64],
    d: usize,
    mut c: Vec<Vec<f64>>,
    max_iter: u64,
    tol: f64,
) -> Vec<Vec<f64>> {
    let n = data.len() / d;
    let k = c.len();
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    for _ in 0..max_iter.max(1) {
        let cf: Vec<f64> = c.iter().flatten().copied().collect();
        let parts = crate::model::parallel_chunks(n, threads, |rows| {
            assign_and_sum(&data[rows.start * d..rows.end * d], d, &cf, k)
        });
        let (sums, counts) = merge_parts(parts, k, d);
        let shift = move_centroids(&mut c, &sums, &counts, d);
        if shift.sqrt() < tol {
            break;
        }
    }
    c
}

/// Assigns each row of the row-major chunk `points` to its nearest centroid (`cf`, flattened
/// `k × d`); returns per-centroid coordinate sums (`k × d`) and member counts.
fn assign_and_sum(points: &[f64], d: usize, cf: &[f64], k: usize) -> (Vec<f64>, Vec<usize>) {
    let mut sums = vec![0.0; k * d];
    let mut counts = vec![0usize; k];
    for p in points.chunks_exact(d) {
        let mut best = (0usize, f64::INFINITY);
        for (j, m) in cf.chunks_exact(d).enumerate() {
            let mut dist = 0.0;
            for t in 0..d {
                let diff = p[t] - m[t];
                dist += diff * diff;
            }
            if dist < best.1 {
                best = (j, dist);
            }
        }
        counts[best.0] += 1;
        for t in 0..d {
            sums[best.0 * d + t] += p[t];
        }
    }
    (sums, counts)
}

/// Adds up the chunks' sums and counts in chunk order (fixed order keeps results reproducible).
fn merge_parts(parts: Vec<(Vec<f64>, Vec<usize>)>, k: usize, d: usize) -> (Vec<f64>, Vec<usize>) {
    let mut sums = vec![0.0; k * d];
    let mut counts = vec![0usize; k];
    for (s, cnt) in parts {
        for (a, b) in sums.iter_mut().zip(s) {
            *a += b;
        }
        for (a, b) in counts.iter_mut().zip(cnt) {
            *a += b;
        }
    }
    (sums, counts)
}

/// Moves each non-empty cluster's centroid to its members' mean; returns the squared total shift.
fn move_centroids(c: &mut [Vec<f64>], sums: &[f64], counts: &[usize], d: usize) -> f64 {
    let mut shift = 0.0;
    for j in 0..c.len() {
        if counts[j] == 0 {
            continue; // an empty cluster keeps its centroid
        }
        for t in 0..d {
            let v = sums[j * d + t] / counts[j] as f64;
            shift += (v - c[j][t]).powi(2);
            c[j][t] = v;
        }
    }
    shift
}

/// Fixed number of strided work chunks for [`silhouettes`], so the sum (and the card) does not
/// depend on the machine's core count.
const SILHOUETTE_CHUNKS: usize = 16;

/// Mean silhouette of row-major points `z` (`n × d`) under each candidate set of centroids.
///
/// The pairwise distances do not depend on the clustering, so each one is computed once and
/// added to every candidate's per-cluster sum: `n² (d + m)` work for `m` candidates instead of
/// `m n² d`.
pub fn silhouettes(z: &[f64], d: usize, candidates: &[Vec<Vec<f64>>]) -> Vec<f64> {
    let n = z.len() / d.max(1);
    let m = candidates.len();
    // where candidate c keeps its per-cluster sums in the flat scratch array
    let mut offset = Vec::with_capacity(m + 1);
    offset.push(0usize);
    for c in candidates {
        offset.push(offset.last().copied().unwrap_or(0) + c.len());
    }
    let slots = offset[m];
    // slot[j * m + c]: the scratch slot of point j's cluster under candidate c
    let mut slot = vec![0u32; n * m];
    let mut counts = vec![0usize; slots];
    for j in 0..n {
        let p = &z[j * d..(j + 1) * d];
        for (c, cent) in candidates.iter().enumerate() {
            let s = offset[c] + nearest(cent, p).0;
            slot[j * m + c] = s as u32;
            counts[s] += 1;
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let parts = crate::model::parallel_map(
        SILHOUETTE_CHUNKS,
        threads,
        |chunk| {
            let mut total = vec![0.0; m];
            let mut sum = vec![0.0; slots];
            for i in (chunk..n).step_by(SILHOUETTE_CHUNKS) {
                sum.iter_mut().for_each(|v| *v = 0.0);
                let a = &z[i * d..(i + 1) * d];
                for j in (0..n).filter(|&j| j != i) {
                    let b = &z[j * d..(j + 1) * d];
                    let dist = a
                        .iter()
                        .zip(b)
                        .map(|(x, y)| (x - y) * (x - y))
                        .sum::<f64>()
                        .sqrt();
                    for &s in &slot[j * m..(j + 1) * m] {
                        sum[s as usize] += dist;
                    }
                }
                for c in 0..m {
                    let range = offset[c]..offset[c + 1];
                    let own = slot[i * m + c] as usize - offset[c];
                    if let Some(v) = point_silhouette(&sum[range.clone()], &counts[range], own) {
                        total[c] += v;
                    }
                }
            }
            total
        },
        &|| {},
    );
    (0..m)
        .map(|c| parts.iter().map(|t| t[c]).sum::<f64>() / n.max(1) as f64)
        .collect()
}

/// Silhouette of a point in cluster `own` given its distance sums to each cluster's members
/// (`sum`, excluding itself) and the cluster sizes; `None` for a singleton cluster or when no
/// other cluster has members.
fn point_silhouette(sum: &[f64], counts: &[usize], own: usize) -> Option<f64> {
    if counts[own] <= 1 {
        return None; // silhouette of a singleton is 0
    }
    let ai = sum[own] / (counts[own] - 1) as f64;
    let bi = (0..counts.len())
        .filter(|&c| c != own && counts[c] > 0)
        .map(|c| sum[c] / counts[c] as f64)
        .fold(f64::INFINITY, f64::min);
    bi.is_finite().then(|| (bi - ai) / ai.max(bi))
}
