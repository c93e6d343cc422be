//! Routes for probes and monitoring: `/healthz`, `/readyz` (open) and `/metrics`.

use super::spec::{ErrorResponse, Method, RouteSpec, Success, OK_JSON};
use crate::server::auth::{Access, Scope};
use crate::server::error::{ApiCode, ApiError};
use crate::server::AppState;
use actix_web::{web, HttpResponse};

/// Liveness, readiness and metrics.
pub(super) const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        method: Method::Get,
        path: "/healthz",
        access: Access::Open,
        operation_id: "getHealth",
        summary: "Liveness: the process is up",
        query: &[],
        body: None,
        ok: OK_JSON,
        errors: &[],
        register: |r| r.to(healthz),
    },
    RouteSpec {
        method: Method::Get,
        path: "/readyz",
        access: Access::Open,
        operation_id: "getReadiness",
        summary: "Readiness: at least one model is loaded",
        query: &[],
        body: None,
        ok: OK_JSON,
        errors: &[ErrorResponse::new(503, "no model loaded")],
        register: |r| r.to(readyz),
    },
    RouteSpec {
        method: Method::Get,
        path: "/metrics",
        access: Access::Api(&[Scope::Read]),
        operation_id: "getMetrics",
        summary: "Prometheus metrics",
        query: &[],
        body: None,
        ok: Success {
            description: "Prometheus text format",
            content_type: "text/plain",
            schema: None,
        },
        errors: &[],
        register: |r| r.to(metrics),
    },
];

/// `GET /healthz`: the process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: at least one model is loaded, and the default model is among them.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let reg = state.current();
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        ApiError::new(
            ApiCode::NotReady,
            "draining: the server is shutting down and still answers requests until it stops",
        )
        .response()
    } else if reg.models.is_empty() {
        ApiError::new(ApiCode::NotReady, "no model is loaded").response()
    } else if let Some(d) = reg
        .default
        .as_deref()
        .filter(|d| !reg.models.contains_key(*d))
    {
        // every request without ?model= would get 404
        ApiError::new(
            ApiCode::NotReady,
            format!("the default model '{d}' is not loaded"),
        )
        .response()
    } else {
        let store = store_status(&state).await;
        HttpResponse::Ok().json(
            serde_json::json!({"status": "ready", "models": reg.models.len(), "store": store}),
        )
    }
}

/// The store's part of `/readyz`: scoring goes on without it, so it is detail, not a verdict.
/// It says what is wrong in words of its own; the database's message goes to the log only
/// (`/readyz` is open to anyone who can reach the port).
async fn store_status(state: &AppState) -> serde_json::Value {
    let Some(store) = &state.store else {
        return serde_json::json!({"status": "disabled"});
    };
    let backend = format!("{:?}", store.backend()).to_lowercase();
    let problem = match store.check().await {
        Ok(()) => None,
        Err(e) => {
            tracing::warn!(error = %e, "store: readiness check failed");
            Some("the database does not answer, or its file is gone")
        }
    };
    let problem = problem.or(store.health().failing().then_some(
        "writes are failing (see the server log); predictions and outcomes are not being stored",
    ));
    match problem {
        None => serde_json::json!({"status": "ok", "backend": backend}),
        Some(p) => serde_json::json!({"status": "degraded", "backend": backend, "problem": p}),
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let reg = state.current();
    let models = reg
        .models
        .iter()
        .map(|(name, m)| (name.as_str(), m.scorer.version.as_str(), m.loaded_at));
    let mode = state.config.challenger.name();
    state.metrics.challengers(
        reg.challengers
            .iter()
            .map(|(name, c)| (name.as_str(), c.scorer.version.as_str(), mode)),
    );
    if let Some(q) = &state.shadow {
        q.publish(&state.metrics);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(models, state.log.as_deref()))
}
