//! Structural validation of a decoded bundle.
//!
//! The checksum only proves the payload was not damaged by accident: anyone who can write the
//! file can recompute an unkeyed sha256. Every index the scorer follows is therefore checked here,
//! once per load, so that scoring can index without checks and never panics or loops on a hostile
//! or hand-edited bundle: tree children point forward (which makes the tree acyclic and every walk
//! end at a leaf), features and columns are in range, probabilities lie in [0, 1], segment,
//! RFM and lifecycle columns exist, and the stored playbook is exactly what compiling its file
//! against this encoder gives.

use super::Bundle;
use crate::features::{ColumnRole, Encoder, InputEncoding};
use crate::model::calibrate::Calibrator;
use crate::model::tree::{Node, LEAF};
use crate::model::{Boosted, Predictor, TreeModel};

/// The first structural problem found, as a sentence naming the part of the bundle.
pub fn validate(b: &Bundle) -> Result<(), String> {
    encoder(&b.encoder)?;
    let width = b.encoder.width();
    match &b.model.predictor {
        Predictor::Tree(t) => tree(t, width)?,
        Predictor::Boosted(bo) => boosted(bo, width)?,
    }
    calibration(b)?;
    if let Some(s) = &b.segments {
        segments(s, width)?;
    }
    if let Some(p) = &b.playbook {
        let again = crate::playbook::Playbook::compile(p.file.clone(), &b.encoder, "bundle")
            .map_err(|e| format!("stored playbook does not fit the model: {e}"))?;
        if &again != p {
            return Err("stored playbook does not match its compiled form".into());
        }
    }
    Ok(())
}

fn column(c: usize, width: usize, place: impl Fn() -> String) -> Result<(), String> {
    if c < width {
        Ok(())
    } else {
        Err(format!(
            "{} refers to encoded column {c}, but the encoder has {width} columns",
            place()
        ))
    }
}

fn encoder(enc: &Encoder) -> Result<(), String> {
    let width = enc.width();
    if enc.inputs.is_empty() || width == 0 {
        return Err("encoder has no inputs".into());
    }
    for (i, spec) in enc.inputs.iter().enumerate() {
        let place = || format!("input {i} ('{}')", spec.name);
        match &spec.encoding {
            InputEncoding::Numeric {
                median,
                column: c,
                missing_column,
            } => {
                if !median.is_finite() {
                    return Err(format!("{} has a non-finite median", place()));
                }
                column(*c, width, place)?;
                if let Some(m) = missing_column {
                    column(*m, width, place)?;
                }
            }
            InputEncoding::OneHot {
                levels,
                first_column,
                other_column,
                ..
            } => {
                let end = first_column.checked_add(levels.len());
                if end.is_none_or(|e| e > width) {
                    return Err(format!(
                        "{} has {} levels from column {first_column}, past the {width} columns",
                        place(),
                        levels.len()
                    ));
                }
                column(*other_column, width, place)?;
                if levels.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(format!(
                        "{} has levels that are not sorted and unique",
                        place()
                    ));
                }
            }
        }
    }
    for (c, col) in enc.columns.iter().enumerate() {
        if col.input >= enc.inputs.len() {
            return Err(format!(
                "encoded column {c} ('{}') refers to input {}, but there are {} inputs",
                col.name,
                col.input,
                enc.inputs.len()
            ));
        }
        if let (ColumnRole::Level { .. }, InputEncoding::Numeric { .. }) =
            (&col.role, &enc.inputs[col.input].encoding)
        {
            return Err(format!(
                "encoded column {c} is a level of numeric input {}",
                col.input
            ));
        }
    }
    enc.support.check(enc)
}

fn probability(p: f64) -> bool {
    (0.0..=1.0).contains(&p)
}

