//! Save rates learned from measured lift: the playbook's `save_rate` is the prior of each
//! action's rate; the evaluation (`crate::evaluate`) estimates the effect on the customers
//! actually contacted and combines the two (see ARCHITECTURE.md, "Learned save rates").

use crate::model::Estimate;
use serde::{Deserialize, Serialize};

/// How much evidence moves a save rate (the playbook's `[learning]` table).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearningConfig {
    /// Weight of the playbook's save rate, in would-be churners: the prior has the spread of a
    /// rate measured perfectly on that many would-be churners.
    pub prior_strength: f64,
    /// Customers each arm (contacted, control) needs before a learned rate is used in ranking.
    pub min_arm: u64,
    /// Share (0..=1) of the customers with a positive contact decision whose action is drawn
    /// by Thompson sampling from the actions' save-rate posteriors instead of taken from the
    /// top of the ranking, so that actions the ranking rarely picks are still tried and learned
    /// (see [`crate::playbook::explore`]). 0 turns exploration off.
    pub explore: f64,
}

/// A learned rate is used in ranking only when its 95% interval is at most this far from its
/// mean on either side: within ±10 points. (A constant, not a `[learning]` key: the playbook's
/// stored layout in existing bundles has no room for another field.)
pub const MAX_HALF_WIDTH: f64 = 0.10;

/// Variance of the playbook's belief in a save rate `rate` worth `strength` would-be churners:
/// that of a rate measured perfectly on them (the rate clamped to 0.05..0.95, so a rate of 0 is
/// a belief, not a certainty); `None` without strength (no prior).
pub fn prior_variance(rate: f64, strength: f64) -> Option<f64> {
    let k = strength.max(0.0);
    let spread = rate.clamp(0.05, 0.95);
    (k > 0.0).then(|| spread * (1.0 - spread) / (k + 1.0))
}

/// The default `[learning] explore`: one in ten contacts explores.
pub const DEFAULT_EXPLORE: f64 = 0.1;

impl Default for LearningConfig {
    fn default() -> Self {
        LearningConfig {
            prior_strength: 5.0,
            min_arm: 200,
            explore: DEFAULT_EXPLORE,
        }
    }
}

/// One action's learned save rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedRate {
    /// Action id.
    pub action: String,
    /// Posterior mean of the share of would-be churners a contact saves; negative when the
    /// contact makes customers leave.
    pub save_rate: f64,
    /// Lower end of the save rate's 95% posterior interval.
    pub save_rate_low: f64,
    /// Upper end.
    pub save_rate_high: f64,
    /// The playbook's rate (the prior mean).
    pub prior_rate: f64,
    /// The measured effect on the contacted customers alone (no prior): churn points prevented
    /// per contact, intention to treat ÷ take-up, with its 95% interval. `None` when the
    /// arms cannot say (an arm empty).
    pub effect: Option<Estimate>,
    /// Share of the customers the action was recommended to who were contacted.
    pub take_up: Option<f64>,
    /// Would-be churners among the contacted customers (contacted × their estimated churn
    /// rate without the action).
    pub evidence: f64,
    /// Contacted customers (treatment arm).
    pub treated: u64,
    /// Control customers who would have been offered the action.
    pub control: u64,
    /// Both arms reached `min_arm` and the interval is within ±[`MAX_HALF_WIDTH`]: ranking uses
    /// this rate.
    pub applied: bool,
    /// The effect's interval lies below 0: contacted customers churn more than they would
    /// have. The action is never recommended while this stands.
    pub harms: bool,
}
