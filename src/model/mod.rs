//! The churn model: a compiled decision tree or gradient-boosted trees with calibrated,
//! interval-carrying probabilities, plus the cross-validated hyper-parameter search and
//! threshold choice that produce it.

pub mod bins;
pub mod boost;
pub mod calibrate;
pub mod metrics;
mod parallel;
mod predictor;
mod record;
mod search;
pub mod shap;
mod threshold;
pub mod tree;
pub mod uplift;

pub use parallel::{parallel_chunks, parallel_map, FIXED_CHUNKS};
pub use predictor::{
    score_bins, Boosted, LeafScore, Model, Prediction, Predictor, ScoreBin, TreeModel,
};
pub use record::ModelRecord;
pub use search::{grid_search, out_of_fold, CvRow, SearchSpace};
pub use threshold::{choose_threshold, objective_curve, Economics, ThresholdChoice};

use serde::{Deserialize, Serialize};

/// Errors of the model layer.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A learner failed.
    #[error("tree fit failed: {0}")]
    Fit(String),
    /// Bad model settings.
    #[error("invalid model setting: {0}")]
    Config(String),
    /// Not enough data to do what was asked.
    #[error("not enough data: {0}")]
    Data(String),
}

impl ModelError {
    /// Process exit code: 1 when fitting itself failed, 2 for bad settings or data.
    pub fn exit_code(&self) -> i32 {
        match self {
            ModelError::Fit(_) => 1,
            _ => 2,
        }
    }
}

crate::util::text_enum! {
    /// Which model training ships (`model.model`, `--model`).
    #[derive(Default, clap::ValueEnum)]
    pub enum ModelChoice {
        /// The single tree or the boosted trees, whichever has the lower cross-validated log loss.
        #[default]
        Auto = "auto",
        /// The single calibrated tree.
        Tree = "tree",
        /// Gradient-boosted trees.
        Boosted = "boosted",
    }
}

crate::util::text_enum! {
    /// The kind of model a bundle ships.
    pub enum ModelKind {
        /// A single calibrated tree.
        Tree = "tree",
        /// Gradient-boosted trees.
        Boosted = "boosted",
    }
}

/// Class weighting for split search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeight {
    /// Every row weighs 1.
    #[default]
    None,
    /// Rows weigh n / (2 · n_class), so both classes weigh the same.
    Balanced,
}

/// Sample weights for `y` on the rows `rows` (other entries are 1).
pub fn sample_weights(y: &[bool], rows: &[usize], cw: ClassWeight) -> Vec<f64> {
    let mut w = vec![1.0; y.len()];
    if cw == ClassWeight::Balanced {
        let npos = rows.iter().filter(|&&r| y[r]).count() as f64;
        let nneg = rows.len() as f64 - npos;
        if npos > 0.0 && nneg > 0.0 {
            let n = rows.len() as f64;
            for &r in rows {
                w[r] = if y[r] {
                    n / (2.0 * npos)
                } else {
                    n / (2.0 * nneg)
                };
            }
        }
    }
    w
}

/// A number with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Estimate {
    /// Point estimate.
    pub value: f64,
    /// Lower end of the 95% interval.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

impl Estimate {
    /// `value ± half`.
    pub fn around(value: f64, half: f64) -> Estimate {
        Estimate {
            value,
            low: value - half,
            high: value + half,
        }
    }

    /// Every part times `k` (k ≥ 0) plus `c`.
    pub fn affine(&self, k: f64, c: f64) -> Estimate {
        Estimate {
            value: self.value * k + c,
            low: self.low * k + c,
            high: self.high * k + c,
        }
    }
}

/// 95% Wilson score interval for `pos` successes in `n` trials.
pub fn wilson(pos: f64, n: f64) -> (f64, f64) {
    if n <= 0.0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_985f64;
    let p = pos / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}
