//! Stable segments across retrains (`--previous`): new centroids are matched to the previous
//! ones so matched segments keep their id and name, and the migration matrix shows where the
//! training customers moved.

use super::model::{nearest, SegmentInfo, SegmentModel};
use super::naming::unique_name;
use super::scale::ScaledFeature;
use super::FitInput;
use serde::{Deserialize, Serialize};

/// Migration matrix between two segmentations of the same customers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Migration {
    /// Previous segment names (rows).
    pub from: Vec<String>,
    /// New segment names (columns).
    pub to: Vec<String>,
    /// `share[i][j]` = share of previous segment i's customers now in new segment j.
    pub share: Vec<Vec<f64>>,
}

/// When `prev` clustered on the same features: gives matched `segments` the previous id and
/// name (unmatched ones get fresh ids and unique names) and returns the migration matrix.
/// Otherwise leaves `segments` alone and returns `None`.
pub(super) fn carry_over(
    prev: &SegmentModel,
    input: &FitInput,
    features: &[ScaledFeature],
    centroids: &[Vec<f64>],
    segments: &mut [SegmentInfo],
) -> Option<Migration> {
    let same_features = prev
        .features
        .iter()
        .map(|f| &f.name)
        .eq(features.iter().map(|f| &f.name));
    if !same_features {
        return None;
    }
    let m = match_previous(prev, features, centroids);
    adopt_ids(prev, &m, segments);
    Some(migration(prev, input, features, centroids, segments))
}

/// For each new centroid, the previous segment it continues (minimum total centroid distance,
/// measured in this model's scaled space), if any.
fn match_previous(
    prev: &SegmentModel,
    features: &[ScaledFeature],
    centroids: &[Vec<f64>],
) -> Vec<Option<usize>> {
    // previous centroids → raw units → this model's scaled space
    let prev_in_new: Vec<Vec<f64>> = (0..prev.centroids.len())
        .map(|i| {
            prev.centroid_raw(i)
                .iter()
                .zip(features)
                .map(|(&v, f)| f.scale(v))
                .collect()
        })
        .collect();
    let cost: Vec<Vec<f64>> = centroids
        .iter()
        .map(|c| {
            prev_in_new
                .iter()
                .map(|p| {
                    c.iter()
                        .zip(p)
                        .map(|(a, b)| (a - b).powi(2))
                        .sum::<f64>()
                        .sqrt()
                })
                .collect()
        })
        .collect();
    min_cost_matching(&cost)
}

/// Matched segments take the previous id and name; the rest get ids after the previous maximum
/// and their fresh name, made unique against the names already taken.
fn adopt_ids(prev: &SegmentModel, m: &[Option<usize>], segments: &mut [SegmentInfo]) {
    let mut next_id = prev
        .segments
        .iter()
        .map(|s| s.id)
        .max()
        .map_or(0, |v| v + 1);
    let mut used: Vec<String> = Vec::new();
    for (i, mj) in m.iter().enumerate() {
        if let Some(j) = mj {
            segments[i].id = prev.segments[*j].id;
            segments[i].name = prev.segments[*j].name.clone();
            used.push(segments[i].name.clone());
        }
    }
    for (i, mj) in m.iter().enumerate() {
        if mj.is_none() {
            segments[i].id = next_id;
            next_id += 1;
            let name = unique_name(segments[i].name.clone(), &used);
            used.push(name.clone());
            segments[i].name = name;
        }
    }
}

/// Share of the training customers of each previous segment now in each new segment.
fn migration(
    prev: &SegmentModel,
    input: &FitInput,
    features: &[ScaledFeature],
    centroids: &[Vec<f64>],
    segments: &[SegmentInfo],
) -> Migration {
    let mut counts = vec![vec![0usize; centroids.len()]; prev.centroids.len()];
    for &r in input.rows {
        let row = input.x.row(r);
        let a = prev.cluster_of(&row);
        let z: Vec<f64> = features.iter().map(|f| f.scale(row[f.column])).collect();
        let b = nearest(centroids, &z).0;
        counts[a][b] += 1;
    }
    Migration {
        from: prev.segments.iter().map(|s| s.name.clone()).collect(),
        to: segments.iter().map(|s| s.name.clone()).collect(),
        share: counts
            .iter()
            .map(|row| {
                let t = row.iter().sum::<usize>().max(1) as f64;
                row.iter().map(|&c| c as f64 / t).collect()
            })
            .collect(),
    }
}

/// Minimum-cost matching of rows to columns of `cost` (`r × c`), exact by DP over column subsets
/// (k ≤ 8 here). Returns for each row its column, or `None` when there are more rows than columns.
pub fn min_cost_matching(cost: &[Vec<f64>]) -> Vec<Option<usize>> {
    let r = cost.len();
    let c = cost.first().map_or(0, |x| x.len());
    if r > c {
        // transpose: match columns to rows, then invert
        let t: Vec<Vec<f64>> = (0..c)
            .map(|j| (0..r).map(|i| cost[i][j]).collect())
            .collect();
        let m = min_cost_matching(&t);
        let mut out = vec![None; r];
        for (j, i) in m.into_iter().enumerate() {
            if let Some(i) = i {
                out[i] = Some(j);
            }
        }
        return out;
    }
    let (dp, choice) = matching_dp(cost, c);
    backtrack(&dp, &choice, r)
}

/// DP over (row index, used-columns mask) for `r ≤ c`: the final cost of every mask, and for
/// each row `i + 1` and mask the column row `i` took to reach it (`usize::MAX` = unreachable).
fn matching_dp(cost: &[Vec<f64>], c: usize) -> (Vec<f64>, Vec<Vec<usize>>) {
    let full = 1usize << c;
    let mut dp = vec![f64::INFINITY; full];
    let mut choice = vec![vec![usize::MAX; full]; cost.len() + 1];
    dp[0] = 0.0;
    for (i, row) in cost.iter().enumerate() {
        let mut next = vec![f64::INFINITY; full];
        for (mask, &base) in dp.iter().enumerate() {
            if base.is_infinite() || (mask.count_ones() as usize) != i {
                continue;
            }
            for (j, &cij) in row.iter().enumerate() {
                if mask & (1 << j) != 0 {
                    continue;
                }
                let m2 = mask | (1 << j);
                let v = base + cij;
                if v < next[m2] {
                    next[m2] = v;
                    choice[i + 1][m2] = j;
                }
            }
        }
        dp = next;
    }
    (dp, choice)
}

/// The assignment of the cheapest mask with `r` columns used, read back row by row.
fn backtrack(dp: &[f64], choice: &[Vec<usize>], r: usize) -> Vec<Option<usize>> {
    let (mut mask, _) = dp
        .iter()
        .enumerate()
        .filter(|(m, _)| m.count_ones() as usize == r)
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(m, v)| (m, *v))
        .unwrap_or((0, 0.0));
    let mut out = vec![None; r];
    for i in (1..=r).rev() {
        let j = choice[i][mask];
        if j == usize::MAX {
            break;
        }
        out[i - 1] = Some(j);
        mask &= !(1 << j);
    }
    out
}
