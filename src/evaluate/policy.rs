//! Off-policy evaluation: what a candidate targeting policy would have earned on the logged
//! campaigns, before switching to it (`churn-train evaluate --policy`).
//!
//! The logged policy offers every eligible customer (a matching rule, a positive contact
//! decision) their recommended action, except the control group, held out by hash with the
//! playbook's `holdout_percent` h. So for each eligible customer both choices a targeting policy
//! can make — offer the recommended action or hold it back — were taken with a known
//! probability: offered 1 − h, held out h. A candidate policy π decides per customer; its value
//! per eligible customer is the customer value kept minus the offer's cost,
//! `V = value × (1 − churned) − cost × offered`.
//!
//! * **IPS**: the mean of `1[logged choice = π's] / P(logged choice) × V`.
//! * **Doubly robust**: the mean of `μ(x, π) + 1[logged = π] / P(logged) × (V − μ(x, logged))`,
//!   where `μ` predicts V from the churn probability and the action's effect (the uplift model's
//!   τ(x) where one is applied, else P(churn) × the save rate in force). Unbiased when either the
//!   propensities (known here: the hash) or `μ` are right; `μ` only lowers the variance.
//!
//! Intervals: 95% normal intervals from the terms' sample variance (customers are independent).
//! The built-in candidates choose *whom* to offer the action that was drawn for the customer.
//! A candidate playbook (`FILE.toml`) also chooses *which* action: its choice matches the log
//! only where the logged draw was that action, which happened with the logged propensity, so
//! its weight is 1 ÷ ((1 − h) × propensity). Without exploration the propensity of anything but
//! the best-ranked action is 0 and such a candidate is credited only where it agrees with the
//! log; an action the model's playbook lacks was never drawn and is refused.

use super::uplift::UpliftRows;
use super::EvalError;
use crate::bundle::uplift::UpliftBundle;
use crate::model::Estimate;
use crate::playbook::Playbook;
use serde::Serialize;

/// A candidate targeting policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Policy {
    /// The logged one: offer every eligible customer.
    Playbook,
    /// Offer nobody.
    Nobody,
    /// Offer the riskiest `share` of the eligible customers.
    Risk(f64),
    /// Offer where the predicted incremental value τ(x) × value − cost is positive (applied
    /// uplift models; other actions by their average rate).
    Uplift,
    /// Offer the `share` of the eligible customers with the highest predicted incremental value.
    UpliftTop(f64),
    /// A candidate playbook (`FILE.toml`): its own choice of action, or none, per customer
    /// (the `usize`-th of the candidates given to [`evaluate`]).
    Candidate(usize),
}

impl Policy {
    /// Parse `playbook`, `nobody`, `risk:SHARE`, `uplift`, `uplift:SHARE`.
    pub fn parse(text: &str) -> Result<Policy, EvalError> {
        let bad = || {
            EvalError::Invalid {
            field: "policy",
            message: format!(
                "expected playbook, nobody, risk:SHARE, uplift, uplift:SHARE (SHARE in 0..=1) or a candidate playbook FILE.toml, got '{text}'"
            ),
        }
        };
        let share = |v: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|s| (0.0..=1.0).contains(s))
                .ok_or_else(bad)
        };
        match text.trim().split_once(':') {
            None => match text.trim() {
                "playbook" => Ok(Policy::Playbook),
                "nobody" => Ok(Policy::Nobody),
                "uplift" => Ok(Policy::Uplift),
                _ => Err(bad()),
            },
            Some(("risk", v)) => Ok(Policy::Risk(share(v)?)),
            Some(("uplift", v)) => Ok(Policy::UpliftTop(share(v)?)),
            Some(_) => Err(bad()),
        }
    }

    /// Its name as given.
    pub fn name(&self) -> String {
        match self {
            Policy::Playbook => "playbook".into(),
            Policy::Nobody => "nobody".into(),
            Policy::Risk(s) => format!("risk:{s}"),
            Policy::Uplift => "uplift".into(),
            Policy::UpliftTop(s) => format!("uplift:{s}"),
            Policy::Candidate(i) => format!("candidate {i}"),
        }
    }
}

/// One eligible customer as the evaluation sees them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unit {
    /// Churn probability when scored.
    pub probability: f64,
    /// Customer value.
    pub value: f64,
    /// Cost of the recommended action.
    pub cost: f64,
    /// Predicted drop in churn probability if offered (the outcome model).
    pub effect: f64,
    /// The logged choice: offered (else held out).
    pub offered: bool,
    /// Churned within the horizon.
    pub churned: bool,
    /// The logged action (index among the playbook's actions).
    pub action: usize,
    /// The probability that action had of being drawn for the customer (1 without
    /// exploration): offered or held out, the customer was in its arms with this probability.
    pub propensity: f64,
}

