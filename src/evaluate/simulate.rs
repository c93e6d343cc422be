//! A retention campaign with known truth, for testing the evaluation and for trying the loop
//! out (`churn-train simulate`). Customers are drawn from a table, scored by the real scorer
//! (control group by the real hash), contacted with the top recommended action with a chosen
//! probability, and churn with the calibrated probability reduced by the action's true effect.
//! Purchases and survey answers are drawn too, for the KPIs.

use crate::io::RawTable;
use crate::playbook::{Playbook, RiskBand, Treatment};
use crate::scoring::{ScoreError, Scorer};
use crate::store::{IdKey, OutcomeEvent, PredictionRecord, RecordContext, Source, ValidOutcome};
use crate::util::Rng;
use serde::Serialize;

use super::effects::{change_for, EffectRule, Shift};
use super::EvalError;

use crate::time::DAY_MS;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Customers to draw (with replacement from the table's rows).
    pub customers: usize,
    /// Seed: same seed, same campaign.
    pub seed: u64,
    /// True effect per action: the share of would-be churners a contact saves (others: 0);
    /// negative for an action that makes customers leave (−0.3: 30% more churn, at most 1).
    pub effects: Vec<(String, f64)>,
    /// Share of treatment customers with a positive contact decision who are contacted.
    pub take_rate: f64,
    /// Selective take-up instead: the share contacted in the high, medium and low risk band
    /// (agents reach the riskiest first).
    pub take_by_risk: Option<[f64; 3]>,
    /// Effects that depend on the customer (`--effects FILE`), before `effects`.
    pub effect_rules: Vec<EffectRule>,
    /// Concept shifts (`[[shift]]` in the effects file): from a date on, some customers'
    /// churn probability is multiplied before any action acts.
    pub shifts: Vec<Shift>,
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
            take_by_risk: None,
            effect_rules: Vec::new(),
            shifts: Vec::new(),
            start_ms: 1_767_225_600_000, // 2026-01-01
            spread_days: 28,
            horizon_days: super::DEFAULT_HORIZON_DAYS,
            id_prefix: "sim-".into(),
        }
    }
}

/// `ACTION=SHARE`: an action's true effect, the share (−1..=1) of would-be churners a contact
/// saves, negative when it drives customers away (the text of `churn-train simulate --effect`;
/// blanks around either side are ignored).
pub fn parse_effect(text: &str) -> Result<(String, f64), EvalError> {
    text.split_once('=')
        .and_then(|(k, v)| Some((k.trim().to_string(), v.trim().parse::<f64>().ok()?)))
        .filter(|(_, v)| (-1.0..=1.0).contains(v))
        .ok_or_else(|| EvalError::Invalid {
            field: "effect",
            message: format!("expected ACTION=SHARE with SHARE in -1..=1, got '{text}'"),
        })
}

/// `HIGH,MEDIUM,LOW`: the share contacted per risk band (the text of `churn-train simulate
/// --take-by-risk`), each within 0..=1.
pub fn parse_take_by_risk(text: &str) -> Result<[f64; 3], EvalError> {
    let parts: Vec<Option<f64>> = text
        .split(',')
        .map(|x| {
            x.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| (0.0..=1.0).contains(x))
        })
        .collect();
    parts
        .into_iter()
        .collect::<Option<Vec<f64>>>()
        .and_then(|v| <[f64; 3]>::try_from(v).ok())
        .ok_or_else(|| EvalError::Invalid {
            field: "take_by_risk",
            message: format!(
                "expected HIGH,MEDIUM,LOW shares contacted, each in 0..=1, got '{text}'"
            ),
        })
}

/// The most customers one simulation makes (each is a stored prediction and its events: ten
/// million is hours of writing and gigabytes of store, far beyond any test it serves).
pub const MAX_SIM_CUSTOMERS: usize = 10_000_000;

