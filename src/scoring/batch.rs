//! Batch scoring of a table (`churn-score`): bind the model's inputs to the table's columns,
//! then score chunks of rows in parallel.

use super::{Detail, ScoreError, Scored, Scorer};
use crate::features::Warning;
use crate::io::RawTable;
use crate::model::parallel_map;

impl Scorer {
    /// Map the model's inputs to the columns of a batch table.
    pub fn bind(&self, table: &RawTable) -> Result<Vec<usize>, ScoreError> {
        let mut idx = Vec::new();
        let mut missing = Vec::new();
        for name in self.input_names() {
            match table.index_of(name) {
                Some(i) => idx.push(i),
                None => missing.push(format!("'{name}'")),
            }
        }
        if !missing.is_empty() {
            return Err(ScoreError::MissingColumns {
                path: table.path.display().to_string(),
                missing: missing.join(", "),
                available: table.column_list(),
            });
        }
        Ok(idx)
    }

    /// Score every row of a table in chunks of `chunk` rows over `threads` threads. Each chunk
    /// gets a collector from `init(rows_in_chunk)`, and `keep(collector, row, result)` stores what
    /// the caller needs from each row's result on the worker thread, so full results never pile
    /// up. Collectors come back in input order. Errors carry the 1-based row number.
    #[allow(clippy::too_many_arguments)]
    pub fn score_table<'s, C: Send>(
        &'s self,
        table: &RawTable,
        threads: usize,
        chunk: usize,
        detail: Detail,
        init: impl Fn(usize) -> C + Sync,
        keep: impl Fn(&mut C, usize, Result<Scored<'s>, ScoreError>) + Sync,
    ) -> Result<Vec<C>, ScoreError> {
        let bind = self.bind(table)?;
        let id_col = self
            .bundle
            .id_column
            .as_deref()
            .and_then(|c| table.index_of(c));
        let chunk = chunk.max(1);
        let nchunks = table.nrows.div_ceil(chunk);
        let path = table.path.display().to_string();
        let width = self.bundle.encoder.width();
        let parts = parallel_map(
            nchunks,
            threads,
            |c| {
                let lo = c * chunk;
                let hi = (lo + chunk).min(table.nrows);
                let mut out = init(hi - lo);
                // encode the whole chunk, predict it in one go (boosted models walk each tree
                // for a block of rows), then finish every row
                let mut rows = vec![0.0; (hi - lo) * width];
                let encoded: Vec<Result<Vec<Warning>, ScoreError>> = (lo..hi)
                    .zip(rows.chunks_exact_mut(width.max(1)))
                    .map(|(r, row)| {
                        let mut warnings = Vec::new();
                        self.encode_into(
                            |i| Some(table.columns[bind[i]].data.get(r)),
                            row,
                            &mut warnings,
                        )
                        .map(|()| warnings)
                        .map_err(|e| ScoreError::BadRow {
                            path: path.clone(),
                            row: r + 1,
                            error: Box::new(e),
                        })
                    })
                    .collect();
                let (mut margins, mut predictions) = (Vec::new(), Vec::new());
                self.bundle
                    .model
                    .predict_rows(&rows, width, &mut margins, &mut predictions);
                for (i, res) in encoded.into_iter().enumerate() {
                    let r = lo + i;
                    // the id only drives the control group, i.e. the advice
                    let id = id_col
                        .filter(|_| detail.advice)
                        .and_then(|c| table.columns[c].data.get(r).text());
                    let row = &rows[i * width..(i + 1) * width];
                    let res = res.map(|warnings| {
                        self.score_predicted(row, predictions[i], warnings, id.as_deref(), detail)
                    });
                    keep(&mut out, r, res);
                }
                out
            },
            &|| {},
        );
        Ok(parts)
    }
}
