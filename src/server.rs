//! HTTP front end (actix-web): the scoring API for recommendation engines and CRM systems.
//!
//! Every handler calls the same [`Scorer`] as `churn-score`. Models live in a registry that is
//! swapped atomically on reload; a request holds an `Arc` to the model it started with, so
//! in-flight requests finish on the old model.

use crate::bundle;
use crate::features::Warning;
use crate::io::RawValue;
use crate::scoring::{Reason, ScoreError, Scorer};
use actix_web::http::{header, StatusCode};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

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
    /// Bearer tokens accepted on `/v1/*` (empty: no auth).
    pub api_tokens: Vec<String>,
    /// Token for `/v1/admin/*` (None: admin endpoints disabled).
    pub admin_token: Option<String>,
    /// Log raw customer ids (default: hashed).
    pub log_customer_ids: bool,
    /// Playbook overriding every bundle's own (re-read on each reload).
    pub playbook: Option<PathBuf>,
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
    /// Binding or running failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// One loaded model.
#[derive(Debug)]
pub struct LoadedModel {
    /// The scorer.
    pub scorer: Scorer,
    /// The model card as JSON (if the card file is present and valid).
    pub card: Option<Value>,
    /// Unix time it was loaded.
    pub loaded_at: f64,
}

/// The set of models being served.
#[derive(Debug, Default)]
pub struct Registry {
    /// Models by name.
    pub models: BTreeMap<String, Arc<LoadedModel>>,
    /// Default model.
    pub default: Option<String>,
}

/// Outcome of a (re)load.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// Models now served: name → version.
    pub loaded: BTreeMap<String, String>,
    /// Bundles that failed: name → error (the previous version, if any, keeps serving).
    pub failed: BTreeMap<String, String>,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Load every `DIR/NAME/model.bin`. Bundles that fail keep their previous version from `old`.
pub fn load_registry(
    dir: &Path,
    default: Option<&str>,
    old: Option<&Registry>,
    playbook: Option<&Path>,
) -> Result<(Registry, ReloadReport), ServerError> {
    let playbook = match playbook {
        Some(p) => Some((
            crate::playbook::read(p).map_err(|e| ServerError::Models {
                path: p.to_path_buf(),
                message: e.to_string(),
            })?,
            p.display().to_string(),
        )),
        None => None,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| ServerError::Models {
        path: dir.to_path_buf(),
        message: format!("cannot read the models directory: {e}"),
    })?;
    let mut names: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join(bundle::MODEL_FILE).is_file())
        .map(|p| {
            (
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                p,
            )
        })
        .collect();
    names.sort();
    let mut reg = Registry::default();
    let mut report = ReloadReport {
        loaded: BTreeMap::new(),
        failed: BTreeMap::new(),
    };
    for (name, path) in names {
        let loaded = bundle::load(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                let mut scorer = Scorer::new(b);
                if let Some((file, source)) = &playbook {
                    scorer
                        .set_playbook(file.clone(), source)
                        .map_err(|e| e.to_string())?;
                }
                Ok(scorer)
            });
        // At start-up an override playbook that does not fit a model is a usage error.
        if let (Err(e), Some((_, source)), None) = (&loaded, &playbook, old) {
            if e.starts_with(source.as_str()) {
                return Err(ServerError::Models {
                    path: path.clone(),
                    message: e.clone(),
                });
            }
        }
        match loaded {
            Ok(scorer) => {
                let card = std::fs::read(path.join(bundle::CARD_FILE))
                    .ok()
                    .and_then(|bytes| serde_json::from_slice(&bytes).ok());
                let keep_old = old
                    .and_then(|o| o.models.get(&name))
                    .filter(|m| m.scorer.version == scorer.version && playbook.is_none());
                let lm = match keep_old {
                    Some(m) => m.clone(),
                    None => Arc::new(LoadedModel {
                        scorer,
                        card,
                        loaded_at: now(),
                    }),
                };
                report
                    .loaded
                    .insert(name.clone(), lm.scorer.version.clone());
                reg.models.insert(name, lm);
            }
            Err(e) => {
                tracing::error!(model = %name, error = %e, "bundle failed to load");
                report.failed.insert(name.clone(), e.to_string());
                if let Some(m) = old.and_then(|o| o.models.get(&name)) {
                    report.loaded.insert(name.clone(), m.scorer.version.clone());
                    reg.models.insert(name, m.clone());
                }
            }
        }
    }
    reg.default = match default {
        Some(d) => Some(d.to_string()),
        None if reg.models.len() == 1 => reg.models.keys().next().cloned(),
        None if reg.models.contains_key("telco") => Some("telco".into()),
        None => None,
    };
    Ok((reg, report))
}