/// What a policy does with one eligible customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Choice {
    /// No offer.
    Hold,
    /// Offer an action.
    Offer {
        /// Index among the playbook's actions.
        action: usize,
        /// Predicted drop in churn probability (the outcome model).
        effect: f64,
        /// Its cost.
        cost: f64,
        /// The policy chooses the action itself (a candidate playbook), so matching the log
        /// needs the logged draw to have been this action too (probability: the propensity);
        /// `false` for the policies that decide only whom to offer the drawn action.
        chooses_action: bool,
    },
}

/// A candidate playbook's choices, one per unit, in unit order.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Its name (the file).
    pub name: String,
    /// Per unit.
    pub choices: Vec<Choice>,
}

impl Unit {
    /// Predicted value of offering (`true`) or holding back.
    fn mu(&self, offer: bool) -> f64 {
        self.mu_of(if offer {
            self.logged_offer()
        } else {
            Choice::Hold
        })
    }

    /// The logged action as a choice that only decides whom (the built-in policies).
    fn logged_offer(&self) -> Choice {
        Choice::Offer {
            action: self.action,
            effect: self.effect,
            cost: self.cost,
            chooses_action: false,
        }
    }

    /// Predicted value of choice `c`.
    fn mu_of(&self, c: Choice) -> f64 {
        match c {
            Choice::Hold => self.value * (1.0 - self.probability),
            Choice::Offer { effect, cost, .. } => {
                self.value * (1.0 - self.probability + effect) - cost
            }
        }
    }

    /// The probability of the logged choice when it agrees with `c` (`None`: it does not).
    fn matching(&self, c: Choice, offer_probability: f64) -> Option<f64> {
        match c {
            Choice::Hold => (!self.offered).then_some(1.0 - offer_probability),
            Choice::Offer {
                action,
                chooses_action,
                ..
            } => (self.offered && action == self.action)
                .then_some(offer_probability * if chooses_action { self.propensity } else { 1.0 }),
        }
    }

    /// Realised value.
    fn realised(&self) -> f64 {
        let kept = if self.churned { 0.0 } else { self.value };
        kept - if self.offered { self.cost } else { 0.0 }
    }
}

/// What one policy would have earned, per eligible customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyValue {
    /// The policy.
    pub policy: String,
    /// Share of the eligible customers it offers the action to.
    pub offered_share: f64,
    /// Inverse-propensity estimate of the value per eligible customer.
    pub ips: Estimate,
    /// Doubly robust estimate.
    pub doubly_robust: Estimate,
    /// Doubly robust difference from the playbook (offering every eligible customer), paired
    /// on the same customers.
    pub vs_playbook: Estimate,
}

/// The evaluation of candidate policies on one log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyReport {
    /// Eligible customers evaluated (in an arm of some action, label matured).
    pub customers: usize,
    /// Probability of being offered under the logged policy (1 − holdout share).
    pub offer_probability: f64,
    /// Realised value per eligible customer of the log (offered and held out together).
    pub logged_realised: f64,
    /// Per candidate.
    pub policies: Vec<PolicyValue>,
}

/// The eligible customers of `rows` with their outcome model: the uplift model's effect where
/// an applied one covers the action, else probability × the save rate in force.
pub fn units(rows: &UpliftRows, playbook: &Playbook, uplift: Option<&UpliftBundle>) -> Vec<Unit> {
    let mut out = Vec::new();
    for a in &rows.actions {
        let Some(action) = playbook.file.actions.iter().find(|x| x.id == a.action) else {
            continue;
        };
        let rate = playbook.rate_in_force(action);
        let model = uplift.and_then(|u| u.applied(&a.action));
        let index = playbook
            .file
            .actions
            .iter()
            .position(|x| x.id == a.action)
            .unwrap_or_default();
        for r in &a.rows {
            let effect = match model {
                Some(m) => m.model.effect(&r.x),
                None => r.probability * rate,
            };
            out.push(Unit {
                probability: r.probability,
                value: r.value.unwrap_or(playbook.file.value.default),
                cost: action.cost,
                effect,
                offered: r.treated,
                churned: r.churned,
                action: index,
                propensity: r.propensity,
            });
        }
    }
    out
}

