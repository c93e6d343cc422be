//! Reasons: each input's net contribution to a customer's risk along the decision path, in the
//! input's own terms (`Contract is Month-to-month`, `5.5 < tenure ≤ 30.5`).
//!
//! A single tree's path from the root (the training base rate) to the leaf changes the risk
//! step by step; each step belongs to the input it tests. An input's contribution is the sum
//! of its steps, so an input tested twice is counted once, and the contributions plus the base
//! rate equal the leaf's risk before calibration. Inputs that raised the risk are the
//! `reasons`; those that lowered it are `protective`. Every path ends in a leaf, so both lists
//! are built once per leaf and scoring formats no text.
//!
//! Boosted trees are explained per row by exact TreeSHAP ([`crate::model::shap`]): each
//! encoded column's Shapley contribution to the margin, summed over the columns of its input
//! (one-hot levels folded back), so the effects are in log-odds and add up, with the expected
//! margin, to the row's margin.

use super::Scorer;
use crate::features::{ColumnRole, Encoder, InputEncoding};
use crate::ingest::FeatureKind;
use crate::model::shap::shap_values;
use crate::model::tree::Tree;
use crate::model::Predictor;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// One input's net contribution to a customer's risk, in the input's own terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// Readable condition, e.g. `Contract is Month-to-month` or `5.5 < tenure ≤ 30.5`.
    pub condition: String,
    /// Input field.
    pub field: String,
    /// Net change in churn risk (before calibration) from the steps of the decision path that
    /// test this input: positive raised the risk, negative lowered it.
    pub effect: f64,
}

/// The explanation of one leaf: the base rate and every input's net contribution.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Explanation {
    /// Churn risk at the root (the training base rate, before calibration).
    pub base_rate: f64,
    /// Inputs that raised the risk, largest effect first.
    pub raised: Vec<Reason>,
    /// Inputs that lowered the risk, most negative first.
    pub lowered: Vec<Reason>,
}

impl Explanation {
    /// The `n` inputs that raised the risk most, largest first.
    pub fn top_raised(&self, n: usize) -> Vec<&Reason> {
        self.raised.iter().take(n).collect()
    }

    /// The `n` inputs that lowered the risk most, most negative first.
    pub fn top_lowered(&self, n: usize) -> Vec<&Reason> {
        self.lowered.iter().take(n).collect()
    }
}

/// One step of a path that tests an input: encoded column, threshold, went left.
type Step = (usize, f64, bool);

/// The explanation of every leaf (empty for internal nodes), built by one walk of the tree.
pub(super) fn explain_leaves(tree: &Tree, enc: &Encoder) -> Vec<Explanation> {
    let nodes = &tree.nodes;
    let mut out = vec![Explanation::default(); nodes.len()];
    if nodes.is_empty() {
        return out;
    }
    // (node, path of (parent, child) edges to it)
    let mut stack: Vec<(usize, Vec<(usize, usize)>)> = vec![(0, Vec::new())];
    while let Some((i, path)) = stack.pop() {
        let n = &nodes[i];
        if n.is_leaf() {
            out[i] = explain_path(tree, enc, &path);
            continue;
        }
        for child in [n.left as usize, n.right as usize] {
            let mut p = path.clone();
            p.push((i, child));
            stack.push((child, p));
        }
    }
    out
}

/// Group the path's steps by input, sum their changes and describe each input's condition.
fn explain_path(tree: &Tree, enc: &Encoder, path: &[(usize, usize)]) -> Explanation {
    let nodes = &tree.nodes;
    // per input, in first-tested order: (input, steps, effect)
    let mut per_input: Vec<(usize, Vec<Step>, f64)> = Vec::new();
    for &(parent, child) in path {
        let node = &nodes[parent];
        let col = node.feature as usize;
        let input = enc.columns[col].input;
        let step = (col, node.threshold, node.left as usize == child);
        let change = nodes[child].value - node.value;
        match per_input.iter_mut().find(|(i, _, _)| *i == input) {
            Some(e) => {
                e.1.push(step);
                e.2 += change;
            }
            None => per_input.push((input, vec![step], change)),
        }
    }
    let mut raised = Vec::new();
    let mut lowered = Vec::new();
    for (input, steps, effect) in per_input {
        let reason = Reason {
            condition: describe_input(enc, input, &steps),
            field: enc.inputs[input].name.clone(),
            effect,
        };
        if effect > 0.0 {
            raised.push(reason);
        } else if effect < 0.0 {
            lowered.push(reason);
        }
    }
    // stable: equal effects keep root-first order
    raised.sort_by(|a, b| b.effect.total_cmp(&a.effect));
    lowered.sort_by(|a, b| a.effect.total_cmp(&b.effect));
    Explanation {
        base_rate: nodes[0].value,
        raised,
        lowered,
    }
}

