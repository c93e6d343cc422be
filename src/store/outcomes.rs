//! Outcome events (churned, retained, action taken, purchase, survey): validation shared by the
//! HTTP endpoint and the file import, and the all-or-nothing, idempotent insert.

use super::record::new_id;
use super::tx::{write_transaction, WriteHealth};
use super::{IdKey, StoreError};
use crate::time::now_ms;
use sqlx::AnyPool;
use std::collections::BTreeSet;

/// Timestamps may lie this far in the future (clock skew between systems).
const FUTURE_SLACK_MS: i64 = 5 * 60 * 1000;

crate::util::text_enum! {
    /// What happened to a customer.
    pub enum OutcomeEvent {
        /// The customer left.
        Churned = "churned",
        /// The customer is known to have stayed.
        Retained = "retained",
        /// A retention action was taken (`action` names it).
        ActionTaken = "action_taken",
        /// A purchase (`amount`).
        Purchase = "purchase",
        /// A survey answer (`score` 0–10, for NPS).
        Survey = "survey",
    }
}

/// An event as received, before validation (fields already typed by the front end).
#[derive(Debug, Clone, Default)]
pub struct RawOutcome {
    /// Customer id.
    pub customer_id: Option<String>,
    /// Event name.
    pub event: Option<String>,
    /// When it happened (ISO-8601).
    pub at: Option<String>,
    /// The prediction it answers.
    pub prediction_id: Option<String>,
    /// Action id (for `action_taken`).
    pub action: Option<String>,
    /// Cost of the action.
    pub cost: Option<f64>,
    /// Purchase amount.
    pub amount: Option<f64>,
    /// Survey score.
    pub score: Option<f64>,
    /// Sender's id of the event (idempotency key).
    pub external_id: Option<String>,
}

/// A validated event.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidOutcome {
    /// Customer id (raw; keyed when stored).
    pub customer_id: String,
    /// Event.
    pub event: OutcomeEvent,
    /// Unix milliseconds.
    pub at: i64,
    /// The prediction it answers.
    pub prediction_id: Option<String>,
    /// Action id.
    pub action: Option<String>,
    /// Cost.
    pub cost: Option<f64>,
    /// Amount.
    pub amount: Option<f64>,
    /// Survey score 0–10.
    pub score: Option<i64>,
    /// Idempotency key.
    pub external_id: Option<String>,
}

/// Why an event is invalid: the field and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct OutcomeError {
    /// The field at fault (`at`, `score`, …).
    pub field: &'static str,
    /// Whether the field is absent (rather than wrong).
    pub missing: bool,
    /// What is wrong.
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> OutcomeError {
    OutcomeError {
        field,
        missing: false,
        message: message.into(),
    }
}

fn missing(field: &'static str, message: impl Into<String>) -> OutcomeError {
    OutcomeError {
        field,
        missing: true,
        message: message.into(),
    }
}

/// An optional short text under [`super::check_text`] with limit `max`.
fn short_text(
    field: &'static str,
    v: &Option<String>,
    max: usize,
) -> Result<Option<String>, OutcomeError> {
    if let Some(s) = v {
        super::check_text(s, max).map_err(|e| invalid(field, e.to_string()))?;
    }
    Ok(v.clone())
}

/// A number within the bound every numeric input has (±1e15, as the CLI's file reader): a
/// purchase of 1e308 would turn every revenue KPI into infinity.
fn finite(field: &'static str, v: Option<f64>) -> Result<Option<f64>, OutcomeError> {
    match v {
        Some(x) if !crate::ingest::value::number_in_range(x) => Err(invalid(
            field,
            format!("must be {}", crate::ingest::value::NUMBER_EXPECTED),
        )),
        other => Ok(other),
    }
}

