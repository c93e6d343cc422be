//! Earlier bundle formats this build still reads. Each is a frozen copy of the payload layout
//! of its time (bincode is positional, so a field added anywhere changes the layout) and
//! converts into the current [`Bundle`].

use super::Bundle;
use crate::model::calibrate::Calibrator;
use crate::model::tree::{Tree, TreeParams};
use crate::model::{LeafScore, Model, ModelRecord};
use crate::playbook::{LearningConfig, Playbook, PlaybookFile, ValueConfig};
use serde::Deserialize;

/// The model of format 5: a single tree (no boosted part).
#[derive(Deserialize)]
struct ModelV5 {
    tree: Tree,
    params: TreeParams,
    calibrator: Calibrator,
    threshold: f64,
    scores: Vec<LeafScore>,
}

/// The bundle of format 5 (software before boosted trees).
#[derive(Deserialize)]
pub(super) struct BundleV5 {
    name: String,
    software_version: String,
    mode: crate::ingest::DataMode,
    id_column: Option<String>,
    label_column: String,
    positive_value: String,
    encoder: crate::features::Encoder,
    model: ModelV5,
    training_rows: usize,
    training_churn_rate: f64,
    segments: Option<crate::segment::SegmentModel>,
    playbook: Option<PlaybookV6>,
    transactions: Option<crate::ingest::TransactionSpec>,
    profile: Option<super::profile::Profile>,
}

/// The playbook's `[learning]` table of formats 5 and 6 (before exploration).
#[derive(Deserialize)]
struct LearningV6 {
    prior_strength: f64,
    min_arm: u64,
}

/// The playbook file of formats 5 and 6.
#[derive(Deserialize)]
struct PlaybookFileV6 {
    name: String,
    experiment: String,
    holdout_percent: f64,
    top_n: usize,
    actionable: Vec<String>,
    never_levers: Vec<String>,
    lever_min_support: u32,
    suppress_action: Option<String>,
    cost_caps: std::collections::BTreeMap<String, f64>,
    value: ValueConfig,
    risk_bands: crate::playbook::RiskBands,
    learning: LearningV6,
    actions: Vec<crate::playbook::Action>,
    rules: Vec<crate::playbook::Rule>,
}

/// The compiled playbook of formats 5 and 6. It becomes today's playbook with exploration off
/// (`[learning] explore = 0`): a bundle trained before exploration keeps deciding as it did;
/// retraining (or a playbook override) turns it on.
#[derive(Deserialize)]
struct PlaybookV6 {
    file: PlaybookFileV6,
    predicates: Vec<Vec<crate::playbook::Predicate>>,
    value_rpn: Option<Vec<crate::playbook::Tok>>,
    actionable_inputs: Vec<usize>,
}

impl From<PlaybookV6> for Playbook {
    fn from(p: PlaybookV6) -> Playbook {
        let f = p.file;
        Playbook {
            file: PlaybookFile {
                name: f.name,
                experiment: f.experiment,
                holdout_percent: f.holdout_percent,
                top_n: f.top_n,
                actionable: f.actionable,
                never_levers: f.never_levers,
                lever_min_support: f.lever_min_support,
                suppress_action: f.suppress_action,
                cost_caps: f.cost_caps,
                value: f.value,
                risk_bands: f.risk_bands,
                learning: LearningConfig {
                    prior_strength: f.learning.prior_strength,
                    min_arm: f.learning.min_arm,
                    explore: 0.0,
                },
                actions: f.actions,
                rules: f.rules,
                text: Default::default(),
            },
            predicates: p.predicates,
            value_rpn: p.value_rpn,
            actionable_inputs: p.actionable_inputs,
            learned: Vec::new(),
        }
    }
}

/// The bundle of format 6 (software before exploration): today's layout but for the
/// playbook's `[learning]` table.
#[derive(Deserialize)]
pub(super) struct BundleV6 {
    name: String,
    software_version: String,
    mode: crate::ingest::DataMode,
    id_column: Option<String>,
    label_column: String,
    positive_value: String,
    encoder: crate::features::Encoder,
    model: Model,
    training_rows: usize,
    training_churn_rate: f64,
    segments: Option<crate::segment::SegmentModel>,
    playbook: Option<PlaybookV6>,
    transactions: Option<crate::ingest::TransactionSpec>,
    profile: Option<super::profile::Profile>,
}

impl From<BundleV6> for Bundle {
    fn from(b: BundleV6) -> Bundle {
        Bundle {
            name: b.name,
            software_version: b.software_version,
            mode: b.mode,
            id_column: b.id_column,
            label_column: b.label_column,
            positive_value: b.positive_value,
            encoder: b.encoder,
            model: b.model,
            training_rows: b.training_rows,
            training_churn_rate: b.training_churn_rate,
            segments: b.segments,
            playbook: b.playbook.map(Playbook::from),
            transactions: b.transactions,
            profile: b.profile,
        }
    }
}

impl TryFrom<BundleV5> for Bundle {
    type Error = String;

    fn try_from(b: BundleV5) -> Result<Bundle, String> {
        let m = b.model;
        let record =
            ModelRecord::single_tree(m.tree, m.params, m.calibrator, m.threshold, m.scores);
        Ok(Bundle {
            name: b.name,
            software_version: b.software_version,
            mode: b.mode,
            id_column: b.id_column,
            label_column: b.label_column,
            positive_value: b.positive_value,
            encoder: b.encoder,
            model: Model::try_from(record)?,
            training_rows: b.training_rows,
            training_churn_rate: b.training_churn_rate,
            segments: b.segments,
            playbook: b.playbook.map(Playbook::from),
            transactions: b.transactions,
            profile: b.profile,
        })
    }
}
