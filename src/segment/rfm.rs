//! RFM classes: the four-class table of the domain brief plus a documented rule for the four
//! combinations it leaves out.
//!
//! | recent | frequent | high spend | class |
//! |---|---|---|---|
//! | yes | yes | yes | `high_value_loyal` (table) |
//! | yes | no | yes | `potential_growth` (table) |
//! | no | yes | yes | `churn_risk` (table) |
//! | no | no | no | `low_value_silent` (table) |
//! | yes | yes | no | `loyal_low_spend` — active regulars with small baskets |
//! | yes | no | no | `new_promising` — one recent, small purchase |
//! | no | yes | no | `needs_attention` — lapsed regulars with small baskets |
//! | no | no | yes | `hibernating` — lapsed one-off big spenders |
//!
//! "Recent" = recency ≤ the recency threshold; "frequent" = frequency > its threshold; "high spend"
//! = monetary > its threshold (strict, so a median of 1 purchase makes "frequent" mean "repeat").

use super::{numeric_column, FitInput, SegmentConfig};
use serde::{Deserialize, Serialize};

crate::util::text_enum! {
    /// An RFM class (see the module table), in table order.
    pub enum RfmClass {
        /// Recent, frequent, high spend.
        HighValueLoyal = "high_value_loyal",
        /// Recent, infrequent, high spend.
        PotentialGrowth = "potential_growth",
        /// Lapsed, frequent, high spend.
        ChurnRisk = "churn_risk",
        /// Lapsed, infrequent, low spend.
        LowValueSilent = "low_value_silent",
        /// Recent, frequent, low spend: active regulars with small baskets.
        LoyalLowSpend = "loyal_low_spend",
        /// Recent, infrequent, low spend: one recent, small purchase.
        NewPromising = "new_promising",
        /// Lapsed, frequent, low spend: lapsed regulars with small baskets.
        NeedsAttention = "needs_attention",
        /// Lapsed, infrequent, high spend: lapsed one-off big spenders.
        Hibernating = "hibernating",
    }
}

/// The eight classes, in table order.
pub const CLASSES: [RfmClass; 8] = RfmClass::ALL;

/// Class of an (R, F, M) flag triple.
#[inline]
pub fn class_of(recent: bool, frequent: bool, high_spend: bool) -> RfmClass {
    match (recent, frequent, high_spend) {
        (true, true, true) => RfmClass::HighValueLoyal,
        (true, false, true) => RfmClass::PotentialGrowth,
        (false, true, true) => RfmClass::ChurnRisk,
        (false, false, false) => RfmClass::LowValueSilent,
        (true, true, false) => RfmClass::LoyalLowSpend,
        (true, false, false) => RfmClass::NewPromising,
        (false, true, false) => RfmClass::NeedsAttention,
        (false, false, true) => RfmClass::Hibernating,
    }
}

/// Fitted RFM rule, stored in the bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfmRule {
    /// Encoded column holding recency (days).
    pub recency_column: usize,
    /// Encoded column holding frequency.
    pub frequency_column: usize,
    /// Encoded column holding monetary value.
    pub monetary_column: usize,
    /// Recent when recency ≤ this.
    pub recency_threshold: f64,
    /// Frequent when frequency > this.
    pub frequency_threshold: f64,
    /// High spend when monetary > this.
    pub monetary_threshold: f64,
}

impl RfmRule {
    /// Class of an encoded row.
    pub fn classify(&self, row: &[f64]) -> RfmClass {
        self.classify_values(
            row[self.recency_column],
            row[self.frequency_column],
            row[self.monetary_column],
        )
    }
    /// Class of raw (recency, frequency, monetary) values.
    pub fn classify_values(&self, r: f64, f: f64, m: f64) -> RfmClass {
        class_of(
            r <= self.recency_threshold,
            f > self.frequency_threshold,
            m > self.monetary_threshold,
        )
    }
}

/// The RFM rule when recency, frequency and monetary columns all exist: fixed thresholds where
/// configured, else the configured quantile of the training rows.
pub(super) fn learn_rule(cfg: &SegmentConfig, input: &FitInput) -> Option<RfmRule> {
    let enc = input.encoder;
    let (Some(rc), Some(fc), Some(mc)) = (
        numeric_column(enc, &cfg.rfm.recency),
        numeric_column(enc, &cfg.rfm.frequency),
        numeric_column(enc, &cfg.rfm.monetary),
    ) else {
        return None;
    };
    let learn = |c: usize| {
        let col = input.x.col(c);
        let mut v: Vec<f64> = input.rows.iter().map(|&r| col[r]).collect();
        quantile(&mut v, cfg.rfm.quantile)
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

/// Linear-interpolated quantile `q` of `v` (sorts `v`); 0 for an empty slice.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> RfmRule {
        RfmRule {
            recency_column: 0,
            frequency_column: 1,
            monetary_column: 2,
            recency_threshold: 30.0,
            frequency_threshold: 2.0,
            monetary_threshold: 100.0,
        }
    }

    #[test]
    fn every_row_of_the_brief_table() {
        let r = rule();
        assert_eq!(r.classify(&[10.0, 5.0, 500.0]), RfmClass::HighValueLoyal);
        assert_eq!(r.classify(&[10.0, 1.0, 500.0]), RfmClass::PotentialGrowth);
        assert_eq!(r.classify(&[90.0, 5.0, 500.0]), RfmClass::ChurnRisk);
        assert_eq!(r.classify(&[90.0, 1.0, 20.0]), RfmClass::LowValueSilent);
    }

    #[test]
    fn the_four_fallback_combinations() {
        let r = rule();
        assert_eq!(r.classify(&[10.0, 5.0, 20.0]), RfmClass::LoyalLowSpend);
        assert_eq!(r.classify(&[10.0, 1.0, 20.0]), RfmClass::NewPromising);
        assert_eq!(r.classify(&[90.0, 5.0, 20.0]), RfmClass::NeedsAttention);
        assert_eq!(r.classify(&[90.0, 1.0, 500.0]), RfmClass::Hibernating);
    }

    #[test]
    fn threshold_edges() {
        let r = rule();
        // recency at the threshold is recent; frequency / monetary at the threshold are not high
        assert_eq!(r.classify(&[30.0, 2.0, 100.0]), RfmClass::NewPromising);
        assert_eq!(
            r.classify(&[30.000001, 2.000001, 100.000001]),
            RfmClass::ChurnRisk
        );
        // total: every combination maps to one of the eight classes
        for bits in 0..8 {
            let c = class_of(bits & 1 != 0, bits & 2 != 0, bits & 4 != 0);
            assert!(CLASSES.contains(&c));
        }
    }
}
