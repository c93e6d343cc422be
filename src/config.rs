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
    /// Which model to ship: `auto` (default: cross-validated log loss decides), `tree` or
    /// `boosted`.
    pub model: crate::model::ModelChoice,
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
    /// Boosted trees: depths searched.
    pub boost_max_depth: Vec<usize>,
    /// Boosted trees: learning rates searched.
    pub boost_learning_rate: Vec<f64>,
    /// Boosted trees: most rounds (early stopping picks fewer).
    pub boost_rounds: usize,
    /// Boosted trees: rounds without improvement before stopping early.
    pub boost_early_stopping: usize,
    /// Boosted trees: most leaves per tree (0: `2^depth`).
    pub boost_max_leaves: usize,
    /// Boosted trees: minimum rows per leaf.
    pub boost_min_samples_leaf: usize,
    /// Boosted trees: L2 penalty on leaf values.
    pub boost_l2: f64,
    /// Boosted trees: share of rows per round.
    pub boost_row_subsample: f64,
    /// Boosted trees: share of columns per tree.
    pub boost_col_subsample: f64,
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
            model: crate::model::ModelChoice::Auto,
            boost_max_depth: vec![3, 5],
            boost_learning_rate: vec![0.1],
            boost_rounds: 1000,
            boost_early_stopping: 50,
            boost_max_leaves: 0,
            boost_min_samples_leaf: 20,
            boost_l2: 1.0,
            boost_row_subsample: 1.0,
            boost_col_subsample: 1.0,
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
        if self.boost_max_depth.is_empty() || self.boost_learning_rate.is_empty() {
            return bad(
                "model.boost_max_depth and model.boost_learning_rate must not be empty".into(),
            );
        }
        for p in self.boost_grid(0) {
            p.validate()
                .map_err(|e| ConfigError::Invalid(format!("model.boost_*: {e}")))?;
        }
        Ok(())
    }

    /// The boosted candidates (depth outer, learning rate inner) with seed `seed`.
    pub fn boost_grid(&self, seed: u64) -> Vec<crate::model::boost::BoostParams> {
        let mut v = Vec::new();
        for &max_depth in &self.boost_max_depth {
            for &learning_rate in &self.boost_learning_rate {
                v.push(crate::model::boost::BoostParams {
                    rounds: self.boost_rounds,
                    learning_rate,
                    max_depth,
                    max_leaves: self.boost_max_leaves,
                    min_samples_leaf: self.boost_min_samples_leaf,
                    min_hessian: 1e-3,
                    l2: self.boost_l2,
                    row_subsample: self.boost_row_subsample,
                    col_subsample: self.boost_col_subsample,
                    early_stopping: self.boost_early_stopping,
                    seed,
                });
            }
        }
        v
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
    /// Retention playbook (default: one inferred from the data, as `churn-train init` writes it).
    #[serde(default)]
    pub playbook: Option<PathBuf>,
    /// What happens after a comparison of champion and challenger (`[lifecycle]`).
    #[serde(default)]
    pub lifecycle: Lifecycle,
}

/// The `[lifecycle]` section: what `churn-train evaluate --compare` may do with its verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    /// `never` (default): the verdict is reported; `when-better`: a challenger judged better,
    /// with the AUC difference's interval above 0 and the log-loss difference's below 0, is
    /// promoted to champion and the change records why.
    #[serde(default)]
    pub promote: Promote,
}

/// When a comparison promotes the challenger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Promote {
    /// Never: a person promotes (`churn-train models promote`).
    #[default]
    Never,
    /// When the challenger is better on both ranking and probabilities.
    WhenBetter,
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
