//! Feature encoding: typed customer columns → a dense numeric matrix, and the same mapping for
//! single rows at scoring time (one code path for training, batch scoring and HTTP).
//!
//! Numeric and boolean inputs are imputed with the training median (plus a `__missing` indicator
//! column when training data had missing values); categorical inputs are one-hot encoded for
//! levels seen at least `min_count` times, the rest share an `other` column. Rare and unseen
//! levels at scoring go to `other` and produce a warning that says which of the two it was.
//!
//! The encoder also keeps which values of the categorical inputs occur together in training
//! ([`LevelSupport`]), so levers propose only combinations that exist.

mod support;
pub use support::{LevelSupport, LEVER_MIN_SUPPORT};

use crate::ingest::value::{
    expected_number, is_missing_token, number_in_range, parse_bool, parse_number, NUMBER_EXPECTED,
};
use crate::ingest::{CustomerData, FeatureKind, FeatureValues};
use crate::io::RawValue;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Label used for a missing categorical value.
pub const MISSING_LEVEL: &str = "(missing)";

/// Errors of the encoding layer: a cell that cannot be used as its input's type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field '{field}': expected {expected}, found {found}")]
pub struct EncodeError {
    /// Input field (column) name.
    pub field: String,
    /// What was expected.
    pub expected: String,
    /// What was found.
    pub found: String,
}

impl EncodeError {
    /// Process exit code: a value the model cannot use is bad input (2).
    pub fn exit_code(&self) -> i32 {
        2
    }
}

/// A non-fatal remark about one scored row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Warning {
    /// A categorical value never seen (often enough) in training; treated as `other`.
    UnseenCategory {
        /// Field.
        field: String,
        /// The value.
        value: String,
    },
    /// A categorical value seen in training fewer than `min_count` times; treated as `other`.
    RareCategory {
        /// Field.
        field: String,
        /// The value.
        value: String,
        /// The encoder's minimum level count.
        min_count: usize,
    },
    /// A missing value replaced by the training median.
    Imputed {
        /// Field.
        field: String,
        /// The value used.
        value: f64,
    },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::UnseenCategory { field, value } => {
                write!(f, "{field}: unseen category '{value}' treated as other")
            }
            Warning::RareCategory {
                field,
                value,
                min_count,
            } => write!(
                f,
                "{field}: '{value}' is rare in training (fewer than {min_count} customers), treated as other"
            ),
            Warning::Imputed { field, value } => {
                write!(
                    f,
                    "{field}: missing, imputed {}",
                    crate::util::fmt_num(*value)
                )
            }
        }
    }
}

/// How one input column is encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputEncoding {
    /// Numeric or boolean value in column `column`.
    Numeric {
        /// Training median, used for missing values.
        median: f64,
        /// Encoded column of the value.
        column: usize,
        /// Encoded column of the missing indicator, when training data had missing values.
        missing_column: Option<usize>,
    },
    /// One-hot levels.
    OneHot {
        /// Kept levels, sorted; level `i` is encoded column `first_column + i`.
        levels: Vec<String>,
        /// First level column.
        first_column: usize,
        /// Column for rare and unseen levels.
        other_column: usize,
        /// Levels seen in training fewer than `min_count` times, sorted (at most
        /// [`MAX_RARE_LEVELS`]; `rare_complete` says whether that is all of them).
        rare: Vec<String>,
        /// Whether `rare` lists every rare training level.
        rare_complete: bool,
    },
}

/// Most rare levels an input keeps for its warnings (high-cardinality columns keep the first).
pub const MAX_RARE_LEVELS: usize = 10_000;

/// One input column of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Column name as in training data.
    pub name: String,
    /// Type.
    pub kind: FeatureKind,
    /// Encoding.
    pub encoding: InputEncoding,
}

/// What an encoded column means (for reasons and importances).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnRole {
    /// The input's value.
    Value,
    /// 1 when the input was missing.
    Missing,
    /// 1 when the input equals this level.
    Level {
        /// The level.
        level: String,
    },
    /// 1 for rare or unseen levels.
    Other,
}

/// One column of the encoded matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodedColumn {
    /// Display name, e.g. `tenure`, `TotalCharges__missing`, `Contract=Month-to-month`.
    pub name: String,
    /// Index of the input it comes from.
    pub input: usize,
    /// Meaning.
    pub role: ColumnRole,
}

/// Dense column-major matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Rows.
    pub nrows: usize,
    /// Columns.
    pub ncols: usize,
    /// Values, column-major: `data[c * nrows + r]`.
    pub data: Vec<f64>,
}

