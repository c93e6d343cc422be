//! Customer tables: one row per customer with a churn label.

mod columns;

use super::value::{is_missing_token, POSITIVE_TOKENS};
use super::{
    ColumnQuality, CustomerData, DataMode, DropCount, FeatureColumn, IngestError, InputRole,
    LabelBalance, QualityReport,
};
use crate::io::{RawData, RawTable};
use crate::util::{fmt_num, FxHashMap};
use columns::{missing_and_distinct, numeric_column, type_column};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Column names that mark personal data by default. A column matches when its name, lower-cased
/// with non-alphanumerics removed, equals or ends with a pattern (`Surname`, `customer_email`,
/// `contact_phone` match; `PhoneService` does not).
pub const DEFAULT_PERSONAL_PATTERNS: &[&str] = &[
    "name",
    "email",
    "mail",
    "phone",
    "phonenumber",
    "mobile",
    "telephone",
    "address",
    "ssn",
    "passport",
    "birthdate",
    "dateofbirth",
    "dob",
    "iban",
];

/// A type override for a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// Real numbers.
    Numeric,
    /// Unordered levels.
    Categorical,
    /// Two-valued.
    Boolean,
}

/// How to read a customer table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerTableSpec {
    /// Input file (CSV, CSV.gz, TSV or Parquet).
    #[serde(default)]
    pub path: std::path::PathBuf,
    /// Label column.
    pub label: String,
    /// Label value that means churn (inferred when absent).
    #[serde(default)]
    pub positive: Option<String>,
    /// Id column (optional).
    #[serde(default)]
    pub id: Option<String>,
    /// Columns to ignore.
    #[serde(default)]
    pub drop: Vec<String>,
    /// Type overrides: column → numeric | categorical | boolean.
    #[serde(default)]
    pub types: BTreeMap<String, ColumnType>,
    /// Personal-data name patterns (default [`DEFAULT_PERSONAL_PATTERNS`]).
    #[serde(default)]
    pub personal_data: Option<Vec<String>>,
}

/// A column name lower-cased with non-alphanumerics removed (`Customer_ID` → `customerid`):
/// how personal-data patterns and `churn-train init` compare names.
pub fn norm_name(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The personal-data pattern a column name matches, if any.
pub fn personal_match(column: &str, patterns: &[String]) -> Option<String> {
    let n = norm_name(column);
    patterns
        .iter()
        .find(|p| {
            let p = norm_name(p);
            !p.is_empty() && n.ends_with(&p)
        })
        .cloned()
}

/// Cell `i` as trimmed text (numbers formatted), `None` when missing. Borrowed for text columns.
fn cell(data: &RawData, i: usize) -> Option<Cow<'_, str>> {
    match data {
        RawData::Text(t) => clean(t.get(i)).map(Cow::Borrowed),
        RawData::Num(v) => v
            .get(i)
            .and_then(|x| clean_num(x).map(|x| Cow::Owned(fmt_num(x)))),
    }
}

/// A numeric cell, `None` for NaN (a missing token) — infinities stay and fail later.
fn clean_num(x: f64) -> Option<f64> {
    (!x.is_nan()).then_some(x)
}

fn clean(v: Option<&str>) -> Option<&str> {
    match v {
        Some(s) if !is_missing_token(s) => Some(s.trim()),
        _ => None,
    }
}

impl CustomerTableSpec {
    /// Guards on the settings alone, checked before the table is looked at (like linfa's
    /// parameter checks): a label column must be named.
    pub(crate) fn validate(&self) -> Result<(), IngestError> {
        if self.label.is_empty() {
            return Err(IngestError::Config(
                "a label column is required (--label COL or data.label in the config)".into(),
            ));
        }
        Ok(())
    }

    /// The personal-data patterns in force: the configured ones or the defaults.
    fn personal_patterns(&self) -> Vec<String> {
        self.personal_data.clone().unwrap_or_else(|| {
            DEFAULT_PERSONAL_PATTERNS
                .iter()
                .map(|s| s.to_string())
                .collect()
        })
    }
}

/// Indices of the label and id columns, found once all configured columns are known to exist.
#[derive(Clone, Copy)]
struct Roles {
    label: usize,
    id: Option<usize>,
}

impl Roles {
    /// Check every column the spec names (label, id, drops, type overrides, in that order).
    fn resolve(raw: &RawTable, spec: &CustomerTableSpec) -> Result<Roles, IngestError> {
        let unknown = |column: &str, role: &str| IngestError::UnknownColumn {
            path: raw.path.clone(),
            column: column.to_string(),
            role: role.to_string(),
            available: raw.column_list(),
        };
        let label = raw
            .index_of(&spec.label)
            .ok_or_else(|| unknown(&spec.label, "label"))?;
        let id = match &spec.id {
            Some(id) => Some(raw.index_of(id).ok_or_else(|| unknown(id, "id"))?),
            None => None,
        };
        for d in &spec.drop {
            if raw.index_of(d).is_none() {
                return Err(unknown(d, "drop"));
            }
        }
        for t in spec.types.keys() {
            if raw.index_of(t).is_none() {
                return Err(unknown(t, "type override"));
            }
        }
        Ok(Roles { label, id })
    }

