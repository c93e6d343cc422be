//! `churn-score --store`: every scored row with an id goes to the prediction log; the batch waits
//! for the writer instead of dropping records, and fails when a record could not be written.

use super::{
    IdKey, PredictionLog, PredictionRecord, RecordContext, Source, Store, StoreError, StoreUrl,
};
use crate::io::RawTable;
use crate::scoring::{Scored, Scorer};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

/// A batch that wrote at least this many records refreshes the planner's statistics.
const ANALYZE_AFTER: u64 = 10_000;

/// The store and writer of one batch run.
pub struct BatchLog {
    store: Store,
    log: PredictionLog,
    run_id: String,
    started: i64,
    /// Rows whose id breaks [`super::check_id`] (scored, not stored): how many, and the first
    /// (0-based row) with why.
    refused: Mutex<(u64, Option<(usize, super::TextError)>)>,
}

impl BatchLog {
    /// Open the store (`None` for `--store none`).
    pub fn open(url: &StoreUrl, ids: IdKey) -> Result<Option<BatchLog>, StoreError> {
        let Some(store) = Store::open(url, ids)? else {
            return Ok(None);
        };
        let log = store.prediction_log(2 * super::BULK_BATCH, super::BULK_BATCH);
        Ok(Some(BatchLog {
            store,
            log,
            run_id: super::new_id(),
            started: crate::time::now_ms(),
            refused: Mutex::new((0, None)),
        }))
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The per-row observer for [`crate::scoring::score_columns_observed`]: records row `r`
    /// (when it has an id) with its raw cells as the input.
    pub fn observer<'a>(
        &'a self,
        scorer: &'a Scorer,
        table: &'a RawTable,
    ) -> impl Fn(usize, &Scored<'_>) + Sync + 'a {
        let ctx = RecordContext {
            request_id: self.run_id.clone(),
            model: &scorer.bundle.name,
            model_version: &scorer.version,
            scored_at: self.started,
            source: Source::Batch,
            ids: self.store.ids(),
            id_field: scorer.bundle.id_column.as_deref(),
        };
        let id_col = ctx.id_field.and_then(|c| table.index_of(c));
        move |r, s| {
            if let Some(id) = id_col.and_then(|i| table.columns[i].data.get(r).text()) {
                if let Err(e) = super::check_id(&id) {
                    let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
                    refused.0 += 1;
                    if refused.1.as_ref().is_none_or(|(row, _)| r < *row) {
                        refused.1 = Some((r, e));
                    }
                    return;
                }
                let input = super::row_json(table, r);
                self.log
                    .log_blocking(PredictionRecord::new(&ctx, &id, input, s));
            }
        }
    }

    /// Rows scored but not stored because their id breaks the id rule: how many, and the
    /// first (0-based row, why).
    pub fn refused_ids(&self) -> (u64, Option<(usize, super::TextError)>) {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Wait until every record is written; an error when any could not be.
    pub fn finish(&self) -> Result<u64, StoreError> {
        self.store
            .block_on(self.log.flush(Duration::from_secs(3600)));
        let s = self.log.stats();
        let failed = s.failed.load(Ordering::Relaxed);
        if failed > 0 {
            let why = self.log.health().last_error();
            return Err(StoreError::Runtime(format!(
                "{}: {failed} records could not be written: {}",
                self.store.url(),
                why.unwrap_or_default()
            )));
        }
        let written = s.written.load(Ordering::Relaxed);
        if written >= ANALYZE_AFTER {
            self.store.block_on(self.store.analyze())?;
        }
        Ok(written)
    }
}
