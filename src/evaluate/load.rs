//! The evaluation's data from the store: one model's predictions in a period, the outcomes of
//! their customers and the inputs of the most recent predictions, read through the store's
//! streaming scans ([`crate::store::LogReader`]) with text interned, so a million predictions
//! stay a few hundred bytes each.

use super::drift::DRIFT_ROWS;
use super::{EvalData, OutcomeObs, PredictionObs};
use crate::playbook::Treatment;
use crate::store::{Events, Store, StoreError};
use std::collections::HashSet;

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
            // outcomes first: which prediction ids are named (only those ids are kept)
            let mut raw = Vec::new();
            let mut named: HashSet<String> = HashSet::new();
            let t = std::time::Instant::now();
            reader
                .outcomes(events, &mut |o| {
                    if let Some(p) = o.prediction_id {
                        named.insert(p.to_string());
                    }
                    let obs = OutcomeObs {
                        customer: d.customer(o.customer),
                        event: o.event,
                        at: o.at,
                        prediction: None,
                        action: o.action.map(|a| d.sym(a)),
                        cost: o.cost,
                        amount: o.amount,
                        score: o.score,
                    };
                    raw.push((obs, o.prediction_id.map(str::to_string)));
                })
                .await?;
            tracing::debug!(secs = t.elapsed().as_secs_f64(), "outcomes loaded");
            let t = std::time::Instant::now();
            reader
                .predictions(&model, period, &mut |p| {
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
                    };
                    d.push_prediction(obs, named.contains(p.id).then_some(p.id));
                })
                .await?;
            tracing::debug!(secs = t.elapsed().as_secs_f64(), "predictions loaded");
            for (mut obs, pid) in raw {
                obs.prediction = pid.as_deref().and_then(|p| d.prediction_index(p));
                d.push_outcome(obs);
            }
            // drift reads the inputs of the period's most recent predictions only
            d.drift_rows = reader.recent_inputs(&model, period, DRIFT_ROWS).await?;
            Ok(d)
        })
        .await
}
