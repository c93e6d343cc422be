//! The model registry: every trained version of a model kept side by side, and aliases
//! (`champion`, `challenger` or free names) that say which version does what.
//!
//! ```text
//! models/NAME/registry.json              aliases, the previous holders of each, recent changes
//! models/NAME/versions/VERSION/          model.bin, model_card.json, data_quality.json,
//!                                        report.html (and uplift.bin, uplift_card.json)
//! ```
//!
//! `VERSION` is the bundle's content version, so training the same data with the same settings
//! twice finds its version already registered and writes nothing; a different model is a new
//! directory, never a replacement. The registry file is small, rewritten atomically under a lock,
//! and validated whenever it is read: a file edited by hand into nonsense is refused with the
//! problem named. A model directory without `registry.json` that holds `model.bin` is the older
//! single-directory layout, and loads as before; training into one first moves its model into
//! `versions/` as the champion.

use super::{CARD_FILE, MODEL_FILE, QUALITY_FILE};

mod changes;
mod watch;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
pub use watch::{file_stamp, fingerprint};

/// The registry file of a model directory.
pub const REGISTRY_FILE: &str = "registry.json";
/// The directory of versions inside a model directory.
pub const VERSIONS_DIR: &str = "versions";
/// The alias the server serves.
pub const CHAMPION: &str = "champion";
/// The alias of the version being tried against the champion.
pub const CHALLENGER: &str = "challenger";
/// The registry file's format.
const FORMAT: u32 = 1;
/// Changes kept in the registry file (the store keeps every change made through it: the admin
/// route, `churn-train models` with a store).
const MAX_CHANGES: usize = 100;
/// Earlier holders kept per alias (what `rollback` can go back to).
const MAX_PREVIOUS: usize = 20;
/// Files of a version, moved together when an older single-directory model is adopted.
const VERSION_FILES: [&str; 6] = [
    CARD_FILE,
    QUALITY_FILE,
    super::REPORT_FILE,
    super::uplift::UPLIFT_CARD_FILE,
    super::uplift::UPLIFT_FILE,
    MODEL_FILE,
];

/// Errors of the registry; each names the model directory or file.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry file does not parse or does not hold together.
    #[error("{path}: {message}")]
    Invalid {
        /// The registry file.
        path: PathBuf,
        /// The first problem found.
        message: String,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// No such version or alias.
    #[error("model '{model}' has no version or alias '{which}' (versions: {have})")]
    Unknown {
        /// Model name.
        model: String,
        /// What was asked for.
        which: String,
        /// The versions it has.
        have: String,
    },
    /// An alias name that is not one.
    #[error("alias '{0}': expected 1 to 64 of a-z, 0-9, '-' or '_', starting with a letter")]
    BadAlias(String),
    /// The change is not allowed.
    #[error("model '{model}': {message}")]
    Refused {
        /// Model name.
        model: String,
        /// Why.
        message: String,
    },
}

impl RegistryError {
    /// Process exit code: 1 when reading or writing failed, 2 for a bad request or file.
    pub fn exit_code(&self) -> i32 {
        match self {
            RegistryError::Io { .. } => 1,
            _ => 2,
        }
    }
}

/// One change of an alias, as the registry file and the store record it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// When, ISO-8601 UTC.
    pub at: String,
    /// Who made it (a user name, or `admin-token` for the HTTP route without one).
    pub by: String,
    /// What was done: `register`, `alias`, `promote`, `rollback`, `unset` or `remove`.
    pub action: String,
    /// The alias changed (empty for `remove`).
    pub alias: String,
    /// The version it pointed to before.
    pub from: Option<String>,
    /// The version it points to now.
    pub to: Option<String>,
    /// Why.
    pub reason: String,
}

/// Who makes a change, and why.
#[derive(Debug, Clone)]
pub struct Author {
    /// Who.
    pub by: String,
    /// Why.
    pub reason: String,
}

/// The contents of `registry.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryFile {
    /// Format of the file (1).
    pub format: u32,
    /// Alias → version.
    pub aliases: BTreeMap<String, String>,
    /// Alias → the versions it pointed to before, oldest first (what `rollback` goes back to).
    #[serde(default)]
    pub previous: BTreeMap<String, Vec<String>>,
    /// The most recent changes, oldest first.
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// One registered version, for listings.
#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    /// Content version.
    pub version: String,
    /// Aliases pointing to it.
    pub aliases: Vec<String>,
    /// When it was trained (from its card).
    pub created_at: Option<String>,
    /// The model shipped, `tree` or `boosted` (from its card).
    pub model: Option<String>,
    /// Training rows (from its card).
    pub training_rows: Option<u64>,
    /// Hold-out AUC (from its card).
    pub holdout_auc: Option<f64>,
    /// Whether it has an uplift bundle.
    pub uplift: bool,
}

