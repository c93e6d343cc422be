//! `POST /v1/admin/reload`.

use super::spec::{ErrorResponse, Method, RouteSpec, OK_JSON};
use crate::server::auth::Access;
use crate::server::error::{ApiCode, ApiError, ApiResult};
use crate::server::{AppState, ReloadFailure};
use actix_web::{web, HttpResponse};

/// The one admin route.
pub(super) const ROUTES: &[RouteSpec] = &[RouteSpec {
    method: Method::Post,
    path: "/v1/admin/reload",
    access: Access::Admin,
    operation_id: "reloadModels",
    summary: "Reload bundles from disk and swap atomically",
    query: &[],
    body: None,
    ok: OK_JSON,
    errors: &[
        ErrorResponse::new(
            422,
            "a bundle failed to load; the previous version keeps serving",
        ),
        ErrorResponse::new(
            503,
            "the reload did not finish in time; the loaded models keep serving",
        ),
    ],
    register: |r| r.to(reload),
}];

/// Reload every bundle and swap atomically; 422 (with the report) when one failed.
pub async fn reload(state: web::Data<AppState>) -> ApiResult {
    let report = state.into_inner().reload_blocking().await.map_err(|e| {
        let code = match e {
            ReloadFailure::Load(_) => ApiCode::ReloadFailed,
            ReloadFailure::Timeout(_) | ReloadFailure::Crashed(_) => ApiCode::ReloadTimeout,
        };
        ApiError::new(code, e.to_string())
    })?;
    if report.failed.is_empty() {
        return Ok(HttpResponse::Ok().json(report));
    }
    Err(ApiError::new(
        ApiCode::ReloadFailed,
        format!(
            "{} bundle(s) failed to load; previous versions keep serving",
            report.failed.len()
        ),
    )
    .details(serde_json::to_value(&report).ok()))
}
