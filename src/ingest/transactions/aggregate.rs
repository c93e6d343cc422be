//! The aggregation behind [`super::build_transaction_features`]: rows → per-customer totals →
//! feature rows, label and quality report, one named step per function.

use super::{TransactionSpec, TRANSACTION_FEATURES};
use crate::ingest::value::{
    expected_number, is_missing_token, number_in_range, parse_number, parse_timestamp,
    NUMBER_EXPECTED,
};
use crate::ingest::{
    CustomerData, DataMode, DropCount, FeatureColumn, FeatureKind, FeatureValues, IngestError,
    InputRole, LabelBalance, QualityReport,
};
use crate::io::{RawData, RawTable, RawValue};
use crate::time::{civil_from_days, format_day};
use crate::util::FxHashMap;
use std::borrow::Cow;

/// Seconds per day: timestamps are Unix seconds, periods are whole days.
const DAY: i64 = 86_400;

/// Running totals of one customer over the rows before the end of the label horizon.
#[derive(Clone)]
struct Acc {
    first: i64,
    last: i64,
    count: u64,
    total: f64,
    recent: u64,
    previous: u64,
    months: Vec<i32>,
    any_before: bool,
    active_after: bool,
    /// The customer's purchases seen so far (to count each once).
    keys: PurchaseKeys,
}

impl Acc {
    /// A customer with no rows seen yet.
    fn new() -> Acc {
        Acc {
            first: i64::MAX,
            last: i64::MIN,
            count: 0,
            total: 0.0,
            recent: 0,
            previous: 0,
            months: Vec::new(),
            any_before: false,
            active_after: false,
            keys: PurchaseKeys::default(),
        }
    }

    /// Fold in one row at time `t` (before `period.horizon_end`) with amount `amt`;
    /// `new_purchase` is true for the first row of a purchase (order, or timestamp).
    #[inline]
    fn record(&mut self, t: i64, amt: f64, period: &Period, new_purchase: bool) {
        // A purchase (amount >= 0) is activity; a return (amount < 0) only nets into spend.
        let purchase = amt >= 0.0;
        let cutoff = period.cutoff;
        if t < cutoff {
            self.total += amt;
            if !purchase {
                return;
            }
            self.any_before = true;
            self.first = self.first.min(t);
            self.last = self.last.max(t);
            if new_purchase {
                self.count += 1;
                if t >= cutoff - period.window {
                    self.recent += 1;
                } else if t >= cutoff - 2 * period.window {
                    self.previous += 1;
                }
            }
            let (y, m, _) = civil_from_days(t.div_euclid(DAY));
            let month = (y * 12 + m as i64) as i32;
            if self.months.last() != Some(&month) {
                self.months.push(month);
            }
        } else if purchase {
            self.active_after = true;
        }
    }

    /// The feature values at `cutoff`, in [`TRANSACTION_FEATURES`] order.
    fn features(&mut self, cutoff: i64) -> [f64; TRANSACTION_FEATURES.len()] {
        self.months.sort_unstable();
        self.months.dedup();
        [
            (cutoff - self.last) as f64 / DAY as f64,
            self.count as f64,
            self.total,
            self.total / self.count as f64,
            (cutoff - self.first) as f64 / DAY as f64,
            self.recent as f64 / (self.previous.max(1)) as f64,
            self.months.len() as f64,
        ]
    }
}

fn number_at(raw: &RawTable, data: &RawData, row: usize, column: &str) -> Result<f64, IngestError> {
    match data.get(row) {
        // Parquet numbers arrive typed: NaN, inf and 1e308 are refused like their text forms
        RawValue::Number(x) if number_in_range(x) => Ok(x),
        RawValue::Number(x) => Err(IngestError::BadValue {
            path: raw.path.clone(),
            row: row + 1,
            column: column.to_string(),
            expected: NUMBER_EXPECTED.into(),
            value: crate::util::fmt_num(x),
        }),
        RawValue::Text(s) if !is_missing_token(s) => {
            parse_number(s).ok_or_else(|| IngestError::BadValue {
                path: raw.path.clone(),
                row: row + 1,
                column: column.to_string(),
                expected: expected_number(s).into(),
                value: crate::util::excerpt(s),
            })
        }
        _ => Err(IngestError::MissingValue {
            path: raw.path.clone(),
            row: row + 1,
            column: column.to_string(),
            what: "every transaction needs it".into(),
        }),
    }
}