/// The condition of one tree edge, `column <= threshold` (left) or its negation (right), in the
/// input's own terms (`Contract is Month-to-month`, `tenure ≤ 5.5`).
pub fn edge_condition(enc: &Encoder, column: usize, threshold: f64, left: bool) -> String {
    describe_input(enc, enc.columns[column].input, &[(column, threshold, left)])
}

/// What the steps of a path say about one input, as one readable condition.
fn describe_input(enc: &Encoder, input: usize, steps: &[Step]) -> String {
    let spec = &enc.inputs[input];
    let name = &spec.name;
    let mut lower: Option<f64> = None; // value > lower
    let mut upper: Option<f64> = None; // value ≤ upper
    let mut missing: Option<bool> = None;
    let mut is_level: Option<&str> = None;
    let mut not_levels: Vec<&str> = Vec::new();
    let mut other: Option<bool> = None;
    let mut boolean: Option<bool> = None;
    for &(col, t, left) in steps {
        match (&enc.columns[col].role, &spec.kind) {
            (ColumnRole::Value, FeatureKind::Boolean { .. }) => boolean = Some(!left),
            (ColumnRole::Value, _) => {
                if left {
                    upper = Some(upper.map_or(t, |u| u.min(t)));
                } else {
                    lower = Some(lower.map_or(t, |l| l.max(t)));
                }
            }
            (ColumnRole::Missing, _) => missing = Some(!left),
            (ColumnRole::Level { level }, _) => {
                if left {
                    not_levels.push(level);
                } else {
                    is_level = Some(level);
                }
            }
            (ColumnRole::Other, _) => other = Some(!left),
        }
    }
    if missing == Some(true) {
        return format!("{name} is missing");
    }
    if let Some(level) = is_level {
        return format!("{name} is {level}");
    }
    if other == Some(true) {
        return format!("{name} is a rare or unseen value");
    }
    if let (
        Some(b),
        FeatureKind::Boolean {
            true_token,
            false_token,
        },
    ) = (boolean, &spec.kind)
    {
        return format!("{name} is {}", if b { true_token } else { false_token });
    }
    let num = crate::util::fmt_num;
    match (lower, upper) {
        (Some(l), Some(u)) => return format!("{} < {name} ≤ {}", num(l), num(u)),
        (Some(l), None) => return format!("{name} > {}", num(l)),
        (None, Some(u)) => return format!("{name} ≤ {}", num(u)),
        (None, None) => {}
    }
    if !not_levels.is_empty() {
        not_levels.sort_unstable();
        let list = match not_levels.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => not_levels[0].to_string(),
        };
        return format!("{name} is not {list}");
    }
    if other == Some(false) {
        return format!("{name} is a common value");
    }
    format!("{name} is present")
}

/// The explanation of one row of a boosted model: its SHAP values `phi` (per encoded column,
/// margin units) summed per input, each input described by the row's own value; at most `n`
/// reasons each way (only those are described).
pub(super) fn explain_shap(
    enc: &Encoder,
    row: &[f64],
    phi: &[f64],
    base: f64,
    n: usize,
) -> Explanation {
    let mut per_input = vec![0.0; enc.inputs.len()];
    for (c, v) in phi.iter().enumerate() {
        per_input[enc.columns[c].input] += v;
    }
    let mut raised: Vec<(usize, f64)> = Vec::new();
    let mut lowered: Vec<(usize, f64)> = Vec::new();
    for (input, &effect) in per_input.iter().enumerate() {
        if effect > 0.0 {
            raised.push((input, effect));
        } else if effect < 0.0 {
            lowered.push((input, effect));
        }
    }
    // stable: equal effects keep input order
    raised.sort_by(|a, b| b.1.total_cmp(&a.1));
    lowered.sort_by(|a, b| a.1.total_cmp(&b.1));
    let reasons = |v: Vec<(usize, f64)>| -> Vec<Reason> {
        v.into_iter()
            .take(n)
            .map(|(input, effect)| Reason {
                condition: describe_value(enc, input, row),
                field: enc.inputs[input].name.clone(),
                effect,
            })
            .collect()
    };
    Explanation {
        base_rate: base,
        raised: reasons(raised),
        lowered: reasons(lowered),
    }
}

