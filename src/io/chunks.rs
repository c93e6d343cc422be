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

/// The largest record [`for_each_csv_chunk`] buffers while it looks for the record's end, and
/// what set that size (the error says it). Without a cap one unterminated quote reads the rest of
/// the file into a single record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordCap {
    /// Bytes one record (or the header line) may take at most.
    pub bytes: usize,
    /// What set the size, for the error (e.g. "a quarter of --memory-limit 16 MiB").
    pub rule: String,
}

/// The largest record read when no memory limit sets one: 64 MiB, far beyond any real
/// transaction record, small enough that the reader, the parser's copy and its columns (a few
/// times the record) stay well under a GiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 64 << 20;

/// Where the records of a buffer end, from [`last_record_end`].
struct Scan {
    /// End (exclusive) of the last complete record: just after the last newline outside quotes.
    end: Option<usize>,
    /// The quote state at `end`.
    quoted_at_end: bool,
    /// The quote state at the end of the buffer (inside a quote: an open quoted field).
    quoted_after: bool,
}

/// Scan `buf` for its last complete CSV record, where `quoted` is the quote state at its start.
fn last_record_end(buf: &[u8], mut quoted: bool) -> Scan {
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
    Scan {
        end,
        quoted_at_end: state_at_end,
        quoted_after: quoted,
    }
}

/// The error for a record (starting at line `line`, its first bytes in `record`) that passed
/// `cap` without ending; `quoted`: the buffer ends inside a quoted field.
fn record_too_long(
    path: &Path,
    line: u64,
    record: &[u8],
    quoted: bool,
    cap: &RecordCap,
) -> IoError {
    let head = &record[..record.len().min(4 * crate::util::EXCERPT_CHARS)];
    let problem = if quoted {
        format!(
            "a quote is probably unterminated: the record starting here runs past {} without its closing quote",
            crate::util::fmt_size(cap.bytes as u64)
        )
    } else {
        format!(
            "the line is too long: no line end within {}",
            crate::util::fmt_size(cap.bytes as u64)
        )
    };
    IoError::RecordTooLong {
        path: path.to_path_buf(),
        line,
        problem,
        rule: cap.rule.clone(),
        start: crate::util::excerpt(&String::from_utf8_lossy(head)),
    }
}

