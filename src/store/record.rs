//! One scored customer as the store keeps it: the [`PredictionRecord`] (the same for HTTP and
//! batch scoring) and what every record of a request shares.

use crate::playbook::{RiskBand, Treatment};
use crate::segment::{LifecycleStage, RfmClass};

crate::util::text_enum! {
    /// Where a prediction came from.
    pub enum Source {
        /// `POST /v1/score`.
        Http = "http",
        /// `churn-score --store`.
        Batch = "batch",
        /// The shadow challenger's answer to an HTTP request, never returned (stored in
        /// `shadow_predictions`, apart from the served ones).
        Shadow = "shadow",
    }
}

/// The longest customer id accepted anywhere: scoring (HTTP and batch), outcomes and lookups.
pub const MAX_ID_BYTES: usize = 256;

/// Why a short stored text (a customer id, an action, an external id, …) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Longer than its limit.
    #[error("at most {max} bytes, got {got}")]
    TooLong {
        /// The limit in bytes.
        max: usize,
        /// The text's length in bytes.
        got: usize,
    },
    /// Holds a control character (NUL, CR, LF, tab, …), which no database column or log line
    /// should carry.
    #[error("must not contain control characters (found {0} at byte {1})")]
    ControlChar(String, usize),
    /// Empty or only spaces.
    #[error("must not be empty")]
    Empty,
}

/// The rule every short text the store keeps follows: not blank, at most `max` bytes, no
/// control character. A NUL is thereby refused at the door, for that one value, instead of
/// failing a database batch of other customers' records.
pub fn check_text(text: &str, max: usize) -> Result<(), TextError> {
    if text.len() > max {
        return Err(TextError::TooLong {
            max,
            got: text.len(),
        });
    }
    if let Some((at, c)) = text.char_indices().find(|(_, c)| c.is_control()) {
        return Err(TextError::ControlChar(c.escape_debug().to_string(), at));
    }
    if text.trim().is_empty() {
        return Err(TextError::Empty);
    }
    Ok(())
}

/// The one id rule of every path that stores or looks up a customer id: [`check_text`] with
/// [`MAX_ID_BYTES`].
pub fn check_id(id: &str) -> Result<(), TextError> {
    check_text(id, MAX_ID_BYTES)
}

/// One scored customer, as stored.
#[derive(Debug, Clone)]
pub struct PredictionRecord {
    /// UUIDv7, unique and sortable by time.
    pub prediction_id: String,
    /// The request (HTTP) or run (batch) it belongs to.
    pub request_id: String,
    /// Model name.
    pub model: String,
    /// Model version.
    pub model_version: String,
    /// Unix milliseconds.
    pub scored_at: i64,
    /// The customer id, or its keyed hash (`CHURN_ID_KEY`).
    pub customer_key: String,
    /// The raw id when ids are not hashed.
    pub customer_id: Option<String>,
    /// HTTP or batch.
    pub source: Source,
    /// The raw input fields as received (a JSON object).
    pub input: String,
    /// Calibrated churn probability.
    pub probability: f64,
    /// Interval low end.
    pub low: f64,
    /// Interval high end.
    pub high: f64,
    /// At or above the model's threshold.
    pub predicted_churn: bool,
    /// Risk band.
    pub risk_band: Option<RiskBand>,
    /// Segment id.
    pub segment_id: Option<i64>,
    /// Segment name.
    pub segment: Option<String>,
    /// RFM class.
    pub rfm_class: Option<RfmClass>,
    /// Lifecycle stage.
    pub lifecycle_stage: Option<LifecycleStage>,
    /// Treatment or control.
    pub treatment: Option<Treatment>,
    /// Customer value from the playbook.
    pub customer_value: Option<f64>,
    /// Probability × customer value (the worklist order).
    pub expected_loss: f64,
    /// Best-ranked action.
    pub top_action: Option<String>,
    /// Recommended actions with expected values (JSON array).
    pub recommendations: String,
    /// Control group: the action the customer would have been offered (the lift's control arm).
    pub held_out_action: Option<String>,
    /// The contact decision (with a playbook).
    pub contact: Option<bool>,
    /// How the top (or held-out) action was chosen: best-ranked or explored.
    pub policy: Option<crate::playbook::Choice>,
    /// The probability it had of being chosen.
    pub propensity: Option<f64>,
    /// The expected net value of contacting the customer with the first recommendation (with
    /// an uplift model τ(x) × value − cost, else P(churn) × value × save rate − cost); 0 when
    /// the contact decision is no. The worklist's `incremental_value` order.
    pub incremental_value: f64,
}

