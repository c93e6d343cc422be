//! What the report shows about the holdout beyond the headline metrics: the curves, expected
//! profit by threshold, and which action the playbook gives each holdout customer (with a warning
//! when that mix or the customer value is degenerate).

use super::steps::Split;
use crate::bundle::card::{ActionShare, HoldoutDetails, PlaybookMix};
use crate::bundle::{Bundle, LoadedBundle};
use crate::features::Matrix;
use crate::ingest::CustomerData;
use crate::model::metrics::Curves;
use crate::model::{objective_curve, Economics};
use crate::scoring::Scorer;

/// Share above which one top action makes the mix degenerate.
const DOMINANT_SHARE: f64 = 0.6;

/// Curves, profit and playbook mix of the shipped model on the holdout rows, whose
/// probabilities (in `split.test_rows` order) the holdout evaluation computed as `p`.
pub(super) fn holdout_details(
    bundle: &Bundle,
    x: &Matrix,
    data: &CustomerData,
    split: &Split,
    p: &[f64],
    economics: Option<&Economics>,
    threads: usize,
) -> Option<HoldoutDetails> {
    let rows = &split.test_rows;
    if rows.is_empty() {
        return None;
    }
    let encoded: Vec<Vec<f64>> = rows.iter().map(|&r| x.row(r)).collect();
    let y: Vec<bool> = rows.iter().map(|&r| data.label[r]).collect();
    let pb = bundle.playbook.as_ref();
    let profit = economics.map(|e| {
        let values: Option<Vec<f64>> = pb
            .filter(|pb| pb.value_rpn.is_some())
            .map(|pb| encoded.iter().map(|row| pb.value(row)).collect());
        objective_curve(p, &y, Some(e), values.as_deref())
            .into_iter()
            .map(|(t, v)| [t, v])
            .collect()
    });
    let playbook = pb.map(|_| {
        // the scoring core gives each customer exactly the advice the service would
        let scorer = Scorer::new(LoadedBundle {
            bundle: bundle.clone(),
            version: String::new(),
            dir: Default::default(),
        });
        playbook_mix(&scorer, &encoded, data, rows, threads)
    });
    Some(HoldoutDetails {
        curves: Curves::compute(p, &y),
        profit,
        playbook,
    })
}

/// Count each holdout customer's top action and flag a degenerate mix or a constant value.
fn playbook_mix(
    scorer: &Scorer,
    encoded: &[Vec<f64>],
    data: &CustomerData,
    rows: &[usize],
    threads: usize,
) -> PlaybookMix {
    let pb = scorer
        .bundle
        .playbook
        .as_ref()
        .expect("called with a playbook");
    // every action of the catalogue (never recommended ones too), then the control group
    let mut actions: Vec<ActionShare> = pb
        .file
        .actions
        .iter()
        .map(|a| ActionShare {
            action: a.id.clone(),
            cost: a.cost,
            save_rate: a.save_rate,
            customers: 0,
            share: 0.0,
            recommended: 0,
        })
        .collect();
    actions.push(ActionShare {
        action: "(control group)".into(),
        cost: 0.0,
        save_rate: 0.0,
        customers: 0,
        share: 0.0,
        recommended: 0,
    });
    let control = actions.len() - 1;
    let ids: Vec<String> = actions.iter().map(|a| a.action.clone()).collect();
    let index = |id: &str| ids.iter().position(|a| a == id);
    // each customer's advice on its own (threads over fixed chunks), then integer counts:
    // (contacted, top action, recommended actions)
    let advice = crate::model::parallel_chunks(rows.len(), threads, |range| {
        encoded[range.clone()]
            .iter()
            .zip(&rows[range])
            .filter_map(|(row, &r)| {
                let id = data.ids.as_ref().map(|ids| ids[r].as_str());
                let a = scorer.score_encoded(row, Vec::new(), id).advice?;
                let top = a.recommendations.first().and_then(|r| index(r.action));
                let all: Vec<usize> = a
                    .recommendations
                    .iter()
                    .filter_map(|rec| index(rec.action))
                    .collect();
                Some((a.contact, top, all))
            })
            .collect::<Vec<_>>()
    });
    let mut contacted = 0;
    for (contact, top, all) in advice.into_iter().flatten() {
        contacted += usize::from(contact);
        actions[top.unwrap_or(control)].customers += 1;
        for i in all {
            actions[i].recommended += 1;
        }
    }
    let n = rows.len() as f64;
    for a in &mut actions {
        a.share = a.customers as f64 / n;
    }
    actions.sort_by(|a, b| {
        b.customers
            .cmp(&a.customers)
            .then(b.recommended.cmp(&a.recommended))
            .then(a.action.cmp(&b.action))
    });
    let value = match &pb.file.value.expression {
        Some(e) if pb.value_rpn.is_some() => format!("expression {e}"),
        _ => format!("constant {}", crate::util::fmt_num(pb.file.value.default)),
    };
    let warnings = mix_warnings(pb, &actions);
    PlaybookMix {
        playbook: pb.file.name.clone(),
        actions,
        contacted,
        value,
        warnings,
        inferred: Vec::new(),
    }
}

/// What a user should fix about a playbook's mix on the holdout: a constant value, one action
/// for most customers, or hardly any actions at all.
fn mix_warnings(pb: &crate::playbook::Playbook, actions: &[ActionShare]) -> Vec<String> {
    let mut warnings = Vec::new();
    if pb.value_rpn.is_none() {
        warnings.push(format!(
            "every customer is worth the same ({}): expected values, the ranking and the contact decision ignore what a customer brings in. Fix: set [value] expression over a revenue column of your data (e.g. \"MonthlyCharges * 12\" or \"monetary_total\") in a playbook of your own",
            crate::util::fmt_num(pb.file.value.default)
        ));
    }
    // not contacting (the control group, or the suppression when nothing pays — low-risk
    // customers, usually) is not a sign of a playbook that cannot tell customers apart
    let suppress = pb.file.suppress_action.as_deref();
    let treated: Vec<&ActionShare> = actions
        .iter()
        .filter(|a| {
            a.action != "(control group)" && Some(a.action.as_str()) != suppress && a.customers > 0
        })
        .collect();
    if let Some(top) = treated.first().filter(|a| a.share > DOMINANT_SHARE) {
        warnings.push(format!(
            "{:.0}% of holdout customers get {} as their top action: the playbook hardly tells customers apart. Fix: rules (and actions) that fit this data, a value expression, or risk bands that match its churn rate",
            100.0 * top.share, top.action
        ));
    }
    if treated.len() <= 2 {
        warnings.push(format!(
            "only {} action(s) ever come first on the holdout. Fix: a playbook of your own whose rules match this data's segments, classes and inputs",
            treated.len()
        ));
    }
    warnings
}
