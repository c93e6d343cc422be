//! Transaction logs → point-in-time customer features (RFM, tenure, trend) with a horizon label.

use super::value::{format_day, is_missing_token, parse_number, parse_timestamp};
use super::{
    ColumnQuality, CustomerData, DropCount, FeatureColumn, FeatureKind, FeatureValues, IngestError,
    LabelBalance, QualityReport,
};
use crate::io::{RawData, RawTable, RawValue};
use crate::util::FxHashMap;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Names of the features built from a transaction log, in output order.
pub const TRANSACTION_FEATURES: &[&str] = &[
    "recency_days",
    "frequency",
    "monetary_total",
    "monetary_mean",
    "tenure_days",
    "frequency_trend",
    "active_months",
];

/// How to read a transaction log and where to cut it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionSpec {
    /// Input file (CSV, CSV.gz, TSV or Parquet).
    #[serde(default)]
    pub path: std::path::PathBuf,
    /// Customer id column.
    pub customer_col: String,
    /// Timestamp column (dates or datetimes).
    pub time_col: String,
    /// Amount column (or unit price, with `unit_price`).
    pub amount_col: String,
    /// Optional quantity column.
    #[serde(default)]
    pub quantity_col: Option<String>,
    /// When true, amount = quantity × the amount column (a unit price).
    #[serde(default)]
    pub unit_price: bool,
    /// As-of date `YYYY-MM-DD`; default: the day after the last event minus `horizon_days`.
    #[serde(default)]
    pub cutoff: Option<String>,
    /// Label horizon in days (default 90).
    #[serde(default = "default_horizon")]
    pub horizon_days: u32,
    /// Trend window in days (default 90).
    #[serde(default = "default_window")]
    pub window_days: u32,
}

fn default_horizon() -> u32 {
    90
}
fn default_window() -> u32 {
    90
}

impl Default for TransactionSpec {
    fn default() -> Self {
        TransactionSpec {
            path: Default::default(),
            customer_col: String::new(),
            time_col: String::new(),
            amount_col: String::new(),
            quantity_col: None,
            unit_price: false,
            cutoff: None,
            horizon_days: default_horizon(),
            window_days: default_window(),
        }
    }
}

impl TransactionSpec {
    /// Columns the log must have.
    pub fn columns(&self) -> Vec<String> {
        let mut c = vec![
            self.customer_col.clone(),
            self.time_col.clone(),
            self.amount_col.clone(),
        ];
        if let Some(q) = &self.quantity_col {
            c.push(q.clone());
        }
        c
    }
}

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
}