pub(super) fn aggregate(
    raw: &RawTable,
    spec: &TransactionSpec,
) -> Result<CustomerData, IngestError> {
    spec.validate()?;
    let explicit_cutoff = spec.explicit_cutoff()?;
    let cols = LogColumns::resolve(raw, spec)?;
    // Parse timestamps first: the default cutoff depends on the last event.
    let rows = ParsedRows::parse(raw, spec, &cols)?;
    let period = Period::choose(spec, explicit_cutoff, rows.last_event());
    let mut folder = Folder::new(spec, period);
    folder.fold(raw, spec, &cols, &rows)?;
    folder.finish(raw.path.clone(), raw.nrows)
}

/// The per-customer fold behind both readers: [`aggregate`] feeds it one in-memory table,
/// [`stream`] a file chunk by chunk (so a log larger than memory needs memory for its customers
/// and purchases only, not its rows).
pub(super) struct Folder<'s> {
    spec: &'s TransactionSpec,
    period: Period,
    /// Customer id → index into `acc` (first-seen order).
    index: FxHashMap<Box<str>, u32>,
    acc: Vec<Acc>,
    /// Rows without a customer id.
    no_id: usize,
    /// Purchase keys stored (for the memory estimate).
    pub(super) keys: u64,
    /// The latest timestamp of a row with an id (for the period notes).
    last_event: Option<i64>,
}

impl<'s> Folder<'s> {
    /// An empty fold over `period`.
    pub(super) fn new(spec: &'s TransactionSpec, period: Period) -> Folder<'s> {
        Folder {
            spec,
            period,
            index: FxHashMap::default(),
            acc: Vec::new(),
            no_id: 0,
            keys: 0,
            last_event: None,
        }
    }

    /// Fold the rows of `raw` (already parsed into `rows`). Every customer with an id is
    /// registered, even when all its rows fall after the horizon; amounts are read only for rows
    /// before the horizon end.
    pub(super) fn fold(
        &mut self,
        raw: &RawTable,
        spec: &TransactionSpec,
        cols: &LogColumns<'_>,
        rows: &ParsedRows<'_>,
    ) -> Result<(), IngestError> {
        self.no_id += rows.no_id;
        let period = &self.period;
        for row in 0..raw.nrows {
            let Some(id) = rows.ids[row].as_deref() else {
                continue;
            };
            let t = rows.ts[row];
            self.last_event = Some(self.last_event.map_or(t, |l| l.max(t)));
            let ix = match self.index.get(id) {
                Some(&ix) => ix as usize,
                None => {
                    self.index.insert(id.into(), self.acc.len() as u32);
                    self.acc.push(Acc::new());
                    self.acc.len() - 1
                }
            };
            if t >= period.horizon_end {
                continue;
            }
            let amt = amount_at(raw, spec, cols, row)?;
            let a = &mut self.acc[ix];
            let new_purchase = t < period.cutoff && amt >= 0.0 && {
                let key = purchase_key(cols.order, row, t);
                let new = a.keys.insert(key);
                self.keys += new as u64;
                new
            };
            a.record(t, amt, period, new_purchase);
        }
        Ok(())
    }

    /// Customers held so far.
    pub(super) fn customers(&self) -> usize {
        self.acc.len()
    }

    /// Rough bytes held: per customer its id, index entry and accumulator, per purchase a key.
    pub(super) fn bytes(&self) -> u64 {
        self.acc.len() as u64 * 200 + self.keys * 8
    }

    /// The customer table (customers in first-seen order).
    pub(super) fn finish(
        mut self,
        path: std::path::PathBuf,
        rows_read: usize,
    ) -> Result<CustomerData, IngestError> {
        if self.no_id == rows_read {
            return Err(IngestError::Empty {
                path,
                message: "no transactions with a customer id".into(),
            });
        }
        let mut ids: Vec<Option<Box<str>>> = (0..self.acc.len()).map(|_| None).collect();
        for (id, ix) in std::mem::take(&mut self.index) {
            ids[ix as usize] = Some(id);
        }
        let ids: Vec<Box<str>> = ids
            .into_iter()
            .map(|i| i.expect("every index has an id"))
            .collect();
        // an explicit cutoff skips the first pass: the last event is known only now
        self.period.last_event = self.last_event.unwrap_or(0);
        let customers = Customers::collect(ids, self.acc, self.period.cutoff);
        if customers.ids.is_empty() {
            return Err(IngestError::Empty {
                path,
                message: format!(
                    "no customer has an event before the cutoff {}",
                    format_day(self.period.cutoff.div_euclid(DAY))
                ),
            });
        }
        let quality = quality_report(
            &path,
            rows_read,
            self.spec,
            self.no_id,
            &self.period,
            &customers,
        );
        Ok(customers.into_data(path, self.spec, quality))
    }
}

/// A purchase's key within its customer: the order id (hashed), or without one the timestamp;
/// the low bit tells the two apart.
#[inline]
fn purchase_key(order: Option<&RawData>, row: usize, t: i64) -> i64 {
    use std::hash::{Hash, Hasher};
    let id: Option<Cow<str>> = order.and_then(|o| match o.get(row) {
        RawValue::Text(s) if !is_missing_token(s) => Some(Cow::Borrowed(s.trim())),
        RawValue::Number(x) => Some(Cow::Owned(crate::util::fmt_num(x))),
        _ => None,
    });
    match id {
        Some(id) => {
            let mut h = crate::util::FxHasher::default();
            id.hash(&mut h);
            ((h.finish() << 1) | 1) as i64
        }
        None => t << 1,
    }
}

/// One customer's purchase keys: a sorted vector while small, a hash set for heavy buyers.
#[derive(Clone, Default)]
enum PurchaseKeys {
    #[default]
    None,
    Small(Vec<i64>),
    Big(Box<crate::util::FxHashSet<i64>>),
}

impl PurchaseKeys {
    /// Add `key`; true when it was new.
    #[inline]
    fn insert(&mut self, key: i64) -> bool {
        match self {
            PurchaseKeys::None => {
                *self = PurchaseKeys::Small(vec![key]);
                true
            }
            PurchaseKeys::Small(v) => match v.binary_search(&key) {
                Ok(_) => false,
                Err(i) => {
                    if v.len() < 64 {
                        v.insert(i, key);
                    } else {
                        let mut set: crate::util::FxHashSet<i64> = v.drain(..).collect();
                        set.insert(key);
                        *self = PurchaseKeys::Big(Box::new(set));
                    }
                    true
                }
            },
            PurchaseKeys::Big(set) => set.insert(key),
        }
    }
}
/// The log's columns by role.
pub(super) struct LogColumns<'a> {
    cust: &'a RawData,
    time: &'a RawData,
    amount: &'a RawData,
    qty: Option<&'a RawData>,
    order: Option<&'a RawData>,
}

