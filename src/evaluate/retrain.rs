//! Training data from the store (`churn-train --from-store URL`, issue 34 item 1): each
//! customer's first matured prediction of a model, point in time — the input that was scored
//! and the label observed within the horizon after it — as a customer table in the champion's
//! input layout, ready for the training pipeline.
//!
//! Customers offered an action are left out. Their churn was changed by the offer: an effective
//! action makes the riskiest customers (the ones a campaign contacts) look safe, and a model
//! trained on them learns that the profile the playbook targets has low risk — the next
//! campaign then skips exactly the customers it saved. What remains is the control group (a
//! random share of every risk level, by hash), the customers a contact decision passed over
//! and those scored without a playbook. Who is passed over depends only on the scored input,
//! so churn given the input is learned without bias from what remains; only the targeted
//! region has fewer rows (its control share). Weighting the offered customers instead would
//! need each action's true effect per customer, which is what the uplift models estimate, not
//! something to assume. `tests/it/retrain.rs` shows the bias this avoids.

use super::compare::{CompareCounts, Matured, Origin};
use super::EvalError;
use crate::bundle::Bundle;
use crate::ingest::{
    ColumnTypeOverride, CustomerData, CustomerTableSpec, DropCount, FeatureKind, RowSource,
};
use crate::io::{RawColumn, RawData, RawTable, TextColumn};
use std::collections::BTreeMap;

/// Where the rows were read from (for the data-quality report and the card).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSource {
    /// The store, as the user named it (without a password).
    pub store: String,
    /// Model whose predictions were read.
    pub model: String,
    /// First scoring instant read (Unix ms), if limited.
    pub since: Option<i64>,
    /// Labels judged as of this instant (Unix ms).
    pub as_of: i64,
    /// Label horizon in days.
    pub horizon_days: u32,
}

impl StoreSource {
    /// `store URL, model NAME, scored since DATE, labels within N days as of DATE`.
    pub fn describe(&self) -> String {
        format!(
            "{}, model {}{}, labels within {} days as of {}",
            self.store,
            self.model,
            self.since.map_or(String::new(), |s| format!(
                ", scored since {}",
                crate::time::format_instant(s)
            )),
            self.horizon_days,
            crate::time::format_instant(self.as_of)
        )
    }
}

/// The label text that is not `positive` (the table only needs two distinct values).
fn negative_token(positive: &str) -> String {
    let pairs = [
        ("Yes", "No"),
        ("yes", "no"),
        ("YES", "NO"),
        ("1", "0"),
        ("true", "false"),
        ("True", "False"),
        ("churned", "retained"),
    ];
    pairs
        .iter()
        .find(|(p, _)| *p == positive)
        .map_or_else(|| format!("not {positive}"), |(_, n)| n.to_string())
}

/// A stored JSON value as a table cell's text (`None`: missing). Numbers are written in their
/// shortest round-trip form, so the table reads back the value that was scored.
fn cell_text(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.as_f64().map_or(n.to_string(), |x| x.to_string())),
        other => Some(other.to_string()),
    }
}

/// The customer table of `rows` (matured customers of `bundle`'s model, offered ones already
/// left out as `counts` records) in the champion's input layout: its inputs with their types,
/// its label column and values, its id column (holding the store's customer keys). Rows whose
/// stored input no longer encodes for the champion are left out and counted. The data-quality
/// report says how many rows came from where.
pub fn customer_table(
    bundle: &Bundle,
    mut rows: Vec<Matured>,
    mut counts: CompareCounts,
    source: &StoreSource,
) -> Result<CustomerData, EvalError> {
    let invalid = |message: String| EvalError::Invalid {
        field: "from-store",
        message,
    };
    // a stable row order whatever order the store returned them in (same store, same bundle)
    rows.sort_by(|a, b| a.customer.cmp(&b.customer));
    let mut parsed = Vec::with_capacity(rows.len());
    let mut kept = Vec::with_capacity(rows.len());
    for r in rows {
        let object = serde_json::from_str::<serde_json::Map<_, _>>(&r.input)
            .ok()
            .filter(|m| super::drift::encode_fields(&bundle.encoder, m).is_some());
        match object {
            Some(m) => {
                parsed.push(m);
                kept.push(r);
            }
            None => counts.unreadable += 1,
        }
    }
    if counts.customers == 0 {
        return Err(invalid(format!(
            "{}: no predictions of model {} in the store for this period",
            source.describe(),
            bundle.name
        )));
    }
    let churned = kept.iter().filter(|r| r.churned).count();
    if churned == 0 || churned == kept.len() {
        return Err(invalid(format!(
            "{} (model {}): {} usable matured customers, {churned} of them churned; training needs \
             churners and stayers ({} not matured yet, {} offered an action and left out, {} \
             unreadable)",
            source.describe(),
            bundle.name,
            kept.len(),
            counts.pending,
            counts.treated,
            counts.unreadable
        )));
    }
    let (raw, spec) = layout(bundle, &kept, &parsed, source);
    let mut data =
        crate::ingest::load_customer_table(raw, &spec).map_err(|e| invalid(e.to_string()))?;
    if bundle.id_column.is_none() {
        data.id_column = None;
        data.ids = None;
        data.quality
            .columns
            .retain(|c| c.role != crate::ingest::InputRole::Id);
    }
    data.transactions = bundle.transactions.clone();
    let q = &mut data.quality;
    describe_sources(q, bundle, &counts, &kept, source);
    q.notes.push(
        "each customer's first matured prediction: the input that was scored, the label \
         observed within the horizon after it; customers offered an action are left out"
            .into(),
    );
    Ok(data)
}

