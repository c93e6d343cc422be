//! Uplift models from the log (`churn-train uplift`): per action, the customers it was offered
//! (treated) and the control customers it would have been offered (held out), each customer's
//! first matured prediction with the input that was scored and the label observed within the
//! horizon; then the meta-learners of [`crate::model::uplift`], the chosen one per action, and
//! the uplift bundle and card beside the churn bundle.
//!
//! Treated means *offered* (recommended with a positive contact decision), not *contacted*:
//! the control group is drawn by hash from the same customers, so offered vs held out is a
//! randomised comparison, while who takes a contact up is not (agents reach the riskiest
//! first). The effect learned is the effect of offering, which is what a targeting policy
//! decides.
//!
//! With exploration (`[learning] explore`), the action a customer is in the arms of was drawn
//! with a logged propensity; offered and held out still differ only by the hash, but the
//! customers explored into an action are few and unlike those it is best for. Each row weighs
//! 1 ÷ its propensity (at most [`MAX_WEIGHT`]), so the model fits the population the action is
//! allowed for, not the one the ranking happened to pick.

use super::data::{EvalData, Sym};
use super::EvalError;
pub use crate::bundle::uplift::RowCounts;
use crate::bundle::uplift::{
    encoder_fingerprint, ActionCard, ActionUplift, LearnerRecord, UpliftBundle, UpliftCard,
};
use crate::bundle::Bundle;
use crate::features::Matrix;
use crate::model::uplift::{self, Learner, UpliftParams, UpliftSet};
use crate::util::FxHashMap;

/// Rows each arm of an action needs before it is modelled.
pub const MIN_ROWS_PER_ARM: usize = 2 * uplift::MIN_ARM_ROWS;

/// One training row: a customer's first matured prediction in an arm of an action.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The input as stored (a JSON object).
    pub input: String,
    /// Encoded input.
    pub x: Vec<f64>,
    /// Offered the action (else held out).
    pub treated: bool,
    /// Churned within the horizon.
    pub churned: bool,
    /// The churn probability the model gave when it was scored.
    pub probability: f64,
    /// The customer value the playbook ranked with (`None`: not recorded).
    pub value: Option<f64>,
    /// The probability the action had of being chosen for the customer (1 without
    /// exploration).
    pub propensity: f64,
}

impl Row {
    /// Inverse-propensity weight: 1 ÷ `propensity`, at most [`MAX_WEIGHT`].
    pub fn weight(&self) -> f64 {
        (1.0 / self.propensity.max(f64::MIN_POSITIVE)).min(MAX_WEIGHT)
    }
}

/// The largest inverse-propensity weight: a customer explored into an action with a 1% chance
/// counts as 20, not 100 (a few such rows would otherwise steer the whole fit).
pub const MAX_WEIGHT: f64 = 20.0;

/// The rows of one action.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRows {
    /// Action id.
    pub action: String,
    /// Its rows, in load order.
    pub rows: Vec<Row>,
}

/// Everything `churn-train uplift` learns from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpliftRows {
    /// Per action, by name.
    pub actions: Vec<ActionRows>,
    /// Where the predictions went.
    pub counts: RowCounts,
}

/// The arm of prediction `i`: (action, treated), or `None` when it is in none.
fn arm(data: &EvalData, i: usize) -> Option<(Sym, bool)> {
    let p = &data.predictions[i];
    match p.control? {
        true => p.held_out.map(|a| (a, false)),
        false => p
            .top_action
            .filter(|_| p.contact != Some(false))
            .map(|a| (a, true)),
    }
}