const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

#[derive(Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Prometheus metrics.
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, RouteStats>>,
    scored: Mutex<BTreeMap<(String, &'static str), u64>>,
    reload_failures: Mutex<u64>,
}

impl Metrics {
    fn observe(&self, route: &str, status: u16, secs: f64) {
        let mut m = self.routes.lock().expect("metrics lock");
        if !m.contains_key(route) {
            m.insert(route.to_string(), RouteStats::default());
        }
        let s = m.get_mut(route).expect("inserted above");
        *s.by_status.entry(status).or_default() += 1;
        s.count += 1;
        s.sum += secs;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                s.buckets[i] += 1;
            }
        }
    }

    fn render(&self, reg: &Registry) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        o.push_str("# HELP churn_http_requests_total HTTP requests by route and status.\n# TYPE churn_http_requests_total counter\n");
        let routes = self.routes.lock().expect("metrics lock");
        for (r, s) in routes.iter() {
            for (st, n) in &s.by_status {
                let _ = writeln!(
                    o,
                    "churn_http_requests_total{{route=\"{r}\",status=\"{st}\"}} {n}"
                );
            }
        }
        o.push_str("# HELP churn_http_request_duration_seconds Request latency by route.\n# TYPE churn_http_request_duration_seconds histogram\n");
        for (r, s) in routes.iter() {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "churn_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                o,
                "churn_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                o,
                "churn_http_request_duration_seconds_sum{{route=\"{r}\"}} {}",
                s.sum
            );
            let _ = writeln!(
                o,
                "churn_http_request_duration_seconds_count{{route=\"{r}\"}} {}",
                s.count
            );
        }
        drop(routes);
        o.push_str("# HELP churn_scored_customers_total Customers scored by model and risk band.\n# TYPE churn_scored_customers_total counter\n");
        for ((m, c), n) in self.scored.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                o,
                "churn_scored_customers_total{{model=\"{m}\",risk_band=\"{c}\"}} {n}"
            );
        }
        o.push_str("# HELP churn_model_info Models being served (value 1) with their versions.\n# TYPE churn_model_info gauge\n");
        for (name, m) in &reg.models {
            let _ = writeln!(
                o,
                "churn_model_info{{model=\"{name}\",version=\"{}\"}} 1",
                m.scorer.version
            );
        }
        o.push_str("# HELP churn_model_loaded_timestamp_seconds When each model was loaded.\n# TYPE churn_model_loaded_timestamp_seconds gauge\n");
        for (name, m) in &reg.models {
            let _ = writeln!(
                o,
                "churn_model_loaded_timestamp_seconds{{model=\"{name}\"}} {}",
                m.loaded_at
            );
        }
        let _ = writeln!(
            o,
            "# HELP churn_reload_failures_total Bundles that failed to load on reload.\n# TYPE churn_reload_failures_total counter\nchurn_reload_failures_total {}",
            self.reload_failures.lock().expect("metrics lock")
        );
        o
    }
}

/// Shared server state.
pub struct AppState {
    /// Settings.
    pub config: ServerConfig,
    /// Current registry (swapped on reload).
    pub registry: RwLock<Arc<Registry>>,
    /// Metrics.
    pub metrics: Metrics,
    api_token_hashes: Vec<[u8; 32]>,
    admin_token_hash: Option<[u8; 32]>,
}

impl AppState {
    /// Build the state and load the models.
    pub fn new(config: ServerConfig) -> Result<(AppState, ReloadReport), ServerError> {
        let (reg, report) = load_registry(
            &config.models_dir,
            config.default_model.as_deref(),
            None,
            config.playbook.as_deref(),
        )?;
        let hash = |t: &str| -> [u8; 32] { Sha256::digest(t.as_bytes()).into() };
        let state = AppState {
            api_token_hashes: config.api_tokens.iter().map(|t| hash(t)).collect(),
            admin_token_hash: config.admin_token.as_deref().map(hash),
            config,
            registry: RwLock::new(Arc::new(reg)),
            metrics: Metrics::default(),
        };
        Ok((state, report))
    }

