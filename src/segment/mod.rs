//! Customer segments: k-means clusters (linfa-clustering) with readable, stable names, plus the
//! rule-based RFM classes and lifecycle stages. Everything needed to assign a customer lives in
//! [`SegmentModel`], which ships in the bundle.

pub mod lifecycle;
pub mod rfm;

use crate::features::{Encoder, InputEncoding, Matrix};
use crate::ingest::FeatureKind;
use crate::util::Rng;
use lifecycle::{LifecycleConfig, LifecycleRule};
use rfm::RfmRule;
use serde::{Deserialize, Serialize};

/// Errors of the segmentation layer.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// Bad settings (unknown or non-numeric columns, k out of range).
    #[error("segments: {0}")]
    Config(String),
    /// k-means failed.
    #[error("segments: k-means failed: {0}")]
    Fit(String),
}

/// `[segments]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentConfig {
    /// Build segments at all.
    pub enabled: bool,
    /// Number of clusters; `None` = choose 2..=8 by silhouette.
    pub k: Option<usize>,
    /// Smallest k tried by the automatic choice.
    pub k_min: usize,
    /// Largest k tried by the automatic choice.
    pub k_max: usize,
    /// Clustering features (default: RFM + tenure + trend for transactions, numeric inputs otherwise).
    pub features: Option<Vec<String>>,
    /// k-means is fitted on a seeded sample of at most this many rows; everyone is assigned.
    pub fit_sample: usize,
    /// Silhouette is computed on a seeded sample of at most this many rows.
    pub silhouette_sample: usize,
    /// k-means restarts (linfa's default is 10).
    pub n_runs: usize,
    /// k-means iteration cap (linfa's default is 300).
    pub max_iterations: u64,
    /// k-means convergence tolerance on centroid movement.
    pub tolerance: f64,
    /// RFM columns and thresholds.
    pub rfm: RfmConfig,
    /// Lifecycle thresholds.
    pub lifecycle: LifecycleConfig,
    /// Tenure column for lifecycle stages in customer-table mode.
    pub tenure_column: Option<String>,
    /// Column whose sum is "revenue" in the segment profile (default `monetary_total` if present).
    pub revenue_column: Option<String>,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        SegmentConfig {
            enabled: true,
            k: None,
            k_min: 2,
            k_max: 8,
            features: None,
            fit_sample: 200_000,
            silhouette_sample: 10_000,
            n_runs: 3,
            max_iterations: 100,
            tolerance: 1e-4,
            rfm: RfmConfig::default(),
            lifecycle: LifecycleConfig::default(),
            tenure_column: None,
            revenue_column: None,
        }
    }
}

/// `[segments.rfm]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RfmConfig {
    /// Recency column (days since last purchase).
    pub recency: String,
    /// Frequency column.
    pub frequency: String,
    /// Monetary column.
    pub monetary: String,
    /// Quantile of the training data used as threshold (0.5 = median).
    pub quantile: f64,
    /// Fixed recency threshold (overrides the quantile).
    pub recent_days: Option<f64>,
    /// Fixed frequency threshold.
    pub high_frequency: Option<f64>,
    /// Fixed monetary threshold.
    pub high_monetary: Option<f64>,
}

impl Default for RfmConfig {
    fn default() -> Self {
        RfmConfig {
            recency: "recency_days".into(),
            frequency: "frequency".into(),
            monetary: "monetary_total".into(),
            quantile: 0.5,
            recent_days: None,
            high_frequency: None,
            high_monetary: None,
        }
    }
}

/// One clustering feature and its scaling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaledFeature {
    /// Input name.
    pub name: String,
    /// Encoded column holding the (imputed) value.
    pub column: usize,
    /// `log1p` before standardising (skewed, non-negative features).
    pub log1p: bool,
    /// Mean after the optional log.
    pub mean: f64,
    /// Standard deviation after the optional log.
    pub std: f64,
}

impl ScaledFeature {
    fn scale(&self, x: f64) -> f64 {
        let v = if self.log1p { x.max(0.0).ln_1p() } else { x };
        (v - self.mean) / self.std
    }
    fn unscale(&self, z: f64) -> f64 {
        let v = z * self.std + self.mean;
        if self.log1p {
            v.exp_m1()
        } else {
            v
        }
    }
}

