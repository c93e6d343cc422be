//! A retention campaign with known truth, for testing the evaluation and for trying the loop
//! out (`churn-train simulate`). Customers are drawn from a table, scored by the real scorer
//! (control group by the real hash), contacted with the top recommended action with a chosen
//! probability, and churn with the calibrated probability reduced by the action's true effect.
//! Purchases and survey answers are drawn too, for the KPIs.

use crate::io::RawTable;
use crate::playbook::{Playbook, Treatment};
use crate::scoring::{ScoreError, Scorer};
use crate::store::{IdKey, OutcomeEvent, PredictionRecord, RecordContext, Source, ValidOutcome};
use crate::util::Rng;
use serde::Serialize;

use super::EvalError;

use crate::time::DAY_MS;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Customers to draw (with replacement from the table's rows).
    pub customers: usize,
    /// Seed: same seed, same campaign.
    pub seed: u64,
    /// True effect per action: the share of would-be churners a contact saves (others: 0).
    pub effects: Vec<(String, f64)>,
    /// Share of treatment customers with a positive contact decision who are contacted.
    pub take_rate: f64,
    /// First scoring instant (Unix ms).
    pub start_ms: i64,
    /// Predictions spread over this many days from the start.
    pub spread_days: u32,
    /// Label horizon in days (churn happens within it).
    pub horizon_days: u32,
    /// Customer ids are this prefix and a number.
    pub id_prefix: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            customers: 10_000,
            seed: 1,
            effects: Vec::new(),
            take_rate: 0.8,
            start_ms: 1_767_225_600_000, // 2026-01-01
            spread_days: 28,
            horizon_days: super::DEFAULT_HORIZON_DAYS,
            id_prefix: "sim-".into(),
        }
    }
}

/// `ACTION=SHARE`: an action's true effect, the share (0..=1) of would-be churners a contact
/// saves (the text of `churn-train simulate --effect`; blanks around either side are ignored).
pub fn parse_effect(text: &str) -> Result<(String, f64), EvalError> {
    text.split_once('=')
        .and_then(|(k, v)| Some((k.trim().to_string(), v.trim().parse::<f64>().ok()?)))
        .filter(|(_, v)| (0.0..=1.0).contains(v))
        .ok_or_else(|| EvalError::Invalid {
            field: "effect",
            message: format!("expected ACTION=SHARE with SHARE in 0..=1, got '{text}'"),
        })
}

/// The most customers one simulation makes (each is a stored prediction and its events: ten
/// million is hours of writing and gigabytes of store, far beyond any test it serves).
pub const MAX_SIM_CUSTOMERS: usize = 10_000_000;

impl SimConfig {
    /// Check the parameters that need no model: 1 to [`MAX_SIM_CUSTOMERS`] customers, every
    /// effect and the take rate within 0..=1. Errors name the field (`customers`, `effect`,
    /// `take_rate`).
    pub fn validate_parameters(&self) -> Result<(), EvalError> {
        if !(1..=MAX_SIM_CUSTOMERS).contains(&self.customers) {
            return Err(EvalError::Invalid {
                field: "customers",
                message: format!(
                    "expected 1 to {MAX_SIM_CUSTOMERS} customers, got {}",
                    self.customers
                ),
            });
        }
        if let Some((action, share)) = self.effects.iter().find(|(_, v)| !(0.0..=1.0).contains(v)) {
            return Err(EvalError::Invalid {
                field: "effect",
                message: format!(
                    "expected ACTION=SHARE with SHARE in 0..=1, got '{action}={share}'"
                ),
            });
        }
        if !(0.0..=1.0).contains(&self.take_rate) {
            return Err(EvalError::Invalid {
                field: "take_rate",
                message: format!("expected 0..=1, got {}", self.take_rate),
            });
        }
        Ok(())
    }

    /// Check the configuration against the model's playbook: the parameters
    /// ([`SimConfig::validate_parameters`]), then that there is a playbook (field `model`) and
    /// that it has every action an effect names (field `effect`).
    pub fn validate(&self, playbook: Option<&Playbook>) -> Result<(), EvalError> {
        self.validate_parameters()?;
        let Some(pb) = playbook else {
            return Err(EvalError::Invalid {
                field: "model",
                message: "the model has no playbook".into(),
            });
        };
        match self
            .effects
            .iter()
            .find(|(action, _)| !pb.action_ids().any(|x| x == action))
        {
            Some((action, _)) => Err(EvalError::Invalid {
                field: "effect",
                message: format!("the playbook has no action '{action}'"),
            }),
            None => Ok(()),
        }
    }
}

/// The truth behind a campaign.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Truth {
    /// Per action with a positive contact decision somewhere in the table: the true lift
    /// (effect × mean probability of the customers it is recommended to), its true effect, and
    /// that mean probability.
    pub actions: Vec<TrueLift>,
}

/// One action's true lift.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrueLift {
    /// Action id.
    pub action: String,
    /// Share of would-be churners saved.
    pub effect: f64,
    /// Mean churn probability of the customers it is the top action for.
    pub mean_probability: f64,
    /// effect × mean probability: churners prevented per contact.
    pub lift: f64,
}

