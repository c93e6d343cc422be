//! The model card (`model_card.json`): its types, how training fills it, and its summary.

use super::{Split, TrainOptions};
use crate::bundle::Bundle;
use crate::features::Encoder;
use crate::ingest::{CustomerData, QualityReport};
use crate::model::calibrate::CalibrationChoice;
use crate::model::metrics::Evaluation;
use crate::model::tree::TreeParams;
use crate::model::{CvRow, Economics, ThresholdChoice};
use crate::segment::SegmentReport;
use serde::{Deserialize, Serialize};

/// Importance of one input column (sum over its encoded columns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Importance {
    /// Input field or encoded column.
    pub name: String,
    /// Share of the total weighted impurity decrease.
    pub importance: f64,
}

/// Feature description in the card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureInfo {
    /// Input name.
    pub name: String,
    /// Type and encoding.
    #[serde(flatten)]
    pub spec: crate::features::InputSpec,
}

/// The model card (`model_card.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// Model name.
    pub name: String,
    /// Content version of `model.bin`.
    pub version: String,
    /// When it was trained (UTC, RFC 3339).
    pub created_at: String,
    /// Software version.
    pub software_version: String,
    /// Input file.
    pub data_source: String,
    /// sha256 of the input file.
    pub data_sha256: String,
    /// `customer_table` or `transactions`.
    pub mode: crate::ingest::DataMode,
    /// Rows used for training (excluding the holdout).
    pub training_rows: usize,
    /// Holdout rows.
    pub holdout_rows: usize,
    /// Churn rate over all rows.
    pub label_rate: f64,
    /// Label column and positive value.
    pub label: String,
    /// Id column.
    pub id_column: Option<String>,
    /// Inputs and their encodings.
    pub features: Vec<crate::features::InputSpec>,
    /// Encoded column names.
    pub encoded_columns: Vec<String>,
    /// Learner used.
    pub learner: String,
    /// Seed.
    pub seed: u64,
    /// Final hyper-parameters.
    pub hyper_parameters: TreeParams,
    /// Class weighting.
    pub class_weight: crate::model::ClassWeight,
    /// Tree size.
    pub tree: TreeSummary,
    /// Which model was shipped (single tree or boosted trees) and why.
    #[serde(default)]
    pub model_choice: Option<ModelChoiceReport>,
    /// Cross-validation table of the single tree (empty with `search = false` or
    /// `--model boosted`).
    pub cv_table: Vec<CvRow>,
    /// Calibration choice.
    pub calibration: CalibrationChoice,
    /// Threshold choice.
    pub threshold: ThresholdChoice,
    /// Economics used, if any.
    pub economics: Option<Economics>,
    /// Holdout metrics of the shipped model (absent with holdout = 0).
    pub holdout: Option<Evaluation>,
    /// Holdout ROC-AUC of the uncalibrated leaf probabilities.
    pub holdout_auc_uncalibrated: Option<f64>,
    /// Holdout curves, profit by threshold and the playbook's action mix (for the report).
    #[serde(default)]
    pub holdout_details: Option<super::holdout::HoldoutDetails>,
    /// Importance per input field.
    pub importance: Vec<Importance>,
    /// Importance per encoded column.
    pub importance_encoded: Vec<Importance>,
    /// Segments, RFM classes and lifecycle stages.
    pub segments: Option<crate::segment::SegmentReport>,
    /// Data-quality report.
    pub data_quality: QualityReport,
    /// Wall-clock seconds per training stage (not part of the bundle, so retrains stay
    /// byte-identical).
    pub timings: Timings,
}

/// Wall-clock seconds of the training stages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Fitting the encoder and encoding the matrix.
    pub encode_s: f64,
    /// Learner preparation (binning for `hist`).
    pub prepare_s: f64,
    /// Cross-validated grid search (0 with `--no-search`).
    pub search_s: f64,
    /// Out-of-fold fits, calibration and threshold.
    pub calibration_s: f64,
    /// The single final fit on all training rows.
    pub fit_s: f64,
    /// Boosted models: mean-|SHAP| importances over (at most 10,000) training rows.
    #[serde(default)]
    pub explain_s: f64,
    /// Holdout evaluation.
    pub evaluation_s: f64,
    /// Segments (k-means).
    pub segments_s: f64,
    /// Holdout curves, playbook mix and the HTML report.
    #[serde(default)]
    pub report_s: f64,
    /// Everything in `train` (excluding reading the input).
    pub total_s: f64,
}

