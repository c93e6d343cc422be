//! The shadow challenger's stored answers (`shadow_predictions`), each paired with the
//! champion's answer to the same request and customer.

use super::{Store, StoreError};
use serde::Serialize;
use sqlx::Row;

/// One shadow answer beside the champion's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShadowPair {
    /// The request both answered.
    pub request_id: String,
    /// The customer (key as stored).
    pub customer_key: String,
    /// The challenger's version.
    pub version: String,
    /// The challenger's probability.
    pub probability: f64,
    /// The champion's version (`None`: its record was not stored, e.g. dropped by a full queue).
    pub champion_version: Option<String>,
    /// The champion's probability.
    pub champion_probability: Option<f64>,
}

/// How many shadow answers one challenger version has stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShadowCount {
    /// The challenger's version.
    pub version: String,
    /// Stored answers.
    pub records: i64,
}

impl Store {
    /// The first `limit` shadow answers stored for `model` (oldest first), with the champion's.
    pub async fn shadow_pairs(
        &self,
        model: &str,
        limit: i64,
    ) -> Result<Vec<ShadowPair>, StoreError> {
        let pool = self.pool();
        let model = model.to_string();
        self.run(async move {
            let rows = sqlx::query(
                "SELECT s.request_id, s.customer_key, s.model_version, s.probability, \
                 p.model_version, p.probability FROM shadow_predictions s \
                 LEFT JOIN predictions p ON p.customer_key = s.customer_key \
                 AND p.model = s.model AND p.request_id = s.request_id \
                 WHERE s.model = $1 ORDER BY s.prediction_id LIMIT $2",
            )
            .bind(model)
            .bind(limit)
            .fetch_all(&pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(ShadowPair {
                        request_id: r.try_get(0)?,
                        customer_key: r.try_get(1)?,
                        version: r.try_get(2)?,
                        probability: r.try_get(3)?,
                        champion_version: r.try_get(4)?,
                        champion_probability: r.try_get(5)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)
        })
        .await
    }

    /// Shadow answers stored for `model`, per challenger version.
    pub async fn shadow_counts(&self, model: &str) -> Result<Vec<ShadowCount>, StoreError> {
        let pool = self.pool();
        let model = model.to_string();
        self.run(async move {
            let rows = sqlx::query(
                "SELECT model_version, COUNT(*) FROM shadow_predictions WHERE model = $1 \
                 GROUP BY model_version ORDER BY model_version",
            )
            .bind(model)
            .fetch_all(&pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(ShadowCount {
                        version: r.try_get(0)?,
                        records: r.try_get(1)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)
        })
        .await
    }
}
