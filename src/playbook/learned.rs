//! Save rates learned from measured lift: the playbook's `save_rate` is the prior of a
//! Beta-binomial estimate that the evaluation updates with what the campaigns showed (see
//! ARCHITECTURE.md, "Learned save rates").

use serde::{Deserialize, Serialize};

/// How much evidence moves a save rate (the playbook's `[learning]` table).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearningConfig {
    /// Weight of the playbook's save rate, in would-be churners: the prior is
    /// Beta(rate × strength, (1 − rate) × strength).
    pub prior_strength: f64,
    /// Customers each arm (contacted, control) needs before a learned rate is used in ranking.
    pub min_arm: u64,
}

impl Default for LearningConfig {
    fn default() -> Self {
        LearningConfig {
            prior_strength: 20.0,
            min_arm: 200,
        }
    }
}

/// One action's learned save rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedRate {
    /// Action id.
    pub action: String,
    /// Posterior mean of the share of would-be churners the action saves.
    pub save_rate: f64,
    /// The playbook's rate (the prior mean).
    pub prior_rate: f64,
    /// Would-be churners among the contacted customers (contacted × the control arm's churn
    /// rate): the trials of the update.
    pub evidence: f64,
    /// Contacted customers (treatment arm).
    pub treated: u64,
    /// Control customers who would have been offered the action.
    pub control: u64,
    /// Both arms reached `min_arm`: ranking uses this rate.
    pub applied: bool,
}

impl LearnedRate {
    /// The Beta-binomial update of `prior_rate` by one action's arms: `treated` contacted
    /// customers of whom `treated_churned` churned, and a control arm churning at
    /// `control_rate`. Saved = would-be churners (treated × control rate) − churned, clamped to
    /// [0, would-be churners].
    pub fn update(
        action: &str,
        prior_rate: f64,
        cfg: &LearningConfig,
        (treated, treated_churned): (u64, u64),
        (control, control_rate): (u64, f64),
    ) -> LearnedRate {
        let k = cfg.prior_strength.max(0.0);
        let trials = treated as f64 * control_rate;
        let saved = (trials - treated_churned as f64).clamp(0.0, trials);
        let (a, b) = (
            prior_rate * k + saved,
            (1.0 - prior_rate) * k + trials - saved,
        );
        let save_rate = if a + b > 0.0 { a / (a + b) } else { prior_rate };
        LearnedRate {
            action: action.to_string(),
            save_rate,
            prior_rate,
            evidence: trials,
            treated,
            control,
            applied: treated >= cfg.min_arm && control >= cfg.min_arm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prior_dominates_little_evidence_and_yields_to_much() {
        let cfg = LearningConfig::default();
        // no evidence: the prior
        let none = LearnedRate::update("A", 0.2, &cfg, (0, 0), (0, 0.0));
        assert_eq!(none.save_rate, 0.2);
        assert!(!none.applied);
        // 1000 contacted, control churns at 40%: 400 would-be churners; 280 churned → 120
        // saved = 30%
        let much = LearnedRate::update("A", 0.05, &cfg, (1000, 280), (1000, 0.4));
        assert!((much.save_rate - (0.05 * 20.0 + 120.0) / 420.0).abs() < 1e-12);
        assert!(much.applied);
        // more churn among the contacted than the control rate predicts: nothing saved
        let harm = LearnedRate::update("A", 0.3, &cfg, (1000, 500), (1000, 0.4));
        assert!((harm.save_rate - 6.0 / 420.0).abs() < 1e-12);
    }
}
