//! `POST /v1/admin/reload`.

use crate::server::error::{ApiCode, ApiError, ApiResult};
use crate::server::{AppState, ReloadFailure};
use actix_web::{web, HttpResponse};

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