/// A new UUIDv7 (unique, sortable by creation time).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// What every record of one request (or batch run) shares.
#[derive(Debug, Clone)]
pub struct RecordContext<'a> {
    /// Request (HTTP) or run (batch) id.
    pub request_id: String,
    /// Model name.
    pub model: &'a str,
    /// Model version.
    pub model_version: &'a str,
    /// Unix milliseconds.
    pub scored_at: i64,
    /// HTTP or batch.
    pub source: Source,
    /// How customer ids become keys.
    pub ids: &'a super::IdKey,
    /// The input field holding the customer id (dropped from the stored input when ids are
    /// hashed, so the store holds no raw id).
    pub id_field: Option<&'a str>,
}

/// With hashed ids, the stored input loses the id fields (the model's id column and
/// `customer_id`); otherwise it is kept as received.
fn without_raw_id(ctx: &RecordContext<'_>, input: String) -> String {
    if !ctx.ids.hashes() {
        return input;
    }
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&input) {
        Ok(mut m) => {
            for k in ctx.id_field.into_iter().chain(["customer_id"]) {
                m.remove(k);
            }
            serde_json::Value::Object(m).to_string()
        }
        Err(_) => "{}".into(),
    }
}

impl PredictionRecord {
    /// The record of one scored customer (`input`: the raw fields as a JSON object). The same
    /// function serves HTTP and batch scoring.
    pub fn new(
        ctx: &RecordContext<'_>,
        customer_id: &str,
        input: String,
        s: &crate::scoring::Scored<'_>,
    ) -> PredictionRecord {
        let p = &s.prediction;
        let advice = s.advice.as_ref();
        let seg = s.segment.as_ref();
        let value = advice.map(|a| a.value);
        let recs = advice.map(|a| a.recommendations.as_slice()).unwrap_or(&[]);
        PredictionRecord {
            prediction_id: new_id(),
            request_id: ctx.request_id.clone(),
            model: ctx.model.to_string(),
            model_version: ctx.model_version.to_string(),
            scored_at: ctx.scored_at,
            customer_key: ctx.ids.key_of(customer_id),
            customer_id: (!ctx.ids.hashes()).then(|| customer_id.to_string()),
            source: ctx.source,
            input: without_raw_id(ctx, input),
            probability: p.probability,
            low: p.low,
            high: p.high,
            predicted_churn: p.churn,
            risk_band: advice.map(|a| a.risk_band),
            segment_id: seg.map(|a| i64::from(a.segment_id)),
            segment: seg.map(|a| a.segment.to_string()),
            rfm_class: seg.and_then(|a| a.rfm_class),
            lifecycle_stage: seg.and_then(|a| a.lifecycle_stage),
            treatment: advice.map(|a| a.treatment),
            customer_value: value,
            expected_loss: p.probability * value.unwrap_or(1.0),
            top_action: recs.first().map(|r| r.action.to_string()),
            recommendations: super::recommendations_json(
                recs.iter().map(|r| (r.action, r.expected_value)),
            ),
            held_out_action: advice.and_then(|a| a.held_out).map(str::to_string),
            contact: advice.map(|a| a.contact),
            policy: advice.and_then(|a| a.policy),
            propensity: advice.and_then(|a| a.propensity),
            incremental_value: advice
                .filter(|a| a.contact)
                .and_then(|a| a.recommendations.first())
                .map_or(0.0, |r| r.expected_value),
        }
    }
}
