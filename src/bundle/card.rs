//! The model card (`model_card.json`): what a trained bundle is, how it was chosen and how it
//! did on the holdout. The types live beside the bundle they describe, so the report and the
//! server read a card without depending on the training pipeline that fills it
//! (`train::card` builds it).

use crate::ingest::QualityReport;
use crate::model::calibrate::CalibrationChoice;
use crate::model::metrics::{Curves, Evaluation};
use crate::model::tree::TreeParams;
use crate::model::{CvRow, Economics, ThresholdChoice};
use serde::{Deserialize, Serialize};

/// Importance of one input column (sum over its encoded columns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Importance {
    /// Input field or encoded column.
    pub name: String,
    /// Share of the total weighted impurity decrease.
    pub importance: f64,
}

/// The SHAP values behind a boosted model's summary plot: for its most important inputs, each
/// sampled training customer's contribution and how high their value is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapSummary {
    /// Training customers sampled (evenly spaced in row order).
    pub customers: usize,
    /// The inputs, most important first.
    pub inputs: Vec<ShapInput>,
}

/// One input of a [`ShapSummary`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapInput {
    /// Input field.
    pub name: String,
    /// Per sampled customer: the input's SHAP contribution in log-odds (summed over its encoded
    /// columns).
    pub shap: Vec<f64>,
    /// Per sampled customer: the rank of their value among the sample, 0 (lowest) to 1
    /// (highest); empty for categorical inputs, whose levels have no order.
    pub value_rank: Vec<f64>,
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
    pub holdout_details: Option<HoldoutDetails>,
    /// Importance per input field.
    pub importance: Vec<Importance>,
    /// Importance per encoded column.
    pub importance_encoded: Vec<Importance>,
    /// Boosted models: sampled customers' SHAP values for the most important inputs (the
    /// report's summary plot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shap_summary: Option<ShapSummary>,
    /// Segments, RFM classes and lifecycle stages.
    pub segments: Option<crate::segment::SegmentReport>,
    /// Data-quality report.
    pub data_quality: QualityReport,
    /// Wall-clock seconds per training stage (not part of the bundle, so retrains stay
    /// byte-identical).
    pub timings: Timings,
    /// The versions this one descends from, nearest first: the previous model it was trained
    /// to succeed (`--previous`; with `--from-store` the champion whose predictions it learned
    /// from), that one's previous, and so on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lineage: Vec<Ancestor>,
}

/// One version in a model's lineage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ancestor {
    /// Its content version.
    pub version: String,
    /// When it was trained.
    pub created_at: String,
    /// What it was trained on.
    pub data_source: String,
    /// Its hold-out AUC, if it had a hold-out.
    pub holdout_auc: Option<f64>,
}

/// The card in the version directory `dir`, if it is there and parses.
pub fn read(dir: &std::path::Path) -> Option<ModelCard> {
    let bytes = std::fs::read(dir.join(crate::bundle::CARD_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The lineage of a model trained to succeed the model in `previous` (a version directory
/// with its card): that version, then its own lineage as its card records it (at most 20).
pub fn lineage_of(previous: &std::path::Path) -> Vec<Ancestor> {
    let Some(card) = read(previous) else {
        return Vec::new();
    };
    let me = Ancestor {
        version: card.version.clone(),
        created_at: card.created_at.clone(),
        data_source: card.data_source.clone(),
        holdout_auc: card.holdout.as_ref().map(|h| h.roc_auc),
    };
    std::iter::once(me).chain(card.lineage).take(20).collect()
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
    /// What ships.
    pub chosen: crate::model::ModelKind,
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

/// One action of the playbook summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionShare {
    /// Action id (`(control group)` for customers held out).
    pub action: String,
    /// Cost per contact.
    pub cost: f64,
    /// Save rate.
    pub save_rate: f64,
    /// Holdout customers for whom it is the top recommendation.
    pub customers: usize,
    /// Their share of the holdout.
    pub share: f64,
    /// Holdout customers who get it among their recommendations (any position).
    #[serde(default)]
    pub recommended: usize,
}

/// How the playbook treats the holdout customers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybookMix {
    /// Playbook name.
    pub playbook: String,
    /// Top actions, most frequent first.
    pub actions: Vec<ActionShare>,
    /// Holdout customers the `contact` decision selects.
    pub contacted: usize,
    /// How customer value is computed (`expression …` or `constant …`).
    pub value: String,
    /// Problems a user should fix, each with how.
    pub warnings: Vec<String>,
    /// When no playbook was given: what the inferred one decided and why (the decisions
    /// `churn-train init` prints).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inferred: Vec<String>,
}

/// Holdout details for the report (absent without holdout rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutDetails {
    /// ROC, PR, gains and reliability.
    pub curves: Curves,
    /// Expected profit per customer by threshold `[threshold, profit]` (with economics).
    pub profit: Option<Vec<[f64; 2]>>,
    /// The playbook's top actions on the holdout.
    pub playbook: Option<PlaybookMix>,
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
        if !mix.inferred.is_empty() {
            s.push_str("playbook inferred from the data (churn-train init writes it to edit):\n");
            for d in &mix.inferred {
                s.push_str(&format!("  {d}\n"));
            }
        }
    }
    s
}
