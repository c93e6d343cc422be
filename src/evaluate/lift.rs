//! Which actions saved customers: per action (and per action × segment), the churn rate of the
//! contacted customers against the control customers who would have been offered the same
//! action, with the lift's 95% interval, the effect the sample could detect, and its worth.
//!
//! Unit: a customer's first prediction in the period (a customer scored again during a
//! campaign is one experiment, not several). Arms of action A:
//! - **contacted**: treatment group, top action A, an `action_taken` A within the horizon;
//! - **control**: control group, A is the action they would have been offered;
//! - **not contacted** (reported, never in either arm): treatment, top action A with a positive
//!   contact decision, nothing taken.
//!
//! The lift compares the contacted with the control arm (per protocol); `intention_to_treat`
//! compares every customer the action was recommended to (contacted or not) with the control
//! arm, which stays unbiased when contacting is selective.
//!
//! Treatment customers whose contact decision was no (e.g. the suppression action came first)
//! are in no arm, as control customers whose decision would have been no have no held-out
//! action.

use super::data::{EvalData, Label, Sym, Timeline};
use super::stats::{minimum_detectable_effect, rate_difference, wilson, Estimate};
use crate::store::OutcomeEvent;
use crate::util::FxHashMap;
use serde::Serialize;

/// Customers each arm needs before a lift is judged.
pub const MIN_ARM: u64 = 30;

/// One arm's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Arm {
    /// Customers with a matured label.
    pub n: u64,
    /// Of which churned.
    pub churned: u64,
    /// Customers still within their horizon (not counted in `n`).
    pub pending: u64,
}

impl Arm {
    fn add(&mut self, label: Label) {
        match label {
            Label::Churned => {
                self.n += 1;
                self.churned += 1;
            }
            Label::Retained => self.n += 1,
            Label::Pending => self.pending += 1,
        }
    }

    /// Churn rate (0 when empty).
    pub fn rate(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.churned as f64 / self.n as f64
        }
    }
}

/// What the measurement says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The interval of the lift lies above 0: the action saves customers.
    Saves,
    /// The interval lies below 0: contacted customers churn more.
    Harms,
    /// The interval includes 0.
    NoEffectDetected,
    /// An arm has fewer than [`MIN_ARM`] customers.
    TooFew,
}

/// The measured effect of one action (overall or in one segment).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionLift {
    /// Action id (`*` for all actions together).
    pub action: String,
    /// Segment (`None`: all segments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Contacted customers.
    pub contacted: Arm,
    /// Control customers who would have been offered the action.
    pub control: Arm,
    /// Recommended but not contacted (in neither arm).
    pub not_contacted: Arm,
    /// Churn rate of each arm (Wilson intervals).
    pub contacted_churn_rate: Estimate,
    /// Control churn rate.
    pub control_churn_rate: Estimate,
    /// Control churn rate − contacted churn rate: churners prevented per contacted customer
    /// (Newcombe interval); `None` when an arm is empty.
    pub lift: Option<Estimate>,
    /// Intention-to-treat lift: control churn − churn of every customer the action was
    /// recommended to (contacted or not), Newcombe interval. Unbiased even when contacting is
    /// selective; diluted by the share not contacted.
    pub intention_to_treat: Option<Estimate>,
    /// The smallest lift these arm sizes detect (5% two-sided, 80% power).
    pub minimum_detectable_effect: Option<f64>,
    /// Customers saved per 1000 contacts (1000 × lift).
    pub saved_per_1000: Option<Estimate>,
    /// Net value per 1000 contacts: saved × mean customer value − contact costs.
    pub net_value_per_1000: Option<Estimate>,
    /// Mean cost per contact (from the events, else the playbook).
    pub cost_per_contact: f64,
    /// Mean customer value of the contacted.
    pub customer_value: Option<f64>,
    /// What the measurement says.
    pub verdict: Verdict,
}

/// Running sums of one (action, segment) cell.
#[derive(Debug, Default, Clone)]
struct Cell {
    contacted: Arm,
    control: Arm,
    not_contacted: Arm,
    cost: (f64, u64),
    value: (f64, u64),
}

/// All arms of a period: per (action, segment) and per action (segment `None`), plus `*`.
#[derive(Debug, Default)]
pub(crate) struct Arms {
    cells: FxHashMap<(Option<Sym>, Option<Sym>), Cell>,
}

/// The action `*` (all actions) in the cell keys.
const ALL: Option<Sym> = None;

