//! The sections of a trained model's report, each from the card and the bundle.

use super::charts::{bar_chart, grouped_bars, line_chart, LineChart, Series};
use super::{esc, Report, Section};
use crate::bundle::card::ModelCard;
use crate::bundle::Bundle;
use crate::model::metrics::Curves;
use crate::model::{Boosted, Predictor, TreeModel};
use crate::util::fmt_num;

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
            let numeric = c.starts_with(|ch: char| ch.is_ascii_digit() || "−-—.".contains(ch));
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
    r.push(importance(card));
    if let Some(s) = segments(card) {
        r.push(s);
    }
    if let Some(s) = playbook(card) {
        r.push(s);
    }
    r.push(training(card));
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

/// The curve point at the model's threshold: every customer scoring at or above it flagged.
fn at_threshold(points: &[[f64; 3]], threshold: f64) -> Option<[f64; 3]> {
    points.iter().rev().find(|p| p[2] >= threshold).copied()
}

fn curve_table(points: &[[f64; 3]], names: [&str; 3]) -> String {
    let rows: Vec<Vec<String>> = points
        .iter()
        .map(|p| {
            vec![
                format!("{:.4}", p[0]),
                format!("{:.4}", p[1]),
                format!("{:.4}", p[2]),
            ]
        })
        .collect();
    table(&names, &rows)
}

fn ranking(card: &ModelCard, c: &Curves) -> Section {
    let t = card.threshold.threshold;
    let mark = |pts: &[[f64; 3]], x: usize, y: usize| {
        at_threshold(pts, t)
            .map(|p| (p[x], p[y], format!("  threshold {t:.2}")))
            .into_iter()
            .collect::<Vec<_>>()
    };
    let auc = card.holdout.as_ref().map_or(f64::NAN, |h| h.roc_auc);
    let roc = line_chart(&LineChart {
        alt: format!("ROC curve, AUC {auc:.3}: true positive rate against false positive rate"),
        x_label: "False positive rate (share of stayers flagged)".into(),
        y_label: "True positive rate (share of churners caught)".into(),
        x: (0.0, 1.0),
        y: (0.0, 1.0),
        series: vec![Series {
            name: format!("model (AUC {auc:.3})"),
            points: c.roc.iter().map(|p| (p[0], p[1])).collect(),
            color: 0,
            markers: false,
        }],
        diagonal: true,
        marks: mark(&c.roc, 0, 1),
        percent: (true, true),
        ..Default::default()
    });
    let base = card.holdout.as_ref().map_or(0.0, |h| h.churn_rate);
    let pr = line_chart(&LineChart {
        alt: format!(
            "Precision-recall curve, average precision {:.3}",
            card.holdout.as_ref().map_or(f64::NAN, |h| h.pr_auc)
        ),
        x_label: "Recall (share of churners caught)".into(),
        y_label: "Precision (share of flagged who churn)".into(),
        x: (0.0, 1.0),
        y: (0.0, 1.0),
        series: vec![
            Series {
                name: "model".into(),
                points: c.pr.iter().map(|p| (p[0], p[1])).collect(),
                color: 0,
                markers: false,
            },
            Series {
                name: format!("base rate {}", pct(base)),
                points: vec![(0.0, base), (1.0, base)],
                color: 1,
                markers: false,
            },
        ],
        marks: mark(&c.pr, 0, 1),
        percent: (true, true),
        ..Default::default()
    });
    let body = format!(
        "<div class=\"figs\">{}{}</div>",
        figure(
            roc,
            "ROC: the higher the curve above the diagonal (random), the better the model tells churners from stayers; the circle is the chosen threshold.",
            Some(curve_table(&c.roc, ["false positive rate", "true positive rate", "threshold"]))
        ),
        figure(
            pr,
            "Precision-recall: how many of the flagged customers really churn as more churners are caught; the line is what random picks achieve.",
            Some(curve_table(&c.pr, ["recall", "precision", "threshold"]))
        )
    );
    section(
        "ranking",
        "Ranking",
        "Whether the riskiest customers really are the ones who leave.",
        body,
    )
}

