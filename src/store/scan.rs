//! Streaming reads of the log for the evaluation: one model's predictions in a period, the
//! outcomes, and the inputs of the most recent predictions. Rows are read in packed pages (a few
//! hundred texts for a million rows) and handed one at a time to the caller, borrowing their text
//! from the page, so the reader keeps only what it needs; the evaluation builds its own data from
//! them (`evaluate::load`).

use super::insert::Col;
use super::{Backend, OutcomeEvent, Store, StoreError};
use crate::playbook::Treatment;
use sqlx::{AssertSqlSafe, Row};
use std::borrow::Cow;

/// One stored prediction as the evaluation reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoggedPrediction<'a> {
    /// Prediction id.
    pub id: &'a str,
    /// Model version that scored it.
    pub version: &'a str,
    /// Unix milliseconds.
    pub scored_at: i64,
    /// Customer key (the id or its keyed hash).
    pub customer: &'a str,
    /// Calibrated probability.
    pub probability: f64,
    /// Segment name.
    pub segment: Option<&'a str>,
    /// Treatment or control (models with a playbook).
    pub treatment: Option<Treatment>,
    /// Best-ranked action.
    pub top_action: Option<&'a str>,
    /// Control group: the action the customer would have been offered.
    pub held_out: Option<&'a str>,
    /// Customer value.
    pub value: Option<f64>,
    /// The contact decision.
    pub contact: Option<bool>,
    /// The probability the top (or held-out) action had of being chosen.
    pub propensity: Option<f64>,
}

/// One stored outcome event as the evaluation reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoggedOutcome<'a> {
    /// Customer key.
    pub customer: &'a str,
    /// The event.
    pub event: OutcomeEvent,
    /// Unix milliseconds.
    pub at: i64,
    /// The prediction it answers, if named.
    pub prediction_id: Option<&'a str>,
    /// Action id (`action_taken`).
    pub action: Option<&'a str>,
    /// Cost of the action.
    pub cost: Option<f64>,
    /// Purchase amount.
    pub amount: Option<f64>,
    /// Survey score.
    pub score: Option<i64>,
    /// The sender's id of a survey answer (other events: `None`, not read).
    pub external_id: Option<&'a str>,
}

/// The raw input of a recent prediction (drift reads these).
#[derive(Debug, Clone, PartialEq)]
pub struct RecentInput {
    /// The raw input as stored (a JSON object).
    pub input: String,
    /// Calibrated probability.
    pub probability: f64,
    /// Segment name.
    pub segment: Option<String>,
}

/// Which outcome events a scan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Events {
    /// `churned` and `action_taken` (labels and treatment arms).
    LabelsAndActions,
    /// Every event (KPIs).
    All,
}

impl Events {
    /// The `WHERE` clause selecting these events.
    fn filter(self) -> String {
        match self {
            Events::All => "WHERE true".into(),
            Events::LabelsAndActions => format!(
                "WHERE event IN ('{}', '{}')",
                OutcomeEvent::Churned.as_str(),
                OutcomeEvent::ActionTaken.as_str()
            ),
        }
    }
}

/// A cheap handle for scans inside one [`Store::run`] (the pool and its backend).
#[derive(Debug, Clone)]
pub struct LogReader {
    pool: sqlx::AnyPool,
    backend: Backend,
}

impl Store {
    /// A reader over this store's log, for a scan that runs inside [`Store::run`].
    pub fn reader(&self) -> LogReader {
        LogReader {
            pool: self.pool(),
            backend: self.backend(),
        }
    }

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
}

