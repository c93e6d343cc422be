//! The uplift bundle: per action, the model of each customer's incremental response, stored
//! beside the churn bundle it was trained for (`DIR/uplift.bin`, framed and checksummed like
//! `model.bin`), with its card (`DIR/uplift_card.json`: how each learner did on held-out rows,
//! which was chosen, how many rows of each arm it learned from).
//!
//! An uplift bundle belongs to one churn model *and encoder*: it reads the same encoded
//! columns. Loading it beside another model, or beside the same model retrained with other
//! columns, is refused with both names.

use super::{decode_exact, frame, read_limited, unframe, Bundle, BundleError};
use crate::model::uplift::{measures::UpliftMeasures, UpliftModel};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Magic bytes of `uplift.bin`.
pub const UPLIFT_MAGIC: &[u8; 8] = b"CHURNUPL";
/// Current uplift format.
pub const UPLIFT_FORMAT: u32 = 1;
/// File name of the uplift bundle inside a model directory.
pub const UPLIFT_FILE: &str = "uplift.bin";
/// File name of its card.
pub const UPLIFT_CARD_FILE: &str = "uplift_card.json";

/// One action's uplift model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionUplift {
    /// Action id (the playbook's).
    pub action: String,
    /// The chosen learner's model, fitted on every row.
    pub model: UpliftModel,
    /// Its held-out Qini coefficient (cross-fitted) with the 95% bootstrap interval.
    pub qini: crate::model::Estimate,
    /// Whether it ranks customers: its held-out Qini interval lies above 0. A model that does
    /// not is kept for the record but never ranks (the action's average effect does).
    pub applied: bool,
}

/// Everything `uplift.bin` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpliftBundle {
    /// Name of the churn model it belongs to.
    pub model: String,
    /// Content version of the churn bundle it was trained beside.
    pub model_version: String,
    /// Fingerprint of the churn bundle's encoder (see [`encoder_fingerprint`]).
    pub encoder: String,
    /// Per action, in the playbook's order.
    pub actions: Vec<ActionUplift>,
}

/// One learner's held-out record in the card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnerRecord {
    /// The learner.
    pub learner: String,
    /// Its cross-fitted effects' measures.
    pub held_out: UpliftMeasures,
}

/// One action in the card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionCard {
    /// Action id.
    pub action: String,
    /// The learner chosen (best held-out Qini coefficient).
    pub learner: String,
    /// Whether serving ranks by it (its held-out Qini interval lies above 0).
    pub applied: bool,
    /// Rows offered the action.
    pub treated: usize,
    /// Rows held out from it (control customers it would have been offered to).
    pub control: usize,
    /// Churn rate of the treated rows.
    pub treated_churn: f64,
    /// Churn rate of the control rows.
    pub control_churn: f64,
    /// Mean predicted effect over every row (drop in churn probability).
    pub mean_effect: f64,
    /// Share of rows with a predicted effect below 0 (the action would push them out).
    pub harmed_share: f64,
    /// Every learner tried.
    pub learners: Vec<LearnerRecord>,
}

/// How many predictions went where.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RowCounts {
    /// Predictions read.
    pub predictions: usize,
    /// Customers (their first prediction is the unit).
    pub customers: usize,
    /// Customers whose label has not matured yet.
    pub pending: usize,
    /// Matured customers in no arm (no playbook, or a treatment customer not to contact).
    pub no_arm: usize,
    /// Matured customers in an arm whose stored input no longer encodes.
    pub unreadable: usize,
    /// Training rows.
    pub rows: usize,
}

/// `uplift_card.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpliftCard {
    /// Churn model name.
    pub model: String,
    /// Content version of the churn bundle.
    pub model_version: String,
    /// Content version of the uplift bundle.
    pub version: String,
    /// Where the rows came from, and how many of each kind.
    pub data: RowCounts,
    /// Per action.
    pub actions: Vec<ActionCard>,
    /// Actions that had too few rows to model, with the reason.
    pub skipped: Vec<(String, String)>,
}

