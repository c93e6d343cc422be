//! How well the model ranks, how well its probabilities are calibrated, whom it catches at each
//! contact share and what that is worth.

use super::super::charts::{line_chart, LineChart, Series};
use super::super::Section;
use super::CONTACT_SHARES;
use super::{figure, pct, r3, section, table};
use crate::bundle::card::ModelCard;
use crate::model::metrics::Curves;
use crate::util::fmt_num;

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

pub(super) fn ranking(card: &ModelCard, c: &Curves) -> Section {
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

pub(super) fn reliability(c: &Curves) -> Section {
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

pub(super) fn gains(card: &ModelCard, c: &Curves) -> Section {
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

pub(super) fn profit(card: &ModelCard, points: &[[f64; 2]]) -> Section {
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
