//! How training fills the model card (the card's types are in [`crate::bundle::card`]).

use super::{Split, TrainOptions};
use crate::bundle::card::{
    HoldoutDetails, Importance, ModelCard, ModelChoiceReport, ShapInput, ShapSummary, Timings,
    TreeSummary,
};
use crate::bundle::Bundle;
use crate::features::{ColumnRole, Encoder, Matrix};
use crate::ingest::CustomerData;
use crate::model::calibrate::CalibrationChoice;
use crate::model::metrics::Evaluation;
use crate::model::{CvRow, ThresholdChoice};
use crate::segment::SegmentReport;

/// Importances per input field (summed over its encoded columns) and per encoded column (only
/// those used), each sorted by decreasing importance, then name.
pub(super) fn importances(encoder: &Encoder, imp: &[f64]) -> (Vec<Importance>, Vec<Importance>) {
    let mut per_input = vec![0.0; encoder.inputs.len()];
    for (c, col) in encoder.columns.iter().enumerate() {
        per_input[col.input] += imp[c];
    }
    let importance = ranked(
        encoder
            .inputs
            .iter()
            .zip(&per_input)
            .map(|(i, &v)| (&i.name, v)),
    );
    let importance_encoded = ranked(
        encoder
            .columns
            .iter()
            .zip(imp)
            .filter(|(_, &v)| v > 0.0)
            .map(|(c, &v)| (&c.name, v)),
    );
    (importance, importance_encoded)
}

/// (name, importance) pairs sorted by decreasing importance, ties by name.
pub(super) fn ranked<'a>(items: impl Iterator<Item = (&'a String, f64)>) -> Vec<Importance> {
    let mut v: Vec<Importance> = items
        .map(|(name, importance)| Importance {
            name: name.clone(),
            importance,
        })
        .collect();
    v.sort_by(|a, b| {
        b.importance
            .total_cmp(&a.importance)
            .then(a.name.cmp(&b.name))
    });
    v
}

/// Customers and inputs a [`ShapSummary`] holds.
const SUMMARY_CUSTOMERS: usize = 300;
const SUMMARY_INPUTS: usize = 8;

/// For a boosted model, the SHAP values of (at most 300, evenly spaced) training `rows` for its
/// 8 most important inputs, and each numeric input's value rank among them.
pub(super) fn shap_summary(
    bundle: &Bundle,
    x: &Matrix,
    rows: &[usize],
    importance: &[Importance],
) -> Option<ShapSummary> {
    let b = bundle.model.boosted_trees()?;
    let enc = &bundle.encoder;
    let step = rows.len().div_ceil(SUMMARY_CUSTOMERS).max(1);
    let sample: Vec<usize> = rows.iter().step_by(step).copied().collect();
    let inputs: Vec<usize> = importance
        .iter()
        .filter(|i| i.importance > 0.0)
        .filter_map(|i| enc.inputs.iter().position(|s| s.name == i.name))
        .take(SUMMARY_INPUTS)
        .collect();
    let tables = crate::model::shap::ShapTables::new(&b.ensemble);
    // each encoded column's place among the inputs shown, if any
    let slot: Vec<Option<usize>> = enc
        .columns
        .iter()
        .map(|c| inputs.iter().position(|&i| i == c.input))
        .collect();
    let mut shap = vec![vec![0.0; sample.len()]; inputs.len()];
    for (k, &r) in sample.iter().enumerate() {
        let phi = tables.shap_values(&b.ensemble, &x.row(r), x.ncols);
        for (&s, v) in slot.iter().zip(phi) {
            if let Some(p) = s {
                shap[p][k] += v;
            }
        }
    }
    let inputs = inputs
        .iter()
        .zip(shap)
        .map(|(&i, shap)| {
            let value = enc
                .columns
                .iter()
                .position(|c| c.input == i && c.role == ColumnRole::Value);
            ShapInput {
                name: enc.inputs[i].name.clone(),
                shap,
                value_rank: value.map_or_else(Vec::new, |j| {
                    ranks(&sample.iter().map(|&r| x.get(r, j)).collect::<Vec<_>>())
                }),
            }
        })
        .collect();
    Some(ShapSummary {
        customers: sample.len(),
        inputs,
    })
}

