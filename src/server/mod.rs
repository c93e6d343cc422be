//! HTTP front end (actix-web): the scoring API for recommendation engines and CRM systems.
//!
//! Every handler calls the same [`Scorer`](crate::scoring::Scorer) as `churn-score`. Models live
//! in a registry that is swapped atomically on reload; a request holds an `Arc` to the model it
//! started with, so in-flight requests finish on the old model.
//!
//! Layout: [`routes`] holds one module per resource, each with the specs of its routes (routing,
//! auth and OpenAPI read the same [`RouteSpec`]), and the API description built from them; `state`
//! the registry and reload; `auth` the access rules and token checks; `error` the API error codes;
//! `json` request parsing; `metrics` Prometheus.

mod auth;
pub use auth::Scope;
pub mod challenger;
mod error;
pub mod json;
mod lifecycle;
mod metrics;
pub mod routes;
mod state;

pub use auth::Access;
pub use error::{ApiCode, ApiError, ApiResult};
pub use metrics::Metrics;
pub use routes::{configure, openapi_spec, RouteSpec};
pub use state::{load_registry, AppState, LoadedModel, Registry, ReloadFailure, ReloadReport};

use actix_web::{web, App, HttpServer};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Directory with one sub-directory per model.
    pub models_dir: PathBuf,
    /// Address to bind.
    pub bind: String,
    /// Worker threads (0 = one per core).
    pub workers: usize,
    /// Default model name (default: the only model, or `telco` if present).
    pub default_model: Option<String>,
    /// Largest number of customers per request.
    pub max_batch: usize,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Longest field name or text value of a customer, in bytes (ids included).
    pub max_field_bytes: usize,
    /// Bearer tokens accepted on `/v1/*` with their scopes (empty: no auth).
    pub api_tokens: Vec<(String, Vec<auth::Scope>)>,
    /// Token for `/v1/admin/*` (None: admin endpoints disabled).
    pub admin_token: Option<String>,
    /// Log raw customer ids (default: hashed).
    pub log_customer_ids: bool,
    /// Playbook overriding every bundle's own (re-read on each reload).
    pub playbook: Option<PathBuf>,
    /// Prediction store (`StoreUrl::Disabled`: none).
    pub store: crate::store::StoreUrl,
    /// Store customer ids as HMAC-SHA256 keyed with this (`CHURN_ID_KEY`).
    pub id_key: Option<String>,
    /// Rank with the save rates learned by `churn-train evaluate` (from the store) instead of
    /// the playbook's (`--no-learned-rates`: false).
    pub learned_rates: bool,
    /// Prediction records the store queue holds before dropping.
    pub store_queue: usize,
    /// How each model's `challenger` alias runs beside its champion (`--challenger`).
    pub challenger: challenger::ChallengerMode,
    /// Customers the shadow challenger's queue holds before dropping (`--shadow-queue`).
    pub shadow_queue: usize,
    /// Time a request body has to arrive whole (slower: 408 and the connection is closed).
    pub body_timeout: Duration,
    /// Time a client has to send the request line and headers.
    pub header_timeout: Duration,
    /// Idle time after which a keep-alive connection is closed.
    pub keep_alive: Duration,
    /// Open connections across all workers; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Bytes all request bodies still arriving may hold together (more: 503 `server_busy`).
    pub max_pending_body_bytes: usize,
    /// Time a reload has to finish; after it the loaded models keep serving.
    pub reload_timeout: Duration,
    /// After SIGTERM: how long `/readyz` answers 503 while requests are still served, so a load
    /// balancer or Kubernetes takes the server out of rotation before it stops accepting.
    pub drain: Duration,
    /// How often to look for changes made by other processes — a promotion on another replica,
    /// a version or uplift bundle written by `churn-train`, learned rates stored by an
    /// evaluation — and reload when there are any (zero: only on SIGHUP or an admin reload).
    pub watch: Duration,
    /// Hands the calling thread's free memory back to the operating system; called after an
    /// evaluation or KPI run, on the threads that held its data. The allocator is the binary's
    /// choice, so the binary supplies this (`churn-serve`: mimalloc's `mi_collect`, which keeps
    /// freed pages otherwise: 0.86 GB after one evaluation of 1M predictions). Default: nothing.
    pub release_memory: fn(),
}