    /// Reload all bundles from disk and swap the registry.
    pub fn reload(&self) -> Result<ReloadReport, ServerError> {
        let old = self.current();
        let (reg, report) = load_registry(
            &self.config.models_dir,
            self.config.default_model.as_deref(),
            Some(&old),
            self.config.playbook.as_deref(),
        )?;
        *self.metrics.reload_failures.lock().expect("metrics lock") += report.failed.len() as u64;
        *self.registry.write().expect("registry lock") = Arc::new(reg);
        tracing::info!(loaded = ?report.loaded, failed = report.failed.len(), "models reloaded");
        Ok(report)
    }

    /// The registry now being served.
    pub fn current(&self) -> Arc<Registry> {
        self.registry.read().expect("registry lock").clone()
    }
}

/// A JSON API error: `{"error":{"code":…,"message":…,"field":…}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    details: Option<Value>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            details: None,
        }
    }
    fn field(mut self, f: impl Into<String>) -> ApiError {
        self.field = Some(f.into());
        self
    }
    fn response(&self) -> HttpResponse {
        let mut e = Map::new();
        e.insert("code".into(), Value::from(self.code));
        e.insert("message".into(), Value::from(self.message.clone()));
        if let Some(f) = &self.field {
            e.insert("field".into(), Value::from(f.clone()));
        }
        if let Some(d) = &self.details {
            e.insert("details".into(), d.clone());
        }
        let mut b = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            b.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        b.json(serde_json::json!({ "error": e }))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        self.response()
    }
}

type ApiResult = Result<HttpResponse, ApiError>;

fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bearer(req: &HttpRequest) -> Option<[u8; 32]> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let t = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))?;
    Some(Sha256::digest(t.trim().as_bytes()).into())
}

fn check_api_auth(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    if state.api_token_hashes.is_empty() {
        return Ok(());
    }
    let Some(h) = bearer(req) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing bearer token (Authorization: Bearer TOKEN)",
        ));
    };
    // compare against every token without stopping early
    let ok = state
        .api_token_hashes
        .iter()
        .fold(false, |acc, t| acc | ct_eq(t, &h));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the bearer token is not valid",
        ))
    }
}

fn check_admin_auth(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let Some(admin) = &state.admin_token_hash else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "admin endpoints are disabled (set CHURN_ADMIN_TOKEN)",
        ));
    };
    let Some(h) = bearer(req) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing bearer token (Authorization: Bearer TOKEN)",
        ));
    };
    if ct_eq(admin, &h) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the admin token is not valid",
        ))
    }
}

async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("expected Content-Type: application/json, got '{ct}'"),
        ));
    }
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            return Err(too_large(limit));
        }
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("cannot read the request body: {e}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("request body exceeds {limit} bytes"),
    )
}

#[derive(serde::Deserialize)]
struct ScoreRequest<'a> {
    #[serde(borrow)]
    customers: Vec<Customer<'a>>,
}

/// One customer of a request: its fields in body order, text borrowed from the body where it
/// has no escapes (no allocation per field).
struct Customer<'a>(Vec<(Cow<'a, str>, Cell<'a>)>);

/// One JSON field value of a customer.
#[derive(Debug)]
enum Cell<'a> {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    /// A number JSON can carry but f64 cannot (overflow).
    NonFinite,
    Str(Cow<'a, str>),
    /// An array or an object.
    Compound,
}

impl Cell<'_> {
    /// The value as text (numbers and booleans as in JSON), for ids.
    fn text(&self) -> Cow<'_, str> {
        match self {
            Cell::Str(s) => Cow::Borrowed(s),
            Cell::Num(n) => Cow::Owned(n.to_string()),
            Cell::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Cell::Null | Cell::NonFinite | Cell::Compound => Cow::Borrowed("null"),
        }
    }
}

impl Serialize for Cell<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Str(v) => s.serialize_str(v),
            Cell::Num(n) => n.serialize(s),
            Cell::Bool(b) => s.serialize_bool(*b),
            Cell::Null | Cell::NonFinite | Cell::Compound => s.serialize_unit(),
        }
    }
}

