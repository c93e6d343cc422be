//! The model registry's changes (who moved which alias, when and why), kept in the store beside
//! the predictions they affect; the registry file keeps only the recent ones.

use super::tx::write_transaction;
use super::{Store, StoreError};
use crate::bundle::registry::Change;
use sqlx::Row;

impl Store {
    /// Record one change of `model`'s registry.
    pub async fn record_model_change(&self, model: &str, c: &Change) -> Result<(), StoreError> {
        let (pool, health) = (self.pool(), self.health_handle());
        let (model, c) = (model.to_string(), c.clone());
        let id = uuid::Uuid::now_v7().to_string();
        let at = crate::time::parse(&c.at).unwrap_or_else(crate::time::now_ms);
        self.run(async move {
            write_transaction(&pool, &health, async |tx| {
                sqlx::query(
                    "INSERT INTO model_changes (change_id, model, at, changed_by, action, alias, \
                     from_version, to_version, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(id.clone())
                .bind(model.clone())
                .bind(at)
                .bind(c.by.clone())
                .bind(c.action.clone())
                .bind(c.alias.clone())
                .bind(c.from.clone())
                .bind(c.to.clone())
                .bind(c.reason.clone())
                .execute(&mut *tx)
                .await?;
                Ok(())
            })
            .await
        })
        .await
    }

    /// The recorded changes of `model`'s registry, oldest first.
    pub async fn model_changes(&self, model: &str) -> Result<Vec<Change>, StoreError> {
        let pool = self.pool();
        let model = model.to_string();
        self.run(async move {
            let rows = sqlx::query(
                "SELECT at, changed_by, action, alias, from_version, to_version, reason \
                 FROM model_changes WHERE model = $1 ORDER BY at, change_id",
            )
            .bind(model)
            .fetch_all(&pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(Change {
                        at: crate::time::format_instant_millis(r.try_get(0)?),
                        by: r.try_get(1)?,
                        action: r.try_get(2)?,
                        alias: r.try_get(3)?,
                        from: r.try_get(4)?,
                        to: r.try_get(5)?,
                        reason: r.try_get(6)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)
        })
        .await
    }
}
