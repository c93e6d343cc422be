//! `GET /v1/evaluation` (the evaluation of `churn-train evaluate`, as JSON) and `GET /v1/kpis`,
//! both computed from the store.

use super::lookup::{model_name, store_of};
use super::params::{self, Instant, Whole};
use super::spec::{
    ok_schema, ErrorResponse, Method, QueryParam, RouteSpec, INVALID_QUERY, OK_JSON,
    UNKNOWN_CUSTOMER_OR_MODEL,
};
use crate::evaluate::{self, EvalError, Period};
use crate::server::auth::{Access, Scope};
use crate::server::error::{ApiCode, ApiError, ApiResult};
use crate::server::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::sync::atomic::{AtomicBool, Ordering};

/// The evaluation and the KPIs, both computed over the store.
pub(super) const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        method: Method::Get,
        path: "/v1/evaluation",
        access: Access::Api(&[Scope::Read]),
        operation_id: "getEvaluation",
        summary: "Evaluation of a model from the store: realised and expected performance, lift of each action against the control group, learned save rates (?model, from, to, as_of, horizon_days)",
        query: &[
            QueryParam::optional("model", "model name (default: the default model)"),
            QueryParam::optional(
                "from",
                "predictions scored on or after (YYYY-MM-DD or ISO-8601)",
            ),
            QueryParam::optional("to", "predictions scored before"),
            QueryParam::optional("as_of", "judge labels as of (default: now)"),
            QueryParam::integer(
                "horizon_days",
                "label horizon in days (default: the model's, else 90)",
            ),
            QueryParam::optional(
                "compare",
                "instead of the evaluation: two versions or aliases of the model, e.g. `champion,challenger`, compared on the same matured customers without a contact (paired AUC difference by DeLong, Brier and log-loss differences by paired bootstrap, calibration, churners caught at the same budget, a verdict)",
            ),
            QueryParam::optional(
                "budget",
                "contacts each version gets in the comparison (default: 10% of the compared customers)",
            ),
        ],
        body: None,
        ok: ok_schema("Evaluation"),
        errors: ERRORS,
        register: |r| r.to(get_evaluation),
    },
    RouteSpec {
        method: Method::Get,
        path: "/v1/kpis",
        access: Access::Api(&[Scope::Read]),
        operation_id: "getKpis",
        summary: "Retention KPIs of a period (default: the last full month): retention, churn, repurchase, NPS, average order value, CLV (?model, from, to, by=segment, margin_rate, discount_rate)",
        query: &[
            QueryParam::optional(
                "model",
                "model whose predictions define customers and segments",
            ),
            QueryParam::optional(
                "from",
                "period start (default: the last full month; give both or neither)",
            ),
            QueryParam::optional("to", "period end, exclusive"),
            QueryParam::optional("by", "`segment`: add one row per segment"),
            QueryParam::optional(
                "margin_rate",
                "share of revenue that is margin, for CLV (default 0.3)",
            ),
            QueryParam::optional(
                "discount_rate",
                "discount rate per period, for CLV (default 0.01)",
            ),
        ],
        body: None,
        ok: OK_JSON,
        errors: ERRORS,
        register: |r| r.to(get_kpis),
    },
];

const ERRORS: &[ErrorResponse] = &[
    UNKNOWN_CUSTOMER_OR_MODEL,
    INVALID_QUERY,
    ErrorResponse::new(
        503,
        "no prediction store, it did not answer, or another evaluation is running (one at a time)",
    ),
];

/// The query of `GET /v1/evaluation`, in the order its values are checked.
#[derive(Deserialize)]
struct EvaluationQuery {
    model: Option<String>,
    horizon_days: Option<Whole<1, 3650>>,
    from: Option<Instant>,
    to: Option<Instant>,
    as_of: Option<Instant>,
    compare: Option<String>,
    budget: Option<Whole<1, 100_000_000>>,
}

