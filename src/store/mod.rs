//! The prediction store: what was predicted for whom, which outcomes came back, and the read
//! paths recommendation engines use (latest prediction per customer, worklists).
//!
//! One schema on two backends through sqlx's `Any` driver: SQLite (embedded, the default; WAL
//! mode) and PostgreSQL (by URL). Queries are written once with `$N` placeholders, which both
//! drivers accept. The store owns a small tokio runtime, so the HTTP server (actix), the batch
//! scorer and the CLI all use it the same way; scoring never waits for it: predictions go through
//! a bounded queue to a background writer ([`PredictionLog`]).

mod batch;
mod changes;
mod exclusive;
mod insert;
mod learned;
mod log;
mod outcomes;
mod query;
mod record;
mod scan;
mod schema;
mod shadow;
mod tx;

pub use batch::BatchLog;
pub use exclusive::Exclusive;
pub use log::{LogStats, PredictionLog, BULK_BATCH, SERVER_BATCH};
pub use outcomes::{
    raw_outcomes_of, validate_table, OutcomeError, OutcomeEvent, OutcomeReport, RawOutcome,
    ValidOutcome, OUTCOME_COLUMNS,
};
pub use query::{
    Cursor, PruneReport, StoredPrediction, WorklistFilter, WorklistOrder, WorklistPage, WorklistRow,
};
pub use record::{
    check_id, check_text, new_id, PredictionRecord, RecordContext, Source, TextError, MAX_ID_BYTES,
};
pub use scan::{Events, LogReader, LoggedOutcome, LoggedPrediction, RecentInput};
pub use schema::SCHEMA_VERSION;
pub use shadow::{ShadowCount, ShadowPair};
pub use tx::WriteHealth;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store URL is not one this build understands.
    #[error("store URL '{url}': {problem}")]
    Url {
        /// The URL as given (passwords removed).
        url: String,
        /// What is wrong.
        problem: String,
    },
    /// The database cannot be reached or opened.
    #[error("store {url}: cannot connect: {message}")]
    Connect {
        /// The URL (passwords removed).
        url: String,
        /// Driver message.
        message: String,
    },
    /// The schema is newer than this binary, or a migration failed.
    #[error("store {url}: schema: {message}")]
    Schema {
        /// The URL (passwords removed).
        url: String,
        /// What is wrong.
        message: String,
    },
    /// A query failed.
    #[error("store: {0}")]
    Query(#[from] sqlx::Error),
    /// The store's runtime could not start.
    #[error("store: runtime: {0}")]
    Runtime(String),
}

impl StoreError {
    /// Process exit code: a store that cannot be used as configured is a usage error (2); a
    /// failing query is an internal failure (1).
    pub fn exit_code(&self) -> i32 {
        match self {
            StoreError::Query(_) | StoreError::Runtime(_) => 1,
            _ => 2,
        }
    }
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// A parsed `--store` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `--store none`: no store.
    Disabled,
    /// A database URL.
    Database {
        /// The backend.
        backend: Backend,
        /// The URL handed to the driver.
        url: String,
    },
}

impl StoreUrl {
    /// Parse `none`, `sqlite://PATH[?synchronous=full]` or `postgres://USER@HOST:PORT/DB` (also
    /// `postgresql://`).
    pub fn parse(text: &str) -> Result<StoreUrl, StoreError> {
        let t = text.trim();
        let bad = |problem: &str| StoreError::Url {
            url: redact(t),
            problem: problem.to_string(),
        };
        if t.eq_ignore_ascii_case("none") || t.is_empty() {
            return Ok(StoreUrl::Disabled);
        }
        if let Some(rest) = t.strip_prefix("sqlite://") {
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            if path.is_empty() {
                return Err(bad("no file path after sqlite://"));
            }
            // the one option: how a commit reaches the disk (the durability contract, README)
            let sync = match query {
                "" | "synchronous=normal" => "",
                "synchronous=full" => "&synchronous=full",
                _ => return Err(bad("the only SQLite option is ?synchronous=normal|full")),
            };
            // mode=rwc: create the file when it is missing
            return Ok(StoreUrl::Database {
                backend: Backend::Sqlite,
                url: format!("sqlite://{path}?mode=rwc{sync}"),
            });
        }
        if t.starts_with("postgres://") || t.starts_with("postgresql://") {
            return Ok(StoreUrl::Database {
                backend: Backend::Postgres,
                url: t.to_string(),
            });
        }
        Err(bad(
            "expected none, sqlite://PATH or postgres://USER@HOST:PORT/DB",
        ))
    }

