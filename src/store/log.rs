//! The prediction log: records go through a bounded queue to one background writer that inserts
//! them in batches (one transaction per batch). The HTTP path never waits: when the queue is full
//! a record is dropped and counted. The batch path waits instead (back-pressure), so no record of
//! a file is lost.

use super::{Backend, StoreError};
use sqlx::AnyPool;
use sqlx::AssertSqlSafe;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Rows per insert statement (23 parameters each: far below both backends' limits).
const BATCH: usize = 500;

/// How long the writer waits for more records when a batch is not full: a record reaches the
/// database at most this much later, and a light load still writes in batches.
const LINGER: Duration = Duration::from_millis(20);

/// Where a prediction came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `POST /v1/score`.
    Http,
    /// `churn-score --store`.
    Batch,
}

impl Source {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Http => "http",
            Source::Batch => "batch",
        }
    }
}

/// One scored customer, as stored.
#[derive(Debug, Clone)]
pub struct PredictionRecord {
    /// UUIDv7, unique and sortable by time.
    pub prediction_id: String,
    /// The request (HTTP) or run (batch) it belongs to.
    pub request_id: String,
    /// Model name.
    pub model: String,
    /// Model version.
    pub model_version: String,
    /// Unix milliseconds.
    pub scored_at: i64,
    /// The customer id, or its keyed hash (`CHURN_ID_KEY`).
    pub customer_key: String,
    /// The raw id when ids are not hashed.
    pub customer_id: Option<String>,
    /// HTTP or batch.
    pub source: Source,
    /// The raw input fields as received (a JSON object).
    pub input: String,
    /// Calibrated churn probability.
    pub probability: f64,
    /// Interval low end.
    pub low: f64,
    /// Interval high end.
    pub high: f64,
    /// At or above the model's threshold.
    pub predicted_churn: bool,
    /// Risk band.
    pub risk_band: Option<&'static str>,
    /// Segment id.
    pub segment_id: Option<i64>,
    /// Segment name.
    pub segment: Option<String>,
    /// RFM class.
    pub rfm_class: Option<&'static str>,
    /// Lifecycle stage.
    pub lifecycle_stage: Option<&'static str>,
    /// Treatment or control.
    pub treatment: Option<&'static str>,
    /// Customer value from the playbook.
    pub customer_value: Option<f64>,
    /// Probability × customer value (the worklist order).
    pub expected_loss: f64,
    /// Best-ranked action.
    pub top_action: Option<String>,
    /// Recommended actions with expected values (JSON array).
    pub recommendations: String,
}

/// Counters of the writer, read by metrics and `/readyz`.
#[derive(Debug, Default)]
pub struct LogStats {
    /// Records written.
    pub written: AtomicU64,
    /// Records dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Records lost to failed inserts.
    pub failed: AtomicU64,
    /// Records waiting in the queue.
    pub queued: AtomicI64,
    /// Did the last insert succeed?
    pub up: AtomicBool,
    /// The last insert error, until an insert succeeds again.
    pub last_error: Mutex<Option<String>>,
}

/// Handle to the background writer (cheap to share behind an `Arc`).
#[derive(Debug)]
pub struct PredictionLog {
    tx: mpsc::Sender<PredictionRecord>,
    flush: mpsc::UnboundedSender<oneshot::Sender<()>>,
    stats: Arc<LogStats>,
}

impl PredictionLog {
    /// Spawn the writer on `rt` with a queue of `capacity` records.
    pub(super) fn start(
        rt: &tokio::runtime::Handle,
        pool: AnyPool,
        backend: Backend,
        capacity: usize,
    ) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let (flush, flush_rx) = mpsc::unbounded_channel();
        let stats = Arc::new(LogStats {
            up: AtomicBool::new(true),
            ..LogStats::default()
        });
        rt.spawn(writer(pool, backend, rx, flush_rx, stats.clone()));
        PredictionLog { tx, flush, stats }
    }

    /// Queue a record without waiting; a full queue drops it (counted).
    pub fn try_log(&self, rec: PredictionRecord) {
        match self.tx.try_send(rec) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Queue a record, waiting while the queue is full (batch scoring: no record is lost).
    /// Must not be called from inside an async runtime.
    pub fn log_blocking(&self, rec: PredictionRecord) {
        if self.tx.blocking_send(rec).is_ok() {
            self.stats.queued.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Write everything queued so far; returns when written or after `timeout`.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let (reply, done) = oneshot::channel();
        if self.flush.send(reply).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(timeout, done).await, Ok(Ok(())))
    }

    /// The writer's counters.
    pub fn stats(&self) -> &LogStats {
        &self.stats
    }
}

