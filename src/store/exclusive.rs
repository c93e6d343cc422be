//! One at a time across every process sharing a store: a PostgreSQL session advisory lock held
//! on a connection of its own while a store-wide job (an evaluation, KPIs) runs, so replicas
//! behind one load balancer do not read the whole log at once.

use super::{Backend, Store, StoreError};
use sqlx::pool::PoolConnection;
use sqlx::Any;

/// Held while the job runs; dropping it releases the lock (the connection is closed rather
/// than returned to the pool: the session ends, and the lock with it, even if the unlock could
/// not be sent).
pub struct Exclusive {
    conn: Option<PoolConnection<Any>>,
    rt: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for Exclusive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exclusive")
            .field("held", &self.conn.is_some())
            .finish()
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        if let (Some(conn), Some(rt)) = (self.conn.take(), self.rt.take()) {
            // on the store's runtime, which owns the connection's socket
            rt.spawn(async move {
                let _ = conn.close().await;
            });
        }
    }
}

/// The advisory lock's key for a job name (stable across processes and releases).
fn lock_key(name: &str) -> i64 {
    crate::util::stable_u64(&format!("churn:{name}")) as i64
}

impl Store {
    /// Try to become the only process running job `name` on this store: `None` while another
    /// holds it. PostgreSQL: `pg_try_advisory_lock` on a dedicated connection, never waiting.
    /// SQLite (one machine, one file): always granted; a server's own one-at-a-time gate still
    /// applies.
    pub async fn try_exclusive(&self, name: &str) -> Result<Option<Exclusive>, StoreError> {
        if self.backend() != Backend::Postgres {
            return Ok(Some(Exclusive {
                conn: None,
                rt: None,
            }));
        }
        let pool = self.pool();
        let key = lock_key(name);
        let rt = self.rt().handle().clone();
        self.run(async move {
            let mut conn = pool.acquire().await?;
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(key)
                .fetch_one(&mut *conn)
                .await?;
            Ok(got.then(|| Exclusive {
                conn: Some(conn),
                rt: Some(rt),
            }))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lock_keys_differ_by_job_and_stay_fixed() {
        assert_ne!(super::lock_key("evaluation"), super::lock_key("kpis"));
        assert_eq!(super::lock_key("evaluation"), super::lock_key("evaluation"));
    }
}