/// A named segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentInfo {
    /// Stable id (kept across retrains with `--previous`).
    pub id: u32,
    /// Readable name from the centroid, unique within the model.
    pub name: String,
    /// RFM class of the centroid, when R/F/M features exist.
    pub rfm_class: Option<String>,
}

/// Everything needed to assign segments, RFM classes and lifecycle stages; stored in the bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentModel {
    /// Clustering features.
    pub features: Vec<ScaledFeature>,
    /// Centroids in scaled space, one per segment (same order as `segments`).
    pub centroids: Vec<Vec<f64>>,
    /// Segment ids and names.
    pub segments: Vec<SegmentInfo>,
    /// RFM rule, when R/F/M columns exist.
    pub rfm: Option<RfmRule>,
    /// Lifecycle rule, when a tenure column exists.
    pub lifecycle: Option<LifecycleRule>,
}

/// Labels of one customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment<'a> {
    /// Segment id.
    pub segment_id: u32,
    /// Segment name.
    pub segment: &'a str,
    /// RFM class.
    pub rfm_class: Option<&'static str>,
    /// Lifecycle stage.
    pub lifecycle_stage: Option<&'static str>,
}

impl SegmentModel {
    fn scaled(&self, row: &[f64]) -> Vec<f64> {
        self.features
            .iter()
            .map(|f| f.scale(row[f.column]))
            .collect()
    }

    /// Index (into `segments`) of the nearest centroid for an encoded row.
    pub fn cluster_of(&self, row: &[f64]) -> usize {
        nearest(&self.centroids, &self.scaled(row)).0
    }

    /// Segment, RFM class and lifecycle stage of an encoded row.
    pub fn assign(&self, row: &[f64]) -> Assignment<'_> {
        let s = &self.segments[self.cluster_of(row)];
        Assignment {
            segment_id: s.id,
            segment: &s.name,
            rfm_class: self.rfm.as_ref().map(|r| r.classify(row)),
            lifecycle_stage: self.lifecycle.as_ref().map(|l| l.stage(row)),
        }
    }

    /// Centroid `i` in the features' original units.
    pub fn centroid_raw(&self, i: usize) -> Vec<f64> {
        self.features
            .iter()
            .zip(&self.centroids[i])
            .map(|(f, &z)| f.unscale(z))
            .collect()
    }
}

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

/// Profile of one segment (model card).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentProfile {
    /// Id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// RFM class of the centroid.
    pub rfm_class: Option<String>,
    /// Customers.
    pub size: usize,
    /// Share of customers.
    pub share: f64,
    /// Churn rate of its customers.
    pub churn_rate: f64,
    /// Share of revenue (when a revenue column exists).
    pub revenue_share: Option<f64>,
    /// Mean of each clustering feature (original units).
    pub means: Vec<(String, f64)>,
}

/// Share of customers and revenue of one label (RFM class or lifecycle stage).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelShare {
    /// The class or stage.
    pub label: String,
    /// Customers.
    pub size: usize,
    /// Share of customers.
    pub share: f64,
    /// Churn rate.
    pub churn_rate: f64,
    /// Share of revenue.
    pub revenue_share: Option<f64>,
}

/// The segment section of the model card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentReport {
    /// Features clustered on (with log1p flags).
    pub features: Vec<(String, bool)>,
    /// Chosen k.
    pub k: usize,
    /// Candidates tried when k was automatic.
    pub k_search: Vec<KChoice>,
    /// Rows k-means was fitted on.
    pub fit_rows: usize,
    /// Sum of squared distances of all rows to their centroid (scaled space).
    pub sse_full: f64,
    /// Per-segment profile.
    pub segments: Vec<SegmentProfile>,
    /// RFM thresholds (recency ≤, frequency >, monetary >).
    pub rfm_thresholds: Option<(f64, f64, f64)>,
    /// RFM class shares.
    pub rfm_classes: Vec<LabelShare>,
    /// Lifecycle stage shares.
    pub lifecycle_stages: Vec<LabelShare>,
    /// Share of customers moving from each previous segment (rows) to each new one (columns),
    /// when trained with `--previous`.
    pub migration: Option<Migration>,
}

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