/// The model choice: both candidates' cross-validated scores and the decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelChoiceReport {
    /// What was asked for (`auto`, `tree` or `boosted`).
    pub requested: crate::model::ModelChoice,
    /// What ships: `tree` or `boosted`.
    pub chosen: String,
    /// Why.
    pub reason: String,
    /// Mean validation log loss of the best single tree (uncalibrated leaf rates).
    pub tree_cv_log_loss: Option<f64>,
    /// Mean validation log loss of the best boosted candidate (uncalibrated σ(margin)).
    pub boosted_cv_log_loss: Option<f64>,
    /// Cross-validation table of the boosted candidates.
    pub boosted_cv_table: Vec<crate::model::boost::BoostCvRow>,
    /// The shipped boosted model's settings (`rounds` = trees), when boosted.
    pub boosted: Option<crate::model::boost::BoostParams>,
}

/// Size of the tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeSummary {
    /// Nodes.
    pub nodes: usize,
    /// Leaves.
    pub leaves: usize,
    /// Depth.
    pub depth: usize,
}

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
    pub(super) holdout_details: Option<super::holdout::HoldoutDetails>,
    /// Importance per input field.
    pub(super) importance: Vec<Importance>,
    /// Importance per encoded column.
    pub(super) importance_encoded: Vec<Importance>,
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
        tree: TreeSummary {
            nodes: model.tree.nodes.len(),
            leaves: model.tree.n_leaves(),
            depth: model.tree.depth(),
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
        segments: f.segments,
        data_quality: data.quality.clone(),
        timings: f.timings,
    }
}

/// A short human-readable summary of a card.
pub fn summary(card: &ModelCard) -> String {
    let boosted = card.model_choice.as_ref().and_then(|c| c.boosted);
    let shape = match boosted {
        Some(b) => format!(
            "boosted trees: {} rounds, depth {}, learning rate {}",
            b.rounds, b.max_depth, b.learning_rate
        ),
        None => format!(
            "{} learner, depth {}, min leaf {}, {} leaves",
            card.learner,
            card.hyper_parameters.max_depth,
            card.hyper_parameters.min_samples_leaf,
            card.tree.leaves
        ),
    };
    let mut s = format!(
        "model '{}' version {} — {}, calibration {}, threshold {:.3} ({})\n",
        card.name,
        card.version,
        shape,
        card.calibration.method,
        card.threshold.threshold,
        card.threshold.objective
    );
    if let Some(c) = &card.model_choice {
        s.push_str(&format!(
            "model choice ({}): {} — {}\n",
            c.requested, c.chosen, c.reason
        ));
    }
    if let Some(h) = &card.holdout {
        s.push_str(&format!(
            "holdout ({} rows): ROC-AUC {:.4}  PR-AUC {:.4}  log loss {:.4}  Brier {:.4}  ECE {:.4}  F1 {:.3}  top-decile lift {:.2}  caught top 10%/20%: {:.1}%/{:.1}%\n",
            h.rows,
            h.roc_auc,
            h.pr_auc,
            h.log_loss,
            h.brier,
            h.ece,
            h.f1,
            h.top_decile_lift,
            100.0 * h.capture_top_10pct,
            100.0 * h.capture_top_20pct
        ));
    }
    if let Some(sr) = &card.segments {
        s.push_str(&format!("segments (k = {}):\n", sr.k));
        for p in &sr.segments {
            s.push_str(&format!(
                "  {:>2} {:<44} {:>6.1}% of customers, churn {:>5.1}%{}\n",
                p.id,
                p.name,
                100.0 * p.share,
                100.0 * p.churn_rate,
                p.revenue_share
                    .map_or(String::new(), |r| format!(", revenue {:.1}%", 100.0 * r))
            ));
        }
    }
    let top: Vec<String> = card
        .importance
        .iter()
        .take(5)
        .filter(|i| i.importance > 0.0)
        .map(|i| format!("{} {:.2}", i.name, i.importance))
        .collect();
    s.push_str(&format!("top features: {}\n", top.join(", ")));
    if let Some(mix) = card
        .holdout_details
        .as_ref()
        .and_then(|d| d.playbook.as_ref())
    {
        let top: Vec<String> = mix
            .actions
            .iter()
            .filter(|a| a.customers > 0)
            .take(4)
            .map(|a| format!("{} {:.0}%", a.action, 100.0 * a.share))
            .collect();
        s.push_str(&format!(
            "playbook '{}' on the holdout: contact {} customers; top actions {}\n",
            mix.playbook,
            mix.contacted,
            top.join(", ")
        ));
        for w in &mix.warnings {
            s.push_str(&format!("warning: {w}\n"));
        }
    }
    s
}