/// An input's value in an encoded row, as a condition (`Contract is Month-to-month`,
/// `tenure = 5`, `TotalCharges is missing`).
fn describe_value(enc: &Encoder, input: usize, row: &[f64]) -> String {
    let spec = &enc.inputs[input];
    let name = &spec.name;
    match &spec.encoding {
        InputEncoding::Numeric {
            column,
            missing_column,
            ..
        } => {
            if missing_column.is_some_and(|m| row[m] != 0.0) {
                return format!("{name} is missing");
            }
            match &spec.kind {
                FeatureKind::Boolean {
                    true_token,
                    false_token,
                } => format!(
                    "{name} is {}",
                    if row[*column] != 0.0 {
                        true_token
                    } else {
                        false_token
                    }
                ),
                _ => format!("{name} = {}", crate::util::fmt_num(row[*column])),
            }
        }
        InputEncoding::OneHot {
            levels,
            first_column,
            ..
        } => match (0..levels.len()).find(|&i| row[first_column + i] != 0.0) {
            Some(i) => format!("{name} is {}", levels[i]),
            None => format!("{name} is a rare or unseen value"),
        },
    }
}

impl Scorer {
    /// The explanation of an encoded row: its leaf's (single tree, borrowed) or its TreeSHAP
    /// contributions (boosted trees, in log-odds; computed per row).
    pub fn explain(&self, row: &[f64]) -> Cow<'_, Explanation> {
        let leaf = match &self.bundle.model.predictor {
            Predictor::Tree(t) => t.tree.leaf_of(row),
            Predictor::Boosted(_) => 0,
        };
        self.explain_with_leaf(row, leaf)
    }

    /// [`Scorer::explain`] when the row's [`Prediction::leaf`](crate::model::Prediction::leaf)
    /// is known.
    pub fn explain_with_leaf(&self, row: &[f64], leaf: usize) -> Cow<'_, Explanation> {
        self.explain_top(row, leaf, usize::MAX)
    }

    /// The explanation with at most `n` reasons each way (a boosted model then describes only
    /// those inputs).
    fn explain_top(&self, row: &[f64], leaf: usize, n: usize) -> Cow<'_, Explanation> {
        match &self.bundle.model.predictor {
            Predictor::Boosted(b) => {
                let (phi, base) = match &self.shap {
                    Some(t) => (
                        t.shap_values(&b.ensemble, row, row.len()),
                        t.expected_margin(),
                    ),
                    None => (
                        shap_values(&b.ensemble, row, row.len()),
                        b.ensemble.expected_margin(),
                    ),
                };
                Cow::Owned(explain_shap(&self.bundle.encoder, row, &phi, base, n))
            }
            Predictor::Tree(_) => Cow::Borrowed(&self.explanations[leaf]),
        }
    }

    /// The `n` inputs that raised the risk most and the `n` that lowered it most.
    pub fn top_reasons_with_leaf(
        &self,
        row: &[f64],
        leaf: usize,
        n: usize,
    ) -> (Vec<Cow<'_, Reason>>, Vec<Cow<'_, Reason>>) {
        match self.explain_top(row, leaf, n) {
            Cow::Borrowed(ex) => (
                ex.raised.iter().take(n).map(Cow::Borrowed).collect(),
                ex.lowered.iter().take(n).map(Cow::Borrowed).collect(),
            ),
            Cow::Owned(ex) => (
                ex.raised.into_iter().take(n).map(Cow::Owned).collect(),
                ex.lowered.into_iter().take(n).map(Cow::Owned).collect(),
            ),
        }
    }

    /// Every input that raised the risk of an encoded row, largest effect first.
    pub fn reasons(&self, row: &[f64]) -> Vec<Reason> {
        self.explain(row).raised.clone()
    }

    /// The `n` inputs that raised the risk most, largest first (only risk-raising inputs).
    pub fn top_reasons(&self, row: &[f64], n: usize) -> Vec<Reason> {
        self.explain(row).raised.iter().take(n).cloned().collect()
    }

    /// The `n` inputs that lowered the risk most, most negative first.
    pub fn protective(&self, row: &[f64], n: usize) -> Vec<Reason> {
        self.explain(row).lowered.iter().take(n).cloned().collect()
    }
}