impl SimConfig {
    /// Check the parameters that need no model: 1 to [`MAX_SIM_CUSTOMERS`] customers, every
    /// effect within −1..=1 and the take rates within 0..=1. Errors name the field (`customers`, `effect`,
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
        if let Some((action, share)) = self.effects.iter().find(|(_, v)| !(-1.0..=1.0).contains(v))
        {
            return Err(EvalError::Invalid {
                field: "effect",
                message: format!(
                    "expected ACTION=SHARE with SHARE in -1..=1, got '{action}={share}'"
                ),
            });
        }
        if let Some(t) = self
            .take_by_risk
            .filter(|t| t.iter().any(|x| !(0.0..=1.0).contains(x)))
        {
            return Err(EvalError::Invalid {
                field: "take_by_risk",
                message: format!("expected shares in 0..=1, got {t:?}"),
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

impl SimConfig {
    /// The share of customers in risk band `band` with a positive contact decision who are
    /// contacted.
    pub fn take(&self, band: RiskBand) -> f64 {
        match (self.take_by_risk, band) {
            (None, _) => self.take_rate,
            (Some(t), RiskBand::High) => t[0],
            (Some(t), RiskBand::Medium) => t[1],
            (Some(t), RiskBand::Low) => t[2],
        }
    }
}

/// Churn probability `p` of the customer of encoded `row` after a contact with `action`.
fn after(cfg: &SimConfig, action: &str, row: &[f64], p: f64) -> f64 {
    change_for(&cfg.effect_rules, action, row, effect_of(cfg, action)).apply(p)
}

/// The truth behind a campaign.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Truth {
    /// Per action with a positive contact decision somewhere in the table: the true lift on
    /// the contacted customers, its true effect, and their mean probability.
    pub actions: Vec<TrueLift>,
}

/// One action's true lift. Its customers are those of the table it is the top action for,
/// each weighted by its chance of being contacted (the take-up of its risk band): the
/// customers the contacted arm is drawn from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrueLift {
    /// Action id.
    pub action: String,
    /// Share of would-be churners saved (negative: share of churn added).
    pub effect: f64,
    /// Mean churn probability (without the action) of the contacted customers.
    pub mean_probability: f64,
    /// Churners prevented per contact (effect × mean probability, unless a harmful action's
    /// probabilities reach 1).
    pub lift: f64,
    /// Share of the customers the action is the top action for who are contacted.
    pub take_up: f64,
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
    /// Per record, what was decided and what each allowed action would truly have done.
    pub decisions: Vec<Decision>,
}

/// One simulated customer's decision against the truth, for comparing policies at the same
/// budget (see [`super::waves`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Churn probability without an action.
    pub probability: f64,
    /// Chance of being reached when offered an action (the take-up of the risk band).
    pub take: f64,
    /// In the treatment group (not held out).
    pub treated: bool,
    /// The actions the rules allow, with their true effect: the drop in churn probability a
    /// contact brings (negative: it pushes the customer out).
    pub allowed: Vec<(String, f64)>,
    /// The action offered (treatment group, contact decision yes), as an index into `allowed`.
    pub offered: Option<usize>,
    /// The offer was drawn by exploration.
    pub explored: bool,
    /// The true effect of the action the risk-ranked policy would offer: the allowed action
    /// with the playbook's highest save rate.
    pub risk_effect: Option<f64>,
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
    // the truth: each row's top action when treated, its probability and chance of contact
    // (action, Σ take, Σ take × p, Σ take × (p − p after), rows)
    let mut sums: Vec<(String, f64, f64, f64, f64)> = Vec::new();
    // a shift part-way through the campaign: the share of scoring instants before and after it
    // (predictions are spread evenly over the window)
    let spread = i64::from(cfg.spread_days.max(1)) * DAY_MS;
    let starts: Vec<i64> = std::iter::once(cfg.start_ms)
        .chain(cfg.shifts.iter().map(|s| s.from_ms))
        .filter(|&t| t >= cfg.start_ms && t < cfg.start_ms + spread)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let regimes: Vec<(i64, f64)> = starts
        .iter()
        .enumerate()
        .map(|(k, &t)| {
            let end = starts.get(k + 1).copied().unwrap_or(cfg.start_ms + spread);
            (t, (end - t) as f64 / spread as f64)
        })
        .collect();
    for r in 0..pool.nrows {
        encode(r, &mut row)?;
        let s = scorer.score_encoded(&row, Vec::new(), None);
        let Some((advice, top)) = s
            .advice
            .as_ref()
            .filter(|a| a.contact)
            .and_then(|a| Some((a, a.recommendations.first()?)))
        else {
            continue;
        };
        for &(at, share) in &regimes {
            let p = Shift::apply_all(&cfg.shifts, &row, at, s.prediction.probability);
            let w = share * cfg.take(advice.risk_band);
            let saved = w * (p - after(cfg, top.action, &row, p));
            match sums.iter_mut().find(|x| x.0 == top.action) {
                Some(x) => {
                    x.1 += w;
                    x.2 += w * p;
                    x.3 += saved;
                    x.4 += share;
                }
                None => sums.push((top.action.to_string(), w, w * p, saved, share)),
            }
        }
    }
    sums.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Truth {
        actions: sums
            .into_iter()
            .map(|(action, w, wp, saved, n)| {
                let w = w.max(f64::MIN_POSITIVE);
                TrueLift {
                    // the share saved on average (the configured one when uniform)
                    effect: if cfg.effect_rules.is_empty() || wp <= 0.0 {
                        effect_of(cfg, &action)
                    } else {
                        saved / wp
                    },
                    mean_probability: wp / w,
                    lift: saved / w,
                    take_up: w / n,
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
    let mut decisions = Vec::with_capacity(cfg.customers);
    let mut outcomes = Vec::new();
    let spread = i64::from(cfg.spread_days.max(1)) * DAY_MS;
    let run = format!("simulation-{}", cfg.seed);
    for k in 0..cfg.customers {
        let r = rng.below(pool.nrows.max(1));
        let id = format!("{}{k}", cfg.id_prefix);
        encode(r, &mut row)?;
        let at = cfg.start_ms + (rng.uniform() * spread as f64) as i64;
        let s = scorer.score_encoded_with(
            &row,
            Vec::new(),
            Some(&id),
            crate::scoring::Detail::FULL.on(at),
        );
        // the world's churn probability: the model's, unless a concept shift changed it since
        let p = Shift::apply_all(&cfg.shifts, &row, at, s.prediction.probability);
        decisions.push(decision(scorer, cfg, &row, &s, p));
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
            if rng.uniform() < cfg.take(a.risk_band) {
                outcomes.push(ValidOutcome {
                    prediction_id: Some(rec.prediction_id.clone()),
                    action: Some(top.action.to_string()),
                    cost: Some(top.cost),
                    ..event(OutcomeEvent::ActionTaken, at + DAY_MS)
                });
                q = after(cfg, top.action, &row, p);
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
        decisions,
    })
}

/// The decision made for one scored customer (encoded `row`, true churn probability `p`)
/// against the truth of `cfg`.
fn decision(
    scorer: &Scorer,
    cfg: &SimConfig,
    row: &[f64],
    s: &crate::scoring::Scored<'_>,
    p: f64,
) -> Decision {
    let actions = scorer.allowed_actions(row, s);
    let allowed: Vec<(String, f64)> = actions
        .iter()
        .map(|a| (a.id.clone(), p - after(cfg, &a.id, row, p)))
        .collect();
    // the first of the highest playbook rate, as a stable sort would rank them
    let risk_effect = (0..actions.len())
        .rev()
        .max_by(|&i, &j| actions[i].save_rate.total_cmp(&actions[j].save_rate))
        .map(|i| allowed[i].1);
    let advice = s.advice.as_ref();
    let offered = advice
        .filter(|a| a.contact && a.treatment == Treatment::Treatment)
        .and_then(|a| a.recommendations.first())
        .and_then(|top| allowed.iter().position(|(id, _)| id == top.action));
    Decision {
        probability: p,
        take: advice.map_or(cfg.take_rate, |a| cfg.take(a.risk_band)),
        treated: advice.is_some_and(|a| a.treatment == Treatment::Treatment),
        allowed,
        offered,
        explored: advice.is_some_and(|a| a.policy == Some(crate::playbook::Choice::Explore)),
        risk_effect,
    }
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
                propensity: r.propensity.map_or(1.0, |x| x as f32),
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
            if let Some(x) = &o.external_id {
                d.set_external_id(x);
            }
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
    use super::super::effects::Change;
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
        assert_eq!(parse_effect("CALL=-0.3").unwrap(), ("CALL".into(), -0.3));
        for bad in [
            "CALL",
            "CALL=",
            "CALL=x",
            "CALL=1.5",
            "CALL=-1.1",
            "CALL=NaN",
            "",
        ] {
            let (field, message) = invalid(parse_effect(bad).unwrap_err());
            assert_eq!(field, "effect", "{bad}");
            assert_eq!(
                message,
                format!("expected ACTION=SHARE with SHARE in -1..=1, got '{bad}'")
            );
        }
    }

    #[test]
    fn take_by_risk_parses_three_shares_and_names_bad_text() {
        assert_eq!(
            parse_take_by_risk("0.95, 0.7,0.35").unwrap(),
            [0.95, 0.7, 0.35]
        );
        for bad in ["0.9,0.5", "0.9,0.5,0.1,0", "0.9,x,0.1", "0.9,0.5,1.2", ""] {
            let (field, message) = invalid(parse_take_by_risk(bad).unwrap_err());
            assert_eq!(field, "take_by_risk", "{bad}");
            assert!(message.contains(&format!("got '{bad}'")), "{message}");
        }
        let cfg = SimConfig {
            take_by_risk: Some([0.95, 0.7, 0.35]),
            ..SimConfig::default()
        };
        assert_eq!(cfg.take(RiskBand::High), 0.95);
        assert_eq!(cfg.take(RiskBand::Low), 0.35);
        assert_eq!(SimConfig::default().take(RiskBand::Low), 0.8);
        assert!((Change::Share(-0.5).apply(0.6) - 0.9).abs() < 1e-12);
        assert_eq!(Change::Share(-0.5).apply(0.8), 1.0);
        assert!((Change::Points(-0.1).apply(0.6) - 0.7).abs() < 1e-12);
        assert_eq!(Change::Points(0.3).apply(0.2), 0.0);
    }

    #[test]
    fn parameters_out_of_range_are_named() {
        assert!(SimConfig::default().validate_parameters().is_ok());
        let cfg = SimConfig {
            effects: vec![("CALL".into(), 0.2), ("COUPON".into(), -1.5)],
            ..SimConfig::default()
        };
        let (field, message) = invalid(cfg.validate_parameters().unwrap_err());
        assert_eq!(field, "effect");
        assert!(message.contains("'COUPON=-1.5'"), "{message}");
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