fn reliability(c: &Curves) -> Section {
    let rel = &c.reliability;
    let svg = line_chart(&LineChart {
        alt: "Reliability diagram: observed churn rate against predicted probability per bin, with 95% intervals".into(),
        x_label: "Predicted churn probability".into(),
        y_label: "Observed churn rate".into(),
        x: (0.0, 1.0),
        y: (0.0, 1.0),
        series: vec![Series {
            name: "observed (95% interval)".into(),
            points: rel.iter().map(|b| (b.predicted, b.observed)).collect(),
            color: 0,
            markers: true,
        }],
        diagonal: true,
        error_bars: rel
            .iter()
            .map(|b| (b.predicted, b.low, b.observed, b.high))
            .collect(),
        percent: (true, true),
        ..Default::default()
    });
    let rows: Vec<Vec<String>> = rel
        .iter()
        .map(|b| {
            vec![
                format!("{:.0}–{:.0}%", 100.0 * b.from, 100.0 * b.to),
                b.n.to_string(),
                pct(b.predicted),
                pct(b.observed),
                format!("{}–{}", pct(b.low), pct(b.high)),
            ]
        })
        .collect();
    let body = format!(
        "<div class=\"figs\">{}</div>",
        figure(
            svg,
            "Points on the diagonal mean a predicted 30% really is 30%; bars are 95% intervals, wide where few customers fall.",
            Some(table(
                &["predicted bin", "customers", "mean predicted", "observed", "95% interval"],
                &rows
            ))
        )
    );
    section(
        "calibration",
        "Are the probabilities honest?",
        "Predicted against observed churn on the holdout, by probability bin.",
        body,
    )
}

/// Share of churners caught when contacting the top `share` of customers (linear between the
/// curve's points, which is the expected capture when ties are broken at random).
fn caught_at(gains: &[[f64; 3]], share: f64) -> f64 {
    for w in gains.windows(2) {
        let (a, b) = (w[0], w[1]);
        if share <= b[0] {
            let f = if b[0] > a[0] {
                (share - a[0]) / (b[0] - a[0])
            } else {
                1.0
            };
            return a[1] + f * (b[1] - a[1]);
        }
    }
    gains.last().map_or(0.0, |p| p[1])
}

fn gains(card: &ModelCard, c: &Curves) -> Section {
    let svg = line_chart(&LineChart {
        alt: "Cumulative gains: share of churners caught against share of customers contacted, riskiest first".into(),
        x_label: "Customers contacted, riskiest first".into(),
        y_label: "Churners caught".into(),
        x: (0.0, 1.0),
        y: (0.0, 1.0),
        series: vec![Series {
            name: "model".into(),
            points: c.gains.iter().map(|p| (p[0], p[1])).collect(),
            color: 0,
            markers: false,
        }],
        diagonal: true,
        marks: at_threshold(&c.gains, card.threshold.threshold)
            .map(|p| (p[0], p[1], "  threshold".to_string()))
            .into_iter()
            .collect(),
        percent: (true, true),
        ..Default::default()
    });
    // contacting the top N% of n customers means ceil(N% × n) of them, as the card counts
    let n = card.holdout.as_ref().map_or(0, |h| h.rows) as f64;
    let rows: Vec<Vec<String>> = CONTACT_SHARES
        .iter()
        .map(|&s| {
            let contacted = if n > 0.0 { (s * n).ceil() / n } else { s };
            let caught = caught_at(&c.gains, contacted);
            vec![
                pct(s),
                pct(caught),
                format!("{:.2}×", if s > 0.0 { caught / s } else { f64::NAN }),
            ]
        })
        .collect();
    let body = format!(
        "<div class=\"figs\">{}<div>{}</div></div>",
        figure(
            svg,
            "Contacting the riskiest customers first catches churners faster than random (the diagonal).",
            Some(curve_table(&c.gains, ["customers contacted", "churners caught", "threshold"]))
        ),
        table(&["contact the top", "catch of the churners", "lift"], &rows)
    );
    section(
        "gains",
        "Who to contact",
        "How many churners a campaign reaches when it contacts the top N% by risk.",
        body,
    )
}