impl RawOutcome {
    /// Check every field; `actions` are the action ids an event may name (`None`: not checked),
    /// `now` the current time (Unix ms) for the future check.
    pub fn validate(
        &self,
        actions: Option<&BTreeSet<String>>,
        now: i64,
    ) -> Result<ValidOutcome, OutcomeError> {
        // the one id rule (the limit of scoring and lookups)
        let customer_id = short_text("customer_id", &self.customer_id, super::MAX_ID_BYTES)?
            .ok_or_else(|| missing("customer_id", "required"))?;
        let name = self.event.as_deref().ok_or_else(|| {
            missing(
                "event",
                format!("required: one of {}", OutcomeEvent::NAMES.join(", ")),
            )
        })?;
        let event = OutcomeEvent::from_name(name.trim()).ok_or_else(|| {
            invalid(
                "event",
                format!(
                    "unknown event '{}': one of {}",
                    crate::util::excerpt(name),
                    OutcomeEvent::NAMES.join(", ")
                ),
            )
        })?;
        let at = self.instant(now)?;
        let action = short_text("action", &self.action, 128)?;
        if let (Some(a), Some(known)) = (&action, actions) {
            if !known.contains(a) {
                return Err(invalid(
                    "action",
                    format!("unknown action id '{}'", crate::util::excerpt(a)),
                ));
            }
        }
        let cost = finite("cost", self.cost)?;
        if cost.is_some_and(|c| c < 0.0) {
            return Err(invalid("cost", "must be ≥ 0"));
        }
        let score = self.survey_score()?;
        let amount = finite("amount", self.amount)?;
        match event {
            OutcomeEvent::ActionTaken if action.is_none() => {
                return Err(missing("action", "required for action_taken"))
            }
            OutcomeEvent::Purchase if amount.is_none() => {
                return Err(missing("amount", "required for purchase"))
            }
            OutcomeEvent::Survey if score.is_none() => {
                return Err(missing("score", "required for survey (0 to 10)"))
            }
            _ => {}
        }
        Ok(ValidOutcome {
            customer_id,
            event,
            at,
            prediction_id: short_text("prediction_id", &self.prediction_id, 64)?,
            action,
            cost,
            amount,
            score,
            external_id: short_text("external_id", &self.external_id, 200)?,
        })
    }

    fn instant(&self, now: i64) -> Result<i64, OutcomeError> {
        let text = self
            .at
            .as_deref()
            .ok_or_else(|| missing("at", "required (ISO-8601, e.g. 2026-11-01T10:00:00Z)"))?;
        let at = crate::time::parse(text).ok_or_else(|| {
            invalid(
                "at",
                format!(
                    "'{}' is not an ISO-8601 time (e.g. 2026-11-01T10:00:00Z or 2026-11-01)",
                    crate::util::excerpt(text)
                ),
            )
        })?;
        if at > now + FUTURE_SLACK_MS {
            return Err(invalid(
                "at",
                format!("'{}' is in the future", crate::util::excerpt(text)),
            ));
        }
        Ok(at)
    }

    fn survey_score(&self) -> Result<Option<i64>, OutcomeError> {
        match self.score {
            None => Ok(None),
            Some(s) if s.fract() == 0.0 && (0.0..=10.0).contains(&s) => Ok(Some(s as i64)),
            Some(s) => Err(invalid(
                "score",
                format!("must be a whole number from 0 to 10, got {s}"),
            )),
        }
    }
}

/// The outcome columns a file may have (the JSON field names).
pub const OUTCOME_COLUMNS: [&str; 9] = [
    "customer_id",
    "event",
    "at",
    "prediction_id",
    "action",
    "cost",
    "amount",
    "score",
    "external_id",
];

/// A file's rows as raw events; a cell that should be a number and is not is an error naming
/// the column. Columns other than [`OUTCOME_COLUMNS`] are refused up front.
pub fn raw_outcomes_of(
    table: &crate::io::RawTable,
) -> Result<Vec<Result<RawOutcome, OutcomeError>>, String> {
    if let Some(c) = table
        .columns
        .iter()
        .find(|c| !OUTCOME_COLUMNS.contains(&c.name.as_str()))
    {
        return Err(format!(
            "unknown column '{}'; outcome files have: {}",
            c.name,
            OUTCOME_COLUMNS.join(", ")
        ));
    }
    let col = |name: &str| table.index_of(name);
    let idx: Vec<Option<usize>> = OUTCOME_COLUMNS.iter().map(|n| col(n)).collect();
    Ok((0..table.nrows)
        .map(|r| raw_outcome_row(table, &idx, r))
        .collect())
}

