//! The scoring core: raw customer fields → encoded row → calibrated prediction, warnings and
//! reasons. `churn-score` (batch) and `churn-serve` (HTTP) both call [`Scorer`].

use crate::bundle::{Bundle, LoadedBundle};
use crate::features::{ColumnRole, EncodeError, Warning};
use crate::ingest::FeatureKind;
use crate::io::{RawTable, RawValue};
use crate::model::{parallel_map, Prediction};
use serde::{Deserialize, Serialize};

/// Errors of the scoring layer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    /// A feature the model needs is absent.
    #[error("field '{field}' is required by the model and missing")]
    MissingField {
        /// Field.
        field: String,
    },
    /// A value has the wrong type.
    #[error(transparent)]
    BadValue(#[from] EncodeError),
    /// Columns the model needs are absent from a batch file.
    #[error(
        "{path}: missing columns required by the model: {missing}; available columns: {available}"
    )]
    MissingColumns {
        /// File.
        path: String,
        /// Missing columns.
        missing: String,
        /// Available columns.
        available: String,
    },
    /// A bad row in a batch file.
    #[error("{path}: row {row}: {source}")]
    BadRow {
        /// File.
        path: String,
        /// 1-based data row.
        row: usize,
        /// The row's error.
        source: Box<ScoreError>,
    },
}

impl ScoreError {
    /// The field the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            ScoreError::MissingField { field } => Some(field),
            ScoreError::BadValue(e) => Some(&e.field),
            ScoreError::BadRow { source, .. } => source.field(),
            ScoreError::MissingColumns { .. } => None,
        }
    }
}

/// One step of a decision path, in the input's own terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// Readable condition, e.g. `Contract is Month-to-month` or `tenure ≤ 5.5`.
    pub condition: String,
    /// Input field tested.
    pub field: String,
    /// Change in calibrated churn probability from the parent node to the child.
    pub effect: f64,
}

/// A scored customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The prediction.
    pub prediction: Prediction,
    /// Warnings about the input.
    pub warnings: Vec<Warning>,
    /// Segment, RFM class and lifecycle stage (when the model has segments).
    pub segment: Option<crate::segment::Assignment>,
}

/// A loaded model ready to score.
#[derive(Debug, Clone)]
pub struct Scorer {
    /// The bundle.
    pub bundle: Bundle,
    /// Content version of the bundle.
    pub version: String,
}

impl Scorer {
    /// Wrap a loaded bundle.
    pub fn new(loaded: LoadedBundle) -> Scorer {
        Scorer {
            bundle: loaded.bundle,
            version: loaded.version,
        }
    }

    /// Names of the input fields the model needs.
    pub fn input_names(&self) -> impl Iterator<Item = &str> {
        self.bundle.encoder.inputs.iter().map(|i| i.name.as_str())
    }

    /// Encode one customer. `get(i)` returns input `i`'s value, or `None` when the field is absent.
    pub fn encode<'a>(
        &self,
        get: impl Fn(usize) -> Option<RawValue<'a>>,
        warnings: &mut Vec<Warning>,
    ) -> Result<Vec<f64>, ScoreError> {
        let enc = &self.bundle.encoder;
        let mut row = vec![0.0; enc.width()];
        for (i, spec) in enc.inputs.iter().enumerate() {
            let v = get(i).ok_or_else(|| ScoreError::MissingField {
                field: spec.name.clone(),
            })?;
            enc.encode_cell(i, v, &mut row, warnings)?;
        }
        Ok(row)
    }

    /// Score one customer.
    pub fn score<'a>(
        &self,
        get: impl Fn(usize) -> Option<RawValue<'a>>,
    ) -> Result<Scored, ScoreError> {
        let mut warnings = Vec::new();
        let row = self.encode(get, &mut warnings)?;
        Ok(self.score_encoded(&row, warnings))
    }

    /// Score an encoded row.
    pub fn score_encoded(&self, row: &[f64], warnings: Vec<Warning>) -> Scored {
        Scored {
            prediction: self.bundle.model.predict(row),
            warnings,
            segment: self.bundle.segments.as_ref().map(|s| s.assign(row)),
        }
    }

    /// The decision path of an encoded row as readable reasons, root first.
    pub fn reasons(&self, row: &[f64]) -> Vec<Reason> {
        let m = &self.bundle.model;
        let path = m.tree.path(row);
        path.windows(2)
            .map(|w| {
                let (parent, child) = (w[0], w[1]);
                let node = &m.tree.nodes[parent];
                let left = node.left as usize == child;
                let (condition, field) = self.describe(node.feature as usize, node.threshold, left);
                Reason {
                    condition,
                    field,
                    effect: m.scores[child].p - m.scores[parent].p,
                }
            })
            .collect()
    }

    /// Readable form of `column <= threshold` (left) or its negation (right).
    pub fn describe(&self, column: usize, threshold: f64, left: bool) -> (String, String) {
        let enc = &self.bundle.encoder;
        let col = &enc.columns[column];
        let input = &enc.inputs[col.input];
        let name = input.name.clone();
        let text = match (&col.role, &input.kind) {
            (
                ColumnRole::Value,
                FeatureKind::Boolean {
                    true_token,
                    false_token,
                },
            ) => {
                format!("{name} is {}", if left { false_token } else { true_token })
            }
            (ColumnRole::Value, _) => format!(
                "{name} {} {}",
                if left { "≤" } else { ">" },
                crate::util::fmt_num(threshold)
            ),
            (ColumnRole::Missing, _) => {
                format!("{name} is {}", if left { "present" } else { "missing" })
            }
            (ColumnRole::Level { level }, _) => {
                format!("{name} is {}{level}", if left { "not " } else { "" })
            }
            (ColumnRole::Other, _) => format!(
                "{name} is {}",
                if left {
                    "a common value"
                } else {
                    "a rare or unseen value"
                }
            ),
        };
        (text, name)
    }

    /// Map the model's inputs to the columns of a batch table.
    pub fn bind(&self, table: &RawTable) -> Result<Vec<usize>, ScoreError> {
        let mut idx = Vec::new();
        let mut missing = Vec::new();
        for name in self.input_names() {
            match table.index_of(name) {
                Some(i) => idx.push(i),
                None => missing.push(format!("'{name}'")),
            }
        }
        if !missing.is_empty() {
            return Err(ScoreError::MissingColumns {
                path: table.path.display().to_string(),
                missing: missing.join(", "),
                available: table.column_list(),
            });
        }
        Ok(idx)
    }

    /// Score every row of a table in chunks over `threads` threads. Each entry is the row's
    /// result; errors carry the 1-based row number.
    pub fn score_table(
        &self,
        table: &RawTable,
        threads: usize,
        chunk: usize,
    ) -> Result<Vec<Result<Scored, ScoreError>>, ScoreError> {
        let bind = self.bind(table)?;
        let chunk = chunk.max(1);
        let nchunks = table.nrows.div_ceil(chunk);
        let path = table.path.display().to_string();
        let parts = parallel_map(
            nchunks,
            threads,
            |c| {
                let lo = c * chunk;
                let hi = (lo + chunk).min(table.nrows);
                (lo..hi)
                    .map(|r| {
                        self.score(|i| Some(table.columns[bind[i]].data.get(r)))
                            .map_err(|e| ScoreError::BadRow {
                                path: path.clone(),
                                row: r + 1,
                                source: Box::new(e),
                            })
                    })
                    .collect::<Vec<_>>()
            },
            &|| {},
        );
        Ok(parts.into_iter().flatten().collect())
    }
}
