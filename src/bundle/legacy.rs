//! Earlier bundle formats this build still reads. Each is a frozen copy of the payload layout
//! of its time (bincode is positional, so a field added anywhere changes the layout) and
//! converts into the current [`Bundle`].

use super::Bundle;
use crate::model::calibrate::Calibrator;
use crate::model::tree::{Tree, TreeParams};
use crate::model::{LeafScore, Model, ModelRecord};
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
    playbook: Option<crate::playbook::Playbook>,
    transactions: Option<crate::ingest::TransactionSpec>,
    profile: Option<super::profile::Profile>,
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
            playbook: b.playbook,
            transactions: b.transactions,
            profile: b.profile,
        })
    }
}