fn raw_outcome_row(
    table: &crate::io::RawTable,
    idx: &[Option<usize>],
    r: usize,
) -> Result<RawOutcome, OutcomeError> {
    use crate::io::RawValue;
    let text = |k: usize| {
        idx[k]
            .and_then(|i| table.columns[i].data.get(r).to_text())
            .filter(|t| !crate::ingest::value::is_missing_token(t))
    };
    let number = |k: usize, field: &'static str| -> Result<Option<f64>, OutcomeError> {
        match idx[k].map(|i| table.columns[i].data.get(r)) {
            None | Some(RawValue::Missing) => Ok(None),
            Some(RawValue::Number(x)) => Ok(Some(x)),
            Some(RawValue::Bool(_)) => Err(invalid(field, "expected a number")),
            Some(RawValue::Text(t)) if crate::ingest::value::is_missing_token(t) => Ok(None),
            Some(RawValue::Text(t)) => crate::ingest::value::parse_number(t)
                .map(Some)
                .ok_or_else(|| invalid(field, format!("expected a number, found '{t}'"))),
        }
    };
    Ok(RawOutcome {
        customer_id: text(0),
        event: text(1),
        at: text(2),
        prediction_id: text(3),
        action: text(4),
        cost: number(5, "cost")?,
        amount: number(6, "amount")?,
        score: number(7, "score")?,
        external_id: text(8),
    })
}

/// An invalid row of a file: (0-based row, "column FIELD: problem").
pub type RowError = (usize, String);

/// A file's events, validated: the valid ones and, per invalid row, (0-based row,
/// "column FIELD: problem"). An unknown column is an error for the whole file.
pub fn validate_table(
    table: &crate::io::RawTable,
    actions: Option<&BTreeSet<String>>,
    now: i64,
) -> Result<(Vec<ValidOutcome>, Vec<RowError>), String> {
    let mut valid = Vec::new();
    let mut bad = Vec::new();
    for (r, row) in raw_outcomes_of(table)?.into_iter().enumerate() {
        match row.and_then(|raw| raw.validate(actions, now)) {
            Ok(v) => valid.push(v),
            Err(e) => bad.push((r, format!("column {}: {}", e.field, e.message))),
        }
    }
    Ok((valid, bad))
}

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct OutcomeReport {
    /// Events stored.
    pub stored: u64,
    /// Events already stored (same `external_id`), skipped.
    pub duplicates: u64,
}

/// `(…)` of row `r` with `width` parameters: `?` on SQLite (its parser looks every named
/// parameter up in a list, quadratic in a 5,000-parameter statement: 77% of an import's time
/// with `$N`), `$N` on PostgreSQL.
fn row_params(backend: super::Backend, r: usize, width: usize) -> String {
    let p: Vec<String> = (1..=width)
        .map(|c| match backend {
            super::Backend::Sqlite => "?".to_string(),
            super::Backend::Postgres => format!("${}", r * width + c),
        })
        .collect();
    format!("({})", p.join(", "))
}

/// `INSERT INTO outcomes … VALUES (…), (…) ON CONFLICT (external_id) DO NOTHING RETURNING …` for
/// `rows` events: what was stored comes back, so duplicates are known without a second query.
fn insert_outcomes_sql(backend: super::Backend, rows: usize) -> String {
    let values: Vec<String> = (0..rows).map(|r| row_params(backend, r, 11)).collect();
    format!(
        "INSERT INTO outcomes (outcome_id, customer_key, event, at, prediction_id, action, cost, \
         amount, score, external_id, received_at) VALUES {} \
         ON CONFLICT (external_id) DO NOTHING RETURNING customer_key, event, at",
        values.join(", ")
    )
}