/// Text that borrows from the input when it can.
struct BorrowedStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for BorrowedStr<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = BorrowedStr<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Cell<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Cell<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Cell::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Cell::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Cell::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Cell::Num(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Cell::Num(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(serde_json::Number::from_f64(v).map_or(Cell::NonFinite, Cell::Num))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cell::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cell::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cell::Str(Cow::Owned(v)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Cell::Compound)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                while a
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Cell::Compound)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Customer<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Customer<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a customer object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Self::Value, A::Error> {
                let mut v = Vec::with_capacity(a.size_hint().unwrap_or(24));
                while let Some((k, c)) = a.next_entry::<BorrowedStr<'a>, Cell<'a>>()? {
                    v.push((k.0, c));
                }
                Ok(Customer(v))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl Customer<'_> {
    /// The last value given for `key` (JSON objects with repeated keys: the last one wins).
    fn get(&self, key: &str) -> Option<&Cell<'_>> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, c)| c)
    }
}

/// One result of `POST /v1/score`.
#[derive(Serialize)]
struct ScoreResult<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_id: Option<&'a Cell<'a>>,
    churn_probability: f64,
    probability_interval: [f64; 2],
    predicted_churn: bool,
    leaf_support: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    segment_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    segment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rfm_class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lifecycle_stage: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    risk_band: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    treatment: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recommendations: Option<Vec<crate::playbook::Recommendation<'a>>>,
    reasons: Vec<&'a Reason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    levers: Option<Vec<crate::scoring::Lever<'a>>>,
    warnings: Vec<Warning>,
}

#[derive(Serialize)]
struct ModelRef<'a> {
    name: &'a str,
    version: &'a str,
}

#[derive(Serialize)]
struct ScoreResponse<'a> {
    model: ModelRef<'a>,
    results: Vec<ScoreResult<'a>>,
}

/// A JSON value as a raw cell; `field` names the field in errors (built only on error).
fn raw_value<'a>(v: &'a Cell<'a>, field: &dyn Fn() -> String) -> Result<RawValue<'a>, ApiError> {
    let non_finite = || {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
            "numbers must be finite",
        )
        .field(field())
    };
    match v {
        Cell::Null => Ok(RawValue::Missing),
        Cell::Bool(b) => Ok(RawValue::Bool(*b)),
        Cell::Num(n) => match n.as_f64() {
            Some(x) if x.is_finite() => Ok(RawValue::Number(x)),
            _ => Err(non_finite()),
        },
        Cell::NonFinite => Err(non_finite()),
        Cell::Str(s) => {
            let t = s.trim();
            let word = t.len() <= 9
                && [
                    "nan",
                    "inf",
                    "+inf",
                    "-inf",
                    "infinity",
                    "+infinity",
                    "-infinity",
                ]
                .iter()
                .any(|w| t.eq_ignore_ascii_case(w));
            if word {
                Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_value",
                    format!("'{s}' is not accepted: NaN and infinite values are invalid; send null for a missing value"),
                )
                .field(field()))
            } else {
                Ok(RawValue::Text(s))
            }
        }
        Cell::Compound => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_type",
            "expected a number, string, boolean or null",
        )
        .field(field())),
    }
}

fn hash_id(v: &str) -> String {
    crate::util::hex(&Sha256::digest(v.as_bytes())[..6])
}