    /// The default store of `churn-serve`: `sqlite://MODELS_DIR/store.db`.
    pub fn default_for(models_dir: &Path) -> StoreUrl {
        StoreUrl::Database {
            backend: Backend::Sqlite,
            url: format!(
                "sqlite://{}?mode=rwc",
                models_dir.join("store.db").display()
            ),
        }
    }
}

/// The URL without a password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// How customer ids are turned into the stored key: as they are, or an HMAC-SHA256 keyed per
/// deployment (`CHURN_ID_KEY`), so the store never holds a raw id.
#[derive(Clone)]
pub struct IdKey(Option<Vec<u8>>);

impl std::fmt::Debug for IdKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "IdKey(hmac)"
        } else {
            "IdKey(raw)"
        })
    }
}

impl IdKey {
    /// Raw ids, or HMAC-SHA256 with `key` (an empty key counts as none).
    pub fn new(key: Option<&str>) -> IdKey {
        IdKey(key.filter(|k| !k.is_empty()).map(|k| k.as_bytes().to_vec()))
    }

    /// Are ids hashed?
    pub fn hashes(&self) -> bool {
        self.0.is_some()
    }

    /// The stored key of a customer id.
    pub fn key_of(&self, id: &str) -> String {
        match &self.0 {
            None => id.to_string(),
            Some(k) => {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(k)
                    .expect("HMAC takes keys of any length");
                mac.update(id.as_bytes());
                crate::util::hex(&mac.finalize().into_bytes())
            }
        }
    }
}

/// The stored form of recommended actions: `[{"action":…,"expected_value":…}, …]`.
pub fn recommendations_json<'a>(actions: impl Iterator<Item = (&'a str, f64)>) -> String {
    #[derive(serde::Serialize)]
    struct Rec<'a> {
        action: &'a str,
        expected_value: f64,
    }
    let list: Vec<Rec<'a>> = actions
        .map(|(action, expected_value)| Rec {
            action,
            expected_value,
        })
        .collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
}

/// Row `r` of a table as a JSON object of its raw cells (text as text, numbers as numbers,
/// missing as null): the stored input of a batch-scored customer.
pub fn row_json(table: &crate::io::RawTable, r: usize) -> String {
    use crate::io::RawValue;
    // written straight into one buffer (a map per row cost 34k instructions per record);
    // writing to a Vec cannot fail
    let mut buf = Vec::with_capacity(32 * table.columns.len());
    buf.push(b'{');
    for (i, c) in table.columns.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        let _ = serde_json::to_writer(&mut buf, &c.name);
        buf.push(b':');
        let _ = match c.data.get(r) {
            RawValue::Missing => serde_json::to_writer(&mut buf, &()),
            // a non-finite number (refused by the encoder anyway) is written as null
            RawValue::Number(x) => serde_json::to_writer(&mut buf, &x),
            RawValue::Bool(b) => serde_json::to_writer(&mut buf, &b),
            RawValue::Text(t) => serde_json::to_writer(&mut buf, t),
        };
    }
    buf.push(b'}');
    String::from_utf8(buf).unwrap_or_default()
}

