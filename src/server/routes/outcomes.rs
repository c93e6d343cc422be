//! `POST /v1/outcomes`: outcome events in, all or nothing.

use super::lookup::store_of;
use super::spec::{ErrorResponse, Method, RouteSpec, OK_JSON};
use crate::server::auth::{Access, Scope};
use crate::server::error::{ApiError, ApiResult};
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
    query: &[],
    body: Some("OutcomesRequest"),
    ok: OK_JSON,
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
    let report = store.record_outcomes(valid).await?;
    Ok(HttpResponse::Ok().json(report))
}
