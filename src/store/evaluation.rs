//! The store's side of the evaluation: loading one model's predictions and their customers'
//! outcomes (streamed, text interned, so a million predictions stay a few hundred bytes each),
//! and keeping the save rates the evaluation learned.

use super::log::Col;
use super::Backend;
use super::{OutcomeEvent, Store, StoreError};
use crate::evaluate::drift::{DriftRow, DRIFT_ROWS};
use crate::evaluate::{EvalData, OutcomeObs, PredictionObs};
use crate::playbook::LearnedRate;
use sqlx::{AssertSqlSafe, Row};
use std::borrow::Cow;
use std::collections::HashSet;

/// The prediction fields the evaluation reads, in tuple order.
const PREDICTION_FIELDS: [(&str, Col); 11] = [
    ("prediction_id", Col::Text),
    ("model_version", Col::Text),
    ("scored_at", Col::Int),
    ("customer_key", Col::Text),
    ("probability", Col::Real),
    ("segment", Col::Text),
    ("treatment", Col::Text),
    ("top_action", Col::Text),
    ("held_out_action", Col::Text),
    ("customer_value", Col::Real),
    ("contact", Col::Int),
];

/// One packed prediction row, borrowing its text from the packed JSON (a string with escapes
/// is copied).
#[derive(serde::Deserialize)]
struct PackedPrediction<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    version: Cow<'a, str>,
    scored_at: i64,
    #[serde(borrow)]
    customer: Cow<'a, str>,
    probability: f64,
    #[serde(borrow)]
    segment: Option<Cow<'a, str>>,
    #[serde(borrow)]
    treatment: Option<Cow<'a, str>>,
    #[serde(borrow)]
    top_action: Option<Cow<'a, str>>,
    #[serde(borrow)]
    held_out: Option<Cow<'a, str>>,
    value: Option<f64>,
    contact: Option<i64>,
}

/// The outcome fields the evaluation reads, in tuple order.
const OUTCOME_FIELDS: [(&str, Col); 8] = [
    ("customer_key", Col::Text),
    ("event", Col::Text),
    ("at", Col::Int),
    ("prediction_id", Col::Text),
    ("action", Col::Text),
    ("cost", Col::Real),
    ("amount", Col::Real),
    ("score", Col::Int),
];

/// One packed outcome row (see [`PackedPrediction`]).
#[derive(serde::Deserialize)]
struct PackedOutcome<'a> {
    #[serde(borrow)]
    customer: Cow<'a, str>,
    #[serde(borrow)]
    event: Cow<'a, str>,
    at: i64,
    prediction_id: Option<String>,
    #[serde(borrow)]
    action: Option<Cow<'a, str>>,
    cost: Option<f64>,
    amount: Option<f64>,
    score: Option<i64>,
}

/// The rows of one packed text.
fn unpack<'a, T: serde::Deserialize<'a>>(text: &'a str) -> Result<Vec<T>, StoreError> {
    serde_json::from_str(text).map_err(packed_error)
}

/// Rows of `table` per packed text on SQLite (a range of rowids).
const PACK_ROWS: i64 = 65_536;

/// `table`'s rows matching `filter` (`WHERE …` over parameters `$1…` bound from `params`),
/// packed as JSON arrays of row arrays and parsed into `T`, so a million rows come back in a few
/// hundred texts instead of a million driver round trips (8 µs per row through sqlx's SQLite
/// worker). SQLite: one text per range of [`PACK_ROWS`] rowids (a GROUP BY sorted the packed
/// strings: 7.6 s for 1M predictions, ranges 3.2 s); PostgreSQL: one text per last two hex
/// digits of `id` (a UUIDv7: random there). Numbers keep every bit: SQLite prints 17
/// significant digits, PostgreSQL its shortest exact text.
/// Each text goes to `take` as it arrives (and is dropped before the next).
async fn fetch_packed(
    pool: &sqlx::AnyPool,
    backend: Backend,
    (table, id): (&str, &str),
    fields: &[(&str, Col)],
    (filter, params): (&str, &[Param]),
    take: &mut (dyn FnMut(&str) -> Result<(), StoreError> + Send),
) -> Result<(), StoreError> {
    let cells: Vec<String> = fields
        .iter()
        .map(|(f, c)| match (backend, c) {
            (Backend::Sqlite, Col::Text) => format!("json_quote({f})"),
            (Backend::Sqlite, Col::Int) => format!("coalesce(CAST({f} AS TEXT), 'null')"),
            (Backend::Sqlite, Col::Real) => {
                format!("CASE WHEN {f} IS NULL THEN 'null' ELSE printf('%!.17g', {f}) END")
            }
            (Backend::Postgres, Col::Text) => format!("coalesce(to_json({f})::text, 'null')"),
            (Backend::Postgres, Col::Int | Col::Real) => format!("coalesce({f}::text, 'null')"),
        })
        .collect();
    let row = format!("'[' || {} || ']'", cells.join(" || ',' || "));
    let bind = |sql: String| {
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for p in params {
            q = match p {
                Param::Text(t) => q.bind(t.clone()),
                Param::Int(i) => q.bind(*i),
            };
        }
        q
    };
    match backend {
        Backend::Sqlite => {
            let range = sqlx::query(AssertSqlSafe(format!(
                "SELECT coalesce(min(rowid), 0), coalesce(max(rowid), -1) FROM {table}"
            )))
            .fetch_one(pool)
            .await?;
            let (lo, hi): (i64, i64) = (range.try_get(0)?, range.try_get(1)?);
            let k = params.len();
            let sql = format!(
                "SELECT '[' || group_concat({row}, ',') || ']' FROM {table} {filter} \
                 AND rowid >= ${} AND rowid < ${}",
                k + 1,
                k + 2
            );
            // two ranges in flight on two connections (WAL: readers never block each other),
            // while this thread parses the previous one
            let starts = (0..)
                .map(|k: i64| lo.saturating_add(k.saturating_mul(PACK_ROWS)))
                .take_while(|&st| st <= hi);
            let queries = starts.map(|st| {
                let q = bind(sql.clone())
                    .bind(st)
                    .bind(st.saturating_add(PACK_ROWS))
                    .persistent(true);
                async move { q.fetch_one(pool).await }
            });
            let mut packs =
                futures_util::StreamExt::buffered(futures_util::stream::iter(queries), 2);
            while let Some(r) = futures_util::StreamExt::next(&mut packs).await {
                if let Some(t) = r?.try_get::<Option<String>, _>(0)? {
                    take(&t)?;
                }
            }
        }
        Backend::Postgres => {
            let sql = format!(
                "SELECT '[' || string_agg({row}, ',') || ']' FROM {table} {filter} \
                 GROUP BY substr({id}, 35, 2)"
            );
            let mut rows = bind(sql).fetch(pool);
            while let Some(r) = futures_util::StreamExt::next(&mut rows).await {
                take(&r?.try_get::<String, _>(0)?)?;
            }
        }
    }
    Ok(())
}