/// An open store: a connection pool, the runtime it runs on, and the id key.
pub struct Store {
    rt: Option<tokio::runtime::Runtime>,
    pool: AnyPool,
    log_target: insert::LogTarget,
    backend: Backend,
    url: String,
    ids: IdKey,
    health: std::sync::Arc<WriteHealth>,
    /// SQLite: the database file and its identity (device, inode) when opened.
    file: Option<(std::path::PathBuf, (u64, u64))>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("url", &self.url)
            .field("ids", &self.ids)
            .finish()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // never block (a store may be dropped inside another runtime)
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Store {
    /// Connect, create the schema on first use and apply pending migrations (blocking). A
    /// database whose schema is newer than this binary is refused.
    pub fn open(url: &StoreUrl, ids: IdKey) -> Result<Option<Store>, StoreError> {
        let StoreUrl::Database { backend, url } = url else {
            return Ok(None);
        };
        sqlx::any::install_default_drivers();
        let shown = redact(url);
        let file = match backend {
            Backend::Sqlite => Some(create_file(url).map_err(|message| StoreError::Connect {
                url: shown.clone(),
                message,
            })?),
            Backend::Postgres => None,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("churn-store")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Runtime(e.to_string()))?;
        let pools = outside_runtime(|| {
            rt.block_on(async {
                let pool = connect(*backend, url, &shown).await?;
                let target = match backend {
                    Backend::Sqlite => insert::LogTarget::Sqlite(pool.clone()),
                    Backend::Postgres => {
                        insert::LogTarget::Postgres(connect_pg(url, &shown).await?)
                    }
                };
                Ok((pool, target))
            })
        });
        let (pool, log_target) = match pools {
            Ok(p) => p,
            Err(e) => {
                // dropping a runtime may block; the caller may be inside another runtime
                rt.shutdown_background();
                return Err(e);
            }
        };
        let store = Store {
            rt: Some(rt),
            pool,
            log_target,
            backend: *backend,
            url: shown,
            ids,
            health: Default::default(),
            file,
        };
        store.block_on(schema::migrate(&store.pool, &store.url))?;
        Ok(Some(store))
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL without password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How ids are keyed.
    pub fn ids(&self) -> &IdKey {
        &self.ids
    }

    /// Whether writes succeed (every write of this store reports to it).
    pub fn health(&self) -> &WriteHealth {
        &self.health
    }

    /// A shared handle to the write health, for writes that run on the store's runtime.
    pub(crate) fn health_handle(&self) -> std::sync::Arc<WriteHealth> {
        self.health.clone()
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt
            .as_ref()
            .expect("the runtime lives as long as the store")
    }

    /// Run a future on the store's runtime from synchronous code (CLI, start-up), also when the
    /// caller itself runs inside another runtime (the server's start-up).
    pub fn block_on<F: Future + Send>(&self, f: F) -> F::Output
    where
        F::Output: Send,
    {
        outside_runtime(|| self.rt().block_on(f))
    }

    /// Run a future on the store's runtime and await it from any other runtime (the server's).
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        match self.rt().spawn(f).await {
            Ok(r) => r,
            Err(e) => Err(StoreError::Runtime(e.to_string())),
        }
    }

    /// The pool (cheap to clone).
    pub fn pool(&self) -> AnyPool {
        self.pool.clone()
    }

    /// Start the background writer for prediction records (queue of `capacity` records, at most
    /// `batch` per transaction: [`SERVER_BATCH`] or [`BULK_BATCH`]).
    pub fn prediction_log(&self, capacity: usize, batch: usize) -> PredictionLog {
        PredictionLog::start(
            self.rt().handle(),
            self.log_target.clone(),
            self.health.clone(),
            capacity,
            batch,
        )
    }

    /// Is the store usable: the database answers and, for SQLite, its file is still the one
    /// opened (a deleted or replaced file leaves the open handle writing into a file nobody will
    /// read again)?
    pub async fn check(&self) -> Result<(), StoreError> {
        if let Some((path, id)) = &self.file {
            match file_identity(path) {
                Ok(now) if now == *id => {}
                Ok(_) => {
                    return Err(StoreError::Runtime(format!(
                        "{} was replaced by another file while open",
                        path.display()
                    )))
                }
                Err(e) => {
                    return Err(StoreError::Runtime(format!(
                        "{} is gone while open: {e}",
                        path.display()
                    )))
                }
            }
        }
        self.ping().await
    }

    /// Is the database answering? (a trivial query with a short timeout)
    pub async fn ping(&self) -> Result<(), StoreError> {
        let pool = self.pool.clone();
        self.run(async move {
            tokio::time::timeout(
                Duration::from_secs(2),
                sqlx::query("SELECT 1").execute(&pool),
            )
            .await
            .map_err(|_| StoreError::Runtime("no answer within 2 s".into()))??;
            Ok(())
        })
        .await
    }
}

/// Run `f` on this thread, or on a scoped helper thread when this thread drives an async runtime
/// (tokio refuses to block inside one).
fn outside_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| s.spawn(f).join().expect("store start-up thread"))
}

