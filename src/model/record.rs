//! The stored layout of a [`Model`] (bundle format 6). bincode is positional, so this layout is
//! frozen: a single tree with its node scores, and boosted trees beside a one-node tree that
//! holds the training base rate and the importances. The in-memory [`Predictor`] converts from
//! and to it, so bundles stay byte-identical while no code sees a stub tree.

use super::boost;
use super::calibrate::Calibrator;
use super::predictor::{node_scores, Boosted, Model, Predictor, TreeModel};
use super::tree::{Tree, TreeParams};
use super::{LeafScore, ScoreBin};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Learner name stored in the base tree of a boosted model.
const BOOSTED_LEARNER: &str = "gbdt";

/// A [`Model`] as stored.
#[derive(Serialize, Deserialize)]
pub struct ModelRecord {
    tree: Tree,
    params: TreeParams,
    calibrator: Calibrator,
    threshold: f64,
    scores: Vec<LeafScore>,
    boosted: Option<BoostedRecord>,
}

/// The boosted part of a [`ModelRecord`].
#[derive(Serialize, Deserialize)]
struct BoostedRecord {
    ensemble: boost::Ensemble,
    bins: Vec<ScoreBin>,
}

impl ModelRecord {
    /// A single-tree record with its stored node scores (older formats, see `bundle::legacy`).
    pub fn single_tree(
        tree: Tree,
        params: TreeParams,
        calibrator: Calibrator,
        threshold: f64,
        scores: Vec<LeafScore>,
    ) -> ModelRecord {
        ModelRecord {
            tree,
            params,
            calibrator,
            threshold,
            scores,
            boosted: None,
        }
    }
}

impl From<Model> for ModelRecord {
    fn from(m: Model) -> ModelRecord {
        let (tree, scores, boosted) = match m.predictor {
            Predictor::Tree(t) => (t.tree, t.scores, None),
            Predictor::Boosted(b) => {
                let tree = Tree {
                    nodes: vec![b.base],
                    learner: BOOSTED_LEARNER.into(),
                    importances: b.importances,
                };
                let scores = node_scores(&tree, &m.calibrator);
                let boosted = BoostedRecord {
                    ensemble: b.ensemble,
                    bins: b.bins,
                };
                (tree, scores, Some(boosted))
            }
        };
        ModelRecord {
            tree,
            params: m.params,
            calibrator: m.calibrator,
            threshold: m.threshold,
            scores,
            boosted,
        }
    }
}

impl TryFrom<ModelRecord> for Model {
    type Error = String;

    fn try_from(r: ModelRecord) -> Result<Model, String> {
        let predictor = match r.boosted {
            None => Predictor::Tree(TreeModel {
                tree: r.tree,
                scores: r.scores,
            }),
            Some(b) => {
                let [base]: [_; 1] = r.tree.nodes.try_into().map_err(|n: Vec<_>| {
                    format!("a boosted model keeps one base node, found {}", n.len())
                })?;
                Predictor::Boosted(Boosted {
                    ensemble: b.ensemble,
                    bins: b.bins,
                    base,
                    importances: r.tree.importances,
                })
            }
        };
        Ok(Model {
            predictor,
            params: r.params,
            calibrator: r.calibrator,
            threshold: r.threshold,
        })
    }
}

impl Serialize for Model {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ModelRecord::from(self.clone()).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Model {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Model, D::Error> {
        Model::try_from(ModelRecord::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}