impl<'a> LogColumns<'a> {
    /// Look the configured columns up (customer, timestamp, amount, quantity — first absent wins).
    pub(super) fn resolve(raw: &'a RawTable, spec: &TransactionSpec) -> Result<Self, IngestError> {
        let col = |name: &str, role: InputRole| {
            raw.index_of(name)
                .map(|i| &raw.columns[i].data)
                .ok_or_else(|| IngestError::UnknownColumn {
                    path: raw.path.clone(),
                    column: name.to_string(),
                    role: role.to_string(),
                    available: raw.column_list(),
                })
        };
        Ok(LogColumns {
            cust: col(&spec.customer_col, InputRole::Customer)?,
            time: col(&spec.time_col, InputRole::Timestamp)?,
            amount: col(&spec.amount_col, InputRole::Amount)?,
            qty: match &spec.quantity_col {
                Some(q) => Some(col(q, InputRole::Quantity)?),
                None => None,
            },
            order: match &spec.order_col {
                Some(o) => Some(col(o, InputRole::Order)?),
                None => None,
            },
        })
    }
}

/// Customer id and timestamp of every row (timestamp 0 for rows without an id).
pub(super) struct ParsedRows<'a> {
    ts: Vec<i64>,
    ids: Vec<Option<Cow<'a, str>>>,
    /// Rows without a customer id.
    pub(super) no_id: usize,
}

