//! Tabular file I/O through polars: CSV (optionally gzip-compressed) and Parquet, chosen by extension.
//!
//! Everything is read into a [`RawTable`] of text or numeric columns; type inference and validation
//! happen in [`crate::ingest`], where errors can name the row and the value. The column types are in
//! `columns`, whole-file reading in `read`, streaming a large CSV in bounded chunks in `chunks`, and
//! writing outputs and reject tables in `write`.

mod chunks;
mod columns;
mod read;
mod write;

pub use chunks::{for_each_csv_chunk, RecordCap, DEFAULT_MAX_RECORD_BYTES};
pub use columns::{NumColumn, RawColumn, RawData, RawTable, RawValue, TextColumn};
pub use read::read_table;
pub use write::{reject_table, write_table, OutData};

use std::path::{Path, PathBuf};

/// Errors of the file layer.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The extension is not one we read or write.
    #[error("{path}: unsupported file type (expected .csv, .csv.gz, .tsv or .parquet)")]
    UnsupportedFormat {
        /// The offending path.
        path: PathBuf,
    },
    /// The file does not exist or cannot be opened.
    #[error("{path}: cannot open: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// polars could not parse the file.
    #[error("{path}: cannot read: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What polars said.
        message: String,
    },
    /// A record of a streamed CSV did not end within the largest record the reader buffers
    /// (an unterminated quote or a line that never ends).
    #[error("{path}: line {line}: {problem} ({rule}); the record starts '{start}'")]
    RecordTooLong {
        /// The file.
        path: PathBuf,
        /// 1-based line of the file where the record starts.
        line: u64,
        /// What is probably wrong and the size passed.
        problem: String,
        /// What set the largest record size.
        rule: String,
        /// The record's first characters ([`crate::util::excerpt`]).
        start: String,
    },
    /// Requested columns are absent.
    #[error("{path}: no column named {missing}; available columns: {available}")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The missing column(s).
        missing: String,
        /// All columns of the file.
        available: String,
    },
    /// Two columns share a header name.
    #[error("{path}: the header names column '{column}' more than once; rename one of them")]
    DuplicateColumn {
        /// The file.
        path: PathBuf,
        /// The repeated name.
        column: String,
    },
    /// The output would overwrite an input.
    #[error("{path}: refusing to write the output over the input file; choose another --output")]
    OutputIsInput {
        /// The file.
        path: PathBuf,
    },
    /// Writing the output failed.
    #[error("{path}: cannot write: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// Refuse an output path that names the input file (also through another spelling or a link):
/// the atomic write would replace the data being scored.
pub fn check_output_is_not_input(input: &Path, output: &Path) -> Result<(), IoError> {
    let same = match (std::fs::canonicalize(input), std::fs::canonicalize(output)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Err(IoError::OutputIsInput {
            path: output.to_path_buf(),
        });
    }
    Ok(())
}

impl IoError {
    /// Process exit code: an unreadable or unwritable table is a problem with the files given (2).
    pub fn exit_code(&self) -> i32 {
        2
    }
}

/// File formats we read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated text (gzip allowed for reading).
    Csv,
    /// Tab-separated text.
    Tsv,
    /// Apache Parquet.
    Parquet,
}

impl Format {
    /// Choose the format from a path's extension.
    pub fn from_path(path: &Path) -> Result<Format, IoError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        if name.ends_with(".csv") {
            Ok(Format::Csv)
        } else if name.ends_with(".tsv") {
            Ok(Format::Tsv)
        } else if name.ends_with(".parquet") || name.ends_with(".pq") {
            Ok(Format::Parquet)
        } else {
            Err(IoError::UnsupportedFormat {
                path: path.to_path_buf(),
            })
        }
    }
}