/// The fingerprint of a churn bundle's encoder: the first 12 hex digits of the sha256 of its
/// encoded columns' names in order (the layout an uplift model reads).
pub fn encoder_fingerprint(bundle: &Bundle) -> String {
    let names: Vec<&str> = bundle
        .encoder
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    crate::util::sha256_hex(names.join("\n").as_bytes())[..12].to_string()
}

impl UpliftBundle {
    /// The model of `action`, if there is one (applied or not).
    pub fn action(&self, action: &str) -> Option<&UpliftModel> {
        self.actions
            .iter()
            .find(|a| a.action == action)
            .map(|a| &a.model)
    }

    /// The model of `action` when it is applied (ranks customers better than chance).
    pub fn applied(&self, action: &str) -> Option<&ActionUplift> {
        self.actions
            .iter()
            .find(|a| a.action == action && a.applied)
    }

    /// Refuse to pair with a churn bundle of another name or encoder.
    pub fn check_pair(&self, bundle: &Bundle, path: &Path) -> Result<(), BundleError> {
        let fp = encoder_fingerprint(bundle);
        if self.model != bundle.name || self.encoder != fp {
            return Err(BundleError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "the uplift bundle was trained for model '{}' (encoder {}), not for '{}' \
                     (encoder {fp}); train it again with churn-train uplift",
                    self.model, self.encoder, bundle.name
                ),
            });
        }
        Ok(())
    }

    /// Every tree of every action reads columns of an encoder `width` wide.
    fn validate(&self, width: usize) -> Result<(), String> {
        for a in &self.actions {
            let (c, t) = match &a.model {
                UpliftModel::T { control, treated }
                | UpliftModel::X {
                    control, treated, ..
                } => (control, treated),
            };
            for e in [c, t] {
                for tree in &e.trees {
                    if let Some(n) = tree
                        .nodes
                        .iter()
                        .find(|n| !n.is_leaf() && n.feature as usize >= width)
                    {
                        return Err(format!(
                            "action '{}' splits on column {} of {width}",
                            a.action, n.feature
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Encode an uplift bundle to its file bytes.
pub fn to_bytes(u: &UpliftBundle) -> Result<Vec<u8>, BundleError> {
    let payload = bincode::serde::encode_to_vec(u, bincode::config::standard())
        .map_err(|e| BundleError::Encode(e.to_string()))?;
    Ok(frame(UPLIFT_MAGIC, UPLIFT_FORMAT, &payload))
}

/// Write `DIR/uplift.bin` and `DIR/uplift_card.json` (each atomically; the bundle last, so a
/// reader never sees a bundle without its card); returns the content version.
pub fn save(dir: &Path, u: &UpliftBundle, card: &mut UpliftCard) -> Result<String, BundleError> {
    let bytes = to_bytes(u)?;
    let version = super::version_of(&bytes);
    card.version = version.clone();
    let json = serde_json::to_vec_pretty(card).map_err(|e| BundleError::Encode(e.to_string()))?;
    for (name, b) in [(UPLIFT_CARD_FILE, &json), (UPLIFT_FILE, &bytes)] {
        let file = dir.join(name);
        crate::util::write_atomic(&file, b)
            .map_err(|source| BundleError::Io { path: file, source })?;
    }
    Ok(version)
}

/// The uplift bundle beside `bundle` in `dir`, if there is one, checked against it.
/// A model directory with a registry means its champion's (see
/// [`super::registry::resolve_path`]).
pub fn load(dir: &Path, bundle: &Bundle) -> Result<Option<(UpliftBundle, String)>, BundleError> {
    let dir = super::registry::resolve_path(dir)?;
    let file = dir.join(UPLIFT_FILE);
    if !file.exists() {
        return Ok(None);
    }
    let bytes = read_limited(&file)?;
    let (_, payload) = unframe(&bytes, UPLIFT_MAGIC, 1..=UPLIFT_FORMAT, &file)?;
    let u: UpliftBundle = decode_exact(payload, &file)?;
    u.check_pair(bundle, &file)?;
    u.validate(bundle.encoder.width())
        .map_err(|message| BundleError::Invalid {
            path: file.clone(),
            message,
        })?;
    Ok(Some((u, super::version_of(&bytes))))
}