async fn score_with(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    name: Option<String>,
) -> ApiResult {
    check_api_auth(&state, &req)?;
    let reg = state.current();
    let model_name = match name.or_else(|| reg.default.clone()) {
        Some(n) => n,
        None => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "no_default_model",
                format!(
                    "no default model: use /v1/models/{{name}}/score with one of: {}",
                    reg.models.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ))
        }
    };
    let Some(model) = reg.models.get(&model_name).cloned() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_model",
            format!(
                "no model named '{model_name}'; available: {}",
                reg.models.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    drop(reg);
    let body = read_body(&req, payload, state.config.max_body_bytes).await?;
    let parsed: ScoreRequest = serde_json::from_slice(&body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!("expected {{\"customers\": [{{...}}, ...]}}: {e}"),
            )
            .field("customers"),
            _ => ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("request body is not valid JSON: {e}"),
            ),
        }
    })?;
    let n = parsed.customers.len();
    if n == 0 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_batch",
            "customers must hold at least one customer",
        )
        .field("customers"));
    }
    if n > state.config.max_batch {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "{n} customers exceed the limit of {} per request",
                state.config.max_batch
            ),
        )
        .field("customers"));
    }
    let scorer = &model.scorer;
    let n_inputs = scorer.bundle.encoder.inputs.len();
    let id_key = scorer.bundle.id_column.as_deref();
    let mut results = Vec::with_capacity(n);
    let mut bands = [0u64; 3]; // low, medium, high
    for (ci, cust) in parsed.customers.iter().enumerate() {
        let field = |f: &str| format!("customers[{ci}].{f}");
        // convert JSON values up front so type errors name the field
        let mut vals: Vec<Option<RawValue>> = vec![None; n_inputs];
        for (k, v) in &cust.0 {
            if let Some(i) = scorer.input_index(k) {
                vals[i] = Some(raw_value(v, &|| field(k))?);
            }
        }
        let mut warnings = Vec::new();
        let row = scorer.encode(|i| vals[i], &mut warnings).map_err(|e| {
            let f = e.field().map(&field);
            let (status, code) = match e {
                ScoreError::MissingField { .. } => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "missing_field")
                }
                _ => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_value"),
            };
            let mut err = ApiError::new(status, code, e.to_string());
            err.field = f;
            err
        })?;
        let customer_id = id_key
            .and_then(|k| cust.get(k))
            .or_else(|| cust.get("customer_id"));
        let id_text: Option<Cow<str>> = customer_id.map(|v| v.text());
        let scored = scorer.score_encoded(&row, warnings, id_text.as_deref());
        let p = scored.prediction;
        let has_advice = scored.advice.is_some();
        let band = scored
            .advice
            .as_ref()
            .map(|a| a.risk_band)
            .unwrap_or_else(|| crate::playbook::RiskBands::default().band(p.probability));
        bands[match band {
            "low" => 0,
            "medium" => 1,
            _ => 2,
        }] += 1;
        results.push(ScoreResult {
            customer_id,
            churn_probability: p.probability,
            probability_interval: [p.low, p.high],
            predicted_churn: p.churn,
            leaf_support: p.support as u64,
            segment_id: scored.segment.as_ref().map(|a| a.segment_id),
            rfm_class: scored.segment.as_ref().and_then(|a| a.rfm_class),
            lifecycle_stage: scored.segment.as_ref().and_then(|a| a.lifecycle_stage),
            segment: scored.segment.map(|a| a.segment),
            risk_band: scored.advice.as_ref().map(|a| a.risk_band),
            treatment: scored.advice.as_ref().map(|a| a.treatment),
            customer_value: scored.advice.as_ref().map(|a| a.value),
            levers: scored.advice.as_ref().map(|_| scorer.levers(&row)),
            recommendations: scored.advice.map(|a| a.recommendations),
            reasons: if has_advice {
                scored.reasons
            } else {
                scorer.top_reasons(&row, 3)
            },
            warnings: scored.warnings,
        });
    }
    {
        let mut s = state.metrics.scored.lock().expect("metrics lock");
        for (band, count) in ["low", "medium", "high"].into_iter().zip(bands) {
            if count > 0 {
                *s.entry((model_name.clone(), band)).or_default() += count;
            }
        }
    }
    if tracing::enabled!(tracing::Level::DEBUG) {
        let ids: Vec<String> = results
            .iter()
            .filter_map(|r| r.customer_id.as_ref())
            .map(|v| {
                if state.config.log_customer_ids {
                    v.text().into_owned()
                } else {
                    hash_id(&v.text())
                }
            })
            .collect();
        tracing::debug!(model = %model_name, customers = n, ids = ?ids, "scored");
    }
    // one allocation for the body in the common case (~2 KB per customer with a playbook)
    let mut body = Vec::with_capacity(256 + 2560 * n);
    serde_json::to_writer(
        &mut body,
        &ScoreResponse {
            model: ModelRef {
                name: &model_name,
                version: &scorer.version,
            },
            results,
        },
    )
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("could not serialise the response: {e}"),
        )
    })?;
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body))
}

async fn score_default(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult {
    score_with(state, req, payload, None).await
}

async fn score_named(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<String>,
) -> ApiResult {
    score_with(state, req, payload, Some(path.into_inner())).await
}

fn model_summary(name: &str, m: &LoadedModel, default: bool) -> Value {
    let b = &m.scorer.bundle;
    serde_json::json!({
        "name": name,
        "version": m.scorer.version,
        "default": default,
        "mode": b.mode,
        "id_column": b.id_column,
        "inputs": b.encoder.inputs.iter().map(|i| serde_json::json!({"name": i.name, "type": i.kind.name()})).collect::<Vec<_>>(),
        "threshold": b.model.threshold,
        "training_rows": b.training_rows,
        "loaded_at": m.loaded_at,
    })
}

async fn list_models(state: web::Data<AppState>, req: HttpRequest) -> ApiResult {
    check_api_auth(&state, &req)?;
    let reg = state.current();
    let models: Vec<Value> = reg
        .models
        .iter()
        .map(|(n, m)| model_summary(n, m, reg.default.as_deref() == Some(n)))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "default": reg.default, "models": models })))
}

