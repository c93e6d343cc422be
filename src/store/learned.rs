//! The save rates the evaluation learned, kept per model and action (one transaction replaces a
//! model's rates), read back when a model loads.

use super::tx::write_transaction;
use super::{Store, StoreError};
use crate::playbook::LearnedRate;
use sqlx::Row;

impl Store {
    /// Store the learned save rates of `model` (one transaction): each action with evidence
    /// (customers in either arm) replaces that action's stored rate; an action without any, as
    /// in an evaluation of an empty period, keeps what an earlier evaluation learned. Returns how
    /// many rates were replaced.
    pub async fn save_learned_rates(
        &self,
        model: &str,
        rates: &[LearnedRate],
    ) -> Result<usize, StoreError> {
        let (pool, backend) = (self.pool(), self.backend());
        let model = model.to_string();
        let rates: Vec<LearnedRate> = rates
            .iter()
            .filter(|l| l.treated + l.control > 0)
            .cloned()
            .collect();
        let now = crate::time::now_ms();
        let health = self.health_handle();
        self.run(async move {
            write_transaction(&pool, &health, async |tx| {
                for l in &rates {
                    sqlx::query("DELETE FROM learned_rates WHERE model = $1 AND action = $2")
                        .bind(model.clone())
                        .bind(l.action.clone())
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(
                        "INSERT INTO learned_rates (model, action, save_rate, prior_rate, \
                         evidence, treated, control, applied, updated_at, save_rate_low, \
                         save_rate_high, effect, effect_low, effect_high, take_up, harms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
                    )
                    .bind(model.clone())
                    .bind(l.action.clone())
                    .bind(l.save_rate)
                    .bind(l.prior_rate)
                    .bind(l.evidence)
                    .bind(l.treated as i64)
                    .bind(l.control as i64)
                    .bind(l.applied as i64)
                    .bind(now)
                    .bind(l.save_rate_low)
                    .bind(l.save_rate_high)
                    .bind(l.effect.map(|e| e.value))
                    .bind(l.effect.map(|e| e.low))
                    .bind(l.effect.map(|e| e.high))
                    .bind(l.take_up)
                    .bind(l.harms as i64)
                    .persistent(super::insert::cacheable(backend))
                    .execute(&mut *tx)
                    .await?;
                }
                Ok(rates.len())
            })
            .await
        })
        .await
    }

    /// How many learned rates the store holds and when the newest was written (ms): a change
    /// means an evaluation stored rates that a server should load.
    pub async fn learned_rates_stamp(&self) -> Result<(i64, i64), StoreError> {
        let pool = self.pool();
        self.run(async move {
            let (n, at): (i64, Option<i64>) =
                sqlx::query_as("SELECT COUNT(*), MAX(updated_at) FROM learned_rates")
                    .fetch_one(&pool)
                    .await?;
            Ok((n, at.unwrap_or(0)))
        })
        .await
    }

    /// The learned save rates of `model` (empty when none were learned).
    pub async fn learned_rates(&self, model: &str) -> Result<Vec<LearnedRate>, StoreError> {
        let pool = self.pool();
        let model = model.to_string();
        self.run(async move {
            let rows = sqlx::query(
                "SELECT action, save_rate, prior_rate, evidence, treated, control, applied, \
                 save_rate_low, save_rate_high, effect, effect_low, effect_high, take_up, harms \
                 FROM learned_rates WHERE model = $1 ORDER BY action",
            )
            .bind(model)
            .fetch_all(&pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let save_rate: f64 = r.try_get(1)?;
                    let effect = match (
                        r.try_get::<Option<f64>, _>(9)?,
                        r.try_get::<Option<f64>, _>(10)?,
                        r.try_get::<Option<f64>, _>(11)?,
                    ) {
                        (Some(value), Some(low), Some(high)) => {
                            Some(crate::model::Estimate { value, low, high })
                        }
                        _ => None,
                    };
                    Ok(LearnedRate {
                        action: r.try_get(0)?,
                        save_rate,
                        prior_rate: r.try_get(2)?,
                        evidence: r.try_get(3)?,
                        treated: r.try_get::<i64, _>(4)?.max(0) as u64,
                        control: r.try_get::<i64, _>(5)?.max(0) as u64,
                        applied: r.try_get::<i64, _>(6)? != 0,
                        // rates learned before schema 4 carry no interval or effect
                        save_rate_low: r.try_get::<Option<f64>, _>(7)?.unwrap_or(save_rate),
                        save_rate_high: r.try_get::<Option<f64>, _>(8)?.unwrap_or(save_rate),
                        effect,
                        take_up: r.try_get(12)?,
                        harms: r.try_get::<i64, _>(13)? != 0,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)
        })
        .await
    }
}