/// Is `alias` a valid alias name: 1 to 64 of `a-z`, `0-9`, `-`, `_`, starting with a letter.
pub fn valid_alias(alias: &str) -> bool {
    (1..=64).contains(&alias.len())
        && alias.starts_with(|c: char| c.is_ascii_lowercase())
        && alias
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Does `v` look like a content version (hex digits)?
fn valid_version(v: &str) -> bool {
    (1..=64).contains(&v.len()) && v.chars().all(|c| c.is_ascii_hexdigit())
}

/// A model directory: `models/NAME`.
#[derive(Debug, Clone)]
pub struct ModelDir {
    /// Model name (the directory's name).
    pub name: String,
    /// The directory.
    pub dir: PathBuf,
}

/// Holds the registry's lock file while a change is made.
pub(super) struct Lock(#[allow(dead_code)] std::fs::File);

impl ModelDir {
    /// Model `name` of the models directory `models`, when `name` is a plain name (not empty,
    /// no path separator, not hidden) of a directory there.
    pub fn find(models: &Path, name: &str) -> Option<ModelDir> {
        let dir = models.join(name);
        let plain = !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\']);
        (plain && dir.is_dir()).then(|| ModelDir::new(&dir))
    }

    /// The model directory `dir`.
    pub fn new(dir: &Path) -> ModelDir {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        ModelDir {
            name,
            dir: dir.to_path_buf(),
        }
    }

    fn file(&self) -> PathBuf {
        self.dir.join(REGISTRY_FILE)
    }

    fn versions_dir(&self) -> PathBuf {
        self.dir.join(VERSIONS_DIR)
    }

    /// The directory of `version`.
    pub fn version_dir(&self, version: &str) -> PathBuf {
        self.versions_dir().join(version)
    }

    /// Is this directory a registry (it has `registry.json` or `versions/`)? Otherwise it is
    /// the older single-directory layout (or empty).
    pub fn is_registry(&self) -> bool {
        self.file().exists() || self.versions_dir().is_dir()
    }

    fn io(path: PathBuf) -> impl FnOnce(std::io::Error) -> RegistryError {
        move |source| RegistryError::Io { path, source }
    }

    fn invalid(&self, message: String) -> RegistryError {
        RegistryError::Invalid {
            path: self.file(),
            message,
        }
    }

    fn refused(&self, message: String) -> RegistryError {
        RegistryError::Refused {
            model: self.name.clone(),
            message,
        }
    }

    /// The versions present on disk (directories of `versions/` holding `model.bin`), sorted.
    pub fn version_names(&self) -> Result<Vec<String>, RegistryError> {
        let dir = self.versions_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Self::io(dir)(e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(MODEL_FILE).is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| valid_version(n))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Read and check `registry.json` (an absent file is an empty registry): the format is
    /// known, every alias is a valid name pointing to a version present in `versions/`.
    pub fn read(&self) -> Result<RegistryFile, RegistryError> {
        let path = self.file();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(RegistryFile {
                    format: FORMAT,
                    ..Default::default()
                })
            }
            Err(e) => return Err(Self::io(path)(e)),
        };
        let file: RegistryFile = serde_json::from_slice(&bytes).map_err(|e| {
            self.invalid(format!(
                "not a registry file: {e} (expected {{\"format\": 1, \"aliases\": {{\"champion\": \"VERSION\"}}}})"
            ))
        })?;
        if file.format != FORMAT {
            return Err(self.invalid(format!(
                "format {} is not supported (this build reads format {FORMAT})",
                file.format
            )));
        }
        let have = self.version_names()?;
        for (alias, version) in &file.aliases {
            if !valid_alias(alias) {
                return Err(self.invalid(format!(
                    "alias '{alias}': expected 1 to 64 of a-z, 0-9, '-' or '_', starting with a letter"
                )));
            }
            if !have.contains(version) {
                return Err(self.invalid(format!(
                    "alias '{alias}' names version '{version}', which is not in {} (versions: {})",
                    self.versions_dir().display(),
                    list(&have)
                )));
            }
        }
        Ok(file)
    }

    /// The directory of the bundle `which` names — an alias or a version; `None` is the
    /// champion. An older single-directory model is its own directory (for `None` only).
    pub fn resolve(&self, which: Option<&str>) -> Result<PathBuf, RegistryError> {
        // no registry file yet: a single-directory model (also half-way through its adoption),
        // or an empty directory
        let single = self.dir.join(MODEL_FILE).is_file() || self.version_names()?.is_empty();
        if !self.file().exists() && single {
            return match which {
                None => Ok(self.dir.clone()),
                Some(w) => Err(self.refused(format!(
                    "'{w}' asks for a version or alias, but {} is a single-model directory without a registry (train into it once to start one)",
                    self.dir.display()
                ))),
            };
        }
        let file = self.read()?;
        let which = which.unwrap_or(CHAMPION);
        if let Some(v) = file.aliases.get(which) {
            return Ok(self.version_dir(v));
        }
        let have = self.version_names()?;
        if have.iter().any(|v| v == which) {
            return Ok(self.version_dir(which));
        }
        if which == CHAMPION {
            return Err(self.invalid(format!(
                "no 'champion' alias, so nothing to serve (versions: {}); set one with `churn-train models promote {} VERSION`",
                list(&have),
                self.name
            )));
        }
        Err(RegistryError::Unknown {
            model: self.name.clone(),
            which: which.to_string(),
            have: list(&have),
        })
    }

    /// Every version with its aliases and a few facts from its card, oldest first.
    pub fn versions(&self) -> Result<Vec<VersionInfo>, RegistryError> {
        let file = self.read()?;
        let mut out: Vec<VersionInfo> = self
            .version_names()?
            .into_iter()
            .map(|v| {
                let dir = self.version_dir(&v);
                let card: serde_json::Value = std::fs::read(dir.join(CARD_FILE))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default();
                VersionInfo {
                    aliases: file
                        .aliases
                        .iter()
                        .filter(|(_, t)| **t == v)
                        .map(|(a, _)| a.clone())
                        .collect(),
                    created_at: card["created_at"].as_str().map(str::to_string),
                    model: card["model_choice"]["chosen"]
                        .as_str()
                        .or(card["learner"].as_str())
                        .map(str::to_string),
                    training_rows: card["training_rows"].as_u64(),
                    holdout_auc: card["holdout"]["roc_auc"].as_f64(),
                    uplift: dir.join(super::uplift::UPLIFT_FILE).is_file(),
                    version: v,
                }
            })
            .collect();
        out.sort_by(|a, b| {
            (a.created_at.as_deref(), &a.version).cmp(&(b.created_at.as_deref(), &b.version))
        });
        Ok(out)
    }

    /// A fresh staging directory inside `versions/` for a training run to write into.
    pub fn stage(&self) -> Result<PathBuf, RegistryError> {
        let random = uuid::Uuid::new_v4().simple().to_string();
        let dir =
            self.versions_dir()
                .join(format!(".staging-{}-{}", std::process::id(), &random[..12]));
        std::fs::create_dir_all(&dir).map_err(Self::io(dir.clone()))?;
        Ok(dir)
    }

    /// Register the staged files as `version`: the staging directory becomes
    /// `versions/VERSION` (one rename), unless that version is already registered — the same
    /// bundle bytes — in which case the staged files are dropped and nothing is overwritten.
    /// The first version of a model becomes its champion. An older single-directory model in
    /// the directory is adopted first, as the champion.
    pub fn register(
        &self,
        staging: &Path,
        version: &str,
        author: &Author,
    ) -> Result<Registered, RegistryError> {
        self.adopt_single(author)?;
        let target = self.version_dir(version);
        let (mut new, mut champion) = (false, String::new());
        // the version's directory, its registration and a first model's champion: one step
        // under the lock
        self.apply_all(|file, _| {
            let mut made = Vec::new();
            if target.join(MODEL_FILE).is_file() {
                std::fs::remove_dir_all(staging).map_err(Self::io(staging.to_path_buf()))?;
            } else {
                if target.exists() {
                    // a version directory without its bundle is the remains of a failed write
                    std::fs::remove_dir_all(&target).map_err(Self::io(target.clone()))?;
                }
                std::fs::rename(staging, &target).map_err(Self::io(target.clone()))?;
                crate::util::sync_dir(&self.versions_dir())
                    .map_err(Self::io(self.versions_dir()))?;
                new = true;
                made.push(change(
                    "register",
                    "",
                    None,
                    Some(version.to_string()),
                    author,
                ));
            }
            match file.aliases.get(CHAMPION) {
                Some(c) => champion = c.clone(),
                None => {
                    file.aliases
                        .insert(CHAMPION.to_string(), version.to_string());
                    champion = version.to_string();
                    let first = Author {
                        by: author.by.clone(),
                        reason: "first version of the model".into(),
                    };
                    made.push(change(
                        "promote",
                        CHAMPION,
                        None,
                        Some(champion.clone()),
                        &first,
                    ));
                }
            }
            Ok(made)
        })?;
        Ok(Registered {
            version: version.to_string(),
            dir: target,
            new,
            champion,
        })
    }

    /// Move an older single-directory model (`DIR/model.bin` and its files) into
    /// `versions/VERSION` as the champion. Safe at every step: the files are copied, the copy
    /// renamed into place, the registry written, and only then are the originals removed; until
    /// the registry file exists the directory still loads as a single-directory model.
    fn adopt_single(&self, author: &Author) -> Result<(), RegistryError> {
        let old = self.dir.join(MODEL_FILE);
        if self.file().exists() || !old.is_file() {
            return Ok(());
        }
        // a bundle that does not load is left where it is, unserved: the new version becomes
        // the champion
        let version = match super::load(&self.dir) {
            Ok(b) => b.version,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e,
                    "the single-directory model does not load: left in place, not kept as a version");
                return Ok(());
            }
        };
        let staging = self.stage()?;
        for f in VERSION_FILES {
            let from = self.dir.join(f);
            if from.is_file() {
                std::fs::copy(&from, staging.join(f)).map_err(Self::io(from))?;
            }
        }
        let adopted = Author {
            by: author.by.clone(),
            reason: "adopted the model of the single-directory layout".into(),
        };
        // under the lock: another process may have adopted it (or set a champion) meanwhile
        self.apply_all(|file, _| {
            let target = self.version_dir(&version);
            if target.exists() {
                std::fs::remove_dir_all(&staging).map_err(Self::io(staging.clone()))?;
            } else {
                std::fs::rename(&staging, &target).map_err(Self::io(target))?;
            }
            if file.aliases.contains_key(CHAMPION) {
                return Ok(Vec::new());
            }
            file.aliases.insert(CHAMPION.to_string(), version.clone());
            Ok(vec![change(
                "promote",
                CHAMPION,
                None,
                Some(version.clone()),
                &adopted,
            )])
        })?;
        for f in VERSION_FILES {
            let from = self.dir.join(f);
            match std::fs::remove_file(&from) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Self::io(from)(e))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// What [`ModelDir::register`] did.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The version.
    pub version: String,
    /// Its directory.
    pub dir: PathBuf,
    /// False when the same version was already registered (nothing was written).
    pub new: bool,
    /// The champion after registering (the new version, when it is the model's first).
    pub champion: String,
}

