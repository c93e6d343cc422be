//! Lifecycle stages (potential → new → growth → mature → decline), rule-based and configurable.
//!
//! Rules, first match wins (defaults in brackets):
//! 1. `potential` — frequency is 0 (no purchase yet);
//! 2. `new` — tenure ≤ `new_days` (default 90);
//! 3. `decline` — recency > `decline_recency_days` (default 180), or frequency trend < `decline_trend`
//!    [0.5] for a customer with tenure > `growth_days` / 2 (two trend windows of history);
//! 4. `growth` — tenure ≤ `growth_days` (default 365);
//! 5. `mature` — everyone else.
//!
//! In customer-table mode only a tenure column is usually known: stages 2, 4 and 5 apply.

use super::{numeric_column, SegmentConfig, SegmentError};
use crate::features::Encoder;
use serde::{Deserialize, Serialize};

crate::util::text_enum! {
    /// A lifecycle stage (see the module rules), in lifecycle order.
    pub enum LifecycleStage {
        /// No purchase yet.
        Potential = "potential",
        /// Short tenure.
        New = "new",
        /// Tenure up to the growth limit.
        Growth = "growth",
        /// Everyone else.
        Mature = "mature",
        /// Lapsed, or buying less often than before.
        Decline = "decline",
    }
}

/// The stages in order.
pub const STAGES: [LifecycleStage; 5] = LifecycleStage::ALL;

/// Lifecycle thresholds (`[segments.lifecycle]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleConfig {
    /// Tenure up to this many days is `new`.
    pub new_days: f64,
    /// Tenure up to this many days is `growth`.
    pub growth_days: f64,
    /// Recency above this many days is `decline`.
    pub decline_recency_days: f64,
    /// Frequency trend below this is `decline`.
    pub decline_trend: f64,
    /// Days per unit of a customer table's tenure column (30.44 for months).
    pub tenure_unit_days: f64,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            new_days: 90.0,
            growth_days: 365.0,
            decline_recency_days: 180.0,
            decline_trend: 0.5,
            tenure_unit_days: 1.0,
        }
    }
}

/// Fitted lifecycle rule: which encoded columns hold what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleRule {
    /// Thresholds.
    pub config: LifecycleConfig,
    /// Tenure column (encoded index).
    pub tenure_column: usize,
    /// Recency column, when known.
    pub recency_column: Option<usize>,
    /// Frequency column, when known.
    pub frequency_column: Option<usize>,
    /// Trend column, when known.
    pub trend_column: Option<usize>,
}

impl LifecycleRule {
    /// Stage of an encoded row.
    pub fn stage(&self, row: &[f64]) -> LifecycleStage {
        let c = &self.config;
        let tenure = row[self.tenure_column] * c.tenure_unit_days;
        if let Some(f) = self.frequency_column {
            if row[f] <= 0.0 {
                return LifecycleStage::Potential;
            }
        }
        if tenure <= c.new_days {
            return LifecycleStage::New;
        }
        let lapsed = self
            .recency_column
            .is_some_and(|r| row[r] > c.decline_recency_days);
        let slowing = self
            .trend_column
            .is_some_and(|t| row[t] < c.decline_trend && tenure > c.growth_days / 2.0);
        if lapsed || slowing {
            return LifecycleStage::Decline;
        }
        if tenure <= c.growth_days {
            LifecycleStage::Growth
        } else {
            LifecycleStage::Mature
        }
    }
}

/// The lifecycle rule when a tenure column exists (`segments.tenure_column`, default
/// `tenure_days`); an error only when a configured tenure column is not a numeric input.
pub(super) fn build_rule(
    cfg: &SegmentConfig,
    enc: &Encoder,
) -> Result<Option<LifecycleRule>, SegmentError> {
    let tenure_name = cfg
        .tenure_column
        .clone()
        .unwrap_or_else(|| "tenure_days".into());
    match numeric_column(enc, &tenure_name) {
        Some(tc) => Ok(Some(LifecycleRule {
            config: cfg.lifecycle,
            tenure_column: tc,
            recency_column: numeric_column(enc, "recency_days"),
            frequency_column: numeric_column(enc, "frequency"),
            trend_column: numeric_column(enc, "frequency_trend"),
        })),
        None if cfg.tenure_column.is_some() => Err(SegmentError::Config(format!(
            "segments.tenure_column '{tenure_name}' is not a numeric input"
        ))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> LifecycleRule {
        // row = [tenure, recency, frequency, trend]
        LifecycleRule {
            config: LifecycleConfig::default(),
            tenure_column: 0,
            recency_column: Some(1),
            frequency_column: Some(2),
            trend_column: Some(3),
        }
    }

    #[test]
    fn each_boundary() {
        let r = rule();
        assert_eq!(r.stage(&[400.0, 10.0, 0.0, 1.0]), LifecycleStage::Potential);
        assert_eq!(r.stage(&[90.0, 10.0, 1.0, 1.0]), LifecycleStage::New);
        assert_eq!(r.stage(&[90.5, 10.0, 2.0, 1.0]), LifecycleStage::Growth);
        assert_eq!(r.stage(&[365.0, 10.0, 2.0, 1.0]), LifecycleStage::Growth);
        assert_eq!(r.stage(&[365.5, 10.0, 2.0, 1.0]), LifecycleStage::Mature);
        assert_eq!(
            r.stage(&[400.0, 180.0, 2.0, 1.0]),
            LifecycleStage::Mature,
            "recency at the limit is not decline"
        );
        assert_eq!(r.stage(&[400.0, 180.5, 2.0, 1.0]), LifecycleStage::Decline);
        assert_eq!(r.stage(&[400.0, 10.0, 2.0, 0.49]), LifecycleStage::Decline);
        assert_eq!(r.stage(&[400.0, 10.0, 2.0, 0.5]), LifecycleStage::Mature);
        // a short history says nothing about trend
        assert_eq!(r.stage(&[150.0, 10.0, 2.0, 0.0]), LifecycleStage::Growth);
        assert_eq!(r.stage(&[183.0, 10.0, 2.0, 0.0]), LifecycleStage::Decline);
    }

    #[test]
    fn tenure_only_in_months() {
        let r = LifecycleRule {
            config: LifecycleConfig {
                tenure_unit_days: 30.44,
                ..Default::default()
            },
            tenure_column: 0,
            recency_column: None,
            frequency_column: None,
            trend_column: None,
        };
        assert_eq!(r.stage(&[2.0]), LifecycleStage::New);
        assert_eq!(r.stage(&[6.0]), LifecycleStage::Growth);
        assert_eq!(r.stage(&[13.0]), LifecycleStage::Mature);
    }
}
