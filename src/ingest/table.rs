//! Customer tables: one row per customer with a churn label.

use super::value::{is_missing_token, parse_bool, parse_number, BOOL_PAIRS, POSITIVE_TOKENS};
use super::{
    ColumnQuality, CustomerData, DropCount, FeatureColumn, FeatureKind, FeatureValues, IngestError,
    LabelBalance, QualityReport,
};
use crate::io::{RawData, RawTable};
use crate::util::{fmt_num, FxHashMap, FxHashSet};
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

fn norm_name(s: &str) -> String {
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

/// Load and validate a customer table.
///
/// Takes the table by value: numeric columns move into the result instead of being copied.
pub fn load_customer_table(
    mut raw: RawTable,
    spec: &CustomerTableSpec,
) -> Result<CustomerData, IngestError> {
    let raw_path = raw.path.clone();
    let path = &raw_path;
    let unknown = |column: &str, role: &str| IngestError::UnknownColumn {
        path: path.clone(),
        column: column.to_string(),
        role: role.to_string(),
        available: raw.column_list(),
    };
    if spec.label.is_empty() {
        return Err(IngestError::Config(
            "a label column is required (--label COL or data.label in the config)".into(),
        ));
    }
    let label_idx = raw
        .index_of(&spec.label)
        .ok_or_else(|| unknown(&spec.label, "label"))?;
    let id_idx = match &spec.id {
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
    let patterns: Vec<String> = spec.personal_data.clone().unwrap_or_else(|| {
        DEFAULT_PERSONAL_PATTERNS
            .iter()
            .map(|s| s.to_string())
            .collect()
    });

    let mut quality = QualityReport {
        source: path.display().to_string(),
        mode: "customer_table".into(),
        rows_read: raw.nrows,
        ..Default::default()
    };

    // ---- label ----
    let label_data = &raw.columns[label_idx].data;
    let label_cells: Vec<Option<Cow<str>>> = (0..raw.nrows).map(|i| cell(label_data, i)).collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    {
        let mut fast: FxHashMap<&str, usize> = FxHashMap::default();
        for v in label_cells.iter().flatten() {
            *fast.entry(v.as_ref()).or_default() += 1;
        }
        for (k, n) in fast {
            counts.insert(k.to_string(), n);
        }
    }
    let values_msg = || {
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
    };
    let label_err = |problem: String| IngestError::Label {
        path: path.clone(),
        column: spec.label.clone(),
        problem,
        values: values_msg(),
    };
    if counts.len() != 2 {
        return Err(label_err(format!(
            "expected exactly two distinct values, found {}",
            counts.len()
        )));
    }
    let values: Vec<String> = counts.keys().cloned().collect();
    let positive = match &spec.positive {
        Some(p) => values
            .iter()
            .find(|v| *v == p || v.eq_ignore_ascii_case(p))
            .cloned()
            .ok_or_else(|| label_err(format!("the positive value '{p}' does not occur")))?,
        None => {
            let hits: Vec<&String> = values
                .iter()
                .filter(|v| POSITIVE_TOKENS.contains(&v.to_ascii_lowercase().as_str()))
                .collect();
            if hits.len() != 1 {
                return Err(label_err(
                    "cannot tell which value means churn; set it with --positive VALUE".into(),
                ));
            }
            hits[0].clone()
        }
    };
    let negative = values
        .iter()
        .find(|v| **v != positive)
        .cloned()
        .unwrap_or_default();
    let mut keep: Vec<usize> = Vec::with_capacity(raw.nrows);
    let mut label = Vec::with_capacity(raw.nrows);
    for (i, v) in label_cells.iter().enumerate() {
        if let Some(v) = v {
            keep.push(i);
            label.push(*v == positive);
        }
    }
    drop(label_cells);
    let dropped_label = raw.nrows - keep.len();
    if dropped_label > 0 {
        quality.dropped.push(DropCount {
            reason: format!("label '{}' missing", spec.label),
            rows: dropped_label,
        });
    }

    // ---- ids ----
    let ids = match id_idx {
        None => None,
        Some(ix) => {
            let data = &raw.columns[ix].data;
            let mut seen: FxHashMap<Cow<str>, usize> = FxHashMap::default();
            seen.reserve(keep.len());
            let mut dups = Vec::new();
            let mut ids = Vec::with_capacity(keep.len());
            for &i in &keep {
                let id = cell(data, i).ok_or_else(|| IngestError::MissingValue {
                    path: path.clone(),
                    row: i + 1,
                    column: raw.columns[ix].name.clone(),
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
                    path: path.clone(),
                    column: raw.columns[ix].name.clone(),
                    count: dups.len(),
                    first: dups.into_iter().take(5).collect::<Vec<_>>().join(", "),
                });
            }
            Some(ids)
        }
    };

    // ---- features ----
    let mut features = Vec::new();
    for ci in 0..raw.columns.len() {
        let col = &raw.columns[ci];
        let role = if ci == label_idx {
            "label"
        } else if Some(ci) == id_idx {
            "id"
        } else if spec.drop.contains(&col.name) {
            "dropped"
        } else {
            "feature"
        };
        let (missing, distinct) = missing_and_distinct(&col.data, &keep);
        let mut kind_name = "text".to_string();
        if role == "feature" {
            if let Some(p) = personal_match(&col.name, &patterns) {
                return Err(IngestError::PersonalData {
                    path: path.clone(),
                    column: col.name.clone(),
                    pattern: p,
                });
            }
            let forced = spec.types.get(&col.name);
            let name = col.name.clone();
            let f = match &col.data {
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
                    numeric_column(&raw_path, &name, v, &keep, forced)?
                }
                data => {
                    let vals: Vec<Option<Cow<str>>> = keep.iter().map(|&i| cell(data, i)).collect();
                    type_column(&raw_path, &name, &vals, &keep, forced)?
                }
            };
            kind_name = f.kind.name().to_string();
            features.push(f);
        }
        quality.columns.push(ColumnQuality {
            name: raw.columns[ci].name.clone(),
            role: role.into(),
            kind: kind_name,
            missing,
            distinct,
        });
    }
    if features.is_empty() {
        return Err(IngestError::Empty {
            path: path.clone(),
            message: "no feature columns left after removing id, label and dropped columns".into(),
        });
    }
    if keep.is_empty() {
        return Err(IngestError::Empty {
            path: path.clone(),
            message: "no rows with a label".into(),
        });
    }
    let positives = label.iter().filter(|&&b| b).count();
    quality.rows_out = label.len();
    quality.label = Some(LabelBalance {
        column: spec.label.clone(),
        positive_value: positive.clone(),
        positives,
        negatives: label.len() - positives,
        positive_rate: positives as f64 / label.len() as f64,
    });
    if spec.positive.is_none() {
        quality
            .notes
            .push(format!("positive label value inferred as '{positive}'"));
    }
    Ok(CustomerData {
        source: path.clone(),
        id_column: id_idx.map(|i| raw.columns[i].name.clone()),
        ids,
        label_column: spec.label.clone(),
        positive_value: positive,
        negative_value: negative,
        label,
        features,
        quality,
    })
}

/// Infer (or apply the override for) one column's type and convert its cells.
fn type_column(
    path: &std::path::Path,
    name: &str,
    cells: &[Option<Cow<str>>],
    keep: &[usize],
    forced: Option<&ColumnType>,
) -> Result<FeatureColumn, IngestError> {
    let vals: Vec<Option<&str>> = cells.iter().map(|v| v.as_deref()).collect();
    let bad = |pos: usize, expected: &str| IngestError::BadValue {
        path: path.to_path_buf(),
        row: keep[pos] + 1,
        column: name.to_string(),
        expected: expected.to_string(),
        value: vals[pos].unwrap_or("").to_string(),
    };
    // Distinct values, in first-seen order (bounded).
    let mut distinct: Vec<&str> = Vec::new();
    for v in vals.iter().flatten() {
        if distinct.len() > 2 {
            break;
        }
        if !distinct.iter().any(|d| d.eq_ignore_ascii_case(v)) {
            distinct.push(v);
        }
    }
    let bool_pair = if distinct.len() == 2 {
        let a = distinct[0].to_ascii_lowercase();
        let b = distinct[1].to_ascii_lowercase();
        BOOL_PAIRS.iter().find_map(|(t, f)| {
            if a == *t && b == *f {
                Some((distinct[0].to_string(), distinct[1].to_string()))
            } else if a == *f && b == *t {
                Some((distinct[1].to_string(), distinct[0].to_string()))
            } else {
                None
            }
        })
    } else {
        None
    };
    let numeric_fails: Vec<usize> = vals
        .iter()
        .enumerate()
        .filter(|(_, v)| matches!(v, Some(s) if parse_number(s).is_none()))
        .map(|(i, _)| i)
        .collect();
    let n_present = vals.iter().filter(|v| v.is_some()).count();
    let kind = match forced {
        Some(ColumnType::Numeric) => ColumnType::Numeric,
        Some(ColumnType::Categorical) => ColumnType::Categorical,
        Some(ColumnType::Boolean) => ColumnType::Boolean,
        None if bool_pair.is_some() => ColumnType::Boolean,
        None if numeric_fails.is_empty() && n_present > 0 => ColumnType::Numeric,
        None => {
            // Mostly numbers with a few stray words is a data error, not a category.
            let distinct_fails: std::collections::HashSet<&str> =
                numeric_fails.iter().filter_map(|&i| vals[i]).collect();
            if n_present >= 50
                && (numeric_fails.len() as f64) < 0.02 * n_present as f64
                && distinct_fails.len() <= 3
            {
                return Err(bad(
                    numeric_fails[0],
                    "a number (the column is otherwise numeric; set its type to categorical if that is intended)",
                ));
            }
            ColumnType::Categorical
        }
    };
    let (kind, values) = match kind {
        ColumnType::Numeric => {
            if let Some(&i) = numeric_fails.first() {
                return Err(bad(i, "a number"));
            }
            let v = vals.iter().map(|v| v.and_then(parse_number)).collect();
            (FeatureKind::Numeric, FeatureValues::Num(v))
        }
        ColumnType::Boolean => {
            let (t, f) = match bool_pair {
                Some(p) => p,
                None => {
                    // forced boolean: accept generic tokens
                    ("true".to_string(), "false".to_string())
                }
            };
            let mut out = Vec::with_capacity(vals.len());
            for (i, v) in vals.iter().enumerate() {
                out.push(match v {
                    None => None,
                    Some(s) => Some(match parse_bool(s, &t, &f) {
                        Some(b) => b as u8 as f64,
                        None => return Err(bad(i, &format!("a boolean ('{t}' or '{f}')"))),
                    }),
                });
            }
            (
                FeatureKind::Boolean {
                    true_token: t,
                    false_token: f,
                },
                FeatureValues::Num(out),
            )
        }
        ColumnType::Categorical => (
            FeatureKind::Categorical,
            FeatureValues::Cat(vals.iter().copied().collect()),
        ),
    };
    Ok(FeatureColumn {
        name: name.to_string(),
        kind,
        values,
    })
}

/// Missing cells and distinct present values (counted up to 100,000) over the kept rows.
fn missing_and_distinct(data: &RawData, keep: &[usize]) -> (usize, usize) {
    const CAP: usize = 100_000;
    let mut missing = 0usize;
    match data {
        RawData::Num(v) => {
            let mut set: FxHashSet<u64> = FxHashSet::default();
            for &i in keep {
                match v.get(i).and_then(clean_num) {
                    None => missing += 1,
                    Some(x) if set.len() < CAP => {
                        set.insert((x + 0.0).to_bits());
                    }
                    Some(_) => {}
                }
            }
            (missing, set.len())
        }
        RawData::Text(t) => {
            let mut set: FxHashSet<&str> = FxHashSet::default();
            for &i in keep {
                match clean(t.get(i)) {
                    None => missing += 1,
                    Some(s) if set.len() < CAP => {
                        set.insert(s);
                    }
                    Some(_) => {}
                }
            }
            (missing, set.len())
        }
    }
}

/// A column read as numbers (Parquet numeric / boolean columns): numeric, or boolean when its
/// values are exactly 0 and 1 (as the text path infers from "0"/"1") or when forced.
fn numeric_column(
    path: &std::path::Path,
    name: &str,
    mut vals: Vec<Option<f64>>,
    keep: &[usize],
    forced: Option<&ColumnType>,
) -> Result<FeatureColumn, IngestError> {
    for v in vals.iter_mut() {
        *v = v.and_then(clean_num);
    }
    let bad = |pos: usize, expected: &str| IngestError::BadValue {
        path: path.to_path_buf(),
        row: keep[pos] + 1,
        column: name.to_string(),
        expected: expected.to_string(),
        value: vals[pos].map(fmt_num).unwrap_or_default(),
    };
    if let Some(i) = vals.iter().position(|x| x.is_some_and(|x| !x.is_finite())) {
        return Err(bad(i, "a finite number"));
    }
    let mut seen = [false; 2];
    let mut other = false;
    for x in vals.iter().flatten() {
        match *x {
            0.0 => seen[0] = true,
            1.0 => seen[1] = true,
            _ => {
                other = true;
                break;
            }
        }
    }
    let boolean = match forced {
        Some(ColumnType::Boolean) => {
            if other {
                let i = vals
                    .iter()
                    .position(|x| x.is_some_and(|x| x != 0.0 && x != 1.0))
                    .expect("a non-0/1 value exists");
                return Err(bad(i, "a boolean ('1' or '0')"));
            }
            true
        }
        Some(_) => false,
        None => !other && seen == [true, true],
    };
    let kind = if boolean {
        FeatureKind::Boolean {
            true_token: "1".into(),
            false_token: "0".into(),
        }
    } else {
        FeatureKind::Numeric
    };
    Ok(FeatureColumn {
        name: name.to_string(),
        kind,
        values: FeatureValues::Num(vals),
    })
}