impl Arms {
    /// Sort the first prediction of every customer into its arms: `units` are (prediction,
    /// its label).
    pub(crate) fn collect(
        data: &EvalData,
        tl: &Timeline,
        units: &[(usize, Label)],
        horizon_ms: i64,
        playbook_cost: &dyn Fn(&str) -> Option<f64>,
    ) -> Arms {
        let mut arms = Arms::default();
        let taken_sym = OutcomeEvent::ActionTaken;
        for &(i, label) in units {
            let p = &data.predictions[i];
            let Some(control) = p.control else { continue };
            let end = p.scored_at + horizon_ms;
            if control {
                let Some(a) = p.held_out else { continue };
                arms.each(a, p.segment, |c| c.control.add(label));
                continue;
            }
            // a treatment customer the playbook did not say to contact is in no arm
            let Some(top) = p.top_action.filter(|_| p.contact != Some(false)) else {
                continue;
            };
            // the contact: an action_taken of the top action naming this prediction, or naming
            // none and falling within the horizon
            let taken = tl
                .between(data, p.customer, p.scored_at, end)
                .find(|(_, o)| {
                    o.event == taken_sym
                        && o.action == Some(top)
                        && o.prediction.is_none_or(|k| k == i)
                });
            match taken {
                Some((_, o)) => {
                    let cost = o
                        .cost
                        .or_else(|| playbook_cost(data.name(top)))
                        .unwrap_or(0.0);
                    arms.each(top, p.segment, |c| {
                        c.contacted.add(label);
                        if label != Label::Pending {
                            c.cost.0 += cost;
                            c.cost.1 += 1;
                            if let Some(v) = p.value {
                                c.value.0 += v;
                                c.value.1 += 1;
                            }
                        }
                    });
                }
                None => arms.each(top, p.segment, |c| c.not_contacted.add(label)),
            }
        }
        arms
    }

    /// Apply `f` to the cells of (action, segment), (action, all), (all, segment), (all, all).
    fn each(&mut self, action: Sym, segment: Option<Sym>, mut f: impl FnMut(&mut Cell)) {
        let keys = [
            (Some(action), None),
            (ALL, None),
            (Some(action), segment),
            (ALL, segment),
        ];
        let n = if segment.is_some() { 4 } else { 2 };
        for k in &keys[..n] {
            f(self.cells.entry(*k).or_default());
        }
    }

    /// The measured lifts, overall first, then per action, then per action × segment (each
    /// by name).
    pub(crate) fn lifts(&self, data: &EvalData) -> Vec<ActionLift> {
        let mut out: Vec<ActionLift> = self
            .cells
            .iter()
            .map(|(&(a, s), c)| {
                lift_of(a.map_or("*", |a| data.name(a)), s.map(|s| data.name(s)), c)
            })
            .collect();
        out.sort_by(|x, y| {
            (x.action != "*", x.segment.is_some(), &x.action, &x.segment).cmp(&(
                y.action != "*",
                y.segment.is_some(),
                &y.action,
                &y.segment,
            ))
        });
        out
    }
}

fn rate(arm: &Arm) -> Estimate {
    let (low, high) = wilson(arm.churned as f64, arm.n as f64);
    Estimate {
        value: arm.rate(),
        low,
        high,
    }
}

fn lift_of(action: &str, segment: Option<&str>, c: &Cell) -> ActionLift {
    let (t, k) = (&c.contacted, &c.control);
    let lift = (t.n > 0 && k.n > 0).then(|| rate_difference(k.churned, k.n, t.churned, t.n));
    let assigned = Arm {
        n: t.n + c.not_contacted.n,
        churned: t.churned + c.not_contacted.churned,
        pending: t.pending + c.not_contacted.pending,
    };
    let intention_to_treat = (assigned.n > 0 && k.n > 0)
        .then(|| rate_difference(k.churned, k.n, assigned.churned, assigned.n));
    let cost = if c.cost.1 > 0 {
        c.cost.0 / c.cost.1 as f64
    } else {
        0.0
    };
    let value = (c.value.1 > 0).then(|| c.value.0 / c.value.1 as f64);
    let verdict = match lift {
        _ if t.n < MIN_ARM || k.n < MIN_ARM => Verdict::TooFew,
        Some(l) if l.low > 0.0 => Verdict::Saves,
        Some(l) if l.high < 0.0 => Verdict::Harms,
        _ => Verdict::NoEffectDetected,
    };
    ActionLift {
        action: action.to_string(),
        segment: segment.map(str::to_string),
        contacted: *t,
        control: *k,
        not_contacted: c.not_contacted,
        contacted_churn_rate: rate(t),
        control_churn_rate: rate(k),
        lift,
        intention_to_treat,
        minimum_detectable_effect: minimum_detectable_effect(k.rate(), t.n, k.n),
        saved_per_1000: lift.map(|l| l.affine(1000.0, 0.0)),
        net_value_per_1000: lift
            .zip(value)
            .map(|(l, v)| l.affine(1000.0 * v, -1000.0 * cost)),
        cost_per_contact: cost,
        customer_value: value,
        verdict,
    }
}
