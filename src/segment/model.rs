//! The fitted segmentation that ships in the bundle, and nearest-centroid assignment.

use super::lifecycle::{LifecycleRule, LifecycleStage};
use super::rfm::{RfmClass, RfmRule};
use super::scale::ScaledFeature;
use serde::{Deserialize, Serialize};

/// A named segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentInfo {
    /// Stable id (kept across retrains with `--previous`).
    pub id: u32,
    /// Readable name from the centroid, unique within the model.
    pub name: String,
    /// RFM class of the centroid, when R/F/M features exist (stored as its text).
    pub rfm_class: Option<RfmClass>,
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
    pub rfm_class: Option<RfmClass>,
    /// Lifecycle stage.
    pub lifecycle_stage: Option<LifecycleStage>,
}

impl SegmentModel {
    /// The clustering features of an encoded row, in scaled space.
    #[inline]
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

/// Index of the centroid nearest to the scaled point `z`, and its squared distance; ties go to
/// the lower index. Shared by fitting and scoring so both assign identically.
#[inline]
pub(super) fn nearest(centroids: &[Vec<f64>], z: &[f64]) -> (usize, f64) {
    let mut best = (0usize, f64::INFINITY);
    for (i, c) in centroids.iter().enumerate() {
        let d: f64 = c.iter().zip(z).map(|(a, b)| (a - b) * (a - b)).sum();
        if d < best.1 {
            best = (i, d);
        }
    }
    best
}