fn change(
    action: &str,
    alias: &str,
    from: Option<String>,
    to: Option<String>,
    author: &Author,
) -> Change {
    Change {
        at: crate::time::format_instant_millis(crate::time::now_ms()),
        by: author.by.clone(),
        action: action.to_string(),
        alias: alias.to_string(),
        from,
        to,
        reason: author.reason.clone(),
    }
}

fn list(have: &[String]) -> String {
    if have.is_empty() {
        "none".into()
    } else {
        have.join(", ")
    }
}

/// The bundle directory a model path names: `DIR` (a registry's champion, or the
/// single-directory model), `DIR@ALIAS` or `DIR@VERSION`, or a version directory itself.
pub fn resolve_path(path: &Path) -> Result<PathBuf, RegistryError> {
    // a file (or a FIFO, a device: the loader refuses those) is the bundle itself
    let not_a_dir = path.exists() && !path.is_dir();
    if not_a_dir || (path.join(MODEL_FILE).is_file() && !path.join(REGISTRY_FILE).exists()) {
        return Ok(path.to_path_buf());
    }
    if !path.exists() {
        let text = path.to_string_lossy();
        if let Some((dir, which)) = text.rsplit_once('@') {
            let dir = Path::new(dir);
            if dir.is_dir() {
                return ModelDir::new(dir).resolve(Some(which));
            }
        }
        return Ok(path.to_path_buf());
    }
    ModelDir::new(path).resolve(None)
}
