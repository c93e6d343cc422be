//! `POST /v1/outcomes`: outcome events in, all or nothing.

use super::lookup::store_of;
use super::params;
use super::spec::{ok_schema, ErrorResponse, Method, QueryParam, RouteSpec};
use crate::server::auth::{Access, Scope};
use crate::server::error::{ApiCode, ApiError, ApiResult};
use crate::server::json;
use crate::server::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use std::collections::BTreeSet;

/// Outcome events in. Its 503 is the body reader's, which names the store too.
pub(super) const ROUTES: &[RouteSpec] = &[RouteSpec {
    method: Method::Post,
    path: "/v1/outcomes",
    access: Access::Api(&[Scope::Outcomes]),
    operation_id: "recordOutcomes",
    summary: "Record outcome events (churned, retained, action_taken, purchase, survey); all or nothing, idempotent by external_id",
    query: &[QueryParam::optional(
        "allow_backdated",
        "`true`: accept events dated more than the label horizon before the customer's first stored prediction (importing history); refused by default",
    )],
    body: Some("OutcomesRequest"),
    ok: ok_schema("OutcomesResult"),
    errors: &[ErrorResponse::new(
        422,
        "an invalid event; `field` names it, e.g. outcomes[2].at; nothing was stored",
    )],
    register: |r| r.to(post_outcomes),
}];

/// Action ids of every served model's playbook: what an `action_taken` event may name.
fn known_actions(state: &AppState) -> BTreeSet<String> {
    let reg = state.current();
    reg.models
        .values()
        .filter_map(|m| m.scorer.bundle.playbook.as_ref())
        .flat_map(|p| p.action_ids().map(str::to_string))
        .collect()
}

/// The query of `POST /v1/outcomes`.
#[derive(serde::Deserialize)]
struct OutcomesQuery {
    allow_backdated: Option<bool>,
}

/// The longest label horizon of the served models (the default horizon for customer-table
/// models): how far before a customer's first prediction an outcome may still be dated.
fn horizon_days(state: &AppState) -> u32 {
    state
        .current()
        .models
        .values()
        .map(|m| crate::evaluate::horizon(None, Some(&m.scorer.bundle)).0)
        .max()
        .unwrap_or(crate::evaluate::DEFAULT_HORIZON_DAYS)
}

/// Validate every event first; store them in one transaction only when all are valid.
pub async fn post_outcomes(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult {
    let store = store_of(&state)?;
    let body = json::read_body(&req, payload, &state.config, &state.body_budget).await?;
    let events = json::parse_outcomes(&body, state.config.max_batch)?;
    let actions = known_actions(&state);
    let now = crate::time::now_ms();
    let mut valid = Vec::with_capacity(events.len());
    for (i, raw) in events.iter().enumerate() {
        let v = raw
            .validate(Some(&actions), now)
            .map_err(|err| ApiError::from(err).within(&format!("outcomes[{i}]")))?;
        valid.push(v);
    }
    drop(events);
    let query: OutcomesQuery = params::query(&req)?;
    if query.allow_backdated != Some(true) {
        let slack = i64::from(horizon_days(&state)) * crate::time::DAY_MS;
        if let Some((i, first)) = store.backdated(&valid, slack).await? {
            return Err(ApiError::new(
                ApiCode::InvalidValue,
                format!(
                    "dated more than the label horizon before this customer's first prediction ({}); pass ?allow_backdated=true to import history",
                    crate::time::format_instant(first)
                ),
            )
            .field(format!("outcomes[{i}].at")));
        }
    }
    let report = store.record_outcomes(valid).await?;
    Ok(HttpResponse::Ok().json(report))
}