fn tree(m: &TreeModel, width: usize) -> Result<(), String> {
    let nodes = &m.tree.nodes;
    if nodes.is_empty() {
        return Err("tree has no nodes".into());
    }
    if m.scores.len() != nodes.len() {
        return Err(format!(
            "tree has {} nodes but {} node scores",
            nodes.len(),
            m.scores.len()
        ));
    }
    let mut has_parent = vec![false; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        let place = || format!("tree node {i}");
        node_stats(n, place)?;
        let s = m.scores[i];
        let ordered = s.low <= s.p && s.p <= s.high;
        if !(probability(s.p) && probability(s.low) && probability(s.high) && ordered) {
            return Err(format!(
                "{} has score {} in [{}, {}]: not ordered probabilities",
                place(),
                s.p,
                s.low,
                s.high
            ));
        }
        let node = (n.feature, n.threshold, n.left, n.right);
        links(i, node, width, &mut has_parent, place, |c| {
            format!("tree node {c}")
        })?;
    }
    reachable(&has_parent, |c| format!("tree node {c}"))?;
    importances("tree", &m.tree.importances, width)
}

/// A node's training counts and churn rate are possible.
fn node_stats(n: &Node, place: impl Fn() -> String) -> Result<(), String> {
    if !(n.n.is_finite() && n.pos.is_finite() && n.n >= 0.0 && (0.0..=n.n).contains(&n.pos)) {
        return Err(format!(
            "{} has impossible counts ({} of {})",
            place(),
            n.pos,
            n.n
        ));
    }
    if !probability(n.value) {
        return Err(format!(
            "{} has churn rate {} outside [0, 1]",
            place(),
            n.value
        ));
    }
    Ok(())
}

/// One importance per encoded column, or none.
fn importances(what: &str, imp: &[f64], width: usize) -> Result<(), String> {
    if imp.len() != width && !imp.is_empty() {
        return Err(format!(
            "{what} has {} importances for {width} encoded columns",
            imp.len()
        ));
    }
    Ok(())
}

/// The boosted trees: well-formed trees (children after their parent, one parent each, known
/// columns, finite numbers) and ordered calibration bins.
fn boosted(bo: &Boosted, width: usize) -> Result<(), String> {
    node_stats(&bo.base, || "boosted base node".to_string())?;
    importances("boosted model", &bo.importances, width)?;
    let e = &bo.ensemble;
    if !e.base_margin.is_finite() {
        return Err("boosted base margin is not finite".into());
    }
    for (t, tree) in e.trees.iter().enumerate() {
        let nodes = &tree.nodes;
        if nodes.is_empty() {
            return Err(format!("boosted tree {t} has no nodes"));
        }
        let mut has_parent = vec![false; nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            let place = || format!("boosted tree {t} node {i}");
            if !(n.value.is_finite() && n.cover.is_finite() && n.cover >= 0.0) {
                return Err(format!("{} has a non-finite value or cover", place()));
            }
            let node = (n.feature, n.threshold, n.left, n.right);
            let name = |c: usize| format!("boosted tree {t} node {c}");
            links(i, node, width, &mut has_parent, place, name)?;
        }
        reachable(&has_parent, |c| format!("boosted tree {t} node {c}"))?;
    }
    if bo.bins.is_empty() {
        return Err("boosted model has no calibration bins".into());
    }
    let mut prev = f64::NEG_INFINITY;
    for (i, s) in bo.bins.iter().enumerate() {
        let ok = s.upper > prev
            && probability(s.low)
            && probability(s.high)
            && s.low <= s.high
            && s.n >= 0.0
            && (0.0..=s.n).contains(&s.pos);
        if !ok {
            return Err(format!("boosted calibration bin {i} is not well-formed"));
        }
        prev = s.upper;
    }
    Ok(())
}