impl Matrix {
    /// Column `c`.
    pub fn col(&self, c: usize) -> &[f64] {
        &self.data[c * self.nrows..(c + 1) * self.nrows]
    }
    /// Value at (`r`, `c`).
    pub fn get(&self, r: usize, c: usize) -> f64 {
        self.data[c * self.nrows + r]
    }
    /// Row `r` copied into a vector.
    pub fn row(&self, r: usize) -> Vec<f64> {
        (0..self.ncols).map(|c| self.get(r, c)).collect()
    }
    /// The rows `rows`, in that order.
    pub fn select_rows(&self, rows: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(rows.len() * self.ncols);
        for c in 0..self.ncols {
            let col = self.col(c);
            data.extend(rows.iter().map(|&r| col[r]));
        }
        Matrix {
            nrows: rows.len(),
            ncols: self.ncols,
            data,
        }
    }
}

/// The fitted encoder, stored in the bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encoder {
    /// Inputs in training column order.
    pub inputs: Vec<InputSpec>,
    /// Encoded columns.
    pub columns: Vec<EncodedColumn>,
    /// Minimum level count for a one-hot column.
    pub min_count: usize,
    /// Which values of the categorical inputs occur together in training (for levers).
    pub support: LevelSupport,
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The value of row `r` of a feature column as a raw cell.
pub fn cell(values: &FeatureValues, r: usize) -> RawValue<'_> {
    match values {
        FeatureValues::Num(v) => v[r].map_or(RawValue::Missing, RawValue::Number),
        FeatureValues::Cat(v) => v.get(r).map_or(RawValue::Missing, RawValue::Text),
    }
}

/// Per-kind cell parsing for [`Encoder::encode_cell`] (the scoring hot path: kept `#[inline]`,
/// no allocation unless a value must be formatted or an error is built).
impl InputSpec {
    /// The error for a cell of this input.
    fn error(&self, expected: &str, found: String) -> EncodeError {
        EncodeError {
            field: self.name.clone(),
            expected: expected.to_string(),
            found,
        }
    }

    /// A numeric or boolean cell as a number, `None` when missing.
    #[inline]
    fn numeric_value(&self, value: RawValue<'_>) -> Result<Option<f64>, EncodeError> {
        Ok(match (&self.kind, value) {
            (_, RawValue::Missing) => None,
            (_, RawValue::Number(x)) if !number_in_range(x) => {
                return Err(self.error(NUMBER_EXPECTED, format!("{x}")))
            }
            (
                FeatureKind::Boolean {
                    true_token,
                    false_token,
                },
                RawValue::Number(x),
            ) => {
                if x != 0.0 && x != 1.0 {
                    return Err(self.error(
                        &format!("'{true_token}' or '{false_token}' (or 1 / 0)"),
                        crate::util::fmt_num(x),
                    ));
                }
                Some(x)
            }
            (_, RawValue::Number(x)) => Some(x),
            (FeatureKind::Boolean { .. }, RawValue::Bool(b)) => Some(b as u8 as f64),
            (
                FeatureKind::Boolean {
                    true_token,
                    false_token,
                },
                RawValue::Text(s),
            ) => {
                if is_missing_token(s) {
                    None
                } else {
                    Some(parse_bool(s, true_token, false_token).ok_or_else(|| {
                        self.error(
                            &format!("'{true_token}' or '{false_token}'"),
                            format!("'{s}'"),
                        )
                    })? as u8 as f64)
                }
            }
            (_, RawValue::Text(s)) => {
                if is_missing_token(s) {
                    None
                } else {
                    Some(
                        parse_number(s)
                            .ok_or_else(|| self.error(expected_number(s), format!("'{s}'")))?,
                    )
                }
            }
            (_, RawValue::Bool(b)) => return Err(self.error("a number", format!("{b}"))),
        })
    }

    /// A categorical cell as its level text ([`MISSING_LEVEL`] when missing); borrowed for text,
    /// formatted only for numbers and booleans.
    #[inline]
    fn level_text<'v>(&self, value: RawValue<'v>) -> Result<Cow<'v, str>, EncodeError> {
        Ok(match value {
            RawValue::Missing => Cow::Borrowed(MISSING_LEVEL),
            RawValue::Text(s) if is_missing_token(s) => Cow::Borrowed(MISSING_LEVEL),
            RawValue::Text(s) => Cow::Borrowed(s.trim()),
            RawValue::Number(x) if !x.is_finite() => {
                return Err(self.error("a category", format!("{x}")))
            }
            other => Cow::Owned(other.to_text().unwrap_or_default()),
        })
    }
}

