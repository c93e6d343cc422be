//! Write transactions that either commit or leave nothing behind, and the store's write health.
//!
//! After a failed `COMMIT` (a full disk, an I/O error) SQLite may keep the transaction open, and
//! sqlx then thinks the connection is still inside it: the next "transaction" on that connection
//! becomes a savepoint of the dead one, is confirmed to its caller, and is never written, while
//! the open transaction holds the write lock against every other connection. So a connection
//! whose write failed is never handed on: it is closed, and the pool opens a fresh one.

use super::StoreError;
use sqlx::{Acquire, Database, Pool};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Run `work` in one transaction on a connection of its own: the result is returned only after
/// `COMMIT` succeeded. On any error the transaction is abandoned and the connection closed
/// instead of returned to the pool. Every outcome is reported to `health`.
pub(super) async fn write_transaction<DB: Database, T>(
    pool: &Pool<DB>,
    health: &WriteHealth,
    work: impl AsyncFnOnce(&mut DB::Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let result = async {
        let mut conn = pool.acquire().await?;
        let done = async {
            let mut tx = (&mut conn).begin().await?;
            let v = work(&mut tx).await?;
            tx.commit().await?;
            Ok::<T, StoreError>(v)
        }
        .await;
        if done.is_err() {
            conn.close_on_drop();
        }
        done
    }
    .await;
    health.record(&result);
    result
}

/// Whether writes succeed: the last write's outcome and the count of failures, read by
/// `/readyz` and the metrics. A failed write marks the store degraded until a write succeeds.
#[derive(Debug, Default)]
pub struct WriteHealth {
    failing: AtomicBool,
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl WriteHealth {
    /// Note a write's outcome.
    pub(super) fn record<T>(&self, result: &Result<T, StoreError>) {
        match result {
            Ok(_) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("store: writes succeed again");
                }
                *self.last_error.lock().expect("health lock") = None;
            }
            Err(e) => {
                self.failing.store(true, Ordering::Relaxed);
                self.failures.fetch_add(1, Ordering::Relaxed);
                *self.last_error.lock().expect("health lock") = Some(e.to_string());
            }
        }
    }

    /// Did the last write fail?
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Writes that failed since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The last write error, until a write succeeds again (for logs and operators, never for
    /// API clients).
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().expect("health lock").clone()
    }
}