async fn writer(
    pool: AnyPool,
    backend: Backend,
    mut rx: mpsc::Receiver<PredictionRecord>,
    mut flush_rx: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
    stats: Arc<LogStats>,
) {
    let mut buf = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut buf, BATCH) => {
                if n == 0 {
                    break;
                }
                if n < BATCH {
                    // a light load: let a few more records arrive, one transaction for all
                    tokio::time::sleep(LINGER).await;
                    while buf.len() < BATCH {
                        match rx.try_recv() {
                            Ok(r) => buf.push(r),
                            Err(_) => break,
                        }
                    }
                }
                write(&pool, backend, &mut buf, &stats).await;
            }
            Some(reply) = flush_rx.recv() => {
                while let Ok(r) = rx.try_recv() {
                    buf.push(r);
                    if buf.len() >= BATCH {
                        write(&pool, backend, &mut buf, &stats).await;
                    }
                }
                write(&pool, backend, &mut buf, &stats).await;
                let _ = reply.send(());
            }
        }
    }
}

/// Insert `buf` (one retry after a short pause), update the counters and empty it.
async fn write(
    pool: &AnyPool,
    backend: Backend,
    buf: &mut Vec<PredictionRecord>,
    stats: &LogStats,
) {
    if buf.is_empty() {
        return;
    }
    let n = buf.len() as u64;
    let mut result = insert_predictions(pool, backend, buf).await;
    if result.is_err() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        result = insert_predictions(pool, backend, buf).await;
    }
    stats.queued.fetch_sub(n as i64, Ordering::Relaxed);
    match result {
        Ok(()) => {
            stats.written.fetch_add(n, Ordering::Relaxed);
            stats.up.store(true, Ordering::Relaxed);
            *stats.last_error.lock().expect("stats lock") = None;
        }
        Err(e) => {
            tracing::error!(records = n, error = %e, "prediction log: insert failed");
            stats.failed.fetch_add(n, Ordering::Relaxed);
            stats.up.store(false, Ordering::Relaxed);
            *stats.last_error.lock().expect("stats lock") = Some(e.to_string());
        }
    }
    buf.clear();
}

/// `($1, $2, …), ($24, …)` for `rows` rows of `cols` parameters on PostgreSQL; anonymous `?` on
/// SQLite, whose parser looks every named parameter up in a list (quadratic in a 10,000-parameter
/// statement: measured at 800 rows/s with `$N`).
pub(super) fn placeholders(rows: usize, cols: usize, backend: Backend) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            match backend {
                Backend::Sqlite => s.push('?'),
                Backend::Postgres => {
                    s.push('$');
                    s.push_str(&(r * cols + c + 1).to_string());
                }
            }
        }
        s.push(')');
    }
    s
}

/// May statements be prepared once and cached? On SQLite yes (its bindings carry their own
/// types). On PostgreSQL no: sqlx 0.9's `Any` driver declares a NULL `f64` as `float4`, and a
/// cached statement would keep that type and refuse a later non-NULL `f64`.
pub(super) fn cacheable(backend: Backend) -> bool {
    backend == Backend::Sqlite
}

