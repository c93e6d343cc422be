//! What the shipped model is: the tree drawn, or the boosted ensemble summarised, and which inputs
//! matter.

use super::super::charts::{bar_chart, beeswarm, SwarmRow};
use super::super::{esc, Section};
use super::OPEN_DEPTH;
use super::{figure, pct, section, table};
use crate::bundle::card::{ModelCard, ShapSummary};
use crate::bundle::Bundle;
use crate::model::{Boosted, ModelKind, Predictor, TreeModel};

pub(super) fn tree(card: &ModelCard, bundle: &Bundle) -> Section {
    let m = match &bundle.model.predictor {
        Predictor::Boosted(b) => return boosted(card, b),
        Predictor::Tree(t) => t,
    };
    let nodes = &m.tree.nodes;
    let mut html = String::from("<div class=\"tree\"><ul>");
    // (node, depth, condition reaching it)
    fn walk(b: &Bundle, m: &TreeModel, i: usize, depth: usize, cond: String, out: &mut String) {
        let n = &m.tree.nodes[i];
        let p = m.scores[i].p;
        let shade = format!("background:rgba(213,94,0,{:.2})", 0.08 + 0.6 * p);
        let stats = format!(
            "<span class=\"leaf\" style=\"{shade}\">churn {} · {} customers</span>",
            pct(p),
            n.n as u64
        );
        if n.is_leaf() {
            out.push_str(&format!("<li>{} {stats}</li>", esc(&cond)));
            return;
        }
        let open = if depth < OPEN_DEPTH { " open" } else { "" };
        out.push_str(&format!(
            "<li><details{open}><summary>{} {stats}</summary><ul>",
            esc(&cond)
        ));
        let enc = &b.encoder;
        let (f, t) = (n.feature as usize, n.threshold);
        walk(
            b,
            m,
            n.left as usize,
            depth + 1,
            crate::scoring::edge_condition(enc, f, t, true),
            out,
        );
        walk(
            b,
            m,
            n.right as usize,
            depth + 1,
            crate::scoring::edge_condition(enc, f, t, false),
            out,
        );
        out.push_str("</ul></details></li>");
    }
    if !nodes.is_empty() {
        walk(bundle, m, 0, 0, "all customers".into(), &mut html);
    }
    html.push_str("</ul></div>");
    section(
        "tree",
        "The decision tree",
        &format!(
            "Each customer follows the conditions down to a leaf; its churn rate (calibrated) and the training customers there are shown. Depth {}, {} leaves; levels below {OPEN_DEPTH} are folded.",
            card.tree.depth, card.tree.leaves
        ),
        html,
    )
}

/// A boosted model in place of the tree: its shape, the choice and the calibration bins.
fn boosted(card: &ModelCard, b: &Boosted) -> Section {
    let e = &b.ensemble;
    let reason = card
        .model_choice
        .as_ref()
        .map_or(String::new(), |c| format!(" Chosen: {}.", c.reason));
    let rows: Vec<Vec<String>> = b
        .bins
        .iter()
        .map(|s| {
            vec![
                if s.upper.is_finite() {
                    format!("≤ {}", pct(s.upper))
                } else {
                    "rest".into()
                },
                format!("{}", s.n as u64),
                pct(if s.n > 0.0 { s.pos / s.n } else { 0.0 }),
                format!("{} – {}", pct(s.low), pct(s.high)),
            ]
        })
        .collect();
    section(
        "tree",
        "The boosted trees",
        &format!(
            "{} trees of depth up to {} ({} leaves in all), learning rate {}.{reason} Reasons are exact TreeSHAP contributions in log-odds; intervals are the 95% Wilson intervals of the out-of-fold churn rate in each score bin below.",
            e.trees.len(),
            e.params.max_depth,
            e.n_leaves(),
            e.params.learning_rate
        ),
        table(
            &["uncalibrated score", "customers (out of fold)", "churn rate", "95% interval"],
            &rows,
        ),
    )
}

pub(super) fn importance(card: &ModelCard, bundle: &Bundle) -> Section {
    let bars: Vec<(String, f64)> = card
        .importance
        .iter()
        .filter(|i| i.importance > 0.0)
        .take(15)
        .map(|i| (i.name.clone(), i.importance))
        .collect();
    // what the numbers are depends on what ships: impurity decrease for one tree, mean |SHAP|
    // (the same contributions the reasons show) for boosted trees
    let (alt, axis, caption, note) = match bundle.model.kind() {
        ModelKind::Tree => (
            "Importance of each input: share of the tree's total impurity decrease",
            "Share of the tree's impurity decrease",
            "Inputs ranked by how much the tree's splits on them separate churners from stayers.",
            "Importance is association, not cause: it says where the tree looks, not what a change would do.",
        ),
        ModelKind::Boosted => (
            "Importance of each input: share of the mean absolute SHAP contribution",
            "Share of mean |SHAP| (log-odds)",
            "Inputs ranked by how far they move a typical customer's predicted churn: the mean size of their SHAP contribution to the log-odds, the same contributions a customer's reasons list.",
            "Importance is association, not cause: it says how much the model's answer leans on an input, not what changing it would do.",
        ),
    };
    let svg = bar_chart(alt, axis, &bars, true);
    let rows: Vec<Vec<String>> = bars.iter().map(|b| vec![b.0.clone(), pct(b.1)]).collect();
    let mut figs = figure(svg, note, Some(table(&["input", "importance"], &rows)));
    if let Some(s) = &card.shap_summary {
        figs.push_str(&swarm(s));
    }
    section(
        "importance",
        "What drives the model",
        caption,
        format!("<div class=\"figs\">{figs}</div>"),
    )
}

/// The SHAP summary plot of a boosted model: per input, one dot per sampled customer.
fn swarm(s: &ShapSummary) -> String {
    let rows: Vec<SwarmRow> = s
        .inputs
        .iter()
        .map(|i| SwarmRow {
            label: i.name.clone(),
            x: i.shap.clone(),
            shade: i.value_rank.clone(),
        })
        .collect();
    let svg = beeswarm(
        &format!(
            "SHAP summary: each dot is one of {} training customers, placed by how far the input moved their churn log-odds",
            s.customers
        ),
        "SHAP contribution (log-odds; right = towards churn)",
        &rows,
    );
    // the numbers behind the dots: spread of each input's contributions
    let quantile = |v: &[f64], q: f64| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(((v.len().max(1) - 1) as f64 * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let data: Vec<Vec<String>> = s
        .inputs
        .iter()
        .map(|i| {
            vec![
                i.name.clone(),
                format!("{:+.3}", quantile(&i.shap, 0.05)),
                format!("{:+.3}", quantile(&i.shap, 0.5)),
                format!("{:+.3}", quantile(&i.shap, 0.95)),
            ]
        })
        .collect();
    figure(
        svg,
        "How to read: a dot right of the line is a customer for whom this input raised predicted churn, left of it lowered it; blue dots have a low value of the input, vermillion a high one, grey dots a category (the reasons name the customer's own level, e.g. 'Contract is Month-to-month').",
        Some(table(&["input", "5th percentile", "median", "95th percentile"], &data)),
    )
}
