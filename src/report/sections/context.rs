//! What the model was trained on and what it decides: segments, the playbook, the training run and
//! the data quality.

use super::super::charts::grouped_bars;
use super::super::{esc, Section};
use super::{figure, pct, section, table, table_marked, warning};
use crate::bundle::card::ModelCard;
use crate::bundle::Bundle;
use crate::model::ModelKind;
use crate::util::fmt_num;

// one report section: the table, the chart and the text that reads them, in page order
#[allow(clippy::too_many_lines)]
pub(super) fn segments(card: &ModelCard) -> Option<Section> {
    let sr = card.segments.as_ref()?;
    let rows: Vec<Vec<String>> = sr
        .segments
        .iter()
        .map(|p| {
            vec![
                p.id.to_string(),
                p.name.clone(),
                p.size.to_string(),
                pct(p.share),
                pct(p.churn_rate),
                p.revenue_share.map_or("—".into(), pct),
                p.rfm_class.map_or("—".into(), |c| c.as_str().to_string()),
            ]
        })
        .collect();
    let mut body = table(
        &[
            "id",
            "segment",
            "customers",
            "share",
            "churn",
            "revenue share",
            "RFM class of centre",
        ],
        &rows,
    );
    // profile: each segment's feature means as an index (100 = average customer)
    let features: Vec<String> = sr.features.iter().map(|f| f.0.clone()).collect();
    let total: f64 = sr
        .segments
        .iter()
        .map(|p| p.size as f64)
        .sum::<f64>()
        .max(1.0);
    let avg: Vec<f64> = (0..features.len())
        .map(|j| {
            sr.segments
                .iter()
                .map(|p| p.means.get(j).map_or(0.0, |m| m.1) * p.size as f64)
                .sum::<f64>()
                / total
        })
        .collect();
    let series: Vec<(String, Vec<f64>)> = sr
        .segments
        .iter()
        .map(|p| {
            let idx = (0..features.len())
                .map(|j| {
                    let m = p.means.get(j).map_or(0.0, |m| m.1);
                    if avg[j].abs() > 1e-12 {
                        100.0 * m / avg[j]
                    } else {
                        0.0
                    }
                })
                .collect();
            (format!("{} {}", p.id, p.name), idx)
        })
        .collect();
    let svg = grouped_bars(
        "Segment profiles: each segment's average of every clustering feature as an index, 100 = the average customer",
        "Index (100 = average customer)",
        &features,
        &series,
    );
    let mean_rows: Vec<Vec<String>> = sr
        .segments
        .iter()
        .map(|p| {
            let mut r = vec![format!("{} {}", p.id, p.name)];
            r.extend(
                p.means
                    .iter()
                    .map(|m| fmt_num((m.1 * 100.0).round() / 100.0)),
            );
            r
        })
        .collect();
    let mut headers: Vec<&str> = vec!["segment"];
    headers.extend(features.iter().map(String::as_str));
    body.push_str(&format!(
        "<div class=\"figs\">{}</div>",
        figure(
            svg,
            "Bars above 100 mean the segment has more of that feature than the average customer.",
            Some(table(&headers, &mean_rows))
        )
    ));
    for (title, shares) in [
        ("RFM class", &sr.rfm_classes),
        ("Lifecycle stage", &sr.lifecycle_stages),
    ] {
        if shares.is_empty() {
            continue;
        }
        let rows: Vec<Vec<String>> = shares
            .iter()
            .map(|s| {
                vec![
                    s.label.clone(),
                    s.size.to_string(),
                    pct(s.share),
                    pct(s.churn_rate),
                    s.revenue_share.map_or("—".into(), pct),
                ]
            })
            .collect();
        body.push_str(&format!("<h3>{}</h3>", esc(title)));
        body.push_str(&table(
            &[title, "customers", "share", "churn", "revenue share"],
            &rows,
        ));
    }
    if let Some(mg) = &sr.migration {
        let mut headers: Vec<&str> = vec!["previous → new"];
        headers.extend(mg.to.iter().map(String::as_str));
        let rows: Vec<Vec<String>> = mg
            .from
            .iter()
            .zip(&mg.share)
            .map(|(f, r)| {
                let mut row = vec![f.clone()];
                row.extend(r.iter().map(|&x| pct(x)));
                row
            })
            .collect();
        body.push_str("<h3>Migration from the previous model's segments</h3>");
        body.push_str(&table(&headers, &rows));
    }
    Some(section(
        "segments",
        "Segments",
        &format!(
            "{} customer groups found by k-means on {}: who they are, how many leave and where the money is.",
            sr.k,
            features.join(", ")
        ),
        body,
    ))
}

