//! The evaluation's data from the store: one model's predictions in a period, the outcomes of
//! their customers and the inputs of the most recent predictions, read through the store's
//! streaming scans ([`crate::store::LogReader`]) with text interned, so a million predictions
//! stay a few hundred bytes each.

use super::drift::DRIFT_ROWS;
use super::{EvalData, OutcomeObs, PredictionObs};
use crate::playbook::Treatment;
use crate::store::{Events, Store, StoreError};
use crate::util::FxHashMap;

/// The predictions of `model` scored in `[from, to)` and the store's outcomes selected by
/// `events`, plus the inputs of the period's most recent predictions (drift).
pub async fn load(
    store: &Store,
    model: &str,
    period: (Option<i64>, Option<i64>),
    events: Events,
) -> Result<EvalData, StoreError> {
    let reader = store.reader();
    let model = model.to_string();
    store
        .run(async move {
            let mut d = EvalData::default();
            // outcomes first: the prediction ids they name get numbers (only those ids are kept,
            // once each), and each outcome holds its id's number until the predictions are read
            let mut named: FxHashMap<Box<str>, usize> = FxHashMap::default();
            let t = std::time::Instant::now();
            reader
                .outcomes(events, &mut |o| {
                    let id = o.prediction_id.map(|p| match named.get(p) {
                        Some(&k) => k,
                        None => {
                            let k = named.len();
                            named.insert(p.into(), k);
                            k
                        }
                    });
                    let obs = OutcomeObs {
                        customer: d.customer(o.customer),
                        event: o.event,
                        at: o.at,
                        prediction: id,
                        action: o.action.map(|a| d.sym(a)),
                        cost: o.cost,
                        amount: o.amount,
                        score: o.score,
                    };
                    d.push_outcome(obs);
                    if let Some(x) = o.external_id {
                        d.set_external_id(x);
                    }
                })
                .await?;
            tracing::debug!(secs = t.elapsed().as_secs_f64(), "outcomes loaded");
            // named id number → index of its prediction among those loaded
            let mut found: Vec<Option<usize>> = vec![None; named.len()];
            let t = std::time::Instant::now();
            reader
                .predictions(&model, period, &mut |p| {
                    if let Some(&k) = named.get(p.id) {
                        found[k] = Some(d.predictions.len());
                    }
                    let obs = PredictionObs {
                        customer: d.customer(p.customer),
                        scored_at: p.scored_at,
                        probability: p.probability,
                        version: d.sym(p.version),
                        segment: p.segment.map(|s| d.sym(s)),
                        control: p.treatment.map(|t| t == Treatment::Control),
                        top_action: p.top_action.map(|s| d.sym(s)),
                        held_out: p.held_out.map(|s| d.sym(s)),
                        value: p.value,
                        contact: p.contact,
                        propensity: p.propensity.map_or(1.0, |x| x as f32),
                    };
                    d.push_prediction(obs, None);
                })
                .await?;
            tracing::debug!(secs = t.elapsed().as_secs_f64(), "predictions loaded");
            drop(named);
            for o in &mut d.outcomes {
                o.prediction = o.prediction.and_then(|k| found[k]);
            }
            d.predictions.shrink_to_fit();
            d.outcomes.shrink_to_fit();
            // drift reads the inputs of the period's most recent predictions only
            d.drift_rows = reader.recent_inputs(&model, period, DRIFT_ROWS).await?;
            Ok(d)
        })
        .await
}

/// The stored inputs of each customer's first prediction in `data` (the rows of uplift training
/// and of model comparison), by prediction index; `model` and `period` as `data` was loaded.
pub async fn first_inputs(
    store: &Store,
    data: &EvalData,
    model: &str,
    period: (Option<i64>, Option<i64>),
) -> Result<FxHashMap<usize, String>, StoreError> {
    // the inputs of the customers' first predictions only (the rest are never rows), by
    // customer key: (scored at, prediction)
    let keys = data.customer_keys();
    let idx = data.by_time();
    let wanted: FxHashMap<Box<str>, (i64, usize)> = data
        .first_per_customer(&idx)
        .into_iter()
        .map(|k| {
            let p = &data.predictions[idx[k]];
            (keys[p.customer as usize].into(), (p.scored_at, idx[k]))
        })
        .collect();
    let reader = store.reader();
    let name = model.to_string();
    store
        .run(async move {
            let mut inputs: FxHashMap<usize, String> = FxHashMap::default();
            reader
                .inputs(&name, period, &mut |customer, at, input| {
                    if let Some(&(first, i)) = wanted.get(customer) {
                        if first == at {
                            inputs.insert(i, input.to_string());
                        }
                    }
                })
                .await?;
            Ok(inputs)
        })
        .await
}