async fn connect(backend: Backend, url: &str, shown: &str) -> Result<AnyPool, StoreError> {
    // `synchronous=full` is ours, not the driver's: FULL syncs the WAL at every commit, so a
    // confirmed write survives power loss too (NORMAL: it survives a killed process, and the last
    // commits before an OS crash or power loss may roll back)
    let full = url.ends_with("&synchronous=full");
    let url = url.trim_end_matches("&synchronous=full");
    let opts = AnyPoolOptions::new()
        .max_connections(match backend {
            Backend::Sqlite => 4,
            Backend::Postgres => 8,
        })
        .acquire_timeout(Duration::from_secs(5));
    let opts = match backend {
        // WAL: readers never block the writer; busy_timeout: a second writer waits, not fails
        Backend::Sqlite => opts.after_connect(move |conn, _| {
            Box::pin(async move {
                use sqlx::Executor;
                conn.execute(
                    "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000; \
                     PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=16384",
                )
                .await?;
                conn.execute(if full {
                    "PRAGMA synchronous=FULL"
                } else {
                    "PRAGMA synchronous=NORMAL"
                })
                .await?;
                Ok(())
            })
        }),
        Backend::Postgres => opts,
    };
    opts.connect(url).await.map_err(|e| StoreError::Connect {
        url: shown.to_string(),
        message: e.to_string(),
    })
}

/// The native PostgreSQL pool of the prediction writer (for `COPY`; two connections: the
/// writer and a retry).
async fn connect_pg(url: &str, shown: &str) -> Result<sqlx::PgPool, StoreError> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|e| StoreError::Connect {
            url: shown.to_string(),
            message: e.to_string(),
        })
}

/// The file of a `sqlite://PATH?…` URL, created (with its directory) when missing, readable and
/// writable by its owner only (predictions hold customer data; SQLite gives its `-wal` and `-shm`
/// files the same mode); returns the path and the file's identity.
fn create_file(url: &str) -> Result<(std::path::PathBuf, (u64, u64)), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = Path::new(
        url.strip_prefix("sqlite://")
            .and_then(|p| p.split('?').next())
            .unwrap_or(""),
    );
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let id = file_identity(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((path.to_path_buf(), id))
}

/// (device, inode) of a file: a file deleted or replaced under an open database changes it.
fn file_identity(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_durability_is_a_url_option() {
        assert!(matches!(
            StoreUrl::parse("sqlite://s.db?synchronous=full").unwrap(),
            StoreUrl::Database { url, .. } if url == "sqlite://s.db?mode=rwc&synchronous=full"
        ));
        assert!(matches!(
            StoreUrl::parse("sqlite://s.db?synchronous=normal").unwrap(),
            StoreUrl::Database { url, .. } if url == "sqlite://s.db?mode=rwc"
        ));
        assert!(StoreUrl::parse("sqlite://s.db?mode=ro").is_err());
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?synchronous=full",
            dir.path().join("s.db").display()
        );
        let store = Store::open(&StoreUrl::parse(&url).unwrap(), IdKey::new(None))
            .unwrap()
            .unwrap();
        let mode: i64 = store
            .block_on(async {
                sqlx::query_scalar("PRAGMA synchronous")
                    .fetch_one(&store.pool)
                    .await
            })
            .unwrap();
        assert_eq!(mode, 2, "FULL");
    }

    #[test]
    fn urls_parse_and_passwords_are_hidden() {
        assert_eq!(StoreUrl::parse("none").unwrap(), StoreUrl::Disabled);
        assert!(matches!(
            StoreUrl::parse("sqlite://data/s.db").unwrap(),
            StoreUrl::Database { backend: Backend::Sqlite, url } if url == "sqlite://data/s.db?mode=rwc"
        ));
        assert!(matches!(
            StoreUrl::parse("postgres://u@h:5432/d").unwrap(),
            StoreUrl::Database {
                backend: Backend::Postgres,
                ..
            }
        ));
        let e = StoreUrl::parse("mysql://x").unwrap_err().to_string();
        assert!(e.contains("expected none, sqlite://PATH"), "{e}");
        assert_eq!(redact("postgres://u:secret@h/d"), "postgres://u:***@h/d");
    }

    #[test]
    fn hmac_keys_are_stable_and_keyed() {
        let a = IdKey::new(Some("k1"));
        assert_eq!(a.key_of("c1"), a.key_of("c1"));
        assert_eq!(a.key_of("c1").len(), 64);
        assert_ne!(a.key_of("c1"), IdKey::new(Some("k2")).key_of("c1"));
        assert_eq!(IdKey::new(None).key_of("c1"), "c1");
        assert_eq!(IdKey::new(Some("")).key_of("c1"), "c1");
    }
}