pub(super) fn playbook(card: &ModelCard) -> Option<Section> {
    let mix = card.holdout_details.as_ref()?.playbook.as_ref()?;
    let mut body = String::new();
    for w in &mix.warnings {
        body.push_str(&warning(w));
    }
    body.push_str(&format!(
        "<p>Playbook <b>{}</b>; customer value: {}. The contact decision selects {} holdout customers.</p>",
        esc(&mix.playbook),
        esc(&mix.value),
        mix.contacted
    ));
    if !mix.inferred.is_empty() {
        body.push_str(
            "<p>No playbook was given: this one was inferred from the data (<code>churn-train init</code> writes it to a file to edit). Costs and save rates are the catalogue's assumptions.</p><ul>",
        );
        for d in &mix.inferred {
            body.push_str(&format!("<li>{}</li>", esc(d)));
        }
        body.push_str("</ul>");
    }
    let rows: Vec<Vec<String>> = mix
        .actions
        .iter()
        .map(|a| {
            vec![
                a.action.clone(),
                fmt_num(a.cost),
                pct(a.save_rate),
                a.customers.to_string(),
                pct(a.share),
            ]
        })
        .collect();
    body.push_str(&table(
        &[
            "top action",
            "cost",
            "save rate",
            "holdout customers",
            "share",
        ],
        &rows,
    ));
    Some(section(
        "playbook",
        "What the playbook would do",
        "Every action of the playbook: its cost and assumed save rate, how many holdout customers get it first and how many get it at all.",
        body,
    ))
}

/// How the shipped model was chosen: the tree's grid search, or for boosted trees the choice
/// between the kinds and the boosted candidates (the best single tree is one row of it, not a
/// section of its own: it does not ship).
pub(super) fn training(card: &ModelCard, bundle: &Bundle) -> Section {
    if bundle.model.kind() == ModelKind::Boosted {
        return boosted_training(card);
    }
    let chosen = |i: usize| {
        let r = &card.cv_table[i];
        r.max_depth == card.hyper_parameters.max_depth
            && r.min_samples_leaf == card.hyper_parameters.min_samples_leaf
    };
    let rows: Vec<Vec<String>> = card
        .cv_table
        .iter()
        .map(|r| {
            vec![
                r.max_depth.to_string(),
                r.min_samples_leaf.to_string(),
                format!("{:.4} ± {:.4}", r.log_loss, r.log_loss_std),
                format!("{:.4}", r.roc_auc),
                format!("{:.4}", r.brier),
                format!("{:.0}", r.leaves),
            ]
        })
        .collect();
    let mut body = calibration_line(card, &card.learner);
    if let Some(best) = (0..card.cv_table.len()).find(|&i| chosen(i)) {
        let r = &card.cv_table[best];
        body.push_str(&format!(
            "<p>Kept: depth {}, at least {} customers per leaf — CV log loss {:.4} ± {:.4}, ROC-AUC {:.4}, {:.0} leaves.</p>",
            r.max_depth, r.min_samples_leaf, r.log_loss, r.log_loss_std, r.roc_auc, r.leaves
        ));
    }
    body.push_str(&format!(
        "<details><summary>All {} candidates</summary>{}</details>",
        card.cv_table.len(),
        table_marked(
            &[
                "max depth",
                "min leaf",
                "CV log loss",
                "CV ROC-AUC",
                "CV Brier",
                "leaves"
            ],
            &rows,
            chosen,
        )
    ));
    section(
        "training",
        "How the tree was chosen",
        "Cross-validation over depth and leaf size: the highlighted row (lowest log loss) was kept.",
        body,
    )
}

/// The calibration line both kinds share.
fn calibration_line(card: &ModelCard, learner: &str) -> String {
    let c = &card.calibration;
    format!(
        "<p>Learner <b>{}</b>, seed {}; calibration <b>{}</b> (cross-validated log loss: raw {:.4}, isotonic {:.4}, Platt {}).</p>",
        esc(learner),
        card.seed,
        esc(&c.method),
        c.cv_log_loss_raw,
        c.cv_log_loss_isotonic,
        if c.cv_log_loss_platt.is_finite() { format!("{:.4}", c.cv_log_loss_platt) } else { "n/a".into() }
    )
}

