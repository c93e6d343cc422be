//! `GET /v1/evaluation`: the evaluation of `churn-train evaluate`, as JSON, from the store.

use super::customers::{model_name, param, query_pairs};
use super::outcomes::store_of;
use crate::evaluate::{self, EvalError, Period};
use crate::server::error::{ApiCode, ApiError, ApiResult};
use crate::server::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use std::sync::atomic::{AtomicBool, Ordering};

impl From<EvalError> for ApiError {
    fn from(e: EvalError) -> ApiError {
        match e {
            EvalError::Store(s) => s.into(),
            EvalError::Invalid { field, message } => {
                ApiError::new(ApiCode::InvalidValue, format!("{field}: {message}")).field(field)
            }
        }
    }
}

/// A date parameter (`YYYY-MM-DD` or ISO-8601) as Unix milliseconds.
fn instant(pairs: &[(String, String)], key: &'static str) -> Result<Option<i64>, ApiError> {
    param(pairs, key)
        .map(|v| {
            crate::time::parse(v).ok_or_else(|| {
                ApiError::new(
                    ApiCode::InvalidValue,
                    format!("{key} must be a date (YYYY-MM-DD) or an ISO-8601 instant, got '{v}'"),
                )
                .field(key)
            })
        })
        .transpose()
}

/// The period of a query string: `from`, `to`, `as_of`, `horizon_days`.
fn period(pairs: &[(String, String)]) -> Result<Period, ApiError> {
    let horizon_days = param(pairs, "horizon_days")
        .map(|v| match v.parse::<u32>() {
            Ok(n) if (1..=3650).contains(&n) => Ok(n),
            _ => Err(ApiError::new(
                ApiCode::InvalidValue,
                format!("horizon_days must be a whole number from 1 to 3650, got '{v}'"),
            )
            .field("horizon_days")),
        })
        .transpose()?;
    Ok(Period {
        from: instant(pairs, "from")?,
        to: instant(pairs, "to")?,
        as_of: instant(pairs, "as_of")?,
        horizon_days,
    })
}

/// Held while one evaluation runs; released when dropped (also when the request is cancelled).
struct Running<'a>(&'a AtomicBool);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The one-at-a-time gate of evaluations: 503 `server_busy` while another runs.
fn gate(state: &AppState) -> Result<Running<'_>, ApiError> {
    if state.evaluating.swap(true, Ordering::Acquire) {
        return Err(ApiError::new(
            ApiCode::ServerBusy,
            "another evaluation is running (one at a time: each reads the whole log); retry when it ends",
        ));
    }
    Ok(Running(&state.evaluating))
}

/// `GET /v1/evaluation?model=&from=&to=&as_of=&horizon_days=`.
pub async fn get_evaluation(state: web::Data<AppState>, req: HttpRequest) -> ApiResult {
    let store = store_of(&state)?;
    let pairs = query_pairs(&req)?;
    let model = model_name(&state, &pairs)?;
    let period = period(&pairs)?;
    let _one = gate(&state)?;
    let loaded = state.current().models.get(&model).cloned();
    let data = store
        .load_evaluation(&model, period.from, period.to, false)
        .await?;
    // the arithmetic over a million predictions runs off the request workers
    let ev = web::block(move || {
        let bundle = loaded.as_ref().map(|m| &m.scorer.bundle);
        evaluate::evaluate(&data, &evaluate::options(&model, bundle, &period))
    })
    .await
    .map_err(|e| ApiError::new(ApiCode::Internal, format!("evaluation failed: {e}")))??;
    if let Some(d) = &ev.drift {
        state.metrics.drift(&ev.model, d);
    }
    Ok(HttpResponse::Ok().json(ev))
}

/// A rate parameter within `range`, or `default`.
fn rate(pairs: &[(String, String)], key: &'static str, default: f64) -> Result<f64, ApiError> {
    match param(pairs, key) {
        None => Ok(default),
        Some(v) => v.parse::<f64>().map_err(|_| {
            ApiError::new(
                ApiCode::InvalidValue,
                format!("{key} must be a number, got '{v}'"),
            )
            .field(key)
        }),
    }
}

/// `GET /v1/kpis?model=&from=&to=&by=segment&margin_rate=&discount_rate=`: the KPIs of a
/// period (default: the last full month); `by=segment` adds the per-segment rows.
pub async fn get_kpis(state: web::Data<AppState>, req: HttpRequest) -> ApiResult {
    use crate::evaluate::kpi;
    let store = store_of(&state)?;
    let pairs = query_pairs(&req)?;
    let model = model_name(&state, &pairs)?;
    let mut opt = kpi::KpiOptions::last_full_month(crate::store::now_ms());
    match (instant(&pairs, "from")?, instant(&pairs, "to")?) {
        (Some(f), Some(t)) => {
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
    let by_segment = match param(&pairs, "by") {
        None => false,
        Some("segment") => true,
        Some(v) => {
            return Err(ApiError::new(
                ApiCode::InvalidValue,
                format!("by '{v}' is not one of: segment"),
            )
            .field("by"))
        }
    };
    opt.margin_rate = rate(&pairs, "margin_rate", opt.margin_rate)?;
    opt.discount_rate = rate(&pairs, "discount_rate", opt.discount_rate)?;
    kpi::check(&opt)?;
    let _one = gate(&state)?;
    let data = store.load_evaluation(&model, None, None, true).await?;
    let mut k = web::block(move || kpi::kpis(&data, &opt))
        .await
        .map_err(|e| ApiError::new(ApiCode::Internal, format!("KPIs failed: {e}")))?;
    if !by_segment {
        k.by_segment.clear();
    }
    Ok(HttpResponse::Ok().json(k))
}
