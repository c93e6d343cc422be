//! The sections of a trained model's report, each from the card and the bundle: the headline and
//! the shared table and figure helpers here; how well the model ranks and is calibrated in
//! [`performance`], what the model is in [`model`], and what it was trained on and decides in
//! [`context`].

mod context;
mod model;
mod performance;
mod uplift;

pub(crate) use uplift::uplift;

use context::{lineage, playbook, quality, segments, training};
use model::{importance, tree};
use performance::{gains, profit, ranking, reliability};

use super::{esc, Report, Section};
use crate::bundle::card::ModelCard;
use crate::bundle::Bundle;

/// Share of customers the gains table reports.
const CONTACT_SHARES: [f64; 6] = [0.05, 0.1, 0.2, 0.3, 0.5, 1.0];
/// Tree levels drawn open; deeper ones are collapsed.
const OPEN_DEPTH: usize = 6;

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn r3(x: f64) -> String {
    format!("{x:.3}")
}

/// An HTML table; cells are escaped.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    table_marked(headers, rows, |_| false)
}

/// An HTML table whose rows for which `chosen(i)` holds are highlighted.
fn table_marked(headers: &[&str], rows: &[Vec<String>], chosen: impl Fn(usize) -> bool) -> String {
    let mut s = String::from("<table><thead><tr>");
    for h in headers {
        s.push_str(&format!("<th scope=\"col\">{}</th>", esc(h)));
    }
    s.push_str("</tr></thead><tbody>");
    for (i, r) in rows.iter().enumerate() {
        s.push_str(if chosen(i) {
            "<tr class=\"chosen\">"
        } else {
            "<tr>"
        });
        for c in r {
            // numbers right-aligned, text left
            let numeric = c.starts_with(|ch: char| ch.is_ascii_digit() || "+−-—.".contains(ch));
            let class = if numeric { " class=\"n\"" } else { "" };
            s.push_str(&format!("<td{class}>{}</td>", esc(c)));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

/// A figure with its caption and, folded, the numbers behind it.
fn figure(svg: String, caption: &str, data: Option<String>) -> String {
    format!(
        "<figure>{svg}<figcaption>{}</figcaption>{}</figure>",
        esc(caption),
        data.map_or(String::new(), |d| format!(
            "<details><summary>Numbers behind the figure</summary>{d}</details>"
        ))
    )
}

fn warning(text: &str) -> String {
    format!("<p class=\"warn\" role=\"note\">{}</p>", esc(text))
}

fn section(id: &str, title: &str, caption: &str, body: String) -> Section {
    Section {
        id: id.into(),
        title: title.into(),
        caption: caption.into(),
        body,
    }
}

/// Every section of a trained model's report, in reading order.
pub(super) fn model_report(card: &ModelCard, bundle: &Bundle) -> Report {
    let mut r = Report {
        title: format!("Churn model report: {}", card.name),
        subtitle: format!(
            "version {} · trained {} · {} · {} training and {} holdout customers · churn {} ({})",
            card.version,
            card.created_at,
            card.data_source,
            card.training_rows,
            card.holdout_rows,
            pct(card.label_rate),
            card.label
        ),
        sections: Vec::new(),
    };
    r.push(headline(card));
    if let Some(d) = &card.holdout_details {
        r.push(ranking(card, &d.curves));
        r.push(reliability(&d.curves));
        r.push(gains(card, &d.curves));
        if let Some(p) = &d.profit {
            r.push(profit(card, p));
        }
    }
    r.push(tree(card, bundle));
    r.push(importance(card, bundle));
    if let Some(s) = segments(card) {
        r.push(s);
    }
    if let Some(s) = playbook(card) {
        r.push(s);
    }
    r.push(training(card, bundle));
    if let Some(s) = lineage(card) {
        r.push(s);
    }
    r.push(quality(card));
    r
}

fn tile(value: String, label: &str) -> String {
    format!(
        "<div class=\"tile\"><b>{}</b><span>{}</span></div>",
        esc(&value),
        esc(label)
    )
}

fn headline(card: &ModelCard) -> Section {
    let mut tiles = String::from("<div class=\"tiles\">");
    let t = &card.threshold;
    match &card.holdout {
        Some(h) => {
            tiles.push_str(&tile(
                format!("{:.3}", h.roc_auc),
                "holdout ROC-AUC (0.5 = random)",
            ));
            tiles.push_str(&tile(
                format!("{:.3}", h.brier),
                &format!(
                    "Brier score (guessing the base rate: {:.3})",
                    h.churn_rate * (1.0 - h.churn_rate)
                ),
            ));
            tiles.push_str(&tile(format!("{:.3}", h.ece), "calibration error (ECE)"));
            tiles.push_str(&tile(
                format!("{:.2}×", h.top_decile_lift),
                "churn in the riskiest 10% vs. average",
            ));
            tiles.push_str(&tile(pct(h.churn_rate), "holdout churn rate (base rate)"));
        }
        None => tiles.push_str(&tile("—".into(), "no holdout (holdout = 0)")),
    }
    tiles.push_str(&tile(
        format!("{:.3}", t.threshold),
        &format!("threshold, chosen by {}", t.objective.replace('_', " ")),
    ));
    tiles.push_str("</div>");
    if let Some(h) = &card.holdout {
        tiles.push_str(&format!(
            "<p>At the threshold the model flags {} of {} holdout customers: precision {}, recall {} (F1 {:.3}).</p>",
            h.confusion.tp + h.confusion.fp,
            h.rows,
            pct(h.precision),
            pct(h.recall),
            h.f1
        ));
    }
    section(
        "headline",
        "Headline",
        "How well the model ranks and how honest its probabilities are, on customers it never saw.",
        tiles,
    )
}