/// [`training`] of a boosted model: tree against boosted trees by cross-validated log loss, then
/// the boosted candidates.
fn boosted_training(card: &ModelCard) -> Section {
    let mut body = calibration_line(card, "gradient-boosted trees");
    let Some(choice) = &card.model_choice else {
        return section("training", "How the model was chosen", "", body);
    };
    let ll = |v: Option<f64>| v.map_or("not tried".to_string(), |v| format!("{v:.4}"));
    let kinds = vec![
        vec![
            "single tree (best depth and leaf size)".to_string(),
            ll(choice.tree_cv_log_loss),
            "no".to_string(),
        ],
        vec![
            "boosted trees (best candidate)".to_string(),
            ll(choice.boosted_cv_log_loss),
            "yes".to_string(),
        ],
    ];
    body.push_str(&format!(
        "<p>Asked for: <b>{}</b>. {}</p>",
        choice.requested.as_str(),
        esc(&choice.reason)
    ));
    body.push_str(&table_marked(
        &["model", "CV log loss (uncalibrated)", "ships"],
        &kinds,
        |i| i == 1,
    ));
    if let Some(p) = &choice.boosted {
        body.push_str(&format!(
            "<p>Kept: {} rounds of depth up to {}, learning rate {}, at least {} customers per leaf.</p>",
            p.rounds, p.max_depth, p.learning_rate, p.min_samples_leaf
        ));
        let chosen = |i: usize| {
            let r = &choice.boosted_cv_table[i];
            r.max_depth == p.max_depth && r.learning_rate == p.learning_rate
        };
        let rows: Vec<Vec<String>> = choice
            .boosted_cv_table
            .iter()
            .map(|r| {
                vec![
                    r.max_depth.to_string(),
                    r.learning_rate.to_string(),
                    r.rounds.to_string(),
                    format!("{:.4} ± {:.4}", r.log_loss, r.log_loss_std),
                    format!("{:.4}", r.roc_auc),
                    format!("{:.4}", r.brier),
                ]
            })
            .collect();
        body.push_str(&format!(
            "<details><summary>All {} boosted candidates</summary>{}</details>",
            rows.len(),
            table_marked(
                &[
                    "max depth",
                    "learning rate",
                    "rounds (early-stopped)",
                    "CV log loss",
                    "CV ROC-AUC",
                    "CV Brier"
                ],
                &rows,
                chosen,
            )
        ));
    }
    section(
        "training",
        "How the model was chosen",
        "Cross-validated log loss of the best single tree against the best boosted candidate: the lower one ships (highlighted).",
        body,
    )
}

pub(super) fn quality(card: &ModelCard) -> Section {
    let q = &card.data_quality;
    let mut body = format!(
        "<p>{} rows read from {}, {} kept.</p>",
        q.rows_read,
        esc(&q.source),
        q.rows_out
    );
    for n in &q.notes {
        if n.starts_with("warning") {
            body.push_str(&warning(n));
        } else {
            body.push_str(&format!("<p>{}</p>", esc(n)));
        }
    }
    if !q.dropped.is_empty() {
        let rows: Vec<Vec<String>> = q
            .dropped
            .iter()
            .map(|d| vec![d.reason.clone(), d.rows.to_string()])
            .collect();
        body.push_str(&table(&["dropped because", "rows"], &rows));
    }
    if !q.sources.is_empty() {
        let rows: Vec<Vec<String>> = q
            .sources
            .iter()
            .map(|r| vec![r.source.clone(), r.rows.to_string()])
            .collect();
        body.push_str(&table(&["rows from", "rows"], &rows));
    }
    let rows: Vec<Vec<String>> = q
        .columns
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.role.as_str().to_string(),
                c.kind.clone(),
                c.missing.to_string(),
                c.distinct.to_string(),
            ]
        })
        .collect();
    body.push_str(&table(
        &["column", "role", "type", "missing", "distinct"],
        &rows,
    ));
    section(
        "data-quality",
        "Data quality",
        "What was read, what was dropped and why, and how complete each column is.",
        body,
    )
}

/// The versions this one descends from (`--previous`, or the champion a store-trained model
/// learned from), nearest first; `None` for a first model.
pub(super) fn lineage(card: &ModelCard) -> Option<Section> {
    if card.lineage.is_empty() {
        return None;
    }
    let mut rows = vec![vec![
        format!("{} (this version)", card.version),
        card.created_at.clone(),
        card.data_source.clone(),
        card.holdout
            .as_ref()
            .map_or("–".into(), |h| format!("{:.4}", h.roc_auc)),
    ]];
    rows.extend(card.lineage.iter().map(|a| {
        vec![
            a.version.clone(),
            a.created_at.clone(),
            a.data_source.clone(),
            a.holdout_auc.map_or("–".into(), |x| format!("{x:.4}")),
        ]
    }));
    Some(section(
        "lineage",
        "Version lineage",
        "This version and the ones it succeeds, newest first: what each was trained on and its hold-out AUC (each on its own hold-out).",
        table(&["version", "trained", "trained on", "hold-out AUC"], &rows),
    ))
}