/// Mid-ranks of `v` scaled to 0..=1 (ties share their mean rank).
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut sorted = v.to_vec();
    sorted.sort_by(f64::total_cmp);
    let top = (v.len().max(2) - 1) as f64;
    v.iter()
        .map(|x| {
            let below = sorted.partition_point(|s| s < x);
            let upto = sorted.partition_point(|s| s <= x);
            (below + upto - 1) as f64 / 2.0 / top
        })
        .collect()
}

/// The card's parts computed along the pipeline.
pub(super) struct Findings {
    /// Tree or boosted, and why.
    pub(super) model_choice: ModelChoiceReport,
    /// Cross-validation table.
    pub(super) cv_table: Vec<CvRow>,
    /// Calibration choice.
    pub(super) calibration: CalibrationChoice,
    /// Threshold choice.
    pub(super) threshold: ThresholdChoice,
    /// Holdout metrics.
    pub(super) holdout: Option<Evaluation>,
    /// Holdout ROC-AUC before calibration.
    pub(super) holdout_auc_uncalibrated: Option<f64>,
    /// Holdout curves and playbook mix.
    pub(super) holdout_details: Option<HoldoutDetails>,
    /// Importance per input field.
    pub(super) importance: Vec<Importance>,
    /// Importance per encoded column.
    pub(super) importance_encoded: Vec<Importance>,
    /// Boosted models: the SHAP summary plot's values.
    pub(super) shap_summary: Option<ShapSummary>,
    /// Segment report.
    pub(super) segments: Option<SegmentReport>,
    /// Stage timings.
    pub(super) timings: Timings,
}

/// The model card of a saved bundle.
pub(super) fn model_card(
    data: &CustomerData,
    opts: &TrainOptions,
    learner: &str,
    split: &Split,
    bundle: &Bundle,
    version: String,
    f: Findings,
) -> ModelCard {
    let y = &data.label;
    let label_rate = y.iter().filter(|&&b| b).count() as f64 / y.len() as f64;
    let (model, encoder) = (&bundle.model, &bundle.encoder);
    ModelCard {
        name: opts.name.clone(),
        version,
        created_at: crate::time::format_instant(crate::time::now_ms()),
        software_version: env!("CARGO_PKG_VERSION").to_string(),
        data_source: data.source.display().to_string(),
        data_sha256: opts.data_sha256.clone(),
        mode: data.quality.mode,
        training_rows: split.train_rows.len(),
        holdout_rows: split.test_rows.len(),
        label_rate,
        label: format!("{} = {}", data.label_column, data.positive_value),
        id_column: data.id_column.clone(),
        features: encoder.inputs.clone(),
        encoded_columns: encoder.columns.iter().map(|c| c.name.clone()).collect(),
        learner: learner.to_string(),
        seed: opts.seed,
        hyper_parameters: model.params,
        class_weight: opts.model.class_weight,
        tree: match model.single_tree() {
            Some(t) => TreeSummary {
                nodes: t.tree.nodes.len(),
                leaves: t.tree.n_leaves(),
                depth: t.tree.depth(),
            },
            // what the boosted model's stored base tree (its root alone) used to report
            None => TreeSummary {
                nodes: 1,
                leaves: 1,
                depth: 0,
            },
        },
        model_choice: Some(f.model_choice),
        cv_table: f.cv_table,
        calibration: f.calibration,
        threshold: f.threshold,
        economics: opts.economics,
        holdout: f.holdout,
        holdout_auc_uncalibrated: f.holdout_auc_uncalibrated,
        holdout_details: f.holdout_details,
        importance: f.importance,
        importance_encoded: f.importance_encoded,
        shap_summary: f.shap_summary,
        segments: f.segments,
        data_quality: data.quality.clone(),
        timings: f.timings,
        lineage: opts
            .previous
            .as_deref()
            .map(|p| {
                // a model directory means its champion
                let dir = crate::bundle::registry::resolve_path(p).unwrap_or(p.to_path_buf());
                crate::bundle::card::lineage_of(&dir)
            })
            .unwrap_or_default(),
    }
}
