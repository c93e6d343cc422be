//! Batch output: which columns `churn-score` writes ([`OutputColumn`]), the per-chunk cell
//! collectors filled on the worker threads, and the reject table.

use super::{Detail, ScoreError, Scored, Scorer};
use crate::io::{OutData, RawTable};
use crate::playbook::{RiskBand, RiskBands, Treatment};
use crate::segment::{LifecycleStage, RfmClass};
use std::borrow::Cow;

/// One column of the batch output, in the order [`OutputColumn::ALL`] lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputColumn {
    /// The model's id column (written under its own name).
    Id,
    /// Calibrated churn probability.
    ChurnProbability,
    /// Lower end of the 95% interval.
    ProbabilityLow,
    /// Upper end of the 95% interval.
    ProbabilityHigh,
    /// Training customers in the leaf.
    LeafSupport,
    /// Probability at or above the model's threshold.
    PredictedChurn,
    /// Segment id.
    SegmentId,
    /// Segment name.
    Segment,
    /// RFM class.
    RfmClass,
    /// Lifecycle stage.
    LifecycleStage,
    /// Playbook risk band.
    RiskBand,
    /// Best-ranked action.
    TopAction,
    /// Expected net value of the top action.
    ExpectedValue,
    /// Treatment or control group.
    Treatment,
    /// The contact decision (treatment group and a top action worth its cost).
    Contact,
    /// Warnings, `; `-separated.
    Warnings,
}

impl OutputColumn {
    /// Every column in output order.
    pub const ALL: [OutputColumn; 16] = [
        OutputColumn::Id,
        OutputColumn::ChurnProbability,
        OutputColumn::ProbabilityLow,
        OutputColumn::ProbabilityHigh,
        OutputColumn::LeafSupport,
        OutputColumn::PredictedChurn,
        OutputColumn::SegmentId,
        OutputColumn::Segment,
        OutputColumn::RfmClass,
        OutputColumn::LifecycleStage,
        OutputColumn::RiskBand,
        OutputColumn::TopAction,
        OutputColumn::ExpectedValue,
        OutputColumn::Treatment,
        OutputColumn::Contact,
        OutputColumn::Warnings,
    ];

    /// The column's header (`id` stands for the model's id column).
    pub fn name(self) -> &'static str {
        use OutputColumn::*;
        match self {
            Id => "id",
            ChurnProbability => "churn_probability",
            ProbabilityLow => "probability_low",
            ProbabilityHigh => "probability_high",
            LeafSupport => "leaf_support",
            PredictedChurn => "predicted_churn",
            SegmentId => "segment_id",
            Segment => "segment",
            RfmClass => "rfm_class",
            LifecycleStage => "lifecycle_stage",
            RiskBand => "risk_band",
            TopAction => "top_action",
            ExpectedValue => "expected_value",
            Treatment => "treatment",
            Contact => "contact",
            Warnings => "warnings",
        }
    }

    fn needs_segments(self) -> bool {
        use OutputColumn::*;
        matches!(self, SegmentId | Segment | RfmClass | LifecycleStage)
    }

    /// Needs the playbook's advice: recommendations, and the reasons and levers behind them
    /// (the risk band does not: it is a function of the probability).
    fn needs_advice(self) -> bool {
        use OutputColumn::*;
        matches!(self, TopAction | ExpectedValue | Treatment | Contact)
    }

    /// Can this model (and an input with or without the id column) produce the column?
    fn available(self, scorer: &Scorer, has_id: bool) -> bool {
        let b = &scorer.bundle;
        let seg = b.segments.as_ref();
        match self {
            OutputColumn::Id => has_id,
            OutputColumn::SegmentId | OutputColumn::Segment => seg.is_some(),
            OutputColumn::RfmClass => seg.is_some_and(|s| s.rfm.is_some()),
            OutputColumn::LifecycleStage => seg.is_some_and(|s| s.lifecycle.is_some()),
            OutputColumn::RiskBand => b.playbook.is_some(),
            c if c.needs_advice() => b.playbook.is_some(),
            _ => true,
        }
    }
}

/// `--columns` names a column this model and input cannot write.
#[derive(Debug, thiserror::Error)]
#[error("--columns: {problem}")]
pub struct ColumnError {
    problem: String,
}

impl ColumnError {
    /// Process exit code: a usage error.
    pub fn exit_code(&self) -> i32 {
        2
    }
}

/// The columns this model can produce for an input with (or without) its id column, in order.
pub fn available_columns(scorer: &Scorer, has_id: bool) -> Vec<OutputColumn> {
    OutputColumn::ALL
        .into_iter()
        .filter(|c| c.available(scorer, has_id))
        .collect()
}