/// The query of `GET /v1/kpis`, in the order its values are checked.
#[derive(Deserialize)]
struct KpiQuery {
    model: Option<String>,
    from: Option<Instant>,
    to: Option<Instant>,
    by: Option<By>,
    margin_rate: Option<f64>,
    discount_rate: Option<f64>,
}

/// `?by=` of the KPIs.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum By {
    /// One row per segment as well.
    Segment,
}

impl From<EvalError> for ApiError {
    fn from(e: EvalError) -> ApiError {
        match e {
            EvalError::Store(s) => s.into(),
            EvalError::Invalid { field, message } => {
                ApiError::new(ApiCode::InvalidValue, format!("{field}: {message}")).field(field)
            }
            EvalError::Score(e) => ApiError::new(ApiCode::InvalidValue, e.to_string()),
        }
    }
}

/// The period of an evaluation query.
fn period(q: &EvaluationQuery) -> Period {
    let ms = |i: Option<Instant>| i.map(|Instant(ms)| ms);
    Period {
        from: ms(q.from),
        to: ms(q.to),
        as_of: ms(q.as_of),
        horizon_days: q.horizon_days.map(|Whole(n)| n),
    }
}

/// Held while one evaluation runs; released when dropped (also when the request is cancelled).
struct Running<'a>(&'a AtomicBool);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The one-at-a-time gate of evaluations: 503 `server_busy` while another runs in this server
/// or, on PostgreSQL, in any server sharing the store (an advisory lock held for the run).
async fn gate<'a>(
    state: &'a AppState,
    store: &crate::store::Store,
) -> Result<(Running<'a>, crate::store::Exclusive), ApiError> {
    if state.evaluating.swap(true, Ordering::Acquire) {
        return Err(ApiError::new(
            ApiCode::ServerBusy,
            "another evaluation is running (one at a time: each reads the whole log); retry when it ends",
        ));
    }
    let running = Running(&state.evaluating);
    match store.try_exclusive("evaluation").await? {
        Some(held) => Ok((running, held)),
        None => Err(ApiError::new(
            ApiCode::ServerBusy,
            "another server sharing this store is running an evaluation (one at a time: each reads the whole log); retry when it ends",
        )),
    }
}

/// Run `compute` over `data` off the request workers (the arithmetic over a million
/// predictions), then drop the data on the store's thread, which allocated it, and hand the
/// memory back to the OS on both threads ([`crate::server::ServerConfig::release_memory`]):
/// freed elsewhere, the allocator kept it for that thread (RSS stayed at the run's peak).
async fn off_workers<R: Send + 'static>(
    state: &AppState,
    store: &crate::store::Store,
    data: crate::evaluate::EvalData,
    what: &str,
    compute: impl FnOnce(&crate::evaluate::EvalData) -> R + Send + 'static,
) -> Result<R, ApiError> {
    let release = state.config.release_memory;
    let (r, data) = web::block(move || {
        let r = compute(&data);
        release();
        (r, data)
    })
    .await
    .map_err(|e| ApiError::new(ApiCode::Internal, format!("{what} failed: {e}")))?;
    let freed = store
        .run(async move {
            drop(data);
            release();
            Ok(())
        })
        .await;
    if let Err(e) = freed {
        tracing::warn!(error = %e, "could not free the data of the {what} on the store thread");
    }
    Ok(r)
}

/// `GET /v1/evaluation?model=&from=&to=&as_of=&horizon_days=`.
pub async fn get_evaluation(state: web::Data<AppState>, req: HttpRequest) -> ApiResult {
    let store = store_of(&state)?;
    let query: EvaluationQuery = params::query(&req)?;
    let period = period(&query);
    let model = model_name(&state, query.model.clone())?;
    if let Some(names) = &query.compare {
        return get_comparison(&state, &model, names, &query, &period).await;
    }
    let _one = gate(&state, &store).await?;
    let loaded = state.current().models.get(&model).cloned();
    let data = crate::evaluate::load(
        &store,
        &model,
        (period.from, period.to),
        crate::store::Events::LabelsAndActions,
    )
    .await?;
    let ev = off_workers(&state, &store, data, "evaluation", move |data| {
        let bundle = loaded.as_ref().map(|m| &m.scorer.bundle);
        evaluate::evaluate(data, &evaluate::options(&model, bundle, &period))
    })
    .await?;
    let ev = ev?;
    if let Some(d) = &ev.drift {
        state.metrics.drift(&ev.model, d);
    }
    state.metrics.performance(&ev.model, &ev.performance);
    Ok(HttpResponse::Ok().json(ev))
}

