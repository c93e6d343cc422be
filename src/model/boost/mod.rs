//! Gradient-boosted trees with logistic loss on the histogram binning of [`super::bins`].
//!
//! Each round fits one regression tree to the gradients `g = w·(p − y)` and hessians
//! `h = w·p·(1 − p)` of the current margins (second-order boosting as in XGBoost/LightGBM):
//!
//! * **Growth** is best-first (leaf-wise): the leaf whose best split gains most is split next,
//!   until `max_leaves` leaves (default `2^max_depth`) or no split gains. Gain is
//!   `G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ)`; a leaf's value is `−lr·G/(H+λ)`.
//! * **Histograms** of (Σg, Σh, rows) per feature bin; only the smaller child's is built, the
//!   larger one's is the parent's minus it; large ones are split over features across threads.
//!   Every sum runs in row order, so results do not depend on the thread count.
//! * **Subsampling** of rows (per round) and columns (per tree) from a seeded generator.
//! * **Early stopping** on a validation set: the ensemble is cut back to its best round.
//!
//! Splits are `x <= threshold` going left, the threshold halfway between the last value of the
//! last bin going left and the first value of the next bin of the whole prepared matrix, so
//! every prepared row (in the node or not) routes by its raw values exactly as by its bins.
//!
//! Files: `ensemble` (the fitted trees and their prediction), `link` (σ in portable steps),
//! `grow` (one fit: gradients, histograms, leaf-wise growth, early stopping), `cv` (the
//! cross-validated candidate search), `rewalk` (re-scoring a row with a few columns changed), `choices` (its margin under
//! every combination of choices for a few inputs).

mod choices;
mod cv;
mod ensemble;
mod grow;
pub mod link;
mod rewalk;
#[cfg(test)]
pub(crate) mod testing;

pub use choices::{ChoiceTables, Options as ChoiceOptions, MAX_CHOICES, MAX_OPTIONS};
pub use cv::{cross_validate, BoostCv, BoostCvRow};
pub use ensemble::{BoostNode, BoostTree, Ensemble};
pub use grow::{fit, fit_target, FitReport, Target};
pub use link::sigmoid;
pub use rewalk::RowPaths;

use super::ModelError;
use serde::{Deserialize, Serialize};

/// Hyper-parameters of a boosted model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoostParams {
    /// Boosting rounds (trees); with early stopping, the most rounds tried.
    pub rounds: usize,
    /// Shrinkage applied to every leaf value.
    pub learning_rate: f64,
    /// Maximum depth of a tree (root = depth 0).
    pub max_depth: usize,
    /// Maximum leaves of a tree (0: `2^max_depth`).
    pub max_leaves: usize,
    /// Minimum training rows in a leaf.
    pub min_samples_leaf: usize,
    /// Minimum hessian sum in a leaf.
    pub min_hessian: f64,
    /// L2 penalty on leaf values (λ).
    pub l2: f64,
    /// Share of rows each round fits on (1: all).
    pub row_subsample: f64,
    /// Share of columns each tree may split on (1: all).
    pub col_subsample: f64,
    /// Rounds without a better validation log loss before stopping (0: never stop early).
    pub early_stopping: usize,
    /// Seed of the subsampling.
    pub seed: u64,
}

impl Default for BoostParams {
    fn default() -> Self {
        BoostParams {
            rounds: 1000,
            learning_rate: 0.05,
            max_depth: 4,
            max_leaves: 0,
            min_samples_leaf: 20,
            min_hessian: 1e-3,
            l2: 1.0,
            row_subsample: 1.0,
            col_subsample: 1.0,
            early_stopping: 50,
            seed: 0,
        }
    }
}

impl BoostParams {
    /// Reject settings no model can be fitted with.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Config(m));
        if self.rounds == 0 {
            return bad("boosting rounds must be at least 1".into());
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return bad(format!(
                "learning_rate must be in (0, 1], got {}",
                self.learning_rate
            ));
        }
        if self.max_depth == 0 || self.max_depth > 30 {
            return bad(format!(
                "boosted max_depth must be in 1..=30, got {}",
                self.max_depth
            ));
        }
        for (name, v) in [
            ("row_subsample", self.row_subsample),
            ("col_subsample", self.col_subsample),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return bad(format!("{name} must be in (0, 1], got {v}"));
            }
        }
        let ok = self.l2 >= 0.0 && self.l2.is_finite() && self.min_hessian >= 0.0;
        if !ok {
            return bad("l2 and min_hessian must be finite and non-negative".into());
        }
        Ok(())
    }

    /// Leaves a tree may have.
    fn leaf_cap(&self) -> usize {
        let by_depth = 1usize << self.max_depth.min(20);
        if self.max_leaves >= 2 {
            self.max_leaves.min(by_depth)
        } else {
            by_depth
        }
    }
}
