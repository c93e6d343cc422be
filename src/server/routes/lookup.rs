//! What a request names, looked up in the server state: the model (by name, or the default one)
//! and the prediction store. Shared by the resource modules, so they never import each other.

use crate::server::error::{ApiCode, ApiError};
use crate::server::state::{LoadedModel, Registry};
use crate::server::AppState;
use crate::store::Store;
use std::sync::Arc;

fn model_names(reg: &Registry) -> String {
    reg.models.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// The model a request names, or the default one.
pub(super) fn resolve_model(
    reg: &Registry,
    name: Option<String>,
) -> Result<(String, Arc<LoadedModel>), ApiError> {
    let Some(name) = name.or_else(|| reg.default.clone()) else {
        return Err(ApiError::new(
            ApiCode::NoDefaultModel,
            format!(
                "no default model: use /v1/models/{{name}}/score with one of: {}",
                model_names(reg)
            ),
        ));
    };
    match reg.models.get(&name) {
        Some(m) => Ok((name, m.clone())),
        None => Err(ApiError::new(
            ApiCode::UnknownModel,
            format!("no model named '{name}'; available: {}", model_names(reg)),
        )),
    }
}

/// The model a query names (`?model=`), or the default one; it must be served.
pub(super) fn model_name(state: &AppState, name: Option<String>) -> Result<String, ApiError> {
    let (name, _) = resolve_model(&state.current(), name)?;
    Ok(name)
}

/// The store, or 503 when the server runs without one.
pub(super) fn store_of(state: &AppState) -> Result<Arc<Store>, ApiError> {
    state.store.clone().ok_or_else(|| {
        ApiError::new(
            ApiCode::StoreDisabled,
            "this server runs without a prediction store (--store none)",
        )
    })
}