/// Read a CSV / TSV file (plain or `.gz`) in chunks of about `chunk_bytes`, each as a
/// [`RawTable`] of text columns (only the columns `only`), calling `f(table, first_row)` with the
/// 0-based data row index of the chunk's first row. Memory holds one chunk at a time, so files
/// larger than memory can be folded. `progress(bytes_read, total_bytes)` is called per chunk
/// (bytes of the file on disk, compressed or not).
///
/// A record (or the header line) longer than `cap.bytes` stops the read with
/// [`IoError::RecordTooLong`], naming the line it starts on, as soon as that many bytes are
/// buffered without its end: the buffer never grows past about `chunk_bytes` plus `cap.bytes`.
// the chunk loop: read, cut outside quotes, parse, hand on, carry the rest; its state is one
// buffer and a few positions, clearer in one place
#[allow(clippy::too_many_lines)]
pub fn for_each_csv_chunk<E: From<IoError>>(
    path: &Path,
    only: &[String],
    chunk_bytes: usize,
    cap: &RecordCap,
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
    let chunk_bytes = chunk_bytes.max(1);
    // the header line
    let mut buf: Vec<u8> = Vec::with_capacity(chunk_bytes + 1024);
    let mut header: Option<Vec<u8>> = None;
    let mut quoted = false;
    let mut rows_done = 0usize;
    let mut eof = false;
    // 1-based line of the file where `buf` starts (always the start of a record)
    let mut line: u64 = 1;
    while !eof {
        // fill the buffer to chunk_bytes
        // a record longer than what is buffered: read as much again, up to one byte past the cap
        // (the buffer then holds one record only, so passing the cap is the record passing it)
        let start = buf.len();
        let target = if start >= chunk_bytes {
            (start * 2).min(cap.bytes + 1).max(start + 1)
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
                if buf.len() > cap.bytes {
                    return Err(record_too_long(path, 1, &buf, false, cap).into());
                }
                continue;
            };
            let head_line = &buf[..=nl];
            let names: Vec<String> = String::from_utf8_lossy(head_line)
                .trim_end_matches(['\r', '\n'])
                .split(sep as char)
                .map(|n| n.trim_matches('"').to_string())
                .collect();
            check_columns(path, &names, Some(only))?;
            header = Some(head_line.to_vec());
            buf.drain(..=nl);
            line = 2;
        }
        let head = header.as_deref().expect("header read");
        // the records complete in this buffer; at the end of the file, everything
        let scan = if eof {
            Scan {
                end: Some(buf.len()),
                quoted_at_end: false,
                quoted_after: false,
            }
        } else {
            last_record_end(&buf, quoted)
        };
        let Some(end) = scan.end.filter(|&e| e > 0) else {
            if eof {
                break;
            }
            if buf.len() > cap.bytes {
                return Err(record_too_long(path, line, &buf, scan.quoted_after, cap).into());
            }
            // one record longer than the chunk: read on
            continue;
        };
        let line_of_chunk = line;
        let mut chunk = Vec::with_capacity(head.len() + end);
        chunk.extend_from_slice(head);
        chunk.extend_from_slice(&buf[..end]);
        line += buf[..end].iter().filter(|&&b| b == b'\n').count() as u64;
        buf.drain(..end);
        quoted = scan.quoted_at_end;
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
                    message: format!(
                        "in the rows after data row {rows_done} (line {}): {}",
                        line_of_chunk,
                        crate::util::excerpt(&e.to_string())
                    ),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Read `text` (a `.csv`) in chunks of `chunk` bytes with records capped at `cap` bytes;
    /// returns the data rows read or the error's text.
    fn read(text: &[u8], chunk: usize, cap: usize) -> Result<usize, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.csv");
        std::fs::write(&path, text).unwrap();
        let cap = RecordCap {
            bytes: cap,
            rule: "test cap".into(),
        };
        for_each_csv_chunk::<IoError>(&path, &["a".into()], chunk, &cap, |_, _| {}, |_, _| Ok(()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn records_within_the_cap_read_across_chunks() {
        // records far longer than a chunk, quoted newlines included, each within the cap
        let field = "x".repeat(300);
        let mut text = String::from("a,b\n");
        for i in 0..50 {
            text.push_str(&format!("{i},\"{field}\n{field}\"\n"));
        }
        assert_eq!(read(text.as_bytes(), 16, 1000), Ok(50));
    }

    #[test]
    fn a_stray_quote_stops_at_the_cap_naming_the_line_it_starts_on() {
        let mut text = String::from("a,b\n");
        for i in 0..100 {
            text.push_str(&format!("{i},ok\n"));
        }
        text.push_str("7,\"oops\n");
        for i in 0..10_000 {
            text.push_str(&format!("{i},ok\n"));
        }
        let e = read(text.as_bytes(), 64, 4096).unwrap_err();
        assert!(
            e.contains("log.csv: line 102: a quote is probably unterminated")
                && e.contains("runs past 4096 bytes")
                && e.contains("(test cap)"),
            "{e}"
        );
        // the record's start, escaped and short
        assert!(e.contains("starts '7,\"oops\\n0,ok\\n1,ok"), "{e}");
        assert!(e.len() < 400, "{e}");
    }

    #[test]
    fn a_line_without_end_stops_at_the_cap() {
        let mut text = b"a,b\n1,ok\n2,".to_vec();
        text.extend(std::iter::repeat_n(b'9', 100_000));
        text.extend(b"\n3,ok\n");
        let e = read(&text, 64, 10_000).unwrap_err();
        assert!(
            e.contains("line 3: the line is too long: no line end within 10000 bytes"),
            "{e}"
        );
        assert!(e.len() < 400, "{e}");
        // the header line too
        let mut text = b"a,".to_vec();
        text.extend(std::iter::repeat_n(b'b', 100_000));
        let e = read(&text, 64, 10_000).unwrap_err();
        assert!(e.contains("line 1: the line is too long"), "{e}");
    }

    #[test]
    fn the_last_record_may_reach_the_cap_but_not_pass_it() {
        // exactly `cap` bytes of record without a newline at the end of the file is read
        let mut text = b"a\n".to_vec();
        text.extend(std::iter::repeat_n(b'1', 1000));
        assert_eq!(read(&text, 16, 1000), Ok(1));
        text.push(b'1');
        assert!(read(&text, 16, 1000).unwrap_err().contains("line 2"));
    }
}
