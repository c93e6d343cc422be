//! Transaction logs → point-in-time customer features (RFM, tenure, trend) with a horizon label.

mod aggregate;
mod stream;

use super::value::parse_timestamp;
use super::{ColumnQuality, CustomerData, IngestError, InputRole};
use crate::io::{RawData, RawTable};
use aggregate::aggregate;
use serde::{Deserialize, Serialize};
pub use stream::StreamOptions;

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
    /// Optional order (invoice) id column: lines of one order are one purchase. Without it,
    /// a customer's rows with the same timestamp are one purchase.
    #[serde(default)]
    pub order_col: Option<String>,
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
    /// Training features with a horizon label (the default), or features for scoring.
    #[serde(skip)]
    pub cut: Cut,
}

/// Where features are cut from the log.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Cut {
    /// For training: features before `cutoff` (default: the day after the last event minus the
    /// horizon) and the label from the horizon after it.
    #[default]
    Training,
    /// For scoring: features as of a date `YYYY-MM-DD` (`None`: the day after the last event);
    /// the label is meaningless and not written.
    AsOf(Option<String>),
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
            order_col: None,
            unit_price: false,
            cutoff: None,
            horizon_days: default_horizon(),
            window_days: default_window(),
            cut: Cut::Training,
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
        if let Some(o) = &self.order_col {
            c.push(o.clone());
        }
        c
    }

    /// Guards on the settings alone, checked before any row is looked at (like linfa's
    /// parameter checks): required columns named, `unit_price` with a quantity, non-zero periods.
    pub(crate) fn validate(&self) -> Result<(), IngestError> {
        for (col, role, flag) in [
            (&self.customer_col, InputRole::Customer, "--customer-col"),
            (&self.time_col, InputRole::Timestamp, "--time-col"),
            (&self.amount_col, InputRole::Amount, "--amount-col"),
        ] {
            if col.is_empty() {
                return Err(IngestError::Config(format!(
                    "transactions need the {role} column ({flag})"
                )));
            }
        }
        if self.unit_price && self.quantity_col.is_none() {
            return Err(IngestError::Config(
                "unit_price needs a quantity column (--quantity-col)".into(),
            ));
        }
        if self.horizon_days == 0 || self.window_days == 0 {
            return Err(IngestError::Config(
                "horizon_days and window_days must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The configured cutoff (or as-of date) in Unix seconds (`None` when it is to be derived
    /// from the data).
    pub fn explicit_cutoff(&self) -> Result<Option<i64>, IngestError> {
        let (what, date) = match &self.cut {
            Cut::Training => ("cutoff", &self.cutoff),
            Cut::AsOf(d) => ("as-of date", d),
        };
        match date {
            Some(c) => Some(parse_timestamp(c).ok_or_else(|| {
                IngestError::Config(format!("{what} '{c}' is not a date (expected YYYY-MM-DD)"))
            }))
            .transpose(),
            None => Ok(None),
        }
    }

    /// True when features are built for scoring (no label).
    pub fn for_scoring(&self) -> bool {
        matches!(self.cut, Cut::AsOf(_))
    }
}

/// Build the customer-level table from a transaction log.
///
/// A *purchase* is an order (the rows sharing an `order_col` value) or, without an order
/// column, a customer's rows at one timestamp; a row with amount >= 0 makes its purchase count.
/// Frequency, trend and `monetary_mean` count purchases, not rows. Returns (negative amounts)
/// net into `monetary_total` but are not activity: they do not count toward frequency, recency,
/// tenure, trend, active months or the label. Features use rows strictly before the cutoff; `churned` =
/// no purchase in `[cutoff, cutoff + horizon)`. Customers without a purchase before the cutoff are
/// left out and counted; rows without a customer id are dropped and counted.
pub fn build_transaction_features(
    raw: &RawTable,
    spec: &TransactionSpec,
) -> Result<CustomerData, IngestError> {
    let roles = [
        (Some(&spec.customer_col), InputRole::Customer),
        (Some(&spec.time_col), InputRole::Timestamp),
        (Some(&spec.amount_col), InputRole::Amount),
        (spec.quantity_col.as_ref(), InputRole::Quantity),
        (spec.order_col.as_ref(), InputRole::Order),
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
                        role: *role,
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

/// [`build_transaction_features`] for a CSV / TSV log (plain or gzip) larger than memory: the
/// file is read in chunks and folded by the same code, so the table is identical; memory holds
/// one chunk plus what each customer and purchase needs (about 200 bytes per customer and 8 per
/// purchase). `progress(stage, bytes_read, file_bytes)` follows the reading. The quality report
/// has no per-column statistics (they would need every distinct value).
pub fn stream_transaction_features(
    path: &std::path::Path,
    spec: &TransactionSpec,
    opts: StreamOptions,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<CustomerData, IngestError> {
    stream::stream(path, spec, opts, progress)
}