async fn get_model(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> ApiResult {
    check_api_auth(&state, &req)?;
    let name = path.into_inner();
    let reg = state.current();
    let Some(m) = reg.models.get(&name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_model",
            format!("no model named '{name}'"),
        ));
    };
    let mut v = model_summary(&name, m, reg.default.as_deref() == Some(&name));
    v["card"] = m.card.clone().unwrap_or(Value::Null);
    Ok(HttpResponse::Ok().json(v))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let reg = state.current();
    if reg.models.is_empty() {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "no model is loaded",
        )
        .response()
    } else {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready", "models": reg.models.len()}))
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let reg = state.current();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(&reg))
}

async fn reload(state: web::Data<AppState>, req: HttpRequest) -> ApiResult {
    check_admin_auth(&state, &req)?;
    let report = state.reload().map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reload_failed",
            e.to_string(),
        )
    })?;
    if report.failed.is_empty() {
        Ok(HttpResponse::Ok().json(report))
    } else {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reload_failed",
            format!(
                "{} bundle(s) failed to load; previous versions keep serving",
                report.failed.len()
            ),
        );
        e.details = serde_json::to_value(&report).ok();
        Err(e)
    }
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {} {}", req.method(), req.path()),
    )
    .response()
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.path()),
    )
    .response()
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Open (health, readiness, metrics, the API description).
    Open,
    /// Bearer token from `CHURN_API_TOKENS` when set.
    Api,
    /// Bearer token `CHURN_ADMIN_TOKEN`.
    Admin,
}

#[derive(Debug, Clone, Copy)]
enum Handler {
    ScoreDefault,
    ScoreNamed,
    ListModels,
    GetModel,
    Reload,
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
}

/// One route of the API: the single table both the router and `/openapi.json` are built from.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: &'static str,
    /// Path pattern.
    pub path: &'static str,
    /// One-line description.
    pub summary: &'static str,
    /// Access rule.
    pub access: Access,
    handler: Handler,
}

/// Every route the server answers.
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        method: "POST",
        path: "/v1/score",
        summary: "Score customers with the default model",
        access: Access::Api,
        handler: Handler::ScoreDefault,
    },
    RouteSpec {
        method: "POST",
        path: "/v1/models/{name}/score",
        summary: "Score customers with a named model",
        access: Access::Api,
        handler: Handler::ScoreNamed,
    },
    RouteSpec {
        method: "GET",
        path: "/v1/models",
        summary: "List the models being served",
        access: Access::Api,
        handler: Handler::ListModels,
    },
    RouteSpec {
        method: "GET",
        path: "/v1/models/{name}",
        summary: "One model with its model card",
        access: Access::Api,
        handler: Handler::GetModel,
    },
    RouteSpec {
        method: "POST",
        path: "/v1/admin/reload",
        summary: "Reload bundles from disk and swap atomically",
        access: Access::Admin,
        handler: Handler::Reload,
    },
    RouteSpec {
        method: "GET",
        path: "/healthz",
        summary: "Liveness: the process is up",
        access: Access::Open,
        handler: Handler::Healthz,
    },
    RouteSpec {
        method: "GET",
        path: "/readyz",
        summary: "Readiness: at least one model is loaded",
        access: Access::Open,
        handler: Handler::Readyz,
    },
    RouteSpec {
        method: "GET",
        path: "/metrics",
        summary: "Prometheus metrics",
        access: Access::Open,
        handler: Handler::Metrics,
    },
    RouteSpec {
        method: "GET",
        path: "/openapi.json",
        summary: "This API description (OpenAPI 3.1)",
        access: Access::Open,
        handler: Handler::OpenApi,
    },
];