/// The columns to write: all available ones, or the comma-separated `wanted` selection in its
/// order (the id column may be named by its own name or `id`).
pub fn select_columns(
    scorer: &Scorer,
    has_id: bool,
    wanted: Option<&str>,
) -> Result<Vec<OutputColumn>, ColumnError> {
    let avail = available_columns(scorer, has_id);
    let Some(wanted) = wanted else {
        return Ok(avail);
    };
    let id_name = scorer.bundle.id_column.as_deref();
    let header = |c: OutputColumn| match c {
        OutputColumn::Id => id_name.unwrap_or("id"),
        other => other.name(),
    };
    let mut out = Vec::new();
    for w in wanted.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let key = if Some(w) == id_name { "id" } else { w };
        match avail.iter().find(|a| a.name() == key) {
            Some(a) if !out.contains(a) => out.push(*a),
            Some(_) => {}
            None => {
                let names: Vec<&str> = avail.iter().map(|a| header(*a)).collect();
                return Err(ColumnError {
                    problem: format!(
                        "unknown or unavailable column '{w}'; this model and input can write: {}",
                        names.join(", ")
                    ),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(ColumnError {
            problem: "no column named".into(),
        });
    }
    Ok(out)
}

/// One chunk's output cells, column by column (segment / advice columns stay empty when not
/// computed); text borrows from the input table and the bundle.
#[derive(Default)]
pub struct Cells<'a> {
    id: Vec<Option<Cow<'a, str>>>,
    p: Vec<f64>,
    low: Vec<f64>,
    high: Vec<f64>,
    support: Vec<i64>,
    churn: Vec<bool>,
    segment_id: Vec<i64>,
    segment: Vec<&'a str>,
    rfm: Vec<Option<RfmClass>>,
    lifecycle: Vec<Option<LifecycleStage>>,
    band: Vec<RiskBand>,
    action: Vec<Option<&'a str>>,
    ev: Vec<Option<f64>>,
    treatment: Vec<Treatment>,
    contact: Vec<bool>,
    warnings: Vec<Option<String>>,
    bad: Vec<(usize, ScoreError)>,
}

impl<'a> Cells<'a> {
    fn with_capacity(n: usize) -> Self {
        Cells {
            p: Vec::with_capacity(n),
            low: Vec::with_capacity(n),
            high: Vec::with_capacity(n),
            support: Vec::with_capacity(n),
            churn: Vec::with_capacity(n),
            warnings: Vec::with_capacity(n),
            ..Default::default()
        }
    }

    /// Keep row `r`'s result: its output cells, or the error.
    fn keep(
        &mut self,
        id: Option<Option<Cow<'a, str>>>,
        r: usize,
        res: Result<Scored<'a>, ScoreError>,
        bands: Option<&RiskBands>,
    ) {
        let s = match res {
            Ok(s) => s,
            Err(e) => {
                self.bad.push((r, e));
                return;
            }
        };
        if let Some(id) = id {
            self.id.push(id);
        }
        let p = &s.prediction;
        self.p.push(p.probability);
        self.low.push(p.low);
        self.high.push(p.high);
        self.support.push(p.support as i64);
        self.churn.push(p.churn);
        if let Some(a) = &s.segment {
            self.segment_id.push(a.segment_id as i64);
            self.segment.push(a.segment);
            self.rfm.push(a.rfm_class);
            self.lifecycle.push(a.lifecycle_stage);
        }
        if let Some(bands) = bands {
            self.band.push(bands.band(p.probability));
        }
        if let Some(a) = &s.advice {
            let top = a.recommendations.first();
            self.action.push(top.map(|r| r.action));
            self.ev
                .push(top.map(|r| crate::util::cents(r.expected_value)));
            self.treatment.push(a.treatment);
            self.contact.push(a.contact);
        }
        self.warnings.push((!s.warnings.is_empty()).then(|| {
            s.warnings
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        }));
    }
}

/// A scored table: the chunks' cells in row order and the rows that failed.
pub struct BatchOutput<'a> {
    chunks: Vec<Cells<'a>>,
    /// Rows that failed (0-based row, error), in row order.
    pub bad: Vec<(usize, ScoreError)>,
}

/// Score `table` computing only what `columns` need, on `threads` threads in chunks of
/// `chunk_size` rows.
pub fn score_columns<'a>(
    scorer: &'a Scorer,
    table: &'a RawTable,
    columns: &[OutputColumn],
    threads: usize,
    chunk_size: usize,
) -> Result<BatchOutput<'a>, ScoreError> {
    score_columns_observed(
        scorer,
        table,
        columns,
        threads,
        chunk_size,
        None::<fn(usize, &Scored<'_>)>,
    )
}

