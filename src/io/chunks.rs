//! Streaming a CSV that does not fit in memory in chunks of whole records.

use super::read::{check_columns, check_unique_header, column_names, convert_columns};
use super::*;
use polars::prelude::*;
use std::path::Path;

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