/// Register all routes of [`ROUTES`] on an actix `App`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for r in ROUTES {
        let route = match r.method {
            "POST" => web::post(),
            _ => web::get(),
        };
        let route = match r.handler {
            Handler::ScoreDefault => route.to(score_default),
            Handler::ScoreNamed => route.to(score_named),
            Handler::ListModels => route.to(list_models),
            Handler::GetModel => route.to(get_model),
            Handler::Reload => route.to(reload),
            Handler::Healthz => route.to(healthz),
            Handler::Readyz => route.to(readyz),
            Handler::Metrics => route.to(metrics),
            Handler::OpenApi => route.to(openapi),
        };
        cfg.service(
            web::resource(r.path)
                .route(route)
                .default_service(web::to(method_not_allowed)),
        );
    }
}

fn input_schema(spec: &crate::features::InputSpec) -> Value {
    use crate::features::InputEncoding;
    use crate::ingest::FeatureKind;
    let mut v = match (&spec.kind, &spec.encoding) {
        (FeatureKind::Numeric, _) => serde_json::json!({
            "type": ["number", "string", "null"],
            "description": "a number (numeric strings accepted); null = missing, imputed"
        }),
        (
            FeatureKind::Boolean {
                true_token,
                false_token,
            },
            _,
        ) => serde_json::json!({
            "type": ["boolean", "string", "number", "null"],
            "description": format!("'{true_token}' / '{false_token}', true / false or 1 / 0")
        }),
        (FeatureKind::Categorical, InputEncoding::OneHot { levels, .. }) => serde_json::json!({
            "type": ["string", "number", "null"],
            "description": "a category; unseen values are scored as 'other' with a warning",
            "examples": levels,
        }),
        (FeatureKind::Categorical, _) => serde_json::json!({"type": ["string", "null"]}),
    };
    v["x-churn-type"] = Value::from(spec.kind.name());
    v
}

/// The OpenAPI 3.1 description, built from [`ROUTES`] and the default model's inputs.
pub fn openapi_spec(reg: &Registry) -> Value {
    use serde_json::json;
    let error = json!({"$ref": "#/components/schemas/Error"});
    let err_resp =
        |d: &str| json!({"description": d, "content": {"application/json": {"schema": error}}});
    let mut paths = Map::new();
    for r in ROUTES {
        let mut responses = Map::new();
        let ok = match r.handler {
            Handler::ScoreDefault | Handler::ScoreNamed => {
                json!({"description": "scores in input order", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScoreResponse"}}}})
            }
            Handler::Metrics => {
                json!({"description": "Prometheus text format", "content": {"text/plain": {}}})
            }
            _ => json!({"description": "OK", "content": {"application/json": {}}}),
        };
        responses.insert("200".into(), ok);
        if matches!(r.handler, Handler::ScoreDefault | Handler::ScoreNamed) {
            responses.insert("400".into(), err_resp("malformed JSON"));
            responses.insert("413".into(), err_resp("body or batch too large"));
            responses.insert(
                "415".into(),
                err_resp("Content-Type is not application/json"),
            );
            responses.insert("422".into(), err_resp("wrong types, NaN / infinite values or missing fields; `field` names the culprit, e.g. customers[3].tenure"));
            responses.insert("404".into(), err_resp("unknown model"));
        }
        if matches!(r.handler, Handler::GetModel) {
            responses.insert("404".into(), err_resp("unknown model"));
        }
        if matches!(r.handler, Handler::Reload) {
            responses.insert(
                "422".into(),
                err_resp("a bundle failed to load; the previous version keeps serving"),
            );
        }
        if matches!(r.handler, Handler::Readyz) {
            responses.insert("503".into(), err_resp("no model loaded"));
        }
        if r.access != Access::Open {
            responses.insert("401".into(), err_resp("missing bearer token"));
            responses.insert(
                "403".into(),
                err_resp("invalid token, or admin endpoints disabled"),
            );
        }
        responses.insert("405".into(), err_resp("method not allowed"));
        let mut op = json!({"summary": r.summary, "responses": responses});
        if r.path.contains("{name}") {
            op["parameters"] = json!([{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}]);
        }
        if matches!(r.handler, Handler::ScoreDefault | Handler::ScoreNamed) {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScoreRequest"}}}});
        }
        match r.access {
            Access::Open => {}
            Access::Api => op["security"] = json!([{"bearer": []}]),
            Access::Admin => op["security"] = json!([{"admin": []}]),
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method.to_ascii_lowercase()] = op;
    }
    let default = reg.default.as_ref().and_then(|d| reg.models.get(d));
    let customer = match default {
        Some(m) => {
            let b = &m.scorer.bundle;
            let mut props = Map::new();
            if let Some(id) = &b.id_column {
                props.insert(id.clone(), json!({"type": ["string", "number"], "description": "customer id (echoed as customer_id)"}));
            }
            for i in &b.encoder.inputs {
                props.insert(i.name.clone(), input_schema(i));
            }
            json!({
                "type": "object",
                "description": format!("raw columns as in training data of the default model '{}'; every input is required (null = missing)", b.name),
                "properties": props,
                "required": b.encoder.inputs.iter().map(|i| i.name.clone()).collect::<Vec<_>>(),
            })
        }
        None => json!({"type": "object", "description": "raw columns as in training data"}),
    };
    json!({
        "openapi": "3.1.0",
        "info": {"title": "churn", "version": env!("CARGO_PKG_VERSION"), "description": "Churn probability, reasons and warnings for customers."},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "one of CHURN_API_TOKENS (only when set)"},
                "admin": {"type": "http", "scheme": "bearer", "description": "CHURN_ADMIN_TOKEN"}
            },
            "schemas": {
                "Customer": customer,
                "ScoreRequest": {"type": "object", "required": ["customers"], "properties": {"customers": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Customer"}}}},
                "ScoreResult": {"type": "object", "properties": {
                    "customer_id": {"type": ["string", "number"]},
                    "churn_probability": {"type": "number", "minimum": 0, "maximum": 1},
                    "probability_interval": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2, "description": "95% Wilson interval of the leaf, calibrated"},
                    "predicted_churn": {"type": "boolean", "description": "churn_probability >= the model's threshold"},
                    "leaf_support": {"type": "integer", "description": "training customers in the leaf"},
                    "reasons": {"type": "array", "items": {"type": "object", "properties": {"condition": {"type": "string"}, "field": {"type": "string"}, "effect": {"type": "number"}}}},
                    "warnings": {"type": "array", "items": {"type": "object", "properties": {"kind": {"enum": ["unseen_category", "imputed"]}, "field": {"type": "string"}}}}
                }},
                "ScoreResponse": {"type": "object", "properties": {
                    "model": {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "string"}}},
                    "results": {"type": "array", "items": {"$ref": "#/components/schemas/ScoreResult"}}
                }},
                "Error": {"type": "object", "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}, "details": {}
                }}}}
            }
        }
    })
}