/// Sort each customer's first prediction into its action's arms; `input(i)` hands over the
/// stored input of prediction `i`.
pub fn collect(
    data: &EvalData,
    enc: &crate::features::Encoder,
    horizon_ms: i64,
    as_of: i64,
    input: &mut dyn FnMut(usize) -> Option<String>,
) -> UpliftRows {
    let (matured, pending) = data.first_matured(horizon_ms, as_of);
    let mut counts = RowCounts {
        predictions: data.predictions.len(),
        customers: matured.len() + pending,
        pending,
        ..RowCounts::default()
    };
    let mut by_action: FxHashMap<Sym, Vec<Row>> = FxHashMap::default();
    for (i, churned) in matured {
        let p = &data.predictions[i];
        let Some((action, treated)) = arm(data, i) else {
            counts.no_arm += 1;
            continue;
        };
        let encoded = input(i).and_then(|s| {
            let x = super::drift::encode_stored(enc, &s)?;
            Some((s, x))
        });
        let Some((input, x)) = encoded else {
            counts.unreadable += 1;
            continue;
        };
        counts.rows += 1;
        by_action.entry(action).or_default().push(Row {
            input,
            x,
            treated,
            churned,
            probability: p.probability,
            value: p.value,
            propensity: f64::from(p.propensity),
        });
    }
    let mut actions: Vec<ActionRows> = by_action
        .into_iter()
        .map(|(a, rows)| ActionRows {
            action: data.name(a).to_string(),
            rows,
        })
        .collect();
    actions.sort_by(|a, b| a.action.cmp(&b.action));
    UpliftRows { actions, counts }
}

/// The rows of `model` in the store: its predictions scored before `as_of`, their outcomes and
/// stored inputs.
pub async fn from_store(
    store: &crate::store::Store,
    bundle: &Bundle,
    since: Option<i64>,
    as_of: i64,
    horizon_days: u32,
) -> Result<UpliftRows, EvalError> {
    let period = (since, Some(as_of));
    let data = super::load(
        store,
        &bundle.name,
        period,
        crate::store::Events::LabelsAndActions,
    )
    .await?;
    let found = super::load::first_inputs(store, &data, &bundle.name, period).await?;
    let horizon = i64::from(horizon_days) * crate::time::DAY_MS;
    let mut found = found;
    Ok(collect(&data, &bundle.encoder, horizon, as_of, &mut |i| {
        found.remove(&i)
    }))
}

/// The uplift bundle and its card, trained on `rows` for the churn bundle `bundle` (content
/// version `version`).
pub fn train(
    rows: &UpliftRows,
    bundle: &Bundle,
    version: &str,
    params: &UpliftParams,
) -> Result<(UpliftBundle, UpliftCard, Vec<ActionFit>), EvalError> {
    let width = bundle.encoder.width();
    let mut models = Vec::new();
    let mut cards = Vec::new();
    let mut fits = Vec::new();
    let mut skipped = Vec::new();
    for a in &rows.actions {
        let n_t = a.rows.iter().filter(|r| r.treated).count();
        let n_c = a.rows.len() - n_t;
        if n_t < MIN_ROWS_PER_ARM || n_c < MIN_ROWS_PER_ARM {
            skipped.push((
                a.action.clone(),
                format!("{n_t} treated and {n_c} control rows; each arm needs {MIN_ROWS_PER_ARM}"),
            ));
            continue;
        }
        let (model, card, fit) = fit_action(a, width, params)?;
        models.push(model);
        cards.push(card);
        fits.push(fit);
    }
    if models.is_empty() {
        let have: Vec<String> = skipped.iter().map(|(a, m)| format!("{a}: {m}")).collect();
        return Err(EvalError::Invalid {
            field: "rows",
            message: format!(
                "no action has enough matured rows to learn its uplift ({} predictions, {} \
                 customers, {} pending, {} in no arm{}{})",
                rows.counts.predictions,
                rows.counts.customers,
                rows.counts.pending,
                rows.counts.no_arm,
                if have.is_empty() { "" } else { "; " },
                have.join("; ")
            ),
        });
    }
    let u = UpliftBundle {
        model: bundle.name.clone(),
        model_version: version.to_string(),
        encoder: encoder_fingerprint(bundle),
        actions: models,
    };
    let card = UpliftCard {
        model: bundle.name.clone(),
        model_version: version.to_string(),
        version: String::new(),
        data: rows.counts.clone(),
        actions: cards,
        skipped,
    };
    Ok((u, card, fits))
}