impl Encoder {
    /// Learn medians and levels from the rows `rows` of `data`.
    pub fn fit(data: &CustomerData, rows: &[usize], min_count: usize) -> Encoder {
        let mut inputs = Vec::new();
        let mut columns = Vec::new();
        for (ii, f) in data.features.iter().enumerate() {
            let encoding = match &f.values {
                FeatureValues::Num(v) => {
                    let mut present: Vec<f64> = rows.iter().filter_map(|&r| v[r]).collect();
                    let any_missing = present.len() < rows.len();
                    let med = median(&mut present);
                    let column = columns.len();
                    columns.push(EncodedColumn {
                        name: f.name.clone(),
                        input: ii,
                        role: ColumnRole::Value,
                    });
                    let missing_column = if any_missing {
                        columns.push(EncodedColumn {
                            name: format!("{}__missing", f.name),
                            input: ii,
                            role: ColumnRole::Missing,
                        });
                        Some(column + 1)
                    } else {
                        None
                    };
                    InputEncoding::Numeric {
                        median: med,
                        column,
                        missing_column,
                    }
                }
                FeatureValues::Cat(v) => {
                    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
                    for &r in rows {
                        *counts.entry(v.get(r).unwrap_or(MISSING_LEVEL)).or_default() += 1;
                    }
                    let levels: Vec<String> = counts
                        .iter()
                        .filter(|(_, &n)| n >= min_count.max(1))
                        .map(|(k, _)| k.to_string())
                        .collect();
                    let rare_all = counts.iter().filter(|(_, &n)| n < min_count.max(1));
                    let rare: Vec<String> = rare_all
                        .clone()
                        .take(MAX_RARE_LEVELS)
                        .map(|(k, _)| k.to_string())
                        .collect();
                    let rare_complete = rare_all.count() <= MAX_RARE_LEVELS;
                    let first_column = columns.len();
                    for l in &levels {
                        columns.push(EncodedColumn {
                            name: format!("{}={}", f.name, l),
                            input: ii,
                            role: ColumnRole::Level { level: l.clone() },
                        });
                    }
                    let other_column = columns.len();
                    columns.push(EncodedColumn {
                        name: format!("{}=other", f.name),
                        input: ii,
                        role: ColumnRole::Other,
                    });
                    InputEncoding::OneHot {
                        levels,
                        first_column,
                        other_column,
                        rare,
                        rare_complete,
                    }
                }
            };
            inputs.push(InputSpec {
                name: f.name.clone(),
                kind: f.kind.clone(),
                encoding,
            });
        }
        let mut enc = Encoder {
            inputs,
            columns,
            min_count,
            support: LevelSupport::default(),
        };
        enc.support = LevelSupport::fit(&enc, data, rows);
        enc
    }

    /// Number of encoded columns.
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// Encode one input cell into `out` (a full encoded row), recording warnings.
    ///
    /// `out` must be zeroed for one-hot columns (the caller passes a fresh row).
    #[inline]
    pub fn encode_cell(
        &self,
        input: usize,
        value: RawValue<'_>,
        out: &mut [f64],
        warnings: &mut Vec<Warning>,
    ) -> Result<(), EncodeError> {
        let spec = &self.inputs[input];
        match &spec.encoding {
            InputEncoding::Numeric {
                median,
                column,
                missing_column,
            } => match spec.numeric_value(value)? {
                Some(x) => out[*column] = x,
                None => {
                    out[*column] = *median;
                    match missing_column {
                        Some(m) => out[*m] = 1.0,
                        None => warnings.push(Warning::Imputed {
                            field: spec.name.clone(),
                            value: *median,
                        }),
                    }
                }
            },
            InputEncoding::OneHot {
                levels,
                first_column,
                other_column,
                rare,
                ..
            } => {
                let text = spec.level_text(value)?;
                match levels.binary_search_by(|l| l.as_str().cmp(&text)) {
                    Ok(i) => out[first_column + i] = 1.0,
                    Err(_) => {
                        out[*other_column] = 1.0;
                        let field = spec.name.clone();
                        let value = text.into_owned();
                        warnings.push(if rare.binary_search(&value).is_ok() {
                            Warning::RareCategory {
                                field,
                                value,
                                min_count: self.min_count,
                            }
                        } else {
                            Warning::UnseenCategory { field, value }
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Encode the rows `rows` of a customer table into a matrix (training and evaluation).
    ///
    /// Rare training levels are encoded as `other` silently (warnings are a scoring concern).
    pub fn transform(&self, data: &CustomerData, rows: &[usize]) -> Result<Matrix, EncodeError> {
        let n = rows.len();
        let w = self.width();
        let mut m = Matrix {
            nrows: n,
            ncols: w,
            data: vec![0.0; n * w],
        };
        let mut row = vec![0.0; w];
        let mut warnings = Vec::new();
        for (ri, &r) in rows.iter().enumerate() {
            row.iter_mut().for_each(|x| *x = 0.0);
            warnings.clear();
            for (ii, f) in data.features.iter().enumerate() {
                self.encode_cell(ii, cell(&f.values, r), &mut row, &mut warnings)?;
            }
            for (c, &x) in row.iter().enumerate() {
                m.data[c * n + ri] = x;
            }
        }
        Ok(m)
    }
}
