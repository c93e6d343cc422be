//! Tabular file I/O through polars: CSV (optionally gzip-compressed) and Parquet, chosen by extension.
//!
//! Everything is read into a [`RawTable`] of text or numeric columns; type inference and validation
//! happen in [`crate::ingest`], where errors can name the row and the value.

use polars::prelude::*;
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
    values: Vec<f64>,
    valid: Option<Vec<bool>>,
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

fn read_err(path: &Path, e: impl std::fmt::Display) -> IoError {
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
fn check_unique_header(path: &Path, names: &[String]) -> Result<(), IoError> {
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
fn column_names(df: &DataFrame) -> Vec<String> {
    df.get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn check_columns(path: &Path, names: &[String], only: Option<&[String]>) -> Result<(), IoError> {
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
                available: names.join(", "),
            });
        }
    }
    Ok(())
}

/// Convert polars columns on two threads (column order kept); each polars column is freed once
/// converted, which keeps the peak memory low.
fn convert_columns(path: &Path, cols: Vec<Column>) -> Result<Vec<RawColumn>, IoError> {
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

/// A reader that counts the bytes read through it (progress over a compressed file).
struct Counting<R> {
    inner: R,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// End (exclusive) of the last complete CSV record in `buf`: just after the last newline that is
/// outside quotes, where `quoted` is the quote state at the start of `buf`. Returns the end and
/// the quote state there.
fn last_record_end(buf: &[u8], mut quoted: bool) -> (Option<usize>, bool) {
    let mut end = None;
    let mut state_at_end = quoted;
    for (i, &b) in buf.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => {
                end = Some(i + 1);
                state_at_end = quoted;
            }
            _ => {}
        }
    }
    (end, state_at_end)
}

/// Read a CSV / TSV file (plain or `.gz`) in chunks of about `chunk_bytes`, each as a
/// [`RawTable`] of text columns (only the columns `only`), calling `f(table, first_row)` with the
/// 0-based data row index of the chunk's first row. Memory holds one chunk at a time, so files
/// larger than memory can be folded. `progress(bytes_read, total_bytes)` is called per chunk
/// (bytes of the file on disk, compressed or not).
// the chunk loop: read, cut outside quotes, parse, hand on, carry the rest; its state is one
// buffer and a few positions, clearer in one place
#[allow(clippy::too_many_lines)]
pub fn for_each_csv_chunk<E: From<IoError>>(
    path: &Path,
    only: &[String],
    chunk_bytes: usize,
    mut progress: impl FnMut(u64, u64),
    mut f: impl FnMut(RawTable, usize) -> Result<(), E>,
) -> Result<usize, E> {
    use std::io::Read;
    let name = path.to_string_lossy().to_lowercase();
    let sep = if name.ends_with(".tsv") || name.ends_with(".tsv.gz") {
        b'\t'
    } else {
        b','
    };
    let file = std::fs::File::open(path).map_err(|source| IoError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counting = Counting {
        inner: file,
        read: counter.clone(),
    };
    let mut reader: Box<dyn Read> = if name.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            counting,
        )))
    } else {
        Box::new(counting)
    };
    let io_err = |e: std::io::Error| IoError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    // the header line
    let mut buf: Vec<u8> = Vec::with_capacity(chunk_bytes + 1024);
    let mut header: Option<Vec<u8>> = None;
    let mut quoted = false;
    let mut rows_done = 0usize;
    let mut eof = false;
    while !eof {
        // fill the buffer to chunk_bytes
        // a record longer than what is buffered: read as much again
        let start = buf.len();
        let target = if start >= chunk_bytes {
            start * 2
        } else {
            chunk_bytes
        };
        buf.resize(target, 0);
        let mut filled = start;
        while filled < buf.len() {
            let n = reader.read(&mut buf[filled..]).map_err(io_err)?;
            if n == 0 {
                eof = true;
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        if header.is_none() {
            let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
                if eof {
                    return Err(IoError::Read {
                        path: path.to_path_buf(),
                        message: "no header line".into(),
                    }
                    .into());
                }
                continue;
            };
            let line = &buf[..=nl];
            let names: Vec<String> = String::from_utf8_lossy(line)
                .trim_end_matches(['\r', '\n'])
                .split(sep as char)
                .map(|n| n.trim_matches('"').to_string())
                .collect();
            check_columns(path, &names, Some(only))?;
            header = Some(line.to_vec());
            buf.drain(..=nl);
        }
        let head = header.as_deref().expect("header read");
        // the records complete in this buffer; at the end of the file, everything
        let (end, state) = if eof {
            (Some(buf.len()), false)
        } else {
            last_record_end(&buf, quoted)
        };
        let Some(end) = end.filter(|&e| e > 0) else {
            if eof {
                break;
            }
            // one record longer than the chunk: read on
            continue;
        };
        let mut chunk = Vec::with_capacity(head.len() + end);
        chunk.extend_from_slice(head);
        chunk.extend_from_slice(&buf[..end]);
        buf.drain(..end);
        quoted = state;
        let df = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .with_columns(Some(
                only.iter()
                    .map(|c| PlSmallStr::from(c.as_str()))
                    .collect::<Vec<_>>()
                    .into(),
            ))
            .map_parse_options(|o| {
                o.with_separator(sep)
                    .with_missing_is_null(true)
                    .with_truncate_ragged_lines(false)
            })
            .into_reader_with_file_handle(std::io::Cursor::new(chunk))
            .finish()
            .map_err(|e| {
                // polars counts rows within the chunk: say where the chunk starts
                IoError::Read {
                    path: path.to_path_buf(),
                    message: format!("in the rows after data row {rows_done}: {e}"),
                }
            })?;
        let nrows = df.height();
        if rows_done == 0 {
            check_unique_header(path, &column_names(&df))?;
        }
        let columns = convert_columns(path, df.into_columns())?;
        f(
            RawTable {
                path: path.to_path_buf(),
                columns,
                nrows,
            },
            rows_done,
        )?;
        rows_done += nrows;
        progress(counter.load(std::sync::atomic::Ordering::Relaxed), total);
    }
    Ok(rows_done)
}