/// Store validated events in one transaction (all or nothing, see [`write_transaction`]); an
/// event whose `external_id` is already stored is skipped and counted as a duplicate. Events go
/// in multi-row statements (one statement per event cost ~70 µs of driver round trips each: 160k
/// events took 20 s on SQLite); each customer's latest outcome moves once, at the end.
///
/// Every batch takes its row locks in one canonical order (customer key, then idempotency key),
/// so two batches that share customers or external ids wait for each other instead of
/// deadlocking on PostgreSQL; a deadlock or serialization failure that still happens (ids
/// reused across customers) is retried with the whole transaction.
pub(super) async fn insert_outcomes(
    pool: &AnyPool,
    backend: super::Backend,
    ids: &IdKey,
    health: &WriteHealth,
    events: &[ValidOutcome],
) -> Result<OutcomeReport, StoreError> {
    let received = now_ms();
    let mut keyed: Vec<(String, &ValidOutcome)> = events
        .iter()
        .map(|e| (ids.key_of(&e.customer_id), e))
        .collect();
    keyed.sort_by(|(a, x), (b, y)| (a, &x.external_id).cmp(&(b, &y.external_id)));
    let mut attempt = 0u32;
    loop {
        let result = write_transaction(pool, health, async |tx| {
            insert_sorted(tx, backend, &keyed, received).await
        })
        .await;
        match result {
            Err(e) if attempt < 4 && must_retry(&e) => {
                attempt += 1;
                tracing::debug!(attempt, error = %e, "outcomes: transaction retried");
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
            }
            r => return r,
        }
    }
}

/// Did PostgreSQL abort the transaction to break a deadlock or a serialization conflict?
fn must_retry(e: &StoreError) -> bool {
    matches!(e, StoreError::Query(sqlx::Error::Database(d))
        if matches!(d.code().as_deref(), Some("40P01" | "40001")))
}

