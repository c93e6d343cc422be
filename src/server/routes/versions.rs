//! `GET /v1/models/{name}/versions` and `POST /v1/models/{name}/aliases`: a model's registry of
//! versions, and moving its aliases (admin), recorded in the store and served at once.

use super::spec::{ErrorResponse, Method, RouteSpec, OK_JSON};
use crate::bundle::registry::{Author, Change, ModelDir, CHALLENGER, CHAMPION};
use crate::server::auth::{Access, Scope};
use crate::server::challenger::ChallengerMode;
use crate::server::error::{ApiCode, ApiError, ApiResult};
use crate::server::json;
use crate::server::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

/// The registry routes.
pub(super) const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        method: Method::Get,
        path: "/v1/models/{name}/versions",
        access: Access::Api(&[Scope::Read]),
        operation_id: "listModelVersions",
        summary: "A model's registered versions, its aliases, the version being served and the recorded changes",
        query: &[],
        body: None,
        ok: OK_JSON,
        errors: &[
            ErrorResponse::new(404, "no model directory of that name"),
            ErrorResponse::new(409, "the model's registry file does not hold together"),
        ],
        register: |r| r.to(list_versions),
    },
    RouteSpec {
        method: Method::Post,
        path: "/v1/models/{name}/aliases",
        access: Access::Admin,
        operation_id: "setModelAlias",
        summary: "Point an alias at a version (promote: the champion), remove one, or roll one back; recorded with who and why, then the models are reloaded",
        query: &[],
        body: Some("AliasRequest"),
        ok: OK_JSON,
        errors: &[
            ErrorResponse::new(404, "no such model, version or alias"),
            ErrorResponse::new(
                409,
                "refused: the champion cannot be removed, nothing to roll back to, the version does not load, or the registry file does not hold together",
            ),
            ErrorResponse::new(422, "an invalid request body; `field` names the field"),
        ],
        register: |r| r.to(set_alias),
    },
];

/// The registry directory of model `name` (a directory under the models directory).
fn model_dir(state: &AppState, name: &str) -> Result<ModelDir, ApiError> {
    ModelDir::find(&state.config.models_dir, name)
        .ok_or_else(|| ApiError::new(ApiCode::UnknownModel, format!("no model named '{name}'")))
}

/// The version of model `name` being served, if it is.
fn serving(state: &AppState, name: &str) -> Option<String> {
    state
        .current()
        .models
        .get(name)
        .map(|m| m.scorer.version.clone())
}

/// The challenger running beside `name`'s champion: its version and mode (with the canary's
/// share), or null.
fn challenger(state: &AppState, name: &str) -> serde_json::Value {
    let reg = state.current();
    match (reg.challengers.get(name), state.config.challenger) {
        (Some(c), ChallengerMode::Canary(share)) => {
            serde_json::json!({"version": c.scorer.version, "mode": "canary", "share": share})
        }
        (Some(c), mode) => serde_json::json!({"version": c.scorer.version, "mode": mode.name()}),
        (None, _) => serde_json::Value::Null,
    }
}

/// Blocking registry work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::bundle::registry::RegistryError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f)
        .await
        .map_err(|e| ApiError::new(ApiCode::Internal, format!("registry task failed: {e}")))?
        .map_err(ApiError::from)
}

/// `GET /v1/models/{name}/versions`.
pub async fn list_versions(state: web::Data<AppState>, path: web::Path<String>) -> ApiResult {
    let name = path.into_inner();
    let m = model_dir(&state, &name)?;
    let (versions, file) = blocking(move || Ok((m.versions()?, m.read()?))).await?;
    // the store keeps every change made through it; the registry file the recent ones of every
    // kind (registrations by training too): both, once each, oldest first
    let mut changes = match &state.store {
        Some(store) => store.model_changes(&name).await?,
        None => Vec::new(),
    };
    for c in file.changes {
        if !changes.contains(&c) {
            changes.push(c);
        }
    }
    changes.sort_by(|a, b| a.at.cmp(&b.at));
    let serving = serving(&state, &name);
    // the registry answers even when the store does not
    let shadow = match (&state.store, state.config.challenger) {
        (Some(store), ChallengerMode::Shadow) => match store.shadow_counts(&name).await {
            Ok(counts) => serde_json::to_value(counts).unwrap_or_default(),
            Err(e) => {
                tracing::warn!(model = %name, error = %e, "shadow answers not counted");
                serde_json::Value::Null
            }
        },
        _ => serde_json::json!([]),
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "name": name,
        "serving": serving,
        "challenger": challenger(&state, &name),
        "shadow": shadow,
        "aliases": file.aliases,
        "versions": versions,
        "changes": changes,
    })))
}

/// What `POST /v1/models/{name}/aliases` does.
#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum AliasAction {
    /// Point the alias at `version`.
    #[default]
    Set,
    /// Remove the alias.
    Unset,
    /// Point it back at its previous version.
    Rollback,
}

/// The body of `POST /v1/models/{name}/aliases`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasRequest {
    alias: String,
    version: Option<String>,
    #[serde(default)]
    action: AliasAction,
    #[serde(default)]
    reason: String,
    by: Option<String>,
}

/// `POST /v1/models/{name}/aliases`: change the registry, record the change, reload.
pub async fn set_alias(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult {
    let name = path.into_inner();
    let m = model_dir(&state, &name)?;
    let body = json::read_body(&req, payload, &state.config, &state.body_budget).await?;
    let r: AliasRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            ApiCode::InvalidRequest,
            format!("expected {{\"alias\": \"champion\", \"version\": \"VERSION\", \"action\": \"set|unset|rollback\", \"reason\": \"…\", \"by\": \"…\"}}: {e}"),
        )
    })?;
    let author = Author {
        by: r.by.clone().unwrap_or_else(|| "admin-token".into()),
        reason: r.reason.clone(),
    };
    let change: Change = match (r.action, r.version.clone()) {
        (AliasAction::Set, Some(v)) => blocking(move || m.set_alias(&r.alias, &v, &author)).await?,
        (AliasAction::Set, None) => {
            return Err(ApiError::new(
                ApiCode::MissingField,
                "version: the version (or alias) to point the alias at",
            )
            .field("version"))
        }
        (_, Some(_)) => {
            return Err(
                ApiError::new(ApiCode::InvalidValue, "version: only with action \"set\"")
                    .field("version"),
            )
        }
        (AliasAction::Unset, None) => blocking(move || m.unset_alias(&r.alias, &author)).await?,
        (AliasAction::Rollback, None) => blocking(move || m.rollback(&r.alias, &author)).await?,
    };
    tracing::info!(model = %name, alias = %change.alias, from = ?change.from, to = ?change.to,
        by = %change.by, "model registry changed");
    let recorded = match &state.store {
        Some(store) => match store.record_model_change(&name, &change).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(model = %name, error = %e, "registry change not recorded in the store");
                false
            }
        },
        None => false,
    };
    let runs_challenger = state.config.challenger != ChallengerMode::Off;
    let reload = if change.alias == CHAMPION || (change.alias == CHALLENGER && runs_challenger) {
        match state.clone().into_inner().reload_blocking().await {
            Ok(report) => serde_json::to_value(report).unwrap_or_default(),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        }
    } else {
        serde_json::Value::Null
    };
    let serving = serving(&state, &name);
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "change": change,
        "recorded": recorded,
        "serving": serving,
        "reload": reload,
    })))
}