impl Default for ServerConfig {
    /// The defaults of `churn-serve` (the same as its flags').
    fn default() -> ServerConfig {
        ServerConfig {
            models_dir: PathBuf::from("models"),
            bind: "127.0.0.1:8080".into(),
            workers: 0,
            default_model: None,
            max_batch: 1000,
            max_body_bytes: 4 * 1024 * 1024,
            max_field_bytes: 1024,
            api_tokens: Vec::new(),
            admin_token: None,
            log_customer_ids: false,
            playbook: None,
            store: crate::store::StoreUrl::Disabled,
            id_key: None,
            store_queue: 10_000,
            challenger: challenger::ChallengerMode::Off,
            shadow_queue: 10_000,
            body_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(5),
            keep_alive: Duration::from_secs(5),
            max_connections: 1024,
            max_pending_body_bytes: 64 * 1024 * 1024,
            reload_timeout: Duration::from_secs(60),
            drain: Duration::ZERO,
            watch: Duration::ZERO,
            learned_rates: true,
            release_memory: || {},
        }
    }
}

impl ServerConfig {
    /// Check the settings before anything is loaded or bound.
    pub fn validate(&self) -> Result<(), ServerError> {
        let invalid = |message: String| ServerError::Config { message };
        if self.challenger == challenger::ChallengerMode::Shadow
            && self.store == crate::store::StoreUrl::Disabled
        {
            return Err(invalid(
                "--challenger shadow stores the challenger's answers: give a store (--store URL), or use canary:SHARE".into(),
            ));
        }
        if self.max_batch == 0 {
            return Err(invalid(
                "the batch limit must be at least 1 customer".into(),
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(invalid(format!(
                "the body limit must be at least 1024 bytes, got {}",
                self.max_body_bytes
            )));
        }
        if self.max_field_bytes < 16 {
            return Err(invalid(format!(
                "the field length limit must be at least 16 bytes, got {}",
                self.max_field_bytes
            )));
        }
        for (name, d) in [
            ("body-read", self.body_timeout),
            ("header", self.header_timeout),
            ("reload", self.reload_timeout),
        ] {
            if d.is_zero() {
                return Err(invalid(format!("the {name} timeout must be positive")));
            }
        }
        if self.max_pending_body_bytes < self.max_body_bytes {
            return Err(invalid(format!(
                "the pending-body budget ({} bytes) must hold at least one largest body ({} bytes)",
                self.max_pending_body_bytes, self.max_body_bytes
            )));
        }
        if self.max_connections == 0 {
            return Err(invalid("the connection cap must be at least 1".into()));
        }
        if self.bind.trim().is_empty() {
            return Err(invalid("the bind address is empty".into()));
        }
        Ok(())
    }

    /// Worker threads to start (one per core when `workers` is 0).
    pub fn worker_count(&self) -> usize {
        if self.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.workers
        }
    }
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The models directory is unusable.
    #[error("{path}: {message}")]
    Models {
        /// Directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A model directory's registry file is unusable.
    #[error(transparent)]
    Registry(#[from] crate::bundle::registry::RegistryError),
    /// A setting is out of range.
    #[error("{message}")]
    Config {
        /// What is wrong.
        message: String,
    },
    /// The store cannot be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Binding or running failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

impl ServerError {
    /// Process exit code: 2 for bad models or settings, 1 for I/O failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            ServerError::Models { .. } | ServerError::Config { .. } => 2,
            ServerError::Store(e) => e.exit_code(),
            ServerError::Registry(e) => e.exit_code(),
            ServerError::Io(_) => 1,
        }
    }
}

/// The API tokens and their scopes from the environment (`var` reads a variable):
/// `CHURN_API_TOKENS` (comma-separated) carry every scope but admin — what a token meant before
/// scopes existed — and `CHURN_SCORE_TOKENS`, `CHURN_READ_TOKENS`, `CHURN_OUTCOMES_TOKENS` one
/// scope each. None set means no authentication; a variable set but without a single token
/// (`" , "`, or an empty value from a missing secret) is refused, because it would silently turn
/// authentication off or leave a client locked out.
pub fn api_tokens_from_env(
    var: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Vec<auth::Scope>)>, ServerError> {
    let sources = std::iter::once(("CHURN_API_TOKENS", auth::Scope::ALL.to_vec()))
        .chain(auth::Scope::ALL.iter().map(|s| (s.env_var(), vec![*s])));
    let mut out = Vec::new();
    for (name, scopes) in sources {
        let Some(v) = var(name) else { continue };
        let before = out.len();
        out.extend(
            v.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| (t.to_string(), scopes.clone())),
        );
        if out.len() == before {
            return Err(ServerError::Config {
                message: format!(
                    "{name} is set but holds no token: refusing to start with \
                     authentication off (unset it to run without tokens)"
                ),
            });
        }
    }
    Ok(out)
}

/// Build the state and log what was loaded.
fn start_state(config: ServerConfig) -> Result<web::Data<AppState>, ServerError> {
    config.validate()?;
    let (state, report) = AppState::new(config)?;
    for (name, err) in &report.failed {
        tracing::error!(model = %name, error = %err, "bundle not loaded");
    }
    let default = state.current().default.clone();
    tracing::info!(
        models = %report.loaded_text(),
        default = default.as_deref().unwrap_or("none"),
        "models loaded"
    );
    match &state.store {
        Some(s) => {
            tracing::info!(store = %s.url(), hashed_ids = s.ids().hashes(), "prediction store open")
        }
        None => tracing::info!("prediction store disabled"),
    }
    Ok(web::Data::new(state))
}

/// Run the server until SIGTERM / Ctrl-C (graceful). SIGHUP reloads the models.
pub async fn run(config: ServerConfig) -> Result<(), ServerError> {
    let workers = config.worker_count();
    let bind = config.bind.clone();
    // before anything else: a signal that arrived before its handler would end the process
    // with nothing flushed, and what changes while the models load must count as a change
    let mut signals = lifecycle::Signals::register();
    let before = lifecycle::files_stamp(&config).await;
    let state = start_state(config)?;
    #[cfg(unix)]
    if let Some(hup) = signals.take_hangup() {
        lifecycle::spawn_sighup_reload(state.clone(), hup);
    }
    if !state.config.watch.is_zero() {
        lifecycle::spawn_watch(state.clone(), before);
    }
    let app_state = state.clone();
    let tokens = web::Data::new(auth::Tokens::new(
        &state.config.api_tokens,
        state.config.admin_token.as_deref(),
    ));
    let server = HttpServer::new(move || {
        let st = app_state.clone();
        App::new()
            .app_data(app_state.clone())
            .app_data(tokens.clone())
            .wrap_fn(move |req, srv| {
                use actix_web::dev::Service;
                let start = Instant::now();
                let method = req.method().clone();
                let fut = srv.call(req);
                let st = st.clone();
                async move {
                    let mut res = fut.await?;
                    if st.draining.load(std::sync::atomic::Ordering::Relaxed) {
                        // a client on a kept-alive connection reconnects, to another replica
                        res.response_mut()
                            .head_mut()
                            .set_connection_type(actix_web::http::ConnectionType::Close);
                    }
                    let secs = start.elapsed().as_secs_f64();
                    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
                    let status = res.status();
                    st.metrics.observe(&route, status, secs);
                    // the route template, never the raw path: `/v1/customers/{id}` would otherwise
                    // write customer ids into every log line (SECURITY.md)
                    tracing::info!(%method, %route, status = status.as_u16(), latency_us = (secs * 1e6) as u64, "request");
                    Ok(res)
                }
            })
            .configure(configure)
            .default_service(web::to(routes::not_found))
    })
    .workers(workers)
    // actix counts connections per worker: split the cap so the total holds
    .max_connections(state.config.max_connections.div_ceil(workers).max(1))
    .client_request_timeout(state.config.header_timeout)
    .keep_alive(state.config.keep_alive)
    .client_disconnect_timeout(Duration::from_secs(1))
    .shutdown_timeout(10)
    .disable_signals()
    .bind(&bind)?;
    for addr in server.addrs() {
        tracing::info!(%addr, workers, "listening");
        eprintln!("churn-serve listening on http://{addr}");
    }
    let server = server.run();
    lifecycle::spawn_shutdown(state.clone(), server.handle(), signals);
    server.await?;
    flush_store(&state).await;
    Ok(())
}

/// After the last request: write what the prediction queue still holds (bounded wait).
async fn flush_store(state: &web::Data<AppState>) {
    if let Some(log) = &state.log {
        let queued = log
            .stats()
            .queued
            .load(std::sync::atomic::Ordering::Relaxed);
        let done = log.flush(std::time::Duration::from_secs(30)).await;
        tracing::info!(queued, flushed = done, "prediction log flushed");
    }
}
