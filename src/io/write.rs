//! Writing output tables and reject tables atomically.

use super::*;
use polars::prelude::*;
use std::path::Path;

/// A column to write.
#[derive(Debug, Clone)]
pub enum OutData<'a> {
    /// Text cells.
    Text(Vec<Option<String>>),
    /// Borrowed text cells (no allocation per cell).
    Str(Vec<Option<&'a str>>),
    /// Floating point cells.
    Float(Vec<Option<f64>>),
    /// Integer cells.
    Int(Vec<Option<i64>>),
    /// Boolean cells.
    Bool(Vec<bool>),
}

/// A reject table: 1-based row, error, then the rejected rows' original cells (what
/// `churn-score --skip-invalid` and `churn-train outcomes --skip-invalid` write).
pub fn reject_table<'t>(
    table: &'t RawTable,
    bad: &[(usize, String)],
) -> Vec<(String, OutData<'t>)> {
    let mut cols: Vec<(String, OutData)> = vec![
        (
            "row".into(),
            OutData::Int(bad.iter().map(|(r, _)| Some(*r as i64 + 1)).collect()),
        ),
        (
            "error".into(),
            OutData::Text(bad.iter().map(|(_, e)| Some(e.clone())).collect()),
        ),
    ];
    for c in &table.columns {
        cols.push((
            c.name.clone(),
            OutData::Text(bad.iter().map(|(r, _)| c.data.get(*r).to_text()).collect()),
        ));
    }
    cols
}

/// Write named columns to `path` (CSV / TSV / Parquet by extension), atomically.
pub fn write_table(path: &Path, columns: Vec<(String, OutData<'_>)>) -> Result<(), IoError> {
    let format = Format::from_path(path)?;
    let werr = |e: &dyn std::fmt::Display| IoError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let cols: Vec<Column> = columns
        .into_iter()
        .map(|(name, data)| match data {
            OutData::Text(v) => Column::new(name.into(), v),
            OutData::Str(v) => Column::new(name.into(), v),
            OutData::Float(v) => Column::new(name.into(), v),
            OutData::Int(v) => Column::new(name.into(), v),
            OutData::Bool(v) => Column::new(name.into(), v),
        })
        .collect();
    let mut df = DataFrame::new_infer_height(cols).map_err(|e| werr(&e))?;
    let mut buf: Vec<u8> = Vec::new();
    match format {
        Format::Csv | Format::Tsv => {
            let sep = if format == Format::Tsv { b'\t' } else { b',' };
            CsvWriter::new(&mut buf)
                .include_header(true)
                .with_separator(sep)
                .finish(&mut df)
                .map_err(|e| werr(&e))?;
        }
        Format::Parquet => {
            // snappy: the fast codec (and pyarrow's default); zstd took ~3x longer to write
            ParquetWriter::new(&mut buf)
                .with_compression(ParquetCompression::Snappy)
                .finish(&mut df)
                .map_err(|e| werr(&e))?;
        }
    }
    if path.to_string_lossy().ends_with(".gz") {
        return Err(werr(
            &"writing compressed output is not supported; use .csv or .parquet",
        ));
    }
    crate::util::write_atomic(path, &buf).map_err(|e| werr(&e))
}
