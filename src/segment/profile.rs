//! The segment section of the model card: size, churn rate, revenue share and feature means of
//! each segment, plus the shares of RFM classes and lifecycle stages.

use super::kmeans::KChoice;
use super::model::{nearest, SegmentModel};
use super::scale::scale_rows;
use super::stable::Migration;
use super::{lifecycle, numeric_column, rfm, FitInput, RfmClass, SegmentConfig, SegmentError};
use crate::features::{Encoder, Matrix};
use serde::{Deserialize, Serialize};

/// Profile of one segment (model card).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentProfile {
    /// Id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// RFM class of the centroid.
    pub rfm_class: Option<RfmClass>,
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

/// What the earlier fitting steps contribute to the report.
pub(super) struct FitSummary {
    /// Chosen k.
    pub(super) k: usize,
    /// Candidates tried when k was automatic.
    pub(super) k_search: Vec<KChoice>,
    /// Rows k-means was fitted on.
    pub(super) fit_rows: usize,
    /// Migration from the previous segmentation.
    pub(super) migration: Option<Migration>,
}

/// The card section for `model` over the training rows.
pub(super) fn report(
    cfg: &SegmentConfig,
    input: &FitInput,
    model: &SegmentModel,
    summary: FitSummary,
) -> Result<SegmentReport, SegmentError> {
    let revenue_col = revenue_column(cfg, input.encoder)?;
    let (seg_of, sse_full) = assign_all(input, model);
    let tally = Tally::new(input, revenue_col);
    let rfm_classes = match &model.rfm {
        Some(r) => tally.label_shares(&rfm::CLASSES, |row| r.classify(row)),
        None => Vec::new(),
    };
    let lifecycle_stages = match &model.lifecycle {
        Some(l) => tally.label_shares(&lifecycle::STAGES, |row| l.stage(row)),
        None => Vec::new(),
    };
    Ok(SegmentReport {
        features: model
            .features
            .iter()
            .map(|f| (f.name.clone(), f.log1p))
            .collect(),
        k: summary.k,
        k_search: summary.k_search,
        fit_rows: summary.fit_rows,
        sse_full,
        segments: tally.profiles(model, &seg_of),
        rfm_thresholds: model.rfm.as_ref().map(|r| {
            (
                r.recency_threshold,
                r.frequency_threshold,
                r.monetary_threshold,
            )
        }),
        rfm_classes,
        lifecycle_stages,
        migration: summary.migration,
    })
}

/// The revenue column: the configured one (an error when it is not a numeric input), else
/// `monetary_total` when present.
fn revenue_column(cfg: &SegmentConfig, enc: &Encoder) -> Result<Option<usize>, SegmentError> {
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
    Ok(revenue_col)
}

/// Segment index of every training row, and the total squared distance to the centroids.
fn assign_all(input: &FitInput, model: &SegmentModel) -> (Vec<usize>, f64) {
    let d = model.features.len();
    let all = scale_rows(input.x, &model.features, input.rows);
    let mut sse_full = 0.0;
    let mut seg_of = Vec::with_capacity(input.rows.len());
    for p in all.chunks(d) {
        let (i, dist) = nearest(&model.centroids, p);
        sse_full += dist;
        seg_of.push(i);
    }
    (seg_of, sse_full)
}

/// Size, share, churn rate and revenue share of a group of training rows.
struct Share {
    size: usize,
    share: f64,
    churn_rate: f64,
    revenue_share: Option<f64>,
}

/// The training rows and totals that every group's [`Share`] is measured against.
struct Tally<'a> {
    x: &'a Matrix,
    y: &'a [bool],
    rows: &'a [usize],
    revenue_col: Option<usize>,
    total_rev: f64,
    n: f64,
}

impl<'a> Tally<'a> {
    fn new(input: &FitInput<'a>, revenue_col: Option<usize>) -> Self {
        let x = input.x;
        Tally {
            x,
            y: input.y,
            rows: input.rows,
            revenue_col,
            total_rev: revenue_col.map_or(0.0, |c| input.rows.iter().map(|&r| x.get(r, c)).sum()),
            n: input.rows.len().max(1) as f64,
        }
    }

    /// Share of the rows `members` (row indices into the matrix).
    fn share(&self, members: &[usize]) -> Share {
        let size = members.len();
        let churn = members.iter().filter(|&&r| self.y[r]).count() as f64 / size.max(1) as f64;
        let rev = self.revenue_col.map(|c| {
            let s: f64 = members.iter().map(|&r| self.x.get(r, c)).sum();
            if self.total_rev != 0.0 {
                s / self.total_rev
            } else {
                0.0
            }
        });
        Share {
            size,
            share: size as f64 / self.n,
            churn_rate: churn,
            revenue_share: rev,
        }
    }

    /// The training rows whose label (`labels`, parallel to the rows) is `target`.
    fn members<T: PartialEq>(&self, labels: &[T], target: &T) -> Vec<usize> {
        self.rows
            .iter()
            .zip(labels)
            .filter(|(_, a)| *a == target)
            .map(|(&r, _)| r)
            .collect()
    }

    /// Profile of every segment; `seg_of` is each training row's segment index.
    fn profiles(&self, model: &SegmentModel, seg_of: &[usize]) -> Vec<SegmentProfile> {
        let mut profiles = Vec::new();
        for (si, s) in model.segments.iter().enumerate() {
            let members = self.members(seg_of, &si);
            let sh = self.share(&members);
            let means = model
                .features
                .iter()
                .map(|f| {
                    (
                        f.name.clone(),
                        members
                            .iter()
                            .map(|&r| self.x.get(r, f.column))
                            .sum::<f64>()
                            / sh.size.max(1) as f64,
                    )
                })
                .collect();
            profiles.push(SegmentProfile {
                id: s.id,
                name: s.name.clone(),
                rfm_class: s.rfm_class,
                size: sh.size,
                share: sh.share,
                churn_rate: sh.churn_rate,
                revenue_share: sh.revenue_share,
                means,
            });
        }
        profiles
    }

    /// Shares of each of `labels` (in that order, empty ones left out) under `label_of`.
    fn label_shares<L: Copy + PartialEq + std::fmt::Display>(
        &self,
        labels: &[L],
        label_of: impl Fn(&[f64]) -> L,
    ) -> Vec<LabelShare> {
        let assigned: Vec<L> = self
            .rows
            .iter()
            .map(|&r| label_of(&self.x.row(r)))
            .collect();
        labels
            .iter()
            .map(|l| {
                let sh = self.share(&self.members(&assigned, l));
                LabelShare {
                    label: l.to_string(),
                    size: sh.size,
                    share: sh.share,
                    churn_rate: sh.churn_rate,
                    revenue_share: sh.revenue_share,
                }
            })
            .filter(|s| s.size > 0)
            .collect()
    }
}
