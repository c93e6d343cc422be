//! `GET /v1/customers/{id}` (latest prediction) and `GET /v1/customers` (worklist), answered
//! from the prediction store.

use super::outcomes::store_of;
use crate::server::error::{ApiCode, ApiError, ApiResult};
use crate::server::AppState;
use crate::store::{Cursor, StoredPrediction, WorklistFilter, WorklistRow};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

/// Largest worklist page.
const MAX_LIMIT: usize = 1000;

/// The query string as (key, value) pairs; a repeated key keeps its last value.
pub(super) fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, ApiError> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .map_err(|e| ApiError::new(ApiCode::InvalidValue, format!("bad query string: {e}")))
}

pub(super) fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The model a query names (`?model=`), or the default one; it must be served.
pub(super) fn model_name(state: &AppState, pairs: &[(String, String)]) -> Result<String, ApiError> {
    let name = param(pairs, "model").map(str::to_string);
    let (name, _) = super::score::resolve_model(&state.current(), name)?;
    Ok(name)
}

fn prediction_json(id: &str, p: &StoredPrediction) -> Value {
    let parse = |t: &str| serde_json::from_str::<Value>(t).unwrap_or(Value::Null);
    json!({
        "customer_id": id,
        "model": p.model,
        "model_version": p.model_version,
        "prediction_id": p.prediction_id,
        "request_id": p.request_id,
        "scored_at": crate::time::format_instant_millis(p.scored_at),
        "age_seconds": ((crate::store::now_ms() - p.scored_at).max(0) as f64) / 1000.0,
        "source": p.source,
        "churn_probability": p.probability,
        "probability_interval": [p.low, p.high],
        "predicted_churn": p.predicted_churn,
        "risk_band": p.risk_band,
        "segment_id": p.segment_id,
        "segment": p.segment,
        "rfm_class": p.rfm_class,
        "lifecycle_stage": p.lifecycle_stage,
        "treatment": p.treatment,
        "customer_value": p.customer_value,
        "expected_loss": p.expected_loss,
        "top_action": p.top_action,
        "recommendations": parse(&p.recommendations),
        "input": parse(&p.input),
    })
}

/// `GET /v1/customers/{id}?model=NAME`.
pub async fn get_customer(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> ApiResult {
    let store = store_of(&state)?;
    let id = path.into_inner();
    if id.len() > 256 {
        return Err(ApiError::new(
            ApiCode::InvalidValue,
            format!("customer ids have at most 256 characters, got {}", id.len()),
        )
        .field("id"));
    }
    let pairs = query_pairs(&req)?;
    let model = model_name(&state, &pairs)?;
    match store.latest_prediction(&id, &model).await? {
        Some(p) => Ok(HttpResponse::Ok().json(prediction_json(&id, &p))),
        None => Err(ApiError::new(
            ApiCode::UnknownCustomer,
            format!("no stored prediction of model '{model}' for this customer"),
        )),
    }
}

/// A query value that must be one of `allowed`.
fn one_of(
    pairs: &[(String, String)],
    key: &'static str,
    allowed: &[&str],
) -> Result<Option<String>, ApiError> {
    match param(pairs, key) {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v.to_string())),
        Some(v) => Err(ApiError::new(
            ApiCode::InvalidValue,
            format!("{key} '{v}' is not one of: {}", allowed.join(", ")),
        )
        .field(key)),
    }
}

/// The worklist filter of a query string.
fn filter(state: &AppState, pairs: &[(String, String)]) -> Result<WorklistFilter, ApiError> {
    let limit = match param(pairs, "limit") {
        None => 100,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::new(
                    ApiCode::InvalidValue,
                    format!("limit must be a whole number from 1 to {MAX_LIMIT}, got '{v}'"),
                )
                .field("limit"))
            }
        },
    };
    let after = match param(pairs, "cursor") {
        None | Some("") => None,
        Some(c) => Some(Cursor::decode(c).ok_or_else(|| {
            ApiError::new(
                ApiCode::InvalidValue,
                "cursor is not one this server gave out (use next_cursor as is)",
            )
            .field("cursor")
        })?),
    };
    Ok(WorklistFilter {
        model: model_name(state, pairs)?,
        risk_band: one_of(pairs, "risk_band", &crate::playbook::RiskBand::NAMES)?,
        segment: param(pairs, "segment").map(str::to_string),
        treatment: one_of(pairs, "treatment", &crate::playbook::Treatment::NAMES)?,
        limit,
        after,
    })
}

fn row_json(r: &WorklistRow) -> Value {
    let mut v = json!({
        "customer_key": r.customer_key,
        "prediction_id": r.prediction_id,
        "scored_at": crate::time::format_instant_millis(r.scored_at),
        "churn_probability": r.probability,
        "risk_band": r.risk_band,
        "segment": r.segment,
        "treatment": r.treatment,
        "expected_loss": r.expected_loss,
        "top_action": r.top_action,
    });
    if let Some(id) = &r.customer_id {
        v["customer_id"] = Value::from(id.clone());
    }
    v
}

/// `GET /v1/customers?model=&risk_band=&segment=&treatment=&limit=&cursor=`.
pub async fn worklist(state: web::Data<AppState>, req: HttpRequest) -> ApiResult {
    let store = store_of(&state)?;
    let pairs = query_pairs(&req)?;
    let f = filter(&state, &pairs)?;
    let page = store.worklist(f).await?;
    Ok(HttpResponse::Ok().json(json!({
        "customers": page.rows.iter().map(row_json).collect::<Vec<_>>(),
        "next_cursor": page.next.map(|c| c.encode()),
    })))
}