impl LogReader {
    /// Every outcome event selected by `events`, in no particular order, to `take`; events of an
    /// unknown kind are skipped.
    pub async fn outcomes(
        &self,
        events: Events,
        take: &mut (dyn FnMut(LoggedOutcome<'_>) + Send),
    ) -> Result<(), StoreError> {
        let mut page = |text: &str| -> Result<(), StoreError> {
            for o in unpack::<PackedOutcome>(text)? {
                let Some(event) = OutcomeEvent::from_name(&o.event) else {
                    continue;
                };
                take(LoggedOutcome {
                    customer: &o.customer,
                    event,
                    at: o.at,
                    prediction_id: o.prediction_id.as_deref(),
                    action: o.action.as_deref(),
                    cost: o.cost,
                    amount: o.amount,
                    score: o.score,
                    external_id: o.external_id.as_deref(),
                });
            }
            Ok(())
        };
        let filter = events.filter();
        let table = ("outcomes", "outcome_id");
        fetch_packed(
            &self.pool,
            self.backend,
            table,
            &OUTCOME_FIELDS,
            (&filter, &[]),
            &mut page,
        )
        .await
    }

    /// The predictions of `model` scored in `[from, to)`, in no particular order, to `take`.
    pub async fn predictions(
        &self,
        model: &str,
        (from, to): (Option<i64>, Option<i64>),
        take: &mut (dyn FnMut(LoggedPrediction<'_>) + Send),
    ) -> Result<(), StoreError> {
        let mut page = |text: &str| -> Result<(), StoreError> {
            for p in unpack::<PackedPrediction>(text)? {
                take(LoggedPrediction {
                    id: &p.id,
                    version: &p.version,
                    scored_at: p.scored_at,
                    customer: &p.customer,
                    probability: p.probability,
                    segment: p.segment.as_deref(),
                    treatment: p.treatment.as_deref().map(|t| {
                        if t == Treatment::Control.as_str() {
                            Treatment::Control
                        } else {
                            Treatment::Treatment
                        }
                    }),
                    top_action: p.top_action.as_deref(),
                    held_out: p.held_out.as_deref(),
                    value: p.value,
                    contact: p.contact.map(|c| c != 0),
                    propensity: p.propensity,
                });
            }
            Ok(())
        };
        let (filter, params) = model_period(model, (from, to));
        let table = ("predictions", "prediction_id");
        fetch_packed(
            &self.pool,
            self.backend,
            table,
            &PREDICTION_FIELDS,
            (filter, &params),
            &mut page,
        )
        .await
    }

    /// The stored input of every prediction of `model` scored in `[from, to)`, in no particular
    /// order, to `take` (customer key, scored at, input as stored).
    pub async fn inputs(
        &self,
        model: &str,
        (from, to): (Option<i64>, Option<i64>),
        take: &mut (dyn FnMut(&str, i64, &str) + Send),
    ) -> Result<(), StoreError> {
        let mut page = |text: &str| -> Result<(), StoreError> {
            for (customer, at, input) in unpack::<(Cow<'_, str>, i64, Cow<'_, str>)>(text)? {
                take(&customer, at, &input);
            }
            Ok(())
        };
        let (filter, params) = model_period(model, (from, to));
        let fields = [
            ("customer_key", Col::Text),
            ("scored_at", Col::Int),
            ("input", Col::Text),
        ];
        fetch_packed(
            &self.pool,
            self.backend,
            ("predictions", "prediction_id"),
            &fields,
            (filter, &params),
            &mut page,
        )
        .await
    }

    /// The inputs of the `limit` most recent predictions of `model` scored in `[from, to)`,
    /// newest first.
    pub async fn recent_inputs(
        &self,
        model: &str,
        (from, to): (Option<i64>, Option<i64>),
        limit: usize,
    ) -> Result<Vec<RecentInput>, StoreError> {
        let rows = sqlx::query(
            "SELECT input, probability, segment FROM predictions \
             WHERE model = $1 AND scored_at >= $2 AND scored_at < $3 \
             ORDER BY scored_at DESC, prediction_id DESC LIMIT $4",
        )
        .bind(model.to_string())
        .bind(from.unwrap_or(i64::MIN))
        .bind(to.unwrap_or(i64::MAX))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RecentInput {
                    input: r.try_get(0)?,
                    probability: r.try_get(1)?,
                    segment: r.try_get(2)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

/// The prediction fields the evaluation reads, in tuple order.
const PREDICTION_FIELDS: [(&str, Col); 12] = [
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
    ("propensity", Col::Real),
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
    propensity: Option<f64>,
}

/// The outcome fields the evaluation reads, in tuple order.
const OUTCOME_FIELDS: [(&str, Col); 9] = [
    ("customer_key", Col::Text),
    ("event", Col::Text),
    ("at", Col::Int),
    ("prediction_id", Col::Text),
    ("action", Col::Text),
    ("cost", Col::Real),
    ("amount", Col::Real),
    ("score", Col::Int),
    // only a survey's: it breaks ties between answers at one instant (NPS)
    ("CASE WHEN event = 'survey' THEN external_id END", Col::Text),
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
    #[serde(borrow)]
    external_id: Option<Cow<'a, str>>,
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
            // two ranges in flight on two connections of their own (WAL: readers never block
            // each other), while this thread parses the previous one
            let mut starts = (0..)
                .map(|k: i64| lo.saturating_add(k.saturating_mul(PACK_ROWS)))
                .take_while(|&st| st <= hi);
            let fetch = |mut conn: sqlx::AnyConnection, st: i64| {
                let q = bind(sql.clone())
                    .bind(st)
                    .bind(st.saturating_add(PACK_ROWS))
                    .persistent(true);
                async move {
                    let r = q.fetch_one(&mut conn).await;
                    (conn, r)
                }
            };
            let mut packs = futures_util::stream::FuturesOrdered::new();
            let mut spare = Vec::with_capacity(SCAN_CONNECTIONS);
            // a free connection reads the next range, or waits to be closed when none is left
            let mut next =
                |conn, packs: &mut futures_util::stream::FuturesOrdered<_>| match starts.next() {
                    Some(st) => packs.push_back(fetch(conn, st)),
                    None => spare.push(conn),
                };
            for _ in 0..SCAN_CONNECTIONS {
                next(scan_connection(pool).await?, &mut packs);
            }
            while let Some((conn, r)) = futures_util::StreamExt::next(&mut packs).await {
                let text = r?.try_get::<Option<String>, _>(0)?;
                next(conn, &mut packs);
                if let Some(t) = text {
                    take(&t)?;
                }
            }
            for conn in spare {
                // closed, not returned: their page cache goes with them
                let _ = sqlx::Connection::close(conn).await;
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

/// Connections a SQLite scan reads on (two ranges in flight).
const SCAN_CONNECTIONS: usize = 2;

/// A connection for one SQLite scan, taken out of the pool and closed when the scan ends, with a
/// small page cache: a pooled connection's 64 MiB cache speeds up bulk writes, but a scan
/// that reads every page once filled it on each connection it ran on and kept it (250 MB of
/// the evaluation's peak over 1M predictions: 885 MB with pooled connections, 612 MB with these).
async fn scan_connection(pool: &sqlx::AnyPool) -> Result<sqlx::AnyConnection, StoreError> {
    use sqlx::Executor;
    let mut conn = pool.acquire().await?.detach();
    conn.execute("PRAGMA cache_size=-2048").await?;
    Ok(conn)
}

/// The filter of one model's predictions scored in `[from, to)` and its parameters.
fn model_period(model: &str, (from, to): (Option<i64>, Option<i64>)) -> (&'static str, [Param; 3]) {
    (
        "WHERE model = $1 AND scored_at >= $2 AND scored_at < $3",
        [
            Param::Text(model.to_string()),
            Param::Int(from.unwrap_or(i64::MIN)),
            Param::Int(to.unwrap_or(i64::MAX)),
        ],
    )
}

/// A bound parameter of [`fetch_packed`].
enum Param {
    Text(String),
    Int(i64),
}

fn packed_error(e: serde_json::Error) -> StoreError {
    StoreError::Runtime(format!("unreadable packed rows: {e}"))
}
