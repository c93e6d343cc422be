//! The columns a table is read into: text or numbers, with their missing cells.

use super::*;
use std::path::PathBuf;

/// Text cells stored in one buffer (no allocation per cell). Empty or blank cells are missing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextColumn {
    buf: String,
    ends: Vec<usize>,
    valid: Vec<bool>,
}

impl TextColumn {
    /// Append a cell (`None`, empty or blank = missing).
    pub fn push(&mut self, v: Option<&str>) {
        match v {
            Some(s) if !s.trim().is_empty() => {
                self.buf.push_str(s);
                self.valid.push(true);
            }
            _ => self.valid.push(false),
        }
        self.ends.push(self.buf.len());
    }
    /// Cell `i`.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&str> {
        if !self.valid[i] {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.buf[start..self.ends[i]])
    }
    /// Number of cells.
    pub fn len(&self) -> usize {
        self.valid.len()
    }
    /// True when there are no cells.
    pub fn is_empty(&self) -> bool {
        self.valid.is_empty()
    }
}

impl<'a> FromIterator<Option<&'a str>> for TextColumn {
    fn from_iter<I: IntoIterator<Item = Option<&'a str>>>(iter: I) -> Self {
        let mut c = TextColumn::default();
        for v in iter {
            c.push(v);
        }
        c
    }
}

/// The values of one column as read from the file.
#[derive(Debug, Clone, PartialEq)]
pub enum RawData {
    /// Text cells (all CSV columns; string columns of Parquet).
    Text(TextColumn),
    /// Numeric cells (numeric and boolean Parquet columns).
    Num(NumColumn),
}

/// Numbers in one buffer with an optional validity mask (none: every cell present).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NumColumn {
    pub(super) values: Vec<f64>,
    pub(super) valid: Option<Vec<bool>>,
}

impl NumColumn {
    /// Cell `i` (`None` when missing).
    #[inline]
    pub fn get(&self, i: usize) -> Option<f64> {
        match &self.valid {
            Some(v) if !v[i] => None,
            _ => Some(self.values[i]),
        }
    }
    /// Number of cells.
    pub fn len(&self) -> usize {
        self.values.len()
    }
    /// True when there are no cells.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    /// The cells as options.
    pub fn into_options(self) -> Vec<Option<f64>> {
        match self.valid {
            None => self.values.into_iter().map(Some).collect(),
            Some(valid) => self
                .values
                .into_iter()
                .zip(valid)
                .map(|(x, ok)| ok.then_some(x))
                .collect(),
        }
    }
}

impl FromIterator<Option<f64>> for NumColumn {
    fn from_iter<I: IntoIterator<Item = Option<f64>>>(iter: I) -> Self {
        let mut values = Vec::new();
        let mut valid = Vec::new();
        for v in iter {
            values.push(v.unwrap_or(f64::NAN));
            valid.push(v.is_some());
        }
        let valid = valid.iter().any(|v| !v).then_some(valid);
        NumColumn { values, valid }
    }
}

impl RawData {
    /// Number of cells.
    pub fn len(&self) -> usize {
        match self {
            RawData::Text(v) => v.len(),
            RawData::Num(v) => v.len(),
        }
    }
    /// True when the column has no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Missing cells and distinct non-missing values.
    pub fn missing_and_distinct(&self) -> (usize, usize) {
        match self {
            RawData::Text(v) => {
                let mut set: crate::util::FxHashSet<&str> = Default::default();
                let mut missing = 0;
                for i in 0..v.len() {
                    match v.get(i) {
                        Some(s) => {
                            set.insert(s);
                        }
                        None => missing += 1,
                    }
                }
                (missing, set.len())
            }
            RawData::Num(v) => {
                let mut set: crate::util::FxHashSet<u64> = Default::default();
                let mut missing = 0;
                for i in 0..v.len() {
                    match v.get(i) {
                        Some(x) => {
                            set.insert(x.to_bits());
                        }
                        None => missing += 1,
                    }
                }
                (missing, set.len())
            }
        }
    }
    /// The cell at `row` as a borrowed value.
    #[inline]
    pub fn get(&self, row: usize) -> RawValue<'_> {
        match self {
            RawData::Text(v) => match v.get(row) {
                None => RawValue::Missing,
                Some(s) => RawValue::Text(s),
            },
            RawData::Num(v) => match v.get(row) {
                None => RawValue::Missing,
                Some(x) => RawValue::Number(x),
            },
        }
    }
}

/// One cell of input, from a file or from a JSON request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawValue<'a> {
    /// Empty cell or JSON null.
    Missing,
    /// A number.
    Number(f64),
    /// Text.
    Text(&'a str),
    /// A JSON boolean.
    Bool(bool),
}

impl<'a> RawValue<'a> {
    /// The value as text, borrowed when it is text already.
    #[inline]
    pub fn text(&self) -> Option<std::borrow::Cow<'a, str>> {
        use std::borrow::Cow;
        match *self {
            RawValue::Missing => None,
            RawValue::Number(x) => Some(Cow::Owned(crate::util::fmt_num(x))),
            RawValue::Text(s) => Some(Cow::Borrowed(s)),
            RawValue::Bool(b) => Some(Cow::Borrowed(if b { "true" } else { "false" })),
        }
    }
    /// The value as owned text, for categorical use and for messages.
    pub fn to_text(&self) -> Option<String> {
        self.text().map(|t| t.into_owned())
    }
}

/// A named column.
#[derive(Debug, Clone, PartialEq)]
pub struct RawColumn {
    /// Column header.
    pub name: String,
    /// Cells.
    pub data: RawData,
}

/// A table read from a file.
#[derive(Debug, Clone)]
pub struct RawTable {
    /// Where it came from (for messages).
    pub path: PathBuf,
    /// Columns in file order.
    pub columns: Vec<RawColumn>,
    /// Number of data rows.
    pub nrows: usize,
}

impl RawTable {
    /// Index of the column named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
    /// The column named `name`, or an error listing the available ones.
    pub fn column(&self, name: &str) -> Result<&RawColumn, IoError> {
        self.index_of(name)
            .map(|i| &self.columns[i])
            .ok_or_else(|| self.missing(name))
    }
    /// Error for a missing column.
    pub fn missing(&self, name: &str) -> IoError {
        IoError::MissingColumn {
            path: self.path.clone(),
            missing: format!("'{name}'"),
            available: self.column_list(),
        }
    }
    /// Comma-separated column names, for messages.
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
