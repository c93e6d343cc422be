//! The prediction log: records go through a bounded queue to one background writer that inserts
//! them in batches (one transaction per batch). The HTTP path never waits: when the queue is full
//! a record is dropped and counted. The batch path waits instead (back-pressure), so no record of
//! a file is lost.

use super::insert::{insert_predictions, LogTarget};
use super::record::PredictionRecord;
use super::tx::WriteHealth;
use super::{Backend, StoreError};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most records per transaction for the server: small enough to reach the database within
/// milliseconds under load, large enough that the random pages of `customer_latest` are written
/// once per batch rather than once per record.
pub const SERVER_BATCH: usize = 2_000;

/// Most records per transaction for `churn-score --store`: each commit rewrites every page of
/// `customer_latest` it touched (with 200k customers, nearly all of them), so a bulk load commits
/// rarely (measured on 200k rows: 2,000 per commit wrote 780k pages).
pub const BULK_BATCH: usize = 25_000;

/// How long the writer waits for more records when a batch is not full: a record reaches the
/// database at most this much later, and a light load still writes in batches.
const LINGER: Duration = Duration::from_millis(20);

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
}

/// Handle to the background writer (cheap to share behind an `Arc`).
#[derive(Debug)]
pub struct PredictionLog {
    tx: mpsc::Sender<PredictionRecord>,
    flush: mpsc::UnboundedSender<oneshot::Sender<()>>,
    stats: Arc<LogStats>,
    health: Arc<WriteHealth>,
}

impl PredictionLog {
    /// Spawn the writer on `rt` with a queue of `capacity` records.
    pub(super) fn start(
        rt: &tokio::runtime::Handle,
        target: LogTarget,
        health: Arc<WriteHealth>,
        capacity: usize,
        batch: usize,
    ) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let (flush, flush_rx) = mpsc::unbounded_channel();
        let stats = Arc::new(LogStats::default());
        let w = Writer {
            target,
            stats: stats.clone(),
            health: health.clone(),
        };
        rt.spawn(w.run(rx, flush_rx, batch.max(1)));
        PredictionLog {
            tx,
            flush,
            stats,
            health,
        }
    }

    /// Queue a record without waiting; a full queue drops it (counted). Returns whether it was
    /// queued, so a response never hands out the id of a record that will not be written.
    pub fn try_log(&self, rec: PredictionRecord) -> bool {
        match self.tx.try_send(rec) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                false
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

    /// Whether the store's writes succeed (shared with every other write of the store).
    pub fn health(&self) -> &WriteHealth {
        &self.health
    }
}

/// The background writer: where it inserts, its counters and the store's write health.
struct Writer {
    target: LogTarget,
    stats: Arc<LogStats>,
    health: Arc<WriteHealth>,
}

impl Writer {
    async fn run(
        self,
        mut rx: mpsc::Receiver<PredictionRecord>,
        mut flush_rx: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
        batch: usize,
    ) {
        let mut buf = Vec::with_capacity(batch);
        loop {
            tokio::select! {
                n = rx.recv_many(&mut buf, batch) => {
                    if n == 0 {
                        break;
                    }
                    if n < batch {
                        // a light load: let a few more records arrive, one transaction for all
                        tokio::time::sleep(LINGER).await;
                        while buf.len() < batch {
                            match rx.try_recv() {
                                Ok(r) => buf.push(r),
                                Err(_) => break,
                            }
                        }
                    }
                    self.write(&mut buf).await;
                }
                Some(reply) = flush_rx.recv() => {
                    while let Ok(r) = rx.try_recv() {
                        buf.push(r);
                        if buf.len() >= batch {
                            self.write(&mut buf).await;
                        }
                    }
                    self.write(&mut buf).await;
                    let _ = reply.send(());
                }
            }
        }
    }

    /// Insert `buf` (one retry after a short pause), update the counters and empty it.
    async fn write(&self, buf: &mut Vec<PredictionRecord>) {
        if buf.is_empty() {
            return;
        }
        let n = buf.len() as u64;
        let mut result = insert_predictions(&self.target, buf, &self.health).await;
        if result.is_err() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            result = insert_predictions(&self.target, buf, &self.health).await;
        }
        let lost = match result {
            Ok(()) => 0,
            Err(e) if refused_content(&e, self.target.backend()) => self.bisect(buf).await,
            Err(e) => {
                tracing::error!(records = n, error = %e, "prediction log: insert failed");
                n
            }
        };
        self.stats.queued.fetch_sub(n as i64, Ordering::Relaxed);
        self.stats.written.fetch_add(n - lost, Ordering::Relaxed);
        self.stats.failed.fetch_add(lost, Ordering::Relaxed);
        buf.clear();
    }

    /// A batch the database refused for what it holds: insert each half on its own, down to
    /// single records, so one bad record costs only itself; returns how many were lost.
    async fn bisect(&self, recs: &[PredictionRecord]) -> u64 {
        let mut lost = 0;
        let mut parts = vec![recs];
        while let Some(part) = parts.pop() {
            match insert_predictions(&self.target, part, &self.health).await {
                Ok(()) => {}
                Err(e) if part.len() > 1 && refused_content(&e, self.target.backend()) => {
                    let (a, b) = part.split_at(part.len() / 2);
                    parts.extend([b, a]);
                }
                Err(e) => {
                    tracing::error!(records = part.len(), error = %e, "prediction log: records refused");
                    lost += part.len() as u64;
                }
            }
        }
        lost
    }
}

/// Did the database refuse a write for its content (a value it cannot store, a constraint),
/// rather than for being unavailable or out of space? PostgreSQL: SQLSTATE classes 22 (data
/// exception) and 23 (integrity constraint); SQLite: TOOBIG, CONSTRAINT, MISMATCH.
fn refused_content(e: &StoreError, backend: Backend) -> bool {
    let StoreError::Query(sqlx::Error::Database(d)) = e else {
        return false;
    };
    let Some(code) = d.code() else {
        return false;
    };
    match backend {
        Backend::Postgres => code.starts_with("22") || code.starts_with("23"),
        // the primary result code is the extended code's low byte
        Backend::Sqlite => matches!(code.parse::<i32>().map(|c| c & 0xff), Ok(18..=20)),
    }
}
