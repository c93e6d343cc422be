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
//! arm, which stays unbiased when contacting is selective: the verdict, the p-value and the
//! learned rates ([`super::learn`]) rest on it.
//!
//! Many action × segment cells read at once show effects by chance (at 5% each, one in twenty
//! cells without any effect): the segment cells carry Benjamini–Hochberg q-values over all of
//! them, and their verdict reads the q-value, not the raw interval.
//!
//! Treatment customers whose contact decision was no (e.g. the suppression action came first)
//! are in no arm, as control customers whose decision would have been no have no held-out
//! action.

use super::data::{EvalData, Label, Sym, Timeline};
use super::stats::{
    minimum_detectable_effect, normal_two_sided_p, rate_difference, wilson_estimate, Estimate,
};
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

/// What the measurement says, from the intention-to-treat comparison (unbiased when
/// contacting is selective): overall, its 95% interval; in a segment, its Benjamini–Hochberg
/// q-value at 5%.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The action saves customers.
    Saves,
    /// Customers it was recommended to churn more than the control arm.
    Harms,
    /// No effect shown.
    NoEffectDetected,
    /// An arm has fewer than [`MIN_ARM`] customers.
    TooFew,
}

/// False discovery rate of the segment cells' verdicts.
pub const FDR: f64 = 0.05;

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
    /// Two-sided p-value of "no effect" (intention to treat against control, pooled z-test).
    pub p_value: Option<f64>,
    /// Segment cells: the p-value adjusted for all segment cells read at once
    /// (Benjamini–Hochberg); the cell shows an effect at a 5% false discovery rate when it is at
    /// most 0.05. `None` for the overall cells.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q_value: Option<f64>,
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
    /// by name); the segment cells with their q-values and verdicts at a 5% false discovery
    /// rate.
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
        let segment_cells: Vec<usize> = (0..out.len())
            .filter(|&i| out[i].segment.is_some() && out[i].p_value.is_some())
            .collect();
        let p: Vec<f64> = segment_cells
            .iter()
            .filter_map(|&i| out[i].p_value)
            .collect();
        for (&i, q) in segment_cells.iter().zip(benjamini_hochberg(&p)) {
            let l = &mut out[i];
            l.q_value = Some(q);
            if l.verdict != Verdict::TooFew {
                l.verdict = match l.intention_to_treat {
                    Some(itt) if q <= FDR && itt.value > 0.0 => Verdict::Saves,
                    Some(itt) if q <= FDR && itt.value < 0.0 => Verdict::Harms,
                    _ => Verdict::NoEffectDetected,
                };
            }
        }
        out
    }
}

/// Benjamini–Hochberg adjusted p-values (q-values), in the order of `p`: the smallest false
/// discovery rate at which each hypothesis would be rejected.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut q = vec![1.0; m];
    let mut running = 1.0_f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * m as f64 / (rank + 1) as f64);
        q[i] = running.min(1.0);
    }
    q
}

/// An arm's churn rate with its Wilson interval (0 in [0, 1] when empty).
fn rate(arm: &Arm) -> Estimate {
    wilson_estimate(arm.churned, arm.n).unwrap_or(Estimate {
        value: 0.0,
        low: 0.0,
        high: 1.0,
    })
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
    let verdict = match intention_to_treat {
        _ if t.n < MIN_ARM || k.n < MIN_ARM => Verdict::TooFew,
        Some(l) if l.low > 0.0 => Verdict::Saves,
        Some(l) if l.high < 0.0 => Verdict::Harms,
        _ => Verdict::NoEffectDetected,
    };
    let p_value = (assigned.n > 0 && k.n > 0).then(|| {
        let pooled = (k.churned + assigned.churned) as f64 / (k.n + assigned.n) as f64;
        let se = (pooled * (1.0 - pooled) * (1.0 / k.n as f64 + 1.0 / assigned.n as f64)).sqrt();
        let diff = k.rate() - assigned.rate();
        if se > 0.0 {
            normal_two_sided_p(diff / se)
        } else {
            1.0
        }
    });
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
        p_value,
        q_value: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook example (Benjamini & Hochberg 1995, 15 p-values): at 5%, the four smallest
    /// are discoveries; q-values are monotone in p and the largest stays itself.
    #[test]
    fn benjamini_hochberg_matches_the_paper() {
        let p = [
            0.0201, 0.0001, 0.0004, 0.0019, 0.0095, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262,
            0.5719, 0.6528, 0.7590, 1.0000,
        ];
        let q = benjamini_hochberg(&p);
        let discoveries = q.iter().filter(|&&q| q <= 0.05).count();
        assert_eq!(discoveries, 4, "{q:?}");
        assert!((q[1] - 0.0015).abs() < 1e-12);
        assert_eq!(q[14], 1.0);
        let mut by_p: Vec<(f64, f64)> = p.iter().copied().zip(q.iter().copied()).collect();
        by_p.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(by_p.windows(2).all(|w| w[0].1 <= w[1].1));
        assert!(benjamini_hochberg(&[]).is_empty());
    }
}
