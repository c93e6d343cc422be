//! The models being served: a registry swapped atomically on reload, and the shared server state.

use super::auth::Tokens;
use super::metrics::Metrics;
use super::{ServerConfig, ServerError};
use crate::bundle::{self, BundleError};
use crate::playbook::{PlaybookError, PlaybookFile};
use crate::scoring::Scorer;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// One loaded model.
#[derive(Debug)]
pub struct LoadedModel {
    /// The scorer.
    pub scorer: Scorer,
    /// The model card as JSON (if the card file is present and valid).
    pub card: Option<Value>,
    /// Unix time it was loaded.
    pub loaded_at: f64,
}

/// The set of models being served.
#[derive(Debug, Default)]
pub struct Registry {
    /// Models by name.
    pub models: BTreeMap<String, Arc<LoadedModel>>,
    /// Default model.
    pub default: Option<String>,
}

/// Outcome of a (re)load.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// Models now served: name → version.
    pub loaded: BTreeMap<String, String>,
    /// Bundles that failed: name → error (the previous version, if any, keeps serving).
    pub failed: BTreeMap<String, String>,
}

/// Why one bundle did not load: the bundle itself, or the override playbook not fitting it.
#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Playbook(#[from] PlaybookError),
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The override playbook, read once per (re)load: (file, source name for messages).
type Override = Option<(PlaybookFile, String)>;

fn read_override(playbook: Option<&Path>) -> Result<Override, ServerError> {
    let Some(p) = playbook else {
        return Ok(None);
    };
    let file = crate::playbook::read(p).map_err(|e| ServerError::Models {
        path: p.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(Some((file, p.display().to_string())))
}

/// `(name, directory)` of every `DIR/NAME/model.bin`, sorted by name.
fn bundle_dirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, ServerError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ServerError::Models {
        path: dir.to_path_buf(),
        message: format!("cannot read the models directory: {e}"),
    })?;
    let mut names: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join(bundle::MODEL_FILE).is_file())
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, p)
        })
        .collect();
    names.sort();
    Ok(names)
}

fn load_scorer(path: &Path, playbook: &Override) -> Result<Scorer, LoadError> {
    let mut scorer = Scorer::new(bundle::load(path)?);
    if let Some((file, source)) = playbook {
        scorer.set_playbook(file.clone(), source)?;
    }
    Ok(scorer)
}

fn read_card(dir: &Path) -> Option<Value> {
    let bytes = std::fs::read(dir.join(bundle::CARD_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn choose_default(default: Option<&str>, reg: &Registry) -> Option<String> {
    match default {
        Some(d) => Some(d.to_string()),
        None if reg.models.len() == 1 => reg.models.keys().next().cloned(),
        None if reg.models.contains_key("telco") => Some("telco".into()),
        None => None,
    }
}

/// Load every `DIR/NAME/model.bin`. Bundles that fail keep their previous version from `old`.
pub fn load_registry(
    dir: &Path,
    default: Option<&str>,
    old: Option<&Registry>,
    playbook: Option<&Path>,
) -> Result<(Registry, ReloadReport), ServerError> {
    let playbook = read_override(playbook)?;
    let mut reg = Registry::default();
    let mut report = ReloadReport {
        loaded: BTreeMap::new(),
        failed: BTreeMap::new(),
    };
    for (name, path) in bundle_dirs(dir)? {
        let previous = old.and_then(|o| o.models.get(&name));
        let model = match load_scorer(&path, &playbook) {
            Ok(scorer) => match previous {
                // an unchanged bundle keeps its loaded model (and load time)
                Some(m) if m.scorer.version == scorer.version && playbook.is_none() => m.clone(),
                _ => Arc::new(LoadedModel {
                    card: read_card(&path),
                    scorer,
                    loaded_at: now(),
                }),
            },
            // at start-up an override playbook that does not fit a model is a usage error
            Err(LoadError::Playbook(e)) if old.is_none() => {
                return Err(ServerError::Models {
                    path,
                    message: e.to_string(),
                })
            }
            Err(e) => {
                tracing::error!(model = %name, error = %e, "bundle failed to load");
                report.failed.insert(name.clone(), e.to_string());
                match previous {
                    Some(m) => m.clone(),
                    None => continue,
                }
            }
        };
        report
            .loaded
            .insert(name.clone(), model.scorer.version.clone());
        reg.models.insert(name, model);
    }
    reg.default = choose_default(default, &reg);
    Ok((reg, report))
}

/// Shared server state.
pub struct AppState {
    /// Settings.
    pub config: ServerConfig,
    /// Current registry (swapped on reload).
    pub registry: RwLock<Arc<Registry>>,
    /// Metrics.
    pub metrics: Metrics,
    /// Accepted bearer tokens.
    pub tokens: Tokens,
    /// The prediction store, when enabled.
    pub store: Option<Arc<crate::store::Store>>,
    /// Its background writer for scored customers.
    pub log: Option<Arc<crate::store::PredictionLog>>,
    /// Keys customer ids in debug logs (HMAC; never a plain hash, which an id list reverses).
    pub log_key: crate::store::IdKey,
}

impl AppState {
    /// Build the state and load the models.
    pub fn new(config: ServerConfig) -> Result<(AppState, ReloadReport), ServerError> {
        let (reg, report) = load_registry(
            &config.models_dir,
            config.default_model.as_deref(),
            None,
            config.playbook.as_deref(),
        )?;
        if let Some(d) = config.default_model.as_deref() {
            if !reg.models.contains_key(d) {
                let loaded: Vec<&str> = reg.models.keys().map(String::as_str).collect();
                return Err(ServerError::Config {
                    message: format!(
                        "--default names model '{d}', which is not loaded (loaded: {})",
                        if loaded.is_empty() {
                            "none".to_string()
                        } else {
                            loaded.join(", ")
                        }
                    ),
                });
            }
        }
        let ids = crate::store::IdKey::new(config.id_key.as_deref());
        // ids in debug logs: keyed like the store's when CHURN_ID_KEY is set (so a log line can be
        // matched to a record), else with a key that lives only as long as this process
        let process_key = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let key = config.id_key.as_deref().filter(|k| !k.is_empty());
        let log_key = crate::store::IdKey::new(Some(key.unwrap_or(&process_key)));
        let store = crate::store::Store::open(&config.store, ids)?.map(Arc::new);
        let log = store
            .as_ref()
            .map(|s| Arc::new(s.prediction_log(config.store_queue, crate::store::SERVER_BATCH)));
        let state = AppState {
            log_key,
            tokens: Tokens::new(&config.api_tokens, config.admin_token.as_deref()),
            config,
            registry: RwLock::new(Arc::new(reg)),
            metrics: Metrics::new(),
            store,
            log,
        };
        Ok((state, report))
    }

    /// Reload all bundles from disk and swap the registry.
    pub fn reload(&self) -> Result<ReloadReport, ServerError> {
        let old = self.current();
        let (reg, report) = load_registry(
            &self.config.models_dir,
            self.config.default_model.as_deref(),
            Some(&old),
            self.config.playbook.as_deref(),
        )?;
        self.metrics.reload_failed(report.failed.len());
        *self.registry.write().expect("registry lock") = Arc::new(reg);
        tracing::info!(loaded = ?report.loaded, failed = report.failed.len(), "models reloaded");
        Ok(report)
    }

    /// The registry now being served.
    pub fn current(&self) -> Arc<Registry> {
        self.registry.read().expect("registry lock").clone()
    }
}