    /// The role of column `ci` for the quality report; only `feature` columns become features.
    fn of(&self, ci: usize, name: &str, spec: &CustomerTableSpec) -> InputRole {
        if ci == self.label {
            InputRole::Label
        } else if Some(ci) == self.id {
            InputRole::Id
        } else if spec.drop.iter().any(|d| d == name) {
            InputRole::Dropped
        } else {
            InputRole::Feature
        }
    }
}

/// Load and validate a customer table.
///
/// Takes the table by value: numeric columns move into the result instead of being copied.
pub fn load_customer_table(
    mut raw: RawTable,
    spec: &CustomerTableSpec,
) -> Result<CustomerData, IngestError> {
    spec.validate()?;
    let roles = Roles::resolve(&raw, spec)?;
    let mut quality = QualityReport {
        source: raw.path.display().to_string(),
        mode: DataMode::CustomerTable,
        rows_read: raw.nrows,
        ..Default::default()
    };
    let labels = Labels::read(&raw, spec, roles.label)?;
    let dropped_label = raw.nrows - labels.keep.len();
    if dropped_label > 0 {
        quality.dropped.push(DropCount {
            reason: format!("label '{}' missing", spec.label),
            rows: dropped_label,
        });
    }
    let ids = match roles.id {
        None => None,
        Some(ix) => Some(read_ids(&raw, ix, &labels.keep)?),
    };
    let features = feature_columns(&mut raw, spec, roles, &labels.keep, &mut quality)?;
    let path = &raw.path;
    if features.is_empty() {
        return Err(IngestError::Empty {
            path: path.clone(),
            message: "no feature columns left after removing id, label and dropped columns".into(),
        });
    }
    if labels.keep.is_empty() {
        return Err(IngestError::Empty {
            path: path.clone(),
            message: "no rows with a label".into(),
        });
    }
    labels.report(spec, &mut quality);
    Ok(CustomerData {
        source: path.clone(),
        id_column: roles.id.map(|i| raw.columns[i].name.clone()),
        ids,
        label_column: spec.label.clone(),
        positive_value: labels.positive,
        negative_value: labels.negative,
        label: labels.label,
        features,
        quality,
        transactions: None,
    })
}

/// The label column read as booleans: which rows have a label, and the two values.
struct Labels {
    /// Rows with a label (the rows kept), ascending.
    keep: Vec<usize>,
    /// Churn label of each kept row.
    label: Vec<bool>,
    /// The value that means churn.
    positive: String,
    /// The other value.
    negative: String,
}

impl Labels {
    /// Read the label column: it must hold exactly two values, one of them recognisably (or as
    /// configured) the churn value.
    fn read(raw: &RawTable, spec: &CustomerTableSpec, ix: usize) -> Result<Labels, IngestError> {
        let data = &raw.columns[ix].data;
        let cells: Vec<Option<Cow<str>>> = (0..raw.nrows).map(|i| cell(data, i)).collect();
        let counts = value_counts(&cells);
        let label_err = |problem: String| IngestError::Label {
            path: raw.path.clone(),
            column: spec.label.clone(),
            problem,
            values: values_list(&counts),
        };
        if counts.len() != 2 {
            return Err(label_err(format!(
                "expected exactly two distinct values, found {}",
                counts.len()
            )));
        }
        let values: Vec<String> = counts.keys().cloned().collect();
        let positive = positive_value(spec, &values).map_err(label_err)?;
        let negative = values
            .iter()
            .find(|v| **v != positive)
            .cloned()
            .unwrap_or_default();
        let mut keep: Vec<usize> = Vec::with_capacity(raw.nrows);
        let mut label = Vec::with_capacity(raw.nrows);
        for (i, v) in cells.iter().enumerate() {
            if let Some(v) = v {
                keep.push(i);
                label.push(*v == positive);
            }
        }
        Ok(Labels {
            keep,
            label,
            positive,
            negative,
        })
    }

    /// Record the label balance (and an inferred positive value) in the report.
    fn report(&self, spec: &CustomerTableSpec, quality: &mut QualityReport) {
        let label = &self.label;
        let positives = label.iter().filter(|&&b| b).count();
        quality.rows_out = label.len();
        quality.label = Some(LabelBalance {
            column: spec.label.clone(),
            positive_value: self.positive.clone(),
            positives,
            negatives: label.len() - positives,
            positive_rate: positives as f64 / label.len() as f64,
        });
        if spec.positive.is_none() {
            quality.notes.push(format!(
                "positive label value inferred as '{}'",
                self.positive
            ));
        }
    }
}

/// Count of each present value, sorted by value (counted in a hash map first: it is faster).
fn value_counts(cells: &[Option<Cow<str>>]) -> BTreeMap<String, usize> {
    let mut fast: FxHashMap<&str, usize> = FxHashMap::default();
    for v in cells.iter().flatten() {
        *fast.entry(v.as_ref()).or_default() += 1;
    }
    fast.into_iter().map(|(k, n)| (k.to_string(), n)).collect()
}

