//! `GET /v1/models`, `GET /v1/models/{name}` and `GET /v1/models/{name}/report`.

use super::spec::{ErrorResponse, Method, RouteSpec, Success, OK_JSON, UNKNOWN_MODEL};
use crate::server::auth::{Access, Scope, ANY_TOKEN};
use crate::server::error::{ApiCode, ApiError, ApiResult};
use crate::server::state::LoadedModel;
use crate::server::AppState;
use actix_web::{web, HttpResponse};
use serde_json::Value;

/// The served models, one model with its card, and its report.
pub(super) const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        method: Method::Get,
        path: "/v1/models",
        access: ANY_TOKEN,
        operation_id: "listModels",
        summary: "List the models being served",
        query: &[],
        body: None,
        ok: OK_JSON,
        errors: &[],
        register: |r| r.to(list_models),
    },
    RouteSpec {
        method: Method::Get,
        path: "/v1/models/{name}",
        access: ANY_TOKEN,
        operation_id: "getModel",
        summary: "One model with its model card",
        query: &[],
        body: None,
        ok: OK_JSON,
        errors: &[UNKNOWN_MODEL],
        register: |r| r.to(get_model),
    },
    RouteSpec {
        method: Method::Get,
        path: "/v1/models/{name}/report",
        access: Access::Api(&[Scope::Read]),
        operation_id: "getModelReport",
        summary: "The model's report: one self-contained HTML page (text/html)",
        query: &[],
        body: None,
        ok: Success {
            description:
                "the report: one self-contained HTML page (inline SVG and CSS, no scripts)",
            content_type: "text/html",
            schema: None,
        },
        errors: &[ErrorResponse::new(
            404,
            "unknown model, or no model card for the served version",
        )],
        register: |r| r.to(model_report),
    },
];

fn model_summary(name: &str, m: &LoadedModel, default: bool) -> Value {
    let b = &m.scorer.bundle;
    serde_json::json!({
        "name": name,
        "version": m.scorer.version,
        "default": default,
        "mode": b.mode,
        "id_column": b.id_column,
        "inputs": b.encoder.inputs.iter().map(|i| serde_json::json!({"name": i.name, "type": i.kind.name()})).collect::<Vec<_>>(),
        "threshold": b.model.threshold,
        "training_rows": b.training_rows,
        "loaded_at": m.loaded_at,
    })
}

/// `GET /v1/models`.
pub async fn list_models(state: web::Data<AppState>) -> ApiResult {
    let reg = state.current();
    let models: Vec<Value> = reg
        .models
        .iter()
        .map(|(n, m)| model_summary(n, m, reg.default.as_deref() == Some(n)))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "default": reg.default, "models": models })))
}

/// `GET /v1/models/{name}`: the summary plus the model card.
pub async fn get_model(state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    let name = path.into_inner();
    let reg = state.current();
    let Some(m) = reg.models.get(&name) else {
        return Err(ApiError::new(
            ApiCode::UnknownModel,
            format!("no model named '{name}'"),
        ));
    };
    let mut v = model_summary(&name, m, reg.default.as_deref() == Some(&name));
    v["card"] = m.card.clone().unwrap_or(Value::Null);
    Ok(HttpResponse::Ok().json(v))
}

/// `GET /v1/models/{name}/report`: the HTML report, rendered from the served bundle and its card.
pub async fn model_report(state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    let name = path.into_inner();
    let reg = state.current();
    let Some(m) = reg.models.get(&name).cloned() else {
        return Err(ApiError::new(
            ApiCode::UnknownModel,
            format!("no model named '{name}'"),
        ));
    };
    let no_card = || {
        ApiError::new(
            ApiCode::NoModelCard,
            format!(
                "model '{name}' version {} is served without its model card (missing, unreadable or for another version), so there is no report; retrain or restore model_card.json and reload",
                m.scorer.version
            ),
        )
    };
    let card: crate::bundle::card::ModelCard = match &m.card {
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| no_card())?,
        None => return Err(no_card()),
    };
    let html = crate::report::render(&card, &m.scorer.bundle);
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
        ))
        .body(html))
}