fn numeric_column(enc: &Encoder, name: &str) -> Option<usize> {
    enc.inputs
        .iter()
        .find(|i| i.name == name)
        .and_then(|i| match (&i.kind, &i.encoding) {
            (FeatureKind::Categorical, _) => None,
            (_, InputEncoding::Numeric { column, .. }) => Some(*column),
            _ => None,
        })
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

fn seeded_sample(n: usize, max: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    if n > max {
        Rng::new(seed).shuffle(&mut idx);
        idx.truncate(max);
        idx.sort_unstable();
    }
    idx
}

/// Rows linfa-clustering fits on; larger inputs are then refined by Lloyd steps on all rows.
pub const LINFA_ROWS: usize = 20_000;

/// Fixed number of work chunks for the Lloyd steps, so sums (and bundles) do not depend on the
/// machine's core count.
const LLOYD_CHUNKS: usize = 16;

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
    use linfa::prelude::*;
    use rand_xoshiro::rand_core::SeedableRng;
    let n = data.len() / d.max(1);
    if n < k {
        return Err(SegmentError::Config(format!(
            "{n} rows cannot make {k} clusters; lower segments.k or use --no-segments"
        )));
    }
    let idx = seeded_sample(n, LINFA_ROWS, seed ^ 0x6b6d);
    let mut sample = Vec::with_capacity(idx.len() * d);
    for &i in &idx {
        sample.extend_from_slice(&data[i * d..(i + 1) * d]);
    }
    let records = ndarray::Array2::from_shape_vec((idx.len(), d), sample)
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
    let centroids: Vec<Vec<f64>> = model
        .centroids()
        .rows()
        .into_iter()
        .map(|r| r.to_vec())
        .collect();
    if n <= idx.len() {
        return Ok(centroids);
    }
    Ok(lloyd(data, d, centroids, cfg.max_iterations, cfg.tolerance))
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
    let flat = |c: &[Vec<f64>]| -> Vec<f64> { c.iter().flatten().copied().collect() };
    for _ in 0..max_iter.max(1) {
        let cf = flat(&c);
        let parts = crate::model::parallel_map(
            LLOYD_CHUNKS,
            threads,
            |chunk| {
                let lo = chunk * n / LLOYD_CHUNKS;
                let hi = (chunk + 1) * n / LLOYD_CHUNKS;
                let mut sums = vec![0.0; k * d];
                let mut counts = vec![0usize; k];
                for p in data[lo * d..hi * d].chunks_exact(d) {
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
            },
            &|| {},
        );
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
        let mut shift = 0.0;
        for j in 0..k {
            if counts[j] == 0 {
                continue; // an empty cluster keeps its centroid
            }
            for t in 0..d {
                let v = sums[j * d + t] / counts[j] as f64;
                shift += (v - c[j][t]).powi(2);
                c[j][t] = v;
            }
        }
        if shift.sqrt() < tol {
            break;
        }
    }
    c
}

fn nearest(centroids: &[Vec<f64>], z: &[f64]) -> (usize, f64) {
    let mut best = (0usize, f64::INFINITY);
    for (i, c) in centroids.iter().enumerate() {
        let d: f64 = c.iter().zip(z).map(|(a, b)| (a - b) * (a - b)).sum();
        if d < best.1 {
            best = (i, d);
        }
    }
    best
}

/// Mean silhouette of row-major points `z` (`n × d`) under `centroids`.
pub fn silhouette(z: &[f64], d: usize, centroids: &[Vec<f64>]) -> f64 {
    let n = z.len() / d;
    let k = centroids.len();
    let labels: Vec<usize> = (0..n)
        .map(|i| nearest(centroids, &z[i * d..(i + 1) * d]).0)
        .collect();
    let mut counts = vec![0usize; k];
    for &l in &labels {
        counts[l] += 1;
    }
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let sums = crate::model::parallel_map(
        threads,
        threads,
        |t| {
            let mut s = 0.0;
            let mut sum = vec![0.0; k];
            for i in (t..n).step_by(threads) {
                sum.iter_mut().for_each(|v| *v = 0.0);
                let a = &z[i * d..(i + 1) * d];
                for j in 0..n {
                    if i == j {
                        continue;
                    }
                    let b = &z[j * d..(j + 1) * d];
                    let dist: f64 = a
                        .iter()
                        .zip(b)
                        .map(|(x, y)| (x - y) * (x - y))
                        .sum::<f64>()
                        .sqrt();
                    sum[labels[j]] += dist;
                }
                let own = labels[i];
                if counts[own] <= 1 {
                    continue; // silhouette of a singleton is 0
                }
                let ai = sum[own] / (counts[own] - 1) as f64;
                let bi = (0..k)
                    .filter(|&c| c != own && counts[c] > 0)
                    .map(|c| sum[c] / counts[c] as f64)
                    .fold(f64::INFINITY, f64::min);
                if bi.is_finite() {
                    s += (bi - ai) / ai.max(bi);
                }
            }
            s
        },
        &|| {},
    );
    sums.iter().sum::<f64>() / n.max(1) as f64
}

fn describe(name: &str, z: f64) -> String {
    let hi = z > 0.0;
    let pick = |a: &str, b: &str| if hi { a.to_string() } else { b.to_string() };
    match name {
        "recency_days" => pick("lapsed", "recent"),
        "frequency" => pick("frequent", "infrequent"),
        "monetary_total" => pick("high spend", "low spend"),
        "monetary_mean" => pick("large baskets", "small baskets"),
        "tenure_days" | "tenure" => pick("long tenure", "short tenure"),
        "frequency_trend" => pick("rising", "declining"),
        "active_months" => pick("regular", "sporadic"),
        other => format!("{} {other}", if hi { "high" } else { "low" }),
    }
}

/// Readable names from centroids (scaled space: 0 = population mean), unique within the model.
pub fn name_centroids(features: &[ScaledFeature], centroids: &[Vec<f64>]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for c in centroids {
        let mut order: Vec<usize> = (0..features.len()).collect();
        order.sort_by(|&a, &b| c[b].abs().total_cmp(&c[a].abs()).then(a.cmp(&b)));
        // features at least a quarter standard deviation from the population mean; a big cluster
        // sits near the mean, so fall back to its single most distinctive feature
        let mut strong: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| c[i].abs() >= 0.25)
            .collect();
        if strong.is_empty() && c.get(order[0]).is_some_and(|v| v.abs() >= 0.05) {
            strong.push(order[0]);
        }
        let mut take = strong.len().min(3);
        let mut name = if take == 0 {
            "average".to_string()
        } else {
            strong[..take]
                .iter()
                .map(|&i| describe(&features[i].name, c[i]))
                .collect::<Vec<_>>()
                .join(" · ")
        };
        // make unique: add the next most distinctive feature, then a counter
        while names.contains(&name) && take < order.len() {
            take += 1;
            name = order[..take]
                .iter()
                .map(|&i| describe(&features[i].name, c[i]))
                .collect::<Vec<_>>()
                .join(" · ");
        }
        let base = name.clone();
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{base} #{n}");
            n += 1;
        }
        names.push(name);
    }
    names
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
    // dp over (row index, used-columns mask)
    let full = 1usize << c;
    let mut dp = vec![f64::INFINITY; full];
    let mut choice = vec![vec![usize::MAX; full]; r + 1];
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