/// The first ten values with their counts, for label error messages.
fn values_list(counts: &BTreeMap<String, usize>) -> String {
    if counts.is_empty() {
        "none (the column is empty)".to_string()
    } else {
        counts
            .iter()
            .take(10)
            .map(|(k, n)| format!("'{k}' ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Which of the two label `values` means churn: the configured one (case-insensitively), or the
/// only one that is a known positive token. `Err` holds the problem for the label error.
fn positive_value(spec: &CustomerTableSpec, values: &[String]) -> Result<String, String> {
    match &spec.positive {
        Some(p) => values
            .iter()
            .find(|v| *v == p || v.eq_ignore_ascii_case(p))
            .cloned()
            .ok_or_else(|| format!("the positive value '{p}' does not occur")),
        None => {
            let hits: Vec<&String> = values
                .iter()
                .filter(|v| POSITIVE_TOKENS.contains(&v.to_ascii_lowercase().as_str()))
                .collect();
            if hits.len() != 1 {
                return Err(
                    "cannot tell which value means churn; set it with --positive VALUE".into(),
                );
            }
            Ok(hits[0].clone())
        }
    }
}

/// The ids of the kept rows: every one present and none repeated.
fn read_ids(raw: &RawTable, ix: usize, keep: &[usize]) -> Result<Vec<String>, IngestError> {
    let column = &raw.columns[ix];
    let mut seen: FxHashMap<Cow<str>, usize> = FxHashMap::default();
    seen.reserve(keep.len());
    let mut dups = Vec::new();
    let mut ids = Vec::with_capacity(keep.len());
    for &i in keep {
        let id = cell(&column.data, i).ok_or_else(|| IngestError::MissingValue {
            path: raw.path.clone(),
            row: i + 1,
            column: column.name.clone(),
            what: "every customer needs an id".into(),
        })?;
        ids.push(id.to_string());
        if let Some(first) = seen.insert(id, i) {
            dups.push(format!(
                "'{}' (rows {} and {})",
                ids[ids.len() - 1],
                first + 1,
                i + 1
            ));
        }
    }
    if !dups.is_empty() {
        return Err(IngestError::DuplicateIds {
            path: raw.path.clone(),
            column: column.name.clone(),
            count: dups.len(),
            first: dups.into_iter().take(5).collect::<Vec<_>>().join(", "),
        });
    }
    Ok(ids)
}

/// Type every feature column over the kept rows (in column order, so the first bad column is
/// the one reported) and add every column's statistics to the report.
fn feature_columns(
    raw: &mut RawTable,
    spec: &CustomerTableSpec,
    roles: Roles,
    keep: &[usize],
    quality: &mut QualityReport,
) -> Result<Vec<FeatureColumn>, IngestError> {
    let patterns = spec.personal_patterns();
    let mut features = Vec::new();
    for ci in 0..raw.columns.len() {
        let col = &raw.columns[ci];
        let role = roles.of(ci, &col.name, spec);
        let (missing, distinct) = missing_and_distinct(&col.data, keep);
        let mut kind_name = "text".to_string();
        if role == InputRole::Feature {
            if let Some(p) = personal_match(&col.name, &patterns) {
                return Err(IngestError::PersonalData {
                    path: raw.path.clone(),
                    column: col.name.clone(),
                    pattern: p,
                });
            }
            let f = feature_column(raw, ci, keep, spec.types.get(&raw.columns[ci].name))?;
            kind_name = f.kind.name().to_string();
            features.push(f);
        }
        quality.columns.push(ColumnQuality {
            name: raw.columns[ci].name.clone(),
            role,
            kind: kind_name,
            missing,
            distinct,
        });
    }
    Ok(features)
}

/// Column `ci` as a typed feature over the kept rows. Numeric cells are moved out of `raw`
/// (not copied) unless the column is forced categorical.
fn feature_column(
    raw: &mut RawTable,
    ci: usize,
    keep: &[usize],
    forced: Option<&ColumnType>,
) -> Result<FeatureColumn, IngestError> {
    let name = raw.columns[ci].name.clone();
    match &raw.columns[ci].data {
        RawData::Num(_) if forced != Some(&ColumnType::Categorical) => {
            // move the cells out when every row is kept
            let v = match std::mem::replace(
                &mut raw.columns[ci].data,
                RawData::Text(Default::default()),
            ) {
                RawData::Num(v) if keep.len() == v.len() => v.into_options(),
                RawData::Num(v) => keep.iter().map(|&i| v.get(i)).collect(),
                RawData::Text(_) => unreachable!("matched a numeric column"),
            };
            numeric_column(&raw.path, &name, v, keep, forced)
        }
        data => {
            let vals: Vec<Option<Cow<str>>> = keep.iter().map(|&i| cell(data, i)).collect();
            type_column(&raw.path, &name, &vals, keep, forced)
        }
    }
}
