//! The store's side of the evaluation: loading one model's predictions and their customers'
//! outcomes (streamed, text interned, so a million predictions stay a few hundred bytes each),
//! and keeping the save rates the evaluation learned.

use super::{OutcomeEvent, Store, StoreError};
use crate::evaluate::drift::{DriftRow, DRIFT_ROWS};
use crate::evaluate::{EvalData, OutcomeObs, PredictionObs};
use crate::playbook::LearnedRate;
use futures_util::StreamExt;
use sqlx::Row;
use std::collections::HashSet;

impl Store {
    /// The models that have predictions, by name.
    pub async fn models(&self) -> Result<Vec<String>, StoreError> {
        let pool = self.pool();
        self.run(async move {
            let rows = sqlx::query("SELECT DISTINCT model FROM predictions ORDER BY model")
                .fetch_all(&pool)
                .await?;
            rows.iter()
                .map(|r| r.try_get::<String, _>(0).map_err(StoreError::from))
                .collect()
        })
        .await
    }

    /// The predictions of `model` scored in `[from, to)` and every outcome of the store (the
    /// evaluation picks the ones of the loaded customers).
    pub async fn load_evaluation(
        &self,
        model: &str,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<EvalData, StoreError> {
        let pool = self.pool();
        let model = model.to_string();
        self.run(async move {
            let mut d = EvalData::default();
            // outcomes first: which prediction ids are named (only those ids are kept)
            let mut raw = Vec::new();
            let mut named: HashSet<String> = HashSet::new();
            let mut rows = sqlx::query(
                "SELECT customer_key, event, at, prediction_id, action, cost, amount, score FROM outcomes",
            )
            .fetch(&pool);
            while let Some(r) = rows.next().await {
                let r = r?;
                let event: String = r.try_get(1)?;
                let Some(event) = OutcomeEvent::from_name(&event) else {
                    continue;
                };
                let pid: Option<String> = r.try_get(3)?;
                if let Some(p) = &pid {
                    named.insert(p.clone());
                }
                let customer: String = r.try_get(0)?;
                let action: Option<String> = r.try_get(4)?;
                let obs = OutcomeObs {
                    customer: d.sym(&customer),
                    event,
                    at: r.try_get(2)?,
                    prediction: None,
                    action: action.as_deref().map(|a| d.sym(a)),
                    cost: r.try_get(5)?,
                    amount: r.try_get(6)?,
                    score: r.try_get(7)?,
                };
                raw.push((obs, pid));
            }
            drop(rows);
            let mut rows = sqlx::query(
                "SELECT prediction_id, model_version, scored_at, customer_key, probability, segment, \
                 treatment, top_action, held_out_action, customer_value FROM predictions \
                 WHERE model = $1 AND scored_at >= $2 AND scored_at < $3",
            )
            .bind(model.clone())
            .bind(from.unwrap_or(i64::MIN))
            .bind(to.unwrap_or(i64::MAX))
            .fetch(&pool);
            while let Some(r) = rows.next().await {
                let r = r?;
                let id: String = r.try_get(0)?;
                let version: String = r.try_get(1)?;
                let customer: String = r.try_get(3)?;
                let segment: Option<String> = r.try_get(5)?;
                let treatment: Option<String> = r.try_get(6)?;
                let top: Option<String> = r.try_get(7)?;
                let held: Option<String> = r.try_get(8)?;
                let obs = PredictionObs {
                    customer: d.sym(&customer),
                    scored_at: r.try_get(2)?,
                    probability: r.try_get(4)?,
                    version: d.sym(&version),
                    segment: segment.as_deref().map(|s| d.sym(s)),
                    control: treatment.as_deref().map(|t| t == "control"),
                    top_action: top.as_deref().map(|s| d.sym(s)),
                    held_out: held.as_deref().map(|s| d.sym(s)),
                    value: r.try_get(9)?,
                };
                d.push_prediction(obs, named.contains(&id).then_some(id.as_str()));
            }
            drop(rows);
            for (mut obs, pid) in raw {
                obs.prediction = pid.as_deref().and_then(|p| d.prediction_index(p));
                d.push_outcome(obs);
            }
            // drift reads the inputs of the period's most recent predictions only
            let rows = sqlx::query(
                "SELECT input, probability, segment FROM predictions \
                 WHERE model = $1 AND scored_at >= $2 AND scored_at < $3 \
                 ORDER BY scored_at DESC, prediction_id DESC LIMIT $4",
            )
            .bind(model)
            .bind(from.unwrap_or(i64::MIN))
            .bind(to.unwrap_or(i64::MAX))
            .bind(DRIFT_ROWS as i64)
            .fetch_all(&pool)
            .await?;
            for r in rows {
                d.drift_rows.push(DriftRow {
                    input: r.try_get(0)?,
                    probability: r.try_get(1)?,
                    segment: r.try_get(2)?,
                });
            }
            Ok(d)
        })
        .await
    }

    /// Replace the learned save rates of `model` (one transaction).
    pub async fn save_learned_rates(
        &self,
        model: &str,
        rates: &[LearnedRate],
    ) -> Result<(), StoreError> {
        let (pool, backend) = (self.pool(), self.backend());
        let model = model.to_string();
        let rates = rates.to_vec();
        let now = super::now_ms();
        self.run(async move {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM learned_rates WHERE model = $1")
                .bind(model.clone())
                .execute(&mut *tx)
                .await?;
            for l in rates {
                sqlx::query(
                    "INSERT INTO learned_rates (model, action, save_rate, prior_rate, evidence, \
                     treated, control, applied, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(model.clone())
                .bind(l.action)
                .bind(l.save_rate)
                .bind(l.prior_rate)
                .bind(l.evidence)
                .bind(l.treated as i64)
                .bind(l.control as i64)
                .bind(l.applied as i64)
                .bind(now)
                .persistent(super::log::cacheable(backend))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The learned save rates of `model` (empty when none were learned).
    pub async fn learned_rates(&self, model: &str) -> Result<Vec<LearnedRate>, StoreError> {
        let pool = self.pool();
        let model = model.to_string();
        self.run(async move {
            let rows = sqlx::query(
                "SELECT action, save_rate, prior_rate, evidence, treated, control, applied \
                 FROM learned_rates WHERE model = $1 ORDER BY action",
            )
            .bind(model)
            .fetch_all(&pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(LearnedRate {
                        action: r.try_get(0)?,
                        save_rate: r.try_get(1)?,
                        prior_rate: r.try_get(2)?,
                        evidence: r.try_get(3)?,
                        treated: r.try_get::<i64, _>(4)?.max(0) as u64,
                        control: r.try_get::<i64, _>(5)?.max(0) as u64,
                        applied: r.try_get::<i64, _>(6)? != 0,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)
        })
        .await
    }
}