/// Insert the records and move each customer's latest prediction, in one transaction.
pub(super) async fn insert_predictions(
    pool: &AnyPool,
    backend: Backend,
    recs: &[PredictionRecord],
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    for chunk in recs.chunks(BATCH) {
        let sql = format!(
            "INSERT INTO predictions (prediction_id, request_id, model, model_version, scored_at, \
             customer_key, customer_id, source, input, probability, probability_low, probability_high, \
             predicted_churn, risk_band, segment_id, segment, rfm_class, lifecycle_stage, treatment, \
             customer_value, expected_loss, top_action, recommendations) VALUES {}",
            placeholders(chunk.len(), 23, backend)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for r in chunk {
            q = q
                .bind(r.prediction_id.clone())
                .bind(r.request_id.clone())
                .bind(r.model.clone())
                .bind(r.model_version.clone())
                .bind(r.scored_at)
                .bind(r.customer_key.clone())
                .bind(r.customer_id.clone())
                .bind(r.source.as_str())
                .bind(r.input.clone())
                .bind(r.probability)
                .bind(r.low)
                .bind(r.high)
                .bind(r.predicted_churn as i64)
                .bind(r.risk_band)
                .bind(r.segment_id)
                .bind(r.segment.clone())
                .bind(r.rfm_class)
                .bind(r.lifecycle_stage)
                .bind(r.treatment)
                .bind(r.customer_value)
                .bind(r.expected_loss)
                .bind(r.top_action.clone())
                .bind(r.recommendations.clone());
        }
        q.persistent(cacheable(backend)).execute(&mut *tx).await?;
        upsert_latest(&mut tx, backend, chunk).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Point `customer_latest` at the newest record of each (customer, model) of `chunk`.
async fn upsert_latest(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    chunk: &[PredictionRecord],
) -> Result<(), StoreError> {
    // one row per key (PostgreSQL refuses to update a row twice in one statement): the newest
    let mut latest: std::collections::BTreeMap<(&str, &str), &PredictionRecord> =
        std::collections::BTreeMap::new();
    for r in chunk {
        let e = latest.entry((&r.customer_key, &r.model)).or_insert(r);
        if (r.scored_at, &r.prediction_id) > (e.scored_at, &e.prediction_id) {
            *e = r;
        }
    }
    let sql = format!(
        "INSERT INTO customer_latest (customer_key, model, prediction_id, scored_at, expected_loss, \
         risk_band, segment, treatment) VALUES {} \
         ON CONFLICT (customer_key, model) DO UPDATE SET prediction_id = excluded.prediction_id, \
         scored_at = excluded.scored_at, expected_loss = excluded.expected_loss, \
         risk_band = excluded.risk_band, segment = excluded.segment, treatment = excluded.treatment \
         WHERE excluded.scored_at > customer_latest.scored_at \
         OR (excluded.scored_at = customer_latest.scored_at \
             AND excluded.prediction_id > customer_latest.prediction_id)",
        placeholders(latest.len(), 8, backend)
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for r in latest.values() {
        q = q
            .bind(r.customer_key.clone())
            .bind(r.model.clone())
            .bind(r.prediction_id.clone())
            .bind(r.scored_at)
            .bind(r.expected_loss)
            .bind(r.risk_band)
            .bind(r.segment.clone())
            .bind(r.treatment);
    }
    q.persistent(cacheable(backend)).execute(&mut **tx).await?;
    Ok(())
}

/// A new UUIDv7 (unique, sortable by creation time).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// What every record of one request (or batch run) shares.
#[derive(Debug, Clone)]
pub struct RecordContext<'a> {
    /// Request (HTTP) or run (batch) id.
    pub request_id: String,
    /// Model name.
    pub model: &'a str,
    /// Model version.
    pub model_version: &'a str,
    /// Unix milliseconds.
    pub scored_at: i64,
    /// HTTP or batch.
    pub source: Source,
    /// How customer ids become keys.
    pub ids: &'a super::IdKey,
    /// The input field holding the customer id (dropped from the stored input when ids are
    /// hashed, so the store holds no raw id).
    pub id_field: Option<&'a str>,
}

/// With hashed ids, the stored input loses the id fields (the model's id column and
/// `customer_id`); otherwise it is kept as received.
fn without_raw_id(ctx: &RecordContext<'_>, input: String) -> String {
    if !ctx.ids.hashes() {
        return input;
    }
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&input) {
        Ok(mut m) => {
            for k in ctx.id_field.into_iter().chain(["customer_id"]) {
                m.remove(k);
            }
            serde_json::Value::Object(m).to_string()
        }
        Err(_) => "{}".into(),
    }
}

impl PredictionRecord {
    /// The record of one scored customer (`input`: the raw fields as a JSON object). The same
    /// function serves HTTP and batch scoring.
    pub fn new(
        ctx: &RecordContext<'_>,
        customer_id: &str,
        input: String,
        s: &crate::scoring::Scored<'_>,
    ) -> PredictionRecord {
        let p = &s.prediction;
        let advice = s.advice.as_ref();
        let seg = s.segment.as_ref();
        let value = advice.map(|a| a.value);
        let recs = advice.map(|a| a.recommendations.as_slice()).unwrap_or(&[]);
        PredictionRecord {
            prediction_id: new_id(),
            request_id: ctx.request_id.clone(),
            model: ctx.model.to_string(),
            model_version: ctx.model_version.to_string(),
            scored_at: ctx.scored_at,
            customer_key: ctx.ids.key_of(customer_id),
            customer_id: (!ctx.ids.hashes()).then(|| customer_id.to_string()),
            source: ctx.source,
            input: without_raw_id(ctx, input),
            probability: p.probability,
            low: p.low,
            high: p.high,
            predicted_churn: p.churn,
            risk_band: advice.map(|a| a.risk_band.as_str()),
            segment_id: seg.map(|a| i64::from(a.segment_id)),
            segment: seg.map(|a| a.segment.to_string()),
            rfm_class: seg.and_then(|a| a.rfm_class).map(|c| c.as_str()),
            lifecycle_stage: seg.and_then(|a| a.lifecycle_stage).map(|c| c.as_str()),
            treatment: advice.map(|a| a.treatment.as_str()),
            customer_value: value,
            expected_loss: p.probability * value.unwrap_or(1.0),
            top_action: recs.first().map(|r| r.action.to_string()),
            recommendations: super::recommendations_json(
                recs.iter().map(|r| (r.action, r.expected_value)),
            ),
        }
    }
}
