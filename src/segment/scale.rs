//! Clustering features: which inputs to cluster on and how each is transformed (optional
//! `log1p`, then standardised) so k-means sees comparable scales.

use super::{numeric_column, FitInput, SegmentConfig, SegmentError};
use crate::features::{Encoder, Matrix};
use crate::ingest::{DataMode, FeatureKind};
use serde::{Deserialize, Serialize};

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
    /// Raw value → scaled space.
    #[inline]
    pub(super) fn scale(&self, x: f64) -> f64 {
        let v = if self.log1p { log_scale(x) } else { x };
        (v - self.mean) / self.std
    }
    /// Scaled space → raw value (inverse of [`ScaledFeature::scale`] for non-negative inputs).
    pub(super) fn unscale(&self, z: f64) -> f64 {
        let v = z * self.std + self.mean;
        if self.log1p {
            v.exp_m1()
        } else {
            v
        }
    }
}

/// `ln(1 + max(x, 0))`, written as `ln` of a sum rather than `ln_1p`: the exported SQL computes
/// `LN(1 + GREATEST(x, 0))` (no engine has a portable `LOG1P`), and libm's `log1p` and `log`
/// can differ in the last bit. For the counts and amounts ≥ 0 clustered on, the two agree to 1 ulp.
#[inline]
pub fn log_scale(x: f64) -> f64 {
    (1.0 + x.max(0.0)).ln()
}

/// Names, columns and scalings of the clustering features, learnt on `input.rows`.
pub(super) fn fit_features(
    cfg: &SegmentConfig,
    input: &FitInput,
) -> Result<Vec<ScaledFeature>, SegmentError> {
    let names = feature_names(cfg, input);
    if names.is_empty() {
        return Err(SegmentError::Config(
            "no numeric features to cluster on; set segments.features".into(),
        ));
    }
    let mut features = Vec::new();
    for name in &names {
        let column = feature_column(input.encoder, name)?;
        let col = input.x.col(column);
        let vals: Vec<f64> = input.rows.iter().map(|&r| col[r]).collect();
        features.push(fit_scaling(name, column, &vals));
    }
    Ok(features)
}

/// The configured features, else RFM + tenure + trend for transactions, else every numeric input.
fn feature_names(cfg: &SegmentConfig, input: &FitInput) -> Vec<String> {
    match &cfg.features {
        Some(f) => f.clone(),
        None if input.mode == DataMode::Transactions => [
            "recency_days",
            "frequency",
            "monetary_total",
            "tenure_days",
            "frequency_trend",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        None => input
            .encoder
            .inputs
            .iter()
            .filter(|i| i.kind == FeatureKind::Numeric)
            .map(|i| i.name.clone())
            .collect(),
    }
}

/// Encoded column of a clustering feature; the error lists the inputs that would work.
fn feature_column(enc: &Encoder, name: &str) -> Result<usize, SegmentError> {
    numeric_column(enc, name).ok_or_else(|| {
        SegmentError::Config(format!(
            "segment feature '{name}' is not a numeric input; numeric inputs: {}",
            enc.inputs
                .iter()
                .filter(|i| i.kind != FeatureKind::Categorical)
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// Scaling of one feature: `log1p` when right-skewed (skewness > 1) and never negative, then
/// mean / standard deviation of the (transformed) values; a constant feature gets std 1.
fn fit_scaling(name: &str, column: usize, vals: &[f64]) -> ScaledFeature {
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
        .map(|&v| if log1p { log_scale(v) } else { v })
        .collect();
    let m = t.iter().sum::<f64>() / n;
    let s = (t.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n).sqrt();
    ScaledFeature {
        name: name.to_string(),
        column,
        log1p,
        mean: m,
        std: if s > 0.0 { s } else { 1.0 },
    }
}

/// Row-major scaled points (`rows.len() × features.len()`) of the given matrix rows.
pub(super) fn scale_rows(x: &Matrix, features: &[ScaledFeature], rows: &[usize]) -> Vec<f64> {
    let mut out = Vec::with_capacity(rows.len() * features.len());
    for &r in rows {
        for f in features {
            out.push(f.scale(x.get(r, f.column)));
        }
    }
    out
}