/// The links of node `i` = (feature, threshold, left, right) of a flat tree whose
/// `has_parent.len()` nodes are named by `name`: a leaf has no children; an internal node tests
/// a known column at a non-NaN threshold and points at two later nodes that have no other
/// parent (so every walk from the root moves forward and ends).
fn links(
    i: usize,
    (feature, threshold, left, right): (u32, f64, u32, u32),
    width: usize,
    has_parent: &mut [bool],
    place: impl Fn() -> String,
    name: impl Fn(usize) -> String,
) -> Result<(), String> {
    if left == LEAF || right == LEAF {
        if left != right {
            return Err(format!("{} has one child", place()));
        }
        return Ok(());
    }
    column(feature as usize, width, &place)?;
    if threshold.is_nan() {
        return Err(format!("{} has a NaN threshold", place()));
    }
    let len = has_parent.len();
    for child in [left as usize, right as usize] {
        if child <= i || child >= len {
            return Err(format!(
                "{} has child {child}, which is not a later node of the {len}",
                place()
            ));
        }
        if std::mem::replace(&mut has_parent[child], true) {
            return Err(format!("{} has two parents", name(child)));
        }
    }
    Ok(())
}

/// Every node but the root has a parent.
fn reachable(has_parent: &[bool], name: impl Fn(usize) -> String) -> Result<(), String> {
    match has_parent.iter().skip(1).position(|p| !p) {
        Some(orphan) => Err(format!("{} is not reachable", name(orphan + 1))),
        None => Ok(()),
    }
}

fn calibration(b: &Bundle) -> Result<(), String> {
    let m = &b.model;
    if !probability(m.threshold) {
        return Err(format!(
            "decision threshold {} is outside [0, 1]",
            m.threshold
        ));
    }
    if !probability(b.training_churn_rate) {
        return Err(format!(
            "training churn rate {} is outside [0, 1]",
            b.training_churn_rate
        ));
    }
    match &m.calibrator {
        Calibrator::Platt { a, b } => {
            if !(a.is_finite() && b.is_finite()) {
                return Err("Platt calibrator has non-finite coefficients".into());
            }
        }
        Calibrator::Isotonic { x, y } => {
            if x.len() != y.len() {
                return Err(format!(
                    "isotonic calibrator has {} knots but {} values",
                    x.len(),
                    y.len()
                ));
            }
            if !x.iter().chain(y).all(|&v| probability(v)) {
                return Err("isotonic calibrator has knots outside [0, 1]".into());
            }
            if x.windows(2).any(|w| w[0] > w[1]) {
                return Err("isotonic calibrator knots are not increasing".into());
            }
        }
    }
    Ok(())
}

fn segments(s: &crate::segment::SegmentModel, width: usize) -> Result<(), String> {
    if s.segments.is_empty() || s.centroids.len() != s.segments.len() {
        return Err(format!(
            "segmentation has {} segments and {} centroids",
            s.segments.len(),
            s.centroids.len()
        ));
    }
    for (i, f) in s.features.iter().enumerate() {
        column(f.column, width, || {
            format!("segment feature {i} ('{}')", f.name)
        })?;
        if !(f.mean.is_finite() && f.std.is_finite() && f.std > 0.0) {
            return Err(format!(
                "segment feature {i} ('{}') has scale {} ± {}",
                f.name, f.mean, f.std
            ));
        }
    }
    for (i, c) in s.centroids.iter().enumerate() {
        if c.len() != s.features.len() || !c.iter().all(|v| v.is_finite()) {
            return Err(format!(
                "segment centroid {i} has {} finite-or-not values for {} features",
                c.len(),
                s.features.len()
            ));
        }
    }
    if let Some(r) = &s.rfm {
        for c in [r.recency_column, r.frequency_column, r.monetary_column] {
            column(c, width, || "the RFM rule".into())?;
        }
    }
    if let Some(l) = &s.lifecycle {
        let cols = [
            Some(l.tenure_column),
            l.recency_column,
            l.frequency_column,
            l.trend_column,
        ];
        for c in cols.into_iter().flatten() {
            column(c, width, || "the lifecycle rule".into())?;
        }
    }
    Ok(())
}