/// The rows as a table in the champion's layout (id, inputs with their types, label) and the
/// spec that reads it.
fn layout(
    bundle: &Bundle,
    kept: &[Matured],
    parsed: &[serde_json::Map<String, serde_json::Value>],
    source: &StoreSource,
) -> (RawTable, CustomerTableSpec) {
    let label = bundle.label_column.clone();
    let id = bundle
        .id_column
        .clone()
        .unwrap_or_else(|| "_store_customer_key".to_string());
    let negative = negative_token(&bundle.positive_value);
    let mut columns = vec![RawColumn {
        name: id.clone(),
        data: RawData::Text(kept.iter().map(|r| Some(r.customer.as_str())).collect()),
    }];
    let mut types = BTreeMap::new();
    for spec in &bundle.encoder.inputs {
        if spec.name == label || spec.name == id {
            continue;
        }
        let cells: Vec<Option<String>> = parsed
            .iter()
            .map(|m| cell_text(m.get(&spec.name)))
            .collect();
        columns.push(RawColumn {
            name: spec.name.clone(),
            data: RawData::Text(cells.iter().map(Option::as_deref).collect::<TextColumn>()),
        });
        types.insert(
            spec.name.clone(),
            match spec.kind {
                FeatureKind::Numeric => ColumnTypeOverride::Numeric,
                FeatureKind::Boolean { .. } => ColumnTypeOverride::Boolean,
                FeatureKind::Categorical => ColumnTypeOverride::Categorical,
            },
        );
    }
    columns.push(RawColumn {
        name: label.clone(),
        data: RawData::Text(
            kept.iter()
                .map(|r| {
                    Some(if r.churned {
                        bundle.positive_value.as_str()
                    } else {
                        negative.as_str()
                    })
                })
                .collect(),
        ),
    });
    let raw = RawTable {
        path: source.describe().into(),
        columns,
        nrows: kept.len(),
    };
    let spec = CustomerTableSpec {
        path: raw.path.clone(),
        label,
        positive: Some(bundle.positive_value.clone()),
        id: Some(id),
        drop: Vec::new(),
        types,
        // the inputs are the champion's features, which passed its personal-data check
        personal_data: Some(Vec::new()),
    };
    (raw, spec)
}

/// The data-quality report's account of the rows: where from, what was left out and why.
fn describe_sources(
    q: &mut crate::ingest::QualityReport,
    bundle: &Bundle,
    counts: &CompareCounts,
    kept: &[Matured],
    source: &StoreSource,
) {
    q.mode = bundle.mode;
    q.source = source.describe();
    q.rows_read = counts.customers;
    let mut dropped = vec![
        DropCount {
            reason: "prediction not matured yet (no label within the horizon)".into(),
            rows: counts.pending,
        },
        DropCount {
            reason: "offered an action (its churn was changed by the offer)".into(),
            rows: counts.treated,
        },
        DropCount {
            reason: "stored input no longer encodes for the champion".into(),
            rows: counts.unreadable,
        },
    ];
    dropped.retain(|d| d.rows > 0);
    dropped.append(&mut q.dropped);
    q.dropped = dropped;
    let mut sources: BTreeMap<String, usize> = BTreeMap::new();
    for r in kept {
        *sources.entry(r.origin.as_str().to_string()).or_default() += 1;
    }
    for r in kept {
        *sources
            .entry(format!("scored by version {}", r.version))
            .or_default() += 1;
    }
    // the campaign's groups first (in their fixed order), then the versions
    let groups: Vec<(String, usize)> = Origin::ALL
        .iter()
        .filter_map(|o| sources.remove_entry(o.as_str()))
        .collect();
    q.sources = groups
        .into_iter()
        .chain(sources)
        .map(|(source, rows)| RowSource { source, rows })
        .collect();
}

/// A stable fingerprint of the rows a store-trained model learned from (the card's
/// `data_sha256`): the same rows give the same bundle.
pub fn fingerprint(data: &CustomerData) -> String {
    let mut buf = Vec::new();
    for (name, col) in data.output_columns() {
        buf.extend_from_slice(name.as_bytes());
        buf.push(0);
        buf.extend_from_slice(format!("{col:?}").as_bytes());
        buf.push(0);
    }
    crate::util::sha256_hex(&buf)
}