/// Fit the learners on one action's rows: its model (the chosen learner) and card entry.
fn fit_action(
    a: &ActionRows,
    width: usize,
    params: &UpliftParams,
) -> Result<(ActionUplift, ActionCard, ActionFit), EvalError> {
    let n = a.rows.len();
    let mut data = vec![0.0; n * width];
    for (r, row) in a.rows.iter().enumerate() {
        for (c, v) in row.x.iter().enumerate() {
            data[c * n + r] = *v;
        }
    }
    let x = Matrix {
        nrows: n,
        ncols: width,
        data,
    };
    let treated: Vec<bool> = a.rows.iter().map(|r| r.treated).collect();
    let churned: Vec<bool> = a.rows.iter().map(|r| r.churned).collect();
    let weight: Vec<f64> = a.rows.iter().map(Row::weight).collect();
    let set = UpliftSet {
        x: &x,
        treated: &treated,
        churned: &churned,
        weight: &weight,
    };
    let fit = uplift::fit(&set, &Learner::ALL, params).map_err(|e| EvalError::Invalid {
        field: "uplift",
        message: format!("action {}: {e}", a.action),
    })?;
    let effects: Vec<f64> = a.rows.iter().map(|r| fit.model.effect(&r.x)).collect();
    let rate = |t: bool| {
        let (k, m) = a
            .rows
            .iter()
            .filter(|r| r.treated == t)
            .fold((0, 0), |(k, m), r| (k + usize::from(r.churned), m + 1));
        k as f64 / m.max(1) as f64
    };
    let n_t = treated.iter().filter(|&&t| t).count();
    let qini = fit
        .tried
        .iter()
        .find(|c| c.learner == fit.model.learner())
        .map(|c| c.measures.qini)
        .expect("the chosen learner was tried");
    let card = ActionCard {
        action: a.action.clone(),
        learner: fit.model.learner().title().to_string(),
        applied: qini.low > 0.0,
        treated: n_t,
        control: n - n_t,
        treated_churn: rate(true),
        control_churn: rate(false),
        mean_effect: effects.iter().sum::<f64>() / n as f64,
        harmed_share: effects.iter().filter(|&&e| e < 0.0).count() as f64 / n as f64,
        learners: fit
            .tried
            .iter()
            .map(|c| LearnerRecord {
                learner: c.learner.title().to_string(),
                held_out: c.measures.clone(),
            })
            .collect(),
    };
    let model = ActionUplift {
        action: a.action.clone(),
        model: fit.model.clone(),
        qini,
        applied: qini.low > 0.0,
    };
    let fit = ActionFit {
        action: a.action.clone(),
        fit,
    };
    Ok((model, card, fit))
}

/// One action's fit with every learner's held-out effects (for `--rows-out`).
#[derive(Debug, Clone)]
pub struct ActionFit {
    /// Action id.
    pub action: String,
    /// The fit.
    pub fit: uplift::UpliftFit,
}

/// The card as text: per action the rows, the churn of each arm, the learners' held-out Qini
/// coefficients with intervals and the chosen one.
pub fn summary(card: &UpliftCard) -> String {
    use std::fmt::Write;
    let c = &card.data;
    let mut s = format!(
        "uplift of model {} ({}): {} training rows from {} customers ({} pending, {} in no arm, {} unreadable)\n",
        card.model,
        card.model_version,
        c.rows,
        c.customers,
        c.pending,
        c.no_arm,
        c.unreadable
    );
    for a in &card.actions {
        let _ = writeln!(
            s,
            "  {}: {} treated (churn {:.3}), {} control (churn {:.3}); chosen {}; mean effect {:+.3}, harmed {:.1}%; {}",
            a.action,
            a.treated,
            a.treated_churn,
            a.control,
            a.control_churn,
            a.learner,
            a.mean_effect,
            100.0 * a.harmed_share,
            if a.applied {
                "ranks recommendations"
            } else {
                "not used: its held-out Qini interval reaches 0 (ranking keeps the average effect)"
            }
        );
        for l in &a.learners {
            let q = &l.held_out.qini;
            let top = l.held_out.at.first().map_or(0.0, |u| u.uplift.value);
            let _ = writeln!(
                s,
                "    {:<10} held-out Qini {:.3} [{:.3}, {:.3}], AUUC {:.3}, uplift@10% {:+.3}",
                l.learner, q.value, q.low, q.high, l.held_out.auuc.value, top
            );
        }
    }
    for (a, why) in &card.skipped {
        let _ = writeln!(s, "  {a}: not modelled ({why})");
    }
    s
}
