//! Data-quality report: what was read, dropped, missing, and how the label is balanced.

use serde::{Deserialize, Serialize};

crate::util::text_enum! {
    /// What the training input is: a customer table or a transaction log.
    #[derive(Default)]
    pub enum DataMode {
        /// One row per customer with a label column.
        #[default]
        CustomerTable = "customer_table",
        /// A transaction log turned into customer features and a horizon label.
        Transactions = "transactions",
    }
}

crate::util::text_enum! {
    /// The role of an input-file column in the quality report.
    pub enum InputRole {
        /// Customer-table id column.
        Id = "id",
        /// Customer-table label column.
        Label = "label",
        /// Customer-table column that becomes a feature.
        Feature = "feature",
        /// Customer-table column left out (`--drop`).
        Dropped = "dropped",
        /// Transaction-log customer id column.
        Customer = "customer",
        /// Transaction-log timestamp column.
        Timestamp = "timestamp",
        /// Transaction-log amount column.
        Amount = "amount",
        /// Transaction-log quantity column.
        Quantity = "quantity",
        /// Order (invoice) id of a transaction log.
        Order = "order",
    }
}

/// Rows dropped for one reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropCount {
    /// Why.
    pub reason: String,
    /// How many rows (or customers, for transaction logs).
    pub rows: usize,
}

/// Rows that came from one source (training from the store: control group, not contacted,
/// scored by a version, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowSource {
    /// Where from.
    pub source: String,
    /// How many rows.
    pub rows: usize,
}

/// Per-column statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnQuality {
    /// Column.
    pub name: String,
    /// id, label, feature, dropped, customer, timestamp, amount, quantity.
    pub role: InputRole,
    /// numeric / boolean / categorical / text.
    pub kind: String,
    /// Missing cells.
    pub missing: usize,
    /// Distinct non-missing values.
    pub distinct: usize,
}

/// Label balance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelBalance {
    /// Label column.
    pub column: String,
    /// The value that means churn.
    pub positive_value: String,
    /// Churned rows.
    pub positives: usize,
    /// Other rows.
    pub negatives: usize,
    /// positives / (positives + negatives).
    pub positive_rate: f64,
}

/// The data-quality report, printed as a table and stored as JSON next to the model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    /// Input file.
    pub source: String,
    /// Customer table or transaction log.
    pub mode: DataMode,
    /// Data rows read from the file.
    pub rows_read: usize,
    /// Customer rows produced.
    pub rows_out: usize,
    /// Dropped rows per reason.
    pub dropped: Vec<DropCount>,
    /// Where the rows came from (training from the store; empty for a file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<RowSource>,
    /// Per-column statistics.
    pub columns: Vec<ColumnQuality>,
    /// Label balance.
    pub label: Option<LabelBalance>,
    /// Other observations (e.g. settings that were derived).
    pub notes: Vec<String>,
}

impl QualityReport {
    /// A short human-readable table.
    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "data quality: {} ({})\n  rows read {}, customers out {}\n",
            self.source, self.mode, self.rows_read, self.rows_out
        ));
        for d in &self.dropped {
            s.push_str(&format!("  dropped {:>8}  {}\n", d.rows, d.reason));
        }
        for r in &self.sources {
            s.push_str(&format!("  from    {:>8}  {}\n", r.rows, r.source));
        }
        if let Some(l) = &self.label {
            s.push_str(&format!(
                "  label '{}': {} churned ('{}') / {} not churned = {:.2}% churn\n",
                l.column,
                l.positives,
                l.positive_value,
                l.negatives,
                100.0 * l.positive_rate
            ));
        }
        let w = self
            .columns
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(6)
            .max(6);
        s.push_str(&format!(
            "  {:<w$}  {:<9} {:<11} {:>8} {:>8}\n",
            "column", "role", "kind", "missing", "distinct"
        ));
        for c in &self.columns {
            s.push_str(&format!(
                "  {:<w$}  {:<9} {:<11} {:>8} {:>8}\n",
                c.name, c.role, c.kind, c.missing, c.distinct
            ));
        }
        for n in &self.notes {
            s.push_str(&format!("  note: {n}\n"));
        }
        s
    }
}
