//! Customer segments: k-means clusters (linfa-clustering) with readable, stable names, plus the
//! rule-based RFM classes and lifecycle stages. Everything needed to assign a customer lives in
//! [`SegmentModel`], which ships in the bundle.
//!
//! [`fit`] runs the steps in order, each in its own submodule:
//! `scale` (pick and standardise the clustering features), `kmeans` (k-means, Lloyd refinement,
//! k by silhouette), [`rfm`] and [`lifecycle`] (rule thresholds), `naming` (readable centroid
//! names), `stable` (ids kept from `--previous`, migration matrix) and `profile` (the card
//! section).

pub mod lifecycle;
pub mod rfm;

mod kmeans;
mod model;
mod naming;
mod profile;
mod scale;
mod stable;

pub use lifecycle::LifecycleStage;
pub use rfm::RfmClass;

pub use kmeans::{kmeans, lloyd, silhouettes, KChoice, LINFA_ROWS};
pub use model::{Assignment, SegmentInfo, SegmentModel};
pub use naming::name_centroids;
pub use profile::{LabelShare, SegmentProfile, SegmentReport};
pub use scale::ScaledFeature;
pub use stable::{min_cost_matching, Migration};

use crate::features::{Encoder, InputEncoding, Matrix};
use crate::ingest::{DataMode, FeatureKind};
use lifecycle::LifecycleConfig;
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

impl SegmentError {
    /// Process exit code: 2 for bad segment settings, 1 when fitting failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            SegmentError::Config(_) => 2,
            _ => 1,
        }
    }
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

/// Encoded column of the numeric (non-categorical) input `name`, if there is one.
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
    /// Transaction log or customer table.
    pub mode: DataMode,
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
    let features = scale::fit_features(cfg, input)?;
    let fit_rows = kmeans::sample_of(input.rows, cfg.fit_sample, input.seed);
    let zfit = scale::scale_rows(input.x, &features, &fit_rows);
    let chosen = kmeans::choose_k(cfg, input, &features, &fit_rows, &zfit)?;
    let rfm = rfm::learn_rule(cfg, input);
    let lifecycle = lifecycle::build_rule(cfg, input.encoder)?;
    let mut segments = naming::segments(&cfg.rfm, &features, &chosen.centroids, rfm.as_ref());
    let migration = input.previous.and_then(|prev| {
        stable::carry_over(prev, input, &features, &chosen.centroids, &mut segments)
    });
    let model = SegmentModel {
        features,
        centroids: chosen.centroids,
        segments,
        rfm,
        lifecycle,
    };
    let summary = profile::FitSummary {
        k: chosen.k,
        k_search: chosen.search,
        fit_rows: fit_rows.len(),
        migration,
    };
    let report = profile::report(cfg, input, &model, summary)?;
    Ok((model, report))
}