/// `GET /v1/evaluation?compare=A,B`: two versions of `model` on the same matured customers.
async fn get_comparison(
    state: &AppState,
    model: &str,
    names: &str,
    query: &EvaluationQuery,
    period: &Period,
) -> ApiResult {
    use crate::evaluate::compare;
    let store = store_of(state)?;
    let Some((a, b)) = names
        .split_once(',')
        .filter(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains(','))
    else {
        return Err(ApiError::new(
            ApiCode::InvalidValue,
            "compare: expected two versions or aliases, e.g. champion,challenger",
        )
        .field("compare"));
    };
    let (a, b) = (a.to_string(), b.to_string());
    let _one = gate(state, &store).await?;
    let dir = state.config.models_dir.join(model);
    let names = (a.clone(), b.clone());
    let [first, second] = web::block(move || compare::load_pair(&dir, [&names.0, &names.1]))
        .await
        .map_err(|e| {
            ApiError::new(
                ApiCode::Internal,
                format!("loading the versions failed: {e}"),
            )
        })?
        .map_err(|e| match e {
            crate::bundle::BundleError::Registry(r) => ApiError::from(r),
            other => ApiError::new(
                ApiCode::InvalidValue,
                format!("compare: a version does not load: {other}"),
            )
            .field("compare"),
        })?;
    let horizon = evaluate::horizon(period.horizon_days, Some(&first.bundle)).0;
    let as_of = period.as_of.unwrap_or_else(crate::time::now_ms);
    let (rows, counts) =
        compare::from_store(&store, model, (period.from, period.to), as_of, horizon).await?;
    let budget = query
        .budget
        .map_or(rows.len().div_ceil(10), |Whole(n)| n as usize);
    let c =
        web::block(move || compare::compare(&rows, counts, (&a, &first), (&b, &second), budget))
            .await
            .map_err(|e| {
                ApiError::new(ApiCode::Internal, format!("the comparison failed: {e}"))
            })??;
    Ok(HttpResponse::Ok().json(c))
}

/// `GET /v1/kpis?model=&from=&to=&by=segment&margin_rate=&discount_rate=`: the KPIs of a
/// period (default: the last full month); `by=segment` adds the per-segment rows.
pub async fn get_kpis(state: web::Data<AppState>, req: HttpRequest) -> ApiResult {
    use crate::evaluate::kpi;
    let store = store_of(&state)?;
    let query: KpiQuery = params::query(&req)?;
    let model = model_name(&state, query.model)?;
    let mut opt = kpi::KpiOptions::last_full_month(crate::time::now_ms());
    match (query.from, query.to) {
        (Some(Instant(f)), Some(Instant(t))) => {
            opt.from = f;
            opt.to = t;
        }
        (None, None) => {}
        _ => {
            return Err(ApiError::new(
                ApiCode::InvalidValue,
                "give both from and to, or neither (the last full month)",
            )
            .field("from"))
        }
    }
    let by_segment = matches!(query.by, Some(By::Segment));
    opt.margin_rate = query.margin_rate.unwrap_or(opt.margin_rate);
    opt.discount_rate = query.discount_rate.unwrap_or(opt.discount_rate);
    kpi::check(&opt)?;
    let _one = gate(&state, &store).await?;
    let data =
        crate::evaluate::load(&store, &model, (None, None), crate::store::Events::All).await?;
    let mut k = off_workers(&state, &store, data, "KPIs", move |data| {
        kpi::kpis(data, &opt)
    })
    .await?;
    if !by_segment {
        k.by_segment.clear();
    }
    Ok(HttpResponse::Ok().json(k))
}