impl<'a> ParsedRows<'a> {
    /// Read ids and timestamps; a bad or missing timestamp on a row with an id is an error.
    pub(super) fn parse(
        raw: &RawTable,
        spec: &TransactionSpec,
        cols: &LogColumns<'a>,
    ) -> Result<Self, IngestError> {
        let n = raw.nrows;
        let mut rows = ParsedRows {
            ts: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
            no_id: 0,
        };
        for row in 0..n {
            let id: Option<Cow<str>> = match cols.cust.get(row) {
                RawValue::Text(s) if !is_missing_token(s) => Some(Cow::Borrowed(s.trim())),
                RawValue::Number(x) => Some(Cow::Owned(crate::util::fmt_num(x))),
                _ => None,
            };
            if id.is_none() {
                rows.no_id += 1;
            }
            let t = timestamp_at(raw, spec, cols.time, row, id.is_some())?;
            rows.ts.push(t);
            rows.ids.push(id);
        }
        Ok(rows)
    }

    /// The latest timestamp of a row with an id (0 when there is none).
    pub(super) fn last_event(&self) -> i64 {
        (0..self.ts.len())
            .filter(|&i| self.ids[i].is_some())
            .map(|i| self.ts[i])
            .max()
            .unwrap_or(0)
    }
}

/// The timestamp of `row`; a missing one is an error only when the row has a customer id.
fn timestamp_at(
    raw: &RawTable,
    spec: &TransactionSpec,
    time: &RawData,
    row: usize,
    has_id: bool,
) -> Result<i64, IngestError> {
    match time.get(row) {
        RawValue::Text(s) if !is_missing_token(s) => {
            parse_timestamp(s).ok_or_else(|| IngestError::BadValue {
                path: raw.path.clone(),
                row: row + 1,
                column: spec.time_col.clone(),
                expected: "a date or datetime (e.g. 2024-03-31 or 2024-03-31 14:05:00)".into(),
                value: crate::util::excerpt(s),
            })
        }
        RawValue::Number(x) => Err(IngestError::BadValue {
            path: raw.path.clone(),
            row: row + 1,
            column: spec.time_col.clone(),
            expected: "a date or datetime".into(),
            value: crate::util::fmt_num(x),
        }),
        _ if !has_id => Ok(0),
        _ => Err(IngestError::MissingValue {
            path: raw.path.clone(),
            row: row + 1,
            column: spec.time_col.clone(),
            what: "every transaction needs a timestamp".into(),
        }),
    }
}

/// Period boundaries in Unix seconds, fixed before aggregation.
pub(super) struct Period {
    cutoff: i64,
    horizon_end: i64,
    window: i64,
    last_event: i64,
    /// How the cutoff was chosen, when it was defaulted.
    note: Option<String>,
}

impl Period {
    /// The configured cutoff, or by default the day after the last event minus the horizon (for
    /// training) or the day after the last event (for scoring).
    pub(super) fn choose(
        spec: &TransactionSpec,
        explicit_cutoff: Option<i64>,
        last_event: i64,
    ) -> Period {
        let horizon = spec.horizon_days as i64 * DAY;
        let (cutoff, note) = match explicit_cutoff {
            Some(t) => (t, None),
            None if spec.for_scoring() => {
                let c = (last_event.div_euclid(DAY) + 1) * DAY;
                (
                    c,
                    Some(format!(
                        "as-of date defaulted to {} (the day after the last event)",
                        format_day(c.div_euclid(DAY))
                    )),
                )
            }
            None => {
                let end = (last_event.div_euclid(DAY) + 1) * DAY;
                let c = end - horizon;
                (
                    c,
                    Some(format!(
                        "cutoff defaulted to {} (day after the last event {} minus {} days)",
                        format_day(c.div_euclid(DAY)),
                        format_day(last_event.div_euclid(DAY)),
                        spec.horizon_days
                    )),
                )
            }
        };
        Period {
            cutoff,
            horizon_end: cutoff + horizon,
            window: spec.window_days as i64 * DAY,
            last_event,
            note,
        }
    }
}

/// The amount of `row`: the amount column, times the quantity with `unit_price` (the quantity
/// is parsed, and so checked, whenever the column is configured).
#[inline]
fn amount_at(
    raw: &RawTable,
    spec: &TransactionSpec,
    cols: &LogColumns<'_>,
    row: usize,
) -> Result<f64, IngestError> {
    let mut amt = number_at(raw, cols.amount, row, &spec.amount_col)?;
    if let (Some(q), Some(qname)) = (cols.qty, &spec.quantity_col) {
        let qv = number_at(raw, q, row, qname)?;
        if spec.unit_price {
            amt *= qv;
        }
    }
    Ok(amt)
}

