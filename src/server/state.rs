//! The models being served: a registry swapped atomically on reload, and the shared server state.

use super::challenger::{Challenger, ChallengerMode, ShadowQueue};
use super::metrics::Metrics;
use super::{ServerConfig, ServerError};
use crate::bundle::registry::ModelDir;
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
    /// Each model's `challenger` version, when challengers run (`--challenger`) and its
    /// registry names one other than the champion.
    pub challengers: BTreeMap<String, Arc<Challenger>>,
}

/// Outcome of a (re)load.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// Models now served: name → version.
    pub loaded: BTreeMap<String, String>,
    /// Bundles that failed: name → error (the previous version, if any, keeps serving).
    pub failed: BTreeMap<String, String>,
}

impl ReloadReport {
    /// The models served, as `name@version, …` for the log.
    pub fn loaded_text(&self) -> String {
        self.loaded
            .iter()
            .map(|(name, version)| format!("{name}@{version}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
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

/// `(name, directory)` of every sub-directory of `dir`, sorted by name.
fn model_dirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, ServerError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ServerError::Models {
        path: dir.to_path_buf(),
        message: format!("cannot read the models directory: {e}"),
    })?;
    let mut names: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
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
    if scorer.attach_uplift(path)? {
        if let Some((u, version)) = &scorer.uplift {
            let ranking: Vec<&str> = u
                .actions
                .iter()
                .filter(|a| a.applied)
                .map(|a| a.action.as_str())
                .collect();
            tracing::info!(model = %scorer.bundle.name, uplift_version = %version,
                ranking = ?ranking, "uplift models rank these actions");
        }
    }
    Ok(scorer)
}

/// The model card of `dir` when it describes bundle `version`. Training writes the card before
/// `model.bin`, so a new bundle always finds its own card; a card for another version (a newer
/// training run half-way through) is not paired with this bundle.
fn read_card(dir: &Path, version: &str) -> Option<Value> {
    let bytes = std::fs::read(dir.join(bundle::CARD_FILE)).ok()?;
    let card: Value = serde_json::from_slice(&bytes).ok()?;
    if card["version"].as_str() == Some(version) {
        Some(card)
    } else {
        tracing::warn!(dir = %dir.display(), version, card_version = ?card["version"].as_str(),
            "model card is for another bundle version: served without a card until the next reload");
        None
    }
}

fn choose_default(default: Option<&str>, reg: &Registry) -> Option<String> {
    match default {
        Some(d) => Some(d.to_string()),
        None if reg.models.len() == 1 => reg.models.keys().next().cloned(),
        None if reg.models.contains_key("telco") => Some("telco".into()),
        None => None,
    }
}

/// The learned rates in force in a scorer's playbook.
fn learned_of(s: &Scorer) -> &[crate::playbook::LearnedRate] {
    s.bundle.playbook.as_ref().map_or(&[], |p| &p.learned)
}

/// The content version of a scorer's uplift bundle.
fn uplift_of(s: &Scorer) -> Option<&str> {
    s.uplift.as_ref().map(|u| u.1.as_str())
}

/// Load every model of `DIR`: the champion of `DIR/NAME/registry.json`, or `DIR/NAME/model.bin`
/// (the single-directory layout). Bundles that fail keep their previous version from `old`.
/// With `learned` (the store, unless `--no-learned-rates`), each model's learned save rates
/// are put in force.
pub fn load_registry(
    dir: &Path,
    default: Option<&str>,
    old: Option<&Registry>,
    playbook: Option<&Path>,
    learned: Option<&crate::store::Store>,
    challengers: bool,
) -> Result<(Registry, ReloadReport), ServerError> {
    let playbook = read_override(playbook)?;
    let mut reg = Registry::default();
    let mut report = ReloadReport {
        loaded: BTreeMap::new(),
        failed: BTreeMap::new(),
    };
    for (name, dir) in model_dirs(dir)? {
        let previous = old.and_then(|o| o.models.get(&name));
        // a registry serves its champion; its file edited into nonsense stops the start, and on
        // a reload leaves the loaded version serving
        let path = match ModelDir::new(&dir).resolve(None) {
            Ok(p) => p,
            Err(e)
                if old.is_none() && dir.join(crate::bundle::registry::REGISTRY_FILE).exists() =>
            {
                return Err(e.into())
            }
            Err(e) => {
                tracing::error!(model = %name, error = %e, "model registry unusable");
                report.failed.insert(name.clone(), e.to_string());
                if let Some(m) = previous {
                    report.loaded.insert(name.clone(), m.scorer.version.clone());
                    reg.models.insert(name, m.clone());
                }
                continue;
            }
        };
        if !path.join(bundle::MODEL_FILE).exists() {
            // a deploy that replaces the file (rm + cp) leaves the directory without it for a
            // moment: the loaded version keeps serving; a model whose directory is gone is dropped
            let Some(m) = previous else { continue };
            let why = format!(
                "{} is missing; version {} keeps serving",
                path.join(bundle::MODEL_FILE).display(),
                m.scorer.version
            );
            tracing::error!(model = %name, "{why}");
            report.failed.insert(name.clone(), why);
            report.loaded.insert(name.clone(), m.scorer.version.clone());
            reg.models.insert(name, m.clone());
            continue;
        }
        let loaded = load_scorer(&path, &playbook).map(|mut s| {
            if let Some(store) = learned {
                crate::evaluate::apply_learned_rates(&mut s, store);
            }
            s
        });
        let model = match loaded {
            Ok(scorer) => match previous {
                // an unchanged bundle keeps its loaded model (and load time), unless it was
                // loaded without its card or its learned rates changed
                Some(m)
                    if m.scorer.version == scorer.version
                        && playbook.is_none()
                        && m.card.is_some()
                        && learned_of(&m.scorer) == learned_of(&scorer)
                        && uplift_of(&m.scorer) == uplift_of(&scorer) =>
                {
                    m.clone()
                }
                _ => Arc::new(LoadedModel {
                    card: read_card(&path, &scorer.version),
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
        if challengers {
            let old = old.and_then(|o| o.challengers.get(&name));
            if let Some(c) = load_challenger(&dir, &model, old, &playbook, learned) {
                reg.challengers.insert(name.clone(), c);
            }
        }
        reg.models.insert(name, model);
    }
    reg.default = choose_default(default, &reg);
    Ok((reg, report))
}

/// The `challenger` version of the model directory `dir`, unless it is the champion being
/// served or it does not load (logged; the champion serves alone). An unchanged challenger
/// keeps its loaded scorer.
fn load_challenger(
    dir: &Path,
    champion: &LoadedModel,
    old: Option<&Arc<Challenger>>,
    playbook: &Override,
    learned: Option<&crate::store::Store>,
) -> Option<Arc<Challenger>> {
    let m = ModelDir::new(dir);
    if !m.is_registry() {
        return None;
    }
    let path = m.resolve(Some(crate::bundle::registry::CHALLENGER)).ok()?;
    let version = path.file_name()?.to_string_lossy().into_owned();
    if version == champion.scorer.version {
        return None;
    }
    if let Some(c) = old.filter(|c| c.scorer.version == version && playbook.is_none()) {
        return Some(c.clone());
    }
    match load_scorer(&path, playbook) {
        Ok(mut scorer) => {
            if let Some(store) = learned {
                crate::evaluate::apply_learned_rates(&mut scorer, store);
            }
            tracing::info!(model = %champion.scorer.bundle.name, challenger = %scorer.version,
                "challenger loaded beside the champion");
            Some(Arc::new(Challenger { scorer }))
        }
        Err(e) => {
            tracing::error!(dir = %dir.display(), error = %e, "challenger failed to load; the champion serves alone");
            None
        }
    }
}

/// Shared server state.
pub struct AppState {
    /// Settings.
    pub config: ServerConfig,
    /// Current registry (swapped on reload).
    pub registry: RwLock<Arc<Registry>>,
    /// Metrics.
    pub metrics: Metrics,
    /// The prediction store, when enabled.
    pub store: Option<Arc<crate::store::Store>>,
    /// Its background writer for scored customers.
    pub log: Option<Arc<crate::store::PredictionLog>>,
    /// Keys customer ids in debug logs (HMAC; never a plain hash, which an id list reverses).
    pub log_key: crate::store::IdKey,
    /// Held while a reload runs: reloads happen one at a time.
    reloading: std::sync::Mutex<()>,
    /// Bytes of request bodies still arriving, against `max_pending_body_bytes`.
    pub body_budget: super::json::BodyBudget,
    /// Held while an evaluation or KPI computation runs: one at a time (each reads a model's
    /// whole log into memory — about 0.5 GB per million predictions, 0.8 GB for KPIs).
    pub evaluating: std::sync::atomic::AtomicBool,
    /// Set on SIGTERM for the drain period: `/readyz` answers 503, requests are still served.
    pub draining: std::sync::atomic::AtomicBool,
    /// The shadow challengers' queue (`--challenger shadow`).
    pub shadow: Option<ShadowQueue>,
}

/// Why a reload did not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum ReloadFailure {
    /// The models directory or the override playbook cannot be read.
    #[error(transparent)]
    Load(ServerError),
    /// The reload took longer than the reload timeout.
    #[error("reload did not finish within {} s; the loaded models keep serving", .0.as_secs_f64())]
    Timeout(std::time::Duration),
    /// The reload task failed unexpectedly.
    #[error("reload failed unexpectedly ({0}); the loaded models keep serving")]
    Crashed(String),
}

impl AppState {
    /// Build the state and load the models.
    pub fn new(config: ServerConfig) -> Result<(AppState, ReloadReport), ServerError> {
        let ids = crate::store::IdKey::new(config.id_key.as_deref());
        let store = crate::store::Store::open(&config.store, ids)?.map(Arc::new);
        let (reg, report) = load_registry(
            &config.models_dir,
            config.default_model.as_deref(),
            None,
            config.playbook.as_deref(),
            store.as_deref().filter(|_| config.learned_rates),
            config.challenger != ChallengerMode::Off,
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
        // ids in debug logs: keyed like the store's when CHURN_ID_KEY is set (so a log line can be
        // matched to a record), else with a key that lives only as long as this process
        let process_key = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let key = config.id_key.as_deref().filter(|k| !k.is_empty());
        let log_key = crate::store::IdKey::new(Some(key.unwrap_or(&process_key)));
        let log = store
            .as_ref()
            .map(|s| Arc::new(s.prediction_log(config.store_queue, crate::store::SERVER_BATCH)));
        let body_budget = super::json::BodyBudget::new(config.max_pending_body_bytes);
        let shadow = match (config.challenger, &store, &log) {
            (ChallengerMode::Shadow, Some(store), Some(log)) => Some(
                ShadowQueue::start(
                    (config.shadow_queue, config.worker_count()),
                    (store.clone(), log.clone(), config.store_queue),
                    config.max_field_bytes,
                    super::routes::shadow_score,
                )
                .map_err(|e| ServerError::Config {
                    message: format!("cannot start the shadow challenger's thread: {e}"),
                })?,
            ),
            _ => None,
        };
        let state = AppState {
            shadow,
            log_key,
            config,
            registry: RwLock::new(Arc::new(reg)),
            metrics: Metrics::new(),
            store,
            log,
            reloading: std::sync::Mutex::new(()),
            body_budget,
            evaluating: std::sync::atomic::AtomicBool::new(false),
            draining: std::sync::atomic::AtomicBool::new(false),
        };
        Ok((state, report))
    }

    /// Reload all bundles from disk and swap the registry (blocking: file reads and decoding).
    pub fn reload(&self) -> Result<ReloadReport, ServerError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.current();
        let (reg, report) = load_registry(
            &self.config.models_dir,
            self.config.default_model.as_deref(),
            Some(&old),
            self.config.playbook.as_deref(),
            self.store.as_deref().filter(|_| self.config.learned_rates),
            self.config.challenger != ChallengerMode::Off,
        )?;
        self.metrics.reload_failed(report.failed.len());
        *self.registry.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(reg);
        tracing::info!(
            loaded = %report.loaded_text(),
            failed = report.failed.len(),
            "models reloaded"
        );
        Ok(report)
    }

    /// [`reload`](Self::reload) on the blocking thread pool, so request workers and the signal
    /// task never do file I/O or decoding, bounded by `reload_timeout` (after which the loaded
    /// models keep serving; a reload still running finishes or fails on its own). A panic in
    /// the reload is an error here, never the end of the caller.
    pub async fn reload_blocking(self: Arc<Self>) -> Result<ReloadReport, ReloadFailure> {
        let timeout = self.config.reload_timeout;
        let task = actix_web::rt::task::spawn_blocking(move || self.reload());
        match actix_web::rt::time::timeout(timeout, task).await {
            Err(_) => Err(ReloadFailure::Timeout(timeout)),
            Ok(Err(join)) => Err(ReloadFailure::Crashed(join.to_string())),
            Ok(Ok(result)) => result.map_err(ReloadFailure::Load),
        }
    }

    /// The registry now being served.
    pub fn current(&self) -> Arc<Registry> {
        self.registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