/// A simulated campaign: what the store would hold.
#[derive(Debug, Clone)]
pub struct Campaign {
    /// One prediction per customer.
    pub records: Vec<PredictionRecord>,
    /// Their outcomes (actions taken, churn, purchases, surveys).
    pub outcomes: Vec<ValidOutcome>,
    /// The truth.
    pub truth: Truth,
}

fn effect_of(cfg: &SimConfig, action: &str) -> f64 {
    cfg.effects
        .iter()
        .find(|(a, _)| a == action)
        .map_or(0.0, |e| e.1)
}

/// Encode row `r` of the pool into the buffer.
type EncodeRow<'a> = dyn Fn(usize, &mut [f64]) -> Result<(), ScoreError> + 'a;

/// The true lift of each action: over the customers of `pool` whose top recommendation it is
/// (when treated), its effect times their mean probability.
fn truth(
    scorer: &Scorer,
    pool: &RawTable,
    cfg: &SimConfig,
    encode: &EncodeRow,
) -> Result<Truth, ScoreError> {
    let mut row = vec![0.0; scorer.bundle.encoder.width()];
    // the truth: each row's top action when treated, and its probability
    let mut sums: Vec<(String, f64, usize)> = Vec::new();
    for r in 0..pool.nrows {
        encode(r, &mut row)?;
        let s = scorer.score_encoded(&row, Vec::new(), None);
        let Some(top) = s
            .advice
            .as_ref()
            .filter(|a| a.contact)
            .and_then(|a| a.recommendations.first())
        else {
            continue;
        };
        match sums.iter_mut().find(|x| x.0 == top.action) {
            Some(x) => {
                x.1 += s.prediction.probability;
                x.2 += 1;
            }
            None => sums.push((top.action.to_string(), s.prediction.probability, 1)),
        }
    }
    sums.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Truth {
        actions: sums
            .into_iter()
            .map(|(action, sum, n)| {
                let effect = effect_of(cfg, &action);
                let mean = sum / n as f64;
                TrueLift {
                    lift: effect * mean,
                    effect,
                    mean_probability: mean,
                    action,
                }
            })
            .collect(),
    })
}

/// Simulate one campaign on the customers of `pool` (a table in the model's input layout).
pub fn simulate(scorer: &Scorer, pool: &RawTable, cfg: &SimConfig) -> Result<Campaign, ScoreError> {
    let bind = scorer.bind(pool)?;
    let width = scorer.bundle.encoder.width();
    let horizon = i64::from(cfg.horizon_days.max(2)) * DAY_MS;
    let mut row = vec![0.0; width];
    let encode = |r: usize, row: &mut [f64]| -> Result<(), ScoreError> {
        let mut w = Vec::new();
        scorer.encode_into(|i| Some(pool.columns[bind[i]].data.get(r)), row, &mut w)
    };
    let truth = truth(scorer, pool, cfg, &encode)?;

    let ids = IdKey::new(None);
    let mut rng = Rng::new(cfg.seed);
    let mut records = Vec::with_capacity(cfg.customers);
    let mut outcomes = Vec::new();
    let spread = i64::from(cfg.spread_days.max(1)) * DAY_MS;
    let run = format!("simulation-{}", cfg.seed);
    for k in 0..cfg.customers {
        let r = rng.below(pool.nrows.max(1));
        let id = format!("{}{k}", cfg.id_prefix);
        encode(r, &mut row)?;
        let s = scorer.score_encoded(&row, Vec::new(), Some(&id));
        let at = cfg.start_ms + (rng.uniform() * spread as f64) as i64;
        let ctx = RecordContext {
            request_id: run.clone(),
            model: &scorer.bundle.name,
            model_version: &scorer.version,
            scored_at: at,
            source: Source::Batch,
            ids: &ids,
            id_field: scorer.bundle.id_column.as_deref(),
        };
        let rec = PredictionRecord::new(&ctx, &id, crate::store::row_json(pool, r), &s);
        let p = s.prediction.probability;
        let event = |event: OutcomeEvent, at: i64| ValidOutcome {
            customer_id: id.clone(),
            event,
            at,
            prediction_id: None,
            action: None,
            cost: None,
            amount: None,
            score: None,
            external_id: None,
        };
        let mut q = p;
        if let Some(a) = s
            .advice
            .as_ref()
            .filter(|a| a.contact && a.treatment == Treatment::Treatment)
        {
            let top = &a.recommendations[0];
            if rng.uniform() < cfg.take_rate {
                outcomes.push(ValidOutcome {
                    prediction_id: Some(rec.prediction_id.clone()),
                    action: Some(top.action.to_string()),
                    cost: Some(top.cost),
                    ..event(OutcomeEvent::ActionTaken, at + DAY_MS)
                });
                q = p * (1.0 - effect_of(cfg, top.action));
            }
        }
        let churn_at = at + DAY_MS + (rng.uniform() * (horizon - 2 * DAY_MS) as f64) as i64;
        let churned = rng.uniform() < q;
        // purchases before churning (or within the horizon), a survey answer from a third
        let last = if churned { churn_at } else { at + horizon };
        let purchases = 1 + rng.below(if churned { 2 } else { 4 });
        for j in 0..purchases {
            let t = at + (last - at) * (j as i64 + 1) / (purchases as i64 + 1);
            outcomes.push(ValidOutcome {
                amount: Some((20.0 + 80.0 * rng.uniform()).round()),
                ..event(OutcomeEvent::Purchase, t)
            });
        }
        if rng.below(3) == 0 {
            let base = if churned { 2.0 } else { 6.0 };
            let score = (base + rng.uniform() * 5.0).floor().min(10.0) as i64;
            outcomes.push(ValidOutcome {
                score: Some(score),
                ..event(OutcomeEvent::Survey, at + (last - at) / 2)
            });
        }
        if churned {
            outcomes.push(event(OutcomeEvent::Churned, churn_at));
        }
        records.push(rec);
    }
    Ok(Campaign {
        records,
        outcomes,
        truth,
    })
}