fn number_at(raw: &RawTable, data: &RawData, row: usize, column: &str) -> Result<f64, IngestError> {
    match data.get(row) {
        RawValue::Number(x) => Ok(x),
        RawValue::Text(s) if !is_missing_token(s) => {
            parse_number(s).ok_or_else(|| IngestError::BadValue {
                path: raw.path.clone(),
                row: row + 1,
                column: column.to_string(),
                expected: "a number".into(),
                value: s.to_string(),
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

/// Build the customer-level table from a transaction log.
///
/// An *event* is a purchase: a row with amount >= 0. Returns (negative amounts) net into
/// `monetary_total` but are not activity: they do not count toward frequency, recency, tenure,
/// trend, active months or the label. Features use rows strictly before the cutoff; `churned` =
/// no purchase in `[cutoff, cutoff + horizon)`. Customers without a purchase before the cutoff are
/// left out and counted; rows without a customer id are dropped and counted.
pub fn build_transaction_features(
    raw: &RawTable,
    spec: &TransactionSpec,
) -> Result<CustomerData, IngestError> {
    let roles = [
        (Some(&spec.customer_col), "customer"),
        (Some(&spec.time_col), "timestamp"),
        (Some(&spec.amount_col), "amount"),
        (spec.quantity_col.as_ref(), "quantity"),
    ];
    // Column statistics for the quality report run on the second core while we aggregate.
    std::thread::scope(|s| {
        let stats = s.spawn(|| {
            roles
                .iter()
                .filter_map(|(name, role)| {
                    let name = (*name)?;
                    let c = raw.column(name).ok()?;
                    let (missing, distinct) = c.data.missing_and_distinct();
                    Some(ColumnQuality {
                        name: name.clone(),
                        role: role.to_string(),
                        kind: if matches!(c.data, RawData::Num(_)) {
                            "numeric"
                        } else {
                            "text"
                        }
                        .into(),
                        missing,
                        distinct,
                    })
                })
                .collect::<Vec<_>>()
        });
        let mut data = aggregate(raw, spec)?;
        data.quality.columns = stats
            .join()
            .map_err(|_| IngestError::Config("column statistics failed".into()))?;
        Ok(data)
    })
}

fn aggregate(raw: &RawTable, spec: &TransactionSpec) -> Result<CustomerData, IngestError> {
    let path = &raw.path;
    for (col, role) in [
        (&spec.customer_col, "customer"),
        (&spec.time_col, "timestamp"),
        (&spec.amount_col, "amount"),
    ] {
        if col.is_empty() {
            return Err(IngestError::Config(format!(
                "transactions need the {role} column (--{}-col)",
                if role == "timestamp" { "time" } else { role }
            )));
        }
    }
    if spec.unit_price && spec.quantity_col.is_none() {
        return Err(IngestError::Config(
            "unit_price needs a quantity column (--quantity-col)".into(),
        ));
    }
    if spec.horizon_days == 0 || spec.window_days == 0 {
        return Err(IngestError::Config(
            "horizon_days and window_days must be at least 1".into(),
        ));
    }
    let explicit_cutoff = match &spec.cutoff {
        Some(c) => Some(parse_timestamp(c).ok_or_else(|| {
            IngestError::Config(format!("cutoff '{c}' is not a date (expected YYYY-MM-DD)"))
        })?),
        None => None,
    };
    let col = |name: &str, role: &str| {
        raw.index_of(name)
            .map(|i| &raw.columns[i].data)
            .ok_or_else(|| IngestError::UnknownColumn {
                path: path.clone(),
                column: name.to_string(),
                role: role.to_string(),
                available: raw.column_list(),
            })
    };
    let cust = col(&spec.customer_col, "customer")?;
    let time = col(&spec.time_col, "timestamp")?;
    let amount = col(&spec.amount_col, "amount")?;
    let qty = match &spec.quantity_col {
        Some(q) => Some(col(q, "quantity")?),
        None => None,
    };
    let n = raw.nrows;

    // Parse timestamps first: the default cutoff depends on the last event.
    let mut ts: Vec<i64> = Vec::with_capacity(n);
    let mut ids: Vec<Option<Cow<str>>> = Vec::with_capacity(n);
    let mut no_id = 0usize;
    for row in 0..n {
        let id: Option<Cow<str>> = match cust.get(row) {
            RawValue::Text(s) if !is_missing_token(s) => Some(Cow::Borrowed(s.trim())),
            RawValue::Number(x) => Some(Cow::Owned(crate::util::fmt_num(x))),
            _ => None,
        };
        if id.is_none() {
            no_id += 1;
        }
        let t = match time.get(row) {
            RawValue::Text(s) if !is_missing_token(s) => {
                parse_timestamp(s).ok_or_else(|| IngestError::BadValue {
                    path: path.clone(),
                    row: row + 1,
                    column: spec.time_col.clone(),
                    expected: "a date or datetime (e.g. 2024-03-31 or 2024-03-31 14:05:00)".into(),
                    value: s.to_string(),
                })?
            }
            RawValue::Number(x) => {
                return Err(IngestError::BadValue {
                    path: path.clone(),
                    row: row + 1,
                    column: spec.time_col.clone(),
                    expected: "a date or datetime".into(),
                    value: crate::util::fmt_num(x),
                })
            }
            _ if id.is_none() => 0,
            _ => {
                return Err(IngestError::MissingValue {
                    path: path.clone(),
                    row: row + 1,
                    column: spec.time_col.clone(),
                    what: "every transaction needs a timestamp".into(),
                })
            }
        };
        ts.push(t);
        ids.push(id);
    }
    let with_id = n - no_id;
    if with_id == 0 {
        return Err(IngestError::Empty {
            path: path.clone(),
            message: "no transactions with a customer id".into(),
        });
    }
    let day = 86_400i64;
    let horizon = spec.horizon_days as i64 * day;
    let window = spec.window_days as i64 * day;
    let last_event = (0..n)
        .filter(|&i| ids[i].is_some())
        .map(|i| ts[i])
        .max()
        .unwrap_or(0);
    let (cutoff, cutoff_note) = match explicit_cutoff {
        Some(t) => (t, None),
        None => {
            let end = (last_event.div_euclid(day) + 1) * day;
            let c = end - horizon;
            (
                c,
                Some(format!(
                    "cutoff defaulted to {} (day after the last event {} minus {} days)",
                    format_day(c.div_euclid(day)),
                    format_day(last_event.div_euclid(day)),
                    spec.horizon_days
                )),
            )
        }
    };
    let horizon_end = cutoff + horizon;

    let mut index: FxHashMap<&str, usize> = FxHashMap::default();
    index.reserve(with_id / 4 + 16);
    let mut order: Vec<&str> = Vec::new();
    let mut acc: Vec<Acc> = Vec::new();
    for row in 0..n {
        let Some(id) = ids[row].as_deref() else {
            continue;
        };
        let t = ts[row];
        let ix = *index.entry(id).or_insert_with(|| {
            order.push(id);
            acc.push(Acc {
                first: i64::MAX,
                last: i64::MIN,
                count: 0,
                total: 0.0,
                recent: 0,
                previous: 0,
                months: Vec::new(),
                any_before: false,
                active_after: false,
            });
            acc.len() - 1
        });
        let a = &mut acc[ix];
        if t >= horizon_end {
            continue;
        }
        let mut amt = number_at(raw, amount, row, &spec.amount_col)?;
        if let (Some(q), Some(qname)) = (qty, &spec.quantity_col) {
            let qv = number_at(raw, q, row, qname)?;
            if spec.unit_price {
                amt *= qv;
            }
        }
        // A purchase (amount >= 0) is activity; a return (amount < 0) only nets into spend.
        let purchase = amt >= 0.0;
        if t < cutoff {
            a.total += amt;
            if !purchase {
                continue;
            }
            a.any_before = true;
            a.first = a.first.min(t);
            a.last = a.last.max(t);
            a.count += 1;
            if t >= cutoff - window {
                a.recent += 1;
            } else if t >= cutoff - 2 * window {
                a.previous += 1;
            }
            let (y, m, _) = super::value::civil_from_days(t.div_euclid(day));
            let month = (y * 12 + m as i64) as i32;
            if a.months.last() != Some(&month) {
                a.months.push(month);
            }
        } else if purchase {
            a.active_after = true;
        }
    }

    let mut out_ids = Vec::new();
    let mut label = Vec::new();
    let mut cols: Vec<Vec<Option<f64>>> = vec![Vec::new(); TRANSACTION_FEATURES.len()];
    let mut late = 0usize;
    for (ix, a) in acc.iter_mut().enumerate() {
        if !a.any_before {
            late += 1;
            continue;
        }
        a.months.sort_unstable();
        a.months.dedup();
        out_ids.push(order[ix].to_string());
        label.push(!a.active_after);
        let vals = [
            (cutoff - a.last) as f64 / day as f64,
            a.count as f64,
            a.total,
            a.total / a.count as f64,
            (cutoff - a.first) as f64 / day as f64,
            a.recent as f64 / (a.previous.max(1)) as f64,
            a.months.len() as f64,
        ];
        for (c, v) in cols.iter_mut().zip(vals) {
            c.push(Some(v));
        }
    }
    if out_ids.is_empty() {
        return Err(IngestError::Empty {
            path: path.clone(),
            message: format!(
                "no customer has an event before the cutoff {}",
                format_day(cutoff.div_euclid(day))
            ),
        });
    }
    let positives = label.iter().filter(|&&b| b).count();
    let mut quality = QualityReport {
        source: path.display().to_string(),
        mode: "transactions".into(),
        rows_read: n,
        rows_out: out_ids.len(),
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
    if late > 0 {
        quality.dropped.push(DropCount {
            reason: "customers with no purchase before the cutoff (first purchase on or after it, or returns only)".into(),
            rows: late,
        });
    }
    quality.notes.push(format!(
        "cutoff {}, horizon {} days, trend window {} days",
        format_day(cutoff.div_euclid(day)),
        spec.horizon_days,
        spec.window_days
    ));
    if let Some(n) = cutoff_note {
        quality.notes.push(n);
    }
    if horizon_end > (last_event.div_euclid(day) + 1) * day {
        quality.notes.push(format!(
            "warning: the label window ends {} but the data ends {}: customers may be labelled churned only because the log stops",
            format_day(horizon_end.div_euclid(day)),
            format_day(last_event.div_euclid(day))
        ));
    }
    quality.label = Some(LabelBalance {
        column: "churned".into(),
        positive_value: "1".into(),
        positives,
        negatives: label.len() - positives,
        positive_rate: positives as f64 / label.len() as f64,
    });
    Ok(CustomerData {
        source: path.clone(),
        id_column: Some(spec.customer_col.clone()),
        ids: Some(out_ids),
        label_column: "churned".into(),
        positive_value: "1".into(),
        negative_value: "0".into(),
        label,
        features: TRANSACTION_FEATURES
            .iter()
            .zip(cols)
            .map(|(name, v)| FeatureColumn {
                name: name.to_string(),
                kind: FeatureKind::Numeric,
                values: FeatureValues::Num(v),
            })
            .collect(),
        quality,
    })
}
