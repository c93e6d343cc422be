//! Open routes for probes and tooling: `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.

use crate::server::error::{ApiCode, ApiError};
use crate::server::AppState;
use actix_web::{web, HttpResponse};

/// `GET /healthz`: the process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: at least one model is loaded.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let reg = state.current();
    if reg.models.is_empty() {
        ApiError::new(ApiCode::NotReady, "no model is loaded").response()
    } else {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready", "models": reg.models.len()}))
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let reg = state.current();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(&reg))
}

/// `GET /openapi.json`.
pub async fn openapi(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(crate::server::openapi::openapi_spec(&state.current()))
}