/// Inputs to [`fit`].
pub struct FitInput<'a> {
    /// Fitted encoder (names → encoded columns).
    pub encoder: &'a Encoder,
    /// Encoded matrix of all rows.
    pub x: &'a Matrix,
    /// Rows to fit on.
    pub rows: &'a [usize],
    /// Churn labels (for the profile).
    pub y: &'a [bool],
    /// `transactions` or `customer_table`.
    pub mode: &'a str,
    /// Previous segmentation to keep ids stable.
    pub previous: Option<&'a SegmentModel>,
    /// Seed.
    pub seed: u64,
}

/// Fit clusters, RFM and lifecycle rules; returns the model and the card section.
pub fn fit(
    cfg: &SegmentConfig,
    input: &FitInput,
) -> Result<(SegmentModel, SegmentReport), SegmentError> {
    let enc = input.encoder;
    let x = input.x;
    // ---- features ----
    let names: Vec<String> = match &cfg.features {
        Some(f) => f.clone(),
        None if input.mode == "transactions" => [
            "recency_days",
            "frequency",
            "monetary_total",
            "tenure_days",
            "frequency_trend",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        None => enc
            .inputs
            .iter()
            .filter(|i| i.kind == FeatureKind::Numeric)
            .map(|i| i.name.clone())
            .collect(),
    };
    if names.is_empty() {
        return Err(SegmentError::Config(
            "no numeric features to cluster on; set segments.features".into(),
        ));
    }
    let mut features = Vec::new();
    for name in &names {
        let column = numeric_column(enc, name).ok_or_else(|| {
            SegmentError::Config(format!(
                "segment feature '{name}' is not a numeric input; numeric inputs: {}",
                enc.inputs
                    .iter()
                    .filter(|i| i.kind != FeatureKind::Categorical)
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let col = x.col(column);
        let vals: Vec<f64> = input.rows.iter().map(|&r| col[r]).collect();
        let n = vals.len().max(1) as f64;
        let mean = vals.iter().sum::<f64>() / n;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let sd = var.sqrt();
        let skew = if sd > 0.0 {
            vals.iter().map(|v| ((v - mean) / sd).powi(3)).sum::<f64>() / n
        } else {
            0.0
        };
        let log1p = skew > 1.0 && vals.iter().all(|&v| v >= 0.0);
        let t: Vec<f64> = vals
            .iter()
            .map(|&v| if log1p { v.ln_1p() } else { v })
            .collect();
        let m = t.iter().sum::<f64>() / n;
        let s = (t.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n).sqrt();
        features.push(ScaledFeature {
            name: name.clone(),
            column,
            log1p,
            mean: m,
            std: if s > 0.0 { s } else { 1.0 },
        });
    }
    let d = features.len();
    let scale_rows = |rows: &[usize]| -> Vec<f64> {
        let mut out = Vec::with_capacity(rows.len() * d);
        for &r in rows {
            for f in &features {
                out.push(f.scale(x.get(r, f.column)));
            }
        }
        out
    };
    // ---- k ----
    let fit_rows: Vec<usize> = seeded_sample(input.rows.len(), cfg.fit_sample, input.seed)
        .into_iter()
        .map(|i| input.rows[i])
        .collect();
    let zfit = scale_rows(&fit_rows);
    let sse =
        |cent: &[Vec<f64>], z: &[f64]| -> f64 { z.chunks(d).map(|p| nearest(cent, p).1).sum() };
    let mut k_search = Vec::new();
    let (k, centroids) = match cfg.k {
        Some(k) => {
            if !(1..=20).contains(&k) {
                return Err(SegmentError::Config(format!(
                    "segments.k must be 1..=20, got {k}"
                )));
            }
            (k, kmeans(&zfit, d, k, cfg, input.seed)?)
        }
        None => {
            if cfg.k_min < 2 || cfg.k_max < cfg.k_min || cfg.k_max > 20 {
                return Err(SegmentError::Config(format!(
                    "segments.k_min / k_max must satisfy 2 <= k_min <= k_max <= 20, got {} / {}",
                    cfg.k_min, cfg.k_max
                )));
            }
            let srows: Vec<usize> =
                seeded_sample(fit_rows.len(), cfg.silhouette_sample, input.seed ^ 0x51)
                    .into_iter()
                    .map(|i| fit_rows[i])
                    .collect();
            let zs = scale_rows(&srows);
            let mut best: Option<(f64, usize, Vec<Vec<f64>>)> = None;
            for k in cfg.k_min
                ..=cfg
                    .k_max
                    .min(fit_rows.len().saturating_sub(1))
                    .max(cfg.k_min)
            {
                let c = kmeans(&zfit, d, k, cfg, input.seed)?;
                let s = silhouette(&zs, d, &c);
                k_search.push(KChoice {
                    k,
                    silhouette: s,
                    sse: sse(&c, &zfit),
                });
                if best.as_ref().is_none_or(|b| s > b.0 + 1e-12) {
                    best = Some((s, k, c));
                }
            }
            let (_, k, c) = best.ok_or_else(|| SegmentError::Fit("no k could be fitted".into()))?;
            (k, c)
        }
    };
    // ---- RFM and lifecycle ----
    let rfm = match (
        numeric_column(enc, &cfg.rfm.recency),
        numeric_column(enc, &cfg.rfm.frequency),
        numeric_column(enc, &cfg.rfm.monetary),
    ) {
        (Some(rc), Some(fc), Some(mc)) => {
            let q = cfg.rfm.quantile;
            let learn = |c: usize| {
                let col = x.col(c);
                let mut v: Vec<f64> = input.rows.iter().map(|&r| col[r]).collect();
                quantile(&mut v, q)
            };
            Some(RfmRule {
                recency_column: rc,
                frequency_column: fc,
                monetary_column: mc,
                recency_threshold: cfg.rfm.recent_days.unwrap_or_else(|| learn(rc)),
                frequency_threshold: cfg.rfm.high_frequency.unwrap_or_else(|| learn(fc)),
                monetary_threshold: cfg.rfm.high_monetary.unwrap_or_else(|| learn(mc)),
            })
        }
        _ => None,
    };
    let tenure_name = cfg
        .tenure_column
        .clone()
        .unwrap_or_else(|| "tenure_days".into());
    let lifecycle = match numeric_column(enc, &tenure_name) {
        Some(tc) => Some(LifecycleRule {
            config: cfg.lifecycle,
            tenure_column: tc,
            recency_column: numeric_column(enc, "recency_days"),
            frequency_column: numeric_column(enc, "frequency"),
            trend_column: numeric_column(enc, "frequency_trend"),
        }),
        None if cfg.tenure_column.is_some() => {
            return Err(SegmentError::Config(format!(
                "segments.tenure_column '{tenure_name}' is not a numeric input"
            )))
        }
        None => None,
    };
    // ---- names and stable ids ----
    let fresh_names = name_centroids(&features, &centroids);
    let centroid_class = |c: &[f64]| -> Option<String> {
        rfm.as_ref().and_then(|r| {
            let raw = |name: &str| {
                features
                    .iter()
                    .position(|f| f.name == name)
                    .map(|i| features[i].unscale(c[i]))
            };
            Some(
                r.classify_values(
                    raw(&cfg.rfm.recency)?,
                    raw(&cfg.rfm.frequency)?,
                    raw(&cfg.rfm.monetary)?,
                )
                .to_string(),
            )
        })
    };
    let mut segments: Vec<SegmentInfo> = centroids
        .iter()
        .enumerate()
        .map(|(i, c)| SegmentInfo {
            id: i as u32,
            name: fresh_names[i].clone(),
            rfm_class: centroid_class(c),
        })
        .collect();
    let mut migration = None;
    if let Some(prev) = input.previous {
        let same_features = prev
            .features
            .iter()
            .map(|f| &f.name)
            .eq(features.iter().map(|f| &f.name));
        if same_features {
            // previous centroids → raw units → this model's scaled space
            let prev_in_new: Vec<Vec<f64>> = (0..prev.centroids.len())
                .map(|i| {
                    prev.centroid_raw(i)
                        .iter()
                        .zip(&features)
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
            let m = min_cost_matching(&cost);
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
                    let mut name = segments[i].name.clone();
                    let base = name.clone();
                    let mut n = 2;
                    while used.contains(&name) {
                        name = format!("{base} #{n}");
                        n += 1;
                    }
                    used.push(name.clone());
                    segments[i].name = name;
                }
            }
            // migration of the training customers
            let mut counts = vec![vec![0usize; centroids.len()]; prev.centroids.len()];
            for &r in input.rows {
                let row: Vec<f64> = (0..x.ncols).map(|c| x.get(r, c)).collect();
                let a = prev.cluster_of(&row);
                let z: Vec<f64> = features.iter().map(|f| f.scale(row[f.column])).collect();
                let b = nearest(&centroids, &z).0;
                counts[a][b] += 1;
            }
            migration = Some(Migration {
                from: prev.segments.iter().map(|s| s.name.clone()).collect(),
                to: segments.iter().map(|s| s.name.clone()).collect(),
                share: counts
                    .iter()
                    .map(|row| {
                        let t = row.iter().sum::<usize>().max(1) as f64;
                        row.iter().map(|&c| c as f64 / t).collect()
                    })
                    .collect(),
            });
        }
    }
    let model = SegmentModel {
        features: features.clone(),
        centroids,
        segments,
        rfm,
        lifecycle,
    };
    // ---- profile ----
    let revenue_col = cfg
        .revenue_column
        .as_deref()
        .or(Some("monetary_total"))
        .and_then(|n| numeric_column(enc, n));
    if let (Some(name), None) = (&cfg.revenue_column, revenue_col) {
        return Err(SegmentError::Config(format!(
            "segments.revenue_column '{name}' is not a numeric input"
        )));
    }
    let all = scale_rows(input.rows);
    let mut sse_full = 0.0;
    let mut seg_of = Vec::with_capacity(input.rows.len());
    for p in all.chunks(d) {
        let (i, dist) = nearest(&model.centroids, p);
        sse_full += dist;
        seg_of.push(i);
    }
    let total_rev: f64 = revenue_col.map_or(0.0, |c| input.rows.iter().map(|&r| x.get(r, c)).sum());
    let n = input.rows.len().max(1) as f64;
    let share = |members: &[usize]| -> (usize, f64, f64, Option<f64>) {
        let size = members.len();
        let churn = members.iter().filter(|&&r| input.y[r]).count() as f64 / size.max(1) as f64;
        let rev = revenue_col.map(|c| {
            let s: f64 = members.iter().map(|&r| x.get(r, c)).sum();
            if total_rev != 0.0 {
                s / total_rev
            } else {
                0.0
            }
        });
        (size, size as f64 / n, churn, rev)
    };
    let mut profiles = Vec::new();
    for (si, s) in model.segments.iter().enumerate() {
        let members: Vec<usize> = input
            .rows
            .iter()
            .zip(&seg_of)
            .filter(|(_, &g)| g == si)
            .map(|(&r, _)| r)
            .collect();
        let (size, sh, churn, rev) = share(&members);
        let means = model
            .features
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    members.iter().map(|&r| x.get(r, f.column)).sum::<f64>() / size.max(1) as f64,
                )
            })
            .collect();
        profiles.push(SegmentProfile {
            id: s.id,
            name: s.name.clone(),
            rfm_class: s.rfm_class.clone(),
            size,
            share: sh,
            churn_rate: churn,
            revenue_share: rev,
            means,
        });
    }
    let label_shares = |labels: &[&str], f: &dyn Fn(&[f64]) -> &'static str| -> Vec<LabelShare> {
        let assigned: Vec<&'static str> = input
            .rows
            .iter()
            .map(|&r| {
                let row: Vec<f64> = (0..x.ncols).map(|c| x.get(r, c)).collect();
                f(&row)
            })
            .collect();
        labels
            .iter()
            .map(|l| {
                let members: Vec<usize> = input
                    .rows
                    .iter()
                    .zip(&assigned)
                    .filter(|(_, a)| *a == l)
                    .map(|(&r, _)| r)
                    .collect();
                let (size, sh, churn, rev) = share(&members);
                LabelShare {
                    label: l.to_string(),
                    size,
                    share: sh,
                    churn_rate: churn,
                    revenue_share: rev,
                }
            })
            .filter(|s| s.size > 0)
            .collect()
    };
    let rfm_classes = match &model.rfm {
        Some(r) => label_shares(&rfm::CLASSES, &|row| r.classify(row)),
        None => Vec::new(),
    };
    let lifecycle_stages = match &model.lifecycle {
        Some(l) => label_shares(&lifecycle::STAGES, &|row| l.stage(row)),
        None => Vec::new(),
    };
    let report = SegmentReport {
        features: model
            .features
            .iter()
            .map(|f| (f.name.clone(), f.log1p))
            .collect(),
        k,
        k_search,
        fit_rows: fit_rows.len(),
        sse_full,
        segments: profiles,
        rfm_thresholds: model.rfm.as_ref().map(|r| {
            (
                r.recency_threshold,
                r.frequency_threshold,
                r.monetary_threshold,
            )
        }),
        rfm_classes,
        lifecycle_stages,
        migration,
    };
    Ok((model, report))
}