/// The inserts of [`insert_outcomes`] inside its transaction; `keyed` is in canonical order.
async fn insert_sorted(
    tx: &mut sqlx::AnyConnection,
    backend: super::Backend,
    keyed: &[(String, &ValidOutcome)],
    received: i64,
) -> Result<OutcomeReport, StoreError> {
    use sqlx::Row;
    let mut stored = 0u64;
    // each customer's latest stored event (PostgreSQL refuses to update a row twice in one
    // statement); a BTreeMap, so the upserts too run in key order
    let mut latest: std::collections::BTreeMap<String, (i64, String)> = Default::default();
    // the prediction log's power-of-two chunks (at most 512 events, 11 parameters each): few
    // distinct statement texts, each prepared once on SQLite
    let mut rest = keyed;
    for size in super::insert::sqlite_chunks(keyed.len()) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let sql = insert_outcomes_sql(backend, size);
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (key, e) in chunk {
            q = q
                .bind(new_id())
                .bind(key.clone())
                .bind(e.event.as_str())
                .bind(e.at)
                .bind(e.prediction_id.clone())
                .bind(e.action.clone())
                .bind(e.cost)
                .bind(e.amount)
                .bind(e.score)
                .bind(e.external_id.clone())
                .bind(received);
        }
        let rows = q
            .persistent(super::insert::cacheable(backend))
            .fetch_all(&mut *tx)
            .await?;
        stored += rows.len() as u64;
        for r in &rows {
            let (key, event, at): (String, String, i64) =
                (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            match latest.get(&key) {
                Some((t, _)) if *t > at => {}
                _ => {
                    latest.insert(key, (at, event));
                }
            }
        }
    }
    for part in latest
        .into_iter()
        .collect::<Vec<_>>()
        .chunks(super::insert::SQLITE_ROWS)
    {
        let values: Vec<String> = (0..part.len()).map(|r| row_params(backend, r, 3)).collect();
        let sql = format!(
            "INSERT INTO customer_last_outcome (customer_key, event, at) VALUES {} \
             ON CONFLICT (customer_key) DO UPDATE SET event = excluded.event, at = excluded.at \
             WHERE excluded.at >= customer_last_outcome.at",
            values.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (key, (at, event)) in part {
            q = q.bind(key.clone()).bind(event.clone()).bind(*at);
        }
        q.persistent(false).execute(&mut *tx).await?;
    }
    Ok(OutcomeReport {
        stored,
        duplicates: keyed.len() as u64 - stored,
    })
}

impl super::Store {
    /// Store validated events (see [`OutcomeReport`]).
    pub async fn record_outcomes(
        &self,
        events: Vec<ValidOutcome>,
    ) -> Result<OutcomeReport, StoreError> {
        let (pool, backend) = (self.pool(), self.backend());
        let ids = self.ids().clone();
        let health = self.health_handle();
        self.run(async move { insert_outcomes(&pool, backend, &ids, &health, &events).await })
            .await
    }

    /// The first event of `events` dated more than `slack_ms` before its customer's first stored
    /// prediction (any model): `(index, that first prediction's time)`. Customers without a
    /// stored prediction are not checked (outcomes may arrive before scoring starts). An event
    /// from long before the customer was ever scored is history, not feedback: a `churned`
    /// event dated 1900 would otherwise hide a customer from the worklist for ever.
    pub async fn backdated(
        &self,
        events: &[ValidOutcome],
        slack_ms: i64,
    ) -> Result<Option<(usize, i64)>, StoreError> {
        let keys: Vec<String> = events
            .iter()
            .map(|e| self.ids().key_of(&e.customer_id))
            .collect();
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        let pool = self.pool();
        let first: crate::util::FxHashMap<String, i64> = self
            .run(async move {
                let mut out = crate::util::FxHashMap::default();
                for chunk in unique.chunks(200) {
                    let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
                    let sql = format!(
                        "SELECT customer_key, MIN(scored_at) FROM predictions \
                         WHERE customer_key IN ({}) GROUP BY customer_key",
                        marks.join(", ")
                    );
                    let mut q = sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql));
                    for k in chunk {
                        q = q.bind(k.clone());
                    }
                    out.extend(q.fetch_all(&pool).await?);
                }
                Ok::<_, StoreError>(out)
            })
            .await?;
        Ok(events
            .iter()
            .zip(&keys)
            .enumerate()
            .find_map(|(i, (e, k))| {
                first
                    .get(k)
                    .filter(|&&f| e.at < f - slack_ms)
                    .map(|&f| (i, f))
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_with_offsets_and_dates() {
        let z = crate::time::parse("2026-11-01T10:00:00Z").unwrap();
        assert_eq!(crate::time::parse("2026-11-01T12:00:00+02:00"), Some(z));
        assert_eq!(crate::time::parse("2026-11-01T05:00:00-05:00"), Some(z));
        assert_eq!(crate::time::parse("2026-11-01T10:00:00"), Some(z));
        assert_eq!(crate::time::parse("2026-11-01"), Some(z - 10 * 3600 * 1000));
        assert_eq!(crate::time::parse("yesterday"), None);
        assert_eq!(crate::time::parse("2026-13-01"), None);
    }

    #[test]
    fn validation_names_the_field() {
        let actions: BTreeSet<String> = ["WINBACK_EMAIL".to_string()].into();
        let now = crate::time::parse("2026-11-30T00:00:00Z").unwrap();
        let ok = RawOutcome {
            customer_id: Some("c1".into()),
            event: Some("survey".into()),
            at: Some("2026-11-01".into()),
            score: Some(9.0),
            ..Default::default()
        };
        assert_eq!(ok.validate(Some(&actions), now).unwrap().score, Some(9));
        let field = |r: RawOutcome| r.validate(Some(&actions), now).unwrap_err().field;
        assert_eq!(
            field(RawOutcome {
                score: Some(11.0),
                ..ok.clone()
            }),
            "score"
        );
        assert_eq!(
            field(RawOutcome {
                score: None,
                ..ok.clone()
            }),
            "score"
        );
        assert_eq!(
            field(RawOutcome {
                at: Some("2027-01-01".into()),
                ..ok.clone()
            }),
            "at"
        );
        assert_eq!(
            field(RawOutcome {
                event: Some("left".into()),
                ..ok.clone()
            }),
            "event"
        );
        assert_eq!(
            field(RawOutcome {
                customer_id: None,
                ..ok.clone()
            }),
            "customer_id"
        );
        let taken = RawOutcome {
            event: Some("action_taken".into()),
            action: Some("NOPE".into()),
            ..ok.clone()
        };
        assert_eq!(field(taken.clone()), "action");
        assert!(RawOutcome {
            action: Some("WINBACK_EMAIL".into()),
            ..taken
        }
        .validate(Some(&actions), now)
        .is_ok());
    }
}
