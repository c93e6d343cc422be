//! Out-of-core aggregation: a CSV / TSV log read in chunks of whole records, each chunk parsed and
//! folded into the same per-customer totals as [`super::aggregate`].

use super::aggregate::{Folder, LogColumns, ParsedRows, Period};
use super::TransactionSpec;
use crate::ingest::{CustomerData, IngestError};
use crate::io::RawTable;

/// Out-of-core options of [`crate::ingest::stream_transaction_features`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamOptions {
    /// Bytes of the file read per chunk.
    pub chunk_bytes: usize,
    /// Stop with an error when the customers and purchases held would pass this many bytes.
    pub memory_limit: Option<u64>,
}

impl StreamOptions {
    /// The largest record read: a quarter of the memory limit — the reader holds the record,
    /// the parser a copy and its columns, each about the record's size — or
    /// [`crate::io::DEFAULT_MAX_RECORD_BYTES`] (64 MiB) without a limit. A record passing it (an
    /// unterminated quote swallowing the rest of the file, a line that never ends) stops the
    /// read with an error naming the line where it starts.
    pub fn record_cap(&self) -> crate::io::RecordCap {
        match self.memory_limit {
            Some(limit) => crate::io::RecordCap {
                bytes: usize::try_from(limit / 4).unwrap_or(usize::MAX),
                rule: format!(
                    "the largest record read is a quarter of --memory-limit {}",
                    crate::util::fmt_size(limit)
                ),
            },
            None => crate::io::RecordCap {
                bytes: crate::io::DEFAULT_MAX_RECORD_BYTES,
                rule: format!(
                    "the largest record read without --memory-limit is {}",
                    crate::util::fmt_size(crate::io::DEFAULT_MAX_RECORD_BYTES as u64)
                ),
            },
        }
    }
}

/// Build the features of a CSV / TSV log (plain or gzip) read chunk by chunk: memory holds one
/// chunk of rows plus one accumulator per customer and one key per purchase. Without an explicit
/// cutoff the file is read twice (the default cutoff depends on the last event).
pub(super) fn stream(
    path: &std::path::Path,
    spec: &TransactionSpec,
    opts: StreamOptions,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<CustomerData, IngestError> {
    spec.validate()?;
    let only = spec.columns();
    let cap = opts.record_cap();
    let explicit_cutoff = spec.explicit_cutoff()?;
    let last_event = match explicit_cutoff {
        Some(_) => 0,
        None => {
            let mut last: Option<i64> = None;
            crate::io::for_each_csv_chunk(
                path,
                &only,
                opts.chunk_bytes,
                &cap,
                |done, total| progress("finding the last event", done, total),
                |raw, first| -> Result<(), IngestError> {
                    let cols = LogColumns::resolve(&raw, spec)?;
                    let rows = parse_chunk(&raw, spec, &cols, first)?;
                    if rows.no_id < raw.nrows {
                        let e = rows.last_event();
                        last = Some(last.map_or(e, |l| l.max(e)));
                    }
                    Ok(())
                },
            )?;
            last.unwrap_or(0)
        }
    };
    let period = Period::choose(spec, explicit_cutoff, last_event);
    let mut folder = Folder::new(spec, period);
    let rows_read = crate::io::for_each_csv_chunk(
        path,
        &only,
        opts.chunk_bytes,
        &cap,
        |done, total| progress("aggregating", done, total),
        |raw, first| -> Result<(), IngestError> {
            let cols = LogColumns::resolve(&raw, spec)?;
            let rows = parse_chunk(&raw, spec, &cols, first)?;
            folder
                .fold(&raw, spec, &cols, &rows)
                .map_err(|e| shift(e, first))?;
            if let Some(limit) = opts.memory_limit {
                let need = folder.bytes() + 4 * opts.chunk_bytes as u64;
                if need > limit {
                    return Err(IngestError::Config(format!(
                        "{}: after {} rows the log holds {} customers and {} purchases, about {} MB with the read buffers, over --memory-limit {} MB; raise the limit",
                        path.display(),
                        first + raw.nrows,
                        folder.customers(),
                        folder.keys,
                        need >> 20,
                        limit >> 20
                    )));
                }
            }
            Ok(())
        },
    )?;
    folder.finish(path.to_path_buf(), rows_read)
}

/// Ids and timestamps of a chunk whose first row is data row `first` of the file (errors name
/// the file's row).
fn parse_chunk<'a>(
    raw: &'a RawTable,
    spec: &TransactionSpec,
    cols: &LogColumns<'a>,
    first: usize,
) -> Result<ParsedRows<'a>, IngestError> {
    ParsedRows::parse(raw, spec, cols).map_err(|e| shift(e, first))
}

/// A row error of a chunk, renumbered to the file's data rows.
fn shift(e: IngestError, first: usize) -> IngestError {
    match e {
        IngestError::BadValue {
            path,
            row,
            column,
            expected,
            value,
        } => IngestError::BadValue {
            path,
            row: row + first,
            column,
            expected,
            value,
        },
        IngestError::MissingValue {
            path,
            row,
            column,
            what,
        } => IngestError::MissingValue {
            path,
            row: row + first,
            column,
            what,
        },
        other => other,
    }
}
