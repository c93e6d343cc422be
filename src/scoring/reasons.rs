//! Reasons: the steps of a decision path in the input's own terms (`Contract is Month-to-month`,
//! `tenure ≤ 5.5`) with the change in risk each step brings. Built once per tree edge so scoring
//! formats no text.

use super::Scorer;
use crate::features::ColumnRole;
use crate::ingest::FeatureKind;
use serde::{Deserialize, Serialize};

/// One step of a decision path, in the input's own terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// Readable condition, e.g. `Contract is Month-to-month` or `tenure ≤ 5.5`.
    pub condition: String,
    /// Input field tested.
    pub field: String,
    /// Change in calibrated churn probability from the parent node to the child.
    pub effect: f64,
}

impl Scorer {
    /// The reason for reaching each node from its parent (`None` for the root).
    pub(super) fn build_edges(&self) -> Vec<Option<Reason>> {
        let nodes = &self.bundle.model.tree.nodes;
        let mut edges = vec![None; nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            if !n.is_leaf() {
                edges[n.left as usize] = Some(self.reason_step(i, n.left as usize));
                edges[n.right as usize] = Some(self.reason_step(i, n.right as usize));
            }
        }
        edges
    }

    fn edge(&self, child: usize) -> &Reason {
        self.edges[child]
            .as_ref()
            .expect("every non-root node has a parent edge")
    }

    /// The step from `parent` to `child` of a decision path as a reason.
    fn reason_step(&self, parent: usize, child: usize) -> Reason {
        let m = &self.bundle.model;
        let node = &m.tree.nodes[parent];
        let left = node.left as usize == child;
        let (condition, field) = self.describe(node.feature as usize, node.threshold, left);
        Reason {
            condition,
            field,
            effect: m.scores[child].p - m.scores[parent].p,
        }
    }

    /// The decision path of an encoded row as readable reasons, root first.
    pub fn reasons(&self, row: &[f64]) -> Vec<&Reason> {
        let path = self.bundle.model.tree.path(row);
        path[1..].iter().map(|&c| self.edge(c)).collect()
    }

    /// The `n` decision-path steps that raised the risk most, highest first.
    pub fn top_reasons(&self, row: &[f64], n: usize) -> Vec<&Reason> {
        let mut steps = self.reasons(row);
        // stable: equal effects keep root-first order
        steps.sort_by(|a, b| b.effect.total_cmp(&a.effect));
        steps.truncate(n);
        steps
    }

    /// Readable form of `column <= threshold` (left) or its negation (right).
    pub fn describe(&self, column: usize, threshold: f64, left: bool) -> (String, String) {
        let enc = &self.bundle.encoder;
        let col = &enc.columns[column];
        let input = &enc.inputs[col.input];
        let name = input.name.clone();
        let text = match (&col.role, &input.kind) {
            (
                ColumnRole::Value,
                FeatureKind::Boolean {
                    true_token,
                    false_token,
                },
            ) => {
                format!("{name} is {}", if left { false_token } else { true_token })
            }
            (ColumnRole::Value, _) => format!(
                "{name} {} {}",
                if left { "≤" } else { ">" },
                crate::util::fmt_num(threshold)
            ),
            (ColumnRole::Missing, _) => {
                format!("{name} is {}", if left { "present" } else { "missing" })
            }
            (ColumnRole::Level { level }, _) => {
                format!("{name} is {}{level}", if left { "not " } else { "" })
            }
            (ColumnRole::Other, _) => format!(
                "{name} is {}",
                if left {
                    "a common value"
                } else {
                    "a rare or unseen value"
                }
            ),
        };
        (text, name)
    }
}