async fn openapi(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(openapi_spec(&state.current()))
}

/// Run the server until SIGTERM / Ctrl-C (graceful). SIGHUP reloads the models.
pub async fn run(config: ServerConfig) -> Result<(), ServerError> {
    let workers = if config.workers == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        config.workers
    };
    let bind = config.bind.clone();
    let (state, report) = AppState::new(config)?;
    for (name, err) in &report.failed {
        tracing::error!(model = %name, error = %err, "bundle not loaded");
    }
    let reg = state.current();
    tracing::info!(models = ?report.loaded, default = ?reg.default, "models loaded");
    drop(reg);
    let state = web::Data::new(state);
    #[cfg(unix)]
    {
        let st = state.clone();
        actix_web::rt::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                tracing::warn!("cannot listen for SIGHUP");
                return;
            };
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading models");
                if let Err(e) = st.reload() {
                    tracing::error!(error = %e, "reload failed");
                }
            }
        });
    }
    let data = state.clone();
    let server = HttpServer::new(move || {
        let st = data.clone();
        App::new()
            .app_data(data.clone())
            .wrap_fn(move |req, srv| {
                use actix_web::dev::Service;
                let start = Instant::now();
                let method = req.method().clone();
                let path = req.path().to_string();
                let fut = srv.call(req);
                let st = st.clone();
                async move {
                    let res = fut.await?;
                    let secs = start.elapsed().as_secs_f64();
                    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
                    let status = res.status().as_u16();
                    st.metrics.observe(&route, status, secs);
                    tracing::info!(%method, %path, %route, status, latency_us = (secs * 1e6) as u64, "request");
                    Ok(res)
                }
            })
            .configure(configure)
            .default_service(web::to(not_found))
    })
    .workers(workers)
    .shutdown_timeout(10)
    .bind(&bind)?;
    for addr in server.addrs() {
        tracing::info!(%addr, workers, "listening");
        eprintln!("churn-serve listening on http://{addr}");
    }
    server.run().await?;
    Ok(())
}