/// The output rows: customers with a purchase before the cutoff.
struct Customers {
    ids: Vec<String>,
    label: Vec<bool>,
    /// Feature columns in [`TRANSACTION_FEATURES`] order.
    cols: Vec<Vec<Option<f64>>>,
    /// Customers left out: no purchase before the cutoff.
    late: usize,
}

impl Customers {
    /// Turn the accumulators into feature rows and labels (`churned` = no purchase after cutoff).
    fn collect(ids: Vec<Box<str>>, acc: Vec<Acc>, cutoff: i64) -> Customers {
        let mut out = Customers {
            ids: Vec::new(),
            label: Vec::new(),
            cols: vec![Vec::new(); TRANSACTION_FEATURES.len()],
            late: 0,
        };
        for (id, mut a) in ids.into_iter().zip(acc) {
            if !a.any_before {
                out.late += 1;
                continue;
            }
            let vals = a.features(cutoff);
            out.ids.push(id.into_string());
            out.label.push(!a.active_after);
            for (c, v) in out.cols.iter_mut().zip(vals) {
                c.push(Some(v));
            }
        }
        out
    }

    /// The customer-level table with the `churned` label.
    fn into_data(
        self,
        path: std::path::PathBuf,
        spec: &TransactionSpec,
        quality: QualityReport,
    ) -> CustomerData {
        CustomerData {
            source: path,
            id_column: Some(spec.customer_col.clone()),
            ids: Some(self.ids),
            label_column: "churned".into(),
            positive_value: "1".into(),
            negative_value: "0".into(),
            label: self.label,
            features: TRANSACTION_FEATURES
                .iter()
                .zip(self.cols)
                .map(|(name, v)| FeatureColumn {
                    name: name.to_string(),
                    kind: FeatureKind::Numeric,
                    values: FeatureValues::Num(v),
                })
                .collect(),
            quality,
            transactions: Some(spec.clone()),
        }
    }
}

/// Rows and drops, the period and its notes, and the label balance (column statistics are added
/// by the caller).
fn quality_report(
    path: &std::path::Path,
    rows_read: usize,
    spec: &TransactionSpec,
    no_id: usize,
    period: &Period,
    customers: &Customers,
) -> QualityReport {
    let label = &customers.label;
    let positives = label.iter().filter(|&&b| b).count();
    let mut quality = QualityReport {
        source: path.display().to_string(),
        mode: DataMode::Transactions,
        rows_read,
        rows_out: customers.ids.len(),
        ..Default::default()
    };
    if no_id > 0 {
        quality.dropped.push(DropCount {
            reason: format!(
                "transactions without a customer id ('{}')",
                spec.customer_col
            ),
            rows: no_id,
        });
    }
    if customers.late > 0 {
        quality.dropped.push(DropCount {
            reason: "customers with no purchase before the cutoff (first purchase on or after it, or returns only)".into(),
            rows: customers.late,
        });
    }
    quality.notes = period_notes(spec, period);
    quality.label = Some(LabelBalance {
        column: "churned".into(),
        positive_value: "1".into(),
        positives,
        negatives: label.len() - positives,
        positive_rate: positives as f64 / label.len() as f64,
    });
    quality
}

/// Notes on the cutoff and windows, with a warning when the label window outruns the data.
fn period_notes(spec: &TransactionSpec, period: &Period) -> Vec<String> {
    if spec.for_scoring() {
        let mut notes = vec![format!(
            "features as of {} for scoring (no label), trend window {} days",
            format_day(period.cutoff.div_euclid(DAY)),
            spec.window_days
        )];
        notes.extend(period.note.clone());
        return notes;
    }
    let mut notes = vec![format!(
        "cutoff {}, horizon {} days, trend window {} days",
        format_day(period.cutoff.div_euclid(DAY)),
        spec.horizon_days,
        spec.window_days
    )];
    if let Some(n) = &period.note {
        notes.push(n.clone());
    }
    let last_day = period.last_event.div_euclid(DAY);
    if period.horizon_end > (last_day + 1) * DAY {
        notes.push(format!(
            "warning: the label window ends {} but the data ends {}: customers may be labelled churned only because the log stops",
            format_day(period.horizon_end.div_euclid(DAY)),
            format_day(last_day)
        ));
    }
    notes
}
