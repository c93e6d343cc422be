//! Reading a whole CSV or Parquet file into a [`RawTable`], checking its header.

use super::*;
use polars::prelude::*;
use std::path::Path;

pub(super) fn read_err(path: &Path, e: impl std::fmt::Display) -> IoError {
    IoError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Read a whole table. With `only`, read just those columns (error if any is absent).
///
/// CSV columns are read as text (blank cells become missing) so that type inference and error
/// messages stay ours; Parquet columns keep their numeric types.
pub fn read_table(path: &Path, only: Option<&[String]>) -> Result<RawTable, IoError> {
    let format = Format::from_path(path)?;
    let t = std::time::Instant::now();
    if let Err(source) = std::fs::metadata(path) {
        return Err(IoError::Open {
            path: path.to_path_buf(),
            source,
        });
    }
    let df = match format {
        Format::Csv => read_csv(path, b',', only)?,
        Format::Tsv => read_csv(path, b'\t', only)?,
        Format::Parquet => read_parquet(path, only)?,
    };
    tracing::debug!(secs = t.elapsed().as_secs_f64(), "polars read");
    let nrows = df.height();
    let columns = convert_columns(path, df.into_columns())?;
    Ok(RawTable {
        path: path.to_path_buf(),
        columns,
        nrows,
    })
}

/// Read a CSV / TSV file with every column as text. On failure, a missing requested column gets
/// our message (with the available columns), not polars'.
fn read_csv(path: &Path, sep: u8, only: Option<&[String]>) -> Result<DataFrame, IoError> {
    let opts = || {
        CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .map_parse_options(|o| {
                o.with_separator(sep)
                    .with_missing_is_null(true)
                    .with_truncate_ragged_lines(false)
            })
    };
    let mut full = opts();
    if let Some(cols) = only {
        let cols: Vec<PlSmallStr> = cols.iter().map(|c| c.as_str().into()).collect();
        full = full.with_columns(Some(cols.into()));
    }
    let header = || {
        opts()
            .with_n_rows(Some(0))
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
    };
    match full
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|r| r.finish())
    {
        Ok(df) => {
            match only {
                None => check_unique_header(path, &column_names(&df))?,
                Some(_) => {
                    if let Ok(h) = header() {
                        check_unique_header(path, &column_names(&h))?;
                    }
                }
            }
            Ok(df)
        }
        Err(e) => {
            if let Ok(header) = header() {
                check_columns(path, &column_names(&header), only)?;
            }
            Err(read_err(path, e))
        }
    }
}

/// polars renames a repeated CSV header `X` to `X_duplicated_0`, … and reads it as another
/// column, which training would then use as a feature: refuse the file instead.
pub(super) fn check_unique_header(path: &Path, names: &[String]) -> Result<(), IoError> {
    for n in names {
        if let Some((base, k)) = n.rsplit_once("_duplicated_") {
            if k.parse::<usize>().is_ok() && names.iter().any(|m| m == base) {
                return Err(IoError::DuplicateColumn {
                    path: path.to_path_buf(),
                    column: base.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Read a Parquet file, checking the requested columns against its schema first.
fn read_parquet(path: &Path, only: Option<&[String]>) -> Result<DataFrame, IoError> {
    let open = || {
        std::fs::File::open(path).map_err(|source| IoError::Open {
            path: path.to_path_buf(),
            source,
        })
    };
    let schema_df = ParquetReader::new(open()?)
        .with_slice(Some((0, 0)))
        .finish()
        .map_err(|e| read_err(path, e))?;
    check_columns(path, &column_names(&schema_df), only)?;
    ParquetReader::new(open()?)
        .with_columns(only.map(|c| c.to_vec()))
        .finish()
        .map_err(|e| read_err(path, e))
}

/// The column names of a frame, as owned strings.
pub(super) fn column_names(df: &DataFrame) -> Vec<String> {
    df.get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect()
}

pub(super) fn check_columns(
    path: &Path,
    names: &[String],
    only: Option<&[String]>,
) -> Result<(), IoError> {
    if let Some(cols) = only {
        let missing: Vec<String> = cols
            .iter()
            .filter(|c| !names.contains(c))
            .map(|c| format!("'{c}'"))
            .collect();
        if !missing.is_empty() {
            return Err(IoError::MissingColumn {
                path: path.to_path_buf(),
                missing: missing.join(", "),
                // a header line of one huge field (a file that is not this CSV) is not echoed whole
                available: names
                    .iter()
                    .map(|n| crate::util::excerpt(n))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(())
}

/// Convert polars columns on two threads (column order kept); each polars column is freed once
/// converted, which keeps the peak memory low.
pub(super) fn convert_columns(path: &Path, cols: Vec<Column>) -> Result<Vec<RawColumn>, IoError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 2);
    let mut groups: Vec<Vec<(usize, Column)>> = (0..threads).map(|_| Vec::new()).collect();
    let n = cols.len();
    for (i, c) in cols.into_iter().enumerate() {
        groups[i % threads].push((i, c));
    }
    let convert = |g: Vec<(usize, Column)>| -> Result<Vec<(usize, RawColumn)>, IoError> {
        g.into_iter()
            .map(|(i, col)| {
                Ok((
                    i,
                    RawColumn {
                        name: col.name().to_string(),
                        data: convert_column(path, &col)?,
                    },
                ))
            })
            .collect()
    };
    let parts: Vec<Result<Vec<(usize, RawColumn)>, IoError>> = std::thread::scope(|s| {
        let handles: Vec<_> = groups
            .into_iter()
            .map(|g| s.spawn(move || convert(g)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("conversion thread does not panic"))
            .collect()
    });
    let mut out: Vec<Option<RawColumn>> = (0..n).map(|_| None).collect();
    for p in parts {
        for (i, c) in p? {
            out[i] = Some(c);
        }
    }
    Ok(out
        .into_iter()
        .map(|c| c.expect("every column converted"))
        .collect())
}

fn convert_column(path: &Path, col: &Column) -> Result<RawData, IoError> {
    let dtype = col.dtype();
    if dtype.is_primitive_numeric() || matches!(dtype, DataType::Boolean) {
        let c = col
            .cast(&DataType::Float64)
            .map_err(|e| read_err(path, e))?;
        let ca = c.f64().map_err(|e| read_err(path, e))?;
        if ca.null_count() == 0 {
            let values: Vec<f64> = match ca.cont_slice() {
                Ok(s) => s.to_vec(),
                Err(_) => ca.into_no_null_iter().collect(),
            };
            return Ok(RawData::Num(NumColumn {
                values,
                valid: None,
            }));
        }
        return Ok(RawData::Num(ca.iter().collect()));
    }
    let c = if matches!(dtype, DataType::String) {
        col.clone()
    } else {
        col.cast(&DataType::String).map_err(|e| read_err(path, e))?
    };
    let ca = c.str().map_err(|e| read_err(path, e))?;
    Ok(RawData::Text(ca.iter().collect()))
}
