//! Training configuration: a TOML file whose keys mirror the command-line flags.
//! Relative paths in the file are resolved against the file's own directory.

use crate::ingest::{CustomerTableSpec, TransactionSpec};
use crate::model::tree::{Criterion, LearnerKind};
use crate::model::{ClassWeight, Economics};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Errors of the configuration layer.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("{path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Parser message (names the key and line).
        message: String,
    },
    /// A value is out of range or settings conflict.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl ConfigError {
    /// Process exit code: bad configuration (2).
    pub fn exit_code(&self) -> i32 {
        2
    }
}

/// Model and search settings (`[model]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Tree learner: `hist` (default), `cart` or `linfa`.
    pub learner: LearnerKind,
    /// `gini` or `entropy`.
    pub criterion: Criterion,
    /// Cross-validation folds.
    pub folds: usize,
    /// Share of rows held out for evaluation (0 = none; the model then trains on all rows).
    pub holdout: f64,
    /// Depths searched.
    pub max_depth: Vec<usize>,
    /// Leaf sizes searched.
    pub min_samples_leaf: Vec<usize>,
    /// Minimum rows in a node to split it.
    pub min_samples_split: usize,
    /// `none` or `balanced`.
    pub class_weight: ClassWeight,
    /// Minimum count for a categorical level to get its own one-hot column.
    pub min_count: usize,
    /// Run the CV grid search (false: one fit with the first depth and leaf size).
    pub search: bool,
    /// Worker threads (0 = all cores).
    pub threads: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            learner: LearnerKind::Hist,
            criterion: Criterion::Gini,
            folds: 5,
            holdout: 0.2,
            max_depth: (3..=12).collect(),
            min_samples_leaf: vec![1, 5, 10, 20, 50, 100, 200],
            min_samples_split: 2,
            class_weight: ClassWeight::None,
            min_count: 10,
            search: true,
            threads: 0,
        }
    }
}

impl ModelConfig {
    /// Check ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !(2..=20).contains(&self.folds) {
            return bad(format!("model.folds must be 2..=20, got {}", self.folds));
        }
        if !(0.0..0.9).contains(&self.holdout) {
            return bad(format!(
                "model.holdout must be in [0, 0.9), got {}",
                self.holdout
            ));
        }
        if self.max_depth.is_empty() || self.max_depth.iter().any(|&d| d == 0 || d > 64) {
            return bad("model.max_depth must list depths in 1..=64".into());
        }
        if self.min_samples_leaf.is_empty() || self.min_samples_leaf.contains(&0) {
            return bad("model.min_samples_leaf must list sizes ≥ 1".into());
        }
        Ok(())
    }
}

/// A whole training configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Model name (default: the output directory's name).
    #[serde(default)]
    pub name: Option<String>,
    /// Seed for splits and folds.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Customer-table input.
    #[serde(default)]
    pub data: Option<CustomerTableSpec>,
    /// Transaction-log input.
    #[serde(default)]
    pub transactions: Option<TransactionSpec>,
    /// Model settings.
    #[serde(default)]
    pub model: ModelConfig,
    /// Economics for the decision threshold (F1-optimal when absent).
    #[serde(default)]
    pub economics: Option<Economics>,
    /// Segments, RFM classes and lifecycle stages.
    #[serde(default)]
    pub segments: crate::segment::SegmentConfig,
    /// Retention playbook (default: the built-in `training/playbook.toml`).
    #[serde(default)]
    pub playbook: Option<PathBuf>,
}

impl Config {
    /// Read a TOML config; relative input paths become relative to the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut cfg: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        let fix = |p: &mut PathBuf| {
            if !p.as_os_str().is_empty() && p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(d) = cfg.data.as_mut() {
            fix(&mut d.path);
        }
        if let Some(t) = cfg.transactions.as_mut() {
            fix(&mut t.path);
        }
        if let Some(p) = cfg.playbook.as_mut() {
            fix(p);
        }
        Ok(cfg)
    }
}