/// [`score_columns`], also calling `observe(row, result)` for every scored row on the worker
/// threads (the prediction log of `churn-score --store`); with an observer everything the model
/// can tell is computed.
pub fn score_columns_observed<'a>(
    scorer: &'a Scorer,
    table: &'a RawTable,
    columns: &[OutputColumn],
    threads: usize,
    chunk_size: usize,
    observe: Option<impl Fn(usize, &Scored<'_>) + Sync>,
) -> Result<BatchOutput<'a>, ScoreError> {
    // exploration draws per customer and day: the day of this run
    let now = crate::time::now_ms();
    let detail = match observe {
        Some(_) => Detail::FULL,
        None => Detail {
            segments: columns.iter().any(|c| c.needs_segments()),
            advice: columns.iter().any(|c| c.needs_advice()),
            day: 0,
        },
    }
    .on(now);
    let id_col = scorer
        .bundle
        .id_column
        .as_deref()
        .and_then(|c| table.index_of(c));
    let want_id = columns.contains(&OutputColumn::Id);
    // the band is a function of the probability: no advice needed for it
    let bands = scorer
        .bundle
        .playbook
        .as_ref()
        .map(|pb| &pb.file.risk_bands)
        .filter(|_| columns.contains(&OutputColumn::RiskBand));
    let mut chunks = scorer.score_table(
        table,
        threads,
        chunk_size,
        detail,
        Cells::with_capacity,
        |c, r, res| {
            let id = want_id.then(|| id_col.and_then(|i| table.columns[i].data.get(r).text()));
            if let (Some(f), Ok(s)) = (&observe, &res) {
                f(r, s);
            }
            c.keep(id, r, res, bands)
        },
    )?;
    let mut bad = Vec::new();
    for c in chunks.iter_mut() {
        bad.append(&mut c.bad);
    }
    Ok(BatchOutput { chunks, bad })
}

/// Concatenate the chunks' cells of one column.
fn cat<'c, T: 'c, U>(
    chunks: &'c [Cells],
    part: impl Fn(&'c Cells) -> &'c [T],
    map: impl Fn(&'c T) -> U,
) -> Vec<U> {
    chunks
        .iter()
        .flat_map(|c| part(c).iter().map(&map))
        .collect()
}

impl BatchOutput<'_> {
    /// Customers scored.
    pub fn scored(&self) -> usize {
        self.chunks.iter().map(|c| c.p.len()).sum()
    }

    /// Customers at or above the model's threshold.
    pub fn flagged(&self) -> usize {
        let count = |c: &Cells| c.churn.iter().filter(|&&b| b).count();
        self.chunks.iter().map(count).sum()
    }

    /// Customers with at least one warning.
    pub fn warned(&self) -> usize {
        let count = |c: &Cells| c.warnings.iter().filter(|w| w.is_some()).count();
        self.chunks.iter().map(count).sum()
    }

    /// The output table: one `(header, cells)` per column, the id under the model's own name.
    pub fn table(&self, scorer: &Scorer, columns: &[OutputColumn]) -> Vec<(String, OutData<'_>)> {
        columns
            .iter()
            .map(|&c| {
                let header = match c {
                    OutputColumn::Id => scorer.bundle.id_column.clone().unwrap_or_default(),
                    other => other.name().to_string(),
                };
                (header, self.column(c))
            })
            .collect()
    }

    fn column(&self, c: OutputColumn) -> OutData<'_> {
        let ch = &self.chunks;
        match c {
            OutputColumn::Id => OutData::Str(cat(ch, |c| &c.id, |v| v.as_deref())),
            OutputColumn::ChurnProbability => OutData::Float(cat(ch, |c| &c.p, |v| Some(*v))),
            OutputColumn::ProbabilityLow => OutData::Float(cat(ch, |c| &c.low, |v| Some(*v))),
            OutputColumn::ProbabilityHigh => OutData::Float(cat(ch, |c| &c.high, |v| Some(*v))),
            OutputColumn::LeafSupport => OutData::Int(cat(ch, |c| &c.support, |v| Some(*v))),
            OutputColumn::PredictedChurn => OutData::Bool(cat(ch, |c| &c.churn, |v| *v)),
            OutputColumn::SegmentId => OutData::Int(cat(ch, |c| &c.segment_id, |v| Some(*v))),
            OutputColumn::Segment => OutData::Str(cat(ch, |c| &c.segment, |v| Some(*v))),
            OutputColumn::RfmClass => {
                OutData::Str(cat(ch, |c| &c.rfm, |v| v.map(RfmClass::as_str)))
            }
            OutputColumn::LifecycleStage => {
                OutData::Str(cat(ch, |c| &c.lifecycle, |v| v.map(LifecycleStage::as_str)))
            }
            OutputColumn::RiskBand => OutData::Str(cat(ch, |c| &c.band, |v| Some(v.as_str()))),
            OutputColumn::TopAction => OutData::Str(cat(ch, |c| &c.action, |v| *v)),
            OutputColumn::ExpectedValue => OutData::Float(cat(ch, |c| &c.ev, |v| *v)),
            OutputColumn::Treatment => {
                OutData::Str(cat(ch, |c| &c.treatment, |v| Some(v.as_str())))
            }
            OutputColumn::Contact => OutData::Bool(cat(ch, |c| &c.contact, |v| *v)),
            OutputColumn::Warnings => OutData::Str(cat(ch, |c| &c.warnings, |v| v.as_deref())),
        }
    }

    /// The reject table: 1-based row, error, then the row's raw cells.
    pub fn rejects<'t>(&self, table: &'t RawTable) -> Vec<(String, OutData<'t>)> {
        let bad: Vec<(usize, String)> = self.bad.iter().map(|(r, e)| (*r, row_error(e))).collect();
        crate::io::reject_table(table, &bad)
    }
}

/// A row's error without the file / row prefix (the reject table has its own row column).
fn row_error(e: &ScoreError) -> String {
    match e {
        ScoreError::BadRow { error, .. } => error.to_string(),
        other => other.to_string(),
    }
}