/// A bound parameter of [`fetch_packed`].
enum Param {
    Text(String),
    Int(i64),
}

fn packed_error(e: serde_json::Error) -> StoreError {
    StoreError::Runtime(format!("unreadable packed rows: {e}"))
}

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

    /// The predictions of `model` scored in `[from, to)` and the outcomes of the store: with
    /// `all_events` every event (KPIs), else `churned` and `action_taken` only (labels and
    /// arms), plus the inputs of the period's most recent predictions (drift).
    pub async fn load_evaluation(
        &self,
        model: &str,
        from: Option<i64>,
        to: Option<i64>,
        all_events: bool,
    ) -> Result<EvalData, StoreError> {
        let (pool, backend) = (self.pool(), self.backend());
        let model = model.to_string();
        self.run(async move {
            let mut d = EvalData::default();
            // outcomes first: which prediction ids are named (only those ids are kept)
            let events = if all_events {
                "WHERE true"
            } else {
                "WHERE event IN ('churned', 'action_taken')"
            };
            let mut raw = Vec::new();
            let mut named: HashSet<String> = HashSet::new();
            let mut outcomes = |text: &str| -> Result<(), StoreError> {
                for o in unpack::<PackedOutcome>(text)? {
                    let Some(event) = OutcomeEvent::from_name(&o.event) else {
                        continue;
                    };
                    if let Some(p) = &o.prediction_id {
                        named.insert(p.clone());
                    }
                    let obs = OutcomeObs {
                        customer: d.customer(&o.customer),
                        event,
                        at: o.at,
                        prediction: None,
                        action: o.action.as_deref().map(|a| d.sym(a)),
                        cost: o.cost,
                        amount: o.amount,
                        score: o.score,
                    };
                    raw.push((obs, o.prediction_id));
                }
                Ok(())
            };
            let t = std::time::Instant::now();
            let table = ("outcomes", "outcome_id");
            fetch_packed(
                &pool,
                backend,
                table,
                &OUTCOME_FIELDS,
                (events, &[]),
                &mut outcomes,
            )
            .await?;
            tracing::debug!(secs = t.elapsed().as_secs_f64(), "outcomes loaded");
            let t = std::time::Instant::now();
            let mut predictions = |text: &str| -> Result<(), StoreError> {
                for p in unpack::<PackedPrediction>(text)? {
                    let obs = PredictionObs {
                        customer: d.customer(&p.customer),
                        scored_at: p.scored_at,
                        probability: p.probability,
                        version: d.sym(&p.version),
                        segment: p.segment.as_deref().map(|s| d.sym(s)),
                        control: p.treatment.as_deref().map(|t| t == "control"),
                        top_action: p.top_action.as_deref().map(|s| d.sym(s)),
                        held_out: p.held_out.as_deref().map(|s| d.sym(s)),
                        value: p.value,
                        contact: p.contact.map(|c| c != 0),
                    };
                    d.push_prediction(obs, named.contains(p.id.as_ref()).then_some(p.id.as_ref()));
                }
                Ok(())
            };
            let filter = "WHERE model = $1 AND scored_at >= $2 AND scored_at < $3";
            let params = [
                Param::Text(model.clone()),
                Param::Int(from.unwrap_or(i64::MIN)),
                Param::Int(to.unwrap_or(i64::MAX)),
            ];
            let table = ("predictions", "prediction_id");
            fetch_packed(
                &pool,
                backend,
                table,
                &PREDICTION_FIELDS,
                (filter, &params),
                &mut predictions,
            )
            .await?;
            tracing::debug!(secs = t.elapsed().as_secs_f64(), "predictions loaded");
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