/// Mean and 95% normal interval of `terms`.
fn mean_interval(terms: &[f64]) -> Estimate {
    let n = terms.len().max(1) as f64;
    let m = terms.iter().sum::<f64>() / n;
    let var = terms.iter().map(|t| (t - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    Estimate::around(m, 1.96 * (var / n).sqrt())
}

/// What `policy` does with each unit (`candidates`: the choices of [`Policy::Candidate`]s).
pub fn decide(policy: Policy, units: &[Unit], candidates: &[Candidate]) -> Vec<Choice> {
    let top = |key: &dyn Fn(&Unit) -> f64, share: f64| {
        let mut order: Vec<usize> = (0..units.len()).collect();
        order.sort_by(|&a, &b| key(&units[b]).total_cmp(&key(&units[a])).then(a.cmp(&b)));
        let k = (share * units.len() as f64).round() as usize;
        let mut offer = vec![false; units.len()];
        order[..k.min(units.len())]
            .iter()
            .for_each(|&i| offer[i] = true);
        offer
    };
    let gain = |u: &Unit| u.mu(true) - u.mu(false);
    let offer: Vec<bool> = match policy {
        Policy::Candidate(i) => return candidates[i].choices.clone(),
        Policy::Playbook => vec![true; units.len()],
        Policy::Nobody => vec![false; units.len()],
        Policy::Risk(s) => top(&|u| u.probability, s),
        Policy::Uplift => units.iter().map(|u| gain(u) > 0.0).collect(),
        Policy::UpliftTop(s) => top(&gain, s),
    };
    units
        .iter()
        .zip(offer)
        .map(|(u, o)| if o { u.logged_offer() } else { Choice::Hold })
        .collect()
}

/// Evaluate `policies` on `units`, logged with offer probability `offer_probability`
/// (`candidates`: the choices of the [`Policy::Candidate`]s among them).
pub fn evaluate(
    units: &[Unit],
    offer_probability: f64,
    policies: &[Policy],
    candidates: &[Candidate],
) -> Result<PolicyReport, EvalError> {
    let held = units.iter().filter(|u| !u.offered).count();
    if units.is_empty() || held == 0 || held == units.len() {
        return Err(EvalError::Invalid {
            field: "policy",
            message: format!(
                "off-policy evaluation needs offered and held-out customers with matured labels; \
                 found {} offered and {held} held out",
                units.len() - held
            ),
        });
    }
    let logged_dr: Vec<f64> = units
        .iter()
        .map(|u| {
            u.mu(true)
                + f64::from(u8::from(u.offered)) / offer_probability * (u.realised() - u.mu(true))
        })
        .collect();
    let mut out = Vec::new();
    for &p in policies {
        let choices = decide(p, units, candidates);
        let (mut ips, mut dr) = (Vec::new(), Vec::new());
        for (u, &c) in units.iter().zip(&choices) {
            let w = u
                .matching(c, offer_probability)
                .map_or(0.0, |prob| 1.0 / prob.max(f64::MIN_POSITIVE));
            ips.push(w * u.realised());
            dr.push(u.mu_of(c) + w * (u.realised() - u.mu(u.offered)));
        }
        let diff: Vec<f64> = dr.iter().zip(&logged_dr).map(|(a, b)| a - b).collect();
        out.push(PolicyValue {
            policy: match p {
                Policy::Candidate(i) => candidates[i].name.clone(),
                other => other.name(),
            },
            offered_share: choices.iter().filter(|c| **c != Choice::Hold).count() as f64
                / units.len() as f64,
            ips: mean_interval(&ips),
            doubly_robust: mean_interval(&dr),
            vs_playbook: mean_interval(&diff),
        });
    }
    Ok(PolicyReport {
        customers: units.len(),
        offer_probability,
        logged_realised: units.iter().map(Unit::realised).sum::<f64>() / units.len() as f64,
        policies: out,
    })
}

/// The choices of candidate playbook `scorer` (the model with the candidate's playbook and the
/// model's uplift models; compiled against the model, so its rules and actions are valid) on
/// the units of `rows`, in unit order: each customer's first recommendation when its contact
/// decision is yes (no control group, no exploration: the candidate as a policy), else none.
/// The outcome model is the log's, as for every policy: the uplift model's effect where one is
/// applied, else P(churn) × the model playbook's rate in force. An action the model's playbook
/// lacks was never offered, so nothing in the log can tell what it earns: refused by name.
pub fn candidate(
    name: &str,
    scorer: &crate::scoring::Scorer,
    model: &Playbook,
    rows: &UpliftRows,
) -> Result<Candidate, EvalError> {
    let pb = scorer
        .bundle
        .playbook
        .as_ref()
        .ok_or_else(|| EvalError::Invalid {
            field: "policy",
            message: format!("{name}: no playbook"),
        })?;
    let unknown: Vec<&str> = pb
        .action_ids()
        .filter(|a| !model.action_ids().any(|m| m == *a))
        .collect();
    if !unknown.is_empty() {
        return Err(EvalError::Invalid {
            field: "policy",
            message: format!(
                "{name}: actions {} are not in the model's playbook, so the log never offered them and cannot tell what they earn (the model's actions: {})",
                unknown.join(", "),
                model.action_ids().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    let uplift = scorer.uplift.as_ref().map(|u| &u.0);
    let mut choices = Vec::new();
    for a in &rows.actions {
        if !model.action_ids().any(|m| m == a.action) {
            continue;
        }
        for r in &a.rows {
            let s = scorer.score_encoded(&r.x, Vec::new(), None);
            let first = s
                .advice
                .as_ref()
                .filter(|adv| adv.contact)
                .and_then(|adv| adv.recommendations.first());
            choices.push(match first {
                None => Choice::Hold,
                Some(rec) => {
                    let (index, act) = model
                        .file
                        .actions
                        .iter()
                        .enumerate()
                        .find(|(_, x)| x.id == rec.action)
                        .expect("checked: the model's playbook has every candidate action");
                    let effect = match uplift.and_then(|u| u.applied(rec.action)) {
                        Some(m) => m.model.effect(&r.x),
                        None => r.probability * model.rate_in_force(act),
                    };
                    Choice::Offer {
                        action: index,
                        effect,
                        cost: act.cost,
                        chooses_action: true,
                    }
                }
            });
        }
    }
    Ok(Candidate {
        name: name.to_string(),
        choices,
    })
}

/// The report as text.
pub fn summary(r: &PolicyReport) -> String {
    use std::fmt::Write;
    let mut s = format!(
        "\npolicies (off-policy, value per eligible customer = value kept − offer cost; {} customers, offered with probability {:.2}; logged policy realised {:.2})\n",
        r.customers, r.offer_probability, r.logged_realised
    );
    for p in &r.policies {
        let e = |x: &Estimate| format!("{:.2} [{:.2}, {:.2}]", x.value, x.low, x.high);
        let _ = writeln!(
            s,
            "  {:<14} offers {:>5.1}%  doubly robust {}  IPS {}  vs playbook {}",
            p.policy,
            100.0 * p.offered_share,
            e(&p.doubly_robust),
            e(&p.ips),
            e(&p.vs_playbook)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_bad_ones_are_named() {
        assert_eq!(Policy::parse("risk:0.25").unwrap(), Policy::Risk(0.25));
        assert_eq!(Policy::parse(" uplift ").unwrap(), Policy::Uplift);
        assert_eq!(Policy::parse("uplift:1").unwrap(), Policy::UpliftTop(1.0));
        for bad in ["risk:1.5", "risk:x", "top:0.1", "everyone"] {
            let e = Policy::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn a_log_without_held_out_customers_cannot_be_evaluated() {
        let u = Unit {
            probability: 0.3,
            value: 100.0,
            cost: 5.0,
            effect: 0.1,
            offered: true,
            churned: false,
            action: 0,
            propensity: 1.0,
        };
        let e = evaluate(&[u; 10], 0.9, &[Policy::Nobody], &[]).unwrap_err();
        assert!(e.to_string().contains("10 offered and 0 held out"), "{e}");
    }

    #[test]
    fn ips_weighs_each_logged_choice_by_its_probability() {
        // two customers, one offered (probability 0.8) and one held out (0.2), both stayed
        let unit = |offered| Unit {
            probability: 0.5,
            value: 10.0,
            cost: 1.0,
            effect: 0.0,
            offered,
            churned: false,
            action: 0,
            propensity: 1.0,
        };
        let r = evaluate(
            &[unit(true), unit(false)],
            0.8,
            &[Policy::Playbook, Policy::Nobody],
            &[],
        )
        .unwrap();
        // offer everyone: only the offered customer counts, (10 − 1) / 0.8, over two customers
        assert!((r.policies[0].ips.value - 9.0 / 0.8 / 2.0).abs() < 1e-12);
        // offer nobody: only the held-out one, 10 / 0.2, over two
        assert!((r.policies[1].ips.value - 10.0 / 0.2 / 2.0).abs() < 1e-12);
    }
}
