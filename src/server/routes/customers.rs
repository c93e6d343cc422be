//! `GET /v1/customers/{id}` (latest prediction) and `GET /v1/customers` (worklist), answered
//! from the prediction store.

use super::lookup::{model_name, store_of};
use super::params::{self, Whole};
use super::spec::{
    ok_schema, ErrorResponse, Method, QueryParam, RouteSpec, INVALID_QUERY, NO_STORE,
    UNKNOWN_CUSTOMER_OR_MODEL,
};
use crate::playbook::{RiskBand, Treatment};
use crate::server::auth::{Access, Scope};
use crate::server::error::{ApiCode, ApiError, ApiResult};
use crate::server::AppState;
use crate::store::{Cursor, StoredPrediction, WorklistFilter, WorklistRow};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

/// A customer's latest prediction and the worklist.
pub(super) const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        method: Method::Get,
        path: "/v1/customers/{id}",
        access: Access::Api(&[Scope::Read]),
        operation_id: "getCustomer",
        summary: "A customer's latest stored prediction (?model=NAME)",
        query: &[MODEL],
        body: None,
        ok: ok_schema("CustomerRecord"),
        errors: ERRORS,
        register: |r| r.to(get_customer),
    },
    RouteSpec {
        method: Method::Get,
        path: "/v1/customers",
        access: Access::Api(&[Scope::Read]),
        operation_id: "getWorklist",
        summary: "Worklist: latest prediction per customer by expected loss or, with order=incremental_value, by the expected net value of the contact; keyset-paginated (?model, risk_band, segment, treatment, order, limit, cursor)",
        query: &[
            MODEL,
            QueryParam::optional("risk_band", "only this risk band: low, medium or high"),
            QueryParam::optional("segment", "only this segment name"),
            QueryParam::optional("treatment", "only this group: treatment or control"),
            QueryParam::optional(
                "order",
                "expected_loss (default: probability × value, riskiest first) or incremental_value (the expected net value of the contact)",
            ),
            QueryParam::integer("limit", "rows per page, 1..1000 (default 100)"),
            QueryParam::optional(
                "cursor",
                "next_cursor of the previous page, passed back as it came",
            ),
        ],
        body: None,
        ok: ok_schema("WorklistPage"),
        errors: ERRORS,
        register: |r| r.to(worklist),
    },
];

const MODEL: QueryParam = QueryParam::optional("model", "model name (default: the default model)");

const ERRORS: &[ErrorResponse] = &[UNKNOWN_CUSTOMER_OR_MODEL, INVALID_QUERY, NO_STORE];

/// Largest worklist page.
const MAX_LIMIT: u32 = 1000;

/// The query of `GET /v1/customers/{id}`.
#[derive(Deserialize)]
struct CustomerQuery {
    /// Model name (default: the default model).
    model: Option<String>,
}

/// The query of `GET /v1/customers`, in the order its values are checked.
#[derive(Deserialize)]
struct WorklistQuery {
    limit: Option<Whole<1, MAX_LIMIT>>,
    cursor: Option<String>,
    model: Option<String>,
    risk_band: Option<RiskBand>,
    segment: Option<String>,
    treatment: Option<Treatment>,
    order: Option<crate::store::WorklistOrder>,
}

fn prediction_json(id: &str, p: &StoredPrediction) -> Value {
    let parse = |t: &str| serde_json::from_str::<Value>(t).unwrap_or(Value::Null);
    // the store keeps exact expected values (evaluation reads them); answers show cents
    let in_cents = |mut v: Value| {
        if let Some(list) = v.as_array_mut() {
            for r in list {
                if let Some(x) = r.get("expected_value").and_then(Value::as_f64) {
                    r["expected_value"] = crate::util::cents(x).into();
                }
            }
        }
        v
    };
    json!({
        "customer_id": id,
        "model": p.model,
        "model_version": p.model_version,
        "prediction_id": p.prediction_id,
        "request_id": p.request_id,
        "scored_at": crate::time::format_instant_millis(p.scored_at),
        "age_seconds": ((crate::time::now_ms() - p.scored_at).max(0) as f64) / 1000.0,
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
        "customer_value": p.customer_value.map(crate::util::cents),
        "expected_loss": crate::util::cents(p.expected_loss),
        "incremental_value": crate::util::cents(p.incremental_value),
        "top_action": p.top_action,
        "policy": p.policy,
        "propensity": p.propensity,
        "recommendations": in_cents(parse(&p.recommendations)),
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
    crate::store::check_id(&id)
        .map_err(|e| ApiError::new(ApiCode::InvalidValue, e.to_string()).field("id"))?;
    let query: CustomerQuery = params::query(&req)?;
    let model = model_name(&state, query.model)?;
    match store.latest_prediction(&id, &model).await? {
        Some(p) => Ok(HttpResponse::Ok().json(prediction_json(&id, &p))),
        None => Err(ApiError::new(
            ApiCode::UnknownCustomer,
            format!("no stored prediction of model '{model}' for this customer"),
        )),
    }
}

/// The worklist filter of a query.
fn filter(state: &AppState, q: WorklistQuery) -> Result<WorklistFilter, ApiError> {
    let after = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(Cursor::decode(c).ok_or_else(|| {
            ApiError::new(
                ApiCode::InvalidValue,
                "cursor is not one this server gave out (use next_cursor as is)",
            )
            .field("cursor")
        })?),
    };
    let order = q.order.unwrap_or_default();
    if let Some(c) = after.as_ref().filter(|c| c.order != order) {
        return Err(ApiError::new(
            ApiCode::InvalidValue,
            format!(
                "cursor belongs to order={}, not order={} (keep the order while paging)",
                c.order.as_str(),
                order.as_str()
            ),
        )
        .field("cursor"));
    }
    Ok(WorklistFilter {
        model: model_name(state, q.model)?,
        order,
        risk_band: q.risk_band,
        segment: q.segment,
        treatment: q.treatment,
        limit: q.limit.map_or(100, |Whole(n)| n as usize),
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
        "expected_loss": crate::util::cents(r.expected_loss),
        "incremental_value": crate::util::cents(r.incremental_value),
        "top_action": r.top_action,
    });
    if let Some(id) = &r.customer_id {
        v["customer_id"] = Value::from(id.clone());
    }
    v
}

/// `GET /v1/customers?model=&risk_band=&segment=&treatment=&order=&limit=&cursor=`.
pub async fn worklist(state: web::Data<AppState>, req: HttpRequest) -> ApiResult {
    let store = store_of(&state)?;
    let f = filter(&state, params::query(&req)?)?;
    let page = store.worklist(f).await?;
    Ok(HttpResponse::Ok().json(json!({
        "customers": page.rows.iter().map(row_json).collect::<Vec<_>>(),
        "next_cursor": page.next.map(|c| c.encode()),
    })))
}
