//! Ingestion: customer tables and transaction logs become a validated [`CustomerData`] —
//! ids, a boolean churn label and typed feature columns — plus a [`QualityReport`].

mod quality;
mod table;
mod transactions;
pub mod value;

pub use quality::{
    ColumnQuality, DataMode, DropCount, InputRole, LabelBalance, QualityReport, RowSource,
};
pub use table::{
    load_customer_table, norm_name, personal_match, ColumnType as ColumnTypeOverride,
    CustomerTableSpec, DEFAULT_PERSONAL_PATTERNS,
};
pub use transactions::{
    build_transaction_features, stream_transaction_features, Cut, StreamOptions, TransactionSpec,
    TRANSACTION_FEATURES,
};

use crate::io::{IoError, OutData};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Errors of the ingestion layer. Every variant names the file and, where it applies, the column,
/// the row (1-based data row, header excluded) and the offending value.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Reading the file failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A configured column is absent.
    #[error("{path}: no column named '{column}' ({role}); available columns: {available}")]
    UnknownColumn {
        /// File.
        path: PathBuf,
        /// Column asked for.
        column: String,
        /// What it was asked for (label, id, drop, ...).
        role: String,
        /// Columns the file has.
        available: String,
    },
    /// A cell could not be parsed as expected.
    #[error("{path}: row {row}, column '{column}': expected {expected}, found '{value}'")]
    BadValue {
        /// File.
        path: PathBuf,
        /// 1-based data row.
        row: usize,
        /// Column.
        column: String,
        /// What was expected.
        expected: String,
        /// What was found.
        value: String,
    },
    /// A required cell is empty.
    #[error("{path}: row {row}, column '{column}': value is missing ({what})")]
    MissingValue {
        /// File.
        path: PathBuf,
        /// 1-based data row.
        row: usize,
        /// Column.
        column: String,
        /// Why it is required.
        what: String,
    },
    /// The label column is not binary or its positive value is unclear.
    #[error("{path}: label column '{column}': {problem}; values found: {values}")]
    Label {
        /// File.
        path: PathBuf,
        /// Label column.
        column: String,
        /// What is wrong.
        problem: String,
        /// Distinct values with counts.
        values: String,
    },
    /// The id column has duplicates.
    #[error("{path}: id column '{column}' has {count} duplicated ids, first: {first}")]
    DuplicateIds {
        /// File.
        path: PathBuf,
        /// Id column.
        column: String,
        /// How many rows repeat an earlier id.
        count: usize,
        /// The first few, with rows.
        first: String,
    },
    /// A feature column holds personal data.
    #[error("{path}: column '{column}' looks like personal data (matches '{pattern}'); personal data is never a model feature: drop it (--drop {column}) or change data.personal_data in the config")]
    PersonalData {
        /// File.
        path: PathBuf,
        /// Column.
        column: String,
        /// The pattern it matched.
        pattern: String,
    },
    /// Nothing usable is left.
    #[error("{path}: {message}")]
    Empty {
        /// File.
        path: PathBuf,
        /// What is empty.
        message: String,
    },
    /// The settings are inconsistent.
    #[error("invalid setting: {0}")]
    Config(String),
}

impl IngestError {
    /// Process exit code: bad input data (2).
    pub fn exit_code(&self) -> i32 {
        2
    }
}

/// How a feature column is interpreted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// Real numbers.
    Numeric,
    /// Two-valued column stored as 0/1; the tokens are kept for messages and reasons.
    Boolean {
        /// Text that means 1 (e.g. `Yes`).
        true_token: String,
        /// Text that means 0 (e.g. `No`).
        false_token: String,
    },
    /// Unordered levels.
    Categorical,
}

impl FeatureKind {
    /// Short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            FeatureKind::Numeric => "numeric",
            FeatureKind::Boolean { .. } => "boolean",
            FeatureKind::Categorical => "categorical",
        }
    }
}

/// Values of one feature column.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureValues {
    /// Numeric and boolean (0/1) columns.
    Num(Vec<Option<f64>>),
    /// Categorical columns (cells in one text buffer).
    Cat(crate::io::TextColumn),
}

/// A typed feature column.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureColumn {
    /// Column name as in the input.
    pub name: String,
    /// Interpretation.
    pub kind: FeatureKind,
    /// Cells.
    pub values: FeatureValues,
}

/// A validated customer-level table: what models are trained on.
#[derive(Debug, Clone)]
pub struct CustomerData {
    /// Input file.
    pub source: PathBuf,
    /// Name of the id column, if any.
    pub id_column: Option<String>,
    /// Customer ids (when there is an id column).
    pub ids: Option<Vec<String>>,
    /// Name of the label column.
    pub label_column: String,
    /// The label value that means churn.
    pub positive_value: String,
    /// The label value that means no churn.
    pub negative_value: String,
    /// Churn label per row.
    pub label: Vec<bool>,
    /// Feature columns.
    pub features: Vec<FeatureColumn>,
    /// Data-quality report.
    pub quality: QualityReport,
    /// How the features were built from a transaction log (`None` for a customer table); kept
    /// in the bundle so `churn-score --transactions` builds the same features.
    pub transactions: Option<TransactionSpec>,
}

