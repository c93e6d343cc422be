//! The uplift section: per action, how well its uplift model ranks customers by their
//! incremental response on held-out rows (Qini curves of the chosen learners, the learners'
//! measures with intervals) and whether serving uses it.

use super::{figure, r3, section, table_marked, warning};
use crate::bundle::uplift::UpliftCard;
use crate::report::{line_chart, LineChart, Section, Series, PALETTE};

fn interval(e: &crate::model::Estimate) -> String {
    format!("{} [{}, {}]", r3(e.value), r3(e.low), r3(e.high))
}

/// The section of `card`.
pub(crate) fn uplift(card: &UpliftCard) -> Section {
    let mut series = Vec::new();
    let mut rows = Vec::new();
    let mut chosen = Vec::new();
    let mut top = 0.0f64;
    for (k, a) in card.actions.iter().enumerate() {
        for l in &a.learners {
            let m = &l.held_out;
            let is_chosen = l.learner == a.learner;
            if is_chosen {
                let n = m.rows.max(1) as f64;
                let t = m.treated.max(1) as f64;
                let points: Vec<(f64, f64)> =
                    m.qini_curve.iter().map(|&(x, y)| (x / n, y / t)).collect();
                top = points.iter().fold(top, |v, p| v.max(p.1.abs()));
                series.push(Series {
                    name: format!("{} ({}, Qini {})", a.action, l.learner, r3(m.qini.value)),
                    points,
                    color: k % PALETTE.len(),
                    markers: true,
                });
            }
            chosen.push(is_chosen);
            let at = |i: usize| m.at.get(i).map_or(String::new(), |u| interval(&u.uplift));
            rows.push(vec![
                a.action.clone(),
                l.learner.clone(),
                format!("{} / {}", m.treated, m.rows - m.treated),
                interval(&m.qini),
                interval(&m.auuc),
                at(0),
                at(1),
                at(2),
                if !is_chosen {
                    "—".into()
                } else if a.applied {
                    "ranks".into()
                } else {
                    "not used".into()
                },
            ]);
        }
    }
    let top = if top > 0.0 { top * 1.1 } else { 0.1 };
    let chart = line_chart(&LineChart {
        alt: "Qini curves: extra customers kept per treated customer against the share of customers offered, by predicted uplift".into(),
        x_label: "Customers offered, by predicted uplift (share)".into(),
        y_label: "Extra customers kept per treated customer".into(),
        x: (0.0, 1.0),
        y: (-top, top),
        series,
        percent: (true, true),
        ..Default::default()
    });
    let mut body = figure(
        chart,
        "Each curve climbs while the customers offered first are those the action keeps, and falls where it pushes customers out; a straight line from the origin to the curve's end is what random targeting gets. Held-out rows only: every customer's effect comes from models fitted without them.",
        None,
    );
    body.push_str(&table_marked(
        &[
            "action",
            "learner",
            "treated / control",
            "Qini (95%)",
            "AUUC",
            "uplift top 10%",
            "top 20%",
            "top 30%",
            "serving",
        ],
        &rows,
        |i| chosen[i],
    ));
    for (a, why) in &card.skipped {
        body.push_str(&warning(&format!("{a}: not modelled ({why})")));
    }
    if card.actions.iter().any(|a| !a.applied) {
        body.push_str(&warning(
            "An action whose held-out Qini interval reaches 0 is not used for ranking: its model ranks no better than chance, so the action keeps its average save rate.",
        ));
    }
    section(
        "uplift",
        "Uplift: whom each action keeps",
        &format!(
            "How well each action's uplift model ({} rows of logged campaigns, uplift version {}) finds the customers an offer changes, measured on held-out rows; uplift at k is the stay rate of the offered minus that of the held out among the top k by predicted uplift.",
            card.data.rows,
            card.version
        ),
        body,
    )
}