fn profit(card: &ModelCard, points: &[[f64; 2]]) -> Section {
    let lo = points.iter().map(|p| p[1]).fold(0.0f64, f64::min);
    let hi = points.iter().map(|p| p[1]).fold(0.0f64, f64::max);
    let pad = (hi - lo).max(1e-9) * 0.1;
    let t = card.threshold.threshold;
    let best = points
        .iter()
        .rev()
        .find(|p| p[0] >= t)
        .map(|p| (p[0], p[1], format!("  chosen {t:.2}")));
    let svg = line_chart(&LineChart {
        alt: "Expected profit per customer against the decision threshold".into(),
        x_label: "Threshold on the churn probability".into(),
        y_label: "Expected profit per customer".into(),
        x: (0.0, 1.0),
        y: (lo - pad, hi + pad),
        series: vec![Series {
            name: "expected profit".into(),
            points: points.iter().map(|p| (p[0], p[1])).collect(),
            color: 2,
            markers: true,
        }],
        marks: best.into_iter().collect(),
        percent: (true, false),
        ..Default::default()
    });
    let econ = card.economics.as_ref().map_or(String::new(), |e| {
        format!(
            "<p>Economics: customer value {} (or the playbook's value expression), contact cost {}, save rate {}.</p>",
            fmt_num(e.customer_value),
            fmt_num(e.contact_cost),
            pct(e.save_rate)
        )
    });
    let rows: Vec<Vec<String>> = points
        .iter()
        .map(|p| vec![r3(p[0]), format!("{:.2}", p[1])])
        .collect();
    section(
        "profit",
        "Expected profit by threshold",
        "What contacting everyone above a threshold would earn per customer, after contact costs.",
        format!(
            "{econ}<div class=\"figs\">{}</div>",
            figure(
                svg,
                "Profit peaks where the value saved by one more contact no longer covers its cost.",
                Some(table(&["threshold", "profit per customer"], &rows))
            )
        ),
    )
}

fn tree(card: &ModelCard, bundle: &Bundle) -> Section {
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

fn importance(card: &ModelCard) -> Section {
    let bars: Vec<(String, f64)> = card
        .importance
        .iter()
        .filter(|i| i.importance > 0.0)
        .take(15)
        .map(|i| (i.name.clone(), i.importance))
        .collect();
    let svg = bar_chart(
        "Importance of each input: share of the tree's total impurity decrease",
        "Share of the tree's impurity decrease",
        &bars,
        true,
    );
    let rows: Vec<Vec<String>> = bars.iter().map(|b| vec![b.0.clone(), pct(b.1)]).collect();
    section(
        "importance",
        "What drives the model",
        "Inputs ranked by how much the tree's splits on them separate churners from stayers.",
        format!(
            "<div class=\"figs\">{}</div>",
            figure(
                svg,
                "Importance is association, not cause: it says where the tree looks, not what a change would do.",
                Some(table(&["input", "importance"], &rows))
            )
        ),
    )
}

// one report section: the table, the chart and the text that reads them, in page order
#[allow(clippy::too_many_lines)]
fn segments(card: &ModelCard) -> Option<Section> {
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

fn playbook(card: &ModelCard) -> Option<Section> {
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

fn training(card: &ModelCard) -> Section {
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
    let c = &card.calibration;
    let mut body = format!(
        "<p>Learner <b>{}</b>, seed {}; calibration <b>{}</b> (cross-validated log loss: raw {:.4}, isotonic {:.4}, Platt {}).</p>",
        esc(&card.learner),
        card.seed,
        esc(&c.method),
        c.cv_log_loss_raw,
        c.cv_log_loss_isotonic,
        if c.cv_log_loss_platt.is_finite() { format!("{:.4}", c.cv_log_loss_platt) } else { "n/a".into() }
    );
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

fn quality(card: &ModelCard) -> Section {
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