impl CustomerData {
    /// The features (and ids) as a table in the layout scoring reads, without the label.
    pub fn to_raw_table(&self) -> crate::io::RawTable {
        use crate::io::{RawColumn, RawData, TextColumn};
        let mut columns = Vec::with_capacity(self.features.len() + 1);
        if let (Some(name), Some(ids)) = (&self.id_column, &self.ids) {
            columns.push(RawColumn {
                name: name.clone(),
                data: RawData::Text(ids.iter().map(|s| Some(s.as_str())).collect::<TextColumn>()),
            });
        }
        for f in &self.features {
            let data = match &f.values {
                FeatureValues::Num(v) => RawData::Num(v.iter().copied().collect()),
                FeatureValues::Cat(v) => RawData::Text((0..v.len()).map(|i| v.get(i)).collect()),
            };
            columns.push(RawColumn {
                name: f.name.clone(),
                data,
            });
        }
        crate::io::RawTable {
            path: self.source.clone(),
            columns,
            nrows: self.nrows(),
        }
    }

    /// Number of rows.
    pub fn nrows(&self) -> usize {
        self.label.len()
    }

    /// Columns for writing the table out (id, features, label) — the layout `churn-score` reads back.
    pub fn output_columns(&self) -> Vec<(String, OutData<'_>)> {
        let mut out = Vec::new();
        if let (Some(name), Some(ids)) = (&self.id_column, &self.ids) {
            out.push((
                name.clone(),
                OutData::Text(ids.iter().map(|s| Some(s.clone())).collect()),
            ));
        }
        for f in &self.features {
            let data = match (&f.kind, &f.values) {
                (
                    FeatureKind::Boolean {
                        true_token,
                        false_token,
                    },
                    FeatureValues::Num(v),
                ) => OutData::Text(
                    v.iter()
                        .map(|x| {
                            x.map(|x| {
                                if x != 0.0 {
                                    true_token.clone()
                                } else {
                                    false_token.clone()
                                }
                            })
                        })
                        .collect(),
                ),
                (_, FeatureValues::Num(v)) => OutData::Float(v.clone()),
                (_, FeatureValues::Cat(v)) => {
                    OutData::Str((0..v.len()).map(|i| v.get(i)).collect())
                }
            };
            out.push((f.name.clone(), data));
        }
        out.push((
            self.label_column.clone(),
            OutData::Text(
                self.label
                    .iter()
                    .map(|&b| {
                        Some(if b {
                            self.positive_value.clone()
                        } else {
                            self.negative_value.clone()
                        })
                    })
                    .collect(),
            ),
        ));
        out
    }

    /// Keep only the rows in `rows` (in that order).
    pub fn subset(&self, rows: &[usize]) -> CustomerData {
        let features = self
            .features
            .iter()
            .map(|f| FeatureColumn {
                name: f.name.clone(),
                kind: f.kind.clone(),
                values: match &f.values {
                    FeatureValues::Num(v) => {
                        FeatureValues::Num(rows.iter().map(|&i| v[i]).collect())
                    }
                    FeatureValues::Cat(v) => {
                        FeatureValues::Cat(rows.iter().map(|&i| v.get(i)).collect())
                    }
                },
            })
            .collect();
        CustomerData {
            source: self.source.clone(),
            id_column: self.id_column.clone(),
            ids: self
                .ids
                .as_ref()
                .map(|ids| rows.iter().map(|&i| ids[i].clone()).collect()),
            label_column: self.label_column.clone(),
            positive_value: self.positive_value.clone(),
            negative_value: self.negative_value.clone(),
            label: rows.iter().map(|&i| self.label[i]).collect(),
            features,
            quality: self.quality.clone(),
            transactions: self.transactions.clone(),
        }
    }
}

/// Where training data comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A customer table with a label.
    Table(CustomerTableSpec),
    /// A transaction log turned into features and a horizon label.
    Transactions(TransactionSpec),
}

impl Source {
    /// The input file.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Source::Table(s) => &s.path,
            Source::Transactions(s) => &s.path,
        }
    }
    /// Customer table or transaction log.
    pub fn mode(&self) -> DataMode {
        match self {
            Source::Table(_) => DataMode::CustomerTable,
            Source::Transactions(_) => DataMode::Transactions,
        }
    }
}

/// Read and validate the input of `source`.
pub fn load(source: &Source) -> Result<CustomerData, IngestError> {
    if source.path().as_os_str().is_empty() {
        return Err(IngestError::Config("no input file given".into()));
    }
    match source {
        Source::Table(spec) => {
            let raw = crate::io::read_table(&spec.path, None)?;
            load_customer_table(raw, spec)
        }
        Source::Transactions(spec) => {
            let t = std::time::Instant::now();
            let raw = crate::io::read_table(&spec.path, Some(&spec.columns()))?;
            tracing::debug!(
                rows = raw.nrows,
                secs = t.elapsed().as_secs_f64(),
                "read transactions"
            );
            let t = std::time::Instant::now();
            let out = build_transaction_features(&raw, spec);
            tracing::debug!(
                secs = t.elapsed().as_secs_f64(),
                "built transaction features"
            );
            out
        }
    }
}