impl super::EvalData {
    /// The evaluation's view of a campaign (as the store would load it, with raw ids).
    pub fn from_campaign(c: &Campaign) -> super::EvalData {
        let mut d = super::EvalData::default();
        for r in &c.records {
            let obs = super::PredictionObs {
                customer: d.customer(&r.customer_key),
                scored_at: r.scored_at,
                probability: r.probability,
                version: d.sym(&r.model_version),
                segment: r.segment.as_deref().map(|s| d.sym(s)),
                control: r
                    .treatment
                    .map(|t| t == crate::playbook::Treatment::Control),
                top_action: r.top_action.as_deref().map(|s| d.sym(s)),
                held_out: r.held_out_action.as_deref().map(|s| d.sym(s)),
                contact: r.contact,
                value: r.customer_value,
            };
            d.push_prediction(obs, Some(&r.prediction_id));
        }
        for o in &c.outcomes {
            let obs = super::OutcomeObs {
                customer: d.customer(&o.customer_id),
                event: o.event,
                at: o.at,
                prediction: o
                    .prediction_id
                    .as_deref()
                    .and_then(|id| d.prediction_index(id)),
                action: o.action.as_deref().map(|s| d.sym(s)),
                cost: o.cost,
                amount: o.amount,
                score: o.score,
            };
            d.push_outcome(obs);
        }
        // the most recent predictions, as the store gives them
        let mut recent: Vec<&PredictionRecord> = c.records.iter().collect();
        recent
            .sort_by(|a, b| (b.scored_at, &b.prediction_id).cmp(&(a.scored_at, &a.prediction_id)));
        d.drift_rows = recent
            .into_iter()
            .take(super::drift::DRIFT_ROWS)
            .map(|r| crate::store::RecentInput {
                input: r.input.clone(),
                probability: r.probability,
                segment: r.segment.clone(),
            })
            .collect();
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(e: EvalError) -> (&'static str, String) {
        match e {
            EvalError::Invalid { field, message } => (field, message),
            other => panic!("not a parameter error: {other}"),
        }
    }

    #[test]
    fn effects_parse_with_blanks_and_refuse_bad_text_or_shares() {
        assert_eq!(parse_effect("CALL=0.3").unwrap(), ("CALL".into(), 0.3));
        assert_eq!(parse_effect(" CALL = 1 ").unwrap(), ("CALL".into(), 1.0));
        assert_eq!(parse_effect("CALL=0").unwrap(), ("CALL".into(), 0.0));
        for bad in [
            "CALL",
            "CALL=",
            "CALL=x",
            "CALL=1.5",
            "CALL=-0.1",
            "CALL=NaN",
            "",
        ] {
            let (field, message) = invalid(parse_effect(bad).unwrap_err());
            assert_eq!(field, "effect", "{bad}");
            assert_eq!(
                message,
                format!("expected ACTION=SHARE with SHARE in 0..=1, got '{bad}'")
            );
        }
    }

    #[test]
    fn parameters_out_of_range_are_named() {
        assert!(SimConfig::default().validate_parameters().is_ok());
        let cfg = SimConfig {
            effects: vec![("CALL".into(), 0.2), ("COUPON".into(), 1.5)],
            ..SimConfig::default()
        };
        let (field, message) = invalid(cfg.validate_parameters().unwrap_err());
        assert_eq!(field, "effect");
        assert!(message.contains("'COUPON=1.5'"), "{message}");
        for take_rate in [-0.1, 1.01, f64::NAN] {
            let cfg = SimConfig {
                take_rate,
                ..SimConfig::default()
            };
            let (field, message) = invalid(cfg.validate_parameters().unwrap_err());
            assert_eq!(field, "take_rate");
            assert_eq!(message, format!("expected 0..=1, got {take_rate}"));
        }
    }

    #[test]
    fn a_model_without_playbook_is_refused_after_the_parameters() {
        let (field, message) = invalid(SimConfig::default().validate(None).unwrap_err());
        assert_eq!(
            (field, message.as_str()),
            ("model", "the model has no playbook")
        );
        let cfg = SimConfig {
            take_rate: 2.0,
            ..SimConfig::default()
        };
        assert_eq!(invalid(cfg.validate(None).unwrap_err()).0, "take_rate");
    }
}
